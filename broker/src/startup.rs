//! Startup and shutdown of the whole broker: config, log dirs (lock, `meta.properties`,
//! clean-shutdown marker), listeners, shard threads, signals.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use sluice_engine::logdir::{
    check_log_dirs, lock_log_dir, scan_partition_dirs, take_clean_shutdown_marker,
    write_clean_shutdown_marker, FormattedDirs, LogDirLock, LogDirsError, Unformatted,
};
use sluice_engine::TopicId;
use sluice_engine::{read_offset_checkpoint, Shutdown, RECOVERY_POINT_CHECKPOINT_FILE};
use sluice_net::memory_pool::RequestMemoryPool;
use std::collections::HashMap;

use crate::checkpoint::ClosedOffsets;
use crate::config::{parse_properties, Config, Listener};
use crate::metadata::{new_topic, owner_shard, ClusterMetadata};
use crate::msg::{Peers, ShardMsg};
use crate::runtime::{run_shard, FoundPartition, ShardEvent, ShardSetup};
use crate::shard::BrokerInfo;
use crate::systemd;

/// Listen backlog per shard socket.
pub const LISTEN_BACKLOG: i32 = 1024;
/// How long shutdown waits for each phase before giving up on a clean stop.
pub const SHUTDOWN_PHASE_MS_MAX: u64 = 10_000;
/// How often startup reports progress (and extends systemd's start timeout) while
/// partitions are being opened and recovered.
pub const STARTUP_STATUS_MS: u64 = 5_000;
/// Extra close-phase time per partition the broker may hold, and the most partitions counted.
pub const SHUTDOWN_CLOSE_MS_PER_PARTITION: u64 = 10;
pub const SHUTDOWN_CLOSE_PARTITIONS_COUNTED_MAX: u64 = 100_000;
/// How long startup waits for shards to open their partitions.
pub const STARTUP_OPEN_MS_MAX: u64 = 600_000;
/// How long binding a listener retries "address in use" before giving up. A process killed
/// by SIGKILL releases its listening sockets a few ms after it is reaped (io_uring tears its
/// ring down asynchronously), so `kill -9; sluiced` would otherwise fail now and then.
pub const LISTENER_BIND_RETRY_MS_MAX: u64 = 10_000;
/// Pause between two bind attempts while the address is in use.
pub const LISTENER_BIND_RETRY_INTERVAL_MS: u64 = 50;

/// Logs go to journald when systemd connected our output to the journal (`JOURNAL_STREAM`),
/// human-readable to stderr otherwise. `SLUICE_LOG` takes tracing's env-filter syntax.
pub fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        if let Ok(journald) = tracing_journald::layer() {
            tracing_subscriber::registry()
                .with(filter)
                .with(journald)
                .init();
            return;
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// `[server.properties] [--override key=value]...`
pub fn load_config(args: &[String]) -> Result<(Config, Vec<String>), String> {
    let mut pairs = Vec::new();
    let mut file = None;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--override" {
            let kv = args.get(i + 1).ok_or("--override needs key=value")?;
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("--override {kv:?}: expected key=value"))?;
            pairs.push((k.trim().to_string(), v.trim().to_string()));
            i += 2;
        } else if arg == "--help" || arg == "-h" {
            return Err("usage: sluiced [server.properties] [--override key=value]...".into());
        } else if i == 0 && !arg.starts_with("--") {
            let text = std::fs::read_to_string(arg)
                .map_err(|e| format!("reading config file {arg}: {e}"))?;
            let mut file_pairs = parse_properties(&text).map_err(|e| format!("{arg}: {e}"))?;
            file_pairs.append(&mut pairs);
            pairs = file_pairs;
            file = Some(std::path::PathBuf::from(arg));
            i += 1;
        } else {
            return Err(format!("unexpected argument {arg:?}; usage: sluiced [server.properties] [--override key=value]..."));
        }
    }
    let (mut config, warnings) = Config::from_pairs(&pairs).map_err(|e| e.to_string())?;
    config.config_file = file;
    Ok((config, warnings))
}

