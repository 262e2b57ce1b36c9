//! A slow disk under load (the brief's "slow disk" fault): three `sluiced` nodes, each
//! node's `log.dirs` on a small ext4 on a loop device (testkit's `SmallDisk::mount_block`),
//! `log.flush.interval.messages=1` so every append is durable before it is acknowledged or
//! fetched on (with Kafka's default no fsync is on the data path and a slow disk only
//! shows when the page cache fills), RF=3, `min.insync.replicas=2`, and the `verify`
//! checker's idempotent acks=all producers throughout.
//!
//! 1. A follower's writes are throttled far below the produce rate (the block layer's
//!    throttle for its process): it falls behind, the leader takes it out of the ISR after
//!    `replica.lag.time.max.ms`, and the producers carry on with the two others. Unthrottled,
//!    it catches up and rejoins.
//! 2. The leader's writes are throttled: acknowledgements slow down but the leader keeps
//!    answering other requests (its shard does not block on the disk); unthrottled, the
//!    producers carry on at speed.
//!
//! At the end nothing acknowledged is lost or duplicated and every replica holds the same
//! bytes. Needs root, a loop device and a blkio (or cgroup v2 io) controller; without them
//! the test prints SKIPPED with the reason.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_perf::verify::{self, Options};
use sluice_testkit::disk::Throttle;
use sluice_testkit::{create_topic_cli, topic_partitions, wait_for, Cluster, SmallDisk};

const TOPIC: &str = "slow";
/// `replica.lag.time.max.ms` and `broker.session.timeout.ms` of the test cluster.
const LAG_MS: u64 = 3_000;
const WAIT_MAX: Duration = Duration::from_secs(90);
/// What a throttled disk may write: far below the producers' ~80 KB/s.
const SLOW_BYTES_PER_SECOND: u64 = 16 << 10;
const SLOW_WRITES_PER_SECOND: u64 = 4;
/// How long the leader's disk stays slow.
const SLOW_LEADER_HOLD: Duration = Duration::from_secs(5);
/// Acknowledgements that must follow each phase.
const ACKS_PER_PHASE: u64 = 300;

/// testkit's `wait_for`, saying how long it waited.
fn wait_until(what: &str, done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    wait_for(what, WAIT_MAX, done);
    start.elapsed()
}

/// Throttles node `id`'s writes to its data disk (until the guard drops).
fn slow_down(cluster: &Cluster, id: i32) -> Throttle {
    let node = cluster.node(id);
    node.disk()
        .throttle(
            node.pid().unwrap(),
            SLOW_BYTES_PER_SECOND,
            SLOW_WRITES_PER_SECOND,
        )
        .unwrap_or_else(|e| panic!("throttle node {id}'s disk: {e}"))
}

/// (leader, ISR) of partition 0, asked of `servers`.
fn partition(servers: &str) -> Option<(i32, Vec<i32>)> {
    let rows = topic_partitions(servers, TOPIC);
    rows.into_iter()
        .find(|(p, _, _)| *p == 0)
        .map(|(_, leader, isr)| (leader, isr))
}

#[test]
fn a_slow_disk_costs_its_follower_the_isr_and_its_leader_speed_and_loses_nothing() {
    if let Some(why) = SmallDisk::throttle_unavailable() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let cluster = Cluster::builder(3)
        .block_data_disk(256 << 20)
        .property("log.flush.interval.messages", "1")
        .property("broker.session.timeout.ms", &LAG_MS.to_string())
        .property("broker.heartbeat.interval.ms", "500")
        .property("replica.lag.time.max.ms", &LAG_MS.to_string())
        .property("min.insync.replicas", "2")
        .property("offsets.topic.num.partitions", "1")
        .property("num.shards", "1")
        .start();
    let servers = cluster.bootstrap_servers();
    wait_until("three brokers to create the topic", || {
        create_topic_cli(&servers, TOPIC, (1, 3), &[])
    });
    wait_until("a full ISR", || {
        partition(&servers).is_some_and(|(l, isr)| l > 0 && isr.len() == 3)
    });

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let (gaps_tx, gaps) = std::sync::mpsc::sync_channel(verify::PARTITION_GAPS_MAX);
    let options = Options {
        partition_gaps: Some(gaps_tx),
        ..Options::until_stopped(&servers, TOPIC, (2, 400.0), (stop.clone(), acked.clone()))
    };
    let producers = std::thread::spawn(move || verify::run_blocking(&options));
    let acks_after = |what: &str, n: u64| {
        let target = acked.load(Ordering::Relaxed) + n;
        wait_until(what, || acked.load(Ordering::Relaxed) >= target)
    };
    acks_after("acknowledgements before the first fault", ACKS_PER_PHASE);

    // 1. A slow follower leaves the ISR; the producers carry on without it.
    let (leader, isr) = partition(&servers).unwrap();
    let follower = *isr.iter().find(|r| **r != leader).unwrap();
    let throttle = slow_down(&cluster, follower);
    let out_after = wait_until("the slow follower out of the ISR", || {
        partition(&servers).is_some_and(|(_, isr)| !isr.contains(&follower))
    });
    acks_after(
        "acknowledgements with the slow follower out",
        ACKS_PER_PHASE,
    );
    drop(throttle);
    let back_after = wait_until("the follower back in the ISR", || {
        partition(&servers).is_some_and(|(_, isr)| isr.len() == 3)
    });
    eprintln!(
        "follower {follower}'s disk slowed: out of the ISR after {out_after:?} \
         (replica.lag.time.max.ms={LAG_MS}); back {back_after:?} after it was unthrottled"
    );

    // 2. A slow leader: slower acknowledgements, and it still answers.
    let (leader, _) = partition(&servers).unwrap();
    let node = cluster.node(leader);
    let before = acked.load(Ordering::Relaxed);
    let throttle = slow_down(&cluster, leader);
    let slowed_at = Instant::now();
    let answered = partition(&node.bootstrap());
    assert!(
        answered.as_ref().is_some_and(|(l, _)| *l == leader),
        "the slow leader answers Metadata: {answered:?}"
    );
    std::thread::sleep(SLOW_LEADER_HOLD.saturating_sub(slowed_at.elapsed()));
    let during = acked.load(Ordering::Relaxed) - before;
    drop(throttle);
    acks_after(
        "acknowledgements after the leader's disk recovered",
        ACKS_PER_PHASE,
    );
    eprintln!(
        "leader {leader}'s disk slowed for {SLOW_LEADER_HOLD:?}: {during} records acknowledged \
         meanwhile (the producers offer 800 a second)"
    );

    stop.store(true, Ordering::Relaxed);
    let report = producers.join().unwrap().expect("verify ran");
    eprintln!("{}", report.verdict_line());
    let longest = gaps.try_iter().map(|(_, _, gap)| gap).max();
    eprintln!("longest gap between a producer's acknowledgements: {longest:?}");
    assert!(report.verdict.is_ok(), "{}", report.verdict_line());
    assert_eq!(report.verdict.lost, 0);
    assert_eq!(report.verdict.duplicated, 0);
    wait_until("a full ISR at the end", || {
        partition(&servers).is_some_and(|(_, isr)| isr.len() == 3)
    });
    wait_until("every replica to hold the same bytes", || {
        let bytes = cluster.replica_bytes(TOPIC, 0);
        !bytes[0].is_empty() && bytes.windows(2).all(|w| w[0] == w[1])
    });
}
