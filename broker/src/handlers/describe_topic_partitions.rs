//! DescribeTopicPartitions v0 (KIP-966), as Kafka 4's admin client uses it for
//! `describeTopics`: the topics asked (none: every topic) in name order, from the cursor on,
//! at most `response_partition_limit` partitions per answer (clamped to
//! `DESCRIBE_TOPIC_PARTITIONS_LIMIT_MAX`, Kafka's `max.request.partition.size.limit`
//! default), with `next_cursor` where the answer stopped. Each partition has its leader and
//! epoch, replicas, ISR, offline replicas (fenced or unregistered brokers), and empty
//! eligible-leader lists (Sluice has no ELR, as Kafka with
//! `eligible.leader.replicas.version=0`).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::authorized_operations::TOPIC_OPERATIONS;
use crate::metadata::{validate_topic_name, ClusterMetadata, TopicInfo};
use crate::shard::Shard;

/// Most partitions one answer carries (Kafka's `max.request.partition.size.limit` default).
pub const DESCRIBE_TOPIC_PARTITIONS_LIMIT_MAX: i32 = 2000;

pub fn handle(
    shard: &Shard,
    _version: i16,
    req: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let meta = shard.metadata();
    let all = req.topics.is_empty();
    let mut names: Vec<String> = match all {
        true => meta.topics.keys().map(|n| n.to_string()).collect(),
        false => req.topics.iter().map(|t| t.name.0.to_string()).collect(),
    };
    names.sort_unstable();
    names.dedup();
    if let Some(c) = &req.cursor {
        if !names.iter().any(|n| *n == *c.topic_name.0) || c.partition_index < 0 {
            return invalid_request(&req);
        }
        names.retain(|n| n.as_str() >= &*c.topic_name.0);
    }
    let limit = req
        .response_partition_limit
        .clamp(1, DESCRIBE_TOPIC_PARTITIONS_LIMIT_MAX) as usize;
    let start = |name: &str| match &req.cursor {
        Some(c) if *c.topic_name.0 == *name => c.partition_index as usize,
        _ => 0,
    };
    let mut resp = DescribeTopicPartitionsResponse::default();
    let mut remaining = limit;
    for name in names {
        if remaining == 0 {
            resp.next_cursor = Some(cursor(&name, 0));
            break;
        }
        let Some(topic) = meta.topic(&name) else {
            if !all {
                resp.topics.push(missing(&name));
            }
            continue;
        };
        let from = start(&name).min(topic.partitions.len());
        let to = topic.partitions.len().min(from + remaining);
        resp.topics.push(topic_entry(shard, &meta, topic, from..to));
        if to < topic.partitions.len() {
            resp.next_cursor = Some(cursor(&name, to as i32));
            break;
        }
        remaining -= to - from;
    }
    resp
}

fn cursor(topic: &str, partition: i32) -> Cursor {
    let mut c = Cursor::default();
    c.topic_name = topic_name(topic);
    c.partition_index = partition;
    c
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn is_internal(name: &str) -> bool {
    name == crate::group::OFFSETS_TOPIC
}

/// Kafka's answer to a request it refuses (InvalidRequestException): every topic asked
/// with the error.
fn invalid_request(req: &DescribeTopicPartitionsRequest) -> DescribeTopicPartitionsResponse {
    let mut resp = DescribeTopicPartitionsResponse::default();
    for t in &req.topics {
        let mut e = DescribeTopicPartitionsResponseTopic::default();
        e.name = Some(t.name.clone());
        e.error_code = ResponseError::InvalidRequest.code();
        e.is_internal = false;
        resp.topics.push(e);
    }
    resp
}

fn missing(name: &str) -> DescribeTopicPartitionsResponseTopic {
    let mut e = DescribeTopicPartitionsResponseTopic::default();
    e.name = Some(topic_name(name));
    e.error_code = match validate_topic_name(name) {
        Ok(()) => ResponseError::UnknownTopicOrPartition.code(),
        Err(_) => ResponseError::InvalidTopicException.code(),
    };
    e.is_internal = is_internal(name);
    e.topic_authorized_operations = TOPIC_OPERATIONS;
    e
}

fn topic_entry(
    shard: &Shard,
    meta: &ClusterMetadata,
    topic: &TopicInfo,
    range: std::ops::Range<usize>,
) -> DescribeTopicPartitionsResponseTopic {
    let mut e = DescribeTopicPartitionsResponseTopic::default();
    e.name = Some(topic_name(&topic.name));
    e.topic_id = topic.id.0;
    e.is_internal = is_internal(&topic.name);
    e.topic_authorized_operations = TOPIC_OPERATIONS;
    let node = shard.broker.node_id;
    e.partitions = topic.partitions[range]
        .iter()
        .map(|p| {
            let mut out = DescribeTopicPartitionsResponsePartition::default();
            out.partition_index = p.index;
            out.eligible_leader_replicas = Some(Vec::new());
            out.last_known_elr = Some(Vec::new());
            let Some(r) = &p.replication else {
                out.leader_id = BrokerId(node);
                out.replica_nodes = vec![BrokerId(node)];
                out.isr_nodes = vec![BrokerId(node)];
                return out;
            };
            let leader_known = meta.registered.iter().any(|e| e.node_id == r.leader);
            if r.leader < 0 || !leader_known {
                out.error_code = ResponseError::LeaderNotAvailable.code();
                out.leader_id = BrokerId(-1);
            } else {
                out.leader_id = BrokerId(r.leader);
            }
            out.leader_epoch = r.leader_epoch;
            out.replica_nodes = r.replicas.iter().map(|b| BrokerId(*b)).collect();
            out.isr_nodes = r.isr.iter().map(|b| BrokerId(*b)).collect();
            out.offline_replicas = meta
                .offline_replicas(&r.replicas)
                .into_iter()
                .map(BrokerId)
                .collect();
            out
        })
        .collect();
    e
}
