//! End to end: the real `sluiced` on port 0, driven by the `sluice` binary as a person
//! would (arguments, stdin, stdout, stderr, exit codes).
//!
//! `sluice_testkit::sluiced_path` says where `sluiced` is found (`$SLUICED`, or beside this
//! test's profile directory).

mod common;

use common::{fails, ok, sluice};
use sluice_testkit::Broker;
use std::path::{Path, PathBuf};

#[test]
fn topics_create_list_describe_delete() {
    let broker = Broker::start_temp(&[]);
    let b = broker.bootstrap();
    let topics = |rest: &[&'static str]| -> Vec<String> {
        let mut args = vec!["topics".to_string(), "--bootstrap-server".into(), b.clone()];
        args.extend(rest.iter().map(|a| a.to_string()));
        args
    };
    let created = ok(
        &topics(&["--create", "--topic", "orders", "--partitions", "3"]),
        "",
    );
    assert_eq!(created, "Created topic orders.\n");
    ok(
        &topics(&["--create", "--topic", "audit", "--replication-factor", "1"]),
        "",
    );
    let again = fails(&topics(&["--create", "--topic", "orders"]), "");
    assert!(again.contains("Topic 'orders' already exists"), "{again}");
    ok(
        &topics(&["--create", "--topic", "orders", "--if-not-exists"]),
        "",
    );
    assert_eq!(
        ok(&topics(&["--list", "--exclude-internal"]), ""),
        "audit\norders\n"
    );
    let all = ok(&topics(&["--list"]), "");
    assert!(
        all.lines()
            .all(|t| ["audit", "orders", "__consumer_offsets"].contains(&t)),
        "{all}"
    );

    let described = ok(&topics(&["--describe", "--topic", "orders"]), "");
    let lines: Vec<&str> = described.lines().collect();
    assert_eq!(lines.len(), 4, "{described}");
    let head: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(head[0], "Topic: orders");
    let id = head[1].strip_prefix("TopicId: ").expect("TopicId column");
    assert_eq!(id.len(), 22, "Kafka's base64 topic id: {id}");
    assert_eq!(
        &head[2..],
        ["PartitionCount: 3", "ReplicationFactor: 1", "Configs: "]
    );
    for (partition, line) in lines[1..].iter().enumerate() {
        let expected =
            format!("\tTopic: orders\tPartition: {partition}\tLeader: 1\tReplicas: 1\tIsr: 1");
        assert_eq!(*line, expected);
    }
    let missing = fails(&topics(&["--describe", "--topic", "nope"]), "");
    assert!(missing.contains("Topic 'nope' does not exist"), "{missing}");

    ok(&topics(&["--delete", "--topic", "orders"]), "");
    assert_eq!(
        ok(&topics(&["--list", "--exclude-internal"]), ""),
        "audit\n"
    );
    let gone = fails(&topics(&["--delete", "--topic", "orders"]), "");
    assert!(gone.contains("does not exist"), "{gone}");
    ok(
        &topics(&["--delete", "--topic", "orders", "--if-exists"]),
        "",
    );
    let no_action = sluice(&topics(&["--topic", "x"]), "");
    assert_eq!(no_action.status.code(), Some(2), "clap usage error");
}

#[test]
fn console_producer_to_console_consumer_with_keys() {
    let broker = Broker::start_temp(&[]);
    let b = broker.bootstrap();
    ok(
        &[
            "topics",
            "--bootstrap-server",
            &b,
            "--create",
            "--topic",
            "kv",
            "--partitions",
            "3",
        ],
        "",
    );
    let lines: Vec<String> = (0..200)
        .map(|i| format!("key{}:value-{i}", i % 10))
        .collect();
    let input = lines.join("\n") + "\n";
    let produce = [
        "console-producer",
        "--bootstrap-server",
        &b,
        "--topic",
        "kv",
        "--property",
        "parse.key=true",
        "--property",
        "key.separator=:",
    ];
    ok(&produce, &input);
    let consume = [
        "console-consumer",
        "--bootstrap-server",
        &b,
        "--topic",
        "kv",
        "--from-beginning",
        "--property",
        "print.key=true",
        "--property",
        "key.separator=:",
        "--property",
        "print.partition=true",
        "--timeout-ms",
        "2000",
    ];
    let output = sluice(&consume, "");
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("Processed a total of 200 messages"));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let mut seen: Vec<String> = Vec::new();
    let mut partition_of_key = std::collections::HashMap::new();
    for line in stdout.lines() {
        let (partition, record) = line
            .split_once(':')
            .map(|(_, r)| r.split_once(':').unwrap())
            .unwrap();
        let key = record.split(':').next().unwrap().to_string();
        // One key, one partition; and within a partition, the order produced.
        assert_eq!(
            *partition_of_key.entry(key).or_insert(partition.to_string()),
            partition
        );
        seen.push(record.to_string());
    }
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    let mut sorted_lines = lines.clone();
    sorted_lines.sort();
    assert_eq!(sorted_seen, sorted_lines);
    for key in 0..10 {
        let prefix = format!("key{key}:");
        let of_key: Vec<&String> = seen.iter().filter(|r| r.starts_with(&prefix)).collect();
        let expected: Vec<&String> = lines.iter().filter(|r| r.starts_with(&prefix)).collect();
        assert_eq!(of_key, expected, "per-key order");
    }
    assert!(
        partition_of_key
            .values()
            .collect::<std::collections::HashSet<_>>()
            .len()
            > 1
    );

    // One partition from an offset, and --max-messages.
    let one = ok(
        &[
            "console-consumer",
            "--bootstrap-server",
            &b,
            "--topic",
            "kv",
            "--partition",
            "0",
            "--offset",
            "1",
            "--max-messages",
            "1",
            "--property",
            "print.offset=true",
        ],
        "",
    );
    assert!(one.starts_with("Offset:1\t"), "{one}");
    assert_eq!(one.lines().count(), 1);
    let no_sep = fails(&produce, "no separator here\n");
    assert!(no_sep.contains("no key separator"), "{no_sep}");
}

