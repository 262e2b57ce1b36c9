//! InitProducerId v0–v5 for idempotent producers (`transactional_id` null): every request
//! gets a fresh producer id with epoch 0, as Kafka does without a transactional id (the
//! KIP-360 `producer_id`/`producer_epoch` fields of v3+ only matter for transactional ids).
//!
//! Transactions are not implemented: a request with a transactional id is refused with
//! `TRANSACTIONAL_ID_AUTHORIZATION_FAILED`, the error Kafka gives a client that may not use
//! that transactional id. Clients treat it as fatal and say so, where a retriable error
//! (`COORDINATOR_NOT_AVAILABLE`) would make them retry forever. An empty transactional id is
//! `INVALID_REQUEST`, as in Kafka.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::producer_ids::next_producer_id;
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    _version: i16,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    match req.transactional_id.as_ref().map(|t| t.0.is_empty()) {
        Some(true) => resp.error_code = ResponseError::InvalidRequest.code(),
        Some(false) => resp.error_code = ResponseError::TransactionalIdAuthorizationFailed.code(),
        None => match allocate(shard).await {
            Ok(id) => {
                resp.producer_id = ProducerId(id);
                resp.producer_epoch = 0;
            }
            Err(e) => {
                tracing::error!("cannot allocate a producer id: {e}");
                resp.error_code = ResponseError::CoordinatorNotAvailable.code();
            }
        },
    }
    resp
}

/// A single node's ids come from its own persisted blocks; a cluster's from blocks the
/// controller hands out through the metadata log, so no two brokers give out the same id.
async fn allocate(shard: &Shard) -> Result<i64, String> {
    match &shard.broker.cluster {
        None => next_producer_id(&shard.broker.log_dirs).map_err(|e| e.to_string()),
        Some(handle) => crate::producer_ids::next_cluster_producer_id(handle, shard.broker.node_id)
            .await
            .map_err(|e| e.message),
    }
}
