//! The demo's MCP step: `airlock serve` in-process, an agent (rmcp's MCP
//! client, authenticated by its token) lists the tools and calls them; a
//! network call waits until the operator approves it over the operator
//! socket, then completes.

use airlock::Host;
use airlock::egress::StaticResolver;
use airlock_serve::http::{HttpListener, MCP_PATH};
use airlock_serve::operator::{OperatorListener, OperatorRequest, request};
use airlock_serve::{Server, Sources};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn call(name: &str, arguments: Value) -> CallToolRequestParams {
    let arguments = match arguments {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    CallToolRequestParams::new(name.to_string()).with_arguments(arguments)
}

/// Runs the step; returns how many things did not end as they should.
pub async fn serve_step(
    state: &Path,
    api_port: u16,
    guest: impl Fn(&str) -> &'static str,
) -> Result<u32, Box<dyn std::error::Error>> {
    let mut failures = 0;
    std::fs::create_dir_all(state)?;
    let config = state.join("airlock.toml");
    std::fs::write(
        &config,
        format!(
            "[serve]\napproval_wait = \"1m\"\n\n\
             [[tools]]\nname = \"json-transform\"\ncomponent = {:?}\n\n\
             [[tools]]\nname = \"fetch\"\ncomponent = {:?}\n\
             [[tools.network.allow]]\nhost = \"api.demo\"\nports = [{api_port}]\nprivate = true\n",
            guest("json-transform"),
            guest("http-get"),
        ),
    )?;
    let host = Host::builder()
        .cache_dir(".airlock/cache")
        .state_dir(state)
        .resolver(Arc::new(
            StaticResolver::new().with("api.demo", [IpAddr::V4(Ipv4Addr::LOCALHOST)]),
        ))
        .build()?;
    let server = Server::start(
        host,
        Sources {
            config: config.clone(),
            policies: None,
            state_dir: state.to_path_buf(),
            locked: false,
        },
    )
    .await?;
    let stop = tokio_util::sync::CancellationToken::new();
    let operator = OperatorListener::bind(&server.operator_socket(), &server.settings()).await?;
    let socket = operator.path().to_path_buf();
    tokio::spawn(operator.serve(server.clone(), stop.clone()));
    let http = HttpListener::bind((Ipv4Addr::LOCALHOST, 0).into()).await?;
    let url = format!("http://{}{MCP_PATH}", http.local_addr());
    tokio::spawn(http.serve(server.clone(), stop.clone()));
    let state = state.display();
    println!(
        "$ airlock --state-dir {state} serve --config {} --listen 127.0.0.1:0",
        config.display()
    );
    println!("  serving MCP at {url}");

    println!("$ airlock --state-dir {state} agents add demo-agent");
    let (_, token) = server.agents().add("demo-agent")?;
    println!("  airlock_agent_… (shown once; the server keeps its hash)\n");

    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url).auth_header(token.expose()),
    );
    let agent = ().serve(transport).await?;
    println!("# an MCP client (the agent) lists the tools and calls one");
    let tools = agent.peer().list_all_tools().await?;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    println!("  tools/list: {}", names.join(", "));
    let transformed = agent
        .peer()
        .call_tool(call(
            "json-transform",
            json!({"records": [{"city": "Oslo", "c": -3}, {"city": "Lima", "c": 19}],
                   "sort_by": "c", "descending": true, "select": ["city"]}),
        ))
        .await?;
    match (&transformed.is_error, &transformed.structured_content) {
        (Some(false), Some(output)) => println!("  tools/call json-transform: {output}\n"),
        _ => {
            println!("  !! json-transform failed: {transformed:?}\n");
            failures += 1;
        }
    }

    println!("# a network call waits for the operator");
    let peer = agent.peer().clone();
    let fetch_url = format!("http://api.demo:{api_port}/forecast");
    let waiting = tokio::spawn(async move {
        peer.call_tool(call("fetch", json!({ "url": fetch_url })))
            .await
    });
    let id = loop {
        let pending = request(&socket, &OperatorRequest::ApprovalsList { all: false })
            .await?
            .unwrap_or_default();
        if let Some(id) = pending[0]["id"].as_str() {
            break id.to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("  pending approval {id}");
    println!("$ airlock --state-dir {state} approvals decide {id} --allow once");
    let decided = request(
        &socket,
        &OperatorRequest::ApprovalsDecide {
            id: id.clone(),
            decision: airlock::approvals::OperatorDecision::AllowOnce,
        },
    )
    .await?
    .unwrap_or_default();
    println!(
        "  decided by {} (the socket's peer credentials)",
        decided["decided_by"].as_str().unwrap_or("?")
    );
    let fetched = waiting.await??;
    match fetched.structured_content.as_ref().map(|o| &o["status"]) {
        Some(status) if fetched.is_error == Some(false) => {
            println!("  tools/call fetch completed: HTTP {status}\n")
        }
        _ => {
            println!("  !! the approved call did not complete: {fetched:?}\n");
            failures += 1;
        }
    }
    agent.cancel().await?;
    stop.cancel();
    server.shutdown().await?;
    Ok(failures)
}
