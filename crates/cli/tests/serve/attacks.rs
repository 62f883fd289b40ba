//! Issue 26, finding 1, as the attacker did it: a native tool and a hosted
//! FastMCP server granted the directory that holds airlock's state
//! directory and configuration try to read the host key, the cache key and
//! the config, list and forge the compile cache, and talk to the operator
//! socket (`fixtures/attacks/intruder.py`). The server runs as an ordinary
//! user, so the sandbox shares its uid and only airlock's walls stand in
//! the way; a decoy of the same owner and mode beside them must stay
//! readable, or the test proves nothing.

use super::fixture::{self, Fixture, Server, printed};
use super::{call_tool, users};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;

fn attacks_dir() -> PathBuf {
    // Canonical: a native tool's directories are mounted at their
    // canonical paths.
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/attacks")
        .canonicalize()
        .expect("fixtures/attacks")
}

/// The fixture's own directory: the one holding `airlock.toml` and `state/`.
fn project(fixture: &Fixture) -> PathBuf {
    fixture
        .config()
        .parent()
        .expect("the fixture's directory")
        .to_path_buf()
}

/// A decoy beside airlock's files, the server's user's, mode 0600.
fn decoy(fixture: &Fixture) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = project(fixture).join("decoy.txt");
    std::fs::write(&path, "decoy").expect("decoy");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    users::give_to_server_user(&path);
    path
}

fn native_intruder(fixture: &Fixture, hide: bool) -> String {
    format!(
        "[[tools]]\nname = \"intruder\"\n[tools.native]\nprogram = \"/usr/bin/python3\"\nargs = [{:?}]\nfs_read = [{:?}]\nfs_write = [{:?}]\nhide_airlock_files = {hide}\n",
        attacks_dir().join("intruder.py").display().to_string(),
        attacks_dir().display().to_string(),
        project(fixture).display().to_string(),
    )
}

fn hosted_intruder(fixture: &Fixture, hide: bool) -> String {
    let venv = super::hosted::server_python();
    format!(
        "[[servers]]\nname = \"intruder\"\ncommand = {:?}\nargs = [{:?}, \"serve\"]\nfs_read = [{:?}, {:?}, {:?}]\nhide_airlock_files = {hide}\n",
        venv.join("bin/python").display().to_string(),
        attacks_dir().join("intruder.py").display().to_string(),
        venv.display().to_string(),
        attacks_dir().display().to_string(),
        project(fixture).display().to_string(),
    )
}

/// What the intruder aims at.
fn targets(fixture: &Fixture) -> Value {
    json!({
        "state": fixture.state(),
        "config": fixture.config(),
        "socket": fixture.socket(),
        "decoy": decoy(fixture),
    })
}

/// Every attempt refused, the decoy read.
fn assert_walls_held(report: &Value) {
    let Value::Object(attempts) = report else {
        panic!("a report: {report}");
    };
    assert_eq!(attempts.len(), 10, "{report}");
    for (attempt, outcome) in attempts {
        let outcome = outcome.as_str().unwrap_or_default();
        if attempt == "read decoy" {
            assert!(
                outcome.starts_with("ok: "),
                "the decoy must be readable, or the refusals prove nothing: {report}"
            );
        } else {
            assert!(
                outcome.starts_with("refused: "),
                "{attempt} got through: {report}"
            );
        }
    }
}

