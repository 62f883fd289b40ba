//! The vault's rows in `<state-dir>/vault.db` (mode 0600), apart from the
//! journal. Values are only ever stored sealed.

use super::envelope::Envelope;
use super::rows::{Meta, PutError, Row, VaultRows, parse_scope};
use crate::store::{SqliteStore, StoreError};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};

const SCHEMA: &str = "
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

const COLUMNS: &str = "name, scope, created, nonce, ciphertext, key_nonce, wrapped_key";

/// A vault in one SQLite file.
#[derive(Debug)]
pub(crate) struct SqliteRows {
    store: SqliteStore,
    path: PathBuf,
}

impl SqliteRows {
    /// Opens (creating it private if needed) the vault file at `path`.
    pub(super) fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            store: SqliteStore::open_private(path, SCHEMA)?,
            path: path.to_path_buf(),
        })
    }
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
    Ok(Row {
        name,
        scope: parse_scope(&scope)?,
        created,
        envelope,
    })
}

fn all_on(conn: &Connection) -> Result<Vec<Row>, StoreError> {
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

fn put_on(tx: &Connection, row: &Row) -> Result<(), StoreError> {
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

fn meta_value(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    conn.query_row(
        "SELECT value FROM vault_meta WHERE key = ?1",
        params![key],
        |row| row.get(0),
    )
    .optional()
    .map_err(StoreError::sql("read vault meta"))
}

fn write_meta(tx: &Connection, meta: &Meta) -> Result<(), StoreError> {
    for (key, value) in meta.pairs() {
        tx.execute(
            "INSERT INTO vault_meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )
        .map_err(StoreError::sql("write vault meta"))?;
    }
    Ok(())
}

impl VaultRows for SqliteRows {
    fn place(&self) -> String {
        self.path.display().to_string()
    }

    fn meta(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.store.read(|conn| {
            let mut statement = conn
                .prepare("SELECT key, value FROM vault_meta")
                .map_err(StoreError::sql("read vault meta"))?;
            statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(StoreError::sql("read vault meta"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::sql("read vault meta"))
        })
    }

    fn create(&self, meta: &Meta) -> Result<bool, StoreError> {
        self.store.write("create the vault", |tx| {
            if meta_value(tx, "vault_id")?.is_some() {
                return Ok(false);
            }
            write_meta(tx, meta)?;
            Ok(true)
        })
    }

    fn get(&self, name: &str) -> Result<Option<Row>, StoreError> {
        let raw = self.store.read(|conn| {
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

    fn all(&self) -> Result<Vec<Row>, StoreError> {
        self.store.read(all_on)
    }

    fn put(&self, row: Row, key_id: &str) -> Result<(), PutError> {
        let refused = self.store.write("store a secret", |tx| {
            if meta_value(tx, "key_id")?.as_deref() != Some(key_id) {
                return Ok(Some(PutError::Rotated));
            }
            let existing: Option<(String, String)> = tx
                .query_row(
                    "SELECT scope, created FROM secrets WHERE name = ?1",
                    params![row.name],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(StoreError::sql("read a secret"))?;
            let created = match existing {
                Some((scope, _)) if scope != row.scope.to_string() => {
                    return Ok(Some(PutError::Scope(scope)));
                }
                Some((_, created)) => created,
                None => row.created.clone(),
            };
            put_on(tx, &Row { created, ..row })?;
            Ok(None)
        })?;
        refused.map_or(Ok(()), Err)
    }

    fn remove(&self, name: &str) -> Result<bool, StoreError> {
        self.store.write("remove a secret", |tx| {
            tx.execute("DELETE FROM secrets WHERE name = ?1", params![name])
                .map(|n| n > 0)
                .map_err(StoreError::sql("remove a secret"))
        })
    }

    fn rewrap(
        &self,
        rewrap: &dyn Fn(Row) -> Result<Row, StoreError>,
        meta: &Meta,
    ) -> Result<(), StoreError> {
        self.store.write("rotate the master key", |tx| {
            for row in all_on(tx)? {
                put_on(tx, &rewrap(row)?)?;
            }
            write_meta(tx, meta)
        })
    }
}
