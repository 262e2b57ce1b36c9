//! The producers of a run: every producer writes every partition through a lane of its
//! own — a [`Session`] for Metadata, a pipelined connection to the partition's leader,
//! and with idempotence its own producer id and sequence numbers.
//!
//! A lane keeps at most `in_flight_batches_max` batches unanswered and retries in order,
//! as Kafka's producer does: on a retriable error (leader moved, not enough replicas,
//! request timed out, connection lost) it stops sending, lets what is in flight answer,
//! drops the connection, waits (Kafka's `retry.backoff.ms`, doubling to
//! `retry.backoff.max.ms`), refreshes Metadata and resends the unanswered batches, byte
//! for byte, to the leader it now names. After NOT_LEADER_OR_FOLLOWER or
//! FENCED_LEADER_EPOCH it refreshes at once and skips the wait when Metadata names a new
//! leader (KIP-951's rule, Kafka's producer since 3.7; it does not read the response's
//! `current_leader` hint itself). A batch is given up after `delivery.timeout.ms`
//! with its outcome unknown. A lane that must skip a batch (given up, refused) while
//! idempotent takes a new producer id, since its sequence numbers now have a gap.
//!
//! Every lane and its answer reader run as tasks of one compio runtime; what they learn
//! goes into one [`Recorder`].

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use compio::runtime::{JoinHandle, ResumeUnwind};
use hdrhistogram::Histogram;
use kafka_protocol::error::ResponseError;
use sluice_net::client::producer::ProduceOutcome;
use sluice_net::client::{
    Client, ClientError, ProduceAcks, ProduceSender, ProducerIdentity, Record, RecordBatchBuilder,
};

use crate::report::latency_histogram;
use crate::verify::checker::{History, Outcome, RecordId, Sent};
use crate::verify::consumer::{ConsumeStats, GroupConsumer};
use crate::verify::fault::{self, FailoverClock, FailoverStats, Fault};
use crate::verify::limits::*;
use crate::verify::session::Session;
use crate::verify::value::ValueFormat;
use crate::verify::{Options, VerifyError};

/// What the producers did.
#[derive(Debug, Clone)]
pub struct Produced {
    pub history: History,
    pub stats: ProduceStats,
    /// With [`Options::consumer_group`]: what the group consumer read meanwhile.
    pub consume: Option<ConsumeStats>,
}

/// Acknowledgement latency (from a batch's creation to its answer), in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub avg_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// Figures of the produce phase.
#[derive(Debug, Clone)]
pub struct ProduceStats {
    /// Generation plus the wait for what was in flight.
    pub elapsed: Duration,
    pub records: u64,
    pub acked: u64,
    pub unknown: u64,
    pub failed: u64,
    /// Batches sent again after a retriable error.
    pub resent_batches: u64,
    /// Connections dropped and opened again.
    pub reconnects: u64,
    /// The longest time without an acknowledgement (from the start, between successive
    /// acknowledgements, and from the last one to the end of generation), and when it
    /// began (since the start). `None` with acks=0.
    pub unavailable_max: Option<Duration>,
    pub unavailable_from: Duration,
    /// The longest time between two successive acknowledgements of one partition (a
    /// stall of one leader that the others' acknowledgements hide from
    /// `unavailable_max`), and which partition. `None` with acks=0.
    pub partition_unavailable_max: Option<(i32, Duration)>,
    /// `None` when nothing was acknowledged.
    pub latency: Option<Latency>,
    /// Generation stopped at [`SENT_RECORDS_MAX`] before `duration`.
    pub stopped_at_bound: bool,
    /// With [`Options::fault`]: when it was struck and how long its partitions took to be
    /// acknowledged by a new leader (`None` if it was never struck).
    pub failover: Option<FailoverStats>,
}

