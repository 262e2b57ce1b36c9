//! One client connection: a reader decodes requests and queues their answers-to-be; a writer
//! awaits them in request order and writes them. Produces are queued for appending as they
//! are read (in order), so pipelined produces share group commits; every other request runs
//! only after the answers before it are out, so its semantics are those of one-at-a-time
//! handling, as Kafka's.

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use compio::io::AsyncWriteExt;
use compio::net::TcpStream;
use futures_util::future::{select, Either};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use sluice_net::codec::{decode_request, encode_response, DecodeError};
use sluice_net::fetch_response::{encode_fetch_response, Chunk, FetchTopicOut};
use sluice_net::frame::{FrameError, FrameReader};
use sluice_net::memory_pool::{PoolReservation, RequestMemoryPool};
use sluice_net::zero_copy::{write_chunks, FileRange};

use crate::handlers;
use crate::log_limit::LogLimit;
use crate::shard::Shard;

/// What a handler wants the connection to do.
pub enum Reply {
    Send(Box<ResponseKind>),
    /// acks=0 produce: nothing is sent back.
    Nothing,
    /// A Fetch answer, framed by hand around segment file ranges (zero copy).
    Fetch(Vec<FetchTopicOut<FileRange>>),
    /// Close the connection (e.g. an acks=0 produce that failed, as Kafka does).
    Close(String),
}

/// An encoded response ready to write.
enum Out {
    Bytes(BytesMut),
    Chunks(Vec<Chunk<FileRange>>),
}

/// Requests one connection may have in flight (decoded, answered in order). Produces among
/// them are queued for appending at once, so a client's `max.in.flight` requests share a
/// group commit instead of waiting for each other's round trips.
pub const CONNECTION_REQUESTS_IN_FLIGHT_MAX: usize = 16;
/// How long a blocking send into a connection's socket may make no progress (`SO_SNDTIMEO`):
/// record ranges are sent by blocking splice/sendfile on worker threads, and a consumer that
/// stops reading must not hold a worker forever. The send then fails and the connection
/// closes. (io_uring's own sends are non-blocking and unaffected.)
pub const SOCKET_SEND_STALL_MS: u64 = 30_000;

fn set_send_timeout(stream: &TcpStream, ms: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let timeout = libc::timeval {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_usec: ((ms % 1000) * 1000) as libc::suseconds_t,
    };
    // SAFETY: setsockopt(2) reads `size_of::<timeval>()` bytes from `timeout`, which lives
    // for the call; the descriptor is the connection's open socket.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// An answer being prepared; the writer awaits them in request order.
type Pending = Pin<Box<dyn Future<Output = Result<Option<Out>, String>>>>;
/// A queued answer, whether it was deferred, and the request's pool reservation.
type Queued = (Pending, bool, Option<PoolReservation>);

/// What the reader and the writer of one connection share (both on this shard).
#[derive(Default)]
struct ConnState {
    /// Non-produce requests queued but not answered yet. A produce waits until this is 0,
    /// so it sees the effects of every request sent before it (e.g. CreateTopics), as when
    /// requests are handled one at a time.
    deferred: Cell<usize>,
    deferred_done: event_listener::Event,
    /// Set when the writer stops (a failed write, a request that closes the connection).
    closed: Cell<bool>,
    closing: event_listener::Event,
}

impl ConnState {
    async fn wait_no_deferred(&self) {
        while self.deferred.get() > 0 && !self.closed.get() {
            let listener = self.deferred_done.listen();
            if self.deferred.get() == 0 || self.closed.get() {
                break;
            }
            listener.await;
        }
    }

    fn close(&self) {
        self.closed.set(true);
        self.closing.notify(usize::MAX);
        self.deferred_done.notify(usize::MAX);
    }
}

pub async fn serve_connection(shard: Rc<Shard>, stream: TcpStream, peer: SocketAddr) {
    shard.wait_ready().await;
    crate::cluster::wait_first_unfenced(&shard).await;
    let _ = stream.set_nodelay(true);
    if let Err(e) = set_send_timeout(&stream, SOCKET_SEND_STALL_MS) {
        tracing::warn!(%peer, "SO_SNDTIMEO not set: {e}");
    }
    let (mut read_half, write_half) = stream.into_split();
    let (tx, rx) = async_channel::bounded::<Queued>(CONNECTION_REQUESTS_IN_FLIGHT_MAX);
    let state = Rc::new(ConnState::default());
    let writer = compio::runtime::spawn(write_answers(
        shard.clone(),
        write_half,
        rx,
        state.clone(),
        peer,
    ));
    read_requests(&shard, &mut read_half, tx, &state, peer).await;
    let _ = writer.await;
}

/// Reads, decodes and queues requests until EOF, a bad frame, the broker stopping or the
/// writer closing the connection.
async fn read_requests(
    shard: &Rc<Shard>,
    stream: &mut TcpStream,
    tx: async_channel::Sender<Queued>,
    state: &ConnState,
    peer: SocketAddr,
) {
    let mut reader = FrameReader::new(shard.config.socket_request_max_bytes as usize);
    loop {
        let frame = {
            let (stop, closing) = (shard.stop.listen(), state.closing.listen());
            if shard.stopping.get() || state.closed.get() {
                return;
            }
            let read = read_frame(&mut reader, stream, shard.broker.request_pool.as_ref());
            match select(Box::pin(read), select(stop, closing)).await {
                Either::Left((r, _)) => r,
                Either::Right(_) => return,
            }
        };
        let (frame, reservation) = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(e) => {
                tracing::info!(%peer, "closing connection: {e}");
                return;
            }
        };
        match prepare(shard, frame, peer, state).await {
            Ok((pending, deferred)) => {
                state
                    .deferred
                    .set(state.deferred.get() + usize::from(deferred));
                if tx.send((pending, deferred, reservation)).await.is_err() {
                    return;
                }
            }
            Err(reason) => {
                tracing::info!(%peer, "closing connection: {reason}");
                return;
            }
        }
    }
}

