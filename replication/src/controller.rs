//! The active controller: the one place that decides. It runs on the quorum's leader, takes
//! one command at a time from a bounded queue (so decisions never interleave), computes the
//! records from the image it has applied, and proposes them through Raft; a command is
//! answered only once its records are committed and applied.
//!
//! Liveness: brokers heartbeat every `broker.heartbeat.interval.ms`; a broker silent for
//! `broker.session.timeout.ms` is fenced. A new active controller gives every broker a full
//! session from the moment it took over (it has no older heartbeats to trust). Fencing
//! removes the broker from every ISR and elects new leaders only from the ISR (Kafka's rule:
//! no leases; two leaders can never both acknowledge `acks=all` writes).
//!
//! Gossip only hastens this: a broker that SWIM gossip declared down, from which this
//! controller has not heard a heartbeat since, and that does not answer on its listener
//! either (`liveness`: gossip's UDP may be cut while TCP flows), is fenced at once — also
//! right after a controller takes over, since it grants the full session only to brokers
//! gossip does not know to be down.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use crate::errors;
use crate::gossip::GossipView;
use crate::image::{BrokerState, MetadataImage};
use crate::placement;
use crate::quorum::progress::{wall_clock_ms, FetchProgress, ProgressMap};
use crate::quorum::Raft;
use crate::records::{
    BrokerId, MetadataRecord, PartitionChange, PartitionRecord, RecordBatch, NO_LEADER,
    NO_UNCLEAN_EPOCH, UNCLEAN_ELECTION_REASON,
};
use crate::rpc::{ControllerError, ControllerReply, ControllerRequest, ControllerResult};

pub mod elections;
pub mod liveness;
pub mod reassignment;
pub use elections::{elect_leaders, imbalanced_preferred_elections};

/// Controller commands waiting at most.
pub const CONTROLLER_QUEUE_MAX: usize = 1024;
/// How often the controller checks sessions and leaderless partitions.
pub const CONTROLLER_TICK_MS: u64 = 100;
/// Producer ids handed to a broker per request (Kafka's `ProducerIdsBlock` size).
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;
/// Partitions one topic may have.
pub const TOPIC_PARTITIONS_MAX: i32 = 100_000;

#[derive(Clone, Debug)]
pub struct ControllerConfig {
    pub node_id: BrokerId,
    pub session_timeout_ms: u64,
    /// Broker default for `unclean.leader.election.enable` (topics may override).
    pub unclean_leader_election: bool,
    /// `auto.leader.rebalance.enable` (None: false) and its schedule.
    pub leader_imbalance: Option<LeaderImbalance>,
}

/// Kafka's `leader.imbalance.check.interval.seconds` and
/// `leader.imbalance.per.broker.percentage`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderImbalance {
    pub check_interval_ms: u64,
    pub per_broker_percentage: u32,
}

pub type Command = (ControllerRequest, oneshot::Sender<ControllerResult>);

pub struct Controller {
    raft: Raft,
    image: watch::Receiver<Arc<MetadataImage>>,
    config: ControllerConfig,
    rx: mpsc::Receiver<Command>,
    /// Last heartbeat per broker, on this controller's clock (a new active controller
    /// starts every broker's session at its takeover).
    heartbeats: HashMap<BrokerId, Instant>,
    /// Last heartbeat or registration actually received per broker (not the takeover grant).
    heard: HashMap<BrokerId, Instant>,
    gossip: watch::Receiver<GossipView>,
    /// Brokers gossip declared down, asked directly before they are fenced for it.
    probes: liveness::Probes,
    /// The term in which this node became a ready leader (applied everything committed).
    ready_term: Option<u64>,
    /// Observers' heartbeats (their applied index), for DescribeQuorum.
    observers: Arc<watch::Sender<ProgressMap>>,
    /// When the next leader-imbalance check is due.
    next_rebalance: Instant,
}

fn err(code: i16, message: impl Into<String>) -> ControllerResult {
    ControllerResult::Err(ControllerError {
        code,
        message: message.into(),
    })
}

