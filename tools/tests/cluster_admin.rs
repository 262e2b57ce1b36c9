//! The cluster's admin surface against three real `sluiced` processes (testkit's
//! `Cluster`): DescribeCluster, DescribeQuorum, DescribeTopicPartitions and ElectLeaders
//! through net's client (the framing every tool uses), and the CLI commands built on them —
//! `metadata-quorum describe --status|--replication`, `cluster`, `leader-election`,
//! `topics --describe --under-replicated-partitions|--under-min-isr-partitions|
//! --unavailable-partitions` — while a broker is down and after it is back; UNCLEAN elections
//! of a partition whose ISR died; the active controller's auto leader rebalance; and what a
//! single node answers.
//!
//! Timeouts are shortened (session 3 s); every wait is bounded by `WAIT_MAX` and checks a
//! state, never a duration.

use std::time::Duration;

use kafka_protocol::messages::DescribeTopicPartitionsRequest;
use sluice_net::client::cluster::{QuorumInfo, TopicDescription};
use sluice_net::client::Client;
use sluice_testkit::{sluice_path, wait_for, Cluster};

const WAIT_MAX: Duration = Duration::from_secs(90);
const TOPIC: &str = "admin";

fn cluster(rebalance: &[(&str, &str)]) -> Cluster {
    let mut b = Cluster::builder(3)
        .property("broker.session.timeout.ms", "3000")
        .property("broker.heartbeat.interval.ms", "500")
        .property("replica.lag.time.max.ms", "3000")
        .property("offsets.topic.num.partitions", "1")
        .property("num.shards", "1");
    for (k, v) in rebalance {
        b = b.property(k, v);
    }
    b.start()
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    compio::runtime::Runtime::new().unwrap().block_on(f)
}

/// `sluice ARGS`: (success, stdout, stderr).
fn sluice(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(sluice_path())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn live_bootstrap(cluster: &Cluster) -> String {
    let nodes = cluster.nodes().iter().filter(|n| n.is_running());
    nodes.map(|n| n.bootstrap()).collect::<Vec<_>>().join(",")
}

/// Runs `call` with a client of a running node; None when that failed.
fn with_client<T>(
    cluster: &Cluster,
    call: impl AsyncFnOnce(&mut Client) -> sluice_net::client::error::Result<T>,
) -> Option<T> {
    let servers = live_bootstrap(cluster);
    block_on(async move {
        let mut client = Client::connect(&servers).await.ok()?;
        call(&mut client).await.ok()
    })
}

fn topic(cluster: &Cluster) -> Option<TopicDescription> {
    let topics = with_client(cluster, async |c| {
        c.describe_topic_partitions(&[TOPIC]).await
    })?;
    topics
        .into_iter()
        .find(|t| t.name == TOPIC && t.error.is_none())
}

/// (leader, replicas, isr) of partition `p`.
fn partition(cluster: &Cluster, p: i32) -> Option<(i32, Vec<i32>, Vec<i32>)> {
    let t = topic(cluster)?;
    let d = t.partitions.iter().find(|d| d.partition == p)?;
    Some((d.leader_id, d.replicas.clone(), d.isr.clone()))
}

/// Metadata's offline replicas of each partition of the topic, in partition order.
fn metadata_offline_replicas(cluster: &Cluster) -> Vec<Vec<i32>> {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::{MetadataRequest, TopicName};
    let servers = live_bootstrap(cluster);
    let response = block_on(async {
        let mut client = Client::connect(&servers).await.unwrap();
        let topic =
            MetadataRequestTopic::default().with_name(Some(TopicName(TOPIC.to_string().into())));
        let request = MetadataRequest::default().with_topics(Some(vec![topic]));
        client.bootstrap().call(&request).await.unwrap()
    });
    let mut partitions = response.topics[0].partitions.clone();
    partitions.sort_by_key(|p| p.partition_index);
    partitions
        .iter()
        .map(|p| p.offline_replicas.iter().map(|b| b.0).collect())
        .collect()
}

fn create_topic(cluster: &Cluster, configs: &[&str]) {
    let servers = cluster.bootstrap_servers();
    let mut args = vec![
        "topics",
        "--bootstrap-server",
        &servers,
        "--create",
        "--topic",
        TOPIC,
        "--partitions",
        "3",
        "--replication-factor",
        "3",
    ];
    for c in configs {
        args.extend(["--config", c]);
    }
    wait_for(
        "three registered brokers to create the topic",
        WAIT_MAX,
        || sluice(&args).0,
    );
    wait_for("full ISRs", WAIT_MAX, || {
        topic(cluster).is_some_and(|t| t.partitions.iter().all(|p| p.isr.len() == 3))
    });
}

/// `sluice log-dirs --describe ARGS`: Kafka's two lines, then its JSON line parsed.
fn log_dirs(bootstrap: &str, args: &[&str]) -> (String, serde_json::Value) {
    let mut all = vec!["log-dirs", "--describe", "--bootstrap-server", bootstrap];
    all.extend(args);
    let (ok, out, err) = sluice(&all);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], "Querying brokers for log directories information");
    let json = serde_json::from_str(lines[2]).unwrap_or_else(|e| panic!("{e}: {out}"));
    (lines[1].to_string(), json)
}

