//! `sluice console-producer`: one record per line of standard input, like
//! kafka-console-producer.
//!
//! Lines already buffered are sent together (one batch per partition, at most
//! `BATCH_BYTES_MAX` each); an interactive line goes out as soon as it is typed. Keyed
//! records go where Kafka's default partitioner puts them; keyless batches rotate
//! over the partitions.

use std::io::{BufRead, Read};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use sluice_net::client::{Acks, Client, Record, RecordBatchBuilder};

use crate::connect::connect;
use crate::error::{Result, ToolError};
use crate::limits::{BATCH_BYTES_MAX, INPUT_BUFFER_BYTES, LINE_BYTES_MAX, ROUND_LINES_MAX};
use crate::partitioner::partition_for_key;
use crate::properties::Properties;

#[derive(Args)]
pub struct ProducerArgs {
    /// Broker(s) to bootstrap from: host:port[,host:port...].
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap_server: String,
    /// The topic to produce to (it must exist).
    #[arg(long)]
    topic: String,
    /// Reader properties: parse.key=true, key.separator=SEP (default a tab).
    #[arg(long = "property", value_name = "KEY=VALUE")]
    properties: Vec<String>,
    /// acks: 0, 1, all or -1 (Kafka's console producer default: all).
    #[arg(long, value_name = "ACKS")]
    request_required_acks: Option<String>,
    /// Producer properties; `acks` is honoured, others are ignored.
    #[arg(long = "producer-property", value_name = "KEY=VALUE")]
    producer_properties: Vec<String>,
}

/// How lines become records.
struct LineFormat {
    /// The key separator when keys are parsed from lines.
    key_separator: Option<String>,
}

impl LineFormat {
    fn from_properties(properties: &Properties) -> Result<LineFormat> {
        let separator = properties.get("key.separator").unwrap_or("\t");
        if separator.is_empty() {
            return Err(ToolError::new("key.separator must not be empty"));
        }
        let key_separator = properties
            .flag("parse.key", false)?
            .then(|| separator.to_string());
        Ok(LineFormat { key_separator })
    }

    /// `(key, value)` of one line (without its line ending).
    fn split<'a>(&self, line: &'a [u8], number: u64) -> Result<(Option<&'a [u8]>, &'a [u8])> {
        let Some(separator) = &self.key_separator else {
            return Ok((None, line));
        };
        let separator = separator.as_bytes();
        match line.windows(separator.len()).position(|w| w == separator) {
            Some(at) => Ok((Some(&line[..at]), &line[at + separator.len()..])),
            None => Err(ToolError::new(format!(
                "no key separator {:?} found on line number {number}: {:?}",
                String::from_utf8_lossy(separator),
                String::from_utf8_lossy(line)
            ))),
        }
    }
}

fn acks(args: &ProducerArgs) -> Result<Acks> {
    let producer = Properties::parse(&args.producer_properties, "--producer-property")?;
    let value = args
        .request_required_acks
        .as_deref()
        .or(producer.get("acks"))
        .unwrap_or("all");
    Acks::parse(value).map_err(ToolError::new)
}

pub async fn run(args: ProducerArgs) -> Result<()> {
    let format = LineFormat::from_properties(&Properties::parse(&args.properties, "--property")?)?;
    let acks = acks(&args)?;
    let mut client = connect(&args.bootstrap_server).await?;
    let partitions = client.topic(&args.topic).await?.partitions.len();
    let mut producer = Producer {
        client: &mut client,
        topic: &args.topic,
        acks,
        batches: (0..partitions).map(|_| None).collect(),
        keyless_partition: 0,
    };
    // Our own buffer (larger than stdin's), so what is already read can be inspected.
    let mut input = std::io::BufReader::with_capacity(INPUT_BUFFER_BYTES, std::io::stdin());
    let mut number = 0u64;
    let mut line = Vec::new();
    loop {
        // Read what is already buffered (up to a bound), then send it.
        for _ in 0..ROUND_LINES_MAX {
            if !read_line(&mut input, &mut line)? {
                return producer.flush().await;
            }
            number += 1;
            let (key, value) = format.split(&line, number)?;
            producer.push(key, value).await?;
            if !input.buffer().contains(&b'\n') {
                break;
            }
        }
        producer.flush().await?;
        producer.keyless_partition = (producer.keyless_partition + 1) % partitions;
    }
}

