//! What airlock runs, when it comes from an OCI registry.
//!
//! A component is named `oci://REGISTRY/REPOSITORY:TAG` or
//! `…@sha256:DIGEST` ([`ComponentRef`]). [`Registry::resolve`] turns a tag
//! into a manifest digest once; from there everything is fetched by digest
//! and checked against it ([`Registry::fetch`]): the manifest must be the
//! WASI component artifact layout ([`layout`]), the layer must hash to the
//! digest the manifest names, and both are kept in a content-addressed
//! [`ContentStore`] so a component pulled once loads offline.
//!
//! Between the two, [`Registry::verify`] checks the digest's signature
//! when the operator requires one ([`Trust`]: a public key, or keyless
//! Sigstore against a trusted root), so that what was verified is what is
//! fetched ([`signature`]).
//!
//! Credentials come from [`Credentials`]: the host's vault first, then the
//! Docker configuration file ([`DockerConfig`]).

pub mod auth;
pub mod digest;
mod discover;
pub mod layout;
mod pull;
pub mod reference;
pub mod registry;
pub mod signature;
pub mod signer;
pub mod store;

pub use auth::{AuthError, CredentialSource, Credentials, DockerConfig, RegistryCredential};
pub use digest::{Digest, NotADigest};
pub use reference::{ComponentRef, RefError};
pub use registry::{PullError, Pulled, Registry, Resolution, Resolved};
pub use signature::{KeyError, PublicKey, Trust, Verified, VerifyError};
pub use signer::Signer;
pub use store::{ContentStore, StoreError};
