//! Kafka record batches (magic v2), built and read by the client.
//!
//! Layout of one batch (all integers big-endian; Kafka's `DefaultRecordBatch`):
//!
//! ```text
//! offset  size  field
//!      0     8  baseOffset            (assigned by the broker on append)
//!      8     4  batchLength           (bytes after this field)
//!     12     4  partitionLeaderEpoch  (assigned by the broker)
//!     16     1  magic                 (2)
//!     17     4  crc                   (CRC-32C of bytes 21..end)
//!     21     2  attributes            (compression, timestamp type, ...)
//!     23     4  lastOffsetDelta
//!     27     8  baseTimestamp
//!     35     8  maxTimestamp
//!     43     8  producerId            (-1: not idempotent)
//!     51     2  producerEpoch
//!     53     4  baseSequence
//!     57     4  records count
//!     61        records
//! ```
//!
//! Each record: `length` (varint), `attributes` (i8), `timestampDelta` (varlong),
//! `offsetDelta` (varint), key length (varint, -1 = null) and key, value length and
//! value, header count (varint) and headers (key length, key, value length, value).
//! Varints are zigzag-encoded, as in protobuf.
//!
//! The client has no codec: the builder writes uncompressed batches, or frames records the
//! caller compressed ([`RecordBatchBuilder::compress_records`]); the reader counts records of any
//! compression (the count is in the header) but decodes the records of uncompressed
//! batches only ([`decode_record_area`] decodes a compressed batch's records once the
//! caller has decompressed them).

use bytes::{BufMut, Bytes, BytesMut};

/// Bytes of the fixed batch header before the first record.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes of `baseOffset` + `batchLength`: the part of the header outside `batchLength`.
pub const BATCH_LOG_OVERHEAD_BYTES: usize = 12;
/// The only record-batch format this client writes and reads.
pub const MAGIC_V2: i8 = 2;

const MAGIC_POSITION: usize = 16;
const CRC_POSITION: usize = 17;
const ATTRIBUTES_POSITION: usize = 21;
/// Low three bits of the attributes: the compression codec (0 = none).
const ATTRIBUTES_COMPRESSION_MASK: i16 = 0x07;

/// One record to append to a batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct Record<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [(&'a str, Option<&'a [u8]>)],
    pub timestamp_ms: i64,
}

/// An idempotent producer's identity, from InitProducerId
/// ([`crate::client::Client::init_producer_id`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    pub producer_id: i64,
    pub producer_epoch: i16,
}

/// The producer fields of a batch header.
#[derive(Debug, Clone, Copy)]
struct ProducerFields {
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
}

impl ProducerFields {
    /// A batch of no idempotent producer.
    const NONE: ProducerFields = ProducerFields {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
    };
}

/// Builds one uncompressed magic-v2 batch, record by record.
#[derive(Debug)]
pub struct RecordBatchBuilder {
    /// Header space (zeroed until [`Self::finish`]) followed by the encoded records.
    buf: BytesMut,
    record_count: i32,
    base_timestamp_ms: i64,
    max_timestamp_ms: i64,
    /// The attributes' codec id once [`Self::compress_records`] ran (0: uncompressed).
    compression: i16,
}

impl RecordBatchBuilder {
    /// An empty batch whose timestamps are deltas from `base_timestamp_ms`.
    pub fn new(base_timestamp_ms: i64) -> Self {
        let mut buf = BytesMut::with_capacity(BATCH_HEADER_BYTES + 1024);
        buf.put_bytes(0, BATCH_HEADER_BYTES);
        Self {
            buf,
            record_count: 0,
            base_timestamp_ms,
            max_timestamp_ms: base_timestamp_ms,
            compression: 0,
        }
    }

    pub fn record_count(&self) -> i32 {
        self.record_count
    }

    pub fn is_empty(&self) -> bool {
        self.record_count == 0
    }

    /// Bytes the batch would have if finished now.
    pub fn size_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Bytes `record` would add to the batch.
    pub fn record_size_bytes(&self, record: &Record<'_>) -> usize {
        let body_bytes = self.record_body_bytes(record);
        varint_bytes(body_bytes as i64) + body_bytes
    }

