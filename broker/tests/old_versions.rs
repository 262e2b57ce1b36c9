//! Versions Kafka 4 removed (KIP-896), sent as old clients send them: each request written
//! out field by field from Kafka 3.9's schemas over a raw connection, each answer read the
//! same way. OffsetCommit v1 is what Debian's sarama sends.

mod common;

/// Rounds of 100 ms to wait for the group coordinator to load (a bound, not a verdict).
const COORDINATOR_WAIT_ROUNDS: u32 = 600;

use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::{produce, raw_connect, roundtrip, Broker};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{ApiKey, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

/// Header v1 (api key, version, correlation id, client id), then `body`; the answer's body
/// after its v0 header.
fn call(s: &mut TcpStream, key: ApiKey, version: i16, body: &[u8]) -> Bytes {
    let mut frame = BytesMut::new();
    frame.put_i16(key as i16);
    frame.put_i16(version);
    frame.put_i32(9);
    put_str(&mut frame, "old-client");
    frame.put_slice(body);
    let mut out = (frame.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&frame);
    s.write_all(&out).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len)
        .unwrap_or_else(|e| panic!("{key:?} v{version} not answered: {e}"));
    let mut answer = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut answer).unwrap();
    let mut answer = Bytes::from(answer);
    assert_eq!(answer.get_i32(), 9, "correlation id");
    answer
}

fn put_str(out: &mut BytesMut, s: &str) {
    out.put_i16(s.len() as i16);
    out.put_slice(s.as_bytes());
}

fn get_str(b: &mut Bytes) -> Option<String> {
    let len = b.get_i16();
    (len >= 0).then(|| String::from_utf8(b.split_to(len as usize).to_vec()).unwrap())
}

/// CreateTopics v0/v1 of one topic; the answer's (name, error code, error message).
fn create_topic(s: &mut TcpStream, version: i16, name: &str) -> (String, i16, Option<String>) {
    let mut body = BytesMut::new();
    body.put_i32(1);
    put_str(&mut body, name);
    body.put_i32(2); // partitions
    body.put_i16(1); // replication factor
    body.put_i32(0); // no assignments
    body.put_i32(0); // no configs
    body.put_i32(10_000); // timeout
    if version >= 1 {
        body.put_u8(0); // validate_only
    }
    let mut a = call(s, ApiKey::CreateTopics, version, &body);
    assert_eq!(a.get_i32(), 1);
    let topic = get_str(&mut a).unwrap();
    let error = a.get_i16();
    let message = if version >= 1 { get_str(&mut a) } else { None };
    assert!(a.is_empty());
    (topic, error, message)
}

/// OffsetCommit v0 (no generation) or v1 (generation -1, no member, a commit timestamp) of
/// `offset` on partition 0 of `topic`; the answer's error code.
fn commit(s: &mut TcpStream, version: i16, group: &str, topic: &str, offset: i64) -> i16 {
    let mut body = BytesMut::new();
    put_str(&mut body, group);
    if version == 1 {
        body.put_i32(-1);
        put_str(&mut body, "");
    }
    body.put_i32(1);
    put_str(&mut body, topic);
    body.put_i32(1);
    body.put_i32(0);
    body.put_i64(offset);
    if version == 1 {
        body.put_i64(-1); // commit timestamp: now
    }
    put_str(&mut body, &format!("from-v{version}"));
    let mut a = call(s, ApiKey::OffsetCommit, version, &body);
    assert_eq!(a.get_i32(), 1);
    assert_eq!(get_str(&mut a).as_deref(), Some(topic));
    assert_eq!(a.get_i32(), 1);
    assert_eq!(a.get_i32(), 0);
    a.get_i16()
}

