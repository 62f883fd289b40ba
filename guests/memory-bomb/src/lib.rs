//! `memory-bomb` (hostile fixture): allocates and touches memory until the
//! allocator fails.
//!
//! Expected: the host's memory limit refuses `memory.grow`, the guest aborts,
//! and the host reports `memory_limit` for this invocation only.

wit_bindgen::generate!({ path: "../../wit", world: "pure" });

use exports::airlock::tool::tool::{Descriptor, Error, Guest};

struct MemoryBomb;

impl Guest for MemoryBomb {
    fn describe() -> Descriptor {
        Descriptor {
            name: "memory-bomb".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Hostile fixture: allocates 1 MiB blocks until memory runs out.".into(),
            input_schema: "{}".into(),
        }
    }

    fn call(_input: String) -> Result<String, Error> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            // A non-zero fill writes every page, so nothing stays lazily unbacked.
            hoard.push(vec![0xA5; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

export!(MemoryBomb);
