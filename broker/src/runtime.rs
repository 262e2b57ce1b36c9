//! A shard thread's life: build the pinned io_uring runtime, open the partitions this shard
//! owns, then serve its inbox and its listener until told to stop.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use compio::net::TcpListener;
use futures_util::future::{select, Either};
use sluice_engine::{CloseSync, PartitionLog, TopicId};
use sluice_engine::{Recovery, RecoveryReport};

use crate::append::{collect_sync_jobs, run_sync_jobs};
use crate::checkpoint::ClosedOffsets;
use crate::config::Config;
use crate::connection::serve_connection;
use crate::controller::Controller;
use crate::log_limit::LogLimit;
use crate::msg::{Peers, ShardMsg};
use crate::ops;
use crate::shard::{BrokerInfo, Shard, TopicPartition};

/// Connections one shard serves at once; more are closed on accept.
pub const SHARD_CONNECTIONS_MAX: usize = 16_384;
/// How long a shard stops accepting after `accept` failed for lack of descriptors/memory.
pub const ACCEPT_BACKOFF_MS: u64 = 100;
/// How long a shard waits after any other failed `accept`.
pub const ACCEPT_RETRY_MS: u64 = 10;
/// How long stopping waits for in-flight requests to finish.
pub const STOP_DRAIN_MS_MAX: u64 = 5_000;

/// A partition directory found at startup, to be opened by its owning shard.
pub struct FoundPartition {
    pub topic: String,
    pub partition: i32,
    pub dir: PathBuf,
    pub recovery: Recovery,
}

/// What a shard tells the main thread as it starts and stops.
pub enum ShardEvent {
    Opened {
        shard: usize,
        partitions: Vec<(String, i32, TopicId)>,
        failed: Vec<String>,
    },
    /// Connections drained; `partitions` is how many logs the shard will close.
    Drained {
        shard: usize,
        partitions: usize,
    },
    /// Every log closed (`clean`: without an error). `offsets`: per partition the offset
    /// below which it is on disk (the log end for a log that closed cleanly) and its high
    /// watermark, for the checkpoints written at a stop.
    Closed {
        shard: usize,
        clean: bool,
        offsets: ClosedOffsets,
    },
    Failed {
        shard: usize,
        error: String,
    },
    /// From the signal thread: SIGTERM or SIGINT arrived.
    Signal(i32),
}

pub struct ShardSetup {
    pub id: usize,
    pub cpu: Option<usize>,
    /// The process's CPUs: where the shard ring's io-wq workers may run.
    pub process_cpus: Vec<usize>,
    pub config: Arc<Config>,
    pub broker: Arc<BrokerInfo>,
    pub peers: Arc<Peers>,
    pub inbox: async_channel::Receiver<ShardMsg>,
    pub listeners: Vec<std::net::TcpListener>,
    /// `metrics.listener`, served by shard 0 only.
    pub metrics_listener: Option<std::net::TcpListener>,
    pub partitions: Vec<FoundPartition>,
    pub events: SyncSender<ShardEvent>,
}

pub fn run_shard(setup: ShardSetup) {
    let events = setup.events.clone();
    let id = setup.id;
    let mut builder = compio::runtime::RuntimeBuilder::new();
    if let Some(cpu) = setup.cpu {
        builder.thread_affinity(HashSet::from([cpu]));
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = events.send(ShardEvent::Failed {
                shard: id,
                error: format!("shard {id}: io_uring runtime: {e}"),
            });
            return;
        }
    };
    if let Err(e) = crate::iowq::limit_workers(
        std::os::fd::AsRawFd::as_raw_fd(&runtime),
        &setup.process_cpus,
    ) {
        tracing::warn!(shard = id, "io-wq workers left uncapped: {e}");
    }
    runtime.block_on(shard_main(setup));
}

