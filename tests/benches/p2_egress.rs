//! Benchmark P2: a GET from the `http-get` guest through airlock's egress
//! hook (instantiate, call, decide, pin, connect, request, response) against
//! a host-native hyper GET of the same URL, both on a new connection each
//! time to the same loopback server, interleaved in one run. Target: p50
//! ratio at most 1.2.
//!
//! `cargo bench -p airlock-tests --bench p2_egress [-- ITERATIONS]`

use airlock::egress::StaticResolver;
use airlock::{Grants, Host, Invocation, NetworkGrant};
use airlock_tests::net::{Behaviour, TestServer};
use airlock_tests::stats;
use http_body_util::{BodyExt, Empty};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WARMUP: usize = 200;

async fn native_get(
    addr: SocketAddr,
    path: &str,
) -> Result<(u16, usize), Box<dyn std::error::Error>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, "bench.test")
        .body(Empty::<bytes::Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body.len()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations = stats::iterations(2_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let ip = Ipv4Addr::new(127, 0, 0, 2);
        let server = TestServer::start(ip, 0, Behaviour::Sized(512)).await?;
        let addr = server.addr();
        let host = Host::builder()
            .resolver(Arc::new(
                StaticResolver::new().with("bench.test", [IpAddr::V4(ip)]),
            ))
            .build()?;
        let grant = NetworkGrant::from_toml(
            &format!(
                "[[allow]]\nhost = \"bench.test\"\nprivate = true\nports = [{}]\n",
                addr.port()
            ),
            "bench-grant.toml",
        )?;
        let tool = host
            .load(
                std::path::Path::new(airlock_test_artifacts::HTTP_GET),
                Grants::none().with_network(grant),
            )
            .await?;
        let input = serde_json::json!({"url": format!("http://bench.test:{}/item", addr.port())})
            .to_string();

        let guest = || async {
            let start = Instant::now();
            let outcome = host.invoke(&tool, Invocation::new(input.clone())).await?;
            let elapsed = start.elapsed();
            assert_eq!(outcome.code(), "ok", "{:?}", outcome.message());
            Ok::<Duration, Box<dyn std::error::Error>>(elapsed)
        };
        let native = || async {
            let start = Instant::now();
            let (status, len) = native_get(addr, "/item").await?;
            let elapsed = start.elapsed();
            assert_eq!((status, len), (200, 512));
            Ok::<Duration, Box<dyn std::error::Error>>(elapsed)
        };

        for _ in 0..WARMUP {
            guest().await?;
            native().await?;
        }
        let mut guest_samples = Vec::with_capacity(iterations);
        let mut native_samples = Vec::with_capacity(iterations);
        for i in 0..iterations {
            if i % 2 == 0 {
                native_samples.push(native().await?);
                guest_samples.push(guest().await?);
            } else {
                guest_samples.push(guest().await?);
                native_samples.push(native().await?);
            }
        }
        stats::report(
            &format!(
                "P2 GET over loopback, new connection each, {iterations} interleaved iterations"
            ),
            ("host-native hyper GET", &mut native_samples),
            ("guest GET through the egress hook", &mut guest_samples),
            1.2,
        );
        Ok(())
    })
}
