//! Signatures over a manifest digest, checked before any layer is fetched:
//! [`Registry::verify`] takes a [`Resolved`] digest and the [`Trust`] the
//! operator configured, finds the signatures stored beside it in the
//! registry, and returns a [`Verified`] digest with its [`Signer`] only if
//! one of them holds. The layer is then fetched by that same digest.
//!
//! Two formats are read, both offline (no transparency-log or Fulcio
//! request is ever made):
//! - cosign's key-pair signatures: the tag `sha256-HEX.sig`, whose layers
//!   are simple-signing payloads naming the manifest digest, each signed in
//!   the `dev.cosignproject.cosign/signature` annotation;
//! - Sigstore bundles (`application/vnd.dev.sigstore.bundle.v0.3+json`)
//!   attached as OCI referrers (the referrers API, else the `sha256-HEX`
//!   tag that stands in for it), over the manifest's bytes: checked with a
//!   public key, or keyless against the operator's `trusted_root.json`
//!   with a required identity and issuer (`sigstore-verify`).

use crate::digest::Digest;
use crate::reference::ComponentRef;
use crate::registry::{PullError, Registry, Resolved};
use crate::signer::Signer;
use base64::Engine as _;
use oci_client::manifest::{OciImageIndex, OciImageManifest};
pub use sigstore_verify::trust_root::TrustedRoot;
use sigstore_verify::types::{Bundle, DerPublicKey, SignatureBytes};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy, Verifier};
use std::fmt;
use std::sync::Arc;

/// The layer type of a cosign simple-signing payload.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation holding a simple-signing payload's signature (base64).
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The artifact and layer type of a Sigstore bundle.
pub const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// A signature payload or a bundle is small; more is not one.
const SIGNATURE_LIMIT: u64 = 1 << 20;
/// How many signatures are looked at before giving up.
const MOST_SIGNATURES: usize = 32;

/// Whose signature a component must carry.
#[derive(Clone)]
pub enum Trust {
    /// Signatures made with this key: cosign key-pair signatures, or
    /// Sigstore bundles checked with the key, whose timestamp or log entry
    /// `root` vouches for (a bundle needs one; without a root only cosign
    /// signatures are accepted).
    Key {
        /// The key.
        key: PublicKey,
        /// The trusted root for bundles' timestamps and log entries.
        root: Option<Arc<TrustedRoot>>,
    },
    /// Keyless Sigstore bundles: a certificate that chains to `root`,
    /// issued to `identity` by the OIDC `issuer`, and a verified time.
    Keyless {
        /// The certificate's identity (its SAN: an email or a URI).
        identity: String,
        /// The OIDC issuer recorded in the certificate.
        issuer: String,
        /// The operator's trusted root (certificate authorities,
        /// timestamp authorities, and any logs to check).
        root: Arc<TrustedRoot>,
    },
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key { key, .. } => write!(f, "Key({})", key.signer()),
            Self::Keyless {
                identity, issuer, ..
            } => write!(f, "Keyless({identity}, {issuer})"),
        }
    }
}

/// A public key (PEM `PUBLIC KEY`: ECDSA, Ed25519 or RSA).
#[derive(Clone)]
pub struct PublicKey {
    der: DerPublicKey,
    fingerprint: Digest,
}

impl PublicKey {
    /// Reads a PEM public key.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let der = DerPublicKey::from_pem(pem).map_err(|e| KeyError(e.to_string()))?;
        sigstore_verify::crypto::VerificationKey::from_spki(&der)
            .map_err(|e| KeyError(e.to_string()))?;
        let fingerprint = Digest::of(der.as_bytes());
        Ok(Self { der, fingerprint })
    }

    /// The signer a signature by this key is recorded as:
    /// `key:sha256:HEX` of the key's DER encoding.
    pub fn signer(&self) -> Signer {
        Signer::new(format!("key:{}", self.fingerprint))
    }
}

/// A text that is not a public key.
#[derive(Debug, thiserror::Error)]
#[error("not a public key in PEM (`-----BEGIN PUBLIC KEY-----`): {0}")]
pub struct KeyError(String);

/// A manifest digest whose signature held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    resolved: Resolved,
    signer: Signer,
}

impl Verified {
    /// The digest that was verified: fetch by it.
    pub fn resolved(&self) -> &Resolved {
        &self.resolved
    }

    /// Who signed it.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }
}

/// Why a component's signature did not hold.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The registry has no signature for the digest.
    #[error(
        "{reference} is not signed: the registry has no signature for {digest} ({looked}); a signature is required"
    )]
    Missing {
        /// The reference.
        reference: String,
        /// The manifest digest.
        digest: Digest,
        /// Where signatures were looked for.
        looked: String,
    },
    /// Signatures exist, none by the required signer.
    #[error("no signature of {reference} holds for {trust}: {}", reasons.join("; "))]
    Invalid {
        /// The reference.
        reference: String,
        /// What was required.
        trust: String,
        /// Why each signature failed.
        reasons: Vec<String>,
    },
    /// Fetching a signature failed.
    #[error(transparent)]
    Pull(#[from] PullError),
}

