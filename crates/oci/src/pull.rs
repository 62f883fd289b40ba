//! The whole pull: resolve once, verify that digest when a signature is
//! required, fetch that same digest. Above both [`crate::registry`] and
//! [`crate::signature`], so neither needs the other.

use crate::reference::ComponentRef;
use crate::registry::{PullError, Pulled, Registry, Resolved};
use crate::signature::{Trust, Verified, VerifyError};

impl Registry {
    /// [`Registry::fetch`] of a digest whose signature held: the pulled
    /// component names its signer.
    pub async fn fetch_verified(&self, verified: &Verified) -> Result<Pulled, PullError> {
        let mut pulled = self.fetch(verified.resolved()).await?;
        pulled.signer = Some(verified.signer().clone());
        Ok(pulled)
    }

    /// [`Registry::resolve`], then [`Registry::verify`] when `trust` is
    /// given, then the fetch of that one digest.
    pub async fn pull(
        &self,
        reference: &ComponentRef,
        trust: Option<&Trust>,
    ) -> Result<(Resolved, Pulled), VerifyError> {
        let resolved = self.resolve(reference).await?;
        let pulled = match trust {
            Some(trust) => {
                let verified = self.verify(&resolved, trust).await?;
                self.fetch_verified(&verified).await?
            }
            None => self.fetch(&resolved).await?,
        };
        Ok((resolved, pulled))
    }
}
