//! What the controller listener speaks: length-prefixed JSON frames over TCP, one request
//! then one response at a time per connection.
//!
//! A frame is `u32 length (BE)` then that many bytes of JSON. Every request is an `Envelope`
//! naming the cluster id, the sender's node id and, for voters, its metadata directory id:
//! a node from another cluster is refused, and a voter whose directory id differs from the one
//! the quorum recorded (its disk was wiped) is refused for Raft traffic — it neither votes nor
//! counts toward a commit until re-admitted (Raft's disk-loss hazard; Kafka names a voter by
//! node id plus directory id for the same reason; `quorum::voters`). Every answer is a `Reply`
//! naming the answering node and its directory id the same way, so the sender of a Vote or
//! AppendEntries checks whose answer it counts.
//!
//! Raft's own messages (AppendEntries, Vote, a full snapshot) are openraft's types; the rest
//! are the broker-to-controller calls Kafka makes with BrokerRegistration, BrokerHeartbeat,
//! AlterPartition, CreateTopics, … and the observers' metadata fetch.

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

use openraft::error::{Fatal, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::Vote;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::image::MetadataImage;
use crate::quorum::state_machine::StoredSnapshot;
use crate::quorum::TypeConfig;
use crate::records::{BrokerId, BrokerRegistration, PartitionRecord};
use crate::NodeId;

/// Largest frame read from a peer (a snapshot of the whole image travels in one frame).
pub const RPC_FRAME_BYTES_MAX: usize = 256 << 20;
/// How long a connect may take before the peer counts as unreachable.
pub const RPC_CONNECT_TIMEOUT_MS: u64 = 1_000;

#[derive(Serialize, Deserialize, Debug)]
pub struct Envelope {
    pub cluster_id: String,
    pub from: BrokerId,
    /// The sender's metadata log directory id when it is a voter.
    pub directory_id: Option<Uuid>,
    pub body: Request,
}

#[derive(Serialize, Deserialize, Debug)]
pub enum Request {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    FullSnapshot {
        vote: Vote<NodeId>,
        snapshot: StoredSnapshot,
    },
    Controller(ControllerRequest),
    /// An observer (broker-only node) asks for the image once it is past `after_index`,
    /// waiting at most `max_wait_ms`.
    FetchMetadata {
        after_index: u64,
        max_wait_ms: u64,
    },
    /// Kafka's DescribeQuorum, answered by whichever voter receives it (the leader's answer
    /// has `from_leader`).
    DescribeQuorum,
    /// Would the receiver vote for a candidate whose log ends at `last_index`?
    /// (`quorum::pre_vote`; changes nothing on the receiver.)
    PreVote {
        last_index: Option<u64>,
    },
}

/// Every answer names who answers, as a request does: a node checks that a Vote or
/// AppendEntries answer comes from the voter it recorded (node id and directory id).
#[derive(Serialize, Deserialize, Debug)]
pub struct Reply {
    pub from: BrokerId,
    /// The answering node's metadata log directory id when it is a voter.
    pub directory_id: Option<Uuid>,
    pub body: Response,
}

#[derive(Serialize, Deserialize, Debug)]
pub enum Response {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    Snapshot(Result<SnapshotResponse<NodeId>, Fatal<NodeId>>),
    Controller(ControllerResult),
    /// None: nothing newer within the wait.
    Metadata(Option<Box<MetadataImage>>),
    Quorum(QuorumDescription),
    PreVote(bool),
    /// The request was refused before it reached Raft or the controller.
    Refused(String),
    /// Raft traffic refused because the sender's directory id is not the one recorded for
    /// its node id (Kafka's INVALID_VOTER_KEY): the sender is a replaced incarnation.
    InvalidVoterKey(String),
}

impl std::fmt::Debug for StoredSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoredSnapshot({})", self.meta.snapshot_id)
    }
}

