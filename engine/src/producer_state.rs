//! `ProducerStateManager`: Kafka's per-partition idempotent producer state — for every
//! producer id its epoch and the sequence ranges and offsets of its last
//! [`PRODUCER_BATCHES_RETAINED`] batches — and its `.snapshot` files.
//!
//! A produce batch with `producerId >= 0` is checked against that state before it is
//! written (Kafka 4's rules, `ProducerAppendInfo`):
//! - same epoch and the same (first, last) sequence as one of the retained batches: a
//!   retry, answered with the ORIGINAL offsets and not written again;
//! - an epoch below the producer's: `INVALID_PRODUCER_EPOCH`;
//! - a higher epoch must start at sequence 0, the same epoch must continue at last + 1
//!   (sequences wrap from `i32::MAX` to 0): otherwise `OUT_OF_ORDER_SEQUENCE_NUMBER`;
//! - an unknown producer id is accepted at any sequence (Kafka 2.5+, KIP-360: its state
//!   may have been removed; the producer ids this broker hands out are never reused).
//!
//! # Snapshot files
//!
//! `<offset:020>.snapshot` in the partition dir holds the state of every batch below
//! `offset`. Written when a segment rolls (named by the new segment's base offset) and at
//! clean close (named by the log end offset). The layout is Kafka's `ProducerSnapshot`
//! version 1, big endian:
//!
//! | bytes | field                                                        |
//! |-------|--------------------------------------------------------------|
//! | 0..2  | version i16 = 1                                              |
//! | 2..6  | crc u32: CRC-32C of bytes 6..end                             |
//! | 6..10 | entry count i32                                              |
//! | 46 × n| entries: producerId i64, epoch i16, lastSequence i32, lastOffset i64, offsetDelta i32 (last - first), timestamp i64 (max timestamp), coordinatorEpoch i32 (-1), currentTxnFirstOffset i64 (-1) |
//!
//! Sluice writes ONE ENTRY PER RETAINED BATCH (oldest first, several per producer id), so a
//! restarted broker still recognises retries of the last five batches. Kafka reading such a
//! file keeps the last entry of each producer, which is what it would have written itself.
//!
//! Crash safety: a snapshot is not fsynced at roll (it is re-derivable from the log). On
//! open, snapshots above the log end offset (their batches were cut by recovery) are
//! deleted, a snapshot whose CRC or length is wrong is ignored, and the batches after the
//! newest good snapshot are replayed from their headers (no decompression). At clean close
//! the snapshot is fsynced.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::{Buf, BufMut, BytesMut};

use crate::batch::BatchHeader;

/// Kafka's `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`: librdkafka and the Java client keep
/// at most 5 requests in flight per partition with idempotence.
pub const PRODUCER_BATCHES_RETAINED: usize = 5;
/// Snapshot files kept in a partition dir (older ones are deleted when one is written).
pub const PRODUCER_SNAPSHOTS_RETAINED: usize = 3;
/// Kafka's snapshot file suffix.
pub const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// Kafka's `ProducerSnapshot` version.
const SNAPSHOT_VERSION: i16 = 1;
const SNAPSHOT_HEADER_BYTES: usize = 10;
const SNAPSHOT_ENTRY_BYTES: usize = 46;
/// Kafka's `RecordBatch.NO_PRODUCER_ID`.
pub const NO_PRODUCER_ID: i64 = -1;

/// One retained batch of a producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

/// What one producer id's state is on one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerStateEntry {
    pub epoch: i16,
    /// Oldest first; at most `PRODUCER_BATCHES_RETAINED`.
    batches: VecDeque<BatchMetadata>,
}

impl ProducerStateEntry {
    fn new(epoch: i16) -> ProducerStateEntry {
        ProducerStateEntry {
            epoch,
            batches: VecDeque::with_capacity(PRODUCER_BATCHES_RETAINED),
        }
    }

    pub fn batches(&self) -> impl Iterator<Item = &BatchMetadata> {
        self.batches.iter()
    }

    pub fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }

    fn find_duplicate(&self, epoch: i16, first_seq: i32, last_seq: i32) -> Option<BatchMetadata> {
        if epoch != self.epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
            .copied()
    }

    /// Records a batch; a new epoch forgets the previous epoch's batches.
    fn push(&mut self, epoch: i16, batch: BatchMetadata) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.batches.clear();
        }
        if self.batches.len() == PRODUCER_BATCHES_RETAINED {
            self.batches.pop_front();
        }
        self.batches.push_back(batch);
        assert!(self.batches.len() <= PRODUCER_BATCHES_RETAINED);
    }
}