impl Controller {
    pub fn new(
        raft: Raft,
        image: watch::Receiver<Arc<MetadataImage>>,
        gossip: watch::Receiver<GossipView>,
        config: ControllerConfig,
        observers: Arc<watch::Sender<ProgressMap>>,
    ) -> (Controller, mpsc::Sender<Command>) {
        let (tx, rx) = mpsc::channel(CONTROLLER_QUEUE_MAX);
        let c = Controller {
            raft,
            image,
            config,
            rx,
            heartbeats: HashMap::new(),
            heard: HashMap::new(),
            gossip,
            probes: liveness::Probes::default(),
            ready_term: None,
            observers,
            next_rebalance: Instant::now(),
        };
        (c, tx)
    }

    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(CONTROLLER_TICK_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                Some(probed) = self.probes.results.recv() => {
                    self.probes.record(probed);
                    self.on_tick().await
                }
                cmd = self.rx.recv() => match cmd {
                    Some((req, reply)) => {
                        let r = self.handle(req).await;
                        let _ = reply.send(r);
                    }
                    None => return,
                },
                _ = tick.tick() => self.on_tick().await,
            }
        }
    }

    fn image(&self) -> Arc<MetadataImage> {
        self.image.borrow().clone()
    }

    /// Some(leader hint) when this node is not the ready active controller.
    async fn not_ready(&mut self) -> Option<Option<BrokerId>> {
        let (term, leader) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            (m.current_term, m.current_leader)
        };
        if leader != Some(self.config.node_id as u64) {
            self.ready_term = None;
            return Some(leader.map(|l| l as BrokerId));
        }
        if !crate::quorum::voters::is_voter(&self.raft, self.config.node_id as u64) {
            // Leading as a learner after removing itself: a voter takes over (`step_down`).
            self.ready_term = None;
            return Some(None);
        }
        if self.ready_term == Some(term) {
            return None;
        }
        // A new term: apply everything committed before deciding anything from the image.
        if self.raft.ensure_linearizable().await.is_err() {
            return Some(None);
        }
        let now = Instant::now();
        self.heartbeats = self.image().brokers.keys().map(|b| (*b, now)).collect();
        self.ready_term = Some(term);
        self.next_rebalance = now + self.rebalance_interval();
        tracing::info!(term, "this node is the active controller");
        None
    }

    async fn propose(&self, records: Vec<MetadataRecord>) -> Result<u64, ControllerError> {
        if records.is_empty() {
            return Ok(self.image().applied_index);
        }
        match self.raft.client_write(RecordBatch(records)).await {
            Ok(resp) if resp.data.rejected.is_empty() => {
                // Wait until our own image shows it (the watch is sent after apply).
                let mut image = self.image.clone();
                let index = resp.data.index;
                let _ = image.wait_for(|i| i.applied_index >= index).await;
                Ok(index)
            }
            Ok(resp) => Err(ControllerError {
                code: errors::INVALID_UPDATE_VERSION,
                message: resp.data.rejected.join("; "),
            }),
            Err(e) => Err(ControllerError {
                code: errors::NOT_CONTROLLER,
                message: format!("the metadata quorum did not commit: {e}"),
            }),
        }
    }

    async fn handle(&mut self, req: ControllerRequest) -> ControllerResult {
        if let Some(leader) = self.not_ready().await {
            return ControllerResult::NotController { leader };
        }
        let image = self.image();
        let decided = match req {
            ControllerRequest::RegisterBroker(reg) => return self.register(reg).await,
            ControllerRequest::Heartbeat {
                broker_id,
                broker_epoch,
                applied_index,
                want_shutdown,
            } => {
                return self
                    .heartbeat(
                        &image,
                        broker_id,
                        broker_epoch,
                        applied_index,
                        want_shutdown,
                    )
                    .await
            }
            other => decide(&image, other),
        };
        match decided {
            Ok((records, reply)) => match self.propose(records).await {
                Ok(index) => ControllerResult::Ok(reply, index),
                Err(e) => ControllerResult::Err(e),
            },
            Err(e) => ControllerResult::Err(e),
        }
    }

    async fn register(&mut self, reg: crate::records::BrokerRegistration) -> ControllerResult {
        let mut records = vec![MetadataRecord::RegisterBroker(reg.clone())];
        records.extend(changes_on_registration(&self.image(), &reg));
        match self.propose(records).await {
            Ok(index) => {
                self.heartbeats.insert(reg.broker_id, Instant::now());
                self.heard.insert(reg.broker_id, Instant::now());
                tracing::info!(broker = reg.broker_id, epoch = index, "broker registered");
                ControllerResult::Ok(
                    ControllerReply::Registered {
                        broker_epoch: index as i64,
                    },
                    index,
                )
            }
            Err(e) => ControllerResult::Err(e),
        }
    }

    async fn heartbeat(
        &mut self,
        image: &MetadataImage,
        broker_id: BrokerId,
        broker_epoch: i64,
        applied_index: u64,
        want_shutdown: bool,
    ) -> ControllerResult {
        let Some(broker) = image.brokers.get(&broker_id) else {
            return err(
                errors::BROKER_ID_NOT_REGISTERED,
                format!("broker {broker_id} is not registered"),
            );
        };
        if broker.broker_epoch != broker_epoch {
            return err(
                errors::STALE_BROKER_EPOCH,
                format!(
                    "broker {broker_id} epoch {broker_epoch} is stale: {} is current",
                    broker.broker_epoch
                ),
            );
        }
        self.heartbeats.insert(broker_id, Instant::now());
        self.heard.insert(broker_id, Instant::now());
        self.record_observer(broker_id, applied_index);
        let mut records = Vec::new();
        if want_shutdown {
            if !broker.in_controlled_shutdown && !broker.fenced {
                records.push(MetadataRecord::BrokerControlledShutdown {
                    broker_id,
                    broker_epoch,
                });
                let mut after = image.clone();
                after
                    .brokers
                    .get_mut(&broker_id)
                    .unwrap()
                    .in_controlled_shutdown = true;
                records.extend(changes_without(&after, broker_id, "controlled-shutdown"));
            }
        } else if broker.fenced && applied_index >= broker_epoch as u64 {
            records.push(MetadataRecord::UnfenceBroker {
                broker_id,
                broker_epoch,
            });
            let mut after = image.clone();
            after.brokers.get_mut(&broker_id).unwrap().fenced = false;
            records.extend(elections(&after, self.config.unclean_leader_election));
            tracing::info!(broker = broker_id, "broker caught up: unfenced");
        }
        if let Err(e) = self.propose(records).await {
            return ControllerResult::Err(e);
        }
        let image = self.image();
        let state = &image.brokers[&broker_id];
        let leads_movable = want_shutdown && leads_partitions_with_other_isr(&image, broker_id);
        let index = image.applied_index;
        ControllerResult::Ok(
            ControllerReply::Heartbeat {
                fenced: state.fenced,
                shutdown_ok: want_shutdown && !leads_movable,
            },
            index,
        )
    }

    /// When gossip declared `broker` down, if that was after the last heartbeat this
    /// controller received.
    fn gossip_down(&self, broker: BrokerId) -> Option<Instant> {
        let down = self.gossip.borrow().down_since(broker)?;
        self.heard
            .get(&broker)
            .is_none_or(|h| *h < down)
            .then_some(down)
    }

    /// Gossip declared `broker` down, it has not heartbeated since, and it did not answer
    /// the liveness probe (`liveness`) started for that verdict. A broker that answered
    /// counts as heard at that time.
    fn gossip_confirmed_down(&mut self, broker: BrokerId, state: &BrokerState) -> bool {
        let Some(down) = self.gossip_down(broker) else {
            return false;
        };
        let Some(e) = state.inter_broker_endpoint() else {
            return true; // nothing to ask: gossip's verdict stands
        };
        match self
            .probes
            .check(broker, down, &format!("{}:{}", e.host, e.port))
        {
            None => false,
            Some(liveness::Outcome::Silent) => true,
            Some(liveness::Outcome::Answered(at)) => {
                tracing::info!(
                    broker,
                    "gossip declared the broker down but it answers on its listener: not fenced"
                );
                self.heard.insert(broker, at);
                false
            }
        }
    }

    /// A broker's heartbeat is its "fetch" for DescribeQuorum's observers (voters' come
    /// from Raft; DescribeQuorum reports the brokers that are not voters).
    fn record_observer(&self, broker_id: BrokerId, applied_index: u64) {
        let (term, leader_end) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            (m.current_term, m.last_log_index)
        };
        let now = wall_clock_ms();
        self.observers.send_modify(|o| {
            o.entry(broker_id)
                .or_insert_with(FetchProgress::unknown)
                .on_fetch(term, Some(applied_index), leader_end, now)
        });
    }

    fn rebalance_interval(&self) -> Duration {
        let ms = self
            .config
            .leader_imbalance
            .as_ref()
            .map_or(u64::MAX / 4, |l| l.check_interval_ms);
        Duration::from_millis(ms)
    }

    /// Kafka's auto leader rebalance: every `leader.imbalance.check.interval.seconds`, each
    /// broker whose share of partitions it prefers but does not lead is above
    /// `leader.imbalance.per.broker.percentage` gets those leaderships back where it is in
    /// the ISR and active.
    async fn maybe_rebalance(&mut self) {
        let Some(imbalance) = self.config.leader_imbalance.clone() else {
            return;
        };
        let now = Instant::now();
        if now < self.next_rebalance {
            return;
        }
        self.next_rebalance = now + self.rebalance_interval();
        let records =
            imbalanced_preferred_elections(&self.image(), imbalance.per_broker_percentage);
        if records.is_empty() {
            return;
        }
        tracing::info!(
            elections = records.len(),
            "leader imbalance above leader.imbalance.per.broker.percentage={}: preferred replicas lead again",
            imbalance.per_broker_percentage
        );
        if let Err(e) = self.propose(records).await {
            tracing::warn!(error = %e.message, "auto leader rebalance could not commit");
        }
    }

    async fn on_tick(&mut self) {
        if self.not_ready().await.is_some() {
            return;
        }
        self.maybe_rebalance().await;
        let image = self.image();
        let timeout = Duration::from_millis(self.config.session_timeout_ms);
        let now = Instant::now();
        let mut records = Vec::new();
        let mut after = (*image).clone();
        let gossip = self.gossip.borrow().clone();
        self.probes
            .retain(|b, down| gossip.down_since(b) == Some(down));
        for (id, b) in &image.brokers {
            if b.fenced {
                continue;
            }
            let last = self.heartbeats.get(id).copied().unwrap_or(now);
            let session_over = now.duration_since(last) > timeout;
            if session_over || self.gossip_confirmed_down(*id, b) {
                let why = if session_over {
                    format!("no heartbeat for {timeout:?}")
                } else {
                    "gossip declared it down, it has not heartbeated since and it does not answer on its listener".to_string()
                };
                tracing::warn!(broker = id, "{why}: fencing the broker");
                records.push(MetadataRecord::FenceBroker {
                    broker_id: *id,
                    broker_epoch: b.broker_epoch,
                });
                after.brokers.get_mut(id).unwrap().fenced = true;
                let changes = changes_without(&after, *id, "fenced");
                apply_changes(&mut after, &changes);
                records.extend(changes);
            }
        }
        records.extend(elections(&after, self.config.unclean_leader_election));
        if let Err(e) = self.propose(records).await {
            tracing::warn!(error = %e.message, "controller tick could not commit");
        }
    }
}

