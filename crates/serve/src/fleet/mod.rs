//! Attested replicas. Each replica of a shared store publishes, when it
//! joins, a [`Statement`] of what it is and serves (airlock version and
//! binary digest, configuration and policy digests, the sandbox it has,
//! whether every tool's egress is strict, its tools and their digests),
//! signed with its host key. The `[fleet]` table decides whether a
//! replica may serve (`judge`): one that fails refuses to start, and the
//! others decide no approval it asked for. Only the keys an operator wrote
//! into `[fleet.replicas]` are believed: a replica cannot register itself.

mod kept;

use kept::{approval_replica, publish, published, statements};

use airlock::config::{Config, FleetPolicy, RequiredSandbox};
use airlock::journal::canonical_json;
use airlock::native::Tier;
use airlock::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a replica says it is and serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// Its name (`[postgres] replica`).
    pub replica: String,
    /// The airlock version it runs.
    pub version: String,
    /// SHA-256 of the airlock binary that runs it (`sha256:HEX`).
    pub binary: String,
    /// SHA-256 of its configuration file.
    pub config: String,
    /// SHA-256 of the policies it serves.
    pub policies: String,
    /// SHA-256 of its `[fleet]` table (`none` without one): every replica
    /// of a fleet must hold the same.
    pub fleet: String,
    /// The sandbox this machine has, probed.
    pub sandbox: Sandbox,
    /// Every native tool runs sandboxed (network through the egress proxy
    /// or none); hosted servers always do.
    pub strict_egress: bool,
    /// The tools it serves, each with its digest.
    pub tools: BTreeMap<String, String>,
    /// When it was made (RFC 3339).
    pub made: String,
}

/// The sandbox facts a statement carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    /// `bwrap` is installed.
    pub bubblewrap: bool,
    /// bubblewrap ran a program in fresh user namespaces.
    pub user_namespaces: bool,
    /// The kernel has seccomp.
    pub seccomp: bool,
}

fn sha256_of(bytes: &[u8]) -> String {
    format!("sha256:{}", airlock::attest::sha256_hex(bytes))
}

/// `sha256:HEX` of the file at `path`, or what kept it from being read.
fn file_digest(path: &std::path::Path) -> String {
    airlock::native::file_sha256(path)
        .map_or_else(|_| "unreadable".to_string(), |hex| format!("sha256:{hex}"))
}

/// What this process runs on: its binary's digest and the sandbox facts,
/// found once (a replica states them at start and at every reload).
fn this_machine() -> &'static (String, airlock::SandboxFacts) {
    static MACHINE: std::sync::OnceLock<(String, airlock::SandboxFacts)> =
        std::sync::OnceLock::new();
    MACHINE.get_or_init(|| {
        let binary = std::env::current_exe().map_or_else(|_| "unknown".into(), |p| file_digest(&p));
        (
            binary,
            airlock::SandboxFacts::probe(std::env::var_os("PATH")),
        )
    })
}

impl Statement {
    /// This replica's statement: `config` (read from `config_file`) served
    /// with the policies of digest `policies` and `tools` (name, SHA-256).
    pub(crate) fn of_this_replica(
        replica: &str,
        config: &Config,
        config_file: &std::path::Path,
        policies: &str,
        tools: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        let (binary, facts) = this_machine();
        // A Job Object confines neither files nor network.
        let confines = !cfg!(windows);
        let natives_sandboxed = config
            .tools()
            .iter()
            .filter_map(airlock::ToolConfig::native)
            .all(|spec| spec.tier == Tier::Sandbox);
        let anything_native =
            config.tools().iter().any(|t| t.native().is_some()) || !config.servers().is_empty();
        Self {
            replica: replica.to_string(),
            version: airlock::build_info::AIRLOCK.to_string(),
            binary: binary.clone(),
            config: file_digest(config_file),
            policies: format!("sha256:{policies}"),
            fleet: fleet_digest(config.fleet()),
            sandbox: Sandbox {
                bubblewrap: facts.bubblewrap,
                user_namespaces: facts.user_namespaces,
                seccomp: facts.seccomp,
            },
            strict_egress: natives_sandboxed && (confines || !anything_native),
            tools: tools
                .into_iter()
                .map(|(name, sha)| (name, format!("sha256:{sha}")))
                .collect(),
            made: crate::devices::now_rfc3339(),
        }
    }

    /// The bytes its signature covers: its canonical JSON.
    pub(crate) fn signed_text(&self) -> String {
        canonical_json(&serde_json::to_value(self).unwrap_or_default())
    }

