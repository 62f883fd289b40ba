//! What the CLI prints: JSON objects with stable field names (reason codes are
//! the library's), and their human-readable forms.

use airlock::{
    Captured, ComponentInfo, ConfiguredTool, Descriptor, EgressRecord, Limits, Outcome, Provenance,
    RunReport,
};
use serde_json::{Value, json};

/// Lines of guest stderr shown after a failure in text mode.
const STDERR_TAIL_LINES: usize = 40;

pub fn limits_json(limits: &Limits) -> Value {
    json!({
        "timeout_ms": limits.timeout.as_millis(),
        "fuel": limits.fuel,
        "max_memory_bytes": limits.max_memory_bytes,
        "max_table_elements": limits.max_table_elements,
        "max_input_bytes": limits.max_input_bytes,
        "max_output_bytes": limits.max_output_bytes,
        "max_stdio_bytes": limits.max_stdio_bytes,
    })
}

fn captured_json(captured: &Captured) -> Value {
    json!({ "text": captured.text, "dropped_bytes": captured.dropped_bytes })
}

fn report_json(report: &RunReport) -> Value {
    json!({
        "invocation_id": report.invocation_id,
        "egress": report.egress.iter().map(EgressRecord::to_json).collect::<Vec<_>>(),
        "duration_ms": report.duration.as_secs_f64() * 1000.0,
        "limits": limits_json(&report.limits),
        "fuel_consumed": report.fuel_consumed,
        "memory_peak_bytes": report.memory_peak_bytes,
        "stdout": captured_json(&report.stdout),
        "stderr": captured_json(&report.stderr),
    })
}

/// The tool that ran, as results name it: a component or a native program.
pub struct ToolLabel {
    pub name: String,
    pub version: Option<String>,
    pub sha256: String,
    pub world: String,
}

impl From<&ConfiguredTool> for ToolLabel {
    fn from(tool: &ConfiguredTool) -> Self {
        Self {
            name: tool.name().to_string(),
            version: tool.version().map(str::to_string),
            sha256: tool.sha256().to_string(),
            world: tool.world().to_string(),
        }
    }
}

fn tool_json(tool: &ToolLabel) -> Value {
    json!({
        "name": tool.name,
        "version": tool.version,
        "sha256": tool.sha256,
        "world": tool.world,
    })
}

/// The `run --json` result object.
pub fn outcome_json(tool: &ToolLabel, outcome: &Outcome) -> Value {
    let mut object = json!({
        "status": match outcome {
            Outcome::Completed { .. } => "ok",
            Outcome::ToolError { .. } => "tool_error",
            Outcome::LimitExceeded { .. } => "limit_exceeded",
            Outcome::PendingApproval { .. } => "pending_approval",
            Outcome::Denied { .. } => "denied",
            _ => "faulted",
        },
        "code": outcome.code(),
        "exit_code": outcome.exit_code(),
        "tool": tool_json(tool),
        "report": report_json(outcome.report()),
    });
    if let Some(output) = outcome.output() {
        // Completed output is checked JSON; embed it as a value.
        object["output"] =
            serde_json::from_str(output).unwrap_or_else(|_| Value::String(output.into()));
    }
    if let Some(message) = outcome.message() {
        object["error"] = json!({ "code": outcome.code(), "message": message });
    }
    match outcome {
        Outcome::Faulted {
            fault:
                airlock::GuestFault::Trap {
                    backtrace: Some(bt),
                    ..
                },
            ..
        } => object["error"]["backtrace"] = Value::String(bt.clone()),
        Outcome::PendingApproval { approval, .. } => {
            object["approval"] = json!({
                "id": approval.id,
                "tool": approval.tool,
                "capabilities": approval.capabilities,
                "summary": approval.summary,
            });
        }
        Outcome::Denied { denial, .. } => {
            object["error"]["policies"] = json!(denial.policies);
            object["error"]["approval_id"] = json!(denial.approval_id);
        }
        _ => {}
    }
    object
}

/// An error object for `--json` when there is no outcome.
pub fn error_json(code: &str, message: &str, exit_code: u8) -> Value {
    json!({
        "status": "error",
        "code": code,
        "exit_code": exit_code,
        "error": { "code": code, "message": message },
    })
}