fn decide(image: &MetadataImage, req: ControllerRequest) -> Decision {
    match req {
        ControllerRequest::RegisterBroker(_) | ControllerRequest::Heartbeat { .. } => {
            unreachable!("handled by the controller itself")
        }
        ControllerRequest::CreateTopic {
            name,
            partitions,
            replication_factor,
            assignments,
            configs,
            validate_only,
        } => create_topic(
            image,
            &name,
            partitions,
            replication_factor,
            assignments,
            configs,
        )
        .map(|(records, reply)| (if validate_only { vec![] } else { records }, reply)),
        ControllerRequest::DeleteTopic { name } => topic_record(image, &name, |topic_id| {
            MetadataRecord::DeleteTopic { topic_id }
        }),
        ControllerRequest::CreatePartitions {
            name,
            count,
            validate_only,
        } => create_partitions(image, &name, count).map(|records| {
            (
                if validate_only { vec![] } else { records },
                ControllerReply::Done,
            )
        }),
        ControllerRequest::AlterTopicConfig { name, configs } => {
            topic_record(image, &name, |topic_id| MetadataRecord::TopicConfig {
                topic_id,
                configs,
            })
        }
        ControllerRequest::AlterPartition {
            broker_id,
            broker_epoch,
            topic_id,
            partition,
            leader_epoch,
            partition_epoch,
            new_isr,
        } => alter_partition(
            image,
            (broker_id, broker_epoch),
            (topic_id, partition),
            (leader_epoch, partition_epoch),
            new_isr,
        ),
        ControllerRequest::AllocateProducerIds {
            broker_id,
            broker_epoch,
        } => allocate_producer_ids(image, broker_id, broker_epoch),
        ControllerRequest::ElectLeaders { election, topics } => {
            let (records, results) = elect_leaders(image, election, topics.as_deref());
            Ok((records, ControllerReply::Elections(results)))
        }
        ControllerRequest::AddRaftVoter { .. } | ControllerRequest::RemoveRaftVoter { .. } => {
            Err(ControllerError {
                code: errors::INVALID_REQUEST,
                message: "voter changes are run by the quorum's leader, not queued".into(),
            })
        }
        ControllerRequest::OfflineReplicas {
            broker_id,
            broker_epoch,
            partitions,
        } => offline_replicas(image, (broker_id, broker_epoch), &partitions),
        req @ (ControllerRequest::AlterPartitionReassignments { .. }
        | ControllerRequest::ListPartitionReassignments { .. }) => reassignment::decide(image, req),
    }
}

