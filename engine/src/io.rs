//! The io_uring edge of the engine: append writes, fdatasync jobs and file-slice reads,
//! submitted through compio's runtime on the shard's ring. None of these borrow the
//! `PartitionLog`: the operation owns its buffers and a shared descriptor until its
//! completion arrives, also when the future that started it is dropped.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::RawFd;
use std::path::PathBuf;

use bytes::Bytes;
use compio_buf::{BufResult, IntoInner, IoBuf};
use compio_driver::op::{ReadAt, Sync, WriteVectoredAt};
use compio_driver::SharedFd;
use futures_util::future::join_all;

use crate::file_cache::SegmentFile;

/// Linux `IOV_MAX`: the most iovecs one `writev` (and `IORING_OP_WRITEV`) accepts.
pub const WRITE_IOVECS_MAX: usize = 1024;

/// A byte range of a segment file: what a fetch sends (with sendfile/splice on
/// `raw_fd`, or copied with `read_to_bytes`). Holds the descriptor open.
#[derive(Clone, Debug)]
pub struct FileSlice {
    file: SegmentFile,
    pub position: u64,
    pub len: u32,
    /// Base offset of the first batch in the slice.
    pub base_offset: i64,
    /// The offset after the slice's last record: `next_offset - base_offset` records.
    pub next_offset: i64,
}

impl FileSlice {
    pub(crate) fn new(
        file: SegmentFile,
        position: u64,
        len: u32,
        (base_offset, next_offset): (i64, i64),
    ) -> FileSlice {
        assert!(next_offset >= base_offset);
        FileSlice {
            file,
            position,
            len,
            base_offset,
            next_offset,
        }
    }

    /// Reads the range into memory with io_uring positional reads.
    pub async fn read_to_bytes(&self) -> io::Result<Bytes> {
        let len = self.len as usize;
        let mut buf = vec![0u8; len];
        let mut done = 0usize;
        while done < len {
            let op = ReadAt::new(
                self.file.clone(),
                self.position + done as u64,
                buf.slice(done..len),
            );
            let BufResult(result, slice) = compio::runtime::submit(op).await.into_inner();
            buf = slice.into_inner();
            match result {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("segment file ended {} bytes into a slice of {len}", done),
                    ))
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Bytes::from(buf))
    }

    /// The segment file, shared: holding it keeps the range readable even after the segment
    /// is deleted (the open file outlives the unlink).
    pub fn file(&self) -> &SegmentFile {
        &self.file
    }

    /// The segment file's descriptor, valid while this slice lives.
    pub fn raw_fd(&self) -> RawFd {
        crate::log::segment_raw_fd(&self.file)
    }
}

/// A prepared append: offsets assigned, file positions reserved; the bytes still to be
/// written. Produced by `PartitionLog::prepare_append`.
#[derive(Debug)]
pub struct PendingAppend {
    pub base_offset: i64,
    pub last_offset: i64,
    pub record_count: u64,
    /// The time stamped into the batches (topics with `message.timestamp.type=LogAppendTime`).
    pub log_append_time_ms: Option<i64>,
    file: SegmentFile,
    position: u64,
    bufs: Vec<Bytes>,
    segment_base: i64,
    end_position: u64,
    durable: bool,
}

impl PendingAppend {
    pub(crate) fn new(
        file: SegmentFile,
        position: u64,
        bufs: Vec<Bytes>,
        (base_offset, last_offset): (i64, i64),
        (segment_base, end_position): (i64, u64),
    ) -> PendingAppend {
        assert!(last_offset >= base_offset);
        let bytes: usize = bufs.iter().map(Bytes::len).sum();
        assert_eq!(position + bytes as u64, end_position);
        PendingAppend {
            base_offset,
            last_offset,
            record_count: (last_offset - base_offset + 1) as u64,
            log_append_time_ms: None,
            file,
            position,
            bufs,
            segment_base,
            end_position,
            durable: false,
        }
    }

    /// Asks for the write to complete only once its data is durable (`RWF_DSYNC`: the write
    /// and its fdatasync in one io_uring submission, ordered by the kernel). The run this
    /// append joins is written that way as a whole.
    pub fn write_durably(&mut self) {
        self.durable = true;
    }

    /// Performs this append's writes (see `write_coalesced`).
    pub async fn write(self) -> io::Result<WrittenAppend> {
        let mut outcomes = write_coalesced(vec![self]).await;
        outcomes.pop().expect("one outcome per append")
    }
}

