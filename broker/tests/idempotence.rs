//! Idempotent producers against the real `sluiced`: librdkafka with
//! `enable.idempotence=true` producing through a TCP proxy that cuts its connections
//! mid-flight (every record must be stored exactly once, in order), and InitProducerId
//! never handing out an id twice across restarts.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, BytesMut};
use common::Broker;
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, InitProducerIdResponse, RequestHeader, ResponseHeader,
    TransactionalId,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

const TOPIC: &str = "idem";
const PARTITIONS: i32 = 3;
const RECORDS: usize = 100_000;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);

/// A TCP proxy in front of the broker that, while `cutting` is on, cuts each connection
/// after a varying number of client-to-broker bytes — often in the middle of a request,
/// always with earlier requests possibly appended but not yet answered.
struct Proxy {
    port: u16,
    target: Arc<AtomicU16>,
    cutting: Arc<AtomicBool>,
    cuts: Arc<AtomicUsize>,
}

impl Proxy {
    fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = Proxy {
            port: listener.local_addr().unwrap().port(),
            target: Arc::default(),
            cutting: Arc::default(),
            cuts: Arc::default(),
        };
        let (target, cutting, cuts) = (
            proxy.target.clone(),
            proxy.cutting.clone(),
            proxy.cuts.clone(),
        );
        std::thread::spawn(move || {
            for (n, client) in listener.incoming().enumerate() {
                let Ok(client) = client else { continue };
                let port = target.load(Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(("127.0.0.1", port)) else {
                    continue;
                };
                // 2 KiB .. 64 KiB, varying per connection.
                let limit = 2 * 1024 + (n * 7919 % 32) * 2 * 1024;
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (cutting, cuts) = (cutting.clone(), cuts.clone());
                std::thread::spawn(move || pump(client, server, Some((limit, cutting, cuts))));
                std::thread::spawn(move || pump(s2, c2, None));
            }
        });
        proxy
    }
}

/// Copies `from` to `to`; with a cut limit, shuts both down once that many bytes passed
/// while cutting is on (forwarding only the part of the last read below the limit).
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    cut: Option<(usize, Arc<AtomicBool>, Arc<AtomicUsize>)>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut passed = 0usize;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut send = n;
        let mut cut_now = false;
        if let Some((limit, cutting, _)) = &cut {
            if cutting.load(Ordering::SeqCst) && passed + n >= *limit {
                send = limit.saturating_sub(passed).min(n);
                cut_now = true;
            }
        }
        if to.write_all(&buf[..send]).is_err() {
            break;
        }
        passed += send;
        if cut_now {
            cut.as_ref().unwrap().2.fetch_add(1, Ordering::SeqCst);
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

fn create_topic(bootstrap: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let topic = NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(1));
    let results = futures_executor::block_on(admin.create_topics([&topic], &AdminOptions::new()))
        .expect("create_topics");
    for r in results {
        r.expect("topic created");
    }
}

/// record number -> (partition, offset) as acknowledged.
type Acked = Arc<Mutex<HashMap<usize, (i32, i64)>>>;

struct Collect {
    acked: Acked,
    failed: Arc<Mutex<Vec<String>>>,
}

impl ClientContext for Collect {}

impl ProducerContext for Collect {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                let i: usize = std::str::from_utf8(m.payload().unwrap())
                    .unwrap()
                    .parse()
                    .unwrap();
                let previous = self
                    .acked
                    .lock()
                    .unwrap()
                    .insert(i, (m.partition(), m.offset()));
                assert!(previous.is_none(), "record {i} acknowledged twice");
            }
            Err((e, _)) => self.failed.lock().unwrap().push(e.to_string()),
        }
    }
}

fn idempotent_producer(
    bootstrap: &str,
    acked: &Acked,
    failed: &Arc<Mutex<Vec<String>>>,
) -> ThreadedProducer<Collect> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .set("batch.num.messages", "250")
        .set("message.timeout.ms", "170000")
        .set("reconnect.backoff.ms", "10")
        .set("reconnect.backoff.max.ms", "100")
        .set("retry.backoff.ms", "10")
        .set("retry.backoff.max.ms", "100")
        .create_with_context(Collect {
            acked: acked.clone(),
            failed: failed.clone(),
        })
        .expect("producer")
}

/// Record `i` goes to partition `i % PARTITIONS`; its value is `i`.
fn produce_all(producer: &ThreadedProducer<Collect>) {
    for i in 0..RECORDS {
        let value = i.to_string();
        let partition = (i % PARTITIONS as usize) as i32;
        let mut record: BaseRecord<(), String> =
            BaseRecord::to(TOPIC).partition(partition).payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, r)) => {
                    assert!(
                        matches!(
                            e.rdkafka_error_code(),
                            Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        ),
                        "{e}"
                    );
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
}

