//! The KRaft keys on the real `sluiced`: a one-voter cluster node (`process.roles`) forms
//! its quorum, registers as a broker, serves its CONTROLLER listener from the controller and
//! never advertises it in Metadata, and warns by name what a cluster node does not do yet;
//! KRaft-only keys without `process.roles` refuse to start. A cluster node starts only on
//! formatted dirs (`meta.properties` written here as `sluice storage format` writes it; the
//! tools' tests run the real command) whose ids agree.

mod common;

use std::time::Duration;

use common::Broker;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};
use sluice_engine::logdir::MetaProperties;
use sluice_engine::DirectoryId;

const CLUSTER_ID: &str = "Nk018hRAQFytWskYqtQduw";

fn format(dir: &std::path::Path, node_id: i32, cluster_id: &str) -> DirectoryId {
    let directory_id = DirectoryId::random();
    std::fs::create_dir_all(dir).unwrap();
    MetaProperties {
        node_id,
        cluster_id: cluster_id.into(),
        directory_id: Some(directory_id),
    }
    .write(dir, "the test")
    .unwrap();
    directory_id
}

fn args(overrides: &[String]) -> Vec<String> {
    overrides
        .iter()
        .flat_map(|o| ["--override".to_string(), o.clone()])
        .collect()
}

/// Issue 9's node 1, on free ports.
fn node1_overrides(client: u16, controller: u16) -> Vec<String> {
    vec![
        "process.roles=broker,controller".into(),
        "node.id=1".into(),
        format!("controller.quorum.voters=1@127.0.0.1:{controller}"),
        format!("listeners=PLAINTEXT://127.0.0.1:{client},CONTROLLER://127.0.0.1:{controller}"),
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT".into(),
        "controller.listener.names=CONTROLLER".into(),
        "inter.broker.listener.name=PLAINTEXT".into(),
    ]
}

#[test]
fn cluster_node_forms_its_quorum_and_never_advertises_its_controller_listener() {
    let ports = sluice_testkit::free_ports(2);
    let (client, controller) = (ports[0], ports[1]);
    let overrides = node1_overrides(client, controller);
    let overrides: Vec<&str> = overrides.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().unwrap();
    let directory_id = format(dir.path(), 1, CLUSTER_ID);
    let broker = Broker::start(dir.path(), &overrides);
    assert_eq!(broker.port, client);
    assert!(broker.log_contains(&format!("cluster.id {CLUSTER_ID}")));
    let meta = MetaProperties::read(dir.path()).unwrap().unwrap();
    assert_eq!(meta.directory_id, Some(directory_id), "kept as formatted");
    assert!(
        !broker.log_contains("no partition reassignment"),
        "a cluster node reassigns partitions"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", controller)).is_ok(),
        "the controller serves the CONTROLLER listener"
    );
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let brokers = loop {
        let metadata = producer
            .client()
            .fetch_metadata(None, Duration::from_secs(30))
            .unwrap();
        let brokers: Vec<(i32, String, i32)> = metadata
            .brokers()
            .iter()
            .map(|b| (b.id(), b.host().to_string(), b.port()))
            .collect();
        if !brokers.is_empty() || std::time::Instant::now() > deadline {
            break brokers;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(brokers, [(1, "127.0.0.1".to_string(), client as i32)]);
}

#[test]
fn kraft_keys_without_process_roles_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = format!("log.dirs={}", dir.path().display());
    let (code, err) = common::start_fails(&[
        "--override",
        "controller.quorum.voters=1@127.0.0.1:9093",
        "--override",
        &d,
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("controller.quorum.voters is set but process.roles is not"),
        "{err}"
    );
}

#[test]
fn cluster_node_refuses_unformatted_or_foreign_dirs() {
    let ports = sluice_testkit::free_ports(2);
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    let mut overrides = node1_overrides(ports[0], ports[1]);
    overrides.push(format!("log.dirs={},{}", a.display(), b.display()));
    let start = |overrides: &[String]| {
        let args = args(overrides);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, err) = common::start_fails(&args);
        assert_ne!(code, 0, "{err}");
        err
    };
    let err = start(&overrides);
    assert!(
        err.contains(&format!("{} is not formatted", a.display())),
        "{err}"
    );
    assert!(
        err.contains("sluice storage format -t $(sluice storage random-uuid) -c"),
        "says which command to run: {err}"
    );
    format(&a, 1, CLUSTER_ID);
    format(&b, 1, "AAAAAAAAAAAAAAAAAAAAAA");
    let err = start(&overrides);
    assert!(
        err.contains(&format!(
            "cluster.id AAAAAAAAAAAAAAAAAAAAAA differs from cluster.id {CLUSTER_ID}"
        )),
        "names both: {err}"
    );
    format(&b, 2, CLUSTER_ID);
    let err = start(&overrides);
    assert!(
        err.contains("stored node.id 2 does not match node.id 1 in the config"),
        "names both: {err}"
    );
    assert!(!b.join("meta.properties.tmp").exists());
}

#[test]
fn single_node_formats_its_own_empty_dir_with_a_directory_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), &[]);
    broker.terminate();
    let meta = MetaProperties::read(dir.path()).unwrap().expect("written");
    assert_eq!(meta.node_id, 1);
    assert_eq!(meta.cluster_id.len(), 22);
    assert!(meta.directory_id.is_some());
    let broker = Broker::start(dir.path(), &[]);
    assert!(broker.log_contains(&format!("cluster.id {}", meta.cluster_id)));
    assert_eq!(
        MetaProperties::read(dir.path()).unwrap(),
        Some(meta),
        "kept"
    );
}
