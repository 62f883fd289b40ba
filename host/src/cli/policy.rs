//! `airlock policy`: validate the policies, explain one decision.

use super::args::{Cli, ExplainArgs, PolicyCommand};
use super::{Failure, load_policies};
use airlock::policy::{Action, DestinationFacts, PolicyEngine, ToolFacts};
use airlock::{Config, exit_code};
use serde_json::{Value, json};
use std::path::Path;

pub fn run(cli: &Cli, command: &PolicyCommand) -> u8 {
    let result = match command {
        PolicyCommand::Validate => validate(cli),
        PolicyCommand::Explain(args) => explain(cli, args),
    };
    result.unwrap_or_else(Failure::report)
}

fn validate(cli: &Cli) -> Result<u8, Failure> {
    let policies = load_policies(cli)?;
    let ids = policies.policy_ids();
    let source = cli.policies.as_ref().map_or_else(
        || "the shipped policies".to_string(),
        |d| d.display().to_string(),
    );
    println!(
        "{source}: {} policies valid against the schema: {}",
        ids.len(),
        ids.join(", ")
    );
    Ok(exit_code::OK)
}

/// The tool's facts: from a component file, or a tool named in `--config`.
fn tool_facts(args: &ExplainArgs) -> Result<ToolFacts, Failure> {
    let (name, path, marked) = match &args.config {
        Some(config) => {
            let config = Config::from_file(config)?;
            let tool = config.tool(&args.tool).ok_or_else(|| {
                Failure::usage(
                    "unknown_tool",
                    format!("no tool named `{}` in the configuration", args.tool),
                )
            })?;
            let path = tool.component().ok_or_else(|| {
                Failure::usage(
                    "unknown_tool",
                    format!("tool `{}` names no component", args.tool),
                )
            })?;
            (
                args.tool.clone(),
                path.to_path_buf(),
                tool.grants().is_marked_sensitive(),
            )
        }
        None => {
            let path = Path::new(&args.tool).to_path_buf();
            let name = path.file_stem().map_or_else(
                || args.tool.clone(),
                |s| s.to_string_lossy().replace('_', "-"),
            );
            (name, path, false)
        }
    };
    let bytes =
        airlock::read_component(&path).map_err(|e| Failure::usage(e.code(), e.to_string()))?;
    let info = airlock::inspect(&bytes).map_err(|e| Failure::usage(e.code(), e.to_string()))?;
    let capabilities = info
        .capabilities()
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    Ok(ToolFacts::derive(
        &name,
        info.world.as_str(),
        capabilities,
        &info.sha256.to_hex(),
        marked,
    ))
}

fn explain(cli: &Cli, args: &ExplainArgs) -> Result<u8, Failure> {
    let policies = load_policies(cli)?;
    let action = Action::parse(&args.action).ok_or_else(|| {
        let all: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        Failure::usage(
            "usage",
            format!(
                "unknown action `{}`: one of {}",
                args.action,
                all.join(", ")
            ),
        )
    })?;
    let tool = tool_facts(args)?;
    let mut context = PolicyEngine::default_context(action, &tool);
    if let Some(text) = &args.context {
        let given: Value = serde_json::from_str(text)
            .map_err(|e| Failure::usage("usage", format!("--context is not JSON: {e}")))?;
        let Value::Object(fields) = given else {
            return Err(Failure::usage(
                "usage",
                "--context must be a JSON object, e.g. '{\"approved\": true}'",
            ));
        };
        for (key, value) in fields {
            context[key] = value;
        }
    }
    let destination = match (action, &args.url) {
        (Action::HttpRequest, Some(url)) => {
            let target = airlock::egress::url::parse(url)
                .map_err(|e| Failure::usage(e.code(), e.to_string()))?;
            Some(DestinationFacts {
                scheme: target.scheme.to_string(),
                host: target.host.to_string(),
                port: target.port,
            })
        }
        (Action::HttpRequest, None) => {
            return Err(Failure::usage(
                "usage",
                "`http.request` needs --url: the destination is its resource",
            ));
        }
        _ => None,
    };
    let decision = policies.explain(
        &args.principal,
        action,
        &tool,
        destination.as_ref(),
        &context,
    )?;
    println!(
        "{}",
        json!({
            "decision": if decision.allowed { "allow" } else { "deny" },
            "policies": decision.policies,
            "approval_possible": decision.approval_possible,
            "errors": decision.errors,
            "principal": args.principal.to_string(),
            "action": action.as_str(),
            "tool": {"name": tool.name, "world": tool.world, "capabilities": tool.capabilities, "sensitive": tool.sensitive},
            "context": context,
        })
    );
    Ok(if decision.allowed {
        exit_code::OK
    } else {
        exit_code::DENIED
    })
}
