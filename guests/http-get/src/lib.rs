//! `http-get`: fetches one URL through `wasi:http/outgoing-handler`.
//!
//! World `network`. Input:
//! `{"url": "https://api.example.com/v1/x", "headers": {"accept": "application/json"},
//!   "max_body_bytes": 65536}`.
//! Output: `{"status": 200, "headers": [[name, value], ...], "body": "..."}`.
//!
//! The URL is split, not normalised: scheme, authority and path go to the host
//! exactly as given, so that the host's egress policy (not this guest) decides
//! what an odd-looking URL means. A refused request comes back as the tool error
//! `denied` carrying the `wasi:http` error code, e.g. `HttpRequestDenied`.

wit_bindgen::generate!({ path: "../../wit", world: "network", generate_all });

use exports::airlock::tool::tool::{Descriptor, Error, Guest};
use serde_json::{Value, json};
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingRequest, Scheme, http_error_code,
};
use wasi::io::streams::StreamError;

const DEFAULT_MAX_BODY: u64 = 1 << 20;
const READ_CHUNK: u64 = 64 * 1024;

struct HttpGet;

impl Guest for HttpGet {
    fn describe() -> Descriptor {
        Descriptor {
            name: "http-get".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Fetches a URL with GET and returns status, headers and body.".into(),
            input_schema: r#"{"type":"object","required":["url"],"properties":{"url":{"type":"string"},"headers":{"type":"object","additionalProperties":{"type":"string"}},"max_body_bytes":{"type":"integer","minimum":0}}}"#.into(),
        }
    }

    fn call(input: String) -> Result<String, Error> {
        let query: Value = serde_json::from_str(&input)
            .map_err(|e| Error::InvalidInput(format!("input is not JSON: {e}")))?;
        let url = query
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::InvalidInput("`url` is required".into()))?;
        let max_body = query
            .get("max_body_bytes")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_MAX_BODY);
        let mut headers = Vec::new();
        if let Some(map) = query.get("headers").and_then(Value::as_object) {
            for (name, value) in map {
                let value = value.as_str().ok_or_else(|| {
                    Error::InvalidInput(format!("header `{name}` must be a string"))
                })?;
                headers.push((name.clone(), value.as_bytes().to_vec()));
            }
        }
        fetch(url, &headers, max_body).map(|v| v.to_string())
    }
}

/// Splits `scheme://authority/path?query` without interpreting any part.
fn split(url: &str) -> Result<(Scheme, &str, &str), Error> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| Error::InvalidInput(format!("`{url}` has no `scheme://`")))?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    Ok((scheme, authority, if path.is_empty() { "/" } else { path }))
}

fn fetch(url: &str, headers: &[(String, Vec<u8>)], max_body: u64) -> Result<Value, Error> {
    let (scheme, authority, path) = split(url)?;
    let fields = Fields::from_list(headers)
        .map_err(|e| Error::InvalidInput(format!("headers refused by the host: {e:?}")))?;
    let request = OutgoingRequest::new(fields);
    let refused =
        |what: &str| Error::InvalidInput(format!("the host refused the {what} of `{url}`"));
    request
        .set_method(&Method::Get)
        .map_err(|()| refused("method"))?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| refused("scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| refused("authority"))?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| refused("path"))?;

    let pending = outgoing_handler::handle(request, None).map_err(http_error)?;
    pending.subscribe().block();
    let response = pending
        .get()
        .ok_or_else(|| Error::Failed("response was not ready after blocking".into()))?
        .map_err(|()| Error::Failed("response already taken".into()))?
        .map_err(http_error)?;

    let status = response.status();
    let response_headers: Vec<(String, String)> = response
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let body = response
        .consume()
        .map_err(|()| Error::Failed("response body already taken".into()))?;
    let bytes = read_body(&body, max_body)?;
    drop(body);

    Ok(json!({
        "status": status,
        "headers": response_headers,
        "body": String::from_utf8_lossy(&bytes),
    }))
}

fn read_body(body: &IncomingBody, max_body: u64) -> Result<Vec<u8>, Error> {
    let stream = body
        .stream()
        .map_err(|()| Error::Failed("response body stream already taken".into()))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() as u64 > max_body {
                    return Err(Error::Failed(format!(
                        "body exceeds max_body_bytes ({max_body})"
                    )));
                }
            }
            Err(StreamError::Closed) => return Ok(bytes),
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(match http_error_code(&e) {
                    Some(code) => http_error(code),
                    None => {
                        Error::Failed(format!("reading the body failed: {}", e.to_debug_string()))
                    }
                });
            }
        }
    }
}

/// Refusals by the host's egress policy are `denied`; everything else `failed`.
/// Both carry the `wasi:http` error code so callers can tell the reasons apart.
fn http_error(code: ErrorCode) -> Error {
    let text = format!("{code:?}");
    match code {
        ErrorCode::HttpRequestDenied
        | ErrorCode::DestinationIpProhibited
        | ErrorCode::HttpResponseBodySize(_) => Error::Denied(text),
        _ => Error::Failed(text),
    }
}

export!(HttpGet);
