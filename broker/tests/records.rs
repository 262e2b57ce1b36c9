//! Record-level validation and rewriting on produce, against the real `sluiced`: a poison
//! batch (garbage records behind a correct CRC) is refused and librdkafka still reads the
//! good records around it; `compression.type` recompresses; LogAppendTime stamps batches
//! librdkafka reads (CRCs checked); timestamps beyond the bounds are INVALID_TIMESTAMP; the
//! keys show in DescribeConfigs with Kafka's types and sources.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use common::Broker;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    ApiKey, DescribeConfigsRequest, DescribeConfigsResponse, ProduceRequest, ProduceResponse,
    RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{DeliveryResult, Message, Timestamp};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use sluice_engine::batch::{BatchHeader, BATCH_HEADER_BYTES};
use sluice_engine::compression::CompressionType;
use sluice_engine::testing::{build_batch, build_compressed_batch, seal_batch};
use sluice_net::client::{Batches, Client, FetchOptions};

const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// The Produce version the raw requests use (record errors and error messages from v8).
const PRODUCE_VERSION: i16 = 9;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    compio::runtime::Runtime::new()
        .expect("compio runtime")
        .block_on(future)
}

fn create_topic(broker: &Broker, name: &str, configs: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("admin client");
    let mut topic = NewTopic::new(name, 1, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = futures_executor::block_on(admin.create_topics([&topic], &AdminOptions::new()))
        .expect("create_topics");
    for r in results {
        r.expect("topic created");
    }
}

/// One request on a fresh connection; returns the response body after its header.
fn call<R: Request + Encodable>(broker: &Broker, request: &R, version: i16) -> Bytes {
    let mut s = TcpStream::connect(("127.0.0.1", broker.port)).unwrap();
    s.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    let mut h = RequestHeader::default();
    h.request_api_key = R::KEY;
    h.request_api_version = version;
    h.correlation_id = 1;
    h.client_id = Some(StrBytes::from_static_str("records-test"));
    let api = ApiKey::try_from(R::KEY).unwrap();
    let mut body = BytesMut::new();
    h.encode(&mut body, api.request_header_version(version))
        .unwrap();
    request.encode(&mut body, version).unwrap();
    s.write_all(&(body.len() as i32).to_be_bytes()).unwrap();
    s.write_all(&body).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut resp = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut resp).unwrap();
    let mut resp = Bytes::from(resp);
    ResponseHeader::decode(&mut resp, api.response_header_version(version)).unwrap();
    resp
}

/// Produces `records` (batches as bytes) to `topic`-0 with acks=-1 at `version`.
fn produce_raw(
    broker: &Broker,
    topic: &str,
    records: Bytes,
    version: i16,
) -> PartitionProduceResponse {
    let mut partition = PartitionProduceData::default();
    partition.index = 0;
    partition.records = Some(records);
    let mut data = TopicProduceData::default();
    data.name = TopicName(StrBytes::from_string(topic.to_string()));
    data.partition_data = vec![partition];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 30_000;
    req.topic_data = vec![data];
    let mut body = call(broker, &req, version);
    let mut resp = ProduceResponse::decode(&mut body, version).unwrap();
    resp.responses.remove(0).partition_responses.remove(0)
}

fn error_of(p: &PartitionProduceResponse) -> Option<ResponseError> {
    (p.error_code != 0).then(|| ResponseError::try_from_code(p.error_code).unwrap())
}

/// Every batch of `topic`-0 as stored (CRCs checked by `Batches`): (header, whole batch).
fn stored_batches(broker: &Broker, topic: &str) -> Vec<(BatchHeader, Vec<u8>)> {
    block_on(async {
        let mut client = Client::connect(&broker.bootstrap()).await.unwrap();
        let mut out = Vec::new();
        let mut offset = 0;
        for _ in 0..100 {
            let fetched = client
                .fetch(topic, &[(0, offset)], &FetchOptions::default())
                .await
                .unwrap()
                .remove(0);
            assert_eq!(fetched.error, None);
            let before = out.len();
            for batch in Batches::new(&fetched.records) {
                let (h, bytes) = batch.expect("a stored batch with a valid CRC");
                offset = h.next_offset();
                out.push((BatchHeader::parse(bytes).unwrap(), bytes.to_vec()));
            }
            if out.len() == before || offset >= fetched.high_watermark {
                break;
            }
        }
        out
    })
}

