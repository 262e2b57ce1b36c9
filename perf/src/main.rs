//! `sluice-perf`: Kafka's `kafka-producer-perf-test` and `kafka-consumer-perf-test`, for
//! any Kafka-compatible broker, on one compio runtime thread.

mod consume;
mod produce;
mod report;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match compio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sluice-perf: starting the io_uring runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Produce(args) => produce::run(args).await,
            Command::Consume(args) => consume::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sluice-perf: {error}");
            ExitCode::FAILURE
        }
    }
}
