//! `PartitionLog`: Kafka's `UnifiedLog` for one partition — segments, appends through
//! io_uring, reads as file slices, ListOffsets lookups, flush bookkeeping.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

use crate::batch::{record_times, BatchError, BATCH_PREFIX_BYTES};
use crate::file_cache::{FileCache, SegmentFile};
use crate::ids::{LeaderEpoch, TopicId};
use crate::index::{IndexMode, NO_TIMESTAMP};
use crate::io::CloseSync;
use crate::leader_epoch::LeaderEpochFileCache;
use crate::logdir::{fsync_dir, parse_partition_dir_name, CREATE_DIR_SUFFIX};
use crate::producer_state::{ProducerCheck, ProducerError, ProducerStateManager, SnapshotSync};
use crate::segment::{
    parse_segment_file_name, read_header_at, segment_file_path, LogSegment, SegmentConfig,
    SegmentOpen, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX,
};

mod disk_full;
mod epochs;
pub use epochs::{LastFetchedEpoch, OffsetTruncationState};
mod follower;
mod high_watermark;
mod legacy_offsets;
mod retention;
mod truncate;
pub use follower::FollowerAppendError;
pub use high_watermark::{FetchIsolation, HighWatermarkMode};
use retention::{clamp_log_start_offset, read_log_start_offset};
pub use retention::{DeleteRecordsError, RetentionOutcome, LOG_START_OFFSET_FILE};
pub use truncate::{TruncateError, TruncateReason};

pub use crate::io::{FileSlice, FlushedUpTo, PendingAppend, SyncJob, WrittenAppend};

/// Kafka's `log.segment.bytes` default: 1 GiB.
pub const SEGMENT_BYTES_DEFAULT: u64 = 1 << 30;
/// Kafka's `log.index.interval.bytes` default.
pub const INDEX_INTERVAL_BYTES_DEFAULT: u32 = 4096;
/// Kafka's `log.index.size.max.bytes` default: 10 MiB.
pub const SEGMENT_INDEX_BYTES_DEFAULT: u32 = 10 << 20;
/// Kafka's `message.max.bytes` default.
pub const MAX_MESSAGE_BYTES_DEFAULT: u32 = 1_048_588;
/// Segment positions are u32 in the index; Kafka caps segments at `i32::MAX`.
pub const SEGMENT_BYTES_MAX: u64 = i32::MAX as u64;
/// Kafka's `partition.metadata` file in every partition directory.
pub const PARTITION_METADATA_FILE: &str = "partition.metadata";

const _: () = assert!(SEGMENT_BYTES_DEFAULT <= SEGMENT_BYTES_MAX);
const _: () = assert!((MAX_MESSAGE_BYTES_DEFAULT as u64) < SEGMENT_BYTES_DEFAULT);

/// Per-partition log settings (Kafka's topic-level keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when an append would grow the active segment past this.
    pub segment_bytes: u64,
    /// `index.interval.bytes`: bytes appended between two offset index entries.
    pub index_interval_bytes: u32,
    /// `segment.index.bytes`: preallocated size of each index file.
    pub segment_index_bytes: u32,
    /// `max.message.bytes`: the largest batch accepted.
    pub max_message_bytes: u32,
    /// `retention.ms`: sealed segments whose largest timestamp is older than this are
    /// deleted by `enforce_retention`; `None` keeps them forever (Kafka's -1).
    pub retention_ms: Option<i64>,
    /// `retention.bytes`: sealed segments are deleted, oldest first, while the log is
    /// larger than this; `None` = no size limit (Kafka's -1).
    pub retention_bytes: Option<u64>,
    /// `segment.ms`: an append rolls the active segment once its first batch's timestamp
    /// is older than this; `None` = never roll by time.
    pub segment_ms: Option<i64>,
    /// `compression.type`, `message.timestamp.*`: how appends are validated and stored
    /// (`log_validator`).
    pub records: crate::log_validator::RecordsConfig,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            index_interval_bytes: INDEX_INTERVAL_BYTES_DEFAULT,
            segment_index_bytes: SEGMENT_INDEX_BYTES_DEFAULT,
            max_message_bytes: MAX_MESSAGE_BYTES_DEFAULT,
            retention_ms: None,
            retention_bytes: None,
            segment_ms: None,
            records: crate::log_validator::RecordsConfig::default(),
        }
    }
}

impl LogConfig {
    /// Checks the bounds Kafka enforces on these keys.
    pub fn check(&self) -> io::Result<()> {
        let problem = if self.segment_bytes == 0 || self.segment_bytes > SEGMENT_BYTES_MAX {
            Some(format!(
                "segment.bytes {} must be in 1..={SEGMENT_BYTES_MAX}",
                self.segment_bytes
            ))
        } else if self.segment_ms.is_some_and(|ms| ms < 1) {
            Some(format!(
                "segment.ms {:?} must be at least 1",
                self.segment_ms
            ))
        } else if self.segment_index_bytes < 12 {
            Some(format!(
                "segment.index.bytes {} must be at least 12",
                self.segment_index_bytes
            ))
        } else {
            None
        };
        match problem {
            Some(problem) => Err(io::Error::new(io::ErrorKind::InvalidInput, problem)),
            None => Ok(()),
        }
    }

    fn segment_config(&self) -> SegmentConfig {
        SegmentConfig {
            index_interval_bytes: self.index_interval_bytes,
            segment_index_bytes: self.segment_index_bytes,
        }
    }
}

/// How to open a partition after a restart (see [`crate::logdir::Shutdown::recovery`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// The log dir had Kafka's `.kafka_cleanshutdown` marker: trust the index files.
    Clean,
    /// Unclean shutdown: rescan batch by batch every segment from the one holding
    /// `recovery_point` (the offset below which the log was known fsynced, from the log
    /// dir's `recovery-point-offset-checkpoint`; 0 rescans the whole log).
    Full { recovery_point: i64 },
}

/// What opening a partition found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments in the log after opening.
    pub segments: usize,
    /// Segments read batch by batch (CRC-32C, offsets, lengths) and their indexes rebuilt.
    pub rescanned_segments: usize,
    /// Bytes of valid batches read by those rescans (0 when the indexes were trusted).
    pub scanned_bytes: u64,
    /// Bytes cut from the log: the invalid tail of the segment where the rescan stopped
    /// plus every byte of the later segments deleted because they followed a hole.
    pub truncated_bytes: u64,
    /// Segments deleted because they followed a hole.
    pub deleted_segments: usize,
    /// The log end offset after a truncation.
    pub truncated_to_offset: Option<i64>,
    /// Why the log was cut (the segment file and what was wrong there).
    pub reason: Option<String>,
}

