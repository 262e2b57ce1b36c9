//! What the cluster fault tests share: a real client (librdkafka, the `rdkafka` crate) for
//! Metadata, CreateTopics, produce and reads, and bounded waits. Every call is bounded by
//! a client timeout; every wait by `WAIT_MAX` and a poll count.

#![allow(dead_code)] // each test file uses its own subset

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use sluice_testkit::Cluster;

/// The longest any one condition is waited for (a loaded CI machine is slow; the
/// conditions themselves come within seconds).
pub const WAIT_MAX: Duration = Duration::from_secs(90);
/// One client call (Metadata, a read) waits at most this long.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between two polls of a condition.
pub const POLL_PAUSE: Duration = Duration::from_millis(100);

/// Polls `done` until it holds; panics naming `what` after `WAIT_MAX`.
pub fn wait_until(what: &str, done: impl FnMut() -> bool) {
    sluice_testkit::wait_for(what, WAIT_MAX, done);
}

/// `host:port,...` of the nodes that serve clients right now (running, not stopped): a
/// client bootstrapped from a stopped node waits on it for its whole timeout.
pub fn live_bootstrap(cluster: &Cluster) -> String {
    let live: Vec<String> = cluster
        .nodes()
        .iter()
        .filter(|n| n.is_running() && !n.is_stopped() && n.client_port.is_some())
        .map(|n| n.bootstrap())
        .collect();
    assert!(!live.is_empty(), "no node serves clients");
    live.join(",")
}

/// One partition as Metadata shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRow {
    pub id: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// What one Metadata answer says of the brokers and of `topic`.
#[derive(Debug, Clone, Default)]
pub struct MetadataView {
    /// The live (unfenced) brokers, sorted.
    pub brokers: Vec<i32>,
    /// `topic`'s partitions, by id; empty when it is unknown or has an error.
    pub partitions: Vec<PartitionRow>,
}

fn consumer_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", "3000")
        .set("topic.metadata.refresh.interval.ms", "200")
        .set("allow.auto.create.topics", "false");
    config
}

/// librdkafka's Metadata of `topic` (every topic for "") from `bootstrap`; None when the
/// call failed.
pub fn metadata(bootstrap: &str, topic: &str) -> Option<MetadataView> {
    let consumer: BaseConsumer = consumer_config(bootstrap).create().ok()?;
    let which = (!topic.is_empty()).then_some(topic);
    let md = consumer.fetch_metadata(which, CALL_TIMEOUT).ok()?;
    let mut brokers: Vec<i32> = md.brokers().iter().map(|b| b.id()).collect();
    brokers.sort_unstable();
    let mut partitions: Vec<PartitionRow> = md
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions())
        .map(|p| {
            let mut isr = p.isr().to_vec();
            isr.sort_unstable();
            let mut replicas = p.replicas().to_vec();
            replicas.sort_unstable();
            PartitionRow {
                id: p.id(),
                leader: p.leader(),
                replicas,
                isr,
            }
        })
        .collect();
    partitions.sort_by_key(|p| p.id);
    Some(MetadataView {
        brokers,
        partitions,
    })
}

/// Waits until Metadata from the live nodes shows `topic` with every partition as `want`
/// says; returns that view.
pub fn wait_metadata(
    cluster: &Cluster,
    topic: &str,
    what: &str,
    mut want: impl FnMut(&MetadataView) -> bool,
) -> MetadataView {
    let mut seen = None;
    wait_until(what, || {
        seen = metadata(&live_bootstrap(cluster), topic).filter(|m| want(m));
        seen.is_some()
    });
    seen.expect("waited for it")
}

/// Every partition of `view` has a leader and `replicas` in-sync replicas.
pub fn full_isrs(view: &MetadataView, partitions: usize, replicas: usize) -> bool {
    view.partitions.len() == partitions
        && view
            .partitions
            .iter()
            .all(|p| p.leader >= 0 && p.isr.len() == replicas && p.replicas.len() == replicas)
}

/// librdkafka's admin client. A forwarded decision waits on the broker while the quorum
/// elects a leader (seconds), longer than the 3 s the other clients here allow a request.
pub fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", "15000")
        .create()
        .expect("admin client")
}

/// Waits until Metadata lists every broker node that runs (a node serves clients once it
/// is registered and unfenced, but the others may not be yet: CreateTopics with their
/// replicas needs them all).
pub fn wait_brokers_registered(cluster: &Cluster) {
    let running: Vec<i32> = cluster
        .nodes()
        .iter()
        .filter(|n| n.is_running() && !n.is_stopped() && n.roles.has_broker())
        .map(|n| n.node_id)
        .collect();
    wait_until("every running broker registered", || {
        metadata(&live_bootstrap(cluster), "")
            .is_some_and(|m| running.iter().all(|b| m.brokers.contains(b)))
    });
}

