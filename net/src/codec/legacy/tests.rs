//! Each old layout written out field by field from Kafka 3.9's schemas, against our decoder
//! and encoder.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::*;

fn s(out: &mut BytesMut, v: &str) {
    out.put_i16(v.len() as i16);
    out.put_slice(v.as_bytes());
}

fn decoded(api_key: ApiKey, version: i16, body: BytesMut) -> RequestKind {
    let mut body = body.freeze();
    let kind = decode(api_key, version, &mut body).unwrap();
    assert!(
        body.is_empty(),
        "{api_key:?} v{version}: {} bytes left",
        body.len()
    );
    kind
}

fn encoded(version: i16, body: &ResponseKind) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(version, body, &mut out).unwrap();
    out.to_vec()
}

#[test]
fn offset_commit_v0_and_v1() {
    let mut v0 = BytesMut::new();
    s(&mut v0, "g");
    v0.put_i32(1); // topics
    s(&mut v0, "t");
    v0.put_i32(1); // partitions
    v0.put_i32(3);
    v0.put_i64(42);
    s(&mut v0, "meta");
    let RequestKind::OffsetCommit(r) = decoded(ApiKey::OffsetCommit, 0, v0) else {
        unreachable!()
    };
    assert_eq!(r.group_id.0.as_str(), "g");
    assert_eq!(r.generation_id_or_member_epoch, -1);
    let p = &r.topics[0].partitions[0];
    assert_eq!((r.topics[0].name.0.as_str(), p.partition_index), ("t", 3));
    assert_eq!(
        (p.committed_offset, p.committed_metadata.as_deref()),
        (42, Some("meta"))
    );

    let mut v1 = BytesMut::new();
    s(&mut v1, "g");
    v1.put_i32(5); // generation
    s(&mut v1, "member-1");
    v1.put_i32(1);
    s(&mut v1, "t");
    v1.put_i32(2);
    for (index, offset) in [(0, 7i64), (1, 9)] {
        v1.put_i32(index);
        v1.put_i64(offset);
        v1.put_i64(-1); // commit_timestamp
        v1.put_i16(-1); // null metadata
    }
    let RequestKind::OffsetCommit(r) = decoded(ApiKey::OffsetCommit, 1, v1) else {
        unreachable!()
    };
    assert_eq!(r.generation_id_or_member_epoch, 5);
    assert_eq!(r.member_id.as_str(), "member-1");
    let offsets: Vec<_> = r.topics[0]
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                p.committed_offset,
                p.committed_metadata.clone(),
            )
        })
        .collect();
    assert_eq!(offsets, [(0, 7, None), (1, 9, None)]);

    let mut resp = OffsetCommitResponse::default();
    let mut t = OffsetCommitResponseTopic::default();
    t.name = TopicName(StrBytes::from_static_str("t"));
    t.partitions
        .push(OffsetCommitResponsePartition::default().with_error_code(25));
    resp.topics.push(t);
    let mut want = BytesMut::new();
    want.put_i32(1);
    s(&mut want, "t");
    want.put_i32(1);
    want.put_i32(0);
    want.put_i16(25);
    for version in [0, 1] {
        assert_eq!(
            encoded(version, &ResponseKind::OffsetCommit(resp.clone())),
            want.to_vec()
        );
    }
}

#[test]
fn offset_fetch_v0() {
    let mut v0 = BytesMut::new();
    s(&mut v0, "g");
    v0.put_i32(1);
    s(&mut v0, "t");
    v0.put_i32(2);
    v0.put_i32(0);
    v0.put_i32(1);
    let RequestKind::OffsetFetch(r) = decoded(ApiKey::OffsetFetch, 0, v0) else {
        unreachable!()
    };
    let topics = r.topics.unwrap();
    assert_eq!(topics[0].partition_indexes, [0, 1]);

    let mut resp = OffsetFetchResponse::default();
    let mut t = OffsetFetchResponseTopic::default();
    t.name = TopicName(StrBytes::from_static_str("t"));
    let mut p = OffsetFetchResponsePartition::default();
    p.committed_offset = 11;
    p.metadata = Some(StrBytes::from_static_str(""));
    t.partitions.push(p);
    resp.topics.push(t);
    let mut want = BytesMut::new();
    want.put_i32(1);
    s(&mut want, "t");
    want.put_i32(1);
    want.put_i32(0); // partition
    want.put_i64(11);
    s(&mut want, ""); // metadata
    want.put_i16(0); // error
    assert_eq!(encoded(0, &ResponseKind::OffsetFetch(resp)), want.to_vec());
}

#[test]
fn create_topics_v0_and_v1() {
    let topic = |out: &mut BytesMut| {
        out.put_i32(1);
        s(out, "new");
        out.put_i32(3); // partitions
        out.put_i16(1); // replication factor
        out.put_i32(0); // assignments
        out.put_i32(1); // configs
        s(out, "retention.ms");
        s(out, "1000");
    };
    let mut v0 = BytesMut::new();
    topic(&mut v0);
    v0.put_i32(5000);
    let RequestKind::CreateTopics(r) = decoded(ApiKey::CreateTopics, 0, v0) else {
        unreachable!()
    };
    assert_eq!((r.timeout_ms, r.validate_only), (5000, false));
    assert_eq!(r.topics[0].num_partitions, 3);
    assert_eq!(r.topics[0].configs[0].value.as_deref(), Some("1000"));
    let mut v1 = BytesMut::new();
    topic(&mut v1);
    v1.put_i32(5000);
    v1.put_u8(1);
    let RequestKind::CreateTopics(r) = decoded(ApiKey::CreateTopics, 1, v1) else {
        unreachable!()
    };
    assert!(r.validate_only);

    let mut resp = CreateTopicsResponse::default();
    let mut t = CreatableTopicResult::default();
    t.name = TopicName(StrBytes::from_static_str("new"));
    t.error_code = 36;
    t.error_message = Some(StrBytes::from_static_str("exists"));
    resp.topics.push(t);
    let mut want0 = BytesMut::new();
    want0.put_i32(1);
    s(&mut want0, "new");
    want0.put_i16(36);
    assert_eq!(
        encoded(0, &ResponseKind::CreateTopics(resp.clone())),
        want0.to_vec()
    );
    let mut want1 = want0.clone();
    s(&mut want1, "exists");
    assert_eq!(
        encoded(1, &ResponseKind::CreateTopics(resp)),
        want1.to_vec()
    );
}

