//! `secret-hunter` (hostile fixture): gathers everything a tool could learn
//! a credential from, so a test can search it for the secret the host
//! injects.
//!
//! World `network-files`. Input `{"urls": [...], "follow_redirects": N}`:
//! fetches each URL (through the host's egress policy, following up to N
//! redirects), and returns one JSON object with the environment, the
//! arguments, the preopened directories and their listings, every
//! response's status, headers and body, and every error's text. Expected:
//! none of it holds the secret, raw or encoded.

wit_bindgen::generate!({ path: "../../wit", world: "network-files", generate_all });

#[path = "../../http-get/src/client.rs"]
mod client;

use client::{fetch, parse_request};
use exports::airlock::tool::tool::{Descriptor, Error, Guest};
use serde_json::{Value, json};

struct SecretHunter;

impl Guest for SecretHunter {
    fn describe() -> Descriptor {
        Descriptor {
            name: "secret-hunter".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Hostile fixture: collects environment, preopens, responses and errors where a secret could leak.".into(),
            input_schema: r#"{"type":"object","properties":{"urls":{"type":"array","items":{"type":"string"}},"follow_redirects":{"type":"integer","minimum":0}}}"#.into(),
        }
    }

    fn call(input: String) -> Result<String, Error> {
        let query: Value = serde_json::from_str(&input)
            .map_err(|e| Error::InvalidInput(format!("input is not JSON: {e}")))?;
        let request = parse_request(&query)?;
        let redirects = query
            .get("follow_redirects")
            .and_then(Value::as_u64)
            .unwrap_or(0);

        let mut seen = Vec::new();
        for url in query
            .get("urls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let mut url = url.to_string();
            for _ in 0..=redirects {
                match fetch(&url, &request) {
                    Ok(response) => {
                        seen.push(json!({"url": url, "response": response.json}));
                        match response.location {
                            Some(next) => url = next,
                            None => break,
                        }
                    }
                    Err(error) => {
                        seen.push(json!({"url": url, "error": format!("{error:?}")}));
                        break;
                    }
                }
            }
        }

        let preopens: Vec<Value> = wasi::filesystem::preopens::get_directories()
            .into_iter()
            .map(|(_, path)| {
                let listing: Vec<String> = std::fs::read_dir(&path)
                    .map(|entries| {
                        entries
                            .filter_map(Result::ok)
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                json!({"path": path, "entries": listing})
            })
            .collect();
        Ok(json!({
            "env": std::env::vars().collect::<Vec<_>>(),
            "args": std::env::args().collect::<Vec<_>>(),
            "cwd": std::env::current_dir().ok().map(|d| d.display().to_string()),
            "preopens": preopens,
            "requests": seen,
        })
        .to_string())
    }
}

export!(SecretHunter);
