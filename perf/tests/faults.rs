//! The cluster under faults (issue 11 §1): three `sluiced` nodes, each in its own network
//! namespace (testkit's `Network`: the test can cut links, silently, one way or both), RF=3,
//! `min.insync.replicas=2`, the `verify` checker producing with idempotent acks=all
//! producers throughout, and a consumer group (librdkafka) committing as it reads.
//!
//! A nemesis applies faults in an order drawn from a seed printed at the start
//! (`FAULT_SEED=<n>` replays it): SIGKILL of a partition leader, of the active controller,
//! of a follower, of two brokers at once; SIGSTOP of a broker past `replica.lag.time.max.ms`
//! and gossip's suspicion; a broker isolated from the other nodes (clients still reach it:
//! the minority side), the quorum leader isolated, a one-way cut from a leader to a
//! follower; a rolling restart. After each it heals, waits for every ISR to be full again
//! and for acknowledgements to resume. At the end: nothing acknowledged lost, nothing
//! duplicated or reordered, no offset holding two records, every replica holding the same
//! bytes (the group's `__consumer_offsets` partitions too), the group's committed offsets
//! never moved back and the group skipped no acknowledged record. Per fault kind it prints
//! the median and max of each fault's longest gap between a producer's acknowledgements on a
//! partition, and between the group's reads of one (`gaps`).
//!
//! CI runs every fault kind once (about two minutes); `SOAK_ROUNDS=<n>` runs n rounds of
//! faults drawn at random (figures in BENCHMARKS.md). Needs root for the namespaces;
//! without it the test prints SKIPPED with the reason.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use sluice_perf::verify::{self, Options};
use sluice_testkit::{create_topic_cli, topic_partitions, Cluster, Endpoint, Network};

#[path = "faults/gaps.rs"]
mod gaps;

const TOPIC: &str = "faults";
const PARTITIONS: i32 = 3;
const GROUP: &str = "faults-group";
const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// `offsets.topic.num.partitions` of the test cluster.
const OFFSETS_PARTITIONS: i32 = 3;
/// Longest wait for the cluster to heal after one fault.
const HEAL_WAIT_MAX: Duration = Duration::from_secs(120);
/// `replica.lag.time.max.ms` and `broker.session.timeout.ms` of the test cluster.
const LAG_MS: u64 = 3_000;
/// How long a cut or a pause lasts: past the lag time and gossip's suspicion.
const FAULT_HOLD: Duration = Duration::from_millis(LAG_MS + 2_000);
/// Acknowledgements that must follow each fault before the next one.
const ACKS_BETWEEN_FAULTS: u64 = 300;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    KillLeader,
    KillController,
    KillFollower,
    KillTwo,
    PauseBroker,
    IsolateBroker,
    IsolateQuorumLeader,
    OneWayCut,
    GossipCut,
    DiskFull,
    RollingRestart,
}

const FAULTS: &[Fault] = &[
    Fault::KillLeader,
    Fault::KillController,
    Fault::KillFollower,
    Fault::KillTwo,
    Fault::PauseBroker,
    Fault::IsolateBroker,
    Fault::IsolateQuorumLeader,
    Fault::OneWayCut,
    Fault::GossipCut,
    Fault::DiskFull,
    Fault::RollingRestart,
];

/// Each node's data disk (a tmpfs, filled by `DiskFull`): room for the run's records.
const DATA_DISK_BYTES: u64 = 512 << 20;
/// Acknowledgements producers must get while a broker's disk is full (they carry on with
/// the partitions' other replicas).
const ACKS_WHILE_DISK_FULL: u64 = 100;
/// How long the consumer serves its last asynchronous commit before reading commits back.
const FINAL_COMMIT_SERVE: Duration = Duration::from_secs(2);
/// How often the group's commits are read back.
const COMMIT_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How often a wait that asks the cluster (`sluice topics --describe`) asks.
const DESCRIBE_INTERVAL: Duration = Duration::from_millis(500);

