//! `sluice-perf produce`: Kafka's `kafka-producer-perf-test` on the sluice client.
//!
//! Three kinds of task share the runtime thread, as Kafka's producer splits the
//! application thread from its sender thread:
//! - the generator appends records (throttled to `--throughput`) to one open batch at a
//!   time (the sticky partitioner: the next batch goes to the next partition) and closes
//!   it when it reaches `batch.size`, or when `linger.ms` has passed since its first
//!   record and the sender is idle; closed batches wait in a queue of at most
//!   `buffer.memory / batch.size` batches (the generator waits when it is full);
//! - the sender takes batches from that queue and sends them on the partition's pipelined
//!   connection, at most `max.in.flight.requests.per.connection` unanswered;
//! - one acknowledger per partition records, for every record of an answered batch,
//!   answer time minus the time the generator appended it, in an HDR histogram.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use compio::runtime::ResumeUnwind;
use sluice_net::client::{
    Acks, Client, ClientError, ProduceAcks, ProduceSender, Record, RecordBatchBuilder,
};

use crate::report::{JsonObject, BYTES_PER_MB};

mod stats;

use stats::Stats;

#[derive(clap::Args, Debug)]
pub struct ProduceArgs {
    /// Broker(s) to bootstrap from, host:port[,host:port...].
    #[arg(long = "bootstrap-server")]
    bootstrap_server: Option<String>,
    #[arg(long)]
    topic: String,
    #[arg(long = "num-records")]
    num_records: u64,
    #[arg(long = "record-size")]
    record_size: usize,
    /// Records per second to aim for; -1 for no limit.
    #[arg(long, allow_negative_numbers = true)]
    throughput: f64,
    /// Producer settings as key=value: acks, linger.ms, batch.size,
    /// max.in.flight.requests.per.connection, buffer.memory, client.id,
    /// bootstrap.servers.
    #[arg(long = "producer-props", num_args = 1..)]
    producer_props: Vec<String>,
    /// Partitions of the topic if it has to be created.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// Milliseconds between progress lines.
    #[arg(long = "reporting-interval", default_value_t = 5000)]
    reporting_interval_ms: u64,
    /// Print the final figures as one JSON object (progress lines go to stderr).
    #[arg(long)]
    json: bool,
}

/// Upper bound of `batch.size`: a batch must fit a request far below the broker's limit.
const BATCH_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Upper bound of the queue of closed batches, whatever `buffer.memory` says.
const READY_BATCHES_MAX: usize = 65_536;
/// Failed batches reported one by one before only counting.
const ERRORS_PRINTED_MAX: u64 = 10;

/// The producer settings in force.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bootstrap: String,
    pub client_id: String,
    pub acks: Acks,
    pub linger: Duration,
    pub batch_size_bytes: usize,
    pub requests_in_flight_max: usize,
    pub ready_batches_max: usize,
}

impl Settings {
    /// Kafka's producer defaults, overridden by `key=value` pairs.
    pub fn parse(bootstrap: Option<&str>, props: &[String]) -> Result<Settings, String> {
        let mut settings = Settings {
            bootstrap: bootstrap.unwrap_or_default().to_string(),
            client_id: "perf-producer-client".to_string(),
            acks: Acks::All,
            linger: Duration::from_millis(5),
            batch_size_bytes: 16_384,
            requests_in_flight_max: 5,
            ready_batches_max: 0,
        };
        let mut buffer_memory_bytes: usize = 32 * 1024 * 1024;
        for prop in props {
            let (key, value) = prop
                .split_once('=')
                .ok_or_else(|| format!("producer property {prop:?}: expected key=value"))?;
            let number = || {
                value
                    .parse::<usize>()
                    .map_err(|_| format!("producer property {key}={value}: expected a number"))
            };
            match key {
                "bootstrap.servers" => settings.bootstrap = value.to_string(),
                "client.id" => settings.client_id = value.to_string(),
                "acks" => settings.acks = Acks::parse(value)?,
                "linger.ms" => settings.linger = Duration::from_millis(number()? as u64),
                "batch.size" => settings.batch_size_bytes = number()?,
                "max.in.flight.requests.per.connection" | "max.in.flight" => {
                    settings.requests_in_flight_max = number()?;
                }
                "buffer.memory" => buffer_memory_bytes = number()?,
                _ => eprintln!("sluice-perf: ignoring producer property {key}={value}"),
            }
        }
        settings.validate(buffer_memory_bytes)?;
        Ok(settings)
    }

