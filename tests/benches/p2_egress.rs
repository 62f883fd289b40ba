//! Benchmark P2: an HTTP GET from the `http-get` guest through airlock's
//! egress hook (decide, pin, connect, request, stream the response back into
//! the guest) against a host-native hyper GET of the same URL, both on a new
//! connection each time to the same loopback server, interleaved in one run.
//!
//! The guest makes `PER_BLOCK` GETs in one invocation (its own loop), so the
//! per-GET time is the hook's cost, not instantiation's (that is P1's).
//!
//! Baselines, same run:
//! - **stock sender**: the same guest in plain wasmtime with
//!   wasmtime-wasi-http's own `default_send_request` (enabled only in this
//!   benchmark crate): what every `wasi:http` host pays. Target: airlock's
//!   hook ≤ 1.05 × stock at p50.
//! - **native**: host-native hyper, for context (the `wasi:http` machinery
//!   itself; the old 1.2 × target).
//!
//! Both guests ask for `http://127.0.0.2:PORT/item`: an IP literal, so the
//! stock sender never resolves a name (nothing may leave loopback), and
//! airlock classifies it as it would any address. The cost of a fresh
//! invocation that makes a single GET is reported too.
//!
//! `cargo bench -p airlock-tests --bench p2_egress [-- BLOCKS]`

use airlock::{Grants, Host, Invocation, NetworkGrant, Tool};
use airlock_tests::net::{Behaviour, TestServer};
use airlock_tests::raw::{PurePre, RawState};
use airlock_tests::stats;
use http_body_util::{BodyExt, Empty};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView, default_hooks};

/// Plain wasmtime with wasi:http and its stock sender.
#[derive(Default)]
struct StockState {
    raw: RawState,
    http: WasiHttpCtx,
}

impl WasiView for StockState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.raw.ctx()
    }
}

impl WasiHttpView for StockState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.raw.table,
            hooks: default_hooks(),
        }
    }
}

/// The `http-get` guest ready to run on the stock sender.
struct Stock {
    engine: Engine,
    pre: PurePre<StockState>,
}

impl Stock {
    fn new(engine: &Engine) -> Result<Self, Error> {
        let mut linker: Linker<StockState> = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        let component = Component::from_file(engine, airlock_test_artifacts::HTTP_GET)?;
        Ok(Self {
            engine: engine.clone(),
            pre: PurePre::new(linker.instantiate_pre(&component)?)?,
        })
    }

    /// Mean time per GET over one instance making `count` GETs.
    async fn block(&self, url: &str, count: u32) -> Result<Duration, Error> {
        let input = serde_json::json!({ "url": url, "repeat": count }).to_string();
        let start = Instant::now();
        let mut store = Store::new(&self.engine, StockState::default());
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = self.pre.instantiate_async(&mut store).await?;
        let output = instance
            .airlock_tool_tool()
            .call_call(&mut store, &input)
            .await?;
        drop(store);
        let elapsed = start.elapsed();
        let output = output.map_err(|e| format!("the stock guest failed: {e:?}"))?;
        assert!(output.contains("\"status\":200"), "{output}");
        Ok(elapsed / count)
    }
}

const PER_BLOCK: u32 = 20;
const WARMUP_BLOCKS: usize = 20;

type Error = Box<dyn std::error::Error>;

async fn native_get(addr: SocketAddr) -> Result<(), Error> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = hyper::Request::get("/item")
        .header(hyper::header::HOST, "bench.test")
        .body(Empty::<bytes::Bytes>::new())?;
    let response = sender.send_request(request).await?;
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await?.to_bytes();
    assert_eq!(body.len(), 512);
    Ok(())
}

/// Mean time per GET over `count` native GETs.
async fn native_block(addr: SocketAddr, count: u32) -> Result<Duration, Error> {
    let start = Instant::now();
    for _ in 0..count {
        native_get(addr).await?;
    }
    Ok(start.elapsed() / count)
}

/// Mean time per GET over one invocation making `count` GETs.
async fn guest_block(host: &Host, tool: &Tool, url: &str, count: u32) -> Result<Duration, Error> {
    let input = serde_json::json!({ "url": url, "repeat": count }).to_string();
    let start = Instant::now();
    let outcome = host.invoke(tool, Invocation::new(input)).await?;
    let elapsed = start.elapsed();
    assert_eq!(outcome.code(), "ok", "{:?}", outcome.message());
    assert_eq!(outcome.report().egress.len(), count as usize);
    Ok(elapsed / count)
}

fn main() -> Result<(), Error> {
    let blocks = stats::iterations(200);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let ip = Ipv4Addr::new(127, 0, 0, 2);
        let server = TestServer::start(ip, 0, Behaviour::Sized(512)).await?;
        let addr = server.addr();
        let host = Host::builder()
            .policies(airlock_tests::permit_all())
            .build()?;
        let grant = NetworkGrant::from_toml(
            &format!(
                "max_requests = 1000\n[[allow]]\nhost = \"{ip}\"\nprivate = true\nports = [{}]\n",
                addr.port()
            ),
            "bench-grant.toml",
        )?;
        let path = std::path::Path::new(airlock_test_artifacts::HTTP_GET);
        let tool = host.load(path, Grants::none().with_network(grant)).await?;
        let stock = Stock::new(host.engine())?;
        let url = format!("http://{ip}:{}/item", addr.port());

        for _ in 0..WARMUP_BLOCKS {
            guest_block(&host, &tool, &url, PER_BLOCK).await?;
            stock.block(&url, PER_BLOCK).await?;
            native_block(addr, PER_BLOCK).await?;
        }
        let (mut guest, mut native) = (Vec::with_capacity(blocks), Vec::with_capacity(blocks));
        let mut stocked = Vec::with_capacity(blocks);
        let (mut fresh, mut single) = (Vec::with_capacity(blocks), Vec::with_capacity(blocks));
        for i in 0..blocks {
            // Rotate which goes first so none always sees a warmer cache.
            for turn in 0..3 {
                match (i + turn) % 3 {
                    0 => native.push(native_block(addr, PER_BLOCK).await?),
                    1 => guest.push(guest_block(&host, &tool, &url, PER_BLOCK).await?),
                    _ => stocked.push(stock.block(&url, PER_BLOCK).await?),
                }
            }
            fresh.push(guest_block(&host, &tool, &url, 1).await?);
            single.push(native_block(addr, 1).await?);
        }
        let title = format!(
            "P2 GET over loopback, new connection each, {blocks} interleaved blocks of {PER_BLOCK} GETs"
        );
        let mut guest_again = guest.clone();
        stats::report(
            &title,
            ("guest GET, wasmtime-wasi-http stock sender", &mut stocked),
            ("guest GET through airlock's egress hook", &mut guest),
            1.05,
        );
        stats::report(
            "  (context: the wasi:http machinery itself)",
            ("host-native hyper GET", &mut native),
            ("guest GET through airlock's egress hook", &mut guest_again),
            1.2,
        );
        let fresh_p50 = stats::percentile(&mut fresh, 0.5);
        let single_p50 = stats::percentile(&mut single, 0.5);
        println!(
            "  a fresh invocation making one GET: p50 {:.1} µs ({:.2}x one native GET, {:.1} µs; instantiation is P1's)",
            stats::micros(fresh_p50),
            fresh_p50.as_secs_f64() / single_p50.as_secs_f64(),
            stats::micros(single_p50)
        );
        Ok(())
    })
}
