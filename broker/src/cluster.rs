//! Cluster mode (`process.roles` set): the broker's side of the control plane.
//!
//! `start` runs the node's control plane (`sluice_replication::start`: the metadata quorum,
//! the active controller, registration and heartbeats) on its own thread. Shard 0 runs
//! `apply_images`: each committed `MetadataImage` becomes local partition logs (created for
//! every partition with a replica here, deleted with their topic) and a `ClusterMetadata`
//! snapshot with leaders, replicas and ISRs, published to every shard as on a single node.
//! Decisions (topic creation and deletion, configs, partitions) are forwarded to the active
//! controller by `forward`; nothing here decides.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use futures_util::future::join_all;
use kafka_protocol::error::ResponseError;
use sluice_engine::TopicId;
use sluice_replication::controller::LeaderImbalance;
use sluice_replication::{
    gossip::GossipOptions, BrokerRegistration, ClusterHandle, ClusterOptions, ControllerError,
    ControllerReply, ControllerRequest, ControllerRole, Endpoint, MetadataImage, TopicImage,
};

use crate::config::{ClusterConfig, Listener};
use crate::controller::{ConfigChange, ControllerCmd, ControllerResult, Replicas};
use crate::metadata::{
    owner_shard, validate_topic_name, BrokerEndpoint, ClusterMetadata, PartitionInfo, Replication,
    TopicInfo,
};
use crate::msg::{call, ShardMsg};
use crate::shard::{Shard, TopicPartition};
use crate::topic_config::TopicConfig;

/// How long a forwarded decision waits for the local snapshot to show it.
pub const APPLY_WAIT_MS_MAX: u64 = 30_000;

/// What startup knows when it starts the control plane.
pub struct ClusterStart<'a> {
    pub cluster: &'a ClusterConfig,
    pub cluster_id: &'a str,
    /// Where clients (and other brokers) reach this node, bound ports filled in.
    pub advertised: &'a [Listener],
    /// `directory.id` of the metadata log dir and of every log dir.
    pub metadata_directory_id: uuid::Uuid,
    pub log_dir_ids: Vec<uuid::Uuid>,
}

pub fn start(s: ClusterStart<'_>) -> Result<(ClusterHandle, std::thread::JoinHandle<()>), String> {
    crate::topic_config::set_replicated();
    let c = s.cluster;
    let broker = c.roles.has_broker().then(|| BrokerRegistration {
        broker_id: c.node_id,
        incarnation_id: uuid::Uuid::new_v4(),
        listeners: s
            .advertised
            .iter()
            .map(|l| Endpoint {
                name: l.name.clone(),
                host: l.host.clone(),
                port: l.port,
            })
            .collect(),
        inter_broker_listener: c.inter_broker_listener_name.clone(),
        rack: c.rack.clone(),
        log_dirs: s.log_dir_ids.clone(),
    });
    let controller = c.controller_addr.map(|listen| ControllerRole {
        listen,
        metadata_dir: c.metadata_log_dir.clone(),
        directory_id: s.metadata_directory_id,
    });
    let options = ClusterOptions {
        cluster_id: s.cluster_id.to_string(),
        node_id: c.node_id,
        voters: c
            .voters
            .iter()
            .map(|(id, a)| (*id, a.to_string()))
            .collect(),
        controller,
        broker,
        session_timeout_ms: c.replication.session_timeout_ms,
        heartbeat_interval_ms: c.replication.heartbeat_interval_ms,
        election_timeout_ms: c.replication.quorum_election_timeout_ms,
        unclean_leader_election: c.replication.unclean_leader_election_enable,
        gossip: c.replication.gossip_enable.then(|| GossipOptions {
            cluster_id: s.cluster_id.to_string(),
            node_id: c.node_id,
            addr: c.gossip_addr,
            // A voter's gossip socket is, by default, at its controller listener's address.
            seeds: c.voters.clone(),
            rack: c.rack.clone(),
            probe_interval_ms: c.replication.gossip_probe_interval_ms,
            suspect_timeout_ms: c.replication.gossip_suspect_timeout_ms,
        }),
        leader_imbalance: c
            .replication
            .auto_leader_rebalance_enable
            .then(|| LeaderImbalance {
                check_interval_ms: c.replication.leader_imbalance_check_interval_seconds * 1000,
                per_broker_percentage: c.replication.leader_imbalance_per_broker_percentage,
            }),
    };
    sluice_replication::start(options).map_err(|e| format!("starting the metadata quorum: {e}"))
}

