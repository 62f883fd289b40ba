//! `faults` (fixture): fails on request, so the conformance suite can check
//! that every language's build maps errors and meets limits the same way
//! (the same tool exists in guests/python, js, c and go).
//!
//! Input `{"error": "invalid-input"|"denied"|"failed", "message": "..."}`
//! returns that error; `{"spin": true}` never returns; `{"allocate_mb": N}`
//! keeps N MiB alive and reports it.

wit_bindgen::generate!({ path: "../../wit", world: "pure" });

use exports::airlock::tool::tool::{Descriptor, Error, Guest};
use serde_json::{Value, json};

struct Faults;

impl Guest for Faults {
    fn describe() -> Descriptor {
        Descriptor {
            name: "faults".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Fixture: returns the error it is asked for, spins, or allocates.".into(),
            input_schema: "{}".into(),
        }
    }

    fn call(input: String) -> Result<String, Error> {
        let query: Value = serde_json::from_str(&input)
            .map_err(|e| Error::InvalidInput(format!("input is not JSON: {e}")))?;
        let message = query
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        match query.get("error").and_then(Value::as_str) {
            Some("invalid-input") => return Err(Error::InvalidInput(message)),
            Some("denied") => return Err(Error::Denied(message)),
            Some("failed") => return Err(Error::Failed(message)),
            _ => {}
        }
        if query.get("spin") == Some(&Value::Bool(true)) {
            spin();
        }
        if let Some(megabytes) = query.get("allocate_mb").and_then(Value::as_u64) {
            let kept: Vec<Vec<u8>> = (0..megabytes).map(|_| vec![1u8; 1 << 20]).collect();
            return Ok(json!({ "allocated_mb": std::hint::black_box(kept).len() }).to_string());
        }
        Err(Error::InvalidInput(
            "give `error`, `spin` or `allocate_mb`".into(),
        ))
    }
}

fn spin() -> ! {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

export!(Faults);
