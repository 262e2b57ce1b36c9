//! The controller: the one place that changes cluster metadata (topic creation and deletion).
//! It runs on shard 0 and handles one command at a time, so two CreateTopics for the same
//! name cannot interleave. It creates partitions on their owning shards, then publishes the
//! new snapshot to every shard and waits for each to acknowledge before answering.

use std::rc::Rc;
use std::sync::Arc;

use futures_channel::oneshot;
use futures_util::future::join_all;
use kafka_protocol::error::ResponseError;
use sluice_engine::TopicId;

use crate::metadata::{new_topic, validate_topic_name, ClusterMetadata, PartitionInfo, TopicInfo};
use crate::msg::{call, Peers, ShardMsg};
use crate::ops::{admin_routed, PartitionAdmin};
use crate::shard::{Shard, TopicPartition};
use crate::topic_config::TopicConfig;

/// Controller commands waiting at most.
pub const CONTROLLER_QUEUE_MAX: usize = 256;
/// Partitions one topic may have (Kafka has no hard cap; descriptors are our budget).
pub const TOPIC_PARTITIONS_MAX: i32 = 100_000;
/// Descriptors kept free for sockets, pipes and read handles when budgeting partitions
/// (each partition holds its active segment open).
pub const DESCRIPTORS_RESERVED: u64 = 2048;

pub type ControllerResult<T> = Result<T, (i16, String)>;

pub enum ControllerCmd {
    CreateTopic {
        name: String,
        partitions: i32,
        config: TopicConfig,
        /// How many replicas, or which (a single node checked it is itself already).
        replicas: Replicas,
        validate_only: bool,
        reply: oneshot::Sender<ControllerResult<Arc<TopicInfo>>>,
    },
    DeleteTopic {
        name: String,
        reply: oneshot::Sender<ControllerResult<Arc<TopicInfo>>>,
    },
    /// AlterConfigs / IncrementalAlterConfigs for one topic.
    AlterTopicConfig {
        name: String,
        change: ConfigChange,
        validate_only: bool,
        reply: oneshot::Sender<ControllerResult<()>>,
    },
    /// AlterConfigs / IncrementalAlterConfigs of the broker resource (`dynamic_config`):
    /// this broker's (`per_broker`) or the cluster default.
    AlterBrokerConfig {
        per_broker: bool,
        change: ConfigChange,
        validate_only: bool,
        reply: oneshot::Sender<ControllerResult<()>>,
    },
    /// CreatePartitions: grow `name` to `count` partitions.
    CreatePartitions {
        name: String,
        count: i32,
        validate_only: bool,
        reply: oneshot::Sender<ControllerResult<()>>,
    },
}

/// A new topic's replicas: a replication factor, or CreateTopics' explicit assignments.
#[derive(Debug, Clone)]
pub enum Replicas {
    Factor(i16),
    Assigned(Vec<Vec<i32>>),
}

/// How AlterConfigs-style requests change a topic's overrides.
pub enum ConfigChange {
    /// AlterConfigs: the new complete set of overrides.
    Replace(Vec<(String, String)>),
    /// IncrementalAlterConfigs: (key, operation, value) with Kafka's operations.
    Incremental(Vec<(String, i8, Option<String>)>),
}

/// Kafka's IncrementalAlterConfigs operations.
pub const OP_SET: i8 = 0;
pub const OP_DELETE: i8 = 1;
pub const OP_APPEND: i8 = 2;
pub const OP_SUBTRACT: i8 = 3;

/// Lives on shard 0.
pub struct Controller {
    tx: async_channel::Sender<ControllerCmd>,
    rx: async_channel::Receiver<ControllerCmd>,
}

impl Default for Controller {
    fn default() -> Self {
        Controller::new()
    }
}

impl Controller {
    pub fn new() -> Controller {
        let (tx, rx) = async_channel::bounded(CONTROLLER_QUEUE_MAX);
        Controller { tx, rx }
    }

    pub async fn submit(&self, cmd: ControllerCmd) {
        let _ = self.tx.send(cmd).await;
    }

