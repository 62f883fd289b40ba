//! News from every replica: one connection per replica LISTENs on the
//! approvals and agents channels.
//!
//! - Approvals move a counter that waiting calls watch. It also moves on
//!   every (re)connect, since news may have been missed meanwhile (waiting
//!   calls poll as well, so a lost listener slows them, never strands them).
//! - Agents move a generation that a server's token table is valid for.
//!   While the connection is down the generation is unknown, and every
//!   token is checked against the database until it is back.

use futures_util::StreamExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Socket};

/// How long the listener waits before connecting again.
const RECONNECT: Duration = Duration::from_secs(1);

/// The channel every replica listens on for approval news (the payload is
/// the approval's id).
pub(crate) const APPROVALS_NOTIFY: &str = "airlock_approvals";

/// The channel agent changes are announced on.
pub(crate) const AGENTS_NOTIFY: &str = "airlock_agents";

/// The agents' generation, heard from the database: twice the generation,
/// plus one while the listener is subscribed (one atomic, so a reader never
/// pairs a generation with the wrong state).
#[derive(Debug, Default)]
pub(crate) struct AgentsHeard(AtomicU64);

impl AgentsHeard {
    /// The generation, if the listener hears every change now.
    pub(crate) fn generation(&self) -> Option<u64> {
        let heard = self.0.load(Ordering::Acquire);
        (heard & 1 == 1).then_some(heard >> 1)
    }

    fn changed(&self) {
        self.0.fetch_add(2, Ordering::AcqRel);
    }

    fn listening(&self, now: bool) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |heard| {
                Some((((heard >> 1) + 1) << 1) | u64::from(now))
            });
    }
}

/// Where the listener reports what it hears.
pub(super) struct News {
    pub(super) approvals: watch::Sender<u64>,
    pub(super) agents: Arc<AgentsHeard>,
}

impl News {
    fn approvals_changed(&self) {
        self.approvals.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Listens for as long as the store's runtime runs.
pub(super) async fn listen<T>(config: tokio_postgres::Config, tls: T, news: News)
where
    T: MakeTlsConnect<Socket> + Clone + Send + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    loop {
        if let Err(error) = listen_once(&config, tls.clone(), &news).await {
            tracing::warn!(
                error = %super::detail(&error),
                "listening for approval and agent news failed; polling until it reconnects"
            );
        }
        news.agents.listening(false);
        news.approvals_changed();
        tokio::time::sleep(RECONNECT).await;
    }
}

async fn listen_once<T>(
    config: &tokio_postgres::Config,
    tls: T,
    news: &News,
) -> Result<(), tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket> + Send + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, mut connection) = config.connect(tls).await?;
    // The connection must be driven while LISTEN is sent, and after.
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let statement = format!("LISTEN {APPROVALS_NOTIFY}; LISTEN {AGENTS_NOTIFY}");
    let subscribe = client.batch_execute(&statement);
    tokio::pin!(subscribe);
    let mut subscribed = false;
    loop {
        tokio::select! {
            done = &mut subscribe, if !subscribed => {
                done?;
                subscribed = true;
                // Whatever changed before now is in the tables.
                news.agents.listening(true);
                news.approvals_changed();
            }
            message = messages.next() => match message {
                Some(Ok(AsyncMessage::Notification(note))) => {
                    if note.channel() == AGENTS_NOTIFY {
                        news.agents.changed();
                    } else {
                        news.approvals_changed();
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error),
                None => return Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AgentsHeard;

    #[test]
    fn the_generation_is_known_only_while_listening_and_moves_on_every_change() {
        let heard = AgentsHeard::default();
        assert_eq!(heard.generation(), None);
        heard.listening(true);
        let first = heard.generation().expect("listening");
        heard.changed();
        let second = heard.generation().expect("still listening");
        assert_ne!(first, second);
        heard.listening(false);
        assert_eq!(heard.generation(), None);
        heard.listening(true);
        let third = heard.generation().expect("listening again");
        assert!(third != first && third != second, "a reconnect moves it");
    }
}