/// One CreateTopics through librdkafka's admin client: Ok, or the error it ended with.
pub fn try_create_topic(bootstrap: &str, topic: &NewTopic<'_>) -> Result<(), KafkaError> {
    let options = AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(30)))
        .operation_timeout(Some(Duration::from_secs(30)));
    let results = futures_executor::block_on(admin(bootstrap).create_topics([topic], &options))?;
    for r in results {
        r.map_err(|(_, code)| KafkaError::AdminOp(code))?;
    }
    Ok(())
}

/// Creates `topic` once enough brokers registered (CreateTopics answers
/// INVALID_REPLICATION_FACTOR until then); a retry that finds it created is fine.
pub fn create_topic(cluster: &Cluster, topic: &NewTopic<'_>) {
    wait_brokers_registered(cluster);
    let mut last = None;
    wait_until("the topic to be created", || {
        match try_create_topic(&live_bootstrap(cluster), topic) {
            Ok(()) => true,
            Err(KafkaError::AdminOp(RDKafkaErrorCode::TopicAlreadyExists)) if last.is_some() => {
                true
            }
            Err(e) => {
                if last.as_ref() != Some(&e) {
                    eprintln!("CreateTopics {}: {e} (retrying)", topic.name);
                }
                last = Some(e);
                std::thread::sleep(POLL_PAUSE);
                false
            }
        }
    });
}

/// (partition, offset) → value of acknowledged records.
pub type Acked = BTreeMap<(i32, i64), Vec<u8>>;

#[derive(Default)]
struct Outcomes {
    acked: Mutex<Acked>,
    failed: Mutex<Vec<KafkaError>>,
}

struct Collect(Arc<Outcomes>);

impl ClientContext for Collect {}

impl ProducerContext for Collect {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                let value = m.payload().unwrap_or_default().to_vec();
                self.0
                    .acked
                    .lock()
                    .unwrap()
                    .insert((m.partition(), m.offset()), value);
            }
            Err((e, _)) => self.0.failed.lock().unwrap().push(e.clone()),
        }
    }
}

/// Produces `values` (to partition `partition`, or spread by librdkafka when None) with
/// the producer settings `extra` over acks=all; waits for every outcome (bounded by the
/// producer's `message.timeout.ms`, default here 30 s). Returns what was acknowledged and
/// the errors of the rest.
pub fn produce(
    bootstrap: &str,
    topic: &str,
    partition: Option<i32>,
    values: &[String],
    extra: &[(&str, &str)],
) -> (Acked, Vec<KafkaError>) {
    let outcomes = Arc::new(Outcomes::default());
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .set("socket.timeout.ms", "3000")
        .set("topic.metadata.refresh.interval.ms", "200");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    let producer: ThreadedProducer<Collect> = config
        .create_with_context(Collect(outcomes.clone()))
        .expect("producer");
    for (i, value) in values.iter().enumerate() {
        let key = i.to_string();
        let mut record = BaseRecord::to(topic).key(&key).payload(value);
        if let Some(p) = partition {
            record = record.partition(p);
        }
        producer.send(record).map_err(|(e, _)| e).expect("queued");
    }
    // message.timeout.ms bounds every record's outcome; flush waits for all of them.
    producer
        .flush(Duration::from_secs(120))
        .expect("every outcome known");
    drop(producer);
    let acked = std::mem::take(&mut *outcomes.acked.lock().unwrap());
    let failed = std::mem::take(&mut *outcomes.failed.lock().unwrap());
    (acked, failed)
}

/// `count` distinct values named by `tag`.
pub fn values(tag: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{tag}-{i}")).collect()
}

/// Reads `partitions` of `topic` from the beginning until each reached its offset in
/// `ends` (exclusive); (partition, offset) → value.
pub fn read_until(bootstrap: &str, topic: &str, ends: &BTreeMap<i32, i64>) -> Acked {
    let consumer: BaseConsumer = consumer_config(bootstrap)
        .set("group.id", "cluster-tests-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for p in ends.keys() {
        assignment
            .add_partition_offset(topic, *p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).expect("assign");
    let mut seen = Acked::new();
    let done = |seen: &Acked| {
        ends.iter()
            .all(|(p, end)| *end == 0 || seen.contains_key(&(*p, end - 1)))
    };
    let start = Instant::now();
    while !done(&seen) {
        assert!(
            start.elapsed() < WAIT_MAX,
            "read {} records of {topic}, short of {ends:?}",
            seen.len()
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let value = m.payload().unwrap_or_default().to_vec();
                seen.insert((m.partition(), m.offset()), value);
            }
            Some(Err(e)) => eprintln!("read {topic}: {e}"),
            None => {}
        }
    }
    seen
}

