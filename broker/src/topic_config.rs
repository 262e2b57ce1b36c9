//! Topic-level configs (Kafka's dynamic topic configs): validation, the broker defaults they
//! override, what DescribeConfigs reports, and how they reach a partition's `LogConfig`.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use sluice_engine::compression::{self, Compression};
use sluice_engine::{BrokerCompression, LogConfig, RecordsConfig, TimestampType};

use crate::config::Config;

/// File in every partition directory holding its topic's overrides.
pub const TOPIC_CONFIG_FILE: &str = "topic.config";

/// Kafka's `ConfigSource` values used in DescribeConfigs and CreateTopics responses.
pub const SOURCE_DYNAMIC_TOPIC_CONFIG: i8 = 1;
pub const SOURCE_STATIC_BROKER_CONFIG: i8 = 4;
pub const SOURCE_DEFAULT_CONFIG: i8 = 5;

/// Kafka's `ConfigType` values (DescribeConfigs v3+).
pub const TYPE_BOOLEAN: i8 = 1;
pub const TYPE_STRING: i8 = 2;
pub const TYPE_INT: i8 = 3;
pub const TYPE_LONG: i8 = 5;
pub const TYPE_LIST: i8 = 7;

/// Replication factor of every topic on a single node.
pub const REPLICATION_FACTOR: i64 = 1;

/// Set once at startup by a cluster node: topics there have replicas, and
/// `min.insync.replicas` takes any value Kafka takes (at least 1; above the replication
/// factor every acks=all write answers NOT_ENOUGH_REPLICAS, as in Kafka). A single node,
/// which cannot honour more than 1, refuses it.
static REPLICATED: AtomicBool = AtomicBool::new(false);

/// Called by a cluster node before it validates any topic config.
pub fn set_replicated() {
    REPLICATED.store(true, Ordering::Relaxed);
}

/// (topic key, broker key that supplies its default, config type).
pub const TOPIC_KEYS: &[(&str, &str, i8)] = &[
    ("cleanup.policy", "log.cleanup.policy", TYPE_LIST),
    ("compression.gzip.level", "compression.gzip.level", TYPE_INT),
    ("compression.lz4.level", "compression.lz4.level", TYPE_INT),
    ("compression.type", "compression.type", TYPE_STRING),
    ("compression.zstd.level", "compression.zstd.level", TYPE_INT),
    (
        "follower.replication.throttled.replicas",
        "follower.replication.throttled.replicas",
        TYPE_LIST,
    ),
    (
        "leader.replication.throttled.replicas",
        "leader.replication.throttled.replicas",
        TYPE_LIST,
    ),
    ("max.message.bytes", "message.max.bytes", TYPE_INT),
    (
        "message.timestamp.after.max.ms",
        "log.message.timestamp.after.max.ms",
        TYPE_LONG,
    ),
    (
        "message.timestamp.before.max.ms",
        "log.message.timestamp.before.max.ms",
        TYPE_LONG,
    ),
    (
        "message.timestamp.type",
        "log.message.timestamp.type",
        TYPE_STRING,
    ),
    ("min.insync.replicas", "min.insync.replicas", TYPE_INT),
    ("retention.bytes", "log.retention.bytes", TYPE_LONG),
    ("retention.ms", "log.retention.ms", TYPE_LONG),
    ("segment.bytes", "log.segment.bytes", TYPE_INT),
    ("segment.ms", "log.roll.ms", TYPE_LONG),
    (
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
        TYPE_BOOLEAN,
    ),
];

/// Kafka's smallest `segment.bytes` for a topic.
pub const SEGMENT_BYTES_MIN: i64 = 14;

