//! Kafka's sparse segment indexes, memory-mapped: `OffsetIndex` (`.index`) and
//! `TimeIndex` (`.timeindex`).
//!
//! Index files are mapped with memmap2 and their descriptors closed right after mapping:
//! a mapping costs no file descriptor. The active segment's indexes are preallocated to
//! `segment.index.bytes` (Kafka's `log.index.size.max.bytes`) rounded down to whole
//! entries; they are trimmed to their entries when the segment rolls or the log closes.
//!
//! The preallocation is sparse (as Kafka's `setLength`): a write through the mapping into a
//! hole needs a block, and on a full file system the kernel answers that page fault with
//! SIGBUS, which would kill the broker. So blocks are allocated (fallocate(2)) a chunk ahead
//! of the entries written; when that finds no space the entry is left out (the index is
//! sparse: a lookup scans a little more of the log) and the next one tries again.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use memmap2::{MmapMut, MmapOptions};

use crate::io::CloseSync;

/// Blocks are allocated ahead of the entries this much at a time: a page, so an index holds
/// no more blocks than Kafka's sparse one (an open and a fallocate per 512 offset entries,
/// about 2 MiB of log with Kafka's `index.interval.bytes`).
const ALLOCATE_CHUNK_BYTES: usize = 4 << 10;

/// Whether an index still grows (preallocated, writable) or is sealed (trimmed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexMode {
    Active,
    Sealed,
}

/// Maps the whole of `file` read-write and shared.
fn map_file(file: &File, len_bytes: usize) -> io::Result<Option<MmapMut>> {
    if len_bytes == 0 {
        return Ok(None);
    }
    // SAFETY: mmap(2) of an index file inside a log dir we hold Kafka's `.lock` on: no
    // other process resizes it, and this process only truncates it (set_len) after the
    // mapping was dropped (`IndexFile::seal` and `IndexFile::drop` order), so the mapped
    // range stays backed by the file; writes go only where blocks were allocated
    // (`IndexFile::allocate`), so a full file system cannot SIGBUS a write either.
    let map = unsafe { MmapOptions::new().len(len_bytes).map_mut(file)? };
    // Entries are touched one at a time: without MADV_RANDOM a fault on a preallocated
    // (sparse) index reads ahead a large folio of zeros, which `seal`'s truncation then has
    // to drop again — most of a clean stop's CPU at thousands of partitions (BENCHMARKS W5).
    map.advise(memmap2::Advice::Random)?;
    Ok(Some(map))
}

/// A memory-mapped file of fixed-size entries; the entry count is tracked in memory (the
/// tail of a preallocated file is zeros).
#[derive(Debug)]
struct IndexFile {
    path: PathBuf,
    map: Option<MmapMut>,
    entries: usize,
    entry_bytes: usize,
    /// The first bytes known to have blocks behind them (written before, or fallocated).
    allocated_bytes: usize,
}

