//! On-disk cache of compiled components.
//!
//! Loading precompiled code is only sound if the bytes are exactly what this
//! host wrote, so an entry is never trusted blindly: each file carries an
//! HMAC-SHA256 tag under a per-cache secret key (created on first use, mode
//! 0600) over the component's SHA-256, the engine's compatibility hash and the
//! compiled bytes. A changed, truncated or foreign entry fails the tag check
//! and is recompiled and replaced; wasmtime's own header check (version,
//! target, settings) runs after that.
//!
//! The tag proves an entry was written by someone holding the key, so the
//! key and the entries must be this user's alone: the directory, the key
//! and every entry must be owned by the host's user with no group or other
//! permission. A directory another user owns is not used at all; a key
//! anyone else could have read is replaced (every entry then fails its tag
//! and is recompiled); an entry another user owns, or could have written,
//! is refused and recompiled. What this does not cover: a process of the
//! same user outside any sandbox can write both key and entries; keeping
//! the cache out of every sandbox's sight is the job of
//! [`crate::protected`].

use super::inspect::Sha256Digest;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 8] = b"ALCWASM1";
const TAG_LEN: usize = 32;
const KEY_FILE: &str = "cache.key";
const KEY_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Why the compile cache could not be opened or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// A file system operation on the cache failed.
    #[error("compile cache {}: {action} failed: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The key file exists but is not a key this host wrote.
    #[error(
        "compile cache key {} is {len} bytes, expected {KEY_LEN}: delete it (and the cache \
         entries, which will be recompiled) or point the cache elsewhere",
        path.display()
    )]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// The cache directory is not this user's alone: compiled code from it
    /// could be someone else's.
    #[error(
        "compile cache {} is not used: {why}; give the host its own directory (or fix the owner and mode)",
        path.display()
    )]
    Untrusted {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// wasmtime could not serialize a compiled component.
    #[error("serializing a compiled component failed: {0}")]
    Serialize(String),
}

/// The result of looking a component up.
pub(crate) enum Lookup {
    /// A verified entry, deserialized.
    Hit(Component),
    /// No entry.
    Miss,
    /// An entry exists but was refused; it will be recompiled and replaced.
    Rejected(String),
}

/// A directory of compiled components keyed by component SHA-256 and engine
/// compatibility hash.
pub(crate) struct CompileCache {
    dir: PathBuf,
    key: [u8; KEY_LEN],
}

impl CompileCache {
    /// Opens (creating if needed) the cache in `dir`.
    pub(crate) fn open(dir: &Path) -> Result<Self, CacheError> {
        let io = |action, source| CacheError::Io {
            path: dir.to_path_buf(),
            action,
            source,
        };
        create_private_dir(dir).map_err(|e| io("creating the directory", e))?;
        let meta = std::fs::metadata(dir).map_err(|e| io("reading the directory", e))?;
        if let Err(why) = owned_by_us(&meta) {
            return Err(CacheError::Untrusted {
                path: dir.to_path_buf(),
                why,
            });
        }
        // Ours but open to others (an old umask): close it; entries written
        // meanwhile are judged one by one.
        restrict_dir(dir).map_err(|e| io("restricting permissions of", e))?;
        let key = load_or_create_key(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            key,
        })
    }

    fn entry_path(&self, sha: &Sha256Digest, engine_hash: &str) -> PathBuf {
        self.dir.join(format!("{sha}-{engine_hash}.cwasm"))
    }

    fn tag(&self, sha: &Sha256Digest, engine_hash: &str, payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(MAGIC);
        mac.update(sha.as_bytes());
        mac.update(engine_hash.as_bytes());
        mac.update(payload);
        mac
    }

    /// Looks up and verifies the entry for `sha` on this engine.
    pub(crate) fn lookup(&self, engine: &Engine, sha: &Sha256Digest, engine_hash: &str) -> Lookup {
        let path = self.entry_path(sha, engine_hash);
        let bytes = match read_private(&path) {
            Ok(bytes) => bytes,
            Err(Unread::Missing) => return Lookup::Miss,
            Err(Unread::Failed(e)) => {
                return Lookup::Rejected(format!("{} is unreadable: {e}", path.display()));
            }
            Err(Unread::NotOurs(why)) => {
                return Lookup::Rejected(format!(
                    "{} is not this host's alone ({why})",
                    path.display()
                ));
            }
        };
        let Some(payload) = self.verified_payload(sha, engine_hash, &bytes) else {
            return Lookup::Rejected(format!(
                "{} failed its integrity check (changed or corrupt)",
                path.display()
            ));
        };
        match deserialize(engine, payload) {
            Ok(component) => Lookup::Hit(component),
            Err(e) => Lookup::Rejected(format!("{} was refused by wasmtime: {e}", path.display())),
        }
    }

    fn verified_payload<'a>(
        &self,
        sha: &Sha256Digest,
        engine_hash: &str,
        bytes: &'a [u8],
    ) -> Option<&'a [u8]> {
        let rest = bytes.strip_prefix(MAGIC)?;
        if rest.len() < TAG_LEN {
            return None;
        }
        let (tag, payload) = rest.split_at(TAG_LEN);
        self.tag(sha, engine_hash, payload)
            .verify_slice(tag)
            .ok()
            .map(|()| payload)
    }

    /// Writes `component` as the entry for `sha`, atomically replacing any
    /// previous entry.
    pub(crate) fn store(
        &self,
        sha: &Sha256Digest,
        engine_hash: &str,
        component: &Component,
    ) -> Result<(), CacheError> {
        let payload = component
            .serialize()
            .map_err(|e| CacheError::Serialize(e.to_string()))?;
        let tag = self.tag(sha, engine_hash, &payload).finalize().into_bytes();
        let path = self.entry_path(sha, engine_hash);
        let io = |action, source| CacheError::Io {
            path: path.clone(),
            action,
            source,
        };
        let mut file = tempfile::NamedTempFile::new_in(&self.dir).map_err(|e| io("creating", e))?;
        file.write_all(MAGIC)
            .and_then(|()| file.write_all(&tag))
            .and_then(|()| file.write_all(&payload))
            .map_err(|e| io("writing", e))?;
        file.persist(&path).map_err(|e| io("renaming", e.error))?;
        Ok(())
    }
}