/// Runs the produce phase: the producers write for `options.duration`, then every batch
/// in flight is awaited (bounded by the delivery timeout).
pub async fn produce(options: &Options, run_id: u64) -> Result<Produced, VerifyError> {
    options.validate()?;
    let mut session = Session::new(&options.bootstrap, "sluice-verify", options.request_timeout);
    let partitions = prepare_topic(&mut session, options).await?;
    let lanes = partitions.len() * options.producers as usize;
    if lanes > LANES_MAX {
        return Err(VerifyError(format!(
            "{} producers x {} partitions = {lanes} lanes, above {LANES_MAX}",
            options.producers,
            partitions.len()
        )));
    }
    let shared = Rc::new(Shared::new(options, run_id));
    let consumer = options.consumer_group.as_deref().map(|group| {
        let clock = (shared.started_at, shared.failover.clone());
        GroupConsumer::start(options, run_id, group, &partitions, clock)
    });
    let mut tasks = Vec::with_capacity(lanes);
    for producer in 0..options.producers {
        for &partition in &partitions {
            let lane = Lane::new(shared.clone(), producer, partition, lanes);
            tasks.push(compio::runtime::spawn(lane.run()));
        }
    }
    let strike = options
        .fault
        .clone()
        .map(|f| spawn_strike(shared.clone(), f));
    let mut first_error = None;
    for task in tasks {
        let outcome = task.await.resume_unwind().expect("lanes are not cancelled");
        if let Err(error) = outcome {
            first_error.get_or_insert(error);
        }
    }
    if let Some(task) = strike {
        if let Err(error) = task.await.resume_unwind().expect("not cancelled") {
            first_error.get_or_insert(error);
        }
    }
    let consume = match consumer {
        Some(consumer) => {
            let end = shared.generation_end.get().unwrap_or(shared.stop_at);
            Some(consumer.finish(end.min(Instant::now())).await)
        }
        None => None,
    };
    if let Some(error) = first_error {
        return Err(error);
    }
    let mut produced = shared.finish(run_id);
    produced.consume = consume;
    Ok(produced)
}

/// The task that strikes `fault` on time (module `fault`).
fn spawn_strike(shared: Rc<Shared>, fault: Fault) -> JoinHandle<Result<(), VerifyError>> {
    compio::runtime::spawn(async move {
        let options = &shared.options;
        let mut session = Session::new(
            &options.bootstrap,
            "sluice-verify-fault",
            options.request_timeout,
        );
        let clock = &shared.failover;
        fault::strike(
            &fault,
            clock,
            &mut session,
            &options.topic,
            shared.started_at,
        )
        .await
    })
}

/// The topic's partitions, sorted; creates the topic if it is missing and allowed to.
async fn prepare_topic(session: &mut Session, options: &Options) -> Result<Vec<i32>, VerifyError> {
    let topic = options.topic.as_str();
    let missing = match session.refresh(topic).await {
        Ok(_) => false,
        Err(error) if error.kafka_error() == Some(ResponseError::UnknownTopicOrPartition) => true,
        Err(error) => return Err(error.into()),
    };
    if missing {
        let Some(layout) = options.create else {
            return Err(VerifyError(format!(
                "topic {topic:?} does not exist: create it, or pass --partitions P \
                 --replication-factor R to have verify create it"
            )));
        };
        let (partitions, replication_factor) = (layout.partitions, layout.replication_factor);
        session
            .call("CreateTopics", async |c: &mut Client| {
                c.create_topic(topic, partitions, replication_factor).await
            })
            .await?;
    }
    let metadata = session
        .call("Metadata", async |c: &mut Client| c.topic(topic).await)
        .await?;
    let mut partitions: Vec<i32> = metadata.partitions.iter().map(|p| p.partition).collect();
    partitions.sort_unstable();
    Ok(partitions)
}

/// What every lane shares.
struct Shared {
    options: Options,
    values: ValueFormat,
    started_at: Instant,
    stop_at: Instant,
    /// Records generated so far, all lanes together.
    issued: Cell<u64>,
    /// Per producer: the next sequence number.
    sequences: Vec<Cell<u64>>,
    /// When generation was first seen to have ended.
    generation_end: Cell<Option<Instant>>,
    /// A lane failed for good: every lane stops generating.
    aborted: Cell<bool>,
    recorder: RefCell<Recorder>,
    /// [`Options::fault`]'s strike and the acknowledgements after it (the group
    /// consumer times its reads by it too).
    failover: Rc<FailoverClock>,
}

impl Shared {
    fn new(options: &Options, run_id: u64) -> Self {
        let started_at = Instant::now();
        Self {
            options: options.clone(),
            values: ValueFormat::new(run_id, options.record_size_bytes, options.seed),
            started_at,
            stop_at: started_at + options.duration,
            issued: Cell::new(0),
            sequences: (0..options.producers).map(|_| Cell::new(0)).collect(),
            generation_end: Cell::new(None),
            aborted: Cell::new(false),
            recorder: RefCell::new(Recorder::new(started_at, options)),
            failover: Rc::new(FailoverClock::default()),
        }
    }

