//! Kafka's KRaft keys: `process.roles`, `controller.quorum.voters`, named listeners with
//! `listener.security.protocol.map`, `controller.listener.names`,
//! `inter.broker.listener.name`, the replication keys, and Sluice's gossip override.
//!
//! [`ClusterConfig`] is `None` without `process.roles`: today's single node. With it, the
//! keys are validated as Kafka validates them (`KafkaConfigValidator`), plus what a cluster
//! of ours needs (a controller lists itself in the voters with its controller listener's
//! address; fixed ports on the listeners other nodes connect to).

use std::collections::BTreeSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use super::{parse_bool, parse_int, Config, ConfigError, Listener};

/// Kafka's `broker.session.timeout.ms` default.
pub const BROKER_SESSION_TIMEOUT_MS_DEFAULT: u64 = 9_000;
/// Kafka's `broker.heartbeat.interval.ms` default.
pub const BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT: u64 = 2_000;
/// Kafka's `controller.quorum.election.timeout.ms` default.
pub const QUORUM_ELECTION_TIMEOUT_MS_DEFAULT: u64 = 1_000;
/// Kafka's `replica.lag.time.max.ms` default.
pub const REPLICA_LAG_TIME_MS_MAX_DEFAULT: u64 = 30_000;
/// Kafka's `replica.fetch.max.bytes` default (1 MiB).
pub const REPLICA_FETCH_BYTES_MAX_DEFAULT: u32 = 1_048_576;
/// Kafka's `leader.imbalance.check.interval.seconds` default.
pub const LEADER_IMBALANCE_CHECK_INTERVAL_SECONDS_DEFAULT: u64 = 300;
/// Kafka's `leader.imbalance.per.broker.percentage` default.
pub const LEADER_IMBALANCE_PER_BROKER_PERCENTAGE_DEFAULT: u32 = 10;
/// Kafka's `replica.fetch.wait.max.ms` default.
pub const REPLICA_FETCH_WAIT_MS_MAX_DEFAULT: u64 = 500;
/// Kafka's default `inter.broker.listener.name` (from `security.inter.broker.protocol`).
pub const INTER_BROKER_LISTENER_NAME_DEFAULT: &str = "PLAINTEXT";
/// The only security protocol served (TLS and SASL are not implemented).
pub const SECURITY_PROTOCOL_PLAINTEXT: &str = "PLAINTEXT";
/// Kafka's security protocols (`SecurityProtocol`); its default map sends each to itself.
const SECURITY_PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];
/// Voters in `controller.quorum.voters`: Raft quorums are small; more is surely a mistake.
pub const QUORUM_VOTERS_MAX: usize = 64;

/// Keys parsed and validated but not yet acted on by the running broker: each one set logs
/// a warning naming it. Remove a key from here in the change that makes it honoured.
/// Replication keys a single node accepts and cannot act on (it has no followers).
pub const KEYS_ONLY_A_CLUSTER_HONOURS: &[&str] = &[
    "replica.lag.time.max.ms",
    "min.insync.replicas",
    "replica.fetch.max.bytes",
    "replica.fetch.wait.max.ms",
    "unclean.leader.election.enable",
    "sluice.gossip.enable",
    "sluice.gossip.probe.interval.ms",
    "sluice.gossip.suspect.timeout.ms",
    "sluice.gossip.listener",
    "auto.leader.rebalance.enable",
    "leader.imbalance.check.interval.seconds",
    "leader.imbalance.per.broker.percentage",
    "controller.quorum.auto.join.enable",
    "replica.selector.class",
];

/// Kafka's rack-aware `replica.selector.class` (KIP-392), the one selector Sluice has.
pub const RACK_AWARE_REPLICA_SELECTOR: &str =
    "org.apache.kafka.common.replica.RackAwareReplicaSelector";

/// `replica.selector.class`: how a leader picks a replica for a consumer to fetch from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplicaSelector {
    /// Unset (Kafka's default): the leader serves every consumer itself.
    #[default]
    LeaderOnly,
    /// `RackAwareReplicaSelector`: a consumer whose `client.rack` holds an in-sync follower
    /// but not the leader is sent to the most caught-up such follower.
    RackAware,
}

pub const KEYS_NOT_YET_HONOURED: &[&str] = &[];

/// Kafka's `process.roles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessRoles {
    /// `broker`: serves clients and replicas; joins the quorum named by the voters.
    Broker,
    /// `controller`: a voter of the metadata quorum only.
    Controller,
    /// `broker,controller`: both in one process (Kafka's combined mode).
    BrokerController,
}

impl ProcessRoles {
    pub fn has_broker(self) -> bool {
        self != ProcessRoles::Controller
    }

    pub fn has_controller(self) -> bool {
        self != ProcessRoles::Broker
    }

    fn parse(value: &str) -> Result<ProcessRoles, ConfigError> {
        let key = "process.roles";
        let expected = "broker, controller or broker,controller";
        let mut roles = BTreeSet::new();
        for role in value.split(',').map(str::trim) {
            if !matches!(role, "broker" | "controller") {
                return Err(ConfigError::new(key, value, expected));
            }
            if !roles.insert(role) {
                return Err(ConfigError(format!(
                    "duplicate role names found in process.roles={value}"
                )));
            }
        }
        Ok(
            match (roles.contains("broker"), roles.contains("controller")) {
                (true, true) => ProcessRoles::BrokerController,
                (true, false) => ProcessRoles::Broker,
                _ => ProcessRoles::Controller,
            },
        )
    }
}

impl std::fmt::Display for ProcessRoles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProcessRoles::Broker => "broker",
            ProcessRoles::Controller => "controller",
            ProcessRoles::BrokerController => "broker,controller",
        })
    }
}

