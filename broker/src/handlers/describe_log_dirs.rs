//! DescribeLogDirs v1–v4 (Kafka 4 removed v0), as Kafka's `ReplicaManager.describeLogDirs`
//! answers it: one result per `log.dirs` entry (its absolute path). An offline dir (a
//! failed disk, `log_dir_failure`) answers KAFKA_STORAGE_ERROR and nothing else; an online
//! one lists every topic with a log in it, each with the asked partitions among them (a
//! topic none of whose partitions was asked is listed with none, as Kafka does), their size
//! in bytes, offset lag (Kafka's `max(high watermark - log end offset, 0)` for a current
//! log) and `is_future_key` false (no AlterReplicaLogDirs: there are no future logs), and
//! from v4 the filesystem's total and usable bytes (statvfs). A null topic list asks for
//! every partition.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::msg::{call, ShardMsg};
use crate::shard::Shard;

/// One log this shard holds, as DescribeLogDirs describes it (plain data: it crosses shards).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalLogDescription {
    /// The `log.dirs` entry holding the partition's directory.
    pub log_dir: PathBuf,
    pub topic: String,
    pub partition: i32,
    pub size_bytes: u64,
    pub high_watermark: i64,
    pub log_end_offset: i64,
}

/// Every log `shard` owns (answered on the owning shard).
pub fn local_logs(shard: &Shard) -> Vec<LocalLogDescription> {
    let logs = shard.logs.borrow();
    logs.iter()
        .filter_map(|(tp, log)| {
            let l = log.borrow();
            Some(LocalLogDescription {
                log_dir: l.dir().parent()?.to_path_buf(),
                topic: tp.topic.to_string(),
                partition: tp.partition,
                size_bytes: l.size_bytes(),
                high_watermark: l.high_watermark(),
                log_end_offset: l.log_end_offset(),
            })
        })
        .collect()
}

/// A log dir's state, read off the shard thread (statvfs may block on a failing disk).
struct DirState {
    path: PathBuf,
    offline: bool,
    /// (total, usable) bytes; `None` when statvfs failed.
    space: Option<(i64, i64)>,
}

pub async fn handle(
    shard: &Rc<Shard>,
    _version: i16,
    req: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let asked: Option<HashSet<(String, i32)>> = req.topics.map(|topics| {
        topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
            .collect()
    });
    let gathered = futures_util::future::join_all(
        (0..shard.shard_count())
            .map(|to| call(&shard.peers, to, |reply| ShardMsg::LogDirs { reply })),
    )
    .await;
    let logs: Vec<LocalLogDescription> = gathered.into_iter().flatten().flatten().collect();
    let dirs = dir_states(shard).await;
    let mut resp = DescribeLogDirsResponse::default();
    resp.results = dirs
        .iter()
        .map(|dir| describe_dir(dir, &logs, asked.as_ref()))
        .collect();
    resp
}

async fn dir_states(shard: &Shard) -> Vec<DirState> {
    let failures = shard.broker.log_dir_failures.clone();
    let dirs = shard.broker.log_dirs.clone();
    let read = compio::runtime::spawn_blocking(move || {
        dirs.iter()
            .map(|d| {
                let offline = failures.is_offline(d);
                let space = match offline {
                    true => None,
                    false => sluice_engine::logdir::filesystem_space(d).ok().map(|s| {
                        // Kafka's `adjustForLargeFileSystems`: a size past i64 is i64::MAX.
                        let clamp = |b: u64| i64::try_from(b).unwrap_or(i64::MAX);
                        (clamp(s.total_bytes), clamp(s.usable_bytes))
                    }),
                };
                DirState {
                    path: d.clone(),
                    offline,
                    space,
                }
            })
            .collect()
    })
    .await;
    read.unwrap_or_else(|_| {
        tracing::error!("DescribeLogDirs: reading the log dirs' state panicked");
        Vec::new()
    })
}

