//! `sluice metadata-quorum` (kafka-metadata-quorum): `describe --status|--replication`
//! prints the quorum as Kafka's tool does (`MetadataQuorumCommand`: the status summary, or the
//! replication table of the leader, its followers and the observers), from DescribeQuorum and
//! DescribeCluster. `add-controller` and `remove-controller` replace a voter of the metadata quorum, e.g. after its disk was wiped
//! and re-formatted (a voter is a node id and a metadata directory id, KIP-853). They send
//! Kafka's AddRaftVoter / RemoveRaftVoter to `--bootstrap-server`, which forwards them to the
//! quorum's leader. `add-controller` reads the new controller's own server.properties
//! (`--command-config`, as Kafka's tool does): its `node.id`, its metadata dir's
//! `meta.properties` (cluster id and `directory.id`) and its controller listener.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use sluice_engine::ids::{kafka_uuid_string, parse_kafka_uuid};
use sluice_engine::logdir::MetaProperties;
use sluice_engine::properties::last_value;
use sluice_net::client::cluster::{QuorumInfo, QuorumReplica};
use sluice_net::client::raft_voters::RaftVoter;
use uuid::Uuid;

use crate::connect::connect_as;
use crate::error::{Result, ToolError};
use crate::limits::ADD_CONTROLLER_TIMEOUT_MS;
use crate::storage::{read_config, read_node_dirs};
use crate::topic_id::kafka_format;

#[derive(Args)]
pub struct MetadataQuorumArgs {
    /// A broker to send the request to (it forwards it to the quorum's leader).
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap_server: Option<String>,
    /// Kafka's direct route to a controller; Sluice's controller listener does not speak
    /// Kafka's protocol, so this is refused with a hint.
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap_controller: Option<String>,
    /// For add-controller: the server.properties of the controller being added.
    #[arg(long, value_name = "FILE")]
    command_config: Option<PathBuf>,
    #[command(subcommand)]
    command: QuorumCommand,
}

#[derive(Subcommand)]
enum QuorumCommand {
    /// Describe the metadata quorum info.
    Describe(DescribeArgs),
    /// Add the controller of --command-config to the quorum (a learner until caught up).
    AddController(AddControllerArgs),
    /// Remove the voter with this node id and metadata directory id from the quorum.
    RemoveController(RemoveControllerArgs),
}

#[derive(Args)]
struct DescribeArgs {
    /// A short summary of the quorum status.
    #[arg(long, conflicts_with = "replication")]
    status: bool,
    /// Detailed information about the status of replication.
    #[arg(long)]
    replication: bool,
    /// With --replication: timestamps as "N ms ago".
    #[arg(long, requires = "replication")]
    human_readable: bool,
}

