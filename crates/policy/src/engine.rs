//! [`PolicyEngine`]: Cedar policies, schema and entities, parsed and
//! validated once, answering each check in a few microseconds.

use super::cache::{DecisionCache, Lookup, context_reads};
use super::error::{Location, PolicyError, cedar_error};
use super::facts::{
    Action, ApprovalFacts, Authorization, DestinationFacts, ProgramFacts, SecretFacts, ToolFacts,
    entity_error, uid,
};
use super::principal::{Channel, Principal, RequestContext};
use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityUid, PolicyId, PolicySet, Request,
    RestrictedExpression, Schema, ValidationMode, Validator,
};
use sha2::Digest as _;
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
    /// `tool.execute` decisions, keyed by what they depend on.
    cache: DecisionCache,
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

    /// Reads `dir`: every `*.cedar` file (in name order), and if present
    /// `schema.cedarschema` (else the shipped schema) and `entities.json`
    /// (principals and groups).
    pub fn from_dir(dir: &Path) -> Result<Self, PolicyError> {
        let read = |path: PathBuf| {
            std::fs::read_to_string(&path).map_err(|source| PolicyError::Read { path, source })
        };
        let schema_path = dir.join("schema.cedarschema");
        let (schema_name, schema) = if schema_path.exists() {
            (
                schema_path.display().to_string(),
                read(schema_path.clone())?,
            )
        } else {
            (
                "policies/schema.cedarschema".to_string(),
                DEFAULT_SCHEMA.to_string(),
            )
        };
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
            (&schema_name, &schema),
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
            cache: DecisionCache::new(context_reads(&policies)),
            policies,
            schema,
            with_tools: RwLock::new(Arc::new(principals.clone())),
            principals,
            approvable,
            authorizer: Authorizer::new(),
        })
    }

    /// SHA-256 of the policy set's text: changes when any policy changes.
    pub fn digest(&self) -> String {
        hex::encode(sha2::Sha256::digest(self.policies.to_string().as_bytes()))
    }

    /// The policy ids, in file order.
    pub fn policy_ids(&self) -> Vec<String> {
        self.policies
            .policies()
            .map(|p| p.id().to_string())
            .collect()
    }

    /// Adds (or replaces) the `Tool` entity for `tool`.
    pub fn register_tool(&self, tool: &ToolFacts) -> Result<(), PolicyError> {
        let entity = tool.entity()?;
        let id = entity.uid();
        let mut current = self
            .with_tools
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let updated = current
            .as_ref()
            .clone()
            .upsert_entities([entity], Some(&self.schema))
            .map_err(|e| entity_error(&id, &e))?;
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
    ) -> Authorization {
        let key = self.cache.key(principal, context, approved);
        let known = match key.as_ref().map(|key| self.cache.get(tool, key)) {
            Some(Lookup::Hit(decision)) => return decision,
            Some(Lookup::Miss(known)) => known,
            None => None,
        };
        let uid = known.unwrap_or_else(|| tool.uid());
        let decision = self.evaluate_execute(principal, tool, uid.clone(), context, approved);
        if let Some(key) = key {
            self.cache.put(tool, &uid, key, &decision);
        }
        decision
    }

    /// How many `tool.execute` decisions are cached, and whether the policy
    /// set lets any be (not when a policy reads the per-call `run_id`, or
    /// the whole context).
    pub fn cached_decisions(&self) -> (usize, bool) {
        (self.cache.len(), self.cache.enabled())
    }

    /// [`PolicyEngine::check_execute`] without the cache.
    fn evaluate_execute(
        &self,
        principal: &Principal,
        tool: &ToolFacts,
        uid: EntityUid,
        context: &RequestContext,
        approved: bool,
    ) -> Authorization {
        // Attributes no policy reads are left out: they cannot change the
        // decision, and Cedar evaluates every one it is given.
        let capabilities = self.cache.may_read("capabilities").then(|| {
            (
                "capabilities".to_string(),
                RestrictedExpression::new_set(
                    tool.capability_names()
                        .into_iter()
                        .map(RestrictedExpression::new_string),
                ),
            )
        });
        let pairs = base_pairs(context, |attr| self.cache.may_read(attr))
            .chain(capabilities)
            .chain(self.cache.may_read("approved").then(|| {
                (
                    "approved".to_string(),
                    RestrictedExpression::new_bool(approved),
                )
            }));
        let entities = match self.entities_with(tool, &uid) {
            Ok(entities) => entities,
            Err(error) => return refused(error.to_string()),
        };
        self.decide(principal, Action::ToolExecute, uid, pairs, &entities)
    }

    /// The entity set with `tool` in it: registered at load, or now (after
    /// a policy reload, tools loaded before it are new to this engine).
    fn entities_with(
        &self,
        tool: &ToolFacts,
        uid: &EntityUid,
    ) -> Result<Arc<Entities>, PolicyError> {
        let current = Arc::clone(
            &self
                .with_tools
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        );
        if current.get(uid).is_some() {
            return Ok(current);
        }
        self.register_tool(tool)?;
        Ok(Arc::clone(
            &self
                .with_tools
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        ))
    }

    /// May `principal`'s tool make a request to `destination`?
    pub fn check_http(
        &self,
        principal: &Principal,
        tool: &ToolFacts,
        context: &RequestContext,
        destination: &DestinationFacts,
    ) -> Authorization {
        self.check_tool_use(
            principal,
            Action::HttpRequest,
            tool,
            context,
            destination.entity(),
        )
    }

    /// May `principal`'s tool have `secret` injected into a request?
    pub fn check_credential(
        &self,
        principal: &Principal,
        tool: &ToolFacts,
        context: &RequestContext,
        secret: &SecretFacts,
    ) -> Authorization {
        self.check_tool_use(
            principal,
            Action::CredentialUse,
            tool,
            context,
            secret.entity(),
        )
    }

    /// May `principal` run native `tool`'s `program`?
    pub fn check_exec(
        &self,
        principal: &Principal,
        tool: &ToolFacts,
        context: &RequestContext,
        program: &ProgramFacts,
    ) -> Authorization {
        self.check_tool_use(
            principal,
            Action::ProcessExec,
            tool,
            context,
            program.entity(),
        )
    }

    /// May `decider` take `decision` (`allow_once`, `allow_session`,
    /// `allow_until`, `deny`) on the pending `approval`, deciding through
    /// `channel` (`operator-socket`, `mcp-client`, `console`)? `member_of`
    /// are the groups the host vouches the decider belongs to (a paired
    /// device is in its operator), beyond those of the entities file.
    pub fn check_decide(
        &self,
        decider: &Principal,
        member_of: &[Principal],
        approval: &ApprovalFacts,
        decision: &str,
        channel: &Channel,
    ) -> Authorization {
        let (resource, mut entities) = match self.alone_with(approval.entity()) {
            Ok(built) => built,
            Err(error) => return refused(error.to_string()),
        };
        if !member_of.is_empty() {
            let id = uid(decider.kind().as_str(), decider.id());
            let parents = member_of
                .iter()
                .map(|group| uid(group.kind().as_str(), group.id()))
                .collect();
            entities =
                match entities.add_entities([Entity::new_no_attrs(id.clone(), parents)], None) {
                    Ok(entities) => entities,
                    Err(e) => return refused(entity_error(&id, &e).to_string()),
                };
        }
        let pairs = [
            (
                "decision".to_string(),
                RestrictedExpression::new_string(decision.to_string()),
            ),
            (
                "channel".to_string(),
                RestrictedExpression::new_string(channel.as_str().to_string()),
            ),
        ];
        self.decide(decider, Action::ApprovalDecide, resource, pairs, &entities)
    }

    /// The principals plus one resource entity: what a check on a resource
    /// other than a tool needs.
    fn alone_with(
        &self,
        resource: Result<(EntityUid, Entity), PolicyError>,
    ) -> Result<(EntityUid, Entities), PolicyError> {
        let (resource, entity) = resource?;
        let entities = self
            .principals
            .clone()
            .add_entities([entity], None)
            .map_err(|e| entity_error(&resource, &e))?;
        Ok((resource, entities))
    }

    /// An action a running tool takes on `resource` (context `ToolUse`).
    fn check_tool_use(
        &self,
        principal: &Principal,
        action: Action,
        tool: &ToolFacts,
        context: &RequestContext,
        resource: Result<(EntityUid, Entity), PolicyError>,
    ) -> Authorization {
        let (resource, entities) = match self.alone_with(resource) {
            Ok(built) => built,
            Err(error) => return refused(error.to_string()),
        };
        let pairs = base_pairs(context, |_| true).chain([
            (
                "tool".to_string(),
                RestrictedExpression::new_string(tool.name.clone()),
            ),
            (
                "tool_sha256".to_string(),
                RestrictedExpression::new_string(tool.sha256.clone()),
            ),
        ]);
        self.decide(principal, action, resource, pairs, &entities)
    }

    /// Any action with a context given as JSON (checked against the
    /// schema): for `airlock policy explain`. The tool is the resource of
    /// `tool.*` actions; `destination` is the resource of `http.request`.
    pub fn explain(
        &self,
        principal: &Principal,
        action: Action,
        tool: &ToolFacts,
        destination: Option<&DestinationFacts>,
        context: &serde_json::Value,
    ) -> Result<Authorization, PolicyError> {
        let not_fitting = |e: &dyn std::fmt::Display| PolicyError::Request {
            action: action.as_str(),
            message: e.to_string(),
        };
        self.register_tool(tool)?;
        let context =
            Context::from_json_value(context.clone(), Some((&self.schema, &action.uid())))
                .map_err(|e| not_fitting(&e))?;
        let (resource, entities) = match (action, destination) {
            (Action::ToolList | Action::ToolDescribe | Action::ToolExecute, _) => (
                tool.uid(),
                self.with_tools
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .as_ref()
                    .clone(),
            ),
            (Action::HttpRequest, Some(destination)) => self.alone_with(destination.entity())?,
            (Action::HttpRequest, None) => {
                return Err(not_fitting(&"its resource is the destination: give one"));
            }
            (other, _) => {
                return Err(PolicyError::NotExplainable {
                    action: other.as_str(),
                });
            }
        };
        let request = Request::new(
            uid(principal.kind().as_str(), principal.id()),
            action.uid(),
            resource,
            context,
            Some(&self.schema),
        )
        .map_err(|e| not_fitting(&e))?;
        Ok(self.respond(&request, &entities))
    }

    /// The context `explain` starts from for `action` on `tool`; callers
    /// merge their own fields over it.
    pub fn default_context(action: Action, tool: &ToolFacts) -> serde_json::Value {
        let mut context =
            serde_json::json!({"run_id": "", "session_id": "", "device_id": "", "channel": ""});
        match action {
            Action::ToolList | Action::ToolDescribe | Action::ToolExecute => {
                context["capabilities"] = serde_json::json!(tool.capability_names());
                context["approved"] = serde_json::json!(false);
            }
            _ => {
                context["tool"] = serde_json::json!(tool.name);
                context["tool_sha256"] = serde_json::json!(tool.sha256);
            }
        }
        context
    }

    fn decide(
        &self,
        principal: &Principal,
        action: Action,
        resource: EntityUid,
        pairs: impl IntoIterator<Item = (String, RestrictedExpression)>,
        entities: &Entities,
    ) -> Authorization {
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

    fn respond(&self, request: &Request, entities: &Entities) -> Authorization {
        let response = self
            .authorizer
            .is_authorized(request, &self.policies, entities);
        let policies: Vec<PolicyId> = response.diagnostics().reason().cloned().collect();
        let allowed = response.decision() == cedar_policy::Decision::Allow;
        Authorization {
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

/// The request's own attributes, those `keep` names.
fn base_pairs(
    context: &RequestContext,
    keep: impl Fn(&str) -> bool,
) -> impl Iterator<Item = (String, RestrictedExpression)> {
    [
        ("run_id", context.run_id.as_str()),
        ("session_id", context.session_id.as_str()),
        ("device_id", context.device_id.as_str()),
        ("channel", context.channel.as_str()),
    ]
    .into_iter()
    .filter(move |(k, _)| keep(k))
    .map(|(k, v)| {
        (
            k.to_string(),
            RestrictedExpression::new_string(v.to_string()),
        )
    })
}

/// A check that could not even be asked is a deny.
fn refused(error: String) -> Authorization {
    Authorization {
        allowed: false,
        policies: Vec::new(),
        approval_possible: false,
        errors: vec![error],
    }
}
