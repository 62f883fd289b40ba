//! [`ComponentRef`]: `oci://REGISTRY/REPOSITORY:TAG` or `…@sha256:DIGEST`,
//! parsed once, strictly. The registry is always written out: there is no
//! default registry and no implicit `latest`, so a reference in a reviewed
//! configuration names one place and one version.

use crate::digest::{Digest, NotADigest};
use std::fmt;
use std::str::FromStr;

/// The scheme that marks a component in a registry.
pub const SCHEME: &str = "oci://";

/// Where a component lives in a registry: the registry's host (and port),
/// the repository, and a tag, a digest or both (then the digest decides
/// and the tag is only a label).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ComponentRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a text is not a component reference.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// It does not start with `oci://`.
    #[error("`{0}` is not an OCI reference: write oci://REGISTRY/REPOSITORY:TAG")]
    Scheme(String),
    /// The registry part is missing or not a host name.
    #[error(
        "`{0}` names no registry: write the registry's host first, e.g. oci://ghcr.io/acme/tool:1.0"
    )]
    Registry(String),
    /// The registry is spelled in a way another spelling also names, so a
    /// `[registries]` prefix or a policy on the usual one would miss it.
    #[error("`{text}`: {fix}")]
    Spelling {
        /// What was written.
        text: String,
        /// How to write it.
        fix: String,
    },
    /// The repository part is empty or not in the OCI grammar.
    #[error("`{0}` has no valid repository: lowercase letters, digits and `._-` between slashes")]
    Repository(String),
    /// The tag is not in the OCI grammar.
    #[error(
        "`{0}` has an invalid tag: letters, digits and `._-`, at most 128, not starting with `.` or `-`"
    )]
    Tag(String),
    /// Neither a tag nor a digest.
    #[error("`{0}` names no version: add a tag (`:1.0`) or a digest (`@sha256:…`)")]
    NoVersion(String),
    /// The digest is not a `sha256:` digest.
    #[error(transparent)]
    Digest(#[from] NotADigest),
}

impl ComponentRef {
    /// The registry's host, with its port if one was written.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository inside the registry.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if one was written.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if one was written.
    pub fn digest(&self) -> Option<Digest> {
        self.digest
    }

    /// `REGISTRY/REPOSITORY`: what `[registries."…"]` prefixes match.
    pub fn location(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// This reference pinned to `digest` (the tag kept as a label).
    pub fn pinned(&self, digest: Digest) -> Self {
        Self {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// This reference without its digest: what the tag says today.
    pub fn unpinned(&self) -> Self {
        Self {
            digest: None,
            ..self.clone()
        }
    }

    /// The same repository at another tag (no digest): where signatures
    /// are kept beside a manifest.
    pub(crate) fn retagged(&self, tag: &str) -> Self {
        Self {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// Whether `prefix` (`REGISTRY` or `REGISTRY/PATH`) covers this
    /// reference, whole path segments only: `ghcr.io/acme` covers
    /// `ghcr.io/acme/tool`, not `ghcr.io/acme-evil/tool`.
    pub fn is_under(&self, prefix: &str) -> bool {
        let prefix = prefix.strip_prefix(SCHEME).unwrap_or(prefix);
        let prefix = prefix.trim_end_matches('/');
        let location = self.location();
        location == prefix
            || location
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    }

    pub(crate) fn to_client(&self) -> oci_client::Reference {
        match (self.digest, &self.tag) {
            (Some(digest), _) => oci_client::Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                digest.to_string(),
            ),
            (None, tag) => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                tag.clone().unwrap_or_default(),
            ),
        }
    }
}

impl FromStr for ComponentRef {
    type Err = RefError;

    fn from_str(text: &str) -> Result<Self, RefError> {
        let shown = || text.chars().take(200).collect::<String>();
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| RefError::Scheme(shown()))?;
        let (rest, digest) = match rest.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest.parse::<Digest>()?)),
            None => (rest, None),
        };
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| RefError::Registry(shown()))?;
        if !valid_registry(registry) {
            return Err(RefError::Registry(shown()));
        }
        if let Some(fix) = respelled(registry) {
            return Err(RefError::Spelling { text: shown(), fix });
        }
        // A colon after the last slash starts the tag (the registry's port
        // colon comes before the first slash).
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag)),
            _ => (path, None),
        };
        if !valid_repository(repository) {
            return Err(RefError::Repository(shown()));
        }
        if let Some(tag) = tag
            && !valid_tag(tag)
        {
            return Err(RefError::Tag(shown()));
        }
        if tag.is_none() && digest.is_none() {
            return Err(RefError::NoVersion(shown()));
        }
        Ok(Self {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }
}

