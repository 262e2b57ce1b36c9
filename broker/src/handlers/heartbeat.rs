//! Heartbeat v0–v4: keeps a member's session alive; tells it when to rejoin.

use std::rc::Rc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::group::{route, GroupAnswer, GroupOp};
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, _version: i16, req: HeartbeatRequest) -> HeartbeatResponse {
    let group = req.group_id.0.to_string();
    let op = GroupOp::Heartbeat {
        group: group.clone(),
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.map(|i| i.to_string()),
        generation: req.generation_id,
    };
    let GroupAnswer::Heartbeat(error) = route(shard, &group, op).await else {
        unreachable!("a heartbeat answered with another operation's answer");
    };
    let mut resp = HeartbeatResponse::default();
    resp.error_code = error;
    resp
}
