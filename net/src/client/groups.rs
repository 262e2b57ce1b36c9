//! Consumer-group administration: finding a group's coordinator, ListGroups,
//! DescribeGroups, OffsetFetch, OffsetCommit, DeleteGroups, OffsetDelete.
//!
//! Requests go to the group's coordinator (FindCoordinator, cached per call); a
//! `NOT_COORDINATOR` or `COORDINATOR_LOAD_IN_PROGRESS` answer is retried after looking the
//! coordinator up again.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId, ListGroupsRequest,
    OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::consumer_protocol::{decode_assignment, Assignment};
use crate::client::limits::{RETRIES_MAX, RETRY_BACKOFF_MS};
use crate::client::{Client, ClientError, Connection, Result};

/// A group as ListGroups names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    /// Empty when the broker's ListGroups version predates states (v4).
    pub state: String,
}

/// One member as DescribeGroups describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Decoded when the group's protocol type is `consumer`, else empty.
    pub assignment: Assignment,
}

/// A DescribeGroups answer for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    /// Kafka's state names: Empty, PreparingRebalance, CompletingRebalance, Stable, Dead.
    pub state: String,
    pub protocol_type: String,
    /// The assignor the group chose (`range`, …).
    pub protocol: String,
    pub members: Vec<GroupMemberDescription>,
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub topic: String,
    pub partition: i32,
    /// -1 when nothing is committed.
    pub offset: i64,
}

/// Who commits: a member of the current generation, or an admin (generation -1, no member
/// id), which the coordinator accepts only while the group is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committer<'a> {
    pub generation_id: i32,
    pub member_id: &'a str,
    pub group_instance_id: Option<&'a str>,
}

impl Committer<'_> {
    pub const ADMIN: Committer<'static> = Committer {
        generation_id: -1,
        member_id: "",
        group_instance_id: None,
    };
}

pub(crate) fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_string()))
}

