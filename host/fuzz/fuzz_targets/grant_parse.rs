//! Grant files: any text parses or is refused with an error, never a
//! panic; a grant that parses describes itself without panicking.
#![no_main]

use airlock_egress::NetworkGrant;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(grant) = NetworkGrant::from_toml(text, "fuzz.toml") {
        let _ = format!("{:?}", grant.rules());
        let _ = grant.budgets();
    }
});