/// Kafka's error for a forwarded decision that failed.
fn controller_error(e: ControllerError) -> (i16, String) {
    (e.code, e.message)
}

/// Sends a decision to the active controller, then waits until this broker's shards route
/// by the image holding it (so a CreateTopics answer is followed by a Metadata that knows
/// the topic, as on a single node).
pub async fn forward(
    shard: &Shard,
    handle: &ClusterHandle,
    req: ControllerRequest,
) -> ControllerResult<()> {
    let (_, index) = handle.call_committed(req).await.map_err(controller_error)?;
    wait_applied(shard, index).await;
    Ok(())
}

/// Waits (bounded) until shard `shard`'s snapshot was built from an image at `index` or later.
pub async fn wait_applied(shard: &Shard, index: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(APPLY_WAIT_MS_MAX);
    while shard.metadata().image_index < index && std::time::Instant::now() < deadline {
        compio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Set once this broker was first unfenced and its shards' metadata lists it.
static SERVING_CLIENTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Kafka's broker enables request processing on its listeners only once the controller
/// first unfenced it (`BrokerServer` waits for the initial unfence): before that its
/// Metadata would name no broker, not even itself, and no controller, and a client that
/// saw that (librdkafka's admin client waiting for a controller) can wait out its whole
/// request timeout. A connection accepted earlier (the kernel completed its handshake)
/// waits here until this broker was unfenced and this shard's snapshot lists it (bounded by
/// `APPLY_WAIT_MS_MAX` for the snapshot) or the broker stops. Fenced again later, the
/// broker keeps serving, as in Kafka. Nothing waits on a single node.
pub async fn wait_first_unfenced(shard: &Shard) {
    use std::sync::atomic::Ordering::Relaxed;
    let Some(handle) = shard.broker.cluster.as_ref() else {
        return;
    };
    if SERVING_CLIENTS.load(Relaxed)
        || shard
            .config
            .cluster
            .as_ref()
            .is_some_and(|c| !c.roles.has_broker())
    {
        return;
    }
    let mut status = handle.broker.clone();
    let stop = shard.stop.listen();
    if shard.stopping.get() {
        return;
    }
    let unfenced = std::pin::pin!(status.wait_for(|s| s.broker_epoch > 0 && !s.fenced));
    if let futures_util::future::Either::Right(_) =
        futures_util::future::select(unfenced, stop).await
    {
        return;
    }
    let me = shard.broker.node_id;
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(APPLY_WAIT_MS_MAX);
    while !shard.metadata().brokers.iter().any(|b| b.node_id == me)
        && std::time::Instant::now() < deadline
        && !shard.stopping.get()
    {
        compio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    if !SERVING_CLIENTS.swap(true, Relaxed) {
        tracing::info!("registered and unfenced: serving clients");
    }
}

/// Shard 0: turns every new committed image into local logs and a published snapshot.
pub async fn apply_images(shard: Rc<Shard>, handle: ClusterHandle) {
    shard.wait_ready().await;
    let mut local = local_partitions(&shard).await;
    let mut prev = Arc::new(MetadataImage::default());
    let mut image_rx = handle.image.clone();
    loop {
        let image = image_rx.borrow_and_update().clone();
        if !Arc::ptr_eq(&image, &prev) {
            let caught_up = caught_up(&handle, &image);
            apply_image(&shard, &prev, &image, &mut local, caught_up).await;
            prev = image;
        }
        if wait_changed(&mut image_rx, &shard).await.is_err() {
            return;
        }
    }
}

/// Waits for the next image, from the shard's runtime (tokio's watch works from any).
async fn wait_changed(
    rx: &mut tokio::sync::watch::Receiver<Arc<MetadataImage>>,
    shard: &Shard,
) -> Result<(), ()> {
    let stop = shard.stop.listen();
    if shard.stopping.get() {
        return Err(());
    }
    let changed = std::pin::pin!(rx.changed());
    match futures_util::future::select(changed, stop).await {
        futures_util::future::Either::Left((Ok(()), _)) => Ok(()),
        _ => Err(()),
    }
}

/// The image holds at least everything up to this broker's registration: a topic it lacks
/// was really deleted (not merely not yet replayed).
fn caught_up(handle: &ClusterHandle, image: &MetadataImage) -> bool {
    let epoch = handle.broker.borrow().broker_epoch;
    epoch > 0 && image.applied_index >= epoch as u64
}

/// Partitions with a local log: (topic, partition) → topic id.
type Local = HashMap<(Arc<str>, i32), TopicId>;

async fn local_partitions(shard: &Shard) -> Local {
    let lists = join_all(
        (0..shard.shard_count())
            .map(|to| call(&shard.peers, to, |reply| ShardMsg::LocalLogs { reply })),
    )
    .await;
    lists
        .into_iter()
        .flatten()
        .flatten()
        .map(|(tp, id)| ((tp.topic, tp.partition), id))
        .collect()
}

async fn apply_image(
    shard: &Rc<Shard>,
    prev: &MetadataImage,
    image: &Arc<MetadataImage>,
    local: &mut Local,
    caught_up: bool,
) {
    let me = shard.broker.node_id;
    if caught_up {
        delete_strays(shard, image, local).await;
    }
    create_local(shard, image, local, me).await;
    update_configs(shard, prev, image, local).await;
    let min_insync = shard
        .config
        .cluster
        .as_ref()
        .map_or(1, |c| c.replication.min_insync_replicas);
    let snapshot = snapshot_from_image(
        &shard.metadata(),
        image,
        (shard.shard_count(), min_insync),
        local_listener(shard),
    );
    crate::controller::publish(shard, Arc::new(snapshot)).await;
    shard
        .broker
        .published_image_index
        .fetch_max(image.applied_index, std::sync::atomic::Ordering::AcqRel);
}

/// The listener name clients of this broker use (Metadata answers each broker's endpoint
/// on it).
fn local_listener(shard: &Shard) -> String {
    shard
        .config
        .effective_advertised()
        .first()
        .map_or_else(|| "PLAINTEXT".to_string(), |l| l.name.clone())
}

/// Deletes local partitions whose topic the image no longer has (or has under a new id).
async fn delete_strays(shard: &Rc<Shard>, image: &MetadataImage, local: &mut Local) {
    let strays: Vec<(Arc<str>, i32)> = local
        .iter()
        .filter(|((name, p), id)| {
            image.topic(name).is_none_or(|t| {
                t.id != id.0
                    || !t
                        .partitions
                        .get(*p as usize)
                        .is_some_and(|r| r.replicas.contains(&shard.broker.node_id))
            })
        })
        .map(|(k, _)| k.clone())
        .collect();
    for (name, partition) in strays {
        let tp = TopicPartition {
            topic: name.clone(),
            partition,
        };
        let owner = owner_shard(&name, partition, shard.shard_count());
        match call(&shard.peers, owner, |reply| ShardMsg::DeletePartition {
            tp,
            reply,
        })
        .await
        {
            Ok(Ok(())) => {
                tracing::info!(topic = %name, partition, "deleted a local replica the metadata no longer assigns here");
                local.remove(&(name, partition));
            }
            Ok(Err(m)) => tracing::warn!("{m}"),
            Err(e) => tracing::warn!("deleting {name}-{partition}: {e}"),
        }
    }
}

/// A topic's overrides as the metadata log holds them.
pub fn topic_config(t: &TopicImage) -> TopicConfig {
    TopicConfig::from_pairs(t.configs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap_or_else(|e| {
        tracing::error!(topic = %t.name, "the metadata holds a config this broker refuses ({e}); using defaults");
        TopicConfig::default()
    })
}

/// Creates a log for every partition with a replica here that has none yet.
async fn create_local(shard: &Rc<Shard>, image: &MetadataImage, local: &mut Local, me: i32) {
    let mut wanted = Vec::new();
    for t in image.topics.values() {
        let name: Arc<str> = t.name.as_str().into();
        for (i, p) in t.partitions.iter().enumerate() {
            let key = (name.clone(), i as i32);
            if p.replicas.contains(&me) && !local.contains_key(&key) {
                wanted.push((key, TopicId(t.id), Arc::new(topic_config(t))));
            }
        }
    }
    let created = join_all(wanted.iter().map(|((name, partition), id, config)| {
        let tp = TopicPartition {
            topic: name.clone(),
            partition: *partition,
        };
        let owner = owner_shard(name, *partition, shard.shard_count());
        crate::controller::create_on_owner(shard, owner, tp, (*id, config.clone()))
    }))
    .await;
    for (((name, partition), id, _), r) in wanted.into_iter().zip(created) {
        match r {
            Ok(Ok(())) => {
                local.insert((name, partition), id);
            }
            Ok(Err(m)) => tracing::error!("creating a replica: {m}"),
            Err(e) => tracing::error!("creating {name}-{partition}: {e}"),
        }
    }
}

/// Sends changed topic configs to the local partitions' owners.
async fn update_configs(
    shard: &Rc<Shard>,
    prev: &MetadataImage,
    image: &MetadataImage,
    local: &Local,
) {
    for t in image.topics.values() {
        if prev
            .topics
            .get(&t.id)
            .is_none_or(|old| old.configs == t.configs)
        {
            continue;
        }
        let config = Arc::new(topic_config(t));
        let name: Arc<str> = t.name.as_str().into();
        for partition in 0..t.partitions.len() as i32 {
            if !local.contains_key(&(name.clone(), partition)) {
                continue;
            }
            let tp = TopicPartition {
                topic: name.clone(),
                partition,
            };
            let owner = owner_shard(&name, partition, shard.shard_count());
            let config = config.clone();
            let r = crate::ops::admin_routed(shard, owner, tp, move |reply| {
                crate::ops::PartitionAdmin::SetConfig { config, reply }
            })
            .await;
            if let Ok(Err(m)) | Err(m) = r.map_err(|e| e.to_string()) {
                tracing::warn!(topic = %t.name, partition, "applying a topic config: {m}");
            }
        }
    }
}

/// The shards' view of `image`. Partition signals are carried over from `prev` so parked
/// long polls keep waking.
pub fn snapshot_from_image(
    prev: &ClusterMetadata,
    image: &MetadataImage,
    (shards, min_insync_default): (usize, i32),
    listener: String,
) -> ClusterMetadata {
    let mut next = ClusterMetadata {
        version: prev.version + 1,
        image_index: image.applied_index,
        ..Default::default()
    };
    for t in image.topics.values() {
        let name: Arc<str> = t.name.as_str().into();
        let old = prev.topic(&name).filter(|o| o.id.0 == t.id);
        let min_insync_replicas = t
            .configs
            .get("min.insync.replicas")
            .and_then(|v| v.parse().ok())
            .unwrap_or(min_insync_default);
        let throttles =
            crate::throttle::TopicThrottles::from_configs(&t.name, |k| t.configs.get(k).cloned());
        let partitions = t
            .partitions
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let index = i as i32;
                let appended = old
                    .and_then(|o| o.partitions.get(i))
                    .map_or_else(Default::default, |o| o.appended.clone());
                Arc::new(PartitionInfo {
                    index,
                    shard: owner_shard(&name, index, shards),
                    appended,
                    replication: Some(Replication {
                        leader: p.leader,
                        leader_epoch: p.leader_epoch,
                        partition_epoch: p.partition_epoch,
                        replicas: p.replicas.clone(),
                        isr: p.isr.clone(),
                        min_insync_replicas,
                        last_unclean_epoch: p.last_unclean_epoch,
                        throttles: throttles.clone(),
                    }),
                })
            })
            .collect();
        let topic = Arc::new(TopicInfo {
            name: name.clone(),
            id: TopicId(t.id),
            partitions,
        });
        next.topics_by_id.insert(t.id, topic.clone());
        next.topics.insert(name, topic);
    }
    let endpoint = |b: &sluice_replication::BrokerState| {
        let e = b.endpoint(&listener)?;
        Some(BrokerEndpoint {
            node_id: b.registration.broker_id,
            host: e.host.clone(),
            port: e.port,
            rack: b.registration.rack.clone(),
            fenced: b.fenced,
        })
    };
    next.brokers = image.active_brokers().filter_map(endpoint).collect();
    next.registered = image.brokers.values().filter_map(endpoint).collect();
    // Kafka in KRaft mode answers a random live broker as "controller"; admin requests sent
    // to it are forwarded. The lowest id keeps the answer stable.
    next.controller_id = next.brokers.iter().map(|b| b.node_id).min();
    next.inter_broker = image
        .brokers
        .values()
        .filter_map(|b| {
            let e = b.inter_broker_endpoint()?;
            Some((b.registration.broker_id, (e.host.clone(), e.port)))
        })
        .collect();
    next
}

/// Longest a stopping broker waits for the controller to move its leaderships away (and
/// for its shards to apply that).
pub const CONTROLLED_SHUTDOWN_MS_MAX: u64 = 10_000;
/// How often a controlled shutdown checks whether the shards applied the agreed image.
const SHUTDOWN_APPLY_POLL_MS: u64 = 2;

/// Kafka's controlled shutdown (`controlled.shutdown.enable`): before the shards stop, the
/// broker asks the controller to move every leadership it holds to an in-sync follower and
/// take it out of the ISRs, and waits (at most `CONTROLLED_SHUTDOWN_MS_MAX`) until the
/// controller agrees; clients then see NOT_LEADER_OR_FOLLOWER and a metadata refresh, not
/// a session timeout. Partitions with no other live ISR member keep it as leader.
///
/// Once the controller agreed, the shards must also apply the image it agreed at before
/// they stop: until then they still see themselves leading, and would answer their
/// waiting acks=all produces REQUEST_TIMED_OUT (and Metadata would still name this broker)
/// instead of NOT_LEADER_OR_FOLLOWER with the new leader.
pub async fn controlled_shutdown(handle: &ClusterHandle, broker: &crate::shard::BrokerInfo) {
    let start = std::time::Instant::now();
    if handle.broker.borrow().broker_epoch <= 0 {
        return; // never registered: nothing to hand over
    }
    handle.begin_controlled_shutdown();
    let mut status = handle.broker.clone();
    let wait = std::time::Duration::from_millis(CONTROLLED_SHUTDOWN_MS_MAX);
    let agreed = compio::time::timeout(wait, async move {
        let ok = status.wait_for(|s| s.shutdown_ok).await.ok()?;
        let index = ok.shutdown_index;
        drop(ok);
        while broker
            .published_image_index
            .load(std::sync::atomic::Ordering::Acquire)
            < index
        {
            compio::time::sleep(std::time::Duration::from_millis(SHUTDOWN_APPLY_POLL_MS)).await;
        }
        Some(())
    })
    .await;
    match agreed {
        Ok(Some(())) => tracing::info!(
            "controlled shutdown: leaderships moved in {:?}",
            start.elapsed()
        ),
        _ => tracing::warn!(
            "controlled shutdown: the controller did not agree within {wait:?}; stopping anyway"
        ),
    }
}

/// `found` with every partition's leader unknown (a cluster node before its first image).
pub fn leaderless(found: &ClusterMetadata) -> ClusterMetadata {
    let mut next = ClusterMetadata {
        version: found.version,
        ..Default::default()
    };
    for t in found.topics.values() {
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                Arc::new(PartitionInfo {
                    index: p.index,
                    shard: p.shard,
                    appended: p.appended.clone(),
                    replication: Some(Replication {
                        leader: sluice_replication::NO_LEADER,
                        leader_epoch: -1,
                        partition_epoch: -1,
                        replicas: vec![],
                        isr: vec![],
                        min_insync_replicas: 1,
                        last_unclean_epoch: sluice_replication::records::NO_UNCLEAN_EPOCH,
                        throttles: Default::default(),
                    }),
                })
            })
            .collect();
        let topic = Arc::new(TopicInfo {
            name: t.name.clone(),
            id: t.id,
            partitions,
        });
        next.topics_by_id.insert(t.id.0, topic.clone());
        next.topics.insert(t.name.clone(), topic);
    }
    next
}

