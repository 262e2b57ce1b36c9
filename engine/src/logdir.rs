//! A log dir (Kafka's `log.dirs` entry): its `.lock`, `meta.properties`
//! ([`meta_properties`]), the clean shutdown marker and the partition directories in it.

pub mod meta_properties;

pub use meta_properties::{
    check_log_dirs, FormattedDir, FormattedDirs, LogDirsError, MetaProperties, MetaPropertiesError,
    Unformatted, META_PROPERTIES_FILE,
};

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::log::Recovery;

/// Kafka's lock file in every log dir.
pub const LOCK_FILE: &str = ".lock";
/// Kafka's clean shutdown marker (written after every log closed cleanly).
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
/// Kafka's suffix for partition dirs that are being deleted.
pub const DELETE_DIR_SUFFIX: &str = "-delete";
/// Suffix of a partition dir being built (`PartitionLog::create_with`); one found at startup
/// is a creation a crash interrupted, never acknowledged, and is removed.
pub const CREATE_DIR_SUFFIX: &str = "-create";
/// Kafka's metadata log (KRaft's `__cluster_metadata` topic, partition 0) in the metadata
/// log dir: the quorum's, never one of the log manager's partitions.
pub const METADATA_PARTITION_DIR: &str = "__cluster_metadata-0";
/// Kafka's `Topic.MAX_NAME_LENGTH`.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;
/// Bytes read from a `.lock` file to learn the holder's pid.
const LOCK_PID_BYTES_MAX: u64 = 32;

/// The size of the filesystem holding a path, as Java's `FileStore` reports it
/// (`getTotalSpace`, `getUsableSpace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilesystemSpace {
    pub total_bytes: u64,
    /// Free bytes for unprivileged writers.
    pub usable_bytes: u64,
}

/// statvfs(2) of the filesystem holding `path`.
pub fn filesystem_space(path: &Path) -> io::Result<FilesystemSpace> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: statvfs(2) writes one `statvfs` into `st` and reads the NUL-terminated path
    // `c`, which outlives the call.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    // fsblkcnt_t and c_ulong are u32 on some targets.
    #[allow(clippy::unnecessary_cast)]
    let frsize = st.f_frsize as u64;
    #[allow(clippy::unnecessary_cast)]
    Ok(FilesystemSpace {
        total_bytes: (st.f_blocks as u64).saturating_mul(frsize),
        usable_bytes: (st.f_bavail as u64).saturating_mul(frsize),
    })
}

/// Holds Kafka's `.lock` on a log dir (`flock(LOCK_EX | LOCK_NB)`) for as long as it
/// lives; the file holds our pid. Dropping it releases the lock.
#[derive(Debug)]
pub struct LogDirLock {
    _file: File,
    path: PathBuf,
}

impl LogDirLock {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `syncfs(2)` of the filesystem holding the dir: every dirty page and inode of it
    /// written and the journal committed — what `CloseSync::Syncfs` closes rely on. Through
    /// the lock's descriptor, opened at startup, so a writeback error anywhere on the
    /// filesystem since then is reported here (Linux 5.8+ reports them to `syncfs`).
    pub fn sync_filesystem(&self) -> io::Result<()> {
        // SAFETY: syncfs(2) takes a descriptor we own (kept open by the lock) and touches
        // no memory of ours.
        let rc = unsafe { libc::syncfs(self._file.as_raw_fd()) };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        Err(io::Error::new(
            e.kind(),
            format!(
                "syncfs of the filesystem holding {}: {e}",
                self.path.display()
            ),
        ))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "log dir lock {path} is held by {} (is another sluiced or Kafka broker using this dir?)",
        holder.map_or_else(|| "another process".to_owned(), |pid| format!("pid {pid}"))
    )]
    Held { path: PathBuf, holder: Option<u32> },
    #[error("log dir lock {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// Takes the log dir's `.lock` (creating the dir if missing) and writes our pid into it.