#[derive(Args)]
struct AddControllerArgs {
    /// Print what would be added, send nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args)]
struct RemoveControllerArgs {
    /// The node id of the voter to remove.
    #[arg(short = 'i', long, value_name = "ID")]
    controller_id: i32,
    /// The voter's metadata directory id (its old `directory.id`; Kafka's base64 form).
    #[arg(short = 'd', long, value_name = "DIRECTORY_ID")]
    controller_directory_id: String,
    /// Print what would be removed, send nothing.
    #[arg(long)]
    dry_run: bool,
}

pub async fn run(args: MetadataQuorumArgs) -> Result<()> {
    let bootstrap = bootstrap(&args)?;
    match &args.command {
        QuorumCommand::AddController(add) => {
            let file = args.command_config.as_deref().ok_or_else(|| {
                ToolError::new(
                    "add-controller needs --command-config: the server.properties of the \
                     controller to add (its node.id, metadata dir and controller listener)",
                )
            })?;
            let (cluster_id, voter) = controller_to_add(file)?;
            let (name, host, port) = &voter.listener;
            let what = format!(
                "controller {} with directory id {} and endpoints: {name}://{host}:{port}",
                voter.voter_id,
                kafka_uuid_string(&voter.directory_id)
            );
            if add.dry_run {
                println!("DRY RUN of adding {what}");
                return Ok(());
            }
            let mut client = connect_as(bootstrap, None).await?;
            client
                .add_raft_voter(Some(&cluster_id), &voter, ADD_CONTROLLER_TIMEOUT_MS)
                .await?;
            println!("Added {what}");
            Ok(())
        }
        QuorumCommand::RemoveController(remove) => run_remove(bootstrap, remove).await,
        QuorumCommand::Describe(describe) => run_describe(bootstrap, describe).await,
    }
}

async fn run_describe(bootstrap: &str, describe: &DescribeArgs) -> Result<()> {
    if !describe.status && !describe.replication {
        return Err(ToolError::new(
            "One of --status or --replication must be specified with describe sub-command",
        ));
    }
    let mut client = connect_as(bootstrap, None).await?;
    let quorum = client.describe_quorum().await?;
    if describe.status {
        let cluster_id = client.describe_cluster().await?.cluster_id;
        print!("{}", status_text(&cluster_id, &quorum)?);
    } else {
        let now = describe.human_readable.then(now_ms);
        print!("{}", replication_text(&quorum, now)?);
    }
    Ok(())
}

fn bootstrap(args: &MetadataQuorumArgs) -> Result<&str> {
    if let Some(controller) = &args.bootstrap_controller {
        return Err(ToolError::new(format!(
            "--bootstrap-controller {controller}: Sluice's controller listener speaks its own \
             protocol, not Kafka's; use --bootstrap-server with a broker's address (it \
             forwards the request to the quorum's leader)"
        )));
    }
    args.bootstrap_server.as_deref().ok_or_else(|| {
        ToolError::new("one of --bootstrap-server or --bootstrap-controller must be given")
    })
}

async fn run_remove(bootstrap: &str, args: &RemoveControllerArgs) -> Result<()> {
    let text = &args.controller_directory_id;
    let dir = parse_kafka_uuid(text)
        .or_else(|| uuid::Uuid::parse_str(text).ok())
        .ok_or_else(|| {
            ToolError::new(format!(
                "--controller-directory-id {text} is not a directory id (Kafka's 22-character \
                 form, as `directory.id` in meta.properties)"
            ))
        })?;
    let what = format!(
        "KRaft controller {} with directory id {}",
        args.controller_id,
        kafka_uuid_string(&dir)
    );
    if args.dry_run {
        println!("DRY RUN of removing {what}");
        return Ok(());
    }
    let mut client = connect_as(bootstrap, None).await?;
    client
        .remove_raft_voter(None, args.controller_id, dir)
        .await?;
    println!("Removed {what}");
    Ok(())
}

/// The cluster id and voter key of the controller whose server.properties is `file`.
fn controller_to_add(file: &Path) -> Result<(String, RaftVoter)> {
    let node = read_node_dirs(file)?;
    let pairs = read_config(file)?;
    let get = |key| {
        last_value(&pairs, key)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let roles = get("process.roles").unwrap_or_default();
    if !roles.split(',').any(|r| r.trim() == "controller") {
        return Err(ToolError::new(format!(
            "{}: process.roles={roles} has no controller role: only a controller can join \
             the metadata quorum",
            file.display()
        )));
    }
    let dir = &node.metadata_log_dir;
    let meta = MetaProperties::read(dir)
        .map_err(|e| ToolError::new(e.to_string()))?
        .ok_or_else(|| {
            ToolError::new(format!(
                "{} is not formatted: run `sluice storage format -t CLUSTER_ID -c {}` first",
                dir.display(),
                file.display()
            ))
        })?;
    let directory_id = meta.directory_id.ok_or_else(|| {
        ToolError::new(format!(
            "{}: meta.properties has no directory.id (start the node once, or format it again)",
            dir.display()
        ))
    })?;
    let listener = controller_listener(file, &get)?;
    let voter = RaftVoter {
        voter_id: node.node_id,
        directory_id: directory_id.0,
        listener,
    };
    Ok((meta.cluster_id, voter))
}

/// The first of `controller.listener.names`, from `advertised.listeners` if it lists it,
/// else from `listeners`: (name, host, port).
fn controller_listener<'a>(
    file: &Path,
    get: &impl Fn(&'a str) -> Option<&'a str>,
) -> Result<(String, String, u16)> {
    let bad = |why: String| ToolError::new(format!("{}: {why}", file.display()));
    let name = get("controller.listener.names")
        .and_then(|n| n.split(',').next())
        .map(str::trim)
        .ok_or_else(|| bad("controller.listener.names is not set".into()))?;
    let find = |key: &'a str| {
        get(key)?.split(',').find_map(|l| {
            let (n, address) = l.trim().split_once("://")?;
            (n.trim() == name).then(|| address.trim().to_string())
        })
    };
    let address = find("advertised.listeners")
        .or_else(|| find("listeners"))
        .ok_or_else(|| bad(format!("no listener named {name} in listeners")))?;
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| bad(format!("listener {name}://{address} has no port")))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| bad(format!("listener {name}://{address}: bad port")))?;
    if host.is_empty() || host == "0.0.0.0" {
        return Err(bad(format!(
            "listener {name}://{address} names no host the other controllers can reach; \
             set it in advertised.listeners"
        )));
    }
    Ok((name.to_string(), host.to_string(), port))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn leader_of(quorum: &QuorumInfo) -> Result<&QuorumReplica> {
    quorum
        .voters
        .iter()
        .find(|v| v.id == quorum.leader_id)
        .ok_or_else(|| {
            ToolError::new(format!(
                "the quorum's leader {} is not among its voters (no leader elected yet?)",
                quorum.leader_id
            ))
        })
}

