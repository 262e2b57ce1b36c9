//! Kafka's `LogValidator` for appends: every record of every batch is checked before the
//! batch is stored, and a batch is rewritten only where Kafka rewrites one.
//!
//! After `batch::validate_batch` (magic, lengths, CRC-32C, counts, producer fields, size),
//! the records are walked — in place for an uncompressed batch (no copy), in a per-thread
//! scratch buffer for a compressed one (`compression::decompress`, bounded by
//! [`decompressed_bytes_max`]). Each record, as Kafka's `DefaultRecord.readFrom` reads it:
//! length varint (the body must fit the batch), attributes, timestampDelta varlong,
//! offsetDelta varint, key and value (length varint, -1 = null), header count (>= 0, at most
//! the bytes left), each header's key (length >= 0) and value, and the body ends exactly
//! where its length said. The batch holds exactly `recordsCount` records, with no bytes
//! after the last one. What each failure answers (Kafka 4.1's behaviour; `BatchErrorKind`):
//!
//! | failure                                                | kind               |
//! |--------------------------------------------------------|--------------------|
//! | a malformed record, count mismatch, trailing bytes     | `InvalidRecord`    |
//! | uncompressed: offset deltas other than 0..n-1          | `InvalidRecord` *  |
//! | compressed data that does not decompress               | `Corrupt` *        |
//! | decompressed past `decompressed_bytes_max`             | `TooLarge` *       |
//! | CreateTime timestamp outside before/after.max.ms       | `InvalidTimestamp` |
//! | a producer set the LogAppendTime attribute             | `InvalidTimestamp` |
//!
//! (*) Where Kafka differs: it stores uncompressed batches whose offset deltas are wrong
//! (its consumers then compute wrong offsets), answers UNKNOWN_SERVER_ERROR for a stream
//! that does not decompress, and sets no bound on decompressed size.
//!
//! Timestamp errors are collected for every record (at most `RECORD_ERRORS_MAX` reported),
//! a structural error names the first bad record, as Produce v8+ `record_errors`.
//!
//! Rewrites (a new buffer; the rest of the produce path is unchanged):
//! - **rebuild** when the target codec (`compression.type`, or the batch's own for
//!   `producer`) differs from the batch's, or a compressed batch's offset deltas are not
//!   0..n-1 (Kafka renumbers them): records (renumbered if needed) are compressed with the
//!   target codec into a new batch with the same producer fields; its size is checked
//!   against `max.message.bytes` again.
//! - **restamp** when `message.timestamp.type=LogAppendTime` (the timestamp-type attribute
//!   and `maxTimestamp` = now) or, for CreateTime, when the batch's `maxTimestamp` is not its
//!   records' largest timestamp (Kafka corrects it): a copy of the batch with those header
//!   fields and a new CRC; the records are not re-encoded.
//!
//! Otherwise the batch is stored exactly as received.

use std::borrow::Cow;
use std::cell::RefCell;

use bytes::{Bytes, BytesMut};

use crate::batch::{
    corrupt, invalid, validate_batches, BatchError, BatchErrorKind, BatchHeader, RecordError,
    BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES,
};
use crate::compression::{compress, decompress, Compression, CompressionType, DecompressError};

/// A compressed batch may decompress to at most this many times `max.message.bytes`…
pub const DECOMPRESSION_RATIO_MAX: usize = 64;
/// …and never to more than this.
pub const DECOMPRESSED_BATCH_BYTES_MAX: usize = 256 << 20;
/// The scratch buffer keeps at most this capacity between batches (it grows as a batch
/// needs, up to `decompressed_bytes_max`, and is released after a larger one).
pub const SCRATCH_RETAINED_BYTES_MAX: usize = 4 << 20;
/// Record errors reported for one batch at most.
pub const RECORD_ERRORS_MAX: usize = 100;
/// Kafka's `log.message.timestamp.before.max.ms` default: no bound.
pub const TIMESTAMP_BEFORE_MAX_MS_DEFAULT: i64 = i64::MAX;
/// Kafka's `log.message.timestamp.after.max.ms` default since 4.0: one hour.
pub const TIMESTAMP_AFTER_MAX_MS_DEFAULT: i64 = 3_600_000;
/// Kafka's `RecordBatch.NO_TIMESTAMP`.
pub const NO_TIMESTAMP: i64 = -1;