pub fn run(args: Vec<String>) -> Result<(), String> {
    let (config, warnings) = load_config(&args)?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    raise_open_files_limit();
    warn_if_overcommit_strict();
    let main_rt = probe_io_uring()?;
    let cpus = affinity_cpus();
    let shards = config.num_shards.unwrap_or(cpus.len()).max(1);
    let dirs = prepare_log_dirs(&config)?;
    let config = crate::dynamic_config::load(config)?;
    let bound = bind_listeners(&config.client_listeners(), shards)?;
    log_where(&config, &bound, &dirs.formatted, shards);
    let ports: Vec<_> = bound.iter().map(|(l, p, _)| (l.clone(), *p)).collect();
    let advertised = config.advertised(&ports);
    // Before the first thread (the control plane's) starts: threads inherit the mask, so
    // SIGTERM reaches only the signal thread's sigwait, never a default action elsewhere.
    block_shutdown_signals();
    let control = start_control_plane(&config, &dirs.formatted, &advertised)?;
    let broker = broker_info(
        &config,
        &dirs,
        &ports,
        control.as_ref().map(|(h, _)| h.clone()),
    );
    let config = Arc::new(config);
    let (events_tx, events) = sync_channel::<ShardEvent>(shards * 4 + 4);
    let metrics = bind_metrics(config.metrics_listener)?;
    let placement = Placement {
        metrics,
        cpus,
        shards,
        bound,
        partitions: dirs.partitions,
    };
    let (peers, threads) = spawn_shards(&config, &broker, placement, &events_tx)?;
    spawn_signal_thread(events_tx);
    let mut snapshot = gather_partitions(&events, shards)?;
    if control.is_some() {
        // Until the committed metadata arrives, the partitions found on disk have no known
        // leader: clients get LEADER_NOT_AVAILABLE and retry.
        snapshot = crate::cluster::leaderless(&snapshot);
    }
    let topics = snapshot.topics.len();
    main_rt.block_on(crate::controller::publish_to(&peers, Arc::new(snapshot)));
    tracing::info!("ready: {topics} topics");
    let listening: Vec<String> = ports
        .iter()
        .map(|(l, p)| format!("{}:{p}", l.host))
        .collect();
    systemd::ready(&format!(
        "serving {topics} topics on {}",
        listening.join(",")
    ));
    systemd::spawn_watchdog(peers.clone());

    let outcome = wait_for_stop(&events);
    if let (Some((handle, _)), Some(cluster)) = (&control, &config.cluster) {
        if cluster.replication.controlled_shutdown_enable {
            main_rt.block_on(crate::cluster::controlled_shutdown(handle, &broker));
        }
    }
    let (clean, offsets) = shutdown(&peers, &events, shards);
    for t in threads {
        let _ = t.join();
    }
    if let Some((handle, thread)) = control {
        handle.stop();
        let _ = thread.join();
    }
    finish(&config, &broker, clean, offsets, dirs.locks);
    outcome
}

/// The first log lines: where it listens and where the data lives.
fn log_where(
    config: &Config,
    bound: &[BoundListener],
    dirs: &sluice_engine::logdir::FormattedDirs,
    shards: usize,
) {
    for (l, port, _) in bound {
        tracing::info!("listening on {}://{}:{}", l.name, l.host, port);
    }
    if let Some(addr) = config.cluster.as_ref().and_then(|c| c.controller_addr) {
        tracing::info!("controller listener {addr} is served by the metadata quorum");
    }
    let data: Vec<String> = config
        .log_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    tracing::info!(
        "data in {} ({shards} shards, node.id {}, cluster.id {})",
        data.join(","),
        config.node_id,
        dirs.cluster_id
    );
}

