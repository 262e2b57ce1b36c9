//! `LogSegment`: one `.log` file of record batches and its two indexes.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use compio_driver::SharedFd;

use crate::batch::{
    check_batch_framing, BatchHeader, BATCH_HEADER_BYTES, BATCH_LOG_OVERHEAD_BYTES,
};
use crate::file_cache::{FileCache, SegmentFile};
use crate::index::{IndexMode, OffsetIndex, TimeIndex, NO_TIMESTAMP};
use crate::io::CloseSync;

pub const LOG_SUFFIX: &str = "log";
pub const INDEX_SUFFIX: &str = "index";
pub const TIME_INDEX_SUFFIX: &str = "timeindex";

/// `<dir>/<base_offset:020>.<suffix>`, Kafka's segment file naming.
pub fn segment_file_path(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    assert!(base_offset >= 0);
    dir.join(format!("{base_offset:020}.{suffix}"))
}

/// Parses `<20 digits>.log` into a base offset.
pub fn parse_segment_file_name(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Index sizing and interval for a segment (from `LogConfig`).
#[derive(Clone, Copy, Debug)]
pub struct SegmentConfig {
    pub index_interval_bytes: u32,
    pub segment_index_bytes: u32,
}

/// What a scan of a segment's batches found (recovery and index rebuild).
#[derive(Debug, Default)]
pub struct ScanOutcome {
    pub scanned_bytes: u64,
    /// Bytes after the last whole valid batch (0 when the file ends cleanly).
    pub invalid_bytes: u64,
    /// Why the scan stopped before the end of the file.
    pub reason: Option<String>,
}

/// Kafka's `LogSegment`: a `.log` file of magic v2 batches (exactly as they travel on the
/// wire, after offset assignment), its `.index` and `.timeindex`.
///
/// Lives on one shard. The active segment keeps its descriptor open; sealed segments are
/// read through the shard's `FileCache`.
#[derive(Debug)]
pub struct LogSegment {
    base_offset: i64,
    log_path: PathBuf,
    active_file: Option<SegmentFile>,
    /// Bytes reserved in the file (written or with a write in flight).
    size_bytes: u64,
    /// The offset after the last batch reserved in this segment.
    next_offset: i64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    max_timestamp: i64,
    /// The last offset of the first batch that reached `max_timestamp` (Kafka's
    /// "shallow" offset of max timestamp).
    offset_of_max_timestamp: i64,
    bytes_since_last_index_entry: u64,
    config: SegmentConfig,
}

impl LogSegment {
    /// Creates the three empty files of a new active segment (synchronously).
    pub fn create(dir: &Path, base_offset: i64, config: SegmentConfig) -> io::Result<LogSegment> {
        let log_path = segment_file_path(dir, base_offset, LOG_SUFFIX);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&log_path)?;
        let offset_index = OffsetIndex::create(
            &segment_file_path(dir, base_offset, INDEX_SUFFIX),
            base_offset,
            config.segment_index_bytes,
        )?;
        let time_index = TimeIndex::create(
            &segment_file_path(dir, base_offset, TIME_INDEX_SUFFIX),
            base_offset,
            config.segment_index_bytes,
        )?;
        Ok(LogSegment {
            base_offset,
            log_path,
            active_file: Some(SharedFd::new(file)),
            size_bytes: 0,
            next_offset: base_offset,
            offset_index,
            time_index,
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: base_offset,
            bytes_since_last_index_entry: 0,
            config,
        })
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    pub fn offset_of_max_timestamp(&self) -> i64 {
        self.offset_of_max_timestamp
    }

    pub fn is_active(&self) -> bool {
        self.active_file.is_some()
    }

    /// Whether the next append must go to a new segment: an index is full or the
    /// relative offsets of `record_count` more records would not fit u32.
    pub fn needs_roll_for_indexes(&self, last_offset: i64) -> bool {
        self.offset_index.is_full()
            || self.time_index.is_full()
            || last_offset - self.base_offset > i64::from(u32::MAX)
    }

    /// The descriptor to read or write this segment.
    pub fn file(&self, cache: &FileCache) -> io::Result<SegmentFile> {
        match &self.active_file {
            Some(file) => Ok(file.clone()),
            None => cache.open(&self.log_path),
        }
    }

    /// The active segment's descriptor (for writes and syncs).
    pub fn active_file(&self) -> &SegmentFile {
        self.active_file
            .as_ref()
            .expect("only the active segment is written")
    }

    /// Accounts one batch (its offsets already assigned) placed at `position`: indexes
    /// every `index_interval_bytes`, max timestamp, size. Kafka's `LogSegment.append` logic.
    pub fn append_batch(&mut self, header: &BatchHeader, position: u64) {
        assert_eq!(position, self.size_bytes, "batches are placed back to back");
        assert_eq!(
            header.base_offset, self.next_offset,
            "offsets are contiguous"
        );
        let total = header.total_bytes() as u64;
        assert!(
            position + total <= u64::from(u32::MAX),
            "segment positions fit u32"
        );
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.last_offset();
        }
        if self.bytes_since_last_index_entry > u64::from(self.config.index_interval_bytes)
            && !self.offset_index.is_full()
        {
            self.offset_index
                .append(header.last_offset(), position as u32);
            self.time_index
                .maybe_append(self.max_timestamp, self.offset_of_max_timestamp);
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += total;
        self.size_bytes = position + total;
        self.next_offset = header.last_offset() + 1;
    }

    /// Makes this segment inactive: final time index entry, indexes trimmed to their
    /// entries, the write descriptor handed to the cache. Returns that descriptor.
    pub fn seal(&mut self, cache: &FileCache) -> io::Result<SegmentFile> {
        self.time_index
            .maybe_append(self.max_timestamp, self.offset_of_max_timestamp);
        self.offset_index.seal()?;
        self.time_index.seal()?;
        let file = self
            .active_file
            .take()
            .expect("seal the active segment once");
        cache.insert(&self.log_path, file.clone());
        Ok(file)
    }

    /// Clean close of the active segment: trims the indexes, fdatasyncs the log.
    pub fn close(&mut self) -> io::Result<()> {
        self.close_with(CloseSync::EachFile)
    }

    /// `close`, with the fdatasyncs left to the caller's `syncfs` under
    /// [`CloseSync::Syncfs`].
    pub fn close_with(&mut self, sync: CloseSync) -> io::Result<()> {
        self.time_index
            .maybe_append(self.max_timestamp, self.offset_of_max_timestamp);
        self.offset_index.seal_with(sync)?;
        self.time_index.seal_with(sync)?;
        match &self.active_file {
            Some(file) if sync == CloseSync::EachFile => file.sync_data(),
            _ => Ok(()),
        }
    }

    /// Recovery of a segment that is not the last: after a rescan opened it as active
    /// (writable, preallocated indexes), makes it sealed. fdatasyncs the log, adds the
    /// final time index entry, trims and fdatasyncs both indexes, drops the write
    /// descriptor (reads go through the `FileCache` like any sealed segment's).
    pub fn seal_recovered(&mut self) -> io::Result<()> {
        self.close()?;
        self.active_file = None;
        Ok(())
    }

    /// Truncation (`PartitionLog::truncate_to`): keeps only the bytes before `position` (a
    /// batch boundary; the first removed batch starts there and holds `offset`). Drops the
    /// index entries of the removed batches, trims both index files to their entries and
    /// fdatasyncs them, then cuts the `.log` file and fdatasyncs it. The caller reopens the
    /// segment (as the active one) to rebuild its in-memory state from the files.
    pub fn truncate_files(&mut self, position: u64, offset: i64) -> io::Result<()> {
        assert!(position <= self.size_bytes && offset >= self.base_offset);
        let position_u32 = u32::try_from(position).expect("segment positions fit u32");
        self.offset_index.truncate_to_position(position_u32);
        self.time_index.truncate_to_offset(offset);
        self.offset_index.seal()?;
        self.time_index.seal()?;
        let with_path =
            |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", self.log_path.display()));
        let file = OpenOptions::new()
            .write(true)
            .open(&self.log_path)
            .map_err(with_path)?;
        file.set_len(position).map_err(with_path)?;
        file.sync_data().map_err(with_path)?;
        self.size_bytes = position;
        self.next_offset = offset;
        Ok(())
    }

    /// Position of the batch containing `offset`, at or after the index hint, scanning
    /// batch headers (synchronous pread) up to `end_bytes`. `None` if no batch below
    /// `end_bytes` ends at or after `offset`.
    pub fn find_batch(
        &self,
        file: &File,
        offset: i64,
        end_bytes: u64,
    ) -> io::Result<Option<(u64, BatchHeader)>> {
        let (_, position) = self.offset_index.lookup(offset);
        let mut position = u64::from(position);
        while position < end_bytes {
            let header = read_header_at(file, position, end_bytes)?;
            if header.last_offset() >= offset {
                return Ok(Some((position, header)));
            }
            position += header.total_bytes() as u64;
        }
        Ok(None)
    }

    /// The end of the whole batches from `next` (a batch start) that end by `limit`:
    /// jumps to the last indexed batch start at or below `limit`, then walks headers
    /// (at most `index_interval_bytes` worth). `limit <= end_bytes`.
    pub fn whole_batches_end(
        &self,
        file: &File,
        mut next: u64,
        limit: u64,
        end_bytes: u64,
    ) -> io::Result<u64> {
        assert!(limit <= end_bytes);
        let indexed = u64::from(self.offset_index.lookup_position(limit));
        // Index positions are batch starts; every batch before `limit` is whole.
        next = next.max(indexed);
        while next < limit {
            let header = read_header_at(file, next, end_bytes)?;
            let batch_end = next + header.total_bytes() as u64;
            if batch_end > limit {
                break;
            }
            next = batch_end;
        }
        Ok(next)
    }

    /// Position to start a timestamp search from: the index entry at or below
    /// `timestamp`, translated through the offset index.
    pub fn timestamp_search_start(&self, timestamp: i64) -> u64 {
        let (_, offset) = self.time_index.lookup(timestamp);
        u64::from(self.offset_index.lookup(offset).1)
    }
}

/// Reads and sanity-checks the batch header at `position` (synchronous pread: index
/// lookups and ListOffsets are off the append path). The batch must end by `end_bytes`.
pub fn read_header_at(file: &File, position: u64, end_bytes: u64) -> io::Result<BatchHeader> {
    let mut buf = [0u8; BATCH_HEADER_BYTES];
    file.read_exact_at(&mut buf, position)?;
    let header = BatchHeader::parse(&buf).expect("61 bytes parse");
    let min_length = (BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD_BYTES) as i32;
    if header.magic != 2
        || header.batch_length < min_length
        || position + header.total_bytes() as u64 > end_bytes
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "corrupt batch header at byte {position}: magic {} length {} (segment end {end_bytes})",
                header.magic, header.batch_length
            ),
        ));
    }
    Ok(header)
}

