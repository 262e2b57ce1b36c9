//! A consumer group reading the run's records while the producers write them
//! (`--consumer-group`), to measure unavailability as a consumer sees it: the time from a
//! fault to the next record read, and the longest time between records read.
//!
//! It is one member of a classic consumer group, as a Kafka consumer with its defaults
//! (`session.timeout.ms` 45 s, `heartbeat.interval.ms` 3 s, the range assignor,
//! `auto.offset.reset=earliest`) and `auto.commit.interval.ms` of [`COMMIT_INTERVAL_MS`]:
//! JoinGroup / SyncGroup through [`GroupMembership`], OffsetFetch for where to resume,
//! Heartbeat, OffsetCommit of what it read, LeaveGroup at the end. Fetching stops while the
//! member rejoins (a rebalance revokes every partition, as Kafka's eager protocol does) and
//! resumes at the committed offsets. Each assigned partition is fetched by a task of its
//! own from its leader (Kafka's consumer fetches every leader at once), with Kafka's fetch
//! defaults and the leader epoch Metadata gave (KIP-320: a broker no longer leading that
//! epoch refuses instead of serving what it still has); a failed fetch refreshes Metadata and backs off (`retry.backoff.ms`, doubling
//! to `retry.backoff.max.ms`).
//!
//! What counts as a read: a record of this run at an offset past the highest one already
//! read in its partition (a record read again after a rebalance is not progress). Errors
//! never end the run: they are counted, and a consumer that reads nothing shows as such.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use compio::runtime::ResumeUnwind;
use kafka_protocol::error::ResponseError;
use sluice_net::client::batch::{decode_records, Batches};
use sluice_net::client::membership::{GroupMembership, Heartbeat, MembershipConfig};
use sluice_net::client::{Client, ClientError, CommittedOffset, FetchOptions, OffsetSpec};

use crate::verify::fault::FailoverClock;
use crate::verify::limits::{RETRY_BACKOFF_MAX_MS, RETRY_BACKOFF_MS};
use crate::verify::session::Session;
use crate::verify::{value, Options};

/// `auto.commit.interval.ms` of the group consumer (Kafka's default is 5000: shorter, so a
/// fault usually falls between two commits of a 20 s run).
pub const COMMIT_INTERVAL_MS: u64 = 1000;
/// How often the member checks whether a heartbeat or a commit is due, or the run ended.
const MEMBER_TICK_MS: u64 = 50;
/// How long a fetcher without an assigned partition waits before looking again.
const UNASSIGNED_WAIT_MS: u64 = 20;

/// What the group consumer saw.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumeStats {
    pub group: String,
    /// Records of this run read (new offsets only).
    pub read: u64,
    /// From the start of the run to the first record read (joining the group included).
    pub first_read: Option<Duration>,
    /// The longest time between two successive reads (any partition), from the first read
    /// to the end of generation, and when it began (since the start of the run).
    pub gap_max: Option<Duration>,
    pub gap_from: Duration,
    /// The longest time between two successive reads of one partition (its last read to
    /// the end of generation included), and which.
    pub partition_gap_max: Option<(i32, Duration)>,
    pub joins: u64,
    pub commits: u64,
    /// Failed requests of the member (join, heartbeat, commit) and of the fetchers.
    pub member_errors: u64,
    pub fetch_errors: u64,
    /// With a fault struck while the consumer was reading: what it read after it.
    pub after_fault: Option<ReadsAfterFault>,
}

/// Reads after the fault, timed from the strike.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadsAfterFault {
    /// To the next record read (any partition).
    pub first: Option<Duration>,
    /// Partitions the struck node led when struck.
    pub partitions: usize,
    /// Of those, how many had a record read from another broker afterwards.
    pub recovered: usize,
    /// To the latest of those first reads (`None` if one never came, or it led none).
    pub all: Option<Duration>,
}

/// Reads as they come, and the figures about them.
struct ReadClock {
    started_at: Instant,
    read: u64,
    first_read: Option<Instant>,
    last_read: Option<Instant>,
    gap_max: Option<(Instant, Duration)>,
    partition_last: BTreeMap<i32, Instant>,
    partition_gap_max: Option<(i32, Duration)>,
    /// Copied from the failover clock at the first read after the strike: when, whom, and
    /// the first read from another broker of each partition it led.
    strike: Option<(Instant, i32, BTreeMap<i32, Option<Instant>>)>,
    first_after_strike: Option<Instant>,
    /// The strike came before the first read: nothing to time after it.
    struck_before_reading: bool,
}