/// Performs many prepared appends at once (group commit): appends that continue one another
/// in the same segment file become one run written with vectored writes of up to
/// `WRITE_IOVECS_MAX` iovecs, and every run is submitted to io_uring in the same loop turn.
/// A run with a member that asked `write_durably` is written with `RWF_DSYNC` as a whole.
/// Returns one outcome per append, in order; a failed run fails all of its appends.
pub async fn write_coalesced(pendings: Vec<PendingAppend>) -> Vec<io::Result<WrittenAppend>> {
    struct Run {
        file: SegmentFile,
        position: u64,
        end_position: u64,
        bufs: Vec<Bytes>,
        durable: bool,
    }
    let mut runs: Vec<Run> = Vec::new();
    let mut last_run_of_fd: HashMap<RawFd, usize> = HashMap::new();
    let mut members: Vec<(usize, WrittenAppend)> = Vec::with_capacity(pendings.len());
    for p in pendings {
        let fd = crate::log::segment_raw_fd(&p.file);
        let run = match last_run_of_fd.get(&fd) {
            Some(&r) if runs[r].end_position == p.position => r,
            _ => {
                last_run_of_fd.insert(fd, runs.len());
                runs.push(Run {
                    file: p.file.clone(),
                    position: p.position,
                    end_position: p.position,
                    bufs: Vec::new(),
                    durable: false,
                });
                runs.len() - 1
            }
        };
        runs[run].end_position = p.end_position;
        runs[run].bufs.extend(p.bufs);
        runs[run].durable |= p.durable;
        let written = WrittenAppend {
            base_offset: p.base_offset,
            last_offset: p.last_offset,
            log_append_time_ms: p.log_append_time_ms,
            segment_base: p.segment_base,
            end_position: p.end_position,
            durable: false,
        };
        members.push((run, written));
    }
    let durable: Vec<bool> = runs.iter().map(|r| r.durable).collect();
    let outcomes = join_all(runs.into_iter().map(|run| async move {
        let mut position = run.position;
        let mut bufs = run.bufs;
        while !bufs.is_empty() {
            let rest = bufs.split_off(bufs.len().min(WRITE_IOVECS_MAX));
            position = write_all_at(&run.file, bufs, position, run.durable).await?;
            bufs = rest;
        }
        assert_eq!(
            position, run.end_position,
            "every reserved byte was written"
        );
        Ok::<(), io::Error>(())
    }))
    .await;
    members
        .into_iter()
        .map(|(run, mut written)| match &outcomes[run] {
            Ok(()) => {
                written.durable = durable[run];
                Ok(written)
            }
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        })
        .collect()
}

/// Writes all of `bufs` at `position` (each write with `RWF_DSYNC` when `durable`); returns
/// the position after them.
async fn write_all_at(
    file: &SegmentFile,
    mut bufs: Vec<Bytes>,
    mut position: u64,
    durable: bool,
) -> io::Result<u64> {
    assert!(bufs.len() <= WRITE_IOVECS_MAX);
    while bufs.iter().any(|b| !b.is_empty()) {
        let (result, returned) = if durable {
            let op = WriteVectoredDsyncAt::new(file.clone(), position, bufs);
            let BufResult(result, op) = compio::runtime::submit(op).await;
            (result, op.bufs)
        } else {
            let op = WriteVectoredAt::new(file.clone(), position, bufs);
            let BufResult(result, bufs) = compio::runtime::submit(op).await.into_inner();
            (result, bufs)
        };
        bufs = returned;
        match result {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "segment write wrote 0 bytes",
                ))
            }
            Ok(n) => {
                position += n as u64;
                advance(&mut bufs, n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(position)
}

/// Drops the first `n` bytes of `bufs` (after a short write).
fn advance(bufs: &mut Vec<Bytes>, mut n: usize) {
    let mut consumed = 0;
    for buf in bufs.iter_mut() {
        if n < buf.len() {
            let _ = buf.split_to(n);
            break;
        }
        n -= buf.len();
        consumed += 1;
    }
    bufs.drain(..consumed);
}

/// `IORING_OP_WRITEV` with `RWF_DSYNC` at a position: completes once the bytes are durable
/// (the kernel runs the write and a data sync of its range, in that order, in one request).
struct WriteVectoredDsyncAt {
    file: SegmentFile,
    position: u64,
    bufs: Vec<Bytes>,
}

impl WriteVectoredDsyncAt {
    fn new(file: SegmentFile, position: u64, bufs: Vec<Bytes>) -> Self {
        WriteVectoredDsyncAt {
            file,
            position,
            bufs,
        }
    }
}

/// The iovecs of a `WriteVectoredDsyncAt`, built once the operation sits still.
#[derive(Default)]
struct Iovecs(Vec<libc::iovec>);

// SAFETY: the entry points at `ctrl.0`'s heap array and at the `Bytes` in `self.bufs`; the
// driver keeps the operation and its control alive and unmoved until the completion
// arrives (also when the awaiting future is dropped), and neither is changed meanwhile.
unsafe impl compio_driver::OpCode for WriteVectoredDsyncAt {
    type Control = Iovecs;

    unsafe fn init(&mut self, ctrl: &mut Self::Control) {
        ctrl.0 = self
            .bufs
            .iter()
            .map(|b| libc::iovec {
                iov_base: b.as_ptr() as *mut libc::c_void,
                iov_len: b.len(),
            })
            .collect();
    }

    fn create_entry(&mut self, ctrl: &mut Self::Control) -> compio_driver::OpEntry {
        use std::os::fd::AsRawFd;
        io_uring::opcode::Writev::new(
            io_uring::types::Fd(self.file.as_raw_fd()),
            ctrl.0.as_ptr(),
            u32::try_from(ctrl.0.len()).expect("at most WRITE_IOVECS_MAX iovecs"),
        )
        .offset(self.position)
        .rw_flags(libc::RWF_DSYNC)
        .build()
        .into()
    }
}

/// A completed write, to hand to `PartitionLog::complete_append`.
#[derive(Debug)]
pub struct WrittenAppend {
    pub base_offset: i64,
    pub last_offset: i64,
    /// As prepared (`PendingAppend::log_append_time_ms`).
    pub log_append_time_ms: Option<i64>,
    segment_base: i64,
    end_position: u64,
    /// Written with `RWF_DSYNC`: durable on completion.
    durable: bool,
}

impl WrittenAppend {
    pub(crate) fn end(&self) -> (i64, u64) {
        (self.segment_base, self.end_position)
    }

    /// Written with `RWF_DSYNC` (see `PendingAppend::write_durably`).
    pub fn durable(&self) -> bool {
        self.durable
    }
}

/// Proof of a finished `SyncJob`: every offset below `offset` is durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlushedUpTo {
    pub offset: i64,
    /// The log's truncation count when the job was prepared (`PartitionLog::mark_flushed`
    /// ignores a job that a truncation overtook).
    pub(crate) truncations: u64,
}

