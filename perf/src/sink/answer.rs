//! The sink's answers, one function per API. None of them touches a disk or keeps a
//! record: Produce counts records from the batch headers, Fetch serves a template.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, CreateTopicsRequest, CreateTopicsResponse, FetchRequest,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse, ProduceRequest,
    ProduceResponse, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use sluice_net::client::{Record, RecordBatchBuilder};
use sluice_net::{decode_request, encode_response, DecodeError};
use uuid::Uuid;

use sluice_net::fetch_response::{encode_fetch_response, Chunk, FetchPartitionOut, FetchTopicOut};

use super::{Out, Sink, PARTITION_OFFSETS_MAX};

/// The versions served: `sluiced`'s table, so the client negotiates what it would
/// against the broker.
const SERVED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    (ApiKey::Fetch, 4, 16),
    (ApiKey::ListOffsets, 1, 8),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
];
/// The sink's node id.
const NODE_ID: i32 = 1;
/// Bytes of synthetic batches prebuilt for fetches: the most one partition gets per fetch.
pub const FETCH_TEMPLATE_BYTES: usize = 4 * 1024 * 1024;
/// Bytes of a batch header up to and including `lastOffsetDelta`.
const LAST_OFFSET_DELTA_END: usize = 27;
/// Bytes of `baseOffset` + `batchLength` before every batch's counted length.
const BATCH_LOG_OVERHEAD_BYTES: usize = 12;

fn served(api_key: ApiKey) -> Option<(i16, i16)> {
    SERVED
        .iter()
        .find(|(key, _, _)| *key == api_key)
        .map(|(_, min, max)| (*min, *max))
}

/// Decodes one request frame and appends its answer (if it has one) to `out`.
pub fn answer(sink: &Sink, frame: Bytes, out: &mut Out) -> Result<(), String> {
    let request = match decode_request(frame, served) {
        Ok(request) => request,
        Err(DecodeError::UnsupportedVersion {
            api_key: ApiKey::ApiVersions,
            header,
            ..
        }) => {
            // KIP-511: a v0 answer with our range, so the client retries with it.
            let mut body = api_versions();
            body.error_code = ResponseError::UnsupportedVersion.code();
            let body = ResponseKind::ApiVersions(body);
            return encode(out, header.correlation_id, ApiKey::ApiVersions, 0, &body);
        }
        Err(error) => return Err(error.to_string()),
    };
    let version = request.version;
    let body = match request.body {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions()),
        RequestKind::Metadata(request) => ResponseKind::Metadata(metadata(sink, version, request)),
        RequestKind::CreateTopics(request) => {
            ResponseKind::CreateTopics(create_topics(sink, version, request))
        }
        RequestKind::Produce(request) if request.acks == 0 => {
            let _ = produce(sink, request);
            return Ok(()); // acks=0 is never answered.
        }
        RequestKind::Produce(request) => ResponseKind::Produce(produce(sink, request)),
        RequestKind::ListOffsets(request) => ResponseKind::ListOffsets(list_offsets(sink, request)),
        RequestKind::Fetch(fetch_request) => {
            fetch(
                sink,
                request.header.correlation_id,
                version,
                fetch_request,
                out,
            );
            return Ok(());
        }
        other => return Err(format!("{other:?} is not served")),
    };
    let correlation_id = request.header.correlation_id;
    encode(out, correlation_id, request.api_key, version, &body)
}

fn encode(
    out: &mut Out,
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    body: &ResponseKind,
) -> Result<(), String> {
    let buf = out.encode_buffer();
    let before = buf.len();
    encode_response(correlation_id, api_key, version, body, buf)
        .map_err(|error| error.to_string())?;
    let after = buf.len();
    out.encoded(after - before);
    Ok(())
}

