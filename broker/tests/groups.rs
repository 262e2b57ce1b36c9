//! Consumer groups with a real client (librdkafka) against the real `sluiced`: three members
//! split six partitions; a member killed with SIGKILL (a child process: this test binary
//! re-executed) loses its partitions to the others once its session expires; committed
//! offsets survive a broker restart and a restarted consumer resumes after its last commit.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Broker;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

const CHILD_ENV: &str = "SLUICE_GROUP_TEST_MEMBER";
const WAIT: Duration = Duration::from_secs(60);

fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let results = futures_executor::block_on(admin.create_topics([&topic], &AdminOptions::new()))
        .expect("create_topics");
    for r in results {
        r.expect("topic created");
    }
}

fn member(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config.create().expect("consumer")
}

fn assigned(c: &BaseConsumer) -> BTreeSet<i32> {
    c.assignment()
        .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// The child process: one group member that prints its assignment whenever it changes.
#[test]
fn group_member_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split(',').collect();
    let c = member(parts[0], parts[1], &[]);
    c.subscribe(&[parts[2]]).expect("subscribe");
    let mut last = None;
    loop {
        let _ = c.poll(Duration::from_millis(100));
        let now = assigned(&c);
        if last.as_ref() != Some(&now) {
            println!("ASSIGNED {}", now.len());
            last = Some(now);
        }
    }
}

fn spawn_child(bootstrap: &str, group: &str, topic: &str) -> (Child, mpsc::Receiver<usize>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "group_member_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{bootstrap},{group},{topic}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn member child");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("ASSIGNED ") {
                let _ = tx.send(n.trim().parse().unwrap());
            }
        }
    });
    (child, rx)
}

/// Polls `members` until `done` holds for their assignments (or panics after `WAIT`).
fn poll_until(
    members: &[&BaseConsumer],
    what: &str,
    mut done: impl FnMut(&[BTreeSet<i32>]) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        for m in members {
            let _ = m.poll(Duration::from_millis(50));
        }
        let sets: Vec<_> = members.iter().map(|m| assigned(m)).collect();
        if done(&sets) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: assignments {sets:?}");
    }
}

#[test]
fn three_members_split_partitions_and_a_killed_member_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &["group.initial.rebalance.delay.ms=500"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "six", 6);
    let (mut child, child_sizes) = spawn_child(&bootstrap, "trio", "six");
    let a = member(&bootstrap, "trio", &[]);
    let b = member(&bootstrap, "trio", &[]);
    a.subscribe(&["six"]).unwrap();
    b.subscribe(&["six"]).unwrap();
    let mut child_size = 0;
    poll_until(
        &[&a, &b],
        "three members with two partitions each",
        |sets| {
            while let Ok(n) = child_sizes.try_recv() {
                child_size = n;
            }
            sets.iter().all(|s| s.len() == 2) && child_size == 2
        },
    );
    let both: BTreeSet<i32> = assigned(&a).union(&assigned(&b)).copied().collect();
    assert_eq!(both.len(), 4, "a and b overlap");

    let killed = Instant::now();
    child.kill().expect("SIGKILL the member");
    let _ = child.wait();
    poll_until(&[&a, &b], "the killed member's partitions move", |sets| {
        sets.iter().all(|s| s.len() == 3)
    });
    let all: BTreeSet<i32> = assigned(&a).union(&assigned(&b)).copied().collect();
    assert_eq!(all, (0..6).collect());
    let took = killed.elapsed();
    assert!(
        took >= Duration::from_secs(4),
        "moved before the session expired: {took:?}"
    );
}

fn produce(bootstrap: &str, topic: &str, count: usize) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .create()
        .expect("producer");
    for i in 0..count {
        let key = format!("k{i}");
        let value = format!("v{i}");
        producer
            .send(
                BaseRecord::to(topic)
                    .key(&key)
                    .payload(&value)
                    .partition((i % 3) as i32),
            )
            .expect("enqueue");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// Consumes up to `max` records (stopping once `idle` passes with nothing new); commits
/// synchronously after each record; returns (partition, offset) of each in order.
fn consume_and_commit(c: &BaseConsumer, max: usize, idle: Duration) -> Vec<(i32, i64)> {
    let mut seen = Vec::new();
    let mut last = Instant::now();
    let deadline = Instant::now() + WAIT;
    while seen.len() < max && last.elapsed() < idle && Instant::now() < deadline {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                seen.push((m.partition(), m.offset()));
                c.commit_message(&m, CommitMode::Sync).expect("commit");
                last = Instant::now();
            }
            Some(Err(e)) => panic!("consume: {e}"),
            None => {}
        }
    }
    seen
}

#[test]
fn committed_offsets_survive_restart_and_a_consumer_resumes_after_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), &["group.initial.rebalance.delay.ms=0"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "resume", 3);
    produce(&bootstrap, "resume", 300);
    let first = {
        let c = member(&bootstrap, "resumers", &[]);
        c.subscribe(&["resume"]).unwrap();
        consume_and_commit(&c, 100, Duration::from_secs(20))
    };
    assert_eq!(first.len(), 100);
    let (status, _) = broker.terminate();
    assert!(status.success());

    let broker = Broker::start(dir.path(), &["group.initial.rebalance.delay.ms=0"]);
    let bootstrap = broker.bootstrap();
    let c = member(&bootstrap, "resumers", &[]);
    c.subscribe(&["resume"]).unwrap();
    let second = consume_and_commit(&c, 300, Duration::from_secs(5));
    let mut all: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for r in first.iter().chain(&second) {
        *all.entry(*r).or_default() += 1;
    }
    assert_eq!(all.len(), 300, "records skipped after the restart");
    assert!(
        all.values().all(|n| *n == 1),
        "records read twice after the commit"
    );
}
