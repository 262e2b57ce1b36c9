//! `sluice metadata-quorum` (kafka-metadata-quorum): `add-controller` and
//! `remove-controller` replace a voter of the metadata quorum, e.g. after its disk was wiped
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
use sluice_net::client::raft_voters::RaftVoter;

use crate::connect::connect_as;
use crate::error::{Result, ToolError};
use crate::limits::ADD_CONTROLLER_TIMEOUT_MS;
use crate::storage::{read_config, read_node_dirs};

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
    /// Add the controller of --command-config to the quorum (a learner until caught up).
    AddController(AddControllerArgs),
    /// Remove the voter with this node id and metadata directory id from the quorum.
    RemoveController(RemoveControllerArgs),
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
    }
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
