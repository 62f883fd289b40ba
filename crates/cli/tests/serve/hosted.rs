//! Hosted MCP servers (`[[servers]]`): an ordinary FastMCP server
//! (fixtures/servers/fetch_and_read.py, the official Python SDK) run by
//! airlock in bubblewrap and spoken to as an MCP client.

use super::call_tool;
use airlock::servers::{Called, HostedServer, ServerError, State};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The system-Python venv `.ci/install` makes for servers in the sandbox.
pub fn server_python() -> PathBuf {
    let venv = super::python::python("server-1.30.0");
    venv.parent()
        .and_then(Path::parent)
        .expect("the venv")
        .to_path_buf()
}

pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/servers")
}

/// A `[[servers]]` entry for the fixture in `mode`, with `more` lines.
pub fn server_entry(name: &str, mode: &str, more: &str) -> String {
    server_entry_marked(name, mode, more, "")
}

/// As [`server_entry`], the process also given `marker` (which the fixture
/// ignores) so a test can find its own processes.
fn server_entry_marked(name: &str, mode: &str, more: &str, marker: &str) -> String {
    let venv = server_python();
    let dir = fixture_dir();
    format!(
        "[[servers]]\nname = {name:?}\ncommand = {:?}\nargs = [{:?}, {mode:?}, {marker:?}]\nfs_read = [{:?}, {:?}]\nenv = {{ PYTHONDONTWRITEBYTECODE = \"1\" }}\n{more}\n",
        venv.join("bin/python").display().to_string(),
        dir.join("fetch_and_read.py").display().to_string(),
        venv.display().to_string(),
        dir.display().to_string(),
    )
}

