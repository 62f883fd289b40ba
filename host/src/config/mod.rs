//! The operator's configuration, `airlock.toml`: which tools exist and what
//! each is granted. Checked completely at load; mistakes are reported with
//! the file, line and column.
//!
//! ```toml
//! [[tools]]
//! name = "weather"
//! component = "weather.wasm"          # relative to this file
//! dirs = [{ host = "./cache", guest = "/cache", access = "rw" }]
//! sensitive = true                    # needs an approval whatever it imports
//! limits = { timeout = "5s", memory = "64MiB", input = "256KiB", output = "1MiB" }
//!
//! [tools.network]
//! max_response_bytes = "256KiB"
//!
//! [[tools.network.allow]]
//! host = "api.weather.example"
//! schemes = ["https"]
//!
//! [[tools.credentials]]                # the host adds the vault secret
//! secret = "weather-key"
//! header = "X-Api-Key"
//! format = "{secret}"
//! hosts = ["api.weather.example"]
//!
//! [[tools]]
//! name = "converter"                  # a program, not a component
//! native = { program = "/usr/bin/pandoc", network = "none", fs_read = ["./docs"] }
//! ```
//!
//! The `native` table's keys are described in [`crate::native`].

mod fleet;
mod lock;
mod registries;
pub mod serve;

use crate::egress::{NetworkGrant, RawGrant};
use crate::grants::{DirAccess, DirGrant, Grants};
use crate::journal::{CommitMode, RawJournal};
use crate::limits::Limits;
use crate::native::{NativeSpec, RawNative};
use crate::servers::{RawServer, ServerConfig};
use crate::store::StoreLocation;
use crate::store::location::{RawPostgres, store_location};
use crate::telemetry::{RawTelemetry, TelemetrySettings};
use crate::toml_file::{ConfigError, RawSize, TomlText, positive_size, timeout};
pub use fleet::{FleetPolicy, RequiredSandbox};
pub use lock::{LOCKFILE, LockEntry, LockError, Lockfile, now as lock_time};
pub use registries::{ComponentSource, NoTrust, RegistryLogin, RegistrySettings, required_trust};
use serde::Deserialize;
use serve::RawServe;
pub use serve::ServeSettings;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// One tool's entry in `airlock.toml`.
#[derive(Clone, Debug)]
pub struct ToolConfig {
    name: String,
    component: Option<ComponentSource>,
    native: Option<NativeSpec>,
    grants: Grants,
    description: Option<String>,
    input_schema: Option<String>,
    limits: Option<Limits>,
    lock: Option<LockEntry>,
    trust: Option<crate::oci::Trust>,
}

impl ToolConfig {
    /// The tool's name, as operators and policies refer to it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The component: a file (resolved against the configuration's
    /// directory) or an `oci://` reference.
    pub fn component(&self) -> Option<&ComponentSource> {
        self.component.as_ref()
    }

    /// What loads: [`ToolConfig::component`], with an `oci://` reference
    /// pinned to the lockfile's digest when the lockfile pins it (so the
    /// tag is not asked again).
    pub fn component_to_load(&self) -> Option<ComponentSource> {
        match (&self.component, &self.lock) {
            (Some(ComponentSource::Oci(reference)), Some(pin)) => {
                Some(ComponentSource::Oci(reference.pinned(pin.digest)))
            }
            (component, _) => component.clone(),
        }
    }

    /// Whose signature this tool's `oci://` component must carry (its own
    /// `verify`, else its registry's when that requires a signature);
    /// `None` when none is required.
    pub fn signature(&self) -> Option<&crate::oci::Trust> {
        self.trust.as_ref()
    }

    /// The lockfile's pin of this tool's `oci://` component, when
    /// `airlock.lock` has one that matches its configuration.
    pub fn locked(&self) -> Option<&LockEntry> {
        self.lock.as_ref()
    }

    /// The native program and its sandbox, for a tool that is not a
    /// component.
    pub fn native(&self) -> Option<&NativeSpec> {
        self.native.as_ref()
    }

