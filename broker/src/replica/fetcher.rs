//! Kafka's `ReplicaFetcher`: one fetch loop per (shard, leader broker) copying every
//! partition this shard follows from that leader. Each round sends one Fetch as a replica
//! (this broker's id and broker epoch, each partition's log end offset, current leader epoch
//! and last fetched epoch), then per partition: truncates where the leader says the log
//! diverged (KIP-320), appends the leader's batches byte for byte through the shard's
//! group-commit appender, and takes the leader's high watermark (clamped to its own log
//! end). The loop ends when the shard follows nothing from that leader any more.

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{select, Either};
use kafka_protocol::error::ResponseError;
use sluice_engine::{BatchHeader, LeaderEpoch, TruncateReason};
use sluice_net::client::connection::Connection;
use sluice_net::client::replica::{
    replica_fetch, ReplicaFetchOptions, ReplicaFetchPartition, ReplicaFetched, ReplicaIdentity,
};

use super::Role;
use crate::append::AppendOrigin;
use crate::shard::{LogRef, Shard, TopicPartition};

/// Pause after a failed round (Kafka's `replica.fetch.backoff.ms` is 1000; a shorter one
/// shortens failover, and the loop is bounded by it).
pub const REPLICA_FETCH_BACKOFF_MS: u64 = 100;
/// Kafka's `replica.fetch.response.max.bytes` default (10 MiB).
pub const REPLICA_FETCH_RESPONSE_BYTES_MAX: i32 = 10 << 20;

/// Starts the loop for `leader` on this shard unless one runs; if one runs, it asks again
/// at once with the partitions it now follows (a partition that just began following
/// `leader` must not wait out a long poll parked for the others: an acks=all produce on
/// the new leader waits for this replica's fetch).
pub fn ensure_running(shard: &Rc<Shard>, leader: i32) {
    if let Some(wake) = shard.fetchers.borrow().get(&leader) {
        wake.notify(usize::MAX);
        return;
    }
    let wake = Rc::new(event_listener::Event::new());
    shard.fetchers.borrow_mut().insert(leader, wake.clone());
    compio::runtime::spawn(run(shard.clone(), leader, wake)).detach();
}

/// What one fetch round did.
enum Round {
    /// Something moved: ask again at once.
    Progressed,
    /// Nothing moved (an error to wait out).
    Idle,
    /// The followed partitions changed while the request was out: its answer is not
    /// awaited (the connection is dropped, since the answer would arrive later).
    Replan,
}

async fn run(shard: Rc<Shard>, leader: i32, wake: Rc<event_listener::Event>) {
    let mut connection: Option<Connection> = None;
    tracing::debug!(shard = shard.id, leader, "replica fetcher started");
    while !shard.stopping.get() {
        let changed = wake.listen();
        let mut parts = followed(&shard, leader);
        if parts.is_empty() {
            break;
        }
        // A log refusing appends for a full disk is not fetched for (its appends would
        // fail); it resumes by itself once space is freed (`replica::disk_full`).
        parts.retain(|(_, log, _)| log.try_borrow().map_or(true, |l| !l.is_disk_full()));
        if parts.is_empty() {
            backoff(&shard).await;
            continue;
        }
        if connection.is_none() {
            connection = connect(&shard, leader).await;
            if connection.is_none() {
                backoff(&shard).await;
                continue;
            }
        }
        let conn = connection.as_mut().expect("connected above");
        match fetch_round(&shard, conn, (leader, changed), &parts).await {
            Ok(Round::Progressed) => {}
            Ok(Round::Idle) => backoff(&shard).await,
            Ok(Round::Replan) => connection = None,
            Err(e) => {
                tracing::debug!(leader, "replica fetch failed: {e}");
                connection = None;
                backoff(&shard).await;
            }
        }
    }
    shard.fetchers.borrow_mut().remove(&leader);
    tracing::debug!(shard = shard.id, leader, "replica fetcher stopped");
}

async fn backoff(shard: &Shard) {
    let stop = shard.stop.listen();
    let _ = compio::time::timeout(Duration::from_millis(REPLICA_FETCH_BACKOFF_MS), stop).await;
}

/// Partitions this shard follows from `leader`, with their logs and leader epochs.
fn followed(shard: &Shard, leader: i32) -> Vec<(TopicPartition, LogRef, i32)> {
    shard
        .replicas
        .borrow()
        .iter()
        .filter_map(|(tp, role)| match role {
            Role::Follower {
                leader: l,
                leader_epoch,
            } if *l == leader => Some((tp.clone(), shard.log(tp)?, *leader_epoch)),
            _ => None,
        })
        .collect()
}

async fn connect(shard: &Shard, leader: i32) -> Option<Connection> {
    let meta = shard.metadata();
    let endpoint = meta.inter_broker.get(&leader)?.clone();
    let address = format!("{}:{}", endpoint.0, endpoint.1);
    let client_id = format!("sluice-replica-fetcher-{}", shard.broker.node_id);
    match Connection::connect(&address, &client_id).await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::debug!(leader, %address, "cannot reach the leader: {e}");
            None
        }
    }
}

