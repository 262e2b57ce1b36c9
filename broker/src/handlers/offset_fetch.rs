//! OffsetFetch v0–v9: a group's committed offsets (all of them when topics is null, v2+);
//! v8+ asks for several groups at once.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::group::store::StoredOffset;
use crate::group::{route, GroupAnswer, GroupOp};
use crate::shard::Shard;

/// The first version asking for several groups.
const MULTI_GROUP_VERSION_MIN: i16 = 8;
/// The first version with committed leader epochs.
const LEADER_EPOCH_VERSION_MIN: i16 = 5;
/// The first version with a top-level error code.
const TOP_ERROR_VERSION_MIN: i16 = 2;

type Fetched = Result<Vec<(String, i32, Option<StoredOffset>)>, i16>;

async fn fetch(
    shard: &Rc<Shard>,
    group: String,
    partitions: Option<Vec<(String, i32)>>,
) -> Fetched {
    let op = GroupOp::Fetch {
        group: group.clone(),
        partitions,
    };
    let GroupAnswer::Fetch(r) = route(shard, &group, op).await else {
        unreachable!("an offset fetch answered with another operation's answer");
    };
    r
}

/// (topic → [(partition, offset, leader epoch, metadata)]) in request order per topic.
fn by_topic(
    found: Vec<(String, i32, Option<StoredOffset>)>,
) -> BTreeMap<String, Vec<(i32, i64, i32, String)>> {
    let mut out: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for (t, p, o) in found {
        let (offset, epoch, meta) = match o {
            Some(o) => (o.offset, o.leader_epoch, o.metadata),
            None => (-1, -1, String::new()),
        };
        out.entry(t).or_default().push((p, offset, epoch, meta));
    }
    out
}

pub async fn handle(
    shard: &Rc<Shard>,
    version: i16,
    req: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let mut resp = OffsetFetchResponse::default();
    if version >= MULTI_GROUP_VERSION_MIN {
        for g in req.groups {
            let partitions = g.topics.map(|ts| {
                ts.into_iter()
                    .flat_map(|t| {
                        let name = t.name.0.to_string();
                        t.partition_indexes
                            .into_iter()
                            .map(move |p| (name.clone(), p))
                    })
                    .collect()
            });
            let found = fetch(shard, g.group_id.0.to_string(), partitions).await;
            let mut out = OffsetFetchResponseGroup::default();
            out.group_id = g.group_id;
            match found {
                Ok(found) => out.topics = groups_topics(found),
                Err(e) => out.error_code = e,
            }
            resp.groups.push(out);
        }
        return resp;
    }
    let partitions = req.topics.map(|ts| {
        ts.into_iter()
            .flat_map(|t| {
                let name = t.name.0.to_string();
                t.partition_indexes
                    .into_iter()
                    .map(move |p| (name.clone(), p))
            })
            .collect()
    });
    let asked = partitions.clone().unwrap_or_default();
    match fetch(shard, req.group_id.0.to_string(), partitions).await {
        Ok(found) => resp.topics = single_topics(version, found),
        Err(e) if version >= TOP_ERROR_VERSION_MIN => resp.error_code = e,
        Err(e) => resp.topics = errored_topics(version, asked, e),
    }
    resp
}

/// Before v2 there is no top-level error: every partition asked for carries the group's
/// (Kafka's rule), with no offset.
fn errored_topics(
    version: i16,
    asked: Vec<(String, i32)>,
    error: i16,
) -> Vec<OffsetFetchResponseTopic> {
    let none = asked.into_iter().map(|(t, p)| (t, p, None)).collect();
    let mut topics = single_topics(version, none);
    for p in topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
        p.error_code = error;
    }
    topics
}

fn single_topics(
    version: i16,
    found: Vec<(String, i32, Option<StoredOffset>)>,
) -> Vec<OffsetFetchResponseTopic> {
    by_topic(found)
        .into_iter()
        .map(|(t, parts)| {
            let mut out = OffsetFetchResponseTopic::default();
            out.name = TopicName(StrBytes::from_string(t));
            out.partitions = parts
                .into_iter()
                .map(|(p, offset, epoch, meta)| {
                    let mut r = OffsetFetchResponsePartition::default();
                    r.partition_index = p;
                    r.committed_offset = offset;
                    if version >= LEADER_EPOCH_VERSION_MIN {
                        r.committed_leader_epoch = epoch;
                    }
                    r.metadata = Some(StrBytes::from_string(meta));
                    r
                })
                .collect();
            out
        })
        .collect()
}

fn groups_topics(
    found: Vec<(String, i32, Option<StoredOffset>)>,
) -> Vec<OffsetFetchResponseTopics> {
    by_topic(found)
        .into_iter()
        .map(|(t, parts)| {
            let mut out = OffsetFetchResponseTopics::default();
            out.name = TopicName(StrBytes::from_string(t));
            out.partitions = parts
                .into_iter()
                .map(|(p, offset, epoch, meta)| {
                    let mut r = OffsetFetchResponsePartitions::default();
                    r.partition_index = p;
                    r.committed_offset = offset;
                    r.committed_leader_epoch = epoch;
                    r.metadata = Some(StrBytes::from_string(meta));
                    r
                })
                .collect();
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_versions_carry_the_group_error_on_each_partition() {
        let asked = vec![
            ("a".to_string(), 0),
            ("a".to_string(), 1),
            ("b".to_string(), 0),
        ];
        let topics = errored_topics(1, asked, 14);
        let got: Vec<(String, i32, i64, i16)> = topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    (
                        t.name.0.to_string(),
                        p.partition_index,
                        p.committed_offset,
                        p.error_code,
                    )
                })
            })
            .collect();
        let want = [("a", 0), ("a", 1), ("b", 0)].map(|(t, p)| (t.to_string(), p, -1, 14));
        assert_eq!(got, want);
    }
}
