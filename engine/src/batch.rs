//! Kafka magic v2 record batches: header parsing and produce-time validation.
//!
//! On-disk and on-wire layout of a batch (big endian), the 61-byte header then the records:
//!
//! | bytes  | field                  |                                                  |
//! |--------|------------------------|--------------------------------------------------|
//! | 0..8   | baseOffset i64         | rewritten by the broker (outside the CRC)        |
//! | 8..12  | batchLength i32        | bytes after this field                           |
//! | 12..16 | partitionLeaderEpoch   | rewritten by the broker (outside the CRC)        |
//! | 16     | magic i8               | always 2                                         |
//! | 17..21 | crc u32                | CRC-32C over bytes 21..end                       |
//! | 21..23 | attributes i16         | bits 0-2 codec, 3 timestamp type, 4 txn, 5 ctrl  |
//! | 23..27 | lastOffsetDelta i32    |                                                  |
//! | 27..35 | baseTimestamp i64      |                                                  |
//! | 35..43 | maxTimestamp i64       |                                                  |
//! | 43..51 | producerId i64         |                                                  |
//! | 51..53 | producerEpoch i16      |                                                  |
//! | 53..57 | baseSequence i32       |                                                  |
//! | 57..61 | recordsCount i32       |                                                  |

use std::fmt;

/// Test builders, also reachable as `batch::testing`.
pub use crate::testing;

/// Size of the magic v2 batch header.
pub const BATCH_HEADER_BYTES: usize = 61;
/// `baseOffset` + `batchLength`: the bytes not counted by `batchLength`.
pub const BATCH_LOG_OVERHEAD_BYTES: usize = 12;
/// The prefix the broker rewrites on append: baseOffset, batchLength, partitionLeaderEpoch.
pub const BATCH_PREFIX_BYTES: usize = 16;
/// Start of the CRC-covered bytes (attributes onwards).
pub const BATCH_CRC_START: usize = 21;
/// The only record batch format we accept.
pub const MAGIC_V2: i8 = 2;
/// The largest compression codec id Kafka defines (zstd).
pub const COMPRESSION_CODEC_MAX: u8 = 4;

const ATTRIBUTE_CODEC_MASK: i16 = 0x07;
const ATTRIBUTE_LOG_APPEND_TIME: i16 = 0x08;
const ATTRIBUTE_TRANSACTIONAL: i16 = 0x10;
const ATTRIBUTE_CONTROL: i16 = 0x20;

const _: () = assert!(BATCH_HEADER_BYTES > BATCH_CRC_START);
const _: () = assert!(BATCH_PREFIX_BYTES < BATCH_CRC_START);

/// What kind of bad input a batch is; each maps to one Kafka error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchErrorKind {
    /// Kafka `CORRUPT_MESSAGE`: lengths or CRC are wrong.
    Corrupt,
    /// Kafka `INVALID_RECORD`: well-formed but not acceptable.
    InvalidRecord,
    /// Kafka `UNSUPPORTED_FOR_MESSAGE_FORMAT`: magic other than 2.
    UnsupportedMagic,
    /// Kafka `MESSAGE_TOO_LARGE`: bigger than `max.message.bytes` (or, compressed, more
    /// than `log_validator::decompressed_bytes_max` once decompressed).
    TooLarge,
    /// Kafka `INVALID_TIMESTAMP`: a record's timestamp is outside the topic's
    /// `message.timestamp.before.max.ms` / `after.max.ms`, or a producer set LogAppendTime.
    InvalidTimestamp,
}

/// One record that made its batch fail (Kafka's `ProduceResponse.RecordError`): its index in
/// the batch and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordError {
    pub batch_index: i32,
    pub message: String,
}

/// A rejected batch: the kind (for the error code) and a message for logs and clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchError {
    pub kind: BatchErrorKind,
    pub message: String,
    /// The records at fault, where known (Produce v8+ answers them).
    pub record_errors: Vec<RecordError>,
}

impl BatchError {
    pub(crate) fn new(kind: BatchErrorKind, message: String) -> BatchError {
        BatchError {
            kind,
            message,
            record_errors: Vec::new(),
        }
    }

    /// The same error with its message prefixed by where it happened.
    pub(crate) fn context(self, context: &str) -> BatchError {
        BatchError {
            message: format!("{context}: {}", self.message),
            ..self
        }
    }
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BatchError {}

/// A parsed magic v2 batch header (see the module docs for the layout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn be_i64(buf: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}
fn be_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}
fn be_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(buf[at..at + 2].try_into().expect("2 bytes"))
}