/// KIP-74: whether a read returns the first batch whole even if it exceeds `max_bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstBatch {
    /// The first batch is returned whole (so consumers always progress).
    Whole,
    /// Only batches within `max_bytes`; may return an empty slice.
    WithinLimit,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("offset out of range: the log holds [{log_start_offset}, {log_end_offset})")]
    OffsetOutOfRange {
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("log read failed: {0}")]
    Io(#[from] io::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("invalid record batch: {0}")]
    Batch(#[from] BatchError),
    #[error("log append failed: {0}")]
    Io(#[from] io::Error),
    #[error("the log is offline after a failed write")]
    Offline,
    /// The producer fields break the idempotent producer's rules (sequence or epoch).
    #[error("{0}")]
    Producer(#[from] ProducerError),
    /// The records of one append exceed `segment_bytes` (Kafka's RecordBatchTooLarge).
    #[error("{records_bytes} bytes of records exceed the segment size {segment_bytes}")]
    LargerThanSegment {
        records_bytes: u64,
        segment_bytes: u64,
    },
    /// A leader append (a producer's or the group coordinator's) on a replica that follows
    /// (`become_follower`): only the leader writes new records, and a stale writer must not
    /// fork the log (Kafka: NOT_LEADER_OR_FOLLOWER).
    #[error("this replica follows another leader: it takes only the leader's batches")]
    NotLeader,
}

/// What `PartitionLog::prepare_append` decided.
#[derive(Debug)]
pub enum AppendOutcome {
    /// Offsets assigned and positions reserved: write it, then `complete_append`.
    Write(PendingAppend),
    /// A retry of batches already appended (same producer id, epoch and sequence range as
    /// one of the producer's last five batches): nothing to write; the answer is the
    /// ORIGINAL offsets. It may be still in flight in the same group-commit round, so
    /// answer it only once the writes prepared before it have completed.
    Duplicate { base_offset: i64, last_offset: i64 },
}

impl AppendOutcome {
    /// The pending write; panics on a duplicate (for callers that append without
    /// producer ids, such as tests).
    pub fn into_pending(self) -> PendingAppend {
        match self {
            AppendOutcome::Write(pending) => pending,
            AppendOutcome::Duplicate { base_offset, .. } => {
                panic!("append at {base_offset} is a duplicate, not a write")
            }
        }
    }
}

/// Where the visible log ends: the offset and its byte position in its segment.
#[derive(Clone, Copy, Debug)]
struct LogEnd {
    offset: i64,
    segment_base: i64,
    position: u64,
}

/// A rolled segment whose fdatasync (log and indexes) is owed to the next `SyncJob`.
#[derive(Debug)]
struct RollSync {
    file: SegmentFile,
    index_paths: Vec<PathBuf>,
    /// The first offset of the next segment: the roll sync is ready once the log end
    /// offset reached it (every write into the rolled segment completed).
    end_offset: i64,
}

/// Kafka's `UnifiedLog` for one partition: an ordered set of `LogSegment`s, the last one
/// active. Lives on one shard; `!Send` (shares the shard's `FileCache` through `Rc`).
///
/// Appends are split in three so that I/O never borrows the log: `prepare_append`
/// (validate, assign offsets, reserve file positions, update indexes), `PendingAppend::write`
/// (io_uring writes), `complete_append` (make visible). Readers see up to
/// `log_end_offset`, which only advances in `complete_append`.
pub struct PartitionLog {
    dir: PathBuf,
    topic: String,
    partition: i32,
    topic_id: TopicId,
    config: LogConfig,
    files: Rc<FileCache>,
    segments: BTreeMap<i64, LogSegment>,
    /// The next offset to assign (covers prepared but unwritten appends).
    next_offset: i64,
    log_end: LogEnd,
    /// Everything below this offset is known durable (fdatasynced).
    recovery_point: i64,
    last_flush_ms: i64,
    roll_syncs: Vec<RollSync>,
    dir_sync_owed: DirSync,
    offline: Option<String>,
    /// Set when a write failed for lack of space (ENOSPC, EDQUOT): appends are refused,
    /// reads go on, and `recover_after_disk_full` resumes appends once space is back.
    disk_full: Option<String>,
    /// Idempotent producers' state; covers every prepared append (`next_offset`).
    producer_state: ProducerStateManager,
    /// Kafka's log start offset: at least the first segment's base; DeleteRecords moves it
    /// inside a segment (persisted in `LOG_START_OFFSET_FILE`).
    log_start_offset: i64,
    /// The active segment's rolling timestamp for `segment.ms` (its first batch's max
    /// timestamp); `None` until known (read back lazily after open).
    active_rolling_ms: Option<i64>,
    /// `SyncJob`s handed out and not yet `mark_flushed`: while any runs, retention deletes
    /// nothing (a job may hold a rolled segment's index paths).
    syncs_in_flight: u32,
    /// Kafka's `LeaderEpochFileCache` (`leader-epoch-checkpoint`).
    leader_epochs: LeaderEpochFileCache,
    /// The epoch `prepare_append` stamps into every batch (`become_leader`).
    leader_epoch: LeaderEpoch,
    /// `become_follower` until the next `become_leader`: leader appends are refused
    /// (`AppendError::NotLeader`). False for a log that was never replicated.
    following: bool,
    /// See `log/high_watermark.rs`; <= `log_end.offset`.
    high_watermark: i64,
    high_watermark_mode: HighWatermarkMode,
    /// Where a high-watermark read stops, looked up lazily (`read_bound`).
    high_watermark_end: Option<LogEnd>,
    /// Truncations so far: a `SyncJob` prepared before one does not move the recovery point.
    truncations: u64,
    /// `truncate_to` calls below the high watermark (`TruncateReason::UncleanLeaderElection`).
    unclean_truncations: u64,
    /// Offsets cut by `TruncateReason::UncleanLeaderElection` truncations.
    unclean_truncated_offsets: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DirSync {
    Owed,
    Done,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn invalid_data(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

impl PartitionLog {
    /// Creates `<log_dir>/<topic>-<partition>` with Kafka's `partition.metadata` and an
    /// empty segment at offset 0; fsyncs the files, the new dir and `log_dir`.
    pub fn create(
        log_dir: &Path,
        topic: &str,
        partition: i32,
        topic_id: TopicId,
        config: LogConfig,
        files: Rc<FileCache>,
    ) -> io::Result<PartitionLog> {
        Self::create_with(
            log_dir,
            (topic, partition),
            topic_id,
            config,
            files,
            &|_| Ok(()),
        )
    }

    /// `create`, with `extra` writing files of the caller's (a topic's config) into the new
    /// directory before it appears: the directory is built as `<hash of name>-create`
    /// (`CREATE_DIR_SUFFIX`, skipped and removed by the startup scan), fsynced, then renamed
    /// into place, so a crash leaves either no partition or one with all its files.
    pub fn create_with(
        log_dir: &Path,
        (topic, partition): (&str, i32),
        topic_id: TopicId,
        config: LogConfig,
        files: Rc<FileCache>,
        extra: &dyn Fn(&Path) -> io::Result<()>,
    ) -> io::Result<PartitionLog> {
        config.check()?;
        let name = format!("{topic}-{partition}");
        if parse_partition_dir_name(&name).is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name}: not a legal topic name and partition"),
            ));
        }
        let dir = log_dir.join(&name);
        let with_path = |p: &Path| {
            let p = p.display().to_string();
            move |e: io::Error| io::Error::new(e.kind(), format!("{p}: {e}"))
        };
        if dir.exists() {
            let e = io::Error::from(io::ErrorKind::AlreadyExists);
            return Err(with_path(&dir)(e));
        }
        // A short fixed-length name: `<name>-create` could pass NAME_MAX for the longest
        // legal topic names (249 bytes plus the partition).
        let staging = log_dir.join(format!(
            "{:016x}{CREATE_DIR_SUFFIX}",
            crate::hash::fnv1a64(name.as_bytes())
        ));
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(with_path(&staging))?;
        }
        fs::create_dir(&staging).map_err(with_path(&staging))?;
        write_partition_metadata(&staging, topic_id)?;
        extra(&staging)?;
        fsync_dir(&staging)?;
        fs::rename(&staging, &dir).map_err(with_path(&dir))?;
        let segment = LogSegment::create(&dir, 0, config.segment_config())?;
        segment.active_file().sync_data()?;
        // Kafka writes an empty `leader-epoch-checkpoint` with a new partition.
        let (leader_epochs, _) = LeaderEpochFileCache::open(&dir)?;
        leader_epochs.write()?;
        fsync_dir(&dir)?;
        fsync_dir(log_dir)?;
        Ok(Self::assemble(
            dir,
            (topic.to_owned(), partition),
            topic_id,
            config,
            files,
            (vec![segment], leader_epochs),
        ))
    }

    fn assemble(
        dir: PathBuf,
        (topic, partition): (String, i32),
        topic_id: TopicId,
        config: LogConfig,
        files: Rc<FileCache>,
        (segments, leader_epochs): (Vec<LogSegment>, LeaderEpochFileCache),
    ) -> PartitionLog {
        let active = segments.last().expect("a log has an active segment");
        assert!(active.is_active());
        let log_end = LogEnd {
            offset: active.next_offset(),
            segment_base: active.base_offset(),
            position: active.size_bytes(),
        };
        let first_base = segments[0].base_offset();
        let segments = segments.into_iter().map(|s| (s.base_offset(), s)).collect();
        PartitionLog {
            topic,
            partition,
            topic_id,
            config,
            files,
            segments,
            next_offset: log_end.offset,
            log_end,
            // Durable up to the end: `create` fdatasynced its empty segment, `open` either
            // trusted a clean close or fdatasynced what it rescanned (see `open`).
            recovery_point: log_end.offset,
            last_flush_ms: now_ms(),
            roll_syncs: Vec::new(),
            dir_sync_owed: DirSync::Done,
            offline: None,
            disk_full: None,
            producer_state: ProducerStateManager::new(&dir, log_end.offset),
            log_start_offset: first_base,
            active_rolling_ms: None,
            syncs_in_flight: 0,
            // A single node's partitions, and Kafka's first epoch of a new partition, are 0.
            leader_epoch: leader_epochs.latest_epoch().unwrap_or(LeaderEpoch(0)),
            following: false,
            leader_epochs,
            high_watermark: log_end.offset,
            high_watermark_mode: HighWatermarkMode::FollowsLogEnd,
            high_watermark_end: None,
            truncations: 0,
            unclean_truncations: 0,
            unclean_truncated_offsets: 0,
            dir,
        }
    }

    /// Opens an existing partition dir.
    ///
    /// With `Recovery::Full { recovery_point }` every segment from the one holding
    /// `recovery_point` (the last whose base offset is <= it; all of them when it is below
    /// the first base) to the end is rescanned batch by batch (lengths, CRC-32C, offset
    /// continuity within and across segments) and its indexes are rebuilt. At the first
    /// bad batch, or where a segment ends short of the next segment's base offset, that
    /// segment is truncated (file and indexes) and becomes the active one, and every later
    /// segment is deleted: its data follows a hole. Every rescanned segment is fdatasynced.
    ///
    /// Segments before the recovery point's segment are trusted (indexes included):
    /// `mark_flushed` only moves the recovery point past a rolled segment once a `SyncJob`
    /// fdatasynced that segment's log and indexes, and the broker checkpoints
    /// `recovery_point()`, so everything below the checkpointed offset reached the disk
    /// before the checkpoint named it. (A trusted segment found corrupt is an error: that
    /// is a failing disk, not a torn write.)
    ///
    /// With `Recovery::Clean` the index files are trusted and only the batch headers after
    /// the active segment's last index entry are walked (a tail that does not parse falls
    /// back to a rescan of that segment).
    ///
    /// Either way `recovery_point()` starts at the log end offset: after a clean shutdown
    /// `close` fdatasynced everything; after a full recovery everything from the rescan
    /// start was read back, cut to valid batches and fdatasynced here (the read alone
    /// would not do: after a process crash without a power loss it may come from dirty
    /// pages that never reached the disk).
    pub fn open(
        partition_dir: &Path,
        config: LogConfig,
        recovery: Recovery,
        files: Rc<FileCache>,
    ) -> io::Result<(PartitionLog, RecoveryReport)> {
        config.check()?;
        let name = partition_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        let (topic, partition) = parse_partition_dir_name(name).ok_or_else(|| {
            invalid_data(format!(
                "{}: not a <topic>-<partition> dir",
                partition_dir.display()
            ))
        })?;
        let topic_id = read_partition_metadata(partition_dir)?;
        let (segments, report) = open_segments(partition_dir, config, recovery)?;
        let (leader_epochs, checkpoint) = LeaderEpochFileCache::open(partition_dir)?;
        // The kept rescanned segments are the last ones: their batches re-assign epochs.
        let rescanned_from = (report.rescanned_segments > 0).then(|| {
            segments[segments.len() - report.rescanned_segments.min(segments.len())].base_offset()
        });
        let mut log = Self::assemble(
            partition_dir.to_owned(),
            (topic, partition),
            topic_id,
            config,
            files,
            (segments, leader_epochs),
        );
        if let Some(start) = read_log_start_offset(partition_dir)? {
            log.log_start_offset = clamp_log_start_offset(
                partition_dir,
                start,
                log.log_start_offset,
                log.log_end.offset,
            );
        }
        log.load_leader_epochs(checkpoint, rescanned_from)?;
        log.rebuild_producer_state()?;
        if report.truncated_to_offset.is_some() {
            tracing::warn!(
                dir = %partition_dir.display(),
                truncated_bytes = report.truncated_bytes,
                log_end_offset = log.log_end.offset,
                reason = report.reason.as_deref().unwrap_or(""),
                deleted_segments = report.deleted_segments,
                "truncated a torn or corrupt log tail"
            );
        }
        Ok((log, report))
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub fn topic_id(&self) -> TopicId {
        self.topic_id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// The first offset readers may see: the first segment's base, or higher after
    /// DeleteRecords.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// End of the appended-and-written log: what readers may see.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end.offset
    }

    /// The next offset `prepare_append` assigns (>= `log_end_offset`).
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Bytes in all segments (including appends prepared but not yet written).
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(LogSegment::size_bytes).sum()
    }

    pub fn is_offline(&self) -> bool {
        self.offline.is_some()
    }

    /// Why the log is offline (the failed write or the failed log dir), if it is.
    pub fn offline_reason(&self) -> Option<&str> {
        self.offline.as_deref()
    }

    /// Takes the log offline until restart because its log dir failed (Kafka's log dir
    /// failure): appends are refused (`AppendError::Offline`), reads fail, nothing more
    /// is written or synced. A log already offline keeps its first reason.
    pub fn take_offline(&mut self, reason: &str) {
        if self.offline.is_none() {
            tracing::error!(
                dir = %self.dir.display(),
                reason,
                "taking the partition offline until restart"
            );
            self.offline = Some(reason.to_string());
        }
    }

    /// Messages written but not yet covered by an fdatasync (Kafka's unflushed messages).
    pub fn unflushed_messages(&self) -> u64 {
        (self.log_end.offset - self.recovery_point) as u64
    }

    /// The offset below which everything is fdatasynced (log, indexes and the directory
    /// entries): what `mark_flushed` recorded, the log end offset after `open`, 0 for a
    /// new log. This is what the broker writes to the log dir's
    /// `recovery-point-offset-checkpoint` and passes back as `Recovery::Full` after a crash.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    /// Wall-clock ms of the last `mark_flushed` (or of open/create).
    pub fn last_flush_ms(&self) -> i64 {
        self.last_flush_ms
    }

    fn active(&self) -> &LogSegment {
        self.segments
            .values()
            .next_back()
            .expect("a log has an active segment")
    }

    fn active_mut(&mut self) -> &mut LogSegment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log has an active segment")
    }
}

