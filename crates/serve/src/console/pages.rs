//! One handler per page: pairing, pending approvals and their decisions,
//! tools, devices. Each asks the [`Server`](super::Server) and hands plain
//! data to its template.

use super::views::{
    ApprovalView, ApprovalsPage, Chrome, DeviceView, DevicesPage, ErrorPage, PairPage, RecentView,
    ToolView, ToolsPage, listed,
};
use super::web::{self, Body, DEVICE_COOKIE, PAIR_COOKIE};
use super::{Console, Viewer};
use crate::Server;
use crate::decide::{DecideError, Decider};
use crate::devices::DeviceError;
use airlock::approvals::{Approval, ApprovalError, OperatorDecision, Scope, Status};
use askama::Template;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use std::collections::HashMap;
use std::time::Instant;

/// How long a paired browser keeps its cookie (Chromium's longest).
const DEVICE_COOKIE_AGE: u64 = 400 * 24 * 3600;
/// How long the pairing page's own cookie lasts.
const PAIR_COOKIE_AGE: u64 = 15 * 60;
/// Journal entries searched for a tool's recent outcomes.
const RECENT_SCAN: usize = 2000;
/// Recent outcomes shown per tool.
const RECENT_PER_TOOL: usize = 5;

/// Renders `template` with `status`.
pub(super) fn render(status: StatusCode, template: &impl Template) -> Response<Body> {
    match template.render() {
        Ok(page) => web::html(status, page),
        Err(error) => {
            tracing::error!(%error, "console: a page did not render");
            web::text(StatusCode::INTERNAL_SERVER_ERROR, "the page did not render")
        }
    }
}

/// A page that says what went wrong.
pub(super) fn failure(status: StatusCode, message: &str) -> Response<Body> {
    render(
        status,
        &ErrorPage {
            status: status.to_string(),
            message,
        },
    )
}

pub(super) fn store_failed(error: &impl std::fmt::Display) -> Response<Body> {
    tracing::error!(%error, "console: the state database failed");
    failure(
        StatusCode::SERVICE_UNAVAILABLE,
        "the server's state database failed; try again",
    )
}

impl Viewer {
    pub(super) fn chrome(&self, section: &'static str) -> Chrome {
        Chrome {
            operator: self.device.operator.clone(),
            device: self.device.label.clone(),
            device_id: self.device.id.clone(),
            csrf: self.csrf.clone(),
            section,
        }
    }

    pub(super) fn decider(&self) -> Decider {
        Decider::Device {
            id: self.device.id.clone(),
            operator: self.device.operator.clone(),
        }
    }
}

/// The pairing page; its form's CSRF token is bound to a cookie of its own.
pub(super) fn pair_form(
    console: &Console,
    headers: &HeaderMap,
    error: Option<(StatusCode, String)>,
) -> Response<Body> {
    let (nonce, fresh) = match web::cookie(headers, PAIR_COOKIE) {
        Some(nonce) => (nonce.to_string(), false),
        None => match crate::agents::random_token("") {
            Ok(nonce) => (nonce.to_string(), true),
            Err(error) => {
                let message = format!("the system random source failed: {error}");
                return failure(StatusCode::SERVICE_UNAVAILABLE, &message);
            }
        },
    };
    let (status, error) = error.map_or((StatusCode::OK, None), |(s, e)| (s, Some(e)));
    let page = PairPage {
        csrf: console.csrf.token(&format!("pair:{nonce}")),
        error,
    };
    let mut response = render(status, &page);
    if fresh {
        web::set_cookie(&mut response, PAIR_COOKIE, &nonce, Some(PAIR_COOKIE_AGE));
    }
    response
}