/// Kafka's code when the cluster cannot take a decision right now.
pub fn not_controller(message: &str) -> (i16, String) {
    (ResponseError::NotController.code(), message.to_string())
}

/// The broker's controller commands in cluster mode: checked here as on a single node, then
/// decided by the active controller.
pub async fn serve_cmd(shard: &Rc<Shard>, handle: &ClusterHandle, cmd: ControllerCmd) {
    match cmd {
        ControllerCmd::CreateTopic {
            name,
            partitions,
            config,
            replicas,
            validate_only,
            reply,
        } => {
            let _ = reply.send(
                create_topic(
                    shard,
                    handle,
                    &name,
                    (partitions, config, replicas),
                    validate_only,
                )
                .await,
            );
        }
        ControllerCmd::DeleteTopic { name, reply } => {
            let _ = reply.send(delete_topic(shard, handle, &name).await);
        }
        ControllerCmd::AlterTopicConfig {
            name,
            change,
            validate_only,
            reply,
        } => {
            let _ =
                reply.send(alter_topic_config(shard, handle, &name, change, validate_only).await);
        }
        ControllerCmd::CreatePartitions {
            name,
            count,
            validate_only,
            reply,
        } => {
            let req = ControllerRequest::CreatePartitions {
                name,
                count,
                validate_only,
            };
            let _ = reply.send(forward(shard, handle, req).await);
        }
        // A broker's own dynamic configs stay in its first log dir, as on a single node; the
        // cluster default would belong in the metadata log, which does not keep it yet.
        ControllerCmd::AlterBrokerConfig {
            per_broker,
            change,
            validate_only,
            reply,
        } => {
            let r = match per_broker {
                true => {
                    crate::dynamic_config::alter_on_controller(shard, true, change, validate_only)
                        .await
                }
                false => Err((
                    ResponseError::InvalidRequest.code(),
                    "the cluster default (\"\") of broker configs is not kept in the cluster's \
                     metadata yet: alter each broker's own configs"
                        .to_string(),
                )),
            };
            let _ = reply.send(r);
        }
    }
}

