//! `sluice console-consumer`: prints a topic's records, like kafka-console-consumer.
//!
//! Without `--group` it reads every partition (or `--partition P`) directly: ListOffsets
//! for the start, then long-polling Fetch. With `--group` it joins the group (see
//! `group.rs`), resumes at the committed offsets and commits what it printed. Records of compressed batches are not decoded
//! yet (the CLI has no decompressors): the consumer stops with an error naming the batch.

use std::io::{BufWriter, ErrorKind, Write};
use std::time::{Duration, Instant};

use clap::Args;
use kafka_protocol::error::ResponseError;
use sluice_net::client::batch::{decode_records, Batches, DecodedRecord};
use sluice_net::client::{Client, FetchOptions, FetchedPartition, OffsetSpec, TopicMetadata};

use crate::connect::connect;
use crate::error::{Result, ToolError};
use crate::limits::{FETCH_WAIT_MS_MAX, RETRY_BACKOFF_MS};
use crate::properties::Properties;

/// Attributes bit of a control batch (transaction markers): never printed.
const ATTRIBUTE_CONTROL: i16 = 0x20;
/// Attributes bit of LogAppendTime: every record's timestamp is the batch's max.
const ATTRIBUTE_LOG_APPEND_TIME: i16 = 0x08;
const ATTRIBUTE_CODEC_MASK: i16 = 0x07;

mod group;

#[derive(Args)]
pub struct ConsumerArgs {
    /// Broker(s) to bootstrap from: host:port[,host:port...].
    #[arg(long, value_name = "HOST:PORT")]
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
    /// print.offset (true/false), key.separator, line.separator.
    #[arg(long = "property", value_name = "KEY=VALUE")]
    properties: Vec<String>,
}

/// Where reading starts, per partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartAt {
    Earliest,
    Latest,
    Offset(i64),
}

fn start_at(args: &ConsumerArgs) -> Result<StartAt> {
    let Some(offset) = args.offset.as_deref() else {
        return Ok(if args.from_beginning {
            StartAt::Earliest
        } else {
            StartAt::Latest
        });
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

/// How a record is printed (Kafka's `DefaultMessageFormatter`).
struct Formatter {
    print_timestamp: bool,
    print_partition: bool,
    print_offset: bool,
    print_key: bool,
    print_value: bool,
    key_separator: Vec<u8>,
    line_separator: Vec<u8>,
}

impl Formatter {
    fn from_properties(p: &Properties) -> Result<Formatter> {
        Ok(Formatter {
            print_timestamp: p.flag("print.timestamp", false)?,
            print_partition: p.flag("print.partition", false)?,
            print_offset: p.flag("print.offset", false)?,
            print_key: p.flag("print.key", false)?,
            print_value: p.flag("print.value", true)?,
            key_separator: p.get("key.separator").unwrap_or("\t").as_bytes().to_vec(),
            line_separator: p.get("line.separator").unwrap_or("\n").as_bytes().to_vec(),
        })
    }

    /// Writes one record: the chosen columns separated by `key.separator`, then
    /// `line.separator`.
    fn write(
        &self,
        out: &mut impl Write,
        partition: i32,
        record: &DecodedRecord,
        timestamp_type: &str,
    ) -> std::io::Result<()> {
        let mut columns: Vec<Vec<u8>> = Vec::with_capacity(5);
        if self.print_timestamp {
            columns.push(format!("{timestamp_type}:{}", record.timestamp_ms).into_bytes());
        }
        if self.print_partition {
            columns.push(format!("Partition:{partition}").into_bytes());
        }
        if self.print_offset {
            columns.push(format!("Offset:{}", record.offset).into_bytes());
        }
        let bytes_or_null = |b: &Option<Vec<u8>>| b.clone().unwrap_or_else(|| b"null".to_vec());
        if self.print_key {
            columns.push(bytes_or_null(&record.key));
        }
        if self.print_value {
            columns.push(bytes_or_null(&record.value));
        }
        out.write_all(&columns.join(self.key_separator.as_slice()))?;
        out.write_all(&self.line_separator)
    }
}

/// Whether to keep consuming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

pub async fn run(args: ConsumerArgs) -> Result<()> {
    let formatter =
        Formatter::from_properties(&Properties::parse(&args.properties, "--property")?)?;
    let start = start_at(&args)?;
    let mut client = connect(&args.bootstrap_server).await?;
    if let Some(group) = &args.group {
        return group::run(&mut client, group, &args, formatter).await;
    }
    let topic = client.topic(&args.topic).await?;
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
    let reset = if args.from_beginning {
        OffsetSpec::Earliest
    } else {
        OffsetSpec::Latest
    };
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
        reset,
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
    /// Where a partition restarts after OFFSET_OUT_OF_RANGE (`auto.offset.reset`).
    reset: OffsetSpec,
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
            let waited = last_record_at.elapsed();
            let remaining = match timeout {
                Some(timeout) if waited >= timeout => return Ok(()),
                Some(timeout) => timeout - waited,
                None => Duration::MAX,
            };
            let wait = remaining.min(Duration::from_millis(FETCH_WAIT_MS_MAX));
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
            ..FetchOptions::default()
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
                let offset = self
                    .client
                    .list_offsets(&name, partition, self.reset)
                    .await?;
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
            let codec = header.attributes & ATTRIBUTE_CODEC_MASK;
            if codec != 0 {
                return Err(ToolError::new(format!(
                    "{}-{partition}: the batch at offset {} is compressed (codec {codec}); \
                     sluice console-consumer cannot decompress records yet",
                    self.topic.name, header.base_offset
                )));
            }
            let records = decode_records(&header, bytes).map_err(|error| {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(properties: &[&str], expected: &str) {
        let values: Vec<String> = properties.iter().map(|v| v.to_string()).collect();
        let formatter =
            Formatter::from_properties(&Properties::parse(&values, "--property").unwrap()).unwrap();
        let record = DecodedRecord {
            offset: 7,
            timestamp_ms: 1_700_000_000_000,
            key: Some(b"k".to_vec()),
            value: Some(b"v".to_vec()),
            headers: Vec::new(),
        };
        let mut out = Vec::new();
        formatter.write(&mut out, 2, &record, "CreateTime").unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), expected, "{properties:?}");
    }

    #[test]
    fn records_print_like_kafka() {
        check(&[], "v\n");
        check(&["print.key=true"], "k\tv\n");
        check(&["print.key=true", "key.separator=:"], "k:v\n");
        check(
            &[
                "print.timestamp=true",
                "print.partition=true",
                "print.offset=true",
            ],
            "CreateTime:1700000000000\tPartition:2\tOffset:7\tv\n",
        );
        check(&["print.key=true", "print.value=false"], "k\n");
    }
}
