//! JoinGroup v0–v9: joins the member to its group on the coordinator shard and waits for the
//! join phase of the rebalance to complete.

use std::net::SocketAddr;
use std::rc::Rc;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::group::{route, GroupAnswer, GroupOp, JoinArgs};
use crate::shard::Shard;

/// The first version where a first join must come back with the member id it was given.
const MEMBER_ID_REQUIRED_VERSION_MIN: i16 = 4;
/// The first version with a rebalance timeout (before, the session timeout bounds it).
const REBALANCE_TIMEOUT_VERSION_MIN: i16 = 1;

pub async fn handle(
    shard: &Rc<Shard>,
    version: i16,
    client_id: &str,
    peer: SocketAddr,
    req: JoinGroupRequest,
) -> JoinGroupResponse {
    let args = JoinArgs {
        group: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.map(|i| i.to_string()),
        client_id: client_id.to_string(),
        client_host: format!("/{}", peer.ip()),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: if version >= REBALANCE_TIMEOUT_VERSION_MIN {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member: version >= MEMBER_ID_REQUIRED_VERSION_MIN,
    };
    let group = args.group.clone();
    let GroupAnswer::Join(o) = route(shard, &group, GroupOp::Join(args)).await else {
        unreachable!("a join answered with another operation's answer");
    };
    let mut resp = JoinGroupResponse::default();
    resp.error_code = o.error;
    resp.generation_id = o.generation;
    if version >= 7 {
        resp.protocol_type = o.protocol_type.map(StrBytes::from_string);
        resp.protocol_name = o.protocol_name.map(StrBytes::from_string);
    } else {
        resp.protocol_name = Some(StrBytes::from_string(o.protocol_name.unwrap_or_default()));
    }
    resp.leader = StrBytes::from_string(o.leader);
    resp.member_id = StrBytes::from_string(o.member_id);
    resp.members = o
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            let mut m = JoinGroupResponseMember::default();
            m.member_id = StrBytes::from_string(id);
            if version >= 5 {
                m.group_instance_id = instance.map(StrBytes::from_string);
            }
            m.metadata = metadata;
            m
        })
        .collect();
    resp
}
