//! `airlock egress check`: the hook's decision for one URL, as JSON, without
//! opening a connection.

use super::args::{Cli, EgressCheckArgs};
use airlock::egress::{Decision, decide};
use airlock::exit_code;
use serde_json::json;

pub async fn check(_cli: &Cli, args: &EgressCheckArgs) -> u8 {
    let grant = match args.grant.network_grant() {
        Ok(grant) => grant,
        Err(e) => return super::fail(e.code(), &e.to_string(), exit_code::USAGE),
    };
    let resolver = args.dns.resolver();
    let (object, code) = match decide(&grant, &args.url, resolver.as_ref()).await {
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
    println!("{object}");
    code
}