    /// Appends one record.
    ///
    /// # Panics
    /// If the batch would exceed `i32::MAX` records or bytes (a caller bug: batches are
    /// bounded by `batch.size` far below).
    pub fn push(&mut self, record: &Record<'_>) {
        assert_eq!(
            self.compression, 0,
            "a record pushed after compress_records"
        );
        let body_bytes = self.record_body_bytes(record);
        assert!(self.buf.len() + body_bytes + 10 < i32::MAX as usize);
        let offset_delta = self.record_count;
        put_varint(&mut self.buf, body_bytes as i64);
        let start = self.buf.len();
        self.buf.put_i8(0); // Record attributes: unused.
        put_varint(&mut self.buf, record.timestamp_ms - self.base_timestamp_ms);
        put_varint(&mut self.buf, i64::from(offset_delta));
        put_nullable_bytes(&mut self.buf, record.key);
        put_nullable_bytes(&mut self.buf, record.value);
        put_varint(&mut self.buf, record.headers.len() as i64);
        for (key, value) in record.headers {
            put_nullable_bytes(&mut self.buf, Some(key.as_bytes()));
            put_nullable_bytes(&mut self.buf, *value);
        }
        assert_eq!(self.buf.len() - start, body_bytes, "record size computed");
        self.record_count = offset_delta.checked_add(1).expect("record count");
        self.max_timestamp_ms = self.max_timestamp_ms.max(record.timestamp_ms);
    }

    /// Fills in the header and CRC and returns the batch bytes.
    ///
    /// # Panics
    /// If the batch is empty: Kafka refuses batches without records.
    pub fn finish(self) -> Bytes {
        self.finish_as(ProducerFields::NONE)
    }

    /// [`Self::finish`] for an idempotent producer: the batch carries `producer`'s id and
    /// epoch and `base_sequence`, the sequence number of its first record (Kafka counts
    /// sequences per producer id and partition, from 0, wrapping at `i32::MAX`).
    ///
    /// # Panics
    /// If the batch is empty, or `base_sequence` is negative.
    pub fn finish_idempotent(self, producer: ProducerIdentity, base_sequence: i32) -> Bytes {
        assert!(base_sequence >= 0, "base sequence {base_sequence} below 0");
        self.finish_as(ProducerFields {
            producer_id: producer.producer_id,
            producer_epoch: producer.producer_epoch,
            base_sequence,
        })
    }

    /// Replaces the records pushed so far by their compressed form, made by `compress`
    /// (the caller's codec: the client has none of its own), and marks the batch with
    /// `codec`, Kafka's attributes id (1 gzip, 2 snappy, 3 lz4, 4 zstd). Call it once,
    /// after the last push; [`Self::finish`] / [`Self::finish_idempotent`] then frame the
    /// compressed batch.
    ///
    /// # Panics
    /// If called twice, or `codec` is not one of Kafka's four.
    pub fn compress_records(
        &mut self,
        codec: i16,
        compress: impl FnOnce(&[u8], &mut Vec<u8>) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        assert_eq!(self.compression, 0, "records compressed twice");
        assert!((1..=4).contains(&codec), "codec id {codec}");
        let mut compressed = Vec::with_capacity(self.buf.len() - BATCH_HEADER_BYTES);
        compress(&self.buf[BATCH_HEADER_BYTES..], &mut compressed)?;
        self.buf.truncate(BATCH_HEADER_BYTES);
        self.buf.extend_from_slice(&compressed);
        self.compression = codec;
        Ok(())
    }