async fn load(text: &str) -> HostedServer {
    let config =
        airlock::Config::from_toml(text, "airlock.toml", Path::new("/")).expect("valid config");
    let host = airlock::Host::builder().build().expect("host");
    host.load_server(config.servers()[0].clone())
        .expect("loads")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fastmcp_server_runs_confined_with_an_empty_environment() {
    let server = load(&server_entry("py", "serve", "")).await;
    let tools = server.start().await.expect("starts");
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "crash",
            "environment",
            "fetch",
            "fetch_with",
            "grow",
            "read",
            "search",
            "slow"
        ]
    );
    assert_eq!(server.status().state, State::Running);

    let call = |name: &str, arguments: serde_json::Value| {
        let server = server.clone();
        let name = name.to_string();
        async move {
            let serde_json::Value::Object(arguments) = arguments else {
                panic!("an object");
            };
            match server
                .call(
                    &name,
                    arguments,
                    None,
                    &CancellationToken::new(),
                    Duration::from_secs(60),
                )
                .await
                .expect("answered")
            {
                Called::Answered(result) => serde_json::to_value(result).expect("JSON"),
                _ => panic!("not answered"),
            }
        }
    };
    // Its environment is what the entry gives, and the fixed PATH and
    // locale: nothing of the test's own.
    let env = call("environment", serde_json::json!({})).await;
    let text = env["content"][0]["text"].as_str().unwrap_or_default();
    let vars: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).unwrap_or_else(|_| panic!("an object: {env}"));
    let keys: Vec<&String> = vars.keys().collect();
    assert!(
        keys.iter().any(|k| *k == "PYTHONDONTWRITEBYTECODE"),
        "{env}"
    );
    for key in &keys {
        assert!(
            // PWD: the sandbox's working directory, set by bubblewrap.
            ["PATH", "LANG", "PYTHONDONTWRITEBYTECODE", "PWD"].contains(&key.as_str()),
            "unexpected variable {key}: {env}"
        );
    }
    // It reads what it was granted, and nothing else of the host.
    let script = fixture_dir().join("fetch_and_read.py");
    let own = call("read", serde_json::json!({ "path": script })).await;
    assert!(own.to_string().contains("FastMCP"), "{own}");
    let shadow = call("read", serde_json::json!({ "path": "/etc/shadow" })).await;
    assert!(shadow.to_string().contains("FileNotFoundError"), "{shadow}");
    let home = call("read", serde_json::json!({ "path": "/root/.bashrc" })).await;
    assert!(home.to_string().contains("failed"), "{home}");
    // No network without a grant: no proxy, no interface but loopback.
    let fetched = call(
        "fetch",
        serde_json::json!({ "url": "http://169.254.169.254/" }),
    )
    .await;
    assert!(fetched.to_string().contains("failed"), "{fetched}");

    server.stop().await;
    assert_eq!(server.status().state, State::Stopped);
    assert!(server.tools().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_initialize_is_reported() {
    let server = load(&server_entry("quiet", "silent", "init_timeout = \"2s\"")).await;
    let error = server.start().await.expect_err("no handshake");
    assert!(matches!(error, ServerError::InitTimeout { .. }), "{error}");
    assert_eq!(server.status().state, State::Failed);
    assert!(
        server
            .status()
            .last_error
            .is_some_and(|e| e.contains("initialize"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_floods_stdout_is_cut_off() {
    let server = load(&server_entry("noisy", "flood", "")).await;
    let error = server.start().await.expect_err("flooded");
    let ServerError::Exited { cause, .. } = &error else {
        panic!("{error}");
    };
    assert!(cause.contains("longer than 16777216 bytes"), "{error}");
}

/// The text of a result's first content block.
fn first_text(result: &rmcp::model::CallToolResult) -> String {
    super::text(result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_through_airlock_every_call_is_governed_and_its_egress_checked() {
    let upstream = super::fixture::upstream().await;
    let port = upstream.addr().port();
    let fixture = super::fixture::Fixture::new("");
    let network = format!(
        "[servers.network]\n[[servers.network.allow]]\nhost = \"svc.test\"\nschemes = [\"http\"]\nports = [{port}]\nprivate = true\n"
    );
    fixture.write_config(&server_entry("py", "serve", &network));
    let server = super::fixture::Server::http(&fixture).await;
    let client = server.client("claude").await;

    // Its tools are served as py.TOOL, with airlock's own annotations.
    let tools = client.peer().list_all_tools().await.expect("tools/list");
    let fetch = tools
        .iter()
        .find(|t| t.name == "py.fetch")
        .unwrap_or_else(|| {
            panic!(
                "py.fetch in {:?}",
                tools.iter().map(|t| &t.name).collect::<Vec<_>>()
            )
        });
    let annotations = fetch.annotations.clone().expect("annotated");
    assert_eq!(
        annotations.open_world_hint,
        Some(true),
        "a server with a network grant"
    );
    assert!(
        fetch.input_schema.get("properties").is_some(),
        "its schema passes through"
    );

    // With network access its tools are sensitive: the first call waits
    // for an operator, who allows this agent's session.
    let url = format!("http://svc.test:{port}/hello");
    let result = super::call_allowed(
        &server,
        &client,
        "py.fetch",
        serde_json::json!({ "url": url }),
        "session",
    )
    .await;
    assert_eq!(result.is_error, Some(false), "{}", first_text(&result));
    assert!(
        first_text(&result).starts_with("200 "),
        "{}",
        first_text(&result)
    );
    assert_eq!(
        upstream.requests().len(),
        1,
        "the granted origin was reached"
    );

    // A host outside the grant and the metadata address: refused by the
    // proxy before any connection, with the reason.
    for target in [
        "http://elsewhere.test/",
        "http://169.254.169.254/latest/meta-data/",
    ] {
        let call = super::call("py.fetch", serde_json::json!({ "url": target }));
        let result = client.peer().call_tool(call).await.expect("tools/call");
        assert_eq!(first_text(&result), "403 host_not_allowed", "{target}");
    }
    assert_eq!(
        upstream.requests().len(),
        1,
        "nothing else reached anything"
    );

    // While another call is in flight, a request cannot be told apart: it
    // is decided and recorded for the server session, and says so.
    let (slow, _, id) = super::fetch_held_for_approval_of(
        &server,
        &client,
        "py.slow",
        serde_json::json!({ "steps": 600 }),
    )
    .await;
    let decided = server.airlock(&["approvals", "decide", &id, "--allow", "once"]);
    assert!(
        decided.status.success(),
        "{}",
        super::fixture::printed(&decided)
    );
    client.service().next_progress_with("step 1 of 600").await;
    let overlap = call_tool(
        client.peer(),
        "py.fetch",
        serde_json::json!({ "url": format!("http://svc.test:{port}/overlap") }),
    )
    .await;
    assert!(
        first_text(&overlap).starts_with("200 "),
        "{}",
        first_text(&overlap)
    );
    slow.abort();

    let journal = server.stop_and_journal();
    let runs: Vec<&serde_json::Value> = journal
        .iter()
        .filter(|e| e["kind"] == "invocation" && e["payload"]["attestation"]["tool"] == "py.fetch")
        .collect();
    assert_eq!(runs.len(), 4, "each call is attested");
    let session = journal
        .iter()
        .find(|e| {
            e["kind"] == "egress"
                && e["payload"]["host"] == "svc.test"
                && e["payload"]["invocation_id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("server-session:py:"))
        })
        .expect("the overlapping request is recorded for the server session");
    assert_eq!(session["payload"]["decision"], "allow", "{session}");
    assert_eq!(runs[0]["payload"]["attestation"]["executor"], "mcp_server");
    assert_eq!(runs[0]["payload"]["attestation"]["world"], "mcp-server");
    let denied: Vec<&serde_json::Value> = journal
        .iter()
        .filter(|e| e["kind"] == "egress" && e["payload"]["decision"] == "deny")
        .collect();
    assert_eq!(denied.len(), 2, "both refusals are recorded");
    for record in denied {
        assert_eq!(record["payload"]["reason"], "host_not_allowed", "{record}");
        let call = record["payload"]["invocation_id"].as_str().expect("id");
        assert!(
            runs.iter()
                .any(|r| r["payload"]["attestation"]["id"] == call),
            "attributed to the call in flight: {record}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_crashes_mid_call_fails_that_call_and_is_restarted() {
    let fixture = super::fixture::Fixture::new("");
    let marker = format!("crash-test-{}", std::process::id());
    fixture.write_config(&server_entry_marked("py", "serve", "", &marker));
    let server = super::fixture::Server::http(&fixture).await;
    let client = server.client("claude").await;

    let crashed = call_tool(client.peer(), "py.crash", serde_json::json!({})).await;
    assert_eq!(crashed.is_error, Some(true));
    assert!(
        first_text(&crashed).contains("server_gone"),
        "{}",
        first_text(&crashed)
    );

    // Started again without waiting for a call.
    let started = std::time::Instant::now();
    loop {
        let status = server.airlock(&["servers", "status", "--json"]);
        let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("JSON");
        if status[0]["state"] == "running" && status[0]["starts"] == 2 {
            break;
        }
        assert!(
            started.elapsed() < super::PATIENCE,
            "not restarted: {status}"
        );
        tokio::task::yield_now().await;
    }

    let read = read_own_script(&client).await;
    assert_eq!(read.is_error, Some(false), "{}", first_text(&read));
    assert!(first_text(&read).contains("FastMCP"));

    let status = server.airlock(&["servers", "status", "--json"]);
    assert!(
        status.status.success(),
        "{}",
        super::fixture::printed(&status)
    );
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("JSON");
    assert_eq!(status[0]["state"], "running", "{status}");
    assert_eq!(
        status[0]["starts"], 2,
        "started again after the crash: {status}"
    );

    let listed = server.airlock(&["servers", "list"]);
    assert!(super::fixture::printed(&listed).contains("py.read"));
    let restarted = server.airlock(&["servers", "restart", "py"]);
    assert!(
        restarted.status.success(),
        "{}",
        super::fixture::printed(&restarted)
    );
    let missing = server.airlock(&["servers", "restart", "nope"]);
    assert!(super::fixture::printed(&missing).contains("server_not_found"));
    server.stop_and_journal();
    assert_eq!(
        servers_running(&marker),
        0,
        "stopping airlock stops the servers"
    );
}

/// How many processes on this machine have `wanted` among their arguments.
fn servers_running(wanted: &str) -> usize {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
        .filter(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|cmdline| {
                String::from_utf8_lossy(&cmdline)
                    .split('\0')
                    .any(|arg| arg == wanted)
            })
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_cancellation_and_tool_list_changes_pass_through() {
    let fixture = super::fixture::Fixture::new("");
    fixture.write_config(&server_entry("py", "serve", "start = \"lazy\""));
    let server = super::fixture::Server::http(&fixture).await;

    // Lazy: not started until a client lists the tools.
    let status = server.airlock(&["servers", "status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("JSON");
    assert_eq!(status[0]["starts"], 0, "{status}");
    let client = server.client("claude").await;
    let tools = client.peer().list_all_tools().await.expect("tools/list");
    let after = server.airlock(&["servers", "status", "--json"]);
    assert!(
        tools.iter().any(|t| t.name == "py.slow"),
        "started at the first listing: {} {}",
        super::fixture::printed(&after),
        server.log()
    );

    // The server's progress reaches the client; the client's cancellation
    // reaches the server, and the call is journaled as cancelled.
    let request = rmcp::model::ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(
        super::call("py.slow", serde_json::json!({ "steps": 600 })),
    ));
    let handle = client
        .peer()
        .send_cancellable_request(request, rmcp::service::PeerRequestOptions::no_options())
        .await
        .expect("sent");
    let said = client.service().next_progress_with("step 1 of 600").await;
    assert_eq!(said, "step 1 of 600");
    handle
        .cancel(Some("enough".into()))
        .await
        .expect("cancelled");
    server.wait_until_running(0).await;

    // A server that grows a tool says so. The tool was not there when the
    // server was pinned: it waits for an operator, who accepts it; then
    // airlock serves it and tells its own clients.
    let grown = call_tool(client.peer(), "py.grow", serde_json::json!({})).await;
    assert_eq!(first_text(&grown), "grown");
    // (The lazy start changed the list too: wait for the listing that
    // raised the new tool.)
    let added = loop {
        client.service().next_list_changed().await;
        let changes = server.airlock(&["servers", "changes", "--json"]);
        let changes: serde_json::Value = serde_json::from_slice(&changes.stdout).expect("JSON");
        if let Some(id) = changes
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["subject"] == "tool:extra")
            .and_then(|c| c["id"].as_str())
        {
            break id.to_string();
        }
    };
    let tools = client.peer().list_all_tools().await.expect("tools/list");
    assert!(!tools.iter().any(|t| t.name == "py.extra"), "held");
    let accepted = server.airlock(&["servers", "accept", &added]);
    assert!(
        accepted.status.success(),
        "{}",
        super::fixture::printed(&accepted)
    );
    loop {
        client.service().next_list_changed().await;
        let tools = client.peer().list_all_tools().await.expect("tools/list");
        if tools.iter().any(|t| t.name == "py.extra") {
            break;
        }
    }

    let journal = server.stop_and_journal();
    let slow = journal
        .iter()
        .find(|e| e["kind"] == "invocation" && e["payload"]["attestation"]["tool"] == "py.slow")
        .expect("the cancelled call is journaled");
    assert_eq!(slow["payload"]["attestation"]["outcome"], "cancelled");
}

/// `py.read` of the fixture's own script, through airlock.
async fn read_own_script(
    client: &rmcp::service::RunningService<rmcp::RoleClient, super::fixture::Recorder>,
) -> rmcp::model::CallToolResult {
    let script = fixture_dir().join("fetch_and_read.py");
    call_tool(
        client.peer(),
        "py.read",
        serde_json::json!({ "path": script }),
    )
    .await
}

/// `target/npm-servers`, where `.ci/install` puts the npm servers.
pub fn npm_servers() -> PathBuf {
    let dir = super::python::python("server-1.30.0")
        .ancestors()
        .nth(4)
        .expect("the target directory")
        .join("npm-servers/node_modules");
    assert!(
        dir.join("@modelcontextprotocol/server-filesystem").exists(),
        "{} is missing: run `bash .ci/test` (the README's test command), which installs it",
        dir.display()
    );
    dir
}

/// Lets the sandbox's user in: the server's own (an ordinary user), or
/// `nobody` under a server that runs as root.
pub fn open_to_everyone(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_filesystem_server_is_confined_to_its_workspace() {
    let modules = npm_servers();
    let place = tempfile::tempdir().expect("tempdir");
    open_to_everyone(place.path(), 0o755);
    let workspace = place.path().join("workspace");
    std::fs::create_dir(&workspace).expect("workspace");
    open_to_everyone(&workspace, 0o777);
    std::fs::write(workspace.join("notes.txt"), "inside").expect("write");
    let outside = place.path().join("secret.txt");
    std::fs::write(&outside, "outside").expect("write");
    open_to_everyone(&outside, 0o644);

    let fixture = super::fixture::Fixture::new("");
    // The server itself is told it may use all of `/`: airlock's sandbox
    // still shows it only what airlock.toml grants.
    fixture.write_config(&format!(
        "[[servers]]\nname = \"files\"\ncommand = \"/usr/bin/node\"\nargs = [{:?}, \"/\"]\nfs_read = [{:?}]\nfs_write = [{:?}]\n",
        modules
            .join("@modelcontextprotocol/server-filesystem/dist/index.js")
            .display()
            .to_string(),
        modules.display().to_string(),
        workspace.display().to_string(),
    ));
    let server = super::fixture::Server::http(&fixture).await;
    let client = server.client("claude").await;
    let tools = client.peer().list_all_tools().await.expect("tools/list");
    let read = tools
        .iter()
        .find(|t| t.name == "files.read_text_file")
        .unwrap_or_else(|| panic!("{:?}", tools.iter().map(|t| &t.name).collect::<Vec<_>>()));
    let annotations = read.annotations.clone().expect("annotated");
    assert_eq!(
        annotations.destructive_hint,
        Some(true),
        "it may write its workspace"
    );

    // Writing is sensitive: the first call waits for an operator, who
    // allows this session.
    let target = workspace.join("new.txt");
    let wrote = super::call_allowed(
        &server,
        &client,
        "files.write_file",
        serde_json::json!({ "path": target, "content": "written through airlock" }),
        "session",
    )
    .await;
    assert_ne!(wrote.is_error, Some(true), "{}", first_text(&wrote));
    assert_eq!(
        std::fs::read_to_string(&target).expect("written"),
        "written through airlock"
    );

    // Each of its tools is approved on its own (an approval binds the
    // tool); reading needs one too, since the server may write.
    let inside = super::call_allowed(
        &server,
        &client,
        "files.read_text_file",
        serde_json::json!({ "path": workspace.join("notes.txt") }),
        "session",
    )
    .await;
    assert_eq!(first_text(&inside), "inside");
    let call =
        |path: PathBuf| super::call("files.read_text_file", serde_json::json!({ "path": path }));
    for path in [
        outside.clone(),
        PathBuf::from("/etc/shadow"),
        PathBuf::from("/root/.profile"),
    ] {
        let refused = client
            .peer()
            .call_tool(call(path.clone()))
            .await
            .expect("tools/call");
        assert_eq!(
            refused.is_error,
            Some(true),
            "{}: {}",
            path.display(),
            first_text(&refused)
        );
        assert!(
            !first_text(&refused).contains("outside"),
            "{}",
            first_text(&refused)
        );
    }
    server.stop_and_journal();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_past_the_output_limit_are_refused_and_names_may_not_collide() {
    let fixture = super::fixture::Fixture::new("");
    fixture.write_config(&server_entry(
        "py",
        "serve",
        "limits = { output = \"1KiB\" }",
    ));
    let server = super::fixture::Server::http(&fixture).await;
    let client = server.client("claude").await;
    let large = read_own_script(&client).await;
    assert_eq!(large.is_error, Some(true));
    assert!(
        first_text(&large).starts_with("output_too_large"),
        "{}",
        first_text(&large)
    );
    server.stop_and_journal();

    // A configured tool named like one of the server's: airlock refuses to
    // start rather than serve one of them under the other's name.
    fixture.write_config(&format!(
        "[[tools]]\nname = \"py.read\"\ncomponent = {:?}\n{}",
        airlock_tests::guest_path("echo"),
        server_entry("py", "serve", "")
    ));
    let refused =
        super::fixture::airlock_for(&fixture, &["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(fixture.config())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("airlock serve");
    super::fixture::assert_refused(&refused, 2, "two tools are named `py.read`");
}