/// Why a batch's producer fields were refused; each maps to one Kafka error code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    /// Kafka `OUT_OF_ORDER_SEQUENCE_NUMBER`.
    #[error(
        "out of order sequence number for producer {producer_id} epoch {epoch}: \
         {first_seq} (incoming first sequence), {expected} (expected)"
    )]
    OutOfOrderSequence {
        producer_id: i64,
        epoch: i16,
        first_seq: i32,
        expected: i32,
    },
    /// Kafka `INVALID_PRODUCER_EPOCH`.
    #[error(
        "epoch {epoch} of producer {producer_id} is smaller than the last seen epoch {current}"
    )]
    InvalidProducerEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
}

/// The outcome of checking an append's batches against the producer state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProducerCheck {
    /// Write it.
    Append,
    /// A retry of an appended batch: answer with its offsets, write nothing.
    Duplicate(BatchMetadata),
}

/// Kafka's `DefaultRecordBatch.incrementSequence`: sequences wrap at `i32::MAX` to 0.
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    assert!(sequence >= 0 && increment >= 0);
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// Kafka's `inSequence`: `next` directly follows `last`.
pub fn in_sequence(last: i32, next: i32) -> bool {
    i64::from(next) == i64::from(last) + 1 || (next == 0 && last == i32::MAX)
}

fn last_seq_of(header: &BatchHeader) -> i32 {
    increment_sequence(header.base_sequence, header.last_offset_delta)
}

/// Kafka's `ProducerStateManager` for one partition. Lives on the partition's shard.
#[derive(Debug)]
pub struct ProducerStateManager {
    dir: PathBuf,
    producers: HashMap<i64, ProducerStateEntry>,
    /// The offset after the last batch this state covers.
    map_end_offset: i64,
}

impl ProducerStateManager {
    /// Empty state for the partition in `dir`, covering nothing below `offset`.
    pub fn new(dir: &Path, offset: i64) -> ProducerStateManager {
        ProducerStateManager {
            dir: dir.to_owned(),
            producers: HashMap::new(),
            map_end_offset: offset,
        }
    }

    pub fn producer(&self, producer_id: i64) -> Option<&ProducerStateEntry> {
        self.producers.get(&producer_id)
    }

    pub fn producer_count(&self) -> usize {
        self.producers.len()
    }

    /// The offset after the last batch this state covers.
    pub fn map_end_offset(&self) -> i64 {
        self.map_end_offset
    }

    /// Checks an append's batches in order (each against the state the earlier ones of
    /// the same append would leave) without changing anything. A duplicate anywhere makes
    /// the whole append a duplicate of that batch, as in Kafka.
    pub fn check(&self, headers: &[BatchHeader]) -> Result<ProducerCheck, ProducerError> {
        let mut updated: HashMap<i64, ProducerStateEntry> = HashMap::new();
        let with_producer = headers.iter().filter(|h| h.producer_id != NO_PRODUCER_ID);
        let count = with_producer.clone().count();
        for (i, header) in with_producer.enumerate() {
            let pid = header.producer_id;
            let entry = updated.get(&pid).or_else(|| self.producers.get(&pid));
            let last_seq = last_seq_of(header);
            if let Some(entry) = entry {
                let epoch = header.producer_epoch;
                if let Some(dup) = entry.find_duplicate(epoch, header.base_sequence, last_seq) {
                    return Ok(ProducerCheck::Duplicate(dup));
                }
                check_epoch_and_sequence(pid, entry, header)?;
            }
            if i + 1 == count {
                break; // nothing checks against the last batch (the usual single batch)
            }
            let mut next = entry
                .cloned()
                .unwrap_or_else(|| ProducerStateEntry::new(header.producer_epoch));
            next.push(header.producer_epoch, metadata_of(header, 0));
            updated.insert(pid, next);
        }
        Ok(ProducerCheck::Append)
    }

