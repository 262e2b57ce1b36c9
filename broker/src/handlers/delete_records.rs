//! DeleteRecords v0–v2: moves each partition's log start offset (-1 = the high watermark)
//! on its owning shard; whole segments below it are deleted. OFFSET_OUT_OF_RANGE beyond the
//! high watermark. Internal topics (`__consumer_offsets`) answer INVALID_TOPIC_EXCEPTION, as
//! Kafka's `ReplicaManager` does, before their partitions are even looked up.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::ops::{admin_routed, PartitionAdmin};
use crate::shard::{Shard, TopicPartition};

pub async fn handle(
    shard: &Rc<Shard>,
    _version: i16,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut resp = DeleteRecordsResponse::default();
    let meta = shard.metadata();
    for topic in req.topics {
        let mut t = DeleteRecordsTopicResult::default();
        t.name = topic.name.clone();
        let info = meta.topic(&topic.name.0).cloned();
        for p in topic.partitions {
            let mut r = DeleteRecordsPartitionResult::default();
            r.partition_index = p.partition_index;
            r.low_watermark = -1;
            let part = info.as_ref().and_then(|i| {
                i.partitions
                    .get(usize::try_from(p.partition_index).ok()?)
                    .cloned()
            });
            if topic.name.0.as_str() == crate::group::OFFSETS_TOPIC {
                r.error_code = ResponseError::InvalidTopicException.code();
                t.partitions.push(r);
                continue;
            }
            let Some(part) = part else {
                r.error_code = ResponseError::UnknownTopicOrPartition.code();
                t.partitions.push(r);
                continue;
            };
            let tp = TopicPartition {
                topic: info.as_ref().expect("found").name.clone(),
                partition: p.partition_index,
            };
            let offset = p.offset;
            match admin_routed(shard, part.shard, tp, |reply| {
                PartitionAdmin::DeleteRecords { offset, reply }
            })
            .await
            {
                Ok(d) => {
                    r.error_code = d.error;
                    r.low_watermark = d.low_watermark;
                }
                Err(_) => r.error_code = ResponseError::NotLeaderOrFollower.code(),
            }
            t.partitions.push(r);
        }
        resp.topics.push(t);
    }
    resp
}
