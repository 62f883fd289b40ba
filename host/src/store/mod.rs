//! Where a host keeps its state: the journal (entries and signed tree
//! heads), the approvals, and the agents and paired devices of `airlock
//! serve`.
//!
//! - [`SqliteStore`]: the embedded default, one SQLite database (WAL) in
//!   the state directory. Survives restarts and `kill -9`: a commit is in
//!   the write-ahead log before the call returns.
//! - [`PostgresStore`]: one PostgreSQL database shared by replicas
//!   (`store = "postgres://…"`, see [`location`]), each replica keeping
//!   its own journal in it.
//!
//! This module knows connections, schemas and replicas, no domain: the
//! journal, approvals, vault and `serve`'s agents and devices each keep
//! their rows in either backend through their own traits
//! ([`JournalStore`](crate::journal::JournalStore),
//! [`ApprovalStore`](crate::approvals::ApprovalStore), …).

mod claim;
pub mod location;
pub mod postgres;
pub mod sql;
mod sqlite;
mod sqlite_tx;

pub use claim::Claim;

pub use location::{PasswordSource, PostgresSettings, StoreLocation, StoreLocationError};
pub use postgres::PostgresStore;
pub use sqlite::{DATABASE_FILE, SqliteStore};

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file in a state directory whose journal lives in a shared database.
pub(crate) const SHARED_MARKER: &str = "shared-store";

/// The shared database a state directory's server uses, as its marker
/// file names it (`None` for the directory's own SQLite database).
pub fn shared_marker(state_dir: &Path) -> Option<String> {
    std::fs::read_to_string(state_dir.join(SHARED_MARKER))
        .ok()
        .map(|text| text.lines().next().unwrap_or_default().to_string())
}

/// An opened store, whichever backend: what a host journals to and keeps
/// approvals in, and where `airlock serve` keeps its agents and devices.
#[derive(Clone, Debug)]
pub enum Store {
    /// The state directory's SQLite database.
    Sqlite(Arc<SqliteStore>),
    /// The database shared by replicas.
    Postgres(Arc<PostgresStore>),
}

impl Store {
    /// Opens the store `location` names: SQLite in `state_dir`, or the
    /// shared database, registering this replica with its journal `key`.
    pub fn open(
        location: &StoreLocation,
        state_dir: &Path,
        key: &ed25519_dalek::VerifyingKey,
    ) -> Result<Self, StoreError> {
        Ok(match location {
            StoreLocation::Sqlite => Store::in_state_dir(state_dir)?,
            StoreLocation::Postgres(settings) => {
                Store::Postgres(Arc::new(PostgresStore::open(settings, key)?))
            }
        })
    }

    /// The state directory's own SQLite database (created on first use),
    /// as [`Store::open`] opens it for [`StoreLocation::Sqlite`].
    pub fn in_state_dir(state_dir: &Path) -> Result<Self, StoreError> {
        Ok(Store::Sqlite(Arc::new(SqliteStore::open_in(state_dir)?)))
    }

    /// Notes in `state_dir` where its journal and approvals are: with a
    /// shared store, a file naming the database, so that a command run
    /// on this state directory while no replica answers refuses rather
    /// than read the directory's own (stale or empty) database.
    pub fn mark(&self, state_dir: &Path) -> Result<(), StoreError> {
        let marker = state_dir.join(SHARED_MARKER);
        let written = match self {
            Store::Sqlite(_) => match std::fs::remove_file(&marker) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
            Store::Postgres(store) => std::fs::write(
                &marker,
                format!("{}\nreplica {}\n", store.describe(), store.replica()),
            ),
        };
        written.map_err(|source| StoreError::Directory {
            path: marker,
            source,
        })
    }

    /// `sqlite`, or the shared database and this replica's name, as
    /// [`StoreLocation::describe`] names the configured one.
    pub fn describe(&self) -> String {
        match self {
            Store::Sqlite(_) => "sqlite".to_string(),
            Store::Postgres(store) => location::shared_label(store.describe(), store.replica()),
        }
    }

