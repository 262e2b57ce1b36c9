//! Consumer groups (Kafka's classic protocol): the coordinator, its state machine and the
//! committed offsets, stored in the internal topic `__consumer_offsets`.
//!
//! The coordinator of group G is the shard owning partition `abs(hash(G)) % partitions` of
//! `__consumer_offsets` (Kafka's partitioning), so its appends are local. A request decoded
//! on another shard crosses the owner's bounded inbox as `ShardMsg::Group`.

pub mod coordinator;
pub mod expire;
pub mod load;
pub mod offsets;
pub mod state;
pub mod store;

use std::collections::HashSet;
use std::rc::Rc;

use bytes::Bytes;
use futures_channel::oneshot;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;

use crate::msg::{call, ShardMsg};
use crate::shard::Shard;
use coordinator::{code, Coordinator};
use state::{Group, JoinOutcome, SyncOutcome};
use store::{partition_for, StoredOffset};

/// Kafka's internal topic for committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Records one append to `__consumer_offsets` carries at most.
pub const OFFSETS_APPEND_RECORDS_MAX: usize = 1_000;
/// Kafka's `offsets.commit.timeout.ms` default: in a cluster a commit (or any group record)
/// is answered once every in-sync replica of its offsets partition holds it, waited for at
/// most this long (then COORDINATOR_NOT_AVAILABLE, which clients retry).
pub const OFFSETS_COMMIT_TIMEOUT_MS: u64 = 5_000;

thread_local! {
    static COORDINATOR: Rc<Coordinator> = Rc::new(Coordinator::default());
}

/// This shard's coordinator.
pub fn coordinator() -> Rc<Coordinator> {
    COORDINATOR.with(Rc::clone)
}

pub struct JoinArgs {
    pub group: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a first join gets MEMBER_ID_REQUIRED and must join again with it.
    pub require_known_member: bool,
}