    pub async fn run(&self, shard: Rc<Shard>) {
        while let Ok(cmd) = self.rx.recv().await {
            if let Some(handle) = &shard.broker.cluster {
                crate::cluster::serve_cmd(&shard, handle, cmd).await;
                continue;
            }
            match cmd {
                ControllerCmd::CreateTopic {
                    name,
                    partitions,
                    config,
                    validate_only,
                    reply,
                    ..
                } => {
                    let created =
                        create_topic(&shard, &name, (partitions, config), validate_only).await;
                    let _ = reply.send(created);
                }
                ControllerCmd::DeleteTopic { name, reply } => {
                    let _ = reply.send(delete_topic(&shard, &name).await);
                }
                ControllerCmd::AlterTopicConfig {
                    name,
                    change,
                    validate_only,
                    reply,
                } => {
                    let r = alter_topic_config(&shard, &name, change, validate_only).await;
                    let _ = reply.send(r);
                }
                ControllerCmd::AlterBrokerConfig {
                    per_broker,
                    change,
                    validate_only,
                    reply,
                } => {
                    let r = crate::dynamic_config::alter_on_controller(
                        &shard,
                        per_broker,
                        change,
                        validate_only,
                    )
                    .await;
                    let _ = reply.send(r);
                }
                ControllerCmd::CreatePartitions {
                    name,
                    count,
                    validate_only,
                    reply,
                } => {
                    let r = create_partitions(&shard, &name, count, validate_only).await;
                    let _ = reply.send(r);
                }
            }
        }
    }
}

/// Asks the controller (from any shard) to create a topic with the broker's defaults.
pub async fn request_create(
    shard: &Shard,
    name: &str,
    partitions: i32,
    validate_only: bool,
) -> ControllerResult<Arc<TopicInfo>> {
    let replicas = Replicas::Factor(shard.config.default_replication_factor);
    request_create_with_config(
        shard,
        name,
        (partitions, TopicConfig::default(), replicas),
        validate_only,
    )
    .await
}

/// Asks the controller to create a topic with `(partitions, config)`.
pub async fn request_create_with_config(
    shard: &Shard,
    name: &str,
    (partitions, config, replicas): (i32, TopicConfig, Replicas),
    validate_only: bool,
) -> ControllerResult<Arc<TopicInfo>> {
    let name = name.to_string();
    ask(shard, |reply| ControllerCmd::CreateTopic {
        name,
        partitions,
        config,
        replicas,
        validate_only,
        reply,
    })
    .await
}

/// Sends a command to the controller and waits for its answer.
pub async fn ask<T>(
    shard: &Shard,
    make: impl FnOnce(oneshot::Sender<ControllerResult<T>>) -> ControllerCmd,
) -> ControllerResult<T> {
    call(&shard.peers, 0, |reply| ShardMsg::Controller(make(reply)))
        .await
        .unwrap_or_else(|_| {
            Err((
                ResponseError::NotController.code(),
                "the controller shard stopped".into(),
            ))
        })
}

pub async fn request_delete(shard: &Shard, name: &str) -> ControllerResult<Arc<TopicInfo>> {
    let name = name.to_string();
    call(&shard.peers, 0, |reply| {
        ShardMsg::Controller(ControllerCmd::DeleteTopic { name, reply })
    })
    .await
    .unwrap_or_else(|_| {
        Err((
            ResponseError::NotController.code(),
            "the controller shard stopped".into(),
        ))
    })
}

fn check_create(
    shard: &Shard,
    meta: &ClusterMetadata,
    name: &str,
    partitions: i32,
) -> ControllerResult<()> {
    validate_topic_name(name).map_err(|m| (ResponseError::InvalidTopicException.code(), m))?;
    if meta.topic(name).is_some() {
        return Err((
            ResponseError::TopicAlreadyExists.code(),
            format!("Topic '{name}' already exists."),
        ));
    }
    if !(1..=TOPIC_PARTITIONS_MAX).contains(&partitions) {
        return Err((
            ResponseError::InvalidPartitions.code(),
            format!(
                "Number of partitions must be in [1, {TOPIC_PARTITIONS_MAX}], got {partitions}."
            ),
        ));
    }
    let budget = partition_budget();
    let total = meta.partition_count() as u64 + partitions as u64;
    if total > budget {
        return Err((
            ResponseError::InvalidPartitions.code(),
            format!(
                "Creating {partitions} partitions would make {total} on this broker, over its budget of {budget} \
                 (each partition keeps its active segment open; raise the open-files limit, e.g. LimitNOFILE)"
            ),
        ));
    }
    let _ = shard;
    Ok(())
}

/// Partitions this broker can hold within its open-files limit.
pub fn partition_budget() -> u64 {
    let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap_or((1024, 1024));
    soft.saturating_sub(DESCRIPTORS_RESERVED)
}

