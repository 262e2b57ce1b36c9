//! `sluice console-producer`: one record per line of standard input, like
//! kafka-console-producer.
//!
//! The topic is looked up with Metadata allowing auto-creation, as Kafka's producer does.
//! Records are batched per partition up to `batch.size` and sent when a batch is full,
//! when `linger.ms` has passed since the first record waiting, at the end of input, or on
//! SIGINT/SIGTERM (what was read is sent first, as Kafka's shutdown hook flushes). Keyed
//! records go where Kafka's default partitioner puts them; keyless ones go to one
//! partition per send round, rotating (sticky, as Kafka's).
//!
//! Producer configs come from `--producer.config FILE` (alias `--command-config`),
//! overridden by `--producer-property k=v`, overridden by the tool's own flags
//! (`--request-required-acks`, `--compression-codec`, `--timeout`, `--batch-size`,
//! `--request-timeout-ms`, `--sync`), as in Kafka. Honoured keys are listed on
//! [`ProducerSettings`]; every other key is named in a warning. Idempotence (on by
//! default with acks=all, as in Kafka's producer) asks InitProducerId once and numbers
//! each partition's records, so the batches are those Kafka's producer sends (nothing is
//! retried, so nothing is ever sent twice either way).

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use sluice_engine::compression::{
    compress, Compression, CompressionType, GZIP_LEVEL_DEFAULT, GZIP_LEVEL_MAX, GZIP_LEVEL_MIN,
    LZ4_LEVEL_DEFAULT, LZ4_LEVEL_MAX, LZ4_LEVEL_MIN, ZSTD_LEVEL_DEFAULT, ZSTD_LEVEL_MAX,
    ZSTD_LEVEL_MIN,
};
use sluice_net::client::{Acks, Client, ProducerIdentity, Record, RecordBatchBuilder};

use crate::client_config::ClientConfig;
use crate::connect::connect_as;
use crate::error::{Result, ToolError};
use crate::limits::{
    BATCH_BYTES_MAX, BUFFER_MEMORY_BYTES_MAX, INPUT_CHUNK_BYTES, LINGER_MS_MAX, REQUEST_BYTES_MAX,
    REQUEST_TIMEOUT_MS_MAX, STOP_CHECK_MS, STOP_DRAIN_BYTES_MAX,
};
use crate::partitioner::partition_for_key;
use crate::properties::Properties;
use crate::signals;

/// Kafka's record batch header, counted by `max.request.size` checks.
const BATCH_OVERHEAD_BYTES: usize = 61;

#[derive(Args)]
pub struct ProducerArgs {
    /// Broker(s) to bootstrap from: host:port[,host:port...].
    #[arg(long, value_name = "HOST:PORT", alias = "broker-list")]
    bootstrap_server: String,
    /// The topic to produce to (created by the broker if it auto-creates topics).
    #[arg(long)]
    topic: String,
    /// Reader properties: parse.key=true, key.separator=SEP (default a tab).
    #[arg(
        long = "property",
        visible_alias = "reader-property",
        value_name = "KEY=VALUE"
    )]
    properties: Vec<String>,
    /// acks: 0, 1, all or -1 (Kafka's console producer default: -1).
    #[arg(long, value_name = "ACKS", allow_hyphen_values = true)]
    request_required_acks: Option<String>,
    /// A producer config key=value (repeatable); see the README for the keys honoured.
    #[arg(
        long = "producer-property",
        visible_alias = "command-property",
        value_name = "KEY=VALUE"
    )]
    producer_properties: Vec<String>,
    /// A properties file of producer configs.
    #[arg(
        long = "producer.config",
        visible_alias = "command-config",
        value_name = "FILE"
    )]
    producer_config: Option<PathBuf>,
    /// compression.type: none, gzip, snappy, lz4 or zstd (gzip when given without one).
    #[arg(long, value_name = "CODEC", num_args = 0..=1, default_missing_value = "gzip")]
    compression_codec: Option<String>,
    /// linger.ms: how long a record may wait for others to share its batch (default 1000).
    #[arg(long, allow_hyphen_values = true, value_name = "MS")]
    timeout: Option<String>,
    /// batch.size in bytes (as --max-partition-memory-bytes).
    #[arg(
        long,
        allow_hyphen_values = true,
        value_name = "BYTES",
        alias = "max-partition-memory-bytes"
    )]
    batch_size: Option<String>,
    /// request.timeout.ms: how long to wait for each produce answer.
    #[arg(long, allow_hyphen_values = true, value_name = "MS")]
    request_timeout_ms: Option<String>,
    /// Send every line on its own and wait for its answer before reading the next.
    #[arg(long)]
    sync: bool,
}

