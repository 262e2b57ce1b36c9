//! LeaveGroup v0–v5: one member (v0–v2) or a batch of members by id or instance id (v3+).

use std::rc::Rc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use crate::group::{route, GroupAnswer, GroupOp};
use crate::shard::Shard;

/// The first version with a batch of members.
const BATCHED_VERSION_MIN: i16 = 3;

pub async fn handle(shard: &Rc<Shard>, version: i16, req: LeaveGroupRequest) -> LeaveGroupResponse {
    let group = req.group_id.0.to_string();
    let members: Vec<(String, Option<String>)> = if version >= BATCHED_VERSION_MIN {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|i| i.to_string()),
                )
            })
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let op = GroupOp::Leave {
        group: group.clone(),
        members,
    };
    let GroupAnswer::Leave(error, each) = route(shard, &group, op).await else {
        unreachable!("a leave answered with another operation's answer");
    };
    let mut resp = LeaveGroupResponse::default();
    if version < BATCHED_VERSION_MIN {
        resp.error_code = if error != 0 {
            error
        } else {
            each.first().copied().unwrap_or(0)
        };
        return resp;
    }
    resp.error_code = error;
    resp.members = req
        .members
        .into_iter()
        .zip(each)
        .map(|(m, e)| {
            let mut r = MemberResponse::default();
            r.member_id = m.member_id;
            r.group_instance_id = m.group_instance_id;
            r.error_code = e;
            r
        })
        .collect();
    resp
}
