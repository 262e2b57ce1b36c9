//! A full data disk (ENOSPC, or EDQUOT for a quota) is not a failing disk: the log stays
//! readable, appends are refused (the broker answers KAFKA_STORAGE_ERROR, which clients
//! retry), and once space is back the log resumes by itself.
//!
//! Resuming (`recover_after_disk_full`, run by the broker's appender between rounds, when
//! none of this log's writes is in flight): everything after the log end offset — the
//! appends whose writes failed, none of them acknowledged, possibly a partial batch — is
//! cut from the files (later segments deleted, the log end's segment truncated at the log
//! end position), then the log is reopened from disk with a full recovery from its
//! recovery point, which rebuilds the indexes, the producer state and the leader epochs of
//! exactly what was acknowledged. A crash in the middle leaves a prefix at least as long as
//! the log end, cut at the next start by the same recovery.

use std::fs;
use std::io;

use super::{delete_segments, segment_file_path, AppendError, PartitionLog, Recovery};
use crate::segment::LOG_SUFFIX;

/// Bytes that must be free on the log's filesystem (beyond the largest batch accepted)
/// before appends resume.
pub const DISK_FULL_RESUME_FREE_BYTES_MIN: u64 = 1 << 20;

/// Whether `err` means "no space" rather than a failing disk.
pub(super) fn is_disk_full(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
        || err.kind() == io::ErrorKind::StorageFull
        || err.kind() == io::ErrorKind::QuotaExceeded
}

impl PartitionLog {
    /// Why a new append is refused now, if it is.
    pub(super) fn append_refused(&self) -> Option<AppendError> {
        if self.offline.is_some() {
            return Some(AppendError::Offline);
        }
        let reason = self.disk_full.as_ref()?;
        Some(AppendError::Io(io::Error::new(
            io::ErrorKind::StorageFull,
            format!(
                "{}: the disk is full ({reason}); appends resume once space is freed",
                self.dir.display()
            ),
        )))
    }

    /// Whether appends are accepted (not offline, disk not full).
    pub fn accepts_appends(&self) -> bool {
        self.offline.is_none() && self.disk_full.is_none()
    }

    /// True while appends wait for free space (`recover_after_disk_full`).
    pub fn is_disk_full(&self) -> bool {
        self.disk_full.is_some()
    }

    pub(super) fn disk_full_after(&mut self, err: &io::Error) {
        if self.disk_full.is_none() {
            tracing::warn!(
                dir = %self.dir.display(),
                error = %err,
                log_end_offset = self.log_end.offset,
                "disk full: refusing appends to this partition until space is freed; reads go on"
            );
        }
        self.disk_full = Some(err.to_string());
    }

    /// After a disk-full failure, once at least `DISK_FULL_RESUME_FREE_BYTES_MIN` plus the
    /// largest batch is free and no sync of this log is running: cuts what follows the log
    /// end and reopens the log from disk (module docs). The caller guarantees that none of
    /// this log's prepared writes is still in flight. Ok(true) when appends resumed;
    /// Ok(false) when not yet (no space, a sync running). An error takes the log offline.
    pub fn recover_after_disk_full(&mut self) -> io::Result<bool> {
        if self.disk_full.is_none() || self.offline.is_some() || self.syncs_in_flight > 0 {
            return Ok(false);
        }
        let wanted = DISK_FULL_RESUME_FREE_BYTES_MIN + u64::from(self.config.max_message_bytes);
        if crate::logdir::filesystem_space(&self.dir)?.usable_bytes < wanted {
            return Ok(false);
        }
        match self.reopen_at_log_end() {
            Ok(()) => {
                tracing::info!(
                    dir = %self.dir.display(),
                    log_end_offset = self.log_end.offset,
                    "disk space is back: appends resume"
                );
                Ok(true)
            }
            Err(e) => {
                self.offline = Some(format!("resuming after a full disk: {e}"));
                Err(e)
            }
        }
    }

    fn reopen_at_log_end(&mut self) -> io::Result<()> {
        let end = self.log_end;
        let after: Vec<i64> = super::list_segment_bases(&self.dir)?
            .into_iter()
            .filter(|&base| base > end.segment_base)
            .collect();
        // Drop every open file and mapping of the old state before the files change.
        self.segments.clear();
        self.files.forget_dir(&self.dir);
        delete_segments(&self.dir, &after)?;
        let log_path = segment_file_path(&self.dir, end.segment_base, LOG_SUFFIX);
        let file = fs::OpenOptions::new().write(true).open(&log_path)?;
        file.set_len(end.position)?;
        file.sync_all()?;
        let recovery = Recovery::Full {
            recovery_point: self.recovery_point.min(end.offset),
        };
        let (mut fresh, _) =
            PartitionLog::open(&self.dir, self.config, recovery, self.files.clone())?;
        // What the broker set on the log rather than what its files hold carries over. The
        // high watermark above all: a fresh open starts it at the log end, which for a
        // replica would count the unreplicated tail as committed (a follower would then
        // serve it, and refuse, rightly, the truncation its leader asks for).
        fresh.leader_epoch = self.leader_epoch;
        fresh.following = self.following;
        fresh.truncations = self.truncations;
        fresh.unclean_truncations = self.unclean_truncations;
        fresh.unclean_truncated_offsets = self.unclean_truncated_offsets;
        fresh.log_start_offset = fresh
            .log_start_offset
            .max(self.log_start_offset)
            .min(fresh.log_end.offset);
        fresh.high_watermark_mode = self.high_watermark_mode;
        let hw = self
            .high_watermark
            .clamp(fresh.log_start_offset, fresh.log_end.offset);
        fresh.set_high_watermark(hw);
        fresh.high_watermark_after_append();
        *self = fresh;
        Ok(())
    }
}
