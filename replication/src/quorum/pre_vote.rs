//! Raft's pre-vote (§9.6 of Ongaro's thesis; Kafka's KIP-996), which openraft 0.9 lacks.
//!
//! Without it a voter cut off from the others (a network partition, a paused process) keeps
//! starting elections, each with a higher term, and when it can reach them again its term
//! unseats the healthy leader: the quorum has no leader for another election (1.5–2 s with
//! Kafka's default timeout), and the rejoining node, which refuses AppendEntries of the
//! lower term, learns nothing until then. The fault suite saw it after every isolation.
//!
//! So openraft's own elections stay off (`RuntimeConfigHandle::elect`) on a voter until a
//! pre-vote says a majority would vote: `campaign_gate` asks the other voters
//! (`Request::PreVote`) once this node has not heard from a leader for
//! `controller.quorum.election.timeout.ms`; each grants unless it leads, heard from a leader
//! within that time, or holds a longer log (`answer`). A granted majority (this node
//! counted) turns elections on, and openraft campaigns at once (its own timeout has run
//! out by then); a refusal, or hearing from a leader again, turns them off. A pre-vote
//! changes no term and no vote.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::quorum::voters::VoterKeys;
use crate::quorum::{Identity, Raft};
use crate::rpc::{Peer, Request, Response};

/// When this node last heard from a quorum leader (an AppendEntries or snapshot it
/// accepted), as milliseconds since the record was made.
pub struct LeaderContact {
    origin: Instant,
    last_ms: AtomicU64,
}

impl LeaderContact {
    /// Counts as heard at creation, so a starting node gives a leader one timeout to show.
    pub fn new() -> Arc<LeaderContact> {
        Arc::new(LeaderContact {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
        })
    }

    pub fn heard(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    pub fn since(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.origin.elapsed().saturating_sub(last)
    }
}

/// A peer's pre-vote, answered by this node: granted unless it leads, heard from a leader
/// within `quiet`, is a replaced incarnation, or holds more of the log than the candidate.
pub fn answer(
    raft: &Raft,
    contact: &LeaderContact,
    keys: &VoterKeys,
    (candidate_last_index, quiet): (Option<u64>, Duration),
) -> bool {
    let m = raft.metrics().borrow().clone();
    let leads = m.state == openraft::ServerState::Leader;
    !leads
        && !keys.replaced()
        && contact.since() >= quiet
        && candidate_last_index >= m.last_log_index
}

/// Keeps openraft's elections on only while a pre-vote would win (see the module docs),
/// checking every `tick`.
pub async fn campaign_gate(
    raft: Raft,
    identity: Identity,
    keys: VoterKeys,
    contact: Arc<LeaderContact>,
    (quiet, tick): (Duration, Duration),
) {
    let mut enabled = true; // openraft's own default
    loop {
        tokio::time::sleep(tick).await;
        let m = raft.metrics().borrow().clone();
        if m.state == openraft::ServerState::Shutdown {
            return;
        }
        let view = keys.view();
        let want = if m.state == openraft::ServerState::Leader {
            enabled
        } else if !view.voters.contains(&m.id) || keys.replaced() || contact.since() < quiet {
            false
        } else {
            let peers: Vec<String> = view
                .voters
                .iter()
                .filter(|id| **id != m.id)
                .filter_map(|id| view.nodes.get(id).map(|n| n.addr.clone()))
                .collect();
            let granted = pre_vote(&identity, &peers, m.last_log_index, tick).await;
            // This node's own grant counts: a majority of all the voters.
            2 * (granted + 1) > view.voters.len()
        };
        if want != enabled {
            raft.runtime_config().elect(want);
            enabled = want;
            match want {
                true => tracing::info!(
                    "no quorum leader heard for {:?} and a majority would vote: campaigning",
                    contact.since()
                ),
                false => {
                    tracing::debug!("elections off: a leader is heard or no majority would vote")
                }
            }
        }
    }
}

/// How many of `peers` grant a pre-vote for a log ending at `last_index` within `timeout`.
async fn pre_vote(
    identity: &Identity,
    peers: &[String],
    last_index: Option<u64>,
    timeout: Duration,
) -> usize {
    let mut asks = tokio::task::JoinSet::new();
    for addr in peers {
        let envelope = identity.envelope(Request::PreVote { last_index });
        let addr = addr.clone();
        asks.spawn(async move {
            let reply = Peer::new(addr).call(&envelope, timeout).await;
            matches!(reply.map(|r| r.body), Ok(Response::PreVote(true)))
        });
    }
    let mut granted = 0;
    while let Some(answer) = asks.join_next().await {
        granted += usize::from(answer.unwrap_or(false));
    }
    granted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_counts_from_creation_and_from_each_time_heard() {
        let contact = LeaderContact::new();
        assert!(contact.since() < Duration::from_secs(1));
        std::thread::sleep(Duration::from_millis(30));
        assert!(contact.since() >= Duration::from_millis(30));
        contact.heard();
        assert!(contact.since() < Duration::from_millis(30));
    }
}
