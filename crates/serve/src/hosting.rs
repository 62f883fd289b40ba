//! The hosted MCP servers of a running `airlock serve`: loaded with the
//! catalog, started (eagerly, or at the first listing), their tools served
//! as `SERVER.TOOL`, the catalog refreshed when a server's tools change or
//! it is restarted.

use super::{ServeError, Served, Server, Weak, object_schema, valid_tool_name};
use crate::Decider;
use crate::definitions::{
    Change, ChangeStatus, DefinitionError, Definitions, ProgramCheck, Verdict,
};
use airlock::ConfiguredTool;
use airlock::Host;
use airlock::servers::{HostedServer, HostedTool, ServerConfig, Start, State};
use rmcp::model::Tool;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::task::AbortOnDropHandle;

/// How often each hosted server is checked for having died.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Loads every `[[servers]]` entry and starts the eager ones; a server that
/// fails to start is reported (log, journal, `airlock servers status`) and
/// serves no tools until it is restarted.
pub(super) async fn load_servers(
    host: &Host,
    configs: &[ServerConfig],
) -> Result<Vec<(HostedServer, Vec<Tool>)>, ServeError> {
    let mut servers = Vec::with_capacity(configs.len());
    for config in configs {
        if !config.pin {
            tracing::warn!(server = %config.name, "`pin = false`: this server's program and tool definitions are not pinned; whatever it lists reaches agents unreviewed");
        }
        let server = host.load_server(config.clone())?;
        let listed = match config.start {
            Start::Lazy => Vec::new(),
            Start::Eager if program_held(host, &server) => Vec::new(),
            Start::Eager => server.start().await.unwrap_or_default(),
        };
        servers.push((server, listed));
    }
    Ok(servers)
}

/// The pins kept in `host`'s store.
fn definitions(host: &Host) -> Result<Definitions, ServeError> {
    Ok(Definitions::in_store(
        host.store().ok_or(ServeError::NoState)?,
    ))
}

/// Whether `server`'s program differs from its pin: then it is not
/// started (its status says why) until an operator accepts the change.
/// A failed check holds it too.
fn program_held(host: &Host, server: &HostedServer) -> bool {
    let checked = definitions(host).and_then(|pins| Ok(pins.program_check(server)?));
    let why = match checked {
        Ok(ProgramCheck::Accepted) => return false,
        Ok(ProgramCheck::Held { raised }) => {
            if let Some(change) = raised {
                tracing::warn!(server = %server.name(), change = %change.id, "its program differs from the pinned one: it does not start until an operator accepts (see `airlock servers changes`)");
            }
            "its program differs from the pinned one; it starts once an operator accepts the change (`airlock servers changes`)".to_string()
        }
        Err(error) => {
            tracing::error!(server = %server.name(), code = error.code(), %error, "its program could not be checked against its pin: not started");
            format!("its program could not be checked against its pin: {error}")
        }
    };
    server.mark_gone(&why);
    true
}

impl Served {
    /// The tool, if it is one of hosted server `server`'s.
    pub(super) fn hosted_by(&self, server: &str) -> Option<&HostedTool> {
        self.tool
            .as_hosted()
            .filter(|hosted| hosted.server().name() == server)
    }
}

