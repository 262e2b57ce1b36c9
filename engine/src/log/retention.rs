//! Retention and DeleteRecords for `PartitionLog`: deleting whole segments, moving the log
//! start offset, rolling the active segment by time (`segment.ms`).
//!
//! A deleted segment's `.log` is unlinked first (after that the segment is gone from the
//! log's view on any restart), then its indexes. A fetch whose file range is in flight
//! keeps reading: it holds its own clone of the descriptor, which outlives the unlink.

use std::fs;
use std::io;
use std::path::Path;

use super::{fsync_dir, read_header_at, segment_file_path, PartitionLog};
use crate::segment::{INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};

/// Per-partition file holding the log start offset when DeleteRecords moved it inside a
/// segment: one line, the offset in decimal (`"42\n"`). Written to a `.tmp` file, fsynced,
/// renamed over the old one, then the directory fsynced, so a crash leaves the old or the
/// new value. Not checksummed; on open the value is clamped to
/// `[first segment base, log end offset]`, so a stale file (below the first segment after
/// retention deleted segments) is harmless.
pub const LOG_START_OFFSET_FILE: &str = "log-start-offset";

/// What one `enforce_retention` pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub deleted_segments: usize,
    pub deleted_bytes: u64,
}

/// Why DeleteRecords was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeleteRecordsError {
    #[error("offset {offset} is beyond the high watermark {high_watermark}")]
    OffsetOutOfRange { offset: i64, high_watermark: i64 },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads `LOG_START_OFFSET_FILE`; `None` when absent. Every error names the file.
pub(super) fn read_log_start_offset(dir: &Path) -> io::Result<Option<i64>> {
    let path = dir.join(LOG_START_OFFSET_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("reading {}: {e}", path.display()),
            ))
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    match text.trim().parse::<i64>() {
        Ok(offset) if offset >= 0 => Ok(Some(offset)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: {text:?} is not a log start offset (one non-negative decimal line); \
                 remove the file to start the partition at its first segment",
                path.display()
            ),
        )),
    }
}

/// The log start offset to use on open: the persisted one within `[first_base, log_end]`.
/// Above the log end (records DeleteRecords removed were not durable when the machine
/// crashed and recovery cut the tail below it) it is clamped to the log end with a warning:
/// the records below it were deleted by DeleteRecords and must not come back.
pub(super) fn clamp_log_start_offset(
    dir: &Path,
    persisted: i64,
    first_base: i64,
    log_end: i64,
) -> i64 {
    if persisted > log_end {
        tracing::warn!(
            "{}: log start offset {persisted} is past the log end offset {log_end} (the \
             tail was cut by recovery): starting at {log_end}",
            dir.join(LOG_START_OFFSET_FILE).display()
        );
    }
    persisted.clamp(first_base, log_end)
}

pub(super) fn write_log_start_offset(dir: &Path, offset: i64) -> io::Result<()> {
    use std::io::Write;
    let path = dir.join(LOG_START_OFFSET_FILE);
    let tmp = dir.join(format!("{LOG_START_OFFSET_FILE}.tmp"));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(format!("{offset}\n").as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, &path)?;
    fsync_dir(dir)
}

impl PartitionLog {
    /// Replaces the per-partition settings (AlterConfigs). Takes effect from the next
    /// append (`segment.bytes`, `max.message.bytes`, `segment.ms`) or retention pass.
    pub fn set_config(&mut self, config: super::LogConfig) -> io::Result<()> {
        config.check()?;
        assert_eq!(
            config.segment_index_bytes, self.config.segment_index_bytes,
            "index sizes do not change on a live log"
        );
        self.config = config;
        Ok(())
    }

    /// Whether `segment.ms` says the (non-empty) active segment must roll before records
    /// whose largest timestamp is `incoming_ms`: Kafka's rule compares record time with
    /// record time (the incoming batch against the segment's first batch), so a producer
    /// sending old timestamps does not roll on every append.
    pub(super) fn roll_due_by_time(&mut self, incoming_ms: i64) -> io::Result<bool> {
        let Some(segment_ms) = self.config.segment_ms else {
            return Ok(false);
        };
        let active = self.active();
        if active.size_bytes() == 0 {
            return Ok(false);
        }
        let rolling_ms = match self.active_rolling_ms {
            Some(ms) => ms,
            None => {
                let file = active.active_file().clone();
                let header = read_header_at(&file, 0, active.size_bytes())?;
                self.active_rolling_ms = Some(header.max_timestamp);
                header.max_timestamp
            }
        };
        Ok(rolling_ms >= 0 && incoming_ms.saturating_sub(rolling_ms) > segment_ms)
    }

