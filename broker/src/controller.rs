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

use crate::metadata::{new_topic, validate_topic_name, ClusterMetadata, TopicInfo};
use crate::msg::{call, Peers, ShardMsg};
use crate::shard::{Shard, TopicPartition};

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
        validate_only: bool,
        reply: oneshot::Sender<ControllerResult<Arc<TopicInfo>>>,
    },
    DeleteTopic {
        name: String,
        reply: oneshot::Sender<ControllerResult<Arc<TopicInfo>>>,
    },
}

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
            match cmd {
                ControllerCmd::CreateTopic {
                    name,
                    partitions,
                    validate_only,
                    reply,
                } => {
                    let _ =
                        reply.send(create_topic(&shard, &name, partitions, validate_only).await);
                }
                ControllerCmd::DeleteTopic { name, reply } => {
                    let _ = reply.send(delete_topic(&shard, &name).await);
                }
            }
        }
    }
}

/// Asks the controller (from any shard) to create a topic.
pub async fn request_create(
    shard: &Shard,
    name: &str,
    partitions: i32,
    validate_only: bool,
) -> ControllerResult<Arc<TopicInfo>> {
    let name = name.to_string();
    call(&shard.peers, 0, |reply| {
        ShardMsg::Controller(ControllerCmd::CreateTopic {
            name,
            partitions,
            validate_only,
            reply,
        })
    })
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
    partitions: i32,
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
    let created = join_all(topic.partitions.iter().map(|p| {
        let tp = TopicPartition {
            topic: topic.name.clone(),
            partition: p.index,
        };
        let topic_id = topic.id;
        call(&shard.peers, p.shard, move |reply| {
            ShardMsg::CreatePartition {
                tp,
                topic_id,
                reply,
            }
        })
    }))
    .await;
    let failures: Vec<String> = created
        .into_iter()
        .filter_map(|r| match r {
            Ok(Ok(())) => None,
            Ok(Err(m)) => Some(m),
            Err(e) => Some(e.to_string()),
        })
        .collect();
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

async fn delete_topic(shard: &Rc<Shard>, name: &str) -> ControllerResult<Arc<TopicInfo>> {
    let meta = shard.metadata();
    let Some(topic) = meta.topic(name).cloned() else {
        return Err((
            ResponseError::UnknownTopicOrPartition.code(),
            format!("Topic '{name}' does not exist."),
        ));
    };
    publish(shard, Arc::new(meta.without_topic(name))).await;
    remove_partitions(shard, &topic).await;
    tracing::info!(topic = name, topic_id = %topic.id.0, "deleted topic");
    Ok(topic)
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
