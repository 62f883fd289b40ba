//! A native tool's `native = { ... }` table in `airlock.toml`, checked into
//! a [`NativeSpec`] with every mistake pointed at its line.
//!
//! ```toml
//! [tools.native]
//! program = "/usr/bin/curl"       # a path (relative to the file) or a name on PATH
//! args = ["-s", "--json", "@-"]
//! tier = "sandbox"                # or "none": a policy and an approval required
//! network = "strict"              # or "none" (the default)
//! fs_read = ["./data"]            # visible at the same path, read-only
//! fs_write = ["./out"]            # read-write; the working directory
//! hide_airlock_files = false      # true: a grant may contain airlock's own
//!                                 # files (state, config, …), hidden in the sandbox
//! limits = { cpu = "10s", memory = "1GiB", processes = 64, file_size = "64MiB",
//!            open_files = 256, timeout = "30s", output = "1MiB" }
//! ```

use super::{NativeNetwork, NativeSpec, Tier};
use crate::toml_file::{ConfigError, RawSize, TomlText, positive_count, positive_size, timeout};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNative {
    program: Spanned<String>,
    #[serde(default)]
    args: Vec<String>,
    tier: Option<Spanned<String>>,
    network: Option<Spanned<String>>,
    #[serde(default)]
    fs_read: Vec<String>,
    #[serde(default)]
    fs_write: Vec<String>,
    limits: Option<RawLimits>,
    #[serde(default)]
    hide_airlock_files: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    cpu: Option<Spanned<String>>,
    memory: Option<Spanned<RawSize>>,
    processes: Option<Spanned<u64>>,
    file_size: Option<Spanned<RawSize>>,
    open_files: Option<Spanned<u64>>,
    timeout: Option<Spanned<String>>,
    output: Option<Spanned<RawSize>>,
}

/// A path from the file: absolute, relative to the file's directory, or
/// (for a program only) a bare name left for a `PATH` search at load.
pub(crate) fn path(base: &Path, written: &str, bare_is_name: bool) -> PathBuf {
    let path = Path::new(written);
    if path.is_absolute() || (bare_is_name && path.components().count() == 1) {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

fn count(
    value: Option<Spanned<u64>>,
    default: u64,
    key: &str,
    source: &TomlText<'_>,
) -> Result<u64, ConfigError> {
    positive_count(
        value,
        default,
        key,
        "would stop the tool before it starts",
        source,
    )
}

/// Checks a `limits` table; what it leaves out comes from `d`.
pub(crate) fn limits(
    raw: RawLimits,
    d: airlock_sandbox::ProcessLimits,
    source: &TomlText<'_>,
) -> Result<airlock_sandbox::ProcessLimits, ConfigError> {
    let cpu = timeout(
        raw.cpu,
        std::time::Duration::from_secs(d.cpu_seconds),
        "cpu",
        source,
    )?;
    let output = positive_size(raw.output, d.output_bytes as u64, "output", source)?;
    Ok(airlock_sandbox::ProcessLimits {
        // RLIMIT_CPU counts whole seconds; round up so "500ms" still runs.
        cpu_seconds: cpu.as_secs() + u64::from(cpu.subsec_nanos() > 0),
        address_space_bytes: positive_size(raw.memory, d.address_space_bytes, "memory", source)?,
        processes: count(raw.processes, d.processes, "processes", source)?,
        file_size_bytes: positive_size(raw.file_size, d.file_size_bytes, "file_size", source)?,
        open_files: count(raw.open_files, d.open_files, "open_files", source)?,
        wall_clock: timeout(raw.timeout, d.wall_clock, "timeout", source)?,
        output_bytes: usize::try_from(output).unwrap_or(usize::MAX),
    })
}

impl RawNative {
    /// Checks the table; relative paths are taken from `base`.
    pub(crate) fn into_spec(
        self,
        base: &Path,
        source: &TomlText<'_>,
    ) -> Result<NativeSpec, ConfigError> {
        let program = self.program.get_ref().trim();
        if program.is_empty() {
            return Err(source.error(
                self.program.span(),
                "`program` is empty: give the executable, e.g. `program = \"/usr/bin/curl\"`",
            ));
        }
        let tier = match self.tier.as_ref().map(|t| (t.get_ref().as_str(), t.span())) {
            None | Some(("sandbox", _)) => Tier::Sandbox,
            Some(("none", _)) => Tier::None,
            Some((other, span)) => {
                return Err(source.error(
                    span,
                    format!(
                        "tier `{other}` does not exist: write \"sandbox\" (the default) or \"none\""
                    ),
                ));
            }
        };
        let network = match self
            .network
            .as_ref()
            .map(|n| (n.get_ref().as_str(), n.span()))
        {
            None | Some(("none", _)) => NativeNetwork::None,
            Some(("strict", span)) if tier == Tier::None => {
                return Err(source.error(
                    span,
                    "`network = \"strict\"` needs the sandbox: an unsandboxed program could bypass the proxy; use tier \"sandbox\" or network \"none\"",
                ));
            }
            Some(("strict", _)) => NativeNetwork::Strict,
            Some((other, span)) => {
                return Err(source.error(
                    span,
                    format!("network `{other}` does not exist: write \"none\" (the default) or \"strict\""),
                ));
            }
        };
        let limits = match self.limits {
            Some(raw) => limits(raw, airlock_sandbox::DEFAULT_LIMITS, source)?,
            None => airlock_sandbox::DEFAULT_LIMITS,
        };
        Ok(NativeSpec {
            program: path(base, program, true),
            args: self.args,
            tier,
            network,
            fs_read: self.fs_read.iter().map(|p| path(base, p, false)).collect(),
            fs_write: self.fs_write.iter().map(|p| path(base, p, false)).collect(),
            limits,
            hide_airlock_files: self.hide_airlock_files,
        })
    }
}
