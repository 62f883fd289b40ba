//! Builds the language kits (guests/<lang>/<tool>, listed in
//! guests/kits.toml) with guests/build, the same script `airlock new`
//! projects use. A component is rebuilt only when its sources, the WIT, the
//! build script or the toolchain pins changed: the key of each build is kept
//! beside its output.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// One tool of one language kit.
pub struct KitGuest {
    pub lang: String,
    pub tool: String,
    pub world: String,
    pub wasm: PathBuf,
}

#[derive(serde::Deserialize)]
struct Kits {
    languages: Vec<String>,
    tools: std::collections::BTreeMap<String, String>,
}

/// Builds every kit guest into `out_dir/<lang>/<tool>.wasm`, in parallel.
pub fn build(root: &Path, out_dir: &Path) -> Vec<KitGuest> {
    let kits_file = root.join("guests/kits.toml");
    let text = fs::read_to_string(&kits_file).expect("guests/kits.toml");
    let kits: Kits = toml::from_str(&text).expect("guests/kits.toml parses");
    let mut guests = Vec::new();
    for lang in &kits.languages {
        for (tool, world) in &kits.tools {
            let src = root.join("guests").join(lang).join(tool);
            assert!(
                src.is_dir(),
                "guests/kits.toml lists {lang}/{tool}, but {} is missing",
                src.display()
            );
            guests.push(KitGuest {
                lang: lang.clone(),
                tool: tool.clone(),
                world: world.clone(),
                wasm: out_dir.join(lang).join(format!("{tool}.wasm")),
            });
        }
    }

    let pending = Mutex::new(guests.iter().collect::<Vec<_>>());
    let failures = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while let Some(guest) = pending.lock().expect("queue").pop() {
                    if let Err(e) = build_one(root, guest) {
                        failures.lock().expect("failures").push(e);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().expect("failures");
    assert!(
        failures.is_empty(),
        "building the language kits failed:\n\n{}",
        failures.join("\n\n")
    );
    guests
}

fn build_one(root: &Path, guest: &KitGuest) -> Result<(), String> {
    let src = root.join("guests").join(&guest.lang).join(&guest.tool);
    let key = build_key(root, &src, &guest.world);
    let key_file = guest.wasm.with_extension("key");
    if guest.wasm.exists() && fs::read_to_string(&key_file).ok().as_deref() == Some(key.as_str()) {
        return Ok(());
    }
    fs::create_dir_all(guest.wasm.parent().expect("has a parent")).map_err(|e| e.to_string())?;
    let output = Command::new(root.join("guests/build"))
        .args(["--lang", &guest.lang, "--world", &guest.world, "--src"])
        .arg(&src)
        .arg("--wit")
        .arg(root.join("wit"))
        .arg("--out")
        .arg(&guest.wasm)
        .output()
        .map_err(|e| {
            format!(
                "{}/{}: cannot run guests/build: {e}",
                guest.lang, guest.tool
            )
        })?;
    if !output.status.success() {
        return Err(format!(
            "{}/{}: guests/build failed ({}). Install the toolchains with `guests/toolchains/install` \
             (the README's test command does).\n{}",
            guest.lang,
            guest.tool,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
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
        // Build directories of the adapter project are not inputs.
        if path
            .file_name()
            .is_some_and(|n| n == "target" || n == "node_modules")
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