/// Kafka's `Uuid.toString`, "null" for the zero id as the status lines print it.
fn directory(id: &Uuid) -> String {
    match id.is_nil() {
        true => "null".into(),
        false => format!("\"{}\"", kafka_format(id)),
    }
}

/// `[{"id": 1, "directoryId": "…", "endpoints": ["CONTROLLER://host:port"]}, …]`
fn replicas_text(quorum: &QuorumInfo, replicas: &[QuorumReplica]) -> String {
    let nodes: Vec<String> = replicas
        .iter()
        .map(|r| {
            let mut s = format!(
                "{{\"id\": {}, \"directoryId\": {}",
                r.id,
                directory(&r.directory_id)
            );
            let endpoints = quorum.nodes.iter().find(|(id, _)| *id == r.id);
            if let Some((_, e)) = endpoints.filter(|(_, e)| !e.is_empty()) {
                let quoted: Vec<String> = e.iter().map(|e| format!("\"{e}\"")).collect();
                s.push_str(&format!(", \"endpoints\": [{}]", quoted.join(", ")));
            }
            s.push('}');
            s
        })
        .collect();
    format!("[{}]", nodes.join(", "))
}

/// `describe --status`.
fn status_text(cluster_id: &str, quorum: &QuorumInfo) -> Result<String> {
    let leader = leader_of(quorum)?;
    let max_lag = quorum
        .voters
        .iter()
        .min_by_key(|v| v.log_end_offset)
        .unwrap_or(leader);
    let lag_time = if max_lag.id == leader.id {
        0
    } else if leader.last_caught_up_timestamp >= 0 && max_lag.last_caught_up_timestamp >= 0 {
        leader.last_caught_up_timestamp - max_lag.last_caught_up_timestamp
    } else {
        -1
    };
    Ok(format!(
        "ClusterId:              {cluster_id}\n\
         LeaderId:               {}\n\
         LeaderEpoch:            {}\n\
         HighWatermark:          {}\n\
         MaxFollowerLag:         {}\n\
         MaxFollowerLagTimeMs:   {lag_time}\n\
         CurrentVoters:          {}\n\
         CurrentObservers:       {}\n",
        quorum.leader_id,
        quorum.leader_epoch,
        quorum.high_watermark,
        leader.log_end_offset - max_lag.log_end_offset,
        replicas_text(quorum, &quorum.voters),
        replicas_text(quorum, &quorum.observers),
    ))
}

