//! `airlock policy`: validate the policies, explain one decision.

use super::args::{Cli, ExplainArgs, PolicyCommand};
use super::{Failure, load_policies};
use airlock::config::ComponentSource;
use airlock::policy::{Action, DestinationFacts, PolicyEngine};
use airlock::{Config, Grants, Host, Tool, exit_code};
use serde_json::{Value, json};
use std::path::PathBuf;

pub async fn run(cli: &Cli, command: &PolicyCommand) -> u8 {
    let result = match command {
        PolicyCommand::Validate => validate(cli),
        PolicyCommand::Explain(args) => explain(cli, args).await,
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
    outln!(
        "{source}: {} policies valid against the schema: {}",
        ids.len(),
        ids.join(", ")
    );
    Ok(exit_code::OK)
}

/// The tool's facts: from a component file, or a tool named in `--config`.
/// The tool as `run` would load it: its facts come from the component's
/// imports and the operator's configuration (name, `sensitive`).
async fn load_tool(cli: &Cli, args: &ExplainArgs) -> Result<Tool, Failure> {
    let (source, grants, signature) = match &args.config {
        Some(config) => {
            let config = Config::from_file(config)?;
            let tool = config.tool(&args.tool).ok_or_else(|| {
                Failure::usage(
                    "unknown_tool",
                    format!("no tool named `{}` in the configuration", args.tool),
                )
            })?;
            let source = tool.component_to_load().ok_or_else(|| {
                Failure::usage(
                    "unknown_tool",
                    format!("tool `{}` names no component", args.tool),
                )
            })?;
            (source, tool.grants().clone(), tool.signature().cloned())
        }
        None => (
            ComponentSource::File(PathBuf::from(&args.tool)),
            Grants::none(),
            None,
        ),
    };
    let mut builder = Host::builder().policies(load_policies(cli)?);
    if !cli.no_cache {
        builder = builder.cache_dir(cli.state_dir.join("cache"));
    }
    match source {
        ComponentSource::File(path) => builder
            .build()?
            .load(path.as_path(), grants)
            .await
            .map_err(|e| Failure::usage(e.code(), format!("{}: {e}", path.display()))),
        // A pulled component is read from the state directory's store.
        ComponentSource::Oci(reference) => {
            let host = builder.state_dir(&cli.state_dir).build()?;
            let (_, pulled) = host.pull(&reference, signature.as_ref()).await?;
            host.load(airlock::Source::Pulled(Box::new(pulled)), grants)
                .await
                .map_err(|e| Failure::usage(e.code(), format!("{reference}: {e}")))
        }
    }
}

async fn explain(cli: &Cli, args: &ExplainArgs) -> Result<u8, Failure> {
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
    let loaded = load_tool(cli, args).await?;
    let tool = loaded.facts();
    let mut context = PolicyEngine::default_context(action, tool);
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
        tool,
        destination.as_ref(),
        &context,
    )?;
    outln!(
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