    fn finish_as(mut self, producer: ProducerFields) -> Bytes {
        assert!(
            self.record_count > 0,
            "a record batch needs at least one record"
        );
        let batch_length = i32::try_from(self.buf.len() - BATCH_LOG_OVERHEAD_BYTES)
            .expect("batch length bounded by push");
        let mut header = &mut self.buf[..BATCH_HEADER_BYTES];
        header.put_i64(0); // baseOffset
        header.put_i32(batch_length);
        header.put_i32(-1); // partitionLeaderEpoch
        header.put_i8(MAGIC_V2);
        header.put_u32(0); // crc, below
        header.put_i16(self.compression); // attributes: the codec, CreateTime
        header.put_i32(self.record_count - 1); // lastOffsetDelta
        header.put_i64(self.base_timestamp_ms);
        header.put_i64(self.max_timestamp_ms);
        header.put_i64(producer.producer_id);
        header.put_i16(producer.producer_epoch);
        header.put_i32(producer.base_sequence);
        header.put_i32(self.record_count);
        let crc = crc32c::crc32c(&self.buf[ATTRIBUTES_POSITION..]);
        self.buf[CRC_POSITION..ATTRIBUTES_POSITION].copy_from_slice(&crc.to_be_bytes());
        self.buf.freeze()
    }

    fn record_body_bytes(&self, record: &Record<'_>) -> usize {
        let headers_bytes: usize = record
            .headers
            .iter()
            .map(|(key, value)| {
                nullable_bytes_size(Some(key.as_bytes())) + nullable_bytes_size(*value)
            })
            .sum();
        1 + varint_bytes(record.timestamp_ms - self.base_timestamp_ms)
            + varint_bytes(i64::from(self.record_count))
            + nullable_bytes_size(record.key)
            + nullable_bytes_size(record.value)
            + varint_bytes(record.headers.len() as i64)
            + headers_bytes
    }
}

/// Why fetched bytes are not a sequence of valid batches.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("record batch at byte {position} has magic {magic}; only magic 2 is supported")]
    UnsupportedMagic { position: usize, magic: i8 },
    #[error("record batch at byte {position} claims length {batch_length}, below the header")]
    BadLength { position: usize, batch_length: i32 },
    #[error(
        "record batch at byte {position} (base offset {base_offset}) fails its CRC-32C: \
         stored {stored:#010x}, computed {computed:#010x}"
    )]
    Crc {
        position: usize,
        base_offset: i64,
        stored: u32,
        computed: u32,
    },
    #[error("record batch (base offset {base_offset}) is compressed (codec {codec}); decoding records needs decompression")]
    Compressed { base_offset: i64, codec: i16 },
    #[error("record batch (base offset {base_offset}): record {index} is malformed")]
    BadRecord { base_offset: i64, index: i32 },
}

/// The header fields of one complete batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Whole batch, `baseOffset` and `batchLength` included.
    pub size_bytes: usize,
    pub last_offset_delta: i32,
    pub record_count: i32,
    pub attributes: i16,
    pub base_timestamp_ms: i64,
    pub max_timestamp_ms: i64,
}

impl BatchHeader {
    /// Offset after the last record of the batch.
    pub fn next_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta) + 1
    }
}

/// Iterates the complete batches in a fetched `records` field, checking magic, length
/// and CRC. A partial batch at the end (the broker cuts at `max_bytes`) is skipped.
pub struct Batches<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Batches<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }

    /// Bytes after the last complete batch (a partial trailing batch), once iteration
    /// has ended.
    pub fn trailing_bytes(&self) -> usize {
        self.bytes.len() - self.position
    }

    fn next_batch(&mut self) -> Option<Result<(BatchHeader, &'a [u8]), BatchError>> {
        let rest = &self.bytes[self.position..];
        if rest.len() < BATCH_HEADER_BYTES {
            return None;
        }
        let position = self.position;
        let base_offset = i64::from_be_bytes(array(rest, 0));
        let batch_length = i32::from_be_bytes(array(rest, 8));
        let magic = rest[MAGIC_POSITION] as i8;
        if magic != MAGIC_V2 {
            return Some(Err(BatchError::UnsupportedMagic { position, magic }));
        }
        let size_bytes = match usize::try_from(batch_length) {
            Ok(len) if len + BATCH_LOG_OVERHEAD_BYTES >= BATCH_HEADER_BYTES => {
                len + BATCH_LOG_OVERHEAD_BYTES
            }
            _ => {
                return Some(Err(BatchError::BadLength {
                    position,
                    batch_length,
                }))
            }
        };
        let batch = rest.get(..size_bytes)?;
        let stored = u32::from_be_bytes(array(batch, CRC_POSITION));
        let computed = crc32c::crc32c(&batch[ATTRIBUTES_POSITION..]);
        if stored != computed {
            let error = BatchError::Crc {
                position,
                base_offset,
                stored,
                computed,
            };
            return Some(Err(error));
        }
        self.position += size_bytes;
        Some(Ok((parse_header(batch, size_bytes), batch)))
    }
}

