//! `echo`: the smallest useful tool. Returns its input unchanged.
//!
//! World `pure`. This is the guest the P1 benchmark invokes, so it does no work
//! of its own.

wit_bindgen::generate!({ path: "../../wit", world: "pure" });

use exports::airlock::tool::tool::{Descriptor, Error, Guest};

struct Echo;

impl Guest for Echo {
    fn describe() -> Descriptor {
        Descriptor {
            name: "echo".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Returns its JSON input unchanged.".into(),
            input_schema: "{}".into(),
        }
    }

    fn call(input: String) -> Result<String, Error> {
        Ok(input)
    }
}

export!(Echo);
