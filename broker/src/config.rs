//! `server.properties`: Kafka's file format and key names, plus `--override key=value`.
//!
//! Unknown keys get one warning each; a bad value refuses startup with a message naming the
//! key, the value and what is expected. The KRaft keys (`process.roles`, voters, named
//! listeners) are in [`cluster`].

pub mod cluster;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use sluice_net::zero_copy::TransferMethod;

pub use cluster::{ClusterConfig, ClusterKeys, ProcessRoles, ReplicationConfig};

/// Kafka's `socket.request.max.bytes` default (100 MiB).
pub const SOCKET_REQUEST_MAX_BYTES_DEFAULT: u64 = 104_857_600;
/// Our `queued.max.request.bytes` default (Kafka's is -1, no bound): 512 MiB, five times
/// `socket.request.max.bytes`'s default, so a full-size request always fits beside others,
/// while a flood of large produces pauses reading at a fixed memory cost instead of growing
/// until the OOM killer stops the broker. Raised to `socket.request.max.bytes` when that is
/// set higher (Kafka requires the pool to hold one request of that size).
pub const QUEUED_MAX_REQUEST_BYTES_DEFAULT: u64 = 512 * 1024 * 1024;
/// Kafka's `log.segment.bytes` default (1 GiB).
pub const LOG_SEGMENT_BYTES_DEFAULT: u64 = 1 << 30;
/// Kafka's `message.max.bytes` default.
pub const MESSAGE_MAX_BYTES_DEFAULT: u64 = 1_048_588;
/// Kafka's minimum segment size (`log.segment.bytes` >= 14 bytes is allowed by Kafka; we ask
/// for room for at least one batch header).
pub const LOG_SEGMENT_BYTES_MIN: u64 = 1024;
/// Segments address positions with i32 like Kafka's `.index` entries.
pub const LOG_SEGMENT_BYTES_MAX: u64 = i32::MAX as u64;
/// Kafka's `log.flush.offset.checkpoint.interval.ms` default (1 minute).
pub const LOG_FLUSH_OFFSET_CHECKPOINT_INTERVAL_MS_DEFAULT: u64 = 60_000;
/// Kafka's `log.retention.hours` default (7 days), in ms.
pub const LOG_RETENTION_MS_DEFAULT: i64 = 168 * 3_600_000;
/// Kafka's `log.roll.hours` default (7 days), in ms.
pub const LOG_ROLL_MS_DEFAULT: i64 = 168 * 3_600_000;
/// Kafka's `log.initial.task.delay.ms` default: the first retention check runs 30 s after start.
pub const LOG_INITIAL_TASK_DELAY_MS_DEFAULT: u64 = 30_000;
/// Kafka's `log.retention.check.interval.ms` default (5 minutes).
pub const LOG_RETENTION_CHECK_INTERVAL_MS_DEFAULT: u64 = 300_000;
/// Shards are pinned threads; more than this is surely a typo.
pub const NUM_SHARDS_MAX: u64 = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl Listener {
    pub fn socket_addr(&self) -> Result<SocketAddr, ConfigError> {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        (host, self.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| {
                ConfigError::new(
                    "listeners",
                    &self.host,
                    "a resolvable host name or IP address",
                )
            })
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.name, self.host, self.port)
    }
}