impl VerifyError {
    /// A stable code for records and `--json` output.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing { .. } => "signature_missing",
            Self::Invalid { .. } => "signature_invalid",
            Self::Pull(e) => e.code(),
        }
    }
}

/// One signature found for the digest.
enum Found {
    /// A cosign simple-signing payload and its signature.
    Simple {
        payload: Vec<u8>,
        signature: Vec<u8>,
    },
    /// A Sigstore bundle.
    Bundle(Box<Bundle>),
}

impl Registry {
    /// Checks that `resolved`'s manifest is signed as `trust` requires,
    /// before anything else of it is fetched. The manifest is fetched (by
    /// digest, checked, kept) because bundles sign its bytes.
    pub async fn verify(
        &self,
        resolved: &Resolved,
        trust: &Trust,
    ) -> Result<Verified, VerifyError> {
        let reference = resolved.reference();
        let digest = resolved.digest();
        let manifest = self
            .content(
                reference,
                "manifest",
                digest,
                crate::registry::MANIFEST_LIMIT,
                None,
            )
            .await?;
        let mut unreachable = None;
        let found = self.signatures(reference, digest, &mut unreachable).await?;
        if found.is_empty() {
            // No signature found because none could be asked for is not
            // "unsigned": say the registry is down.
            if let Some(error) = unreachable {
                return Err(error.into());
            }
            return Err(VerifyError::Missing {
                reference: reference.to_string(),
                digest,
                looked: format!(
                    "tag {} and referrers of type {BUNDLE}",
                    simple_signing_tag(digest)
                ),
            });
        }
        let mut reasons = Vec::new();
        for signature in found {
            match check(&signature, trust, digest, &manifest) {
                Ok(signer) => {
                    return Ok(Verified {
                        resolved: resolved.clone(),
                        signer,
                    });
                }
                Err(reason) => reasons.push(reason),
            }
        }
        Err(VerifyError::Invalid {
            reference: reference.to_string(),
            trust: format!("{trust:?}"),
            reasons,
        })
    }

