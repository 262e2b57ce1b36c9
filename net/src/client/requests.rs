//! Building the client's requests and reading their answers: one pair of functions per
//! API, free of I/O so they can be tested without a broker.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, FetchRequest, FetchResponse, InitProducerIdRequest,
    InitProducerIdResponse, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest,
    MetadataResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::client::batch::ProducerIdentity;
use crate::client::error::{ClientError, Result};
use crate::client::limits::FETCH_BYTES_MAX;
use crate::client::producer::Acks;
use crate::client::{
    BrokerMetadata, FetchOptions, FetchedPartition, Metadata, PartitionMetadata, TopicMetadata,
};

/// First Produce and Fetch version that names topics by id only.
pub(crate) const TOPIC_ID_VERSION_MIN: i16 = 13;
/// How long the broker may take to create a topic or replicate a produce.
pub(crate) const REQUEST_TIMEOUT_MS: i32 = 30_000;

/// The Produce/Fetch version to use: the negotiated one, unless that needs a topic id
/// the client does not have (the broker's Metadata predates ids).
pub(crate) fn version_with_ids(negotiated: i16, topic_id: &Uuid) -> i16 {
    if topic_id.is_nil() {
        negotiated.min(TOPIC_ID_VERSION_MIN - 1)
    } else {
        negotiated
    }
}

pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

pub(crate) fn metadata(topics: &[&str], version: i16) -> MetadataRequest {
    let topics = (!topics.is_empty()).then(|| {
        topics
            .iter()
            .map(|name| MetadataRequestTopic::default().with_name(Some(topic_name(name))))
            .collect()
    });
    // Before v4 the field does not exist and brokers always auto-create.
    MetadataRequest::default()
        .with_topics(topics)
        .with_allow_auto_topic_creation(version < 4)
}

pub(crate) fn parse_metadata(response: MetadataResponse, address: &str) -> Result<Metadata> {
    ClientError::check(response.error_code, || format!("Metadata from {address}"))?;
    let brokers = response
        .brokers
        .iter()
        .map(|b| BrokerMetadata {
            node_id: b.node_id.0,
            host: b.host.to_string(),
            port: b.port,
        })
        .collect();
    let topics = response
        .topics
        .into_iter()
        .map(|t| TopicMetadata {
            name: t.name.map(|n| n.0.to_string()).unwrap_or_default(),
            topic_id: t.topic_id,
            error: ResponseError::try_from_code(t.error_code),
            partitions: t.partitions.iter().map(parse_partition).collect(),
        })
        .collect();
    Ok(Metadata {
        cluster_id: response.cluster_id.map(|c| c.to_string()),
        controller_id: response.controller_id.0,
        brokers,
        topics,
    })
}

fn parse_partition(
    p: &kafka_protocol::messages::metadata_response::MetadataResponsePartition,
) -> PartitionMetadata {
    PartitionMetadata {
        partition: p.partition_index,
        leader_id: p.leader_id.0,
        leader_epoch: p.leader_epoch,
        replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
        isr: p.isr_nodes.iter().map(|b| b.0).collect(),
        error: ResponseError::try_from_code(p.error_code),
    }
}

/// `topic` if it can be used: no error, partitions, each with a leader.
pub(crate) fn topic_ready(topic: TopicMetadata, address: &str) -> Result<TopicMetadata> {
    let context = || format!("metadata of topic {:?} from {address}", topic.name);
    if let Some(error) = topic.error {
        return Err(ClientError::Kafka {
            context: context(),
            error,
            code: error.code(),
        });
    }
    let leaderless =
        topic.partitions.is_empty() || topic.partitions.iter().any(|p| p.leader_id < 0);
    if leaderless {
        let error = ResponseError::LeaderNotAvailable;
        return Err(ClientError::Kafka {
            context: context(),
            error,
            code: error.code(),
        });
    }
    Ok(topic)
}

/// The leader's node id of `partition`.
pub(crate) fn leader_id(topic: &TopicMetadata, partition: i32) -> Result<i32> {
    let Some(found) = topic.partitions.iter().find(|p| p.partition == partition) else {
        return Err(ClientError::Metadata(format!(
            "topic {:?} has no partition {partition} (it has {})",
            topic.name,
            topic.partitions.len()
        )));
    };
    if found.leader_id < 0 {
        let error = ResponseError::LeaderNotAvailable;
        return Err(ClientError::Kafka {
            context: format!("finding the leader of {}-{partition}", topic.name),
            error,
            code: error.code(),
        });
    }
    Ok(found.leader_id)
}

