//! A follower's calls to its partition leaders (Kafka's `ReplicaFetcherThread` through its
//! `LeaderEndPoint`): Fetch as a replica, and OffsetForLeaderEpoch (API 23).
//!
//! These run on a [`Connection`] the caller opened to the leader (a follower knows its
//! leaders from cluster metadata, not from a Metadata request), so nothing here routes.
//!
//! A replica fetch says who asks: before Fetch v15 in `replica_id`; from v15 (KIP-903) in
//! `replica_state` (`replica_id` and `replica_epoch`, the follower's broker epoch, so a
//! leader can refuse a stale incarnation), with `replica_id` -1. Per partition it carries
//! `current_leader_epoch` (v9+, the follower's view of the leader's epoch: the leader
//! answers FENCED_LEADER_EPOCH or UNKNOWN_LEADER_EPOCH when they differ) and
//! `last_fetched_epoch` (v12+, KIP-320: the epoch of the last batch the follower holds; the
//! leader answers a `diverging_epoch` when the follower's log diverges from its own). The
//! answer's record bytes stay the `Bytes` the response frame was decoded into, for
//! `PartitionLog::prepare_append_as_follower` to write unchanged.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
};
use uuid::Uuid;

use super::connection::Connection;
use super::error::{ClientError, Result};
use super::limits::FETCH_BYTES_MAX;
use super::requests::{topic_name, TOPIC_ID_VERSION_MIN};

/// The first Fetch version with `replica_state` (KIP-903).
const REPLICA_STATE_VERSION_MIN: i16 = 15;
/// The first Fetch versions with these partition fields.
const LOG_START_OFFSET_VERSION_MIN: i16 = 5;
const CURRENT_LEADER_EPOCH_VERSION_MIN: i16 = 9;
const LAST_FETCHED_EPOCH_VERSION_MIN: i16 = 12;
/// Kafka's `NO_PARTITION_LEADER_EPOCH`: "no epoch" in a request.
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;

/// Who fetches: the follower's node id and broker epoch (from its registration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaIdentity {
    pub replica_id: i32,
    /// The follower's broker epoch (Kafka's `replica_epoch`; -1 when unknown).
    pub broker_epoch: i64,
}

/// One partition a follower fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaFetchPartition {
    pub topic: String,
    /// Used from Fetch v13; nil before the topic id is known (then v12 is the most asked).
    pub topic_id: Uuid,
    pub partition: i32,
    /// The follower's log end offset.
    pub fetch_offset: i64,
    /// The follower's log start offset.
    pub log_start_offset: i64,
    /// The leader epoch the follower believes current (`NO_PARTITION_LEADER_EPOCH`: none).
    pub current_leader_epoch: i32,
    /// The epoch of the follower's last batch (`NO_PARTITION_LEADER_EPOCH`: none).
    pub last_fetched_epoch: i32,
    /// `replica.fetch.max.bytes`.
    pub partition_max_bytes: i32,
}

/// The whole fetch's bounds: `replica.fetch.wait.max.ms`, `replica.fetch.min.bytes`,
/// `replica.fetch.response.max.bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaFetchOptions {
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
}

/// Kafka's `EpochEndOffset`: an epoch and where it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEndOffset {
    pub epoch: i32,
    pub end_offset: i64,
}

/// One partition of a replica fetch answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaFetched {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
    pub error: Option<ResponseError>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// KIP-320: the follower's log diverges from the leader's at the end of this epoch;
    /// truncate there before fetching again. `None` when the answer has none (epoch -1).
    pub diverging_epoch: Option<EpochEndOffset>,
    /// The leader the answering broker knows, when it is not the leader (KIP-951); `None`
    /// when the answer has none (leader id -1).
    pub current_leader: Option<(i32, i32)>,
    /// Whole record batches as the leader stored them (the last one may be partial when
    /// it did not fit the size bounds); the slice of the response frame, not a copy.
    pub records: Bytes,
}

/// One partition's OffsetForLeaderEpoch question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochQuery {
    pub topic: String,
    pub partition: i32,
    /// The leader epoch the asker believes current (`NO_PARTITION_LEADER_EPOCH`: skip the
    /// check).
    pub current_leader_epoch: i32,
    /// The epoch whose end offset is asked for.
    pub leader_epoch: i32,
}

/// One partition's OffsetForLeaderEpoch answer: the largest epoch <= the asked one the
/// leader knows and where it ends (-1/-1 when undefined), or the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochAnswer {
    pub topic: String,
    pub partition: i32,
    pub error: Option<ResponseError>,
    pub leader_epoch: i32,
    pub end_offset: i64,
}