/// One topic's overrides of the broker defaults.
///
/// On disk (`TOPIC_CONFIG_FILE`, one copy in each partition directory, so a partition
/// opened at startup applies its topic's settings without asking anyone): Java-properties
/// lines `key=value`, only the overridden keys, sorted, after a `#` comment line. Written
/// to a `.tmp` file, fsynced, renamed, directory fsynced: a crash leaves the old or the new
/// set. Absent = no overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicConfig {
    overrides: BTreeMap<String, String>,
}

/// Checks one key and value; the message names both (INVALID_CONFIG for the client).
pub fn validate(key: &str, value: &str) -> Result<(), String> {
    let int = |min: i64, max: i64| -> Result<(), String> {
        match value.trim().parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(()),
            _ => Err(format!(
                "Invalid value {value} for configuration {key}: expected an integer in [{min}, {max}]"
            )),
        }
    };
    match key {
        "retention.ms" | "retention.bytes" => int(-1, i64::MAX),
        "segment.ms" => int(1, i64::MAX),
        "segment.bytes" => int(SEGMENT_BYTES_MIN, i64::from(i32::MAX)),
        "max.message.bytes" => int(0, i64::from(i32::MAX)),
        "unclean.leader.election.enable" => match value.trim().to_ascii_lowercase().as_str() {
            "true" | "false" => Ok(()),
            _ => Err(format!(
                "Invalid value {value} for configuration {key}: Expected value to be either true or false"
            )),
        },
        "min.insync.replicas" if REPLICATED.load(Ordering::Relaxed) => int(1, i64::from(i32::MAX)),
        "min.insync.replicas" => int(1, REPLICATION_FACTOR).map_err(|_| {
            format!(
                "Invalid value {value} for configuration {key}: a single node's topics have \
                 replication factor {REPLICATION_FACTOR}; min.insync.replicas above it is \
                 only for a cluster"
            )
        }),
        "leader.replication.throttled.replicas" | "follower.replication.throttled.replicas" => {
            crate::throttle::ThrottledReplicas::parse(key, value).map(|_| ())
        }
        "cleanup.policy" => match value.trim() {
            "delete" => Ok(()),
            v if v.split(',').any(|p| p.trim() == "compact") => Err(format!(
                "Invalid value {value} for configuration {key}: log compaction is not implemented \
                 yet by this broker (only delete)"
            )),
            _ => Err(format!(
                "Invalid value {value} for configuration {key}: expected delete"
            )),
        },
        _ => validate_record_key(key, key, value),
    }
}

/// The keys that decide how records are validated and stored (`RecordsConfig`), each with
/// its broker key and Kafka's default.
const RECORD_KEYS: &[(&str, &str, &str)] = &[
    ("compression.type", "compression.type", "producer"),
    ("compression.gzip.level", "compression.gzip.level", "-1"),
    ("compression.lz4.level", "compression.lz4.level", "9"),
    ("compression.zstd.level", "compression.zstd.level", "3"),
    (
        "message.timestamp.type",
        "log.message.timestamp.type",
        "CreateTime",
    ),
    (
        "message.timestamp.before.max.ms",
        "log.message.timestamp.before.max.ms",
        "9223372036854775807",
    ),
    (
        "message.timestamp.after.max.ms",
        "log.message.timestamp.after.max.ms",
        "3600000",
    ),
];

