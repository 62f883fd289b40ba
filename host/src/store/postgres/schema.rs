//! The shared database's schema, versioned: each migration runs once, in
//! order, in one transaction that also records the new version. Replicas
//! starting together serialise on an advisory lock; a database migrated
//! by a newer airlock is refused, never written.

use crate::store::StoreError;
use tokio_postgres::Client;

/// An arbitrary constant naming airlock's migration lock.
const MIGRATION_LOCK: i64 = 0x0061_6972_6c6f_636b;

/// The migrations, oldest first: the schema's version is how many ran.
const MIGRATIONS: &[&str] = &[V1, V2, crate::store::SERVER_PINS, V4];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

const V1: &str = "
CREATE TABLE replicas (
    name TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    public_key TEXT NOT NULL,
    version TEXT NOT NULL DEFAULT '',
    config_digest TEXT NOT NULL DEFAULT '',
    policy_digest TEXT NOT NULL DEFAULT '',
    started TEXT NOT NULL DEFAULT '',
    heartbeat_ms BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE journal (
    replica TEXT NOT NULL REFERENCES replicas (name),
    seq BIGINT NOT NULL,
    time TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    attestation TEXT,
    PRIMARY KEY (replica, seq)
);
CREATE INDEX journal_attestation ON journal (attestation) WHERE attestation IS NOT NULL;
CREATE INDEX journal_kind ON journal (replica, kind, seq);
CREATE INDEX journal_time ON journal (time);
CREATE TABLE journal_heads (
    replica TEXT NOT NULL REFERENCES replicas (name),
    size BIGINT NOT NULL,
    time TEXT NOT NULL,
    root TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    frontier TEXT NOT NULL,
    PRIMARY KEY (replica, size)
);
CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    status TEXT NOT NULL,
    principal TEXT NOT NULL,
    session_id TEXT NOT NULL,
    tool_name TEXT NOT NULL,
    tool_sha256 TEXT NOT NULL,
    capabilities TEXT NOT NULL,
    grant_summary TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    input_summary TEXT NOT NULL,
    scope TEXT,
    expires_at BIGINT,
    decided_at TEXT,
    reason TEXT,
    used BOOLEAN NOT NULL DEFAULT FALSE,
    decided_by TEXT,
    grant_digest TEXT NOT NULL,
    input TEXT NOT NULL,
    replica TEXT NOT NULL
);
-- Two replicas asking for the same request at once share one approval.
CREATE UNIQUE INDEX approvals_one_pending ON approvals (request_hash, grant_digest)
    WHERE status = 'pending';
CREATE INDEX approvals_request ON approvals (request_hash, status);
CREATE INDEX approvals_tool ON approvals (tool_sha256, principal, status);
CREATE TABLE agents (
    name TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL
);
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    operator TEXT NOT NULL,
    label TEXT NOT NULL,
    cookie_sha256 TEXT NOT NULL UNIQUE,
    paired TEXT NOT NULL,
    last_seen TEXT,
    revoked TEXT,
    revoked_by TEXT
);
";

/// The shared vault: sealed secrets only (values never leave the host
/// unsealed), and which passphrase-derived key seals them.
const V2: &str = "
CREATE TABLE vault_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE vault_secrets (
    name TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    created TEXT NOT NULL,
    nonce BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    key_nonce BYTEA NOT NULL,
    wrapped_key BYTEA NOT NULL
);
";

/// Each replica's signed statement of what it is and serves (`[fleet]`).
const V4: &str = "
CREATE TABLE replica_statements (
    replica TEXT PRIMARY KEY REFERENCES replicas (name),
    statement TEXT NOT NULL,
    signature TEXT NOT NULL,
    published TEXT NOT NULL
);
";

/// Brings the database up to [`SCHEMA_VERSION`], or refuses one that is
/// newer.
pub(crate) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let action = "migrating the shared database";
    let failed = StoreError::postgres(action);
    let tx = client.transaction().await.map_err(&failed)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(&failed)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS airlock_schema (version INTEGER NOT NULL)")
        .await
        .map_err(&failed)?;
    let found: Option<i32> = tx
        .query_opt("SELECT version FROM airlock_schema", &[])
        .await
        .map_err(&failed)?
        .map(|row| row.get(0));
    let found = found.unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for migration in &MIGRATIONS[usize::try_from(found).unwrap_or(0)..] {
        tx.batch_execute(migration).await.map_err(&failed)?;
    }
    tx.execute("DELETE FROM airlock_schema", &[])
        .await
        .map_err(&failed)?;
    tx.execute(
        "INSERT INTO airlock_schema (version) VALUES ($1)",
        &[&SCHEMA_VERSION],
    )
    .await
    .map_err(&failed)?;
    tx.commit().await.map_err(&failed)
}
