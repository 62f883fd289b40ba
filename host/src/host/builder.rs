//! [`HostBuilder`]: what a [`Host`] is made from, and making it (engine,
//! cache, state directory, protected paths).

use super::Host;
use crate::config::RegistrySettings;
use crate::egress::{Connector, Network, Resolver, SystemResolver, TcpTlsConnector};
use crate::journal::key::HostKey;
use crate::journal::{Cadence, CommitMode, Journal};
use crate::kernel::{Kernel, Parts, journal_policies};
use crate::limits::Limits;
use crate::policy::PolicyEngine;
use crate::protected::{ProtectedKind, ProtectedPaths};
use crate::runtime::cache::{CacheError, CompileCache};
use crate::runtime::engine::{self, EngineSettings};
use crate::runtime::linker;
use crate::runtime::{CompileCallback, CompileEvent, Components};
use crate::store::{Store, StoreLocation};
use crate::telemetry::{Telemetry, TelemetrySettings};
use crate::vault::Vault;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a [`Host`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// wasmtime rejected the engine configuration or could not reserve the
    /// instance pool (e.g. a low `ulimit -v`).
    #[error("creating the wasmtime engine failed: {message}")]
    Engine {
        /// wasmtime's description.
        message: String,
    },
    /// The compile cache directory could not be used.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The state directory's database could not be used.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The host key could not be loaded or created.
    #[error(transparent)]
    Key(#[from] crate::journal::key::KeyError),
    /// The epoch ticker thread could not be started.
    #[error("starting the deadline timer thread failed: {0}")]
    Ticker(std::io::Error),
    /// The telemetry export thread could not be started.
    #[error("starting the telemetry export thread failed: {0}")]
    Telemetry(std::io::Error),
}

/// Configures and builds a [`Host`].
///
/// # Examples
///
/// ```no_run
/// use airlock::{Host, Limits};
/// use std::time::Duration;
///
/// let host = Host::builder()
///     .cache_dir(".airlock/cache")
///     .default_limits(Limits { timeout: Duration::from_secs(5), ..Limits::default() })
///     .build()?;
/// # Ok::<(), airlock::BuildError>(())
/// ```
#[derive(Clone)]
pub struct HostBuilder {
    cache_dir: Option<PathBuf>,
    default_limits: Limits,
    fuel_metering: bool,
    max_concurrent: u32,
    on_compile: Option<CompileCallback>,
    resolver: Option<Arc<dyn Resolver>>,
    connector: Option<Arc<dyn Connector>>,
    state_dir: Option<PathBuf>,
    store: StoreLocation,
    journal_commit: CommitMode,
    policies: Option<Arc<PolicyEngine>>,
    vault: Option<Arc<Vault>>,
    native_bridge: Option<PathBuf>,
    native_sandbox: Option<airlock_sandbox::Backend>,
    telemetry: Option<TelemetrySettings>,
    protected: ProtectedPaths,
    registries: Vec<RegistrySettings>,
}

impl Default for HostBuilder {
    fn default() -> Self {
        Self {
            cache_dir: None,
            default_limits: Limits::default(),
            fuel_metering: false,
            max_concurrent: engine::DEFAULT_MAX_CONCURRENT,
            on_compile: None,
            resolver: None,
            connector: None,
            state_dir: None,
            store: StoreLocation::default(),
            journal_commit: CommitMode::default(),
            policies: None,
            vault: None,
            native_bridge: None,
            native_sandbox: None,
            telemetry: None,
            protected: ProtectedPaths::default(),
            registries: Vec::new(),
        }
    }
}

impl HostBuilder {
    /// Caches compiled components in `dir` (created if missing). Without
    /// this, every load compiles.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Limits for invocations that do not bring their own, and for
    /// `describe()` at load.
    pub fn default_limits(mut self, limits: Limits) -> Self {
        self.default_limits = limits;
        self
    }

    /// Counts instructions so that [`Limits::fuel`] can be enforced. Costs
    /// some guest speed, so it is off by default.
    pub fn fuel_metering(mut self, enabled: bool) -> Self {
        self.fuel_metering = enabled;
        self
    }

    /// How many invocations may run at once (instance pool slots).
    pub fn max_concurrent_instances(mut self, count: u32) -> Self {
        self.max_concurrent = count;
        self
    }

    /// Calls `callback` on cache hits, refusals and compilations, e.g. to show
    /// progress for large components.
    pub fn on_compile(mut self, callback: impl Fn(&CompileEvent) + Send + Sync + 'static) -> Self {
        self.on_compile = Some(Arc::new(callback));
        self
    }

    /// Resolves tools' host names with `resolver` instead of the system's
    /// DNS configuration (e.g. a [`StaticResolver`](crate::egress::StaticResolver) in tests).
    pub fn resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// Dials checked addresses with `connector` instead of tokio TCP plus
    /// rustls with the Mozilla roots (e.g. to trust a private CA).
    pub fn connector(mut self, connector: Arc<dyn Connector>) -> Self {
        self.connector = Some(connector);
        self
    }

    /// Verifies upstream servers against the Mozilla roots and `roots`
    /// too (the operator's CAs, `[egress] roots`); nothing changes when
    /// it is empty or a [`HostBuilder::connector`] was given.
    pub fn trust_upstream(
        mut self,
        roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    ) -> Self {
        if self.connector.is_none() && !roots.is_empty() {
            self.connector = Some(Arc::new(TcpTlsConnector::with_webpki_roots_and(roots)));
        }
        self
    }

    /// Keeps state in `dir`: the journal, the approvals (SQLite,
    /// `airlock.db`) and the host key that signs the journal's tree heads
    /// (`host.key`, created on first use). Without it the host journals
    /// nothing and cannot hold requests for approval (it denies them).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Keeps the journal and approvals in `location` instead of the state
    /// directory's SQLite database: with [`StoreLocation::Postgres`], in a
    /// database shared by replicas (the host key, the vault and the
    /// operator socket stay in the state directory, which is still needed).
    pub fn store(mut self, location: StoreLocation) -> Self {
        self.store = location;
        self
    }

    /// Exports a trace per invocation and a log record per denial to the
    /// OTLP/HTTP collector `settings` name, from a bounded queue that never
    /// holds an invocation up.
    pub fn telemetry(mut self, settings: TelemetrySettings) -> Self {
        self.telemetry = Some(settings);
        self
    }

    /// When an invocation's journal entries are durable relative to its
    /// outcome: committed first ([`CommitMode::Each`], the default) or
    /// queued and committed in groups ([`CommitMode::Batched`]).
    pub fn journal_commit(mut self, mode: CommitMode) -> Self {
        self.journal_commit = mode;
        self
    }

    /// Injects credentials from `vault` into the requests of tools whose
    /// grants bind them ([`Grants::with_credential`](crate::Grants::with_credential)).
    /// Without a vault, loading a tool with credential bindings fails.
    pub fn vault(mut self, vault: Vault) -> Self {
        self.vault = Some(Arc::new(vault));
        self
    }

    /// The program native tools in `strict` network mode start inside their
    /// sandbox to reach the egress proxy: `airlock-bridge`, or the `airlock`
    /// binary itself (the CLI passes its own path).
    pub fn native_bridge(mut self, program: impl Into<PathBuf>) -> Self {
        self.native_bridge = Some(program.into());
        self
    }

    /// Runs sandboxed native tools under `backend` instead of the one
    /// [`airlock_sandbox::detect`] finds on this machine.
    pub fn native_sandbox(mut self, backend: airlock_sandbox::Backend) -> Self {
        self.native_sandbox = Some(backend);
        self
    }

    /// Keeps `path` (one of airlock's own files: the configuration, the
    /// policy directory, the operator socket) out of every tool's sight: a
    /// directory grant at, inside or around it is refused at load, and a
    /// sandbox whose grant contains it on purpose hides it. The state and
    /// cache directories are protected without asking.
    pub fn protect(mut self, kind: ProtectedKind, path: impl AsRef<Path>) -> Self {
        self.protected.add(kind, path.as_ref());
        self
    }

    /// Authorizes with `policies` instead of the shipped defaults.
    pub fn policies(mut self, policies: PolicyEngine) -> Self {
        self.policies = Some(Arc::new(policies));
        self
    }

    /// How to reach registries (`[registries]`): sign-ins whose passwords
    /// are vault secrets. Registries without one are signed in to with the
    /// Docker configuration file's credentials, else anonymously.
    pub fn registries(mut self, registries: Vec<RegistrySettings>) -> Self {
        self.registries = registries;
        self
    }

    /// Builds the engine, the linker and the cache, and starts the deadline
    /// timer thread (which stops when the host and its tools are dropped).
    pub fn build(self) -> Result<Host, BuildError> {
        let engine = engine::build(&EngineSettings {
            fuel_metering: self.fuel_metering,
            max_concurrent: self.max_concurrent,
        })
        .map_err(|e| BuildError::Engine {
            message: format!("{e:#}"),
        })?;
        let linker = linker::build(&engine).map_err(|e| BuildError::Engine {
            message: format!("linking WASI: {e:#}"),
        })?;
        let cache = match self.cache_dir.as_deref().map(CompileCache::open) {
            None => None,
            Some(Ok(cache)) => Some(cache),
            // Compiling every time is slow, not unsafe: go on without it.
            Some(Err(error @ CacheError::Untrusted { .. })) => {
                tracing::warn!(%error, "compiling every component");
                None
            }
            Some(Err(error)) => return Err(error.into()),
        };
        let policies = self
            .policies
            .unwrap_or_else(|| Arc::new(PolicyEngine::embedded()));
        let (store, journal) = match &self.state_dir {
            None => (None, None),
            Some(dir) => {
                crate::store::private_dir(dir)?;
                let key = Arc::new(HostKey::open_or_create(dir)?);
                let store = Store::open(&self.store, dir, &key.verifying_key())?;
                store.mark(dir)?;
                let journal = Journal::with_commit(
                    crate::journal::kept_in(&store),
                    key,
                    Cadence::default(),
                    self.journal_commit,
                );
                journal_policies(&journal, &policies)?;
                (Some(store), Some(journal))
            }
        };
        // After both directories were made, so that each is held to the
        // identity it has now.
        let mut protected = self.protected;
        protected.add_runtime_dirs();
        if let Some(dir) = &self.state_dir {
            protected.add(ProtectedKind::StateDir, dir);
        }
        if let Some(dir) = &self.cache_dir {
            protected.add(ProtectedKind::CompileCache, dir);
        }
        engine::start_epoch_ticker(&engine).map_err(BuildError::Ticker)?;
        let telemetry = self
            .telemetry
            .map(Telemetry::start)
            .transpose()
            .map_err(BuildError::Telemetry)?;
        let registry = self.state_dir.as_deref().map(|dir| {
            Arc::new(super::pull::registry(
                dir,
                &self.registries,
                self.vault.clone(),
            ))
        });
        Ok(Host {
            registry,
            components: Arc::new(Components::new(engine, linker, cache, self.on_compile)),
            kernel: Arc::new(Kernel::new(
                Parts {
                    default_limits: self.default_limits,
                    fuel_metering: self.fuel_metering,
                    store,
                    journal,
                    vault: self.vault,
                    native_bridge: self.native_bridge,
                    native_sandbox: self.native_sandbox,
                    telemetry,
                    protected,
                    trust_dir: self.state_dir.as_ref().map(|dir| dir.join("trust")),
                    network: Network {
                        resolver: self
                            .resolver
                            .unwrap_or_else(|| Arc::new(SystemResolver::from_system())),
                        connector: self
                            .connector
                            .unwrap_or_else(|| Arc::new(TcpTlsConnector::with_webpki_roots())),
                    },
                },
                policies,
            )),
        })
    }
}