fn describe_dir(
    dir: &DirState,
    logs: &[LocalLogDescription],
    asked: Option<&HashSet<(String, i32)>>,
) -> DescribeLogDirsResult {
    let mut result = DescribeLogDirsResult::default();
    let path = std::path::absolute(&dir.path).unwrap_or_else(|_| dir.path.clone());
    result.log_dir = StrBytes::from_string(path.display().to_string());
    if dir.offline {
        result.error_code = ResponseError::KafkaStorageError.code();
        return result;
    }
    let Some((total, usable)) = dir.space else {
        // Kafka answers the exception's code: an I/O error on an online dir is unexpected.
        tracing::warn!(log_dir = %dir.path.display(), "DescribeLogDirs: statvfs failed");
        result.error_code = ResponseError::UnknownServerError.code();
        return result;
    };
    (result.total_bytes, result.usable_bytes) = (total, usable);
    let mut topics: BTreeMap<&str, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for log in logs.iter().filter(|l| l.log_dir == dir.path) {
        let partitions = topics.entry(&log.topic).or_default();
        let wanted = asked.is_none_or(|a| a.contains(&(log.topic.clone(), log.partition)));
        if wanted {
            partitions.push(
                DescribeLogDirsPartition::default()
                    .with_partition_index(log.partition)
                    .with_partition_size(i64::try_from(log.size_bytes).unwrap_or(i64::MAX))
                    .with_offset_lag((log.high_watermark - log.log_end_offset).max(0))
                    .with_is_future_key(false),
            );
        }
    }
    result.topics = topics
        .into_iter()
        .map(|(name, mut partitions)| {
            partitions.sort_by_key(|p| p.partition_index);
            DescribeLogDirsTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.to_string())))
                .with_partitions(partitions)
        })
        .collect();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(dir: &str, topic: &str, partition: i32) -> LocalLogDescription {
        LocalLogDescription {
            log_dir: PathBuf::from(dir),
            topic: topic.into(),
            partition,
            size_bytes: 100 + partition as u64,
            high_watermark: 5,
            log_end_offset: 7,
        }
    }

    fn online(path: &str) -> DirState {
        DirState {
            path: PathBuf::from(path),
            offline: false,
            space: Some((1000, 400)),
        }
    }

    #[test]
    fn an_online_dir_lists_its_logs_and_the_filesystem() {
        let logs = [log("/a", "t", 1), log("/a", "t", 0), log("/b", "u", 0)];
        let r = describe_dir(&online("/a"), &logs, None);
        assert_eq!(
            (r.error_code, r.total_bytes, r.usable_bytes),
            (0, 1000, 400)
        );
        assert_eq!(r.topics.len(), 1);
        let parts = &r.topics[0].partitions;
        assert_eq!(
            parts
                .iter()
                .map(|p| (p.partition_index, p.partition_size))
                .collect::<Vec<_>>(),
            vec![(0, 100), (1, 101)]
        );
        assert!(parts.iter().all(|p| p.offset_lag == 0 && !p.is_future_key));
    }

    #[test]
    fn asked_partitions_filter_but_topics_stay_listed_as_kafka_does() {
        let logs = [log("/a", "t", 0), log("/a", "t", 1), log("/a", "u", 0)];
        let asked: HashSet<(String, i32)> = [("t".to_string(), 1)].into();
        let r = describe_dir(&online("/a"), &logs, Some(&asked));
        let got: Vec<(String, Vec<i32>)> = r
            .topics
            .iter()
            .map(|t| {
                let ps = t.partitions.iter().map(|p| p.partition_index).collect();
                (t.name.0.to_string(), ps)
            })
            .collect();
        assert_eq!(got, vec![("t".into(), vec![1]), ("u".into(), vec![])]);
    }

    #[test]
    fn an_offline_dir_answers_kafka_storage_error_only() {
        let dir = DirState {
            path: PathBuf::from("/a"),
            offline: true,
            space: None,
        };
        let r = describe_dir(&dir, &[log("/a", "t", 0)], None);
        assert_eq!(r.error_code, ResponseError::KafkaStorageError.code());
        assert!(r.topics.is_empty());
        assert_eq!((r.total_bytes, r.usable_bytes), (-1, -1));
    }
}