    fn generating(&self, now: Instant) -> bool {
        let stopped = self
            .options
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed));
        let generating = now < self.stop_at
            && self.issued.get() < SENT_RECORDS_MAX
            && !self.aborted.get()
            && !stopped;
        if !generating && self.generation_end.get().is_none() {
            self.generation_end.set(Some(now.min(self.stop_at)));
        }
        generating
    }

    /// Takes the next record of `producer`.
    fn take(&self, producer: u32) -> RecordId {
        self.issued.set(self.issued.get() + 1);
        let sequence = &self.sequences[producer as usize];
        let seq = sequence.get();
        sequence.set(seq + 1);
        RecordId { producer, seq }
    }

    fn finish(&self, run_id: u64) -> Produced {
        let mut recorder = self.recorder.borrow_mut();
        let issued = self.issued.get();
        assert_eq!(
            recorder.sent.len() as u64,
            issued,
            "every record generated has an outcome"
        );
        let end = self
            .generation_end
            .get()
            .unwrap_or(self.stop_at)
            .min(Instant::now());
        let stats = recorder.stats(self, end, issued);
        Produced {
            history: History {
                run_id,
                sent: std::mem::take(&mut recorder.sent),
            },
            stats,
            consume: None,
        }
    }
}

/// Outcomes as they settle, and the figures about them.
struct Recorder {
    sent: Vec<Sent>,
    histogram: Histogram<u64>,
    latency_sum_us: u64,
    acked: u64,
    unknown: u64,
    failed: u64,
    resent_batches: u64,
    reconnects: u64,
    started_at: Instant,
    last_ack_at: Instant,
    gap_max: Duration,
    gap_from: Instant,
    /// Per partition, its last acknowledgement.
    partition_last_ack: BTreeMap<i32, Instant>,
    partition_gap_max: Option<(i32, Duration)>,
    progress: bool,
    progress_at: Instant,
    /// [`Options::acknowledged`].
    acknowledged: Option<Arc<AtomicU64>>,
    /// [`Options::partition_gaps`].
    partition_gaps: Option<super::PartitionGaps>,
}

impl Recorder {
    fn new(started_at: Instant, options: &Options) -> Self {
        let progress = options.progress;
        Self {
            sent: Vec::new(),
            histogram: latency_histogram(),
            latency_sum_us: 0,
            acked: 0,
            unknown: 0,
            failed: 0,
            resent_batches: 0,
            reconnects: 0,
            started_at,
            last_ack_at: started_at,
            gap_max: Duration::ZERO,
            gap_from: started_at,
            partition_last_ack: BTreeMap::new(),
            partition_gap_max: None,
            progress,
            progress_at: started_at,
            acknowledged: options.acknowledged.clone(),
            partition_gaps: options.partition_gaps.clone(),
        }
    }

    fn acked(&mut self, partition: i32, batch: &Batch, base_offset: i64, at: Instant) {
        for (delta, &id) in batch.ids.iter().enumerate() {
            let offset = base_offset + delta as i64;
            let outcome = Outcome::Acked { offset };
            self.sent.push(Sent {
                id,
                partition,
                outcome,
            });
        }
        let records = batch.ids.len() as u64;
        let latency_us = at.saturating_duration_since(batch.created_at).as_micros() as u64;
        self.histogram
            .saturating_record_n(latency_us.max(1), records);
        self.latency_sum_us += latency_us * records;
        self.acked += records;
        if let Some(counter) = &self.acknowledged {
            counter.fetch_add(records, Ordering::Relaxed);
        }
        self.gap_until(at);
        self.partition_gap_until(partition, at);
        self.maybe_print_progress(at);
    }

    fn partition_gap_until(&mut self, partition: i32, at: Instant) {
        let Some(last) = self.partition_last_ack.insert(partition, at) else {
            return;
        };
        let gap = at.saturating_duration_since(last);
        if let Some(sink) = self
            .partition_gaps
            .as_ref()
            .filter(|_| gap >= super::PARTITION_GAP_MIN)
        {
            let _ = sink.try_send((partition, at, gap));
        }
        if self.partition_gap_max.is_none_or(|(_, max)| gap > max) {
            self.partition_gap_max = Some((partition, gap));
        }
    }

    /// The gap without acknowledgements that ends at `at`.
    fn gap_until(&mut self, at: Instant) {
        if at <= self.last_ack_at {
            return;
        }
        let gap = at - self.last_ack_at;
        if gap > self.gap_max {
            self.gap_max = gap;
            self.gap_from = self.last_ack_at;
        }
        self.last_ack_at = at;
    }

