//! Client approvals over MCP (`approvals = "client"`): the question put to
//! the human at the client (a form elicitation, which the model cannot
//! answer), the answer read back as a decision, and the sealed
//! `requestState` that ties a 2026-07-28 retry to the approval it answers.

use super::call::ClientAsk;
use super::decide::Decider;
use crate::approvals::OperatorDecision;
use crate::outcome::PendingApproval;
use crate::policy::Principal;
use rmcp::model::{
    ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationSchema, RequestStateCodec,
    SealOptions,
};
use rmcp::{Peer, RoleServer};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The key of the approval question in a 2026-07-28 `inputRequests`.
pub const APPROVAL_INPUT: &str = "airlock.approval";

/// How long a 2026-07-28 client has to come back with the human's answer:
/// the state it echoes expires then (the approval itself stays pending for
/// the operators).
pub const ANSWER_WITHIN: Duration = Duration::from_secs(15 * 60);

/// The form field that carries the answer.
const FIELD: &str = "decision";

/// The answers, as the form offers them.
const ALLOW_ONCE: &str = "allow_once";
const ALLOW_SESSION: &str = "allow_session";
const DENY: &str = "deny";

/// What a human's "deny" or "decline" records as the reason.
const DENIED: &str = "denied by the human at the MCP client";

/// The question for `approval`, asked on behalf of `requester`. `session`
/// says whether the call belongs to an MCP session: without one, "allow
/// for this session" would allow nothing (the store refuses it), so it is
/// not offered.
pub fn question(
    approval: &PendingApproval,
    requester: &Principal,
    session: bool,
) -> Option<ElicitRequestParams> {
    let mut choices = vec![json!({ "const": ALLOW_ONCE, "title": "Allow this call once" })];
    if session {
        choices
            .push(json!({ "const": ALLOW_SESSION, "title": "Allow this tool for this session" }));
    }
    choices.push(json!({ "const": DENY, "title": "Deny" }));
    let schema = json!({
        "type": "object",
        "properties": {
            FIELD: { "type": "string", "title": "Decision", "oneOf": choices },
        },
        "required": [FIELD],
    });
    let Value::Object(schema) = schema else {
        return None;
    };
    let requested_schema = ElicitationSchema::from_json_schema(schema).ok()?;
    let capabilities = if approval.capabilities.is_empty() {
        "none".to_string()
    } else {
        approval.capabilities.join(", ")
    };
    let message = format!(
        "airlock: {requester} asks to run `{}` (capabilities: {capabilities}) with input {}. \
         Allow it? (approval {}; the model cannot answer this question)",
        approval.tool, approval.summary, approval.id
    );
    Some(ElicitRequestParams::FormElicitationParams {
        meta: None,
        message,
        requested_schema,
    })
}

/// The decision in the human's answer; `None` when they dismissed the
/// question or answered something the question did not offer (the approval
/// then stays with the operators).
pub fn decision(result: &ElicitResult, session: bool) -> Option<OperatorDecision> {
    match result.action {
        ElicitationAction::Decline => Some(OperatorDecision::Deny(DENIED.into())),
        ElicitationAction::Accept => match result.content.as_ref()?.get(FIELD)?.as_str()? {
            ALLOW_ONCE => Some(OperatorDecision::AllowOnce),
            ALLOW_SESSION if session => Some(OperatorDecision::AllowSession),
            DENY => Some(OperatorDecision::Deny(DENIED.into())),
            _ => None,
        },
        // Cancel (dismissed), and whatever later protocols add.
        _ => None,
    }
}

/// Asks over an MCP session with an elicitation request.
pub struct Elicitor {
    /// The client.
    pub peer: Peer<RoleServer>,
    /// Who decides when the human answers (the call's principal, named
    /// in the question).
    pub decider: Decider,
    /// How long the question stays open.
    pub wait: Duration,
}

impl ClientAsk for Elicitor {
    fn decider(&self) -> Decider {
        self.decider.clone()
    }

    fn ask(
        &self,
        approval: PendingApproval,
    ) -> Pin<Box<dyn Future<Output = Option<OperatorDecision>> + Send>> {
        let (peer, wait) = (self.peer.clone(), self.wait);
        let question = question(&approval, &self.decider.principal(), true);
        Box::pin(async move {
            let answer = peer
                .create_elicitation_with_timeout(question?, Some(wait))
                .await;
            match answer {
                Ok(result) => decision(&result, true),
                Err(error) => {
                    tracing::info!(approval = %approval.id, %error, "the MCP client could not be asked");
                    None
                }
            }
        })
    }
}

/// Why no seal could be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The operating system's random source failed.
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    /// The key was refused.
    #[error(transparent)]
    Key(#[from] rmcp::model::RequestStateError),
}

/// Seals the approval id into a 2026-07-28 `requestState`, bound to the
/// call it answers: the client echoes the state, so only an untampered
/// state for the same principal, session, tool and arguments opens.
pub struct Seal(RequestStateCodec);

