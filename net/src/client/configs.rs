//! Configs and producer-side metadata for the `sluice` CLI: DescribeConfigs,
//! IncrementalAlterConfigs (Kafka's `ConfigResource` types topic, broker, group), and
//! Metadata with topic auto-creation (what Kafka's producer asks for).
//!
//! Request building and answer reading are free functions (testable without a broker);
//! the `Client` methods route them to the right broker.

use std::time::Duration;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::error::{ClientError, Result};
use crate::client::limits::{RETRIES_MAX, RETRY_BACKOFF_MS};
use crate::client::{is_retriable, requests, Client, Connection, TopicMetadata};

/// Kafka's `ConfigResource.Type` codes for the resources the CLI names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigResourceType {
    Topic,
    Broker,
    Group,
}

impl ConfigResourceType {
    pub fn code(self) -> i8 {
        match self {
            ConfigResourceType::Topic => 2,
            ConfigResourceType::Broker => 4,
            ConfigResourceType::Group => 32,
        }
    }
}

/// One config of a resource as DescribeConfigs describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedConfig {
    pub name: String,
    /// `None` for sensitive values and unset keys.
    pub value: Option<String>,
    /// The wire code of `ConfigSource` (see [`config_source_name`]).
    pub source: i8,
    pub read_only: bool,
    pub sensitive: bool,
    /// `(source, name, value)` of each synonym, most specific first (asked for only when
    /// `include_synonyms`).
    pub synonyms: Vec<(i8, String, Option<String>)>,
}

/// The name Kafka's admin client gives a `ConfigSource` wire code
/// (`ConfigEntry.ConfigSource`).
pub fn config_source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "DYNAMIC_CLIENT_METRICS_CONFIG",
        8 => "DYNAMIC_GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

/// One change of IncrementalAlterConfigs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    /// `SET` (operation 0).
    Set { name: String, value: String },
    /// `DELETE` (operation 1): back to the default.
    Delete { name: String },
}

impl Client {
    /// DescribeConfigs of one resource: every config it has, with synonyms if asked.
    /// A broker resource goes to that broker (`""`, the cluster default, to any).
    pub async fn describe_configs(
        &mut self,
        resource: ConfigResourceType,
        name: &str,
        include_synonyms: bool,
    ) -> Result<Vec<DescribedConfig>> {
        let request = describe_configs(resource, name, include_synonyms);
        let connection = self.config_connection(resource, name).await?;
        let address = connection.address().to_string();
        let response = connection.call(&request).await?;
        parse_describe_configs(response, name, &address)
    }

    /// IncrementalAlterConfigs of one resource.
    pub async fn incremental_alter_configs(
        &mut self,
        resource: ConfigResourceType,
        name: &str,
        changes: &[ConfigChange],
    ) -> Result<()> {
        let request = incremental_alter_configs(resource, name, changes);
        let connection = self.config_connection(resource, name).await?;
        let address = connection.address().to_string();
        let response = connection.call(&request).await?;
        parse_incremental_alter_configs(&response, name, &address)
    }

    /// The metadata of `topic`, asking the broker to create it if it does not exist (as
    /// Kafka's producer does: Metadata with `allow_auto_topic_creation`), waiting (up to
    /// [`RETRIES_MAX`] tries) until it has leaders.
    pub async fn topic_auto_create(&mut self, topic: &str) -> Result<TopicMetadata> {
        let mut tries = 0;
        loop {
            let version = self.bootstrap.version(ApiKey::Metadata)?;
            let request =
                requests::metadata(&[topic], version).with_allow_auto_topic_creation(true);
            let response = self.bootstrap.call(&request).await?;
            let address = self.bootstrap.address().to_string();
            let metadata = requests::parse_metadata(response, &address)?;
            for broker in &metadata.brokers {
                self.brokers.insert(broker.node_id, broker.address());
            }
            let found = metadata.topics.into_iter().find(|t| t.name == topic);
            let outcome = match found {
                None => Err(ClientError::Metadata(format!(
                    "{address}: Metadata did not list topic {topic:?}"
                ))),
                Some(t) => requests::topic_ready(t, &address),
            };
            match outcome {
                Err(error) if tries < RETRIES_MAX && is_retriable(&error) => {
                    tries += 1;
                    compio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
                }
                Ok(t) => {
                    self.topics.insert(t.name.clone(), t.clone());
                    return Ok(t);
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Where a config request for `resource` `name` goes: the broker it names, else the
    /// bootstrap broker.
    async fn config_connection(
        &mut self,
        resource: ConfigResourceType,
        name: &str,
    ) -> Result<&mut Connection> {
        let node_id = match (resource, name.parse::<i32>()) {
            (ConfigResourceType::Broker, Ok(node_id)) => node_id,
            _ => return Ok(&mut self.bootstrap),
        };
        if !self.brokers.contains_key(&node_id) {
            self.metadata(&[]).await?;
        }
        let Some(address) = self.brokers.get(&node_id).cloned() else {
            return Err(ClientError::Metadata(format!(
                "broker {node_id} is not among the brokers Metadata lists"
            )));
        };
        self.node_connection(node_id, &address).await
    }
}

fn str_bytes(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn describe_configs(
    resource: ConfigResourceType,
    name: &str,
    include_synonyms: bool,
) -> DescribeConfigsRequest {
    DescribeConfigsRequest::default()
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource.code())
            .with_resource_name(str_bytes(name))
            .with_configuration_keys(None)])
        .with_include_synonyms(include_synonyms)
}

fn parse_describe_configs(
    response: DescribeConfigsResponse,
    name: &str,
    address: &str,
) -> Result<Vec<DescribedConfig>> {
    let Some(result) = response
        .results
        .into_iter()
        .find(|r| r.resource_name.as_str() == name)
    else {
        return Err(ClientError::Metadata(format!(
            "{address}: DescribeConfigs did not answer for {name:?}"
        )));
    };
    let message = result.error_message.as_ref().map(|m| m.to_string());
    ClientError::check_with_message(result.error_code, message, || {
        format!("describing the configs of {name:?} on {address}")
    })?;
    let text = |v: Option<StrBytes>| v.map(|v| v.to_string());
    Ok(result
        .configs
        .into_iter()
        .map(|c| DescribedConfig {
            name: c.name.to_string(),
            value: text(c.value),
            source: c.config_source,
            read_only: c.read_only,
            sensitive: c.is_sensitive,
            synonyms: c
                .synonyms
                .into_iter()
                .map(|s| (s.source, s.name.to_string(), text(s.value)))
                .collect(),
        })
        .collect())
}

fn incremental_alter_configs(
    resource: ConfigResourceType,
    name: &str,
    changes: &[ConfigChange],
) -> IncrementalAlterConfigsRequest {
    let configs = changes
        .iter()
        .map(|change| match change {
            ConfigChange::Set { name, value } => AlterableConfig::default()
                .with_name(str_bytes(name))
                .with_config_operation(0)
                .with_value(Some(str_bytes(value))),
            ConfigChange::Delete { name } => AlterableConfig::default()
                .with_name(str_bytes(name))
                .with_config_operation(1)
                .with_value(None),
        })
        .collect();
    IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(resource.code())
        .with_resource_name(str_bytes(name))
        .with_configs(configs)])
}