/// Everything `sluiced` reads from its configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listeners: Vec<Listener>,
    /// `metrics.listener` (ours): host:port of the Prometheus endpoint; unset = off.
    pub metrics_listener: Option<SocketAddr>,
    pub advertised_listeners: Option<Vec<Listener>>,
    pub node_id: i32,
    pub log_dirs: Vec<PathBuf>,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    pub log_segment_bytes: u64,
    pub message_max_bytes: u32,
    pub socket_request_max_bytes: u32,
    /// `queued.max.request.bytes`: memory all connections' requests being read may hold;
    /// `None` = -1, Kafka's "no bound"; unset = our default (see the constant).
    pub queued_max_request_bytes: Option<Option<u64>>,
    /// `None` = Kafka's default (Long.MAX_VALUE): never fsync because of a message count.
    pub log_flush_interval_messages: Option<u64>,
    pub log_flush_interval_ms: Option<u64>,
    /// `leader.replication.throttled.rate` / `follower.replication.throttled.rate`: bytes/s
    /// of throttled replication (`throttle`); Long.MAX_VALUE = none.
    pub leader_replication_throttled_rate: u64,
    pub follower_replication_throttled_rate: u64,
    pub num_shards: Option<usize>,
    /// `fetch.transfer.method` (ours): how record ranges go from file to socket.
    pub fetch_transfer_method: TransferMethod,
    /// How often each log dir's `recovery-point-offset-checkpoint` is written.
    pub log_flush_offset_checkpoint_interval_ms: u64,
    /// Partitions of `__consumer_offsets` when it is created.
    pub offsets_topic_num_partitions: i32,
    /// Accepted and capped at the brokers available (1 until replication lands).
    pub offsets_topic_replication_factor: i16,
    /// How long a group that was empty waits for more members before its first rebalance.
    pub group_initial_rebalance_delay_ms: u64,
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    /// `offsets.retention.minutes`: committed offsets expire after this (Kafka's rules).
    pub offsets_retention_minutes: i64,
    /// `offsets.retention.check.interval.ms`: how often expired offsets are removed.
    pub offsets_retention_check_interval_ms: u64,
    /// `log.retention.ms` / `.minutes` / `.hours` (ms wins, then minutes); -1 = forever.
    pub log_retention_ms: Option<i64>,
    pub log_retention_minutes: Option<i64>,
    pub log_retention_hours: i64,
    /// `log.retention.bytes`; -1 = no size limit.
    pub log_retention_bytes: i64,
    /// `log.roll.ms` / `log.roll.hours` (ms wins): default `segment.ms`.
    pub log_roll_ms: Option<i64>,
    pub log_roll_hours: i64,
    /// How often each shard runs retention over its logs.
    pub log_retention_check_interval_ms: u64,
    /// `log.initial.task.delay.ms`: how long after start the first retention check runs.
    pub log_initial_task_delay_ms: u64,
    /// `compression.type`, `compression.*.level`, `log.message.timestamp.*`: the defaults
    /// of the record topic keys.
    pub records: crate::topic_config::RecordDefaults,
    /// Keys set in the file or by `--override` (DescribeConfigs reports them as
    /// STATIC_BROKER_CONFIG, the others as DEFAULT_CONFIG).
    pub keys_set: std::collections::BTreeSet<String>,
    /// The KRaft and replication keys as read (validated into `cluster`).
    pub cluster_keys: ClusterKeys,
    /// `Some` when `process.roles` is set: this node is part of a cluster.
    pub cluster: Option<ClusterConfig>,
    /// The properties file it was read from, if any (named in startup errors).
    pub config_file: Option<PathBuf>,
    /// The file's and `--override`'s pairs, in order: dynamic configs are applied over them.
    pub static_pairs: Vec<(String, String)>,
    /// Dynamic broker configs in effect (`dynamic_config`; none until AlterConfigs).
    pub dynamic: crate::dynamic_config::DynamicConfigs,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listeners: vec![Listener {
                name: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 9092,
            }],
            metrics_listener: None,
            advertised_listeners: None,
            node_id: 1,
            log_dirs: vec![PathBuf::from("./sluice-data")],
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: true,
            log_segment_bytes: LOG_SEGMENT_BYTES_DEFAULT,
            message_max_bytes: MESSAGE_MAX_BYTES_DEFAULT as u32,
            socket_request_max_bytes: SOCKET_REQUEST_MAX_BYTES_DEFAULT as u32,
            queued_max_request_bytes: None,
            log_flush_interval_messages: None,
            log_flush_interval_ms: None,
            leader_replication_throttled_rate: crate::throttle::RATE_UNLIMITED,
            follower_replication_throttled_rate: crate::throttle::RATE_UNLIMITED,
            num_shards: None,
            fetch_transfer_method: TransferMethod::default(),
            log_flush_offset_checkpoint_interval_ms:
                LOG_FLUSH_OFFSET_CHECKPOINT_INTERVAL_MS_DEFAULT,
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: 3,
            group_initial_rebalance_delay_ms: 3000,
            group_min_session_timeout_ms: 6000,
            group_max_session_timeout_ms: 1_800_000,
            offsets_retention_minutes: 10_080,
            offsets_retention_check_interval_ms: 600_000,
            log_retention_ms: None,
            log_retention_minutes: None,
            log_retention_hours: LOG_RETENTION_MS_DEFAULT / 3_600_000,
            log_retention_bytes: -1,
            log_roll_ms: None,
            log_roll_hours: LOG_ROLL_MS_DEFAULT / 3_600_000,
            log_retention_check_interval_ms: LOG_RETENTION_CHECK_INTERVAL_MS_DEFAULT,
            log_initial_task_delay_ms: LOG_INITIAL_TASK_DELAY_MS_DEFAULT,
            records: Default::default(),
            keys_set: std::collections::BTreeSet::new(),
            cluster_keys: ClusterKeys::default(),
            cluster: None,
            config_file: None,
            static_pairs: Vec::new(),
            dynamic: Default::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl ConfigError {
    pub(crate) fn new(key: &str, value: &str, expected: &str) -> Self {
        ConfigError(format!(
            "invalid value {value:?} for config key {key}: expected {expected}"
        ))
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Parses Java-properties text (`sluice_engine::properties`: the format of `meta.properties`
/// too).
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    sluice_engine::properties::parse_properties(text).map_err(|e| ConfigError(e.to_string()))
}

impl Config {
    /// Applies `pairs` in order over the defaults; returns the config and its warnings: one
    /// per unknown key, and which keys are accepted but not honoured yet.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<(Config, Vec<String>), ConfigError> {
        let mut config = Config::default();
        let mut warnings = Vec::new();
        let mut seen_unknown = BTreeMap::new();
        for (key, value) in pairs {
            let known = config.apply(key, value)?
                || config.apply_log(key, value)?
                || config.apply_group(key, value)?
                || config.cluster_keys.apply(key, value)?
                || config.records.apply(key, value).map_err(ConfigError)?;
            if known {
                config.keys_set.insert(key.clone());
            }
            if !known && seen_unknown.insert(key.clone(), ()).is_none() {
                warnings.push(format!(
                    "unknown config key {key} (value {value:?}) ignored"
                ));
            }
        }
        config.check()?;
        config.cluster = cluster::build(&config)?;
        cluster::check_listeners(&config)?;
        if config.default_replication_factor != 1 && config.cluster.is_none() {
            return Err(ConfigError(format!(
                "default.replication.factor={} needs a cluster: a single node (no \
                 process.roles) has one replica of each partition; set it to 1",
                config.default_replication_factor
            )));
        }
        warnings.extend(cluster::not_honoured_warnings(&config));
        config.static_pairs = pairs.to_vec();
        Ok((config, warnings))
    }

    /// Returns false for an unknown key.
    fn apply(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        match key {
            "listeners" => self.listeners = parse_listeners(key, value)?,
            "advertised.listeners" => {
                self.advertised_listeners = Some(parse_listeners(key, value)?)
            }
            "node.id" | "broker.id" => {
                self.node_id = parse_int(key, value, 0, i32::MAX as i64)? as i32
            }
            "log.dirs" | "log.dir" => self.log_dirs = parse_dirs(key, value)?,
            "num.partitions" => self.num_partitions = parse_int(key, value, 1, 1_000_000)? as i32,
            "default.replication.factor" => {
                self.default_replication_factor = parse_int(key, value, 1, i16::MAX as i64)? as i16
            }
            "auto.create.topics.enable" => self.auto_create_topics_enable = parse_bool(key, value)?,
            "log.segment.bytes" => {
                self.log_segment_bytes = parse_int(
                    key,
                    value,
                    LOG_SEGMENT_BYTES_MIN as i64,
                    LOG_SEGMENT_BYTES_MAX as i64,
                )? as u64
            }
            "message.max.bytes" => {
                self.message_max_bytes = parse_int(key, value, 0, i32::MAX as i64)? as u32
            }
            "socket.request.max.bytes" => {
                self.socket_request_max_bytes = parse_int(key, value, 1, i32::MAX as i64)? as u32
            }
            "queued.max.request.bytes" => {
                let n = parse_int(key, value, -1, i64::MAX)?;
                self.queued_max_request_bytes = Some((n > 0).then_some(n as u64));
            }
            "log.flush.interval.messages" => {
                let n = parse_int(key, value, 1, i64::MAX)?;
                self.log_flush_interval_messages = (n != i64::MAX).then_some(n as u64);
            }
            "log.flush.interval.ms" => {
                let n = parse_int(key, value, 0, i64::MAX)?;
                self.log_flush_interval_ms = (n != i64::MAX).then_some(n as u64);
            }
            "leader.replication.throttled.rate" => {
                self.leader_replication_throttled_rate = parse_int(key, value, 0, i64::MAX)? as u64
            }
            "follower.replication.throttled.rate" => {
                self.follower_replication_throttled_rate =
                    parse_int(key, value, 0, i64::MAX)? as u64
            }
            "log.flush.offset.checkpoint.interval.ms" => {
                self.log_flush_offset_checkpoint_interval_ms =
                    parse_int(key, value, 1, i32::MAX as i64)? as u64
            }
            "metrics.listener" => {
                let expected = "host:port, e.g. 127.0.0.1:9644 (port 0 picks a free port)";
                let addr = value.to_socket_addrs().ok().and_then(|mut a| a.next());
                self.metrics_listener =
                    Some(addr.ok_or_else(|| ConfigError::new(key, value, expected))?);
            }
            "num.shards" => {
                self.num_shards = Some(parse_int(key, value, 1, NUM_SHARDS_MAX as i64)? as usize)
            }
            "fetch.transfer.method" => {
                self.fetch_transfer_method = TransferMethod::parse(value)
                    .ok_or_else(|| ConfigError::new(key, value, "splice or sendfile"))?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The group coordinator's keys; false for an unknown key.
    fn apply_group(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        match key {
            "offsets.topic.num.partitions" => {
                self.offsets_topic_num_partitions = parse_int(key, value, 1, 100_000)? as i32
            }
            "offsets.topic.replication.factor" => {
                self.offsets_topic_replication_factor =
                    parse_int(key, value, 1, i16::MAX as i64)? as i16
            }
            "group.initial.rebalance.delay.ms" => {
                self.group_initial_rebalance_delay_ms =
                    parse_int(key, value, 0, i32::MAX as i64)? as u64
            }
            "group.min.session.timeout.ms" => {
                self.group_min_session_timeout_ms =
                    parse_int(key, value, 0, i32::MAX as i64)? as i32
            }
            "group.max.session.timeout.ms" => {
                self.group_max_session_timeout_ms =
                    parse_int(key, value, 0, i32::MAX as i64)? as i32
            }
            "offsets.retention.minutes" => {
                self.offsets_retention_minutes = parse_int(key, value, 1, i32::MAX as i64)?
            }
            "offsets.retention.check.interval.ms" => {
                self.offsets_retention_check_interval_ms =
                    parse_int(key, value, 1, i32::MAX as i64)? as u64
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The retention and roll keys; returns false for an unknown key.
    fn apply_log(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        let ms_max = i64::MAX / 3_600_000;
        match key {
            "log.retention.ms" => {
                self.log_retention_ms = Some(parse_int(key, value, -1, i64::MAX)?)
            }
            "log.retention.minutes" => {
                self.log_retention_minutes = Some(parse_int(key, value, -1, ms_max)?)
            }
            "log.retention.hours" => self.log_retention_hours = parse_int(key, value, -1, ms_max)?,
            "log.retention.bytes" => {
                self.log_retention_bytes = parse_int(key, value, -1, i64::MAX)?
            }
            "log.roll.ms" => self.log_roll_ms = Some(parse_int(key, value, 1, i64::MAX)?),
            "log.roll.hours" => self.log_roll_hours = parse_int(key, value, 1, ms_max)?,
            "log.retention.check.interval.ms" => {
                self.log_retention_check_interval_ms = parse_int(key, value, 1, i64::MAX)? as u64
            }
            "log.initial.task.delay.ms" => {
                self.log_initial_task_delay_ms = parse_int(key, value, 0, i64::MAX)? as u64
            }
            "log.cleanup.policy" if value.trim() == "delete" => {}
            "log.cleanup.policy" => {
                return Err(ConfigError::new(
                    key,
                    value,
                    "delete (log compaction is not implemented yet)",
                ))
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The effective `log.retention.ms` (Kafka's precedence: ms, minutes, hours); `None` =
    /// keep forever (a negative value).
    pub fn retention_ms(&self) -> Option<i64> {
        let ms = self
            .log_retention_ms
            .or(self.log_retention_minutes.map(|m| m.saturating_mul(60_000)))
            .unwrap_or(self.log_retention_hours.saturating_mul(3_600_000));
        (ms >= 0).then_some(ms)
    }

    /// The effective `log.roll.ms` (ms wins over hours).
    pub fn roll_ms(&self) -> i64 {
        self.log_roll_ms
            .unwrap_or(self.log_roll_hours.saturating_mul(3_600_000))
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.listeners.is_empty() {
            return Err(ConfigError::new(
                "listeners",
                "",
                "at least one PLAINTEXT://host:port",
            ));
        }
        if let Some(Some(n)) = self.queued_max_request_bytes {
            if n < u64::from(self.socket_request_max_bytes) {
                return Err(ConfigError::new(
                    "queued.max.request.bytes",
                    &n.to_string(),
                    &format!(
                        "-1 (no bound) or at least socket.request.max.bytes ({})",
                        self.socket_request_max_bytes
                    ),
                ));
            }
        }
        if let Some(adv) = &self.advertised_listeners {
            for l in adv {
                if !self.listeners.iter().any(|x| x.name == l.name) {
                    return Err(ConfigError::new(
                        "advertised.listeners",
                        &l.to_string(),
                        "listener names that also appear in `listeners`",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The request memory pool's size (`queued.max.request.bytes`); `None`: no bound.
    pub fn request_pool_bytes(&self) -> Option<u64> {
        match self.queued_max_request_bytes {
            Some(set) => set,
            None => {
                Some(QUEUED_MAX_REQUEST_BYTES_DEFAULT.max(u64::from(self.socket_request_max_bytes)))
            }
        }
    }

    /// The listeners the broker's shards bind for clients: every listener but the
    /// controller's (the controller binds that one itself).
    pub fn client_listeners(&self) -> Vec<Listener> {
        self.listeners
            .iter()
            .filter(|l| !self.cluster_keys.is_controller_listener(&l.name))
            .cloned()
            .collect()
    }

    /// Kafka's effective advertised listeners: `advertised.listeners`, else the client
    /// listeners as configured (a port 0 is only known once bound: see [`Config::advertised`]).
    pub fn effective_advertised(&self) -> Vec<Listener> {
        match &self.advertised_listeners {
            Some(adv) => adv.clone(),
            None => self
                .client_listeners()
                .into_iter()
                .map(|l| Listener {
                    host: advertised_host(&l.host),
                    ..l
                })
                .collect(),
        }
    }

    /// Where clients should connect, given the client listeners as bound (with their real
    /// ports). Never a controller listener.
    pub fn advertised(&self, bound: &[(Listener, u16)]) -> Vec<Listener> {
        match &self.advertised_listeners {
            Some(adv) => adv.clone(),
            None => bound
                .iter()
                .map(|(l, port)| Listener {
                    name: l.name.clone(),
                    host: advertised_host(&l.host),
                    port: *port,
                })
                .collect(),
        }
    }
}

fn advertised_host(host: &str) -> String {
    if !host.is_empty() && host != "0.0.0.0" && host != "::" {
        return host.to_string();
    }
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_string())
}

pub(crate) fn parse_int(key: &str, value: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
    let expected = format!("an integer in [{min}, {max}]");
    let n: i64 = value
        .parse()
        .map_err(|_| ConfigError::new(key, value, &expected))?;
    if n < min || n > max {
        return Err(ConfigError::new(key, value, &expected));
    }
    Ok(n)
}

pub(crate) fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ConfigError::new(key, value, "true or false")),
    }
}

fn parse_dirs(key: &str, value: &str) -> Result<Vec<PathBuf>, ConfigError> {
    let dirs: Vec<PathBuf> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect();
    if dirs.is_empty() {
        return Err(ConfigError::new(
            key,
            value,
            "a comma-separated list of directories",
        ));
    }
    Ok(dirs)
}

/// `NAME://host:port[,NAME://host:port]` (names upper-cased, as Kafka normalises them);
/// each name's security protocol comes from `listener.security.protocol.map`.
fn parse_listeners(key: &str, value: &str) -> Result<Vec<Listener>, ConfigError> {
    let expected = "a comma-separated list of NAME://host:port, e.g. PLAINTEXT://127.0.0.1:9092 (host may be empty or 0.0.0.0; port 0 picks a free port)";
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, rest) = item
            .split_once("://")
            .ok_or_else(|| ConfigError::new(key, value, expected))?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| ConfigError::new(key, value, expected))?;
        let port: u16 = port
            .parse()
            .map_err(|_| ConfigError::new(key, value, expected))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let name = name.to_uppercase();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(ConfigError::new(key, value, expected));
        }
        if out.iter().any(|l: &Listener| l.name == name) {
            return Err(ConfigError::new(key, value, "each listener name once"));
        }
        if key == "listeners" && out.iter().any(|l: &Listener| l.port == port && port != 0) {
            return Err(ConfigError::new(
                key,
                value,
                "each listener on its own port",
            ));
        }
        out.push(Listener { name, host, port });
    }
    if out.is_empty() {
        return Err(ConfigError::new(key, value, expected));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<(Config, Vec<String>), ConfigError> {
        Config::from_pairs(&parse_properties(text)?)
    }

    #[test]
    fn defaults_are_single_node_loopback() {
        let (c, w) = check("").unwrap();
        assert!(w.is_empty());
        assert_eq!(c.listeners[0].to_string(), "PLAINTEXT://127.0.0.1:9092");
        assert_eq!(c.log_dirs, vec![PathBuf::from("./sluice-data")]);
    }

    #[test]
    fn kafka_keys_and_aliases() {
        let (c, _) = check(
            "# comment\nbroker.id=7\nlog.dir = /tmp/x\nlisteners=PLAINTEXT://:0\nnum.partitions: 3\n\
             log.flush.interval.messages=1\nauto.create.topics.enable=false\nnum.shards=2\n",
        )
        .unwrap();
        assert_eq!(c.node_id, 7);
        assert_eq!(c.log_dirs, vec![PathBuf::from("/tmp/x")]);
        assert_eq!(c.listeners[0].port, 0);
        assert_eq!(c.num_partitions, 3);
        assert_eq!(c.log_flush_interval_messages, Some(1));
        assert!(!c.auto_create_topics_enable);
        assert_eq!(c.num_shards, Some(2));
    }

    #[test]
    fn queued_max_request_bytes() {
        let pool = |text: &str| check(text).unwrap().0.request_pool_bytes();
        assert_eq!(pool(""), Some(QUEUED_MAX_REQUEST_BYTES_DEFAULT));
        assert_eq!(
            pool("queued.max.request.bytes=-1"),
            None,
            "Kafka's no bound"
        );
        assert_eq!(
            pool("socket.request.max.bytes=1000\nqueued.max.request.bytes=1000"),
            Some(1000)
        );
        let big = "socket.request.max.bytes=1073741824";
        assert_eq!(pool(big), Some(1 << 30), "the default holds one request");
    }

    #[test]
    fn unknown_keys_warn_once() {
        let (_, w) = check("foo.bar=1\nfoo.bar=2\nzap=3\n").unwrap();
        assert_eq!(w.len(), 2);
        assert!(w[0].contains("foo.bar"));
    }

    #[test]
    fn bad_values_name_key_and_value() {
        for (text, needle) in [
            ("num.partitions=zero", "num.partitions"),
            ("log.segment.bytes=10", "log.segment.bytes"),
            ("auto.create.topics.enable=yes", "auto.create.topics.enable"),
            ("listeners=SSL://:9093", "SSL"),
            ("listeners=localhost:9092", "listeners"),
            (
                "default.replication.factor=3",
                "default.replication.factor=3",
            ),
            ("num.shards=0", "num.shards"),
            ("socket.request.max.bytes=-1", "socket.request.max.bytes"),
            ("queued.max.request.bytes=1000", "queued.max.request.bytes"),
        ] {
            let err = check(text).unwrap_err().0;
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
