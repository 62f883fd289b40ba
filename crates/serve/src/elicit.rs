//! Client approvals over MCP (`approvals = "client"`): the question put to
//! the human at the client (a form elicitation, which the model cannot
//! answer), the answer read back as a decision, and the sealed
//! `requestState` that ties a 2026-07-28 retry to the approval it answers.

use super::call::ClientAsk;
use super::decide::Decider;
use airlock::approvals::{Approval, OperatorDecision, input_sha256, readable_input};
use airlock::policy::Principal;
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
pub(crate) const APPROVAL_INPUT: &str = "airlock.approval";

/// How long a 2026-07-28 client has to come back with the human's answer:
/// the state it echoes expires then (the approval itself stays pending for
/// the operators).
pub(crate) const ANSWER_WITHIN: Duration = Duration::from_secs(15 * 60);

/// The form field that carries the answer.
const FIELD: &str = "decision";

/// The answers, as the form offers them.
const ALLOW_ONCE: &str = "allow_once";
const ALLOW_SESSION: &str = "allow_session";
const DENY: &str = "deny";
const OPERATORS: &str = "leave_to_operators";

/// What a human's "deny" or "decline" records as the reason.
const DENIED: &str = "denied by the human at the MCP client";

/// The most characters of input a question shows. A form's message is
/// read in a client's dialog, which may cut or fold a long text in ways
/// the server cannot see; 2,000 characters (about 25 lines of 80) is a
/// screenful a person reads through. A longer input is not offered for
/// "allow": the question shows its beginning and its SHA-256 and leaves
/// it to the operators, who see it whole.
pub(crate) const FORM_INPUT_CHARS: usize = 2_000;

/// What a question offers besides "deny".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Choices {
    /// "Allow once": only when the whole input is in the question.
    pub allow: bool,
    /// "Allow for this session": also only for an approval requested in
    /// the asking call's own session, while that session is open.
    pub session: bool,
}

impl Choices {
    /// The choices for `approval`, asked of a call in MCP session
    /// `session` (empty: none).
    pub(crate) fn for_call(approval: &Approval, session: &str) -> Self {
        let shown = readable_input(&approval.request.input);
        let allow = !approval.request.input.is_empty() && shown.chars().count() <= FORM_INPUT_CHARS;
        Self {
            allow,
            session: allow
                && !session.is_empty()
                && approval.request.session_id == session
                && !approval.used,
        }
    }
}

/// The question for `approval`, asked on behalf of `requester`, offering
/// `choices`.
pub(crate) fn question(
    approval: &Approval,
    requester: &Principal,
    choices: Choices,
) -> Option<ElicitRequestParams> {
    let mut offered = Vec::new();
    if choices.allow {
        offered.push(json!({ "const": ALLOW_ONCE, "title": "Allow this call once" }));
        if choices.session {
            offered.push(
                json!({ "const": ALLOW_SESSION, "title": "Allow this tool for this session" }),
            );
        }
    } else {
        offered.push(json!({ "const": OPERATORS, "title": "Leave it to the operators" }));
    }
    offered.push(json!({ "const": DENY, "title": "Deny" }));
    let schema = json!({
        "type": "object",
        "properties": {
            FIELD: { "type": "string", "title": "Decision", "oneOf": offered },
        },
        "required": [FIELD],
    });
    let Value::Object(schema) = schema else {
        return None;
    };
    let requested_schema = ElicitationSchema::from_json_schema(schema).ok()?;
    let request = &approval.request;
    let capabilities = if request.capabilities.is_empty() {
        "none".to_string()
    } else {
        request.capabilities.join(", ")
    };
    let asks = format!(
        "airlock: {requester} asks to run `{}` (capabilities: {capabilities})",
        request.tool_name
    );
    let id = &approval.id;
    let message = if choices.allow {
        format!(
            "{asks} with this input:\n{}\nAllow it? (approval {id}; the model cannot answer this question)",
            readable_input(&request.input)
        )
    } else {
        let shown = readable_input(&request.input);
        format!(
            "{asks} with an input too long to show here whole ({} characters; only the first {} \
             follow, truncated):\n{}…\nIts SHA-256 is {}. You cannot allow what you cannot read: \
             deny it, or leave it to the operators, who see it whole (`airlock approvals show {id}` \
             or the console). (approval {id}; the model cannot answer this question)",
            shown.chars().count(),
            FORM_INPUT_CHARS,
            shown.chars().take(FORM_INPUT_CHARS).collect::<String>(),
            input_sha256(&request.input),
        )
    };
    Some(ElicitRequestParams::FormElicitationParams {
        meta: None,
        message,
        requested_schema,
    })
}

