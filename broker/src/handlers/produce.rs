//! Produce v3–v11 (acks 0, 1, -1). Every partition's batches are validated and appended on
//! the owning shard; with acks=0 nothing is answered, and a failure closes the connection as
//! Kafka does so the client notices.

use std::rc::Rc;

use futures_util::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use crate::connection::Reply;
use crate::ops::{produce_routed, ProducePart, NONE};
use crate::shard::{Shard, TopicPartition};

/// acks=0 (no answer), 1 (leader), -1 (all in-sync replicas).
const ACKS_VALID: [i16; 3] = [0, 1, -1];

pub async fn handle(shard: &Rc<Shard>, version: i16, req: ProduceRequest) -> Reply {
    let acks = req.acks;
    let meta = shard.metadata();
    let mut resp = ProduceResponse::default();
    for topic in req.topic_data {
        let info = meta.topic(&topic.name.0).cloned();
        let parts = join_all(topic.partition_data.into_iter().map(|pd| {
            let info = info.clone();
            let name = topic.name.0.clone();
            async move {
                let part = info.as_ref().and_then(|t| {
                    usize::try_from(pd.index)
                        .ok()
                        .and_then(|i| t.partitions.get(i))
                });
                let result = match (ACKS_VALID.contains(&acks), part, pd.records) {
                    (true, Some(part), Some(records)) => {
                        let tp = TopicPartition {
                            topic: info.as_ref().unwrap().name.clone(),
                            partition: pd.index,
                        };
                        produce_routed(shard, part, tp, records).await
                    }
                    (true, Some(_), None) => {
                        failed(ResponseError::InvalidRecord, "produce without records")
                    }
                    (true, None, _) => failed(
                        ResponseError::UnknownTopicOrPartition,
                        &format!("This server does not host {name}-{}.", pd.index),
                    ),
                    _ => failed(
                        ResponseError::InvalidRequiredAcks,
                        "acks must be 0, 1 or -1",
                    ),
                };
                (pd.index, result)
            }
        }))
        .await;
        let mut t = TopicProduceResponse::default();
        t.name = topic.name;
        t.topic_id = topic.topic_id;
        t.partition_responses = parts
            .into_iter()
            .map(|(index, p)| partition_response(version, index, p))
            .collect();
        resp.responses.push(t);
    }
    if acks == 0 {
        let failure = resp
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter().map(move |p| (t, p)))
            .find(|(_, p)| p.error_code != NONE);
        return match failure {
            Some((t, p)) => Reply::Close(format!(
                "acks=0 produce to {}-{} failed with error {}",
                t.name.0, p.index, p.error_code
            )),
            None => Reply::Nothing,
        };
    }
    Reply::Send(Box::new(ResponseKind::Produce(resp)))
}

fn failed(error: ResponseError, message: &str) -> ProducePart {
    ProducePart {
        error: error.code(),
        message: Some(message.to_string()),
        base_offset: -1,
        log_start_offset: -1,
    }
}

/// First versions with `log_start_offset` and with `error_message` in the answer.
const LOG_START_OFFSET_VERSION_MIN: i16 = 5;
const ERROR_MESSAGE_VERSION_MIN: i16 = 8;

fn partition_response(version: i16, index: i32, p: ProducePart) -> PartitionProduceResponse {
    let mut r = PartitionProduceResponse::default();
    r.index = index;
    r.error_code = p.error;
    r.base_offset = p.base_offset;
    r.log_append_time_ms = -1;
    if version >= LOG_START_OFFSET_VERSION_MIN {
        r.log_start_offset = p.log_start_offset;
    }
    if version >= ERROR_MESSAGE_VERSION_MIN {
        r.error_message = p.message.map(StrBytes::from_string);
    }
    r
}