/// xorshift64*: the nemesis's only source of choices, so a seed replays a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn seed() -> u64 {
    match std::env::var("FAULT_SEED") {
        Ok(s) => s.parse().expect("FAULT_SEED is a number"),
        Err(_) => uuid::Uuid::new_v4().as_u64_pair().0 | 1,
    }
}

/// Nodes in the cluster: `FAULT_NODES` (3 to 5), default 3.
fn nodes() -> i32 {
    let n = std::env::var("FAULT_NODES").map_or(3, |s| s.parse().expect("FAULT_NODES is a number"));
    assert!((3..=5).contains(&n), "FAULT_NODES is 3, 4 or 5");
    n
}

fn cluster(nodes: i32) -> Cluster {
    Cluster::builder(nodes as usize)
        .network()
        .data_disk(DATA_DISK_BYTES)
        .property("broker.session.timeout.ms", &LAG_MS.to_string())
        .property("broker.heartbeat.interval.ms", "500")
        .property("replica.lag.time.max.ms", &LAG_MS.to_string())
        .property("min.insync.replicas", "2")
        .property(
            "offsets.topic.num.partitions",
            &OFFSETS_PARTITIONS.to_string(),
        )
        .property("num.shards", "1")
        .property("group.initial.rebalance.delay.ms", "0")
        .start()
}

/// Waits until `done` (each caller bounds its wait in `done`).
fn poll_until(mut done: impl FnMut() -> bool) {
    while !done() {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `sluice topics --describe` rows: (partition, leader, ISR), asked of `servers`.
fn describe(servers: &str, topic: &str) -> Vec<(i32, i32, Vec<i32>)> {
    topic_partitions(servers, topic)
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The node whose current process most recently became the active controller.
fn active_controller(cluster: &Cluster) -> Option<i32> {
    let term = |line: &String| -> Option<u64> {
        let rest = line.split("this node is the active controller").nth(1)?;
        rest.split("term=")
            .nth(1)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    cluster
        .nodes()
        .iter()
        .filter(|n| n.is_running() && !n.is_stopped())
        .filter_map(|n| Some((n.log().iter().filter_map(term).max()?, n.node_id)))
        .max()
        .map(|(_, id)| id)
}

/// The consumer group's view: every (partition, offset) it read, and whether a committed
/// offset ever moved back.
#[derive(Default)]
struct GroupLog {
    read: BTreeSet<(i32, i64)>,
    /// Gaps between the records read from each partition.
    reads: gaps::ReadGaps,
    committed: BTreeMap<i32, i64>,
    moved_back: Vec<String>,
}

/// A librdkafka consumer in the group, committing (asynchronously) every 200 records, until
/// `stop`; then it commits once more and reads on for a while. Another client of the group
/// reads the commits back meanwhile (`check_commits`: off this thread, so no wait on the
/// coordinator holds the reads back) and says so on `done` once it read them after the last.
/// librdkafka's close can block in some group states (rust-rdkafka #509, #597), so the
/// test waits for `done`, bounded, not for the thread.
fn consume(
    servers: String,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<GroupLog>>,
    done: std::sync::mpsc::SyncSender<()>,
) {
    let consumer: BaseConsumer = group_client(&servers)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .create()
        .expect("consumer");
    consumer.subscribe(&[TOPIC]).expect("subscribe");
    let consumed = Arc::new(AtomicBool::new(false));
    // The reader of the commits starts once the group reads (one client of the group at a
    // time on the coordinator while it forms, as before the reader had a thread of its own).
    let mut checker = Some((servers, done));
    let mut since_commit = 0;
    let read = |m: &rdkafka::message::BorrowedMessage<'_>| {
        let mut log = log.lock().unwrap();
        log.read.insert((m.partition(), m.offset()));
        log.reads.read(m.partition());
    };
    while !stop.load(Ordering::Relaxed) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            read(&m);
            since_commit += 1;
            if let Some((servers, done)) = checker.take() {
                let (consumed, log) = (consumed.clone(), log.clone());
                std::thread::spawn(move || check_commits(&servers, &consumed, &log, done));
            }
        }
        // Asynchronous: librdkafka's synchronous commit can wait without bound while the
        // group moves (CI once waited > 120 s); what counts is what the group reads back.
        if since_commit >= 200 && consumer.commit_consumer_state(CommitMode::Async).is_ok() {
            since_commit = 0;
        }
    }
    let _ = consumer.commit_consumer_state(CommitMode::Async);
    let served = Instant::now();
    while served.elapsed() < FINAL_COMMIT_SERVE {
        // librdkafka takes the positions when it sends the commit, so what is read here
        // may be committed too: it is read all the same.
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            read(&m);
        }
    }
    consumed.store(true, Ordering::Relaxed);
}

