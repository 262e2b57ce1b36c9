//! Overload: the request memory pool (`queued.max.request.bytes`) pauses reading instead of
//! growing, and `accept` at the descriptor limit backs off and logs once per interval.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::Broker;
use kafka_protocol::messages::{ApiKey, MetadataRequest, RequestHeader};
use kafka_protocol::protocol::Encodable;

/// A Metadata v12 request frame (size prefix included).
fn metadata_frame() -> Vec<u8> {
    let mut h = RequestHeader::default();
    h.request_api_key = ApiKey::Metadata as i16;
    h.request_api_version = 12;
    h.correlation_id = 1;
    let mut body = BytesMut::new();
    h.encode(&mut body, ApiKey::Metadata.request_header_version(12))
        .unwrap();
    MetadataRequest::default().encode(&mut body, 12).unwrap();
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

/// Whether `s` has a response's first byte within `wait`.
fn answered_within(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 1];
    matches!(s.peek(&mut b), Ok(1))
}

/// `sluice_request_pool_used_bytes` from the metrics endpoint.
fn pool_used_bytes(port: u16) -> u64 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("sluice_request_pool_used_bytes "))
        .expect("the pool gauge")
        .parse()
        .unwrap()
}

#[test]
fn reads_pause_while_the_request_pool_is_full() {
    const POOL_BYTES: usize = 1 << 20;
    let broker = Broker::start_temp(&[
        &format!("socket.request.max.bytes={POOL_BYTES}"),
        &format!("queued.max.request.bytes={POOL_BYTES}"),
        "metrics.listener=127.0.0.1:0",
    ]);
    let metrics = common::metrics_port(&broker);
    // A claims a frame as large as the pool and sends only part of it: the pool is full.
    let mut a = TcpStream::connect(broker.bootstrap()).unwrap();
    let claimed = POOL_BYTES - 4;
    a.write_all(&(claimed as i32).to_be_bytes()).unwrap();
    a.write_all(&vec![0u8; 1000]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while pool_used_bytes(metrics) < POOL_BYTES as u64 {
        assert!(Instant::now() < deadline, "A's frame never reserved");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut b = TcpStream::connect(broker.bootstrap()).unwrap();
    b.write_all(&metadata_frame()).unwrap();
    while !broker.log_contains("pausing reads") {
        assert!(Instant::now() < deadline, "B's read never paused");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !answered_within(&mut b, Duration::from_millis(300)),
        "B is answered only once A's frame is done"
    );
    // The rest of A's frame (a garbage body): A's connection closes, its memory is freed.
    a.write_all(&vec![0u8; claimed - 1000]).unwrap();
    assert!(
        answered_within(&mut b, Duration::from_secs(30)),
        "B is read once the pool has room"
    );
    let mut len = [0u8; 4];
    b.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    b.read_exact(&mut len).unwrap();
    assert!(i32::from_be_bytes(len) > 0);
}

#[test]
fn accept_at_the_descriptor_limit_backs_off_and_logs_once_per_interval() {
    const NOFILE: u64 = 256;
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_with_nofile(dir.path(), &["offsets.topic.num.partitions=1"], NOFILE);
    // More connections than the broker has descriptors: the rest wait in the backlog while
    // its accepts fail with EMFILE.
    let held: Vec<TcpStream> = (0..2 * NOFILE)
        .map(|_| TcpStream::connect(broker.bootstrap()).unwrap())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !broker.log_contains("accept failed") {
        assert!(Instant::now() < deadline, "accept never failed");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Keep it failing for a while (each shard retries every ACCEPT_BACKOFF_MS).
    std::thread::sleep(Duration::from_secs(1));
    let lines: Vec<String> = broker
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("accept failed"))
        .cloned()
        .collect();
    assert!(
        lines.len() <= 2 && lines[0].contains("Too many open files"),
        "one line per 10 s interval: {lines:?}"
    );
    drop(held);
    // Descriptors are back: a new client is served.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut c = loop {
        let mut c = TcpStream::connect(broker.bootstrap()).unwrap();
        c.write_all(&metadata_frame()).unwrap();
        if answered_within(&mut c, Duration::from_secs(1)) {
            break c;
        }
        assert!(Instant::now() < deadline, "never served again");
    };
    let mut len = [0u8; 4];
    c.read_exact(&mut len).unwrap();
}