pub(crate) fn create_topic(
    topic: &str,
    partitions: i32,
    replication_factor: i16,
) -> CreateTopicsRequest {
    let creatable = CreatableTopic::default()
        .with_name(topic_name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(replication_factor);
    CreateTopicsRequest::default()
        .with_topics(vec![creatable])
        .with_timeout_ms(REQUEST_TIMEOUT_MS)
}

/// A produce request for one batch to one partition.
pub(crate) fn produce(
    topic: &TopicMetadata,
    partition: i32,
    batch: Bytes,
    acks: Acks,
    version: i16,
) -> ProduceRequest {
    let data = PartitionProduceData::default()
        .with_index(partition)
        .with_records(Some(batch));
    let topic_data = TopicProduceData::default().with_partition_data(vec![data]);
    let topic_data = if version >= TOPIC_ID_VERSION_MIN {
        topic_data.with_topic_id(topic.topic_id)
    } else {
        topic_data.with_name(topic_name(&topic.name))
    };
    ProduceRequest::default()
        .with_acks(acks.as_i16())
        .with_timeout_ms(REQUEST_TIMEOUT_MS)
        .with_topic_data(vec![topic_data])
}

/// The base offset the broker assigned to the batch sent to `partition`.
pub(crate) fn parse_produce(
    response: &ProduceResponse,
    partition: i32,
    context: impl Fn() -> String,
) -> Result<i64> {
    let answer = response
        .responses
        .iter()
        .flat_map(|t| &t.partition_responses)
        .find(|p| p.index == partition)
        .ok_or_else(|| {
            ClientError::Metadata(format!("{}: no answer for the partition", context()))
        })?;
    let message = answer.error_message.as_ref().map(|m| m.to_string());
    ClientError::check_with_message(answer.error_code, message, context)?;
    Ok(answer.base_offset)
}

/// The first Fetch version with `current_leader_epoch` (KIP-320).
const CURRENT_LEADER_EPOCH_VERSION_MIN: i16 = 9;

pub(crate) fn fetch(
    topic: &TopicMetadata,
    partitions: &[(i32, i64)],
    options: &FetchOptions,
    version: i16,
) -> Result<FetchRequest> {
    let max_bytes = usize::try_from(options.max_bytes).unwrap_or(usize::MAX);
    if max_bytes > FETCH_BYTES_MAX || options.partition_max_bytes < 0 {
        return Err(ClientError::Metadata(format!(
            "fetch max_bytes {} / partition_max_bytes {} outside 0..={FETCH_BYTES_MAX}",
            options.max_bytes, options.partition_max_bytes
        )));
    }
    let partitions = partitions
        .iter()
        .map(|&(partition, fetch_offset)| {
            let epoch = topic
                .partitions
                .iter()
                .find(|p| p.partition == partition)
                .map(|p| p.leader_epoch)
                .filter(|_| {
                    options.current_leader_epoch && version >= CURRENT_LEADER_EPOCH_VERSION_MIN
                })
                .unwrap_or(-1);
            FetchPartition::default()
                .with_partition(partition)
                .with_current_leader_epoch(epoch)
                .with_fetch_offset(fetch_offset)
                .with_partition_max_bytes(options.partition_max_bytes)
        })
        .collect();
    let fetch_topic = FetchTopic::default().with_partitions(partitions);
    let fetch_topic = if version >= TOPIC_ID_VERSION_MIN {
        fetch_topic.with_topic_id(topic.topic_id)
    } else {
        fetch_topic.with_topic(topic_name(&topic.name))
    };
    Ok(FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(options.max_wait_ms)
        .with_min_bytes(options.min_bytes)
        .with_max_bytes(options.max_bytes)
        .with_topics(vec![fetch_topic]))
}

pub(crate) fn parse_fetch(
    response: FetchResponse,
    context: impl Fn() -> String,
) -> Result<Vec<FetchedPartition>> {
    ClientError::check(response.error_code, &context)?;
    Ok(response
        .responses
        .into_iter()
        .flat_map(|t| t.partitions)
        .map(|p| FetchedPartition {
            partition: p.partition_index,
            error: ResponseError::try_from_code(p.error_code),
            high_watermark: p.high_watermark,
            log_start_offset: p.log_start_offset,
            records: p.records.unwrap_or_default(),
        })
        .collect())
}

pub(crate) fn list_offsets(topic: &str, partition: i32, timestamp: i64) -> ListOffsetsRequest {
    let partition = ListOffsetsPartition::default()
        .with_partition_index(partition)
        .with_timestamp(timestamp);
    let topic = ListOffsetsTopic::default()
        .with_name(topic_name(topic))
        .with_partitions(vec![partition]);
    ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![topic])
}

