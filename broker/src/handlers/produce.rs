//! Produce v3–v13 (acks 0, 1, -1; v13 names topics by id, an unknown id answers
//! UNKNOWN_TOPIC_ID). Every partition's batches are validated and appended on
//! the owning shard; with acks=0 nothing is answered, and a failure closes the connection as
//! Kafka does so the client notices.
//!
//! KIP-951 (v10+): a partition answered NOT_LEADER_OR_FOLLOWER names the leader this
//! broker's metadata knows (`current_leader`, with `node_endpoints` saying where it
//! listens), so the client retries there at once instead of refreshing Metadata after a
//! backoff. Only a leader other than this broker is named (a stale answer naming ourselves
//! would send the client straight back).

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;
use futures_util::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use kafka_protocol::messages::BrokerId;
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use sluice_engine::batch::{BatchHeader, BATCH_LOG_OVERHEAD_BYTES};
use sluice_engine::compression::CompressionType;

use crate::connection::Reply;
use crate::ops::{produce_submit, ProducePart, ProduceTicket, NONE};
use crate::shard::{Shard, TopicPartition};

/// acks=0 (no answer), 1 (leader), -1 (all in-sync replicas).
const ACKS_VALID: [i16; 3] = [0, 1, -1];
/// The first version that names topics by id (KIP-516).
const TOPIC_ID_VERSION_MIN: i16 = 13;
/// The first version with KIP-951's `current_leader` and `node_endpoints`.
const CURRENT_LEADER_VERSION_MIN: i16 = 10;

/// The part of a produce that waits for the writes; the connection awaits it in order.
pub type ProduceCompletion = Pin<Box<dyn Future<Output = Reply>>>;

/// A topic's partitions, queued, in request order.
type QueuedTopic = (TopicName, uuid::Uuid, Vec<(i32, ProduceTicket)>);

/// Queues every partition's records with its owner, in request order (waiting only for
/// queue room), and returns the completion that waits for the writes and builds the
/// answer. Pipelined produces on a connection are thereby appended in the order sent.
pub async fn submit(shard: &Rc<Shard>, version: i16, req: ProduceRequest) -> ProduceCompletion {
    let acks = req.acks;
    // acks=all waits for the in-sync replicas at most the request's timeout_ms.
    let commit = (acks == -1).then(|| {
        std::time::Instant::now() + std::time::Duration::from_millis(req.timeout_ms.max(0) as u64)
    });
    let meta = shard.metadata();
    let mut queued: Vec<QueuedTopic> = Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        let by_id = version >= TOPIC_ID_VERSION_MIN;
        let info = match by_id {
            true => meta.topic_by_id(topic.topic_id).cloned(),
            false => meta.topic(&topic.name.0).cloned(),
        };
        let mut parts = Vec::with_capacity(topic.partition_data.len());
        for pd in topic.partition_data {
            let part = info
                .as_ref()
                .and_then(|t| t.partitions.get(usize::try_from(pd.index).ok()?));
            let records = pd.records.map(|r| check_records(version, r));
            let ticket = match (ACKS_VALID.contains(&acks), part, records) {
                // Kafka's ReplicaManager: clients never append to internal topics.
                (true, Some(_), _) if topic.name.0.as_str() == crate::group::OFFSETS_TOPIC => {
                    ProduceTicket::Done(failed(
                        ResponseError::InvalidTopicException,
                        &format!("Cannot append to internal topic {}", topic.name.0),
                    ))
                }
                (true, Some(part), Some(_)) if !part.is_led_by(shard.broker.node_id) => {
                    ProduceTicket::Done(failed(
                        ResponseError::NotLeaderOrFollower,
                        &format!(
                            "Broker {} is not the leader of {}-{}.",
                            shard.broker.node_id, topic.name.0, pd.index
                        ),
                    ))
                }
                (true, Some(_), Some(Err(refused))) => ProduceTicket::Done(refused),
                (true, Some(part), Some(Ok(records))) => {
                    let tp = TopicPartition {
                        topic: info.as_ref().unwrap().name.clone(),
                        partition: pd.index,
                    };
                    produce_submit(shard, part, tp, (records, commit)).await
                }
                (true, Some(_), None) => ProduceTicket::Done(failed(
                    ResponseError::InvalidRecord,
                    "produce without records",
                )),
                (true, None, _) if by_id && info.is_none() => ProduceTicket::Done(failed(
                    ResponseError::UnknownTopicId,
                    &format!("This server does not host topic id {}.", topic.topic_id),
                )),
                (true, None, _) => ProduceTicket::Done(failed(
                    ResponseError::UnknownTopicOrPartition,
                    &format!(
                        "This server does not host {}-{}.",
                        info.as_ref().map_or(topic.name.0.as_str(), |t| &*t.name),
                        pd.index
                    ),
                )),
                _ => ProduceTicket::Done(failed(
                    ResponseError::InvalidRequiredAcks,
                    "acks must be 0, 1 or -1",
                )),
            };
            parts.push((pd.index, ticket));
        }
        queued.push((topic.name, topic.topic_id, parts));
    }
    let shard = shard.clone();
    Box::pin(async move { complete(&shard, version, acks, queued).await })
}