    /// The shared database, if this is one.
    pub fn shared(&self) -> Option<&Arc<PostgresStore>> {
        match self {
            Store::Sqlite(_) => None,
            Store::Postgres(store) => Some(store),
        }
    }

    /// Runs `work` in one transaction held as `mode` says, on whichever
    /// backend: the one way a domain reads and changes its rows.
    pub fn transaction<T, E: From<StoreError>>(
        &self,
        action: &'static str,
        mode: sql::Mode,
        work: impl FnOnce(&mut dyn sql::Tx) -> Result<T, E>,
    ) -> Result<T, E> {
        match self {
            Store::Sqlite(store) => store.transaction(action, mode, work),
            Store::Postgres(store) => store.transaction(action, mode, work),
        }
    }

    /// [`Store::transaction`] for a change that a serving handle's claim
    /// keeps off: refused ([`StoreError::Claimed`]) while another handle
    /// claims this state directory's database. Replicas of a shared
    /// database claim nothing: each hears every change.
    pub fn change_unclaimed<T, E: From<StoreError>>(
        &self,
        action: &'static str,
        work: impl FnOnce(&mut dyn sql::Tx) -> Result<T, E>,
    ) -> Result<T, E> {
        match self {
            Store::Sqlite(store) => store
                .claims
                .unclaimed(|| store.transaction(action, sql::Mode::Write, work)),
            Store::Postgres(store) => store.transaction(action, sql::Mode::Write, work),
        }
    }

    /// Claims this handle's database for as long as the [`Claim`] is held,
    /// so that no other handle changes what it follows unseen (`None` for
    /// a shared database, whose replicas hear every change).
    pub fn claim(&self) -> Result<Option<Claim>, StoreError> {
        match self {
            Store::Sqlite(store) => store.claims.claim().map(Some),
            Store::Postgres(_) => Ok(None),
        }
    }

    /// A number that moves whenever a transaction through a handle that
    /// can be heard notified `topic`: for a state directory's database,
    /// this handle's own changes (valid while it holds its [`Claim`]);
    /// for a shared one, every replica's, while its listener hears them.
    pub fn generation(&self, topic: sql::Topic) -> Option<u64> {
        match (self, topic) {
            (Store::Sqlite(store), sql::Topic::Agents) => Some(
                store
                    .agents_generation
                    .load(std::sync::atomic::Ordering::Acquire),
            ),
            (Store::Postgres(store), sql::Topic::Agents) => store.agents_generation(),
            (_, sql::Topic::Approvals) => None,
        }
    }
}

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be opened or prepared.
    #[error("cannot open the state database {}: {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The state directory (or a private database file) could not be created.
    #[error("cannot create {}: {source}", path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A query failed.
    #[error("state database: {action} failed: {source}")]
    Sql {
        /// What was being done.
        action: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A group of journal entries was not committed (the cause is the
    /// group's, told to each caller in it), or the writer stopped.
    #[error("state database: committing journal entries failed: {detail}")]
    Writer {
        /// Why.
        detail: String,
    },
    /// A transaction went on past a statement that failed in it, so the
    /// database rolled it back: nothing of it was stored.
    #[error("shared database: {action} was rolled back: a statement in it failed")]
    Aborted {
        /// What was being done.
        action: &'static str,
    },
    /// A stored value does not parse.
    #[error("state database holds an unreadable {what}: {detail}")]
    Corrupt {
        /// What kind of value.
        what: &'static str,
        /// Why it does not parse.
        detail: String,
    },
    /// A query on the shared database failed.
    #[error("shared database: {action} failed: {}", postgres::detail(source))]
    Postgres {
        /// What was being done.
        action: &'static str,
        /// The driver's error (it never holds the password).
        source: tokio_postgres::Error,
    },
    /// No connection to the shared database could be had.
    #[error("shared database unreachable: {detail}")]
    Pool {
        /// Why (the database named, never the password).
        detail: String,
    },
    /// The shared database was migrated by a newer airlock.
    #[error(
        "the shared database has schema version {found}, newer than the {known} this airlock knows: upgrade this replica before starting it"
    )]
    SchemaTooNew {
        /// The database's version.
        found: i32,
        /// This binary's.
        known: i32,
    },
    /// The database password could not be read.
    #[error("the shared database's password: {detail}")]
    Password {
        /// Where it was looked for and why it was not there.
        detail: String,
    },
    /// The TLS set-up for the shared database failed.
    #[error("TLS to the shared database: {detail}")]
    Tls {
        /// Why.
        detail: String,
    },
    /// Another replica (another key) already writes under this name.
    #[error(
        "replica name `{replica}` is taken by another replica (key {key_id}) in the shared database: give this one its own name ([postgres] replica)"
    )]
    ReplicaTaken {
        /// The name.
        replica: String,
        /// The key it belongs to.
        key_id: String,
    },
    /// The store's own runtime could not start.
    #[error("cannot start the shared database's runtime: {source}")]
    Runtime {
        /// The I/O error.
        source: std::io::Error,
    },
    /// A running server keeps this database's agents in memory, so only it
    /// may change them (or another server would share the database).
    #[error(
        "a running `airlock serve` owns this state directory ({} is locked): change agents through its operator socket (`--socket PATH` when it is not in the state directory), or stop it first",
        path.display()
    )]
    Claimed {
        /// The lock file.
        path: PathBuf,
    },
}

