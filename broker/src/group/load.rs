//! Rebuilding the coordinator from `__consumer_offsets`, and keeping that replay bounded.
//!
//! Replay is bounded by a **checkpoint** per partition, not by compaction: every
//! `COORDINATOR_CHECKPOINT_INTERVAL_MS` the coordinator writes, for each of its partitions
//! that advanced, `coordinator.checkpoint` in the partition directory: the next offset to
//! replay from (`i64`, big-endian) followed by one magic-v2 batch (CRC-32C checked on read)
//! holding the latest value of every live key. Startup loads the checkpoint, then replays
//! only the records after it. Written as tmp file, fsync, rename; a missing or corrupt
//! checkpoint means a replay from the log start.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use kafka_protocol::records::RecordBatchDecoder;
use sluice_engine::{FetchIsolation, FirstBatch};

use super::coordinator::{deadline_ms, Coordinator};
use super::state::{Group, GroupState, Member};
use super::store::{
    decode_group, decode_key, decode_offset, encode_group, encode_key, encode_offset,
    partition_for, StoredKey,
};
use super::{coordinator, OFFSETS_TOPIC};
use crate::shard::{Shard, TopicPartition};

pub const CHECKPOINT_FILE: &str = "coordinator.checkpoint";
/// How often advanced partitions are checkpointed (bounds replay at startup).
pub const COORDINATOR_CHECKPOINT_INTERVAL_MS: u64 = 30_000;
/// Bytes read from the log per step while loading.
pub const LOAD_READ_BYTES: u32 = 1 << 20;
/// Tries to find a moment with no append in flight before skipping a checkpoint round.
const CHECKPOINT_TRIES_MAX: u32 = 50;

/// Shard 0: creates `__consumer_offsets` once the broker is ready, if it does not exist.
pub async fn ensure_offsets_topic(shard: Rc<Shard>) {
    shard.wait_ready().await;
    if shard.metadata().topic(OFFSETS_TOPIC).is_some() {
        return;
    }
    let partitions = shard.config.offsets_topic_num_partitions;
    if shard.broker.cluster.is_some() {
        return ensure_replicated_offsets_topic(&shard, partitions).await;
    }
    let replicas = crate::controller::Replicas::Factor(shard.config.default_replication_factor);
    let create = (partitions, offsets_topic_config(), replicas);
    match crate::controller::request_create_with_config(&shard, OFFSETS_TOPIC, create, false).await
    {
        Ok(_) => tracing::info!("created {OFFSETS_TOPIC} with {partitions} partitions"),
        Err((_, m)) => tracing::error!("creating {OFFSETS_TOPIC}: {m}"),
    }
}

/// How often a cluster broker checks whether enough brokers registered for the offsets topic.
const OFFSETS_TOPIC_CHECK_MS: u64 = 500;

/// As Kafka's: the coordinator's batches are stored as written (it reads them back
/// uncompressed), whatever the broker's `compression.type`.
fn offsets_topic_config() -> crate::topic_config::TopicConfig {
    crate::topic_config::TopicConfig::from_pairs([("compression.type", "producer")])
        .expect("a valid topic config")
}

/// Kafka's rule in a cluster: `__consumer_offsets` is created with
/// `offsets.topic.replication.factor` replicas once that many brokers are registered (until
/// then FindCoordinator answers COORDINATOR_NOT_AVAILABLE). Any broker may create it first;
/// the others then find it exists.
async fn ensure_replicated_offsets_topic(shard: &Rc<Shard>, partitions: i32) {
    let rf = shard.config.offsets_topic_replication_factor;
    while !shard.stopping.get() {
        let meta = shard.metadata();
        if meta.topic(OFFSETS_TOPIC).is_some() {
            return;
        }
        if meta.brokers.len() >= rf as usize {
            let create = (
                partitions,
                offsets_topic_config(),
                crate::controller::Replicas::Factor(rf),
            );
            match crate::controller::request_create_with_config(shard, OFFSETS_TOPIC, create, false)
                .await
            {
                Ok(_) => {
                    tracing::info!(
                        "created {OFFSETS_TOPIC} with {partitions} partitions of {rf} replicas"
                    );
                    return;
                }
                Err((code, m))
                    if code != kafka_protocol::error::ResponseError::TopicAlreadyExists.code() =>
                {
                    tracing::warn!("creating {OFFSETS_TOPIC}: {m}")
                }
                Err(_) => return,
            }
        }
        compio::time::sleep(std::time::Duration::from_millis(OFFSETS_TOPIC_CHECK_MS)).await;
    }
}

