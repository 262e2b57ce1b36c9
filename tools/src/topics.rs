//! `sluice topics`: kafka-topics' flags and output.

use clap::{ArgGroup, Args};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use sluice_net::client::{Client, ConfigResourceType, TopicCreation, TopicMetadata};

use crate::connect::AdminConnection;
use crate::error::{Result, ToolError};
use crate::properties::Properties;
use crate::topic_id;

#[derive(Args)]
#[command(group(
    ArgGroup::new("action")
        .required(true)
        .args(["create", "list", "describe", "delete", "alter"])
))]
pub struct TopicsArgs {
    #[command(flatten)]
    connection: AdminConnection,
    /// Create a topic.
    #[arg(long)]
    create: bool,
    /// List the topics' names.
    #[arg(long)]
    list: bool,
    /// Describe the topic (every topic without --topic).
    #[arg(long)]
    describe: bool,
    /// Delete a topic.
    #[arg(long)]
    delete: bool,
    /// Change the number of partitions (needs CreatePartitions on the broker).
    #[arg(long)]
    alter: bool,
    /// The topic.
    #[arg(long)]
    topic: Option<String>,
    /// Partitions of a new topic (default: the broker's num.partitions), or the new
    /// total with --alter.
    #[arg(long)]
    partitions: Option<i32>,
    /// Replication factor of a new topic (default: the broker's).
    #[arg(long)]
    replication_factor: Option<i16>,
    /// A topic config for --create: key=value (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    configs: Vec<String>,
    /// With --create: no error if the topic exists.
    #[arg(long)]
    if_not_exists: bool,
    /// With --delete, --alter or --describe: no error if the topic does not exist.
    #[arg(long)]
    if_exists: bool,
    /// With --list or --describe: leave out Kafka's internal topics (__consumer_offsets,
    /// __transaction_state).
    #[arg(long)]
    exclude_internal: bool,
    /// With --describe: only partitions whose ISR is smaller than their replicas.
    #[arg(long, requires = "describe")]
    under_replicated_partitions: bool,
    /// With --describe: only partitions whose ISR is below the topic's min.insync.replicas
    /// (or that have no leader).
    #[arg(long, requires = "describe")]
    under_min_isr_partitions: bool,
    /// With --describe: only partitions whose leader is not a live broker.
    #[arg(long, requires = "describe")]
    unavailable_partitions: bool,
    /// With --describe: only partitions whose ISR is exactly the topic's
    /// min.insync.replicas.
    #[arg(long, requires = "describe")]
    at_min_isr_partitions: bool,
}

impl TopicsArgs {
    /// Kafka's `describeConfigs`: no --*-partitions report asked, so every topic's line and
    /// every partition are printed.
    fn reports(&self) -> bool {
        self.under_replicated_partitions
            || self.under_min_isr_partitions
            || self.unavailable_partitions
            || self.at_min_isr_partitions
    }
}

/// What kafka-topics' partition reports test for one topic.
struct ReportContext {
    /// `min.insync.replicas` of the topic, when --under-min-isr-partitions needs it.
    min_isr: Option<usize>,
    /// The live (unfenced) brokers, when --unavailable-partitions needs them.
    live_brokers: Vec<i32>,
}

/// `ConfigSource` wire code of a key at its default (Kafka's `ConfigEntry::isDefault`).
const SOURCE_DEFAULT_CONFIG: i8 = 5;

/// Kafka's internal topics (`Topic.INTERNAL_TOPICS`).
pub const INTERNAL_TOPICS: [&str; 2] = ["__consumer_offsets", "__transaction_state"];

pub async fn run(args: TopicsArgs) -> Result<()> {
    let mut client = args.connection.connect("topics").await?;
    if args.list {
        return list(&mut client, args.topic.as_deref(), args.exclude_internal).await;
    }
    if args.describe {
        return describe(&mut client, &args).await;
    }
    let topic = args.topic.as_deref().ok_or_else(|| {
        ToolError::new("--create, --delete and --alter need --topic (which topic?)")
    })?;
    if args.create {
        create(&mut client, topic, &args).await
    } else if args.delete {
        delete(&mut client, topic, &args).await
    } else {
        alter(&mut client, topic, &args).await
    }
}

async fn create(client: &mut Client, topic: &str, args: &TopicsArgs) -> Result<()> {
    let configs = Properties::parse(&args.configs, "--config")?;
    let partitions = args.partitions.unwrap_or(-1);
    let replication_factor = args.replication_factor.unwrap_or(-1);
    let created = client
        .create_topic_with_configs(topic, partitions, replication_factor, configs.pairs())
        .await?;
    match created {
        TopicCreation::Created => println!("Created topic {topic}."),
        TopicCreation::AlreadyExists if args.if_not_exists => {}
        TopicCreation::AlreadyExists => {
            return Err(ToolError::new(format!(
                "Topic '{topic}' already exists (add --if-not-exists to ignore this)"
            )))
        }
    }
    Ok(())
}

