//! A configured `airlock serve` process for one test, the rmcp client that
//! talks to it, and the operator commands run beside it.

use super::PATIENCE;
use super::users::{self, User};
use airlock_tests::guest_path;
use airlock_tests::net::{Behaviour, TestServer};
use rmcp::model::{
    ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitResult, ElicitationAction,
    ProgressNotificationParam, ProtocolVersion,
};
use rmcp::service::{
    ClientLifecycleMode, ClientServiceExt, NotificationContext, RequestContext, RunningService,
};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// A loopback HTTP server that answers with what it received.
pub async fn upstream() -> TestServer {
    TestServer::start(Ipv4Addr::new(127, 0, 0, 1), 0, Behaviour::Echo)
        .await
        .expect("upstream server")
}

pub fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts `out` exited with `code` and says `fragment`.
pub fn assert_refused(out: &Output, code: i32, fragment: &str) {
    assert_eq!(out.status.code(), Some(code), "{}", printed(out));
    assert!(printed(out).contains(fragment), "{}", printed(out));
}

pub use super::users::as_server_user;

/// The name of the user the operator commands run as (the server's own,
/// see [`super::users`]), as the operator socket sees it.
pub fn user_name() -> String {
    users::operator().name
}

/// A temporary directory with `airlock.toml` and a state directory.
pub struct Fixture {
    dir: tempfile::TempDir,
    serve: String,
    upstream_port: u16,
    /// Written before every table (`store`, `[postgres]`).
    top: String,
}

impl Fixture {
    /// Tools `echo`, `json-transform`, `spin` and `fetch` (http-get, granted
    /// `svc.test` on a port nothing listens on), with `serve` added to the
    /// `[serve]` table.
    pub fn new(serve: &str) -> Self {
        Self::with_upstream(serve, 9)
    }

    /// As [`Fixture::new`], `fetch` granted `svc.test:PORT`.
    pub fn with_upstream(serve: &str, port: u16) -> Self {
        let dir = server_dir();
        let fixture = Self {
            dir,
            serve: serve.to_string(),
            upstream_port: port,
            top: String::new(),
        };
        fixture.write_config("");
        fixture
    }

    /// As [`Fixture::with_upstream`], as replica `replica` of the shared
    /// database `db`.
    pub fn replica(
        serve: &str,
        port: u16,
        db: &airlock_tests::postgres::TestDatabase,
        replica: &str,
    ) -> Self {
        let mut fixture = Self::with_upstream(serve, port);
        // The cluster's password file is private to the user that started
        // it: the server's user gets a copy of its own.
        let password = fixture.dir.path().join("postgres-password");
        std::fs::copy(&db.password_file, &password).expect("copy the cluster's password");
        users::give_to_server_user(&password);
        fixture.top = format!(
            "store = {:?}\n[postgres]\npassword_file = {:?}\nreplica = {replica:?}\n\n",
            db.url,
            password.display().to_string()
        );
        fixture.write_config("");
        fixture
    }

    /// Puts `text` (top-level keys and tables such as `[telemetry]`)
    /// before the rest of `airlock.toml`.
    pub fn prepend(&mut self, text: &str) {
        self.top = format!("{text}\n");
        self.write_config("");
    }

