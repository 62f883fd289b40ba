//! `deep-recursion` (hostile fixture): recurses until the wasm stack runs out.
//!
//! Input `{"depth": N}` (default 10^9). The recursion keeps its state in wasm
//! locals, not in Rust's shadow stack in linear memory, so it is the engine's
//! native stack limit (`max_wasm_stack`) that it hits.
//!
//! Expected: `stack_overflow` for this invocation only; the host keeps serving.

wit_bindgen::generate!({ path: "../../wit", world: "pure" });

use exports::airlock::tool::tool::{Descriptor, Error, Guest};
use serde_json::Value;

struct DeepRecursion;

impl Guest for DeepRecursion {
    fn describe() -> Descriptor {
        Descriptor {
            name: "deep-recursion".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Hostile fixture: unbounded recursion.".into(),
            input_schema: r#"{"type":"object","properties":{"depth":{"type":"integer"}}}"#.into(),
        }
    }

    fn call(input: String) -> Result<String, Error> {
        let depth = serde_json::from_str::<Value>(&input)
            .ok()
            .and_then(|v| v.get("depth").and_then(Value::as_u64))
            .unwrap_or(1_000_000_000);
        Ok(format!("{{\"result\":{}}}", descend(depth)))
    }
}

/// Not a tail call, and not an accumulator LLVM can turn into a loop:
/// the rotation and subtraction depend on `n` after the call returns.
#[inline(never)]
fn descend(n: u64) -> u64 {
    if n == 0 {
        return 1;
    }
    descend(n - 1).rotate_left((n & 31) as u32).wrapping_sub(n)
}

export!(DeepRecursion);
