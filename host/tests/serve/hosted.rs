//! Hosted MCP servers (`[[servers]]`): an ordinary FastMCP server
//! (fixtures/servers/fetch_and_read.py, the official Python SDK) run by
//! airlock in bubblewrap and spoken to as an MCP client.

use airlock::servers::{Called, HostedServer, ServerError, State};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The system-Python venv `.ci/install` makes for servers in the sandbox.
fn server_python() -> PathBuf {
    let venv = super::python::python("server-1.30.0");
    venv.parent()
        .and_then(Path::parent)
        .expect("the venv")
        .to_path_buf()
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/servers")
}

/// A `[[servers]]` entry for the fixture in `mode`, with `more` lines.
pub fn server_entry(name: &str, mode: &str, more: &str) -> String {
    let venv = server_python();
    let dir = fixture_dir();
    format!(
        "[[servers]]\nname = {name:?}\ncommand = {:?}\nargs = [{:?}, {mode:?}]\nfs_read = [{:?}, {:?}]\nenv = {{ PYTHONDONTWRITEBYTECODE = \"1\" }}\n{more}\n",
        venv.join("bin/python").display().to_string(),
        dir.join("fetch_and_read.py").display().to_string(),
        venv.display().to_string(),
        dir.display().to_string(),
    )
}

fn load(text: &str) -> HostedServer {
    let config =
        airlock::Config::from_toml(text, "airlock.toml", Path::new("/")).expect("valid config");
    let backend = airlock_sandbox::detect().expect("bubblewrap is installed by the test command");
    HostedServer::load(config.servers()[0].clone(), backend).expect("loads")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fastmcp_server_runs_confined_with_an_empty_environment() {
    let server = load(&server_entry("py", "serve", ""));
    let tools = server.start(None).await.expect("starts");
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(names, ["crash", "environment", "fetch", "read", "slow"]);
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
    let server = load(&server_entry("quiet", "silent", "init_timeout = \"2s\""));
    let error = server.start(None).await.expect_err("no handshake");
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
    let server = load(&server_entry("noisy", "flood", ""));
    let error = server.start(None).await.expect_err("flooded");
    assert!(matches!(error, ServerError::Start { .. }), "{error}");
}