impl IndexFile {
    fn create(path: &Path, entry_bytes: usize, max_index_bytes: u32) -> io::Result<IndexFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        let len_bytes = max_index_bytes as usize / entry_bytes * entry_bytes;
        file.set_len(len_bytes as u64)?;
        let map = map_file(&file, len_bytes)?;
        Ok(IndexFile {
            path: path.to_owned(),
            map,
            entries: 0,
            entry_bytes,
            allocated_bytes: 0,
        })
    }

    /// Opens an existing index whose entries fill the file (trimmed at roll or close).
    /// A length that is not a whole number of entries is `InvalidData` (rebuild it).
    fn open(
        path: &Path,
        entry_bytes: usize,
        max_index_bytes: u32,
        mode: IndexMode,
    ) -> io::Result<IndexFile> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len_bytes = file.metadata()?.len() as usize;
        // Bytes past the last whole entry (the MSRV predates `is_multiple_of`).
        let stray_bytes = len_bytes % entry_bytes;
        if stray_bytes > 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: {len_bytes} bytes is not a multiple of the {entry_bytes}-byte entry",
                    path.display()
                ),
            ));
        }
        let entries = len_bytes / entry_bytes;
        let mut mapped_bytes = len_bytes;
        if mode == IndexMode::Active {
            let capacity_bytes = max_index_bytes as usize / entry_bytes * entry_bytes;
            mapped_bytes = mapped_bytes.max(capacity_bytes);
            file.set_len(mapped_bytes as u64)?;
        }
        let map = map_file(&file, mapped_bytes)?;
        Ok(IndexFile {
            path: path.to_owned(),
            map,
            entries,
            entry_bytes,
            // Its entries were written; what lies past them may be a hole.
            allocated_bytes: len_bytes / ALLOCATE_CHUNK_BYTES * ALLOCATE_CHUNK_BYTES,
        })
    }

    fn capacity(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len() / self.entry_bytes)
    }

    fn is_full(&self) -> bool {
        self.entries >= self.capacity()
    }

    fn entry(&self, index: usize) -> &[u8] {
        assert!(index < self.entries);
        let map = self.map.as_ref().expect("an index with entries is mapped");
        &map[index * self.entry_bytes..(index + 1) * self.entry_bytes]
    }

    /// Appends `entry`; false when no block could be allocated for it (left out, see the
    /// module docs).
    fn push(&mut self, entry: &[u8]) -> bool {
        assert_eq!(entry.len(), self.entry_bytes);
        assert!(
            !self.is_full(),
            "{}: append to a full index",
            self.path.display()
        );
        let at = self.entries * self.entry_bytes;
        if at + self.entry_bytes > self.allocated_bytes && !self.allocate(at + self.entry_bytes) {
            return false;
        }
        let map = self.map.as_mut().expect("a non-full index is mapped");
        map[at..at + self.entry_bytes].copy_from_slice(entry);
        self.entries += 1;
        true
    }

    /// Allocates blocks for the file's bytes up to `end`, rounded up to a chunk (within the
    /// mapped length). False when the file system has no room (or the file cannot be
    /// opened): then nothing may be written past `allocated_bytes` through the mapping.
    fn allocate(&mut self, end: usize) -> bool {
        use std::os::fd::AsRawFd;
        let mapped = self.map.as_ref().map_or(0, |m| m.len());
        let to = end.div_ceil(ALLOCATE_CHUNK_BYTES) * ALLOCATE_CHUNK_BYTES;
        let to = to.min(mapped).max(end);
        let from = self.allocated_bytes;
        let Ok(file) = OpenOptions::new().write(true).open(&self.path) else {
            return false;
        };
        let (Ok(offset), Ok(len)) = (
            libc::off_t::try_from(from),
            libc::off_t::try_from(to - from),
        ) else {
            return false;
        };
        // SAFETY: fallocate(2) with mode 0 on a descriptor we own, inside the file's length
        // (the mapping's): it allocates blocks and changes neither the size nor the data.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, offset, len) };
        if rc != 0 {
            return false;
        }
        self.allocated_bytes = to;
        true
    }

    /// Keeps only the first `entries` entries (recovery truncation).
    fn truncate_entries(&mut self, entries: usize) {
        assert!(entries <= self.entries);
        self.entries = entries;
    }

    /// Unmaps, trims the file to its entries (fdatasynced unless `sync` defers it) and maps
    /// it again read-write.
    fn seal(&mut self, sync: CloseSync) -> io::Result<()> {
        self.map = None;
        let file = OpenOptions::new().read(true).write(true).open(&self.path)?;
        let len_bytes = self.entries * self.entry_bytes;
        file.set_len(len_bytes as u64)?;
        if sync == CloseSync::EachFile {
            file.sync_data()?;
        }
        self.map = map_file(&file, len_bytes)?;
        Ok(())
    }
}

/// Bytes per `.index` entry.
pub const OFFSET_INDEX_ENTRY_BYTES: usize = 8;
/// Bytes per `.timeindex` entry.
pub const TIME_INDEX_ENTRY_BYTES: usize = 12;
/// Kafka's "no timestamp" value; also the timestamp an empty time index reports.
pub const NO_TIMESTAMP: i64 = -1;

/// Kafka's `.index` file: a sparse map from offset to the byte position of a batch in the
/// segment's `.log`.
///
/// Format: 8-byte entries, `relative_offset u32 BE` (offset - segment base offset, the
/// LAST offset of the indexed batch, as Kafka writes it) then `position u32 BE` (the
/// batch's first byte). Strictly increasing in both fields. Not checksummed: after an
/// unclean shutdown the active segment's index is rebuilt from the log; a file that is not
/// a multiple of 8 bytes or is not increasing is rebuilt too.
#[derive(Debug)]
pub struct OffsetIndex {
    base_offset: i64,
    file: IndexFile,
}

