//! Integration tests of authorization, approvals, the journal and
//! attestations (issue: Cedar authorization over capability worlds, human
//! approvals, journal and attestation).

mod approvals;
mod commit;
mod durability;
mod journal;
mod policy;
mod shared;
mod shared_pins;
