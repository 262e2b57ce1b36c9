//! Kafka's offset checkpoint files, one per log dir: `recovery-point-offset-checkpoint`,
//! `replication-offset-checkpoint` (high watermarks; and, in Kafka,
//! `log-start-offset-checkpoint`, which shares the format). The per-partition
//! `leader-epoch-checkpoint` (`crate::leader_epoch`) uses the same framing (version, count,
//! entry lines) through `read_checkpoint_entries` and `write_checkpoint_text`.
//!
//! Format (text, `\n` line ends, Kafka's `CheckpointFile` version 0):
//!
//! ```text
//! 0                      version
//! 2                      entry count N
//! orders 0 1500          N lines: topic, partition, offset, separated by one space
//! my.topic-x 3 42
//! ```
//!
//! Not checksummed. Written whole to `<file>.tmp`, fsynced, renamed over the file and the
//! dir fsynced, so after a crash the file holds either the previous or the new contents,
//! never a mix. A `.tmp` left by a crash is ignored (and overwritten by the next write).

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::logdir::{fsync_dir, is_legal_topic_name};

/// Kafka's per-log-dir checkpoint of recovery points: for every partition, the offset below
/// which its log was fsynced when the checkpoint was written.
pub const RECOVERY_POINT_CHECKPOINT_FILE: &str = "recovery-point-offset-checkpoint";
/// Kafka's per-log-dir checkpoint of high watermarks: for every partition, its high
/// watermark when the checkpoint was written (restored on open, clamped to the log end).
pub const REPLICATION_OFFSET_CHECKPOINT_FILE: &str = "replication-offset-checkpoint";
/// The only checkpoint format version Kafka writes.
pub const CHECKPOINT_VERSION: u32 = 0;

/// Reads a checkpoint file (format in the module doc) into `(topic, partition) -> offset`.
///
/// A missing file is an empty map (a fresh log dir, or one last written by a broker that
/// kept no checkpoint: the caller recovers those partitions from offset 0). A bad version,
/// an entry count that does not match the lines, or a line that is not
/// `<legal topic> <partition >= 0> <offset >= 0>` is `InvalidData` naming the file and
/// the line. A partition listed twice keeps its last offset, as Kafka does.
pub fn read_offset_checkpoint(path: &Path) -> io::Result<HashMap<(String, i32), i64>> {
    let hint = "delete the file: every partition of this log dir then counts as having no \
                checkpointed offset (recovery rescans from 0; high watermarks restart at the \
                log end offset of a single node, or what the leader says)";
    let entries = read_checkpoint_entries(path, hint, parse_entry)?.unwrap_or_default();
    Ok(entries
        .into_iter()
        .map(|(topic, partition, offset)| ((topic, partition), offset))
        .collect())
}

/// Reads a file in Kafka's `CheckpointFile` text format (version line `0`, entry count,
/// one entry per line), each entry parsed by `parse`. `Ok(None)` when the file does not
/// exist. A bad version, a count that does not match the lines or an entry `parse`
/// refuses is `InvalidData` naming the file, the 1-based line and `hint` (what the
/// operator can do about it).
pub fn read_checkpoint_entries<T>(
    path: &Path,
    hint: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> io::Result<Option<Vec<T>>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    };
    let malformed = |line: usize, problem: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "checkpoint {} line {line}: {problem} ({hint})",
                path.display()
            ),
        )
    };
    // `lines()` accepts a missing final newline. Line numbers are 1-based, like an
    // editor's; a missing line is reported at the number it should have had.
    let lines: Vec<&str> = text.lines().collect();
    let line = |n: usize, what: &str| {
        lines
            .get(n - 1)
            .copied()
            .ok_or_else(|| malformed(n, format!("the file ends before the {what}")))
    };
    let version = line(1, "version")?;
    if version != CHECKPOINT_VERSION.to_string() {
        return Err(malformed(1, format!("version {version:?}, expected 0")));
    }
    let count = line(2, "entry count")?;
    let count: usize = parse_decimal(count)
        .ok_or_else(|| malformed(2, format!("entry count {count:?} is not a number")))?;
    // The count is the file's claim: the lines actually present bound the allocation.
    let mut entries = Vec::with_capacity(count.min(lines.len()));
    for n in 3..3 + count {
        let text = line(n, &format!("entry {} of {count}", n - 2))?;
        entries.push(parse(text).ok_or_else(|| malformed(n, format!("bad entry {text:?}")))?);
    }
    let extra = (3 + count..=lines.len()).find(|&n| !lines[n - 1].is_empty());
    if let Some(n) = extra {
        return Err(malformed(n, format!("more entries than the count {count}")));
    }
    Ok(Some(entries))
}

/// `<topic> <partition> <offset>`, single spaces, topic legal, numbers non-negative.
fn parse_entry(line: &str) -> Option<(String, i32, i64)> {
    let mut fields = line.split(' ');
    let topic = fields.next()?;
    let partition: i32 = parse_decimal(fields.next()?)?;
    let offset: i64 = parse_decimal(fields.next()?)?;
    let well_formed = fields.next().is_none() && is_legal_topic_name(topic);
    well_formed.then(|| (topic.to_owned(), partition, offset))
}

/// Plain decimal digits only (no sign, no spaces), within the type's range.
pub(crate) fn parse_decimal<T: std::str::FromStr>(field: &str) -> Option<T> {
    let digits = !field.is_empty() && field.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| field.parse().ok()).flatten()
}

