//! Shards: one pinned, single-threaded io_uring runtime per core.
//!
//! A shard owns some partitions (their `PartitionLog`s live here and are never locked: the
//! state is `!Send`), accepts connections on its own `SO_REUSEPORT` listener socket, and
//! serves requests. Work for a partition owned by another shard crosses that shard's bounded
//! inbox (`ShardMsg`) and the answer comes back on a oneshot channel.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use sluice_engine::FileCache;
use sluice_engine::PartitionLog;

use sluice_net::memory_pool::RequestMemoryPool;
use sluice_net::zero_copy::{RangeSender, TransferMethod};

use crate::append::Appender;
use crate::config::Config;
use crate::metadata::ClusterMetadata;
use crate::metrics::ShardMetrics;
use crate::msg::{Peers, ShardMsg};

/// Read handles for non-active segments kept open per shard.
pub const SHARD_READ_FILES_MAX: usize = 256;

/// A partition key. Topic names are shared (`Arc<str>`) with the metadata snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicPartition {
    pub topic: Arc<str>,
    pub partition: i32,
}

pub type LogRef = Rc<RefCell<PartitionLog>>;

/// A log dir's `replication-offset-checkpoint`: (topic, partition) → high watermark.
pub type HighWatermarks = HashMap<(String, i32), i64>;

/// Everything one shard owns. Lives on shard `id`'s thread only.
pub struct Shard {
    pub id: usize,
    /// The config this shard started with. Keys that dynamic broker configs can change
    /// (`dynamic_config::BROKER_KEYS`, mode Dynamic) are read through `current_config`.
    pub config: Arc<Config>,
    current: RefCell<Arc<Config>>,
    /// Notified when `current_config` changes (the periodic flush re-reads its interval).
    pub config_changed: event_listener::Event,
    pub broker: Arc<BrokerInfo>,
    pub peers: Arc<Peers>,
    pub metadata: RefCell<Arc<ClusterMetadata>>,
    pub logs: RefCell<HashMap<TopicPartition, LogRef>>,
    /// Cluster mode: the role of each replicated partition this shard owns.
    pub replicas: RefCell<HashMap<TopicPartition, crate::replica::Role>>,
    /// Cluster mode: leaders this shard runs a replica fetcher for, each with the event
    /// that makes it ask again at once (`replica::fetcher::ensure_running`).
    pub fetchers: RefCell<HashMap<i32, Rc<event_listener::Event>>>,
    /// Cluster mode: `replication-offset-checkpoint` per log dir, read once at the first
    /// metadata snapshot (high watermarks restored from it).
    pub hw_checkpoints: RefCell<HashMap<PathBuf, HighWatermarks>>,
    pub files: Rc<FileCache>,
    pub appender: Appender,
    /// This shard's counters (summed over shards when scraped).
    pub metrics: ShardMetrics,
    /// Sends record ranges into sockets (`fetch.transfer.method`).
    pub ranges: RangeSender,
    pub stopping: Cell<bool>,
    pub stop: event_listener::Event,
    /// Set once the first metadata snapshot has arrived; connections wait for it.
    pub ready: event_listener::Event,
}

/// Facts about this broker fixed at startup, shared by all shards.
#[derive(Debug)]
pub struct BrokerInfo {
    pub node_id: i32,
    pub cluster_id: String,
    /// (host, port) clients should connect to.
    pub advertised: Vec<(String, u16)>,
    pub log_dirs: Vec<PathBuf>,
    /// Which of `log_dirs` failed (a failing disk takes its whole dir offline).
    pub log_dir_failures: Arc<crate::log_dir_failure::LogDirFailures>,
    /// Every log dir's `directory.id` and the metadata log dir (whose id, with the node id,
    /// names this node as a quorum voter), as checked at startup.
    pub dirs: sluice_engine::logdir::FormattedDirs,
    /// `queued.max.request.bytes`: the memory requests being read may hold, shared by
    /// every shard's connections (`None`: no bound, Kafka's -1).
    pub request_pool: Option<Arc<RequestMemoryPool>>,
    /// The control plane, in a cluster (`process.roles` set); `None` on a single node.
    pub cluster: Option<sluice_replication::ClusterHandle>,
    /// Cluster mode: the index of the latest metadata image every shard applied (roles
    /// included), for a controlled shutdown to wait on.
    pub published_image_index: std::sync::atomic::AtomicU64,
}