impl BatchHeader {
    /// Parses the 61 header bytes; checks nothing but the buffer length.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() < BATCH_HEADER_BYTES {
            return Err(BatchError::new(
                BatchErrorKind::Corrupt,
                format!(
                    "record batch truncated: {} bytes, the header alone is {BATCH_HEADER_BYTES}",
                    buf.len()
                ),
            ));
        }
        Ok(BatchHeader {
            base_offset: be_i64(buf, 0),
            batch_length: be_i32(buf, 8),
            partition_leader_epoch: be_i32(buf, 12),
            magic: buf[16] as i8,
            crc: be_i32(buf, 17) as u32,
            attributes: be_i16(buf, 21),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, 35),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            records_count: be_i32(buf, 57),
        })
    }

    /// The whole batch in bytes: `batchLength` + 12. Only meaningful once
    /// `batch_length` was checked to be non-negative.
    pub fn total_bytes(&self) -> usize {
        assert!(self.batch_length >= 0, "total_bytes of an unchecked header");
        self.batch_length as usize + BATCH_LOG_OVERHEAD_BYTES
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Compression codec id: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> u8 {
        (self.attributes & ATTRIBUTE_CODEC_MASK) as u8
    }

    /// Timestamp type LogAppendTime: every record's timestamp is `max_timestamp`.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTRIBUTE_LOG_APPEND_TIME != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTRIBUTE_TRANSACTIONAL != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTRIBUTE_CONTROL != 0
    }

    /// These attributes with the codec and the timestamp type replaced.
    pub fn attributes_with(&self, codec: u8, log_append_time: bool) -> i16 {
        let kept = self.attributes & !(ATTRIBUTE_CODEC_MASK | ATTRIBUTE_LOG_APPEND_TIME);
        let time = if log_append_time {
            ATTRIBUTE_LOG_APPEND_TIME
        } else {
            0
        };
        kept | (i16::from(codec) & ATTRIBUTE_CODEC_MASK) | time
    }

    /// Writes the 61 header bytes into `batch` (the whole batch: header, then its records)
    /// and then the CRC-32C of the rest over the stored `crc`. `batch_length` must already
    /// match `batch`.
    pub fn write_sealed(&self, batch: &mut [u8]) {
        assert_eq!(
            self.total_bytes(),
            batch.len(),
            "batchLength matches the batch"
        );
        let h = &mut batch[..BATCH_HEADER_BYTES];
        h[0..8].copy_from_slice(&self.base_offset.to_be_bytes());
        h[8..12].copy_from_slice(&self.batch_length.to_be_bytes());
        h[12..16].copy_from_slice(&self.partition_leader_epoch.to_be_bytes());
        h[16] = self.magic as u8;
        h[21..23].copy_from_slice(&self.attributes.to_be_bytes());
        h[23..27].copy_from_slice(&self.last_offset_delta.to_be_bytes());
        h[27..35].copy_from_slice(&self.base_timestamp.to_be_bytes());
        h[35..43].copy_from_slice(&self.max_timestamp.to_be_bytes());
        h[43..51].copy_from_slice(&self.producer_id.to_be_bytes());
        h[51..53].copy_from_slice(&self.producer_epoch.to_be_bytes());
        h[53..57].copy_from_slice(&self.base_sequence.to_be_bytes());
        h[57..61].copy_from_slice(&self.records_count.to_be_bytes());
        let crc = crc32c::crc32c(&batch[BATCH_CRC_START..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
    }
}

pub(crate) fn corrupt(message: String) -> BatchError {
    BatchError::new(BatchErrorKind::Corrupt, message)
}

pub(crate) fn invalid(message: String) -> BatchError {
    BatchError::new(BatchErrorKind::InvalidRecord, message)
}

/// Checks lengths, magic and CRC: what makes the bytes a batch at all. Returns the header
/// with `batch_length` known to fit `buf`. Used by produce validation and recovery.
pub fn check_batch_framing(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(buf)?;
    if header.magic != MAGIC_V2 {
        return Err(BatchError::new(
            BatchErrorKind::UnsupportedMagic,
            format!(
                "record batch magic {} is not supported (only 2)",
                header.magic
            ),
        ));
    }
    let min_length = (BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD_BYTES) as i32;
    if header.batch_length < min_length {
        return Err(corrupt(format!(
            "record batch length {} is smaller than the header ({min_length})",
            header.batch_length
        )));
    }
    let total = header.total_bytes();
    if total > buf.len() {
        return Err(corrupt(format!(
            "record batch length {} runs past the end of the buffer ({} bytes left)",
            header.batch_length,
            buf.len()
        )));
    }
    let computed = crc32c::crc32c(&buf[BATCH_CRC_START..total]);
    if computed != header.crc {
        return Err(corrupt(format!(
            "record batch CRC-32C mismatch: stored {:#010x}, computed {computed:#010x}",
            header.crc
        )));
    }
    Ok(header)
}

fn check_counts(header: &BatchHeader) -> Result<(), BatchError> {
    if header.records_count <= 0 {
        return Err(invalid(format!(
            "record batch has {} records; a batch holds at least one",
            header.records_count
        )));
    }
    if i64::from(header.records_count) != i64::from(header.last_offset_delta) + 1 {
        return Err(invalid(format!(
            "record batch count {} does not match lastOffsetDelta {} + 1",
            header.records_count, header.last_offset_delta
        )));
    }
    Ok(())
}

fn check_producer(header: &BatchHeader) -> Result<(), BatchError> {
    let consistent = if header.producer_id == -1 {
        header.producer_epoch == -1 && header.base_sequence == -1
    } else {
        header.producer_id >= 0 && header.producer_epoch >= 0 && header.base_sequence >= 0
    };
    if !consistent {
        return Err(invalid(format!(
            "record batch producer fields are inconsistent: producerId {} producerEpoch {} \
             baseSequence {}",
            header.producer_id, header.producer_epoch, header.base_sequence
        )));
    }
    if header.is_control() {
        return Err(invalid(
            "control batches are written by the broker only".into(),
        ));
    }
    if header.is_transactional() {
        return Err(invalid(
            "transactional batches are not supported yet".into(),
        ));
    }
    Ok(())
}

/// Validates ONE batch from its header without decompressing: magic 2; batchLength fits
/// the buffer and covers the header; CRC-32C over bytes 21..end; recordsCount > 0 and
/// equal to lastOffsetDelta + 1; producer fields consistent (producerId -1 means epoch and
/// baseSequence -1; producerId >= 0 means both >= 0); no control or transactional batches
/// (transactions are not supported yet); compression codec 0..=4; the whole batch at most
/// `max_message_bytes`.
pub fn validate_batch(buf: &[u8], max_message_bytes: u32) -> Result<BatchHeader, BatchError> {
    let header = check_batch_framing(buf)?;
    let total = header.total_bytes();
    if total > max_message_bytes as usize {
        return Err(BatchError::new(
            BatchErrorKind::TooLarge,
            format!(
                "record batch is {total} bytes, larger than max.message.bytes {max_message_bytes}"
            ),
        ));
    }
    check_counts(&header)?;
    check_producer(&header)?;
    if header.compression() > COMPRESSION_CODEC_MAX {
        return Err(corrupt(format!(
            "record batch compression codec {} is unknown",
            header.compression()
        )));
    }
    Ok(header)
}

/// Walks a produce partition's `records` (one or more concatenated batches) validating
/// each; returns the headers in order. An empty buffer or a trailing partial batch is
/// `Corrupt`.
pub fn validate_batches(
    records: &[u8],
    max_message_bytes: u32,
) -> Result<Vec<BatchHeader>, BatchError> {
    if records.is_empty() {
        return Err(corrupt("produce request holds no record batch".into()));
    }
    let mut headers = Vec::new();
    let mut position = 0;
    while position < records.len() {
        let header = validate_batch(&records[position..], max_message_bytes)
            .map_err(|e| e.context(&format!("batch at byte {position}")))?;
        position += header.total_bytes();
        headers.push(header);
    }
    assert_eq!(position, records.len());
    Ok(headers)
}

/// One record's position and time inside a batch (what ListOffsets needs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordTime {
    pub offset_delta: i32,
    pub timestamp: i64,
}

