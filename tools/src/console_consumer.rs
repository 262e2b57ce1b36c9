//! `sluice console-consumer`: prints a topic's records, like kafka-console-consumer.
//!
//! Without `--group` it reads every partition (or `--partition P`) directly: ListOffsets
//! for the start, then long-polling Fetch. With `--group` it joins the group (see
//! `group.rs`), resumes at the committed offsets and commits what it printed. Records of compressed batches are not decoded
//! yet (the CLI has no decompressors): the consumer stops with an error naming the batch.
//!
//! Consumer configs (`--consumer-property`, `--consumer.config`) are read in
//! `settings.rs`, the output is Kafka's default formatter (`formatter.rs`). SIGINT or
//! SIGTERM stops it as Kafka's shutdown hook does: the round in progress ends, a group
//! member commits and leaves, and `Processed a total of N messages` is printed.

use std::io::{BufWriter, ErrorKind, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use kafka_protocol::error::ResponseError;
use sluice_net::client::batch::Batches;
use sluice_net::client::{Client, FetchOptions, FetchedPartition, OffsetSpec, TopicMetadata};

use crate::connect::connect_as;
use crate::error::{Result, ToolError};
use crate::limits::{FETCH_WAIT_MS_MAX, RETRY_BACKOFF_MS};
use crate::properties::{self, Properties};
use crate::records::decode_batch;
use crate::signals;

/// Attributes bit of a control batch (transaction markers): never printed.
const ATTRIBUTE_CONTROL: i16 = 0x20;
/// Attributes bit of LogAppendTime: every record's timestamp is the batch's max.
const ATTRIBUTE_LOG_APPEND_TIME: i16 = 0x08;

mod formatter;
mod group;
mod settings;

use formatter::Formatter;
use settings::{ConsumerFlags, ConsumerSettings};

#[derive(Args)]
pub struct ConsumerArgs {
    /// Broker(s) to bootstrap from: host:port[,host:port...].
    #[arg(long, value_name = "HOST:PORT", alias = "broker-list")]
    bootstrap_server: String,
    /// The topic to read.
    #[arg(long)]
    topic: String,
    /// Start at the earliest offset instead of the latest.
    #[arg(long)]
    from_beginning: bool,
    /// Read only this partition.
    #[arg(long)]
    partition: Option<i32>,
    /// Start offset with --partition: a number, earliest or latest.
    #[arg(long, value_name = "OFFSET")]
    offset: Option<String>,
    /// Exit after this many records.
    #[arg(long)]
    max_messages: Option<u64>,
    /// Exit when no record arrived for this long.
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Consume as a member of this consumer group (needs the broker's group APIs).
    #[arg(long)]
    group: Option<String>,
    /// Formatter properties: print.key, print.value, print.timestamp, print.partition,
    /// print.offset, print.headers, print.delivery (true/false), key.separator,
    /// line.separator, headers.separator, null.literal.
    #[arg(
        long = "property",
        visible_alias = "formatter-property",
        value_name = "KEY=VALUE"
    )]
    properties: Vec<String>,
    /// A properties file of formatter properties (read before --property).
    #[arg(long, value_name = "FILE")]
    formatter_config: Option<PathBuf>,
    /// The formatter: Kafka's default one (kafka.tools.DefaultMessageFormatter or
    /// org.apache.kafka.tools.consumer.DefaultMessageFormatter).
    #[arg(long, value_name = "CLASS")]
    formatter: Option<String>,
    /// key.deserializer of the formatter (StringDeserializer or ByteArrayDeserializer).
    #[arg(long, value_name = "CLASS")]
    key_deserializer: Option<String>,
    /// value.deserializer of the formatter (StringDeserializer or ByteArrayDeserializer).
    #[arg(long, value_name = "CLASS")]
    value_deserializer: Option<String>,
    /// A consumer config key=value (repeatable): group.id, auto.offset.reset,
    /// enable.auto.commit, client.id, fetch and session keys; see the README.
    #[arg(
        long = "consumer-property",
        visible_alias = "command-property",
        value_name = "KEY=VALUE"
    )]
    consumer_properties: Vec<String>,
    /// A properties file of consumer configs.
    #[arg(
        long = "consumer.config",
        visible_alias = "command-config",
        value_name = "FILE"
    )]
    consumer_config: Option<PathBuf>,
}

