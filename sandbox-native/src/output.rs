//! What a sandboxed run produced, the same on every platform: how it ended
//! and its output up to the cap.

use std::io::Read;
use std::time::Duration;

/// How the sandboxed program ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it (e.g. SIGXCPU for the CPU limit, SIGKILL).
    Signal(i32),
    /// The wall-clock limit ended it; the whole sandbox was killed.
    TimedOut,
    /// The plan's [`Cancel`](crate::Cancel) ended it; the whole sandbox was
    /// killed.
    Cancelled,
}

/// Up to the cap of what a stream carried.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CappedStream {
    /// The bytes kept.
    pub bytes: Vec<u8>,
    /// Bytes beyond the cap, counted and dropped.
    pub dropped: u64,
}

/// What one sandboxed run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOutput {
    /// How it ended.
    pub exit: Exit,
    /// Standard output.
    pub stdout: CappedStream,
    /// Standard error.
    pub stderr: CappedStream,
    /// Wall-clock time.
    pub duration: Duration,
}

/// Reads `stream` to its end, keeping `cap` bytes: reading on past the cap
/// keeps a chatty program from blocking on a full pipe.
pub(crate) fn capture(mut stream: impl Read, cap: usize) -> CappedStream {
    let mut captured = CappedStream::default();
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return captured,
            Ok(n) => {
                let room = cap.saturating_sub(captured.bytes.len()).min(n);
                captured.bytes.extend_from_slice(&chunk[..room]);
                captured.dropped += (n - room) as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_the_cap_and_counts_the_rest() {
        let data = vec![7u8; 20_000];
        let captured = capture(&data[..], 10_000);
        assert_eq!(captured.bytes.len(), 10_000);
        assert_eq!(captured.dropped, 10_000);
        let all = capture(&data[..], 1 << 20);
        assert_eq!((all.bytes.len(), all.dropped), (20_000, 0));
    }
}
