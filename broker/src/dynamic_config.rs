//! Dynamic broker configs (Kafka's `DynamicBrokerConfig`): the broker keys Kafka lets change
//! at run time and this broker honours, set by AlterConfigs / IncrementalAlterConfigs on the
//! broker resource — for this broker (`resource_name` = its node id) or as the cluster
//! default (`""`) — persisted in the first log dir and applied to every shard at once.
//!
//! Precedence is Kafka's: DYNAMIC_BROKER_CONFIG over DYNAMIC_DEFAULT_BROKER_CONFIG over
//! STATIC_BROKER_CONFIG (server.properties, `--override`) over DEFAULT_CONFIG. The levels are
//! merged key by key before synonyms are resolved, so a static `log.retention.ms` still wins
//! over a dynamic `log.retention.hours`, as in Kafka.
//!
//! Every honoured broker key is in [`BROKER_KEYS`] with Kafka's type; DescribeConfigs lists
//! them all. A key Kafka cannot change at run time answers INVALID_REQUEST "Cannot update
//! these configs dynamically" (Kafka's answer); `listeners` and `advertised.listeners`, which
//! Kafka reconfigures per broker, are refused here the same way, with the reason; an unknown
//! key answers INVALID_CONFIG (Kafka would store it unused).
//!
//! A key in [`BROKER_KEYS`] marked dynamic must be read through `Shard::current_config`,
//! which follows these changes; `Shard::config` is the config the shard started with.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use futures_util::future::join_all;
use kafka_protocol::error::ResponseError;

use crate::config::{parse_properties, Config, Listener};
use crate::controller::{
    ask, ConfigChange, ControllerCmd, OP_APPEND, OP_DELETE, OP_SET, OP_SUBTRACT,
};
use crate::msg::{call, ShardMsg};
use crate::shard::Shard;
use crate::topic_config::{
    TopicConfig, SOURCE_DEFAULT_CONFIG, SOURCE_STATIC_BROKER_CONFIG, TYPE_INT, TYPE_LIST,
    TYPE_LONG, TYPE_STRING,
};

/// File in the first log dir holding the dynamic broker configs.
pub const DYNAMIC_CONFIG_FILE: &str = "dynamic-broker.properties";

/// Kafka's `ConfigSource` ids of the two dynamic levels.
pub const SOURCE_DYNAMIC_BROKER_CONFIG: i8 = 2;
pub const SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;

/// Kafka's `ConfigType` ids not used by topic keys.
pub const TYPE_BOOLEAN: i8 = 1;
pub const TYPE_SHORT: i8 = 4;

/// Whether and how a broker key may change at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Kafka cannot change it at run time either.
    ReadOnly,
    /// Alterable (cluster-wide in Kafka: per broker or as the cluster default).
    Dynamic,
    /// Kafka reconfigures it per broker at run time; this broker cannot (needs a restart).
    RestartNeeded,
}

/// One honoured broker key: its name, Kafka's type, its mode and its value in a config
/// (`None` = Kafka's null).
pub struct BrokerKey {
    pub name: &'static str,
    pub config_type: i8,
    pub mode: Mode,
    pub value: fn(&Config) -> Option<String>,
    /// Keys that set the same value (aliases): the source is the best of them.
    pub aliases: &'static [&'static str],
}

