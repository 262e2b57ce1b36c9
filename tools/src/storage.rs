//! `sluice storage random-uuid | format` (kafka-storage): a cluster node's dirs are
//! formatted before its first start, with one cluster id for the whole cluster.
//!
//! `format` reads only the keys it needs from the node's properties file (with the
//! engine's properties parser: `meta.properties` is in the same format) and writes Kafka
//! 4's `meta.properties` (`version=1`, `node.id`, `cluster.id`, a fresh `directory.id`) in
//! every `log.dirs` entry and in `metadata.log.dir`, with the engine's writer (tmp,
//! fsync, rename), so sluiced reads exactly what was written.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use sluice_engine::ids::{kafka_uuid_string, parse_kafka_uuid, random_kafka_uuid};
use sluice_engine::logdir::{MetaProperties, META_PROPERTIES_FILE};
use sluice_engine::properties::{last_value, parse_properties};
use sluice_engine::DirectoryId;

use crate::error::{Result, ToolError};

/// sluiced's `log.dirs` default (broker/src/config.rs), for a file that does not set it.
pub const LOG_DIRS_DEFAULT: &str = "./sluice-data";
/// Bytes read from a properties file; a server.properties is a few KiB.
pub const CONFIG_FILE_BYTES_MAX: u64 = 1 << 20;
/// What `format` writes in the header comment of each `meta.properties`.
const WRITER: &str = "sluice storage format";

#[derive(Args)]
pub struct StorageArgs {
    #[command(subcommand)]
    command: StorageCommand,
}

#[derive(Subcommand)]
enum StorageCommand {
    /// Print a random UUID to use as the cluster id (kafka-storage random-uuid).
    RandomUuid,
    /// Write meta.properties in every log dir of a cluster node (kafka-storage format).
    Format(FormatArgs),
}

#[derive(Args)]
struct FormatArgs {
    /// The node's server.properties (needs process.roles, node.id, log.dirs).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: PathBuf,
    /// The cluster id, the same on every node (from `sluice storage random-uuid`).
    #[arg(short = 't', long = "cluster-id", value_name = "ID")]
    cluster_id: String,
    /// Skip dirs that are already formatted (their ids must match) and format the others.
    #[arg(short = 'g', long = "ignore-formatted")]
    ignore_formatted: bool,
}

pub fn run(args: &StorageArgs) -> Result<()> {
    match &args.command {
        StorageCommand::RandomUuid => {
            println!("{}", kafka_uuid_string(&random_kafka_uuid()));
            Ok(())
        }
        StorageCommand::Format(args) => {
            for line in format(args)? {
                println!("{line}");
            }
            Ok(())
        }
    }
}

/// The keys of a node's properties file that formatting needs.
#[derive(Debug)]
pub(crate) struct NodeDirs {
    pub node_id: i32,
    pub log_dirs: Vec<PathBuf>,
    pub metadata_log_dir: PathBuf,
}

/// A node's properties file as (key, value) pairs, bounded by `CONFIG_FILE_BYTES_MAX`.
pub(crate) fn read_config(file: &Path) -> Result<Vec<(String, String)>> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(CONFIG_FILE_BYTES_MAX).read_to_string(&mut text))
        .map_err(|e| ToolError::new(format!("reading config file {}: {e}", file.display())))?;
    parse_properties(&text).map_err(|e| ToolError::new(format!("{}: {e}", file.display())))
}

