//! IncrementalAlterConfigs (which the rdkafka crate does not expose) and DescribeConfigs v4
//! over a raw connection, encoded with kafka-protocol.

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::{incremental_alter, roundtrip, Broker};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

fn alter(s: &mut TcpStream, ops: &[(&str, i8, &str)], validate_only: bool) -> i16 {
    incremental_alter(s, 2, "raw", ops, validate_only).0
}

/// (value, source, type) of `key` for topic `raw`, asking for that key only.
fn describe(s: &mut TcpStream, key: &str) -> Vec<(String, i8, i8)> {
    let mut resource = DescribeConfigsResource::default();
    resource.resource_type = 2;
    resource.resource_name = StrBytes::from_static_str("raw");
    resource.configuration_keys = Some(vec![StrBytes::from_string(key.to_string())]);
    let mut req = DescribeConfigsRequest::default();
    req.resources.push(resource);
    let resp: DescribeConfigsResponse = roundtrip(s, ApiKey::DescribeConfigs, 4, &req);
    assert_eq!(resp.results[0].error_code, 0);
    resp.results[0]
        .configs
        .iter()
        .map(|c| {
            let value = c.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
            (value, c.config_source, c.config_type)
        })
        .collect()
}

#[test]
fn incremental_alter_configs_set_delete_append_and_validate_only() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    let topic = NewTopic::new("raw", 2, TopicReplication::Fixed(1));
    futures_executor::block_on(admin.create_topics([&topic], &AdminOptions::new())).unwrap()[0]
        .as_ref()
        .unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", broker.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();

    assert_eq!(alter(&mut s, &[("segment.ms", 0, "1000")], false), 0);
    assert_eq!(describe(&mut s, "segment.ms"), [("1000".into(), 1, 5)]);
    assert_eq!(alter(&mut s, &[("retention.ms", 2, "5")], false), 42);
    assert_eq!(
        alter(&mut s, &[("cleanup.policy", 2, "compact")], false),
        40
    );
    assert_eq!(alter(&mut s, &[("nope.ms", 0, "1")], false), 40);
    assert_eq!(alter(&mut s, &[("retention.bytes", 0, "4096")], true), 0);
    assert_eq!(describe(&mut s, "retention.bytes"), [("-1".into(), 5, 5)]);
    assert_eq!(alter(&mut s, &[("segment.ms", 1, "")], false), 0);
    assert_eq!(describe(&mut s, "segment.ms"), [("604800000".into(), 5, 5)]);
    assert!(dir.path().join("raw-1").join("topic.config").exists());
}
