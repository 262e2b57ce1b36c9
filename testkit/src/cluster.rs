//! [`Cluster`]: N real `sluiced` processes on 127.0.0.1 as a KRaft cluster, each with its
//! own ports (chosen before any starts: the voters name every controller's port), config
//! file and data dir, formatted first with the real `sluice storage random-uuid` and
//! `sluice storage format` (`sluice` is found beside `sluiced`, or at `$SLUICE`).
//!
//! A node is ready when it logged its client listener (if it has one) and `ready:`, as
//! [`crate::Broker`] reads it. Nothing else is awaited: what the cluster agrees on is for
//! the test to wait for, with [`Cluster::wait_for`] / [`wait_for`] (bounded polling).
//!
//! ```no_run
//! use sluice_testkit::{Cluster, Roles};
//! let mut cluster = Cluster::builder(3)
//!     .property("broker.session.timeout.ms", "3000")
//!     .roles(3, Roles::Broker)
//!     .start();
//! let servers = cluster.bootstrap_servers();
//! cluster.node_mut(1).kill();
//! cluster.node_mut(1).restart();
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::sync::mpsc::Receiver;

use crate::disk::SmallDisk;
use crate::netns::{Endpoint, Network};
use crate::{
    binary_path, follow_log, free_ports, run_ok, sluiced_path, wait_ready, LogEvent, STOP_WAIT,
};

/// How often [`wait_for`] polls its predicate.
pub const WAIT_POLL: Duration = Duration::from_millis(50);
/// Starts of the whole cluster with fresh ports after a port was taken meanwhile.
pub const CLUSTER_START_TRIES_MAX: usize = 3;
/// The listener names the nodes use (Kafka's usual ones).
const CLIENT_LISTENER: &str = "PLAINTEXT";
const CONTROLLER_LISTENER: &str = "CONTROLLER";
/// Ports of a node in its own network namespace (each node has its own address there).
const NETNS_CLIENT_PORT: u16 = 9092;
const NETNS_CONTROLLER_PORT: u16 = 9093;
const LOOPBACK: &str = "127.0.0.1";

/// Where the `sluice` CLI is: `$SLUICE`, else beside the test's profile dir (where
/// `sluiced` is found too).
pub fn sluice_path() -> PathBuf {
    binary_path("SLUICE", "sluice", "sluice-tools")
}

/// Polls `done` every [`WAIT_POLL`] until it returns true; panics naming `what` after
/// `timeout`. The hook for waiting on what a cluster does (a leader elected, an ISR
/// shrunk): the harness itself waits on nothing but the nodes' listeners.
pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(WAIT_POLL);
    }
}

/// `sluice topics --describe --topic <topic>` asked of `servers`, parsed: (partition,
/// leader, ISR) per partition; empty when the CLI fails (a broker down, the topic unknown).
pub fn topic_partitions(servers: &str, topic: &str) -> Vec<(i32, i32, Vec<i32>)> {
    let args = [
        "topics",
        "--bootstrap-server",
        servers,
        "--describe",
        "--topic",
        topic,
    ];
    let Ok(out) = Command::new(sluice_path()).args(args).output() else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| l.trim_start().starts_with("Topic:") && l.contains("Partition:"))
        .filter_map(|l| {
            let field = |name: &str| -> Option<&str> {
                let at = l.find(name)? + name.len();
                l[at..].split('\t').next().map(str::trim)
            };
            let list = |v: &str| v.split(',').filter_map(|n| n.trim().parse().ok()).collect();
            Some((
                field("Partition:")?.parse().ok()?,
                field("Leader:")?.parse().ok()?,
                list(field("Isr:")?),
            ))
        })
        .collect()
}

/// `sluice topics --create` of `topic` (`partitions`, `replication_factor`, extra
/// `--config` pairs) asked of `servers`; whether it succeeded. A cluster answers
/// INVALID_REPLICATION_FACTOR until enough brokers registered: callers retry.
pub fn create_topic_cli(
    servers: &str,
    topic: &str,
    (partitions, replication_factor): (i32, i32),
    configs: &[&str],
) -> bool {
    let (p, rf) = (partitions.to_string(), replication_factor.to_string());
    let mut args = vec![
        "topics",
        "--bootstrap-server",
        servers,
        "--create",
        "--topic",
        topic,
        "--partitions",
        &p,
        "--replication-factor",
        &rf,
    ];
    for c in configs {
        args.extend(["--config", c]);
    }
    Command::new(sluice_path())
        .args(&args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A node's `process.roles`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Roles {
    /// `broker,controller` (the default).
    BrokerController,
    /// `broker`: serves clients, not a voter.
    Broker,
    /// `controller`: a voter with no client listener.
    Controller,
}

impl Roles {
    fn process_roles(self) -> &'static str {
        match self {
            Roles::BrokerController => "broker,controller",
            Roles::Broker => "broker",
            Roles::Controller => "controller",
        }
    }

    pub fn has_broker(self) -> bool {
        self != Roles::Controller
    }

    pub fn has_controller(self) -> bool {
        self != Roles::Broker
    }
}