pub fn lock_log_dir(dir: &Path) -> Result<LogDirLock, LockError> {
    let path = dir.join(LOCK_FILE);
    let io_error = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    fs::create_dir_all(dir).map_err(io_error)?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_error)?;
    // SAFETY: flock(2) on a descriptor we own and keep open in the returned lock; it
    // touches no memory.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let error = io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(LockError::Held {
                holder: read_pid(&path),
                path,
            });
        }
        return Err(io_error(error));
    }
    file.set_len(0).map_err(io_error)?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes())
        .map_err(io_error)?;
    Ok(LogDirLock { _file: file, path })
}

fn read_pid(path: &Path) -> Option<u32> {
    let mut text = String::new();
    File::open(path)
        .ok()?
        .take(LOCK_PID_BYTES_MAX)
        .read_to_string(&mut text)
        .ok()?;
    text.trim().parse().ok()
}

/// fsync(2) a directory so that entries created, renamed or removed in it are durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io::Error::new(e.kind(), format!("fsync dir {}: {e}", dir.display())))
}

/// How the previous broker left a log dir, from Kafka's `.kafka_cleanshutdown` marker.
/// The recovery point each partition reopens from is per partition (the log dir's
/// `recovery-point-offset-checkpoint`); [`Shutdown::recovery`] combines the two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// The marker was there: every log was closed (fsynced, indexes trimmed) before it
    /// was written.
    Clean,
    /// No marker: a crash, a kill or a power loss. Every log must be rescanned from its
    /// recovery point.
    Unclean,
}

impl Shutdown {
    /// How to open one partition: `Recovery::Clean` after a clean shutdown, else
    /// `Recovery::Full` from its checkpointed recovery point, or from 0 (the whole log)
    /// when the checkpoint does not list the partition.
    pub fn recovery(self, checkpointed_recovery_point: Option<i64>) -> Recovery {
        match self {
            Shutdown::Clean => Recovery::Clean,
            Shutdown::Unclean => Recovery::Full {
                recovery_point: checkpointed_recovery_point.unwrap_or(0),
            },
        }
    }
}

/// Reads and removes `.kafka_cleanshutdown` (fsyncing the dir): `Clean` if it was there,
/// else `Unclean`. Removing it first means a crash from now on recovers fully.
pub fn take_clean_shutdown_marker(dir: &Path) -> io::Result<Shutdown> {
    let path = dir.join(CLEAN_SHUTDOWN_FILE);
    match fs::remove_file(&path) {
        Ok(()) => {
            fsync_dir(dir)?;
            Ok(Shutdown::Clean)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Shutdown::Unclean),
        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    }
}