/// In a cluster (`process.roles` set): the node's control plane thread (metadata quorum,
/// controller, registration), started once the listeners are bound.
fn start_control_plane(
    config: &Config,
    dirs: &sluice_engine::logdir::FormattedDirs,
    advertised: &[Listener],
) -> Result<Option<ControlPlane>, String> {
    let Some(cluster) = &config.cluster else {
        return Ok(None);
    };
    let control = crate::cluster::start(crate::cluster::ClusterStart {
        cluster,
        cluster_id: &dirs.cluster_id,
        advertised,
        metadata_directory_id: dirs.metadata_directory_id().0,
        log_dir_ids: dirs.log_dirs.iter().map(|d| d.directory_id.0).collect(),
    })?;
    tracing::info!(
        "cluster member: node.id {}, voters {:?}",
        control.0.node_id,
        cluster.voters
    );
    Ok(Some(control))
}

type ControlPlane = (sluice_replication::ClusterHandle, JoinHandle<()>);

fn broker_info(
    config: &Config,
    dirs: &LogDirs,
    ports: &[(Listener, u16)],
    cluster: Option<sluice_replication::ClusterHandle>,
) -> Arc<BrokerInfo> {
    Arc::new(BrokerInfo {
        node_id: config.node_id,
        cluster_id: dirs.formatted.cluster_id.clone(),
        advertised: config
            .advertised(ports)
            .iter()
            .map(|l| (l.host.clone(), l.port))
            .collect(),
        log_dirs: config.log_dirs.clone(),
        log_dir_failures: Arc::new(crate::log_dir_failure::LogDirFailures::new(
            &config.log_dirs,
        )),
        dirs: dirs.formatted.clone(),
        request_pool: config
            .request_pool_bytes()
            .map(|bytes| RequestMemoryPool::new(usize::try_from(bytes).unwrap_or(usize::MAX))),
        cluster,
        published_image_index: std::sync::atomic::AtomicU64::new(0),
    })
}

/// After every shard stopped: one `syncfs` per log dir makes every closed log durable (the
/// shards closed them without per-file syncs), then — only if that worked — the
/// recovery-point and high-watermark checkpoints (when every shard closed) and the
/// clean-shutdown marker (only if every log closed cleanly); then the data-dir locks are
/// released. An offline log dir (a failed disk) is not synced and gets no checkpoint; its
/// logs did not close cleanly, so the next start recovers every dir.
fn finish(
    config: &Config,
    broker: &BrokerInfo,
    clean: bool,
    offsets: Option<ClosedOffsets>,
    locks: Vec<LogDirLock>,
) {
    let started = std::time::Instant::now();
    let mut synced = true;
    let failures = &broker.log_dir_failures;
    let offline = |l: &&LogDirLock| l.path().parent().is_some_and(|d| failures.is_offline(d));
    for lock in locks.iter().filter(|l| !offline(l)) {
        if let Err(e) = lock.sync_filesystem() {
            tracing::error!("{e}: the logs will be recovered at next start");
            synced = false;
        }
    }
    tracing::debug!("log dirs synced in {:?}", started.elapsed());
    let clean = clean && synced;
    if let Some(offsets) = offsets.filter(|_| synced) {
        offsets.write(&failures.online_dirs());
    }
    if clean {
        for dir in &config.log_dirs {
            if let Err(e) = write_clean_shutdown_marker(dir) {
                tracing::error!("writing clean shutdown marker in {}: {e}", dir.display());
            }
        }
    }
    drop(locks);
    let how = if clean {
        " cleanly"
    } else {
        " (logs will be recovered at next start)"
    };
    tracing::info!("stopped{how}");
}

/// What goes where when the shard threads start.
struct Placement {
    metrics: Option<std::net::TcpListener>,
    cpus: Vec<usize>,
    shards: usize,
    bound: Vec<BoundListener>,
    partitions: Vec<FoundPartition>,
}