    fn validate(&mut self, buffer_memory_bytes: usize) -> Result<(), String> {
        if self.bootstrap.is_empty() {
            return Err("no broker: pass --bootstrap-server or bootstrap.servers=".into());
        }
        if !(1..=BATCH_BYTES_MAX).contains(&self.batch_size_bytes) {
            return Err(format!("batch.size must be in 1..={BATCH_BYTES_MAX}"));
        }
        let in_flight_max = sluice_net::client::limits::REQUESTS_IN_FLIGHT_MAX;
        if !(1..=in_flight_max).contains(&self.requests_in_flight_max) {
            return Err(format!(
                "max.in.flight.requests.per.connection must be in 1..={in_flight_max}"
            ));
        }
        self.ready_batches_max =
            (buffer_memory_bytes / self.batch_size_bytes).clamp(1, READY_BATCHES_MAX);
        Ok(())
    }
}

/// A batch being filled.
struct OpenBatch {
    partition: i32,
    builder: RecordBatchBuilder,
    /// Microseconds since the run started at which each record was appended.
    appended_us: Vec<u64>,
    payload_bytes: u64,
    first_at: Instant,
}

/// A closed batch on its way to the broker, and back as the pipeline's tag.
struct ClosedBatch {
    partition: i32,
    bytes: Bytes,
    appended_us: Vec<u64>,
    payload_bytes: u64,
}

/// What the acknowledgers carry back: the batch minus its bytes.
struct SentBatch {
    appended_us: Vec<u64>,
    payload_bytes: u64,
}

pub async fn run(args: ProduceArgs) -> Result<(), ClientError> {
    let settings = Settings::parse(args.bootstrap_server.as_deref(), &args.producer_props)
        .map_err(ClientError::Metadata)?;
    let mut client = Client::connect_as(&settings.bootstrap, &settings.client_id).await?;
    let partitions = prepare_topic(&mut client, &args.topic, args.partitions).await?;
    let reporting_interval = Duration::from_millis(args.reporting_interval_ms.max(1));
    let stats = Rc::new(RefCell::new(Stats::new(reporting_interval, args.json)));
    let mut senders = HashMap::new();
    let mut ackers = Vec::new();
    for &partition in &partitions {
        let (sender, acks) = client
            .producer::<SentBatch>(
                &args.topic,
                partition,
                settings.acks,
                settings.requests_in_flight_max,
            )
            .await?;
        senders.insert(partition, sender);
        ackers.push(compio::runtime::spawn(acknowledge(acks, stats.clone())));
    }
    let (ready_tx, ready_rx) = async_channel::bounded(settings.ready_batches_max);
    let sender_idle = Rc::new(Cell::new(true));
    let sender = compio::runtime::spawn(send(ready_rx, senders, sender_idle.clone()));
    stats.borrow_mut().start();
    let generator = Generator {
        settings: settings.clone(),
        partitions,
        ready: ready_tx,
        sender_idle,
        start: stats.borrow().started_at(),
    };
    let generated = generator.run(&args).await;
    let sent = sender
        .await
        .resume_unwind()
        .expect("sender task not cancelled");
    for acker in ackers {
        acker
            .await
            .resume_unwind()
            .expect("acknowledger not cancelled")?;
    }
    sent?;
    generated?;
    let stats = stats.borrow();
    print_total(&stats, args.json);
    stats.failure()
}

/// The topic's partitions, creating it with `partitions` partitions if it is missing.
async fn prepare_topic(
    client: &mut Client,
    topic: &str,
    partitions: i32,
) -> Result<Vec<i32>, ClientError> {
    let metadata = client.metadata(&[topic]).await?;
    let exists = metadata
        .topics
        .iter()
        .any(|t| t.name == topic && t.error.is_none());
    if !exists {
        client.create_topic(topic, partitions, 1).await?;
    }
    let metadata = client.topic(topic).await?;
    let mut partitions: Vec<i32> = metadata.partitions.iter().map(|p| p.partition).collect();
    partitions.sort_unstable();
    Ok(partitions)
}

