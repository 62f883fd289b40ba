//! The attack corpus in `fixtures/security/egress_attacks.json`.