/// Decodes the record timestamps of an UNCOMPRESSED batch (`batch` is the whole batch).
/// Each record: length varint, attributes i8, timestampDelta varlong, offsetDelta varint,
/// key, value, headers. Errors on malformed records; never panics.
pub fn record_times(batch: &[u8]) -> Result<Vec<RecordTime>, BatchError> {
    let header = BatchHeader::parse(batch)?;
    assert_eq!(
        header.compression(),
        0,
        "record_times needs an uncompressed batch"
    );
    let total = header.total_bytes().min(batch.len());
    let count = usize::try_from(header.records_count).unwrap_or(0);
    let mut times = Vec::with_capacity(count.min(total / 7));
    let mut cursor = Cursor {
        buf: &batch[..total],
        at: BATCH_HEADER_BYTES,
    };
    for _ in 0..count {
        let length = cursor.varint()?;
        let start = cursor.at;
        let end = start
            .checked_add(
                usize::try_from(length).map_err(|_| corrupt("negative record length".into()))?,
            )
            .filter(|&end| end <= total)
            .ok_or_else(|| corrupt("record runs past its batch".into()))?;
        cursor.at += 1; // attributes
        let timestamp_delta = cursor.varlong()?;
        let offset_delta = cursor.varint()?;
        let timestamp = if header.is_log_append_time() {
            header.max_timestamp
        } else {
            header.base_timestamp.wrapping_add(timestamp_delta)
        };
        times.push(RecordTime {
            offset_delta,
            timestamp,
        });
        cursor.at = end;
    }
    Ok(times)
}

struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn varlong(&mut self) -> Result<i64, BatchError> {
        let mut raw: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .buf
                .get(self.at)
                .ok_or_else(|| corrupt("varint runs past its batch".into()))?;
            self.at += 1;
            raw |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err(corrupt("varint longer than 10 bytes".into()))
    }

    fn varint(&mut self) -> Result<i32, BatchError> {
        let value = self.varlong()?;
        i32::try_from(value).map_err(|_| corrupt(format!("varint {value} exceeds 32 bits")))
    }
}
