//! The HTTP client both `http-get` and `secret-hunter` use: a request as
//! the tool's JSON input describes it, sent through
//! `wasi:http/outgoing-handler`, its response as JSON. Shared by `#[path]`
//! so each guest keeps its own generated bindings (`crate::wasi`).

use crate::exports::airlock::tool::tool::Error;
use crate::wasi::http::outgoing_handler;
use crate::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
    http_error_code,
};
use crate::wasi::io::streams::StreamError;
use serde_json::{Value, json};

pub const DEFAULT_MAX_BODY: u64 = 1 << 20;
const READ_CHUNK: u64 = 64 * 1024;
/// wasi:http accepts at most 4 KiB per blocking write.
const WRITE_CHUNK: usize = 4096;

/// One request as the input describes it.
pub struct Request {
    pub method: Method,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Option<Vec<u8>>,
    pub max_body: u64,
    pub timeouts_ms: [Option<u64>; 3],
}

pub fn parse_request(query: &Value) -> Result<Request, Error> {
    let method = match query.get("method").and_then(Value::as_str).unwrap_or("GET") {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        other => Method::Other(other.to_string()),
    };
    let mut headers = Vec::new();
    if let Some(map) = query.get("headers").and_then(Value::as_object) {
        for (name, value) in map {
            let value = value
                .as_str()
                .ok_or_else(|| Error::InvalidInput(format!("header `{name}` must be a string")))?;
            headers.push((name.clone(), value.as_bytes().to_vec()));
        }
    }
    let timeout = |key: &str| {
        query
            .get("timeouts_ms")
            .and_then(|t| t.get(key))
            .and_then(Value::as_u64)
    };
    Ok(Request {
        method,
        headers,
        body: query
            .get("body")
            .and_then(Value::as_str)
            .map(|b| b.as_bytes().to_vec()),
        max_body: query
            .get("max_body_bytes")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_MAX_BODY),
        timeouts_ms: [
            timeout("connect"),
            timeout("first_byte"),
            timeout("between_bytes"),
        ],
    })
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

pub struct Response {
    pub json: Value,
    pub location: Option<String>,
}

pub fn fetch(url: &str, request: &Request) -> Result<Response, Error> {
    let (scheme, authority, path) = split(url)?;
    let fields = Fields::from_list(&request.headers)
        .map_err(|e| Error::InvalidInput(format!("headers refused by the host: {e:?}")))?;
    let outgoing = OutgoingRequest::new(fields);
    let refused =
        |what: &str| Error::InvalidInput(format!("the host refused the {what} of `{url}`"));
    outgoing
        .set_method(&request.method)
        .map_err(|()| refused("method"))?;
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| refused("scheme"))?;
    outgoing
        .set_authority(Some(authority))
        .map_err(|()| refused("authority"))?;
    outgoing
        .set_path_with_query(Some(path))
        .map_err(|()| refused("path"))?;

    let options = RequestOptions::new();
    let ns = |ms: Option<u64>| ms.map(|ms| ms * 1_000_000);
    let [connect, first_byte, between_bytes] = request.timeouts_ms;
    options
        .set_connect_timeout(ns(connect))
        .map_err(|()| refused("connect timeout"))?;
    options
        .set_first_byte_timeout(ns(first_byte))
        .map_err(|()| refused("first-byte timeout"))?;
    options
        .set_between_bytes_timeout(ns(between_bytes))
        .map_err(|()| refused("between-bytes timeout"))?;

    let body = outgoing
        .body()
        .map_err(|()| Error::Failed("request body already taken".into()))?;
    let pending = outgoing_handler::handle(outgoing, Some(options)).map_err(http_error)?;
    send_body(body, request.body.as_deref())?;

    pending.subscribe().block();
    let response = pending
        .get()
        .ok_or_else(|| Error::Failed("response was not ready after blocking".into()))?
        .map_err(|()| Error::Failed("response already taken".into()))?
        .map_err(http_error)?;

    let status = response.status();
    let headers: Vec<(String, String)> = response
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let location = (300..400)
        .contains(&status)
        .then(|| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("location"))
        })
        .flatten()
        .map(|(_, v)| v.clone());
    let incoming = response
        .consume()
        .map_err(|()| Error::Failed("response body already taken".into()))?;
    let bytes = read_body(&incoming, request.max_body)?;
    let trailers = read_trailers(incoming)?;

    Ok(Response {
        json: json!({
            "status": status,
            "headers": headers,
            "body": String::from_utf8_lossy(&bytes),
            "trailers": trailers,
        }),
        location,
    })
}

fn send_body(body: OutgoingBody, bytes: Option<&[u8]>) -> Result<(), Error> {
    if let Some(bytes) = bytes {
        let stream = body
            .write()
            .map_err(|()| Error::Failed("request body stream already taken".into()))?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            if let Err(e) = stream.blocking_write_and_flush(chunk) {
                // The host refused the body (e.g. over its size limit); the
                // response carries the reason.
                drop(e);
                break;
            }
        }
        drop(stream);
    }
    OutgoingBody::finish(body, None).map_err(http_error)
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

/// The trailers after a body read to its end, as `[name, value]` pairs.
fn read_trailers(body: IncomingBody) -> Result<Vec<(String, String)>, Error> {
    let future = IncomingBody::finish(body);
    future.subscribe().block();
    let trailers = future
        .get()
        .ok_or_else(|| Error::Failed("trailers were not ready after blocking".into()))?
        .map_err(|()| Error::Failed("trailers already taken".into()))?
        .map_err(http_error)?;
    Ok(trailers
        .map(|fields| {
            fields
                .entries()
                .into_iter()
                .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
                .collect()
        })
        .unwrap_or_default())
}

/// Refusals by the host's egress policy are `denied`; everything else `failed`.
/// Both carry the `wasi:http` error code so callers can tell the reasons apart.
pub fn http_error(code: ErrorCode) -> Error {
    let text = format!("{code:?}");
    match code {
        ErrorCode::HttpRequestDenied
        | ErrorCode::DestinationIpProhibited
        | ErrorCode::HttpRequestBodySize(_)
        | ErrorCode::HttpResponseBodySize(_) => Error::Denied(text),
        _ => Error::Failed(text),
    }
}
