//! Test harness: the real `sluiced` on port 0 (`sluice-testkit`, shared with the other
//! packages' tests), and a run expected to fail at startup.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

pub use sluice_testkit::Broker;

/// Runs `sluiced` expecting it to refuse to start; returns (exit code, stderr).
pub fn start_fails(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluiced"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluiced")
        .wait_with_output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One request and its response over a raw connection, encoded with kafka-protocol (for
/// fields and APIs the rdkafka crate does not expose).
pub fn roundtrip<Req: Encodable, Resp: Decodable>(
    s: &mut TcpStream,
    key: ApiKey,
    version: i16,
    req: &Req,
) -> Resp {
    let mut h = RequestHeader::default();
    h.request_api_key = key as i16;
    h.request_api_version = version;
    h.correlation_id = 7;
    let mut buf = BytesMut::new();
    h.encode(&mut buf, key.request_header_version(version))
        .unwrap();
    req.encode(&mut buf, version).unwrap();
    let mut frame = (buf.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&buf);
    s.write_all(&frame).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    let mut body = Bytes::from(body);
    ResponseHeader::decode(&mut body, key.response_header_version(version)).unwrap();
    Resp::decode(&mut body, version).unwrap()
}

/// How long a raw connection waits for an answer: a bound for a broker that hangs, generous
/// because the test machine may be loaded (CreateTopics fsyncs directories).
pub const RAW_READ_TIMEOUT_S: u64 = 60;

/// A raw connection to `broker`, for requests the rdkafka crate does not send: exact API
/// versions, hand-built bodies.
pub fn raw_connect(broker: &Broker) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", broker.port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(RAW_READ_TIMEOUT_S)))
        .unwrap();
    s
}

/// The port of the broker's `metrics.listener`, read from its log.
pub fn metrics_port(broker: &Broker) -> u16 {
    broker
        .log
        .lock()
        .unwrap()
        .iter()
        .find_map(|l| {
            l.split("metrics on http://127.0.0.1:")
                .nth(1)
                .map(|p| p.trim_end_matches("/metrics").parse().unwrap())
        })
        .expect("metrics port in the log")
}

/// Produces `count` records of 200 bytes to `topic`, one batch each, and waits for them.
pub fn produce(broker: &Broker, topic: &str, count: usize) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("batch.num.messages", "1")
        .set("linger.ms", "0")
        .create()
        .unwrap();
    let value = vec![b'x'; 200];
    for _ in 0..count {
        producer
            .send(BaseRecord::<(), _>::to(topic).payload(&value))
            .unwrap();
        producer.poll(std::time::Duration::ZERO);
    }
    producer.flush(std::time::Duration::from_secs(30)).unwrap();
}

/// The `.log` segment files in `dir/partition_dir`.
pub fn segment_files(dir: &std::path::Path, partition_dir: &str) -> usize {
    std::fs::read_dir(dir.join(partition_dir))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("log".as_ref()))
        .count()
}

/// IncrementalAlterConfigs v1 of one resource (`ops`: key, Kafka's operation, value):
/// (error code, error message).
pub fn incremental_alter(
    s: &mut TcpStream,
    resource_type: i8,
    name: &str,
    ops: &[(&str, i8, &str)],
    validate_only: bool,
) -> (i16, String) {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    use kafka_protocol::messages::{
        IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    };
    use kafka_protocol::protocol::StrBytes;
    let mut resource = AlterConfigsResource::default();
    resource.resource_type = resource_type;
    resource.resource_name = StrBytes::from_string(name.to_string());
    for (k, op, v) in ops {
        let mut c = AlterableConfig::default();
        c.name = StrBytes::from_string(k.to_string());
        c.config_operation = *op;
        c.value = Some(StrBytes::from_string(v.to_string()));
        resource.configs.push(c);
    }
    let mut req = IncrementalAlterConfigsRequest::default();
    req.resources.push(resource);
    req.validate_only = validate_only;
    let resp: IncrementalAlterConfigsResponse =
        roundtrip(s, ApiKey::IncrementalAlterConfigs, 1, &req);
    let r = &resp.responses[0];
    (
        r.error_code,
        r.error_message.as_deref().unwrap_or("").to_string(),
    )
}