    /// Records an appended (or replayed) batch whose `base_offset` is its real offset.
    /// Batches arrive in offset order.
    pub fn update(&mut self, header: &BatchHeader) {
        let next_offset = header.last_offset() + 1;
        assert!(
            header.base_offset >= self.map_end_offset,
            "producer state updated out of order"
        );
        self.map_end_offset = next_offset;
        if header.producer_id == NO_PRODUCER_ID {
            return;
        }
        let epoch = header.producer_epoch;
        self.producers
            .entry(header.producer_id)
            .or_insert_with(|| ProducerStateEntry::new(epoch))
            .push(epoch, metadata_of(header, header.base_offset));
    }

    /// Kafka's `truncateFullyAndStartAt`: forgets every producer and deletes every snapshot
    /// file; the state covers nothing below `offset`.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> io::Result<()> {
        for snapshot in list_snapshots(&self.dir)? {
            remove_snapshot(&self.dir, snapshot)?;
        }
        self.producers.clear();
        self.map_end_offset = offset;
        Ok(())
    }

    /// Moves the covered end forward past batches without producer fields that were not
    /// passed to `update` (e.g. a replay starting later).
    pub fn advance_to(&mut self, offset: i64) {
        self.map_end_offset = self.map_end_offset.max(offset);
    }
}

fn metadata_of(header: &BatchHeader, base_offset: i64) -> BatchMetadata {
    BatchMetadata {
        first_seq: header.base_sequence,
        last_seq: last_seq_of(header),
        first_offset: base_offset,
        last_offset: base_offset + i64::from(header.last_offset_delta),
        max_timestamp: header.max_timestamp,
    }
}

/// Kafka's `checkProducerEpoch` and `checkSequence` for a known producer.
fn check_epoch_and_sequence(
    producer_id: i64,
    entry: &ProducerStateEntry,
    header: &BatchHeader,
) -> Result<(), ProducerError> {
    let (epoch, first_seq) = (header.producer_epoch, header.base_sequence);
    if epoch < entry.epoch {
        return Err(ProducerError::InvalidProducerEpoch {
            producer_id,
            epoch,
            current: entry.epoch,
        });
    }
    let expected = if epoch != entry.epoch {
        Some(0)
    } else {
        entry.last_seq().map(|last| increment_sequence(last, 1))
    };
    match expected {
        Some(expected) if expected != first_seq => Err(ProducerError::OutOfOrderSequence {
            producer_id,
            epoch,
            first_seq,
            expected,
        }),
        _ => Ok(()),
    }
}

/// `<offset:020>.snapshot` in `dir`.
pub fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}{SNAPSHOT_SUFFIX}"))
}

/// The offsets of the snapshot files in `dir`, ascending.
pub fn list_snapshots(dir: &Path) -> io::Result<Vec<i64>> {
    let mut offsets = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(SNAPSHOT_SUFFIX)) else {
            continue;
        };
        if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(offset) = stem.parse::<i64>() {
                offsets.push(offset);
            }
        }
    }
    offsets.sort_unstable();
    Ok(offsets)
}

/// Whether a snapshot write is followed by an fsync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotSync {
    /// At segment roll: the state is re-derivable from the log; the CRC catches a torn file.
    No,
    /// At clean close: the clean-shutdown marker says the state needs no replay.
    Fsync,
}

