//! Components from OCI registries in `airlock.toml`: a tool's
//! `component = "oci://…"` ([`ComponentSource`]) and the
//! `[registries."PREFIX"]` tables ([`RegistrySettings`]).
//!
//! ```toml
//! [[tools]]
//! name = "echo"
//! component = "oci://ghcr.io/acme/echo:1.0"
//!
//! [registries."ghcr.io"]
//! username = "acme-ci"
//! credential = "ghcr-token"          # a vault secret: the password or token
//!
//! [registries."ghcr.io/acme"]
//! require_signature = true           # every tool from here, signed by:
//! verify = { key = "keys/acme.pub" } # or { identity, issuer, trusted_root }
//! ```
//!
//! A tool's own `verify = { … }` overrides its registry's and requires a
//! signature by itself.

use crate::oci::signature::TrustedRoot;
use crate::oci::{ComponentRef, PublicKey, Trust};
use crate::toml_file::{ConfigError, TomlText};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Where a tool's component comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ComponentSource {
    /// A file, resolved against the configuration's directory.
    File(PathBuf),
    /// A registry: `oci://REGISTRY/REPOSITORY:TAG` or `…@sha256:DIGEST`.
    Oci(ComponentRef),
}

impl ComponentSource {
    /// Reads a `component` value: `oci://…` is a registry reference,
    /// anything else a path relative to `base`.
    pub(super) fn parse(
        value: Spanned<String>,
        base: &Path,
        source: &TomlText<'_>,
    ) -> Result<Self, ConfigError> {
        let text = value.get_ref();
        if text.starts_with(crate::oci::reference::SCHEME) {
            return text
                .parse()
                .map(Self::Oci)
                .map_err(|e| source.error(value.span(), e.to_string()));
        }
        Ok(Self::File(base.join(text)))
    }
}

/// One `[registries."PREFIX"]` table: how to reach the registries and
/// repositories under `PREFIX`.
#[derive(Clone, Debug)]
pub struct RegistrySettings {
    prefix: String,
    login: Option<RegistryLogin>,
    require_signature: bool,
    verify: Option<Trust>,
}

/// A registry sign-in whose password comes from the vault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryLogin {
    /// The user name.
    pub username: String,
    /// The vault secret holding the password or token.
    pub secret: String,
}

impl RegistrySettings {
    /// `REGISTRY` or `REGISTRY/PATH`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The sign-in for this registry, if the table names one (only a
    /// table for a whole registry can: a registry has one sign-in).
    pub fn login(&self) -> Option<&RegistryLogin> {
        self.login.as_ref()
    }

    /// Whether components under this prefix must be signed.
    pub fn requires_signature(&self) -> bool {
        self.require_signature
    }

    /// Whose signature components under this prefix are checked against.
    pub fn verify(&self) -> Option<&Trust> {
        self.verify.as_ref()
    }
}

/// The signature `reference` must carry: `own` (a tool's `verify`) if
/// given, else that of the most specific `[registries]` prefix covering it
/// that names one, when any covering prefix requires a signature. `None`
/// when no signature is required.
pub fn required_trust(
    registries: &[RegistrySettings],
    reference: &ComponentRef,
    own: Option<&Trust>,
) -> Result<Option<Trust>, NoTrust> {
    if let Some(own) = own {
        return Ok(Some(own.clone()));
    }
    let mut covering: Vec<&RegistrySettings> = registries
        .iter()
        .filter(|r| reference.is_under(&r.prefix))
        .collect();
    covering.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
    let Some(requiring) = covering.iter().find(|r| r.require_signature) else {
        return Ok(None);
    };
    covering
        .iter()
        .find_map(|r| r.verify.clone())
        .map(Some)
        .ok_or_else(|| NoTrust {
            reference: reference.to_string(),
            prefix: requiring.prefix.clone(),
        })
}

/// A signature is required, and nothing says whose.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{reference} must be signed ([registries.\"{prefix}\"] require_signature), but no `verify` says by whom: add `verify = {{ key = \"…\" }}` (or identity, issuer and trusted_root) to that table or to the tool"
)]
pub struct NoTrust {
    /// The component.
    pub reference: String,
    /// The prefix that requires it.
    pub prefix: String,
}

/// A `verify = { … }` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVerify {
    key: Option<String>,
    identity: Option<String>,
    issuer: Option<String>,
    trusted_root: Option<String>,
}

