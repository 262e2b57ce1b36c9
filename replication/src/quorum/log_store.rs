//! The metadata log on disk: `__cluster_metadata-0/` under `metadata.log.dir` (or the first
//! log dir), as Kafka names it.
//!
//! Files (not Kafka's record format; see ARCHITECTURE.md):
//! - `raft.log`: an append-only sequence of frames, each `u32 length (BE), u32 CRC-32C (BE) of
//!   the payload, payload` where the payload is one JSON `LogOp`: an appended entry, a
//!   truncation of the tail (conflicting entries after a leader change) or a purge of the head
//!   (entries covered by a snapshot). Every append is fdatasynced before openraft is told it
//!   is durable. On open the ops are replayed; a torn or corrupt frame ends the replay and
//!   the file is cut there (only an unacknowledged append can be torn). When dead ops
//!   outnumber live entries the file is rewritten (tmp, fsync, rename).
//! - `quorum-state`: the vote (term, voted-for, committed flag) as JSON, replaced atomically
//!   (tmp, fsync, rename) before a vote is answered — Kafka keeps its vote in a file of the
//!   same name.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    Entry, LogId, LogState, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote,
};
use serde::{Deserialize, Serialize};

use super::TypeConfig;
use crate::NodeId;

/// Largest frame accepted when replaying `raft.log` (a frame holds one metadata entry).
pub const LOG_FRAME_BYTES_MAX: usize = 64 << 20;
/// Rewrite `raft.log` when it holds this many more ops than live entries.
const LOG_DEAD_OPS_MAX: usize = 10_000;

#[derive(Serialize, Deserialize)]
enum LogOp {
    Append(Entry<TypeConfig>),
    /// Entries at and after this index are gone.
    Truncate(u64),
    /// Entries up to and including this log id are gone (covered by a snapshot).
    Purge(LogId<NodeId>),
}

/// The entries in memory, shared with openraft's replication tasks' readers. All of them run
/// on the controller thread's runtime, so the lock is never contended; openraft 0.9 asks for
/// `Send + Sync` readers, hence a mutex rather than a `RefCell`.
type Entries = std::sync::Arc<std::sync::Mutex<BTreeMap<u64, Entry<TypeConfig>>>>;

/// Lives on the controller thread.
pub struct LogStore {
    dir: PathBuf,
    file: File,
    entries: Entries,
    last_purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
    ops_written: usize,
}

fn io_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageError::IO {
        source: StorageIOError::write_logs(&e),
    }
}

pub fn write_frame(out: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(|_| io::Error::other("frame too large"))?;
    let mut head = [0u8; 8];
    head[..4].copy_from_slice(&len.to_be_bytes());
    head[4..].copy_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    out.write_all(&head)?;
    out.write_all(payload)
}

/// Reads frames until the end or the first torn/corrupt one; returns the payloads and the
/// length of the valid prefix.
pub fn read_frames(bytes: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut frames = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= 8 {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let crc = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().unwrap());
        if len > LOG_FRAME_BYTES_MAX || bytes.len() - at - 8 < len {
            break;
        }
        let payload = &bytes[at + 8..at + 8 + len];
        if crc32c::crc32c(payload) != crc {
            break;
        }
        frames.push(payload);
        at += 8 + len;
    }
    (frames, at)
}