fn spawn_shards(
    config: &Arc<Config>,
    broker: &Arc<BrokerInfo>,
    placement: Placement,
    events: &SyncSender<ShardEvent>,
) -> Result<(Arc<Peers>, Vec<JoinHandle<()>>), String> {
    let Placement {
        mut metrics,
        cpus,
        shards,
        bound,
        partitions,
    } = placement;
    let (peers, inboxes) = Peers::new(shards);
    let mut by_shard: Vec<Vec<FoundPartition>> = (0..shards).map(|_| Vec::new()).collect();
    for p in partitions {
        by_shard[owner_shard(&p.topic, p.partition, shards)].push(p);
    }
    let mut sockets: Vec<Vec<std::net::TcpListener>> = (0..shards).map(|_| Vec::new()).collect();
    for (_, _, per_shard) in bound {
        for (i, s) in per_shard.into_iter().enumerate() {
            sockets[i].push(s);
        }
    }
    let mut threads = Vec::new();
    for (id, (inbox, (listeners, partitions))) in inboxes
        .into_iter()
        .zip(sockets.into_iter().zip(by_shard))
        .enumerate()
    {
        let setup = ShardSetup {
            id,
            cpu: (cpus.len() >= shards).then(|| cpus[id]),
            process_cpus: cpus.clone(),
            config: config.clone(),
            broker: broker.clone(),
            peers: peers.clone(),
            inbox,
            listeners,
            metrics_listener: if id == 0 { metrics.take() } else { None },
            partitions,
            events: events.clone(),
        };
        let handle = std::thread::Builder::new()
            .name(format!("shard-{id}"))
            .spawn(move || run_shard(setup))
            .map_err(|e| format!("starting shard thread {id}: {e}"))?;
        threads.push(handle);
    }
    Ok((peers, threads))
}

/// Binds `metrics.listener` up front so a taken port stops startup with a clear message.
fn bind_metrics(addr: Option<SocketAddr>) -> Result<Option<std::net::TcpListener>, String> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let listener = retry_in_use(&format!("metrics.listener {addr}"), || {
        bind_one(addr, Reuse::Exclusive)
    })
    .map_err(|e| format!("binding metrics.listener {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!("metrics on http://{bound}/metrics");
    Ok(Some(listener))
}

/// Under `vm.overcommit_memory=2` the lazy reservations that make hostile array counts
/// harmless are refused, and such a request would abort the process.
fn warn_if_overcommit_strict() {
    if let Ok(true) = sluice_net::alloc::overcommit_refuses_lazy_reservation() {
        tracing::warn!(
            "vm.overcommit_memory=2: a request claiming a huge array count can abort sluiced \
             (kafka-protocol sizes allocations from the peer's counts); use overcommit mode 0 or 1"
        );
    }
}

struct LogDirs {
    formatted: FormattedDirs,
    partitions: Vec<FoundPartition>,
    locks: Vec<LogDirLock>,
}

/// Locks every log dir (and a separate `metadata.log.dir`), checks their `meta.properties`
/// (a cluster node refuses unformatted dirs; a single node formats its own), then finds
/// each log dir's partitions and how to recover them.
fn prepare_log_dirs(config: &Config) -> Result<LogDirs, String> {
    let metadata_dir = config
        .cluster
        .as_ref()
        .map_or(&config.log_dirs[0], |c| &c.metadata_log_dir);
    let mut all = config.log_dirs.clone();
    if !all.contains(metadata_dir) {
        all.push(metadata_dir.clone());
    }
    let mut locks = Vec::new();
    for dir in &all {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "data dir {}: {e} (is the service user allowed to create and write it?)",
                dir.display()
            )
        })?;
        locks.push(lock_log_dir(dir).map_err(|e| e.to_string())?);
    }
    let unformatted = match config.cluster {
        Some(_) => Unformatted::Refuse,
        None => Unformatted::Format,
    };
    let formatted = check_log_dirs(
        config.node_id,
        &config.log_dirs,
        metadata_dir,
        unformatted,
        "sluiced",
    )
    .map_err(|e| log_dirs_error(e, config))?;
    let mut partitions = Vec::new();
    for dir in &config.log_dirs {
        partitions.extend(found_partitions(dir)?);
    }
    Ok(LogDirs {
        formatted,
        partitions,
        locks,
    })
}

