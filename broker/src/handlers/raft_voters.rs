//! AddRaftVoter v0 (API 80) and RemoveRaftVoter v0 (API 81), what `kafka-metadata-quorum
//! add-controller` / `remove-controller` send: forwarded to the metadata quorum's leader
//! (`sluice_replication::quorum::voters`). A single node has no quorum to change.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    AddRaftVoterRequest, AddRaftVoterResponse, RemoveRaftVoterRequest, RemoveRaftVoterResponse,
};
use kafka_protocol::protocol::StrBytes;
use sluice_replication::ControllerRequest;

use crate::shard::Shard;

/// Kafka's error code and message, or None for success.
type Outcome = Option<(i16, String)>;

pub async fn handle_add(
    shard: &Rc<Shard>,
    _version: i16,
    req: AddRaftVoterRequest,
) -> AddRaftVoterResponse {
    let outcome = add(shard, req).await;
    let mut resp = AddRaftVoterResponse::default();
    if let Some((code, message)) = outcome {
        resp.error_code = code;
        resp.error_message = Some(StrBytes::from_string(message));
    }
    resp
}

pub async fn handle_remove(
    shard: &Rc<Shard>,
    _version: i16,
    req: RemoveRaftVoterRequest,
) -> RemoveRaftVoterResponse {
    let outcome = forward(
        shard,
        req.cluster_id.as_deref(),
        ControllerRequest::RemoveRaftVoter {
            voter_id: req.voter_id,
            directory_id: req.voter_directory_id,
        },
    )
    .await;
    let mut resp = RemoveRaftVoterResponse::default();
    if let Some((code, message)) = outcome {
        resp.error_code = code;
        resp.error_message = Some(StrBytes::from_string(message));
    }
    resp
}

async fn add(shard: &Rc<Shard>, req: AddRaftVoterRequest) -> Outcome {
    // The leader reaches the new voter on the listener it names (Kafka: the first one).
    let Some(listener) = req.listeners.first() else {
        return Some((
            ResponseError::InvalidRequest.code(),
            "AddRaftVoter names no listener of the new voter".into(),
        ));
    };
    if listener.host.is_empty() || listener.port == 0 {
        return Some((
            ResponseError::InvalidRequest.code(),
            format!(
                "listener {}://{}:{} is not an address",
                listener.name.as_str(),
                listener.host.as_str(),
                listener.port
            ),
        ));
    }
    let request = ControllerRequest::AddRaftVoter {
        voter_id: req.voter_id,
        directory_id: req.voter_directory_id,
        addr: format!("{}:{}", listener.host.as_str(), listener.port),
        timeout_ms: u64::try_from(req.timeout_ms).unwrap_or(0),
    };
    forward(shard, req.cluster_id.as_deref(), request).await
}

async fn forward(
    shard: &Rc<Shard>,
    cluster_id: Option<&str>,
    request: ControllerRequest,
) -> Outcome {
    let Some(cluster) = &shard.broker.cluster else {
        return Some((
            ResponseError::UnsupportedVersion.code(),
            "this broker is a single node (no process.roles): it has no metadata quorum".into(),
        ));
    };
    if let Some(id) = cluster_id.filter(|id| *id != shard.broker.cluster_id) {
        return Some((
            ResponseError::InconsistentClusterId.code(),
            format!(
                "cluster id {id} is not this cluster's ({})",
                shard.broker.cluster_id
            ),
        ));
    }
    match cluster.call(request).await {
        Ok(_) => None,
        Err(e) => Some((e.code, e.message)),
    }
}