    /// What the tool is granted.
    pub fn grants(&self) -> &Grants {
        &self.grants
    }

    /// The operator's description, over the tool's own.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The operator's input schema (JSON text), over the tool's own.
    pub fn input_schema(&self) -> Option<&str> {
        self.input_schema.as_deref()
    }

    /// A component's limits from its `limits` table (the host's defaults
    /// for what the table leaves out); `None` without a table.
    pub fn limits(&self) -> Option<&Limits> {
        self.limits.as_ref()
    }
}

/// A parsed, checked `airlock.toml`.
///
/// # Examples
///
/// ```
/// let config = airlock::Config::from_toml(
///     "[[tools]]\nname = \"fetch\"\n[[tools.network.allow]]\nhost = \"api.example.com\"\n",
///     "airlock.toml",
///     std::path::Path::new("."),
/// )?;
/// let fetch = config.tool("fetch").expect("configured");
/// assert_eq!(fetch.grants().network().rules().rules().len(), 1);
/// assert!(config.tool("other").is_none());
/// # Ok::<(), airlock::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Config {
    tools: Vec<ToolConfig>,
    servers: Vec<ServerConfig>,
    serve: ServeSettings,
    journal: CommitMode,
    store: StoreLocation,
    telemetry: Option<TelemetrySettings>,
    registries: Vec<RegistrySettings>,
    fleet: Option<FleetPolicy>,
    /// Where the lockfile was looked for, and what it held if it was there
    /// (only for a configuration read from a file).
    lockfile: Option<(PathBuf, Option<Lockfile>)>,
    /// The keys and trusted roots `verify` tables read.
    trust_files: Vec<PathBuf>,
    /// The operator's CAs upstream TLS is verified against too.
    egress_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    tools: Vec<Spanned<RawTool>>,
    #[serde(default)]
    servers: Vec<Spanned<RawServer>>,
    serve: Option<RawServe>,
    journal: Option<RawJournal>,
    store: Option<Spanned<String>>,
    postgres: Option<Spanned<RawPostgres>>,
    telemetry: Option<RawTelemetry>,
    #[serde(default)]
    registries: std::collections::BTreeMap<String, Spanned<registries::RawRegistry>>,
    fleet: Option<fleet::RawFleet>,
    egress: Option<RawEgress>,
}

/// The `[egress]` table: what upstream TLS is verified against besides
/// the Mozilla roots.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEgress {
    roots: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    name: Spanned<String>,
    component: Option<Spanned<String>>,
    native: Option<Spanned<RawNative>>,
    #[serde(default)]
    dirs: Vec<Spanned<RawDir>>,
    network: Option<RawGrant>,
    #[serde(default)]
    sensitive: bool,
    #[serde(default)]
    credentials: Vec<Spanned<crate::bindings::RawCredential>>,
    description: Option<String>,
    input_schema: Option<Spanned<toml::Table>>,
    limits: Option<Spanned<RawToolLimits>>,
    verify: Option<Spanned<registries::RawVerify>>,
}

/// A component's `limits` table as written (a native tool's limits are in
/// its `native` table).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToolLimits {
    timeout: Option<Spanned<String>>,
    memory: Option<Spanned<RawSize>>,
    input: Option<Spanned<RawSize>>,
    output: Option<Spanned<RawSize>>,
}