fn listeners(l: &[Listener]) -> String {
    l.iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn dirs(c: &Config) -> Option<String> {
    let dirs: Vec<String> = c.log_dirs.iter().map(|d| d.display().to_string()).collect();
    Some(dirs.join(","))
}

/// Kafka's default `listener.security.protocol.map`.
const PROTOCOL_MAP_DEFAULT: &str =
    "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT";

/// Kafka's Long.MAX_VALUE for "never".
fn long_or_max(v: Option<u64>) -> Option<String> {
    Some(v.map_or(i64::MAX.to_string(), |v| v.to_string()))
}

macro_rules! key {
    ($name:literal, $type:expr, $mode:ident, $value:expr) => {
        key!($name, $type, $mode, $value, &[])
    };
    ($name:literal, $type:expr, $mode:ident, $value:expr, $aliases:expr) => {
        BrokerKey {
            name: $name,
            config_type: $type,
            mode: Mode::$mode,
            value: $value,
            aliases: $aliases,
        }
    };
}

/// Every broker key this broker honours, with Kafka's type (ours last: `metrics.listener`,
/// `num.shards`, `fetch.transfer.method`).
pub const BROKER_KEYS: &[BrokerKey] = &[
    key!(
        "node.id",
        TYPE_INT,
        ReadOnly,
        |c| Some(c.node_id.to_string()),
        &["broker.id"]
    ),
    key!(
        "broker.id",
        TYPE_INT,
        ReadOnly,
        |c| Some(c.node_id.to_string()),
        &["node.id"]
    ),
    key!("listeners", TYPE_STRING, RestartNeeded, |c| Some(
        listeners(&c.listeners)
    )),
    key!("advertised.listeners", TYPE_STRING, RestartNeeded, |c| {
        c.advertised_listeners.as_deref().map(listeners)
    }),
    key!(
        "listener.security.protocol.map",
        TYPE_STRING,
        RestartNeeded,
        |c| {
            let map = c.cluster_keys.listener_security_protocol_map.as_ref();
            Some(map.map_or(PROTOCOL_MAP_DEFAULT.to_string(), |m| {
                let pairs: Vec<String> = m.iter().map(|(l, p)| format!("{l}:{p}")).collect();
                pairs.join(",")
            }))
        }
    ),
    key!("log.dirs", TYPE_STRING, ReadOnly, dirs, &["log.dir"]),
    key!("log.dir", TYPE_STRING, ReadOnly, dirs, &["log.dirs"]),
    key!("num.partitions", TYPE_INT, ReadOnly, |c| Some(
        c.num_partitions.to_string()
    )),
    key!("default.replication.factor", TYPE_INT, ReadOnly, |c| {
        Some(c.default_replication_factor.to_string())
    }),
    key!("auto.create.topics.enable", TYPE_BOOLEAN, ReadOnly, |c| {
        Some(c.auto_create_topics_enable.to_string())
    }),
    key!("log.segment.bytes", TYPE_INT, Dynamic, |c| Some(
        c.log_segment_bytes.to_string()
    )),
    key!("message.max.bytes", TYPE_INT, Dynamic, |c| Some(
        c.message_max_bytes.to_string()
    )),
    key!("socket.request.max.bytes", TYPE_INT, ReadOnly, |c| {
        Some(c.socket_request_max_bytes.to_string())
    }),
    key!("queued.max.request.bytes", TYPE_LONG, ReadOnly, |c| {
        Some(
            c.request_pool_bytes()
                .map_or("-1".to_string(), |n| n.to_string()),
        )
    }),
    key!("log.flush.interval.messages", TYPE_LONG, Dynamic, |c| {
        long_or_max(c.log_flush_interval_messages)
    }),
    key!(
        "leader.replication.throttled.rate",
        TYPE_LONG,
        Dynamic,
        |c| { Some(c.leader_replication_throttled_rate.to_string()) }
    ),
    key!(
        "follower.replication.throttled.rate",
        TYPE_LONG,
        Dynamic,
        |c| { Some(c.follower_replication_throttled_rate.to_string()) }
    ),
    key!("log.flush.interval.ms", TYPE_LONG, Dynamic, |c| {
        c.log_flush_interval_ms.map(|v| v.to_string())
    }),
    key!(
        "log.flush.offset.checkpoint.interval.ms",
        TYPE_INT,
        ReadOnly,
        |c| { Some(c.log_flush_offset_checkpoint_interval_ms.to_string()) }
    ),
    key!("log.retention.ms", TYPE_LONG, Dynamic, |c| c
        .log_retention_ms
        .map(|v| v.to_string())),
    key!("log.retention.minutes", TYPE_INT, Dynamic, |c| {
        c.log_retention_minutes.map(|v| v.to_string())
    }),
    key!("log.retention.hours", TYPE_INT, Dynamic, |c| Some(
        c.log_retention_hours.to_string()
    )),
    key!("log.retention.bytes", TYPE_LONG, Dynamic, |c| Some(
        c.log_retention_bytes.to_string()
    )),
    key!("log.roll.ms", TYPE_LONG, Dynamic, |c| c
        .log_roll_ms
        .map(|v| v.to_string())),
    key!("log.roll.hours", TYPE_INT, Dynamic, |c| Some(
        c.log_roll_hours.to_string()
    )),
    key!("log.cleanup.policy", TYPE_LIST, Dynamic, |_| Some(
        "delete".to_string()
    )),
    key!(
        "log.retention.check.interval.ms",
        TYPE_LONG,
        ReadOnly,
        |c| { Some(c.log_retention_check_interval_ms.to_string()) }
    ),
    key!("log.initial.task.delay.ms", TYPE_LONG, ReadOnly, |c| {
        Some(c.log_initial_task_delay_ms.to_string())
    }),
    key!("offsets.topic.num.partitions", TYPE_INT, ReadOnly, |c| {
        Some(c.offsets_topic_num_partitions.to_string())
    }),
    key!(
        "offsets.topic.replication.factor",
        TYPE_SHORT,
        ReadOnly,
        |c| { Some(c.offsets_topic_replication_factor.to_string()) }
    ),
    key!("offsets.retention.minutes", TYPE_INT, ReadOnly, |c| {
        Some(c.offsets_retention_minutes.to_string())
    }),
    key!(
        "offsets.retention.check.interval.ms",
        TYPE_LONG,
        ReadOnly,
        |c| { Some(c.offsets_retention_check_interval_ms.to_string()) }
    ),
    key!(
        "group.initial.rebalance.delay.ms",
        TYPE_INT,
        ReadOnly,
        |c| { Some(c.group_initial_rebalance_delay_ms.to_string()) }
    ),
    key!("group.min.session.timeout.ms", TYPE_INT, ReadOnly, |c| {
        Some(c.group_min_session_timeout_ms.to_string())
    }),
    key!("group.max.session.timeout.ms", TYPE_INT, ReadOnly, |c| {
        Some(c.group_max_session_timeout_ms.to_string())
    }),
    key!("compression.type", TYPE_STRING, Dynamic, |c| Some(
        c.records.value("compression.type").to_string()
    )),
    key!("compression.gzip.level", TYPE_INT, Dynamic, |c| Some(
        c.records.value("compression.gzip.level").to_string()
    )),
    key!("compression.lz4.level", TYPE_INT, Dynamic, |c| Some(
        c.records.value("compression.lz4.level").to_string()
    )),
    key!("compression.zstd.level", TYPE_INT, Dynamic, |c| Some(
        c.records.value("compression.zstd.level").to_string()
    )),
    key!("log.message.timestamp.type", TYPE_STRING, Dynamic, |c| {
        Some(c.records.value("message.timestamp.type").to_string())
    }),
    key!(
        "log.message.timestamp.before.max.ms",
        TYPE_LONG,
        Dynamic,
        |c| Some(
            c.records
                .value("message.timestamp.before.max.ms")
                .to_string()
        )
    ),
    key!(
        "log.message.timestamp.after.max.ms",
        TYPE_LONG,
        Dynamic,
        |c| Some(
            c.records
                .value("message.timestamp.after.max.ms")
                .to_string()
        )
    ),
    key!("metrics.listener", TYPE_STRING, ReadOnly, |c| {
        c.metrics_listener.map(|a| a.to_string())
    }),
    key!("num.shards", TYPE_INT, ReadOnly, |c| c
        .num_shards
        .map(|n| n.to_string())),
    key!("fetch.transfer.method", TYPE_STRING, ReadOnly, |c| {
        Some(format!("{:?}", c.fetch_transfer_method).to_lowercase())
    }),
];

pub fn broker_key(name: &str) -> Option<&'static BrokerKey> {
    BROKER_KEYS.iter().find(|k| k.name == name)
}