/// A cluster node's configuration (`process.roles` set), validated. Built once at startup
/// by [`Config::from_pairs`]; the controller, gossip and replica fetchers read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `process.roles`.
    pub roles: ProcessRoles,
    /// `node.id` (required with `process.roles`).
    pub node_id: i32,
    /// `controller.quorum.voters`: (node id, controller address), in the order given.
    pub voters: Vec<(i32, SocketAddr)>,
    /// The first of `controller.listener.names` (the only one: more are refused).
    pub controller_listener_name: String,
    /// Where this node's controller listens (its `listeners` entry named by
    /// `controller.listener.names`); `Some` exactly when `roles.has_controller()`. The
    /// broker's client listener code never binds it: the controller does.
    pub controller_addr: Option<SocketAddr>,
    /// `inter.broker.listener.name` (default `PLAINTEXT`).
    pub inter_broker_listener_name: String,
    /// The bind address of the inter-broker listener; `Some` exactly when
    /// `roles.has_broker()`.
    pub inter_broker_addr: Option<SocketAddr>,
    /// Where other brokers reach it (its `advertised.listeners` entry, else the listener
    /// itself with a wildcard host replaced by this host's name); with `inter_broker_addr`.
    pub inter_broker_advertised: Option<Listener>,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// UDP address of SWIM gossip: `sluice.gossip.listener`, else the controller listener's
    /// address, else the inter-broker listener's.
    pub gossip_addr: SocketAddr,
    /// `metadata.log.dir`, else the first of `log.dirs` (Kafka's rule).
    pub metadata_log_dir: PathBuf,
    /// Liveness and replication timeouts and switches.
    pub replication: ReplicationConfig,
}

/// The replication keys (Kafka's defaults until set); the same in [`ClusterKeys`] and
/// [`ClusterConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// `broker.session.timeout.ms`: the controller fences a broker silent this long.
    pub session_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: u64,
    /// `replica.lag.time.max.ms`: a follower not caught up for this long leaves the ISR.
    pub replica_lag_time_ms_max: u64,
    /// `unclean.leader.election.enable` (broker default of the topic key).
    pub unclean_leader_election_enable: bool,
    /// `min.insync.replicas` (broker default of the topic key).
    pub min_insync_replicas: i32,
    /// `replica.fetch.max.bytes`: per partition, in a follower's fetch.
    pub replica_fetch_bytes_max: u32,
    /// `replica.fetch.wait.max.ms`: a follower's fetch `max_wait_ms`.
    pub replica_fetch_wait_ms_max: u64,
    /// `controlled.shutdown.enable`.
    pub controlled_shutdown_enable: bool,
    /// `auto.leader.rebalance.enable`: the active controller restores preferred leaders.
    pub auto_leader_rebalance_enable: bool,
    /// `controller.quorum.election.timeout.ms`: a dead quorum leader is replaced 1.5–2x this
    /// after its last heartbeat (see `sluice_replication::quorum::QuorumTiming`).
    pub quorum_election_timeout_ms: u64,
    /// `sluice.gossip.enable`: SWIM gossip may fence a dead broker before its session ends.
    pub gossip_enable: bool,
    /// `sluice.gossip.probe.interval.ms`: one SWIM probe of a random member per interval.
    pub gossip_probe_interval_ms: u64,
    /// `sluice.gossip.suspect.timeout.ms`: a suspected member that does not refute within
    /// this long is declared down.
    pub gossip_suspect_timeout_ms: u64,
    /// `leader.imbalance.check.interval.seconds`.
    pub leader_imbalance_check_interval_seconds: u64,
    /// `leader.imbalance.per.broker.percentage`: a broker's share of the partitions it
    /// prefers but does not lead above which they are moved back.
    pub leader_imbalance_per_broker_percentage: u32,
    /// `controller.quorum.auto.join.enable` (Kafka's default false): parsed, and warned
    /// about when true — a re-formatted controller joins only by `add-controller`.
    pub quorum_auto_join_enable: bool,
    /// `replica.selector.class`.
    pub replica_selector: ReplicaSelector,
}

impl ClusterConfig {
    /// This node's own entry in the voters (a controller's).
    pub fn own_voter(&self) -> Option<SocketAddr> {
        self.voters
            .iter()
            .find(|(id, _)| *id == self.node_id)
            .map(|(_, addr)| *addr)
    }
}

/// The cluster keys as read, before validation (typed where a key is valid on its own).
#[derive(Debug, Clone, Default)]
pub struct ClusterKeys {
    pub process_roles: Option<String>,
    pub controller_quorum_voters: Option<String>,
    pub controller_quorum_bootstrap_servers: Option<String>,
    /// (listener name, security protocol), upper case; `None` = Kafka's default map.
    pub listener_security_protocol_map: Option<Vec<(String, String)>>,
    pub controller_listener_names: Vec<String>,
    pub inter_broker_listener_name: Option<String>,
    pub broker_rack: Option<String>,
    pub metadata_log_dir: Option<PathBuf>,
    pub gossip_listener: Option<SocketAddr>,
    pub replication: ReplicationConfig,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            session_timeout_ms: BROKER_SESSION_TIMEOUT_MS_DEFAULT,
            heartbeat_interval_ms: BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT,
            replica_lag_time_ms_max: REPLICA_LAG_TIME_MS_MAX_DEFAULT,
            unclean_leader_election_enable: false,
            min_insync_replicas: 1,
            replica_fetch_bytes_max: REPLICA_FETCH_BYTES_MAX_DEFAULT,
            replica_fetch_wait_ms_max: REPLICA_FETCH_WAIT_MS_MAX_DEFAULT,
            controlled_shutdown_enable: true,
            auto_leader_rebalance_enable: true,
            quorum_election_timeout_ms: QUORUM_ELECTION_TIMEOUT_MS_DEFAULT,
            gossip_enable: true,
            gossip_probe_interval_ms: sluice_replication::gossip::GOSSIP_PROBE_INTERVAL_MS_DEFAULT,
            gossip_suspect_timeout_ms:
                sluice_replication::gossip::GOSSIP_SUSPECT_TIMEOUT_MS_DEFAULT,
            leader_imbalance_check_interval_seconds:
                LEADER_IMBALANCE_CHECK_INTERVAL_SECONDS_DEFAULT,
            leader_imbalance_per_broker_percentage: LEADER_IMBALANCE_PER_BROKER_PERCENTAGE_DEFAULT,
            quorum_auto_join_enable: false,
            replica_selector: ReplicaSelector::LeaderOnly,
        }
    }
}

