//! Escapes from WASI directory grants, as data: every case of
//! `fixtures/security/wasi_fs_escapes.toml` (symlinks, `..`, trailing
//! slashes; the class of RUSTSEC-2026-0269) run by the `fs-escape` guest
//! against a fresh grant with a canary beside it. Each step must fail or
//! succeed as the table says, the canary's text and name never reach the
//! guest, and nothing outside the grant changes.

use airlock::{DirAccess, DirGrant, Grants, Invocation};
use airlock_tests::fixtures::fixtures_dir;
use airlock_tests::{host, load_guest_with};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    access: Access,
    #[serde(default)]
    layout: Vec<Entry>,
    steps: Vec<toml::Table>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Access {
    ReadOnly,
    ReadWrite,
}

/// One thing the host puts in the granted directory before the run.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    file: Option<String>,
    content: Option<String>,
    dir: Option<String>,
    symlink: Option<String>,
    to: Option<String>,
}

/// What a step must do.
#[derive(Debug, PartialEq)]
enum Expect {
    Error,
    /// Succeed, with this result if given.
    Ok(Option<Value>),
    Any,
}

/// A fresh grant with its outside neighbour.
struct Scene {
    _root: tempfile::TempDir,
    root: PathBuf,
    granted: PathBuf,
    outside: PathBuf,
    canary_text: String,
    canary_name: String,
}

impl Scene {
    fn new() -> Self {
        let root_dir = tempfile::tempdir().expect("tempdir");
        let root = root_dir.path().canonicalize().expect("canonical tempdir");
        let granted = root.join("granted");
        let outside = root.join("outside");
        std::fs::create_dir_all(granted.join("sub")).expect("granted/sub");
        std::fs::create_dir(&outside).expect("outside");
        std::fs::write(granted.join("inside.txt"), "inside content").expect("inside.txt");
        std::fs::write(granted.join("sub/inner.txt"), "inner content").expect("inner.txt");
        let run = ulid::Ulid::new();
        let canary_text = format!("OUTSIDE-CANARY-{run}");
        let canary_name = format!("listing-canary-{run}");
        std::fs::write(outside.join("secret.txt"), &canary_text).expect("secret.txt");
        std::fs::write(outside.join(&canary_name), "").expect("named canary");
        Self {
            _root: root_dir,
            root,
            granted,
            outside,
            canary_text,
            canary_name,
        }
    }

    /// `{outside}` and `{outside_from_root}` filled in.
    fn fill(&self, text: &str) -> String {
        let outside = self.outside.display().to_string();
        text.replace("{outside_from_root}", outside.trim_start_matches('/'))
            .replace("{outside}", &outside)
    }

    fn lay_out(&self, entry: &Entry) {
        let at = |path: &str| self.granted.join(path);
        match entry {
            Entry {
                file: Some(path),
                content,
                ..
            } => std::fs::write(at(path), content.as_deref().unwrap_or_default()),
            Entry {
                dir: Some(path), ..
            } => std::fs::create_dir_all(at(path)),
            Entry {
                symlink: Some(path),
                to: Some(to),
                ..
            } => std::os::unix::fs::symlink(self.fill(to), at(path)),
            _ => panic!("a layout entry is `file`, `dir` or `symlink` + `to`"),
        }
        .expect("lay out the grant");
    }

    /// Everything under the scene's root but the grant: path to what it
    /// is (a file's content, a symlink's target, or a directory).
    fn beyond_the_grant(&self) -> BTreeMap<PathBuf, String> {
        let mut seen = BTreeMap::new();
        walk(&self.root, &self.granted, &mut seen);
        seen
    }
}

fn walk(dir: &Path, skip: &Path, seen: &mut BTreeMap<PathBuf, String>) {
    let entries = std::fs::read_dir(dir).expect("read_dir");
    for entry in entries {
        let path = entry.expect("entry").path();
        if path == skip {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).expect("metadata");
        let what = if meta.is_symlink() {
            format!("symlink to {:?}", std::fs::read_link(&path).expect("link"))
        } else if meta.is_dir() {
            walk(&path, skip, seen);
            "directory".into()
        } else {
            format!("file {:?}", std::fs::read(&path).expect("read"))
        };
        seen.insert(path, what);
    }
}

