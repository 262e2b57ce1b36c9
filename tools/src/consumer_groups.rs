//! `sluice consumer-groups`: kafka-consumer-groups' flags and output.
//!
//! - `--list`: ListGroups on every broker.
//! - `--describe --group G`: DescribeGroups (members and their decoded assignments),
//!   OffsetFetch (committed offsets), ListOffsets latest (log end offsets), printed as
//!   Kafka's `GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST
//!   CLIENT-ID` table.
//! - `--reset-offsets --group G --topic T[:P,P…] --to-earliest|--to-latest|--to-offset N|
//!   --to-current|--shift-by N|--to-datetime DT|--by-duration D [--dry-run|--execute]`: only
//!   while the group is inactive (Empty or Dead); commits as an admin (generation -1, no
//!   member id) only with `--execute`. New offsets are clamped to each partition's
//!   earliest..=latest, with Kafka's warnings.
//! - `--delete --group G`: DeleteGroups.

use clap::{ArgGroup, Args};
use kafka_protocol::error::ResponseError;
use sluice_net::client::{Client, CommittedOffset, Committer, GroupDescription, OffsetSpec};

mod tables;

use crate::connect::AdminConnection;
use crate::error::{Result, ToolError};

#[derive(Args)]
#[command(group(
    ArgGroup::new("action")
        .required(true)
        .args(["list", "describe", "reset_offsets", "delete"])
))]
#[command(group(ArgGroup::new("reset_to").args([
    "to_earliest",
    "to_latest",
    "to_offset",
    "to_current",
    "shift_by",
    "to_datetime",
    "by_duration",
    "from_file",
])))]
#[command(group(ArgGroup::new("reset_mode").args(["dry_run", "execute"])))]
pub struct GroupsArgs {
    #[command(flatten)]
    connection: AdminConnection,
    /// List the groups.
    #[arg(long)]
    list: bool,
    /// Describe the group(s): offsets, lag and members, or --members / --state.
    #[arg(long)]
    describe: bool,
    /// Reset the group's offsets of --topic or --all-topics (the group must be inactive).
    #[arg(long)]
    reset_offsets: bool,
    /// Delete the group(s) (they must have no members).
    #[arg(long)]
    delete: bool,
    /// The group.
    #[arg(long, conflicts_with = "all_groups")]
    group: Option<String>,
    /// Every group (with --describe, --reset-offsets or --delete).
    #[arg(long)]
    all_groups: bool,
    /// With --describe: committed offsets, log end offsets and lag (what --describe prints
    /// without --members or --state).
    #[arg(long, conflicts_with_all = ["members", "state"], requires = "describe")]
    offsets: bool,
    /// With --describe: each member and how many partitions it holds.
    #[arg(long, conflicts_with = "state", requires = "describe")]
    members: bool,
    /// With --describe: the group's coordinator, assignor, state and member count. With
    /// --list: each group's state, or only groups in these states (Stable,Empty,...).
    #[arg(long, value_name = "STATES", num_args = 0..=1, default_missing_value = "")]
    state: Option<String>,
    /// With --describe --members: each member's partitions too.
    #[arg(long, requires = "members")]
    verbose: bool,
    /// With --reset-offsets: TOPIC, or TOPIC:P,P,... for some partitions.
    #[arg(long, value_name = "TOPIC[:PARTITIONS]", conflicts_with = "all_topics")]
    topic: Option<String>,
    /// With --reset-offsets: every topic the group has committed offsets for.
    #[arg(long)]
    all_topics: bool,
    /// Reset to the earliest offset.
    #[arg(long)]
    to_earliest: bool,
    /// Reset to the latest offset (the log end).
    #[arg(long)]
    to_latest: bool,
    /// Reset to this offset (clamped to the partition's earliest..=latest).
    #[arg(long, value_name = "N")]
    to_offset: Option<i64>,
    /// Reset to the committed offset (the log end where nothing is committed).
    #[arg(long)]
    to_current: bool,
    /// Move the committed offset by N (negative: back).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    shift_by: Option<i64>,
    /// Reset to the first offset at or after this time: 'YYYY-MM-DDTHH:mm:SS.sss' (UTC
    /// unless followed by an offset like +02:00).
    #[arg(long, value_name = "DATETIME")]
    to_datetime: Option<String>,
    /// Reset to the first offset at or after now minus this ISO-8601 duration ('PnDTnHnMnS').
    #[arg(long, value_name = "DURATION")]
    by_duration: Option<String>,
    /// Reset to the offsets in this CSV file: topic,partition,offset lines (with a group
    /// column first when it names several groups), as --export writes them.
    #[arg(long, value_name = "FILE")]
    from_file: Option<std::path::PathBuf>,
    /// With --reset-offsets: print the new offsets as CSV (topic,partition,offset; with
    /// the group first for --all-groups) instead of the table, for --from-file later.
    #[arg(long, requires = "reset_offsets")]
    export: bool,
    /// Print the new offsets without committing them (the default).
    #[arg(long)]
    dry_run: bool,
    /// Commit the new offsets.
    #[arg(long)]
    execute: bool,
}