/// Every partition's values, in offset order, with their offsets.
fn read_all(bootstrap: &str) -> HashMap<i32, Vec<(i64, usize)>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "idempotence-check")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(TOPIC, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut got: HashMap<i32, Vec<(i64, usize)>> = HashMap::new();
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let mut total = 0;
    // More than RECORDS would be read if anything was duplicated: read until quiet.
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(3) || total < RECORDS {
        assert!(Instant::now() < deadline, "read only {total} records");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let i = std::str::from_utf8(m.payload().unwrap())
                    .unwrap()
                    .parse()
                    .unwrap();
                got.entry(m.partition()).or_default().push((m.offset(), i));
                total += 1;
                quiet_since = Instant::now();
            }
            Some(Err(e)) => panic!("consume: {e}"),
            None => {}
        }
    }
    got
}

#[test]
fn idempotent_producer_writes_each_record_once_while_connections_drop() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start();
    let advertised = format!("advertised.listeners=PLAINTEXT://127.0.0.1:{}", proxy.port);
    let broker = Broker::start(dir.path(), &[&advertised]);
    proxy.target.store(broker.port, Ordering::SeqCst);
    let bootstrap = format!("127.0.0.1:{}", proxy.port);
    create_topic(&bootstrap);

    let acked: Acked = Arc::default();
    let failed: Arc<Mutex<Vec<String>>> = Arc::default();
    let producer = idempotent_producer(&bootstrap, &acked, &failed);
    proxy.cutting.store(true, Ordering::SeqCst);
    produce_all(&producer);
    producer.flush(CLIENT_TIMEOUT).expect("flush");
    proxy.cutting.store(false, Ordering::SeqCst);
    drop(producer);
    let cuts = proxy.cuts.load(Ordering::SeqCst);
    assert!(
        failed.lock().unwrap().is_empty(),
        "{:?}",
        failed.lock().unwrap()
    );
    assert!(cuts >= 5, "the proxy cut only {cuts} connections");
    let acked = acked.lock().unwrap();
    assert_eq!(acked.len(), RECORDS);

    assert!(
        broker.log_contains("retried batches already appended"),
        "no retry was answered as a duplicate: the test did not exercise deduplication"
    );
    let got = read_all(&bootstrap);
    for p in 0..PARTITIONS {
        let stored = &got[&p];
        let expected: Vec<usize> = (0..RECORDS)
            .filter(|i| i % PARTITIONS as usize == p as usize)
            .collect();
        let values: Vec<usize> = stored.iter().map(|(_, i)| *i).collect();
        assert_eq!(values.len(), expected.len(), "partition {p}: count");
        assert!(
            values == expected,
            "partition {p}: records duplicated, lost or reordered"
        );
        for (offset, i) in stored {
            assert_eq!(
                acked[i],
                (p, *offset),
                "record {i} acknowledged at its stored offset"
            );
        }
    }
    eprintln!("{RECORDS} records exactly once through {cuts} cut connections");
}

/// One InitProducerId v4 round trip on a fresh connection: (error code, id, epoch).
fn init_producer_id(broker: &Broker, transactional_id: Option<&'static str>) -> (i16, i64, i16) {
    const VERSION: i16 = 4;
    let mut s = TcpStream::connect(("127.0.0.1", broker.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut header = RequestHeader::default();
    header.request_api_key = ApiKey::InitProducerId as i16;
    header.request_api_version = VERSION;
    header.correlation_id = 11;
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = transactional_id.map(|t| TransactionalId(StrBytes::from_static_str(t)));
    req.transaction_timeout_ms = 60_000;
    req.producer_id = (-1).into();
    req.producer_epoch = -1;
    let mut body = BytesMut::new();
    header
        .encode(
            &mut body,
            ApiKey::InitProducerId.request_header_version(VERSION),
        )
        .unwrap();
    req.encode(&mut body, VERSION).unwrap();
    let mut frame = BytesMut::new();
    frame.put_i32(body.len() as i32);
    frame.extend_from_slice(&body);
    s.write_all(&frame).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut resp = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut resp).unwrap();
    let mut buf = bytes::Bytes::from(resp);
    let header = ResponseHeader::decode(
        &mut buf,
        ApiKey::InitProducerId.response_header_version(VERSION),
    )
    .unwrap();
    assert_eq!(header.correlation_id, 11);
    let resp = InitProducerIdResponse::decode(&mut buf, VERSION).unwrap();
    assert!(!buf.has_remaining());
    (resp.error_code, resp.producer_id.0, resp.producer_epoch)
}

#[test]
fn producer_ids_are_never_handed_out_twice_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    for restart in ["SIGTERM", "SIGKILL", "none"] {
        let mut broker = Broker::start(dir.path(), &[]);
        for _ in 0..3 {
            let (error, id, epoch) = init_producer_id(&broker, None);
            assert_eq!((error, epoch), (0, 0));
            assert!(
                !seen.contains(&id),
                "producer id {id} handed out twice: {seen:?}"
            );
            seen.push(id);
        }
        // Transactions are not served: Kafka's error for a transactional id one may not use.
        assert_eq!(init_producer_id(&broker, Some("txn-1")).0, 53);
        match restart {
            "SIGTERM" => assert!(broker.terminate().0.success()),
            "SIGKILL" => broker.kill(),
            _ => {}
        }
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
}
