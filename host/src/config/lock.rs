//! `airlock.lock`, beside `airlock.toml`: the digest each `oci://` tool was
//! resolved to, written by `airlock lock`. With a lockfile, a tool whose
//! entry matches its configuration loads exactly the locked digest and the
//! tag is never asked again; `--locked` refuses a configuration with a
//! registry tool the lockfile does not list, as `cargo --locked` does.
//!
//! ```toml
//! # Written by `airlock lock`: edit airlock.toml and run it again instead.
//! version = 1
//!
//! [[tools]]
//! tool = "echo"
//! reference = "oci://ghcr.io/acme/echo:1.0"
//! digest = "sha256:8eaa…"          # the manifest
//! component = "sha256:4e84…"       # the component (the manifest's layer)
//! registry = "ghcr.io"
//! locked_at = "2026-12-07T09:00:00Z"
//! ```

use super::{ComponentSource, Config};
use crate::oci::{ComponentRef, Digest};
use crate::toml_file::{ConfigError, TomlText};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The lockfile's name, beside the configuration.
pub const LOCKFILE: &str = "airlock.lock";

/// The format this build reads and writes.
const VERSION: u32 = 1;

/// One tool's pin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockEntry {
    /// The tool (`[[tools]] name`).
    pub tool: String,
    /// Its `component` as configured.
    pub reference: String,
    /// The manifest digest it was resolved to: what loads.
    pub digest: Digest,
    /// The component's own digest (the manifest's layer).
    pub component: Digest,
    /// The registry it came from.
    pub registry: String,
    /// The signer that verified it, when a signature was required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// When it was locked (RFC 3339).
    pub locked_at: String,
}

impl LockEntry {
    /// Whether this entry pins `tool` configured with `reference`: same
    /// tool, same reference text, and, for a reference that names its own
    /// digest, that digest.
    pub fn pins(&self, tool: &str, reference: &ComponentRef) -> bool {
        self.tool == tool
            && self.reference == reference.to_string()
            && reference.digest().is_none_or(|d| d == self.digest)
    }
}

/// The whole lockfile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    version: u32,
    #[serde(default)]
    tools: Vec<LockEntry>,
}

impl Default for Lockfile {
    fn default() -> Self {
        Self {
            version: VERSION,
            tools: Vec::new(),
        }
    }
}

/// What went wrong with a lockfile, or with a configuration under
/// `--locked`.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// It could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The lockfile.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// It is not a lockfile this build reads.
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    /// `--locked` without a lockfile.
    #[error("--locked, but there is no {}: run `airlock lock --config …` to write it", path.display())]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// `--locked`, and tools the lockfile does not pin.
    #[error("--locked, but {} not in the lockfile (or changed since it was written): {}; run `airlock lock` to pin {}", if tools.len() == 1 { "this tool is" } else { "these tools are" }, tools.join(", "), if tools.len() == 1 { "it" } else { "them" })]
    NotLocked {
        /// `NAME (REFERENCE)` of each.
        tools: Vec<String>,
    },
}

impl LockError {
    /// A stable code for records and `--json` output.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "lockfile_unreadable",
            Self::Invalid(_) => "invalid_lockfile",
            Self::Missing { .. } => "no_lockfile",
            Self::NotLocked { .. } => "not_locked",
        }
    }
}

impl Lockfile {
    /// Where the lockfile of configuration `config` lives.
    pub fn beside(config: &Path) -> PathBuf {
        config
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(LOCKFILE)
    }

    /// Reads `path`; `None` when there is none.
    pub fn read(path: &Path) -> Result<Option<Self>, LockError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(LockError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let origin = path.display().to_string();
        let lock: Self =
            toml::from_str(&text).map_err(|e| ConfigError::from_toml(&e, &text, &origin))?;
        if lock.version != VERSION {
            return Err(TomlText {
                text: &text,
                origin: &origin,
            }
            .error(
                0..0,
                format!(
                    "lockfile version {} is not {VERSION}, the one this airlock reads: run `airlock lock` to rewrite it",
                    lock.version
                ),
            )
            .into());
        }
        Ok(Some(lock))
    }

    /// Writes it to `path` (through a temporary file, so a reader never
    /// sees half of it).
    pub fn write(&self, path: &Path) -> Result<(), LockError> {
        let io = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        let body = toml::to_string(self).map_err(|e| io(std::io::Error::other(e)))?;
        let text = format!(
            "# Written by `airlock lock`: edit airlock.toml and run it again instead.\n{body}"
        );
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        // Read like the configuration beside it (by the server's user, by
        // reviewers): it holds digests, nothing secret.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let readable = std::fs::Permissions::from_mode(0o644);
            file.as_file().set_permissions(readable).map_err(io)?;
        }
        file.write_all(text.as_bytes()).map_err(io)?;
        file.as_file().sync_all().map_err(io)?;
        file.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// The entries, in tool order.
    pub fn entries(&self) -> &[LockEntry] {
        &self.tools
    }

    /// The entry pinning `tool` configured with `reference`, if any.
    pub fn entry(&self, tool: &str, reference: &ComponentRef) -> Option<&LockEntry> {
        self.tools.iter().find(|e| e.pins(tool, reference))
    }