/// The producer configs honoured, with Kafka's console-producer defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProducerSettings {
    /// `acks` (default -1).
    acks: Acks,
    /// `linger.ms` (default 1000, the console producer's `--timeout`).
    linger: Duration,
    /// `batch.size` (default 16384; 0: one record per batch).
    batch_bytes: usize,
    /// `max.request.size` (default 1048576): the largest record, and batch.
    max_request_bytes: usize,
    /// `buffer.memory` (default 33554432): records waiting in all batches.
    buffer_memory_bytes: usize,
    /// `request.timeout.ms` (default 30000, the producer's; see the README).
    request_timeout: Duration,
    /// `enable.idempotence` (default: true when `acks` is all, as Kafka's producer): every
    /// batch carries the producer id from InitProducerId and its partition's sequence.
    idempotence: bool,
    /// `compression.type` (default none; `--compression-codec`) with
    /// `compression.gzip.level`, `compression.lz4.level`, `compression.zstd.level`: each
    /// batch's records compressed by the engine's codecs (flate2, snap, lz4_flex, zstd).
    compression: Compression,
    /// `--sync`.
    sync: bool,
    /// `client.id`.
    client_id: Option<String>,
}

impl ProducerSettings {
    fn from_args(args: &ProducerArgs) -> Result<ProducerSettings> {
        let file = args
            .producer_config
            .as_deref()
            .map(|path| (path, "--producer.config"));
        let mut config =
            ClientConfig::load(file, &args.producer_properties, "--producer-property")?;
        let flags = [
            (
                "acks",
                &args.request_required_acks,
                "--request-required-acks",
            ),
            (
                "compression.type",
                &args.compression_codec,
                "--compression-codec",
            ),
            ("linger.ms", &args.timeout, "--timeout"),
            ("batch.size", &args.batch_size, "--batch-size"),
            (
                "request.timeout.ms",
                &args.request_timeout_ms,
                "--request-timeout-ms",
            ),
        ];
        for (key, value, flag) in flags {
            if let Some(value) = value {
                config.set(key, value, flag);
            }
        }
        let settings = Self::from_config(&config, args.sync)?;
        check_unhonoured(&config, &args.bootstrap_server);
        config.warn_unused("console-producer");
        Ok(settings)
    }

    fn from_config(config: &ClientConfig, sync: bool) -> Result<ProducerSettings> {
        let acks = match config.get("acks") {
            None => Acks::All,
            Some(value) => Acks::parse(value)
                .map_err(|e| ToolError::new(format!("{e} ({})", config.origin("acks"))))?,
        };
        let size = |key, default: usize, max: usize| -> Result<usize> {
            let n = config.number(key, default as i64, (0, max as i64))?;
            Ok(usize::try_from(n).expect("bounded above"))
        };
        let ms = |key, default: u64, max: u64| -> Result<Duration> {
            let n = config.number(key, default as i64, (0, max as i64))?;
            Ok(Duration::from_millis(
                u64::try_from(n).expect("bounded above"),
            ))
        };
        let idempotence = config.flag("enable.idempotence", acks == Acks::All)?;
        if idempotence && acks != Acks::All && !config.origin("enable.idempotence").is_empty() {
            return Err(ToolError::new(format!(
                "Must set acks to all in order to use the idempotent producer. Otherwise we \
                 cannot guarantee idempotence. (enable.idempotence=true from {}, acks from {})",
                config.origin("enable.idempotence"),
                config.origin("acks")
            )));
        }
        Ok(ProducerSettings {
            compression: compression(config)?,
            idempotence,
            acks,
            linger: ms("linger.ms", 1000, LINGER_MS_MAX)?,
            batch_bytes: size("batch.size", 16 * 1024, BATCH_BYTES_MAX)?,
            max_request_bytes: size("max.request.size", 1024 * 1024, REQUEST_BYTES_MAX)?,
            buffer_memory_bytes: size("buffer.memory", 32 * 1024 * 1024, BUFFER_MEMORY_BYTES_MAX)?,
            request_timeout: ms("request.timeout.ms", 30_000, REQUEST_TIMEOUT_MS_MAX)?,
            sync,
            client_id: config.connection_settings()?.client_id,
        })
    }
}