async fn create_topic(
    shard: &Rc<Shard>,
    name: &str,
    (partitions, config): (i32, TopicConfig),
    validate_only: bool,
) -> ControllerResult<Arc<TopicInfo>> {
    let meta = shard.metadata();
    check_create(shard, &meta, name, partitions)?;
    let topic = Arc::new(new_topic(
        name,
        TopicId(uuid::Uuid::new_v4()),
        partitions,
        shard.shard_count(),
    ));
    if validate_only {
        return Ok(topic);
    }
    let failures = create_on_owners(shard, &topic, &topic.partitions, Arc::new(config)).await;
    if !failures.is_empty() {
        tracing::error!(
            topic = name,
            "creating topic failed: {}",
            failures.join("; ")
        );
        remove_partitions(shard, &topic).await;
        return Err((ResponseError::KafkaStorageError.code(), failures.join("; ")));
    }
    publish(shard, Arc::new(meta.with_topic(topic.clone()))).await;
    tracing::info!(topic = name, partitions, topic_id = %topic.id.0, "created topic");
    Ok(topic)
}

/// Creates `partitions` of `topic` on their owning shards; returns the failures.
async fn create_on_owners(
    shard: &Shard,
    topic: &TopicInfo,
    partitions: &[Arc<PartitionInfo>],
    config: Arc<TopicConfig>,
) -> Vec<String> {
    let created = join_all(partitions.iter().map(|p| {
        let tp = TopicPartition {
            topic: topic.name.clone(),
            partition: p.index,
        };
        create_on_owner(shard, p.shard, tp, (topic.id, config.clone()))
    }))
    .await;
    created
        .into_iter()
        .filter_map(|r| match r {
            Ok(Ok(())) => None,
            Ok(Err(m)) => Some(m),
            Err(e) => Some(e.to_string()),
        })
        .collect()
}

/// Creates `tp`'s log on shard `owner` (`ShardMsg::CreatePartition`).
pub async fn create_on_owner(
    shard: &Shard,
    owner: usize,
    tp: TopicPartition,
    (topic_id, config): (TopicId, Arc<TopicConfig>),
) -> Result<Result<(), String>, crate::shard::ShardGone> {
    call(&shard.peers, owner, move |reply| {
        ShardMsg::CreatePartition {
            tp,
            topic_id,
            config,
            reply,
        }
    })
    .await
}

async fn delete_topic(shard: &Rc<Shard>, name: &str) -> ControllerResult<Arc<TopicInfo>> {
    let meta = shard.metadata();
    let Some(topic) = meta.topic(name).cloned() else {
        return Err((
            ResponseError::UnknownTopicOrPartition.code(),
            format!("Topic '{name}' does not exist."),
        ));
    };
    refuse_internal(name, "Deleting")?;
    publish(shard, Arc::new(meta.without_topic(name))).await;
    remove_partitions(shard, &topic).await;
    tracing::info!(topic = name, topic_id = %topic.id.0, "deleted topic");
    Ok(topic)
}

/// DeleteTopics and CreatePartitions of `__consumer_offsets` are refused, deliberately
/// stricter than Kafka under KRaft (which allows both): one call would delete every group's
/// committed offsets, or move groups (mapped by `hash % partitions`) to partitions without
/// their offsets. INVALID_TOPIC_EXCEPTION is Kafka's code for operations internal topics
/// refuse (DeleteRecords, Produce).
fn refuse_internal(name: &str, what: &str) -> ControllerResult<()> {
    if name != crate::group::OFFSETS_TOPIC {
        return Ok(());
    }
    Err((
        ResponseError::InvalidTopicException.code(),
        format!(
            "{what} internal topic {name} is not allowed: it holds every consumer group's \
             committed offsets, and groups are mapped to its partitions by their count."
        ),
    ))
}

async fn remove_partitions(shard: &Rc<Shard>, topic: &TopicInfo) {
    let removed = join_all(topic.partitions.iter().map(|p| {
        let tp = TopicPartition {
            topic: topic.name.clone(),
            partition: p.index,
        };
        call(&shard.peers, p.shard, move |reply| {
            ShardMsg::DeletePartition { tp, reply }
        })
    }))
    .await;
    for r in removed {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(m)) => tracing::warn!("{m}"),
            Err(e) => tracing::warn!("deleting a partition of {}: {e}", topic.name),
        }
    }
}

/// Sends `snapshot` to every shard and waits until each routes by it.
pub async fn publish(shard: &Shard, snapshot: Arc<ClusterMetadata>) {
    publish_to(&shard.peers, snapshot).await
}

pub async fn publish_to(peers: &Peers, snapshot: Arc<ClusterMetadata>) {
    let acks = join_all((0..peers.shards()).map(|to| {
        let snapshot = snapshot.clone();
        call(peers, to, move |reply| ShardMsg::Metadata {
            snapshot,
            reply,
        })
    }))
    .await;
    if acks.iter().any(Result::is_err) {
        tracing::warn!(
            "a shard stopped before metadata version {} reached it",
            snapshot.version
        );
    }
}

