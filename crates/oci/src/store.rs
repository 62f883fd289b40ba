//! [`ContentStore`]: manifests and components kept by digest under the
//! state directory, so a loaded component is always read by digest, and a
//! component once pulled loads with the registry down. Every read is
//! hashed again: a file changed on disk is not a component, it is a
//! corrupt entry, removed and fetched again.

use crate::digest::Digest;
use crate::reference::ComponentRef;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The content-addressed store: `blobs/sha256/HEX` for manifests and
/// layers, `tags/HEX.json` for the digest a tag last resolved to.
#[derive(Clone, Debug)]
pub struct ContentStore {
    root: PathBuf,
}

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store's files could not be read or written.
    #[error("the component store at {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// Bytes offered for a digest are not that digest's content.
    #[error("refusing to store bytes as {expected}: they hash to {actual}")]
    Mismatch {
        /// The digest they were offered as.
        expected: Digest,
        /// What they hash to.
        actual: Digest,
    },
}

/// The digest a tag resolved to when it was last pulled.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TagRecord {
    /// The reference as written (with its tag).
    pub reference: String,
    /// The manifest digest it resolved to.
    pub digest: Digest,
    /// When (seconds since the Unix epoch).
    pub resolved_at: u64,
}

impl ContentStore {
    /// The store in `root` (created on first write, private to the user).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Where the store lives.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(digest.hex())
    }

    fn tag_path(&self, reference: &ComponentRef) -> PathBuf {
        let key = Digest::of(reference.unpinned().to_string().as_bytes());
        self.root.join("tags").join(format!("{}.json", key.hex()))
    }

    /// The content of `digest` if the store has it intact; `None` if it
    /// does not (a corrupt or oversized entry is removed and reported as
    /// missing, so it is fetched again).
    pub fn get(&self, digest: &Digest, limit: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.blob_path(digest);
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        let mut bytes = Vec::new();
        file.take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
        if bytes.len() as u64 > limit || !digest.matches(&bytes) {
            tracing::warn!(digest = %digest, "the component store's entry does not match its digest; removing it");
            std::fs::remove_file(&path).map_err(|source| StoreError::Io { path, source })?;
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    /// Keeps `bytes` as `digest`, refusing bytes that are not its content.
    /// Written to a temporary file and renamed, so a reader never sees half
    /// an entry.
    pub fn put(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        let actual = Digest::of(bytes);
        if actual != *digest {
            return Err(StoreError::Mismatch {
                expected: *digest,
                actual,
            });
        }
        self.write_atomically(&self.blob_path(digest), bytes)
    }

    /// The digest `reference`'s tag resolved to when last pulled.
    pub fn tag(&self, reference: &ComponentRef) -> Result<Option<TagRecord>, StoreError> {
        let path = self.tag_path(reference);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        // A record that does not read is as good as none: the tag is
        // resolved again.
        Ok(serde_json::from_slice::<TagRecord>(&text)
            .ok()
            .filter(|record| record.reference == reference.unpinned().to_string()))
    }

    /// Records that `reference`'s tag resolved to `digest` now.
    pub fn set_tag(&self, reference: &ComponentRef, digest: Digest) -> Result<(), StoreError> {
        let record = TagRecord {
            reference: reference.unpinned().to_string(),
            digest,
            resolved_at: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        let bytes = serde_json::to_vec_pretty(&record).unwrap_or_default();
        self.write_atomically(&self.tag_path(reference), &bytes)
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        let dir = path.parent().unwrap_or(&self.root);
        create_private_dir(dir).map_err(io(dir))?;
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io(dir))?;
        file.write_all(bytes).map_err(io(path))?;
        file.as_file().sync_all().map_err(io(path))?;
        file.persist(path).map_err(|e| io(path)(e.error))?;
        Ok(())
    }
}

/// Creates `dir` and its missing parents, owner-only on Unix.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_content_by_digest_and_drops_what_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ContentStore::new(dir.path().join("oci"));
        let digest = Digest::of(b"component");
        assert_eq!(store.get(&digest, 100).expect("read"), None);
        let err = store.put(&digest, b"other").expect_err("wrong bytes");
        assert!(matches!(err, StoreError::Mismatch { .. }), "{err}");
        store.put(&digest, b"component").expect("stored");
        assert_eq!(
            store.get(&digest, 100).expect("read").as_deref(),
            Some(&b"component"[..])
        );
        assert_eq!(store.get(&digest, 3).expect("read"), None, "over the limit");

        store.put(&digest, b"component").expect("stored again");
        std::fs::write(store.blob_path(&digest), b"tampered").expect("tamper");
        assert_eq!(store.get(&digest, 100).expect("read"), None);
        assert!(
            !store.blob_path(&digest).exists(),
            "the corrupt entry is removed"
        );
    }

    #[test]
    fn remembers_the_last_resolution_of_a_tag() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ContentStore::new(dir.path());
        let tagged: ComponentRef = "oci://127.0.0.1:5000/tools/echo:1.0".parse().expect("ref");
        let other: ComponentRef = "oci://127.0.0.1:5000/tools/echo:2.0".parse().expect("ref");
        let digest = Digest::of(b"manifest");
        store.set_tag(&tagged, digest).expect("recorded");
        let record = store.tag(&tagged).expect("read").expect("recorded");
        assert_eq!(
            (record.digest, record.reference.as_str()),
            (digest, "oci://127.0.0.1:5000/tools/echo:1.0")
        );
        assert_eq!(
            store.tag(&tagged.pinned(digest)).expect("read"),
            Some(record)
        );
        assert_eq!(store.tag(&other).expect("read"), None);
    }
}