pub(crate) fn read_node_dirs(file: &Path) -> Result<NodeDirs> {
    let pairs = read_config(file)?;
    let get = |key| {
        last_value(&pairs, key)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if get("process.roles").is_none() {
        return Err(ToolError::new(format!(
            "{}: the configuration file appears to be for a single node (no process.roles). \
             Formatting is only supported for cluster nodes (KRaft mode); a single node \
             formats its own empty data dirs",
            file.display()
        )));
    }
    let node_id = get("node.id").or(get("broker.id")).ok_or_else(|| {
        ToolError::new(format!(
            "{}: missing required configuration `node.id` which has no default value",
            file.display()
        ))
    })?;
    let node_id = node_id
        .parse::<i32>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| {
            ToolError::new(format!(
                "{}: node.id={node_id} is not a node id (an integer >= 0)",
                file.display()
            ))
        })?;
    let dirs = get("log.dirs")
        .or(get("log.dir"))
        .unwrap_or(LOG_DIRS_DEFAULT);
    let log_dirs: Vec<PathBuf> = dirs
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .collect();
    let first = log_dirs.first().cloned().ok_or_else(|| {
        ToolError::new(format!(
            "{}: log.dirs={dirs} names no directory",
            file.display()
        ))
    })?;
    let metadata_log_dir = get("metadata.log.dir").map_or(first, PathBuf::from);
    Ok(NodeDirs {
        node_id,
        log_dirs,
        metadata_log_dir,
    })
}

/// Formats the unformatted dirs; returns the lines to print (Kafka's).
fn format(args: &FormatArgs) -> Result<Vec<String>> {
    if parse_kafka_uuid(&args.cluster_id).is_none() {
        return Err(ToolError::new(format!(
            "Cluster ID string {} does not appear to be a valid UUID: expected 22 base64url \
             characters, as `sluice storage random-uuid` prints",
            args.cluster_id
        )));
    }
    let node = read_node_dirs(&args.config)?;
    let mut dirs = node.log_dirs.clone();
    if !dirs.contains(&node.metadata_log_dir) {
        dirs.push(node.metadata_log_dir.clone());
    }
    let mut unformatted = Vec::new();
    for dir in &dirs {
        let found = MetaProperties::read(dir).map_err(|e| ToolError::new(e.to_string()))?;
        match found {
            None => unformatted.push(dir),
            Some(_) if !args.ignore_formatted => {
                return Err(ToolError::new(format!(
                    "Log directory {} is already formatted. Use --ignore-formatted to ignore \
                     this directory and format the others.",
                    dir.display()
                )))
            }
            Some(meta) => check_formatted(dir, &meta, &args.cluster_id, node.node_id)?,
        }
    }
    if unformatted.is_empty() {
        return Ok(vec![
            "All of the log directories are already formatted.".into()
        ]);
    }
    let mut lines = Vec::new();
    for dir in unformatted {
        std::fs::create_dir_all(dir).map_err(|e| {
            ToolError::new(format!("creating log directory {}: {e}", dir.display()))
        })?;
        let meta = MetaProperties {
            node_id: node.node_id,
            cluster_id: args.cluster_id.clone(),
            directory_id: Some(DirectoryId::random()),
        };
        meta.write(dir, WRITER)
            .map_err(|e| ToolError::new(e.to_string()))?;
        let kind = if *dir == node.metadata_log_dir {
            "metadata"
        } else {
            "data"
        };
        lines.push(format!("Formatting {kind} directory {}.", dir.display()));
    }
    Ok(lines)
}

/// A dir skipped by `--ignore-formatted` must belong to the same cluster and node.
fn check_formatted(
    dir: &Path,
    meta: &MetaProperties,
    cluster_id: &str,
    node_id: i32,
) -> Result<()> {
    let path = dir.join(META_PROPERTIES_FILE);
    if meta.cluster_id != cluster_id {
        return Err(ToolError::new(format!(
            "Invalid cluster.id in: {}. Expected {cluster_id}, but read {}",
            path.display(),
            meta.cluster_id
        )));
    }
    if meta.node_id != node_id {
        return Err(ToolError::new(format!(
            "Stored node id {} doesn't match node.id {node_id} of the config in {}. If you \
             moved your data, make sure your configured node id matches. If you intend to \
             create a new node, you should remove all data in your data directories.",
            meta.node_id,
            path.display()
        )));
    }
    Ok(())
}