    /// The operator socket in a directory every user can reach (peer
    /// credentials decide who is served); the state directory too, so a
    /// server running as another user can be given it.
    pub fn with_public_socket(serve: &str) -> Self {
        let dir = server_dir();
        let public = dir.path().join("run");
        std::fs::create_dir(&public).expect("run dir");
        users::give_to_server_user(&public);
        for path in [dir.path(), &public] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let socket = public.join("operator.sock");
        let fixture = Self {
            dir,
            // Before `serve`, which may open `[[serve.operators]]` tables.
            serve: format!(
                "operator_socket = {:?}\n{serve}",
                socket.display().to_string()
            ),
            upstream_port: 9,
            top: String::new(),
        };
        fixture.write_config("");
        fixture
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("airlock.toml")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The server's temporary directory (`TMPDIR`), its user's own.
    pub fn tmp(&self) -> PathBuf {
        self.dir.path().join("tmp")
    }

    /// Writes `airlock.toml`: the `[serve]` table, the four tools, `more`.
    pub fn write_config(&self, more: &str) {
        let tool = |name: &str, guest: &str| {
            format!(
                "[[tools]]\nname = \"{name}\"\ncomponent = {:?}\n",
                guest_path(guest)
            )
        };
        let text = format!(
            "{}[serve]\n{}\n{}{}{}{}[[tools.network.allow]]\nhost = \"svc.test\"\nschemes = [\"http\"]\nports = [{}]\nprivate = true\n\n{more}",
            self.top,
            self.serve,
            tool("echo", "echo"),
            tool("json-transform", "json-transform"),
            tool("spin", "spin-forever"),
            tool("fetch", "http-get"),
            self.upstream_port,
        );
        std::fs::write(self.config(), text).expect("write airlock.toml");
    }

    /// Grants `fetch` `svc.test:PORT` instead.
    pub fn set_upstream(&mut self, port: u16) {
        self.upstream_port = port;
        self.write_config("");
    }

    /// Adds a tool running guest `guest` under `name`.
    pub fn append_tool(&self, name: &str, guest: &str) {
        self.write_config(&format!(
            "[[tools]]\nname = \"{name}\"\ncomponent = {:?}\n",
            guest_path(guest)
        ));
    }

    /// The operator socket this fixture's server listens on.
    pub fn socket(&self) -> PathBuf {
        let public = self.dir.path().join("run/operator.sock");
        if self.serve.contains("operator_socket") {
            public
        } else {
            self.state().join("operator.sock")
        }
    }
}

/// A temporary directory for one server, with a `tmp` directory inside,
/// both the server's user's (see [`users::server_user`]).
fn server_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).expect("tmp dir");
    for path in [dir.path(), &tmp] {
        users::give_to_server_user(path);
    }
    dir
}

/// A policies directory: the shipped policies plus `name` holding `extra`.
pub fn policies_with(name: &str, extra: &str) -> tempfile::TempDir {
    let policies = tempfile::tempdir().expect("policies");
    users::give_to_server_user(policies.path());
    std::fs::write(
        policies.path().join("default.cedar"),
        airlock::policy::DEFAULT_POLICIES,
    )
    .expect("defaults");
    std::fs::write(policies.path().join(name), extra).expect("policy");
    policies
}

/// `airlock --state-dir STATE --socket SOCKET ARGS` for `fixture`, run as
/// the user who owns the state directory (the server's), or as the
/// server's user while there is none (see [`super::users`]).
pub fn airlock_for(fixture: &Fixture, args: &[&str]) -> Command {
    let mut command = operator_command(fixture);
    command
        .arg("--state-dir")
        .arg(fixture.state())
        .arg("--socket")
        .arg(fixture.socket())
        .args(args);
    command
}

/// The `airlock` binary, as the server's user with `fixture`'s `TMPDIR`,
/// no log filter and no state directory from the environment.
pub fn airlock_command(fixture: &Fixture) -> Command {
    let mut command = plain_command(fixture);
    as_server_user(&mut command);
    command
}

/// The `airlock` binary as the test's user, with `fixture`'s `TMPDIR`, no
/// log filter and no state directory from the environment.
fn plain_command(fixture: &Fixture) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_airlock"));
    command
        .env_remove("RUST_LOG")
        .env_remove("AIRLOCK_STATE_DIR")
        .env("TMPDIR", fixture.tmp());
    command
}

/// [`airlock_command`], as the user who owns `fixture`'s state directory
/// when it exists: a server started by a client over stdio, or embedded in
/// the test, runs as the test's user.
fn operator_command(fixture: &Fixture) -> Command {
    if !fixture.state().exists() {
        return airlock_command(fixture);
    }
    let mut command = plain_command(fixture);
    if let Some(owner) = users::owner_of(&fixture.state()) {
        users::as_user(&mut command, &owner);
    }
    command
}