/// The formatter's properties: `--formatter-config` first, then `--property`, then the
/// deserializer flags.
fn formatter_properties(args: &ConsumerArgs) -> Result<Properties> {
    let mut values = Vec::new();
    if let Some(path) = &args.formatter_config {
        for (key, value) in properties::read_file(path, "--formatter-config")? {
            values.push(format!("{key}={value}"));
        }
    }
    values.extend(args.properties.iter().cloned());
    for (key, class) in [
        ("key.deserializer", &args.key_deserializer),
        ("value.deserializer", &args.value_deserializer),
    ] {
        if let Some(class) = class {
            values.push(format!("{key}={class}"));
        }
    }
    Properties::parse(&values, "--property")
}

/// Where reading starts, per partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartAt {
    Earliest,
    Latest,
    Offset(i64),
}

fn start_at(args: &ConsumerArgs, reset: Option<OffsetSpec>) -> Result<StartAt> {
    let Some(offset) = args.offset.as_deref() else {
        return match reset {
            Some(OffsetSpec::Earliest) => Ok(StartAt::Earliest),
            Some(_) => Ok(StartAt::Latest),
            None => Err(ToolError::new(
                "auto.offset.reset=none: without --group there is no committed offset to \
                 start from; give --offset N with --partition P, or another auto.offset.reset",
            )),
        };
    };
    if args.partition.is_none() {
        return Err(ToolError::new(
            "--offset needs --partition (an offset belongs to one partition)",
        ));
    }
    if args.from_beginning {
        return Err(ToolError::new(
            "--offset and --from-beginning cannot be used together",
        ));
    }
    match offset {
        "earliest" => Ok(StartAt::Earliest),
        "latest" => Ok(StartAt::Latest),
        number => match number.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(StartAt::Offset(n)),
            _ => Err(ToolError::new(format!(
                "--offset {number:?}: expected a non-negative number, earliest or latest"
            ))),
        },
    }
}

/// Whether to keep consuming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

pub async fn run(args: ConsumerArgs) -> Result<()> {
    formatter::check_formatter(args.formatter.as_deref())?;
    let formatter = Formatter::from_properties(&formatter_properties(&args)?)?;
    let settings = ConsumerSettings::from_flags(&ConsumerFlags {
        consumer_config: args.consumer_config.as_deref(),
        consumer_properties: &args.consumer_properties,
        group: args.group.as_deref(),
        from_beginning: args.from_beginning,
        bootstrap_server: &args.bootstrap_server,
    })?;
    let mut client = connect_as(&args.bootstrap_server, settings.client_id.as_deref()).await?;
    if let Some(group) = settings.group.clone() {
        return group::run(&mut client, &group, &args, formatter, settings).await;
    }
    let start = start_at(&args, settings.reset)?;
    let topic = settings.look_up(&mut client, &args.topic).await?;
    let mut partitions: Vec<i32> = topic.partitions.iter().map(|p| p.partition).collect();
    partitions.sort_unstable();
    if let Some(wanted) = args.partition {
        if !partitions.contains(&wanted) {
            return Err(ToolError::new(format!(
                "topic {:?} has no partition {wanted} (it has {})",
                args.topic,
                partitions.len()
            )));
        }
        partitions = vec![wanted];
    }
    let mut positions = Vec::with_capacity(partitions.len());
    for partition in partitions {
        let offset = match start {
            StartAt::Offset(n) => n,
            StartAt::Earliest => {
                client
                    .list_offsets(&args.topic, partition, OffsetSpec::Earliest)
                    .await?
            }
            StartAt::Latest => {
                client
                    .list_offsets(&args.topic, partition, OffsetSpec::Latest)
                    .await?
            }
        };
        positions.push((partition, offset));
    }
    let mut consumer = Consumer {
        client: &mut client,
        topic,
        positions,
        formatter,
        reset: settings.reset,
        fetch: settings.fetch,
        consumed: 0,
        max_messages: args.max_messages,
        group: None,
    };
    let outcome = consumer
        .run(args.timeout_ms.map(Duration::from_millis))
        .await;
    eprintln!("Processed a total of {} messages", consumer.consumed);
    outcome
}

