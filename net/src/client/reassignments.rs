//! Kafka's AlterPartitionReassignments (API 45) and ListPartitionReassignments (API 46), as
//! `kafka-reassign-partitions` sends them (KIP-455): to a broker, which forwards them to the
//! active controller.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, ListPartitionReassignmentsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::error::{ClientError, Result};
use crate::client::requests::REQUEST_TIMEOUT_MS;
use crate::client::Client;

/// One partition's target: its replicas, or `None` to cancel its reassignment.
pub type ReassignmentTarget = (String, i32, Option<Vec<i32>>);

/// One partition's outcome of AlterPartitionReassignments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignmentOutcome {
    pub topic: String,
    pub partition: i32,
    /// None: accepted.
    pub error: Option<(ResponseError, Option<String>)>,
}

/// A partition being reassigned (Kafka's `PartitionReassignment`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingReassignment {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    pub removing_replicas: Vec<i32>,
}

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

fn ids(list: &[BrokerId]) -> Vec<i32> {
    list.iter().map(|b| b.0).collect()
}

/// The request for `targets`, grouped by topic in the order first named.
pub fn alter_request(targets: &[ReassignmentTarget]) -> AlterPartitionReassignmentsRequest {
    let mut topics: Vec<ReassignableTopic> = Vec::new();
    for (topic, partition, replicas) in targets {
        let p = ReassignablePartition::default()
            .with_partition_index(*partition)
            .with_replicas(
                replicas
                    .as_ref()
                    .map(|r| r.iter().copied().map(BrokerId).collect()),
            );
        match topics.iter_mut().find(|t| *t.name.0 == **topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                ReassignableTopic::default()
                    .with_name(name(topic))
                    .with_partitions(vec![p]),
            ),
        }
    }
    AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(REQUEST_TIMEOUT_MS)
        .with_allow_replication_factor_change(true)
        .with_topics(topics)
}

impl Client {
    /// AlterPartitionReassignments of `targets`: each partition's outcome (a top-level
    /// error, such as an unreachable controller, fails the call).
    pub async fn alter_partition_reassignments(
        &mut self,
        targets: &[ReassignmentTarget],
    ) -> Result<Vec<ReassignmentOutcome>> {
        let request = alter_request(targets);
        let response = self.bootstrap.call(&request).await?;
        let address = self.bootstrap.address().to_string();
        let message = response.error_message.as_ref().map(|m| m.to_string());
        ClientError::check_with_message(response.error_code, message, || {
            format!("AlterPartitionReassignments to {address}")
        })?;
        Ok(response
            .responses
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| ReassignmentOutcome {
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    error: ResponseError::try_from_code(p.error_code)
                        .map(|e| (e, p.error_message.as_ref().map(|m| m.to_string()))),
                })
            })
            .collect())
    }

    /// ListPartitionReassignments of `partitions` (per topic), or of every topic.
    pub async fn list_partition_reassignments(
        &mut self,
        partitions: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<OngoingReassignment>> {
        let topics = partitions.map(|list| {
            list.iter()
                .map(|(topic, p)| {
                    ListPartitionReassignmentsTopics::default()
                        .with_name(name(topic))
                        .with_partition_indexes(p.clone())
                })
                .collect()
        });
        let request = ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(REQUEST_TIMEOUT_MS)
            .with_topics(topics);
        let response = self.bootstrap.call(&request).await?;
        let address = self.bootstrap.address().to_string();
        let message = response.error_message.as_ref().map(|m| m.to_string());
        ClientError::check_with_message(response.error_code, message, || {
            format!("ListPartitionReassignments to {address}")
        })?;
        Ok(response
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| OngoingReassignment {
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    replicas: ids(&p.replicas),
                    adding_replicas: ids(&p.adding_replicas),
                    removing_replicas: ids(&p.removing_replicas),
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_grouped_by_topic_in_the_order_named() {
        let req = alter_request(&[
            ("b".into(), 1, Some(vec![2, 3])),
            ("a".into(), 0, None),
            ("b".into(), 0, Some(vec![1])),
        ]);
        let names: Vec<&str> = req.topics.iter().map(|t| &*t.name.0).collect();
        assert_eq!(names, ["b", "a"]);
        let b: Vec<(i32, Option<Vec<i32>>)> = req.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.replicas.as_deref().map(ids)))
            .collect();
        assert_eq!(b, vec![(1, Some(vec![2, 3])), (0, Some(vec![1]))]);
        assert_eq!(req.topics[1].partitions[0].replicas, None, "a cancel");
    }
}
