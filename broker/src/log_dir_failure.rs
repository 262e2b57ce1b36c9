//! A failing disk takes its whole log dir offline until restart, as Kafka's
//! `LogDirFailureChannel` does: a write or fsync of any partition that fails with an error
//! other than a full disk (EIO, say) marks the partition's log dir offline, and every shard
//! then takes each of its partitions in that dir offline (appends and reads answer
//! KAFKA_STORAGE_ERROR), stops following their leaders, and — in a cluster — asks the
//! controller to move their leaderships and take this broker out of their ISRs
//! (`ControllerRequest::OfflineReplicas`). Partitions in the other `log.dirs` keep serving
//! (Kafka's JBOD behaviour), new partitions are created only in online dirs, and the
//! checkpoints skip offline dirs. A full disk is not a failure (`engine::log::disk_full`).
//!
//! The offline flags are shared by every shard (atomics and an event: set once, read
//! often); the partitions themselves are taken offline by their owning shard.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sluice_engine::PartitionLog;
use sluice_replication::{ControllerReply, ControllerRequest};

use crate::shard::{LogRef, Shard, TopicPartition};

/// How long a shard waits before trying again to take offline a log that is borrowed
/// at that moment, and how many times.
const TAKE_OFFLINE_RETRY_MS: u64 = 10;
const TAKE_OFFLINE_TRIES_MAX: u32 = 100;

/// Which of the broker's log dirs are offline. Shared by every shard.
#[derive(Debug)]
pub struct LogDirFailures {
    dirs: Vec<PathBuf>,
    offline: Vec<AtomicBool>,
    /// Dirs taken offline so far: a shard compares it with what it handled.
    failed: AtomicU64,
    changed: event_listener::Event,
}

impl LogDirFailures {
    pub fn new(dirs: &[PathBuf]) -> LogDirFailures {
        LogDirFailures {
            dirs: dirs.to_vec(),
            offline: dirs.iter().map(|_| AtomicBool::new(false)).collect(),
            failed: AtomicU64::new(0),
            changed: event_listener::Event::new(),
        }
    }

    /// The log dir (an index into `log.dirs`) holding `partition_dir`.
    fn index_of(&self, partition_dir: &Path) -> Option<usize> {
        let parent = partition_dir.parent()?;
        self.dirs.iter().position(|d| d == parent)
    }

    /// If `log` went offline after a failed write or sync, its log dir goes offline too.
    pub fn note(&self, log: &PartitionLog) {
        if let Some(reason) = log.offline_reason() {
            self.fail(log.dir(), reason);
        }
    }

    /// Takes the log dir holding `partition_dir` offline; true when it was online.
    pub fn fail(&self, partition_dir: &Path, reason: &str) -> bool {
        let Some(i) = self.index_of(partition_dir) else {
            return false;
        };
        if self.offline[i].swap(true, Ordering::AcqRel) {
            return false;
        }
        let online = self.online_dirs().len();
        tracing::error!(
            log_dir = %self.dirs[i].display(),
            error = reason,
            online_log_dirs = online,
            "log dir failed: every partition in it is offline until restart"
        );
        if online == 0 {
            tracing::error!("every log dir is offline: this broker serves no partition");
        }
        self.failed.fetch_add(1, Ordering::AcqRel);
        self.changed.notify(usize::MAX);
        true
    }

    /// Whether the log dir holding `partition_dir` is offline.
    pub fn holds_offline(&self, partition_dir: &Path) -> bool {
        self.index_of(partition_dir)
            .is_some_and(|i| self.offline[i].load(Ordering::Acquire))
    }

    pub fn is_offline(&self, log_dir: &Path) -> bool {
        let found = self.dirs.iter().position(|d| d == log_dir);
        found.is_some_and(|i| self.offline[i].load(Ordering::Acquire))
    }

    pub fn online_dirs(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .zip(&self.offline)
            .filter(|(_, off)| !off.load(Ordering::Acquire))
            .map(|(d, _)| d.clone())
            .collect()
    }
}