pub struct SyncArgs {
    pub group: String,
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

pub struct CommitArgs {
    pub group: String,
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub offsets: Vec<(String, i32, StoredOffset)>,
}

/// (member id, instance id, client id, client host, metadata, assignment)
pub type DescribedMember = (String, Option<String>, String, String, Bytes, Bytes);

#[derive(Debug, Default)]
pub struct DescribedGroupOut {
    pub error: i16,
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<DescribedMember>,
}

#[derive(Debug)]
pub struct ListedGroupOut {
    pub group_id: String,
    pub protocol_type: String,
    pub state: String,
}

/// A coordinator operation for one group (or, for `List`, for one shard's groups).
pub enum GroupOp {
    Join(JoinArgs),
    Sync(SyncArgs),
    Heartbeat {
        group: String,
        member_id: String,
        instance_id: Option<String>,
        generation: i32,
    },
    Leave {
        group: String,
        members: Vec<(String, Option<String>)>,
    },
    Commit(CommitArgs),
    Fetch {
        group: String,
        partitions: Option<Vec<(String, i32)>>,
    },
    Describe(String),
    List,
    Delete(String),
    DeleteOffsets {
        group: String,
        partitions: Vec<(String, i32)>,
    },
}

pub enum GroupAnswer {
    Join(JoinOutcome),
    Sync(SyncOutcome),
    Heartbeat(i16),
    Leave(i16, Vec<i16>),
    Commit(Vec<i16>),
    Fetch(Result<Vec<(String, i32, Option<StoredOffset>)>, i16>),
    Describe(DescribedGroupOut),
    List(Result<Vec<ListedGroupOut>, i16>),
    Delete(i16),
    DeleteOffsets(i16, Vec<i16>),
}

impl GroupOp {
    /// The answer this operation gets when the coordinator cannot serve it.
    pub fn failed(&self, error: ResponseError) -> GroupAnswer {
        let e = code(error);
        match self {
            GroupOp::Join(a) => GroupAnswer::Join(JoinOutcome::error(e, &a.member_id)),
            GroupOp::Sync(_) => GroupAnswer::Sync(SyncOutcome {
                error: e,
                ..SyncOutcome::default()
            }),
            GroupOp::Heartbeat { .. } => GroupAnswer::Heartbeat(e),
            GroupOp::Leave { members, .. } => GroupAnswer::Leave(e, vec![e; members.len()]),
            GroupOp::Commit(a) => GroupAnswer::Commit(vec![e; a.offsets.len()]),
            GroupOp::Fetch { .. } => GroupAnswer::Fetch(Err(e)),
            GroupOp::Describe(g) => GroupAnswer::Describe(DescribedGroupOut {
                error: e,
                group_id: g.clone(),
                ..DescribedGroupOut::default()
            }),
            GroupOp::List => GroupAnswer::List(Err(e)),
            GroupOp::Delete(_) => GroupAnswer::Delete(e),
            GroupOp::DeleteOffsets { .. } => GroupAnswer::DeleteOffsets(e, vec![]),
        }
    }
}

/// The shard coordinating `group` and its `__consumer_offsets` partition, once that topic
/// exists.
pub fn coordinator_of(shard: &Shard, group: &str) -> Option<(usize, i32)> {
    let meta = shard.metadata();
    let topic = meta.topic(OFFSETS_TOPIC)?;
    let p = partition_for(group, topic.partitions.len() as i32);
    Some((topic.partitions[p as usize].shard, p))
}

/// In a cluster only the leader of a group's offsets partition coordinates the group.
fn leads_offsets_partition(shard: &Shard, partition: i32) -> bool {
    let meta = shard.metadata();
    meta.topic(OFFSETS_TOPIC)
        .and_then(|t| t.partitions.get(partition as usize))
        .is_some_and(|p| p.is_led_by(shard.broker.node_id))
}

/// Runs `op` for `group` on its coordinator shard and waits for the answer.
pub async fn route(shard: &Rc<Shard>, group: &str, op: GroupOp) -> GroupAnswer {
    let Some((to, p)) = coordinator_of(shard, group) else {
        return op.failed(ResponseError::CoordinatorNotAvailable);
    };
    if !leads_offsets_partition(shard, p) {
        return op.failed(ResponseError::NotCoordinator);
    }
    if to == shard.id {
        return handle_local(shard.clone(), op).await;
    }
    let fallback = op.failed(ResponseError::CoordinatorNotAvailable);
    call(&shard.peers, to, |reply| ShardMsg::Group { op, reply })
        .await
        .unwrap_or(fallback)
}

/// ListGroups on one shard (`to`), local or across its inbox.
pub async fn list_on(shard: &Rc<Shard>, to: usize) -> GroupAnswer {
    if to == shard.id {
        return handle_local(shard.clone(), GroupOp::List).await;
    }
    call(&shard.peers, to, |reply| ShardMsg::Group {
        op: GroupOp::List,
        reply,
    })
    .await
    .unwrap_or(GroupAnswer::List(Err(code(
        ResponseError::CoordinatorNotAvailable,
    ))))
}

/// Serves a `ShardMsg::Group` that arrived in this shard's inbox.
pub async fn serve(shard: Rc<Shard>, op: GroupOp, reply: oneshot::Sender<GroupAnswer>) {
    let _ = reply.send(handle_local(shard, op).await);
}

async fn handle_local(shard: Rc<Shard>, op: GroupOp) -> GroupAnswer {
    let c = coordinator();
    if !c.loaded.get() {
        return op.failed(ResponseError::CoordinatorLoadInProgress);
    }
    match op {
        GroupOp::Join(a) => GroupAnswer::Join(c.join(&shard, a).await),
        GroupOp::Sync(a) => GroupAnswer::Sync(c.sync(&shard, a).await),
        GroupOp::Heartbeat {
            group,
            member_id,
            instance_id,
            generation,
        } => GroupAnswer::Heartbeat(c.heartbeat(
            &group,
            &member_id,
            instance_id.as_deref(),
            generation,
        )),
        GroupOp::Leave { group, members } => {
            let (e, each) = c.leave(&shard, &group, &members);
            GroupAnswer::Leave(e, each)
        }
        GroupOp::Commit(a) => GroupAnswer::Commit(c.commit(&shard, a).await),
        GroupOp::Fetch { group, partitions } => {
            GroupAnswer::Fetch(Ok(c.fetch_offsets(&group, partitions)))
        }
        GroupOp::Describe(g) => GroupAnswer::Describe(c.describe(&g)),
        GroupOp::List => GroupAnswer::List(Ok(c.list())),
        GroupOp::Delete(g) => GroupAnswer::Delete(c.delete_group(&shard, &g).await),
        GroupOp::DeleteOffsets { group, partitions } => {
            let (e, each) = c.delete_offsets(&shard, &group, partitions).await;
            GroupAnswer::DeleteOffsets(e, each)
        }
    }
}

/// Appends (key, value-or-tombstone) records for `group` to its `__consumer_offsets`
/// partition, owned by this shard, through the shard's group-commit path. In a cluster it
/// returns once the partition's high watermark passed them (Kafka's coordinator appends
/// with acks=all): a commit answered before its followers held it would be lost with the
/// coordinator, and the group would resume from older offsets on the next one.
pub async fn persist(
    shard: &Rc<Shard>,
    group: &str,
    records: Vec<(Bytes, Option<Bytes>)>,
) -> Result<(), String> {
    let (owner, p) = coordinator_of(shard, group).ok_or("__consumer_offsets does not exist")?;
    assert_eq!(
        owner, shard.id,
        "group {group} persisted off its coordinator shard"
    );
    let meta = shard.metadata();
    let info = meta.topic(OFFSETS_TOPIC).ok_or("no topic")?.partitions[p as usize].clone();
    let tp = crate::shard::TopicPartition {
        topic: OFFSETS_TOPIC.into(),
        partition: p,
    };
    let log = shard
        .log(&tp)
        .ok_or("__consumer_offsets partition not open")?;
    let now = state::now_ms();
    let mut last_offset = None;
    for chunk in records.chunks(OFFSETS_APPEND_RECORDS_MAX) {
        let list: Vec<sluice_engine::testing::TestRecord<'_>> = chunk
            .iter()
            .map(|(k, v)| (Some(&k[..]), v.as_deref(), now))
            .collect();
        let batch = sluice_engine::testing::build_batch(&list);
        let appended = shard
            .appender
            .append(log.clone(), info.clone(), batch)
            .await
            .map_err(|e| format!("{e:?}"))?;
        last_offset = Some(appended.last_offset);
    }
    match (last_offset, &shard.broker.cluster) {
        (Some(last), Some(_)) => {
            let wait = std::time::Duration::from_millis(OFFSETS_COMMIT_TIMEOUT_MS);
            let deadline = std::time::Instant::now() + wait;
            crate::replica::wait_committed(shard, &tp, last, deadline)
                .await
                .map_err(|e| format!("the in-sync replicas did not all take it: {e:?}"))
        }
        _ => Ok(()),
    }
}

/// The topics the group's members subscribe to (consumer protocol only; members whose
/// subscription does not decode are skipped).
pub fn subscribed_topics(group: &Group) -> HashSet<String> {
    subscriptions(group).0
}

/// The topics the group's members subscribe to, or `None` unless every member's
/// subscription decodes (a consumer group's offsets expire by topic only when all are known).
pub fn known_subscriptions(group: &Group) -> Option<HashSet<String>> {
    match subscriptions(group) {
        (topics, true) if group.protocol_type.as_deref() == Some("consumer") => Some(topics),
        _ => None,
    }
}

/// (decoded topics, whether every member's subscription decoded).
fn subscriptions(group: &Group) -> (HashSet<String>, bool) {
    if group.protocol_type.as_deref() != Some("consumer") {
        return (HashSet::new(), true);
    }
    let protocol = group.protocol.clone().unwrap_or_default();
    let mut topics = HashSet::new();
    let mut all = true;
    for m in group.members.values() {
        let mut meta = m.metadata(&protocol);
        if meta.len() < 2 {
            all = false;
            continue;
        }
        let version = i16::from_be_bytes([meta[0], meta[1]]);
        bytes::Buf::advance(&mut meta, 2);
        match ConsumerProtocolSubscription::decode(&mut meta, version.clamp(0, 3)) {
            Ok(s) => topics.extend(s.topics.iter().map(|t| t.to_string())),
            Err(_) => all = false,
        }
    }
    (topics, all)
}
