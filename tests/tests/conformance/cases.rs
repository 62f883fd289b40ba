//! `fixtures/conformance/cases.toml`: the cases and how an outcome is held
//! against one.

use airlock::{Limits, Outcome};
use airlock_tests::fixtures::fixtures_dir;
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    case: Vec<Case>,
}

/// One case (see the file's header for the fields).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub tool: String,
    input: String,
    timeout_ms: Option<u64>,
    memory_bytes: Option<u64>,
    code: String,
    output: Option<String>,
    #[serde(default)]
    output_is_input: bool,
    #[serde(default)]
    same_as_rust: bool,
    #[serde(default)]
    message_contains: Vec<String>,
    egress: Option<Vec<String>>,
    pub check: Option<String>,
}

/// The cases, in file order.
pub fn cases() -> Vec<Case> {
    let path = fixtures_dir().join("conformance/cases.toml");
    let text = std::fs::read_to_string(&path).expect("fixtures/conformance/cases.toml");
    let table: Table = toml::from_str(&text).expect("the conformance cases parse");
    table.case
}

/// 600 KiB of one-, two-, three- and four-byte UTF-8.
fn large() -> String {
    "aé€🚀".repeat(600 * 1024 / 10)
}

impl Case {
    /// The input with its placeholders filled.
    pub fn input(&self, port: u16, listener: &str) -> String {
        self.input
            .replace("{port}", &port.to_string())
            .replace("{listener}", listener)
            .replace("{large}", &large())
    }

    /// The default limits with the case's overrides.
    pub fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        if let Some(ms) = self.timeout_ms {
            limits.timeout = Duration::from_millis(ms);
        }
        if let Some(bytes) = self.memory_bytes {
            limits.max_memory_bytes = bytes;
        }
        limits.max_output_bytes = limits.max_output_bytes.max(2 << 20);
        limits.max_input_bytes = limits.max_input_bytes.max(2 << 20);
        limits
    }

    /// Holds `outcome` against the case; `rust` is the Rust guest's output.
    pub fn check(
        &self,
        outcome: &Outcome,
        rust: Option<&Value>,
        input: &str,
    ) -> Result<(), String> {
        if outcome.code() != self.code {
            return Err(format!(
                "{} ({})",
                outcome.code(),
                outcome
                    .message()
                    .unwrap_or_default()
                    .chars()
                    .take(160)
                    .collect::<String>()
            ));
        }
        let message = outcome.message().unwrap_or_default();
        if let Some(missing) = self
            .message_contains
            .iter()
            .find(|m| !message.contains(m.as_str()))
        {
            return Err(format!("message lacks `{missing}`: {message}"));
        }
        let output = outcome.output();
        if self.output_is_input && output != Some(input) {
            return Err(format!(
                "output differs from input ({} bytes)",
                output.map_or(0, str::len)
            ));
        }
        let value = output.map(|o| {
            serde_json::from_str::<Value>(o).map_err(|e| format!("output is not JSON: {e}"))
        });
        let value = value.transpose()?;
        if let Some(expected) = &self.output {
            let expected: Value =
                serde_json::from_str(expected).expect("the case's output is JSON");
            if !value.as_ref().is_some_and(|v| same(v, &expected)) {
                return Err(format!("output {}", value.unwrap_or(Value::Null)));
            }
        }
        if self.same_as_rust && !matches!((&value, rust), (Some(v), Some(r)) if same(v, r)) {
            return Err(format!(
                "output {} differs from Rust's",
                value.unwrap_or(Value::Null)
            ));
        }
        if let Some(expected) = &self.egress {
            let seen: Vec<String> = outcome
                .report()
                .egress
                .iter()
                .map(|r| match r.reason {
                    Some(reason) if r.verdict == airlock::egress::Verdict::Deny => {
                        format!("deny:{}", reason.code())
                    }
                    _ => r.verdict.as_str().to_string(),
                })
                .collect();
            if &seen != expected {
                return Err(format!("egress {seen:?}"));
            }
        }
        if self.check.as_deref() == Some("sees-nothing") {
            sees_nothing(value.as_ref())?;
        }
        Ok(())
    }
}

/// JSON equality with numbers compared by value (`2` and `2.0` agree).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// An `env-snoop` report of nothing: no environment, arguments or
/// preopens, every file read and the socket failed.
fn sees_nothing(report: Option<&Value>) -> Result<(), String> {
    let report = report.ok_or("no output")?;
    for key in ["env", "args", "preopens"] {
        if report[key] != Value::Array(vec![]) {
            return Err(format!("{key}: {}", report[key]));
        }
    }
    let reads = report["reads"].as_object().ok_or("no reads")?;
    if reads.len() < 3 || reads.values().any(|r| r.get("error").is_none()) {
        return Err(format!("reads: {}", report["reads"]));
    }
    if report["socket"].get("error").is_none() {
        return Err(format!("socket: {}", report["socket"]));
    }
    Ok(())
}