/// Writes `.kafka_cleanshutdown` after every log of the dir closed cleanly; fsyncs the
/// file and the dir.
pub fn write_clean_shutdown_marker(dir: &Path) -> io::Result<()> {
    let path = dir.join(CLEAN_SHUTDOWN_FILE);
    let file = File::create(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    file.sync_all()?;
    fsync_dir(dir)
}

/// Kafka's legal topic names: 1..=249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn is_legal_topic_name(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= TOPIC_NAME_BYTES_MAX
        && topic != "."
        && topic != ".."
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// Parses `<topic>-<partition>` (the partition after the last `-`, decimal, >= 0).
pub fn parse_partition_dir_name(name: &str) -> Option<(String, i32)> {
    let (topic, partition) = name.rsplit_once('-')?;
    if partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let partition: i32 = partition.parse().ok()?;
    is_legal_topic_name(topic).then(|| (topic.to_owned(), partition))
}

/// The partition dirs of a log dir as (topic, partition, path), sorted by path. Skips
/// files, dirs being deleted (`*-delete`), the metadata log ([`METADATA_PARTITION_DIR`],
/// owned by the quorum, as Kafka's log manager skips it) and names that do not parse (with
/// a warning); removes dirs whose creation was interrupted (`*-create`).
pub fn scan_partition_dirs(dir: &Path) -> io::Result<Vec<(String, i32, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            tracing::warn!(path = %path.display(), "skipping a dir whose name is not UTF-8");
            continue;
        };
        if name.ends_with(DELETE_DIR_SUFFIX) || name == METADATA_PARTITION_DIR {
            continue;
        }
        if name.ends_with(CREATE_DIR_SUFFIX) {
            tracing::info!(path = %path.display(), "removing a partition dir whose creation was interrupted");
            if let Err(e) = fs::remove_dir_all(&path) {
                // Never a partition: leaving it costs only disk space.
                tracing::warn!(path = %path.display(), "could not remove it: {e}");
            }
            continue;
        }
        match parse_partition_dir_name(name) {
            Some((topic, partition)) => found.push((topic, partition, path)),
            None => {
                tracing::warn!(path = %path.display(), "skipping a dir that is not <topic>-<partition>")
            }
        }
    }
    found.sort_by(|a, b| a.2.cmp(&b.2));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_dir_names() {
        let check = |name: &str, expect: Option<(&str, i32)>| {
            let got = parse_partition_dir_name(name);
            assert_eq!(
                got.as_ref().map(|(t, p)| (t.as_str(), *p)),
                expect,
                "{name}"
            );
        };
        check("orders-0", Some(("orders", 0)));
        check("my-topic-12", Some(("my-topic", 12)));
        check("a.b_c-3", Some(("a.b_c", 3)));
        check("orders", None);
        check("orders-", None);
        check("-1", None);
        check("orders--1", Some(("orders-", 1)));
        check("orders-x", None);
        check("or/ders-1", None);
        check("..-1", None);
        check("orders-99999999999", None);
    }

    #[test]
    fn lock_twice_fails_with_holder_pid() {
        let dir = tempfile::tempdir().unwrap();
        let log_dir = dir.path().join("logs");
        let lock = lock_log_dir(&log_dir).unwrap();
        match lock_log_dir(&log_dir) {
            Err(LockError::Held { holder, path }) => {
                assert_eq!(holder, Some(std::process::id()));
                assert_eq!(path, log_dir.join(LOCK_FILE));
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(lock);
        lock_log_dir(&log_dir).unwrap();
    }

    #[test]
    fn clean_shutdown_marker_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let take = || take_clean_shutdown_marker(dir.path()).unwrap();
        assert_eq!(take(), Shutdown::Unclean);
        write_clean_shutdown_marker(dir.path()).unwrap();
        assert_eq!(take(), Shutdown::Clean);
        assert_eq!(take(), Shutdown::Unclean);
    }

    #[test]
    fn shutdown_and_checkpoint_give_the_recovery() {
        let check = |shutdown: Shutdown, checkpointed, expect| {
            assert_eq!(shutdown.recovery(checkpointed), expect, "{shutdown:?}");
        };
        check(Shutdown::Clean, Some(7), Recovery::Clean);
        check(Shutdown::Clean, None, Recovery::Clean);
        let full = |recovery_point| Recovery::Full { recovery_point };
        check(Shutdown::Unclean, Some(7), full(7));
        check(Shutdown::Unclean, None, full(0));
    }

    #[test]
    fn scan_skips_files_deleted_and_unparsable() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "orders-0",
            "orders-1",
            "orders-2.abc-delete",
            "junk",
            "x-y",
            METADATA_PARTITION_DIR,
        ] {
            fs::create_dir(dir.path().join(name)).unwrap();
        }
        fs::write(dir.path().join("t-3"), b"").unwrap();
        fs::create_dir(dir.path().join("orders-5-create")).unwrap();
        fs::write(dir.path().join("orders-5-create/partition.metadata"), b"x").unwrap();
        let found = scan_partition_dirs(dir.path()).unwrap();
        let names: Vec<_> = found.iter().map(|(t, p, _)| (t.as_str(), *p)).collect();
        assert_eq!(names, [("orders", 0), ("orders", 1)]);
        assert!(
            !dir.path().join("orders-5-create").exists(),
            "an interrupted creation is removed"
        );
    }
}