fn group_client(servers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", servers)
        .set("group.id", GROUP);
    config
}

/// Reads the group's commits back every `COMMIT_CHECK_INTERVAL` (a client of the group
/// that does not join it) until `consumed`, then once more, and says so on `done`.
fn check_commits(
    servers: &str,
    consumed: &AtomicBool,
    log: &Mutex<GroupLog>,
    done: std::sync::mpsc::SyncSender<()>,
) {
    let checker: BaseConsumer = group_client(servers).create().expect("checker");
    while !consumed.load(Ordering::Relaxed) {
        check_committed(&checker, log);
        std::thread::sleep(COMMIT_CHECK_INTERVAL);
    }
    check_committed(&checker, log);
    let _ = done.send(());
}

/// Reads the group's committed offsets back and records any that moved back.
fn check_committed(consumer: &BaseConsumer, log: &Mutex<GroupLog>) {
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(TOPIC, p);
    }
    let Ok(committed) = consumer.committed_offsets(tpl, Duration::from_secs(10)) else {
        return;
    };
    let mut log = log.lock().unwrap();
    for e in committed.elements() {
        if let Offset::Offset(o) = e.offset() {
            let before = log.committed.insert(e.partition(), o).unwrap_or(-1);
            if o < before {
                let msg = format!("partition {}: committed {before} then {o}", e.partition());
                log.moved_back.push(msg);
            }
        }
    }
}

struct Nemesis<'a> {
    cluster: &'a mut Cluster,
    rng: Rng,
    acked: Arc<AtomicU64>,
    /// Each fault applied, and when it started (`gaps::report`).
    windows: Vec<(Fault, Instant)>,
}

