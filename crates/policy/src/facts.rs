//! What Cedar is asked about: the actions the host checks, and the `Tool`
//! and `Destination` entities it derives (never what a tool claims).

use super::error::PolicyError;
use crate::world::{Capability, World};
use cedar_policy::{Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::LazyLock;

/// An action the host checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// List tools.
    ToolList,
    /// Read a tool's descriptor.
    ToolDescribe,
    /// Run a tool.
    ToolExecute,
    /// An outgoing HTTP request (after the grant matched).
    HttpRequest,
    /// Use a vault secret.
    CredentialUse,
    /// Read a path.
    FsRead,
    /// Write a path.
    FsWrite,
    /// Run a native program.
    ProcessExec,
    /// Decide a pending approval (an operator).
    ApprovalDecide,
}

impl Action {
    /// Every action, in schema order.
    pub const ALL: [Action; 9] = [
        Action::ToolList,
        Action::ToolDescribe,
        Action::ToolExecute,
        Action::HttpRequest,
        Action::CredentialUse,
        Action::FsRead,
        Action::FsWrite,
        Action::ProcessExec,
        Action::ApprovalDecide,
    ];

    /// The action's id, e.g. `tool.execute`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ToolList => "tool.list",
            Action::ToolDescribe => "tool.describe",
            Action::ToolExecute => "tool.execute",
            Action::HttpRequest => "http.request",
            Action::CredentialUse => "credential.use",
            Action::FsRead => "fs.read",
            Action::FsWrite => "fs.write",
            Action::ProcessExec => "process.exec",
            Action::ApprovalDecide => "approval.decide",
        }
    }

    /// The action named `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }

    pub(super) fn uid(self) -> EntityUid {
        uid("Action", self.as_str())
    }
}

/// The schema's entity types, parsed once: Cedar's parser costs more than
/// a whole authorization, and checks build uids on every call.
static TYPE_NAMES: LazyLock<HashMap<&'static str, EntityTypeName>> = LazyLock::new(|| {
    [
        "Action",
        "Agent",
        "Approval",
        "Channel",
        "Destination",
        "Device",
        "Group",
        "Operator",
        "Path",
        "Program",
        "Secret",
        "Tool",
        "User",
    ]
    .into_iter()
    .map(|t| (t, parse_type_name(t)))
    .collect()
});

fn parse_type_name(type_name: &str) -> EntityTypeName {
    EntityTypeName::from_str(&format!("Airlock::{type_name}"))
        .expect("the schema's own type names parse")
}

pub(super) fn uid(type_name: &str, id: &str) -> EntityUid {
    let name = TYPE_NAMES
        .get(type_name)
        .cloned()
        .unwrap_or_else(|| parse_type_name(type_name));
    EntityUid::from_type_name_and_id(name, EntityId::new(id))
}

/// What the host knows about a tool, as the Cedar `Tool` entity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ToolFacts {
    /// The tool's name.
    pub name: String,
    /// Its world.
    pub world: World,
    /// Its capabilities.
    pub capabilities: Vec<Capability>,
    /// SHA-256 of its component (or program).
    pub sha256: String,
    /// Whether it needs an approval under the default policies.
    pub sensitive: bool,
    /// The hosted MCP server it belongs to (`[[servers]]`), if any.
    pub server: Option<String>,
    /// Where its component was pulled from (`oci://…@sha256:…`), for a
    /// component from a registry.
    pub source: Option<String>,
    /// Who signed it (`key:sha256:…`, or a keyless identity), when its
    /// registry or configuration required a signature and it held.
    pub signer: Option<String>,
}

impl ToolFacts {
    /// Facts for a tool with these capabilities; sensitive if any
    /// capability [is sensitive](Capability::is_sensitive) or the operator
    /// `marked` it.
    pub fn derive(
        name: &str,
        world: World,
        capabilities: Vec<Capability>,
        sha256: &str,
        marked: bool,
    ) -> Self {
        let sensitive = marked || capabilities.iter().any(|c| c.is_sensitive());
        Self {
            name: name.to_string(),
            world,
            capabilities,
            sha256: sha256.to_string(),
            sensitive,
            server: None,
            source: None,
            signer: None,
        }
    }