impl ReadClock {
    fn new(started_at: Instant) -> Self {
        Self {
            started_at,
            read: 0,
            first_read: None,
            last_read: None,
            gap_max: None,
            partition_last: BTreeMap::new(),
            partition_gap_max: None,
            strike: None,
            first_after_strike: None,
            struck_before_reading: false,
        }
    }

    /// `records` new records of `partition` read from broker `leader` at `at`.
    fn read(
        &mut self,
        partition: i32,
        leader: i32,
        records: u64,
        at: Instant,
        fault: &FailoverClock,
    ) {
        self.note_strike(fault);
        self.read += records;
        self.first_read.get_or_insert(at);
        if let Some(last) = self.last_read.replace(at) {
            let gap = at.saturating_duration_since(last);
            if self.gap_max.is_none_or(|(_, max)| gap > max) {
                self.gap_max = Some((last, gap));
            }
        }
        if let Some(last) = self.partition_last.insert(partition, at) {
            let gap = at.saturating_duration_since(last);
            if self.partition_gap_max.is_none_or(|(_, max)| gap > max) {
                self.partition_gap_max = Some((partition, gap));
            }
        }
        let Some((struck_at, node, moved)) = &mut self.strike else {
            return;
        };
        if at < *struck_at {
            return;
        }
        self.first_after_strike.get_or_insert(at);
        if let Some(first @ None) = moved.get_mut(&partition) {
            if leader != *node {
                *first = Some(at);
            }
        }
    }

    /// Generation ended at `end`: the time since the last read counts as a gap too (as
    /// the producers' `unavailable_max` counts it), overall and per partition.
    fn close(&mut self, end: Instant) {
        if let Some(last) = self.last_read {
            let gap = end.saturating_duration_since(last);
            if self.gap_max.is_none_or(|(_, max)| gap > max) {
                self.gap_max = Some((last, gap));
            }
        }
        for (&partition, &last) in &self.partition_last {
            let gap = end.saturating_duration_since(last);
            if self.partition_gap_max.is_none_or(|(_, max)| gap > max) {
                self.partition_gap_max = Some((partition, gap));
            }
        }
    }

    fn note_strike(&mut self, fault: &FailoverClock) {
        if self.strike.is_some() || self.struck_before_reading {
            return;
        }
        if let Some((at, node, moved)) = fault.struck() {
            if self.first_read.is_none() {
                self.struck_before_reading = true;
                return;
            }
            self.strike = Some((at, node, moved.into_iter().map(|p| (p, None)).collect()));
        }
    }

    fn after_fault(&self) -> Option<ReadsAfterFault> {
        let (at, _, moved) = self.strike.as_ref()?;
        let firsts: Vec<Duration> = moved.values().flatten().map(|&t| t - *at).collect();
        let all = (firsts.len() == moved.len() && !moved.is_empty())
            .then(|| firsts.iter().max().copied())
            .flatten();
        Some(ReadsAfterFault {
            first: self.first_after_strike.map(|t| t - *at),
            partitions: moved.len(),
            recovered: firsts.len(),
            all,
        })
    }
}

/// What the member and its fetchers share.
struct Group {
    options: Options,
    run_id: u64,
    name: String,
    /// Assigned partitions -> the next offset to fetch; empty while (re)joining.
    positions: RefCell<BTreeMap<i32, i64>>,
    /// Per partition, the highest offset of this run read so far.
    highest: RefCell<BTreeMap<i32, i64>>,
    stop: Cell<bool>,
    clock: RefCell<ReadClock>,
    fault: Rc<FailoverClock>,
    joins: Cell<u64>,
    commits: Cell<u64>,
    member_errors: Cell<u64>,
    fetch_errors: Cell<u64>,
}

/// The running consumer: [`GroupConsumer::finish`] stops it and gives its figures.
pub struct GroupConsumer {
    group: Rc<Group>,
    tasks: Vec<compio::runtime::JoinHandle<()>>,
}

