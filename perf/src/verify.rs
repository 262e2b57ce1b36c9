//! `sluice-perf verify`: a Jepsen-style check that a Kafka-compatible cluster keeps what
//! it acknowledges, usable from the command line and as a library (the cluster fault
//! tests run it while they kill brokers).
//!
//! A run has three phases:
//! 1. [`produce`]: `producers` producers write uniquely identified records ([`value`])
//!    to every partition for `duration`, following leaders as they move, and remember
//!    what each send came to (acknowledged at an offset, unknown, failed): a
//!    [`checker::History`].
//! 2. [`read`]: every partition read from its log start offset to its high watermark,
//!    from its leader: [`checker::PartitionRead`]s (after [`await_high_watermarks`]: the
//!    high watermarks cover what was acknowledged, or the request timeout passed).
//! 3. [`checker::check`]: lost, duplicated, reordered, disagreeing and phantom records.
//!
//! With [`Options::consumer_group`] a group consumer ([`consumer`]) also reads the topic
//! during phase 1, timing its reads (not checked: phase 2 is the check).
//!
//! ```ignore
//! let mut options = Options::new("127.0.0.1:9092", "verify");
//! options.duration = Duration::from_secs(120); // an upper bound: `stop` ends it
//! options.idempotent = true;
//! let (stop, acked) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
//! (options.stop, options.acknowledged) = (Some(stop.clone()), Some(acked.clone()));
//! let run = std::thread::spawn(move || sluice_perf::verify::run_blocking(&options));
//! // wait until `acked` passes 1000, kill the leader, wait for 1000 more, then:
//! stop.store(true, Ordering::Relaxed);
//! let report = run.join().unwrap()?;
//! assert!(report.verdict.is_ok(), "{}", report.verdict_line());
//! ```
//!
//! Everything runs on one compio runtime thread ([`run_blocking`] makes one).

pub mod checker;
mod cli;
pub mod consumer;
pub mod fault;
pub mod limits;
mod producer;
mod reader;
mod session;
pub mod value;

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use sluice_net::client::{Acks, ClientError};

pub use checker::{check, History, PartitionRead, RecordId, Verdict};
pub use cli::{run_cli, VerifyArgs};
pub use consumer::{ConsumeStats, ReadsAfterFault};
pub use fault::{FailoverStats, Fault, FaultSignal, FaultTarget};
pub use producer::{produce, Latency, ProduceStats, Produced};
pub use reader::{await_high_watermarks, read};

use limits::*;

/// A topic to create if it is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicLayout {
    /// -1 for the broker's `num.partitions`.
    pub partitions: i32,
    /// -1 for the broker's `default.replication.factor`.
    pub replication_factor: i16,
}

/// Where a producer sends each gap between its acknowledgements on a partition:
/// (partition, when the gap ended, how long it was). A bounded queue: make it with
/// `std::sync::mpsc::sync_channel(PARTITION_GAPS_MAX)`; a gap that finds it full is dropped.
pub type PartitionGaps = std::sync::mpsc::SyncSender<(i32, std::time::Instant, Duration)>;
/// Shorter gaps are the load's own rhythm: not given to [`Options::partition_gaps`].
pub const PARTITION_GAP_MIN: Duration = Duration::from_millis(50);
/// Room in [`Options::partition_gaps`]'s queue (a 50-round soak gives a few thousand).
pub const PARTITION_GAPS_MAX: usize = 100_000;

/// What a run does. [`Options::new`] gives Kafka's producer defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// `host:port[,host:port...]`.
    pub bootstrap: String,
    pub topic: String,
    /// How long the producers generate records (in-flight ones are then awaited).
    pub duration: Duration,
    pub producers: u32,
    pub acks: Acks,
    /// InitProducerId and sequence numbers: retries are answered as duplicates.
    pub idempotent: bool,
    /// Create the topic so if it does not exist (otherwise a missing topic is an error).
    pub create: Option<TopicLayout>,
    pub record_size_bytes: usize,
    /// Records per second over all producers; `None`: as fast as acknowledged.
    pub throughput: Option<f64>,
    /// Kafka's `batch.size`.
    pub batch_size_bytes: usize,
    /// Kafka's `max.in.flight.requests.per.connection`, per producer and partition.
    pub in_flight_batches_max: usize,
    /// Kafka's `delivery.timeout.ms`: how long a record is retried before its outcome is
    /// given up as unknown. Also bounds a read that makes no progress.
    pub delivery_timeout: Duration,
    /// Kafka's `request.timeout.ms`: how long an answer may take before the connection
    /// is dropped and the request retried.
    pub request_timeout: Duration,
    /// Filler of record values and nothing else: runs are told apart by a random run id.
    pub seed: u64,
    /// Print progress lines on stderr.
    pub progress: bool,
    /// Generation also stops once this is set (a fault test stops the run when it has
    /// seen enough, instead of guessing a duration).
    pub stop: Option<Arc<AtomicBool>>,
    /// Counts the records acknowledged so far, as they are (a fault test waits on it to
    /// strike mid-load).
    pub acknowledged: Option<Arc<AtomicU64>>,
    /// Receives each gap of [`PARTITION_GAP_MIN`] or more between two acknowledgements of
    /// one producer on one partition, as it ends (a fault test counts them per fault).
    pub partition_gaps: Option<PartitionGaps>,
    /// A leader to kill or stop during the run, timed by the run itself (`fault`).
    pub fault: Option<Fault>,
    /// Also consume the topic during the run as a member of this consumer group
    /// (`consumer`): the time from a fault to the next record read, the longest gap.
    pub consumer_group: Option<String>,
}

