//! `console-producer` and `console-consumer` with the configs people paste from Kafka's
//! docs (`--producer-property`, `--producer.config`, `--consumer-property`,
//! `--consumer.config`, `--formatter`, `--request-required-acks -1`), topic
//! auto-creation, and Ctrl-C / SIGTERM, against the real `sluiced`.

mod common;

use common::{fails, ok, ok_with_stderr, with_bootstrap, SLUICE};
use sluice_testkit::Broker;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Bound on every wait for a child process in these tests.
const WAIT: Duration = Duration::from_secs(60);

fn broker() -> Broker {
    Broker::start_temp(&["group.initial.rebalance.delay.ms=0"])
}

fn offsets(b: &str, topic: &str) -> String {
    ok(&with_bootstrap(b, &["get-offsets", "--topic", topic]), "")
}

/// The batch lines `dump-log` prints for partition 0 of `topic`.
fn batch_lines(broker: &Broker, topic: &str) -> Vec<String> {
    let segment = broker
        .dir
        .join(format!("{topic}-0"))
        .join("00000000000000000000.log");
    let out = ok(&["dump-log", segment.to_str().unwrap()], "");
    out.lines()
        .filter(|l| l.starts_with("baseOffset:"))
        .map(String::from)
        .collect()
}

/// The word after `name` in a `dump-log` batch line.
fn field(line: &str, name: &str) -> String {
    let at = line.find(name).expect(line) + name.len();
    line[at..].split_whitespace().next().unwrap().to_string()
}

/// `(producerId, baseSequence)` of each batch of partition 0 of `topic`.
fn batch_producers(broker: &Broker, topic: &str) -> Vec<(i64, i32)> {
    batch_lines(broker, topic)
        .iter()
        .map(|l| {
            let id = field(l, "producerId: ").parse().unwrap();
            (id, field(l, "baseSequence: ").parse().unwrap())
        })
        .collect()
}

/// The `compresscodec` of each batch of partition 0 of `topic`.
fn codecs(broker: &Broker, topic: &str) -> Vec<String> {
    let lines = batch_lines(broker, topic);
    lines.iter().map(|l| field(l, "compresscodec: ")).collect()
}

/// How many batches partition 0 of `topic` holds.
fn batches(broker: &Broker, topic: &str) -> usize {
    batch_producers(broker, topic).len()
}

fn spawn(args: &[&str]) -> Child {
    Command::new(SLUICE)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice")
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on our own child, not yet reaped.
    let rc = unsafe { libc::kill(child.id() as i32, signal) };
    assert_eq!(rc, 0, "kill");
}

/// Waits (bounded) for `child` to exit; returns its exit code and stderr.
fn finish(mut child: Child) -> (Option<i32>, String) {
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sluice did not exit within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.code(), stderr)
}