/// The dynamic broker configs: Kafka's two entities (`<default>` and this broker's id).
///
/// On disk (`DYNAMIC_CONFIG_FILE` in the first log dir): Java-properties lines
/// `<default>.KEY=VALUE` (the cluster default) and `<node.id>.KEY=VALUE` (this broker), after
/// a `#` comment line; written to a `.tmp` file, fsynced, renamed, directory fsynced, so a
/// crash leaves the old or the new set. Absent = none. Read at startup before any shard runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DynamicConfigs {
    /// Set on the cluster default resource (`""`).
    pub default: BTreeMap<String, String>,
    /// Set on this broker's resource (its node id).
    pub broker: BTreeMap<String, String>,
}

const DEFAULT_ENTITY: &str = "<default>";

impl DynamicConfigs {
    fn read(dir: &Path, node_id: i32) -> io::Result<DynamicConfigs> {
        let path = dir.join(DYNAMIC_CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(DynamicConfigs::default()),
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        };
        let bad = |m: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {m}", path.display()),
            )
        };
        let mut out = DynamicConfigs::default();
        let broker = node_id.to_string();
        for (k, v) in parse_properties(&text).map_err(|e| bad(e.to_string()))? {
            match k.split_once('.') {
                Some((DEFAULT_ENTITY, key)) => out.default.insert(key.to_string(), v),
                Some((id, key)) if id == broker => out.broker.insert(key.to_string(), v),
                _ => {
                    return Err(bad(format!(
                        "{k}: expected {DEFAULT_ENTITY}.KEY or {broker}.KEY"
                    )))
                }
            };
        }
        Ok(out)
    }

    fn write(&self, dir: &Path, node_id: i32) -> io::Result<()> {
        let mut text =
            String::from("# dynamic broker configs (AlterConfigs), written by sluiced\n");
        for (k, v) in &self.default {
            text.push_str(&format!("{DEFAULT_ENTITY}.{k}={v}\n"));
        }
        for (k, v) in &self.broker {
            text.push_str(&format!("{node_id}.{k}={v}\n"));
        }
        crate::topic_config::write_durably(dir, DYNAMIC_CONFIG_FILE, &text)
    }
}

