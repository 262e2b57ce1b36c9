//! Cluster metadata: topics, their ids and partitions, and which shard owns each partition.
//!
//! Owned by the controller (shard 0) and published to every shard as an immutable, versioned
//! snapshot (`Arc<ClusterMetadata>`); a shard swaps its snapshot when the controller's
//! `ShardMsg::Metadata` arrives and acknowledges it, so once CreateTopics answers every shard
//! routes the new topic.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use sluice_engine::TopicId;

/// A partition as every shard sees it. Shared across threads: only immutable routing data and
/// the append signal (long polls on any shard listen to it; the owner notifies it).
#[derive(Debug)]
pub struct PartitionInfo {
    pub index: i32,
    pub shard: usize,
    /// Kept across snapshot versions, so a long poll parked on an older snapshot still wakes.
    pub appended: Arc<event_listener::Event>,
    /// The partition's replicas, leader and ISR in a cluster (from the metadata quorum);
    /// `None` on a single node, where this broker is the only replica and always leads.
    pub replication: Option<Replication>,
}

/// One partition's replication state as the committed metadata says (Kafka's
/// `PartitionRegistration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replication {
    /// -1 when no replica may lead (every ISR member is fenced).
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// The topic's `min.insync.replicas` (else the broker's).
    pub min_insync_replicas: i32,
    /// The leader epoch of the latest unclean election, -1 if none: a follower may cut
    /// below its high watermark toward that leader (logged and counted), never otherwise.
    pub last_unclean_epoch: i32,
    /// The topic's `leader/follower.replication.throttled.replicas` (`throttle`).
    pub throttles: Arc<crate::throttle::TopicThrottles>,
}

impl PartitionInfo {
    /// Whether `node` leads this partition (always, on a single node).
    pub fn is_led_by(&self, node: i32) -> bool {
        self.replication.as_ref().is_none_or(|r| r.leader == node)
    }

    /// Whether `node` holds a replica of this partition (always, on a single node).
    pub fn has_replica(&self, node: i32) -> bool {
        self.replication
            .as_ref()
            .is_none_or(|r| r.replicas.contains(&node))
    }
}

/// A broker as Metadata answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerEndpoint {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    /// Fenced by the controller (only in `ClusterMetadata::registered`).
    pub fenced: bool,
}

#[derive(Debug)]
pub struct TopicInfo {
    pub name: Arc<str>,
    pub id: TopicId,
    pub partitions: Vec<Arc<PartitionInfo>>,
}

#[derive(Debug, Default)]
pub struct ClusterMetadata {
    pub version: u64,
    pub topics: HashMap<Arc<str>, Arc<TopicInfo>>,
    pub topics_by_id: HashMap<uuid::Uuid, Arc<TopicInfo>>,
    /// In a cluster: the live (unfenced) brokers, and the broker that clients should send
    /// controller requests to (Kafka in KRaft mode names a random live broker). Empty on a
    /// single node, which answers with itself.
    pub brokers: Vec<BrokerEndpoint>,
    /// In a cluster: every registered broker with an endpoint on this broker's client
    /// listener, fenced ones included (DescribeCluster; offline replicas).
    pub registered: Vec<BrokerEndpoint>,
    pub controller_id: Option<i32>,
    /// In a cluster: where each registered broker's inter-broker listener is (followers
    /// fetch there).
    pub inter_broker: HashMap<i32, (String, u16)>,
    /// In a cluster: the index of the committed metadata image this snapshot was built from.
    pub image_index: u64,
}

impl ClusterMetadata {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicInfo>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: uuid::Uuid) -> Option<&Arc<TopicInfo>> {
        self.topics_by_id.get(&id)
    }

    /// Kafka's offline replicas of a partition: those on a broker that is not registered or
    /// is fenced (a single node has none).
    pub fn offline_replicas(&self, replicas: &[i32]) -> Vec<i32> {
        let online = |b: &i32| self.registered.iter().any(|e| e.node_id == *b && !e.fenced);
        replicas.iter().copied().filter(|b| !online(b)).collect()
    }

    pub fn partition_count(&self) -> usize {
        self.topics.values().map(|t| t.partitions.len()).sum()
    }

    /// A new version with `topic` added (or replaced).
    pub fn with_topic(&self, topic: Arc<TopicInfo>) -> ClusterMetadata {
        let mut next = self.clone_maps();
        next.topics_by_id.insert(topic.id.0, topic.clone());
        next.topics.insert(topic.name.clone(), topic);
        next
    }

    /// A new version without the topic `name`.
    pub fn without_topic(&self, name: &str) -> ClusterMetadata {
        let mut next = self.clone_maps();
        if let Some(t) = next.topics.remove(name) {
            next.topics_by_id.remove(&t.id.0);
        }
        next
    }

    fn clone_maps(&self) -> ClusterMetadata {
        ClusterMetadata {
            version: self.version + 1,
            topics: self.topics.clone(),
            topics_by_id: self.topics_by_id.clone(),
            brokers: self.brokers.clone(),
            registered: self.registered.clone(),
            controller_id: self.controller_id,
            inter_broker: self.inter_broker.clone(),
            image_index: self.image_index,
        }
    }
}

/// The shard that owns `topic`-`partition`: a stable hash, so a restart with the same shard
/// count puts every partition back where it was.
pub fn owner_shard(topic: &str, partition: i32, shards: usize) -> usize {
    let mut h = sluice_engine::hash::Fnv1a::default();
    topic.hash(&mut h);
    partition.hash(&mut h);
    (h.finish() % shards as u64) as usize
}

pub fn new_topic(name: &str, id: TopicId, partitions: i32, shards: usize) -> TopicInfo {
    TopicInfo {
        name: name.into(),
        id,
        partitions: (0..partitions)
            .map(|index| {
                Arc::new(PartitionInfo {
                    index,
                    shard: owner_shard(name, index, shards),
                    appended: Arc::new(event_listener::Event::new()),
                    replication: None,
                })
            })
            .collect(),
    }
}

/// Kafka's topic name rules: 1..=249 chars of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    const TOPIC_NAME_BYTES_MAX: usize = 249;
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return Err(format!(
            "Topic name is illegal, it can't be longer than {TOPIC_NAME_BYTES_MAX} characters"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(format!(
            "Topic name {name:?} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_stable_and_spread() {
        assert_eq!(owner_shard("t", 0, 4), owner_shard("t", 0, 4));
        let mut counts = [0; 4];
        for p in 0..400 {
            counts[owner_shard("orders", p, 4)] += 1;
        }
        assert!(counts.iter().all(|c| *c > 50), "{counts:?}");
    }

    #[test]
    fn topic_names() {
        for ok in ["a", "orders.v1", "x_y-z", &"a".repeat(249)] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "ü", &"a".repeat(250), "a/b"] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }
}
