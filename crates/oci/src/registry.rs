//! [`Registry`]: resolves a reference to a manifest digest once, then
//! fetches everything by digest, checks it, and keeps it in the
//! [`ContentStore`]. There is one digest from resolution to the bytes that
//! run: the tag is read once, in [`Registry::resolve`], and never again.

use crate::auth::{AuthError, Credentials};
use crate::digest::Digest;
use crate::layout::{self, ComponentLayer, LayoutError};
use crate::reference::ComponentRef;
use crate::signer::Signer;
use crate::store::{ContentStore, StoreError};
use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{OCI_IMAGE_INDEX_MEDIA_TYPE, OciDescriptor};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A manifest is a small JSON document; more is not a manifest.
pub(crate) const MANIFEST_LIMIT: u64 = 4 << 20;
/// The longest a registry may take to answer one small request (a tag, a
/// manifest): a registry that drips bytes does not hold a pull forever.
pub(crate) const ANSWER: Duration = Duration::from_secs(60);
/// The longest a component's download may take.
const DOWNLOAD: Duration = Duration::from_secs(600);

/// A tag resolved to a manifest digest (or a digest taken as written).
/// Everything after resolution goes by [`Resolved::digest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    reference: ComponentRef,
    digest: Digest,
    how: Resolution,
}

/// How a [`Resolved`] digest was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The reference named its digest.
    Written,
    /// The registry answered for the tag now.
    Registry {
        /// The digest the tag named when last pulled, if it named another:
        /// the tag moved.
        moved_from: Option<Digest>,
    },
    /// The registry did not answer; the digest the tag had when last pulled
    /// was used.
    Offline,
}

impl Resolved {
    /// A digest taken as it is (from a reference or a lockfile): no
    /// registry is asked.
    pub fn pinned(reference: &ComponentRef, digest: Digest) -> Self {
        Self {
            reference: reference.pinned(digest),
            digest,
            how: Resolution::Written,
        }
    }

    /// The reference, pinned to the digest.
    pub fn reference(&self) -> &ComponentRef {
        &self.reference
    }

    /// The manifest digest.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// How the digest was found.
    pub fn how(&self) -> Resolution {
        self.how
    }
}

/// A component fetched and checked: its bytes are the layer the manifest
/// names, and the manifest is the one the digest names.
#[derive(Clone, Debug)]
pub struct Pulled {
    /// The reference, pinned to the manifest digest.
    pub reference: ComponentRef,
    /// The manifest digest.
    pub manifest: Digest,
    /// The component's layer.
    pub layer: ComponentLayer,
    /// The component.
    pub bytes: Vec<u8>,
    /// Who signed the manifest, when a signature was required and held.
    pub signer: Option<Signer>,
}

/// Why a component could not be pulled.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The registry could not be reached (and, for a tag, it was never
    /// pulled before, so there is nothing to fall back on).
    #[error("the registry {registry} could not be reached: {reason}")]
    Unreachable {
        /// The registry.
        registry: String,
        /// The transport's error.
        reason: String,
    },
    /// The registry answered with an error.
    #[error("the registry {registry} refused {reference}: {reason}")]
    Registry {
        /// The registry.
        registry: String,
        /// What was asked for.
        reference: String,
        /// The registry's answer.
        reason: String,
    },
    /// Content did not hash to the digest it was fetched by.
    #[error(
        "the {what} fetched for {reference} is not {expected} (it hashes to {actual}): the registry or the connection changed it; nothing was loaded"
    )]
    DigestMismatch {
        /// "manifest" or "component layer".
        what: &'static str,
        /// What was asked for.
        reference: String,
        /// The digest asked for.
        expected: Digest,
        /// The digest of what came.
        actual: Digest,
    },
    /// More bytes than the layer may have.
    #[error("the {what} of {reference} is larger than {limit} bytes; nothing was loaded")]
    TooLarge {
        /// "manifest" or "component layer".
        what: &'static str,
        /// What was asked for.
        reference: String,
        /// The ceiling.
        limit: u64,
    },
    /// The registry answered a digest that is not SHA-256.
    #[error(
        "the registry {registry} named {reference}'s manifest `{digest}`, which is not a sha256 digest"
    )]
    BadDigest {
        /// The registry.
        registry: String,
        /// What was asked for.
        reference: String,
        /// What it answered.
        digest: String,
    },
    /// Not a WASI component artifact.
    #[error("{reference}: {source}")]
    Layout {
        /// What was asked for.
        reference: String,
        /// What is wrong with it.
        #[source]
        source: LayoutError,
    },
    /// The credentials could not be read.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PullError {
    /// A stable code for records and `--json` output.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "registry_unreachable",
            Self::Registry { .. } => "registry_error",
            Self::DigestMismatch { .. } => "digest_mismatch",
            Self::TooLarge { .. } => "component_too_large",
            Self::BadDigest { .. } => "registry_error",
            Self::Layout { .. } => "not_a_component_artifact",
            Self::Auth(_) => "registry_credentials",
            Self::Store(_) => "component_store",
        }
    }
}