async fn shard_main(setup: ShardSetup) {
    let ShardSetup {
        id,
        config,
        broker,
        peers,
        inbox,
        listeners,
        metrics_listener,
        partitions,
        events,
        ..
    } = setup;
    let shard = Shard::new(id, config.clone(), broker, peers);
    let (opened, failed) = open_partitions(&shard, partitions);
    let _ = events.send(ShardEvent::Opened {
        shard: id,
        partitions: opened,
        failed,
    });

    let appender = compio::runtime::spawn({
        let shard = shard.clone();
        async move { shard.appender.run().await }
    });
    let controller = (id == 0).then(|| Rc::new(Controller::new()));
    spawn_background(&shard, controller.as_ref(), metrics_listener);
    let live = Rc::new(Cell::new(0usize));
    let idle = Rc::new(event_listener::Event::new());
    let listening: Vec<_> = listeners
        .into_iter()
        .filter_map(|l| match TcpListener::from_std(l) {
            Ok(l) => Some(compio::runtime::spawn(accept_loop(
                shard.clone(),
                l,
                live.clone(),
                idle.clone(),
            ))),
            Err(e) => {
                tracing::error!(shard = id, "listener: {e}");
                None
            }
        })
        .collect();

    serve_inbox(&shard, inbox, controller, &events, live, idle).await;
    drop(listening);
    shard.appender.close();
    let _ = appender.await;
    let (clean, offsets) = close_logs(&shard);
    let _ = events.send(ShardEvent::Closed {
        shard: id,
        clean,
        offsets,
    });
}

/// The shard's background tasks: on shard 0 the controller, the offsets topic, the
/// recovery-point and high-watermark checkpoints, and the metrics endpoint; on every shard retention and the
/// periodic flush.
fn spawn_background(
    shard: &Rc<Shard>,
    controller: Option<&Rc<Controller>>,
    metrics_listener: Option<std::net::TcpListener>,
) {
    let config = &shard.config;
    if let Some(c) = controller {
        compio::runtime::spawn(crate::group::load::ensure_offsets_topic(shard.clone())).detach();
        if let Some(handle) = shard.broker.cluster.clone() {
            compio::runtime::spawn(crate::cluster::apply_images(shard.clone(), handle)).detach();
        }
        let (c, s) = (c.clone(), shard.clone());
        compio::runtime::spawn(async move { c.run(s).await }).detach();
        use crate::checkpoint::{checkpoint_loop, OffsetCheckpoint};
        let interval_ms = config.log_flush_offset_checkpoint_interval_ms;
        let kind = OffsetCheckpoint::RecoveryPoint;
        compio::runtime::spawn(checkpoint_loop(shard.clone(), kind, interval_ms)).detach();
        let interval_ms = crate::checkpoint::REPLICA_HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS;
        let kind = OffsetCheckpoint::HighWatermark;
        compio::runtime::spawn(checkpoint_loop(shard.clone(), kind, interval_ms)).detach();
    }
    if let Some(l) = metrics_listener {
        match TcpListener::from_std(l) {
            Ok(l) => compio::runtime::spawn(crate::metrics::serve(shard.clone(), l)).detach(),
            Err(e) => tracing::error!("metrics listener: {e}"),
        }
    }
    if let Some(cluster) = &shard.config.cluster {
        let lag = cluster.replication.replica_lag_time_ms_max;
        compio::runtime::spawn(crate::replica::shrink_isr_loop(shard.clone(), lag)).detach();
        compio::runtime::spawn(crate::replica::disk_full::disk_full_loop(shard.clone())).detach();
    }
    compio::runtime::spawn(crate::retention::retention_loop(
        shard.clone(),
        config.log_initial_task_delay_ms,
        config.log_retention_check_interval_ms,
    ))
    .detach();
    compio::runtime::spawn(periodic_flush(shard.clone())).detach();
    let failures = crate::log_dir_failure::log_dir_failure_loop(shard.clone());
    compio::runtime::spawn(failures).detach();
}