/// One record about the topic `name` (UNKNOWN_TOPIC_OR_PARTITION when there is none).
fn topic_record(
    image: &MetadataImage,
    name: &str,
    record: impl FnOnce(Uuid) -> MetadataRecord,
) -> Decision {
    let topic = image.topic(name).ok_or_else(|| unknown_topic(name))?;
    Ok((vec![record(topic.id)], ControllerReply::Done))
}

/// STALE_BROKER_EPOCH unless `broker_epoch` is the broker's current registration.
fn check_broker_epoch(
    image: &MetadataImage,
    broker_id: BrokerId,
    broker_epoch: i64,
) -> Result<(), ControllerError> {
    match image.brokers.get(&broker_id) {
        Some(b) if b.broker_epoch == broker_epoch => Ok(()),
        _ => Err(ControllerError {
            code: errors::STALE_BROKER_EPOCH,
            message: format!("broker {broker_id} epoch {broker_epoch} is not current"),
        }),
    }
}

/// A broker's replicas went offline with their log dir: it leaves those partitions' ISRs
/// and leaderships, as `changes_without` does for all of them when it is fenced.
fn offline_replicas(
    image: &MetadataImage,
    (broker_id, broker_epoch): (BrokerId, i64),
    partitions: &[(Uuid, i32)],
) -> Decision {
    check_broker_epoch(image, broker_id, broker_epoch)?;
    let changes = changes_without(image, broker_id, "offline-log-dir")
        .into_iter()
        .filter(|c| match c {
            MetadataRecord::PartitionChange(c) => partitions.contains(&(c.topic_id, c.partition)),
            _ => false,
        })
        .collect();
    Ok((changes, ControllerReply::Done))
}

