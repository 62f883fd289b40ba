//! Stand-ins for the persistence paths a writable workspace lacks.
//!
//! Bubblewrap keeps an existing persistence path read-only by binding it
//! over itself; a missing one would be free to create (a new `.envrc`, a
//! new `.git` with a `core.fsmonitor` command), and a bind needs something
//! to bind. So before a run each missing one gets an empty stand-in on the
//! host (a file or a directory, marked with the `user.airlock.stand-in`
//! attribute where the file system keeps one), bound read-only like the
//! rest: inside the sandbox it can be neither written, nor renamed, nor
//! replaced (it is a mount point).
//!
//! After the run a stand-in goes again, but only when no other run (of any
//! airlock process) binds it: removing a path another sandbox has bound
//! over would unmount it there and let that sandbox create it. Every run
//! holds a shared `flock` on each persistence path it binds, on the file
//! itself, so the lock goes wherever the file is found, whoever made it and
//! whatever their environment. The last run of this process to bind one
//! takes its lock exclusively and, if that succeeds (no other process's run
//! holds it), removes it if it is still the same, empty stand-in.
//!
//! A tool that sees a persistence path can lock it too: holding it shared,
//! it only keeps a stand-in in place (a later run removes it); holding it
//! exclusively, it makes other runs on that directory fail (`is busy`)
//! until it lets go, never wait.
//!
//! Stand-ins are made and removed through the descriptor the workspace was
//! opened as for the run (see [`crate::pinned`]), never by path: a link
//! swapped in for the workspace leads them nowhere.

use crate::SandboxError;
use crate::pinned::Pinned;
use crate::plan::{Access, PERSISTENCE_PATHS, Persistent, Plan};
use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags, XattrFlags};
use rustix::io::Errno;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

/// The attribute that marks a stand-in, so that a run of another process
/// that finds one (its maker could not remove it) removes it in the end.
const MARK: &str = "user.airlock.stand-in";

/// How often a run tries to lock a persistence path another holds
/// exclusively (a run removing its stand-in, briefly), a few milliseconds
/// apart, before it gives up.
const ATTEMPTS: u32 = 20;

/// A file's identity: device and inode.
type Identity = (u64, u64);

/// The persistence paths this process's runs bind, by identity, with how
/// many runs bind each: they share one shared lock.
static IN_USE: Mutex<Option<HashMap<Identity, Held>>> = Mutex::new(None);

/// A persistence path held by this process's runs.
#[derive(Debug)]
struct Held {
    runs: usize,
    /// Opened and share-locked.
    file: OwnedFd,
    workspace: Arc<OwnedFd>,
    name: &'static str,
    dir: bool,
    /// Made by a run of this process.
    made: bool,
}

/// The persistence paths one run binds; released when dropped.
#[derive(Debug)]
pub(crate) struct StandIns {
    held: Vec<Identity>,
}

fn failed(path: &Path, e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Spawn {
        detail: format!("making a read-only stand-in for `{}`: {e}", path.display()),
    }
}

fn identity(stat: &rustix::fs::Stat) -> Identity {
    (stat.st_dev, stat.st_ino)
}

impl StandIns {
    /// Makes a stand-in for every persistence path missing from `plan`'s
    /// writable mounts, each opened in `pinned`, and holds every
    /// persistence path of them share-locked. One that is a symbolic link
    /// is refused: the bind would refuse it, and a dangling one could be
    /// written through.
    pub(crate) fn create(plan: &Plan, pinned: &Pinned) -> Result<Self, SandboxError> {
        // Declared before the lock, so that on an early return the lock is
        // released before `run` is dropped (its `Drop` takes the lock).
        let mut run = Self { held: Vec::new() };
        let mut in_use = IN_USE.lock().unwrap_or_else(PoisonError::into_inner);
        let in_use = in_use.get_or_insert_with(HashMap::new);
        let writable = plan.mounts.iter().filter(|m| m.access == Access::ReadWrite);
        for mount in writable {
            let Some(workspace) = pinned.shared(&mount.host) else {
                continue;
            };
            for persistent in PERSISTENCE_PATHS {
                let path = mount.host.join(persistent.path);
                if let Some(id) = hold(&path, &workspace, persistent, in_use)? {
                    run.held.push(id);
                }
            }
        }
        Ok(run)
    }
}

