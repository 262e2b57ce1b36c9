//! The replication throttle (Kafka's `ReplicationQuotaManager`, KIP-73): the broker configs
//! `leader.replication.throttled.rate` and `follower.replication.throttled.rate` (bytes/s,
//! dynamic, Long.MAX_VALUE = none) bound the replication traffic of the replicas the topic
//! configs `leader.replication.throttled.replicas` / `follower.replication.throttled.replicas`
//! name for this broker (`partition:broker,...`, or `*` for every replica).
//!
//! As in Kafka, a replica in the ISR is never throttled (acks=all and the high watermark
//! never wait on a throttle); for the others, once the broker's measured rate of throttled
//! bytes is above the limit, the leader leaves those partitions out of its answers to
//! replica fetches and the follower leaves them out of its fetches, until the rate falls.
//! The rate is measured over the last `QUOTA_WINDOW_SECONDS` one-second samples (Kafka's
//! `replication.quota.window.num` = 11 × 1 s), counted from the first sample as a full window
//! (Kafka's `Rate`), so a start may burst.
//!
//! The two meters are process-wide (one broker per process; every shard records into the
//! same atomics, so the limit is the broker's, not a shard's).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// One-second samples in a rate (Kafka's `replication.quota.window.num` default).
pub const QUOTA_WINDOW_SECONDS: usize = 11;
/// Kafka's default: no throttle.
pub const RATE_UNLIMITED: u64 = i64::MAX as u64;

/// The replicas of a topic a throttle applies to, as a topic config names them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ThrottledReplicas {
    /// `""`: none.
    #[default]
    None,
    /// `*`: every replica of every partition.
    All,
    /// `partition:broker` pairs.
    Listed(Vec<(i32, i32)>),
}

impl ThrottledReplicas {
    /// Kafka's `ThrottledReplicaListValidator`: `*`, or `[partitionId]:[brokerId]` items
    /// separated by commas (spaces allowed), or empty.
    pub fn parse(key: &str, value: &str) -> Result<ThrottledReplicas, String> {
        let v = value.trim();
        if v.is_empty() {
            return Ok(ThrottledReplicas::None);
        }
        if v == "*" {
            return Ok(ThrottledReplicas::All);
        }
        let bad = || {
            format!(
                "Invalid value {value} for configuration {key}: Must be the literal '*' or a \
                 list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."
            )
        };
        let mut out = Vec::new();
        for item in v.split(',') {
            let (p, b) = item.trim().split_once(':').ok_or_else(bad)?;
            let p: i32 = p.trim().parse().map_err(|_| bad())?;
            let b: i32 = b.trim().parse().map_err(|_| bad())?;
            if p < 0 || b < 0 {
                return Err(bad());
            }
            out.push((p, b));
        }
        Ok(ThrottledReplicas::Listed(out))
    }

    /// Whether `broker`'s replica of `partition` is named (Kafka's
    /// `parseThrottledPartitions` keeps the entries of this broker).
    pub fn applies(&self, partition: i32, broker: i32) -> bool {
        match self {
            ThrottledReplicas::None => false,
            ThrottledReplicas::All => true,
            ThrottledReplicas::Listed(l) => l.contains(&(partition, broker)),
        }
    }
}

/// A topic's two lists (what `Replication` carries for each of its partitions).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicThrottles {
    pub leader: ThrottledReplicas,
    pub follower: ThrottledReplicas,
}

impl TopicThrottles {
    /// From a topic's configs; a value the controller accepted always parses, anything else
    /// is logged and read as no throttle.
    pub fn from_configs(topic: &str, get: impl Fn(&str) -> Option<String>) -> Arc<TopicThrottles> {
        let read = |key: &str| {
            let value = get(key).unwrap_or_default();
            ThrottledReplicas::parse(key, &value).unwrap_or_else(|e| {
                tracing::warn!(topic, "{e}; not throttled");
                ThrottledReplicas::None
            })
        };
        Arc::new(TopicThrottles {
            leader: read("leader.replication.throttled.replicas"),
            follower: read("follower.replication.throttled.replicas"),
        })
    }
}

