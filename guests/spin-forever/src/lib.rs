//! `spin-forever` (hostile fixture): `call` never returns and never yields.
//!
//! Expected: the host's wall-clock deadline (`deadline_exceeded`) or fuel
//! (`fuel_exhausted`) ends the invocation, and the host keeps serving.

wit_bindgen::generate!({ path: "../../wit", world: "pure" });

use exports::airlock::tool::tool::{Descriptor, Error, Guest};

struct SpinForever;

impl Guest for SpinForever {
    fn describe() -> Descriptor {
        Descriptor {
            name: "spin-forever".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Hostile fixture: loops forever without yielding.".into(),
            input_schema: "{}".into(),
        }
    }

    fn call(_input: String) -> Result<String, Error> {
        let mut counter: u64 = 0;
        loop {
            counter = std::hint::black_box(counter.wrapping_add(1));
        }
    }
}

export!(SpinForever);
