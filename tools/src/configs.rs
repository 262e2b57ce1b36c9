//! `sluice configs`: kafka-configs' flags and output for topics, brokers and groups.
//!
//! - `--describe --entity-type topics|brokers|groups [--entity-name X | --entity-default]
//!   [--all]`: DescribeConfigs (with synonyms); without `--all` only the entity's dynamic
//!   configs (Kafka's filter by source), printed as Kafka does:
//!   `Dynamic configs for topic t are:` then `  key=value sensitive=false synonyms={…}`.
//! - `--alter --add-config k=v,k2=[a,b] --delete-config k3,k4`: IncrementalAlterConfigs
//!   (SET and DELETE); deleting a key the entity has not set is refused first, as Kafka
//!   does.
//!
//! Kafka's shortcuts `--topic T`, `--broker ID`, `--broker-defaults` and `--group G` work
//! too.

use clap::{ArgGroup, Args};
use sluice_net::client::{
    config_source_name, Client, ConfigChange, ConfigResourceType, DescribedConfig,
};

use crate::connect::AdminConnection;
use crate::error::{Result, ToolError};

/// `ConfigSource` wire codes of an entity's own (dynamic) configs.
const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_DYNAMIC_GROUP: i8 = 8;

#[derive(Args)]
#[command(group(ArgGroup::new("action").required(true).args(["describe", "alter"])))]
#[command(group(ArgGroup::new("entity").args([
    "entity_type", "topic", "broker", "broker_defaults", "group"
])))]
pub struct ConfigsArgs {
    #[command(flatten)]
    connection: AdminConnection,
    /// List the configs of the entity (its dynamic ones; every one with --all).
    #[arg(long)]
    describe: bool,
    /// Change the entity's configs (--add-config, --delete-config).
    #[arg(long)]
    alter: bool,
    /// topics, brokers or groups.
    #[arg(long, value_name = "TYPE")]
    entity_type: Option<String>,
    /// The topic name, broker id or group id.
    #[arg(long, value_name = "NAME", conflicts_with = "entity_default")]
    entity_name: Option<String>,
    /// The cluster-wide default (brokers only).
    #[arg(long)]
    entity_default: bool,
    /// Shortcut for --entity-type topics --entity-name T.
    #[arg(long, value_name = "TOPIC")]
    topic: Option<String>,
    /// Shortcut for --entity-type brokers --entity-name ID.
    #[arg(long, value_name = "ID")]
    broker: Option<String>,
    /// Shortcut for --entity-type brokers --entity-default.
    #[arg(long)]
    broker_defaults: bool,
    /// Shortcut for --entity-type groups --entity-name G.
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
    /// With --describe: every config, not only the entity's dynamic ones.
    #[arg(long, requires = "describe")]
    all: bool,
    /// With --alter: k=v,k2=v2 (a value with commas in brackets: k=[a,b]).
    #[arg(long, value_name = "CONFIGS", requires = "alter")]
    add_config: Option<String>,
    /// With --alter: keys to remove (back to their defaults), comma-separated.
    #[arg(long, value_name = "KEYS", requires = "alter", value_delimiter = ',')]
    delete_config: Vec<String>,
}

/// Which entity (or entities) a run is about.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entity {
    resource: ConfigResourceType,
    /// `None`: every entity of the type; `Some("")`: the cluster default.
    name: Option<String>,
}

impl Entity {
    fn from_args(args: &ConfigsArgs) -> Result<Entity> {
        let (resource, name) = if let Some(topic) = &args.topic {
            (ConfigResourceType::Topic, Some(topic.clone()))
        } else if let Some(broker) = &args.broker {
            (ConfigResourceType::Broker, Some(broker.clone()))
        } else if args.broker_defaults {
            (ConfigResourceType::Broker, Some(String::new()))
        } else if let Some(group) = &args.group {
            (ConfigResourceType::Group, Some(group.clone()))
        } else {
            let Some(entity_type) = &args.entity_type else {
                return Err(ToolError::new(
                    "say which entity: --entity-type topics|brokers|groups (with --entity-name \
                     or --entity-default), or --topic, --broker, --broker-defaults, --group",
                ));
            };
            let resource = resource_type(entity_type)?;
            let name = match (&args.entity_name, args.entity_default) {
                (Some(name), _) => Some(name.clone()),
                (None, true) => Some(String::new()),
                (None, false) => None,
            };
            (resource, name)
        };
        if name.as_deref() == Some("") && resource != ConfigResourceType::Broker {
            return Err(ToolError::new(
                "--entity-default is only for --entity-type brokers here (topics and groups \
                 have no cluster-default entity)",
            ));
        }
        if let (ConfigResourceType::Broker, Some(name)) = (resource, &name) {
            if !name.is_empty() && name.parse::<i32>().is_err() {
                return Err(ToolError::new(format!(
                    "The entity name for brokers must be a valid integer broker id, found: {name}"
                )));
            }
        }
        Ok(Entity { resource, name })
    }
}

