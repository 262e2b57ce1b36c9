//! `sluice reassign-partitions`: kafka-reassign-partitions (KIP-455), with its flags, files
//! and lines:
//! - `--generate --topics-to-move-json-file F --broker-list 1,2,3`: the current assignment
//!   of those topics and a proposal on the brokers listed (JSON, Kafka's format);
//! - `--execute --reassignment-json-file F [--throttle BYTES] [--additional]`: prints the
//!   current assignment (to roll back with), sets the replication throttle if asked
//!   (broker configs `leader/follower.replication.throttled.rate` on every broker involved,
//!   topic configs `leader.replication.throttled.replicas` = the current replicas of the
//!   partitions that move, `follower.replication.throttled.replicas` = the added ones), then
//!   AlterPartitionReassignments;
//! - `--verify --reassignment-json-file F [--preserve-throttles]`: each partition complete or
//!   in progress; once none is in progress, the throttles are removed, as Kafka's tool does;
//! - `--cancel --reassignment-json-file F [--preserve-throttles]`: cancels those that are
//!   in progress (their replicas revert), then removes the throttles;
//! - `--list`: the reassignments in progress.

mod json;

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::{ArgGroup, Args};
use kafka_protocol::messages::ApiKey;
use sluice_net::client::reassignments::{OngoingReassignment, ReassignmentOutcome};
use sluice_net::client::Client;
use sluice_net::client::{ConfigChange, ConfigResourceType};

use crate::client_config::ClientConfig;
use crate::connect::connect_as;
use crate::error::{Result, ToolError};
use json::Assignment;

/// Broker configs the throttle sets (Kafka's `BROKER_LEVEL_THROTTLES`, less the log-dir one).
pub const BROKER_THROTTLES: [&str; 2] = [
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
];
/// Topic configs naming the throttled replicas.
pub const TOPIC_THROTTLES: [&str; 2] = [
    "leader.replication.throttled.replicas",
    "follower.replication.throttled.replicas",
];

#[derive(Args)]
#[command(group(
    ArgGroup::new("action")
        .required(true)
        .args(["generate", "execute", "verify", "cancel", "list"])
))]
pub struct ReassignArgs {
    /// Broker(s) to bootstrap from: host:port[,host:port...].
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap_server: String,
    /// Properties file for the admin client (Kafka's --command-config).
    #[arg(long, value_name = "FILE")]
    command_config: Option<PathBuf>,
    /// Propose an assignment of --topics-to-move-json-file's topics on --broker-list.
    #[arg(long, requires_all = ["topics_to_move_json_file", "broker_list"])]
    generate: bool,
    /// Start the reassignment in --reassignment-json-file.
    #[arg(long, requires = "reassignment_json_file")]
    execute: bool,
    /// Report the reassignment in --reassignment-json-file (and remove throttles once done).
    #[arg(long, requires = "reassignment_json_file")]
    verify: bool,
    /// Cancel the reassignment in --reassignment-json-file.
    #[arg(long, requires = "reassignment_json_file")]
    cancel: bool,
    /// List the reassignments in progress.
    #[arg(long)]
    list: bool,
    /// {"topics": [{"topic": "t"}], "version": 1}
    #[arg(long, value_name = "FILE")]
    topics_to_move_json_file: Option<PathBuf>,
    /// {"version": 1, "partitions": [{"topic": "t", "partition": 0, "replicas": [1, 2]}]}
    #[arg(long, value_name = "FILE")]
    reassignment_json_file: Option<PathBuf>,
    /// The brokers --generate places replicas on: 1,2,3.
    #[arg(long, value_name = "IDS")]
    broker_list: Option<String>,
    /// With --execute: the replication throttle in bytes/s for the replicas that move.
    #[arg(long, value_name = "BYTES", default_value_t = -1, requires = "execute")]
    throttle: i64,
    /// With --execute: start even though other reassignments are in progress.
    #[arg(long, requires = "execute")]
    additional: bool,
    /// With --verify or --cancel: leave the throttles in place.
    #[arg(long)]
    preserve_throttles: bool,
    /// With --generate: place replicas without rack information.
    #[arg(long, requires = "generate")]
    disable_rack_aware: bool,
}

