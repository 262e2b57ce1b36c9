//! Unclean leader election, both ways (issue 11 §2), with real processes and librdkafka:
//! three controller-only nodes keep the quorum while the two brokers holding a topic of
//! RF=2 die in turn. Records are acknowledged while only the leader holds them (its
//! follower dead, `min.insync.replicas=1`); then the leader dies and the out-of-sync
//! follower comes back alone.
//!
//! - `unclean.leader.election.enable=false`: the partition stays offline (no leader; a
//!   produce fails with a retriable error, nothing is acknowledged), and once the in-sync
//!   replica returns it leads again with every acknowledged record.
//! - `true`: the out-of-sync replica is elected and takes writes; the old leader, back,
//!   truncates to it below its high watermark — the one allowed exception, logged with the
//!   offsets lost and counted — and the two replicas end with the same bytes.
//!
//! Metrics: the active controller counts the offline partition
//! (`sluice_offline_partitions`), the unclean leader its election
//! (`sluice_leader_elections_total{type="unclean"}`).

mod common;

use std::time::{Duration, Instant};

use common::*;
use rdkafka::admin::{NewTopic, TopicReplication};
use sluice_testkit::Cluster;

const TOPIC: &str = "unclean";
/// How long the partition must stay offline to count as "kept offline".
const OFFLINE_HOLD: Duration = Duration::from_secs(4);

fn cluster() -> Cluster {
    split_roles(3, 2)
        .property("replica.lag.time.max.ms", "3000")
        .property("offsets.topic.replication.factor", "2")
        .property("offsets.topic.num.partitions", "1")
        .property("metrics.listener", "127.0.0.1:0")
        .start()
}

/// The value of `series` on every running node that answers a scrape.
fn metric_on_nodes(cluster: &Cluster, series: &str) -> Vec<(i32, f64)> {
    let running = cluster.nodes().iter().filter(|n| n.is_running());
    running
        .filter_map(|n| Some((n.node_id, metric(&scrape_metrics(n)?, series)?)))
        .collect()
}

/// The topic's one partition as Metadata from the live brokers shows it.
fn partition(cluster: &Cluster) -> Option<PartitionRow> {
    metadata(&live_bootstrap(cluster), TOPIC)?
        .partitions
        .first()
        .cloned()
}

/// Up to the point both ways share: returns (cluster, leader, follower, records acked
/// while both held them, records acked by the leader alone).
fn leader_alone_then_dead(unclean: bool) -> (Cluster, i32, i32, Acked, Acked) {
    let mut cluster = cluster();
    let flag = unclean.to_string();
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(2))
        .set("unclean.leader.election.enable", &flag)
        .set("min.insync.replicas", "1");
    create_topic(&cluster, &topic);
    let both = wait_metadata(&cluster, TOPIC, "a full ISR", |m| full_isrs(m, 1, 2));
    let (leader, follower) = {
        let p = &both.partitions[0];
        (
            p.leader,
            *p.replicas.iter().find(|r| **r != p.leader).unwrap(),
        )
    };
    let (shared, failed) = produce(
        &live_bootstrap(&cluster),
        TOPIC,
        Some(0),
        &values("shared", 100),
        &[],
    );
    assert!(failed.is_empty() && shared.len() == 100, "{failed:?}");

    cluster.node_mut(follower).kill();
    wait_until("the ISR to shrink to the leader", || {
        partition(&cluster).is_some_and(|p| p.isr == vec![leader])
    });
    let (alone, failed) = produce(
        &live_bootstrap(&cluster),
        TOPIC,
        Some(0),
        &values("alone", 100),
        &[],
    );
    assert!(failed.is_empty() && alone.len() == 100, "{failed:?}");

    cluster.node_mut(leader).kill();
    cluster.node_mut(follower).restart();
    (cluster, leader, follower, shared, alone)
}

