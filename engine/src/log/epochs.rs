//! A `PartitionLog`'s leader epochs: the epoch its leader appends stamp, and its
//! `LeaderEpochFileCache` (loaded on open, rebuilt from the batches when needed).

use std::io;

use super::{read_header_at, PartitionLog};
use crate::batch::BatchHeader;
use crate::ids::LeaderEpoch;
use crate::leader_epoch::{
    EpochCheckpoint, EpochEntry, LeaderEpochFileCache, UNDEFINED_EPOCH_OFFSET,
};

impl PartitionLog {
    /// The epoch `prepare_append` stamps into each batch's `partitionLeaderEpoch`: the last
    /// `become_leader` epoch, else the latest epoch in the log's cache, else 0 (a partition
    /// that was never replicated: Kafka's first leader epoch is 0).
    pub fn leader_epoch(&self) -> LeaderEpoch {
        self.leader_epoch
    }

    /// This replica leads the partition from `epoch` on (Kafka's `Partition.makeLeader`):
    /// later leader appends carry `epoch`, and the cache records that it starts at the
    /// next offset at once, so OffsetForLeaderEpoch answers for the previous epoch end
    /// where this one starts even before the first append.
    ///
    /// Panics when `epoch` is below the current one: leader epochs only grow, and a lower
    /// one means the caller acts on a stale decision.
    pub fn become_leader(&mut self, epoch: LeaderEpoch) -> io::Result<()> {
        assert!(
            epoch >= self.leader_epoch,
            "{}: leader epoch {} after {}",
            self.dir.display(),
            epoch.0,
            self.leader_epoch.0
        );
        self.leader_epoch = epoch;
        self.following = false;
        self.leader_epochs.assign(epoch, self.next_offset)?;
        Ok(())
    }

    /// This replica follows another (Kafka's `Partition.makeFollower`): from now until the
    /// next `become_leader`, `prepare_append` refuses leader appends with
    /// `AppendError::NotLeader`; only `prepare_append_as_follower` writes.
    pub fn become_follower(&mut self) {
        self.following = true;
    }

    /// Whether `become_follower` was the last role change.
    pub fn is_following(&self) -> bool {
        self.following
    }

    /// The partition's leader epoch cache.
    pub fn leader_epoch_cache(&self) -> &LeaderEpochFileCache {
        &self.leader_epochs
    }

    /// Kafka's `UnifiedLog.endOffsetForEpoch`: `LeaderEpochFileCache::end_offset_for` at
    /// this log's end offset, `None` where that is undefined (answered as epoch -1,
    /// offset -1 by OffsetForLeaderEpoch).
    pub fn end_offset_for_epoch(&self, requested: LeaderEpoch) -> Option<(LeaderEpoch, i64)> {
        let (epoch, offset) = self
            .leader_epochs
            .end_offset_for(requested, self.log_end.offset);
        (offset != UNDEFINED_EPOCH_OFFSET).then_some((epoch, offset))
    }

    /// On open: a missing (or unreadable) checkpoint is rebuilt from every batch's
    /// `partitionLeaderEpoch`; after a rescan (`rescanned_from`: the first rescanned
    /// segment's base) the rescanned batches assign their epochs as Kafka's
    /// `LogSegment.recover` does (only epochs >= 0 above the latest). Then entries at or
    /// past the log end offset (written for batches a crash lost) are cut.
    pub(super) fn load_leader_epochs(
        &mut self,
        checkpoint: EpochCheckpoint,
        rescanned_from: Option<i64>,
    ) -> io::Result<()> {
        let from = match checkpoint {
            EpochCheckpoint::Missing => Some(self.log_start_offset),
            EpochCheckpoint::Loaded => rescanned_from,
        };
        if let Some(from) = from {
            let found = self.epoch_starts(from)?;
            let rebuilt = !found.is_empty() || checkpoint == EpochCheckpoint::Missing;
            for entry in found {
                self.leader_epochs.assign_in_memory(entry);
            }
            if rebuilt {
                self.leader_epochs.write()?;
                tracing::info!(
                    dir = %self.dir.display(),
                    epochs = self.leader_epochs.entries().len(),
                    "rebuilt the leader epoch cache from the log"
                );
            }
        }
        self.leader_epochs.truncate_from_end(self.log_end.offset)?;
        self.leader_epoch = self.leader_epochs.latest_epoch().unwrap_or(LeaderEpoch(0));
        Ok(())
    }

