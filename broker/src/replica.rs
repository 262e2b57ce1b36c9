//! Replicated partitions on their owner shard (cluster mode): Kafka's `Partition` for the
//! leader (follower progress, `maybe_expand_isr` / `maybe_shrink_isr`, the high watermark)
//! and the role changes each committed metadata snapshot brings. The follower side's fetch
//! loops are in `replica/fetcher.rs`.
//!
//! A role is one of two state types, with every transition in `on_metadata`:
//! - `Leader`: this broker leads at `leader_epoch`; followers' log end offsets arrive with
//!   their fetches; the high watermark is the smallest log end offset in the ISR; ISR changes
//!   go to the controller (AlterPartition) and apply only once committed.
//! - `Follower`: this broker copies `leader`'s log at `leader_epoch` (a leader of -1: no one
//!   may lead, nothing is fetched).
//!
//! Lives on one shard: `Shard::replicas` is touched only by the partition's owner.

pub mod disk_full;
pub mod fetcher;
pub mod read_replica;

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use sluice_engine::{FetchIsolation, HighWatermarkMode, LastFetchedEpoch, LeaderEpoch};
use sluice_replication::{ControllerReply, ControllerRequest};

use crate::metadata::{PartitionInfo, Replication};
use crate::ops::FetchPart;
use crate::shard::{LogRef, Shard, TopicPartition};

use sluice_net::client::replica::NO_PARTITION_LEADER_EPOCH;

/// What the leader knows of one follower (Kafka's `Replica` state).
#[derive(Debug, Clone)]
pub struct FollowerProgress {
    /// The offset of its last fetch (-1 before any).
    pub log_end_offset: i64,
    /// Its log start offset, as its last fetch said (-1 before any).
    pub log_start_offset: i64,
    /// When it last held everything the leader had (Kafka's `lastCaughtUpTimeMs`).
    pub last_caught_up: Instant,
    last_fetch: Instant,
    /// The leader's log end offset when the follower last fetched.
    leader_end_at_last_fetch: i64,
}

impl FollowerProgress {
    fn new(now: Instant) -> FollowerProgress {
        FollowerProgress {
            log_end_offset: -1,
            log_start_offset: -1,
            last_caught_up: now,
            last_fetch: now,
            leader_end_at_last_fetch: -1,
        }
    }
}

#[derive(Debug)]
pub struct LeaderState {
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub min_insync_replicas: i32,
    pub followers: HashMap<i32, FollowerProgress>,
    /// An AlterPartition is on its way to the controller (one at a time, as Kafka).
    pub isr_change_in_flight: bool,
    /// The ISR this leader last proposed, until it is committed (counted as an ISR shrink
    /// or expansion then, as Kafka's `IsrShrinksPerSec` / `IsrExpandsPerSec`) or refused.
    pub proposed_isr: Option<Vec<i32>>,
    /// The log end offset when this broker started leading at `leader_epoch` (Kafka's
    /// `leaderEpochStartOffsetOpt`): until the high watermark reaches it, the high
    /// watermark may be lower than the one the previous leader exposed.
    pub leader_epoch_start_offset: i64,
    /// No expansion is proposed before this, after the controller refused one
    /// (`ISR_EXPAND_RETRY_BACKOFF`).
    pub expand_not_before: Option<Instant>,
}

/// How long a leader waits after the controller refused an ISR expansion before proposing
/// one again (without it, every fetch of a refused follower proposed again: about a
/// thousand refusals a second after two nodes restarted).
const ISR_EXPAND_RETRY_BACKOFF: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub enum Role {
    Leader(LeaderState),
    Follower { leader: i32, leader_epoch: i32 },
}

