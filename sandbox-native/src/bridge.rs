//! The bridge that runs first inside a `strict` sandbox: it listens on the
//! sandbox's own loopback (the network namespace has nothing else) and
//! carries each connection to the host's egress proxy over the inherited
//! [`channel`](crate::channel) (no socket path exists for anyone else to
//! reach); then it runs the tool with `HTTP_PROXY` and `HTTPS_PROXY`
//! pointing at itself, and exits with the tool's status. The tool does not
//! inherit the channel.
//!
//! Command line: `--listen ADDR --channel-fd N -- PROGRAM ARGS...`.

use std::ffi::OsString;
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
#[cfg(unix)]
use std::os::fd::{AsFd, OwnedFd};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::process::Command;
#[cfg(unix)]
use std::sync::Arc;

pub use crate::linux_bwrap::{BRIDGE_COMMAND, BRIDGE_LISTEN};

/// The parsed command line.
struct Args {
    listen: String,
    channel_fd: i32,
    program: OsString,
    args: Vec<OsString>,
}

fn parse(mut argv: impl Iterator<Item = OsString>) -> Option<Args> {
    let mut listen = None;
    let mut channel_fd = None;
    loop {
        let flag = argv.next()?;
        match flag.to_str()? {
            // The `airlock` binary serves as the bridge with this first word.
            BRIDGE_COMMAND => {}
            "--listen" => listen = Some(argv.next()?.into_string().ok()?),
            "--channel-fd" => channel_fd = argv.next()?.to_str()?.parse().ok(),
            "--" => break,
            _ => return None,
        }
    }
    Some(Args {
        listen: listen?,
        channel_fd: channel_fd?,
        program: argv.next()?,
        args: argv.collect(),
    })
}

/// Copies one direction until it ends, then half-closes the other side.
#[cfg(unix)]
fn pump(mut from: impl io::Read, mut to: UnixStreamOrTcp) {
    let _ = io::copy(&mut from, &mut to);
    to.shutdown();
}

/// Either end of a bridged connection, for half-closing.
#[cfg(unix)]
enum UnixStreamOrTcp {
    Unix(UnixStream),
    Tcp(TcpStream),
}

#[cfg(unix)]
impl io::Write for UnixStreamOrTcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Unix(s) => s.write(buf),
            Self::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Unix(s) => s.flush(),
            Self::Tcp(s) => s.flush(),
        }
    }
}

#[cfg(unix)]
impl UnixStreamOrTcp {
    fn shutdown(&self) {
        let _ = match self {
            Self::Unix(s) => s.shutdown(Shutdown::Write),
            Self::Tcp(s) => s.shutdown(Shutdown::Write),
        };
    }
}

#[cfg(unix)]
fn carry(client: TcpStream, channel: &OwnedFd) -> io::Result<()> {
    let proxy = crate::channel::connect(channel.as_fd())?;
    let (client_read, proxy_read) = (client.try_clone()?, proxy.try_clone()?);
    let up = std::thread::spawn(move || pump(client_read, UnixStreamOrTcp::Unix(proxy)));
    pump(proxy_read, UnixStreamOrTcp::Tcp(client));
    let _ = up.join();
    Ok(())
}

/// Carries connections to the proxy until dropped.
#[cfg(unix)]
#[derive(Debug)]
pub struct Serving {
    addr: Option<std::net::SocketAddr>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[cfg(unix)]
impl Serving {
    /// Where it listens.
    pub fn addr(&self) -> Option<std::net::SocketAddr> {
        self.addr
    }
}

#[cfg(unix)]
impl Drop for Serving {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag and ends.
        if let Some(addr) = self.addr {
            let _ = TcpStream::connect(addr);
        }
    }
}

/// Carries every connection accepted on `listener` to the egress proxy
/// over `channel` (the sandbox's end), each on its own thread, until the
/// returned guard is dropped.
#[cfg(unix)]
pub fn serve(listener: TcpListener, channel: Arc<OwnedFd>) -> Serving {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let serving = Serving {
        addr: listener.local_addr().ok(),
        stop: std::sync::Arc::clone(&stop),
    };
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            let channel = Arc::clone(&channel);
            std::thread::spawn(move || {
                let _ = carry(client, &channel);
            });
        }
    });
    serving
}

/// The variables that send a tool's HTTP through the proxy at `url`: the
/// usual four, and Node's switch (22.21 and 24.5 on) that makes its
/// built-in `fetch` honour them.
pub fn proxy_environment(url: &str) -> [(&'static str, String); 5] {
    [
        ("HTTP_PROXY", url.to_string()),
        ("HTTPS_PROXY", url.to_string()),
        ("http_proxy", url.to_string()),
        ("https_proxy", url.to_string()),
        ("NODE_USE_ENV_PROXY", "1".to_string()),
    ]
}

/// Runs the bridge with `argv` (without the program name); returns the
/// exit code to end the process with.
#[cfg(unix)]
pub fn main_with(argv: impl Iterator<Item = OsString>) -> i32 {
    let Some(args) = parse(argv) else {
        eprintln!("airlock-bridge: usage: --listen ADDR --channel-fd N -- PROGRAM ARGS...");
        return 125;
    };
    let channel = match crate::channel::adopt(args.channel_fd)
        .and_then(|fd| crate::channel::keep_from_children(fd.as_fd()).map(|()| fd))
    {
        Ok(fd) => Arc::new(fd),
        Err(e) => {
            eprintln!("airlock-bridge: {e}");
            return 125;
        }
    };
    let listener = match TcpListener::bind(&args.listen) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("airlock-bridge: cannot listen on {}: {e}", args.listen);
            return 125;
        }
    };
    // Serves until this process ends with the tool.
    let _serving = serve(listener, channel);
    let proxy = format!("http://{}", args.listen);
    let status = Command::new(&args.program)
        .args(&args.args)
        .envs(proxy_environment(&proxy))
        .status();
    match status {
        Ok(status) => status.code().unwrap_or(128 + 9),
        Err(e) => {
            eprintln!("airlock-bridge: cannot start {:?}: {e}", args.program);
            127
        }
    }
}
