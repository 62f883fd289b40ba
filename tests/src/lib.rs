//! Shared pieces of airlock's integration tests: the guest components, the
//! fixture tables in `fixtures/`, shared hosts, and a loopback listener that
//! proves nothing connected.

pub mod fixtures;
pub mod kits;
pub mod net;
pub mod otlp;
pub mod postgres;
pub mod raw;
pub mod registry;
pub mod stats;

pub use airlock_test_artifacts as artifacts;

use airlock::policy::PolicyEngine;
use airlock::{Grants, Host, Tool};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::LazyLock;

/// The repository root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A compile cache shared by all test processes, so each guest is compiled
/// once per build rather than once per test.
pub fn test_cache_dir() -> PathBuf {
    workspace_root().join("target").join("test-cache")
}

/// `fixtures/policies/permit-all`: everything permitted, for suites that
/// are not about policy.
pub fn permit_all_dir() -> PathBuf {
    fixtures::fixtures_dir().join("policies/permit-all")
}

/// The policies of [`permit_all_dir`].
pub fn permit_all() -> PolicyEngine {
    PolicyEngine::from_dir(&permit_all_dir()).expect("the permit-all policies load")
}

static HOST: LazyLock<Host> = LazyLock::new(|| {
    Host::builder()
        .cache_dir(test_cache_dir())
        .policies(permit_all())
        .build()
        .expect("build the shared test host")
});

static METERED_HOST: LazyLock<Host> = LazyLock::new(|| {
    Host::builder()
        .cache_dir(test_cache_dir())
        .policies(permit_all())
        .fuel_metering(true)
        .build()
        .expect("build the shared fuel-metered test host")
});

/// A host with default limits and [`permit_all`] policies, shared by the
/// tests of one process.
pub fn host() -> &'static Host {
    &HOST
}

/// Like [`host`], with fuel metering on.
pub fn metered_host() -> &'static Host {
    &METERED_HOST
}

/// The path of the guest named `name` (as in `guests/`, e.g. `json-transform`).
pub fn guest_path(name: &str) -> &'static str {
    artifacts::GUESTS
        .iter()
        .find(|(guest, _)| *guest == name)
        .map(|(_, path)| *path)
        .unwrap_or_else(|| panic!("no guest named `{name}` in guests/"))
}

/// Loads the guest `name` into `host` with no grants.
pub async fn load_guest(host: &Host, name: &str) -> Tool {
    load_guest_with(host, name, Grants::none()).await
}

/// Loads the guest `name` into `host` with `grants`.
pub async fn load_guest_with(host: &Host, name: &str, grants: Grants) -> Tool {
    host.load(std::path::Path::new(guest_path(name)), grants)
        .await
        .unwrap_or_else(|e| panic!("loading guest `{name}`: {e}"))
}

/// A TCP listener on 127.0.0.1 that guests try to reach; it must never see a
/// connection.
pub struct LoopbackListener {
    listener: TcpListener,
}

impl LoopbackListener {
    /// Binds an ephemeral loopback port.
    pub fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener
            .set_nonblocking(true)
            .expect("make the listener non-blocking");
        Self { listener }
    }

    /// The address to hand to a guest.
    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("listener address")
    }

    /// Panics if any connection has arrived (a completed handshake is queued
    /// by the kernel whether or not anyone accepts).
    pub fn assert_no_connection(&self) {
        match self.listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("accept failed unexpectedly: {e}"),
            Ok((_, peer)) => panic!("a guest reached the loopback listener from {peer}"),
        }
    }
}