    /// Every signature the registry keeps for `digest`, of both formats.
    async fn signatures(
        &self,
        reference: &ComponentRef,
        digest: Digest,
        unreachable: &mut Option<PullError>,
    ) -> Result<Vec<Found>, PullError> {
        let mut found = Vec::new();
        // cosign key-pair signatures: the `.sig` tag.
        let tag = reference.retagged(&simple_signing_tag(digest));
        if let Some(manifest) = self.manifest_at(&tag, unreachable).await? {
            for layer in image(&manifest)?.layers.iter().take(MOST_SIGNATURES) {
                let Some(signature) = layer
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(SIGNATURE_ANNOTATION))
                else {
                    continue;
                };
                if layer.media_type != SIMPLE_SIGNING {
                    continue;
                }
                let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(signature)
                else {
                    continue;
                };
                let payload = self.blob(reference, &layer.digest, SIMPLE_SIGNING).await?;
                found.push(Found::Simple { payload, signature });
            }
        }
        // Sigstore bundles: referrers, listed by the API or the fallback tag.
        let referrers = self.referrers(reference, digest, unreachable).await?;
        for descriptor in referrers.iter().take(MOST_SIGNATURES) {
            let Ok(referrer) = descriptor.digest.parse::<Digest>() else {
                continue;
            };
            let bytes = self
                .content(
                    reference,
                    "manifest",
                    referrer,
                    crate::registry::MANIFEST_LIMIT,
                    None,
                )
                .await?;
            let manifest = image(&bytes)?;
            if manifest
                .subject
                .as_ref()
                .is_some_and(|s| s.digest != digest.to_string())
            {
                continue;
            }
            for layer in manifest.layers.iter().filter(|l| l.media_type == BUNDLE) {
                let json = self.blob(reference, &layer.digest, BUNDLE).await?;
                if let Ok(bundle) = std::str::from_utf8(&json)
                    .map_err(|_| ())
                    .and_then(|text| Bundle::from_json(text).map_err(|_| ()))
                {
                    found.push(Found::Bundle(Box::new(bundle)));
                }
            }
        }
        Ok(found)
    }

    /// The descriptors of `digest`'s bundle referrers: from the
    /// `sha256-HEX` tag registries without the referrers API keep, else
    /// from the API.
    async fn referrers(
        &self,
        reference: &ComponentRef,
        digest: Digest,
        unreachable: &mut Option<PullError>,
    ) -> Result<Vec<oci_client::manifest::ImageIndexEntry>, PullError> {
        // The fallback tag first: it is remembered, so it answers offline.
        let tag = reference.retagged(&referrers_tag(digest));
        let index = match self.manifest_at(&tag, unreachable).await? {
            Some(bytes) => serde_json::from_slice::<OciImageIndex>(&bytes).ok(),
            None => {
                let client = self.client(reference.registry());
                let subject = reference.pinned(digest).to_client();
                client.pull_referrers(&subject, Some(BUNDLE)).await.ok()
            }
        };
        Ok(index
            .map(|index| {
                index
                    .manifests
                    .into_iter()
                    .filter(|m| m.artifact_type.as_deref() == Some(BUNDLE))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The manifest a tag names now, checked against its digest; `None`
    /// when the registry has no such tag, or cannot be reached and never
    /// named one (then noted in `unreachable`). Remembered like a
    /// component's tag, so a signed component pulled once verifies again
    /// with the registry down.
    async fn manifest_at(
        &self,
        tag: &ComponentRef,
        unreachable: &mut Option<PullError>,
    ) -> Result<Option<Vec<u8>>, PullError> {
        let resolved = match self.resolve(tag).await {
            Ok(resolved) => resolved,
            Err(PullError::Registry { .. }) => return Ok(None),
            Err(error @ PullError::Unreachable { .. }) => {
                *unreachable = Some(error);
                return Ok(None);
            }
            Err(other) => return Err(other),
        };
        let bytes = self
            .content(
                tag,
                "manifest",
                resolved.digest(),
                crate::registry::MANIFEST_LIMIT,
                None,
            )
            .await?;
        if matches!(resolved.how(), crate::registry::Resolution::Registry { .. }) {
            self.store().set_tag(tag, resolved.digest())?;
        }
        Ok(Some(bytes))
    }

    /// A small blob by its digest text, checked.
    async fn blob(
        &self,
        reference: &ComponentRef,
        digest: &str,
        media_type: &str,
    ) -> Result<Vec<u8>, PullError> {
        let digest = digest.parse::<Digest>().map_err(|_| PullError::BadDigest {
            registry: reference.registry().to_string(),
            reference: reference.to_string(),
            digest: digest.chars().take(100).collect(),
        })?;
        self.content(
            reference,
            "signature",
            digest,
            SIGNATURE_LIMIT,
            Some(media_type),
        )
        .await
    }
}

fn image(bytes: &[u8]) -> Result<OciImageManifest, PullError> {
    serde_json::from_slice(bytes).map_err(|e| PullError::Registry {
        registry: String::new(),
        reference: String::new(),
        reason: format!("a signature manifest is not an image manifest: {e}"),
    })
}

/// cosign's tag for the signatures of `digest`.
pub fn simple_signing_tag(digest: Digest) -> String {
    format!("sha256-{}.sig", digest.hex())
}

/// The OCI 1.1 fallback tag listing the referrers of `digest`.
pub fn referrers_tag(digest: Digest) -> String {
    format!("sha256-{}", digest.hex())
}

/// Whether `signature` is a signature of `digest` (whose manifest is
/// `manifest`) by what `trust` requires; why not otherwise.
fn check(
    signature: &Found,
    trust: &Trust,
    digest: Digest,
    manifest: &[u8],
) -> Result<Signer, String> {
    match (signature, trust) {
        (Found::Simple { payload, signature }, Trust::Key { key, .. }) => {
            let verifying = sigstore_verify::crypto::VerificationKey::from_spki(&key.der)
                .map_err(|e| format!("the key: {e}"))?;
            verifying
                .verify(payload, &SignatureBytes::new(signature.clone()))
                .map_err(|_| "a cosign signature by another key".to_string())?;
            // The payload is signed; what it names is what was signed.
            let payload: serde_json::Value = serde_json::from_slice(payload)
                .map_err(|_| "a cosign payload that is not JSON".to_string())?;
            let named = payload["critical"]["image"]["docker-manifest-digest"].as_str();
            if named != Some(digest.to_string().as_str()) {
                return Err(format!(
                    "a cosign signature of another manifest ({})",
                    named.unwrap_or("none named")
                ));
            }
            Ok(key.signer())
        }
        (Found::Simple { .. }, Trust::Keyless { .. }) => {
            Err("a cosign key-pair signature, but a keyless signature is required".into())
        }
        (Found::Bundle(_), Trust::Key { root: None, .. }) => Err(
            "a Sigstore bundle, but `verify` names no trusted_root to check its timestamp or log entry with".into(),
        ),
        (Found::Bundle(bundle), Trust::Key { key, root: Some(root) }) => {
            let verifier = Verifier::new(root).map_err(|e| format!("the trusted root: {e}"))?;
            let mut policy = PublicKeyVerificationPolicy::new(key.der.clone());
            if root.tlogs.is_empty() {
                policy = policy.skip_tlog_unsafe();
            }
            verifier
                .verify(manifest, bundle, &policy)
                .map_err(|e| format!("a Sigstore bundle that does not verify with the key: {e}"))?;
            Ok(key.signer())
        }
        (Found::Bundle(bundle), Trust::Keyless { identity, issuer, root }) => {
            let verifier = Verifier::new(root).map_err(|e| format!("the trusted root: {e}"))?;
            let mut policy = VerificationPolicy::new(identity.as_str(), issuer.as_str());
            // Checked against what the operator's root lists: a private PKI
            // without a transparency or CT log has none to check.
            if root.tlogs.is_empty() {
                policy = policy.skip_tlog_unsafe();
            }
            if root.ctlogs.is_empty() {
                policy = policy.skip_sct();
            }
            verifier
                .verify(manifest, bundle, &policy)
                .map_err(|e| format!("a Sigstore bundle that does not verify: {e}"))?;
            Ok(Signer::new(identity.clone()))
        }
    }
}
