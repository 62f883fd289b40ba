//! The `tool.execute` decision cache. A decision depends on the principal,
//! the tool (whose entity is a function of its uid), the policy set, the
//! entities file, and the context attributes the policies read; the first
//! three and the entities are fixed for one [`PolicyEngine`] (a reload makes
//! a new engine, and so an empty cache), so the key is the principal, the
//! tool's facts (all that its uid is made of) and the values of exactly the
//! context attributes the policy set reads — found by walking every policy,
//! not guessed. A policy that reads the per-call `context.run_id` turns the
//! cache off (no key would ever repeat), as does a policy that uses
//! `context` other than by attribute. What no policy reads is also left out
//! of the context Cedar evaluates.
//!
//! [`PolicyEngine`]: super::PolicyEngine

use super::facts::{Authorization, ToolFacts};
use super::principal::{Principal, RequestContext};
use cedar_policy::{EntityUid, PolicySet};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, PoisonError};

/// The most decisions kept; the cache starts over when full.
pub(super) const CAPACITY: usize = 4096;

/// The context attributes of every action in the schema. Only those of
/// `tool.execute` requests go into a key; the others (`decision`, `tool`,
/// `tool_sha256`) are absent from such requests.
const KNOWN: [&str; 9] = [
    "run_id",
    "session_id",
    "device_id",
    "channel",
    "capabilities",
    "approved",
    "decision",
    "tool",
    "tool_sha256",
];

/// What the policy set reads of `context`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Reads {
    /// These attributes by name.
    Only(BTreeSet<String>),
    /// The whole context, or in a way not followed here: no caching.
    All,
}

/// Walks every policy of `policies` (as Cedar's JSON form) for `context`.
pub(super) fn context_reads(policies: &PolicySet) -> Reads {
    let mut reads = BTreeSet::new();
    for policy in policies.policies() {
        let Ok(json) = policy.to_json() else {
            return Reads::All;
        };
        if !walk(&json, &mut reads) {
            return Reads::All;
        }
    }
    if reads.iter().any(|attr| !KNOWN.contains(&attr.as_str())) {
        return Reads::All;
    }
    Reads::Only(reads)
}

fn is_context(value: &Value) -> bool {
    value.get("Var").and_then(Value::as_str) == Some("context")
}

/// Adds the attributes `value` reads of `context` to `reads`; false when it
/// uses `context` otherwise (whole, compared, passed to a function).
fn walk(value: &Value, reads: &mut BTreeSet<String>) -> bool {
    match value {
        Value::Object(object) => {
            if is_context(value) {
                return false;
            }
            for (key, inner) in object {
                // `context.attr` and `context has attr`.
                if (key == "." || key == "has")
                    && inner.get("left").is_some_and(is_context)
                    && let Some(attr) = inner.get("attr").and_then(Value::as_str)
                {
                    reads.insert(attr.to_string());
                    continue;
                }
                if !walk(inner, reads) {
                    return false;
                }
            }
            true
        }
        Value::Array(items) => items.iter().all(|item| walk(item, reads)),
        _ => true,
    }
}

/// A decision's key within one tool: the principal and the values of the
/// attributes read.
type Key = (Principal, Vec<String>);

/// One tool's decisions, and its uid (a digest, computed once).
struct ToolDecisions {
    uid: EntityUid,
    by_key: HashMap<Key, Authorization>,
}

/// Decisions by tool facts (every attribute of the tool's entity, so equal
/// facts are the same entity), then by [`Key`]. Looking up by the facts
/// themselves keeps a hit free of the uid's digest.
#[derive(Default)]
struct Decisions {
    by_tool: HashMap<ToolFacts, ToolDecisions>,
    len: usize,
}

/// What a lookup found.
pub(super) enum Lookup {
    /// The cached decision.
    Hit(Authorization),
    /// None cached; the tool's uid if it is known here.
    Miss(Option<EntityUid>),
}

/// Cached `tool.execute` decisions of one engine.
pub(super) struct DecisionCache {
    reads: Reads,
    decisions: Mutex<Decisions>,
}