fn api_versions() -> ApiVersionsResponse {
    let api_keys = SERVED
        .iter()
        .map(|&(key, min, max)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_api_keys(api_keys)
        .with_finalized_features_epoch(-1)
}

/// A stable, non-nil topic id derived from the name (FNV-1a, both halves).
fn topic_id(name: &str) -> Uuid {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    Uuid::from_u64_pair(hash | 1, hash.rotate_left(17) | 1)
}

fn metadata(sink: &Sink, version: i16, request: MetadataRequest) -> MetadataResponse {
    let node = BrokerId(NODE_ID);
    let broker = MetadataResponseBroker::default()
        .with_node_id(node)
        .with_host(StrBytes::from_string(sink.host.clone()))
        .with_port(sink.port);
    let partitions: Vec<MetadataResponsePartition> = (0..sink.partitions)
        .map(|index| {
            MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(node)
                .with_leader_epoch(if version >= 7 { 0 } else { -1 })
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    let topics = request
        .topics
        .unwrap_or_default()
        .into_iter()
        .map(|topic| {
            let id = match &topic.name {
                Some(name) => topic_id(&name.0),
                None => topic.topic_id,
            };
            MetadataResponseTopic::default()
                .with_name(topic.name)
                .with_topic_id(if version >= 10 { id } else { Uuid::nil() })
                .with_partitions(partitions.clone())
        })
        .collect();
    let response = MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_topics(topics);
    match version {
        0 => response,
        1 => response.with_controller_id(node),
        _ => response
            .with_controller_id(node)
            .with_cluster_id(Some(StrBytes::from_static_str("sluice-perf-sink"))),
    }
}

fn create_topics(sink: &Sink, version: i16, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let result = CreatableTopicResult::default().with_topic_id(if version >= 7 {
                topic_id(&topic.name.0)
            } else {
                Uuid::nil()
            });
            let result = if version >= 5 {
                result
                    .with_num_partitions(sink.partitions)
                    .with_replication_factor(1)
            } else {
                result
            };
            result.with_name(topic.name)
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

/// Records in a `records` field: the sum of `lastOffsetDelta + 1` over its batches.
fn count_records(records: &[u8]) -> i64 {
    let mut count = 0;
    let mut rest = records;
    while rest.len() >= LAST_OFFSET_DELTA_END {
        let length = i32::from_be_bytes(rest[8..12].try_into().expect("4 bytes"));
        let delta = i32::from_be_bytes(rest[23..27].try_into().expect("4 bytes"));
        count += i64::from(delta.max(0)) + 1;
        let batch_bytes = usize::try_from(length).unwrap_or(0) + BATCH_LOG_OVERHEAD_BYTES;
        rest = rest.get(batch_bytes..).unwrap_or_default();
    }
    count
}

/// Reserves `count` offsets of `topic`/`partition` and returns the first.
fn reserve_offsets(sink: &Sink, topic: &str, partition: i32, count: i64) -> i64 {
    let mut offsets = sink.next_offsets.borrow_mut();
    let key = (topic.to_string(), partition);
    if let Some(next) = offsets.get_mut(&key) {
        let base = *next;
        *next += count;
        return base;
    }
    if offsets.len() < PARTITION_OFFSETS_MAX {
        offsets.insert(key, count);
    }
    0
}

fn produce(sink: &Sink, request: ProduceRequest) -> ProduceResponse {
    let responses = request
        .topic_data
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partition_data
                .iter()
                .map(|data| {
                    let records = data.records.as_deref().unwrap_or_default();
                    let count = count_records(records);
                    let base = reserve_offsets(sink, &topic.name.0, data.index, count);
                    PartitionProduceResponse::default()
                        .with_index(data.index)
                        .with_base_offset(base)
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(partitions)
        })
        .collect();
    ProduceResponse::default().with_responses(responses)
}

fn list_offsets(sink: &Sink, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let offsets = sink.next_offsets.borrow();
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let latest = offsets
                        .get(&(topic.name.0.to_string(), p.partition_index))
                        .copied()
                        .unwrap_or(0);
                    let offset = if p.timestamp == -2 { 0 } else { latest };
                    ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_offset(offset)
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// Answers a fetch with template batches, framed by hand around them (`net`'s
/// `fetch_response`, as `sluiced` does) so their bytes are written, not copied.
fn fetch(sink: &Sink, correlation_id: i32, version: i16, request: FetchRequest, out: &mut Out) {
    let mut budget = usize::try_from(request.max_bytes).unwrap_or(0);
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let wanted = usize::try_from(p.partition_max_bytes).unwrap_or(0);
                    let records = sink
                        .fetch_template
                        .records(p.fetch_offset, wanted.min(budget));
                    budget = budget.saturating_sub(records.bytes as usize);
                    let end = p.fetch_offset + records.count;
                    FetchPartitionOut {
                        partition_index: p.partition,
                        error_code: 0,
                        high_watermark: end,
                        last_stable_offset: end,
                        log_start_offset: 0,
                        records: Some((records.pieces, records.bytes)),
                        diverging_epoch: None,
                        preferred_read_replica: -1,
                    }
                })
                .collect();
            FetchTopicOut {
                name: topic.topic.0.to_string(),
                topic_id: topic.topic_id,
                partitions,
            }
        })
        .collect();
    for chunk in encode_fetch_response(correlation_id, version, topics) {
        match chunk {
            Chunk::Bytes(bytes) => out.piece(bytes),
            Chunk::Records(pieces, _) => pieces.into_iter().for_each(|piece| out.piece(piece)),
        }
    }
}

/// Synthetic batches for fetches: `FETCH_TEMPLATE_BYTES` of batches of `record_size`
/// records, each batch at most `batch_size_bytes` (at least one record).
pub struct FetchTemplate {
    bytes: Bytes,
    /// (start position, records) of every batch in `bytes`.
    batches: Vec<(usize, i64)>,
}

impl FetchTemplate {
    pub fn new(record_size: usize, batch_size_bytes: usize) -> Self {
        let payload = vec![b'x'; record_size];
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let record = Record {
            value: Some(&payload),
            timestamp_ms: now_ms,
            ..Record::default()
        };
        let mut bytes = BytesMut::new();
        let mut batches = Vec::new();
        while bytes.len() < FETCH_TEMPLATE_BYTES {
            let mut builder = RecordBatchBuilder::new(now_ms);
            builder.push(&record);
            while builder.size_bytes() + builder.record_size_bytes(&record) <= batch_size_bytes {
                builder.push(&record);
            }
            let count = i64::from(builder.record_count());
            batches.push((bytes.len(), count));
            bytes.put_slice(&builder.finish());
        }
        Self {
            bytes: bytes.freeze(),
            batches,
        }
    }

    /// Whole batches of at most `max_bytes` (at least one, as Kafka serves a first batch
    /// larger than the limit), numbered from `base_offset`.
    fn records(&self, base_offset: i64, max_bytes: usize) -> TemplateRecords {
        let mut records = TemplateRecords {
            pieces: Vec::new(),
            bytes: 0,
            count: 0,
        };
        for (index, &(start, count)) in self.batches.iter().enumerate() {
            let end = self
                .batches
                .get(index + 1)
                .map_or(self.bytes.len(), |b| b.0);
            if index > 0 && end - self.batches[0].0 > max_bytes {
                break;
            }
            // The CRC covers attributes onwards, so the base offset may be replaced.
            let offset = base_offset + records.count;
            records
                .pieces
                .push(Bytes::copy_from_slice(&offset.to_be_bytes()));
            records.pieces.push(self.bytes.slice(start + 8..end));
            records.bytes += u32::try_from(end - start).expect("template below 4 GiB");
            records.count += count;
        }
        records
    }
}

/// Batches of the template, renumbered: pieces to write in order.
struct TemplateRecords {
    pieces: Vec<Bytes>,
    bytes: u32,
    /// Records in them.
    count: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_net::client::Batches;

    #[test]
    fn template_batches_follow_the_fetch_offset_and_keep_their_crc() {
        let template = FetchTemplate::new(1024, 16_384);
        let joined = |records: TemplateRecords| {
            let bytes: Vec<u8> = records.pieces.iter().flat_map(|p| p.to_vec()).collect();
            assert_eq!(bytes.len(), records.bytes as usize);
            (bytes, records.count)
        };
        let (records, count) = joined(template.records(1000, 100_000));
        assert!(records.len() <= 100_000 && !records.is_empty());
        let mut next = 1000;
        for batch in Batches::new(&records) {
            let (header, _) = batch.expect("valid batch");
            assert_eq!(header.base_offset, next);
            next = header.next_offset();
        }
        assert_eq!(next - 1000, count);
        assert_eq!(count_records(&records), count);
        // A limit below one batch still gets one batch.
        let (one, one_count) = joined(template.records(0, 10));
        assert_eq!(one.len(), template.batches[1].0);
        assert_eq!(one_count, template.batches[0].1);
    }

    #[test]
    fn records_are_counted_from_headers() {
        assert_eq!(count_records(&[]), 0);
        assert_eq!(count_records(&[0; 10]), 0);
    }
}
