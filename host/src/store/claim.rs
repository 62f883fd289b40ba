//! A server that keeps a state directory's agents in memory claims the
//! directory's database, so that nothing changes them behind its back.
//!
//! The claim is an advisory lock on a file beside the database
//! (`airlock.db-serving`): exclusive for the server, shared for the moment
//! any other store handle (another process's, or another handle in this
//! one) changes agents. A writer that finds the claim held is refused with
//! [`StoreError::Claimed`] instead of leaving the server's table stale. The
//! lock dies with its process, so a crashed server leaves nothing to clean
//! up.

use super::StoreError;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// The claim one store handle can hold on its database.
pub(crate) struct Claims {
    path: PathBuf,
    /// The lock while this handle holds it (held by the [`Claim`]s).
    held: Mutex<Weak<File>>,
}

/// This handle's claim on its database: released when the last clone of it
/// is dropped.
#[derive(Clone)]
pub struct Claim {
    _lock: Arc<File>,
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Claim")
    }
}

impl Claims {
    /// The claims on the database at `database`.
    pub(crate) fn new(database: &Path) -> Self {
        let mut path = database.as_os_str().to_owned();
        path.push("-serving");
        Self {
            path: path.into(),
            held: Mutex::new(Weak::new()),
        }
    }

    /// Claims the database for this handle (a second claim through the same
    /// handle shares the first); refused while anyone else holds it or is
    /// changing agents.
    pub(crate) fn claim(&self) -> Result<Claim, StoreError> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(lock) = held.upgrade() {
            return Ok(Claim { _lock: lock });
        }
        let file = self.open()?;
        self.locked(file.try_lock())?;
        let lock = Arc::new(file);
        *held = Arc::downgrade(&lock);
        Ok(Claim { _lock: lock })
    }

    /// Runs `change` if this handle holds the claim or nobody does (then
    /// holding the lock shared until `change` is done, so a server cannot
    /// claim the database halfway through it).
    pub(crate) fn unclaimed<R, E: From<StoreError>>(
        &self,
        change: impl FnOnce() -> Result<R, E>,
    ) -> Result<R, E> {
        let ours = self
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .upgrade();
        if ours.is_some() {
            return change();
        }
        let file = self.open()?;
        self.locked(file.try_lock_shared())?;
        change()
    }

    fn open(&self) -> Result<File, StoreError> {
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options
            .open(&self.path)
            .map_err(|source| StoreError::Directory {
                path: self.path.clone(),
                source,
            })
    }

    fn locked(&self, attempt: Result<(), TryLockError>) -> Result<(), StoreError> {
        match attempt {
            Ok(()) => Ok(()),
            Err(TryLockError::WouldBlock) => Err(StoreError::Claimed {
                path: self.path.clone(),
            }),
            Err(TryLockError::Error(source)) => Err(StoreError::Directory {
                path: self.path.clone(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_shuts_out_other_handles_until_it_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let database = dir.path().join("airlock.db");
        let (server, other) = (Claims::new(&database), Claims::new(&database));
        let claim = server.claim().expect("claimed");
        let again = server.claim().expect("the same handle shares its claim");
        assert!(matches!(other.claim(), Err(StoreError::Claimed { .. })));
        assert!(matches!(
            other.unclaimed(|| Ok(())),
            Err(StoreError::Claimed { .. })
        ));
        server
            .unclaimed(|| Ok::<_, StoreError>(()))
            .expect("the claiming handle changes freely");
        drop((claim, again));
        other
            .unclaimed(|| Ok::<_, StoreError>(()))
            .expect("nobody claims it now");
        let _theirs = other.claim().expect("free to claim");
        assert!(matches!(server.claim(), Err(StoreError::Claimed { .. })));
    }
}
