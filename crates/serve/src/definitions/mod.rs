//! Pinned definitions of hosted servers (the "rug pull" defence).
//!
//! The first time a server's program runs and each of its tools is listed,
//! the program's digest and the tool's whole definition (name, title,
//! description, input and output schemas, annotations) are pinned in the
//! store. A later listing that differs is not served: the pinned
//! definition keeps serving while the tool exists, a changed program
//! withholds all of the server's tools, and the change waits for an
//! operator as a [`Change`] to accept or reject. Pins, changes and
//! decisions are journaled (`server_definition`) and shared by replicas.

mod kept;

use airlock::journal::canonical_json;
use airlock::servers::HostedServer;
use airlock::store::{Store, StoreError};
use rmcp::model::Tool;
use serde::Serialize;
use serde_json::{Value, json};

/// The largest definition pinned (canonical JSON); a larger tool is not
/// served at all.
const MAX_DEFINITION: usize = 64 * 1024;

/// How long a diff may take before it is shown coarser.
const DIFF_DEADLINE: std::time::Duration = std::time::Duration::from_millis(250);

/// The fields of a listed tool that make its definition.
const DEFINITION_FIELDS: [&str; 6] = [
    "name",
    "title",
    "description",
    "inputSchema",
    "outputSchema",
    "annotations",
];

/// What a pin is of: a server's program, or one of its tools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// The program that runs the server.
    Program,
    /// The tool of this name (the server's own name for it).
    Tool(String),
}

impl Subject {
    /// As stored: `program` or `tool:NAME`.
    fn key(&self) -> String {
        match self {
            Subject::Program => "program".to_string(),
            Subject::Tool(name) => format!("tool:{name}"),
        }
    }

    fn from_key(key: &str) -> Self {
        match key.strip_prefix("tool:") {
            Some(name) => Subject::Tool(name.to_string()),
            None => Subject::Program,
        }
    }
}

impl Subject {
    /// Whether this is the server's program.
    pub fn is_program(&self) -> bool {
        matches!(self, Subject::Program)
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Program => f.write_str("its program"),
            Subject::Tool(name) => write!(f, "tool `{name}`"),
        }
    }
}

impl Serialize for Subject {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.key())
    }
}

/// A definition as pinned: its canonical JSON and that text's SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Definition {
    json: String,
    digest: String,
}

impl Definition {
    fn of(value: &Value) -> Self {
        let json = canonical_json(value);
        let digest = format!("sha256:{}", airlock::attest::sha256_hex(json.as_bytes()));
        Self { json, digest }
    }

    /// A listed tool's definition: [`DEFINITION_FIELDS`], as the server
    /// wrote them.
    fn of_tool(tool: &Tool) -> Self {
        let listed = serde_json::to_value(tool).unwrap_or(Value::Null);
        let kept: serde_json::Map<String, Value> = DEFINITION_FIELDS
            .iter()
            .filter_map(|field| Some(((*field).to_string(), listed.get(*field)?.clone())))
            .collect();
        Self::of(&Value::Object(kept))
    }

    /// The program's: the file its links end in, and that file's digest.
    fn of_program(server: &HostedServer) -> Self {
        Self::of(&json!({
            "program": server.program_target().display().to_string(),
            "sha256": server.sha256(),
        }))
    }
}

/// Where a change stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeStatus {
    /// Waiting for an operator; the pin keeps serving.
    Pending,
    /// An operator accepted it: the new definition is the pin.
    Accepted,
    /// An operator rejected it: the pin stays, and the same change is not
    /// asked again.
    Rejected,
    /// The server changed again before anyone decided: a newer change
    /// took its place.
    Superseded,
}

