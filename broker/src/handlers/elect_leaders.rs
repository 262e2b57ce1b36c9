//! ElectLeaders v0–v2: PREFERRED (0; v0's only type) and UNCLEAN (1) elections for the
//! partitions asked, or for every partition when the list is null, decided by the active
//! controller (every broker forwards it, as Kafka's brokers do) with Kafka's per-partition
//! errors: ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE,
//! UNKNOWN_TOPIC_OR_PARTITION. The answer comes once this broker's metadata shows the new
//! leaders. An unknown election type, or a controller that cannot be reached, fails every
//! partition asked with that error (and the top-level error from v1). On a single node every
//! partition has one replica, its leader: an election is never needed.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use sluice_replication::{ControllerReply, ControllerRequest, ElectionType, TopicElections};

use crate::shard::Shard;

/// Kafka's `ElectionType` codes.
pub const ELECTION_TYPE_PREFERRED: i8 = 0;
pub const ELECTION_TYPE_UNCLEAN: i8 = 1;
/// The first version with `election_type` and a top-level error.
const ELECTION_TYPE_VERSION_MIN: i16 = 1;
/// Partitions one request may name.
pub const ELECT_LEADERS_PARTITIONS_MAX: usize = 100_000;

pub async fn handle(
    shard: &Rc<Shard>,
    version: i16,
    req: ElectLeadersRequest,
) -> ElectLeadersResponse {
    let asked: Option<Vec<(String, Vec<i32>)>> = req.topic_partitions.as_ref().map(|topics| {
        topics
            .iter()
            .map(|t| (t.topic.0.to_string(), t.partitions.clone()))
            .collect()
    });
    let count: usize = asked.iter().flatten().map(|(_, p)| p.len()).sum();
    if count > ELECT_LEADERS_PARTITIONS_MAX {
        let message = format!("{count} partitions is more than {ELECT_LEADERS_PARTITIONS_MAX}");
        return failed(version, &asked, ResponseError::InvalidRequest, &message);
    }
    let election = match req.election_type {
        _ if version < ELECTION_TYPE_VERSION_MIN => ElectionType::Preferred,
        ELECTION_TYPE_PREFERRED => ElectionType::Preferred,
        ELECTION_TYPE_UNCLEAN => ElectionType::Unclean,
        other => {
            let message = format!("Unknown election type {other}");
            return failed(version, &asked, ResponseError::InvalidRequest, &message);
        }
    };
    let Some(handle) = &shard.broker.cluster else {
        return respond(single_node(shard, asked));
    };
    let request = ControllerRequest::ElectLeaders {
        election,
        topics: asked.clone(),
    };
    match handle.call_committed(request).await {
        Ok((ControllerReply::Elections(results), index)) => {
            crate::cluster::wait_applied(shard, index).await;
            respond(results)
        }
        Ok(_) => failed(
            version,
            &asked,
            ResponseError::UnknownServerError,
            "the controller answered ElectLeaders with something else",
        ),
        Err(e) => {
            let error =
                ResponseError::try_from_code(e.code).unwrap_or(ResponseError::NotController);
            failed(version, &asked, error, &e.message)
        }
    }
}

/// A single node: every known partition already has its only replica as leader.
fn single_node(shard: &Shard, asked: Option<Vec<(String, Vec<i32>)>>) -> Vec<TopicElections> {
    let meta = shard.metadata();
    let asked = asked.unwrap_or_else(|| {
        let mut names: Vec<String> = meta.topics.keys().map(|n| n.to_string()).collect();
        names.sort_unstable();
        names.into_iter().map(|n| (n, Vec::new())).collect()
    });
    asked
        .into_iter()
        .map(|(topic, partitions)| {
            let count = meta.topic(&topic).map_or(0, |t| t.partitions.len() as i32);
            let partitions = partitions
                .into_iter()
                .map(|p| {
                    let (code, message) = match (0..count).contains(&p) {
                        true => (ResponseError::ElectionNotNeeded.code(), None),
                        false => (
                            ResponseError::UnknownTopicOrPartition.code(),
                            Some(format!("No such partition as {topic}-{p}")),
                        ),
                    };
                    sluice_replication::ElectionResult {
                        partition: p,
                        code,
                        message,
                    }
                })
                .collect();
            TopicElections { topic, partitions }
        })
        .collect()
}

fn respond(results: Vec<TopicElections>) -> ElectLeadersResponse {
    let mut resp = ElectLeadersResponse::default();
    resp.replica_election_results = results
        .into_iter()
        .map(|t| {
            let mut r = ReplicaElectionResult::default();
            r.topic = TopicName(StrBytes::from_string(t.topic));
            r.partition_result = t
                .partitions
                .into_iter()
                .map(|p| {
                    let mut out = PartitionResult::default();
                    out.partition_id = p.partition;
                    out.error_code = p.code;
                    out.error_message = p.message.map(StrBytes::from_string);
                    out
                })
                .collect();
            r
        })
        .collect();
    resp
}

/// Kafka's `getErrorResponse`: the top-level error (v1+) and every partition asked with it.
fn failed(
    version: i16,
    asked: &Option<Vec<(String, Vec<i32>)>>,
    error: ResponseError,
    message: &str,
) -> ElectLeadersResponse {
    let results = asked
        .iter()
        .flatten()
        .map(|(topic, partitions)| TopicElections {
            topic: topic.clone(),
            partitions: partitions
                .iter()
                .map(|p| sluice_replication::ElectionResult {
                    partition: *p,
                    code: error.code(),
                    message: Some(message.to_string()),
                })
                .collect(),
        })
        .collect();
    let mut resp = respond(results);
    if version >= ELECTION_TYPE_VERSION_MIN {
        resp.error_code = error.code();
    }
    resp
}
