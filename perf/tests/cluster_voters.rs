//! A controller's disk lost, with real processes (testkit's `Cluster`: three combined
//! broker+controller `sluiced`): node 3's dir is wiped and formatted again (same node id, a
//! new `directory.id`). It is refused by the quorum (INVALID_VOTER_KEY) and stays out of
//! every ISR until the operator runs `sluice metadata-quorum remove-controller` and
//! `add-controller`; then it catches up, rejoins the ISR and counts toward the quorum again.
//! Every wait is bounded and waits for an event, not for time to pass.

use std::time::{Duration, Instant};

use sluice_testkit::{sluice_path, Cluster};

const WAIT_MAX: Duration = Duration::from_secs(90);
const WIPED: i32 = 3;

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < WAIT_MAX, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sluice(args: &[&str]) -> std::process::Output {
    std::process::Command::new(sluice_path())
        .args(args)
        .output()
        .unwrap()
}

fn sluice_ok(args: &[&str]) -> String {
    let out = sluice(args);
    assert!(
        out.status.success(),
        "sluice {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The ISR of partition 0 of `topic`, as `sluice topics --describe` prints it.
fn isr(bootstrap: &str, topic: &str) -> Option<Vec<i32>> {
    let out = sluice(&[
        "topics",
        "--bootstrap-server",
        bootstrap,
        "--describe",
        "--topic",
        topic,
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text.lines().find(|l| l.contains("Partition: 0"))?;
    let isr = line
        .split("Isr:")
        .nth(1)?
        .split('\t')
        .next()?
        .trim()
        .to_string();
    Some(
        isr.split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect(),
    )
}

fn create(bootstrap: &str, topic: &str, rf: &str) -> bool {
    let args = [
        "topics",
        "--bootstrap-server",
        bootstrap,
        "--create",
        "--topic",
        topic,
        "--partitions",
        "1",
        "--replication-factor",
        rf,
    ];
    sluice(&args).status.success()
}

fn remove_controller(bootstrap: &str, id: i32, dir_id: &str) -> std::process::Output {
    let id = id.to_string();
    let args = [
        "metadata-quorum",
        "--bootstrap-server",
        bootstrap,
        "remove-controller",
        "--controller-id",
        &id,
        "--controller-directory-id",
        dir_id,
    ];
    sluice(&args)
}

/// `directory.id` of a formatted dir's meta.properties.
fn directory_id(dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string(dir.join("meta.properties")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("directory.id="))
        .expect("a directory.id")
        .trim()
        .to_string()
}

/// A field of `sluice metadata-quorum describe --status`, asked of `bootstrap`.
fn quorum_status(bootstrap: &str, field: &str) -> Option<String> {
    let out = sluice(&[
        "metadata-quorum",
        "--bootstrap-server",
        bootstrap,
        "describe",
        "--status",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.trim().strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// Whether a `CurrentVoters` / `CurrentObservers` list names node `id`.
fn lists(nodes: &str, id: i32) -> bool {
    nodes.contains(&format!("\"id\": {id},"))
}

fn recorded(cluster: &Cluster, voter: i32) -> bool {
    cluster.nodes().iter().any(|n| {
        n.log().iter().any(|l| {
            l.split("metadata directory ids recorded for voter(s) ")
                .nth(1)
                .is_some_and(|ids| ids.split_whitespace().any(|id| id == voter.to_string()))
        })
    })
}

#[test]
fn a_wiped_controller_is_refused_until_the_operator_replaces_it() {
    let mut cluster = Cluster::builder(3)
        .property("broker.session.timeout.ms", "3000")
        .property("broker.heartbeat.interval.ms", "500")
        .property("replica.lag.time.max.ms", "3000")
        .property("offsets.topic.num.partitions", "1")
        .property("num.shards", "1")
        .start();
    let b1 = cluster.node(1).bootstrap();
    wait_until("three brokers to create the topic", || {
        create(&b1, "kept", "3")
    });
    wait_until("a full ISR", || {
        isr(&b1, "kept").is_some_and(|i| i.len() == 3)
    });
    wait_until("node 3's directory id on record", || {
        recorded(&cluster, WIPED)
    });

    // Wipe node 3's disk and format it again: same node id, a new directory id.
    let dir = cluster.node(WIPED).data_dir();
    let old_dir_id = directory_id(&dir);
    cluster.node_mut(WIPED).kill();
    std::fs::remove_dir_all(&dir).unwrap();
    let config = cluster.node(WIPED).config_path();
    let config = config.to_str().unwrap().to_string();
    sluice_ok(&[
        "storage",
        "format",
        "-t",
        &cluster.cluster_id,
        "-c",
        &config,
    ]);
    let new_dir_id = directory_id(&dir);
    assert_ne!(old_dir_id, new_dir_id);
    cluster.node_mut(WIPED).restart();

    eprintln!("node 3's directory id: {old_dir_id} before the wipe, {new_dir_id} after");

    // The quorum refuses it; the others keep deciding. Its broker leaves the ISR (fenced,
    // or registered again with another log dir) and stays out: its metadata cannot
    // advance, so it is never unfenced.
    wait_until("node 3 refused as a voter", || {
        cluster.node(WIPED).log_contains("INVALID_VOTER_KEY")
    });
    wait_until("node 3 out of the ISR", || {
        isr(&b1, "kept").is_some_and(|i| !i.contains(&WIPED))
    });
    assert!(create(&b1, "while-refused", "2"));
    let kept = isr(&b1, "kept").unwrap();
    assert!(
        !kept.contains(&WIPED),
        "the wiped node is in the ISR: {kept:?}"
    );

    // The operator replaces the voter (Kafka's commands, Kafka's flags).
    let wrong = remove_controller(&b1, WIPED, &new_dir_id);
    assert!(!wrong.status.success());
    let why = String::from_utf8_lossy(&wrong.stderr);
    assert!(why.contains("VoterNotFound, Kafka error code 127"), "{why}");
    let removed = remove_controller(&b1, WIPED, &old_dir_id);
    let removed = String::from_utf8_lossy(&removed.stdout);
    assert!(removed.contains("Removed KRaft controller 3"), "{removed}");
    let added = sluice_ok(&[
        "metadata-quorum",
        "--bootstrap-server",
        &b1,
        "--command-config",
        &config,
        "add-controller",
    ]);
    assert!(
        added.contains(&format!(
            "Added controller 3 with directory id {new_dir_id}"
        )),
        "{added}"
    );

    // It caught up: its replica rejoins the ISR through the leader's catch-up, and it
    // counts toward the quorum (node 1 down: nodes 2 and 3 decide).
    wait_until("node 3 back in the ISR", || {
        isr(&b1, "kept").is_some_and(|i| i.contains(&WIPED))
    });
    cluster.node_mut(1).kill();
    let b2 = cluster.node(2).bootstrap();
    wait_until("nodes 2 and 3 to create a topic", || {
        create(&b2, "after-replace", "2")
    });
}

/// Kafka's removed voter goes on as an observer. Removing the quorum's *active* leader (a
/// combined node, left running) hands the quorum's leadership to a voter, and the node's broker
/// role keeps receiving the metadata log: it learns of a topic created afterwards, and its
/// replicas of it join the ISR (so its broker heartbeats reach the new controller).
#[test]
fn the_removed_quorum_leader_hands_over_and_goes_on_as_an_observer() {
    let cluster = Cluster::builder(3)
        .property("offsets.topic.num.partitions", "1")
        .property("num.shards", "1")
        .start();
    let b1 = cluster.node(1).bootstrap();
    wait_until("three brokers to create the topic", || {
        create(&b1, "kept", "3")
    });
    let mut leader = None;
    wait_until("a quorum leader with its directory id on record", || {
        leader = quorum_status(&b1, "LeaderId").and_then(|l| l.parse::<i32>().ok());
        leader.is_some_and(|l| recorded(&cluster, l))
    });
    let leader = leader.unwrap();
    let removed = remove_controller(&b1, leader, &directory_id(&cluster.node(leader).data_dir()));
    let text = String::from_utf8_lossy(&removed.stdout);
    assert!(
        text.contains(&format!("Removed KRaft controller {leader}")),
        "{text} {}",
        String::from_utf8_lossy(&removed.stderr)
    );

    // Another node leads the quorum; the removed one is an observer, not a voter.
    let other = cluster.node(leader % 3 + 1).bootstrap();
    wait_until("a voter to lead the quorum", || {
        quorum_status(&other, "LeaderId")
            .and_then(|l| l.parse::<i32>().ok())
            .is_some_and(|l| l != leader && l > 0)
    });
    let voters = quorum_status(&other, "CurrentVoters").unwrap();
    assert!(!lists(&voters, leader), "{voters}");
    wait_until("the removed node listed as an observer", || {
        quorum_status(&other, "CurrentObservers").is_some_and(|o| lists(&o, leader))
    });

    // Its broker role follows the log: a topic created through another node reaches it,
    // and its replica joins that topic's ISR.
    wait_until("a topic created after the removal", || {
        create(&other, "after", "3")
    });
    let removed_node = cluster.node(leader).bootstrap();
    wait_until(
        "the removed node to see the new topic with a full ISR",
        || isr(&removed_node, "after").is_some_and(|i| i.len() == 3),
    );
    wait_until("the first topic's ISR full", || {
        isr(&other, "kept").is_some_and(|i| i.len() == 3)
    });
    assert!(cluster
        .node(leader)
        .log_contains("the quorum has a new leader; this node observes"));
}