/// The bytes of `segment` before `bound` (a log end or a high watermark's position).
fn end_within(segment: &LogSegment, bound: &LogEnd) -> u64 {
    use std::cmp::Ordering;
    match segment.base_offset().cmp(&bound.segment_base) {
        Ordering::Less => segment.size_bytes(),
        Ordering::Equal => bound.position,
        Ordering::Greater => 0,
    }
}

/// Lists `<20 digits>.log` files, ascending by base offset.
fn list_segment_bases(dir: &Path) -> io::Result<Vec<i64>> {
    let mut bases = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(base) = entry.file_name().to_str().and_then(parse_segment_file_name) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

fn open_segments(
    dir: &Path,
    config: LogConfig,
    recovery: Recovery,
) -> io::Result<(Vec<LogSegment>, RecoveryReport)> {
    let segment_config = config.segment_config();
    let bases = list_segment_bases(dir)?;
    let mut report = RecoveryReport::default();
    if bases.is_empty() {
        tracing::warn!(dir = %dir.display(), "no segment files; starting an empty log at 0");
        let segment = LogSegment::create(dir, 0, segment_config)?;
        fsync_dir(dir)?;
        report.segments = 1;
        return Ok((vec![segment], report));
    }
    let (trusted, rest) = match recovery {
        Recovery::Clean => bases.split_at(bases.len() - 1),
        Recovery::Full { recovery_point } => {
            // The segment holding the recovery point: the last base at or below it.
            let at_or_below = bases.partition_point(|&base| base <= recovery_point);
            bases.split_at(at_or_below.saturating_sub(1))
        }
    };
    let mut segments = Vec::with_capacity(bases.len());
    for &base in trusted {
        let (segment, _) = LogSegment::open(
            dir,
            base,
            segment_config,
            IndexMode::Sealed,
            SegmentOpen::TrustIndexes,
        )?;
        segments.push(segment);
    }
    match recovery {
        Recovery::Clean => {
            let active = open_active_trusting(dir, rest[0], segment_config, &mut report)?;
            segments.push(active);
        }
        Recovery::Full { .. } => {
            segments.extend(rescan_segments(dir, rest, segment_config, &mut report)?);
        }
    }
    report.segments = segments.len();
    Ok((segments, report))
}

/// Clean open of the last segment: trusts its indexes (a tail that does not parse is
/// rescanned and cut, which the report says).
fn open_active_trusting(
    dir: &Path,
    base: i64,
    segment_config: SegmentConfig,
    report: &mut RecoveryReport,
) -> io::Result<LogSegment> {
    let how = SegmentOpen::TrustIndexes;
    let (active, outcome) = LogSegment::open(dir, base, segment_config, IndexMode::Active, how)?;
    if let Some(outcome) = outcome {
        report.rescanned_segments = 1;
        report.scanned_bytes = outcome.scanned_bytes;
        if outcome.invalid_bytes > 0 {
            report.truncated_bytes = outcome.invalid_bytes;
            report.truncated_to_offset = Some(active.next_offset());
            report.reason = outcome
                .reason
                .map(|r| format!("{}: {r}", active.log_path().display()));
        }
    }
    Ok(active)
}

/// Rescans `bases` (ascending, the last segment included) as described on
/// `PartitionLog::open`; returns the segments kept, the last one active.
fn rescan_segments(
    dir: &Path,
    bases: &[i64],
    segment_config: SegmentConfig,
    report: &mut RecoveryReport,
) -> io::Result<Vec<LogSegment>> {
    let mut segments = Vec::with_capacity(bases.len());
    for (i, &base) in bases.iter().enumerate() {
        let how = SegmentOpen::Rescan;
        let (mut segment, outcome) =
            LogSegment::open(dir, base, segment_config, IndexMode::Active, how)?;
        let outcome = outcome.expect("a rescan reports what it found");
        report.rescanned_segments += 1;
        report.scanned_bytes += outcome.scanned_bytes;
        let next_base = bases.get(i + 1).copied();
        let hole = match (outcome.reason, next_base) {
            (Some(reason), _) if outcome.invalid_bytes > 0 => Some(reason),
            (_, Some(next)) if next != segment.next_offset() => Some(format!(
                "the segment ends at offset {} but the next one starts at {next}",
                segment.next_offset()
            )),
            _ => None,
        };
        if let Some(reason) = hole {
            // The kept bytes must be durable before the later segments go (a truncation
            // was fdatasynced by the rescan; a short segment still needs it).
            segment.active_file().sync_data()?;
            let later = &bases[i + 1..];
            report.truncated_bytes += outcome.invalid_bytes + delete_segments(dir, later)?;
            report.deleted_segments = later.len();
            report.truncated_to_offset = Some(segment.next_offset());
            report.reason = Some(format!("{}: {reason}", segment.log_path().display()));
            segments.push(segment);
            return Ok(segments);
        }
        match next_base {
            Some(_) => segment.seal_recovered()?,
            None => segment.active_file().sync_data()?,
        }
        segments.push(segment);
    }
    Ok(segments)
}

/// Deletes the `.log`, `.index` and `.timeindex` files of the segments at `bases` (they
/// follow a hole), then fsyncs the dir. Returns the bytes of their `.log` files.
///
/// Crash safety: the segment before them was already truncated and fdatasynced; if this
/// stops halfway, the next recovery (the checkpoint has not moved) finds the same hole,
/// as that segment now ends short of the next base, and deletes the rest.
fn delete_segments(dir: &Path, bases: &[i64]) -> io::Result<u64> {
    let mut deleted_bytes = 0;
    for &base in bases {
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX, LOG_SUFFIX] {
            let path = segment_file_path(dir, base, suffix);
            let with_path =
                |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
            if suffix == LOG_SUFFIX {
                deleted_bytes += fs::metadata(&path).map_err(with_path)?.len();
            }
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(with_path(e)),
                _ => {}
            }
        }
        tracing::warn!(dir = %dir.display(), base_offset = base, "deleted a segment after a hole");
    }
    fsync_dir(dir)?;
    Ok(deleted_bytes)
}