/// Reads lines the request memory pool paused, at most one per interval for the process.
static READS_PAUSED_LOG: LogLimit = LogLimit::new();

/// The next frame, reserved in the request memory pool when there is one (reading pauses
/// while it is full).
async fn read_frame(
    reader: &mut FrameReader,
    stream: &mut TcpStream,
    pool: Option<&Arc<RequestMemoryPool>>,
) -> Result<Option<(Bytes, Option<PoolReservation>)>, FrameError> {
    let Some(pool) = pool else {
        return Ok(reader.read_frame(stream).await?.map(|f| (f, None)));
    };
    let on_pause = || {
        if let Some(suppressed) = READS_PAUSED_LOG.allow() {
            tracing::warn!(
                "requests being read hold {} of queued.max.request.bytes={}: pausing reads \
                 until they are handled ({suppressed} more pauses since the last line)",
                pool.used_bytes(),
                pool.capacity_bytes()
            );
        }
    };
    let read = reader.read_frame_pooled(stream, pool, on_pause).await?;
    Ok(read.map(|(f, r)| (f, Some(r))))
}

/// Awaits each queued answer in request order and writes it; a request's pool reservation
/// is released once its answer is ready.
async fn write_answers(
    shard: Rc<Shard>,
    mut stream: TcpStream,
    rx: async_channel::Receiver<Queued>,
    state: Rc<ConnState>,
    peer: SocketAddr,
) {
    while let Ok((pending, deferred, reservation)) = rx.recv().await {
        let answer = pending.await;
        drop(reservation);
        if deferred {
            state.deferred.set(state.deferred.get() - 1);
            state.deferred_done.notify(usize::MAX);
        }
        let written = match answer {
            Ok(Some(Out::Bytes(bytes))) => stream.write_all(bytes).await.0,
            Ok(Some(Out::Chunks(chunks))) => write_chunks(&mut stream, chunks, &shard.ranges).await,
            Ok(None) => Ok(()),
            Err(reason) => {
                tracing::info!(%peer, "closing connection: {reason}");
                break;
            }
        };
        if let Err(e) = written {
            tracing::debug!(%peer, "write failed: {e}");
            break;
        }
    }
    state.close();
}

/// Decodes one request and returns its answer-to-be, and whether it is deferred (runs only
/// once every earlier answer is out) — every request but Produce, whose records are queued
/// here, in order. `Err` closes the connection.
async fn prepare(
    shard: &Rc<Shard>,
    frame: Bytes,
    peer: SocketAddr,
    state: &ConnState,
) -> Result<(Pending, bool), String> {
    let cluster = shard.broker.cluster.is_some();
    let request = match decode_request(frame, |key| handlers::served(key, cluster)) {
        Ok(r) => r,
        Err(DecodeError::UnsupportedVersion {
            api_key: ApiKey::ApiVersions,
            header,
            ..
        }) => {
            let body = handlers::api_versions::unsupported_version();
            let out = encode(header.correlation_id, ApiKey::ApiVersions, 0, &body)
                .map(|b| Some(Out::Bytes(b)));
            return Ok((Box::pin(std::future::ready(out)), false));
        }
        Err(e) => return Err(e.to_string()),
    };
    let (api_key, version, correlation_id) = (
        request.api_key,
        request.version,
        request.header.correlation_id,
    );
    let started = std::time::Instant::now();
    let answer = Answer {
        api_key,
        version,
        correlation_id,
        started,
    };
    if let RequestKind::Produce(req) = request.body {
        state.wait_no_deferred().await;
        let completion = handlers::produce::submit(shard, version, req).await;
        let shard = shard.clone();
        return Ok((
            Box::pin(async move { answer.finish(&shard, completion.await) }),
            false,
        ));
    }
    let client = Client {
        id: request
            .header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        peer,
    };
    let (shard, body) = (shard.clone(), request.body);
    let pending: Pending = Box::pin(async move {
        let reply = dispatch(&shard, version, &client, body).await;
        answer.finish(&shard, reply)
    });
    Ok((pending, true))
}

