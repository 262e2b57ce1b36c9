//! Partition reassignment (KIP-455) on a real 3-node cluster, driven by the real
//! `sluice reassign-partitions` and checked by the `verify` checker running throughout:
//! - a follower moves ({2,1} → {2,3}) and the leader moves off ({1,2} → {2,3}) while an
//!   idempotent acks=all producer writes: 0 lost, 0 duplicated, the removed replica's copy
//!   deleted, the two final replicas byte-identical;
//! - a throttled leader move under that load: held by `--throttle 1` while acks=all goes on,
//!   then released;
//! - a throttled move (`--throttle`): the broker and topic throttle configs are set, the copy
//!   of 4 MiB is still in progress while the throttle holds it (at most one 1 MiB fetch per
//!   11-second rate window, whatever the rate: at least 30 s), completes once `--additional
//!   --throttle` raises it, and `--verify` then removes every throttle config;
//! - a held move whose active controller, or whose old leader, is SIGKILLed and restarted
//!   completes once the throttle is lifted, nothing written before missing;
//! - the CLI round trip: `--generate` proposes, `--execute` starts it, `--verify` reports
//!   until complete, `--list` and `--cancel`, and bad input refused with Kafka's errors on
//!   the wire (AlterPartitionReassignments through net's client).
//!
//! Every wait is bounded (`common::WAIT_MAX`); no verdict depends on how fast anything is:
//! "still in progress" is asserted only while the throttle holds a copy for at least 30 s,
//! a bound the throttle sets, not the machine.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{create_topic, full_isrs, live_bootstrap, produce, wait_metadata, wait_until};
use kafka_protocol::error::ResponseError;
use rdkafka::admin::{NewTopic, TopicReplication};
use sluice_net::client::producer::Acks;
use sluice_perf::verify::{self, Options};
use sluice_testkit::{sluice_path, Cluster};

fn cluster() -> Cluster {
    Cluster::builder(3)
        .property("broker.heartbeat.interval.ms", "500")
        .property("offsets.topic.num.partitions", "1")
        .property("num.shards", "1")
        .start()
}

