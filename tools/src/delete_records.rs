//! `sluice delete-records --offset-json-file F`: kafka-delete-records, with Kafka's JSON
//! format: `{"partitions":[{"topic":"t","partition":0,"offset":5}],"version":1}`
//! (offset -1 means the high watermark).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use clap::Args;
use kafka_protocol::messages::ApiKey;
use serde_json::Value;

use crate::connect::AdminConnection;
use crate::error::{Result, ToolError};
use crate::limits::OFFSET_JSON_BYTES_MAX;

#[derive(Args)]
pub struct DeleteRecordsArgs {
    #[command(flatten)]
    connection: AdminConnection,
    /// Kafka's offset JSON: {"partitions":[{"topic":"t","partition":0,"offset":5}],"version":1}
    #[arg(long, value_name = "FILE")]
    offset_json_file: PathBuf,
}

/// Per topic, `(partition, offset)` in the file's order.
type Deletions = BTreeMap<String, Vec<(i32, i64)>>;

pub async fn run(args: DeleteRecordsArgs) -> Result<()> {
    let text = read_bounded(&args.offset_json_file)?;
    let deletions = parse_offset_json(&text).map_err(|reason| {
        ToolError::new(format!("{}: {reason}", args.offset_json_file.display()))
    })?;
    let mut client = args.connection.connect("delete-records").await?;
    if !client.advertises(ApiKey::DeleteRecords).await? {
        return Err(ToolError::new(format!(
            "deleting records is not supported by this broker: {} does not list DeleteRecords \
             in its ApiVersions answer",
            args.connection.bootstrap_server
        )));
    }
    println!("Executing records delete operation");
    let mut failed = 0usize;
    let mut lines = Vec::new();
    for (topic, partitions) in &deletions {
        for result in client.delete_records(topic, partitions).await? {
            let partition = result.partition;
            match result.error {
                None => lines.push(format!(
                    "partition: {topic}-{partition}\tlow_watermark: {}",
                    result.low_watermark
                )),
                Some(error) => {
                    failed += 1;
                    lines.push(format!("partition: {topic}-{partition}\terror: {error}"));
                }
            }
        }
    }
    println!("Records delete operation completed:");
    for line in lines {
        println!("{line}");
    }
    if failed > 0 {
        return Err(ToolError::new(format!(
            "{failed} partition(s) refused the deletion"
        )));
    }
    Ok(())
}

/// A JSON file of at most `OFFSET_JSON_BYTES_MAX` bytes (delete-records, leader-election).
pub(crate) fn read_bounded(path: &PathBuf) -> Result<String> {
    let open_error =
        |error: std::io::Error| ToolError::new(format!("reading {}: {error}", path.display()));
    let file = std::fs::File::open(path).map_err(open_error)?;
    let mut text = String::new();
    file.take(OFFSET_JSON_BYTES_MAX + 1)
        .read_to_string(&mut text)
        .map_err(open_error)?;
    if text.len() as u64 > OFFSET_JSON_BYTES_MAX {
        return Err(ToolError::new(format!(
            "{} is larger than {OFFSET_JSON_BYTES_MAX} bytes",
            path.display()
        )));
    }
    Ok(text)
}

/// Parses Kafka's offset JSON; the error says what is wrong where.
fn parse_offset_json(text: &str) -> std::result::Result<Deletions, String> {
    let json: Value = serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))?;
    if let Some(version) = json.get("version") {
        if version.as_i64() != Some(1) {
            return Err(format!("version {version}: only version 1 is known"));
        }
    }
    let entries = json
        .get("partitions")
        .and_then(Value::as_array)
        .ok_or("expected {\"partitions\": [...], \"version\": 1}")?;
    if entries.is_empty() {
        return Err("\"partitions\" is empty: nothing to delete".into());
    }
    let mut deletions = Deletions::new();
    for (index, entry) in entries.iter().enumerate() {
        let field = |name: &str| {
            entry.get(name).ok_or_else(|| {
                format!("partitions[{index}] has no \"{name}\" (expected topic, partition, offset)")
            })
        };
        let topic = field("topic")?
            .as_str()
            .ok_or_else(|| format!("partitions[{index}].topic is not a string"))?;
        let partition = field("partition")?
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
            .filter(|p| *p >= 0)
            .ok_or_else(|| format!("partitions[{index}].partition is not a partition number"))?;
        let offset = field("offset")?
            .as_i64()
            .filter(|o| *o >= -1)
            .ok_or_else(|| format!("partitions[{index}].offset is not an offset (or -1)"))?;
        let list = deletions.entry(topic.to_string()).or_default();
        if list.iter().any(|(p, _)| *p == partition) {
            return Err(format!(
                "{topic}-{partition} appears more than once (duplicate topic partitions)"
            ));
        }
        list.push((partition, offset));
    }
    Ok(deletions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: std::result::Result<&[(&str, i32, i64)], &str>) {
        let got = parse_offset_json(text).map(|d| {
            d.into_iter()
                .flat_map(|(t, ps)| ps.into_iter().map(move |(p, o)| (t.clone(), p, o)))
                .collect::<Vec<_>>()
        });
        match expected {
            Ok(want) => {
                let want: Vec<_> = want
                    .iter()
                    .map(|(t, p, o)| (t.to_string(), *p, *o))
                    .collect();
                assert_eq!(got, Ok(want), "{text}");
            }
            Err(fragment) => {
                let error = got.expect_err(text);
                assert!(error.contains(fragment), "{text}: {error}");
            }
        }
    }

    #[test]
    fn parses_kafka_offset_json() {
        check(
            r#"{"partitions":[{"topic":"t","partition":0,"offset":5}],"version":1}"#,
            Ok(&[("t", 0, 5)]),
        );
        check(
            r#"{"partitions":[{"topic":"b","partition":1,"offset":-1},{"topic":"a","partition":0,"offset":0}]}"#,
            Ok(&[("a", 0, 0), ("b", 1, -1)]),
        );
        check(r#"{"partitions":[]}"#, Err("empty"));
        check(r#"{"version":2,"partitions":[]}"#, Err("only version 1"));
        check(r#"[1]"#, Err("expected {"));
        check(
            r#"{"partitions":[{"topic":"t","offset":1}]}"#,
            Err("no \"partition\""),
        );
        check(
            r#"{"partitions":[{"topic":"t","partition":0,"offset":-2}]}"#,
            Err("offset"),
        );
        check(
            r#"{"partitions":[{"topic":"t","partition":0,"offset":1},{"topic":"t","partition":0,"offset":2}]}"#,
            Err("more than once"),
        );
        check("{", Err("not JSON"));
    }
}