/// The most a batch whose topic has `max_message_bytes` may decompress to.
pub fn decompressed_bytes_max(max_message_bytes: u32) -> usize {
    (max_message_bytes as usize)
        .saturating_mul(DECOMPRESSION_RATIO_MAX)
        .min(DECOMPRESSED_BATCH_BYTES_MAX)
}

/// Kafka's `message.timestamp.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TimestampType {
    #[default]
    CreateTime,
    LogAppendTime,
}

impl TimestampType {
    pub fn parse(name: &str) -> Option<TimestampType> {
        match name {
            "CreateTime" => Some(TimestampType::CreateTime),
            "LogAppendTime" => Some(TimestampType::LogAppendTime),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
    }
}

/// Kafka's `compression.type` for a topic (`BrokerCompressionType`): keep the producer's
/// codec, or store batches with this one (`uncompressed` is `Codec` of `None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerCompression {
    Producer,
    Codec(Compression),
}

impl BrokerCompression {
    /// `producer`, `uncompressed`, `gzip`, `snappy`, `lz4`, `zstd` (at default levels).
    pub fn parse(name: &str) -> Option<BrokerCompression> {
        let codec = match name {
            "producer" => return Some(BrokerCompression::Producer),
            "uncompressed" => CompressionType::None,
            "gzip" => CompressionType::Gzip,
            "snappy" => CompressionType::Snappy,
            "lz4" => CompressionType::Lz4,
            "zstd" => CompressionType::Zstd,
            _ => return None,
        };
        Some(BrokerCompression::Codec(Compression::of(codec)))
    }

    /// The codec a batch of `source` is stored with.
    pub fn target(self, source: CompressionType) -> Compression {
        match self {
            BrokerCompression::Producer => Compression::of(source),
            BrokerCompression::Codec(c) => c,
        }
    }
}

