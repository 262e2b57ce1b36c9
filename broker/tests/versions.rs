//! The newest versions Kafka 4.1 advertises, driven over a raw connection with
//! kafka-protocol's encoders: Produce v13 and Fetch v18 by topic id, ListOffsets v10
//! (latest tiered: none), Metadata v13, DescribeGroups v6 (GROUP_ID_NOT_FOUND),
//! FindCoordinator v6, ListConfigResources v0–v1, and ApiVersions naming them.

mod common;

/// Rounds of 100 ms to wait for the group coordinator to load (a bound, not a verdict).
const COORDINATOR_WAIT_ROUNDS: u32 = 600;

use std::net::TcpStream;

use common::{raw_connect, roundtrip, Broker};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use sluice_engine::testing::build_batch;

const UNKNOWN_TOPIC_ID: i16 = 100;
const GROUP_ID_NOT_FOUND: i16 = 69;
const UNSUPPORTED_VERSION: i16 = 35;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn create_topic(s: &mut TcpStream, topic: &str) {
    let mut t = CreatableTopic::default();
    t.name = name(topic);
    t.num_partitions = 1;
    t.replication_factor = 1;
    let mut req = CreateTopicsRequest::default();
    req.topics.push(t);
    req.timeout_ms = 10_000;
    let resp: CreateTopicsResponse = roundtrip(s, ApiKey::CreateTopics, 7, &req);
    assert_eq!(resp.topics[0].error_code, 0, "{:?}", resp.topics[0]);
}

fn topic_id(s: &mut TcpStream, topic: &str) -> uuid::Uuid {
    let mut req = MetadataRequest::default();
    req.topics = Some(vec![
        MetadataRequestTopic::default().with_name(Some(name(topic)))
    ]);
    let resp: MetadataResponse = roundtrip(s, ApiKey::Metadata, 13, &req);
    assert_eq!(resp.error_code, 0);
    assert_eq!(resp.topics[0].error_code, 0);
    assert!(!resp.topics[0].topic_id.is_nil());
    resp.topics[0].topic_id
}

/// Produce v13 of one batch to partition 0 of the topic with `id`: (error, base offset).
fn produce_v13(s: &mut TcpStream, id: uuid::Uuid, records: usize) -> (i16, i64) {
    let values: Vec<Vec<u8>> = (0..records).map(|i| format!("v{i}").into_bytes()).collect();
    let batch: Vec<_> = values.iter().map(|v| (None, Some(&v[..]), 1000)).collect();
    let mut p = PartitionProduceData::default();
    p.index = 0;
    p.records = Some(build_batch(&batch));
    let mut t = TopicProduceData::default();
    t.topic_id = id;
    t.partition_data.push(p);
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 10_000;
    req.topic_data.push(t);
    let resp: ProduceResponse = roundtrip(s, ApiKey::Produce, 13, &req);
    assert_eq!(resp.responses[0].topic_id, id);
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn list_offset(s: &mut TcpStream, topic: &str, timestamp: i64) -> (i16, i64) {
    let mut p = ListOffsetsPartition::default();
    p.partition_index = 0;
    p.timestamp = timestamp;
    let mut t = ListOffsetsTopic::default();
    t.name = name(topic);
    t.partitions.push(p);
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(-1);
    req.topics.push(t);
    req.timeout_ms = 1000;
    let resp: ListOffsetsResponse = roundtrip(s, ApiKey::ListOffsets, 10, &req);
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.offset)
}

#[test]
fn produce_13_and_fetch_18_by_topic_id() {
    let broker = Broker::start_temp(&[]);
    let mut s = raw_connect(&broker);
    create_topic(&mut s, "ids");
    let id = topic_id(&mut s, "ids");
    assert_eq!(produce_v13(&mut s, id, 3), (0, 0));
    assert_eq!(produce_v13(&mut s, id, 2), (0, 3));
    let unknown = uuid::Uuid::from_u128(0xdead_beef);
    assert_eq!(produce_v13(&mut s, unknown, 1).0, UNKNOWN_TOPIC_ID);

    let mut p = FetchPartition::default();
    p.partition = 0;
    p.fetch_offset = 0;
    p.partition_max_bytes = 1 << 20;
    let mut t = FetchTopic::default();
    t.topic_id = id;
    t.partitions.push(p);
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(-1);
    req.max_bytes = 1 << 20;
    req.topics.push(t);
    for version in [17, 18] {
        let resp: FetchResponse = roundtrip(&mut s, ApiKey::Fetch, version, &req);
        let part = &resp.responses[0].partitions[0];
        assert_eq!(resp.responses[0].topic_id, id);
        assert_eq!((part.error_code, part.high_watermark), (0, 5), "v{version}");
        let records = part.records.as_ref().expect("records");
        // Two batches: their headers' base offsets are 0 and 3.
        assert_eq!(&records[..8], &0i64.to_be_bytes());
        assert!(records.len() > 2 * 61);
    }

    assert_eq!(list_offset(&mut s, "ids", -1), (0, 5));
    assert_eq!(list_offset(&mut s, "ids", -2), (0, 0));
    // Latest tiered offset (KIP-1005): no tiered storage, so none, and no error (as Kafka).
    assert_eq!(list_offset(&mut s, "ids", -5), (0, -1));
}