pub async fn run(args: ReassignArgs) -> Result<()> {
    let file = args
        .command_config
        .as_deref()
        .map(|p| (p, "--command-config"));
    let config = ClientConfig::load(file, &[], "--command-config")?;
    let settings = config.connection_settings()?;
    config.warn_unused("reassign-partitions");
    let mut client = connect_as(&args.bootstrap_server, settings.client_id.as_deref()).await?;
    if !args.generate
        && !client
            .advertises(ApiKey::AlterPartitionReassignments)
            .await?
    {
        return Err(ToolError::new(format!(
            "partition reassignment is not supported by this broker: {} does not list \
             AlterPartitionReassignments in its ApiVersions answer (a single node has no \
             other broker to move replicas to)",
            args.bootstrap_server
        )));
    }
    if args.list {
        return list(&mut client).await;
    }
    if args.generate {
        return generate(&mut client, &args).await;
    }
    let path = args
        .reassignment_json_file
        .as_ref()
        .expect("clap requires it");
    let text = crate::delete_records::read_bounded(path)?;
    let targets = json::parse_reassignment(&text)
        .map_err(|e| ToolError::new(format!("{}: {e}", path.display())))?;
    if args.execute {
        execute(&mut client, &args, &targets).await
    } else if args.verify {
        verify(&mut client, &targets, args.preserve_throttles).await
    } else {
        cancel(&mut client, &targets, args.preserve_throttles).await
    }
}

fn tp_name((topic, partition): &(String, i32)) -> String {
    format!("{topic}-{partition}")
}

/// The current replicas of every partition of `topics` (each topic once).
async fn current_assignment(client: &mut Client, topics: &[&str]) -> Result<Assignment> {
    let mut names: Vec<&str> = topics.to_vec();
    names.sort_unstable();
    names.dedup();
    let described = client.describe_topic_partitions(&names).await?;
    let mut out = Assignment::new();
    for t in described {
        if let Some(e) = t.error {
            return Err(ToolError::new(format!("Topic {}: {e:?}", t.name)));
        }
        for p in t.partitions {
            out.push(((t.name.clone(), p.partition), p.replicas));
        }
    }
    Ok(out)
}

async fn generate(client: &mut Client, args: &ReassignArgs) -> Result<()> {
    let path = args.topics_to_move_json_file.as_ref().expect("clap");
    let topics = json::parse_topics_to_move(&crate::delete_records::read_bounded(path)?)
        .map_err(|e| ToolError::new(format!("{}: {e}", path.display())))?;
    let brokers = json::parse_broker_list(args.broker_list.as_deref().expect("clap"))
        .map_err(ToolError::new)?;
    let cluster = client.describe_cluster().await?;
    if let Some(b) = brokers
        .iter()
        .find(|b| !cluster.brokers.iter().any(|c| c.id == **b))
    {
        return Err(ToolError::new(format!("Unknown broker id {b}")));
    }
    if !args.disable_rack_aware && cluster.brokers.iter().any(|b| b.rack.is_some()) {
        eprintln!("warning: rack-aware placement is not supported yet: the proposal ignores broker.rack (pass --disable-rack-aware to silence this)");
    }
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let current = current_assignment(client, &names).await?;
    for topic in &topics {
        if !current.iter().any(|((t, _), _)| t == topic) {
            return Err(ToolError::new(format!("Topic {topic} not found.")));
        }
    }
    let random = |n: usize| (uuid::Uuid::new_v4().as_u128() % n.max(1) as u128) as usize;
    let proposed = json::propose(&current, &brokers, random).map_err(ToolError::new)?;
    println!(
        "Current partition replica assignment\n{}\n",
        json::format_assignment(&current)
    );
    println!(
        "Proposed partition reassignment configuration\n{}",
        json::format_assignment(&proposed)
    );
    Ok(())
}

