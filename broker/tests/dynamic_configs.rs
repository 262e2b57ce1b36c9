//! Dynamic broker configs through librdkafka's AdminClient (DescribeConfigs, AlterConfigs on
//! `ResourceSpecifier::Broker`) and raw IncrementalAlterConfigs for the cluster default
//! (`""`, which librdkafka cannot name): Kafka's sources, types and read-only flags; a change
//! reaches existing partitions on every shard without a restart and survives one.

mod common;

use std::net::TcpStream;

use common::{incremental_alter, produce, raw_connect, roundtrip, segment_files, Broker};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, ApiKey, DescribeConfigsRequest,
    DescribeConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

type Admin = AdminClient<DefaultClientContext>;

const BROKER: i8 = 4;
const INVALID_REQUEST: i16 = 42;
const INVALID_CONFIG: i16 = 40;

fn admin(broker: &Broker) -> Admin {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap()
}

/// The entry of `key` in the only resource described.
fn take(
    results: Vec<rdkafka::admin::ConfigResourceResult>,
    key: &str,
) -> rdkafka::admin::ConfigEntry {
    let resource = results.into_iter().next().unwrap().expect("described");
    let mut entries = resource.entries;
    let i = entries
        .iter()
        .position(|e| e.name == key)
        .unwrap_or_else(|| panic!("{key} not described"));
    entries.swap_remove(i)
}

/// (value, source, read-only) of every broker key librdkafka describes for broker 1.
fn describe_broker(admin: &Admin, key: &str) -> (Option<String>, ConfigSource, bool) {
    let results = futures_executor::block_on(
        admin.describe_configs([&ResourceSpecifier::Broker(1)], &AdminOptions::new()),
    )
    .unwrap();
    let e = take(results, key);
    (e.value, e.source, e.is_read_only)
}

fn topic_source(admin: &Admin, topic: &str, key: &str) -> (String, ConfigSource) {
    let results = futures_executor::block_on(
        admin.describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new()),
    )
    .unwrap();
    let e = take(results, key);
    (e.value.unwrap_or_default(), e.source)
}

/// AlterConfigs of broker 1 through librdkafka (which reports no per-resource error: the
/// describes after it check the outcome).
fn alter_broker(admin: &Admin, pairs: &[(&str, &str)]) {
    let mut change = AlterConfig::new(ResourceSpecifier::Broker(1));
    for (k, v) in pairs {
        change = change.set(k, v);
    }
    futures_executor::block_on(admin.alter_configs([&change], &AdminOptions::new())).unwrap();
}

/// AlterConfigs v2 of broker 1.
fn alter_raw(s: &mut TcpStream, pairs: &[(&str, &str)]) -> (i16, String) {
    use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let mut resource = AlterConfigsResource::default();
    resource.resource_type = BROKER;
    resource.resource_name = StrBytes::from_static_str("1");
    for (k, v) in pairs {
        let mut c = AlterableConfig::default();
        c.name = StrBytes::from_string(k.to_string());
        c.value = Some(StrBytes::from_string(v.to_string()));
        resource.configs.push(c);
    }
    let mut req = AlterConfigsRequest::default();
    req.resources.push(resource);
    let resp: AlterConfigsResponse = roundtrip(s, ApiKey::AlterConfigs, 2, &req);
    let r = &resp.responses[0];
    (
        r.error_code,
        r.error_message.as_deref().unwrap_or("").to_string(),
    )
}

/// IncrementalAlterConfigs SET (op 0) / DELETE (op 1) on broker resource `name`.
fn incremental(s: &mut TcpStream, name: &str, ops: &[(&str, i8, &str)]) -> (i16, String) {
    incremental_alter(s, BROKER, name, ops, false)
}

/// DescribeConfigs v4 of broker resource `name`: (key, value, source, type, read-only).
fn describe_raw(s: &mut TcpStream, name: &str) -> Vec<(String, Option<String>, i8, i8, bool)> {
    let mut resource = DescribeConfigsResource::default();
    resource.resource_type = BROKER;
    resource.resource_name = StrBytes::from_string(name.to_string());
    resource.configuration_keys = None;
    let mut req = DescribeConfigsRequest::default();
    req.resources.push(resource);
    let resp: DescribeConfigsResponse = roundtrip(s, ApiKey::DescribeConfigs, 4, &req);
    assert_eq!(resp.results[0].error_code, 0, "{:?}", resp.results[0]);
    resp.results[0]
        .configs
        .iter()
        .map(|c| {
            let value = c.value.as_ref().map(|v| v.to_string());
            (
                c.name.to_string(),
                value,
                c.config_source,
                c.config_type,
                c.read_only,
            )
        })
        .collect()
}

