//! What record validation and each rewrite cost on this machine, per path of
//! `log_validator::validate_records`, on W1's shape (16 KiB batches of 1 KiB records of
//! random-looking text) — the figures behind BENCHMARKS.md's "Record validation" table:
//!
//! ```sh
//! cargo run --release -p sluice-engine --example record_validation
//! ```

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use sluice_engine::batch::BatchHeader;
use sluice_engine::compression::{Compression, CompressionType};
use sluice_engine::log_validator::{validate_records, BrokerCompression, RecordsConfig};
use sluice_engine::testing::{build_batch, put_test_record, seal_batch};
use sluice_engine::TimestampType;

const RECORD_BYTES: usize = 1024;
const RECORDS_PER_BATCH: usize = 15;
/// Bytes of uncompressed batches validated per measurement.
const TOTAL_BYTES: usize = 256 << 20;
const MAX_MESSAGE_BYTES: u32 = 1_048_588;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A W1-like batch of `codec`: text with some repetition, as sluice-perf's payloads.
fn batch(codec: CompressionType, seed: u64) -> Bytes {
    let words = [
        "sluice",
        "kafka",
        "record",
        "batch",
        "offset",
        "partition",
        "log",
        "epoch",
    ];
    let mut state = seed | 1;
    let mut area = BytesMut::new();
    let now = now_ms();
    for i in 0..RECORDS_PER_BATCH {
        let mut value = Vec::with_capacity(RECORD_BYTES);
        while value.len() < RECORD_BYTES {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            value.extend_from_slice(words[(state % 8) as usize].as_bytes());
            value.extend_from_slice(format!("{} ", state % 1000).as_bytes());
        }
        value.truncate(RECORD_BYTES);
        put_test_record(&mut area, (i as i64, 0), None, Some(&value), &[]);
    }
    let template = BatchHeader::parse(&build_batch(&[(None, None, now)])).unwrap();
    let header = BatchHeader {
        records_count: RECORDS_PER_BATCH as i32,
        last_offset_delta: RECORDS_PER_BATCH as i32 - 1,
        base_timestamp: now,
        max_timestamp: now,
        ..template
    };
    seal_batch(&header, &area, codec)
}

fn measure(name: &str, source: CompressionType, config: RecordsConfig) {
    let batches: Vec<Bytes> = (0..64).map(|i| batch(source, i + 1)).collect();
    let plain_bytes = batch(CompressionType::None, 1).len();
    let rounds = TOTAL_BYTES / plain_bytes;
    let start = Instant::now();
    let mut stored = 0usize;
    for i in 0..rounds {
        let b = batches[i % batches.len()].clone();
        let v = validate_records(b, MAX_MESSAGE_BYTES, &config, now_ms()).expect("valid");
        stored += v.records.len();
    }
    let seconds = start.elapsed().as_secs_f64();
    let mib = (rounds * plain_bytes) as f64 / f64::from(1 << 20);
    println!(
        "{name:<44} {:>8.0} MiB/s of records  {:>7.3} CPU-s per GiB  {:>6.0} ns per record  stored {:.2} of uncompressed",
        mib / seconds,
        seconds / (mib / 1024.0),
        seconds * 1e9 / (rounds * RECORDS_PER_BATCH) as f64,
        stored as f64 / (rounds * plain_bytes) as f64,
    );
}

fn main() {
    let keep = RecordsConfig::default();
    let into = |codec| RecordsConfig {
        compression: BrokerCompression::Codec(Compression::of(codec)),
        ..RecordsConfig::default()
    };
    let lat = RecordsConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..RecordsConfig::default()
    };
    measure("none: walk in place (W1)", CompressionType::None, keep);
    measure(
        "none, LogAppendTime: restamp (copy + CRC)",
        CompressionType::None,
        lat,
    );
    for codec in CompressionType::ALL.into_iter().skip(1) {
        measure(&format!("{codec}: decompress + walk"), codec, keep);
    }
    for codec in CompressionType::ALL.into_iter().skip(1) {
        measure(
            &format!("none -> {codec}: rebuild"),
            CompressionType::None,
            into(codec),
        );
    }
    measure(
        "gzip -> zstd: rebuild",
        CompressionType::Gzip,
        into(CompressionType::Zstd),
    );
    measure(
        "zstd -> none: rebuild",
        CompressionType::Zstd,
        into(CompressionType::None),
    );
}
