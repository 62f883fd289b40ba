//! Every file in `fixtures/runtime/bad_components.toml` is refused with its
//! own reason code and a message that says what is wrong, by static
//! inspection and by loading alike.

use airlock::Grants;
use airlock_tests::fixtures::bad_components;
use airlock_tests::host;

#[tokio::test]
async fn bad_components_are_refused_with_their_own_reason() {
    let table = bad_components();
    let mut codes = std::collections::BTreeSet::new();
    for case in &table.case {
        let bytes = case.bytes();
        let load = host()
            .load(bytes.clone(), Grants::none())
            .await
            .expect_err(&format!("{}: must not load", case.name));
        assert_eq!(load.code(), case.code, "{}: {load}", case.name);
        assert_eq!(load.exit_code(), case.exit, "{}: exit code", case.name);
        let message = load.to_string();
        for fragment in &case.message {
            assert!(
                message.contains(fragment.as_str()),
                "{}: message lacks {fragment:?}: {message}",
                case.name
            );
        }
        // Static inspection refuses the same files, except those only
        // linking can judge.
        match airlock::inspect(&bytes) {
            Err(e) => assert_eq!(e.code(), case.code, "{}: inspect", case.name),
            Ok(_) => assert_eq!(
                case.code, "link_failed",
                "{}: inspect accepted it",
                case.name
            ),
        }
        codes.insert(case.code.as_str());
    }
    for code in [
        "not_wasm",
        "malformed_component",
        "core_module",
        "forbidden_import",
        "missing_tool_export",
        "link_failed",
    ] {
        assert!(codes.contains(code), "the table has no case for `{code}`");
    }
}

#[tokio::test]
async fn unreadable_file_names_the_path() {
    let missing = std::path::Path::new("/nonexistent/airlock/tool.wasm");
    let err = host()
        .load(missing, Grants::none())
        .await
        .expect_err("missing file");
    assert_eq!(err.code(), "read_failed");
    assert!(
        err.to_string().contains("/nonexistent/airlock/tool.wasm"),
        "{err}"
    );
}

#[tokio::test]
async fn oversized_files_are_refused_without_reading_them_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("huge.wasm");
    let file = std::fs::File::create(&path).expect("create");
    // Sparse: costs no disk space.
    file.set_len(airlock::MAX_COMPONENT_BYTES + 1)
        .expect("grow");
    let err = host()
        .load(path.as_path(), Grants::none())
        .await
        .expect_err("too large");
    assert_eq!(err.code(), "component_too_large", "{err}");
    assert_eq!(err.exit_code(), airlock::exit_code::USAGE);
}