/// `compression.type` and its levels, checked as Kafka's producer checks them.
fn compression(config: &ClientConfig) -> Result<Compression> {
    let name = config.get("compression.type").unwrap_or("none");
    let Some(codec) = CompressionType::ALL.into_iter().find(|c| c.name() == name) else {
        return Err(ToolError::new(format!(
            "Invalid value {name} for configuration compression.type ({}): String must be one \
             of: none, gzip, snappy, lz4, zstd",
            config.origin("compression.type")
        )));
    };
    let level = |key, default: i32, (min, max): (i32, i32)| -> Result<i32> {
        let n = config.number(
            key,
            i64::from(default),
            (i64::from(min.min(default)), i64::from(max)),
        )?;
        Ok(i32::try_from(n).expect("bounded to i32"))
    };
    let mut compression = Compression::of(codec);
    compression.gzip_level = level(
        "compression.gzip.level",
        GZIP_LEVEL_DEFAULT,
        (GZIP_LEVEL_MIN, GZIP_LEVEL_MAX),
    )?;
    compression.lz4_level = level(
        "compression.lz4.level",
        LZ4_LEVEL_DEFAULT,
        (LZ4_LEVEL_MIN, LZ4_LEVEL_MAX),
    )?;
    if compression.gzip_level == 0 {
        return Err(ToolError::new(
            "compression.gzip.level=0: expected -1 (zlib's default) or 1..=9",
        ));
    }
    compression.zstd_level = level(
        "compression.zstd.level",
        ZSTD_LEVEL_DEFAULT,
        (ZSTD_LEVEL_MIN, ZSTD_LEVEL_MAX),
    )?;
    Ok(compression)
}

/// Keys with Kafka meaning that the console producer cannot honour: each gets its own
/// warning saying what is done instead (marked, so `warn_unused` does not repeat them).
fn check_unhonoured(config: &ClientConfig, bootstrap: &str) {
    if let Some(servers) = config.get("bootstrap.servers") {
        if servers != bootstrap {
            eprintln!(
                "WARN: bootstrap.servers={servers} ({}) is overridden by --bootstrap-server \
                 {bootstrap}, as in Kafka",
                config.origin("bootstrap.servers")
            );
        }
    }
}

/// How lines become records.
struct LineFormat {
    /// The key separator when keys are parsed from lines.
    key_separator: Option<String>,
}

