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
    let key_type = req.key_type;
    let mut resp = FindCoordinatorResponse::default();
    if version >= BATCHED_VERSION_MIN {
        resp.coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let (error, node, host, port) = locate(shard, key_type, &key);
                let mut c = Coordinator::default();
                c.key = key;
                c.node_id = node;
                c.host = host;
                c.port = port;
                c.error_code = error;
                c
            })
            .collect();
        return resp;
    }
    let (error, node, host, port) = locate(shard, key_type, &req.key);
    resp.error_code = error;
    resp.node_id = node;
    resp.host = host;
    resp.port = port;
    resp
}

/// Where `key`'s coordinator is: this broker on a single node; in a cluster the leader of
/// the group's `__consumer_offsets` partition (Kafka's rule).
fn locate(shard: &Shard, key_type: i8, key: &StrBytes) -> (i16, BrokerId, StrBytes, i32) {
    let unavailable = |code: ResponseError| (code.code(), BrokerId(-1), StrBytes::default(), -1);
    if key_type != KEY_TYPE_GROUP {
        return unavailable(ResponseError::InvalidRequest);
    }
    let meta = shard.metadata();
    let Some(topic) = meta.topic(OFFSETS_TOPIC) else {
        return unavailable(ResponseError::CoordinatorNotAvailable);
    };
    let p = crate::group::store::partition_for(key, topic.partitions.len() as i32);
    let (node, host, port) = match &topic.partitions[p as usize].replication {
        None => {
            let (host, port) = shard
                .broker
                .advertised
                .first()
                .cloned()
                .unwrap_or_else(|| ("localhost".into(), 0));
            (shard.broker.node_id, host, port)
        }
        Some(r) => match meta.brokers.iter().find(|b| b.node_id == r.leader) {
            Some(b) => (b.node_id, b.host.clone(), b.port),
            None => return unavailable(ResponseError::CoordinatorNotAvailable),
        },
    };
    (0, BrokerId(node), StrBytes::from_string(host), port as i32)
}
