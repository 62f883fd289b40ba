//! Finding the signatures a registry keeps beside a manifest digest:
//! cosign's `sha256-HEX.sig` tag and Sigstore bundles attached as OCI
//! referrers. Every artifact is fetched by digest and checked like the
//! component; nothing here decides whether one holds (that is
//! [`crate::signature`]).

use crate::digest::Digest;
use crate::reference::ComponentRef;
use crate::registry::{PullError, Registry};
use base64::Engine as _;
use oci_client::manifest::{OciImageIndex, OciImageManifest};
use sigstore_verify::types::Bundle;

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

/// One signature found for the digest.
pub(crate) enum Found {
    /// A cosign simple-signing payload and its signature.
    Simple {
        payload: Vec<u8>,
        signature: Vec<u8>,
    },
    /// A Sigstore bundle.
    Bundle(Box<Bundle>),
}

impl Registry {
    /// Every signature the registry keeps for `digest`, of both formats,
    /// at most [`MOST_SIGNATURES`] in all. An artifact that cannot be read
    /// is skipped with its reason in `skipped`, so one broken artifact
    /// pushed beside a good signature does not hide it.
    pub(crate) async fn signatures(
        &self,
        reference: &ComponentRef,
        digest: Digest,
        unreachable: &mut Option<PullError>,
        skipped: &mut Vec<String>,
    ) -> Result<Vec<Found>, PullError> {
        let mut found = Vec::new();
        let mut budget = MOST_SIGNATURES;
        // cosign key-pair signatures: the `.sig` tag.
        let tag = reference.retagged(&simple_signing_tag(digest));
        if let Some(manifest) = self.manifest_at(&tag, unreachable).await? {
            let layers = match image(&manifest) {
                Ok(manifest) => manifest.layers,
                Err(reason) => {
                    skipped.push(format!("{}: {reason}", simple_signing_tag(digest)));
                    Vec::new()
                }
            };
            for layer in layers {
                let Some(signature) = layer
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(SIGNATURE_ANNOTATION))
                else {
                    continue;
                };
                if layer.media_type != SIMPLE_SIGNING || budget == 0 {
                    continue;
                }
                let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(signature)
                else {
                    skipped.push("a cosign signature that is not base64".into());
                    continue;
                };
                budget -= 1;
                match self.blob(reference, &layer.digest, SIMPLE_SIGNING).await {
                    Ok(payload) => found.push(Found::Simple { payload, signature }),
                    Err(error) => skipped.push(format!("a cosign payload: {error}")),
                }
            }
        }
        // Sigstore bundles, attached as referrers.
        for descriptor in self.referrers(reference, digest, unreachable).await? {
            if budget == 0 {
                break;
            }
            let Ok(referrer) = descriptor.digest.parse::<Digest>() else {
                continue;
            };
            let manifest = match self
                .content(
                    reference,
                    "manifest",
                    referrer,
                    crate::registry::MANIFEST_LIMIT,
                    None,
                )
                .await
                .map_err(|e| e.to_string())
                .and_then(|bytes| image(&bytes))
            {
                Ok(manifest) => manifest,
                Err(reason) => {
                    skipped.push(format!("referrer {referrer}: {reason}"));
                    continue;
                }
            };
            if manifest
                .subject
                .as_ref()
                .is_some_and(|s| s.digest != digest.to_string())
            {
                continue;
            }
            for layer in manifest.layers.iter().filter(|l| l.media_type == BUNDLE) {
                if budget == 0 {
                    break;
                }
                budget -= 1;
                let bundle = self
                    .blob(reference, &layer.digest, BUNDLE)
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|json| {
                        let text = std::str::from_utf8(&json).map_err(|e| e.to_string())?;
                        Bundle::from_json(text).map_err(|e| e.to_string())
                    });
                match bundle {
                    Ok(bundle) => found.push(Found::Bundle(Box::new(bundle))),
                    Err(reason) => skipped.push(format!("a Sigstore bundle: {reason}")),
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
        // The fallback tag (remembered, so it answers offline) and the API
        // (which the tag must not hide), merged.
        let tag = reference.retagged(&referrers_tag(digest));
        let mut listed: Vec<oci_client::manifest::ImageIndexEntry> =
            match self.manifest_at(&tag, unreachable).await? {
                Some(bytes) => serde_json::from_slice::<OciImageIndex>(&bytes)
                    .map(|index| index.manifests)
                    .unwrap_or_default(),
                None => Vec::new(),
            };
        let client = self.client(reference.registry());
        let subject = reference.pinned(digest).to_client();
        let asked = crate::registry::within(
            reference,
            crate::registry::ANSWER,
            client.pull_referrers(&subject, Some(BUNDLE)),
        );
        if let Ok(Ok(index)) = asked.await {
            listed.extend(index.manifests);
        }
        let mut seen = std::collections::HashSet::new();
        listed.retain(|m| {
            m.artifact_type.as_deref() == Some(BUNDLE) && seen.insert(m.digest.clone())
        });
        Ok(listed)
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

fn image(bytes: &[u8]) -> Result<OciImageManifest, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("not an image manifest: {e}"))
}

/// cosign's tag for the signatures of `digest`.
pub fn simple_signing_tag(digest: Digest) -> String {
    format!("sha256-{}.sig", digest.hex())
}

/// The OCI 1.1 fallback tag listing the referrers of `digest`.
pub fn referrers_tag(digest: Digest) -> String {
    format!("sha256-{}", digest.hex())
}
