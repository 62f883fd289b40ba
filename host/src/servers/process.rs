//! A hosted server's process: its sandbox plan, started with its standard
//! streams piped; stdout read through a cap on message size (a server that
//! floods it is cut off, not buffered without end), stderr copied to the
//! log up to a cap.

use super::ServerConfig;
use super::program::Program;
use crate::native::Granted;
use airlock_sandbox::Plan;
use std::collections::VecDeque;
use std::io::BufRead;
use std::pin::Pin;
use std::sync::{Condvar, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, ReadBuf};

/// The longest JSON-RPC message a server may send (one line on stdio).
pub(crate) const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// How much of a server's stderr reaches the log over its process's life.
pub(crate) const STDERR_LOG_BYTES: usize = 64 << 10;

/// The sandbox plan for `config` running `program` with its directories
/// `read` and `write` (resolved at load): what every native program gets
/// (the granted directories where the server expects them, what of its
/// command no grant shows, a fixed `PATH` and locale), then the configured
/// `env`, which wins.
pub(super) fn plan(
    config: &ServerConfig,
    program: &Program,
    read: &[Granted],
    write: &[Granted],
) -> Plan {
    let file: Vec<std::path::PathBuf> = program.file.iter().cloned().collect();
    let mut plan = crate::native::base_plan(
        &program.run,
        &crate::native::Visible {
            files: &file,
            links: &program.links,
            read,
            write,
        },
        &config.args,
        config.limits.clone(),
    );
    for (key, value) in &config.env {
        plan.env.retain(|(k, _)| k != key);
        plan = plan.env(key.clone(), value.clone());
    }
    plan
}

/// How many of a server's last stderr lines an error about its start
/// quotes, and how much of each: enough for a traceback's last frames and
/// its exception.
const TAIL_LINES: usize = 12;
const TAIL_LINE_BYTES: usize = 300;

/// The last lines a server wrote to stderr, kept for the error that says
/// why it did not start.
#[derive(Default)]
pub(super) struct StderrTail {
    state: Mutex<(VecDeque<String>, bool)>,
    ended: Condvar,
}

impl StderrTail {
    fn push(&self, line: &str) {
        let mut line = line.trim_end().to_string();
        if line.len() > TAIL_LINE_BYTES {
            let mut cut = TAIL_LINE_BYTES;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push('…');
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.0.len() == TAIL_LINES {
            state.0.pop_front();
        }
        state.0.push_back(line);
    }

    fn end(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).1 = true;
        self.ended.notify_all();
    }

    /// The lines kept, once the stream ended or `within` passed.
    pub(super) fn lines(&self, within: Duration) -> Vec<String> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (state, _) = self
            .ended
            .wait_timeout_while(state, within, |(_, ended)| !*ended)
            .unwrap_or_else(PoisonError::into_inner);
        state.0.iter().cloned().collect()
    }
}

/// Copies `stderr` to the log, line by line, until `STDERR_LOG_BYTES`;
/// then counts what it drops and says so once the stream ends. The last
/// lines stay in `tail`.
pub(super) fn log_stderr(
    server: String,
    stderr: std::process::ChildStderr,
    tail: std::sync::Arc<StderrTail>,
) {
    std::thread::spawn(move || {
        let (mut logged, mut dropped) = (0usize, 0u64);
        let mut reader = std::io::BufReader::new(stderr);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let text = String::from_utf8_lossy(&line);
                    tail.push(&text);
                    if logged + n <= STDERR_LOG_BYTES {
                        logged += n;
                        tracing::info!(target: "airlock::servers", server = %server, "stderr: {}", text.trim_end());
                    } else {
                        dropped += n as u64;
                    }
                }
            }
        }
        tail.end();
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
    tripped: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl<R> LineCap<R> {
    pub(super) fn new(inner: R, cap: usize) -> Self {
        Self {
            inner,
            cap,
            run: 0,
            tripped: std::sync::Arc::default(),
        }
    }

    /// Set once a line ran past the cap (the MCP client reports only that
    /// the connection closed).
    pub(super) fn tripped(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        std::sync::Arc::clone(&self.tripped)
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
                        this.tripped
                            .store(true, std::sync::atomic::Ordering::Relaxed);
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
    use std::path::Path;
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
        let program =
            super::super::program::resolve(Path::new("/usr/bin/python3"), &[]).expect("python3");
        let write = [Granted {
            host: "/w".into(),
            sandbox: "/w".into(),
            passes: Vec::new(),
        }];
        let plan = plan(&config.servers()[0], &program, &[], &write);
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