fn apply_changes(image: &mut MetadataImage, changes: &[MetadataRecord]) {
    let index = image.applied_index;
    image.apply(index, &RecordBatch(changes.to_vec()));
}

fn unknown_topic(name: &str) -> ControllerError {
    ControllerError {
        code: errors::UNKNOWN_TOPIC_OR_PARTITION,
        message: format!("Topic {name} does not exist"),
    }
}

type Decision = Result<(Vec<MetadataRecord>, ControllerReply), ControllerError>;

fn placement_brokers(image: &MetadataImage) -> Vec<BrokerId> {
    let brokers: Vec<(BrokerId, Option<String>)> = image
        .active_brokers()
        .map(|b| (b.registration.broker_id, b.registration.rack.clone()))
        .collect();
    placement::rack_alternated(&brokers)
}

fn random_below(n: usize) -> usize {
    (Uuid::new_v4().as_u128() % n.max(1) as u128) as usize
}

fn check_replication(image: &MetadataImage, rf: usize) -> Result<Vec<BrokerId>, ControllerError> {
    let brokers = placement_brokers(image);
    if rf == 0 || rf > brokers.len() {
        return Err(ControllerError {
            code: errors::INVALID_REPLICATION_FACTOR,
            message: format!(
                "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {} broker(s) are registered.",
                brokers.len()
            ),
        });
    }
    Ok(brokers)
}

fn new_partition(replicas: Vec<BrokerId>, image: &MetadataImage) -> PartitionRecord {
    let isr: Vec<BrokerId> = replicas
        .iter()
        .copied()
        .filter(|r| image.is_active(*r))
        .collect();
    PartitionRecord {
        leader: isr.first().copied().unwrap_or(NO_LEADER),
        isr,
        replicas,
        leader_epoch: 0,
        partition_epoch: 0,
        last_unclean_epoch: NO_UNCLEAN_EPOCH,
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
    }
}

fn create_topic(
    image: &MetadataImage,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    assignments: Option<Vec<Vec<BrokerId>>>,
    configs: BTreeMap<String, String>,
) -> Decision {
    if image.topic(name).is_some() {
        return Err(ControllerError {
            code: errors::TOPIC_ALREADY_EXISTS,
            message: format!("Topic '{name}' already exists."),
        });
    }
    let lists = match assignments {
        Some(lists) => check_assignments(image, lists)?,
        None => {
            if !(1..=TOPIC_PARTITIONS_MAX).contains(&partitions) {
                return Err(ControllerError {
                    code: errors::INVALID_PARTITIONS,
                    message: format!("Number of partitions must be between 1 and {TOPIC_PARTITIONS_MAX}: {partitions}"),
                });
            }
            let rf = usize::try_from(replication_factor).unwrap_or(0);
            let brokers = check_replication(image, rf)?;
            let n = brokers.len();
            placement::assign(
                &brokers,
                0,
                partitions,
                rf,
                random_below(n),
                random_below(n),
            )
        }
    };
    let records: Vec<PartitionRecord> =
        lists.into_iter().map(|r| new_partition(r, image)).collect();
    let topic_id = Uuid::new_v4();
    Ok((
        vec![MetadataRecord::CreateTopic {
            name: name.to_string(),
            topic_id,
            partitions: records.clone(),
            configs,
        }],
        ControllerReply::TopicCreated {
            topic_id,
            partitions: records,
        },
    ))
}

fn check_assignments(
    image: &MetadataImage,
    lists: Vec<Vec<BrokerId>>,
) -> Result<Vec<Vec<BrokerId>>, ControllerError> {
    let bad = |message: String| ControllerError {
        code: errors::INVALID_REPLICA_ASSIGNMENT,
        message,
    };
    if lists.is_empty() {
        return Err(bad(
            "an explicit assignment must list at least one partition".into(),
        ));
    }
    for (p, l) in lists.iter().enumerate() {
        let mut s = l.clone();
        s.sort_unstable();
        s.dedup();
        if l.is_empty() || s.len() != l.len() {
            return Err(bad(format!(
                "partition {p}: replicas {l:?} must be distinct and not empty"
            )));
        }
        if let Some(b) = l.iter().find(|b| !image.brokers.contains_key(b)) {
            return Err(bad(format!("partition {p}: broker {b} is not registered")));
        }
    }
    Ok(lists)
}

