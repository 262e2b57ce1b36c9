//! Truncation of a `PartitionLog` (Kafka's `UnifiedLog.truncateTo` and
//! `truncateFullyAndStartAt`): a follower cuts what diverges from its leader (KIP-101/279),
//! or starts over where its leader's log starts.
//!
//! Crash safety. `truncate_to` works from the end: the segments wholly above the cut are
//! deleted newest first (`.index`, `.timeindex`, then `.log` of each; dir fsynced), then the
//! segment holding the cut has its index files trimmed and fdatasynced and its `.log` cut
//! and fdatasynced, then `leader-epoch-checkpoint` is rewritten, then producer snapshots
//! above the cut are deleted. A crash at any point leaves a prefix of the old log at least
//! as long as the cut, never a hole: on restart recovery rescans from the recovery point's
//! segment, `open` cuts the leader epoch cache and the producer snapshots at the log end,
//! and the follower's next OffsetForLeaderEpoch (or Fetch diverging epoch) finds the same
//! divergence and truncates again. `truncate_fully_and_start_at` persists the new log start
//! offset first, deletes every segment newest first, then creates the new empty segment;
//! after a crash the log is the old prefix or an empty log, whose end is again below the
//! leader's start, so the follower starts over again.
//!
//! The caller must rewrite the log dir's `recovery-point-offset-checkpoint` before it
//! appends past the cut (Kafka's `LogManager.truncateTo` checkpoints right away): a
//! checkpoint naming an offset above the cut would let a later recovery trust a segment
//! that new, not yet durable, appends went into. `recovery_point()` is lowered to the cut.

use std::io;

use super::retention::write_log_start_offset;
use super::{delete_segments, LogEnd, PartitionLog};
use crate::index::IndexMode;
use crate::segment::{LogSegment, SegmentOpen};

/// Why a log is cut below its end, which decides whether the high watermark may be crossed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TruncateReason {
    /// A follower cutting what diverges from its leader: the end offset the leader gave for
    /// the follower's latest epoch (OffsetForLeaderEpoch) or a Fetch's diverging epoch.
    /// Never below the high watermark: committed records are on every in-sync replica, so
    /// a request to cut them is a bug, and the log panics rather than lose them.
    DivergingEpoch,
    /// Unclean leader election (`unclean.leader.election.enable`, KIP-966's unclean
    /// recovery): the operator accepted losing committed records. May cut below the high
    /// watermark; logged as an error and counted (`unclean_truncations`).
    UncleanLeaderElection,
}

/// Why a truncation did not run. Nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum TruncateError {
    #[error("the log is offline after a failed write")]
    Offline,
    /// Appends are prepared and not completed, or a `SyncJob` is running: retry once they
    /// finished (the group-commit round that owns them ends within the loop turn).
    #[error("{appends} appends and {syncs} syncs are in flight")]
    Busy { appends: i64, syncs: u32 },
    #[error("truncation failed: {0}")]
    Io(#[from] io::Error),
}

impl PartitionLog {
    /// `truncate_to` calls that went below the high watermark (unclean).
    pub fn unclean_truncations(&self) -> u64 {
        self.unclean_truncations
    }

    /// Offsets those truncations cut (records lost; some were acknowledged), since the log
    /// was opened.
    pub fn unclean_truncated_offsets(&self) -> u64 {
        self.unclean_truncated_offsets
    }

    fn check_truncatable(&self) -> Result<(), TruncateError> {
        if self.offline.is_some() {
            return Err(TruncateError::Offline);
        }
        let appends = self.next_offset - self.log_end.offset;
        if appends > 0 || self.syncs_in_flight > 0 {
            return Err(TruncateError::Busy {
                appends,
                syncs: self.syncs_in_flight,
            });
        }
        Ok(())
    }

    /// Removes every record at and above `offset` (Kafka's `truncateTo`): segments wholly
    /// above it are deleted, the one holding it is cut at the batch holding `offset` (so
    /// an `offset` inside a batch removes that whole batch, as Kafka does) and becomes the
    /// active segment again, its indexes trimmed; the leader epoch cache drops the epochs
    /// starting at or after the new end; the producer state is rebuilt from the newest
    /// snapshot at or below it; the high watermark and recovery point are clamped to it;
    /// the log start offset follows it down if it was above. An `offset` below the first
    /// segment is `truncate_fully_and_start_at(offset)`.
    ///
    /// Returns false when `offset` is at or past the log end offset: no record is cut, but
    /// epoch entries starting at or past the log end are (Kafka does the same).
    ///
    /// Panics when `offset` is below the high watermark and `reason` is
    /// `TruncateReason::DivergingEpoch` (see it). In `HighWatermarkMode::FollowsLogEnd` the
    /// high watermark is the log end, so only an unclean truncation may cut such a log.
    pub fn truncate_to(
        &mut self,
        offset: i64,
        reason: TruncateReason,
    ) -> Result<bool, TruncateError> {
        assert!(offset >= 0, "truncate_to({offset})");
        self.check_truncatable()?;
        if offset >= self.log_end.offset {
            // Kafka's `UnifiedLog.truncateTo` trims the epoch cache all the same: a replica
            // that became leader and lost it before appending holds an epoch entry at its
            // log end that its new leader never had; left there, every fetch would name
            // that epoch and be told again that the log diverges.
            self.leader_epochs
                .truncate_from_end(self.log_end.offset)
                .map_err(TruncateError::Io)?;
            return Ok(false);
        }
        match reason {
            TruncateReason::DivergingEpoch if offset < self.high_watermark => panic!(
                "{}: truncate_to({offset}) below the high watermark {} for a diverging \
                 epoch would drop committed records",
                self.dir.display(),
                self.high_watermark
            ),
            TruncateReason::DivergingEpoch => {}
            TruncateReason::UncleanLeaderElection => {
                // Every record cut was on the old leader's side of an unclean election: lost,
                // acknowledged or not (what this replica counted as committed may lag).
                self.unclean_truncations += 1;
                self.unclean_truncated_offsets += (self.log_end.offset - offset) as u64;
                tracing::error!(
                    dir = %self.dir.display(),
                    offset,
                    from_log_end_offset = self.log_end.offset,
                    high_watermark = self.high_watermark,
                    unclean_truncations = self.unclean_truncations,
                    "unclean truncation: the records past the new leader's log are lost"
                );
            }
        }
        let first_base = *self.segments.keys().next().expect("a log has a segment");
        if offset < first_base {
            self.truncate_fully_and_start_at(offset)?;
            return Ok(true);
        }
        let old_end = self.log_end.offset;
        let new_end = self.cut_segments(offset)?;
        self.after_truncation(new_end)?;
        tracing::warn!(
            dir = %self.dir.display(),
            offset,
            from_log_end_offset = old_end,
            log_end_offset = new_end,
            reason = ?reason,
            "truncated the log"
        );
        Ok(true)
    }

