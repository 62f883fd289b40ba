//! [`Host`] and [`HostBuilder`]: the embedding API, and the front door to
//! the kernel. A host is the [`Kernel`] (what every call needs) and the
//! component executor's shared parts; each method here loads a kind of
//! tool through its executor's folder, or runs one through the kernel.

use crate::approvals::ApprovalStore;
use crate::config::{ComponentSource, ToolConfig};
use crate::grants::Grants;
use crate::invocation::Invocation;
use crate::journal::Journal;
use crate::kernel::Kernel;
use crate::limits::Limits;
use crate::native::{NativeError, NativeSpec, NativeTool};
use crate::outcome::{InvokeError, Outcome};
use crate::policy::{PolicyEngine, Principal, RequestContext, ToolFacts};
use crate::protected::ProtectedPaths;
use crate::runtime::{Components, LoadError, Source, Tool};
use crate::servers::{HostedServer, ServerConfig, ServerError};
use crate::store::{Store, StoreError};
use crate::telemetry::Telemetry;
use std::sync::Arc;
use wasmtime::Engine;

mod builder;
mod configured;
mod pull;
pub use builder::{BuildError, HostBuilder};
pub use configured::{ANY_OBJECT_SCHEMA, ConfiguredError, ConfiguredTool, ToolSource};
pub use pull::RegistryError;

/// Loads tools and invokes them under limits. Cheap to clone; clones share
/// the kernel, the engine, the linker and the cache.
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
    kernel: Arc<Kernel>,
    components: Arc<Components>,
    registry: Option<Arc<crate::oci::Registry>>,
}

impl Host {
    /// A builder with defaults: no compile cache, no fuel metering,
    /// [`Limits::default`].
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// What every call needs: policies, approvals, journal, network, vault.
    pub(crate) fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    /// The wasmtime engine every tool of this host is compiled for, for
    /// embedders that compile or instantiate alongside airlock (the P1
    /// benchmark uses it for its raw-wasmtime baseline).
    pub fn engine(&self) -> &Engine {
        &self.components.engine
    }

    /// airlock's own files, which no tool may see.
    pub fn protected(&self) -> &ProtectedPaths {
        self.kernel.protected()
    }

    /// The policies this host authorizes with now.
    pub fn policies(&self) -> Arc<PolicyEngine> {
        self.kernel.policies()
    }

    /// Replaces the policies (already parsed and validated: an invalid set
    /// cannot be built, so a failed reload leaves the old one in force).
    /// Invocations that started keep the policies they started with; the
    /// change is journaled when the host keeps a journal.
    pub fn reload_policies(&self, policies: PolicyEngine) -> Result<(), StoreError> {
        self.kernel.set_policies(Arc::new(policies))
    }

    /// Puts back policies that were in force before (a failed reload
    /// undoing its policy change); journaled like a reload.
    pub fn set_policies(&self, policies: Arc<PolicyEngine>) -> Result<(), StoreError> {
        self.kernel.set_policies(policies)
    }

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
            self.kernel.network().clone(),
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

    /// The approval store, when the host has a state directory.
    pub fn approvals(&self) -> Option<&dyn ApprovalStore> {
        self.kernel.approvals()
    }

    /// Where the journal and approvals are kept, when the host has a
    /// state directory.
    pub fn store(&self) -> Option<&Store> {
        self.kernel.store()
    }

    /// The telemetry exporter, when one is configured.
    pub fn telemetry(&self) -> Option<&Telemetry> {
        self.kernel.telemetry()
    }

    /// The journal, when the host has a state directory.
    pub fn journal(&self) -> Option<&Journal> {
        self.kernel.journal()
    }

    /// The limits used when an invocation brings none.
    pub fn default_limits(&self) -> &Limits {
        self.kernel.default_limits()
    }

    /// Loads a component as a tool: inspects and classifies it, checks the
    /// grants against its world, compiles it (or takes it from the cache),
    /// pre-links it, and calls its `describe()` under the default limits.
    pub async fn load(&self, source: impl Into<Source>, grants: Grants) -> Result<Tool, LoadError> {
        self.components
            .load(&self.kernel, source.into(), grants)
            .await
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
        self.kernel.run(tool, invocation).await
    }

    /// Loads a native tool named `name`: hashes the program, finds the
    /// sandbox (or refuses with `sandbox_unavailable`), derives its facts
    /// (world `native`; `process_exec`, and `network` or filesystem
    /// capabilities as granted) and registers them with the policies.
    pub fn load_native(
        &self,
        name: &str,
        spec: NativeSpec,
        grants: Grants,
    ) -> Result<NativeTool, NativeError> {
        NativeTool::load(&self.kernel, name, spec, grants)
    }

    /// Runs a native tool: the same admission as components (Cedar
    /// `tool.execute`, approvals), then Cedar `process.exec` on its
    /// program, then the sandbox with the invocation's input on stdin. In
    /// `strict` mode the tool's requests go through the egress proxy and
    /// appear in the report's egress records. Journaled like a component.
    pub async fn invoke_native(
        &self,
        tool: &NativeTool,
        invocation: Invocation,
    ) -> Result<Outcome, InvokeError> {
        self.kernel.run(tool, invocation).await
    }

    /// Checks a hosted MCP server's configuration on this machine and, with
    /// a network grant, starts its egress proxy (see [`HostedServer`]).
    pub fn load_server(&self, config: ServerConfig) -> Result<HostedServer, ServerError> {
        HostedServer::load(&self.kernel, config)
    }

    /// Loads the tool `config` describes, component or native.
    pub async fn load_configured(
        &self,
        config: &ToolConfig,
    ) -> Result<ConfiguredTool, ConfiguredError> {
        let source = match (config.native(), config.component_to_load()) {
            (Some(spec), _) => ToolSource::Native(Box::new(spec.clone())),
            (None, Some(ComponentSource::File(path))) => ToolSource::Component(path),
            (None, Some(ComponentSource::Oci(reference))) => ToolSource::Oci {
                reference,
                signature: config.signature().cloned(),
            },
            (None, None) => {
                return Err(ConfiguredError::NothingToRun {
                    name: config.name().to_string(),
                });
            }
        };
        let tool = self
            .load_source(config.name(), source, config.grants().clone())
            .await?;
        Ok(tool.configured_by(config))
    }

    /// Loads `source` under `grants`. A native tool is called `name`; a
    /// component by its grants' name, else its descriptor's.
    pub async fn load_source(
        &self,
        name: &str,
        source: ToolSource,
        grants: Grants,
    ) -> Result<ConfiguredTool, ConfiguredError> {
        Ok(match source {
            ToolSource::Native(spec) => self
                .load_native(name, *spec, grants)
                .map_err(|source| ConfiguredError::Native {
                    name: name.to_string(),
                    source,
                })?
                .into(),
            ToolSource::Component(path) => self
                .load(path.as_path(), grants)
                .await
                .map_err(|source| ConfiguredError::Component { path, source })?
                .into(),
            ToolSource::Oci {
                reference,
                signature,
            } => {
                let (_, pulled) =
                    self.pull(&reference, signature.as_ref())
                        .await
                        .map_err(|source| ConfiguredError::Pull {
                            reference: Box::new(reference.clone()),
                            source: Box::new(source),
                        })?;
                self.load(Source::Pulled(Box::new(pulled)), grants)
                    .await
                    .map_err(|source| ConfiguredError::Pulled {
                        reference: Box::new(reference),
                        source,
                    })?
                    .into()
            }
        })
    }
}
