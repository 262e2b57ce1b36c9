//! Builders for tests (here and in other crates): valid magic v2 batches.

use bytes::{BufMut, Bytes, BytesMut};

use crate::batch::{
    BatchHeader, BATCH_CRC_START, BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES, MAGIC_V2,
};
use crate::compression::{compress, Compression, CompressionType};

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

/// `build_batch`'s records compressed with `codec`, as a client writes such a batch.
pub fn build_compressed_batch(records: &[TestRecord<'_>], codec: CompressionType) -> Bytes {
    let plain = build_batch(records);
    let header = BatchHeader::parse(&plain).expect("a whole batch");
    seal_batch(&header, &plain[BATCH_HEADER_BYTES..], codec)
}

/// A batch with `header`'s fields around `area` (uncompressed record bytes, whatever they
/// hold) compressed with `codec`: batchLength, the codec attribute and the CRC-32C are made
/// to match, so only the records can be wrong.
pub fn seal_batch(header: &BatchHeader, area: &[u8], codec: CompressionType) -> Bytes {
    let mut batch = vec![0u8; BATCH_HEADER_BYTES];
    compress(Compression::of(codec), area, &mut batch).expect("compressing into memory");
    let sealed = BatchHeader {
        batch_length: (batch.len() - BATCH_LOG_OVERHEAD_BYTES) as i32,
        attributes: header.attributes_with(codec.id(), header.is_log_append_time()),
        ..*header
    };
    sealed.write_sealed(&mut batch);
    Bytes::from(batch)
}

/// Appends one record (Kafka's record format) to `out`; `headers` as (key, value) pairs.
pub fn put_test_record(
    out: &mut BytesMut,
    (offset_delta, timestamp_delta): (i64, i64),
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(&[u8], Option<&[u8]>)],
) {
    let mut record = BytesMut::new();
    record.put_i8(0); // attributes
    put_varlong(&mut record, timestamp_delta);
    put_varlong(&mut record, offset_delta);
    put_bytes(&mut record, key);
    put_bytes(&mut record, value);
    put_varlong(&mut record, headers.len() as i64);
    for (k, v) in headers {
        put_bytes(&mut record, Some(k));
        put_bytes(&mut record, *v);
    }
    put_varlong(out, record.len() as i64);
    out.extend_from_slice(&record);
}

/// Appends `value` as a zigzag varint (Kafka's varint and varlong).
pub fn put_varlong(out: &mut BytesMut, value: i64) {
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    while raw >= 0x80 {
        out.put_u8((raw as u8 & 0x7f) | 0x80);
        raw >>= 7;
    }
    out.put_u8(raw as u8);
}

fn put_record(
    out: &mut BytesMut,
    offset_delta: i64,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    put_test_record(out, (offset_delta, timestamp_delta), key, value, &[]);
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
