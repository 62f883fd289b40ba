//! The `[fleet]` table: which replicas of a shared store an operator
//! registered, and what each must attest to before it may serve.
//!
//! ```toml
//! [fleet]
//! require_strict_egress = true        # no native tool outside the sandbox
//! require_sandbox = "bubblewrap"      # bubblewrap, user namespaces, seccomp
//! policies = "sha256:…"               # the policies every replica serves
//!
//! [fleet.replicas]                    # name = its host.pub (hex), registered
//! a = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"
//! b = "…"
//! ```

use crate::toml_file::{ConfigError, TomlText};
use ed25519_dalek::VerifyingKey;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// The sandbox a fleet requires of its replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequiredSandbox {
    /// bubblewrap present, unprivileged user namespaces and seccomp.
    Bubblewrap,
}

impl RequiredSandbox {
    /// As written in `require_sandbox`.
    pub fn as_str(self) -> &'static str {
        match self {
            RequiredSandbox::Bubblewrap => "bubblewrap",
        }
    }
}

/// A checked `[fleet]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetPolicy {
    /// Every native tool must run in the sandbox (its network only through
    /// the egress proxy, or none); hosted servers always do.
    pub require_strict_egress: bool,
    /// The sandbox each replica must have.
    pub require_sandbox: Option<RequiredSandbox>,
    /// The digest of the policies each replica must serve (`sha256:HEX`,
    /// as `airlock status` shows it).
    pub policies: Option<String>,
    /// The replicas an operator registered: name → public key.
    pub replicas: BTreeMap<String, VerifyingKey>,
}

/// `[fleet]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFleet {
    #[serde(default)]
    require_strict_egress: bool,
    require_sandbox: Option<Spanned<String>>,
    policies: Option<Spanned<String>>,
    #[serde(default)]
    replicas: BTreeMap<String, Spanned<String>>,
}

impl RawFleet {
    /// Checks the table, pointing at the line of each mistake.
    pub(super) fn check(self, source: &TomlText<'_>) -> Result<FleetPolicy, ConfigError> {
        let require_sandbox = match self.require_sandbox {
            None => None,
            Some(value) if value.get_ref() == "bubblewrap" => Some(RequiredSandbox::Bubblewrap),
            Some(value) => {
                return Err(source.error(
                    value.span(),
                    format!(
                        "require_sandbox `{}` is not a sandbox airlock checks: write \"bubblewrap\" or leave it out",
                        value.get_ref()
                    ),
                ));
            }
        };
        let policies = match self.policies {
            None => None,
            Some(value) => {
                let text = value.get_ref();
                let hex = text.strip_prefix("sha256:").unwrap_or_default();
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(source.error(
                        value.span(),
                        format!(
                            "policies `{text}` is not a digest: write `sha256:` and 64 hex digits, as `airlock status` shows the policies"
                        ),
                    ));
                }
                Some(text.to_ascii_lowercase())
            }
        };
        let mut replicas = BTreeMap::new();
        for (name, key) in self.replicas {
            let parsed =
                crate::journal::key::parse_public_key(key.get_ref()).map_err(|_| {
                    source.error(
                        key.span(),
                        format!(
                            "replica `{name}`'s key is not a public key: give the 64 hex digits of its state directory's host.pub (`airlock replicas key` there)"
                        ),
                    )
                })?;
            replicas.insert(name, parsed);
        }
        Ok(FleetPolicy {
            require_strict_egress: self.require_strict_egress,
            require_sandbox,
            policies,
            replicas,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    fn parse(text: &str) -> Result<Config, String> {
        Config::from_toml(text, "airlock.toml", Path::new("/srv")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_fleet_table_is_checked_line_by_line() {
        let key = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29";
        let config = parse(&format!(
            "[fleet]\nrequire_strict_egress = true\nrequire_sandbox = \"bubblewrap\"\npolicies = \"sha256:{}\"\n[fleet.replicas]\na = \"{key}\"\n",
            "AB".repeat(32)
        ))
        .expect("valid");
        let fleet = config.fleet().expect("a fleet");
        assert!(fleet.require_strict_egress);
        assert_eq!(
            fleet.policies.as_deref(),
            Some(&*format!("sha256:{}", "ab".repeat(32)))
        );
        assert_eq!(fleet.replicas.len(), 1);
        assert!(parse("").expect("valid").fleet().is_none());

        for (text, said) in [
            (
                "[fleet]\nrequire_sandbox = \"docker\"\n",
                "require_sandbox `docker`",
            ),
            (
                "[fleet]\npolicies = \"abc\"\n",
                "policies `abc` is not a digest",
            ),
            (
                "[fleet.replicas]\na = \"xyz\"\n",
                "replica `a`'s key is not a public key",
            ),
            ("[fleet]\nrequire_egress = true\n", "unknown field"),
        ] {
            let error = parse(text).expect_err(text);
            assert!(error.contains(said), "{text}: {error}");
        }
    }
}
