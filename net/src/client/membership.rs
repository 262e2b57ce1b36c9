//! Membership of a consumer group (Kafka's classic protocol) for one consumer: JoinGroup
//! with protocol type `consumer` and the range assignor, SyncGroup (the leader computes
//! everyone's assignment), Heartbeat, OffsetCommit as a member, LeaveGroup.
//!
//! ```ignore
//! let mut member = GroupMembership::new(MembershipConfig::new("g", vec!["t".into()]));
//! let assignment = member.join(&mut client).await?.clone();
//! // … fetch, then:
//! member.commit(&mut client, &offsets).await?;
//! if member.heartbeat_if_due(&mut client).await? == Heartbeat::Rejoin { member.join(..) }
//! member.leave(&mut client).await?;
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::join_group_response::JoinGroupResponse;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest,
};

use crate::client::consumer_protocol::{
    assign_range, decode_assignment, decode_subscription, encode_assignment, encode_subscription,
    Assignment, PROTOCOL_TYPE, RANGE_ASSIGNOR,
};
use crate::client::groups::{group_id, str_bytes, CommittedOffset, Committer};
use crate::client::limits::JOIN_ATTEMPTS_MAX;
use crate::client::{Client, ClientError, Result};

/// How a member joins (Kafka's consumer settings of the same names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipConfig {
    pub group: String,
    pub topics: Vec<String>,
    /// `session.timeout.ms`.
    pub session_timeout_ms: i32,
    /// `max.poll.interval.ms`: how long a rebalance may wait for this member.
    pub rebalance_timeout_ms: i32,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval_ms: u64,
    /// `group.instance.id` (static membership, KIP-345).
    pub group_instance_id: Option<String>,
}

impl MembershipConfig {
    /// Kafka's consumer defaults for `group` subscribed to `topics`.
    pub fn new(group: &str, topics: Vec<String>) -> Self {
        Self {
            group: group.to_string(),
            topics,
            session_timeout_ms: 45_000,
            rebalance_timeout_ms: 300_000,
            heartbeat_interval_ms: 3_000,
            group_instance_id: None,
        }
    }
}

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    /// Nothing changed (or no heartbeat was due).
    Stable,
    /// The group rebalances or fenced this member: call [`GroupMembership::join`].
    Rejoin,
}

/// One consumer's membership of a group. Lives with its [`Client`] on one thread.
#[derive(Debug)]
pub struct GroupMembership {
    config: MembershipConfig,
    member_id: String,
    generation_id: i32,
    assignment: Assignment,
    last_heartbeat: Instant,
}

impl GroupMembership {
    pub fn new(config: MembershipConfig) -> Self {
        Self {
            config,
            member_id: String::new(),
            generation_id: -1,
            assignment: Assignment::new(),
            last_heartbeat: Instant::now(),
        }
    }

    pub fn config(&self) -> &MembershipConfig {
        &self.config
    }

    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    pub fn assignment(&self) -> &Assignment {
        &self.assignment
    }

    /// Joins (or rejoins) the group and syncs; returns this member's assignment.
    pub async fn join(&mut self, client: &mut Client) -> Result<&Assignment> {
        for _attempt in 0..JOIN_ATTEMPTS_MAX {
            let joined = self.join_group(client).await?;
            let Some(joined) = joined else { continue };
            match self.sync_group(client, &joined).await {
                Ok(assignment) => {
                    self.assignment = assignment;
                    self.last_heartbeat = Instant::now();
                    return Ok(&self.assignment);
                }
                Err(error) if needs_rejoin(&error) => {
                    if error.kafka_error() == Some(ResponseError::UnknownMemberId) {
                        self.member_id.clear();
                    }
                }
                Err(error) => return Err(error),
            }
        }
        Err(ClientError::Metadata(format!(
            "group {:?}: no stable membership after {JOIN_ATTEMPTS_MAX} join attempts",
            self.config.group
        )))
    }

    /// One JoinGroup; `None` when it must be repeated (a member id was just assigned,
    /// or the one we had is unknown).
    async fn join_group(&mut self, client: &mut Client) -> Result<Option<JoinGroupResponse>> {
        let topics: Vec<&str> = self.config.topics.iter().map(String::as_str).collect();
        let protocol = JoinGroupRequestProtocol::default()
            .with_name(str_bytes(RANGE_ASSIGNOR))
            .with_metadata(encode_subscription(&topics));
        let request = JoinGroupRequest::default()
            .with_group_id(group_id(&self.config.group))
            .with_session_timeout_ms(self.config.session_timeout_ms)
            .with_rebalance_timeout_ms(self.config.rebalance_timeout_ms)
            .with_member_id(str_bytes(&self.member_id))
            .with_group_instance_id(self.config.group_instance_id.as_deref().map(str_bytes))
            .with_protocol_type(str_bytes(PROTOCOL_TYPE))
            .with_protocols(vec![protocol]);
        let group = self.config.group.clone();
        let response = client
            .with_coordinator(&group, async |c| c.call(&request).await)
            .await?;
        match ResponseError::try_from_code(response.error_code) {
            Some(ResponseError::MemberIdRequired) => {
                self.member_id = response.member_id.to_string();
                Ok(None)
            }
            Some(ResponseError::UnknownMemberId) => {
                self.member_id.clear();
                Ok(None)
            }
            Some(ResponseError::RebalanceInProgress) => Ok(None),
            _ => {
                ClientError::check(response.error_code, || format!("joining group {group:?}"))?;
                self.member_id = response.member_id.to_string();
                self.generation_id = response.generation_id;
                Ok(Some(response))
            }
        }
    }