/// Reads one line into `line` without its ending; `false` at end of input.
fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> Result<bool> {
    line.clear();
    let bound = u64::try_from(LINE_BYTES_MAX + 2).expect("small");
    let read = input
        .by_ref()
        .take(bound)
        .read_until(b'\n', line)
        .map_err(|error| ToolError::new(format!("reading standard input: {error}")))?;
    if read == 0 {
        return Ok(false);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    if line.len() > LINE_BYTES_MAX {
        return Err(ToolError::new(format!(
            "a line of standard input is longer than {LINE_BYTES_MAX} bytes (Kafka's \
             max.request.size default); split it or send it another way"
        )));
    }
    Ok(true)
}

/// Batches being filled, one per partition.
struct Producer<'a> {
    client: &'a mut Client,
    topic: &'a str,
    acks: Acks,
    batches: Vec<Option<RecordBatchBuilder>>,
    /// Where keyless records go during this round.
    keyless_partition: usize,
}

impl Producer<'_> {
    async fn push(&mut self, key: Option<&[u8]>, value: &[u8]) -> Result<()> {
        let partition = match key {
            Some(key) => partition_for_key(key, self.batches.len()),
            None => self.keyless_partition,
        };
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let record = Record {
            key,
            value: Some(value),
            headers: &[],
            timestamp_ms: now_ms,
        };
        let full = self.batches[partition].as_ref().is_some_and(|batch| {
            batch.size_bytes() + batch.record_size_bytes(&record) > BATCH_BYTES_MAX
        });
        if full {
            self.send(partition).await?;
        }
        self.batches[partition]
            .get_or_insert_with(|| RecordBatchBuilder::new(now_ms))
            .push(&record);
        Ok(())
    }

    async fn send(&mut self, partition: usize) -> Result<()> {
        let Some(batch) = self.batches[partition].take() else {
            return Ok(());
        };
        let index = i32::try_from(partition).expect("partition count fits i32");
        self.client
            .produce(self.topic, index, batch.finish(), self.acks)
            .await?;
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        for partition in 0..self.batches.len() {
            self.send(partition).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(properties: &[&str], line: &str, expected: Option<(Option<&str>, &str)>) {
        let values: Vec<String> = properties.iter().map(|v| v.to_string()).collect();
        let format =
            LineFormat::from_properties(&Properties::parse(&values, "--property").unwrap())
                .unwrap();
        let got = format.split(line.as_bytes(), 1).ok().map(|(k, v)| {
            (
                k.map(|k| std::str::from_utf8(k).unwrap()),
                std::str::from_utf8(v).unwrap(),
            )
        });
        assert_eq!(got, expected, "{properties:?} {line:?}");
    }

    #[test]
    fn lines_split_into_key_and_value() {
        check(&[], "a:b", Some((None, "a:b")));
        check(
            &["parse.key=true", "key.separator=:"],
            "a:b:c",
            Some((Some("a"), "b:c")),
        );
        check(&["parse.key=true"], "k\tv", Some((Some("k"), "v")));
        check(
            &["parse.key=true", "key.separator=::"],
            "k::v",
            Some((Some("k"), "v")),
        );
        check(
            &["parse.key=true", "key.separator=:"],
            ":v",
            Some((Some(""), "v")),
        );
        check(&["parse.key=true", "key.separator=:"], "novalue", None);
    }

    #[test]
    fn lines_lose_their_endings() {
        let mut input: &[u8] = b"one\r\ntwo\nthree";
        let mut line = Vec::new();
        let mut lines = Vec::new();
        while read_line(&mut input, &mut line).unwrap() {
            lines.push(String::from_utf8(line.clone()).unwrap());
        }
        assert_eq!(lines, ["one", "two", "three"]);
    }
}
