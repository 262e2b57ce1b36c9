//! `sluice storage random-uuid | format` end to end with the real binaries: Kafka's flags
//! and messages, `meta.properties` in Kafka 4's format in every dir, and `sluiced` starting
//! on what was formatted.

use std::path::Path;
use std::process::{Command, Output};

use sluice_testkit::Broker;

fn sluice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .expect("run sluice")
}

/// `(exit code, stdout, stderr)`.
fn run(args: &[&str]) -> (i32, String, String) {
    let out = sluice(args);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

fn random_uuid() -> String {
    let (code, out, err) = run(&["storage", "random-uuid"]);
    assert_eq!(code, 0, "{err}");
    out.trim().to_string()
}

/// A combined node's server.properties with the given extra lines.
fn write_config(path: &Path, ports: &[u16], extra: &str) {
    let text = format!(
        "process.roles=broker,controller\nnode.id=1\n\
         controller.quorum.voters=1@127.0.0.1:{c}\n\
         listeners=PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c}\n\
         controller.listener.names=CONTROLLER\n{extra}\n",
        p = ports[0],
        c = ports[1],
    );
    std::fs::write(path, text).unwrap();
}

fn meta(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("meta.properties")).unwrap()
}

fn value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn random_uuid_is_a_kafka_uuid() {
    let ids: Vec<String> = (0..20).map(|_| random_uuid()).collect();
    for id in &ids {
        assert_eq!(id.len(), 22, "{id}");
        assert!(!id.starts_with('-'), "{id}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "base64url: {id}"
        );
    }
    let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len());
}

#[test]
fn format_writes_every_dir_then_refuses_or_skips_formatted_ones() {
    let root = tempfile::tempdir().unwrap();
    let (a, b, m) = (
        root.path().join("a"),
        root.path().join("b"),
        root.path().join("meta"),
    );
    let config = root.path().join("server.properties");
    let ports = sluice_testkit::free_ports(2);
    let dirs = format!(
        "log.dirs={},{}\nmetadata.log.dir={}",
        a.display(),
        b.display(),
        m.display()
    );
    write_config(&config, &ports, &dirs);
    let id = random_uuid();
    let c = config.to_str().unwrap();
    let (code, out, err) = run(&["storage", "format", "-t", &id, "-c", c]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!(
            "Formatting data directory {}.\nFormatting data directory {}.\n\
             Formatting metadata directory {}.\n",
            a.display(),
            b.display(),
            m.display()
        )
    );
    let mut directory_ids = Vec::new();
    for dir in [&a, &b, &m] {
        let text = meta(dir);
        assert_eq!(value(&text, "version"), Some("1"), "{text}");
        assert_eq!(value(&text, "node.id"), Some("1"), "{text}");
        assert_eq!(value(&text, "cluster.id"), Some(id.as_str()), "{text}");
        let d = value(&text, "directory.id")
            .expect("directory.id")
            .to_string();
        assert_eq!(d.len(), 22);
        directory_ids.push(d);
    }
    directory_ids.sort();
    directory_ids.dedup();
    assert_eq!(directory_ids.len(), 3, "a fresh directory.id per dir");

    let (code, _, err) = run(&["storage", "format", "-t", &id, "-c", c]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "Log directory {} is already formatted. Use --ignore-formatted to ignore this \
             directory and format the others.",
            a.display()
        )),
        "{err}"
    );
    let (code, out, _) = run(&[
        "storage",
        "format",
        "-t",
        &id,
        "-c",
        c,
        "--ignore-formatted",
    ]);
    assert_eq!(
        (code, out.as_str()),
        (0, "All of the log directories are already formatted.\n")
    );

    let new = root.path().join("new");
    let more = format!(
        "log.dirs={},{},{}\nmetadata.log.dir={}",
        a.display(),
        b.display(),
        new.display(),
        m.display()
    );
    write_config(&config, &ports, &more);
    let (code, out, err) = run(&["storage", "format", "-t", &id, "-c", c, "-g"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!("Formatting data directory {}.\n", new.display())
    );

    let other = random_uuid();
    let (code, _, err) = run(&["storage", "format", "-t", &other, "-c", c, "-g"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "Invalid cluster.id in: {}",
            a.join("meta.properties").display()
        )) && err.contains(&format!("Expected {other}, but read {id}")),
        "names both: {err}"
    );
}

#[test]
fn format_refuses_bad_input() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("server.properties");
    let d = format!("log.dirs={}", root.path().join("d").display());
    let ports = sluice_testkit::free_ports(2);
    let c = config.to_str().unwrap();
    let id = random_uuid();
    let fails = |args: &[&str], needle: &str| {
        let (code, _, err) = run(args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}\nexpected {needle:?}");
    };
    std::fs::write(&config, format!("node.id=1\n{d}\n")).unwrap();
    fails(
        &["storage", "format", "-t", &id, "-c", c],
        "Formatting is only supported for cluster nodes",
    );
    write_config(&config, &ports, &d);
    fails(
        &["storage", "format", "-t", "not-a-uuid", "-c", c],
        "Cluster ID string not-a-uuid does not appear to be a valid UUID",
    );
    std::fs::write(&config, format!("process.roles=broker\n{d}\n")).unwrap();
    fails(
        &["storage", "format", "-t", &id, "-c", c],
        "missing required configuration `node.id`",
    );
    fails(
        &[
            "storage",
            "format",
            "-t",
            &id,
            "-c",
            "/nonexistent/server.properties",
        ],
        "reading config file /nonexistent/server.properties",
    );
    let (code, _, _) = run(&["storage", "format", "-c", c]);
    assert_eq!(code, 2, "a missing -t is a usage error");
    assert!(!root.path().join("d").exists(), "nothing was formatted");
}

#[test]
fn sluiced_starts_on_formatted_dirs_and_keeps_their_ids() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let config = root.path().join("server.properties");
    let ports = sluice_testkit::free_ports(2);
    write_config(&config, &ports, &format!("log.dirs={}", data.display()));
    let id = random_uuid();
    let (code, _, err) = run(&[
        "storage",
        "format",
        "-t",
        &id,
        "-c",
        config.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let formatted = meta(&data);
    let overrides = [
        "process.roles=broker,controller".to_string(),
        "node.id=1".into(),
        format!("controller.quorum.voters=1@127.0.0.1:{}", ports[1]),
        format!(
            "listeners=PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
            ports[0], ports[1]
        ),
        "controller.listener.names=CONTROLLER".into(),
    ];
    let overrides: Vec<&str> = overrides.iter().map(String::as_str).collect();
    let mut broker = Broker::start(&data, &overrides);
    assert!(broker.log_contains(&format!("cluster.id {id}")));
    broker.terminate();
    assert_eq!(meta(&data), formatted, "sluiced reads the file as written");
}
