//! The zero-copy response writer: encoded bytes go out with vectored writes; record ranges go
//! from the segment file to the socket with io_uring `splice` through a pooled pipe, so the
//! record bytes never enter user space.
//!
//! io_uring runs `splice` on its io-wq worker threads, so a page-cache miss blocks a worker,
//! never the shard's thread: the shard keeps serving its other connections while the disk
//! read is in flight.

use std::cell::RefCell;
use std::fs::File;
use std::io;

use bytes::Bytes;
use compio::driver::SharedFd;
use compio::fs::pipe::{anonymous, splice, Receiver, Sender};
use compio::io::AsyncWriteExt;
use compio::net::TcpStream;

use crate::fetch_response::Chunk;

/// What each pipe asks the kernel for (`F_SETPIPE_SZ`); Linux's default cap
/// (`/proc/sys/fs/pipe-max-size`) is 1 MiB. If refused, the default 64 KiB is used.
pub const PIPE_BYTES: usize = 1 << 20;
/// Idle pipes a pool keeps (each costs two descriptors).
pub const PIPES_POOLED_MAX: usize = 32;

/// A range of an open segment file to send.
#[derive(Debug, Clone)]
pub struct FileRange {
    pub file: SharedFd<File>,
    pub position: u64,
}

struct Pipe {
    rx: Receiver,
    tx: Sender,
    capacity_bytes: usize,
}

/// Pipes for splicing, kept per shard (not `Send`).
#[derive(Default)]
pub struct PipePool {
    idle: RefCell<Vec<Pipe>>,
}

impl PipePool {
    async fn take(&self) -> io::Result<Pipe> {
        if let Some(pipe) = self.idle.borrow_mut().pop() {
            return Ok(pipe);
        }
        let (rx, tx) = anonymous().await?;
        let size = nix::fcntl::fcntl(&tx, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_BYTES as i32))
            .or_else(|_| nix::fcntl::fcntl(&tx, nix::fcntl::FcntlArg::F_GETPIPE_SZ))
            .map_err(io::Error::from)?;
        Ok(Pipe {
            rx,
            tx,
            capacity_bytes: size as usize,
        })
    }

    /// Only an empty pipe may come back (one that failed mid-transfer is dropped).
    fn give_back(&self, pipe: Pipe) {
        let mut idle = self.idle.borrow_mut();
        if idle.len() < PIPES_POOLED_MAX {
            idle.push(pipe);
        }
    }

    pub fn idle_pipes(&self) -> usize {
        self.idle.borrow().len()
    }
}

/// Writes `chunks` in order. A record range that comes up short (the file was truncated
/// under us) is an error: the response header already promised its length, so the only
/// honest move left is to close the connection, as Kafka does.
pub async fn write_chunks(
    stream: &mut TcpStream,
    chunks: Vec<Chunk<FileRange>>,
    pipes: &PipePool,
) -> io::Result<()> {
    let mut pending: Vec<Bytes> = Vec::new();
    for chunk in chunks {
        match chunk {
            Chunk::Bytes(b) => pending.push(b),
            Chunk::Records(range, len) => {
                flush(stream, &mut pending).await?;
                splice_range(stream, range, len as usize, pipes).await?;
            }
        }
    }
    flush(stream, &mut pending).await
}

async fn flush(stream: &mut TcpStream, pending: &mut Vec<Bytes>) -> io::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let bufs = std::mem::take(pending);
    stream.write_vectored_all(bufs).await.0
}

async fn splice_range(
    stream: &TcpStream,
    range: FileRange,
    len: usize,
    pipes: &PipePool,
) -> io::Result<()> {
    let pipe = pipes.take().await?;
    let mut sent = 0usize;
    while sent < len {
        let want = (len - sent).min(pipe.capacity_bytes);
        let offset = (range.position + sent as u64) as i64;
        let n = splice(&range.file, &pipe.tx, want)
            .offset_in(offset)
            .await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("segment file ended {sent} bytes into a promised range of {len}"),
            ));
        }
        let mut drained = 0usize;
        while drained < n {
            let m = splice(&pipe.rx, stream, n - drained).await?;
            if m == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "socket closed during a record range",
                ));
            }
            drained += m;
        }
        sent += n;
    }
    pipes.give_back(pipe);
    Ok(())
}
