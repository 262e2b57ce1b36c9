//! A cluster's admin calls, as Kafka's admin client makes them: DescribeCluster (the brokers,
//! fenced ones included, and the controller id), DescribeQuorum (the metadata quorum),
//! ElectLeaders, and DescribeTopicPartitions (paged by its cursor).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{
    DescribeClusterRequest, DescribeQuorumRequest, DescribeTopicPartitionsRequest,
    ElectLeadersRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::client::error::{ClientError, Result};
use crate::client::requests::REQUEST_TIMEOUT_MS;
use crate::client::Client;

/// Kafka's metadata log partition, the one DescribeQuorum describes.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
/// Most DescribeTopicPartitions pages one call follows.
pub const DESCRIBE_TOPIC_PARTITIONS_PAGES_MAX: usize = 10_000;
/// Partitions asked per DescribeTopicPartitions page (Kafka's admin client default).
pub const DESCRIBE_TOPIC_PARTITIONS_PAGE_PARTITIONS: i32 = 2000;

/// One broker as DescribeCluster lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterBroker {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    pub fenced: bool,
}

/// DescribeCluster's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    pub cluster_id: String,
    /// A live broker admin requests may go to (-1: none).
    pub controller_id: i32,
    pub brokers: Vec<ClusterBroker>,
}

/// One replica of the metadata log (Kafka's `QuorumInfo.ReplicaState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumReplica {
    pub id: i32,
    pub directory_id: Uuid,
    pub log_end_offset: i64,
    /// Wall-clock ms, -1 unknown.
    pub last_fetch_timestamp: i64,
    pub last_caught_up_timestamp: i64,
}

/// DescribeQuorum's answer (Kafka's `QuorumInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumInfo {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<QuorumReplica>,
    pub observers: Vec<QuorumReplica>,
    /// Voters' endpoints (v2): node id → `LISTENER://host:port`.
    pub nodes: Vec<(i32, Vec<String>)>,
}

/// One partition's ElectLeaders outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionOutcome {
    pub topic: String,
    pub partition: i32,
    /// None: elected.
    pub error: Option<(ResponseError, Option<String>)>,
}

/// One partition as DescribeTopicPartitions describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescription {
    pub partition: i32,
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub offline_replicas: Vec<i32>,
    pub eligible_leader_replicas: Option<Vec<i32>>,
    pub last_known_elr: Option<Vec<i32>>,
    pub error: Option<ResponseError>,
}

/// One topic as DescribeTopicPartitions describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    pub name: String,
    pub topic_id: Uuid,
    pub is_internal: bool,
    pub partitions: Vec<PartitionDescription>,
    pub error: Option<ResponseError>,
}

fn ids(list: &[kafka_protocol::messages::BrokerId]) -> Vec<i32> {
    list.iter().map(|b| b.0).collect()
}

impl Client {
    /// DescribeCluster, fenced brokers included (v2+; flagged).
    pub async fn describe_cluster(&mut self) -> Result<ClusterDescription> {
        let request = DescribeClusterRequest::default()
            .with_include_fenced_brokers(true)
            .with_endpoint_type(1);
        let response = self.bootstrap.call(&request).await?;
        let address = self.bootstrap.address().to_string();
        let message = response.error_message.as_ref().map(|m| m.to_string());
        ClientError::check_with_message(response.error_code, message, || {
            format!("DescribeCluster to {address}")
        })?;
        Ok(ClusterDescription {
            cluster_id: response.cluster_id.to_string(),
            controller_id: response.controller_id.0,
            brokers: response
                .brokers
                .iter()
                .map(|b| ClusterBroker {
                    id: b.broker_id.0,
                    host: b.host.to_string(),
                    port: b.port,
                    rack: b.rack.as_ref().map(|r| r.to_string()),
                    fenced: b.is_fenced,
                })
                .collect(),
        })
    }

    /// DescribeQuorum of `__cluster_metadata-0`.
    pub async fn describe_quorum(&mut self) -> Result<QuorumInfo> {
        let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
            .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
        let response = self.bootstrap.call(&request).await?;
        let address = self.bootstrap.address().to_string();
        let context = || format!("DescribeQuorum to {address}");
        let message = response.error_message.as_ref().map(|m| m.to_string());
        ClientError::check_with_message(response.error_code, message, context)?;
        let partition = response
            .topics
            .iter()
            .find(|t| *t.topic_name.0 == *METADATA_TOPIC)
            .and_then(|t| t.partitions.iter().find(|p| p.partition_index == 0))
            .ok_or_else(|| {
                ClientError::Metadata(format!(
                    "{address}: DescribeQuorum did not answer {METADATA_TOPIC}-0"
                ))
            })?;
        let message = partition.error_message.as_ref().map(|m| m.to_string());
        ClientError::check_with_message(partition.error_code, message, context)?;
        let replica =
            |r: &kafka_protocol::messages::describe_quorum_response::ReplicaState| QuorumReplica {
                id: r.replica_id.0,
                directory_id: r.replica_directory_id,
                log_end_offset: r.log_end_offset,
                last_fetch_timestamp: r.last_fetch_timestamp,
                last_caught_up_timestamp: r.last_caught_up_timestamp,
            };
        Ok(QuorumInfo {
            leader_id: partition.leader_id.0,
            leader_epoch: partition.leader_epoch,
            high_watermark: partition.high_watermark,
            voters: partition.current_voters.iter().map(replica).collect(),
            observers: partition.observers.iter().map(replica).collect(),
            nodes: response
                .nodes
                .iter()
                .map(|n| {
                    let endpoints = n
                        .listeners
                        .iter()
                        .map(|l| format!("{}://{}:{}", l.name, l.host, l.port))
                        .collect();
                    (n.node_id.0, endpoints)
                })
                .collect(),
        })
    }