/// How an existing segment is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentOpen {
    /// Trust the index files; walk headers after the last index entry.
    TrustIndexes,
    /// Rebuild the indexes from a full scan, truncating an invalid tail.
    Rescan,
}

impl LogSegment {
    /// Opens an existing segment. `mode` says whether it becomes the active segment.
    /// Returns what a rescan found when one ran (`None` when the indexes were trusted).
    pub fn open(
        dir: &Path,
        base_offset: i64,
        config: SegmentConfig,
        mode: IndexMode,
        how: SegmentOpen,
    ) -> io::Result<(LogSegment, Option<ScanOutcome>)> {
        let log_path = segment_file_path(dir, base_offset, LOG_SUFFIX);
        let file = OpenOptions::new()
            .read(true)
            .write(mode == IndexMode::Active)
            .open(&log_path)?;
        let size_bytes = file.metadata()?.len();
        if size_bytes > u64::from(u32::MAX) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: {size_bytes} bytes exceeds u32 positions",
                    log_path.display()
                ),
            ));
        }
        if how == SegmentOpen::TrustIndexes {
            match Self::open_trusting(dir, base_offset, config, mode, &file, size_bytes) {
                Ok(segment) => return Ok((segment.with_file(file, mode), None)),
                Err(e)
                    if e.kind() == io::ErrorKind::InvalidData
                        || e.kind() == io::ErrorKind::NotFound
                        || e.kind() == io::ErrorKind::UnexpectedEof =>
                {
                    tracing::warn!(segment = %log_path.display(), error = %e, "rebuilding segment indexes");
                }
                Err(e) => return Err(e),
            }
        }
        let (segment, outcome) =
            Self::open_rescan(dir, base_offset, config, mode, &file, size_bytes)?;
        Ok((segment.with_file(file, mode), Some(outcome)))
    }

    fn with_file(mut self, file: File, mode: IndexMode) -> LogSegment {
        if mode == IndexMode::Active {
            self.active_file = Some(SharedFd::new(file));
        }
        self
    }

    fn open_trusting(
        dir: &Path,
        base_offset: i64,
        config: SegmentConfig,
        mode: IndexMode,
        file: &File,
        size_bytes: u64,
    ) -> io::Result<LogSegment> {
        let offset_index = OffsetIndex::open(
            &segment_file_path(dir, base_offset, INDEX_SUFFIX),
            base_offset,
            config.segment_index_bytes,
            mode,
        )?;
        let time_index = TimeIndex::open(
            &segment_file_path(dir, base_offset, TIME_INDEX_SUFFIX),
            base_offset,
            config.segment_index_bytes,
            mode,
        )?;
        let (last_indexed_offset, last_position) = offset_index.last_entry();
        let (max_timestamp, offset_of_max_timestamp) = time_index.last_entry();
        if u64::from(last_position) > size_bytes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "index points past the log end",
            ));
        }
        let mut segment = LogSegment {
            base_offset,
            log_path: segment_file_path(dir, base_offset, LOG_SUFFIX),
            active_file: None,
            size_bytes: u64::from(last_position),
            next_offset: last_indexed_offset,
            offset_index,
            time_index,
            max_timestamp,
            offset_of_max_timestamp,
            bytes_since_last_index_entry: 0,
            config,
        };
        segment.walk_tail(file, size_bytes)?;
        Ok(segment)
    }

    /// Walks batch headers from the last index entry to the end of the file, restoring
    /// `next_offset`, `size_bytes` and the max timestamp. A tail that does not parse is
    /// `InvalidData` (the caller rescans).
    fn walk_tail(&mut self, file: &File, size_bytes: u64) -> io::Result<()> {
        let mut position = self.size_bytes;
        let mut next_offset = None;
        while position < size_bytes {
            let header = read_header_at(file, position, size_bytes)?;
            if header.max_timestamp > self.max_timestamp {
                self.max_timestamp = header.max_timestamp;
                self.offset_of_max_timestamp = header.last_offset();
            }
            next_offset = Some(header.last_offset() + 1);
            position += header.total_bytes() as u64;
        }
        self.bytes_since_last_index_entry = size_bytes - self.size_bytes;
        self.size_bytes = size_bytes;
        self.next_offset = next_offset.unwrap_or(self.base_offset);
        if next_offset.is_none() && self.offset_index.entries() > 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "index entries without batches",
            ));
        }
        Ok(())
    }

    fn open_rescan(
        dir: &Path,
        base_offset: i64,
        config: SegmentConfig,
        mode: IndexMode,
        file: &File,
        size_bytes: u64,
    ) -> io::Result<(LogSegment, ScanOutcome)> {
        let log_path = segment_file_path(dir, base_offset, LOG_SUFFIX);
        let mut segment = LogSegment {
            base_offset,
            log_path,
            active_file: None,
            size_bytes: 0,
            next_offset: base_offset,
            offset_index: OffsetIndex::create(
                &segment_file_path(dir, base_offset, INDEX_SUFFIX),
                base_offset,
                config.segment_index_bytes,
            )?,
            time_index: TimeIndex::create(
                &segment_file_path(dir, base_offset, TIME_INDEX_SUFFIX),
                base_offset,
                config.segment_index_bytes,
            )?,
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: base_offset,
            bytes_since_last_index_entry: 0,
            config,
        };
        let outcome = segment.rescan(file, size_bytes)?;
        if mode == IndexMode::Active && outcome.invalid_bytes > 0 {
            file.set_len(outcome.scanned_bytes)?;
            file.sync_data()?;
        }
        if mode == IndexMode::Sealed {
            if outcome.invalid_bytes > 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: sealed segment is corrupt at byte {}: {}",
                        segment.log_path.display(),
                        outcome.scanned_bytes,
                        outcome.reason.as_deref().unwrap_or("")
                    ),
                ));
            }
            segment
                .time_index
                .maybe_append(segment.max_timestamp, segment.offset_of_max_timestamp);
            segment.offset_index.seal()?;
            segment.time_index.seal()?;
        }
        Ok((segment, outcome))
    }

    /// Reads every batch (lengths, magic, CRC-32C, offset continuity), indexing the valid
    /// ones; truncates the file after the last valid batch (fdatasynced).
    fn rescan(&mut self, file: &File, size_bytes: u64) -> io::Result<ScanOutcome> {
        let mut outcome = ScanOutcome::default();
        let mut buf = Vec::new();
        let mut position = 0u64;
        while position < size_bytes {
            match self.read_valid_batch(file, position, size_bytes, &mut buf)? {
                Ok(header) => {
                    self.append_batch(&header, position);
                    position += header.total_bytes() as u64;
                }
                Err(reason) => {
                    outcome.reason = Some(format!("at byte {position}: {reason}"));
                    break;
                }
            }
        }
        outcome.scanned_bytes = position;
        outcome.invalid_bytes = size_bytes - position;
        Ok(outcome)
    }

    /// Reads the batch at `position` whole and checks it; `Ok(Err(reason))` when the
    /// bytes there are not a valid next batch.
    fn read_valid_batch(
        &self,
        file: &File,
        position: u64,
        size_bytes: u64,
        buf: &mut Vec<u8>,
    ) -> io::Result<Result<BatchHeader, String>> {
        let remaining = size_bytes - position;
        if remaining < BATCH_LOG_OVERHEAD_BYTES as u64 {
            return Ok(Err(format!("partial batch of {remaining} bytes")));
        }
        let mut prefix = [0u8; BATCH_LOG_OVERHEAD_BYTES];
        file.read_exact_at(&mut prefix, position)?;
        let batch_length = i32::from_be_bytes(prefix[8..12].try_into().expect("4 bytes"));
        let total = i64::from(batch_length) + BATCH_LOG_OVERHEAD_BYTES as i64;
        if batch_length < 0 || total as u64 > remaining {
            return Ok(Err(format!(
                "batch length {batch_length} with {remaining} bytes left"
            )));
        }
        buf.resize(total as usize, 0);
        file.read_exact_at(buf, position)?;
        let header = match check_batch_framing(buf) {
            Ok(header) => header,
            Err(e) => return Ok(Err(e.message)),
        };
        if header.base_offset != self.next_offset
            || header.records_count <= 0
            || i64::from(header.records_count) != i64::from(header.last_offset_delta) + 1
        {
            return Ok(Err(format!(
                "batch base offset {} count {} where offset {} was expected",
                header.base_offset, header.records_count, self.next_offset
            )));
        }
        Ok(Ok(header))
    }
}
