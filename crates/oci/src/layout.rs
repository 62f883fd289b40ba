//! The WASI component artifact layout (what `wkg oci push` and `oci-wasm`
//! publish, and `oras push … component.wasm:application/wasm` with the wasm
//! config type makes): an OCI image manifest whose config is
//! `application/vnd.wasm.config.v0+json` and whose only layer is the
//! component, `application/wasm`. Anything else (a container image, an
//! index, a module, several layers) is refused by name, before any layer
//! is fetched.

use crate::digest::{Digest, NotADigest};
use oci_client::manifest::OciManifest;

/// The OCI image manifest media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The config media type of a Wasm artifact.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The media type of the component layer.
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";

/// The one layer of a component artifact: what to fetch, by digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ComponentLayer {
    /// The layer's digest: the component's own SHA-256.
    pub digest: Digest,
    /// Its size as the manifest declares it.
    pub size: u64,
}

/// Why a manifest is not a WASI component artifact.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// Not JSON, or not an OCI manifest.
    #[error("the manifest is not an OCI manifest ({0})")]
    NotAManifest(String),
    /// An index (several platforms): components have one.
    #[error(
        "the reference is an image index (a multi-platform image), not a WASI component: point at the component's own manifest"
    )]
    Index,
    /// The manifest's own media type is not the OCI image manifest.
    #[error(
        "the manifest's media type is `{0}`, not `{MANIFEST_MEDIA_TYPE}`: publish the component with `wkg oci push` or `oras push`"
    )]
    MediaType(String),
    /// A container image or another artifact.
    #[error(
        "the artifact's config is `{0}`, not `{CONFIG_MEDIA_TYPE}`: this is not a WASI component (a container image has `application/vnd.oci.image.config.v1+json`)"
    )]
    Config(String),
    /// Not exactly one layer.
    #[error(
        "the artifact has {0} layers; a WASI component artifact has exactly one, the component"
    )]
    Layers(usize),
    /// The layer is not a component.
    #[error(
        "the layer's media type is `{0}`, not `{LAYER_MEDIA_TYPE}`: this artifact does not carry a component"
    )]
    LayerType(String),
    /// The layer's digest is not SHA-256.
    #[error("the layer's digest: {0}")]
    LayerDigest(#[from] NotADigest),
    /// The declared size exceeds what airlock loads.
    #[error("the component layer declares {size} bytes, more than the {limit} airlock loads")]
    TooLarge {
        /// The declared size.
        size: u64,
        /// The ceiling.
        limit: u64,
    },
}

/// Checks that `manifest` (its raw bytes) is a WASI component artifact of
/// at most `limit` bytes, and names its layer.
pub fn component_layer(manifest: &[u8], limit: u64) -> Result<ComponentLayer, LayoutError> {
    let parsed: OciManifest =
        serde_json::from_slice(manifest).map_err(|e| LayoutError::NotAManifest(e.to_string()))?;
    let image = match parsed {
        OciManifest::Image(image) => image,
        OciManifest::ImageIndex(_) => return Err(LayoutError::Index),
    };
    match image.media_type.as_deref() {
        Some(MANIFEST_MEDIA_TYPE) => {}
        other => {
            return Err(LayoutError::MediaType(
                other.unwrap_or("(none)").to_string(),
            ));
        }
    }
    if image.config.media_type != CONFIG_MEDIA_TYPE {
        return Err(LayoutError::Config(image.config.media_type));
    }
    let [layer] = image.layers.as_slice() else {
        return Err(LayoutError::Layers(image.layers.len()));
    };
    if layer.media_type != LAYER_MEDIA_TYPE {
        return Err(LayoutError::LayerType(layer.media_type.clone()));
    }
    let size = u64::try_from(layer.size).unwrap_or(u64::MAX);
    if size > limit {
        return Err(LayoutError::TooLarge { size, limit });
    }
    Ok(ComponentLayer {
        digest: layer.digest.parse()?,
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(config: &str, layers: &[(&str, &str, i64)]) -> Vec<u8> {
        let layers: Vec<_> = layers
            .iter()
            .map(|(media_type, digest, size)| {
                json!({"mediaType": media_type, "digest": digest, "size": size})
            })
            .collect();
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": config, "digest": Digest::of(b"{}").to_string(), "size": 2},
            "layers": layers,
        }))
        .expect("json")
    }

    #[test]
    fn takes_the_one_component_layer() {
        let digest = Digest::of(b"wasm");
        let text = digest.to_string();
        let layer = component_layer(
            &manifest(CONFIG_MEDIA_TYPE, &[(LAYER_MEDIA_TYPE, &text, 4)]),
            100,
        )
        .expect("a component artifact");
        assert_eq!(layer, ComponentLayer { digest, size: 4 });
    }

    #[test]
    fn refuses_everything_else_by_name() {
        let d = Digest::of(b"x").to_string();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"not json".to_vec(), "not an OCI manifest"),
            (
                manifest(
                    "application/vnd.oci.image.config.v1+json",
                    &[(LAYER_MEDIA_TYPE, &d, 1)],
                ),
                "not a WASI component",
            ),
            (manifest(CONFIG_MEDIA_TYPE, &[]), "0 layers"),
            (
                manifest(
                    CONFIG_MEDIA_TYPE,
                    &[(LAYER_MEDIA_TYPE, &d, 1), (LAYER_MEDIA_TYPE, &d, 1)],
                ),
                "2 layers",
            ),
            (
                manifest(
                    CONFIG_MEDIA_TYPE,
                    &[("application/vnd.oci.image.layer.v1.tar", &d, 1)],
                ),
                "does not carry a component",
            ),
            (
                manifest(CONFIG_MEDIA_TYPE, &[(LAYER_MEDIA_TYPE, "sha512:00", 1)]),
                "not a content digest",
            ),
            (
                manifest(CONFIG_MEDIA_TYPE, &[(LAYER_MEDIA_TYPE, &d, 101)]),
                "more than the 100",
            ),
            (
                serde_json::to_vec(&json!({
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": [],
                }))
                .expect("json"),
                "image index",
            ),
        ];
        for (bytes, want) in cases {
            let err = component_layer(&bytes, 100).expect_err(want).to_string();
            assert!(err.contains(want), "{want}: {err}");
        }
    }
}