/// Writes a checkpoint file (format in the module doc) atomically: the whole text to
/// `<path>.tmp`, fdatasync, rename over `path`, fsync of the containing dir. After a crash
/// `path` holds the old or the new entries. Entries are written in the order given.
/// A topic name that is not legal (it could contain a space) or a negative partition or
/// offset is `InvalidInput` and nothing is written.
pub fn write_offset_checkpoint(path: &Path, entries: &[(String, i32, i64)]) -> io::Result<()> {
    let mut text = format!("{CHECKPOINT_VERSION}\n{}\n", entries.len());
    for (topic, partition, offset) in entries {
        if !is_legal_topic_name(topic) || *partition < 0 || *offset < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "offset checkpoint {}: cannot record topic {topic:?} partition {partition} \
                     offset {offset}",
                    path.display()
                ),
            ));
        }
        text.push_str(&format!("{topic} {partition} {offset}\n"));
    }
    write_checkpoint_text(path, &text)
}

/// Writes `text` to `path` atomically: `<path>.tmp`, fdatasync, rename over `path`, fsync
/// of the containing dir. After a crash `path` holds the old or the new text.
pub(crate) fn write_checkpoint_text(path: &Path, text: &str) -> io::Result<()> {
    let with_path =
        |e: io::Error, at: &Path| io::Error::new(e.kind(), format!("{}: {e}", at.display()));
    let tmp = tmp_path(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| with_path(e, &tmp))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(|e| with_path(e, &tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(|e| with_path(e, path))?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    fsync_dir(dir.unwrap_or(Path::new(".")))
}

/// `<path>.tmp`, Kafka's temporary name for a checkpoint being written.
fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(list: &[(&str, i32, i64)]) -> Vec<(String, i32, i64)> {
        list.iter().map(|&(t, p, o)| (t.to_owned(), p, o)).collect()
    }

    #[test]
    fn round_trip_in_kafka_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RECOVERY_POINT_CHECKPOINT_FILE);
        let written = entries(&[
            ("orders", 0, 1500),
            ("my.topic-with_all.kinds", 12, 0),
            ("__consumer_offsets", 49, i64::MAX),
            ("a-b", 2147483647, 7),
        ]);
        write_offset_checkpoint(&path, &written).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "0\n4\norders 0 1500\nmy.topic-with_all.kinds 12 0\n__consumer_offsets 49 \
             9223372036854775807\na-b 2147483647 7\n"
        );
        assert!(!tmp_path(&path).exists());
        let read = read_offset_checkpoint(&path).unwrap();
        let expected: HashMap<_, _> = written.into_iter().map(|(t, p, o)| ((t, p), o)).collect();
        assert_eq!(read, expected);

        write_offset_checkpoint(&path, &[]).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "0\n0\n");
        assert!(read_offset_checkpoint(&path).unwrap().is_empty());
    }

    #[test]
    fn a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RECOVERY_POINT_CHECKPOINT_FILE);
        assert!(read_offset_checkpoint(&path).unwrap().is_empty());
    }

    #[test]
    fn tolerates_what_kafka_tolerates() {
        let check = |text: &str, expect: &[(&str, i32, i64)]| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(RECOVERY_POINT_CHECKPOINT_FILE);
            fs::write(&path, text).unwrap();
            let expect: HashMap<_, _> = entries(expect)
                .into_iter()
                .map(|(t, p, o)| ((t, p), o))
                .collect();
            assert_eq!(read_offset_checkpoint(&path).unwrap(), expect, "{text:?}");
        };
        check("0\n1\nt 0 5", &[("t", 0, 5)]);
        check("0\n1\nt 0 5\n\n", &[("t", 0, 5)]);
        check("0\n2\nt 0 5\nt 0 9\n", &[("t", 0, 9)]);
    }

    #[test]
    fn malformed_files_name_the_file_and_line() {
        let check = |text: &str, line: usize| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(RECOVERY_POINT_CHECKPOINT_FILE);
            fs::write(&path, text).unwrap();
            let err = read_offset_checkpoint(&path).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{text:?}");
            let message = err.to_string();
            assert!(
                message.contains(&path.display().to_string()),
                "{text:?}: {message}"
            );
            assert!(
                message.contains(&format!("line {line}:")),
                "{text:?}: {message}"
            );
        };
        check("", 1);
        check("1\n0\n", 1);
        check("x\n0\n", 1);
        check("0\n", 2);
        check("0\nmany\n", 2);
        check("0\n-1\n", 2);
        check("0\n2\nt 0 5\n", 4);
        check("0\n1\nt 0 5\nt 1 6\n", 4);
        check("0\n1\nt 0\n", 3);
        check("0\n1\nt 0 5 6\n", 3);
        check("0\n1\nt  0 5\n", 3);
        check("0\n1\nt\t0\t5\n", 3);
        check("0\n1\nt 0 x\n", 3);
        check("0\n1\nt -1 5\n", 3);
        check("0\n1\nt 0 -5\n", 3);
        check("0\n1\nt 0 99999999999999999999\n", 3);
        check("0\n1\nt 2147483648 5\n", 3);
        check("0\n1\nbad/topic 0 5\n", 3);
        check("0\n1\n.. 0 5\n", 3);
        check("0\n1\n 0 5\n", 3);
    }

    #[test]
    fn refuses_entries_the_format_cannot_hold() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RECOVERY_POINT_CHECKPOINT_FILE);
        write_offset_checkpoint(&path, &entries(&[("t", 0, 1)])).unwrap();
        for bad in [("a b", 0, 1), ("t", -1, 1), ("t", 0, -1), ("", 0, 1)] {
            let err = write_offset_checkpoint(&path, &entries(&[bad])).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
        assert_eq!(fs::read_to_string(&path).unwrap(), "0\n1\nt 0 1\n");
    }
}
