//! Three control planes in one process on loopback: they form a quorum, register as brokers,
//! agree on a topic's placement, fence a stopped node and elect new leaders from the ISR, and
//! a restarted node comes back from its persisted log.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_replication::{
    start, BrokerRegistration, ClusterHandle, ClusterOptions, ControllerReply, ControllerRequest,
    ControllerRole, Endpoint, MetadataImage,
};
use uuid::Uuid;

const WAIT_MAX: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Node {
    handle: ClusterHandle,
    thread: std::thread::JoinHandle<()>,
}

fn options(id: i32, ports: &[u16], dir: &Path, dir_id: Uuid) -> ClusterOptions {
    let voters = ports
        .iter()
        .enumerate()
        .map(|(i, p)| (i as i32 + 1, format!("127.0.0.1:{p}")))
        .collect();
    let listen: SocketAddr = format!("127.0.0.1:{}", ports[id as usize - 1])
        .parse()
        .unwrap();
    ClusterOptions {
        cluster_id: "test-cluster".into(),
        node_id: id,
        voters,
        controller: Some(ControllerRole {
            listen,
            metadata_dir: dir.to_path_buf(),
            directory_id: dir_id,
        }),
        broker: Some(BrokerRegistration {
            broker_id: id,
            incarnation_id: Uuid::new_v4(),
            listeners: vec![Endpoint {
                name: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 9000 + id as u16,
            }],
            inter_broker_listener: "PLAINTEXT".into(),
            rack: None,
            log_dirs: vec![dir_id],
        }),
        session_timeout_ms: 1500,
        heartbeat_interval_ms: 200,
        election_timeout_ms: 300,
        unclean_leader_election: false,
    }
}

fn wait_image(
    handle: &ClusterHandle,
    what: &str,
    pred: impl Fn(&MetadataImage) -> bool,
) -> Arc<MetadataImage> {
    let start = Instant::now();
    loop {
        let image = handle.image.borrow().clone();
        if pred(&image) {
            return image;
        }
        assert!(
            start.elapsed() < WAIT_MAX,
            "timed out waiting for {what}: {image:#?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn active(image: &MetadataImage, n: usize) -> bool {
    image.active_brokers().count() == n
}

#[test]
fn three_voters_agree_fence_a_stopped_node_and_recover_it() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("SLUICE_LOG"))
        .with_test_writer()
        .try_init();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let dir_ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut nodes: Vec<Option<Node>> = (1..=3)
        .map(|id| {
            let (handle, thread) = start(options(
                id,
                &ports,
                dirs[id as usize - 1].path(),
                dir_ids[id as usize - 1],
            ))
            .unwrap();
            Some(Node { handle, thread })
        })
        .collect();
    let h1 = nodes[0].as_ref().unwrap().handle.clone();
    wait_image(&h1, "three active brokers", |i| active(i, 3));

    let reply = block_on(h1.call(ControllerRequest::CreateTopic {
        name: "orders".into(),
        partitions: 6,
        replication_factor: 3,
        assignments: None,
        configs: BTreeMap::new(),
        validate_only: false,
    }))
    .unwrap();
    let ControllerReply::TopicCreated {
        topic_id,
        partitions,
    } = reply
    else {
        panic!("unexpected {reply:?}")
    };
    assert_eq!(partitions.len(), 6);
    for p in &partitions {
        assert_eq!(p.isr.len(), 3, "{p:?}");
        assert_eq!(p.leader, p.replicas[0]);
    }
    // Every node applies the same records.
    for n in nodes.iter().flatten() {
        let image = wait_image(&n.handle, "the topic", |i| i.topics.contains_key(&topic_id));
        assert_eq!(image.topics[&topic_id].partitions, partitions);
    }
    // Too many replicas: Kafka's INVALID_REPLICATION_FACTOR.
    let refused = block_on(h1.call(ControllerRequest::CreateTopic {
        name: "wide".into(),
        partitions: 1,
        replication_factor: 4,
        assignments: None,
        configs: BTreeMap::new(),
        validate_only: false,
    }))
    .unwrap_err();
    assert_eq!(refused.code, 38, "{refused:?}");

    // Stop node 2: it is fenced, leaves every ISR, and leads nothing.
    let n2 = nodes[1].take().unwrap();
    n2.handle.stop();
    n2.thread.join().unwrap();
    let image = wait_image(&h1, "broker 2 fenced", |i| i.brokers[&2].fenced);
    for p in &image.topics[&topic_id].partitions {
        assert!(!p.isr.contains(&2), "{p:?}");
        assert_ne!(p.leader, 2, "{p:?}");
        assert!(p.isr.contains(&p.leader), "{p:?}");
    }
    let led_by_2 = partitions.iter().filter(|p| p.leader == 2).count();
    assert!(
        led_by_2 > 0,
        "placement gave broker 2 some leaderships: {partitions:?}"
    );

    // Restart node 2 on the same dirs: it replays its log, registers again, is unfenced.
    let (handle, thread) = start(options(2, &ports, dirs[1].path(), dir_ids[1])).unwrap();
    let image = wait_image(&handle, "broker 2 back", |i| {
        active(i, 3) && i.topics.contains_key(&topic_id)
    });
    assert!(image.brokers[&2].broker_epoch > 0);
    nodes[1] = Some(Node { handle, thread });

    // A stopped quorum leader is replaced and the others keep deciding.
    let leader = block_on(h1.describe_quorum())
        .unwrap()
        .leader
        .expect("a leader");
    let l = nodes[leader as usize - 1].take().unwrap();
    l.handle.stop();
    l.thread.join().unwrap();
    let survivor = nodes.iter().flatten().next().unwrap().handle.clone();
    let reply = block_on(survivor.call(ControllerRequest::CreateTopic {
        name: "after-failover".into(),
        partitions: 1,
        replication_factor: 2,
        assignments: None,
        configs: BTreeMap::new(),
        validate_only: false,
    }));
    assert!(
        matches!(reply, Ok(ControllerReply::TopicCreated { .. })),
        "{reply:?}"
    );
    for n in nodes.into_iter().flatten() {
        n.handle.stop();
        n.thread.join().unwrap();
    }
}
