//! Registry credentials: where they come from ([`CredentialSource`]) and
//! the usual one, the Docker configuration file ([`DockerConfig`]). The
//! host adds the vault in front of it. A credential never appears in a
//! log, an error or `Debug` output.

use std::fmt;
use std::sync::Arc;

/// How to sign in to a registry.
#[derive(Clone, PartialEq, Eq)]
pub enum RegistryCredential {
    /// No credentials: a public repository.
    Anonymous,
    /// A user name and a password or token (HTTP basic, exchanged for a
    /// bearer token as the registry asks).
    Basic {
        /// The user name.
        username: String,
        /// The password or access token.
        password: String,
    },
    /// An identity token used as a bearer token.
    Bearer(String),
}

impl fmt::Debug for RegistryCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Self::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

impl RegistryCredential {
    pub(crate) fn to_client(&self) -> oci_client::secrets::RegistryAuth {
        use oci_client::secrets::RegistryAuth;
        match self {
            Self::Anonymous => RegistryAuth::Anonymous,
            Self::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.clone())
            }
            Self::Bearer(token) => RegistryAuth::Bearer(token.clone()),
        }
    }
}

/// A credential could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the credentials for {registry}: {reason}")]
pub struct AuthError {
    /// The registry asked for.
    pub registry: String,
    /// What went wrong (never the credential itself).
    pub reason: String,
}

/// Where a registry's credentials come from.
pub trait CredentialSource: Send + Sync {
    /// The credential for `registry` (its host and port), or `None` when
    /// this source has none for it.
    fn credential(&self, registry: &str) -> Result<Option<RegistryCredential>, AuthError>;
}

/// The Docker configuration file (`$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`): `auths` entries and credential helpers, as
/// `docker login`, `oras login` and `skopeo login` write them.
#[derive(Clone, Copy, Debug, Default)]
pub struct DockerConfig;

impl CredentialSource for DockerConfig {
    fn credential(&self, registry: &str) -> Result<Option<RegistryCredential>, AuthError> {
        use docker_credential::{CredentialRetrievalError as E, DockerCredential};
        let Some(path) = docker_config_path() else {
            return Ok(None);
        };
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(AuthError {
                    registry: registry.to_string(),
                    reason: format!("{}: {e}", path.display()),
                });
            }
        };
        let read = std::io::BufReader::new(file);
        match docker_credential::get_credential_from_reader(read, registry) {
            Ok(DockerCredential::UsernamePassword(username, password)) => {
                Ok(Some(RegistryCredential::Basic { username, password }))
            }
            Ok(DockerCredential::IdentityToken(token)) => {
                Ok(Some(RegistryCredential::Bearer(token)))
            }
            Err(E::ConfigNotFound | E::NoCredentialConfigured) => Ok(None),
            Err(e) => {
                // A helper's output could hold a secret: name the helper only.
                let reason = match e {
                    E::HelperFailure { helper, .. } => {
                        format!("the credential helper `docker-credential-{helper}` failed")
                    }
                    other => format!("{}: {other}", path.display()),
                };
                Err(AuthError {
                    registry: registry.to_string(),
                    reason,
                })
            }
        }
    }
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
fn docker_config_path() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".docker"))
        })?;
    Some(dir.join("config.json"))
}

/// Sources asked in order; the first that has a credential wins, and a
/// registry none knows is asked anonymously.
#[derive(Clone, Default)]
pub struct Credentials {
    sources: Vec<Arc<dyn CredentialSource>>,
}

impl Credentials {
    /// No credentials: every registry anonymously.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// These sources, then `source`.
    pub fn then(mut self, source: impl CredentialSource + 'static) -> Self {
        self.sources.push(Arc::new(source));
        self
    }

    /// The credential for `registry`.
    pub fn for_registry(&self, registry: &str) -> Result<RegistryCredential, AuthError> {
        for source in &self.sources {
            if let Some(credential) = source.credential(registry)? {
                return Ok(credential);
            }
        }
        Ok(RegistryCredential::Anonymous)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({} sources)", self.sources.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(&'static str, RegistryCredential);

    impl CredentialSource for Fixed {
        fn credential(&self, registry: &str) -> Result<Option<RegistryCredential>, AuthError> {
            Ok((registry == self.0).then(|| self.1.clone()))
        }
    }

    #[test]
    fn first_source_with_a_credential_wins_and_debug_hides_it() {
        let basic = RegistryCredential::Basic {
            username: "ci".into(),
            password: "hunter2".into(),
        };
        let credentials = Credentials::anonymous()
            .then(Fixed("a.example", basic.clone()))
            .then(Fixed(
                "a.example",
                RegistryCredential::Bearer("later".into()),
            ))
            .then(Fixed("b.example", RegistryCredential::Bearer("tok".into())));
        assert_eq!(credentials.for_registry("a.example").expect("ok"), basic);
        assert_eq!(
            credentials.for_registry("b.example").expect("ok"),
            RegistryCredential::Bearer("tok".into())
        );
        assert_eq!(
            credentials.for_registry("c.example").expect("ok"),
            RegistryCredential::Anonymous
        );
        let shown = format!("{basic:?} {:?}", RegistryCredential::Bearer("tok".into()));
        assert!(
            !shown.contains("hunter2") && !shown.contains("tok"),
            "{shown}"
        );
    }
}
