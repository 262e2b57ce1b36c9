//! `sluice`: the operator CLI, with the names and flags of Kafka's tools
//! (`kafka-topics`, `kafka-console-producer`, `kafka-console-consumer`,
//! `kafka-delete-records`, `kafka-dump-log`, `kafka-consumer-groups`, `kafka-configs`,
//! `kafka-get-offsets`, `kafka-storage`, `kafka-metadata-quorum`, `kafka-leader-election`,
//! `kafka-log-dirs`, `kafka-reassign-partitions`)
//! so muscle memory works; called by one of those
//! names (a link), it runs that command (`kafka_names`).
//!
//! Architecture Invariant: the commands talk to brokers only through `sluice-net`'s
//! client; only `dump-log` (with the engine's batch parsing), `storage` (with the
//! engine's `meta.properties` reader and writer) and `metadata-quorum add-controller` (its
//! reader) touch files of a broker's dirs;
//! compressed records are decoded with the engine's codecs (`records`).

mod client_config;
mod cluster;
mod configs;
mod connect;
mod console_consumer;
mod console_producer;
mod consumer_groups;
mod delete_records;
mod dump_log;
mod error;
mod get_offsets;
mod kafka_names;
mod leader_election;
mod limits;
mod log_dirs;
mod metadata_quorum;
mod partitioner;
mod properties;
mod reassign_partitions;
mod records;
mod reset_time;
mod signals;
mod storage;
mod topic_id;
mod topics;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::ToolError;

/// Responses are peer input: their decoders reserve what the peer claims.
#[global_allocator]
static ALLOC: sluice_net::alloc::LazyLargeAlloc = sluice_net::alloc::LazyLargeAlloc;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Sluice operator tools (Kafka's tools' names and flags)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create, list, describe, alter or delete topics (kafka-topics).
    Topics(topics::TopicsArgs),
    /// Produce one record per line of standard input (kafka-console-producer).
    ConsoleProducer(console_producer::ProducerArgs),
    /// Print records of a topic (kafka-console-consumer).
    ConsoleConsumer(console_consumer::ConsumerArgs),
    /// List, describe, reset or delete consumer groups (kafka-consumer-groups).
    ConsumerGroups(consumer_groups::GroupsArgs),
    /// Delete records before given offsets (kafka-delete-records).
    DeleteRecords(delete_records::DeleteRecordsArgs),
    /// Print the record batches of segment files (kafka-dump-log); needs no broker.
    DumpLog(dump_log::DumpLogArgs),
    /// Format a cluster node's log dirs, or print a cluster id (kafka-storage).
    Storage(storage::StorageArgs),
    /// Describe or alter topic, broker and group configs (kafka-configs).
    Configs(configs::ConfigsArgs),
    /// Print partitions' offsets as topic:partition:offset (kafka-get-offsets).
    GetOffsets(get_offsets::GetOffsetsArgs),
    /// Describe the metadata quorum: --status or --replication (kafka-metadata-quorum).
    MetadataQuorum(metadata_quorum::MetadataQuorumArgs),
    /// Run preferred or unclean leader elections (kafka-leader-election).
    LeaderElection(leader_election::LeaderElectionArgs),
    /// A cluster's brokers (alive or fenced), active controller and metadata quorum.
    Cluster(cluster::ClusterArgs),
    /// Describe the log dirs of brokers: partitions' sizes and lags (kafka-log-dirs).
    LogDirs(log_dirs::LogDirsArgs),
    /// Move partitions' replicas between brokers (kafka-reassign-partitions).
    ReassignPartitions(reassign_partitions::ReassignArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(kafka_names::arguments(std::env::args_os().collect()));
    match run(cli.command) {
        // Stopped by a signal: the shell's convention (and the JVM's), 128 + signal.
        Ok(()) => match signals::received() {
            Some(signal) => ExitCode::from(u8::try_from(128 + signal).unwrap_or(1)),
            None => ExitCode::SUCCESS,
        },
        Err(error) => {
            eprintln!("sluice: error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), ToolError> {
    // dump-log and storage read and write files: they need no io_uring runtime.
    let command = match command {
        Command::DumpLog(args) => return dump_log::run(&args),
        Command::Storage(args) => return storage::run(&args),
        command => command,
    };
    if matches!(
        command,
        Command::ConsoleProducer(_) | Command::ConsoleConsumer(_)
    ) {
        // Before the runtime starts any thread, so they all inherit the mask.
        signals::install()?;
    }
    let runtime = compio::runtime::Runtime::new()
        .map_err(|error| ToolError::new(format!("starting the io_uring runtime: {error}")))?;
    runtime.block_on(async {
        match command {
            Command::Topics(args) => topics::run(args).await,
            Command::ConsoleProducer(args) => console_producer::run(args).await,
            Command::ConsoleConsumer(args) => console_consumer::run(args).await,
            Command::ConsumerGroups(args) => consumer_groups::run(args).await,
            Command::DeleteRecords(args) => delete_records::run(args).await,
            Command::Configs(args) => configs::run(args).await,
            Command::GetOffsets(args) => get_offsets::run(args).await,
            Command::MetadataQuorum(args) => metadata_quorum::run(args).await,
            Command::LeaderElection(args) => leader_election::run(args).await,
            Command::Cluster(args) => cluster::run(args).await,
            Command::LogDirs(args) => log_dirs::run(args).await,
            Command::ReassignPartitions(args) => reassign_partitions::run(args).await,
            Command::DumpLog(_) | Command::Storage(_) => unreachable!("handled above"),
        }
    })
}
