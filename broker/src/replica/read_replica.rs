//! Fetch from the closest replica (KIP-392), on the partition's owner shard.
//!
//! A consumer's Fetch from v11 carries its `client.rack` (`rack_id`) and may be served by
//! any replica. The leader, with `replica.selector.class` set to Kafka's
//! `RackAwareReplicaSelector`, answers a consumer whose rack holds an in-sync follower but
//! not the leader with that follower as `preferred_read_replica` and no records (Kafka's
//! `ReplicaManager.findPreferredReadReplica`: followers in the ISR whose log holds the fetch
//! offset; the most caught-up one, then the one caught up most recently). A follower serves
//! a consumer up to its high watermark (learned from the leader's fetch answers): an offset
//! between its high watermark and its log end gets no records, one beyond its log end or
//! below its log start OFFSET_OUT_OF_RANGE, a leader epoch other than the one it follows
//! FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH, and a broker that is no replica any more
//! NOT_LEADER_OR_FOLLOWER; the consumer then asks the leader again (KIP-392's compatibility
//! rules). Older versions are served by the leader only. The leader checks a consumer's
//! leader epoch the same way (every version that sends one).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use sluice_engine::{FetchIsolation, FirstBatch};

use super::{epoch_error, LeaderState, Role};
use crate::config::cluster::ReplicaSelector;
use crate::ops::FetchPart;
use crate::shard::{Shard, TopicPartition};

/// The first Fetch version with the consumer's `rack_id` (Kafka's `ClientMetadata`).
pub const CLIENT_METADATA_VERSION_MIN: i16 = 11;

/// What a v11+ consumer's fetch tells about it (Kafka's `ClientMetadata`).
#[derive(Debug, Clone)]
pub struct ClientMetadata {
    /// `client.rack`; empty when the consumer set none.
    pub rack_id: Arc<str>,
    /// The leader epoch the consumer knows (-1: none).
    pub current_leader_epoch: i32,
}

/// One replica a consumer could read from (Kafka's `ReplicaView`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaView {
    pub node_id: i32,
    pub rack: Option<String>,
    pub log_end_offset: i64,
    pub time_since_caught_up: Duration,
}

/// Kafka's `RackAwareReplicaSelector.select`: the leader unless the client's rack holds
/// replicas and not the leader, then the most caught-up of them (log end offset, then the
/// shortest time since caught up, then the highest id). `None` means "the leader serves".
pub fn rack_aware_select(
    client_rack: &str,
    leader: &ReplicaView,
    followers: &[ReplicaView],
) -> Option<i32> {
    if client_rack.is_empty() || leader.rack.as_deref() == Some(client_rack) {
        return None;
    }
    followers
        .iter()
        .filter(|f| f.rack.as_deref() == Some(client_rack))
        .max_by(|a, b| {
            let key = |r: &ReplicaView| {
                (
                    r.log_end_offset,
                    std::cmp::Reverse(r.time_since_caught_up),
                    r.node_id,
                )
            };
            key(a).cmp(&key(b))
        })
        .map(|f| f.node_id)
}

/// A v11+ consumer's fetch of `tp` on its owner shard.
pub fn serve_consumer(
    shard: &Shard,
    tp: &TopicPartition,
    client: &ClientMetadata,
    (offset, max_bytes, first): (i64, u32, FirstBatch),
) -> FetchPart {
    let Some(log) = shard.log(tp) else {
        return FetchPart::failed(ResponseError::NotLeaderOrFollower);
    };
    let preferred = match shard.replicas.borrow().get(tp) {
        Some(Role::Leader(state)) => {
            if let Some(e) = epoch_error(client.current_leader_epoch, state.leader_epoch) {
                return FetchPart::failed(e);
            }
            let leader_log_end = log.borrow().log_end_offset();
            preferred_read_replica(shard, state, client, (offset, leader_log_end))
        }
        Some(Role::Follower { leader_epoch, .. }) => {
            if let Some(e) = epoch_error(client.current_leader_epoch, *leader_epoch) {
                return FetchPart::failed(e);
            }
            None
        }
        // No role: an offline log (its read answers KAFKA_STORAGE_ERROR) or a partition the
        // metadata says this broker leads, before its first role, reads as it always did.
        None => {
            let me = shard.broker.node_id;
            let led = crate::ops::partition_info(shard, tp).is_some_and(|i| i.is_led_by(me));
            if !led && !log.borrow().is_offline() {
                return FetchPart::failed(ResponseError::NotLeaderOrFollower);
            }
            None
        }
    };
    if let Some(node_id) = preferred {
        let l = log.borrow();
        tracing::debug!(topic = %tp.topic, partition = tp.partition, rack = %client.rack_id, node_id, "consumer sent to its rack's replica");
        return FetchPart {
            error: 0,
            high_watermark: l.high_watermark(),
            log_start_offset: l.log_start_offset(),
            records: None,
            diverging_epoch: None,
            preferred_read_replica: Some(node_id),
        };
    }
    let read = (offset, max_bytes, first);
    crate::ops::read_local(shard, tp, &log, read, FetchIsolation::HighWatermark)
}

