//! Retention and DeleteRecords through a real client (librdkafka): size and time
//! retention move the low watermark, fetching below it is OFFSET_OUT_OF_RANGE, DeleteRecords
//! survives a restart.

mod common;

use std::time::{Duration, Instant};

use common::Broker;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

const WAIT: Duration = Duration::from_secs(20);

fn create(broker: &Broker, name: &str, configs: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    let mut topic = NewTopic::new(name, 1, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results =
        futures_executor::block_on(admin.create_topics([&topic], &AdminOptions::new())).unwrap();
    results.into_iter().next().unwrap().unwrap();
}

/// `count` records of 200 bytes, one batch each, with timestamp `ts` when given.
fn produce(broker: &Broker, topic: &str, count: usize, ts: Option<i64>) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("batch.num.messages", "1")
        .set("linger.ms", "0")
        .create()
        .unwrap();
    let value = vec![b'x'; 200];
    for _ in 0..count {
        let mut record = BaseRecord::<(), _>::to(topic).payload(&value);
        if let Some(ts) = ts {
            record = record.timestamp(ts);
        }
        producer.send(record).unwrap();
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

fn consumer(broker: &Broker) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "retention-test")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "error")
        .create()
        .unwrap()
}

fn watermarks(c: &BaseConsumer, topic: &str) -> (i64, i64) {
    c.fetch_watermarks(topic, 0, Duration::from_secs(10))
        .unwrap()
}

/// Waits until the low watermark is above 0.
fn wait_low_above_zero(c: &BaseConsumer, topic: &str) -> (i64, i64) {
    let started = Instant::now();
    loop {
        let w = watermarks(c, topic);
        if w.0 > 0 || started.elapsed() > WAIT {
            return w;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_out_of_range(c: &BaseConsumer, topic: &str, offset: i64) {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(offset))
        .unwrap();
    c.assign(&tpl).unwrap();
    let err = (0..100)
        .find_map(|_| match c.poll(Duration::from_millis(200)) {
            Some(Err(e)) => Some(e),
            _ => None,
        })
        .expect("an error for an offset below the log start");
    assert!(
        matches!(
            err,
            KafkaError::MessageConsumption(
                RDKafkaErrorCode::AutoOffsetReset | RDKafkaErrorCode::OffsetOutOfRange
            )
        ),
        "{err:?}"
    );
}

fn segment_files(dir: &std::path::Path, partition_dir: &str) -> usize {
    std::fs::read_dir(dir.join(partition_dir))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("log".as_ref()))
        .count()
}

#[test]
fn retention_bytes_and_ms_delete_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(
        dir.path(),
        &[
            "log.retention.check.interval.ms=100",
            "log.initial.task.delay.ms=0",
        ],
    );
    create(
        &broker,
        "by-size",
        &[("segment.bytes", "2048"), ("retention.bytes", "4096")],
    );
    create(
        &broker,
        "by-time",
        &[("segment.bytes", "2048"), ("retention.ms", "60000")],
    );
    produce(&broker, "by-size", 60, None);
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 3_600_000;
    produce(&broker, "by-time", 30, Some(hour_ago));
    produce(&broker, "by-time", 1, None);
    let c = consumer(&broker);
    let (low, high) = wait_low_above_zero(&c, "by-size");
    assert_eq!(high, 60);
    assert!(low > 0, "retention.bytes moved the log start");
    assert!(segment_files(dir.path(), "by-size-0") <= 4);
    let (low, high) = wait_low_above_zero(&c, "by-time");
    assert_eq!(high, 31);
    assert!(
        low > 0 && low <= 30,
        "old segments deleted, the active kept: {low}"
    );
    assert_out_of_range(&c, "by-time", 0);
}

/// Kafka's schedule: the first check `log.initial.task.delay.ms` after start, then every
/// `log.retention.check.interval.ms`.
#[test]
fn first_retention_check_runs_after_the_initial_delay() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(
        dir.path(),
        &[
            "log.retention.check.interval.ms=100",
            "log.initial.task.delay.ms=3600000",
        ],
    );
    create(
        &broker,
        "by-size",
        &[("segment.bytes", "2048"), ("retention.bytes", "4096")],
    );
    produce(&broker, "by-size", 60, None);
    assert_eq!(
        watermarks(&consumer(&broker), "by-size"),
        (0, 60),
        "no check before the initial delay"
    );
    broker.terminate();
    // An hour between checks: only the check right after the (zero) initial delay can delete.
    let broker = Broker::start(
        dir.path(),
        &[
            "log.retention.check.interval.ms=3600000",
            "log.initial.task.delay.ms=0",
        ],
    );
    let (low, high) = wait_low_above_zero(&consumer(&broker), "by-size");
    assert_eq!(high, 60);
    assert!(low > 0, "the first check ran at start");
}

#[test]
fn delete_records_moves_the_log_start_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), &[]);
    create(&broker, "dr", &[("segment.bytes", "2048")]);
    produce(&broker, "dr", 30, None);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("dr", 0, Offset::Offset(25))
        .unwrap();
    let done =
        futures_executor::block_on(admin.delete_records(&tpl, &AdminOptions::new())).unwrap();
    let p = done.find_partition("dr", 0).unwrap();
    assert_eq!(p.offset(), Offset::Offset(25));
    assert!(p.error().is_ok());
    let mut beyond = TopicPartitionList::new();
    beyond
        .add_partition_offset("dr", 0, Offset::Offset(1000))
        .unwrap();
    let refused =
        futures_executor::block_on(admin.delete_records(&beyond, &AdminOptions::new())).unwrap();
    assert!(refused.find_partition("dr", 0).unwrap().error().is_err());
    let c = consumer(&broker);
    assert_eq!(watermarks(&c, "dr"), (25, 30));
    assert_out_of_range(&c, "dr", 10);
    broker.terminate();
    let broker = Broker::start(dir.path(), &[]);
    let c = consumer(&broker);
    assert_eq!(watermarks(&c, "dr"), (25, 30));
}
