//! Kafka framing: every request and response is a big-endian `i32` size followed by
//! that many bytes of body.
//!
//! [`FrameReader`] checks the claimed size against `request_bytes_max` *before* it
//! buffers anything for the body, and grows its buffer only as bytes arrive (at most
//! [`READ_CHUNK_BYTES`] of spare capacity beyond what was received), so a peer that
//! claims 100 MiB and sends 10 bytes costs about 64 KiB, not 100 MiB.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use compio::buf::BufResult;
use compio::io::{AsyncRead, AsyncReadExt};

use std::sync::Arc;

use crate::limits::{FRAME_BYTES_MAX, FRAME_SIZE_PREFIX_BYTES, READ_CHUNK_BYTES};
use crate::memory_pool::{PoolReservation, RequestMemoryPool};

/// Why a frame could not be read. After any of these the connection is done: the byte
/// stream has no resynchronisation point.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The size prefix is negative or above the configured bound. Nothing was buffered
    /// for the body.
    #[error(
        "request frame of {size} bytes refused: the limit is {max} bytes \
         (socket.request.max.bytes); closing the connection"
    )]
    TooLarge { size: i64, max: usize },
    /// The peer closed the connection in the middle of a frame.
    #[error(
        "connection closed mid-frame: {received_bytes} of {expected_bytes} bytes \
         (size prefix included) received"
    )]
    Truncated {
        received_bytes: usize,
        expected_bytes: usize,
    },
    /// The socket read failed.
    #[error("reading request frame: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads size-prefixed frames from a byte stream, keeping read-ahead bytes for the next
/// frame (pipelined clients send many requests before reading a response).
///
/// One per connection; it lives on the connection's shard.
#[derive(Debug)]
pub struct FrameReader {
    request_bytes_max: usize,
    /// Received bytes not yet returned as frames: the start of the next frame.
    buf: BytesMut,
}

impl FrameReader {
    /// A reader refusing bodies larger than `request_bytes_max` bytes.
    ///
    /// # Panics
    /// If `request_bytes_max` exceeds what a Kafka size prefix can carry (`i32::MAX`).
    pub fn new(request_bytes_max: usize) -> Self {
        assert!(
            request_bytes_max <= FRAME_BYTES_MAX,
            "request_bytes_max {request_bytes_max} exceeds the Kafka frame limit {FRAME_BYTES_MAX}"
        );
        Self {
            request_bytes_max,
            buf: BytesMut::new(),
        }
    }

    /// Bytes received but not yet returned as a frame.
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Reads the next frame body (without its size prefix).
    ///
    /// Returns `Ok(None)` on a clean end of stream between frames.
    ///
    /// Not cancel safe: if the future is dropped mid-read, bytes already buffered are
    /// lost, so the connection must then be closed.
    pub async fn read_frame<R: AsyncRead>(
        &mut self,
        stream: &mut R,
    ) -> Result<Option<Bytes>, FrameError> {
        let Some(body_bytes) = self.read_size(stream).await? else {
            return Ok(None);
        };
        self.read_body(stream, body_bytes).await.map(Some)
    }

    /// [`FrameReader::read_frame`] within a [`RequestMemoryPool`]: once the size prefix is
    /// read, the whole frame is reserved in `pool` before any of its body is read; while
    /// the pool is full, reading pauses (`on_pause` runs once). The caller keeps the
    /// reservation for as long as it holds the request's bytes.
    pub async fn read_frame_pooled<R: AsyncRead>(
        &mut self,
        stream: &mut R,
        pool: &Arc<RequestMemoryPool>,
        on_pause: impl FnOnce(),
    ) -> Result<Option<(Bytes, PoolReservation)>, FrameError> {
        let Some(body_bytes) = self.read_size(stream).await? else {
            return Ok(None);
        };
        let reservation = pool
            .reserve(FRAME_SIZE_PREFIX_BYTES + body_bytes, on_pause)
            .await;
        let body = self.read_body(stream, body_bytes).await?;
        Ok(Some((body, reservation)))
    }