impl<'a> Iterator for Batches<'a> {
    /// The header and the whole batch's bytes.
    type Item = Result<(BatchHeader, &'a [u8]), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.next_batch();
        if matches!(item, Some(Err(_))) {
            self.position = self.bytes.len(); // No resynchronisation after a bad batch.
        }
        item
    }
}

fn parse_header(batch: &[u8], size_bytes: usize) -> BatchHeader {
    BatchHeader {
        base_offset: i64::from_be_bytes(array(batch, 0)),
        size_bytes,
        attributes: i16::from_be_bytes(array(batch, ATTRIBUTES_POSITION)),
        last_offset_delta: i32::from_be_bytes(array(batch, 23)),
        base_timestamp_ms: i64::from_be_bytes(array(batch, 27)),
        max_timestamp_ms: i64::from_be_bytes(array(batch, 35)),
        record_count: i32::from_be_bytes(array(batch, 57)),
    }
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes[at..at + N]
        .try_into()
        .expect("caller checked the length")
}

/// What a run of fetched batches holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchesSummary {
    pub batch_count: usize,
    pub record_count: u64,
    /// Bytes of the complete batches.
    pub size_bytes: usize,
    /// Offset after the last record of the last complete batch, if any.
    pub next_offset: Option<i64>,
    /// Bytes of a partial batch at the end, not counted above.
    pub trailing_bytes: usize,
}

/// Counts the complete batches, records and bytes in a fetched `records` field.
pub fn summarize(bytes: &[u8]) -> Result<BatchesSummary, BatchError> {
    let mut summary = BatchesSummary::default();
    let mut batches = Batches::new(bytes);
    for item in batches.by_ref() {
        let (header, _) = item?;
        summary.batch_count += 1;
        summary.record_count += u64::try_from(header.record_count).unwrap_or(0);
        summary.size_bytes += header.size_bytes;
        summary.next_offset = Some(header.next_offset());
    }
    summary.trailing_bytes = batches.trailing_bytes();
    Ok(summary)
}

/// One record decoded from an uncompressed batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord {
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Decodes the records of one uncompressed batch (as yielded by [`Batches`]).
pub fn decode_records(
    header: &BatchHeader,
    batch: &[u8],
) -> Result<Vec<DecodedRecord>, BatchError> {
    let codec = header.attributes & ATTRIBUTES_COMPRESSION_MASK;
    if codec != 0 {
        return Err(BatchError::Compressed {
            base_offset: header.base_offset,
            codec,
        });
    }
    decode_record_area(header, &batch[BATCH_HEADER_BYTES..])
}

/// Decodes the records of one batch from its records area, uncompressed: the bytes after
/// the header of an uncompressed batch, or a compressed batch's once decompressed (the
/// client does not decompress; `sluice-engine`'s `compression` does, for the tools).
pub fn decode_record_area(
    header: &BatchHeader,
    area: &[u8],
) -> Result<Vec<DecodedRecord>, BatchError> {
    let mut reader = area;
    let count = usize::try_from(header.record_count).unwrap_or(0);
    // The count is the peer's: never let it size an allocation beyond the bytes present.
    let mut records = Vec::with_capacity(count.min(reader.len()));
    for index in 0..header.record_count {
        let bad = BatchError::BadRecord {
            base_offset: header.base_offset,
            index,
        };
        let record = decode_record(&mut reader, header).ok_or(bad)?;
        records.push(record);
    }
    Ok(records)
}

