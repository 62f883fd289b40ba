//! What a running server serves: the [`Catalog`] of tools, hosted servers
//! and settings in force (swapped whole on reload), loaded from one
//! configuration by [`load_catalog`].

use super::{ServeError, Served, fleet, hosting, object_schema, valid_tool_name};
use airlock::Host;
use airlock::config::{Config, FleetPolicy, ServeSettings};
use airlock::servers::HostedServer;
use futures_util::StreamExt as _;
use rmcp::model::Tool;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The tools, hosted servers and settings in force; swapped whole on
/// reload (and when a hosted server's tools change).
pub(crate) struct Catalog {
    pub(crate) tools: Vec<Arc<Served>>,
    by_name: HashMap<String, usize>,
    pub(crate) settings: ServeSettings,
    pub(crate) servers: Vec<airlock::servers::HostedServer>,
    /// The `[fleet]` policy its configuration holds.
    pub(crate) fleet: Option<FleetPolicy>,
}

impl Catalog {
    pub(crate) fn new(
        tools: Vec<Arc<Served>>,
        settings: ServeSettings,
        servers: Vec<airlock::servers::HostedServer>,
        fleet: Option<FleetPolicy>,
    ) -> Self {
        let by_name = tools
            .iter()
            .enumerate()
            .map(|(i, s)| (s.tool.name().to_string(), i))
            .collect();
        Self {
            tools,
            by_name,
            settings,
            servers,
            fleet,
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Arc<Served>> {
        self.by_name.get(name).map(|&i| &self.tools[i])
    }

    /// Publishes the statement of a replica serving this catalog (see
    /// [`fleet::publish_statement`]); when that fails, the hosted servers
    /// this catalog started are stopped.
    pub(crate) async fn publish_statement(
        &self,
        host: &Host,
        config: &Config,
        config_file: &Path,
    ) -> Result<(), ServeError> {
        let tools = self
            .tools
            .iter()
            .map(|s| (s.tool.name().to_string(), s.tool.sha256().to_string()));
        let published = fleet::publish_statement(host, config, config_file, tools);
        if published.is_err() {
            for server in &self.servers {
                server.stop().await;
            }
        }
        Ok(published?)
    }

    /// This catalog with `server`'s tools replaced by `listed`.
    pub(crate) fn with_server_tools(
        &self,
        host: &Host,
        server: &HostedServer,
        listed: &[Tool],
    ) -> Result<Catalog, ServeError> {
        let mut tools: Vec<Arc<Served>> = self
            .tools
            .iter()
            .filter(|s| s.hosted_by(server.name()).is_none())
            .cloned()
            .collect();
        let added = hosting::served_tools(host, server, listed, |name| {
            tools.iter().any(|s| s.tool.name() == name)
        })?;
        tools.extend(added);
        Ok(Catalog::new(
            tools,
            self.settings.clone(),
            self.servers.clone(),
            self.fleet.clone(),
        ))
    }
}

/// Loads every configured tool, checking what MCP needs of it.
pub(crate) async fn load_catalog(host: &Host, config: &Config) -> Result<Catalog, ServeError> {
    let mut tools = Vec::with_capacity(config.tools().len());
    let mut by_name = HashMap::new();
    if let Some(bad) = config.tools().iter().find(|t| !valid_tool_name(t.name())) {
        return Err(ServeError::ToolName {
            name: bad.name().to_string(),
        });
    }
    // Loaded a few at a time (reading and checking cache entries, and
    // compiling, use a core each); errors are reported in file order.
    let at_once = std::thread::available_parallelism().map_or(2, usize::from);
    let loading: Vec<_> = config
        .tools()
        .iter()
        .map(|tool_config| {
            let (host, tool_config) = (host.clone(), tool_config.clone());
            async move { host.load_configured(&tool_config).await }
        })
        .collect();
    let mut loaded = Vec::with_capacity(loading.len());
    let mut pending = futures_util::stream::iter(loading).buffered(at_once);
    while let Some(tool) = pending.next().await {
        loaded.push(tool?);
    }
    for (tool_config, tool) in config.tools().iter().zip(loaded) {
        let name = tool_config.name();
        let schema: serde_json::Value =
            serde_json::from_str(tool.input_schema()).map_err(|e| ServeError::Schema {
                name: name.to_string(),
                message: e.to_string(),
            })?;
        let schema = object_schema(schema).map_err(|message| ServeError::Schema {
            name: name.to_string(),
            message,
        })?;
        by_name.insert(name.to_string(), tools.len());
        tools.push(Arc::new(Served { tool, schema }));
    }
    let servers = hosting::load_servers(host, config.servers()).await?;
    for (server, listed) in &servers {
        for served in
            hosting::served_tools(host, server, listed, |name| by_name.contains_key(name))?
        {
            by_name.insert(served.tool.name().to_string(), tools.len());
            tools.push(served);
        }
    }
    Ok(Catalog::new(
        tools,
        config.serve().clone(),
        servers.into_iter().map(|(server, _)| server).collect(),
        config.fleet().cloned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_names_follow_mcp_rules() {
        for good in ["echo", "json-transform", "a.b_c", &"x".repeat(128)] {
            assert!(valid_tool_name(good), "{good}");
        }
        for bad in ["", "has space", "semi;colon", "ünï", &"x".repeat(129)] {
            assert!(!valid_tool_name(bad), "{bad}");
        }
    }

    #[test]
    fn schemas_must_describe_objects() {
        assert_eq!(
            object_schema(json!({"properties": {}})).expect("ok")["type"],
            "object"
        );
        assert!(object_schema(json!({"type": "string"})).is_err());
        assert!(object_schema(json!([1])).is_err());
    }
}