pub(crate) fn parse_list_offsets(
    response: &ListOffsetsResponse,
    partition: i32,
    context: impl Fn() -> String,
) -> Result<i64> {
    let answer = response
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| {
            ClientError::Metadata(format!("{}: no answer for the partition", context()))
        })?;
    ClientError::check(answer.error_code, context)?;
    Ok(answer.offset)
}

/// InitProducerId for an idempotent producer: no transactional id, and the transaction
/// timeout Kafka's producer sends then (`Integer.MAX_VALUE`, unused without transactions).
pub(crate) fn init_producer_id() -> InitProducerIdRequest {
    InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(i32::MAX)
}

pub(crate) fn parse_init_producer_id(
    response: &InitProducerIdResponse,
    address: &str,
) -> Result<ProducerIdentity> {
    ClientError::check(response.error_code, || {
        format!("InitProducerId (idempotent producer) to {address}")
    })?;
    if response.producer_id.0 < 0 || response.producer_epoch < 0 {
        return Err(ClientError::Metadata(format!(
            "{address}: InitProducerId answered producer id {} epoch {} without an error",
            response.producer_id.0, response.producer_epoch
        )));
    }
    Ok(ProducerIdentity {
        producer_id: response.producer_id.0,
        producer_epoch: response.producer_epoch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiKey;
    use kafka_protocol::protocol::Encodable;

    fn topic(topic_id: Uuid) -> TopicMetadata {
        TopicMetadata {
            name: "t".into(),
            topic_id,
            error: None,
            partitions: vec![],
        }
    }

    /// Every request the client builds encodes at every version it may negotiate.
    #[test]
    fn requests_encode_at_every_client_version() {
        let versions = crate::client::limits::versions_under_test;
        let mut buf = bytes::BytesMut::new();
        for id in [Uuid::nil(), Uuid::from_u128(7)] {
            for negotiated in versions(ApiKey::Produce) {
                let v = version_with_ids(negotiated, &id);
                let r = produce(&topic(id), 0, Bytes::from_static(b"x"), Acks::All, v);
                r.encode(&mut buf, v)
                    .unwrap_or_else(|e| panic!("produce v{v}: {e}"));
            }
            for negotiated in versions(ApiKey::Fetch) {
                let v = version_with_ids(negotiated, &id);
                let r = fetch(&topic(id), &[(0, 5)], &FetchOptions::default(), v).unwrap();
                r.encode(&mut buf, v)
                    .unwrap_or_else(|e| panic!("fetch v{v}: {e}"));
            }
        }
        for v in versions(ApiKey::Metadata) {
            metadata(&["a"], v).encode(&mut buf, v).unwrap();
            metadata(&[], v).encode(&mut buf, v).unwrap();
        }
        for v in versions(ApiKey::ListOffsets) {
            list_offsets("a", 0, -2).encode(&mut buf, v).unwrap();
        }
        for v in versions(ApiKey::CreateTopics) {
            create_topic("a", 1, 1).encode(&mut buf, v).unwrap();
        }
        for v in versions(ApiKey::InitProducerId) {
            init_producer_id().encode(&mut buf, v).unwrap();
        }
    }

    #[test]
    fn init_producer_id_answers() {
        use kafka_protocol::messages::ProducerId;
        let answer = |code: i16, id: i64, epoch: i16| {
            let response = InitProducerIdResponse::default()
                .with_error_code(code)
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(epoch);
            parse_init_producer_id(&response, "b:1")
        };
        let identity = answer(0, 7, 0).unwrap();
        assert_eq!((identity.producer_id, identity.producer_epoch), (7, 0));
        let refused = answer(ResponseError::CoordinatorNotAvailable.code(), -1, -1);
        assert!(refused.unwrap_err().to_string().contains("InitProducerId"));
        assert!(answer(0, -1, -1).is_err());
        assert!(init_producer_id().transactional_id.is_none());
    }

    #[test]
    fn topic_ids_only_when_known() {
        assert_eq!(version_with_ids(13, &Uuid::nil()), 12);
        assert_eq!(version_with_ids(13, &Uuid::from_u128(1)), 13);
        assert_eq!(version_with_ids(11, &Uuid::nil()), 11);
    }
}