    /// Its capabilities by name, as approvals and output show them.
    pub fn capability_names(&self) -> Vec<String> {
        self.capabilities.iter().map(ToString::to_string).collect()
    }

    /// The id of this tool's entity: its name and a digest of all its
    /// facts. Two tools that share a name (a rebuild, a look-alike, the
    /// same component marked sensitive or not) are different entities, so
    /// a check never sees another tool's attributes.
    pub(super) fn uid(&self) -> EntityUid {
        let mut hasher = Sha256::new();
        for part in [
            self.name.as_str(),
            self.world.as_str(),
            &self.capability_names().join(","),
            self.sha256.as_str(),
        ] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        hasher.update([u8::from(self.sensitive)]);
        // Every attribute of the entity is in its uid: the decision cache
        // keys on it.
        if let Some(server) = &self.server {
            hasher.update((server.len() as u64).to_be_bytes());
            hasher.update(server.as_bytes());
        }
        for (name, value) in [("source", &self.source), ("signer", &self.signer)] {
            if let Some(value) = value {
                hasher.update(name.as_bytes());
                hasher.update((value.len() as u64).to_be_bytes());
                hasher.update(value.as_bytes());
            }
        }
        let digest = hex::encode(hasher.finalize());
        uid("Tool", &format!("{}@{}", self.name, &digest[..16]))
    }

    pub(super) fn entity(&self) -> Result<Entity, PolicyError> {
        let mut attrs = HashMap::from([
            (
                "name".to_string(),
                RestrictedExpression::new_string(self.name.clone()),
            ),
            (
                "world".to_string(),
                RestrictedExpression::new_string(self.world.to_string()),
            ),
            (
                "capabilities".to_string(),
                RestrictedExpression::new_set(
                    self.capability_names()
                        .into_iter()
                        .map(RestrictedExpression::new_string),
                ),
            ),
            (
                "sha256".to_string(),
                RestrictedExpression::new_string(self.sha256.clone()),
            ),
            (
                "sensitive".to_string(),
                RestrictedExpression::new_bool(self.sensitive),
            ),
        ]);
        for (name, value) in [
            ("server", &self.server),
            ("source", &self.source),
            ("signer", &self.signer),
        ] {
            if let Some(value) = value {
                attrs.insert(
                    name.to_string(),
                    RestrictedExpression::new_string(value.clone()),
                );
            }
        }
        let id = self.uid();
        Entity::new(id.clone(), attrs, HashSet::new()).map_err(|e| entity_error(&id, &e))
    }
}

/// A destination for `http.request`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestinationFacts {
    /// `http` or `https`.
    pub scheme: String,
    /// Normalised host.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl DestinationFacts {
    /// The `Destination` entity and its uid (`scheme://host:port`).
    pub(super) fn entity(&self) -> Result<(EntityUid, Entity), PolicyError> {
        let resource = uid(
            "Destination",
            &format!("{}://{}:{}", self.scheme, self.host, self.port),
        );
        let attrs = HashMap::from([
            (
                "scheme".to_string(),
                RestrictedExpression::new_string(self.scheme.clone()),
            ),
            (
                "host".to_string(),
                RestrictedExpression::new_string(self.host.clone()),
            ),
            (
                "port".to_string(),
                RestrictedExpression::new_long(i64::from(self.port)),
            ),
        ]);
        entity(resource, attrs)
    }
}

/// A vault secret for `credential.use` (never its value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretFacts {
    /// The secret's name.
    pub name: String,
    /// Its scope, e.g. `global` or `tool:github`.
    pub scope: String,
}