impl LineFormat {
    fn from_properties(properties: &Properties) -> Result<LineFormat> {
        for (key, value) in properties.pairs() {
            if !["parse.key", "key.separator"].contains(&key.as_str()) {
                eprintln!(
                    "WARN: {key}={value} (--property) is not honoured by sluice \
                     console-producer (its reader knows parse.key and key.separator); it is \
                     ignored"
                );
            }
        }
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

pub async fn run(args: ProducerArgs) -> Result<()> {
    let format = LineFormat::from_properties(&Properties::parse(&args.properties, "--property")?)?;
    let settings = ProducerSettings::from_args(&args)?;
    let mut client = connect_as(&args.bootstrap_server, settings.client_id.as_deref()).await?;
    let partitions = client
        .topic_auto_create(&args.topic)
        .await?
        .partitions
        .len();
    let identity = match settings.idempotence {
        true => Some(client.init_producer_id().await?),
        false => None,
    };
    let mut producer = Producer {
        client: &mut client,
        topic: &args.topic,
        settings: &settings,
        identity,
        sequences: vec![0; partitions],
        batches: (0..partitions).map(|_| None).collect(),
        buffered_bytes: 0,
        keyless_partition: 0,
    };
    // Lines are bounded by the largest max.request.size; a record over the configured one
    // gets Kafka's error naming it.
    let mut input = Lines::stdin(REQUEST_BYTES_MAX)?;
    let mut number = 0u64;
    // When the oldest record waiting must go out (`linger.ms` after it was read).
    let mut linger_until: Option<Instant> = None;
    loop {
        let wait = linger_until.map(|until| until.saturating_duration_since(Instant::now()));
        match input.next(wait)? {
            Input::Line(line) => {
                number += 1;
                let (key, value) = format.split(&line, number)?;
                producer.push(key, value).await?;
                if settings.sync {
                    producer.flush().await?;
                } else if linger_until.is_none() {
                    linger_until = Some(Instant::now() + settings.linger);
                }
            }
            Input::Waited => {
                producer.flush().await?;
                linger_until = None;
            }
            Input::End | Input::Stopped => return producer.flush().await,
        }
    }
}

/// What standard input gave.
enum Input {
    /// One line, without its ending.
    Line(Vec<u8>),
    /// The wait passed with no complete line.
    Waited,
    /// End of input.
    End,
    /// SIGINT or SIGTERM.
    Stopped,
}

/// Lines of standard input, read through `poll(2)` so a wait can end (for `linger.ms`)
/// and a stop signal is seen while no input comes.
struct Lines {
    /// A duplicate of fd 0, read directly (no std buffer hides bytes from `poll`).
    file: std::fs::File,
    /// Bytes read and not yet returned as lines.
    pending: Vec<u8>,
    ended: bool,
    /// A stop signal came: what was already written to standard input has been read (up
    /// to `STOP_DRAIN_BYTES_MAX`); its complete lines are still sent.
    stopping: bool,
    line_bytes_max: usize,
}

impl Lines {
    fn stdin(line_bytes_max: usize) -> Result<Lines> {
        let fd: OwnedFd = std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| ToolError::new(format!("standard input: {e}")))?;
        Ok(Lines {
            file: std::fs::File::from(fd),
            pending: Vec::new(),
            ended: false,
            stopping: false,
            line_bytes_max,
        })
    }

    /// The next line, waiting at most `wait` (`None`: until input or a signal).
    fn next(&mut self, wait: Option<Duration>) -> Result<Input> {
        let deadline = wait.map(|w| Instant::now() + w);
        loop {
            if let Some(line) = self.take_line()? {
                return Ok(Input::Line(line));
            }
            if self.ended {
                return Ok(Input::End);
            }
            if self.stopping {
                return Ok(Input::Stopped);
            }
            if signals::received().is_some() {
                self.stopping = true;
                self.drain()?;
                continue;
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) && !self.readable(Duration::ZERO)? {
                return Ok(Input::Waited);
            }
            let slice = left.map_or(Duration::from_millis(STOP_CHECK_MS), |left| {
                left.min(Duration::from_millis(STOP_CHECK_MS))
            });
            if self.readable(slice)? {
                self.read_chunk()?;
            }
        }
    }

    /// A complete line from `pending` (or the last, unterminated one at end of input).
    fn take_line(&mut self) -> Result<Option<Vec<u8>>> {
        let end = self.pending.iter().position(|b| *b == b'\n');
        let taken = match end {
            Some(at) => {
                let mut line: Vec<u8> = self.pending.drain(..=at).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                line
            }
            None if self.ended && !self.pending.is_empty() => std::mem::take(&mut self.pending),
            None => {
                if self.pending.len() > self.line_bytes_max + 1 {
                    return Err(self.too_long());
                }
                return Ok(None);
            }
        };
        if taken.len() > self.line_bytes_max {
            return Err(self.too_long());
        }
        Ok(Some(taken))
    }

    fn too_long(&self) -> ToolError {
        ToolError::new(format!(
            "a line of standard input is longer than {} bytes, the largest max.request.size \
             sluice console-producer takes; split it",
            self.line_bytes_max
        ))
    }

    fn readable(&self, wait: Duration) -> Result<bool> {
        let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(ready) => Ok(ready > 0),
            Err(nix::errno::Errno::EINTR) => Ok(false),
            Err(e) => Err(ToolError::new(format!("waiting for standard input: {e}"))),
        }
    }

    /// Reads what standard input already holds, without waiting (bounded).
    fn drain(&mut self) -> Result<()> {
        let start = self.pending.len();
        while !self.ended
            && self.pending.len() - start < STOP_DRAIN_BYTES_MAX
            && self.readable(Duration::ZERO)?
        {
            self.read_chunk()?;
        }
        Ok(())
    }

    fn read_chunk(&mut self) -> Result<()> {
        use std::io::Read;
        let start = self.pending.len();
        self.pending.resize(start + INPUT_CHUNK_BYTES, 0);
        let read = self.file.read(&mut self.pending[start..]);
        let read = match read {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(ToolError::new(format!("reading standard input: {e}"))),
        };
        self.pending.truncate(start + read);
        if read == 0 {
            self.ended = true;
        }
        Ok(())
    }
}

