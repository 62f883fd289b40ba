//! What can be wrong with policies, schema, entities or a request, as
//! data: a stable code and, for Cedar's diagnostics, a file and line.

use miette::Diagnostic;
use std::path::PathBuf;

/// Where something in a policy source went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file (or other source name).
    pub file: String,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Policies, schema or entities that cannot be used; start-up stops.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Cedar rejected a source: its own diagnostic, with the location.
    #[error("{location}: {message}")]
    Cedar {
        /// Where.
        location: Location,
        /// Cedar's message (and help, when it has one).
        message: String,
    },
    /// Two policies share an `@id`.
    #[error("{location}: policy id `{id}` is used twice: give each policy its own @id")]
    DuplicateId {
        /// The id.
        id: String,
        /// Where the second one is.
        location: Location,
    },
    /// An entity the host built does not fit the schema (e.g. a tool
    /// entity against an operator's schema that lacks its attributes).
    #[error("the {entity} entity does not fit the schema: {message}")]
    Entity {
        /// The entity (`Airlock::Tool::"fetch"`).
        entity: String,
        /// Cedar's message.
        message: String,
    },
    /// A request that does not fit the schema (e.g. a context given to
    /// `policy explain` with a missing or mistyped field).
    #[error("the `{action}` request does not fit the schema: {message}")]
    Request {
        /// The action.
        action: &'static str,
        /// Cedar's message.
        message: String,
    },
    /// `explain` was asked about an action whose resource the host does
    /// not build.
    #[error(
        "`{action}` cannot be explained yet: airlock decides tool.list, tool.describe, \
         tool.execute and http.request (with --url); the other actions are in the schema \
         for policies the host does not evaluate yet"
    )]
    NotExplainable {
        /// The action.
        action: &'static str,
    },
}

impl PolicyError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            PolicyError::Read { .. } => "policy_unreadable",
            PolicyError::Cedar { .. } | PolicyError::DuplicateId { .. } => "invalid_policy",
            PolicyError::Entity { .. } => "invalid_entity",
            PolicyError::Request { .. } => "invalid_request",
            PolicyError::NotExplainable { .. } => "not_explainable",
        }
    }
}

/// Turns a Cedar diagnostic into a located error against `text`.
pub(super) fn cedar_error(
    file: &str,
    text: &str,
    error: &(dyn Diagnostic + Send + Sync),
) -> PolicyError {
    let offset = error
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| label.offset());
    let (line, column) = offset.map_or((0, 0), |offset| {
        let before = &text[..offset.min(text.len())];
        (
            before.matches('\n').count() + 1,
            before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
        )
    });
    let mut message = error.to_string();
    if let Some(help) = error.help() {
        message.push_str(&format!(" (help: {help})"));
    }
    PolicyError::Cedar {
        location: Location {
            file: file.to_string(),
            line,
            column,
        },
        message,
    }
}