/// Fetch as replica `who` from the leader on `connection`, at the negotiated Fetch version
/// (at most v12 when a topic id is unknown). Errors of the whole request are `Err`; each
/// partition's error is in its answer.
pub async fn replica_fetch(
    connection: &mut Connection,
    who: ReplicaIdentity,
    partitions: &[ReplicaFetchPartition],
    options: ReplicaFetchOptions,
) -> Result<Vec<ReplicaFetched>> {
    let mut version = connection.version(ApiKey::Fetch)?;
    if partitions.iter().any(|p| p.topic_id.is_nil()) {
        version = version.min(TOPIC_ID_VERSION_MIN - 1);
    }
    let request = replica_fetch_request(who, partitions, options, version)?;
    let response: FetchResponse = connection.call_version(&request, version).await?;
    let context = || format!("replica fetch from {}", connection.address());
    parse_replica_fetch(response, partitions, version, context)
}

/// The Fetch request of a replica (see the module doc for the fields by version).
pub(crate) fn replica_fetch_request(
    who: ReplicaIdentity,
    partitions: &[ReplicaFetchPartition],
    options: ReplicaFetchOptions,
    version: i16,
) -> Result<FetchRequest> {
    let max_bytes = usize::try_from(options.max_bytes).unwrap_or(usize::MAX);
    if max_bytes > FETCH_BYTES_MAX || partitions.iter().any(|p| p.partition_max_bytes < 0) {
        return Err(ClientError::Metadata(format!(
            "replica fetch max_bytes {} outside 0..={FETCH_BYTES_MAX}, or a negative \
             partition_max_bytes",
            options.max_bytes
        )));
    }
    // kafka-protocol refuses a field set at a version that lacks it.
    let since = |min: i16, value: i32| if version >= min { value } else { -1 };
    let mut topics: Vec<FetchTopic> = Vec::new();
    for p in partitions {
        let partition = FetchPartition::default()
            .with_partition(p.partition)
            .with_current_leader_epoch(since(
                CURRENT_LEADER_EPOCH_VERSION_MIN,
                p.current_leader_epoch,
            ))
            .with_fetch_offset(p.fetch_offset)
            .with_last_fetched_epoch(since(LAST_FETCHED_EPOCH_VERSION_MIN, p.last_fetched_epoch))
            .with_log_start_offset(match version >= LOG_START_OFFSET_VERSION_MIN {
                true => p.log_start_offset,
                false => -1,
            })
            .with_partition_max_bytes(p.partition_max_bytes);
        let by_id = version >= TOPIC_ID_VERSION_MIN;
        let same = |t: &&mut FetchTopic| match by_id {
            true => t.topic_id == p.topic_id,
            false => t.topic.0.as_str() == p.topic,
        };
        match topics.iter_mut().find(same) {
            Some(topic) => topic.partitions.push(partition),
            None => {
                let topic = FetchTopic::default().with_partitions(vec![partition]);
                topics.push(match by_id {
                    true => topic.with_topic_id(p.topic_id),
                    false => topic.with_topic(topic_name(&p.topic)),
                });
            }
        }
    }
    let request = FetchRequest::default()
        .with_max_wait_ms(options.max_wait_ms)
        .with_min_bytes(options.min_bytes)
        .with_max_bytes(options.max_bytes)
        .with_topics(topics);
    Ok(match version >= REPLICA_STATE_VERSION_MIN {
        true => request.with_replica_id(BrokerId(-1)).with_replica_state(
            ReplicaState::default()
                .with_replica_id(BrokerId(who.replica_id))
                .with_replica_epoch(who.broker_epoch),
        ),
        false => request.with_replica_id(BrokerId(who.replica_id)),
    })
}