impl DecisionCache {
    /// A cache for a policy set that reads `reads`.
    pub(super) fn new(reads: Reads) -> Self {
        Self {
            reads,
            decisions: Mutex::default(),
        }
    }

    /// Whether decisions are cached at all.
    pub(super) fn enabled(&self) -> bool {
        matches!(&self.reads, Reads::Only(reads) if !reads.contains("run_id"))
    }

    /// Whether the policy set may read context attribute `attr` (an
    /// attribute no policy reads need not be in a request's context).
    pub(super) fn may_read(&self, attr: &str) -> bool {
        match &self.reads {
            Reads::Only(reads) => reads.contains(attr),
            Reads::All => true,
        }
    }

    /// The key of a request; `None` when nothing may be cached.
    pub(super) fn key(
        &self,
        principal: &Principal,
        context: &RequestContext,
        approved: bool,
    ) -> Option<Key> {
        // A run id is the call's own (`airlock serve` uses the MCP request
        // id): keys that never repeat would only churn the cache.
        let Reads::Only(reads) = &self.reads else {
            return None;
        };
        if !self.enabled() {
            return None;
        }
        let values = reads
            .iter()
            .filter_map(|attr| match attr.as_str() {
                "run_id" => Some(context.run_id.clone()),
                "session_id" => Some(context.session_id.clone()),
                "device_id" => Some(context.device_id.clone()),
                "channel" => Some(context.channel.as_str().to_string()),
                "approved" => Some(approved.to_string()),
                // The tool's own capabilities are among its facts; the rest
                // are other actions' attributes.
                _ => None,
            })
            .collect();
        Some((principal.clone(), values))
    }

    /// The cached decision for `tool` and `key`.
    pub(super) fn get(&self, tool: &ToolFacts, key: &Key) -> Lookup {
        let decisions = self
            .decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(known) = decisions.by_tool.get(tool) else {
            return Lookup::Miss(None);
        };
        match known.by_key.get(key) {
            Some(decision) => Lookup::Hit(decision.clone()),
            None => Lookup::Miss(Some(known.uid.clone())),
        }
    }

    /// Keeps `decision` for `tool` (whose uid is `uid`) and `key`, unless
    /// evaluating it failed somewhere (errors are reported on every call,
    /// not remembered).
    pub(super) fn put(
        &self,
        tool: &ToolFacts,
        uid: &EntityUid,
        key: Key,
        decision: &Authorization,
    ) {
        if !decision.errors.is_empty() {
            return;
        }
        let mut decisions = self
            .decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if decisions.len >= CAPACITY {
            *decisions = Decisions::default();
        }
        let decisions = &mut *decisions;
        let known = match decisions.by_tool.get_mut(tool) {
            Some(known) => known,
            None => decisions
                .by_tool
                .entry(tool.clone())
                .or_insert_with(|| ToolDecisions {
                    uid: uid.clone(),
                    by_key: HashMap::new(),
                }),
        };
        if known.by_key.insert(key, decision.clone()).is_none() {
            decisions.len += 1;
        }
    }

    /// How many decisions are kept.
    pub(super) fn len(&self) -> usize {
        self.decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn reads(text: &str) -> Reads {
        context_reads(&PolicySet::from_str(text).expect("policies"))
    }

    #[test]
    fn the_attributes_read_are_found_by_walking_the_policies() {
        let only = |attrs: &[&str]| Reads::Only(attrs.iter().map(|a| a.to_string()).collect());
        assert_eq!(
            reads(super::super::DEFAULT_POLICIES),
            only(&["approved", "channel"])
        );
        assert_eq!(
            reads(
                r#"permit (principal, action, resource) when { context has run_id && context.run_id like "ci-*" };"#
            ),
            only(&["run_id"])
        );
        assert_eq!(reads("permit (principal, action, resource);"), only(&[]));
        assert_eq!(
            reads(r#"permit (principal, action, resource) when { context == {"a": 1} };"#),
            Reads::All,
            "the whole context compared"
        );
    }
}