impl fmt::Display for ComponentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ComponentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A host name or address with an optional port: letters, digits, `.-`,
/// a bracketed IPv6 address, and a port of digits.
fn valid_registry(registry: &str) -> bool {
    let (host, port) = match registry.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') && !port.contains(']') => (host, Some(port)),
        _ => (registry, None),
    };
    let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        inner.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok());
    host_ok && port_ok
}

/// Why `registry` must be written another way, if it must: one registry
/// has one spelling, the one prefixes and policies are written with.
fn respelled(registry: &str) -> Option<String> {
    if registry.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some(format!(
            "write the registry in lower case ({})",
            registry.to_ascii_lowercase()
        ));
    }
    if let Some(host) = registry.strip_suffix(":443") {
        return Some(format!("drop the default port: write {host}"));
    }
    if matches!(
        registry,
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
    ) {
        return Some("write Docker Hub as docker.io".to_string());
    }
    None
}

/// The OCI distribution grammar: path components of lowercase letters and
/// digits joined by `.`, `_`, `__` or runs of `-`, separated by `/`.
fn valid_repository(repository: &str) -> bool {
    !repository.is_empty()
        && repository.len() <= 255
        && repository.split('/').all(|component| {
            let bytes = component.as_bytes();
            !bytes.is_empty()
                && bytes[0].is_ascii_alphanumeric()
                && bytes[bytes.len() - 1].is_ascii_alphanumeric()
                && bytes.iter().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
                && !component.contains("..")
                && !component.contains("._")
                && !component.contains("_.")
                && !component.contains("___")
        })
}

/// `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_tags_digests_and_ports() {
        let r: ComponentRef = "oci://127.0.0.1:5000/tools/echo:1.0"
            .parse()
            .expect("valid");
        assert_eq!(
            (r.registry(), r.repository(), r.tag(), r.digest()),
            ("127.0.0.1:5000", "tools/echo", Some("1.0"), None)
        );
        let pinned: ComponentRef = format!("oci://ghcr.io/acme/tool:v2@{DIGEST}")
            .parse()
            .expect("valid");
        assert_eq!(
            pinned.digest().map(|d| d.to_string()).as_deref(),
            Some(DIGEST)
        );
        assert_eq!(
            pinned.to_string(),
            format!("oci://ghcr.io/acme/tool:v2@{DIGEST}")
        );
        assert_eq!(pinned.unpinned().to_string(), "oci://ghcr.io/acme/tool:v2");
        let bare: ComponentRef = format!("oci://[::1]:5000/tool@{DIGEST}")
            .parse()
            .expect("v6");
        assert_eq!((bare.registry(), bare.tag()), ("[::1]:5000", None));
    }

    #[test]
    fn refuses_what_is_not_one_place_and_one_version() {
        for (text, want) in [
            ("ghcr.io/acme/tool:1", "not an OCI reference"),
            ("oci://tool:1", "names no registry"),
            ("oci://ghcr.io/acme/tool", "names no version"),
            ("oci://ghcr.io/Acme/tool:1", "no valid repository"),
            ("oci://ghcr.io/acme//tool:1", "no valid repository"),
            ("oci://ghcr.io/acme/tool:-x", "invalid tag"),
            ("oci://ghcr.io:99999/acme/tool:1", "names no registry"),
            ("oci://gh cr.io/acme/tool:1", "names no registry"),
            ("oci://ghcr.io/acme/tool@sha256:abc", "not a content digest"),
            ("oci://GHCR.io/acme/tool:1", "lower case (ghcr.io)"),
            ("oci://ghcr.io:443/acme/tool:1", "drop the default port"),
            ("oci://index.docker.io/library/x:1", "as docker.io"),
        ] {
            let err = text.parse::<ComponentRef>().expect_err(text).to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn prefixes_match_whole_segments() {
        let r: ComponentRef = "oci://ghcr.io/acme/tools/echo:1".parse().expect("valid");
        for prefix in [
            "ghcr.io",
            "ghcr.io/acme",
            "oci://ghcr.io/acme/",
            "ghcr.io/acme/tools/echo",
        ] {
            assert!(r.is_under(prefix), "{prefix}");
        }
        for prefix in [
            "ghcr.io/acm",
            "ghcr.io/acme-evil",
            "ghcr.i",
            "docker.io/acme",
        ] {
            assert!(!r.is_under(prefix), "{prefix}");
        }
    }
}
