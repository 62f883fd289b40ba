//! A program as it was digested at load: its SHA-256 and its file's
//! identity then (device, inode, size, change time). Every run checks it
//! again: a file that changed since (another tool that can write where it
//! lives replaced it) is hashed again and refused if its content differs,
//! so no tool runs its code under another tool's name, grants and
//! approvals.

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// A file's identity: device, inode, size, change time (seconds and
/// nanoseconds). Any write, rename over or `chmod` changes it.
type Stamp = (u64, u64, u64, i64, i64);

fn stamp(meta: &std::fs::Metadata) -> Stamp {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (
            meta.dev(),
            meta.ino(),
            meta.size(),
            meta.ctime(),
            meta.ctime_nsec(),
        )
    }
    #[cfg(not(unix))]
    {
        (0, 0, meta.len(), 0, 0)
    }
}

/// The program's file changed since it was digested, and so did what it
/// holds.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} is not the program airlock loaded: its content changed since (SHA-256 {now}, loaded {then}); the run is refused; reload to take the new program (and its approvals anew)",
    path.display()
)]
pub struct ProgramChanged {
    /// The program.
    pub path: PathBuf,
    /// Its digest at load.
    pub then: String,
    /// Its digest now (`unreadable` when it cannot be read).
    pub now: String,
}

impl ProgramChanged {
    /// Stable reason code.
    pub fn code(&self) -> &'static str {
        "program_changed"
    }
}

/// A program file and what it was at load.
#[derive(Clone, Debug)]
pub(crate) struct Digested {
    path: PathBuf,
    sha256: String,
    stamp: Stamp,
}

/// Hashes the file open as `file`, and says what it is.
fn digest(file: &mut std::fs::File) -> std::io::Result<(String, Stamp)> {
    let before = stamp(&file.metadata()?);
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok((hex::encode(hasher.finalize()), before))
}

/// SHA-256 of the file at `path`, hex, read in pieces (as a program is
/// digested).
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    digest(&mut std::fs::File::open(path)?).map(|(sha256, _)| sha256)
}

impl Digested {
    /// Reads and hashes `path` (one open file for the hash and the stamp).
    pub(crate) fn read(path: &Path) -> std::io::Result<Self> {
        let (sha256, stamp) = digest(&mut std::fs::File::open(path)?)?;
        Ok(Self {
            path: path.to_path_buf(),
            sha256,
            stamp,
        })
    }

    /// Its SHA-256 at load, hex.
    pub(crate) fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Whether the file still holds what was digested: unchanged since
    /// (cheap), or changed and hashed again to the same digest.
    pub(crate) fn verify(&self) -> Result<(), ProgramChanged> {
        let changed = |now: String| ProgramChanged {
            path: self.path.clone(),
            then: self.sha256.clone(),
            now,
        };
        let mut file = std::fs::File::open(&self.path).map_err(|_| changed("unreadable".into()))?;
        let now = file
            .metadata()
            .map(|m| stamp(&m))
            .map_err(|_| changed("unreadable".into()))?;
        if now == self.stamp {
            return Ok(());
        }
        let (sha256, _) = digest(&mut file).map_err(|_| changed("unreadable".into()))?;
        if sha256 == self.sha256 {
            Ok(())
        } else {
            Err(changed(sha256))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_replaced_after_load_is_refused_and_a_touched_one_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tool");
        std::fs::write(&path, "#!/bin/sh\necho honest\n").expect("write");
        let digested = Digested::read(&path).expect("read");
        digested.verify().expect("unchanged");
        // Same bytes written again: the stamp moves, the digest does not.
        std::fs::write(&path, "#!/bin/sh\necho honest\n").expect("rewrite");
        digested.verify().expect("same content");
        // Replaced by another file of the same size.
        let other = dir.path().join("other");
        std::fs::write(&other, "#!/bin/sh\necho sneaky\n").expect("write");
        std::fs::rename(&other, &path).expect("replace");
        let refused = digested.verify().expect_err("changed");
        assert_eq!(refused.code(), "program_changed");
        assert!(refused.to_string().contains(digested.sha256()), "{refused}");
        std::fs::remove_file(&path).expect("remove");
        assert_eq!(digested.verify().expect_err("gone").now, "unreadable");
    }
}