/// A step as the guest takes it, and what it must do.
fn step(scene: &Scene, mut step: toml::Table) -> (Value, Expect) {
    let expect = match step.remove("expect").as_ref().and_then(toml::Value::as_str) {
        None | Some("error") => Expect::Error,
        Some("ok") => Expect::Ok(
            step.remove("content")
                .map(|c| serde_json::to_value(c).expect("content is JSON")),
        ),
        Some("any") => Expect::Any,
        Some(other) => panic!("unknown expect `{other}`"),
    };
    for (_, value) in step.iter_mut() {
        if let toml::Value::String(text) = value {
            *text = scene.fill(text);
        }
    }
    let json = serde_json::to_value(&step).expect("a step is JSON");
    (json, expect)
}

async fn run(case: &Case) -> Vec<String> {
    let scene = Scene::new();
    for entry in &case.layout {
        scene.lay_out(entry);
    }
    let before = scene.beyond_the_grant();
    let (steps, expected): (Vec<Value>, Vec<Expect>) =
        case.steps.iter().cloned().map(|s| step(&scene, s)).unzip();
    let (access, mount) = match case.access {
        Access::ReadOnly => (DirAccess::ReadOnly, "/data"),
        Access::ReadWrite => (DirAccess::ReadWrite, "/work"),
    };
    let grants = Grants::none().with_dir(DirGrant::new(&scene.granted, mount, access));
    let tool = load_guest_with(host(), "fs-escape", grants).await;
    let input = serde_json::json!({ "steps": steps }).to_string();
    let outcome = host()
        .invoke(&tool, Invocation::new(input))
        .await
        .expect("runs");

    let mut problems = Vec::new();
    let shown = format!(
        "{:?}\n{}\n{}",
        outcome.output(),
        outcome.message().unwrap_or_default(),
        outcome.report().stderr.text
    );
    for canary in [&scene.canary_text, &scene.canary_name] {
        if shown.contains(canary.as_str()) {
            problems.push(format!("the guest saw {canary}: {shown}"));
        }
    }
    if scene.beyond_the_grant() != before {
        problems.push(format!(
            "outside the grant changed: {:?} became {:?}",
            before,
            scene.beyond_the_grant()
        ));
    }
    let Some(output) = outcome.output() else {
        problems.push(format!("the guest failed: {outcome:?}"));
        return problems;
    };
    let output: Value = serde_json::from_str(output).expect("fs-escape returns JSON");
    let results = output["steps"].as_array().cloned().unwrap_or_default();
    if results.len() != steps.len() {
        problems.push(format!(
            "{} results for {} steps",
            results.len(),
            steps.len()
        ));
    }
    for ((step, expect), result) in steps.iter().zip(&expected).zip(&results) {
        let fine = match expect {
            Expect::Any => result.get("invalid").is_none(),
            Expect::Error => result.get("error").is_some(),
            Expect::Ok(None) => result.get("ok").is_some(),
            Expect::Ok(Some(content)) => result.get("ok") == Some(content),
        };
        if !fine {
            problems.push(format!("{step}: expected {expect:?}, got {result}"));
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_escape_from_a_directory_grant_fails_closed() {
    let path = fixtures_dir().join("security/wasi_fs_escapes.toml");
    let text = std::fs::read_to_string(&path).expect("read the table");
    let table: Table = toml::from_str(&text).expect("parse the table");
    let refusals: usize = table
        .case
        .iter()
        .flat_map(|c| &c.steps)
        .filter(|s| s.get("expect").is_none_or(|e| e.as_str() == Some("error")))
        .count();
    assert!(
        table.case.len() >= 17 && refusals >= 130,
        "the table has only {} cases and {refusals} refused steps",
        table.case.len()
    );
    assert!(
        table.case.iter().any(|c| c.name.starts_with("control"))
            && table
                .case
                .iter()
                .any(|c| matches!(c.access, Access::ReadOnly))
            && table
                .case
                .iter()
                .any(|c| matches!(c.access, Access::ReadWrite)),
        "controls and both kinds of grant are covered"
    );
    let mut failures = Vec::new();
    for case in &table.case {
        for problem in run(case).await {
            failures.push(format!("{}: {problem}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
