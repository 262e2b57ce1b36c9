//! In a cluster, a replica whose disk is full leaves its ISR and its leadership at once
//! (issue 11: "its leaderships move to in-sync replicas elsewhere, producers carry on
//! there"). Kafka treats ENOSPC as a log dir failure and the dir stays offline until
//! restart; Sluice keeps the log (readable, and resuming by itself once space is back, see
//! `engine::log::disk_full`) and only asks the controller to take this broker out of the
//! partition's ISR and elect another leader (`ControllerRequest::OfflineReplicas`). The
//! broker stays a replica: its fetcher skips the partition while the disk is full, then
//! truncates by OffsetForLeaderEpoch, catches up, and the leader adds it back to the ISR.
//!
//! Left alone: a partition whose ISR is this broker only (the move would leave it without
//! a leader; it keeps refusing appends with KAFKA_STORAGE_ERROR, stays readable, and
//! resumes with the disk), and the single node (nothing to move to).

use std::rc::Rc;

use futures_util::future::select;

use crate::shard::{Shard, TopicPartition};

/// One per shard in a cluster: reports each log that began refusing appends for a full
/// disk. Ends when the shard stops.
pub async fn disk_full_loop(shard: Rc<Shard>) {
    while !shard.stopping.get() {
        let newly = shard.appender.listen_newly_full();
        let stop = shard.stop.listen();
        let logs = shard.appender.take_newly_full();
        if logs.is_empty() {
            select(newly, stop).await;
            continue;
        }
        let movable = movable_replicas(&shard, &logs);
        if movable.is_empty() {
            continue;
        }
        for tp in &movable {
            tracing::warn!(topic = %tp.topic, partition = tp.partition, "the disk is full: asking the controller to move this replica out of the ISR and elect another leader; it rejoins as a follower once space is freed");
        }
        crate::log_dir_failure::report_offline_replicas(&shard, movable).await;
    }
}

/// The partitions of `logs` this broker holds in an ISR that has other members.
fn movable_replicas(shard: &Shard, logs: &[crate::shard::LogRef]) -> Vec<TopicPartition> {
    let me = shard.broker.node_id;
    shard
        .logs
        .borrow()
        .iter()
        .filter(|(_, l)| logs.iter().any(|full| Rc::ptr_eq(full, l)))
        .filter(|(tp, _)| {
            let info = crate::ops::partition_info(shard, tp);
            let Some(r) = info.as_ref().and_then(|p| p.replication.as_ref()) else {
                return false;
            };
            r.isr.contains(&me) && r.isr.iter().any(|b| *b != me)
        })
        .map(|(tp, _)| tp.clone())
        .collect()
}