impl Seal {
    /// A seal with a fresh random key: states do not outlive the server.
    pub fn new() -> Result<Self, SealError> {
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut_slice()).map_err(|e| SealError::Random(e.to_string()))?;
        Ok(Self(RequestStateCodec::try_new(key.to_vec())?))
    }

    /// The state for approval `id`, valid for `ttl`.
    pub fn seal(&self, id: &str, call: &CallBinding, ttl: Duration) -> String {
        self.0.seal_with(
            id.as_bytes(),
            &SealOptions::new().associated_data(&call.0).ttl(ttl),
        )
    }

    /// The approval id in `state`, if it is untampered, unexpired and was
    /// sealed for this same call.
    pub fn open(&self, state: &str, call: &CallBinding) -> Option<String> {
        let id = self.0.open_with(state, &call.0).ok()?;
        String::from_utf8(id).ok()
    }
}

/// What a sealed state is bound to: a digest of the call's principal,
/// session, tool and arguments.
pub struct CallBinding([u8; 32]);

impl CallBinding {
    /// The binding of one call.
    pub fn new(
        principal: &Principal,
        session: &str,
        tool: &str,
        arguments: &Map<String, Value>,
    ) -> Self {
        let mut hash = Sha256::new();
        for part in [
            principal.to_string().as_bytes(),
            session.as_bytes(),
            tool.as_bytes(),
            serde_json::to_string(arguments)
                .unwrap_or_default()
                .as_bytes(),
        ] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        Self(hash.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> PendingApproval {
        PendingApproval {
            id: "01APPROVAL".into(),
            tool: "fetch".into(),
            capabilities: vec!["network".into()],
            summary: "{\"url\":\"https://svc.test/\"}".into(),
        }
    }

    fn answer(action: ElicitationAction, content: Option<Value>) -> ElicitResult {
        let mut result = ElicitResult::new(action);
        result.content = content;
        result
    }

    #[test]
    fn the_question_names_the_call_and_offers_session_only_with_a_session() {
        let requester = Principal::agent("bot");
        for session in [true, false] {
            let Some(ElicitRequestParams::FormElicitationParams {
                message,
                requested_schema,
                ..
            }) = question(&pending(), &requester, session)
            else {
                panic!("a form question");
            };
            assert!(
                message.contains("`fetch`") && message.contains("01APPROVAL"),
                "{message}"
            );
            assert!(
                message.contains("Agent::\"bot\"") && message.contains("network"),
                "{message}"
            );
            let schema = serde_json::to_string(&requested_schema).expect("serializes");
            assert_eq!(schema.contains(ALLOW_SESSION), session, "{schema}");
            assert!(
                schema.contains(ALLOW_ONCE) && schema.contains(DENY),
                "{schema}"
            );
        }
    }

    #[test]
    fn answers_become_decisions_and_nothing_else_does() {
        let picked = |value: &str| Some(json!({ FIELD: value }));
        let cases = [
            (
                answer(ElicitationAction::Accept, picked(ALLOW_ONCE)),
                true,
                Some("allow_once"),
            ),
            (
                answer(ElicitationAction::Accept, picked(ALLOW_SESSION)),
                true,
                Some("allow_session"),
            ),
            // Not offered without a session, so not taken.
            (
                answer(ElicitationAction::Accept, picked(ALLOW_SESSION)),
                false,
                None,
            ),
            (
                answer(ElicitationAction::Accept, picked(DENY)),
                true,
                Some("deny"),
            ),
            (
                answer(ElicitationAction::Accept, picked("allow_until")),
                true,
                None,
            ),
            (answer(ElicitationAction::Accept, None), true, None),
            (answer(ElicitationAction::Decline, None), true, Some("deny")),
            (answer(ElicitationAction::Cancel, None), true, None),
        ];
        for (result, session, expected) in cases {
            let got = decision(&result, session);
            assert_eq!(
                got.as_ref().map(OperatorDecision::kind),
                expected,
                "{result:?}"
            );
        }
    }

    #[test]
    fn a_state_opens_only_for_the_call_it_was_sealed_for() {
        let seal = Seal::new().expect("random key");
        let arguments = |url: &str| {
            let Value::Object(map) = json!({ "url": url }) else {
                unreachable!()
            };
            map
        };
        let bot = Principal::agent("bot");
        let call = CallBinding::new(&bot, "s1", "fetch", &arguments("https://svc.test/a"));
        let state = seal.seal("01APPROVAL", &call, Duration::from_secs(60));
        assert_eq!(seal.open(&state, &call).as_deref(), Some("01APPROVAL"));

        let others = [
            CallBinding::new(
                &Principal::agent("eve"),
                "s1",
                "fetch",
                &arguments("https://svc.test/a"),
            ),
            CallBinding::new(&bot, "s2", "fetch", &arguments("https://svc.test/a")),
            CallBinding::new(&bot, "s1", "echo", &arguments("https://svc.test/a")),
            CallBinding::new(&bot, "s1", "fetch", &arguments("https://svc.test/b")),
        ];
        for other in &others {
            assert_eq!(seal.open(&state, other), None);
        }
        let mut tampered = state.clone();
        tampered.push('x');
        assert_eq!(seal.open(&tampered, &call), None);
        // Another server's key (a restart) does not open it either.
        let restarted = Seal::new().expect("random key");
        assert_eq!(restarted.open(&state, &call), None);
    }
}
