//! Arbitrary bytes as a produce partition's `records` through the engine's record-batch
//! validation (the check every produced batch passes before it is appended).
//! Any panic or abort is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: sluice_net::alloc::LazyLargeAlloc = sluice_net::alloc::LazyLargeAlloc;

/// `max.message.bytes` for the target: 1 MiB (Kafka's default is about 1 MiB too).
const MESSAGE_BYTES_MAX: u32 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let _ = sluice_engine::batch::validate_batches(data, MESSAGE_BYTES_MAX);
});
