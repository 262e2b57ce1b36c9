//! `sluice-perf verify` against the real `sluiced`: a clean verdict with and without
//! idempotence, and real anomalies (acknowledged records deleted, a record written twice)
//! caught by driving the checker's phases from the test.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_net::client::{Acks, Client, Record, RecordBatchBuilder};
use sluice_perf::verify::checker::Outcome;
use sluice_perf::verify::value::ValueFormat;
use sluice_perf::verify::{self, new_run_id, History, Options, RecordId, TopicLayout};
use sluice_testkit::{json_number, run_ok, Broker};

#[global_allocator]
static ALLOC: sluice_net::alloc::LazyLargeAlloc = sluice_net::alloc::LazyLargeAlloc;

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    compio::runtime::Runtime::new().unwrap().block_on(future)
}

/// Runs `sluice-perf verify` for two seconds on a new topic; returns its JSON object.
fn verify_cli(bootstrap: &str, topic: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "verify",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--duration",
        "2s",
        "--producers",
        "2",
        "--partitions",
        "2",
        "--replication-factor",
        "1",
        "--throughput",
        "2000",
        "--json",
    ];
    args.extend_from_slice(extra);
    let (stdout, stderr) = run_ok(env!("CARGO_BIN_EXE_sluice-perf"), &args);
    assert!(stderr.contains("verify: OK acked="), "{stderr}");
    stdout
}

