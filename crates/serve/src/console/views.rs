//! What the console's templates (`crates/serve/templates/console/`) render: plain
//! data the handlers fill. The templates are checked when airlock compiles
//! and escape everything they print.

use askama::Template;

/// Who is looking, shown in every page's header.
pub(super) struct Chrome {
    pub operator: String,
    pub device: String,
    pub device_id: String,
    pub csrf: String,
    /// The page's section, for `aria-current`.
    pub section: &'static str,
}

#[derive(Template)]
#[template(path = "console/pair.html")]
pub(super) struct PairPage {
    pub csrf: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/error.html")]
pub(super) struct ErrorPage<'a> {
    pub status: String,
    pub message: &'a str,
}

/// One pending approval, as an approver reads it.
pub(super) struct ApprovalView {
    pub id: String,
    pub tool: String,
    pub tool_sha256: String,
    pub world: String,
    pub capabilities: String,
    pub agent: String,
    pub created: String,
    /// Whether it was asked in a session that is still open ("allow for
    /// the session" applies).
    pub session: bool,
    /// The whole input, pretty-printed, nothing in it invisible.
    pub input: String,
    /// SHA-256 of the input, as a client's question for a long input
    /// shows it.
    pub input_sha256: String,
    /// Whether the whole input was kept (approvals from before airlock
    /// kept inputs have only a summary, which is not offered for "allow").
    pub readable: bool,
    pub grant: String,
}

#[derive(Template)]
#[template(path = "console/approvals.html")]
pub(super) struct ApprovalsPage<'a> {
    pub chrome: &'a Chrome,
    pub notice: Option<String>,
    pub error: Option<String>,
    pub items: Vec<ApprovalView>,
    pub max_window: String,
}

/// The approvals alone, sent over server-sent events.
#[derive(Template)]
#[template(path = "console/approval_list.html")]
pub(super) struct ApprovalList<'a> {
    pub chrome: &'a Chrome,
    pub items: Vec<ApprovalView>,
}

/// The journal's filters, as typed.
#[derive(Default)]
pub(super) struct Filter {
    pub tool: String,
    pub principal: String,
    pub outcome: String,
    pub reason: String,
    pub kind: String,
    pub since: String,
    pub until: String,
}

pub(super) struct RowView {
    pub seq: u64,
    pub time: String,
    pub kind: String,
    pub tool: String,
    pub principal: String,
    pub outcome: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "console/journal.html")]
pub(super) struct JournalPage<'a> {
    pub chrome: &'a Chrome,
    pub filter: Filter,
    /// The entry kinds to pick from, and whether each is the one picked.
    pub kinds: Vec<(&'static str, bool)>,
    pub rows: Vec<RowView>,
    pub error: Option<String>,
    pub note: Option<String>,
    /// Query strings of the first page and the next older one.
    pub newer: Option<String>,
    pub older: Option<String>,
}

/// An entry's inclusion proof, checked.
pub(super) struct ProofView {
    /// `verified`, `pending` (no signed head covers it yet) or `failed`.
    pub state: &'static str,
    pub message: String,
    pub head_size: u64,
    pub head_time: String,
    pub root: String,
    pub key_id: String,
    pub path: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/entry.html")]
pub(super) struct EntryPage<'a> {
    pub chrome: &'a Chrome,
    pub seq: u64,
    pub time: String,
    pub kind: String,
    pub payload: String,
    pub attestation: Vec<(String, String)>,
    pub egress: Vec<String>,
    pub egress_check: Option<String>,
    pub proof: ProofView,
}

pub(super) struct RecentView {
    pub seq: u64,
    pub time: String,
    pub outcome: String,
    pub principal: String,
}

pub(super) struct ToolView {
    pub name: String,
    pub description: String,
    pub sha256: String,
    pub world: String,
    pub capabilities: String,
    pub sensitive: bool,
    pub grant: String,
    pub credentials: String,
    pub recent: Vec<RecentView>,
}

#[derive(Template)]
#[template(path = "console/tools.html")]
pub(super) struct ToolsPage<'a> {
    pub chrome: &'a Chrome,
    pub tools: Vec<ToolView>,
}

/// One pending change of a hosted server's definition.
pub(super) struct ChangeView {
    pub id: String,
    pub server: String,
    pub subject: String,
    pub seen: String,
    pub old_digest: String,
    pub new_digest: String,
    /// The two definitions as a unified diff, line by line, each with
    /// its class (`add`, `del` or `same`).
    pub diff: Vec<(&'static str, String)>,
}

#[derive(Template)]
#[template(path = "console/changes.html")]
pub(super) struct ChangesPage<'a> {
    pub chrome: &'a Chrome,
    pub notice: Option<String>,
    pub error: Option<String>,
    pub changes: Vec<ChangeView>,
}

pub(super) struct DeviceView {
    pub id: String,
    pub label: String,
    pub operator: String,
    pub paired: String,
    pub last_seen: String,
    pub revoked: Option<String>,
    /// The browser looking at the page.
    pub current: bool,
}

#[derive(Template)]
#[template(path = "console/devices.html")]
pub(super) struct DevicesPage<'a> {
    pub chrome: &'a Chrome,
    pub notice: Option<String>,
    pub devices: Vec<DeviceView>,
}

/// `items` joined for a page, or `none`.
pub(super) fn listed(items: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let joined = items
        .into_iter()
        .map(|i| i.as_ref().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if joined.is_empty() {
        "none".to_string()
    } else {
        joined
    }
}