    /// Reads and bounds the next size prefix; `None` at a clean end of stream.
    async fn read_size<R: AsyncRead>(
        &mut self,
        stream: &mut R,
    ) -> Result<Option<usize>, FrameError> {
        if !self.fill_to(stream, FRAME_SIZE_PREFIX_BYTES).await? {
            if self.buf.is_empty() {
                return Ok(None);
            }
            return Err(self.truncated(FRAME_SIZE_PREFIX_BYTES));
        }
        self.body_bytes().map(Some)
    }

    async fn read_body<R: AsyncRead>(
        &mut self,
        stream: &mut R,
        body_bytes: usize,
    ) -> Result<Bytes, FrameError> {
        let frame_bytes = FRAME_SIZE_PREFIX_BYTES + body_bytes;
        if !self.fill_to(stream, frame_bytes).await? {
            return Err(self.truncated(frame_bytes));
        }
        self.buf.advance(FRAME_SIZE_PREFIX_BYTES);
        Ok(self.buf.split_to(body_bytes).freeze())
    }

    /// Decodes and bounds the size prefix at the start of the buffer.
    fn body_bytes(&self) -> Result<usize, FrameError> {
        let prefix: [u8; FRAME_SIZE_PREFIX_BYTES] = self.buf[..FRAME_SIZE_PREFIX_BYTES]
            .try_into()
            .expect("fill_to guaranteed the size prefix");
        let size = i32::from_be_bytes(prefix);
        match usize::try_from(size) {
            Ok(body_bytes) if body_bytes <= self.request_bytes_max => Ok(body_bytes),
            _ => Err(FrameError::TooLarge {
                size: i64::from(size),
                max: self.request_bytes_max,
            }),
        }
    }

    fn truncated(&self, expected_bytes: usize) -> FrameError {
        FrameError::Truncated {
            received_bytes: self.buf.len(),
            expected_bytes,
        }
    }