#[test]
fn verify_finds_a_clean_run_with_and_without_idempotence() {
    let broker = Broker::start_temp(&[]);
    for (topic, extra) in [
        ("plain", &[][..]),
        ("idempotent", &["--idempotent"][..]),
        ("leader-acks", &["--acks", "1", "--max-in-flight", "1"][..]),
    ] {
        let json = verify_cli(&broker.bootstrap(), topic, extra);
        assert!(json.contains(r#""verdict": "OK""#), "{json}");
        // The first batch is sent at once and awaited, however loaded the machine.
        let acked = json_number(&json, "acked");
        assert!(acked > 0.0, "{json}");
        assert_eq!(json_number(&json, "read"), acked, "{json}");
        for anomaly in ["lost", "duplicated", "reordered", "disagreeing", "phantom"] {
            assert_eq!(json_number(&json, anomaly), 0.0, "{anomaly}: {json}");
        }
        assert_eq!(json_number(&json, "partitions"), 2.0, "{json}");
        assert!(json_number(&json, "latency_p99_ms") >= json_number(&json, "latency_p50_ms"));
    }
}

fn options(broker: &Broker, topic: &str) -> Options {
    let mut options = Options::new(&broker.bootstrap(), topic);
    options.duration = Duration::from_millis(500);
    options.producers = 1;
    options.throughput = Some(2000.0);
    options.batch_size_bytes = 1024;
    options.create = Some(TopicLayout {
        partitions: 1,
        replication_factor: 1,
    });
    options
}

/// The acknowledged records of `history` and their offsets.
fn acked(history: &History) -> impl Iterator<Item = (RecordId, i64)> + '_ {
    history.sent.iter().filter_map(|s| match s.outcome {
        Outcome::Acked { offset } => Some((s.id, offset)),
        _ => None,
    })
}

#[test]
fn verify_catches_acknowledged_records_deleted() {
    let broker = Broker::start_temp(&[]);
    let options = options(&broker, "deleted");
    let run_id = new_run_id();
    block_on(async {
        let produced = verify::produce(&options, run_id).await.unwrap();
        let offsets: Vec<i64> = acked(&produced.history).map(|(_, offset)| offset).collect();
        assert!(!offsets.is_empty(), "nothing acknowledged");
        // Delete the first half of what was acknowledged (at least one record).
        let cut = offsets[offsets.len() / 2] + 1;
        let deleted_expected = offsets.iter().filter(|&&o| o < cut).count() as u64;
        let mut client = Client::connect(&broker.bootstrap()).await.unwrap();
        let deleted = client.delete_records("deleted", &[(0, cut)]).await.unwrap();
        assert_eq!(deleted[0].error, None);
        assert_eq!(deleted[0].low_watermark, cut);
        let reads = verify::read(&options, run_id).await.unwrap();
        assert_eq!(reads[0].log_start_offset, cut);
        let verdict = verify::check(&produced.history, &reads);
        assert!(!verdict.is_ok());
        assert_eq!(verdict.lost, deleted_expected);
        assert_eq!(verdict.acked, offsets.len() as u64);
        assert_eq!(
            verdict.duplicated + verdict.reordered + verdict.disagreeing,
            0
        );
        assert!(verdict.examples.lost.iter().all(|l| l.offset < cut));
    });
}

#[test]
fn verify_catches_a_record_written_twice() {
    let broker = Broker::start_temp(&[]);
    let options = options(&broker, "twice");
    let run_id = new_run_id();
    block_on(async {
        let produced = verify::produce(&options, run_id).await.unwrap();
        let (acked, _) = acked(&produced.history)
            .next()
            .expect("something acknowledged");
        // The same record again, as a non-idempotent retry would send it.
        let value = ValueFormat::new(run_id, options.record_size_bytes, options.seed);
        let value = value.encode(acked);
        let mut batch = RecordBatchBuilder::new(0);
        batch.push(&Record {
            value: Some(&value),
            ..Record::default()
        });
        let mut client = Client::connect(&broker.bootstrap()).await.unwrap();
        let again = client.produce("twice", 0, batch.finish(), Acks::All).await;
        let again = again.unwrap().expect("acks=all answers with an offset");
        let reads = verify::read(&options, run_id).await.unwrap();
        let verdict = verify::check(&produced.history, &reads);
        assert!(!verdict.is_ok());
        assert_eq!(verdict.duplicated, 1);
        assert_eq!(verdict.lost + verdict.phantom, 0);
        let example = &verdict.examples.duplicated[0];
        assert_eq!(example.id, acked);
        assert_eq!(example.at.last(), Some(&(0, again)));
    });
}

/// Waits until `counter` reaches `at_least`, for at most a minute.
fn wait_for(counter: &AtomicU64, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while counter.load(Ordering::Relaxed) < at_least {
        assert!(
            Instant::now() < deadline,
            "{at_least} acknowledgements in a minute"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The broker is killed mid-load and restarted on its port: the producers reconnect and
/// resend, and with idempotence nothing is lost or written twice.
#[test]
fn verify_survives_a_broker_restart_with_idempotence() {
    let port = sluice_testkit::free_ports(1)[0];
    let listener = format!("listeners=PLAINTEXT://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), &[&listener]);
    let mut options = options(&broker, "restarted");
    options.duration = Duration::from_secs(120); // An upper bound: `stop` ends the run.
    options.producers = 2;
    options.idempotent = true;
    options.request_timeout = Duration::from_secs(5);
    options.delivery_timeout = Duration::from_secs(60);
    options.create = Some(TopicLayout {
        partitions: 2,
        replication_factor: 1,
    });
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    options.stop = Some(stop.clone());
    options.acknowledged = Some(acked.clone());
    let runner = std::thread::spawn(move || verify::run_blocking(&options));
    wait_for(&acked, 500);
    broker.kill();
    let before_restart = acked.load(Ordering::Relaxed);
    let _restarted = Broker::start(dir.path(), &[&listener]);
    wait_for(&acked, before_restart + 500);
    stop.store(true, Ordering::Relaxed);
    let report = runner.join().unwrap().unwrap();
    let line = report.verdict_line();
    assert!(report.verdict.is_ok(), "{line}");
    assert!(report.verdict.acked >= before_restart + 500, "{line}");
    // The acknowledgements after the restart came on new connections.
    assert!(report.produce.reconnects >= 1, "{line}");
    assert_eq!(
        report.verdict.read,
        report.verdict.acked + report.verdict.unacked_present
    );
}
