//! Authorization with Cedar: tools as entities whose attributes the host
//! derives from their imports, the actions the host checks, and decisions
//! as data (allowed, the deciding policy ids, whether a human may approve).
//!
//! The schema and default policies live in `policies/` and are compiled in;
//! operators can point the host at their own directory instead.

#![deny(missing_docs)]
// `pub` means part of the crate's API; anything else says `pub(crate)`.
#![warn(unreachable_pub)]

mod cache;
mod engine;
mod error;
mod facts;
mod principal;
pub mod world;

pub use engine::{DEFAULT_POLICIES, DEFAULT_SCHEMA, PolicyEngine};
pub use error::{Location, PolicyError};
pub use facts::{
    Action, ApprovalFacts, Authorization, DestinationFacts, ProgramFacts, SecretFacts, ToolFacts,
};
pub use principal::{Channel, Principal, PrincipalKind, PrincipalParseError, RequestContext};
pub use world::{Capability, World};

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(sensitive: bool) -> ToolFacts {
        ToolFacts {
            name: if sensitive { "fetch" } else { "echo" }.into(),
            world: if sensitive {
                crate::World::Network
            } else {
                crate::World::Pure
            },
            capabilities: if sensitive {
                vec![crate::Capability::Network]
            } else {
                vec![]
            },
            sha256: "ab".repeat(32),
            sensitive,
            server: None,
            source: None,
            signer: None,
        }
    }

    #[test]
    fn defaults_run_pure_tools_and_hold_sensitive_ones_for_approval() {
        let engine = PolicyEngine::embedded();
        let agent = Principal::agent("claude");
        let context = RequestContext::default();
        for facts in [tool(false), tool(true)] {
            engine.register_tool(&facts).expect("tool entity");
        }

        let pure = engine.check_execute(&agent, &tool(false), &context, false);
        assert!(pure.allowed);
        assert_eq!(pure.policies, vec!["run-pure-tools"]);

        let held = engine.check_execute(&agent, &tool(true), &context, false);
        assert!(!held.allowed && held.approval_possible, "{held:?}");
        assert_eq!(held.policies, vec!["sensitive-tools-need-approval"]);

        let approved = engine.check_execute(&agent, &tool(true), &context, true);
        assert!(approved.allowed, "{approved:?}");
        assert_eq!(approved.policies, vec!["run-approved-sensitive-tools"]);

        let destination = DestinationFacts {
            scheme: "https".into(),
            host: "api.example.com".into(),
            port: 443,
        };
        assert!(
            engine
                .check_http(&agent, &tool(true), &context, &destination)
                .allowed
        );
    }

    #[test]
    fn forbids_in_operator_policies_win_and_are_not_approvable() {
        let extra = r#"
@id("no-internal")
forbid (principal, action == Airlock::Action::"http.request", resource)
when { resource.host like "*.internal.example" };

@id("no-fetch-for-bots")
forbid (principal in Airlock::Group::"bots", action == Airlock::Action::"tool.execute", resource)
when { resource.name == "fetch" };
"#;
        let entities = r#"[
            {"uid": {"type": "Airlock::Agent", "id": "crawler"}, "attrs": {}, "parents": [{"type": "Airlock::Group", "id": "bots"}]},
            {"uid": {"type": "Airlock::Group", "id": "bots"}, "attrs": {}, "parents": []}
        ]"#;
        let engine = PolicyEngine::from_sources(
            ("schema", DEFAULT_SCHEMA),
            &[("default.cedar", DEFAULT_POLICIES), ("extra.cedar", extra)],
            Some(("entities.json", entities)),
        )
        .expect("valid");
        engine.register_tool(&tool(true)).expect("tool");
        let context = RequestContext::default();
        let internal = DestinationFacts {
            scheme: "https".into(),
            host: "db.internal.example".into(),
            port: 443,
        };
        let denied = engine.check_http(
            &Principal::agent("claude"),
            &tool(true),
            &context,
            &internal,
        );
        assert!(!denied.allowed && !denied.approval_possible);
        assert_eq!(denied.policies, vec!["no-internal"]);

        let bot = engine.check_execute(&Principal::agent("crawler"), &tool(true), &context, true);
        assert!(!bot.allowed && !bot.approval_possible, "{bot:?}");
        assert_eq!(bot.policies, vec!["no-fetch-for-bots"]);
    }

    #[test]
    fn invalid_sources_stop_with_cedar_diagnostics_and_locations() {
        let cases: &[(&str, &str)] = &[
            (
                "@id(\"broken\")\npermit (principal, action, resource)\nwhen { resource.nonsense };\n",
                "extra.cedar:3:",
            ),
            (
                "@id(\"syntax\")\npermit (principal action, resource);\n",
                "extra.cedar:2:",
            ),
            (
                "@id(\"run-pure-tools\")\npermit (principal, action, resource);\n",
                "policy id `run-pure-tools` is used twice",
            ),
            (
                "@id(\"type\")\npermit (principal == Airlock::Robot::\"x\", action, resource);\n",
                "extra.cedar:2:",
            ),
        ];
        for (extra, expected) in cases {
            let err = PolicyEngine::from_sources(
                ("schema", DEFAULT_SCHEMA),
                &[("default.cedar", DEFAULT_POLICIES), ("extra.cedar", extra)],
                None,
            )
            .expect_err("invalid");
            assert!(err.to_string().contains(expected), "{extra}: {err}");
            assert_eq!(err.code(), "invalid_policy");
        }
        let err = PolicyEngine::from_sources(
            ("schema.cedarschema", "namespace A { entity ; }"),
            &[],
            None,
        )
        .expect_err("bad schema");
        assert!(
            err.to_string().starts_with("schema.cedarschema:1:"),
            "{err}"
        );
    }
}