/// The effective config: `base`'s static pairs, then the cluster default, then this broker's.
pub fn effective(base: &Config, dynamic: &DynamicConfigs) -> Result<Config, String> {
    let mut pairs = base.static_pairs.clone();
    pairs.extend(dynamic.default.iter().map(|(k, v)| (k.clone(), v.clone())));
    pairs.extend(dynamic.broker.iter().map(|(k, v)| (k.clone(), v.clone())));
    let (mut c, _) = Config::from_pairs(&pairs).map_err(|e| e.to_string())?;
    // What `from_pairs` does not derive from the pairs.
    c.keys_set = base.keys_set.clone();
    c.static_pairs = base.static_pairs.clone();
    c.config_file = base.config_file.clone();
    c.dynamic = dynamic.clone();
    Ok(c)
}

/// Startup: applies the persisted dynamic configs (a bad entry refuses to start, naming it).
pub fn load(config: Config) -> Result<Config, String> {
    let dir = config.log_dirs[0].clone();
    let dynamic = DynamicConfigs::read(&dir, config.node_id).map_err(|e| e.to_string())?;
    if dynamic == DynamicConfigs::default() {
        return Ok(config);
    }
    let c = effective(&config, &dynamic)
        .map_err(|e| format!("{}: {e}", dir.join(DYNAMIC_CONFIG_FILE).display()))?;
    tracing::info!(
        "dynamic broker configs: default {:?}, broker {:?}",
        dynamic.default,
        dynamic.broker
    );
    Ok(c)
}

/// Kafka's source of `key` in `c`.
pub fn source(c: &Config, key: &str) -> i8 {
    if c.dynamic.broker.contains_key(key) {
        SOURCE_DYNAMIC_BROKER_CONFIG
    } else if c.dynamic.default.contains_key(key) {
        SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG
    } else if c.keys_set.contains(key) {
        SOURCE_STATIC_BROKER_CONFIG
    } else {
        SOURCE_DEFAULT_CONFIG
    }
}

