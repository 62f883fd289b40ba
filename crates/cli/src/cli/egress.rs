//! `airlock egress check`: the hook's whole decision for one URL (request
//! budget, grant, resolution, address classes, Cedar `http.request`), as
//! JSON, without opening a connection.

use super::args::{Cli, EgressCheckArgs};
use super::{Failure, build_host};
use airlock::egress::Decision;
use airlock::exit_code;
use airlock::policy::{Principal, ToolFacts};
use airlock::{Capability, ToolConfig, World};
use serde_json::json;
use std::sync::Arc;

pub async fn check(cli: &Cli, args: &EgressCheckArgs) -> u8 {
    match decide(cli, args).await {
        Ok(code) => code,
        Err(failure) => failure.report(),
    }
}

async fn decide(cli: &Cli, args: &EgressCheckArgs) -> Result<u8, Failure> {
    let grant = args.grant.network_grant()?;
    let host = build_host(cli, false, Some(args.dns.resolver()), None)?;
    let principal = args
        .principal
        .clone()
        .unwrap_or_else(|| Principal::user(super::approvals::local_user_name()));
    // Cedar sees the tool as it runs: loaded, when it loads.
    let facts = match args.grant.tool()? {
        Some(config) => match host.load_configured(&config).await {
            Ok(tool) => tool.facts().clone(),
            Err(error) => {
                eprintln!(
                    "airlock: note: `{}` did not load ({error}); Cedar saw its configured name \
                     and capabilities, not its digest or world",
                    config.name()
                );
                configured_facts(&config)
            }
        },
        None => ToolFacts::derive(
            "egress-check",
            World::Network,
            World::Network.capabilities().to_vec(),
            "",
            false,
        ),
    };
    host.policies().register_tool(&facts)?;
    let decision = host
        .check_egress(&facts, Arc::new(grant), principal.clone(), &args.url)
        .await;
    let (mut object, code) = match decision {
        Decision::Allow(pinned) => {
            let target = pinned.target();
            (
                json!({
                    "decision": "allow",
                    "reason": null,
                    "host": target.host.to_string(),
                    "port": target.port,
                    "scheme": target.scheme.as_str(),
                    "addresses": pinned.addresses().iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "rule": pinned.rule(),
                    "message": null,
                }),
                exit_code::OK,
            )
        }
        Decision::Deny(denial) => (
            json!({
                "decision": "deny",
                "reason": denial.reason.code(),
                "host": denial.target.as_ref().map(|t| t.host.to_string()),
                "port": denial.target.as_ref().map(|t| t.port),
                "scheme": denial.target.as_ref().map(|t| t.scheme.as_str()),
                "addresses": denial.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "rule": denial.rule,
                "message": denial.message,
            }),
            exit_code::DENIED,
        ),
    };
    object["principal"] = json!(principal.to_string());
    object["tool"] = json!(facts.name);
    outln!("{object}");
    Ok(code)
}

/// What Cedar sees of a configured tool that did not load: its name, and
/// the capabilities its configuration grants.
fn configured_facts(config: &ToolConfig) -> ToolFacts {
    let grants = config.grants();
    let world = match config.native() {
        Some(_) => World::Native,
        None => World::Network,
    };
    let mut capabilities = world.capabilities().to_vec();
    if !capabilities.contains(&Capability::Network) {
        capabilities.push(Capability::Network);
    }
    if !grants.credentials().is_empty() {
        capabilities.push(Capability::Secrets);
    }
    ToolFacts::derive(
        config.name(),
        world,
        capabilities,
        "",
        grants.is_marked_sensitive(),
    )
}