impl Nemesis<'_> {
    fn servers(&self) -> String {
        self.cluster
            .nodes()
            .iter()
            .filter(|n| n.is_running() && !n.is_stopped())
            .map(|n| n.bootstrap())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A random running node.
    fn any_node(&mut self) -> i32 {
        let ids: Vec<i32> = self.cluster.nodes().iter().map(|n| n.node_id).collect();
        ids[self.rng.below(ids.len())]
    }

    /// (leader, a follower in its ISR) of a random partition with a full ISR.
    fn leader_and_follower(&mut self) -> (i32, i32) {
        let rows = describe(&self.servers(), TOPIC);
        let (_, leader, isr) = rows[self.rng.below(rows.len())].clone();
        let followers: Vec<i32> = isr.into_iter().filter(|r| *r != leader).collect();
        (leader, followers[self.rng.below(followers.len())])
    }

    fn apply(&mut self, fault: Fault) {
        eprintln!("[nemesis] {fault:?}");
        self.windows.push((fault, Instant::now()));
        match fault {
            Fault::KillLeader | Fault::KillFollower => {
                let (leader, follower) = self.leader_and_follower();
                let victim = if fault == Fault::KillLeader {
                    leader
                } else {
                    follower
                };
                self.kill_and_restart(&[victim]);
            }
            Fault::KillController => {
                let victim = active_controller(self.cluster).unwrap_or_else(|| self.any_node());
                self.kill_and_restart(&[victim]);
            }
            Fault::KillTwo => {
                let first = self.any_node();
                let n = self.cluster.nodes().len() as i32;
                let second = 1 + (first + self.rng.below(n as usize - 1) as i32) % n;
                self.kill_and_restart(&[first, second]);
            }
            Fault::PauseBroker => {
                let victim = self.any_node();
                self.cluster.node_mut(victim).stop();
                std::thread::sleep(FAULT_HOLD);
                self.cluster.node_mut(victim).cont();
            }
            Fault::IsolateBroker | Fault::IsolateQuorumLeader => {
                let victim = match fault {
                    Fault::IsolateBroker => self.any_node(),
                    _ => active_controller(self.cluster).unwrap_or_else(|| self.any_node()),
                };
                self.cluster.network().isolate(victim, false);
                std::thread::sleep(FAULT_HOLD);
                self.cluster.network().heal();
            }
            Fault::OneWayCut => {
                let (leader, follower) = self.leader_and_follower();
                let net: &mut Network = self.cluster.network();
                net.cut(Endpoint::Node(leader), Endpoint::Node(follower));
                std::thread::sleep(FAULT_HOLD);
                self.cluster.network().heal();
            }
            Fault::GossipCut => {
                let victim = self.any_node();
                self.cluster.network().isolate_udp(victim);
                std::thread::sleep(FAULT_HOLD);
                self.cluster.network().heal();
            }
            Fault::DiskFull => self.disk_full(),
            Fault::RollingRestart => {
                for id in 1..=self.cluster.nodes().len() as i32 {
                    self.cluster.node_mut(id).term();
                    self.cluster.node_mut(id).restart();
                    self.wait_healed(fault);
                }
            }
        }
        self.wait_healed(fault);
    }

    /// A leader's data disk fills: its leaderships must move to in-sync replicas elsewhere
    /// and producers carry on there while the disk stays full; once it is freed, the
    /// node's replicas rejoin (`wait_healed`: every ISR full again).
    fn disk_full(&mut self) {
        let (victim, _) = self.leader_and_follower();
        self.cluster.node(victim).disk().fill();
        let servers = self.servers();
        let start = Instant::now();
        let mut asked = Instant::now() - DESCRIBE_INTERVAL;
        poll_until(|| {
            assert!(
                start.elapsed() < HEAL_WAIT_MAX,
                "node {victim}'s disk is full: its leaderships did not move"
            );
            if asked.elapsed() < DESCRIBE_INTERVAL {
                return false;
            }
            asked = Instant::now();
            let rows = describe(&servers, TOPIC);
            rows.len() == PARTITIONS as usize && rows.iter().all(|(_, l, _)| *l > 0 && *l != victim)
        });
        let target = self.acked.load(Ordering::Relaxed) + ACKS_WHILE_DISK_FULL;
        let acked = self.acked.clone();
        poll_until(|| {
            assert!(
                start.elapsed() < HEAL_WAIT_MAX,
                "node {victim}'s disk is full: producers did not carry on elsewhere"
            );
            acked.load(Ordering::Relaxed) >= target
        });
        std::thread::sleep(FAULT_HOLD);
        self.cluster.node(victim).disk().free();
    }

    /// No node's process ended by itself (a crash), else the test fails naming it.
    fn check_alive(&mut self, fault: Fault) {
        for node in self.cluster.nodes_mut() {
            if let Some(status) = node.exited() {
                let log = node.log();
                let tail = &log[log.len().saturating_sub(20)..];
                panic!(
                    "node {} exited by itself ({status}) after {fault:?}; its last lines:\n{}",
                    node.node_id,
                    tail.join("\n")
                );
            }
        }
    }

    fn kill_and_restart(&mut self, victims: &[i32]) {
        for v in victims {
            self.cluster.node_mut(*v).kill();
        }
        std::thread::sleep(Duration::from_secs(2));
        for v in victims {
            self.cluster.node_mut(*v).restart();
        }
    }

    /// Every partition led with a full ISR again, and acknowledgements resumed.
    fn wait_healed(&mut self, fault: Fault) {
        let start = Instant::now();
        let servers = self.servers();
        loop {
            self.check_alive(fault);
            let rows = describe(&servers, TOPIC);
            if rows.len() == PARTITIONS as usize
                && rows.iter().all(|(_, l, isr)| *l > 0 && isr.len() == 3)
            {
                break;
            }
            assert!(
                start.elapsed() < HEAL_WAIT_MAX,
                "timed out after {HEAL_WAIT_MAX:?} waiting for every ISR full again after {fault:?}: {rows:?}"
            );
            std::thread::sleep(DESCRIBE_INTERVAL);
        }
        let target = self.acked.load(Ordering::Relaxed) + ACKS_BETWEEN_FAULTS;
        let acked = self.acked.clone();
        poll_until(|| {
            assert!(
                start.elapsed() < HEAL_WAIT_MAX,
                "no acknowledgements after {fault:?}"
            );
            acked.load(Ordering::Relaxed) >= target
        });
    }
}

