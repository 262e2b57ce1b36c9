//! DescribeConfigs v0–v4 (v0 answers `is_default` instead of the source): topic resources
//! (every topic key with its value and source: DYNAMIC_TOPIC_CONFIG for an override, else
//! STATIC_BROKER_CONFIG or DEFAULT_CONFIG) and broker resources (the honoured broker keys,
//! read-only). `config_type` is sent from v3.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::config::Config;
use crate::controller::read_topic_config;
use crate::shard::Shard;
use crate::topic_config::{
    ConfigEntry, SOURCE_DEFAULT_CONFIG, SOURCE_STATIC_BROKER_CONFIG, TYPE_INT, TYPE_LIST,
    TYPE_LONG, TYPE_STRING,
};

/// Kafka's `ConfigResource.Type` values.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// First version with `config_type` and `documentation`.
const CONFIG_TYPE_VERSION_MIN: i16 = 3;

pub async fn handle(
    shard: &Rc<Shard>,
    version: i16,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let mut resp = DescribeConfigsResponse::default();
    for resource in req.resources {
        resp.results
            .push(describe_one(shard, version, resource).await);
    }
    resp
}

async fn describe_one(
    shard: &Rc<Shard>,
    version: i16,
    resource: DescribeConfigsResource,
) -> DescribeConfigsResult {
    let mut r = DescribeConfigsResult::default();
    r.resource_type = resource.resource_type;
    r.resource_name = resource.resource_name.clone();
    let entries = match resource.resource_type {
        RESOURCE_TOPIC => topic_entries(shard, &resource.resource_name).await,
        RESOURCE_BROKER => broker_entries(shard, &resource.resource_name),
        other => Err((
            ResponseError::InvalidRequest.code(),
            format!("resource type {other} is not served by this broker (topics and brokers only)"),
        )),
    };
    match entries {
        Ok(entries) => {
            let wanted = resource.configuration_keys.as_ref();
            r.configs = entries
                .into_iter()
                .filter(|(e, _)| {
                    wanted.is_none_or(|keys| keys.iter().any(|k| k.as_str() == e.name))
                })
                .map(|(e, read_only)| result(version, e, read_only))
                .collect();
        }
        Err((code, message)) => {
            r.error_code = code;
            r.error_message = Some(StrBytes::from_string(message));
        }
    }
    r
}

fn result(version: i16, e: ConfigEntry, read_only: bool) -> DescribeConfigsResourceResult {
    let mut c = DescribeConfigsResourceResult::default();
    c.name = StrBytes::from_static_str(e.name);
    c.value = Some(StrBytes::from_string(e.value));
    c.read_only = read_only;
    c.config_source = e.source;
    if version >= CONFIG_TYPE_VERSION_MIN {
        c.config_type = e.config_type;
    }
    c
}

type Entries = Result<Vec<(ConfigEntry, bool)>, (i16, String)>;

async fn topic_entries(shard: &Rc<Shard>, name: &str) -> Entries {
    let meta = shard.metadata();
    let Some(topic) = meta.topic(name).cloned() else {
        return Err((
            ResponseError::UnknownTopicOrPartition.code(),
            format!("Topic '{name}' does not exist."),
        ));
    };
    let config = read_topic_config(shard, &topic).await?;
    Ok(config
        .describe(&shard.config)
        .into_iter()
        .map(|e| (e, false))
        .collect())
}

fn broker_entries(shard: &Shard, name: &str) -> Entries {
    let node = shard.broker.node_id;
    if !name.is_empty() && name != node.to_string() {
        return Err((
            ResponseError::InvalidRequest.code(),
            format!("broker {name} is not this broker (node.id {node})"),
        ));
    }
    let c = &shard.config;
    Ok(broker_values(c)
        .into_iter()
        .map(|(name, value, config_type)| {
            let source = if c.keys_set.contains(name) {
                SOURCE_STATIC_BROKER_CONFIG
            } else {
                SOURCE_DEFAULT_CONFIG
            };
            let e = ConfigEntry {
                name,
                value,
                source,
                config_type,
            };
            (e, true)
        })
        .collect())
}

/// The broker keys this broker honours and their values (read-only at runtime).
pub fn broker_values(c: &Config) -> Vec<(&'static str, String, i8)> {
    let opt = |v: Option<u64>| v.map_or("9223372036854775807".to_string(), |v| v.to_string());
    let list = |l: &[crate::config::Listener]| {
        l.iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let dirs: Vec<String> = c.log_dirs.iter().map(|d| d.display().to_string()).collect();
    vec![
        ("node.id", c.node_id.to_string(), TYPE_INT),
        ("listeners", list(&c.listeners), TYPE_STRING),
        ("log.dirs", dirs.join(","), TYPE_STRING),
        ("num.partitions", c.num_partitions.to_string(), TYPE_INT),
        (
            "default.replication.factor",
            c.default_replication_factor.to_string(),
            TYPE_INT,
        ),
        (
            "auto.create.topics.enable",
            c.auto_create_topics_enable.to_string(),
            TYPE_STRING,
        ),
        (
            "log.segment.bytes",
            c.log_segment_bytes.to_string(),
            TYPE_INT,
        ),
        (
            "message.max.bytes",
            c.message_max_bytes.to_string(),
            TYPE_INT,
        ),
        (
            "socket.request.max.bytes",
            c.socket_request_max_bytes.to_string(),
            TYPE_INT,
        ),
        (
            "log.flush.interval.messages",
            opt(c.log_flush_interval_messages),
            TYPE_LONG,
        ),
        (
            "log.flush.interval.ms",
            opt(c.log_flush_interval_ms),
            TYPE_LONG,
        ),
        (
            "log.flush.offset.checkpoint.interval.ms",
            c.log_flush_offset_checkpoint_interval_ms.to_string(),
            TYPE_INT,
        ),
    ]
    .into_iter()
    .chain(retention_values(c))
    .collect()
}

/// The log retention and roll keys.
fn retention_values(c: &Config) -> Vec<(&'static str, String, i8)> {
    vec![
        (
            "log.retention.ms",
            c.retention_ms().unwrap_or(-1).to_string(),
            TYPE_LONG,
        ),
        (
            "log.retention.bytes",
            c.log_retention_bytes.to_string(),
            TYPE_LONG,
        ),
        ("log.roll.ms", c.roll_ms().to_string(), TYPE_LONG),
        (
            "log.retention.check.interval.ms",
            c.log_retention_check_interval_ms.to_string(),
            TYPE_LONG,
        ),
        ("log.cleanup.policy", "delete".to_string(), TYPE_LIST),
        (
            "offsets.topic.num.partitions",
            c.offsets_topic_num_partitions.to_string(),
            TYPE_INT,
        ),
        (
            "offsets.topic.replication.factor",
            c.offsets_topic_replication_factor.to_string(),
            TYPE_INT,
        ),
        (
            "offsets.retention.minutes",
            c.offsets_retention_minutes.to_string(),
            TYPE_INT,
        ),
        (
            "offsets.retention.check.interval.ms",
            c.offsets_retention_check_interval_ms.to_string(),
            TYPE_LONG,
        ),
        (
            "group.initial.rebalance.delay.ms",
            c.group_initial_rebalance_delay_ms.to_string(),
            TYPE_INT,
        ),
        (
            "group.min.session.timeout.ms",
            c.group_min_session_timeout_ms.to_string(),
            TYPE_INT,
        ),
        (
            "group.max.session.timeout.ms",
            c.group_max_session_timeout_ms.to_string(),
            TYPE_INT,
        ),
    ]
}