/// Batches being filled, one per partition.
struct Producer<'a> {
    client: &'a mut Client,
    topic: &'a str,
    settings: &'a ProducerSettings,
    /// The idempotent producer's id and epoch (`enable.idempotence`).
    identity: Option<ProducerIdentity>,
    /// Per partition, the sequence number of the next record (idempotence only).
    sequences: Vec<i32>,
    batches: Vec<Option<RecordBatchBuilder>>,
    /// Bytes in all batches (bounded by `buffer.memory`).
    buffered_bytes: usize,
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
        let record_bytes = RecordBatchBuilder::new(now_ms).record_size_bytes(&record);
        let max_request = self.settings.max_request_bytes;
        if BATCH_OVERHEAD_BYTES + record_bytes > max_request {
            return Err(ToolError::new(format!(
                "The message is {} bytes when serialized which is larger than {max_request}, \
                 which is the value of the max.request.size configuration.",
                BATCH_OVERHEAD_BYTES + record_bytes
            )));
        }
        let batch_max = self.settings.batch_bytes.min(max_request);
        let full = self.batches[partition]
            .as_ref()
            .is_some_and(|batch| batch.size_bytes() + batch.record_size_bytes(&record) > batch_max);
        if full {
            self.send(partition).await?;
        }
        if self.buffered_bytes + record_bytes > self.settings.buffer_memory_bytes {
            self.flush().await?;
        }
        self.batches[partition]
            .get_or_insert_with(|| RecordBatchBuilder::new(now_ms))
            .push(&record);
        self.buffered_bytes += record_bytes;
        Ok(())
    }

    async fn send(&mut self, partition: usize) -> Result<()> {
        let Some(batch) = self.batches[partition].take() else {
            return Ok(());
        };
        self.buffered_bytes = self.buffered_bytes.saturating_sub(batch.size_bytes());
        let index = i32::try_from(partition).expect("partition count fits i32");
        let timeout = self.settings.request_timeout;
        let mut batch = batch;
        let compression = self.settings.compression;
        if compression.codec != CompressionType::None {
            let codec = i16::from(compression.codec.id());
            batch
                .compress_records(codec, |input, out| compress(compression, input, out))
                .map_err(|e| {
                    ToolError::new(format!(
                        "compressing a batch with {}: {e}",
                        compression.codec
                    ))
                })?;
        }
        let bytes = match self.identity {
            None => batch.finish(),
            Some(identity) => {
                let base_sequence = self.sequences[partition];
                // Kafka's sequences wrap from i32::MAX to 0.
                let next = i64::from(base_sequence) + i64::from(batch.record_count());
                self.sequences[partition] = (next % (i64::from(i32::MAX) + 1)) as i32;
                batch.finish_idempotent(identity, base_sequence)
            }
        };
        let produce = self
            .client
            .produce(self.topic, index, bytes, self.settings.acks);
        match compio::time::timeout(timeout, produce).await {
            Ok(answer) => answer.map(|_| ()).map_err(ToolError::from),
            Err(_elapsed) => Err(ToolError::new(format!(
                "no answer to a produce to {}-{partition} within request.timeout.ms={} ms",
                self.topic,
                timeout.as_millis()
            ))),
        }
    }

    /// Sends every batch, then moves keyless records to the next partition.
    async fn flush(&mut self) -> Result<()> {
        for partition in 0..self.batches.len() {
            self.send(partition).await?;
        }
        self.buffered_bytes = 0;
        self.keyless_partition = (self.keyless_partition + 1) % self.batches.len();
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
    fn settings_take_kafka_defaults_and_overrides() {
        let defaults = ProducerSettings::from_config(&ClientConfig::default(), false).unwrap();
        assert_eq!(defaults.acks, Acks::All);
        assert!(
            defaults.idempotence,
            "Kafka's producer default with acks=all"
        );
        assert_eq!(defaults.linger, Duration::from_millis(1000));
        assert_eq!(defaults.batch_bytes, 16384);
        assert_eq!(defaults.max_request_bytes, 1_048_576);
        let mut config = ClientConfig::default();
        for (k, v) in [("acks", "1"), ("linger.ms", "0"), ("batch.size", "0")] {
            config.set(k, v, "--producer-property");
        }
        let set = ProducerSettings::from_config(&config, true).unwrap();
        assert!(!set.idempotence, "acks=1 turns the default idempotence off");
        config.set("enable.idempotence", "true", "--producer-property");
        assert!(ProducerSettings::from_config(&config, true).is_err());
        config.set("enable.idempotence", "false", "--producer-property");
        assert_eq!(
            (set.acks, set.linger, set.batch_bytes),
            (Acks::Leader, Duration::ZERO, 0)
        );
        config.set("acks", "2", "--producer-property");
        assert!(ProducerSettings::from_config(&config, false).is_err());
        config.set("acks", "-1", "--request-required-acks");
        config.set("batch.size", "-5", "--producer-property");
        let error = ProducerSettings::from_config(&config, false).unwrap_err();
        assert!(error.to_string().contains("batch.size=-5"), "{error}");
    }
}