pub async fn run(args: GroupsArgs) -> Result<()> {
    let mut client = args.connection.connect("consumer-groups").await?;
    if args.list {
        return list(&mut client, args.state.as_deref()).await;
    }
    if args.state.is_some() && !args.describe {
        return Err(ToolError::new(
            "--state goes with --describe (one group's state) or --list (every group's)",
        ));
    }
    let groups = match (&args.group, args.all_groups) {
        (Some(group), _) => vec![group.clone()],
        (None, true) => client
            .list_groups()
            .await?
            .into_iter()
            .map(|g| g.group_id)
            .collect(),
        (None, false) => {
            return Err(ToolError::new(
                "this action needs --group GROUP or --all-groups",
            ))
        }
    };
    if args.delete {
        return delete(&mut client, &groups).await;
    }
    let mut failed = 0;
    for group in &groups {
        let done = match args.describe {
            true => describe(&mut client, group, &args).await,
            false => reset_offsets(&mut client, group, &args).await,
        };
        match done {
            // One group's trouble does not stop the others (as Kafka's tool).
            Err(e) if args.all_groups => {
                eprintln!("\n{e}");
                failed += 1;
            }
            other => other?,
        }
    }
    if args.export {
        // Kafka prints the CSV with println: one empty line after it.
        println!();
    }
    match failed {
        0 => Ok(()),
        n => Err(ToolError::new(format!(
            "{n} of {} groups could not be handled (see above)",
            groups.len()
        ))),
    }
}

/// Kafka's group states, as `--list --state` names them.
const GROUP_STATES: [&str; 6] = [
    "PreparingRebalance",
    "CompletingRebalance",
    "Stable",
    "Dead",
    "Empty",
    "Unknown",
];

/// `--list`, and with `--state` each group's state (or only those in the given states),
/// as Kafka's `GROUP STATE` table.
async fn list(client: &mut Client, states: Option<&str>) -> Result<()> {
    let groups = client.list_groups().await?;
    let Some(states) = states else {
        for group in groups {
            println!("{}", group.group_id);
        }
        return Ok(());
    };
    let wanted = parse_states(states)?;
    let mut rows = Vec::with_capacity(groups.len());
    for group in groups {
        let state = match group.state.as_str() {
            // ListGroups before v4 has no states: ask the coordinator.
            "" => client.describe_group(&group.group_id).await?.state,
            known => known.to_string(),
        };
        if wanted.is_empty() || wanted.contains(&state.as_str()) {
            rows.push((group.group_id, state));
        }
    }
    print!("{}", state_list(&rows));
    Ok(())
}

/// `Stable,empty` → Kafka's state names (case-insensitive); empty for "every state".
fn parse_states(text: &str) -> Result<Vec<&'static str>> {
    let mut states = Vec::new();
    for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some(state) = GROUP_STATES.iter().find(|s| s.eq_ignore_ascii_case(name)) else {
            return Err(ToolError::new(format!(
                "Invalid state list '{text}'. Valid states are: {}",
                GROUP_STATES.join(", ")
            )));
        };
        states.push(*state);
    }
    Ok(states)
}

/// Kafka's `--list --state` table: the group column as wide as the longest id (15 at
/// least), one space, the state.
fn state_list(rows: &[(String, String)]) -> String {
    let width = rows.iter().map(|(g, _)| g.len()).max().unwrap_or(0).max(15);
    let mut text = format!("{:<width$} STATE\n", "GROUP");
    for (group, state) in rows {
        text.push_str(&format!("{group:<width$} {state}\n"));
    }
    text
}

/// One line of the `--describe` table; `None` prints as `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    topic: String,
    partition: i32,
    current: Option<i64>,
    log_end: Option<i64>,
    member: Option<(String, String, String)>,
}