fn unknown_topic(name: &str) -> (i16, String) {
    (
        ResponseError::UnknownTopicOrPartition.code(),
        format!("Topic '{name}' does not exist."),
    )
}

/// The topic's overrides, as its partition 0 stored them (in a cluster: as the committed
/// metadata holds them, since this broker may hold no replica of the topic).
pub async fn read_topic_config(
    shard: &Rc<Shard>,
    topic: &TopicInfo,
) -> ControllerResult<TopicConfig> {
    if let Some(handle) = &shard.broker.cluster {
        let image = handle.image.borrow().clone();
        return match image.topics.get(&topic.id.0) {
            Some(t) => Ok(crate::cluster::topic_config(t)),
            None => Err(unknown_topic(&topic.name)),
        };
    }
    let p0 = &topic.partitions[0];
    let tp = TopicPartition {
        topic: topic.name.clone(),
        partition: p0.index,
    };
    let storage = |m: String| (ResponseError::KafkaStorageError.code(), m);
    admin_routed(shard, p0.shard, tp, |reply| PartitionAdmin::ReadConfig {
        reply,
    })
    .await
    .map_err(|e| storage(e.to_string()))?
    .map_err(storage)
}

/// Applies `change` to `current` (Kafka's rules: APPEND/SUBTRACT only for list keys).
pub fn apply_change(current: &TopicConfig, change: ConfigChange) -> ControllerResult<TopicConfig> {
    let invalid = |m: String| (ResponseError::InvalidConfig.code(), m);
    match change {
        ConfigChange::Replace(pairs) => {
            TopicConfig::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .map_err(invalid)
        }
        ConfigChange::Incremental(ops) => {
            let mut next = current.clone();
            for (key, op, value) in ops {
                let value = value.unwrap_or_default();
                match op {
                    OP_SET => next.set(&key, &value).map_err(invalid)?,
                    OP_DELETE => next.remove(&key).map_err(invalid)?,
                    OP_APPEND | OP_SUBTRACT if key == "cleanup.policy" => {
                        let mut list: Vec<String> = next
                            .get(&key)
                            .unwrap_or("delete")
                            .split(',')
                            .map(|p| p.trim().to_string())
                            .collect();
                        let items = value.split(',').map(|p| p.trim().to_string());
                        if op == OP_APPEND {
                            items.for_each(|i| if !list.contains(&i) { list.push(i) });
                        } else {
                            let items: Vec<String> = items.collect();
                            list.retain(|p| !items.contains(p));
                        }
                        next.set(&key, &list.join(",")).map_err(invalid)?;
                    }
                    OP_APPEND | OP_SUBTRACT => {
                        return Err((
                            ResponseError::InvalidRequest.code(),
                            format!("Config value append/subtract is not allowed for config key {key}: it is not a list"),
                        ))
                    }
                    other => {
                        return Err((
                            ResponseError::InvalidRequest.code(),
                            format!("Unknown config operation {other} for config key {key}"),
                        ))
                    }
                }
            }
            Ok(next)
        }
    }
}

async fn alter_topic_config(
    shard: &Rc<Shard>,
    name: &str,
    change: ConfigChange,
    validate_only: bool,
) -> ControllerResult<()> {
    let meta = shard.metadata();
    let topic = meta
        .topic(name)
        .cloned()
        .ok_or_else(|| unknown_topic(name))?;
    let current = read_topic_config(shard, &topic).await?;
    let next = Arc::new(apply_change(&current, change)?);
    if validate_only || *next == current {
        return Ok(());
    }
    let results = join_all(topic.partitions.iter().map(|p| {
        let tp = TopicPartition {
            topic: topic.name.clone(),
            partition: p.index,
        };
        let config = next.clone();
        admin_routed(shard, p.shard, tp, move |reply| PartitionAdmin::SetConfig {
            config,
            reply,
        })
    }))
    .await;
    all_applied(results)?;
    tracing::info!(topic = name, "altered topic config: {:?}", next);
    Ok(())
}

/// Ok if every shard applied a change; else KAFKA_STORAGE_ERROR naming each failure.
pub fn all_applied(
    results: Vec<Result<Result<(), String>, crate::shard::ShardGone>>,
) -> ControllerResult<()> {
    let failures: Vec<String> = results
        .into_iter()
        .filter_map(|r| match r {
            Ok(Ok(())) => None,
            Ok(Err(m)) => Some(m),
            Err(e) => Some(e.to_string()),
        })
        .collect();
    match failures.is_empty() {
        true => Ok(()),
        false => Err((ResponseError::KafkaStorageError.code(), failures.join("; "))),
    }
}

