//! Administrative calls for the `sluice` CLI: what the broker advertises, topic creation
//! with configs, topic deletion, partition creation and record deletion.
//!
//! Request building and answer reading are free functions (testable without a broker);
//! the `Client` methods route them to the right broker.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, CreatePartitionsRequest, CreateTopicsRequest, CreateTopicsResponse,
    DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::error::{ClientError, Result};
use crate::client::requests::{self, REQUEST_TIMEOUT_MS};
use crate::client::{Client, TopicCreation};

/// First DeleteTopics version that lists topics as (name, id) pairs.
const DELETE_TOPICS_STATES_VERSION_MIN: i16 = 6;

/// One API as the broker's ApiVersions answer lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvertisedApi {
    pub api_key: i16,
    pub min_version: i16,
    pub max_version: i16,
}

/// One partition's answer to DeleteRecords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeletedRecords {
    pub partition: i32,
    /// The partition's new log start offset.
    pub low_watermark: i64,
    pub error: Option<ResponseError>,
}

impl Client {
    /// Every API the bootstrap broker advertises, asked again: the negotiated table
    /// keeps only the APIs this client implements.
    pub async fn advertised_apis(&mut self) -> Result<Vec<AdvertisedApi>> {
        let version = self.bootstrap.version(ApiKey::ApiVersions)?;
        let response = self
            .bootstrap
            .call_version(&ApiVersionsRequest::default(), version)
            .await?;
        let address = self.bootstrap.address().to_string();
        ClientError::check(response.error_code, || format!("ApiVersions to {address}"))?;
        Ok(response
            .api_keys
            .iter()
            .map(|api| AdvertisedApi {
                api_key: api.api_key,
                min_version: api.min_version,
                max_version: api.max_version,
            })
            .collect())
    }

    /// Whether the bootstrap broker advertises `api_key` in any version.
    pub async fn advertises(&mut self, api_key: ApiKey) -> Result<bool> {
        let apis = self.advertised_apis().await?;
        Ok(apis.iter().any(|api| api.api_key == api_key as i16))
    }

    /// Creates `topic` with topic-level `configs` unless it exists. `-1` partitions or
    /// replication factor ask for the broker's defaults.
    pub async fn create_topic_with_configs(
        &mut self,
        topic: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(String, String)],
    ) -> Result<TopicCreation> {
        let request = create_topic(topic, partitions, replication_factor, configs);
        let response = self.bootstrap.call(&request).await?;
        parse_create_topic(&response, topic, self.bootstrap.address())
    }

    /// Deletes `topic`.
    pub async fn delete_topic(&mut self, topic: &str) -> Result<()> {
        let version = self.bootstrap.version(ApiKey::DeleteTopics)?;
        let request = delete_topic(topic, version);
        let response = self.bootstrap.call_version(&request, version).await?;
        self.topics.remove(topic);
        parse_delete_topic(&response, topic, self.bootstrap.address())
    }

    /// Grows `topic` to `count` partitions in all.
    pub async fn create_partitions(&mut self, topic: &str, count: i32) -> Result<()> {
        let request = CreatePartitionsRequest::default()
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic_name(topic))
                .with_count(count)])
            .with_timeout_ms(REQUEST_TIMEOUT_MS);
        let response = self.bootstrap.call(&request).await?;
        self.topics.remove(topic);
        let address = self.bootstrap.address();
        let result = response
            .results
            .iter()
            .find(|r| r.name.0.as_str() == topic)
            .ok_or_else(|| {
                ClientError::Metadata(format!(
                    "{address}: CreatePartitions did not answer {topic:?}"
                ))
            })?;
        let message = result.error_message.as_ref().map(|m| m.to_string());
        ClientError::check_with_message(result.error_code, message, || {
            format!("adding partitions to {topic:?} on {address}")
        })
    }

    /// Deletes the records of `topic` before the given offsets (`(partition, offset)`;
    /// offset -1 means the high watermark), asking each partition's leader.
    pub async fn delete_records(
        &mut self,
        topic: &str,
        partitions: &[(i32, i64)],
    ) -> Result<Vec<DeletedRecords>> {
        let metadata = self.known_topic(topic).await?;
        let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
        for &(partition, offset) in partitions {
            let leader_id = requests::leader_id(&metadata, partition)?;
            by_leader
                .entry(leader_id)
                .or_default()
                .push((partition, offset));
        }
        let mut results = Vec::with_capacity(partitions.len());
        for group in by_leader.values() {
            let connection = self.leader(&metadata, group[0].0).await?;
            let response = connection.call(&delete_records(topic, group)).await?;
            results.extend(parse_delete_records(&response, topic));
        }
        Ok(results)
    }
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn create_topic(
    topic: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(String, String)],
) -> CreateTopicsRequest {
    let configs = configs
        .iter()
        .map(|(name, value)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(name.clone()))
                .with_value(Some(StrBytes::from_string(value.clone())))
        })
        .collect();
    let creatable = CreatableTopic::default()
        .with_name(topic_name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(replication_factor)
        .with_configs(configs);
    CreateTopicsRequest::default()
        .with_topics(vec![creatable])
        .with_timeout_ms(REQUEST_TIMEOUT_MS)
}

