//! A voter is a node id **and** a metadata directory id (Kafka's KIP-853 `ReplicaKey`), so a
//! node whose disk was wiped and re-formatted — same `node.id`, new `directory.id`, empty log
//! and vote — is a different voter: Raft's safety rests on a voter never forgetting what it
//! acknowledged or whom it voted for, which a wiped disk does.
//!
//! Where the key is kept: in openraft's membership itself (`VoterNode::directory_id`), which
//! travels in the metadata log and in snapshots and takes effect on every node when appended
//! (as Kafka's `VotersRecord`). `controller.quorum.voters` gives only ids and addresses, so a
//! new quorum starts with no directory ids; the leader learns each voter's from its answers
//! (every frame names the sender's directory id) and records it with a membership change
//! (`record_directory_ids`). From then on every node refuses Raft traffic from that id with
//! another directory id: its Vote and AppendEntries requests are refused by the RPC server,
//! its answers are dropped by the sender (`PeerNetwork`) as if it were unreachable, so its
//! vote wins no election and its acknowledgement commits nothing; the quorum needs a majority
//! of the other voters meanwhile; told so, the node itself stops campaigning and voting
//! (`restrain_elections`). The operator removes the old key and adds the new one
//! (`sluice metadata-quorum remove-controller` / `add-controller`, Kafka's RemoveRaftVoter /
//! AddRaftVoter): the new incarnation becomes a learner with its directory id, catches up, and
//! only then is made a voter (`add_voter`).
//!
//! Not covered: a voter wiped before the leader recorded its directory id (the first
//! seconds of a new quorum, or a voter that never answered a leader) is accepted on first
//! contact, as Kafka's static `controller.quorum.voters` accepts every voter.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use openraft::ChangeMembers;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use sluice_engine::ids::kafka_uuid_string;

use crate::errors;
use crate::quorum::Raft;
use crate::records::BrokerId;
use crate::rpc::ControllerError;
use crate::NodeId;

/// Directory ids learned from peers' answers, waiting to be recorded, at most.
pub const LEARNED_DIRECTORY_IDS_MAX: usize = 64;
/// How often the leader checks whether a voter's directory id still needs recording.
pub const RECORD_DIRECTORY_IDS_INTERVAL_MS: u64 = 500;
/// Longest `add_voter` waits for the new voter to catch up as a learner.
pub const ADD_VOTER_CATCH_UP_MS_MAX: u64 = 120_000;
/// Longest a leader that removed itself waits, heartbeats off, for a voter to take over.
pub const STEP_DOWN_WAIT_MS_MAX: u64 = 30_000;

/// openraft's node: where its controller listener is, and the directory id of its metadata
/// log once recorded (`None` in a membership written from `controller.quorum.voters`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoterNode {
    pub addr: String,
    #[serde(default)]
    pub directory_id: Option<Uuid>,
}

impl fmt::Display for VoterNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.directory_id {
            Some(d) => write!(f, "{} (directory {})", self.addr, kafka_uuid_string(&d)),
            None => write!(f, "{} (directory not recorded)", self.addr),
        }
    }
}

/// What this node's effective membership says about every member, voters and learners
/// (kept current from openraft's metrics by `track_membership`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MembershipView {
    pub nodes: BTreeMap<NodeId, VoterNode>,
    pub voters: BTreeSet<NodeId>,
}

/// Shared by the RPC server and the Raft network: the recorded voter keys.
#[derive(Clone)]
pub struct VoterKeys {
    view: watch::Receiver<MembershipView>,
    learned: mpsc::Sender<(NodeId, Uuid)>,
    /// A peer refused this node's own key: it is a re-formatted incarnation of its node id.
    replaced: Arc<watch::Sender<bool>>,
}

/// The other ends of `VoterKeys`: fed by `track_membership`, drained by
/// `record_directory_ids`.
pub struct VoterKeysFeed {
    pub view: watch::Sender<MembershipView>,
    pub learned: mpsc::Receiver<(NodeId, Uuid)>,
}

pub fn voter_keys() -> (VoterKeys, VoterKeysFeed) {
    let (view_tx, view_rx) = watch::channel(MembershipView::default());
    let (learned_tx, learned_rx) = mpsc::channel(LEARNED_DIRECTORY_IDS_MAX);
    (
        VoterKeys {
            view: view_rx,
            learned: learned_tx,
            replaced: Arc::new(watch::channel(false).0),
        },
        VoterKeysFeed {
            view: view_tx,
            learned: learned_rx,
        },
    )
}

