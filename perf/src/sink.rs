//! `sluice-perf sink`: a Kafka-protocol endpoint that acknowledges and discards, so the
//! load client's own ceiling can be measured with the same flags as a real broker.
//!
//! It answers ApiVersions (the same version table as `sluiced`, so the client encodes the
//! same request versions), Metadata (one broker, itself; every requested topic exists
//! with `--partitions` partitions), CreateTopics (always created), Produce (every
//! partition acknowledged with increasing base offsets; records are counted from the
//! batch headers, then dropped), ListOffsets (earliest 0, latest the next produce offset)
//! and Fetch (whole batches of synthetic `--record-size` records from a prebuilt template,
//! their base offsets rewritten to follow the fetch offset).
//!
//! One compio runtime thread serves every connection. Responses to pipelined requests
//! already received are written together, with vectored writes: fetched record bytes go
//! from the template to the socket without a copy in user space (as `sluiced` splices
//! them from its files), so the sink stays cheaper than the broker it stands in for.

mod answer;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use compio::io::AsyncWriteExt;
use compio::net::{TcpListener, TcpStream};
use sluice_net::client::ClientError;
use sluice_net::FrameReader;

use answer::FetchTemplate;

#[derive(clap::Args, Debug)]
pub struct SinkArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on; 0 picks a free one (printed on the first line).
    #[arg(long)]
    port: u16,
    /// Partitions every topic claims to have.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// Value bytes of the synthetic records served to fetches.
    #[arg(long = "record-size", default_value_t = 1024)]
    record_size: usize,
    /// Bytes of each synthetic batch served to fetches (like the producer's batch.size).
    #[arg(long = "batch-size", default_value_t = 16_384)]
    batch_size_bytes: usize,
}

/// Largest request the sink reads (`sluiced`'s default `socket.request.max.bytes`).
const REQUEST_BYTES_MAX: usize = sluice_net::limits::REQUEST_BYTES_MAX_DEFAULT;
/// Connections served at once; more are closed on accept.
const CONNECTIONS_MAX: usize = 1024;
/// Partitions whose produce offsets are remembered; beyond, base offsets are 0.
pub const PARTITION_OFFSETS_MAX: usize = 1 << 20;
/// Partitions a topic may claim (`--partitions`).
pub const TOPIC_PARTITIONS_MAX: i32 = 100_000;
/// Answers buffered before they are written, even when more requests are waiting.
const OUT_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Pieces per vectored write: below Linux's `IOV_MAX` (1024).
const IOVECS_MAX: usize = 512;
/// Largest `--record-size`.
const RECORD_BYTES_MAX: usize = 1024 * 1024;

const _: () = {
    assert!(OUT_BYTES_MAX >= answer::FETCH_TEMPLATE_BYTES);
    assert!(RECORD_BYTES_MAX < answer::FETCH_TEMPLATE_BYTES);
};

/// What every connection of the sink shares (on its one thread).
pub struct Sink {
    host: String,
    port: i32,
    partitions: i32,
    /// Next base offset per (topic, partition), bounded by [`PARTITION_OFFSETS_MAX`].
    next_offsets: RefCell<HashMap<(String, i32), i64>>,
    fetch_template: FetchTemplate,
    connections: Cell<usize>,
}

pub async fn run(args: SinkArgs) -> Result<(), ClientError> {
    let invalid = |message: String| Err(ClientError::Metadata(message));
    if !(1..=TOPIC_PARTITIONS_MAX).contains(&args.partitions) {
        return invalid(format!(
            "--partitions must be in 1..={TOPIC_PARTITIONS_MAX}"
        ));
    }
    if !(1..=RECORD_BYTES_MAX).contains(&args.record_size) {
        return invalid(format!("--record-size must be in 1..={RECORD_BYTES_MAX}"));
    }
    let address = format!("{}:{}", args.host, args.port);
    let listener = TcpListener::bind(&address)
        .await
        .map_err(|source| ClientError::Metadata(format!("sink: binding {address}: {source}")))?;
    let local = listener
        .local_addr()
        .map_err(|source| ClientError::Metadata(format!("sink: local address: {source}")))?;
    let sink = Rc::new(Sink {
        host: args.host.clone(),
        port: i32::from(local.port()),
        partitions: args.partitions,
        next_offsets: RefCell::new(HashMap::new()),
        fetch_template: FetchTemplate::new(args.record_size, args.batch_size_bytes),
        connections: Cell::new(0),
    });
    println!("sink: listening on {local}");
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                eprintln!("sink: accept: {error}");
                continue;
            }
        };
        if sink.connections.get() >= CONNECTIONS_MAX {
            eprintln!("sink: refusing {peer}: {CONNECTIONS_MAX} connections open");
            continue;
        }
        sink.connections.set(sink.connections.get() + 1);
        let sink = sink.clone();
        compio::runtime::spawn(async move {
            if let Err(reason) = serve(&sink, stream).await {
                eprintln!("sink: closing {peer}: {reason}");
            }
            sink.connections.set(sink.connections.get() - 1);
        })
        .detach();
    }
}

/// One connection: read a request, answer it; answers to requests already buffered
/// are held back and written together.
async fn serve(sink: &Sink, mut stream: TcpStream) -> Result<(), String> {
    let _ = stream.set_nodelay(true);
    let mut reader = FrameReader::new(REQUEST_BYTES_MAX);
    let mut out = Out::default();
    loop {
        let frame = match reader.read_frame(&mut stream).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(()),
            Err(error) => return Err(error.to_string()),
        };
        answer::answer(sink, frame, &mut out)?;
        if reader.buffered_bytes() == 0 || out.bytes >= OUT_BYTES_MAX {
            out.write(&mut stream)
                .await
                .map_err(|error| format!("writing answers: {error}"))?;
        }
    }
}

/// Answers not yet written: encoded bytes and shared pieces (template records), in order.
#[derive(Default)]
pub struct Out {
    /// Encoded answers since the last piece.
    encoded: BytesMut,
    pieces: Vec<Bytes>,
    bytes: usize,
}

impl Out {
    /// Where the next answer is encoded; call [`Self::encoded`] after.
    pub fn encode_buffer(&mut self) -> &mut BytesMut {
        &mut self.encoded
    }

    /// Counts what was encoded into [`Self::encode_buffer`] since the last piece.
    pub fn encoded(&mut self, bytes: usize) {
        self.bytes += bytes;
    }

    /// Appends a shared piece after what is encoded so far.
    pub fn piece(&mut self, piece: Bytes) {
        if !self.encoded.is_empty() {
            self.pieces.push(self.encoded.split().freeze());
        }
        self.bytes += piece.len();
        self.pieces.push(piece);
    }

    /// Writes everything, at most [`IOVECS_MAX`] pieces per vectored write.
    async fn write(&mut self, stream: &mut TcpStream) -> std::io::Result<()> {
        if !self.encoded.is_empty() {
            self.pieces.push(self.encoded.split().freeze());
        }
        let mut pieces = std::mem::take(&mut self.pieces);
        while !pieces.is_empty() {
            let rest = pieces.split_off(pieces.len().min(IOVECS_MAX));
            stream.write_vectored_all(pieces).await.0?;
            pieces = rest;
        }
        self.bytes = 0;
        Ok(())
    }
}