/// The source of a value set by any of `synonyms`, in Kafka's order: the first synonym set
/// at any level decides (ms before minutes before hours).
pub fn source_of(c: &Config, synonyms: &[&str]) -> i8 {
    synonyms
        .iter()
        .map(|k| source(c, k))
        .find(|s| *s != SOURCE_DEFAULT_CONFIG)
        .unwrap_or(SOURCE_DEFAULT_CONFIG)
}

/// A refused change: (Kafka error code, message).
type Refusal = (i16, String);

fn invalid_request(message: String) -> Refusal {
    (ResponseError::InvalidRequest.code(), message)
}

/// AlterConfigs / IncrementalAlterConfigs of a broker resource, from any shard.
pub async fn alter(
    shard: &Rc<Shard>,
    resource_name: &str,
    change: ConfigChange,
    validate_only: bool,
) -> Result<(), Refusal> {
    let per_broker = !resource_name.is_empty();
    if per_broker {
        let node = shard.broker.node_id;
        let id: i32 = resource_name.parse().map_err(|_| {
            invalid_request(format!(
                "Node id must be an integer, but it is: {resource_name}"
            ))
        })?;
        if id != node {
            return Err(invalid_request(format!(
                "Unexpected broker id, expected {node}, but received {resource_name}"
            )));
        }
    }
    ask(shard, |reply| ControllerCmd::AlterBrokerConfig {
        per_broker,
        change,
        validate_only,
        reply,
    })
    .await
}

/// On the controller (one change at a time): validates, persists, then applies on every
/// shard and waits for each.
pub async fn alter_on_controller(
    shard: &Rc<Shard>,
    per_broker: bool,
    change: ConfigChange,
    validate_only: bool,
) -> Result<(), Refusal> {
    let current = shard.current_config();
    let mut dynamic = current.dynamic.clone();
    let entity = if per_broker {
        &mut dynamic.broker
    } else {
        &mut dynamic.default
    };
    let named = changed_keys(&change);
    *entity = changed(entity, change)?;
    check_alterable(&named)?;
    let next = effective(&current, &dynamic).map_err(invalid_request)?;
    if validate_only || dynamic == current.dynamic {
        return Ok(());
    }
    let node = shard.broker.node_id;
    dynamic
        .write(&shard.broker.log_dirs[0], node)
        .map_err(|e| (ResponseError::KafkaStorageError.code(), e.to_string()))?;
    let next = Arc::new(next);
    let applied = join_all((0..shard.shard_count()).map(|to| {
        let config = next.clone();
        call(&shard.peers, to, move |reply| ShardMsg::BrokerConfig {
            config,
            reply,
        })
    }))
    .await;
    crate::controller::all_applied(applied)?;
    let level = if per_broker {
        node.to_string()
    } else {
        DEFAULT_ENTITY.to_string()
    };
    tracing::info!("altered dynamic broker configs of {level}: {named:?}");
    Ok(())
}

fn changed_keys(change: &ConfigChange) -> Vec<String> {
    match change {
        ConfigChange::Replace(pairs) => pairs.iter().map(|(k, _)| k.clone()).collect(),
        ConfigChange::Incremental(ops) => ops.iter().map(|(k, _, _)| k.clone()).collect(),
    }
}

/// Kafka's answers for keys that cannot change here.
fn check_alterable(named: &[String]) -> Result<(), Refusal> {
    let mut read_only = Vec::new();
    for name in named {
        match broker_key(name).map(|k| k.mode) {
            Some(Mode::Dynamic) => {}
            Some(Mode::ReadOnly) => read_only.push(name.as_str()),
            Some(Mode::RestartNeeded) => {
                return Err(invalid_request(format!(
                    "{name} cannot be updated dynamically by this broker: set it in \
                     server.properties and restart"
                )))
            }
            None => {
                return Err((
                    ResponseError::InvalidConfig.code(),
                    format!("Unknown broker config name: {name}"),
                ))
            }
        }
    }
    if read_only.is_empty() {
        return Ok(());
    }
    Err(invalid_request(format!(
        "Cannot update these configs dynamically: Set({})",
        read_only.join(", ")
    )))
}