impl RawToolLimits {
    fn into_limits(self, source: &TomlText<'_>) -> Result<Limits, ConfigError> {
        let d = Limits::default();
        let bytes = |value, default: usize, key| {
            positive_size(value, default as u64, key, source)
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        };
        Ok(Limits {
            timeout: timeout(self.timeout, d.timeout, "timeout", source)?,
            max_memory_bytes: positive_size(self.memory, d.max_memory_bytes, "memory", source)?,
            max_input_bytes: bytes(self.input, d.max_input_bytes, "input")?,
            max_output_bytes: bytes(self.output, d.max_output_bytes, "output")?,
            ..d
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDir {
    host: String,
    guest: String,
    #[serde(default)]
    access: Option<String>,
}

/// The certificates of `[egress] roots`, each file read now (and kept
/// among the files tools never see).
fn egress_roots(
    roots: &Spanned<Vec<String>>,
    base: &Path,
    source: &TomlText<'_>,
    trust_files: &mut Vec<PathBuf>,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, ConfigError> {
    use rustls::pki_types::pem::PemObject;
    let mut certificates = Vec::new();
    for file in roots.get_ref() {
        let path = base.join(file);
        let read: Result<Vec<_>, _> =
            rustls::pki_types::CertificateDer::pem_file_iter(&path).and_then(Iterator::collect);
        match read {
            Ok(found) if !found.is_empty() => certificates.extend(found),
            Ok(_) => {
                return Err(source.error(
                    roots.span(),
                    format!("{} holds no PEM certificate: give the CA's certificate (-----BEGIN CERTIFICATE-----)", path.display()),
                ));
            }
            Err(e) => {
                return Err(source.error(
                    roots.span(),
                    format!("{} cannot be read as PEM certificates: {e}", path.display()),
                ));
            }
        }
        trust_files.push(path);
    }
    Ok(certificates)
}

impl Config {
    /// Reads and checks `path`, and `airlock.lock` beside it when there is
    /// one (see [`Lockfile`]: its pins are what
    /// [`ToolConfig::component_to_load`] loads).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut config = Self::from_toml(&text, &path.display().to_string(), base)?;
        config.apply_lockfile(path)?;
        Ok(config)
    }

    /// Parses configuration text; relative paths are taken from `base`.
    pub fn from_toml(text: &str, origin: &str, base: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(&e, text, origin))?;
        let source = TomlText { text, origin };
        let mut trust_files = Vec::new();
        let registries = registries::registries(raw.registries, base, &source, &mut trust_files)?;
        let fleet = raw.fleet.map(|fleet| fleet.check(&source)).transpose()?;
        let mut tools: Vec<ToolConfig> = Vec::with_capacity(raw.tools.len());
        // Where each name's entry starts, to name both places of a duplicate.
        let mut starts: Vec<(String, usize)> = Vec::with_capacity(raw.tools.len());
        for tool in raw.tools {
            let span = tool.span();
            let tool = tool.into_inner();
            let name = tool.name.get_ref().trim().to_string();
            if name.is_empty() {
                return Err(source.error(
                    tool.name.span(),
                    "a tool needs a name, e.g. `name = \"weather\"`",
                ));
            }
            if let Some((_, first)) = starts.iter().find(|(n, _)| *n == name) {
                let (line, _) = source.line_column(*first);
                return Err(source.error(
                    span,
                    format!(
                        "tool `{name}` is configured twice (first at line {line}): rename one or merge the two entries"
                    ),
                ));
            }
            starts.push((name.clone(), span.start));
            let native = match tool.native {
                None => None,
                Some(native) => {
                    let span = native.span();
                    let misplaced = if tool.component.is_some() {
                        Some("`component`: a tool is a component or a native program, not both")
                    } else if !tool.dirs.is_empty() {
                        Some(
                            "`dirs`: a native tool's directories are `fs_read` and `fs_write` in its `native` table",
                        )
                    } else if tool.limits.is_some() {
                        Some(
                            "`limits`: a native tool's limits are the `limits` of its `native` table",
                        )
                    } else if tool.verify.is_some() {
                        Some("`verify`: signatures are checked for `oci://` components")
                    } else {
                        None
                    };
                    if let Some(problem) = misplaced {
                        return Err(
                            source.error(span, format!("native tool `{name}` also has {problem}"))
                        );
                    }
                    Some(native.into_inner().into_spec(base, &source)?)
                }
            };
            let mut grants = Grants::none().named(name.clone());
            if tool.sensitive {
                grants = grants.mark_sensitive();
            }
            for dir in tool.dirs {
                let dir_span = dir.span();
                let dir = dir.into_inner();
                let access = match dir.access.as_deref() {
                    None | Some("ro") => DirAccess::ReadOnly,
                    Some("rw") => DirAccess::ReadWrite,
                    Some(other) => {
                        return Err(source.error(
                            dir_span,
                            format!("access `{other}` is neither \"ro\" nor \"rw\""),
                        ));
                    }
                };
                grants = grants.with_dir(DirGrant::new(base.join(&dir.host), dir.guest, access));
            }
            if let Some(network) = tool.network {
                grants = grants.with_network(NetworkGrant::from_raw(network, &source)?);
            }
            let credentials_span = tool.credentials.first().map(Spanned::span);
            for credential in tool.credentials {
                let binding = crate::bindings::bound(credential, &grants, "tools", &name, &source)?;
                grants = grants.with_credential(binding);
            }
            if let (Some(native), Some(span)) = (&native, credentials_span) {
                crate::native::injectable(
                    &grants,
                    native.network == crate::native::NativeNetwork::Strict,
                )
                .map_err(|message| source.error(span, message))?;
            }
            let input_schema = match tool.input_schema {
                None => None,
                Some(schema) => {
                    let span = schema.span();
                    let json = serde_json::to_value(schema.into_inner())
                        .map_err(|e| source.error(span.clone(), e.to_string()))?;
                    if json.get("type").is_some_and(|t| t != "object") {
                        return Err(source.error(
                            span,
                            "`input_schema` must describe an object (`type = \"object\"`): tools take JSON objects",
                        ));
                    }
                    Some(json.to_string())
                }
            };
            let limits = tool
                .limits
                .map(|l| l.into_inner().into_limits(&source))
                .transpose()?;
            let component = tool
                .component
                .map(|c| ComponentSource::parse(c, base, &source))
                .transpose()?;
            let own = match tool.verify {
                Some(verify) if !matches!(component, Some(ComponentSource::Oci(_))) => {
                    return Err(source.error(
                        verify.span(),
                        format!("tool `{name}` has `verify`, but signatures are checked for `oci://` components only"),
                    ));
                }
                Some(verify) => Some(registries::trust(verify, base, &source, &mut trust_files)?),
                None => None,
            };
            let trust = match &component {
                Some(ComponentSource::Oci(reference)) => {
                    registries::required_trust(&registries, reference, own.as_ref())
                        .map_err(|e| source.error(span.clone(), format!("tool `{name}`: {e}")))?
                }
                _ => None,
            };
            tools.push(ToolConfig {
                name,
                component,
                native,
                grants,
                description: tool.description,
                input_schema,
                limits,
                lock: None,
                trust,
            });
        }
        let mut servers: Vec<ServerConfig> = Vec::with_capacity(raw.servers.len());
        let mut server_starts: Vec<(String, usize)> = Vec::new();
        for server in raw.servers {
            let span = server.span();
            let name = server.get_ref().name().get_ref().trim().to_string();
            if let Some((_, first)) = server_starts.iter().find(|(n, _)| *n == name) {
                let (line, _) = source.line_column(*first);
                return Err(source.error(
                    span,
                    format!(
                        "server `{name}` is configured twice (first at line {line}): rename one or merge the two entries"
                    ),
                ));
            }
            server_starts.push((name, span.start));
            servers.push(server.into_inner().into_config(base, &source)?);
        }
        let serve = match raw.serve {
            Some(serve) => serve.into_settings(base, &source)?,
            None => ServeSettings::default(),
        };
        let journal = match raw.journal {
            Some(journal) => journal.into_mode(&source)?,
            None => CommitMode::default(),
        };
        let store = store_location(raw.store, raw.postgres, base, &source)?;
        let telemetry = raw
            .telemetry
            .map(|t| {
                TelemetrySettings::new(t.otlp.get_ref())
                    .map_err(|e| source.error(t.otlp.span(), e.to_string()))
            })
            .transpose()?;
        let egress_roots = match raw.egress.and_then(|e| e.roots) {
            None => Vec::new(),
            Some(roots) => egress_roots(&roots, base, &source, &mut trust_files)?,
        };
        Ok(Self {
            tools,
            servers,
            serve,
            journal,
            store,
            telemetry,
            registries,
            fleet,
            lockfile: None,
            trust_files,
            egress_roots,
        })
    }

    /// The MCP servers airlock hosts (`[[servers]]`), in file order.
    pub fn servers(&self) -> &[ServerConfig] {
        &self.servers
    }

    /// How `airlock serve` serves these tools (the `[serve]` table).
    pub fn serve(&self) -> &ServeSettings {
        &self.serve
    }

    /// When invocations' journal entries are durable (the `[journal]`
    /// table; read at start: a reload keeps the mode the server started
    /// with).
    pub fn journal_commit(&self) -> CommitMode {
        self.journal
    }

    /// Where the host keeps its state (`store`, with the `[postgres]`
    /// table): the state directory's SQLite database unless a shared
    /// PostgreSQL database is named. Read at start, like the commit mode.
    pub fn store(&self) -> &StoreLocation {
        &self.store
    }

    /// Where traces and denial records are exported (the `[telemetry]`
    /// table), if anywhere. Read at start.
    pub fn telemetry(&self) -> Option<&TelemetrySettings> {
        self.telemetry.as_ref()
    }

    /// The files besides this one that decide what runs: the lockfile
    /// (where it is or would be) and the keys and trusted roots `verify`
    /// tables name. A server protects them like the configuration, so no
    /// tool can rewrite a pin or a key.
    pub fn companion_files(&self) -> Vec<PathBuf> {
        self.lockfile
            .iter()
            .map(|(path, _)| path.clone())
            .chain(self.trust_files.iter().cloned())
            .collect()
    }

    /// The operator's CAs (`[egress] roots`) upstream servers' certificates
    /// are verified against, besides the Mozilla roots.
    pub fn egress_roots(&self) -> &[rustls::pki_types::CertificateDer<'static>] {
        &self.egress_roots
    }

    /// What replicas of a shared store must attest to (the `[fleet]`
    /// table), if anything.
    pub fn fleet(&self) -> Option<&FleetPolicy> {
        self.fleet.as_ref()
    }

    /// How to reach registries (the `[registries]` tables), by prefix.
    pub fn registries(&self) -> &[RegistrySettings] {
        &self.registries
    }

    /// The tool named `name`, if configured.
    pub fn tool(&self, name: &str) -> Option<&ToolConfig> {
        self.tools.iter().find(|t| t.name == name)
    }

    /// Every configured tool, in file order.
    pub fn tools(&self) -> &[ToolConfig] {
        &self.tools
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_carry_their_grants() {
        let config = Config::from_toml(
            r#"
[[tools]]
name = "fetch"
component = "fetch.wasm"
dirs = [{ host = "data", guest = "/data" }, { host = "out", guest = "/out", access = "rw" }]
[tools.network]
max_requests = 3
[[tools.network.allow]]
host = "api.example.com"

[[tools]]
name = "pure"
"#,
            "airlock.toml",
            Path::new("/etc/airlock"),
        )
        .expect("valid");
        let fetch = config.tool("fetch").expect("fetch");
        assert_eq!(
            fetch.component(),
            Some(&ComponentSource::File("/etc/airlock/fetch.wasm".into()))
        );
        assert_eq!(fetch.grants().dirs().len(), 2);
        assert_eq!(fetch.grants().dirs()[1].access(), DirAccess::ReadWrite);
        assert_eq!(fetch.grants().network().budgets().max_requests, 3);
        assert!(
            config
                .tool("pure")
                .expect("pure")
                .grants()
                .network()
                .is_empty()
        );
    }

    #[test]
    fn native_tools_take_paths_from_the_file_and_limits_in_units() {
        let config = Config::from_toml(
            r#"
[[tools]]
name = "conv"
sensitive = true
[tools.native]
program = "bin/conv"
args = ["--json"]
network = "strict"
fs_read = ["docs", "/usr/share/dict"]
fs_write = ["out"]
limits = { cpu = "1500ms", memory = "256MiB", processes = 8, timeout = "5s", output = 4096 }

[[tools]]
name = "sh"
native = { program = "sh", tier = "none" }
"#,
            "airlock.toml",
            Path::new("/etc/airlock"),
        )
        .expect("valid");
        let conv = config.tool("conv").expect("conv");
        assert!(conv.component().is_none());
        assert!(conv.grants().is_marked_sensitive());
        let spec = conv.native().expect("native");
        assert_eq!(spec.program, Path::new("/etc/airlock/bin/conv"));
        assert_eq!(spec.args, ["--json"]);
        assert_eq!(spec.tier, crate::native::Tier::Sandbox);
        assert_eq!(spec.network, crate::native::NativeNetwork::Strict);
        assert_eq!(
            spec.fs_read,
            [Path::new("/etc/airlock/docs"), Path::new("/usr/share/dict")]
        );
        assert_eq!(spec.fs_write, [Path::new("/etc/airlock/out")]);
        assert_eq!(spec.limits.cpu_seconds, 2, "rounded up to whole seconds");
        assert_eq!(spec.limits.address_space_bytes, 256 << 20);
        assert_eq!(spec.limits.processes, 8);
        assert_eq!(spec.limits.wall_clock, std::time::Duration::from_secs(5));
        assert_eq!(spec.limits.output_bytes, 4096);
        assert_eq!(
            spec.limits.open_files,
            airlock_sandbox::DEFAULT_LIMITS.open_files,
            "unset limits keep their defaults"
        );
        let sh = config.tool("sh").and_then(ToolConfig::native).expect("sh");
        assert_eq!(
            sh.program,
            Path::new("sh"),
            "a bare name is found on PATH at load"
        );
        assert_eq!(sh.tier, crate::native::Tier::None);
        assert_eq!(sh.network, crate::native::NativeNetwork::None);
    }

    #[test]
    fn components_take_limits_in_units() {
        let config = Config::from_toml(
            "[[tools]]\nname = \"a\"\nlimits = { timeout = \"250ms\", memory = \"16MiB\", output = \"4KiB\" }\n",
            "airlock.toml",
            Path::new("."),
        )
        .expect("valid");
        let limits = config
            .tool("a")
            .and_then(ToolConfig::limits)
            .expect("limits");
        assert_eq!(limits.timeout, std::time::Duration::from_millis(250));
        assert_eq!(limits.max_memory_bytes, 16 << 20);
        assert_eq!(limits.max_output_bytes, 4096);
        assert_eq!(limits.max_input_bytes, Limits::default().max_input_bytes);
    }

    #[test]
    fn mistakes_point_at_the_line() {
        let cases = [
            (
                "[[tools]]\nname = \"a\"\n[[tools]]\nname = \"a\"\n",
                "airlock.toml:3:1:",
                "twice (first at line 1)",
            ),
            (
                "[[tools]]\nname = \"a\"\n[[tools.network.allow]]\ncidr = \"nope\"\n",
                "airlock.toml:4:8:",
                "not a CIDR",
            ),
            (
                "[[tools]]\nname = \"a\"\ncolour = \"red\"\n",
                "airlock.toml:3:1:",
                "unknown field `colour`",
            ),
            (
                "[[tools]]\nname = \"\"\n",
                "airlock.toml:2:8:",
                "needs a name",
            ),
            (
                "[[tools]]\nname = \"a\"\ndirs = [{ host = \"x\", guest = \"/x\", access = \"rwx\" }]\n",
                "airlock.toml:3:9:",
                "\"ro\" nor \"rw\"",
            ),
            (
                "[[tools]]\nname = \"a\"\n[[tools.network.allow]]\nhost = \"api.test\"\n[[tools.credentials]]\nsecret = \"k\"\nheader = \"user-agent\"\nhosts = [\"api.test\"]\n",
                "airlock.toml:7:10:",
                "not a credential header",
            ),
            (
                "[[tools]]\nname = \"a\"\n[[tools.network.allow]]\nhost = \"api.test\"\n[[tools.credentials]]\nsecret = \"k\"\nheader = \"authorization\"\nhosts = [\"other.test\"]\n",
                "airlock.toml:8:9:",
                "https://other.test, which tool `a`'s network grant does not allow",
            ),
            (
                "[[tools]]\nname = \"a\"\n[[tools.credentials]]\nsecret = \"k\"\nheader = \"authorization\"\nhosts = [\"a.test\"]\ncommand = \"cat key\"\n",
                "airlock.toml:7:1:",
                "unknown field `command`",
            ),
            (
                "[[tools]]\nname = \"a\"\n[[tools.credentials]]\nsecret = \"k\"\nheader = \"authorization\"\nformat = \"Bearer\"\nhosts = [\"a.test\"]\n",
                "airlock.toml:6:10:",
                "exactly once",
            ),
            (
                "[[tools]]\nname = \"a\"\ncomponent = \"a.wasm\"\nnative = { program = \"/bin/true\" }\n",
                "airlock.toml:4:10:",
                "a component or a native program, not both",
            ),
            (
                // A native tool's secrets go out through its proxy only.
                "[[tools]]\nname = \"a\"\nnative = { program = \"/bin/true\" }\n[[tools.network.allow]]\nhost = \"a.test\"\n[[tools.credentials]]\nsecret = \"k\"\nheader = \"authorization\"\nhosts = [\"a.test\"]\n",
                "airlock.toml:6:1:",
                "the program has no network",
            ),
            (
                // The proxy cannot add a header inside TLS it does not
                // terminate.
                "[[tools]]\nname = \"a\"\nnative = { program = \"/bin/true\", network = \"strict\" }\n[[tools.network.allow]]\nhost = \"a.test\"\nintercept = false\n[[tools.credentials]]\nsecret = \"k\"\nheader = \"authorization\"\nhosts = [\"a.test\"]\n",
                "airlock.toml:7:1:",
                "whose rule says `intercept = false`",
            ),
            (
                "[[tools]]\nname = \"a\"\nnative = { program = \"/bin/true\", tier = \"none\", network = \"strict\" }\n",
                "airlock.toml:3:60:",
                "needs the sandbox",
            ),
            (
                "[[tools]]\nname = \"a\"\nnative = { program = \"/bin/true\", tier = \"chroot\" }\n",
                "airlock.toml:3:42:",
                "\"sandbox\" (the default) or \"none\"",
            ),
            (
                "[[tools]]\nname = \"a\"\nnative = { program = \"/bin/true\", limits = { memory = \"lots\" } }\n",
                "airlock.toml:3:55:",
                "`memory` must be a byte count",
            ),
            (
                "[[tools]]\nname = \"a\"\nnative = { program = \"/bin/true\", limits = { processes = 0 } }\n",
                "airlock.toml:3:58:",
                "`processes = 0`",
            ),
            (
                "[[tools]]\nname = \"a\"\nlimits = { timeout = \"0s\" }\n",
                "airlock.toml:3:22:",
                "positive duration",
            ),
            (
                "[[tools]]\nname = \"a\"\nnative = { program = \"/bin/true\" }\nlimits = { timeout = \"1s\" }\n",
                "airlock.toml:3:10:",
                "limits are the `limits` of its `native` table",
            ),
            (
                "[[tools]]\nname = \"a\"\nnative = { program = \" \" }\n",
                "airlock.toml:3:22:",
                "`program` is empty",
            ),
        ];
        for (text, location, hint) in cases {
            let message = Config::from_toml(text, "airlock.toml", Path::new("."))
                .expect_err("invalid")
                .to_string();
            assert!(message.starts_with(location), "{text:?}: {message}");
            assert!(message.contains(hint), "{text:?}: {message}");
        }
    }
}