/// Applies the shard's new snapshot to every replicated partition it owns.
pub fn on_metadata(shard: &Rc<Shard>) {
    let me = shard.broker.node_id;
    let meta = shard.metadata();
    let logs: Vec<(TopicPartition, LogRef)> = shard
        .logs
        .borrow()
        .iter()
        .map(|(tp, l)| (tp.clone(), l.clone()))
        .collect();
    for (tp, log) in logs {
        let info = meta
            .topic(&tp.topic)
            .and_then(|t| t.partitions.get(tp.partition as usize))
            .cloned();
        let Some(info) = info else { continue };
        let Some(r) = info.replication.clone() else {
            continue;
        };
        if log.borrow().is_offline() {
            continue; // its log dir failed: neither leads nor follows (`log_dir_failure`)
        }
        if r.partition_epoch < 0 {
            continue; // not known yet (a broker before its first image)
        }
        if !shard.replicas.borrow().contains_key(&tp) {
            restore_high_watermark(shard, &tp, &log);
        }
        if r.leader == me {
            lead(shard, &tp, &log, &info, &r);
        } else {
            follow(shard, &tp, &log, &r);
        }
    }
}

fn lead(
    shard: &Rc<Shard>,
    tp: &TopicPartition,
    log: &LogRef,
    info: &PartitionInfo,
    r: &Replication,
) {
    let mut replicas = shard.replicas.borrow_mut();
    let now = Instant::now();
    match replicas.get_mut(tp) {
        Some(Role::Leader(state)) if state.leader_epoch == r.leader_epoch => {
            update_leader_state(shard, state, r, now);
        }
        _ => {
            let previous_epoch = log.borrow().leader_epoch_cache().latest_entry();
            if let Err(e) = log.borrow_mut().become_leader(LeaderEpoch(r.leader_epoch)) {
                tracing::error!(topic = %tp.topic, partition = tp.partition, "becoming leader: {e}");
                return;
            }
            let leader_epoch_start_offset = log.borrow().log_end_offset();
            // A leader election, unless this is the partition's first leader (epoch 0) or
            // this broker already led this epoch before a restart.
            let new_epoch = previous_epoch.is_none_or(|e| e.epoch.0 < r.leader_epoch);
            if r.leader_epoch > 0 && new_epoch {
                shard
                    .metrics
                    .leader_elected(match r.last_unclean_epoch == r.leader_epoch {
                        true => crate::metrics::Election::Unclean,
                        false => crate::metrics::Election::Clean,
                    });
            }
            tracing::info!(topic = %tp.topic, partition = tp.partition, epoch = r.leader_epoch, isr = ?r.isr, start_offset = leader_epoch_start_offset, "leading");
            if *tp.topic == *crate::group::OFFSETS_TOPIC {
                crate::group::load::on_leadership(shard, tp.partition);
            }
            let followers = r
                .replicas
                .iter()
                .filter(|id| **id != shard.broker.node_id)
                .map(|id| (*id, FollowerProgress::new(now)))
                .collect();
            replicas.insert(
                tp.clone(),
                Role::Leader(LeaderState {
                    leader_epoch: r.leader_epoch,
                    partition_epoch: r.partition_epoch,
                    replicas: r.replicas.clone(),
                    isr: r.isr.clone(),
                    min_insync_replicas: r.min_insync_replicas,
                    followers,
                    isr_change_in_flight: false,
                    proposed_isr: None,
                    leader_epoch_start_offset,
                    expand_not_before: None,
                }),
            );
        }
    }
    let Some(Role::Leader(state)) = replicas.get(tp) else {
        return;
    };
    set_mode(log, state, info, shard.broker.node_id);
    maybe_advance_high_watermark(log, state, info, shard.broker.node_id);
}

/// The first role of a partition after open: its high watermark comes back from
/// `replication-offset-checkpoint` (clamped to the log), or the log start offset when the
/// file does not list it — never the log end, which may hold records that were not
/// committed (a restarted old leader's tail, truncated later by its new leader's epochs).
fn restore_high_watermark(shard: &Shard, tp: &TopicPartition, log: &LogRef) {
    let mut l = log.borrow_mut();
    let Some(dir) = l.dir().parent().map(std::path::Path::to_path_buf) else {
        return;
    };
    let mut cache = shard.hw_checkpoints.borrow_mut();
    let marks = cache.entry(dir.clone()).or_insert_with(|| {
        crate::checkpoint::read_high_watermarks(&dir).unwrap_or_else(|e| {
            tracing::warn!(dir = %dir.display(), "replication-offset-checkpoint unreadable ({e}); high watermarks start at each log's start");
            Default::default()
        })
    });
    let hw = marks
        .get(&(tp.topic.to_string(), tp.partition))
        .copied()
        .unwrap_or_else(|| l.log_start_offset());
    l.set_high_watermark_mode(HighWatermarkMode::Replicated);
    l.restore_high_watermark(hw);
}

