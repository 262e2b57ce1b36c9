//! OffsetCommit v2–v9: stores a group's committed offsets in `__consumer_offsets`.

use std::rc::Rc;

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
    let now = now_ms();
    let mut offsets = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
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
    let mut errors = errors.into_iter();
    let mut resp = OffsetCommitResponse::default();
    resp.topics = req
        .topics
        .into_iter()
        .map(|t| {
            let mut out = OffsetCommitResponseTopic::default();
            out.name = t.name;
            out.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut r = OffsetCommitResponsePartition::default();
                    r.partition_index = p.partition_index;
                    r.error_code = errors.next().unwrap_or(0);
                    r
                })
                .collect();
            out
        })
        .collect();
    resp
}