/// The end offset (one past the last) of each partition holding `acked` records.
pub fn ends_of(acked: &Acked) -> BTreeMap<i32, i64> {
    let mut ends = BTreeMap::new();
    for (p, o) in acked.keys() {
        let end = ends.entry(*p).or_insert(0);
        *end = (*end).max(o + 1);
    }
    ends
}

/// Every acknowledged record is read back at its offset with its value.
pub fn assert_all_read(bootstrap: &str, topic: &str, acked: &Acked) {
    let read = read_until(bootstrap, topic, &ends_of(acked));
    for (at, value) in acked {
        assert_eq!(
            read.get(at),
            Some(value),
            "acknowledged record at {at:?} of {topic} not read back"
        );
    }
}

/// The active controller (the metadata quorum's leader) as the nodes' logs say: (node id,
/// term) of the highest term claimed, waited for. (librdkafka has no DescribeQuorum; a
/// later election than the one read here is caught by `successor`.)
pub fn active_controller(cluster: &Cluster) -> (i32, u64) {
    let mut claims = Vec::new();
    wait_until("an active controller", || {
        claims = active_controller_claims(cluster);
        !claims.is_empty()
    });
    claims[0]
}

/// After the active controller `killed` (of `term`) died: the node that claims a later
/// term. Asserting it shows `killed` really led: no election follows a follower's death.
pub fn successor(cluster: &Cluster, (killed, term): (i32, u64)) -> (i32, u64) {
    let claims = active_controller_claims(cluster);
    assert!(
        claims
            .first()
            .is_some_and(|(n, t)| *n != killed && *t > term),
        "a new active controller after node {killed} (term {term}): {claims:?}"
    );
    claims[0]
}

/// The `term` of the newest "this node is the active controller" line each node logged
/// (its current process): (node id, term), highest term first.
fn active_controller_claims(cluster: &Cluster) -> Vec<(i32, u64)> {
    let mut claims: Vec<(i32, u64)> = cluster
        .nodes()
        .iter()
        .filter(|n| n.is_running())
        .filter_map(|n| {
            let term = n
                .log()
                .iter()
                .filter(|l| l.contains("this node is the active controller"))
                .filter_map(|l| {
                    let at = l.find("term=")? + "term=".len();
                    l[at..]
                        .split(|c: char| !c.is_ascii_digit())
                        .next()?
                        .parse()
                        .ok()
                })
                .max()?;
            Some((n.node_id, term))
        })
        .collect();
    claims.sort_by_key(|c| std::cmp::Reverse(c.1));
    claims
}

/// `controllers` controller-only nodes (ids 1..) then `brokers` broker-only nodes, with
/// the short session (3 s, heartbeats every 500 ms) and one shard per node.
pub fn split_roles(controllers: i32, brokers: i32) -> sluice_testkit::ClusterBuilder {
    let mut b = Cluster::builder((controllers + brokers) as usize);
    for id in 1..=controllers + brokers {
        let roles = if id <= controllers {
            sluice_testkit::Roles::Controller
        } else {
            sluice_testkit::Roles::Broker
        };
        b = b.roles(id, roles);
    }
    b.property("broker.session.timeout.ms", "3000")
        .property("broker.heartbeat.interval.ms", "500")
        .property("num.shards", "1")
}

/// The Prometheus text of `node`'s `metrics.listener` (started with
/// `metrics.listener=127.0.0.1:0`: the bound address is read back from its log); `None`
/// when it does not answer.
pub fn scrape_metrics(node: &sluice_testkit::Node) -> Option<String> {
    use std::io::{Read, Write};
    let line = node
        .log()
        .into_iter()
        .rev()
        .find(|l| l.contains("metrics on http://"))?;
    let addr = line
        .split("metrics on http://")
        .nth(1)?
        .split('/')
        .next()?
        .to_string();
    let mut s = std::net::TcpStream::connect(&addr).ok()?;
    s.set_read_timeout(Some(CALL_TIMEOUT)).ok()?;
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The value of `series` (name and labels, e.g. `m{topic="t"}`) in a scrape; `None` when
/// absent.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?.strip_prefix(' ')?;
        rest.trim().parse().ok()
    })
}
