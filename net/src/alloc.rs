//! A global allocator that makes peer-sized capacity reservations harmless.
//!
//! # Why
//!
//! `kafka-protocol` 0.18's array decoders call `Vec::with_capacity(count)` with the count
//! the peer wrote on the wire, before reading a single element. A Produce body of a dozen
//! bytes that claims `i32::MAX` topics asks the allocator for hundreds of gigabytes; with
//! the system allocator that fails and the process aborts (`handle_alloc_error`), which
//! would let any client kill the broker.
//!
//! [`LazyLargeAlloc`] serves every request of at least [`LARGE_ALLOC_BYTES_MIN`] (with an
//! alignment `mmap` satisfies) from `mmap(MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)`.
//! Such a mapping reserves address space only: pages cost memory when first touched. The
//! decoder then runs out of input after a few elements, returns an error, and the untouched
//! reservation is unmapped. Everything else goes to [`std::alloc::System`].
//!
//! # Limits
//!
//! - Under `vm.overcommit_memory=2` (strict accounting) the kernel ignores
//!   `MAP_NORESERVE` and refuses a reservation larger than the commit limit: `mmap` fails,
//!   we return null, and the process aborts as on any OOM. Modes 0 (heuristic) and 1
//!   (always) do not account `MAP_NORESERVE` mappings. [`overcommit_refuses_lazy_reservation`]
//!   lets the daemon detect mode 2 at startup and refuse to run or warn loudly.
//! - Address space is finite (128 TiB on x86-64 with 4-level paging, and `ulimit -v`):
//!   the largest claim a decoder can make is about `u32::MAX` elements of a few hundred
//!   bytes each, i.e. below 2 TiB, so one bogus request fits.
//! - Memory that *is* touched is real. This allocator keeps a lie about capacity cheap; it
//!   does not bound what a decoder fills, which the request-size bound
//!   ([`crate::limits::REQUEST_BYTES_MAX_DEFAULT`]) does.
//!
//! Install it in every binary that decodes peer input (the daemon, tests, fuzz targets):
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: sluice_net::alloc::LazyLargeAlloc = sluice_net::alloc::LazyLargeAlloc;
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;

pub use crate::limits::LARGE_ALLOC_BYTES_MIN;
use crate::limits::PAGE_BYTES_MIN;

/// Global allocator: large blocks from lazily backed anonymous maps, the rest from
/// [`System`]. See the [module documentation](self) for why and for its limits.
#[derive(Debug, Clone, Copy, Default)]
pub struct LazyLargeAlloc;

/// Whether `layout` is served by `mmap`. Depends on the layout only, so `alloc`,
/// `realloc` and `dealloc` of one block always agree.
fn is_large(layout: Layout) -> bool {
    layout.size() >= LARGE_ALLOC_BYTES_MIN && layout.align() <= PAGE_BYTES_MIN
}

/// Maps `size_bytes` of lazily backed, zero-filled memory; null on failure.
fn map_large(size_bytes: usize) -> *mut u8 {
    // SAFETY: mmap(2) with a null hint and MAP_ANONYMOUS creates a fresh mapping that
    // aliases nothing we own; fd -1 and offset 0 are what MAP_ANONYMOUS requires.
    let address = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size_bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if address == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    address.cast()
}

/// Unmaps a block returned by [`map_large`] (or moved by `mremap`).
///
/// # Safety
/// `address` must be the start of a live mapping of `size_bytes` made by this module.
unsafe fn unmap_large(address: *mut u8, size_bytes: usize) {
    // SAFETY: by this function's contract the range is exactly one mapping we created and
    // nothing refers to it any more (GlobalAlloc::dealloc/realloc hand it back to us).
    let result = unsafe { libc::munmap(address.cast(), size_bytes) };
    // munmap of a range we mapped can only fail on a broken invariant (bad pointer or
    // size from the caller): that is memory corruption, not a recoverable error.
    assert_eq!(result, 0, "munmap({address:p}, {size_bytes}) failed");
}

/// Moves or grows a large block with `mremap(MREMAP_MAYMOVE)`; null on failure (the old
/// block is then untouched, as `GlobalAlloc::realloc` requires).
///
/// # Safety
/// `address` must be the start of a live mapping of `old_bytes` made by this module.
unsafe fn remap_large(address: *mut u8, old_bytes: usize, new_bytes: usize) -> *mut u8 {
    // SAFETY: by this function's contract the old range is one mapping we own; with
    // MREMAP_MAYMOVE the kernel either moves it whole (keeping contents and
    // MAP_NORESERVE) or fails and leaves it as it was.
    let moved = unsafe { libc::mremap(address.cast(), old_bytes, new_bytes, libc::MREMAP_MAYMOVE) };
    if moved == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    moved.cast()
}

// SAFETY: every block is either from System (and returned to System) or a private
// anonymous mapping of at least layout.size() bytes, page aligned (>= layout.align() by
// `is_large`), returned with munmap; `is_large` depends on the layout only, so the choice
// made at allocation is remade identically at dealloc/realloc.
unsafe impl GlobalAlloc for LazyLargeAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(layout) {
            return map_large(layout.size());
        }
        // SAFETY: same contract as ours (layout has non-zero size).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(layout) {
            // Anonymous mappings are zero-filled: no memset, nothing touched.
            return map_large(layout.size());
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        if is_large(layout) {
            // SAFETY: a large layout means the block came from map_large/remap_large
            // with this size (GlobalAlloc contract: same layout as at allocation).
            unsafe { unmap_large(block, layout.size()) };
            return;
        }
        // SAFETY: a small layout means the block came from System with this layout.
        unsafe { System.dealloc(block, layout) }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: GlobalAlloc::realloc guarantees new_size > 0 and that it does not
        // overflow isize when rounded up to layout.align().
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (is_large(layout), is_large(new_layout)) {
            // SAFETY: the block is a live mapping of layout.size() bytes.
            (true, true) => unsafe { remap_large(block, layout.size(), new_size) },
            // SAFETY: the block came from System with `layout`.
            (false, false) => unsafe { System.realloc(block, layout, new_size) },
            // SAFETY: the block is live with `layout` (either kind); see `move_block`.
            _ => unsafe { self.move_block(block, layout, new_layout) },
        }
    }
}