/// A leader alone in its ISR moves the high watermark with every append; otherwise only the
/// ISR's log end offsets move it.
/// The leader alone in its ISR: the high watermark follows the log end (moving it there at
/// once, which wakes the acks=all waiters and fetches parked on it: nothing else may,
/// since a partition below `min.insync.replicas` takes no appends); otherwise replicated.
fn set_mode(log: &LogRef, state: &LeaderState, info: &PartitionInfo, me: i32) {
    let alone = state.isr.iter().all(|r| *r == me);
    let mode = if alone {
        HighWatermarkMode::FollowsLogEnd
    } else {
        HighWatermarkMode::Replicated
    };
    let moved = {
        let mut l = log.borrow_mut();
        let before = l.high_watermark();
        if l.high_watermark_mode() != mode {
            l.set_high_watermark_mode(mode);
        }
        l.high_watermark() != before
    };
    if moved {
        info.appended.notify(usize::MAX);
    }
}

fn follow(shard: &Rc<Shard>, tp: &TopicPartition, log: &LogRef, r: &Replication) {
    let role = Role::Follower {
        leader: r.leader,
        leader_epoch: r.leader_epoch,
    };
    let changed = !matches!(
        shard.replicas.borrow().get(tp),
        Some(Role::Follower { leader, leader_epoch }) if *leader == r.leader && *leader_epoch == r.leader_epoch
    );
    if !changed {
        return;
    }
    {
        let mut l = log.borrow_mut();
        if l.high_watermark_mode() != HighWatermarkMode::Replicated {
            l.set_high_watermark_mode(HighWatermarkMode::Replicated);
        }
        l.become_follower();
    }
    tracing::info!(topic = %tp.topic, partition = tp.partition, leader = r.leader, epoch = r.leader_epoch, "following");
    let previous = shard.replicas.borrow_mut().insert(tp.clone(), role);
    if matches!(previous, Some(Role::Leader(_))) {
        // Kafka completes a former leader's delayed produces with NOT_LEADER_OR_FOLLOWER
        // at once: wake acks=all waiters so they see the new role (the client retries on
        // the new leader) instead of waiting for their timeout.
        if let Some(info) = crate::ops::partition_info(shard, tp) {
            info.appended.notify(usize::MAX);
        }
    }
    let was_follower = matches!(previous, Some(Role::Follower { .. }));
    if !was_follower && *tp.topic == *crate::group::OFFSETS_TOPIC {
        crate::group::load::on_resignation(shard, tp.partition);
    }
    if r.leader >= 0 {
        fetcher::ensure_running(shard, r.leader);
    }
}

/// Whether this broker leads `tp` with a high watermark below the start offset of its
/// leader epoch (Kafka's check in `fetchOffsetForTimestamp`: clients get
/// OFFSET_NOT_AVAILABLE for offsets that could be lower than the old leader's).
pub fn high_watermark_lagging(shard: &Shard, tp: &TopicPartition, high_watermark: i64) -> bool {
    matches!(
        shard.replicas.borrow().get(tp),
        Some(Role::Leader(state)) if state.leader_epoch_start_offset > high_watermark
    )
}

/// The smallest log end offset of the ISR (the leader's own included).
fn isr_end(log_end: i64, state: &LeaderState, me: i32) -> i64 {
    state
        .isr
        .iter()
        .filter(|r| **r != me)
        .map(|r| state.followers.get(r).map_or(-1, |f| f.log_end_offset))
        .fold(log_end, i64::min)
}

/// Kafka's `maybeIncrementLeaderHW`; wakes fetches and acks=all produces when it moved.
fn maybe_advance_high_watermark(log: &LogRef, state: &LeaderState, info: &PartitionInfo, me: i32) {
    let moved = {
        let mut l = log.borrow_mut();
        if l.high_watermark_mode() != HighWatermarkMode::Replicated {
            return;
        }
        let end = isr_end(l.log_end_offset(), state, me);
        l.update_high_watermark(end).is_some()
    };
    if moved {
        info.appended.notify(usize::MAX);
    }
}

