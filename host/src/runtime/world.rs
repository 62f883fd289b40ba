//! Which capability world a component belongs to, derived from its imports.
//!
//! This file is the one place that says what each import a component may have
//! means: linked with nothing granted, opening a capability, linked but always
//! denied, or refused at load. See `wit/worlds.wit` for the worlds themselves.

use crate::vocabulary::World;
use std::fmt;

/// The WASI 0.2 patch release this host implements; older 0.2 patches are
/// compatible and accepted.
pub(crate) const WASI_MAX_PATCH: u64 = 12;

/// The `airlock:tool` interface a tool must export, and the version range the
/// host speaks (any `0.1.x`).
pub(crate) const TOOL_EXPORT: &str = "airlock:tool/tool";
pub(crate) const TOOL_VERSION_MINOR: u64 = 1;

/// What the host does with one accepted import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportRole {
    /// Base WASI (io, clocks, random, cli, `wasi:http/types`): linked with
    /// nothing granted.
    Base,
    /// `wasi:http/outgoing-handler`: the egress policy decides each request.
    Network,
    /// `wasi:filesystem`: only granted preopens are visible.
    Filesystem,
    /// `wasi:sockets`: linked so the component loads; every operation fails
    /// with `access-denied`.
    DeniedSockets,
}

impl ImportRole {
    /// Stable name used in `airlock inspect` output.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportRole::Base => "base",
            ImportRole::Network => "network",
            ImportRole::Filesystem => "filesystem",
            ImportRole::DeniedSockets => "denied",
        }
    }

    /// One line for humans on what the host does with such an import.
    pub fn explain(self) -> &'static str {
        match self {
            ImportRole::Base => "linked with nothing granted",
            ImportRole::Network => "every request goes through the egress policy",
            ImportRole::Filesystem => {
                "only granted directories are visible (none unless an operator grants some)"
            }
            ImportRole::DeniedSockets => "linked, every socket operation is denied",
        }
    }
}

/// One import of a component and what the host does with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    /// The import name exactly as in the component, e.g. `wasi:io/streams@0.2.6`.
    pub name: String,
    /// What the host does with it.
    pub role: ImportRole,
}

/// The outcome of classifying a component's imports and exports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Classification {
    pub imports: Vec<Import>,
    pub world: World,
    pub tool_export: String,
}

/// Why an import is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedImport {
    /// The import name as in the component.
    pub name: String,
    /// Why, and what to do instead.
    pub reason: String,
}

impl fmt::Display for RefusedImport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.name, self.reason)
    }
}

/// A component whose imports or exports do not fit any world.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClassifyError {
    /// One or more imports are neither WASI 0.2 nor provided by airlock.
    #[error(
        "the component imports what airlock does not provide: {}. \
         A tool may import only WASI 0.2 (io, clocks, random, cli, filesystem, sockets, \
         http/outgoing-handler); remove the dependency that pulls these in",
        list(.0)
    )]
    ForbiddenImports(Vec<RefusedImport>),
    /// The component does not export `airlock:tool/tool@0.1.x`.
    #[error(
        "the component does not export `{TOOL_EXPORT}@0.1.x` (it exports: {}). \
         A tool implements the `tool` interface from airlock's wit/tool.wit; \
         build it against the world `pure`, `network`, `files` or `network-files`",
        if .exports.is_empty() { "nothing".to_string() } else { .exports.join(", ") }
    )]
    MissingToolExport {
        /// What the component does export.
        exports: Vec<String>,
    },
}

impl ClassifyError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            ClassifyError::ForbiddenImports(_) => "forbidden_import",
            ClassifyError::MissingToolExport { .. } => "missing_tool_export",
        }
    }
}

fn list(refused: &[RefusedImport]) -> String {
    refused
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// An interface name split into its parts: `ns:pkg/iface@version`.
struct InterfaceName<'a> {
    namespace: &'a str,
    package: &'a str,
    interface: &'a str,
    version: Option<&'a str>,
}