async fn describe(client: &mut Client, group: &str, args: &GroupsArgs) -> Result<()> {
    let description = client.describe_group(group).await?;
    let committed = client.offset_fetch(group, None).await?;
    if description.state == "Dead" && committed.is_empty() {
        return Err(ToolError::new(format!(
            "Consumer group '{group}' does not exist."
        )));
    }
    if args.state.is_some() {
        let (id, address) = client.group_coordinator(group).await?;
        print!(
            "{}",
            tables::state(&description, &format!("{address} ({id})"))
        );
        return Ok(());
    }
    if args.members {
        print!("{}", tables::members(&description, args.verbose));
        return Ok(());
    }
    let mut rows = rows(&description, &committed);
    for row in &mut rows {
        let leo = client
            .list_offsets(&row.topic, row.partition, OffsetSpec::Latest)
            .await;
        row.log_end = leo.ok();
    }
    match description.state.as_str() {
        "PreparingRebalance" | "CompletingRebalance" => {
            println!("\nWarning: Consumer group '{group}' is rebalancing.")
        }
        _ if description.members.is_empty() => {
            println!("\nConsumer group '{group}' has no active members.")
        }
        _ => {}
    }
    print!("{}", describe_table(group, &rows));
    Ok(())
}

/// The offset committed for `topic`-`partition`, if any.
fn committed_offset(committed: &[CommittedOffset], topic: &str, partition: i32) -> Option<i64> {
    committed
        .iter()
        .find(|c| c.topic == topic && c.partition == partition && c.offset >= 0)
        .map(|c| c.offset)
}

/// Assigned partitions (with their member) and committed-but-unassigned ones, sorted by
/// topic and partition.
fn rows(description: &GroupDescription, committed: &[CommittedOffset]) -> Vec<Row> {
    let current = |topic: &str, partition: i32| committed_offset(committed, topic, partition);
    let mut rows = Vec::new();
    for m in &description.members {
        let member = (
            m.member_id.clone(),
            m.client_host.clone(),
            m.client_id.clone(),
        );
        for (topic, partitions) in &m.assignment {
            for &partition in partitions {
                rows.push(Row {
                    topic: topic.clone(),
                    partition,
                    current: current(topic, partition),
                    log_end: None,
                    member: Some(member.clone()),
                });
            }
        }
    }
    for c in committed.iter().filter(|c| c.offset >= 0) {
        if !rows
            .iter()
            .any(|r| r.topic == c.topic && r.partition == c.partition)
        {
            rows.push(Row {
                topic: c.topic.clone(),
                partition: c.partition,
                current: Some(c.offset),
                log_end: None,
                member: None,
            });
        }
    }
    rows.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    rows
}

/// Kafka's describe table: a blank line, the header, one line per row.
fn describe_table(group: &str, rows: &[Row]) -> String {
    let dash = || "-".to_string();
    let cells: Vec<[String; 9]> = rows
        .iter()
        .map(|r| {
            let (id, host, client) = r.member.clone().unwrap_or_else(|| (dash(), dash(), dash()));
            let lag = match (r.current, r.log_end) {
                (Some(current), Some(end)) => (end - current).max(0).to_string(),
                _ => dash(),
            };
            let opt = |v: Option<i64>| v.map_or_else(dash, |v| v.to_string());
            let (current, end) = (opt(r.current), opt(r.log_end));
            let partition = r.partition.to_string();
            [
                group.to_string(),
                r.topic.clone(),
                partition,
                current,
                end,
                lag,
                id,
                host,
                client,
            ]
        })
        .collect();
    let header = [
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ];
    let cells: Vec<Vec<String>> = cells.into_iter().map(Vec::from).collect();
    tables::render(&header, &[15, 15, 10, 15, 15, 15, 15, 15, 0], &cells)
}

/// `TOPIC` or `TOPIC:P,P,…`.
fn parse_topic(spec: &str) -> Result<(String, Option<Vec<i32>>)> {
    let Some((topic, partitions)) = spec.split_once(':') else {
        return Ok((spec.to_string(), None));
    };
    let partitions = partitions
        .split(',')
        .map(|p| {
            p.trim().parse::<i32>().map_err(|_| {
                ToolError::new(format!("--topic {spec:?}: expected TOPIC or TOPIC:P,P,..."))
            })
        })
        .collect::<Result<Vec<i32>>>()?;
    Ok((topic.to_string(), Some(partitions)))
}