/// Per broker id, the partitions (`topic-partition`) its log dirs hold, sorted.
fn log_dir_partitions(json: &serde_json::Value) -> Vec<(i64, Vec<String>)> {
    assert_eq!(json["version"], 1, "{json}");
    let brokers = json["brokers"].as_array().unwrap();
    brokers
        .iter()
        .map(|b| {
            let mut names: Vec<String> = Vec::new();
            for dir in b["logDirs"].as_array().unwrap() {
                assert!(dir["error"].is_null(), "{json}");
                assert!(dir["logDir"].as_str().is_some_and(|d| d.starts_with('/')));
                for p in dir["partitions"].as_array().unwrap() {
                    assert_eq!(
                        (&p["offsetLag"], &p["isFuture"]),
                        (&0.into(), &false.into())
                    );
                    assert!(p["size"].as_i64().is_some_and(|s| s >= 0), "{json}");
                    names.push(p["partition"].as_str().unwrap().to_string());
                }
            }
            names.sort();
            (b["broker"].as_i64().unwrap(), names)
        })
        .collect()
}

fn quorum(cluster: &Cluster) -> Option<QuorumInfo> {
    with_client(cluster, async |c| c.describe_quorum().await)
}

/// DescribeQuorum from every node names the same leader, three voters that all hold what
/// the leader has, with fetch times, and no observers (every node is a voter).
fn check_quorum(cluster: &Cluster) -> QuorumInfo {
    wait_for("every voter caught up with fetch times", WAIT_MAX, || {
        quorum(cluster).is_some_and(|q| {
            let leader = q.voters.iter().find(|v| v.id == q.leader_id);
            leader.is_some_and(|l| {
                q.voters.iter().all(|v| {
                    v.log_end_offset == l.log_end_offset
                        && v.last_fetch_timestamp > 0
                        && v.last_caught_up_timestamp > 0
                })
            })
        })
    });
    let q = quorum(cluster).unwrap();
    let mut ids: Vec<i32> = q.voters.iter().map(|v| v.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2, 3], "{q:?}");
    assert!(q.observers.is_empty(), "{q:?}");
    assert!(q.leader_epoch >= 1 && q.high_watermark > 0, "{q:?}");
    assert_eq!(q.nodes.len(), 3, "v2 lists the voters' endpoints: {q:?}");
    for node in cluster.nodes() {
        let from = block_on(async {
            let mut c = Client::connect(&node.bootstrap()).await.unwrap();
            c.describe_quorum().await.unwrap()
        });
        assert_eq!(
            from.leader_id, q.leader_id,
            "node {}: {from:?}",
            node.node_id
        );
    }
    q
}