async fn delete(client: &mut Client, topic: &str, args: &TopicsArgs) -> Result<()> {
    match client.delete_topic(topic).await {
        Err(error)
            if error.kafka_error() == Some(ResponseError::UnknownTopicOrPartition)
                && args.if_exists =>
        {
            Ok(())
        }
        Err(error) if error.kafka_error() == Some(ResponseError::UnknownTopicOrPartition) => Err(
            ToolError::new(format!("Topic '{topic}' does not exist as expected")),
        ),
        outcome => Ok(outcome?),
    }
}

async fn alter(client: &mut Client, topic: &str, args: &TopicsArgs) -> Result<()> {
    let Some(partitions) = args.partitions else {
        return Err(ToolError::new(
            "--alter needs --partitions N (the new total); topic configs are changed with \
             `sluice configs --alter --entity-type topics --entity-name T --add-config k=v`",
        ));
    };
    if !client.advertises(ApiKey::CreatePartitions).await? {
        return Err(ToolError::new(format!(
            "adding partitions is not supported by this broker: {} does not list \
             CreatePartitions in its ApiVersions answer",
            args.connection.bootstrap_server
        )));
    }
    if describe_one(client, topic).await?.is_none() {
        if args.if_exists {
            return Ok(());
        }
        return Err(ToolError::new(format!(
            "Topic '{topic}' does not exist as expected"
        )));
    }
    client.create_partitions(topic, partitions).await?;
    Ok(())
}

async fn list(client: &mut Client, topic: Option<&str>, exclude_internal: bool) -> Result<()> {
    let metadata = client.metadata(&[]).await?;
    let mut names: Vec<&str> = metadata
        .topics
        .iter()
        .filter(|t| t.error.is_none())
        .map(|t| t.name.as_str())
        .filter(|name| topic.is_none_or(|wanted| wanted == *name))
        .filter(|name| !(exclude_internal && INTERNAL_TOPICS.contains(name)))
        .collect();
    names.sort_unstable();
    for name in names {
        println!("{name}");
    }
    Ok(())
}

/// The metadata of `topic`, `None` when the broker does not know it.
async fn describe_one(client: &mut Client, topic: &str) -> Result<Option<TopicMetadata>> {
    let metadata = client.metadata(&[topic]).await?;
    let Some(found) = metadata.topics.into_iter().find(|t| t.name == topic) else {
        return Ok(None);
    };
    match found.error {
        None => Ok(Some(found)),
        Some(ResponseError::UnknownTopicOrPartition) => Ok(None),
        Some(error) => Err(ToolError::new(format!(
            "describing topic {topic:?}: {error} (Kafka error code {})",
            error.code()
        ))),
    }
}

async fn describe(client: &mut Client, args: &TopicsArgs) -> Result<()> {
    let mut topics = match args.topic.as_deref() {
        Some(topic) => match describe_one(client, topic).await? {
            Some(found) => vec![found],
            None if args.if_exists => Vec::new(),
            None => {
                return Err(ToolError::new(format!(
                    "Topic '{topic}' does not exist as expected"
                )))
            }
        },
        None => client.metadata(&[]).await?.topics,
    };
    topics.retain(|t| {
        t.error.is_none() && !(args.exclude_internal && INTERNAL_TOPICS.contains(&t.name.as_str()))
    });
    topics.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    let with_configs = client.advertises(ApiKey::DescribeConfigs).await?;
    if args.reports() {
        return report_partitions(client, args, &topics, with_configs).await;
    }
    for topic in &topics {
        let configs = match with_configs {
            true => non_default_configs(client, &topic.name).await?,
            false => String::new(),
        };
        print!("{}", describe_text(topic, &configs));
    }
    Ok(())
}

/// `--describe` with --under-replicated-partitions, --under-min-isr-partitions or
/// --unavailable-partitions: only the partition lines that match any of them (Kafka prints
/// no topic lines then).
async fn report_partitions(
    client: &mut Client,
    args: &TopicsArgs,
    topics: &[TopicMetadata],
    with_configs: bool,
) -> Result<()> {
    let live_brokers = match args.unavailable_partitions {
        false => Vec::new(),
        true if client.advertises(ApiKey::DescribeCluster).await? => {
            let cluster = client.describe_cluster().await?;
            cluster
                .brokers
                .iter()
                .filter(|b| !b.fenced)
                .map(|b| b.id)
                .collect()
        }
        true => client
            .metadata(&[])
            .await?
            .brokers
            .iter()
            .map(|b| b.node_id)
            .collect(),
    };
    for topic in topics {
        let needs_min_isr = args.under_min_isr_partitions || args.at_min_isr_partitions;
        let min_isr = match needs_min_isr && with_configs {
            true => topic_min_isr(client, &topic.name).await?,
            false => None,
        };
        let context = ReportContext {
            min_isr,
            live_brokers: live_brokers.clone(),
        };
        print!("{}", reported_partitions_text(topic, args, &context));
    }
    Ok(())
}