/// The decision in the human's answer to a question that offered
/// `choices`; `None` when they dismissed the question, left it to the
/// operators, or answered something it did not offer (the approval then
/// stays with the operators).
pub(crate) fn decision(result: &ElicitResult, choices: Choices) -> Option<OperatorDecision> {
    match result.action {
        ElicitationAction::Decline => Some(OperatorDecision::Deny(DENIED.into())),
        ElicitationAction::Accept => match result.content.as_ref()?.get(FIELD)?.as_str()? {
            ALLOW_ONCE if choices.allow => Some(OperatorDecision::AllowOnce),
            ALLOW_SESSION if choices.session => Some(OperatorDecision::AllowSession),
            DENY => Some(OperatorDecision::Deny(DENIED.into())),
            _ => None,
        },
        // Cancel (dismissed), and whatever later protocols add.
        _ => None,
    }
}

/// Asks over an MCP session with an elicitation request.
pub(crate) struct Elicitor {
    /// The client.
    pub peer: Peer<RoleServer>,
    /// Who decides when the human answers (the call's principal, named
    /// in the question).
    pub decider: Decider,
    /// The session the call came in.
    pub session: String,
    /// How long the question stays open.
    pub wait: Duration,
}

impl ClientAsk for Elicitor {
    fn decider(&self) -> Decider {
        self.decider.clone()
    }

