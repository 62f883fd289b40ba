//! On-disk cache of compiled components.
//!
//! Loading precompiled code is only sound if the bytes are exactly what this
//! host wrote, so an entry is never trusted blindly: each file carries an
//! HMAC-SHA256 tag under a per-cache secret key (created on first use, mode
//! 0600) over the component's SHA-256, the engine's compatibility hash and the
//! compiled bytes. A changed, truncated or foreign entry fails the tag check
//! and is recompiled and replaced; wasmtime's own header check (version,
//! target, settings) runs after that.

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
        std::fs::create_dir_all(dir).map_err(|e| io("creating the directory", e))?;
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
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Lookup::Miss,
            Err(e) => return Lookup::Rejected(format!("{} is unreadable: {e}", path.display())),
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
    match std::fs::read(&path) {
        Ok(bytes) => {
            return <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| CacheError::BadKey {
                path: path.clone(),
                len: bytes.len(),
            });
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(io("reading", e)),
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
