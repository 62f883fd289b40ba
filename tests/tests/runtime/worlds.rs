//! Toolchains add WASI imports a tool never asked for (Python, C and Go
//! runtimes all import `wasi:filesystem`): they are linked with nothing
//! granted, and a tool is `files` - sensitive, with filesystem capabilities -
//! only once an operator grants it a directory.

use airlock::{DirAccess, DirGrant, Grants, Invocation};
use airlock_tests::host;
use serde_json::Value;

#[tokio::test]
async fn filesystem_imports_make_a_files_tool_only_with_a_directory_grant() {
    for lang in ["python", "c", "go"] {
        let kit = airlock_tests::kits::kit(lang, "env-snoop");
        let path = kit.path.as_path();
        let info = airlock::inspect(&std::fs::read(path).expect("component")).expect("inspects");
        assert!(
            info.imports
                .iter()
                .any(|i| i.name.starts_with("wasi:filesystem/preopens")),
            "{lang}: the fixture imports preopens"
        );

        let plain = host().load(path, Grants::none()).await.expect("loads");
        assert_eq!(plain.world(), airlock::World::Pure, "{lang}");
        assert!(plain.facts().capabilities.is_empty(), "{lang}");
        assert!(!plain.facts().sensitive, "{lang}");

        let data = tempfile::tempdir().expect("tempdir");
        std::fs::write(data.path().join("note.txt"), "granted").expect("write");
        let grants =
            Grants::none().with_dir(DirGrant::new(data.path(), "/data", DirAccess::ReadOnly));
        let granted = host().load(path, grants).await.expect("loads");
        assert_eq!(granted.world(), airlock::World::Files, "{lang}");
        assert!(granted.facts().sensitive, "{lang}");
        let outcome = host()
            .invoke(&granted, Invocation::new("{}"))
            .await
            .expect("runs");
        let report: Value = serde_json::from_str(outcome.output().expect("output")).expect("JSON");
        assert_eq!(report["preopens"], serde_json::json!(["/data"]), "{lang}");
    }
}

#[test]
fn worlds_narrow_without_directories_and_never_widen() {
    use airlock::World::*;
    for world in airlock::World::COMPONENTS {
        assert_eq!(world.with_directories(true), world);
        let narrowed = world.with_directories(false);
        assert!(!narrowed.uses_filesystem(), "{world}");
        assert_eq!(narrowed.uses_network(), world.uses_network(), "{world}");
    }
    assert_eq!(Files.with_directories(false), Pure);
    assert_eq!(NetworkFiles.with_directories(false), Network);
}