/// Deserializes compiled code that passed the integrity check.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, payload: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `payload` is byte-for-byte what `Component::serialize` produced
    // in this cache: its HMAC under the cache's secret key verified above.
    // wasmtime additionally checks its own header for version and settings.
    unsafe { Component::deserialize(engine, payload) }
}

fn load_or_create_key(dir: &Path) -> Result<[u8; KEY_LEN], CacheError> {
    let path = dir.join(KEY_FILE);
    let io = |action, source| CacheError::Io {
        path: path.clone(),
        action,
        source,
    };
    match read_private(&path) {
        Ok(bytes) => {
            return <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| CacheError::BadKey {
                path: path.clone(),
                len: bytes.len(),
            });
        }
        Err(Unread::Missing) => {}
        Err(Unread::NotOurs(why)) => {
            // Someone else may know it: every entry tagged with it is
            // suspect. A new key makes them all fail their tags.
            tracing::warn!(path = %path.display(), %why, "compile cache key replaced; every entry will be recompiled");
            std::fs::remove_file(&path).map_err(|e| io("replacing", e))?;
        }
        Err(Unread::Failed(e)) => return Err(io("reading", e)),
    }

    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key)
        .map_err(|e| io("generating", std::io::Error::other(e.to_string())))?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| io("creating", e))?;
    restrict_to_owner(file.as_file()).map_err(|e| io("restricting permissions of", e))?;
    file.write_all(&key).map_err(|e| io("writing", e))?;
    match file.persist_noclobber(&path) {
        Ok(_) => Ok(key),
        // Another process created the key first: use theirs.
        Err(e) if e.error.kind() == ErrorKind::AlreadyExists => load_or_create_key(dir),
        Err(e) => Err(io("creating", e.error)),
    }
}

/// Why a file was not read.
enum Unread {
    /// It does not exist.
    Missing,
    /// It is not this user's alone.
    NotOurs(String),
    /// Reading failed.
    Failed(std::io::Error),
}

/// Reads `path` if it is this user's alone, judging the file that was
/// opened (not the name again), so a swap after the check gains nothing.
fn read_private(path: &Path) -> Result<Vec<u8>, Unread> {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(Unread::Missing),
        Err(e) => return Err(Unread::Failed(e)),
    };
    let meta = file.metadata().map_err(Unread::Failed)?;
    owned_by_us(&meta).map_err(Unread::NotOurs)?;
    private_mode(&meta).map_err(Unread::NotOurs)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(Unread::Failed)?;
    Ok(bytes)
}

/// Owned by the user this process runs as.
#[cfg(unix)]
fn owned_by_us(meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    match meta.uid() {
        uid if uid == me => Ok(()),
        uid => Err(format!("owned by uid {uid}, not by this host's uid {me}")),
    }
}