/// The served tools of `server`, from its listing held to its pins (see
/// [`definitions`](crate::definitions)): disabled ones left out, names
/// `SERVER.TOOL` checked against MCP's rules and `taken`.
pub(crate) fn served_tools(
    host: &Host,
    server: &HostedServer,
    listed: &[Tool],
    taken: impl Fn(&str) -> bool,
) -> Result<Vec<Arc<Served>>, ServeError> {
    let pins = definitions(host)?;
    // Only names airlock could serve are pinned or raised: an operator is
    // never shown a change under a name MCP does not allow.
    let servable: Vec<Tool> = listed
        .iter()
        .filter(|tool| {
            let name = HostedTool::new(server.clone(), &tool.name).facts().name.clone();
            let valid = valid_tool_name(&name);
            if !valid {
                tracing::warn!(server = %server.name(), tool = %tool.name, "a server's tool name is not a valid MCP tool name as {name}: not served");
            }
            valid
        })
        .cloned()
        .collect();
    let settled = match pins.settle(server, &servable) {
        Ok(settled) => settled,
        Err(error) => {
            tracing::error!(server = %server.name(), code = error.code(), %error, "the server's definitions could not be held to their pins: none of its tools is served");
            return Ok(Vec::new());
        }
    };
    for change in &settled.raised {
        tracing::warn!(server = %server.name(), change = %change.id, "{} differs from its pinned definition: {}; see `airlock servers changes`", change.subject,
            if settled.program_held { "none of its tools is served until an operator accepts" } else { "it waits for an operator" });
    }
    let mut served = Vec::new();
    for tool in &settled.tools {
        if server.config().tool(&tool.name).disabled {
            continue;
        }
        let hosted = HostedTool::new(server.clone(), &tool.name);
        let name = hosted.facts().name.clone();
        if taken(&name) || served.iter().any(|s: &Arc<Served>| s.tool.name() == name) {
            return Err(ServeError::Duplicate { name });
        }
        host.policies().register_tool(hosted.facts())?;
        let schema = object_schema(serde_json::Value::Object((*tool.input_schema).clone()))
            .map_err(|message| ServeError::Schema {
                name: name.clone(),
                message,
            })?;
        let configured = ConfiguredTool::hosted(
            hosted,
            tool.description.as_ref().map(ToString::to_string),
            schema.to_string(),
        );
        served.push(Arc::new(Served {
            tool: configured,
            schema,
        }));
    }
    Ok(served)
}

impl Server {
    /// The hosted servers in force.
    pub fn servers(&self) -> Vec<HostedServer> {
        self.catalog().servers.clone()
    }

    /// Starts the lazy servers not started yet (the first listing wants
    /// their tools).
    pub async fn wake_servers(&self) {
        for server in self.servers() {
            if server.config().start == Start::Lazy
                && server.status().starts == 0
                && let Err(error) = self.restart_server(server.name()).await
            {
                tracing::warn!(server = %server.name(), code = error.code(), %error, "a lazy server did not start");
            }
        }
    }

