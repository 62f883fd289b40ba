use super::{Published, Sandbox, Statement, fleet_digest, judge};
use airlock::config::{FleetPolicy, RequiredSandbox};
use ed25519_dalek::{Signer as _, SigningKey};
use std::collections::BTreeMap;

/// A statement of `replica` that meets every requirement of `policy`.
fn statement(replica: &str, policy: &FleetPolicy) -> Statement {
    Statement {
        replica: replica.to_string(),
        version: "0.1.0".into(),
        binary: format!("sha256:{}", "b".repeat(64)),
        config: format!("sha256:{}", "c".repeat(64)),
        policies: format!("sha256:{}", "d".repeat(64)),
        fleet: fleet_digest(Some(policy)),
        sandbox: Sandbox {
            bubblewrap: true,
            user_namespaces: true,
            seccomp: true,
        },
        strict_egress: true,
        tools: BTreeMap::from([("echo".to_string(), format!("sha256:{}", "e".repeat(64)))]),
        made: "2026-12-07T12:00:00Z".into(),
    }
}

fn signed(key: &SigningKey, statement: &Statement) -> Published {
    statement.signed(|message| key.sign(message))
}

fn codes(policy: &FleetPolicy, replica: &str, published: Option<&Published>) -> Vec<&'static str> {
    judge(policy, replica, published)
        .failures
        .iter()
        .map(|f| f.code)
        .collect()
}

#[test]
fn a_statement_verifies_only_under_the_registered_key_and_the_policy() {
    let key = SigningKey::from_bytes(&[7; 32]);
    let other = SigningKey::from_bytes(&[8; 32]);
    let policy = FleetPolicy {
        require_strict_egress: true,
        require_sandbox: Some(RequiredSandbox::Bubblewrap),
        policies: Some(format!("sha256:{}", "d".repeat(64))),
        replicas: BTreeMap::from([("a".to_string(), key.verifying_key())]),
    };
    let good = statement("a", &policy);
    let verdict = judge(&policy, "a", Some(&signed(&key, &good)));
    assert!(verdict.verified, "{:?}", verdict.failures);
    assert_eq!(verdict.statement.as_ref(), Some(&good));

    assert_eq!(
        codes(&policy, "b", Some(&signed(&key, &statement("b", &policy)))),
        ["replica_not_registered"]
    );
    assert_eq!(codes(&policy, "a", None), ["statement_missing"]);
    assert_eq!(
        codes(&policy, "a", Some(&signed(&other, &good))),
        ["statement_signature_invalid"]
    );
    let mut tampered = signed(&key, &good);
    tampered.text = tampered
        .text
        .replace("\"strict_egress\":true", "\"strict_egress\":false");
    assert_eq!(
        codes(&policy, "a", Some(&tampered)),
        ["statement_signature_invalid", "strict_egress_required"]
    );

    let mut loose = statement("a", &policy);
    loose.strict_egress = false;
    loose.sandbox.user_namespaces = false;
    loose.policies = format!("sha256:{}", "f".repeat(64));
    assert_eq!(
        codes(&policy, "a", Some(&signed(&key, &loose))),
        [
            "strict_egress_required",
            "sandbox_required",
            "policies_differ"
        ]
    );
    assert_eq!(
        codes(&policy, "a", Some(&signed(&key, &statement("b", &policy)))),
        ["statement_replica_mismatch"]
    );

    // A policy that requires nothing still requires the registered key,
    // and the same [fleet] table.
    let lax = FleetPolicy {
        require_strict_egress: false,
        require_sandbox: None,
        policies: None,
        replicas: policy.replicas.clone(),
    };
    let mut loose_under_lax = loose.clone();
    loose_under_lax.fleet = fleet_digest(Some(&lax));
    assert!(judge(&lax, "a", Some(&signed(&key, &loose_under_lax))).verified);
    assert_eq!(
        codes(&lax, "a", Some(&signed(&other, &loose_under_lax))),
        ["statement_signature_invalid"]
    );
    assert_eq!(
        codes(&lax, "a", Some(&signed(&key, &loose))),
        ["fleet_differs"],
        "a replica under another [fleet] table"
    );
    let mut without = loose_under_lax;
    without.fleet = fleet_digest(None);
    assert_eq!(
        codes(&lax, "a", Some(&signed(&key, &without))),
        ["fleet_differs"],
        "a replica without one"
    );
}
