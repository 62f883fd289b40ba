//! [`SqliteStore`]: the embedded store, one SQLite database (WAL) in the
//! state directory.

use super::claim::Claims;
use super::sql::Mode;
use super::{StoreError, private_dir};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The database file name inside the state directory.
pub const DATABASE_FILE: &str = "airlock.db";

/// How long a writer waits for another process holding the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS journal_heads (
    size INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    root TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    frontier TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS approvals (
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
    expires_at INTEGER,
    decided_at TEXT,
    reason TEXT,
    used INTEGER NOT NULL DEFAULT 0,
    decided_by TEXT,
    grant_digest TEXT NOT NULL DEFAULT '',
    input TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS agents (
    name TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    operator TEXT NOT NULL,
    label TEXT NOT NULL,
    cookie_sha256 TEXT NOT NULL UNIQUE,
    paired TEXT NOT NULL,
    last_seen TEXT,
    revoked TEXT,
    revoked_by TEXT
);
CREATE INDEX IF NOT EXISTS approvals_request ON approvals (request_hash, status);
CREATE INDEX IF NOT EXISTS approvals_tool ON approvals (tool_sha256, principal, status);
";

/// The SQLite database of one state directory.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    /// A serving handle's claim, which keeps other writers off its agents.
    pub(crate) claims: Claims,
    /// Moves whenever an agent is added or removed through this handle.
    pub(crate) agents_generation: AtomicU64,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `<state_dir>/airlock.db`; the directory is
    /// made owner-only.
    pub(crate) fn open_in(state_dir: &Path) -> Result<Self, StoreError> {
        private_dir(state_dir)?;
        Self::open(&state_dir.join(DATABASE_FILE))
    }

    /// Opens (creating if needed) the database at `path`, owner-only, and
    /// brings an older one up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let store = Self::open_private(path, SCHEMA)?;
        store.migrate()?;
        Ok(store)
    }

    /// Tables and columns added since the first release, added to older
    /// databases.
    /// Approvals from before `grant_digest` keep an empty one, which no
    /// grant has: they still show, but cover nothing (fail closed).
    fn migrate(&self) -> Result<(), StoreError> {
        const ADDED: [(&str, &str); 4] = [
            ("decided_by", "decided_by TEXT"),
            ("grant_digest", "grant_digest TEXT NOT NULL DEFAULT ''"),
            ("input", "input TEXT NOT NULL DEFAULT ''"),
            // Who asked, in a shared database; always empty here.
            ("replica", "replica TEXT NOT NULL DEFAULT ''"),
        ];
        self.write("upgrading the database", |tx| {
            tx.execute_batch(super::SERVER_PINS)
                .map_err(StoreError::sql("upgrading the database"))?;
            for (column, definition) in ADDED {
                let present: bool = tx
                    .query_row(
                        "SELECT COUNT(*) FROM pragma_table_info('approvals') WHERE name = ?1",
                        [column],
                        |row| row.get::<_, i64>(0),
                    )
                    .map_err(StoreError::sql("upgrading the database"))?
                    > 0;
                if !present {
                    tx.execute(
                        &format!("ALTER TABLE approvals ADD COLUMN {definition}"),
                        [],
                    )
                    .map_err(StoreError::sql("upgrading the database"))?;
                }
            }
            Ok(())
        })
    }

    /// Opens (creating if needed) a database at `path` readable by its
    /// owner only, with its own `schema`: the vault keeps its secrets in
    /// such a file, apart from the journal.
    pub(crate) fn open_private(path: &Path, schema: &str) -> Result<Self, StoreError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            let created = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path);
            match created {
                Ok(_) => {}
                // An older file may have been created under a lax umask.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                        .map_err(|source| StoreError::Directory {
                            path: path.to_path_buf(),
                            source,
                        })?;
                }
                Err(source) => {
                    return Err(StoreError::Directory {
                        path: path.to_path_buf(),
                        source,
                    });
                }
            }
        }
        Self::open_with(path, schema)
    }

    fn open_with(path: &Path, schema: &str) -> Result<Self, StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        // Every domain's statements stay prepared (the default keeps 16).
        conn.set_prepared_statement_cache_capacity(64);
        // WAL: readers do not block the writer; NORMAL: a commit survives a
        // crash of this process (kill -9), which is the promise made here.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_error)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_error)?;
        conn.execute_batch(schema).map_err(open_error)?;
        Ok(Self {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            claims: Claims::new(path),
            agents_generation: AtomicU64::new(0),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the connection in one transaction held as `mode`
    /// says; a write is taken at once (`BEGIN IMMEDIATE`), so concurrent
    /// processes serialise instead of failing late. Rolled back unless
    /// `work` succeeds (on an error, or if it panics). `BEGIN` and
    /// `COMMIT` are cached statements: parsing them anew was a third of a
    /// journal append.
    pub(super) fn held<T, E: From<StoreError>>(
        &self,
        action: &'static str,
        mode: Mode,
        work: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let run = |sql: &str| {
            conn.prepare_cached(sql)
                .and_then(|mut statement| statement.execute([]))
                .map(drop)
                .map_err(StoreError::sql(action))
        };
        let open = match mode {
            Mode::Read => None,
            Mode::Snapshot => {
                run("BEGIN")?;
                Some(Open(&conn))
            }
            Mode::Write => {
                run("BEGIN IMMEDIATE")?;
                Some(Open(&conn))
            }
        };
        let result = work(&conn)?;
        if let Some(open) = open {
            run("COMMIT")?;
            std::mem::forget(open);
        }
        Ok(result)
    }

    /// Runs `work` in one write transaction ([`SqliteStore::held`]).
    pub(crate) fn write<R>(
        &self,
        action: &'static str,
        work: impl FnOnce(&Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.held(action, Mode::Write, work)
    }

    /// Runs a read-only query.
    pub(crate) fn read<R>(
        &self,
        work: impl FnOnce(&Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.held("reading the database", Mode::Read, work)
    }
}

/// An open transaction, rolled back when dropped.
struct Open<'a>(&'a Connection);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if let Err(error) = self.0.execute_batch("ROLLBACK") {
            tracing::warn!(%error, "rolling back a failed write");
        }
    }
}
