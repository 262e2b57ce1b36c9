//! A full data disk: appends answer KAFKA_STORAGE_ERROR, reads go on, and appends resume by
//! themselves once space is freed, with every acknowledged record intact. The data dir is a
//! small tmpfs mounted by the test (skipped, saying why, where mounting is not allowed).

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Broker;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use sluice_testkit::SmallDisk;

const TOPIC: &str = "full";
/// The filesystem's size, and the file that takes part of it until the test frees it.
const TMPFS_BYTES: u64 = 8 << 20;
const FILLER_BYTES: usize = 4 << 20;
const VALUE_BYTES: usize = 1000;
/// Records offered while filling the disk at most (8 MiB of them would not fit).
const FILL_RECORDS_MAX: usize = 20_000;

/// (offset -> value) of every acknowledged record, and the errors of the others.
#[derive(Default)]
struct Deliveries {
    acked: Mutex<BTreeMap<i64, Vec<u8>>>,
    failed: Mutex<Vec<RDKafkaErrorCode>>,
}

struct Collect(Arc<Deliveries>);

impl ClientContext for Collect {}

impl ProducerContext for Collect {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                let v = m.payload().unwrap_or_default().to_vec();
                self.0.acked.lock().unwrap().insert(m.offset(), v);
            }
            Err((e, _)) => self
                .0
                .failed
                .lock()
                .unwrap()
                .push(e.rdkafka_error_code().unwrap()),
        }
    }
}

fn producer(broker: &Broker, deliveries: &Arc<Deliveries>) -> BaseProducer<Collect> {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("retries", "0")
        .set("linger.ms", "0")
        .set("compression.codec", "none")
        .create_with_context(Collect(deliveries.clone()))
        .unwrap()
}

/// Sends `count` records numbered from `first`, one flush per 100.
fn send(p: &BaseProducer<Collect>, first: usize, count: usize) {
    for i in first..first + count {
        let mut value = format!("record {i} ").into_bytes();
        value.resize(VALUE_BYTES, b'.');
        p.send(BaseRecord::<(), _>::to(TOPIC).payload(&value))
            .unwrap();
        if i % 100 == 99 {
            p.flush(Duration::from_secs(30)).unwrap();
        }
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

/// Every record of the partition, by offset.
fn read_all(broker: &Broker, end: i64) -> BTreeMap<i64, Vec<u8>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "disk-full")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut out = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < end as usize && Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m.unwrap();
            out.insert(m.offset(), m.payload().unwrap_or_default().to_vec());
        }
    }
    out
}

fn check_acked(broker: &Broker, acked: &BTreeMap<i64, Vec<u8>>) {
    let end = acked.keys().next_back().map_or(0, |o| o + 1);
    let read = read_all(broker, end);
    for (offset, value) in acked {
        assert_eq!(
            read.get(offset),
            Some(value),
            "acknowledged record at {offset}"
        );
    }
}

#[test]
fn a_full_disk_refuses_appends_keeps_reads_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let fs = match SmallDisk::try_mount(dir.path(), TMPFS_BYTES) {
        Ok(fs) => fs,
        Err(reason) => {
            eprintln!("SKIPPED: cannot mount a tmpfs for the data dir: {reason}");
            return;
        }
    };
    let data = fs.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let filler = fs.path().join("filler");
    std::fs::write(&filler, vec![0u8; FILLER_BYTES]).unwrap();
    let broker = Broker::start(
        &data,
        &["offsets.topic.num.partitions=1", "num.partitions=1"],
    );
    let deliveries = Arc::new(Deliveries::default());
    let p = producer(&broker, &deliveries);
    // Fill the disk: until a produce answers KAFKA_STORAGE_ERROR.
    let mut sent = 0;
    while deliveries.failed.lock().unwrap().is_empty() {
        assert!(sent < FILL_RECORDS_MAX, "the disk never filled");
        send(&p, sent, 100);
        sent += 100;
    }
    let failed = deliveries.failed.lock().unwrap().clone();
    assert!(
        failed
            .iter()
            .all(|e| *e == RDKafkaErrorCode::KafkaStorageError),
        "{failed:?}"
    );
    let acked_full = deliveries.acked.lock().unwrap().clone();
    assert!(!acked_full.is_empty());
    assert!(broker.log_contains("disk full"));
    // Reads go on while appends are refused.
    check_acked(&broker, &acked_full);
    // Space comes back: appends resume by themselves (the probe runs every second).
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let before = acked_full.len();
    while deliveries.acked.lock().unwrap().len() == before {
        assert!(Instant::now() < deadline, "appends never resumed");
        send(&p, sent, 1);
        sent += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    send(&p, sent, 200);
    let acked = deliveries.acked.lock().unwrap().clone();
    assert!(
        acked.len() >= before + 200,
        "{} then {}",
        before,
        acked.len()
    );
    check_acked(&broker, &acked);
    drop(broker);
}
