//! The component's only door to the network: airlock's own `wasi:http`
//! outgoing handler and the egress policy it enforces.
//!
//! wasmtime-wasi-http is built without `default-send-request`, so no sender
//! exists in the binary except [`EgressHook`]'s. Each request goes through
//! [`decide`]: URL normalisation ([`url`]), the tool's grant
//! ([`NetworkGrant`], compiled into [`rules`]), one resolution
//! ([`Resolver`]), the address classes ([`addr`]); only then does a
//! [`Connector`] dial a checked address. Bodies are limited and paced by the
//! grant's [`Budgets`] and every request leaves an [`EgressRecord`].

#![deny(missing_docs)]
// `pub` means part of the crate's API; anything else says `pub(crate)`.
#![warn(unreachable_pub)]

pub mod addr;
mod body;
mod budget;
mod connect;
mod credential;
mod decide;
mod grant;
mod hook;
mod record;
mod resolve;
pub mod rules;
mod scrub;
pub mod url;

pub use connect::{ConnectError, ConnectFuture, Connector, Stream, TcpTlsConnector};
pub use credential::{BindingError, CredentialBinding, is_credential_header};
pub use credential::{Revealed, SecretRefusal, Secrets};
pub use decide::{Decision, Denial, Endpoint, PinnedTarget, Reason, decide};
pub use grant::RawGrant;
pub use grant::{
    Budgets, DEFAULT_BETWEEN_BYTES_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_FIRST_BYTE_TIMEOUT,
    DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_REQUESTS, DEFAULT_MAX_RESPONSE_BYTES, Intercept,
    NetworkGrant,
};
pub use hook::DENY_REASON_HEADER;
pub use hook::{
    CaError, Credentials, EgressHook, EgressProxy, InterceptCa, Network, Requester, Route,
};
pub use record::{EgressRecord, Verdict};
pub use resolve::{ResolveError, ResolveFuture, Resolver, StaticResolver, SystemResolver};
