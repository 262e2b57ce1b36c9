//! AlterConfigs v0–v2: replaces a topic's overrides, or a broker resource's dynamic configs
//! (`dynamic_config`), with the given set (Kafka's semantics: keys not named go back to the
//! level below). `validate_only` validates without applying.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::controller::{ask, ConfigChange, ControllerCmd};
use crate::dynamic_config;
use crate::handlers::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    _version: i16,
    req: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut resp = AlterConfigsResponse::default();
    for resource in req.resources {
        let mut r = AlterConfigsResourceResponse::default();
        r.resource_type = resource.resource_type;
        r.resource_name = resource.resource_name.clone();
        let pairs: Result<Vec<(String, String)>, (i16, String)> = resource
            .configs
            .iter()
            .map(|c| match &c.value {
                Some(v) => Ok((c.name.to_string(), v.to_string())),
                None => Err((
                    ResponseError::InvalidRequest.code(),
                    format!("Null value not supported for : {}", c.name),
                )),
            })
            .collect();
        let outcome = match (resource.resource_type, pairs) {
            (_, Err(e)) => Err(e),
            (RESOURCE_TOPIC, Ok(pairs)) => {
                alter_topic(
                    shard,
                    &resource.resource_name,
                    ConfigChange::Replace(pairs),
                    req.validate_only,
                )
                .await
            }
            (RESOURCE_BROKER, Ok(pairs)) => {
                let change = ConfigChange::Replace(pairs);
                dynamic_config::alter(shard, &resource.resource_name, change, req.validate_only)
                    .await
            }
            (other, Ok(_)) => Err(unsupported_resource(other)),
        };
        if let Err((code, message)) = outcome {
            r.error_code = code;
            r.error_message = Some(StrBytes::from_string(message));
        }
        resp.responses.push(r);
    }
    resp
}

/// Asks the controller to change one topic's overrides.
pub async fn alter_topic(
    shard: &Rc<Shard>,
    name: &str,
    change: ConfigChange,
    validate_only: bool,
) -> Result<(), (i16, String)> {
    let name = name.to_string();
    ask(shard, |reply| ControllerCmd::AlterTopicConfig {
        name,
        change,
        validate_only,
        reply,
    })
    .await
}

pub fn unsupported_resource(resource_type: i8) -> (i16, String) {
    (
        ResponseError::InvalidRequest.code(),
        format!("resource type {resource_type} is not served by this broker (topics only)"),
    )
}
