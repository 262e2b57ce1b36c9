//! Metadata v0–v12: this broker, and the requested topics (by name, or by id from v10) with
//! their partitions; auto-creates missing topics when `auto.create.topics.enable` (and the
//! request allows it, v4+).

use std::rc::Rc;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::authorized_operations::{
    AUTHORIZED_OPERATIONS_OMITTED, CLUSTER_OPERATIONS, TOPIC_OPERATIONS,
};
use crate::controller::request_create;
use crate::metadata::TopicInfo;
use crate::shard::Shard;

/// The versions whose cluster authorized operations Kafka fills in (v11 moved them to
/// DescribeCluster); topic authorized operations exist from v8 on.
const CLUSTER_OPERATIONS_VERSIONS: std::ops::RangeInclusive<i16> = 8..=10;
/// The first version with topic ids.
const TOPIC_ID_VERSION_MIN: i16 = 10;
/// The first version with partition leader epochs.
const LEADER_EPOCH_VERSION_MIN: i16 = 7;
/// The first version with offline replicas.
const OFFLINE_REPLICAS_VERSION_MIN: i16 = 5;
/// Topics one Metadata request may auto-create.
const AUTO_CREATE_PER_REQUEST_MAX: usize = 1024;

pub async fn handle(shard: &Rc<Shard>, version: i16, req: MetadataRequest) -> MetadataResponse {
    let mut resp = MetadataResponse::default();
    resp.brokers = brokers(shard);
    if version >= 2 {
        resp.cluster_id = Some(StrBytes::from_string(shard.broker.cluster_id.clone()));
    }
    if version >= 1 {
        let meta = shard.metadata();
        resp.controller_id = BrokerId(match &shard.broker.cluster {
            Some(_) => meta.controller_id.unwrap_or(-1),
            None => shard.broker.node_id,
        });
    }
    resp.cluster_authorized_operations = if req.include_cluster_authorized_operations
        && CLUSTER_OPERATIONS_VERSIONS.contains(&version)
    {
        CLUSTER_OPERATIONS
    } else {
        AUTHORIZED_OPERATIONS_OMITTED
    };
    // No authorizer: every operation a topic supports (Kafka's answer without one). Kafka sets
    // it on every topic entry by name, found or not, and not on unknown topic ids.
    let topic_operations = req
        .include_topic_authorized_operations
        .then_some(TOPIC_OPERATIONS);
    let mut resp = handle_topics(shard, version, req, resp).await;
    if let Some(ops) = topic_operations {
        for t in resp.topics.iter_mut().filter(|t| t.name.is_some()) {
            t.topic_authorized_operations = ops;
        }
    }
    resp
}

async fn handle_topics(
    shard: &Rc<Shard>,
    version: i16,
    req: MetadataRequest,
    mut resp: MetadataResponse,
) -> MetadataResponse {
    // v0 has no null topics: an empty list means all topics.
    let requested = match req.topics {
        Some(t) if !(version == 0 && t.is_empty()) => t,
        _ => {
            let meta = shard.metadata();
            let mut all: Vec<_> = meta.topics.values().cloned().collect();
            all.sort_by(|a, b| a.name.cmp(&b.name));
            resp.topics = all.iter().map(|t| topic_entry(shard, version, t)).collect();
            return resp;
        }
    };
    let allow_auto = version < 4 || req.allow_auto_topic_creation;
    // Internal topics are created by the broker itself, never auto-created as normal ones.
    let mut created = 0;
    for t in requested {
        let entry = match t.name {
            Some(name) => {
                let auto = allow_auto
                    && name.0.as_str() != crate::group::OFFSETS_TOPIC
                    && shard.config.auto_create_topics_enable
                    && created < AUTO_CREATE_PER_REQUEST_MAX;
                let (entry, made) = by_name(shard, version, name, auto).await;
                created += made as usize;
                entry
            }
            None => by_id(shard, version, t.topic_id),
        };
        resp.topics.push(entry);
    }
    resp
}