    /// Deletes the segments above `offset` (newest first), cuts the one holding it and
    /// reopens that as the active segment. Returns the new log end offset.
    fn cut_segments(&mut self, offset: i64) -> io::Result<i64> {
        let above: Vec<i64> = self
            .segments
            .range(offset + 1..)
            .rev()
            .map(|(b, _)| *b)
            .collect();
        for base in &above {
            let segment = self.segments.remove(base).expect("listed segment");
            self.files.forget(segment.log_path());
        }
        delete_segments(&self.dir, &above)?;
        let (&base, segment) = self.segments.iter().next_back().expect("the floor segment");
        let file = segment.file(&self.files)?;
        let found = segment.find_batch(&file, offset, self.visible_end(segment))?;
        let (position, header) = found.expect("an offset below the log end is in its segment");
        let new_end = header.base_offset.min(offset);
        drop(file);
        let mut segment = self.segments.remove(&base).expect("the floor segment");
        self.files.forget(segment.log_path());
        segment.truncate_files(position, new_end)?;
        drop(segment);
        let config = self.config.segment_config();
        let how = SegmentOpen::TrustIndexes;
        let (reopened, _) = LogSegment::open(&self.dir, base, config, IndexMode::Active, how)?;
        assert_eq!(
            reopened.next_offset(),
            new_end,
            "the cut segment ends at the cut"
        );
        assert_eq!(reopened.size_bytes(), position);
        self.segments.insert(base, reopened);
        super::fsync_dir(&self.dir)?;
        self.log_end = LogEnd {
            offset: new_end,
            segment_base: base,
            position,
        };
        Ok(new_end)
    }

    /// The bookkeeping after the files were cut at `new_end` (the log end offset now).
    fn after_truncation(&mut self, new_end: i64) -> io::Result<()> {
        assert_eq!(self.log_end.offset, new_end);
        self.next_offset = new_end;
        self.truncations += 1;
        self.recovery_point = self.recovery_point.min(new_end);
        let active_base = self.log_end.segment_base;
        // Rolls of the cut segment or of deleted ones: the cut segment is active again and
        // was fdatasynced by the cut; the deleted ones need nothing.
        self.roll_syncs.retain(|r| r.end_offset <= active_base);
        self.active_rolling_ms = None;
        if self.log_start_offset > new_end {
            write_log_start_offset(&self.dir, new_end)?;
            self.log_start_offset = new_end;
        }
        self.leader_epochs.truncate_from_end(new_end)?;
        self.rebuild_producer_state()?;
        self.clamp_high_watermark();
        Ok(())
    }

    /// Kafka's `truncateFullyAndStartAt`: deletes every segment and starts an empty log at
    /// `offset` (a follower whose leader's log starts past this log's end, or a
    /// `truncate_to` below the first segment). The log start offset, log end offset, high
    /// watermark and recovery point become `offset`; the leader epoch cache and the producer
    /// state (and its snapshots) are emptied. No high watermark check: whatever this log
    /// held is below the leader's log start, gone from the partition.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<(), TruncateError> {
        assert!(offset >= 0, "truncate_fully_and_start_at({offset})");
        self.check_truncatable()?;
        let old_end = self.log_end.offset;
        write_log_start_offset(&self.dir, offset)?;
        let bases: Vec<i64> = self.segments.keys().rev().copied().collect();
        for base in &bases {
            let segment = self.segments.remove(base).expect("listed segment");
            self.files.forget(segment.log_path());
        }
        delete_segments(&self.dir, &bases)?;
        let segment = LogSegment::create(&self.dir, offset, self.config.segment_config())?;
        segment.active_file().sync_data()?;
        super::fsync_dir(&self.dir)?;
        self.segments.insert(offset, segment);
        self.log_end = LogEnd {
            offset,
            segment_base: offset,
            position: 0,
        };
        self.log_start_offset = offset;
        self.leader_epochs.clear_and_flush()?;
        self.producer_state.truncate_fully_and_start_at(offset)?;
        self.roll_syncs.clear();
        self.after_truncation(offset)?;
        self.recovery_point = offset;
        tracing::warn!(
            dir = %self.dir.display(),
            offset,
            from_log_end_offset = old_end,
            "truncated the whole log and started it again"
        );
        Ok(())
    }
}