    /// Replaces `entry.tool`'s entry (or adds it); returns the one it replaced.
    pub fn set(&mut self, entry: LockEntry) -> Option<LockEntry> {
        let old = self
            .tools
            .iter()
            .position(|e| e.tool == entry.tool)
            .map(|i| self.tools.remove(i));
        self.tools.push(entry);
        self.tools.sort_by(|a, b| a.tool.cmp(&b.tool));
        old
    }

    /// Drops the entries of tools not in `keep`; returns them.
    pub fn retain(&mut self, keep: &[&str]) -> Vec<LockEntry> {
        let (kept, dropped) = std::mem::take(&mut self.tools)
            .into_iter()
            .partition(|e| keep.contains(&e.tool.as_str()));
        self.tools = kept;
        dropped
    }
}

impl Config {
    /// Reads the lockfile beside `config_path`, if any, and pins each
    /// `oci://` tool whose entry matches its configuration.
    pub(super) fn apply_lockfile(&mut self, config_path: &Path) -> Result<(), ConfigError> {
        let lock_path = Lockfile::beside(config_path);
        let lockfile = Lockfile::read(&lock_path).map_err(|e| match e {
            LockError::Io { path, source } => ConfigError::Read { path, source },
            LockError::Invalid(e) => e,
            other => ConfigError::Read {
                path: lock_path.clone(),
                source: std::io::Error::other(other.to_string()),
            },
        })?;
        if let Some(lockfile) = &lockfile {
            for tool in &mut self.tools {
                if let Some(ComponentSource::Oci(reference)) = &tool.component {
                    tool.lock = lockfile.entry(&tool.name, reference).cloned();
                }
            }
        }
        self.lockfile = Some((lock_path, lockfile));
        Ok(())
    }

    /// The lockfile read with this configuration: where it is (or would
    /// be), and its contents when there is one. `None` for a configuration
    /// not read from a file.
    pub fn lockfile(&self) -> Option<(&Path, Option<&Lockfile>)> {
        self.lockfile
            .as_ref()
            .map(|(path, lock)| (path.as_path(), lock.as_ref()))
    }

    /// For `--locked`: fails unless a lockfile was read and pins every tool
    /// with an `oci://` component as configured now.
    pub fn check_locked(&self) -> Result<(), LockError> {
        let path = self
            .lockfile
            .as_ref()
            .map_or_else(|| PathBuf::from(LOCKFILE), |(path, _)| path.clone());
        if !self
            .lockfile
            .as_ref()
            .is_some_and(|(_, lock)| lock.is_some())
        {
            return Err(LockError::Missing { path });
        }
        let tools: Vec<String> = self
            .tools
            .iter()
            .filter_map(|tool| match (&tool.component, &tool.lock) {
                (Some(ComponentSource::Oci(reference)), None) => {
                    Some(format!("{} ({reference})", tool.name))
                }
                _ => None,
            })
            .collect();
        if tools.is_empty() {
            Ok(())
        } else {
            Err(LockError::NotLocked { tools })
        }
    }
}

/// The current time as the lockfile writes it.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tool: &str, reference: &str, bytes: &[u8]) -> LockEntry {
        LockEntry {
            tool: tool.into(),
            reference: reference.into(),
            digest: Digest::of(bytes),
            component: Digest::of(b"layer"),
            registry: "127.0.0.1:5000".into(),
            signer: None,
            locked_at: now(),
        }
    }

    #[test]
    fn round_trips_and_pins_only_what_matches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = Lockfile::beside(&dir.path().join("airlock.toml"));
        assert_eq!(Lockfile::read(&path).expect("read"), None);
        let mut lock = Lockfile::default();
        let reference = "oci://127.0.0.1:5000/tools/echo:1.0";
        assert_eq!(lock.set(entry("echo", reference, b"m1")), None);
        lock.set(entry("b", "oci://127.0.0.1:5000/tools/b:1", b"m2"));
        let old = lock.set(entry("echo", reference, b"m3")).expect("replaced");
        assert_eq!(old.digest, Digest::of(b"m1"));
        lock.write(&path).expect("write");
        let read = Lockfile::read(&path).expect("read").expect("there");
        assert_eq!(read, lock);
        assert_eq!(
            read.entries()
                .iter()
                .map(|e| e.tool.as_str())
                .collect::<Vec<_>>(),
            ["b", "echo"]
        );

        let configured: ComponentRef = reference.parse().expect("ref");
        assert!(read.entry("echo", &configured).is_some());
        assert!(read.entry("other", &configured).is_none());
        let retagged: ComponentRef = "oci://127.0.0.1:5000/tools/echo:2.0".parse().expect("ref");
        assert!(
            read.entry("echo", &retagged).is_none(),
            "a changed reference is not pinned"
        );

        let mut pruned = read.clone();
        let dropped = pruned.retain(&["echo"]);
        assert_eq!((pruned.entries().len(), dropped[0].tool.as_str()), (1, "b"));
    }

    #[test]
    fn other_versions_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(LOCKFILE);
        for (text, want) in [
            ("version = 2\n", "lockfile version 2"),
            ("version = 1\nsurprise = true\n", "unknown field"),
            ("version = 1\n[[tools]]\ntool = \"a\"\n", "missing field"),
        ] {
            std::fs::write(&path, text).expect("write");
            let err = Lockfile::read(&path).expect_err(text);
            assert_eq!(err.code(), "invalid_lockfile");
            assert!(err.to_string().contains(want), "{text}: {err}");
        }
    }
}