struct Consumer<'a> {
    client: &'a mut Client,
    topic: TopicMetadata,
    /// `(partition, next offset to print)`.
    positions: Vec<(i32, i64)>,
    formatter: Formatter,
    /// Where a partition restarts after OFFSET_OUT_OF_RANGE (`auto.offset.reset`; `None`
    /// for `none`: an error).
    reset: Option<OffsetSpec>,
    /// The fetch settings (`fetch.max.wait.ms` is further bounded by `--timeout-ms`).
    fetch: FetchOptions,
    consumed: u64,
    max_messages: Option<u64>,
    /// With `--group`: the membership, whose assignment `positions` follows.
    group: Option<group::GroupState>,
}

impl Consumer<'_> {
    async fn run(&mut self, timeout: Option<Duration>) -> Result<()> {
        let stdout = std::io::stdout();
        let mut out = BufWriter::new(stdout.lock());
        let mut last_record_at = Instant::now();
        loop {
            if self.max_messages.is_some_and(|max| self.consumed >= max) {
                return Ok(());
            }
            if signals::received().is_some() {
                return Ok(());
            }
            let waited = last_record_at.elapsed();
            let remaining = match timeout {
                Some(timeout) if waited >= timeout => return Ok(()),
                Some(timeout) => timeout - waited,
                None => Duration::MAX,
            };
            let wait_ms = u64::try_from(self.fetch.max_wait_ms).unwrap_or(FETCH_WAIT_MS_MAX);
            let wait = remaining.min(Duration::from_millis(wait_ms.min(FETCH_WAIT_MS_MAX)));
            let before = self.consumed;
            let flow = self.fetch_round(&mut out, wait).await?;
            if flow == Flow::Stop || flush(&mut out)? == Flow::Stop {
                return Ok(());
            }
            if self.consumed > before {
                last_record_at = Instant::now();
            }
            self.group_round().await?;
        }
    }

    /// One fetch per partition leader.
    async fn fetch_round(&mut self, out: &mut impl Write, wait: Duration) -> Result<Flow> {
        if self.positions.is_empty() {
            // A group member with no partitions assigned: only heartbeats to do.
            compio::time::sleep(wait).await;
            return Ok(Flow::Continue);
        }
        let options = FetchOptions {
            max_wait_ms: i32::try_from(wait.as_millis()).unwrap_or(i32::MAX),
            ..self.fetch
        };
        let mut leaders: Vec<i32> = self.topic.partitions.iter().map(|p| p.leader_id).collect();
        leaders.sort_unstable();
        leaders.dedup();
        let mut refresh = false;
        for leader in leaders {
            let group: Vec<(i32, i64)> = self
                .positions
                .iter()
                .copied()
                .filter(|(partition, _)| self.leader_of(*partition) == leader)
                .collect();
            if group.is_empty() {
                continue;
            }
            if leader < 0 {
                refresh = true;
                continue;
            }
            let name = self.topic.name.clone();
            let fetched = self.client.fetch(&name, &group, &options).await?;
            for partition in fetched {
                match self.handle(out, partition).await? {
                    Handled::Flow(Flow::Stop) => return Ok(Flow::Stop),
                    Handled::Flow(Flow::Continue) => {}
                    Handled::Retry => refresh = true,
                }
            }
        }
        if refresh {
            compio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
            self.topic = self.client.topic(&self.topic.name.clone()).await?;
        }
        Ok(Flow::Continue)
    }

    fn leader_of(&self, partition: i32) -> i32 {
        let found = self
            .topic
            .partitions
            .iter()
            .find(|p| p.partition == partition);
        found.map_or(-1, |p| p.leader_id)
    }

    async fn handle(&mut self, out: &mut impl Write, fetched: FetchedPartition) -> Result<Handled> {
        let partition = fetched.partition;
        let Some(slot) = self.positions.iter().position(|(p, _)| *p == partition) else {
            return Ok(Handled::Flow(Flow::Continue));
        };
        match fetched.error {
            None => self.print(out, slot, &fetched).map(Handled::Flow),
            Some(ResponseError::OffsetOutOfRange) => {
                let name = self.topic.name.clone();
                let Some(reset) = self.reset else {
                    return Err(ToolError::new(format!(
                        "Fetch position offset {} is out of range for partition \
                         {name}-{partition} (auto.offset.reset=none)",
                        self.positions[slot].1
                    )));
                };
                let offset = self.client.list_offsets(&name, partition, reset).await?;
                eprintln!(
                    "sluice: offset {} is out of range for {name}-{partition}; resetting to {offset}",
                    self.positions[slot].1
                );
                self.positions[slot].1 = offset;
                Ok(Handled::Flow(Flow::Continue))
            }
            Some(error) if error.is_retriable() => Ok(Handled::Retry),
            Some(error) => Err(ToolError::new(format!(
                "fetching {}-{partition}: {error} (Kafka error code {})",
                self.topic.name,
                error.code()
            ))),
        }
    }

    /// Prints the records of one partition's answer at or after its position.
    fn print(
        &mut self,
        out: &mut impl Write,
        slot: usize,
        fetched: &FetchedPartition,
    ) -> Result<Flow> {
        let (partition, _) = self.positions[slot];
        for batch in Batches::new(&fetched.records) {
            let (header, bytes) = batch.map_err(|error| {
                ToolError::new(format!("{}-{partition}: {error}", self.topic.name))
            })?;
            let next_offset = header.next_offset();
            if header.attributes & ATTRIBUTE_CONTROL != 0 {
                self.positions[slot].1 = self.positions[slot].1.max(next_offset);
                continue;
            }
            let records = decode_batch(&header, bytes).map_err(|error| {
                ToolError::new(format!("{}-{partition}: {error}", self.topic.name))
            })?;
            let timestamp_type = if header.attributes & ATTRIBUTE_LOG_APPEND_TIME != 0 {
                "LogAppendTime"
            } else {
                "CreateTime"
            };
            for mut record in records {
                if record.offset < self.positions[slot].1 {
                    continue;
                }
                if self.max_messages.is_some_and(|max| self.consumed >= max) {
                    return Ok(Flow::Stop);
                }
                if timestamp_type == "LogAppendTime" {
                    record.timestamp_ms = header.max_timestamp_ms;
                }
                if write_or_stop(
                    self.formatter
                        .write(out, partition, &record, timestamp_type),
                )? == Flow::Stop
                {
                    return Ok(Flow::Stop);
                }
                self.consumed += 1;
                self.positions[slot].1 = record.offset + 1;
            }
            self.positions[slot].1 = self.positions[slot].1.max(next_offset);
        }
        Ok(Flow::Continue)
    }
}

/// What became of one partition's fetch answer.
enum Handled {
    Flow(Flow),
    /// A retriable error: refresh metadata and try again.
    Retry,
}

/// A closed standard output (`| head`) ends the consumer quietly.
fn write_or_stop(result: std::io::Result<()>) -> Result<Flow> {
    match result {
        Ok(()) => Ok(Flow::Continue),
        Err(error) if error.kind() == ErrorKind::BrokenPipe => Ok(Flow::Stop),
        Err(error) => Err(ToolError::new(format!(
            "writing to standard output: {error}"
        ))),
    }
}

fn flush(out: &mut impl Write) -> Result<Flow> {
    write_or_stop(out.flush())
}
