//! `console-consumer --group G`: consume as a member of a consumer group, like
//! kafka-console-consumer. Joins with the range assignor, resumes each assigned partition
//! at its committed offset (else `--from-beginning` / latest, Kafka's
//! `auto.offset.reset`), commits what was printed after each round and on exit, heartbeats
//! between fetches, rejoins when the group rebalances, and leaves the group on exit.

use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use sluice_net::client::membership::{GroupMembership, Heartbeat, MembershipConfig};
use sluice_net::client::{Client, CommittedOffset};

use super::{Consumer, ConsumerArgs, ConsumerSettings, Formatter};
use crate::error::{Result, ToolError};

/// The membership and what was last committed.
pub(super) struct GroupState {
    membership: GroupMembership,
    /// `(partition, offset)` as last committed (or resumed from).
    committed: Vec<(i32, i64)>,
    /// `enable.auto.commit`: commit what was printed (false: never commit).
    auto_commit: bool,
}

pub(super) async fn run(
    client: &mut Client,
    group: &str,
    args: &ConsumerArgs,
    formatter: Formatter,
    settings: ConsumerSettings,
) -> Result<()> {
    if args.partition.is_some() || args.offset.is_some() {
        return Err(ToolError::new(
            "--group cannot be used with --partition or --offset: the group assigns the \
             partitions and its committed offsets say where to start",
        ));
    }
    if !client.advertises(ApiKey::JoinGroup).await? {
        return Err(ToolError::new(format!(
            "--group {group} needs consumer-group support (JoinGroup), which the broker at {} \
             does not advertise; consume without --group (all partitions, or --partition P \
             --offset N)",
            args.bootstrap_server
        )));
    }
    let topic = settings.look_up(client, &args.topic).await?;
    let mut config = MembershipConfig::new(group, vec![args.topic.clone()]);
    config.session_timeout_ms = settings.session_timeout_ms;
    config.rebalance_timeout_ms = settings.rebalance_timeout_ms;
    config.heartbeat_interval_ms = settings.heartbeat_interval_ms;
    config.group_instance_id = settings.group_instance_id.clone();
    let mut consumer = Consumer {
        client,
        topic,
        positions: Vec::new(),
        formatter,
        reset: settings.reset,
        fetch: settings.fetch,
        consumed: 0,
        max_messages: args.max_messages,
        group: Some(GroupState {
            membership: GroupMembership::new(config),
            committed: Vec::new(),
            auto_commit: settings.auto_commit,
        }),
    };
    let outcome = match consumer.rejoin().await {
        Ok(()) => {
            consumer
                .run(args.timeout_ms.map(Duration::from_millis))
                .await
        }
        Err(error) => Err(error),
    };
    let finished = consumer.finish_group().await;
    eprintln!("Processed a total of {} messages", consumer.consumed);
    outcome.and(finished)
}

impl Consumer<'_> {
    fn group_state(&mut self) -> &mut GroupState {
        self.group.as_mut().expect("a group consumer has a group")
    }

    /// Joins (again) and positions every assigned partition at its committed offset, or
    /// per `auto.offset.reset` when nothing is committed.
    async fn rejoin(&mut self) -> Result<()> {
        let topic = self.topic.name.clone();
        let mut group = self.group.take().expect("a group consumer has a group");
        let joined = group.membership.join(self.client).await.cloned();
        let group_id = group_id(&group);
        self.group = Some(group);
        let partitions = joined?.get(&topic).cloned().unwrap_or_default();
        let committed = if partitions.is_empty() {
            Vec::new()
        } else {
            let wanted = [(topic.as_str(), partitions.clone())];
            self.client.offset_fetch(&group_id, Some(&wanted)).await?
        };
        let mut positions = Vec::with_capacity(partitions.len());
        for partition in partitions {
            let found = committed
                .iter()
                .find(|c| c.partition == partition && c.offset >= 0);
            let offset = match (found, self.reset) {
                (Some(c), _) => c.offset,
                (None, Some(reset)) => self.client.list_offsets(&topic, partition, reset).await?,
                (None, None) => {
                    return Err(ToolError::new(format!(
                        "Undefined offset with no reset policy for partitions: \
                         [{topic}-{partition}] (auto.offset.reset=none and group {group_id} \
                         committed nothing there)"
                    )))
                }
            };
            positions.push((partition, offset));
        }
        self.group_state().committed = positions.clone();
        self.positions = positions;
        Ok(())
    }

    /// After each fetch round: commit what was printed, heartbeat, rejoin on a rebalance.
    pub(super) async fn group_round(&mut self) -> Result<()> {
        if self.group.is_none() {
            return Ok(());
        }
        self.commit().await?;
        let mut group = self.group.take().expect("checked above");
        let heartbeat = group.membership.heartbeat_if_due(self.client).await;
        self.group = Some(group);
        if heartbeat? == Heartbeat::Rejoin {
            self.rejoin().await?;
        }
        Ok(())
    }

    /// Commits the positions that moved since the last commit.
    async fn commit(&mut self) -> Result<()> {
        let group = self.group.as_ref().expect("a group consumer has a group");
        if !group.auto_commit || group.committed == self.positions {
            return Ok(());
        }
        let offsets: Vec<CommittedOffset> = self
            .positions
            .iter()
            .map(|&(partition, offset)| CommittedOffset {
                topic: self.topic.name.clone(),
                partition,
                offset,
            })
            .collect();
        group.membership.commit(self.client, &offsets).await?;
        self.group_state().committed = self.positions.clone();
        Ok(())
    }

    /// On exit: commit, then LeaveGroup so the others rebalance at once.
    async fn finish_group(&mut self) -> Result<()> {
        let committed = self.commit().await;
        let mut group = self.group.take().expect("a group consumer has a group");
        let left = group.membership.leave(self.client).await;
        self.group = Some(group);
        committed?;
        left.map_err(ToolError::from)
    }
}

fn group_id(group: &GroupState) -> String {
    group.membership.config().group.clone()
}
