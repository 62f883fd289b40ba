//! The data-driven tables in `fixtures/runtime/`, typed.

use crate::{guest_path, workspace_root};
use airlock::Limits;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// The `fixtures/` directory.
pub fn fixtures_dir() -> PathBuf {
    workspace_root().join("fixtures")
}

fn read_toml<T: for<'de> Deserialize<'de>>(relative: &str) -> T {
    let path = fixtures_dir().join(relative);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// `fixtures/runtime/guests.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestTable {
    /// One entry per guest.
    pub guest: Vec<GuestSpec>,
}

/// Expected classification and behaviour of one guest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestSpec {
    /// The guest's name in `guests/`.
    pub name: String,
    /// The world `airlock inspect` must report: the one it runs in with
    /// nothing granted.
    pub world: String,
    /// The world once directories are granted, when it differs (the
    /// component imports `wasi:filesystem`).
    pub with_directories: Option<String>,
    /// The capabilities that world needs.
    pub capabilities: Vec<String>,
    /// The set of import roles the guest's imports must show.
    pub roles: Vec<String>,
    /// Invocations and what they must produce.
    #[serde(default)]
    pub case: Vec<GuestCase>,
}

/// One invocation of a guest and its expected outcome.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestCase {
    /// Input JSON.
    pub input: String,
    /// Deadline override.
    pub timeout_ms: Option<u64>,
    /// Fuel budget (runs on the metered host).
    pub fuel: Option<u64>,
    /// Memory limit override.
    pub memory_bytes: Option<u64>,
    /// Table limit override.
    pub max_table_elements: Option<u64>,
    /// Output limit override.
    pub max_output_bytes: Option<usize>,
    /// Stdio capture override.
    pub max_stdio_bytes: Option<usize>,
    /// Expected reason code.
    pub code: String,
    /// Expected exact output.
    pub output: Option<String>,
    /// Fragments the output must contain.
    #[serde(default)]
    pub output_contains: Vec<String>,
    /// Fragments the outcome's message must contain.
    #[serde(default)]
    pub message_contains: Vec<String>,
    /// Fragments the captured stderr must contain.
    #[serde(default)]
    pub stderr_contains: Vec<String>,
    /// Expected number of dropped stdout bytes.
    pub stdout_dropped: Option<u64>,
}

impl GuestCase {
    /// The case's limits: the defaults with its overrides applied.
    pub fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        if let Some(ms) = self.timeout_ms {
            limits.timeout = Duration::from_millis(ms);
        }
        limits.fuel = self.fuel;
        if let Some(bytes) = self.memory_bytes {
            limits.max_memory_bytes = bytes;
        }
        if let Some(count) = self.max_table_elements {
            limits.max_table_elements = count;
        }
        if let Some(bytes) = self.max_output_bytes {
            limits.max_output_bytes = bytes;
        }
        if let Some(bytes) = self.max_stdio_bytes {
            limits.max_stdio_bytes = bytes;
        }
        limits
    }
}

/// Reads `fixtures/runtime/guests.toml`.
pub fn guest_table() -> GuestTable {
    read_toml("runtime/guests.toml")
}

/// `fixtures/runtime/bad_components.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BadComponentTable {
    /// The cases.
    pub case: Vec<BadComponent>,
}

/// A file that is not a loadable tool, and how it must be refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BadComponent {
    /// What the case is.
    pub name: String,
    /// A `.wat` file in `fixtures/components/`.
    pub wat: Option<String>,
    /// Literal bytes.
    pub text: Option<String>,
    /// The first half of this guest's component.
    pub truncate: Option<String>,
    /// This many pseudo-random bytes.
    pub random: Option<usize>,
    /// A component header followed by this many pseudo-random bytes.
    pub random_after_header: Option<usize>,
    /// Expected reason code.
    pub code: String,
    /// Fragments the error message must contain.
    pub message: Vec<String>,
    /// Expected CLI exit code.
    pub exit: u8,
}

/// The component-layer header: `\0asm`, version 0x0d, layer 1.
const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

impl BadComponent {
    /// The bytes of the case's file.
    pub fn bytes(&self) -> Vec<u8> {
        let sources = [
            self.wat.is_some(),
            self.text.is_some(),
            self.truncate.is_some(),
            self.random.is_some(),
            self.random_after_header.is_some(),
        ];
        assert_eq!(
            sources.iter().filter(|s| **s).count(),
            1,
            "case `{}` must name exactly one source",
            self.name
        );
        if let Some(file) = &self.wat {
            let path = fixtures_dir().join("components").join(file);
            return wat::parse_file(&path)
                .unwrap_or_else(|e| panic!("compile {}: {e}", path.display()));
        }
        if let Some(text) = &self.text {
            return text.as_bytes().to_vec();
        }
        if let Some(guest) = &self.truncate {
            let bytes = std::fs::read(guest_path(guest)).expect("read guest");
            return bytes[..bytes.len() / 2].to_vec();
        }
        if let Some(len) = self.random {
            return pseudo_random(len);
        }
        let mut bytes = COMPONENT_HEADER.to_vec();
        bytes.extend(pseudo_random(self.random_after_header.unwrap_or(0)));
        bytes
    }
}

/// Reads `fixtures/runtime/bad_components.toml`.
pub fn bad_components() -> BadComponentTable {
    read_toml("runtime/bad_components.toml")
}

/// Deterministic noise (xorshift64), so failures reproduce.
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}