fn resource_type(text: &str) -> Result<ConfigResourceType> {
    match text {
        "topics" => Ok(ConfigResourceType::Topic),
        "brokers" => Ok(ConfigResourceType::Broker),
        "groups" => Ok(ConfigResourceType::Group),
        other => Err(ToolError::new(format!(
            "--entity-type {other:?}: expected topics, brokers or groups (users, clients, ips \
             and client-metrics configs are not served by sluice)"
        ))),
    }
}

/// Kafka's word for a resource type, plural (`topics`) and singular (`topic`).
fn type_words(resource: ConfigResourceType) -> (&'static str, &'static str) {
    match resource {
        ConfigResourceType::Topic => ("topics", "topic"),
        ConfigResourceType::Broker => ("brokers", "broker"),
        ConfigResourceType::Group => ("groups", "group"),
    }
}

pub async fn run(args: ConfigsArgs) -> Result<()> {
    let entity = Entity::from_args(&args)?;
    let mut client = args.connection.connect("configs").await?;
    if args.alter {
        return alter(&mut client, &entity, &args).await;
    }
    describe(&mut client, &entity, args.all).await
}

async fn describe(client: &mut Client, entity: &Entity, all: bool) -> Result<()> {
    let (plural, singular) = type_words(entity.resource);
    let names = match &entity.name {
        Some(name) => {
            if !all && !exists(client, entity.resource, name).await? {
                println!("The {singular} '{name}' doesn't exist and doesn't have dynamic config.");
                return Ok(());
            }
            vec![name.clone()]
        }
        None => every_entity(client, entity.resource).await?,
    };
    for name in names {
        let configs = client
            .describe_configs(entity.resource, &name, true)
            .await?;
        let heading = if name.is_empty() {
            format!("Default configs for {plural} in the cluster are:")
        } else {
            let which = if all { "All" } else { "Dynamic" };
            format!("{which} configs for {singular} {name} are:")
        };
        println!("{heading}");
        let source = (!all).then(|| dynamic_source(entity.resource, &name));
        print!("{}", describe_lines(configs, source));
    }
    Ok(())
}

/// The source of an entity's own configs: what `--describe` without `--all` shows.
fn dynamic_source(resource: ConfigResourceType, name: &str) -> i8 {
    match resource {
        ConfigResourceType::Topic => SOURCE_DYNAMIC_TOPIC,
        ConfigResourceType::Broker if name.is_empty() => SOURCE_DYNAMIC_DEFAULT_BROKER,
        ConfigResourceType::Broker => SOURCE_DYNAMIC_BROKER,
        ConfigResourceType::Group => SOURCE_DYNAMIC_GROUP,
    }
}

/// Kafka's lines, sorted by key: `  key=value sensitive=false synonyms={SOURCE:k=v, …}`.
fn describe_lines(mut configs: Vec<DescribedConfig>, source: Option<i8>) -> String {
    configs.retain(|c| source.is_none_or(|s| c.source == s));
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    let mut text = String::new();
    for c in configs {
        let synonyms: Vec<String> = c
            .synonyms
            .iter()
            .map(|(source, name, value)| {
                let value = value.as_deref().unwrap_or("null");
                format!("{}:{name}={value}", config_source_name(*source))
            })
            .collect();
        text.push_str(&format!(
            "  {}={} sensitive={} synonyms={{{}}}\n",
            c.name,
            c.value.as_deref().unwrap_or("null"),
            c.sensitive,
            synonyms.join(", ")
        ));
    }
    text
}

/// Whether the named entity exists (Kafka's check before describing dynamic configs).
async fn exists(client: &mut Client, resource: ConfigResourceType, name: &str) -> Result<bool> {
    Ok(match resource {
        ConfigResourceType::Topic => client
            .metadata(&[])
            .await?
            .topics
            .iter()
            .any(|t| t.name == name && t.error.is_none()),
        ConfigResourceType::Broker => {
            name.is_empty()
                || client
                    .metadata(&[])
                    .await?
                    .brokers
                    .iter()
                    .any(|b| b.node_id.to_string() == name)
        }
        ConfigResourceType::Group => client
            .list_groups()
            .await?
            .iter()
            .any(|g| g.group_id == name),
    })
}

/// Every entity of a type: topics (internal ones too), each broker then the cluster
/// default, or every group.
async fn every_entity(client: &mut Client, resource: ConfigResourceType) -> Result<Vec<String>> {
    let mut names: Vec<String> = match resource {
        ConfigResourceType::Topic => {
            let metadata = client.metadata(&[]).await?;
            let topics = metadata.topics.into_iter().filter(|t| t.error.is_none());
            topics.map(|t| t.name).collect()
        }
        ConfigResourceType::Broker => {
            let metadata = client.metadata(&[]).await?;
            let mut ids: Vec<i32> = metadata.brokers.iter().map(|b| b.node_id).collect();
            ids.sort_unstable();
            let mut names: Vec<String> = ids.iter().map(i32::to_string).collect();
            names.push(String::new());
            return Ok(names);
        }
        ConfigResourceType::Group => {
            let groups = client.list_groups().await?;
            groups.into_iter().map(|g| g.group_id).collect()
        }
    };
    names.sort_unstable();
    Ok(names)
}

