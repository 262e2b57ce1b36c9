//! `sluice dump-log`: the record batches of `.log` segment files, printed as
//! kafka-dump-log prints them, with a CRC verdict per batch. Reads the files directly
//! (a stopped broker's, or a copy), one batch in memory at a time, and parses them with
//! the engine's batch code.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use clap::Args;
use sluice_engine::batch::{check_batch_framing, BatchHeader, BATCH_HEADER_BYTES, MAGIC_V2};
use sluice_net::client::batch::{Batches, DecodedRecord};

use crate::error::{Result, ToolError};
use crate::records::decode_batch;

/// `batchLength` of a batch that is only a header.
const BATCH_LENGTH_MIN: i32 = (BATCH_HEADER_BYTES - 12) as i32;

#[derive(Args)]
pub struct DumpLogArgs {
    /// Segment files (`<base offset>.log`).
    #[arg(value_name = "FILE")]
    paths: Vec<PathBuf>,
    /// Kafka's spelling: comma-separated segment files.
    #[arg(long, value_delimiter = ',', value_name = "FILES")]
    files: Vec<PathBuf>,
    /// Also list each batch's records (compressed batches are decompressed).
    #[arg(long)]
    deep_iteration: bool,
    /// List each record with its key and payload (implies --deep-iteration).
    #[arg(long)]
    print_data_log: bool,
}

/// How much of each batch's records is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Records {
    /// Batch lines only.
    Hidden,
    /// A line per record: offset, timestamp, sizes, sequence, header keys.
    Listed,
    /// The record lines with key and payload.
    WithData,
}

pub fn run(args: &DumpLogArgs) -> Result<()> {
    let files: Vec<&PathBuf> = args.paths.iter().chain(&args.files).collect();
    if files.is_empty() {
        return Err(ToolError::new(
            "dump-log needs at least one segment file: sluice dump-log DIR/00000000000000000000.log",
        ));
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let records = match (args.print_data_log, args.deep_iteration) {
        (true, _) => Records::WithData,
        (false, true) => Records::Listed,
        (false, false) => Records::Hidden,
    };
    for path in files {
        dump_file(path, records, &mut out)
            .map_err(|error| ToolError::new(format!("{}: {error}", path.display())))?;
    }
    out.flush()
        .map_err(|error| ToolError::new(format!("writing to standard output: {error}")))
}

fn dump_file(path: &Path, records: Records, out: &mut impl Write) -> std::io::Result<()> {
    if path.extension().is_none_or(|e| e != "log") {
        return Err(std::io::Error::other(
            "only .log segment files can be dumped (not .index or .timeindex yet)",
        ));
    }
    let file = File::open(path)?;
    let len_bytes = file.metadata()?.len();
    writeln!(out, "Dumping {}", path.display())?;
    if let Some(base) = path
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse::<u64>().ok())
    {
        writeln!(out, "Log starting offset: {base}")?;
    }
    let mut position = 0u64;
    while position < len_bytes {
        let Some(batch) = read_batch(&file, position, len_bytes, out)? else {
            break;
        };
        write_batch(out, &batch, position, records)?;
        position += batch.len() as u64;
    }
    Ok(())
}

/// The whole batch at `position`, or `None` (after saying why) when the bytes there
/// are not one: a torn or corrupt tail that recovery would truncate.
fn read_batch(
    file: &File,
    position: u64,
    len_bytes: u64,
    out: &mut impl Write,
) -> std::io::Result<Option<Vec<u8>>> {
    let left = len_bytes - position;
    let mut header_bytes = [0u8; BATCH_HEADER_BYTES];
    if left < BATCH_HEADER_BYTES as u64 {
        writeln!(out, "Found {left} invalid bytes at the end of the file (position {position}): shorter than a batch header")?;
        return Ok(None);
    }
    file.read_exact_at(&mut header_bytes, position)?;
    let header = BatchHeader::parse(&header_bytes).expect("a whole header was read");
    let fits = header.batch_length >= BATCH_LENGTH_MIN && header.total_bytes() as u64 <= left;
    if header.magic != MAGIC_V2 || !fits {
        writeln!(
            out,
            "Found {left} invalid bytes at the end of the file (position {position}): magic {} \
             batchLength {} is not a whole magic-2 batch",
            header.magic, header.batch_length
        )?;
        return Ok(None);
    }
    let mut batch = vec![0u8; header.total_bytes()];
    file.read_exact_at(&mut batch, position)?;
    Ok(Some(batch))
}

