//! Static inspection of a component file: what it is, what it imports and
//! exports, and which world that puts it in. Nothing here compiles or runs it.

use super::world::{self, ClassifyError, Import};
use crate::vocabulary::{Capability, World};
use sha2::{Digest as _, Sha256};
use std::fmt;
use wasmparser::{Encoding, Parser, Payload};

/// A SHA-256 digest, shown as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    /// Hashes `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({})", self.to_hex())
    }
}

/// What static inspection learns about a component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentInfo {
    /// SHA-256 of the component file.
    pub sha256: Sha256Digest,
    /// Size of the component file in bytes.
    pub size: u64,
    /// Top-level imports, each with what the host does with it.
    pub imports: Vec<Import>,
    /// Top-level export names.
    pub exports: Vec<String>,
    /// The widest world the imports allow: what the component can be given.
    /// It runs in [`ComponentInfo::runs_as`], narrower without directories.
    pub world: World,
    /// The exact `airlock:tool/tool@0.1.x` export the host calls.
    pub tool_export: String,
}

impl ComponentInfo {
    /// The world the component runs in, with or without directory grants
    /// ([`World::with_directories`]).
    pub fn runs_as(&self, directories_granted: bool) -> World {
        self.world.with_directories(directories_granted)
    }

    /// The capabilities the component has with nothing granted: what
    /// `airlock inspect` shows and a tool without directories is checked for.
    pub fn capabilities(&self) -> &'static [Capability] {
        self.runs_as(false).capabilities()
    }
}

/// Why a file is not a loadable tool component.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// The file does not start with the WebAssembly magic bytes.
    #[error("not a WebAssembly file: {detail}")]
    NotWasm {
        /// What the file looks like instead, and what to do.
        detail: String,
    },
    /// A core module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component. Build the tool for the \
         `wasm32-wasip2` target (`cargo build --target wasm32-wasip2`), or wrap the module \
         with `wasm-tools component new`"
    )]
    CoreModule,
    /// The binary is truncated or corrupt.
    #[error(
        "the component is malformed at byte offset {offset}: {message}. \
         The file is truncated or corrupt: rebuild it or copy it again"
    )]
    Malformed {
        /// Byte offset where parsing failed.
        offset: usize,
        /// The parser's description.
        message: String,
    },
    /// The imports or exports do not fit any world.
    #[error(transparent)]
    Classify(#[from] ClassifyError),
}

impl InspectError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            InspectError::NotWasm { .. } => "not_wasm",
            InspectError::CoreModule => "core_module",
            InspectError::Malformed { .. } => "malformed_component",
            InspectError::Classify(e) => e.code(),
        }
    }
}

const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// Inspects a component's bytes without compiling or running it.
///
/// # Examples
///
/// ```
/// let err = airlock::inspect(b"(component)").expect_err("text is not wasm");
/// assert_eq!(err.code(), "not_wasm");
/// ```
pub fn inspect(bytes: &[u8]) -> Result<ComponentInfo, InspectError> {
    check_magic(bytes)?;
    let (imports, exports) = top_level_names(bytes)?;
    let classification = world::classify(&imports, &exports)?;
    Ok(ComponentInfo {
        sha256: Sha256Digest::of(bytes),
        size: bytes.len() as u64,
        imports: classification.imports,
        exports,
        world: classification.world,
        tool_export: classification.tool_export,
    })
}

fn check_magic(bytes: &[u8]) -> Result<(), InspectError> {
    if bytes.starts_with(WASM_MAGIC) {
        return Ok(());
    }
    let detail = if bytes.is_empty() {
        "the file is empty".to_string()
    } else if bytes.len() < WASM_MAGIC.len() && WASM_MAGIC.starts_with(bytes) {
        format!(
            "the file is only {} bytes long: it is truncated",
            bytes.len()
        )
    } else if looks_like_text(bytes) {
        "it does not start with `\\0asm` and looks like text; if it is WAT, \
         compile it first (`wasm-tools parse`)"
            .to_string()
    } else {
        "it does not start with the `\\0asm` magic bytes".to_string()
    };
    Err(InspectError::NotWasm { detail })
}

fn looks_like_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(512)];
    std::str::from_utf8(head).is_ok_and(|s| s.chars().all(|c| !c.is_control() || c.is_whitespace()))
}

/// The names in the outermost component's import and export sections.
fn top_level_names(bytes: &[u8]) -> Result<(Vec<String>, Vec<String>), InspectError> {
    let malformed = |e: wasmparser::BinaryReaderError| InspectError::Malformed {
        offset: e.offset(),
        message: e.message().to_string(),
    };
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    // Nested modules and components appear inline between their own
    // `Version` and `End`; only depth 1 is the component itself.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(malformed)? {
            Payload::Version { encoding, .. } => {
                if depth == 0 && encoding == Encoding::Module {
                    return Err(InspectError::CoreModule);
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    imports.push(import.map_err(malformed)?.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    exports.push(export.map_err(malformed)?.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(InspectError::Malformed {
            offset: bytes.len(),
            message: "unexpected end of file".into(),
        });
    }
    Ok((imports, exports))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_wasm_explains_what_it_saw() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"\0as", "truncated"),
            (b"(component)", "looks like text"),
            (&[0xff, 0xfe, 0x00, 0x01, 0x02], "magic bytes"),
        ];
        for (bytes, needle) in cases {
            let err = inspect(bytes).expect_err("must fail");
            assert_eq!(err.code(), "not_wasm");
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn header_only_component_is_truncated() {
        let header = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, 0x01];
        let err = inspect(&header).expect_err("must fail");
        assert_eq!(err.code(), "malformed_component", "{err}");
    }

    #[test]
    fn digest_is_hex() {
        let d = Sha256Digest::of(b"abc");
        assert_eq!(
            d.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