/// OffsetFetch v0 of partition 0: (offset, metadata, error).
fn fetch_v0(s: &mut TcpStream, group: &str, topic: &str) -> (i64, Option<String>, i16) {
    let mut body = BytesMut::new();
    put_str(&mut body, group);
    body.put_i32(1);
    put_str(&mut body, topic);
    body.put_i32(1);
    body.put_i32(0);
    let mut a = call(s, ApiKey::OffsetFetch, 0, &body);
    assert_eq!(a.get_i32(), 1);
    assert_eq!(get_str(&mut a).as_deref(), Some(topic));
    assert_eq!(a.get_i32(), 1);
    assert_eq!(a.get_i32(), 0);
    (a.get_i64(), get_str(&mut a), a.get_i16())
}

/// Commits with v1 until the coordinator has loaded (bounded by count).
fn commit_when_ready(s: &mut TcpStream, group: &str, topic: &str, offset: i64) -> i16 {
    const COORDINATOR_LOADING: [i16; 2] = [14, 15];
    let mut error = -1;
    for _ in 0..COORDINATOR_WAIT_ROUNDS {
        error = commit(s, 1, group, topic, offset);
        if !COORDINATOR_LOADING.contains(&error) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    error
}

#[test]
fn offset_commit_v0_v1_and_offset_fetch_v0() {
    let broker = Broker::start_temp(&[]);
    let mut s = raw_connect(&broker);
    assert_eq!(create_topic(&mut s, 0, "old").1, 0);

    // sarama's commit: v1.
    assert_eq!(commit_when_ready(&mut s, "sarama", "old", 17), 0);
    assert_eq!(
        fetch_v0(&mut s, "sarama", "old"),
        (17, Some("from-v1".into()), 0)
    );
    // v0 commits into the same store; a current client (v8) reads it.
    assert_eq!(commit(&mut s, 0, "sarama", "old", 23), 0);
    let mut t = OffsetFetchRequestTopic::default();
    t.name = TopicName(StrBytes::from_static_str("old"));
    t.partition_indexes = vec![0];
    let mut req = OffsetFetchRequest::default();
    req.group_id = kafka_protocol::messages::GroupId(StrBytes::from_static_str("sarama"));
    req.topics = Some(vec![t]);
    let resp: OffsetFetchResponse = roundtrip(&mut s, ApiKey::OffsetFetch, 7, &req);
    assert_eq!(resp.topics[0].partitions[0].committed_offset, 23);
    // A group nobody committed for answers -1, as Kafka.
    assert_eq!(
        fetch_v0(&mut s, "nobody", "old"),
        (-1, Some(String::new()), 0)
    );
}

#[test]
fn create_delete_and_describe_with_old_versions() {
    let broker = Broker::start_temp(&[]);
    let mut s = raw_connect(&broker);
    assert_eq!(create_topic(&mut s, 0, "v0"), ("v0".into(), 0, None));
    assert_eq!(create_topic(&mut s, 1, "v1").1, 0);
    let (_, error, message) = create_topic(&mut s, 1, "v0");
    assert_eq!(error, 36, "TOPIC_ALREADY_EXISTS");
    assert!(message.unwrap().contains("v0"));

    // DescribeConfigs v0 of a topic: is_default where later versions have the source.
    let mut body = BytesMut::new();
    body.put_i32(1);
    body.put_i8(2);
    put_str(&mut body, "v1");
    body.put_i32(1);
    put_str(&mut body, "retention.ms");
    let mut a = call(&mut s, ApiKey::DescribeConfigs, 0, &body);
    assert_eq!(a.get_i32(), 0, "throttle time");
    assert_eq!(a.get_i32(), 1);
    assert_eq!(a.get_i16(), 0);
    let _message = get_str(&mut a);
    assert_eq!(a.get_i8(), 2);
    assert_eq!(get_str(&mut a).as_deref(), Some("v1"));
    assert_eq!(a.get_i32(), 1);
    assert_eq!(get_str(&mut a).as_deref(), Some("retention.ms"));
    assert_eq!(get_str(&mut a).as_deref(), Some("604800000"));
    let (read_only, is_default, sensitive) = (a.get_u8(), a.get_u8(), a.get_u8());
    assert_eq!((read_only, is_default, sensitive), (0, 1, 0));
    assert!(a.is_empty());

    // DeleteTopics v0: no throttle time in the answer.
    let mut body = BytesMut::new();
    body.put_i32(2);
    put_str(&mut body, "v0");
    put_str(&mut body, "missing");
    body.put_i32(10_000);
    let mut a = call(&mut s, ApiKey::DeleteTopics, 0, &body);
    assert_eq!(a.get_i32(), 2);
    let mut results = Vec::new();
    for _ in 0..2 {
        let name = get_str(&mut a).unwrap();
        results.push((name, a.get_i16()));
    }
    assert!(a.is_empty());
    results.sort();
    assert_eq!(results, [("missing".into(), 3), ("v0".into(), 0)]);

    // A current client sees the result: v1 is left.
    let req = kafka_protocol::messages::MetadataRequest::default();
    let meta: kafka_protocol::messages::MetadataResponse =
        roundtrip(&mut s, ApiKey::Metadata, 12, &req.with_topics(None));
    let names: Vec<_> = meta
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .filter(|n| !n.starts_with("__"))
        .collect();
    assert_eq!(names, ["v1"]);
}

/// ListOffsets v0 of `partition`: (error, old-style offsets).
fn list_offsets_v0(s: &mut TcpStream, partition: i32, timestamp: i64, max: i32) -> (i16, Vec<i64>) {
    let mut body = BytesMut::new();
    body.put_i32(-1);
    body.put_i32(1);
    put_str(&mut body, "listed");
    body.put_i32(1);
    body.put_i32(partition);
    body.put_i64(timestamp);
    body.put_i32(max);
    let mut a = call(s, ApiKey::ListOffsets, 0, &body);
    assert_eq!(a.get_i32(), 1);
    assert_eq!(get_str(&mut a).as_deref(), Some("listed"));
    assert_eq!(a.get_i32(), 1);
    assert_eq!(a.get_i32(), partition);
    let error = a.get_i16();
    let offsets = (0..a.get_i32()).map(|_| a.get_i64()).collect();
    assert!(a.is_empty());
    (error, offsets)
}

#[test]
fn list_offsets_v0_answers_segment_boundaries() {
    let broker = Broker::start_temp(&[]);
    let mut s = raw_connect(&broker);
    assert_eq!(create_topic(&mut s, 0, "listed").1, 0);
    // Before any record: the only segment's base offset.
    assert_eq!(list_offsets_v0(&mut s, 0, -1, 10), (0, vec![0]));
    produce(&broker, "listed", 7);
    // Partition 0 or 1 got the records; read both.
    let latest: Vec<_> = (0..2).map(|p| list_offsets_v0(&mut s, p, -1, 10)).collect();
    let total: i64 = latest.iter().map(|(_, o)| o[0]).sum();
    assert_eq!(total, 7, "{latest:?}");
    for (p, (error, offsets)) in latest.iter().enumerate() {
        assert_eq!(*error, 0);
        // A non-empty partition lists its log end, then its segment's base (newest first).
        let want = if offsets[0] > 0 {
            vec![offsets[0], 0]
        } else {
            vec![0]
        };
        assert_eq!(offsets, &want, "partition {p}");
        assert_eq!(list_offsets_v0(&mut s, p as i32, -1, 1).1, want[..1]);
        assert_eq!(list_offsets_v0(&mut s, p as i32, -2, 10).1, [0]);
        // Nothing was modified before the epoch.
        assert_eq!(
            list_offsets_v0(&mut s, p as i32, 0, 10).1,
            Vec::<i64>::new()
        );
    }
    assert_eq!(
        list_offsets_v0(&mut s, 9, -1, 1).0,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert_eq!(list_offsets_v0(&mut s, 0, -1, -1).0, 42, "INVALID_REQUEST");
}