fn open_partitions(
    shard: &Rc<Shard>,
    found: Vec<FoundPartition>,
) -> (Vec<(String, i32, TopicId)>, Vec<String>) {
    let mut opened = Vec::new();
    let mut failed = Vec::new();
    for p in found {
        let config = match crate::topic_config::TopicConfig::read(&p.dir) {
            Ok(c) => c.log_config(&shard.config),
            Err(e) => {
                failed.push(format!("{}: {e}", p.dir.display()));
                continue;
            }
        };
        match PartitionLog::open(&p.dir, config, p.recovery, shard.files.clone()) {
            Ok((log, report)) => {
                log_recovery(&p, &report);
                opened.push((p.topic.clone(), p.partition, log.topic_id()));
                let tp = TopicPartition {
                    topic: p.topic.as_str().into(),
                    partition: p.partition,
                };
                shard
                    .logs
                    .borrow_mut()
                    .insert(tp, Rc::new(RefCell::new(log)));
            }
            Err(e) => failed.push(format!("{}: {e}", p.dir.display())),
        }
    }
    (opened, failed)
}

fn log_recovery(p: &FoundPartition, report: &RecoveryReport) {
    if report.truncated_to_offset.is_some() {
        tracing::warn!(
            dir = %p.dir.display(),
            truncated_bytes = report.truncated_bytes,
            truncated_to_offset = ?report.truncated_to_offset,
            deleted_segments = report.deleted_segments,
            rescanned_segments = report.rescanned_segments,
            "recovery truncated the log tail: {}",
            report.reason.as_deref().unwrap_or("torn or corrupt tail")
        );
    } else if report.scanned_bytes > 0 {
        tracing::debug!(dir = %p.dir.display(), scanned_bytes = report.scanned_bytes, "recovered");
    }
}

/// Rebinds the shard's copy of the listener: `SO_REUSEPORT` spreads connections over shards.
async fn accept_loop(
    shard: Rc<Shard>,
    listener: TcpListener,
    live: Rc<Cell<usize>>,
    idle: Rc<event_listener::Event>,
) {
    loop {
        let accepted = {
            let stop = shard.stop.listen();
            if shard.stopping.get() {
                return;
            }
            match select(Box::pin(listener.accept()), stop).await {
                Either::Left((r, _)) => r,
                Either::Right(_) => return,
            }
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                accept_failed(shard.id, &e).await;
                continue;
            }
        };
        if live.get() >= SHARD_CONNECTIONS_MAX {
            tracing::warn!(shard = shard.id, %peer, "connection limit {SHARD_CONNECTIONS_MAX} reached; closing");
            continue;
        }
        live.set(live.get() + 1);
        shard.metrics.connection_opened();
        let (shard, live, idle) = (shard.clone(), live.clone(), idle.clone());
        compio::runtime::spawn(async move {
            serve_connection(shard.clone(), stream, peer).await;
            shard.metrics.connection_closed();
            live.set(live.get() - 1);
            if live.get() == 0 {
                idle.notify(usize::MAX);
            }
        })
        .detach();
    }
}

/// `accept` failures, logged at most once per `OVERLOAD_LOG_INTERVAL_MS` for the process.
static ACCEPT_FAILED_LOG: LogLimit = LogLimit::new();

/// After a failed `accept`: at the descriptor limit (EMFILE, ENFILE) or out of kernel
/// memory, waits `ACCEPT_BACKOFF_MS` (the pending connections wait in the backlog until
/// descriptors are free); after any other error (a connection reset before it was
/// accepted), `ACCEPT_RETRY_MS`.
async fn accept_failed(shard: usize, e: &std::io::Error) {
    let exhausted = matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    );
    if let Some(suppressed) = ACCEPT_FAILED_LOG.allow() {
        let what = if exhausted {
            " (raise the open files limit, LimitNOFILE=, or close idle connections)"
        } else {
            ""
        };
        tracing::warn!(
            shard,
            "accept failed: {e}{what}; {suppressed} more failures since the last line"
        );
    }
    let ms = if exhausted {
        ACCEPT_BACKOFF_MS
    } else {
        ACCEPT_RETRY_MS
    };
    compio::time::sleep(Duration::from_millis(ms)).await;
}