/// An unformatted dir of a cluster node says which command formats it.
fn log_dirs_error(e: LogDirsError, config: &Config) -> String {
    if !matches!(e, LogDirsError::Unformatted { .. }) {
        return format!("cannot start: {e}");
    }
    let file = config
        .config_file
        .as_ref()
        .map_or("<this node's server.properties>".to_string(), |f| {
            f.display().to_string()
        });
    format!(
        "cannot start: {e}. A cluster node (process.roles is set) starts only on formatted \
         dirs: run `sluice storage format -t $(sluice storage random-uuid) -c {file}` (for \
         several nodes, make the id once with `sluice storage random-uuid` and format every \
         node with that same -t)"
    )
}

/// One log dir's partitions, each with its recovery (from the clean shutdown marker and the
/// recovery point checkpoint).
fn found_partitions(dir: &Path) -> Result<Vec<FoundPartition>, String> {
    let shutdown =
        take_clean_shutdown_marker(dir).map_err(|e| format!("data dir {}: {e}", dir.display()))?;
    let found = scan_partition_dirs(dir)
        .map_err(|e| format!("scanning data dir {}: {e}", dir.display()))?;
    let mut points = HashMap::new();
    if shutdown == Shutdown::Unclean && !found.is_empty() {
        tracing::info!(
            "{}: no clean shutdown marker; logs will be recovered",
            dir.display()
        );
        points =
            read_offset_checkpoint(&dir.join(RECOVERY_POINT_CHECKPOINT_FILE)).unwrap_or_else(|e| {
                tracing::warn!("{e}; every segment will be rescanned");
                HashMap::new()
            });
    }
    Ok(found
        .into_iter()
        .map(|(topic, partition, path)| {
            let recovery = shutdown.recovery(points.get(&(topic.clone(), partition)).copied());
            FoundPartition {
                topic,
                partition,
                dir: path,
                recovery,
            }
        })
        .collect())
}

/// Binds every listener once per shard with `SO_REUSEPORT`. The first socket takes the
/// configured port (0 = any free one); the others bind to the port it got.
type BoundListener = (Listener, u16, Vec<std::net::TcpListener>);

fn bind_listeners(listeners: &[Listener], shards: usize) -> Result<Vec<BoundListener>, String> {
    let mut out = Vec::new();
    for l in listeners {
        let addr = l.socket_addr().map_err(|e| e.to_string())?;
        let sockets = retry_in_use(&format!("listener {l} ({addr})"), || {
            bind_shard_sockets(addr, shards)
        })
        .map_err(|e| format!("binding listener {l} ({addr}): {e}"))?;
        let port = sockets[0].local_addr().map_err(|e| e.to_string())?.port();
        out.push((l.clone(), port, sockets));
    }
    Ok(out)
}

/// One `SO_REUSEPORT` socket per shard on `addr`. SO_REUSEPORT would let a second broker
/// share a port another one holds: claim the port alone first (this fails with "address in
/// use" if it is taken), then bind the shards' sockets to it.
fn bind_shard_sockets(
    mut addr: SocketAddr,
    shards: usize,
) -> std::io::Result<Vec<std::net::TcpListener>> {
    let probe = bind_one(addr, Reuse::Exclusive)?;
    addr.set_port(probe.local_addr()?.port());
    drop(probe);
    let mut sockets = Vec::with_capacity(shards);
    for _ in 0..shards {
        let s = bind_one(addr, Reuse::Port)?;
        addr.set_port(s.local_addr()?.port());
        sockets.push(s);
    }
    Ok(sockets)
}