#[test]
fn producer_auto_creates_and_honours_producer_properties() {
    let broker = broker();
    let b = broker.bootstrap();
    let (_, warned) = ok_with_stderr(
        &with_bootstrap(
            &b,
            &[
                "console-producer",
                "--topic",
                "fresh",
                "--request-required-acks",
                "-1",
                "--producer-property",
                "batch.size=0",
                // Kafka 4.1's name for --producer-property (KIP-1147).
                "--command-property",
                "linger.ms=0",
                "--producer-property",
                "foo.bar=1",
                "--compression-codec",
            ],
        ),
        "a\nb\nc\n",
    );
    assert_eq!(
        offsets(&b, "fresh"),
        "fresh:0:3\n",
        "auto-created, 3 records"
    );
    let producers = batch_producers(&broker, "fresh");
    assert_eq!(producers.len(), 3, "batch.size=0: one record per batch");
    let id = producers[0].0;
    assert!(
        id >= 0,
        "acks=-1: idempotent by default, as Kafka's producer"
    );
    assert_eq!(
        producers,
        [(id, 0), (id, 1), (id, 2)],
        "one producer, sequences in order"
    );
    assert!(
        warned.contains("WARN: foo.bar=1 (--producer-property) is not honoured"),
        "{warned}"
    );
    assert!(
        !warned.contains("compression"),
        "compression is honoured: {warned}"
    );
    assert_eq!(
        codecs(&broker, "fresh"),
        ["gzip", "gzip", "gzip"],
        "--compression-codec alone: gzip"
    );
    ok(
        &with_bootstrap(&b, &["console-producer", "--topic", "batched"]),
        "a\nb\nc\n",
    );
    assert_eq!(
        batches(&broker, "batched"),
        1,
        "lines read together share a batch"
    );
    ok(
        &with_bootstrap(&b, &["console-producer", "--topic", "synced", "--sync"]),
        "a\nb\n",
    );
    assert_eq!(
        batches(&broker, "synced"),
        2,
        "--sync sends each line alone"
    );
    ok(
        &with_bootstrap(
            &b,
            &[
                "console-producer",
                "--topic",
                "leader-acks",
                "--request-required-acks",
                "1",
            ],
        ),
        "a\n",
    );
    assert_eq!(
        batch_producers(&broker, "leader-acks"),
        [(-1, -1)],
        "acks=1 turns the default idempotence off"
    );
    let refused = fails(
        &with_bootstrap(
            &b,
            &[
                "console-producer",
                "--topic",
                "leader-acks",
                "--request-required-acks",
                "1",
                "--producer-property",
                "enable.idempotence=true",
            ],
        ),
        "a\n",
    );
    assert!(refused.contains("Must set acks to all"), "{refused}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("producer.properties");
    std::fs::write(&file, "max.request.size=100\nacks=1\n").unwrap();
    let config = file.to_str().unwrap();
    let long = format!("{}\n", "x".repeat(200));
    let args = [
        "console-producer",
        "--topic",
        "fresh",
        "--producer.config",
        config,
    ];
    let too_large = fails(&with_bootstrap(&b, &args), &long);
    assert!(
        too_large.contains("larger than 100, which is the value of the max.request.size"),
        "{too_large}"
    );
    let mut args = args.to_vec();
    args.extend(["--producer-property", "max.request.size=1000"]);
    ok(&with_bootstrap(&b, &args), &long);
    assert_eq!(
        offsets(&b, "fresh"),
        "fresh:0:4\n",
        "the property overrides the file"
    );
    let bad = fails(
        &with_bootstrap(
            &b,
            &[
                "console-producer",
                "--topic",
                "fresh",
                "--producer-property",
                "batch.size=big",
            ],
        ),
        "",
    );
    assert!(
        bad.contains("batch.size=big (--producer-property)"),
        "{bad}"
    );
}

#[test]
fn producer_without_auto_creation_names_the_missing_topic() {
    let broker = Broker::start_temp(&["auto.create.topics.enable=false"]);
    let b = broker.bootstrap();
    let missing = fails(
        &with_bootstrap(&b, &["console-producer", "--topic", "absent"]),
        "x\n",
    );
    assert!(missing.contains("UnknownTopicOrPartition"), "{missing}");
    assert!(missing.contains("\"absent\""), "{missing}");
}

#[test]
fn sigterm_makes_the_producer_send_what_it_read() {
    let broker = broker();
    let b = broker.bootstrap();
    let args = with_bootstrap(
        &b,
        &[
            "console-producer",
            "--topic",
            "sig",
            "--producer-property",
            "linger.ms=600000",
        ],
    );
    let mut child = spawn(&args);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"1\n2\n3\n4\n5\n").unwrap();
    // The topic exists once the producer is connected, its signal handling in place.
    let deadline = Instant::now() + WAIT;
    while !common::sluice(&with_bootstrap(&b, &["get-offsets", "--topic", "sig"]), "")
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "the producer never created its topic"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(&child, libc::SIGTERM);
    let (code, stderr) = finish(child);
    drop(stdin);
    assert_eq!(code, Some(128 + libc::SIGTERM), "{stderr}");
    assert_eq!(offsets(&b, "sig"), "sig:0:5\n", "{stderr}");
}

/// Reads `child`'s stdout lines on a thread.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

#[test]
fn ctrl_c_stops_a_group_consumer_as_kafka_does() {
    let broker = broker();
    let b = broker.bootstrap();
    let input: String = (0..10).map(|i| format!("v{i}\n")).collect();
    ok(
        &with_bootstrap(&b, &["console-producer", "--topic", "cg"]),
        &input,
    );
    let args = with_bootstrap(
        &b,
        &[
            "console-consumer",
            "--topic",
            "cg",
            "--consumer-property",
            "group.id=cg1",
            // Kafka 4.1's name for --consumer-property (KIP-1147).
            "--command-property",
            "client.id=cli-7",
            "--from-beginning",
            "--property",
            "print.offset=true",
        ],
    );
    let mut child = spawn(&args);
    let lines = lines_of(&mut child);
    let mut seen = Vec::new();
    let deadline = Instant::now() + WAIT;
    while seen.len() < 10 {
        let left = deadline.saturating_duration_since(Instant::now());
        seen.push(
            lines
                .recv_timeout(left)
                .expect("10 records within the bound"),
        );
    }
    assert_eq!(seen[0], "Offset:0\tv0");
    assert_eq!(seen[9], "Offset:9\tv9");
    let members = ok(
        &with_bootstrap(
            &b,
            &[
                "consumer-groups",
                "--describe",
                "--group",
                "cg1",
                "--members",
            ],
        ),
        "",
    );
    assert!(members.contains("cli-7"), "client.id honoured: {members}");
    signal(&child, libc::SIGINT);
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(128 + libc::SIGINT), "{stderr}");
    assert!(
        stderr.contains("Processed a total of 10 messages"),
        "{stderr}"
    );
    let described = ok(
        &with_bootstrap(&b, &["consumer-groups", "--describe", "--group", "cg1"]),
        "",
    );
    assert!(
        described.contains("Consumer group 'cg1' has no active members."),
        "LeaveGroup on exit: {described}"
    );
    let row = described
        .lines()
        .find(|l| l.starts_with("cg1 "))
        .expect(&described);
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cells[..6],
        ["cg1", "cg", "0", "10", "10", "0"],
        "final commit"
    );
}

