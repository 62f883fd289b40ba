//! The operator's side on the command line: pending approvals and exit code
//! 5, deciding from "another shell", `policy validate`/`explain`, and the
//! approval prompt on a terminal (`journal_cli.rs` has the journal and
//! attestation commands).

mod common;

use airlock_tests::guest_path;
use airlock_tests::net::{Behaviour, TestServer};
use common::{
    airlock, code, in_state, json_of, sensitive_echo_config, state_with_one_run, stderr, stdout,
};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Output;

fn kinds(state: &Path) -> Vec<String> {
    let out = in_state(state, &["journal", "tail", "-n", "1000", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).expect("one JSON entry per line")["kind"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unapproved_network_tool_waits_then_runs_once_an_operator_allows_it() {
    let server = TestServer::start(std::net::Ipv4Addr::new(127, 0, 0, 2), 0, Behaviour::Echo)
        .await
        .expect("server");
    let port = server.addr().port();
    let state = tempfile::tempdir().expect("tempdir");
    let grant = state.path().join("grant.toml");
    std::fs::write(
        &grant,
        format!("[[allow]]\nhost = \"svc.test\"\nprivate = true\nports = [{port}]\n"),
    )
    .expect("grant");
    // Long enough that the summary shortens it: what it hides at the end is
    // what `approvals show` shows.
    let long_path = format!("report/{}/tail-that-matters", "a".repeat(64));
    let input = json!({"url": format!("http://svc.test:{port}/{long_path}")}).to_string();
    let digest = airlock::approvals::input_sha256(&input);
    let grant = grant.display().to_string();
    let state_dir = state.path().to_path_buf();
    // The agent's shell and the operator's shell: separate processes that
    // share only the state directory.
    let run = move |extra: Vec<String>| {
        let (state_dir, grant, input) = (state_dir.clone(), grant.clone(), input.clone());
        tokio::task::spawn_blocking(move || {
            let args = [
                &[
                    "run",
                    guest_path("http-get"),
                    "--grant",
                    &grant,
                    "--resolve",
                    "svc.test=127.0.0.2",
                    "--no-dns",
                    "--input",
                    &input,
                ][..],
                &extra.iter().map(String::as_str).collect::<Vec<_>>(),
            ]
            .concat();
            in_state(&state_dir, &args)
        })
    };
    let operator = |args: Vec<String>| {
        let state_dir = state.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            in_state(
                &state_dir,
                &args.iter().map(String::as_str).collect::<Vec<_>>(),
            )
        })
    };
    let strings = |args: &[&str]| args.iter().map(ToString::to_string).collect::<Vec<_>>();

    let pending = run(vec![]).await.expect("run");
    assert_eq!(code(&pending), 5, "{}", stderr(&pending));
    let id = stdout(&pending).trim().to_string();
    assert_eq!(id.len(), 26, "the approval id alone on stdout: {id:?}");
    assert!(
        stderr(&pending).contains(&format!("airlock approvals decide {id}")),
        "{}",
        stderr(&pending)
    );
    assert!(
        server.requests().is_empty(),
        "nothing was sent before approval"
    );

    let listed = operator(strings(&["approvals", "list", "--json"]))
        .await
        .expect("list");
    let shown = operator(strings(&["approvals", "show", &id]))
        .await
        .expect("show");
    let listed = json_of(&listed);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["status"], "pending");
    assert_eq!(listed[0]["tool"], "http-get");
    assert_eq!(listed[0]["capabilities"], json!(["network"]));
    assert!(
        listed[0]["input_summary"]
            .as_str()
            .is_some_and(|s| s.contains("/report") && !s.contains("tail-that-matters")),
        "{listed}"
    );
    assert!(
        stdout(&shown).contains("capabilities  network"),
        "{}",
        stdout(&shown)
    );
    // `show` prints the whole input, the tail the summary hides included,
    // and its SHA-256 (what a client's question for a long input shows).
    assert!(
        stdout(&shown).contains(&long_path),
        "the whole input: {}",
        stdout(&shown)
    );
    assert!(stdout(&shown).contains(&digest), "{}", stdout(&shown));
    let full = operator(strings(&["approvals", "show", &id, "--full"]))
        .await
        .expect("show --full");
    assert!(
        stdout(&full).contains(&long_path),
        "`--full` is still accepted: {}",
        stdout(&full)
    );
    let full_json = operator(strings(&["approvals", "show", &id, "--full", "--json"]))
        .await
        .expect("show --full --json");
    let full_json = json_of(&full_json);
    assert!(
        full_json["input"]
            .as_str()
            .is_some_and(|input| input.contains(&long_path)),
        "{full_json}"
    );

    // An absurd window is refused with a reason, not a panic, and decides
    // nothing.
    let absurd = operator(strings(&[
        "approvals",
        "decide",
        &id,
        "--allow",
        "until=500000000000y",
    ]))
    .await
    .expect("decide");
    assert_eq!(code(&absurd), 2, "{}", stderr(&absurd));
    assert!(
        stderr(&absurd).contains("approval_window_too_long"),
        "{}",
        stderr(&absurd)
    );

    let decided = operator(strings(&["approvals", "decide", &id, "--allow", "once"]))
        .await
        .expect("decide");
    assert_eq!(code(&decided), 0, "{}", stderr(&decided));
    let ran = run(strings(&["--approval", &id])).await.expect("run");
    assert_eq!(code(&ran), 0, "{}", stderr(&ran));
    assert_eq!(server.requests().len(), 1);
    let rerun = run(vec![]).await.expect("run");
    assert_eq!(code(&rerun), 5, "a once approval is used up");

    let kinds = kinds(state.path());
    let story: Vec<&str> = kinds
        .iter()
        .map(String::as_str)
        .filter(|k| *k != "policy_reload")
        .collect();
    assert_eq!(
        story,
        [
            "approval_requested",
            "approval_decided",
            "invocation",
            "egress",
            "approval_requested"
        ]
    );
    let verified = in_state(state.path(), &["journal", "verify", "--json"]);
    assert_eq!(code(&verified), 0, "{}", stderr(&verified));
    assert_eq!(json_of(&verified)["entries"], kinds.len());
}

