//! `http-get`: makes HTTP requests through `wasi:http/outgoing-handler`.
//!
//! World `network`. Input (only `url` is required):
//!
//! ```json
//! {"url": "https://api.example.com/v1/x",
//!  "method": "GET", "headers": {"accept": "application/json"}, "body": "…",
//!  "max_body_bytes": 65536,
//!  "timeouts_ms": {"connect": 1000, "first_byte": 1000, "between_bytes": 1000},
//!  "repeat": 1, "follow_redirects": 0}
//! ```
//!
//! Output: `{"status": 200, "headers": [[name, value], ...], "body": "...",
//! "trailers": [[name, value], ...], "requests": N}` for the last response. `repeat` sends the same request N
//! times; `follow_redirects` follows up to N `Location` headers, each a new
//! request that passes the host's policy again.
//!
//! The URL is split, not normalised: scheme, authority and path go to the host
//! exactly as given, so that the host's egress policy (not this guest) decides
//! what an odd-looking URL means. A refused request comes back as the tool error
//! `denied` carrying the `wasi:http` error code, e.g. `HttpRequestDenied`.

wit_bindgen::generate!({ path: "../../wit", world: "network", generate_all });

mod client;

use client::{fetch, parse_request};
use exports::airlock::tool::tool::{Descriptor, Error, Guest};
use serde_json::{Value, json};

struct HttpGet;

impl Guest for HttpGet {
    fn describe() -> Descriptor {
        Descriptor {
            name: "http-get".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Makes an HTTP request and returns status, headers and body.".into(),
            input_schema: r#"{"type":"object","required":["url"],"properties":{"url":{"type":"string"},"method":{"type":"string"},"headers":{"type":"object","additionalProperties":{"type":"string"}},"body":{"type":"string"},"max_body_bytes":{"type":"integer","minimum":0},"timeouts_ms":{"type":"object"},"repeat":{"type":"integer","minimum":1},"follow_redirects":{"type":"integer","minimum":0}}}"#.into(),
        }
    }

    fn call(input: String) -> Result<String, Error> {
        let query: Value = serde_json::from_str(&input)
            .map_err(|e| Error::InvalidInput(format!("input is not JSON: {e}")))?;
        let mut url = query
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::InvalidInput("`url` is required".into()))?
            .to_string();
        let request = parse_request(&query)?;
        let count =
            |key: &str, default: u64| query.get(key).and_then(Value::as_u64).unwrap_or(default);
        let repeat = count("repeat", 1).max(1);
        let mut redirects_left = count("follow_redirects", 0);

        let mut requests = 0;
        let mut last = Value::Null;
        for _ in 0..repeat {
            loop {
                let response = fetch(&url, &request)?;
                requests += 1;
                let location = response.location.clone();
                last = response.json;
                match location {
                    Some(next) if redirects_left > 0 => {
                        redirects_left -= 1;
                        url = next;
                    }
                    _ => break,
                }
            }
        }
        last["requests"] = json!(requests);
        Ok(last.to_string())
    }
}

export!(HttpGet);
