//! The consumer configs `console-consumer` honours, from `--consumer.config FILE` (alias
//! `--command-config`) overridden by `--consumer-property k=v`, with Kafka's console
//! consumer rules for `--group` / `group.id` and `--from-beginning` /
//! `auto.offset.reset`. Every other key is named in a warning.

use std::path::Path;

use sluice_net::client::{Client, FetchOptions, OffsetSpec, TopicMetadata};

use crate::client_config::ClientConfig;
use crate::error::{Result, ToolError};
use crate::limits::{
    FETCH_WAIT_MS_MAX, GROUP_HEARTBEAT_INTERVAL_MS, GROUP_REBALANCE_TIMEOUT_MS,
    GROUP_SESSION_TIMEOUT_MS,
};

/// Kafka's `partition.assignment.strategy` values that name the range assignor (the only
/// one the CLI implements).
const RANGE_ASSIGNORS: [&str; 2] = ["org.apache.kafka.clients.consumer.RangeAssignor", "range"];

/// Largest `fetch.max.bytes` / `max.partition.fetch.bytes` accepted (the client's bound).
const FETCH_BYTES_LIMIT: i64 = sluice_net::client::limits::FETCH_BYTES_MAX as i64;

/// What the consumer was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ConsumerSettings {
    /// `--group` or `group.id`.
    pub group: Option<String>,
    /// `auto.offset.reset`: where a partition without a committed (or valid) offset
    /// starts; `None` for `none` (an error instead).
    pub reset: Option<OffsetSpec>,
    /// `enable.auto.commit` (default true with a group).
    pub auto_commit: bool,
    /// `fetch.min.bytes`, `fetch.max.bytes`, `max.partition.fetch.bytes`,
    /// `fetch.max.wait.ms` (at most `FETCH_WAIT_MS_MAX`, so heartbeats keep their pace).
    pub fetch: FetchOptions,
    /// `session.timeout.ms`, `heartbeat.interval.ms`, `max.poll.interval.ms`.
    pub session_timeout_ms: i32,
    pub heartbeat_interval_ms: u64,
    pub rebalance_timeout_ms: i32,
    /// `group.instance.id` (static membership).
    pub group_instance_id: Option<String>,
    /// `client.id`.
    pub client_id: Option<String>,
    /// `allow.auto.create.topics` (default true, as Kafka's consumer): the topic is looked
    /// up with Metadata allowing the broker to create it.
    pub allow_auto_create: bool,
}

/// The flags that take part in the settings.
pub(super) struct ConsumerFlags<'a> {
    pub consumer_config: Option<&'a Path>,
    pub consumer_properties: &'a [String],
    pub group: Option<&'a str>,
    pub from_beginning: bool,
    pub bootstrap_server: &'a str,
}

impl ConsumerSettings {
    pub(super) fn from_flags(flags: &ConsumerFlags<'_>) -> Result<ConsumerSettings> {
        let file = flags.consumer_config.map(|p| (p, "--consumer.config"));
        let config = ClientConfig::load(file, flags.consumer_properties, "--consumer-property")?;
        let settings = Self::from_config(&config, flags)?;
        if let Some(servers) = config.get("bootstrap.servers") {
            if servers != flags.bootstrap_server {
                eprintln!(
                    "WARN: bootstrap.servers={servers} ({}) is overridden by \
                     --bootstrap-server {}, as in Kafka",
                    config.origin("bootstrap.servers"),
                    flags.bootstrap_server
                );
            }
        }
        if let Some(strategy) = config.get("partition.assignment.strategy") {
            if !strategy
                .split(',')
                .all(|s| RANGE_ASSIGNORS.contains(&s.trim()))
            {
                eprintln!(
                    "WARN: partition.assignment.strategy={strategy} ({}) is not honoured: \
                     sluice console-consumer assigns with the range assignor",
                    config.origin("partition.assignment.strategy")
                );
            }
        }
        if let Some(level) = config.get("isolation.level") {
            if level != "read_uncommitted" {
                eprintln!(
                    "WARN: isolation.level={level} ({}) is not honoured: sluice \
                     console-consumer reads read_uncommitted",
                    config.origin("isolation.level")
                );
            }
        }
        config.warn_unused("console-consumer");
        Ok(settings)
    }

    fn from_config(config: &ClientConfig, flags: &ConsumerFlags<'_>) -> Result<ConsumerSettings> {
        let int = |key, default: i32, range: (i64, i64)| -> Result<i32> {
            let n = config.number(key, i64::from(default), range)?;
            Ok(i32::try_from(n).expect("bounded to i32"))
        };
        let session_timeout_ms = int(
            "session.timeout.ms",
            GROUP_SESSION_TIMEOUT_MS,
            (1, i32::MAX as i64),
        )?;
        let heartbeat_interval_ms = int(
            "heartbeat.interval.ms",
            GROUP_HEARTBEAT_INTERVAL_MS as i32,
            (1, i64::from(session_timeout_ms) - 1),
        )?;
        Ok(ConsumerSettings {
            group: group_id(config, flags)?,
            reset: offset_reset(config, flags)?,
            auto_commit: config.flag("enable.auto.commit", true)?,
            fetch: fetch_options(config)?,
            session_timeout_ms,
            heartbeat_interval_ms: u64::try_from(heartbeat_interval_ms).expect("positive"),
            rebalance_timeout_ms: int(
                "max.poll.interval.ms",
                GROUP_REBALANCE_TIMEOUT_MS,
                (1, i32::MAX as i64),
            )?,
            group_instance_id: config.get("group.instance.id").map(str::to_string),
            allow_auto_create: config.flag("allow.auto.create.topics", true)?,
            client_id: config.connection_settings()?.client_id,
        })
    }
}