fn brokers(shard: &Shard) -> Vec<MetadataResponseBroker> {
    let meta = shard.metadata();
    if shard.broker.cluster.is_some() {
        return meta
            .brokers
            .iter()
            .map(|b| {
                let mut e = MetadataResponseBroker::default();
                e.node_id = BrokerId(b.node_id);
                e.host = StrBytes::from_string(b.host.clone());
                e.port = b.port as i32;
                e.rack = b.rack.clone().map(StrBytes::from_string);
                e
            })
            .collect();
    }
    shard
        .broker
        .advertised
        .iter()
        .take(1)
        .map(|(host, port)| {
            let mut b = MetadataResponseBroker::default();
            b.node_id = BrokerId(shard.broker.node_id);
            b.host = StrBytes::from_string(host.clone());
            b.port = *port as i32;
            b
        })
        .collect()
}

async fn by_name(
    shard: &Rc<Shard>,
    version: i16,
    name: TopicName,
    auto_create: bool,
) -> (MetadataResponseTopic, bool) {
    if let Some(topic) = shard.metadata().topic(&name.0) {
        return (topic_entry(shard, version, topic), false);
    }
    let unknown = || {
        error_entry(
            Some(name.clone()),
            ResponseError::UnknownTopicOrPartition.code(),
        )
    };
    if !auto_create {
        return (unknown(), false);
    }
    match request_create(shard, &name.0, shard.config.num_partitions, false).await {
        Ok(topic) => (topic_entry(shard, version, &topic), true),
        Err((code, _)) if code == ResponseError::TopicAlreadyExists.code() => {
            match shard.metadata().topic(&name.0) {
                Some(topic) => (topic_entry(shard, version, topic), false),
                None => (unknown(), false),
            }
        }
        Err((code, message)) => {
            tracing::debug!(topic = %name.0, "auto-create refused: {message}");
            (error_entry(Some(name), code), false)
        }
    }
}

fn by_id(shard: &Shard, version: i16, id: uuid::Uuid) -> MetadataResponseTopic {
    match shard.metadata().topic_by_id(id) {
        Some(topic) => topic_entry(shard, version, topic),
        None => {
            let mut e = error_entry(None, ResponseError::UnknownTopicId.code());
            e.topic_id = id;
            e
        }
    }
}

fn error_entry(name: Option<TopicName>, error_code: i16) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.error_code = error_code;
    t.name = name;
    t.topic_authorized_operations = AUTHORIZED_OPERATIONS_OMITTED;
    t
}

fn topic_entry(shard: &Shard, version: i16, topic: &Arc<TopicInfo>) -> MetadataResponseTopic {
    let node = BrokerId(shard.broker.node_id);
    let meta = shard.metadata();
    let mut t = error_entry(
        Some(TopicName(StrBytes::from_string(topic.name.to_string()))),
        0,
    );
    if version >= TOPIC_ID_VERSION_MIN {
        t.topic_id = topic.id.0;
    }
    if version >= 1 {
        t.is_internal = &*topic.name == crate::group::OFFSETS_TOPIC;
    }
    t.partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let mut e = MetadataResponsePartition::default();
            e.partition_index = p.index;
            let (leader, epoch, replicas, isr) = match &p.replication {
                None => (node, 0, vec![node], vec![node]),
                Some(r) => (
                    BrokerId(r.leader),
                    r.leader_epoch,
                    r.replicas.iter().map(|b| BrokerId(*b)).collect(),
                    r.isr.iter().map(|b| BrokerId(*b)).collect(),
                ),
            };
            if leader.0 < 0 {
                e.error_code = ResponseError::LeaderNotAvailable.code();
            }
            e.leader_id = leader;
            if version >= LEADER_EPOCH_VERSION_MIN {
                e.leader_epoch = epoch;
            }
            e.replica_nodes = replicas;
            e.isr_nodes = isr;
            if let Some(r) = p
                .replication
                .as_ref()
                .filter(|_| version >= OFFLINE_REPLICAS_VERSION_MIN)
            {
                e.offline_replicas = meta
                    .offline_replicas(&r.replicas)
                    .into_iter()
                    .map(BrokerId)
                    .collect();
            }
            e
        })
        .collect();
    t
}