/// The round's Fetch: who asks, each partition not held back by the follower throttle,
/// and the options; None when the throttle holds back every partition.
fn fetch_request(
    shard: &Shard,
    parts: &[(TopicPartition, LogRef, i32)],
    throttled: &[bool],
) -> Option<(
    ReplicaIdentity,
    Vec<ReplicaFetchPartition>,
    ReplicaFetchOptions,
)> {
    let meta = shard.metadata();
    let replication = shard.config.cluster.as_ref().map(|c| c.replication.clone());
    let (max_bytes, wait_ms) = replication.map_or((1 << 20, 500), |r| {
        (r.replica_fetch_bytes_max, r.replica_fetch_wait_ms_max)
    });
    let skip = crate::throttle::FOLLOWER
        .exceeded(shard.current_config().follower_replication_throttled_rate);
    let asks: Vec<ReplicaFetchPartition> = parts
        .iter()
        .zip(throttled)
        .filter(|(_, t)| !(skip && **t))
        .map(|((tp, log, epoch), _)| {
            let l = log.borrow();
            ReplicaFetchPartition {
                topic: tp.topic.to_string(),
                topic_id: meta.topic(&tp.topic).map_or(uuid::Uuid::nil(), |t| t.id.0),
                partition: tp.partition,
                fetch_offset: l.log_end_offset(),
                log_start_offset: l.log_start_offset(),
                current_leader_epoch: *epoch,
                last_fetched_epoch: l.leader_epoch_cache().latest_epoch().map_or(-1, |e| e.0),
                partition_max_bytes: max_bytes as i32,
            }
        })
        .collect();
    if asks.is_empty() {
        return None;
    }
    let who = ReplicaIdentity {
        replica_id: shard.broker.node_id,
        broker_epoch: shard
            .broker
            .cluster
            .as_ref()
            .map_or(-1, |h| h.broker.borrow().broker_epoch),
    };
    let options = ReplicaFetchOptions {
        max_wait_ms: wait_ms as i32,
        min_bytes: 1,
        max_bytes: REPLICA_FETCH_RESPONSE_BYTES_MAX,
    };
    Some((who, asks, options))
}

/// One Fetch to the leader and what follows from its answer; `changed` fires when the
/// followed partitions change, and the shard's stop likewise gives up the wait for the
/// answer.
async fn fetch_round(
    shard: &Rc<Shard>,
    conn: &mut Connection,
    (leader, changed): (i32, event_listener::EventListener),
    parts: &[(TopicPartition, LogRef, i32)],
) -> sluice_net::client::Result<Round> {
    let throttled = follower_throttled(shard, &shard.metadata(), parts);
    let Some((who, asks, options)) = fetch_request(shard, parts, &throttled) else {
        return Ok(Round::Idle); // every partition waits for the follower throttle
    };
    // A stop gives up the wait too: the round holds its partitions' logs, which the shard
    // must close unshared ("log still in use at shutdown" otherwise).
    let stop = shard.stop.listen();
    if shard.stopping.get() {
        return Ok(Round::Replan);
    }
    let interrupt = select(changed, stop);
    let answers = match select(
        Box::pin(replica_fetch(conn, who, &asks, options)),
        interrupt,
    )
    .await
    {
        Either::Left((answers, _)) => answers?,
        Either::Right(_) => return Ok(Round::Replan),
    };
    let mut progressed = false;
    for answer in answers {
        let Some(at) = parts
            .iter()
            .position(|(tp, _, _)| *tp.topic == *answer.topic && tp.partition == answer.partition)
        else {
            continue;
        };
        let (tp, log, epoch) = &parts[at];
        if throttled[at] {
            crate::throttle::FOLLOWER.record(answer.records.len() as u64);
        }
        // Kafka's fetcher drops an answer for a partition whose fetch state changed while
        // the request was out (it became leader, or follows another leader or epoch).
        if !still_following(shard, tp, (leader, *epoch)) {
            tracing::debug!(topic = %tp.topic, partition = tp.partition, "fetch answer for a changed role dropped");
            continue;
        }
        progressed |= apply_answer(shard, (tp, log), (leader, *epoch), answer).await;
    }
    Ok(if progressed {
        Round::Progressed
    } else {
        Round::Idle
    })
}

/// Per part: whether the follower throttle applies to it (Kafka's `shouldFollowerThrottle`:
/// named for this broker in `follower.replication.throttled.replicas`, and not in the ISR).
fn follower_throttled(
    shard: &Shard,
    meta: &crate::metadata::ClusterMetadata,
    parts: &[(TopicPartition, LogRef, i32)],
) -> Vec<bool> {
    let me = shard.broker.node_id;
    parts
        .iter()
        .map(|(tp, _, _)| {
            let r = meta
                .topic(&tp.topic)
                .and_then(|t| t.partitions.get(tp.partition as usize))
                .and_then(|p| p.replication.clone());
            r.is_some_and(|r| {
                !r.isr.contains(&me) && r.throttles.follower.applies(tp.partition, me)
            })
        })
        .collect()
}

