//! Who shares the database: each replica registers under its name with
//! its journal key, reports the digests of what it serves, and beats a
//! heart; `airlock status` reads them back.

use super::PostgresStore;
use crate::store::StoreError;
use ed25519_dalek::VerifyingKey;
use std::time::SystemTime;

/// One replica as the shared store knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// Its name (`[postgres] replica`).
    pub name: String,
    /// Its journal key's id.
    pub key_id: String,
    /// Its journal key (hex), to verify its log's signed heads.
    pub public_key: String,
    /// The airlock version it runs.
    pub version: String,
    /// SHA-256 of the configuration it serves (empty until reported).
    pub config_digest: String,
    /// SHA-256 of the policies it serves (empty until reported).
    pub policy_digest: String,
    /// When it last started (RFC 3339).
    pub started: String,
    /// Its last heartbeat, in milliseconds since the Unix epoch.
    pub heartbeat_ms: i64,
}

/// Milliseconds since the Unix epoch, as heartbeats are kept.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl PostgresStore {
    /// Registers this replica with its journal `key`; refuses a name that
    /// another key already writes under (two writers would fork its log).
    pub(super) async fn register(&self, key: &VerifyingKey) -> Result<(), StoreError> {
        let failed = StoreError::postgres("registering the replica");
        let client = self.client().await?;
        let key_id = airlock_journal::key::key_id(key);
        let started = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let registered = client
            .query_opt(
                "INSERT INTO replicas (name, key_id, public_key, version, started, heartbeat_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, \
                 started = EXCLUDED.started, heartbeat_ms = EXCLUDED.heartbeat_ms \
                 WHERE replicas.key_id = EXCLUDED.key_id RETURNING name",
                &[
                    &self.replica,
                    &key_id,
                    &hex::encode(key.as_bytes()),
                    &env!("CARGO_PKG_VERSION"),
                    &started,
                    &now_ms(),
                ],
            )
            .await
            .map_err(&failed)?;
        if registered.is_some() {
            return Ok(());
        }
        let holder: String = client
            .query_one(
                "SELECT key_id FROM replicas WHERE name = $1",
                &[&self.replica],
            )
            .await
            .map_err(&failed)?
            .get(0);
        Err(StoreError::ReplicaTaken {
            replica: self.replica.clone(),
            key_id: holder,
        })
    }

    /// Records the digests of the configuration and policies this replica
    /// serves (at start and after each reload), with a heartbeat.
    pub fn report(&self, config_digest: &str, policy_digest: &str) -> Result<(), StoreError> {
        self.run(async {
            self.client()
                .await?
                .execute(
                    "UPDATE replicas SET config_digest = $2, policy_digest = $3, heartbeat_ms = $4 \
                     WHERE name = $1",
                    &[&self.replica, &config_digest, &policy_digest, &now_ms()],
                )
                .await
                .map(drop)
                .map_err(StoreError::postgres("reporting the replica's digests"))
        })
    }

    /// Says this replica is alive.
    pub fn heartbeat(&self) -> Result<(), StoreError> {
        self.run(async {
            self.client()
                .await?
                .execute(
                    "UPDATE replicas SET heartbeat_ms = $2 WHERE name = $1",
                    &[&self.replica, &now_ms()],
                )
                .await
                .map(drop)
                .map_err(StoreError::postgres("recording a heartbeat"))
        })
    }

    /// Every registered replica, by name.
    pub fn replicas(&self) -> Result<Vec<ReplicaStatus>, StoreError> {
        self.run(async {
            let rows = self
                .client()
                .await?
                .query(
                    "SELECT name, key_id, public_key, version, config_digest, policy_digest, \
                     started, heartbeat_ms FROM replicas ORDER BY name",
                    &[],
                )
                .await
                .map_err(StoreError::postgres("listing replicas"))?;
            Ok(rows
                .iter()
                .map(|row| ReplicaStatus {
                    name: row.get(0),
                    key_id: row.get(1),
                    public_key: row.get(2),
                    version: row.get(3),
                    config_digest: row.get(4),
                    policy_digest: row.get(5),
                    started: row.get(6),
                    heartbeat_ms: row.get(7),
                })
                .collect())
        })
    }
}
