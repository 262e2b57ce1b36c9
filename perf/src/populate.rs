//! `sluice-perf populate`: many partitions, one record each — the setup of a broker
//! startup benchmark (W5 in `perf/bench.sh`).
//!
//! Creates `--topics` topics named `<prefix><n>` with `--partitions` partitions each
//! (CreateTopics, one topic per request; existing topics are kept), then writes one
//! record of `--record-size` bytes to every partition, one acks=1 produce at a time.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sluice_net::client::{Acks, Client, ClientError, Record, RecordBatchBuilder};

use crate::report::JsonObject;

#[derive(clap::Args, Debug)]
pub struct PopulateArgs {
    /// Broker(s) to bootstrap from, host:port[,host:port...].
    #[arg(long = "bootstrap-server")]
    bootstrap_server: String,
    #[arg(long, default_value_t = 100)]
    topics: u32,
    /// Partitions per topic.
    #[arg(long, default_value_t = 100)]
    partitions: i32,
    #[arg(long = "topic-prefix", default_value = "populate-")]
    topic_prefix: String,
    #[arg(long = "record-size", default_value_t = 1024)]
    record_size: usize,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Most topics one run creates.
const TOPICS_MAX: u32 = 100_000;
/// Most partitions per topic.
const PARTITIONS_MAX: i32 = 100_000;
/// Largest record.
const RECORD_BYTES_MAX: usize = 1024 * 1024;

pub async fn run(args: PopulateArgs) -> Result<(), ClientError> {
    let invalid = |message: String| Err(ClientError::Metadata(message));
    if !(1..=TOPICS_MAX).contains(&args.topics) {
        return invalid(format!("--topics must be in 1..={TOPICS_MAX}"));
    }
    if !(1..=PARTITIONS_MAX).contains(&args.partitions) {
        return invalid(format!("--partitions must be in 1..={PARTITIONS_MAX}"));
    }
    if !(1..=RECORD_BYTES_MAX).contains(&args.record_size) {
        return invalid(format!("--record-size must be in 1..={RECORD_BYTES_MAX}"));
    }
    let mut client = Client::connect_as(&args.bootstrap_server, "perf-populate").await?;
    let names: Vec<String> = (0..args.topics)
        .map(|n| format!("{}{n}", args.topic_prefix))
        .collect();
    let started_at = Instant::now();
    for name in &names {
        client.create_topic(name, args.partitions, 1).await?;
    }
    let created = started_at.elapsed();
    let payload = vec![b'p'; args.record_size];
    let mut records: u64 = 0;
    for name in &names {
        let metadata = client.topic(name).await?;
        for partition in &metadata.partitions {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let mut batch = RecordBatchBuilder::new(now_ms);
            batch.push(&Record {
                value: Some(&payload),
                timestamp_ms: now_ms,
                ..Record::default()
            });
            client
                .produce(name, partition.partition, batch.finish(), Acks::Leader)
                .await?;
            records += 1;
        }
    }
    let produced = started_at.elapsed() - created;
    print(&args, records, created, produced);
    Ok(())
}

fn print(args: &PopulateArgs, records: u64, created: Duration, produced: Duration) {
    let partitions = u64::from(args.topics) * args.partitions as u64;
    if args.json {
        let object = JsonObject::default()
            .number("topics", f64::from(args.topics))
            .number("partitions", partitions as f64)
            .number("records", records as f64)
            .number("create_ms", created.as_millis() as f64)
            .number("produce_ms", produced.as_millis() as f64);
        println!("{}", object.finish());
        return;
    }
    println!(
        "{} topics, {partitions} partitions created in {} ms; {records} records \
         (one per partition) written in {} ms",
        args.topics,
        created.as_millis(),
        produced.as_millis()
    );
}
