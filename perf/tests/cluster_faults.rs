//! Faults of a real 3-node cluster (testkit's `Cluster`: three `sluiced` processes,
//! combined broker+controller) seen through a real client (librdkafka) and the `verify`
//! checker:
//! - a SIGSTOPped follower leaves the ISR after `replica.lag.time.max.ms` (while the
//!   controller still counts it alive) and rejoins it after SIGCONT;
//! - with the metadata quorum lost (2 of 3 voters stopped, one of them the follower of an
//!   RF=2 `min.insync.replicas=2` partition), acks=all times out and nothing is
//!   acknowledged, the leader keeps its ISR (only the controller changes it); once the
//!   quorum is back nothing acknowledged is missing and everything works again;
//! - SIGKILL of the active controller: CreateTopics still succeeds once a new quorum leader
//!   is elected.
//!
//! The stopped follower's test also reads the metrics that should move: the leader's ISR
//! shrink and expansion counters and follower lag, every node's metadata quorum state.
//!
//! Timeouts are shortened to keep CI quick; every wait is bounded (`common::WAIT_MAX`) and
//! no verdict depends on how long something took (the times are printed, not asserted).

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    assert_all_read, create_topic, full_isrs, live_bootstrap, metadata, metric, produce,
    scrape_metrics, values, wait_metadata, wait_until, Acked,
};
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use sluice_net::client::producer::Acks;
use sluice_perf::verify::{self, Options};
use sluice_testkit::{Cluster, ClusterBuilder};

fn builder() -> ClusterBuilder {
    Cluster::builder(3)
        .property("broker.heartbeat.interval.ms", "500")
        .property("offsets.topic.num.partitions", "3")
        .property("num.shards", "1")
}

