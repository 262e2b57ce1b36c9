//! A `PartitionLog`'s leader epochs: the epoch its leader appends stamp, and its
//! `LeaderEpochFileCache` (loaded on open, rebuilt from the batches when needed).

use std::io;

use super::PartitionLog;
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
        self.leader_epochs.assign(epoch, self.next_offset)?;
        Ok(())
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
            let mut latest = self.leader_epochs.latest_epoch();
            let mut found = Vec::new();
            self.walk_headers(from, |header| {
                let epoch = LeaderEpoch(header.partition_leader_epoch);
                if epoch.0 >= 0 && latest.is_none_or(|latest| epoch > latest) {
                    found.push(EpochEntry {
                        epoch,
                        start_offset: header.base_offset,
                    });
                    latest = Some(epoch);
                }
                Ok(())
            })?;
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
}