/// Called when a metadata snapshot arrives: the first one holding `__consumer_offsets`
/// starts loading this shard's partitions of it.
pub fn on_metadata(shard: &Rc<Shard>) {
    thread_local! {
        static STARTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if STARTED.with(|s| s.get()) || shard.metadata().topic(OFFSETS_TOPIC).is_none() {
        return;
    }
    STARTED.with(|s| s.set(true));
    compio::runtime::spawn(load_and_checkpoint(shard.clone())).detach();
}

async fn load_and_checkpoint(shard: Rc<Shard>) {
    let c = coordinator();
    let owned = owned_partitions(&shard);
    let mut groups = 0;
    for p in &owned {
        match load_partition(&shard, *p).await {
            Ok(state) => groups += install(&shard, &c, state),
            Err(e) => tracing::error!(partition = p, "loading {OFFSETS_TOPIC}: {e}"),
        }
    }
    c.loaded.set(true);
    compio::runtime::spawn(super::expire::run(shard.clone(), c.clone())).detach();
    tracing::debug!(
        shard = shard.id,
        partitions = owned.len(),
        groups,
        "group coordinator loaded"
    );
    let mut done: HashMap<i32, i64> = HashMap::new();
    loop {
        compio::time::sleep(Duration::from_millis(COORDINATOR_CHECKPOINT_INTERVAL_MS)).await;
        if shard.stopping.get() {
            return;
        }
        checkpoint_round(&shard, &c, &owned, &mut done).await;
    }
}

fn owned_partitions(shard: &Shard) -> Vec<i32> {
    let meta = shard.metadata();
    meta.topic(OFFSETS_TOPIC)
        .map(|t| {
            t.partitions
                .iter()
                .filter(|p| p.shard == shard.id)
                .map(|p| p.index)
                .collect()
        })
        .unwrap_or_default()
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition {
        topic: OFFSETS_TOPIC.into(),
        partition: p,
    }
}

/// The latest value of every live key of partition `p`: checkpoint, then the log after it.
async fn load_partition(shard: &Shard, p: i32) -> Result<BTreeMap<StoredKey, Bytes>, String> {
    let log = shard.log(&tp(p)).ok_or("partition not open")?;
    let (dir, start, end) = {
        let l = log.borrow();
        (
            l.dir().to_path_buf(),
            l.log_start_offset(),
            l.log_end_offset(),
        )
    };
    let (mut offset, mut state) = match read_checkpoint(&dir) {
        Ok(Some((o, s))) if (start..=end).contains(&o) => (o, s),
        Ok(_) => (start, BTreeMap::new()),
        Err(e) => {
            tracing::warn!(
                partition = p,
                "{e}; replaying {OFFSETS_TOPIC}-{p} from its start"
            );
            (start, BTreeMap::new())
        }
    };
    while offset < end {
        let slice = log
            .borrow_mut()
            .read(
                offset,
                LOAD_READ_BYTES,
                FirstBatch::Whole,
                FetchIsolation::LogEnd,
            )
            .map_err(|e| e.to_string())?;
        let Some(slice) = slice else { break };
        let mut bytes = slice.read_to_bytes().await.map_err(|e| e.to_string())?;
        let next = apply_batches(&mut bytes, &mut state)?;
        if next <= offset {
            return Err(format!("no progress reading at offset {offset}"));
        }
        offset = next;
    }
    Ok(state)
}

/// Applies every record of `bytes` (whole batches) latest-wins; returns the next offset.
fn apply_batches(bytes: &mut Bytes, state: &mut BTreeMap<StoredKey, Bytes>) -> Result<i64, String> {
    let sets = RecordBatchDecoder::decode_all(bytes).map_err(|e| e.to_string())?;
    let mut next = i64::MIN;
    for record in sets.into_iter().flat_map(|s| s.records) {
        next = next.max(record.offset + 1);
        let Some(raw) = record.key else { continue };
        let key = match decode_key(raw) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(
                    "skipping a {OFFSETS_TOPIC} record at offset {}: {e}",
                    record.offset
                );
                continue;
            }
        };
        match record.value {
            Some(v) => state.insert(key, v),
            None => state.remove(&key),
        };
    }
    Ok(next)
}