pub(crate) fn str_bytes(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn topic_name(name: &str) -> TopicName {
    TopicName(str_bytes(name))
}

/// Whether `error` means "ask FindCoordinator again and retry".
fn coordinator_moved(error: &ClientError) -> bool {
    matches!(
        error.kafka_error(),
        Some(
            ResponseError::NotCoordinator
                | ResponseError::CoordinatorNotAvailable
                | ResponseError::CoordinatorLoadInProgress
        )
    )
}

impl Client {
    /// The connection to `group`'s coordinator, found with FindCoordinator and opened if
    /// needed; retried while the coordinator is not available yet.
    pub async fn coordinator(&mut self, group: &str) -> Result<&mut Connection> {
        let (node_id, address) = self.group_coordinator(group).await?;
        self.node_connection(node_id, &address).await
    }

    /// `group`'s coordinator as (node id, host:port), retried while it is not available.
    pub async fn group_coordinator(&mut self, group: &str) -> Result<(i32, String)> {
        let mut tries = 0;
        loop {
            match self.find_coordinator(group).await {
                Err(error) if tries < RETRIES_MAX && coordinator_moved(&error) => {
                    tries += 1;
                    compio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
                }
                found => return found,
            }
        }
    }

    async fn find_coordinator(&mut self, group: &str) -> Result<(i32, String)> {
        let request = FindCoordinatorRequest::default()
            .with_key(str_bytes(group))
            .with_key_type(0);
        let response = self.bootstrap.call(&request).await?;
        ClientError::check(response.error_code, || {
            format!("finding the coordinator of group {group:?}")
        })?;
        let address = format!("{}:{}", response.host, response.port);
        self.brokers.insert(response.node_id.0, address.clone());
        Ok((response.node_id.0, address))
    }

    /// The connection to broker `node_id` at `address`, opened if needed.
    pub(crate) async fn node_connection(
        &mut self,
        node_id: i32,
        address: &str,
    ) -> Result<&mut Connection> {
        if !self.connections.contains_key(&node_id) {
            let connection = Connection::connect(address, &self.client_id).await?;
            self.connections.insert(node_id, connection);
        }
        Ok(self.connections.get_mut(&node_id).expect("inserted above"))
    }

    /// Runs `call` against `group`'s coordinator, looking the coordinator up again (up to
    /// [`RETRIES_MAX`] times) when it moved or is still loading.
    pub(crate) async fn with_coordinator<T, F>(&mut self, group: &str, mut call: F) -> Result<T>
    where
        F: AsyncFnMut(&mut Connection) -> Result<T>,
    {
        let mut tries = 0;
        loop {
            let connection = self.coordinator(group).await?;
            match call(connection).await {
                Err(error) if tries < RETRIES_MAX && coordinator_moved(&error) => {
                    tries += 1;
                    compio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
                }
                outcome => return outcome,
            }
        }
    }

    /// Every group of every broker of the cluster (ListGroups to each).
    pub async fn list_groups(&mut self) -> Result<Vec<ListedGroup>> {
        let metadata = self.metadata(&[]).await?;
        let mut groups = Vec::new();
        for broker in &metadata.brokers {
            let connection = self
                .node_connection(broker.node_id, &broker.address())
                .await?;
            let response = connection.call(&ListGroupsRequest::default()).await?;
            ClientError::check(response.error_code, || {
                format!("ListGroups to {}", broker.address())
            })?;
            groups.extend(response.groups.into_iter().map(|g| ListedGroup {
                group_id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: g.group_state.to_string(),
            }));
        }
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        groups.dedup_by(|a, b| a.group_id == b.group_id);
        Ok(groups)
    }

    /// DescribeGroups of `group`. A group the coordinator does not know is described as
    /// `Dead` with no members, as Kafka does.
    pub async fn describe_group(&mut self, group: &str) -> Result<GroupDescription> {
        let request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
        let response = self
            .with_coordinator(group, async |c| c.call(&request).await)
            .await?;
        let described = response
            .groups
            .into_iter()
            .find(|g| g.group_id.0.as_str() == group)
            .ok_or_else(|| {
                ClientError::Metadata(format!("DescribeGroups did not answer group {group:?}"))
            })?;
        ClientError::check(described.error_code, || {
            format!("describing group {group:?}")
        })?;
        let consumer = described.protocol_type.as_str() == "consumer";
        let mut members = Vec::with_capacity(described.members.len());
        for m in described.members {
            let assignment = if consumer {
                decode_assignment(&m.member_assignment)?
            } else {
                Assignment::new()
            };
            members.push(GroupMemberDescription {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.map(|i| i.to_string()),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                assignment,
            });
        }
        Ok(GroupDescription {
            group_id: group.to_string(),
            state: described.group_state.to_string(),
            protocol_type: described.protocol_type.to_string(),
            protocol: described.protocol_data.to_string(),
            members,
        })
    }

    /// The committed offsets of `group`: of `topics` (`(topic, partitions)`), or of every
    /// partition it committed when `topics` is `None`.
    pub async fn offset_fetch(
        &mut self,
        group: &str,
        topics: Option<&[(&str, Vec<i32>)]>,
    ) -> Result<Vec<CommittedOffset>> {
        let topics = topics.map(|topics| {
            topics
                .iter()
                .map(|(name, partitions)| {
                    OffsetFetchRequestTopic::default()
                        .with_name(topic_name(name))
                        .with_partition_indexes(partitions.clone())
                })
                .collect()
        });
        let request = OffsetFetchRequest::default()
            .with_group_id(group_id(group))
            .with_topics(topics);
        let response = self
            .with_coordinator(group, async |c| {
                let response = c.call(&request).await?;
                ClientError::check(response.error_code, || {
                    format!("fetching the committed offsets of group {group:?}")
                })?;
                Ok(response)
            })
            .await?;
        let mut offsets = Vec::new();
        for topic in response.topics {
            for p in topic.partitions {
                ClientError::check(p.error_code, || {
                    format!("committed offset of {}-{}", topic.name.0, p.partition_index)
                })?;
                offsets.push(CommittedOffset {
                    topic: topic.name.0.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                });
            }
        }
        offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(offsets)
    }

    /// Commits `offsets` for `group` as `committer`.
    pub async fn offset_commit(
        &mut self,
        group: &str,
        committer: &Committer<'_>,
        offsets: &[CommittedOffset],
    ) -> Result<()> {
        let request = offset_commit(group, committer, offsets);
        let response = self
            .with_coordinator(group, async |c| c.call(&request).await)
            .await?;
        for topic in &response.topics {
            for p in &topic.partitions {
                ClientError::check(p.error_code, || {
                    format!(
                        "committing the offset of {}-{} for group {group:?}",
                        topic.name.0, p.partition_index
                    )
                })?;
            }
        }
        Ok(())
    }

    /// DeleteGroups of `group` (which must be empty: else `NON_EMPTY_GROUP`).
    pub async fn delete_group(&mut self, group: &str) -> Result<()> {
        let request = DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
        let response = self
            .with_coordinator(group, async |c| c.call(&request).await)
            .await?;
        let result = response
            .results
            .iter()
            .find(|r| r.group_id.0.as_str() == group)
            .ok_or_else(|| {
                ClientError::Metadata(format!("DeleteGroups did not answer group {group:?}"))
            })?;
        ClientError::check(result.error_code, || format!("deleting group {group:?}"))
    }

    /// OffsetDelete: forgets `group`'s committed offsets of `topic`'s `partitions`.
    pub async fn offset_delete(
        &mut self,
        group: &str,
        topic: &str,
        partitions: &[i32],
    ) -> Result<()> {
        let partitions = partitions
            .iter()
            .map(|p| OffsetDeleteRequestPartition::default().with_partition_index(*p))
            .collect();
        let topic_request = OffsetDeleteRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(partitions);
        let request = OffsetDeleteRequest::default()
            .with_group_id(group_id(group))
            .with_topics(vec![topic_request]);
        let response = self
            .with_coordinator(group, async |c| c.call(&request).await)
            .await?;
        ClientError::check(response.error_code, || {
            format!("deleting the offsets of {topic} for group {group:?}")
        })?;
        for t in &response.topics {
            for p in &t.partitions {
                ClientError::check(p.error_code, || {
                    format!("deleting the offset of {topic}-{}", p.partition_index)
                })?;
            }
        }
        Ok(())
    }
}

pub(crate) fn offset_commit(
    group: &str,
    committer: &Committer<'_>,
    offsets: &[CommittedOffset],
) -> OffsetCommitRequest {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for offset in offsets {
        let partition = OffsetCommitRequestPartition::default()
            .with_partition_index(offset.partition)
            .with_committed_offset(offset.offset)
            .with_committed_leader_epoch(-1);
        match topics
            .iter_mut()
            .find(|t| t.name.0.as_str() == offset.topic)
        {
            Some(topic) => topic.partitions.push(partition),
            None => topics.push(
                OffsetCommitRequestTopic::default()
                    .with_name(topic_name(&offset.topic))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(committer.generation_id)
        .with_member_id(str_bytes(committer.member_id))
        .with_group_instance_id(committer.group_instance_id.map(str_bytes))
        .with_retention_time_ms(-1)
        .with_topics(topics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiKey;
    use kafka_protocol::protocol::Encodable;

    /// Every group request encodes at every version the client may negotiate.
    #[test]
    fn group_requests_encode_at_every_client_version() {
        let versions = |key: ApiKey| {
            let (_, min, max) = *crate::client::limits::CLIENT_VERSIONS
                .iter()
                .find(|(k, _, _)| *k == key)
                .unwrap();
            min..=max
        };
        let mut buf = bytes::BytesMut::new();
        let offsets = [CommittedOffset {
            topic: "t".into(),
            partition: 0,
            offset: 5,
        }];
        for v in versions(ApiKey::OffsetCommit) {
            let r = offset_commit("g", &Committer::ADMIN, &offsets);
            r.encode(&mut buf, v)
                .unwrap_or_else(|e| panic!("v{v}: {e}"));
        }
        for v in versions(ApiKey::FindCoordinator) {
            let r = FindCoordinatorRequest::default().with_key(str_bytes("g"));
            r.encode(&mut buf, v)
                .unwrap_or_else(|e| panic!("v{v}: {e}"));
        }
        for v in versions(ApiKey::OffsetFetch) {
            let r = OffsetFetchRequest::default().with_group_id(group_id("g"));
            r.encode(&mut buf, v)
                .unwrap_or_else(|e| panic!("v{v}: {e}"));
        }
    }
}
