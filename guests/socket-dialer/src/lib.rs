//! `socket-dialer` (hostile fixture): tries to reach the network around the
//! host's HTTP door, through `wasi:sockets`.
//!
//! Input `{"addr": "127.0.0.1:PORT", "name": "localhost"}`. Tries a TCP
//! connect to `addr`, a UDP bind and send to it, and a DNS lookup of `name`,
//! and reports each result.
//!
//! Expected: every attempt fails with `PermissionDenied` (the guest's view of
//! WASI `access-denied`), and nothing reaches the listener at `addr`.

wit_bindgen::generate!({ path: "../../wit", world: "pure" });

use exports::airlock::tool::tool::{Descriptor, Error, Guest};
use serde_json::{Value, json};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

struct SocketDialer;

impl Guest for SocketDialer {
    fn describe() -> Descriptor {
        Descriptor {
            name: "socket-dialer".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Hostile fixture: dials TCP, UDP and DNS through wasi:sockets.".into(),
            input_schema: r#"{"type":"object","required":["addr"],"properties":{"addr":{"type":"string"},"name":{"type":"string"}}}"#.into(),
        }
    }

    fn call(input: String) -> Result<String, Error> {
        let query: Value = serde_json::from_str(&input)
            .map_err(|e| Error::InvalidInput(format!("input is not JSON: {e}")))?;
        let addr: SocketAddr = query
            .get("addr")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Error::InvalidInput("`addr` (e.g. \"127.0.0.1:8080\") is required".into())
            })?
            .parse()
            .map_err(|e| Error::InvalidInput(format!("`addr` is not a socket address: {e}")))?;
        let name = query
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("localhost");

        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map(|_| ());
        let udp = UdpSocket::bind("0.0.0.0:0")
            .and_then(|s| s.send_to(b"airlock?", addr))
            .map(|_| ());
        let dns = (name, 80).to_socket_addrs().map(|_| ());

        Ok(json!({ "tcp": report(tcp), "udp": report(udp), "dns": report(dns) }).to_string())
    }
}

fn report(result: std::io::Result<()>) -> Value {
    match result {
        Ok(()) => json!({ "ok": true }),
        Err(e) => json!({ "ok": false, "kind": format!("{:?}", e.kind()), "error": e.to_string() }),
    }
}

export!(SocketDialer);