/// Checks a value of the record key `topic_key`; messages name `name` (the topic or the
/// broker key, as set) and the value, in Kafka's words.
fn validate_record_key(name: &str, topic_key: &str, value: &str) -> Result<(), String> {
    let v = value.trim();
    let int = |min: i64, max: i64, extra: Option<i64>| match v.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) || Some(n) == extra => Ok(()),
        _ => Err(match extra {
            Some(x) => format!(
                "Invalid value {value} for configuration {name}: Value must be between {min} and \
                 {max} or {x}"
            ),
            None => format!(
                "Invalid value {value} for configuration {name}: Value must be in [{min}, {max}]"
            ),
        }),
    };
    match topic_key {
        "compression.type" => match BrokerCompression::parse(v) {
            Some(_) => Ok(()),
            None => Err(format!(
                "Invalid value {value} for configuration {name}: String must be one of: \
                 uncompressed, zstd, lz4, snappy, gzip, producer"
            )),
        },
        "compression.gzip.level" => int(
            i64::from(compression::GZIP_LEVEL_MIN),
            i64::from(compression::GZIP_LEVEL_MAX),
            Some(i64::from(compression::GZIP_LEVEL_DEFAULT)),
        ),
        "compression.lz4.level" => int(
            i64::from(compression::LZ4_LEVEL_MIN),
            i64::from(compression::LZ4_LEVEL_MAX),
            None,
        ),
        "compression.zstd.level" => int(
            i64::from(compression::ZSTD_LEVEL_MIN),
            i64::from(compression::ZSTD_LEVEL_MAX),
            None,
        ),
        "message.timestamp.type" => match TimestampType::parse(v) {
            Some(_) => Ok(()),
            None => Err(format!(
                "Invalid value {value} for configuration {name}: String must be one of: \
                 CreateTime, LogAppendTime"
            )),
        },
        "message.timestamp.before.max.ms" | "message.timestamp.after.max.ms" => {
            int(0, i64::MAX, None)
        }
        _ => Err(format!("Unknown topic config name: {name}")),
    }
}

/// The broker keys behind the record topic keys (`compression.type`,
/// `compression.*.level`, `log.message.timestamp.*`) as set in server.properties, checked
/// as the topic keys are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordDefaults {
    /// Topic key → the broker key's value.
    set: BTreeMap<&'static str, String>,
}

impl RecordDefaults {
    /// Applies one broker key; `Ok(false)` if it is not one of these.
    pub fn apply(&mut self, broker_key: &str, value: &str) -> Result<bool, String> {
        let Some(&(topic_key, _, _)) = RECORD_KEYS.iter().find(|(_, b, _)| *b == broker_key) else {
            return Ok(false);
        };
        validate_record_key(broker_key, topic_key, value)?;
        self.set.insert(topic_key, value.trim().to_string());
        Ok(true)
    }

    /// The broker's value of a record topic key (Kafka's default if unset).
    pub fn value(&self, topic_key: &str) -> &str {
        match self.set.get(topic_key) {
            Some(v) => v,
            None => {
                let (_, _, default) = RECORD_KEYS
                    .iter()
                    .find(|(k, _, _)| *k == topic_key)
                    .expect("a record key");
                default
            }
        }
    }
}

/// Whether `key` is a topic key this broker knows.
pub fn is_topic_key(key: &str) -> bool {
    TOPIC_KEYS.iter().any(|(k, _, _)| *k == key)
}

/// The broker-level value a topic key falls back to, and its source.
pub fn broker_default(key: &str, broker: &Config) -> (String, i8) {
    let (_, broker_key, _) = TOPIC_KEYS
        .iter()
        .find(|(k, _, _)| *k == key)
        .expect("a topic key");
    let value = match key {
        "cleanup.policy" => "delete".to_string(),
        // Kafka's default: no replica throttled (no broker key sets it).
        "leader.replication.throttled.replicas" | "follower.replication.throttled.replicas" => {
            String::new()
        }
        "max.message.bytes" => broker.message_max_bytes.to_string(),
        "min.insync.replicas" => broker
            .cluster
            .as_ref()
            .map_or(1, |c| c.replication.min_insync_replicas)
            .to_string(),
        "unclean.leader.election.enable" => broker
            .cluster
            .as_ref()
            .is_some_and(|c| c.replication.unclean_leader_election_enable)
            .to_string(),
        "retention.bytes" => broker.log_retention_bytes.to_string(),
        "retention.ms" => broker.retention_ms().unwrap_or(-1).to_string(),
        "segment.bytes" => broker.log_segment_bytes.to_string(),
        "segment.ms" => broker.roll_ms().to_string(),
        record_key => broker.records.value(record_key).to_string(),
    };
    let synonyms: &[&str] = match key {
        "retention.ms" => &[
            "log.retention.ms",
            "log.retention.minutes",
            "log.retention.hours",
        ],
        "segment.ms" => &["log.roll.ms", "log.roll.hours"],
        _ => std::slice::from_ref(broker_key),
    };
    (value, crate::dynamic_config::source_of(broker, synonyms))
}