/// The topic keys that decide how records are validated and stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordsConfig {
    /// `compression.type` (with `compression.*.level`).
    pub compression: BrokerCompression,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`: how far in the past a CreateTime may be.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future a CreateTime may be.
    pub timestamp_after_max_ms: i64,
}

impl Default for RecordsConfig {
    fn default() -> RecordsConfig {
        RecordsConfig {
            compression: BrokerCompression::Producer,
            timestamp_type: TimestampType::CreateTime,
            timestamp_before_max_ms: TIMESTAMP_BEFORE_MAX_MS_DEFAULT,
            timestamp_after_max_ms: TIMESTAMP_AFTER_MAX_MS_DEFAULT,
        }
    }
}

/// What to store for a set of produced batches.
#[derive(Debug)]
pub struct Validated {
    /// The batches as received, or (`rewritten`) a new buffer holding them.
    pub records: Bytes,
    pub headers: Vec<BatchHeader>,
    pub rewritten: bool,
    /// The time stamped into every batch under LogAppendTime.
    pub log_append_time_ms: Option<i64>,
}

thread_local! {
    /// The decompressed records of the batch being validated, one per (shard) thread.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Validates `records` (one or more batches from a producer) for a topic with `config`
/// and `max_message_bytes` at wall-clock `now_ms`; see the module docs.
pub fn validate_records(
    records: Bytes,
    max_message_bytes: u32,
    config: &RecordsConfig,
    now_ms: i64,
) -> Result<Validated, BatchError> {
    let headers = validate_batches(&records, max_message_bytes)?;
    let mut out: Option<BytesMut> = None;
    let mut checked = Vec::with_capacity(headers.len());
    let mut position = 0;
    for header in headers {
        let total = header.total_bytes();
        let batch = &records[position..position + total];
        let rewritten = SCRATCH
            .with_borrow_mut(|scratch| {
                let result =
                    check_batch(batch, &header, config, now_ms, max_message_bytes, scratch);
                if scratch.capacity() > SCRATCH_RETAINED_BYTES_MAX {
                    *scratch = Vec::new();
                }
                result
            })
            .map_err(|e| e.context(&format!("batch at byte {position}")))?;
        match rewritten {
            None => {
                if let Some(out) = &mut out {
                    out.extend_from_slice(batch);
                }
                checked.push(header);
            }
            Some(new) => {
                checked.push(BatchHeader::parse(&new).expect("a whole batch"));
                out.get_or_insert_with(|| BytesMut::from(&records[..position]))
                    .extend_from_slice(&new);
            }
        }
        position += total;
    }
    let log_append_time_ms =
        (config.timestamp_type == TimestampType::LogAppendTime).then_some(now_ms);
    Ok(match out {
        None => Validated {
            records,
            headers: checked,
            rewritten: false,
            log_append_time_ms,
        },
        Some(out) => Validated {
            records: out.freeze(),
            headers: checked,
            rewritten: true,
            log_append_time_ms,
        },
    })
}

/// Checks one batch's records; `Some` is the batch to store instead of it.
fn check_batch(
    batch: &[u8],
    header: &BatchHeader,
    config: &RecordsConfig,
    now_ms: i64,
    max_message_bytes: u32,
    scratch: &mut Vec<u8>,
) -> Result<Option<Vec<u8>>, BatchError> {
    let source = CompressionType::from_id(header.compression())
        .expect("validate_batch refuses unknown codecs");
    let area = records_area(batch, source, max_message_bytes, scratch)?;
    let rule = TimestampRule {
        kind: config.timestamp_type,
        now_ms,
        before_max_ms: config.timestamp_before_max_ms,
        after_max_ms: config.timestamp_after_max_ms,
    };
    let walk = walk_records(area, header, &rule)?;
    if !walk.offsets_consecutive && source == CompressionType::None {
        return Err(invalid(format!(
            "record offset deltas are not 0..{} in order (record {} has delta {})",
            header.records_count - 1,
            walk.first_out_of_order.0,
            walk.first_out_of_order.1
        )));
    }
    let log_append_time = config.timestamp_type == TimestampType::LogAppendTime;
    let max_timestamp = if log_append_time {
        now_ms
    } else {
        walk.max_timestamp
    };
    let target = config.compression.target(source);
    if target.codec != source || !walk.offsets_consecutive {
        let area = match walk.offsets_consecutive {
            true => Cow::Borrowed(area),
            false => Cow::Owned(renumber(area, header.records_count)),
        };
        let rebuilt = rebuild(header, target, &area, (max_timestamp, log_append_time))?;
        if rebuilt.len() > max_message_bytes as usize {
            return Err(BatchError::new(
                BatchErrorKind::TooLarge,
                format!(
                    "record batch is {} bytes once stored as {}, larger than max.message.bytes \
                     {max_message_bytes}",
                    rebuilt.len(),
                    target.codec
                ),
            ));
        }
        return Ok(Some(rebuilt));
    }
    if header.max_timestamp == max_timestamp && header.is_log_append_time() == log_append_time {
        return Ok(None);
    }
    let restamped = BatchHeader {
        max_timestamp,
        attributes: header.attributes_with(source.id(), log_append_time),
        ..*header
    };
    let mut copy = batch.to_vec();
    restamped.write_sealed(&mut copy);
    Ok(Some(copy))
}

/// The uncompressed records of `batch`: in place, or decompressed into `scratch`.
fn records_area<'a>(
    batch: &'a [u8],
    source: CompressionType,
    max_message_bytes: u32,
    scratch: &'a mut Vec<u8>,
) -> Result<&'a [u8], BatchError> {
    if source == CompressionType::None {
        return Ok(&batch[BATCH_HEADER_BYTES..]);
    }
    scratch.clear();
    let limit = decompressed_bytes_max(max_message_bytes);
    decompress(source, &batch[BATCH_HEADER_BYTES..], scratch, limit).map_err(|e| match e {
        DecompressError::Corrupt(m) => corrupt(m),
        DecompressError::TooLarge { limit_bytes } => BatchError::new(
            BatchErrorKind::TooLarge,
            format!(
                "{source} records decompress to more than {limit_bytes} bytes \
                 ({DECOMPRESSION_RATIO_MAX} times max.message.bytes)"
            ),
        ),
    })?;
    Ok(&scratch[..])
}

/// A new batch of `header`'s records (`area`, uncompressed) compressed with `target`.
fn rebuild(
    header: &BatchHeader,
    target: Compression,
    area: &[u8],
    (max_timestamp, log_append_time): (i64, bool),
) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::with_capacity(BATCH_HEADER_BYTES + area.len());
    out.resize(BATCH_HEADER_BYTES, 0);
    compress(target, area, &mut out).map_err(|e| {
        corrupt(format!(
            "recompressing the records as {}: {e}",
            target.codec
        ))
    })?;
    let batch_length = i32::try_from(out.len() - BATCH_LOG_OVERHEAD_BYTES)
        .map_err(|_| corrupt(format!("recompressed batch of {} bytes", out.len())))?;
    let rebuilt = BatchHeader {
        batch_length,
        attributes: header.attributes_with(target.codec.id(), log_append_time),
        last_offset_delta: header.records_count - 1,
        max_timestamp,
        ..*header
    };
    rebuilt.write_sealed(&mut out);
    Ok(out)
}

struct TimestampRule {
    kind: TimestampType,
    now_ms: i64,
    before_max_ms: i64,
    after_max_ms: i64,
}

impl TimestampRule {
    /// Kafka's `validateTimestamp` for one record of timestamp `ts`.
    fn check(&self, header: &BatchHeader, ts: i64, offset_delta: i32) -> Option<String> {
        if self.kind == TimestampType::CreateTime && ts != NO_TIMESTAMP {
            let diff = i128::from(self.now_ms) - i128::from(ts);
            if diff > i128::from(self.before_max_ms) || -diff > i128::from(self.after_max_ms) {
                return Some(format!(
                    "Timestamp {ts} of message with offset {offset_delta} is out of range. The \
                     timestamp should be within [{}, {}]",
                    self.now_ms.saturating_sub(self.before_max_ms),
                    self.now_ms.saturating_add(self.after_max_ms)
                ));
            }
        } else if header.is_log_append_time() {
            return Some(format!(
                "Invalid timestamp type in message with offset {offset_delta}. Producer should \
                 not set timestamp type to LogAppendTime."
            ));
        }
        None
    }
}

/// What walking a batch's records found.
struct Walk {
    max_timestamp: i64,
    offsets_consecutive: bool,
    /// (index, offset delta) of the first record whose delta is not its index.
    first_out_of_order: (usize, i32),
}

fn walk_records(
    area: &[u8],
    header: &BatchHeader,
    rule: &TimestampRule,
) -> Result<Walk, BatchError> {
    let count = usize::try_from(header.records_count).expect("validate_batch: count > 0");
    let mut reader = Reader { buf: area, at: 0 };
    let mut walk = Walk {
        max_timestamp: NO_TIMESTAMP,
        offsets_consecutive: true,
        first_out_of_order: (0, 0),
    };
    let mut timestamp_errors = Vec::new();
    for index in 0..count {
        let record = read_record(&mut reader).map_err(|m| {
            let mut e = invalid(format!("record {index}: {m}"));
            e.record_errors.push(RecordError {
                batch_index: index as i32,
                message: m,
            });
            e
        })?;
        let ts = if header.is_log_append_time() {
            header.max_timestamp
        } else {
            header.base_timestamp.wrapping_add(record.timestamp_delta)
        };
        walk.max_timestamp = walk.max_timestamp.max(ts);
        if walk.offsets_consecutive && i64::from(record.offset_delta) != index as i64 {
            walk.offsets_consecutive = false;
            walk.first_out_of_order = (index, record.offset_delta);
        }
        if let Some(message) = rule.check(header, ts, record.offset_delta) {
            if timestamp_errors.len() < RECORD_ERRORS_MAX {
                timestamp_errors.push(RecordError {
                    batch_index: index as i32,
                    message,
                });
            }
        }
    }
    if reader.at != area.len() {
        return Err(invalid(format!(
            "Incorrect declared batch size, records still remaining: {} bytes after record {}",
            area.len() - reader.at,
            count - 1
        )));
    }
    if !timestamp_errors.is_empty() {
        let mut e = BatchError::new(
            BatchErrorKind::InvalidTimestamp,
            format!(
                "One or more records have been rejected due to invalid timestamp (first: {})",
                timestamp_errors[0].message
            ),
        );
        e.record_errors = timestamp_errors;
        return Err(e);
    }
    Ok(walk)
}

struct RecordFields {
    timestamp_delta: i64,
    offset_delta: i32,
}

/// Reads one record as Kafka's `DefaultRecord.readFrom` does; the error says what is wrong.
fn read_record(reader: &mut Reader<'_>) -> Result<RecordFields, String> {
    let length = reader.varint()?;
    let length = usize::try_from(length).map_err(|_| format!("Invalid record size {length}"))?;
    let body = reader.take(length).ok_or_else(|| {
        format!(
            "Invalid record size: expected {length} bytes in record payload, but instead the \
             buffer has only {} remaining bytes",
            reader.remaining()
        )
    })?;
    let mut body = Reader { buf: body, at: 0 };
    body.take(1).ok_or("record ends before its attributes")?;
    let timestamp_delta = body.varlong()?;
    let offset_delta = body.varint()?;
    body.nullable_bytes("key")?;
    body.nullable_bytes("value")?;
    let headers = body.varint()?;
    if headers < 0 {
        return Err(format!("Found invalid number of record headers {headers}"));
    }
    if headers as usize > body.remaining() {
        return Err(format!(
            "Found invalid number of record headers. {headers} is larger than the remaining size \
             of the buffer"
        ));
    }
    for _ in 0..headers {
        let key = body.varint()?;
        if key < 0 {
            return Err(format!("Invalid negative header key size {key}"));
        }
        body.take(key as usize)
            .ok_or("header key runs past its record")?;
        body.nullable_bytes("header value")?;
    }
    if body.remaining() != 0 {
        return Err(format!(
            "Invalid record size: expected to read {length} bytes in record payload, but \
             instead read {}",
            body.at
        ));
    }
    Ok(RecordFields {
        timestamp_delta,
        offset_delta,
    })
}

/// The records of `area` (already walked) with offset deltas 0..count-1.
fn renumber(area: &[u8], count: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(area.len() + count as usize);
    let mut reader = Reader { buf: area, at: 0 };
    let mut body_out = Vec::new();
    for index in 0..count {
        let length = reader.varint().expect("walked") as usize;
        let mut body = Reader {
            buf: reader.take(length).expect("walked"),
            at: 0,
        };
        let attributes_and_ts_start = body.at;
        body.take(1).expect("walked");
        body.varlong().expect("walked");
        let ts_end = body.at;
        body.varint().expect("walked");
        body_out.clear();
        body_out.extend_from_slice(&body.buf[attributes_and_ts_start..ts_end]);
        put_varlong(&mut body_out, i64::from(index));
        body_out.extend_from_slice(&body.buf[body.at..]);
        put_varlong(&mut out, body_out.len() as i64);
        out.extend_from_slice(&body_out);
    }
    out
}

fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    while raw >= 0x80 {
        out.push((raw as u8 & 0x7f) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

/// A cursor over record bytes; every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.at
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())?;
        let taken = &self.buf[self.at..end];
        self.at = end;
        Some(taken)
    }

    fn varlong(&mut self) -> Result<i64, String> {
        let mut raw: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .buf
                .get(self.at)
                .ok_or("varint runs past the end of its record")?;
            self.at += 1;
            raw |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err("varlong is longer than 10 bytes".into())
    }

    fn varint(&mut self) -> Result<i32, String> {
        let value = self.varlong()?;
        i32::try_from(value).map_err(|_| format!("varint {value} does not fit 32 bits"))
    }

    /// A length-prefixed field: -1 is null, other negative lengths are malformed.
    fn nullable_bytes(&mut self, what: &str) -> Result<(), String> {
        match self.varint()? {
            -1 => Ok(()),
            len if len < 0 => Err(format!("invalid {what} length {len}")),
            len => self
                .take(len as usize)
                .map(|_| ())
                .ok_or_else(|| format!("{what} of {len} bytes runs past its record")),
        }
    }
}