fn create_partitions(
    image: &MetadataImage,
    name: &str,
    count: i32,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let topic = image.topic(name).ok_or_else(|| unknown_topic(name))?;
    let current = topic.partitions.len() as i32;
    if count <= current || count > TOPIC_PARTITIONS_MAX {
        return Err(ControllerError {
            code: errors::INVALID_PARTITIONS,
            message: format!("Topic currently has {current} partitions, which is higher than or equal to the requested {count}."),
        });
    }
    let rf = topic.partitions.first().map_or(1, |p| p.replicas.len());
    let brokers = check_replication(image, rf)?;
    let n = brokers.len();
    let lists = placement::assign(
        &brokers,
        current,
        count - current,
        rf,
        random_below(n),
        random_below(n),
    );
    Ok(vec![MetadataRecord::AddPartitions {
        topic_id: topic.id,
        partitions: lists.into_iter().map(|r| new_partition(r, image)).collect(),
    }])
}

/// Kafka's AlterPartition: the leader's new ISR, in replica order. For a partition being
/// reassigned the same change completes the reassignment once the ISR holds every target
/// (`reassignment::build`), so the answer may carry a new leader and leader epoch.
fn alter_partition(
    image: &MetadataImage,
    broker: (BrokerId, i64),
    (topic_id, partition): (Uuid, i32),
    epochs: (i32, i32),
    new_isr: Vec<BrokerId>,
) -> Decision {
    let p = check_alter_partition(image, broker, (topic_id, partition), epochs, &new_isr)?;
    let isr: Vec<BrokerId> = p
        .replicas
        .iter()
        .copied()
        .filter(|r| new_isr.contains(r))
        .collect();
    let change = match image.topics.get(&topic_id) {
        Some(t) if p.is_reassigning() => {
            let next = reassignment::Target {
                assignment: crate::records::ReplicaAssignment {
                    replicas: p.replicas.clone(),
                    adding_replicas: p.adding_replicas.clone(),
                    removing_replicas: p.removing_replicas.clone(),
                },
                isr,
            };
            reassignment::build(image, (t, partition), p, next, "alter-partition")
        }
        _ => PartitionChange {
            topic_id,
            partition,
            leader: p.leader,
            isr,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch + 1,
            reason: "alter-partition".into(),
            assignment: None,
        },
    };
    let records = vec![MetadataRecord::PartitionChange(change)];
    let mut after = image.clone();
    apply_changes(&mut after, &records);
    let reply = after
        .partition(topic_id, partition)
        .cloned()
        .map(ControllerReply::Partition)
        .ok_or_else(|| ControllerError {
            code: errors::UNKNOWN_TOPIC_OR_PARTITION,
            message: format!("partition {topic_id}-{partition} does not exist"),
        })?;
    Ok((records, reply))
}

/// Kafka's AlterPartition checks, in Kafka's order of error codes.
fn check_alter_partition<'a>(
    image: &'a MetadataImage,
    (broker_id, broker_epoch): (BrokerId, i64),
    (topic_id, partition): (Uuid, i32),
    (leader_epoch, partition_epoch): (i32, i32),
    new_isr: &[BrokerId],
) -> Result<&'a PartitionRecord, ControllerError> {
    let fail = |code, message: String| Err(ControllerError { code, message });
    match image.brokers.get(&broker_id) {
        Some(b) if b.broker_epoch == broker_epoch => {}
        _ => {
            return fail(
                errors::STALE_BROKER_EPOCH,
                format!("broker {broker_id} epoch {broker_epoch} is not current"),
            )
        }
    }
    let Some(p) = image.partition(topic_id, partition) else {
        return fail(
            errors::UNKNOWN_TOPIC_OR_PARTITION,
            format!("partition {topic_id}-{partition} does not exist"),
        );
    };
    if p.leader != broker_id {
        return fail(
            errors::NOT_LEADER_OR_FOLLOWER,
            format!("broker {broker_id} does not lead {topic_id}-{partition}"),
        );
    }
    if leader_epoch != p.leader_epoch {
        return fail(
            errors::FENCED_LEADER_EPOCH,
            format!("leader epoch {leader_epoch} is not {}", p.leader_epoch),
        );
    }
    if partition_epoch != p.partition_epoch {
        return fail(
            errors::INVALID_UPDATE_VERSION,
            format!(
                "partition epoch {partition_epoch} is not {}",
                p.partition_epoch
            ),
        );
    }
    if !new_isr.contains(&broker_id) {
        return fail(
            errors::INVALID_REQUEST,
            "the leader must stay in its ISR".into(),
        );
    }
    let mut added = new_isr.iter().filter(|r| !p.isr.contains(r));
    if let Some(r) = added.find(|r| !image.is_active(**r) || !p.replicas.contains(r)) {
        return fail(
            errors::INELIGIBLE_REPLICA,
            format!("replica {r} is fenced, shutting down or not a replica"),
        );
    }
    Ok(p)
}