async fn serve_inbox(
    shard: &Rc<Shard>,
    inbox: async_channel::Receiver<ShardMsg>,
    controller: Option<Rc<Controller>>,
    events: &SyncSender<ShardEvent>,
    live: Rc<Cell<usize>>,
    idle: Rc<event_listener::Event>,
) {
    while let Ok(msg) = inbox.recv().await {
        match msg {
            ShardMsg::Stop => {
                shard.begin_stop();
                drain_connections(shard, &live, &idle).await;
                let partitions = shard.logs.borrow().len();
                let _ = events.send(ShardEvent::Drained {
                    shard: shard.id,
                    partitions,
                });
            }
            ShardMsg::Close => return,
            ShardMsg::Produce {
                tp,
                records,
                commit,
                reply,
            } => {
                // Queued in inbox order (a connection's pipelined produces keep their
                // order); only the wait for the write runs in its own task.
                let ticket = ops::produce_submit_local(shard, tp, (records, commit)).await;
                let shard = shard.clone();
                compio::runtime::spawn(async move {
                    let _ = reply.send(ticket.wait(&shard).await);
                })
                .detach();
            }
            ShardMsg::Controller(cmd) => match &controller {
                Some(c) => {
                    let c = c.clone();
                    compio::runtime::spawn(async move { c.submit(cmd).await }).detach();
                }
                None => tracing::error!(
                    shard = shard.id,
                    "controller command sent to a non-controller shard"
                ),
            },
            other => {
                compio::runtime::spawn(handle_msg(shard.clone(), other)).detach();
            }
        }
    }
}

async fn drain_connections(shard: &Shard, live: &Cell<usize>, idle: &event_listener::Event) {
    let deadline = std::time::Instant::now() + Duration::from_millis(STOP_DRAIN_MS_MAX);
    while live.get() > 0 {
        let listener = idle.listen();
        if live.get() == 0 {
            break;
        }
        if compio::time::timeout_at(deadline, listener).await.is_err() {
            tracing::warn!(
                shard = shard.id,
                connections = live.get(),
                "connections still busy after {STOP_DRAIN_MS_MAX} ms; closing anyway"
            );
            break;
        }
    }
}

async fn handle_msg(shard: Rc<Shard>, msg: ShardMsg) {
    match msg {
        ShardMsg::Fetch {
            tp,
            offset,
            max_bytes,
            first,
            asker,
            reply,
        } => {
            let part = ops::fetch_local(&shard, tp, (offset, max_bytes, first), asker);
            let _ = reply.send(part.into_sent());
        }
        ShardMsg::ListOffsets { tp, ask, reply } => {
            let _ = reply.send(ops::list_offsets_local(&shard, tp, ask));
        }
        ShardMsg::LegacyOffsets {
            tp,
            timestamp,
            max_num_offsets,
            reply,
        } => {
            let _ = reply.send(ops::legacy_offsets_local(
                &shard,
                tp,
                timestamp,
                max_num_offsets,
            ));
        }
        ShardMsg::CreatePartition {
            tp,
            topic_id,
            config,
            reply,
        } => {
            let _ = reply.send(ops::create_partition_local(&shard, tp, topic_id, &config));
        }
        ShardMsg::Admin { tp, op } => ops::admin_local(&shard, tp, op),
        ShardMsg::DeletePartition { tp, reply } => {
            let _ = reply.send(ops::delete_partition_local(&shard, tp).await);
        }
        ShardMsg::Metadata { snapshot, reply } => {
            *shard.metadata.borrow_mut() = snapshot;
            crate::replica::on_metadata(&shard);
            shard.ready.notify(usize::MAX);
            crate::group::load::on_metadata(&shard);
            let _ = reply.send(());
        }
        ShardMsg::LocalLogs { reply } => {
            let logs = shard.logs.borrow();
            let _ = reply.send(
                logs.iter()
                    .map(|(tp, log)| (tp.clone(), log.borrow().topic_id()))
                    .collect(),
            );
        }
        ShardMsg::LogDirs { reply } => {
            let _ = reply.send(crate::handlers::describe_log_dirs::local_logs(&shard));
        }
        ShardMsg::Metrics { reply } => {
            let _ = reply.send(crate::metrics::local_snapshot(&shard));
        }
        ShardMsg::Ping { reply } => {
            let _ = reply.try_send(shard.id);
        }
        ShardMsg::Group { op, reply } => crate::group::serve(shard, op, reply).await,
        ShardMsg::CheckpointedOffsets { kind, reply } => {
            let _ = reply.send(crate::checkpoint::local_offsets(&shard, kind));
        }
        ShardMsg::BrokerConfig { config, reply } => {
            let _ = reply.send(crate::dynamic_config::apply_local(&shard, config));
        }
        ShardMsg::Controller(_) | ShardMsg::Produce { .. } | ShardMsg::Stop | ShardMsg::Close => {
            tracing::error!(shard = shard.id, "control message reached handle_msg");
        }
    }
}