/// The segment of `topic`-0 under the broker's data dir.
fn segment(dir: &Path, topic: &str) -> PathBuf {
    dir.join(format!("{topic}-0"))
        .join("00000000000000000000.log")
}

#[test]
fn dump_log_reads_a_stopped_brokers_segment_and_flags_corruption() {
    let mut broker = Broker::start_temp(&[]);
    let b = broker.bootstrap();
    ok(
        &[
            "topics",
            "--bootstrap-server",
            &b,
            "--create",
            "--topic",
            "d",
            "--partitions",
            "1",
        ],
        "",
    );
    let produce = [
        "console-producer",
        "--bootstrap-server",
        &b,
        "--topic",
        "d",
        "--property",
        "parse.key=true",
        "--property",
        "key.separator==",
        // Plain batches (no producer id), as the assertions below expect.
        "--producer-property",
        "enable.idempotence=false",
    ];
    ok(&produce, "alpha=one\nbeta=two\n");
    ok(&produce, "gamma=three\n");
    broker.kill();
    let path = segment(&broker.dir, "d");
    let path_text = path.display().to_string();
    let dump = ok(&["dump-log", &path_text, "--print-data-log"], "");
    let lines: Vec<&str> = dump.lines().collect();
    assert_eq!(lines[0], format!("Dumping {path_text}"));
    assert_eq!(lines[1], "Log starting offset: 0");
    let batches: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("baseOffset:"))
        .collect();
    assert_eq!(batches.len(), 2, "{dump}");
    assert!(batches[0].starts_with("baseOffset: 0 lastOffset: 1 count: 2 baseSequence: -1 lastSequence: -1 producerId: -1 producerEpoch: -1 partitionLeaderEpoch: 0 isTransactional: false isControl: false position: 0 CreateTime: "), "{}", batches[0]);
    assert!(
        batches[1].starts_with("baseOffset: 2 lastOffset: 2 count: 1"),
        "{}",
        batches[1]
    );
    assert!(
        batches
            .iter()
            .all(|l| l.contains(" magic: 2 compresscodec: none crc: ")
                && l.ends_with("isvalid: true"))
    );
    assert!(
        lines[3].starts_with("| offset: 0 CreateTime: "),
        "{}",
        lines[3]
    );
    assert!(lines[3]
        .ends_with("keySize: 5 valueSize: 3 sequence: -1 headerKeys: [] key: alpha payload: one"));
    assert!(dump.contains("key: gamma payload: three"));

    // Flip one byte of the last record's payload: that batch fails its CRC.
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let dump = ok(&["dump-log", "--files", &path_text], "");
    let verdicts: Vec<bool> = dump
        .lines()
        .filter(|l| l.starts_with("baseOffset:"))
        .map(|l| l.ends_with("isvalid: true"))
        .collect();
    assert_eq!(verdicts, [true, false], "{dump}");
    let not_log = fails(&["dump-log", &path_text.replace(".log", ".index")], "");
    assert!(not_log.contains("only .log segment files"), "{not_log}");
}