    /// Reads until at least `want_bytes` are buffered. Returns false on end of stream
    /// first. Each read offers at most [`READ_CHUNK_BYTES`] of new capacity, so memory
    /// follows the bytes received.
    async fn fill_to<R: AsyncRead>(
        &mut self,
        stream: &mut R,
        want_bytes: usize,
    ) -> Result<bool, FrameError> {
        while self.buf.len() < want_bytes {
            if self.buf.capacity() == self.buf.len() {
                self.buf.reserve(READ_CHUNK_BYTES);
            }
            let buf = std::mem::take(&mut self.buf);
            let BufResult(result, buf) = stream.append(buf).await;
            self.buf = buf;
            if result? == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Appends a Kafka size prefix for a body of `body_bytes`.
///
/// # Panics
/// If `body_bytes` exceeds `i32::MAX` (a caller bug: responses are bounded far below).
pub fn write_frame_header(buf: &mut BytesMut, body_bytes: usize) {
    let size = i32::try_from(body_bytes)
        .unwrap_or_else(|_| panic!("frame body of {body_bytes} bytes exceeds i32::MAX"));
    buf.put_i32(size);
}

#[cfg(test)]
mod tests {
    use super::*;
    use compio::buf::IoBufMut;

    /// A reader that hands out its input in pieces of the given sizes (then the rest).
    struct SplitReader {
        input: Vec<u8>,
        pieces: Vec<usize>,
    }

    impl AsyncRead for SplitReader {
        async fn read<B: IoBufMut>(&mut self, mut buf: B) -> BufResult<usize, B> {
            let piece = if self.pieces.is_empty() {
                self.input.len()
            } else {
                self.pieces.remove(0)
            };
            let dest = buf.as_uninit();
            let n = piece.min(self.input.len()).min(dest.len());
            for (slot, byte) in dest.iter_mut().zip(self.input.drain(..n)) {
                slot.write(byte);
            }
            // SAFETY: the first n bytes of the buffer were just initialised.
            unsafe { buf.set_len(n) };
            BufResult(Ok(n), buf)
        }
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    /// Reads every frame of `input` delivered in `pieces`; the last entry is the error
    /// or clean end.
    fn read_all(input: Vec<u8>, pieces: Vec<usize>, max: usize) -> (Vec<Vec<u8>>, Option<String>) {
        let mut stream = SplitReader { input, pieces };
        let mut reader = FrameReader::new(max);
        compio::runtime::Runtime::new().unwrap().block_on(async {
            let mut frames = Vec::new();
            loop {
                match reader.read_frame(&mut stream).await {
                    Ok(Some(body)) => frames.push(body.to_vec()),
                    Ok(None) => return (frames, None),
                    Err(error) => return (frames, Some(error.to_string())),
                }
            }
        })
    }

    #[test]
    fn pipelined_frames_split_anywhere() {
        let bodies: Vec<Vec<u8>> = vec![b"a".to_vec(), vec![], vec![7; 70_000], b"xyz".to_vec()];
        let input: Vec<u8> = bodies.iter().flat_map(|b| frame(b)).collect();
        for pieces in [
            vec![],
            vec![1; 20],
            vec![3, 2, 5, 1, 100_000],
            vec![4, 1, 4, 2],
        ] {
            let (frames, error) = read_all(input.clone(), pieces.clone(), 1 << 20);
            assert_eq!(error, None, "pieces {pieces:?}");
            let lengths: Vec<usize> = frames.iter().map(Vec::len).collect();
            assert!(
                frames == bodies,
                "pieces {pieces:?}: frame lengths {lengths:?}"
            );
        }
    }

    #[test]
    fn refuses_oversized_and_negative_sizes_before_buffering() {
        let cases: [(i32, &str); 3] = [
            (
                101,
                "request frame of 101 bytes refused: the limit is 100 bytes",
            ),
            (-1, "request frame of -1 bytes refused"),
            (i32::MIN, "request frame of -2147483648 bytes refused"),
        ];
        for (size, expected) in cases {
            let mut input = frame(b"ok");
            input.extend_from_slice(&size.to_be_bytes());
            input.extend_from_slice(&[0; 8]);
            let (frames, error) = read_all(input, vec![], 100);
            assert_eq!(frames, vec![b"ok".to_vec()]);
            let error = error.expect("error");
            assert!(error.starts_with(expected), "{error}");
        }
    }

    #[test]
    fn truncated_mid_prefix_and_mid_body() {
        let cases: [(Vec<u8>, &str); 2] = [
            (vec![0, 0], "2 of 4 bytes"),
            (vec![0, 0, 0, 10, 1, 2, 3], "7 of 14 bytes"),
        ];
        for (input, expected) in cases {
            let (frames, error) = read_all(input, vec![1], 100);
            assert!(frames.is_empty());
            let error = error.expect("error");
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn memory_follows_received_bytes_not_claimed_size() {
        let claimed_bytes = 50 * 1024 * 1024;
        let mut input = (claimed_bytes as i32).to_be_bytes().to_vec();
        input.extend_from_slice(&[1; 10]);
        let mut stream = SplitReader {
            input,
            pieces: vec![],
        };
        let mut reader = FrameReader::new(claimed_bytes);
        let result = compio::runtime::Runtime::new()
            .unwrap()
            .block_on(reader.read_frame(&mut stream));
        assert!(matches!(result, Err(FrameError::Truncated { .. })));
        assert!(
            reader.buf.capacity() <= 2 * READ_CHUNK_BYTES,
            "{}",
            reader.buf.capacity()
        );
    }

    #[test]
    fn reads_pipelined_frames_from_a_tcp_socket() {
        use compio::io::AsyncWriteExt;
        use compio::net::{TcpListener, TcpStream};
        let bodies: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; 1000 * usize::from(i)]).collect();
        let wire: Vec<u8> = bodies.iter().flat_map(|b| frame(b)).collect();
        let received = compio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let address = listener.local_addr().unwrap();
                let writer = compio::runtime::spawn(async move {
                    let mut client = TcpStream::connect(address).await.unwrap();
                    client.write_all(wire).await.0.unwrap();
                });
                let (mut server, _) = listener.accept().await.unwrap();
                let mut reader = FrameReader::new(1 << 20);
                let mut frames = Vec::new();
                while let Some(body) = reader.read_frame(&mut server).await.unwrap() {
                    frames.push(body.to_vec());
                }
                writer.await.unwrap();
                frames
            });
        assert!(received == bodies, "{} frames", received.len());
    }

    #[test]
    fn frame_header_round_trips() {
        let mut buf = BytesMut::new();
        write_frame_header(&mut buf, 513);
        assert_eq!(&buf[..], &[0, 0, 2, 1]);
    }
}
