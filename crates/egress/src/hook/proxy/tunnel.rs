//! `CONNECT` tunnels: plain TCP to the checked address, carrying the
//! client's own TLS. Before one byte goes upstream the tunnel reads the
//! client's TLS ClientHello (without terminating TLS: rustls only parses
//! it) and requires its SNI to name the granted host, so a tunnel decided
//! as https carries TLS to that server or nothing. Each direction counts
//! against the grant's byte limits and is paced by the invocation's rate
//! limit, like the hook's bodies.

use super::{Context, ProxyBody, failed};
use crate::budget::Budget;
use crate::decide::{PinnedTarget, Reason};
use crate::record::RecordHandle;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest ClientHello read before giving up: a TLS record is at most
/// 16 KiB plus its header, and a hello may span a few.
const MAX_HELLO: usize = 64 * 1024;

/// How much one read moves through the tunnel.
const CHUNK: usize = 16 * 1024;

/// The TLS record type of a handshake message.
const TLS_HANDSHAKE: u8 = 0x16;

/// Dials the checked address for a `CONNECT`, answers `200`, and runs the
/// tunnel on its own task; `502` with the reason if the dial fails.
pub(super) async fn open(
    cx: &Context,
    request: Request<Incoming>,
    pinned: &PinnedTarget,
    record: RecordHandle,
) -> Response<ProxyBody> {
    let budgets = cx.grant.budgets().clone();
    let stream = match cx
        .dial(pinned, &record, budgets.connect_timeout, true)
        .await
    {
        Ok(stream) => stream,
        Err(reason) => {
            record.finish(Some(reason));
            return failed(reason, pinned);
        }
    };
    let host = pinned.target().host.to_string();
    let budget = Arc::clone(&cx.budget);
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(request).await else {
            record.finish(Some(Reason::ProtocolError));
            return;
        };
        let client = hyper_util::rt::TokioIo::new(upgraded);
        let (mut client_read, client_write) = tokio::io::split(client);
        let (server_read, mut server_write) = tokio::io::split(stream);
        let hello =
            match tokio::time::timeout(budgets.first_byte_timeout, read_hello(&mut client_read))
                .await
            {
                Err(_elapsed) => Err(Reason::FirstByteTimeout),
                Ok(hello) => hello.and_then(|(bytes, sni)| {
                    names_host(sni.as_deref(), &host)
                        .then_some(bytes)
                        .ok_or(Reason::SniMismatch)
                }),
            };
        let hello = match hello {
            Ok(hello) => hello,
            Err(reason) => {
                record.finish(Some(reason));
                return;
            }
        };
        let (up_limit, down_limit) = (budgets.max_request_bytes, budgets.max_response_bytes);
        let up = async {
            let sent = match send(&mut server_write, &hello, up_limit, &budget, &record).await {
                Ok(()) => {
                    pump(
                        client_read,
                        &mut server_write,
                        up_limit - hello.len() as u64,
                        &budget,
                        |n| record.add_up(n),
                    )
                    .await
                }
                Err(over) => over,
            };
            let _ = server_write.shutdown().await;
            sent
        };
        let down = async {
            let mut client_write = client_write;
            let got = pump(server_read, &mut client_write, down_limit, &budget, |n| {
                record.add_down(n)
            })
            .await;
            let _ = client_write.shutdown().await;
            got
        };
        let (up_over, down_over) = tokio::join!(up, down);
        record.finish(if down_over {
            Some(Reason::ResponseTooLarge)
        } else if up_over {
            Some(Reason::RequestTooLarge)
        } else {
            None
        });
    });
    Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync())
}

/// Reads the client's first bytes up to a complete ClientHello: the bytes
/// (to forward unchanged) and the SNI it names, if any.
async fn read_hello(
    client: &mut (impl AsyncRead + Unpin),
) -> Result<(Vec<u8>, Option<String>), Reason> {
    let mut acceptor = rustls::server::Acceptor::default();
    let mut seen = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = client
            .read(&mut buf)
            .await
            .map_err(|_| Reason::ProtocolError)?;
        if n == 0 {
            return Err(Reason::TunnelNotTls);
        }
        seen.extend_from_slice(&buf[..n]);
        // Not a TLS handshake from the first byte: no need to read more.
        if seen[0] != TLS_HANDSHAKE || seen.len() > MAX_HELLO {
            return Err(Reason::TunnelNotTls);
        }
        acceptor
            .read_tls(&mut &buf[..n])
            .map_err(|_| Reason::TunnelNotTls)?;
        match acceptor.accept() {
            Ok(None) => continue,
            Ok(Some(accepted)) => {
                let sni = accepted.client_hello().server_name().map(str::to_string);
                return Ok((seen, sni));
            }
            Err(_) => return Err(Reason::TunnelNotTls),
        }
    }
}

