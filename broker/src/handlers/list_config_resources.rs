//! ListConfigResources v0–v1 (KIP-1142; v0 was ListClientMetricsResources): the resources
//! DescribeConfigs can describe. v0 lists client-metrics subscriptions only; v1 lists the
//! types asked for (none = Kafka 4.1's set: topic, broker, broker logger, client metrics,
//! group), and a type outside that set fails the request with UNSUPPORTED_VERSION, as Kafka.
//!
//! Here: every topic (internal ones too) and this broker's id. This broker has no broker
//! loggers that DescribeConfigs serves, no client-metrics subscriptions and no group configs,
//! so those types list nothing.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{ListConfigResourcesRequest, ListConfigResourcesResponse};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::shard::Shard;

/// Kafka's `ConfigResource.Type` ids beyond topic and broker.
pub const RESOURCE_BROKER_LOGGER: i8 = 8;
pub const RESOURCE_CLIENT_METRICS: i8 = 16;
pub const RESOURCE_GROUP: i8 = 32;

/// The types v1 knows (Kafka 4.1), in Kafka's default order.
const RESOURCE_TYPES_V1: [i8; 5] = [
    RESOURCE_TOPIC,
    RESOURCE_BROKER,
    RESOURCE_BROKER_LOGGER,
    RESOURCE_CLIENT_METRICS,
    RESOURCE_GROUP,
];

/// The first version with resource types.
const RESOURCE_TYPES_VERSION_MIN: i16 = 1;

pub fn handle(
    shard: &Rc<Shard>,
    version: i16,
    req: ListConfigResourcesRequest,
) -> ListConfigResourcesResponse {
    let mut resp = ListConfigResourcesResponse::default();
    let types: Vec<i8> = if version < RESOURCE_TYPES_VERSION_MIN {
        vec![RESOURCE_CLIENT_METRICS]
    } else if req.resource_types.is_empty() {
        RESOURCE_TYPES_V1.to_vec()
    } else {
        req.resource_types
    };
    if types.iter().any(|t| !RESOURCE_TYPES_V1.contains(t)) {
        resp.error_code = ResponseError::UnsupportedVersion.code();
        return resp;
    }
    for resource_type in types {
        for name in names(shard, resource_type) {
            let mut r = ConfigResource::default();
            r.resource_name = StrBytes::from_string(name);
            r.resource_type = resource_type;
            resp.config_resources.push(r);
        }
    }
    resp
}

fn names(shard: &Shard, resource_type: i8) -> Vec<String> {
    match resource_type {
        RESOURCE_TOPIC => {
            let meta = shard.metadata();
            let mut topics: Vec<String> = meta.topics.keys().map(|t| t.to_string()).collect();
            topics.sort();
            topics
        }
        RESOURCE_BROKER => vec![shard.broker.node_id.to_string()],
        _ => Vec::new(),
    }
}