/// A pairing code entered: the browser becomes a device, or is told why not.
pub(super) fn pair(
    console: &Console,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Response<Body> {
    let nonce = web::cookie(headers, PAIR_COOKIE).unwrap_or_default();
    let csrf = form.get("csrf").map(String::as_str);
    if nonce.is_empty() || !console.csrf.check(&format!("pair:{nonce}"), csrf) {
        return failure(
            StatusCode::FORBIDDEN,
            "csrf_refused: the pairing form's token is missing or stale; open /pair again",
        );
    }
    let code = form.get("code").map_or("", String::as_str);
    let label = form.get("label").map_or("", String::as_str);
    match console.server.devices().redeem(code, label, Instant::now()) {
        Ok((device, cookie)) => {
            tracing::info!(device = %device.id, operator = %device.operator, "console: a device paired");
            let mut response = web::see_other("/");
            web::set_cookie(
                &mut response,
                DEVICE_COOKIE,
                cookie.expose(),
                Some(DEVICE_COOKIE_AGE),
            );
            web::set_cookie(&mut response, PAIR_COOKIE, "", None);
            response
        }
        Err(error) => {
            tracing::warn!(
                code = error.code(),
                "console: a pairing attempt was refused"
            );
            let status = match &error {
                DeviceError::CodeRefused => StatusCode::BAD_REQUEST,
                DeviceError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            let mut response = pair_form(console, headers, Some((status, error.to_string())));
            if let DeviceError::TooManyAttempts { retry_after } = error
                && let Ok(value) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string())
            {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
    }
}

/// The pending approvals as an approver reads them.
pub(super) fn pending(server: &Server) -> Result<Vec<ApprovalView>, airlock::store::StoreError> {
    let Some(store) = server.host().approvals() else {
        return Ok(Vec::new());
    };
    let catalog = server.catalog();
    Ok(store
        .list(true)?
        .into_iter()
        .map(|approval| {
            let request = approval.request;
            let world = catalog
                .tools
                .iter()
                .find(|t| {
                    t.tool.name() == request.tool_name && t.tool.sha256() == request.tool_sha256
                })
                .map_or_else(
                    || "unknown: this build of the tool is no longer loaded".to_string(),
                    |t| t.tool.world().to_string(),
                );
            let input = airlock::approvals::shown_input(&request);
            ApprovalView {
                id: approval.id,
                tool: request.tool_name,
                tool_sha256: request.tool_sha256,
                world,
                capabilities: listed(&request.capabilities),
                agent: request.principal,
                created: approval.created,
                session: !request.session_id.is_empty() && !approval.used,
                input_sha256: airlock::approvals::input_sha256(&request.input),
                input,
                readable: !request.input.is_empty(),
                grant: request.grant_summary,
            }
        })
        .collect())
}

/// What a decided approval now says, for the notice after a decision.
fn decided(approval: &Approval) -> String {
    let what = match &approval.status {
        Status::Pending => "is still pending".to_string(),
        Status::Allowed(Scope::Once) => "allowed once".to_string(),
        Status::Allowed(Scope::Session) => "allowed for the session".to_string(),
        Status::Allowed(Scope::Until(until)) => format!(
            "allowed until {}",
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(*until)
            )
        ),
        Status::Denied(reason) => format!("denied ({reason})"),
    };
    format!(
        "Approval {} for `{}`: {what}.",
        approval.id, approval.request.tool_name
    )
}

/// The approvals page; `error` when a decision was refused.
pub(super) fn approvals(
    console: &Console,
    viewer: &Viewer,
    query: &HashMap<String, String>,
    error: Option<(StatusCode, String)>,
) -> Response<Body> {
    let items = match pending(&console.server) {
        Ok(items) => items,
        Err(e) => return store_failed(&e),
    };
    let notice = query
        .get("decided")
        .and_then(|id| console.server.host().approvals()?.get(id).ok().flatten())
        .map(|approval| decided(&approval));
    let (status, error) = error.map_or((StatusCode::OK, None), |(s, e)| (s, Some(e)));
    let chrome = viewer.chrome("approvals");
    render(
        status,
        &ApprovalsPage {
            chrome: &chrome,
            notice,
            error,
            items,
            max_window: humantime::format_duration(console.server.settings().max_approval_window)
                .to_string(),
        },
    )
}

/// The decision a form asks for.
fn decision_in(form: &HashMap<String, String>) -> Result<OperatorDecision, String> {
    let field = |name: &str| form.get(name).map_or("", |v| v.trim());
    match field("decision") {
        "allow_once" => Ok(OperatorDecision::AllowOnce),
        "allow_session" => Ok(OperatorDecision::AllowSession),
        "allow_until" => humantime::parse_duration(field("for"))
            .map(OperatorDecision::AllowFor)
            .map_err(|_| {
                "give how long to allow it, e.g. `30m` or `2h`, then press \"Allow until then\""
                    .to_string()
            }),
        "deny" => Ok(OperatorDecision::Deny(match field("reason") {
            "" => "denied from the console".to_string(),
            reason => reason.to_string(),
        })),
        other => Err(format!(
            "`{other}` is not a decision: allow_once, allow_session, allow_until or deny"
        )),
    }
}

/// A decision from the approvals page, as this device.
pub(super) fn decide(
    console: &Console,
    viewer: &Viewer,
    id: &str,
    form: &HashMap<String, String>,
) -> Response<Body> {
    let none = HashMap::new();
    let decision = match decision_in(form) {
        Ok(decision) => decision,
        Err(message) => {
            return approvals(
                console,
                viewer,
                &none,
                Some((StatusCode::BAD_REQUEST, message)),
            );
        }
    };
    match console.server.decide(&viewer.decider(), id, &decision) {
        Ok(approval) => web::see_other(&format!("/?decided={}", approval.id)),
        Err(error) => {
            let status = match &error {
                DecideError::PolicyDenied(_) => StatusCode::FORBIDDEN,
                DecideError::Approval(ApprovalError::WindowTooLong { .. }) => {
                    StatusCode::BAD_REQUEST
                }
                DecideError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::CONFLICT,
            };
            let message = format!("{}: {error}", error.code());
            approvals(console, viewer, &none, Some((status, message)))
        }
    }
}

/// Each loaded tool, with its last outcomes from the journal.
pub(super) fn tools(console: &Console, viewer: &Viewer) -> Response<Body> {
    let mut recent: HashMap<String, Vec<RecentView>> = HashMap::new();
    if let Some(journal) = console.server.host().journal() {
        let entries = match journal.store().before(u64::MAX, RECENT_SCAN) {
            Ok(entries) => entries,
            Err(e) => return store_failed(&e),
        };
        for entry in &entries {
            if let Some(attestation) = airlock::attest::attestation_in(entry) {
                let runs = recent.entry(attestation.tool).or_default();
                if runs.len() < RECENT_PER_TOOL {
                    runs.push(RecentView {
                        seq: entry.seq,
                        time: entry.time.clone(),
                        outcome: attestation.outcome,
                        principal: attestation.principal,
                    });
                }
            }
        }
    }
    let tools = console
        .server
        .catalog()
        .tools
        .iter()
        .map(|served| {
            let tool = &served.tool;
            let facts = tool.facts();
            ToolView {
                name: tool.name().to_string(),
                description: tool.description().to_string(),
                sha256: tool.sha256().to_string(),
                world: tool.world().to_string(),
                capabilities: listed(facts.capabilities.iter().map(|c| c.as_str())),
                sensitive: facts.sensitive,
                grant: tool.binding().summary,
                credentials: listed(tool.credential_names()),
                recent: recent.remove(tool.name()).unwrap_or_default(),
            }
        })
        .collect();
    let chrome = viewer.chrome("tools");
    render(
        StatusCode::OK,
        &ToolsPage {
            chrome: &chrome,
            tools,
        },
    )
}

/// The paired devices; `notice` after a revocation.
pub(super) fn devices(
    console: &Console,
    viewer: &Viewer,
    notice: Option<(StatusCode, String)>,
) -> Response<Body> {
    let devices = match console.server.devices().list() {
        Ok(devices) => devices,
        Err(e) => return store_failed(&e),
    };
    let devices = devices
        .into_iter()
        .map(|d| DeviceView {
            current: d.id == viewer.device.id,
            last_seen: d.last_seen.unwrap_or_else(|| "never".into()),
            id: d.id,
            label: d.label,
            operator: d.operator,
            paired: d.paired,
            revoked: d.revoked,
        })
        .collect();
    let (status, notice) = notice.map_or((StatusCode::OK, None), |(s, n)| (s, Some(n)));
    let chrome = viewer.chrome("devices");
    render(
        status,
        &DevicesPage {
            chrome: &chrome,
            notice,
            devices,
        },
    )
}

/// Revokes a device from the devices page (this one included: it is then
/// sent back to pairing).
pub(super) fn revoke(console: &Console, viewer: &Viewer, id: &str) -> Response<Body> {
    match console
        .server
        .devices()
        .revoke(id, &viewer.decider().recorded_as())
    {
        Ok(device) if device.id == viewer.device.id => {
            let mut response = web::see_other("/pair");
            web::set_cookie(&mut response, DEVICE_COOKIE, "", None);
            response
        }
        Ok(device) => devices(
            console,
            viewer,
            Some((
                StatusCode::OK,
                format!("Device {} ({}) revoked.", device.label, device.id),
            )),
        ),
        Err(DeviceError::Store(e)) => store_failed(&e),
        Err(error) => devices(
            console,
            viewer,
            Some((StatusCode::CONFLICT, format!("{}: {error}", error.code()))),
        ),
    }
}
