//! `sluice get-offsets`: kafka-get-offsets (GetOffsetShell). Prints
//! `topic:partition:offset` for every matching partition, sorted as Kafka sorts them (by
//! `topic-partition` text), leaving out partitions with no such offset (a timestamp past
//! the newest record).
//!
//! `--topic` is a regular expression (full match; commas mean "or", as Kafka's include
//! list), `--partitions 0,2` picks partitions, `--topic-partitions 't1:1,t2:0-3,t3,:5-'`
//! combines both (ranges are lower inclusive, upper exclusive), `--time` is -1/latest,
//! -2/earliest, -3/max-timestamp or a timestamp in ms.

use clap::Args;
use regex_automata::meta::Regex;
use sluice_net::client::{Client, OffsetSpec};

use crate::connect::AdminConnection;
use crate::error::{Result, ToolError};
use crate::topics::INTERNAL_TOPICS;

#[derive(Args)]
pub struct GetOffsetsArgs {
    #[command(flatten)]
    connection: AdminConnection,
    /// The topic(s): a regular expression (every topic when absent).
    #[arg(long, value_name = "TOPIC", conflicts_with = "topic_partitions")]
    topic: Option<String>,
    /// Comma-separated partition ids (every partition when absent).
    #[arg(long, value_name = "IDS", conflicts_with = "topic_partitions")]
    partitions: Option<String>,
    /// Comma-separated TOPIC_REGEX[:P | :LOW-HIGH | :LOW- | :-HIGH] patterns.
    #[arg(long, value_name = "PATTERNS")]
    topic_partitions: Option<String>,
    /// -1 or latest, -2 or earliest, -3 or max-timestamp, or a timestamp (ms).
    #[arg(
        long,
        value_name = "TIME",
        default_value = "latest",
        allow_hyphen_values = true
    )]
    time: String,
    /// Leave out internal topics (__consumer_offsets).
    #[arg(long)]
    exclude_internal_topics: bool,
}

/// Which partitions of a matching topic a rule takes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PartitionFilter {
    /// Every partition, or only these ids.
    Set(Vec<i32>),
    /// `low..high` (high exclusive).
    Range(i32, i32),
}

impl PartitionFilter {
    fn allows(&self, partition: i32) -> bool {
        match self {
            PartitionFilter::Set(ids) => ids.is_empty() || ids.contains(&partition),
            PartitionFilter::Range(low, high) => (*low..*high).contains(&partition),
        }
    }
}

/// One topic pattern and its partitions; a partition matches if any rule takes it.
struct Rule {
    topic: Regex,
    partitions: PartitionFilter,
}

/// Kafka's include list: commas mean "or", quotes and spaces are dropped; a full match.
fn topic_regex(raw: &str) -> Result<Regex> {
    let cleaned: String = raw
        .trim()
        .trim_matches(['"', '\''])
        .chars()
        .filter(|c| *c != ' ')
        .map(|c| if c == ',' { '|' } else { c })
        .collect();
    Regex::new(&format!("^(?:{cleaned})$"))
        .map_err(|e| ToolError::new(format!("topic pattern {raw:?}: {e}")))
}

fn rules(args: &GetOffsetsArgs) -> Result<Vec<Rule>> {
    if let Some(patterns) = &args.topic_partitions {
        return patterns.split(',').map(parse_rule).collect();
    }
    let partitions = match args.partitions.as_deref().filter(|p| !p.is_empty()) {
        None => Vec::new(),
        Some(text) => text
            .split(',')
            .map(|p| p.trim().parse::<i32>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| {
                ToolError::new(format!(
                    "--partitions expects a comma separated list of numeric partition ids, \
                     but received: {text}"
                ))
            })?,
    };
    Ok(vec![Rule {
        topic: topic_regex(args.topic.as_deref().unwrap_or(".*"))?,
        partitions: PartitionFilter::Set(partitions),
    }])
}

/// `TOPIC_REGEX[:P | :LOW-HIGH | :LOW- | :-HIGH]`.
fn parse_rule(spec: &str) -> Result<Rule> {
    let invalid = || ToolError::new(format!("Invalid rule specification: {spec}"));
    let (topic, partitions) = match spec.split_once(':') {
        None => (spec, PartitionFilter::Set(Vec::new())),
        Some((topic, partitions)) => (topic, parse_partitions(partitions).ok_or_else(invalid)?),
    };
    let topic = if topic.is_empty() { ".*" } else { topic };
    Ok(Rule {
        topic: topic_regex(topic)?,
        partitions,
    })
}