impl GroupConsumer {
    /// Starts consuming every partition of `partitions` as a member of `name`.
    pub fn start(
        options: &Options,
        run_id: u64,
        name: &str,
        partitions: &[i32],
        (started_at, fault): (Instant, Rc<FailoverClock>),
    ) -> Self {
        let group = Rc::new(Group {
            options: options.clone(),
            run_id,
            name: name.to_string(),
            positions: RefCell::new(BTreeMap::new()),
            highest: RefCell::new(BTreeMap::new()),
            stop: Cell::new(false),
            clock: RefCell::new(ReadClock::new(started_at)),
            fault,
            joins: Cell::new(0),
            commits: Cell::new(0),
            member_errors: Cell::new(0),
            fetch_errors: Cell::new(0),
        });
        let mut tasks = vec![compio::runtime::spawn(member(group.clone()))];
        for &partition in partitions {
            tasks.push(compio::runtime::spawn(fetcher(group.clone(), partition)));
        }
        Self { group, tasks }
    }

    /// Stops fetching, commits, leaves the group; the figures, with the time from the
    /// last read to `generation_end` counted as a gap.
    pub async fn finish(self, generation_end: Instant) -> ConsumeStats {
        self.group.stop.set(true);
        for task in self.tasks {
            task.await
                .resume_unwind()
                .expect("consumer tasks are not cancelled");
        }
        let g = &self.group;
        g.clock.borrow_mut().close(generation_end);
        let clock = g.clock.borrow();
        ConsumeStats {
            group: g.name.clone(),
            read: clock.read,
            first_read: clock.first_read.map(|t| t - clock.started_at),
            gap_max: clock.gap_max.map(|(_, gap)| gap),
            gap_from: clock
                .gap_max
                .map_or(Duration::ZERO, |(from, _)| from - clock.started_at),
            partition_gap_max: clock.partition_gap_max,
            joins: g.joins.get(),
            commits: g.commits.get(),
            member_errors: g.member_errors.get(),
            fetch_errors: g.fetch_errors.get(),
            after_fault: clock.after_fault(),
        }
    }
}

/// Sleeps `duration`, or less once the run stops; false when it has.
async fn pause(group: &Group, duration: Duration) -> bool {
    let until = Instant::now() + duration;
    while !group.stop.get() {
        let now = Instant::now();
        if now >= until {
            return true;
        }
        let step = (until - now).min(Duration::from_millis(MEMBER_TICK_MS));
        compio::time::sleep(step).await;
    }
    false
}

/// The group member: joins, heartbeats, commits, rejoins when told to; leaves at the end.
async fn member(group: Rc<Group>) {
    let options = &group.options;
    let mut session = Session::new(
        &options.bootstrap,
        "sluice-verify-group",
        options.request_timeout,
    );
    let mut config = MembershipConfig::new(&group.name, vec![options.topic.clone()]);
    config.rebalance_timeout_ms = options.request_timeout.as_millis().min(i32::MAX as u128) as i32;
    let mut membership = GroupMembership::new(config);
    let mut backoff = Duration::from_millis(RETRY_BACKOFF_MS);
    let mut joined = false;
    let mut committed_at = Instant::now();
    while !group.stop.get() {
        let outcome = if joined {
            member_round(&group, &mut session, &mut membership, &mut committed_at).await
        } else {
            join(&group, &mut session, &mut membership).await
        };
        match outcome {
            Ok(still_joined) => {
                joined = still_joined;
                backoff = Duration::from_millis(RETRY_BACKOFF_MS);
                pause(&group, Duration::from_millis(MEMBER_TICK_MS)).await;
            }
            Err(_) => {
                group.member_errors.set(group.member_errors.get() + 1);
                pause(&group, backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(RETRY_BACKOFF_MAX_MS));
            }
        }
    }
    if joined {
        let _ = commit(&group, &mut session, &membership).await;
        let _ = session
            .call("LeaveGroup", async |c: &mut Client| {
                membership.leave(c).await
            })
            .await;
    }
}