/// One row of a topic's described config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: &'static str,
    pub value: String,
    pub source: i8,
    pub config_type: i8,
}

impl TopicConfig {
    /// Validates every pair (a repeated key is an error, as in Kafka).
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<TopicConfig, String> {
        let mut config = TopicConfig::default();
        for (key, value) in pairs {
            if config.overrides.contains_key(key) {
                return Err(format!("Duplicate config key {key}"));
            }
            config.set(key, value)?;
        }
        Ok(config)
    }

    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        validate(key, value)?;
        self.overrides
            .insert(key.to_string(), value.trim().to_string());
        Ok(())
    }

    /// Drops an override (back to the broker default).
    pub fn remove(&mut self, key: &str) -> Result<(), String> {
        if !is_topic_key(key) {
            return Err(format!("Unknown topic config name: {key}"));
        }
        self.overrides.remove(key);
        Ok(())
    }

    /// The overrides, as the metadata log stores them.
    pub fn pairs(&self) -> BTreeMap<String, String> {
        self.overrides.clone()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.overrides.get(key).map(String::as_str)
    }

    fn get_i64(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(|v| v.parse().ok())
    }

    /// Every topic key with its effective value and source.
    pub fn describe(&self, broker: &Config) -> Vec<ConfigEntry> {
        TOPIC_KEYS
            .iter()
            .map(|&(name, _, config_type)| {
                let (value, source) = match self.get(name) {
                    Some(v) => (v.to_string(), SOURCE_DYNAMIC_TOPIC_CONFIG),
                    None => broker_default(name, broker),
                };
                ConfigEntry {
                    name,
                    value,
                    source,
                    config_type,
                }
            })
            .collect()
    }

    /// The partition settings: these overrides over the broker's defaults.
    pub fn log_config(&self, broker: &Config) -> LogConfig {
        let retention_ms = match self.get_i64("retention.ms") {
            Some(ms) => (ms >= 0).then_some(ms),
            None => broker.retention_ms(),
        };
        let retention_bytes = self
            .get_i64("retention.bytes")
            .unwrap_or(broker.log_retention_bytes);
        LogConfig {
            segment_bytes: self
                .get_i64("segment.bytes")
                .map_or(broker.log_segment_bytes, |b| b as u64),
            max_message_bytes: self
                .get_i64("max.message.bytes")
                .map_or(broker.message_max_bytes, |b| b as u32),
            retention_ms,
            retention_bytes: u64::try_from(retention_bytes).ok(),
            segment_ms: Some(self.get_i64("segment.ms").unwrap_or(broker.roll_ms())),
            records: self.records_config(broker),
            ..LogConfig::default()
        }
    }

    /// The record keys: these overrides, else the broker's keys, else Kafka's defaults
    /// (every value was validated on the way in).
    fn records_config(&self, broker: &Config) -> RecordsConfig {
        let value = |key: &str| self.get(key).unwrap_or(broker.records.value(key));
        let int = |key: &str| value(key).parse::<i64>().expect("validated");
        let compression = match BrokerCompression::parse(value("compression.type")) {
            Some(BrokerCompression::Codec(c)) => BrokerCompression::Codec(Compression {
                gzip_level: int("compression.gzip.level") as i32,
                lz4_level: int("compression.lz4.level") as i32,
                zstd_level: int("compression.zstd.level") as i32,
                ..c
            }),
            _ => BrokerCompression::Producer,
        };
        RecordsConfig {
            compression,
            timestamp_type: TimestampType::parse(value("message.timestamp.type"))
                .expect("validated"),
            timestamp_before_max_ms: int("message.timestamp.before.max.ms"),
            timestamp_after_max_ms: int("message.timestamp.after.max.ms"),
        }
    }

    /// Reads a partition directory's `TOPIC_CONFIG_FILE` (absent = no overrides).
    pub fn read(partition_dir: &Path) -> io::Result<TopicConfig> {
        let path = partition_dir.join(TOPIC_CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(TopicConfig::default()),
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        };
        let bad = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
        let pairs = crate::config::parse_properties(&text)
            .map_err(|e| bad(format!("{}: {e}", path.display())))?;
        TopicConfig::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|e| bad(format!("{}: {e}", path.display())))
    }

    /// Replaces a partition directory's `TOPIC_CONFIG_FILE` durably.
    pub fn write(&self, partition_dir: &Path) -> io::Result<()> {
        let mut text = String::from("# topic config overrides, written by sluiced\n");
        for (k, v) in &self.overrides {
            text.push_str(&format!("{k}={v}\n"));
        }
        write_durably(partition_dir, TOPIC_CONFIG_FILE, &text)
    }
}

