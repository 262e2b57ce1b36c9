//! Logs that repeat under overload (reads paused by the request memory pool, `accept`
//! failing at the descriptor limit) are written at most once per `OVERLOAD_LOG_INTERVAL_MS`,
//! with how many were left out since.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Shortest time between two lines of one overload log.
pub const OVERLOAD_LOG_INTERVAL_MS: u64 = 10_000;

/// One rate-limited log line's state, shared by every shard (a `static`).
#[derive(Debug, Default)]
pub struct LogLimit {
    last_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl LogLimit {
    pub const fn new() -> LogLimit {
        LogLimit {
            last_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(lines left out since the last one)` when this line may be written now.
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(now_ms())
    }

    fn allow_at(&self, now_ms: u64) -> Option<u64> {
        let last = self.last_ms.load(Ordering::Relaxed);
        let due = last == 0 || now_ms.saturating_sub(last) >= OVERLOAD_LOG_INTERVAL_MS;
        if due
            && self
                .last_ms
                .compare_exchange(last, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_counting_the_rest() {
        let l = LogLimit::new();
        assert_eq!(l.allow_at(1_000_000), Some(0));
        for _ in 0..200 {
            assert_eq!(l.allow_at(1_000_500), None);
        }
        assert_eq!(l.allow_at(1_000_000 + OVERLOAD_LOG_INTERVAL_MS), Some(200));
        assert_eq!(l.allow_at(1_000_001 + OVERLOAD_LOG_INTERVAL_MS), None);
    }
}
