//! The tokens a server has checked, by digest, valid for one generation of
//! the store's agents: any addition or removal, anywhere, starts it over.
//! Only tokens that checked out are kept, so its size is bounded by the
//! number of agents.

use super::Following;
use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

/// Token digests and their agents' names.
pub(super) struct TokenTable {
    known: RwLock<Known>,
    /// Keeps the store following changes for as long as the table lives.
    _following: Following,
}

#[derive(Default)]
struct Known {
    generation: u64,
    names: HashMap<String, String>,
}

impl TokenTable {
    pub(super) fn new(following: Following) -> Self {
        Self {
            known: RwLock::default(),
            _following: following,
        }
    }

    /// The agent of `digest`, if it checked out in this `generation`.
    pub(super) fn get(&self, generation: u64, digest: &str) -> Option<String> {
        let known = self.known.read().unwrap_or_else(PoisonError::into_inner);
        if known.generation != generation {
            return None;
        }
        known.names.get(digest).cloned()
    }

    /// Remembers that `digest` is `name`'s token, as the store said in
    /// `generation`; a table of an older generation is started over.
    pub(super) fn put(&self, generation: u64, digest: String, name: String) {
        let mut known = self.known.write().unwrap_or_else(PoisonError::into_inner);
        if known.generation != generation {
            // A store read of an older generation than the table's says
            // nothing about now; one of a newer generation replaces it.
            if generation < known.generation {
                return;
            }
            *known = Known {
                generation,
                names: HashMap::new(),
            };
        }
        known.names.insert(digest, name);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Agent, AgentStore, Agents, Following, digest};
    use airlock::store::StoreError;
    use serde_json::Value;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    /// Agents in memory, counting the token lookups that reach it, with a
    /// generation the test moves (or hides).
    #[derive(Default)]
    struct Counted {
        tokens: Mutex<HashMap<String, String>>,
        generation: Mutex<Option<u64>>,
        lookups: AtomicUsize,
    }

    impl AgentStore for Counted {
        fn insert(&self, name: &str, digest: &str, _: &str, _: &Value) -> Result<bool, StoreError> {
            let mut tokens = self.tokens.lock().expect("tokens");
            tokens.insert(digest.to_string(), name.to_string());
            Ok(true)
        }

        fn delete(&self, name: &str, _: &Value) -> Result<bool, StoreError> {
            let mut tokens = self.tokens.lock().expect("tokens");
            tokens.retain(|_, agent| agent != name);
            Ok(true)
        }

        fn all(&self) -> Result<Vec<Agent>, StoreError> {
            Ok(Vec::new())
        }

        fn by_token(&self, digest: &str) -> Result<Option<String>, StoreError> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            Ok(self.tokens.lock().expect("tokens").get(digest).cloned())
        }

        fn follow(&self) -> Result<Following, StoreError> {
            Ok(Following::unclaimed())
        }

        fn generation(&self) -> Option<u64> {
            *self.generation.lock().expect("generation")
        }
    }

    impl Counted {
        fn set_generation(&self, generation: Option<u64>) {
            *self.generation.lock().expect("generation") = generation;
        }

        fn lookups(&self) -> usize {
            self.lookups.load(Ordering::SeqCst)
        }
    }

    const TOKEN: &str = "airlock_agent_first";
    const OTHER: &str = "airlock_agent_second";

    fn store() -> Arc<Counted> {
        let store = Arc::new(Counted::default());
        store.set_generation(Some(1));
        let mut tokens = store.tokens.lock().expect("tokens");
        tokens.insert(digest(TOKEN), "claude".into());
        tokens.insert(digest(OTHER), "codex".into());
        drop(tokens);
        store
    }

    fn check(agents: &Agents, token: &str) -> Option<String> {
        agents.authenticate(token).expect("checked")
    }

    #[test]
    fn a_checked_token_is_remembered_until_the_agents_change() {
        let store = store();
        let agents = Agents::serving(store.clone()).expect("serving");
        assert_eq!(check(&agents, TOKEN).as_deref(), Some("claude"));
        assert_eq!(check(&agents, TOKEN).as_deref(), Some("claude"));
        assert_eq!(
            store.lookups(),
            1,
            "the second check is answered from memory"
        );

        // A removal anywhere moves the generation: the store is asked again.
        store.delete("claude", &Value::Null).expect("removed");
        store.set_generation(Some(2));
        assert_eq!(check(&agents, TOKEN), None);
        assert_eq!(check(&agents, OTHER).as_deref(), Some("codex"));
        assert_eq!(store.lookups(), 3);
    }

    #[test]
    fn wrong_tokens_and_unfollowed_stores_always_reach_the_store() {
        let store = store();
        let agents = Agents::serving(store.clone()).expect("serving");
        for _ in 0..2 {
            assert_eq!(check(&agents, "airlock_agent_wrong"), None);
        }
        assert_eq!(store.lookups(), 2, "a wrong token is never remembered");

        // While changes cannot be followed (a replica's listener is down),
        // every check asks the store, and nothing is remembered meanwhile.
        store.set_generation(None);
        for _ in 0..2 {
            assert_eq!(check(&agents, TOKEN).as_deref(), Some("claude"));
        }
        assert_eq!(store.lookups(), 4);
        store.set_generation(Some(1));
        assert_eq!(check(&agents, TOKEN).as_deref(), Some("claude"));
        assert_eq!(store.lookups(), 5);

        // Agents not serving never remember.
        let plain = Agents::new(store.clone());
        for _ in 0..2 {
            assert_eq!(check(&plain, TOKEN).as_deref(), Some("claude"));
        }
        assert_eq!(store.lookups(), 7);
    }

    #[test]
    fn a_store_answer_older_than_the_table_is_not_kept() {
        let table = super::TokenTable::new(Following::unclaimed());
        table.put(2, "digest".into(), "claude".into());
        table.put(1, "stale".into(), "codex".into());
        assert_eq!(table.get(2, "digest").as_deref(), Some("claude"));
        assert_eq!(table.get(2, "stale"), None);
        assert_eq!(table.get(3, "digest"), None);
    }
}