fn parse_partitions(text: &str) -> Option<PartitionFilter> {
    let number = |t: &str| t.parse::<i32>().ok().filter(|n| *n >= 0);
    let all_digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    match text.split_once('-') {
        None if text.is_empty() => Some(PartitionFilter::Set(Vec::new())),
        None => number(text).map(|n| PartitionFilter::Set(vec![n])),
        Some((low, high)) if all_digits(low) && all_digits(high) => {
            let low = if low.is_empty() { 0 } else { number(low)? };
            let high = if high.is_empty() {
                i32::MAX
            } else {
                number(high)?
            };
            Some(PartitionFilter::Range(low, high))
        }
        Some(_) => None,
    }
}

fn offset_spec(time: &str) -> Result<OffsetSpec> {
    Ok(match time {
        "earliest" | "-2" => OffsetSpec::Earliest,
        "latest" | "-1" => OffsetSpec::Latest,
        "max-timestamp" => OffsetSpec::Timestamp(-3),
        other => match other.parse::<i64>() {
            Ok(ms) => OffsetSpec::Timestamp(ms),
            Err(_) => {
                return Err(ToolError::new(format!(
                    "Malformed time argument {other}. Please use -1 or latest / -2 or earliest \
                     / -3 or max-timestamp, or a specified long format timestamp"
                )))
            }
        },
    })
}

pub async fn run(args: GetOffsetsArgs) -> Result<()> {
    let rules = rules(&args)?;
    let spec = offset_spec(&args.time)?;
    let mut client = args.connection.connect("get-offsets").await?;
    let partitions = matching_partitions(&mut client, &rules, args.exclude_internal_topics).await?;
    if partitions.is_empty() {
        return Err(ToolError::new(
            "Could not match any topic-partitions with the specified filters",
        ));
    }
    for (topic, partition) in partitions {
        match client.list_offsets(&topic, partition, spec).await {
            Ok(offset) if offset >= 0 => println!("{topic}:{partition}:{offset}"),
            Ok(_) => {}
            Err(error) => eprintln!(
                "Skip getting offsets for topic-partition {topic}-{partition} due to error: \
                 {error}"
            ),
        }
    }
    Ok(())
}

/// Every (topic, partition) some rule takes, in Kafka's order (`topic-partition` text).
async fn matching_partitions(
    client: &mut Client,
    rules: &[Rule],
    exclude_internal: bool,
) -> Result<Vec<(String, i32)>> {
    let metadata = client.metadata(&[]).await?;
    let mut found = Vec::new();
    for topic in metadata.topics.iter().filter(|t| t.error.is_none()) {
        if exclude_internal && INTERNAL_TOPICS.contains(&topic.name.as_str()) {
            continue;
        }
        for p in &topic.partitions {
            let taken = rules
                .iter()
                .any(|r| r.topic.is_match(&topic.name) && r.partitions.allows(p.partition));
            if taken {
                found.push((topic.name.clone(), p.partition));
            }
        }
    }
    found.sort_by_key(|(topic, partition)| format!("{topic}-{partition}"));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_partition_rules_match_as_kafka() {
        let check = |spec: &str, topic: &str, partition: i32, expected: bool| {
            let rule = parse_rule(spec).unwrap();
            let got = rule.topic.is_match(topic) && rule.partitions.allows(partition);
            assert_eq!(got, expected, "{spec} {topic}:{partition}");
        };
        check("t1", "t1", 7, true);
        check("t1", "t10", 0, false);
        check("t.*:1", "t10", 1, true);
        check("t.*:1", "t10", 2, false);
        check("t:0-3", "t", 2, true);
        check("t:0-3", "t", 3, false);
        check("t:5-", "t", 500, true);
        check("t:-3", "t", 3, false);
        check(":2", "anything", 2, true);
        assert!(parse_rule("t:x").is_err());
        assert!(parse_rule("t:1-2-3").is_err());
        assert!(topic_regex("a,b").unwrap().is_match("b"));
    }

    #[test]
    fn times_parse_as_kafka() {
        assert_eq!(offset_spec("-1").unwrap(), OffsetSpec::Latest);
        assert_eq!(offset_spec("earliest").unwrap(), OffsetSpec::Earliest);
        assert_eq!(offset_spec("-3").unwrap(), OffsetSpec::Timestamp(-3));
        assert_eq!(
            offset_spec("max-timestamp").unwrap(),
            OffsetSpec::Timestamp(-3)
        );
        assert_eq!(
            offset_spec("1700000000000").unwrap(),
            OffsetSpec::Timestamp(1_700_000_000_000)
        );
        assert!(offset_spec("yesterday").is_err());
    }
}