    /// Where each epoch above the cache's latest starts among the batches from the one
    /// holding `from` (Kafka's recovery rule: only epochs >= 0 above the latest so far).
    /// Epochs never decrease along a log, so a segment whose first and last batches (from
    /// `from`) carry the same epoch holds only that one: its other headers are not read.
    /// A log that never changed leader costs two header reads per segment.
    fn epoch_starts(&self, from: i64) -> io::Result<Vec<EpochEntry>> {
        let mut latest = self.leader_epochs.latest_epoch();
        let mut found = Vec::new();
        let mut note = |header: &BatchHeader| {
            let epoch = LeaderEpoch(header.partition_leader_epoch);
            if epoch.0 >= 0 && latest.is_none_or(|latest| epoch > latest) {
                found.push(EpochEntry {
                    epoch,
                    start_offset: header.base_offset,
                });
                latest = Some(epoch);
            }
        };
        let first = self
            .segments
            .range(..=from)
            .next_back()
            .map_or(from, |(b, _)| *b);
        for segment in self.segments.range(first..).map(|(_, s)| s) {
            let end = self.visible_end(segment);
            let file = segment.file(&self.files)?;
            let Some((mut position, first_header)) = segment.find_batch(&file, from, end)? else {
                continue;
            };
            let last_offset = match segment.base_offset() == self.log_end.segment_base {
                true => self.log_end.offset - 1,
                false => segment.next_offset() - 1,
            };
            let last = segment.find_batch(&file, last_offset, end)?;
            let (_, last_header) = last.expect("a segment with a batch has a last batch");
            if first_header.partition_leader_epoch == last_header.partition_leader_epoch {
                note(&first_header);
                continue;
            }
            while position < end {
                let header = read_header_at(&file, position, end)?;
                note(&header);
                position += header.total_bytes() as u64;
            }
        }
        Ok(found)
    }
}

/// Whether a follower's fetch position agrees with this (leader's) log (KIP-320), Kafka's
/// `Partition.divergingEpochAndOffset` for a fetch carrying `last_fetched_epoch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LastFetchedEpoch {
    /// The fetch offset is within the end of the follower's last epoch here: serve it.
    Consistent,
    /// The follower's log diverges: answer the fetch with this `diverging_epoch` (epoch and
    /// end offset) and no records; the follower truncates there.
    Diverging { epoch: LeaderEpoch, end_offset: i64 },
    /// This log cannot say where the epoch ends (Kafka answers KAFKA_STORAGE_ERROR).
    Unknown,
}

/// Where a follower truncates after its leader's answer (Kafka's `OffsetTruncationState`):
/// at `offset`; when `truncation_completed` is false, it asks the leader again (the next
/// OffsetForLeaderEpoch with its new latest epoch) before fetching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetTruncationState {
    pub offset: i64,
    pub truncation_completed: bool,
}

impl PartitionLog {
    /// On the leader: checks a replica fetch at `fetch_offset` whose last batch was in
    /// `last_fetched_epoch` (KIP-320). The follower diverges when this log's largest epoch
    /// <= it is lower than it, or ends before `fetch_offset`.
    pub fn check_last_fetched_epoch(
        &self,
        fetch_offset: i64,
        last_fetched_epoch: LeaderEpoch,
    ) -> LastFetchedEpoch {
        let Some((epoch, end_offset)) = self.end_offset_for_epoch(last_fetched_epoch) else {
            return LastFetchedEpoch::Unknown;
        };
        if epoch < last_fetched_epoch || end_offset < fetch_offset {
            return LastFetchedEpoch::Diverging { epoch, end_offset };
        }
        LastFetchedEpoch::Consistent
    }

    /// On a follower: where to truncate after the leader said `leader` = (epoch, end offset)
    /// for this log's latest epoch (an OffsetForLeaderEpoch answer or a Fetch's diverging
    /// epoch), Kafka's `AbstractFetcherThread.getOffsetTruncationState`:
    /// - the leader's end offset undefined (-1): `initial_fetch_offset` (where this follower
    ///   started fetching, Kafka's fallback), completed;
    /// - the leader's epoch undefined: min(its end offset, this log end), completed;
    /// - this log knows the leader's epoch: min(both end offsets of it, this log end),
    ///   completed;
    /// - this log's largest epoch below the leader's is another one: min(that epoch's end
    ///   here, this log end), not completed (ask again with the new latest epoch);
    /// - this log has no epoch at or below it: the leader's end offset, completed.
    pub fn offset_truncation_state(
        &self,
        (leader_epoch, leader_end_offset): (LeaderEpoch, i64),
        initial_fetch_offset: i64,
    ) -> OffsetTruncationState {
        let log_end = self.log_end.offset;
        let done = |offset: i64| OffsetTruncationState {
            offset: offset.min(log_end),
            truncation_completed: true,
        };
        if leader_end_offset == UNDEFINED_EPOCH_OFFSET {
            return OffsetTruncationState {
                offset: initial_fetch_offset,
                truncation_completed: true,
            };
        }
        if leader_epoch == crate::leader_epoch::UNDEFINED_EPOCH {
            return done(leader_end_offset);
        }
        match self.end_offset_for_epoch(leader_epoch) {
            Some((epoch, end)) if epoch == leader_epoch => done(end.min(leader_end_offset)),
            Some((_, end)) => OffsetTruncationState {
                offset: end.min(log_end),
                truncation_completed: false,
            },
            None => done(leader_end_offset),
        }
    }
}
