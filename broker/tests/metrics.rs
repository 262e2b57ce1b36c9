//! The Prometheus endpoint: traffic per topic, request latency per API, per-partition log
//! gauges, connections — summed over shards when scraped.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Broker;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const RECORDS: usize = 1000;

fn get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn scrape_sums_shards() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(
        dir.path(),
        &["metrics.listener=127.0.0.1:0", "num.partitions=1"],
    );
    let port = common::metrics_port(&broker);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    for i in 0..RECORDS {
        let v = format!("value-{i}");
        producer
            .send(BaseRecord::<(), _>::to("m").payload(&v))
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "metrics-test")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("m", 0, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let (mut seen, deadline) = (0, Instant::now() + Duration::from_secs(30));
    while seen < RECORDS && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            m.unwrap();
            seen += 1;
        }
    }
    assert_eq!(seen, RECORDS);

    let text = get(port, "/metrics");
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert_eq!(
        value(&text, "sluice_topic_records_in_total{topic=\"m\"}"),
        RECORDS as f64
    );
    assert!(value(&text, "sluice_topic_bytes_in_total{topic=\"m\"}") > (RECORDS * 7) as f64);
    assert!(value(&text, "sluice_topic_records_out_total{topic=\"m\"}") >= RECORDS as f64);
    assert!(value(&text, "sluice_topic_bytes_out_total{topic=\"m\"}") > 0.0);
    assert_eq!(
        value(&text, "sluice_log_end_offset{topic=\"m\",partition=\"0\"}"),
        RECORDS as f64
    );
    assert!(value(&text, "sluice_log_size_bytes{topic=\"m\",partition=\"0\"}") > 0.0);
    assert!(
        value(
            &text,
            "sluice_request_duration_seconds_count{api=\"Produce\"}"
        ) >= 1.0
    );
    assert!(
        value(
            &text,
            "sluice_request_duration_seconds_count{api=\"Fetch\"}"
        ) >= 1.0
    );
    assert!(value(&text, "sluice_connections") >= 1.0);
    assert_eq!(value(&text, "sluice_under_replicated_partitions"), 0.0);
    assert!(get(port, "/nope").starts_with("HTTP/1.1 404"));
}
