//! The records of the metadata log: every decision the controller takes, as Kafka's KRaft
//! records do (`RegisterBrokerRecord`, `FenceBrokerRecord`, `TopicRecord`, `PartitionRecord`,
//! `PartitionChangeRecord`, `ConfigRecord`, `ProducerIdsRecord`, …). A batch of records is one
//! Raft entry, applied atomically by every node in log order (`image::MetadataImage::apply`).
//!
//! On the wire and on disk they are JSON (serde): the metadata log is small and rarely
//! written, and a readable log is worth more than a compact one here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Kafka's broker (node) id.
pub type BrokerId = i32;

/// Kafka's "no leader" value in a partition's leader field.
pub const NO_LEADER: BrokerId = -1;

/// A listener a broker advertises: Kafka's `BrokerRegistrationRequest.Listener`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// What a broker says about itself when it registers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub broker_id: BrokerId,
    /// Random per process start: tells a restarted broker from a retried registration.
    pub incarnation_id: Uuid,
    pub listeners: Vec<Endpoint>,
    /// The listener other brokers fetch from (`inter.broker.listener.name`).
    pub inter_broker_listener: String,
    pub rack: Option<String>,
    /// `directory.id` of each of its log dirs (Kafka's KIP-858 / KIP-853 identity).
    pub log_dirs: Vec<Uuid>,
}

/// A new partition's assignment, or a partition's whole state in a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    pub replicas: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
    pub leader: BrokerId,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// The leader epoch of the latest unclean election (`NO_UNCLEAN_EPOCH`: none). Replicas
    /// may truncate below their high watermark only toward a leader of such an epoch —
    /// the one exception to "nothing committed is ever cut", logged and counted.
    #[serde(default = "no_unclean_epoch")]
    pub last_unclean_epoch: i32,
    /// Kafka's `AddingReplicas`: replicas a reassignment adds (in `replicas`, catching up).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding_replicas: Vec<BrokerId>,
    /// Kafka's `RemovingReplicas`: replicas a reassignment removes once the targets are in
    /// the ISR (still in `replicas` until then).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing_replicas: Vec<BrokerId>,
}

impl PartitionRecord {
    /// Kafka's `isReassignmentInProgress`.
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }
}

/// `PartitionChange::reason` of an election outside the ISR.
pub const UNCLEAN_ELECTION_REASON: &str = "unclean-election";

/// `PartitionRecord::last_unclean_epoch` of a partition never elected uncleanly.
pub const NO_UNCLEAN_EPOCH: i32 = -1;

fn no_unclean_epoch() -> i32 {
    NO_UNCLEAN_EPOCH
}

/// Kafka's `PartitionChangeRecord`: the new leader and ISR of one partition. Applied only if
/// `partition_epoch` is the current one plus one (the controller computed it from the image it
/// proposed against; a stale change is rejected deterministically by every node).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionChange {
    pub topic_id: Uuid,
    pub partition: i32,
    pub leader: BrokerId,
    pub isr: Vec<BrokerId>,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// The reason, for the log: `fenced`, `alter-partition`, `election`, `unclean-election`, …
    pub reason: String,
    /// A new replica assignment (Kafka's `Replicas`, `AddingReplicas`, `RemovingReplicas`
    /// fields, which here change together); None: unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment: Option<ReplicaAssignment>,
}

/// A partition's replicas during (or after) a reassignment: `replicas` is the target
/// followed by the replicas being removed (Kafka's `PartitionReassignmentReplicas`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaAssignment {
    pub replicas: Vec<BrokerId>,
    pub adding_replicas: Vec<BrokerId>,
    pub removing_replicas: Vec<BrokerId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataRecord {
    /// The broker's epoch is the index of the entry holding this record (Kafka: its offset).
    RegisterBroker(BrokerRegistration),
    FenceBroker {
        broker_id: BrokerId,
        broker_epoch: i64,
    },
    UnfenceBroker {
        broker_id: BrokerId,
        broker_epoch: i64,
    },
    /// The broker asked to shut down: it leads nothing new and is fenced once it stops.
    BrokerControlledShutdown {
        broker_id: BrokerId,
        broker_epoch: i64,
    },
    CreateTopic {
        name: String,
        topic_id: Uuid,
        partitions: Vec<PartitionRecord>,
        configs: BTreeMap<String, String>,
    },
    /// CreatePartitions: partitions appended to an existing topic.
    AddPartitions {
        topic_id: Uuid,
        partitions: Vec<PartitionRecord>,
    },
    DeleteTopic {
        topic_id: Uuid,
    },
    PartitionChange(PartitionChange),
    /// A topic's complete set of overrides.
    TopicConfig {
        topic_id: Uuid,
        configs: BTreeMap<String, String>,
    },
    /// Kafka's `ProducerIdsRecord`: ids below `next_producer_id` are handed out.
    ProducerIds {
        broker_id: BrokerId,
        broker_epoch: i64,
        next_producer_id: i64,
    },
}

/// One Raft entry's payload: records applied together or not at all.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordBatch(pub Vec<MetadataRecord>);

impl std::fmt::Display for RecordBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} metadata record(s)", self.0.len())
    }
}

/// What applying a batch produced, answered to the proposer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyResult {
    /// The index of the entry (a registering broker's epoch).
    pub index: u64,
    /// Records refused by the image's checks (stale epochs), with why.
    pub rejected: Vec<String>,
}