impl ChangeStatus {
    fn as_str(self) -> &'static str {
        match self {
            ChangeStatus::Pending => "pending",
            ChangeStatus::Accepted => "accepted",
            ChangeStatus::Rejected => "rejected",
            ChangeStatus::Superseded => "superseded",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            ChangeStatus::Pending,
            ChangeStatus::Accepted,
            ChangeStatus::Rejected,
            ChangeStatus::Superseded,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// A listing that differs from a pin: what was pinned, what the server
/// lists now, and what became of it.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    /// Its id, for `airlock servers accept|reject ID`.
    pub id: String,
    /// The server's name.
    pub server: String,
    /// What changed.
    pub subject: Subject,
    /// The pinned definition.
    pub old: Value,
    /// Its digest.
    pub old_digest: String,
    /// The definition the server lists now.
    pub new: Value,
    /// Its digest.
    pub new_digest: String,
    /// Where it stands.
    pub status: ChangeStatus,
    /// When it was first seen (RFC 3339).
    pub seen: String,
    /// When it was decided.
    pub decided_at: Option<String>,
    /// Who decided it (`operator:alice`, `operator:alice on device:ID`).
    pub decided_by: Option<String>,
}

impl Change {
    /// The change as a unified diff of the two definitions, pretty-printed
    /// with sorted keys, so each changed field is a line. Characters a
    /// reader would not see (controls, bidirectional overrides,
    /// zero-width ones) are written as `\u{…}`, so what is shown is what
    /// is accepted.
    pub fn diff(&self) -> String {
        let pretty = |value: &Value| {
            if value.is_null() {
                return String::new();
            }
            let sorted: Value = serde_json::from_str(&canonical_json(value)).unwrap_or(Value::Null);
            serde_json::to_string_pretty(&sorted).unwrap_or_default() + "\n"
        };
        let (old, new) = (pretty(&self.old), pretty(&self.new));
        let diff = similar::TextDiff::configure()
            .deadline(std::time::Instant::now() + DIFF_DEADLINE)
            .diff_lines(&old, &new)
            .unified_diff()
            .context_radius(3)
            .header(
                if self.old_digest.is_empty() {
                    "(new tool)"
                } else {
                    &self.old_digest
                },
                &self.new_digest,
            )
            .to_string();
        visible(&diff)
    }
}

/// `text` with every character a reader would not see written as
/// `\u{…}` (line breaks kept): controls, format characters (bidirectional
/// overrides, zero-width ones, soft hyphens, tags), line and paragraph
/// separators, variation selectors, fillers and private use.
pub fn visible(text: &str) -> String {
    let hidden = |c: char| {
        (c.is_control() && c != '\n')
            || matches!(c,
                '\u{ad}' | '\u{34f}' | '\u{61c}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}'
                | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}' | '\u{3164}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}'
                | '\u{ffa0}' | '\u{fff0}'..='\u{fffb}' | '\u{1bca0}'..='\u{1bca3}'
                | '\u{1d173}'..='\u{1d17a}' | '\u{e000}'..='\u{f8ff}' | '\u{e0000}'..='\u{e0fff}'
                | '\u{f0000}'..='\u{10ffff}')
    };
    text.chars()
        .map(|c| {
            if hidden(c) {
                format!("\\u{{{:04x}}}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// What an operator decides about a pending change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The new definition becomes the pin and is served.
    Accept,
    /// The pin stays; this change is not asked again.
    Reject,
}

/// Why pinning or deciding failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DefinitionError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No change has this id.
    #[error("no server definition change `{id}`: see `airlock servers changes --all`")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// The change was decided already (or a newer one took its place).
    #[error(
        "server definition change `{id}` is {status} already; only a pending change is decided"
    )]
    Decided {
        /// Its id.
        id: String,
        /// Where it stands.
        status: &'static str,
    },
    /// The server's program differs from its pin: it is not started.
    #[error(
        "server `{server}`'s program differs from the pinned one: it starts once an operator accepts the change (`airlock servers changes`)"
    )]
    ProgramHeld {
        /// The server's name.
        server: String,
    },
    /// Only an operator (or a device of one) decides what a server's tools
    /// say, never an agent's client.
    #[error(
        "only an operator decides a server definition change: `airlock servers accept|reject ID` or the console"
    )]
    NotAnOperator,
    /// A stored definition is not what airlock wrote.
    #[error("the stored definition of server `{server}` {subject} is unreadable: {message}")]
    Unreadable {
        /// The server's name.
        server: String,
        /// What it is of.
        subject: String,
        /// What was wrong.
        message: String,
    },
}

impl DefinitionError {
    /// Stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            DefinitionError::Store(e) => e.code(),
            DefinitionError::NotFound { .. } => "change_not_found",
            DefinitionError::Decided { .. } => "change_decided",
            DefinitionError::NotAnOperator => "not_an_operator",
            DefinitionError::ProgramHeld { .. } => "program_changed",
            DefinitionError::Unreadable { .. } => "definition_unreadable",
        }
    }
}

/// A server's listing after its pins: the tools to serve (each with its
/// pinned definition) and the changes this listing raised.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Settled {
    /// What to serve.
    pub tools: Vec<Tool>,
    /// Changes first seen in this listing.
    pub raised: Vec<Change>,
    /// The program differs from its pin: none of the server's tools are
    /// served.
    pub program_held: bool,
}

/// Whether a server's program may run.
#[derive(Debug)]
pub enum ProgramCheck {
    /// It is the pinned program (or none is pinned yet).
    Accepted,
    /// It differs from the pinned one: it waits for an operator, and the
    /// change if this check raised it.
    Held {
        /// The change raised now (none when it was asked before).
        raised: Option<Box<Change>>,
    },
}

/// The pins and changes of one store.
#[derive(Clone, Debug)]
pub struct Definitions(Store);

impl Definitions {
    /// The pins kept in `store`.
    pub fn in_store(store: &Store) -> Self {
        Self(store.clone())
    }