impl SecretFacts {
    /// The `Secret` entity and its uid (the secret's name).
    pub(super) fn entity(&self) -> Result<(EntityUid, Entity), PolicyError> {
        let resource = uid("Secret", &self.name);
        let attrs = HashMap::from([
            (
                "name".to_string(),
                RestrictedExpression::new_string(self.name.clone()),
            ),
            (
                "scope".to_string(),
                RestrictedExpression::new_string(self.scope.clone()),
            ),
        ]);
        entity(resource, attrs)
    }
}

/// A native tool's program for `process.exec`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramFacts {
    /// Its path on the host.
    pub path: String,
    /// SHA-256 of the executable.
    pub sha256: String,
    /// Whether it runs in the platform sandbox.
    pub sandboxed: bool,
}

impl ProgramFacts {
    /// The `Program` entity and its uid (`path@sha256`).
    pub(super) fn entity(&self) -> Result<(EntityUid, Entity), PolicyError> {
        let resource = uid("Program", &format!("{}@{}", self.path, self.sha256));
        let attrs = HashMap::from([
            (
                "path".to_string(),
                RestrictedExpression::new_string(self.path.clone()),
            ),
            (
                "sha256".to_string(),
                RestrictedExpression::new_string(self.sha256.clone()),
            ),
            (
                "sandboxed".to_string(),
                RestrictedExpression::new_bool(self.sandboxed),
            ),
        ]);
        entity(resource, attrs)
    }
}

/// A pending approval, as the resource of `approval.decide`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalFacts {
    /// The approval's id.
    pub id: String,
    /// The tool it is for.
    pub tool: String,
    /// Who asked to run it (`Agent::"claude"`).
    pub requester: String,
    /// The tool's capabilities.
    pub capabilities: Vec<String>,
    /// The tool's digest.
    pub tool_sha256: String,
}

impl ApprovalFacts {
    /// The `Approval` entity and its uid (the approval id).
    pub(super) fn entity(&self) -> Result<(EntityUid, Entity), PolicyError> {
        let resource = uid("Approval", &self.id);
        let attrs = HashMap::from([
            (
                "tool".to_string(),
                RestrictedExpression::new_string(self.tool.clone()),
            ),
            (
                "requester".to_string(),
                RestrictedExpression::new_string(self.requester.clone()),
            ),
            (
                "capabilities".to_string(),
                RestrictedExpression::new_set(
                    self.capabilities
                        .iter()
                        .map(|c| RestrictedExpression::new_string(c.clone())),
                ),
            ),
            (
                "tool_sha256".to_string(),
                RestrictedExpression::new_string(self.tool_sha256.clone()),
            ),
        ]);
        entity(resource, attrs)
    }
}

/// The outcome of one check: data, like Cedar's own response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    /// Whether the action is allowed.
    pub allowed: bool,
    /// The policies that determined it (permits if allowed, forbids otherwise;
    /// empty when nothing permitted).
    pub policies: Vec<String>,
    /// Denied only by policies marked `@approval("required")`: a human may
    /// lift this deny.
    pub approval_possible: bool,
    /// Policies that failed to evaluate (they count as not matching).
    pub errors: Vec<String>,
}

/// An entity with `attrs` and no parents, with its uid.
fn entity(
    resource: EntityUid,
    attrs: HashMap<String, RestrictedExpression>,
) -> Result<(EntityUid, Entity), PolicyError> {
    let entity = Entity::new(resource.clone(), attrs, HashSet::new())
        .map_err(|e| entity_error(&resource, &e))?;
    Ok((resource, entity))
}

impl Authorization {
    /// Why a denied `who` may not `act` (e.g. "run `fetch`"), for people:
    /// the forbidding policies, or that nothing permits it.
    pub fn explain_denial(&self, who: &str, act: &str) -> String {
        if self.policies.is_empty() {
            format!("no policy permits {who} to {act}")
        } else {
            format!("policy {} forbids {who} to {act}", self.policies.join(", "))
        }
    }
}

/// A [`PolicyError::Entity`] for `id`.
pub(super) fn entity_error(id: &EntityUid, error: &impl std::fmt::Display) -> PolicyError {
    PolicyError::Entity {
        entity: id.to_string(),
        message: error.to_string(),
    }
}
