//! ListOffsets v1–v10: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4,
//! the log start offset: there is no tiered storage), latest tiered (-5, v9+: no offset, as
//! Kafka answers without tiered storage), or the first offset whose timestamp is at least the
//! one asked for. v10's `timeout_ms` bounds a wait for tiered storage: nothing waits here.

use std::rc::Rc;

use futures_util::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::ops::{list_offsets_routed, ListOffsetsPart};
use crate::shard::{Shard, TopicPartition};

pub async fn handle(
    shard: &Rc<Shard>,
    version: i16,
    req: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let meta = shard.metadata();
    let mut resp = ListOffsetsResponse::default();
    for topic in req.topics {
        let info = meta.topic(&topic.name.0).cloned();
        let parts = join_all(topic.partitions.iter().map(|p| {
            let info = info.clone();
            async move {
                let part = info
                    .as_ref()
                    .and_then(|t| t.partitions.get(usize::try_from(p.partition_index).ok()?));
                let found = match part {
                    Some(part) => {
                        let tp = TopicPartition {
                            topic: info.as_ref().unwrap().name.clone(),
                            partition: p.partition_index,
                        };
                        list_offsets_routed(shard, part, tp, p.timestamp).await
                    }
                    None => ListOffsetsPart {
                        error: ResponseError::UnknownTopicOrPartition.code(),
                        timestamp: -1,
                        offset: -1,
                    },
                };
                partition_response(version, p.partition_index, found)
            }
        }))
        .await;
        let mut t = ListOffsetsTopicResponse::default();
        t.name = topic.name;
        t.partitions = parts;
        resp.topics.push(t);
    }
    resp
}

/// The first version with `leader_epoch` in the answer.
const LEADER_EPOCH_VERSION_MIN: i16 = 4;

fn partition_response(
    version: i16,
    index: i32,
    found: ListOffsetsPart,
) -> ListOffsetsPartitionResponse {
    let mut r = ListOffsetsPartitionResponse::default();
    r.partition_index = index;
    r.error_code = found.error;
    r.timestamp = found.timestamp;
    r.offset = found.offset;
    if version >= LEADER_EPOCH_VERSION_MIN && found.offset >= 0 {
        r.leader_epoch = 0;
    }
    r
}
