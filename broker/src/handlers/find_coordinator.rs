//! FindCoordinator v0–v6: this single-node broker coordinates every group; v4 answers a
//! batch of keys. Transaction (1) and share-group (2, v6) keys answer INVALID_REQUEST:
//! neither coordinator exists here. v5 only adds an error code this broker never sends.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use crate::group::OFFSETS_TOPIC;
use crate::shard::Shard;

/// The first version with batched coordinator keys.
const BATCHED_VERSION_MIN: i16 = 4;
/// Key type 0: a group (1 is a transaction).
const KEY_TYPE_GROUP: i8 = 0;

pub fn handle(
    shard: &Rc<Shard>,
    version: i16,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let (host, port) = shard
        .broker
        .advertised
        .first()
        .cloned()
        .unwrap_or_else(|| ("localhost".into(), 0));
    let ready = shard.metadata().topic(OFFSETS_TOPIC).is_some();
    let error = if req.key_type != KEY_TYPE_GROUP {
        ResponseError::InvalidRequest.code()
    } else if !ready {
        ResponseError::CoordinatorNotAvailable.code()
    } else {
        0
    };
    let (node, h, p) = if error == 0 {
        (
            BrokerId(shard.broker.node_id),
            StrBytes::from_string(host),
            port as i32,
        )
    } else {
        (BrokerId(-1), StrBytes::default(), -1)
    };
    let mut resp = FindCoordinatorResponse::default();
    if version >= BATCHED_VERSION_MIN {
        resp.coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let mut c = Coordinator::default();
                c.key = key;
                c.node_id = node;
                c.host = h.clone();
                c.port = p;
                c.error_code = error;
                c
            })
            .collect();
        return resp;
    }
    resp.error_code = error;
    resp.node_id = node;
    resp.host = h;
    resp.port = p;
    resp
}
