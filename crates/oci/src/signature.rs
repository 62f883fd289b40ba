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
use crate::discover::Found;
pub use crate::discover::{
    BUNDLE, SIGNATURE_ANNOTATION, SIMPLE_SIGNING, referrers_tag, simple_signing_tag,
};
use crate::registry::{PullError, Registry, Resolved};
use crate::signer::Signer;
pub use sigstore_verify::trust_root::TrustedRoot;
use sigstore_verify::types::bundle::SignatureContent;
use sigstore_verify::types::{Bundle, DerPublicKey, SignatureBytes};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy, Verifier};
use std::fmt;
use std::sync::Arc;

/// What a cosign simple-signing payload says it is.
const COSIGN_SIGNATURE_TYPE: &str = "cosign container image signature";
/// The predicate of an in-toto statement that is an image signature (what
/// cosign signs in a DSSE bundle); any other predicate is an attestation
/// about the image (an SBOM, a scan), not a signature of it.
const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

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
        let mut skipped = Vec::new();
        let found = self
            .signatures(reference, digest, &mut unreachable, &mut skipped)
            .await?;
        if found.is_empty() && skipped.is_empty() {
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
        let mut reasons = skipped;
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
            if payload["critical"]["type"] != COSIGN_SIGNATURE_TYPE {
                return Err("a cosign payload that is not an image signature".into());
            }
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
        (Found::Bundle(bundle), _) if !is_a_signature(bundle) => {
            Err("a Sigstore bundle that attests something about the image (an in-toto predicate other than a signature), not a signature of it".into())
        }
        (Found::Bundle(bundle), Trust::Key { key, root: Some(root) }) => {
            let verifier = Verifier::new(root).map_err(|e| format!("the trusted root: {e}"))?;
            let mut policy = PublicKeyVerificationPolicy::new(key.der.clone());
            if root.tlogs.is_empty() {
                policy = policy.skip_tlog_unsafe();
            }
            let result = verifier
                .verify(manifest, bundle, &policy)
                .map_err(|e| format!("a Sigstore bundle that does not verify with the key: {e}"))?;
            // The root is there to vouch for when it was signed.
            if !result.tlog_verified() && result.verified_timestamps().is_empty() {
                return Err("a Sigstore bundle with neither a timestamp nor a log entry the trusted root vouches for".into());
            }
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
            // The issuer is part of who signed: one identity at two issuers
            // is two signers.
            Ok(Signer::new(format!("{identity} ({issuer})")))
        }
    }
}

/// Whether `bundle` signs the image: a message signature, or a DSSE
/// envelope whose in-toto statement has cosign's signing predicate.
fn is_a_signature(bundle: &Bundle) -> bool {
    match &bundle.content {
        SignatureContent::MessageSignature(_) => true,
        SignatureContent::DsseEnvelope(envelope) => {
            serde_json::from_slice::<serde_json::Value>(envelope.payload.as_bytes())
                .is_ok_and(|statement| statement["predicateType"] == COSIGN_SIGN_PREDICATE)
        }
        // A kind of bundle this build does not know is not taken as one.
        _ => false,
    }
}