/// Whether this shard still follows `leader` at `epoch` for `tp` (as when it asked).
fn still_following(shard: &Shard, tp: &TopicPartition, (leader, epoch): (i32, i32)) -> bool {
    matches!(
        shard.replicas.borrow().get(tp),
        Some(Role::Follower { leader: l, leader_epoch: e }) if *l == leader && *e == epoch
    )
}

async fn apply_answer(
    shard: &Rc<Shard>,
    (tp, log): (&TopicPartition, &LogRef),
    asked: (i32, i32),
    a: ReplicaFetched,
) -> bool {
    match a.error {
        None => {}
        Some(ResponseError::OffsetOutOfRange) => return out_of_range(tp, log, &a),
        Some(e) => {
            tracing::debug!(topic = %tp.topic, partition = tp.partition, "replica fetch: {e:?}");
            return false;
        }
    }
    if let Some(d) = a.diverging_epoch {
        // The leader lacks an epoch older than its unclean election: this replica holds the
        // old leader's side of it.
        let unclean = crate::ops::partition_info(shard, tp)
            .and_then(|i| i.replication.clone())
            .is_some_and(|r| d.epoch < r.last_unclean_epoch);
        let truncated = truncate_diverging(tp, log, (d.epoch, d.end_offset), unclean);
        if truncated {
            // The recovery point on disk must not name an offset above the cut before
            // anything is appended again (Kafka's LogManager.truncateTo checkpoints too).
            let kind = crate::checkpoint::OffsetCheckpoint::RecoveryPoint;
            crate::checkpoint::write_checkpoints(shard, kind).await;
        }
        return truncated;
    }
    let records = whole_batches(a.records);
    if !records.is_empty() {
        let Some(info) = crate::ops::partition_info(shard, tp) else {
            return false;
        };
        let appended = match shard
            .appender
            .enqueue_from(AppendOrigin::Replication, (log.clone(), info), records)
            .await
        {
            Ok(ticket) => ticket.wait().await,
            Err(e) => Err(e),
        };
        if let Err(e) = appended {
            tracing::warn!(topic = %tp.topic, partition = tp.partition, "appending the leader's records: {e:?}");
            return false;
        }
        if !still_following(shard, tp, asked) {
            return false;
        }
    }
    let moved = log
        .borrow_mut()
        .update_high_watermark(a.high_watermark)
        .is_some();
    if moved {
        if let Some(info) = crate::ops::partition_info(shard, tp) {
            info.appended.notify(usize::MAX);
        }
    }
    true
}

/// The leader's log starts past ours (retention, DeleteRecords): start over there.
fn out_of_range(tp: &TopicPartition, log: &LogRef, a: &ReplicaFetched) -> bool {
    let mut l = log.borrow_mut();
    if a.log_start_offset > l.log_end_offset() {
        tracing::info!(topic = %tp.topic, partition = tp.partition, start = a.log_start_offset, "the leader's log starts past ours: starting over there");
        return l.truncate_fully_and_start_at(a.log_start_offset).is_ok();
    }
    tracing::warn!(topic = %tp.topic, partition = tp.partition, "offset out of range on the leader");
    false
}

/// Kafka's fetcher truncation: where `leader` = (epoch, end offset) says this log leaves the
/// leader's (`PartitionLog::offset_truncation_state`). When the answer is not final, the next
/// fetch carries the new latest epoch and the leader answers again.
///
/// `unclean`: the cut is toward a leader elected uncleanly, from data of the epochs before
/// it: the records cut are lost (some may have been acknowledged, even below this
/// replica's high watermark), logged and counted (`TruncateReason::UncleanLeaderElection`,
/// the metric `sluice_unclean_truncated_offsets`). Otherwise a cut below the high
/// watermark is a bug and panics.
fn truncate_diverging(
    tp: &TopicPartition,
    log: &LogRef,
    (epoch, end_offset): (i32, i64),
    unclean: bool,
) -> bool {
    let mut l = log.borrow_mut();
    let initial = l.log_end_offset();
    let to = l
        .offset_truncation_state((LeaderEpoch(epoch), end_offset), initial)
        .offset
        .max(0);
    tracing::info!(topic = %tp.topic, partition = tp.partition, to, "log diverges from the leader's: truncating");
    let reason = if unclean && to < initial {
        tracing::error!(topic = %tp.topic, partition = tp.partition, to, high_watermark = l.high_watermark(), lost = initial - to, "following a leader elected uncleanly: its records past the new leader's log are cut");
        TruncateReason::UncleanLeaderElection
    } else {
        TruncateReason::DivergingEpoch
    };
    match l.truncate_to(to, reason) {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(topic = %tp.topic, partition = tp.partition, "truncation deferred: {e}");
            false
        }
    }
}

/// The whole batches at the start of `records` (a size bound may cut the last one).
fn whole_batches(records: Bytes) -> Bytes {
    let mut at = 0;
    while let Ok(h) = BatchHeader::parse(&records[at..]) {
        if records.len() - at < h.total_bytes() {
            break;
        }
        at += h.total_bytes();
    }
    records.slice(..at)
}