    /// Records of `batch` given up: unknown if it was ever sent, else failed.
    fn settle(&mut self, partition: i32, batch: &Batch, outcome: Outcome) {
        let outcome = match outcome {
            Outcome::Failed if batch.attempts > 1 => Outcome::Unknown,
            outcome => outcome,
        };
        for &id in &batch.ids {
            self.sent.push(Sent {
                id,
                partition,
                outcome,
            });
        }
        match outcome {
            Outcome::Acked { .. } => unreachable!("acknowledgements go through acked()"),
            Outcome::Unknown => self.unknown += batch.ids.len() as u64,
            Outcome::Failed => self.failed += batch.ids.len() as u64,
        }
    }

    fn maybe_print_progress(&mut self, now: Instant) {
        if !self.progress || now < self.progress_at + Duration::from_millis(PROGRESS_INTERVAL_MS) {
            return;
        }
        self.progress_at = now;
        eprintln!(
            "verify: {:.1} s: {} acknowledged, {} unknown, {} failed, {} batches resent, \
             {} reconnects",
            (now - self.started_at).as_secs_f64(),
            self.acked,
            self.unknown,
            self.failed,
            self.resent_batches,
            self.reconnects
        );
    }

    fn stats(&mut self, shared: &Shared, end: Instant, records: u64) -> ProduceStats {
        self.gap_until(end);
        let acks_answer = shared.options.acks != sluice_net::client::Acks::None;
        let ms = |us: u64| us as f64 / 1000.0;
        let latency = (self.acked > 0).then(|| Latency {
            avg_ms: ms(self.latency_sum_us / self.acked),
            p50_ms: ms(self.histogram.value_at_quantile(0.5)),
            p95_ms: ms(self.histogram.value_at_quantile(0.95)),
            p99_ms: ms(self.histogram.value_at_quantile(0.99)),
            p999_ms: ms(self.histogram.value_at_quantile(0.999)),
            max_ms: ms(self.histogram.max()),
        });
        ProduceStats {
            elapsed: shared.started_at.elapsed(),
            records,
            acked: self.acked,
            unknown: self.unknown,
            failed: self.failed,
            resent_batches: self.resent_batches,
            reconnects: self.reconnects,
            unavailable_max: acks_answer.then_some(self.gap_max),
            unavailable_from: self.gap_from - shared.started_at,
            partition_unavailable_max: self.partition_gap_max.filter(|_| acks_answer),
            latency,
            stopped_at_bound: records >= SENT_RECORDS_MAX,
            failover: shared
                .options
                .fault
                .as_ref()
                .and_then(|f| shared.failover.stats(f, shared.started_at)),
        }
    }
}

/// One batch, from its creation until its outcome is settled.
struct Batch {
    /// Lane-local number: answers must come back in the order batches were sent.
    token: u64,
    ids: Vec<RecordId>,
    bytes: Bytes,
    created_at: Instant,
    sent_at: Instant,
    attempts: u32,
}

/// What the answer reader passes to its lane.
enum Event {
    Answer {
        token: u64,
        outcome: ProduceOutcome,
        at: Instant,
    },
    Broken(ClientError),
}

/// A pipelined connection to the leader, and the task reading its answers (cancelled
/// when this is dropped).
struct Pipeline {
    sender: ProduceSender<u64>,
    events: async_channel::Receiver<Event>,
    _reader: JoinHandle<()>,
}

/// What to do about a refused batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disposition {
    /// Send it again, in order, after a metadata refresh.
    Retry,
    /// Written, but where is not known (`DUPLICATE_SEQUENCE_NUMBER`).
    Unknown,
    /// Refused for good.
    Fail,
}

/// The errors the brief names as "leader moved or replicas missing: refresh and retry",
/// whatever a codec's table says of them.
const RETRIED: [ResponseError; 7] = [
    ResponseError::NotLeaderOrFollower,
    ResponseError::LeaderNotAvailable,
    ResponseError::FencedLeaderEpoch,
    ResponseError::UnknownLeaderEpoch,
    ResponseError::NotEnoughReplicas,
    ResponseError::NotEnoughReplicasAfterAppend,
    ResponseError::RequestTimedOut,
];

/// Refusals that say the leader moved (KIP-951: a client that learns of a new leader
/// retries there without backing off).
const LEADER_MOVED: [Option<ResponseError>; 2] = [
    Some(ResponseError::NotLeaderOrFollower),
    Some(ResponseError::FencedLeaderEpoch),
];

