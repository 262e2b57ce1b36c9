//! DescribeConfigs v0–v4 (v0 answers `is_default` instead of the source): topic resources
//! (every topic key with its value and source: DYNAMIC_TOPIC_CONFIG for an override, else
//! the broker default's — DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG,
//! STATIC_BROKER_CONFIG or DEFAULT_CONFIG) and broker resources (`dynamic_config`: every
//! honoured broker key with Kafka's type, source and read-only flag; the cluster default
//! `""` lists what is set there). `config_type` is sent from v3; synonyms are not listed.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::controller::read_topic_config;
use crate::dynamic_config::{
    broker_key, source, Mode, BROKER_KEYS, SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG,
};
use crate::shard::Shard;
use crate::topic_config::SOURCE_DEFAULT_CONFIG;

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
                .filter(|row| wanted.is_none_or(|keys| keys.iter().any(|k| k.as_str() == row.name)))
                .map(|row| result(version, row))
                .collect();
        }
        Err((code, message)) => {
            r.error_code = code;
            r.error_message = Some(StrBytes::from_string(message));
        }
    }
    r
}

/// One described key.
struct Row {
    name: &'static str,
    value: Option<String>,
    source: i8,
    config_type: i8,
    read_only: bool,
}

fn result(version: i16, row: Row) -> DescribeConfigsResourceResult {
    let mut c = DescribeConfigsResourceResult::default();
    c.name = StrBytes::from_static_str(row.name);
    c.value = row.value.map(StrBytes::from_string);
    c.read_only = row.read_only;
    c.config_source = row.source;
    if version >= CONFIG_TYPE_VERSION_MIN {
        c.config_type = row.config_type;
    }
    c
}

type Entries = Result<Vec<Row>, (i16, String)>;

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
        .describe(&shard.current_config())
        .into_iter()
        .map(|e| Row {
            name: e.name,
            value: Some(e.value),
            source: e.source,
            config_type: e.config_type,
            read_only: false,
        })
        .collect())
}

/// This broker (`name` = its node id): every honoured key with its value and source; the
/// cluster default (`""`): only what is set there, as Kafka answers.
fn broker_entries(shard: &Shard, name: &str) -> Entries {
    let node = shard.broker.node_id;
    let c = shard.current_config();
    if name.is_empty() {
        return Ok(c
            .dynamic
            .default
            .iter()
            .filter_map(|(k, v)| {
                let key = broker_key(k)?;
                Some(Row {
                    name: key.name,
                    value: Some(v.clone()),
                    source: SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG,
                    config_type: key.config_type,
                    read_only: false,
                })
            })
            .collect());
    }
    if name != node.to_string() {
        return Err((
            ResponseError::InvalidRequest.code(),
            format!("Unexpected broker id, expected {node} or empty string, but received {name}"),
        ));
    }
    Ok(BROKER_KEYS
        .iter()
        .map(|key| {
            let mut names = vec![key.name];
            names.extend_from_slice(key.aliases);
            Row {
                name: key.name,
                value: (key.value)(&c),
                source: names
                    .iter()
                    .map(|n| source(&c, n))
                    .min()
                    .unwrap_or(SOURCE_DEFAULT_CONFIG),
                config_type: key.config_type,
                read_only: key.mode != Mode::Dynamic,
            }
        })
        .collect())
}
