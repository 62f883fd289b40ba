//! `trap` (hostile fixture): fails hard in the way its input asks.
//!
//! Input `{"how": ...}` (default `panic`):
//! - `panic`: a Rust panic; the message goes to stderr, then `unreachable`.
//! - `abort`: `std::process::abort()`, an `unreachable` with no message.
//! - `exit`: `std::process::exit(3)` through `wasi:cli/exit`, which in WASI
//!   0.2 carries only success or failure (the host sees status 1).
//! - `garbage`: returns output that is not JSON.
//! - `error`: returns the tool error `failed`.
//!
//! Expected: the host reports each for this invocation only, with the
//! captured stderr, and keeps serving.

wit_bindgen::generate!({ path: "../../wit", world: "pure" });

use exports::airlock::tool::tool::{Descriptor, Error, Guest};

struct Trap;

impl Guest for Trap {
    fn describe() -> Descriptor {
        Descriptor {
            name: "trap".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Hostile fixture: panics, aborts or exits on request.".into(),
            input_schema: r#"{"type":"object","properties":{"how":{"enum":["panic","abort","exit","garbage","error"]}}}"#
                .into(),
        }
    }

    fn call(input: String) -> Result<String, Error> {
        let how = input
            .split_once("\"how\"")
            .and_then(|(_, rest)| rest.split('"').nth(1))
            .unwrap_or("panic");
        match how {
            "abort" => std::process::abort(),
            "exit" => std::process::exit(3),
            "garbage" => Ok("this is not JSON".into()),
            "error" => Err(Error::Failed("trap fixture: deliberate failure".into())),
            _ => panic!("trap fixture: deliberate panic"),
        }
    }
}

export!(Trap);