fn check_describe_cluster(cluster: &Cluster) {
    let d = with_client(cluster, async |c| c.describe_cluster().await).unwrap();
    assert_eq!(d.cluster_id, cluster.cluster_id);
    let mut ids: Vec<i32> = d.brokers.iter().map(|b| b.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2, 3], "{d:?}");
    assert!(ids.contains(&d.controller_id), "a live broker: {d:?}");
    for b in &d.brokers {
        let node = cluster.node(b.id);
        assert_eq!(format!("{}:{}", b.host, b.port), node.bootstrap(), "{d:?}");
        assert!(!b.fenced, "{d:?}");
    }
}

/// A page of two partitions ends with a cursor at partition 2; the next page from it
/// holds the last one and no cursor.
fn check_cursor(cluster: &Cluster) {
    let servers = live_bootstrap(cluster);
    let (first, second) = block_on(async {
        let mut client = Client::connect(&servers).await.unwrap();
        let mut request = DescribeTopicPartitionsRequest::default();
        request.topics = vec![
            kafka_protocol::messages::describe_topic_partitions_request::TopicRequest::default()
                .with_name(kafka_protocol::messages::TopicName(
                    TOPIC.to_string().into(),
                )),
        ];
        request.response_partition_limit = 2;
        let first = client.bootstrap().call(&request).await.unwrap();
        let next = first
            .next_cursor
            .clone()
            .expect("a cursor after two partitions");
        request.cursor = Some(
            kafka_protocol::messages::describe_topic_partitions_request::Cursor::default()
                .with_topic_name(next.topic_name)
                .with_partition_index(next.partition_index),
        );
        let second = client.bootstrap().call(&request).await.unwrap();
        (first, second)
    });
    let indexes = |r: &kafka_protocol::messages::DescribeTopicPartitionsResponse| -> Vec<i32> {
        r.topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.partition_index))
            .collect()
    };
    assert_eq!(indexes(&first), vec![0, 1]);
    assert_eq!(first.next_cursor.as_ref().unwrap().partition_index, 2);
    assert_eq!(indexes(&second), vec![2]);
    assert!(second.next_cursor.is_none());
    let p = &first.topics[0].partitions[0];
    assert_eq!(p.eligible_leader_replicas.as_deref(), Some(&[][..]));
    assert_eq!(p.last_known_elr.as_deref(), Some(&[][..]));
}

