//! `sluice log-dirs --describe --bootstrap-server H [--broker-list 1,2] [--topic-list a,b]`:
//! kafka-log-dirs (`LogDirsCommand`). The live brokers come from DescribeCluster; each one
//! asked (all, or those of `--broker-list`, which must exist) is sent DescribeLogDirs for
//! every partition, and `--topic-list` filters the answer, as Kafka's tool does. Output is
//! Kafka's: two lines, then one JSON line, its keys in the order Kafka's `HashMap`s and
//! Jackson print them (`java_hash_map_order`), the error a Java exception class name.

use std::path::PathBuf;

use clap::Args;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use sluice_net::client::log_dirs::{LogDirDescription, ReplicaInfo};

use crate::connect::AdminConnection;
use crate::error::{Result, ToolError};

#[derive(Args)]
pub struct LogDirsArgs {
    /// REQUIRED: the server(s) to use for bootstrapping (host:port[,host:port...]).
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap_server: String,
    /// Property file containing configs to be passed to Admin Client.
    #[arg(long, value_name = "FILE")]
    command_config: Option<PathBuf>,
    /// Describe the specified log directories on the specified brokers.
    #[arg(long, required = true)]
    describe: bool,
    /// The topics to be queried, "topic1,topic2,topic3"; all topics when absent.
    #[arg(long, value_name = "TOPICS", default_value = "")]
    topic_list: String,
    /// The brokers to be queried, "0,1,2"; every broker in the cluster when absent.
    #[arg(long, value_name = "BROKERS", default_value = "")]
    broker_list: String,
}

/// One broker's answer.
type BrokerDirs = (i32, Vec<LogDirDescription>);

pub async fn run(args: LogDirsArgs) -> Result<()> {
    let topics = split_list(&args.topic_list);
    let asked = parse_brokers(&args.broker_list)?;
    let connection = AdminConnection {
        bootstrap_server: args.bootstrap_server.clone(),
        command_config: args.command_config.clone(),
    };
    let mut client = connection.connect("log-dirs").await?;
    if !client.advertises(ApiKey::DescribeLogDirs).await? {
        return Err(ToolError::new(format!(
            "{} does not list DescribeLogDirs in its ApiVersions answer",
            args.bootstrap_server
        )));
    }
    let cluster = client.describe_cluster().await?;
    let live: Vec<(i32, String)> = cluster
        .brokers
        .iter()
        .filter(|b| !b.fenced)
        .map(|b| (b.id, format!("{}:{}", b.host, b.port)))
        .collect();
    let live_ids: Vec<i32> = live.iter().map(|(id, _)| *id).collect();
    let queried = brokers_to_query(&asked, &live_ids)?;
    println!("Querying brokers for log directories information");
    let mut answers: Vec<BrokerDirs> = Vec::new();
    for id in &queried {
        let address = &live.iter().find(|(b, _)| b == id).expect("live").1;
        answers.push((*id, client.describe_log_dirs(*id, address).await?));
    }
    println!(
        "Received log directory information from brokers {}",
        join_ids(&queried)
    );
    println!("{}", format_json(&answers, &topics));
    Ok(())
}

fn split_list(list: &str) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    for item in list.split(',').filter(|s| !s.is_empty()) {
        if !items.iter().any(|i| i == item) {
            items.push(item.to_string());
        }
    }
    items
}

fn parse_brokers(list: &str) -> Result<Vec<i32>> {
    split_list(list)
        .iter()
        .map(|b| {
            b.trim().parse::<i32>().map_err(|_| {
                ToolError::new(format!("--broker-list {list:?}: {b:?} is not a broker id"))
            })
        })
        .collect()
}

/// The brokers asked (every live one when none is), in the order Kafka prints its
/// `HashSet<Integer>`; an asked broker the cluster does not have is Kafka's error.
fn brokers_to_query(asked: &[i32], live: &[i32]) -> Result<Vec<i32>> {
    let missing: Vec<i32> = asked
        .iter()
        .copied()
        .filter(|b| !live.contains(b))
        .collect();
    if !missing.is_empty() {
        return Err(ToolError::new(format!(
            "ERROR: The given brokers do not exist from --broker-list: {}. Current existent \
             brokers: {}",
            join_ids(&java_int_set(&missing)),
            join_ids(&java_int_set(live))
        )));
    }
    Ok(java_int_set(if asked.is_empty() { live } else { asked }))
}

fn join_ids(ids: &[i32]) -> String {
    let text: Vec<String> = ids.iter().map(i32::to_string).collect();
    text.join(",")
}

/// Java's `String.hashCode` (over UTF-16 code units).
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// Kafka's `TopicPartition.hashCode`.
fn java_topic_partition_hash(topic: &str, partition: i32) -> i32 {
    31i32
        .wrapping_add(partition)
        .wrapping_mul(31)
        .wrapping_add(java_string_hash(topic))
}

/// The iteration order of a `java.util.HashMap` (default capacity and load factor) given
/// its keys' `hashCode`s in insertion order: by bucket of the final table, then insertion
/// order within a bucket (a resize keeps it).
fn java_hash_map_order<T>(items: Vec<(i32, T)>) -> Vec<T> {
    let mut capacity: usize = 16;
    while items.len() * 4 > capacity * 3 {
        capacity *= 2;
    }
    let bucket = |h: i32| {
        let h = h as u32;
        ((h ^ (h >> 16)) as usize) & (capacity - 1)
    };
    let mut keyed: Vec<(usize, T)> = items.into_iter().map(|(h, t)| (bucket(h), t)).collect();
    keyed.sort_by_key(|(b, _)| *b); // stable
    keyed.into_iter().map(|(_, t)| t).collect()
}