async fn reset_offsets(client: &mut Client, group: &str, args: &GroupsArgs) -> Result<()> {
    let to = match &args.from_file {
        Some(_) => None,
        None => Some(ResetTo::from_args(args)?),
    };
    let description = client.describe_group(group).await?;
    if !matches!(description.state.as_str(), "Empty" | "Dead") {
        return Err(ToolError::new(format!(
            "Assignments can only be reset if the group '{group}' is inactive, but the current \
             state is {}. Stop its consumers first.",
            description.state
        )));
    }
    let mut offsets = match (&args.from_file, to) {
        (Some(path), _) => offsets_from_file(client, group, path, args.all_groups).await?,
        (None, Some(to)) => {
            let committed = client.offset_fetch(group, None).await?;
            let mut offsets = Vec::new();
            for (topic, partitions) in reset_targets(client, args, &committed).await? {
                for partition in partitions {
                    let current = committed_offset(&committed, &topic, partition);
                    let offset = new_offset(client, (&topic, partition), &to, current).await?;
                    offsets.push(CommittedOffset {
                        topic: topic.clone(),
                        partition,
                        offset,
                    });
                }
            }
            offsets
        }
        (None, None) => unreachable!("ResetTo::from_args refuses a reset without a target"),
    };
    offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    if !args.execute && !args.dry_run {
        eprintln!(
            "WARN: No action will be performed as the --execute option is missing. Add \
             --execute to commit these offsets, or --dry-run to say that printing them is all \
             you want."
        );
    }
    if args.execute {
        client
            .offset_commit(group, &Committer::ADMIN, &offsets)
            .await?;
    }
    if args.export {
        print!("{}", export_csv(group, args.all_groups, &offsets));
        return Ok(());
    }
    println!(
        "\n{:<30} {:<30} {:<10} {:<15}",
        "GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"
    );
    for o in &offsets {
        println!(
            "{group:<30} {:<30} {:<10} {:<15}",
            o.topic, o.partition, o.offset
        );
    }
    Ok(())
}

/// Kafka's `--export` CSV: `topic,partition,offset` lines, with the group first when more
/// than one group is reset.
fn export_csv(group: &str, with_group: bool, offsets: &[CommittedOffset]) -> String {
    let mut text = String::new();
    for o in offsets {
        if with_group {
            text.push_str(&format!("{group},"));
        }
        text.push_str(&format!("{},{},{}\n", o.topic, o.partition, o.offset));
    }
    text
}

/// `--from-file`: the offsets the CSV names for `group` (its `topic,partition,offset` lines,
/// or the lines of `group,topic,partition,offset` whose group is this one), each clamped
/// to the partition's earliest..=latest as Kafka does.
async fn offsets_from_file(
    client: &mut Client,
    group: &str,
    path: &std::path::Path,
    all_groups: bool,
) -> Result<Vec<CommittedOffset>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ToolError::new(format!("--from-file {}: {e}", path.display())))?;
    let planned = parse_reset_plan(&text, group, all_groups)
        .map_err(|reason| ToolError::new(format!("--from-file {}: {reason}", path.display())))?;
    let mut offsets = Vec::with_capacity(planned.len());
    for o in planned {
        let to = ResetTo::Offset(o.offset);
        let offset = new_offset(client, (&o.topic, o.partition), &to, None).await?;
        offsets.push(CommittedOffset { offset, ..o });
    }
    Ok(offsets)
}

/// Kafka's reset plan CSV: `topic,partition,offset` (one group) or
/// `group,topic,partition,offset` lines.
fn parse_reset_plan(
    text: &str,
    group: &str,
    all_groups: bool,
) -> std::result::Result<Vec<CommittedOffset>, String> {
    let mut offsets = Vec::new();
    for (number, line) in text.lines().enumerate().map(|(n, l)| (n + 1, l.trim())) {
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let (line_group, rest) = match fields.as_slice() {
            [topic, partition, offset] if !all_groups => (group, [*topic, *partition, *offset]),
            [g, topic, partition, offset] => (*g, [*topic, *partition, *offset]),
            _ => {
                return Err(format!(
                    "line {number} {line:?}: expected topic,partition,offset (or \
                     group,topic,partition,offset)"
                ))
            }
        };
        if line_group != group {
            continue;
        }
        let [topic, partition, offset] = rest;
        let bad = || format!("line {number} {line:?}: partition and offset must be numbers");
        offsets.push(CommittedOffset {
            topic: topic.to_string(),
            partition: partition.parse().map_err(|_| bad())?,
            offset: offset.parse().map_err(|_| bad())?,
        });
    }
    Ok(offsets)
}