/// Where an answer goes and when its request arrived.
#[derive(Clone, Copy)]
struct Answer {
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    started: std::time::Instant,
}

impl Answer {
    fn finish(self, shard: &Shard, reply: Reply) -> Result<Option<Out>, String> {
        shard
            .metrics
            .request(self.api_key as i16, self.started.elapsed());
        match reply {
            Reply::Send(body) => encode(self.correlation_id, self.api_key, self.version, &body)
                .map(|b| Some(Out::Bytes(b))),
            Reply::Fetch(topics) => Ok(Some(Out::Chunks(encode_fetch_response(
                self.correlation_id,
                self.version,
                topics,
            )))),
            Reply::Nothing => Ok(None),
            Reply::Close(reason) => Err(reason),
        }
    }
}

fn encode(
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    body: &ResponseKind,
) -> Result<BytesMut, String> {
    let mut out = BytesMut::new();
    encode_response(correlation_id, api_key, version, body, &mut out)
        .map_err(|e| format!("encoding {api_key:?} v{version} response: {e}"))?;
    Ok(out)
}

/// Who sent a request (JoinGroup records it for DescribeGroups).
struct Client {
    id: String,
    peer: SocketAddr,
}

async fn dispatch(shard: &Rc<Shard>, version: i16, client: &Client, body: RequestKind) -> Reply {
    let send = |r: ResponseKind| Reply::Send(Box::new(r));
    match body {
        RequestKind::ApiVersions(req) => send(ResponseKind::ApiVersions(
            handlers::api_versions::handle(version, req, shard.broker.cluster.is_some()),
        )),
        RequestKind::Metadata(req) => send(ResponseKind::Metadata(
            handlers::metadata::handle(shard, version, req).await,
        )),
        RequestKind::Fetch(req) => Reply::Fetch(handlers::fetch::handle(shard, version, req).await),
        RequestKind::ListOffsets(req) => send(ResponseKind::ListOffsets(
            handlers::list_offsets::handle(shard, version, req).await,
        )),
        RequestKind::CreateTopics(req) => send(ResponseKind::CreateTopics(
            handlers::create_topics::handle(shard, version, req).await,
        )),
        RequestKind::DeleteTopics(req) => send(ResponseKind::DeleteTopics(
            handlers::delete_topics::handle(shard, version, req).await,
        )),
        RequestKind::InitProducerId(req) => send(ResponseKind::InitProducerId(
            handlers::init_producer_id::handle(shard, version, req).await,
        )),
        other => dispatch_admin(shard, version, client, other).await,
    }
}

/// Topic configs, CreatePartitions and DeleteRecords.
async fn dispatch_admin(
    shard: &Rc<Shard>,
    version: i16,
    client: &Client,
    body: RequestKind,
) -> Reply {
    use handlers::*;
    let send = |r: ResponseKind| Reply::Send(Box::new(r));
    match body {
        RequestKind::DescribeConfigs(req) => send(ResponseKind::DescribeConfigs(
            describe_configs::handle(shard, version, req).await,
        )),
        RequestKind::AlterConfigs(req) => send(ResponseKind::AlterConfigs(
            alter_configs::handle(shard, version, req).await,
        )),
        RequestKind::IncrementalAlterConfigs(req) => send(ResponseKind::IncrementalAlterConfigs(
            incremental_alter_configs::handle(shard, version, req).await,
        )),
        RequestKind::CreatePartitions(req) => send(ResponseKind::CreatePartitions(
            create_partitions::handle(shard, version, req).await,
        )),
        RequestKind::DeleteRecords(req) => send(ResponseKind::DeleteRecords(
            delete_records::handle(shard, version, req).await,
        )),
        RequestKind::ListConfigResources(req) => send(ResponseKind::ListConfigResources(
            list_config_resources::handle(shard, version, req),
        )),
        RequestKind::OffsetForLeaderEpoch(req) => send(ResponseKind::OffsetForLeaderEpoch(
            offset_for_leader_epoch::handle(shard, version, req).await,
        )),
        RequestKind::DescribeLogDirs(req) => send(ResponseKind::DescribeLogDirs(
            describe_log_dirs::handle(shard, version, req).await,
        )),
        other => dispatch_cluster(shard, version, client, other).await,
    }
}

