//! The language kits (`guests/<lang>/<tool>`, listed in `guests/kits.toml`),
//! built on first use with `guests/build`, the script `airlock new` projects
//! use too. Built here rather than by `tests/artifacts`' build script, so that
//! compiling airlock (and running its demo) never needs the Python, Node, C
//! or Go toolchains; the tests that use a kit need them
//! (`guests/toolchains/install`, which the README's test command runs).
//!
//! A component is rebuilt only when its sources, the WIT, the build script or
//! the toolchain pins changed: the key of each build is kept beside it, and a
//! file lock keeps concurrent test processes from building one twice.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock, PoisonError};

/// One tool of one language kit, built.
#[derive(Clone, Debug)]
pub struct KitGuest {
    /// `python`, `js`, `c` or `go`.
    pub lang: String,
    /// The tool, as in `guests/kits.toml` (`echo`, `http-get`, ...).
    pub tool: String,
    /// The world it is built against.
    pub world: String,
    /// The component.
    pub path: PathBuf,
}

#[derive(Deserialize)]
struct Kits {
    languages: Vec<String>,
    tools: BTreeMap<String, String>,
}

fn kits() -> &'static Kits {
    static KITS: OnceLock<Kits> = OnceLock::new();
    KITS.get_or_init(|| {
        let path = crate::workspace_root().join("guests/kits.toml");
        let text = fs::read_to_string(&path).expect("guests/kits.toml");
        toml::from_str(&text).expect("guests/kits.toml parses")
    })
}

/// The kit languages, in `guests/kits.toml` order.
pub fn languages() -> Vec<&'static str> {
    kits().languages.iter().map(String::as_str).collect()
}

/// The kit tools, in name order.
pub fn tools() -> Vec<&'static str> {
    kits().tools.keys().map(String::as_str).collect()
}

fn out_dir() -> PathBuf {
    crate::workspace_root().join("target/guests")
}

fn unbuilt(lang: &str, tool: &str) -> KitGuest {
    let world = kits()
        .tools
        .get(tool)
        .unwrap_or_else(|| panic!("guests/kits.toml has no tool `{tool}`"));
    assert!(
        kits().languages.iter().any(|l| l == lang),
        "guests/kits.toml has no language `{lang}`"
    );
    KitGuest {
        lang: lang.to_string(),
        tool: tool.to_string(),
        world: world.clone(),
        path: out_dir().join(lang).join(format!("{tool}.wasm")),
    }
}

/// `lang`'s build of `tool`, built now if it is missing or stale.
pub fn kit(lang: &str, tool: &str) -> KitGuest {
    let guest = unbuilt(lang, tool);
    build(&guest).unwrap_or_else(|e| panic!("{e}"));
    guest
}

/// Every kit guest, built (two at a time) on the first call.
pub fn all() -> &'static [KitGuest] {
    static ALL: OnceLock<Vec<KitGuest>> = OnceLock::new();
    ALL.get_or_init(|| {
        let guests: Vec<KitGuest> = kits()
            .languages
            .iter()
            .flat_map(|lang| kits().tools.keys().map(move |tool| unbuilt(lang, tool)))
            .collect();
        let pending = Mutex::new(guests.iter().collect::<Vec<_>>());
        let failures = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    loop {
                        let next = pending.lock().unwrap_or_else(PoisonError::into_inner).pop();
                        let Some(guest) = next else { break };
                        if let Err(e) = build(guest) {
                            failures
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .push(e);
                        }
                    }
                });
            }
        });
        let failures = failures
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
        guests
    })
}

fn build(guest: &KitGuest) -> Result<(), String> {
    let root = crate::workspace_root();
    let src = root.join("guests").join(&guest.lang).join(&guest.tool);
    let key = build_key(&root, &src, &guest.world);
    let key_file = guest.path.with_extension("key");
    let fresh = || {
        guest.path.exists() && fs::read_to_string(&key_file).ok().as_deref() == Some(key.as_str())
    };
    if fresh() {
        return Ok(());
    }
    let dir = guest.path.parent().expect("has a parent");
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let lock = fs::File::create(guest.path.with_extension("lock")).map_err(|e| e.to_string())?;
    lock.lock().map_err(|e| e.to_string())?;
    if fresh() {
        return Ok(());
    }
    let partial = guest.path.with_extension("partial.wasm");
    let output = Command::new(root.join("guests/build"))
        .args(["--lang", &guest.lang, "--world", &guest.world, "--src"])
        .arg(&src)
        .arg("--wit")
        .arg(root.join("wit"))
        .arg("--out")
        .arg(&partial)
        .output()
        .map_err(|e| {
            format!(
                "{}/{}: cannot run guests/build: {e}",
                guest.lang, guest.tool
            )
        })?;
    if !output.status.success() {
        return Err(format!(
            "{}/{}: guests/build failed ({}). Install the toolchains with \
             `guests/toolchains/install` (the README's test command does).\n{}",
            guest.lang,
            guest.tool,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    fs::rename(&partial, &guest.path).map_err(|e| e.to_string())?;
    fs::write(&key_file, key).map_err(|e| e.to_string())
}

/// What a build depends on: the tool's files, the WIT, the build script and
/// the toolchain pins (guests/toolchains).
fn build_key(root: &Path, src: &Path, world: &str) -> String {
    let mut hasher = DefaultHasher::new();
    world.hash(&mut hasher);
    for dir in [
        src.to_path_buf(),
        root.join("wit"),
        root.join("guests/toolchains"),
    ] {
        hash_tree(&dir, &mut hasher);
    }
    fs::read(root.join("guests/build"))
        .unwrap_or_default()
        .hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

fn hash_tree(dir: &Path, hasher: &mut DefaultHasher) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path
            .file_name()
            .is_some_and(|n| n == "target" || n == "node_modules" || n == "__pycache__")
        {
            continue;
        }
        path.file_name().hash(hasher);
        if path.is_dir() {
            hash_tree(&path, hasher);
        } else {
            fs::read(&path).unwrap_or_default().hash(hasher);
        }
    }
}
