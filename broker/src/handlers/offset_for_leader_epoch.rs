//! OffsetForLeaderEpoch v2–v4 (API 23; Kafka 4.1's range): for each partition, the end
//! offset of the asked leader epoch in the leader's log, from its `leader-epoch-checkpoint`
//! cache on the owning shard (Kafka's `Partition.lastOffsetForLeaderEpoch`). Followers ask
//! it to find where their log diverges (KIP-101/279); consumers after a leader change to
//! check their position (KIP-320, librdkafka does).
//!
//! Per partition, as Kafka answers:
//! - UNKNOWN_TOPIC_OR_PARTITION: not in the cluster metadata;
//! - NOT_LEADER_OR_FOLLOWER: in the metadata but no replica here (or its owning shard has
//!   no log for it, or stopped);
//! - FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH: `current_leader_epoch` (when not -1) is
//!   older / newer than the partition's leader epoch (the committed metadata's in a
//!   cluster, the log's own on a single node);
//! - NOT_LEADER_OR_FOLLOWER: a replica here that does not lead (Kafka answers only from
//!   the leader, `fetchOnlyFromLeader = true`), checked after the epochs as Kafka does;
//! - KAFKA_STORAGE_ERROR: the log is offline;
//! - otherwise NONE with `LeaderEpochFileCache::end_offset_for`'s epoch and offset (-1 and
//!   -1 where Kafka's is undefined).
//!
//! A single node leads every partition it hosts (`PartitionInfo::replication` is `None`).

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use sluice_engine::{LeaderEpoch, PartitionLog, UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET};

use crate::ops::{admin_routed, PartitionAdmin};
use crate::shard::{Shard, TopicPartition};

/// One partition's answer: (error code, leader epoch, end offset).
pub type EpochEndAnswer = (i16, i32, i64);

/// What the metadata says of a partition this broker has a replica of (Kafka's
/// `Partition.leaderEpoch` and `isLeader`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderView {
    /// The committed leader epoch; `None` on a single node (the log's own epoch).
    pub leader_epoch: Option<i32>,
    pub is_leader: bool,
}

pub async fn handle(
    shard: &Rc<Shard>,
    _version: i16,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let meta = shard.metadata();
    let mut resp = OffsetForLeaderEpochResponse::default();
    for topic in req.topics {
        let info = meta.topic(&topic.topic.0).cloned();
        let mut t = OffsetForLeaderTopicResult::default();
        t.topic = topic.topic;
        for p in topic.partitions {
            let part = info.as_ref().and_then(|i| {
                i.partitions
                    .get(usize::try_from(p.partition).ok()?)
                    .cloned()
            });
            let node = shard.broker.node_id;
            let (error, leader_epoch, end_offset) = match (&info, part) {
                (Some(_), Some(part)) if !part.has_replica(node) => {
                    failed(ResponseError::NotLeaderOrFollower)
                }
                (Some(info), Some(part)) => {
                    let view = LeaderView {
                        leader_epoch: part.replication.as_ref().map(|r| r.leader_epoch),
                        is_leader: part.is_led_by(node),
                    };
                    let tp = TopicPartition {
                        topic: info.name.clone(),
                        partition: p.partition,
                    };
                    let (current, requested) = (p.current_leader_epoch, p.leader_epoch);
                    admin_routed(shard, part.shard, tp, |reply| {
                        PartitionAdmin::OffsetForLeaderEpoch {
                            view,
                            current_leader_epoch: current,
                            leader_epoch: requested,
                            reply,
                        }
                    })
                    .await
                    .unwrap_or_else(|_| failed(ResponseError::NotLeaderOrFollower))
                }
                _ => failed(ResponseError::UnknownTopicOrPartition),
            };
            let mut r = EpochEndOffset::default();
            r.partition = p.partition;
            r.error_code = error;
            r.leader_epoch = leader_epoch;
            r.end_offset = end_offset;
            t.partitions.push(r);
        }
        resp.topics.push(t);
    }
    resp
}

fn failed(error: ResponseError) -> EpochEndAnswer {
    (error.code(), UNDEFINED_EPOCH.0, UNDEFINED_EPOCH_OFFSET)
}