/// The faults to apply: every kind once in a seeded order, or `SOAK_ROUNDS` random ones.
/// `FAULT_KINDS=DiskFull,GossipCut` keeps only those kinds. `GossipCut` needs `nft`; without it the run says so and leaves that kind out (`.ci/run`
/// installs nftables).
fn schedule(rng: &mut Rng) -> Vec<Fault> {
    let mut kinds = FAULTS.to_vec();
    if let Ok(only) = std::env::var("FAULT_KINDS") {
        let only: Vec<&str> = only.split(',').map(str::trim).collect();
        kinds.retain(|f| only.contains(&format!("{f:?}").as_str()));
        assert!(!kinds.is_empty(), "FAULT_KINDS names none of {FAULTS:?}");
    }
    if let Some(why) = Network::nft_missing() {
        eprintln!("[nemesis] SKIPPED fault kind GossipCut: {why}");
        kinds.retain(|f| *f != Fault::GossipCut);
    }
    match std::env::var("SOAK_ROUNDS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
    {
        Some(rounds) => (0..rounds).map(|_| kinds[rng.below(kinds.len())]).collect(),
        None => {
            let mut all = kinds;
            for i in (1..all.len()).rev() {
                all.swap(i, rng.below(i + 1));
            }
            all
        }
    }
}

#[test]
fn no_acknowledged_record_is_lost_under_faults() {
    if let Some(why) = Network::unavailable() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let seed = seed();
    eprintln!("[nemesis] FAULT_SEED={seed}");
    let mut cluster = cluster(nodes());
    let _client = cluster.network().enter_client();
    let servers = cluster.bootstrap_servers();
    wait_until(
        "three registered brokers to create the topic",
        HEAL_WAIT_MAX,
        || create_topic_cli(&servers, TOPIC, (PARTITIONS, 3), &[]),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let counters = (stop.clone(), acked.clone());
    let (gaps_tx, ack_gaps) = std::sync::mpsc::sync_channel(verify::PARTITION_GAPS_MAX);
    let options = Options {
        partition_gaps: Some(gaps_tx),
        ..Options::until_stopped(&servers, TOPIC, (2, 1_000.0), counters)
    };
    let producers = std::thread::spawn(move || verify::run_blocking(&options));
    let group = Arc::new(Mutex::new(GroupLog::default()));
    let (consumer_done, consumed) = std::sync::mpsc::sync_channel(1);
    {
        let (servers, stop, group) = (servers.clone(), stop.clone(), group.clone());
        std::thread::spawn(move || consume(servers, stop, group, consumer_done));
    }
    wait_until(
        "acknowledgements before the first fault",
        HEAL_WAIT_MAX,
        || acked.load(Ordering::Relaxed) >= ACKS_BETWEEN_FAULTS,
    );

    let mut rng = Rng(seed);
    let faults = schedule(&mut rng);
    let mut nemesis = Nemesis {
        cluster: &mut cluster,
        rng,
        acked: acked.clone(),
        windows: Vec::new(),
    };
    for fault in faults {
        nemesis.apply(fault);
    }
    let windows = std::mem::take(&mut nemesis.windows);
    drop(nemesis);

    stop.store(true, Ordering::Relaxed);
    let report = producers.join().unwrap().expect("verify ran");
    let ack_gaps = gaps::Gaps::of_acks(&ack_gaps.try_iter().collect::<Vec<_>>());
    eprintln!("{}", report.verdict_line());
    assert!(
        report.verdict.is_ok(),
        "FAULT_SEED={seed}: {}",
        report.verdict_line()
    );
    assert_eq!(report.verdict.lost, 0, "FAULT_SEED={seed}");
    assert_eq!(report.verdict.duplicated, 0, "FAULT_SEED={seed}");
    consumed.recv_timeout(HEAL_WAIT_MAX).unwrap_or_else(|e| {
        panic!("FAULT_SEED={seed}: the group's last commit did not finish: {e}")
    });
    {
        let log = group.lock().unwrap();
        for line in gaps::report(&windows, &ack_gaps, &log.reads.gaps) {
            eprintln!("{line}");
        }
        if let Ok(min) = std::env::var("FAULT_GAPS") {
            let min = Duration::from_secs_f64(min.parse().expect("FAULT_GAPS is seconds"));
            for line in gaps::detail(&windows, (&ack_gaps, &log.reads.gaps), min) {
                eprintln!("{line}");
            }
        }
    }
    check_group(&group.lock().unwrap(), seed);
    // The replicas of each partition (its full ISR: with more than 3 nodes, the others
    // hold no copy) hold the same bytes.
    let rows = describe(&cluster.bootstrap_servers(), TOPIC);
    for (partition, _, isr) in rows {
        assert_eq!(
            isr.len(),
            3,
            "FAULT_SEED={seed}: partition {partition}: ISR {isr:?}"
        );
        same_replica_bytes(&cluster, TOPIC, partition, &isr);
    }
    // So do the group's commits, in the compacted `__consumer_offsets`: the bytes, which is
    // more than the "the same latest value per key" (no compaction runs yet, so no
    // replica may drop a record another keeps). Partitions no group maps to may be empty.
    for partition in 0..OFFSETS_PARTITIONS {
        let mut isr = Vec::new();
        wait_until("a full ISR of __consumer_offsets", HEAL_WAIT_MAX, || {
            let rows = describe(&cluster.bootstrap_servers(), OFFSETS_TOPIC);
            isr = rows
                .into_iter()
                .find(|(p, _, _)| *p == partition)
                .map(|(_, _, isr)| isr)
                .unwrap_or_default();
            isr.len() == 3
        });
        same_replica_bytes(&cluster, OFFSETS_TOPIC, partition, &isr);
    }
    assert!(
        (0..OFFSETS_PARTITIONS).any(|p| cluster
            .replica_bytes(OFFSETS_TOPIC, p)
            .iter()
            .any(|b| !b.is_empty())),
        "FAULT_SEED={seed}: the group's commits are in no __consumer_offsets partition"
    );
}

/// Every replica in `isr` of `topic`-`partition` holds the same bytes (waited for: a
/// follower may still be fetching the last of them).
fn same_replica_bytes(cluster: &Cluster, topic: &str, partition: i32, isr: &[i32]) {
    let what = format!("the replicas of {topic}-{partition} in {isr:?} to hold the same bytes");
    wait_until(&what, HEAL_WAIT_MAX, || {
        let bytes = cluster.replica_bytes(topic, partition);
        let copies: Vec<&Vec<u8>> = isr.iter().map(|id| &bytes[*id as usize - 1]).collect();
        let some = topic == OFFSETS_TOPIC || !copies[0].is_empty();
        some && copies.windows(2).all(|w| w[0] == w[1])
    });
}

/// The group never moved a committed offset back and read every acknowledged offset
/// below what it last committed.
fn check_group(log: &GroupLog, seed: u64) {
    assert!(
        log.moved_back.is_empty(),
        "FAULT_SEED={seed}: {:?}",
        log.moved_back
    );
    assert!(
        !log.committed.is_empty(),
        "FAULT_SEED={seed}: the group never committed (it read {} records)",
        log.read.len()
    );
    for (p, committed) in &log.committed {
        let skipped: Vec<i64> = (0..*committed)
            .filter(|o| !log.read.contains(&(*p, *o)))
            .take(5)
            .collect();
        assert!(
            skipped.is_empty(),
            "FAULT_SEED={seed}: partition {p}: offsets below the commit {committed} never read: {skipped:?}"
        );
    }
}