/// `after_failure`: a batch sent before this one is being retried (with idempotence an
/// OUT_OF_ORDER_SEQUENCE_NUMBER then only says the earlier batch is missing).
fn disposition(error: &ClientError, after_failure: bool) -> Disposition {
    match error.kafka_error() {
        None => Disposition::Retry,
        Some(ResponseError::DuplicateSequenceNumber) => Disposition::Unknown,
        Some(ResponseError::OutOfOrderSequenceNumber) if after_failure => Disposition::Retry,
        Some(e) if RETRIED.contains(&e) || e.is_retriable() => Disposition::Retry,
        Some(_) => Disposition::Fail,
    }
}

/// Errors that no retry can mend: the run stops.
fn fatal(error: &ClientError) -> bool {
    match error {
        ClientError::UnsupportedApi { .. } | ClientError::Bootstrap(_) => true,
        error => error.kafka_error().is_some_and(|e| {
            !(RETRIED.contains(&e)
                || e.is_retriable()
                || e == ResponseError::UnknownTopicOrPartition)
        }),
    }
}

/// The next base sequence after `count` records from `sequence` (Kafka's
/// `DefaultRecordBatch.incrementSequence`: wraps to 0 after `i32::MAX`).
fn increment_sequence(sequence: i32, count: usize) -> i32 {
    let next = i64::from(sequence) + count as i64;
    (next % (i64::from(i32::MAX) + 1)) as i32
}

/// One producer writing one partition.
struct Lane {
    shared: Rc<Shared>,
    producer: u32,
    partition: i32,
    session: Session,
    /// The broker the current pipeline goes to (-1 before the first).
    leader: i32,
    identity: Option<ProducerIdentity>,
    next_sequence: i32,
    pipeline: Option<Pipeline>,
    /// Sent on the current pipeline, oldest first; at most `in_flight_batches_max`.
    in_flight: VecDeque<Batch>,
    /// To send again, oldest first, before anything new.
    retry: VecDeque<Batch>,
    /// A batch was refused retriably: send nothing more on this pipeline; once the rest
    /// has answered, reconnect.
    draining: bool,
    backoff: Duration,
    not_before: Instant,
    next_token: u64,
    /// A batch was refused because this leader no longer leads: the next connection
    /// skips the backoff if Metadata names a new leader (KIP-951's rule for Kafka's
    /// producer since 3.7), and backs off as usual if it still names the old one.
    leader_moved: bool,
    /// The last connection attempt failed (its error was printed).
    failing: bool,
    /// This lane's share of `--throughput`, records per second.
    rate: Option<f64>,
    /// Records this lane generated.
    generated: u64,
}

impl Lane {
    /// Lane of `producer` on `partition`, one of `lanes`.
    fn new(shared: Rc<Shared>, producer: u32, partition: i32, lanes: usize) -> Self {
        let options = &shared.options;
        let rate = options.throughput.map(|r| r / lanes as f64);
        let session = Session::new(&options.bootstrap, "sluice-verify", options.request_timeout);
        Self {
            session,
            producer,
            partition,
            leader: -1,
            identity: None,
            next_sequence: 0,
            pipeline: None,
            in_flight: VecDeque::new(),
            retry: VecDeque::new(),
            draining: false,
            backoff: Duration::from_millis(RETRY_BACKOFF_MS),
            not_before: shared.started_at,
            next_token: 0,
            leader_moved: false,
            failing: false,
            rate,
            generated: 0,
            shared,
        }
    }

    fn options(&self) -> &Options {
        &self.shared.options
    }

    async fn run(mut self) -> Result<(), VerifyError> {
        let outcome = self.produce().await;
        if outcome.is_err() {
            self.shared.aborted.set(true);
            self.give_up_all();
        }
        outcome
    }

    async fn produce(&mut self) -> Result<(), VerifyError> {
        loop {
            let now = Instant::now();
            self.expire(now);
            let generating = self.generating(now);
            if self.in_flight.is_empty() && self.retry.is_empty() && !generating {
                return Ok(());
            }
            if self.pipeline.is_none() {
                if now < self.not_before {
                    compio::time::sleep_until(self.not_before).await;
                } else {
                    self.connect().await?;
                }
                continue;
            }
            if self.can_send() {
                if let Some(batch) = self.retry.pop_front() {
                    self.send(batch).await;
                    continue;
                }
                if let Some(batch) = self.next_batch(now) {
                    self.send(batch).await;
                    continue;
                }
            }
            self.wait(now).await;
        }
    }

