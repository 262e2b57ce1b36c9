//! A consumer group (librdkafka's consumer) across the death of its coordinator: 3 real
//! brokers, `__consumer_offsets` with 3 replicas; the broker leading the group's offsets
//! partition (Kafka's `abs(hashCode(group)) % partitions`, checked against FindCoordinator
//! through `sluice consumer-groups --describe --state`) is SIGKILLed mid-consumption. The
//! consumer finds the new coordinator and keeps consuming and committing: no record is
//! skipped, no committed offset moves back, nothing below the commits made before the kill
//! is delivered again, and a new member of the group starts where the last commit left it.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{create_topic, full_isrs, live_bootstrap, produce, values, wait_metadata, Acked};
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sluice_testkit::{sluice_path, Cluster};

const TOPIC: &str = "events";
const GROUP: &str = "survivors";
const PARTITIONS: i32 = 3;
const RECORDS: usize = 3000;
/// Records consumed (and committed) before the coordinator is killed.
const BEFORE_KILL: usize = 1000;
/// Records between two commits.
const COMMIT_EVERY: usize = 150;

/// Kafka's `Utils.abs(groupId.hashCode) % partitions` (Java's String.hashCode).
fn offsets_partition(group: &str, partitions: i32) -> i32 {
    let h = group
        .encode_utf16()
        .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(u as i32));
    (if h == i32::MIN { 0 } else { h.abs() }) % partitions
}

/// FindCoordinator's answer for `GROUP`, as `sluice consumer-groups --describe --state`
/// prints it (`host:port (id)`); None while there is none.
fn coordinator(bootstrap: &str) -> Option<i32> {
    let out = std::process::Command::new(sluice_path())
        .args(["consumer-groups", "--bootstrap-server", bootstrap])
        .args(["--describe", "--group", GROUP, "--state"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text.lines().find(|l| l.starts_with(GROUP))?;
    let id = row.split('(').nth(1)?.split(')').next()?;
    id.trim().parse().ok()
}

fn consumer(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("socket.timeout.ms", "3000")
        .set("topic.metadata.refresh.interval.ms", "200")
        .set("max.partition.fetch.bytes", "2048")
        .create()
        .expect("consumer")
}

/// What the consumer has seen, checked as it goes.
#[derive(Default)]
struct Progress {
    /// Next offset expected per partition (one past the highest seen).
    next: BTreeMap<i32, i64>,
    records: Acked,
    /// Records delivered since the last commit.
    uncommitted: usize,
    /// The latest committed offsets read back from the coordinator.
    committed: BTreeMap<i32, i64>,
}

impl Progress {
    /// A delivered record: never past the next one expected (nothing skipped).
    fn deliver(&mut self, partition: i32, offset: i64, value: Vec<u8>) {
        let next = self.next.entry(partition).or_insert(0);
        assert!(
            offset <= *next,
            "partition {partition}: offset {offset} delivered, {next} expected: records skipped"
        );
        *next = (*next).max(offset + 1);
        self.records.insert((partition, offset), value);
        self.uncommitted += 1;
    }

    /// A commit went through: the coordinator's offsets are never behind the last ones.
    fn committed(&mut self, consumer: &BaseConsumer) -> bool {
        let Ok(list) = consumer.committed(common::CALL_TIMEOUT) else {
            return false;
        };
        for e in list.elements() {
            let Offset::Offset(o) = e.offset() else {
                continue;
            };
            let last = self.committed.entry(e.partition()).or_insert(o);
            assert!(
                o >= *last,
                "partition {}: committed offset moved back from {last} to {o}",
                e.partition()
            );
            *last = o;
        }
        self.uncommitted = 0;
        true
    }
}

/// Polls, checks (nothing below `floor` delivered) and commits until `done` holds (bounded
/// by `common::WAIT_MAX`); returns when its first commit went through, if one did.
fn consume(
    consumer: &BaseConsumer,
    progress: &mut Progress,
    floor: &BTreeMap<i32, i64>,
    mut done: impl FnMut(&Progress) -> bool,
) -> Option<Instant> {
    let start = Instant::now();
    let mut first_commit = None;
    while !done(progress) {
        assert!(
            start.elapsed() < common::WAIT_MAX,
            "consumed {} of {RECORDS}",
            progress.records.len()
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let floor = floor.get(&m.partition()).copied().unwrap_or(0);
                assert!(
                    m.offset() >= floor,
                    "partition {}: offset {} delivered again below the commit {floor} made \
                     before the kill",
                    m.partition(),
                    m.offset()
                );
                let value = m.payload().unwrap_or_default().to_vec();
                progress.deliver(m.partition(), m.offset(), value);
            }
            Some(Err(e)) => eprintln!("consumer: {e}"),
            None => {}
        }
        let all_read = progress.records.len() >= RECORDS;
        if progress.uncommitted >= COMMIT_EVERY || (all_read && progress.uncommitted > 0) {
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) if progress.committed(consumer) => {
                    first_commit.get_or_insert_with(Instant::now);
                }
                Ok(()) => {}
                Err(e) => eprintln!("commit: {e} (retried at the next poll)"),
            }
        }
    }
    first_commit
}