/// `entity` after `change` (Kafka's AlterConfigs replaces the set; the incremental operations
/// are SET, DELETE, and APPEND / SUBTRACT on list keys).
fn changed(
    entity: &BTreeMap<String, String>,
    change: ConfigChange,
) -> Result<BTreeMap<String, String>, Refusal> {
    let ops = match change {
        ConfigChange::Replace(pairs) => {
            let mut next = BTreeMap::new();
            for (k, v) in pairs {
                if next.insert(k, v).is_some() {
                    return Err(invalid_request("Error due to duplicate config keys".into()));
                }
            }
            return Ok(next);
        }
        ConfigChange::Incremental(ops) => ops,
    };
    let mut next = entity.clone();
    for (key, op, value) in ops {
        let is_list = broker_key(&key).is_some_and(|k| k.config_type == TYPE_LIST);
        let current = next.get(&key).cloned().unwrap_or_default();
        let mut items: Vec<String> = current
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let value = value.unwrap_or_default();
        match op {
            OP_SET => {
                next.insert(key, value);
            }
            OP_DELETE => {
                next.remove(&key);
            }
            OP_APPEND | OP_SUBTRACT if !is_list => {
                let verb = if op == OP_APPEND {
                    "append"
                } else {
                    "subtract"
                };
                return Err((
                    ResponseError::InvalidConfig.code(),
                    format!("Config value {verb} is not allowed for config key: {key}"),
                ));
            }
            OP_APPEND => {
                for v in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                    if !items.iter().any(|i| i == v) {
                        items.push(v.to_string());
                    }
                }
                next.insert(key, items.join(","));
            }
            OP_SUBTRACT => {
                let gone: Vec<&str> = value.split(',').map(str::trim).collect();
                items.retain(|i| !gone.contains(&i.as_str()));
                next.insert(key, items.join(","));
            }
            other => return Err(invalid_request(format!("Unknown operations type {other}"))),
        }
    }
    Ok(next)
}