/// What to make durable: segment files to fdatasync, index files of rolled segments,
/// directories to fsync. Produced by `PartitionLog::sync_job`; does not borrow the log.
#[derive(Debug)]
pub struct SyncJob {
    files: Vec<SegmentFile>,
    index_paths: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
    upto: FlushedUpTo,
}

impl SyncJob {
    pub(crate) fn new(upto: FlushedUpTo) -> SyncJob {
        SyncJob {
            files: Vec::new(),
            index_paths: Vec::new(),
            dirs: Vec::new(),
            upto,
        }
    }

    pub(crate) fn add_file(&mut self, file: SegmentFile) {
        self.files.push(file);
    }

    pub(crate) fn add_index(&mut self, path: PathBuf) {
        self.index_paths.push(path);
    }

    pub(crate) fn add_dir(&mut self, dir: PathBuf) {
        self.dirs.push(dir);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.files.is_empty() && self.index_paths.is_empty() && self.dirs.is_empty()
    }

    /// The offset this job makes durable (everything below it).
    pub fn upto(&self) -> FlushedUpTo {
        self.upto
    }

    /// fdatasyncs the files (io_uring `IORING_OP_FSYNC` with DATASYNC), then fsyncs the
    /// directories. Index files and directories are opened synchronously (once per roll).
    pub async fn run(self) -> io::Result<FlushedUpTo> {
        for file in self.files {
            sync(file, SyncKind::Data).await?;
        }
        for path in self.index_paths {
            let file = File::open(&path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            sync(SharedFd::new(file), SyncKind::Data).await?;
        }
        for dir in self.dirs {
            let file = File::open(&dir)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
            sync(SharedFd::new(file), SyncKind::All).await?;
        }
        Ok(self.upto)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SyncKind {
    /// fdatasync(2)
    Data,
    /// fsync(2)
    All,
}

async fn sync(file: SegmentFile, kind: SyncKind) -> io::Result<()> {
    let op = Sync::new(file, kind == SyncKind::Data);
    compio::runtime::submit(op).await.0?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_drops_written_bytes() {
        let check = |lens: &[usize], n: usize, expect: &[usize]| {
            let mut bufs: Vec<Bytes> = lens.iter().map(|&l| Bytes::from(vec![7u8; l])).collect();
            advance(&mut bufs, n);
            assert_eq!(
                bufs.iter().map(Bytes::len).collect::<Vec<_>>(),
                expect,
                "{lens:?} - {n}"
            );
        };
        check(&[16, 100], 0, &[16, 100]);
        check(&[16, 100], 10, &[6, 100]);
        check(&[16, 100], 16, &[100]);
        check(&[16, 100], 50, &[66]);
        check(&[16, 100], 116, &[]);
        check(&[16, 100, 16, 40], 120, &[12, 40]);
    }
}

/// How a clean close makes its writes durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseSync {
    /// fdatasync every file written, fsync the directory: the log is durable on return.
    EachFile,
    /// No per-file sync: the caller syncs the whole filesystem afterwards
    /// (`LogDirLock::sync_filesystem`, one `syncfs(2)` for every log of a dir), and only
    /// then may it count the close as clean. At thousands of partitions this is the
    /// difference between seconds and minutes (each per-file sync waits for a journal commit).
    Syncfs,
}
