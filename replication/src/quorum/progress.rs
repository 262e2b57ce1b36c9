//! What the quorum leader knows of each replica's progress, for DescribeQuorum: Kafka's
//! `LeaderState.ReplicaState` (log end offset, last fetch, last caught up).
//!
//! openraft 0.9's metrics give the leader each voter's matched log index but no times, so the
//! leader's network records them when a voter answers an AppendEntries (Raft pushes where
//! Kafka's voters fetch: a successful AppendEntries, heartbeats included, is our "fetch"), and
//! the controller does the same for observers when they heartbeat with their applied index.
//! Kept in a `watch` (written from the controller thread only, read by DescribeQuorum).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::records::BrokerId;

/// One replica's progress as the leader saw it in `term`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FetchProgress {
    pub term: u64,
    /// The last log index known to be on the replica.
    pub matched_index: Option<u64>,
    /// Wall-clock ms of the last answer (-1 never).
    pub last_fetch_ms: i64,
    /// Wall-clock ms when the replica last held everything the leader had (-1 never).
    pub last_caught_up_ms: i64,
    /// The leader's last log index at the previous answer (Kafka's
    /// `lastFetchLeaderLogEndOffset`).
    prev_leader_end: Option<u64>,
    prev_fetch_ms: i64,
}

impl FetchProgress {
    pub fn unknown() -> FetchProgress {
        FetchProgress {
            last_fetch_ms: -1,
            last_caught_up_ms: -1,
            prev_fetch_ms: -1,
            ..FetchProgress::default()
        }
    }

    /// Kafka's `updateFollowerState`: a replica that reached the leader's end at this answer
    /// was caught up now; one that reached the leader's end as of the previous answer was
    /// caught up at that answer's time. `leader_end` is the leader's last log index when the
    /// request was sent.
    pub fn on_fetch(
        &mut self,
        term: u64,
        matched: Option<u64>,
        leader_end: Option<u64>,
        now_ms: i64,
    ) {
        if self.term != term {
            *self = FetchProgress {
                term,
                ..FetchProgress::unknown()
            };
        }
        if matched.is_some() {
            self.matched_index = matched.max(self.matched_index);
        }
        if self.matched_index >= leader_end {
            self.last_caught_up_ms = now_ms;
        } else if self.prev_fetch_ms >= 0 && self.matched_index >= self.prev_leader_end {
            self.last_caught_up_ms = self.last_caught_up_ms.max(self.prev_fetch_ms);
        }
        self.last_fetch_ms = now_ms;
        self.prev_fetch_ms = now_ms;
        self.prev_leader_end = leader_end;
    }

    /// Kafka's log end offset: the index after the last entry held, -1 when unknown.
    pub fn log_end_offset(&self) -> i64 {
        self.matched_index.map_or(-1, |i| i as i64 + 1)
    }
}

/// Per replica id.
pub type ProgressMap = BTreeMap<BrokerId, FetchProgress>;

/// Milliseconds since the Unix epoch.
pub fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caught_up_as_kafka_counts_it() {
        let mut p = FetchProgress::unknown();
        // Behind the leader's end (10) at the first answer: never caught up yet.
        p.on_fetch(1, Some(4), Some(10), 100);
        assert_eq!((p.last_fetch_ms, p.last_caught_up_ms), (100, -1));
        // Reached 10, the end at the previous answer, while the leader moved to 12: caught
        // up as of the previous answer.
        p.on_fetch(1, Some(10), Some(12), 200);
        assert_eq!((p.last_fetch_ms, p.last_caught_up_ms), (200, 100));
        // Holds the leader's end: caught up now.
        p.on_fetch(1, Some(12), Some(12), 300);
        assert_eq!(p.last_caught_up_ms, 300);
        assert_eq!(p.log_end_offset(), 13);
        // A new term forgets the old one.
        p.on_fetch(2, None, Some(12), 400);
        assert_eq!((p.matched_index, p.last_caught_up_ms), (None, -1));
    }
}
