//! Arbitrary bytes as a produce partition's `records` through the engine's record-batch
//! and record validation (`log_validator`: what every produced batch passes before it is
//! appended; bit 1 of the first byte picks a rewriting topic config).
//! Any panic or abort is a finding.
//!
//! Random bytes almost never carry a correct CRC-32C, which would keep the fuzzer at the
//! first check. So when the first input byte is odd, the rest is walked as batches and
//! each batch's CRC is recomputed before validation, letting the fuzzer reach the record
//! count, producer and compression checks; even first bytes test the raw input.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: sluice_net::alloc::LazyLargeAlloc = sluice_net::alloc::LazyLargeAlloc;

/// `max.message.bytes` for the target: 1 MiB (Kafka's default is about 1 MiB too).
const MESSAGE_BYTES_MAX: u32 = 1 << 20;

/// Record batch v2 layout: batchLength at 8..12 counts the bytes after offset 12; the
/// CRC at 17..21 covers everything from 21 to the batch's end.
const LENGTH_AT: usize = 8;
const LENGTH_END: usize = 12;
const CRC_AT: usize = 17;
const CRC_END: usize = 21;

/// Rewrites each whole batch's CRC so it matches its contents.
fn fix_crcs(records: &mut [u8]) {
    let mut start = 0;
    while records.len() - start >= CRC_END {
        let batch = &mut records[start..];
        let length = i32::from_be_bytes(batch[LENGTH_AT..LENGTH_END].try_into().unwrap());
        let Some(end) = usize::try_from(length).ok().map(|n| n + LENGTH_END) else {
            return;
        };
        if end < CRC_END || end > batch.len() {
            return;
        }
        let crc = crc32c::crc32c(&batch[CRC_END..end]);
        batch[CRC_AT..CRC_END].copy_from_slice(&crc.to_be_bytes());
        start += end;
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut records = rest.to_vec();
    if mode & 1 == 1 {
        fix_crcs(&mut records);
    }
    let _ = sluice_engine::batch::validate_batches(&records, MESSAGE_BYTES_MAX);
    // Every record too (decompressing, rebuilding and restamping where the config says).
    let configs = [
        sluice_engine::RecordsConfig::default(),
        sluice_engine::RecordsConfig {
            compression: sluice_engine::BrokerCompression::Codec(
                sluice_engine::compression::Compression::of(
                    sluice_engine::compression::CompressionType::Zstd,
                ),
            ),
            timestamp_type: sluice_engine::TimestampType::LogAppendTime,
            ..sluice_engine::RecordsConfig::default()
        },
    ];
    let config = &configs[usize::from(mode >> 1 & 1)];
    let records = bytes::Bytes::from(records);
    let _ = sluice_engine::log_validator::validate_records(records, MESSAGE_BYTES_MAX, config, 0);
});
