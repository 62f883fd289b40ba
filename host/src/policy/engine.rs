//! [`PolicyEngine`]: Cedar policies, schema and entities, parsed and
//! validated once, answering each check in a few microseconds.

use super::principal::{Principal, RequestContext};
use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId,
    PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};
use miette::Diagnostic;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};

/// The schema and default policies shipped with airlock (`policies/`).
pub const DEFAULT_SCHEMA: &str = include_str!("../../../policies/schema.cedarschema");
/// See [`DEFAULT_SCHEMA`].
pub const DEFAULT_POLICIES: &str = include_str!("../../../policies/default.cedar");

/// The annotation that marks a deny a human may lift.
const APPROVAL_ANNOTATION: &str = "approval";

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
}

impl Action {
    /// Every action, in schema order.
    pub const ALL: [Action; 8] = [
        Action::ToolList,
        Action::ToolDescribe,
        Action::ToolExecute,
        Action::HttpRequest,
        Action::CredentialUse,
        Action::FsRead,
        Action::FsWrite,
        Action::ProcessExec,
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
        }
    }

    /// The action named `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }

    fn uid(self) -> EntityUid {
        uid("Action", self.as_str())
    }
}

fn uid(type_name: &str, id: &str) -> EntityUid {
    let name = EntityTypeName::from_str(&format!("Airlock::{type_name}"))
        .expect("the schema's own type names parse");
    EntityUid::from_type_name_and_id(name, EntityId::new(id))
}

/// What the host knows about a tool, as the Cedar `Tool` entity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolFacts {
    /// The tool's name.
    pub name: String,
    /// Its world (`pure`, `network`, ...).
    pub world: String,
    /// Its capabilities, derived from its imports.
    pub capabilities: Vec<String>,
    /// SHA-256 of its component.
    pub sha256: String,
    /// Whether it needs an approval under the default policies.
    pub sensitive: bool,
}