fn codec_name(codec: u8) -> String {
    match codec {
        0 => "none".into(),
        1 => "gzip".into(),
        2 => "snappy".into(),
        3 => "lz4".into(),
        4 => "zstd".into(),
        other => format!("unknown({other})"),
    }
}

/// Kafka's sequence arithmetic: sequences wrap from `i32::MAX` to 0.
fn sequence_plus(sequence: i32, delta: i32) -> i32 {
    if sequence < 0 {
        return -1;
    }
    if sequence > i32::MAX - delta {
        delta - (i32::MAX - sequence) - 1
    } else {
        sequence + delta
    }
}

fn timestamp_type(header: &BatchHeader) -> &'static str {
    if header.is_log_append_time() {
        "LogAppendTime"
    } else {
        "CreateTime"
    }
}

/// One kafka-dump-log batch line.
fn batch_line(header: &BatchHeader, position: u64, is_valid: bool) -> String {
    format!(
        "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} \
         producerId: {} producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} \
         isControl: {} position: {position} {}: {} size: {} magic: {} compresscodec: {} \
         crc: {} isvalid: {is_valid}",
        header.base_offset,
        header.last_offset(),
        header.records_count,
        header.base_sequence,
        sequence_plus(header.base_sequence, header.last_offset_delta),
        header.producer_id,
        header.producer_epoch,
        header.partition_leader_epoch,
        header.is_transactional(),
        header.is_control(),
        timestamp_type(header),
        header.max_timestamp,
        header.total_bytes(),
        header.magic,
        codec_name(header.compression()),
        header.crc,
    )
}

fn write_batch(
    out: &mut impl Write,
    batch: &[u8],
    position: u64,
    shown: Records,
) -> std::io::Result<()> {
    let header = BatchHeader::parse(batch).expect("read_batch checked the header");
    let is_valid = check_batch_framing(batch).is_ok();
    writeln!(out, "{}", batch_line(&header, position, is_valid))?;
    if shown == Records::Hidden || header.is_control() {
        return Ok(());
    }
    if !is_valid {
        return writeln!(out, "| records not shown: the batch fails its CRC check");
    }
    let records = match Batches::new(batch).next() {
        Some(Ok((net_header, bytes))) => decode_batch(&net_header, bytes),
        _ => Err("the batch does not parse".to_string()),
    };
    let records = match records {
        Ok(records) => records,
        Err(why) => return writeln!(out, "| records not shown: {why}"),
    };
    for record in &records {
        writeln!(out, "{}", record_line(&header, record, shown))?;
    }
    Ok(())
}