    /// Sealed segments that may be deleted, oldest first: fully written (no append in
    /// flight) and fdatasynced (below the recovery point, so their roll sync is done), and
    /// none while a `SyncJob` runs; and, as in Kafka, wholly below the high watermark (a
    /// follower may still need what is not committed). Stops at the first one that is not.
    fn deletable_bases(&self) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        if self.syncs_in_flight > 0 {
            return out;
        }
        let mut iter = self.segments.iter().peekable();
        while let Some((&base, segment)) = iter.next() {
            let Some((&next_base, _)) = iter.peek() else {
                break; // the active segment
            };
            let written = segment.next_offset() <= self.log_end.offset
                && next_base <= self.recovery_point
                && next_base <= self.high_watermark;
            let synced = !self.roll_syncs.iter().any(|r| r.end_offset == next_base);
            if !written || !synced {
                break;
            }
            out.push((base, next_base));
        }
        out
    }

    /// Kafka's retention pass: deletes sealed segments, oldest first, that lie wholly below
    /// the log start offset (DeleteRecords), whose largest timestamp is older than
    /// `retention.ms`, or while the log is larger than `retention.bytes`. The active segment is never deleted. Moves the log start offset.
    pub fn enforce_retention(&mut self, now_ms: i64) -> io::Result<RetentionOutcome> {
        let mut outcome = RetentionOutcome::default();
        if self.offline.is_some() {
            return Ok(outcome);
        }
        let mut size = self.size_bytes();
        for (base, next_base) in self.deletable_bases() {
            let segment = &self.segments[&base];
            let too_old = self.config.retention_ms.is_some_and(|ms| {
                segment.max_timestamp() != crate::index::NO_TIMESTAMP
                    && now_ms.saturating_sub(segment.max_timestamp()) > ms
            });
            let seg_bytes = segment.size_bytes();
            let too_big = self
                .config
                .retention_bytes
                .is_some_and(|limit| size.saturating_sub(seg_bytes) >= limit && size > limit);
            let below_start = next_base <= self.log_start_offset;
            if !too_old && !too_big && !below_start {
                break;
            }
            self.delete_segment(base, next_base)?;
            size -= seg_bytes;
            outcome.deleted_segments += 1;
            outcome.deleted_bytes += seg_bytes;
        }
        if outcome.deleted_segments > 0 {
            fsync_dir(&self.dir)?;
            self.leader_epochs
                .truncate_from_start(self.log_start_offset)?;
            tracing::info!(
                dir = %self.dir.display(),
                segments = outcome.deleted_segments,
                bytes = outcome.deleted_bytes,
                log_start_offset = self.log_start_offset,
                "retention deleted segments"
            );
        }
        Ok(outcome)
    }

    /// Removes one sealed segment (the first): moves the log start offset to `next_base`
    /// if it was below, drops the cached descriptor, unlinks `.log` then the indexes.
    fn delete_segment(&mut self, base: i64, next_base: i64) -> io::Result<()> {
        assert_eq!(self.segments.keys().next(), Some(&base), "oldest first");
        let segment = self.segments.remove(&base).expect("listed segment");
        self.log_start_offset = self.log_start_offset.max(next_base);
        self.files.forget(segment.log_path());
        drop(segment);
        fs::remove_file(segment_file_path(&self.dir, base, LOG_SUFFIX))?;
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            match fs::remove_file(segment_file_path(&self.dir, base, suffix)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Kafka's DeleteRecords: moves the log start offset to `offset` (-1 = the high
    /// watermark), persists it, and deletes the sealed segments wholly below it. Returns
    /// the new log start offset (Kafka's low watermark). Offsets at or below the current
    /// start change nothing.
    pub fn delete_records(&mut self, offset: i64) -> Result<i64, DeleteRecordsError> {
        if let Some(e) = self.offline_error() {
            return Err(e.into());
        }
        let high_watermark = self.high_watermark;
        let offset = if offset == -1 { high_watermark } else { offset };
        if offset < 0 || offset > high_watermark {
            return Err(DeleteRecordsError::OffsetOutOfRange {
                offset,
                high_watermark,
            });
        }
        if offset <= self.log_start_offset {
            return Ok(self.log_start_offset);
        }
        write_log_start_offset(&self.dir, offset)?;
        self.log_start_offset = offset;
        self.leader_epochs.truncate_from_start(offset)?;
        let mut deleted = 0;
        for (base, next_base) in self.deletable_bases() {
            if next_base > offset {
                break;
            }
            self.delete_segment(base, next_base)?;
            deleted += 1;
        }
        if deleted > 0 {
            fsync_dir(&self.dir)?;
        }
        tracing::info!(dir = %self.dir.display(), log_start_offset = offset, deleted_segments = deleted, "deleted records");
        Ok(offset)
    }
}
