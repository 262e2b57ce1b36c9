//! One client connection: read a frame, decode, dispatch to the API's handler, write the
//! response. Requests on one connection are handled one at a time, in order, as Kafka does
//! (clients pipeline; the reader keeps the surplus bytes for the next frame).

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use compio::io::AsyncWriteExt;
use compio::net::TcpStream;
use futures_util::future::{select, Either};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use sluice_net::codec::{decode_request, encode_response, DecodeError};
use sluice_net::fetch_response::{encode_fetch_response, Chunk, FetchTopicOut};
use sluice_net::frame::FrameReader;
use sluice_net::zero_copy::{write_chunks, FileRange};

use crate::handlers;
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

pub async fn serve_connection(shard: Rc<Shard>, stream: TcpStream, peer: SocketAddr) {
    shard.wait_ready().await;
    let _ = stream.set_nodelay(true);
    let mut stream = stream;
    let mut reader = FrameReader::new(shard.config.socket_request_max_bytes as usize);
    loop {
        let frame = {
            let stop = shard.stop.listen();
            if shard.stopping.get() {
                break;
            }
            match select(Box::pin(reader.read_frame(&mut stream)), stop).await {
                Either::Left((r, _)) => r,
                Either::Right(_) => break,
            }
        };
        let frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) => {
                tracing::info!(%peer, "closing connection: {e}");
                break;
            }
        };
        match handle_frame(&shard, frame, peer).await {
            Ok(Some(out)) => {
                let written = match out {
                    Out::Bytes(bytes) => stream.write_all(bytes).await.0,
                    Out::Chunks(chunks) => write_chunks(&mut stream, chunks, &shard.pipes).await,
                };
                if let Err(e) = written {
                    tracing::debug!(%peer, "write failed: {e}");
                    break;
                }
            }
            Ok(None) => {}
            Err(reason) => {
                tracing::info!(%peer, "closing connection: {reason}");
                break;
            }
        }
    }
}

/// Decodes and answers one request; `Err` closes the connection.
async fn handle_frame(
    shard: &Rc<Shard>,
    frame: Bytes,
    peer: SocketAddr,
) -> Result<Option<Out>, String> {
    let request = match decode_request(frame, handlers::supported) {
        Ok(r) => r,
        Err(DecodeError::UnsupportedVersion {
            api_key: ApiKey::ApiVersions,
            header,
            ..
        }) => {
            let body = handlers::api_versions::unsupported_version();
            return encode(header.correlation_id, ApiKey::ApiVersions, 0, &body)
                .map(|b| Some(Out::Bytes(b)));
        }
        Err(e) => return Err(e.to_string()),
    };
    let (api_key, version, correlation_id) = (
        request.api_key,
        request.version,
        request.header.correlation_id,
    );
    let client = Client {
        id: request
            .header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        peer,
    };
    let started = std::time::Instant::now();
    let reply = dispatch(shard, version, &client, request.body).await;
    shard.metrics.request(api_key as i16, started.elapsed());
    match reply {
        Reply::Send(body) => {
            encode(correlation_id, api_key, version, &body).map(|b| Some(Out::Bytes(b)))
        }
        Reply::Fetch(topics) => Ok(Some(Out::Chunks(encode_fetch_response(
            correlation_id,
            version,
            topics,
        )))),
        Reply::Nothing => Ok(None),
        Reply::Close(reason) => Err(reason),
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
            handlers::api_versions::handle(version, req),
        )),
        RequestKind::Metadata(req) => send(ResponseKind::Metadata(
            handlers::metadata::handle(shard, version, req).await,
        )),
        RequestKind::Produce(req) => handlers::produce::handle(shard, version, req).await,
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
            handlers::init_producer_id::handle(shard, version, req),
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