/// A SIGSTOPped follower keeps its broker session far longer than the lag time (and gossip,
/// which would fence it within a second, is off), so what takes it out of the ISR is the
/// leader's `maybe_shrink_isr`, not fencing.
#[test]
fn a_stopped_follower_leaves_the_isr_and_rejoins_after_sigcont() {
    let mut cluster = builder()
        .property("broker.session.timeout.ms", "60000")
        .property("sluice.gossip.enable", "false")
        .property("replica.lag.time.max.ms", "1500")
        .property("metrics.listener", "127.0.0.1:0")
        .start();
    let topic =
        NewTopic::new("lagging", 1, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
    create_topic(&cluster, &topic);
    let view = wait_metadata(&cluster, "lagging", "a full ISR", |m| full_isrs(m, 1, 3));
    check_quorum_metrics(&cluster);
    let leader = view.partitions[0].leader;
    let follower = *view.partitions[0]
        .replicas
        .iter()
        .find(|r| **r != leader)
        .unwrap();
    let bootstrap = live_bootstrap(&cluster);
    let (mut acked, failed) = produce(&bootstrap, "lagging", Some(0), &values("before", 50), &[]);
    assert!(failed.is_empty(), "{failed:?}");

    cluster.node_mut(follower).stop();
    let stopped_at = Instant::now();
    // acks=all waits for the stopped follower until it leaves the ISR, then the two
    // left (min.insync.replicas=2) take the writes.
    let bootstrap = live_bootstrap(&cluster);
    let writer = {
        let bootstrap = bootstrap.clone();
        std::thread::spawn(move || {
            produce(&bootstrap, "lagging", Some(0), &values("stopped", 50), &[])
        })
    };
    let shrunk = wait_metadata(
        &cluster,
        "lagging",
        "the ISR to drop the stopped follower",
        |m| m.partitions.len() == 1 && !m.partitions[0].isr.contains(&follower),
    );
    let shrink_ms = stopped_at.elapsed().as_millis();
    assert_eq!(shrunk.partitions[0].isr.len(), 2, "{shrunk:?}");
    assert_eq!(shrunk.partitions[0].leader, leader, "{shrunk:?}");
    assert!(
        shrunk.brokers.contains(&follower),
        "the follower left the ISR by lag, not by fencing: {shrunk:?}"
    );
    // The leader's own reason (its log is read by another thread: waited for).
    wait_until("the leader to log why it shrank the ISR", || {
        cluster
            .node(leader)
            .log_contains("followers lag more than replica.lag.time.max.ms")
    });
    let (during, failed) = writer.join().unwrap();
    assert!(
        failed.is_empty(),
        "acks=all with 2 in-sync of min 2: {failed:?}"
    );
    assert_eq!(during.len(), 50);
    acked.extend(during);
    // The leader counted its shrink and sees the stopped follower behind, in offsets and time.
    let scrape = |c: &Cluster| scrape_metrics(c.node(leader)).unwrap_or_default();
    let lag = r#"{topic="lagging",partition="0"}"#;
    wait_until("the leader to count the ISR shrink", || {
        metric(&scrape(&cluster), "sluice_isr_shrinks_total").is_some_and(|n| n >= 1.0)
    });
    let text = scrape(&cluster);
    let behind = metric(&text, &format!("sluice_follower_lag_offsets{lag}"));
    assert!(behind.is_some_and(|n| n >= 50.0), "{text}");
    let late = metric(&text, &format!("sluice_follower_lag_seconds{lag}"));
    assert!(late.is_some_and(|s| s > 0.0), "{text}");
    assert_eq!(
        metric(&text, "sluice_under_min_isr_partitions"),
        Some(0.0),
        "ISR 2, min 2"
    );

    cluster.node_mut(follower).cont();
    let continued_at = Instant::now();
    let (after, failed) = produce(&bootstrap, "lagging", Some(0), &values("after", 50), &[]);
    assert!(failed.is_empty(), "{failed:?}");
    acked.extend(after);
    wait_metadata(&cluster, "lagging", "the follower back in the ISR", |m| {
        full_isrs(m, 1, 3)
    });
    wait_until("the leader to count the ISR expansion", || {
        metric(&scrape(&cluster), "sluice_isr_expands_total").is_some_and(|n| n >= 1.0)
    });
    wait_until("the follower's lag back to 0", || {
        metric(
            &scrape(&cluster),
            &format!("sluice_follower_lag_offsets{lag}"),
        ) == Some(0.0)
    });
    eprintln!(
        "follower {follower} SIGSTOPped: out of the ISR after {shrink_ms} ms \
         (replica.lag.time.max.ms=1500); back in {} ms after SIGCONT",
        continued_at.elapsed().as_millis()
    );
    assert_all_read(&live_bootstrap(&cluster), "lagging", &acked);
}

/// Every node's metadata quorum state (once it settled): one leader, which is the active
/// controller; every other node a follower naming it, all in one epoch.
fn check_quorum_metrics(cluster: &Cluster) {
    let views = || -> Vec<(i32, String)> {
        let running = cluster.nodes().iter().filter(|n| n.is_running());
        running
            .filter_map(|n| Some((n.node_id, scrape_metrics(n)?)))
            .collect()
    };
    wait_until("every node to agree on the quorum leader", || {
        let v = views();
        let leaders: Vec<i32> = v
            .iter()
            .filter(|(_, t)| metric(t, r#"sluice_raft_state{state="leader"}"#) == Some(1.0))
            .map(|(id, _)| *id)
            .collect();
        let [leader] = leaders[..] else { return false };
        let epochs: BTreeSet<i64> = v
            .iter()
            .filter_map(|(_, t)| metric(t, "sluice_raft_current_epoch").map(|e| e as i64))
            .collect();
        v.len() == 3
            && epochs.len() == 1
            && v.iter().all(|(id, t)| {
                let state = if *id == leader { "leader" } else { "follower" };
                let active = f64::from(u8::from(*id == leader));
                metric(t, &format!("sluice_raft_state{{state=\"{state}\"}}")) == Some(1.0)
                    && metric(t, "sluice_raft_current_leader") == Some(f64::from(leader))
                    && metric(t, "sluice_active_controller") == Some(active)
                    && metric(t, "sluice_offline_partitions") == Some(0.0)
                    && metric(t, "sluice_raft_commit_lag_offsets").is_some()
            })
    });
}

/// An acks=all write waiting for a follower when the ISR shrinks to the leader alone is
/// one copy, not `min.insync.replicas=2`: Kafka answers NOT_ENOUGH_REPLICAS_AFTER_APPEND at
/// once (`checkEnoughReplicasReachOffset`). The shrink moves the leader's high watermark to
/// its log end; before the fix that move woke no waiter, so the write waited out its
/// request timeout (30 s stalls in the fault suite), and a waiter woken otherwise answered
/// success.
#[test]
fn a_write_left_with_the_leader_alone_in_the_isr_answers_not_enough_replicas_after_append() {
    let mut cluster = builder()
        .property("broker.session.timeout.ms", "60000")
        .property("sluice.gossip.enable", "false")
        .property("replica.lag.time.max.ms", "1500")
        .start();
    let topic = NewTopic::new("alone", 1, TopicReplication::Variable(&[&[1, 2]]))
        .set("min.insync.replicas", "2");
    create_topic(&cluster, &topic);
    let view = wait_metadata(&cluster, "alone", "a full ISR", |m| full_isrs(m, 1, 2));
    let leader = view.partitions[0].leader;
    let follower = 3 - leader; // the other of 1 and 2
    cluster.node_mut(follower).stop();
    let stopped_at = Instant::now();
    let no_retries = [
        ("retries", "0"),
        ("request.timeout.ms", "20000"),
        ("message.timeout.ms", "20000"),
    ];
    let bootstrap = live_bootstrap(&cluster);
    let (acked, failed) = produce(
        &bootstrap,
        "alone",
        Some(0),
        &values("alone", 1),
        &no_retries,
    );
    let answered_after = stopped_at.elapsed();
    assert!(acked.is_empty(), "acknowledged with one copy: {acked:?}");
    assert!(
        matches!(
            failed.as_slice(),
            [KafkaError::MessageProduction(
                RDKafkaErrorCode::NotEnoughReplicasAfterAppend
            )]
        ),
        "{failed:?} after {answered_after:?}"
    );
    let shrunk = metadata(&bootstrap, "alone").unwrap();
    assert_eq!(shrunk.partitions[0].isr, vec![leader], "{shrunk:?}");
    eprintln!("the leader alone in the ISR: NOT_ENOUGH_REPLICAS_AFTER_APPEND {answered_after:?} after the follower stopped");
    cluster.node_mut(follower).cont();
}

/// Quorum lost: the follower of an RF=2, `min.insync.replicas=2` partition and a third
/// voter are stopped, so the ISR cannot shrink (no controller) and acks=all cannot be
/// satisfied: every produce times out, none is acknowledged. The checker runs through it.
#[test]
fn without_a_quorum_acks_all_times_out_and_nothing_acked_is_lost() {
    let mut cluster = builder()
        .property("broker.session.timeout.ms", "3000")
        .property("replica.lag.time.max.ms", "1500")
        .start();
    // Replicas on nodes 1 and 2: node 3 only votes.
    let topic = NewTopic::new("pair", 1, TopicReplication::Variable(&[&[1, 2]]))
        .set("min.insync.replicas", "2");
    create_topic(&cluster, &topic);
    let view = wait_metadata(&cluster, "pair", "a full ISR", |m| full_isrs(m, 1, 2));
    let leader = view.partitions[0].leader;
    let follower = 3 - leader; // the other of 1 and 2

    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicU64::new(0));
    let mut options = Options::new(&cluster.bootstrap_servers(), "pair");
    options.duration = Duration::from_secs(120);
    options.producers = 1;
    options.acks = Acks::All;
    options.idempotent = true;
    options.throughput = Some(500.0);
    options.request_timeout = Duration::from_millis(2000);
    options.stop = Some(stop.clone());
    options.acknowledged = Some(acks.clone());
    let run = std::thread::spawn(move || verify::run_blocking(&options));
    wait_until("200 acknowledgements", || {
        acks.load(Ordering::Relaxed) >= 200
    });

    cluster.node_mut(3).stop();
    cluster.node_mut(follower).stop();
    let lost_at = Instant::now();
    let bootstrap = live_bootstrap(&cluster);
    let timeouts = [
        ("request.timeout.ms", "1000"),
        ("message.timeout.ms", "4000"),
    ];
    let (acked, failed) = produce(
        &bootstrap,
        "pair",
        Some(0),
        &values("no-quorum", 20),
        &timeouts,
    );
    assert!(acked.is_empty(), "acknowledged without a quorum: {acked:?}");
    assert_eq!(failed.len(), 20);
    for e in &failed {
        assert!(
            matches!(
                e,
                KafkaError::MessageProduction(
                    RDKafkaErrorCode::MessageTimedOut | RDKafkaErrorCode::RequestTimedOut
                )
            ),
            "{e:?}"
        );
    }
    // The leader's shrink was due long ago (1.5 s lag, 4 s of timeouts) but the ISR
    // changes only through the controller: it is unchanged.
    let kept = metadata(&bootstrap, "pair").expect("the leader answers Metadata");
    assert_eq!(kept.partitions[0].isr, vec![1, 2], "{kept:?}");
    let before = acks.load(Ordering::Relaxed);

    cluster.node_mut(follower).cont();
    cluster.node_mut(3).cont();
    let back_at = Instant::now();
    wait_until("200 acknowledgements after the quorum came back", || {
        acks.load(Ordering::Relaxed) >= before + 200
    });
    let recovered_ms = back_at.elapsed().as_millis();
    stop.store(true, Ordering::Relaxed);
    let report = run.join().unwrap().expect("verify ran");
    eprintln!("{}", report.verdict_line());
    eprintln!(
        "quorum lost for {} ms: acks=all timed out throughout; 200 acknowledgements {recovered_ms} ms after it came back",
        back_at.duration_since(lost_at).as_millis()
    );
    assert_eq!(report.verdict.lost, 0, "{}", report.verdict_line());
    assert_eq!(report.verdict.duplicated, 0, "{}", report.verdict_line());
    assert!(report.verdict.is_ok(), "{}", report.verdict_line());

    // Everything works again: acks=all, the full ISR, a new topic.
    let bootstrap = live_bootstrap(&cluster);
    let (acked, failed) = produce(&bootstrap, "pair", Some(0), &values("again", 20), &[]);
    assert!(failed.is_empty() && acked.len() == 20, "{failed:?}");
    wait_metadata(&cluster, "pair", "a full ISR again", |m| full_isrs(m, 1, 2));
    create_topic(
        &cluster,
        &NewTopic::new("after-quorum", 1, TopicReplication::Fixed(3)),
    );
}

/// SIGKILL of the active controller (the metadata quorum's leader): CreateTopics through
/// librdkafka's admin client succeeds once the other two elected a new leader.
#[test]
fn create_topics_succeeds_after_the_active_controller_is_killed() {
    let mut cluster = builder()
        .property("broker.session.timeout.ms", "3000")
        .start();
    // A steady cluster first: every broker registered and in every node's metadata.
    common::wait_brokers_registered(&cluster);
    let (active, term) = common::active_controller(&cluster);
    cluster.node_mut(active).kill();
    let killed_at = Instant::now();

    let topic = NewTopic::new("after-kill", 3, TopicReplication::Fixed(2));
    let mut attempts = 0;
    let mut errors = Vec::new();
    wait_until("CreateTopics to succeed", || {
        attempts += 1;
        match common::try_create_topic(&live_bootstrap(&cluster), &topic) {
            Ok(()) => true,
            // An earlier attempt that timed out on our side may have been decided.
            Err(KafkaError::AdminOp(RDKafkaErrorCode::TopicAlreadyExists)) if attempts > 1 => true,
            Err(e) => {
                errors.push(e.to_string());
                std::thread::sleep(common::POLL_PAUSE);
                false
            }
        }
    });
    let created_ms = killed_at.elapsed().as_millis();
    let (next, next_term) = common::successor(&cluster, (active, term));
    eprintln!(
        "active controller {active} killed: CreateTopics succeeded {created_ms} ms later \
         ({attempts} attempts, errors before: {errors:?}); node {next} leads term {next_term}"
    );
    // Placed before the dead broker was fenced, a replica may be on it: every partition
    // is led by a live broker, and the full ISRs come back once it restarts.
    let view = wait_metadata(&cluster, "after-kill", "leaders on the live brokers", |m| {
        m.partitions.len() == 3
            && m.partitions
                .iter()
                .all(|p| p.leader >= 0 && p.leader != active)
    });
    let live: BTreeSet<i32> = view.brokers.iter().copied().collect();
    assert!(!live.contains(&active), "{view:?}");
    let bootstrap = live_bootstrap(&cluster);
    let (acked, failed): (Acked, _) =
        produce(&bootstrap, "after-kill", None, &values("v", 60), &[]);
    assert!(failed.is_empty() && acked.len() == 60, "{failed:?}");
    assert_all_read(&bootstrap, "after-kill", &acked);
    cluster.node_mut(active).restart();
    wait_metadata(&cluster, "after-kill", "full ISRs after the restart", |m| {
        full_isrs(m, 3, 2)
    });
}

/// As Kafka's broker, a node serves its client listeners only once the controller first
/// unfenced it: restarted while the quorum is lost it cannot register, so a client's
/// Metadata gets no answer (rather than one naming no broker and no controller); once the
/// quorum is back the same call lists it.
#[test]
fn a_restarted_broker_serves_clients_only_once_unfenced() {
    let mut cluster = builder()
        .property("broker.session.timeout.ms", "3000")
        .start();
    common::wait_brokers_registered(&cluster);
    cluster.node_mut(2).stop();
    cluster.node_mut(3).stop();
    cluster.node_mut(1).kill();
    cluster.node_mut(1).restart();
    let node1 = cluster.node(1).bootstrap();
    assert!(
        metadata(&node1, "").is_none(),
        "a broker that could not register answered Metadata"
    );
    cluster.node_mut(2).cont();
    cluster.node_mut(3).cont();
    let back_at = Instant::now();
    wait_until("node 1 to answer Metadata listing itself", || {
        metadata(&node1, "").is_some_and(|m| m.brokers.contains(&1))
    });
    eprintln!(
        "quorum back: the restarted broker served clients {} ms later",
        back_at.elapsed().as_millis()
    );
}
