//! `sluice consumer-groups` and `sluice console-consumer --group` end to end against the
//! real `sluiced` (found as in `cli.rs`: `$SLUICED`, else beside this test's profile dir).
//! The group's active member is a `console-consumer --group` child process.

mod common;

use common::ok;
use sluice_testkit::Broker;
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fails(args: &[&str]) -> String {
    common::fails(args, "")
}

/// The `--describe` table's data rows, split into columns.
fn describe(b: &str, group: &str) -> Vec<Vec<String>> {
    let out = ok(
        &[
            "consumer-groups",
            "--bootstrap-server",
            b,
            "--describe",
            "--group",
            group,
        ],
        "",
    );
    let mut lines = out.lines().skip_while(|l| !l.starts_with("GROUP "));
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    assert_eq!(
        header,
        [
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID"
        ]
    );
    lines
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

fn column(rows: &[Vec<String>], i: usize) -> Vec<String> {
    rows.iter().map(|r| r[i].clone()).collect()
}

fn consume(b: &str, group: &str, max: &str) -> Vec<String> {
    let args = [
        "console-consumer",
        "--bootstrap-server",
        b,
        "--topic",
        "orders",
        "--group",
        group,
        "--from-beginning",
        "--max-messages",
        max,
        "--timeout-ms",
        "5000",
    ];
    ok(&args, "").lines().map(String::from).collect()
}

#[test]
fn group_consumer_resumes_and_consumer_groups_describes_resets_deletes() {
    let broker = Broker::start_temp(&[]);
    let b = broker.bootstrap();
    let b = b.as_str();
    ok(
        &[
            "topics",
            "--bootstrap-server",
            b,
            "--create",
            "--topic",
            "orders",
            "--partitions",
            "2",
        ],
        "",
    );
    let input: String = (0..10).map(|i| format!("r{i}\n")).collect();
    ok(
        &[
            "console-producer",
            "--bootstrap-server",
            b,
            "--topic",
            "orders",
        ],
        &input,
    );

    // Two runs in sequence: the second resumes where the first committed.
    let first = consume(b, "g1", "4");
    assert_eq!(first.len(), 4, "{first:?}");
    let second = consume(b, "g1", "100");
    assert_eq!(second.len(), 6, "{second:?}");
    let all: BTreeSet<String> = first.iter().chain(&second).cloned().collect();
    let expected: BTreeSet<String> = (0..10).map(|i| format!("r{i}")).collect();
    assert_eq!(all, expected);

    let listed = ok(&["consumer-groups", "--bootstrap-server", b, "--list"], "");
    assert!(listed.lines().any(|l| l == "g1"), "{listed}");
    let rows = describe(b, "g1");
    assert_eq!(column(&rows, 2), ["0", "1"]);
    assert_eq!(column(&rows, 5), ["0", "0"], "no lag: {rows:?}");
    assert_eq!(column(&rows, 6), ["-", "-"], "no members: {rows:?}");
    let total: i64 = column(&rows, 3)
        .iter()
        .map(|o| o.parse::<i64>().unwrap())
        .sum();
    assert_eq!(total, 10);

    // Reset: a dry run changes nothing; --execute commits.
    let reset = |mode: &str, to: &[&str]| {
        let mut args = vec![
            "consumer-groups",
            "--bootstrap-server",
            b,
            "--reset-offsets",
            "--group",
            "g1",
            "--topic",
            "orders",
            mode,
        ];
        args.extend_from_slice(to);
        ok(&args, "")
    };
    let dry = reset("--dry-run", &["--to-earliest"]);
    assert!(dry.contains("NEW-OFFSET"), "{dry}");
    assert_eq!(column(&describe(b, "g1"), 5), ["0", "0"]);
    let done = reset("--execute", &["--to-earliest"]);
    let new: Vec<&str> = done.lines().filter(|l| l.starts_with("g1 ")).collect();
    assert_eq!(new.len(), 2, "{done}");
    assert!(
        new.iter().all(|l| l.split_whitespace().nth(3) == Some("0")),
        "{done}"
    );
    let rows = describe(b, "g1");
    assert_eq!(column(&rows, 3), ["0", "0"]);
    assert_eq!(
        column(&rows, 5),
        column(&rows, 4),
        "lag is the whole log: {rows:?}"
    );
    // Clamped to each partition's log end (null-keyed records may all sit in one).
    reset("--execute", &["--to-offset", "1"]);
    for row in describe(b, "g1") {
        let end: i64 = row[4].parse().unwrap();
        assert_eq!(row[3], end.min(1).to_string(), "{row:?}");
    }
    reset_by_time_and_shift(b, &reset);

    active_group_refuses_reset_and_delete(b);
}

/// `--to-current`, `--shift-by`, `--to-datetime` and `--by-duration` on g1 (inactive, at
/// min(1, log end) per partition), and the errors a person gets for bad values.
fn reset_by_time_and_shift(b: &str, reset: &dyn Fn(&str, &[&str]) -> String) {
    let before = describe(b, "g1");
    reset("--execute", &["--to-current"]);
    assert_eq!(describe(b, "g1"), before, "--to-current keeps the commits");
    reset("--execute", &["--shift-by", "-5"]);
    assert_eq!(
        column(&describe(b, "g1"), 3),
        ["0", "0"],
        "clamped to the earliest offset"
    );
    reset("--execute", &["--shift-by", "1"]);
    for row in describe(b, "g1") {
        let end: i64 = row[4].parse().unwrap();
        assert_eq!(row[3], end.min(1).to_string(), "{row:?}");
    }
    reset("--execute", &["--by-duration", "PT0S"]);
    let rows = describe(b, "g1");
    assert_eq!(
        column(&rows, 3),
        column(&rows, 4),
        "no record is newer than now"
    );
    let all_topics = ok(
        &[
            "consumer-groups",
            "--bootstrap-server",
            b,
            "--reset-offsets",
            "--group",
            "g1",
            "--all-topics",
            "--to-latest",
            "--execute",
        ],
        "",
    );
    assert_eq!(
        all_topics.lines().filter(|l| l.starts_with("g1 ")).count(),
        2
    );
    let rows = describe(b, "g1");
    assert_eq!(
        column(&rows, 3),
        column(&rows, 4),
        "--all-topics reset both"
    );
    reset("--execute", &["--to-datetime", "1970-01-01T00:00:00.000Z"]);
    assert_eq!(
        column(&describe(b, "g1"), 3),
        ["0", "0"],
        "every record is newer"
    );

    let reset_fails = |group: &str, to: &[&str]| {
        let mut args = vec![
            "consumer-groups",
            "--bootstrap-server",
            b,
            "--reset-offsets",
            "--group",
            group,
            "--topic",
            "orders",
            "--execute",
        ];
        args.extend_from_slice(to);
        fails(&args)
    };
    let bad = reset_fails("g1", &["--to-datetime", "yesterday"]);
    assert!(bad.contains("--to-datetime 'yesterday'"), "{bad}");
    let never_committed = reset_fails("fresh", &["--shift-by", "1"]);
    assert!(
        never_committed.contains("since there is no current committed offset"),
        "{never_committed}"
    );
}

/// `--describe --state`, `--members --verbose` and `--all-groups` while g1 has one member.
fn describe_state_members_and_all_groups(b: &str) {
    let describe_with = |extra: &[&str]| {
        let mut args = vec!["consumer-groups", "--bootstrap-server", b, "--describe"];
        args.extend_from_slice(extra);
        ok(&args, "")
    };
    let state = describe_with(&["--group", "g1", "--state"]);
    let lines: Vec<&str> = state.lines().collect();
    assert_eq!(lines.len(), 3, "{state}");
    assert!(lines[1].starts_with("GROUP "), "{state}");
    let cells: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(cells[0], "g1", "{state}");
    assert_eq!(cells[1], b, "the coordinator is this broker: {state}");
    assert_eq!(cells[3..], ["range", "Stable", "1"], "{state}");

    let members = describe_with(&["--group", "g1", "--members", "--verbose"]);
    let line = members.lines().nth(2).unwrap_or_default();
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cells.len(), 6, "{members}");
    assert_eq!(cells[3..], ["sluice-cli", "2", "orders(0,1)"], "{members}");

    let all = describe_with(&["--all-groups"]);
    assert!(
        all.lines()
            .any(|l| l.starts_with("g1 ") && l.contains(" orders ")),
        "{all}"
    );
}