impl Options {
    pub fn new(bootstrap: &str, topic: &str) -> Self {
        Self {
            bootstrap: bootstrap.to_string(),
            topic: topic.to_string(),
            duration: Duration::from_secs(60),
            producers: 4,
            acks: Acks::All,
            idempotent: false,
            create: None,
            record_size_bytes: 100,
            throughput: Some(10_000.0),
            batch_size_bytes: 16_384,
            in_flight_batches_max: IN_FLIGHT_BATCHES_MAX,
            delivery_timeout: Duration::from_millis(DELIVERY_TIMEOUT_MS_DEFAULT),
            request_timeout: Duration::from_millis(REQUEST_TIMEOUT_MS_DEFAULT),
            seed: 0,
            progress: false,
            stop: None,
            acknowledged: None,
            partition_gaps: None,
            fault: None,
            consumer_group: None,
        }
    }

    /// What a fault test runs: idempotent acks=all producers at `throughput` records per
    /// second until `stop` is set (at most an hour), counting acknowledgements in `acked`.
    pub fn until_stopped(
        bootstrap: &str,
        topic: &str,
        (producers, throughput): (u32, f64),
        (stop, acked): (Arc<AtomicBool>, Arc<AtomicU64>),
    ) -> Self {
        Self {
            duration: Duration::from_secs(3_600),
            producers,
            acks: Acks::All,
            idempotent: true,
            throughput: Some(throughput),
            stop: Some(stop),
            acknowledged: Some(acked),
            ..Options::new(bootstrap, topic)
        }
    }

    /// Every setting within its bound, and Kafka's rules between them.
    pub fn validate(&self) -> Result<(), VerifyError> {
        let fail = |message: String| Err(VerifyError(message));
        if self.bootstrap.trim().is_empty() {
            return fail("no broker: pass --bootstrap-server host:port".into());
        }
        if !(1..=PRODUCERS_MAX).contains(&self.producers) {
            return fail(format!(
                "--producers {} outside 1..={PRODUCERS_MAX}",
                self.producers
            ));
        }
        if !(1..=BATCH_BYTES_MAX).contains(&self.batch_size_bytes) {
            let size = self.batch_size_bytes;
            return fail(format!("--batch-size {size} outside 1..={BATCH_BYTES_MAX}"));
        }
        if self.record_size_bytes > RECORD_BYTES_MAX {
            let size = self.record_size_bytes;
            return fail(format!("--record-size {size} above {RECORD_BYTES_MAX}"));
        }
        if !(1..=IN_FLIGHT_BATCHES_MAX).contains(&self.in_flight_batches_max) {
            return fail(format!(
                "--max-in-flight {} outside 1..={IN_FLIGHT_BATCHES_MAX}",
                self.in_flight_batches_max
            ));
        }
        if self.throughput.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return fail("--throughput must be above 0 (or -1 for no limit)".into());
        }
        if self.idempotent && self.acks != Acks::All {
            // Kafka's producer refuses the same combination.
            return fail(
                "--idempotent needs --acks all: idempotence cannot be guaranteed \
                 without it (Kafka's producer refuses the same)"
                    .into(),
            );
        }
        if let Some(fault) = &self.fault {
            if fault.after >= self.duration {
                return fail(format!(
                    "--fault-after {} ms must be within --duration {} ms",
                    fault.after.as_millis(),
                    self.duration.as_millis()
                ));
            }
        }
        if self.delivery_timeout < self.request_timeout {
            return fail(format!(
                "--delivery-timeout-ms {} must be at least --request-timeout-ms {} (Kafka's rule)",
                self.delivery_timeout.as_millis(),
                self.request_timeout.as_millis()
            ));
        }
        Ok(())
    }
}

/// Why a run could not complete (as opposed to completing and finding anomalies).
#[derive(Debug)]
pub struct VerifyError(pub String);

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for VerifyError {}

impl From<ClientError> for VerifyError {
    fn from(error: ClientError) -> Self {
        VerifyError(error.to_string())
    }
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct Report {
    pub run_id: u64,
    pub seed: u64,
    pub partitions: usize,
    pub produce: ProduceStats,
    /// With [`Options::consumer_group`].
    pub consume: Option<ConsumeStats>,
    pub verdict: Verdict,
}

/// A fresh run id: random, so runs against the same topic never mistake each other's
/// records for their own.
pub fn new_run_id() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}

/// Produces, reads back and checks: the whole of `sluice-perf verify`.
pub async fn run(options: &Options) -> Result<Report, VerifyError> {
    let run_id = new_run_id();
    let produced = produce(options, run_id).await?;
    await_high_watermarks(options, &produced.history).await;
    let reads = read(options, run_id).await?;
    let verdict = check(&produced.history, &reads);
    Ok(Report {
        run_id,
        seed: options.seed,
        partitions: reads.len(),
        produce: produced.stats,
        consume: produced.consume,
        verdict,
    })
}

/// [`run`] on a compio runtime of its own: for a test thread that kills brokers on
/// another.
pub fn run_blocking(options: &Options) -> Result<Report, VerifyError> {
    let runtime = compio::runtime::Runtime::new()
        .map_err(|error| VerifyError(format!("starting the io_uring runtime: {error}")))?;
    runtime.block_on(run(options))
}
