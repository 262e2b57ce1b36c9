//! Request fields the rdkafka crate does not expose, over a raw connection encoded with
//! kafka-protocol: Metadata's and DescribeGroups' authorized operations.

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::{roundtrip, Broker};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, DescribeGroupsRequest, DescribeGroupsResponse, GroupId, MetadataRequest,
    MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

/// Kafka's bitfields without an authorizer (AclOperation codes READ 3 … ALTER_CONFIGS 11,
/// IDEMPOTENT_WRITE 12; AclEntry.supportedOperations per resource type).
const TOPIC_OPERATIONS: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
const CLUSTER_OPERATIONS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11);
const NOT_REQUESTED: i32 = i32::MIN;

fn connect(broker: &Broker) -> TcpStream {
    let s = TcpStream::connect(broker.bootstrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

fn metadata(s: &mut TcpStream, version: i16, include: bool, topics: &[&str]) -> MetadataResponse {
    let mut req = metadata_request(topics, include);
    req.include_cluster_authorized_operations = include && version <= 10;
    roundtrip(s, ApiKey::Metadata, version, &req)
}

fn metadata_request(topics: &[&str], include: bool) -> MetadataRequest {
    let mut req = MetadataRequest::default();
    req.topics = Some(
        topics
            .iter()
            .map(|t| {
                let mut r = MetadataRequestTopic::default();
                r.name = Some(TopicName(StrBytes::from_string(t.to_string())));
                r
            })
            .collect(),
    );
    req.allow_auto_topic_creation = false;
    req.include_topic_authorized_operations = include;
    req
}

#[test]
fn metadata_authorized_operations() {
    let broker = Broker::start_temp(&[]);
    let mut s = connect(&broker);
    // Auto-created by a first request that does not ask for operations.
    let mut create = metadata_request(&["known"], false);
    create.allow_auto_topic_creation = true;
    let created: MetadataResponse = roundtrip(&mut s, ApiKey::Metadata, 12, &create);
    assert_eq!(created.topics[0].error_code, 0);
    for version in [8, 10, 11, 12] {
        let asked = metadata(&mut s, version, true, &["known", "missing"]);
        let cluster = if version <= 10 {
            CLUSTER_OPERATIONS
        } else {
            NOT_REQUESTED
        };
        assert_eq!(asked.cluster_authorized_operations, cluster, "v{version}");
        let ops: Vec<(i16, i32)> = asked
            .topics
            .iter()
            .map(|t| (t.error_code, t.topic_authorized_operations))
            .collect();
        assert_eq!(
            ops,
            [(0, TOPIC_OPERATIONS), (3, TOPIC_OPERATIONS)],
            "v{version}: a known topic and an unknown one (UNKNOWN_TOPIC_OR_PARTITION)"
        );
        let plain = metadata(&mut s, version, false, &["known"]);
        assert_eq!(plain.cluster_authorized_operations, NOT_REQUESTED);
        assert_eq!(plain.topics[0].topic_authorized_operations, NOT_REQUESTED);
    }
}

#[test]
fn describe_groups_authorized_operations() {
    let broker = Broker::start_temp(&[]);
    let mut s = connect(&broker);
    for (include, expected) in [(true, GROUP_OPERATIONS), (false, NOT_REQUESTED)] {
        let mut req = DescribeGroupsRequest::default();
        req.groups = vec![GroupId(StrBytes::from_static_str("nobody"))];
        req.include_authorized_operations = include;
        let resp = describe_when_loaded(&mut s, &req);
        // An unknown group is described as Dead without error (Kafka's answer).
        assert_eq!(resp.groups[0].group_state.as_str(), "Dead");
        assert_eq!(resp.groups[0].authorized_operations, expected);
    }
}

/// DescribeGroups, asked again while the coordinator is still loading (bounded: 30 s).
fn describe_when_loaded(s: &mut TcpStream, req: &DescribeGroupsRequest) -> DescribeGroupsResponse {
    for _ in 0..300 {
        let resp: DescribeGroupsResponse = roundtrip(s, ApiKey::DescribeGroups, 5, req);
        if resp.groups[0].error_code == 0 {
            return resp;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the group coordinator did not load within 30 s");
}
