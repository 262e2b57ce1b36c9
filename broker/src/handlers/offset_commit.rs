//! OffsetCommit v0–v9 (v0: a standalone commit, generation -1): stores a group's committed
//! offsets in `__consumer_offsets`.
//!
//! As Kafka's `KafkaApis.handleOffsetCommitRequest`: partitions of topics that do not exist,
//! and partitions past a topic's count, answer UNKNOWN_TOPIC_OR_PARTITION and never reach the
//! coordinator; when none is left, the coordinator is not asked at all.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use crate::group::state::now_ms;
use crate::group::store::StoredOffset;
use crate::group::{route, CommitArgs, GroupAnswer, GroupOp};
use crate::shard::Shard;

/// The first version with committed leader epochs.
const LEADER_EPOCH_VERSION_MIN: i16 = 6;

pub async fn handle(
    shard: &Rc<Shard>,
    version: i16,
    req: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let metadata = shard.metadata();
    let exists = |topic: &str, partition: i32| {
        metadata
            .topic(topic)
            .is_some_and(|t| partition >= 0 && (partition as usize) < t.partitions.len())
    };
    let offsets = stored_offsets(version, &req, exists);
    let errors = if offsets.is_empty() {
        Vec::new()
    } else {
        let group = req.group_id.0.to_string();
        let args = CommitArgs {
            group: group.clone(),
            generation: req.generation_id_or_member_epoch,
            member_id: req.member_id.to_string(),
            instance_id: req.group_instance_id.map(|i| i.to_string()),
            offsets,
        };
        let GroupAnswer::Commit(errors) = route(shard, &group, GroupOp::Commit(args)).await else {
            unreachable!("a commit answered with another operation's answer");
        };
        errors
    };
    // The coordinator's answers come in the order of the partitions it was given.
    let mut errors = errors.into_iter();
    let mut resp = OffsetCommitResponse::default();
    resp.topics = req
        .topics
        .into_iter()
        .map(|t| {
            let mut out = OffsetCommitResponseTopic::default();
            out.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut r = OffsetCommitResponsePartition::default();
                    r.partition_index = p.partition_index;
                    r.error_code = if exists(&t.name, p.partition_index) {
                        errors.next().unwrap_or(0)
                    } else {
                        ResponseError::UnknownTopicOrPartition.code()
                    };
                    r
                })
                .collect();
            out.name = t.name;
            out
        })
        .collect();
    resp
}

/// The offsets to store: those of the request's partitions that exist.
fn stored_offsets(
    version: i16,
    req: &OffsetCommitRequest,
    exists: impl Fn(&str, i32) -> bool,
) -> Vec<(String, i32, StoredOffset)> {
    let now = now_ms();
    let mut offsets = Vec::new();
    for t in &req.topics {
        for p in t
            .partitions
            .iter()
            .filter(|p| exists(&t.name, p.partition_index))
        {
            offsets.push((
                t.name.0.to_string(),
                p.partition_index,
                StoredOffset {
                    offset: p.committed_offset,
                    leader_epoch: if version >= LEADER_EPOCH_VERSION_MIN {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    metadata: p
                        .committed_metadata
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                    commit_timestamp: now,
                },
            ));
        }
    }
    offsets
}