impl ReplicationConfig {
    /// Reads one replication key; false if it is not one.
    fn apply(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        let ms = |v| parse_int(key, v, 1, i32::MAX as i64).map(|n| n as u64);
        match key {
            "broker.session.timeout.ms" => self.session_timeout_ms = ms(value)?,
            "broker.heartbeat.interval.ms" => self.heartbeat_interval_ms = ms(value)?,
            "replica.lag.time.max.ms" => self.replica_lag_time_ms_max = ms(value)?,
            "replica.fetch.wait.max.ms" => self.replica_fetch_wait_ms_max = ms(value)?,
            "replica.fetch.max.bytes" => {
                self.replica_fetch_bytes_max = parse_int(key, value, 0, i32::MAX as i64)? as u32
            }
            "min.insync.replicas" => {
                self.min_insync_replicas = parse_int(key, value, 1, i16::MAX as i64)? as i32
            }
            "unclean.leader.election.enable" => {
                self.unclean_leader_election_enable = parse_bool(key, value)?
            }
            "controlled.shutdown.enable" => {
                self.controlled_shutdown_enable = parse_bool(key, value)?
            }
            "auto.leader.rebalance.enable" => {
                self.auto_leader_rebalance_enable = parse_bool(key, value)?
            }
            "controller.quorum.election.timeout.ms" => {
                self.quorum_election_timeout_ms = parse_int(key, value, 10, 600_000)? as u64
            }
            "sluice.gossip.enable" => self.gossip_enable = parse_bool(key, value)?,
            "sluice.gossip.probe.interval.ms" => {
                self.gossip_probe_interval_ms = parse_int(key, value, 10, 60_000)? as u64
            }
            "sluice.gossip.suspect.timeout.ms" => {
                self.gossip_suspect_timeout_ms = parse_int(key, value, 10, 600_000)? as u64
            }
            "leader.imbalance.check.interval.seconds" => {
                self.leader_imbalance_check_interval_seconds =
                    parse_int(key, value, 1, i32::MAX as i64)? as u64
            }
            "leader.imbalance.per.broker.percentage" => {
                self.leader_imbalance_per_broker_percentage =
                    parse_int(key, value, 0, i32::MAX as i64)? as u32
            }
            "controller.quorum.auto.join.enable" => {
                self.quorum_auto_join_enable = parse_bool(key, value)?
            }
            "replica.selector.class" => {
                self.replica_selector = match value.trim() {
                    "" => ReplicaSelector::LeaderOnly,
                    RACK_AWARE_REPLICA_SELECTOR => ReplicaSelector::RackAware,
                    _ => {
                        let expected = format!(
                            "{RACK_AWARE_REPLICA_SELECTOR} or nothing (the only replica \
                             selector Sluice has)"
                        );
                        return Err(ConfigError::new(key, value, &expected));
                    }
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl ClusterKeys {
    /// Reads one key; false if it is not a cluster key.
    pub fn apply(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        if self.replication.apply(key, value)? {
            return Ok(true);
        }
        match key {
            "process.roles" => self.process_roles = Some(value.to_string()),
            "controller.quorum.voters" => self.controller_quorum_voters = non_empty(value),
            "controller.quorum.bootstrap.servers" => {
                self.controller_quorum_bootstrap_servers = non_empty(value)
            }
            "listener.security.protocol.map" => {
                self.listener_security_protocol_map = Some(parse_protocol_map(value)?)
            }
            "controller.listener.names" => self.controller_listener_names = parse_names(value),
            "inter.broker.listener.name" => {
                self.inter_broker_listener_name = non_empty(value).map(|v| v.to_uppercase())
            }
            "broker.rack" => self.broker_rack = non_empty(value),
            "metadata.log.dir" => self.metadata_log_dir = non_empty(value).map(PathBuf::from),
            "sluice.gossip.listener" => self.gossip_listener = Some(parse_gossip(key, value)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Whether `name` is one of `controller.listener.names` (only in cluster mode: without
    /// `process.roles` that key is refused).
    pub fn is_controller_listener(&self, name: &str) -> bool {
        self.controller_listener_names.iter().any(|n| n == name)
    }

    /// The security protocol of the listener `name`: the explicit map, else Kafka's default
    /// map (each protocol's name to itself), where controller listeners map to PLAINTEXT.
    fn protocol_of(&self, name: &str) -> Option<String> {
        match &self.listener_security_protocol_map {
            Some(map) => map.iter().find(|(l, _)| l == name).map(|(_, p)| p.clone()),
            None if SECURITY_PROTOCOLS.contains(&name) => Some(name.to_string()),
            None if self.is_controller_listener(name) => {
                Some(SECURITY_PROTOCOL_PLAINTEXT.to_string())
            }
            None => None,
        }
    }
}

fn non_empty(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty()).then(|| v.to_string())
}

fn parse_names(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_uppercase)
        .collect()
}

/// `NAME:PROTOCOL,...` (Kafka's `listener.security.protocol.map`).
fn parse_protocol_map(value: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let key = "listener.security.protocol.map";
    let expected = "a comma-separated list of LISTENER_NAME:SECURITY_PROTOCOL, e.g. \
                    CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT";
    let mut out: Vec<(String, String)> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, protocol) = item
            .split_once(':')
            .ok_or_else(|| ConfigError::new(key, value, expected))?;
        let (name, protocol) = (name.trim().to_uppercase(), protocol.trim().to_uppercase());
        if name.is_empty() || !SECURITY_PROTOCOLS.contains(&protocol.as_str()) {
            return Err(ConfigError::new(key, value, expected));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(ConfigError::new(key, value, "each listener name once"));
        }
        out.push((name, protocol));
    }
    Ok(out)
}

fn parse_gossip(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    let expected = "host:port of the UDP gossip socket, e.g. 127.0.0.1:9093";
    value
        .trim()
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .filter(|a| a.port() != 0)
        .ok_or_else(|| ConfigError::new(key, value, expected))
}

/// `id@host:port,...` (Kafka's `controller.quorum.voters`).
fn parse_voters(value: &str) -> Result<Vec<(i32, SocketAddr)>, ConfigError> {
    let key = "controller.quorum.voters";
    let expected = "a comma-separated list of node.id@host:port, e.g. \
                    1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293";
    let mut voters: Vec<(i32, SocketAddr)> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = || {
            ConfigError(format!(
                "voter {item:?} in {key}={value}: expected {expected}"
            ))
        };
        let (id, addr) = item.split_once('@').ok_or_else(bad)?;
        let id: i32 = id.trim().parse().map_err(|_| bad())?;
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port.parse().map_err(|_| bad())?;
        if id < 0 || host.is_empty() || port == 0 {
            return Err(bad());
        }
        let addr = (host, port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| {
                ConfigError(format!(
                    "voter {item:?} in {key}: host {host} does not resolve to an address"
                ))
            })?;
        if addr.ip().is_unspecified() {
            return Err(ConfigError(format!(
                "voter {item:?} in {key}: {host} is the wildcard address; name the \
                 controller's routable address"
            )));
        }
        if voters.iter().any(|(v, _)| *v == id) {
            return Err(ConfigError(format!(
                "duplicate voter id {id} in {key}={value}: each node.id once"
            )));
        }
        voters.push((id, addr));
    }
    if voters.is_empty() {
        return Err(ConfigError(format!(
            "if using process.roles, {key} must contain a parseable set of voters \
             (expected {expected})"
        )));
    }
    if voters.len() > QUORUM_VOTERS_MAX {
        return Err(ConfigError(format!(
            "{key} lists {} voters; at most {QUORUM_VOTERS_MAX} are supported",
            voters.len()
        )));
    }
    Ok(voters)
}

/// Kafka's listener checks for every mode: each listener (and each controller listener
/// name) has a security protocol, and that protocol is PLAINTEXT; advertised listeners are
/// routable.
pub(super) fn check_listeners(config: &Config) -> Result<(), ConfigError> {
    let keys = &config.cluster_keys;
    let map_key = "listener.security.protocol.map";
    let names = config.listeners.iter().map(|l| &l.name);
    for name in names.chain(keys.controller_listener_names.iter()) {
        let Some(protocol) = keys.protocol_of(name) else {
            return Err(ConfigError(format!(
                "no security protocol defined for listener {name}: add {name}:PLAINTEXT to \
                 {map_key}"
            )));
        };
        if protocol != SECURITY_PROTOCOL_PLAINTEXT {
            return Err(ConfigError(format!(
                "{map_key}: listener {name} uses security protocol {protocol}, which is not \
                 supported yet (only PLAINTEXT: TLS and SASL are not implemented)"
            )));
        }
    }
    for l in config.advertised_listeners.iter().flatten() {
        if l.host == "0.0.0.0" || l.host == "::" {
            return Err(ConfigError(format!(
                "advertised.listeners cannot use the nonroutable meta-address {} ({l}); use a \
                 routable IP address or host name",
                l.host
            )));
        }
    }
    Ok(())
}

/// Builds the cluster config; `None` without `process.roles`, where the KRaft-only keys
/// are refused rather than ignored.
pub(super) fn build(config: &Config) -> Result<Option<ClusterConfig>, ConfigError> {
    let keys = &config.cluster_keys;
    let Some(roles) = &keys.process_roles else {
        refuse_kraft_keys_without_roles(keys)?;
        check_inter_broker_listener_name(config)?;
        return Ok(None);
    };
    let roles = ProcessRoles::parse(roles)?;
    if !config.keys_set.contains("node.id") && !config.keys_set.contains("broker.id") {
        return Err(ConfigError(
            "missing required configuration node.id: every node of a cluster (process.roles \
             set) needs its own"
                .into(),
        ));
    }
    if let Some(servers) = &keys.controller_quorum_bootstrap_servers {
        return Err(ConfigError(format!(
            "controller.quorum.bootstrap.servers={servers}: Kafka 4's dynamic quorum is not \
             supported; use controller.quorum.voters=id@host:port,... to list the voters"
        )));
    }
    let voters = parse_voters(keys.controller_quorum_voters.as_deref().unwrap_or(""))?;
    let controller_listener_name = controller_listener_name(keys)?;
    let controller = check_controller_role(config, roles, &voters, &controller_listener_name)?;
    let broker = check_broker_role(config, roles, &controller_listener_name)?;
    let gossip_addr = keys
        .gossip_listener
        .or(controller)
        .or(broker.as_ref().map(|(addr, _)| *addr))
        .expect("a node has a controller or a broker listener");
    check_timeouts(&keys.replication)?;
    let (inter_broker_addr, inter_broker_advertised) = broker.unzip();
    Ok(Some(ClusterConfig {
        roles,
        node_id: config.node_id,
        voters,
        controller_listener_name,
        controller_addr: controller,
        inter_broker_listener_name: inter_broker_listener_name(keys),
        inter_broker_addr,
        inter_broker_advertised,
        rack: keys.broker_rack.clone(),
        gossip_addr,
        metadata_log_dir: keys
            .metadata_log_dir
            .clone()
            .unwrap_or_else(|| config.log_dirs[0].clone()),
        replication: keys.replication.clone(),
    }))
}

fn inter_broker_listener_name(keys: &ClusterKeys) -> String {
    keys.inter_broker_listener_name
        .clone()
        .unwrap_or_else(|| INTER_BROKER_LISTENER_NAME_DEFAULT.to_string())
}

/// Without `process.roles` this is a single node: a key that only means something in a
/// cluster would be silently ignored, so it refuses to start instead.
fn refuse_kraft_keys_without_roles(keys: &ClusterKeys) -> Result<(), ConfigError> {
    let set = [
        (
            "controller.quorum.voters",
            keys.controller_quorum_voters.is_some(),
        ),
        (
            "controller.quorum.bootstrap.servers",
            keys.controller_quorum_bootstrap_servers.is_some(),
        ),
        (
            "controller.listener.names",
            !keys.controller_listener_names.is_empty(),
        ),
    ];
    match set.iter().find(|(_, is_set)| *is_set) {
        Some((key, _)) => Err(ConfigError(format!(
            "{key} is set but process.roles is not: set process.roles (broker, controller or \
             broker,controller) to run a cluster node, or remove {key} to run a single node"
        ))),
        None => Ok(()),
    }
}

/// Kafka checks `inter.broker.listener.name` on every broker, a single one too.
fn check_inter_broker_listener_name(config: &Config) -> Result<(), ConfigError> {
    let Some(name) = &config.cluster_keys.inter_broker_listener_name else {
        return Ok(());
    };
    if config
        .effective_advertised()
        .iter()
        .any(|l| l.name == *name)
    {
        return Ok(());
    }
    Err(ConfigError(format!(
        "inter.broker.listener.name={name} must be a listener name defined in \
         advertised.listeners (or listeners)"
    )))
}

fn controller_listener_name(keys: &ClusterKeys) -> Result<String, ConfigError> {
    match keys.controller_listener_names.as_slice() {
        [] => Err(ConfigError(
            "controller.listener.names must name the controller listener (e.g. CONTROLLER) \
             when process.roles is set"
                .into(),
        )),
        [one] => Ok(one.clone()),
        many => Err(ConfigError(format!(
            "controller.listener.names={}: only one controller listener is supported",
            many.join(",")
        ))),
    }
}

/// A controller's listener: in `listeners`, at a fixed port, and where its own entry in
/// the voters says. Returns its address (`None` for a broker-only node, which must not
/// have one).
fn check_controller_role(
    config: &Config,
    roles: ProcessRoles,
    voters: &[(i32, SocketAddr)],
    name: &str,
) -> Result<Option<SocketAddr>, ConfigError> {
    let node = config.node_id;
    let ids = || {
        let ids: Vec<String> = voters.iter().map(|(id, _)| id.to_string()).collect();
        ids.join(",")
    };
    let listener = config.listeners.iter().find(|l| l.name == name);
    if !roles.has_controller() {
        if voters.iter().any(|(id, _)| *id == node) {
            return Err(ConfigError(format!(
                "if process.roles contains just the 'broker' role, the node id {node} must \
                 not be included in the set of voters controller.quorum.voters={{{}}}",
                ids()
            )));
        }
        if let Some(l) = listener {
            return Err(ConfigError(format!(
                "controller.listener.names must not contain a value appearing in the \
                 'listeners' configuration when running KRaft with just the broker role \
                 (found {l})"
            )));
        }
        return Ok(None);
    }
    let Some(own) = voters.iter().find(|(id, _)| *id == node).map(|v| v.1) else {
        return Err(ConfigError(format!(
            "if process.roles contains the 'controller' role, the node id {node} must be \
             included in the set of voters controller.quorum.voters={{{}}}",
            ids()
        )));
    };
    let Some(listener) = listener else {
        return Err(ConfigError(format!(
            "controller.listener.names={name} must name a listener appearing in the \
             'listeners' configuration when running the KRaft controller role"
        )));
    };
    let addr = fixed_port(listener)?;
    let same = if addr.ip().is_unspecified() {
        addr.port() == own.port()
    } else {
        addr == own
    };
    if !same {
        return Err(ConfigError(format!(
            "controller.quorum.voters lists this node ({node}) at {own}, but its controller \
             listener {listener} (listeners) is elsewhere: a controller must be listed with \
             its controller listener's address"
        )));
    }
    Ok(Some(addr))
}

/// A broker's listeners: the controller listener is never advertised to clients, the
/// inter-broker listener is advertised and at a fixed port. Returns its bind address and
/// advertised address (`None` for a controller-only node).
fn check_broker_role(
    config: &Config,
    roles: ProcessRoles,
    controller: &str,
) -> Result<Option<(SocketAddr, Listener)>, ConfigError> {
    if !roles.has_broker() {
        if config.advertised_listeners.is_some() {
            return Err(ConfigError(
                "the advertised.listeners config must be empty when process.roles=controller"
                    .into(),
            ));
        }
        if let Some(l) = config.listeners.iter().find(|l| l.name != controller) {
            return Err(ConfigError(format!(
                "the listeners config must only contain KRaft controller listeners from \
                 controller.listener.names when process.roles=controller (found {l})"
            )));
        }
        return Ok(None);
    }
    let advertised = config.effective_advertised();
    if advertised.iter().any(|l| l.name == controller) {
        return Err(ConfigError(
            "the advertised.listeners config must not contain KRaft controller listeners from \
             controller.listener.names when process.roles contains the broker role because \
             Kafka clients that send requests via advertised listeners do not send requests \
             to KRaft controllers -- they only send requests to KRaft brokers"
                .into(),
        ));
    }
    let name = inter_broker_listener_name(&config.cluster_keys);
    if name == controller {
        return Err(ConfigError(format!(
            "inter.broker.listener.name={name} names the controller listener \
             (controller.listener.names): brokers replicate over a broker listener"
        )));
    }
    let (Some(bind), Some(adv)) = (
        config.listeners.iter().find(|l| l.name == name),
        advertised.into_iter().find(|l| l.name == name),
    ) else {
        return Err(ConfigError(format!(
            "inter.broker.listener.name={name} must be a listener name defined in \
             advertised.listeners (or listeners)"
        )));
    };
    let addr = fixed_port(bind)?;
    if adv.port == 0 {
        return Err(port_zero("advertised.listeners", &adv));
    }
    Ok(Some((addr, adv)))
}

fn fixed_port(l: &Listener) -> Result<SocketAddr, ConfigError> {
    if l.port == 0 {
        return Err(port_zero("listeners", l));
    }
    l.socket_addr()
}

fn port_zero(key: &str, l: &Listener) -> ConfigError {
    ConfigError(format!(
        "{key}: listener {l} has port 0, which a cluster node cannot use for the listeners \
         other nodes connect to (they must know its port before it starts)"
    ))
}

fn check_timeouts(keys: &ReplicationConfig) -> Result<(), ConfigError> {
    if keys.heartbeat_interval_ms >= keys.session_timeout_ms {
        return Err(ConfigError(format!(
            "broker.heartbeat.interval.ms={} must be less than broker.session.timeout.ms={}",
            keys.heartbeat_interval_ms, keys.session_timeout_ms
        )));
    }
    if keys.replica_fetch_wait_ms_max > keys.replica_lag_time_ms_max {
        return Err(ConfigError(format!(
            "replica.fetch.wait.max.ms={} should always be less than or equal to \
             replica.lag.time.max.ms={} to prevent frequent changes in ISR",
            keys.replica_fetch_wait_ms_max, keys.replica_lag_time_ms_max
        )));
    }
    Ok(())
}

/// One line naming every key that was set but is not acted on yet, plus, for a cluster
/// node, what it does instead.
pub(super) fn not_honoured_warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(c) = &config.cluster {
        if c.replication.quorum_auto_join_enable {
            out.push(
                "controller.quorum.auto.join.enable=true is not honoured: a re-formatted \
                 controller joins the metadata quorum only by `sluice metadata-quorum \
                 add-controller`"
                    .into(),
            );
        }
    }
    let single_node = config
        .cluster
        .is_none()
        .then_some(KEYS_ONLY_A_CLUSTER_HONOURS);
    let keys: Vec<&str> = KEYS_NOT_YET_HONOURED
        .iter()
        .chain(single_node.into_iter().flatten())
        .copied()
        .filter(|k| config.keys_set.contains(*k))
        .collect();
    if !keys.is_empty() {
        out.push(format!(
            "config keys accepted but not honoured yet (replication is being built): {}",
            keys.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::parse_properties;
    use super::*;

    /// Issue 9's node 1 (combined roles), the base of most cases.
    macro_rules! node1 {
        ($($extra:literal),*) => {
            concat!(
                "process.roles=broker,controller\nnode.id=1\n",
                "controller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293\n",
                "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093\n",
                "controller.listener.names=CONTROLLER\n",
                $($extra, "\n"),*
            )
        };
    }

    /// A broker-only node 4 of the same cluster.
    macro_rules! broker4 {
        ($($extra:literal),*) => {
            concat!(
                "process.roles=broker\nnode.id=4\n",
                "controller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293\n",
                "listeners=PLAINTEXT://127.0.0.1:9392\ncontroller.listener.names=CONTROLLER\n",
                $($extra, "\n"),*
            )
        };
    }

    /// A controller-only node 2.
    macro_rules! controller2 {
        ($($extra:literal),*) => {
            concat!(
                "process.roles=controller\nnode.id=2\n",
                "controller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293\n",
                "listeners=CONTROLLER://127.0.0.1:9193\ncontroller.listener.names=CONTROLLER\n",
                $($extra, "\n"),*
            )
        };
    }

    fn parse(text: &str) -> Result<(Config, Vec<String>), ConfigError> {
        Config::from_pairs(&parse_properties(text)?)
    }

    /// `expect` is "" for a config that starts, else a piece of the refusal's message.
    fn check(text: &str, expect: &str) {
        match (parse(text), expect) {
            (Ok(_), "") => {}
            (Ok(_), _) => panic!("accepted, expected a refusal with {expect:?}:\n{text}"),
            (Err(e), "") => panic!("refused: {e}\n{text}"),
            (Err(e), _) => assert!(e.0.contains(expect), "{e}\nexpected {expect:?}\n{text}"),
        }
    }

    #[test]
    #[rustfmt::skip]
    fn accepted_kraft_configs() {
        check(node1!(), "");
        check(node1!("advertised.listeners=PLAINTEXT://127.0.0.1:9092"), "");
        check(node1!("listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL"), "");
        check(node1!("listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://0.0.0.0:9093"), "");
        check(node1!("default.replication.factor=3", "min.insync.replicas=2"), "");
        check(node1!("process.roles=controller,broker"), "");
        check(broker4!(), "");
        check(controller2!(), "");
    }

    #[test]
    #[rustfmt::skip]
    fn roles_voters_and_controller_listener_refused_as_kafka_does() {
        check(node1!("process.roles=brokers"), "invalid value \"brokers\" for config key process.roles");
        check(node1!("process.roles="), "config key process.roles");
        check(node1!("process.roles=broker,broker"), "duplicate role names found in process.roles=broker,broker");
        check(&node1!().replace("node.id=1\n", ""), "missing required configuration node.id");
        check(node1!("controller.quorum.voters="), "controller.quorum.voters must contain a parseable set of voters");
        check(node1!("controller.quorum.voters=1@127.0.0.1"), "voter \"1@127.0.0.1\" in controller.quorum.voters");
        check(node1!("controller.quorum.voters=x@127.0.0.1:9093"), "voter \"x@127.0.0.1:9093\"");
        check(node1!("controller.quorum.voters=1@127.0.0.1:0"), "voter \"1@127.0.0.1:0\"");
        check(node1!("controller.quorum.voters=1@0.0.0.0:9093"), "wildcard address");
        check(node1!("controller.quorum.voters=1@127.0.0.1:9093,1@127.0.0.1:9193"), "duplicate voter id 1");
        check(node1!("controller.quorum.bootstrap.servers=127.0.0.1:9093"), "use controller.quorum.voters");
        check(node1!("node.id=5"), "the node id 5 must be included in the set of voters controller.quorum.voters={1,2,3}");
        check(node1!("listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9094"), "its controller listener CONTROLLER://127.0.0.1:9094");
        check(node1!("listeners=PLAINTEXT://127.0.0.1:9092"), "controller.listener.names=CONTROLLER must name a listener appearing in the 'listeners'");
        check(node1!("controller.listener.names="), "controller.listener.names must name the controller listener");
        check(node1!("controller.listener.names=CONTROLLER,C2"), "only one controller listener");
        check(broker4!("node.id=1"), "just the 'broker' role, the node id 1 must not be included in the set of voters");
        check(broker4!("listeners=PLAINTEXT://127.0.0.1:9392,CONTROLLER://127.0.0.1:9393"), "controller.listener.names must not contain a value appearing in the 'listeners'");
        check(controller2!("advertised.listeners=CONTROLLER://127.0.0.1:9193"), "advertised.listeners config must be empty when process.roles=controller");
        check(controller2!("listeners=CONTROLLER://127.0.0.1:9193,PLAINTEXT://127.0.0.1:9192"), "must only contain KRaft controller listeners");
    }

    #[test]
    #[rustfmt::skip]
    fn broker_listeners_and_replication_keys_refused_as_kafka_does() {
        check(node1!("listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:9093"), "listener PLAINTEXT://127.0.0.1:0 has port 0");
        check(node1!("advertised.listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"), "must not contain KRaft controller listeners");
        check(node1!("inter.broker.listener.name=CONTROLLER"), "inter.broker.listener.name=CONTROLLER names the controller listener");
        check(node1!("inter.broker.listener.name=INTERNAL"), "inter.broker.listener.name=INTERNAL must be a listener name defined in advertised.listeners");
        check(node1!("listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093,SSL://127.0.0.1:9094"), "listener SSL uses security protocol SSL");
        check(node1!("listener.security.protocol.map=CONTROLLER:SSL,PLAINTEXT:PLAINTEXT"), "listener.security.protocol.map: listener CONTROLLER uses security protocol SSL");
        check(node1!("listener.security.protocol.map=PLAINTEXT:PLAINTEXT"), "no security protocol defined for listener CONTROLLER");
        check(node1!("listener.security.protocol.map=CONTROLLER:TLS"), "config key listener.security.protocol.map");
        check(node1!("broker.session.timeout.ms=1000"), "broker.heartbeat.interval.ms=2000 must be less than broker.session.timeout.ms=1000");
        check(node1!("replica.fetch.wait.max.ms=40000"), "replica.fetch.wait.max.ms=40000 should always be less than or equal to replica.lag.time.max.ms=30000");
        check(node1!("replica.lag.time.max.ms=0"), "config key replica.lag.time.max.ms");
        check(node1!("min.insync.replicas=0"), "config key min.insync.replicas");
        check(node1!("unclean.leader.election.enable=maybe"), "config key unclean.leader.election.enable");
        check(node1!("sluice.gossip.listener=nowhere"), "config key sluice.gossip.listener");
        check(node1!("replica.selector.class=com.example.MySelector"), "invalid value \"com.example.MySelector\" for config key replica.selector.class: expected org.apache.kafka.common.replica.RackAwareReplicaSelector or nothing");
    }

    #[test]
    fn replica_selector_class_is_kafkas_rack_aware_one_or_unset() {
        let selector = |extra: &str| {
            let text = format!("{}{extra}", node1!());
            parse(&text)
                .unwrap()
                .0
                .cluster
                .unwrap()
                .replication
                .replica_selector
        };
        assert_eq!(selector(""), ReplicaSelector::LeaderOnly);
        let rack_aware = format!("replica.selector.class={RACK_AWARE_REPLICA_SELECTOR}\n");
        assert_eq!(selector(&rack_aware), ReplicaSelector::RackAware);
    }

    #[test]
    #[rustfmt::skip]
    fn single_node_keys() {
        check("", "");
        check("listeners=EXTERNAL://127.0.0.1:9092\nlistener.security.protocol.map=EXTERNAL:PLAINTEXT", "");
        check("listeners=EXTERNAL://127.0.0.1:9092", "no security protocol defined for listener EXTERNAL");
        check("listeners=SSL://127.0.0.1:9092", "listener SSL uses security protocol SSL");
        check("listeners=PLAINTEXT://127.0.0.1:9092,PLAINTEXT://127.0.0.1:9093", "each listener name once");
        check("listeners=PLAINTEXT://127.0.0.1:9092,OTHER://127.0.0.1:9092", "each listener on its own port");
        check("advertised.listeners=PLAINTEXT://0.0.0.0:9092", "nonroutable meta-address 0.0.0.0");
        check("default.replication.factor=3", "default.replication.factor=3 needs a cluster");
        check("controller.quorum.voters=1@127.0.0.1:9093", "controller.quorum.voters is set but process.roles is not");
        check("controller.listener.names=CONTROLLER", "controller.listener.names is set but process.roles is not");
        check("replica.lag.time.max.ms=10000\nbroker.rack=r1", "");
        check("inter.broker.listener.name=PLAINTEXT", "");
        check("inter.broker.listener.name=INTERNAL", "inter.broker.listener.name=INTERNAL must be a listener name defined");
    }

    #[test]
    fn issue_9_example_gives_the_cluster_config() {
        let text = concat!(
            "process.roles=broker,controller\nnode.id=1\n",
            "controller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293\n",
            "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093\n",
            "advertised.listeners=PLAINTEXT://127.0.0.1:9092\n",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n",
            "controller.listener.names=CONTROLLER\ninter.broker.listener.name=PLAINTEXT\n",
            "log.dirs=/var/lib/sluice/1\nbroker.rack=r1\nbroker.session.timeout.ms=3000\n",
        );
        let (config, _) = parse(text).unwrap();
        let c = config.cluster.clone().expect("cluster mode");
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(c.roles, ProcessRoles::BrokerController);
        assert_eq!(c.node_id, 1);
        assert_eq!(
            c.voters,
            [
                (1, addr("127.0.0.1:9093")),
                (2, addr("127.0.0.1:9193")),
                (3, addr("127.0.0.1:9293"))
            ]
        );
        assert_eq!(c.own_voter(), Some(addr("127.0.0.1:9093")));
        assert_eq!(c.controller_addr, Some(addr("127.0.0.1:9093")));
        assert_eq!(c.inter_broker_addr, Some(addr("127.0.0.1:9092")));
        let adv = c.inter_broker_advertised.as_ref().unwrap();
        assert_eq!((adv.host.as_str(), adv.port), ("127.0.0.1", 9092));
        assert_eq!(c.gossip_addr, addr("127.0.0.1:9093"));
        assert_eq!(c.rack.as_deref(), Some("r1"));
        assert_eq!(c.metadata_log_dir, PathBuf::from("/var/lib/sluice/1"));
        let r = &c.replication;
        assert_eq!(
            (r.session_timeout_ms, r.heartbeat_interval_ms),
            (3000, 2000)
        );
        assert_eq!(r.replica_lag_time_ms_max, 30_000);
        assert!(!r.unclean_leader_election_enable && r.controlled_shutdown_enable);
        // The broker binds only the client listener; Metadata never names the controller's.
        let names: Vec<_> = config
            .client_listeners()
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert_eq!(names, ["PLAINTEXT"]);
        let bound = [(config.client_listeners()[0].clone(), 9092)];
        assert!(config
            .advertised(&bound)
            .iter()
            .all(|l| l.name == "PLAINTEXT"));
    }

    #[test]
    fn gossip_defaults_to_controller_else_inter_broker_listener() {
        let gossip = |text: &str| {
            parse(text)
                .unwrap()
                .0
                .cluster
                .unwrap()
                .gossip_addr
                .to_string()
        };
        assert_eq!(gossip(node1!()), "127.0.0.1:9093");
        assert_eq!(gossip(broker4!()), "127.0.0.1:9392");
        assert_eq!(gossip(controller2!()), "127.0.0.1:9193");
        assert_eq!(
            gossip(node1!("sluice.gossip.listener=127.0.0.1:7946")),
            "127.0.0.1:7946"
        );
        let (config, _) = parse(controller2!()).unwrap();
        assert!(config.client_listeners().is_empty());
        assert_eq!(config.cluster.unwrap().inter_broker_addr, None);
    }

    #[test]
    fn keys_not_yet_honoured_warn_by_name() {
        let warnings = |text: &str| parse(text).unwrap().1.join("\n");
        let w = warnings(node1!(
            "replica.lag.time.max.ms=10000",
            "auto.leader.rebalance.enable=true",
            "leader.imbalance.per.broker.percentage=5"
        ));
        assert!(!w.contains("reassignment"), "served by a cluster: {w}");
        assert!(!w.contains("controller.quorum.voters"), "{w}");
        for honoured in [
            "replica.lag.time.max.ms",
            "auto.leader.rebalance.enable",
            "leader.imbalance",
        ] {
            assert!(!w.contains(honoured), "honoured by a cluster: {w}");
        }
        assert!(
            !w.contains("DescribeQuorum") && !w.contains("rebalance"),
            "{w}"
        );
        let w = warnings("auto.leader.rebalance.enable=true");
        assert!(
            w.contains("auto.leader.rebalance.enable"),
            "a single node: {w}"
        );
        let w = warnings(node1!("controller.quorum.auto.join.enable=true"));
        assert!(
            w.contains("controller.quorum.auto.join.enable=true is not honoured"),
            "{w}"
        );
        let w = warnings(node1!("controller.quorum.auto.join.enable=false"));
        assert!(!w.contains("auto.join"), "Kafka's default: {w}");
        let w = warnings("min.insync.replicas=2");
        assert!(
            w.contains("min.insync.replicas") && !w.contains("process.roles"),
            "{w}"
        );
        assert_eq!(warnings(""), "");
    }
}
