//! Producer id allocation (Kafka's producer id manager): ids are handed out from blocks of
//! `PRODUCER_ID_BLOCK_SIZE`, and a block is persisted before any of its ids is handed out,
//! so no id is ever handed out twice, across restarts too. A reused id would make a new
//! producer's first batch look like a duplicate of an old one and be acknowledged without
//! being written.
//!
//! On disk: `producer-id-block` in EVERY log dir, written through a temporary file that is
//! fsynced and renamed into place (then the dir is fsynced):
//!
//! ```text
//! version=0
//! next_block_start=<the first id of the next block>
//! ```
//!
//! At start the largest `next_block_start` of all log dirs is taken (a dir that lost its
//! file, or a newly added dir, cannot make ids go back). After a crash the rest of the
//! current block is skipped, as in Kafka.
//!
//! One allocator serves every shard: the only lock shared between shards, held for a
//! counter increment and, once per block, for writing the small file. InitProducerId comes
//! once per producer instance, far off the produce path.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;
/// The block file in each log dir.
pub const PRODUCER_ID_BLOCK_FILE: &str = "producer-id-block";

/// Hands out producer ids from persisted blocks. Not tied to a shard.
#[derive(Debug)]
pub struct ProducerIdManager {
    log_dirs: Vec<PathBuf>,
    /// The next id to hand out.
    next: i64,
    /// The end (exclusive) of the persisted block `next` is in.
    block_end: i64,
}

impl ProducerIdManager {
    /// Reads the block files of `log_dirs`; nothing is handed out below the largest
    /// `next_block_start` found.
    pub fn open(log_dirs: &[PathBuf]) -> io::Result<ProducerIdManager> {
        assert!(!log_dirs.is_empty(), "a broker has a log dir");
        let mut start = 0;
        for dir in log_dirs {
            if let Some(found) = read_block_file(&dir.join(PRODUCER_ID_BLOCK_FILE))? {
                start = start.max(found);
            }
        }
        Ok(ProducerIdManager {
            log_dirs: log_dirs.to_vec(),
            next: start,
            block_end: start,
        })
    }

    /// The next producer id. Persists a new block first when the current one is used up.
    pub fn next_id(&mut self) -> io::Result<i64> {
        assert!(self.next <= self.block_end);
        if self.next == self.block_end {
            let end = self
                .block_end
                .checked_add(PRODUCER_ID_BLOCK_SIZE)
                .ok_or_else(|| io::Error::other("producer ids exhausted"))?;
            for dir in &self.log_dirs {
                write_block_file(dir, end)?;
            }
            tracing::info!(
                block_start = self.block_end,
                block_end = end,
                "allocated a producer id block"
            );
            self.block_end = end;
        }
        let id = self.next;
        self.next += 1;
        Ok(id)
    }
}

fn read_block_file(path: &Path) -> io::Result<Option<i64>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    };
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: {what} (refusing to hand out producer ids that might repeat)",
                path.display()
            ),
        )
    };
    let mut version = None;
    let mut start = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match line.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
            Some(("version", v)) => version = Some(v.to_owned()),
            Some(("next_block_start", v)) => start = v.parse::<i64>().ok().filter(|s| *s >= 0),
            _ => return Err(bad(&format!("unexpected line {line:?}"))),
        }
    }
    if version.as_deref() != Some("0") {
        return Err(bad("version is not 0"));
    }
    start
        .map(Some)
        .ok_or_else(|| bad("no valid next_block_start"))
}

fn write_block_file(dir: &Path, next_block_start: i64) -> io::Result<()> {
    let path = dir.join(PRODUCER_ID_BLOCK_FILE);
    let tmp = dir.join(format!("{PRODUCER_ID_BLOCK_FILE}.tmp"));
    let with_path = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", tmp.display()));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(with_path)?;
    file.write_all(format!("version=0\nnext_block_start={next_block_start}\n").as_bytes())
        .map_err(with_path)?;
    file.sync_all().map_err(with_path)?;
    fs::rename(&tmp, &path).map_err(with_path)?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))
}

/// The process's allocator, opened on first use.
static PRODUCER_IDS: OnceLock<Mutex<Option<ProducerIdManager>>> = OnceLock::new();

/// The next producer id of this broker (see the module docs). An error means no id could
/// be persisted (the caller answers with a retriable error).
pub fn next_producer_id(log_dirs: &[PathBuf]) -> io::Result<i64> {
    let cell = PRODUCER_IDS.get_or_init(|| Mutex::new(None));
    // A panic while holding the lock crashed the broker's shard anyway; the state itself
    // (two integers, updated after the block file) is consistent.
    let mut guard = cell.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if guard.is_none() {
        *guard = Some(ProducerIdManager::open(log_dirs)?);
    }
    guard.as_mut().expect("opened above").next_id()
}

/// Cluster mode: the current block from the controller, (next, end), shared by the shards.
static CLUSTER_BLOCK: OnceLock<Mutex<(i64, i64)>> = OnceLock::new();

fn take_from_cluster_block() -> Option<i64> {
    let cell = CLUSTER_BLOCK.get_or_init(|| Mutex::new((0, 0)));
    let mut block = cell.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    (block.0 < block.1).then(|| {
        block.0 += 1;
        block.0 - 1
    })
}

/// The next producer id in a cluster: from the block the controller committed for this
/// broker (Kafka's `AllocateProducerIds`), asking for a new block when it is used up. Two
/// shards racing for a block each get one; the one not installed is skipped, never reused.
pub async fn next_cluster_producer_id(
    handle: &sluice_replication::ClusterHandle,
    broker_id: i32,
) -> Result<i64, sluice_replication::ControllerError> {
    if let Some(id) = take_from_cluster_block() {
        return Ok(id);
    }
    let req = sluice_replication::ControllerRequest::AllocateProducerIds {
        broker_id,
        broker_epoch: handle.broker.borrow().broker_epoch,
    };
    let reply = handle.call(req).await?;
    let sluice_replication::ControllerReply::ProducerIds { first, count } = reply else {
        return Err(sluice_replication::ControllerError {
            code: -1,
            message: format!("AllocateProducerIds answered {reply:?}"),
        });
    };
    {
        let cell = CLUSTER_BLOCK.get_or_init(|| Mutex::new((0, 0)));
        let mut block = cell.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if block.0 >= block.1 {
            *block = (first, first + count);
        }
    }
    take_from_cluster_block().ok_or_else(|| sluice_replication::ControllerError {
        code: -1,
        message: "the producer id block was used up at once".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_never_repeat_across_reopen() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let dirs = vec![a.path().to_owned(), b.path().to_owned()];
        let mut seen = std::collections::HashSet::new();
        for round in 0..3 {
            let mut ids = ProducerIdManager::open(&dirs).unwrap();
            for _ in 0..(PRODUCER_ID_BLOCK_SIZE + 5) {
                assert!(seen.insert(ids.next_id().unwrap()), "round {round}");
            }
        }
        // A lost file in one dir does not make ids go back.
        fs::remove_file(a.path().join(PRODUCER_ID_BLOCK_FILE)).unwrap();
        let mut ids = ProducerIdManager::open(&dirs).unwrap();
        assert!(seen.insert(ids.next_id().unwrap()));
        // A damaged file refuses rather than guesses.
        fs::write(
            b.path().join(PRODUCER_ID_BLOCK_FILE),
            "version=0\nnext_block_start=x\n",
        )
        .unwrap();
        assert!(ProducerIdManager::open(&dirs).is_err());
    }
}