/// The current replicas of exactly the partitions of `targets` (Kafka: "Unable to find
/// partition" for any missing).
async fn current_of(client: &mut Client, targets: &Assignment) -> Result<Assignment> {
    let topics: Vec<&str> = targets.iter().map(|((t, _), _)| t.as_str()).collect();
    let all = current_assignment(client, &topics).await?;
    let mut out = Assignment::new();
    let mut missing = Vec::new();
    for (tp, _) in targets {
        match all.iter().find(|(c, _)| c == tp) {
            Some(found) => out.push(found.clone()),
            None => missing.push(tp_name(tp)),
        }
    }
    if !missing.is_empty() {
        return Err(ToolError::new(format!(
            "Unable to find partition: {}",
            missing.join(", ")
        )));
    }
    Ok(out)
}

async fn execute(client: &mut Client, args: &ReassignArgs, targets: &Assignment) -> Result<()> {
    let ongoing = client.list_partition_reassignments(None).await?;
    if !ongoing.is_empty() && !args.additional {
        return Err(ToolError::new(
            "Cannot execute because there is an existing partition assignment.  Use \
             --additional to override this and create a new partition assignment in addition \
             to the existing one. The --additional flag can also be used to change the \
             throttle by resubmitting the current reassignment.",
        ));
    }
    let cluster = client.describe_cluster().await?;
    let known: BTreeSet<i32> = cluster.brokers.iter().map(|b| b.id).collect();
    if let Some(b) = targets
        .iter()
        .flat_map(|(_, r)| r)
        .find(|b| !known.contains(b))
    {
        return Err(ToolError::new(format!("Unknown broker id {b}")));
    }
    let current = current_of(client, targets).await?;
    println!(
        "Current partition replica assignment\n\n{}\n\nSave this to use as the \
         --reassignment-json-file option during rollback",
        json::format_assignment(&current)
    );
    if args.throttle >= 0 {
        println!(
            "Warning: You must run --verify periodically, until the reassignment completes, \
             to ensure the throttle is removed."
        );
        set_throttles(client, &current, targets, args.throttle).await?;
        println!(
            "The inter-broker throttle limit was set to {} B/s",
            args.throttle
        );
    }
    let asks: Vec<(String, i32, Option<Vec<i32>>)> = targets
        .iter()
        .map(|((t, p), r)| (t.clone(), *p, Some(r.clone())))
        .collect();
    let outcomes = client.alter_partition_reassignments(&asks).await?;
    let errors = failures(&outcomes);
    if !errors.is_empty() {
        return Err(ToolError::new(format!(
            "Error reassigning partition(s):\n{}",
            errors.join("\n")
        )));
    }
    let mut names: Vec<String> = targets.iter().map(|(tp, _)| tp_name(tp)).collect();
    names.sort();
    let s = if names.len() == 1 { "" } else { "s" };
    println!(
        "Successfully started partition reassignment{s} for {}",
        names.join(",")
    );
    Ok(())
}