fn sluice(args: &[&str]) -> Output {
    Command::new(sluice_path())
        .args(args)
        .output()
        .expect("running sluice")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `sluice reassign-partitions --bootstrap-server B ARGS…`, which must succeed.
fn reassign_ok(bootstrap: &str, args: &[&str]) -> String {
    let mut all = vec!["reassign-partitions", "--bootstrap-server", bootstrap];
    all.extend(args);
    let out = sluice(&all);
    assert!(
        out.status.success(),
        "{all:?}:\n{}\n{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

fn write_plan(dir: &Path, topic: &str, replicas: &[i32]) -> String {
    let ids: Vec<String> = replicas.iter().map(i32::to_string).collect();
    let path = dir.join(format!("{topic}.json"));
    std::fs::write(
        &path,
        format!(
            r#"{{"version":1,"partitions":[{{"topic":"{topic}","partition":0,"replicas":[{}]}}]}}"#,
            ids.join(",")
        ),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

/// `--verify` until it says the partition's reassignment is complete.
fn verify_until_complete(bootstrap: &str, plan: &str, partition: &str) -> String {
    let mut last = String::new();
    wait_until(&format!("{partition} to be reassigned"), || {
        last = reassign_ok(bootstrap, &["--verify", "--reassignment-json-file", plan]);
        last.contains(&format!(
            "Reassignment of partition {partition} is completed."
        ))
    });
    last
}

/// Moves `topic`-0 from `from` to `to` while the checker's idempotent acks=all producer
/// writes, then checks the verdict and the replicas' bytes; the final leader. `throttled`:
/// 4 MiB are written first and the move starts with `--throttle 1`, which holds the copy
/// (at most one 1 MiB fetch per 11-second window) while acks=all goes on (the ISR is never
/// throttled); then `--additional --throttle` lifts it.
fn move_under_load(topic: &str, from: &[i32], to: &[i32], throttled: bool) -> i32 {
    let cluster = cluster();
    let plan_dir = tempfile::tempdir().unwrap();
    let assignment = [from];
    let created = NewTopic::new(topic, 1, TopicReplication::Variable(&assignment))
        .set("min.insync.replicas", "2");
    create_topic(&cluster, &created);
    wait_metadata(&cluster, topic, "a full ISR", |m| full_isrs(m, 1, 2));
    if throttled {
        let (acked, failed) = produce(&live_bootstrap(&cluster), topic, Some(0), &mib(4), &[]);
        assert!(failed.is_empty() && acked.len() == 4096, "{failed:?}");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicU64::new(0));
    let mut options = Options::new(&cluster.bootstrap_servers(), topic);
    options.duration = Duration::from_secs(180);
    options.producers = 2;
    options.acks = Acks::All;
    options.idempotent = true;
    options.throughput = Some(400.0);
    options.stop = Some(stop.clone());
    options.acknowledged = Some(acks.clone());
    let run = std::thread::spawn(move || verify::run_blocking(&options));
    wait_until("300 acknowledgements", || {
        acks.load(Ordering::Relaxed) >= 300
    });

    let bootstrap = live_bootstrap(&cluster);
    let plan = write_plan(plan_dir.path(), topic, to);
    let mut execute = vec!["--execute", "--reassignment-json-file", &plan];
    if throttled {
        execute.extend(["--throttle", "1"]);
    }
    let started = reassign_ok(&bootstrap, &execute);
    assert!(
        started.contains(&format!(
            "Successfully started partition reassignment for {topic}-0"
        )),
        "{started}"
    );
    let from_ids: Vec<String> = from.iter().map(i32::to_string).collect();
    assert!(
        started.contains(&format!("\"replicas\":[{}]", from_ids.join(","))),
        "the rollback JSON names the current replicas: {started}"
    );
    if throttled {
        held_while_acks_go_on(&cluster, (topic, to, from), &plan, &acks);
        let raised = [
            "--execute",
            "--reassignment-json-file",
            &plan,
            "--additional",
            "--throttle",
            "1000000000",
        ];
        reassign_ok(&bootstrap, &raised);
    }
    let verified = verify_until_complete(&bootstrap, &plan, &format!("{topic}-0"));
    eprintln!("{verified}");
    let done = wait_metadata(&cluster, topic, "the target replicas, all in sync", |m| {
        m.partitions.len() == 1 && m.partitions[0].replicas == to && m.partitions[0].isr.len() == 2
    });
    let leader = done.partitions[0].leader;
    assert!(to.contains(&leader), "{done:?}");
    let before = acks.load(Ordering::Relaxed);
    wait_until("300 acknowledgements after the move", || {
        acks.load(Ordering::Relaxed) >= before + 300
    });
    stop.store(true, Ordering::Relaxed);
    let report = run.join().unwrap().expect("verify ran");
    eprintln!("{}", report.verdict_line());
    assert_eq!(report.verdict.lost, 0, "{}", report.verdict_line());
    assert_eq!(report.verdict.duplicated, 0, "{}", report.verdict_line());
    assert!(report.verdict.is_ok(), "{}", report.verdict_line());

    let removed: Vec<i32> = from.iter().copied().filter(|r| !to.contains(r)).collect();
    let index = |node: i32| (node - 1) as usize;
    wait_until("the removed replica's copy to be deleted", || {
        let bytes = cluster.replica_bytes(topic, 0);
        removed.iter().all(|r| bytes[index(*r)].is_empty())
            && !cluster
                .node(removed[0])
                .data_dir()
                .join(format!("{topic}-0"))
                .exists()
    });
    let mut last = Vec::new();
    wait_until("the final replicas to hold the same bytes", || {
        let bytes = cluster.replica_bytes(topic, 0);
        last = to.iter().map(|r| bytes[index(*r)].len()).collect();
        !bytes[index(to[0])].is_empty() && bytes[index(to[0])] == bytes[index(to[1])]
    });
    eprintln!(
        "{topic}: {} bytes on each of {to:?}, leader {leader}",
        last[0]
    );
    leader
}

/// `count` MiB as values of about 1 KiB.
fn mib(count: usize) -> Vec<String> {
    (0..count * 1024)
        .map(|i| format!("{i:06}-{}", "x".repeat(1024)))
        .collect()
}

/// While the throttle holds the copy: Metadata shows the merged replica list (sorted here;
/// the other throttle test checks its order through `--list`), the ISR keeps the old replicas, acks=all goes on (300 more), and `--verify` says in progress.
fn held_while_acks_go_on(
    cluster: &Cluster,
    (topic, to, from): (&str, &[i32], &[i32]),
    plan: &str,
    acks: &AtomicU64,
) {
    // The view's lists are sorted (`common::metadata`).
    let mut merged: Vec<i32> = to
        .iter()
        .chain(from.iter().filter(|r| !to.contains(r)))
        .copied()
        .collect();
    merged.sort_unstable();
    let during = wait_metadata(cluster, topic, "the merged replica list", |m| {
        m.partitions.len() == 1 && m.partitions[0].replicas == merged
    });
    assert_eq!(during.partitions[0].isr.len(), 2, "{during:?}");
    let before = acks.load(Ordering::Relaxed);
    wait_until("300 acknowledgements during the throttled copy", || {
        acks.load(Ordering::Relaxed) >= before + 300
    });
    let held = reassign_ok(
        &live_bootstrap(cluster),
        &["--verify", "--reassignment-json-file", plan],
    );
    assert!(
        held.contains(&format!(
            "Reassignment of partition {topic}-0 is still in progress."
        )),
        "{held}"
    );
}

#[test]
fn a_follower_moves_while_an_idempotent_producer_runs() {
    let leader = move_under_load("follower-move", &[2, 1], &[2, 3], false);
    assert_eq!(leader, 2, "a leader that stays keeps leading");
}

#[test]
fn the_leader_moves_off_while_an_idempotent_producer_runs() {
    let leader = move_under_load("leader-move", &[1, 2], &[2, 3], false);
    assert_eq!(leader, 2, "the first target replica in the ISR leads");
}

#[test]
fn a_throttled_leader_move_keeps_acks_all_going_while_it_is_held() {
    let leader = move_under_load("throttled-move", &[1, 2], &[2, 3], true);
    assert_eq!(leader, 2);
}

/// `--generate`, `--execute`, `--verify`, `--list`, `--cancel` and the errors, on a quiet
/// cluster; then Kafka's error codes of AlterPartitionReassignments on the wire.
#[test]
fn the_cli_round_trip_and_bad_input() {
    let cluster = cluster();
    let dir = tempfile::tempdir().unwrap();
    create_topic(
        &cluster,
        &NewTopic::new("cli", 2, TopicReplication::Variable(&[&[1, 2], &[2, 1]])),
    );
    wait_metadata(&cluster, "cli", "full ISRs", |m| full_isrs(m, 2, 2));
    let bootstrap = live_bootstrap(&cluster);

    let topics = dir.path().join("topics.json");
    std::fs::write(&topics, r#"{"topics":[{"topic":"cli"}],"version":1}"#).unwrap();
    let topics = topics.to_string_lossy().into_owned();
    let generated = reassign_ok(
        &bootstrap,
        &[
            "--generate",
            "--topics-to-move-json-file",
            &topics,
            "--broker-list",
            "2,3",
        ],
    );
    assert!(
        generated.starts_with("Current partition replica assignment\n"),
        "{generated}"
    );
    let proposed = generated
        .split("Proposed partition reassignment configuration\n")
        .nth(1)
        .expect("a proposal")
        .trim();
    for p in [
        "\"partition\":0",
        "\"partition\":1",
        "\"replicas\":[2,3]",
        "\"replicas\":[3,2]",
    ] {
        assert!(proposed.contains(p), "{p} in {proposed}");
    }
    let plan = dir.path().join("plan.json");
    std::fs::write(&plan, proposed).unwrap();
    let plan = plan.to_string_lossy().into_owned();
    let started = reassign_ok(
        &bootstrap,
        &["--execute", "--reassignment-json-file", &plan],
    );
    assert!(
        started.contains("Successfully started partition reassignments for cli-0,cli-1"),
        "{started}"
    );
    // In progress or already complete: either way a line per partition.
    let listed = reassign_ok(&bootstrap, &["--list"]);
    eprintln!("{listed}");
    assert!(
        listed.contains("No partition reassignments found.")
            || listed.contains("Current partition reassignments:"),
        "{listed}"
    );
    verify_until_complete(&bootstrap, &plan, "cli-0");
    let verified = verify_until_complete(&bootstrap, &plan, "cli-1");
    assert!(
        verified.starts_with("Status of partition reassignment:\n"),
        "{verified}"
    );
    assert!(
        verified.contains("Clearing broker-level throttles on brokers 1,2,3"),
        "{verified}"
    );
    assert!(
        verified.contains("Clearing topic-level throttles on topic cli"),
        "{verified}"
    );
    let listed = reassign_ok(&bootstrap, &["--list"]);
    assert_eq!(listed.trim(), "No partition reassignments found.");
    let cancelled = reassign_ok(&bootstrap, &["--cancel", "--reassignment-json-file", &plan]);
    assert!(
        cancelled.contains("None of the specified partition reassignments are active."),
        "{cancelled}"
    );

    let unknown = write_plan(dir.path(), "cli", &[2, 9]);
    let out = sluice(&[
        "reassign-partitions",
        "--bootstrap-server",
        &bootstrap,
        "--execute",
        "--reassignment-json-file",
        &unknown,
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Unknown broker id 9"),
        "{out:?}"
    );
    wire_errors(&bootstrap);
}

/// AlterPartitionReassignments' per-partition codes, as a Kafka admin client sees them.
fn wire_errors(bootstrap: &str) {
    let runtime = compio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut client = sluice_net::client::Client::connect(bootstrap)
            .await
            .unwrap();
        let cases: Vec<(&str, i32, Option<Vec<i32>>, ResponseError)> = vec![
            (
                "cli",
                0,
                Some(vec![]),
                ResponseError::InvalidReplicaAssignment,
            ),
            (
                "cli",
                0,
                Some(vec![3, 3]),
                ResponseError::InvalidReplicaAssignment,
            ),
            (
                "cli",
                0,
                Some(vec![3, 9]),
                ResponseError::InvalidReplicaAssignment,
            ),
            (
                "cli",
                7,
                Some(vec![1, 2]),
                ResponseError::UnknownTopicOrPartition,
            ),
            (
                "nope",
                0,
                Some(vec![1, 2]),
                ResponseError::UnknownTopicOrPartition,
            ),
            ("cli", 0, None, ResponseError::NoReassignmentInProgress),
        ];
        for (topic, partition, replicas, want) in cases {
            let asked = [(topic.to_string(), partition, replicas.clone())];
            let outcomes = client.alter_partition_reassignments(&asked).await.unwrap();
            assert_eq!(outcomes.len(), 1);
            let got = outcomes[0].error.clone().map(|e| e.0);
            assert_eq!(
                got,
                Some(want),
                "{topic}-{partition} {replicas:?}: {outcomes:?}"
            );
        }
        assert!(client
            .list_partition_reassignments(None)
            .await
            .unwrap()
            .is_empty());
    });
}

fn configs(bootstrap: &str, entity_type: &str, name: &str) -> String {
    let out = sluice(&[
        "configs",
        "--bootstrap-server",
        bootstrap,
        "--entity-type",
        entity_type,
        "--entity-name",
        name,
        "--describe",
    ]);
    assert!(out.status.success(), "{out:?}");
    stdout(&out)
}

#[test]
fn a_throttled_move_waits_for_its_throttle_and_verify_removes_it() {
    let cluster = cluster();
    let dir = tempfile::tempdir().unwrap();
    create_topic(
        &cluster,
        &NewTopic::new("throttled", 1, TopicReplication::Variable(&[&[1, 2]])),
    );
    wait_metadata(&cluster, "throttled", "a full ISR", |m| full_isrs(m, 1, 2));
    let bootstrap = live_bootstrap(&cluster);
    // 4 MiB: four of the follower's 1 MiB fetches.
    let values = mib(4);
    let (acked, failed) = produce(&bootstrap, "throttled", Some(0), &values, &[]);
    assert!(
        failed.is_empty() && acked.len() == values.len(),
        "{failed:?}"
    );

    let plan = write_plan(dir.path(), "throttled", &[2, 3]);
    let execute = |throttle: &str, additional: bool| {
        let mut args = vec![
            "--execute",
            "--reassignment-json-file",
            &plan,
            "--throttle",
            throttle,
        ];
        if additional {
            args.push("--additional");
        }
        reassign_ok(&bootstrap, &args)
    };
    let started = execute("1", false);
    assert!(
        started.contains("Warning: You must run --verify periodically"),
        "{started}"
    );
    assert!(
        started.contains("The inter-broker throttle limit was set to 1 B/s"),
        "{started}"
    );
    let topic = configs(&bootstrap, "topics", "throttled");
    assert!(
        topic.contains("leader.replication.throttled.replicas=0:1,0:2"),
        "{topic}"
    );
    assert!(
        topic.contains("follower.replication.throttled.replicas=0:3"),
        "{topic}"
    );
    for broker in ["1", "2", "3"] {
        let b = configs(&bootstrap, "brokers", broker);
        assert!(
            b.contains("leader.replication.throttled.rate=1 "),
            "{broker}: {b}"
        );
        assert!(
            b.contains("follower.replication.throttled.rate=1 "),
            "{broker}: {b}"
        );
    }
    let held = reassign_ok(&bootstrap, &["--verify", "--reassignment-json-file", &plan]);
    assert!(
        held.contains("Reassignment of partition throttled-0 is still in progress."),
        "the throttle holds the copy: {held}"
    );
    assert!(
        !held.contains("Clearing"),
        "throttles stay while in progress: {held}"
    );
    let listed = reassign_ok(&bootstrap, &["--list"]);
    assert!(
        listed.contains("throttled-0: replicas: 2,3,1. adding: 3. removing: 1."),
        "{listed}"
    );

    let raised = execute("1000000000", true);
    assert!(raised.contains("set to 1000000000 B/s"), "{raised}");
    let done = verify_until_complete(&bootstrap, &plan, "throttled-0");
    assert!(
        done.contains("Clearing topic-level throttles on topic throttled"),
        "{done}"
    );
    let topic = configs(&bootstrap, "topics", "throttled");
    assert!(!topic.contains("throttled.replicas"), "{topic}");
    let b = configs(&bootstrap, "brokers", "3");
    assert!(!b.contains("throttled.rate"), "{b}");
    wait_until("the final replicas to hold the same bytes", || {
        let bytes = cluster.replica_bytes("throttled", 0);
        bytes[0].is_empty() && bytes[1].len() > 4 << 20 && bytes[1] == bytes[2]
    });
}

/// `sluice reassign-partitions ARGS…` against the live nodes until it succeeds (a forwarded
/// call answers NOT_CONTROLLER while the quorum elects); its output.
fn reassign_retried(cluster: &Cluster, args: &[&str]) -> String {
    let mut out = String::new();
    wait_until(&format!("reassign-partitions {args:?} to succeed"), || {
        let bootstrap = live_bootstrap(cluster);
        let mut all = vec!["reassign-partitions", "--bootstrap-server", &bootstrap];
        all.extend(args);
        let o = sluice(&all);
        out = stdout(&o);
        o.status.success()
    });
    out
}

/// The active controller (node 3 in practice: the replica being added) is SIGKILLed while
/// the throttle holds a move, then restarted: the move is still there (the metadata log
/// holds it), completes once the throttle is lifted, and nothing written before is missing.
#[test]
fn a_held_move_completes_after_the_active_controller_is_killed_and_restarted() {
    held_move_survives_a_kill(true);
}

/// The same with the partition's leader (node 1, the replica being removed) SIGKILLed: the
/// leadership moves to node 2 (in the ISR), which completes the move once node 1 is back.
#[test]
fn a_held_move_completes_after_its_old_leader_is_killed_and_restarted() {
    held_move_survives_a_kill(false);
}

fn held_move_survives_a_kill(controller: bool) {
    let mut cluster = Cluster::builder(3)
        .property("broker.heartbeat.interval.ms", "500")
        .property("broker.session.timeout.ms", "3000")
        .property("offsets.topic.num.partitions", "1")
        .property("num.shards", "1")
        .start();
    let dir = tempfile::tempdir().unwrap();
    create_topic(
        &cluster,
        &NewTopic::new("survivor", 1, TopicReplication::Variable(&[&[1, 2]])),
    );
    wait_metadata(&cluster, "survivor", "a full ISR", |m| full_isrs(m, 1, 2));
    let (acked, failed) = produce(&live_bootstrap(&cluster), "survivor", Some(0), &mib(4), &[]);
    assert!(failed.is_empty() && acked.len() == 4096, "{failed:?}");
    let plan = write_plan(dir.path(), "survivor", &[2, 3]);
    let execute = ["--execute", "--reassignment-json-file", &plan];
    let started = reassign_ok(
        &live_bootstrap(&cluster),
        &[&execute[..], &["--throttle", "1"]].concat(),
    );
    assert!(started.contains("Successfully started"), "{started}");

    let (controller_id, term) = common::active_controller(&cluster);
    let active = if controller { controller_id } else { 1 };
    cluster.node_mut(active).kill();
    if active == controller_id {
        wait_until("a new active controller", || {
            let (next, next_term) = common::active_controller(&cluster);
            next != active && next_term > term
        });
    }
    let listed = reassign_retried(&cluster, &["--list"]);
    assert!(
        listed.contains("survivor-0: replicas: 2,3,1. adding: 3. removing: 1."),
        "the new controller has the move in progress: {listed}"
    );
    cluster.node_mut(active).restart();
    common::wait_brokers_registered(&cluster);
    let raise = [&execute[..], &["--additional", "--throttle", "1000000000"]].concat();
    reassign_retried(&cluster, &raise);
    let verify = ["--verify", "--reassignment-json-file", &plan];
    wait_until("the move to complete", || {
        reassign_retried(&cluster, &verify)
            .contains("Reassignment of partition survivor-0 is completed.")
    });
    wait_metadata(&cluster, "survivor", "the target replicas in sync", |m| {
        m.partitions.len() == 1
            && m.partitions[0].replicas == [2, 3]
            && m.partitions[0].isr.len() == 2
    });
    wait_until("node 1's copy deleted and the replicas equal", || {
        let bytes = cluster.replica_bytes("survivor", 0);
        bytes[0].is_empty() && bytes[1].len() > 4 << 20 && bytes[1] == bytes[2]
    });
    common::assert_all_read(&live_bootstrap(&cluster), "survivor", &acked);
    eprintln!(
        "node {active} (active controller: {}) killed during the move; completed after its restart",
        active == controller_id
    );
}