#[test]
fn delete_topics_v0() {
    let mut v0 = BytesMut::new();
    v0.put_i32(1);
    s(&mut v0, "gone");
    v0.put_i32(3000);
    let RequestKind::DeleteTopics(r) = decoded(ApiKey::DeleteTopics, 0, v0) else {
        unreachable!()
    };
    assert_eq!(r.topic_names[0].0.as_str(), "gone");
    assert_eq!(r.timeout_ms, 3000);

    let mut resp = DeleteTopicsResponse::default();
    resp.throttle_time_ms = 9;
    let mut t = DeletableTopicResult::default();
    t.name = Some(TopicName(StrBytes::from_static_str("gone")));
    t.error_code = 3;
    resp.responses.push(t);
    let mut want = BytesMut::new();
    want.put_i32(1);
    s(&mut want, "gone");
    want.put_i16(3);
    assert_eq!(encoded(0, &ResponseKind::DeleteTopics(resp)), want.to_vec());
}

#[test]
fn describe_configs_v0() {
    let mut v0 = BytesMut::new();
    v0.put_i32(1);
    v0.put_i8(2);
    s(&mut v0, "t");
    v0.put_i32(-1); // all keys
    let RequestKind::DescribeConfigs(r) = decoded(ApiKey::DescribeConfigs, 0, v0) else {
        unreachable!()
    };
    assert_eq!(r.resources[0].resource_type, 2);
    assert!(r.resources[0].configuration_keys.is_none());
    assert!(!r.include_synonyms);

    let mut result = DescribeConfigsResult::default();
    result.resource_type = 2;
    result.resource_name = StrBytes::from_static_str("t");
    result.error_message = None;
    for (name, source) in [("retention.ms", 1), ("segment.bytes", 5)] {
        let mut c = DescribeConfigsResourceResult::default();
        c.name = StrBytes::from_static_str(name);
        c.value = Some(StrBytes::from_static_str("1"));
        c.config_source = source;
        result.configs.push(c);
    }
    let mut resp = DescribeConfigsResponse::default();
    resp.results.push(result);
    let mut want = BytesMut::new();
    want.put_i32(0); // throttle
    want.put_i32(1);
    want.put_i16(0);
    want.put_i16(-1); // null error message
    want.put_i8(2);
    s(&mut want, "t");
    want.put_i32(2);
    for (name, is_default) in [("retention.ms", 0u8), ("segment.bytes", 1)] {
        s(&mut want, name);
        s(&mut want, "1");
        want.put_u8(0); // read_only
        want.put_u8(is_default);
        want.put_u8(0); // is_sensitive
    }
    assert_eq!(
        encoded(0, &ResponseKind::DescribeConfigs(resp)),
        want.to_vec()
    );
}

#[test]
fn short_and_hostile_bodies_fail_cleanly() {
    for api_key in [
        ApiKey::ListOffsets,
        ApiKey::OffsetCommit,
        ApiKey::OffsetFetch,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::DescribeConfigs,
    ] {
        for version in min_version(api_key).unwrap()..api_key.valid_versions().min {
            assert!(is_legacy(api_key, version));
            for body in [&[][..], &[0, 1, b'g', 0x7f, 0xff, 0xff, 0xff][..]] {
                let mut b = Bytes::copy_from_slice(body);
                assert!(
                    decode(api_key, version, &mut b).is_err(),
                    "{api_key:?} v{version}"
                );
            }
        }
        assert!(!is_legacy(api_key, api_key.valid_versions().min));
    }
}

#[test]
fn list_offsets_v0() {
    let mut v0 = BytesMut::new();
    v0.put_i32(-1); // replica id
    v0.put_i32(1);
    s(&mut v0, "t");
    v0.put_i32(1);
    v0.put_i32(2); // partition
    v0.put_i64(-1); // latest
    v0.put_i32(5); // max_num_offsets
    let RequestKind::ListOffsets(r) = decoded(ApiKey::ListOffsets, 0, v0) else {
        unreachable!()
    };
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.partition_index, p.timestamp), (2, -1));
    assert_eq!(list_offsets::max_num_offsets(p), Some(5));

    let mut resp = ListOffsetsResponse::default();
    let mut t =
        kafka_protocol::messages::list_offsets_response::ListOffsetsTopicResponse::default();
    t.name = TopicName(StrBytes::from_static_str("t"));
    let mut part =
        kafka_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse::default();
    part.partition_index = 2;
    list_offsets::set_old_style_offsets(&mut part, &[42, 0]);
    t.partitions.push(part);
    resp.topics.push(t);
    let mut want = BytesMut::new();
    want.put_i32(1);
    s(&mut want, "t");
    want.put_i32(1);
    want.put_i32(2);
    want.put_i16(0);
    want.put_i32(2);
    want.put_i64(42);
    want.put_i64(0);
    assert_eq!(encoded(0, &ResponseKind::ListOffsets(resp)), want.to_vec());
}