/// How to start a [`Cluster`]; node ids are 1..=N.
pub struct ClusterBuilder {
    roles: Vec<Roles>,
    properties: Vec<(String, String)>,
    node_properties: Vec<Vec<(String, String)>>,
    root: Option<PathBuf>,
    network: bool,
    data_disk_bytes: Option<u64>,
    /// The data disk an ext4 on a loop device rather than a tmpfs.
    data_disk_block: bool,
}

impl ClusterBuilder {
    /// `node_id`'s roles (default `broker,controller`).
    pub fn roles(mut self, node_id: i32, roles: Roles) -> Self {
        let i = index(node_id, self.roles.len());
        self.roles[i] = roles;
        self
    }

    /// A property for every node (after the harness's own keys, so it wins over them).
    pub fn property(mut self, key: &str, value: &str) -> Self {
        self.properties.push((key.into(), value.into()));
        self
    }

    /// A property for one node (after the ones for every node).
    pub fn node_property(mut self, node_id: i32, key: &str, value: &str) -> Self {
        let i = index(node_id, self.roles.len());
        self.node_properties[i].push((key.into(), value.into()));
        self
    }

    /// Runs every node in its own network namespace ([`Network`]: node N at 10.89.0.N,
    /// ports 9092 and 9093) so the test can cut links; clients must run in the client
    /// namespace ([`Cluster::network`]). Needs root (see [`Network::unavailable`]).
    pub fn network(mut self) -> Self {
        self.network = true;
        self
    }

    /// Puts every node's `log.dirs` on a tmpfs of `bytes` ([`SmallDisk`]: the test can fill
    /// it with [`Node::disk`]), and its `metadata.log.dir` beside it on the host's disk.
    /// Needs root.
    pub fn data_disk(mut self, bytes: u64) -> Self {
        self.data_disk_bytes = Some(bytes);
        self
    }

    /// As [`ClusterBuilder::data_disk`], with an ext4 file system on a loop device
    /// ([`SmallDisk::mount_block`]), which the test can also slow down
    /// ([`SmallDisk::throttle`]). Panics if it cannot (see [`SmallDisk::mount_block`]).
    pub fn block_data_disk(mut self, bytes: u64) -> Self {
        self.data_disk_bytes = Some(bytes);
        self.data_disk_block = true;
        self
    }

    /// Keep the nodes' dirs under `root` (default: a temporary dir removed on drop).
    pub fn dir(mut self, root: &Path) -> Self {
        self.root = Some(root.to_path_buf());
        self
    }

