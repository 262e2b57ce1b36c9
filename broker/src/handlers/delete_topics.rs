//! DeleteTopics v0–v6 (v6 names topics by name or by id).

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::controller::request_delete;
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    version: i16,
    req: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let mut targets: Vec<(Option<TopicName>, uuid::Uuid)> = req
        .topic_names
        .into_iter()
        .map(|n| (Some(n), uuid::Uuid::nil()))
        .collect();
    targets.extend(req.topics.into_iter().map(|t| (t.name, t.topic_id)));
    let mut resp = DeleteTopicsResponse::default();
    for (name, id) in targets {
        resp.responses
            .push(delete_one(shard, version, name, id).await);
    }
    resp
}

/// First versions with the topic id and with error messages in the answer.
const TOPIC_ID_VERSION_MIN: i16 = 6;
const ERROR_MESSAGE_VERSION_MIN: i16 = 5;

async fn delete_one(
    shard: &Rc<Shard>,
    version: i16,
    name: Option<TopicName>,
    id: uuid::Uuid,
) -> DeletableTopicResult {
    let mut r = DeletableTopicResult::default();
    r.topic_id = id;
    let resolved = match &name {
        Some(n) => Some(n.0.to_string()),
        None => shard.metadata().topic_by_id(id).map(|t| t.name.to_string()),
    };
    let Some(topic) = resolved else {
        r.error_code = ResponseError::UnknownTopicId.code();
        return r;
    };
    r.name = Some(TopicName(StrBytes::from_string(topic.clone())));
    match request_delete(shard, &topic).await {
        Ok(info) if version >= TOPIC_ID_VERSION_MIN => r.topic_id = info.id.0,
        Ok(_) => {}
        Err((code, message)) => {
            r.error_code = code;
            if version >= ERROR_MESSAGE_VERSION_MIN {
                r.error_message = Some(StrBytes::from_string(message));
            }
        }
    }
    r
}