/// The cluster's admin APIs.
async fn dispatch_cluster(
    shard: &Rc<Shard>,
    version: i16,
    client: &Client,
    body: RequestKind,
) -> Reply {
    use handlers::*;
    let send = |r: ResponseKind| Reply::Send(Box::new(r));
    match body {
        RequestKind::DescribeCluster(req) => send(ResponseKind::DescribeCluster(
            describe_cluster::handle(shard, version, req),
        )),
        RequestKind::DescribeTopicPartitions(req) => send(ResponseKind::DescribeTopicPartitions(
            describe_topic_partitions::handle(shard, version, req),
        )),
        RequestKind::ElectLeaders(req) => send(ResponseKind::ElectLeaders(
            elect_leaders::handle(shard, version, req).await,
        )),
        RequestKind::AlterPartitionReassignments(req) => {
            send(ResponseKind::AlterPartitionReassignments(
                partition_reassignments::handle_alter(shard, version, req).await,
            ))
        }
        RequestKind::ListPartitionReassignments(req) => {
            send(ResponseKind::ListPartitionReassignments(
                partition_reassignments::handle_list(shard, version, req).await,
            ))
        }
        RequestKind::DescribeQuorum(req) => send(ResponseKind::DescribeQuorum(
            describe_quorum::handle(shard, version, req).await,
        )),
        RequestKind::AddRaftVoter(req) => send(ResponseKind::AddRaftVoter(
            raft_voters::handle_add(shard, version, req).await,
        )),
        RequestKind::RemoveRaftVoter(req) => send(ResponseKind::RemoveRaftVoter(
            raft_voters::handle_remove(shard, version, req).await,
        )),
        other => dispatch_group(shard, version, client, other).await,
    }
}

/// The group coordinator's APIs.
async fn dispatch_group(
    shard: &Rc<Shard>,
    version: i16,
    client: &Client,
    body: RequestKind,
) -> Reply {
    use handlers::*;
    let send = |r: ResponseKind| Reply::Send(Box::new(r));
    match body {
        RequestKind::FindCoordinator(req) => send(ResponseKind::FindCoordinator(
            find_coordinator::handle(shard, version, req),
        )),
        RequestKind::JoinGroup(req) => send(ResponseKind::JoinGroup(
            join_group::handle(shard, version, &client.id, client.peer, req).await,
        )),
        RequestKind::SyncGroup(req) => send(ResponseKind::SyncGroup(
            sync_group::handle(shard, version, req).await,
        )),
        RequestKind::Heartbeat(req) => send(ResponseKind::Heartbeat(
            heartbeat::handle(shard, version, req).await,
        )),
        RequestKind::LeaveGroup(req) => send(ResponseKind::LeaveGroup(
            leave_group::handle(shard, version, req).await,
        )),
        RequestKind::OffsetCommit(req) => send(ResponseKind::OffsetCommit(
            offset_commit::handle(shard, version, req).await,
        )),
        RequestKind::OffsetFetch(req) => send(ResponseKind::OffsetFetch(
            offset_fetch::handle(shard, version, req).await,
        )),
        RequestKind::DescribeGroups(req) => send(ResponseKind::DescribeGroups(
            describe_groups::handle(shard, version, req).await,
        )),
        RequestKind::ListGroups(req) => send(ResponseKind::ListGroups(
            list_groups::handle(shard, version, req).await,
        )),
        RequestKind::DeleteGroups(req) => send(ResponseKind::DeleteGroups(
            delete_groups::handle(shard, version, req).await,
        )),
        RequestKind::OffsetDelete(req) => send(ResponseKind::OffsetDelete(
            offset_delete::handle(shard, version, req).await,
        )),
        // decode_request only passes APIs in handlers::SUPPORTED.
        _ => Reply::Close("request for an API this broker does not serve".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    /// The send stall bound lands on the socket as SO_SNDTIMEO.
    #[test]
    fn connections_get_the_send_timeout() {
        compio::runtime::Runtime::new().unwrap().block_on(async {
            let listener = compio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let client = std::thread::spawn(move || std::net::TcpStream::connect(addr).unwrap());
            let (stream, _) = listener.accept().await.unwrap();
            set_send_timeout(&stream, SOCKET_SEND_STALL_MS).unwrap();
            let mut got = libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            };
            let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
            // SAFETY: getsockopt(2) writes at most `len` bytes into `got`, which lives for
            // the call; the descriptor is the accepted socket.
            let rc = unsafe {
                libc::getsockopt(
                    stream.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_SNDTIMEO,
                    (&mut got as *mut libc::timeval).cast(),
                    &mut len,
                )
            };
            assert_eq!(rc, 0);
            let ms = got.tv_sec as u64 * 1000 + got.tv_usec as u64 / 1000;
            assert_eq!(ms, SOCKET_SEND_STALL_MS);
            drop(client.join().unwrap());
        });
    }
}