impl StoreError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Claimed { .. } => "state_in_use",
            _ => "store_failed",
        }
    }

    pub(crate) fn sql(action: &'static str) -> impl FnOnce(rusqlite::Error) -> Self {
        move |source| StoreError::Sql { action, source }
    }

    pub(crate) fn postgres(action: &'static str) -> impl Fn(tokio_postgres::Error) -> Self {
        move |source| StoreError::Postgres { action, source }
    }
}

/// Hosted servers' pinned programs and tool definitions, and the changes
/// that wait for an operator: the same tables in either backend (SQLite
/// creates them when it opens; they are the shared database's third
/// migration).
pub(crate) const SERVER_PINS: &str = "
CREATE TABLE IF NOT EXISTS server_pins (
    server TEXT NOT NULL,
    subject TEXT NOT NULL,
    digest TEXT NOT NULL,
    definition TEXT NOT NULL,
    pinned TEXT NOT NULL,
    PRIMARY KEY (server, subject)
);
CREATE TABLE IF NOT EXISTS server_changes (
    id TEXT PRIMARY KEY,
    server TEXT NOT NULL,
    subject TEXT NOT NULL,
    old_digest TEXT NOT NULL,
    old_definition TEXT NOT NULL,
    new_digest TEXT NOT NULL,
    new_definition TEXT NOT NULL,
    status TEXT NOT NULL,
    seen TEXT NOT NULL,
    decided_at TEXT,
    decided_by TEXT
);
-- A change is asked once: pending until decided, and a rejected one is
-- not asked again while the pin it would replace stands.
CREATE UNIQUE INDEX IF NOT EXISTS server_changes_asked
    ON server_changes (server, subject, old_digest, new_digest)
    WHERE status IN ('pending', 'rejected');
";

/// Creates `dir` (and its parents) if missing and makes it owner-only
/// (0700 on Unix, whatever the umask): a state directory holds the host
/// key, the vault, approvals with their inputs, and the operator socket.
pub fn private_dir(dir: &Path) -> Result<(), StoreError> {
    let failed = |source| StoreError::Directory {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(failed)?;
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn state_is_private_whatever_it_was_created_with() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        std::fs::create_dir(&state).expect("state");
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let db = state.join(DATABASE_FILE);
        std::fs::write(&db, b"").expect("an empty database made under a lax umask");
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");

        SqliteStore::open_in(&state).expect("opens");
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&db), 0o600);
    }
}
