//! `fs-escape` (hostile fixture): tries to leave its directory grant through
//! `wasi:filesystem` itself, with paths passed to the host exactly as
//! written (no libc in between to tidy them).
//!
//! World `files`. Input `{"steps": [STEP, ...]}`, each step run against the
//! first preopened directory, or against the directory `base` opened from
//! it. A step is `{"op": OP, ...}`:
//!
//! - `read {path}`: open for reading, return up to 4 KiB as text;
//! - `write {path, create, truncate}`: open for writing, write a marker;
//! - `list {path}`: open as a directory, return the entry names;
//! - `stat {path}`: the type and size;
//! - `readlink {path}`, `mkdir {path}`, `unlink {path}`, `rmdir {path}`;
//! - `symlink {target, path}`: make `path` a symlink to `target`;
//! - `link {from, to}`: hard-link `from` as `to`;
//! - `rename {from, to}`.
//!
//! `follow` (default true) sets `symlink-follow` where a step takes path
//! flags. Output: `{"preopens": [...], "steps": [{"ok": ...} | {"error":
//! CODE}, ...]}`, one result per step, in order, CODE being the
//! `wasi:filesystem` error code's name (e.g. `not-permitted`).

wit_bindgen::generate!({ path: "../../wit", world: "files", generate_all });

use exports::airlock::tool::tool::{Descriptor as ToolDescriptor, Error, Guest};
use serde_json::{Value, json};
use wasi::filesystem::types::{Descriptor, DescriptorFlags, ErrorCode, OpenFlags, PathFlags};

/// Enough to recognise a file's content without copying it all out.
const READ_CAP: u64 = 4096;
/// What `write` puts in a file.
const MARKER: &[u8] = b"written by fs-escape";

struct FsEscape;

impl Guest for FsEscape {
    fn describe() -> ToolDescriptor {
        ToolDescriptor {
            name: "fs-escape".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Hostile fixture: tries symlink, `..` and trailing-slash escapes from its directory grant.".into(),
            input_schema: r#"{"type":"object","required":["steps"],"properties":{"steps":{"type":"array","items":{"type":"object","required":["op"]}}}}"#.into(),
        }
    }

    fn call(input: String) -> Result<String, Error> {
        let query: Value = serde_json::from_str(&input)
            .map_err(|e| Error::InvalidInput(format!("input is not JSON: {e}")))?;
        let steps = query
            .get("steps")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::InvalidInput("`steps` must be an array".into()))?;
        let preopens = wasi::filesystem::preopens::get_directories();
        let (root, _) = preopens
            .first()
            .ok_or_else(|| Error::Failed("no directory was granted".into()))?;
        let results: Vec<Value> = steps
            .iter()
            .map(|step| match run(root, step) {
                Ok(value) => json!({ "ok": value }),
                Err(Failure::Fs(code)) => json!({ "error": code.name() }),
                Err(Failure::Input(text)) => json!({ "invalid": text }),
            })
            .collect();
        let names: Vec<&str> = preopens.iter().map(|(_, name)| name.as_str()).collect();
        Ok(json!({ "preopens": names, "steps": results }).to_string())
    }
}

enum Failure {
    Fs(ErrorCode),
    Input(String),
}

impl From<ErrorCode> for Failure {
    fn from(code: ErrorCode) -> Self {
        Failure::Fs(code)
    }
}

fn text<'a>(step: &'a Value, key: &str) -> Result<&'a str, Failure> {
    step.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::Input(format!("a step needs `{key}`")))
}

fn flag(step: &Value, key: &str, default: bool) -> bool {
    step.get(key).and_then(Value::as_bool).unwrap_or(default)
}

fn run(root: &Descriptor, step: &Value) -> Result<Value, Failure> {
    let base = match step.get("base").and_then(Value::as_str) {
        Some(path) => Some(root.open_at(
            PathFlags::SYMLINK_FOLLOW,
            path,
            OpenFlags::DIRECTORY,
            DescriptorFlags::READ,
        )?),
        None => None,
    };
    let dir = base.as_ref().unwrap_or(root);
    let follow = if flag(step, "follow", true) {
        PathFlags::SYMLINK_FOLLOW
    } else {
        PathFlags::empty()
    };
    let path = || text(step, "path");
    match text(step, "op")? {
        "read" => {
            let file = dir.open_at(follow, path()?, OpenFlags::empty(), DescriptorFlags::READ)?;
            let (bytes, _end) = file.read(READ_CAP, 0)?;
            Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        }
        "write" => {
            let mut open = OpenFlags::empty();
            if flag(step, "create", false) {
                open |= OpenFlags::CREATE;
            }
            if flag(step, "truncate", false) {
                open |= OpenFlags::TRUNCATE;
            }
            let file = dir.open_at(follow, path()?, open, DescriptorFlags::WRITE)?;
            Ok(json!(file.write(MARKER, 0)?))
        }
        "list" => {
            let listed =
                dir.open_at(follow, path()?, OpenFlags::DIRECTORY, DescriptorFlags::READ)?;
            let entries = listed.read_directory()?;
            let mut names = Vec::new();
            while let Some(entry) = entries.read_directory_entry()? {
                names.push(entry.name);
            }
            names.sort();
            Ok(json!(names))
        }
        "stat" => {
            let stat = dir.stat_at(follow, path()?)?;
            Ok(json!({ "type": format!("{:?}", stat.type_), "size": stat.size }))
        }
        "readlink" => Ok(Value::String(dir.readlink_at(path()?)?)),
        "mkdir" => Ok(json!(dir.create_directory_at(path()?)?)),
        "unlink" => Ok(json!(dir.unlink_file_at(path()?)?)),
        "rmdir" => Ok(json!(dir.remove_directory_at(path()?)?)),
        "symlink" => Ok(json!(dir.symlink_at(text(step, "target")?, path()?)?)),
        "link" => Ok(json!(dir.link_at(
            follow,
            text(step, "from")?,
            dir,
            text(step, "to")?
        )?)),
        "rename" => Ok(json!(dir.rename_at(
            text(step, "from")?,
            dir,
            text(step, "to")?
        )?)),
        other => Err(Failure::Input(format!("unknown op `{other}`"))),
    }
}

export!(FsEscape);
