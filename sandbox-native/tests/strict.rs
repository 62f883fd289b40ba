//! `network = strict`: the tool's only way out is the host's proxy socket,
//! through the bridge; direct connections go nowhere. The proxy here is a
//! stand-in that answers every request; the host's real one (which runs
//! the egress decision) is tested in the host crate.
#![cfg(target_os = "linux")]

use airlock_sandbox::{Exit, NetworkMode, Plan, detect};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::sync::{Arc, Mutex};

/// A stand-in proxy on a Unix socket the sandbox user can reach; returns
/// the request lines it saw.
fn stand_in_proxy(dir: &std::path::Path) -> (std::path::PathBuf, Arc<Mutex<Vec<String>>>) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).expect("chmod dir");
    let path = dir.join("proxy.sock");
    let listener = UnixListener::bind(&path).expect("bind");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            if reader.read_line(&mut line).is_ok() {
                log.lock().expect("lock").push(line.trim_end().to_string());
            }
            // Drain the head, then answer.
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let mut stream = stream;
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 14\r\nconnection: close\r\n\r\nvia-the-proxy\n",
            );
        }
    });
    (path, seen)
}

#[test]
fn the_only_way_out_is_the_proxy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (socket, seen) = stand_in_proxy(dir.path());
    let direct = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    direct.set_nonblocking(true).expect("nonblocking");
    let port = direct.local_addr().expect("addr").port();

    let mut plan = Plan::new("/bin/sh").args([
        "-c",
        &format!(
            "curl -s -m 5 http://service.test/hello; echo; \
             curl -s -m 5 --noproxy '*' http://127.0.0.1:{port}/ && echo direct-worked; \
             echo proxy=$HTTP_PROXY"
        ),
    ]);
    plan.network = NetworkMode::Strict {
        proxy_socket: socket,
        bridge: env!("CARGO_BIN_EXE_airlock-bridge").into(),
    };
    let backend = detect().expect("bubblewrap");
    let out = backend.run(&plan, b"").expect("runs");
    let text = String::from_utf8_lossy(&out.stdout.bytes);
    assert_eq!(out.exit, Exit::Code(0), "{out:?}");
    assert!(text.contains("via-the-proxy"), "{text}");
    assert!(!text.contains("direct-worked"), "{text}");
    assert!(text.contains("proxy=http://127.0.0.1:3128"), "{text}");
    assert_eq!(
        seen.lock().expect("lock").as_slice(),
        ["GET http://service.test/hello HTTP/1.1"]
    );
    assert!(
        direct.accept().is_err(),
        "nothing reached the host directly"
    );
}
