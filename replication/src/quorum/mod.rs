//! The metadata quorum: openraft 0.9 among the controller-eligible nodes
//! (`controller.quorum.voters`), on the controller thread's tokio runtime.

pub mod log_store;
pub mod pre_vote;
pub mod progress;
pub mod state_machine;
pub mod voters;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use openraft::error::{
    Fatal, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed, StreamingError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{RaftMetrics, Snapshot, Vote};
use tokio::sync::watch;
use uuid::Uuid;

use crate::records::{ApplyResult, BrokerId, RecordBatch};
use crate::rpc::{Envelope, Peer, Request, Response};
use crate::NodeId;
use state_machine::StoredSnapshot;
use voters::{VoterKeys, VoterNode};

openraft::declare_raft_types!(
    /// Sluice's metadata log: entries are batches of metadata records.
    pub TypeConfig:
        D = RecordBatch,
        R = ApplyResult,
        NodeId = u64,
        Node = VoterNode,
        SnapshotData = StoredSnapshot,
);

pub type Raft = openraft::Raft<TypeConfig>;

/// Who we are on the wire.
#[derive(Clone, Debug)]
pub struct Identity {
    pub cluster_id: String,
    pub node_id: BrokerId,
    /// The metadata log directory's `directory.id` (voters only).
    pub directory_id: Option<Uuid>,
}

impl Identity {
    pub fn envelope(&self, body: Request) -> Envelope {
        Envelope {
            cluster_id: self.cluster_id.clone(),
            from: self.node_id,
            directory_id: self.directory_id,
            body,
        }
    }
}

/// Raft timing from Kafka's `controller.quorum.election.timeout.ms` (default 1000).
///
/// openraft 0.9's follower starts an election only after its leader lease
/// (`election_timeout_max`) *plus* a random election timeout in `[min, max]` without a
/// heartbeat, and refuses votes within the lease. So `max` is the key's value and `min`
/// half of it: with Kafka's default a dead quorum leader is replaced 1.5–2 s after its last
/// heartbeat (Kafka's own followers wait `controller.quorum.fetch.timeout.ms`, 2 s). With
/// `max = min = key` the same key would mean 2–3 s.
#[derive(Clone, Debug)]
pub struct QuorumTiming {
    pub election_timeout_ms: u64,
    pub heartbeat_interval_ms: u64,
}

pub fn raft_config(timing: &QuorumTiming) -> openraft::Config {
    openraft::Config {
        cluster_name: "sluice-metadata".into(),
        election_timeout_min: (timing.election_timeout_ms / 2).max(1),
        election_timeout_max: timing.election_timeout_ms.max(2),
        heartbeat_interval: timing.heartbeat_interval_ms,
        install_snapshot_timeout: 10_000,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(5_000),
        max_in_snapshot_log_to_keep: 1_000,
        ..Default::default()
    }
}

pub struct NetworkFactory {
    pub identity: Identity,
    /// The recorded voter keys: answers from a node with another directory id are dropped.
    pub keys: VoterKeys,
    pub voters: VoterTracking,
}

/// What the leader's network records of the voters' answers (DescribeQuorum's progress).
#[derive(Clone)]
pub struct VoterTracking {
    /// Written on every AppendEntries answer.
    pub progress: Arc<watch::Sender<progress::ProgressMap>>,
    /// This node's Raft metrics, set once the Raft exists (the leader's log end).
    pub metrics: Arc<OnceLock<watch::Receiver<RaftMetrics<NodeId, VoterNode>>>>,
}

impl VoterTracking {
    pub fn new() -> VoterTracking {
        VoterTracking {
            progress: Arc::new(watch::channel(progress::ProgressMap::new()).0),
            metrics: Arc::new(OnceLock::new()),
        }
    }

    fn leader_end(&self) -> Option<u64> {
        self.metrics.get()?.borrow().last_log_index
    }
}

impl Default for VoterTracking {
    fn default() -> Self {
        VoterTracking::new()
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: NodeId, node: &VoterNode) -> PeerNetwork {
        PeerNetwork {
            identity: self.identity.clone(),
            keys: self.keys.clone(),
            target,
            peer: Peer::new(node.addr.clone()),
            warned: false,
            voters: self.voters.clone(),
        }
    }
}

pub struct PeerNetwork {
    identity: Identity,
    keys: VoterKeys,
    target: NodeId,
    peer: Peer,
    /// A refusal for a wrong voter key was logged (once per connection to the target).
    warned: bool,
    voters: VoterTracking,
}

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, VoterNode, RaftError<NodeId, E>>;

impl PeerNetwork {
    /// Records an answered AppendEntries: `matched` is what the voter now holds, `leader_end`
    /// the leader's last index when the request left.
    fn record_answer(&self, term: u64, matched: Option<u64>, leader_end: Option<u64>) {
        let now = progress::wall_clock_ms();
        let target = self.target as BrokerId;
        self.voters.progress.send_modify(|m| {
            m.entry(target)
                .or_insert_with(progress::FetchProgress::unknown)
                .on_fetch(term, matched, leader_end, now)
        });
    }

