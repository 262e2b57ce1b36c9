//! Topic configs through a real client (librdkafka's AdminClient): CreateTopics with
//! configs, DescribeConfigs, AlterConfigs, persistence across a restart, CreatePartitions.

mod common;

use std::time::Duration;

use common::{produce, segment_files, Broker};
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

type Admin = AdminClient<DefaultClientContext>;

fn admin(broker: &Broker) -> Admin {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap()
}

fn create(admin: &Admin, name: &str, configs: &[(&str, &str)]) -> Result<(), RDKafkaErrorCode> {
    let mut topic = NewTopic::new(name, 1, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results =
        futures_executor::block_on(admin.create_topics([&topic], &AdminOptions::new())).unwrap();
    results
        .into_iter()
        .next()
        .unwrap()
        .map(|_| ())
        .map_err(|(_, c)| c)
}

/// (value, source) of `key` for `topic`.
fn describe(admin: &Admin, topic: &str, key: &str) -> (String, ConfigSource) {
    let results = futures_executor::block_on(
        admin.describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new()),
    )
    .unwrap();
    let resource = results.into_iter().next().unwrap().expect("described");
    let mut entries = resource.entries;
    let i = entries.iter().position(|e| e.name == key).expect(key);
    let e = entries.swap_remove(i);
    (e.value.unwrap_or_default(), e.source)
}

fn alter(admin: &Admin, topic: &str, pairs: &[(&str, &str)]) -> Result<(), RDKafkaErrorCode> {
    let mut change = AlterConfig::new(ResourceSpecifier::Topic(topic));
    for (k, v) in pairs {
        change = change.set(k, v);
    }
    let results =
        futures_executor::block_on(admin.alter_configs([&change], &AdminOptions::new())).unwrap();
    results
        .into_iter()
        .next()
        .unwrap()
        .map(|_| ())
        .map_err(|(_, c)| c)
}

#[test]
fn create_topics_validates_configs() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let admin = admin(&broker);
    for bad in [
        ("flush.ms", "1"),
        ("retention.ms", "soon"),
        ("cleanup.policy", "compact"),
        ("min.insync.replicas", "2"),
        ("message.timestamp.type", "NoTime"),
        ("compression.type", "brotli"),
        ("compression.zstd.level", "23"),
        ("message.timestamp.after.max.ms", "-1"),
        ("segment.bytes", "10"),
    ] {
        assert_eq!(
            create(&admin, "bad", &[bad]),
            Err(RDKafkaErrorCode::InvalidConfig),
            "{bad:?}"
        );
    }
    create(
        &admin,
        "good",
        &[
            ("retention.ms", "3600000"),
            ("retention.bytes", "-1"),
            ("segment.ms", "60000"),
            ("cleanup.policy", "delete"),
            ("max.message.bytes", "100000"),
            ("message.timestamp.type", "LogAppendTime"),
            ("compression.type", "zstd"),
            ("compression.zstd.level", "5"),
            ("message.timestamp.before.max.ms", "86400000"),
            ("min.insync.replicas", "1"),
        ],
    )
    .unwrap();
}

#[test]
fn configs_are_described_altered_applied_and_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), &[]);
    let admin = admin(&broker);
    create(
        &admin,
        "cfg",
        &[("retention.ms", "3600000"), ("segment.bytes", "2048")],
    )
    .unwrap();
    assert_eq!(
        describe(&admin, "cfg", "retention.ms"),
        ("3600000".into(), ConfigSource::DynamicTopic)
    );
    assert_eq!(
        describe(&admin, "cfg", "retention.bytes"),
        ("-1".into(), ConfigSource::Default)
    );
    produce(&broker, "cfg", 40);
    assert!(
        segment_files(dir.path(), "cfg-0") > 2,
        "segment.bytes=2048 rolls"
    );

    // (rdkafka 0.39 drops AlterConfigs' per-resource errors: check nothing changed.)
    let _ = alter(&admin, "cfg", &[("retention.bytes", "oops")]);
    assert_eq!(describe(&admin, "cfg", "retention.bytes").0, "-1");
    alter(
        &admin,
        "cfg",
        &[("retention.bytes", "1000000"), ("segment.bytes", "4096")],
    )
    .unwrap();
    assert_eq!(describe(&admin, "cfg", "retention.bytes").0, "1000000");
    // AlterConfigs replaces the whole set: retention.ms is back to the broker default.
    assert_eq!(
        describe(&admin, "cfg", "retention.ms"),
        ("604800000".into(), ConfigSource::Default)
    );

    broker.terminate();
    let broker = Broker::start(dir.path(), &[]);
    let admin = self::admin(&broker);
    assert_eq!(
        describe(&admin, "cfg", "segment.bytes"),
        ("4096".into(), ConfigSource::DynamicTopic)
    );

    let results = futures_executor::block_on(
        admin.describe_configs([&ResourceSpecifier::Broker(1)], &AdminOptions::new()),
    )
    .unwrap();
    let resource = results.into_iter().next().unwrap().unwrap();
    let segment = resource.get("log.segment.bytes").expect("broker key");
    assert!(!segment.is_read_only, "a dynamic broker config");
    assert_eq!(segment.value.as_deref(), Some("1073741824"));
    assert!(
        resource
            .get("num.partitions")
            .expect("broker key")
            .is_read_only
    );
}

#[test]
fn create_partitions_grows_a_topic() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &["num.shards=2"]);
    let admin = admin(&broker);
    create(&admin, "grow", &[("segment.bytes", "4096")]).unwrap();
    let results = futures_executor::block_on(
        admin.create_partitions([&NewPartitions::new("grow", 4)], &AdminOptions::new()),
    )
    .unwrap();
    results.into_iter().next().unwrap().unwrap();
    let shrink = futures_executor::block_on(
        admin.create_partitions([&NewPartitions::new("grow", 2)], &AdminOptions::new()),
    )
    .unwrap();
    assert_eq!(
        shrink.into_iter().next().unwrap().unwrap_err().1,
        RDKafkaErrorCode::InvalidPartitions
    );
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    let meta = producer
        .client()
        .fetch_metadata(Some("grow"), Duration::from_secs(10))
        .unwrap();
    assert_eq!(meta.topics()[0].partitions().len(), 4);
    for p in 0..4 {
        producer
            .send(BaseRecord::<(), _>::to("grow").partition(p).payload("v"))
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    assert!(dir.path().join("grow-3").join("topic.config").exists());
}
