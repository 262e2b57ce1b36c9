//! End to end: the real `sluiced` on port 0, driven by the client library and by the
//! `sluice-perf` binary.
//!
//! `sluice_testkit::sluiced_path` says where `sluiced` is found (`$SLUICED`, or beside this
//! test's profile directory).

use sluice_net::client::batch::{decode_records, Batches};
use sluice_net::client::{
    Acks, Client, FetchOptions, OffsetSpec, Record, RecordBatchBuilder, TopicCreation,
};
use sluice_testkit::{json_number, run_ok, Broker};

#[global_allocator]
static ALLOC: sluice_net::alloc::LazyLargeAlloc = sluice_net::alloc::LazyLargeAlloc;

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    compio::runtime::Runtime::new().unwrap().block_on(future)
}

#[test]
fn client_produces_fetches_and_lists_offsets() {
    let broker = Broker::start_temp(&[]);
    block_on(async {
        let mut client = Client::connect(&broker.bootstrap()).await.unwrap();
        let created = client.create_topic("e2e", 2, 1).await.unwrap();
        assert_eq!(created, TopicCreation::Created);
        let again = client.create_topic("e2e", 2, 1).await.unwrap();
        assert_eq!(again, TopicCreation::AlreadyExists);
        let topic = client.topic("e2e").await.unwrap();
        assert_eq!(topic.partitions.len(), 2);
        let mut base_offsets = Vec::new();
        for (round, acks) in [Acks::Leader, Acks::All, Acks::Leader]
            .into_iter()
            .enumerate()
        {
            let mut builder = RecordBatchBuilder::new(1_700_000_000_000);
            for i in 0..=round {
                let value = format!("value-{round}-{i}");
                builder.push(&Record {
                    key: Some(b"k"),
                    value: Some(value.as_bytes()),
                    headers: &[("h", Some(b"1"))],
                    timestamp_ms: 1_700_000_000_000 + i as i64,
                });
            }
            let offset = client
                .produce("e2e", 1, builder.finish(), acks)
                .await
                .unwrap();
            base_offsets.push(offset.expect("acks>0 answers with an offset"));
        }
        assert_eq!(base_offsets, vec![0, 1, 3]);
        let latest = client
            .list_offsets("e2e", 1, OffsetSpec::Latest)
            .await
            .unwrap();
        let earliest = client
            .list_offsets("e2e", 1, OffsetSpec::Earliest)
            .await
            .unwrap();
        assert_eq!((earliest, latest), (0, 6));
        let fetched = client
            .fetch(
                "e2e",
                &[(0, 0), (1, 2)],
                &FetchOptions {
                    max_wait_ms: 10,
                    ..FetchOptions::default()
                },
            )
            .await
            .unwrap();
        let one = fetched.iter().find(|p| p.partition == 1).unwrap();
        assert_eq!(one.error, None);
        assert_eq!(one.high_watermark, 6);
        let mut values = Vec::new();
        for batch in Batches::new(&one.records) {
            let (header, bytes) = batch.unwrap();
            for record in decode_records(&header, bytes).unwrap() {
                assert_eq!(record.headers, vec![("h".to_string(), Some(b"1".to_vec()))]);
                values.push((
                    record.offset,
                    String::from_utf8(record.value.unwrap()).unwrap(),
                ));
            }
        }
        // The broker answers from the batch holding offset 2 (base offset 1).
        let expected: Vec<(i64, String)> = [
            (1, "value-1-0"),
            (2, "value-1-1"),
            (3, "value-2-0"),
            (4, "value-2-1"),
            (5, "value-2-2"),
        ]
        .into_iter()
        .map(|(o, v)| (o, v.to_string()))
        .collect();
        assert_eq!(values, expected);
    });
}

#[test]
fn pipelined_producer_keeps_order_with_many_in_flight() {
    let broker = Broker::start_temp(&[]);
    block_on(async {
        let mut client = Client::connect(&broker.bootstrap()).await.unwrap();
        client.create_topic("pipelined", 1, 1).await.unwrap();
        let (mut sender, mut acks) = client
            .producer::<u32>("pipelined", 0, Acks::All, 8)
            .await
            .unwrap();
        let receiving = compio::runtime::spawn(async move {
            let mut offsets = Vec::new();
            while let Some((tag, outcome)) = acks.next().await.unwrap() {
                offsets.push((tag, outcome.unwrap().unwrap()));
            }
            offsets
        });
        for tag in 0..100u32 {
            let mut builder = RecordBatchBuilder::new(0);
            for _ in 0..3 {
                builder.push(&Record {
                    value: Some(b"v"),
                    ..Record::default()
                });
            }
            sender.send(0, builder.finish(), tag).await.unwrap();
            assert!(sender.in_flight() <= 8);
        }
        drop(sender);
        let offsets = receiving.await.unwrap();
        let expected: Vec<(u32, i64)> = (0..100).map(|tag| (tag, i64::from(tag) * 3)).collect();
        assert_eq!(offsets, expected);
    });
}

#[test]
fn connect_errors_say_what_to_check() {
    let error = block_on(Client::connect("127.0.0.1:1")).err().unwrap();
    let message = error.to_string();
    assert!(
        message.starts_with("connecting to 127.0.0.1:1: "),
        "{message}"
    );
    assert!(message.ends_with("(is the broker running?)"), "{message}");
}

/// Runs `sluice-perf` with `args`; returns its stdout.
fn perf(args: &[&str]) -> String {
    run_ok(env!("CARGO_BIN_EXE_sluice-perf"), args).0
}

#[test]
fn perf_tool_produces_and_consumes() {
    let broker = Broker::start_temp(&[]);
    let bootstrap = broker.bootstrap();
    let produced = perf(&[
        "produce",
        "--bootstrap-server",
        &bootstrap,
        "--topic",
        "perf",
        "--num-records",
        "5000",
        "--record-size",
        "1024",
        "--throughput",
        "-1",
        "--producer-props",
        "acks=all",
        "linger.ms=0",
        "batch.size=16384",
        "--json",
    ]);
    assert_eq!(json_number(&produced, "records"), 5000.0, "{produced}");
    assert_eq!(json_number(&produced, "records_failed"), 0.0, "{produced}");
    assert!(json_number(&produced, "latency_p99_ms") >= json_number(&produced, "latency_p50_ms"));
    let text = perf(&[
        "produce",
        "--bootstrap-server",
        &bootstrap,
        "--topic",
        "perf",
        "--num-records",
        "1000",
        "--record-size",
        "100",
        "--throughput",
        "2000",
        "--producer-props",
        "acks=1",
    ]);
    let last = text.lines().last().unwrap();
    assert!(last.starts_with("1000 records sent, "), "{text}");
    assert!(last.contains(" ms 99.9th."), "{text}");
    let consumed = perf(&[
        "consume",
        "--bootstrap-server",
        &bootstrap,
        "--topic",
        "perf",
        "--messages",
        "6000",
    ]);
    let mut lines = consumed.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("start.time, end.time, data.consumed.in.MB"),
        "{consumed}"
    );
    let fields: Vec<&str> = lines.next().unwrap().split(", ").collect();
    assert_eq!(fields.len(), 10, "{consumed}");
    assert_eq!(fields[4], "6000");
    let mb: f64 = fields[2].parse().unwrap();
    let expected_mb = (5000.0 * 1024.0 + 1000.0 * 100.0) / (1024.0 * 1024.0);
    assert!((mb - expected_mb).abs() < 0.001, "{mb} vs {expected_mb}");
}
