//! Benchmark P4: the host's scalability and the cost of `airlock serve`'s
//! MCP glue, all measured in one run.
//!
//! 1. `Host::invoke` of `echo` from 64 concurrent tasks (journal on) on a
//!    tokio runtime with 1 worker thread, then 2; rounds alternate. Target:
//!    2 workers ≥ 1.8 × the throughput of 1 (contention in the journal, the
//!    approvals lookup or the instance pool would show here).
//! 2. One MCP client calling `echo` over streamable HTTP on loopback: p50 of
//!    `tools/call` through `airlock serve` against the sum of (a) the same
//!    rmcp transport serving a handler that answers at once and (b)
//!    `Host::invoke` of `echo`, interleaved. Target: ≤ 1.15×.
//! 3. 64 concurrent MCP clients against `airlock serve`: throughput and
//!    p50/p99 (clients and server share the machine's cores).
//!
//! `cargo bench -p airlock-tests --bench p4_serve [-- ITERATIONS]`

// The allocator the `airlock` binary serves with (see `crates/cli/src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use airlock::{Host, Invocation};
use airlock_serve::http::HttpListener;
use airlock_serve::{Server, Sources};
use airlock_tests::stats;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ServerCapabilities, ServerConfig,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{
    StreamableHttpClientTransport, StreamableHttpServerConfig, StreamableHttpService,
};
use rmcp::{ErrorData, RoleClient, RoleServer, ServerHandler, ServiceExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_service::Service as _;

const TASKS: usize = 64;
const CALLS_PER_TASK: usize = 40;
const WARMUP_CALLS_PER_TASK: usize = 5;
const ROUNDS: usize = 3;
const WARMUP: usize = 200;

fn arguments() -> serde_json::Map<String, serde_json::Value> {
    match serde_json::json!({"query": "weather in Lisbon", "units": "metric"}) {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

fn call() -> CallToolRequestParams {
    CallToolRequestParams::new("echo").with_arguments(arguments())
}

/// The baseline handler: answers `tools/call` at once with its arguments.
#[derive(Clone)]
struct Instantly;

impl ServerHandler for Instantly {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let output = serde_json::Value::Object(request.arguments.unwrap_or_default());
        Ok(CallToolResult::structured(output).into())
    }
}

/// Serves `Instantly` over streamable HTTP on a loopback port, with the
/// configuration `airlock serve` uses; returns the URL.
async fn serve_instantly() -> Result<String, Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let service: StreamableHttpService<Instantly, LocalSessionManager> = StreamableHttpService::new(
        || Ok(Instantly),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default().enforce_origin_validation(),
    );
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = service.clone();
            tokio::spawn(async move {
                let handler = hyper::service::service_fn(move |request| {
                    let mut service = service.clone();
                    async move { service.call(request).await }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), handler)
                    .await;
            });
        }
    });
    Ok(format!("http://{address}/mcp"))
}

async fn client(url: &str, token: Option<&str>) -> RunningService<RoleClient, ()> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_string());
    if let Some(token) = token {
        config = config.auth_header(token.to_string());
    }
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("the MCP client connects")
}

async fn timed_call(client: &RunningService<RoleClient, ()>) -> Duration {
    let start = Instant::now();
    let result = client.peer().call_tool(call()).await.expect("tools/call");
    let elapsed = start.elapsed();
    assert_eq!(result.is_error, Some(false));
    elapsed
}

/// `TASKS` tasks each invoking `tool` `calls` times, one after another.
async fn concurrently(
    host: &Host,
    tool: &airlock::Tool,
    input: &str,
    calls: usize,
) -> Result<(), airlock::InvokeError> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let (host, tool, input) = (host.clone(), tool.clone(), input.to_string());
        tasks.spawn(async move {
            for _ in 0..calls {
                let outcome = host.invoke(&tool, Invocation::new(input.clone())).await?;
                assert_eq!(outcome.code(), "ok");
            }
            Ok::<_, airlock::InvokeError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("an invoking task panicked")?;
    }
    Ok(())
}