#[test]
fn describe_groups_6_find_coordinator_6_and_list_config_resources() {
    let broker = Broker::start_temp(&[]);
    let mut s = raw_connect(&broker);
    create_topic(&mut s, "listed");

    let mut req = FindCoordinatorRequest::default();
    req.key_type = 0;
    req.coordinator_keys = vec![StrBytes::from_static_str("g")];
    let mut coordinator = -1;
    for _ in 0..COORDINATOR_WAIT_ROUNDS {
        let resp: FindCoordinatorResponse = roundtrip(&mut s, ApiKey::FindCoordinator, 6, &req);
        if resp.coordinators[0].error_code == 0 {
            coordinator = resp.coordinators[0].node_id.0;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(coordinator, 1);

    let req = DescribeGroupsRequest::default()
        .with_groups(vec![GroupId(StrBytes::from_static_str("nobody"))]);
    let v5: DescribeGroupsResponse = roundtrip(&mut s, ApiKey::DescribeGroups, 5, &req);
    assert_eq!(
        (v5.groups[0].error_code, v5.groups[0].group_state.as_str()),
        (0, "Dead")
    );
    let v6: DescribeGroupsResponse = roundtrip(&mut s, ApiKey::DescribeGroups, 6, &req);
    assert_eq!(v6.groups[0].error_code, GROUP_ID_NOT_FOUND);
    assert_eq!(
        v6.groups[0].error_message.as_deref(),
        Some("Group nobody not found.")
    );

    let list = |s: &mut TcpStream, version: i16, types: Vec<i8>| {
        let req = ListConfigResourcesRequest::default().with_resource_types(types);
        let resp: ListConfigResourcesResponse =
            roundtrip(s, ApiKey::ListConfigResources, version, &req);
        let names: Vec<(i8, String)> = resp
            .config_resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.to_string()))
            .collect();
        (resp.error_code, names)
    };
    let (error, all) = list(&mut s, 1, vec![]);
    assert_eq!(error, 0);
    assert!(all.contains(&(2, "listed".into())), "{all:?}");
    assert!(all.contains(&(4, "1".into())), "{all:?}");
    let (_, topics) = list(&mut s, 1, vec![2]);
    assert!(topics.iter().all(|(t, _)| *t == 2) && topics.contains(&(2, "listed".into())));
    assert_eq!(list(&mut s, 1, vec![16, 32]), (0, vec![]));
    assert_eq!(list(&mut s, 1, vec![64]).0, UNSUPPORTED_VERSION);
    // v0 (ListClientMetricsResources): no client-metrics subscriptions here.
    assert_eq!(list(&mut s, 0, vec![]), (0, vec![]));
}

#[test]
fn api_versions_names_kafka_4_1_versions() {
    let broker = Broker::start_temp(&[]);
    let mut s = raw_connect(&broker);
    let resp: ApiVersionsResponse = roundtrip(
        &mut s,
        ApiKey::ApiVersions,
        4,
        &ApiVersionsRequest::default(),
    );
    let max = |key: ApiKey| {
        resp.api_keys
            .iter()
            .find(|k| k.api_key == key as i16)
            .map(|k| k.max_version)
    };
    // kafka-python 3 infers 4.1 from Produce v13, 4.0 from ListOffsets v10, 3.9 from Fetch v17.
    assert_eq!(max(ApiKey::Produce), Some(13));
    assert_eq!(max(ApiKey::ListOffsets), Some(10));
    assert_eq!(max(ApiKey::Fetch), Some(18));
    assert_eq!(max(ApiKey::Metadata), Some(13));
    assert_eq!(max(ApiKey::ListConfigResources), Some(1));
    assert_eq!(max(ApiKey::OffsetForLeaderEpoch), Some(4));
}
