//! [`Host`] and [`HostBuilder`]: the embedding API.

use crate::approvals::ApprovalStore;
use crate::egress::{Credentials, Network, Requester};
use crate::grants::{DirGrant, Grants};
use crate::invocation::{Invocation, outcome_of};
use crate::invoke::{Admit, Runner};
use crate::journal::{EntryKind, Journal};
use crate::limits::Limits;
use crate::outcome::{InvokeError, Outcome};
use crate::policy::{PolicyEngine, Principal, RequestContext, ToolFacts};
use crate::protected::{Containing, ProtectedPaths};
use crate::runtime::cache::{CompileCache, Lookup};
use crate::runtime::engine::{MEMORY_CEILING, TABLE_ELEMENTS_CEILING};
use crate::runtime::run::{CallTool, Describe, ExecContext, Failure, execute};
use crate::runtime::state::StoreState;
use crate::runtime::{Sha256Digest, ToolPre, inspect};
use crate::store::{Store, StoreError};
use crate::telemetry::Telemetry;
use crate::tool::{Descriptor, LoadError, Source, Tool, ToolInner, check_size, read_component};
use crate::vault::Vault;
use crate::vocabulary::Capability;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

/// What happened while getting a component's compiled code, reported to the
/// callback given to [`HostBuilder::on_compile`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompileEvent {
    /// A verified entry in the compile cache was used.
    CacheHit {
        /// The component.
        sha256: Sha256Digest,
    },
    /// A cache entry existed but was refused; the component is recompiled.
    CacheRejected {
        /// The component.
        sha256: Sha256Digest,
        /// Why the entry was refused.
        reason: String,
    },
    /// Compilation started.
    Compiling {
        /// The component.
        sha256: Sha256Digest,
        /// Its size in bytes, to judge whether to show progress.
        bytes: usize,
    },
    /// Compilation finished (successfully or not).
    Compiled {
        /// The component.
        sha256: Sha256Digest,
        /// How long it took.
        elapsed: Duration,
    },
}

type CompileCallback = Arc<dyn Fn(&CompileEvent) + Send + Sync>;

mod builder;
pub use builder::{BuildError, HostBuilder};

/// Loads tool components and invokes them under limits. Cheap to clone;
/// clones share the engine, the linker and the cache.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use airlock::{Grants, Host, Invocation};
///
/// let host = Host::builder().build()?;
/// let tool = host.load(std::path::Path::new("echo.wasm"), Grants::none()).await?;
/// let outcome = host.invoke(&tool, Invocation::new(r#"{"hi": 1}"#)).await?;
/// assert_eq!(outcome.output(), Some(r#"{"hi": 1}"#));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

struct HostInner {
    engine: Engine,
    engine_hash: String,
    linker: Linker<StoreState>,
    cache: Option<CompileCache>,
    default_limits: Limits,
    fuel_metering: bool,
    on_compile: Option<CompileCallback>,
    network: Network,
    /// Swapped whole on reload; each invocation keeps the one it started with.
    policies: RwLock<Arc<PolicyEngine>>,
    approvals: Option<Arc<dyn ApprovalStore>>,
    store: Option<Store>,
    journal: Option<Journal>,
    vault: Option<Arc<Vault>>,
    native_bridge: Option<PathBuf>,
    native_sandbox: Option<airlock_sandbox::Backend>,
    telemetry: Option<Telemetry>,
    protected: ProtectedPaths,
}

/// The principal `describe()` runs as when a tool is loaded.
const LOADER: &str = "airlock-loader";

impl Host {
    /// A builder with defaults: no compile cache, no fuel metering,
    /// [`Limits::default`].
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// The wasmtime engine every tool of this host is compiled for, for
    /// embedders that compile or instantiate alongside airlock (the P1
    /// benchmark uses it for its raw-wasmtime baseline).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// airlock's own files, which no tool may see.
    pub fn protected(&self) -> &ProtectedPaths {
        &self.inner.protected
    }

