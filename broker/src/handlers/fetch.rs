//! Fetch v4–v18 (v13+ address topics by id; v17's replica directory id and v18's follower
//! high watermark are follower fields, unused without replication). From v11 a consumer
//! may fetch from a follower, and the leader may name a preferred read replica instead of
//! answering (KIP-392, `replica::read_replica`). Honours `max_bytes`, `partition_max_bytes`
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
use kafka_protocol::messages::{FetchRequest, TopicName};
use sluice_engine::FirstBatch;
use sluice_net::fetch_response::{FetchPartitionOut, FetchTopicOut};
use sluice_net::zero_copy::FileRange;

use crate::metadata::TopicInfo;
use crate::ops::{fetch_routed, FetchAsker, FetchPart};
use crate::replica::read_replica::{ClientMetadata, CLIENT_METADATA_VERSION_MIN};
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

/// Returns the answer's topics; the connection frames them by hand around file ranges.
pub async fn handle(
    shard: &Rc<Shard>,
    version: i16,
    req: FetchRequest,
) -> Vec<FetchTopicOut<FileRange>> {
    let wanted = resolve(shard, version, &req);
    let asking = Asking {
        version,
        replica_id: replica_of(version, &req),
        rack_id: std::sync::Arc::from(req.rack_id.as_str()),
    };
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
        let (resp, bytes, errors) = read_all(shard, &asking, &wanted, req.max_bytes).await;
        let done = bytes >= min_bytes || errors || listeners.is_empty();
        if done || shard.stopping.get() || Instant::now() >= deadline {
            return resp;
        }
        // Wakes on an append to any wanted partition, the deadline, or the broker stopping.
        let _ = compio::time::timeout_at(deadline, select(select_all(listeners), stop)).await;
    }
}

/// The follower asking (Kafka's `replica_id`, from v15 in `replica_state`); consumers send -1.
fn replica_of(version: i16, req: &FetchRequest) -> Option<i32> {
    const REPLICA_STATE_VERSION_MIN: i16 = 15;
    let id = if version >= REPLICA_STATE_VERSION_MIN {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    (id >= 0).then_some(id)
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

/// Who asks: the request's version, the follower (None: a consumer) and its `rack_id`.
struct Asking {
    version: i16,
    replica_id: Option<i32>,
    rack_id: Arc<str>,
}

impl Asking {
    fn asker(&self, p: &FetchPartition) -> FetchAsker {
        match self.replica_id {
            Some(replica_id) => FetchAsker::Replica(crate::replica::ReplicaAsk {
                replica_id,
                current_leader_epoch: p.current_leader_epoch,
                last_fetched_epoch: p.last_fetched_epoch,
                log_start_offset: p.log_start_offset,
            }),
            None if self.version >= CLIENT_METADATA_VERSION_MIN => {
                FetchAsker::Client(ClientMetadata {
                    rack_id: self.rack_id.clone(),
                    current_leader_epoch: p.current_leader_epoch,
                })
            }
            None => FetchAsker::LeaderOnly {
                current_leader_epoch: p.current_leader_epoch,
            },
        }
    }
}

/// Reads every wanted partition within the response's byte budget. Returns the topics to
/// frame, the record bytes they hold, and whether any partition had an error or named a
/// preferred read replica (either answers at once).
async fn read_all(
    shard: &Rc<Shard>,
    asking: &Asking,
    wanted: &[Wanted],
    max_bytes: i32,
) -> (Vec<FetchTopicOut<FileRange>>, usize, bool) {
    let me = shard.broker.node_id;
    let mut remaining = max_bytes.max(0) as usize;
    let mut total = 0usize;
    let mut errors = false;
    let mut topics = Vec::with_capacity(wanted.len());
    for w in wanted {
        let mut t = FetchTopicOut {
            name: w.name.0.to_string(),
            topic_id: w.topic_id,
            partitions: Vec::new(),
        };
        for p in &w.partitions {
            let info = w
                .topic
                .as_ref()
                .and_then(|t| Some((t, t.partitions.get(usize::try_from(p.partition).ok()?)?)));
            let asker = asking.asker(p);
            // A v11+ consumer may read from any replica (KIP-392); others only from the leader.
            let servable = |info: &crate::metadata::PartitionInfo| match asker {
                FetchAsker::Client(_) => info.is_led_by(me) || info.has_replica(me),
                _ => info.is_led_by(me),
            };
            let part = match info {
                Some((_, info)) if !servable(info) => {
                    FetchPart::failed(ResponseError::NotLeaderOrFollower)
                }
                Some((topic, info)) => {
                    let tp = TopicPartition {
                        topic: topic.name.clone(),
                        partition: p.partition,
                    };
                    let limit = (p.partition_max_bytes.max(0) as usize).min(remaining) as u32;
                    let first = if total == 0 {
                        FirstBatch::Whole
                    } else {
                        FirstBatch::WithinLimit
                    };
                    fetch_routed(shard, info, tp, (p.fetch_offset, limit, first), asker).await
                }
                None => FetchPart::failed(unknown_topic(asking.version)),
            };
            let n = part.records.as_ref().map_or(0, |(_, len)| *len as usize);
            total += n;
            remaining = remaining.saturating_sub(n);
            errors |= part.error != 0 || part.preferred_read_replica.is_some();
            t.partitions.push(FetchPartitionOut {
                partition_index: p.partition,
                error_code: part.error,
                high_watermark: part.high_watermark,
                last_stable_offset: part.high_watermark,
                log_start_offset: part.log_start_offset,
                records: part.records,
                diverging_epoch: part.diverging_epoch,
                preferred_read_replica: part.preferred_read_replica.unwrap_or(-1),
            });
        }
        topics.push(t);
    }
    (topics, total, errors)
}

fn unknown_topic(version: i16) -> ResponseError {
    if version >= TOPIC_ID_VERSION_MIN {
        ResponseError::UnknownTopicId
    } else {
        ResponseError::UnknownTopicOrPartition
    }
}
