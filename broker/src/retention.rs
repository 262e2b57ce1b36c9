//! Retention on each shard: `log.initial.task.delay.ms` after start, then every
//! `log.retention.check.interval.ms` (Kafka's LogManager schedule), the shard walks the logs
//! it owns and lets each delete its expired segments (`PartitionLog::enforce_retention`).
//!
//! `__consumer_offsets` is skipped: Kafka compacts it rather than deleting by time, and the
//! group coordinator replays it from its checkpoint (segments below the checkpoint could be
//! reclaimed later).

use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::shard::Shard;

/// Kafka's internal offsets topic, never subject to time or size retention here.
const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Runs until the shard stops.
pub async fn retention_loop(shard: Rc<Shard>, initial_delay_ms: u64, interval_ms: u64) {
    compio::time::sleep(Duration::from_millis(initial_delay_ms)).await;
    // An interval's first tick completes at once: the first pass runs right after the delay.
    let mut tick = compio::time::interval(Duration::from_millis(interval_ms.max(1)));
    loop {
        tick.tick().await;
        if shard.stopping.get() {
            break;
        }
        enforce_all(&shard);
    }
}

/// One retention pass over every log this shard owns.
pub fn enforce_all(shard: &Shard) {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let logs: Vec<_> = shard
        .logs
        .borrow()
        .iter()
        .filter(|(tp, _)| &*tp.topic != OFFSETS_TOPIC)
        .map(|(tp, log)| (tp.clone(), log.clone()))
        .collect();
    for (tp, log) in logs {
        let Ok(mut log) = log.try_borrow_mut() else {
            continue; // in use right now; the next pass gets it
        };
        if let Err(e) = log.enforce_retention(now_ms) {
            tracing::error!(topic = %tp.topic, partition = tp.partition, "retention failed: {e}");
        }
    }
}