#[test]
fn unreachable_broker_names_the_address_and_fails() {
    // A port nobody listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    for args in [
        vec!["topics", "--bootstrap-server", &address, "--list"],
        vec![
            "console-consumer",
            "--bootstrap-server",
            &address,
            "--topic",
            "t",
        ],
        vec![
            "console-producer",
            "--bootstrap-server",
            &address,
            "--topic",
            "t",
        ],
    ] {
        let stderr = fails(&args, "x\n");
        assert!(
            stderr.contains(&format!("cannot reach a broker at {address}")),
            "{stderr}"
        );
        assert!(stderr.contains("Check that sluiced"), "{stderr}");
    }
    let stderr = fails(&["topics", "--bootstrap-server", "no-port", "--list"], "");
    assert!(stderr.contains("expected host:port"), "{stderr}");
}

/// APIs the broker may not serve yet: a clear refusal, or (once it serves them) success.
#[test]
fn unsupported_apis_are_refused_clearly() {
    let broker = Broker::start_temp(&[]);
    let b = broker.bootstrap();
    ok(
        &[
            "topics",
            "--bootstrap-server",
            &b,
            "--create",
            "--topic",
            "u",
            "--partitions",
            "1",
        ],
        "",
    );
    ok(
        &["console-producer", "--bootstrap-server", &b, "--topic", "u"],
        "a\nb\nc\n",
    );

    let alter = sluice(
        &[
            "topics",
            "--bootstrap-server",
            &b,
            "--alter",
            "--topic",
            "u",
            "--partitions",
            "2",
        ],
        "",
    );
    let stderr = String::from_utf8_lossy(&alter.stderr);
    assert!(
        alter.status.success() || stderr.contains("not supported by this broker"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("offsets.json");
    std::fs::write(
        &json,
        r#"{"partitions":[{"topic":"u","partition":0,"offset":1}],"version":1}"#,
    )
    .unwrap();
    let json = json.display().to_string();
    let delete = sluice(
        &[
            "delete-records",
            "--bootstrap-server",
            &b,
            "--offset-json-file",
            &json,
        ],
        "",
    );
    let stdout = String::from_utf8_lossy(&delete.stdout);
    let stderr = String::from_utf8_lossy(&delete.stderr);
    if delete.status.success() {
        assert!(
            stdout.contains("partition: u-0\tlow_watermark: 1"),
            "{stdout}"
        );
    } else {
        assert!(stderr.contains("not supported by this broker"), "{stderr}");
    }

    let grouped = ok(
        &[
            "console-consumer",
            "--bootstrap-server",
            &b,
            "--topic",
            "u",
            "--group",
            "g",
            "--from-beginning",
            "--timeout-ms",
            "1000",
        ],
        "",
    );
    assert!(grouped.ends_with("c\n"), "{grouped}");
    let missing = fails(
        &[
            "console-consumer",
            "--bootstrap-server",
            &b,
            "--topic",
            "missing",
            // Kafka's consumer would have the broker create it otherwise.
            "--consumer-property",
            "allow.auto.create.topics=false",
            "--timeout-ms",
            "100",
        ],
        "",
    );
    assert!(missing.contains("Does the topic exist?"), "{missing}");
    let groups = ok(&["consumer-groups", "--bootstrap-server", &b, "--list"], "");
    assert_eq!(groups, "g\n");
}

/// A topic stored compressed (`compression.type`: the broker recompresses what the console
/// producer sends): console-consumer and `dump-log --deep-iteration --print-data-log`
/// decode every codec.
#[test]
fn compressed_topics_are_decoded_by_console_consumer_and_dump_log() {
    let mut broker = Broker::start_temp(&[]);
    let b = broker.bootstrap();
    let codecs = ["gzip", "snappy", "lz4", "zstd"];
    for codec in codecs {
        let config = format!("compression.type={codec}");
        let create = [
            "topics",
            "--bootstrap-server",
            &b,
            "--create",
            "--topic",
            codec,
        ];
        ok(
            &[&create[..], &["--partitions", "1", "--config", &config]].concat(),
            "",
        );
        let produce = [
            "console-producer",
            "--bootstrap-server",
            &b,
            "--topic",
            codec,
        ];
        ok(&produce, &format!("{codec}-one\n{codec}-two\n"));
        let consumed = ok(
            &[
                "console-consumer",
                "--bootstrap-server",
                &b,
                "--topic",
                codec,
                "--from-beginning",
                "--max-messages",
                "2",
            ],
            "",
        );
        assert_eq!(consumed, format!("{codec}-one\n{codec}-two\n"));
    }
    broker.kill();
    for codec in codecs {
        let path = segment(&broker.dir, codec).display().to_string();
        let dump = ok(
            &["dump-log", "--deep-iteration", "--print-data-log", &path],
            "",
        );
        assert!(
            dump.contains(&format!(" compresscodec: {codec} ")),
            "{dump}"
        );
        for value in ["one", "two"] {
            assert!(
                dump.contains(&format!("headerKeys: [] payload: {codec}-{value}\n")),
                "{dump}"
            );
        }
    }
}
