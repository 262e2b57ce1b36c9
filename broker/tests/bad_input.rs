//! Malformed input never stops the broker: oversized and negative frames, garbage, unknown
//! API keys and versions, and bodies claiming i32::MAX array elements for every API and
//! version we serve. Each bad connection is closed; every other client is unaffected.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use common::Broker;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, RequestHeader};
use kafka_protocol::protocol::{Encodable, StrBytes};

fn connect(broker: &Broker) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", broker.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn header_bytes(api_key: ApiKey, version: i16, correlation_id: i32) -> BytesMut {
    let mut h = RequestHeader::default();
    h.request_api_key = api_key as i16;
    h.request_api_version = version;
    h.correlation_id = correlation_id;
    h.client_id = Some(StrBytes::from_static_str("bad-input-test"));
    let mut buf = BytesMut::new();
    h.encode(&mut buf, api_key.request_header_version(version))
        .unwrap();
    buf
}

fn frame(parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = (len as i32).to_be_bytes().to_vec();
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// Reads one response frame; None if the broker closed the connection.
fn read_response(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

/// A well-formed ApiVersions v0 round trip on a fresh connection: the broker still serves.
fn assert_serving(broker: &Broker) {
    let mut s = connect(broker);
    let mut body = BytesMut::new();
    ApiVersionsRequest::default().encode(&mut body, 0).unwrap();
    s.write_all(&frame(&[&header_bytes(ApiKey::ApiVersions, 0, 7), &body]))
        .unwrap();
    let resp = read_response(&mut s).expect("ApiVersions answered");
    assert_eq!(&resp[..4], &7i32.to_be_bytes(), "correlation id");
    assert_eq!(&resp[4..6], &[0, 0], "error code NONE");
}

fn assert_closed(s: &mut TcpStream) {
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the broker to close the connection, got {other:?}"),
    }
}

#[test]
fn bad_frames_close_only_their_connection() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &["socket.request.max.bytes=1048576"]);
    let bystander = connect(&broker);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "over socket.request.max.bytes",
            (2_000_000i32).to_be_bytes().to_vec(),
        ),
        ("i32::MAX frame", i32::MAX.to_be_bytes().to_vec()),
        ("negative frame", (-5i32).to_be_bytes().to_vec()),
        (
            "unknown api key",
            frame(&[&[0x27, 0x0f, 0, 0, 0, 0, 0, 1, 0xff, 0xff]]),
        ),
        ("garbage header", frame(&[&[0xff; 3]])),
        (
            "known key, unsupported version",
            frame(&[&header_bytes(ApiKey::Produce, 0, 1)]),
        ),
        (
            "header claiming a long client id",
            frame(&[&[0, 18, 0, 0, 0, 0, 0, 1, 0x7f, 0xff]]),
        ),
    ];
    for (name, bytes) in cases {
        let mut s = connect(&broker);
        s.write_all(&bytes).unwrap();
        eprintln!("case: {name}");
        assert_closed(&mut s);
        assert_serving(&broker);
    }
    // A frame cut short: the broker waits for the rest; closing our side must not hurt it.
    let mut s = connect(&broker);
    s.write_all(&frame(&[&header_bytes(ApiKey::Metadata, 1, 1)])[..6])
        .unwrap();
    drop(s);
    assert_serving(&broker);
    drop(bystander);
}

#[test]
fn unsupported_api_versions_version_gets_a_v0_answer() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let mut s = connect(&broker);
    // ApiVersions v99 with a v2 header (KIP-511: the broker answers v0 with its own range).
    let mut h = BytesMut::new();
    h.put_i16(ApiKey::ApiVersions as i16);
    h.put_i16(99);
    h.put_i32(42);
    h.put_i16(4);
    h.put_slice(b"test");
    h.put_u8(0);
    h.put_slice(&[0xde, 0xad]);
    s.write_all(&frame(&[&h])).unwrap();
    let resp = read_response(&mut s).expect("answered");
    assert_eq!(&resp[..4], &42i32.to_be_bytes());
    assert_eq!(
        i16::from_be_bytes([resp[4], resp[5]]),
        35,
        "UNSUPPORTED_VERSION"
    );
    assert_eq!(
        i32::from_be_bytes([resp[6], resp[7], resp[8], resp[9]]),
        1,
        "one api range"
    );
    assert_eq!(
        i16::from_be_bytes([resp[10], resp[11]]),
        ApiKey::ApiVersions as i16
    );
    assert_eq!(
        i16::from_be_bytes([resp[14], resp[15]]),
        4,
        "max ApiVersions version"
    );
}

/// Bodies that claim enormous element counts in their first fields (the net crate's unit
/// tests try many more shapes in-process; here each reaches the real broker).
fn hostile_bodies() -> Vec<Vec<u8>> {
    vec![
        [0x7f, 0xff, 0xff, 0xff].repeat(8),
        [0xff, 0xff, 0xff, 0xff, 0x0f].repeat(6),
        [&[0u8; 6][..], &[0x7f, 0xff, 0xff, 0xff, 0x01]].concat(),
        [&[0u8; 8][..], &[0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]].concat(),
    ]
}

#[test]
fn huge_claimed_counts_for_every_served_api() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let served = sluice_broker::handlers::SUPPORTED;
    let sent: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = served
            .iter()
            .map(|&(key, min, max)| {
                let broker = &broker;
                scope.spawn(move || {
                    let mut sent = 0;
                    for version in min..=max {
                        for body in hostile_bodies() {
                            let mut s = connect(broker);
                            s.write_all(&frame(&[&header_bytes(key, version, 3), &body]))
                                .unwrap();
                            // Either an error answer or a close; never a crash.
                            let _ = read_response(&mut s);
                            sent += 1;
                        }
                    }
                    sent
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    assert_serving(&broker);
    assert!(sent > 200, "sent {sent} hostile requests");
    let rss_kib = std::fs::read_to_string(format!("/proc/{}/status", broker.pid()))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:").map(|v| {
                v.trim()
                    .trim_end_matches(" kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap()
            })
        })
        .unwrap();
    assert!(
        rss_kib < 512 * 1024,
        "broker RSS {rss_kib} KiB after hostile bodies"
    );
}

#[test]
fn bad_config_and_second_broker_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = format!("log.dirs={}", dir.path().display());
    let (code, err) = common::start_fails(&["--override", "num.partitions=zero", "--override", &d]);
    assert_ne!(code, 0);
    assert!(
        err.contains("num.partitions") && err.contains("zero"),
        "{err}"
    );
    let (code, err) = common::start_fails(&[
        "--override",
        "default.replication.factor=3",
        "--override",
        &d,
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("default.replication.factor"), "{err}");

    let broker = Broker::start(dir.path(), &["some.unknown.key=1"]);
    assert!(
        broker.log_contains("some.unknown.key"),
        "unknown key warned"
    );
    let (code, err) = common::start_fails(&[
        "--override",
        "listeners=PLAINTEXT://127.0.0.1:0",
        "--override",
        &d,
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains(&broker.pid().to_string()),
        "names the holder: {err}"
    );
}