/// The topic's effective `min.insync.replicas`.
async fn topic_min_isr(client: &mut Client, topic: &str) -> Result<Option<usize>> {
    let configs = client
        .describe_configs(ConfigResourceType::Topic, topic, false)
        .await?;
    Ok(configs
        .iter()
        .find(|c| c.name == "min.insync.replicas")
        .and_then(|c| c.value.as_deref()?.parse().ok()))
}

/// The partition lines of `topic` that match a report asked for.
fn reported_partitions_text(
    topic: &TopicMetadata,
    args: &TopicsArgs,
    context: &ReportContext,
) -> String {
    let text = describe_text(topic, "");
    let mut partitions: Vec<_> = topic.partitions.iter().collect();
    partitions.sort_unstable_by_key(|p| p.partition);
    // describe_text's lines after the topic line are the partitions, in the same order.
    text.lines()
        .skip(1)
        .zip(partitions)
        .filter(|(_, p)| {
            let has_leader = p.leader_id >= 0;
            let under_replicated = p.isr.len() < p.replicas.len();
            let under_min_isr = !has_leader || context.min_isr.is_some_and(|m| p.isr.len() < m);
            let unavailable = !has_leader || !context.live_brokers.contains(&p.leader_id);
            let at_min_isr = context.min_isr == Some(p.isr.len());
            (args.under_replicated_partitions && under_replicated)
                || (args.at_min_isr_partitions && at_min_isr)
                || (args.under_min_isr_partitions && under_min_isr)
                || (args.unavailable_partitions && unavailable)
        })
        .map(|(line, _)| format!("{line}\n"))
        .collect()
}

/// The `Configs:` column: the topic's configs whose source is not the default, as
/// `key=value` joined by commas in the broker's order (Kafka's `!isDefault()` filter, so
/// keys set in the broker's server.properties show too).
async fn non_default_configs(client: &mut Client, topic: &str) -> Result<String> {
    let configs = client
        .describe_configs(ConfigResourceType::Topic, topic, false)
        .await?;
    Ok(configs
        .iter()
        .filter(|c| c.source != SOURCE_DEFAULT_CONFIG)
        .map(|c| format!("{}={}", c.name, c.value.as_deref().unwrap_or("null")))
        .collect::<Vec<_>>()
        .join(","))
}

/// kafka-topics' `--describe` text of one topic.
fn describe_text(topic: &TopicMetadata, configs: &str) -> String {
    let mut partitions: Vec<_> = topic.partitions.iter().collect();
    partitions.sort_unstable_by_key(|p| p.partition);
    let replication_factor = partitions.first().map_or(0, |p| p.replicas.len());
    let mut text = format!(
        "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {configs}\n",
        topic.name,
        topic_id::kafka_format(&topic.topic_id),
        partitions.len(),
        replication_factor
    );
    for p in partitions {
        let leader = if p.leader_id < 0 {
            "none".to_string()
        } else {
            p.leader_id.to_string()
        };
        text.push_str(&format!(
            "\tTopic: {}\tPartition: {}\tLeader: {leader}\tReplicas: {}\tIsr: {}\n",
            topic.name,
            p.partition,
            join(&p.replicas),
            join(&p.isr)
        ));
    }
    text
}

fn join(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_net::client::PartitionMetadata;
    use uuid::Uuid;

    #[test]
    fn describe_text_is_kafka_topics_format() {
        let partition = |partition, leader_id| PartitionMetadata {
            partition,
            leader_id,
            leader_epoch: 0,
            replicas: vec![1, 2],
            isr: vec![1],
            error: None,
        };
        let topic = TopicMetadata {
            name: "t".into(),
            topic_id: Uuid::nil(),
            error: None,
            partitions: vec![partition(1, -1), partition(0, 1)],
        };
        assert_eq!(
            describe_text(&topic, "retention.ms=5"),
            "Topic: t\tTopicId: AAAAAAAAAAAAAAAAAAAAAA\tPartitionCount: 2\tReplicationFactor: 2\tConfigs: retention.ms=5\n\
             \tTopic: t\tPartition: 0\tLeader: 1\tReplicas: 1,2\tIsr: 1\n\
             \tTopic: t\tPartition: 1\tLeader: none\tReplicas: 1,2\tIsr: 1\n"
        );
    }
}
