//! DescribeQuorum v0–v2 (KIP-595, KIP-836, KIP-853), on cluster nodes only: the metadata
//! quorum as its leader describes it (a broker forwards it, as Kafka's brokers forward it to
//! the controller). The one partition is `__cluster_metadata-0`; asking for anything else
//! answers UNKNOWN_TOPIC_OR_PARTITION on what was asked, and no reachable leader answers
//! NOT_LEADER_OR_FOLLOWER, as Kafka's `KafkaRaftClient`. Offsets are the metadata log's
//! indexes (the log end offset is the index after the last entry); timestamps are wall-clock
//! ms (-1: unknown). A voter's directory id is the one the quorum recorded for it (KIP-853),
//! Kafka's zero uuid when none is; observers' are zero.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sluice_replication::QuorumDescription;

use crate::shard::Shard;

/// Kafka's metadata log partition.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
/// The first version with the voters' endpoints (`nodes`).
const NODES_VERSION_MIN: i16 = 2;

pub async fn handle(
    shard: &Shard,
    version: i16,
    req: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    let asks_metadata_log = req.topics.len() == 1
        && *req.topics[0].topic_name.0 == *METADATA_TOPIC
        && req.topics[0].partitions.len() == 1
        && req.topics[0].partitions[0].partition_index == 0;
    if !asks_metadata_log {
        return partition_errors(&req, ResponseError::UnknownTopicOrPartition);
    }
    let Some(handle) = &shard.broker.cluster else {
        return partition_errors(&req, ResponseError::UnknownTopicOrPartition);
    };
    let Some(d) = handle.describe_quorum().await else {
        let mut p = PartitionData::default();
        p.error_code = ResponseError::NotLeaderOrFollower.code();
        p.error_message = Some(StrBytes::from_static_str(
            "no leader of the metadata quorum answered",
        ));
        p.leader_id = BrokerId(-1);
        p.leader_epoch = -1;
        p.high_watermark = -1;
        return singleton(p);
    };
    let mut resp = singleton(partition(&d));
    if version >= NODES_VERSION_MIN {
        let listener = shard
            .config
            .cluster
            .as_ref()
            .map_or_else(String::new, |c| c.controller_listener_name.clone());
        resp.nodes = nodes(&d, &listener);
    }
    resp
}

fn singleton(p: PartitionData) -> DescribeQuorumResponse {
    let mut topic = TopicData::default();
    topic.topic_name = TopicName(StrBytes::from_static_str(METADATA_TOPIC));
    topic.partitions = vec![p];
    let mut resp = DescribeQuorumResponse::default();
    resp.topics = vec![topic];
    resp
}

/// Every partition asked, with `error`.
fn partition_errors(req: &DescribeQuorumRequest, error: ResponseError) -> DescribeQuorumResponse {
    let mut resp = DescribeQuorumResponse::default();
    for t in &req.topics {
        let mut topic = TopicData::default();
        topic.topic_name = t.topic_name.clone();
        topic.partitions = t
            .partitions
            .iter()
            .map(|asked| {
                let mut p = PartitionData::default();
                p.partition_index = asked.partition_index;
                p.error_code = error.code();
                p
            })
            .collect();
        resp.topics.push(topic);
    }
    resp
}

fn partition(d: &QuorumDescription) -> PartitionData {
    let state = |r: &sluice_replication::ReplicaState| {
        let mut s = ReplicaState::default();
        s.replica_id = BrokerId(r.replica_id);
        s.replica_directory_id = r.directory_id.unwrap_or_default();
        s.log_end_offset = r.log_end_offset;
        s.last_fetch_timestamp = r.last_fetch_timestamp;
        s.last_caught_up_timestamp = r.last_caught_up_timestamp;
        s
    };
    let mut p = PartitionData::default();
    p.partition_index = 0;
    p.leader_id = BrokerId(d.leader.unwrap_or(-1));
    p.leader_epoch = i32::try_from(d.term).unwrap_or(i32::MAX);
    p.high_watermark = d.high_watermark;
    p.current_voters = d.voters.iter().map(state).collect();
    p.observers = d.observers.iter().map(state).collect();
    p
}

/// The voters' controller listeners (v2's `nodes`).
fn nodes(d: &QuorumDescription, listener: &str) -> Vec<Node> {
    d.voter_endpoints
        .iter()
        .filter_map(|(id, address)| {
            let (host, port) = address.rsplit_once(':')?;
            let mut l = Listener::default();
            l.name = StrBytes::from_string(listener.to_string());
            l.host = StrBytes::from_string(host.trim_matches(['[', ']']).to_string());
            l.port = port.parse().ok()?;
            let mut n = Node::default();
            n.node_id = BrokerId(*id);
            n.listeners = vec![l];
            Some(n)
        })
        .collect()
}
