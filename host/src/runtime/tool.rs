//! A loaded tool: its component, classification, description and grants,
//! pre-linked so an invocation is instantiate + call.

use super::{ComponentInfo, InspectError, Sha256Digest, ToolPre};
use crate::grants::{GrantError, Grants, ResolvedGrants};
use crate::policy::ToolFacts;
use crate::vocabulary::World;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest component file airlock reads: far above real tools (tens of KiB
/// to a few MiB), low enough that a stray multi-gigabyte file is refused
/// instead of read into memory.
pub const MAX_COMPONENT_BYTES: u64 = 256 << 20;

/// Reads a component file, refusing files over [`MAX_COMPONENT_BYTES`]
/// without reading them whole.
pub fn read_component(path: &Path) -> Result<Vec<u8>, LoadError> {
    let read_error = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_COMPONENT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    check_size(bytes.len())?;
    Ok(bytes)
}

pub(crate) fn check_size(len: usize) -> Result<(), LoadError> {
    if len as u64 > MAX_COMPONENT_BYTES {
        return Err(LoadError::TooLarge {
            limit: MAX_COMPONENT_BYTES,
        });
    }
    Ok(())
}

/// Where a component comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A `.wasm` file.
    File(PathBuf),
    /// Component bytes already in memory.
    Bytes(Vec<u8>),
    /// A component pulled from a registry and checked against its digests.
    Pulled(Box<airlock_oci::Pulled>),
}

/// Where a component pulled from a registry came from: what policies see
/// as `resource.source` and the attestation records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provenance {
    /// The reference, pinned to the manifest digest it was loaded by.
    pub reference: airlock_oci::ComponentRef,
    /// The manifest digest.
    pub manifest: airlock_oci::Digest,
    /// Who signed it, when a signature was required.
    pub signer: Option<airlock_oci::Signer>,
}

impl Provenance {
    /// Where `pulled` came from.
    pub fn of(pulled: &airlock_oci::Pulled) -> Self {
        Self {
            reference: pulled.reference.clone(),
            manifest: pulled.manifest,
            signer: pulled.signer.clone(),
        }
    }
}

impl From<PathBuf> for Source {
    fn from(path: PathBuf) -> Self {
        Source::File(path)
    }
}

impl From<&Path> for Source {
    fn from(path: &Path) -> Self {
        Source::File(path.to_path_buf())
    }
}

impl From<Vec<u8>> for Source {
    fn from(bytes: Vec<u8>) -> Self {
        Source::Bytes(bytes)
    }
}

impl From<&[u8]> for Source {
    fn from(bytes: &[u8]) -> Self {
        Source::Bytes(bytes.to_vec())
    }
}

/// What a tool says about itself (its `describe()` export), checked by the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// Short machine-friendly name.
    pub name: String,
    /// The tool's own version.
    pub version: String,
    /// What it does, for agents.
    pub description: String,
    /// JSON Schema of the input, as JSON text (checked to parse).
    pub input_schema: String,
}

/// A loaded tool, cheap to clone and share between tasks.
#[derive(Clone)]
pub struct Tool {
    pub(crate) inner: Arc<ToolInner>,
}

pub(crate) struct ToolInner {
    /// The engine it was compiled for and runs in.
    pub engine: wasmtime::Engine,
    pub info: ComponentInfo,
    pub descriptor: Descriptor,
    pub pre: ToolPre,
    pub grants: ResolvedGrants,
    pub from_cache: bool,
    pub facts: ToolFacts,
    pub provenance: Option<Provenance>,
}

impl Tool {
    /// Static facts about the component: digest, imports, exports, world.
    pub fn info(&self) -> &ComponentInfo {
        &self.inner.info
    }

    /// The tool's self-description.
    pub fn descriptor(&self) -> &Descriptor {
        &self.inner.descriptor
    }

