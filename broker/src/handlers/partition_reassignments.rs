//! AlterPartitionReassignments v0–v1 (API 45) and ListPartitionReassignments v0 (API 46),
//! KIP-455: forwarded to the active controller (as Kafka's brokers do), which decides them
//! with Kafka's per-partition errors (`sluice_replication::controller::reassignment`):
//! UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT (an empty list, a broker twice,
//! an unregistered broker, a cancel that would need an unclean election),
//! NO_REASSIGNMENT_IN_PROGRESS (cancelling nothing), and from v1 INVALID_REPLICATION_FACTOR
//! when `allow_replication_factor_change` is false and the count changes. An Alter answer
//! comes once this broker's metadata shows the new replica lists. A controller that cannot
//! be reached fails the request with the top-level error and every partition with it
//! (Kafka's `getErrorResponse`). Cluster nodes only (`CLUSTER_ONLY`): a single node has no
//! other broker to move a replica to.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sluice_replication::controller::reassignment::ReassignmentAsk;
use sluice_replication::{ControllerError, ControllerReply, ControllerRequest, TopicOutcomes};

use crate::shard::Shard;

/// Partitions one request may name.
pub const REASSIGNMENT_PARTITIONS_MAX: usize = 100_000;
/// Replicas one partition's target may list (a longer list cannot name distinct
/// registered brokers of any cluster we run).
pub const REASSIGNMENT_REPLICAS_MAX: usize = 1024;

pub async fn handle_alter(
    shard: &Rc<Shard>,
    _version: i16,
    req: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let asks: Vec<ReassignmentAsk> = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let replicas = p
                        .replicas
                        .as_ref()
                        .map(|r| r.iter().map(|b| b.0).collect::<Vec<i32>>());
                    (p.partition_index, replicas)
                })
                .collect();
            (t.name.0.to_string(), partitions)
        })
        .collect();
    let allow = req.allow_replication_factor_change;
    let count: usize = asks.iter().map(|(_, p)| p.len()).sum();
    let longest = asks
        .iter()
        .flat_map(|(_, p)| p.iter().filter_map(|(_, r)| r.as_ref().map(Vec::len)))
        .max()
        .unwrap_or(0);
    if count > REASSIGNMENT_PARTITIONS_MAX || longest > REASSIGNMENT_REPLICAS_MAX {
        let message = format!("{count} partitions (at most {REASSIGNMENT_PARTITIONS_MAX}) or a list of {longest} replicas (at most {REASSIGNMENT_REPLICAS_MAX})");
        return alter_failed(&asks, allow, ResponseError::InvalidRequest.code(), &message);
    }
    let Some(handle) = &shard.broker.cluster else {
        return alter_failed(
            &asks,
            allow,
            ResponseError::UnsupportedVersion.code(),
            "a single node has no replicas to reassign",
        );
    };
    let request = ControllerRequest::AlterPartitionReassignments {
        topics: asks.clone(),
        allow_replication_factor_change: allow,
    };
    match handle.call_committed(request).await {
        Ok((ControllerReply::Reassignments(results), index)) => {
            crate::cluster::wait_applied(shard, index).await;
            alter_response(results, allow)
        }
        Ok(_) => alter_failed(
            &asks,
            allow,
            ResponseError::UnknownServerError.code(),
            "the controller answered AlterPartitionReassignments with something else",
        ),
        Err(e) => alter_failed(&asks, allow, forwarding_code(&e), &e.message),
    }
}

/// The error a client sees when the controller could not decide (NOT_CONTROLLER when the
/// code is not one Kafka knows).
fn forwarding_code(e: &ControllerError) -> i16 {
    ResponseError::try_from_code(e.code)
        .unwrap_or(ResponseError::NotController)
        .code()
}

fn alter_response(results: Vec<TopicOutcomes>, allow: bool) -> AlterPartitionReassignmentsResponse {
    let mut resp = AlterPartitionReassignmentsResponse::default();
    resp.allow_replication_factor_change = allow;
    resp.responses = results
        .into_iter()
        .map(|t| {
            let mut topic = ReassignableTopicResponse::default();
            topic.name = TopicName(StrBytes::from_string(t.topic));
            topic.partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let mut out = ReassignablePartitionResponse::default();
                    out.partition_index = p.partition;
                    out.error_code = p.code;
                    out.error_message = p.message.map(StrBytes::from_string);
                    out
                })
                .collect();
            topic
        })
        .collect();
    resp
}

/// Kafka's `getErrorResponse`: the top-level error and every partition asked with it.
fn alter_failed(
    asks: &[ReassignmentAsk],
    allow: bool,
    code: i16,
    message: &str,
) -> AlterPartitionReassignmentsResponse {
    let results = asks
        .iter()
        .map(|(topic, partitions)| TopicOutcomes {
            topic: topic.clone(),
            partitions: partitions
                .iter()
                .map(|(p, _)| sluice_replication::PartitionOutcome {
                    partition: *p,
                    code,
                    message: Some(message.to_string()),
                })
                .collect(),
        })
        .collect();
    let mut resp = alter_response(results, allow);
    resp.error_code = code;
    resp.error_message = Some(StrBytes::from_string(message.to_string()));
    resp
}

pub async fn handle_list(
    shard: &Rc<Shard>,
    _version: i16,
    req: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let topics: Option<Vec<(String, Vec<i32>)>> = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let failed = |code: i16, message: &str| {
        let mut resp = ListPartitionReassignmentsResponse::default();
        resp.error_code = code;
        resp.error_message = Some(StrBytes::from_string(message.to_string()));
        resp
    };
    let count: usize = topics.iter().flatten().map(|(_, p)| p.len()).sum();
    if count > REASSIGNMENT_PARTITIONS_MAX {
        let message = format!("{count} partitions is more than {REASSIGNMENT_PARTITIONS_MAX}");
        return failed(ResponseError::InvalidRequest.code(), &message);
    }
    let Some(handle) = &shard.broker.cluster else {
        return ListPartitionReassignmentsResponse::default();
    };
    match handle
        .call(ControllerRequest::ListPartitionReassignments { topics })
        .await
    {
        Ok(ControllerReply::OngoingReassignments(ongoing)) => {
            let mut resp = ListPartitionReassignmentsResponse::default();
            resp.topics = ongoing
                .into_iter()
                .map(|(name, partitions)| {
                    let mut t = OngoingTopicReassignment::default();
                    t.name = TopicName(StrBytes::from_string(name));
                    t.partitions = partitions
                        .into_iter()
                        .map(|p| {
                            let ids = |v: Vec<i32>| v.into_iter().map(BrokerId).collect();
                            let mut out = OngoingPartitionReassignment::default();
                            out.partition_index = p.partition;
                            out.replicas = ids(p.replicas);
                            out.adding_replicas = ids(p.adding_replicas);
                            out.removing_replicas = ids(p.removing_replicas);
                            out
                        })
                        .collect();
                    t
                })
                .collect();
            resp
        }
        Ok(_) => failed(
            ResponseError::UnknownServerError.code(),
            "the controller answered ListPartitionReassignments with something else",
        ),
        Err(e) => failed(forwarding_code(&e), &e.message),
    }
}