/// Broker-to-controller calls (Kafka's BrokerRegistration, BrokerHeartbeat, AlterPartition,
/// and the admin requests every broker forwards to the active controller).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub enum ControllerRequest {
    RegisterBroker(BrokerRegistration),
    Heartbeat {
        broker_id: BrokerId,
        broker_epoch: i64,
        /// The last metadata index the broker applied (it is unfenced once caught up).
        applied_index: u64,
        want_shutdown: bool,
    },
    CreateTopic {
        name: String,
        partitions: i32,
        replication_factor: i16,
        /// Explicit replica lists (CreateTopics' `assignments`), else placed by the controller.
        assignments: Option<Vec<Vec<BrokerId>>>,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    },
    DeleteTopic {
        name: String,
    },
    CreatePartitions {
        name: String,
        count: i32,
        validate_only: bool,
    },
    AlterTopicConfig {
        name: String,
        configs: BTreeMap<String, String>,
    },
    /// Kafka's AlterPartition: the leader asks for a new ISR.
    AlterPartition {
        broker_id: BrokerId,
        broker_epoch: i64,
        topic_id: Uuid,
        partition: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        new_isr: Vec<BrokerId>,
    },
    AllocateProducerIds {
        broker_id: BrokerId,
        broker_epoch: i64,
    },
    /// Kafka's ElectLeaders for the given topics' partitions, or every partition when None.
    ElectLeaders {
        election: ElectionType,
        topics: Option<Vec<(String, Vec<i32>)>>,
    },
    /// Kafka's AddRaftVoter: the controller `voter_id` with metadata directory `directory_id`
    /// (a re-formatted disk, or a new node) becomes a learner, catches up, then votes. Not a
    /// command of the controller's queue: the quorum's leader runs it (`quorum::voters`).
    AddRaftVoter {
        voter_id: BrokerId,
        directory_id: Uuid,
        /// Its controller listener, "host:port".
        addr: String,
        timeout_ms: u64,
    },
    /// Kafka's RemoveRaftVoter: the voter `(voter_id, directory_id)` leaves the quorum.
    RemoveRaftVoter {
        voter_id: BrokerId,
        directory_id: Uuid,
    },
    /// The broker's replicas of these partitions went offline with their log dir (a failing
    /// disk): take it out of their ISRs and elect other leaders where it led (what Kafka's
    /// controller does for a broker's offline log dir).
    OfflineReplicas {
        broker_id: BrokerId,
        broker_epoch: i64,
        partitions: Vec<(Uuid, i32)>,
    },
    /// Kafka's AlterPartitionReassignments: per topic, partitions and their target replicas
    /// (None: cancel the reassignment in progress).
    AlterPartitionReassignments {
        topics: Vec<crate::controller::reassignment::ReassignmentAsk>,
        /// v1's `AllowReplicationFactorChange` (KIP-860; v0: true).
        allow_replication_factor_change: bool,
    },
    /// Kafka's ListPartitionReassignments of the topics' partitions, or of every topic.
    ListPartitionReassignments {
        topics: Option<Vec<(String, Vec<i32>)>>,
    },
}

/// One partition's outcome of a per-partition admin call (Kafka's
/// `ReassignablePartitionResponse`): error code 0 or Kafka's, with a message.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PartitionOutcome {
    pub partition: i32,
    pub code: i16,
    pub message: Option<String>,
}

/// One topic's outcomes, partitions in the order asked.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TopicOutcomes {
    pub topic: String,
    pub partitions: Vec<PartitionOutcome>,
}

/// A partition with a reassignment in progress (Kafka's `OngoingPartitionReassignment`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct OngoingReassignment {
    pub partition: i32,
    pub replicas: Vec<BrokerId>,
    pub adding_replicas: Vec<BrokerId>,
    pub removing_replicas: Vec<BrokerId>,
}

/// Kafka's `ElectionType` (wire codes 0 and 1).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    /// The first replica leads again, if it is in the ISR and active.
    Preferred,
    /// A leaderless partition gets a leader from the ISR, else from any active replica
    /// (records only the old ISR held may be lost).
    Unclean,
}

/// One topic's outcomes of ElectLeaders (Kafka's `ReplicaElectionResult`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TopicElections {
    pub topic: String,
    pub partitions: Vec<ElectionResult>,
}

/// One partition's outcome of ElectLeaders (Kafka's `PartitionResult`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ElectionResult {
    pub partition: i32,
    /// Kafka's error code: 0, ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE,
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE or UNKNOWN_TOPIC_OR_PARTITION.
    pub code: i16,
    pub message: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub enum ControllerReply {
    Registered {
        broker_epoch: i64,
    },
    Heartbeat {
        fenced: bool,
        /// The controller agrees the broker may stop (controlled shutdown is complete).
        shutdown_ok: bool,
    },
    TopicCreated {
        topic_id: Uuid,
        partitions: Vec<PartitionRecord>,
    },
    Done,
    Partition(PartitionRecord),
    ProducerIds {
        first: i64,
        count: i64,
    },
    /// ElectLeaders' results, topics in the order asked (all: every topic, by name).
    Elections(Vec<TopicElections>),
    /// AlterPartitionReassignments' outcomes, topics and partitions in the order asked.
    Reassignments(Vec<TopicOutcomes>),
    /// ListPartitionReassignments: per topic, its partitions being reassigned.
    OngoingReassignments(Vec<(String, Vec<OngoingReassignment>)>),
}

