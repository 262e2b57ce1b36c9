//! DescribeCluster v0–v2, as Kafka 4's `computeDescribeClusterResponse`: the cluster id, the
//! brokers with host, port and rack on this listener (fenced ones only when v2 asks,
//! flagged), `controller_id` a live broker (Kafka in KRaft names a random alive broker:
//! admin requests sent to it are forwarded to the active controller), and the cluster's
//! authorized operations when asked. Brokers serve the BROKER endpoint type only: a
//! CONTROLLER request answers MISMATCHED_ENDPOINT_TYPE (INVALID_REQUEST at v0), an unknown
//! one UNSUPPORTED_ENDPOINT_TYPE.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use crate::authorized_operations::{AUTHORIZED_OPERATIONS_OMITTED, CLUSTER_OPERATIONS};
use crate::metadata::BrokerEndpoint;
use crate::shard::Shard;

/// Kafka's `EndpointType` ids.
pub const ENDPOINT_TYPE_BROKER: i8 = 1;
pub const ENDPOINT_TYPE_CONTROLLER: i8 = 2;

pub fn handle(shard: &Shard, version: i16, req: DescribeClusterRequest) -> DescribeClusterResponse {
    let mut resp = DescribeClusterResponse::default();
    let wrong_type = |code: ResponseError, message: String| {
        let mut r = DescribeClusterResponse::default();
        r.error_code = match version {
            0 => ResponseError::InvalidRequest.code(),
            _ => code.code(),
        };
        r.error_message = Some(StrBytes::from_string(message));
        r
    };
    match req.endpoint_type {
        ENDPOINT_TYPE_BROKER => {}
        ENDPOINT_TYPE_CONTROLLER => {
            return wrong_type(
                ResponseError::MismatchedEndpointType,
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint \
                 of type CONTROLLER"
                    .into(),
            )
        }
        other => {
            return wrong_type(
                ResponseError::UnsupportedEndpointType,
                format!("Unsupported endpoint type {other}"),
            )
        }
    }
    resp.endpoint_type = ENDPOINT_TYPE_BROKER;
    resp.cluster_id = StrBytes::from_string(shard.broker.cluster_id.clone());
    resp.cluster_authorized_operations = match req.include_cluster_authorized_operations {
        true => CLUSTER_OPERATIONS,
        false => AUTHORIZED_OPERATIONS_OMITTED,
    };
    let meta = shard.metadata();
    let (brokers, controller_id) = match shard.broker.cluster {
        Some(_) => (
            meta.registered
                .iter()
                .filter(|b| !b.fenced || req.include_fenced_brokers)
                .map(broker)
                .collect(),
            meta.controller_id.unwrap_or(-1),
        ),
        None => (this_broker(shard), shard.broker.node_id),
    };
    resp.brokers = brokers;
    resp.controller_id = BrokerId(controller_id);
    resp
}

fn broker(b: &BrokerEndpoint) -> DescribeClusterBroker {
    let mut e = DescribeClusterBroker::default();
    e.broker_id = BrokerId(b.node_id);
    e.host = StrBytes::from_string(b.host.clone());
    e.port = b.port as i32;
    e.rack = b.rack.clone().map(StrBytes::from_string);
    e.is_fenced = b.fenced;
    e
}

/// A single node: itself, at its first advertised address.
fn this_broker(shard: &Shard) -> Vec<DescribeClusterBroker> {
    shard
        .broker
        .advertised
        .iter()
        .take(1)
        .map(|(host, port)| {
            broker(&BrokerEndpoint {
                node_id: shard.broker.node_id,
                host: host.clone(),
                port: *port,
                rack: None,
                fenced: false,
            })
        })
        .collect()
}
