//! sluice-engine: bytes on disk.
//!
//! Kafka's on-disk layout: one directory per partition `<topic>-<partition>`, segment files
//! `<base_offset:020>.log` holding magic-v2 record batches exactly as received (after offset
//! assignment), sparse `.index` and `.timeindex` files in Kafka's formats.
//!
//! Architecture Invariant: this crate knows nothing of sockets, replicas, shards or the Kafka
//! request format. Every type here lives on exactly one shard (they are `!Send`).
//!
//! `unsafe` lives in two places: `index` (mmap of index files) and `logdir` (flock).

pub mod batch;
pub mod checkpoint;
pub mod compression;
pub mod file_cache;
pub mod hash;
pub mod ids;
pub mod index;
pub mod io;
pub mod leader_epoch;
pub mod log;
pub mod log_validator;
pub mod logdir;
pub mod producer_state;
pub mod properties;
pub mod segment;
pub mod testing;

pub use batch::{
    validate_batch, validate_batches, BatchError, BatchErrorKind, BatchHeader, RecordError,
};
pub use checkpoint::{
    read_offset_checkpoint, write_offset_checkpoint, RECOVERY_POINT_CHECKPOINT_FILE,
    REPLICATION_OFFSET_CHECKPOINT_FILE,
};
pub use file_cache::{FileCache, SEGMENT_FILES_OPEN_MAX};
pub use ids::{DirectoryId, LeaderEpoch, Offset, TopicId};
pub use io::{
    write_coalesced, CloseSync, FileSlice, FlushedUpTo, PendingAppend, SyncJob, WrittenAppend,
};
pub use leader_epoch::{
    EpochEntry, LeaderEpochFileCache, LEADER_EPOCH_CHECKPOINT_FILE, UNDEFINED_EPOCH,
    UNDEFINED_EPOCH_OFFSET,
};
pub use log::{
    AppendError, AppendOutcome, DeleteRecordsError, FetchIsolation, FirstBatch,
    FollowerAppendError, HighWatermarkMode, LastFetchedEpoch, LogConfig, OffsetTruncationState,
    PartitionLog, ReadError, Recovery, RecoveryReport, RetentionOutcome, TruncateError,
    TruncateReason, LOG_START_OFFSET_FILE,
};
pub use log_validator::{BrokerCompression, RecordsConfig, TimestampType};
pub use logdir::{
    lock_log_dir, scan_partition_dirs, take_clean_shutdown_marker, write_clean_shutdown_marker,
    LockError, LogDirLock, Shutdown,
};
pub use producer_state::{ProducerError, ProducerStateManager, PRODUCER_BATCHES_RETAINED};
