//! Kafka's admin tools as people paste them, against the real `sluiced`: `configs`,
//! `topics --describe`'s `Configs:` column, `get-offsets`, `consumer-groups --list
//! --state` / `--export` / `--from-file`, `--command-config`, Kafka's command names
//! (links to `sluice`), and error texts.

mod common;

use common::{fails, ok, ok_with_stderr, run, with_bootstrap, SLUICE};
use sluice_testkit::Broker;

/// The broker for these tests: a first consumer group starts at once.
fn broker() -> Broker {
    Broker::start_temp(&["group.initial.rebalance.delay.ms=0"])
}

fn create(b: &str, topic: &str, partitions: &str) {
    let out = ok(
        &with_bootstrap(
            b,
            &[
                "topics",
                "--create",
                "--topic",
                topic,
                "--partitions",
                partitions,
            ],
        ),
        "",
    );
    assert_eq!(out, format!("Created topic {topic}.\n"));
}

fn produce(b: &str, topic: &str, lines: usize) {
    let input: String = (0..lines).map(|i| format!("line-{i}\n")).collect();
    ok(
        &with_bootstrap(b, &["console-producer", "--topic", topic]),
        &input,
    );
}

#[test]
fn configs_describe_alter_delete_and_the_topics_configs_column() {
    let broker = broker();
    let b = broker.bootstrap();
    let out = ok(
        &with_bootstrap(
            &b,
            &[
                "topics",
                "--create",
                "--topic",
                "cfg",
                "--config",
                "retention.ms=5000",
            ],
        ),
        "",
    );
    assert_eq!(out, "Created topic cfg.\n");
    let describe = |rest: &[&str]| {
        let mut args = vec!["configs", "--describe"];
        args.extend_from_slice(rest);
        ok(&with_bootstrap(&b, &args), "")
    };
    let dynamic = describe(&["--entity-type", "topics", "--entity-name", "cfg"]);
    let lines: Vec<&str> = dynamic.lines().collect();
    assert_eq!(lines.len(), 2, "{dynamic}");
    assert_eq!(lines[0], "Dynamic configs for topic cfg are:");
    assert!(
        lines[1].starts_with("  retention.ms=5000 sensitive=false synonyms={"),
        "{dynamic}"
    );
    assert_eq!(
        describe(&["--topic", "cfg"]),
        dynamic,
        "Kafka's --topic shortcut"
    );

    let altered = ok(
        &with_bootstrap(
            &b,
            &[
                "configs",
                "--alter",
                "--entity-type",
                "topics",
                "--entity-name",
                "cfg",
                "--add-config",
                "segment.ms=100000,retention.bytes=[1000]",
                "--delete-config",
                "retention.ms",
            ],
        ),
        "",
    );
    assert_eq!(altered, "Completed updating config for topic cfg.\n");
    let dynamic = describe(&["--entity-type", "topics", "--entity-name", "cfg"]);
    let keys: Vec<&str> = dynamic
        .lines()
        .skip(1)
        .map(|l| l.trim_start().split(' ').next().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["retention.bytes=1000", "segment.ms=100000"],
        "{dynamic}"
    );
    let all = describe(&["--entity-type", "topics", "--entity-name", "cfg", "--all"]);
    assert!(all.starts_with("All configs for topic cfg are:\n"), "{all}");
    assert!(
        all.contains("\n  cleanup.policy=delete sensitive=false"),
        "{all}"
    );

    let topic = ok(
        &with_bootstrap(&b, &["topics", "--describe", "--topic", "cfg"]),
        "",
    );
    let head = topic.lines().next().unwrap();
    let configs = head.split("\tConfigs: ").nth(1).expect("Configs column");
    let mut configs: Vec<&str> = configs.split(',').collect();
    configs.sort_unstable();
    assert_eq!(
        configs,
        ["retention.bytes=1000", "segment.ms=100000"],
        "{head}"
    );

    let alter = |rest: &[&str]| {
        let mut args = vec![
            "configs",
            "--alter",
            "--entity-type",
            "topics",
            "--entity-name",
        ];
        args.extend_from_slice(rest);
        with_bootstrap(&b, &args)
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    };
    let args = alter(&["cfg", "--delete-config", "retention.ms"]);
    let unset = fails(&args.iter().map(String::as_str).collect::<Vec<_>>(), "");
    assert!(unset.contains("Invalid config(s): retention.ms"), "{unset}");
    let args = alter(&["cfg", "--add-config", "retention.ms=soon"]);
    let bad = fails(&args.iter().map(String::as_str).collect::<Vec<_>>(), "");
    assert!(
        bad.contains("retention.ms") && bad.contains("InvalidConfig"),
        "{bad}"
    );
    let args = alter(&["cfg", "--add-config", "a=b=c"]);
    let syntax = fails(&args.iter().map(String::as_str).collect::<Vec<_>>(), "");
    assert!(syntax.contains("Invalid entity config"), "{syntax}");

    let missing = describe(&["--entity-type", "topics", "--entity-name", "nope"]);
    assert_eq!(
        missing,
        "The topic 'nope' doesn't exist and doesn't have dynamic config.\n"
    );
    let group = describe(&["--entity-type", "groups", "--entity-name", "nope"]);
    assert_eq!(
        group,
        "The group 'nope' doesn't exist and doesn't have dynamic config.\n"
    );
}

