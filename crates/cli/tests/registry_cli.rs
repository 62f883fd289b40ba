//! Components from a real OCI registry (Debian's `docker-registry` on
//! loopback, components pushed with `oras` from PyPI): `airlock pull`,
//! `run` and `inspect` with `oci://` references, a tool configured with
//! one, the content store that keeps working with the registry down, and
//! the refusals: a corrupted layer, an artifact that is not a component, a
//! tag that moved.

mod common;

use airlock::oci::Digest;
use airlock_tests::guest_path;
use airlock_tests::registry::{TestRegistry, WASM_LAYER};
use common::{attestations, code, in_state, json_of, stderr, stdout};
use serde_json::Value;
use std::path::Path;

fn echo() -> &'static Path {
    Path::new(guest_path("echo"))
}

fn component_digest(path: &Path) -> Digest {
    Digest::of(&std::fs::read(path).expect("read the component"))
}

fn pull(state: &Path, reference: &str) -> Value {
    let out = in_state(state, &["pull", "--json", reference]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    json_of(&out)
}

fn last_attestation(state: &Path) -> Value {
    attestations(state)
        .pop()
        .expect("an attestation in the journal")
}

#[test]
fn pulls_by_digest_runs_inspects_and_attests_the_source() {
    let registry = TestRegistry::start();
    let manifest = registry.push("tools/echo:1.0", echo());
    let state = tempfile::tempdir().expect("state");
    let reference = registry.reference("tools/echo:1.0");
    let pinned = format!("{reference}@{manifest}");

    let pulled = pull(state.path(), &reference);
    assert_eq!(pulled["manifest"], manifest.as_str());
    assert_eq!(pulled["reference"], pinned.as_str());
    assert_eq!(pulled["resolved"], "registry");
    assert_eq!(pulled["component_sha256"], component_digest(echo()).hex());

    let out = in_state(state.path(), &["run", &reference, "--input", r#"{"n":1}"#]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), r#"{"n":1}"#);
    let attestation = last_attestation(state.path());
    assert_eq!(attestation["source"], pinned.as_str());
    assert_eq!(attestation["tool_sha256"], component_digest(echo()).hex());

    let out = in_state(state.path(), &["inspect", "--json", &reference]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let inspected = json_of(&out);
    assert_eq!(inspected["source"], pinned.as_str());
    assert_eq!(inspected["manifest"], manifest.as_str());

    // A tool configured with the reference loads the same bytes.
    let config = state.path().join("airlock.toml");
    std::fs::write(
        &config,
        format!("[[tools]]\nname = \"echo\"\ncomponent = \"{reference}\"\n"),
    )
    .expect("write the config");
    let config = config.display().to_string();
    let out = in_state(
        state.path(),
        &[
            "run", "--config", &config, "--tool", "echo", "--input", "[2]",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "[2]");
    assert_eq!(last_attestation(state.path())["source"], pinned.as_str());
}

#[test]
fn a_pulled_component_runs_with_the_registry_down() {
    let mut registry = TestRegistry::start();
    let manifest = registry.push("tools/echo:1.0", echo());
    let state = tempfile::tempdir().expect("state");
    let reference = registry.reference("tools/echo:1.0");
    pull(state.path(), &reference);
    registry.stop();

    for by in [reference.clone(), format!("{reference}@{manifest}")] {
        let out = in_state(state.path(), &["run", &by, "--input", "[3]"]);
        assert_eq!(code(&out), 0, "{by}: {}", stderr(&out));
        assert_eq!(stdout(&out).trim(), "[3]");
    }
    let offline = pull(state.path(), &reference);
    assert_eq!(offline["resolved"], "offline");
    assert_eq!(offline["manifest"], manifest.as_str());

    // A tag never pulled has nothing to fall back on.
    let out = in_state(
        state.path(),
        &["pull", "--json", &registry.reference("tools/echo:2.0")],
    );
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    assert_eq!(json_of(&out)["code"], "registry_unreachable");
}

#[test]
fn a_corrupted_layer_is_refused_and_nothing_is_kept() {
    let registry = TestRegistry::start();
    registry.push("tools/echo:1.0", echo());
    let layer = component_digest(echo());
    registry.corrupt_blob(
        &layer.to_string(),
        b"\0asm but not the component that was signed",
    );
    let state = tempfile::tempdir().expect("state");

    let reference = registry.reference("tools/echo:1.0");
    let out = in_state(state.path(), &["run", &reference, "--input", "[1]"]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("digest_mismatch") && err.contains(&layer.to_string()),
        "{err}"
    );
    let stored = state.path().join("oci/blobs/sha256").join(layer.hex());
    assert!(!stored.exists(), "the corrupted layer was stored");
    let journal = in_state(state.path(), &["journal", "tail", "--json"]);
    assert!(
        !stdout(&journal).contains("\"attestation\""),
        "nothing may have run: {}",
        stdout(&journal)
    );
}

#[test]
fn artifacts_that_are_not_components_are_refused_by_name() {
    let registry = TestRegistry::start();
    registry.push_as(
        "images/app:1",
        echo(),
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.config.v1+json",
    );
    registry.push_as(
        "tools/odd:1",
        echo(),
        "text/plain",
        airlock_tests::registry::WASM_CONFIG,
    );
    let state = tempfile::tempdir().expect("state");
    for (repo_tag, want) in [
        ("images/app:1", "not a WASI component"),
        ("tools/odd:1", "does not carry a component"),
    ] {
        let out = in_state(
            state.path(),
            &["pull", "--json", &registry.reference(repo_tag)],
        );
        assert_eq!(code(&out), 2, "{}", stdout(&out));
        let error = json_of(&out);
        assert_eq!(error["code"], "not_a_component_artifact", "{error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(want),
            "{error}"
        );
    }
    // The layer type is checked before the layer is fetched.
    assert!(
        !state
            .path()
            .join("oci/blobs/sha256")
            .join(component_digest(echo()).hex())
            .exists()
    );
    assert_eq!(WASM_LAYER, airlock::oci::layout::LAYER_MEDIA_TYPE);
}

#[test]
fn a_tag_that_moved_is_reported() {
    let registry = TestRegistry::start();
    let first = registry.push("tools/t:1", echo());
    let state = tempfile::tempdir().expect("state");
    let reference = registry.reference("tools/t:1");
    assert_eq!(pull(state.path(), &reference)["moved_from"], Value::Null);

    let second = registry.push("tools/t:1", Path::new(guest_path("json-transform")));
    assert_ne!(first, second);
    let moved = pull(state.path(), &reference);
    assert_eq!(moved["manifest"], second.as_str());
    assert_eq!(moved["moved_from"], first.as_str());

    registry.push("tools/t:1", echo());
    let out = in_state(state.path(), &["pull", &reference]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("the tag moved: it named {second}")),
        "{text}"
    );
}

#[test]
fn policies_see_where_a_component_came_from() {
    let registry = TestRegistry::start();
    registry.push("tools/echo:1.0", echo());
    let state = tempfile::tempdir().expect("state");
    let policies = state.path().join("policies");
    std::fs::create_dir(&policies).expect("policies dir");
    std::fs::copy(
        airlock_tests::permit_all_dir().join("permit-all.cedar"),
        policies.join("permit-all.cedar"),
    )
    .expect("copy permit-all");
    let only_from = format!("oci://{}/tools/*", registry.address());
    std::fs::write(
        policies.join("registry-only.cedar"),
        format!(
            "@id(\"registry-only\")\nforbid (principal, action == Airlock::Action::\"tool.execute\", resource)\nunless {{ resource has source && resource.source like \"{only_from}\" }};\n"
        ),
    )
    .expect("write the policy");
    let policies = policies.display().to_string();
    let run = |component: &str| {
        in_state(
            state.path(),
            &["--policies", &policies, "run", component, "--input", "[1]"],
        )
    };
    let out = run(&registry.reference("tools/echo:1.0"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(guest_path("echo"));
    assert_eq!(
        code(&out),
        3,
        "a local file has no source: {}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("registry-only"), "{}", stderr(&out));
}

fn write_config(dir: &Path, tools: &[(&str, &str)]) -> String {
    let config = dir.join("airlock.toml");
    let text: String = tools
        .iter()
        .map(|(name, reference)| {
            format!("[[tools]]\nname = \"{name}\"\ncomponent = \"{reference}\"\n")
        })
        .collect();
    std::fs::write(&config, text).expect("write the config");
    config.display().to_string()
}

#[test]
fn a_lockfile_pins_the_digest_and_moves_only_when_asked() {
    let mut registry = TestRegistry::start();
    let first = registry.push("tools/echo:1.0", echo());
    let work = tempfile::tempdir().expect("work");
    let state = work.path().join("state");
    let reference = registry.reference("tools/echo:1.0");
    let config = write_config(work.path(), &[("echo", &reference)]);

    let out = in_state(&state, &["lock", "--config", &config, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let locked = json_of(&out);
    assert_eq!(locked["tools"][0]["change"], "added", "{locked}");
    assert_eq!(locked["tools"][0]["digest"], first.as_str());
    let lockfile = std::fs::read_to_string(work.path().join("airlock.lock")).expect("airlock.lock");
    assert!(
        lockfile.contains(&first) && lockfile.contains(&component_digest(echo()).to_string()),
        "{lockfile}"
    );

    // The tag moves; the lock does not follow it: a state directory that
    // never saw the tag loads the pinned digest from the registry...
    let second = registry.push("tools/echo:1.0", Path::new(guest_path("json-transform")));
    let fresh = work.path().join("fresh-state");
    let records = r#"{"records":[]}"#;
    let out = in_state(
        &fresh,
        &[
            "run", "--config", &config, "--tool", "echo", "--locked", "--input", records,
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        records,
        "the pinned component ran, not the moved tag"
    );
    // ...and one that pulled it loads it with the registry down.
    registry.stop();
    // echo answers its input as it is; json-transform adds a count.
    let out = in_state(
        &state,
        &[
            "run", "--config", &config, "--tool", "echo", "--locked", "--input", records,
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), records, "the locked component ran");
    assert_eq!(
        last_attestation(&state)["source"],
        format!("{reference}@{first}")
    );
    registry.restart();

    let out = in_state(&state, &["lock", "--config", &config, "--json"]);
    assert_eq!(
        json_of(&out)["tools"][0]["change"],
        "kept",
        "{}",
        stdout(&out)
    );
    let out = in_state(&state, &["lock", "--config", &config, "--update", "echo"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("~ echo  {reference}  {first} -> {second}")),
        "{text}"
    );
    let out = in_state(
        &state,
        &[
            "run", "--config", &config, "--tool", "echo", "--locked", "--input", records,
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains(r#""count":0"#),
        "the new pin ran: {}",
        stdout(&out)
    );
    assert_eq!(
        last_attestation(&state)["source"],
        format!("{reference}@{second}")
    );
}

#[test]
fn locked_refuses_tools_the_lockfile_does_not_pin() {
    let registry = TestRegistry::start();
    registry.push("tools/echo:1.0", echo());
    registry.push("tools/echo:2.0", echo());
    let work = tempfile::tempdir().expect("work");
    let state = work.path().join("state");
    let echo_ref = registry.reference("tools/echo:1.0");
    let config = write_config(work.path(), &[("echo", &echo_ref)]);
    let run_locked = |config: &str| {
        in_state(
            &state,
            &[
                "run", "--config", config, "--tool", "echo", "--locked", "--json", "--input", "[1]",
            ],
        )
    };

    let out = run_locked(&config);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    assert_eq!(json_of(&out)["code"], "no_lockfile");

    let out = in_state(&state, &["lock", "--config", &config]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(code(&run_locked(&config)), 0);

    // A tool added (or a reference changed) after locking is not pinned.
    let config = write_config(
        work.path(),
        &[
            ("echo", &echo_ref),
            ("other", &registry.reference("tools/echo:2.0")),
        ],
    );
    let out = run_locked(&config);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    let refused = json_of(&out);
    assert_eq!(refused["code"], "not_locked");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("other (oci://") && !message.contains("echo (oci://"),
        "{message}"
    );
    let out = in_state(
        &state,
        &["serve", "--config", &config, "--locked", "--stdio"],
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("not_locked"), "{}", stderr(&out));
    // Without --locked it runs; the unpinned tool resolves its tag.
    let out = in_state(
        &state,
        &[
            "run", "--config", &config, "--tool", "other", "--input", "[1]",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}