impl ProducerStateManager {
    /// The snapshot bytes of the current state (see the module docs).
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort_unstable();
        let count: usize = self.producers.values().map(|e| e.batches.len()).sum();
        let mut buf = BytesMut::with_capacity(SNAPSHOT_HEADER_BYTES + count * SNAPSHOT_ENTRY_BYTES);
        buf.put_i16(SNAPSHOT_VERSION);
        buf.put_u32(0); // crc, filled below
        buf.put_i32(i32::try_from(count).expect("entry count fits i32"));
        for id in ids {
            let entry = &self.producers[id];
            for b in &entry.batches {
                buf.put_i64(*id);
                buf.put_i16(entry.epoch);
                buf.put_i32(b.last_seq);
                buf.put_i64(b.last_offset);
                buf.put_i32((b.last_offset - b.first_offset) as i32);
                buf.put_i64(b.max_timestamp);
                buf.put_i32(-1); // coordinatorEpoch: no transactions
                buf.put_i64(-1); // currentTxnFirstOffset: no transactions
            }
        }
        let crc = crc32c::crc32c(&buf[6..]);
        buf[2..6].copy_from_slice(&crc.to_be_bytes());
        buf.to_vec()
    }

    /// Parses snapshot bytes as the state at `offset`; `None` when the version, lengths or
    /// CRC are wrong (a torn or foreign file).
    pub fn decode_snapshot(dir: &Path, offset: i64, bytes: &[u8]) -> Option<ProducerStateManager> {
        let mut buf = bytes;
        if buf.len() < SNAPSHOT_HEADER_BYTES || buf.get_i16() != SNAPSHOT_VERSION {
            return None;
        }
        let crc = buf.get_u32();
        if crc32c::crc32c(buf) != crc {
            return None;
        }
        let count = usize::try_from(buf.get_i32()).ok()?;
        if buf.len() != count.checked_mul(SNAPSHOT_ENTRY_BYTES)? {
            return None;
        }
        let mut state = ProducerStateManager::new(dir, offset);
        for _ in 0..count {
            let (pid, epoch, last_seq) = (buf.get_i64(), buf.get_i16(), buf.get_i32());
            let (last_offset, delta, max_timestamp) = (buf.get_i64(), buf.get_i32(), buf.get_i64());
            let _coordinator_epoch_and_txn = (buf.get_i32(), buf.get_i64());
            if pid < 0 || epoch < 0 || last_seq < 0 || delta < 0 || last_offset >= offset {
                return None;
            }
            let first_seq = if last_seq >= delta {
                last_seq - delta
            } else {
                i32::MAX - (delta - last_seq - 1)
            };
            let batch = BatchMetadata {
                first_seq,
                last_seq,
                first_offset: last_offset - i64::from(delta),
                last_offset,
                max_timestamp,
            };
            state
                .producers
                .entry(pid)
                .or_insert_with(|| ProducerStateEntry::new(epoch))
                .push(epoch, batch);
        }
        Some(state)
    }

    /// Writes `<map_end_offset>.snapshot` and deletes all but the newest
    /// `PRODUCER_SNAPSHOTS_RETAINED` snapshot files.
    pub fn take_snapshot(&self, sync: SnapshotSync) -> io::Result<()> {
        let path = snapshot_path(&self.dir, self.map_end_offset);
        let with_path = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(with_path)?;
        file.write_all(&self.encode_snapshot()).map_err(with_path)?;
        if sync == SnapshotSync::Fsync {
            file.sync_data().map_err(with_path)?;
        }
        let offsets = list_snapshots(&self.dir)?;
        let excess = offsets.len().saturating_sub(PRODUCER_SNAPSHOTS_RETAINED);
        for &old in &offsets[..excess] {
            remove_snapshot(&self.dir, old)?;
        }
        Ok(())
    }

    /// The state from the newest readable snapshot at or below `log_end_offset` (newer
    /// snapshots are deleted: recovery cut the batches they cover). Empty state at
    /// `log_start_offset` when there is none. The caller replays the log from
    /// `map_end_offset()`.
    pub fn load(
        dir: &Path,
        log_start_offset: i64,
        log_end_offset: i64,
    ) -> io::Result<ProducerStateManager> {
        let mut offsets = list_snapshots(dir)?;
        while let Some(offset) = offsets.pop() {
            if offset > log_end_offset {
                remove_snapshot(dir, offset)?;
                continue;
            }
            if offset < log_start_offset {
                break;
            }
            let path = snapshot_path(dir, offset);
            let bytes = fs::read(&path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            match ProducerStateManager::decode_snapshot(dir, offset, &bytes) {
                Some(state) => return Ok(state),
                None => {
                    tracing::warn!(path = %path.display(), "ignoring an unreadable producer snapshot");
                    remove_snapshot(dir, offset)?;
                }
            }
        }
        Ok(ProducerStateManager::new(dir, log_start_offset))
    }
}

fn remove_snapshot(dir: &Path, offset: i64) -> io::Result<()> {
    let path = snapshot_path(dir, offset);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_wrap_like_kafka() {
        assert_eq!(increment_sequence(0, 4), 4);
        assert_eq!(increment_sequence(i32::MAX, 0), i32::MAX);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert!(in_sequence(4, 5));
        assert!(in_sequence(i32::MAX, 0));
        assert!(!in_sequence(4, 4));
        assert!(!in_sequence(4, 6));
    }
}
