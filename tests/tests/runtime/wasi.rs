//! Base WASI is linked with nothing granted: no environment, no preopens
//! unless granted, no sockets, and no HTTP request leaves the host.

use airlock::{DirAccess, DirGrant, Grants, Invocation};
use airlock_tests::{LoopbackListener, host, load_guest, load_guest_with};
use serde_json::{Value, json};

async fn snoop(grants: Grants, input: Value) -> Value {
    let tool = load_guest_with(host(), "env-snoop", grants).await;
    let outcome = host()
        .invoke(&tool, Invocation::new(input.to_string()))
        .await
        .expect("runs");
    let output = outcome
        .output()
        .unwrap_or_else(|| panic!("env-snoop failed: {outcome:?}"));
    serde_json::from_str(output).expect("env-snoop returns JSON")
}

#[tokio::test]
async fn without_grants_the_guest_sees_nothing_of_the_host() {
    assert!(
        std::env::vars_os().next().is_some(),
        "the test process has an environment"
    );
    let seen = snoop(
        Grants::none(),
        json!({"read": ["/etc/passwd", "/etc/hostname"], "list": ["/", "."]}),
    )
    .await;
    assert_eq!(seen["env"], json!([]));
    assert_eq!(seen["args"], json!([]));
    assert_eq!(seen["preopens"], json!([]));
    for (path, result) in seen["reads"]
        .as_object()
        .expect("reads")
        .iter()
        .chain(seen["lists"].as_object().expect("lists"))
    {
        assert!(
            result.get("error").is_some(),
            "{path} was reachable: {result}"
        );
    }
}

#[tokio::test]
async fn a_read_only_grant_shows_that_directory_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("hello.txt"), "hello from the host").expect("write");
    let grants = Grants::none().with_dir(DirGrant::new(dir.path(), "/data", DirAccess::ReadOnly));
    let seen = snoop(
        grants,
        json!({
            "read": ["/data/hello.txt", "/data/../etc/passwd", "/etc/passwd"],
            "list": ["/data"],
            "write": ["/data/new.txt"],
        }),
    )
    .await;
    assert_eq!(seen["preopens"], json!(["/data"]));
    assert_eq!(
        seen["reads"]["/data/hello.txt"],
        json!({"ok": "hello from the host"})
    );
    assert!(
        seen["reads"]["/data/../etc/passwd"].get("error").is_some(),
        "{seen}"
    );
    assert!(
        seen["reads"]["/etc/passwd"].get("error").is_some(),
        "{seen}"
    );
    assert_eq!(seen["lists"]["/data"], json!({"ok": ["hello.txt"]}));
    assert!(
        seen["writes"]["/data/new.txt"].get("error").is_some(),
        "{seen}"
    );
    assert!(
        !dir.path().join("new.txt").exists(),
        "a read-only grant was written to"
    );
}

#[tokio::test]
async fn a_read_write_grant_can_be_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let grants = Grants::none().with_dir(DirGrant::new(dir.path(), "/work", DirAccess::ReadWrite));
    let seen = snoop(
        grants,
        json!({"write": ["/work/out.txt", "/work/../escape.txt"]}),
    )
    .await;
    assert_eq!(seen["writes"]["/work/out.txt"], json!({"ok": true}));
    assert!(
        seen["writes"]["/work/../escape.txt"].get("error").is_some(),
        "{seen}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).expect("written"),
        "written by env-snoop"
    );
    assert!(
        !dir.path()
            .parent()
            .expect("parent")
            .join("escape.txt")
            .exists()
    );
}

#[tokio::test]
async fn grants_that_cannot_be_honoured_are_refused_at_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "echo",
            Grants::none().with_dir(DirGrant::new(dir.path(), "/d", DirAccess::ReadOnly)),
            "grant_not_usable",
        ),
        (
            "env-snoop",
            Grants::none().with_dir(DirGrant::new(
                dir.path().join("missing"),
                "/d",
                DirAccess::ReadOnly,
            )),
            "grant_dir_unavailable",
        ),
        (
            "env-snoop",
            Grants::none()
                .with_dir(DirGrant::new(dir.path(), "/d", DirAccess::ReadOnly))
                .with_dir(DirGrant::new(dir.path(), "/d", DirAccess::ReadWrite)),
            "grant_invalid",
        ),
    ];
    for (guest, grants, code) in cases {
        let path = std::path::Path::new(airlock_tests::guest_path(guest));
        let err = host().load(path, grants).await.expect_err("refused");
        assert_eq!(err.code(), code, "{guest}: {err}");
    }
}

#[tokio::test]
async fn sockets_are_denied_and_nothing_connects() {
    let listener = LoopbackListener::bind();
    let dialer = load_guest(host(), "socket-dialer").await;
    let input = json!({"addr": listener.addr().to_string(), "name": "localhost"}).to_string();
    let outcome = host()
        .invoke(&dialer, Invocation::new(input))
        .await
        .expect("runs");
    let seen: Value = serde_json::from_str(outcome.output().expect("completes")).expect("JSON");
    assert_eq!(seen["tcp"]["kind"], "PermissionDenied", "{seen}");
    assert_eq!(seen["udp"]["kind"], "PermissionDenied", "{seen}");
    assert_eq!(seen["dns"]["ok"], false, "{seen}");
    listener.assert_no_connection();
}

#[tokio::test]
async fn http_is_denied_before_any_connection() {
    let listener = LoopbackListener::bind();
    let fetch = load_guest(host(), "http-get").await;
    let url = format!("http://{}/", listener.addr());
    let outcome = host()
        .invoke(&fetch, Invocation::new(json!({"url": url}).to_string()))
        .await
        .expect("runs");
    assert_eq!(outcome.code(), "tool_denied");
    assert!(
        outcome
            .message()
            .unwrap_or_default()
            .contains("HttpRequestDenied")
    );
    listener.assert_no_connection();
}