/// `--group` or `group.id`: both may be given only if they agree (Kafka's rule).
fn group_id(config: &ClientConfig, flags: &ConsumerFlags<'_>) -> Result<Option<String>> {
    match (flags.group, config.get("group.id")) {
        (Some(a), Some(b)) if a != b => Err(ToolError::new(format!(
            "The group ids provided in different places (directly using '--group', via \
             '--consumer-property', or via '--consumer.config') do not match. Detected group \
             ids: '{a}', '{b}'"
        ))),
        (Some(group), _) | (None, Some(group)) => Ok(Some(group.to_string())),
        (None, None) => Ok(None),
    }
}

/// `auto.offset.reset`, with `--from-beginning` meaning earliest (and conflicting with any
/// other value, as in Kafka).
fn offset_reset(config: &ClientConfig, flags: &ConsumerFlags<'_>) -> Result<Option<OffsetSpec>> {
    Ok(match config.get("auto.offset.reset") {
        None if flags.from_beginning => Some(OffsetSpec::Earliest),
        None => Some(OffsetSpec::Latest),
        Some("earliest") => Some(OffsetSpec::Earliest),
        Some(other) if flags.from_beginning => {
            return Err(ToolError::new(format!(
                "Can't simultaneously specify --from-beginning and \
                 'auto.offset.reset={other}', as it conflicts"
            )))
        }
        Some("latest") => Some(OffsetSpec::Latest),
        Some("none") => None,
        Some(other) => {
            return Err(ToolError::new(format!(
                "auto.offset.reset={other} ({}): expected earliest, latest or none",
                config.origin("auto.offset.reset")
            )))
        }
    })
}

/// The fetch keys, bounded (`fetch.max.wait.ms` at most `FETCH_WAIT_MS_MAX`).
fn fetch_options(config: &ClientConfig) -> Result<FetchOptions> {
    let defaults = FetchOptions::default();
    let int = |key, default: i32, max: i64| -> Result<i32> {
        let n = config.number(key, i64::from(default), (0, max))?;
        Ok(i32::try_from(n).expect("bounded to i32"))
    };
    let wait_ms = int("fetch.max.wait.ms", defaults.max_wait_ms, i32::MAX as i64)?;
    Ok(FetchOptions {
        max_wait_ms: wait_ms.min(FETCH_WAIT_MS_MAX as i32),
        min_bytes: int("fetch.min.bytes", defaults.min_bytes, FETCH_BYTES_LIMIT)?,
        max_bytes: int("fetch.max.bytes", defaults.max_bytes, FETCH_BYTES_LIMIT)?,
        partition_max_bytes: int(
            "max.partition.fetch.bytes",
            defaults.partition_max_bytes,
            FETCH_BYTES_LIMIT,
        )?,
        ..defaults
    })
}

impl ConsumerSettings {
    /// The topic's metadata, created by the broker if it auto-creates topics and
    /// `allow.auto.create.topics` allows it.
    pub(super) async fn look_up(&self, client: &mut Client, topic: &str) -> Result<TopicMetadata> {
        Ok(match self.allow_auto_create {
            true => client.topic_auto_create(topic).await?,
            false => client.topic(topic).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags<'a>(
        props: &'a [String],
        group: Option<&'a str>,
        beginning: bool,
    ) -> ConsumerFlags<'a> {
        ConsumerFlags {
            consumer_config: None,
            consumer_properties: props,
            group,
            from_beginning: beginning,
            bootstrap_server: "b:1",
        }
    }

    fn settings(props: &[&str], group: Option<&str>, beginning: bool) -> Result<ConsumerSettings> {
        let props: Vec<String> = props.iter().map(|p| p.to_string()).collect();
        let f = flags(&props, group, beginning);
        let config = ClientConfig::load(None, f.consumer_properties, "--consumer-property")?;
        ConsumerSettings::from_config(&config, &f)
    }

    #[test]
    fn group_and_reset_follow_kafkas_console_consumer() {
        let s = settings(&["group.id=g1"], None, false).unwrap();
        assert_eq!(s.group.as_deref(), Some("g1"));
        assert_eq!(s.reset, Some(OffsetSpec::Latest));
        assert!(s.auto_commit);
        assert!(settings(&["group.id=g1"], Some("g2"), false).is_err());
        assert!(settings(&["group.id=g1"], Some("g1"), false).is_ok());
        let s = settings(&[], None, true).unwrap();
        assert_eq!(s.reset, Some(OffsetSpec::Earliest));
        assert!(settings(&["auto.offset.reset=latest"], None, true).is_err());
        let s = settings(
            &["auto.offset.reset=none", "enable.auto.commit=false"],
            None,
            false,
        )
        .unwrap();
        assert_eq!((s.reset, s.auto_commit), (None, false));
        assert!(settings(&["auto.offset.reset=middle"], None, false).is_err());
    }

    #[test]
    fn fetch_and_membership_keys_are_bounded() {
        let s = settings(
            &[
                "fetch.max.wait.ms=100000",
                "fetch.min.bytes=10",
                "session.timeout.ms=30000",
                "heartbeat.interval.ms=1000",
                "group.instance.id=i1",
            ],
            None,
            false,
        )
        .unwrap();
        assert_eq!(s.fetch.max_wait_ms, FETCH_WAIT_MS_MAX as i32);
        assert_eq!(s.fetch.min_bytes, 10);
        assert_eq!(
            (s.session_timeout_ms, s.heartbeat_interval_ms),
            (30000, 1000)
        );
        assert_eq!(s.group_instance_id.as_deref(), Some("i1"));
        assert!(settings(&["heartbeat.interval.ms=20000"], None, false).is_err());
        assert!(settings(&["fetch.max.bytes=-1"], None, false).is_err());
    }
}
