//! Agents: who may call tools over HTTP. `airlock agents add NAME` makes a
//! bearer token, shows it once and keeps only its SHA-256; a request's token
//! maps to the principal `Agent::"NAME"` that Cedar sees. An agent cannot
//! name its own principal.
//!
//! A server keeps the tokens it has checked in memory ([`table`]), for as
//! long as the store can tell it about every change to the agents.

mod kept;
mod table;

use airlock::store::{Claim, Store, StoreError};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::SystemTime;
use table::TokenTable;
use zeroize::Zeroizing;

/// What every token starts with, so a leaked one is recognisable (and
/// secret scanners can look for it).
pub const TOKEN_PREFIX: &str = "airlock_agent_";

/// Why an agent could not be added or removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The name is not usable as `Agent::"NAME"`.
    #[error("agent name `{name}` is not allowed: use 1-64 letters, digits, `-`, `_` or `.`")]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// An agent of that name exists.
    #[error(
        "agent `{name}` exists: remove it first (`airlock agents remove {name}`) to issue a new token"
    )]
    Exists {
        /// The name.
        name: String,
    },
    /// No agent of that name.
    #[error("no agent named `{name}`: `airlock agents list` shows them")]
    NotFound {
        /// The name.
        name: String,
    },
    /// The system's random source failed.
    #[error("the system random source failed: {0}")]
    Random(#[source] getrandom::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AgentError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            AgentError::InvalidName { .. } => "agent_name_invalid",
            AgentError::Exists { .. } => "agent_exists",
            AgentError::NotFound { .. } => "agent_not_found",
            AgentError::Random(_) => "random_failed",
            AgentError::Store(e) => e.code(),
        }
    }
}

/// One registered agent (never its token).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Agent {
    /// The name: the principal is `Agent::"NAME"`.
    pub name: String,
    /// When it was added (RFC 3339).
    pub created: String,
}

/// A freshly issued bearer secret (an agent's token, a device's cookie):
/// shown once, never printed by `Debug`, zeroed when dropped.
pub struct BearerSecret(pub(super) Zeroizing<String>);

/// An agent's token.
pub type AgentToken = BearerSecret;

impl BearerSecret {
    /// The secret's text, to hand to its holder once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for BearerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerSecret(<redacted>)")
    }
}

/// The hex SHA-256 a bearer secret is kept as.
pub(super) fn digest(token: &str) -> String {
    airlock::attest::sha256_hex(token.as_bytes())
}

/// `prefix` and 32 random bytes (URL-safe base64): a bearer secret.
pub(super) fn random_token(prefix: &str) -> Result<Zeroizing<String>, getrandom::Error> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut())?;
    use base64::Engine as _;
    Ok(Zeroizing::new(format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref())
    )))
}

/// Where agents are kept: the state directory's SQLite database, or the
/// database replicas share. Each change commits with its journal `record`.
pub trait AgentStore: Send + Sync {
    /// Adds `name` with its token's digest; false if the name is taken.
    fn insert(
        &self,
        name: &str,
        token_sha256: &str,
        created: &str,
        record: &Value,
    ) -> Result<bool, StoreError>;

    /// Removes `name`; false if there was none.
    fn delete(&self, name: &str, record: &Value) -> Result<bool, StoreError>;

    /// Every agent, by name.
    fn all(&self) -> Result<Vec<Agent>, StoreError>;

    /// The agent whose token has this digest (equality on a unique index).
    fn by_token(&self, token_sha256: &str) -> Result<Option<String>, StoreError>;

    /// Starts following every change to the agents, wherever it is made,
    /// for as long as the returned [`Following`] is held (a state
    /// directory's database is claimed: other writers are refused).
    fn follow(&self) -> Result<Following, StoreError>;

    /// A number that moves whenever an agent is added or removed, while a
    /// [`Following`] is held; `None` when changes cannot be followed now,
    /// so nothing may be remembered.
    fn generation(&self) -> Option<u64>;
}

/// Held while a store follows changes to its agents (see
/// [`AgentStore::follow`]).
#[derive(Debug)]
pub struct Following {
    _claim: Option<Claim>,
}

impl Following {
    /// Nothing to hold: a store told of every change some other way (its
    /// generation moves by itself), or one that cannot follow changes
    /// (its generation is always `None`).
    pub fn unclaimed() -> Self {
        Self { _claim: None }
    }
}