/// A follower's fetch, as the leader sees it.
#[derive(Debug, Clone, Copy)]
pub struct ReplicaAsk {
    pub replica_id: i32,
    pub current_leader_epoch: i32,
    pub last_fetched_epoch: i32,
    /// The follower's log start offset (Fetch v5+; -1 before).
    pub log_start_offset: i64,
}

/// Serves a follower's fetch on the leader: checks its view of the epoch, answers a
/// diverging epoch when its log went another way, records its progress (which may move the
/// high watermark and grow the ISR), then reads up to the log end offset.
pub fn serve_follower(
    shard: &Rc<Shard>,
    (tp, info): (&TopicPartition, &PartitionInfo),
    ask: ReplicaAsk,
    (offset, max_bytes): (i64, u32),
) -> FetchPart {
    let Some(log) = shard.log(tp) else {
        return FetchPart::failed(ResponseError::UnknownTopicOrPartition);
    };
    let me = shard.broker.node_id;
    let mut replicas = shard.replicas.borrow_mut();
    let Some(Role::Leader(state)) = replicas.get_mut(tp) else {
        return FetchPart::failed(ResponseError::NotLeaderOrFollower);
    };
    if let Some(e) = epoch_error(ask.current_leader_epoch, state.leader_epoch) {
        return FetchPart::failed(e);
    }
    if !state.followers.contains_key(&ask.replica_id) {
        return FetchPart::failed(ResponseError::NotLeaderOrFollower);
    }
    let diverging = match diverging_epoch(&log, ask.last_fetched_epoch, offset) {
        Ok(d) => d,
        Err(e) => return FetchPart::failed(e),
    };
    if let Some(diverging) = diverging {
        return no_records(&log, Some(diverging));
    }
    let log_end = log.borrow().log_end_offset();
    if offset > log_end || offset < log.borrow().log_start_offset() {
        return FetchPart::failed(ResponseError::OffsetOutOfRange);
    }
    record_progress(state, ask.replica_id, offset, log_end);
    if let Some(f) = state.followers.get_mut(&ask.replica_id) {
        f.log_start_offset = ask.log_start_offset;
    }
    maybe_advance_high_watermark(&log, state, info, me);
    maybe_expand_isr(shard, tp, state, ask.replica_id, &log);
    // Kafka's `shouldLeaderThrottle`: never a replica in the ISR.
    let throttled = !state.isr.contains(&ask.replica_id)
        && info
            .replication
            .as_ref()
            .is_some_and(|r| r.throttles.leader.applies(tp.partition, me));
    drop(replicas);
    if throttled {
        let rate = shard.current_config().leader_replication_throttled_rate;
        if crate::throttle::LEADER.exceeded(rate) {
            return no_records(&log, None);
        }
    }
    let part = crate::ops::read_local(
        shard,
        tp,
        &log,
        (offset, max_bytes, sluice_engine::FirstBatch::Whole),
        FetchIsolation::LogEnd,
    );
    if throttled {
        let bytes = part.records.as_ref().map_or(0, |(_, len)| u64::from(*len));
        crate::throttle::LEADER.record(bytes);
    }
    part
}

/// An answer to a replica fetch without records: a diverging epoch, or a throttled
/// partition (its offsets only).
fn no_records(log: &LogRef, diverging_epoch: Option<(i32, i64)>) -> FetchPart {
    let l = log.borrow();
    FetchPart {
        error: 0,
        high_watermark: l.high_watermark(),
        log_start_offset: l.log_start_offset(),
        records: None,
        diverging_epoch,
        preferred_read_replica: None,
    }
}

/// Kafka's leader epoch checks on a fetch: the asker's epoch older than ours is fenced, newer
/// is unknown to us (our metadata is behind).
pub(crate) fn epoch_error(asked: i32, ours: i32) -> Option<ResponseError> {
    if asked == NO_PARTITION_LEADER_EPOCH || asked == ours {
        None
    } else if asked < ours {
        Some(ResponseError::FencedLeaderEpoch)
    } else {
        Some(ResponseError::UnknownLeaderEpoch)
    }
}

