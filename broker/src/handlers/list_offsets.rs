//! ListOffsets v0–v10. v0 answers Kafka's list of segment boundary offsets (`legacy_partition`);
//! v1+ one offset: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4,
//! the log start offset: there is no tiered storage), latest tiered (-5, v9+: no offset, as
//! Kafka answers without tiered storage), or the first offset whose timestamp is at least the
//! one asked for. v10's `timeout_ms` bounds a wait for tiered storage: nothing waits here.

use std::rc::Rc;
use std::sync::Arc;

use futures_util::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_request::ListOffsetsPartition;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use sluice_net::codec::{max_num_offsets, set_old_style_offsets};

use crate::metadata::PartitionInfo;
use crate::ops::{legacy_offsets_routed, list_offsets_routed, ListOffsetsPart};
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
                        if version < SINGLE_OFFSET_VERSION_MIN {
                            return legacy_partition(shard, part, tp, p).await;
                        }
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

/// ListOffsets v0 (Kafka's `legacyFetchOffsetsBefore`): up to `max_num_offsets` segment
/// boundary offsets, newest first.
async fn legacy_partition(
    shard: &Rc<Shard>,
    part: &Arc<PartitionInfo>,
    tp: TopicPartition,
    p: &ListOffsetsPartition,
) -> ListOffsetsPartitionResponse {
    let mut r = ListOffsetsPartitionResponse::default();
    r.partition_index = p.partition_index;
    let max = max_num_offsets(p).unwrap_or(1);
    let (error, offsets) = match usize::try_from(max) {
        Ok(max) => legacy_offsets_routed(shard, part, tp, p.timestamp, max).await,
        Err(_) => (ResponseError::InvalidRequest.code(), Vec::new()),
    };
    r.error_code = error;
    set_old_style_offsets(&mut r, &offsets);
    r
}

/// The first version answering one offset per partition (v0 answers a list).
const SINGLE_OFFSET_VERSION_MIN: i16 = 1;
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