    /// SyncGroup, with everyone's assignment when this member leads.
    async fn sync_group(
        &self,
        client: &mut Client,
        joined: &JoinGroupResponse,
    ) -> Result<Assignment> {
        let assignments = if joined.leader == joined.member_id && !joined.skip_assignment {
            leader_assignments(client, joined).await?
        } else {
            Vec::new()
        };
        let request = SyncGroupRequest::default()
            .with_group_id(group_id(&self.config.group))
            .with_generation_id(self.generation_id)
            .with_member_id(str_bytes(&self.member_id))
            .with_group_instance_id(self.config.group_instance_id.as_deref().map(str_bytes))
            .with_protocol_type(Some(str_bytes(PROTOCOL_TYPE)))
            .with_protocol_name(Some(str_bytes(RANGE_ASSIGNOR)))
            .with_assignments(assignments);
        let group = self.config.group.clone();
        let response = client
            .with_coordinator(&group, async |c| c.call(&request).await)
            .await?;
        ClientError::check(response.error_code, || format!("syncing group {group:?}"))?;
        decode_assignment(&response.assignment)
    }

    /// Heartbeats when `heartbeat.interval.ms` passed since the last one.
    pub async fn heartbeat_if_due(&mut self, client: &mut Client) -> Result<Heartbeat> {
        let interval = Duration::from_millis(self.config.heartbeat_interval_ms);
        if self.last_heartbeat.elapsed() < interval {
            return Ok(Heartbeat::Stable);
        }
        let request = HeartbeatRequest::default()
            .with_group_id(group_id(&self.config.group))
            .with_generation_id(self.generation_id)
            .with_member_id(str_bytes(&self.member_id))
            .with_group_instance_id(self.config.group_instance_id.as_deref().map(str_bytes));
        let group = self.config.group.clone();
        let response = client
            .with_coordinator(&group, async |c| c.call(&request).await)
            .await?;
        self.last_heartbeat = Instant::now();
        match ClientError::check(response.error_code, || {
            format!("heartbeat to group {group:?}")
        }) {
            Ok(()) => Ok(Heartbeat::Stable),
            Err(error) if needs_rejoin(&error) => {
                if error.kafka_error() == Some(ResponseError::UnknownMemberId) {
                    self.member_id.clear();
                }
                Ok(Heartbeat::Rejoin)
            }
            Err(error) => Err(error),
        }
    }

    /// Commits `offsets` as this member of the current generation.
    pub async fn commit(&self, client: &mut Client, offsets: &[CommittedOffset]) -> Result<()> {
        let committer = Committer {
            generation_id: self.generation_id,
            member_id: &self.member_id,
            group_instance_id: self.config.group_instance_id.as_deref(),
        };
        client
            .offset_commit(&self.config.group, &committer, offsets)
            .await
    }

    /// LeaveGroup, so the others rebalance at once instead of after the session timeout.
    pub async fn leave(&mut self, client: &mut Client) -> Result<()> {
        if self.member_id.is_empty() {
            return Ok(());
        }
        let member = MemberIdentity::default()
            .with_member_id(str_bytes(&self.member_id))
            .with_group_instance_id(self.config.group_instance_id.as_deref().map(str_bytes));
        let request = LeaveGroupRequest::default()
            .with_group_id(group_id(&self.config.group))
            .with_members(vec![member]);
        let group = self.config.group.clone();
        let response = client
            .with_coordinator(&group, async |c| c.call(&request).await)
            .await?;
        self.member_id.clear();
        self.assignment.clear();
        ClientError::check(response.error_code, || format!("leaving group {group:?}"))?;
        for m in &response.members {
            ClientError::check(m.error_code, || format!("leaving group {group:?}"))?;
        }
        Ok(())
    }
}

/// Errors after which the member joins again.
fn needs_rejoin(error: &ClientError) -> bool {
    matches!(
        error.kafka_error(),
        Some(
            ResponseError::RebalanceInProgress
                | ResponseError::IllegalGeneration
                | ResponseError::UnknownMemberId
        )
    )
}

/// The leader's work: decode every member's subscription, learn the partition counts,
/// run the range assignor.
async fn leader_assignments(
    client: &mut Client,
    joined: &JoinGroupResponse,
) -> Result<Vec<SyncGroupRequestAssignment>> {
    let mut members = Vec::with_capacity(joined.members.len());
    for member in &joined.members {
        let topics = decode_subscription(&member.metadata)?;
        members.push((member.member_id.to_string(), topics));
    }
    let mut topics: Vec<String> = members.iter().flat_map(|(_, t)| t.clone()).collect();
    topics.sort_unstable();
    topics.dedup();
    let mut partition_counts = BTreeMap::new();
    for topic in topics {
        let metadata = client.topic(&topic).await?;
        let count = i32::try_from(metadata.partitions.len()).expect("partition count fits i32");
        partition_counts.insert(topic, count);
    }
    Ok(assign_range(&members, &partition_counts)
        .into_iter()
        .map(|(member_id, assignment)| {
            SyncGroupRequestAssignment::default()
                .with_member_id(str_bytes(&member_id))
                .with_assignment(encode_assignment(&assignment))
        })
        .collect())
}