/// A Kafka error code and message, as the broker will answer its client.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ControllerError {
    pub code: i16,
    pub message: String,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub enum ControllerResult {
    /// The reply and the metadata index at which its records (if any) were applied: a
    /// broker waits for its own image to reach it before answering its client.
    Ok(ControllerReply, u64),
    Err(ControllerError),
    /// This node is not the active controller; try `leader`.
    NotController {
        leader: Option<BrokerId>,
    },
}

/// One replica of the metadata log as the quorum leader sees it (Kafka's DescribeQuorum
/// `ReplicaState`). Offsets are Kafka's: the log end offset is the index after the last
/// entry the replica holds; timestamps are wall-clock milliseconds, -1 when unknown.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaState {
    pub replica_id: BrokerId,
    /// The directory id the quorum recorded for a voter (None: not recorded, Kafka's zero
    /// uuid).
    pub directory_id: Option<Uuid>,
    pub log_end_offset: i64,
    pub last_fetch_timestamp: i64,
    pub last_caught_up_timestamp: i64,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct QuorumDescription {
    pub leader: Option<BrokerId>,
    /// Answered by the quorum leader itself: only it knows every replica's progress.
    pub from_leader: bool,
    pub term: u64,
    /// The index after the last committed entry (Kafka's high watermark).
    pub high_watermark: i64,
    pub voters: Vec<ReplicaState>,
    /// Broker-only nodes (Kafka's observers), from their heartbeats to the controller.
    pub observers: Vec<ReplicaState>,
    /// Each voter's controller listener, "host:port".
    pub voter_endpoints: Vec<(BrokerId, String)>,
    /// This node's Raft state in Kafka's names (`leader`, `follower`, `candidate`,
    /// `unattached`: a follower knowing no leader, `observer`: no vote, `shutdown`).
    #[serde(default)]
    pub local_state: String,
    /// The index after this node's last metadata log entry (its log end offset).
    #[serde(default)]
    pub local_log_end_offset: i64,
}

pub async fn write_frame(stream: &mut TcpStream, value: &impl Serialize) -> io::Result<()> {
    let payload = serde_json::to_vec(value).map_err(io::Error::other)?;
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|l| (*l as usize) <= RPC_FRAME_BYTES_MAX)
        .ok_or_else(|| io::Error::other("frame larger than RPC_FRAME_BYTES_MAX"))?;
    let mut buf = Vec::with_capacity(4 + payload.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&payload);
    stream.write_all(&buf).await
}

pub async fn read_frame<T: for<'de> Deserialize<'de>>(stream: &mut TcpStream) -> io::Result<T> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > RPC_FRAME_BYTES_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over RPC_FRAME_BYTES_MAX"),
        ));
    }
    // The buffer grows as bytes arrive: a peer's claimed length sizes nothing up front.
    let mut payload = Vec::new();
    let read = (&mut *stream)
        .take(len as u64)
        .read_to_end(&mut payload)
        .await?;
    if read != len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    serde_json::from_slice(&payload).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// A connection to one peer's controller listener, reconnected on demand.
pub struct Peer {
    pub addr: String,
    stream: Option<TcpStream>,
}

impl Peer {
    pub fn new(addr: String) -> Peer {
        Peer { addr, stream: None }
    }

    /// Sends one request and waits for its answer, within `timeout`.
    pub async fn call(&mut self, envelope: &Envelope, timeout: Duration) -> io::Result<Reply> {
        let result = tokio::time::timeout(timeout, self.call_inner(envelope)).await;
        match result {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.stream = None;
                Err(e)
            }
            Err(_) => {
                self.stream = None;
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "controller RPC timed out",
                ))
            }
        }
    }

    async fn call_inner(&mut self, envelope: &Envelope) -> io::Result<Reply> {
        if self.stream.is_none() {
            let connect = TcpStream::connect(&self.addr);
            let stream =
                tokio::time::timeout(Duration::from_millis(RPC_CONNECT_TIMEOUT_MS), connect)
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().expect("connected above");
        write_frame(stream, envelope).await?;
        read_frame(stream).await
    }
}