    /// Whether this lane makes more records: until the run's generation ends, and in any
    /// case its first (so every producer writes every partition however long connecting
    /// took), unless the run aborted or hit its bound.
    fn generating(&self, now: Instant) -> bool {
        let shared = &self.shared;
        let first =
            self.generated == 0 && !shared.aborted.get() && shared.issued.get() < SENT_RECORDS_MAX;
        shared.generating(now) || first
    }

    /// When this lane's next record is due (its share of `--throughput`).
    fn next_due(&self) -> Instant {
        match self.rate {
            None => self.shared.started_at,
            Some(rate) => {
                self.shared.started_at + Duration::from_secs_f64(self.generated as f64 / rate)
            }
        }
    }

    fn can_send(&self) -> bool {
        self.pipeline.is_some()
            && !self.draining
            && self.in_flight.len() < self.options().in_flight_batches_max
    }

    /// Gives up batches waiting past the delivery timeout. With idempotence the whole
    /// lane starts over with a new producer id (the skipped sequences would be refused).
    fn expire(&mut self, now: Instant) {
        let deadline = self.options().delivery_timeout;
        while let Some(front) = self.retry.front() {
            if front.created_at + deadline > now {
                return;
            }
            if self.options().idempotent {
                self.give_up_all();
                return;
            }
            let batch = self.retry.pop_front().expect("front exists");
            self.settle(&batch, Outcome::Unknown);
        }
    }

    fn settle(&self, batch: &Batch, outcome: Outcome) {
        self.shared
            .recorder
            .borrow_mut()
            .settle(self.partition, batch, outcome);
    }

    /// Every batch in flight or waiting becomes unknown; the connection and the producer
    /// id are dropped.
    fn give_up_all(&mut self) {
        let batches: Vec<Batch> = self
            .in_flight
            .drain(..)
            .chain(self.retry.drain(..))
            .collect();
        for batch in &batches {
            self.settle(batch, Outcome::Unknown);
        }
        self.pipeline = None;
        self.draining = false;
        self.identity = None;
        self.next_sequence = 0;
    }

    /// Refreshes Metadata, takes a producer id if idempotent and none is held, and opens
    /// a pipeline to the partition's leader. A retriable failure only sets the backoff.
    async fn connect(&mut self) -> Result<(), VerifyError> {
        match self.try_connect().await {
            Ok(pipeline) => {
                self.pipeline = Some(pipeline);
                Ok(())
            }
            Err(error) if fatal(&error) => Err(VerifyError(format!(
                "producer {} on {}-{}: {error}",
                self.producer,
                self.options().topic,
                self.partition
            ))),
            Err(error) => {
                self.report_failure(&error);
                self.back_off();
                Ok(())
            }
        }
    }

    /// Prints the first failure of an outage (until the next acknowledgement).
    fn report_failure(&mut self, why: &dyn std::fmt::Display) {
        if !self.failing && self.options().progress {
            eprintln!(
                "verify: producer {} on {}-{}: {why}; retrying",
                self.producer,
                self.options().topic,
                self.partition
            );
        }
        self.failing = true;
    }

    async fn try_connect(&mut self) -> Result<Pipeline, ClientError> {
        let topic = self.shared.options.topic.clone();
        let metadata = self.session.refresh(&topic).await?;
        let leader = metadata
            .partitions
            .iter()
            .find(|p| p.partition == self.partition)
            .map_or(-1, |p| p.leader_id);
        if std::mem::take(&mut self.leader_moved) && (leader < 0 || leader == self.leader) {
            return Err(ClientError::Metadata(format!(
                "partition {}: Metadata still names leader {leader} after NOT_LEADER_OR_FOLLOWER",
                self.partition
            )));
        }
        if self.options().idempotent && self.identity.is_none() {
            let identity = self
                .session
                .call("InitProducerId", async |c: &mut Client| {
                    c.init_producer_id().await
                })
                .await?;
            self.identity = Some(identity);
            self.next_sequence = 0;
        }
        let (partition, acks) = (self.partition, self.options().acks);
        let in_flight_max = self.options().in_flight_batches_max;
        let (mut sender, answers) = self
            .session
            .call("connecting to the leader", async |c: &mut Client| {
                c.producer::<u64>(&topic, partition, acks, in_flight_max)
                    .await
            })
            .await?;
        // As Kafka's producer: the broker may wait for replicas as long as we wait for it.
        let timeout_ms = i32::try_from(self.options().request_timeout.as_millis());
        sender.set_timeout_ms(timeout_ms.unwrap_or(i32::MAX));
        let (events_tx, events) = async_channel::bounded(IN_FLIGHT_BATCHES_MAX + 1);
        let reader = compio::runtime::spawn(read_answers(answers, events_tx));
        self.leader = leader;
        Ok(Pipeline {
            sender,
            events,
            _reader: reader,
        })
    }

