//! Components from registries: the host's [`Registry`] (its content store
//! in the state directory, credentials from the vault, then the Docker
//! configuration), and loading a tool from an `oci://` reference.

use crate::config::{RegistryLogin, RegistrySettings};
use crate::oci::{
    AuthError, ComponentRef, ContentStore, CredentialSource, Credentials, DockerConfig, PullError,
    Pulled, Registry, RegistryCredential, Resolved, Trust, VerifyError,
};
use crate::runtime::MAX_COMPONENT_BYTES;
use crate::vault::Vault;
use std::path::Path;
use std::sync::Arc;

/// Where pulled manifests and components are kept, inside the state
/// directory (so they are protected like the rest of it).
pub(super) const STORE_DIR: &str = "oci";

/// The registry client for a host with state directory `state_dir`.
pub(super) fn registry(
    state_dir: &Path,
    registries: &[RegistrySettings],
    vault: Option<Arc<Vault>>,
) -> Registry {
    let logins: Vec<(String, RegistryLogin)> = registries
        .iter()
        .filter_map(|r| {
            r.login()
                .map(|login| (r.prefix().to_string(), login.clone()))
        })
        .collect();
    let mut credentials = Credentials::anonymous();
    if !logins.is_empty() {
        credentials = credentials.then(VaultLogins { vault, logins });
    }
    Registry::new(
        ContentStore::new(state_dir.join(STORE_DIR)),
        credentials.then(DockerConfig),
        MAX_COMPONENT_BYTES,
    )
}

/// `[registries."HOST"]` sign-ins whose passwords are vault secrets.
struct VaultLogins {
    vault: Option<Arc<Vault>>,
    logins: Vec<(String, RegistryLogin)>,
}

impl CredentialSource for VaultLogins {
    fn credential(&self, registry: &str) -> Result<Option<RegistryCredential>, AuthError> {
        let Some((_, login)) = self.logins.iter().find(|(prefix, _)| prefix == registry) else {
            return Ok(None);
        };
        let failed = |reason: String| AuthError {
            registry: registry.to_string(),
            reason,
        };
        let vault = self.vault.as_ref().ok_or_else(|| {
            failed(format!(
                "its `credential` is vault secret `{}`, but no vault is open: create it with `airlock vault set {}`",
                login.secret, login.secret
            ))
        })?;
        let (_, value) = vault
            .reveal(&login.secret)
            .map_err(|e| failed(format!("vault secret `{}`: {e}", login.secret)))?;
        let password = std::str::from_utf8(value.expose())
            .map_err(|_| failed(format!("vault secret `{}` is not text", login.secret)))?;
        Ok(Some(RegistryCredential::Basic {
            username: login.username.clone(),
            password: password.to_string(),
        }))
    }
}

/// Why a component could not come from a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The host has no state directory, so nowhere to keep what it pulls.
    #[error("components from registries need a state directory to keep them in (`--state-dir`)")]
    NoStateDir,
    /// The pull failed.
    #[error(transparent)]
    Pull(#[from] PullError),
    /// The signature did not hold (or could not be fetched).
    #[error(transparent)]
    Verify(VerifyError),
}

impl From<VerifyError> for RegistryError {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::Pull(e) => Self::Pull(e),
            other => Self::Verify(other),
        }
    }
}

impl RegistryError {
    /// A stable code for records and `--json` output.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoStateDir => "no_state_dir",
            Self::Pull(e) => e.code(),
            Self::Verify(e) => e.code(),
        }
    }

    /// Whether this is a refusal of what the registry holds (no or a wrong
    /// signature), rather than a failure to get it.
    pub fn is_denial(&self) -> bool {
        matches!(self, Self::Verify(_))
    }
}

impl super::Host {
    /// The registry client, when the host has a state directory.
    pub fn registry(&self) -> Result<&Registry, RegistryError> {
        self.registry.as_deref().ok_or(RegistryError::NoStateDir)
    }

    /// Resolves `reference`, checks its signature when `trust` is given,
    /// and fetches that digest's component into the content store
    /// (`airlock pull`).
    pub async fn pull(
        &self,
        reference: &ComponentRef,
        trust: Option<&Trust>,
    ) -> Result<(Resolved, Pulled), RegistryError> {
        Ok(self.registry()?.pull(reference, trust).await?)
    }
}
