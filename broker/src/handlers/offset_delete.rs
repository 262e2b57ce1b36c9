//! OffsetDelete v0: deletes a group's committed offsets of topics it no longer consumes.

use std::rc::Rc;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use crate::group::{route, GroupAnswer, GroupOp};
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    _version: i16,
    req: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let group = req.group_id.0.to_string();
    let partitions: Vec<(String, i32)> = req
        .topics
        .iter()
        .flat_map(|t| {
            let name = t.name.0.to_string();
            t.partitions
                .iter()
                .map(move |p| (name.clone(), p.partition_index))
        })
        .collect();
    let op = GroupOp::DeleteOffsets {
        group: group.clone(),
        partitions,
    };
    let GroupAnswer::DeleteOffsets(error, each) = route(shard, &group, op).await else {
        unreachable!("an offset delete answered with another operation's answer");
    };
    let mut resp = OffsetDeleteResponse::default();
    resp.error_code = error;
    if error != 0 {
        return resp;
    }
    let mut each = each.into_iter();
    resp.topics = req
        .topics
        .into_iter()
        .map(|t| {
            let mut out = OffsetDeleteResponseTopic::default();
            out.name = t.name;
            out.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut r = OffsetDeleteResponsePartition::default();
                    r.partition_index = p.partition_index;
                    r.error_code = each.next().unwrap_or(0);
                    r
                })
                .collect();
            out
        })
        .collect();
    resp
}