fn allocate_producer_ids(
    image: &MetadataImage,
    broker_id: BrokerId,
    broker_epoch: i64,
) -> Decision {
    check_broker_epoch(image, broker_id, broker_epoch)?;
    let first = image.next_producer_id;
    Ok((
        vec![MetadataRecord::ProducerIds {
            broker_id,
            broker_epoch,
            next_producer_id: first + PRODUCER_ID_BLOCK_SIZE,
        }],
        ControllerReply::ProducerIds {
            first,
            count: PRODUCER_ID_BLOCK_SIZE,
        },
    ))
}

/// A broker registering again as a new incarnation (a restart) leaves every ISR at once, and
/// one whose log dirs lost a `directory.id` it registered before (a wiped or replaced disk)
/// leaves them even as the last member, since its replicas there are empty (KIP-903 /
/// KIP-966's spirit: such replicas are not in sync). They come back through the leader's
/// catch-up and AlterPartition. A retried registration (same incarnation, same dirs) changes
/// nothing. The changes follow the `RegisterBroker` record in the same batch.
pub fn changes_on_registration(
    image: &MetadataImage,
    reg: &crate::records::BrokerRegistration,
) -> Vec<MetadataRecord> {
    let Some(old) = image.brokers.get(&reg.broker_id) else {
        return Vec::new();
    };
    let lost_dir = old
        .registration
        .log_dirs
        .iter()
        .find(|d| !reg.log_dirs.contains(d));
    if old.registration.incarnation_id == reg.incarnation_id && lost_dir.is_none() {
        return Vec::new();
    }
    let mut after = image.clone();
    // The new registration is fenced until it catches up.
    after.brokers.get_mut(&reg.broker_id).unwrap().fenced = true;
    match lost_dir {
        Some(dir) => {
            tracing::warn!(broker = reg.broker_id, dir = %sluice_engine::ids::kafka_uuid_string(dir), "broker registered without a log dir it had: its replicas leave every ISR, also as last member");
            isr_removals(
                &after,
                reg.broker_id,
                "log-dir-replaced",
                LastMember::Leaves,
            )
        }
        None => isr_removals(&after, reg.broker_id, "new-incarnation", LastMember::Stays),
    }
}

/// Whether the last member of an ISR stays in it when removed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LastMember {
    /// Kafka's rule for a fenced broker: the partition waits for it (no leader) rather than
    /// lose what only it holds.
    Stays,
    /// Its replica is known to be empty: the ISR becomes empty and the partition stays
    /// offline unless `unclean.leader.election.enable` picks another replica.
    Leaves,
}

/// Partition changes that take `broker` out of every ISR and leadership (it was fenced or is
/// shutting down). The last member of an ISR stays in it with no leader (Kafka's rule: the
/// partition waits for it rather than lose what only it holds).
pub fn changes_without(
    image: &MetadataImage,
    broker: BrokerId,
    reason: &str,
) -> Vec<MetadataRecord> {
    isr_removals(image, broker, reason, LastMember::Stays)
}

fn isr_removals(
    image: &MetadataImage,
    broker: BrokerId,
    reason: &str,
    last: LastMember,
) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for t in image.topics.values() {
        for (i, p) in t.partitions.iter().enumerate() {
            if !p.isr.contains(&broker) {
                continue;
            }
            let rest: Vec<BrokerId> = p.isr.iter().copied().filter(|r| *r != broker).collect();
            let (isr, leader, leader_epoch) = if rest.is_empty() && last == LastMember::Leaves {
                (rest, NO_LEADER, p.leader_epoch + 1)
            } else if rest.is_empty() {
                if p.leader == NO_LEADER {
                    continue;
                }
                (p.isr.clone(), NO_LEADER, p.leader_epoch + 1)
            } else if p.leader == broker {
                let leader = rest
                    .iter()
                    .copied()
                    .find(|r| image.is_active(*r))
                    .unwrap_or(NO_LEADER);
                (rest, leader, p.leader_epoch + 1)
            } else {
                (rest, p.leader, p.leader_epoch)
            };
            out.push(MetadataRecord::PartitionChange(PartitionChange {
                topic_id: t.id,
                partition: i as i32,
                leader,
                isr,
                leader_epoch,
                partition_epoch: p.partition_epoch + 1,
                reason: reason.to_string(),
                assignment: None,
            }));
        }
    }
    out
}