    /// (Re)starts hosted server `name` and serves its tools as it lists them
    /// now; clients are told the list changed. Journaled.
    pub async fn restart_server(&self, name: &str) -> Result<usize, ServeError> {
        let server = self
            .servers()
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| ServeError::NoServer {
                name: name.to_string(),
            })?;
        server.stop().await;
        if program_held(self.host(), &server) {
            return Err(DefinitionError::ProgramHeld {
                server: name.to_string(),
            }
            .into());
        }
        let started = server.start().await;
        let listed = started.as_ref().map(Vec::clone).unwrap_or_default();
        self.refresh_server(&server, &listed)?;
        self.journal(
            "server_restarted",
            json!({ "server": name, "tools": listed.len(), "error": started.as_ref().err().map(ToString::to_string) }),
        )?;
        started.map(|tools| tools.len()).map_err(ServeError::from)
    }

    /// Serves `listed` as `server`'s tools from now on.
    fn refresh_server(&self, server: &HostedServer, listed: &[Tool]) -> Result<(), ServeError> {
        let catalog = self
            .catalog()
            .with_server_tools(self.host(), server, listed)?;
        self.swap_catalog(catalog);
        Ok(())
    }

    /// Watches each hosted server: after its `tools/list_changed` it is
    /// listed again and what it lists is served; when it died (or failed
    /// to start) it is started again, with backoff. The tasks end with the
    /// server set they watch (replaced on reload).
    pub(super) fn follow_servers(&self) -> Vec<AbortOnDropHandle<()>> {
        self.servers()
            .into_iter()
            .map(|server| {
                let weak: Weak = self.downgrade();
                AbortOnDropHandle::new(tokio::spawn(async move {
                    let changed = server.list_changed();
                    let mut tick = tokio::time::interval(WATCH_EVERY);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        let relist = tokio::select! {
                            () = changed.notified() => true,
                            _ = tick.tick() => false,
                        };
                        let Some(this) = weak.upgrade() else { return };
                        let listed = if relist {
                            server.relist().await
                        } else if server.status().state == State::Failed {
                            if program_held(this.host(), &server) {
                                continue;
                            }
                            match server.ensure_running().await {
                                Ok(()) => {
                                    tracing::info!(server = %server.name(), "the server was started again");
                                    Ok(server.tools().await)
                                }
                                Err(_) => continue,
                            }
                        } else if server.status().state == State::Running && !server.is_running().await {
                            tracing::warn!(server = %server.name(), "the server died; starting it again");
                            server.mark_gone("its process ended");
                            continue;
                        } else {
                            continue;
                        };
                        match listed {
                            // After tools/list_changed a description or schema
                            // may be all that changed: serve the new listing.
                            Ok(listed) if relist || this.serves_other_tools(&server, &listed) => {
                                if let Err(error) = this.refresh_server(&server, &listed) {
                                    tracing::warn!(server = %server.name(), code = error.code(), %error, "a server's tools were not served");
                                }
                            }
                            Ok(_) => {}
                            Err(error) => tracing::warn!(server = %server.name(), code = error.code(), %error, "listing a server's tools failed"),
                        }
                    }
                }))
            })
            .collect()
    }

    /// Whether `listed` differs from the tools of `server` served now.
    fn serves_other_tools(&self, server: &HostedServer, listed: &[Tool]) -> bool {
        let catalog = self.catalog();
        let mut served: Vec<&str> = catalog
            .tools
            .iter()
            .filter_map(|s| s.hosted_by(server.name()))
            .map(HostedTool::remote_name)
            .collect();
        let mut now: Vec<&str> = listed
            .iter()
            .map(|t| t.name.as_ref())
            .filter(|name| !server.config().tool(name).disabled)
            .collect();
        served.sort_unstable();
        now.sort_unstable();
        served != now
    }

    /// The hosted servers' definition changes, newest first (pending ones
    /// unless `all`).
    pub fn definition_changes(&self, all: bool) -> Result<Vec<Change>, ServeError> {
        Ok(definitions(self.host())?.changes(all)?)
    }

    /// Definition change `id`, if there is one.
    pub fn definition_change(&self, id: &str) -> Result<Option<Change>, ServeError> {
        Ok(definitions(self.host())?.change(id)?)
    }

    /// Decides definition change `id` as `decider` (an operator, or a
    /// device of one; never an agent's client). The server's last listing
    /// is served again under its pins at once.
    pub async fn decide_definition(
        &self,
        decider: &Decider,
        id: &str,
        verdict: Verdict,
    ) -> Result<Change, ServeError> {
        if matches!(decider, Decider::McpClient { .. }) {
            return Err(DefinitionError::NotAnOperator.into());
        }
        let change = definitions(self.host())?.decide(id, verdict, &decider.recorded_as())?;
        if change.subject.is_program() && change.status == ChangeStatus::Accepted {
            // The accepted program may start now.
            if let Err(error) = self.restart_server(&change.server).await {
                tracing::warn!(server = %change.server, code = error.code(), %error, "the server did not start after its program was accepted");
            }
        } else if let Some(server) = self
            .servers()
            .into_iter()
            .find(|s| s.name() == change.server)
            && let Err(error) = self.refresh_server(&server, &server.tools().await)
        {
            // Decided and journaled already: it takes effect at the
            // server's next listing.
            tracing::warn!(server = %server.name(), code = error.code(), %error, "the server's tools were not served again after a decision");
        }
        Ok(change)
    }

    /// Stops every hosted server (at shutdown).
    pub(super) async fn stop_servers(&self) {
        for server in self.servers() {
            server.stop().await;
        }
    }
}