#[test]
fn operators_get_clear_errors_when_deciding() {
    let state = tempfile::tempdir().expect("tempdir");
    let (_, approval) = state_with_one_run(state.path());
    let twice = in_state(
        state.path(),
        &[
            "approvals",
            "decide",
            &approval,
            "--deny",
            "changed my mind",
        ],
    );
    assert_eq!(code(&twice), 2);
    assert!(stderr(&twice).contains("already"), "{}", stderr(&twice));

    let unknown = in_state(
        state.path(),
        &[
            "approvals",
            "decide",
            "01NOSUCHAPPROVAL0000000000",
            "--allow",
            "once",
        ],
    );
    assert_eq!(code(&unknown), 2);
    assert!(
        stderr(&unknown).contains("01NOSUCHAPPROVAL0000000000"),
        "{}",
        stderr(&unknown)
    );

    for bad in ["forever", "until=", "until=soon", "always"] {
        let out = in_state(
            state.path(),
            &["approvals", "decide", &approval, "--allow", bad],
        );
        assert_eq!(code(&out), 2, "--allow {bad}");
        assert!(
            stderr(&out).contains("once"),
            "--allow {bad}: {}",
            stderr(&out)
        );
    }
    let neither = in_state(state.path(), &["approvals", "decide", &approval]);
    assert_eq!(code(&neither), 2);
}

