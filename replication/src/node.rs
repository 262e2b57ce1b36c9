//! One node's control plane, on its own thread ("sluice-controller") with a tokio runtime
//! (openraft 0.9 needs one): the Raft voter and the active-controller task when the node is
//! a controller, the controller listener's RPC server, the route from this node to the active
//! controller, the broker's registration and heartbeats, and for broker-only nodes the fetch
//! of committed metadata from the quorum (Kafka's observers).
//!
//! Nothing here runs on a shard: shards talk to it through `ClusterHandle` (bounded tokio
//! channels and watches, which work from any runtime) and never block on it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use crate::controller::{Command, Controller, ControllerConfig, LeaderImbalance};
use crate::gossip::{GossipOptions, GossipView};
use crate::image::MetadataImage;
use crate::quorum::pre_vote;
use crate::quorum::progress::{wall_clock_ms, ProgressMap};
use crate::quorum::voters::{self, VoterKeys};
use crate::quorum::{self, Identity, NetworkFactory, QuorumTiming, Raft, VoterTracking};
use crate::records::{BrokerId, BrokerRegistration};
use crate::rpc::{
    read_frame, write_frame, ControllerError, ControllerReply, ControllerRequest, ControllerResult,
    Envelope, Peer, QuorumDescription, ReplicaState, Reply, Request, Response,
};
use crate::{errors, NodeId};

/// Requests from the broker to the controller waiting at most.
pub const ROUTE_QUEUE_MAX: usize = 1024;
/// Longest a routed controller call keeps trying to reach an active controller.
pub const ROUTE_DEADLINE_MS: u64 = 30_000;
/// One RPC to a controller waits at most this long for its answer.
pub const RPC_TIMEOUT_MS: u64 = 5_000;
/// Pause between attempts to find the active controller.
pub const ROUTE_RETRY_BACKOFF_MS: u64 = 50;
/// Longest an observer's metadata fetch parks on the controller.
pub const METADATA_FETCH_WAIT_MS: u64 = 500;
/// DescribeQuorum requests from the broker waiting at most.
pub const QUORUM_DESCRIBE_QUEUE_MAX: usize = 16;

#[derive(Clone, Debug)]
pub struct ControllerRole {
    pub listen: SocketAddr,
    pub metadata_dir: PathBuf,
    pub directory_id: Uuid,
}

#[derive(Clone, Debug)]
pub struct ClusterOptions {
    pub cluster_id: String,
    pub node_id: BrokerId,
    /// `controller.quorum.voters`: (id, "host:port").
    pub voters: Vec<(BrokerId, String)>,
    pub controller: Option<ControllerRole>,
    /// What this node registers as a broker (None: controller only).
    pub broker: Option<BrokerRegistration>,
    pub session_timeout_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_ms: u64,
    pub unclean_leader_election: bool,
    /// SWIM gossip; None: liveness from heartbeats alone (`sluice.gossip.enable=false`).
    pub gossip: Option<GossipOptions>,
    /// `auto.leader.rebalance.enable` with its interval and percentage (None: disabled).
    pub leader_imbalance: Option<LeaderImbalance>,
}

/// The broker's standing with the controller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BrokerStatus {
    /// 0 until registered.
    pub broker_epoch: i64,
    pub fenced: bool,
    /// The controller agreed to a controlled shutdown.
    pub shutdown_ok: bool,
    /// With `shutdown_ok`: the metadata index at which it agreed (this node's shards must
    /// apply that image before they stop, or they still see themselves leading).
    pub shutdown_index: u64,
}

type Routed = (ControllerRequest, oneshot::Sender<ControllerResult>);

/// Whose description of the quorum a query wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QuorumView {
    /// The quorum leader's, wherever it is.
    Leader,
    /// This node's.
    Local,
}

type QuorumQuery = (QuorumView, oneshot::Sender<QuorumDescription>);

/// Shared by the broker's shards (clone it). Lives on any thread.
#[derive(Clone)]
pub struct ClusterHandle {
    pub image: watch::Receiver<Arc<MetadataImage>>,
    pub broker: watch::Receiver<BrokerStatus>,
    route: mpsc::Sender<Routed>,
    want_shutdown: Arc<watch::Sender<bool>>,
    stop: Arc<watch::Sender<bool>>,
    quorum: mpsc::Sender<QuorumQuery>,
    pub node_id: BrokerId,
    /// Who gossip says is alive (empty without gossip).
    pub gossip: watch::Receiver<GossipView>,
}

