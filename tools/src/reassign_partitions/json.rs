//! kafka-reassign-partitions' files and the pure parts of its commands: the
//! `--topics-to-move-json-file` (`{"topics": [{"topic": "t"}], "version": 1}`), the
//! `--reassignment-json-file` (`{"version": 1, "partitions": [{"topic": "t", "partition": 0,
//! "replicas": [1, 2], "log_dirs": ["any", "any"]}]}`), written in Kafka's key order, the
//! checks Kafka makes of them, and `--generate`'s proposal (Kafka's rack-unaware
//! `assignReplicasToBrokers`: a random start broker and replica shift).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// A partition and its replicas.
pub type Assignment = Vec<((String, i32), Vec<i32>)>;

/// Kafka's "any" log dir: the broker chooses.
pub const ANY_LOG_DIR: &str = "any";

fn version_ok(value: &Value) -> Result<(), String> {
    match value.get("version") {
        None => Ok(()),
        Some(v) if v.as_i64() == Some(1) => Ok(()),
        Some(v) => Err(format!("Not supported version field value {v}")),
    }
}

/// The topics of a `--topics-to-move-json-file`, in file order, each once.
pub fn parse_topics_to_move(text: &str) -> Result<Vec<String>, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|_| "The input string is not a valid JSON")?;
    version_ok(&value)?;
    let list = value
        .get("topics")
        .and_then(Value::as_array)
        .ok_or("expected {\"topics\": [{\"topic\": \"NAME\"}, ...], \"version\": 1}")?;
    let mut topics: Vec<String> = Vec::new();
    for entry in list {
        let topic = entry
            .get("topic")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{entry} needs a string \"topic\""))?;
        if topics.iter().any(|t| t == topic) {
            return Err(format!(
                "List of topics to reassign contains duplicate entries: {topic}"
            ));
        }
        topics.push(topic.to_string());
    }
    Ok(topics)
}

/// The partitions and target replicas of a `--reassignment-json-file`, with Kafka's checks:
/// not empty, no partition twice, no empty or repeating replica list, `log_dirs` (if given)
/// as long as `replicas` and only "any" (moving a replica between one broker's log dirs
/// is not done).
pub fn parse_reassignment(text: &str) -> Result<Assignment, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|_| "The input string is not a valid JSON")?;
    version_ok(&value)?;
    let list = value.get("partitions").and_then(Value::as_array).ok_or(
        "expected {\"version\": 1, \"partitions\": [{\"topic\": ..., \"partition\": ..., \"replicas\": [...]}]}",
    )?;
    let mut out: Assignment = Vec::new();
    for entry in list {
        let (tp, replicas) = parse_partition(entry)?;
        if out.iter().any(|(seen, _)| *seen == tp) {
            return Err(format!(
                "Partition reassignment contains duplicate topic partitions: {}-{}",
                tp.0, tp.1
            ));
        }
        out.push((tp, replicas));
    }
    if out.is_empty() {
        return Err("Partition reassignment list cannot be empty".into());
    }
    Ok(out)
}

