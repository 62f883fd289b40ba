//! Stand-ins for the persistence paths a writable workspace lacks.
//!
//! Bubblewrap keeps an existing persistence path read-only by binding it
//! over itself; a missing one would be free to create (a new `.envrc`, a
//! new `.git` with a `core.fsmonitor` command), and a bind needs something
//! to bind. So before a run each missing one gets an empty stand-in on the
//! host (a file or a directory), bound read-only like the rest: inside the
//! sandbox it can be neither written, nor renamed, nor replaced (it is a
//! mount point). After the run a stand-in is removed again, if it is still
//! empty and no other run of this process still binds it.
//!
//! Stand-ins are made and removed through the descriptor the workspace was
//! opened as for the run (see [`crate::pinned`]), never by path: a link
//! swapped in for the workspace leads them nowhere.

use crate::SandboxError;
use crate::pinned::Pinned;
use crate::plan::{Access, PERSISTENCE_PATHS, Plan};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

/// Stand-ins in use, by path, with how many runs bind them: two runs on
/// one workspace share a stand-in, and the last one out removes it.
static IN_USE: Mutex<Option<HashMap<PathBuf, usize>>> = Mutex::new(None);

/// One stand-in: its path (the key in [`IN_USE`]), its workspace's
/// descriptor and its name there, and whether it is a directory.
#[derive(Debug)]
struct StandIn {
    path: PathBuf,
    workspace: Arc<OwnedFd>,
    name: &'static str,
    dir: bool,
}

/// The stand-ins one run made or shares; released when dropped.
#[derive(Debug)]
pub(crate) struct StandIns {
    made: Vec<StandIn>,
}

fn failed(path: &std::path::Path, e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Spawn {
        detail: format!("making a read-only stand-in for `{}`: {e}", path.display()),
    }
}

impl StandIns {
    /// Makes a stand-in for every persistence path missing from `plan`'s
    /// writable mounts, each opened in `pinned`. A persistence path that is
    /// a symbolic link is refused: the bind would refuse it, and a dangling
    /// one could be written through.
    pub(crate) fn create(plan: &Plan, pinned: &Pinned) -> Result<Self, SandboxError> {
        // Declared before the lock, so that on an early return the lock is
        // released before `made` is dropped (its `Drop` takes the lock).
        let mut made = Self { made: Vec::new() };
        let mut in_use = IN_USE.lock().unwrap_or_else(PoisonError::into_inner);
        let in_use = in_use.get_or_insert_with(HashMap::new);
        let writable = plan.mounts.iter().filter(|m| m.access == Access::ReadWrite);
        for mount in writable {
            let Some(workspace) = pinned.shared(&mount.host) else {
                continue;
            };
            for persistent in PERSISTENCE_PATHS {
                let path = mount.host.join(persistent.path);
                let stand_in = |made: &mut Self| {
                    made.made.push(StandIn {
                        path: path.clone(),
                        workspace: Arc::clone(&workspace),
                        name: persistent.path,
                        dir: persistent.dir,
                    });
                };
                if let Some(count) = in_use.get_mut(&path) {
                    *count += 1;
                    stand_in(&mut made);
                    continue;
                }
                match rustix::fs::statat(&*workspace, persistent.path, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink => {
                        return Err(SandboxError::Unsupported {
                            detail: format!(
                                "`{}` is a symbolic link: airlock keeps persistence paths \
                                 read-only and cannot for a link; replace it with the file \
                                 or directory itself",
                                path.display()
                            ),
                        });
                    }
                    Ok(_) => continue,
                    Err(_) => {}
                }
                if persistent.dir {
                    rustix::fs::mkdirat(&*workspace, persistent.path, Mode::from_raw_mode(0o755))
                        .map_err(|e| failed(&path, e))?;
                } else {
                    rustix::fs::openat(
                        &*workspace,
                        persistent.path,
                        OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::WRONLY
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o644),
                    )
                    .map_err(|e| failed(&path, e))?;
                }
                in_use.insert(path.clone(), 1);
                stand_in(&mut made);
            }
        }
        Ok(made)
    }
}

impl Drop for StandIns {
    fn drop(&mut self) {
        let mut in_use = IN_USE.lock().unwrap_or_else(PoisonError::into_inner);
        let in_use = in_use.get_or_insert_with(HashMap::new);
        for stand_in in self.made.drain(..) {
            let Some(count) = in_use.get_mut(&stand_in.path) else {
                continue;
            };
            *count -= 1;
            if *count > 0 {
                continue;
            }
            in_use.remove(&stand_in.path);
            // Only what is still an empty stand-in goes: removing a
            // directory refuses a non-empty one, and a file is checked
            // first.
            let workspace = &*stand_in.workspace;
            let _ = if stand_in.dir {
                rustix::fs::unlinkat(workspace, stand_in.name, AtFlags::REMOVEDIR)
            } else if rustix::fs::statat(workspace, stand_in.name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|s| {
                    FileType::from_raw_mode(s.st_mode) == FileType::RegularFile && s.st_size == 0
                })
            {
                rustix::fs::unlinkat(workspace, stand_in.name, AtFlags::empty())
            } else {
                Ok(())
            };
        }
    }
}
