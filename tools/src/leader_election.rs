//! `sluice leader-election --election-type PREFERRED|UNCLEAN (--topic T --partition P |
//! --all-topic-partitions | --path-to-json-file F)`: kafka-leader-election, with its output
//! (`LeaderElectionCommand`) and its JSON file (`{"partitions": [{"topic": "t", "partition":
//! 0}]}`). Partitions that needed no election are "Valid replica already elected"; any other
//! error is printed per partition and the command fails.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{ArgGroup, Args};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use serde_json::Value;
use sluice_net::client::cluster::ElectionOutcome;

use crate::client_config::ClientConfig;
use crate::connect::connect_as;
use crate::error::{Result, ToolError};

#[derive(Args)]
#[command(group(
    ArgGroup::new("which")
        .required(true)
        .args(["topic", "all_topic_partitions", "path_to_json_file"])
))]
pub struct LeaderElectionArgs {
    /// Broker(s) to bootstrap from: host:port[,host:port...].
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap_server: String,
    /// Properties file for the admin client (Kafka's --admin.config).
    #[arg(long = "admin.config", value_name = "FILE")]
    admin_config: Option<PathBuf>,
    /// PREFERRED or UNCLEAN (any case).
    #[arg(long, value_name = "TYPE", value_parser = parse_election_type)]
    election_type: ElectionKind,
    /// The topic whose partition (--partition) gets an election.
    #[arg(long, requires = "partition")]
    topic: Option<String>,
    /// The partition of --topic.
    #[arg(long, requires = "topic")]
    partition: Option<i32>,
    /// Every partition of every topic.
    #[arg(long)]
    all_topic_partitions: bool,
    /// Kafka's JSON: {"partitions": [{"topic": "t", "partition": 0}, ...]}
    #[arg(long, value_name = "FILE")]
    path_to_json_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ElectionKind {
    Preferred,
    Unclean,
}

impl ElectionKind {
    /// Kafka's `ElectionType` code.
    fn code(self) -> i8 {
        match self {
            ElectionKind::Preferred => 0,
            ElectionKind::Unclean => 1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ElectionKind::Preferred => "PREFERRED",
            ElectionKind::Unclean => "UNCLEAN",
        }
    }
}

fn parse_election_type(value: &str) -> std::result::Result<ElectionKind, String> {
    match value.to_ascii_uppercase().as_str() {
        "PREFERRED" => Ok(ElectionKind::Preferred),
        "UNCLEAN" => Ok(ElectionKind::Unclean),
        _ => Err(format!("{value:?} is not PREFERRED or UNCLEAN")),
    }
}

pub async fn run(args: LeaderElectionArgs) -> Result<()> {
    let partitions = selection(&args)?;
    let file = args.admin_config.as_deref().map(|p| (p, "--admin.config"));
    let config = ClientConfig::load(file, &[], "--admin.config")?;
    let settings = config.connection_settings()?;
    config.warn_unused("leader-election");
    let mut client = connect_as(&args.bootstrap_server, settings.client_id.as_deref()).await?;
    if !client.advertises(ApiKey::ElectLeaders).await? {
        return Err(ToolError::new(format!(
            "leader elections are not supported by this broker: {} does not list ElectLeaders \
             in its ApiVersions answer",
            args.bootstrap_server
        )));
    }
    let outcomes = client
        .elect_leaders(args.election_type.code(), partitions.as_deref())
        .await?;
    let (text, failed) = report(args.election_type, &outcomes);
    print!("{text}");
    match failed {
        0 => Ok(()),
        n => Err(ToolError::new(format!(
            "{n} replica(s) could not be elected"
        ))),
    }
}

/// Partitions per topic, in the order asked.
type Selection = Vec<(String, Vec<i32>)>;

/// The partitions asked for; `None`: all.
fn selection(args: &LeaderElectionArgs) -> Result<Option<Selection>> {
    if args.all_topic_partitions {
        return Ok(None);
    }
    if let (Some(topic), Some(partition)) = (&args.topic, args.partition) {
        return Ok(Some(vec![(topic.clone(), vec![partition])]));
    }
    let path = args.path_to_json_file.as_ref().expect("clap requires one");
    let text = crate::delete_records::read_bounded(path)?;
    let parsed = parse_partitions_json(&text)
        .map_err(|reason| ToolError::new(format!("{}: {reason}", path.display())))?;
    Ok(Some(parsed))
}

/// Kafka's election JSON; a partition listed twice is refused, as Kafka refuses it.
fn parse_partitions_json(text: &str) -> std::result::Result<Selection, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let list = value
        .get("partitions")
        .and_then(Value::as_array)
        .ok_or("expected {\"partitions\": [{\"topic\": ..., \"partition\": ...}, ...]}")?;
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for entry in list {
        let topic = entry.get("topic").and_then(Value::as_str);
        let partition = entry
            .get("partition")
            .and_then(Value::as_i64)
            .and_then(|p| i32::try_from(p).ok());
        let (Some(topic), Some(partition)) = (topic, partition) else {
            return Err(format!(
                "{entry} needs a string \"topic\" and an integer \"partition\""
            ));
        };
        let partitions = by_topic.entry(topic.to_string()).or_default();
        if partitions.contains(&partition) {
            return Err(format!(
                "Replica election data contains duplicate partitions: {topic}-{partition}"
            ));
        }
        partitions.push(partition);
    }
    Ok(by_topic.into_iter().collect())
}