/// One per shard: whenever a log dir goes offline, takes this shard's partitions in it
/// offline. Ends when the shard stops.
pub async fn log_dir_failure_loop(shard: Rc<Shard>) {
    let failures = &shard.broker.log_dir_failures;
    let mut handled = 0;
    while !shard.stopping.get() {
        let changed = failures.changed.listen();
        let stop = shard.stop.listen();
        let failed = failures.failed.load(Ordering::Acquire);
        if failed == handled {
            futures_util::future::select(changed, stop).await;
            continue;
        }
        handled = failed;
        take_partitions_offline(&shard).await;
    }
}

/// Every log of this shard in an offline dir goes offline; in a cluster their replicas are
/// reported to the controller.
async fn take_partitions_offline(shard: &Rc<Shard>) {
    let failures = &shard.broker.log_dir_failures;
    let mut pending: Vec<(TopicPartition, LogRef)> = shard
        .logs
        .borrow()
        .iter()
        .map(|(tp, l)| (tp.clone(), l.clone()))
        .collect();
    let mut taken = Vec::new();
    for _ in 0..TAKE_OFFLINE_TRIES_MAX {
        pending.retain(|(tp, log)| {
            let Ok(mut l) = log.try_borrow_mut() else {
                return true; // in use right now: next try
            };
            if !failures.holds_offline(l.dir()) {
                return false;
            }
            if !l.is_offline() {
                l.take_offline("its log dir failed");
            }
            taken.push(tp.clone());
            false
        });
        if pending.is_empty() {
            break;
        }
        compio::time::sleep(Duration::from_millis(TAKE_OFFLINE_RETRY_MS)).await;
    }
    for (tp, _) in &pending {
        tracing::error!(topic = %tp.topic, partition = tp.partition, "could not take the partition offline: its log stayed in use");
    }
    // A follower stops fetching (its appends would fail); a leader stops leading.
    for tp in &taken {
        shard.replicas.borrow_mut().remove(tp);
        if let Some(info) = crate::ops::partition_info(shard, tp) {
            info.appended.notify(usize::MAX); // acks=all waiters answer NOT_LEADER_OR_FOLLOWER
        }
    }
    report_offline_replicas(shard, taken).await;
}

/// In a cluster: asks the controller to take this broker out of the ISR of `partitions`
/// and elect other leaders where it led (Kafka's controller does the same when a broker
/// reports an offline log dir).
pub(crate) async fn report_offline_replicas(shard: &Rc<Shard>, partitions: Vec<TopicPartition>) {
    let Some(handle) = shard.broker.cluster.clone() else {
        return;
    };
    let meta = shard.metadata();
    let ids: Vec<(uuid::Uuid, i32)> = partitions
        .iter()
        .filter_map(|tp| Some((meta.topic(&tp.topic)?.id.0, tp.partition)))
        .collect();
    if ids.is_empty() {
        return;
    }
    let count = ids.len();
    let req = ControllerRequest::OfflineReplicas {
        broker_id: shard.broker.node_id,
        broker_epoch: handle.broker.borrow().broker_epoch,
        partitions: ids,
    };
    match handle.call(req).await {
        Ok(ControllerReply::Done) => tracing::info!(
            shard = shard.id,
            partitions = count,
            "the controller moved the offline replicas' leaderships and ISRs"
        ),
        Ok(other) => tracing::error!("offline replicas: unexpected answer {other:?}"),
        Err(e) => tracing::error!(
            "reporting {count} offline replicas to the controller: {} (they stay offline; \
             the controller fences this broker only if it stops heartbeating)",
            e.message
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_partition_takes_its_whole_log_dir_offline_and_only_that_one() {
        let dirs = [PathBuf::from("/d/a"), PathBuf::from("/d/b")];
        let failures = LogDirFailures::new(&dirs);
        assert!(!failures.fail(Path::new("/elsewhere/t-0"), "EIO"));
        assert!(failures.fail(Path::new("/d/a/t-0"), "EIO"));
        assert!(
            !failures.fail(Path::new("/d/a/t-1"), "EIO"),
            "already offline"
        );
        assert!(failures.holds_offline(Path::new("/d/a/u-3")));
        assert!(!failures.holds_offline(Path::new("/d/b/t-1")));
        assert!(failures.is_offline(Path::new("/d/a")));
        assert_eq!(failures.online_dirs(), vec![PathBuf::from("/d/b")]);
        assert_eq!(failures.failed.load(Ordering::Acquire), 1);
    }
}