    /// The tool's name: the operator's ([`Grants::named`](crate::Grants::named)),
    /// else the one its descriptor declares.
    pub fn name(&self) -> &str {
        &self.inner.facts.name
    }

    /// The world the tool runs in: its imports' world, without `files` when
    /// no directory is granted ([`ComponentInfo::runs_as`]).
    pub fn world(&self) -> World {
        self.inner.facts.world
    }

    /// SHA-256 of the component file.
    pub fn sha256(&self) -> &Sha256Digest {
        &self.inner.info.sha256
    }

    /// The grants the tool runs with (host paths resolved).
    pub fn grants(&self) -> &Grants {
        self.inner.grants.grants()
    }

    /// What policies see of the tool: name, world, capabilities, digest,
    /// sensitivity.
    pub fn facts(&self) -> &ToolFacts {
        &self.inner.facts
    }

    /// Where the component was pulled from, for one from a registry.
    pub fn provenance(&self) -> Option<&Provenance> {
        self.inner.provenance.as_ref()
    }

    /// Whether the compiled code came from the on-disk cache.
    pub fn compiled_from_cache(&self) -> bool {
        self.inner.from_cache
    }
}

impl fmt::Debug for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tool")
            .field("name", &self.name())
            .field("world", &self.world())
            .field("sha256", self.sha256())
            .finish_non_exhaustive()
    }
}

/// Why a component could not be loaded as a tool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The component file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_COMPONENT_BYTES`].
    #[error("the component is larger than {limit} bytes, which no tool needs: check the path")]
    TooLarge {
        /// The ceiling in bytes.
        limit: u64,
    },
    /// The file is not a tool component (see [`InspectError`]).
    #[error(transparent)]
    Inspect(#[from] InspectError),
    /// The grants do not fit the tool.
    #[error(transparent)]
    Grant(#[from] GrantError),
    /// A directory grant is, lies inside or contains airlock's own files.
    #[error(transparent)]
    Protected(#[from] crate::protected::ProtectedError),
    /// wasmtime could not compile the component.
    #[error("compiling the component failed: {message}. The file may be corrupt: rebuild it")]
    Compile {
        /// wasmtime's description.
        message: String,
    },
    /// The component's imports or its `tool` export do not match the host.
    #[error(
        "linking the component failed: {message}. Rebuild it against airlock's wit/ \
         (package airlock:tool@0.1.0) and WASI 0.2"
    )]
    Link {
        /// wasmtime's description.
        message: String,
    },
    /// `describe()` did not return a usable descriptor.
    #[error("the tool's describe() failed ({code}): {message}")]
    Describe {
        /// Reason code of the failure, e.g. `trap` or `invalid_descriptor`.
        code: &'static str,
        /// What went wrong.
        message: String,
    },
    /// A credential binding cannot be honoured: no vault, no such secret,
    /// or a secret whose scope does not cover the tool.
    #[error("credential binding for secret `{secret}`: {message}")]
    Credential {
        /// Reason code, e.g. `unknown_secret` or `secret_scope`.
        code: &'static str,
        /// The bound secret's name.
        secret: String,
        /// What is wrong and what to do.
        message: String,
    },
}

impl LoadError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            LoadError::Read { .. } => "read_failed",
            LoadError::TooLarge { .. } => "component_too_large",
            LoadError::Inspect(e) => e.code(),
            LoadError::Grant(e) => e.code(),
            LoadError::Protected(e) => e.code(),
            LoadError::Compile { .. } => "compile_failed",
            LoadError::Link { .. } => "link_failed",
            LoadError::Describe { .. } => "describe_failed",
            LoadError::Credential { code, .. } => code,
        }
    }

    /// The CLI's exit code: denied (3) for imports the host refuses to
    /// provide, usage (2) for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            LoadError::Inspect(InspectError::Classify(super::ClassifyError::ForbiddenImports(
                _,
            ))) => crate::exit_code::DENIED,
            _ => crate::exit_code::USAGE,
        }
    }
}