    /// ElectLeaders of `election_type` (0 preferred, 1 unclean) for `partitions`, or for
    /// every partition with `None`.
    pub async fn elect_leaders(
        &mut self,
        election_type: i8,
        partitions: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<ElectionOutcome>> {
        let topics = partitions.map(|list| {
            list.iter()
                .map(|(topic, p)| {
                    TopicPartitions::default()
                        .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                        .with_partitions(p.clone())
                })
                .collect()
        });
        let request = ElectLeadersRequest::default()
            .with_election_type(election_type)
            .with_topic_partitions(topics)
            .with_timeout_ms(REQUEST_TIMEOUT_MS);
        let response = self.bootstrap.call(&request).await?;
        let address = self.bootstrap.address().to_string();
        ClientError::check(response.error_code, || format!("ElectLeaders to {address}"))?;
        Ok(response
            .replica_election_results
            .iter()
            .flat_map(|t| {
                t.partition_result.iter().map(|p| ElectionOutcome {
                    topic: t.topic.0.to_string(),
                    partition: p.partition_id,
                    error: ResponseError::try_from_code(p.error_code)
                        .map(|e| (e, p.error_message.as_ref().map(|m| m.to_string()))),
                })
            })
            .collect())
    }

    /// DescribeTopicPartitions of `topics` (every topic when empty), following the cursor
    /// until the broker has answered every partition.
    pub async fn describe_topic_partitions(
        &mut self,
        topics: &[&str],
    ) -> Result<Vec<TopicDescription>> {
        let asked: Vec<TopicRequest> = topics
            .iter()
            .map(|t| {
                TopicRequest::default().with_name(TopicName(StrBytes::from_string(t.to_string())))
            })
            .collect();
        let mut cursor: Option<Cursor> = None;
        let mut out: Vec<TopicDescription> = Vec::new();
        for _ in 0..DESCRIBE_TOPIC_PARTITIONS_PAGES_MAX {
            let request = DescribeTopicPartitionsRequest::default()
                .with_topics(asked.clone())
                .with_response_partition_limit(DESCRIBE_TOPIC_PARTITIONS_PAGE_PARTITIONS)
                .with_cursor(cursor.take());
            let response = self.bootstrap.call(&request).await?;
            for t in &response.topics {
                let topic = topic_description(t);
                match out.last_mut() {
                    Some(last) if last.name == topic.name => {
                        last.partitions.extend(topic.partitions)
                    }
                    _ => out.push(topic),
                }
            }
            let Some(next) = &response.next_cursor else {
                return Ok(out);
            };
            cursor = Some(
                Cursor::default()
                    .with_topic_name(next.topic_name.clone())
                    .with_partition_index(next.partition_index),
            );
        }
        Err(ClientError::Metadata(format!(
            "{}: DescribeTopicPartitions still had more after {DESCRIBE_TOPIC_PARTITIONS_PAGES_MAX} pages",
            self.bootstrap.address()
        )))
    }
}

fn topic_description(
    t: &kafka_protocol::messages::describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic,
) -> TopicDescription {
    TopicDescription {
        name: t
            .name
            .as_ref()
            .map_or_else(String::new, |n| n.0.to_string()),
        topic_id: t.topic_id,
        is_internal: t.is_internal,
        error: ResponseError::try_from_code(t.error_code),
        partitions: t
            .partitions
            .iter()
            .map(|p| PartitionDescription {
                partition: p.partition_index,
                leader_id: p.leader_id.0,
                leader_epoch: p.leader_epoch,
                replicas: ids(&p.replica_nodes),
                isr: ids(&p.isr_nodes),
                offline_replicas: ids(&p.offline_replicas),
                eligible_leader_replicas: p.eligible_leader_replicas.as_deref().map(ids),
                last_known_elr: p.last_known_elr.as_deref().map(ids),
                error: ResponseError::try_from_code(p.error_code),
            })
            .collect(),
    }
}
