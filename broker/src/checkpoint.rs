//! Kafka's `recovery-point-offset-checkpoint`, one per log dir: the offset below which each
//! partition's log is known to be on disk. After an unclean shutdown, recovery rescans every
//! segment from the one holding that offset. Shard 0 gathers every shard's recovery points
//! and writes the files every `log.flush.offset.checkpoint.interval.ms`; at a stop, after
//! every shard closed its logs, the main thread writes them once more with every log end
//! (Kafka's LogManager does the same before its clean-shutdown marker), so a crash soon
//! after the next start rescans only what was written since. A stale (lower) recovery point is always safe: it only means more rescanning.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use futures_util::future::join_all;
use sluice_engine::{write_offset_checkpoint, RECOVERY_POINT_CHECKPOINT_FILE};

use crate::msg::{call, RecoveryPoint, ShardMsg};
use crate::shard::Shard;

/// The recovery points of the partitions this shard owns.
pub fn local_recovery_points(shard: &Shard) -> Vec<RecoveryPoint> {
    shard
        .logs
        .borrow()
        .iter()
        .filter_map(|(tp, log)| {
            let l = log.borrow();
            let dir = l.dir().parent()?.to_path_buf();
            Some((dir, tp.topic.to_string(), tp.partition, l.recovery_point()))
        })
        .collect()
}

/// Runs on shard 0 until the broker stops.
pub async fn checkpoint_loop(shard: Rc<Shard>, interval_ms: u64) {
    let mut tick = compio::time::interval(Duration::from_millis(interval_ms));
    tick.tick().await;
    loop {
        tick.tick().await;
        if shard.stopping.get() {
            return;
        }
        let gathered = join_all(
            (0..shard.shard_count())
                .map(|to| call(&shard.peers, to, |reply| ShardMsg::RecoveryPoints { reply })),
        )
        .await;
        let dirs = shard.broker.log_dirs.clone();
        let points: Vec<RecoveryPoint> = gathered.into_iter().flatten().flatten().collect();
        let written =
            compio::runtime::spawn_blocking(move || write_recovery_points(&dirs, points)).await;
        if written.is_err() {
            tracing::error!("writing the recovery point checkpoints panicked");
        }
    }
}

/// Writes every log dir's `recovery-point-offset-checkpoint` from `points` (a dir with no
/// partition gets an empty one); logs each failure. Blocking: file writes and fsyncs.
pub fn write_recovery_points(log_dirs: &[PathBuf], points: Vec<RecoveryPoint>) {
    let mut by_dir: BTreeMap<PathBuf, Vec<(String, i32, i64)>> =
        log_dirs.iter().map(|d| (d.clone(), Vec::new())).collect();
    for (dir, topic, partition, point) in points {
        by_dir
            .entry(dir)
            .or_default()
            .push((topic, partition, point));
    }
    for (dir, entries) in by_dir {
        let path = dir.join(RECOVERY_POINT_CHECKPOINT_FILE);
        if let Err(e) = write_offset_checkpoint(&path, &entries) {
            tracing::error!("writing {}: {e}", path.display());
        }
    }
}