/// One kafka-dump-log `--print-data-log` record line.
fn record_line(header: &BatchHeader, record: &DecodedRecord, shown: Records) -> String {
    let timestamp = if header.is_log_append_time() {
        header.max_timestamp
    } else {
        record.timestamp_ms
    };
    let delta = i32::try_from(record.offset - header.base_offset).unwrap_or(0);
    let size = |b: &Option<Vec<u8>>| b.as_ref().map_or(-1, |b| b.len() as i64);
    let header_keys: Vec<&str> = record.headers.iter().map(|(k, _)| k.as_str()).collect();
    let mut line = format!(
        "| offset: {} {}: {timestamp} keySize: {} valueSize: {} sequence: {} headerKeys: [{}]",
        record.offset,
        timestamp_type(header),
        size(&record.key),
        size(&record.value),
        sequence_plus(header.base_sequence, delta),
        header_keys.join(","),
    );
    if shown != Records::WithData {
        return line;
    }
    if let Some(key) = &record.key {
        line.push_str(&format!(" key: {}", String::from_utf8_lossy(key)));
    }
    if let Some(value) = &record.value {
        line.push_str(&format!(" payload: {}", String::from_utf8_lossy(value)));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_net::client::{Record, RecordBatchBuilder};

    fn batch() -> Vec<u8> {
        let mut builder = RecordBatchBuilder::new(1_700_000_000_000);
        builder.push(&Record {
            key: Some(b"k"),
            value: Some(b"hello"),
            headers: &[("h", Some(b"1"))],
            timestamp_ms: 1_700_000_000_005,
        });
        builder.push(&Record {
            value: Some(b"world"),
            timestamp_ms: 1_700_000_000_007,
            ..Record::default()
        });
        builder.finish().to_vec()
    }

    fn dump(bytes: &[u8], records: Records) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.log");
        std::fs::write(&path, bytes).unwrap();
        let mut out = Vec::new();
        dump_file(&path, records, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .replace(&path.display().to_string(), "FILE")
    }

    #[test]
    fn dumps_batches_and_records() {
        let mut bytes = batch();
        bytes.extend(batch());
        let text = dump(&bytes, Records::WithData);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Dumping FILE");
        assert_eq!(lines[1], "Log starting offset: 0");
        assert!(lines[2].starts_with("baseOffset: 0 lastOffset: 1 count: 2 baseSequence: -1 lastSequence: -1 producerId: -1 producerEpoch: -1 partitionLeaderEpoch: -1 isTransactional: false isControl: false position: 0 CreateTime: 1700000000007 size: "), "{}", lines[2]);
        assert!(
            lines[2].contains(" magic: 2 compresscodec: none crc: "),
            "{}",
            lines[2]
        );
        assert!(lines[2].ends_with(" isvalid: true"), "{}", lines[2]);
        assert_eq!(lines[3], "| offset: 0 CreateTime: 1700000000005 keySize: 1 valueSize: 5 sequence: -1 headerKeys: [h] key: k payload: hello");
        assert_eq!(lines[4], "| offset: 1 CreateTime: 1700000000007 keySize: -1 valueSize: 5 sequence: -1 headerKeys: [] payload: world");
        assert!(lines[5].contains(&format!("position: {}", batch().len())));
        assert_eq!(lines.len(), 8);
        let listed = dump(&bytes, Records::Listed);
        assert!(listed.contains("| offset: 0 CreateTime: 1700000000005 keySize: 1 valueSize: 5 sequence: -1 headerKeys: [h]\n"), "{listed}");
        assert_eq!(dump(&bytes, Records::Hidden).lines().count(), 4);
    }

    #[test]
    fn flags_corrupt_batches_and_torn_tails() {
        let mut bytes = batch();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        bytes.extend_from_slice(&[0u8; 20]);
        let text = dump(&bytes, Records::WithData);
        assert!(text.contains("isvalid: false"), "{text}");
        assert!(text.contains("| records not shown: the batch fails its CRC check"));
        assert!(text.contains("Found 20 invalid bytes at the end of the file"));
    }

    #[test]
    fn decodes_compressed_batches() {
        use sluice_engine::compression::CompressionType;
        use sluice_engine::testing::build_compressed_batch;
        let mut bytes = Vec::new();
        for codec in CompressionType::ALL {
            let value = format!("payload-{codec}");
            let batch = build_compressed_batch(&[(Some(b"k"), Some(value.as_bytes()), 5)], codec);
            bytes.extend_from_slice(&batch);
        }
        let text = dump(&bytes, Records::WithData);
        for codec in CompressionType::ALL {
            assert!(
                text.contains(&format!("compresscodec: {codec} ")),
                "{codec}: {text}"
            );
            assert!(
                text.contains(&format!("CreateTime: 5 keySize: 1 valueSize: {} sequence: -1 headerKeys: [] key: k payload: payload-{codec}\n", 8 + codec.name().len())),
                "{codec}: {text}"
            );
        }
    }

    #[test]
    fn sequences_wrap_like_kafka() {
        assert_eq!(sequence_plus(-1, 5), -1);
        assert_eq!(sequence_plus(3, 2), 5);
        assert_eq!(sequence_plus(i32::MAX, 1), 0);
        assert_eq!(sequence_plus(i32::MAX - 1, 3), 1);
    }
}
