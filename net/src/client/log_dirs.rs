//! DescribeLogDirs, as Kafka's admin client sends it (`describeLogDirs(brokers)`): to each
//! broker, every partition (a null topic list), one answer per log dir.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};

use crate::client::error::{ClientError, Result};
use crate::client::Client;

/// One partition's replica in a log dir (Kafka's `ReplicaInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaInfo {
    pub topic: String,
    pub partition: i32,
    pub size_bytes: i64,
    pub offset_lag: i64,
    pub is_future: bool,
}

/// One log dir of a broker (Kafka's `LogDirDescription`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirDescription {
    pub log_dir: String,
    /// The dir's error (KAFKA_STORAGE_ERROR: offline); `None` when it is fine.
    pub error: Option<ResponseError>,
    pub replicas: Vec<ReplicaInfo>,
    /// -1: not known (before v4, or an offline dir).
    pub total_bytes: i64,
    pub usable_bytes: i64,
}

impl Client {
    /// DescribeLogDirs of every partition on broker `node_id` at `address`.
    pub async fn describe_log_dirs(
        &mut self,
        node_id: i32,
        address: &str,
    ) -> Result<Vec<LogDirDescription>> {
        let connection = self.node_connection(node_id, address).await?;
        let request = DescribeLogDirsRequest::default().with_topics(None);
        let response = connection.call(&request).await?;
        parse(&response, address)
    }
}

fn parse(response: &DescribeLogDirsResponse, address: &str) -> Result<Vec<LogDirDescription>> {
    ClientError::check(response.error_code, || {
        format!("DescribeLogDirs to {address}")
    })?;
    Ok(response
        .results
        .iter()
        .map(|r| LogDirDescription {
            log_dir: r.log_dir.to_string(),
            error: match r.error_code {
                0 => None,
                code => Some(
                    ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError),
                ),
            },
            replicas: r
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(|p| ReplicaInfo {
                        topic: t.name.0.to_string(),
                        partition: p.partition_index,
                        size_bytes: p.partition_size,
                        offset_lag: p.offset_lag,
                        is_future: p.is_future_key,
                    })
                })
                .collect(),
            total_bytes: r.total_bytes,
            usable_bytes: r.usable_bytes,
        })
        .collect())
}