/// No group or other permission bits.
#[cfg(unix)]
fn private_mode(meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    match meta.permissions().mode() & 0o777 {
        mode if mode & 0o077 == 0 => Ok(()),
        mode => Err(format!("mode {mode:o} lets other users in")),
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(unix)]
fn restrict_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

// Off Unix the user's profile directory is private already.
#[cfg(not(unix))]
fn owned_by_us(_meta: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}

#[cfg(not(unix))]
fn private_mode(_meta: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(not(unix))]
fn restrict_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn restrict_to_owner(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict_to_owner(_file: &std::fs::File) -> std::io::Result<()> {
    // Temporary files are created private to the user on Windows.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_binds_digest_engine_and_payload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = CompileCache::open(dir.path()).expect("open");
        let sha = Sha256Digest::of(b"component");
        let mut entry = MAGIC.to_vec();
        entry.extend_from_slice(&cache.tag(&sha, "e1", b"code").finalize().into_bytes());
        entry.extend_from_slice(b"code");

        assert_eq!(
            cache.verified_payload(&sha, "e1", &entry),
            Some(&b"code"[..])
        );
        assert_eq!(cache.verified_payload(&sha, "e2", &entry), None);
        assert_eq!(
            cache.verified_payload(&Sha256Digest::of(b"other"), "e1", &entry),
            None
        );
        let mut flipped = entry.clone();
        *flipped.last_mut().expect("non-empty") ^= 1;
        assert_eq!(cache.verified_payload(&sha, "e1", &flipped), None);
        assert_eq!(
            cache.verified_payload(&sha, "e1", &entry[..MAGIC.len() + 3]),
            None
        );

        // A second cache over the same directory shares the key.
        let again = CompileCache::open(dir.path()).expect("reopen");
        assert_eq!(again.key, cache.key);
    }

    /// A well-tagged entry for `sha` written at `mode`.
    #[cfg(unix)]
    fn tagged_entry(cache: &CompileCache, sha: &Sha256Digest, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let mut entry = MAGIC.to_vec();
        entry.extend_from_slice(&cache.tag(sha, "e1", b"code").finalize().into_bytes());
        entry.extend_from_slice(b"code");
        let path = cache.entry_path(sha, "e1");
        std::fs::write(&path, entry).expect("entry");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[cfg(unix)]
    #[test]
    fn an_entry_others_could_have_written_is_refused_though_its_tag_checks_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = CompileCache::open(dir.path()).expect("open");
        let engine = Engine::default();
        let sha = Sha256Digest::of(b"component");
        for mode in [0o644, 0o620, 0o606] {
            tagged_entry(&cache, &sha, mode);
            match cache.lookup(&engine, &sha, "e1") {
                Lookup::Rejected(why) => {
                    assert!(why.contains("lets other users in"), "{mode:o}: {why}");
                }
                _ => panic!("mode {mode:o}: an entry others could write was not refused"),
            }
        }
        // Another user's entry: root makes one for `nobody`; anyone else
        // points the entry at a file root owns.
        let path = cache.entry_path(&sha, "e1");
        std::fs::remove_file(&path).expect("remove");
        let owner = if nix::unistd::geteuid().is_root() {
            tagged_entry(&cache, &sha, 0o600);
            std::os::unix::fs::chown(&path, Some(65534), Some(65534)).expect("chown");
            65534
        } else {
            std::os::unix::fs::symlink("/etc/passwd", &path).expect("symlink");
            0
        };
        match cache.lookup(&engine, &sha, "e1") {
            Lookup::Rejected(why) => {
                assert!(why.contains(&format!("owned by uid {owner}")), "{why}")
            }
            _ => panic!("another user's entry was not refused"),
        }
        std::fs::remove_file(&path).expect("remove");

        // Private, it passes the ownership check and reaches the tag and
        // wasmtime's own header check (which "code" fails).
        tagged_entry(&cache, &sha, 0o600);
        match cache.lookup(&engine, &sha, "e1") {
            Lookup::Rejected(why) => assert!(why.contains("refused by wasmtime"), "{why}"),
            _ => panic!("not a serialized component"),
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_key_others_could_read_is_replaced_and_a_directory_of_others_is_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = CompileCache::open(dir.path()).expect("open");
        let key = dir.path().join(KEY_FILE);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let again = CompileCache::open(dir.path()).expect("reopen");
        assert_ne!(again.key, cache.key, "a key others could read is not kept");
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        // Another user's directory is not used at all: root makes one for
        // `nobody`; anyone else finds one in `/`, which root owns.
        let theirs = if nix::unistd::geteuid().is_root() {
            let theirs = dir.path().join("theirs");
            std::fs::create_dir(&theirs).expect("dir");
            std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).expect("chown");
            theirs
        } else {
            PathBuf::from("/")
        };
        let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&theirs).expect("meta"));
        let refused = CompileCache::open(&theirs).err().expect("refused");
        assert!(matches!(refused, CacheError::Untrusted { .. }), "{refused}");
        assert!(
            refused.to_string().contains(&format!("uid {owner}")),
            "{refused}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn key_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        CompileCache::open(dir.path()).expect("open");
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .expect("key exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