/// The (topic, partitions) `--reset-offsets` works on: `--topic T[:P,…]` (every partition
/// of T without a list), or with `--all-topics` every committed partition of the group.
async fn reset_targets(
    client: &mut Client,
    args: &GroupsArgs,
    committed: &[CommittedOffset],
) -> Result<Vec<(String, Vec<i32>)>> {
    if args.all_topics {
        let mut targets: Vec<(String, Vec<i32>)> = Vec::new();
        for c in committed.iter().filter(|c| c.offset >= 0) {
            match targets.iter_mut().find(|(t, _)| *t == c.topic) {
                Some((_, partitions)) => partitions.push(c.partition),
                None => targets.push((c.topic.clone(), vec![c.partition])),
            }
        }
        return Ok(targets);
    }
    let spec = args.topic.as_deref().ok_or_else(|| {
        ToolError::new("--reset-offsets needs --topic TOPIC (or TOPIC:P,P,...) or --all-topics")
    })?;
    let (topic, partitions) = parse_topic(spec)?;
    let partitions = match partitions {
        Some(p) => p,
        None => client
            .topic(&topic)
            .await?
            .partitions
            .iter()
            .map(|p| p.partition)
            .collect(),
    };
    Ok(vec![(topic, partitions)])
}

/// Where `--reset-offsets` moves each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResetTo {
    Earliest,
    Latest,
    Offset(i64),
    /// The committed offset; the log end where nothing is committed.
    Current,
    /// The committed offset moved by this much (an error where nothing is committed).
    ShiftBy(i64),
    /// The first offset whose timestamp is at least this (ms since the epoch); the log end
    /// if there is none.
    Timestamp(i64),
}

impl ResetTo {
    fn from_args(args: &GroupsArgs) -> Result<ResetTo> {
        Ok(if args.to_earliest {
            ResetTo::Earliest
        } else if args.to_latest {
            ResetTo::Latest
        } else if let Some(n) = args.to_offset {
            ResetTo::Offset(n)
        } else if args.to_current {
            ResetTo::Current
        } else if let Some(n) = args.shift_by {
            ResetTo::ShiftBy(n)
        } else if let Some(text) = &args.to_datetime {
            ResetTo::Timestamp(crate::reset_time::parse_datetime(text)?)
        } else if let Some(text) = &args.by_duration {
            let back = crate::reset_time::parse_duration(text)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            ResetTo::Timestamp(now - back)
        } else {
            return Err(ToolError::new(
                "--reset-offsets needs one of --to-earliest, --to-latest, --to-offset N, \
                 --to-current, --shift-by N, --to-datetime DATETIME, --by-duration DURATION, \
                 --from-file FILE",
            ));
        })
    }
}

/// The offset `to` asks for, clamped to the partition's earliest..=latest as Kafka does.
async fn new_offset(
    client: &mut Client,
    (topic, partition): (&str, i32),
    to: &ResetTo,
    committed: Option<i64>,
) -> Result<i64> {
    let earliest = client
        .list_offsets(topic, partition, OffsetSpec::Earliest)
        .await?;
    let latest = client
        .list_offsets(topic, partition, OffsetSpec::Latest)
        .await?;
    let wanted = match *to {
        ResetTo::Earliest => return Ok(earliest),
        ResetTo::Latest => return Ok(latest),
        ResetTo::Offset(n) => n,
        // Kafka does not clamp the current offset.
        ResetTo::Current => return Ok(committed.unwrap_or(latest)),
        ResetTo::ShiftBy(n) => committed
            .ok_or_else(|| {
                ToolError::new(format!(
                    "Cannot shift offset for partition {topic}-{partition} since there is no \
                     current committed offset"
                ))
            })?
            .saturating_add(n),
        ResetTo::Timestamp(ms) => {
            let found = client
                .list_offsets(topic, partition, OffsetSpec::Timestamp(ms))
                .await?;
            if found < 0 {
                eprintln!(
                    "WARN: Partition {partition} from topic {topic} is empty. Falling back to \
                     latest known offset."
                );
                return Ok(latest);
            }
            return Ok(found);
        }
    };
    Ok(clamp_offset(wanted, (earliest, latest), (topic, partition)))
}

/// `wanted` within `earliest..=latest`, saying so when it moves (Kafka's warnings).
fn clamp_offset(
    wanted: i64,
    (earliest, latest): (i64, i64),
    (topic, partition): (&str, i32),
) -> i64 {
    if wanted > latest {
        eprintln!(
            "WARN: New offset ({wanted}) is higher than latest offset for topic partition \
             {topic}-{partition}. Value will be set to {latest}"
        );
        return latest;
    }
    if wanted < earliest {
        eprintln!(
            "WARN: New offset ({wanted}) is lower than earliest offset for topic partition \
             {topic}-{partition}. Value will be set to {earliest}"
        );
        return earliest;
    }
    wanted
}