/// Runs `bind` again while it fails with "address in use", for at most
/// `LISTENER_BIND_RETRY_MS_MAX`; logs once when it starts waiting.
fn retry_in_use<T>(what: &str, mut bind: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    let deadline = std::time::Instant::now() + Duration::from_millis(LISTENER_BIND_RETRY_MS_MAX);
    let mut warned = false;
    loop {
        match bind() {
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && std::time::Instant::now() < deadline =>
            {
                if !warned {
                    tracing::warn!(
                        "{what}: address in use; retrying for up to {} ms (a broker that \
                         was just killed may still be releasing it)",
                        LISTENER_BIND_RETRY_MS_MAX
                    );
                    warned = true;
                }
                std::thread::sleep(Duration::from_millis(LISTENER_BIND_RETRY_INTERVAL_MS));
            }
            other => return other,
        }
    }
}

/// Whether a listening socket shares its port with the other shards' sockets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reuse {
    Exclusive,
    Port,
}

fn bind_one(addr: SocketAddr, reuse: Reuse) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(reuse == Reuse::Port)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// Builds an io_uring runtime on the main thread first, so a missing io_uring is reported
/// with its cause and fix instead of failing obscurely inside a shard.
fn probe_io_uring() -> Result<compio::runtime::Runtime, String> {
    compio::runtime::Runtime::new().map_err(|e| {
        let sysctl = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").unwrap_or_default();
        let cause = match (e.raw_os_error(), sysctl.trim()) {
            (_, "2") => "io_uring is disabled by the sysctl kernel.io_uring_disabled=2; enable it with \
                         `sysctl -w kernel.io_uring_disabled=0`"
                .to_string(),
            (Some(libc::EPERM), "1") => "io_uring is restricted by kernel.io_uring_disabled=1 to the group in \
                                         kernel.io_uring_group; add the service user to that group or set the sysctl to 0"
                .to_string(),
            (Some(libc::ENOSYS), _) => "io_uring_setup is not available: the kernel lacks io_uring, or a seccomp filter \
                                        (e.g. a container runtime's default profile) blocks it; allow io_uring_setup, \
                                        io_uring_enter and io_uring_register"
                .to_string(),
            (Some(libc::EPERM), _) => "io_uring_setup was refused (EPERM): a seccomp filter or security module blocks it; \
                                       allow io_uring_setup, io_uring_enter and io_uring_register"
                .to_string(),
            _ => "check that the kernel supports io_uring (Linux 5.19 or newer)".to_string(),
        };
        format!("cannot start: io_uring unavailable ({e}): {cause}")
    })
}

fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

/// The CPUs in this process's affinity mask.
fn affinity_cpus() -> Vec<usize> {
    let Ok(set) = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) else {
        return vec![0];
    };
    let cpus: Vec<usize> = (0..nix::sched::CpuSet::count())
        .filter(|c| set.is_set(*c).unwrap_or(false))
        .collect();
    if cpus.is_empty() {
        vec![0]
    } else {
        cpus
    }
}

fn shutdown_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set
}

/// Blocks SIGTERM/SIGINT in this thread and every thread started after it; the signal
/// thread takes them with sigwait.
fn block_shutdown_signals() {
    let _ = shutdown_signals().thread_block();
}

fn spawn_signal_thread(events: std::sync::mpsc::SyncSender<ShardEvent>) {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Ok(sig) = shutdown_signals().wait() {
                let _ = events.send(ShardEvent::Signal(sig as i32));
            }
        })
        .expect("spawning the signal thread");
}

