//! DeleteGroups v0–v2: deletes empty groups and their committed offsets.

use std::rc::Rc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::group::{route, GroupAnswer, GroupOp};
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    _version: i16,
    req: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut resp = DeleteGroupsResponse::default();
    for id in req.groups_names {
        let name = id.0.to_string();
        let GroupAnswer::Delete(error) = route(shard, &name, GroupOp::Delete(name.clone())).await
        else {
            unreachable!("a delete answered with another operation's answer");
        };
        let mut r = DeletableGroupResult::default();
        r.group_id = id;
        r.error_code = error;
        resp.results.push(r);
    }
    resp
}