struct Generator {
    settings: Settings,
    partitions: Vec<i32>,
    ready: async_channel::Sender<ClosedBatch>,
    sender_idle: Rc<Cell<bool>>,
    start: Instant,
}

impl Generator {
    async fn run(self, args: &ProduceArgs) -> Result<(), ClientError> {
        // Kafka's perf tool sends one random payload of uppercase letters throughout.
        let payload: Vec<u8> = (0..args.record_size)
            .map(|i| b'A' + ((i as u64).wrapping_mul(2_654_435_761) % 26) as u8)
            .collect();
        let rate = (args.throughput > 0.0).then_some(args.throughput);
        let mut open: Option<OpenBatch> = None;
        let mut batches_opened = 0usize;
        for index in 0..args.num_records {
            if let Some(rate) = rate {
                self.throttle(index, rate, &mut open).await?;
            }
            let timestamp_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let record = Record {
                value: Some(&payload),
                timestamp_ms,
                ..Record::default()
            };
            let batch = open.get_or_insert_with(|| {
                batches_opened += 1;
                let partition = self.partitions[(batches_opened - 1) % self.partitions.len()];
                self.open_batch(partition, timestamp_ms)
            });
            let overflows = !batch.builder.is_empty()
                && batch.builder.size_bytes() + batch.builder.record_size_bytes(&record)
                    > self.settings.batch_size_bytes;
            if overflows {
                let partition = batch.partition;
                self.close(open.take()).await?;
                open = Some(self.open_batch(partition, timestamp_ms));
            }
            let batch = open.as_mut().expect("opened above");
            batch.builder.push(&record);
            batch
                .appended_us
                .push(self.start.elapsed().as_micros() as u64);
            batch.payload_bytes += payload.len() as u64;
            if self.should_close(batch, Instant::now()) {
                self.close(open.take()).await?;
            }
        }
        self.close(open.take()).await
    }

    fn open_batch(&self, partition: i32, timestamp_ms: i64) -> OpenBatch {
        OpenBatch {
            partition,
            builder: RecordBatchBuilder::new(timestamp_ms),
            appended_us: Vec::new(),
            payload_bytes: 0,
            first_at: Instant::now(),
        }
    }

    fn should_close(&self, batch: &OpenBatch, now: Instant) -> bool {
        batch.builder.size_bytes() >= self.settings.batch_size_bytes
            || (batch.first_at + self.settings.linger <= now && self.sender_idle.get())
    }

    /// Waits until record `index` is due at `rate` records/s, closing the open batch
    /// meanwhile when its linger time passes.
    async fn throttle(
        &self,
        index: u64,
        rate: f64,
        open: &mut Option<OpenBatch>,
    ) -> Result<(), ClientError> {
        let due = self.start + Duration::from_secs_f64(index as f64 / rate);
        loop {
            let now = Instant::now();
            if now >= due {
                return Ok(());
            }
            let mut wake = due;
            if let Some(batch) = open.as_ref() {
                if self.should_close(batch, now) {
                    self.close(open.take()).await?;
                    continue;
                }
                let linger_end = batch.first_at + self.settings.linger;
                if linger_end > now {
                    wake = wake.min(linger_end);
                }
            }
            compio::time::sleep_until(wake).await;
        }
    }

    /// Hands `batch` to the sender, waiting while `buffer.memory` worth is queued.
    async fn close(&self, batch: Option<OpenBatch>) -> Result<(), ClientError> {
        let Some(batch) = batch.filter(|b| !b.builder.is_empty()) else {
            return Ok(());
        };
        let closed = ClosedBatch {
            partition: batch.partition,
            bytes: batch.builder.finish(),
            appended_us: batch.appended_us,
            payload_bytes: batch.payload_bytes,
        };
        self.sender_idle.set(false);
        // Fails only when the sender task stopped on an error, which it reports.
        let _ = self.ready.send(closed).await;
        Ok(())
    }
}