fn check_quorum_cli(cluster: &Cluster, q: &QuorumInfo) {
    let servers = live_bootstrap(cluster);
    let (ok, status, err) = sluice(&[
        "metadata-quorum",
        "--bootstrap-server",
        &servers,
        "describe",
        "--status",
    ]);
    assert!(ok, "{err}");
    assert!(
        status.contains(&format!("ClusterId:              {}\n", cluster.cluster_id)),
        "{status}"
    );
    assert!(
        status.contains(&format!("LeaderId:               {}\n", q.leader_id)),
        "{status}"
    );
    assert!(status.contains("MaxFollowerLag:         "), "{status}");
    for id in 1..=3 {
        assert!(
            status.contains(&format!("{{\"id\": {id}, \"directoryId\": ")),
            "{status}"
        );
    }
    assert!(
        status.contains("\"endpoints\": [\"CONTROLLER://127.0.0.1:"),
        "{status}"
    );
    assert!(status.contains("CurrentObservers:       []"), "{status}");
    let (ok, table, err) = sluice(&[
        "metadata-quorum",
        "--bootstrap-server",
        &servers,
        "describe",
        "--replication",
    ]);
    assert!(ok, "{err}");
    eprintln!("{status}{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("NodeId\tDirectoryId"), "{table}");
    assert_eq!(lines.len(), 4, "{table}");
    assert!(
        lines[1].starts_with(&format!("{:<6}\t", q.leader_id)) && lines[1].contains("Leader"),
        "{table}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.contains("Follower")).count(),
        2,
        "{table}"
    );
}

fn elect(cluster: &Cluster, args: &[&str]) -> (bool, String) {
    let servers = live_bootstrap(cluster);
    let mut all = vec!["leader-election", "--bootstrap-server", &servers];
    all.extend(args);
    let (ok, out, err) = sluice(&all);
    (ok, format!("{out}{err}"))
}

/// `topics --describe` with a report flag: the partition lines printed.
fn report(cluster: &Cluster, flag: &str) -> Vec<String> {
    let servers = live_bootstrap(cluster);
    let (ok, out, err) = sluice(&[
        "topics",
        "--bootstrap-server",
        &servers,
        "--describe",
        "--topic",
        TOPIC,
        flag,
    ]);
    assert!(ok, "{err}");
    assert!(
        !out.contains("PartitionCount"),
        "no topic line with a report: {out}"
    );
    out.lines().map(str::to_string).collect()
}

#[test]
fn admin_apis_and_tools_see_a_broker_leave_and_come_back() {
    let mut cluster = cluster(&[("auto.leader.rebalance.enable", "false")]);
    create_topic(&cluster, &["min.insync.replicas=3"]);
    check_describe_cluster(&cluster);
    let q = check_quorum(&cluster);
    check_quorum_cli(&cluster, &q);
    check_cursor(&cluster);
    assert!(report(&cluster, "--under-replicated-partitions").is_empty());
    // Every broker holds a replica of every partition (replication factor 3).
    let (received, json) = log_dirs(&cluster.bootstrap_servers(), &["--topic-list", TOPIC]);
    assert_eq!(
        received,
        "Received log directory information from brokers 1,2,3"
    );
    let names: Vec<String> = (0..3).map(|p| format!("{TOPIC}-{p}")).collect();
    let expected: Vec<(i64, Vec<String>)> = (1..=3).map(|b| (b, names.clone())).collect();
    assert_eq!(log_dir_partitions(&json), expected, "{json}");
    let (_, json) = log_dirs(&cluster.bootstrap_servers(), &["--broker-list", "2"]);
    let only = log_dir_partitions(&json);
    assert!(
        only.len() == 1 && only[0].0 == 2 && only[0].1.contains(&names[1]),
        "{json}"
    );

    // Every partition leads from its preferred replica: nothing to elect.
    let (ok, out) = elect(
        &cluster,
        &["--election-type", "preferred", "--all-topic-partitions"],
    );
    assert!(ok && !out.contains("Successfully"), "{out}");
    let (ok, out) = elect(
        &cluster,
        &[
            "--election-type",
            "UNCLEAN",
            "--topic",
            TOPIC,
            "--partition",
            "1",
        ],
    );
    assert!(
        ok && out.contains(&format!(
            "Valid replica already elected for partitions {TOPIC}-1"
        )),
        "{out}"
    );
    let (ok, out) = elect(
        &cluster,
        &[
            "--election-type",
            "preferred",
            "--topic",
            "no-such",
            "--partition",
            "0",
        ],
    );
    assert!(
        !ok && out.contains("for partition: no-such-0: UnknownTopicOrPartition"),
        "{out}"
    );

    // The preferred leader of partition 0 dies: another replica leads, it is fenced.
    let (_, replicas, _) = partition(&cluster, 0).unwrap();
    let preferred = replicas[0];
    cluster.node_mut(preferred).kill();
    wait_for(
        "a new leader of partition 0 and the dead broker out of the ISR",
        WAIT_MAX,
        || {
            partition(&cluster, 0)
                .is_some_and(|(l, _, isr)| l >= 0 && l != preferred && !isr.contains(&preferred))
        },
    );
    wait_for("the dead broker fenced", WAIT_MAX, || {
        with_client(&cluster, async |c| c.describe_cluster().await)
            .is_some_and(|d| d.brokers.iter().any(|b| b.id == preferred && b.fenced))
    });
    let t = topic(&cluster).unwrap();
    assert!(
        t.partitions
            .iter()
            .all(|p| p.offline_replicas == vec![preferred]),
        "{t:?}"
    );
    assert_eq!(
        metadata_offline_replicas(&cluster),
        vec![vec![preferred]; 3]
    );
    let under = report(&cluster, "--under-replicated-partitions");
    assert_eq!(under.len(), 3, "{under:?}");
    assert_eq!(report(&cluster, "--under-min-isr-partitions").len(), 3);
    assert!(
        report(&cluster, "--at-min-isr-partitions").is_empty(),
        "ISR 2, min 3"
    );
    assert!(report(&cluster, "--unavailable-partitions").is_empty());
    // A fenced broker is not among those kafka-log-dirs can ask.
    let dead = preferred.to_string();
    let (ok, _, err) = sluice(&[
        "log-dirs",
        "--describe",
        "--bootstrap-server",
        &live_bootstrap(&cluster),
        "--broker-list",
        &dead,
    ]);
    assert!(
        !ok && err.contains(&format!(
            "ERROR: The given brokers do not exist from --broker-list: {dead}."
        )),
        "{err}"
    );
    let (ok, summary, err) = sluice(&["cluster", "--bootstrap-server", &live_bootstrap(&cluster)]);
    assert!(ok, "{err}");
    eprintln!("{summary}{}", under.join("\n"));
    assert!(summary.contains("3 broker(s), 2 alive"), "{summary}");
    assert!(summary.contains("fenced"), "{summary}");
    let (ok, out) = elect(
        &cluster,
        &[
            "--election-type",
            "PREFERRED",
            "--topic",
            TOPIC,
            "--partition",
            "0",
        ],
    );
    assert!(!ok && out.contains("PreferredLeaderNotAvailable"), "{out}");

    // Back and in sync: a preferred election gives it partition 0 again.
    cluster.node_mut(preferred).restart();
    wait_for("the restarted broker back in every ISR", WAIT_MAX, || {
        topic(&cluster).is_some_and(|t| {
            t.partitions
                .iter()
                .all(|p| p.isr.len() == 3 && p.offline_replicas.is_empty())
        })
    });
    assert_eq!(
        report(&cluster, "--at-min-isr-partitions").len(),
        3,
        "ISR 3, min 3"
    );
    let (ok, out) = elect(
        &cluster,
        &[
            "--election-type",
            "preferred",
            "--topic",
            TOPIC,
            "--partition",
            "0",
        ],
    );
    assert!(
        ok && out.contains(&format!(
            "Successfully completed leader election (PREFERRED) for partitions {TOPIC}-0"
        )),
        "{out}"
    );
    wait_for(
        "the preferred replica leading partition 0",
        WAIT_MAX,
        || partition(&cluster, 0).is_some_and(|(l, _, _)| l == preferred),
    );
    let (ok, summary, _) = sluice(&["cluster", "--bootstrap-server", &live_bootstrap(&cluster)]);
    assert!(ok && summary.contains("3 broker(s), 3 alive"), "{summary}");
    assert!(summary.contains("Active controller: "), "{summary}");
}

#[test]
fn the_active_controller_restores_preferred_leaders() {
    let mut cluster = cluster(&[
        ("leader.imbalance.check.interval.seconds", "1"),
        ("leader.imbalance.per.broker.percentage", "0"),
    ]);
    create_topic(&cluster, &[]);
    let (_, replicas, _) = partition(&cluster, 0).unwrap();
    let preferred = replicas[0];
    cluster.node_mut(preferred).kill();
    wait_for("another leader of partition 0", WAIT_MAX, || {
        partition(&cluster, 0).is_some_and(|(l, _, _)| l >= 0 && l != preferred)
    });
    cluster.node_mut(preferred).restart();
    wait_for(
        "the preferred replica leading partition 0 again",
        WAIT_MAX,
        || partition(&cluster, 0).is_some_and(|(l, _, _)| l == preferred),
    );
    let logged = cluster
        .nodes()
        .iter()
        .any(|n| n.log_contains("preferred replicas lead again"));
    assert!(logged, "the rebalance is logged by the active controller");
}

/// Creates `name` with one partition on `replicas` (CreateTopics' assignments).
fn create_assigned(cluster: &Cluster, name: &str, replicas: &[i32]) {
    use kafka_protocol::messages::create_topics_request::{
        CreatableReplicaAssignment, CreatableTopic,
    };
    use kafka_protocol::messages::{BrokerId, CreateTopicsRequest, TopicName};
    let servers = live_bootstrap(cluster);
    let assignment = CreatableReplicaAssignment::default()
        .with_partition_index(0)
        .with_broker_ids(replicas.iter().map(|b| BrokerId(*b)).collect());
    let topic = CreatableTopic::default()
        .with_name(TopicName(name.to_string().into()))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
        .with_assignments(vec![assignment]);
    let request = CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(30_000);
    wait_for("the assigned topic created", WAIT_MAX, || {
        block_on(async {
            let Ok(mut client) = Client::connect(&servers).await else {
                return false;
            };
            let Ok(r) = client.bootstrap().call(&request).await else {
                return false;
            };
            r.topics.iter().all(|t| t.error_code == 0)
        })
    });
}

/// (leader, isr) of partition 0 of `name`.
fn leader_and_isr(cluster: &Cluster, name: &str) -> Option<(i32, Vec<i32>)> {
    let topics = with_client(cluster, async |c| {
        c.describe_topic_partitions(&[name]).await
    })?;
    let t = topics
        .into_iter()
        .find(|t| t.name == name && t.error.is_none())?;
    let p = t.partitions.into_iter().find(|p| p.partition == 0)?;
    Some((p.leader_id, p.isr))
}

/// UNCLEAN elections against real processes: voters 1-3, broker-only node 4. A partition on
/// [4, 3] loses follower 3 (ISR {4}), then its last ISR member 4: it has no leader and
/// stays so (no unclean election by default). While no replica is alive, UNCLEAN answers
/// ELIGIBLE_LEADERS_NOT_AVAILABLE; once 3 is back (alive, out of the ISR) PREFERRED cannot
/// help (4 is down) and UNCLEAN makes 3 the leader with ISR {3}.
#[test]
fn unclean_election_gives_a_leaderless_partition_an_out_of_sync_leader() {
    let mut cluster = Cluster::builder(4)
        .roles(4, sluice_testkit::Roles::Broker)
        .property("broker.session.timeout.ms", "3000")
        .property("broker.heartbeat.interval.ms", "500")
        .property("replica.lag.time.max.ms", "3000")
        .property("offsets.topic.num.partitions", "1")
        .property("auto.leader.rebalance.enable", "false")
        .property("num.shards", "1")
        .start();
    const T: &str = "unclean";
    // Every broker alive first: a replica on a fenced broker starts outside the ISR.
    wait_for("four alive brokers", WAIT_MAX, || {
        with_client(&cluster, async |c| c.describe_cluster().await)
            .is_some_and(|d| d.brokers.iter().filter(|b| !b.fenced).count() == 4)
    });
    create_assigned(&cluster, T, &[4, 3]);
    wait_for("4 leading with a full ISR", WAIT_MAX, || {
        leader_and_isr(&cluster, T).is_some_and(|(l, isr)| l == 4 && isr.len() == 2)
    });
    cluster.node_mut(3).kill();
    wait_for("3 out of the ISR", WAIT_MAX, || {
        leader_and_isr(&cluster, T).is_some_and(|(l, isr)| l == 4 && isr == vec![4])
    });
    cluster.node_mut(4).kill();
    wait_for("no leader", WAIT_MAX, || {
        leader_and_isr(&cluster, T).is_some_and(|(l, _)| l == -1)
    });
    let args = [
        "--election-type",
        "UNCLEAN",
        "--topic",
        T,
        "--partition",
        "0",
    ];
    let (ok, out) = elect(&cluster, &args);
    assert!(!ok && out.contains("EligibleLeadersNotAvailable"), "{out}");

    cluster.node_mut(3).restart();
    wait_for("3 registered and unfenced", WAIT_MAX, || {
        with_client(&cluster, async |c| c.describe_cluster().await)
            .is_some_and(|d| d.brokers.iter().any(|b| b.id == 3 && !b.fenced))
    });
    assert_eq!(
        leader_and_isr(&cluster, T),
        Some((-1, vec![4])),
        "still offline"
    );
    let (ok, out) = elect(
        &cluster,
        &[
            "--election-type",
            "PREFERRED",
            "--topic",
            T,
            "--partition",
            "0",
        ],
    );
    assert!(!ok && out.contains("PreferredLeaderNotAvailable"), "{out}");
    let (ok, out) = elect(&cluster, &args);
    assert!(
        ok && out.contains(&format!(
            "Successfully completed leader election (UNCLEAN) for partitions {T}-0"
        )),
        "{out}"
    );
    wait_for("3 leading after the unclean election", WAIT_MAX, || {
        leader_and_isr(&cluster, T) == Some((3, vec![3]))
    });
}

/// A single node has no metadata quorum: it does not advertise DescribeQuorum (the tool
/// says so), DescribeCluster lists itself as broker and controller, and every partition's
/// only replica already leads.
#[test]
fn a_single_node_answers_the_admin_apis_for_itself() {
    let broker = sluice_testkit::Broker::start_temp(&[]);
    let b = broker.bootstrap();
    let (ok, _, err) = sluice(&[
        "topics",
        "--bootstrap-server",
        &b,
        "--create",
        "--topic",
        "solo",
        "--partitions",
        "2",
    ]);
    assert!(ok, "{err}");
    let (ok, summary, err) = sluice(&["cluster", "--bootstrap-server", &b]);
    assert!(ok, "{err}");
    assert!(summary.contains("1 broker(s), 1 alive"), "{summary}");
    assert!(summary.contains("Metadata quorum: none"), "{summary}");
    let (ok, _, err) = sluice(&[
        "metadata-quorum",
        "--bootstrap-server",
        &b,
        "describe",
        "--status",
    ]);
    assert!(!ok && err.contains("DescribeQuorum"), "{err}");
    let (ok, out, err) = sluice(&[
        "leader-election",
        "--bootstrap-server",
        &b,
        "--election-type",
        "preferred",
        "--topic",
        "solo",
        "--partition",
        "1",
    ]);
    assert!(
        ok && out == "Valid replica already elected for partitions solo-1\n",
        "{out}{err}"
    );
    let d = block_on(async {
        let mut c = Client::connect(&b).await.unwrap();
        c.describe_cluster().await.unwrap()
    });
    assert_eq!(d.brokers.len(), 1, "{d:?}");
    assert_eq!(d.controller_id, d.brokers[0].id, "{d:?}");
    let topics = block_on(async {
        let mut c = Client::connect(&b).await.unwrap();
        c.describe_topic_partitions(&["solo", "missing"])
            .await
            .unwrap()
    });
    assert_eq!(topics.len(), 2, "{topics:?}");
    assert_eq!(topics[0].name, "missing");
    assert_eq!(
        topics[0].error,
        Some(kafka_protocol::error::ResponseError::UnknownTopicOrPartition)
    );
    assert_eq!(topics[1].partitions.len(), 2, "{topics:?}");
    let (received, json) = log_dirs(&b, &["--topic-list", "solo"]);
    let id = d.brokers[0].id;
    assert_eq!(
        received,
        format!("Received log directory information from brokers {id}")
    );
    let solo = vec!["solo-0".to_string(), "solo-1".to_string()];
    assert_eq!(
        log_dir_partitions(&json),
        vec![(i64::from(id), solo)],
        "{json}"
    );
    let (ok, _, err) = sluice(&[
        "log-dirs",
        "--describe",
        "--bootstrap-server",
        &b,
        "--broker-list",
        "7",
    ]);
    assert!(
        !ok && err.contains(&format!(
            "ERROR: The given brokers do not exist from --broker-list: 7. Current existent brokers: {id}"
        )),
        "{err}"
    );
}