/// `log.flush.interval.ms`: fsync every log with unflushed messages once per interval. The
/// interval is re-read when dynamic broker configs change it (unset: wait for a change).
async fn periodic_flush(shard: Rc<Shard>) {
    loop {
        let (changed, stop) = (shard.config_changed.listen(), shard.stop.listen());
        if shard.stopping.get() {
            return;
        }
        let Some(interval_ms) = shard.current_config().log_flush_interval_ms else {
            select(changed, stop).await;
            continue;
        };
        let tick = compio::time::sleep(Duration::from_millis(interval_ms.max(1)));
        if let Either::Right(_) = select(Box::pin(tick), select(changed, stop)).await {
            continue;
        }
        let logs: Vec<_> = shard.logs.borrow().values().cloned().collect();
        let jobs = collect_sync_jobs(logs.iter(), |l| l.unflushed_messages() > 0);
        for (_, err) in run_sync_jobs(jobs, &shard.broker.log_dir_failures).await {
            tracing::error!(shard = shard.id, "{err}");
        }
    }
}

/// Closes every log this shard owns without syncing any file (`CloseSync::Syncfs`: the
/// main thread syncs each log dir's filesystem once every shard closed, before it counts
/// the stop as clean); false if any failed to close. Returns each log's high watermark and recovery point:
/// its log end once closed (durable after that syncfs), the last synced offset otherwise.
fn close_logs(shard: &Shard) -> (bool, ClosedOffsets) {
    let logs: Vec<_> = shard.logs.borrow_mut().drain().collect();
    let mut clean = true;
    let mut offsets = ClosedOffsets::default();
    for (tp, log) in logs {
        let Ok(cell) = Rc::try_unwrap(log) else {
            tracing::error!(topic = %tp.topic, partition = tp.partition, "log still in use at shutdown");
            clean = false;
            continue;
        };
        let log = cell.into_inner();
        let dir = log.dir().parent().map(Path::to_path_buf);
        // A clean close made everything up to the log end durable.
        let (end, point) = (log.log_end_offset(), log.recovery_point());
        let high_watermark = log.high_watermark();
        let point = match log.close_with(CloseSync::Syncfs) {
            Ok(()) => end,
            Err(e) => {
                tracing::error!(topic = %tp.topic, partition = tp.partition, "closing log: {e}");
                clean = false;
                point
            }
        };
        if let Some(dir) = dir {
            let (topic, partition) = (tp.topic.to_string(), tp.partition);
            let hw = (dir.clone(), topic.clone(), partition, high_watermark);
            offsets.high_watermarks.push(hw);
            offsets.recovery_points.push((dir, topic, partition, point));
        }
    }
    (clean, offsets)
}