/// KIP-320: where the follower's log leaves ours, from its last fetched epoch (Kafka's
/// rules in `PartitionLog::check_last_fetched_epoch`).
fn diverging_epoch(
    log: &LogRef,
    last_fetched_epoch: i32,
    offset: i64,
) -> Result<Option<(i32, i64)>, ResponseError> {
    if last_fetched_epoch < 0 {
        return Ok(None);
    }
    match log
        .borrow()
        .check_last_fetched_epoch(offset, LeaderEpoch(last_fetched_epoch))
    {
        LastFetchedEpoch::Consistent => Ok(None),
        LastFetchedEpoch::Diverging { epoch, end_offset } => Ok(Some((epoch.0, end_offset))),
        LastFetchedEpoch::Unknown => Err(ResponseError::KafkaStorageError),
    }
}

/// Kafka's `Replica.updateFetchState`: caught up when it fetched from at least where the
/// leader ended at its previous fetch.
fn record_progress(state: &mut LeaderState, replica: i32, offset: i64, leader_end: i64) {
    let now = Instant::now();
    let Some(f) = state.followers.get_mut(&replica) else {
        return;
    };
    if offset >= leader_end {
        f.last_caught_up = now;
    } else if f.leader_end_at_last_fetch >= 0 && offset >= f.leader_end_at_last_fetch {
        f.last_caught_up = f.last_fetch;
    }
    f.log_end_offset = offset;
    f.last_fetch = now;
    f.leader_end_at_last_fetch = leader_end;
}

/// Kafka's `maybeExpandIsr`: a follower outside the ISR that reached the high watermark
/// (and this leader's epoch) joins it, through the controller.
fn maybe_expand_isr(
    shard: &Rc<Shard>,
    tp: &TopicPartition,
    state: &mut LeaderState,
    replica: i32,
    log: &LogRef,
) {
    if state.isr.contains(&replica) || state.isr_change_in_flight {
        return;
    }
    if state.expand_not_before.is_some_and(|t| Instant::now() < t) {
        return;
    }
    // KIP-841: a replica on a broker this broker's metadata shows fenced is not eligible
    // (the controller would refuse it).
    let meta = shard.metadata();
    if meta
        .registered
        .iter()
        .any(|b| b.node_id == replica && b.fenced)
    {
        return;
    }
    let Some(f) = state.followers.get(&replica) else {
        return;
    };
    let l = log.borrow();
    let epoch_start = l
        .leader_epoch_cache()
        .latest_entry()
        .map_or(0, |e| e.start_offset);
    if f.log_end_offset < l.high_watermark() || f.log_end_offset < epoch_start {
        return;
    }
    let mut isr = state.isr.clone();
    isr.push(replica);
    tracing::info!(topic = %tp.topic, partition = tp.partition, replica, "follower caught up: expanding the ISR");
    alter_isr(shard, tp, state, isr);
}

/// A committed change of a partition this broker goes on leading in the same leader epoch.
fn update_leader_state(shard: &Shard, state: &mut LeaderState, r: &Replication, now: Instant) {
    if r.partition_epoch <= state.partition_epoch {
        return;
    }
    // The controller keeps the ISR in replica order, not in the proposal's.
    if state
        .proposed_isr
        .take()
        .is_some_and(|p| same_members(&p, &r.isr))
    {
        shard.metrics.isr_changed(state.isr.len(), r.isr.len());
    }
    state.partition_epoch = r.partition_epoch;
    state.isr = r.isr.clone();
    state.replicas = r.replicas.clone();
    state.min_insync_replicas = r.min_insync_replicas;
    state.isr_change_in_flight = false;
    state.followers.retain(|id, _| r.replicas.contains(id));
    for id in r.replicas.iter().filter(|id| **id != shard.broker.node_id) {
        state
            .followers
            .entry(*id)
            .or_insert_with(|| FollowerProgress::new(now));
    }
}