    /// Settles what `server` lists now against its pins, in one
    /// transaction: first sights are pinned, differences become pending
    /// changes and the pinned definitions are served instead.
    pub fn settle(
        &self,
        server: &HostedServer,
        listed: &[Tool],
    ) -> Result<Settled, DefinitionError> {
        if !server.config().pin {
            return Ok(Settled {
                tools: listed.to_vec(),
                ..Settled::default()
            });
        }
        // A server not started yet (lazy, or failed) lists nothing: its
        // first sight is its first real listing.
        if listed.is_empty() {
            return Ok(Settled::default());
        }
        self.0.transaction(
            "pinning a server's definitions",
            airlock::store::sql::Mode::Write,
            |tx| {
                let mut settled = Settled::default();
                let name = server.name();
                let program = Definition::of_program(server);
                let first_sight = match kept::check(tx, name, &Subject::Program, &program, true)? {
                    kept::Checked::FirstSight => true,
                    kept::Checked::Pinned => false,
                    kept::Checked::Differs { raised, .. } => {
                        settled.program_held = true;
                        settled.raised.extend(raised.map(|change| *change));
                        return Ok(settled);
                    }
                };
                for tool in listed {
                    let subject = Subject::Tool(tool.name.to_string());
                    let definition = Definition::of_tool(tool);
                    if definition.json.len() > MAX_DEFINITION {
                        tracing::warn!(server = %name, tool = %tool.name, bytes = definition.json.len(), "a tool's definition is larger than {MAX_DEFINITION} bytes: not served");
                        continue;
                    }
                    match kept::check(tx, name, &subject, &definition, first_sight)? {
                        kept::Checked::Pinned | kept::Checked::FirstSight => {
                            settled.tools.push(tool.clone());
                        }
                        kept::Checked::Differs { pinned, raised } => {
                            settled.raised.extend(raised.map(|change| *change));
                            if let Some(pinned) = pinned {
                                settled.tools.push(pinned_tool(name, &subject, &pinned)?);
                            }
                        }
                    }
                }
                Ok(settled)
            },
        )
    }

    /// Whether `server` may start: not when its program differs from the
    /// one pinned (the change is raised, once), so a replaced program never
    /// runs with the server's grants before an operator accepts it. A
    /// server never pinned may start: its first listing pins it.
    pub fn program_check(&self, server: &HostedServer) -> Result<ProgramCheck, DefinitionError> {
        if !server.config().pin {
            return Ok(ProgramCheck::Accepted);
        }
        let name = server.name();
        let program = Definition::of_program(server);
        // Read first: a server that is checked every second while it waits
        // takes the write lock only to raise its change.
        let pinned = self.0.transaction(
            "checking a server's program against its pin",
            airlock::store::sql::Mode::Read,
            |tx| kept::pinned_digest(tx, name, &Subject::Program),
        )?;
        if pinned.is_none_or(|digest| digest == program.digest) {
            return Ok(ProgramCheck::Accepted);
        }
        self.0.transaction(
            "raising a server's program change",
            airlock::store::sql::Mode::Write,
            |tx| {
                Ok(
                    match kept::check(tx, name, &Subject::Program, &program, false)? {
                        kept::Checked::Differs { raised, .. } => ProgramCheck::Held { raised },
                        kept::Checked::Pinned | kept::Checked::FirstSight => ProgramCheck::Accepted,
                    },
                )
            },
        )
    }

    /// The changes, newest first: pending ones, or all with `all`.
    pub fn changes(&self, all: bool) -> Result<Vec<Change>, DefinitionError> {
        self.0.transaction(
            "listing server definition changes",
            airlock::store::sql::Mode::Read,
            |tx| kept::changes(tx, all),
        )
    }

    /// Change `id`, if there is one.
    pub fn change(&self, id: &str) -> Result<Option<Change>, DefinitionError> {
        self.0.transaction(
            "reading a server definition change",
            airlock::store::sql::Mode::Read,
            |tx| kept::change(tx, id),
        )
    }

    /// Decides pending change `id` as `decided_by` (journaled): accepted,
    /// its definition becomes the pin.
    pub fn decide(
        &self,
        id: &str,
        verdict: Verdict,
        decided_by: &str,
    ) -> Result<Change, DefinitionError> {
        self.0.transaction(
            "deciding a server definition change",
            airlock::store::sql::Mode::Write,
            |tx| kept::decide(tx, id, verdict, decided_by),
        )
    }
}

/// The tool a pinned definition describes, to serve in place of what the
/// server lists now.
fn pinned_tool(server: &str, subject: &Subject, pinned: &str) -> Result<Tool, DefinitionError> {
    serde_json::from_str(pinned).map_err(|e| DefinitionError::Unreadable {
        server: server.to_string(),
        subject: subject.to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