fn consumer(broker: &Broker, topic: &str) -> BaseConsumer {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "records-test")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("check.crcs", "true")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    c
}

/// (offset, value, timestamp) of the first `count` records of `topic`-0, read by librdkafka.
fn consume(broker: &Broker, topic: &str, count: usize) -> Vec<(i64, Vec<u8>, Timestamp)> {
    let c = consumer(broker, topic);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < count {
        assert!(
            Instant::now() < deadline,
            "consumed {} of {count}",
            seen.len()
        );
        let Some(m) = c.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.expect("consume");
        seen.push((
            m.offset(),
            m.payload().unwrap_or_default().to_vec(),
            m.timestamp(),
        ));
    }
    seen
}

/// What librdkafka reported for each record sent: its offset or the error.
#[derive(Clone, Default)]
struct Deliveries(Arc<Mutex<Vec<Result<i64, RDKafkaErrorCode>>>>);

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let outcome = match result {
            Ok(m) => Ok(m.offset()),
            Err((e, _)) => Err(e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail)),
        };
        self.0.lock().unwrap().push(outcome);
    }
}

fn producer(broker: &Broker, extra: &[(&str, &str)]) -> BaseProducer<Deliveries> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", broker.bootstrap())
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "20000");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config
        .create_with_context(Deliveries::default())
        .expect("producer")
}

/// Sends `values` (with `timestamp_ms`, if any), flushes, and returns each record's
/// delivery report.
fn send_reports(
    p: &BaseProducer<Deliveries>,
    topic: &str,
    values: &[String],
    timestamp_ms: Option<i64>,
) -> Vec<Result<i64, RDKafkaErrorCode>> {
    for v in values {
        let mut r = BaseRecord::<(), _>::to(topic).payload(v);
        if let Some(ts) = timestamp_ms {
            r = r.timestamp(ts);
        }
        p.send(r).map_err(|(e, _)| e).unwrap();
        p.poll(Duration::ZERO);
    }
    p.flush(CLIENT_TIMEOUT).unwrap();
    std::mem::take(&mut *p.context().0.lock().unwrap())
}

/// `send_reports`, expecting every record to be acknowledged.
fn send(p: &BaseProducer<Deliveries>, topic: &str, values: &[String], timestamp_ms: Option<i64>) {
    let reports = send_reports(p, topic, values, timestamp_ms);
    assert_eq!(reports.len(), values.len());
    assert!(reports.iter().all(Result::is_ok), "{reports:?}");
}

fn values(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}-{i}")).collect()
}