/// `topic-partition: message` of each refused partition.
fn failures(outcomes: &[ReassignmentOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .filter_map(|o| {
            let (error, message) = o.error.as_ref()?;
            let message = message.clone().unwrap_or_else(|| error.to_string());
            Some(format!("{}-{}: {message}", o.topic, o.partition))
        })
        .collect()
}

/// Kafka's `modifyReassignmentThrottle`: the rate on every broker holding or receiving a
/// replica that moves, the moving partitions' current replicas as leader-throttled and the
/// added ones as follower-throttled (`partition:broker` lists, per topic).
async fn set_throttles(
    client: &mut Client,
    current: &Assignment,
    targets: &Assignment,
    rate: i64,
) -> Result<()> {
    let moves = throttled_replicas(current, targets);
    let mut brokers = BTreeSet::new();
    for (_, (leaders, followers)) in &moves {
        brokers.extend(leaders.iter().map(|(_, b)| *b));
        brokers.extend(followers.iter().map(|(_, b)| *b));
    }
    for broker in brokers {
        let changes: Vec<ConfigChange> = BROKER_THROTTLES
            .iter()
            .map(|name| ConfigChange::Set {
                name: name.to_string(),
                value: rate.to_string(),
            })
            .collect();
        client
            .incremental_alter_configs(ConfigResourceType::Broker, &broker.to_string(), &changes)
            .await?;
    }
    for (topic, (leaders, followers)) in &moves {
        let list = |l: &[(i32, i32)]| {
            let items: Vec<String> = l.iter().map(|(p, b)| format!("{p}:{b}")).collect();
            items.join(",")
        };
        let changes = vec![
            ConfigChange::Set {
                name: TOPIC_THROTTLES[0].to_string(),
                value: list(leaders),
            },
            ConfigChange::Set {
                name: TOPIC_THROTTLES[1].to_string(),
                value: list(followers),
            },
        ];
        client
            .incremental_alter_configs(ConfigResourceType::Topic, topic, &changes)
            .await?;
    }
    Ok(())
}

/// Per topic of a partition that moves: (partition, broker) of its current replicas (the
/// leader throttle) and of its added replicas (the follower throttle).
type Throttled = Vec<(String, (Vec<(i32, i32)>, Vec<(i32, i32)>))>;

fn throttled_replicas(current: &Assignment, targets: &Assignment) -> Throttled {
    let mut out: Throttled = Vec::new();
    for ((topic, partition), target) in targets {
        let Some((_, now)) = current
            .iter()
            .find(|(tp, _)| tp.0 == *topic && tp.1 == *partition)
        else {
            continue;
        };
        if now == target {
            continue;
        }
        let at = match out.iter().position(|(t, _)| t == topic) {
            Some(at) => at,
            None => {
                out.push((topic.clone(), (Vec::new(), Vec::new())));
                out.len() - 1
            }
        };
        let (leaders, followers) = &mut out[at].1;
        leaders.extend(now.iter().map(|b| (*partition, *b)));
        followers.extend(
            target
                .iter()
                .filter(|b| !now.contains(b))
                .map(|b| (*partition, *b)),
        );
    }
    out
}

async fn verify(client: &mut Client, targets: &Assignment, preserve: bool) -> Result<()> {
    let ongoing = client.list_partition_reassignments(None).await?;
    let current = current_of(client, targets).await?;
    let mut lines = vec!["Status of partition reassignment:".to_string()];
    let mut sorted: Vec<&((String, i32), Vec<i32>)> = targets.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (tp, target) in sorted {
        let name = tp_name(tp);
        let moving = ongoing
            .iter()
            .any(|o| o.topic == tp.0 && o.partition == tp.1);
        let now = current.iter().find(|(c, _)| c == tp).map(|(_, r)| r);
        lines.push(match (moving, now) {
            (true, _) => format!("Reassignment of partition {name} is still in progress."),
            (false, Some(now)) if now == target => {
                format!("Reassignment of partition {name} is completed.")
            }
            (false, now) => format!(
                "There is no active reassignment of partition {name}, but replica set is {} rather than {}.",
                ids(now.map_or(&[][..], Vec::as_slice)),
                ids(target)
            ),
        });
    }
    println!("{}", lines.join("\n"));
    if ongoing.is_empty() && !preserve {
        clear_throttles(client, targets).await?;
    }
    Ok(())
}

fn ids(list: &[i32]) -> String {
    let items: Vec<String> = list.iter().map(i32::to_string).collect();
    items.join(",")
}

/// Kafka's `clearAllThrottles`: the rates on every broker of the cluster and of the file,
/// the replica lists on every topic of the file.
async fn clear_throttles(client: &mut Client, targets: &Assignment) -> Result<()> {
    let cluster = client.describe_cluster().await?;
    let mut brokers: BTreeSet<i32> = cluster.brokers.iter().map(|b| b.id).collect();
    brokers.extend(targets.iter().flat_map(|(_, r)| r.iter().copied()));
    let topics: BTreeSet<&str> = targets.iter().map(|((t, _), _)| t.as_str()).collect();
    let s = |n: usize| if n == 1 { "" } else { "s" };
    let list: Vec<String> = brokers.iter().map(i32::to_string).collect();
    println!(
        "Clearing broker-level throttles on broker{} {}",
        s(list.len()),
        list.join(",")
    );
    let delete = |names: &[&str]| -> Vec<ConfigChange> {
        names
            .iter()
            .map(|n| ConfigChange::Delete {
                name: n.to_string(),
            })
            .collect()
    };
    for b in &list {
        client
            .incremental_alter_configs(ConfigResourceType::Broker, b, &delete(&BROKER_THROTTLES))
            .await?;
    }
    let names: Vec<&str> = topics.iter().copied().collect();
    println!(
        "Clearing topic-level throttles on topic{} {}",
        s(names.len()),
        names.join(",")
    );
    for t in names {
        client
            .incremental_alter_configs(ConfigResourceType::Topic, t, &delete(&TOPIC_THROTTLES))
            .await?;
    }
    Ok(())
}

async fn cancel(client: &mut Client, targets: &Assignment, preserve: bool) -> Result<()> {
    let ongoing = client.list_partition_reassignments(None).await?;
    let active: Vec<(String, i32, Option<Vec<i32>>)> = targets
        .iter()
        .filter(|((t, p), _)| ongoing.iter().any(|o| o.topic == *t && o.partition == *p))
        .map(|((t, p), _)| (t.clone(), *p, None))
        .collect();
    if active.is_empty() {
        println!("None of the specified partition reassignments are active.");
    } else {
        let outcomes = client.alter_partition_reassignments(&active).await?;
        let errors = failures(&outcomes);
        let s = |n: usize| if n == 1 { "" } else { "s" };
        if !errors.is_empty() {
            return Err(ToolError::new(format!(
                "Error cancelling partition reassignment{} for:\n{}",
                s(errors.len()),
                errors.join("\n")
            )));
        }
        let mut names: Vec<String> = active.iter().map(|(t, p, _)| format!("{t}-{p}")).collect();
        names.sort();
        println!(
            "Successfully cancelled partition reassignment{} for: {}",
            s(names.len()),
            names.join(",")
        );
    }
    if !preserve {
        clear_throttles(client, targets).await?;
    }
    Ok(())
}

async fn list(client: &mut Client) -> Result<()> {
    let mut ongoing = client.list_partition_reassignments(None).await?;
    ongoing.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    println!("{}", list_text(&ongoing));
    Ok(())
}

/// Kafka's `--list` lines.
fn list_text(ongoing: &[OngoingReassignment]) -> String {
    if ongoing.is_empty() {
        return "No partition reassignments found.".into();
    }
    let lines: Vec<String> = ongoing
        .iter()
        .map(|o| {
            let adding = match o.adding_replicas.is_empty() {
                true => String::new(),
                false => format!(" adding: {}.", ids(&o.adding_replicas)),
            };
            let removing = match o.removing_replicas.is_empty() {
                true => String::new(),
                false => format!(" removing: {}.", ids(&o.removing_replicas)),
            };
            format!(
                "{}-{}: replicas: {}.{adding}{removing}",
                o.topic,
                o.partition,
                ids(&o.replicas)
            )
        })
        .collect();
    format!("Current partition reassignments:\n{}", lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_lines_are_kafkas() {
        assert_eq!(list_text(&[]), "No partition reassignments found.");
        let o = OngoingReassignment {
            topic: "t".into(),
            partition: 0,
            replicas: vec![2, 3, 1],
            adding_replicas: vec![3],
            removing_replicas: vec![1],
        };
        assert_eq!(
            list_text(&[o]),
            "Current partition reassignments:\nt-0: replicas: 2,3,1. adding: 3. removing: 1."
        );
    }

    #[test]
    fn only_moving_partitions_are_throttled() {
        let current = vec![(("t".into(), 0), vec![1, 2]), (("t".into(), 1), vec![2, 3])];
        let targets = vec![(("t".into(), 0), vec![2, 3]), (("t".into(), 1), vec![2, 3])];
        let moves = throttled_replicas(&current, &targets);
        assert_eq!(
            moves,
            vec![("t".to_string(), (vec![(0, 1), (0, 2)], vec![(0, 3)]))]
        );
    }
}
