//! ListOffsets v0–v10. v0 answers Kafka's list of segment boundary offsets (`legacy_partition`);
//! v1+ one offset: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4,
//! the log start offset: there is no tiered storage), latest tiered (-5, v9+: no offset, as
//! Kafka answers without tiered storage), or the first offset whose timestamp is at least the
//! one asked for. v10's `timeout_ms` bounds a wait for tiered storage: nothing waits here.
//! In a cluster only the leader answers (Kafka's `localLogWithEpochOrThrow`), and a new
//! leader whose high watermark is below the start of its epoch answers a client's latest
//! with OFFSET_NOT_AVAILABLE (`ops::list_offsets_local`).

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
use crate::ops::{
    legacy_offsets_routed, list_offsets_routed, offsets_error, ListOffsetsAsk, ListOffsetsPart,
};
use crate::replica::epoch_error;
use crate::shard::{Shard, TopicPartition};

pub async fn handle(
    shard: &Rc<Shard>,
    version: i16,
    req: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let meta = shard.metadata();
    let replica_id = req.replica_id.0;
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
                        if let Some(error) = leader_check(shard, part, replica_id, p) {
                            return partition_response(version, p.partition_index, error);
                        }
                        let tp = TopicPartition {
                            topic: info.as_ref().unwrap().name.clone(),
                            partition: p.partition_index,
                        };
                        if version < SINGLE_OFFSET_VERSION_MIN {
                            return legacy_partition(shard, part, tp, p).await;
                        }
                        let ask = ListOffsetsAsk {
                            timestamp: p.timestamp,
                            from_client: replica_id == CONSUMER_REPLICA_ID,
                        };
                        list_offsets_routed(shard, part, tp, ask).await
                    }
                    None => offsets_error(ResponseError::UnknownTopicOrPartition),
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

/// A consumer's ListOffsets (Kafka's `CONSUMER_REPLICA_ID`).
const CONSUMER_REPLICA_ID: i32 = -1;
/// A debugging tool's (Kafka's `DEBUGGING_REPLICA_ID`): any replica answers it.
const DEBUGGING_REPLICA_ID: i32 = -2;

/// Kafka's `localLogWithEpochOrThrow` in a cluster: the asker's `current_leader_epoch` (if
/// any) must be the partition's (FENCED_LEADER_EPOCH if older, UNKNOWN_LEADER_EPOCH if
/// newer), and only the leader answers unless the asker is a debugging tool.
fn leader_check(
    shard: &Shard,
    part: &PartitionInfo,
    replica_id: i32,
    p: &ListOffsetsPartition,
) -> Option<ListOffsetsPart> {
    let r = part.replication.as_ref()?;
    let error = epoch_error(p.current_leader_epoch, r.leader_epoch).or_else(|| {
        let leads = r.leader == shard.broker.node_id;
        (!leads && replica_id != DEBUGGING_REPLICA_ID).then_some(ResponseError::NotLeaderOrFollower)
    })?;
    Some(offsets_error(error))
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
        r.leader_epoch = found.leader_epoch;
    }
    r
}