    fn back_off(&mut self) {
        let jitter = 0.8 + 0.4 * self.jitter_unit();
        self.not_before = Instant::now() + self.backoff.mul_f64(jitter);
        self.backoff = (self.backoff * 2).min(Duration::from_millis(RETRY_BACKOFF_MAX_MS));
    }

    /// A number in [0, 1) from the seed and this lane (Kafka jitters its backoff ±20%).
    fn jitter_unit(&self) -> f64 {
        let mut x = self.options().seed
            ^ (u64::from(self.producer) << 32)
            ^ (self.partition as u64)
            ^ self.next_token.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        (x % 1000) as f64 / 1000.0
    }

    /// Drops the connection; what was in flight goes back to the front of the retry
    /// queue, in order.
    fn break_pipeline(&mut self, why: &dyn std::fmt::Display) {
        self.report_failure(why);
        self.pipeline = None;
        self.draining = false;
        while let Some(batch) = self.in_flight.pop_back() {
            self.retry.push_front(batch);
        }
        self.shared.recorder.borrow_mut().reconnects += 1;
        if !self.leader_moved {
            self.back_off();
        }
    }

    /// A new batch of the records due now, up to `batch_size_bytes` (at least one).
    fn next_batch(&mut self, now: Instant) -> Option<Batch> {
        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut builder = RecordBatchBuilder::new(timestamp_ms);
        let mut ids = Vec::new();
        while self.generating(now) && self.next_due() <= now {
            let id = self.shared.take(self.producer);
            self.generated += 1;
            let value = self.shared.values.encode(id);
            let record = Record {
                value: Some(&value),
                timestamp_ms,
                ..Record::default()
            };
            builder.push(&record);
            ids.push(id);
            let next_bytes = builder.record_size_bytes(&record);
            if builder.size_bytes() + next_bytes > self.options().batch_size_bytes {
                break;
            }
        }
        if ids.is_empty() {
            return None;
        }
        let bytes = match self.identity {
            Some(identity) => {
                let base_sequence = self.next_sequence;
                self.next_sequence = increment_sequence(base_sequence, ids.len());
                builder.finish_idempotent(identity, base_sequence)
            }
            None => builder.finish(),
        };
        let token = self.next_token;
        self.next_token += 1;
        Some(Batch {
            token,
            ids,
            bytes,
            created_at: now,
            sent_at: now,
            attempts: 0,
        })
    }

    /// Sends `batch` on the pipeline; a failed or stalled write drops the connection.
    async fn send(&mut self, mut batch: Batch) {
        let pipeline = self.pipeline.as_mut().expect("send needs a pipeline");
        let write = pipeline
            .sender
            .send(self.partition, batch.bytes.clone(), batch.token);
        let written = compio::time::timeout(self.shared.options.request_timeout, write).await;
        batch.attempts += 1;
        if batch.attempts > 1 {
            self.shared.recorder.borrow_mut().resent_batches += 1;
        }
        batch.sent_at = Instant::now();
        self.in_flight.push_back(batch);
        match written {
            Ok(Ok(())) => {}
            Ok(Err(error)) => self.break_pipeline(&error),
            Err(_elapsed) => self.break_pipeline(&"sending a batch timed out (request.timeout.ms)"),
        }
    }

    /// Waits for an answer, the next record due, or the oldest request's timeout.
    async fn wait(&mut self, now: Instant) {
        let options = self.options();
        let mut wake = now + options.request_timeout;
        if let Some(oldest) = self.in_flight.front() {
            wake = wake.min(oldest.sent_at + options.request_timeout);
        }
        if self.can_send() && self.generating(now) {
            wake = wake.min(self.next_due().max(now)).min(self.shared.stop_at);
        }
        if let Some(front) = self.retry.front() {
            wake = wake.min(front.created_at + options.delivery_timeout);
        }
        let events = self
            .pipeline
            .as_ref()
            .expect("wait needs a pipeline")
            .events
            .clone();
        match compio::time::timeout_at(wake, events.recv()).await {
            Ok(Ok(event)) => self.handle(event),
            Ok(Err(_closed)) => self.break_pipeline(&"the answer reader stopped"),
            Err(_elapsed) => {
                let timeout = self.options().request_timeout;
                let stalled = self
                    .in_flight
                    .front()
                    .is_some_and(|b| b.sent_at + timeout <= Instant::now());
                if stalled {
                    self.break_pipeline(&"no answer within request.timeout.ms");
                }
            }
        }
    }