    /// The policies this host authorizes with now.
    pub fn policies(&self) -> Arc<PolicyEngine> {
        Arc::clone(
            &self
                .inner
                .policies
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Replaces the policies (already parsed and validated: an invalid set
    /// cannot be built, so a failed reload leaves the old one in force).
    /// Invocations that started keep the policies they started with; the
    /// change is journaled when the host keeps a journal.
    pub fn reload_policies(&self, policies: PolicyEngine) -> Result<(), StoreError> {
        self.set_policies(Arc::new(policies))
    }

    /// Puts back policies that were in force before (a failed reload
    /// undoing its policy change); journaled like a reload.
    pub(crate) fn set_policies(&self, policies: Arc<PolicyEngine>) -> Result<(), StoreError> {
        if let Some(journal) = &self.inner.journal {
            journal_policies(journal, &policies)?;
        }
        *self
            .inner
            .policies
            .write()
            .unwrap_or_else(PoisonError::into_inner) = policies;
        Ok(())
    }

    /// How names are resolved and checked addresses dialled.
    /// What the egress hook would decide for `url` as the first request of
    /// an invocation of the tool described by `facts` with network `grant`,
    /// made by `principal`: the request budget, the grant, one resolution
    /// with every address classified, and Cedar `http.request`, exactly as
    /// at run time. Opens no connection. (`airlock egress check`.)
    pub async fn check_egress(
        &self,
        facts: &ToolFacts,
        grant: Arc<crate::NetworkGrant>,
        principal: Principal,
        url: &str,
    ) -> crate::egress::Decision {
        let hook = crate::egress::EgressHook::new(
            "egress-check",
            grant,
            self.network().clone(),
            crate::egress::Requester {
                policies: self.policies(),
                principal,
                tool: facts.clone(),
                context: RequestContext::default(),
                credentials: crate::egress::Credentials::default(),
            },
        );
        hook.check(url).await
    }

    pub(crate) fn network(&self) -> &Network {
        &self.inner.network
    }

    /// The bridge program for strict native tools, if configured.
    pub(crate) fn native_bridge(&self) -> Option<PathBuf> {
        self.inner.native_bridge.clone()
    }

    /// The sandbox for native tools: the injected one, or this machine's.
    pub(crate) fn native_sandbox(
        &self,
    ) -> Result<airlock_sandbox::Backend, airlock_sandbox::SandboxError> {
        match &self.inner.native_sandbox {
            Some(backend) => Ok(Arc::clone(backend)),
            None => airlock_sandbox::detect(),
        }
    }

    /// The approval store, when the host has a state directory.
    pub fn approvals(&self) -> Option<&dyn ApprovalStore> {
        self.inner.approvals.as_deref()
    }

    /// Where the journal and approvals are kept, when the host has a
    /// state directory.
    pub fn store(&self) -> Option<&Store> {
        self.inner.store.as_ref()
    }

    /// The telemetry exporter, when one is configured.
    pub fn telemetry(&self) -> Option<&Telemetry> {
        self.inner.telemetry.as_ref()
    }

    /// The journal, when the host has a state directory.
    pub fn journal(&self) -> Option<&Journal> {
        self.inner.journal.as_ref()
    }

    /// The limits used when an invocation brings none.
    pub fn default_limits(&self) -> &Limits {
        &self.inner.default_limits
    }

    /// Loads a component as a tool: inspects and classifies it, checks the
    /// grants against its world, compiles it (or takes it from the cache),
    /// pre-links it, and calls its `describe()` under the default limits.
    pub async fn load(&self, source: impl Into<Source>, grants: Grants) -> Result<Tool, LoadError> {
        let bytes: Arc<[u8]> = match source.into() {
            Source::File(path) => tokio::task::spawn_blocking(move || read_component(&path))
                .await
                .map_err(|e| LoadError::Compile {
                    message: format!("the file reader task failed: {e}"),
                })??
                .into(),
            Source::Bytes(bytes) => {
                check_size(bytes.len())?;
                bytes.into()
            }
        };
        let info = inspect(&bytes)?;
        let grants = grants.resolve(info.world)?;
        self.inner.protected.check(
            grants.grants().dirs().iter().map(DirGrant::host),
            Containing::Refuse,
        )?;
        let world = info.runs_as(!grants.grants().dirs().is_empty());

        let inner = Arc::clone(&self.inner);
        let sha = info.sha256;
        let (component, from_cache) =
            tokio::task::spawn_blocking(move || inner.compiled(&bytes, sha))
                .await
                .map_err(|e| LoadError::Compile {
                    message: format!("the compiler task failed: {e}"),
                })??;

        let link = |e: wasmtime::Error| LoadError::Link {
            message: format!("{e:#}"),
        };
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(link)?;
        let pre = ToolPre::new(pre).map_err(link)?;
        let mut capabilities = world.capabilities().to_vec();
        if !grants.grants().credentials().is_empty() {
            capabilities.push(Capability::Secrets);
        }
        let mut facts = ToolFacts::derive(
            "",
            world,
            capabilities,
            &info.sha256.to_hex(),
            grants.grants().is_marked_sensitive(),
        );
        let descriptor = self.describe(&pre, &grants, &facts).await?;
        facts.name = grants
            .grants()
            .name()
            .map_or_else(|| descriptor.name.clone(), str::to_string);
        self.check_credentials(&facts.name, grants.grants())?;
        self.policies()
            .register_tool(&facts)
            .map_err(|message| LoadError::Describe {
                code: "invalid_descriptor",
                message: format!("the tool cannot be described to the policies: {message}"),
            })?;
        Ok(Tool {
            inner: Arc::new(ToolInner {
                info,
                descriptor,
                pre,
                grants,
                from_cache,
                facts,
            }),
        })
    }

    /// Each bound secret exists, opens, and has a scope that covers the
    /// tool: a binding that could never work fails the load, not a request.
    fn check_credentials(&self, tool: &str, grants: &Grants) -> Result<(), LoadError> {
        for binding in grants.credentials() {
            let secret = binding.secret();
            let fail = |code: &'static str, message: String| LoadError::Credential {
                code,
                secret: secret.to_string(),
                message,
            };
            let vault = self.inner.vault.as_deref().ok_or_else(|| {
                fail(
                    "vault_unavailable",
                    "the host has no vault (HostBuilder::vault; the CLI opens the state directory's)"
                        .into(),
                )
            })?;
            let (scope, _value) = vault
                .reveal(secret)
                .map_err(|e| fail(e.code(), e.to_string()))?;
            if !scope.admits_tool(tool) {
                return Err(fail(
                    "secret_scope",
                    format!(
                        "its scope is {scope}, which does not cover tool `{tool}`: store it as `global` or `tool:{tool}`"
                    ),
                ));
            }
        }
        Ok(())
    }

    async fn describe(
        &self,
        pre: &ToolPre,
        grants: &crate::grants::ResolvedGrants,
        facts: &ToolFacts,
    ) -> Result<Descriptor, LoadError> {
        let id = ulid::Ulid::new().to_string();
        let cx = ExecContext {
            engine: &self.inner.engine,
            pre,
            invocation_id: &id,
            grants,
            limits: &self.inner.default_limits,
            fuel_metering: self.inner.fuel_metering,
            network: &self.inner.network,
            requester: Requester {
                policies: self.policies(),
                principal: Principal::user(LOADER),
                tool: ToolFacts {
                    name: format!("sha256:{}", facts.sha256),
                    ..facts.clone()
                },
                context: RequestContext::default(),
                // describe() runs before the tool is trusted with anything.
                credentials: Credentials::default(),
            },
            cancel: &tokio_util::sync::CancellationToken::new(),
        };
        let failed = |code, message| LoadError::Describe { code, message };
        let wit = match execute(&cx, Describe).await.result {
            Ok(wit) => wit,
            Err(Failure::Limit(limit)) => return Err(failed(limit.code(), limit.to_string())),
            Err(Failure::Fault(fault)) => return Err(failed(fault.code(), fault.to_string())),
            Err(Failure::Host(error)) => return Err(failed(error.code(), error.to_string())),
            Err(Failure::Bind(message)) => return Err(LoadError::Link { message }),
        };
        if wit.name.trim().is_empty() {
            return Err(failed(
                "invalid_descriptor",
                "the descriptor's name is empty".into(),
            ));
        }
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&wit.input_schema) {
            return Err(failed(
                "invalid_descriptor",
                format!("the descriptor's input-schema is not JSON: {e}"),
            ));
        }
        Ok(Descriptor {
            name: wit.name,
            version: wit.version,
            description: wit.description,
            input_schema: wit.input_schema,
        })
    }

    /// Runs `tool` once on `invocation`'s input.
    ///
    /// Returns `Ok` for every run, including ones a limit or a guest fault
    /// ended (see [`Outcome`]); `Err` only when the tool could not be run at
    /// all: input that is not JSON, limits the host cannot provide, a grant
    /// that no longer works, or a host at capacity.
    pub async fn invoke(
        &self,
        tool: &Tool,
        invocation: Invocation,
    ) -> Result<Outcome, InvokeError> {
        self.run(Runner::Component(tool), invocation).await
    }

    /// The component executor: one call of the tool's export in a fresh
    /// instance, under the admitted limits and grants.
    pub(crate) async fn execute_component(
        &self,
        tool: &Tool,
        admit: &Admit<'_>,
    ) -> Result<Outcome, InvokeError> {
        let invocation = admit.invocation;
        let cx = ExecContext {
            engine: &self.inner.engine,
            pre: &tool.inner.pre,
            invocation_id: admit.invocation_id,
            grants: &tool.inner.grants,
            limits: admit.limits,
            fuel_metering: self.inner.fuel_metering,
            network: &self.inner.network,
            requester: admit.requester(
                tool.facts(),
                Credentials {
                    bindings: tool.grants().credentials_arc(),
                    vault: self.inner.vault.clone(),
                },
            ),
            cancel: &invocation.cancel,
        };
        outcome_of(execute(&cx, CallTool(&invocation.input)).await)
    }

    /// Refuses limits this host cannot provide: fuel without metering, or a
    /// memory or table size over its ceiling.
    pub(crate) fn check_limits(&self, limits: &Limits) -> Result<(), InvokeError> {
        if limits.fuel.is_some() && !self.inner.fuel_metering {
            return Err(InvokeError::FuelNotEnabled);
        }
        for (limit, value, ceiling) in [
            ("max_memory_bytes", limits.max_memory_bytes, MEMORY_CEILING),
            (
                "max_table_elements",
                limits.max_table_elements,
                TABLE_ELEMENTS_CEILING,
            ),
        ] {
            if value > ceiling {
                return Err(InvokeError::LimitAboveCeiling {
                    limit,
                    value,
                    ceiling,
                });
            }
        }
        Ok(())
    }
}

impl HostInner {
    fn notify(&self, event: CompileEvent) {
        if let Some(callback) = &self.on_compile {
            callback(&event);
        }
    }