impl std::fmt::Debug for ClusterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClusterHandle(node {})", self.node_id)
    }
}

impl ClusterHandle {
    /// Sends `request` to the active controller wherever it is; Kafka's error on failure.
    pub async fn call(
        &self,
        request: ControllerRequest,
    ) -> Result<ControllerReply, ControllerError> {
        self.call_committed(request).await.map(|(r, _)| r)
    }

    /// As `call`, with the metadata index at which the decision was applied.
    pub async fn call_committed(
        &self,
        request: ControllerRequest,
    ) -> Result<(ControllerReply, u64), ControllerError> {
        let (tx, rx) = oneshot::channel();
        let gone = || ControllerError {
            code: errors::NOT_CONTROLLER,
            message: "the controller thread has stopped".into(),
        };
        self.route.send((request, tx)).await.map_err(|_| gone())?;
        match rx.await.map_err(|_| gone())? {
            ControllerResult::Ok(r, index) => Ok((r, index)),
            ControllerResult::Err(e) => Err(e),
            ControllerResult::NotController { .. } => Err(ControllerError {
                code: errors::NOT_CONTROLLER,
                message: "no active controller could be reached".into(),
            }),
        }
    }

    /// Asks the controller to move this broker's leaderships away (controlled shutdown);
    /// `broker` reports `shutdown_ok` once it agrees.
    pub fn begin_controlled_shutdown(&self) {
        self.want_shutdown.send_replace(true);
    }

    /// Stops the control plane thread (Raft shut down, listener closed); join the thread
    /// handle `start` returned to wait for it.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Kafka's DescribeQuorum as the quorum leader answers it (asked of the leader wherever
    /// it is); None when no leader answered within `RPC_TIMEOUT_MS`.
    pub async fn describe_quorum(&self) -> Option<QuorumDescription> {
        self.query_quorum(QuorumView::Leader).await
    }

    /// This node's own view of the quorum (its term, the leader it knows, its membership);
    /// replica progress only if it leads.
    pub async fn local_quorum_view(&self) -> Option<QuorumDescription> {
        self.query_quorum(QuorumView::Local).await
    }

    async fn query_quorum(&self, view: QuorumView) -> Option<QuorumDescription> {
        let (tx, rx) = oneshot::channel();
        self.quorum.send((view, tx)).await.ok()?;
        rx.await.ok()
    }
}

/// Starts the control plane thread. Returns once the RPC listener is bound (a bind error is
/// returned) — not once a quorum exists.
pub fn start(
    options: ClusterOptions,
) -> std::io::Result<(ClusterHandle, std::thread::JoinHandle<()>)> {
    let (image_tx, image_rx) = watch::channel(Arc::new(MetadataImage::default()));
    let (broker_tx, broker_rx) = watch::channel(BrokerStatus::default());
    let (route_tx, route_rx) = mpsc::channel(ROUTE_QUEUE_MAX);
    let (quorum_tx, quorum_rx) = mpsc::channel(QUORUM_DESCRIBE_QUEUE_MAX);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    let (gossip_tx, gossip_rx) = std::sync::mpsc::sync_channel(1);
    let mut handle = ClusterHandle {
        image: image_rx.clone(),
        broker: broker_rx,
        route: route_tx,
        want_shutdown: Arc::new(shutdown_tx),
        stop: Arc::new(stop_tx),
        quorum: quorum_tx,
        node_id: options.node_id,
        gossip: watch::channel(GossipView::default()).1,
    };
    let thread = std::thread::Builder::new()
        .name("sluice-controller".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime for the controller thread");
            let channels = Channels {
                image_tx,
                image_rx,
                broker_tx,
                route_rx,
                quorum_rx,
                shutdown_rx,
                stop_rx,
            };
            rt.block_on(run(options, channels, ready_tx, gossip_tx));
        })?;
    ready_rx
        .recv()
        .map_err(|_| std::io::Error::other("the controller thread died while starting"))??;
    if let Ok(view) = gossip_rx.recv() {
        handle.gossip = view;
    }
    Ok((handle, thread))
}

