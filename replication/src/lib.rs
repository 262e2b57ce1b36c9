//! sluice-replication: copies and agreement.
//!
//! - `quorum`: the metadata log, replicated with openraft 0.9 among the controller-eligible
//!   nodes (`controller.quorum.voters`), persisted under `__cluster_metadata-0/`.
//! - `records` / `image`: what the log holds and the `MetadataImage` every node rebuilds
//!   from it, deterministically.
//! - `controller`: the active controller's decisions (registration, fencing, topic
//!   placement, ISR changes, leader elections, producer id blocks).
//! - `node`: the control-plane thread of one node and the `ClusterHandle` the broker uses.
//! - `rpc`: what the controller listener speaks.
//!
//! **Architecture Invariant:** this crate knows nothing of shards, sockets of clients or
//! partitions' bytes; it runs on its own thread and the broker never blocks a shard on it.

pub mod controller;
pub mod errors;
pub mod gossip;
pub mod image;
pub mod node;
pub mod placement;
pub mod quorum;
pub mod records;
pub mod rpc;

/// openraft's node id: Kafka's node id, widened.
pub type NodeId = u64;
/// openraft's node: the address of its controller listener and its metadata directory id.
pub type Node = quorum::voters::VoterNode;

pub use image::{BrokerState, MetadataImage, TopicImage};
pub use node::{start, BrokerStatus, ClusterHandle, ClusterOptions, ControllerRole};
pub use records::{BrokerId, BrokerRegistration, Endpoint, PartitionRecord, NO_LEADER};
pub use rpc::{
    ControllerError, ControllerReply, ControllerRequest, ElectionResult, ElectionType,
    OngoingReassignment, PartitionOutcome, QuorumDescription, ReplicaState, TopicElections,
    TopicOutcomes,
};
