//! Builders for tests (here and in other crates): valid magic v2 batches.

use bytes::{BufMut, Bytes, BytesMut};

use crate::batch::{BATCH_CRC_START, BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES, MAGIC_V2};

/// One record for [`build_batch`]: key, value, timestamp in ms.
pub type TestRecord<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, i64);

/// Builds a valid uncompressed magic v2 batch with `baseOffset` 0, no producer id
/// (-1/-1/-1), `partitionLeaderEpoch` -1, CreateTime timestamps (base = the first
/// record's), records encoded per Kafka's record format (zigzag varints, no headers).
pub fn build_batch(records: &[TestRecord<'_>]) -> Bytes {
    assert!(!records.is_empty(), "a batch holds at least one record");
    let base_timestamp = records[0].2;
    let max_timestamp = records.iter().map(|r| r.2).max().expect("non-empty");
    let mut body = BytesMut::new();
    for (delta, (key, value, timestamp)) in records.iter().enumerate() {
        put_record(
            &mut body,
            delta as i64,
            *timestamp - base_timestamp,
            *key,
            *value,
        );
    }
    let mut batch = BytesMut::with_capacity(BATCH_HEADER_BYTES + body.len());
    batch.put_i64(0); // baseOffset
    batch.put_i32((BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD_BYTES + body.len()) as i32);
    batch.put_i32(-1); // partitionLeaderEpoch
    batch.put_i8(MAGIC_V2);
    batch.put_u32(0); // crc, filled below
    batch.put_i16(0); // attributes
    batch.put_i32(records.len() as i32 - 1);
    batch.put_i64(base_timestamp);
    batch.put_i64(max_timestamp);
    batch.put_i64(-1); // producerId
    batch.put_i16(-1); // producerEpoch
    batch.put_i32(-1); // baseSequence
    batch.put_i32(records.len() as i32);
    assert_eq!(batch.len(), BATCH_HEADER_BYTES);
    batch.extend_from_slice(&body);
    let crc = crc32c::crc32c(&batch[BATCH_CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch.freeze()
}

fn put_record(
    out: &mut BytesMut,
    offset_delta: i64,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    let mut record = BytesMut::new();
    record.put_i8(0); // attributes
    put_varlong(&mut record, timestamp_delta);
    put_varlong(&mut record, offset_delta);
    put_bytes(&mut record, key);
    put_bytes(&mut record, value);
    put_varlong(&mut record, 0); // headers
    put_varlong(out, record.len() as i64);
    out.extend_from_slice(&record);
}

fn put_bytes(out: &mut BytesMut, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varlong(out, -1),
        Some(bytes) => {
            put_varlong(out, bytes.len() as i64);
            out.extend_from_slice(bytes);
        }
    }
}

fn put_varlong(out: &mut BytesMut, value: i64) {
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    while raw >= 0x80 {
        out.put_u8((raw as u8 & 0x7f) | 0x80);
        raw >>= 7;
    }
    out.put_u8(raw as u8);
}