/// The agents of one store.
#[derive(Clone)]
pub struct Agents {
    store: Arc<dyn AgentStore>,
    /// The tokens checked so far, when the store follows its changes.
    table: Option<Arc<TokenTable>>,
}

impl Agents {
    /// The agents kept in `store`; every token is checked against it.
    pub fn new(store: Arc<dyn AgentStore>) -> Self {
        Self { store, table: None }
    }

    /// The agents kept in `store`, for a server: tokens once checked are
    /// remembered until an agent is added or removed anywhere. A state
    /// directory's database is claimed for as long as these agents live,
    /// so no other writer can change them unseen ([`StoreError::Claimed`]
    /// while another server holds it).
    pub fn serving(store: Arc<dyn AgentStore>) -> Result<Self, StoreError> {
        let following = store.follow()?;
        Ok(Self {
            store,
            table: Some(Arc::new(TokenTable::new(following))),
        })
    }

    /// The agents kept in whichever store a host opened.
    pub fn in_store(store: &Store) -> Self {
        Self::new(Self::of(store))
    }

    /// [`Agents::serving`] on whichever store a host opened.
    pub fn serving_store(store: &Store) -> Result<Self, StoreError> {
        Self::serving(Self::of(store))
    }

    fn of(store: &Store) -> Arc<dyn AgentStore> {
        Arc::new(kept::Kept(store.clone()))
    }

    /// Registers `name` with a fresh token (journaled, without the token).
    pub fn add(&self, name: &str) -> Result<(Agent, AgentToken), AgentError> {
        if !airlock::is_plain_name(name) {
            return Err(AgentError::InvalidName {
                name: name.to_string(),
            });
        }
        let token = random_token(TOKEN_PREFIX).map_err(AgentError::Random)?;
        let created = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let record = json!({ "agent": name, "change": "added" });
        if !self
            .store
            .insert(name, &digest(&token), &created, &record)?
        {
            return Err(AgentError::Exists {
                name: name.to_string(),
            });
        }
        Ok((
            Agent {
                name: name.to_string(),
                created,
            },
            BearerSecret(token),
        ))
    }

    /// Removes `name`; its token stops working at once (journaled).
    pub fn remove(&self, name: &str) -> Result<(), AgentError> {
        let record = json!({ "agent": name, "change": "removed" });
        match self.store.delete(name, &record)? {
            true => Ok(()),
            false => Err(AgentError::NotFound {
                name: name.to_string(),
            }),
        }
    }

    /// Every agent, by name.
    pub fn list(&self) -> Result<Vec<Agent>, StoreError> {
        self.store.all()
    }

    /// The agent a bearer token belongs to. Only the token's digest is
    /// compared, and it is looked up by equality (on a unique index, or in
    /// a hash map of digests), so the time taken says nothing about how
    /// close a wrong token was. Only tokens that checked out are
    /// remembered: a wrong one is looked up in the store every time.
    pub fn authenticate(&self, token: &str) -> Result<Option<String>, StoreError> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let digest = digest(token);
        // The generation is read before the store, so a change that lands
        // after the read below moves it past what is remembered here.
        let remembering = self.table.as_ref().zip(self.store.generation());
        if let Some((table, generation)) = remembering
            && let Some(name) = table.get(generation, &digest)
        {
            return Ok(Some(name));
        }
        let found = self.store.by_token(&digest)?;
        if let (Some((table, generation)), Some(name)) = (remembering, &found) {
            table.put(generation, digest, name.clone());
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_authenticate_their_agent_until_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let agents = Agents::in_store(&Store::in_state_dir(dir.path()).expect("store"));
        let (agent, token) = agents.add("claude").expect("added");
        assert_eq!(agent.name, "claude");
        assert!(token.expose().starts_with(TOKEN_PREFIX));
        assert_eq!(
            agents
                .authenticate(token.expose())
                .expect("query")
                .as_deref(),
            Some("claude")
        );
        let mut wrong = token.expose().to_string();
        wrong.push('x');
        assert_eq!(agents.authenticate(&wrong).expect("query"), None);
        assert!(matches!(
            agents.add("claude"),
            Err(AgentError::Exists { .. })
        ));
        assert!(matches!(
            agents.add("a\"b"),
            Err(AgentError::InvalidName { .. })
        ));
        agents.remove("claude").expect("removed");
        assert_eq!(agents.authenticate(token.expose()).expect("query"), None);
        assert!(matches!(
            agents.remove("claude"),
            Err(AgentError::NotFound { .. })
        ));
    }
}
