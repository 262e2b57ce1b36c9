//! The zero-copy response writer: encoded bytes go out with vectored writes; record ranges go
//! from the segment file to the socket without entering user space, by one of two methods
//! (`fetch.transfer.method`):
//! - `splice`: io_uring `splice` file → pooled pipe → socket. io_uring runs `splice` on its
//!   io-wq worker threads, so a page-cache miss blocks a worker, never the shard's thread.
//! - `sendfile`: `sendfile(2)` on the shard's bounded sendfile threads (`crate::sendfile`).
//!
//! Either way the shard keeps serving its other connections while a disk read is in flight.

use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;

use bytes::Bytes;
use compio::driver::SharedFd;
use compio::fs::pipe::{anonymous, splice, Receiver, Sender};
use compio::io::AsyncWriteExt;
use compio::net::TcpStream;

use crate::fetch_response::Chunk;
use crate::sendfile::SendfileWorkers;

/// How record ranges go from a segment file to a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransferMethod {
    /// io_uring splice through a pooled pipe, on io-wq workers.
    #[default]
    Splice,
    /// `sendfile(2)` on the shard's bounded worker threads.
    Sendfile,
}

impl TransferMethod {
    pub fn parse(s: &str) -> Option<TransferMethod> {
        match s {
            "splice" => Some(TransferMethod::Splice),
            "sendfile" => Some(TransferMethod::Sendfile),
            _ => None,
        }
    }
}

/// A shard's means of sending record ranges (not `Send`).
pub struct RangeSender {
    pipes: PipePool,
    sendfile: Option<SendfileWorkers>,
}

impl RangeSender {
    /// `name` names the sendfile threads, when `method` needs them.
    pub fn new(method: TransferMethod, name: &str) -> io::Result<RangeSender> {
        let sendfile = match method {
            TransferMethod::Splice => None,
            TransferMethod::Sendfile => Some(SendfileWorkers::start(name)?),
        };
        Ok(RangeSender {
            pipes: PipePool::default(),
            sendfile,
        })
    }

    pub fn method(&self) -> TransferMethod {
        match self.sendfile {
            Some(_) => TransferMethod::Sendfile,
            None => TransferMethod::Splice,
        }
    }

    async fn send(&self, stream: &TcpStream, range: FileRange, len: usize) -> io::Result<()> {
        match &self.sendfile {
            None => splice_range(stream, range, len, &self.pipes).await,
            Some(workers) => {
                workers
                    .send(stream.as_fd(), range.file.as_fd(), range.position, len)
                    .await
            }
        }
    }
}

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
struct PipePool {
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
}

/// Writes `chunks` in order. A record range that comes up short (the file was truncated
/// under us) is an error: the response header already promised its length, so the only
/// honest move left is to close the connection, as Kafka does.
pub async fn write_chunks(
    stream: &mut TcpStream,
    chunks: Vec<Chunk<FileRange>>,
    sender: &RangeSender,
) -> io::Result<()> {
    let mut pending: Vec<Bytes> = Vec::new();
    for chunk in chunks {
        match chunk {
            Chunk::Bytes(b) => pending.push(b),
            Chunk::Records(range, len) => {
                flush(stream, &mut pending).await?;
                sender.send(stream, range, len as usize).await?;
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// Serves one connection: writes `header` then `len` bytes of `file` from `position`
    /// with `method`; returns the writer's outcome and every byte the peer received.
    fn transfer(
        method: TransferMethod,
        file: File,
        position: u64,
        len: u32,
    ) -> (io::Result<()>, Vec<u8>) {
        let runtime = compio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let listener = compio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let reader = std::thread::spawn(move || {
                let mut peer = std::net::TcpStream::connect(addr).unwrap();
                let mut got = Vec::new();
                peer.read_to_end(&mut got).unwrap();
                got
            });
            let (mut stream, _) = listener.accept().await.unwrap();
            let sender = RangeSender::new(method, "test").unwrap();
            assert_eq!(sender.method(), method);
            let range = FileRange {
                file: SharedFd::new(file),
                position,
            };
            let chunks = vec![
                Chunk::Bytes(Bytes::from_static(b"header:")),
                Chunk::Records(range, len),
            ];
            let outcome = write_chunks(&mut stream, chunks, &sender).await;
            drop(stream);
            (outcome, reader.join().unwrap())
        })
    }

    fn segment_file(bytes: &[u8]) -> File {
        let path = std::env::temp_dir().join(format!(
            "sluice-zero-copy-{}-{}",
            std::process::id(),
            bytes.len()
        ));
        let mut f = File::create(&path).unwrap();
        f.write_all(bytes).unwrap();
        let file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }

    #[test]
    fn both_methods_send_the_exact_range() {
        // Larger than one pipe, so splice takes several rounds.
        let data: Vec<u8> = (0..3 * PIPE_BYTES + 12345)
            .map(|i| (i % 251) as u8)
            .collect();
        for method in [TransferMethod::Splice, TransferMethod::Sendfile] {
            let (outcome, got) =
                transfer(method, segment_file(&data), 777, 2 * PIPE_BYTES as u32 + 99);
            outcome.unwrap();
            assert_eq!(&got[..7], b"header:", "{method:?}");
            assert_eq!(
                &got[7..],
                &data[777..777 + 2 * PIPE_BYTES + 99],
                "{method:?}"
            );
        }
    }

    #[test]
    fn a_range_past_the_end_of_the_file_is_an_error() {
        let data = vec![7u8; 5000];
        for method in [TransferMethod::Splice, TransferMethod::Sendfile] {
            let (outcome, got) = transfer(method, segment_file(&data), 1000, 8000);
            let err = outcome.expect_err("a short range must fail the response");
            assert_eq!(
                err.kind(),
                io::ErrorKind::UnexpectedEof,
                "{method:?}: {err}"
            );
            // What the file had was sent; the connection then closes.
            assert_eq!(got.len(), 7 + 4000, "{method:?}");
        }
    }

    #[test]
    fn the_method_parses_from_its_config_value() {
        assert_eq!(
            TransferMethod::parse("splice"),
            Some(TransferMethod::Splice)
        );
        assert_eq!(
            TransferMethod::parse("sendfile"),
            Some(TransferMethod::Sendfile)
        );
        assert_eq!(TransferMethod::parse("mmap"), None);
    }
}