/// Replaces `dir/name` with `text` so a crash leaves the old or the new file: written to
/// `name.tmp`, fsynced, renamed, the directory fsynced.
pub fn write_durably(dir: &Path, name: &str, text: &str) -> io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(key: &str, value: &str, ok: bool) {
        assert_eq!(validate(key, value).is_ok(), ok, "{key}={value}");
    }

    #[test]
    fn validation_table() {
        check("retention.ms", "-1", true);
        check("retention.ms", "-2", false);
        check("retention.ms", "abc", false);
        check("retention.bytes", "1048576", true);
        check("segment.bytes", "13", false);
        check("segment.bytes", "1024", true);
        check("segment.ms", "0", false);
        check("cleanup.policy", "delete", true);
        check("cleanup.policy", "compact", false);
        check("message.timestamp.type", "CreateTime", true);
        check("message.timestamp.type", "LogAppendTime", true);
        check("message.timestamp.type", "logappendtime", false);
        check("message.timestamp.before.max.ms", "0", true);
        check("message.timestamp.after.max.ms", "-1", false);
        for codec in ["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"] {
            check("compression.type", codec, true);
        }
        check("compression.type", "none", false);
        check("compression.gzip.level", "-1", true);
        check("compression.gzip.level", "0", false);
        check("compression.gzip.level", "9", true);
        check("compression.lz4.level", "17", true);
        check("compression.lz4.level", "18", false);
        check("compression.zstd.level", "-131072", true);
        check("compression.zstd.level", "23", false);
        check("min.insync.replicas", "1", true);
        check("min.insync.replicas", "2", false);
        check("max.message.bytes", "100", true);
        check("flush.ms", "1", false);
        assert!(validate("flush.ms", "1").unwrap_err().contains("flush.ms"));
    }

    #[test]
    fn round_trips_through_the_file_and_applies() {
        let dir = tempfile::tempdir().unwrap();
        let config =
            TopicConfig::from_pairs([("retention.ms", "1000"), ("segment.bytes", "2048")]).unwrap();
        config.write(dir.path()).unwrap();
        assert_eq!(TopicConfig::read(dir.path()).unwrap(), config);
        let log = config.log_config(&Config::default());
        assert_eq!(log.retention_ms, Some(1000));
        assert_eq!(log.segment_bytes, 2048);
        assert_eq!(log.retention_bytes, None);
        let described = config.describe(&Config::default());
        assert_eq!(described.len(), TOPIC_KEYS.len());
        let rms = described.iter().find(|e| e.name == "retention.ms").unwrap();
        assert_eq!(rms.source, SOURCE_DYNAMIC_TOPIC_CONFIG);
    }
}