/// `airlock serve` on `fixture`, which must refuse to start: its output.
fn serve_refused(fixture: &Fixture) -> String {
    let out = fixture::airlock_command(fixture)
        .arg("--state-dir")
        .arg(fixture.state())
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(fixture.config())
        .args(["--no-dns"])
        .stdin(Stdio::null())
        .output()
        .expect("airlock serve");
    assert!(!out.status.success(), "it served: {}", printed(&out));
    printed(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_over_airlock_s_own_files_is_refused_at_load() {
    let fixture = Fixture::new("");
    let project = project(&fixture).display().to_string();
    for entry in [
        native_intruder(&fixture, false),
        hosted_intruder(&fixture, false),
    ] {
        fixture.write_config(&entry);
        let said = serve_refused(&fixture);
        assert!(said.contains("protected_path"), "{said}");
        assert!(
            said.contains(&project) && said.contains("contains the"),
            "names both: {said}"
        );
        assert!(
            said.contains("hide_airlock_files"),
            "says what to do: {said}"
        );
    }
    // A grant inside the state directory is refused even on purpose, and
    // a component's grant cannot hide anything.
    let inside = fixture.state().join("cache");
    std::fs::create_dir_all(&inside).expect("dir");
    users::give_to_server_user(&fixture.state());
    users::give_to_server_user(&inside);
    fixture.write_config(&format!(
        "[[servers]]\nname = \"s\"\ncommand = \"/bin/cat\"\nfs_read = [{:?}]\nhide_airlock_files = true\n",
        inside.display().to_string()
    ));
    let said = serve_refused(&fixture);
    assert!(said.contains("lies inside the state directory"), "{said}");
    fixture.write_config(&format!(
        "[[tools]]\nname = \"reader\"\ncomponent = {:?}\ndirs = [{{ host = {project:?}, guest = \"/p\" }}]\n",
        airlock_tests::guest_path("env-snoop"),
    ));
    let said = serve_refused(&fixture);
    assert!(said.contains("cannot hide part of itself"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_tool_granted_the_parent_on_purpose_sees_none_of_airlock() {
    let fixture = Fixture::new("");
    fixture.write_config(&native_intruder(&fixture, true));
    let server = Server::http(&fixture).await;
    let client = server.client("claude").await;
    // A tool that writes is sensitive: an operator lets it run once.
    let result = super::call_allowed(&server, &client, "intruder", targets(&fixture), "once").await;
    let report: Value = result.structured_content.clone().unwrap_or_else(|| {
        serde_json::from_str(&super::text(&result)).unwrap_or_else(|_| panic!("{result:?}"))
    });
    assert_walls_held(&report);
    assert_nothing_changed(&server);
    client.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_hosted_server_on_its_first_call_sees_none_of_airlock() {
    let fixture = Fixture::new("");
    fixture.write_config(&hosted_intruder(&fixture, true));
    let server = Server::http(&fixture).await;
    let client = server.client("claude").await;
    // Read-only: no approval stands in the way, as in the attack.
    let result = call_tool(
        client.peer(),
        "intruder.attempt",
        json!({ "targets": targets(&fixture) }),
    )
    .await;
    assert_eq!(result.is_error, Some(false), "{result:?}");
    let report: Value = result
        .structured_content
        .clone()
        .map(|content| content.get("result").cloned().unwrap_or(content))
        .unwrap_or_else(|| {
            serde_json::from_str(&super::text(&result)).unwrap_or_else(|_| panic!("{result:?}"))
        });
    assert_walls_held(&report);
    assert_nothing_changed(&server);
    client.cancel().await.expect("close");
}

/// No agent was added and no approval decided but by the operator.
fn assert_nothing_changed(server: &Server<'_>) {
    let agents = server.airlock(&["agents", "list", "--json"]);
    assert!(agents.status.success(), "{}", printed(&agents));
    let agents = String::from_utf8_lossy(&agents.stdout);
    assert!(!agents.contains("intruder"), "{agents}");
    let log = server.log();
    assert!(!log.contains("intruder\" added"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_in_a_sandbox_is_never_an_operator_though_it_has_the_uid() {
    let fixture = Fixture::new("");
    let server = Server::http(&fixture).await;
    // The operator's own shell: served.
    let own = server.airlock(&["approvals", "list", "--json"]);
    assert!(own.status.success(), "{}", printed(&own));
    // The same command, same uid, from inside a sandbox that can see the
    // socket (bubblewrap maps its user to the caller's): refused.
    let mut sandboxed = std::process::Command::new("bwrap");
    sandboxed
        .args([
            "--unshare-user",
            "--unshare-pid",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--",
            env!("CARGO_BIN_EXE_airlock"),
            "--socket",
        ])
        .arg(fixture.socket())
        .args(["--state-dir"])
        .arg(fixture.state())
        .args(["approvals", "list"]);
    users::as_server_user(&mut sandboxed);
    let refused = sandboxed.output().expect("bwrap");
    assert!(!refused.status.success(), "{}", printed(&refused));
    assert!(
        printed(&refused).contains("foreign_namespace"),
        "{}",
        printed(&refused)
    );
}

/// The review's second way in: a tool that can write above another tool's
/// grant puts a link to the state directory where that grant was. The
/// grant's directory was opened when it was checked: a native tool's next
/// run is refused (`grant_changed`) and a component keeps the directory it
/// was given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_swapped_in_for_a_grant_leads_nowhere() {
    let fixture = Fixture::new("");
    let work = project(&fixture).join("work");
    let site = work.join("site");
    let other = work.join("other");
    let elsewhere = project(&fixture).join("elsewhere");
    for dir in [&site, &other, &elsewhere] {
        std::fs::create_dir_all(dir).expect("dir");
    }
    std::fs::write(site.join("marker.txt"), "granted").expect("marker");
    std::fs::write(other.join("marker.txt"), "granted").expect("marker");
    std::fs::write(elsewhere.join("secret.txt"), "not granted").expect("secret");
    for path in [&work, &site, &other, &elsewhere] {
        users::give_to_server_user(path);
    }
    let sh = |name: &str, script: &str, grant: &str| {
        format!(
            "[[tools]]\nname = {name:?}\n[tools.native]\nprogram = \"/bin/sh\"\nargs = [\"-c\", {script:?}]\n{grant}\n"
        )
    };
    // One grant swapped for a link to the state directory, another for a
    // link to a directory nobody granted (not airlock's: only the open
    // without following links stands in the way).
    let swap = format!(
        "cd {} && mv site site.old && ln -s {} site && mv other other.old && ln -s {} other && echo '{{}}'",
        work.display(),
        fixture.state().display(),
        elsewhere.display()
    );
    let list = |dir: &std::path::Path| {
        format!(
            "printf '{{\"listing\": \"%s\"}}' \"$(ls {} | tr '\\n' ' ')\"",
            dir.display()
        )
    };
    fixture.write_config(&format!(
        "{}{}{}[[tools]]\nname = \"lister\"\ncomponent = {:?}\ndirs = [{{ host = {:?}, guest = \"/site\" }}]\n",
        sh("writer", &swap, &format!("fs_write = [{:?}]", work.display().to_string())),
        sh("reader", &list(&site), &format!("fs_read = [{:?}]", site.display().to_string())),
        sh("other", &list(&other), &format!("fs_read = [{:?}]", other.display().to_string())),
        airlock_tests::guest_path("fs-escape"),
        site.display().to_string(),
    ));
    let server = Server::http(&fixture).await;
    let client = server.client("claude").await;
    let listed = |result: &rmcp::model::CallToolResult| {
        serde_json::to_string(&result.structured_content).unwrap_or_default() + &super::text(result)
    };
    let list_steps = json!({ "steps": [{ "op": "list", "path": "." }] });

    // Before: both see the granted directory.
    for tool in ["reader", "other"] {
        let before = super::call_allowed(&server, &client, tool, json!({}), "session").await;
        assert!(listed(&before).contains("marker.txt"), "{tool}: {before:?}");
    }
    let component =
        super::call_allowed(&server, &client, "lister", list_steps.clone(), "session").await;
    assert!(listed(&component).contains("marker.txt"), "{component:?}");

    // The writer puts a link to the state directory in the grant's place.
    let swapped = super::call_allowed(&server, &client, "writer", json!({}), "once").await;
    assert_eq!(swapped.is_error, Some(false), "{swapped:?}");
    assert!(
        std::fs::symlink_metadata(&site)
            .expect("site")
            .file_type()
            .is_symlink()
    );

    // After: the native tool is refused, the component sees what it had.
    let reader = call_tool(client.peer(), "reader", json!({})).await;
    assert_eq!(reader.is_error, Some(true), "{reader:?}");
    let said = listed(&reader);
    // The grant now leads into the state directory: refused before the
    // sandbox starts (were it not, bubblewrap's open would refuse the link:
    // `grant_changed`).
    assert!(said.contains("protected_path"), "{said}");
    assert!(!said.contains("host.key"), "{said}");
    // A link to a directory no one granted: the open without following
    // links refuses it.
    let other = call_tool(client.peer(), "other", json!({})).await;
    assert_eq!(other.is_error, Some(true), "{other:?}");
    let said = listed(&other);
    assert!(said.contains("grant_changed"), "{said}");
    assert!(!said.contains("secret.txt"), "{said}");
    let component = call_tool(client.peer(), "lister", list_steps).await;
    let said = listed(&component);
    assert!(said.contains("marker.txt"), "{said}");
    assert!(
        !said.contains("host.key") && !said.contains("airlock.db"),
        "{said}"
    );
    client.cancel().await.expect("close");
}