/// Whether a ClientHello's SNI names the granted `host`: the same name
/// (ASCII case and a final dot aside), or none at all for an IP literal,
/// where clients send no SNI.
pub(super) fn names_host(sni: Option<&str>, host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match sni {
        None => host.parse::<std::net::IpAddr>().is_ok(),
        Some(sni) => sni
            .trim_end_matches('.')
            .eq_ignore_ascii_case(host.trim_end_matches('.')),
    }
}

/// Writes `bytes` upstream under the limit and the pacing; `Err(true)` when
/// they alone are over the limit, `Err(false)` when the server went away.
async fn send(
    to: &mut (impl AsyncWrite + Unpin),
    bytes: &[u8],
    limit: u64,
    budget: &Budget,
    record: &RecordHandle,
) -> Result<(), bool> {
    if bytes.len() as u64 > limit {
        return Err(true);
    }
    pace(budget, bytes.len()).await;
    to.write_all(bytes).await.map_err(|_| false)?;
    record.add_up(bytes.len() as u64);
    Ok(())
}

/// Waits as long as the rate limit asks before `n` bytes may move.
async fn pace(budget: &Budget, n: usize) {
    let delay = budget.delay_for(n as u64);
    if delay > Duration::ZERO {
        tokio::time::sleep(delay).await;
    }
}

/// Moves bytes from `from` to `to` until either ends or `limit` bytes have
/// gone; `counted` is told each chunk. Whether the limit stopped it.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    to: &mut (impl AsyncWrite + Unpin),
    limit: u64,
    budget: &Budget,
    counted: impl Fn(u64),
) -> bool {
    let mut buf = vec![0u8; CHUNK];
    let mut moved = 0u64;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let room = usize::try_from(limit - moved).unwrap_or(usize::MAX);
        let n_sent = n.min(room);
        pace(budget, n_sent).await;
        if to.write_all(&buf[..n_sent]).await.is_err() {
            return false;
        }
        moved += n_sent as u64;
        counted(n_sent as u64);
        if n > room {
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Budget, names_host, pump};
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn tunnel_bytes_are_paced_and_stop_at_the_limit() {
        // 1,000 bytes a second (a second's worth of burst), 5,000 bytes to
        // move: at least four seconds on tokio's paused clock.
        let budget = Budget::new(10, Some(1_000));
        let (mut writer, reader) = tokio::io::duplex(64 * 1024);
        writer.write_all(&[7u8; 5_000]).await.expect("write");
        drop(writer);
        let mut sink = Vec::new();
        let started = tokio::time::Instant::now();
        let counted = std::sync::atomic::AtomicU64::new(0);
        let over = pump(reader, &mut sink, 1_000_000, &budget, |n| {
            counted.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        })
        .await;
        assert!(!over);
        assert_eq!(sink.len(), 5_000);
        assert_eq!(counted.into_inner(), 5_000);
        assert!(
            started.elapsed() >= std::time::Duration::from_secs(4),
            "paced: {:?}",
            started.elapsed()
        );

        // Without a rate, the limit alone stops it, at exactly the limit.
        let unpaced = Budget::new(10, None);
        let (mut writer, reader) = tokio::io::duplex(64 * 1024);
        writer.write_all(&[7u8; 3_000]).await.expect("write");
        drop(writer);
        let mut sink = Vec::new();
        assert!(pump(reader, &mut sink, 1_024, &unpaced, |_| {}).await);
        assert_eq!(sink.len(), 1_024);
    }

    #[test]
    fn the_sni_must_name_the_granted_host() {
        let cases = [
            (Some("api.example.com"), "api.example.com", true),
            (Some("API.Example.com."), "api.example.com", true),
            (Some("evil.example"), "api.example.com", false),
            (Some("api.example.com.evil"), "api.example.com", false),
            (None, "api.example.com", false),
            (None, "127.0.0.2", true),
            (None, "[::1]", true),
            (Some("127.0.0.2"), "127.0.0.2", true),
        ];
        for (sni, host, expected) in cases {
            assert_eq!(names_host(sni, host), expected, "{sni:?} for {host}");
        }
    }
}