    /// The statement signed with `sign`, ready to publish.
    pub(crate) fn signed(&self, sign: impl FnOnce(&[u8]) -> ed25519_dalek::Signature) -> Published {
        let text = self.signed_text();
        Published {
            signature: hex::encode(sign(text.as_bytes()).to_bytes()),
            text,
            published: crate::devices::now_rfc3339(),
        }
    }
}

/// SHA-256 of a `[fleet]` table as checked (`none` without one): what
/// replicas compare to hold the same policy.
fn fleet_digest(policy: Option<&FleetPolicy>) -> String {
    let Some(policy) = policy else {
        return "none".to_string();
    };
    let keys: BTreeMap<&String, String> = policy
        .replicas
        .iter()
        .map(|(name, key)| (name, hex::encode(key.as_bytes())))
        .collect();
    let table = serde_json::json!({
        "require_strict_egress": policy.require_strict_egress,
        "require_sandbox": policy.require_sandbox.map(RequiredSandbox::as_str),
        "policies": policy.policies,
        "replicas": keys,
    });
    sha256_of(canonical_json(&table).as_bytes())
}

/// When a replica judges itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Moment {
    /// Before it serves anything: a failing statement is published, so
    /// every replica sees why this one does not serve.
    Start,
    /// Before a reload takes effect: a failing one is not published (the
    /// replica keeps serving as it was).
    Reload,
}

/// The shared store, journal and name of this replica, if `host` is one.
fn this_replica(host: &airlock::Host) -> Option<(&Store, &airlock::journal::Journal, &str)> {
    let (store, journal) = (host.store()?, host.journal()?);
    let replica = store.shared()?.replica();
    Some((store, journal, replica))
}

/// Judges this replica under `config`'s `[fleet]`, with policies of
/// digest `policies`, before anything is loaded (so a replica that may not
/// serve starts no server and writes no pin).
pub(crate) fn admit(
    host: &airlock::Host,
    config: &Config,
    config_file: &std::path::Path,
    policies: &str,
    moment: Moment,
) -> Result<(), crate::ServeError> {
    let (Some((store, journal, replica)), Some(policy)) = (this_replica(host), config.fleet())
    else {
        return Ok(());
    };
    let statement = Statement::of_this_replica(replica, config, config_file, policies, []);
    let published = statement.signed(|message| journal.sign(message));
    let judgement = judge(policy, replica, Some(&published));
    if judgement.verified {
        return Ok(());
    }
    if moment == Moment::Start {
        publish(store, replica, &published)?;
    }
    Err(crate::ServeError::Fleet {
        replica: replica.to_string(),
        reasons: judgement.reasons(),
    })
}

/// Publishes this replica's statement, with the `tools` it serves (name,
/// SHA-256), once it was admitted and loaded them.
pub(crate) fn publish_statement(
    host: &airlock::Host,
    config: &Config,
    config_file: &std::path::Path,
    tools: impl IntoIterator<Item = (String, String)>,
) -> Result<(), StoreError> {
    let Some((store, journal, replica)) = this_replica(host) else {
        return Ok(());
    };
    let statement = Statement::of_this_replica(
        replica,
        config,
        config_file,
        &host.policies().digest(),
        tools,
    );
    publish(
        store,
        replica,
        &statement.signed(|message| journal.sign(message)),
    )
}

/// A statement as published: the signed text and the signature (hex).
#[derive(Clone, Debug)]
pub(crate) struct Published {
    pub(crate) text: String,
    pub(crate) signature: String,
    pub(crate) published: String,
}

/// One reason a replica may not serve.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Stable reason code.
    pub code: &'static str,
    /// What is wrong, and what to do.
    pub message: String,
}

/// Whether a replica's statement holds under the fleet's policy.
#[derive(Clone, Debug, Serialize)]
pub struct Judgement {
    /// The replica.
    pub replica: String,
    /// Its statement, when it published one that parses.
    pub statement: Option<Statement>,
    /// When it published it.
    pub published: Option<String>,
    /// The statement verifies and meets the policy.
    pub verified: bool,
    /// Why not.
    pub failures: Vec<Failure>,
}