/// Bytes per one-second sample, in a ring of `QUOTA_WINDOW_SECONDS`.
pub struct RateMeter {
    seconds: [AtomicI64; QUOTA_WINDOW_SECONDS],
    bytes: [AtomicU64; QUOTA_WINDOW_SECONDS],
}

/// The leader side's meter (answers to replica fetches of throttled partitions).
pub static LEADER: RateMeter = RateMeter::new();
/// The follower side's meter (what this broker's fetchers copy of throttled partitions).
pub static FOLLOWER: RateMeter = RateMeter::new();

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl RateMeter {
    pub const fn new() -> RateMeter {
        RateMeter {
            seconds: [const { AtomicI64::new(-1) }; QUOTA_WINDOW_SECONDS],
            bytes: [const { AtomicU64::new(0) }; QUOTA_WINDOW_SECONDS],
        }
    }

    pub fn record(&self, bytes: u64) {
        self.record_at(bytes, now_ms());
    }

    /// Counts `bytes` in the sample of `at_ms`'s second (a stale sample in its slot is
    /// reset first; two shards racing on the reset may lose a few bytes of a count, never
    /// block).
    pub fn record_at(&self, bytes: u64, at_ms: i64) {
        let second = at_ms.div_euclid(1000);
        let slot = second.rem_euclid(QUOTA_WINDOW_SECONDS as i64) as usize;
        let was = self.seconds[slot].swap(second, Relaxed);
        if was != second {
            self.bytes[slot].store(0, Relaxed);
        }
        self.bytes[slot].fetch_add(bytes, Relaxed);
    }

    /// Bytes/s over the window ending at `at_ms` (the whole window's length, as Kafka's
    /// `Rate` counts a young one).
    pub fn rate_at(&self, at_ms: i64) -> u64 {
        let second = at_ms.div_euclid(1000);
        let oldest = second - QUOTA_WINDOW_SECONDS as i64 + 1;
        let total: u64 = (0..QUOTA_WINDOW_SECONDS)
            .filter(|i| (oldest..=second).contains(&self.seconds[*i].load(Relaxed)))
            .map(|i| self.bytes[i].load(Relaxed))
            .sum();
        total / QUOTA_WINDOW_SECONDS as u64
    }

    /// Kafka's `isQuotaExceeded` for a limit of `rate` bytes/s.
    pub fn exceeded(&self, rate: u64) -> bool {
        rate != RATE_UNLIMITED && self.rate_at(now_ms()) > rate
    }
}

impl Default for RateMeter {
    fn default() -> Self {
        RateMeter::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttled_replica_lists_are_kafkas() {
        let key = "leader.replication.throttled.replicas";
        assert_eq!(
            ThrottledReplicas::parse(key, ""),
            Ok(ThrottledReplicas::None)
        );
        assert_eq!(
            ThrottledReplicas::parse(key, " * "),
            Ok(ThrottledReplicas::All)
        );
        let l = ThrottledReplicas::parse(key, "0:1, 0:2,1:3").unwrap();
        assert!(l.applies(0, 2) && l.applies(1, 3));
        assert!(!l.applies(1, 1) && !l.applies(0, 3));
        assert!(ThrottledReplicas::All.applies(7, 9));
        assert!(!ThrottledReplicas::None.applies(0, 1));
        for bad in ["0", "0:x", "a:1", "0:1,", "*,0:1", "-1:2", "0:1:2"] {
            let e = ThrottledReplicas::parse(key, bad).unwrap_err();
            assert!(
                e.contains(key) && e.contains("[partitionId]:[brokerId]"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn the_rate_is_the_bytes_of_the_window_over_its_length() {
        let meter = RateMeter::new();
        let t = 1_000_000_000;
        assert_eq!(meter.rate_at(t), 0);
        meter.record_at(11_000, t);
        meter.record_at(11_000, t + 500);
        assert_eq!(meter.rate_at(t + 900), 2_000);
        meter.record_at(22_000, t + 5_000);
        assert_eq!(meter.rate_at(t + 5_000), 4_000);
        // Eleven seconds later the first sample left the window; its slot is reused.
        assert_eq!(meter.rate_at(t + 11_000), 2_000);
        meter.record_at(11, t + 11_000);
        assert_eq!(meter.rate_at(t + 11_000), 2_001);
        assert_eq!(meter.rate_at(t + 60_000), 0);
    }
}