#[test]
fn broker_configs_describe_as_kafka() {
    let broker = broker();
    let b = broker.bootstrap();
    let describe = |rest: &[&str]| {
        let mut args = vec!["configs", "--describe", "--entity-type", "brokers"];
        args.extend_from_slice(rest);
        ok(&with_bootstrap(&b, &args), "")
    };
    let one = describe(&["--entity-name", "1"]);
    assert!(
        one.starts_with("Dynamic configs for broker 1 are:\n"),
        "{one}"
    );
    let defaults = describe(&["--entity-default"]);
    assert!(
        defaults.starts_with("Default configs for brokers in the cluster are:\n"),
        "{defaults}"
    );
    let every = describe(&[]);
    assert!(
        every.starts_with("Dynamic configs for broker 1 are:\n"),
        "{every}"
    );
    assert!(
        every.contains("Default configs for brokers in the cluster are:\n"),
        "{every}"
    );
    let all = describe(&["--entity-name", "1", "--all"]);
    assert!(all.starts_with("All configs for broker 1 are:\n"), "{all}");
    assert!(
        all.contains("\n  num.partitions=1 sensitive=false synonyms={"),
        "{all}"
    );
    let alter = |rest: &[&str]| {
        let mut args = vec!["configs", "--alter", "--entity-type", "brokers"];
        args.extend_from_slice(rest);
        args.iter().map(|a| a.to_string()).collect::<Vec<String>>()
    };
    let run_alter = |rest: &[&str]| {
        let args = alter(rest);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(&with_bootstrap(&b, &args), "")
    };
    assert_eq!(
        run_alter(&[
            "--entity-name",
            "1",
            "--add-config",
            "log.retention.ms=3600000"
        ]),
        "Completed updating config for broker 1.\n"
    );
    let one = describe(&["--entity-name", "1"]);
    assert!(
        one.contains("\n  log.retention.ms=3600000 sensitive=false synonyms={"),
        "{one}"
    );
    assert_eq!(
        run_alter(&[
            "--entity-default",
            "--add-config",
            "log.segment.bytes=536870912"
        ]),
        "Completed updating default config for brokers in the cluster.\n"
    );
    let defaults = describe(&["--entity-default"]);
    assert!(
        defaults.contains("\n  log.segment.bytes=536870912 "),
        "{defaults}"
    );
    run_alter(&["--entity-name", "1", "--delete-config", "log.retention.ms"]);
    let one = describe(&["--entity-name", "1"]);
    assert!(!one.contains("log.retention.ms="), "{one}");
    let args = alter(&["--entity-name", "1", "--add-config", "num.partitions=4"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let refused = fails(&with_bootstrap(&b, &args), "");
    assert!(
        refused.contains("num.partitions") && refused.contains("InvalidRequest"),
        "{refused}"
    );
    let other = describe(&["--entity-name", "7"]);
    assert_eq!(
        other,
        "The broker '7' doesn't exist and doesn't have dynamic config.\n"
    );
    let not_id = fails(
        &with_bootstrap(&b, &["configs", "--describe", "--broker", "one"]),
        "",
    );
    assert!(
        not_id.contains("must be a valid integer broker id"),
        "{not_id}"
    );
    let users = fails(
        &with_bootstrap(
            &b,
            &[
                "configs",
                "--describe",
                "--entity-type",
                "users",
                "--entity-name",
                "u",
            ],
        ),
        "",
    );
    assert!(users.contains("--entity-type \"users\""), "{users}");
}

#[test]
fn command_config_is_read_and_unhonoured_keys_are_named() {
    let broker = broker();
    let b = broker.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admin.properties");
    std::fs::write(&file, "# admin\nclient.id=admin-7\nretries=5\n").unwrap();
    let file = file.to_str().unwrap();
    create(&b, "listed", "1");
    let (out, err) = ok_with_stderr(
        &with_bootstrap(
            &b,
            &[
                "topics",
                "--list",
                "--exclude-internal",
                "--command-config",
                file,
            ],
        ),
        "",
    );
    assert_eq!(out, "listed\n");
    assert!(
        err.contains("WARN: retries=5 (--command-config ") && err.contains("is not honoured"),
        "{err}"
    );
    assert!(!err.contains("client.id"), "client.id is honoured: {err}");
    std::fs::write(dir.path().join("tls.properties"), "security.protocol=SSL\n").unwrap();
    let tls = dir.path().join("tls.properties");
    let refused = fails(
        &with_bootstrap(
            &b,
            &[
                "consumer-groups",
                "--list",
                "--command-config",
                tls.to_str().unwrap(),
            ],
        ),
        "",
    );
    assert!(refused.contains("security.protocol=SSL"), "{refused}");
}

#[test]
fn get_offsets_prints_topic_partition_offset_as_kafka() {
    let broker = broker();
    let b = broker.bootstrap();
    create(&b, "go", "1");
    create(&b, "many", "12");
    produce(&b, "go", 7);
    let get = |rest: &[&str]| {
        let mut args = vec!["get-offsets"];
        args.extend_from_slice(rest);
        ok(&with_bootstrap(&b, &args), "")
    };
    assert_eq!(get(&["--topic", "go"]), "go:0:7\n");
    assert_eq!(get(&["--topic", "go", "--time", "-1"]), "go:0:7\n");
    assert_eq!(get(&["--topic", "go", "--time", "latest"]), "go:0:7\n");
    assert_eq!(get(&["--topic", "go", "--time", "-2"]), "go:0:0\n");
    assert_eq!(get(&["--topic", "go", "--time", "earliest"]), "go:0:0\n");
    assert_eq!(get(&["--topic", "go", "--time", "0"]), "go:0:0\n");
    // No record that new: no line (Kafka's UNKNOWN_OFFSET is left out).
    assert_eq!(get(&["--topic", "go", "--time", "99999999999999"]), "");
    let max = get(&["--topic", "go", "--time", "-3"]);
    let offset: i64 = max
        .trim()
        .strip_prefix("go:0:")
        .expect(&max)
        .parse()
        .unwrap();
    assert!((0..7).contains(&offset), "{max}");

    let every = get(&["--topic", "many"]);
    let order: Vec<&str> = every
        .lines()
        .map(|l| l.split(':').nth(1).unwrap())
        .collect();
    assert_eq!(
        order,
        ["0", "1", "10", "11", "2", "3", "4", "5", "6", "7", "8", "9"],
        "Kafka sorts by topic-partition text"
    );
    assert!(every.lines().all(|l| l.ends_with(":0")), "{every}");
    assert_eq!(
        get(&["--topic", "many", "--partitions", "3,11"]),
        "many:11:0\nmany:3:0\n"
    );
    assert_eq!(
        get(&["--topic-partitions", "m.*:9-,go"]),
        "go:0:7\nmany:10:0\nmany:11:0\nmany:9:0\n"
    );
    assert_eq!(
        get(&["--topic", "go,many", "--partitions", "0"]),
        "go:0:7\nmany:0:0\n"
    );
    let all = get(&[]);
    assert!(
        all.contains("__consumer_offsets:0:"),
        "internal topics by default"
    );
    let external = get(&["--exclude-internal-topics"]);
    assert_eq!(external.lines().count(), 13, "{external}");

    let none = fails(
        &with_bootstrap(&b, &["get-offsets", "--topic", "nomatch"]),
        "",
    );
    assert!(
        none.contains("Could not match any topic-partitions with the specified filters"),
        "{none}"
    );
    let bad = fails(
        &with_bootstrap(&b, &["get-offsets", "--topic", "go", "--time", "yesterday"]),
        "",
    );
    assert!(bad.contains("Malformed time argument yesterday"), "{bad}");
}

#[test]
fn kafkas_command_names_run_the_matching_subcommand() {
    let broker = broker();
    let b = broker.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let link = |name: &str| {
        let path = dir.path().join(name);
        std::os::unix::fs::symlink(SLUICE, &path).unwrap();
        path
    };
    let commands = [
        ("kafka-topics", "topics"),
        ("kafka-console-producer", "console-producer"),
        ("kafka-console-consumer", "console-consumer"),
        ("kafka-consumer-groups", "consumer-groups"),
        ("kafka-configs", "configs"),
        ("kafka-delete-records", "delete-records"),
        ("kafka-dump-log", "dump-log"),
        ("kafka-get-offsets", "get-offsets"),
        ("kafka-storage", "storage"),
        ("kafka-metadata-quorum", "metadata-quorum"),
        ("kafka-leader-election", "leader-election"),
        ("kafka-log-dirs", "log-dirs"),
    ];
    for (kafka, sub) in commands {
        for name in [kafka.to_string(), format!("{kafka}.sh")] {
            let output = run(&link(&name), &["--help"], "");
            let help = String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success(), "{name} --help");
            assert!(
                help.contains(&format!("Usage: sluice {sub} ")),
                "{name}: {help}"
            );
        }
    }
    let topics = dir.path().join("kafka-topics.sh");
    let created = run(
        &topics,
        &["--bootstrap-server", &b, "--create", "--topic", "named"],
        "",
    );
    assert_eq!(
        String::from_utf8_lossy(&created.stdout),
        "Created topic named.\n"
    );
    let producer = dir.path().join("kafka-console-producer.sh");
    let produced = run(
        &producer,
        &[
            "--broker-list",
            &b,
            "--topic",
            "named",
            "--request-required-acks",
            "-1",
        ],
        "one\ntwo\n",
    );
    assert!(produced.status.success(), "{produced:?}");
    let offsets = run(
        &dir.path().join("kafka-get-offsets"),
        &["--bootstrap-server", &b],
        "",
    );
    let offsets = String::from_utf8_lossy(&offsets.stdout);
    assert!(offsets.lines().any(|l| l == "named:0:2"), "{offsets}");
}

#[test]
fn error_texts_read_cleanly() {
    let broker = broker();
    let b = broker.bootstrap();
    let error = fails(
        &with_bootstrap(
            &b,
            &[
                "topics",
                "--create",
                "--topic",
                "rf",
                "--replication-factor",
                "3",
            ],
        ),
        "",
    );
    let line = error.trim_end();
    assert!(
        line.starts_with(&format!("sluice: error: creating topic \"rf\" on {b}: ")),
        "{line}"
    );
    assert!(
        line.ends_with("(InvalidReplicationFactor, Kafka error code 38)"),
        "{line}"
    );
    assert!(!line.contains(".:") && !line.contains(" :"), "{line}");
    assert_eq!(line.lines().count(), 1, "{line}");
}

#[test]
fn consumer_groups_list_states_export_and_reset_from_file() {
    let broker = broker();
    let b = broker.bootstrap();
    create(&b, "cg", "1");
    produce(&b, "cg", 10);
    let consumed = ok(
        &with_bootstrap(
            &b,
            &[
                "console-consumer",
                "--topic",
                "cg",
                "--group",
                "g",
                "--from-beginning",
                "--max-messages",
                "10",
            ],
        ),
        "",
    );
    assert_eq!(consumed.lines().count(), 10);
    let groups = |rest: &[&str]| {
        let mut args = vec!["consumer-groups"];
        args.extend_from_slice(rest);
        with_bootstrap(&b, &args)
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    };
    let run_ok = |args: Vec<String>| ok(&args.iter().map(String::as_str).collect::<Vec<_>>(), "");
    assert_eq!(
        run_ok(groups(&["--list", "--state"])),
        "GROUP           STATE\ng               Empty\n"
    );
    assert_eq!(
        run_ok(groups(&["--list", "--state", "empty"]))
            .lines()
            .count(),
        2
    );
    assert_eq!(
        run_ok(groups(&["--list", "--state", "Stable"])),
        "GROUP           STATE\n"
    );
    let args = groups(&["--list", "--state", "asleep"]);
    let bad = fails(&args.iter().map(String::as_str).collect::<Vec<_>>(), "");
    assert!(bad.contains("Invalid state list 'asleep'"), "{bad}");

    let export = run_ok(groups(&[
        "--reset-offsets",
        "--group",
        "g",
        "--topic",
        "cg",
        "--to-offset",
        "4",
        "--dry-run",
        "--export",
    ]));
    assert_eq!(export, "cg,0,4\n\n");
    let all = run_ok(groups(&[
        "--reset-offsets",
        "--all-groups",
        "--all-topics",
        "--to-earliest",
        "--dry-run",
        "--export",
    ]));
    assert_eq!(all, "g,cg,0,0\n\n");
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.csv");
    std::fs::write(&plan, "cg,0,2\n").unwrap();
    let reset = run_ok(groups(&[
        "--reset-offsets",
        "--group",
        "g",
        "--from-file",
        plan.to_str().unwrap(),
        "--execute",
    ]));
    let row: Vec<&str> = reset.lines().last().unwrap().split_whitespace().collect();
    assert_eq!(row, ["g", "cg", "0", "2"], "{reset}");
    assert_eq!(current_offset(&b, "g"), "2");
    std::fs::write(&plan, "cg,0,99\n").unwrap();
    let args = groups(&[
        "--reset-offsets",
        "--group",
        "g",
        "--from-file",
        plan.to_str().unwrap(),
        "--execute",
    ]);
    let (_, warned) = ok_with_stderr(&args.iter().map(String::as_str).collect::<Vec<_>>(), "");
    assert!(
        warned.contains("New offset (99) is higher than latest offset"),
        "{warned}"
    );
    assert_eq!(current_offset(&b, "g"), "10");
}

/// The group's committed offset of cg-0, from `--describe`.
fn current_offset(b: &str, group: &str) -> String {
    let out = ok(
        &with_bootstrap(b, &["consumer-groups", "--describe", "--group", group]),
        "",
    );
    let row = out
        .lines()
        .find(|l| l.starts_with(&format!("{group} ")))
        .expect(&out);
    row.split_whitespace().nth(3).unwrap().to_string()
}