/// On the owning shard: the answer from `log` (`None`: not hosted here).
pub fn answer_local(
    log: Option<&PartitionLog>,
    view: LeaderView,
    current_leader_epoch: i32,
    leader_epoch: i32,
) -> EpochEndAnswer {
    let Some(log) = log else {
        return failed(ResponseError::NotLeaderOrFollower);
    };
    // Kafka's checkCurrentLeaderEpoch; -1 (NO_PARTITION_LEADER_EPOCH) skips it.
    let local = view.leader_epoch.unwrap_or(log.leader_epoch().0);
    if current_leader_epoch != UNDEFINED_EPOCH.0 {
        if local > current_leader_epoch {
            return failed(ResponseError::FencedLeaderEpoch);
        }
        if local < current_leader_epoch {
            return failed(ResponseError::UnknownLeaderEpoch);
        }
    }
    if !view.is_leader {
        return failed(ResponseError::NotLeaderOrFollower);
    }
    if log.is_offline() {
        return failed(ResponseError::KafkaStorageError);
    }
    match log.end_offset_for_epoch(LeaderEpoch(leader_epoch)) {
        Some((epoch, offset)) => (0, epoch.0, offset),
        None => (0, UNDEFINED_EPOCH.0, UNDEFINED_EPOCH_OFFSET),
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use sluice_engine::{FileCache, LogConfig, TopicId};

    use super::*;

    /// Kafka's checks of `current_leader_epoch` against the partition's epoch (3 here),
    /// and the end offsets of an empty log led in epoch 3 (epoch 0 had no batch, so 3
    /// replaced it at offset 0).
    #[test]
    fn the_current_epoch_is_checked_as_kafka_does() {
        let dir = tempfile::tempdir().unwrap();
        let files = Rc::new(FileCache::new(2));
        let id = TopicId(uuid::Uuid::from_u128(1));
        let mut log =
            PartitionLog::create(dir.path(), "t", 0, id, LogConfig::default(), files).unwrap();
        log.become_leader(LeaderEpoch(0)).unwrap();
        log.become_leader(LeaderEpoch(3)).unwrap();
        let single_node = LeaderView {
            leader_epoch: None,
            is_leader: true,
        };
        let check = |current: i32, asked: i32, expect: (ResponseError, i32, i64)| {
            let (code, epoch, offset) = answer_local(Some(&log), single_node, current, asked);
            let code = ResponseError::try_from_code(code);
            let want = match expect.0 {
                ResponseError::Unknown(0) => None,
                e => Some(e),
            };
            assert_eq!(
                (code, epoch, offset),
                (want, expect.1, expect.2),
                "{current} {asked}"
            );
        };
        let ok = ResponseError::Unknown(0);
        check(2, 0, (ResponseError::FencedLeaderEpoch, -1, -1));
        check(4, 0, (ResponseError::UnknownLeaderEpoch, -1, -1));
        check(3, 3, (ok, 3, 0));
        check(-1, 3, (ok, 3, 0));
        check(3, 2, (ok, 2, 0));
        check(3, 4, (ok, -1, -1));
        let (code, ..) = answer_local(None, single_node, 3, 3);
        assert_eq!(code, ResponseError::NotLeaderOrFollower.code());
        // In a cluster the committed epoch is checked, then leadership.
        let follower = LeaderView {
            leader_epoch: Some(5),
            is_leader: false,
        };
        let code = |view, current| answer_local(Some(&log), view, current, 3).0;
        assert_eq!(code(follower, 4), ResponseError::FencedLeaderEpoch.code());
        assert_eq!(code(follower, 6), ResponseError::UnknownLeaderEpoch.code());
        assert_eq!(code(follower, 5), ResponseError::NotLeaderOrFollower.code());
        assert_eq!(
            code(follower, -1),
            ResponseError::NotLeaderOrFollower.code()
        );
        let leader = LeaderView {
            is_leader: true,
            ..follower
        };
        assert_eq!(answer_local(Some(&log), leader, 5, 3), (0, 3, 0));
    }
}