/// How to start a server.
#[derive(Default)]
pub struct Start<'a> {
    /// `--policies DIR`.
    pub policies: Option<&'a std::path::Path>,
    /// Run it as this user (and group of the same number) instead of the
    /// server's user ([`users::server_user`]).
    pub as_user: Option<u32>,
    /// Run the operator commands ([`Server::airlock`]) as this user (and
    /// group of the same number) instead of the server's.
    pub operator_as: Option<u32>,
    /// Serve the console too (`--console 127.0.0.1:0`).
    pub console: bool,
    /// Unlock the vault with this passphrase (`AIRLOCK_VAULT_PASSPHRASE`).
    pub vault_passphrase: Option<&'a str>,
}

/// Where a server's console is and the key pin a browser trusts it by.
pub struct ConsoleAt {
    /// `https://127.0.0.1:PORT`, without the trailing slash.
    pub url: String,
    /// Base64 SHA-256 of the certificate's key.
    pub pin: String,
}

/// A running `airlock serve --listen`.
pub struct Server<'f> {
    fixture: &'f Fixture,
    child: Reaped,
    /// Who runs the operator commands, when not the server's user.
    operator: Option<User>,
    address: SocketAddr,
    log: Arc<Mutex<String>>,
    /// With [`Start::console`].
    pub console: Option<ConsoleAt>,
}