/// A directory id as `meta.properties` and Kafka's tools write it (22 base64url characters).
fn shown(dir: Option<Uuid>) -> String {
    dir.map_or_else(|| "none".to_string(), |d| kafka_uuid_string(&d))
}

impl VoterKeys {
    /// The directory id recorded for `id`, if any.
    pub fn recorded(&self, id: NodeId) -> Option<Uuid> {
        self.view
            .borrow()
            .nodes
            .get(&id)
            .and_then(|n| n.directory_id)
    }

    pub fn view(&self) -> MembershipView {
        self.view.borrow().clone()
    }

    /// A peer answered INVALID_VOTER_KEY to this node's own Raft traffic.
    pub fn mark_replaced(&self) {
        self.replaced
            .send_if_modified(|r| !std::mem::replace(r, true));
    }

    /// This node was told it is a replaced incarnation and has not been re-added since.
    pub fn replaced(&self) -> bool {
        *self.replaced.borrow()
    }

    /// Err(why) when node `id` speaks with a directory id other than the one recorded for it
    /// (Kafka's INVALID_VOTER_KEY). An unrecorded id is accepted and, when `learn`, offered
    /// to the leader for recording.
    pub fn check(&self, id: NodeId, dir: Option<Uuid>, learn: bool) -> Result<(), String> {
        match self.recorded(id) {
            Some(recorded) if dir != Some(recorded) => Err(format!(
                "node {id} has metadata directory {} but the quorum recorded {} for it \
                 (INVALID_VOTER_KEY, error {}): a re-formatted disk neither votes nor counts \
                 toward a commit until `sluice metadata-quorum remove-controller` and \
                 `add-controller` replace the voter",
                shown(dir),
                shown(Some(recorded)),
                errors::INVALID_VOTER_KEY
            )),
            Some(_) => Ok(()),
            None => {
                if let (true, Some(d)) = (learn, dir) {
                    // Full: the recorder is behind; the next answer offers it again.
                    let _ = self.learned.try_send((id, d));
                }
                Ok(())
            }
        }
    }
}

