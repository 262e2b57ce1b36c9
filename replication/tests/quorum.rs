//! Three control planes in one process on loopback: they form a quorum, register as brokers,
//! agree on a topic's placement, fence a stopped node and elect new leaders from the ISR, and
//! a restarted node comes back from its persisted log.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_replication::gossip::GossipOptions;
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
        gossip: None,
        leader_imbalance: None,
    }
}

/// `options` with SWIM gossip on the controller ports (UDP) and a session far longer than
/// the test waits: only gossip can fence a stopped node in time.
fn gossip_options(id: i32, ports: &[u16], dir: &Path, dir_id: Uuid) -> ClusterOptions {
    let mut o = options(id, ports, dir, dir_id);
    let seeds = o
        .voters
        .iter()
        .map(|(v, a)| (*v, a.parse().unwrap()))
        .collect();
    o.session_timeout_ms = 10 * WAIT_MAX.as_millis() as u64;
    o.gossip = Some(GossipOptions {
        cluster_id: o.cluster_id.clone(),
        node_id: id,
        addr: format!("127.0.0.1:{}", ports[id as usize - 1])
            .parse()
            .unwrap(),
        seeds,
        rack: None,
        probe_interval_ms: 200,
        suspect_timeout_ms: 400,
    });
    o
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

/// Three nodes' dirs, directory ids and controller ports.
struct Trio {
    dirs: Vec<tempfile::TempDir>,
    dir_ids: Vec<Uuid>,
    ports: Vec<u16>,
}

type OptionsFn = fn(i32, &[u16], &Path, Uuid) -> ClusterOptions;

impl Trio {
    fn new() -> Trio {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("SLUICE_LOG"))
            .with_test_writer()
            .try_init();
        Trio {
            dirs: (0..3).map(|_| tempfile::tempdir().unwrap()).collect(),
            dir_ids: (0..3).map(|_| Uuid::new_v4()).collect(),
            ports: (0..3).map(|_| free_port()).collect(),
        }
    }

    /// Starts node `id` (1-based) on its dirs.
    fn start(&self, id: i32, options: OptionsFn) -> Node {
        let i = id as usize - 1;
        let (handle, thread) = start(options(
            id,
            &self.ports,
            self.dirs[i].path(),
            self.dir_ids[i],
        ))
        .unwrap();
        Node { handle, thread }
    }
}

fn active(image: &MetadataImage, n: usize) -> bool {
    image.active_brokers().count() == n
}

