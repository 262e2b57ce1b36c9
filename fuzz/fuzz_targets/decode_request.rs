//! Arbitrary bytes as one request frame body (after the size prefix) through
//! `sluice_net::decode_request`, serving every version `kafka-protocol` knows.
//! Any panic or abort is a finding: the broker decodes exactly this from every peer.
#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use libfuzzer_sys::fuzz_target;

/// The daemon's allocator: peer-claimed element counts become free reservations.
#[global_allocator]
static ALLOC: sluice_net::alloc::LazyLargeAlloc = sluice_net::alloc::LazyLargeAlloc;

fn permissive(api_key: ApiKey) -> Option<(i16, i16)> {
    let range = api_key.valid_versions();
    Some((range.min, range.max))
}

fuzz_target!(|data: &[u8]| {
    let _ = sluice_net::decode_request(Bytes::copy_from_slice(data), permissive);
});
