//! CreatePartitions v0–v3: grows a topic through the controller (new partitions created on
//! their owning shards with the topic's config, then the metadata republished). Manual
//! assignments must name only this broker.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::controller::{ask, ControllerCmd};
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    _version: i16,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut resp = CreatePartitionsResponse::default();
    for topic in req.topics {
        let mut r = CreatePartitionsTopicResult::default();
        r.name = topic.name.clone();
        if let Err((code, message)) = create_one(shard, topic, req.validate_only).await {
            r.error_code = code;
            r.error_message = Some(StrBytes::from_string(message));
        }
        resp.results.push(r);
    }
    resp
}

async fn create_one(
    shard: &Rc<Shard>,
    topic: CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), (i16, String)> {
    let node = shard.broker.node_id;
    for a in topic.assignments.iter().flatten() {
        if a.broker_ids.len() != 1 || a.broker_ids[0].0 != node {
            return Err((
                ResponseError::InvalidReplicaAssignment.code(),
                format!(
                    "new partitions must be assigned to exactly broker {node} (single-node broker)"
                ),
            ));
        }
    }
    let (name, count) = (topic.name.0.to_string(), topic.count);
    ask(shard, |reply| ControllerCmd::CreatePartitions {
        name,
        count,
        validate_only,
        reply,
    })
    .await
}
