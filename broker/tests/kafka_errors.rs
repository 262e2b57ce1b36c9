//! Kafka's error codes through a real client (librdkafka): topic administration, offsets out
//! of range, records too large, commits of unknown partitions.

mod common;

use std::time::Duration;

use common::Broker;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use rdkafka::{Offset, TopicPartitionList};
use std::sync::Mutex;

fn admin(broker: &Broker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap()
}

/// Creates one topic; returns the broker's error code for it.
fn create(
    admin: &AdminClient<DefaultClientContext>,
    name: &str,
    partitions: i32,
    rf: i32,
) -> Option<RDKafkaErrorCode> {
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(rf));
    let results =
        futures_executor::block_on(admin.create_topics([&topic], &AdminOptions::new())).unwrap();
    results
        .into_iter()
        .next()
        .unwrap()
        .err()
        .map(|(_, code)| code)
}

fn delete(admin: &AdminClient<DefaultClientContext>, name: &str) -> Option<RDKafkaErrorCode> {
    let results =
        futures_executor::block_on(admin.delete_topics(&[name], &AdminOptions::new())).unwrap();
    results
        .into_iter()
        .next()
        .unwrap()
        .err()
        .map(|(_, code)| code)
}

#[test]
fn topic_administration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let a = admin(&broker);
    assert_eq!(create(&a, "t1", 2, 1), None);
    assert_eq!(
        create(&a, "t1", 2, 1),
        Some(RDKafkaErrorCode::TopicAlreadyExists)
    );
    assert_eq!(
        create(&a, "bad/name", 1, 1),
        Some(RDKafkaErrorCode::InvalidTopic)
    );
    assert_eq!(
        create(&a, "t2", 1, 3),
        Some(RDKafkaErrorCode::InvalidReplicationFactor)
    );
    assert_eq!(
        create(&a, "t3", 0, 1),
        Some(RDKafkaErrorCode::InvalidPartitions)
    );
    assert!(dir.path().join("t1-1").is_dir());
    assert_eq!(delete(&a, "t1"), None);
    assert!(
        !dir.path().join("t1-0").exists(),
        "deleted partition directories are removed"
    );
    assert_eq!(
        delete(&a, "t1"),
        Some(RDKafkaErrorCode::UnknownTopicOrPartition)
    );
    assert_eq!(
        create(&a, "t1", 1, 1),
        None,
        "a deleted topic can be created again"
    );
}

/// Collects the error code of every failed delivery.
#[derive(Default)]
struct Failures(Mutex<Vec<RDKafkaErrorCode>>);

impl ClientContext for Failures {}

impl ProducerContext for Failures {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.0.lock().unwrap().push(e.rdkafka_error_code().unwrap());
        }
    }
}

#[test]
fn offset_out_of_range_and_message_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &["message.max.bytes=10000"]);
    assert_eq!(create(&admin(&broker), "t", 1, 1), None);
    let producer: BaseProducer<Failures> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("message.max.bytes", "100000")
        .set("compression.codec", "none")
        .set("retries", "0")
        .create_with_context(Failures::default())
        .unwrap();
    let big = vec![b'x'; 50_000];
    producer
        .send(BaseRecord::<(), _>::to("t").payload(&big))
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();
    producer
        .send(BaseRecord::<(), _>::to("t").payload("small"))
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(
        *producer.context().0.lock().unwrap(),
        vec![RDKafkaErrorCode::MessageSizeTooLarge]
    );
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "sluice-test")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "error")
        .create()
        .unwrap();
    let (low, high) = consumer
        .fetch_watermarks("t", 0, Duration::from_secs(30))
        .unwrap();
    assert_eq!((low, high), (0, 1), "only the small record was written");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("t", 0, Offset::Offset(1_000))
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let err = (0..100)
        .find_map(|_| match consumer.poll(Duration::from_millis(200)) {
            Some(Err(e)) => Some(e),
            _ => None,
        })
        .expect("an error for offset 1000");
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

/// OffsetCommit of partitions that do not exist answers UNKNOWN_TOPIC_OR_PARTITION for them
/// (Kafka's rule) and stores only the partitions that exist.
#[test]
fn offset_commit_of_unknown_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &["auto.create.topics.enable=false"]);
    assert_eq!(create(&admin(&broker), "t", 2, 1), None);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "standalone")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("t", 1, Offset::Offset(7)).unwrap();
    tpl.add_partition_offset("t", 5, Offset::Offset(7)).unwrap();
    tpl.add_partition_offset("nope", 0, Offset::Offset(7))
        .unwrap();
    let err = consumer
        .commit(&tpl, CommitMode::Sync)
        .expect_err("a commit of unknown partitions fails");
    assert_eq!(
        err,
        KafkaError::ConsumerCommit(RDKafkaErrorCode::UnknownTopicOrPartition)
    );
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(30))
        .unwrap();
    let offset = |t: &str, p: i32| committed.find_partition(t, p).unwrap().offset();
    assert_eq!(offset("t", 1), Offset::Offset(7), "the existing partition");
    assert_eq!(offset("t", 5), Offset::Invalid, "past the partition count");
    assert_eq!(offset("nope", 0), Offset::Invalid, "an unknown topic");
}

/// `__consumer_offsets` refuses DeleteRecords and Produce (Kafka's INVALID_TOPIC_EXCEPTION)
/// and, deliberately stricter than Kafka under KRaft, DeleteTopics and CreatePartitions.
#[test]
fn internal_topic_refuses_deletion_and_appends() {
    const OFFSETS: &str = "__consumer_offsets";
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &["offsets.topic.num.partitions=3"]);
    let a = admin(&broker);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // Created by the broker once ready: wait until Metadata lists it.
    let listed = || {
        a.inner()
            .fetch_metadata(Some(OFFSETS), Duration::from_secs(10))
            .is_ok_and(|m| m.topics()[0].error().is_none() && m.topics()[0].partitions().len() == 3)
    };
    while !listed() {
        assert!(
            std::time::Instant::now() < deadline,
            "{OFFSETS} never created"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(OFFSETS, 0, Offset::Offset(0))
        .unwrap();
    let done = futures_executor::block_on(a.delete_records(&tpl, &AdminOptions::new())).unwrap();
    let err = done.find_partition(OFFSETS, 0).unwrap().error();
    assert_eq!(
        err,
        Err(KafkaError::OffsetFetch(RDKafkaErrorCode::InvalidTopic)),
        "DeleteRecords"
    );
    assert_eq!(
        delete(&a, OFFSETS),
        Some(RDKafkaErrorCode::InvalidTopic),
        "DeleteTopics"
    );
    let more = rdkafka::admin::NewPartitions::new(OFFSETS, 5);
    let results =
        futures_executor::block_on(a.create_partitions([&more], &AdminOptions::new())).unwrap();
    assert_eq!(
        results[0].as_ref().map_err(|(_, code)| *code),
        Err(RDKafkaErrorCode::InvalidTopic),
        "CreatePartitions"
    );
    let producer: BaseProducer<Failures> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("retries", "0")
        .create_with_context(Failures::default())
        .unwrap();
    producer
        .send(BaseRecord::<(), _>::to(OFFSETS).payload("forged"))
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(
        *producer.context().0.lock().unwrap(),
        vec![RDKafkaErrorCode::InvalidTopic],
        "Produce"
    );
    for p in 0..3 {
        assert!(dir.path().join(format!("{OFFSETS}-{p}")).is_dir());
    }
    assert!(!dir.path().join(format!("{OFFSETS}-3")).exists());
}
