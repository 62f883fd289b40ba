//! The `airlock` binary: output, `--json` result objects, input sources, grants
//! and the documented exit codes, on the real guests and bad components.

mod common;

use airlock_tests::fixtures::bad_components;
use airlock_tests::guest_path;
use common::{airlock, code, json_of, permit_all, run, run_stdin, stderr, stdout};
use serde_json::{Value, json};

#[test]
fn run_prints_the_output_and_exits_zero() {
    let out = run(&["run", guest_path("echo"), "--input", r#"{"a": [1, 2]}"#]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "{\"a\": [1, 2]}\n");
}

#[test]
fn input_comes_from_stdin_or_a_file() {
    let out = run_stdin(&["run", guest_path("echo")], br#"{"from": "stdin"}"#);
    assert_eq!(
        (code(&out), stdout(&out).trim()),
        (0, r#"{"from": "stdin"}"#)
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("input.json");
    std::fs::write(&file, r#"{"from": "file"}"#).expect("write");
    let out = run(&[
        "run",
        guest_path("echo"),
        "--input-file",
        file.to_str().expect("utf-8"),
    ]);
    assert_eq!(
        (code(&out), stdout(&out).trim()),
        (0, r#"{"from": "file"}"#)
    );

    let out = run_stdin(&["run", guest_path("echo"), "--input-file", "-"], b"[true]");
    assert_eq!((code(&out), stdout(&out).trim()), (0, "[true]"));
}

#[test]
fn json_result_object_carries_output_code_and_limits() {
    let out = run(&[
        "run",
        "--json",
        guest_path("echo"),
        "--input",
        r#"{"k":"v"}"#,
        "--timeout",
        "3s",
        "--memory",
        "32MiB",
    ]);
    assert_eq!(code(&out), 0);
    let result = json_of(&out);
    assert_eq!(result["status"], "ok");
    assert_eq!(result["code"], "ok");
    assert_eq!(result["exit_code"], 0);
    assert_eq!(result["output"], json!({"k": "v"}));
    assert_eq!(result["tool"]["name"], "echo");
    assert_eq!(result["tool"]["world"], "pure");
    assert_eq!(result["report"]["limits"]["timeout_ms"], 3000);
    assert_eq!(result["report"]["limits"]["max_memory_bytes"], 32 << 20);
    assert!(result["report"]["duration_ms"].as_f64().expect("duration") > 0.0);
    assert!(result.get("error").is_none());
}

#[test]
fn exit_codes_follow_the_outcome() {
    let cases: &[(&str, &[&str], i32, &str)] = &[
        ("trap", &["--input", r#"{"how":"panic"}"#], 1, "trap"),
        ("trap", &["--input", r#"{"how":"error"}"#], 1, "tool_failed"),
        (
            "json-transform",
            &["--input", r#"{"records": 1}"#],
            1,
            "tool_invalid_input",
        ),
        (
            "spin-forever",
            &["--input", "{}", "--timeout", "200ms"],
            4,
            "deadline_exceeded",
        ),
        (
            "spin-forever",
            &["--input", "{}", "--fuel", "1000000"],
            4,
            "fuel_exhausted",
        ),
        (
            "memory-bomb",
            &["--input", "{}", "--memory", "16MiB"],
            4,
            "memory_limit",
        ),
        ("deep-recursion", &["--input", "{}"], 4, "stack_overflow"),
        (
            "huge-output",
            &["--input", r#"{"bytes": 5000}"#, "--max-output", "4KiB"],
            4,
            "output_too_large",
        ),
        (
            "echo",
            &["--input", r#"{"long": "input"}"#, "--max-input", "8"],
            4,
            "input_too_large",
        ),
        ("echo", &["--input", "{oops"], 2, "invalid_input"),
        // A key given twice: parsers disagree about which one counts.
        (
            "echo",
            &["--input", r#"{"url": "http://a/", "url": "http://b/"}"#],
            2,
            "invalid_input",
        ),
    ];
    for (guest, args, expected, reason) in cases {
        let mut all = vec!["run", "--json", guest_path(guest)];
        all.extend_from_slice(args);
        let out = run(&all);
        assert_eq!(code(&out), *expected, "{guest} {args:?}: {}", stderr(&out));
        let result = json_of(&out);
        assert_eq!(result["code"], *reason, "{guest} {args:?}");
        assert_eq!(result["exit_code"], *expected);
        assert!(
            result["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );

        // Text mode: the same exit code, the reason on stderr, nothing on stdout.
        let mut text = vec!["run", guest_path(guest)];
        text.extend_from_slice(args);
        let out = run(&text);
        assert_eq!(code(&out), *expected);
        assert!(stdout(&out).is_empty(), "{guest}: {}", stdout(&out));
        assert!(stderr(&out).contains(reason), "{guest}: {}", stderr(&out));
    }
}

#[test]
fn a_panicking_guest_shows_its_message() {
    let out = run(&["run", guest_path("trap"), "--input", "{}"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("guest stderr:"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("trap fixture: deliberate panic"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn usage_errors_exit_two_and_say_what_to_write() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "/nonexistent/tool.wasm", "--input", "{}"],
            "cannot read /nonexistent/tool.wasm",
        ),
        (&["run", "x.wasm", "--timeout", "soon"], "500ms"),
        (&["run", "x.wasm", "--memory", "lots"], "128MiB"),
        (&["run", "x.wasm", "--dir", "nodelimiter"], "HOST::GUEST"),
        (&["frobnicate"], "unrecognized subcommand"),
        (&["inspect"], "<COMPONENT>"),
    ];
    for (args, needle) in cases {
        let out = run(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn host_environment_never_reaches_the_guest() {
    let canary = "airlock-canary-7f3a";
    let policies = permit_all();
    let out = airlock(&[
        "--policies",
        &policies,
        "run",
        guest_path("env-snoop"),
        "--input",
        "{}",
    ])
    .env("AIRLOCK_TEST_CANARY", canary)
    .output()
    .expect("run");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let seen = json_of(&out);
    assert_eq!(seen["env"], json!([]));
    assert!(!stdout(&out).contains(canary));
}

#[test]
fn dir_flags_grant_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("note.txt"), "granted").expect("write");
    let grant = format!("{}::/data", dir.path().display());
    let input = r#"{"read": ["/data/note.txt"], "write": ["/data/out.txt"]}"#;

    let policies = permit_all();
    let out = run(&[
        "--policies",
        &policies,
        "run",
        guest_path("env-snoop"),
        "--dir",
        &grant,
        "--input",
        input,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let seen = json_of(&out);
    assert_eq!(seen["reads"]["/data/note.txt"], json!({"ok": "granted"}));
    assert!(
        seen["writes"]["/data/out.txt"].get("error").is_some(),
        "--dir is read-only"
    );

    let out = run(&[
        "--policies",
        &policies,
        "run",
        guest_path("env-snoop"),
        "--dir-rw",
        &grant,
        "--input",
        input,
    ]);
    assert_eq!(
        json_of(&out)["writes"]["/data/out.txt"],
        json!({"ok": true})
    );

    let out = run(&["run", guest_path("echo"), "--dir", &grant, "--input", "{}"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("`files` or `network-files` world"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn inspect_classifies_every_guest() {
    let table = airlock_tests::fixtures::guest_table();
    for spec in &table.guest {
        let out = run(&["inspect", "--json", guest_path(&spec.name)]);
        assert_eq!(code(&out), 0, "{}: {}", spec.name, stderr(&out));
        let info = json_of(&out);
        assert_eq!(info["world"], spec.world.as_str(), "{}", spec.name);
        assert_eq!(
            info["capabilities"],
            json!(spec.capabilities),
            "{}",
            spec.name
        );
        assert_eq!(info["descriptor"]["name"], spec.name.as_str());
        let bytes = std::fs::read(guest_path(&spec.name)).expect("guest");
        assert_eq!(info["sha256"], airlock::Sha256Digest::of(&bytes).to_hex());
        assert_eq!(info["size"], bytes.len());
        assert!(
            info["exports"]
                .as_array()
                .expect("exports")
                .contains(&json!("airlock:tool/tool@0.1.0"))
        );
        assert!(!info["imports"].as_array().expect("imports").is_empty());
    }

    let text = run(&["inspect", guest_path("http-get")]);
    let text = stdout(&text);
    assert!(text.contains("world         network"), "{text}");
    assert!(text.contains("wasi:http/outgoing-handler@0.2.12"), "{text}");
    assert!(
        text.contains("every request goes through the egress policy"),
        "{text}"
    );
}

/// `script` gives the command a terminal, where progress is shown.
fn on_a_terminal(command: &str) -> String {
    let out = std::process::Command::new("script")
        .args(["-qefc", command, "/dev/null"])
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .output()
        .expect("run script (util-linux)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A Python component (tens of megabytes, the full WASI import set):
/// compiled once with a progress indicator on a terminal, then taken from
/// the cache; shown in the world it runs in, with why it is not `files`.
#[test]
fn a_large_python_component_inspects_honestly_and_compiles_once() {
    let state = tempfile::tempdir().expect("tempdir");
    let python = airlock_tests::kits::kit("python", "echo");
    let command = format!(
        "{} inspect --state-dir {} {}",
        env!("CARGO_BIN_EXE_airlock"),
        state.path().display(),
        python.path.display()
    );
    let first = on_a_terminal(&command);
    assert!(first.contains("compiling component ("), "{first}");
    assert!(
        first.contains(
            "world         pure (files once directories are granted: it imports wasi:filesystem)"
        ),
        "{first}"
    );
    assert!(first.contains("capabilities  (none)"), "{first}");
    assert!(
        first.contains("none unless an operator grants some"),
        "{first}"
    );
    assert!(first.contains("not used by airlock"), "{first}");
    let second = on_a_terminal(&command);
    assert!(!second.contains("compiling component"), "{second}");
    assert!(second.contains("tool          echo 0.1.0"), "{second}");
}

#[test]
fn inspect_and_run_refuse_bad_components_with_their_exit_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, case) in bad_components().case.iter().enumerate() {
        let path = dir.path().join(format!("case-{i}.wasm"));
        std::fs::write(&path, case.bytes()).expect("write case");
        let path = path.to_str().expect("utf-8");

        let out = run(&["inspect", path]);
        assert_eq!(
            code(&out),
            i32::from(case.exit),
            "{}: {}",
            case.name,
            stderr(&out)
        );
        let all = format!("{}{}", stdout(&out), stderr(&out));
        for fragment in &case.message {
            assert!(
                all.contains(fragment.as_str()),
                "{}: lacks {fragment:?}: {all}",
                case.name
            );
        }

        let out = run(&["run", "--json", path, "--input", "{}"]);
        assert_eq!(code(&out), i32::from(case.exit), "{}", case.name);
        assert_eq!(json_of(&out)["code"], case.code.as_str(), "{}", case.name);
    }
}

#[test]
fn limit_flags_bound_the_run_not_the_load() {
    // echo's initial memory alone is over 64 KiB: the run, not the load, fails.
    let out = run(&[
        "run",
        "--json",
        guest_path("echo"),
        "--input",
        "{}",
        "--memory",
        "64KiB",
    ]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert_eq!(json_of(&out)["code"], "memory_limit");
}

fn example_config() -> String {
    airlock_tests::fixtures::fixtures_dir()
        .join("configs/egress-example.toml")
        .display()
        .to_string()
}

#[test]
fn egress_check_explains_decisions_without_connecting() {
    let config = example_config();
    let check = |url: &str, resolve: &[&str]| {
        let mut args = vec![
            "egress", "check", "--config", &config, "--tool", "weather", "--no-dns",
        ];
        for r in resolve {
            args.extend(["--resolve", r]);
        }
        args.push(url);
        let out = run(&args);
        (code(&out), json_of(&out))
    };
    let (exit, allowed) = check(
        "https://API.weather.example./v1?q=lisbon",
        &["api.weather.example=93.184.216.34"],
    );
    assert_eq!(exit, 0);
    assert_eq!(allowed["decision"], "allow");
    assert_eq!(allowed["reason"], Value::Null);
    assert_eq!(allowed["host"], "api.weather.example");
    assert_eq!(allowed["port"], 443);
    assert_eq!(allowed["addresses"], json!(["93.184.216.34"]));
    assert!(
        allowed["rule"]
            .as_str()
            .is_some_and(|r| r.contains("egress-example.toml:16")),
        "{allowed}"
    );

    let cases: &[(&str, &[&str], &str)] = &[
        (
            "http://api.weather.example/",
            &["api.weather.example=93.184.216.34"],
            "scheme_not_allowed",
        ),
        (
            "https://api.weather.example/",
            &["api.weather.example=169.254.169.254"],
            "metadata_address",
        ),
        (
            "https://api.weather.example/",
            &["api.weather.example=93.184.216.34,10.1.2.3"],
            "private_address",
        ),
        ("https://api.weather.example/", &[], "dns_failed"),
        ("https://a.b.tiles.example.org/", &[], "host_not_allowed"),
        ("https://cdn.example.net:8445/", &[], "port_not_allowed"),
        (
            "https://user@api.weather.example/",
            &[],
            "userinfo_not_allowed",
        ),
        ("gopher://api.weather.example/", &[], "scheme_not_allowed"),
    ];
    for (url, resolve, reason) in cases {
        let (exit, denied) = check(url, resolve);
        assert_eq!(exit, 3, "{url}: {denied}");
        assert_eq!(denied["decision"], "deny", "{url}");
        assert_eq!(denied["reason"], *reason, "{url}: {denied}");
        assert!(denied["message"].as_str().is_some_and(|m| !m.is_empty()));
    }

    let (exit, internal) = check(
        "http://geo.internal.example:8080/",
        &["geo.internal.example=10.0.0.5"],
    );
    assert_eq!(
        (exit, &internal["decision"]),
        (0, &json!("allow")),
        "{internal}"
    );
    let (exit, tile) = check(
        "https://a.tiles.example.org/",
        &["a.tiles.example.org=2606:4700::1"],
    );
    assert_eq!(
        (exit, &tile["addresses"]),
        (0, &json!(["2606:4700::1"])),
        "{tile}"
    );

    // Without a grant, nothing is reachable.
    let out = run(&[
        "egress",
        "check",
        "--no-dns",
        "https://api.weather.example/",
    ]);
    assert_eq!(
        (code(&out), json_of(&out)["reason"].clone()),
        (3, json!("host_not_allowed"))
    );
}

#[test]
fn egress_check_runs_cedar_as_the_run_would() {
    let config = example_config();
    let policies = tempfile::tempdir().expect("policies");
    std::fs::write(
        policies.path().join("default.cedar"),
        airlock::policy::DEFAULT_POLICIES,
    )
    .expect("defaults");
    std::fs::write(
        policies.path().join("no-weather-for-bots.cedar"),
        "@id(\"no-weather-for-bots\")\n\
         forbid (principal == Airlock::Agent::\"bot\", action == Airlock::Action::\"http.request\", resource)\n\
         when { resource.host == \"api.weather.example\" };\n",
    )
    .expect("policy");
    let policies = policies.path().display().to_string();
    let check = |principal: &str| {
        let out = run(&[
            "--policies",
            &policies,
            "egress",
            "check",
            "--config",
            &config,
            "--tool",
            "weather",
            "--principal",
            principal,
            "--resolve",
            "api.weather.example=93.184.216.34",
            "--no-dns",
            "https://api.weather.example/v1",
        ]);
        (code(&out), json_of(&out), stderr(&out))
    };
    let (exit, refused, note) = check("Agent::\"bot\"");
    assert_eq!(exit, 3, "{refused}");
    assert_eq!(refused["reason"], "policy_denied", "{refused}");
    assert!(
        refused["rule"]
            .as_str()
            .is_some_and(|r| r.contains("no-weather-for-bots")),
        "{refused}"
    );
    assert_eq!(refused["principal"], "Agent::\"bot\"");
    assert_eq!(refused["tool"], "weather");
    // The example's component is not there: the note says what Cedar saw.
    assert!(note.contains("did not load"), "{note}");
    let (exit, allowed, _) = check("Agent::\"claude\"");
    assert_eq!(
        (exit, &allowed["decision"]),
        (0, &json!("allow")),
        "{allowed}"
    );
}

#[test]
fn invalid_grants_name_the_file_line_and_fix() {
    let dir = airlock_tests::fixtures::fixtures_dir().join("configs/invalid");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("invalid configs") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} starts with `# expect: `", path.display()));
        let path_text = path.display().to_string();
        let out = run(&[
            "egress",
            "check",
            "--grant",
            &path_text,
            "--no-dns",
            "http://x.test/",
        ]);
        assert_eq!(code(&out), 2, "{path_text}: {}", stderr(&out));
        let message = stderr(&out);
        let mut fragments = expect.split(" | ");
        let location = fragments.next().expect("location");
        assert!(
            message.contains(&format!("{path_text}:{location}")),
            "{path_text}: {message}"
        );
        for fragment in fragments {
            assert!(
                message.contains(fragment),
                "{path_text}: lacks {fragment:?}: {message}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} invalid configs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reaches_exactly_what_the_grant_allows() {
    use airlock_tests::net::{Behaviour, TestServer};
    let server = TestServer::start(std::net::Ipv4Addr::new(127, 0, 0, 2), 0, Behaviour::Echo)
        .await
        .expect("server");
    let port = server.addr().port();
    let dir = tempfile::tempdir().expect("tempdir");
    let grant = dir.path().join("grant.toml");
    std::fs::write(
        &grant,
        format!("[[allow]]\nhost = \"svc.test\"\nprivate = true\nports = [{port}]\n"),
    )
    .expect("grant");
    let config = dir.path().join("airlock.toml");
    std::fs::write(
        &config,
        format!(
            "[[tools]]\nname = \"fetch\"\ncomponent = {:?}\n[[tools.network.allow]]\nhost = \"svc.test\"\nprivate = true\nports = [{port}]\n",
            guest_path("http-get")
        ),
    )
    .expect("config");
    let input = json!({"url": format!("http://svc.test:{port}/cli")}).to_string();
    let (grant, config) = (grant.display().to_string(), config.display().to_string());
    let policies = permit_all();

    let runs = tokio::task::spawn_blocking(move || {
        let resolve = [
            "--policies",
            &policies,
            "--resolve",
            "svc.test=127.0.0.2",
            "--no-dns",
            "--json",
            "--input",
            &input,
        ];
        let with_grant = run(&[
            &["run", guest_path("http-get"), "--grant", &grant][..],
            &resolve,
        ]
        .concat());
        let with_config = run(&[
            &["run", "--config", &config, "--tool", "fetch"][..],
            &resolve,
        ]
        .concat());
        let without = run(&[&["run", guest_path("http-get")][..], &resolve].concat());
        (with_grant, with_config, without)
    })
    .await
    .expect("runs");

    for out in [&runs.0, &runs.1] {
        assert_eq!(code(out), 0, "{}", stderr(out));
        let result = json_of(out);
        assert_eq!(result["output"]["status"], 200);
        let record = &result["report"]["egress"][0];
        assert_eq!(record["decision"], "allow");
        assert_eq!(record["connected"], server.addr().to_string());
        assert_eq!(record["status"], 200);
    }
    assert_eq!(server.requests().len(), 2);

    assert_eq!(code(&runs.2), 1);
    let denied = json_of(&runs.2);
    assert_eq!(denied["code"], "tool_denied");
    assert_eq!(denied["report"]["egress"][0]["reason"], "host_not_allowed");
    assert_eq!(
        server.requests().len(),
        2,
        "nothing reached the server without a grant"
    );
}