/// The per-partition answers, with topic names filled in from the request when the answer
/// names topics by id.
pub(crate) fn parse_replica_fetch(
    response: FetchResponse,
    asked: &[ReplicaFetchPartition],
    version: i16,
    context: impl Fn() -> String,
) -> Result<Vec<ReplicaFetched>> {
    ClientError::check(response.error_code, &context)?;
    let mut out = Vec::new();
    for topic in response.responses {
        let by_id = version >= TOPIC_ID_VERSION_MIN;
        let name = match by_id {
            true => asked
                .iter()
                .find(|p| p.topic_id == topic.topic_id)
                .map(|p| p.topic.clone())
                .ok_or_else(|| {
                    ClientError::Metadata(format!(
                        "{}: an answer for topic id {} that was not asked for",
                        context(),
                        topic.topic_id
                    ))
                })?,
            false => topic.topic.0.to_string(),
        };
        for p in topic.partitions {
            let diverging = p.diverging_epoch;
            let leader = p.current_leader;
            out.push(ReplicaFetched {
                topic: name.clone(),
                topic_id: topic.topic_id,
                partition: p.partition_index,
                error: ResponseError::try_from_code(p.error_code),
                high_watermark: p.high_watermark,
                log_start_offset: p.log_start_offset,
                diverging_epoch: (diverging.epoch >= 0).then_some(EpochEndOffset {
                    epoch: diverging.epoch,
                    end_offset: diverging.end_offset,
                }),
                current_leader: (leader.leader_id.0 >= 0)
                    .then_some((leader.leader_id.0, leader.leader_epoch)),
                records: p.records.unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

/// OffsetForLeaderEpoch (API 23) for `queries`, asked as replica `replica_id` (a follower's
/// node id; -1 for a consumer checking its position, KIP-320), at the negotiated version.
pub async fn offset_for_leader_epoch(
    connection: &mut Connection,
    replica_id: i32,
    queries: &[EpochQuery],
) -> Result<Vec<EpochAnswer>> {
    let request = offset_for_leader_epoch_request(replica_id, queries);
    let response: OffsetForLeaderEpochResponse = connection.call(&request).await?;
    Ok(parse_offset_for_leader_epoch(response))
}

pub(crate) fn offset_for_leader_epoch_request(
    replica_id: i32,
    queries: &[EpochQuery],
) -> OffsetForLeaderEpochRequest {
    let mut topics: Vec<OffsetForLeaderTopic> = Vec::new();
    for q in queries {
        let partition = OffsetForLeaderPartition::default()
            .with_partition(q.partition)
            .with_current_leader_epoch(q.current_leader_epoch)
            .with_leader_epoch(q.leader_epoch);
        match topics.iter_mut().find(|t| t.topic.0.as_str() == q.topic) {
            Some(topic) => topic.partitions.push(partition),
            None => topics.push(
                OffsetForLeaderTopic::default()
                    .with_topic(topic_name(&q.topic))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(replica_id))
        .with_topics(topics)
}

pub(crate) fn parse_offset_for_leader_epoch(
    response: OffsetForLeaderEpochResponse,
) -> Vec<EpochAnswer> {
    response
        .topics
        .into_iter()
        .flat_map(|t| {
            let topic = t.topic.0.to_string();
            t.partitions.into_iter().map(move |p| EpochAnswer {
                topic: topic.clone(),
                partition: p.partition,
                error: ResponseError::try_from_code(p.error_code),
                leader_epoch: p.leader_epoch,
                end_offset: p.end_offset,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::fetch_response::{
        EpochEndOffset as WireEpochEndOffset, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::messages::offset_for_leader_epoch_response::{
        EpochEndOffset as WireEpochAnswer, OffsetForLeaderTopicResult,
    };
    use kafka_protocol::protocol::{Decodable, Encodable};

    fn partition(topic_id: Uuid) -> ReplicaFetchPartition {
        ReplicaFetchPartition {
            topic: "orders".into(),
            topic_id,
            partition: 2,
            fetch_offset: 40,
            log_start_offset: 3,
            current_leader_epoch: 7,
            last_fetched_epoch: 6,
            partition_max_bytes: 1 << 20,
        }
    }

    const OPTIONS: ReplicaFetchOptions = ReplicaFetchOptions {
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 10 << 20,
    };
    const WHO: ReplicaIdentity = ReplicaIdentity {
        replica_id: 3,
        broker_epoch: 99,
    };

    /// The request decodes, at every Fetch version, to what a Kafka leader reads: the
    /// replica's identity where that version carries it, and each field of its version.
    #[test]
    fn replica_fetch_requests_carry_the_replica_by_version() {
        let id = Uuid::from_u128(0xabc);
        for version in 4..=ApiKey::Fetch.valid_versions().max {
            let request = replica_fetch_request(WHO, &[partition(id)], OPTIONS, version).unwrap();
            let mut buf = BytesMut::new();
            request.encode(&mut buf, version).unwrap();
            let got = FetchRequest::decode(&mut buf.freeze(), version).unwrap();
            let (replica_id, state) = (got.replica_id.0, got.replica_state.clone());
            if version >= 15 {
                assert_eq!(
                    (replica_id, state.replica_id.0, state.replica_epoch),
                    (-1, 3, 99)
                );
            } else {
                assert_eq!(replica_id, 3, "v{version}");
            }
            let p = &got.topics[0].partitions[0];
            assert_eq!((p.partition, p.fetch_offset), (2, 40));
            let expect = |min: i16, value: i32, default: i32| match version >= min {
                true => value,
                false => default,
            };
            assert_eq!(p.current_leader_epoch, expect(9, 7, -1), "v{version}");
            assert_eq!(p.last_fetched_epoch, expect(12, 6, -1), "v{version}");
            assert_eq!(p.log_start_offset, if version >= 5 { 3 } else { -1 });
            match version >= 13 {
                true => assert_eq!(got.topics[0].topic_id, id),
                false => assert_eq!(got.topics[0].topic.0.as_str(), "orders"),
            }
        }
    }

    /// An answer's records come back as the very bytes of the frame (no copy), the
    /// diverging epoch and current leader only when present.
    #[test]
    fn replica_fetch_answers_keep_the_record_bytes() {
        let id = Uuid::from_u128(0xabc);
        let records = Bytes::from_static(b"batches exactly as the leader stored them");
        for version in [12i16, 16] {
            let mut data = PartitionData::default()
                .with_partition_index(2)
                .with_high_watermark(45)
                .with_log_start_offset(3)
                .with_records(Some(records.clone()));
            data.diverging_epoch = WireEpochEndOffset::default()
                .with_epoch(5)
                .with_end_offset(38);
            let empty = PartitionData::default().with_partition_index(4);
            let topic = FetchableTopicResponse::default()
                .with_topic(topic_name("orders"))
                .with_topic_id(id)
                .with_partitions(vec![data, empty]);
            let response = FetchResponse::default().with_responses(vec![topic]);
            let mut buf = BytesMut::new();
            response.encode(&mut buf, version).unwrap();
            let frame = buf.freeze();
            let decoded = FetchResponse::decode(&mut frame.clone(), version).unwrap();
            let got = parse_replica_fetch(decoded, &[partition(id)], version, String::new).unwrap();
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].topic, "orders");
            assert_eq!(got[0].records, records);
            let start = got[0].records.as_ptr() as usize - frame.as_ptr() as usize;
            assert!(
                start < frame.len(),
                "v{version}: the records are a slice of the frame"
            );
            assert_eq!((got[0].high_watermark, got[0].log_start_offset), (45, 3));
            assert_eq!(
                got[0].diverging_epoch,
                Some(EpochEndOffset {
                    epoch: 5,
                    end_offset: 38
                })
            );
            assert_eq!(got[1].diverging_epoch, None);
            assert_eq!(got[1].current_leader, None);
            assert!(got[1].records.is_empty());
        }
    }

    #[test]
    fn offset_for_leader_epoch_round_trips_at_every_version() {
        let queries = [
            EpochQuery {
                topic: "a".into(),
                partition: 0,
                current_leader_epoch: 4,
                leader_epoch: 3,
            },
            EpochQuery {
                topic: "a".into(),
                partition: 1,
                current_leader_epoch: NO_PARTITION_LEADER_EPOCH,
                leader_epoch: 0,
            },
        ];
        let range = ApiKey::OffsetForLeaderEpoch.valid_versions();
        for version in range.min..=range.max {
            let request = offset_for_leader_epoch_request(2, &queries);
            let mut buf = BytesMut::new();
            request.encode(&mut buf, version).unwrap();
            let got = OffsetForLeaderEpochRequest::decode(&mut buf.freeze(), version).unwrap();
            assert_eq!(got.topics.len(), 1);
            let parts = &got.topics[0].partitions;
            assert_eq!(
                (parts[0].current_leader_epoch, parts[0].leader_epoch),
                (4, 3)
            );
            assert_eq!(parts[1].current_leader_epoch, -1);
            if version >= 3 {
                assert_eq!(got.replica_id.0, 2);
            }
        }
        let answer = WireEpochAnswer::default()
            .with_partition(1)
            .with_error_code(ResponseError::FencedLeaderEpoch.code())
            .with_leader_epoch(-1)
            .with_end_offset(-1);
        let response = OffsetForLeaderEpochResponse::default().with_topics(vec![
            OffsetForLeaderTopicResult::default()
                .with_topic(topic_name("a"))
                .with_partitions(vec![answer]),
        ]);
        let got = parse_offset_for_leader_epoch(response);
        assert_eq!(
            got,
            [EpochAnswer {
                topic: "a".into(),
                partition: 1,
                error: Some(ResponseError::FencedLeaderEpoch),
                leader_epoch: -1,
                end_offset: -1,
            }]
        );
    }
}