    /// Formats every node, starts them all, then waits until each is ready. A node that
    /// could not bind a port taken meanwhile restarts the whole cluster on fresh ports.
    pub fn start(self) -> Cluster {
        assert!(
            self.roles.iter().any(|r| r.has_controller()),
            "a cluster needs at least one controller"
        );
        let temp = match self.root {
            Some(_) => None,
            None => Some(tempfile::tempdir().expect("temp dir")),
        };
        let root = self
            .root
            .clone()
            .unwrap_or_else(|| temp.as_ref().expect("temp dir").path().to_path_buf());
        let sluice = sluice_path();
        let sluice = sluice.to_str().expect("utf-8 path");
        let (uuid, _) = run_ok(sluice, &["storage", "random-uuid"]);
        let network = self
            .network
            .then(|| Network::create(self.roles.len()).expect("network namespaces"));
        let mut cluster = Cluster {
            cluster_id: uuid.trim().to_string(),
            nodes: Vec::new(),
            network,
            root,
            _temp: temp,
        };
        for attempt in 1..=CLUSTER_START_TRIES_MAX {
            cluster.nodes = self.layout(&cluster.root, cluster.network.as_ref());
            cluster.write_configs(&self);
            if attempt == 1 {
                cluster.format(sluice);
            }
            match cluster.start_all() {
                Ok(()) => return cluster,
                Err(log) if log.contains("in use") && attempt < CLUSTER_START_TRIES_MAX => {
                    eprintln!("[testkit] a port was taken meanwhile; starting again on new ones");
                    cluster.nodes.clear();
                }
                Err(log) => panic!("cluster did not start; log:\n{log}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Nodes with fresh ports: a client port for brokers, a controller port for
    /// controllers.
    fn layout(&self, root: &Path, network: Option<&Network>) -> Vec<Node> {
        let mut ports = match network {
            Some(_) => [NETNS_CLIENT_PORT, NETNS_CONTROLLER_PORT].repeat(self.roles.len()),
            None => free_ports(2 * self.roles.len()),
        }
        .into_iter();
        self.roles
            .iter()
            .enumerate()
            .map(|(i, &roles)| {
                let (client, controller) = (ports.next(), ports.next());
                let node_id = i as i32 + 1;
                let (host, namespace) = match network {
                    Some(n) => (
                        Endpoint::Node(node_id).addr().to_string(),
                        Some(n.namespace(Endpoint::Node(node_id))),
                    ),
                    None => (LOOPBACK.to_string(), None),
                };
                let dir = root.join(format!("node-{node_id}"));
                let block = self.data_disk_block;
                let disk = self.data_disk_bytes.map(|bytes| match block {
                    false => SmallDisk::mount(&dir.join("disk"), bytes),
                    true => SmallDisk::mount_block(&dir.join("disk"), bytes)
                        .unwrap_or_else(|e| panic!("a block data disk: {e}")),
                });
                Node {
                    node_id,
                    roles,
                    host,
                    namespace,
                    disk,
                    client_port: client.filter(|_| roles.has_broker()),
                    controller_port: controller.filter(|_| roles.has_controller()),
                    dir,
                    child: None,
                    log: Arc::new(Mutex::new(Vec::new())),
                    events: None,
                    stopped: false,
                }
            })
            .collect()
    }
}

fn index(node_id: i32, nodes: usize) -> usize {
    assert!(
        node_id >= 1 && node_id as usize <= nodes,
        "node ids are 1..={nodes}, not {node_id}"
    );
    node_id as usize - 1
}

/// N running `sluiced` processes (see the module docs). Dropping it kills them all.
pub struct Cluster {
    /// The cluster id every node was formatted with.
    pub cluster_id: String,
    nodes: Vec<Node>,
    /// After `nodes`: the processes are gone before their namespaces are deleted.
    network: Option<Network>,
    root: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Cluster {
    /// A cluster of `nodes` nodes, all `broker,controller` unless told otherwise.
    pub fn builder(nodes: usize) -> ClusterBuilder {
        assert!(nodes >= 1, "a cluster has at least one node");
        ClusterBuilder {
            roles: vec![Roles::BrokerController; nodes],
            properties: Vec::new(),
            node_properties: vec![Vec::new(); nodes],
            root: None,
            network: false,
            data_disk_bytes: None,
            data_disk_block: false,
        }
    }

    /// `nodes` combined nodes with the defaults.
    pub fn start(nodes: usize) -> Cluster {
        Cluster::builder(nodes).start()
    }

    pub fn node(&self, node_id: i32) -> &Node {
        &self.nodes[index(node_id, self.nodes.len())]
    }

    pub fn node_mut(&mut self, node_id: i32) -> &mut Node {
        let i = index(node_id, self.nodes.len());
        &mut self.nodes[i]
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn nodes_mut(&mut self) -> &mut [Node] {
        &mut self.nodes
    }

    /// `host:port,...` of every node with a client listener (running or not), for a
    /// client's `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> String {
        let servers: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.client_port.is_some())
            .map(Node::bootstrap)
            .collect();
        servers.join(",")
    }

    /// The `controller.quorum.voters` every node was given.
    pub fn voters(&self) -> String {
        let voters: Vec<String> = self
            .nodes
            .iter()
            .filter_map(|n| Some(format!("{}@{}:{}", n.node_id, n.host, n.controller_port?)))
            .collect();
        voters.join(",")
    }

    /// Every node's segment files of `topic`-`partition` concatenated in offset order (the
    /// same bytes on every replica once they caught up; segment boundaries may differ).
    /// A node without the partition gives an empty vector.
    pub fn replica_bytes(&self, topic: &str, partition: i32) -> Vec<Vec<u8>> {
        self.nodes
            .iter()
            .map(|n| {
                let dir = n.data_dir().join(format!("{topic}-{partition}"));
                let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
                    .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
                    .unwrap_or_default();
                logs.retain(|p| p.extension().is_some_and(|e| e == "log"));
                logs.sort();
                logs.iter()
                    .flat_map(|p| std::fs::read(p).unwrap_or_default())
                    .collect()
            })
            .collect()
    }

    /// The nodes' network, when started with [`ClusterBuilder::network`].
    pub fn network(&mut self) -> &mut Network {
        self.network
            .as_mut()
            .expect("the cluster was not started with .network()")
    }

    /// `program` to run where the clients are: in the client namespace of a
    /// [`ClusterBuilder::network`] cluster, else here.
    pub fn client_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match &self.network {
            Some(n) => n.command(Endpoint::Client, program),
            None => Command::new(program),
        }
    }

    /// The dir holding every node's dir (`node-<id>/`).
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// [`wait_for`] with the cluster handed to the predicate.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut done: impl FnMut(&Cluster) -> bool) {
        wait_for(what, timeout, || done(self));
    }

    fn write_configs(&self, builder: &ClusterBuilder) {
        let voters = self.voters();
        for (node, own) in self.nodes.iter().zip(&builder.node_properties) {
            std::fs::create_dir_all(&node.dir).expect("node dir");
            let mut text = node.harness_properties(&voters);
            for (k, v) in builder.properties.iter().chain(own) {
                text.push_str(&format!("{k}={v}\n"));
            }
            std::fs::write(node.config_path(), text).expect("write server.properties");
        }
    }

    fn format(&self, sluice: &str) {
        for node in &self.nodes {
            let config = node.config_path();
            let config = config.to_str().expect("utf-8 path");
            run_ok(
                sluice,
                &["storage", "format", "-t", &self.cluster_id, "-c", config],
            );
        }
    }

    /// Spawns every node, then waits for each; on a failure, kills them all and returns
    /// the failed node's log.
    fn start_all(&mut self) -> Result<(), String> {
        for node in self.nodes.iter_mut() {
            node.spawn();
        }
        let mut failed = None;
        for node in self.nodes.iter_mut() {
            if let Err(log) = node.await_ready() {
                failed.get_or_insert(log);
            }
        }
        match failed {
            None => Ok(()),
            Some(log) => {
                for node in &mut self.nodes {
                    node.kill_if_running();
                }
                Err(log)
            }
        }
    }
}

/// One `sluiced` of a [`Cluster`]: its ports, dirs and process. Its dir holds
/// `server.properties`, `data/` (its `log.dirs`) and `sluiced.log` (every incarnation's
/// log).
pub struct Node {
    pub node_id: i32,
    pub roles: Roles,
    /// The PLAINTEXT listener's port (brokers only).
    pub client_port: Option<u16>,
    /// The CONTROLLER listener's port, as in the voters (controllers only).
    pub controller_port: Option<u16>,
    /// Its address: 127.0.0.1, or 10.89.0.<id> in a [`ClusterBuilder::network`] cluster.
    pub host: String,
    /// Its network namespace, in a [`ClusterBuilder::network`] cluster.
    namespace: Option<String>,
    /// The tmpfs holding `log.dirs`, with [`ClusterBuilder::data_disk`]; unmounted after
    /// the process is killed (`Drop for Node` runs before the fields drop).
    disk: Option<SmallDisk>,
    dir: PathBuf,
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
    /// The current process's log events; closes once its last line is in `log` (in a
    /// mutex: a `Cluster` may be shared by threads).
    events: Option<Mutex<Receiver<LogEvent>>>,
    stopped: bool,
}

impl Node {
    /// `<host>:<client port>`; panics for a controller-only node.
    pub fn bootstrap(&self) -> String {
        let port = self.client_port.unwrap_or_else(|| {
            panic!(
                "node {} is controller-only: no client listener",
                self.node_id
            )
        });
        format!("{}:{port}", self.host)
    }

    /// Its `log.dirs` (one dir).
    pub fn data_dir(&self) -> PathBuf {
        match &self.disk {
            Some(d) => d.path().join("data"),
            None => self.dir.join("data"),
        }
    }

    /// The tmpfs holding its `log.dirs` ([`ClusterBuilder::data_disk`]).
    pub fn disk(&self) -> &SmallDisk {
        self.disk
            .as_ref()
            .expect("the cluster was not started with .data_disk()")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("server.properties")
    }

    /// Every line it logged, across restarts.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("sluiced.log")
    }

    /// The lines its current (or last) process logged.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Whether its current (or last) process logged a line containing `needle`.
    pub fn log_contains(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    /// The pid of its process, while there is one (also while stopped).
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// How its process ended, if it ended by itself (not killed or stopped by the
    /// harness): a crash shows here rather than as a cluster that never heals.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// SIGKILL, then reaps the process (its files stay).
    pub fn kill(&mut self) {
        self.signal_and_reap(libc::SIGKILL);
    }

    /// SIGTERM (and SIGCONT if it was stopped, so it can act on it), then waits for the
    /// exit; returns its status.
    pub fn term(&mut self) -> ExitStatus {
        self.signal_and_reap(libc::SIGTERM)
    }

    /// SIGSTOP; returns once the kernel shows the process stopped.
    pub fn stop(&mut self) {
        self.signal(libc::SIGSTOP);
        let pid = self.pid().expect("running");
        wait_for(&format!("node {} to stop", self.node_id), STOP_WAIT, || {
            process_state(pid) == Some('T')
        });
        self.stopped = true;
    }

    /// SIGCONT after [`Node::stop`]; returns once the process is no longer stopped.
    pub fn cont(&mut self) {
        self.signal(libc::SIGCONT);
        let pid = self.pid().expect("running");
        wait_for(
            &format!("node {} to continue", self.node_id),
            STOP_WAIT,
            || process_state(pid) != Some('T'),
        );
        self.stopped = false;
    }

    /// Starts it again on the same dirs, config and ports, and waits until it is ready.
    pub fn restart(&mut self) {
        assert!(!self.is_running(), "node {} is still running", self.node_id);
        self.spawn();
        if let Err(log) = self.await_ready() {
            self.kill_if_running();
            panic!("node {} did not restart; log:\n{log}", self.node_id);
        }
    }

    fn harness_properties(&self, voters: &str) -> String {
        let mut listeners = Vec::new();
        if let Some(p) = self.client_port {
            listeners.push(format!("{CLIENT_LISTENER}://{}:{p}", self.host));
        }
        if let Some(p) = self.controller_port {
            listeners.push(format!("{CONTROLLER_LISTENER}://{}:{p}", self.host));
        }
        format!(
            "process.roles={}\nnode.id={}\ncontroller.quorum.voters={voters}\n\
             listeners={}\nlistener.security.protocol.map={CONTROLLER_LISTENER}:PLAINTEXT,\
             {CLIENT_LISTENER}:PLAINTEXT\ncontroller.listener.names={CONTROLLER_LISTENER}\n\
             inter.broker.listener.name={CLIENT_LISTENER}\nlog.dirs={}\n",
            self.roles.process_roles(),
            self.node_id,
            listeners.join(","),
            self.data_dir().display(),
        ) + &match self.disk {
            Some(_) => format!("metadata.log.dir={}\n", self.dir.join("metadata").display()),
            None => String::new(),
        }
    }

    fn spawn(&mut self) {
        let level = std::env::var("SLUICE_LOG").unwrap_or_else(|_| "info".into());
        let mut command = match &self.namespace {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(sluiced_path());
                c
            }
            None => Command::new(sluiced_path()),
        };
        let mut child = command
            .arg(self.config_path())
            .env("SLUICE_LOG", level)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sluiced");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open node log file");
        self.log = Arc::new(Mutex::new(Vec::new()));
        let label = format!("[node {}]", self.node_id);
        let events = follow_log(&mut child, self.log.clone(), label, Some(file));
        self.child = Some(child);
        self.events = Some(Mutex::new(events));
        self.stopped = false;
    }