#[test]
fn broker_keys_are_described_with_kafkas_types_and_sources() {
    let broker = Broker::start_temp(&["log.retention.hours=24"]);
    let mut s = raw_connect(&broker);
    let rows = describe_raw(&mut s, "1");
    let row = |k: &str| {
        rows.iter()
            .find(|r| r.0 == k)
            .unwrap_or_else(|| panic!("{k} not described"))
            .clone()
    };
    // (value, source, type, read-only); types: 1 BOOLEAN, 2 STRING, 3 INT, 4 SHORT, 5 LONG.
    let auto = row("auto.create.topics.enable");
    assert_eq!(
        (auto.1.as_deref(), auto.2, auto.3, auto.4),
        (Some("true"), 5, 1, true)
    );
    let advertised = row("advertised.listeners");
    assert_eq!((advertised.1, advertised.2, advertised.3), (None, 5, 2));
    let hours = row("log.retention.hours");
    assert_eq!(
        (hours.1.as_deref(), hours.2, hours.3, hours.4),
        (Some("24"), 4, 3, false)
    );
    assert_eq!(row("log.retention.ms").1, None, "unset, as Kafka shows it");
    assert_eq!(row("offsets.topic.replication.factor").3, 4);
    assert_eq!(row("log.flush.interval.messages").3, 5);
    assert!(row("num.partitions").4 && row("listeners").4 && row("log.dirs").4);
    // The cluster default lists only what is set there: nothing yet.
    assert_eq!(describe_raw(&mut s, ""), []);
}

#[test]
fn alter_broker_configs_apply_at_once_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), &["num.shards=2", "log.segment.bytes=1048576"]);
    let admin = admin(&broker);
    let topics: Vec<NewTopic> = ["seg-a", "seg-b"]
        .iter()
        .map(|t| NewTopic::new(t, 1, TopicReplication::Fixed(1)))
        .collect();
    for r in futures_executor::block_on(admin.create_topics(&topics, &AdminOptions::new())).unwrap()
    {
        r.unwrap();
    }
    assert_eq!(
        describe_broker(&admin, "log.segment.bytes"),
        (Some("1048576".into()), ConfigSource::StaticBroker, false)
    );

    // This broker's level: applies to the partitions that exist now, on both shards.
    alter_broker(&admin, &[("log.segment.bytes", "1024")]);
    assert_eq!(
        describe_broker(&admin, "log.segment.bytes"),
        (Some("1024".into()), ConfigSource::DynamicBroker, false)
    );
    assert_eq!(
        topic_source(&admin, "seg-a", "segment.bytes"),
        ("1024".into(), ConfigSource::DynamicBroker)
    );
    produce(&broker, "seg-a", 20);
    produce(&broker, "seg-b", 20);
    assert!(
        segment_files(&broker.dir, "seg-a-0") > 3,
        "rolled at 1024 bytes"
    );
    assert!(
        segment_files(&broker.dir, "seg-b-0") > 3,
        "rolled at 1024 bytes"
    );

    // Kafka's refusals (the rdkafka crate drops per-resource AlterConfigs errors: raw).
    let mut s = raw_connect(&broker);
    assert_eq!(
        alter_raw(&mut s, &[("num.partitions", "3")]).0,
        INVALID_REQUEST
    );
    let (code, message) = alter_raw(&mut s, &[("log.segment.bytes", "12")]);
    assert_eq!(code, INVALID_REQUEST);
    assert!(message.contains("log.segment.bytes"), "{message}");
    assert_eq!(
        alter_raw(&mut s, &[("listeners", "PLAINTEXT://:0")]).0,
        INVALID_REQUEST
    );
    let (code, message) = incremental(&mut s, "1", &[("num.partitions", 0, "3")]);
    assert_eq!(code, INVALID_REQUEST);
    assert_eq!(
        message,
        "Cannot update these configs dynamically: Set(num.partitions)"
    );
    assert_eq!(
        incremental(&mut s, "1", &[("no.such.key", 0, "1")]).0,
        INVALID_CONFIG
    );
    assert_eq!(
        incremental(&mut s, "2", &[("log.retention.ms", 0, "1")]).0,
        INVALID_REQUEST
    );

    // The cluster default ("") is below this broker's level.
    let set_default = [
        ("log.segment.bytes", 0, "4096"),
        ("log.retention.ms", 0, "86400000"),
    ];
    assert_eq!(incremental(&mut s, "", &set_default).0, 0);
    let defaults = describe_raw(&mut s, "");
    assert_eq!(defaults.len(), 2, "{defaults:?}");
    assert!(defaults.iter().all(|r| r.2 == 3 && !r.4));
    assert_eq!(
        describe_broker(&admin, "log.retention.ms"),
        (
            Some("86400000".into()),
            ConfigSource::DynamicDefaultBroker,
            false
        )
    );
    assert_eq!(
        describe_broker(&admin, "log.segment.bytes").1,
        ConfigSource::DynamicBroker
    );
    // AlterConfigs replaces this broker's set: log.segment.bytes falls back to the default's.
    alter_broker(&admin, &[("log.flush.interval.messages", "1")]);
    assert_eq!(
        describe_broker(&admin, "log.segment.bytes"),
        (
            Some("4096".into()),
            ConfigSource::DynamicDefaultBroker,
            false
        )
    );

    broker.terminate();
    let broker = Broker::start(dir.path(), &["num.shards=2", "log.segment.bytes=1048576"]);
    let admin = self::admin(&broker);
    assert_eq!(
        describe_broker(&admin, "log.segment.bytes"),
        (
            Some("4096".into()),
            ConfigSource::DynamicDefaultBroker,
            false
        )
    );
    assert_eq!(
        describe_broker(&admin, "log.flush.interval.messages"),
        (Some("1".into()), ConfigSource::DynamicBroker, false)
    );
    assert_eq!(
        topic_source(&admin, "seg-b", "retention.ms"),
        ("86400000".into(), ConfigSource::DynamicDefaultBroker)
    );
}
