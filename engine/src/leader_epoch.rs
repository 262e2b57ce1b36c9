//! `LeaderEpochFileCache`: Kafka's per-partition map from leader epoch to the first offset
//! written in that epoch (KIP-101), kept in the partition dir's `leader-epoch-checkpoint`.
//!
//! Followers and restarted leaders truncate by it, never by a high watermark: the leader
//! answers OffsetForLeaderEpoch (`end_offset_for`) from it and a follower cuts its log where
//! its own epochs and the leader's diverge.
//!
//! # File format
//!
//! Kafka's `LeaderEpochCheckpointFile` (the `CheckpointFile` framing of
//! `crate::checkpoint`), text with `\n` line ends:
//!
//! ```text
//! 0              version
//! 2              entry count N
//! 0 0            N lines: epoch, start offset, one space between
//! 3 1500
//! ```
//!
//! Entries are strictly increasing in both epoch and start offset. Not checksummed. Every
//! change rewrites the whole file through `leader-epoch-checkpoint.tmp`, fdatasync, rename
//! and a dir fsync, so after a crash it holds the old or the new entries.
//!
//! Crash safety: an entry is written when the first batch of its epoch is PREPARED, before
//! that batch's bytes are durable, so after a crash the file may name epochs whose batches
//! were lost; opening the log cuts the cache at the log end offset (`truncate_from_end`)
//! and re-assigns epochs from the batches recovery rescanned. A missing or unreadable file
//! is rebuilt from the `partitionLeaderEpoch` of every batch (headers only).
//!
//! Bound: one entry per leader epoch that still has a batch in the log (`assign` only runs
//! for appended batches; `truncate_from_start` drops the epochs retention deleted), so the
//! map grows with the log's leader changes, not with traffic. Dropping entries to cap it
//! would make truncation unsafe, so there is no other bound.

use std::io;
use std::path::{Path, PathBuf};

use crate::checkpoint::{
    parse_decimal, read_checkpoint_entries, write_checkpoint_text, CHECKPOINT_VERSION,
};
use crate::ids::LeaderEpoch;

/// Kafka's per-partition leader epoch checkpoint file.
pub const LEADER_EPOCH_CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";
/// Kafka's `OffsetsForLeaderEpochResponse.UNDEFINED_EPOCH` (also
/// `RecordBatch.NO_PARTITION_LEADER_EPOCH`).
pub const UNDEFINED_EPOCH: LeaderEpoch = LeaderEpoch(-1);
/// Kafka's `OffsetsForLeaderEpochResponse.UNDEFINED_EPOCH_OFFSET`.
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// One leader epoch and the first offset written in it (Kafka's `EpochEntry`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: LeaderEpoch,
    pub start_offset: i64,
}

/// Kafka's `LeaderEpochFileCache` for one partition. Lives on the partition's shard.
#[derive(Debug)]
pub struct LeaderEpochFileCache {
    path: PathBuf,
    /// Ascending, strictly in both epoch and start offset.
    epochs: Vec<EpochEntry>,
}

/// Whether opening found a usable checkpoint file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpochCheckpoint {
    /// Read from `leader-epoch-checkpoint`.
    Loaded,
    /// Absent or unreadable: the caller rebuilds the cache from the log's batches.
    Missing,
}