/// Finds or makes persistence path `persistent` in `workspace` and holds
/// it share-locked (counted in `in_use`), returning its identity; `None`
/// for one that is neither a file nor a directory (never a stand-in, so
/// never removed, and not opened: a FIFO would block).
fn hold(
    path: &Path,
    workspace: &Arc<OwnedFd>,
    persistent: &Persistent,
    in_use: &mut HashMap<Identity, Held>,
) -> Result<Option<Identity>, SandboxError> {
    let name = persistent.path;
    for _ in 0..ATTEMPTS {
        let (file, made) = match open_or_make(path, workspace, persistent)? {
            Found::Open(file, made) => (file, made),
            Found::Other => return Ok(None),
            Found::Changed => continue,
        };
        let stat = rustix::fs::fstat(&file).map_err(|e| failed(path, e))?;
        if !is_file_or_dir(&stat) {
            return Ok(None);
        }
        let id = identity(&stat);
        if let Some(held) = in_use.get_mut(&id) {
            held.runs += 1;
            return Ok(Some(id));
        }
        if rustix::fs::flock(&file, FlockOperation::NonBlockingLockShared).is_err() {
            // Being removed by another process's run (or held by a tool):
            // look again in a moment.
            std::thread::sleep(std::time::Duration::from_millis(5));
            continue;
        }
        // Still the one at the name (not removed before the lock)?
        let now = rustix::fs::statat(&**workspace, name, AtFlags::SYMLINK_NOFOLLOW);
        if now.is_ok_and(|now| identity(&now) == id) {
            let held = Held {
                runs: 1,
                file,
                workspace: Arc::clone(workspace),
                name,
                dir: persistent.dir,
                made,
            };
            in_use.insert(id, held);
            return Ok(Some(id));
        }
    }
    Err(SandboxError::Spawn {
        detail: format!(
            "`{}` is busy: another program holds a lock on it; try again once it \
             lets go",
            path.display()
        ),
    })
}

/// What was found at a persistence path.
enum Found {
    /// The file or directory, opened, and whether it was made now.
    Open(OwnedFd, bool),
    /// Something else (a FIFO, a socket, a device): not opened.
    Other,
    /// It changed meanwhile (another run made or removed it): look again.
    Changed,
}

fn is_file_or_dir(stat: &rustix::fs::Stat) -> bool {
    matches!(
        FileType::from_raw_mode(stat.st_mode),
        FileType::RegularFile | FileType::Directory
    )
}

/// Opens persistence path `persistent`, making it first (marked) when it
/// is missing.
fn open_or_make(
    path: &Path,
    workspace: &OwnedFd,
    persistent: &Persistent,
) -> Result<Found, SandboxError> {
    let name = persistent.path;
    let opened = |flags: OFlags| {
        rustix::fs::openat(
            workspace,
            name,
            // Non-blocking: a FIFO found there opens without a writer.
            flags | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
    };
    let made = match rustix::fs::statat(workspace, name, AtFlags::SYMLINK_NOFOLLOW) {
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
        Ok(stat) if !is_file_or_dir(&stat) => return Ok(Found::Other),
        Ok(_) => false,
        Err(_) if persistent.dir => {
            match rustix::fs::mkdirat(workspace, name, Mode::from_raw_mode(0o755)) {
                Ok(()) => true,
                Err(Errno::EXIST) => return Ok(Found::Changed),
                Err(e) => return Err(failed(path, e)),
            }
        }
        Err(_) => match opened(OFlags::CREATE | OFlags::EXCL | OFlags::RDONLY) {
            Ok(file) => {
                mark(&file);
                return Ok(Found::Open(file, true));
            }
            Err(Errno::EXIST) => return Ok(Found::Changed),
            Err(e) => return Err(failed(path, e)),
        },
    };
    match opened(OFlags::RDONLY) {
        Ok(file) => {
            if made {
                mark(&file);
            }
            Ok(Found::Open(file, made))
        }
        Err(Errno::NOENT | Errno::LOOP) => Ok(Found::Changed),
        Err(e) => Err(failed(path, e)),
    }
}

/// Marks a stand-in, where the file system keeps attributes (elsewhere
/// only its maker's process removes it).
fn mark(file: &OwnedFd) {
    let _ = rustix::fs::fsetxattr(file, MARK, b"1", XattrFlags::empty());
}

fn marked(file: &OwnedFd) -> bool {
    let mut value = [0u8; 1];
    rustix::fs::fgetxattr(file, MARK, &mut value[..]).is_ok_and(|len| len == 1)
}

/// Removes `held` if no other process's run holds it, it is still the file
/// at its name, a stand-in (made here, or marked), and empty.
fn remove_if_unused(id: Identity, held: &Held) {
    if !(held.made || marked(&held.file)) {
        return;
    }
    // A failed conversion drops this process's shared lock, which it no
    // longer needs: its last run binding it has ended.
    if rustix::fs::flock(&held.file, FlockOperation::NonBlockingLockExclusive).is_err() {
        return;
    }
    let workspace = &*held.workspace;
    let Ok(now) = rustix::fs::statat(workspace, held.name, AtFlags::SYMLINK_NOFOLLOW) else {
        return;
    };
    if identity(&now) != id {
        return;
    }
    // Removing a directory refuses a non-empty one; a file is checked.
    let _ = if held.dir {
        rustix::fs::unlinkat(workspace, held.name, AtFlags::REMOVEDIR)
    } else if FileType::from_raw_mode(now.st_mode) == FileType::RegularFile && now.st_size == 0 {
        rustix::fs::unlinkat(workspace, held.name, AtFlags::empty())
    } else {
        Ok(())
    };
}

impl Drop for StandIns {
    fn drop(&mut self) {
        let mut in_use = IN_USE.lock().unwrap_or_else(PoisonError::into_inner);
        let in_use = in_use.get_or_insert_with(HashMap::new);
        for id in self.held.drain(..) {
            let Some(held) = in_use.get_mut(&id) else {
                continue;
            };
            held.runs -= 1;
            if held.runs > 0 {
                continue;
            }
            if let Some(held) = in_use.remove(&id) {
                remove_if_unused(id, &held);
            }
        }
    }
}
