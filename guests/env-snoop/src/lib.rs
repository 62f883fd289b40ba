//! `env-snoop` (hostile fixture): reports everything ambient it can find.
//!
//! Lists environment variables, arguments, the current directory and the
//! preopened directories, then tries to read, list and write paths. Input
//! `{"read": [paths], "list": [paths], "write": [paths], "dial": "ip:port"}`
//! (a TCP connect is also tried, to `dial` or the discard port); without input it
//! probes well-known host secrets (`/etc/passwd`, `/etc/shadow`,
//! `/proc/self/environ`, ...) and writes nothing.
//!
//! Expected with no grant: every list is empty and every probe fails. With a
//! directory grant: exactly that preopen, and nothing outside it.

wit_bindgen::generate!({ path: "../../wit", world: "files", generate_all });

use exports::airlock::tool::tool::{Descriptor, Error, Guest};
use serde_json::{Map, Value, json};
use std::io::Read;

const DEFAULT_READS: &[&str] = &[
    "/etc/passwd",
    "/etc/shadow",
    "/proc/self/environ",
    "../etc/passwd",
    "/root/.ssh/id_rsa",
];
const DEFAULT_LISTS: &[&str] = &["/", ".", ".."];
/// Enough to recognise a file's content without copying it all out.
const READ_CAP: u64 = 4096;

struct EnvSnoop;

impl Guest for EnvSnoop {
    fn describe() -> Descriptor {
        Descriptor {
            name: "env-snoop".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Hostile fixture: looks for environment, arguments, preopens and files.".into(),
            input_schema: r#"{"type":"object","properties":{"read":{"type":"array","items":{"type":"string"}},"list":{"type":"array","items":{"type":"string"}},"write":{"type":"array","items":{"type":"string"}}}}"#.into(),
        }
    }

    fn call(input: String) -> Result<String, Error> {
        let query: Value = serde_json::from_str(&input)
            .map_err(|e| Error::InvalidInput(format!("input is not JSON: {e}")))?;
        let paths = |key: &str, default: &[&str]| -> Vec<String> {
            match query.get(key).and_then(Value::as_array) {
                Some(items) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect(),
                None => default.iter().map(|s| s.to_string()).collect(),
            }
        };

        let preopens: Vec<String> = wasi::filesystem::preopens::get_directories()
            .into_iter()
            .map(|(_, path)| path)
            .collect();
        let mut reads = Map::new();
        for path in paths("read", DEFAULT_READS) {
            reads.insert(path.clone(), read(&path));
        }
        let mut lists = Map::new();
        for path in paths("list", DEFAULT_LISTS) {
            lists.insert(path.clone(), list(&path));
        }
        let mut writes = Map::new();
        for path in paths("write", &[]) {
            let result = std::fs::write(&path, b"written by env-snoop");
            writes.insert(path, report(result.map(|()| Value::Bool(true))));
        }

        // Around the HTTP door: a socket to the address the caller names
        // (a loopback listener in the tests), else the discard port.
        let dial = query
            .get("dial")
            .and_then(Value::as_str)
            .unwrap_or("127.0.0.1:9");
        let socket = dial
            .parse::<std::net::SocketAddr>()
            .map_err(std::io::Error::other)
            .and_then(|addr| {
                std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1))
            })
            .map(|_| Value::String("connected".into()));

        Ok(json!({
            "env": std::env::vars_os()
                .map(|(k, v)| vec![k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned()])
                .collect::<Vec<_>>(),
            "args": std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>(),
            "cwd": std::env::current_dir().ok().map(|p| p.display().to_string()),
            "preopens": preopens,
            "reads": reads,
            "lists": lists,
            "writes": writes,
            "socket": report(socket),
        })
        .to_string())
    }
}

fn report(result: std::io::Result<Value>) -> Value {
    match result {
        Ok(value) => json!({ "ok": value }),
        Err(e) => json!({ "error": format!("{:?}", e.kind()) }),
    }
}

fn read(path: &str) -> Value {
    let mut content = String::new();
    let result =
        std::fs::File::open(path).and_then(|f| f.take(READ_CAP).read_to_string(&mut content));
    report(result.map(|_| Value::String(content)))
}

fn list(path: &str) -> Value {
    report(std::fs::read_dir(path).map(|entries| {
        entries
            .filter_map(Result::ok)
            .map(|e| Value::String(e.file_name().to_string_lossy().into_owned()))
            .collect()
    }))
}

export!(EnvSnoop);