#[test]
fn poison_batches_are_refused_and_the_good_records_around_them_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    create_topic(&broker, "poison", &[]);
    let now = now_ms();
    let good = |tag: &'static [u8]| build_batch(&[(None, Some(tag), now), (None, Some(tag), now)]);

    let first = produce_raw(&broker, "poison", good(b"first"), PRODUCE_VERSION);
    assert_eq!((error_of(&first), first.base_offset), (None, 0));

    let template = BatchHeader::parse(&good(b"x")).unwrap();
    let garbage: Vec<u8> = (0..120u32).map(|i| (i * 37 + 11) as u8).collect();
    // Uncompressed garbage records behind a correct CRC: Kafka's InvalidRecordException.
    let poison = seal_batch(&template, &garbage, CompressionType::None);
    let refused = produce_raw(&broker, "poison", poison, PRODUCE_VERSION);
    assert_eq!(
        error_of(&refused),
        Some(ResponseError::InvalidRecord),
        "{refused:?}"
    );
    assert_eq!(
        refused.record_errors.len(),
        1,
        "the first bad record is named"
    );
    assert!(refused.error_message.is_some());
    // The same garbage gzip-compressed: the stream is fine, the records are not.
    let poison = seal_batch(&template, &garbage, CompressionType::Gzip);
    let refused = produce_raw(&broker, "poison", poison, PRODUCE_VERSION);
    assert_eq!(
        error_of(&refused),
        Some(ResponseError::InvalidRecord),
        "{refused:?}"
    );
    // A gzip batch whose compressed stream is garbage: CORRUPT_MESSAGE.
    let mut bad_stream = good(b"x").to_vec();
    bad_stream.truncate(BATCH_HEADER_BYTES);
    bad_stream.extend_from_slice(&[
        0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 0xde, 0xad, 0xbe, 0xef,
    ]);
    let h = BatchHeader {
        batch_length: (bad_stream.len() - 12) as i32,
        attributes: template.attributes_with(CompressionType::Gzip.id(), false),
        ..template
    };
    h.write_sealed(&mut bad_stream);
    let refused = produce_raw(&broker, "poison", Bytes::from(bad_stream), PRODUCE_VERSION);
    assert_eq!(
        error_of(&refused),
        Some(ResponseError::CorruptMessage),
        "{refused:?}"
    );
    // Two batches in one partition's records: Kafka's one-batch rule.
    let two = Bytes::from([good(b"a"), good(b"b")].concat());
    let refused = produce_raw(&broker, "poison", two, PRODUCE_VERSION);
    assert_eq!(
        error_of(&refused),
        Some(ResponseError::InvalidRecord),
        "{refused:?}"
    );
    // zstd before Produce v7.
    let zstd = build_compressed_batch(&[(None, Some(b"z"), now)], CompressionType::Zstd);
    let refused = produce_raw(&broker, "poison", zstd, 6);
    assert_eq!(
        error_of(&refused),
        Some(ResponseError::UnsupportedCompressionType)
    );

    let last = produce_raw(&broker, "poison", good(b"last"), PRODUCE_VERSION);
    assert_eq!((error_of(&last), last.base_offset), (None, 2));
    let read = consume(&broker, "poison", 4);
    let got: Vec<(i64, &[u8])> = read.iter().map(|(o, v, _)| (*o, &v[..])).collect();
    assert_eq!(
        got,
        [
            (0, &b"first"[..]),
            (1, b"first"),
            (2, b"last"),
            (3, b"last")
        ]
    );
}

#[test]
fn compression_type_recompresses_into_the_topic_codec() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    create_topic(&broker, "zstd-topic", &[("compression.type", "zstd")]);
    let sent = values("recompressed", 500);
    send(
        &producer(&broker, &[("compression.codec", "gzip")]),
        "zstd-topic",
        &sent,
        None,
    );
    let stored = stored_batches(&broker, "zstd-topic");
    assert!(!stored.is_empty());
    for (h, _) in &stored {
        assert_eq!(
            h.compression(),
            CompressionType::Zstd.id(),
            "stored as zstd: {h:?}"
        );
    }
    let read = consume(&broker, "zstd-topic", sent.len());
    let got: Vec<String> = read
        .iter()
        .map(|(_, v, _)| String::from_utf8(v.clone()).unwrap())
        .collect();
    assert_eq!(got, sent);
    let offsets: Vec<i64> = read.iter().map(|(o, _, _)| *o).collect();
    assert_eq!(offsets, (0..sent.len() as i64).collect::<Vec<_>>());
}

#[test]
fn compression_lz4_level_picks_lz4hc_which_librdkafka_reads() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let texts: Vec<String> = (0..200)
        .map(|i| format!("record {i} of producer {} at {} ", i % 7, i * 31 % 1009).repeat(8))
        .collect();
    let now = now_ms();
    let records: Vec<_> = texts
        .iter()
        .map(|t| (None, Some(t.as_bytes()), now))
        .collect();
    let mut stored_bytes = Vec::new();
    for (topic, level) in [("lz4-fast", "9"), ("lz4-hc", "12")] {
        let configs = [
            ("compression.type", "lz4"),
            ("compression.lz4.level", level),
        ];
        create_topic(&broker, topic, &configs);
        let answer = produce_raw(&broker, topic, build_batch(&records), PRODUCE_VERSION);
        assert_eq!(error_of(&answer), None, "{topic}");
        let stored = stored_batches(&broker, topic);
        assert_eq!(stored.len(), 1, "{topic}");
        assert_eq!(stored[0].0.compression(), CompressionType::Lz4.id());
        stored_bytes.push(stored[0].1.len());
        let read = consume(&broker, topic, texts.len());
        let got: Vec<&[u8]> = read.iter().map(|(_, v, _)| v.as_slice()).collect();
        let sent: Vec<&[u8]> = texts.iter().map(|t| t.as_bytes()).collect();
        assert_eq!(got, sent, "{topic}");
    }
    let (fast, hc) = (stored_bytes[0], stored_bytes[1]);
    assert!(
        hc < fast,
        "level 12 (LZ4HC, {hc} bytes) below level 9 ({fast} bytes)"
    );
}

