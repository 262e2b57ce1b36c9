//! `sluice-perf consume`: Kafka's `kafka-consumer-perf-test` on the sluice client.
//!
//! Reads every partition of the topic from its earliest offset with plain Fetch requests
//! (no consumer group), one request per partition leader at a time, until `--messages`
//! records are read. Like Kafka's tool it counts key + value bytes as the data consumed.
//! Without a group there is no rebalance; `rebalance.time.ms` reports the setup before
//! the first fetch (Metadata and ListOffsets), and `fetch.time.ms` the rest.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use sluice_net::client::batch::{payload_sizes, Batches};
use sluice_net::client::{Client, ClientError, FetchOptions, FetchedPartition, OffsetSpec};

use crate::report::{format_time, JsonObject, BYTES_PER_MB};

#[derive(clap::Args, Debug)]
pub struct ConsumeArgs {
    /// Broker(s) to bootstrap from, host:port[,host:port...].
    #[arg(long = "bootstrap-server")]
    bootstrap_server: String,
    #[arg(long)]
    topic: String,
    /// Records to consume.
    #[arg(long)]
    messages: u64,
    /// Bytes to ask for per partition per fetch (max.partition.fetch.bytes).
    #[arg(long = "fetch-size", default_value_t = 1024 * 1024)]
    fetch_size: i32,
    /// Bytes to ask for per fetch (fetch.max.bytes).
    #[arg(long = "fetch-max-bytes", default_value_t = 50 * 1024 * 1024)]
    fetch_max_bytes: i32,
    /// How long the broker may hold a fetch that has no data (fetch.max.wait.ms).
    #[arg(long = "fetch-max-wait-ms", default_value_t = 500)]
    fetch_max_wait_ms: i32,
    /// Give up after this many milliseconds without a new record.
    #[arg(long, default_value_t = 10_000)]
    timeout: u64,
    /// Do not print the header line.
    #[arg(long = "hide-header")]
    hide_header: bool,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Where one partition is read from.
struct Position {
    leader_id: i32,
    offset: i64,
}

#[derive(Default)]
struct Consumed {
    records: u64,
    payload_bytes: u64,
}

pub async fn run(args: ConsumeArgs) -> Result<(), ClientError> {
    let start_time = SystemTime::now();
    let started_at = Instant::now();
    let mut client = Client::connect_as(&args.bootstrap_server, "perf-consumer-client").await?;
    let mut positions = earliest_positions(&mut client, &args.topic).await?;
    let setup = started_at.elapsed();
    let options = FetchOptions {
        max_wait_ms: args.fetch_max_wait_ms,
        min_bytes: 1,
        max_bytes: args.fetch_max_bytes,
        partition_max_bytes: args.fetch_size,
        ..FetchOptions::default()
    };
    let mut consumed = Consumed::default();
    let mut progress_at = Instant::now();
    while consumed.records < args.messages {
        let before = consumed.records;
        for leader_id in leaders(&positions) {
            let wanted: Vec<(i32, i64)> = positions
                .iter()
                .filter(|(_, p)| p.leader_id == leader_id)
                .map(|(&partition, p)| (partition, p.offset))
                .collect();
            let fetched = client.fetch(&args.topic, &wanted, &options).await?;
            for partition in fetched {
                let limit = args.messages - consumed.records;
                let position = positions.get_mut(&partition.partition);
                let Some(position) = position else { continue };
                count(&args.topic, &partition, position, limit, &mut consumed)?;
            }
        }
        if consumed.records > before {
            progress_at = Instant::now();
        } else if progress_at.elapsed() > Duration::from_millis(args.timeout) {
            return Err(ClientError::Metadata(format!(
                "no new records from {} for {} ms: consumed {} of {} (--messages)",
                args.topic, args.timeout, consumed.records, args.messages
            )));
        }
    }
    let elapsed = started_at.elapsed();
    print(&args, start_time, elapsed, setup, &consumed);
    Ok(())
}

/// Every partition of `topic` with its leader and earliest offset.
async fn earliest_positions(
    client: &mut Client,
    topic: &str,
) -> Result<BTreeMap<i32, Position>, ClientError> {
    let metadata = client.topic(topic).await?;
    let mut positions = BTreeMap::new();
    for partition in &metadata.partitions {
        let offset = client
            .list_offsets(topic, partition.partition, OffsetSpec::Earliest)
            .await?;
        let position = Position {
            leader_id: partition.leader_id,
            offset,
        };
        positions.insert(partition.partition, position);
    }
    Ok(positions)
}

fn leaders(positions: &BTreeMap<i32, Position>) -> Vec<i32> {
    let mut leaders: Vec<i32> = positions.values().map(|p| p.leader_id).collect();
    leaders.sort_unstable();
    leaders.dedup();
    leaders
}

/// Counts the records of one fetched partition, at most `limit`, and moves its
/// position past the complete batches.
fn count(
    topic: &str,
    fetched: &FetchedPartition,
    position: &mut Position,
    limit: u64,
    consumed: &mut Consumed,
) -> Result<(), ClientError> {
    let fetch_offset = position.offset;
    let context = || format!("{topic}-{} at offset {fetch_offset}", fetched.partition);
    if let Some(error) = fetched.error {
        return Err(ClientError::Kafka {
            context: format!("fetching {}", context()),
            error,
            code: error.code(),
        });
    }
    let mut left = limit;
    for batch in Batches::new(&fetched.records) {
        let (header, bytes) = batch.map_err(|source| ClientError::Batch {
            context: context(),
            source,
        })?;
        if header.next_offset() <= position.offset {
            continue; // Already counted: the broker starts at the batch holding the offset.
        }
        let (records, payload_bytes) =
            payload_sizes(&header, bytes, left).map_err(|source| ClientError::Batch {
                context: context(),
                source,
            })?;
        consumed.records += records;
        consumed.payload_bytes += payload_bytes;
        left -= records;
        position.offset = header.next_offset();
        if left == 0 {
            break;
        }
    }
    Ok(())
}

fn print(
    args: &ConsumeArgs,
    start_time: SystemTime,
    elapsed: Duration,
    setup: Duration,
    consumed: &Consumed,
) {
    let end_time = start_time + elapsed;
    let mb = consumed.payload_bytes as f64 / BYTES_PER_MB;
    let elapsed_s = elapsed.as_secs_f64();
    let fetch = elapsed.saturating_sub(setup);
    let fetch_s = fetch.as_secs_f64();
    let records = consumed.records as f64;
    if args.json {
        let object = JsonObject::default()
            .string("start_time", &format_time(start_time))
            .string("end_time", &format_time(end_time))
            .number("data_consumed_mb", mb)
            .number("mb_per_sec", mb / elapsed_s)
            .number("records", records)
            .number("records_per_sec", records / elapsed_s)
            .number("rebalance_time_ms", setup.as_millis() as f64)
            .number("fetch_time_ms", fetch.as_millis() as f64)
            .number("fetch_mb_per_sec", mb / fetch_s)
            .number("fetch_records_per_sec", records / fetch_s);
        println!("{}", object.finish());
        return;
    }
    if !args.hide_header {
        println!(
            "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, \
             nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"
        );
    }
    println!(
        "{}, {}, {mb:.4}, {:.4}, {}, {:.4}, {}, {}, {:.4}, {:.4}",
        format_time(start_time),
        format_time(end_time),
        mb / elapsed_s,
        consumed.records,
        records / elapsed_s,
        setup.as_millis(),
        fetch.as_millis(),
        mb / fetch_s,
        records / fetch_s,
    );
}