async fn create_partitions(
    shard: &Rc<Shard>,
    name: &str,
    count: i32,
    validate_only: bool,
) -> ControllerResult<()> {
    let meta = shard.metadata();
    let topic = meta
        .topic(name)
        .cloned()
        .ok_or_else(|| unknown_topic(name))?;
    refuse_internal(name, "Adding partitions to")?;
    let old = topic.partitions.len() as i32;
    let invalid = |m: String| Err((ResponseError::InvalidPartitions.code(), m));
    if count <= old {
        return invalid(format!(
            "Topic currently has {old} partitions, which is higher than the requested {count}."
        ));
    }
    if count > TOPIC_PARTITIONS_MAX
        || meta.partition_count() as u64 + (count - old) as u64 > partition_budget()
    {
        return invalid(format!(
            "{count} partitions is over this broker's budget (TOPIC_PARTITIONS_MAX {TOPIC_PARTITIONS_MAX}, \
             open-files limit {}); raise LimitNOFILE",
            partition_budget()
        ));
    }
    if validate_only {
        return Ok(());
    }
    let config = read_topic_config(shard, &topic).await?;
    let grown = new_topic(name, topic.id, count, shard.shard_count());
    let added = &grown.partitions[old as usize..];
    let failures = create_on_owners(shard, &topic, added, Arc::new(config)).await;
    if !failures.is_empty() {
        // Undo the partitions that were created: the topic keeps its old count.
        let partial = TopicInfo {
            name: topic.name.clone(),
            id: topic.id,
            partitions: added.to_vec(),
        };
        remove_partitions(shard, &partial).await;
        return Err((ResponseError::KafkaStorageError.code(), failures.join("; ")));
    }
    let mut partitions = topic.partitions.clone();
    partitions.extend(added.iter().cloned());
    let next = Arc::new(TopicInfo {
        name: topic.name.clone(),
        id: topic.id,
        partitions,
    });
    publish(shard, Arc::new(meta.with_topic(next))).await;
    tracing::info!(topic = name, from = old, to = count, "created partitions");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incremental(
        current: &[(&str, &str)],
        ops: &[(&str, i8, &str)],
    ) -> Result<Vec<(String, String)>, i16> {
        let current = TopicConfig::from_pairs(current.iter().copied()).unwrap();
        let ops = ops
            .iter()
            .map(|(k, op, v)| (k.to_string(), *op, Some(v.to_string())))
            .collect();
        apply_change(&current, ConfigChange::Incremental(ops))
            .map(|c| {
                crate::topic_config::TOPIC_KEYS
                    .iter()
                    .filter_map(|(k, _, _)| c.get(k).map(|v| (k.to_string(), v.to_string())))
                    .collect()
            })
            .map_err(|(code, _)| code)
    }

    fn pairs(p: &[(&str, &str)]) -> Result<Vec<(String, String)>, i16> {
        Ok(p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    #[test]
    fn incremental_alter_operations() {
        let invalid_config = ResponseError::InvalidConfig.code();
        let invalid_request = ResponseError::InvalidRequest.code();
        let cur = [("retention.ms", "1000")];
        assert_eq!(
            incremental(&cur, &[("segment.ms", OP_SET, "5")]),
            pairs(&[("retention.ms", "1000"), ("segment.ms", "5")])
        );
        assert_eq!(
            incremental(&cur, &[("retention.ms", OP_DELETE, "")]),
            pairs(&[])
        );
        assert_eq!(
            incremental(&cur, &[("retention.ms", OP_APPEND, "5")]),
            Err(invalid_request)
        );
        assert_eq!(
            incremental(&cur, &[("retention.ms", OP_SUBTRACT, "5")]),
            Err(invalid_request)
        );
        assert_eq!(
            incremental(&cur, &[("cleanup.policy", OP_APPEND, "compact")]),
            Err(invalid_config)
        );
        assert_eq!(
            incremental(&cur, &[("cleanup.policy", OP_APPEND, "delete")]),
            pairs(&[("cleanup.policy", "delete"), ("retention.ms", "1000")])
        );
        assert_eq!(
            incremental(&cur, &[("nope", OP_SET, "1")]),
            Err(invalid_config)
        );
        assert_eq!(
            incremental(&cur, &[("retention.ms", 9, "1")]),
            Err(invalid_request)
        );
        assert_eq!(
            incremental(&cur, &[("retention.ms", OP_SET, "x")]),
            Err(invalid_config)
        );
    }
}
