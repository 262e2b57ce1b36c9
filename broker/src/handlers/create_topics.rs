//! CreateTopics v0–v7 (v0–v1 decoded by `sluice_net::codec`'s legacy module). Replication
//! factor must be 1 (or -1, the default) until replication lands; manual assignments must name
//! this broker; topic-level configs are validated (`topic_config::validate`: unknown keys and
//! bad values get INVALID_CONFIG naming them) and persisted with the partitions. v5+ answers
//! with every topic key and its source.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use kafka_protocol::messages::create_topics_response::CreatableTopicConfigs;

use crate::controller::{request_create_with_config, Replicas};
use crate::shard::Shard;
use crate::topic_config::TopicConfig;

pub async fn handle(
    shard: &Rc<Shard>,
    version: i16,
    req: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut resp = CreateTopicsResponse::default();
    for topic in req.topics {
        resp.topics
            .push(create_one(shard, version, topic, req.validate_only).await);
    }
    resp
}

/// First versions with topic details (partitions, replication factor, configs) and with the topic id.
const DETAILS_VERSION_MIN: i16 = 5;
const TOPIC_ID_VERSION_MIN: i16 = 7;

async fn create_one(
    shard: &Rc<Shard>,
    version: i16,
    topic: CreatableTopic,
    validate_only: bool,
) -> CreatableTopicResult {
    let mut r = CreatableTopicResult::default();
    r.name = topic.name.clone();
    let outcome = match check(shard, &topic) {
        Err(e) => Err(e),
        Ok(create) => {
            let config = create.1.clone();
            let rf = match &create.2 {
                Replicas::Factor(rf) => *rf,
                Replicas::Assigned(lists) => lists.first().map_or(1, |l| l.len() as i16),
            };
            request_create_with_config(shard, &topic.name.0, create, validate_only)
                .await
                .map(|info| (info, config, rf))
        }
    };
    match outcome {
        Ok((info, config, rf)) => {
            if version >= TOPIC_ID_VERSION_MIN && !validate_only {
                r.topic_id = info.id.0;
            }
            if version >= DETAILS_VERSION_MIN {
                r.num_partitions = info.partitions.len() as i32;
                r.replication_factor = rf;
                r.configs = Some(described(shard, &config));
            }
        }
        Err((code, message)) => {
            r.error_code = code;
            if version >= DETAILS_VERSION_MIN {
                r.num_partitions = -1;
                r.replication_factor = -1;
            }
            r.error_message = Some(StrBytes::from_string(message));
        }
    }
    r
}

fn described(shard: &Shard, config: &TopicConfig) -> Vec<CreatableTopicConfigs> {
    config
        .describe(&shard.current_config())
        .into_iter()
        .map(|e| {
            let mut c = CreatableTopicConfigs::default();
            c.name = StrBytes::from_static_str(e.name);
            c.value = Some(StrBytes::from_string(e.value));
            c.config_source = e.source;
            c
        })
        .collect()
}

/// The topic's validated configs.
fn topic_config(topic: &CreatableTopic) -> Result<TopicConfig, (i16, String)> {
    let invalid = |m: String| (ResponseError::InvalidConfig.code(), m);
    let mut pairs = Vec::with_capacity(topic.configs.len());
    for c in &topic.configs {
        let value = c.value.as_ref().ok_or_else(|| {
            invalid(format!(
                "Null value not supported for topic configs: {}",
                c.name
            ))
        })?;
        pairs.push((c.name.as_str(), value.as_str()));
    }
    TopicConfig::from_pairs(pairs).map_err(invalid)
}

/// Returns the partition count, the config and the replicas to create.
fn check(
    shard: &Shard,
    topic: &CreatableTopic,
) -> Result<(i32, TopicConfig, Replicas), (i16, String)> {
    let config = topic_config(topic)?;
    if shard.broker.cluster.is_some() {
        let (partitions, replicas) = cluster_layout(shard, topic)?;
        return Ok((partitions, config, replicas));
    }
    let partitions = check_layout(shard, topic)?;
    Ok((partitions, config, Replicas::Factor(1)))
}

/// In a cluster the controller checks replicas against the registered brokers.
fn cluster_layout(shard: &Shard, topic: &CreatableTopic) -> Result<(i32, Replicas), (i16, String)> {
    if topic.assignments.is_empty() {
        let rf = match topic.replication_factor {
            -1 => shard.config.default_replication_factor,
            rf => rf,
        };
        let partitions = match topic.num_partitions {
            -1 => shard.config.num_partitions,
            n => n,
        };
        return Ok((partitions, Replicas::Factor(rf)));
    }
    if topic.num_partitions != -1 || topic.replication_factor != -1 {
        return Err((
            ResponseError::InvalidRequest.code(),
            "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
        ));
    }
    let mut lists = vec![Vec::new(); topic.assignments.len()];
    for a in &topic.assignments {
        let slot = usize::try_from(a.partition_index)
            .ok()
            .and_then(|i| lists.get_mut(i));
        let Some(slot) = slot else {
            return Err((
                ResponseError::InvalidReplicaAssignment.code(),
                format!(
                    "partition {} is out of range 0..{}",
                    a.partition_index,
                    topic.assignments.len()
                ),
            ));
        };
        *slot = a.broker_ids.iter().map(|b| b.0).collect();
    }
    Ok((lists.len() as i32, Replicas::Assigned(lists)))
}

/// Returns the partition count to create.
fn check_layout(shard: &Shard, topic: &CreatableTopic) -> Result<i32, (i16, String)> {
    if !topic.assignments.is_empty() {
        if topic.num_partitions != -1 || topic.replication_factor != -1 {
            return Err((
                ResponseError::InvalidRequest.code(),
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
            ));
        }
        let node = shard.broker.node_id;
        for (i, a) in topic.assignments.iter().enumerate() {
            if a.partition_index != i as i32 || a.broker_ids.len() != 1 || a.broker_ids[0].0 != node
            {
                return Err((
                    ResponseError::InvalidReplicaAssignment.code(),
                    format!("partition {} must be assigned to exactly broker {node} (single-node broker)", a.partition_index),
                ));
            }
        }
        return Ok(topic.assignments.len() as i32);
    }
    let rf = if topic.replication_factor == -1 {
        shard.config.default_replication_factor
    } else {
        topic.replication_factor
    };
    if rf != 1 {
        return Err((
            ResponseError::InvalidReplicationFactor.code(),
            format!("Replication factor: {rf} larger than available brokers: 1."),
        ));
    }
    Ok(if topic.num_partitions == -1 {
        shard.config.num_partitions
    } else {
        topic.num_partitions
    })
}