/// Part 1: throughput of 64 concurrent invokers on `workers` threads.
fn throughput(workers: usize, echo: &str) -> Result<f64, Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let state = tempfile::tempdir()?;
        let host = Host::builder().state_dir(state.path()).build()?;
        let tool = host
            .load(std::path::Path::new(echo), airlock::Grants::none())
            .await?;
        let input = serde_json::Value::Object(arguments()).to_string();
        // Warm-up at full concurrency, so that every pool slot the timed
        // round uses has held an instance of `echo` before.
        concurrently(&host, &tool, &input, WARMUP_CALLS_PER_TASK).await?;
        let start = Instant::now();
        concurrently(&host, &tool, &input, CALLS_PER_TASK).await?;
        Ok((TASKS * CALLS_PER_TASK) as f64 / start.elapsed().as_secs_f64())
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations = stats::iterations(2_000);
    let echo = airlock_test_artifacts::ECHO;

    // Part 1, rounds alternating between the two runtimes.
    let (mut one, mut two) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        one.push(throughput(1, echo)?);
        two.push(throughput(2, echo)?);
    }
    let (one, two) = (stats::median(&mut one), stats::median(&mut two));
    let scaling = two / one;
    println!(
        "P4 Host::invoke of `echo`, {TASKS} tasks x {CALLS_PER_TASK} calls, journal on, median of {ROUNDS} rounds"
    );
    println!("  1 worker thread   {one:9.0} calls/s");
    println!("  2 worker threads  {two:9.0} calls/s");
    println!(
        "  scaling {scaling:.2}x   target >= 1.80x   {}",
        if scaling >= 1.8 { "OK" } else { "UNDER TARGET" }
    );

    // Parts 2 and 3 on one runtime with the machine's two cores.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("airlock.toml");
        std::fs::write(
            &config,
            format!("[[tools]]\nname = \"echo\"\ncomponent = {echo:?}\n"),
        )?;
        let state = dir.path().join("state");
        let host = Host::builder().state_dir(&state).build()?;
        let server = Server::start(
            host.clone(),
            Sources {
                config,
                policies: None,
                state_dir: state.clone(),
                locked: false,
            },
        )
        .await?;
        let (_, token) = server.agents().add("bench")?;
        let listener = HttpListener::bind(([127, 0, 0, 1], 0).into()).await?;
        let airlock_url = format!("http://{}/mcp", listener.local_addr());
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(listener.serve(server.clone(), stop.clone()));
        let baseline_url = serve_instantly().await?;

        let tool = host
            .load(std::path::Path::new(echo), airlock::Grants::none())
            .await?;
        let input = serde_json::Value::Object(arguments()).to_string();
        let airlock_client = client(&airlock_url, Some(token.expose())).await;
        let baseline_client = client(&baseline_url, None).await;
        let invoke = || async {
            let start = Instant::now();
            let outcome = host.invoke(&tool, Invocation::new(input.clone())).await?;
            let elapsed = start.elapsed();
            assert_eq!(outcome.code(), "ok");
            Ok::<_, airlock::InvokeError>(elapsed)
        };
        for _ in 0..WARMUP {
            timed_call(&airlock_client).await;
            timed_call(&baseline_client).await;
            invoke().await?;
        }
        let (mut served, mut transport, mut invoked) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..iterations {
            // Rotate the order so none always follows the same neighbour.
            match i % 3 {
                0 => {
                    served.push(timed_call(&airlock_client).await);
                    transport.push(timed_call(&baseline_client).await);
                    invoked.push(invoke().await?);
                }
                1 => {
                    transport.push(timed_call(&baseline_client).await);
                    invoked.push(invoke().await?);
                    served.push(timed_call(&airlock_client).await);
                }
                _ => {
                    invoked.push(invoke().await?);
                    served.push(timed_call(&airlock_client).await);
                    transport.push(timed_call(&baseline_client).await);
                }
            }
        }
        let (t50, i50) = (
            stats::percentile(&mut transport, 0.5),
            stats::percentile(&mut invoked, 0.5),
        );
        let s50 = stats::percentile(&mut served, 0.5);
        let s99 = stats::percentile(&mut served, 0.99);
        let glue = s50.as_secs_f64() / (t50 + i50).as_secs_f64();
        println!("P4 tools/call `echo` over streamable HTTP, one client, {iterations} interleaved calls");
        println!("  (a) rmcp transport, instant handler   p50 {:9.2} µs", stats::micros(t50));
        println!("  (b) Host::invoke of `echo`             p50 {:9.2} µs", stats::micros(i50));
        println!(
            "  airlock serve                          p50 {:9.2} µs   p99 {:9.2} µs",
            stats::micros(s50),
            stats::micros(s99)
        );
        println!(
            "  ratio airlock / (a + b): {glue:.2}x   target <= 1.15x   {}",
            if glue <= 1.15 { "OK" } else { "OVER TARGET" }
        );
        airlock_client.cancel().await?;
        baseline_client.cancel().await?;

        // Part 3: 64 clients at once, each its own session.
        let mut clients = Vec::with_capacity(TASKS);
        for _ in 0..TASKS {
            clients.push(client(&airlock_url, Some(token.expose())).await);
        }
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for client in clients {
            tasks.spawn(async move {
                let mut samples = Vec::with_capacity(CALLS_PER_TASK);
                for _ in 0..CALLS_PER_TASK {
                    samples.push(timed_call(&client).await);
                }
                let _ = client.cancel().await;
                samples
            });
        }
        let mut all = Vec::with_capacity(TASKS * CALLS_PER_TASK);
        while let Some(samples) = tasks.join_next().await {
            all.extend(samples?);
        }
        let elapsed = start.elapsed();
        println!(
            "P4 {TASKS} concurrent MCP clients x {CALLS_PER_TASK} calls (clients and server share 2 cores)"
        );
        println!(
            "  {:9.0} calls/s   p50 {:9.2} µs   p99 {:9.2} µs",
            all.len() as f64 / elapsed.as_secs_f64(),
            stats::micros(stats::percentile(&mut all, 0.5)),
            stats::micros(stats::percentile(&mut all, 0.99))
        );
        stop.cancel();
        server.shutdown().await?;
        Ok(())
    })
}