/// Reads a `verify` table: a key file, or keyless identity, issuer and
/// trusted root, each file relative to `base`. The files read are added to
/// `files` (they decide what runs: no tool may rewrite them).
pub(super) fn trust(
    raw: Spanned<RawVerify>,
    base: &Path,
    source: &TomlText<'_>,
    files: &mut Vec<PathBuf>,
) -> Result<Trust, ConfigError> {
    let span = raw.span();
    let error = |message: String| source.error(span.clone(), message);
    let raw = raw.into_inner();
    let files = std::cell::RefCell::new(files);
    let read = |file: &str, what: &str| {
        let path = base.join(file);
        files.borrow_mut().push(path.clone());
        std::fs::read_to_string(&path)
            .map_err(|e| error(format!("cannot read the {what} {}: {e}", path.display())))
    };
    let root = |file: &str| -> Result<std::sync::Arc<TrustedRoot>, ConfigError> {
        let text = read(file, "trusted root")?;
        TrustedRoot::from_json(&text)
            .map(std::sync::Arc::new)
            .map_err(|e| error(format!("{file} is not a Sigstore trusted root: {e}")))
    };
    match raw {
        RawVerify {
            key: Some(key),
            identity: None,
            issuer: None,
            trusted_root,
        } => Ok(Trust::Key {
            key: PublicKey::from_pem(&read(&key, "key")?)
                .map_err(|e| error(format!("{key}: {e}")))?,
            root: trusted_root.as_deref().map(root).transpose()?,
        }),
        RawVerify {
            key: None,
            identity: Some(identity),
            issuer: Some(issuer),
            trusted_root: Some(trusted_root),
        } => {
            if identity.trim().is_empty() || issuer.trim().is_empty() {
                return Err(error("`identity` and `issuer` must name someone".into()));
            }
            Ok(Trust::Keyless {
                identity,
                issuer,
                root: root(&trusted_root)?,
            })
        }
        _ => Err(error(
            "`verify` is either `{ key = \"PEM file\" }` (with `trusted_root` to accept Sigstore bundles) or `{ identity = \"…\", issuer = \"…\", trusted_root = \"trusted_root.json\" }`".into(),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegistry {
    username: Option<Spanned<String>>,
    credential: Option<Spanned<String>>,
    require_signature: Option<bool>,
    verify: Option<Spanned<RawVerify>>,
}

/// Checks the `[registries]` tables.
pub(super) fn registries(
    raw: BTreeMap<String, Spanned<RawRegistry>>,
    base: &Path,
    source: &TomlText<'_>,
    files: &mut Vec<PathBuf>,
) -> Result<Vec<RegistrySettings>, ConfigError> {
    raw.into_iter()
        .map(|(prefix, table)| {
            let span = table.span();
            let table = table.into_inner();
            let probe = format!("{}{prefix}/x:1", crate::oci::reference::SCHEME);
            let parsed = probe.parse::<ComponentRef>().map_err(|_| {
                source.error(
                    span.clone(),
                    format!("`{prefix}` is not a registry or repository prefix: write e.g. [registries.\"ghcr.io/acme\"]"),
                )
            })?;
            let login = match (table.username, table.credential) {
                (None, None) => None,
                (Some(username), Some(secret)) => {
                    if parsed.registry() != prefix {
                        return Err(source.error(
                            secret.span(),
                            format!("a registry has one sign-in: put `username` and `credential` under [registries.\"{}\"]", parsed.registry()),
                        ));
                    }
                    Some(RegistryLogin {
                        username: username.into_inner(),
                        secret: secret.into_inner(),
                    })
                }
                (Some(key), None) | (None, Some(key)) => {
                    return Err(source.error(
                        key.span(),
                        "a registry sign-in needs both `username` and `credential` (the vault secret holding the password or token)",
                    ));
                }
            };
            let verify = table
                .verify
                .map(|v| trust(v, base, source, files))
                .transpose()?;
            // A `verify` table means signatures are required; saying
            // otherwise beside it would check nothing.
            let require_signature = match (table.require_signature, &verify) {
                (Some(false), Some(_)) => {
                    return Err(source.error(
                        span,
                        format!("[registries.\"{prefix}\"] names whose signature to check but `require_signature = false`: remove one of them"),
                    ));
                }
                (Some(required), _) => required,
                (None, verify) => verify.is_some(),
            };
            Ok(RegistrySettings {
                prefix,
                login,
                require_signature,
                verify,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::config::{ComponentSource, Config};
    use std::path::Path;

    #[test]
    fn oci_components_and_registry_logins_read_and_mistakes_are_named() {
        let config = Config::from_toml(
            "[[tools]]\nname = \"echo\"\ncomponent = \"oci://127.0.0.1:5000/tools/echo:1.0\"\n\
             [[tools]]\nname = \"local\"\ncomponent = \"local.wasm\"\n\
             [registries.\"127.0.0.1:5000\"]\nusername = \"ci\"\ncredential = \"registry-token\"\n",
            "airlock.toml",
            Path::new("/etc/airlock"),
        )
        .expect("valid");
        let Some(ComponentSource::Oci(echo)) = config.tool("echo").and_then(|t| t.component())
        else {
            panic!("echo is an OCI component");
        };
        assert_eq!(echo.to_string(), "oci://127.0.0.1:5000/tools/echo:1.0");
        assert_eq!(
            config.tool("local").and_then(|t| t.component()),
            Some(&ComponentSource::File("/etc/airlock/local.wasm".into()))
        );
        let login = config.registries()[0].login().expect("a login");
        assert_eq!(
            (login.username.as_str(), login.secret.as_str()),
            ("ci", "registry-token")
        );

        for (toml, want) in [
            (
                "[[tools]]\nname = \"a\"\ncomponent = \"oci://ghcr.io/acme/a\"\n",
                "names no version",
            ),
            (
                "[registries.\"ghcr.io/acme\"]\nusername = \"u\"\ncredential = \"s\"\n",
                "one sign-in",
            ),
            ("[registries.\"ghcr.io\"]\nusername = \"u\"\n", "needs both"),
            (
                "[registries.\"not a registry\"]\n",
                "not a registry or repository prefix",
            ),
            (
                "[registries.\"ghcr.io\"]\npassword = \"x\"\n",
                "unknown field",
            ),
        ] {
            let err = Config::from_toml(toml, "airlock.toml", Path::new("."))
                .expect_err(want)
                .to_string();
            assert!(err.contains(want), "{toml}: {err}");
        }
    }

    /// A public key of the fixtures (its private half was not kept).
    fn fixtures() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/keys")
    }

    #[test]
    fn signatures_are_required_by_the_most_specific_prefix_or_the_tool() {
        let config = Config::from_toml(
            "[[tools]]\nname = \"a\"\ncomponent = \"oci://r.example/acme/a:1\"\n\
             [[tools]]\nname = \"b\"\ncomponent = \"oci://r.example/other/b:1\"\n\
             [[tools]]\nname = \"c\"\ncomponent = \"oci://r.example/other/c:1\"\nverify = { key = \"test-signer.pub\" }\n\
             [registries.\"r.example/acme\"]\nverify = { key = \"test-signer.pub\" }\n",
            "airlock.toml",
            &fixtures(),
        )
        .expect("valid");
        let required = |name: &str| config.tool(name).and_then(|t| t.signature()).is_some();
        // `verify` alone requires; another prefix does not; a tool's own does.
        assert!(required("a"));
        assert!(!required("b"));
        assert!(required("c"));
        assert_eq!(
            config.companion_files(),
            vec![
                fixtures().join("test-signer.pub"),
                fixtures().join("test-signer.pub")
            ]
        );

        for (toml, want) in [
            (
                "[registries.\"r.example\"]\nrequire_signature = false\nverify = { key = \"test-signer.pub\" }\n",
                "remove one of them",
            ),
            (
                "[[tools]]\nname = \"a\"\ncomponent = \"oci://r.example/acme/a:1\"\n[registries.\"r.example\"]\nrequire_signature = true\n",
                "no `verify` says by whom",
            ),
            (
                "[[tools]]\nname = \"a\"\ncomponent = \"a.wasm\"\nverify = { key = \"test-signer.pub\" }\n",
                "for `oci://` components only",
            ),
        ] {
            let err = Config::from_toml(toml, "airlock.toml", &fixtures())
                .expect_err(want)
                .to_string();
            assert!(err.contains(want), "{toml}: {err}");
        }
    }
}
