//! Separate roles: 3 controller-only nodes (`process.roles=controller`, the metadata quorum,
//! no client listener) and 2 broker-only nodes (`process.roles=broker`, observers that
//! fetch the committed metadata from the voters). The cluster forms, creates a replicated
//! topic, and a real client (librdkafka) produces with acks=all, reads back and commits in
//! a group; a broker-only node restarts and rejoins the ISR; the active controller dies
//! and the brokers still take decisions (CreateTopics) from its successor.

mod common;

use std::time::Instant;

use common::{
    assert_all_read, create_topic, full_isrs, live_bootstrap, produce, split_roles, values,
    wait_metadata,
};
use rdkafka::admin::{NewTopic, TopicReplication};
use sluice_testkit::Cluster;

#[test]
fn controller_only_and_broker_only_nodes_form_a_cluster() {
    let mut cluster = split_roles(3, 2)
        .property("offsets.topic.num.partitions", "2")
        .property("offsets.topic.replication.factor", "2")
        .property("group.initial.rebalance.delay.ms", "0")
        .start();
    let topic =
        NewTopic::new("split", 2, TopicReplication::Fixed(2)).set("min.insync.replicas", "2");
    create_topic(&cluster, &topic);
    let view = wait_metadata(&cluster, "split", "full ISRs on the brokers", |m| {
        full_isrs(m, 2, 2)
    });
    assert_eq!(
        view.brokers,
        vec![4, 5],
        "only broker nodes serve: {view:?}"
    );
    for p in &view.partitions {
        assert_eq!(p.replicas, vec![4, 5], "{view:?}");
    }
    let bootstrap = live_bootstrap(&cluster);
    let (mut acked, failed) = produce(&bootstrap, "split", None, &values("a", 200), &[]);
    assert!(failed.is_empty() && acked.len() == 200, "{failed:?}");
    assert_all_read(&bootstrap, "split", &acked);
    commit_in_a_group(&bootstrap);
    check_observers(&cluster);

    // A broker-only node restarts and catches up.
    cluster.node_mut(5).kill();
    cluster.node_mut(5).restart();
    let (more, failed) = produce(
        &live_bootstrap(&cluster),
        "split",
        None,
        &values("b", 200),
        &[],
    );
    assert!(failed.is_empty() && more.len() == 200, "{failed:?}");
    acked.extend(more);
    wait_metadata(&cluster, "split", "broker 5 back in every ISR", |m| {
        full_isrs(m, 2, 2)
    });

    // The active controller dies: the other two voters elect a leader and decide.
    let (active, term) = common::active_controller(&cluster);
    cluster.node_mut(active).kill();
    let killed_at = Instant::now();
    create_topic(
        &cluster,
        &NewTopic::new("after-controller", 1, TopicReplication::Fixed(2)),
    );
    let created_ms = killed_at.elapsed().as_millis();
    let (next, next_term) = common::successor(&cluster, (active, term));
    eprintln!(
        "controller-only node {active} (term {term}) killed: CreateTopics on a broker-only \
         node succeeded {created_ms} ms later; node {next} leads term {next_term}"
    );
    wait_metadata(&cluster, "after-controller", "its replicas in sync", |m| {
        full_isrs(m, 1, 2)
    });
    let bootstrap = live_bootstrap(&cluster);
    assert_all_read(&bootstrap, "split", &acked);
    let (last, failed) = produce(&bootstrap, "after-controller", None, &values("c", 50), &[]);
    assert!(failed.is_empty() && last.len() == 50, "{failed:?}");
    assert_all_read(&bootstrap, "after-controller", &last);
}

/// DescribeQuorum (through a broker-only node, which forwards it to the quorum's leader):
/// the three controllers are its voters, the two broker-only nodes its observers, each with
/// the log end offset and fetch time of its last heartbeat.
fn check_observers(cluster: &Cluster) {
    let bootstrap = live_bootstrap(cluster);
    let describe = || {
        compio::runtime::Runtime::new().unwrap().block_on(async {
            let mut client = sluice_net::client::Client::connect(&bootstrap).await.ok()?;
            client.describe_quorum().await.ok()
        })
    };
    common::wait_until("observers with log end offsets", || {
        describe().is_some_and(|q| {
            q.observers.len() == 2
                && q.observers
                    .iter()
                    .all(|o| o.log_end_offset > 0 && o.last_fetch_timestamp > 0)
        })
    });
    let q = describe().unwrap();
    let mut voters: Vec<i32> = q.voters.iter().map(|v| v.id).collect();
    voters.sort_unstable();
    let mut observers: Vec<i32> = q.observers.iter().map(|o| o.id).collect();
    observers.sort_unstable();
    assert_eq!((voters, observers), (vec![1, 2, 3], vec![4, 5]), "{q:?}");
    assert!(q.voters.iter().any(|v| v.id == q.leader_id), "{q:?}");
}

/// A group member commits on the coordinator (a broker-only node leading the group's
/// `__consumer_offsets` partition, RF=2) and a new member reads the commit back.
fn commit_in_a_group(bootstrap: &str) {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::{Offset, TopicPartitionList};

    let consumer = |bootstrap: &str| -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "split-readers")
            .set("enable.auto.commit", "false")
            .set("socket.timeout.ms", "3000")
            .create()
            .expect("consumer")
    };
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("split", 0, Offset::Offset(42))
        .unwrap();
    let first = consumer(bootstrap);
    common::wait_until("a commit to the coordinator", || {
        first.commit(&offsets, CommitMode::Sync).is_ok()
    });
    drop(first);
    let mut asked = TopicPartitionList::new();
    asked.add_partition("split", 0);
    let read = consumer(bootstrap)
        .committed_offsets(asked, common::CALL_TIMEOUT)
        .expect("OffsetFetch");
    assert_eq!(
        read.find_partition("split", 0).map(|e| e.offset()),
        Some(Offset::Offset(42))
    );
}