#[test]
fn consumer_config_file_formatter_and_group_id_rules() {
    let broker = broker();
    let b = broker.bootstrap();
    ok(
        &with_bootstrap(&b, &["console-producer", "--topic", "cf"]),
        "a\nb\nc\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("consumer.properties");
    std::fs::write(
        &file,
        "group.id=cg2\nenable.auto.commit=false\nauto.offset.reset=earliest\nunknown.key=1\n",
    )
    .unwrap();
    let config = file.to_str().unwrap();
    let (out, err) = ok_with_stderr(
        &with_bootstrap(
            &b,
            &[
                "console-consumer",
                "--topic",
                "cf",
                "--consumer.config",
                config,
                "--max-messages",
                "3",
                "--formatter",
                "kafka.tools.DefaultMessageFormatter",
                "--property",
                "print.key=true",
                "--property",
                "null.literal=NUL",
                "--property",
                "print.partition=true",
            ],
        ),
        "",
    );
    assert_eq!(
        out,
        "Partition:0\tNUL\ta\nPartition:0\tNUL\tb\nPartition:0\tNUL\tc\n"
    );
    assert!(
        err.contains("WARN: unknown.key=1 (--consumer.config "),
        "{err}"
    );
    let described = ok(
        &with_bootstrap(&b, &["consumer-groups", "--describe", "--group", "cg2"]),
        "",
    );
    assert!(
        !described.lines().any(|l| l.starts_with("cg2 ")),
        "enable.auto.commit=false commits nothing: {described}"
    );
    let (out, _) = ok_with_stderr(
        &with_bootstrap(
            &b,
            &[
                "console-consumer",
                "--topic",
                "cf",
                "--from-beginning",
                "--max-messages",
                "1",
                "--formatter",
                "org.apache.kafka.tools.consumer.DefaultMessageFormatter",
                "--formatter-property",
                "print.value=false",
                "--formatter-property",
                "print.offset=true",
            ],
        ),
        "",
    );
    assert_eq!(out, "Offset:0\n");
    let refused = fails(
        &with_bootstrap(
            &b,
            &[
                "console-consumer",
                "--topic",
                "cf",
                "--formatter",
                "kafka.tools.NoOpMessageFormatter",
            ],
        ),
        "",
    );
    assert!(refused.contains("default formatter only"), "{refused}");
    let mismatch = fails(
        &with_bootstrap(
            &b,
            &[
                "console-consumer",
                "--topic",
                "cf",
                "--group",
                "a",
                "--consumer-property",
                "group.id=b",
            ],
        ),
        "",
    );
    assert!(mismatch.contains("do not match"), "{mismatch}");
    let conflict = fails(
        &with_bootstrap(
            &b,
            &[
                "console-consumer",
                "--topic",
                "cf",
                "--from-beginning",
                "--consumer-property",
                "auto.offset.reset=latest",
            ],
        ),
        "",
    );
    assert!(conflict.contains("--from-beginning"), "{conflict}");

    // Kafka's consumer lets the broker create the topic it asks for
    // (allow.auto.create.topics, default true).
    let refused = fails(
        &with_bootstrap(
            &b,
            &[
                "console-consumer",
                "--topic",
                "made-by-consumer",
                "--consumer-property",
                "allow.auto.create.topics=false",
                "--timeout-ms",
                "100",
            ],
        ),
        "",
    );
    assert!(refused.contains("UnknownTopicOrPartition"), "{refused}");
    ok(
        &with_bootstrap(
            &b,
            &[
                "console-consumer",
                "--topic",
                "made-by-consumer",
                "--timeout-ms",
                "100",
            ],
        ),
        "",
    );
    assert_eq!(offsets(&b, "made-by-consumer"), "made-by-consumer:0:0\n");
}

#[test]
fn kafkas_other_console_flags() {
    let broker = broker();
    let b = broker.bootstrap();
    // --batch-size (batch.size) of 1 byte: every record in its own batch; --timeout is
    // linger.ms; --reader-property is --property's new name.
    ok(
        &with_bootstrap(
            &b,
            &[
                "console-producer",
                "--topic",
                "flags",
                "--batch-size",
                "1",
                "--timeout",
                "0",
                "--request-timeout-ms",
                "20000",
                "--reader-property",
                "parse.key=true",
                "--reader-property",
                "key.separator=:",
            ],
        ),
        "k1:a\nk1:b\n",
    );
    assert_eq!(batches(&broker, "flags"), 2);
    ok(
        &with_bootstrap(
            &b,
            &[
                "console-producer",
                "--topic",
                "flags",
                "--max-partition-memory-bytes",
                "1000",
            ],
        ),
        "c\nd\n",
    );
    assert_eq!(
        batches(&broker, "flags"),
        3,
        "--max-partition-memory-bytes is batch.size"
    );
    let bad = fails(
        &with_bootstrap(
            &b,
            &[
                "console-producer",
                "--topic",
                "flags",
                "--request-timeout-ms",
                "-5",
            ],
        ),
        "",
    );
    assert!(
        bad.contains("request.timeout.ms=-5 (--request-timeout-ms)"),
        "{bad}"
    );

    let dir = tempfile::tempdir().unwrap();
    let formatter = dir.path().join("formatter.properties");
    std::fs::write(&formatter, "print.key=true\nkey.separator=|\n").unwrap();
    let out = ok(
        &with_bootstrap(
            &b,
            &[
                "console-consumer",
                "--topic",
                "flags",
                "--from-beginning",
                "--max-messages",
                "2",
                "--formatter-config",
                formatter.to_str().unwrap(),
                "--key-deserializer",
                "org.apache.kafka.common.serialization.StringDeserializer",
                "--value-deserializer",
                "org.apache.kafka.common.serialization.ByteArrayDeserializer",
            ],
        ),
        "",
    );
    assert_eq!(out, "k1|a\nk1|b\n");
    let long = fails(
        &with_bootstrap(
            &b,
            &[
                "console-consumer",
                "--topic",
                "flags",
                "--value-deserializer",
                "org.apache.kafka.common.serialization.LongDeserializer",
            ],
        ),
        "",
    );
    assert!(long.contains("LongDeserializer"), "{long}");

    let defaults = |flag: &[&str]| {
        let mut args = vec!["configs", "--describe"];
        args.extend_from_slice(flag);
        ok(&with_bootstrap(&b, &args), "")
    };
    assert_eq!(
        defaults(&["--broker-defaults"]),
        defaults(&["--entity-type", "brokers", "--entity-default"])
    );
    assert_eq!(
        defaults(&["--group", "nope"]),
        "The group 'nope' doesn't exist and doesn't have dynamic config.\n"
    );
}

#[test]
fn every_compression_type_round_trips() {
    let broker = broker();
    let b = broker.bootstrap();
    let input: String = (0..50)
        .map(|i| format!("k{i}:value-{i}-{}\n", "x".repeat(i)))
        .collect();
    for codec in ["gzip", "snappy", "lz4", "zstd", "none"] {
        let topic = format!("c-{codec}");
        let property = format!("compression.type={codec}");
        ok(
            &with_bootstrap(
                &b,
                &[
                    "console-producer",
                    "--topic",
                    &topic,
                    "--producer-property",
                    &property,
                    "--property",
                    "parse.key=true",
                    "--property",
                    "key.separator=:",
                ],
            ),
            &input,
        );
        assert_eq!(codecs(&broker, &topic), [codec], "one batch of {codec}");
        let out = ok(
            &with_bootstrap(
                &b,
                &[
                    "console-consumer",
                    "--topic",
                    &topic,
                    "--from-beginning",
                    "--max-messages",
                    "50",
                    "--property",
                    "print.key=true",
                    "--property",
                    "key.separator=:",
                ],
            ),
            "",
        );
        assert_eq!(out, input, "{codec} read back");
    }
    let level = fails(
        &with_bootstrap(
            &b,
            &[
                "console-producer",
                "--topic",
                "c-gzip",
                "--compression-codec",
                "gzip",
                "--producer-property",
                "compression.gzip.level=12",
            ],
        ),
        "a\n",
    );
    assert!(level.contains("compression.gzip.level=12"), "{level}");
    let unknown = fails(
        &with_bootstrap(
            &b,
            &[
                "console-producer",
                "--topic",
                "c-gzip",
                "--compression-codec",
                "brotli",
            ],
        ),
        "a\n",
    );
    assert!(
        unknown.contains("Invalid value brotli for configuration compression.type"),
        "{unknown}"
    );
}
