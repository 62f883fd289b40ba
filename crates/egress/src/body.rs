//! Request and response bodies as they cross the hook: counted against the
//! grant's byte limits, paced by the invocation's rate limit, and (for
//! responses) cut off when the server pauses too long.

use super::budget::Budget;
use super::decide::Reason;
use super::record::RecordHandle;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use wasmtime_wasi_http::Error as WasiError;

/// Holds a frame back until the rate limit lets it through.
struct Pacer {
    budget: Arc<Budget>,
    held: Option<(Frame<Bytes>, Pin<Box<Sleep>>)>,
}

impl Pacer {
    fn new(budget: Arc<Budget>) -> Self {
        Self { budget, held: None }
    }

    /// Passes `frame` on now, or holds it until the rate limit allows it.
    fn pass(
        &mut self,
        frame: Frame<Bytes>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, WasiError>>> {
        let delay = self.budget.delay_for(data_len(&frame));
        if delay.is_zero() {
            return Poll::Ready(Some(Ok(frame)));
        }
        self.held = Some((frame, Box::pin(tokio::time::sleep(delay))));
        self.poll_held(cx).map(|f| f.map(Ok))
    }

    /// A held frame whose wait is over; `Pending` while it waits.
    fn poll_held(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame<Bytes>>> {
        let Some((_, sleep)) = self.held.as_mut() else {
            return Poll::Ready(None);
        };
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(self.held.take().map(|(frame, _)| frame))
    }
}

fn data_len(frame: &Frame<Bytes>) -> u64 {
    frame.data_ref().map_or(0, |d| d.len() as u64)
}

/// The guest's request body, limited to `max_request_bytes`.
pub(crate) struct RequestBody<B> {
    inner: B,
    limit: u64,
    sent: u64,
    pacer: Pacer,
    record: RecordHandle,
    overflowed: Arc<AtomicBool>,
}

impl<B> RequestBody<B> {
    /// Wraps `inner`; `overflowed` is set when the limit is crossed, so the
    /// hook can tell a refused body from a broken connection.
    pub(crate) fn new(
        inner: B,
        limit: u64,
        budget: Arc<Budget>,
        record: RecordHandle,
        overflowed: Arc<AtomicBool>,
    ) -> Self {
        Self {
            inner,
            limit,
            sent: 0,
            pacer: Pacer::new(budget),
            record,
            overflowed,
        }
    }
}

impl<B> Body for RequestBody<B>
where
    B: Body<Data = Bytes, Error = WasiError> + Unpin,
{
    type Data = Bytes;
    type Error = WasiError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, WasiError>>> {
        let this = &mut *self;
        if this.pacer.held.is_some() {
            return this.pacer.poll_held(cx).map(|f| f.map(Ok));
        }
        let Some(frame) = ready!(Pin::new(&mut this.inner).poll_frame(cx)) else {
            return Poll::Ready(None);
        };
        let frame = frame?;
        let bytes = data_len(&frame);
        this.sent += bytes;
        if this.sent > this.limit {
            this.overflowed.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(WasiError::HttpRequestBodySize(Some(this.limit)))));
        }
        this.record.add_up(bytes);
        this.pacer.pass(frame, cx)
    }

    fn is_end_stream(&self) -> bool {
        self.pacer.held.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The server's response body, limited to `max_response_bytes`, with the
/// between-bytes timeout. Ends the request's record when it ends.
pub(crate) struct ResponseBody {
    inner: hyper::body::Incoming,
    limit: u64,
    received: u64,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    pacer: Pacer,
    record: RecordHandle,
    done: bool,
}

impl ResponseBody {
    pub(crate) fn new(
        inner: hyper::body::Incoming,
        limit: u64,
        idle_timeout: Duration,
        budget: Arc<Budget>,
        record: RecordHandle,
    ) -> Self {
        Self {
            inner,
            limit,
            received: 0,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            pacer: Pacer::new(budget),
            record,
            done: false,
        }
    }

    fn fail(
        &mut self,
        reason: Reason,
        error: WasiError,
    ) -> Poll<Option<Result<Frame<Bytes>, WasiError>>> {
        self.done = true;
        self.record.finish(Some(reason));
        Poll::Ready(Some(Err(error)))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = WasiError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, WasiError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if this.pacer.held.is_some() {
            let frame = ready!(this.pacer.poll_held(cx));
            // Time spent paced is not the server's pause.
            this.idle.as_mut().reset(Instant::now() + this.idle_timeout);
            return Poll::Ready(frame.map(Ok));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.done = true;
                this.record.finish(None);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => this.fail(Reason::ProtocolError, WasiError::from(e)),
            Poll::Ready(Some(Ok(frame))) => {
                let bytes = data_len(&frame);
                this.received += bytes;
                if this.received > this.limit {
                    let limit = this.limit;
                    return this.fail(
                        Reason::ResponseTooLarge,
                        WasiError::HttpResponseBodySize(Some(limit)),
                    );
                }
                this.record.add_down(bytes);
                this.idle.as_mut().reset(Instant::now() + this.idle_timeout);
                this.pacer.pass(frame, cx)
            }
            Poll::Pending => {
                ready!(this.idle.as_mut().poll(cx));
                this.fail(
                    Reason::BetweenBytesTimeout,
                    WasiError::ConnectionReadTimeout,
                )
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || (self.pacer.held.is_none() && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // A guest that stops reading early still leaves a finished record.
        self.record.finish(None);
    }
}