#[test]
fn a_group_keeps_consuming_and_its_commits_survive_the_coordinators_death() {
    let mut cluster = Cluster::builder(3)
        .property("broker.session.timeout.ms", "3000")
        .property("broker.heartbeat.interval.ms", "500")
        .property("offsets.topic.num.partitions", "3")
        .property("group.initial.rebalance.delay.ms", "0")
        .property("num.shards", "1")
        .start();
    create_topic(
        &cluster,
        &NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(3)),
    );
    wait_metadata(&cluster, TOPIC, "full ISRs", |m| full_isrs(m, 3, 3));
    let bootstrap = live_bootstrap(&cluster);
    let (acked, failed) = produce(&bootstrap, TOPIC, None, &values("e", RECORDS), &[]);
    assert!(failed.is_empty() && acked.len() == RECORDS, "{failed:?}");
    let ends = common::ends_of(&acked);
    let offsets = wait_metadata(&cluster, "__consumer_offsets", "__consumer_offsets", |m| {
        full_isrs(m, 3, 3)
    });

    let c = consumer(&bootstrap);
    c.subscribe(&[TOPIC]).expect("subscribe");
    let mut progress = Progress::default();
    consume(&c, &mut progress, &BTreeMap::new(), |p| {
        p.records.len() >= BEFORE_KILL && p.uncommitted == 0
    });
    let before_kill = progress.committed.clone();
    assert!(
        before_kill.values().sum::<i64>() >= BEFORE_KILL as i64,
        "{before_kill:?}"
    );
    let coordinator_id = offsets.partitions[offsets_partition(GROUP, 3) as usize].leader;
    common::wait_until(
        "FindCoordinator to name the offsets partition's leader",
        || coordinator(&bootstrap) == Some(coordinator_id),
    );

    cluster.node_mut(coordinator_id).kill();
    let killed_at = Instant::now();
    let first_commit = consume(&c, &mut progress, &before_kill, |p| {
        p.records.len() >= RECORDS && p.uncommitted == 0
    });
    let mut new_coordinator = None;
    common::wait_until("FindCoordinator to name a coordinator", || {
        new_coordinator = coordinator(&live_bootstrap(&cluster));
        new_coordinator.is_some()
    });
    eprintln!(
        "coordinator {coordinator_id} killed after {} records: first commit on the new \
         coordinator ({new_coordinator:?}) {} ms later; all {RECORDS} consumed {} ms after the kill",
        before_kill.values().sum::<i64>(),
        first_commit.map_or(0, |t| t.duration_since(killed_at).as_millis()),
        killed_at.elapsed().as_millis()
    );
    assert!(first_commit.is_some(), "a commit after the kill");
    assert!(new_coordinator.is_some_and(|n| n != coordinator_id));
    for (at, value) in &acked {
        assert_eq!(progress.records.get(at), Some(value), "record {at:?}");
    }
    assert_eq!(
        progress.committed, ends,
        "the last commit covers everything"
    );
    drop(c);

    // A new member resumes at the commits, on the new coordinator.
    let fresh = consumer(&live_bootstrap(&cluster));
    let mut asked = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        asked.add_partition(TOPIC, p);
    }
    let committed = fresh
        .committed_offsets(asked, common::CALL_TIMEOUT)
        .expect("OffsetFetch from the new coordinator");
    let resumed: BTreeMap<i32, i64> = committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect();
    assert_eq!(resumed, ends);
}
