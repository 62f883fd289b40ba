//! Loading a component as a tool: inspect and classify it, check its
//! grants, compile it (through the integrity-checked cache), pre-link it
//! and call its `describe()`. [`Components`] is what the component
//! executor shares between the tools it loaded: the engine, the linker,
//! the cache.

use super::cache::{CompileCache, Lookup};
use super::run::{Describe, ExecContext, Failure, execute};
use super::state::StoreState;
use super::tool::{
    Descriptor, LoadError, Provenance, Source, Tool, ToolInner, check_size, read_component,
};
use super::{Sha256Digest, ToolPre, inspect};
use crate::egress::{Credentials, Requester};
use crate::grants::{DirGrant, Grants, ResolvedGrants};
use crate::kernel::Kernel;
use crate::policy::{Principal, RequestContext, ToolFacts};
use crate::protected::Containing;
use crate::vocabulary::Capability;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

/// What happened while getting a component's compiled code, reported to the
/// callback given to [`HostBuilder::on_compile`](crate::HostBuilder::on_compile).
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

/// Called with each [`CompileEvent`] ([`HostBuilder::on_compile`](crate::HostBuilder::on_compile)).
pub(crate) type CompileCallback = Arc<dyn Fn(&CompileEvent) + Send + Sync>;

/// The principal `describe()` runs as when a tool is loaded.
const LOADER: &str = "airlock-loader";

/// The component executor's shared parts: one engine, one linker with
/// WASI and empty grants, the compile cache.
pub(crate) struct Components {
    pub(crate) engine: Engine,
    engine_hash: String,
    linker: Linker<StoreState>,
    cache: Option<CompileCache>,
    on_compile: Option<CompileCallback>,
}

impl Components {
    /// The parts for `engine`: its linker, cache and compile callback.
    pub(crate) fn new(
        engine: Engine,
        linker: Linker<StoreState>,
        cache: Option<CompileCache>,
        on_compile: Option<CompileCallback>,
    ) -> Self {
        Self {
            engine_hash: super::engine::compatibility_hash(&engine),
            engine,
            linker,
            cache,
            on_compile,
        }
    }

    /// Loads a component as a tool: inspects and classifies it, checks the
    /// grants against its world, compiles it (or takes it from the cache),
    /// pre-links it, and calls its `describe()` under the default limits.
    pub(crate) async fn load(
        self: &Arc<Self>,
        kernel: &Kernel,
        source: Source,
        grants: Grants,
    ) -> Result<Tool, LoadError> {
        let mut provenance = None;
        let bytes: Arc<[u8]> = match source {
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
            Source::Pulled(pulled) => {
                check_size(pulled.bytes.len())?;
                provenance = Some(Provenance::of(&pulled));
                pulled.bytes.into()
            }
        };
        let info = inspect(&bytes)?;
        let grants = grants.resolve(info.world)?;
        kernel.protected().check(
            grants.grants().dirs().iter().map(DirGrant::host),
            Containing::Refuse,
        )?;
        let world = info.runs_as(!grants.grants().dirs().is_empty());

        let components = Arc::clone(self);
        let sha = info.sha256;
        let (component, from_cache) =
            tokio::task::spawn_blocking(move || components.compiled(&bytes, sha))
                .await
                .map_err(|e| LoadError::Compile {
                    message: format!("the compiler task failed: {e}"),
                })??;

        let link = |e: wasmtime::Error| LoadError::Link {
            message: format!("{e:#}"),
        };
        let pre = self.linker.instantiate_pre(&component).map_err(link)?;
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
        facts.source = provenance.as_ref().map(|p| p.reference.to_string());
        facts.signer = provenance
            .as_ref()
            .and_then(|p| p.signer.as_ref())
            .map(|s| s.to_string());
        let descriptor = self.describe(kernel, &pre, &grants, &facts).await?;
        facts.name = grants
            .grants()
            .name()
            .map_or_else(|| descriptor.name.clone(), str::to_string);
        check_credentials(kernel, &facts.name, grants.grants())?;
        kernel
            .policies()
            .register_tool(&facts)
            .map_err(|message| LoadError::Describe {
                code: "invalid_descriptor",
                message: format!("the tool cannot be described to the policies: {message}"),
            })?;
        Ok(Tool {
            inner: Arc::new(ToolInner {
                engine: self.engine.clone(),
                info,
                descriptor,
                pre,
                grants,
                from_cache,
                facts,
                provenance,
            }),
        })
    }

    async fn describe(
        &self,
        kernel: &Kernel,
        pre: &ToolPre,
        grants: &ResolvedGrants,
        facts: &ToolFacts,
    ) -> Result<Descriptor, LoadError> {
        let id = ulid::Ulid::new().to_string();
        let cx = ExecContext {
            engine: &self.engine,
            pre,
            invocation_id: &id,
            grants,
            limits: kernel.default_limits(),
            fuel_metering: kernel.fuel_metering(),
            network: kernel.network(),
            requester: Requester {
                policies: kernel.policies(),
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

/// Each bound secret exists, opens, and has a scope that covers the
/// tool: a binding that could never work fails the load, not a request.
fn check_credentials(kernel: &Kernel, tool: &str, grants: &Grants) -> Result<(), LoadError> {
    for binding in grants.credentials() {
        let secret = binding.secret();
        let fail = |code: &'static str, message: String| LoadError::Credential {
            code,
            secret: secret.to_string(),
            message,
        };
        let vault = kernel.vault().ok_or_else(|| {
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