/// Heartbeat and commit when due: whether the member is still joined (false: rejoin).
async fn member_round(
    group: &Group,
    session: &mut Session,
    membership: &mut GroupMembership,
    committed_at: &mut Instant,
) -> Result<bool, ClientError> {
    if committed_at.elapsed() >= Duration::from_millis(COMMIT_INTERVAL_MS) {
        *committed_at = Instant::now();
        commit(group, session, membership).await?;
    }
    let heartbeat = session
        .call("Heartbeat", async |c: &mut Client| {
            membership.heartbeat_if_due(c).await
        })
        .await?;
    if heartbeat == Heartbeat::Rejoin {
        // Kafka's eager rebalance: commit what was read, then stop fetching until synced.
        let _ = commit(group, session, membership).await;
        group.positions.borrow_mut().clear();
        return Ok(false);
    }
    Ok(true)
}

/// Joins and syncs, then resumes every assigned partition at its committed offset (else
/// the log start: `auto.offset.reset=earliest`).
async fn join(
    group: &Group,
    session: &mut Session,
    membership: &mut GroupMembership,
) -> Result<bool, ClientError> {
    group.positions.borrow_mut().clear();
    let topic = group.options.topic.clone();
    let assignment = session
        .call("JoinGroup", async |c: &mut Client| {
            membership.join(c).await.cloned()
        })
        .await?;
    group.joins.set(group.joins.get() + 1);
    let partitions = assignment.get(&topic).cloned().unwrap_or_default();
    let wanted = [(topic.as_str(), partitions.clone())];
    let name = group.name.as_str();
    let committed = session
        .call("OffsetFetch", async |c: &mut Client| {
            c.offset_fetch(name, Some(&wanted)).await
        })
        .await?;
    let mut positions = group.positions.borrow_mut();
    for partition in partitions {
        let found = committed.iter().find(|c| c.partition == partition);
        positions.insert(partition, found.map_or(0, |c| c.offset.max(0)));
    }
    Ok(true)
}

/// OffsetCommit of every assigned partition's position, as this member.
async fn commit(
    group: &Group,
    session: &mut Session,
    membership: &GroupMembership,
) -> Result<(), ClientError> {
    let offsets: Vec<CommittedOffset> = group
        .positions
        .borrow()
        .iter()
        .map(|(&partition, &offset)| CommittedOffset {
            topic: group.options.topic.clone(),
            partition,
            offset,
        })
        .collect();
    if offsets.is_empty() {
        return Ok(());
    }
    session
        .call("OffsetCommit", async |c: &mut Client| {
            membership.commit(c, &offsets).await
        })
        .await?;
    group.commits.set(group.commits.get() + 1);
    Ok(())
}

/// Fetches `partition` while it is assigned, from the leader Metadata names.
async fn fetcher(group: Rc<Group>, partition: i32) {
    let options = &group.options;
    let topic = options.topic.as_str();
    let mut session = Session::new(
        &options.bootstrap,
        "sluice-verify-group",
        options.request_timeout,
    );
    let mut leader = -1;
    let mut backoff = Duration::from_millis(RETRY_BACKOFF_MS);
    while !group.stop.get() {
        let Some(position) = group.positions.borrow().get(&partition).copied() else {
            pause(&group, Duration::from_millis(UNASSIGNED_WAIT_MS)).await;
            continue;
        };
        if leader < 0 {
            leader = leader_now(&mut session, topic, partition).await;
        }
        match fetch_once(&group, &mut session, partition, position, leader).await {
            Ok(()) => backoff = Duration::from_millis(RETRY_BACKOFF_MS),
            Err(_) => {
                group.fetch_errors.set(group.fetch_errors.get() + 1);
                pause(&group, backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(RETRY_BACKOFF_MAX_MS));
                leader = leader_now(&mut session, topic, partition).await;
            }
        }
    }
}

/// The leader of `partition` as fresh Metadata names it (-1: none, or no answer).
async fn leader_now(session: &mut Session, topic: &str, partition: i32) -> i32 {
    match session.refresh(topic).await {
        Ok(metadata) => metadata
            .partitions
            .iter()
            .find(|p| p.partition == partition)
            .map_or(-1, |p| p.leader_id),
        Err(_) => -1,
    }
}