/// Writes Kafka's `partition.metadata` ("version: 0\ntopic_id: <id>\n") through a
/// temporary file, fsynced and renamed into place.
fn write_partition_metadata(dir: &Path, topic_id: TopicId) -> io::Result<()> {
    let path = dir.join(PARTITION_METADATA_FILE);
    let tmp = dir.join(format!("{PARTITION_METADATA_FILE}.tmp"));
    let text = format!("version: 0\ntopic_id: {}\n", topic_id.to_kafka_string());
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    file.write_all_at(text.as_bytes(), 0)?;
    file.sync_all()?;
    fs::rename(&tmp, &path)?;
    Ok(())
}

/// Reads Kafka's `partition.metadata`: version 0 and the topic id.
fn read_partition_metadata(dir: &Path) -> io::Result<TopicId> {
    let path = dir.join(PARTITION_METADATA_FILE);
    let text = fs::read_to_string(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let bad = |what: &str| invalid_data(format!("{}: {what}", path.display()));
    let mut version = None;
    let mut topic_id = None;
    for line in text.lines() {
        match line.split_once(':').map(|(k, v)| (k.trim(), v.trim())) {
            Some(("version", v)) => version = Some(v.to_owned()),
            Some(("topic_id", v)) => topic_id = TopicId::from_kafka_string(v),
            _ => return Err(bad(&format!("unexpected line {line:?}"))),
        }
    }
    if version.as_deref() != Some("0") {
        return Err(bad("version is not 0"));
    }
    topic_id.ok_or_else(|| bad("no valid topic_id"))
}

/// Offsets of one prepared append, for `prepare_append`'s bookkeeping.
struct Assigned {
    bufs: Vec<Bytes>,
    base_offset: i64,
    next_offset: i64,
}

impl PartitionLog {
    /// Validates all batches in `records` (nothing is reserved if one fails), assigns
    /// offsets by rewriting `baseOffset` and `partitionLeaderEpoch` (outside the CRC)
    /// WITHOUT copying the record bytes: each batch becomes two iovecs, a rewritten
    /// 16-byte prefix and `records.slice(16..len)`. Reserves the file positions, updates
    /// the next offset, the indexes and the max timestamp. Rolls the segment first when
    /// the records would push it past `segment_bytes` (or an index is full); the rolled
    /// segment's fdatasync and the dir fsync are owed to the next `SyncJob`.
    ///
    /// Several appends may be prepared before their writes complete; callers complete them
    /// in prepare order.
    ///
    /// Batches with a producer id are checked against the producer state first
    /// (`producer_state` module): a retry of one of the producer's last five batches is
    /// `AppendOutcome::Duplicate` with the original offsets (nothing reserved); a sequence
    /// gap or an old epoch is `AppendError::Producer`. The state is updated here, at
    /// prepare time, so pipelined appends of one producer check against each other; a
    /// failed write takes the whole log offline.
    pub fn prepare_append(&mut self, records: Bytes) -> Result<AppendOutcome, AppendError> {
        if let Some(refused) = self.append_refused() {
            return Err(refused);
        }
        if self.following {
            return Err(AppendError::NotLeader);
        }
        let validated = crate::log_validator::validate_records(
            records,
            self.config.max_message_bytes,
            &self.config.records,
            now_ms(),
        )?;
        let (records, headers) = (validated.records, validated.headers);
        if records.len() as u64 > self.config.segment_bytes {
            return Err(AppendError::LargerThanSegment {
                records_bytes: records.len() as u64,
                segment_bytes: self.config.segment_bytes,
            });
        }
        if let ProducerCheck::Duplicate(batch) = self.producer_state.check(&headers)? {
            tracing::info!(
                dir = %self.dir.display(),
                base_offset = batch.first_offset,
                "a producer retried batches already appended; answering with their offsets"
            );
            return Ok(AppendOutcome::Duplicate {
                base_offset: batch.first_offset,
                last_offset: batch.last_offset,
            });
        }
        let record_count: i64 = headers
            .iter()
            .map(|h| i64::from(h.last_offset_delta) + 1)
            .sum();
        let max_timestamp = headers.iter().map(|h| h.max_timestamp).max().unwrap_or(-1);
        self.maybe_roll(
            (records.len() as u64, max_timestamp),
            self.next_offset + record_count - 1,
        )?;
        let segment_base = self.active().base_offset();
        let position = self.active().size_bytes();
        let file = self.active().active_file().clone();
        if self.active().size_bytes() == 0 {
            self.active_rolling_ms = Some(headers[0].max_timestamp);
        }
        // The first append of a new leader epoch records where it starts.
        let leader_epoch = self.leader_epoch;
        self.leader_epochs.assign(leader_epoch, self.next_offset)?;
        let assigned = self.assign(&records, &headers, leader_epoch.0);
        assert_eq!(assigned.next_offset - assigned.base_offset, record_count);
        let end_position = self.active().size_bytes();
        assert_eq!(end_position - position, records.len() as u64);
        self.next_offset = assigned.next_offset;
        assert_eq!(self.producer_state.map_end_offset(), self.next_offset);
        let mut pending = PendingAppend::new(
            file,
            position,
            assigned.bufs,
            (assigned.base_offset, assigned.next_offset - 1),
            (segment_base, end_position),
        );
        pending.log_append_time_ms = validated.log_append_time_ms;
        Ok(AppendOutcome::Write(pending))
    }

    /// Rewrites each batch's prefix, accounts it in the active segment and the producer
    /// state.
    fn assign(
        &mut self,
        records: &Bytes,
        headers: &[crate::batch::BatchHeader],
        leader_epoch: i32,
    ) -> Assigned {
        let base_offset = self.next_offset;
        let mut next_offset = base_offset;
        let mut prefixes = BytesMut::with_capacity(BATCH_PREFIX_BYTES * headers.len());
        let mut bufs = Vec::with_capacity(2 * headers.len());
        let mut at = 0usize;
        let segment = self
            .segments
            .values_mut()
            .next_back()
            .expect("a log has an active segment");
        let producers = &mut self.producer_state;
        for header in headers {
            let total = header.total_bytes();
            let mut assigned = *header;
            assigned.base_offset = next_offset;
            assigned.partition_leader_epoch = leader_epoch;
            prefixes.put_i64(assigned.base_offset);
            prefixes.put_i32(assigned.batch_length);
            prefixes.put_i32(leader_epoch);
            bufs.push(prefixes.split().freeze());
            bufs.push(records.slice(at + BATCH_PREFIX_BYTES..at + total));
            let position = segment.size_bytes();
            segment.append_batch(&assigned, position);
            producers.update(&assigned);
            next_offset = assigned.last_offset() + 1;
            at += total;
        }
        assert_eq!(at, records.len());
        Assigned {
            bufs,
            base_offset,
            next_offset,
        }
    }

    /// `records` is (bytes, largest timestamp) of the append about to be placed.
    fn maybe_roll(&mut self, records: (u64, i64), last_offset: i64) -> io::Result<()> {
        let (records_bytes, max_timestamp) = records;
        let active = self.active();
        if active.size_bytes() == 0 {
            assert!(
                records_bytes <= u64::from(u32::MAX),
                "an append fits u32 positions"
            );
            return Ok(());
        }
        let full = active.size_bytes() + records_bytes > self.config.segment_bytes;
        if full
            || active.needs_roll_for_indexes(last_offset)
            || self.roll_due_by_time(max_timestamp)?
        {
            self.roll()?;
        }
        Ok(())
    }

    /// Seals the active segment and starts a new one at `next_offset` (files created
    /// synchronously). A failure to seal takes the log offline.
    fn roll(&mut self) -> io::Result<()> {
        let base = self.next_offset;
        let segment = LogSegment::create(&self.dir, base, self.config.segment_config())?;
        let files = Rc::clone(&self.files);
        let old = self.active_mut();
        let old_base = old.base_offset();
        let file = match old.seal(&files) {
            Ok(file) => file,
            Err(e) => {
                self.fail_append(&e);
                return Err(e);
            }
        };
        self.roll_syncs.push(RollSync {
            file,
            index_paths: vec![
                segment_file_path(&self.dir, old_base, INDEX_SUFFIX),
                segment_file_path(&self.dir, old_base, TIME_INDEX_SUFFIX),
            ],
            end_offset: base,
        });
        self.dir_sync_owed = DirSync::Owed;
        self.segments.insert(base, segment);
        self.active_rolling_ms = None;
        // Kafka snapshots the producer state at every roll, named by the new base offset.
        assert_eq!(self.producer_state.map_end_offset(), base);
        if let Err(e) = self.producer_state.take_snapshot(SnapshotSync::No) {
            tracing::warn!(dir = %self.dir.display(), "producer state snapshot failed: {e}");
        }
        tracing::debug!(dir = %self.dir.display(), base_offset = base, "rolled segment");
        Ok(())
    }

    /// After its write completed: makes the append visible (advances `log_end_offset`).
    /// Must be called in prepare order.
    pub fn complete_append(&mut self, written: WrittenAppend) {
        if !self.accepts_appends() {
            return;
        }
        assert_eq!(
            written.base_offset, self.log_end.offset,
            "appends complete in order"
        );
        assert!(written.last_offset < self.next_offset);
        let (segment_base, end_position) = written.end();
        assert!(segment_base >= self.log_end.segment_base);
        self.log_end = LogEnd {
            offset: written.last_offset + 1,
            segment_base,
            position: end_position,
        };
        self.high_watermark_after_append();
        // A durable write moves the recovery point only when it continues durable data and
        // nothing else is owed (a new segment's directory entry, a rolled segment's sync):
        // RWF_DSYNC syncs the written range, not earlier dirty pages.
        if written.durable()
            && self.recovery_point >= written.base_offset
            && self.dir_sync_owed == DirSync::Done
            && self.roll_syncs.is_empty()
        {
            self.recovery_point = self.log_end.offset;
            self.last_flush_ms = now_ms();
        }
    }

    /// A failed write: the log goes offline; every later append returns
    /// `AppendError::Offline` and every read `ReadError::Io`. A write that failed for lack
    /// of space only refuses appends until `recover_after_disk_full` (module `disk_full`).
    pub fn fail_append(&mut self, err: &io::Error) {
        if disk_full::is_disk_full(err) {
            self.disk_full_after(err);
            return;
        }
        tracing::error!(
            dir = %self.dir.display(),
            error = %err,
            "log write failed; taking the partition offline"
        );
        self.offline = Some(err.to_string());
    }

    fn offline_error(&self) -> Option<io::Error> {
        let reason = self.offline.as_ref()?;
        Some(io::Error::other(format!(
            "{}: log is offline after: {reason}",
            self.dir.display()
        )))
    }

    /// What to fdatasync to make everything written so far durable, plus owed roll syncs
    /// and the dir fsync. `None` if nothing is pending.
    pub fn sync_job(&mut self) -> Option<SyncJob> {
        if self.offline.is_some() {
            return None;
        }
        let upto = self.log_end.offset;
        let (ready, owed): (Vec<RollSync>, Vec<RollSync>) = self
            .roll_syncs
            .drain(..)
            .partition(|r| r.end_offset <= upto);
        self.roll_syncs = owed;
        let mut job = SyncJob::new(FlushedUpTo {
            offset: upto,
            truncations: self.truncations,
        });
        for roll in ready {
            job.add_file(roll.file);
            roll.index_paths.into_iter().for_each(|p| job.add_index(p));
        }
        if upto > self.recovery_point {
            let segment = &self.segments[&self.log_end.segment_base];
            match segment.file(&self.files) {
                Ok(file) => job.add_file(file),
                Err(e) => {
                    self.fail_append(&e);
                    return None;
                }
            }
        }
        if self.dir_sync_owed == DirSync::Owed {
            job.add_dir(self.dir.clone());
            self.dir_sync_owed = DirSync::Done;
        }
        let job = (!job.is_empty()).then_some(job);
        self.syncs_in_flight += u32::from(job.is_some());
        job
    }

    /// True when a rolled segment (or the directory after a roll) still waits for its fsync
    /// and everything it holds has been written, so `sync_job` would include it.
    pub fn roll_sync_due(&self) -> bool {
        self.offline.is_none()
            && (self.dir_sync_owed == DirSync::Owed
                || self
                    .roll_syncs
                    .iter()
                    .any(|r| r.end_offset <= self.log_end.offset))
    }

    /// Records that a `SyncJob` finished.
    pub fn mark_flushed(&mut self, upto: FlushedUpTo) {
        self.syncs_in_flight = self.syncs_in_flight.saturating_sub(1);
        if upto.truncations != self.truncations {
            // Prepared before a truncation: what it synced may have been cut and rewritten.
            return;
        }
        assert!(upto.offset <= self.log_end.offset);
        self.recovery_point = self.recovery_point.max(upto.offset);
        self.last_flush_ms = now_ms();
    }
}

impl PartitionLog {
    /// The idempotent producers' state (covers every prepared append).
    pub fn producer_state(&self) -> &ProducerStateManager {
        &self.producer_state
    }

    /// On open: the newest usable snapshot at or below the log end offset, then the batch
    /// headers after it replayed into the state (no decompression).
    fn rebuild_producer_state(&mut self) -> io::Result<()> {
        let end_offset = self.log_end.offset;
        let mut state = ProducerStateManager::load(&self.dir, self.log_start_offset(), end_offset)?;
        let from = state.map_end_offset();
        let mut replayed = 0u64;
        self.walk_headers(from, |header| {
            if header.base_offset >= state.map_end_offset() {
                state.update(header);
                replayed += 1;
            }
            Ok(())
        })?;
        state.advance_to(end_offset);
        if replayed > 0 {
            tracing::info!(
                dir = %self.dir.display(),
                from_offset = from,
                batches = replayed,
                producers = state.producer_count(),
                "rebuilt producer state from the log"
            );
        }
        self.producer_state = state;
        Ok(())
    }

    /// Calls `f` with the header of every visible batch from the one holding `from` to the
    /// log end, in offset order (synchronous preads of 61 bytes; no decompression).
    fn walk_headers(
        &self,
        from: i64,
        mut f: impl FnMut(&crate::batch::BatchHeader) -> io::Result<()>,
    ) -> io::Result<()> {
        let first = self
            .segments
            .range(..=from)
            .next_back()
            .map_or(from, |(b, _)| *b);
        for segment in self.segments.range(first..).map(|(_, s)| s) {
            let end = self.visible_end(segment);
            let file = segment.file(&self.files)?;
            let mut position = match segment.find_batch(&file, from, end)? {
                Some((position, _)) => position,
                None => continue,
            };
            while position < end {
                let header = read_header_at(&file, position, end)?;
                f(&header)?;
                position += header.total_bytes() as u64;
            }
        }
        Ok(())
    }

    /// The bytes of `segment` readers may see.
    fn visible_end(&self, segment: &LogSegment) -> u64 {
        end_within(segment, &self.log_end)
    }

    /// Finds the batch containing `fetch_offset` (sparse index lookup, then batch headers
    /// read with pread), returns whole batches from there within one segment up to
    /// `max_bytes` (the first one whole with `FirstBatch::Whole`; with
    /// `FirstBatch::WithinLimit` an oversized first batch gives an empty slice).
    /// `fetch_offset == log_end_offset` gives `Ok(None)`; outside
    /// `[log_start_offset, log_end_offset]` gives `OffsetOutOfRange`. Never returns bytes
    /// past the log end offset's position, nor, with `FetchIsolation::HighWatermark`, a
    /// batch at or past the high watermark (a fetch from there gives `Ok(None)`, as Kafka
    /// answers a consumer ahead of the high watermark with no records and no error).
    pub fn read(
        &mut self,
        fetch_offset: i64,
        max_bytes: u32,
        first: FirstBatch,
        isolation: FetchIsolation,
    ) -> Result<Option<FileSlice>, ReadError> {
        if let Some(e) = self.offline_error() {
            return Err(ReadError::Io(e));
        }
        let log_end_offset = self.log_end.offset;
        if fetch_offset == log_end_offset {
            return Ok(None);
        }
        let log_start_offset = self.log_start_offset();
        if fetch_offset < log_start_offset || fetch_offset > log_end_offset {
            return Err(ReadError::OffsetOutOfRange {
                log_start_offset,
                log_end_offset,
            });
        }
        let bound = self.read_bound(isolation)?;
        if fetch_offset >= bound.offset {
            return Ok(None);
        }
        let floor = *self
            .segments
            .range(..=fetch_offset)
            .next_back()
            .expect("in range")
            .0;
        for segment in self.segments.range(floor..).map(|(_, s)| s) {
            let end = end_within(segment, &bound);
            let file = segment.file(&self.files)?;
            if let Some((position, header)) = segment.find_batch(&file, fetch_offset, end)? {
                let first_bytes = header.total_bytes() as u64;
                let len = Self::slice_len(
                    segment,
                    &file,
                    (position, first_bytes),
                    end,
                    (max_bytes, first),
                )?;
                let next_offset = if len == 0 {
                    header.base_offset
                } else {
                    let after = position + u64::from(len);
                    self.offset_after(segment, &file, (after, end), &bound)?
                };
                let offsets = (header.base_offset, next_offset);
                return Ok(Some(FileSlice::new(file, position, len, offsets)));
            }
        }
        panic!("offset {fetch_offset} below the log end offset {log_end_offset} is in no segment");
    }

    /// The offset of the first record at or after byte `position` of `segment` (a batch
    /// boundary): the next batch's base offset, or where the segment's data within `bound`
    /// ends.
    fn offset_after(
        &self,
        segment: &LogSegment,
        file: &File,
        (position, end): (u64, u64),
        bound: &LogEnd,
    ) -> io::Result<i64> {
        if position < end {
            return Ok(read_header_at(file, position, end)?.base_offset);
        }
        if segment.base_offset() == bound.segment_base {
            return Ok(bound.offset);
        }
        let next = self
            .segments
            .range(segment.base_offset() + 1..)
            .next()
            .map(|(base, _)| *base);
        Ok(next.unwrap_or(self.log_end.offset))
    }

    /// Bytes of whole batches from `position` within `max_bytes` and `end`.
    fn slice_len(
        segment: &LogSegment,
        file: &File,
        (position, first_bytes): (u64, u64),
        end: u64,
        (max_bytes, first): (u32, FirstBatch),
    ) -> io::Result<u32> {
        let max_bytes = u64::from(max_bytes);
        if first_bytes > max_bytes {
            return Ok(match first {
                FirstBatch::Whole => first_bytes as u32,
                FirstBatch::WithinLimit => 0,
            });
        }
        let limit = end.min(position + max_bytes);
        let next = segment.whole_batches_end(file, position + first_bytes, limit, end)?;
        assert!(next <= limit && next >= position + first_bytes);
        Ok((next - position) as u32)
    }
}

impl PartitionLog {
    /// ListOffsets by timestamp: the first record with timestamp >= `timestamp_ms`, as
    /// (offset, timestamp). Time index lookup in the first segment whose max timestamp
    /// reaches it, then a scan of batch headers (synchronous pread, off the append path).
    /// Record-exact for uncompressed batches; for compressed batches (not decompressed
    /// here) the batch's base offset and max timestamp. `None` if no such record.
    pub fn offset_for_timestamp(&mut self, timestamp_ms: i64) -> io::Result<Option<(i64, i64)>> {
        if let Some(e) = self.offline_error() {
            return Err(e);
        }
        for segment in self.segments.values() {
            if segment.max_timestamp() < timestamp_ms {
                continue;
            }
            let end = self.visible_end(segment);
            let file = segment.file(&self.files)?;
            let mut position = segment.timestamp_search_start(timestamp_ms);
            while position < end {
                let header = read_header_at(&file, position, end)?;
                if header.max_timestamp >= timestamp_ms {
                    if let Some(found) =
                        find_record(&file, position, &header, |ts| ts >= timestamp_ms)?
                    {
                        return Ok(Some(found));
                    }
                }
                position += header.total_bytes() as u64;
            }
        }
        Ok(None)
    }

    /// ListOffsets MAX_TIMESTAMP (-3): offset and timestamp of the first record with the
    /// largest timestamp (record-exact for uncompressed batches; the batch's base offset
    /// for compressed ones). `None` when the log holds no timestamped record.
    pub fn max_timestamp(&mut self) -> io::Result<Option<(i64, i64)>> {
        if let Some(e) = self.offline_error() {
            return Err(e);
        }
        let mut best: Option<(i64, u64, i64)> = None; // (max timestamp, position, segment)
        for segment in self.segments.values() {
            let end = self.visible_end(segment);
            if end == 0 {
                continue;
            }
            let file = segment.file(&self.files)?;
            let candidate = if segment.offset_of_max_timestamp() < self.log_end.offset {
                let offset = segment.offset_of_max_timestamp();
                let found = segment.find_batch(&file, offset, end)?;
                found.map(|(position, _)| (segment.max_timestamp(), position))
            } else {
                scan_max_timestamp(&file, end)?
            };
            if let Some((ts, position)) = candidate {
                if ts > NO_TIMESTAMP && best.is_none_or(|b| ts > b.0) {
                    best = Some((ts, position, segment.base_offset()));
                }
            }
        }
        let Some((ts, position, base)) = best else {
            return Ok(None);
        };
        let segment = &self.segments[&base];
        let file = segment.file(&self.files)?;
        let header = read_header_at(&file, position, self.visible_end(segment))?;
        find_record(&file, position, &header, |t| t == ts)
    }
}

/// The first batch holding the largest max timestamp in `[0, end)`: (timestamp, position).
fn scan_max_timestamp(file: &File, end: u64) -> io::Result<Option<(i64, u64)>> {
    let mut best: Option<(i64, u64)> = None;
    let mut position = 0;
    while position < end {
        let header = read_header_at(file, position, end)?;
        if best.is_none_or(|b| header.max_timestamp > b.0) {
            best = Some((header.max_timestamp, position));
        }
        position += header.total_bytes() as u64;
    }
    Ok(best)
}

/// The first record of the batch at `position` whose timestamp satisfies `wanted`:
/// record-exact for uncompressed batches, (base offset, max timestamp) for compressed
/// ones when the batch's max timestamp satisfies it.
fn find_record(
    file: &File,
    position: u64,
    header: &crate::batch::BatchHeader,
    wanted: impl Fn(i64) -> bool,
) -> io::Result<Option<(i64, i64)>> {
    if header.compression() != 0 {
        return Ok(
            wanted(header.max_timestamp).then_some((header.base_offset, header.max_timestamp))
        );
    }
    let mut buf = vec![0u8; header.total_bytes()];
    file.read_exact_at(&mut buf, position)?;
    let times = record_times(&buf).map_err(|e| {
        invalid_data(format!(
            "batch at byte {position} (offset {}): {e}",
            header.base_offset
        ))
    })?;
    Ok(times
        .iter()
        .find(|r| wanted(r.timestamp))
        .map(|r| (header.base_offset + i64::from(r.offset_delta), r.timestamp)))
}

impl PartitionLog {
    /// Clean close: trims the active segment's index files to their entries, fdatasyncs
    /// it and every rolled segment still owed a sync, fsyncs the dir. All prepared appends
    /// must have completed. An offline log is not closed cleanly (an error).
    pub fn close(self) -> io::Result<()> {
        self.close_with(CloseSync::EachFile)
    }

    /// `close`; under [`CloseSync::Syncfs`] nothing is synced here (the indexes are trimmed
    /// and the producer snapshot written all the same): the log is durable only once the
    /// caller's `syncfs` of its log dir succeeded.
    pub fn close_with(mut self, sync: CloseSync) -> io::Result<()> {
        if let Some(e) = self.offline_error() {
            return Err(e);
        }
        if let Some(AppendError::Io(e)) = self.append_refused() {
            // Failed writes may have left bytes past the log end: the next start's
            // recovery cuts them.
            return Err(e);
        }
        assert_eq!(
            self.next_offset, self.log_end.offset,
            "close with appends in flight"
        );
        for roll in self.roll_syncs.drain(..) {
            if sync == CloseSync::EachFile {
                roll.file.sync_data()?;
                for path in roll.index_paths {
                    File::open(path)?.sync_data()?;
                }
            }
        }
        self.active_mut().close_with(sync)?;
        let snapshot_sync = match sync {
            CloseSync::EachFile => SnapshotSync::Fsync,
            CloseSync::Syncfs => SnapshotSync::No,
        };
        self.producer_state.take_snapshot(snapshot_sync)?;
        if sync == CloseSync::EachFile {
            fsync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Removes the partition directory: renames it to `<name>.<uuid>-delete` (which
    /// `scan_partition_dirs` skips), then deletes it.
    pub fn delete(self) -> io::Result<()> {
        let dir = self.dir.clone();
        self.files.forget_dir(&dir);
        drop(self);
        let parent = dir.parent().map(Path::to_owned).unwrap_or_default();
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("partition");
        let doomed = parent.join(format!("{name}.{}-delete", uuid::Uuid::new_v4().simple()));
        fs::rename(&dir, &doomed)?;
        fsync_dir(&parent)?;
        fs::remove_dir_all(&doomed)?;
        fsync_dir(&parent)
    }
}

impl std::fmt::Debug for PartitionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionLog")
            .field("dir", &self.dir)
            .field("log_start_offset", &self.log_start_offset())
            .field("log_end_offset", &self.log_end.offset)
            .field("next_offset", &self.next_offset)
            .field("high_watermark", &self.high_watermark)
            .field("leader_epoch", &self.leader_epoch)
            .field("segments", &self.segments.len())
            .field("offline", &self.offline)
            .finish()
    }
}

/// The raw descriptor of a segment file (for `FileSlice::raw_fd`).
pub(crate) fn segment_raw_fd(file: &SegmentFile) -> RawFd {
    file.as_raw_fd()
}
