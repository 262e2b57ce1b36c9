//! `sluice-net`: bytes on the wire.
//!
//! Kafka framing ([`frame`]), the request/response codec around `kafka-protocol`
//! ([`codec`]), the bounds that keep a peer from making us allocate or buffer more than it
//! has actually sent ([`limits`]), and the global allocator that makes the codec's
//! peer-sized `Vec::with_capacity` calls harmless ([`alloc`]), and a small async Kafka
//! client for tools, perf and followers ([`client`]).
//!
//! Architecture Invariant: net knows nothing of shards or partitions' state. It turns
//! bytes into typed requests and typed responses into bytes; deciding what a request
//! means, and on which thread, is the broker's business.
//!
//! Binaries (and test binaries, and fuzz targets) that decode peer input must install
//! the allocator:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: sluice_net::alloc::LazyLargeAlloc = sluice_net::alloc::LazyLargeAlloc;
//! ```

pub mod alloc;
pub mod client;
pub mod codec;
pub mod fetch_response;
pub mod frame;
pub mod limits;
pub mod memory_pool;
pub mod sendfile;
pub mod zero_copy;

pub use codec::{
    decode_request, encode_response, peek_request_header, response_header_version, DecodeError,
    DecodedRequest, EncodeError, RequestHeaderV,
};
pub use frame::{write_frame_header, FrameError, FrameReader};

/// Unit tests decode peer-shaped input (huge claimed counts): they need the same
/// allocator the daemon runs with.
#[cfg(test)]
#[global_allocator]
static TEST_ALLOC: alloc::LazyLargeAlloc = alloc::LazyLargeAlloc;