/// One Fetch at `position`; moves the position past what it returned.
async fn fetch_once(
    group: &Group,
    session: &mut Session,
    partition: i32,
    position: i64,
    leader: i32,
) -> Result<(), ClientError> {
    let topic = group.options.topic.as_str();
    let options = FetchOptions {
        current_leader_epoch: true,
        ..FetchOptions::default()
    };
    let fetched = session
        .call("Fetch", async |c: &mut Client| {
            c.fetch(topic, &[(partition, position)], &options).await
        })
        .await?;
    let at = Instant::now();
    let Some(answer) = fetched.into_iter().find(|p| p.partition == partition) else {
        return Err(ClientError::Metadata(format!(
            "Fetch did not answer {topic}-{partition}"
        )));
    };
    match answer.error {
        None => {}
        Some(ResponseError::OffsetOutOfRange) => {
            let start = session
                .call("ListOffsets", async |c: &mut Client| {
                    c.list_offsets(topic, partition, OffsetSpec::Earliest).await
                })
                .await?;
            set_position(group, partition, position, start);
            return Ok(());
        }
        Some(error) => {
            return Err(ClientError::Kafka {
                context: format!("fetching {topic}-{partition} at offset {position}"),
                error,
                code: error.code(),
            })
        }
    }
    let (next, new_records) = take_new(group, partition, position, &answer.records)?;
    if new_records > 0 {
        let mut clock = group.clock.borrow_mut();
        clock.read(partition, leader, new_records, at, &group.fault);
    }
    set_position(group, partition, position, next);
    Ok(())
}

/// Moves `partition`'s position from `from` to `to`, unless a rejoin moved it meanwhile.
fn set_position(group: &Group, partition: i32, from: i64, to: i64) {
    let mut positions = group.positions.borrow_mut();
    if let Some(position) = positions.get_mut(&partition) {
        if *position == from {
            *position = to;
        }
    }
}

/// The offset after the last complete batch at or past `position`, and how many records
/// of this run past the highest offset read so far it holds.
fn take_new(
    group: &Group,
    partition: i32,
    position: i64,
    records: &[u8],
) -> Result<(i64, u64), ClientError> {
    let batch_error = |source| ClientError::Batch {
        context: format!("{}-{partition} at offset {position}", group.options.topic),
        source,
    };
    let mut highest = group.highest.borrow_mut();
    let highest = highest.entry(partition).or_insert(-1);
    let (mut next, mut new_records) = (position, 0);
    for batch in Batches::new(records) {
        let (header, bytes) = batch.map_err(batch_error)?;
        if header.next_offset() <= next {
            continue;
        }
        for record in decode_records(&header, bytes).map_err(batch_error)? {
            let ours = record
                .value
                .as_deref()
                .and_then(value::parse)
                .is_some_and(|(run, _)| run == group.run_id);
            if ours && record.offset > *highest {
                *highest = record.offset;
                new_records += 1;
            }
        }
        next = header.next_offset();
    }
    Ok((next, new_records))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_and_the_reads_after_a_strike() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let fault = FailoverClock::default();
        let mut clock = ReadClock::new(start);
        clock.read(0, 1, 10, start + ms(100), &fault);
        clock.read(1, 2, 10, start + ms(150), &fault);
        fault.strike_for_test(start + ms(200), 1, &[0]);
        clock.read(1, 2, 5, start + ms(260), &fault);
        clock.read(0, 1, 5, start + ms(300), &fault); // the struck node's late answer
        clock.read(0, 3, 5, start + ms(900), &fault);
        let after = clock.after_fault().expect("struck while reading");
        assert_eq!(after.first, Some(ms(60)));
        assert_eq!(
            (after.partitions, after.recovered, after.all),
            (1, 1, Some(ms(700)))
        );
        assert_eq!(clock.read, 35);
        assert_eq!(clock.gap_max.map(|(_, g)| g), Some(ms(600)));
        assert_eq!(clock.partition_gap_max, Some((0, ms(600))));
        // Partition 1 was last read at 260 ms: a stall to the end of generation counts.
        clock.close(start + ms(1000));
        assert_eq!(clock.gap_max.map(|(_, g)| g), Some(ms(600)));
        assert_eq!(clock.partition_gap_max, Some((1, ms(740))));
    }

    #[test]
    fn a_strike_before_the_first_read_is_not_timed() {
        let start = Instant::now();
        let fault = FailoverClock::default();
        fault.strike_for_test(start, 1, &[0]);
        let mut clock = ReadClock::new(start);
        clock.read(0, 2, 1, start + Duration::from_millis(5), &fault);
        assert_eq!(clock.after_fault(), None);
        assert_eq!(clock.gap_max, None, "one read has no gap");
    }
}
