//! `huge-output` (hostile fixture): produces far more output than asked for.
//!
//! Input `{"bytes": N, "stdout_bytes": M}` (defaults 16 MiB and 0): returns a
//! JSON string of N characters and first writes M bytes to stdout.
//!
//! Expected: `output_too_large` when N exceeds the output limit; stdout is
//! captured up to its cap and the rest is counted, not kept.

wit_bindgen::generate!({ path: "../../wit", world: "pure" });

use exports::airlock::tool::tool::{Descriptor, Error, Guest};
use serde_json::Value;
use std::io::Write;

struct HugeOutput;

impl Guest for HugeOutput {
    fn describe() -> Descriptor {
        Descriptor {
            name: "huge-output".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Hostile fixture: returns and prints as many bytes as asked.".into(),
            input_schema: r#"{"type":"object","properties":{"bytes":{"type":"integer"},"stdout_bytes":{"type":"integer"}}}"#.into(),
        }
    }

    fn call(input: String) -> Result<String, Error> {
        let query: Value = serde_json::from_str(&input)
            .map_err(|e| Error::InvalidInput(format!("input is not JSON: {e}")))?;
        let size = |key: &str, default: u64| {
            query
                .get(key)
                .and_then(Value::as_u64)
                .unwrap_or(default)
                .try_into()
                .map_err(|_| Error::InvalidInput(format!("`{key}` is too large")))
        };
        let bytes: usize = size("bytes", 16 << 20)?;
        let stdout_bytes: usize = size("stdout_bytes", 0)?;

        let line = [b'x'; 1024];
        let mut stdout = std::io::stdout().lock();
        let mut written = 0;
        while written < stdout_bytes {
            let n = line.len().min(stdout_bytes - written);
            stdout
                .write_all(&line[..n])
                .map_err(|e| Error::Failed(format!("stdout: {e}")))?;
            written += n;
        }
        stdout
            .flush()
            .map_err(|e| Error::Failed(format!("stdout: {e}")))?;
        drop(stdout);

        let mut out = String::with_capacity(bytes + 2);
        out.push('"');
        out.extend(std::iter::repeat_n('a', bytes));
        out.push('"');
        Ok(out)
    }
}

export!(HugeOutput);
