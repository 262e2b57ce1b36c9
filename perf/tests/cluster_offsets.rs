//! A new leader does not expose a high watermark lower than the old one's (Kafka's
//! `leaderEpochStartOffsetOpt` rule in `Partition.fetchOffsetForTimestamp`), with real
//! processes: three brokers, RF=3, follower F stopped (SIGSTOP) so the high watermark
//! cannot pass what F holds; records produced with acks=1 reach the other follower N; the
//! leader stops cleanly (SIGTERM: controlled shutdown moves the leadership to N). N's high
//! watermark is then below the start offset of its leader epoch, so a client's ListOffsets
//! latest, and a lookup by timestamp that would land past the high watermark, answer
//! OFFSET_NOT_AVAILABLE; earliest and lookups below it answer. Once F runs again and catches
//! up, latest answers the whole log. Sessions and lag times are long and gossip is off, so
//! the stopped follower stays in the ISR for the whole test: every wait is for an event.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use sluice_net::client::batch::{Record, RecordBatchBuilder};
use sluice_net::client::producer::Acks;
use sluice_net::client::{Client, ClientError, OffsetSpec};
use sluice_testkit::{sluice_path, Cluster};

const WAIT_MAX: Duration = Duration::from_secs(90);
const TOPIC: &str = "epochs";
/// Timestamps of the records every replica holds, and of those only the leader and N hold.
const COMMITTED_TS: i64 = 1_000;
const UNCOMMITTED_TS: i64 = 5_000;

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < WAIT_MAX, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// (leader, replicas, ISR) of partition 0, as `sluice topics --describe` prints them.
fn describe(bootstrap: &str) -> Option<(i32, Vec<i32>, Vec<i32>)> {
    let args = [
        "topics",
        "--bootstrap-server",
        bootstrap,
        "--describe",
        "--topic",
        TOPIC,
    ];
    let out = std::process::Command::new(sluice_path())
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text.lines().find(|l| l.contains("Partition: 0"))?;
    let field = |name: &str| line.split(name).nth(1)?.split('\t').next().map(str::trim);
    let list = |v: &str| v.split(',').filter_map(|n| n.trim().parse().ok()).collect();
    Some((
        field("Leader:")?.parse().ok()?,
        list(field("Replicas:")?),
        list(field("Isr:")?),
    ))
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    compio::runtime::Runtime::new().unwrap().block_on(f)
}

fn produce(bootstrap: &str, timestamp_ms: i64, count: usize, acks: Acks) {
    block_on(async {
        let mut client = Client::connect(bootstrap).await.unwrap();
        let mut batch = RecordBatchBuilder::new(0);
        for _ in 0..count {
            batch.push(&Record {
                key: None,
                value: Some(b"v"),
                headers: &[],
                timestamp_ms,
            });
        }
        client
            .produce(TOPIC, 0, batch.finish(), acks)
            .await
            .unwrap();
    })
}

fn list_offsets(bootstrap: &str, spec: OffsetSpec) -> Result<i64, ClientError> {
    block_on(async {
        let mut client = Client::connect(bootstrap).await?;
        client.list_offsets(TOPIC, 0, spec).await
    })
}

fn segment_len(dir: PathBuf) -> u64 {
    let file = dir
        .join(format!("{TOPIC}-0"))
        .join("00000000000000000000.log");
    std::fs::metadata(file).map_or(0, |m| m.len())
}

fn offset_not_available(r: &Result<i64, ClientError>) -> bool {
    matches!(r, Err(e) if e.kafka_error() == Some(ResponseError::OffsetNotAvailable))
}

#[test]
fn a_new_leader_answers_offset_not_available_until_its_high_watermark_caught_up() {
    let mut cluster = Cluster::builder(3)
        .property("broker.session.timeout.ms", "600000")
        .property("broker.heartbeat.interval.ms", "500")
        .property("replica.lag.time.max.ms", "600000")
        .property("sluice.gossip.enable", "false")
        .property("offsets.topic.num.partitions", "1")
        .property("num.shards", "1")
        .start();
    let servers = cluster.bootstrap_servers();
    let create = [
        "topics",
        "--bootstrap-server",
        &servers,
        "--create",
        "--topic",
        TOPIC,
        "--partitions",
        "1",
        "--replication-factor",
        "3",
    ];
    wait_until("three brokers to create the topic", || {
        std::process::Command::new(sluice_path())
            .args(create)
            .output()
            .unwrap()
            .status
            .success()
    });
    wait_until("a full ISR", || {
        describe(&servers).is_some_and(|d| d.2.len() == 3)
    });
    let (leader, _, isr) = describe(&servers).unwrap();
    // Controlled shutdown hands the leadership to the first other ISR member.
    let next = *isr.iter().find(|r| **r != leader).unwrap();
    let stopped = *isr.iter().find(|r| **r != leader && **r != next).unwrap();

    // Straight to the leader: a SIGSTOPped node accepts connections and never answers, so a
    // client bootstrapping from it would wait for ever (net's client has no timeout).
    let to_leader = cluster.node(leader).bootstrap();
    produce(&to_leader, COMMITTED_TS, 5, Acks::All);
    cluster.node_mut(stopped).stop();
    produce(&to_leader, UNCOMMITTED_TS, 3, Acks::Leader);
    let leader_dir = cluster.node(leader).data_dir();
    let next_dir = cluster.node(next).data_dir();
    wait_until("the next leader to copy every record", || {
        segment_len(next_dir.clone()) == segment_len(leader_dir.clone())
    });
    cluster.node_mut(leader).term();
    let b = cluster.node(next).bootstrap();
    wait_until("the new leader", || {
        describe(&b).is_some_and(|d| d.0 == next)
    });

    // High watermark 5, leader epoch started at 8: latest is not available.
    wait_until("OFFSET_NOT_AVAILABLE for latest", || {
        offset_not_available(&list_offsets(&b, OffsetSpec::Latest))
    });
    assert_eq!(list_offsets(&b, OffsetSpec::Earliest).unwrap(), 0);
    assert_eq!(
        list_offsets(&b, OffsetSpec::Timestamp(COMMITTED_TS)).unwrap(),
        0
    );
    let past = list_offsets(&b, OffsetSpec::Timestamp(UNCOMMITTED_TS));
    assert!(offset_not_available(&past), "{past:?}");

    // The stopped follower catches up from the new leader: the high watermark reaches the
    // start of the epoch and latest answers.
    cluster.node_mut(stopped).cont();
    wait_until("latest at 8", || {
        list_offsets(&b, OffsetSpec::Latest).is_ok_and(|o| o == 8)
    });
    assert_eq!(
        list_offsets(&b, OffsetSpec::Timestamp(UNCOMMITTED_TS)).unwrap(),
        5
    );
}
