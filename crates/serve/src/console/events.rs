//! Live updates: one server-sent event stream per open approvals page. It
//! follows the journal (every approval asked or decided is journaled) and,
//! when the pending set changed, sends the list again as the page renders
//! it. It ends when the device is revoked (telling the page) or the server
//! stops.

use super::pages::pending;
use super::views::ApprovalList;
use super::web::{self, Body};
use super::{Console, Viewer};
use askama::Template;
use bytes::Bytes;
use http::Response;
use std::sync::Arc;
use std::time::Duration;

/// How often the stream looks at the journal's head.
const POLL: Duration = Duration::from_millis(300);
/// A comment this often keeps proxies from closing an idle stream and
/// finds browsers that went away.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// `event: NAME` with `data` split into `data:` lines.
fn event(name: &str, data: &str) -> Bytes {
    let mut text = format!("event: {name}\n");
    for line in data.lines() {
        text.push_str("data: ");
        text.push_str(line);
        text.push('\n');
    }
    text.push('\n');
    Bytes::from(text)
}

/// The stream for `viewer`.
pub(super) fn stream(console: Arc<Console>, viewer: Viewer) -> Response<Body> {
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let chrome = viewer.chrome("approvals");
        let (mut head, mut shown) = (None, None);
        let mut since_sent = Duration::ZERO;
        let mut tick = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = sender.closed() => return,
                () = console.shutdown.cancelled() => return,
            }
            since_sent += POLL;
            let server = &console.server;
            if !server
                .devices()
                .is_active(&viewer.device.id)
                .unwrap_or(false)
            {
                let _ = sender.send(event("revoked", "/pair")).await;
                return;
            }
            let now = server
                .host()
                .journal()
                .and_then(|j| j.store().before(u64::MAX, 1).ok())
                .and_then(|last| last.first().map(|e| e.seq));
            let mut message = None;
            if now != head || head.is_none() {
                head = now;
                let Ok(items) = pending(server) else { continue };
                let ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
                if shown.as_ref() != Some(&ids) {
                    shown = Some(ids);
                    let list = ApprovalList {
                        chrome: &chrome,
                        items,
                    };
                    message = list.render().ok().map(|html| event("approvals", &html));
                }
            }
            if message.is_none() && since_sent >= KEEPALIVE {
                message = Some(Bytes::from_static(b": keepalive\n\n"));
            }
            if let Some(message) = message {
                since_sent = Duration::ZERO;
                if sender.send(message).await.is_err() {
                    return;
                }
            }
        }
    });
    web::event_stream(receiver)
}

#[cfg(test)]
mod tests {
    use super::event;

    #[test]
    fn multi_line_data_becomes_data_lines() {
        assert_eq!(
            event("approvals", "<p>\n</p>"),
            "event: approvals\ndata: <p>\ndata: </p>\n\n"
        );
    }
}