/// The sender task: closed batches to their partition's pipeline, in order.
async fn send(
    ready: async_channel::Receiver<ClosedBatch>,
    mut senders: HashMap<i32, ProduceSender<SentBatch>>,
    idle: Rc<Cell<bool>>,
) -> Result<(), ClientError> {
    while let Ok(batch) = ready.recv().await {
        idle.set(false);
        let sender = senders
            .get_mut(&batch.partition)
            .expect("a sender per partition");
        let tag = SentBatch {
            appended_us: batch.appended_us,
            payload_bytes: batch.payload_bytes,
        };
        let sent = sender.send(batch.partition, batch.bytes, tag).await;
        if let Err(error) = sent {
            ready.close();
            return Err(error);
        }
        if ready.is_empty() {
            idle.set(true);
        }
    }
    Ok(())
}

/// One acknowledger task: answers of one pipeline into the statistics.
async fn acknowledge(
    mut acks: ProduceAcks<SentBatch>,
    stats: Rc<RefCell<Stats>>,
) -> Result<(), ClientError> {
    while let Some((batch, outcome)) = acks.next().await? {
        let mut stats = stats.borrow_mut();
        match outcome {
            Ok(_) => stats.record_batch(&batch.appended_us, batch.payload_bytes),
            Err(error) => {
                let failed = stats.record_failure(batch.appended_us.len() as u64);
                if failed <= ERRORS_PRINTED_MAX {
                    eprintln!("sluice-perf: {error}");
                }
            }
        }
    }
    Ok(())
}

fn print_total(stats: &Stats, json: bool) {
    let total = stats.total();
    if !json {
        println!(
            "{} records sent, {:.6} records/sec ({:.2} MB/sec), {:.2} ms avg latency, \
             {:.2} ms max latency, {:.2} ms 50th, {:.2} ms 95th, {:.2} ms 99th, \
             {:.2} ms 99.9th.",
            total.records,
            total.records_per_sec,
            total.bytes_per_sec / BYTES_PER_MB,
            total.latency_avg_ms,
            total.latency_max_ms,
            total.p50_ms,
            total.p95_ms,
            total.p99_ms,
            total.p999_ms,
        );
        return;
    }
    let object = JsonObject::default()
        .number("records", total.records as f64)
        .number("batches", total.batches as f64)
        .number("records_failed", total.records_failed as f64)
        .number("elapsed_ms", total.elapsed_ms)
        .number("records_per_sec", total.records_per_sec)
        .number("mb_per_sec", total.bytes_per_sec / BYTES_PER_MB)
        .number("latency_avg_ms", total.latency_avg_ms)
        .number("latency_max_ms", total.latency_max_ms)
        .number("latency_p50_ms", total.p50_ms)
        .number("latency_p95_ms", total.p95_ms)
        .number("latency_p99_ms", total.p99_ms)
        .number("latency_p999_ms", total.p999_ms);
    println!("{}", object.finish());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(props: &[&str]) -> Result<Settings, String> {
        let props: Vec<String> = props.iter().map(|p| p.to_string()).collect();
        Settings::parse(Some("127.0.0.1:9092"), &props)
    }

    #[test]
    fn producer_props_override_kafka_defaults() {
        let defaults = parse(&[]).unwrap();
        assert_eq!(defaults.acks, Acks::All);
        assert_eq!(defaults.batch_size_bytes, 16_384);
        assert_eq!(defaults.requests_in_flight_max, 5);
        assert_eq!(defaults.ready_batches_max, 2048);
        let set = parse(&[
            "acks=1",
            "linger.ms=0",
            "batch.size=1000",
            "max.in.flight=2",
        ])
        .unwrap();
        assert_eq!(set.acks, Acks::Leader);
        assert_eq!(set.linger, Duration::ZERO);
        assert_eq!(set.batch_size_bytes, 1000);
        assert_eq!(set.requests_in_flight_max, 2);
        assert!(parse(&["acks=2"]).unwrap_err().contains("acks=2"));
        assert!(parse(&["batch.size=x"])
            .unwrap_err()
            .contains("expected a number"));
        assert!(parse(&["linger.ms"]).unwrap_err().contains("key=value"));
        assert!(parse(&["max.in.flight=0"]).is_err());
    }
}