/// Text-mode report of a failed run on stderr: reason, message, guest stderr.
pub fn print_failure(tool: &ToolLabel, outcome: &Outcome) {
    eprintln!(
        "airlock: {}: {}: {}",
        tool.name,
        outcome.code(),
        outcome.message().unwrap_or_default()
    );
    let stderr = &outcome.report().stderr;
    let lines: Vec<&str> = stderr.text.lines().collect();
    if !lines.is_empty() {
        eprintln!("guest stderr:");
        let skip = lines.len().saturating_sub(STDERR_TAIL_LINES);
        if skip > 0 {
            eprintln!("  ... ({skip} earlier lines; --json shows all)");
        }
        for line in &lines[skip..] {
            eprintln!("  {line}");
        }
    }
}

pub fn descriptor_json(descriptor: &Descriptor) -> Value {
    json!({
        "name": descriptor.name,
        "version": descriptor.version,
        "description": descriptor.description,
        "input_schema": serde_json::from_str::<Value>(&descriptor.input_schema).unwrap_or(Value::Null),
    })
}

/// The `inspect --json` object.
pub fn info_json(
    label: &str,
    info: &ComponentInfo,
    provenance: Option<&Provenance>,
    described: Result<&Descriptor, (&str, String)>,
) -> Value {
    let mut object = json!({
        "path": label,
        "source": provenance.map(|p| p.reference.to_string()),
        "manifest": provenance.map(|p| p.manifest.to_string()),
        "signer": provenance.and_then(|p| p.signer.as_ref()).map(|s| s.to_string()),
        "sha256": info.sha256.to_hex(),
        "size": info.size,
        "world": info.runs_as(false).as_str(),
        "world_with_directories": info.runs_as(true).as_str(),
        "capabilities": info.capabilities().iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "imports": info.imports.iter().map(|i| json!({ "name": i.name, "role": i.role.as_str() })).collect::<Vec<_>>(),
        "exports": info.exports,
        "tool_export": info.tool_export,
    });
    match described {
        Ok(descriptor) => object["descriptor"] = descriptor_json(descriptor),
        Err((code, message)) => {
            object["descriptor"] = Value::Null;
            object["describe_error"] = json!({ "code": code, "message": message });
        }
    }
    object
}

/// The text form of `inspect`.
pub fn print_info(
    label: &str,
    info: &ComponentInfo,
    provenance: Option<&Provenance>,
    described: Result<&Descriptor, (&str, String)>,
) {
    let capabilities: Vec<&str> = info.capabilities().iter().map(|c| c.as_str()).collect();
    outln!("component     {label}");
    if let Some(provenance) = provenance {
        outln!("manifest      {}", provenance.manifest);
        match &provenance.signer {
            Some(signer) => outln!("signed by     {signer}"),
            None => outln!("signed by     (no signature required)"),
        }
    }
    outln!("sha256        {}", info.sha256);
    outln!(
        "size          {} ({} bytes)",
        bytesize::ByteSize::b(info.size),
        info.size
    );
    let world = info.runs_as(false);
    if world == info.runs_as(true) {
        outln!("world         {world}");
    } else {
        outln!(
            "world         {world} ({} once directories are granted: it imports wasi:filesystem)",
            info.runs_as(true)
        );
    }
    outln!(
        "capabilities  {}",
        if capabilities.is_empty() {
            "(none)".to_string()
        } else {
            capabilities.join(", ")
        }
    );
    match described {
        Ok(d) => outln!("tool          {} {}: {}", d.name, d.version, d.description),
        Err((code, message)) => outln!("tool          describe() failed ({code}): {message}"),
    }
    outln!("imports");
    let width = info.imports.iter().map(|i| i.name.len()).max().unwrap_or(0);
    for import in &info.imports {
        outln!(
            "  {:width$}  {:<10} {}",
            import.name,
            import.role.as_str(),
            import.role.explain()
        );
    }
    outln!("exports");
    let width = info.exports.iter().map(String::len).max().unwrap_or(0);
    for export in &info.exports {
        let role = if *export == info.tool_export {
            "the tool interface airlock calls"
        } else {
            "not used by airlock"
        };
        outln!("  {export:width$}  {role}");
    }
}
