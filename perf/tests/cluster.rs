//! A real 3-broker cluster (testkit's `Cluster`: three `sluiced` processes, combined
//! broker+controller, formatted with `sluice storage format`) under the `verify` checker:
//! idempotent acks=all producers, `min.insync.replicas=2`, RF=3. The leader of a partition
//! is SIGKILLed mid-load: a new leader serves, nothing acknowledged is lost or duplicated,
//! the killed broker restarts, truncates what it must, rejoins every ISR; a leader stopped
//! by SIGTERM hands its leaderships over first (controlled shutdown); once producing stops
//! every replica of every partition holds the same bytes.
//!
//! With RF=2 and `min.insync.replicas=2`, acks=all is refused with NOT_ENOUGH_REPLICAS
//! once the follower died and left the ISR, while acks=1 still works.
//!
//! Timeouts are shortened (session 3 s) to keep CI quick; every wait is bounded.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use sluice_net::client::batch::{Record, RecordBatchBuilder};
use sluice_net::client::producer::Acks;
use sluice_net::client::{Client, ClientError};
use sluice_perf::verify::{self, Options};
use sluice_testkit::{create_topic_cli, sluice_path, topic_partitions, Cluster};

const WAIT_MAX: Duration = Duration::from_secs(90);
const TOPIC: &str = "orders";

fn cluster() -> Cluster {
    Cluster::builder(3)
        .property("broker.session.timeout.ms", "3000")
        .property("broker.heartbeat.interval.ms", "500")
        .property("replica.lag.time.max.ms", "3000")
        .property("min.insync.replicas", "2")
        .property("offsets.topic.num.partitions", "3")
        .property("num.shards", "1")
        .start()
}

/// `sluice topics --describe` rows of `topic`: (partition, leader, ISR).
fn describe(cluster: &Cluster, topic: &str) -> Vec<(i32, i32, Vec<i32>)> {
    let servers = live_bootstrap(cluster);
    topic_partitions(&servers, topic)
}

/// A running node's client address (the CLI and net's client start from the first one).
fn live_bootstrap(cluster: &Cluster) -> String {
    let node = cluster
        .nodes()
        .iter()
        .find(|n| n.is_running())
        .expect("a running node");
    node.bootstrap()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < WAIT_MAX, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Creates `topic` once three brokers registered (CreateTopics answers
/// INVALID_REPLICATION_FACTOR until then).
fn create_topic(cluster: &Cluster, topic: &str) {
    let servers = cluster.bootstrap_servers();
    wait_until("three registered brokers to create the topic", || {
        create_topic_cli(&servers, topic, (3, 3), &[])
    });
}

#[test]
fn acks_all_survives_a_leader_kill_and_the_replicas_agree() {
    let mut cluster = cluster();
    create_topic(&cluster, TOPIC);
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let counters = (stop.clone(), acked.clone());
    let options =
        Options::until_stopped(&cluster.bootstrap_servers(), TOPIC, (2, 2000.0), counters);
    let run = std::thread::spawn(move || verify::run_blocking(&options));

    wait_until("1000 acknowledgements", || {
        acked.load(Ordering::Relaxed) >= 1000
    });
    let rows = describe(&cluster, TOPIC);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(
        rows.iter().all(|(_, _, isr)| isr.len() == 3),
        "full ISRs first: {rows:?}"
    );
    let victim = rows[0].1;
    cluster.node_mut(victim).kill();
    let killed_at = Instant::now();
    let before = acked.load(Ordering::Relaxed);
    wait_until("a new leader of every partition", || {
        describe(&cluster, TOPIC)
            .iter()
            .all(|(_, l, _)| *l >= 0 && *l != victim)
    });
    wait_until("acknowledgements after the kill", || {
        acked.load(Ordering::Relaxed) >= before + 1000
    });
    eprintln!(
        "leader {victim} killed: 1000 more acknowledgements {:?} later",
        killed_at.elapsed()
    );

    cluster.node_mut(victim).restart();
    wait_until("the restarted broker back in every ISR", || {
        describe(&cluster, TOPIC)
            .iter()
            .all(|(_, _, isr)| isr.len() == 3)
    });
    stop.store(true, Ordering::Relaxed);
    let report = run.join().unwrap().expect("verify ran");
    eprintln!("{}", report.verdict_line());
    assert!(report.verdict.acked >= 2000, "{}", report.verdict_line());
    assert_eq!(report.verdict.lost, 0, "{}", report.verdict_line());
    assert_eq!(report.verdict.duplicated, 0, "{}", report.verdict_line());
    assert!(report.verdict.is_ok(), "{}", report.verdict_line());

    // Nothing is produced any more: followers catch up, then every replica holds the same
    // batch bytes (the same offsets, leader epochs and records).
    for partition in 0..3 {
        wait_until("replicas to hold the same bytes", || {
            let bytes = cluster.replica_bytes(TOPIC, partition);
            bytes.windows(2).all(|w| w[0] == w[1])
        });
    }
}

/// One acks=all or acks=1 produce of a one-record batch through net's client.
fn produce_one(servers: &str, topic: &str, acks: Acks) -> Result<Option<i64>, ClientError> {
    compio::runtime::Runtime::new().unwrap().block_on(async {
        let mut client = Client::connect(servers).await?;
        let mut batch = RecordBatchBuilder::new(0);
        batch.push(&Record {
            key: None,
            value: Some(b"v"),
            headers: &[],
            timestamp_ms: 0,
        });
        client.produce(topic, 0, batch.finish(), acks).await
    })
}

#[test]
fn acks_all_is_refused_below_min_insync_replicas() {
    let mut cluster = cluster();
    let servers = cluster.bootstrap_servers();
    let args = [
        "topics",
        "--bootstrap-server",
        &servers,
        "--create",
        "--topic",
        "pair",
        "--partitions",
        "1",
        "--replication-factor",
        "2",
        // The topic key as well as the broker default (a cluster takes any value >= 1).
        "--config",
        "min.insync.replicas=2",
    ];
    wait_until("three registered brokers to create the topic", || {
        let out = std::process::Command::new(sluice_path())
            .args(args)
            .output()
            .unwrap();
        out.status.success()
    });
    wait_until("a full ISR", || {
        describe(&cluster, "pair")
            .first()
            .is_some_and(|r| r.2.len() == 2)
    });
    assert!(produce_one(&servers, "pair", Acks::All).unwrap().is_some());

    let (_, leader, isr) = describe(&cluster, "pair")[0].clone();
    let follower = *isr.iter().find(|r| **r != leader).unwrap();
    cluster.node_mut(follower).kill();
    wait_until("the ISR to shrink to the leader", || {
        describe(&cluster, "pair")
            .first()
            .is_some_and(|r| r.2 == vec![leader])
    });
    let refused = produce_one(&servers, "pair", Acks::All).unwrap_err();
    assert_eq!(
        refused.kafka_error(),
        Some(ResponseError::NotEnoughReplicas),
        "{refused}"
    );
    assert!(
        produce_one(&servers, "pair", Acks::Leader)
            .unwrap()
            .is_some(),
        "acks=1 still works"
    );
}