impl OffsetIndex {
    pub fn create(path: &Path, base_offset: i64, max_index_bytes: u32) -> io::Result<Self> {
        let file = IndexFile::create(path, OFFSET_INDEX_ENTRY_BYTES, max_index_bytes)?;
        Ok(OffsetIndex { base_offset, file })
    }

    /// Opens and sanity-checks an index; `InvalidData` means "rebuild it".
    pub fn open(
        path: &Path,
        base_offset: i64,
        max_index_bytes: u32,
        mode: IndexMode,
    ) -> io::Result<Self> {
        let file = IndexFile::open(path, OFFSET_INDEX_ENTRY_BYTES, max_index_bytes, mode)?;
        let index = OffsetIndex { base_offset, file };
        index.sanity_check()?;
        Ok(index)
    }

    fn sanity_check(&self) -> io::Result<()> {
        for i in 1..self.entries() {
            let (prev_offset, prev_position) = self.entry(i - 1);
            let (offset, position) = self.entry(i);
            if offset <= prev_offset || position <= prev_position {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: entry {i} is not increasing", self.file.path.display()),
                ));
            }
        }
        Ok(())
    }

    pub fn entries(&self) -> usize {
        self.file.entries
    }

    pub fn is_full(&self) -> bool {
        self.file.is_full()
    }

    /// Entry `index` as (absolute offset, position).
    pub fn entry(&self, index: usize) -> (i64, u32) {
        let raw = self.file.entry(index);
        let relative = u32::from_be_bytes(raw[0..4].try_into().expect("4 bytes"));
        let position = u32::from_be_bytes(raw[4..8].try_into().expect("4 bytes"));
        (self.base_offset + i64::from(relative), position)
    }

    /// The last entry, or (base offset, 0) when empty.
    pub fn last_entry(&self) -> (i64, u32) {
        match self.entries() {
            0 => (self.base_offset, 0),
            n => self.entry(n - 1),
        }
    }

    pub fn append(&mut self, offset: i64, position: u32) {
        let relative = offset - self.base_offset;
        assert!(
            (0..=i64::from(u32::MAX)).contains(&relative),
            "offset {offset} out of segment"
        );
        if self.entries() > 0 {
            let (last_offset, last_position) = self.last_entry();
            assert!(
                offset > last_offset && position > last_position,
                "index must increase"
            );
        }
        let mut entry = [0u8; OFFSET_INDEX_ENTRY_BYTES];
        entry[0..4].copy_from_slice(&(relative as u32).to_be_bytes());
        entry[4..8].copy_from_slice(&position.to_be_bytes());
        // Left out when no block could be allocated for it (see the module docs).
        let _ = self.file.push(&entry);
    }

    /// The largest entry with offset <= `offset`, or (base offset, 0).
    pub fn lookup(&self, offset: i64) -> (i64, u32) {
        let count = self.entries_with(|entry_offset, _| entry_offset <= offset);
        match count {
            0 => (self.base_offset, 0),
            n => self.entry(n - 1),
        }
    }

    /// The largest indexed position <= `position_bytes`, or 0.
    pub fn lookup_position(&self, position_bytes: u64) -> u32 {
        match self.entries_with(|_, position| u64::from(position) <= position_bytes) {
            0 => 0,
            n => self.entry(n - 1).1,
        }
    }

    /// Drops entries whose position is at or past `position_bytes`.
    pub fn truncate_to_position(&mut self, position_bytes: u32) {
        let keep = self.entries_with(|_, position| position < position_bytes);
        self.file.truncate_entries(keep);
    }

    /// How many leading entries satisfy `pred` (which must be monotone: true then false).
    fn entries_with(&self, pred: impl Fn(i64, u32) -> bool) -> usize {
        let (mut low, mut high) = (0, self.entries());
        while low < high {
            let mid = (low + high) / 2;
            let (offset, position) = self.entry(mid);
            if pred(offset, position) {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low
    }

    pub fn seal(&mut self) -> io::Result<()> {
        self.file.seal(CloseSync::EachFile)
    }

    /// `seal` without the fdatasync (see [`CloseSync::Syncfs`]).
    pub fn seal_with(&mut self, sync: CloseSync) -> io::Result<()> {
        self.file.seal(sync)
    }
}

/// Kafka's `.timeindex` file: a sparse map from timestamp to offset.
///
/// Format: 12-byte entries, `timestamp i64 BE` then `relative_offset u32 BE` (offset -
/// segment base offset, the last offset of the batch that raised the maximum). An entry
/// is added only when the segment's max timestamp grows, so timestamps strictly increase.
/// Not checksummed; rebuilt with the offset index after an unclean shutdown.
#[derive(Debug)]
pub struct TimeIndex {
    base_offset: i64,
    file: IndexFile,
}

impl TimeIndex {
    pub fn create(path: &Path, base_offset: i64, max_index_bytes: u32) -> io::Result<Self> {
        let file = IndexFile::create(path, TIME_INDEX_ENTRY_BYTES, max_index_bytes)?;
        Ok(TimeIndex { base_offset, file })
    }

    pub fn open(
        path: &Path,
        base_offset: i64,
        max_index_bytes: u32,
        mode: IndexMode,
    ) -> io::Result<Self> {
        let file = IndexFile::open(path, TIME_INDEX_ENTRY_BYTES, max_index_bytes, mode)?;
        let index = TimeIndex { base_offset, file };
        for i in 1..index.entries() {
            let (prev_ts, prev_offset) = index.entry(i - 1);
            let (ts, offset) = index.entry(i);
            if ts <= prev_ts || offset < prev_offset {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: entry {i} is not increasing", path.display()),
                ));
            }
        }
        Ok(index)
    }

    pub fn entries(&self) -> usize {
        self.file.entries
    }

    pub fn is_full(&self) -> bool {
        self.file.is_full()
    }

    /// Entry `index` as (timestamp, absolute offset).
    pub fn entry(&self, index: usize) -> (i64, i64) {
        let raw = self.file.entry(index);
        let timestamp = i64::from_be_bytes(raw[0..8].try_into().expect("8 bytes"));
        let relative = u32::from_be_bytes(raw[8..12].try_into().expect("4 bytes"));
        (timestamp, self.base_offset + i64::from(relative))
    }

    /// The last entry, or (NO_TIMESTAMP, base offset) when empty.
    pub fn last_entry(&self) -> (i64, i64) {
        match self.entries() {
            0 => (NO_TIMESTAMP, self.base_offset),
            n => self.entry(n - 1),
        }
    }

    /// Appends (timestamp, offset) if `timestamp` is larger than the last entry's and the
    /// index has room.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64) {
        let (last_timestamp, last_offset) = self.last_entry();
        if timestamp <= last_timestamp || self.is_full() {
            return;
        }
        assert!(
            offset >= last_offset,
            "time index offsets must not decrease"
        );
        let relative = offset - self.base_offset;
        assert!(
            (0..=i64::from(u32::MAX)).contains(&relative),
            "offset {offset} out of segment"
        );
        let mut entry = [0u8; TIME_INDEX_ENTRY_BYTES];
        entry[0..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..12].copy_from_slice(&(relative as u32).to_be_bytes());
        // Left out when no block could be allocated for it (see the module docs).
        let _ = self.file.push(&entry);
    }

    /// The largest entry with timestamp <= `timestamp`, or (NO_TIMESTAMP, base offset).
    pub fn lookup(&self, timestamp: i64) -> (i64, i64) {
        let (mut low, mut high) = (0, self.entries());
        while low < high {
            let mid = (low + high) / 2;
            if self.entry(mid).0 <= timestamp {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        match low {
            0 => (NO_TIMESTAMP, self.base_offset),
            n => self.entry(n - 1),
        }
    }

    /// Drops entries whose offset is at or past `offset` (recovery truncation).
    pub fn truncate_to_offset(&mut self, offset: i64) {
        let keep = (0..self.entries())
            .take_while(|&i| self.entry(i).1 < offset)
            .count();
        self.file.truncate_entries(keep);
    }

    pub fn seal(&mut self) -> io::Result<()> {
        self.file.seal(CloseSync::EachFile)
    }

    /// `seal` without the fdatasync (see [`CloseSync::Syncfs`]).
    pub fn seal_with(&mut self, sync: CloseSync) -> io::Result<()> {
        self.file.seal(sync)
    }
}