async fn create_topic(
    shard: &Rc<Shard>,
    handle: &ClusterHandle,
    name: &str,
    (partitions, config, replicas): (i32, TopicConfig, Replicas),
    validate_only: bool,
) -> ControllerResult<Arc<TopicInfo>> {
    validate_topic_name(name).map_err(|m| (ResponseError::InvalidTopicException.code(), m))?;
    let (replication_factor, assignments) = match replicas {
        Replicas::Factor(rf) => (rf, None),
        Replicas::Assigned(lists) => (lists.first().map_or(0, |l| l.len() as i16), Some(lists)),
    };
    let req = ControllerRequest::CreateTopic {
        name: name.to_string(),
        partitions,
        replication_factor,
        assignments,
        configs: config.pairs(),
        validate_only,
    };
    let (reply, index) = handle.call_committed(req).await.map_err(controller_error)?;
    let ControllerReply::TopicCreated {
        topic_id,
        partitions,
    } = reply
    else {
        return Err(not_controller(
            "the controller answered CreateTopic with something else",
        ));
    };
    if validate_only {
        return Ok(Arc::new(crate::metadata::new_topic(
            name,
            TopicId(topic_id),
            partitions.len() as i32,
            shard.shard_count(),
        )));
    }
    wait_applied(shard, index).await;
    shard
        .metadata()
        .topic(name)
        .cloned()
        .ok_or_else(|| not_controller("the new topic did not reach this broker's metadata in time"))
}