/// Leaderless partitions whose ISR has an active broker get it as leader; with unclean
/// election allowed (topic `unclean.leader.election.enable`, else the broker default), an
/// active replica outside the ISR is chosen when no ISR member is active.
pub fn elections(image: &MetadataImage, unclean_default: bool) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for t in image.topics.values() {
        let unclean = t
            .configs
            .get("unclean.leader.election.enable")
            .map_or(unclean_default, |v| v.trim().eq_ignore_ascii_case("true"));
        for (i, p) in t.partitions.iter().enumerate() {
            if p.leader != NO_LEADER && image.is_active(p.leader) {
                continue;
            }
            let clean = p
                .replicas
                .iter()
                .copied()
                .find(|r| p.isr.contains(r) && image.is_active(*r));
            let (leader, isr, reason) = match clean {
                Some(l) => (l, p.isr.clone(), "election"),
                None if unclean => match p.replicas.iter().copied().find(|r| image.is_active(*r)) {
                    Some(l) => (l, vec![l], UNCLEAN_ELECTION_REASON),
                    None => continue,
                },
                None => continue,
            };
            if reason == UNCLEAN_ELECTION_REASON {
                tracing::warn!(topic = %t.name, partition = i, leader, "unclean leader election: records only the old ISR held may be lost");
            }
            out.push(MetadataRecord::PartitionChange(PartitionChange {
                topic_id: t.id,
                partition: i as i32,
                leader,
                isr,
                leader_epoch: p.leader_epoch + 1,
                partition_epoch: p.partition_epoch + 1,
                reason: reason.to_string(),
                assignment: None,
            }));
        }
    }
    out
}

fn leads_partitions_with_other_isr(image: &MetadataImage, broker: BrokerId) -> bool {
    image.topics.values().any(|t| {
        t.partitions.iter().any(|p| {
            p.leader == broker && p.isr.iter().any(|r| *r != broker && image.is_active(*r))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::BrokerRegistration;

    fn registration(id: BrokerId, incarnation: Uuid, dir: Uuid) -> BrokerRegistration {
        BrokerRegistration {
            broker_id: id,
            incarnation_id: incarnation,
            listeners: vec![],
            inter_broker_listener: "PLAINTEXT".into(),
            rack: None,
            log_dirs: vec![dir],
        }
    }

    /// Brokers 1..=3 registered and unfenced; "trio" on all three led by 1, "solo" on 3 alone.
    fn image_with(regs: &[BrokerRegistration]) -> MetadataImage {
        let mut image = MetadataImage::default();
        for (i, reg) in regs.iter().enumerate() {
            let index = i as u64 + 1;
            let records = vec![
                MetadataRecord::RegisterBroker(reg.clone()),
                MetadataRecord::UnfenceBroker {
                    broker_id: reg.broker_id,
                    broker_epoch: index as i64,
                },
            ];
            assert!(image
                .apply(index, &RecordBatch(records))
                .rejected
                .is_empty());
        }
        let topic = |name: &str, replicas: Vec<BrokerId>| MetadataRecord::CreateTopic {
            name: name.into(),
            topic_id: Uuid::new_v4(),
            partitions: vec![new_partition(replicas, &image)],
            configs: BTreeMap::new(),
        };
        let records = vec![topic("trio", vec![1, 2, 3]), topic("solo", vec![3])];
        image.apply(10, &RecordBatch(records));
        image
    }

    fn partition<'a>(image: &'a MetadataImage, name: &str) -> &'a PartitionRecord {
        &image.topic(name).unwrap().partitions[0]
    }

    fn register_again(image: &MetadataImage, reg: &BrokerRegistration) -> MetadataImage {
        let mut records = vec![MetadataRecord::RegisterBroker(reg.clone())];
        records.extend(changes_on_registration(image, reg));
        let mut after = image.clone();
        assert!(after.apply(11, &RecordBatch(records)).rejected.is_empty());
        after
    }

    #[test]
    fn a_new_incarnation_or_a_replaced_log_dir_leaves_every_isr_at_once() {
        let regs: Vec<_> = (1..=3)
            .map(|id| registration(id, Uuid::new_v4(), Uuid::new_v4()))
            .collect();
        let image = image_with(&regs);
        assert_eq!(partition(&image, "trio").isr, vec![1, 2, 3]);
        // A retried registration changes nothing.
        assert!(changes_on_registration(&image, &regs[2]).is_empty());

        // A restart (new incarnation, same dir): out of every ISR; as the last member it
        // stays, leaderless, since only it holds the records.
        let restarted = registration(3, Uuid::new_v4(), regs[2].log_dirs[0]);
        let after = register_again(&image, &restarted);
        assert_eq!(partition(&after, "trio").isr, vec![1, 2]);
        assert_eq!(partition(&after, "trio").leader, 1);
        let solo = partition(&after, "solo");
        assert_eq!((solo.isr.clone(), solo.leader), (vec![3], NO_LEADER));

        // A wiped log dir (new directory id): its replicas are empty, so it leaves even as
        // the last member and the partition stays offline rather than serve an empty log.
        let wiped = registration(3, Uuid::new_v4(), Uuid::new_v4());
        let after = register_again(&image, &wiped);
        assert_eq!(partition(&after, "trio").isr, vec![1, 2]);
        let solo = partition(&after, "solo");
        assert_eq!((solo.isr.clone(), solo.leader), (vec![], NO_LEADER));
        let mut unfenced = after.clone();
        unfenced.brokers.get_mut(&3).unwrap().fenced = false;
        assert!(elections(&unfenced, false).is_empty(), "no clean leader");
    }
}

#[cfg(test)]
mod offline_replicas_tests;