/// The registry client and the local store it fills.
pub struct Registry {
    store: ContentStore,
    credentials: Credentials,
    limit: u64,
    clients: Mutex<HashMap<String, Arc<oci_client::Client>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("store", &self.store)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// A client that keeps what it pulls in `store`, signs in with
    /// `credentials` and loads components of at most `limit` bytes.
    pub fn new(store: ContentStore, credentials: Credentials, limit: u64) -> Self {
        Self {
            store,
            credentials,
            limit,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The local store.
    pub fn store(&self) -> &ContentStore {
        &self.store
    }

    /// The manifest digest `reference` names: the written digest as it is;
    /// for a tag, the registry's answer now, or, when the registry cannot
    /// be reached, the digest the tag had when last pulled.
    pub async fn resolve(&self, reference: &ComponentRef) -> Result<Resolved, PullError> {
        if let Some(digest) = reference.digest() {
            return Ok(Resolved::pinned(reference, digest));
        }
        let last = self.store.tag(reference)?;
        match self.resolve_online(reference).await {
            Ok(digest) => {
                let moved_from = last.map(|r| r.digest).filter(|d| *d != digest);
                if let Some(from) = moved_from {
                    tracing::warn!(reference = %reference, %from, to = %digest, "the tag moved since it was last pulled");
                }
                Ok(Resolved {
                    reference: reference.pinned(digest),
                    digest,
                    how: Resolution::Registry { moved_from },
                })
            }
            Err(e) => match (matches!(e, PullError::Unreachable { .. }), last) {
                (true, Some(record)) => {
                    tracing::warn!(reference = %reference, digest = %record.digest, "the registry is unreachable; using the digest the tag had when last pulled");
                    Ok(Resolved {
                        reference: reference.pinned(record.digest),
                        digest: record.digest,
                        how: Resolution::Offline,
                    })
                }
                _ => Err(e),
            },
        }
    }

    /// The manifest digest the registry names for `reference`'s tag now.
    pub(crate) async fn resolve_online(
        &self,
        reference: &ComponentRef,
    ) -> Result<Digest, PullError> {
        let client = self.client(reference.registry());
        let auth = self
            .credentials
            .for_registry(reference.registry())?
            .to_client();
        let text = within(
            reference,
            ANSWER,
            client.fetch_manifest_digest(&reference.to_client(), &auth),
        )
        .await?
        .map_err(|e| registry_error(reference, e))?;
        text.parse::<Digest>().map_err(|_| PullError::BadDigest {
            registry: reference.registry().to_string(),
            reference: reference.to_string(),
            digest: text.chars().take(100).collect(),
        })
    }

    /// Fetches (or reads from the store) the manifest `resolved` names,
    /// checks it is a component artifact, then the component layer by its
    /// digest. Every byte is checked against the digest it was asked for.
    pub async fn fetch(&self, resolved: &Resolved) -> Result<Pulled, PullError> {
        let reference = &resolved.reference;
        let manifest = self
            .content(reference, "manifest", resolved.digest, MANIFEST_LIMIT, None)
            .await?;
        let layer =
            layout::component_layer(&manifest, self.limit).map_err(|source| PullError::Layout {
                reference: reference.to_string(),
                source,
            })?;
        let bytes = self
            .content(
                reference,
                "component layer",
                layer.digest,
                self.limit,
                Some(layout::LAYER_MEDIA_TYPE),
            )
            .await?;
        if matches!(resolved.how, Resolution::Registry { .. }) {
            self.store.set_tag(reference, resolved.digest)?;
        }
        Ok(Pulled {
            reference: reference.clone(),
            manifest: resolved.digest,
            layer,
            bytes,
            signer: None,
        })
    }

    /// The content of `digest`: from the store, else from the registry
    /// (a manifest when `layer_type` is `None`, else a blob), checked and
    /// stored.
    pub(crate) async fn content(
        &self,
        reference: &ComponentRef,
        what: &'static str,
        digest: Digest,
        limit: u64,
        layer_type: Option<&str>,
    ) -> Result<Vec<u8>, PullError> {
        if let Some(bytes) = self.store.get(&digest, limit)? {
            return Ok(bytes);
        }
        let client = self.client(reference.registry());
        let auth = self
            .credentials
            .for_registry(reference.registry())?
            .to_client();
        let by_digest = reference.pinned(digest).to_client();
        let too_large = || PullError::TooLarge {
            what,
            reference: reference.to_string(),
            limit,
        };
        let bytes = match layer_type {
            None => {
                let accepted = [layout::MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE];
                let (bytes, _) = within(
                    reference,
                    ANSWER,
                    client.pull_manifest_raw(&by_digest, &auth, &accepted),
                )
                .await?
                .map_err(|e| registry_error(reference, e))?;
                if bytes.len() as u64 > limit {
                    return Err(too_large());
                }
                bytes.to_vec()
            }
            Some(media_type) => {
                client
                    .store_auth_if_needed(reference.registry(), &auth)
                    .await;
                let descriptor = OciDescriptor {
                    media_type: media_type.to_string(),
                    digest: digest.to_string(),
                    ..OciDescriptor::default()
                };
                let download = async {
                    let mut stream = client
                        .pull_blob_stream(&by_digest, &descriptor)
                        .await
                        .map_err(|e| registry_error(reference, e))?;
                    if stream.content_length.is_some_and(|n| n > limit) {
                        return Err(too_large());
                    }
                    let mut bytes = Vec::new();
                    while let Some(chunk) = stream.stream.next().await {
                        // A stream that breaks off, or whose digest check
                        // fails at the end, ends here; the digest is
                        // checked again below.
                        let Ok(chunk) = chunk else { break };
                        if (bytes.len() + chunk.len()) as u64 > limit {
                            return Err(too_large());
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    Ok(bytes)
                };
                within(reference, DOWNLOAD, download).await??
            }
        };
        let actual = Digest::of(&bytes);
        if actual != digest {
            return Err(PullError::DigestMismatch {
                what,
                reference: reference.to_string(),
                expected: digest,
                actual,
            });
        }
        self.store.put(&digest, &bytes)?;
        Ok(bytes)
    }

    pub(crate) fn client(&self, registry: &str) -> Arc<oci_client::Client> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            clients
                .entry(registry.to_string())
                .or_insert_with(|| Arc::new(new_client(registry))),
        )
    }
}

/// A client for one registry: HTTPS, except plain HTTP for a registry on
/// loopback (as Docker treats 127.0.0.0/8), which never leaves the machine.
fn new_client(registry: &str) -> oci_client::Client {
    let protocol = if is_loopback(registry) {
        ClientProtocol::Http
    } else {
        ClientProtocol::Https
    };
    oci_client::Client::new(ClientConfig {
        protocol,
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        user_agent: concat!("airlock/", env!("CARGO_PKG_VERSION")),
        ..ClientConfig::default()
    })
}

/// `localhost`, `127.x.y.z` or `[::1]`, with any port.
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') && !host.ends_with(':') => host,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `error` means the registry was not reached at all (so a tag's
/// last digest may stand in), rather than that it answered no.
fn unreachable(error: &OciDistributionError) -> bool {
    matches!(error, OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout())
}

/// `work`, or `Unreachable` when it takes longer than `limit`.
pub(crate) async fn within<T>(
    reference: &ComponentRef,
    limit: Duration,
    work: impl std::future::Future<Output = T>,
) -> Result<T, PullError> {
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| PullError::Unreachable {
            registry: reference.registry().to_string(),
            reason: format!("no complete answer within {}s", limit.as_secs()),
        })
}

fn registry_error(reference: &ComponentRef, error: OciDistributionError) -> PullError {
    let registry = reference.registry().to_string();
    if unreachable(&error) {
        return PullError::Unreachable {
            registry,
            reason: error.to_string(),
        };
    }
    PullError::Registry {
        registry,
        reference: reference.to_string(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_registries_go_without_tls() {
        for registry in [
            "127.0.0.1:5000",
            "localhost:5000",
            "[::1]:5000",
            "127.3.2.1",
            "localhost",
        ] {
            assert!(is_loopback(registry), "{registry}");
        }
        for registry in [
            "ghcr.io",
            "10.0.0.1:5000",
            "localhost.example:5000",
            "[::2]:5000",
            "128.0.0.1",
        ] {
            assert!(!is_loopback(registry), "{registry}");
        }
    }
}