fn gather_partitions(
    events: &Receiver<ShardEvent>,
    shards: usize,
) -> Result<ClusterMetadata, String> {
    let mut found: BTreeMap<String, (TopicId, i32)> = BTreeMap::new();
    let mut opened = 0;
    let deadline = std::time::Instant::now() + Duration::from_millis(STARTUP_OPEN_MS_MAX);
    while opened < shards {
        if std::time::Instant::now() >= deadline {
            return Err("shards did not finish opening their partitions".into());
        }
        match events.recv_timeout(Duration::from_millis(STARTUP_STATUS_MS)) {
            Ok(ShardEvent::Opened {
                partitions, failed, ..
            }) => {
                if let Some(f) = failed.first() {
                    return Err(format!(
                        "cannot open partition log {f} ({} failed in all)",
                        failed.len()
                    ));
                }
                for (topic, partition, id) in partitions {
                    let entry = found.entry(topic).or_insert((id, 0));
                    entry.1 = entry.1.max(partition + 1);
                }
                opened += 1;
            }
            Ok(ShardEvent::Failed { error, .. }) => return Err(error),
            Ok(ShardEvent::Signal(_)) => return Err("stopped by a signal during startup".into()),
            Ok(_) => {}
            Err(_) => systemd::extend_startup(&format!(
                "recovering: {opened} of {shards} shards opened their partitions"
            )),
        }
    }
    let mut meta = ClusterMetadata {
        version: 1,
        ..ClusterMetadata::default()
    };
    for (name, (id, partitions)) in found {
        let topic = Arc::new(new_topic(&name, id, partitions, shards));
        meta.topics_by_id.insert(id.0, topic.clone());
        meta.topics.insert(topic.name.clone(), topic);
    }
    Ok(meta)
}

fn wait_for_stop(events: &Receiver<ShardEvent>) -> Result<(), String> {
    loop {
        match events.recv() {
            Ok(ShardEvent::Signal(sig)) => {
                tracing::info!("signal {sig} received: stopping");
                return Ok(());
            }
            Ok(ShardEvent::Failed { error, .. }) => return Err(error),
            Ok(_) => {}
            Err(_) => return Err("all shards stopped unexpectedly".into()),
        }
    }
}

/// Two phases: every shard stops accepting and drains its connections (while still serving
/// other shards' requests for its partitions), then every shard closes its logs. Returns true
/// if all logs closed cleanly, and every log's checkpointed offsets when every shard closed.
fn shutdown(
    peers: &Peers,
    events: &Receiver<ShardEvent>,
    shards: usize,
) -> (bool, Option<ClosedOffsets>) {
    systemd::stopping();
    for to in 0..shards {
        let _ = peers.send_blocking(to, ShardMsg::Stop);
    }
    let drained = wait_events(events, shards, |e| match e {
        ShardEvent::Drained { partitions, .. } => Some(partitions as u64),
        _ => None,
    });
    for to in 0..shards {
        let _ = peers.send_blocking(to, ShardMsg::Close);
    }
    let closed = wait_events_for(
        events,
        shards,
        close_budget(drained.iter().sum()),
        |e| match e {
            ShardEvent::Closed { clean, offsets, .. } => Some((clean, offsets)),
            _ => None,
        },
    );
    let all_closed = closed.len() == shards;
    let clean = drained.len() == shards && all_closed && closed.iter().all(|(c, _)| *c);
    let offsets = all_closed.then(|| {
        let mut all = ClosedOffsets::default();
        closed.into_iter().for_each(|(_, o)| all.extend(o));
        all
    });
    (clean, offsets)
}

fn wait_events<T>(
    events: &Receiver<ShardEvent>,
    n: usize,
    pick: impl Fn(ShardEvent) -> Option<T>,
) -> Vec<T> {
    wait_events_for(
        events,
        n,
        Duration::from_millis(SHUTDOWN_PHASE_MS_MAX),
        pick,
    )
}

/// Closing flushes and closes every log: its budget grows with the partitions the shards
/// hold (a few fsyncs each), so a big broker still stops cleanly.
fn close_budget(partitions: u64) -> Duration {
    let partitions = partitions.min(SHUTDOWN_CLOSE_PARTITIONS_COUNTED_MAX);
    Duration::from_millis(SHUTDOWN_PHASE_MS_MAX + partitions * SHUTDOWN_CLOSE_MS_PER_PARTITION)
}

fn wait_events_for<T>(
    events: &Receiver<ShardEvent>,
    n: usize,
    budget: Duration,
    pick: impl Fn(ShardEvent) -> Option<T>,
) -> Vec<T> {
    let deadline = std::time::Instant::now() + budget;
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match events.recv_timeout(left) {
            Ok(e) => out.extend(pick(e)),
            Err(_) => break,
        }
    }
    out
}
