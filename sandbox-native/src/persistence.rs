//! Stand-ins for the persistence paths a writable workspace lacks.
//!
//! Bubblewrap keeps an existing persistence path read-only by binding it
//! over itself; a missing one would be free to create (a new `.envrc`, a
//! new `.git` with a `core.fsmonitor` command), and a bind needs something
//! to bind. So before a run each missing one gets an empty stand-in on the
//! host (a file or a directory), bound read-only like the rest: inside the
//! sandbox it can be neither written, nor renamed, nor replaced (it is a
//! mount point).
//!
//! After the run the stand-ins go again, but only when no other run (of
//! any airlock process of this user) is using the workspace: removing a
//! file another sandbox has bound over would unmount it there and let that
//! sandbox create it. Every run holds a shared `flock` on the workspace's
//! *record*, a file in a directory only this user may enter and no sandbox
//! shows (a lock on the workspace itself could be held by any tool that
//! sees it, stalling every run). The record lists the stand-ins made; the
//! last run out takes the lock exclusively and removes every listed one
//! that is still an empty stand-in, whoever made it.
//!
//! Stand-ins are made and removed through the descriptor the workspace was
//! opened as for the run (see [`crate::pinned`]), never by path: a link
//! swapped in for the workspace leads them nowhere.

use crate::SandboxError;
use crate::pinned::Pinned;
use crate::plan::{Access, PERSISTENCE_PATHS, Plan};
use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One writable workspace of a run: its descriptor, and its record, share-
/// locked for the run.
#[derive(Debug)]
struct Workspace {
    fd: Arc<OwnedFd>,
    identity: (u64, u64),
    record: OwnedFd,
}

/// The workspaces one run holds; their stand-ins are removed when it is
/// dropped, if it is the last run using them.
#[derive(Debug)]
pub(crate) struct StandIns {
    workspaces: Vec<Workspace>,
}

fn failed(path: &Path, e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Spawn {
        detail: format!("making a read-only stand-in for `{}`: {e}", path.display()),
    }
}

/// The directory the records are kept in, the first of these that is (or
/// can be made) this user's alone: `$XDG_RUNTIME_DIR/airlock-sandbox`
/// (never shown to a sandbox), `airlock-sandbox-EUID` in the temporary
/// directory, then in `/dev/shm` (for a machine whose `/tmp` only root may
/// write).
fn records_dir() -> Result<OwnedFd, SandboxError> {
    use std::os::unix::fs::MetadataExt;
    let euid = rustix::process::geteuid().as_raw();
    // Another user's (an environment kept across `sudo -u`) is not used.
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .filter(|dir| std::fs::metadata(dir).is_ok_and(|m| m.is_dir() && m.uid() == euid));
    let name = format!("airlock-sandbox-{euid}");
    let candidates = runtime
        .map(|dir| dir.join("airlock-sandbox"))
        .into_iter()
        .chain([
            std::env::temp_dir().join(&name),
            Path::new("/dev/shm").join(&name),
        ]);
    let mut refused = None;
    for candidate in candidates {
        match private_dir(&candidate) {
            Ok(dir) => return Ok(dir),
            Err(error) => refused = Some(error),
        }
    }
    Err(refused.unwrap_or_else(|| SandboxError::Spawn {
        detail: "no directory to keep stand-in records in".into(),
    }))
}

/// Directory `path`, made if missing, opened only if it is this user's
/// alone.
fn private_dir(path: &Path) -> Result<OwnedFd, SandboxError> {
    let euid = rustix::process::geteuid();
    let refused = |why: String| SandboxError::Spawn {
        detail: format!(
            "`{}` keeps which stand-ins runs made, and {why}: remove it, and airlock \
             makes it again as its own",
            path.display()
        ),
    };
    match rustix::fs::mkdir(path, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(refused(format!("cannot be made ({e})"))),
    }
    let dir = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| refused(format!("cannot be opened ({e})")))?;
    let stat = rustix::fs::fstat(&dir).map_err(|e| refused(e.to_string()))?;
    if stat.st_uid != euid.as_raw() || stat.st_mode & 0o077 != 0 {
        return Err(refused(
            "is not this user's alone (its owner or mode let others in)".into(),
        ));
    }
    Ok(dir)
}

/// The record of the workspace with `identity`, share-locked. The only
/// ones who take it exclusively are runs removing their stand-ins, briefly.
fn share_locked(records: &OwnedFd, identity: (u64, u64)) -> rustix::io::Result<OwnedFd> {
    let record = rustix::fs::openat(
        records,
        format!("{:x}-{:x}", identity.0, identity.1),
        OFlags::RDWR | OFlags::CREATE | OFlags::APPEND | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )?;
    rustix::fs::flock(&record, FlockOperation::LockShared)?;
    Ok(record)
}