async fn delete_topic(
    shard: &Rc<Shard>,
    handle: &ClusterHandle,
    name: &str,
) -> ControllerResult<Arc<TopicInfo>> {
    let topic = shard.metadata().topic(name).cloned();
    forward(
        shard,
        handle,
        ControllerRequest::DeleteTopic {
            name: name.to_string(),
        },
    )
    .await?;
    topic.ok_or_else(|| {
        (
            ResponseError::UnknownTopicOrPartition.code(),
            format!("Topic '{name}' does not exist."),
        )
    })
}

async fn alter_topic_config(
    shard: &Rc<Shard>,
    handle: &ClusterHandle,
    name: &str,
    change: ConfigChange,
    validate_only: bool,
) -> ControllerResult<()> {
    let image = handle.image.borrow().clone();
    let topic = image.topic(name).ok_or_else(|| {
        (
            ResponseError::UnknownTopicOrPartition.code(),
            format!("Topic '{name}' does not exist."),
        )
    })?;
    let current = topic_config(topic);
    let next = crate::controller::apply_change(&current, change)?;
    if validate_only || next == current {
        return Ok(());
    }
    let req = ControllerRequest::AlterTopicConfig {
        name: name.to_string(),
        configs: next.pairs(),
    };
    forward(shard, handle, req).await
}
