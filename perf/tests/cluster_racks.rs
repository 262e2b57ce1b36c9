//! Fetch from the closest replica (KIP-392) with a real client: three brokers in racks
//! r1, r2, r3 with Kafka's `RackAwareReplicaSelector`; a librdkafka consumer with
//! `client.rack` set to a follower's rack is sent there by the leader (its
//! `preferred_read_replica`) and reads every acknowledged record, exactly those, from that
//! follower. Which broker served the bytes is read from each broker's metrics: the follower
//! in the consumer's rack sent the records, the follower elsewhere sent nothing (followers
//! fetch from the leader; only consumers read from a follower).
//!
//! Then KIP-392's answers at the protocol level (raw Fetch requests): the leader names the
//! follower for a consumer of its rack and serves one of its own rack; the follower serves
//! up to its high watermark and answers OFFSET_OUT_OF_RANGE past its log end,
//! UNKNOWN_LEADER_EPOCH for a newer leader epoch (the topic is new: no older one to be
//! fenced by; the leader checks it too), and
//! NOT_LEADER_OR_FOLLOWER to a consumer of a version before 11.
//!
//! Every wait is bounded (`common::WAIT_MAX`); nothing depends on timing.

mod common;

use std::time::{Duration, Instant};

use common::{
    create_topic, full_isrs, live_bootstrap, metric, produce, scrape_metrics, values,
    wait_metadata, Acked, WAIT_MAX,
};
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sluice_testkit::Cluster;

const TOPIC: &str = "racks";
const RECORDS: usize = 300;

fn rack(node_id: i32) -> String {
    format!("r{node_id}")
}

/// Reads partition 0 of `TOPIC` from the beginning as a consumer in `client_rack` until
/// `end` (exclusive).
fn read_in_rack(bootstrap: &str, client_rack: &str, end: i64) -> Acked {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("client.rack", client_rack)
        .set("group.id", "racks-reader")
        .set("enable.auto.commit", "false")
        .set("socket.timeout.ms", "3000")
        .set("topic.metadata.refresh.interval.ms", "200")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(TOPIC, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).expect("assign");
    let mut seen = Acked::new();
    let start = Instant::now();
    while !seen.contains_key(&(0, end - 1)) {
        assert!(
            start.elapsed() < WAIT_MAX,
            "read {} of {end} records",
            seen.len()
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let value = m.payload().unwrap_or_default().to_vec();
                assert!(
                    seen.insert((m.partition(), m.offset()), value).is_none(),
                    "offset {} read twice",
                    m.offset()
                );
            }
            Some(Err(e)) => eprintln!("read {TOPIC}: {e}"),
            None => {}
        }
    }
    seen
}

/// Record bytes `node` sent to fetchers of `TOPIC` (0 before any).
fn bytes_out(cluster: &Cluster, node_id: i32) -> f64 {
    let text = scrape_metrics(cluster.node(node_id)).expect("metrics answer");
    let series = format!("sluice_topic_bytes_out_total{{topic=\"{TOPIC}\"}}");
    metric(&text, &series).unwrap_or(0.0)
}

#[test]
fn a_consumer_reads_from_the_follower_in_its_rack() {
    let mut builder = Cluster::builder(3)
        .property("broker.heartbeat.interval.ms", "500")
        .property("offsets.topic.num.partitions", "1")
        .property("num.shards", "1")
        .property("metrics.listener", "127.0.0.1:0")
        .property(
            "replica.selector.class",
            "org.apache.kafka.common.replica.RackAwareReplicaSelector",
        );
    for id in 1..=3 {
        builder = builder.node_property(id, "broker.rack", &rack(id));
    }
    let cluster = builder.start();
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(3));
    create_topic(&cluster, &topic);
    let view = wait_metadata(&cluster, TOPIC, "a full ISR", |m| full_isrs(m, 1, 3));
    let leader = view.partitions[0].leader;
    let followers: Vec<i32> = (1..=3).filter(|id| *id != leader).collect();
    let (near, far) = (followers[0], followers[1]);

    let bootstrap = live_bootstrap(&cluster);
    let (acked, failed) = produce(&bootstrap, TOPIC, Some(0), &values("rack", RECORDS), &[]);
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(acked.len(), RECORDS);
    let end = acked.keys().map(|(_, o)| o + 1).max().unwrap();
    let (near_before, far_before) = (bytes_out(&cluster, near), bytes_out(&cluster, far));

    let read = read_in_rack(&bootstrap, &rack(near), end);
    assert_eq!(
        read, acked,
        "the records read are exactly those acknowledged"
    );
    let value_bytes: usize = acked.values().map(Vec::len).sum();
    let (near_sent, far_sent) = (
        bytes_out(&cluster, near) - near_before,
        bytes_out(&cluster, far) - far_before,
    );
    eprintln!(
        "leader {leader}; consumer in {}: {near_sent} bytes from broker {near}, {far_sent} from broker {far}",
        rack(near)
    );
    assert!(
        near_sent >= value_bytes as f64,
        "the follower in the consumer's rack served the records: {near_sent} bytes < {value_bytes}"
    );
    assert_eq!(far_sent, 0.0, "the follower in another rack served nobody");

    compio::runtime::Runtime::new()
        .unwrap()
        .block_on(check_answers(&cluster, (leader, near), end));
}

