//! A server that keeps its state in a shared database is one replica of
//! several: it reports what it serves (digests of its configuration and
//! policies) and beats a heart, and `airlock status` shows every replica
//! with a warning when they do not serve the same policies.

use super::Server;
use airlock::store::PostgresStore;
use airlock::store::postgres::ReplicaStatus;
use serde_json::{Value, json};
use sha2::Digest as _;
use std::sync::Arc;
use std::time::Duration;

/// How often a replica says it is alive.
pub(super) const HEARTBEAT: Duration = Duration::from_secs(5);

/// A replica silent for this long is shown as stale.
const STALE_AFTER: Duration = Duration::from_secs(15);

/// Reports the digests of what `server` serves now, if it is a replica.
pub(super) fn report(server: &Server) {
    let Some(shared) = shared(server) else {
        return;
    };
    let config = std::fs::read(&server.sources().config)
        .map(|bytes| hex::encode(sha2::Sha256::digest(&bytes)))
        .unwrap_or_default();
    let policies = server.host().policies().digest();
    if let Err(error) = shared.report(&config, &policies) {
        tracing::warn!(code = error.code(), %error, "reporting to the shared store failed");
    }
}

/// Beats this replica's heart until dropped.
pub(super) async fn beat(shared: Arc<PostgresStore>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(error) = shared.heartbeat() {
            tracing::warn!(code = error.code(), %error, "the replica's heartbeat failed");
        }
    }
}

/// The shared database `server` keeps its state in, if any.
pub(super) fn shared(server: &Server) -> Option<Arc<PostgresStore>> {
    server
        .host()
        .store()
        .and_then(|store| store.shared().cloned())
}

/// What `airlock status` adds for a replica: every replica the store
/// knows, and warnings.
pub(super) fn status(shared: &PostgresStore) -> Result<Value, airlock::store::StoreError> {
    let replicas = shared.replicas()?;
    let now = airlock::store::postgres::now_ms();
    let stale = |r: &ReplicaStatus| {
        now.saturating_sub(r.heartbeat_ms) > i64::try_from(STALE_AFTER.as_millis()).unwrap_or(0)
    };
    let mut warnings = Vec::new();
    let live: Vec<&ReplicaStatus> = replicas.iter().filter(|r| !stale(r)).collect();
    let mut policies: Vec<&str> = live.iter().map(|r| r.policy_digest.as_str()).collect();
    policies.sort_unstable();
    policies.dedup();
    if policies.len() > 1 {
        let each: Vec<String> = live
            .iter()
            .map(|r| format!("{} ({})", r.name, short(&r.policy_digest)))
            .collect();
        warnings.push(format!(
            "replicas serve different policies: {}; give them the same policies and `airlock reload` each",
            each.join(", ")
        ));
    }
    let mut versions: Vec<&str> = live.iter().map(|r| r.version.as_str()).collect();
    versions.sort_unstable();
    versions.dedup();
    if versions.len() > 1 {
        warnings.push(format!(
            "replicas run different airlock versions: {}",
            versions.join(", ")
        ));
    }
    Ok(json!({
        "store": shared.describe(),
        "replica": shared.replica(),
        "replicas": replicas.iter().map(|r| json!({
            "name": r.name,
            "version": r.version,
            "key_id": r.key_id,
            "config_digest": r.config_digest,
            "policy_digest": r.policy_digest,
            "started": r.started,
            "last_heartbeat_ms_ago": now.saturating_sub(r.heartbeat_ms),
            "stale": stale(r),
        })).collect::<Vec<_>>(),
        "warnings": warnings,
    }))
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}
