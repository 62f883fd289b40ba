//! `network = strict`: the tool's only way out is the host's proxy, through
//! the bridge and its inherited channel; direct connections go nowhere. The proxy here is a
//! stand-in that answers every request; the host's real one (which runs
//! the egress decision) is tested in the host crate.
#![cfg(target_os = "linux")]

use airlock_sandbox::channel::{self, ProxyChannel};
use airlock_sandbox::{Exit, NetworkMode, Plan, detect};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

/// A stand-in proxy behind a channel, as the host runs one; returns the
/// channel and the request lines it saw.
fn stand_in_proxy() -> (ProxyChannel, Arc<Mutex<Vec<String>>>) {
    let channel = ProxyChannel::new().expect("channel");
    let host = channel.host.try_clone().expect("clone");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        let mut requests = [0u8; 16];
        while let Ok(count @ 1..) = channel::take_requests(host.as_fd(), &mut requests) {
            for _ in 0..count {
                let (stream, theirs) = UnixStream::pair().expect("pair");
                channel::hand_over(host.as_fd(), theirs.as_fd()).expect("hand over");
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
        }
    });
    (channel, seen)
}

#[test]
fn the_only_way_out_is_the_proxy() {
    let (channel, seen) = stand_in_proxy();
    let fd = channel.sandbox_fd();
    let direct = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    direct.set_nonblocking(true).expect("nonblocking");
    let port = direct.local_addr().expect("addr").port();

    let mut plan = Plan::new("/bin/sh").args([
        "-c",
        &format!(
            "curl -s -m 5 http://service.test/hello; echo; \
             curl -s -m 5 --noproxy '*' http://127.0.0.1:{port}/ && echo direct-worked; \
             echo proxy=$HTTP_PROXY; \
             if test -e /proc/$$/fd/{fd}; then echo channel-inherited-by-the-tool; fi"
        ),
    ]);
    plan.network = NetworkMode::Strict {
        channel_fd: fd,
        bridge: env!("CARGO_BIN_EXE_airlock-bridge").into(),
        trust: None,
    };
    let backend = detect().expect("bubblewrap");
    let out = backend.run(&plan, b"").expect("runs");
    let text = String::from_utf8_lossy(&out.stdout.bytes);
    assert_eq!(out.exit, Exit::Code(0), "{out:?}");
    assert!(text.contains("via-the-proxy"), "{text}");
    assert!(!text.contains("direct-worked"), "{text}");
    assert!(text.contains("proxy=http://127.0.0.1:3128"), "{text}");
    assert!(
        !text.contains("channel-inherited"),
        "only the bridge holds the channel: {text}"
    );
    assert_eq!(
        seen.lock().expect("lock").as_slice(),
        ["GET http://service.test/hello HTTP/1.1"]
    );
    assert!(
        direct.accept().is_err(),
        "nothing reached the host directly"
    );
}