/// Turns loaded records into groups on this coordinator; returns how many.
fn install(shard: &Rc<Shard>, c: &Rc<Coordinator>, state: BTreeMap<StoredKey, Bytes>) -> usize {
    let mut groups = c.groups.borrow_mut();
    let before = groups.len();
    let mut members = Vec::new();
    for (key, value) in state {
        let group = groups
            .entry(key.group().to_string())
            .or_insert_with(|| Group::new(key.group()));
        match key {
            StoredKey::Offset {
                topic, partition, ..
            } => match decode_offset(value) {
                Ok(o) => {
                    group.offsets.insert((topic, partition), o);
                }
                Err(e) => tracing::warn!(group = %group.id, "skipping a stored offset: {e}"),
            },
            StoredKey::Group { .. } => match decode_group(value) {
                Ok(g) => {
                    restore_group(group, g, c);
                    members.extend(
                        group
                            .members
                            .values()
                            .map(|m| (group.id.clone(), m.id.clone(), m.incarnation)),
                    );
                }
                Err(e) => tracing::warn!(group = %group.id, "skipping stored group metadata: {e}"),
            },
        }
    }
    let count = groups.len() - before;
    drop(groups);
    for (g, m, inc) in members {
        c.arm_session(shard, &g, &m, inc);
    }
    count
}

fn restore_group(group: &mut Group, g: super::store::StoredGroup, c: &Coordinator) {
    group.generation = g.generation;
    group.protocol_type = (!g.protocol_type.is_empty()).then_some(g.protocol_type);
    group.protocol = g.protocol.clone();
    group.leader = g.leader;
    group.members.clear();
    group.static_members.clear();
    for m in g.members {
        if let Some(i) = &m.instance_id {
            group.static_members.insert(i.clone(), m.member_id.clone());
        }
        let protocols = vec![(g.protocol.clone().unwrap_or_default(), m.subscription)];
        group.members.insert(
            m.member_id.clone(),
            Member {
                id: m.member_id,
                instance_id: m.instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                protocol_type: group.protocol_type.clone().unwrap_or_default(),
                protocols,
                assignment: m.assignment,
                join_waiter: None,
                sync_waiter: None,
                session_deadline: deadline_ms(m.session_timeout_ms),
                incarnation: c.next_incarnation(),
            },
        );
    }
    let state = if group.members.is_empty() {
        GroupState::Empty
    } else {
        GroupState::Stable
    };
    group.transition(state);
    // An empty group's offsets expire counting from when it became empty (stored).
    if state == GroupState::Empty && g.state_timestamp > 0 {
        group.state_timestamp = g.state_timestamp;
    }
}

async fn checkpoint_round(
    shard: &Shard,
    c: &Coordinator,
    owned: &[i32],
    done: &mut HashMap<i32, i64>,
) {
    for _ in 0..CHECKPOINT_TRIES_MAX {
        if c.inflight.get() == 0 {
            break;
        }
        compio::time::sleep(Duration::from_millis(20)).await;
    }
    if c.inflight.get() != 0 {
        tracing::debug!(
            shard = shard.id,
            "offsets appends in flight; checkpoint postponed"
        );
        return;
    }
    // From here to the writes nothing awaits: the state and the offsets agree.
    let mut pending = Vec::new();
    for p in owned {
        // A follower's memory does not follow its replicated log: only the leader, whose
        // state is the log's, may checkpoint it.
        let Some(log) = shard.log(&tp(*p)).filter(|_| leads(shard, *p)) else {
            continue;
        };
        let (dir, end) = {
            let l = log.borrow();
            (l.dir().to_path_buf(), l.log_end_offset())
        };
        if done.get(p) == Some(&end) {
            continue;
        }
        pending.push((*p, dir, end, snapshot(c, *p, owned_count(shard))));
    }
    for (p, dir, end, records) in pending {
        match write_checkpoint(&dir, end, &records) {
            Ok(()) => {
                done.insert(p, end);
            }
            Err(e) => tracing::warn!(partition = p, "writing the coordinator checkpoint: {e}"),
        }
    }
}

/// This broker leads offsets partition `p` (always, on a single node).
fn leads(shard: &Shard, p: i32) -> bool {
    shard
        .metadata()
        .topic(OFFSETS_TOPIC)
        .and_then(|t| t.partitions.get(p as usize).cloned())
        .is_some_and(|info| info.is_led_by(shard.broker.node_id))
}