/// A `HashSet<Integer>`'s order.
fn java_int_set(ids: &[i32]) -> Vec<i32> {
    java_hash_map_order(ids.iter().map(|id| (*id, *id)).collect())
}

/// Kafka's JSON line: `{"brokers":[{"broker":1,"logDirs":[{"partitions":[…],"error":null,
/// "logDir":"/d"}]}],"version":1}`.
fn format_json(answers: &[BrokerDirs], topics: &[String]) -> String {
    let ids: Vec<i32> = answers.iter().map(|(id, _)| *id).collect();
    let brokers: Vec<String> = java_int_set(&ids)
        .iter()
        .filter_map(|id| answers.iter().find(|(b, _)| b == id))
        .map(|(id, dirs)| {
            let dirs = java_hash_map_order(
                dirs.iter()
                    .map(|d| (java_string_hash(&d.log_dir), d))
                    .collect(),
            );
            let dirs: Vec<String> = dirs.iter().map(|d| format_dir(d, topics)).collect();
            format!("{{\"broker\":{id},\"logDirs\":[{}]}}", dirs.join(","))
        })
        .collect();
    format!("{{\"brokers\":[{}],\"version\":1}}", brokers.join(","))
}

fn format_dir(dir: &LogDirDescription, topics: &[String]) -> String {
    let hash = |r: &&ReplicaInfo| java_topic_partition_hash(&r.topic, r.partition);
    // The admin client's map of the answer, then the tool's filtered copy of it.
    let all = java_hash_map_order(dir.replicas.iter().map(|r| (hash(&r), r)).collect());
    let kept: Vec<(i32, &ReplicaInfo)> = all
        .into_iter()
        .filter(|r| topics.is_empty() || topics.contains(&r.topic))
        .map(|r| (hash(&r), r))
        .collect();
    let partitions: Vec<String> = java_hash_map_order(kept)
        .iter()
        .map(|r| {
            format!(
                "{{\"partition\":{},\"size\":{},\"offsetLag\":{},\"isFuture\":{}}}",
                json_string(&format!("{}-{}", r.topic, r.partition)),
                r.size_bytes,
                r.offset_lag,
                r.is_future
            )
        })
        .collect();
    let error = match dir.error {
        None => "null".to_string(),
        Some(e) => json_string(&java_exception_name(e)),
    };
    format!(
        "{{\"partitions\":[{}],\"error\":{error},\"logDir\":{}}}",
        partitions.join(","),
        json_string(&dir.log_dir)
    )
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// The class of `Errors.forCode(code).exception()`: most are the error's name in camel
/// case with `Exception`; a few are named otherwise.
fn java_exception_name(error: ResponseError) -> String {
    let package = "org.apache.kafka.common.errors";
    let irregular = match error {
        ResponseError::KafkaStorageError => Some("KafkaStorageException"),
        ResponseError::UnknownServerError => Some("UnknownServerException"),
        ResponseError::ClusterAuthorizationFailed => Some("ClusterAuthorizationException"),
        _ => None,
    };
    match irregular {
        Some(name) => format!("{package}.{name}"),
        None => format!("{package}.{error:?}Exception"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(topic: &str, partition: i32, size: i64) -> ReplicaInfo {
        ReplicaInfo {
            topic: topic.into(),
            partition,
            size_bytes: size,
            offset_lag: 0,
            is_future: false,
        }
    }

    #[test]
    fn java_hashes() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("logDir"), -1_097_370_967);
        // 31 * (31 + 0) + "t".hashCode() (116); t-1 lands in an earlier bucket than t-0.
        assert_eq!(java_topic_partition_hash("t", 0), 1077);
    }

    #[test]
    fn hash_map_order_is_by_bucket_then_insertion() {
        // Jackson prints Kafka's field maps in this order (checked against Kafka's output).
        let keys = ["logDir", "error", "partitions"];
        let order = java_hash_map_order(keys.iter().map(|k| (java_string_hash(k), *k)).collect());
        assert_eq!(order, ["partitions", "error", "logDir"]);
        assert_eq!(java_int_set(&[3, 17, 1, 2]), [17, 1, 2, 3]);
    }

    #[test]
    fn kafka_json_line() {
        let dirs = vec![
            LogDirDescription {
                log_dir: "/d/a".into(),
                error: None,
                replicas: vec![replica("t", 1, 70), replica("t", 0, 10), replica("u", 0, 5)],
                total_bytes: 100,
                usable_bytes: 50,
            },
            LogDirDescription {
                log_dir: "/d/b".into(),
                error: Some(ResponseError::KafkaStorageError),
                replicas: vec![],
                total_bytes: -1,
                usable_bytes: -1,
            },
        ];
        let line = format_json(&[(1, dirs)], &["t".to_string()]);
        assert_eq!(
            line,
            "{\"brokers\":[{\"broker\":1,\"logDirs\":[\
             {\"partitions\":[{\"partition\":\"t-1\",\"size\":70,\"offsetLag\":0,\"isFuture\":false},\
             {\"partition\":\"t-0\",\"size\":10,\"offsetLag\":0,\"isFuture\":false}],\
             \"error\":null,\"logDir\":\"/d/a\"},\
             {\"partitions\":[],\"error\":\"org.apache.kafka.common.errors.KafkaStorageException\",\
             \"logDir\":\"/d/b\"}]}],\"version\":1}"
        );
    }

    #[test]
    fn unknown_brokers_are_kafkas_error() {
        let err = brokers_to_query(&[5, 1], &[1, 2]).unwrap_err().to_string();
        assert_eq!(
            err,
            "ERROR: The given brokers do not exist from --broker-list: 5. Current existent \
             brokers: 1,2"
        );
        assert_eq!(brokers_to_query(&[], &[2, 1]).unwrap(), [1, 2]);
        assert!(parse_brokers("1,x").is_err());
    }
}
