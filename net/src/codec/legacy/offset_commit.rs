//! OffsetCommit v0–v1 requests (Kafka 3.9's schema):
//! - v0: `group_id string, topics [name string, partitions [partition_index i32,
//!   committed_offset i64, committed_metadata nullable string]]` — the topics are v2's
//!   layout, decoded by `kafka-protocol` at v2.
//! - v1: `group_id string, generation_id i32, member_id string, topics [name string,
//!   partitions [partition_index i32, committed_offset i64, commit_timestamp i64,
//!   committed_metadata nullable string]]`.
//!
//! v0 has no generation or member: it commits as a standalone (admin) commit, generation -1.
//! v1's `commit_timestamp` is not kept: the broker stamps every commit with its own clock, as
//! Kafka's group coordinator does since 3.7. (Kafka stored v0 commits in ZooKeeper; without
//! ZooKeeper every version shares one store.)
//!
//! Answers of v0–v1 are v2's layout (`mod.rs`).

use bytes::Bytes;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::Reader;

pub fn decode(version: i16, body: &mut Bytes) -> Result<OffsetCommitRequest, String> {
    let mut r = Reader(body);
    let mut req = OffsetCommitRequest::default();
    req.group_id = GroupId(r.string("group_id")?);
    if version == 0 {
        req.generation_id_or_member_epoch = -1;
        req.member_id = StrBytes::default();
        req.topics = r.array("topics", |r| r.generated::<OffsetCommitRequestTopic>(2))?;
        return Ok(req);
    }
    req.generation_id_or_member_epoch = r.i32("generation_id")?;
    req.member_id = r.string("member_id")?;
    req.topics = r.array("topics", |r| {
        let mut t = OffsetCommitRequestTopic::default();
        t.name = TopicName(r.string("topic name")?);
        t.partitions = r.array("partitions", |r| {
            let mut p = OffsetCommitRequestPartition::default();
            p.partition_index = r.i32("partition_index")?;
            p.committed_offset = r.i64("committed_offset")?;
            let _commit_timestamp = r.i64("commit_timestamp")?;
            p.committed_metadata = r.nullable_string("committed_metadata")?;
            Ok(p)
        })?;
        Ok(t)
    })?;
    Ok(req)
}