/// Keeps `view` equal to the effective membership in openraft's metrics.
pub async fn track_membership(raft: Raft, view: watch::Sender<MembershipView>) {
    let mut metrics = raft.metrics();
    loop {
        let next = {
            let m = metrics.borrow_and_update();
            let membership = m.membership_config.membership();
            MembershipView {
                nodes: membership.nodes().map(|(id, n)| (*id, n.clone())).collect(),
                voters: membership.voter_ids().collect(),
            }
        };
        view.send_if_modified(|v| {
            let changed = *v != next;
            *v = next;
            changed
        });
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// Self-restraint of a replaced incarnation: once a peer refused this node's key, it
/// neither campaigns (openraft's elections off) nor grants votes (`VoterKeys::replaced`,
/// checked by the RPC server) until its own membership records its directory id, i.e. it
/// was re-added (`add_voter`) and received that change. Its votes would be dropped anyway;
/// this keeps it from inflating terms and from voting for a candidate that has not heard of
/// the recorded key.
pub async fn restrain_elections(raft: Raft, (me, dir): (NodeId, Uuid), keys: VoterKeys) {
    let mut replaced = keys.replaced.subscribe();
    let mut view = keys.view.clone();
    loop {
        if replaced.wait_for(|r| *r).await.is_err() {
            return;
        }
        raft.runtime_config().elect(false);
        tracing::warn!(node = me, dir = %shown(Some(dir)), "the quorum recorded another metadata directory for this node: not campaigning or voting until `sluice metadata-quorum add-controller` re-adds it");
        let readded = view
            .wait_for(|v| v.nodes.get(&me).and_then(|n| n.directory_id) == Some(dir))
            .await;
        if readded.is_err() {
            return;
        }
        keys.replaced.send_replace(false);
        raft.runtime_config().elect(true);
        tracing::info!(
            node = me,
            "re-added to the metadata quorum with this directory"
        );
    }
}

/// On the leader: records its own directory id and every member's learned from its answers,
/// where the membership has none yet, with one membership change (`SetNodes`).
pub async fn record_directory_ids(
    raft: Raft,
    me: (NodeId, Uuid),
    keys: VoterKeys,
    mut learned_rx: mpsc::Receiver<(NodeId, Uuid)>,
) {
    let mut learned: BTreeMap<NodeId, Uuid> = BTreeMap::from([me]);
    let mut tick = tokio::time::interval(Duration::from_millis(RECORD_DIRECTORY_IDS_INTERVAL_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            got = learned_rx.recv() => match got {
                Some((id, dir)) => { learned.insert(id, dir); }
                None => return,
            },
            _ = tick.tick() => {}
        }
        if raft.metrics().borrow().current_leader != Some(me.0) {
            continue;
        }
        let view = keys.view();
        let updates: BTreeMap<NodeId, VoterNode> = learned
            .iter()
            .filter_map(|(id, dir)| {
                let node = view.nodes.get(id)?;
                node.directory_id.is_none().then(|| {
                    (
                        *id,
                        VoterNode {
                            addr: node.addr.clone(),
                            directory_id: Some(*dir),
                        },
                    )
                })
            })
            .collect();
        if updates.is_empty() {
            continue;
        }
        match raft
            .change_membership(ChangeMembers::SetNodes(updates.clone()), true)
            .await
        {
            Ok(_) => {
                let ids: Vec<String> = updates.keys().map(|id| id.to_string()).collect();
                tracing::info!(
                    "metadata directory ids recorded for voter(s) {}",
                    ids.join(" ")
                );
            }
            // Another change in progress, or leadership lost: the next tick tries again.
            Err(e) => tracing::debug!(error = %e, "recording directory ids deferred"),
        }
    }
}

fn quorum_error(code: i16, message: String) -> ControllerError {
    ControllerError { code, message }
}

fn not_committed(e: impl fmt::Display) -> ControllerError {
    quorum_error(
        errors::NOT_CONTROLLER,
        format!("the membership change did not commit: {e}"),
    )
}

/// Kafka's AddRaftVoter: `id` with metadata directory `dir` at `addr` becomes a learner,
/// catches up (bounded by `timeout`), then becomes a voter. Run on the leader.
pub async fn add_voter(
    raft: &Raft,
    keys: &VoterKeys,
    (id, dir, addr): (BrokerId, Uuid, String),
    timeout: Duration,
) -> Result<(), ControllerError> {
    let nid = id as NodeId;
    let view = keys.view();
    if view.voters.contains(&nid) {
        return Err(quorum_error(
            errors::DUPLICATE_VOTER,
            format!(
                "node {id} is already a voter with metadata directory {}; remove it first \
                 (sluice metadata-quorum remove-controller --controller-id {id} \
                 --controller-directory-id {})",
                shown(view.nodes.get(&nid).and_then(|n| n.directory_id)),
                shown(view.nodes.get(&nid).and_then(|n| n.directory_id)),
            ),
        ));
    }
    let node = VoterNode {
        addr,
        directory_id: Some(dir),
    };
    let resp = raft
        .change_membership(ChangeMembers::SetNodes(BTreeMap::from([(nid, node)])), true)
        .await
        .map_err(not_committed)?;
    let learner_at = resp.log_id.index;
    tracing::info!(node = id, dir = %shown(Some(dir)), "new voter added as a learner; waiting for it to catch up");
    let caught_up = raft
        .wait(Some(
            timeout.min(Duration::from_millis(ADD_VOTER_CATCH_UP_MS_MAX)),
        ))
        .metrics(
            |m| {
                m.replication.as_ref().is_some_and(|r| {
                    r.get(&nid)
                        .is_some_and(|l| l.is_some_and(|l| l.index >= learner_at))
                })
            },
            "the new voter caught up",
        )
        .await;
    if caught_up.is_err() {
        return Err(quorum_error(
            errors::REQUEST_TIMED_OUT,
            format!(
                "node {id} (directory {}) did not catch up within {timeout:?}; it stays a \
                 learner (is it running with that directory?)",
                shown(Some(dir))
            ),
        ));
    }
    raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([nid])), true)
        .await
        .map_err(not_committed)?;
    tracing::info!(node = id, dir = %shown(Some(dir)), "new voter caught up and votes");
    Ok(())
}

