//! The vault's rows in `<state-dir>/vault.db`: one meta table (which
//! backend holds the master key, its generation and fingerprint) and one
//! row per sealed secret. Values are only ever stored sealed.

use super::envelope::Envelope;
use super::scope::SecretScope;
use crate::store::{SqliteStore, StoreError};
use rusqlite::{Connection, OptionalExtension, params};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS vault_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS secrets (
    name TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    created TEXT NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    key_nonce BLOB NOT NULL,
    wrapped_key BLOB NOT NULL
);
";

/// One stored secret, still sealed.
pub(crate) struct Row {
    pub name: String,
    pub scope: SecretScope,
    pub created: String,
    pub envelope: Envelope,
}

pub(crate) fn meta(store: &SqliteStore, key: &str) -> Result<Option<String>, StoreError> {
    store.read(|conn| {
        conn.query_row(
            "SELECT value FROM vault_meta WHERE key = ?1",
            params![key],
            |row| row.get(0),
        )
        .optional()
        .map_err(StoreError::sql("read vault meta"))
    })
}

pub(crate) fn set_meta(tx: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO vault_meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .map(drop)
    .map_err(StoreError::sql("write vault meta"))
}

fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, Envelope)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        Envelope {
            nonce: row.get(3)?,
            ciphertext: row.get(4)?,
            key_nonce: row.get(5)?,
            wrapped_key: row.get(6)?,
        },
    ))
}

fn parse(raw: (String, String, String, Envelope)) -> Result<Row, StoreError> {
    let (name, scope, created, envelope) = raw;
    let scope = scope
        .parse()
        .map_err(|e: super::scope::SecretScopeError| StoreError::Corrupt {
            what: "secret scope",
            detail: e.to_string(),
        })?;
    Ok(Row {
        name,
        scope,
        created,
        envelope,
    })
}

const COLUMNS: &str = "name, scope, created, nonce, ciphertext, key_nonce, wrapped_key";

pub(crate) fn get(store: &SqliteStore, name: &str) -> Result<Option<Row>, StoreError> {
    let raw = store.read(|conn| {
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM secrets WHERE name = ?1"),
            params![name],
            row,
        )
        .optional()
        .map_err(StoreError::sql("read a secret"))
    })?;
    raw.map(parse).transpose()
}

/// Every secret, by name; works inside a write transaction too.
pub(crate) fn all_on(conn: &Connection) -> Result<Vec<Row>, StoreError> {
    let mut statement = conn
        .prepare(&format!("SELECT {COLUMNS} FROM secrets ORDER BY name"))
        .map_err(StoreError::sql("list secrets"))?;
    let rows = statement
        .query_map([], row)
        .map_err(StoreError::sql("list secrets"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sql("list secrets"))?;
    rows.into_iter().map(parse).collect()
}

pub(crate) fn all(store: &SqliteStore) -> Result<Vec<Row>, StoreError> {
    store.read(all_on)
}

pub(crate) fn put(tx: &Connection, row: &Row) -> Result<(), StoreError> {
    tx.execute(
        &format!(
            "INSERT INTO secrets ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (name) DO UPDATE SET scope = excluded.scope, nonce = excluded.nonce,
               ciphertext = excluded.ciphertext, key_nonce = excluded.key_nonce,
               wrapped_key = excluded.wrapped_key"
        ),
        params![
            row.name,
            row.scope.to_string(),
            row.created,
            row.envelope.nonce,
            row.envelope.ciphertext,
            row.envelope.key_nonce,
            row.envelope.wrapped_key,
        ],
    )
    .map(drop)
    .map_err(StoreError::sql("store a secret"))
}

pub(crate) fn remove(store: &SqliteStore, name: &str) -> Result<bool, StoreError> {
    store.write("remove a secret", |tx| {
        tx.execute("DELETE FROM secrets WHERE name = ?1", params![name])
            .map(|n| n > 0)
            .map_err(StoreError::sql("remove a secret"))
    })
}
