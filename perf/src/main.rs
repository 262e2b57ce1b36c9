//! `sluice-perf`: Kafka's `kafka-producer-perf-test` and `kafka-consumer-perf-test`, for
//! any Kafka-compatible broker, on one compio runtime thread; and the tools `perf/bench.sh`
//! measures the machine with: `sink` (a broker that acknowledges and discards: the load
//! client's ceiling), `loopback` (TCP bandwidth between two processes) and `populate`
//! (many partitions, one record each). `verify` (the checker) lives in the library, so
//! tests can run it too.

mod consume;
mod loopback;
mod populate;
mod produce;
mod sink;

use sluice_perf::{report, verify};

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Responses are peer input: their decoders reserve what the peer claims.
#[global_allocator]
static ALLOC: sluice_net::alloc::LazyLargeAlloc = sluice_net::alloc::LazyLargeAlloc;

#[derive(Parser)]
#[command(
    name = "sluice-perf",
    version,
    about = "Kafka producer/consumer load generator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Produce records and report throughput and latency (kafka-producer-perf-test).
    Produce(produce::ProduceArgs),
    /// Consume records from the earliest offset and report throughput
    /// (kafka-consumer-perf-test).
    Consume(consume::ConsumeArgs),
    /// A Kafka endpoint that acknowledges produces and discards them, and serves
    /// synthetic records to fetches: the load client's own ceiling.
    Sink(sink::SinkArgs),
    /// TCP bandwidth between two processes over 127.0.0.1.
    Loopback(loopback::LoopbackArgs),
    /// Create many topics and partitions and write one record to each.
    Populate(populate::PopulateArgs),
    /// Produce uniquely identified records, read every partition back and report lost,
    /// duplicated, reordered and disagreeing records (Jepsen's Kafka checker); exits 1
    /// when it finds any.
    Verify(verify::VerifyArgs),
}

/// Kafka's perf-test command names (with or without `.sh`) → the subcommand they run, so
/// a link named like Kafka's script (the Debian package installs them) works unchanged.
const KAFKA_COMMANDS: [(&str, &str); 2] = [
    ("kafka-producer-perf-test", "produce"),
    ("kafka-consumer-perf-test", "consume"),
];

/// The arguments as `sluice-perf` parses them: `kafka-producer-perf-test --topic t …`
/// becomes `sluice-perf produce --topic t …`.
fn arguments(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let called = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .map(|n| n.strip_suffix(".sh").unwrap_or(n).to_string());
    let found = KAFKA_COMMANDS
        .iter()
        .find(|(k, _)| Some(*k) == called.as_deref());
    if let Some((_, subcommand)) = found {
        args[0] = "sluice-perf".into();
        args.insert(1, subcommand.into());
    }
    args
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(arguments(std::env::args_os().collect()));
    let command = match cli.command {
        Command::Loopback(args) => return exit(loopback::run(args)),
        command => command,
    };
    let runtime = match compio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sluice-perf: starting the io_uring runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Produce(args) => produce::run(args).await,
            Command::Consume(args) => consume::run(args).await,
            Command::Sink(args) => sink::run(args).await,
            Command::Populate(args) => populate::run(args).await,
            Command::Verify(args) => verify::run_cli(args)
                .await
                .map_err(|e| sluice_net::client::ClientError::Metadata(e.0)),
            Command::Loopback(_) => unreachable!("run before the runtime starts"),
        }
    });
    exit(result)
}

fn exit<E: std::fmt::Display>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sluice-perf: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_perf_test_names_dispatch() {
        let args = |a: &[&str]| a.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        let check = |given: &[&str], expected: &[&str]| {
            assert_eq!(arguments(args(given)), args(expected));
        };
        check(
            &["/usr/bin/kafka-producer-perf-test.sh", "--topic", "t"],
            &["sluice-perf", "produce", "--topic", "t"],
        );
        check(&["kafka-consumer-perf-test"], &["sluice-perf", "consume"]);
        check(&["sluice-perf", "sink"], &["sluice-perf", "sink"]);
    }
}