impl ToolFacts {
    fn entity(&self) -> Result<Entity, String> {
        let attrs = HashMap::from([
            (
                "name".to_string(),
                RestrictedExpression::new_string(self.name.clone()),
            ),
            (
                "world".to_string(),
                RestrictedExpression::new_string(self.world.clone()),
            ),
            (
                "capabilities".to_string(),
                RestrictedExpression::new_set(
                    self.capabilities
                        .iter()
                        .cloned()
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
        Entity::new(uid("Tool", &self.name), attrs, HashSet::new()).map_err(|e| e.to_string())
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

/// The outcome of one check: data, like Cedar's own response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
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
}

impl PolicyError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            PolicyError::Read { .. } => "policy_unreadable",
            PolicyError::Cedar { .. } | PolicyError::DuplicateId { .. } => "invalid_policy",
        }
    }
}

/// Turns a Cedar diagnostic into a located error against `text`.
fn cedar_error(file: &str, text: &str, error: &(dyn Diagnostic + Send + Sync)) -> PolicyError {
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

/// Checks requests against Cedar policies. Parsed and validated once (and
/// on an explicit reload), never per request.
pub struct PolicyEngine {
    policies: PolicySet,
    schema: Schema,
    /// Principals and groups from the operator's entities file.
    principals: Entities,
    /// `principals` plus every loaded tool.
    with_tools: RwLock<Arc<Entities>>,
    approvable: HashSet<PolicyId>,
    authorizer: Authorizer,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("policies", &self.policy_ids())
            .finish_non_exhaustive()
    }
}

impl PolicyEngine {
    /// The shipped schema and default policies, no principals file.
    pub fn embedded() -> Self {
        Self::from_sources(
            ("policies/schema.cedarschema", DEFAULT_SCHEMA),
            &[("policies/default.cedar", DEFAULT_POLICIES)],
            None,
        )
        .expect("the shipped policies are valid (tested)")
    }

    /// Reads `dir`: `schema.cedarschema`, every `*.cedar` file (in name
    /// order) and, if present, `entities.json` (principals and groups).
    pub fn from_dir(dir: &Path) -> Result<Self, PolicyError> {
        let read = |path: PathBuf| {
            std::fs::read_to_string(&path).map_err(|source| PolicyError::Read { path, source })
        };
        let schema_path = dir.join("schema.cedarschema");
        let schema = read(schema_path.clone())?;
        let mut policy_paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|source| PolicyError::Read {
                path: dir.to_path_buf(),
                source,
            })?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "cedar"))
            .collect();
        policy_paths.sort();
        let mut policies = Vec::with_capacity(policy_paths.len());
        for path in &policy_paths {
            policies.push((path.display().to_string(), read(path.clone())?));
        }
        let entities_path = dir.join("entities.json");
        let entities = if entities_path.exists() {
            Some((entities_path.display().to_string(), read(entities_path)?))
        } else {
            None
        };
        let policy_refs: Vec<(&str, &str)> = policies
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        Self::from_sources(
            (&schema_path.display().to_string(), &schema),
            &policy_refs,
            entities.as_ref().map(|(n, t)| (n.as_str(), t.as_str())),
        )
    }

    /// Builds an engine from texts: `(name, text)` for the schema, each
    /// policy file, and optionally the entities file.
    pub fn from_sources(
        schema: (&str, &str),
        policy_files: &[(&str, &str)],
        entities: Option<(&str, &str)>,
    ) -> Result<Self, PolicyError> {
        let (schema_name, schema_text) = schema;
        let (schema, _warnings) = Schema::from_cedarschema_str(schema_text)
            .map_err(|e| cedar_error(schema_name, schema_text, &e))?;

        let mut policies = PolicySet::new();
        let mut origin: HashMap<PolicyId, (String, String)> = HashMap::new();
        for (file, text) in policy_files {
            let parsed = PolicySet::from_str(text).map_err(|e| cedar_error(file, text, &e))?;
            if let Some(template) = parsed.templates().next() {
                return Err(PolicyError::Cedar {
                    location: Location {
                        file: file.to_string(),
                        line: 0,
                        column: 0,
                    },
                    message: format!(
                        "templates are not supported (`{}`): write plain policies",
                        template.id()
                    ),
                });
            }
            for (index, policy) in parsed.policies().enumerate() {
                let id = policy
                    .annotation("id")
                    .map_or_else(|| format!("{file}#{index}"), str::to_string);
                let line = text
                    .find(&format!("@id(\"{id}\")"))
                    .map_or(0, |at| text[..at].matches('\n').count() + 1);
                let location = Location {
                    file: file.to_string(),
                    line,
                    column: 1,
                };
                let named = policy.new_id(PolicyId::new(&id));
                if policies.add(named).is_err() {
                    return Err(PolicyError::DuplicateId { id, location });
                }
                origin.insert(PolicyId::new(&id), (file.to_string(), text.to_string()));
            }
        }

        let validation = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        if let Some(error) = validation.validation_errors().next() {
            let (file, text) = origin
                .get(error.policy_id())
                .cloned()
                .unwrap_or_else(|| (String::from("<policies>"), String::new()));
            return Err(cedar_error(&file, &text, error));
        }

        let principals = match entities {
            None => Entities::empty(),
            Some((name, text)) => Entities::from_json_str(text, Some(&schema))
                .map_err(|e| cedar_error(name, text, &e))?,
        };
        let approvable = policies
            .policies()
            .filter(|p| p.annotation(APPROVAL_ANNOTATION) == Some("required"))
            .map(|p| p.id().clone())
            .collect();
        Ok(Self {
            policies,
            schema,
            with_tools: RwLock::new(Arc::new(principals.clone())),
            principals,
            approvable,
            authorizer: Authorizer::new(),
        })
    }

    /// The policy ids, in file order.
    pub fn policy_ids(&self) -> Vec<String> {
        self.policies
            .policies()
            .map(|p| p.id().to_string())
            .collect()
    }

    /// Adds (or replaces) the `Tool` entity for `tool`.
    pub fn register_tool(&self, tool: &ToolFacts) -> Result<(), String> {
        let entity = tool.entity()?;
        let mut current = self
            .with_tools
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let updated = current
            .as_ref()
            .clone()
            .upsert_entities([entity], Some(&self.schema))
            .map_err(|e| e.to_string())?;
        *current = Arc::new(updated);
        Ok(())
    }

    /// May `principal` run `tool` in `context`? `approved` is the host's
    /// statement that a human approved this exact request.
    pub fn check_execute(
        &self,
        principal: &Principal,
        tool: &ToolFacts,
        context: &RequestContext,
        approved: bool,
    ) -> Decision {
        let capabilities = tool
            .capabilities
            .iter()
            .cloned()
            .map(RestrictedExpression::new_string);
        let pairs = base_pairs(context).chain([
            (
                "capabilities".to_string(),
                RestrictedExpression::new_set(capabilities),
            ),
            (
                "approved".to_string(),
                RestrictedExpression::new_bool(approved),
            ),
        ]);
        let entities = Arc::clone(
            &self
                .with_tools
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        );
        self.decide(
            principal,
            Action::ToolExecute,
            uid("Tool", &tool.name),
            pairs,
            &entities,
        )
    }

    /// May `principal`'s tool make a request to `destination`?
    pub fn check_http(
        &self,
        principal: &Principal,
        tool: &ToolFacts,
        context: &RequestContext,
        destination: &DestinationFacts,
    ) -> Decision {
        let id = format!(
            "{}://{}:{}",
            destination.scheme, destination.host, destination.port
        );
        let attrs = HashMap::from([
            (
                "scheme".to_string(),
                RestrictedExpression::new_string(destination.scheme.clone()),
            ),
            (
                "host".to_string(),
                RestrictedExpression::new_string(destination.host.clone()),
            ),
            (
                "port".to_string(),
                RestrictedExpression::new_long(i64::from(destination.port)),
            ),
        ]);
        let entities = Entity::new(uid("Destination", &id), attrs, HashSet::new())
            .map_err(|e| e.to_string())
            .and_then(|entity| {
                self.principals
                    .clone()
                    .add_entities([entity], None)
                    .map_err(|e| e.to_string())
            });
        let entities = match entities {
            Ok(entities) => entities,
            Err(error) => return refused(error),
        };
        let pairs = base_pairs(context).chain([
            (
                "tool".to_string(),
                RestrictedExpression::new_string(tool.name.clone()),
            ),
            (
                "tool_sha256".to_string(),
                RestrictedExpression::new_string(tool.sha256.clone()),
            ),
        ]);
        self.decide(
            principal,
            Action::HttpRequest,
            uid("Destination", &id),
            pairs,
            &entities,
        )
    }

    /// Any action on a tool with a context given as JSON (checked against
    /// the schema): for `airlock policy explain`.
    pub fn explain(
        &self,
        principal: &Principal,
        action: Action,
        tool: &ToolFacts,
        context: &serde_json::Value,
    ) -> Result<Decision, String> {
        self.register_tool(tool)?;
        let context =
            Context::from_json_value(context.clone(), Some((&self.schema, &action.uid())))
                .map_err(|e| format!("the context does not fit `{}`: {e}", action.as_str()))?;
        let request = Request::new(
            uid(principal.kind().as_str(), principal.id()),
            action.uid(),
            uid("Tool", &tool.name),
            context,
            Some(&self.schema),
        )
        .map_err(|e| e.to_string())?;
        let entities = Arc::clone(
            &self
                .with_tools
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        );
        Ok(self.respond(&request, &entities))
    }

    fn decide(
        &self,
        principal: &Principal,
        action: Action,
        resource: EntityUid,
        pairs: impl IntoIterator<Item = (String, RestrictedExpression)>,
        entities: &Entities,
    ) -> Decision {
        let context = match Context::from_pairs(pairs) {
            Ok(context) => context,
            Err(e) => return refused(e.to_string()),
        };
        // The host builds these requests itself to the schema's shape; the
        // policies were validated against it at load.
        match Request::new(
            uid(principal.kind().as_str(), principal.id()),
            action.uid(),
            resource,
            context,
            None,
        ) {
            Ok(request) => self.respond(&request, entities),
            Err(e) => refused(e.to_string()),
        }
    }

    fn respond(&self, request: &Request, entities: &Entities) -> Decision {
        let response = self
            .authorizer
            .is_authorized(request, &self.policies, entities);
        let policies: Vec<PolicyId> = response.diagnostics().reason().cloned().collect();
        let allowed = response.decision() == cedar_policy::Decision::Allow;
        Decision {
            allowed,
            approval_possible: !allowed
                && !policies.is_empty()
                && policies.iter().all(|id| self.approvable.contains(id)),
            policies: policies.iter().map(ToString::to_string).collect(),
            errors: response
                .diagnostics()
                .errors()
                .map(ToString::to_string)
                .collect(),
        }
    }
}

fn base_pairs(context: &RequestContext) -> impl Iterator<Item = (String, RestrictedExpression)> {
    [
        ("run_id", &context.run_id),
        ("session_id", &context.session_id),
        ("device_id", &context.device_id),
        ("channel", &context.channel),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), RestrictedExpression::new_string(v.clone())))
}

/// A check that could not even be asked is a deny.
fn refused(error: String) -> Decision {
    Decision {
        allowed: false,
        policies: Vec::new(),
        approval_possible: false,
        errors: vec![error],
    }
}