    /// The compiled component, from the cache when a verified entry exists.
    /// Returns whether it came from the cache.
    fn compiled(&self, bytes: &[u8], sha: Sha256Digest) -> Result<(Component, bool), LoadError> {
        if let Some(cache) = &self.cache {
            match cache.lookup(&self.engine, &sha, &self.engine_hash) {
                Lookup::Hit(component) => {
                    self.notify(CompileEvent::CacheHit { sha256: sha });
                    return Ok((component, true));
                }
                Lookup::Miss => {}
                Lookup::Rejected(reason) => {
                    tracing::warn!(%sha, %reason, "compile cache entry refused; recompiling");
                    self.notify(CompileEvent::CacheRejected {
                        sha256: sha,
                        reason,
                    });
                }
            }
        }

        self.notify(CompileEvent::Compiling {
            sha256: sha,
            bytes: bytes.len(),
        });
        let started = Instant::now();
        let compiled = Component::new(&self.engine, bytes);
        self.notify(CompileEvent::Compiled {
            sha256: sha,
            elapsed: started.elapsed(),
        });
        let component = compiled.map_err(|e| LoadError::Compile {
            message: format!("{e:#}"),
        })?;

        if let Some(cache) = &self.cache
            && let Err(e) = cache.store(&sha, &self.engine_hash, &component)
        {
            // The tool still works; it just compiles again next time.
            tracing::warn!(%sha, error = %e, "could not write the compile cache entry");
        }
        Ok((component, false))
    }
}

/// Journals a policy (re)load when the policies differ from the last ones
/// recorded, not on every start.
fn journal_policies(journal: &Journal, policies: &PolicyEngine) -> Result<(), StoreError> {
    let digest = policies.digest();
    let last = journal.store().last_of_kind(EntryKind::PolicyReload)?;
    if !last.is_some_and(|e| e.payload.contains(&digest)) {
        let reload = serde_json::json!({ "policies": policies.policy_ids(), "digest": digest });
        journal.record(&[(EntryKind::PolicyReload, reload)])?;
    }
    Ok(())
}