/// Whether two ISRs hold the same brokers, whatever their order.
fn same_members(a: &[i32], b: &[i32]) -> bool {
    a.len() == b.len() && a.iter().all(|id| b.contains(id))
}

/// Sends an AlterPartition for `isr` and applies the committed answer.
fn alter_isr(shard: &Rc<Shard>, tp: &TopicPartition, state: &mut LeaderState, isr: Vec<i32>) {
    let Some(handle) = shard.broker.cluster.clone() else {
        return;
    };
    let Some(topic_id) = shard.metadata().topic(&tp.topic).map(|t| t.id.0) else {
        return;
    };
    state.isr_change_in_flight = true;
    state.proposed_isr = Some(isr.clone());
    let req = ControllerRequest::AlterPartition {
        broker_id: shard.broker.node_id,
        broker_epoch: handle.broker.borrow().broker_epoch,
        topic_id,
        partition: tp.partition,
        leader_epoch: state.leader_epoch,
        partition_epoch: state.partition_epoch,
        new_isr: isr,
    };
    let (shard, tp) = (shard.clone(), tp.clone());
    compio::runtime::spawn(async move {
        let answer = handle.call(req).await;
        apply_alter_answer(&shard, &tp, answer);
    })
    .detach();
}

fn apply_alter_answer(
    shard: &Rc<Shard>,
    tp: &TopicPartition,
    answer: Result<ControllerReply, sluice_replication::ControllerError>,
) {
    let mut replicas = shard.replicas.borrow_mut();
    let Some(Role::Leader(state)) = replicas.get_mut(tp) else {
        return;
    };
    state.isr_change_in_flight = false;
    match answer {
        Ok(ControllerReply::Partition(p)) if p.leader_epoch == state.leader_epoch => {
            if p.partition_epoch > state.partition_epoch {
                if state.proposed_isr.take().is_some() {
                    shard.metrics.isr_changed(state.isr.len(), p.isr.len());
                }
                state.partition_epoch = p.partition_epoch;
                state.isr = p.isr;
                // A reassignment's replica list changes in the same record (Kafka's
                // PartitionChangeRecord): the snapshot will not repeat it at this epoch.
                state.followers.retain(|id, _| p.replicas.contains(id));
                state.replicas = p.replicas;
            }
            state.proposed_isr = None;
            tracing::info!(topic = %tp.topic, partition = tp.partition, isr = ?state.isr, "ISR changed");
        }
        // The change completed a reassignment that moved the leadership or fenced a removed
        // replica with a new leader epoch: the next metadata snapshot brings the new role.
        Ok(ControllerReply::Partition(p)) => {
            state.proposed_isr = None;
            tracing::info!(topic = %tp.topic, partition = tp.partition, leader = p.leader, epoch = p.leader_epoch, "ISR changed with a new leader epoch");
        }
        Ok(other) => {
            state.proposed_isr = None;
            tracing::warn!(?other, "AlterPartition answered with something else")
        }
        // Stale epochs: the next metadata snapshot brings the current state.
        Err(e) => {
            if state
                .proposed_isr
                .take()
                .is_some_and(|p| p.len() > state.isr.len())
            {
                state.expand_not_before = Some(Instant::now() + ISR_EXPAND_RETRY_BACKOFF);
            }
            tracing::info!(topic = %tp.topic, partition = tp.partition, code = e.code, "AlterPartition refused: {}", e.message)
        }
    }
    let (Some(log), Some(info)) = (shard.log(tp), crate::ops::partition_info(shard, tp)) else {
        return;
    };
    set_mode(&log, state, &info, shard.broker.node_id);
    maybe_advance_high_watermark(&log, state, &info, shard.broker.node_id);
}

/// Kafka's `maybeShrinkIsr`, run every half `replica.lag.time.max.ms` on each shard: ISR
/// followers not caught up for that long leave it.
pub async fn shrink_isr_loop(shard: Rc<Shard>, lag_time_ms_max: u64) {
    let period = Duration::from_millis((lag_time_ms_max / 2).max(100));
    while !shard.stopping.get() {
        let stop = shard.stop.listen();
        let _ = compio::time::timeout(period, stop).await;
        shrink_isrs(&shard, Duration::from_millis(lag_time_ms_max));
    }
}

