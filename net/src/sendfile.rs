//! `sendfile(2)` on a shard's bounded worker threads: the alternative to io_uring splice for
//! sending record ranges (`fetch.transfer.method=sendfile`).
//!
//! io_uring has no sendfile opcode, and `sendfile` blocks on a page-cache miss, so it runs on
//! a few threads of the shard's own, fed by a bounded queue: a shard whose workers are all
//! busy waits asynchronously for a free slot and keeps serving its other connections. A job
//! owns duplicates of the socket and file descriptors, so it stays valid even if the
//! connection that queued it is dropped mid-transfer.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::thread::JoinHandle;

use futures_channel::oneshot;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// Threads per shard running `sendfile`.
pub const SENDFILE_WORKERS: usize = 2;
/// Ranges queued for a shard's workers at most (senders wait beyond it).
pub const SENDFILE_QUEUE_MAX: usize = 64;
/// How long a worker waits for a full non-blocking socket to take more bytes before it gives
/// up on the connection. The broker's sockets are blocking with `SO_SNDTIMEO` set (the
/// connection's send stall bound), so there `sendfile` itself returns `EAGAIN` after that
/// long without progress, and this wait bounds the retry.
pub const SENDFILE_STALL_MS: u16 = 30_000;
/// Bytes handed to one `sendfile` call at most (Linux caps a call near 2 GiB anyway).
const SENDFILE_CALL_MAX: usize = 1 << 30;

struct Job {
    socket: OwnedFd,
    file: OwnedFd,
    position: u64,
    len: usize,
    done: oneshot::Sender<io::Result<()>>,
}

/// A shard's sendfile threads. Dropping it closes the queue; the threads finish what is
/// queued and exit on their own (never joined: a stalled socket must not hold up shutdown).
pub struct SendfileWorkers {
    tx: async_channel::Sender<Job>,
    _threads: Vec<JoinHandle<()>>,
}

impl SendfileWorkers {
    /// Starts `SENDFILE_WORKERS` threads named `{name}-sendfile-N`, allowed on every CPU the
    /// process's main thread may use (not the shard's single pinned CPU).
    pub fn start(name: &str) -> io::Result<SendfileWorkers> {
        let (tx, rx) = async_channel::bounded::<Job>(SENDFILE_QUEUE_MAX);
        let mut threads = Vec::with_capacity(SENDFILE_WORKERS);
        for i in 0..SENDFILE_WORKERS {
            let rx = rx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("{name}-sendfile-{i}"))
                .spawn(move || {
                    unpin_from_shard_cpu();
                    while let Ok(job) = rx.recv_blocking() {
                        let result =
                            sendfile_all(job.socket.as_fd(), &job.file, job.position, job.len);
                        let _ = job.done.send(result);
                    }
                })?;
            threads.push(thread);
        }
        Ok(SendfileWorkers {
            tx,
            _threads: threads,
        })
    }

    /// Sends `len` bytes of `file` from `position` to `socket`, on a worker. A range that
    /// comes up short (the file was truncated) is an `UnexpectedEof` error.
    pub async fn send(
        &self,
        socket: BorrowedFd<'_>,
        file: BorrowedFd<'_>,
        position: u64,
        len: usize,
    ) -> io::Result<()> {
        let (done, result) = oneshot::channel();
        let job = Job {
            socket: socket.try_clone_to_owned()?,
            file: file.try_clone_to_owned()?,
            position,
            len,
            done,
        };
        self.tx
            .send(job)
            .await
            .map_err(|_| io::Error::other("the sendfile workers stopped"))?;
        result
            .await
            .unwrap_or_else(|_| Err(io::Error::other("a sendfile worker stopped")))
    }
}

/// Widens the calling thread's CPU affinity to the main thread's (the process's CPUs).
fn unpin_from_shard_cpu() {
    use nix::sched::{sched_getaffinity, sched_setaffinity};
    use nix::unistd::Pid;
    // For the process id, sched_getaffinity answers for the main thread, which is not pinned.
    if let Ok(cpus) = sched_getaffinity(Pid::this()) {
        let _ = sched_setaffinity(Pid::from_raw(0), &cpus);
    }
}

/// Blocking: `len` bytes of `file` from `position` into `socket`.
fn sendfile_all(socket: BorrowedFd, file: &OwnedFd, position: u64, len: usize) -> io::Result<()> {
    let mut offset = i64::try_from(position).map_err(io::Error::other)?;
    let mut sent = 0usize;
    while sent < len {
        let want = (len - sent).min(SENDFILE_CALL_MAX);
        match nix::sys::sendfile::sendfile64(socket, file, Some(&mut offset), want) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("segment file ended {sent} bytes into a promised range of {len}"),
                ))
            }
            Ok(n) => sent += n,
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => wait_writable(socket)?,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Waits until a non-blocking socket can take more bytes, at most `SENDFILE_STALL_MS`.
fn wait_writable(socket: BorrowedFd) -> io::Result<()> {
    let mut fds = [PollFd::new(socket, PollFlags::POLLOUT)];
    loop {
        match poll(&mut fds, PollTimeout::from(SENDFILE_STALL_MS)) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "socket {} took no bytes for {SENDFILE_STALL_MS} ms",
                        socket.as_raw_fd()
                    ),
                ))
            }
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
