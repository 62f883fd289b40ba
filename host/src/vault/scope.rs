//! [`Scope`]: who a secret may be used for.

use crate::policy::Principal;
use std::fmt;
use std::str::FromStr;

/// Who a secret may be used for: every tool, one tool (by its operator
/// name), or the invocations of one principal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Any tool may be bound to it.
    Global,
    /// Only the tool with this operator name (`[[tools]] name`).
    Tool(String),
    /// Only invocations on behalf of this principal.
    Principal(Principal),
}

impl Scope {
    /// Whether a tool named `tool` may be bound to a secret of this scope.
    /// A principal scope is checked again on each use, against the
    /// invocation's principal.
    pub fn admits_tool(&self, tool: &str) -> bool {
        match self {
            Scope::Global | Scope::Principal(_) => true,
            Scope::Tool(name) => name == tool,
        }
    }

    /// Whether an invocation by `principal` may use a secret of this scope.
    pub fn admits_principal(&self, principal: &Principal) -> bool {
        match self {
            Scope::Global | Scope::Tool(_) => true,
            Scope::Principal(only) => only == principal,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Global => f.write_str("global"),
            Scope::Tool(name) => write!(f, "tool:{name}"),
            Scope::Principal(principal) => write!(f, "principal:{principal}"),
        }
    }
}

/// A scope that is not `global`, `tool:NAME` or `principal:ID`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{given}` is not a scope: write `global`, `tool:NAME` or `principal:KIND::\"ID\"` (e.g. `principal:Agent::\"claude\"`)"
)]
pub struct ScopeError {
    /// What was given.
    pub given: String,
}

impl FromStr for Scope {
    type Err = ScopeError;

    fn from_str(text: &str) -> Result<Self, ScopeError> {
        let error = || ScopeError {
            given: text.to_string(),
        };
        match text.trim().split_once(':') {
            None if text.trim() == "global" => Ok(Scope::Global),
            Some(("tool", name))
                if !name.trim().is_empty() && !name.chars().any(char::is_control) =>
            {
                Ok(Scope::Tool(name.trim().to_string()))
            }
            Some(("principal", principal)) => {
                principal.parse().map(Scope::Principal).map_err(|_| error())
            }
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
            let scope: Scope = text.parse().expect(text);
            assert_eq!(scope.to_string(), text);
        }
        for bad in ["", "tool:", "user:x", "Global", "tool", "principal:claude"] {
            assert!(bad.parse::<Scope>().is_err(), "{bad:?}");
        }
        let tool = Scope::Tool("github".into());
        assert!(tool.admits_tool("github") && !tool.admits_tool("gitlab"));
        let claude = Principal::agent("claude");
        let principal = Scope::Principal(claude.clone());
        assert!(principal.admits_principal(&claude));
        assert!(!principal.admits_principal(&Principal::agent("crawler")));
        assert!(!principal.admits_principal(&Principal::user("claude")));
        assert!(Scope::Global.admits_tool("any") && Scope::Global.admits_principal(&claude));
    }
}
