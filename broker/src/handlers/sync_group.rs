//! SyncGroup v0–v5: the leader hands in the assignment; every member gets its own.

use std::rc::Rc;

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::group::{route, GroupAnswer, GroupOp, SyncArgs};
use crate::shard::Shard;

/// The first version carrying the protocol type and name.
const PROTOCOL_VERSION_MIN: i16 = 5;

pub async fn handle(shard: &Rc<Shard>, version: i16, req: SyncGroupRequest) -> SyncGroupResponse {
    let args = SyncArgs {
        group: req.group_id.0.to_string(),
        generation: req.generation_id,
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.map(|i| i.to_string()),
        protocol_type: req.protocol_type.map(|p| p.to_string()),
        protocol_name: req.protocol_name.map(|p| p.to_string()),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let group = args.group.clone();
    let GroupAnswer::Sync(o) = route(shard, &group, GroupOp::Sync(args)).await else {
        unreachable!("a sync answered with another operation's answer");
    };
    let mut resp = SyncGroupResponse::default();
    resp.error_code = o.error;
    if version >= PROTOCOL_VERSION_MIN {
        resp.protocol_type = o.protocol_type.map(StrBytes::from_string);
        resp.protocol_name = o.protocol_name.map(StrBytes::from_string);
    }
    resp.assignment = o.assignment;
    resp
}
