//! Fetch v4–v16 (v13+ address topics by id). Honours `max_bytes`, `partition_max_bytes`
//! (the first batch of the first non-empty partition is returned whole, KIP-74), `min_bytes`
//! and `max_wait_ms`: a long poll parks on the partitions' append signals and wakes on an
//! append, not on a timer loop. Fetch sessions (KIP-227) are not kept: session id 0 tells
//! clients to send full requests.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::{select, select_all};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use sluice_engine::FirstBatch;

use crate::metadata::TopicInfo;
use crate::ops::{fetch_routed, FetchPart};
use crate::shard::{Shard, TopicPartition};

/// The longest long poll we honour, whatever the client asks.
pub const FETCH_WAIT_MS_MAX: i32 = 30_000;

/// The first version that names topics by id.
const TOPIC_ID_VERSION_MIN: i16 = 13;

struct Wanted {
    name: TopicName,
    topic_id: uuid::Uuid,
    topic: Option<Arc<TopicInfo>>,
    partitions: Vec<FetchPartition>,
}

pub async fn handle(shard: &Rc<Shard>, version: i16, req: FetchRequest) -> FetchResponse {
    let wanted = resolve(shard, version, &req);
    let wait = Duration::from_millis(req.max_wait_ms.clamp(0, FETCH_WAIT_MS_MAX) as u64);
    let deadline = Instant::now() + wait;
    let min_bytes = req.min_bytes.max(0) as usize;
    loop {
        let listeners: Vec<_> = wanted
            .iter()
            .filter_map(|w| w.topic.as_ref().map(|t| (t, &w.partitions)))
            .flat_map(|(t, ps)| {
                ps.iter()
                    .filter_map(|p| t.partitions.get(usize::try_from(p.partition).ok()?))
            })
            .map(|p| p.appended.listen())
            .collect();
        let stop = shard.stop.listen();
        let (resp, bytes, errors) = read_all(shard, version, &wanted, req.max_bytes).await;
        let done = bytes >= min_bytes || errors || listeners.is_empty();
        if done || shard.stopping.get() || Instant::now() >= deadline {
            return resp;
        }
        // Wakes on an append to any wanted partition, the deadline, or the broker stopping.
        let _ = compio::time::timeout_at(deadline, select(select_all(listeners), stop)).await;
    }
}

fn resolve(shard: &Shard, version: i16, req: &FetchRequest) -> Vec<Wanted> {
    let meta = shard.metadata();
    req.topics
        .iter()
        .map(|t| {
            let topic = if version >= TOPIC_ID_VERSION_MIN {
                meta.topic_by_id(t.topic_id)
            } else {
                meta.topic(&t.topic.0)
            };
            Wanted {
                name: t.topic.clone(),
                topic_id: t.topic_id,
                topic: topic.cloned(),
                partitions: t.partitions.clone(),
            }
        })
        .collect()
}

/// Reads every wanted partition within the response's byte budget. Returns the response, the
/// record bytes in it, and whether any partition had an error (which answers at once).
async fn read_all(
    shard: &Rc<Shard>,
    version: i16,
    wanted: &[Wanted],
    max_bytes: i32,
) -> (FetchResponse, usize, bool) {
    let mut remaining = max_bytes.max(0) as usize;
    let mut total = 0usize;
    let mut errors = false;
    let mut resp = FetchResponse::default();
    for w in wanted {
        let mut t = FetchableTopicResponse::default();
        t.topic = w.name.clone();
        t.topic_id = w.topic_id;
        for p in &w.partitions {
            let part = match w
                .topic
                .as_ref()
                .and_then(|t| t.partitions.get(usize::try_from(p.partition).ok()?))
            {
                Some(info) => {
                    let tp = TopicPartition {
                        topic: w.topic.as_ref().unwrap().name.clone(),
                        partition: p.partition,
                    };
                    let limit = (p.partition_max_bytes.max(0) as usize).min(remaining) as u32;
                    let first = if total == 0 {
                        FirstBatch::Whole
                    } else {
                        FirstBatch::WithinLimit
                    };
                    fetch_routed(shard, info, tp, p.fetch_offset, limit, first).await
                }
                None => FetchPart {
                    error: unknown_topic(version).code(),
                    high_watermark: -1,
                    log_start_offset: -1,
                    records: None,
                },
            };
            let n = part.records.as_ref().map_or(0, |r| r.len());
            total += n;
            remaining = remaining.saturating_sub(n);
            errors |= part.error != 0;
            t.partitions
                .push(partition_data(version, p.partition, part));
        }
        resp.responses.push(t);
    }
    (resp, total, errors)
}

fn unknown_topic(version: i16) -> ResponseError {
    if version >= TOPIC_ID_VERSION_MIN {
        ResponseError::UnknownTopicId
    } else {
        ResponseError::UnknownTopicOrPartition
    }
}

/// The first version with `log_start_offset` in the answer.
const LOG_START_OFFSET_VERSION_MIN: i16 = 5;

fn partition_data(version: i16, index: i32, part: FetchPart) -> PartitionData {
    let mut d = PartitionData::default();
    d.partition_index = index;
    d.error_code = part.error;
    d.high_watermark = part.high_watermark;
    d.last_stable_offset = part.high_watermark;
    if version >= LOG_START_OFFSET_VERSION_MIN {
        d.log_start_offset = part.log_start_offset;
    }
    d.aborted_transactions = None;
    d.preferred_read_replica = BrokerId(-1);
    d.records = Some(part.records.unwrap_or_default());
    d
}
