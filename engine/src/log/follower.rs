//! A follower's append (Kafka's `UnifiedLog.appendAsFollower`): the leader's batches are
//! written byte for byte — its offsets and leader epochs kept, nothing rewritten — so every
//! replica holds the same batch bytes (segment boundaries may differ).
//!
//! The result is an ordinary `PendingAppend`: the group-commit path (`write_coalesced`,
//! `complete_append`, `sync_job`) is the same for leader and follower appends.

use bytes::Bytes;

use super::{AppendError, PartitionLog, PendingAppend};
use crate::batch::validate_batches;
use crate::ids::LeaderEpoch;

/// Why a follower append was refused. Nothing was reserved.
#[derive(Debug, thiserror::Error)]
pub enum FollowerAppendError {
    /// Bad framing or CRC, the log offline, a write error, or more bytes than a segment.
    #[error(transparent)]
    Append(#[from] AppendError),
    /// Kafka's `UnexpectedAppendOffsetException`: the first batch does not start where this
    /// log ends (the fetch loop asked for another offset, or the log moved meanwhile).
    #[error("the leader's records start at offset {first_offset}, this log ends at {expected}")]
    UnexpectedAppendOffset { expected: i64, first_offset: i64 },
    /// Kafka's `OffsetsOutOfOrderException`: a batch does not start right after the one
    /// before it.
    #[error("a batch starts at offset {base_offset} where {expected} was expected")]
    OffsetsOutOfOrder { expected: i64, base_offset: i64 },
    /// A batch's leader epoch is below the latest epoch this log holds: leader epochs only
    /// grow along a log, so the batch comes from a leader this replica has outlived (a
    /// fetch answer that arrived after it became leader, or after it followed a newer one).
    /// Appending it would regress the epoch cache and leave two histories under one epoch.
    #[error("a batch at offset {base_offset} has leader epoch {epoch}, below this log's {latest}")]
    EpochRegression {
        base_offset: i64,
        epoch: i32,
        latest: i32,
    },
}

impl PartitionLog {
    /// Prepares the leader's batches `records` (as fetched: whole batches, offsets and
    /// leader epochs assigned by the leader) for writing without changing a byte: one
    /// iovec, the fetched `Bytes` itself.
    ///
    /// Checks: the same batch validation as a produce (framing, CRC-32C, counts, producer
    /// fields), except `max.message.bytes`, which only a leader enforces (Kafka's
    /// `ignoreRecordSize` for replication: the leader's topic config may be larger); the
    /// first batch starts at `next_offset` (the end of this log, including appends prepared
    /// and not yet written); each batch starts right after the previous one; no batch's
    /// leader epoch is below the latest epoch of the log or of a batch before it
    /// (`EpochRegression`: a stale leader's answer). Then, per
    /// batch: the producer state learns it without checks (Kafka's `AppendOrigin.REPLICATION`),
    /// so an idempotent producer's retry is still recognised after this replica becomes
    /// leader; and its `partitionLeaderEpoch` (when >= 0) is assigned in the leader epoch
    /// cache at its base offset (a new epoch rewrites `leader-epoch-checkpoint`).
    ///
    /// The segment rolls as for a leader append (`segment.bytes`, full index, `segment.ms`).
    /// Write the result with `write_coalesced` and complete it with `complete_append`, like
    /// any append; the high watermark does not move with it in `HighWatermarkMode::Replicated`
    /// (the follower sets it from the leader's answer with `update_high_watermark`).
    pub fn prepare_append_as_follower(
        &mut self,
        records: Bytes,
    ) -> Result<PendingAppend, FollowerAppendError> {
        if let Some(refused) = self.append_refused() {
            return Err(refused.into());
        }
        let headers = validate_batches(&records, u32::MAX).map_err(AppendError::from)?;
        if records.len() as u64 > self.config.segment_bytes {
            return Err(AppendError::LargerThanSegment {
                records_bytes: records.len() as u64,
                segment_bytes: self.config.segment_bytes,
            }
            .into());
        }
        let first_offset = headers[0].base_offset;
        let last_offset = self.check_follower_batches(&headers)?;
        let max_timestamp = headers.iter().map(|h| h.max_timestamp).max().unwrap_or(-1);
        self.maybe_roll((records.len() as u64, max_timestamp), last_offset)
            .map_err(AppendError::from)?;
        let new_epochs = headers
            .iter()
            .filter(|h| h.partition_leader_epoch >= 0)
            .map(|h| (LeaderEpoch(h.partition_leader_epoch), h.base_offset));
        for (epoch, start_offset) in new_epochs {
            self.leader_epochs
                .assign(epoch, start_offset)
                .map_err(AppendError::from)?;
        }
        let segment_base = self.active().base_offset();
        let position = self.active().size_bytes();
        let file = self.active().active_file().clone();
        if position == 0 {
            self.active_rolling_ms = Some(headers[0].max_timestamp);
        }
        let segment = self.active_mut();
        let mut at = position;
        for header in &headers {
            segment.append_batch(header, at);
            at += header.total_bytes() as u64;
        }
        for header in &headers {
            self.producer_state.update(header);
        }
        assert_eq!(at - position, records.len() as u64);
        self.next_offset = last_offset + 1;
        assert_eq!(self.producer_state.map_end_offset(), self.next_offset);
        Ok(PendingAppend::new(
            file,
            position,
            vec![records],
            (first_offset, last_offset),
            (segment_base, at),
        ))
    }

    /// The leader's batches start at `next_offset`, follow each other, and never go back
    /// in leader epoch; returns the last offset they hold.
    fn check_follower_batches(
        &self,
        headers: &[crate::batch::BatchHeader],
    ) -> Result<i64, FollowerAppendError> {
        let first_offset = headers[0].base_offset;
        if first_offset != self.next_offset {
            return Err(FollowerAppendError::UnexpectedAppendOffset {
                expected: self.next_offset,
                first_offset,
            });
        }
        let mut expected = first_offset;
        for header in headers {
            if header.base_offset != expected {
                return Err(FollowerAppendError::OffsetsOutOfOrder {
                    expected,
                    base_offset: header.base_offset,
                });
            }
            expected = header.last_offset() + 1;
        }
        let last_offset = expected - 1;
        let mut latest = self.leader_epochs.latest_epoch();
        for h in headers.iter().filter(|h| h.partition_leader_epoch >= 0) {
            let epoch = LeaderEpoch(h.partition_leader_epoch);
            if let Some(l) = latest.filter(|l| epoch < *l) {
                return Err(FollowerAppendError::EpochRegression {
                    base_offset: h.base_offset,
                    epoch: epoch.0,
                    latest: l.0,
                });
            }
            latest = Some(epoch);
        }
        Ok(last_offset)
    }
}