thread_local! {
    /// Offsets partitions of this shard being reloaded after a leadership change.
    static RELOADING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Cluster mode: this broker became leader of offsets partition `p` after the coordinator
/// loaded at start, so what it holds in memory for `p`'s groups predates the records it
/// replicated since. Those groups are dropped and `p` is read again; the shard's groups
/// answer COORDINATOR_LOAD_IN_PROGRESS meanwhile (Kafka's coordinator loads a partition
/// when it becomes its leader the same way).
pub fn on_leadership(shard: &Rc<Shard>, p: i32) {
    let c = coordinator();
    if !c.loaded.get() && RELOADING.with(|r| r.get()) == 0 {
        return; // the first load has not run yet and will read the whole log
    }
    RELOADING.with(|r| r.set(r.get() + 1));
    c.loaded.set(false);
    let shard = shard.clone();
    compio::runtime::spawn(async move {
        let partitions = owned_count(&shard);
        c.groups
            .borrow_mut()
            .retain(|id, _| partition_for(id, partitions) != p);
        match load_partition(&shard, p).await {
            Ok(state) => {
                let groups = install(&shard, &c, state);
                tracing::info!(
                    partition = p,
                    groups,
                    "leading {OFFSETS_TOPIC}: groups reloaded"
                );
            }
            Err(e) => tracing::error!(partition = p, "reloading {OFFSETS_TOPIC}: {e}"),
        }
        RELOADING.with(|r| r.set(r.get() - 1));
        if RELOADING.with(|r| r.get()) == 0 {
            c.loaded.set(true);
        }
    })
    .detach();
}

/// Cluster mode: this broker stopped leading offsets partition `p` (Kafka's
/// `onResignation`): its groups leave memory, so no timer of theirs (a member's session,
/// a rebalance) writes to the partition any more; the new leader's coordinator loads them.
/// Their clients get NOT_COORDINATOR here and find the new coordinator.
pub fn on_resignation(shard: &Rc<Shard>, p: i32) {
    let c = coordinator();
    let partitions = owned_count(shard);
    let before = c.groups.borrow().len();
    c.groups
        .borrow_mut()
        .retain(|id, _| partition_for(id, partitions) != p);
    let dropped = before - c.groups.borrow().len();
    tracing::info!(
        partition = p,
        groups = dropped,
        "no longer leading {OFFSETS_TOPIC}: groups unloaded"
    );
}

fn owned_count(shard: &Shard) -> i32 {
    shard
        .metadata()
        .topic(OFFSETS_TOPIC)
        .map(|t| t.partitions.len() as i32)
        .unwrap_or(1)
}

/// The live records of partition `p`: group metadata and committed offsets.
fn snapshot(c: &Coordinator, p: i32, partitions: i32) -> Vec<(Bytes, Bytes)> {
    let groups = c.groups.borrow();
    let mut out = Vec::new();
    for g in groups
        .values()
        .filter(|g| partition_for(&g.id, partitions) == p)
    {
        if g.generation > 0 || !g.members.is_empty() {
            let key = encode_key(&StoredKey::Group {
                group: g.id.clone(),
            });
            out.push((key, encode_group(&g.stored())));
        }
        for ((topic, partition), o) in &g.offsets {
            let key = StoredKey::Offset {
                group: g.id.clone(),
                topic: topic.clone(),
                partition: *partition,
            };
            out.push((encode_key(&key), encode_offset(o)));
        }
    }
    out
}

fn write_checkpoint(
    dir: &Path,
    next_offset: i64,
    records: &[(Bytes, Bytes)],
) -> std::io::Result<()> {
    use std::io::Write;
    let mut buf = next_offset.to_be_bytes().to_vec();
    if !records.is_empty() {
        let list: Vec<sluice_engine::testing::TestRecord<'_>> = records
            .iter()
            .map(|(k, v)| (Some(&k[..]), Some(&v[..]), 0))
            .collect();
        buf.extend_from_slice(&sluice_engine::testing::build_batch(&list));
    }
    let tmp = dir.join(format!("{CHECKPOINT_FILE}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&buf)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(CHECKPOINT_FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

type Checkpoint = (i64, BTreeMap<StoredKey, Bytes>);

fn read_checkpoint(dir: &Path) -> Result<Option<Checkpoint>, String> {
    let path = dir.join(CHECKPOINT_FILE);
    let raw = match std::fs::read(&path) {
        Ok(raw) => raw,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    if raw.len() < 8 {
        return Err(format!("{}: truncated", path.display()));
    }
    let mut bytes = Bytes::from(raw);
    let next = bytes.get_i64();
    let mut state = BTreeMap::new();
    if !bytes.is_empty() {
        sluice_engine::validate_batch(&bytes, u32::MAX)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        apply_batches(&mut bytes, &mut state)?;
    }
    Ok(Some((next, state)))
}
