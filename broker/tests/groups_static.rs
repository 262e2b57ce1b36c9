//! Static membership (KIP-345) with librdkafka against the real `sluiced`, and group
//! deletion and OffsetDelete through `sluice-net`'s client:
//! - a member with `group.instance.id` that closes and comes back within
//!   `session.timeout.ms` gets its old partitions, and the other member sees no rebalance;
//! - DeleteGroups answers `NON_EMPTY_GROUP` for a group with members and deletes an
//!   empty one;
//! - OffsetDelete forgets a partition's committed offset.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Broker;
use kafka_protocol::error::ResponseError;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::{Offset, TopicPartitionList};
use sluice_net::client::{Client, CommittedOffset};

const WAIT: Duration = Duration::from_secs(60);

/// Counts the rebalances a member goes through.
#[derive(Clone, Default)]
struct Rebalances(Arc<AtomicUsize>);

impl ClientContext for Rebalances {}

impl ConsumerContext for Rebalances {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, _rebalance: &Rebalance<'_>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

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

fn member(bootstrap: &str, group: &str, instance: Option<&str>) -> BaseConsumer<Rebalances> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "500")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    if let Some(instance) = instance {
        config.set("group.instance.id", instance);
    }
    config
        .create_with_context(Rebalances::default())
        .expect("consumer")
}

fn assigned(c: &BaseConsumer<Rebalances>) -> BTreeSet<i32> {
    c.assignment()
        .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// Polls every member until `done` holds, panicking after [`WAIT`].
fn poll_until(members: &[&BaseConsumer<Rebalances>], what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        for m in members {
            let _ = m.poll(Duration::from_millis(50));
        }
    }
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    compio::runtime::Runtime::new()
        .expect("compio runtime")
        .block_on(future)
}

#[test]
fn a_static_member_restarting_within_its_session_keeps_its_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &["group.initial.rebalance.delay.ms=0"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "static", 4);

    let a = member(&bootstrap, "static-g", Some("instance-a"));
    let b = member(&bootstrap, "static-g", Some("instance-b"));
    a.subscribe(&["static"]).unwrap();
    b.subscribe(&["static"]).unwrap();
    poll_until(&[&a, &b], "two members with two partitions each", || {
        assigned(&a).len() == 2 && assigned(&b).len() == 2
    });
    let (a_before, b_before) = (assigned(&a), assigned(&b));
    let b_rebalances = b.context().0.load(Ordering::SeqCst);

    // A static member sends no LeaveGroup on close: the coordinator keeps its slot.
    drop(a);
    let a = member(&bootstrap, "static-g", Some("instance-a"));
    a.subscribe(&["static"]).unwrap();
    poll_until(&[&a, &b], "the restarted member's assignment", || {
        !assigned(&a).is_empty()
    });
    assert_eq!(
        assigned(&a),
        a_before,
        "the static member got its old partitions"
    );
    // Give a (wrong) rebalance time to show up at the other member.
    let settle = Instant::now() + Duration::from_secs(3);
    while Instant::now() < settle {
        let _ = a.poll(Duration::from_millis(50));
        let _ = b.poll(Duration::from_millis(50));
    }
    assert_eq!(assigned(&b), b_before);
    assert_eq!(
        b.context().0.load(Ordering::SeqCst),
        b_rebalances,
        "the other member went through no rebalance"
    );
}

#[test]
fn delete_groups_and_offset_delete() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &["group.initial.rebalance.delay.ms=0"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "doomed", 2);

    let c = member(&bootstrap, "doomed-g", None);
    c.subscribe(&["doomed"]).unwrap();
    poll_until(&[&c], "an assignment", || assigned(&c).len() == 2);
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("doomed", 0, Offset::Offset(0))
        .unwrap();
    offsets
        .add_partition_offset("doomed", 1, Offset::Offset(0))
        .unwrap();
    c.commit(&offsets, CommitMode::Sync).expect("commit");

    let error = block_on(async {
        let mut client = Client::connect(&bootstrap).await.unwrap();
        client.delete_group("doomed-g").await.unwrap_err()
    });
    assert_eq!(
        error.kafka_error(),
        Some(ResponseError::NonEmptyGroup),
        "{error}"
    );

    c.unsubscribe();
    drop(c);
    let committed =
        |o: &[CommittedOffset], p: i32| o.iter().find(|c| c.partition == p).unwrap().offset;
    block_on(async {
        let mut client = Client::connect(&bootstrap).await.unwrap();
        let wanted = [("doomed", vec![0, 1])];
        let before = client
            .offset_fetch("doomed-g", Some(&wanted))
            .await
            .unwrap();
        assert_eq!((committed(&before, 0), committed(&before, 1)), (0, 0));
        client
            .offset_delete("doomed-g", "doomed", &[0])
            .await
            .unwrap();
        let after = client
            .offset_fetch("doomed-g", Some(&wanted))
            .await
            .unwrap();
        assert_eq!((committed(&after, 0), committed(&after, 1)), (-1, 0));

        client
            .delete_group("doomed-g")
            .await
            .expect("an empty group is deleted");
        let gone = client.offset_fetch("doomed-g", None).await.unwrap();
        assert!(gone.iter().all(|c| c.offset < 0), "{gone:?}");
        let listed = client.list_groups().await.unwrap();
        assert!(
            listed.iter().all(|g| g.group_id != "doomed-g"),
            "{listed:?}"
        );
        let again = client.delete_group("doomed-g").await.unwrap_err();
        assert_eq!(
            again.kafka_error(),
            Some(ResponseError::GroupIdNotFound),
            "{again}"
        );
    });
}