/// While a `console-consumer --group g1` runs, describe shows it; reset and delete are
/// refused; once it leaves, the group is deleted.
fn active_group_refuses_reset_and_delete(b: &str) {
    let mut member = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "console-consumer",
            "--bootstrap-server",
            b,
            "--topic",
            "orders",
            "--group",
            "g1",
            "--timeout-ms",
            "6000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the member");
    let deadline = Instant::now() + Duration::from_secs(30);
    let rows = loop {
        let rows = describe(b, "g1");
        if rows.iter().all(|r| r[6] != "-") {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "the member never showed: {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(column(&rows, 8), ["sluice-cli", "sluice-cli"]);
    describe_state_members_and_all_groups(b);
    let refused = fails(&[
        "consumer-groups",
        "--bootstrap-server",
        b,
        "--reset-offsets",
        "--group",
        "g1",
        "--topic",
        "orders",
        "--to-latest",
        "--execute",
    ]);
    assert!(
        refused.contains("can only be reset if the group 'g1' is inactive"),
        "{refused}"
    );
    let delete = [
        "consumer-groups",
        "--bootstrap-server",
        b,
        "--delete",
        "--group",
        "g1",
    ];
    let busy = fails(&delete);
    assert!(busy.contains("The group is not empty"), "{busy}");

    let status = member.wait().expect("member exits after its timeout");
    assert!(status.success(), "{status}");
    let deleted = ok(&delete, "");
    assert_eq!(
        deleted,
        "Deletion of requested consumer groups ('g1') was successful.\n"
    );
    let gone = fails(&[
        "consumer-groups",
        "--bootstrap-server",
        b,
        "--describe",
        "--group",
        "g1",
    ]);
    assert!(
        gone.contains("Consumer group 'g1' does not exist"),
        "{gone}"
    );
}