impl Judgement {
    /// The failures as one line, for an error.
    pub fn reasons(&self) -> String {
        self.failures
            .iter()
            .map(|f| format!("{}: {}", f.code, f.message))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Judges `replica`'s published statement (if any) under `policy`: the
/// key an operator registered must have signed it, and it must meet every
/// requirement.
pub(crate) fn judge(
    policy: &FleetPolicy,
    replica: &str,
    published: Option<&Published>,
) -> Judgement {
    let mut failures = Vec::new();
    let mut fail = |code, message: String| failures.push(Failure { code, message });
    let statement = published.and_then(|p| serde_json::from_str::<Statement>(&p.text).ok());
    match (policy.replicas.get(replica), published) {
        (None, _) => fail(
            "replica_not_registered",
            format!(
                "replica `{replica}` is not in [fleet.replicas]: an operator adds its host.pub (`airlock replicas key` in its state directory)"
            ),
        ),
        (Some(_), None) => fail(
            "statement_missing",
            format!(
                "replica `{replica}` published no statement (an airlock without attestation, or it never started)"
            ),
        ),
        (Some(key), Some(published)) => {
            let signature = hex::decode(&published.signature)
                .ok()
                .and_then(|bytes| ed25519_dalek::Signature::from_slice(&bytes).ok());
            let canonical = serde_json::from_str(&published.text)
                .map(|value| canonical_json(&value))
                .unwrap_or_default();
            if signature.is_none_or(|s| key.verify_strict(canonical.as_bytes(), &s).is_err()) {
                fail(
                    "statement_signature_invalid",
                    format!(
                        "replica `{replica}`'s statement is not signed by the key [fleet.replicas] registers for it"
                    ),
                );
            }
        }
    }
    match &statement {
        None if published.is_some() => fail(
            "statement_unreadable",
            format!("replica `{replica}`'s statement is not one this airlock reads"),
        ),
        None => {}
        Some(statement) => {
            if statement.fleet != fleet_digest(Some(policy)) {
                fail(
                    "fleet_differs",
                    format!(
                        "replica `{replica}` serves under another [fleet] table ({}): give every replica the same one",
                        statement.fleet
                    ),
                );
            }
            if statement.replica != replica {
                fail(
                    "statement_replica_mismatch",
                    format!(
                        "the statement published for `{replica}` names `{}`",
                        statement.replica
                    ),
                );
            }
            if policy.require_strict_egress && !statement.strict_egress {
                fail(
                    "strict_egress_required",
                    "[fleet] require_strict_egress: a native tool runs without the sandbox (`tier = \"none\"`), so its egress is not confined".into(),
                );
            }
            if policy.require_sandbox == Some(RequiredSandbox::Bubblewrap) {
                let s = statement.sandbox;
                if !(s.bubblewrap && s.user_namespaces && s.seccomp) {
                    fail(
                        "sandbox_required",
                        format!(
                            "[fleet] require_sandbox = \"bubblewrap\": this replica has bubblewrap {}, user namespaces {}, seccomp {}",
                            s.bubblewrap, s.user_namespaces, s.seccomp
                        ),
                    );
                }
            }
            if let Some(wanted) = &policy.policies
                && *wanted != statement.policies
            {
                fail(
                    "policies_differ",
                    format!(
                        "[fleet] policies = \"{wanted}\", and the replica serves {}",
                        statement.policies
                    ),
                );
            }
        }
    }
    Judgement {
        replica: replica.to_string(),
        verified: failures.is_empty(),
        failures,
        statement,
        published: published.map(|p| p.published.clone()),
    }
}

/// Every replica the shared database knows, each with its statement and,
/// under `policy`, whether it verifies (`verified` is null without a
/// `[fleet]` table: nothing registers the keys to check against).
pub(crate) fn report(
    store: &Store,
    policy: Option<&FleetPolicy>,
) -> Result<Vec<serde_json::Value>, StoreError> {
    Ok(statements(store)?
        .into_iter()
        .map(|(replica, published)| match policy {
            Some(policy) => serde_json::json!(judge(policy, &replica, published.as_ref())),
            None => serde_json::json!({
                "replica": replica,
                "statement": published
                    .as_ref()
                    .and_then(|p| serde_json::from_str::<Statement>(&p.text).ok()),
                "published": published.map(|p| p.published),
                "verified": null,
                "failures": [],
            }),
        })
        .collect())
}

/// The failing judgement of the replica approval `id` was asked on, if
/// that replica does not attest under `policy`: nothing it asks for is
/// released (decided).
pub(crate) fn unattested_asker(
    store: &Store,
    policy: &FleetPolicy,
    id: &str,
) -> Result<Option<Judgement>, StoreError> {
    let Some(replica) = approval_replica(store, id)? else {
        return Ok(None);
    };
    let judgement = judge(policy, &replica, published(store, &replica)?.as_ref());
    Ok((!judgement.verified).then_some(judgement))
}

#[cfg(test)]
mod tests;