/// Records and key + value bytes of the first `records_max` records of one
/// uncompressed batch (what Kafka's consumer perf tool counts), without copying them.
pub fn payload_sizes(
    header: &BatchHeader,
    batch: &[u8],
    records_max: u64,
) -> Result<(u64, u64), BatchError> {
    let codec = header.attributes & ATTRIBUTES_COMPRESSION_MASK;
    if codec != 0 {
        return Err(BatchError::Compressed {
            base_offset: header.base_offset,
            codec,
        });
    }
    let mut reader = &batch[BATCH_HEADER_BYTES..];
    let count = u64::try_from(header.record_count)
        .unwrap_or(0)
        .min(records_max);
    let mut payload_bytes = 0u64;
    for index in 0..count {
        let bad = || BatchError::BadRecord {
            base_offset: header.base_offset,
            index: index as i32,
        };
        payload_bytes += record_payload_bytes(&mut reader).ok_or_else(bad)?;
    }
    Ok((count, payload_bytes))
}

fn record_payload_bytes(reader: &mut &[u8]) -> Option<u64> {
    let length = usize::try_from(get_varint(reader)?).ok()?;
    let mut body = take(reader, length)?;
    take(&mut body, 1)?; // attributes
    get_varint(&mut body)?; // timestamp delta
    get_varint(&mut body)?; // offset delta
    let mut sum = 0u64;
    for _ in 0..2 {
        let len = get_varint(&mut body)?;
        if len >= 0 {
            take(&mut body, usize::try_from(len).ok()?)?;
            sum += len as u64;
        }
    }
    Some(sum)
}

fn decode_record(reader: &mut &[u8], header: &BatchHeader) -> Option<DecodedRecord> {
    let length = usize::try_from(get_varint(reader)?).ok()?;
    let mut body = reader.get(..length)?;
    *reader = &reader[length..];
    let _attributes = take(&mut body, 1)?;
    let timestamp_delta = get_varint(&mut body)?;
    let offset_delta = get_varint(&mut body)?;
    let key = get_nullable_bytes(&mut body)?;
    let value = get_nullable_bytes(&mut body)?;
    let header_count = usize::try_from(get_varint(&mut body)?).ok()?;
    let mut headers = Vec::with_capacity(header_count.min(body.len()));
    for _ in 0..header_count {
        let key = String::from_utf8(get_nullable_bytes(&mut body)??).ok()?;
        headers.push((key, get_nullable_bytes(&mut body)?));
    }
    Some(DecodedRecord {
        offset: header.base_offset.checked_add(offset_delta)?,
        timestamp_ms: header.base_timestamp_ms.checked_add(timestamp_delta)?,
        key,
        value,
        headers,
    })
}

fn take<'a>(reader: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let taken = reader.get(..n)?;
    *reader = &reader[n..];
    Some(taken)
}

/// `Some(None)` for a null (length -1); `None` when malformed.
fn get_nullable_bytes(reader: &mut &[u8]) -> Option<Option<Vec<u8>>> {
    match get_varint(reader)? {
        -1 => Some(None),
        len => Some(Some(take(reader, usize::try_from(len).ok()?)?.to_vec())),
    }
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// Bytes of `value` as a zigzag varint.
pub fn varint_bytes(value: i64) -> usize {
    let bits = 64 - zigzag(value).leading_zeros() as usize;
    bits.max(1).div_ceil(7)
}

/// Appends `value` as a zigzag varint.
pub fn put_varint(buf: &mut impl BufMut, value: i64) {
    let mut rest = zigzag(value);
    while rest >= 0x80 {
        buf.put_u8((rest as u8) | 0x80);
        rest >>= 7;
    }
    buf.put_u8(rest as u8);
}

/// Reads a zigzag varint of at most 10 bytes; `None` if cut short or too long.
pub fn get_varint(reader: &mut &[u8]) -> Option<i64> {
    let mut raw: u64 = 0;
    for (index, byte) in reader.iter().enumerate().take(10) {
        raw |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            *reader = &reader[index + 1..];
            return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    None
}

fn nullable_bytes_size(bytes: Option<&[u8]>) -> usize {
    match bytes {
        None => varint_bytes(-1),
        Some(bytes) => varint_bytes(bytes.len() as i64) + bytes.len(),
    }
}

fn put_nullable_bytes(buf: &mut BytesMut, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(buf, -1),
        Some(bytes) => {
            put_varint(buf, bytes.len() as i64);
            buf.put_slice(bytes);
        }
    }
}

#[cfg(test)]
mod tests;