/// On every shard: the new config takes effect — each owned partition's settings (its topic
/// overrides over the new broker defaults), the appender's flush policy, the periodic flush.
pub fn apply_local(shard: &Rc<Shard>, config: Arc<Config>) -> Result<(), String> {
    shard.set_current_config(config.clone());
    let logs: Vec<_> = shard.logs.borrow().values().cloned().collect();
    let mut failures = Vec::new();
    for log in logs {
        let mut l = log.borrow_mut();
        let applied =
            TopicConfig::read(l.dir()).and_then(|topic| l.set_config(topic.log_config(&config)));
        if let Err(e) = applied {
            failures.push(format!("{}: {e}", l.dir().display()));
        }
    }
    match failures.is_empty() {
        true => Ok(()),
        false => Err(failures.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(text: &str) -> Config {
        Config::from_pairs(&parse_properties(text).unwrap())
            .unwrap()
            .0
    }

    #[test]
    fn every_table_key_is_honoured_and_every_readme_key_is_described() {
        for k in BROKER_KEYS {
            let value = (k.value)(&Config::default()).unwrap_or_else(|| "1".into());
            let value = match k.name {
                "metrics.listener" => "127.0.0.1:0".to_string(),
                "advertised.listeners" => "PLAINTEXT://127.0.0.1:9092".to_string(),
                "listener.security.protocol.map" => "PLAINTEXT:PLAINTEXT".to_string(),
                "log.flush.interval.ms"
                | "log.retention.ms"
                | "log.retention.minutes"
                | "log.roll.ms"
                | "num.shards" => "1".to_string(),
                _ => value,
            };
            let (c, warnings) = Config::from_pairs(&[(k.name.to_string(), value.clone())])
                .unwrap_or_else(|e| panic!("{}={value}: {e}", k.name));
            assert!(warnings.is_empty(), "{}: {warnings:?}", k.name);
            assert_eq!((k.value)(&c).as_deref(), Some(value.as_str()), "{}", k.name);
        }
        let readme = include_str!("../../README.md");
        let table = readme.split("### Config keys honoured").nth(1).unwrap();
        for row in table
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2)
        {
            for key in row.split('|').nth(1).unwrap().split('`').skip(1).step_by(2) {
                let key = key.split_whitespace().next().unwrap();
                assert!(
                    broker_key(key).is_some() || crate::topic_config::is_topic_key(key),
                    "README key {key} is not described"
                );
            }
        }
    }

    #[test]
    fn levels_and_synonyms_follow_kafka() {
        let c = base("log.retention.ms=5000\nlog.segment.bytes=4096\n");
        let mut d = DynamicConfigs::default();
        d.default.insert("log.retention.hours".into(), "1".into());
        d.default.insert("log.segment.bytes".into(), "8192".into());
        d.broker.insert("log.segment.bytes".into(), "16384".into());
        let e = effective(&c, &d).unwrap();
        assert_eq!(
            e.retention_ms(),
            Some(5000),
            "a static ms beats a dynamic hours"
        );
        assert_eq!(e.log_segment_bytes, 16384);
        assert_eq!(
            source(&e, "log.segment.bytes"),
            SOURCE_DYNAMIC_BROKER_CONFIG
        );
        assert_eq!(
            source(&e, "log.retention.hours"),
            SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG
        );
        assert_eq!(source(&e, "log.retention.ms"), SOURCE_STATIC_BROKER_CONFIG);
        assert_eq!(source(&e, "num.partitions"), SOURCE_DEFAULT_CONFIG);
        let synonyms = [
            "log.retention.ms",
            "log.retention.minutes",
            "log.retention.hours",
        ];
        assert_eq!(source_of(&e, &synonyms), SOURCE_STATIC_BROKER_CONFIG);
        d.default.insert("log.segment.bytes".into(), "12".into());
        assert!(effective(&c, &d).unwrap_err().contains("log.segment.bytes"));
    }

    #[test]
    fn the_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = DynamicConfigs::default();
        d.default.insert("log.retention.ms".into(), "1000".into());
        d.broker.insert("message.max.bytes".into(), "2048".into());
        d.write(dir.path(), 3).unwrap();
        assert_eq!(DynamicConfigs::read(dir.path(), 3).unwrap(), d);
        assert!(
            DynamicConfigs::read(dir.path(), 4).is_err(),
            "another broker's entry"
        );
    }

    #[test]
    fn refusals_are_kafkas() {
        let named = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let code = |k: &[&str]| check_alterable(&named(k)).map_err(|e| e.0);
        assert_eq!(
            code(&["log.retention.ms", "log.flush.interval.messages"]),
            Ok(())
        );
        let (c, m) = check_alterable(&named(&["num.partitions", "log.dirs"])).unwrap_err();
        assert_eq!(c, ResponseError::InvalidRequest.code());
        assert_eq!(
            m,
            "Cannot update these configs dynamically: Set(num.partitions, log.dirs)"
        );
        assert_eq!(
            code(&["advertised.listeners"]),
            Err(ResponseError::InvalidRequest.code())
        );
        assert_eq!(
            code(&["no.such.key"]),
            Err(ResponseError::InvalidConfig.code())
        );
        let set = BTreeMap::from([("log.cleanup.policy".to_string(), "delete".to_string())]);
        let append = ConfigChange::Incremental(vec![(
            "log.cleanup.policy".into(),
            OP_APPEND,
            Some("compact".into()),
        )]);
        assert_eq!(
            changed(&set, append).unwrap()["log.cleanup.policy"],
            "delete,compact"
        );
        let bad = ConfigChange::Incremental(vec![(
            "log.segment.bytes".into(),
            OP_APPEND,
            Some("1".into()),
        )]);
        assert_eq!(
            changed(&set, bad).unwrap_err().0,
            ResponseError::InvalidConfig.code()
        );
    }
}