#[test]
fn log_append_time_stamps_batches_librdkafka_reads() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    create_topic(
        &broker,
        "lat",
        &[("message.timestamp.type", "LogAppendTime")],
    );
    let before = now_ms();
    // A CreateTime far in the past: LogAppendTime topics do not bound it; it is replaced.
    let raw = produce_raw(
        &broker,
        "lat",
        build_batch(&[(None, Some(b"raw"), 1000)]),
        PRODUCE_VERSION,
    );
    assert_eq!(error_of(&raw), None);
    assert!(raw.log_append_time_ms >= before, "{raw:?}");
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let p = producer(&broker, &[("compression.codec", codec)]);
        send(&p, "lat", &values(codec, 20), Some(1000));
    }
    let after = now_ms();
    for (h, _) in stored_batches(&broker, "lat") {
        assert!(h.is_log_append_time(), "{h:?}");
        assert!((before..=after).contains(&h.max_timestamp), "{h:?}");
    }
    let read = consume(&broker, "lat", 101);
    for (offset, _, ts) in read {
        match ts {
            Timestamp::LogAppendTime(t) => {
                assert!((before..=after).contains(&t), "offset {offset}: {t}")
            }
            other => panic!("offset {offset}: {other:?}"),
        }
    }
}

#[test]
fn timestamps_beyond_the_bounds_are_invalid_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &["log.message.timestamp.before.max.ms=60000"]);
    create_topic(
        &broker,
        "bounded",
        &[("message.timestamp.after.max.ms", "60000")],
    );
    let now = now_ms();
    let ahead = build_batch(&[
        (None, Some(b"ok"), now),
        (None, Some(b"ahead"), now + 3_600_000),
    ]);
    let refused = produce_raw(&broker, "bounded", ahead, PRODUCE_VERSION);
    assert_eq!(
        error_of(&refused),
        Some(ResponseError::InvalidTimestamp),
        "{refused:?}"
    );
    let indexes: Vec<i32> = refused
        .record_errors
        .iter()
        .map(|e| e.batch_index)
        .collect();
    assert_eq!(indexes, [1]);
    let behind = build_batch(&[(None, Some(b"behind"), now - 3_600_000)]);
    let refused = produce_raw(&broker, "bounded", behind, PRODUCE_VERSION);
    assert_eq!(error_of(&refused), Some(ResponseError::InvalidTimestamp));
    let ok = produce_raw(
        &broker,
        "bounded",
        build_batch(&[(None, Some(b"ok"), now)]),
        PRODUCE_VERSION,
    );
    assert_eq!(
        (error_of(&ok), ok.base_offset, ok.log_append_time_ms),
        (None, 0, -1)
    );

    // librdkafka fails each record on delivery (as INVALID_RECORD: librdkafka's code for a
    // record named in `record_errors`); nothing is stored.
    let p = producer(&broker, &[]);
    let reports = send_reports(&p, "bounded", &values("late", 3), Some(now - 7_200_000));
    assert_eq!(reports, vec![Err(RDKafkaErrorCode::InvalidRecord); 3]);
    assert_eq!(
        stored_batches(&broker, "bounded").len(),
        1,
        "only the in-range batch"
    );
}

/// (value, config type, source) of every row of DescribeConfigs v4 for a topic and the
/// broker with node id 1, by name.
type Described = Vec<BTreeMap<String, (String, i8, i8)>>;