impl LeaderEpochFileCache {
    /// Reads `<partition_dir>/leader-epoch-checkpoint`. Entries are re-assigned in file
    /// order with `assign`'s rules, as Kafka does, so a file that is not monotone loads as
    /// the monotone cache it implies. An absent file, or one that does not parse (warned),
    /// is an empty cache with `EpochCheckpoint::Missing`.
    pub fn open(partition_dir: &Path) -> io::Result<(LeaderEpochFileCache, EpochCheckpoint)> {
        let path = partition_dir.join(LEADER_EPOCH_CHECKPOINT_FILE);
        let hint = "it is rebuilt from the log's batches";
        let read = match read_checkpoint_entries(&path, hint, parse_epoch_entry) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                tracing::warn!("{e}");
                None
            }
            Err(e) => return Err(e),
        };
        let mut cache = LeaderEpochFileCache {
            path,
            epochs: Vec::new(),
        };
        let Some(entries) = read else {
            return Ok((cache, EpochCheckpoint::Missing));
        };
        for entry in entries {
            cache.assign_in_memory(entry);
        }
        Ok((cache, EpochCheckpoint::Loaded))
    }

    /// The checkpoint file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Kafka's `assign`: records that `epoch` starts at `start_offset` and rewrites the file
    /// when that changes the cache. Nothing changes when `epoch` is the latest epoch and
    /// `start_offset` is not below its start (the usual case: every batch of an epoch).
    /// Otherwise every entry with an epoch >= `epoch` or a start offset >= `start_offset` is
    /// removed first (a warning when that removes more than the entry being replaced), so
    /// the cache stays monotone. Returns whether the cache changed.
    ///
    /// Panics on a negative epoch or offset (Kafka throws): callers pass only the epochs of
    /// batches that carry one.
    pub fn assign(&mut self, epoch: LeaderEpoch, start_offset: i64) -> io::Result<bool> {
        let changed = self.assign_in_memory(EpochEntry {
            epoch,
            start_offset,
        });
        if changed {
            self.write()?;
        }
        Ok(changed)
    }

    /// `assign` without rewriting the file (the caller writes once after many).
    pub(crate) fn assign_in_memory(&mut self, entry: EpochEntry) -> bool {
        assert!(
            entry.epoch.0 >= 0 && entry.start_offset >= 0,
            "invalid leader epoch entry {entry:?}"
        );
        let update_needed = self
            .epochs
            .last()
            .is_none_or(|last| entry.epoch != last.epoch || entry.start_offset < last.start_offset);
        if !update_needed {
            return false;
        }
        let keep = self
            .epochs
            .iter()
            .rposition(|e| e.epoch < entry.epoch && e.start_offset < entry.start_offset)
            .map_or(0, |i| i + 1);
        let removed = &self.epochs[keep..];
        let trivial = removed.is_empty()
            || (removed.len() == 1 && removed[0].start_offset == entry.start_offset);
        if !trivial {
            tracing::warn!(
                path = %self.path.display(),
                new_entry = ?entry,
                removed = ?removed,
                "a new leader epoch entry truncated conflicting entries"
            );
        }
        self.epochs.truncate(keep);
        self.epochs.push(entry);
        true
    }

    /// Every entry, ascending.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.epochs
    }

    pub fn latest_entry(&self) -> Option<EpochEntry> {
        self.epochs.last().copied()
    }

    pub fn earliest_entry(&self) -> Option<EpochEntry> {
        self.epochs.first().copied()
    }

    /// The latest epoch with data in the log, `None` for a log that never had a batch
    /// with a leader epoch.
    pub fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.latest_entry().map(|e| e.epoch)
    }

    /// Kafka's `endOffsetFor`: the largest epoch <= `requested` this log knows and the
    /// offset where the epoch after it starts (the end of `requested`'s data here):
    /// - `requested` is `UNDEFINED_EPOCH` (-1): (-1, -1);
    /// - `requested` is the latest epoch: (requested, `log_end_offset`);
    /// - no epoch above `requested` (above the latest, or an empty cache): (-1, -1);
    /// - `requested` below every epoch: (requested, the first epoch's start offset);
    /// - otherwise (the largest epoch <= requested, the start of the first epoch > requested).
    pub fn end_offset_for(
        &self,
        requested: LeaderEpoch,
        log_end_offset: i64,
    ) -> (LeaderEpoch, i64) {
        let undefined = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        if requested == UNDEFINED_EPOCH {
            return undefined;
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end_offset);
        }
        let higher = self.epochs.partition_point(|e| e.epoch <= requested);
        let Some(higher_entry) = self.epochs.get(higher) else {
            return undefined;
        };
        match higher.checked_sub(1).map(|floor| self.epochs[floor]) {
            None => (requested, higher_entry.start_offset),
            Some(floor_entry) => (floor_entry.epoch, higher_entry.start_offset),
        }
    }

    /// Kafka's `truncateFromEnd`: removes every entry starting at or after `end_offset`
    /// (the log was cut there) and rewrites the file if that removed any.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> io::Result<()> {
        let needed = end_offset >= 0
            && self
                .latest_entry()
                .is_some_and(|e| e.start_offset >= end_offset);
        if !needed {
            return Ok(());
        }
        let keep = self.epochs.partition_point(|e| e.start_offset < end_offset);
        self.epochs.truncate(keep);
        self.write()
    }

    /// Kafka's `truncateFromStart`: the log now starts at `start_offset`; entries starting at
    /// or below it are removed, and the last of them comes back starting at `start_offset`
    /// (its epoch still covers the records from there). Rewrites the file if anything changed.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> io::Result<()> {
        let removed = self
            .epochs
            .partition_point(|e| e.start_offset <= start_offset);
        if removed == 0 {
            return Ok(());
        }
        let first = EpochEntry {
            epoch: self.epochs[removed - 1].epoch,
            start_offset,
        };
        let unchanged = removed == 1 && self.epochs[0] == first;
        if unchanged {
            return Ok(());
        }
        self.epochs.drain(..removed);
        self.epochs.insert(0, first);
        self.write()
    }

    /// Kafka's `clearAndFlush`: no entries, file rewritten (a log truncated fully).
    pub fn clear_and_flush(&mut self) -> io::Result<()> {
        self.epochs.clear();
        self.write()
    }

    /// Writes the current entries (format in the module doc) atomically.
    pub fn write(&self) -> io::Result<()> {
        let mut text = format!("{CHECKPOINT_VERSION}\n{}\n", self.epochs.len());
        for e in &self.epochs {
            text.push_str(&format!("{} {}\n", e.epoch.0, e.start_offset));
        }
        write_checkpoint_text(&self.path, &text)
    }
}

/// `<epoch >= 0> <start offset >= 0>`, one space between.
fn parse_epoch_entry(line: &str) -> Option<EpochEntry> {
    let (epoch, offset) = line.split_once(' ')?;
    Some(EpochEntry {
        epoch: LeaderEpoch(parse_decimal(epoch)?),
        start_offset: parse_decimal(offset)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafka_entry_lines() {
        let entry = |epoch, start_offset| EpochEntry {
            epoch: LeaderEpoch(epoch),
            start_offset,
        };
        assert_eq!(parse_epoch_entry("0 0"), Some(entry(0, 0)));
        assert_eq!(parse_epoch_entry("7 1500"), Some(entry(7, 1500)));
        for bad in [
            "", "1", "1 ", " 1 2", "1  2", "1 2 3", "-1 2", "1 -2", "a 2", "1\t2",
        ] {
            assert_eq!(parse_epoch_entry(bad), None, "{bad:?}");
        }
    }
}