/// Replaces `path` with `bytes` atomically and durably.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static TMP_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = TMP_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{seq}"));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl LogStore {
    pub fn open(dir: &Path) -> io::Result<LogStore> {
        std::fs::create_dir_all(dir)?;
        let log_path = dir.join("raft.log");
        let mut bytes = Vec::new();
        if log_path.exists() {
            File::open(&log_path)?.read_to_end(&mut bytes)?;
        }
        let (frames, valid) = read_frames(&bytes);
        let mut store = LogStore {
            dir: dir.to_path_buf(),
            file: OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)?,
            entries: Entries::default(),
            last_purged: None,
            vote: read_vote(dir)?,
            ops_written: frames.len(),
        };
        for frame in frames {
            let op: LogOp = serde_json::from_slice(frame).map_err(|e| {
                io::Error::other(format!("{}: undecodable entry: {e}", log_path.display()))
            })?;
            store.replay(op);
        }
        if valid < bytes.len() {
            tracing::warn!(
                file = %log_path.display(),
                "cutting {} torn bytes at the end of the metadata log",
                bytes.len() - valid
            );
            store.file.set_len(valid as u64)?;
            store.file.sync_all()?;
        }
        Ok(store)
    }

    fn replay(&mut self, op: LogOp) {
        let mut entries = self.entries.lock().expect("metadata log lock");
        match op {
            LogOp::Append(entry) => {
                entries.insert(entry.log_id.index, entry);
            }
            LogOp::Truncate(index) => {
                entries.split_off(&index);
            }
            LogOp::Purge(log_id) => {
                *entries = entries.split_off(&(log_id.index + 1));
                self.last_purged = Some(log_id);
            }
        }
    }

    fn write_ops(&mut self, ops: &[LogOp]) -> io::Result<()> {
        let mut buf = Vec::new();
        for op in ops {
            let payload = serde_json::to_vec(op).map_err(io::Error::other)?;
            write_frame(&mut buf, &payload)?;
        }
        self.file.write_all(&buf)?;
        self.file.sync_data()?;
        self.ops_written += ops.len();
        Ok(())
    }

    /// Rewrites `raft.log` with only what is live once dead ops pile up.
    fn maybe_compact(&mut self) -> io::Result<()> {
        let entries = self.entries.lock().expect("metadata log lock").clone();
        if self.ops_written < entries.len() + LOG_DEAD_OPS_MAX {
            return Ok(());
        }
        let mut buf = Vec::new();
        let mut ops = 0;
        if let Some(p) = self.last_purged {
            write_frame(
                &mut buf,
                &serde_json::to_vec(&LogOp::Purge(p)).map_err(io::Error::other)?,
            )?;
            ops += 1;
        }
        for entry in entries.into_values() {
            let op = LogOp::Append(entry);
            write_frame(
                &mut buf,
                &serde_json::to_vec(&op).map_err(io::Error::other)?,
            )?;
            ops += 1;
        }
        let path = self.dir.join("raft.log");
        write_atomically(&path, &buf)?;
        self.file = OpenOptions::new().append(true).open(&path)?;
        self.ops_written = ops;
        Ok(())
    }

    fn last_log_id(&self) -> Option<LogId<NodeId>> {
        self.entries
            .lock()
            .expect("metadata log lock")
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(self.last_purged)
    }

    fn reader(&self) -> LogReader {
        LogReader {
            entries: self.entries.clone(),
        }
    }
}

fn read_vote(dir: &Path) -> io::Result<Option<Vote<NodeId>>> {
    let path = dir.join("quorum-state");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::other(format!("{}: undecodable vote: {e}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn range_of(entries: &Entries, range: impl RangeBounds<u64>) -> Vec<Entry<TypeConfig>> {
    let entries = entries.lock().expect("metadata log lock");
    entries.range(range).map(|(_, e)| e.clone()).collect()
}

/// The entries as openraft's replication tasks read them.
pub struct LogReader {
    entries: Entries,
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        Ok(range_of(&self.entries, range))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        Ok(range_of(&self.entries, range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        Ok(LogState {
            last_purged_log_id: self.last_purged,
            last_log_id: self.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let bytes = serde_json::to_vec(vote).map_err(io_err)?;
        write_atomically(&self.dir.join("quorum-state"), &bytes).map_err(|e| StorageError::IO {
            source: StorageIOError::write_vote(&e),
        })?;
        self.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.vote)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let ops: Vec<LogOp> = entries.into_iter().map(LogOp::Append).collect();
        let written = self.write_ops(&ops);
        let failed = written
            .as_ref()
            .err()
            .map(|e| io::Error::new(e.kind(), e.to_string()));
        callback.log_io_completed(written);
        if let Some(e) = failed {
            return Err(io_err(e));
        }
        for op in ops {
            self.replay(op);
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let op = LogOp::Truncate(log_id.index);
        self.write_ops(std::slice::from_ref(&op)).map_err(io_err)?;
        self.replay(op);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let op = LogOp::Purge(log_id);
        self.write_ops(std::slice::from_ref(&op)).map_err(io_err)?;
        self.replay(op);
        self.maybe_compact().map_err(io_err)
    }
}
