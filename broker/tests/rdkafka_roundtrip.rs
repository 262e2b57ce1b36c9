//! A real client (librdkafka, built from the `rdkafka` crate's bundled source) against the
//! real `sluiced` binary: create a topic, produce keyed records with acks=all, consume them
//! back at their acknowledged offsets, list offsets, restart after SIGTERM and SIGKILL.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::Broker;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

const TOPIC: &str = "orders";
const PARTITIONS: i32 = 3;
const RECORDS: usize = 20_000;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// (partition, offset) -> (key, value) of every acknowledged record.
type Acked = Arc<Mutex<BTreeMap<(i32, i64), (Vec<u8>, Vec<u8>)>>>;

struct Collect {
    acked: Acked,
    failed: Arc<Mutex<Vec<String>>>,
}

impl ClientContext for Collect {}

impl ProducerContext for Collect {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                let kv = (
                    m.key().unwrap_or_default().to_vec(),
                    m.payload().unwrap_or_default().to_vec(),
                );
                self.acked
                    .lock()
                    .unwrap()
                    .insert((m.partition(), m.offset()), kv);
            }
            Err((e, _)) => self.failed.lock().unwrap().push(e.to_string()),
        }
    }
}

fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let results = futures_executor::block_on(admin.create_topics([&topic], &AdminOptions::new()))
        .expect("create_topics");
    for r in results {
        r.expect("topic created");
    }
}

/// Produces `count` keyed records numbered from `start` with acks=all; returns what was acked.
fn produce(bootstrap: &str, start: usize, count: usize, extra: &[(&str, &str)]) -> Acked {
    let acked: Acked = Arc::default();
    let failed: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("linger.ms", "5");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    let producer: ThreadedProducer<Collect> = config
        .create_with_context(Collect {
            acked: acked.clone(),
            failed: failed.clone(),
        })
        .expect("producer");
    for i in start..start + count {
        let key = format!("key-{}", i % 97);
        let value = format!("value-{i}");
        let mut record = BaseRecord::to(TOPIC).key(&key).payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, r)) => {
                    assert!(
                        matches!(
                            e.rdkafka_error_code(),
                            Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        ),
                        "{e}"
                    );
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    producer.flush(CLIENT_TIMEOUT).expect("flush");
    assert!(
        failed.lock().unwrap().is_empty(),
        "delivery failures: {:?}",
        failed.lock().unwrap()
    );
    assert_eq!(acked.lock().unwrap().len(), count);
    acked
}

fn consumer(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        // librdkafka needs a group id for assign(); with explicit start offsets and no
        // commits it never needs the group coordinator.
        .set("group.id", "sluice-test")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer")
}

/// Reads every partition from the beginning until `expected` records arrived; checks each is
/// at its acknowledged offset and that offsets increase within a partition.
fn consume_all(bootstrap: &str, expected: &Acked) {
    let expected = expected.lock().unwrap().clone();
    let c = consumer(bootstrap);
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut seen: BTreeMap<(i32, i64), (Vec<u8>, Vec<u8>)> = BTreeMap::new();
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < expected.len() {
        assert!(
            Instant::now() < deadline,
            "consumed {} of {}",
            seen.len(),
            expected.len()
        );
        let Some(m) = c.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.expect("consume");
        let prev = last.insert(m.partition(), m.offset());
        assert!(
            prev.is_none_or(|p| p < m.offset()),
            "partition {} went back from {prev:?} to {}",
            m.partition(),
            m.offset()
        );
        let kv = (
            m.key().unwrap_or_default().to_vec(),
            m.payload().unwrap_or_default().to_vec(),
        );
        seen.insert((m.partition(), m.offset()), kv);
    }
    assert_eq!(seen, expected, "records differ from what was acknowledged");
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn check_list_offsets(bootstrap: &str, acked: &Acked, before_ms: i64) {
    let c = consumer(bootstrap);
    let acked = acked.lock().unwrap();
    for p in 0..PARTITIONS {
        let (low, high) = c
            .fetch_watermarks(TOPIC, p, CLIENT_TIMEOUT)
            .expect("watermarks");
        let count = acked.keys().filter(|(part, _)| *part == p).count() as i64;
        assert_eq!((low, high), (0, count), "partition {p} watermarks");
    }
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(TOPIC, p, Offset::Offset(before_ms))
            .unwrap();
    }
    let found = c
        .offsets_for_times(tpl, CLIENT_TIMEOUT)
        .expect("offsets_for_times");
    for e in found.elements() {
        assert_eq!(
            e.offset(),
            Offset::Offset(0),
            "partition {}: first record at/after the start time",
            e.partition()
        );
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Offset(now_ms() + 3_600_000))
        .unwrap();
    let found = c
        .offsets_for_times(tpl, CLIENT_TIMEOUT)
        .expect("offsets_for_times");
    assert_eq!(
        found.elements()[0].offset(),
        Offset::End,
        "no record an hour from now"
    );
}