impl LazyLargeAlloc {
    /// Reallocation across the small/large boundary: allocate, copy, free.
    ///
    /// # Safety
    /// `block` must be live, allocated by `self` with `layout`.
    unsafe fn move_block(&self, block: *mut u8, layout: Layout, new_layout: Layout) -> *mut u8 {
        // SAFETY: new_layout has non-zero size (realloc contract).
        let moved = unsafe { self.alloc(new_layout) };
        if moved.is_null() {
            return moved;
        }
        let copy_bytes = layout.size().min(new_layout.size());
        // SAFETY: both blocks are live, distinct allocations of at least copy_bytes.
        unsafe { ptr::copy_nonoverlapping(block, moved, copy_bytes) };
        // SAFETY: block is live with `layout` and nothing refers to it after the copy.
        unsafe { self.dealloc(block, layout) };
        moved
    }
}

/// Whether the kernel's overcommit policy (`/proc/sys/vm/overcommit_memory` = 2, strict
/// accounting) makes [`LazyLargeAlloc`]'s reservations count against the commit limit,
/// so a peer's bogus element count can abort the process. The daemon should check this at
/// startup and refuse to run (or warn) when it is true.
pub fn overcommit_refuses_lazy_reservation() -> std::io::Result<bool> {
    let path = "/proc/sys/vm/overcommit_memory";
    let mode = std::fs::read_to_string(path)
        .map_err(|error| std::io::Error::new(error.kind(), format!("reading {path}: {error}")))?;
    Ok(mode.trim() == "2")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Allocates with `layout`, fills, reallocates to `new_size`, checks the kept prefix.
    fn check_realloc(size: usize, new_size: usize) {
        let alloc = LazyLargeAlloc;
        let layout = Layout::from_size_align(size, 8).unwrap();
        // SAFETY: layout has non-zero size; every block is used within its bounds and
        // freed once with the layout it currently has.
        unsafe {
            let block = alloc.alloc(layout);
            assert!(!block.is_null(), "alloc {size}");
            ptr::write_bytes(block, 0xa5, size);
            let grown = alloc.realloc(block, layout, new_size);
            assert!(!grown.is_null(), "realloc {size} -> {new_size}");
            let kept = size.min(new_size);
            let prefix = std::slice::from_raw_parts(grown, kept);
            assert!(prefix.iter().all(|&b| b == 0xa5), "{size} -> {new_size}");
            ptr::write_bytes(grown, 0x5a, new_size);
            alloc.dealloc(grown, Layout::from_size_align(new_size, 8).unwrap());
        }
    }

    #[test]
    fn realloc_round_trips_across_sizes() {
        let small = 100;
        let large = LARGE_ALLOC_BYTES_MIN;
        let cases = [
            (small, small * 3),
            (small, large * 2),
            (large * 2, small),
            (large, large * 5 + 17),
            (large * 5 + 17, large),
            (large - 1, large),
            (large, large - 1),
        ];
        for (size, new_size) in cases {
            check_realloc(size, new_size);
        }
    }

    #[test]
    fn large_zeroed_is_zero_and_large_alignment_falls_back() {
        let alloc = LazyLargeAlloc;
        let layout = Layout::from_size_align(3 * LARGE_ALLOC_BYTES_MIN, 64).unwrap();
        let over_aligned = Layout::from_size_align(LARGE_ALLOC_BYTES_MIN, 2 * 1024 * 1024).unwrap();
        assert!(is_large(layout));
        assert!(!is_large(over_aligned));
        // SAFETY: non-zero layouts, read within bounds, freed once with their layout.
        unsafe {
            let block = alloc.alloc_zeroed(layout);
            assert!(!block.is_null());
            assert_eq!(block as usize % PAGE_BYTES_MIN, 0);
            let bytes = std::slice::from_raw_parts(block, layout.size());
            assert!(bytes.iter().all(|&b| b == 0));
            alloc.dealloc(block, layout);

            let block = alloc.alloc(over_aligned);
            assert!(!block.is_null());
            assert_eq!(block as usize % over_aligned.align(), 0);
            alloc.dealloc(block, over_aligned);
        }
    }

    #[test]
    fn vec_growth_through_global_allocator() {
        // The test binary installs LazyLargeAlloc (see lib tests below).
        let mut bytes: Vec<u8> = Vec::new();
        for i in 0..(4 * LARGE_ALLOC_BYTES_MIN) {
            bytes.push(i as u8);
        }
        bytes.truncate(10);
        bytes.shrink_to_fit();
        assert_eq!(bytes, (0..10u8).collect::<Vec<_>>());
    }

    #[test]
    fn reserving_256_gib_costs_nothing() {
        let capacity_bytes = 256usize << 30;
        let mut huge: Vec<u8> = Vec::with_capacity(capacity_bytes);
        assert!(huge.capacity() >= capacity_bytes);
        huge.extend_from_slice(b"touched a page");
        assert_eq!(&huge[..7], b"touched");
        drop(huge);
        let zeroed = vec![0u8; capacity_bytes];
        assert_eq!(zeroed[capacity_bytes - 1], 0);
    }
}