impl<'a> InterfaceName<'a> {
    fn parse(name: &'a str) -> Option<Self> {
        let (path, version) = match name.split_once('@') {
            Some((path, version)) => (path, Some(version)),
            None => (name, None),
        };
        let (namespace, rest) = path.split_once(':')?;
        let (package, interface) = rest.split_once('/')?;
        Some(Self {
            namespace,
            package,
            interface,
            version,
        })
    }
}

/// Classifies a component from its top-level import and export names.
///
/// Every import is checked and all refusals are reported together, so an
/// author fixes them in one round.
pub(crate) fn classify(
    imports: &[String],
    exports: &[String],
) -> Result<Classification, ClassifyError> {
    let mut accepted = Vec::with_capacity(imports.len());
    let mut refused = Vec::new();
    for name in imports {
        match role_of(name) {
            Ok(role) => accepted.push(Import {
                name: name.clone(),
                role,
            }),
            Err(reason) => refused.push(RefusedImport {
                name: name.clone(),
                reason,
            }),
        }
    }
    if !refused.is_empty() {
        return Err(ClassifyError::ForbiddenImports(refused));
    }

    let tool_export = exports
        .iter()
        .find(|name| is_tool_export(name))
        .cloned()
        .ok_or_else(|| ClassifyError::MissingToolExport {
            exports: exports.to_vec(),
        })?;

    let network = accepted.iter().any(|i| i.role == ImportRole::Network);
    let filesystem = accepted.iter().any(|i| i.role == ImportRole::Filesystem);
    Ok(Classification {
        imports: accepted,
        world: World::from_needs(network, filesystem),
        tool_export,
    })
}

fn is_tool_export(name: &str) -> bool {
    let Some(parsed) = InterfaceName::parse(name) else {
        return false;
    };
    let version_ok = parsed
        .version
        .and_then(|v| semver::Version::parse(v).ok())
        .is_some_and(|v| v.major == 0 && v.minor == TOOL_VERSION_MINOR && v.pre.is_empty());
    (parsed.namespace, parsed.package, parsed.interface) == ("airlock", "tool", "tool")
        && version_ok
}

/// The role of one import, or why it is refused.
fn role_of(name: &str) -> Result<ImportRole, String> {
    let Some(parsed) = InterfaceName::parse(name) else {
        return Err("a bare import outside any interface; airlock links interfaces only".into());
    };
    match parsed.namespace {
        "wasi" => {}
        "airlock" => {
            return Err(
                "this airlock host provides no `airlock:*` imports; tools only export `airlock:tool/tool`"
                    .into(),
            );
        }
        other => {
            return Err(format!(
                "namespace `{other}` is neither `wasi` nor `airlock`"
            ));
        }
    }
    check_wasi_version(parsed.version)?;
    let role = match (parsed.package, parsed.interface) {
        ("io", "error" | "poll" | "streams")
        | ("clocks", "monotonic-clock" | "wall-clock")
        | ("random", "random" | "insecure" | "insecure-seed")
        | (
            "cli",
            "environment" | "exit" | "stdin" | "stdout" | "stderr" | "terminal-input"
            | "terminal-output" | "terminal-stdin" | "terminal-stdout" | "terminal-stderr",
        )
        | ("http", "types") => ImportRole::Base,
        ("http", "outgoing-handler") => ImportRole::Network,
        ("filesystem", "types" | "preopens") => ImportRole::Filesystem,
        (
            "sockets",
            "network" | "instance-network" | "tcp" | "tcp-create-socket" | "udp"
            | "udp-create-socket" | "ip-name-lookup",
        ) => ImportRole::DeniedSockets,
        ("http", "incoming-handler") => {
            return Err("a tool makes requests, it does not serve them; import `wasi:http/outgoing-handler` instead".into());
        }
        (package, interface) => {
            return Err(format!(
                "`wasi:{package}/{interface}` is not among the WASI 0.2 interfaces airlock links"
            ));
        }
    };
    Ok(role)
}