/// `describe --replication`: Kafka's table (each cell padded to its column, a tab after
/// every cell); with `now`, timestamps as "N ms ago".
fn replication_text(quorum: &QuorumInfo, now: Option<i64>) -> Result<String> {
    let leader = leader_of(quorum)?;
    let time = |t: i64| match (t, now) {
        (t, _) if t < 0 => "-1".to_string(),
        (t, Some(now)) => format!("{} ms ago", (now - t).max(0)),
        (t, None) => t.to_string(),
    };
    let row = |r: &QuorumReplica, status: &str| {
        vec![
            r.id.to_string(),
            kafka_format(&r.directory_id),
            r.log_end_offset.to_string(),
            (leader.log_end_offset - r.log_end_offset).to_string(),
            time(r.last_fetch_timestamp),
            time(r.last_caught_up_timestamp),
            status.to_string(),
        ]
    };
    let mut rows = vec![row(leader, "Leader")];
    let followers = quorum.voters.iter().filter(|v| v.id != leader.id);
    rows.extend(followers.map(|v| row(v, "Follower")));
    rows.extend(quorum.observers.iter().map(|o| row(o, "Observer")));
    let header = [
        "NodeId",
        "DirectoryId",
        "LogEndOffset",
        "Lag",
        "LastFetchTimestamp",
        "LastCaughtUpTimestamp",
        "Status",
    ];
    Ok(pretty_table(&header, &rows))
}

/// Kafka's `ToolsUtils.prettyPrintTable`.
pub fn pretty_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (cell, w) in cells.iter().zip(&widths) {
            s.push_str(&format!("{cell:<w$}\t"));
        }
        s.push('\n');
        s
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(id: i32, log_end_offset: i64, caught_up: i64) -> QuorumReplica {
        QuorumReplica {
            id,
            directory_id: Uuid::nil(),
            log_end_offset,
            last_fetch_timestamp: caught_up,
            last_caught_up_timestamp: caught_up,
        }
    }

    fn quorum() -> QuorumInfo {
        QuorumInfo {
            leader_id: 2,
            leader_epoch: 5,
            high_watermark: 40,
            voters: vec![
                replica(1, 38, 900),
                replica(2, 41, 1000),
                replica(3, 41, 1000),
            ],
            observers: vec![replica(4, -1, -1)],
            nodes: vec![(1, vec!["CONTROLLER://127.0.0.1:9093".into()])],
        }
    }

    #[test]
    fn status_is_kafka_metadata_quorums() {
        assert_eq!(
            status_text("abc", &quorum()).unwrap(),
            "ClusterId:              abc\n\
             LeaderId:               2\n\
             LeaderEpoch:            5\n\
             HighWatermark:          40\n\
             MaxFollowerLag:         3\n\
             MaxFollowerLagTimeMs:   100\n\
             CurrentVoters:          [{\"id\": 1, \"directoryId\": null, \"endpoints\": [\"CONTROLLER://127.0.0.1:9093\"]}, {\"id\": 2, \"directoryId\": null}, {\"id\": 3, \"directoryId\": null}]\n\
             CurrentObservers:       [{\"id\": 4, \"directoryId\": null}]\n"
        );
    }

    #[test]
    fn replication_is_kafkas_table() {
        let text = replication_text(&quorum(), None).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "NodeId\tDirectoryId           \tLogEndOffset\tLag\tLastFetchTimestamp\tLastCaughtUpTimestamp\tStatus  \t"
        );
        assert_eq!(
            lines[1],
            "2     \tAAAAAAAAAAAAAAAAAAAAAA\t41          \t0  \t1000              \t1000                 \tLeader  \t"
        );
        assert!(
            lines[2].starts_with("1     \t") && lines[2].contains("\t3  \t"),
            "{text}"
        );
        assert!(
            lines[4].ends_with("\t-1                \t-1                   \tObserver\t"),
            "{text}"
        );
        let human = replication_text(&quorum(), Some(1500)).unwrap();
        assert!(human.contains("500 ms ago"), "{human}");
    }
}