    async fn send(&mut self, body: Request, timeout: Duration) -> Result<Response, Unreachable> {
        let envelope = self.identity.envelope(body);
        let reply = match self.peer.call(&envelope, timeout).await {
            Ok(reply) => reply,
            Err(e) => return Err(Unreachable::new(&e)),
        };
        // An answer from another node at that address, or from another incarnation of the
        // target (its disk was wiped), counts as no answer: no vote, no acknowledgement.
        let checked = if reply.from as NodeId != self.target {
            Err(format!(
                "node {} answered at the address of node {}",
                reply.from, self.target
            ))
        } else {
            self.keys.check(self.target, reply.directory_id, true)
        };
        if let Err(why) = checked {
            self.warn_once(&why);
            return Err(Unreachable::new(&std::io::Error::other(why)));
        }
        match reply.body {
            Response::InvalidVoterKey(why) => {
                // This node is a replaced incarnation: it stops campaigning and voting.
                self.keys.mark_replaced();
                self.warn_once(&why);
                Err(Unreachable::new(&std::io::Error::other(why)))
            }
            Response::Refused(why) => {
                tracing::debug!(target = self.target, %why, "metadata quorum peer refused");
                Err(Unreachable::new(&std::io::Error::other(why)))
            }
            r => {
                self.warned = false;
                Ok(r)
            }
        }
    }

    fn warn_once(&mut self, why: &str) {
        if !self.warned {
            tracing::warn!(peer = self.target, %why, "metadata quorum traffic refused");
            self.warned = true;
        }
    }
}

fn unexpected<E: std::error::Error>(r: &Response) -> RPCError<NodeId, VoterNode, E> {
    RPCError::Network(NetworkError::new(&std::io::Error::other(format!(
        "unexpected response {r:?}"
    ))))
}

impl RaftNetwork<TypeConfig> for PeerNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        let term = rpc.vote.leader_id().get_term();
        let sent_up_to = rpc
            .entries
            .last()
            .map(|e| e.log_id.index)
            .or(rpc.prev_log_id.map(|l| l.index));
        let leader_end = self.voters.leader_end();
        let r = self
            .send(Request::AppendEntries(rpc), option.hard_ttl())
            .await?;
        match r {
            Response::AppendEntries(Ok(resp)) => {
                let matched = match &resp {
                    AppendEntriesResponse::Success => sent_up_to,
                    AppendEntriesResponse::PartialSuccess(l) => l.map(|l| l.index),
                    _ => None,
                };
                if !matches!(resp, AppendEntriesResponse::HigherVote(_)) {
                    self.record_answer(term, matched, leader_end);
                }
                Ok(resp)
            }
            Response::AppendEntries(Err(e)) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(unexpected(&other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcErr> {
        let r = self.send(Request::Vote(rpc), option.hard_ttl()).await?;
        match r {
            Response::Vote(Ok(resp)) => Ok(resp),
            Response::Vote(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            other => Err(unexpected(&other)),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<NodeId>,
        snapshot: Snapshot<TypeConfig>,
        _cancel: impl std::future::Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        let mut stored = *snapshot.snapshot;
        stored.meta = snapshot.meta;
        let r = self
            .send(
                Request::FullSnapshot {
                    vote,
                    snapshot: stored,
                },
                option.hard_ttl(),
            )
            .await?;
        match r {
            Response::Snapshot(Ok(resp)) => Ok(resp),
            Response::Snapshot(Err(e)) => Err(StreamingError::RemoteError(RemoteError::new(
                self.target,
                e,
            ))),
            other => Err(StreamingError::Network(NetworkError::new(
                &std::io::Error::other(format!("unexpected response {other:?}")),
            ))),
        }
    }
}

/// The voters as openraft's initial membership.
pub fn voter_nodes(voters: &[(BrokerId, String)]) -> BTreeMap<NodeId, VoterNode> {
    voters
        .iter()
        .map(|(id, addr)| {
            (
                *id as NodeId,
                VoterNode {
                    addr: addr.clone(),
                    directory_id: None,
                },
            )
        })
        .collect()
}
