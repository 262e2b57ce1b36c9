//! Offset expiry (`offsets.retention.minutes`, Kafka's rules): a standalone commit (a group
//! that never used group management) expires once older than the retention; the group,
//! left with nothing, disappears from ListGroups; both stay gone after a restart, because
//! the expiry wrote tombstones to `__consumer_offsets`. A group committing again keeps its
//! newer offset. (Needs a minute: the retention's unit is minutes, as in Kafka.)

mod common;

use std::time::{Duration, Instant};

use common::Broker;
use sluice_net::client::{Client, CommittedOffset, Committer};

/// Longest wait for the expiry after the retention has passed.
const EXPIRY_WAIT: Duration = Duration::from_secs(60);

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    compio::runtime::Runtime::new()
        .expect("compio runtime")
        .block_on(future)
}

fn commit(bootstrap: &str, group: &str, offset: i64) {
    block_on(async {
        let mut client = Client::connect(bootstrap).await.unwrap();
        let offsets = [CommittedOffset {
            topic: "t".into(),
            partition: 0,
            offset,
        }];
        client
            .offset_commit(group, &Committer::ADMIN, &offsets)
            .await
            .unwrap();
    })
}

/// (committed offset of t-0 or -1, whether ListGroups lists the group).
fn lookup(bootstrap: &str, group: &str) -> (i64, bool) {
    block_on(async {
        let mut client = Client::connect(bootstrap).await.unwrap();
        let committed = client.offset_fetch(group, None).await.unwrap();
        let offset = committed
            .iter()
            .find(|c| c.topic == "t" && c.partition == 0)
            .map_or(-1, |c| c.offset);
        let listed = client.list_groups().await.unwrap();
        (offset, listed.iter().any(|g| g.group_id == group))
    })
}

#[test]
fn standalone_commits_expire_and_stay_expired_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let settings = [
        "offsets.retention.minutes=1",
        "offsets.retention.check.interval.ms=500",
    ];
    let mut broker = Broker::start(dir.path(), &settings);
    let b = broker.bootstrap();
    block_on(async {
        let mut client = Client::connect(&b).await.unwrap();
        client.create_topic("t", 1, 1).await.unwrap();
    });
    let committed_at = Instant::now();
    commit(&b, "lapsed", 3);
    commit(&b, "renewed", 4);
    assert_eq!(lookup(&b, "lapsed"), (3, true));

    // Half-way through the retention, "renewed" commits again: its clock restarts.
    std::thread::sleep(Duration::from_secs(35));
    assert_eq!(
        lookup(&b, "lapsed"),
        (3, true),
        "not expired before its time"
    );
    commit(&b, "renewed", 5);

    let deadline = committed_at + Duration::from_secs(60) + EXPIRY_WAIT;
    while lookup(&b, "lapsed") != (-1, false) {
        assert!(
            Instant::now() < deadline,
            "the lapsed commit never expired: {:?}",
            lookup(&b, "lapsed")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        committed_at.elapsed() >= Duration::from_secs(60),
        "expired after {:?}, before the one-minute retention",
        committed_at.elapsed()
    );
    assert_eq!(lookup(&b, "renewed"), (5, true), "a fresh commit stays");
    assert!(broker.log_contains("removed expired offsets and groups"));

    let (status, _) = broker.terminate();
    assert!(status.success(), "{status}");
    let broker = Broker::start(dir.path(), &settings);
    let b = broker.bootstrap();
    assert_eq!(lookup(&b, "lapsed"), (-1, false), "tombstones replayed");
    assert_eq!(lookup(&b, "renewed"), (5, true));
}