/// Kafka's RemoveRaftVoter: the voter `(id, dir)` leaves the quorum. With `observer` it
/// stays in the membership as a learner, so it goes on receiving the metadata log (Kafka's
/// removed voter goes on as an observer): a node that is also a live broker needs it to serve.
/// Otherwise it leaves the membership. Run on the leader; when the leader removes itself it
/// steps down (`step_down`).
pub async fn remove_voter(
    raft: &Raft,
    keys: &VoterKeys,
    (id, dir): (BrokerId, Uuid),
    observer: bool,
) -> Result<(), ControllerError> {
    let nid = id as NodeId;
    let view = keys.view();
    let recorded = view.nodes.get(&nid).and_then(|n| n.directory_id);
    // An unrecorded directory id cannot be checked; Kafka's static voters have none either.
    if !view.voters.contains(&nid) || recorded.is_some_and(|r| r != dir) {
        return Err(quorum_error(
            errors::VOTER_NOT_FOUND,
            format!(
                "no voter {id} with metadata directory {} (voter {id} is {})",
                shown(Some(dir)),
                if view.voters.contains(&nid) {
                    format!("recorded with directory {}", shown(recorded))
                } else {
                    "not a voter".into()
                }
            ),
        ));
    }
    if view.voters.len() == 1 {
        return Err(quorum_error(
            errors::INVALID_REQUEST,
            format!("node {id} is the only voter; the quorum cannot lose it"),
        ));
    }
    raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([nid])), observer)
        .await
        .map_err(not_committed)?;
    tracing::info!(node = id, dir = %shown(Some(dir)), observer, "voter removed from the metadata quorum");
    if observer && raft.metrics().borrow().id == nid {
        step_down(raft.clone());
    }
    Ok(())
}

/// The leader removed itself but stays in the membership as a learner, and openraft 0.9 keeps
/// a learner that leads leading (it has no leadership transfer). Kafka's removed leader
/// resigns: so this one stops its heartbeats, the controller stops deciding here (it acts only
/// on a voter), and the voters elect one of themselves once the lease of its last heartbeat
/// has run out (1.5–2 s with Kafka's default `controller.quorum.election.timeout.ms`). The new
/// leader's first AppendEntries makes this node a follower; its heartbeats are turned back
/// on then (or after `STEP_DOWN_WAIT_MS_MAX`, if no voter was elected), for the day it is a
/// voter again.
fn step_down(raft: Raft) {
    raft.runtime_config().heartbeat(false);
    tracing::info!("this node left the voters: no more heartbeats until a voter leads the quorum");
    tokio::spawn(async move {
        let me = raft.metrics().borrow().id;
        let replaced = raft
            .wait(Some(Duration::from_millis(STEP_DOWN_WAIT_MS_MAX)))
            .metrics(
                |m| m.current_leader.is_some_and(|l| l != me),
                "another quorum leader",
            )
            .await;
        raft.runtime_config().heartbeat(true);
        match replaced {
            Ok(m) => {
                tracing::info!(leader = ?m.current_leader, "the quorum has a new leader; this node observes")
            }
            Err(e) => tracing::warn!("no voter took over the quorum's leadership: {e}"),
        }
    });
}

/// Whether `id` votes in the effective membership (a leader that removed itself does not).
pub fn is_voter(raft: &Raft, id: NodeId) -> bool {
    raft.metrics()
        .borrow()
        .membership_config
        .membership()
        .voter_ids()
        .any(|v| v == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_recorded_directory_id_speaks_for_a_voter() {
        let (keys, mut feed) = voter_keys();
        let (d1, d2) = (Uuid::new_v4(), Uuid::new_v4());
        let node = |dir| VoterNode {
            addr: "127.0.0.1:9093".into(),
            directory_id: dir,
        };
        feed.view.send_replace(MembershipView {
            nodes: BTreeMap::from([(1, node(Some(d1))), (2, node(None))]),
            voters: BTreeSet::from([1, 2]),
        });
        assert!(keys.check(1, Some(d1), true).is_ok());
        let refused = keys.check(1, Some(d2), true).unwrap_err();
        assert!(refused.contains("INVALID_VOTER_KEY"), "{refused}");
        assert!(
            keys.check(1, None, true).is_err(),
            "no directory id is not the recorded one"
        );
        // Not recorded yet: accepted, and offered to the leader for recording.
        assert!(keys.check(2, Some(d2), true).is_ok());
        assert_eq!(feed.learned.try_recv().unwrap(), (2, d2));
        assert!(
            feed.learned.try_recv().is_err(),
            "a recorded id is not offered"
        );
        assert!(!keys.replaced());
        keys.mark_replaced();
        assert!(keys.replaced());
    }
}
