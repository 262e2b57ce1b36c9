//! ListOffsets v0 (Kafka 3.9's schema). Request: `replica_id i32, topics [name string,
//! partitions [partition_index i32, timestamp i64, max_num_offsets i32]]`. Answer (no throttle
//! time before v2): `topics [name string, partitions [partition_index i32, error_code i16,
//! old_style_offsets [i64]]]`.
//!
//! `max_num_offsets` and `old_style_offsets` have no field in `kafka-protocol`'s types: they
//! travel in those types' `unknown_tagged_fields` under [`LEGACY_FIELD_TAG`] (read and written
//! only through [`max_num_offsets`] and [`set_old_style_offsets`]). v0 is not a flexible
//! version, so no tagged field is ever written on the wire for it.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse;
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, ListOffsetsResponse, TopicName};

use super::{put_nullable_string, Reader};

/// The tag v0's extra fields travel under (never sent: v0 has no tagged fields).
pub const LEGACY_FIELD_TAG: i32 = i32::MAX;

/// A v0 partition's `max_num_offsets` (`None` for other versions).
pub fn max_num_offsets(p: &ListOffsetsPartition) -> Option<i32> {
    let raw = p.unknown_tagged_fields.get(&LEGACY_FIELD_TAG)?;
    Some(i32::from_be_bytes(raw.as_ref().try_into().ok()?))
}

/// Sets a v0 answer's `old_style_offsets`.
pub fn set_old_style_offsets(r: &mut ListOffsetsPartitionResponse, offsets: &[i64]) {
    let mut raw = BytesMut::with_capacity(offsets.len() * 8);
    for o in offsets {
        raw.put_i64(*o);
    }
    r.unknown_tagged_fields
        .insert(LEGACY_FIELD_TAG, raw.freeze());
}

pub fn decode(body: &mut Bytes) -> Result<ListOffsetsRequest, String> {
    let mut r = Reader(body);
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(r.i32("replica_id")?);
    req.topics = r.array("topics", |r| {
        let mut t = ListOffsetsTopic::default();
        t.name = TopicName(r.string("topic name")?);
        t.partitions = r.array("partitions", |r| {
            let mut p = ListOffsetsPartition::default();
            p.partition_index = r.i32("partition_index")?;
            p.timestamp = r.i64("timestamp")?;
            let max = r.i32("max_num_offsets")?;
            p.unknown_tagged_fields
                .insert(LEGACY_FIELD_TAG, Bytes::copy_from_slice(&max.to_be_bytes()));
            Ok(p)
        })?;
        Ok(t)
    })?;
    Ok(req)
}

pub fn encode(resp: &ListOffsetsResponse, out: &mut BytesMut) -> Result<(), String> {
    out.put_i32(resp.topics.len() as i32);
    for t in &resp.topics {
        put_nullable_string(out, Some(t.name.0.as_str()))?;
        out.put_i32(t.partitions.len() as i32);
        for p in &t.partitions {
            out.put_i32(p.partition_index);
            out.put_i16(p.error_code);
            let offsets = p
                .unknown_tagged_fields
                .get(&LEGACY_FIELD_TAG)
                .cloned()
                .unwrap_or_default();
            out.put_i32((offsets.len() / 8) as i32);
            out.put_slice(&offsets[..offsets.len() / 8 * 8]);
        }
    }
    Ok(())
}
