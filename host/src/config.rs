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
//!
//! [tools.network]
//! max_response_bytes = "256KiB"
//!
//! [[tools.network.allow]]
//! host = "api.weather.example"
//! schemes = ["https"]
//! ```

use crate::egress::{ConfigError, NetworkGrant, RawGrant, Source};
use crate::grants::{DirAccess, DirGrant, Grants};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// One tool's entry in `airlock.toml`.
#[derive(Clone, Debug)]
pub struct ToolConfig {
    name: String,
    component: Option<PathBuf>,
    grants: Grants,
}

impl ToolConfig {
    /// The tool's name, as operators and policies refer to it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The component file, resolved against the configuration's directory.
    pub fn component(&self) -> Option<&Path> {
        self.component.as_deref()
    }

    /// What the tool is granted.
    pub fn grants(&self) -> &Grants {
        &self.grants
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    tools: Vec<Spanned<RawTool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    name: Spanned<String>,
    component: Option<String>,
    #[serde(default)]
    dirs: Vec<Spanned<RawDir>>,
    network: Option<RawGrant>,
    #[serde(default)]
    sensitive: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDir {
    host: String,
    guest: String,
    #[serde(default)]
    access: Option<String>,
}

impl Config {
    /// Reads and checks `path`.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml(&text, &path.display().to_string(), base)
    }

    /// Parses configuration text; relative paths are taken from `base`.
    pub fn from_toml(text: &str, origin: &str, base: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(&e, text, origin))?;
        let source = Source { text, origin };
        let mut tools: Vec<ToolConfig> = Vec::with_capacity(raw.tools.len());
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
            if tools.iter().any(|t| t.name == name) {
                return Err(source.error(
                    span,
                    format!("tool `{name}` is configured twice: merge the two entries"),
                ));
            }
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
            tools.push(ToolConfig {
                name,
                component: tool.component.map(|c| base.join(c)),
                grants,
            });
        }
        Ok(Self { tools })
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
            Some(Path::new("/etc/airlock/fetch.wasm"))
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
    fn mistakes_point_at_the_line() {
        let cases = [
            (
                "[[tools]]\nname = \"a\"\n[[tools]]\nname = \"a\"\n",
                "airlock.toml:3:1:",
                "twice",
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