    /// Ready, on the port it was given; else its log.
    /// Ready, on the port it was given; else its log.
    fn await_ready(&mut self) -> Result<(), String> {
        let ready = wait_ready(&self.events.as_ref().expect("spawned").lock().unwrap());
        match ready {
            Some(port) if port == self.client_port => Ok(()),
            Some(port) => Err(format!(
                "node {} listens on {port:?}, not on {:?}",
                self.node_id, self.client_port
            )),
            None => {
                // It exited or took too long: once it is gone, its log is complete.
                self.kill_if_running();
                Err(self.log().join("\n"))
            }
        }
    }

    fn signal(&self, sig: i32) {
        let pid = self
            .pid()
            .unwrap_or_else(|| panic!("node {} is not running", self.node_id));
        // SAFETY: kill(2) on our own child's pid; the child has not been reaped yet.
        unsafe { libc::kill(pid, sig) };
    }

    fn signal_and_reap(&mut self, sig: i32) -> ExitStatus {
        self.signal(sig);
        if self.stopped {
            self.signal(libc::SIGCONT);
        }
        let mut child = self.child.take().expect("running");
        self.stopped = false;
        let status = crate::reap(&mut child, sig);
        self.wait_log_closed();
        status
    }

    fn kill_if_running(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.wait_log_closed();
    }

    /// After the process is gone: until its last log line is in `log`.
    fn wait_log_closed(&mut self) {
        if let Some(events) = self.events.take() {
            crate::wait_log_closed(&events.into_inner().unwrap());
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill_if_running();
    }
}

/// The state letter of `/proc/<pid>/stat` (`T` = stopped); `None` once it is gone.
fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ...": comm may hold spaces and parentheses; the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}