fn check_wasi_version(version: Option<&str>) -> Result<(), String> {
    let supported = || format!("airlock implements WASI 0.2.0 to 0.2.{WASI_MAX_PATCH}");
    let Some(text) = version else {
        return Err(format!(
            "an unversioned WASI import; {}: rebuild with a current toolchain",
            supported()
        ));
    };
    let parsed = semver::Version::parse(text).map_err(|_| {
        format!(
            "version `{text}` is not a semantic version; {}",
            supported()
        )
    })?;
    if parsed.major != 0 || parsed.minor != 2 || !parsed.pre.is_empty() {
        return Err(format!(
            "WASI {text} is not supported; {}: build against WASI 0.2",
            supported()
        ));
    }
    if parsed.patch > WASI_MAX_PATCH {
        return Err(format!(
            "WASI {text} is newer than this host; {}: upgrade airlock or build against an older WASI 0.2",
            supported()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::Capability;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    const TOOL: &str = "airlock:tool/tool@0.1.0";

    #[test]
    fn worlds_follow_imports() {
        let cases: &[(&[&str], World)] = &[
            (
                &["wasi:cli/stdout@0.2.6", "wasi:io/streams@0.2.6"],
                World::Pure,
            ),
            (&["wasi:sockets/tcp@0.2.6"], World::Pure),
            (
                &[
                    "wasi:http/outgoing-handler@0.2.12",
                    "wasi:http/types@0.2.12",
                ],
                World::Network,
            ),
            (&["wasi:filesystem/preopens@0.2.0"], World::Files),
            (
                &[
                    "wasi:filesystem/types@0.2.3",
                    "wasi:http/outgoing-handler@0.2.3",
                ],
                World::NetworkFiles,
            ),
        ];
        for (imports, world) in cases {
            let c = classify(&names(imports), &names(&[TOOL])).expect("accepted");
            assert_eq!(c.world, *world, "{imports:?}");
        }
    }

    #[test]
    fn refusals_name_every_offending_import() {
        let imports = names(&[
            "wasi:io/streams@0.2.6",
            "evil:exfil/send@1.0.0",
            "wasi:io/streams@0.3.0",
            "wasi:io/poll@0.2.13",
            "wasi:cli/run@0.2.0",
            "wasi:clocks/timezone@0.2.12",
            "wasi:http/incoming-handler@0.2.0",
            "airlock:tool/host@0.1.0",
            "wasi:io/error",
            "wasi:random/random@0.2.0-rc-2023-11-10",
            "log",
        ]);
        let Err(ClassifyError::ForbiddenImports(refused)) = classify(&imports, &names(&[TOOL]))
        else {
            panic!("expected refusal");
        };
        let refused: Vec<&str> = refused.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            refused,
            imports[1..].iter().map(String::as_str).collect::<Vec<_>>()
        );
    }

    #[test]
    fn tool_export_must_be_0_1() {
        for (export, ok) in [
            ("airlock:tool/tool@0.1.0", true),
            ("airlock:tool/tool@0.1.7", true),
            ("airlock:tool/tool@0.2.0", false),
            ("airlock:tool/tool", false),
            ("airlock:tool/types@0.1.0", false),
            ("wasi:cli/run@0.2.0", false),
        ] {
            let result = classify(&[], &names(&[export]));
            assert_eq!(result.is_ok(), ok, "{export}");
        }
    }

    #[test]
    fn capabilities_follow_world() {
        assert!(World::Pure.capabilities().is_empty());
        assert_eq!(World::Network.capabilities(), &[Capability::Network]);
        assert!(
            World::Files
                .capabilities()
                .contains(&Capability::FilesystemWrite)
        );
        assert_eq!(World::NetworkFiles.capabilities().len(), 3);
    }
}