#[test]
fn produce_consume_list_offsets_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), &[]);
    create_topic(&broker.bootstrap(), TOPIC, PARTITIONS);
    let start_ms = now_ms() - 1;
    let acked = produce(&broker.bootstrap(), 0, RECORDS, &[]);
    let per_partition: Vec<usize> = (0..PARTITIONS)
        .map(|p| {
            acked
                .lock()
                .unwrap()
                .keys()
                .filter(|(x, _)| *x == p)
                .count()
        })
        .collect();
    assert!(
        per_partition.iter().all(|n| *n > 0),
        "keys spread over partitions: {per_partition:?}"
    );
    consume_all(&broker.bootstrap(), &acked);
    check_list_offsets(&broker.bootstrap(), &acked, start_ms);

    let (status, took) = broker.terminate();
    assert!(status.success(), "SIGTERM exit: {status:?}");
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
    let mut broker = Broker::start(dir.path(), &[]);
    consume_all(&broker.bootstrap(), &acked);

    let more = produce(&broker.bootstrap(), RECORDS, 2_000, &[]);
    acked.lock().unwrap().extend(more.lock().unwrap().clone());
    broker.kill();
    let broker = Broker::start(dir.path(), &[]);
    assert!(
        broker.log_contains("no clean shutdown marker"),
        "SIGKILL must lead to recovery"
    );
    consume_all(&broker.bootstrap(), &acked);
}

#[test]
fn compressed_batches_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    create_topic(&broker.bootstrap(), TOPIC, PARTITIONS);
    let mut acked: Acked = Arc::default();
    for (i, codec) in ["gzip", "snappy", "lz4", "zstd"].iter().enumerate() {
        let got = produce(
            &broker.bootstrap(),
            i * 1000,
            1000,
            &[("compression.codec", codec)],
        );
        Arc::get_mut(&mut acked)
            .unwrap()
            .get_mut()
            .unwrap()
            .extend(got.lock().unwrap().clone());
    }
    consume_all(&broker.bootstrap(), &acked);
}

/// `fetch.transfer.method=sendfile`: record ranges go out through the shards' sendfile
/// threads (they exist: their names are checked), across many small segments.
#[test]
fn sendfile_transfer_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(
        dir.path(),
        &["fetch.transfer.method=sendfile", "log.segment.bytes=65536"],
    );
    create_topic(&broker.bootstrap(), TOPIC, PARTITIONS);
    let small_batches = [("batch.size", "16384")];
    let acked = produce(&broker.bootstrap(), 0, 10_000, &small_batches);
    consume_all(&broker.bootstrap(), &acked);
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", broker.pid()))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).ok())
        .collect();
    assert!(
        threads.iter().any(|t| t.starts_with("shard-0-sendf")),
        "no sendfile thread among {threads:?}"
    );
}

#[test]
fn fsync_policy_and_small_segments() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(
        dir.path(),
        &["log.flush.interval.messages=1", "log.segment.bytes=16384"],
    );
    create_topic(&broker.bootstrap(), TOPIC, PARTITIONS);
    let small_batches = [("linger.ms", "0"), ("batch.size", "4096")];
    let acked = produce(&broker.bootstrap(), 0, 5_000, &small_batches);
    consume_all(&broker.bootstrap(), &acked);
    let segments = std::fs::read_dir(dir.path().join(format!("{TOPIC}-0")))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".log")
        })
        .count();
    assert!(segments > 1, "16 KiB segments must roll, found {segments}");
}

/// A consumer long-polling with a 20 s `fetch.wait.max.ms` sees a record appended meanwhile
/// well before its wait ends: the parked fetch wakes on the append, not on a timer.
#[test]
fn long_poll_wakes_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    create_topic(&broker.bootstrap(), TOPIC, 1);
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "sluice-test")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "20000")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    // Let the consumer park its first fetch on the empty partition.
    assert!(c.poll(Duration::from_millis(1500)).is_none());
    let sent = Instant::now();
    produce(&broker.bootstrap(), 0, 1, &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let m = loop {
        assert!(Instant::now() < deadline, "record never arrived");
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            break m.expect("consume");
        }
    };
    assert_eq!(m.offset(), 0);
    let waited = sent.elapsed();
    assert!(
        waited < Duration::from_secs(10),
        "the long poll woke after {waited:?}, not on the append"
    );
}

/// Rolled segments are fsynced and their recovery points checkpointed (Kafka's
/// `recovery-point-offset-checkpoint`), so recovery after SIGKILL rescans only what follows.
#[test]
fn recovery_points_are_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    let overrides = [
        "log.segment.bytes=16384",
        "log.flush.offset.checkpoint.interval.ms=100",
    ];
    let mut broker = Broker::start(dir.path(), &overrides);
    create_topic(&broker.bootstrap(), TOPIC, PARTITIONS);
    let acked = produce(
        &broker.bootstrap(),
        0,
        5_000,
        &[("linger.ms", "0"), ("batch.size", "4096")],
    );
    let path = dir.path().join("recovery-point-offset-checkpoint");
    let deadline = Instant::now() + Duration::from_secs(20);
    let points = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let points: Vec<(String, i64)> = text
            .lines()
            .skip(2)
            // __consumer_offsets (created at startup) has recovery points of its own.
            .filter(|l| l.starts_with(&format!("{TOPIC} ")))
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (format!("{}-{}", f[0], f[1]), f[2].parse().unwrap())
            })
            .collect();
        if points.len() == PARTITIONS as usize && points.iter().all(|(_, p)| *p > 0) {
            break points;
        }
        assert!(
            Instant::now() < deadline,
            "checkpoint {path:?} never covered rolled segments: {text:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    broker.kill();
    let broker = Broker::start(dir.path(), &overrides);
    consume_all(&broker.bootstrap(), &acked);
    assert!(
        points.iter().all(|(tp, _)| tp.starts_with(TOPIC)),
        "{points:?}"
    );
}