fn parse_partition(entry: &Value) -> Result<((String, i32), Vec<i32>), String> {
    let topic = entry.get("topic").and_then(Value::as_str);
    let partition = entry
        .get("partition")
        .and_then(Value::as_i64)
        .and_then(|p| i32::try_from(p).ok());
    let replicas: Option<Vec<i32>> = entry.get("replicas").and_then(Value::as_array).map(|l| {
        l.iter()
            .filter_map(|r| r.as_i64().and_then(|r| i32::try_from(r).ok()))
            .collect()
    });
    let (Some(topic), Some(partition), Some(replicas)) = (topic, partition, replicas) else {
        return Err(format!(
            "{entry} needs a string \"topic\", an integer \"partition\" and a list of integer \"replicas\""
        ));
    };
    let name = format!("{topic}-{partition}");
    if entry["replicas"].as_array().map(Vec::len) != Some(replicas.len()) {
        return Err(format!(
            "{name}: every replica must be an integer broker id"
        ));
    }
    if replicas.is_empty() {
        return Err("Partition replica list cannot be empty".into());
    }
    let mut seen = BTreeSet::new();
    if let Some(dup) = replicas.iter().find(|r| !seen.insert(**r)) {
        return Err(format!("Partition replica lists may not contain duplicate entries: {name} contains multiple entries for {dup}"));
    }
    if let Some(dirs) = entry.get("log_dirs") {
        let dirs: Vec<&str> = dirs
            .as_array()
            .map(|l| l.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if dirs.len() != replicas.len() {
            return Err(format!(
                "Size of replicas list {replicas:?} is different from size of log dirs list {dirs:?} for partition {name}"
            ));
        }
        if let Some(dir) = dirs.iter().find(|d| **d != ANY_LOG_DIR) {
            return Err(format!("{name}: log dir {dir:?}: moving a replica to a given log dir is not supported yet (use \"any\")"));
        }
    }
    Ok(((topic.to_string(), partition), replicas))
}

/// Kafka's JSON of an assignment: `{"version":1,"partitions":[{"topic":…,"partition":…,
/// "replicas":[…],"log_dirs":["any",…]}]}`, partitions sorted.
pub fn format_assignment(assignment: &Assignment) -> String {
    let mut sorted: Vec<&((String, i32), Vec<i32>)> = assignment.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let partitions: Vec<String> = sorted
        .iter()
        .map(|((topic, partition), replicas)| {
            let ids: Vec<String> = replicas.iter().map(i32::to_string).collect();
            let dirs = vec![format!("\"{ANY_LOG_DIR}\""); replicas.len()];
            format!(
                "{{\"topic\":{},\"partition\":{partition},\"replicas\":[{}],\"log_dirs\":[{}]}}",
                Value::String(topic.clone()),
                ids.join(","),
                dirs.join(",")
            )
        })
        .collect();
    format!(
        "{{\"version\":1,\"partitions\":[{}]}}",
        partitions.join(",")
    )
}

/// `--broker-list 1,2,3`: distinct broker ids.
pub fn parse_broker_list(text: &str) -> Result<Vec<i32>, String> {
    let mut out: Vec<i32> = Vec::new();
    for item in text.split(',') {
        let id: i32 = item
            .trim()
            .parse()
            .map_err(|_| format!("--broker-list {text:?}: {item:?} is not a broker id"))?;
        if out.contains(&id) {
            return Err(format!("Broker list contains duplicate entries: {id}"));
        }
        out.push(id);
    }
    Ok(out)
}

/// Kafka's rack-unaware placement of `partitions` partitions with `replication_factor`
/// replicas on `brokers`, from `start` (the first partition's first replica) and `shift`
/// (the gap to its second), shift growing by one every full round of brokers.
pub fn place(
    brokers: &[i32],
    partitions: i32,
    replication_factor: usize,
    (start, mut shift): (usize, usize),
) -> Result<Vec<Vec<i32>>, String> {
    let n = brokers.len();
    if replication_factor == 0 || replication_factor > n {
        return Err(format!(
            "Replication factor: {replication_factor} larger than available brokers: {n}."
        ));
    }
    let mut out = Vec::new();
    for p in 0..partitions.max(0) as usize {
        if p > 0 && p % n == 0 {
            shift += 1;
        }
        let first = (p + start) % n;
        let mut replicas = vec![brokers[first]];
        for j in 0..replication_factor - 1 {
            let gap = 1 + (shift + j) % (n - 1);
            replicas.push(brokers[(first + gap) % n]);
        }
        out.push(replicas);
    }
    Ok(out)
}

/// `--generate`'s proposal: every partition of each topic placed again on `brokers` with
/// its current replication factor.
pub fn propose(
    current: &Assignment,
    brokers: &[i32],
    random: impl Fn(usize) -> usize,
) -> Result<Assignment, String> {
    let mut by_topic: BTreeMap<&str, Vec<(i32, usize)>> = BTreeMap::new();
    for ((topic, partition), replicas) in current {
        by_topic
            .entry(topic)
            .or_default()
            .push((*partition, replicas.len()));
    }
    let mut out = Assignment::new();
    for (topic, mut partitions) in by_topic {
        partitions.sort_unstable();
        let rf = partitions.first().map_or(1, |p| p.1);
        let count = partitions.last().map_or(0, |p| p.0 + 1);
        let n = brokers.len().max(1);
        let placed = place(brokers, count, rf, (random(n), random(n)))?;
        for (partition, _) in partitions {
            out.push((
                (topic.to_string(), partition),
                placed[partition as usize].clone(),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassignment_files_are_kafkas_and_bad_ones_say_why() {
        let text = r#"{"version":1,"partitions":[{"topic":"t","partition":1,"replicas":[3,2],"log_dirs":["any","any"]},{"topic":"t","partition":0,"replicas":[2]}]}"#;
        let parsed = parse_reassignment(text).unwrap();
        assert_eq!(
            parsed,
            vec![(("t".into(), 1), vec![3, 2]), (("t".into(), 0), vec![2])]
        );
        assert_eq!(
            format_assignment(&parsed),
            r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2],"log_dirs":["any"]},{"topic":"t","partition":1,"replicas":[3,2],"log_dirs":["any","any"]}]}"#
        );
        assert_eq!(
            parse_reassignment(&format_assignment(&parsed))
                .unwrap()
                .len(),
            2
        );
        let bad = |text: &str, why: &str| {
            let e = parse_reassignment(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        };
        bad("{", "not a valid JSON");
        bad(r#"{"version":2,"partitions":[]}"#, "Not supported version");
        bad(r#"{"version":1,"partitions":[]}"#, "cannot be empty");
        bad(
            r#"{"partitions":[{"topic":"t","partition":0,"replicas":[]}]}"#,
            "replica list cannot be empty",
        );
        bad(
            r#"{"partitions":[{"topic":"t","partition":0,"replicas":[1,1]}]}"#,
            "t-0 contains multiple entries for 1",
        );
        bad(
            r#"{"partitions":[{"topic":"t","partition":0,"replicas":[1]},{"topic":"t","partition":0,"replicas":[2]}]}"#,
            "duplicate topic partitions: t-0",
        );
        bad(
            r#"{"partitions":[{"topic":"t","partition":0,"replicas":[1,"x"]}]}"#,
            "integer broker id",
        );
        bad(
            r#"{"partitions":[{"topic":"t","partition":0,"replicas":[1],"log_dirs":["/d"]}]}"#,
            "not supported yet",
        );
        bad(
            r#"{"partitions":[{"topic":"t","partition":0,"replicas":[1,2],"log_dirs":["any"]}]}"#,
            "different from size of log dirs",
        );
        bad(r#"{"partitions":[{"topic":"t"}]}"#, "needs a string");
    }

    #[test]
    fn topics_to_move_and_broker_lists() {
        assert_eq!(
            parse_topics_to_move(r#"{"topics":[{"topic":"b"},{"topic":"a"}],"version":1}"#)
                .unwrap(),
            ["b", "a"]
        );
        assert!(
            parse_topics_to_move(r#"{"topics":[{"topic":"a"},{"topic":"a"}]}"#)
                .unwrap_err()
                .contains("duplicate entries: a")
        );
        assert!(parse_topics_to_move(r#"{"topic":"a"}"#).is_err());
        assert_eq!(parse_broker_list("1, 2,3").unwrap(), [1, 2, 3]);
        assert!(parse_broker_list("1,1").unwrap_err().contains("duplicate"));
        assert!(parse_broker_list("1,x").is_err());
    }

    #[test]
    fn placement_spreads_leaders_and_replicas_as_kafka_does() {
        let placed = place(&[1, 2, 3], 4, 2, (0, 0)).unwrap();
        assert_eq!(placed, vec![vec![1, 2], vec![2, 3], vec![3, 1], vec![1, 3]]);
        for r in place(&[1, 2, 3, 4], 8, 3, (2, 1)).unwrap() {
            let distinct: BTreeSet<i32> = r.iter().copied().collect();
            assert_eq!(distinct.len(), 3, "{r:?}");
        }
        assert!(place(&[1], 1, 2, (0, 0))
            .unwrap_err()
            .contains("larger than"));
        let current = vec![(("t".into(), 0), vec![1, 2]), (("t".into(), 1), vec![2, 1])];
        let proposed = propose(&current, &[3, 4], |_| 0).unwrap();
        assert_eq!(
            proposed,
            vec![(("t".into(), 0), vec![3, 4]), (("t".into(), 1), vec![4, 3])]
        );
    }
}