/// Kafka's lines, partitions sorted; and how many failed.
fn report(kind: ElectionKind, outcomes: &[ElectionOutcome]) -> (String, usize) {
    let mut outcomes: Vec<&ElectionOutcome> = outcomes.iter().collect();
    outcomes.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let name = |o: &ElectionOutcome| format!("{}-{}", o.topic, o.partition);
    let elected: Vec<String> = outcomes
        .iter()
        .filter(|o| o.error.is_none())
        .map(|o| name(o))
        .collect();
    let noop: Vec<String> = outcomes
        .iter()
        .filter(|o| matches!(o.error, Some((ResponseError::ElectionNotNeeded, _))))
        .map(|o| name(o))
        .collect();
    let mut text = String::new();
    if !elected.is_empty() {
        text.push_str(&format!(
            "Successfully completed leader election ({}) for partitions {}\n",
            kind.name(),
            elected.join(", ")
        ));
    }
    if !noop.is_empty() {
        text.push_str(&format!(
            "Valid replica already elected for partitions {}\n",
            noop.join(", ")
        ));
    }
    let mut failed = 0;
    for o in &outcomes {
        let Some((error, message)) = &o.error else {
            continue;
        };
        if *error == ResponseError::ElectionNotNeeded {
            continue;
        }
        failed += 1;
        let message = message.clone().unwrap_or_else(|| error.to_string());
        text.push_str(&format!(
            "Error completing leader election ({}) for partition: {}: {error:?}: {message}\n",
            kind.name(),
            name(o)
        ));
    }
    (text, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_file_is_kafkas() {
        let parsed = parse_partitions_json(
            r#"{"partitions": [{"topic": "b", "partition": 1}, {"topic": "a", "partition": 0}, {"topic": "b", "partition": 0}]}"#,
        )
        .unwrap();
        assert_eq!(
            parsed,
            vec![("a".into(), vec![0]), ("b".into(), vec![1, 0])]
        );
        let dup =
            r#"{"partitions": [{"topic": "a", "partition": 0}, {"topic": "a", "partition": 0}]}"#;
        assert!(parse_partitions_json(dup)
            .unwrap_err()
            .contains("duplicate partitions: a-0"));
        assert!(parse_partitions_json(r#"{"partitions": [{"topic": 1}]}"#).is_err());
        assert!(parse_partitions_json("[]").is_err());
    }

    #[test]
    fn report_lines_are_kafkas() {
        let outcome = |topic: &str, partition, error| ElectionOutcome {
            topic: topic.into(),
            partition,
            error,
        };
        let outcomes = [
            outcome("t", 1, None),
            outcome("t", 0, None),
            outcome("t", 2, Some((ResponseError::ElectionNotNeeded, None))),
            outcome(
                "u",
                0,
                Some((
                    ResponseError::PreferredLeaderNotAvailable,
                    Some("The preferred leader was not available.".into()),
                )),
            ),
        ];
        let (text, failed) = report(ElectionKind::Preferred, &outcomes);
        assert_eq!(failed, 1);
        assert_eq!(
            text,
            "Successfully completed leader election (PREFERRED) for partitions t-0, t-1\n\
             Valid replica already elected for partitions t-2\n\
             Error completing leader election (PREFERRED) for partition: u-0: PreferredLeaderNotAvailable: The preferred leader was not available.\n"
        );
    }
}
