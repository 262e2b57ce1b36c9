//! IncrementalAlterConfigs v0–v1: SET and DELETE on topic keys; APPEND/SUBTRACT only on
//! list keys (`cleanup.policy`), INVALID_REQUEST otherwise. `validate_only` validates
//! without applying. Broker resources change dynamic broker configs (`dynamic_config`).

use std::rc::Rc;

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::controller::ConfigChange;
use crate::dynamic_config;
use crate::handlers::alter_configs::{alter_topic, unsupported_resource};
use crate::handlers::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    _version: i16,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut resp = IncrementalAlterConfigsResponse::default();
    for resource in req.resources {
        let mut r = AlterConfigsResourceResponse::default();
        r.resource_type = resource.resource_type;
        r.resource_name = resource.resource_name.clone();
        let ops = resource
            .configs
            .iter()
            .map(|c| {
                let value = c.value.as_ref().map(|v| v.to_string());
                (c.name.to_string(), c.config_operation, value)
            })
            .collect();
        let outcome = match resource.resource_type {
            RESOURCE_TOPIC => {
                let change = ConfigChange::Incremental(ops);
                alter_topic(shard, &resource.resource_name, change, req.validate_only).await
            }
            RESOURCE_BROKER => {
                let change = ConfigChange::Incremental(ops);
                let name = &resource.resource_name;
                dynamic_config::alter(shard, name, change, req.validate_only).await
            }
            other => Err(unsupported_resource(other)),
        };
        if let Err((code, message)) = outcome {
            r.error_code = code;
            r.error_message = Some(StrBytes::from_string(message));
        }
        resp.responses.push(r);
    }
    resp
}
