//! The hosted servers' definition changes, beside the approvals: each as a
//! diff, accepted or rejected as this device's operator.

use super::pages::{render, store_failed};
use super::views::{ChangeView, ChangesPage};
use super::web::{self, Body};
use super::{Console, Viewer};
use crate::ServeError;
use crate::definitions::{Change, DefinitionError, Verdict};
use http::{Response, StatusCode};
use std::collections::HashMap;

/// The pending changes; a notice after a decision, or why one failed.
pub(super) fn list(
    console: &Console,
    viewer: &Viewer,
    query: &HashMap<String, String>,
    error: Option<(StatusCode, String)>,
) -> Response<Body> {
    let changes = match console.server.definition_changes(false) {
        Ok(changes) => changes,
        Err(e) => return store_failed(&e),
    };
    let notice = query
        .get("decided")
        .and_then(|id| console.server.definition_change(id).ok().flatten())
        .map(|change| {
            format!(
                "Change {} to server `{}` {}: {}.",
                change.id,
                change.server,
                change.subject,
                match change.decided_by.as_deref() {
                    Some(by) => format!("{} by {by}", status_word(&change)),
                    None => status_word(&change).to_string(),
                }
            )
        });
    let items = changes
        .into_iter()
        .map(|change| ChangeView {
            diff: change
                .diff()
                .lines()
                .map(|line| {
                    let class = match line.as_bytes().first() {
                        Some(b'+') if !line.starts_with("+++") => "add",
                        Some(b'-') if !line.starts_with("---") => "del",
                        _ => "same",
                    };
                    (class, line.to_string())
                })
                .collect(),
            subject: change.subject.to_string(),
            id: change.id,
            server: change.server,
            seen: change.seen,
            old_digest: change.old_digest,
            new_digest: change.new_digest,
        })
        .collect();
    let (status, error) = error.map_or((StatusCode::OK, None), |(s, e)| (s, Some(e)));
    let chrome = viewer.chrome("changes");
    render(
        status,
        &ChangesPage {
            chrome: &chrome,
            notice,
            error,
            changes: items,
        },
    )
}

fn status_word(change: &Change) -> &'static str {
    use crate::definitions::ChangeStatus;
    match change.status {
        ChangeStatus::Pending => "is still pending",
        ChangeStatus::Accepted => "accepted",
        ChangeStatus::Rejected => "rejected",
        ChangeStatus::Superseded => "superseded by a newer change",
    }
}

/// Accepts or rejects change `id` (`verdict` as the form's path says).
pub(super) async fn decide(
    console: &Console,
    viewer: &Viewer,
    id: &str,
    verdict: &str,
) -> Response<Body> {
    let verdict = match verdict {
        "accept" => Verdict::Accept,
        "reject" => Verdict::Reject,
        _ => return super::pages::failure(StatusCode::NOT_FOUND, "no such page"),
    };
    match console
        .server
        .decide_definition(&viewer.decider(), id, verdict)
        .await
    {
        Ok(change) => web::see_other(&format!("/changes?decided={}", change.id)),
        Err(ServeError::Definition(DefinitionError::Store(e)) | ServeError::Store(e)) => {
            store_failed(&e)
        }
        Err(error) => {
            let status = match &error {
                ServeError::Definition(DefinitionError::NotFound { .. }) => StatusCode::NOT_FOUND,
                _ => StatusCode::CONFLICT,
            };
            let message = format!("{}: {error}", error.code());
            list(console, viewer, &HashMap::new(), Some((status, message)))
        }
    }
}