#[test]
fn a_denied_approval_exits_three_with_the_reason() {
    let state = tempfile::tempdir().expect("tempdir");
    let args = ["run", guest_path("echo"), "--input", "[1]", "--json"];
    let config = sensitive_echo_config(state.path());
    let run = || {
        in_state(
            state.path(),
            &[
                "run", "--config", &config, "--tool", "echo", "--input", "[1]", "--json",
            ],
        )
    };
    let pending = run();
    assert_eq!(code(&pending), 5);
    let id = json_of(&pending)["approval"]["id"]
        .as_str()
        .expect("approval id in --json")
        .to_string();
    let denied = in_state(
        state.path(),
        &[
            "approvals",
            "decide",
            &id,
            "--deny",
            "no exports on Fridays",
        ],
    );
    assert_eq!(code(&denied), 0, "{}", stderr(&denied));
    let out = run();
    assert_eq!(code(&out), 3);
    let result = json_of(&out);
    assert_eq!(result["code"], "approval_denied");
    assert!(
        result["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no exports on Fridays")),
        "{result}"
    );

    // The same tool unmarked is pure and runs without anyone's approval.
    let pure = in_state(state.path(), &args);
    assert_eq!(code(&pure), 0, "{}", stderr(&pure));
}

#[test]
fn policy_validate_and_explain() {
    let ok = airlock(&["policy", "validate"]).output().expect("run");
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    assert!(
        stdout(&ok).contains("sensitive-tools-need-approval"),
        "{}",
        stdout(&ok)
    );

    let broken = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        broken.path().join("typo.cedar"),
        "permit (principal, action, resource)\nwhen { resource.nmae == \"x\" };\n",
    )
    .expect("write");
    let dir = broken.path().display().to_string();
    let invalid = airlock(&["--policies", &dir, "policy", "validate"])
        .output()
        .expect("run");
    assert_eq!(code(&invalid), 2);
    assert!(
        stderr(&invalid).contains("typo.cedar:2:"),
        "{}",
        stderr(&invalid)
    );
    let refused = airlock(&[
        "--policies",
        &dir,
        "run",
        guest_path("echo"),
        "--input",
        "[]",
    ])
    .output()
    .expect("run");
    assert_eq!(code(&refused), 2, "an invalid policy stops start-up");
    assert!(
        stderr(&refused).contains("typo.cedar:2:"),
        "{}",
        stderr(&refused)
    );

    let explain_as = |principal: &str, tool: &str, action: &str, extra: &[&str]| {
        let args = [
            &[
                "policy",
                "explain",
                "--principal",
                principal,
                "--action",
                action,
                "--tool",
                tool,
            ][..],
            extra,
        ]
        .concat();
        airlock(&args).output().expect("run")
    };
    let explain = |tool: &str, action: &str, extra: &[&str]| {
        let out = explain_as("Agent::\"claude\"", tool, action, extra);
        let result = if out.stdout.is_empty() {
            Value::Null
        } else {
            json_of(&out)
        };
        (code(&out), result)
    };
    let (exit, pure) = explain(guest_path("echo"), "tool.execute", &[]);
    assert_eq!(
        (exit, &pure["decision"], &pure["policies"]),
        (0, &json!("allow"), &json!(["run-pure-tools"]))
    );

    let (exit, sensitive) = explain(guest_path("http-get"), "tool.execute", &[]);
    assert_eq!(exit, 3);
    assert_eq!(sensitive["decision"], "deny");
    assert_eq!(
        sensitive["policies"],
        json!(["sensitive-tools-need-approval"])
    );
    assert_eq!(sensitive["approval_possible"], true);
    assert_eq!(sensitive["tool"]["capabilities"], json!(["network"]));

    let (exit, approved) = explain(
        guest_path("http-get"),
        "tool.execute",
        &["--context", r#"{"approved": true}"#],
    );
    assert_eq!(
        (exit, &approved["policies"]),
        (0, &json!(["run-approved-sensitive-tools"]))
    );

    let (exit, unlisted) = explain(guest_path("echo"), "tool.list", &[]);
    assert_eq!((exit, &unlisted["policies"]), (0, &json!(["read-only"])));
    let (exit, as_agent) = explain(
        guest_path("echo"),
        "tool.execute",
        &["--context", r#"{"approved": "yes"}"#],
    );
    assert_eq!(
        (exit, as_agent),
        (2, Value::Null),
        "a context that does not fit the schema is a usage error"
    );

    let not_yet = explain_as("User::\"ops\"", guest_path("echo"), "fs.write", &[]);
    assert_eq!(code(&not_yet), 2);
    assert!(
        stderr(&not_yet).contains("not_explainable"),
        "{}",
        stderr(&not_yet)
    );

    let (exit, request) = explain(
        guest_path("http-get"),
        "http.request",
        &["--url", "https://api.example.com/v1"],
    );
    assert_eq!(
        (exit, &request["policies"]),
        (0, &json!(["egress-as-granted"]))
    );

    let bad = explain_as("Agent::\"c\"", guest_path("echo"), "tool.fly", &[]);
    assert_eq!(code(&bad), 2);
    assert!(
        stderr(&bad).contains("tool.execute"),
        "lists the actions: {}",
        stderr(&bad)
    );
}

/// `airlock ARGS` on a pseudo-terminal (util-linux `script`), typing `typed`.
fn on_a_terminal(state: &Path, args: &str, typed: &str) -> Output {
    let command = format!(
        "{} --state-dir {} {args}",
        env!("CARGO_BIN_EXE_airlock"),
        state.display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("AIRLOCK_STATE_DIR", state)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs commands on a pseudo-terminal");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), typed.as_bytes())
        .expect("type");
    child.wait_with_output().expect("wait")
}

#[test]
fn on_a_terminal_run_asks_the_operator_there_and_then() {
    let state = tempfile::tempdir().expect("tempdir");
    let config = sensitive_echo_config(state.path());
    let run = |input: &str| format!("run --config {config} --tool echo --input '{input}'");

    let allowed = on_a_terminal(state.path(), &run("[5]"), "o\n");
    let screen = stdout(&allowed);
    assert_eq!(code(&allowed), 0, "{screen}");
    assert!(screen.contains("`echo` needs your approval"), "{screen}");
    assert!(
        screen.contains("none (the operator marked the tool sensitive)"),
        "{screen}"
    );
    assert!(screen.trim_end().ends_with("[5]"), "the tool ran: {screen}");

    let denied = on_a_terminal(state.path(), &run("[6]"), "d not today\n");
    assert_eq!(code(&denied), 3, "{}", stdout(&denied));
    assert!(stdout(&denied).contains("not today"), "{}", stdout(&denied));

    let left = on_a_terminal(state.path(), &run("[7]"), "\n");
    assert_eq!(code(&left), 5, "{}", stdout(&left));
    let pending = json_of(&in_state(state.path(), &["approvals", "list", "--json"]));
    assert_eq!(pending.as_array().map(Vec::len), Some(1), "{pending}");
    assert_eq!(pending[0]["input_summary"], "[7]");
}

#[test]
fn run_passes_its_context_to_the_policies() {
    let policies = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        policies.path().join("default.cedar"),
        airlock::policy::DEFAULT_POLICIES,
    )
    .expect("defaults");
    std::fs::write(
        policies.path().join("channels.cedar"),
        "@id(\"not-in-public\")\nforbid (principal, action == Airlock::Action::\"tool.execute\", resource)\nwhen { context.channel == \"public\" && context.device_id != \"kiosk-1\" };\n",
    )
    .expect("policy");
    let dir = policies.path().display().to_string();
    let state = tempfile::tempdir().expect("tempdir");
    let run = |extra: &[&str]| {
        let args = [
            &[
                "--policies",
                &dir,
                "run",
                guest_path("echo"),
                "--input",
                "[1]",
                "--json",
            ][..],
            extra,
        ]
        .concat();
        in_state(state.path(), &args)
    };
    assert_eq!(code(&run(&[])), 0);
    let public = run(&["--channel", "public", "--run-id", "r1"]);
    assert_eq!(code(&public), 3);
    assert_eq!(
        json_of(&public)["error"]["policies"],
        json!(["not-in-public"])
    );
    assert_eq!(
        code(&run(&["--channel", "public", "--device", "kiosk-1"])),
        0
    );
}