fn parse_create_topic(
    response: &CreateTopicsResponse,
    topic: &str,
    address: &str,
) -> Result<TopicCreation> {
    let result = response
        .topics
        .iter()
        .find(|t| t.name.0.as_str() == topic)
        .ok_or_else(|| {
            ClientError::Metadata(format!("{address}: CreateTopics did not answer {topic:?}"))
        })?;
    if result.error_code == ResponseError::TopicAlreadyExists.code() {
        return Ok(TopicCreation::AlreadyExists);
    }
    let message = result.error_message.as_ref().map(|m| m.to_string());
    ClientError::check_with_message(result.error_code, message, || {
        format!("creating topic {topic:?} on {address}")
    })?;
    Ok(TopicCreation::Created)
}

fn delete_topic(topic: &str, version: i16) -> DeleteTopicsRequest {
    let request = DeleteTopicsRequest::default().with_timeout_ms(REQUEST_TIMEOUT_MS);
    if version >= DELETE_TOPICS_STATES_VERSION_MIN {
        request.with_topics(vec![
            DeleteTopicState::default().with_name(Some(topic_name(topic)))
        ])
    } else {
        request.with_topic_names(vec![topic_name(topic)])
    }
}

fn parse_delete_topic(response: &DeleteTopicsResponse, topic: &str, address: &str) -> Result<()> {
    let result = response
        .responses
        .iter()
        .find(|r| r.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
        .ok_or_else(|| {
            ClientError::Metadata(format!("{address}: DeleteTopics did not answer {topic:?}"))
        })?;
    let message = result.error_message.as_ref().map(|m| m.to_string());
    ClientError::check_with_message(result.error_code, message, || {
        format!("deleting topic {topic:?} on {address}")
    })
}

fn delete_records(topic: &str, partitions: &[(i32, i64)]) -> DeleteRecordsRequest {
    let partitions = partitions
        .iter()
        .map(|&(partition, offset)| {
            DeleteRecordsPartition::default()
                .with_partition_index(partition)
                .with_offset(offset)
        })
        .collect();
    DeleteRecordsRequest::default()
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(partitions)])
        .with_timeout_ms(REQUEST_TIMEOUT_MS)
}

fn parse_delete_records(response: &DeleteRecordsResponse, topic: &str) -> Vec<DeletedRecords> {
    response
        .topics
        .iter()
        .filter(|t| t.name.0.as_str() == topic)
        .flat_map(|t| &t.partitions)
        .map(|p| DeletedRecords {
            partition: p.partition_index,
            low_watermark: p.low_watermark,
            error: ResponseError::try_from_code(p.error_code),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Encodable;

    /// Every request built here encodes at every version the client may negotiate.
    #[test]
    fn admin_requests_encode_at_every_client_version() {
        let versions = crate::client::limits::versions_under_test;
        let mut buf = bytes::BytesMut::new();
        let configs = [("cleanup.policy".to_string(), "compact".to_string())];
        for v in versions(ApiKey::CreateTopics) {
            create_topic("a", -1, -1, &configs)
                .encode(&mut buf, v)
                .unwrap();
        }
        for v in versions(ApiKey::DeleteTopics) {
            delete_topic("a", v).encode(&mut buf, v).unwrap();
        }
        for v in versions(ApiKey::DeleteRecords) {
            delete_records("a", &[(0, 5), (1, -1)])
                .encode(&mut buf, v)
                .unwrap();
        }
        for v in versions(ApiKey::CreatePartitions) {
            CreatePartitionsRequest::default()
                .with_topics(vec![CreatePartitionsTopic::default()
                    .with_name(topic_name("a"))
                    .with_count(3)])
                .encode(&mut buf, v)
                .unwrap();
        }
    }
}
