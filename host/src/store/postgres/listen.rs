//! Approval news from every replica: one connection per replica LISTENs
//! on the approvals channel and moves a counter that waiting calls watch.
//! When the connection drops it is made again; the counter also moves on
//! every (re)connect, since news may have been missed meanwhile (waiting
//! calls poll as well, so a lost listener slows them, never strands them).

use futures_util::StreamExt as _;
use std::time::Duration;
use tokio::sync::watch;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Socket};

/// How long the listener waits before connecting again.
const RECONNECT: Duration = Duration::from_secs(1);

/// Moves the counter.
fn bump(news: &watch::Sender<u64>) {
    news.send_modify(|n| *n = n.wrapping_add(1));
}

/// Listens on `channel` for as long as the store's runtime runs.
pub(super) async fn listen<T>(
    config: tokio_postgres::Config,
    tls: T,
    channel: &'static str,
    news: watch::Sender<u64>,
) where
    T: MakeTlsConnect<Socket> + Clone + Send + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    loop {
        if let Err(error) = listen_once(&config, tls.clone(), channel, &news).await {
            tracing::warn!(
                error = %super::detail(&error),
                "listening for approval news failed; polling until it reconnects"
            );
        }
        bump(&news);
        tokio::time::sleep(RECONNECT).await;
    }
}

async fn listen_once<T>(
    config: &tokio_postgres::Config,
    tls: T,
    channel: &str,
    news: &watch::Sender<u64>,
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
    let statement = format!("LISTEN {channel}");
    let subscribe = client.batch_execute(&statement);
    tokio::pin!(subscribe);
    let mut subscribed = false;
    loop {
        tokio::select! {
            done = &mut subscribe, if !subscribed => {
                done?;
                subscribed = true;
                // Whatever was decided before now is in the tables.
                bump(news);
            }
            message = messages.next() => match message {
                Some(Ok(AsyncMessage::Notification(_))) => bump(news),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error),
                None => return Ok(()),
            },
        }
    }
}
