//! The cluster harness itself, with what a cluster node does today: every process starts
//! on its own ports and formatted dir, and SIGSTOP/SIGCONT, SIGKILL, SIGTERM and restarts
//! act on the process they name. (Needs `sluiced` and `sluice` built: `cargo test
//! --workspace` builds both.)

use std::net::TcpStream;
use std::time::Duration;

use sluice_testkit::{wait_for, Cluster, Roles};

/// `key=value` of a node's `meta.properties`.
fn meta_value(cluster: &Cluster, node_id: i32, key: &str) -> String {
    let text = std::fs::read_to_string(cluster.node(node_id).data_dir().join("meta.properties"))
        .expect("formatted");
    let prefix = format!("{key}=");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{key} in {text}"))
        .to_string()
}

fn state(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit_once(')')
        .unwrap()
        .1
        .trim_start()
        .chars()
        .next()
        .unwrap()
}

#[test]
fn three_nodes_start_formatted_on_distinct_ports() {
    let cluster = Cluster::start(3);
    let servers = cluster.bootstrap_servers();
    let mut ports: Vec<u16> = Vec::new();
    for node in cluster.nodes() {
        assert!(node.is_running());
        ports.extend(node.client_port);
        ports.extend(node.controller_port);
        assert_eq!(
            meta_value(&cluster, node.node_id, "node.id"),
            node.node_id.to_string()
        );
        assert_eq!(
            meta_value(&cluster, node.node_id, "cluster.id"),
            cluster.cluster_id
        );
        assert!(node.log_contains(&format!("cluster.id {}", cluster.cluster_id)));
        assert!(servers.contains(&node.bootstrap()));
        TcpStream::connect(node.bootstrap()).expect("client listener up");
        let text = std::fs::read_to_string(node.config_path()).unwrap();
        assert!(text.contains(&format!("controller.quorum.voters={}", cluster.voters())));
    }
    let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
    assert_eq!((ports.len(), distinct.len()), (6, 6), "{ports:?}");
    let dirs: std::collections::BTreeSet<_> = (1..=3)
        .map(|n| meta_value(&cluster, n, "directory.id"))
        .collect();
    assert_eq!(dirs.len(), 3);
}

#[test]
fn stop_cont_kill_term_and_restart_act_on_one_node() {
    let mut cluster = Cluster::start(2);
    let pid = cluster.node(2).pid().unwrap();
    cluster.node_mut(2).stop();
    assert_eq!(state(pid), 'T');
    assert!(cluster.node(1).is_running() && state(cluster.node(1).pid().unwrap()) != 'T');
    cluster.node_mut(2).cont();
    assert_ne!(state(pid), 'T');

    let port = cluster.node(1).client_port;
    let directory_id = meta_value(&cluster, 1, "directory.id");
    cluster.node_mut(1).kill();
    assert!(!cluster.node(1).is_running());
    wait_for("node 1's port to close", Duration::from_secs(30), || {
        TcpStream::connect(cluster.node(1).bootstrap()).is_err()
    });
    cluster.node_mut(1).restart();
    assert_eq!(cluster.node(1).client_port, port, "same port");
    assert_eq!(
        meta_value(&cluster, 1, "directory.id"),
        directory_id,
        "same dir"
    );
    TcpStream::connect(cluster.node(1).bootstrap()).expect("up again");

    cluster.node_mut(2).stop();
    let status = cluster.node_mut(2).term();
    assert!(
        status.success(),
        "a stopped node still stops cleanly: {status}"
    );
    assert!(cluster.node(2).log_contains("stopped cleanly"));
    cluster.node_mut(2).restart();
    let log = std::fs::read_to_string(cluster.node(2).log_path()).unwrap();
    assert_eq!(log.matches("ready:").count(), 2, "the file keeps both runs");
}

#[test]
fn roles_and_properties_per_node() {
    let cluster = Cluster::builder(3)
        .roles(2, Roles::Controller)
        .roles(3, Roles::Broker)
        .property("num.partitions", "2")
        .property("broker.session.timeout.ms", "4000")
        .node_property(3, "broker.session.timeout.ms", "5000")
        .start();
    let n = |id| cluster.node(id);
    assert_eq!((n(2).client_port, n(3).controller_port), (None, None));
    assert!(n(1).client_port.is_some() && n(2).controller_port.is_some());
    let voters = format!(
        "1@127.0.0.1:{},2@127.0.0.1:{}",
        n(1).controller_port.unwrap(),
        n(2).controller_port.unwrap()
    );
    assert_eq!(cluster.voters(), voters);
    assert_eq!(
        cluster.bootstrap_servers(),
        format!("{},{}", n(1).bootstrap(), n(3).bootstrap())
    );
    let config = |id: i32| std::fs::read_to_string(n(id).config_path()).unwrap();
    assert!(config(2).contains("process.roles=controller\n"));
    assert!(config(3).contains("process.roles=broker\n"));
    assert!(config(1).contains("broker.session.timeout.ms=4000\n"));
    assert!(config(3).ends_with("broker.session.timeout.ms=4000\nbroker.session.timeout.ms=5000\n"));
    for node in cluster.nodes() {
        assert!(node.is_running(), "node {} ready", node.node_id);
    }
}

#[test]
fn wait_for_returns_once_true() {
    let mut polls = 0;
    wait_for("three polls", Duration::from_secs(30), || {
        polls += 1;
        polls == 3
    });
    assert_eq!(polls, 3);
}

#[test]
#[should_panic(expected = "timed out after 200ms waiting for something that never happens")]
fn wait_for_is_bounded() {
    wait_for(
        "something that never happens",
        Duration::from_millis(200),
        || false,
    );
}

/// Tests share a `Broker` or a `Cluster` with threads (clients beside a killer): this
/// stops compiling if either loses `Send + Sync`.
#[test]
fn harness_types_can_be_shared_by_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Cluster>();
    shareable::<sluice_testkit::Broker>();
}