impl StandIns {
    /// Makes a stand-in for every persistence path missing from `plan`'s
    /// writable mounts, each opened in `pinned`, and records it. A
    /// persistence path that is a symbolic link is refused: the bind would
    /// refuse it, and a dangling one could be written through.
    pub(crate) fn create(plan: &Plan, pinned: &Pinned) -> Result<Self, SandboxError> {
        let mut made = Self {
            workspaces: Vec::new(),
        };
        let writable = plan.mounts.iter().filter(|m| m.access == Access::ReadWrite);
        let mut records = None;
        for mount in writable {
            let Some(fd) = pinned.shared(&mount.host) else {
                continue;
            };
            let stat = rustix::fs::fstat(&*fd).map_err(|e| failed(&mount.host, e))?;
            let identity = (stat.st_dev, stat.st_ino);
            if made.workspaces.iter().any(|w| w.identity == identity) {
                continue;
            }
            let records = match &records {
                Some(records) => records,
                None => records.insert(records_dir()?),
            };
            let record = share_locked(records, identity).map_err(|e| failed(&mount.host, e))?;
            // Held from here, so that on an error the stand-ins made so far
            // are removed again.
            made.workspaces.push(Workspace {
                fd,
                identity,
                record,
            });
            if let Some(workspace) = made.workspaces.last() {
                make_missing(&mount.host, workspace)?;
            }
        }
        Ok(made)
    }
}

/// Makes the missing persistence paths of the workspace at `host`,
/// recording each. One another run made meanwhile is used as it is.
fn make_missing(host: &Path, workspace: &Workspace) -> Result<(), SandboxError> {
    for persistent in PERSISTENCE_PATHS {
        let path = host.join(persistent.path);
        let dir = &*workspace.fd;
        match rustix::fs::statat(dir, persistent.path, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink => {
                return Err(SandboxError::Unsupported {
                    detail: format!(
                        "`{}` is a symbolic link: airlock keeps persistence paths \
                         read-only and cannot for a link; replace it with the file \
                         or directory itself, or grant a directory without it",
                        path.display()
                    ),
                });
            }
            Ok(_) => continue,
            Err(_) => {}
        }
        let result = if persistent.dir {
            rustix::fs::mkdirat(dir, persistent.path, Mode::from_raw_mode(0o755))
        } else {
            rustix::fs::openat(
                dir,
                persistent.path,
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            )
            .map(drop)
        };
        match result {
            Ok(()) => {
                let line = format!("{}\n", persistent.path);
                rustix::io::write(&workspace.record, line.as_bytes())
                    .map_err(|e| failed(&path, e))?;
            }
            Err(Errno::EXIST) => {}
            Err(e) => return Err(failed(&path, e)),
        }
    }
    Ok(())
}

/// Removes what `record` lists, where it is still an empty stand-in, and
/// empties the record. Only names on the persistence list are touched,
/// whatever the record says.
fn remove_recorded(workspace: &OwnedFd, record: &OwnedFd) {
    let mut text = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut offset = 0;
    while let Ok(read @ 1..) = rustix::io::pread(record, &mut chunk, offset) {
        text.extend_from_slice(&chunk[..read]);
        offset += read as u64;
    }
    let text = String::from_utf8_lossy(&text);
    let listed = PERSISTENCE_PATHS
        .iter()
        .filter(|p| text.lines().any(|line| line == p.path));
    for persistent in listed {
        let name = persistent.path;
        // Removing a directory refuses a non-empty one; a file is checked
        // first.
        let _ = if persistent.dir {
            rustix::fs::unlinkat(workspace, name, AtFlags::REMOVEDIR)
        } else if rustix::fs::statat(workspace, name, AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|s| {
            FileType::from_raw_mode(s.st_mode) == FileType::RegularFile && s.st_size == 0
        }) {
            rustix::fs::unlinkat(workspace, name, AtFlags::empty())
        } else {
            Ok(())
        };
    }
    let _ = rustix::fs::ftruncate(record, 0);
}

impl Drop for StandIns {
    fn drop(&mut self) {
        for workspace in self.workspaces.drain(..) {
            // Another run still uses the workspace (its shared lock
            // stands): its sandbox may have the stand-ins bound, so they
            // stay for the last run out. A failed conversion drops this
            // run's shared lock, which it no longer needs: its sandbox
            // has ended.
            if rustix::fs::flock(&workspace.record, FlockOperation::NonBlockingLockExclusive)
                .is_ok()
            {
                remove_recorded(&workspace.fd, &workspace.record);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_records_directory_must_be_the_user_s_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let records = dir.path().join("records");
        private_dir(&records).expect("made as its own");
        let mode = std::fs::metadata(&records)
            .expect("made")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        private_dir(&records).expect("and used again");
        std::fs::set_permissions(&records, std::fs::Permissions::from_mode(0o733)).expect("chmod");
        let refused = private_dir(&records).expect_err("others may write it");
        assert!(refused.to_string().contains("alone"), "{refused}");
        std::fs::remove_dir(&records).expect("remove");
        std::os::unix::fs::symlink(dir.path(), &records).expect("a link in its place");
        private_dir(&records).expect_err("a link is not followed");
    }
}