/// DeleteGroups for each group; Kafka's messages for what succeeded and what failed.
async fn delete(client: &mut Client, groups: &[String]) -> Result<()> {
    let mut deleted = Vec::new();
    let mut failed = Vec::new();
    for group in groups {
        match client.delete_group(group).await {
            Ok(()) => deleted.push(format!("'{group}'")),
            Err(error) => {
                let reason = match error.kafka_error() {
                    Some(ResponseError::NonEmptyGroup) => "The group is not empty.".to_string(),
                    Some(ResponseError::GroupIdNotFound) => {
                        "The group id does not exist.".to_string()
                    }
                    _ => error.to_string(),
                };
                failed.push(format!(
                    "* Group '{group}' could not be deleted due to: {reason}"
                ));
            }
        }
    }
    if failed.is_empty() {
        println!(
            "Deletion of requested consumer groups ({}) was successful.",
            deleted.join(", ")
        );
        return Ok(());
    }
    if !deleted.is_empty() {
        println!(
            "These consumer groups were deleted successfully: {}",
            deleted.join(", ")
        );
    }
    Err(ToolError::new(format!(
        "Deletion of some consumer groups failed:\n{}",
        failed.join("\n")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_net::client::GroupMemberDescription;

    #[test]
    fn describe_rows_join_members_and_commits() {
        let member = GroupMemberDescription {
            member_id: "m-1".into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            assignment: [("t".to_string(), vec![1])].into_iter().collect(),
        };
        let description = GroupDescription {
            group_id: "g".into(),
            state: "Stable".into(),
            protocol_type: "consumer".into(),
            protocol: "range".into(),
            members: vec![member],
        };
        let committed = [
            CommittedOffset {
                topic: "t".into(),
                partition: 0,
                offset: 3,
            },
            CommittedOffset {
                topic: "t".into(),
                partition: 1,
                offset: 5,
            },
        ];
        let mut rows = rows(&description, &committed);
        for row in &mut rows {
            row.log_end = Some(9);
        }
        let table = describe_table("g", &rows);
        let lines: Vec<Vec<&str>> = table
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines[0], Vec::<&str>::new());
        assert_eq!(lines[1].len(), 9);
        assert_eq!(lines[2], ["g", "t", "0", "3", "9", "6", "-", "-", "-"]);
        assert_eq!(
            lines[3],
            ["g", "t", "1", "5", "9", "4", "m-1", "/127.0.0.1", "c"]
        );
    }

    #[test]
    fn reset_plans_and_exports_are_kafka_csv() {
        let plan = parse_reset_plan("t,0,5\nt,1,7\n\n", "g", false).unwrap();
        assert_eq!(plan.len(), 2);
        assert_eq!((plan[1].partition, plan[1].offset), (1, 7));
        let csv = export_csv("g", false, &plan);
        assert_eq!(csv, "t,0,5\nt,1,7\n");
        assert_eq!(parse_reset_plan(&csv, "g", false).unwrap(), plan);
        let grouped = export_csv("g", true, &plan);
        assert_eq!(grouped, "g,t,0,5\ng,t,1,7\n");
        assert_eq!(parse_reset_plan(&grouped, "g", true).unwrap(), plan);
        assert!(parse_reset_plan(&grouped, "other", true)
            .unwrap()
            .is_empty());
        assert!(parse_reset_plan("t,0,5\n", "g", true).is_err());
        assert!(parse_reset_plan("t,x,5\n", "g", false).is_err());
    }

    #[test]
    fn list_states_parse_and_print_as_kafka() {
        assert_eq!(parse_states("stable,EMPTY").unwrap(), ["Stable", "Empty"]);
        assert!(parse_states("").unwrap().is_empty());
        assert!(parse_states("asleep").is_err());
        let rows = [("g1".to_string(), "Stable".to_string())];
        assert_eq!(
            state_list(&rows),
            "GROUP           STATE\ng1              Stable\n"
        );
    }

    #[test]
    fn topic_specs() {
        assert_eq!(parse_topic("t").unwrap(), ("t".into(), None));
        assert_eq!(
            parse_topic("t:0,2").unwrap(),
            ("t".into(), Some(vec![0, 2]))
        );
        assert!(parse_topic("t:x").is_err());
    }
}