impl<'f> Server<'f> {
    /// Starts serving `fixture` over HTTP on a free loopback port, names
    /// resolved only by `--resolve`.
    pub async fn http(fixture: &'f Fixture) -> Server<'f> {
        Self::start(fixture, Start::default()).await
    }

    /// As [`Server::http`], with the policies in `dir`.
    pub async fn with_policies(fixture: &'f Fixture, dir: &std::path::Path) -> Server<'f> {
        Self::start(
            fixture,
            Start {
                policies: Some(dir),
                ..Start::default()
            },
        )
        .await
    }

    /// As [`Server::http`], with `how`.
    /// The server runs as the server's user, or `how.as_user`: the
    /// test fails unless /proc shows it does. It dies with the thread that
    /// starts it (see [`dies_with_the_test`]): start it from the test's
    /// own thread or runtime, never from `spawn_blocking`.
    pub async fn start(fixture: &'f Fixture, how: Start<'_>) -> Server<'f> {
        let mut command = airlock_command(fixture);
        command.arg("--state-dir").arg(fixture.state());
        if let Some(policies) = how.policies {
            command.arg("--policies").arg(policies);
        }
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(fixture.config())
            .args(["--resolve", "svc.test=127.0.0.1", "--no-dns"])
            .args(
                how.console
                    .then_some(["--console", "127.0.0.1:0"])
                    .into_iter()
                    .flatten(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(passphrase) = how.vault_passphrase {
            command.env("AIRLOCK_VAULT_PASSPHRASE", passphrase);
        }
        let runs_as = match how.as_user {
            Some(uid) => {
                let user = users::with_uid(uid);
                users::as_user(&mut command, &user);
                user
            }
            None => users::operator(),
        };
        dies_with_the_test(&mut command);
        let mut child = Reaped(command.spawn().expect("start airlock serve"));
        let pid = child.0.id();
        assert_eq!(
            users::uid_of(pid),
            runs_as.uid,
            "the server runs as {}",
            runs_as.name
        );
        users::announce_server_uid(pid);
        let stderr = child.0.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (found, address) = std::sync::mpsc::channel();
        std::thread::spawn({
            let log = Arc::clone(&log);
            move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(rest) = line.split("serving MCP at http://").nth(1) {
                        let _ = found.send(rest.trim_end_matches("/mcp").to_string());
                    }
                    log.lock().expect("log").push_str(&format!("{line}\n"));
                }
            }
        });
        let address = tokio::task::spawn_blocking(move || address.recv_timeout(PATIENCE))
            .await
            .expect("task")
            .unwrap_or_else(|_| panic!("the server did not start: {}", log.lock().expect("log")));
        // The console is announced before MCP.
        let console = how.console.then(|| {
            let log = log.lock().expect("log").clone();
            let after = |marker: &str| {
                log.lines()
                    .find_map(|line| line.split(marker).nth(1))
                    .and_then(|rest| rest.split_whitespace().next())
                    .unwrap_or_else(|| panic!("no `{marker}` in the log: {log}"))
                    .to_string()
            };
            ConsoleAt {
                url: after("console at ").trim_end_matches('/').to_string(),
                pin: after("--ignore-certificate-errors-spki-list): "),
            }
        });
        Server {
            fixture,
            child,
            operator: how.operator_as.or(how.as_user).map(users::with_uid),
            address: address.parse().expect("an address"),
            log,
            console,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// Its base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    /// An operator command against this server, run as the server's user
    /// or [`Start::operator_as`].
    pub fn airlock(&self, args: &[&str]) -> Output {
        let mut command = airlock_for(self.fixture, args);
        if let Some(operator) = &self.operator {
            users::as_user(&mut command, operator);
        }
        command.output().expect("run airlock")
    }

    /// Registers agent `name` (through the operator socket) and returns
    /// its token.
    pub fn add_agent(&self, name: &str) -> String {
        let out = self.airlock(&["agents", "add", name]);
        assert!(out.status.success(), "{}", printed(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// An MCP client authenticated as a new agent `name`.
    pub async fn client(&self, name: &str) -> RunningService<RoleClient, Recorder> {
        self.client_as(name, Recorder::new()).await
    }

    /// An MCP client authenticated as a new agent `name`, with `recorder`'s
    /// protocol version and answers.
    pub async fn client_as(
        &self,
        name: &str,
        recorder: Recorder,
    ) -> RunningService<RoleClient, Recorder> {
        let token = self.add_agent(name);
        self.connect(&token, recorder).await
    }

    /// An MCP client presenting `token`, with `recorder`'s protocol
    /// version and answers.
    pub async fn connect(
        &self,
        token: &str,
        recorder: Recorder,
    ) -> RunningService<RoleClient, Recorder> {
        let config =
            StreamableHttpClientTransportConfig::with_uri(format!("http://{}/mcp", self.address))
                .auth_header(token.to_string());
        let transport = StreamableHttpClientTransport::from_config(config);
        // rmcp's client opens with `initialize` (2025-11-25) unless told to
        // discover the session-less 2026-07-28.
        let lifecycle = if recorder.protocol >= ProtocolVersion::V_2026_07_28 {
            ClientLifecycleMode::Discover {
                preferred_versions: vec![recorder.protocol.clone()],
            }
        } else {
            ClientLifecycleMode::Initialize
        };
        recorder
            .serve_with_lifecycle(transport, lifecycle)
            .await
            .expect("the MCP client connects")
    }

    /// POSTs `body` to /mcp by hand; returns the status code.
    pub async fn post(&self, body: &Value, token: Option<&str>, origin: Option<&str>) -> u16 {
        let body = body.to_string();
        let mut head = format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.address.port(),
            body.len()
        );
        if let Some(token) = token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if let Some(origin) = origin {
            head.push_str(&format!("Origin: {origin}\r\n"));
        }
        let mut stream = tokio::net::TcpStream::connect(self.address)
            .await
            .expect("connect");
        stream
            .write_all(format!("{head}\r\n{body}").as_bytes())
            .await
            .expect("send");
        let mut status = [0u8; 12];
        stream.read_exact(&mut status).await.expect("status line");
        String::from_utf8_lossy(&status[9..12])
            .parse()
            .expect("a status code")
    }

    /// The id of the one pending approval.
    pub fn pending_approval_id(&self) -> String {
        let out = self.airlock(&["approvals", "list", "--json"]);
        assert!(out.status.success(), "{}", printed(&out));
        let list: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        list[0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no pending approval: {list}"))
            .to_string()
    }

    /// Waits until exactly `n` calls hold a slot.
    pub async fn wait_until_running(&self, n: u64) {
        let started = std::time::Instant::now();
        loop {
            let out = self.airlock(&["status", "--json"]);
            assert!(out.status.success(), "{}", printed(&out));
            let status: Value = serde_json::from_slice(&out.stdout).expect("JSON");
            if status["running"] == n {
                return;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "still {} running, not {n}",
                status["running"]
            );
            tokio::task::yield_now().await;
        }
    }

    /// Sends the server a signal.
    pub fn signal(&self, signal: i32) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.0.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Kills the server outright (`kill -9`) and reaps it.
    pub fn kill(&mut self) {
        self.signal(9);
        let _ = self.child.0.wait();
    }

    /// Waits (at most [`PATIENCE`]) for the server to end by itself.
    pub fn exit_status(&mut self) -> std::process::ExitStatus {
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.0.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "the server did not stop by itself: {}",
                self.log()
            );
            // A poll interval, not a timing assumption.
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// SIGTERM; the server must exit 0. Returns the whole journal.
    pub fn stop_and_journal(mut self) -> Vec<Value> {
        self.signal(15);
        let status = self.child.0.wait().expect("wait");
        assert!(status.success(), "exit {status}: {}", self.log());
        journal(self.fixture)
    }
}

/// A server process that a failed test leaves nothing of: killed (a no-op
/// once it was reaped) and reaped when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Makes the kernel kill `command`'s process (SIGKILL) when the thread that
/// spawns it ends, so a test binary that aborts, or is killed, leaves no
/// server behind. (`Drop` covers a test that fails and unwinds.)
#[allow(unsafe_code)]
pub fn dies_with_the_test(command: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    let parent = rustix::process::getpid();
    // SAFETY: the closure runs in the forked child before exec, after the
    // uid and gid changes (which would clear the setting). It makes only
    // async-signal-safe system calls (prctl, getppid) through rustix and
    // allocates nothing, not even for its error.
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            // The test may have ended between fork and prctl: then no
            // signal would ever come.
            if rustix::process::getppid() != Some(parent) {
                return Err(rustix::io::Errno::SRCH.into());
            }
            Ok(())
        })
    }
}

/// The journal of `fixture`'s state directory, oldest first.
pub fn journal(fixture: &Fixture) -> Vec<Value> {
    let out = operator_command(fixture)
        .arg("--state-dir")
        .arg(fixture.state())
        .args(["journal", "tail", "-n", "100000", "--json"])
        .output()
        .expect("journal tail");
    assert!(out.status.success(), "{}", printed(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one entry per line"))
        .collect()
}

/// An MCP client over stdio: it starts `airlock serve --stdio` itself.
pub async fn stdio_client(fixture: &Fixture) -> RunningService<RoleClient, Recorder> {
    let mut command = airlock_command(fixture);
    dies_with_the_test(&mut command);
    let mut command = tokio::process::Command::from(command);
    command
        .arg("--state-dir")
        .arg(fixture.state())
        .args(["serve", "--stdio", "--config"])
        .arg(fixture.config())
        // No test name ever reaches the system resolver.
        .args(["--resolve", "svc.test=127.0.0.1", "--no-dns"]);
    let transport = TokioChildProcess::new(command).expect("spawn airlock serve --stdio");
    Recorder::new()
        .serve(transport)
        .await
        .expect("the MCP client connects")
}

/// A client handler that keeps what the server told it and, when it was
/// made to, shows the human's answer to a form elicitation.
pub struct Recorder {
    progress: UnboundedSender<String>,
    progress_seen: tokio::sync::Mutex<UnboundedReceiver<String>>,
    list_changed: UnboundedSender<()>,
    list_changes: tokio::sync::Mutex<UnboundedReceiver<()>>,
    protocol: ProtocolVersion,
    answer: Option<(ElicitationAction, Option<Value>)>,
    questions: Mutex<Vec<String>>,
    /// The answers each question offered (its schema, as JSON text).
    offered: Mutex<Vec<String>>,
    /// Told when a question arrives.
    asked: tokio::sync::Notify,
    /// When set, each answer waits for the test to release it.
    release: Option<Arc<tokio::sync::Notify>>,
}

impl Recorder {
    pub fn new() -> Self {
        let (progress, progress_seen) = unbounded_channel();
        let (list_changed, list_changes) = unbounded_channel();
        Self {
            progress,
            progress_seen: tokio::sync::Mutex::new(progress_seen),
            list_changed,
            list_changes: tokio::sync::Mutex::new(list_changes),
            // What `initialize` negotiates with airlock.
            protocol: ProtocolVersion::LATEST_WITH_INITIALIZE,
            answer: None,
            questions: Mutex::new(Vec::new()),
            offered: Mutex::new(Vec::new()),
            asked: tokio::sync::Notify::new(),
            release: None,
        }
    }

    /// As this recorder, but each answer waits until `release` is
    /// notified (the human has not answered yet).
    pub fn holding(self, release: Arc<tokio::sync::Notify>) -> Self {
        Self {
            release: Some(release),
            ..self
        }
    }

    /// The answers each question offered (its schema, as JSON text).
    pub fn offered(&self) -> Vec<String> {
        self.offered.lock().expect("offered").clone()
    }

    /// Waits until a question has arrived.
    pub async fn next_question(&self) {
        tokio::time::timeout(PATIENCE, self.asked.notified())
            .await
            .expect("a question in time");
    }

    /// A client on `protocol` that declares form elicitation and answers
    /// every question with `action` (and `content` when it accepts).
    pub fn answering(
        protocol: ProtocolVersion,
        action: ElicitationAction,
        content: Option<Value>,
    ) -> Self {
        Self {
            protocol,
            answer: Some((action, content)),
            ..Self::new()
        }
    }

    /// The messages of the questions the server asked, in order.
    pub fn questions(&self) -> Vec<String> {
        self.questions.lock().expect("questions").clone()
    }

    /// The next progress message.
    pub async fn next_progress(&self) -> String {
        tokio::time::timeout(PATIENCE, self.progress_seen.lock().await.recv())
            .await
            .expect("a progress notification in time")
            .expect("the client is open")
    }

    /// The next progress message that contains `fragment`.
    pub async fn next_progress_with(&self, fragment: &str) -> String {
        loop {
            let message = self.next_progress().await;
            if message.contains(fragment) {
                return message;
            }
        }
    }

    /// Waits for `notifications/tools/list_changed`.
    pub async fn next_list_changed(&self) {
        tokio::time::timeout(PATIENCE, self.list_changes.lock().await.recv())
            .await
            .expect("tools/list_changed in time")
            .expect("the client is open");
    }
}

impl ClientHandler for Recorder {
    fn get_info(&self) -> ClientConfig {
        let mut config = ClientConfig::default();
        config.protocol_version = self.protocol.clone();
        if self.answer.is_some() {
            config.capabilities = ClientCapabilities::builder().enable_elicitation().build();
        }
        config
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, rmcp::ErrorData> {
        if let ElicitRequestParams::FormElicitationParams {
            message,
            requested_schema,
            ..
        } = &request
        {
            self.questions
                .lock()
                .expect("questions")
                .push(message.clone());
            self.offered
                .lock()
                .expect("offered")
                .push(serde_json::to_string(requested_schema).unwrap_or_default());
        }
        self.asked.notify_one();
        if let Some(release) = &self.release {
            release.notified().await;
        }
        let (action, content) = self
            .answer
            .clone()
            .unwrap_or((ElicitationAction::Decline, None));
        let mut result = ElicitResult::new(action);
        result.content = content;
        Ok(result)
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.progress.send(params.message.unwrap_or_default());
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.list_changed.send(());
    }
}
