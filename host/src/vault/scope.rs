//! [`SecretScope`]: who a secret may be used for.

use crate::policy::Principal;
use std::fmt;
use std::str::FromStr;

/// Who a secret may be used for: every tool, one tool (by its operator
/// name), or the invocations of one principal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SecretScope {
    /// Any tool may be bound to it.
    Global,
    /// Only the tool with this operator name (`[[tools]] name`).
    Tool(String),
    /// Only invocations on behalf of this principal.
    Principal(Principal),
}

impl SecretScope {
    /// Whether a tool named `tool` may be bound to a secret of this scope.
    /// A principal scope is checked again on each use, against the
    /// invocation's principal.
    pub(crate) fn admits_tool(&self, tool: &str) -> bool {
        match self {
            SecretScope::Global | SecretScope::Principal(_) => true,
            SecretScope::Tool(name) => name == tool,
        }
    }

    /// Whether an invocation by `principal` may use a secret of this scope.
    pub fn admits_principal(&self, principal: &Principal) -> bool {
        match self {
            SecretScope::Global | SecretScope::Tool(_) => true,
            SecretScope::Principal(only) => only == principal,
        }
    }
}

impl fmt::Display for SecretScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretScope::Global => f.write_str("global"),
            SecretScope::Tool(name) => write!(f, "tool:{name}"),
            SecretScope::Principal(principal) => write!(f, "principal:{principal}"),
        }
    }
}

/// A scope that is not `global`, `tool:NAME` or `principal:ID`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{given}` is not a scope: write `global`, `tool:NAME` or `principal:KIND::\"ID\"` (e.g. `principal:Agent::\"claude\"`)"
)]
pub struct SecretScopeError {
    /// What was given.
    pub given: String,
}

impl FromStr for SecretScope {
    type Err = SecretScopeError;

    fn from_str(text: &str) -> Result<Self, SecretScopeError> {
        let error = || SecretScopeError {
            given: text.to_string(),
        };
        match text.trim().split_once(':') {
            None if text.trim() == "global" => Ok(SecretScope::Global),
            Some(("tool", name))
                if !name.trim().is_empty() && !name.chars().any(char::is_control) =>
            {
                Ok(SecretScope::Tool(name.trim().to_string()))
            }
            Some(("principal", principal)) => principal
                .parse()
                .map(SecretScope::Principal)
                .map_err(|_| error()),
            _ => Err(error()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_print_and_cover() {
        for text in ["global", "tool:github", "principal:Agent::\"claude\""] {
            let scope: SecretScope = text.parse().expect(text);
            assert_eq!(scope.to_string(), text);
        }
        for bad in ["", "tool:", "user:x", "Global", "tool", "principal:claude"] {
            assert!(bad.parse::<SecretScope>().is_err(), "{bad:?}");
        }
        let tool = SecretScope::Tool("github".into());
        assert!(tool.admits_tool("github") && !tool.admits_tool("gitlab"));
        let claude = Principal::agent("claude");
        let principal = SecretScope::Principal(claude.clone());
        assert!(principal.admits_principal(&claude));
        assert!(!principal.admits_principal(&Principal::agent("crawler")));
        assert!(!principal.admits_principal(&Principal::user("claude")));
        assert!(
            SecretScope::Global.admits_tool("any") && SecretScope::Global.admits_principal(&claude)
        );
    }
}
