//! The high watermark of a `PartitionLog` (Kafka's `UnifiedLog.highWatermark`): the offset
//! below which every in-sync replica holds the records. Consumers read up to it
//! (`FetchIsolation::HighWatermark`), followers up to the log end offset
//! (`FetchIsolation::LogEnd`).
//!
//! Who moves it is explicit (`HighWatermarkMode`): a partition without followers (a single
//! node, or a replica set of one) has nothing to wait for, so every completed append moves
//! it to the log end offset (`FollowsLogEnd`, the default: today's single-node behaviour).
//! A replicated partition's leader moves it with `update_high_watermark` when the in-sync
//! replicas' log end offsets advance, and a follower with the leader's high watermark from
//! each fetch answer (`Replicated`). In both modes it never moves backwards except by
//! truncation, and never past the log end offset.
//!
//! It is persisted per log dir in `replication-offset-checkpoint`
//! (`crate::checkpoint::REPLICATION_OFFSET_CHECKPOINT_FILE`), written by the broker, and
//! restored after open with `restore_high_watermark`.

use std::io;

use super::{LogEnd, PartitionLog};

/// Kafka's `FetchIsolation`: how far a read may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchIsolation {
    /// Up to the log end offset: a follower's fetch (it must copy what is not committed yet).
    LogEnd,
    /// Up to the high watermark: a consumer's fetch (it sees only committed records).
    HighWatermark,
}

/// Who advances the high watermark (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HighWatermarkMode {
    /// No followers: every completed append sets it to the log end offset.
    FollowsLogEnd,
    /// Followers exist: only `update_high_watermark` moves it.
    Replicated,
}

impl PartitionLog {
    /// The offset below which consumers may read (<= `log_end_offset`).
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    pub fn high_watermark_mode(&self) -> HighWatermarkMode {
        self.high_watermark_mode
    }

    /// Chooses who advances the high watermark. Switching to `FollowsLogEnd` moves it to
    /// the log end offset at once (a replica set shrunk to the leader alone); switching to
    /// `Replicated` keeps it where it is until `update_high_watermark` or
    /// `restore_high_watermark` says otherwise.
    pub fn set_high_watermark_mode(&mut self, mode: HighWatermarkMode) {
        self.high_watermark_mode = mode;
        if mode == HighWatermarkMode::FollowsLogEnd {
            self.set_high_watermark(self.log_end.offset);
        }
    }

    /// Kafka's `maybeIncrementHighWatermark` (leader) / `maybeUpdateHighWatermark`
    /// (follower, with the leader's value): moves the high watermark to `offset` clamped to
    /// the log end offset, only forwards. Returns the previous value when it moved, so the
    /// caller can wake fetches parked on it; `None` when it did not move.
    pub fn update_high_watermark(&mut self, offset: i64) -> Option<i64> {
        let new = offset.min(self.log_end.offset);
        if new <= self.high_watermark {
            return None;
        }
        let old = self.high_watermark;
        self.set_high_watermark(new);
        Some(old)
    }

    /// After open, for a `Replicated` partition: the high watermark read back from
    /// `replication-offset-checkpoint`, clamped to `[log_start_offset, log_end_offset]`
    /// (recovery may have cut records the checkpoint covered). Sets it even when lower than
    /// the current value (open starts it at the log end offset). Panics in `FollowsLogEnd`
    /// mode, where the high watermark is the log end offset by definition.
    pub fn restore_high_watermark(&mut self, checkpointed: i64) {
        assert_eq!(
            self.high_watermark_mode,
            HighWatermarkMode::Replicated,
            "restore_high_watermark on a partition without followers"
        );
        let hw = checkpointed.clamp(self.log_start_offset, self.log_end.offset);
        self.set_high_watermark(hw);
    }

    pub(super) fn set_high_watermark(&mut self, offset: i64) {
        assert!(
            offset >= 0 && offset <= self.log_end.offset,
            "high watermark {offset} outside [0, log end offset {}]",
            self.log_end.offset
        );
        self.high_watermark = offset;
        self.high_watermark_end = None;
    }

    /// After a completed append: in `FollowsLogEnd` mode the high watermark is the log end.
    pub(super) fn high_watermark_after_append(&mut self) {
        if self.high_watermark_mode == HighWatermarkMode::FollowsLogEnd {
            self.set_high_watermark(self.log_end.offset);
        }
    }

    /// After a truncation: clamped to the new log end offset (and to the log start offset
    /// after `truncate_fully_and_start_at`).
    pub(super) fn clamp_high_watermark(&mut self) {
        let hw = self.high_watermark.clamp(
            self.log_start_offset.min(self.log_end.offset),
            self.log_end.offset,
        );
        self.set_high_watermark(hw);
        self.high_watermark_after_append();
    }

    /// Where a read with `isolation` must stop: the log end, or the start of the batch
    /// holding the high watermark (Kafka cuts a read at the position of the batch holding
    /// it, so a batch the high watermark is in the middle of is not returned yet). The
    /// position is looked up once per high watermark value (an index lookup and header
    /// reads) and kept until it moves.
    pub(super) fn read_bound(&mut self, isolation: FetchIsolation) -> io::Result<LogEnd> {
        if isolation == FetchIsolation::LogEnd || self.high_watermark >= self.log_end.offset {
            return Ok(self.log_end);
        }
        if let Some(end) = self.high_watermark_end {
            return Ok(end);
        }
        let hw = self.high_watermark;
        let (&base, segment) = self
            .segments
            .range(..=hw)
            .next_back()
            .expect("the high watermark is at or above the first segment");
        let file = segment.file(&self.files)?;
        let found = segment.find_batch(&file, hw, self.visible_end(segment))?;
        let (position, batch_base) = found
            .map(|(position, header)| (position, header.base_offset))
            .expect("an offset below the log end offset is in its segment");
        let end = LogEnd {
            offset: batch_base,
            segment_base: base,
            position,
        };
        self.high_watermark_end = Some(end);
        Ok(end)
    }
}