async fn alter(client: &mut Client, entity: &Entity, args: &ConfigsArgs) -> Result<()> {
    let (plural, singular) = type_words(entity.resource);
    let Some(name) = &entity.name else {
        return Err(ToolError::new(format!(
            "--alter needs the entity: --entity-name (or --entity-default for brokers) with \
             --entity-type {plural}"
        )));
    };
    let added = match &args.add_config {
        Some(text) => parse_add_config(text)?,
        None => Vec::new(),
    };
    let deleted: Vec<String> = args
        .delete_config
        .iter()
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect();
    if added.is_empty() && deleted.is_empty() {
        return Err(ToolError::new(
            "--alter needs --add-config k=v[,k2=v2] and/or --delete-config k[,k2]",
        ));
    }
    let current = client
        .describe_configs(entity.resource, name, false)
        .await?;
    let own = dynamic_source(entity.resource, name);
    let invalid: Vec<&str> = deleted
        .iter()
        .filter(|k| !current.iter().any(|c| c.name == **k && c.source == own))
        .map(String::as_str)
        .collect();
    if !invalid.is_empty() {
        return Err(ToolError::new(format!(
            "Invalid config(s): {} (not set on this {singular}, so there is nothing to delete)",
            invalid.join(",")
        )));
    }
    let mut changes: Vec<ConfigChange> = deleted
        .into_iter()
        .map(|name| ConfigChange::Delete { name })
        .collect();
    changes.extend(
        added
            .into_iter()
            .map(|(name, value)| ConfigChange::Set { name, value }),
    );
    client
        .incremental_alter_configs(entity.resource, name, &changes)
        .await?;
    if name.is_empty() {
        println!("Completed updating default config for {plural} in the cluster.");
    } else {
        println!("Completed updating config for {singular} {name}.");
    }
    Ok(())
}

/// Kafka's `--add-config` syntax: pairs split at commas outside brackets, each exactly one
/// `=` outside brackets, brackets removed from values, keys of `[$a-zA-Z0-9._-]`.
fn parse_add_config(text: &str) -> Result<Vec<(String, String)>> {
    let invalid = || {
        ToolError::new(format!(
            "--add-config {text:?}: Invalid entity config: all configs to be added must be in \
             the format \"key=val\" or \"key=[val1,val2]\" to group values which contain commas"
        ))
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    for item in split_outside_brackets(text, ',') {
        let parts = split_outside_brackets(&item, '=');
        let [key, value] = parts.as_slice() else {
            return Err(invalid());
        };
        let key = key.trim().to_string();
        let allowed = |c: char| c.is_ascii_alphanumeric() || "$._-".contains(c);
        if key.is_empty() || !key.chars().all(allowed) {
            return Err(ToolError::new(format!(
                "Invalid character found for config key: {key}"
            )));
        }
        let value: String = value.chars().filter(|c| !matches!(c, '[' | ']')).collect();
        pairs.retain(|(k, _)| *k != key);
        pairs.push((key, value.trim().to_string()));
    }
    Ok(pairs)
}

/// `text` split at each `separator` that is not inside `[...]`.
fn split_outside_brackets(text: &str, separator: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if c == separator && depth == 0 {
            parts.push(String::new());
        } else {
            parts.last_mut().expect("never empty").push(c);
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_config_parses_as_kafka() {
        let check = |text: &str, expected: &[(&str, &str)]| {
            let got = parse_add_config(text).unwrap();
            let got: Vec<(&str, &str)> =
                got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            assert_eq!(got, expected, "{text}");
        };
        check("retention.ms=1000", &[("retention.ms", "1000")]);
        check(
            "retention.ms = 1000,cleanup.policy=[delete,compact]",
            &[
                ("retention.ms", "1000"),
                ("cleanup.policy", "delete,compact"),
            ],
        );
        check("a=1,a=2", &[("a", "2")]);
        check(
            "ssl.endpoint.identification.algorithm=",
            &[("ssl.endpoint.identification.algorithm", "")],
        );
        assert!(parse_add_config("novalue").is_err());
        assert!(parse_add_config("a=b=c").is_err());
        assert!(parse_add_config("bad key=1").is_err());
    }

    #[test]
    fn describe_lines_are_kafka_configs_format() {
        let config = |name: &str, value: Option<&str>, source| DescribedConfig {
            name: name.into(),
            value: value.map(str::to_string),
            source,
            read_only: false,
            sensitive: false,
            synonyms: vec![(source, name.into(), value.map(str::to_string))],
        };
        let configs = vec![
            config("segment.ms", Some("5"), 1),
            config("retention.ms", Some("1000"), 1),
            config("cleanup.policy", Some("delete"), 5),
        ];
        assert_eq!(
            describe_lines(configs.clone(), Some(1)),
            "  retention.ms=1000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=1000}\n\
             \x20 segment.ms=5 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:segment.ms=5}\n"
        );
        let all = describe_lines(configs, None);
        assert!(all.starts_with(
            "  cleanup.policy=delete sensitive=false synonyms={DEFAULT_CONFIG:cleanup.policy=delete}\n"
        ));
        let secret = vec![config("password", None, 4)];
        assert!(describe_lines(secret, None).contains("password=null"));
    }
}
