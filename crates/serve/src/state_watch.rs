//! A server notices when its state directory goes away under it (removed,
//! or replaced by another directory of the same name): it could journal
//! nothing more there, and a server that cannot journal must not serve.
//! `airlock serve` stops with `state_dir_gone` instead of serving on.

use airlock::protected::{Identity, target_identity};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often the state directory is looked at: a stat call, so cheap; a
/// server whose directory vanished serves at most this long more.
pub const STATE_CHECK_EVERY: Duration = Duration::from_secs(2);

/// The state directory is not the one the server started with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the state directory {} was {how} while the server ran: nothing more can be journaled there, so the server stops; restart it (a new state directory starts a new journal)",
    path.display()
)]
pub struct StateDirGone {
    /// The directory.
    pub path: PathBuf,
    /// `removed` or `replaced by another directory`.
    pub how: &'static str,
}

impl StateDirGone {
    /// Stable reason code.
    pub fn code(&self) -> &'static str {
        "state_dir_gone"
    }
}

/// The state directory as the server found it at start.
#[derive(Clone, Debug)]
pub struct StateWatch {
    dir: PathBuf,
    first: Identity,
}

impl StateWatch {
    /// Remembers which directory `dir` names now.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            first: target_identity(dir),
        }
    }

    /// Whether `dir` still names the same directory.
    pub fn check(&self) -> Result<(), StateDirGone> {
        let now = target_identity(&self.dir);
        if now == self.first {
            return Ok(());
        }
        Err(StateDirGone {
            path: self.dir.clone(),
            how: if now.is_none() {
                "removed"
            } else {
                "replaced by another directory"
            },
        })
    }

    /// Resolves once the directory is removed or replaced.
    pub async fn gone(self) -> StateDirGone {
        let mut every = tokio::time::interval(STATE_CHECK_EVERY);
        loop {
            every.tick().await;
            if let Err(gone) = self.check() {
                return gone;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_or_replaced_directory_is_noticed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        std::fs::create_dir(&state).expect("state");
        let watch = StateWatch::new(&state);
        watch.check().expect("untouched");
        std::fs::write(state.join("airlock.db"), "").expect("a write inside");
        watch.check().expect("changes inside do not count");
        std::fs::remove_dir_all(&state).expect("remove");
        let gone = watch.check().expect_err("removed");
        assert_eq!(gone.how, "removed");
        assert_eq!(gone.code(), "state_dir_gone");
        assert!(
            gone.to_string().contains(&state.display().to_string()),
            "{gone}"
        );

        std::fs::create_dir(&state).expect("state");
        let watch = StateWatch::new(&state);
        std::fs::rename(&state, dir.path().join("old")).expect("move away");
        std::fs::create_dir(&state).expect("a new one of the same name");
        assert_eq!(
            watch.check().expect_err("replaced").how,
            "replaced by another directory"
        );
    }
}
