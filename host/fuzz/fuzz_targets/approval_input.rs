//! Approval input canonicalisation: an input admission accepts binds the
//! same approval whatever its key order and whitespace, its canonical form
//! is a fixed point, and summarising it for an operator never panics.
#![no_main]

use airlock::approvals::{request_hash, summarize};
use airlock::check_input;
use airlock_journal::canonical_json;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|text: &str| {
    let _ = summarize(text);
    if check_input(text).is_err() {
        return;
    }
    let value: Value = serde_json::from_str(text).expect("admitted input is JSON");
    let canonical = canonical_json(&value);
    let again: Value = serde_json::from_str(&canonical).expect("canonical JSON parses");
    assert_eq!(again, value, "canonical form changed the value");
    assert_eq!(
        canonical_json(&again),
        canonical,
        "canonical form is not a fixed point"
    );
    let caps = ["network".to_string()];
    assert_eq!(
        request_hash("Agent::\"a\"", "sha", text, &caps),
        request_hash("Agent::\"a\"", "sha", &canonical, &caps),
        "the same input binds another approval"
    );
});
