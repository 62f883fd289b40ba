//! MCP over streamable HTTP written by hand, as an attacker sends it: any
//! token, any `Mcp-Session-Id`, any method, nothing a real client would
//! refuse to send. Each exchange is one connection (`Connection: close`).

use super::PATIENCE;
use serde_json::{Value, json};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the server answered.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// The header block, names lowercased.
    head: String,
    /// The body, chunked encoding undone.
    pub body: String,
}

impl Reply {
    /// The value of header `name`, if present.
    pub fn header(&self, name: &str) -> Option<String> {
        let name = name.to_ascii_lowercase();
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim().to_ascii_lowercase() == name).then(|| value.trim().to_string())
        })
    }

    /// The JSON the body carries: the `data:` lines of an event stream,
    /// or the body itself.
    pub fn messages(&self) -> Vec<Value> {
        let events: Vec<Value> = self
            .body
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str(data.trim()).ok())
            .collect();
        if events.is_empty() {
            serde_json::from_str(&self.body).into_iter().collect()
        } else {
            events
        }
    }

    /// The reason code of a JSON error answer (`{"error": {"code": ...}}`).
    pub fn code(&self) -> String {
        serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|body| body["error"]["code"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// The text of the first content block of the `tools/call` result in
    /// the body.
    pub fn call_text(&self) -> String {
        self.messages()
            .iter()
            .find_map(|message| message["result"]["content"][0]["text"].as_str())
            .unwrap_or_else(|| panic!("no call result in {self:?}"))
            .to_string()
    }
}

/// One request to `/mcp` of `server` with `token`, `headers` and `body`.
pub async fn send(
    server: SocketAddr,
    method: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Reply {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!(
        "{method} /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {token}\r\n\
         Accept: application/json, text/event-stream\r\nConnection: close\r\n",
        server.port()
    );
    if method == "POST" {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(server).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(PATIENCE, exchange)
        .await
        .expect("an answer in time")
        .expect("the exchange");
    let answer = String::from_utf8_lossy(&answer).to_string();
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header block in {answer:?}"));
    let status = head
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let head = head.to_string();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Reply { status, head, body }
}

/// A chunked body's data.
fn dechunk(mut rest: &str) -> String {
    let mut data = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        data.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    data
}

/// An `initialize` of protocol 2025-11-25 (a session-ful one).
pub fn initialize() -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": { "name": "raw", "version": "1" }
        }
    })
}

/// Opens a session as `token`: the answer (its `Mcp-Session-Id` header
/// names the session when it was opened).
pub async fn open(server: SocketAddr, token: &str) -> Reply {
    send(server, "POST", token, &[], Some(&initialize())).await
}

/// The headers of a request in session `id` (protocol 2025-11-25).
pub fn in_session(id: &str) -> [(&'static str, &str); 2] {
    [
        ("Mcp-Session-Id", id),
        ("MCP-Protocol-Version", "2025-11-25"),
    ]
}

/// A `tools/call` of `tool` with `arguments`, request id `id`.
pub fn tool_call(id: u64, tool: &str, arguments: Value) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "tools/call",
        "params": { "name": tool, "arguments": arguments }
    })
}

/// A session-less (2026-07-28) `tools/call` of `tool` as `token`, with
/// `session` in an `Mcp-Session-Id` header when given.
pub async fn stateless_call(
    server: SocketAddr,
    token: &str,
    session: Option<&str>,
    tool: &str,
    arguments: Value,
) -> Reply {
    let mut body = tool_call(7, tool, arguments);
    body["params"]["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let mut headers = vec![
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", tool),
    ];
    if let Some(session) = session {
        headers.push(("Mcp-Session-Id", session));
    }
    send(server, "POST", token, &headers, Some(&body)).await
}
