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

use crate::SandboxError;
use crate::plan::{Access, PERSISTENCE_PATHS, Plan};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

/// Stand-ins in use, by path, with how many runs bind them: two runs on
/// one workspace share a stand-in, and the last one out removes it.
static IN_USE: Mutex<Option<HashMap<PathBuf, usize>>> = Mutex::new(None);

/// The stand-ins one run made or shares; released when dropped.
#[derive(Debug)]
pub(crate) struct StandIns {
    paths: Vec<(PathBuf, bool)>,
}

impl StandIns {
    /// Makes a stand-in for every persistence path missing from `plan`'s
    /// writable mounts. A persistence path that is a symbolic link is
    /// refused: the bind would follow it, and a dangling one could be
    /// written through.
    pub(crate) fn create(plan: &Plan) -> Result<Self, SandboxError> {
        // Declared before the lock, so that on an early return the lock is
        // released before `made` is dropped (its `Drop` takes the lock).
        let mut made = Self { paths: Vec::new() };
        let mut in_use = IN_USE.lock().unwrap_or_else(PoisonError::into_inner);
        let in_use = in_use.get_or_insert_with(HashMap::new);
        let writable = plan.mounts.iter().filter(|m| m.access == Access::ReadWrite);
        for mount in writable {
            for persistent in PERSISTENCE_PATHS {
                let path = mount.host.join(persistent.path);
                if let Some(count) = in_use.get_mut(&path) {
                    *count += 1;
                    made.paths.push((path, persistent.dir));
                    continue;
                }
                match std::fs::symlink_metadata(&path) {
                    Ok(meta) if meta.file_type().is_symlink() => {
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
                let created = if persistent.dir {
                    std::fs::create_dir(&path)
                } else {
                    std::fs::File::create_new(&path).map(drop)
                };
                created.map_err(|e| SandboxError::Spawn {
                    detail: format!("making a read-only stand-in for `{}`: {e}", path.display()),
                })?;
                in_use.insert(path.clone(), 1);
                made.paths.push((path, persistent.dir));
            }
        }
        Ok(made)
    }
}

impl Drop for StandIns {
    fn drop(&mut self) {
        let mut in_use = IN_USE.lock().unwrap_or_else(PoisonError::into_inner);
        let in_use = in_use.get_or_insert_with(HashMap::new);
        for (path, dir) in self.paths.drain(..) {
            let Some(count) = in_use.get_mut(&path) else {
                continue;
            };
            *count -= 1;
            if *count > 0 {
                continue;
            }
            in_use.remove(&path);
            // Only what is still an empty stand-in goes: remove_dir refuses
            // a non-empty directory, and a file is checked first.
            let _ = if dir {
                std::fs::remove_dir(&path)
            } else if std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == 0) {
                std::fs::remove_file(&path)
            } else {
                Ok(())
            };
        }
    }
}
