//! The KRaft keys on the real `sluiced`: a node started with `process.roles` says that
//! clustering is not active yet, leaves its CONTROLLER listener to the controller (not
//! bound by the client listeners) and never advertises it in Metadata; KRaft-only keys
//! without `process.roles` refuse to start.

mod common;

use std::time::Duration;

use common::Broker;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};

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
fn cluster_node_warns_and_never_advertises_its_controller_listener() {
    let ports = sluice_testkit::free_ports(2);
    let (client, controller) = (ports[0], ports[1]);
    let overrides = node1_overrides(client, controller);
    let overrides: Vec<&str> = overrides.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &overrides);
    assert_eq!(broker.port, client);
    assert!(
        broker.log_contains("clustering is not active yet"),
        "a cluster node says that it runs alone"
    );
    assert!(broker.log_contains("controller.quorum.voters"));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", controller)).is_err(),
        "the CONTROLLER listener is not bound by the broker's client listeners"
    );
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    let metadata = producer
        .client()
        .fetch_metadata(None, Duration::from_secs(30))
        .unwrap();
    let brokers: Vec<(i32, String, i32)> = metadata
        .brokers()
        .iter()
        .map(|b| (b.id(), b.host().to_string(), b.port()))
        .collect();
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
