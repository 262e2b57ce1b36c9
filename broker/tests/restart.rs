//! Restarts: `kill -9; sluiced` on the same port works every time (binding retries while
//! the killed process's sockets are released), and what a restart reads from the files a
//! stopped broker left behind.

mod common;

use std::time::{Duration, Instant};

use common::Broker;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

/// How many kill -9 / restart rounds the port test runs.
const KILL_RESTART_ROUNDS: usize = 6;

#[test]
fn restart_right_after_sigkill_binds_the_same_port() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), &[]);
    let port = broker.port;
    let listener = format!("listeners=PLAINTEXT://127.0.0.1:{port}");
    for round in 0..KILL_RESTART_ROUNDS {
        // A broker with work in flight (shard 0 creates __consumer_offsets once ready) holds
        // io_uring operations on its sockets; those are what outlive the reaped process.
        wait_for_dir(&dir.path().join("__consumer_offsets-0"));
        broker.kill();
        // Broker::start panics with the broker's log if it does not become ready.
        broker = Broker::start(dir.path(), &[&listener]);
        assert_eq!(
            broker.port, port,
            "round {round}: restarted on another port"
        );
    }
}

fn wait_for_dir(path: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{path:?} never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn produce(broker: &Broker, topic: &str, count: usize) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("linger.ms", "0")
        .create()
        .unwrap();
    for i in 0..count {
        let value = format!("record {i}");
        producer
            .send(BaseRecord::<(), _>::to(topic).payload(&value))
            .unwrap();
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

fn watermarks(broker: &Broker, topic: &str) -> (i64, i64) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    c.fetch_watermarks(topic, 0, Duration::from_secs(30))
        .unwrap()
}

/// A clean stop writes `recovery-point-offset-checkpoint` with every log end (as Kafka's
/// LogManager does before its clean-shutdown marker), so a crash right after the next start
/// rescans nothing that was already on disk.
#[test]
fn clean_stop_checkpoints_every_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    // The periodic checkpoint runs only once an hour here: only the stop can write it.
    let overrides = ["log.flush.offset.checkpoint.interval.ms=3600000"];
    let mut broker = Broker::start(dir.path(), &overrides);
    produce(&broker, "rp", 300);
    let (status, _) = broker.terminate();
    assert!(status.success());
    let text = std::fs::read_to_string(dir.path().join("recovery-point-offset-checkpoint"))
        .expect("a checkpoint written at the stop");
    assert!(
        text.lines().any(|l| l == "rp 0 300"),
        "rp-0 checkpointed at its log end: {text}"
    );
    let mut broker = Broker::start(dir.path(), &overrides);
    broker.kill();
    let broker = Broker::start(dir.path(), &overrides);
    assert!(broker.log_contains("no clean shutdown marker"));
    assert_eq!(watermarks(&broker, "rp"), (0, 300));
}
