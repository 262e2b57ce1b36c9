//! DescribeGroups v0–v6: state, protocol and members of each group. From v6 (KIP-1043) a
//! group the coordinator does not know answers GROUP_ID_NOT_FOUND instead of a Dead group.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::authorized_operations::{AUTHORIZED_OPERATIONS_OMITTED, GROUP_OPERATIONS};
use crate::group::{route, GroupAnswer, GroupOp};
use crate::shard::Shard;

/// The first version with authorized operations.
const AUTHORIZED_OPERATIONS_VERSION_MIN: i16 = 3;
/// The first version with static member instance ids.
const INSTANCE_ID_VERSION_MIN: i16 = 4;
/// The first version with `error_message`, answering GROUP_ID_NOT_FOUND for unknown groups.
const GROUP_ID_NOT_FOUND_VERSION_MIN: i16 = 6;

pub async fn handle(
    shard: &Rc<Shard>,
    version: i16,
    req: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let mut resp = DescribeGroupsResponse::default();
    // No authorizer: every operation a group supports, on groups described without error
    // (Kafka's rule).
    let operations =
        version >= AUTHORIZED_OPERATIONS_VERSION_MIN && req.include_authorized_operations;
    for id in req.groups {
        let name = id.0.to_string();
        let GroupAnswer::Describe(d) = route(shard, &name, GroupOp::Describe(name.clone())).await
        else {
            unreachable!("a describe answered with another operation's answer");
        };
        let mut g = DescribedGroup::default();
        g.error_code = d.error;
        if version >= GROUP_ID_NOT_FOUND_VERSION_MIN && d.error == 0 && d.state == "Dead" {
            g.group_id = id;
            g.error_code = ResponseError::GroupIdNotFound.code();
            g.error_message = Some(StrBytes::from_string(format!("Group {name} not found.")));
            g.authorized_operations = AUTHORIZED_OPERATIONS_OMITTED;
            resp.groups.push(g);
            continue;
        }
        g.group_id = id;
        g.group_state = StrBytes::from_string(d.state);
        g.protocol_type = StrBytes::from_string(d.protocol_type);
        g.protocol_data = StrBytes::from_string(d.protocol);
        g.authorized_operations = if operations && d.error == 0 {
            GROUP_OPERATIONS
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        };
        g.members = d
            .members
            .into_iter()
            .map(|(member, instance, client, host, metadata, assignment)| {
                let mut m = DescribedGroupMember::default();
                m.member_id = StrBytes::from_string(member);
                if version >= INSTANCE_ID_VERSION_MIN {
                    m.group_instance_id = instance.map(StrBytes::from_string);
                }
                m.client_id = StrBytes::from_string(client);
                m.client_host = StrBytes::from_string(host);
                m.member_metadata = metadata;
                m.member_assignment = assignment;
                m
            })
            .collect();
        resp.groups.push(g);
    }
    resp
}