#[test]
fn three_voters_agree_fence_a_stopped_node_and_recover_it() {
    let t = Trio::new();
    let mut nodes: Vec<Option<Node>> = (1..=3).map(|id| Some(t.start(id, options))).collect();
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
    let n2 = t.start(2, options);
    let image = wait_image(&n2.handle, "broker 2 back", |i| {
        active(i, 3) && i.topics.contains_key(&topic_id)
    });
    assert!(image.brokers[&2].broker_epoch > 0);
    nodes[1] = Some(n2);

    // A stopped quorum leader is replaced and the others keep deciding.
    let leader = block_on(h1.local_quorum_view())
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

#[test]
fn gossip_fences_a_stopped_node_long_before_its_session_ends() {
    let t = Trio::new();
    let mut nodes: Vec<Option<Node>> = (1..=3)
        .map(|id| Some(t.start(id, gossip_options)))
        .collect();
    let h1 = nodes[0].as_ref().unwrap().handle.clone();
    wait_image(&h1, "three active brokers", |i| active(i, 3));
    // Every node's gossip sees the two others alive.
    for n in nodes.iter().flatten() {
        let mut view = n.handle.gossip.clone();
        let both = block_on(async {
            tokio::time::timeout(
                WAIT_MAX,
                view.wait_for(|v| v.members.len() == 2 && v.members.values().all(|m| m.alive)),
            )
            .await
            .is_ok_and(|r| r.is_ok())
        });
        assert!(
            both,
            "node {} gossip: {:?}",
            n.handle.node_id,
            n.handle.gossip.borrow()
        );
    }
    // Stop a node that is not the quorum leader: the session (10 x WAIT_MAX) cannot
    // expire within the wait, so a fence within it is gossip's doing.
    let leader = block_on(h1.local_quorum_view())
        .unwrap()
        .leader
        .expect("a leader");
    let victim = (1..=3).find(|id| *id != leader).unwrap();
    let v = nodes[victim as usize - 1].take().unwrap();
    v.handle.stop();
    v.thread.join().unwrap();
    let survivor = nodes.iter().flatten().next().unwrap().handle.clone();
    let image = wait_image(&survivor, "the stopped broker fenced by gossip", |i| {
        i.brokers[&victim].fenced
    });
    assert!(image.brokers.values().filter(|b| !b.fenced).count() == 2);
    assert!(survivor.gossip.borrow().down_since(victim).is_some());
    // Restarted, it rejoins gossip as a new incarnation, registers and is unfenced.
    let restarted = t.start(victim, gossip_options);
    wait_image(&survivor, "the restarted broker unfenced", |i| active(i, 3));
    nodes[victim as usize - 1] = Some(restarted);
    let mut view = survivor.gossip.clone();
    let back = block_on(async {
        tokio::time::timeout(WAIT_MAX, view.wait_for(|v| v.down_since(victim).is_none()))
            .await
            .is_ok()
    });
    assert!(back, "gossip: {:?}", survivor.gossip.borrow());
    for n in nodes.into_iter().flatten() {
        n.handle.stop();
        n.thread.join().unwrap();
    }
}

fn start_node(id: i32, ports: &[u16], dir: &Path, dir_id: Uuid) -> Node {
    let (handle, thread) = start(options(id, ports, dir, dir_id)).unwrap();
    Node { handle, thread }
}

fn stop_node(node: Node) {
    node.handle.stop();
    node.thread.join().unwrap();
}

/// The voters this node's membership has, with their recorded directory ids.
fn voter_keys(handle: &ClusterHandle) -> BTreeMap<i32, Option<Uuid>> {
    let d = block_on(handle.local_quorum_view()).unwrap();
    d.voters
        .iter()
        .map(|v| (v.replica_id, v.directory_id))
        .collect()
}

/// A topic on broker 1 (registered, maybe fenced): commits whenever the quorum can.
fn create_topic(handle: &ClusterHandle, name: &str) -> Result<ControllerReply, String> {
    block_on(handle.call(ControllerRequest::CreateTopic {
        name: name.into(),
        partitions: 1,
        replication_factor: 1,
        assignments: Some(vec![vec![1]]),
        configs: BTreeMap::new(),
        validate_only: false,
    }))
    .map_err(|e| format!("{e:?}"))
}

/// Raft's disk-loss hazard (Kafka's KIP-853): a voter is a node id and a directory id. A node
/// whose metadata dir was wiped and re-formatted (same id, new directory id, empty log and
/// vote) neither votes nor counts toward a quorum until remove-controller / add-controller
/// replace the voter; then it catches up and counts again.
#[test]
fn a_wiped_voter_does_not_vote_until_it_is_added_again() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let dir_ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut nodes: Vec<Option<Node>> = (1..=3)
        .map(|id| {
            Some(start_node(
                id,
                &ports,
                dirs[id as usize - 1].path(),
                dir_ids[id as usize - 1],
            ))
        })
        .collect();
    let h1 = nodes[0].as_ref().unwrap().handle.clone();
    wait_image(&h1, "three active brokers", |i| active(i, 3));
    // Every node's membership records every voter's directory id, learned by the leader.
    let recorded: BTreeMap<i32, Option<Uuid>> = (1..=3)
        .map(|id| (id, Some(dir_ids[id as usize - 1])))
        .collect();
    for n in nodes.iter().flatten() {
        let start = Instant::now();
        while voter_keys(&n.handle) != recorded {
            assert!(
                start.elapsed() < WAIT_MAX,
                "directory ids never recorded: {:?}",
                voter_keys(&n.handle)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let leader = block_on(h1.local_quorum_view())
        .unwrap()
        .leader
        .expect("a leader");
    let wiped = (1..=3).find(|id| *id != leader).unwrap();
    let other = (1..=3).find(|id| *id != leader && *id != wiped).unwrap();
    let idx = |id: i32| id as usize - 1;

    // Wipe the voter's disk and format it again: same node id, a new directory id.
    stop_node(nodes[idx(wiped)].take().unwrap());
    std::fs::remove_dir_all(dirs[idx(wiped)].path()).unwrap();
    std::fs::create_dir(dirs[idx(wiped)].path()).unwrap();
    let new_dir_id = Uuid::new_v4();
    nodes[idx(wiped)] = Some(start_node(
        wiped,
        &ports,
        dirs[idx(wiped)].path(),
        new_dir_id,
    ));

    // With all three up, the wiped node receives the leader's entries but its answers are
    // dropped: what commits, commits with the other voter, and the leader never counts it
    // as having anything.
    let h = nodes[idx(leader)].as_ref().unwrap().handle.clone();
    let (_, index) = block_on(h.call_committed(ControllerRequest::CreateTopic {
        name: "with-wiped-node-up".into(),
        partitions: 1,
        replication_factor: 1,
        assignments: Some(vec![vec![1]]),
        configs: BTreeMap::new(),
        validate_only: false,
    }))
    .unwrap();
    let d = block_on(h.local_quorum_view()).unwrap();
    // The log end offset is the index after the last entry held (-1: no answer this term).
    let log_end = |id: i32| {
        d.voters
            .iter()
            .find(|v| v.replica_id == id)
            .unwrap()
            .log_end_offset
    };
    assert!(log_end(other) > index as i64, "{d:?}");
    assert!(
        log_end(wiped) <= index as i64,
        "the wiped node's acknowledgement counted: {d:?}"
    );

    // With only the other voter and the wiped node up, no election can be won: the wiped
    // node, told it was replaced, grants no vote (not even a pre-vote), and any vote it gave
    // would be dropped. So `other` does not even campaign: its pre-votes find no majority,
    // and its term stays (no term inflation to unseat a leader later). Watched for ten
    // election timeouts.
    stop_node(nodes[idx(other)].take().unwrap());
    stop_node(nodes[idx(leader)].take().unwrap());
    let node = start_node(other, &ports, dirs[idx(other)].path(), dir_ids[idx(other)]);
    let first_term = block_on(node.handle.local_quorum_view()).unwrap().term;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(10 * 300) {
        let d = block_on(node.handle.local_quorum_view()).unwrap();
        assert_ne!(
            d.leader,
            Some(other),
            "won an election with the wiped node's vote: {d:?}"
        );
        assert_eq!(
            d.term, first_term,
            "campaigned without a pre-vote majority: {d:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    nodes[idx(other)] = Some(node);

    // The old leader back: a majority of the old voters decides; the wiped one still has
    // its old key on record.
    nodes[idx(leader)] = Some(start_node(
        leader,
        &ports,
        dirs[idx(leader)].path(),
        dir_ids[idx(leader)],
    ));
    let h = nodes[idx(leader)].as_ref().unwrap().handle.clone();
    let created = create_topic(&h, "with-two");
    assert!(
        matches!(created, Ok(ControllerReply::TopicCreated { .. })),
        "{created:?}"
    );
    assert_eq!(voter_keys(&h)[&wiped], Some(dir_ids[idx(wiped)]));

    // The operator replaces the voter: remove-controller, then add-controller.
    let wrong = block_on(h.call(ControllerRequest::RemoveRaftVoter {
        voter_id: wiped,
        directory_id: new_dir_id,
    }))
    .unwrap_err();
    assert_eq!(wrong.code, 127, "VOTER_NOT_FOUND: {wrong:?}");
    block_on(h.call(ControllerRequest::RemoveRaftVoter {
        voter_id: wiped,
        directory_id: dir_ids[idx(wiped)],
    }))
    .unwrap();
    assert!(!voter_keys(&h).contains_key(&wiped));
    block_on(h.call(ControllerRequest::AddRaftVoter {
        voter_id: wiped,
        directory_id: new_dir_id,
        addr: format!("127.0.0.1:{}", ports[idx(wiped)]),
        timeout_ms: 30_000,
    }))
    .unwrap();
    assert_eq!(voter_keys(&h)[&wiped], Some(new_dir_id));

    // It caught up and votes again: with the other voter down, it and the old leader decide.
    stop_node(nodes[idx(other)].take().unwrap());
    let created = create_topic(&h, "with-new-voter");
    assert!(
        matches!(created, Ok(ControllerReply::TopicCreated { .. })),
        "{created:?}"
    );
    let wh = nodes[idx(wiped)].as_ref().unwrap().handle.clone();
    wait_image(&wh, "the new voter's image", |i| {
        i.topic("with-new-voter").is_some()
    });
    for n in nodes.into_iter().flatten() {
        stop_node(n);
    }
}