/// A consumer's leader epoch against the one this leader leads at (Kafka's
/// `localLogWithEpochOrThrow`): older FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH.
pub fn leader_epoch_error(shard: &Shard, tp: &TopicPartition, asked: i32) -> Option<ResponseError> {
    match shard.replicas.borrow().get(tp) {
        Some(Role::Leader(state)) => epoch_error(asked, state.leader_epoch),
        _ => None,
    }
}

/// The leader's choice for this consumer (Kafka's `findPreferredReadReplica`); `None`
/// when no selector is configured or the leader itself is the choice.
fn preferred_read_replica(
    shard: &Shard,
    state: &LeaderState,
    client: &ClientMetadata,
    (offset, leader_log_end): (i64, i64),
) -> Option<i32> {
    let selector = shard.config.cluster.as_ref()?.replication.replica_selector;
    if selector != ReplicaSelector::RackAware || client.rack_id.is_empty() {
        return None;
    }
    let meta = shard.metadata();
    let rack_of = |id: i32| -> Option<Option<String>> {
        let live = meta.brokers.iter().find(|b| b.node_id == id)?;
        Some(live.rack.clone())
    };
    let me = shard.broker.node_id;
    let now = Instant::now();
    let followers: Vec<ReplicaView> = state
        .isr
        .iter()
        .filter(|id| **id != me)
        .filter_map(|id| {
            let f = state.followers.get(id)?;
            let holds = f.log_end_offset >= offset && f.log_start_offset <= offset;
            holds.then_some(ReplicaView {
                node_id: *id,
                rack: rack_of(*id)?, // not a live broker: Kafka's `Node.noNode()`, never chosen
                log_end_offset: f.log_end_offset,
                time_since_caught_up: now.saturating_duration_since(f.last_caught_up),
            })
        })
        .collect();
    let leader = ReplicaView {
        node_id: me,
        rack: rack_of(me).flatten(),
        log_end_offset: leader_log_end,
        time_since_caught_up: Duration::ZERO,
    };
    rack_aware_select(&client.rack_id, &leader, &followers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(node_id: i32, rack: &str, log_end_offset: i64, since_ms: u64) -> ReplicaView {
        ReplicaView {
            node_id,
            rack: (!rack.is_empty()).then(|| rack.to_string()),
            log_end_offset,
            time_since_caught_up: Duration::from_millis(since_ms),
        }
    }

    #[test]
    fn rack_aware_selection_follows_kafkas_selector() {
        let leader = view(1, "a", 100, 0);
        let followers = [
            view(2, "b", 90, 5),
            view(3, "b", 100, 50),
            view(4, "c", 100, 0),
        ];
        // No rack, or the leader's rack: the leader serves.
        assert_eq!(rack_aware_select("", &leader, &followers), None);
        assert_eq!(rack_aware_select("a", &leader, &followers), None);
        // No replica in the client's rack: the leader.
        assert_eq!(rack_aware_select("z", &leader, &followers), None);
        // The most caught-up replica of the rack.
        assert_eq!(rack_aware_select("b", &leader, &followers), Some(3));
        assert_eq!(rack_aware_select("c", &leader, &followers), Some(4));
        // Equal log ends: the one caught up most recently.
        let tied = [view(2, "b", 100, 5), view(3, "b", 100, 50)];
        assert_eq!(rack_aware_select("b", &leader, &tied), Some(2));
    }
}
