//! What a follower (and a KIP-320 consumer) asks of a leader, against the real `sluiced`:
//! OffsetForLeaderEpoch v2–v4 answered from the partition's leader epoch cache with Kafka's
//! errors, a replica fetch through `sluice_net::client::replica`, and the
//! `replication-offset-checkpoint` the broker writes.

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::{roundtrip, Broker};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sluice_net::client::replica::{
    offset_for_leader_epoch, replica_fetch, EpochQuery, ReplicaFetchOptions, ReplicaFetchPartition,
    ReplicaIdentity, NO_PARTITION_LEADER_EPOCH,
};
use sluice_net::client::{Acks, Client, Connection, FetchOptions, Record, RecordBatchBuilder};

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    compio::runtime::Runtime::new().unwrap().block_on(f)
}

/// Creates `t` (2 partitions) and produces two batches of 3 records to partition 0.
async fn produce_two_batches(bootstrap: &str) -> Client {
    let mut client = Client::connect(bootstrap).await.unwrap();
    client.create_topic("t", 2, 1).await.unwrap();
    for round in 0..2 {
        let mut batch = RecordBatchBuilder::new(1_000);
        for i in 0..3 {
            let value = format!("value {round}-{i}");
            batch.push(&Record {
                value: Some(value.as_bytes()),
                timestamp_ms: 1_000 + i,
                ..Record::default()
            });
        }
        client
            .produce("t", 0, batch.finish(), Acks::All)
            .await
            .unwrap();
    }
    client
}

fn query(topic: &str, partition: i32, current: i32, epoch: i32) -> EpochQuery {
    EpochQuery {
        topic: topic.into(),
        partition,
        current_leader_epoch: current,
        leader_epoch: epoch,
    }
}

/// A single node's partitions are in leader epoch 0 from their first append: Kafka's
/// answers for the epochs around it, the current-epoch checks, unknown partitions, at
/// every version.
#[test]
fn offset_for_leader_epoch_answers_from_the_epoch_cache() {
    let broker = Broker::start_temp(&[]);
    let bootstrap = broker.bootstrap();
    run(async {
        drop(produce_two_batches(&bootstrap).await);
        let mut connection = Connection::connect(&bootstrap, "follower").await.unwrap();
        assert_eq!(connection.version(ApiKey::OffsetForLeaderEpoch).unwrap(), 4);
        let none = None;
        let unknown_epoch = Some(ResponseError::UnknownLeaderEpoch);
        let unknown_partition = Some(ResponseError::UnknownTopicOrPartition);
        // (question, error, epoch, end offset)
        let cases = [
            (query("t", 0, NO_PARTITION_LEADER_EPOCH, 0), none, 0, 6),
            (query("t", 0, 0, 0), none, 0, 6),
            (query("t", 0, 0, NO_PARTITION_LEADER_EPOCH), none, -1, -1),
            (query("t", 0, 0, 3), none, -1, -1),
            (query("t", 0, 1, 0), unknown_epoch, -1, -1),
            // A partition with no batch has no epoch yet.
            (query("t", 1, 0, 0), none, -1, -1),
            (query("t", 2, 0, 0), unknown_partition, -1, -1),
            (query("missing", 0, 0, 0), unknown_partition, -1, -1),
        ];
        let questions: Vec<EpochQuery> = cases.iter().map(|c| c.0.clone()).collect();
        let answers = offset_for_leader_epoch(&mut connection, 2, &questions)
            .await
            .unwrap();
        assert_eq!(answers.len(), cases.len());
        for (answer, (q, error, epoch, end_offset)) in answers.iter().zip(&cases) {
            let got = (
                &answer.topic,
                answer.partition,
                answer.error,
                answer.leader_epoch,
            );
            let expect = (&q.topic, q.partition, *error, *epoch);
            assert_eq!(got, expect, "{q:?}");
            assert_eq!(answer.end_offset, *end_offset, "{q:?}");
        }
    });
    // The same at each version over a raw connection (v2 has no replica id).
    let mut s = TcpStream::connect(broker.bootstrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    for version in 2..=4 {
        let mut p = OffsetForLeaderPartition::default();
        p.partition = 0;
        p.current_leader_epoch = 0;
        p.leader_epoch = 0;
        let mut t = OffsetForLeaderTopic::default();
        t.topic = TopicName(StrBytes::from_static_str("t"));
        t.partitions = vec![p];
        let mut req = OffsetForLeaderEpochRequest::default();
        req.replica_id = BrokerId(if version >= 3 { 2 } else { -1 });
        req.topics = vec![t];
        let resp: OffsetForLeaderEpochResponse =
            roundtrip(&mut s, ApiKey::OffsetForLeaderEpoch, version, &req);
        let answer = &resp.topics[0].partitions[0];
        let got = (answer.error_code, answer.leader_epoch, answer.end_offset);
        assert_eq!(got, (0, 0, 6), "v{version}");
    }
}

/// A replica fetch gets the leader's batches unchanged (the same bytes a consumer gets),
/// with the high watermark and log start offset; after a clean stop
/// `replication-offset-checkpoint` holds every partition's high watermark.
#[test]
fn replica_fetch_and_the_high_watermark_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), &[]);
    let bootstrap = broker.bootstrap();
    run(async {
        let mut client = produce_two_batches(&bootstrap).await;
        let topic_id = client.topic("t").await.unwrap().topic_id;
        let options = FetchOptions::default();
        let consumer = client.fetch("t", &[(0, 0)], &options).await.unwrap();
        let mut connection = Connection::connect(&bootstrap, "follower").await.unwrap();
        let who = ReplicaIdentity {
            replica_id: 2,
            broker_epoch: 1,
        };
        let partition = ReplicaFetchPartition {
            topic: "t".into(),
            topic_id,
            partition: 0,
            fetch_offset: 0,
            log_start_offset: 0,
            current_leader_epoch: 0,
            last_fetched_epoch: NO_PARTITION_LEADER_EPOCH,
            partition_max_bytes: 1 << 20,
        };
        let limits = ReplicaFetchOptions {
            max_wait_ms: 100,
            min_bytes: 1,
            max_bytes: 10 << 20,
        };
        let fetched = replica_fetch(&mut connection, who, &[partition], limits)
            .await
            .unwrap();
        assert_eq!(fetched.len(), 1);
        let f = &fetched[0];
        assert_eq!((f.topic.as_str(), f.partition, f.error), ("t", 0, None));
        assert_eq!((f.high_watermark, f.log_start_offset), (6, 0));
        assert_eq!(f.diverging_epoch, None);
        assert_eq!(f.records, consumer[0].records);
        let headers = sluice_engine::validate_batches(&f.records, u32::MAX).unwrap();
        let epochs: Vec<(i64, i32)> = headers
            .iter()
            .map(|h| (h.base_offset, h.partition_leader_epoch))
            .collect();
        assert_eq!(epochs, [(0, 0), (3, 0)]);
    });
    // Written every 5 s while running (Kafka's replica.high.watermark.checkpoint.interval.ms
    // default) and once more by a clean stop, after the logs closed.
    let (status, _) = broker.terminate();
    assert!(status.success(), "{status:?}");
    let path = dir.path().join("replication-offset-checkpoint");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "0", "{text}");
    assert_eq!(lines[1], (lines.len() - 2).to_string(), "{text}");
    let mut ours: Vec<&str> = lines[2..]
        .iter()
        .copied()
        .filter(|l| l.starts_with("t "))
        .collect();
    ours.sort_unstable();
    assert_eq!(ours, ["t 0 6", "t 1 0"], "{}", path.display());
}
