//! [`ProgressRoutes`]: a hosted server's progress notifications, each passed
//! to the call its token belongs to.
//!
//! rmcp picks a request's progress token while it queues the request, so the
//! route can only be set once the request is on its way; a server that
//! reports at once may be heard first. Such early messages are held (a few,
//! bounded: a server that reports on tokens nobody asked for cannot grow
//! them) and handed over when the route is set.

use rmcp::model::ProgressToken;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

/// Reports a call's progress (the server's messages, passed on).
pub(crate) type ProgressSink = Arc<dyn Fn(String) + Send + Sync>;

/// How many messages on tokens without a route are held.
const EARLY_MESSAGES: usize = 32;

/// Where each progress token's messages go. Shared by the server's MCP
/// client (which hears them) and its calls (which set the routes).
#[derive(Default)]
pub(crate) struct ProgressRoutes {
    state: Mutex<Routes>,
}

#[derive(Default)]
struct Routes {
    sinks: HashMap<ProgressToken, ProgressSink>,
    early: VecDeque<(ProgressToken, String)>,
}

impl ProgressRoutes {
    /// Sends `token`'s messages to `sink` until the returned route is
    /// dropped, starting with those heard before (in the order heard; a
    /// message arriving while they are handed over may overtake them, as
    /// rmcp already handles each notification on a task of its own).
    pub(crate) fn route(self: &Arc<Self>, token: ProgressToken, sink: ProgressSink) -> Route {
        let early: Vec<String> = {
            let mut routes = self.lock();
            let (mine, others) = std::mem::take(&mut routes.early)
                .into_iter()
                .partition(|(heard, _)| *heard == token);
            routes.early = others;
            routes.sinks.insert(token.clone(), Arc::clone(&sink));
            mine.into_iter().map(|(_, message)| message).collect()
        };
        for message in early {
            sink(message);
        }
        Route {
            routes: Arc::clone(self),
            token,
        }
    }

    /// Passes `message` to `token`'s route, or holds it until one is set.
    pub(crate) fn deliver(&self, token: ProgressToken, message: String) {
        let sink = {
            let mut routes = self.lock();
            match routes.sinks.get(&token) {
                Some(sink) => Arc::clone(sink),
                None => {
                    if routes.early.len() == EARLY_MESSAGES {
                        routes.early.pop_front();
                    }
                    routes.early.push_back((token, message));
                    return;
                }
            }
        };
        sink(message);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One call's route; dropping it ends the route.
pub(crate) struct Route {
    routes: Arc<ProgressRoutes>,
    token: ProgressToken,
}

impl Drop for Route {
    fn drop(&mut self) {
        self.routes.lock().sinks.remove(&self.token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::NumberOrString;

    fn token(n: i64) -> ProgressToken {
        ProgressToken(NumberOrString::Number(n))
    }

    fn recording() -> (ProgressSink, Arc<Mutex<Vec<String>>>) {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let into = Arc::clone(&heard);
        let sink: ProgressSink = Arc::new(move |message| {
            into.lock().expect("heard").push(message);
        });
        (sink, heard)
    }

    #[test]
    fn a_message_heard_before_the_route_is_set_still_arrives_in_order() {
        let routes = Arc::new(ProgressRoutes::default());
        routes.deliver(token(1), "step 1".into());
        routes.deliver(token(2), "someone else's".into());
        let (sink, heard) = recording();
        let route = routes.route(token(1), sink);
        routes.deliver(token(1), "step 2".into());
        assert_eq!(*heard.lock().expect("heard"), ["step 1", "step 2"]);

        // Once the route is dropped, its messages go nowhere but the bounded hold.
        drop(route);
        routes.deliver(token(1), "late".into());
        assert_eq!(heard.lock().expect("heard").len(), 2);
        let (sink, other) = recording();
        let _route = routes.route(token(2), sink);
        assert_eq!(*other.lock().expect("heard"), ["someone else's"]);
    }

    #[test]
    fn messages_on_tokens_nobody_asked_for_are_bounded() {
        let routes = Arc::new(ProgressRoutes::default());
        for n in 0..(EARLY_MESSAGES as i64 * 4) {
            routes.deliver(token(n), format!("{n}"));
        }
        assert_eq!(routes.lock().early.len(), EARLY_MESSAGES);
        // The oldest went first; the newest are still held.
        let (sink, heard) = recording();
        let _route = routes.route(token(0), sink);
        assert!(heard.lock().expect("heard").is_empty());
        let newest = EARLY_MESSAGES as i64 * 4 - 1;
        let (sink, heard) = recording();
        let _route = routes.route(token(newest), sink);
        assert_eq!(*heard.lock().expect("heard"), [format!("{newest}")]);
    }
}