/// The shard's range sender; if the sendfile threads cannot start, splice serves instead.
fn range_sender(id: usize, method: TransferMethod) -> RangeSender {
    RangeSender::new(method, &format!("shard-{id}")).unwrap_or_else(|e| {
        tracing::error!(
            shard = id,
            "sendfile threads did not start ({e}); using splice"
        );
        RangeSender::new(TransferMethod::Splice, "").expect("splice needs no threads")
    })
}

impl Shard {
    pub fn new(
        id: usize,
        config: Arc<Config>,
        broker: Arc<BrokerInfo>,
        peers: Arc<Peers>,
    ) -> Rc<Shard> {
        Rc::new(Shard {
            id,
            appender: Appender::new(&config, broker.log_dir_failures.clone()),
            ranges: range_sender(id, config.fetch_transfer_method),
            metrics: ShardMetrics::default(),
            current: RefCell::new(config.clone()),
            config_changed: event_listener::Event::new(),
            config,
            broker,
            peers,
            metadata: RefCell::new(Arc::new(ClusterMetadata::default())),
            logs: RefCell::new(HashMap::new()),
            replicas: RefCell::new(HashMap::new()),
            fetchers: RefCell::new(HashMap::new()),
            hw_checkpoints: RefCell::new(HashMap::new()),
            files: Rc::new(FileCache::new(SHARD_READ_FILES_MAX)),
            stopping: Cell::new(false),
            stop: event_listener::Event::new(),
            ready: event_listener::Event::new(),
        })
    }

    /// The config in effect: the startup config with dynamic broker configs applied.
    pub fn current_config(&self) -> Arc<Config> {
        self.current.borrow().clone()
    }

    /// Puts new dynamic broker configs in effect on this shard (`dynamic_config::apply_local`
    /// then updates the partitions).
    pub fn set_current_config(&self, config: Arc<Config>) {
        self.appender
            .set_flush_interval_messages(config.log_flush_interval_messages);
        *self.current.borrow_mut() = config;
        self.config_changed.notify(usize::MAX);
    }

    pub fn metadata(&self) -> Arc<ClusterMetadata> {
        self.metadata.borrow().clone()
    }

    pub fn log(&self, tp: &TopicPartition) -> Option<LogRef> {
        self.logs.borrow().get(tp).cloned()
    }

    pub fn shard_count(&self) -> usize {
        self.peers.shards()
    }

    /// Sends `msg` to shard `to`'s inbox, waiting while it is full (the bound is the
    /// backpressure). Fails only when that shard has stopped.
    pub async fn send(&self, to: usize, msg: ShardMsg) -> Result<(), ShardGone> {
        self.peers.send(to, msg).await
    }

    /// The online log directory holding the fewest partitions of this shard (Kafka picks
    /// the dir with the fewest partitions too); `None` when every log dir is offline.
    pub fn pick_log_dir(&self) -> Option<PathBuf> {
        let logs = self.logs.borrow();
        let count = |d: &PathBuf| {
            logs.values()
                .filter(|l| l.borrow().dir().parent() == Some(d.as_path()))
                .count()
        };
        let online = self.broker.log_dir_failures.online_dirs();
        online.into_iter().min_by_key(count)
    }

    /// Waits for the first metadata snapshot (version 0 is the empty placeholder).
    pub async fn wait_ready(&self) {
        while self.metadata.borrow().version == 0 {
            let listener = self.ready.listen();
            if self.metadata.borrow().version != 0 {
                break;
            }
            listener.await;
        }
    }

    pub fn begin_stop(&self) {
        self.stopping.set(true);
        self.stop.notify(usize::MAX);
        // Waiters on a partition (acks=all for the ISR, long polls) listen to its
        // `appended` event only: wake them so they see `stopping` and answer now, instead of
        // holding their connection until the stop's drain bound.
        let meta = self.metadata();
        for t in meta.topics.values() {
            for p in t.partitions.iter().filter(|p| p.shard == self.id) {
                p.appended.notify(usize::MAX);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardGone;

impl std::fmt::Display for ShardGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the owning shard has stopped")
    }
}