fn describe(broker: &Broker, topic: &'static str) -> Described {
    let mut req = DescribeConfigsRequest::default();
    for (kind, name) in [(2i8, topic), (4, "1")] {
        let mut r = DescribeConfigsResource::default();
        r.resource_type = kind;
        r.resource_name = StrBytes::from_static_str(name);
        r.configuration_keys = None; // all
        req.resources.push(r);
    }
    let mut body = call(broker, &req, 4);
    let resp = DescribeConfigsResponse::decode(&mut body, 4).unwrap();
    resp.results
        .iter()
        .map(|r| {
            assert_eq!(r.error_code, 0, "{r:?}");
            r.configs
                .iter()
                .map(|c| {
                    let value = c.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
                    (c.name.to_string(), (value, c.config_type, c.config_source))
                })
                .collect()
        })
        .collect()
}

#[test]
fn record_keys_are_described_with_kafka_types_and_sources() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &["compression.type=lz4"]);
    create_topic(&broker, "described", &[("compression.zstd.level", "7")]);
    let d = describe(&broker, "described");
    let row = |resource: usize, name: &str| d[resource][name].clone();
    // Kafka's ConfigType: STRING 2, INT 3, LONG 5; ConfigSource: DYNAMIC_TOPIC 1,
    // DYNAMIC_BROKER 2, STATIC_BROKER 4, DEFAULT 5.
    assert_eq!(row(0, "compression.type"), ("lz4".into(), 2, 4));
    assert_eq!(row(0, "compression.zstd.level"), ("7".into(), 3, 1));
    assert_eq!(row(0, "compression.gzip.level"), ("-1".into(), 3, 5));
    assert_eq!(row(0, "compression.lz4.level"), ("9".into(), 3, 5));
    let create_time = ("CreateTime".to_string(), 2, 5);
    assert_eq!(row(0, "message.timestamp.type"), create_time);
    let hour = ("3600000".to_string(), 5, 5);
    assert_eq!(row(0, "message.timestamp.after.max.ms"), hour);
    let unbounded = (i64::MAX.to_string(), 5, 5);
    assert_eq!(row(0, "message.timestamp.before.max.ms"), unbounded);
    assert_eq!(row(1, "compression.type"), ("lz4".into(), 2, 4));
    assert_eq!(row(1, "log.message.timestamp.type"), create_time);
    assert_eq!(row(1, "log.message.timestamp.after.max.ms"), hour);

    // The broker's compression.type applies to a topic without its own...
    send(
        &producer(&broker, &[]),
        "described",
        &values("lz4", 10),
        None,
    );
    let stored = stored_batches(&broker, "described");
    assert!(stored
        .iter()
        .all(|(h, _)| h.compression() == CompressionType::Lz4.id()));
    // ...and follows a dynamic change (AlterConfigs on this broker).
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("admin client");
    let alter = AlterConfig::new(ResourceSpecifier::Broker(1)).set("compression.type", "zstd");
    let altered = futures_executor::block_on(admin.alter_configs([&alter], &AdminOptions::new()));
    altered.unwrap().into_iter().for_each(|r| {
        r.unwrap();
    });
    assert_eq!(
        describe(&broker, "described")[1]["compression.type"],
        ("zstd".into(), 2, 2)
    );
    send(
        &producer(&broker, &[]),
        "described",
        &values("zstd", 10),
        None,
    );
    let stored = stored_batches(&broker, "described");
    let last = &stored.last().unwrap().0;
    assert_eq!(last.compression(), CompressionType::Zstd.id());
    let read = consume(&broker, "described", 20);
    assert_eq!(read.last().unwrap().1, b"zstd-9");
}

#[test]
fn a_bad_broker_record_key_refuses_startup() {
    for bad in ["compression.type=brotli", "log.message.timestamp.type=Now"] {
        let dir = tempfile::tempdir().unwrap();
        let (code, stderr) = common::start_fails(&[
            "--override",
            &format!("log.dirs={}", dir.path().display()),
            "--override",
            bad,
        ]);
        assert_ne!(code, 0, "{bad}");
        let key = bad.split('=').next().unwrap();
        assert!(stderr.contains(key), "{bad}: {stderr}");
    }
}