async fn complete(shard: &Shard, version: i16, acks: i16, queued: Vec<QueuedTopic>) -> Reply {
    let mut resp = ProduceResponse::default();
    for (name, topic_id, parts) in queued {
        let answers = join_all(
            parts
                .into_iter()
                .map(|(index, ticket)| async move { (index, ticket.wait(shard).await) }),
        )
        .await;
        let mut t = TopicProduceResponse::default();
        t.name = name;
        t.topic_id = topic_id;
        t.partition_responses = answers
            .into_iter()
            .map(|(index, p)| partition_response(version, index, p))
            .collect();
        resp.responses.push(t);
    }
    if version >= CURRENT_LEADER_VERSION_MIN {
        name_current_leaders(shard, &mut resp);
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

/// KIP-951: every NOT_LEADER_OR_FOLLOWER partition gets the leader this broker knows,
/// and the response the endpoints of those leaders.
fn name_current_leaders(shard: &Shard, resp: &mut ProduceResponse) {
    let meta = shard.metadata();
    let me = shard.broker.node_id;
    let mut named = std::collections::BTreeSet::new();
    for t in &mut resp.responses {
        let topic = match t.name.0.is_empty() {
            true => meta.topic_by_id(t.topic_id),
            false => meta.topic(&t.name.0),
        };
        let Some(topic) = topic else { continue };
        for p in &mut t.partition_responses {
            if p.error_code != ResponseError::NotLeaderOrFollower.code() {
                continue;
            }
            let replication = usize::try_from(p.index)
                .ok()
                .and_then(|i| topic.partitions.get(i))
                .and_then(|info| info.replication.as_ref());
            let Some(r) = replication.filter(|r| r.leader >= 0 && r.leader != me) else {
                continue;
            };
            p.current_leader = LeaderIdAndEpoch::default()
                .with_leader_id(BrokerId(r.leader))
                .with_leader_epoch(r.leader_epoch);
            named.insert(r.leader);
        }
    }
    resp.node_endpoints = meta
        .brokers
        .iter()
        .filter(|b| named.contains(&b.node_id))
        .map(|b| {
            NodeEndpoint::default()
                .with_node_id(BrokerId(b.node_id))
                .with_host(StrBytes::from_string(b.host.clone()))
                .with_port(i32::from(b.port))
                .with_rack(b.rack.clone().map(StrBytes::from_string))
        })
        .collect();
}

fn failed(error: ResponseError, message: &str) -> ProducePart {
    ProducePart {
        error: error.code(),
        message: Some(message.to_string()),
        base_offset: -1,
        log_start_offset: -1,
        log_append_time_ms: -1,
        record_errors: Vec::new(),
    }
}

/// First Produce version that may carry zstd batches (Kafka's `ProduceRequest`).
const ZSTD_VERSION_MIN: i16 = 7;

/// Kafka's `ProduceRequest.validateRecords`: one batch per partition, and zstd only from
/// v7. The records themselves are validated on the partition's owner.
fn check_records(version: i16, records: Bytes) -> Result<Bytes, ProducePart> {
    let Ok(header) = BatchHeader::parse(&records) else {
        return Ok(records); // too short to be a batch: the owner's validation says how
    };
    let length = usize::try_from(header.batch_length).unwrap_or(usize::MAX);
    if length.saturating_add(BATCH_LOG_OVERHEAD_BYTES) < records.len() {
        return Err(failed(
            ResponseError::InvalidRecord,
            &format!(
                "Produce requests with version {version} are only allowed to contain exactly one \
                 record batch per partition"
            ),
        ));
    }
    if version < ZSTD_VERSION_MIN && header.compression() == CompressionType::Zstd.id() {
        return Err(failed(
            ResponseError::UnsupportedCompressionType,
            &format!(
                "Produce requests with version {version} are not allowed to use ZStandard \
                 compression"
            ),
        ));
    }
    Ok(records)
}

/// First versions with `log_start_offset` and with `error_message` / `record_errors`.
const LOG_START_OFFSET_VERSION_MIN: i16 = 5;
const ERROR_MESSAGE_VERSION_MIN: i16 = 8;

fn partition_response(version: i16, index: i32, p: ProducePart) -> PartitionProduceResponse {
    let mut r = PartitionProduceResponse::default();
    r.index = index;
    r.error_code = p.error;
    r.base_offset = p.base_offset;
    r.log_append_time_ms = p.log_append_time_ms;
    if version >= LOG_START_OFFSET_VERSION_MIN {
        r.log_start_offset = p.log_start_offset;
    }
    if version >= ERROR_MESSAGE_VERSION_MIN {
        r.error_message = p.message.map(StrBytes::from_string);
        r.record_errors = p
            .record_errors
            .into_iter()
            .map(|e| {
                let mut b = BatchIndexAndErrorMessage::default();
                b.batch_index = e.batch_index;
                b.batch_index_error_message = Some(StrBytes::from_string(e.message));
                b
            })
            .collect();
    }
    r
}