    fn handle(&mut self, event: Event) {
        let (token, outcome, at) = match event {
            Event::Answer { token, outcome, at } => (token, outcome, at),
            Event::Broken(error) => return self.break_pipeline(&error),
        };
        let batch = self
            .in_flight
            .pop_front()
            .expect("an answer for a batch in flight");
        assert_eq!(
            batch.token, token,
            "a pipeline answers in the order it sent"
        );
        match outcome {
            Ok(Some(base_offset)) => {
                let mut recorder = self.shared.recorder.borrow_mut();
                recorder.acked(self.partition, &batch, base_offset, at);
                self.shared.failover.acked(self.partition, self.leader, at);
                self.backoff = Duration::from_millis(RETRY_BACKOFF_MS);
                self.failing = false;
            }
            Ok(None) => self.settle(&batch, Outcome::Unknown),
            Err(error) => self.refused(batch, &error),
        }
        if self.draining && self.in_flight.is_empty() {
            self.break_pipeline(&"retrying refused batches");
        }
    }

    fn refused(&mut self, batch: Batch, error: &ClientError) {
        let after_failure = self.draining || !self.retry.is_empty();
        match disposition(error, after_failure) {
            Disposition::Retry => {
                self.leader_moved |= LEADER_MOVED.contains(&error.kafka_error());
                self.report_failure(error);
                self.retry.push_back(batch);
                self.draining = true;
            }
            Disposition::Unknown => self.settle(&batch, Outcome::Unknown),
            Disposition::Fail => {
                if self.options().progress {
                    eprintln!(
                        "verify: producer {} on {}-{}: {error}",
                        self.producer,
                        self.options().topic,
                        self.partition
                    );
                }
                self.settle(&batch, Outcome::Failed);
                if self.options().idempotent {
                    self.give_up_all();
                }
            }
        }
    }
}

/// Reads a pipeline's answers into `events` until the connection ends.
async fn read_answers(mut answers: ProduceAcks<u64>, events: async_channel::Sender<Event>) {
    loop {
        let event = match answers.next().await {
            Ok(Some((token, outcome))) => Event::Answer {
                token,
                outcome,
                at: Instant::now(),
            },
            Ok(None) => return,
            Err(error) => Event::Broken(error),
        };
        let broken = matches!(event, Event::Broken(_));
        if events.send(event).await.is_err() || broken {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kafka(error: ResponseError) -> ClientError {
        ClientError::Kafka {
            context: "producing".into(),
            error,
            code: error.code(),
        }
    }

    #[test]
    fn refusals_are_retried_or_given_up_as_kafka_does() {
        let check = |error: ClientError, after_failure: bool, expected: Disposition| {
            assert_eq!(disposition(&error, after_failure), expected, "{error}");
        };
        for error in RETRIED {
            check(kafka(error), false, Disposition::Retry);
        }
        let closed = ClientError::Closed {
            address: "b:1".into(),
            in_flight: 2,
        };
        check(closed, false, Disposition::Retry);
        let out_of_order = ResponseError::OutOfOrderSequenceNumber;
        check(kafka(out_of_order), true, Disposition::Retry);
        check(kafka(out_of_order), false, Disposition::Fail);
        let duplicate = ResponseError::DuplicateSequenceNumber;
        check(kafka(duplicate), false, Disposition::Unknown);
        check(
            kafka(ResponseError::MessageTooLarge),
            false,
            Disposition::Fail,
        );
        assert!(fatal(&kafka(ResponseError::TopicAuthorizationFailed)));
        assert!(!fatal(&kafka(ResponseError::UnknownTopicOrPartition)));
        assert!(!fatal(&kafka(ResponseError::NotLeaderOrFollower)));
    }

    #[test]
    fn sequences_wrap_as_kafka_does() {
        assert_eq!(increment_sequence(0, 5), 5);
        assert_eq!(increment_sequence(i32::MAX - 1, 1), i32::MAX);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 4), 2);
    }
}
