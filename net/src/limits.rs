//! Every bound of the wire layer, kept together, with the assertions that tie them.

/// Bytes of the big-endian `i32` size that precedes every Kafka request and response.
pub const FRAME_SIZE_PREFIX_BYTES: usize = 4;

/// Default largest request body a client may send: Kafka's `socket.request.max.bytes`
/// default (104857600 = 100 MiB).
pub const REQUEST_BYTES_MAX_DEFAULT: usize = 100 * 1024 * 1024;

/// Largest value a Kafka frame size can carry at all (`i32::MAX`).
pub const FRAME_BYTES_MAX: usize = i32::MAX as usize;

/// Most spare capacity a [`crate::frame::FrameReader`] adds to its buffer before one
/// read: memory follows the bytes a peer actually sent, never the size it claims.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Allocations at least this large are served by `mmap(MAP_NORESERVE)` in
/// [`crate::alloc::LazyLargeAlloc`], so untouched capacity costs no memory.
pub const LARGE_ALLOC_BYTES_MIN: usize = 1024 * 1024;

/// Smallest page size of any Linux target: `mmap` returns memory aligned at least this
/// much, so layouts with `align <= PAGE_BYTES_MIN` may be served by it.
pub const PAGE_BYTES_MIN: usize = 4096;

const _: () = {
    assert!(REQUEST_BYTES_MAX_DEFAULT <= FRAME_BYTES_MAX);
    assert!(READ_CHUNK_BYTES >= FRAME_SIZE_PREFIX_BYTES);
    assert!(READ_CHUNK_BYTES <= REQUEST_BYTES_MAX_DEFAULT);
    // A read chunk stays on the heap: the reader's growth is not mmap churn.
    assert!(READ_CHUNK_BYTES < LARGE_ALLOC_BYTES_MIN);
    assert!(LARGE_ALLOC_BYTES_MIN % PAGE_BYTES_MIN == 0);
    assert!(PAGE_BYTES_MIN.is_power_of_two());
};
