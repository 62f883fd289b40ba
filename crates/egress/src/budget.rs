//! Per-invocation traffic budgets: the request counter and the token bucket
//! that paces request and response bytes together.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A token bucket of `rate` bytes per second holding at most one second's
/// worth, so a quiet tool cannot save up a burst larger than its rate.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(rate: u64, now: Instant) -> Self {
        Self {
            rate: rate as f64,
            tokens: rate as f64,
            last: now,
        }
    }

    /// Takes `bytes` tokens (going into debt if needed) and returns how long
    /// to wait before those bytes may pass.
    pub(crate) fn take(&mut self, bytes: u64, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// Counts requests and paces bytes for one invocation.
#[derive(Debug)]
pub(crate) struct Budget {
    max_requests: u32,
    requests: AtomicU32,
    bucket: Option<Mutex<TokenBucket>>,
}

impl Budget {
    pub(crate) fn new(max_requests: u32, bytes_per_second: Option<u64>) -> Arc<Self> {
        Arc::new(Self {
            max_requests,
            requests: AtomicU32::new(0),
            bucket: bytes_per_second.map(|rate| Mutex::new(TokenBucket::new(rate, Instant::now()))),
        })
    }

    /// Counts one request; false once the invocation has used them all.
    pub(crate) fn admit_request(&self) -> bool {
        self.requests.fetch_add(1, Ordering::Relaxed) < self.max_requests
    }

    /// How long `bytes` must wait under the rate limit (zero without one).
    pub(crate) fn delay_for(&self, bytes: u64) -> Duration {
        match &self.bucket {
            None => Duration::ZERO,
            Some(bucket) => bucket
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(bytes, Instant::now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_second_of_burst_then_paces() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(1000, start);
        assert_eq!(bucket.take(1000, start), Duration::ZERO);
        assert_eq!(bucket.take(500, start), Duration::from_millis(500));
        // Half a second later the debt is paid, nothing more.
        let later = start + Duration::from_millis(500);
        assert_eq!(bucket.take(0, later), Duration::ZERO);
        // Idle time refills to one second's worth at most.
        let much_later = later + Duration::from_secs(60);
        assert_eq!(bucket.take(1000, much_later), Duration::ZERO);
        assert_eq!(bucket.take(250, much_later), Duration::from_millis(250));
    }

    #[test]
    fn requests_are_counted() {
        let budget = Budget::new(2, None);
        assert!(budget.admit_request());
        assert!(budget.admit_request());
        assert!(!budget.admit_request());
        assert_eq!(budget.delay_for(1 << 30), Duration::ZERO);
    }
}