/// One partition's answer to a raw consumer Fetch: (error, high watermark, preferred read
/// replica, record bytes).
type Answer = (i16, i64, i32, usize);

async fn raw_fetch(
    address: &str,
    version: i16,
    (rack_id, leader_epoch, offset): (&str, i32, i64),
) -> Answer {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{FetchRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let mut connection = sluice_net::client::connection::Connection::connect(address, "racks")
        .await
        .unwrap();
    let request = FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_rack_id(StrBytes::from_string(rack_id.to_string()))
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_current_leader_epoch(leader_epoch)
                .with_partition_max_bytes(1 << 20)])]);
    let response = connection.call_version(&request, version).await.unwrap();
    let p = &response.responses[0].partitions[0];
    let bytes = p.records.as_ref().map_or(0, |r| r.len());
    (
        p.error_code,
        p.high_watermark,
        p.preferred_read_replica.0,
        bytes,
    )
}

async fn check_answers(cluster: &Cluster, (leader, near): (i32, i32), end: i64) {
    use kafka_protocol::error::ResponseError::*;
    let mut client = sluice_net::client::Client::connect(&cluster.bootstrap_servers())
        .await
        .unwrap();
    let described = client.describe_topic_partitions(&[TOPIC]).await.unwrap();
    let epoch = described[0].partitions[0].leader_epoch;
    let (to_leader, to_near) = (
        cluster.node(leader).bootstrap(),
        cluster.node(near).bootstrap(),
    );
    let near_rack = rack(near);
    // v12 (topic names, flexible): the leader sends a consumer in the follower's rack there.
    let sent = raw_fetch(&to_leader, 12, (&near_rack, epoch, 0)).await;
    assert_eq!(sent, (0, end, near, 0), "the leader names the follower");
    let served = raw_fetch(&to_leader, 12, (&rack(leader), epoch, 0)).await;
    assert!(
        served.0 == 0 && served.2 == -1 && served.3 > 0,
        "{served:?}"
    );
    let read = raw_fetch(&to_near, 12, (&near_rack, epoch, 0)).await;
    assert!(
        read.0 == 0 && read.1 == end && read.3 > 0,
        "the follower serves: {read:?}"
    );
    let at_end = raw_fetch(&to_near, 12, (&near_rack, epoch, end)).await;
    assert_eq!(at_end, (0, end, -1, 0), "nothing past its high watermark");
    let errors = [
        (&to_near, (12, epoch, end + 1000), OffsetOutOfRange),
        (&to_near, (12, epoch + 1, 0), UnknownLeaderEpoch),
        (&to_near, (10, epoch, 0), NotLeaderOrFollower),
        (&to_leader, (12, epoch + 1, 0), UnknownLeaderEpoch),
        (&to_leader, (10, epoch + 1, 0), UnknownLeaderEpoch),
    ];
    for (to, (version, asked_epoch, offset), error) in errors {
        let answer = raw_fetch(to, version, (&near_rack, asked_epoch, offset)).await;
        assert_eq!(
            answer.0,
            error.code(),
            "{to} v{version} epoch {asked_epoch} offset {offset}: {answer:?}"
        );
    }
}
