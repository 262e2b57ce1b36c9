//! Kafka's per-log-dir offset checkpoints, written from every shard's partitions:
//! - `recovery-point-offset-checkpoint`: the offset below which each partition's log is
//!   known to be on disk. After an unclean shutdown, recovery rescans every segment from the
//!   one holding that offset. Shard 0 gathers every shard's recovery points and writes the
//!   files every `log.flush.offset.checkpoint.interval.ms`; at a stop, after every shard
//!   closed its logs, the main thread writes them once more with every log end (Kafka's
//!   LogManager does the same before its clean-shutdown marker), so a crash soon after the
//!   next start rescans only what was written since. A stale (lower) recovery point is
//!   always safe: it only means more rescanning.
//! - `replication-offset-checkpoint`: each partition's high watermark, written by shard 0
//!   every `REPLICA_HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS` (Kafka's
//!   `replica.high.watermark.checkpoint.interval.ms` default; not a config key yet), and by
//!   the main thread at a stop with the recovery points (`ClosedOffsets`). A
//!   replicated partition's high watermark is restored from it after open
//!   (`read_high_watermarks`, then `PartitionLog::restore_high_watermark`); a stale (lower)
//!   one only delays what consumers see until the leader advances it again. A single node's
//!   partitions have it at their log end offset.
//!
//! Both files have the same format (`sluice_engine::checkpoint`).

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use futures_util::future::join_all;
use sluice_engine::{
    read_offset_checkpoint, write_offset_checkpoint, PartitionLog, RECOVERY_POINT_CHECKPOINT_FILE,
    REPLICATION_OFFSET_CHECKPOINT_FILE,
};

use crate::msg::{call, CheckpointedOffset, RecoveryPoint, ShardMsg};
use crate::shard::Shard;

/// Kafka's `replica.high.watermark.checkpoint.interval.ms` default.
pub const REPLICA_HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS: u64 = 5_000;

/// Which per-log-dir checkpoint: the file and the offset of each partition it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetCheckpoint {
    /// `recovery-point-offset-checkpoint`: `PartitionLog::recovery_point`.
    RecoveryPoint,
    /// `replication-offset-checkpoint`: `PartitionLog::high_watermark`.
    HighWatermark,
}

impl OffsetCheckpoint {
    pub fn file_name(self) -> &'static str {
        match self {
            OffsetCheckpoint::RecoveryPoint => RECOVERY_POINT_CHECKPOINT_FILE,
            OffsetCheckpoint::HighWatermark => REPLICATION_OFFSET_CHECKPOINT_FILE,
        }
    }

    fn offset_of(self, log: &PartitionLog) -> i64 {
        match self {
            OffsetCheckpoint::RecoveryPoint => log.recovery_point(),
            OffsetCheckpoint::HighWatermark => log.high_watermark(),
        }
    }
}

/// The `kind` offsets of the partitions this shard owns.
pub fn local_offsets(shard: &Shard, kind: OffsetCheckpoint) -> Vec<CheckpointedOffset> {
    shard
        .logs
        .borrow()
        .iter()
        .filter_map(|(tp, log)| {
            let l = log.borrow();
            let dir = l.dir().parent()?.to_path_buf();
            Some((dir, tp.topic.to_string(), tp.partition, kind.offset_of(&l)))
        })
        .collect()
}

/// The high watermarks `replication-offset-checkpoint` in `log_dir` holds, by (topic,
/// partition). A missing file is empty; a malformed one is an error naming file and line.
pub fn read_high_watermarks(log_dir: &Path) -> io::Result<HashMap<(String, i32), i64>> {
    read_offset_checkpoint(&log_dir.join(REPLICATION_OFFSET_CHECKPOINT_FILE))
}

/// Runs on shard 0 until the broker stops: writes the `kind` checkpoint of every log dir
/// every `interval_ms`.
pub async fn checkpoint_loop(shard: Rc<Shard>, kind: OffsetCheckpoint, interval_ms: u64) {
    let mut tick = compio::time::interval(Duration::from_millis(interval_ms));
    tick.tick().await;
    loop {
        tick.tick().await;
        if shard.stopping.get() {
            return;
        }
        write_checkpoints(&shard, kind).await;
    }
}

/// Gathers every shard's `kind` offsets and rewrites the checkpoint file of every log dir
/// (tmp, fsync, rename, off the shard thread); failures are logged. Also for callers that
/// need the file current now (after a truncation the recovery point checkpoint must not
/// name an offset above the cut before new appends go there).
pub async fn write_checkpoints(shard: &Shard, kind: OffsetCheckpoint) {
    let gathered = join_all((0..shard.shard_count()).map(|to| {
        call(&shard.peers, to, |reply| ShardMsg::CheckpointedOffsets {
            kind,
            reply,
        })
    }))
    .await;
    let dirs = shard.broker.log_dir_failures.online_dirs();
    let offsets: Vec<CheckpointedOffset> = gathered.into_iter().flatten().flatten().collect();
    let written =
        compio::runtime::spawn_blocking(move || write_offsets(&dirs, kind, offsets)).await;
    if written.is_err() {
        tracing::error!("writing the {} files panicked", kind.file_name());
    }
}

/// The checkpointed offsets of the logs a stop closed: the main thread writes both files
/// once every shard closed (Kafka's LogManager and ReplicaManager do at shutdown).
#[derive(Debug, Default)]
pub struct ClosedOffsets {
    /// The log end offset of each cleanly closed log (its recovery point otherwise).
    pub recovery_points: Vec<RecoveryPoint>,
    pub high_watermarks: Vec<CheckpointedOffset>,
}

impl ClosedOffsets {
    pub fn extend(&mut self, other: ClosedOffsets) {
        self.recovery_points.extend(other.recovery_points);
        self.high_watermarks.extend(other.high_watermarks);
    }

    /// Writes every log dir's `recovery-point-offset-checkpoint` and
    /// `replication-offset-checkpoint` (see `write_offsets`).
    pub fn write(self, log_dirs: &[PathBuf]) {
        write_offsets(
            log_dirs,
            OffsetCheckpoint::RecoveryPoint,
            self.recovery_points,
        );
        write_offsets(
            log_dirs,
            OffsetCheckpoint::HighWatermark,
            self.high_watermarks,
        );
    }
}

/// Writes the `kind` checkpoint of every dir of `log_dirs` from `offsets` (a dir with no
/// partition gets an empty one; offsets of other dirs, offline ones, are left out); logs
/// each failure. Blocking: file writes and fsyncs.
pub fn write_offsets(
    log_dirs: &[PathBuf],
    kind: OffsetCheckpoint,
    offsets: Vec<CheckpointedOffset>,
) {
    let mut by_dir: BTreeMap<PathBuf, Vec<(String, i32, i64)>> =
        log_dirs.iter().map(|d| (d.clone(), Vec::new())).collect();
    for (dir, topic, partition, offset) in offsets {
        if let Some(entries) = by_dir.get_mut(&dir) {
            entries.push((topic, partition, offset));
        }
    }
    for (dir, entries) in by_dir {
        let path = dir.join(kind.file_name());
        if let Err(e) = write_offset_checkpoint(&path, &entries) {
            tracing::error!("writing {}: {e}", path.display());
        }
    }
}
