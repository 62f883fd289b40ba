//! `airlock serve --locked` with a tool from a real OCI registry, run as
//! the server's ordinary user: the lockfile pins the digest the agent's
//! call runs, and the journal records where it came from.

use super::call_tool;
use super::fixture::journal;
use super::fixture::{Fixture, Server, Start};
use airlock_tests::guest_path;
use airlock_tests::registry::TestRegistry;
use serde_json::json;
use std::path::Path;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_server_serves_the_pinned_registry_component() {
    let registry = TestRegistry::start();
    let manifest = registry.push("tools/echo:1.0", Path::new(guest_path("echo")));
    let reference = registry.reference("tools/echo:1.0");
    let fixture = Fixture::new("");
    fixture.write_config(&format!(
        "[[tools]]\nname = \"from-registry\"\ncomponent = \"{reference}\"\n"
    ));
    // The operator pins it (as the test's user, into the config's directory).
    let scratch = tempfile::tempdir().expect("scratch state");
    let out = Command::new(env!("CARGO_BIN_EXE_airlock"))
        .arg("--state-dir")
        .arg(scratch.path())
        .args(["lock", "--config"])
        .arg(fixture.config())
        .output()
        .expect("airlock lock");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The tag moves after locking: the server must not follow it.
    registry.push("tools/echo:1.0", Path::new(guest_path("json-transform")));

    let server = Server::start(
        &fixture,
        Start {
            serve_args: &["--locked"],
            ..Start::default()
        },
    )
    .await;
    let client = server.client("agent").await;
    let tools = client.peer().list_all_tools().await.expect("tools/list");
    assert!(tools.iter().any(|t| t.name == "from-registry"), "{tools:?}");
    let result = call_tool(client.peer(), "from-registry", json!({"records": []})).await;
    let text = serde_json::to_value(&result.content)
        .expect("content")
        .to_string();
    assert!(
        !text.contains("count"),
        "the pinned echo ran, not the moved tag: {text}"
    );
    drop(client);
    drop(server);

    let pinned = format!("{reference}@{manifest}");
    let attested = journal(&fixture).iter().any(|entry| {
        entry["payload"]["attestation"]["source"] == pinned.as_str()
            && entry["payload"]["attestation"]["tool"] == "from-registry"
    });
    assert!(attested, "no attestation with source {pinned}");
}

/// A key named only by a reload was not protected when the sandboxes'
/// views were set: the reload is refused (and the tools before it keep
/// serving) until the server restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_names_a_new_key_asks_for_a_restart() {
    let fixture = Fixture::new("");
    let server = Server::http(&fixture).await;
    let key = fixture.tmp().join("acme.pub");
    std::fs::copy(
        airlock_tests::workspace_root().join("fixtures/keys/test-signer.pub"),
        &key,
    )
    .expect("key");
    super::users::give_to_server_user(&key);
    fixture.write_config(&format!(
        "[registries.\"registry.example/acme\"]\nverify = {{ key = {:?} }}\n",
        key.display().to_string()
    ));
    let out = server.airlock(&["reload"]);
    assert!(!out.status.success(), "{}", super::fixture::printed(&out));
    let said = super::fixture::printed(&out);
    assert!(
        said.contains("restart_required") && said.contains("acme.pub"),
        "{said}"
    );
    let client = server.client("agent").await;
    let tools = client.peer().list_all_tools().await.expect("tools/list");
    assert!(
        tools.iter().any(|t| t.name == "echo"),
        "the old tools still serve"
    );
}
