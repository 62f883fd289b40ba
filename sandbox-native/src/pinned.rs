//! Host paths opened so that what is bound is what was checked.
//!
//! A grant is checked (canonical, not airlock's own files) when a tool
//! loads, and bound every time it runs. Binding by path would follow a
//! symbolic link that another tool, with write access above the grant, put
//! there in between (`site` → the state directory). So every host path a
//! sandbox binds is opened at spawn with `RESOLVE_NO_SYMLINKS` (the checked
//! path is canonical, so a link anywhere in it now means it changed), and
//! bubblewrap binds the opened descriptor (`--bind-fd`), not the path.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a path could not be opened as checked.
fn changed(path: &Path, error: std::io::Error) -> crate::SandboxError {
    crate::SandboxError::GrantChanged {
        path: path.to_path_buf(),
        detail: if error.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
            "a symbolic link is now on its path".to_string()
        } else {
            error.to_string()
        },
    }
}

/// Opens `path` without following any symbolic link on the way, as an
/// `O_PATH` descriptor (for a bind).
pub fn open_path(path: &Path) -> Result<OwnedFd, crate::SandboxError> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    rustix::fs::openat2(
        rustix::fs::CWD,
        path,
        // No O_NOFOLLOW: with O_PATH it would open a final link itself;
        // without, RESOLVE_NO_SYMLINKS refuses any link (ELOOP).
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS,
    )
    .map_err(|e| changed(path, e.into()))
}

/// Opens directory `path` for reading without following any symbolic link
/// on the way (a component's preopen, reopened through `/proc/self/fd`).
pub fn open_dir(path: &Path) -> Result<OwnedFd, crate::SandboxError> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    rustix::fs::openat2(
        rustix::fs::CWD,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS,
    )
    .map_err(|e| changed(path, e.into()))
}

/// The descriptors of one spawn, by host path.
#[derive(Debug, Default)]
pub(crate) struct Pinned {
    fds: HashMap<PathBuf, Arc<OwnedFd>>,
}

impl Pinned {
    /// Opens `path` (once, however often it is bound).
    pub(crate) fn open(&mut self, path: &Path) -> Result<(), crate::SandboxError> {
        if !self.fds.contains_key(path) {
            let fd = open_path(path)?;
            self.fds.insert(path.to_path_buf(), Arc::new(fd));
        }
        Ok(())
    }

    /// The descriptor number `path` was opened as.
    pub(crate) fn fd(&self, path: &Path) -> Option<i32> {
        self.fds.get(path).map(|fd| fd.as_raw_fd())
    }

    /// The descriptor `path` was opened as, to keep.
    pub(crate) fn shared(&self, path: &Path) -> Option<Arc<OwnedFd>> {
        self.fds.get(path).cloned()
    }

    /// Every descriptor number, for the child to inherit.
    pub(crate) fn numbers(&self) -> Vec<i32> {
        self.fds.values().map(|fd| fd.as_raw_fd()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_anywhere_on_the_path_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real");
        std::fs::create_dir_all(real.join("inside")).expect("dirs");
        let canonical = real.canonicalize().expect("canonical");
        open_path(&canonical.join("inside")).expect("no link: opens");
        open_dir(&canonical.join("inside")).expect("no link: opens");
        std::os::unix::fs::symlink(&real, dir.path().join("link")).expect("link");
        let via = dir.path().canonicalize().expect("dir").join("link/inside");
        for refused in [
            open_path(&via).expect_err("a link on the way"),
            open_dir(&via).expect_err("also"),
        ] {
            assert_eq!(refused.code(), "grant_changed", "{refused}");
            assert!(refused.to_string().contains("symbolic link"), "{refused}");
        }
        // A link as the last step too.
        let last = dir.path().canonicalize().expect("dir").join("link");
        for refused in [
            open_path(&last).expect_err("a final link"),
            open_dir(&last).expect_err("also"),
        ] {
            assert_eq!(refused.code(), "grant_changed", "{refused}");
        }
        let gone = open_path(&canonical.join("missing")).expect_err("missing");
        assert_eq!(gone.code(), "grant_changed");
    }
}
