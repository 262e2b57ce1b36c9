//! ListGroups v0–v5: the groups of every shard's coordinator, filtered by state (v4+) and
//! type (v5+; every group here is "classic").

use std::rc::Rc;

use futures_util::future::join_all;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::group::{list_on, GroupAnswer};
use crate::shard::Shard;

/// The first version with group states.
const STATE_VERSION_MIN: i16 = 4;
/// The first version with group types.
const TYPE_VERSION_MIN: i16 = 5;

pub async fn handle(shard: &Rc<Shard>, version: i16, req: ListGroupsRequest) -> ListGroupsResponse {
    let answers = join_all((0..shard.shard_count()).map(|to| list_on(shard, to))).await;
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_lowercase()).collect();
    let mut resp = ListGroupsResponse::default();
    for a in answers {
        let GroupAnswer::List(listed) = a else {
            unreachable!("a list answered with another operation's answer");
        };
        let listed = match listed {
            Ok(l) => l,
            Err(e) => {
                resp.error_code = e;
                continue;
            }
        };
        for g in listed {
            if !states.is_empty() && !states.contains(&g.state.to_lowercase()) {
                continue;
            }
            if !types.is_empty() && !types.iter().any(|t| t == "classic") {
                continue;
            }
            let mut out = ListedGroup::default();
            out.group_id = GroupId(StrBytes::from_string(g.group_id));
            out.protocol_type = StrBytes::from_string(g.protocol_type);
            if version >= STATE_VERSION_MIN {
                out.group_state = StrBytes::from_string(g.state);
            }
            if version >= TYPE_VERSION_MIN {
                out.group_type = StrBytes::from_static_str("classic");
            }
            resp.groups.push(out);
        }
    }
    resp.groups.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
    resp
}
