//! Messages between shards. Every inbox is bounded (`SHARD_INBOX_MAX`); a sender waits while
//! the receiver is behind, which is the backpressure between shards.

use std::sync::Arc;

use bytes::Bytes;
use futures_channel::oneshot;
use sluice_engine::FirstBatch;
use sluice_engine::TopicId;

use crate::controller::ControllerCmd;
use crate::metadata::ClusterMetadata;
use crate::ops::{ListOffsetsPart, ProducePart, SentFetchPart};
use crate::shard::{ShardGone, TopicPartition};

/// Messages waiting in one shard's inbox at most.
pub const SHARD_INBOX_MAX: usize = 1024;

pub enum ShardMsg {
    Produce {
        tp: TopicPartition,
        records: Bytes,
        /// acks=all: wait for the in-sync replicas until then.
        commit: Option<std::time::Instant>,
        reply: oneshot::Sender<ProducePart>,
    },
    Fetch {
        tp: TopicPartition,
        offset: i64,
        max_bytes: u32,
        first: FirstBatch,
        asker: crate::ops::FetchAsker,
        reply: oneshot::Sender<SentFetchPart>,
    },
    ListOffsets {
        tp: TopicPartition,
        ask: crate::ops::ListOffsetsAsk,
        reply: oneshot::Sender<ListOffsetsPart>,
    },
    /// ListOffsets v0: (error, offsets newest first).
    LegacyOffsets {
        tp: TopicPartition,
        timestamp: i64,
        max_num_offsets: usize,
        reply: oneshot::Sender<(i16, Vec<i64>)>,
    },
    CreatePartition {
        tp: TopicPartition,
        topic_id: TopicId,
        config: Arc<crate::topic_config::TopicConfig>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Topic config and DeleteRecords operations on a partition this shard owns.
    Admin {
        tp: TopicPartition,
        op: crate::ops::PartitionAdmin,
    },
    DeletePartition {
        tp: TopicPartition,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// New dynamic broker configs (`dynamic_config`): the shard applies them to its
    /// partitions and answers once they are in effect.
    BrokerConfig {
        config: Arc<crate::config::Config>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// A new metadata snapshot; the shard acknowledges once it routes by it.
    Metadata {
        snapshot: Arc<ClusterMetadata>,
        reply: oneshot::Sender<()>,
    },
    /// The partitions this shard holds a log of, with their topic ids (cluster mode).
    LocalLogs {
        reply: oneshot::Sender<Vec<(TopicPartition, sluice_engine::TopicId)>>,
    },
    /// Every log this shard holds, for DescribeLogDirs.
    LogDirs {
        reply: oneshot::Sender<Vec<crate::handlers::describe_log_dirs::LocalLogDescription>>,
    },
    /// This shard's metrics snapshot, for a scrape.
    Metrics {
        reply: oneshot::Sender<crate::metrics::MetricsSnapshot>,
    },
    /// Liveness probe (systemd watchdog): answered from the shard's inbox loop.
    Ping {
        reply: std::sync::mpsc::SyncSender<usize>,
    },
    /// Every owned partition's log dir, topic, partition and recovery point or high
    /// watermark (`kind`).
    CheckpointedOffsets {
        kind: crate::checkpoint::OffsetCheckpoint,
        reply: oneshot::Sender<Vec<CheckpointedOffset>>,
    },
    /// A group coordinator operation for a group this shard coordinates.
    Group {
        op: crate::group::GroupOp,
        reply: oneshot::Sender<crate::group::GroupAnswer>,
    },
    /// For the controller (shard 0 only).
    Controller(ControllerCmd),
    /// Shutdown phase 1: stop accepting, finish in-flight requests (other shards still serve
    /// this shard's partitions meanwhile).
    Stop,
    /// Shutdown phase 2, once every shard has drained: flush and close the logs, end the thread.
    Close,
}

/// (log dir, topic, partition, recovery point or high watermark) of one partition.
pub type CheckpointedOffset = (std::path::PathBuf, String, i32, i64);
/// A `CheckpointedOffset` holding a recovery point.
pub type RecoveryPoint = CheckpointedOffset;

/// Senders to every shard's inbox, indexed by shard id. Shared by all shards.
pub struct Peers {
    inboxes: Vec<async_channel::Sender<ShardMsg>>,
}

impl Peers {
    pub fn new(shards: usize) -> (Arc<Peers>, Vec<async_channel::Receiver<ShardMsg>>) {
        let (inboxes, receivers) = (0..shards)
            .map(|_| async_channel::bounded(SHARD_INBOX_MAX))
            .unzip();
        (Arc::new(Peers { inboxes }), receivers)
    }

    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.inboxes.len()
    }

    pub async fn send(&self, to: usize, msg: ShardMsg) -> Result<(), ShardGone> {
        self.inboxes[to].send(msg).await.map_err(|_| ShardGone)
    }

    /// Sends only if the inbox has room (a full inbox fails the watchdog ping).
    pub fn try_send(&self, to: usize, msg: ShardMsg) -> Result<(), ShardGone> {
        self.inboxes[to].try_send(msg).map_err(|_| ShardGone)
    }

    /// Sends without waiting (used from outside any runtime, e.g. the signal thread).
    pub fn send_blocking(&self, to: usize, msg: ShardMsg) -> Result<(), ShardGone> {
        self.inboxes[to].send_blocking(msg).map_err(|_| ShardGone)
    }
}

/// Sends a request built around a fresh oneshot and waits for its answer.
pub async fn call<T>(
    peers: &Peers,
    to: usize,
    make: impl FnOnce(oneshot::Sender<T>) -> ShardMsg,
) -> Result<T, ShardGone> {
    let (tx, rx) = oneshot::channel();
    peers.send(to, make(tx)).await?;
    rx.await.map_err(|_| ShardGone)
}