fn shrink_isrs(shard: &Rc<Shard>, lag: Duration) {
    let me = shard.broker.node_id;
    let now = Instant::now();
    let mut replicas = shard.replicas.borrow_mut();
    for (tp, role) in replicas.iter_mut() {
        let Role::Leader(state) = role else { continue };
        if state.isr_change_in_flight {
            continue;
        }
        let log_end = shard.log(tp).map_or(0, |l| l.borrow().log_end_offset());
        let laggards: Vec<i32> = state
            .isr
            .iter()
            .copied()
            .filter(|r| *r != me)
            .filter(|r| {
                state.followers.get(r).is_some_and(|f| {
                    f.log_end_offset < log_end && now.duration_since(f.last_caught_up) > lag
                })
            })
            .collect();
        if laggards.is_empty() {
            continue;
        }
        tracing::warn!(topic = %tp.topic, partition = tp.partition, ?laggards, "followers lag more than replica.lag.time.max.ms: shrinking the ISR");
        let isr = state
            .isr
            .iter()
            .copied()
            .filter(|r| !laggards.contains(r))
            .collect();
        alter_isr(shard, tp, state, isr);
    }
}

/// For acks=all on the leader: the ISR is too small to take the write
/// (`min.insync.replicas`), Kafka's NOT_ENOUGH_REPLICAS before appending.
pub fn below_min_isr(shard: &Shard, tp: &TopicPartition) -> bool {
    match shard.replicas.borrow().get(tp) {
        Some(Role::Leader(state)) => (state.isr.len() as i32) < state.min_insync_replicas,
        _ => false,
    }
}

/// acks=all: waits until the high watermark passes `last_offset` (every ISR member holds
/// the write), until `deadline` (REQUEST_TIMED_OUT). NOT_ENOUGH_REPLICAS_AFTER_APPEND when
/// the ISR shrank below `min.insync.replicas` meanwhile, even once the high watermark passed
/// the write (Kafka's `checkEnoughReplicasReachOffset`: an ISR of the leader alone moves
/// the high watermark to the log end, and that is one copy, not `min.insync.replicas`);
/// NOT_LEADER_OR_FOLLOWER when this broker stopped leading.
pub async fn wait_committed(
    shard: &Shard,
    tp: &TopicPartition,
    last_offset: i64,
    deadline: Instant,
) -> Result<(), ResponseError> {
    let info = crate::ops::partition_info(shard, tp).ok_or(ResponseError::NotLeaderOrFollower)?;
    let log = shard.log(tp).ok_or(ResponseError::NotLeaderOrFollower)?;
    loop {
        let listener = info.appended.listen();
        let reached = log.borrow().high_watermark() > last_offset;
        match shard.replicas.borrow().get(tp) {
            Some(Role::Leader(state)) if (state.isr.len() as i32) < state.min_insync_replicas => {
                return Err(ResponseError::NotEnoughReplicasAfterAppend)
            }
            _ if reached => return Ok(()),
            Some(Role::Leader(_)) => {}
            _ => return Err(ResponseError::NotLeaderOrFollower),
        }
        if Instant::now() >= deadline || shard.stopping.get() {
            let isr = match shard.replicas.borrow().get(tp) {
                Some(Role::Leader(state)) => format!("{:?}", state.isr),
                _ => "none".into(),
            };
            let high_watermark = log.borrow().high_watermark();
            tracing::debug!(topic = %tp.topic, partition = tp.partition, last_offset, high_watermark, isr, "acks=all timed out: the ISR did not reach the write");
            return Err(ResponseError::RequestTimedOut);
        }
        let _ = compio::time::timeout_at(deadline, listener).await;
    }
}

#[cfg(test)]
mod tests {
    use super::same_members;

    #[test]
    fn an_isr_in_replica_order_matches_the_proposal_it_came_from() {
        // The leader appends the caught-up follower; the controller answers in replica order.
        assert!(same_members(&[1, 3, 2], &[1, 2, 3]));
        assert!(!same_members(&[1, 3], &[1, 2, 3]));
        assert!(!same_members(&[1, 3, 4], &[1, 2, 3]));
    }
}