fn parse_incremental_alter_configs(
    response: &IncrementalAlterConfigsResponse,
    name: &str,
    address: &str,
) -> Result<()> {
    let Some(result) = response
        .responses
        .iter()
        .find(|r| r.resource_name.as_str() == name)
    else {
        return Err(ClientError::Metadata(format!(
            "{address}: IncrementalAlterConfigs did not answer for {name:?}"
        )));
    };
    let message = result.error_message.as_ref().map(|m| m.to_string());
    ClientError::check_with_message(result.error_code, message, || {
        format!("altering the configs of {name:?} on {address}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::error::ResponseError;
    use kafka_protocol::messages::describe_configs_response::{
        DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
    };
    use kafka_protocol::protocol::Encodable;

    /// Every request built here encodes at every version the client may negotiate.
    #[test]
    fn config_requests_encode_at_every_client_version() {
        let versions = crate::client::limits::versions_under_test;
        let mut buf = bytes::BytesMut::new();
        for v in versions(ApiKey::DescribeConfigs) {
            describe_configs(ConfigResourceType::Topic, "t", true)
                .encode(&mut buf, v)
                .unwrap();
        }
        let changes = [
            ConfigChange::Set {
                name: "retention.ms".into(),
                value: "1000".into(),
            },
            ConfigChange::Delete {
                name: "segment.ms".into(),
            },
        ];
        for v in versions(ApiKey::IncrementalAlterConfigs) {
            incremental_alter_configs(ConfigResourceType::Broker, "1", &changes)
                .encode(&mut buf, v)
                .unwrap();
        }
    }

    #[test]
    fn described_configs_keep_sources_and_synonyms() {
        let config = DescribeConfigsResourceResult::default()
            .with_name(str_bytes("retention.ms"))
            .with_value(Some(str_bytes("1000")))
            .with_config_source(1)
            .with_synonyms(vec![DescribeConfigsSynonym::default()
                .with_name(str_bytes("log.retention.ms"))
                .with_value(None)
                .with_source(5)]);
        let response =
            DescribeConfigsResponse::default().with_results(vec![DescribeConfigsResult::default()
                .with_resource_name(str_bytes("t"))
                .with_configs(vec![config])]);
        let described = parse_describe_configs(response, "t", "b:1").unwrap();
        assert_eq!(
            described,
            [DescribedConfig {
                name: "retention.ms".into(),
                value: Some("1000".into()),
                source: 1,
                read_only: false,
                sensitive: false,
                synonyms: vec![(5, "log.retention.ms".into(), None)],
            }]
        );
        assert_eq!(
            config_source_name(described[0].source),
            "DYNAMIC_TOPIC_CONFIG"
        );
        let failed =
            DescribeConfigsResponse::default().with_results(vec![DescribeConfigsResult::default()
                .with_resource_name(str_bytes("t"))
                .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                .with_error_message(Some(str_bytes("Topic 't' does not exist.")))]);
        let error = parse_describe_configs(failed, "t", "b:1").unwrap_err();
        assert_eq!(
            error.to_string(),
            "describing the configs of \"t\" on b:1: Topic 't' does not exist. \
             (UnknownTopicOrPartition, Kafka error code 3)"
        );
    }
}