    fn ask(
        &self,
        approval: Approval,
    ) -> Pin<Box<dyn Future<Output = Option<OperatorDecision>> + Send>> {
        let (peer, wait) = (self.peer.clone(), self.wait);
        let choices = Choices::for_call(&approval, &self.session);
        let question = question(&approval, &self.decider.principal(), choices);
        Box::pin(async move {
            let answer = peer
                .create_elicitation_with_timeout(question?, Some(wait))
                .await;
            match answer {
                Ok(result) => decision(&result, choices),
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
pub(crate) struct Seal(RequestStateCodec);

impl Seal {
    /// A seal with a fresh random key: states do not outlive the server.
    pub(crate) fn new() -> Result<Self, SealError> {
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut_slice()).map_err(|e| SealError::Random(e.to_string()))?;
        Ok(Self(RequestStateCodec::try_new(key.to_vec())?))
    }

    /// The state for approval `id`, valid for `ttl`.
    pub(crate) fn seal(&self, id: &str, call: &CallBinding, ttl: Duration) -> String {
        self.0.seal_with(
            id.as_bytes(),
            &SealOptions::new().associated_data(&call.0).ttl(ttl),
        )
    }

    /// The approval id in `state`, if it is untampered, unexpired and was
    /// sealed for this same call.
    pub(crate) fn open(&self, state: &str, call: &CallBinding) -> Option<String> {
        let id = self.0.open_with(state, &call.0).ok()?;
        String::from_utf8(id).ok()
    }
}

/// What a sealed state is bound to: a digest of the call's principal,
/// session, tool and arguments.
pub(crate) struct CallBinding([u8; 32]);

impl CallBinding {
    /// The binding of one call.
    pub(crate) fn new(
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

    /// A pending approval of `fetch` with `input`, requested in session `s1`.
    fn pending(input: &str) -> Approval {
        Approval {
            id: "01APPROVAL".into(),
            created: String::new(),
            request: airlock::approvals::ApprovalRequest::new(
                "Agent::\"bot\"",
                "s1",
                "fetch",
                "sha",
                &["network".into()],
                airlock::approvals::GrantBinding::new(String::new(), []),
                input,
            ),
            status: airlock::approvals::Status::Pending,
            decided_at: None,
            used: false,
            decided_by: None,
        }
    }

    const SHORT: &str = "{\"url\":\"https://svc.test/\"}";

    fn answer(action: ElicitationAction, content: Option<Value>) -> ElicitResult {
        let mut result = ElicitResult::new(action);
        result.content = content;
        result
    }

    /// The message and the offered answers of a question.
    fn asked(approval: &Approval, choices: Choices) -> (String, String) {
        let Some(ElicitRequestParams::FormElicitationParams {
            message,
            requested_schema,
            ..
        }) = question(approval, &Principal::agent("bot"), choices)
        else {
            panic!("a form question");
        };
        let schema = serde_json::to_string(&requested_schema).expect("serializes");
        (message, schema)
    }

    #[test]
    fn the_question_names_the_call_and_shows_the_whole_input() {
        let tail = "&then=DELETE-ALL-RECORDS&confirm=yes";
        let input =
            json!({ "url": format!("http://svc.test/reports/weekly-summary-readonly?x=1{tail}") })
                .to_string();
        let approval = pending(&input);
        let choices = Choices::for_call(&approval, "s1");
        assert_eq!(
            choices,
            Choices {
                allow: true,
                session: true
            }
        );
        let (message, schema) = asked(&approval, choices);
        assert!(message.contains(tail), "the tail is shown: {message}");
        assert!(
            message.contains("`fetch`")
                && message.contains("01APPROVAL")
                && message.contains("Agent::\"bot\"")
                && message.contains("network"),
            "{message}"
        );
        for offered in [ALLOW_ONCE, ALLOW_SESSION, DENY] {
            assert!(schema.contains(offered), "{offered}: {schema}");
        }
        assert!(!schema.contains(OPERATORS), "{schema}");
    }

    #[test]
    fn the_session_is_offered_only_for_the_approvals_own_open_session() {
        let approval = pending(SHORT);
        for (session, ended, offered) in [
            ("s1", false, true),
            // Session-less calls, and calls of another session, are not
            // in the session the approval would cover.
            ("", false, false),
            ("s2", false, false),
            // Nor is anyone once that session ended.
            ("s1", true, false),
        ] {
            let approval = Approval {
                used: ended,
                ..approval.clone()
            };
            let choices = Choices::for_call(&approval, session);
            assert!(choices.allow);
            assert_eq!(choices.session, offered, "{session:?} ended {ended}");
            let (_, schema) = asked(&approval, choices);
            assert_eq!(schema.contains(ALLOW_SESSION), offered, "{schema}");
        }
    }

    #[test]
    fn an_input_too_long_to_show_cannot_be_allowed_from_the_question() {
        let long =
            json!({ "text": "x".repeat(FORM_INPUT_CHARS), "then": "DELETE-ALL" }).to_string();
        let approval = pending(&long);
        let choices = Choices::for_call(&approval, "s1");
        assert_eq!(
            choices,
            Choices {
                allow: false,
                session: false
            }
        );
        let (message, schema) = asked(&approval, choices);
        assert!(
            message.contains(&airlock::approvals::input_sha256(&long)),
            "{message}"
        );
        assert!(message.contains("truncated"), "{message}");
        assert!(!message.contains("DELETE-ALL"), "cut where it says");
        assert!(
            schema.contains(OPERATORS) && schema.contains(DENY),
            "{schema}"
        );
        assert!(
            !schema.contains(ALLOW_ONCE) && !schema.contains(ALLOW_SESSION),
            "never allow on text the person could not read: {schema}"
        );
        // An answer the question did not offer decides nothing.
        let picked = |value: &str| answer(ElicitationAction::Accept, Some(json!({ FIELD: value })));
        assert_eq!(decision(&picked(ALLOW_ONCE), choices), None);
        assert_eq!(decision(&picked(OPERATORS), choices), None);
        assert_eq!(
            decision(&picked(DENY), choices)
                .as_ref()
                .map(OperatorDecision::kind),
            Some("deny")
        );
        // An input kept by no approval (older rows) is not shown either.
        assert!(!Choices::for_call(&pending(""), "s1").allow);
    }

    #[test]
    fn answers_become_decisions_and_nothing_else_does() {
        let picked = |value: &str| Some(json!({ FIELD: value }));
        let all = Choices {
            allow: true,
            session: true,
        };
        let once_only = Choices {
            allow: true,
            session: false,
        };
        let cases = [
            (
                answer(ElicitationAction::Accept, picked(ALLOW_ONCE)),
                all,
                Some("allow_once"),
            ),
            (
                answer(ElicitationAction::Accept, picked(ALLOW_SESSION)),
                all,
                Some("allow_session"),
            ),
            // Not offered, so not taken.
            (
                answer(ElicitationAction::Accept, picked(ALLOW_SESSION)),
                once_only,
                None,
            ),
            (
                answer(ElicitationAction::Accept, picked(DENY)),
                all,
                Some("deny"),
            ),
            (
                answer(ElicitationAction::Accept, picked("allow_until")),
                all,
                None,
            ),
            (answer(ElicitationAction::Accept, None), all, None),
            (answer(ElicitationAction::Decline, None), all, Some("deny")),
            (answer(ElicitationAction::Cancel, None), all, None),
        ];
        for (result, choices, expected) in cases {
            let got = decision(&result, choices);
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