struct Channels {
    image_tx: watch::Sender<Arc<MetadataImage>>,
    image_rx: watch::Receiver<Arc<MetadataImage>>,
    broker_tx: watch::Sender<BrokerStatus>,
    route_rx: mpsc::Receiver<Routed>,
    quorum_rx: mpsc::Receiver<QuorumQuery>,
    shutdown_rx: watch::Receiver<bool>,
    stop_rx: watch::Receiver<bool>,
}

/// What the server and the router share.
struct Local {
    options: ClusterOptions,
    identity: Identity,
    raft: Option<Raft>,
    /// The recorded voter keys (controllers only).
    keys: Option<VoterKeys>,
    controller: Option<mpsc::Sender<Command>>,
    image: watch::Receiver<Arc<MetadataImage>>,
    /// The voters' answers to this node's AppendEntries (meaningful while it leads).
    voters: VoterTracking,
    /// Brokers' heartbeats to this node's controller (likewise).
    observers: Arc<watch::Sender<ProgressMap>>,
    /// When this voter last heard from a quorum leader (`quorum::pre_vote`).
    contact: Arc<pre_vote::LeaderContact>,
}

async fn run(
    options: ClusterOptions,
    ch: Channels,
    ready: std::sync::mpsc::SyncSender<std::io::Result<()>>,
    gossip_view: std::sync::mpsc::SyncSender<watch::Receiver<GossipView>>,
) {
    let gossip = match &options.gossip {
        Some(g) => match crate::gossip::bind(g.clone()).await {
            Ok((view, run)) => {
                tokio::spawn(run);
                view
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        },
        None => watch::channel(GossipView::default()).1,
    };
    let _ = gossip_view.send(gossip.clone());
    let local = match start_local(options, &ch, gossip).await {
        Ok(local) => Arc::new(local),
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let listener = match &local.options.controller {
        Some(role) => match TcpListener::bind(role.listen).await {
            Ok(l) => Some(l),
            Err(e) => {
                let _ = ready.send(Err(std::io::Error::new(
                    e.kind(),
                    format!("controller listener {}: {e}", role.listen),
                )));
                return;
            }
        },
        None => None,
    };
    let _ = ready.send(Ok(()));
    if let Some(listener) = listener {
        tokio::spawn(serve(listener, local.clone()));
    }
    if local.raft.is_none() {
        tokio::spawn(observe_metadata(local.clone(), ch.image_tx));
    }
    if local.options.broker.is_some() {
        tokio::spawn(broker_lifecycle(
            local.clone(),
            ch.broker_tx,
            ch.shutdown_rx,
        ));
    }
    tokio::spawn(answer_quorum_descriptions(local.clone(), ch.quorum_rx));
    let mut stop = ch.stop_rx;
    tokio::select! {
        _ = route_requests(local.clone(), ch.route_rx) => {}
        _ = stop.wait_for(|s| *s) => {}
    }
    if let Some(raft) = &local.raft {
        let _ = raft.shutdown().await;
    }
    tracing::info!("control plane stopped");
}

async fn start_local(
    options: ClusterOptions,
    ch: &Channels,
    gossip: watch::Receiver<GossipView>,
) -> std::io::Result<Local> {
    let identity = Identity {
        cluster_id: options.cluster_id.clone(),
        node_id: options.node_id,
        directory_id: options.controller.as_ref().map(|c| c.directory_id),
    };
    let mut local = Local {
        options: options.clone(),
        identity: identity.clone(),
        raft: None,
        keys: None,
        controller: None,
        image: ch.image_rx.clone(),
        voters: VoterTracking::new(),
        observers: Arc::new(watch::channel(ProgressMap::new()).0),
        contact: pre_vote::LeaderContact::new(),
    };
    let Some(role) = &options.controller else {
        return Ok(local);
    };
    let (raft, keys) = start_raft(
        &options,
        role,
        ch,
        identity,
        (&local.voters, &local.contact),
    )
    .await?;
    let (controller, tx) = Controller::new(
        raft.clone(),
        ch.image_rx.clone(),
        gossip,
        ControllerConfig {
            node_id: options.node_id,
            session_timeout_ms: options.session_timeout_ms,
            unclean_leader_election: options.unclean_leader_election,
            leader_imbalance: options.leader_imbalance.clone(),
        },
        local.observers.clone(),
    );
    tokio::spawn(controller.run());
    local.raft = Some(raft);
    local.keys = Some(keys);
    local.controller = Some(tx);
    Ok(local)
}

/// The metadata log, state machine and Raft of a controller, with the tasks that keep its
/// voters' keys (node id + directory id); the quorum initialized on first start.
async fn start_raft(
    options: &ClusterOptions,
    role: &ControllerRole,
    ch: &Channels,
    identity: Identity,
    (tracking, contact): (&VoterTracking, &Arc<pre_vote::LeaderContact>),
) -> std::io::Result<(Raft, voters::VoterKeys)> {
    let dir = role
        .metadata_dir
        .join(sluice_engine::logdir::METADATA_PARTITION_DIR);
    let log = quorum::log_store::LogStore::open(&dir)?;
    let sm = quorum::state_machine::StateMachine::open(&dir, ch.image_tx.clone())?;
    let timing = QuorumTiming {
        election_timeout_ms: options.election_timeout_ms,
        heartbeat_interval_ms: (options.election_timeout_ms / 4).max(50),
    };
    let config = Arc::new(
        quorum::raft_config(&timing)
            .validate()
            .map_err(std::io::Error::other)?,
    );
    let (keys, feed) = voters::voter_keys();
    let network = NetworkFactory {
        identity: identity.clone(),
        keys: keys.clone(),
        voters: tracking.clone(),
    };
    let raft = Raft::new(options.node_id as NodeId, config, network, log, sm)
        .await
        .map_err(std::io::Error::other)?;
    let _ = tracking.metrics.set(raft.metrics());
    tokio::spawn(voters::track_membership(raft.clone(), feed.view));
    tokio::spawn(pre_vote::campaign_gate(
        raft.clone(),
        identity,
        keys.clone(),
        contact.clone(),
        (
            Duration::from_millis(timing.election_timeout_ms),
            Duration::from_millis(timing.heartbeat_interval_ms),
        ),
    ));
    tokio::spawn(voters::restrain_elections(
        raft.clone(),
        (options.node_id as NodeId, role.directory_id),
        keys.clone(),
    ));
    tokio::spawn(voters::record_directory_ids(
        raft.clone(),
        (options.node_id as NodeId, role.directory_id),
        keys.clone(),
        feed.learned,
    ));
    if !raft.is_initialized().await.map_err(std::io::Error::other)? {
        // Every voter proposes the same initial membership; openraft accepts this on all of
        // them (only one can win the first election).
        let members = quorum::voter_nodes(&options.voters);
        if let Err(e) = raft.initialize(members).await {
            tracing::debug!(error = %e, "metadata quorum already initialized");
        }
    }
    Ok((raft, keys))
}

async fn serve(listener: TcpListener, local: Arc<Local>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_connection(stream, local.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "controller listener accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve_connection(mut stream: TcpStream, local: Arc<Local>) {
    loop {
        let envelope: Envelope = match read_frame(&mut stream).await {
            Ok(e) => e,
            Err(_) => return,
        };
        let reply = Reply {
            from: local.identity.node_id,
            directory_id: local.identity.directory_id,
            body: dispatch(&local, envelope).await,
        };
        if write_frame(&mut stream, &reply).await.is_err() {
            return;
        }
    }
}

async fn dispatch(local: &Local, envelope: Envelope) -> Response {
    if envelope.cluster_id != local.identity.cluster_id {
        return Response::Refused(format!(
            "node {} belongs to cluster {}, this node to {} (error {})",
            envelope.from,
            envelope.cluster_id,
            local.identity.cluster_id,
            errors::INCONSISTENT_CLUSTER_ID
        ));
    }
    if let Some(refused) = refuse_raft_traffic(local, &envelope) {
        return refused;
    }
    match envelope.body {
        Request::AppendEntries(rpc) => match &local.raft {
            Some(raft) => {
                let answer = raft.append_entries(rpc).await;
                if matches!(&answer, Ok(r) if !matches!(r, openraft::raft::AppendEntriesResponse::HigherVote(_)))
                {
                    local.contact.heard();
                }
                Response::AppendEntries(answer)
            }
            None => Response::Refused("not a controller".into()),
        },
        Request::PreVote { last_index } => match (&local.raft, &local.keys) {
            (Some(raft), Some(keys)) => {
                let quiet = Duration::from_millis(local.options.election_timeout_ms);
                Response::PreVote(pre_vote::answer(
                    raft,
                    &local.contact,
                    keys,
                    (last_index, quiet),
                ))
            }
            _ => Response::Refused("not a controller".into()),
        },
        Request::Vote(rpc) => match &local.raft {
            Some(raft) => Response::Vote(raft.vote(rpc).await),
            None => Response::Refused("not a controller".into()),
        },
        Request::FullSnapshot { vote, snapshot } => match &local.raft {
            Some(raft) => {
                let s = openraft::Snapshot {
                    meta: snapshot.meta.clone(),
                    snapshot: Box::new(snapshot),
                };
                let answer = raft.install_full_snapshot(vote, s).await;
                if answer.is_ok() {
                    local.contact.heard();
                }
                Response::Snapshot(answer)
            }
            None => Response::Refused("not a controller".into()),
        },
        Request::Controller(req) => Response::Controller(local_controller(local, req).await),
        Request::FetchMetadata {
            after_index,
            max_wait_ms,
        } => Response::Metadata(fetch_metadata(local, after_index, max_wait_ms).await),
        Request::DescribeQuorum => Response::Quorum(describe(local)),
    }
}

/// Raft traffic (Vote, AppendEntries, a snapshot) from a node whose directory id is not the
/// one the quorum recorded for it is refused (Kafka's INVALID_VOTER_KEY): a wiped disk does
/// not vote or lead. And a node told it is such a replaced incarnation grants no vote until
/// it is re-added. The refusal, or None to serve it.
fn refuse_raft_traffic(local: &Local, envelope: &Envelope) -> Option<Response> {
    let raft_traffic = matches!(
        envelope.body,
        Request::AppendEntries(_)
            | Request::Vote(_)
            | Request::FullSnapshot { .. }
            | Request::PreVote { .. }
    );
    let keys = local.keys.as_ref().filter(|_| raft_traffic)?;
    if let Err(why) = keys.check(envelope.from as NodeId, envelope.directory_id, false) {
        return Some(Response::InvalidVoterKey(why));
    }
    let vote = matches!(envelope.body, Request::Vote(_));
    (vote && keys.replaced()).then(|| {
        Response::Refused(format!(
            "node {} is a re-formatted voter not re-added yet: it grants no vote",
            local.identity.node_id
        ))
    })
}

/// Kafka's AddRaftVoter / RemoveRaftVoter, run by the quorum's leader (outside the
/// controller's queue: catching up a new voter takes a while).
async fn change_voters(local: &Local, req: ControllerRequest) -> ControllerResult {
    let (Some(raft), Some(keys)) = (&local.raft, &local.keys) else {
        return ControllerResult::NotController { leader: None };
    };
    let leader = raft.metrics().borrow().current_leader;
    if leader != Some(local.options.node_id as NodeId) {
        return ControllerResult::NotController {
            leader: leader.map(|l| l as BrokerId),
        };
    }
    let done = match req {
        ControllerRequest::AddRaftVoter {
            voter_id,
            directory_id,
            addr,
            timeout_ms,
        } => {
            let timeout = Duration::from_millis(timeout_ms);
            voters::add_voter(raft, keys, (voter_id, directory_id, addr), timeout).await
        }
        ControllerRequest::RemoveRaftVoter {
            voter_id,
            directory_id,
        } => {
            // A live broker (this node, or one unfenced) goes on as an observer.
            let observer = voter_id == local.options.node_id
                || local
                    .image
                    .borrow()
                    .brokers
                    .get(&voter_id)
                    .is_some_and(|b| !b.fenced);
            voters::remove_voter(raft, keys, (voter_id, directory_id), observer).await
        }
        other => unreachable!("not a voter change: {other:?}"),
    };
    match done {
        Ok(()) => ControllerResult::Ok(ControllerReply::Done, local.image.borrow().applied_index),
        Err(e) => ControllerResult::Err(e),
    }
}

/// Hands `req` to this node's controller task, or says who leads.
async fn local_controller(local: &Local, req: ControllerRequest) -> ControllerResult {
    if matches!(
        req,
        ControllerRequest::AddRaftVoter { .. } | ControllerRequest::RemoveRaftVoter { .. }
    ) {
        return change_voters(local, req).await;
    }
    let Some(tx) = &local.controller else {
        return ControllerResult::NotController { leader: None };
    };
    let (reply, rx) = oneshot::channel();
    if tx.send((req, reply)).await.is_err() {
        return ControllerResult::NotController { leader: None };
    }
    rx.await
        .unwrap_or(ControllerResult::NotController { leader: None })
}

async fn fetch_metadata(local: &Local, after: u64, max_wait_ms: u64) -> Option<Box<MetadataImage>> {
    let mut image = local.image.clone();
    let wait = Duration::from_millis(max_wait_ms.min(METADATA_FETCH_WAIT_MS));
    let newer = tokio::time::timeout(wait, image.wait_for(|i| i.applied_index > after)).await;
    match newer {
        Ok(Ok(i)) => Some(Box::new((**i).clone())),
        _ => None,
    }
}

/// This node's view of the quorum; replica progress and observers (`from_leader`) only on
/// the leader, which alone knows them. Voters are the effective membership's, with their recorded
/// directory ids; observers are its learners and every registered broker that is no voter.
fn describe(local: &Local) -> QuorumDescription {
    let Some(raft) = &local.raft else {
        // A broker-only node fetches images, not the log: its offsets are not known here.
        return QuorumDescription {
            voter_endpoints: local.options.voters.clone(),
            local_state: "observer".into(),
            local_log_end_offset: -1,
            ..Default::default()
        };
    };
    let m = raft.metrics().borrow().clone();
    let me = local.options.node_id;
    let leader = m.current_leader.map(|l| l as BrokerId);
    let local_state = match (m.state, leader) {
        (openraft::ServerState::Leader, _) => "leader",
        (openraft::ServerState::Candidate, _) => "candidate",
        (openraft::ServerState::Follower, None) => "unattached",
        (openraft::ServerState::Follower, Some(_)) => "follower",
        (openraft::ServerState::Learner, _) => "observer",
        (openraft::ServerState::Shutdown, _) => "shutdown",
    };
    let view = local.keys.as_ref().map(|k| k.view()).unwrap_or_default();
    let mut d = QuorumDescription {
        leader,
        from_leader: leader == Some(me),
        local_state: local_state.into(),
        local_log_end_offset: m.last_log_index.map_or(0, |i| i as i64 + 1),
        term: m.current_term,
        high_watermark: m.last_applied.map_or(0, |l| l.index as i64 + 1),
        voter_endpoints: view
            .voters
            .iter()
            .filter_map(|id| Some((*id as BrokerId, view.nodes.get(id)?.addr.clone())))
            .collect(),
        ..Default::default()
    };
    let now = wall_clock_ms();
    let progress = local.voters.progress.borrow();
    let leads = d.from_leader;
    let known = |id: BrokerId, from: &ProgressMap| match from.get(&id) {
        Some(p) if leads && p.term == m.current_term => {
            replica_state(id, p.log_end_offset(), p.last_fetch_ms, p.last_caught_up_ms)
        }
        _ => replica_state(id, -1, -1, -1),
    };
    let log_end = m.last_log_index.map_or(0, |i| i as i64 + 1);
    for id in &view.voters {
        let id = *id as BrokerId;
        let mut state = match id == me && leads {
            true => replica_state(id, log_end, now, now),
            false => known(id, &progress),
        };
        state.directory_id = view.nodes.get(&(id as NodeId)).and_then(|n| n.directory_id);
        d.voters.push(state);
    }
    if !leads {
        return d;
    }
    let image = local.image.borrow().clone();
    let brokers = local.observers.borrow();
    let learners = view.nodes.keys().filter(|n| !view.voters.contains(n));
    for id in learners {
        d.observers.push(known(*id as BrokerId, &progress));
    }
    for b in image.brokers.keys() {
        let voter = view.nodes.contains_key(&(*b as NodeId));
        if !voter {
            d.observers.push(known(*b, &brokers));
        }
    }
    d
}

fn replica_state(id: BrokerId, log_end: i64, fetch_ms: i64, caught_up_ms: i64) -> ReplicaState {
    ReplicaState {
        replica_id: id,
        directory_id: None,
        log_end_offset: log_end,
        last_fetch_timestamp: fetch_ms,
        last_caught_up_timestamp: caught_up_ms,
    }
}

async fn answer_quorum_descriptions(local: Arc<Local>, mut rx: mpsc::Receiver<QuorumQuery>) {
    while let Some((view, reply)) = rx.recv().await {
        let local = local.clone();
        tokio::spawn(async move {
            let d = match view {
                QuorumView::Local => Some(describe(&local)),
                QuorumView::Leader => describe_from_leader(&local).await,
            };
            if let Some(d) = d {
                let _ = reply.send(d);
            }
        });
    }
}

/// Asks the quorum leader (this node, the leader it knows, else each voter in turn, following
/// their hints) for its description, within `RPC_TIMEOUT_MS`.
async fn describe_from_leader(local: &Local) -> Option<QuorumDescription> {
    let deadline = Instant::now() + Duration::from_millis(RPC_TIMEOUT_MS);
    let mut hint = Some(local.options.node_id).filter(|_| local.raft.is_some());
    let mut next_voter = 0usize;
    while Instant::now() < deadline {
        let target = hint.take().unwrap_or_else(|| {
            next_voter += 1;
            local.options.voters[(next_voter - 1) % local.options.voters.len()].0
        });
        let d = if target == local.options.node_id && local.raft.is_some() {
            Some(describe(local))
        } else {
            remote_describe(local, target, deadline).await
        };
        match d {
            Some(d) if d.from_leader => return Some(d),
            Some(d) => hint = d.leader.filter(|l| *l != target),
            None => {}
        }
        if hint.is_none() {
            tokio::time::sleep(Duration::from_millis(ROUTE_RETRY_BACKOFF_MS)).await;
        }
    }
    None
}

async fn remote_describe(
    local: &Local,
    target: BrokerId,
    deadline: Instant,
) -> Option<QuorumDescription> {
    let mut peer = Peer::new(voter_addr(local, target)?);
    let envelope = local.identity.envelope(Request::DescribeQuorum);
    let wait = deadline.saturating_duration_since(Instant::now());
    match peer.call(&envelope, wait).await {
        Ok(reply) => match reply.body {
            Response::Quorum(d) => Some(d),
            _ => None,
        },
        _ => None,
    }
}

/// The address of voter `id`'s controller listener.
fn voter_addr(local: &Local, id: BrokerId) -> Option<String> {
    local
        .options
        .voters
        .iter()
        .find(|(v, _)| *v == id)
        .map(|(_, a)| a.clone())
}

/// Sends one controller request to the active controller, following leader hints and
/// trying every voter in turn, until `deadline`.
async fn call_controller(
    local: &Local,
    req: &ControllerRequest,
    deadline: Instant,
) -> ControllerResult {
    let mut hint: Option<BrokerId> = local
        .raft
        .as_ref()
        .and_then(|r| r.metrics().borrow().current_leader.map(|l| l as BrokerId));
    let mut next_voter = 0usize;
    loop {
        let target = hint.take().unwrap_or_else(|| {
            next_voter += 1;
            local.options.voters[(next_voter - 1) % local.options.voters.len()].0
        });
        let result = if target == local.options.node_id && local.controller.is_some() {
            local_controller(local, req.clone()).await
        } else {
            remote_controller(local, target, req).await
        };
        match result {
            ControllerResult::NotController { leader } if Instant::now() < deadline => {
                hint = leader.filter(|l| *l != target);
                tokio::time::sleep(Duration::from_millis(ROUTE_RETRY_BACKOFF_MS)).await;
            }
            other => return other,
        }
    }
}

async fn remote_controller(
    local: &Local,
    target: BrokerId,
    req: &ControllerRequest,
) -> ControllerResult {
    let Some(addr) = voter_addr(local, target) else {
        return ControllerResult::NotController { leader: None };
    };
    let mut peer = Peer::new(addr);
    let envelope = local.identity.envelope(Request::Controller(req.clone()));
    // Adding a voter answers once it caught up.
    let wait_ms = match req {
        ControllerRequest::AddRaftVoter { timeout_ms, .. } => {
            RPC_TIMEOUT_MS + (*timeout_ms).min(voters::ADD_VOTER_CATCH_UP_MS_MAX)
        }
        _ => RPC_TIMEOUT_MS,
    };
    match peer.call(&envelope, Duration::from_millis(wait_ms)).await {
        Ok(Reply {
            body: Response::Controller(r),
            ..
        }) => r,
        _ => ControllerResult::NotController { leader: None },
    }
}

async fn route_requests(local: Arc<Local>, mut rx: mpsc::Receiver<Routed>) {
    while let Some((req, reply)) = rx.recv().await {
        let local = local.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_millis(ROUTE_DEADLINE_MS);
            let _ = reply.send(call_controller(&local, &req, deadline).await);
        });
    }
}

/// Registers the broker, then heartbeats it; re-registers when its epoch goes stale.
async fn broker_lifecycle(
    local: Arc<Local>,
    status: watch::Sender<BrokerStatus>,
    shutdown: watch::Receiver<bool>,
) {
    let registration = local.options.broker.clone().expect("a broker role");
    let interval = Duration::from_millis(local.options.heartbeat_interval_ms);
    loop {
        let deadline = Instant::now() + Duration::from_millis(ROUTE_DEADLINE_MS);
        let req = ControllerRequest::RegisterBroker(registration.clone());
        let epoch = match call_controller(&local, &req, deadline).await {
            ControllerResult::Ok(ControllerReply::Registered { broker_epoch }, _) => broker_epoch,
            other => {
                tracing::info!(?other, "broker registration not accepted yet; retrying");
                tokio::time::sleep(interval).await;
                continue;
            }
        };
        status.send_replace(BrokerStatus {
            broker_epoch: epoch,
            fenced: true,
            shutdown_ok: false,
            shutdown_index: 0,
        });
        heartbeat_until_stale(&local, &status, &shutdown, epoch, interval).await;
    }
}

async fn heartbeat_until_stale(
    local: &Local,
    status: &watch::Sender<BrokerStatus>,
    shutdown: &watch::Receiver<bool>,
    epoch: i64,
    interval: Duration,
) {
    loop {
        let want_shutdown = *shutdown.borrow();
        let req = ControllerRequest::Heartbeat {
            broker_id: local.options.node_id,
            broker_epoch: epoch,
            applied_index: local.image.borrow().applied_index,
            want_shutdown,
        };
        let deadline = Instant::now() + interval;
        match call_controller(local, &req, deadline).await {
            ControllerResult::Ok(
                ControllerReply::Heartbeat {
                    fenced,
                    shutdown_ok,
                },
                index,
            ) => {
                status.send_if_modified(|s| {
                    let next = BrokerStatus {
                        broker_epoch: epoch,
                        fenced,
                        shutdown_ok,
                        shutdown_index: if shutdown_ok { index } else { 0 },
                    };
                    let changed = *s != next;
                    *s = next;
                    changed
                });
            }
            ControllerResult::Err(e)
                if e.code == errors::STALE_BROKER_EPOCH
                    || e.code == errors::BROKER_ID_NOT_REGISTERED =>
            {
                tracing::warn!(error = %e.message, "broker epoch is stale: registering again");
                return;
            }
            other => tracing::debug!(?other, "heartbeat not answered"),
        }
        // A shutting-down broker heartbeats faster so leaderships move quickly.
        let pause = if want_shutdown {
            interval / 4
        } else {
            interval
        };
        let mut shutdown = shutdown.clone();
        let _ = tokio::time::timeout(pause, shutdown.wait_for(|s| *s != want_shutdown)).await;
    }
}

/// Broker-only nodes: fetch the committed image from any voter.
async fn observe_metadata(local: Arc<Local>, image_tx: watch::Sender<Arc<MetadataImage>>) {
    let mut next = 0usize;
    let mut peer: Option<Peer> = None;
    loop {
        let after = image_tx.borrow().applied_index;
        let p = peer.get_or_insert_with(|| {
            next += 1;
            Peer::new(
                local.options.voters[(next - 1) % local.options.voters.len()]
                    .1
                    .clone(),
            )
        });
        let envelope = local.identity.envelope(Request::FetchMetadata {
            after_index: after,
            max_wait_ms: METADATA_FETCH_WAIT_MS,
        });
        let timeout = Duration::from_millis(METADATA_FETCH_WAIT_MS + RPC_TIMEOUT_MS);
        match p.call(&envelope, timeout).await.map(|r| r.body) {
            Ok(Response::Metadata(Some(image))) if image.applied_index > after => {
                image_tx.send_replace(Arc::new(*image));
            }
            Ok(Response::Metadata(_)) => {}
            _ => {
                peer = None;
                tokio::time::sleep(Duration::from_millis(ROUTE_RETRY_BACKOFF_MS * 4)).await;
            }
        }
    }
}
