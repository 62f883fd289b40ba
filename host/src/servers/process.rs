//! A hosted server's process: its sandbox plan, started with its standard
//! streams piped; stdout read through a cap on message size (a server that
//! floods it is cut off, not buffered without end), stderr copied to the
//! log up to a cap.

use super::ServerConfig;
use airlock_sandbox::Plan;
use std::io::BufRead;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// The longest JSON-RPC message a server may send (one line on stdio).
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// How much of a server's stderr reaches the log over its process's life.
pub const STDERR_LOG_BYTES: usize = 64 << 10;

/// The sandbox plan for `config` running `program`: what every native
/// program gets (the program and the granted directories at their host
/// paths, a fixed `PATH` and locale), then the configured `env`, which
/// wins.
pub(super) fn plan(config: &ServerConfig, program: &Path) -> Plan {
    let mut plan = crate::native::base_plan(
        program,
        &config.args,
        config.limits.clone(),
        &config.fs_read,
        &config.fs_write,
    );
    for (key, value) in &config.env {
        plan.env.retain(|(k, _)| k != key);
        plan = plan.env(key.clone(), value.clone());
    }
    plan
}

/// Copies `stderr` to the log, line by line, until `STDERR_LOG_BYTES`;
/// then counts what it drops and says so once the stream ends.
pub(super) fn log_stderr(server: String, stderr: std::process::ChildStderr) {
    std::thread::spawn(move || {
        let (mut logged, mut dropped) = (0usize, 0u64);
        let mut reader = std::io::BufReader::new(stderr);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(n) if logged + n <= STDERR_LOG_BYTES => {
                    logged += n;
                    let text = String::from_utf8_lossy(&line);
                    tracing::info!(target: "airlock::servers", server = %server, "stderr: {}", text.trim_end());
                }
                Ok(n) => dropped += n as u64,
            }
        }
        if dropped > 0 {
            tracing::warn!(target: "airlock::servers", server = %server, dropped, "stderr past the log's cap was dropped");
        }
    });
}

/// A reader that fails once a line runs past `cap` bytes: the server is
/// then treated as broken (its connection ends) instead of filling memory.
pub(super) struct LineCap<R> {
    inner: R,
    cap: usize,
    run: usize,
}

impl<R> LineCap<R> {
    pub(super) fn new(inner: R, cap: usize) -> Self {
        Self { inner, cap, run: 0 }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for LineCap<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                for &byte in &buf.filled()[before..] {
                    this.run = if byte == b'\n' { 0 } else { this.run + 1 };
                    if this.run > this.cap {
                        // An error hands back nothing of this read.
                        buf.set_filled(before);
                        return Poll::Ready(Err(std::io::Error::other(format!(
                            "the server sent a message longer than {} bytes",
                            this.cap
                        ))));
                    }
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_line_past_the_cap_ends_the_stream() {
        let mut ok = LineCap::new(&b"short\nlines\n"[..], 8);
        let mut text = String::new();
        ok.read_to_string(&mut text).await.expect("under the cap");
        assert_eq!(text, "short\nlines\n");
        let flood = [b'x'; 100];
        let mut capped = LineCap::new(&flood[..], 64);
        let mut sink = Vec::new();
        let error = capped.read_to_end(&mut sink).await.expect_err("capped");
        assert!(
            error.to_string().contains("longer than 64 bytes"),
            "{error}"
        );
    }

    #[test]
    fn the_plan_has_only_the_configured_environment() {
        let config = crate::config::Config::from_toml(
            "[[servers]]\nname = \"s\"\ncommand = \"/usr/bin/python3\"\nenv = { LANG = \"C\", TOKEN = \"x\" }\nfs_write = [\"/w\"]\n",
            "airlock.toml",
            Path::new("/"),
        )
        .expect("valid");
        let plan = plan(&config.servers()[0], Path::new("/usr/bin/python3"));
        let mut env = plan.env.clone();
        env.sort();
        assert_eq!(
            env,
            [
                ("LANG".to_string(), "C".to_string()),
                (
                    "PATH".to_string(),
                    "/usr/local/bin:/usr/bin:/bin".to_string()
                ),
                ("TOKEN".to_string(), "x".to_string()),
            ]
        );
        assert_eq!(plan.cwd.as_deref(), Some(Path::new("/w")));
    }
}