#[test]
fn without_unclean_election_the_partition_waits_for_an_in_sync_replica() {
    let (mut cluster, leader, _follower, shared, alone) = leader_alone_then_dead(false);
    // Only the out-of-sync replica is alive: once the dead leader is fenced the partition
    // has no leader, and the out-of-sync replica is never elected.
    wait_until("the dead leader fenced", || {
        partition(&cluster).is_some_and(|p| p.leader == -1)
    });
    let start = Instant::now();
    while start.elapsed() < OFFLINE_HOLD {
        if let Some(p) = partition(&cluster) {
            assert_eq!(p.leader, -1, "an out-of-sync replica was elected: {p:?}");
        }
        std::thread::sleep(POLL_PAUSE);
    }
    // The active controller counts it offline (Kafka's OfflinePartitionsCount).
    wait_until(
        "the active controller to count the offline partition",
        || {
            let active = metric_on_nodes(&cluster, "sluice_active_controller");
            let offline = metric_on_nodes(&cluster, "sluice_offline_partitions");
            let controller = active.iter().find(|(_, a)| *a == 1.0).map(|(id, _)| *id);
            offline
                .iter()
                .any(|(id, n)| Some(*id) == controller && *n >= 1.0)
        },
    );
    let quick = [("message.timeout.ms", "2000")];
    let (acked, failed) = produce(
        &live_bootstrap(&cluster),
        TOPIC,
        Some(0),
        &values("offline", 5),
        &quick,
    );
    assert!(acked.is_empty(), "acknowledged while offline: {acked:?}");
    assert!(!failed.is_empty());
    eprintln!("offline partition: produce failed with {:?}", failed[0]);

    cluster.node_mut(leader).restart();
    wait_until("the in-sync replica to lead again", || {
        partition(&cluster).is_some_and(|p| p.leader == leader)
    });
    let mut everything = shared;
    everything.extend(alone);
    assert_all_read(&live_bootstrap(&cluster), TOPIC, &everything);
}

#[test]
fn with_unclean_election_the_old_leader_truncates_and_says_how_much() {
    let (mut cluster, leader, follower, shared, alone) = leader_alone_then_dead(true);
    wait_until("the out-of-sync replica to be elected", || {
        partition(&cluster).is_some_and(|p| p.leader == follower)
    });
    let (after, failed) = produce(
        &live_bootstrap(&cluster),
        TOPIC,
        Some(0),
        &values("after", 50),
        &[],
    );
    assert!(failed.is_empty() && after.len() == 50, "{failed:?}");
    // The unclean leader continues from its own log end: offsets 100..150 hold new records.
    assert_eq!(after.keys().next(), Some(&(0, 100)));
    let series = r#"sluice_leader_elections_total{type="unclean"}"#;
    let elections = metric_on_nodes(&cluster, series);
    assert!(
        elections.iter().any(|(id, n)| *id == follower && *n >= 1.0),
        "the unclean leader counts its election: {elections:?}"
    );

    cluster.node_mut(leader).restart();
    wait_until("the old leader back in the ISR", || {
        partition(&cluster).is_some_and(|p| p.isr.len() == 2)
    });
    let node = cluster.node(leader);
    let cut = node
        .log()
        .into_iter()
        .find(|l| l.contains("following a leader elected uncleanly"))
        .expect("the old leader logs the unclean truncation");
    // It held offsets 0..200, the new leader 0..100 when elected.
    let lost: i64 = cut
        .split("lost=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("the number of offsets lost");
    assert_eq!(lost, 100, "{cut}");
    eprintln!("unclean truncation on the old leader: {lost} committed offsets lost");
    assert!(!node.log_contains("panicked"), "{cut}");
    // What both replicas hold now: the shared records, then the unclean leader's.
    let mut now = shared;
    now.extend(after);
    assert_all_read(&live_bootstrap(&cluster), TOPIC, &now);
    assert_eq!(
        alone.len(),
        100,
        "acknowledged by the old leader alone, now replaced or gone"
    );
    wait_until("both replicas to hold the same bytes", || {
        let bytes = cluster.replica_bytes(TOPIC, 0);
        let held: Vec<&Vec<u8>> = bytes.iter().filter(|b| !b.is_empty()).collect();
        held.len() == 2 && held[0] == held[1]
    });
}
