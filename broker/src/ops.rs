//! Partition operations, run on the shard that owns the partition. The `*_routed` functions
//! run them locally or send them across the owner's bounded inbox.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use std::os::fd::{AsFd, OwnedFd};

use bytes::Bytes;
use compio::driver::SharedFd;
use futures_channel::oneshot;
use kafka_protocol::error::ResponseError;
use sluice_engine::DeleteRecordsError;
use sluice_engine::{
    AppendError, BatchErrorKind, PartitionLog, ProducerError, ReadError, RecordError, TopicId,
};
use sluice_engine::{FetchIsolation, FirstBatch};
use sluice_net::zero_copy::FileRange;

use crate::append::{AppendFailure, AppendTicket, Appended};
use crate::metadata::PartitionInfo;
use crate::msg::{call, ShardMsg};
use crate::shard::{LogRef, Shard, TopicPartition};
use crate::topic_config::TopicConfig;

pub const NONE: i16 = 0;

#[derive(Debug, Clone)]
pub struct ProducePart {
    pub error: i16,
    pub message: Option<String>,
    pub base_offset: i64,
    pub log_start_offset: i64,
    /// -1 unless the topic stamps LogAppendTime.
    pub log_append_time_ms: i64,
    /// The records that made the batch fail (Produce v8+ `record_errors`).
    pub record_errors: Vec<RecordError>,
}

/// One partition's fetch answer on the connection's shard: record data is a range of an
/// open segment file (kept open by the shared descriptor), sent later with splice.
#[derive(Debug, Clone)]
pub struct FetchPart {
    pub error: i16,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub records: Option<(FileRange, u32)>,
    /// To a follower whose log diverged (KIP-320): (epoch, end offset) to truncate to.
    pub diverging_epoch: Option<(i32, i64)>,
    /// KIP-392: the replica a consumer should fetch from instead of this leader.
    pub preferred_read_replica: Option<i32>,
}

impl FetchPart {
    pub fn failed(error: ResponseError) -> FetchPart {
        FetchPart {
            error: error.code(),
            high_watermark: -1,
            log_start_offset: -1,
            records: None,
            diverging_epoch: None,
            preferred_read_replica: None,
        }
    }

    /// For the trip back to another shard: the descriptor is duplicated (the shared one is
    /// tied to this shard), so the range stays readable whatever happens to the segment.
    pub fn into_sent(self) -> SentFetchPart {
        let records =
            self.records.and_then(
                |(range, len)| match range.file.as_fd().try_clone_to_owned() {
                    Ok(fd) => Some((fd, range.position, len)),
                    Err(e) => {
                        tracing::error!("duplicating a segment descriptor for another shard: {e}");
                        None
                    }
                },
            );
        SentFetchPart {
            error: self.error,
            high_watermark: self.high_watermark,
            log_start_offset: self.log_start_offset,
            records,
            diverging_epoch: self.diverging_epoch,
            preferred_read_replica: self.preferred_read_replica,
        }
    }
}

/// A `FetchPart` crossing shards.
#[derive(Debug)]
pub struct SentFetchPart {
    pub error: i16,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub records: Option<(OwnedFd, u64, u32)>,
    pub diverging_epoch: Option<(i32, i64)>,
    pub preferred_read_replica: Option<i32>,
}

impl SentFetchPart {
    fn into_local(self) -> FetchPart {
        let records = self.records.map(|(fd, position, len)| {
            (
                FileRange {
                    file: SharedFd::new(std::fs::File::from(fd)),
                    position,
                },
                len,
            )
        });
        FetchPart {
            error: self.error,
            high_watermark: self.high_watermark,
            log_start_offset: self.log_start_offset,
            records,
            diverging_epoch: self.diverging_epoch,
            preferred_read_replica: self.preferred_read_replica,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ListOffsetsPart {
    pub error: i16,
    pub timestamp: i64,
    pub offset: i64,
    /// The leader epoch of the batch holding `offset` (the current epoch for latest), as
    /// Kafka answers from v4; -1 when unknown.
    pub leader_epoch: i32,
}

fn produce_error(error: ResponseError, message: impl Into<String>) -> ProducePart {
    ProducePart {
        error: error.code(),
        message: Some(message.into()),
        base_offset: -1,
        log_start_offset: -1,
        log_append_time_ms: -1,
        record_errors: Vec::new(),
    }
}

/// A produce to one partition whose records are queued (in request order) but maybe not
/// yet written: the first half of a pipelined produce.
pub enum ProduceTicket {
    Done(ProducePart),
    Local {
        ticket: AppendTicket,
        log: LogRef,
        topic: Arc<str>,
        bytes: u64,
        /// acks=all on a replicated partition: wait for the ISR until this deadline.
        commit: Option<(TopicPartition, Instant)>,
    },
    Remote(oneshot::Receiver<ProducePart>),
}

impl ProduceTicket {
    pub async fn wait(self, shard: &Shard) -> ProducePart {
        match self {
            ProduceTicket::Done(part) => part,
            ProduceTicket::Remote(answer) => answer.await.unwrap_or_else(|_| {
                produce_error(ResponseError::NotLeaderOrFollower, "owner shard stopped")
            }),
            ProduceTicket::Local {
                ticket,
                log,
                topic,
                bytes,
                commit,
            } => {
                let result = ticket.wait().await;
                if let Ok(a) = &result {
                    shard.metrics.produced(
                        &topic,
                        bytes,
                        (a.last_offset - a.base_offset + 1) as u64,
                    );
                }
                let log_start_offset = log.borrow().log_start_offset();
                if let (Ok(a), Some((tp, deadline))) = (&result, commit) {
                    let committed =
                        crate::replica::wait_committed(shard, &tp, a.last_offset, deadline).await;
                    if let Err(e) = committed {
                        return produce_error(e, "the in-sync replicas did not all take the write");
                    }
                }
                produce_part(result, log_start_offset)
            }
        }
    }
}

/// Queues a produce on the partition's owner: locally in the appender, or in the owning
/// shard's inbox (which queues it in its appender in inbox order).
pub async fn produce_submit(
    shard: &Rc<Shard>,
    part: &Arc<PartitionInfo>,
    tp: TopicPartition,
    (records, commit): (Bytes, Option<Instant>),
) -> ProduceTicket {
    if part.shard == shard.id {
        return produce_submit_local(shard, tp, (records, commit)).await;
    }
    let (reply, answer) = oneshot::channel();
    let msg = ShardMsg::Produce {
        tp,
        records,
        commit,
        reply,
    };
    match shard.peers.send(part.shard, msg).await {
        Ok(()) => ProduceTicket::Remote(answer),
        Err(_) => ProduceTicket::Done(produce_error(
            ResponseError::NotLeaderOrFollower,
            "owner shard stopped",
        )),
    }
}

/// `commit`: acks=all's deadline. On a replicated partition the write then waits for the
/// ISR, and is refused before appending when the ISR is below `min.insync.replicas`.
pub async fn produce_submit_local(
    shard: &Rc<Shard>,
    tp: TopicPartition,
    (records, commit): (Bytes, Option<Instant>),
) -> ProduceTicket {
    let (Some(log), Some(info)) = (shard.log(&tp), partition_info(shard, &tp)) else {
        return ProduceTicket::Done(produce_error(
            ResponseError::UnknownTopicOrPartition,
            "This server does not host this topic-partition.",
        ));
    };
    let commit = commit.filter(|_| info.replication.is_some());
    if commit.is_some() && crate::replica::below_min_isr(shard, &tp) {
        return ProduceTicket::Done(produce_error(
            ResponseError::NotEnoughReplicas,
            "The in-sync replicas are fewer than min.insync.replicas.",
        ));
    }
    let bytes = records.len() as u64;
    match shard.appender.enqueue(log.clone(), info, records).await {
        Ok(ticket) => ProduceTicket::Local {
            ticket,
            log,
            commit: commit.map(|deadline| (tp.clone(), deadline)),
            topic: tp.topic,
            bytes,
        },
        Err(failure) => ProduceTicket::Done(produce_part(Err(failure), -1)),
    }
}

fn produce_part(result: Result<Appended, AppendFailure>, log_start_offset: i64) -> ProducePart {
    match result {
        Ok(a) => ProducePart {
            error: NONE,
            message: None,
            base_offset: a.base_offset,
            log_start_offset,
            log_append_time_ms: a.log_append_time_ms.unwrap_or(-1),
            record_errors: Vec::new(),
        },
        Err(AppendFailure::Rejected(AppendError::Batch(e))) => {
            let code = match e.kind {
                BatchErrorKind::Corrupt => ResponseError::CorruptMessage,
                BatchErrorKind::InvalidRecord => ResponseError::InvalidRecord,
                BatchErrorKind::UnsupportedMagic => ResponseError::UnsupportedForMessageFormat,
                BatchErrorKind::TooLarge => ResponseError::MessageTooLarge,
                BatchErrorKind::InvalidTimestamp => ResponseError::InvalidTimestamp,
            };
            ProducePart {
                record_errors: e.record_errors,
                log_start_offset,
                ..produce_error(code, e.message)
            }
        }
        Err(AppendFailure::Rejected(AppendError::Producer(e))) => {
            let code = match e {
                ProducerError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
                ProducerError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
            };
            produce_error(code, e.to_string())
        }
        Err(AppendFailure::Rejected(e @ AppendError::LargerThanSegment { .. })) => {
            produce_error(ResponseError::RecordListTooLarge, e.to_string())
        }
        Err(AppendFailure::Rejected(e @ AppendError::NotLeader)) => {
            produce_error(ResponseError::NotLeaderOrFollower, e.to_string())
        }
        Err(AppendFailure::Rejected(AppendError::Offline)) => produce_error(
            ResponseError::KafkaStorageError,
            "the partition's log is offline after a disk error",
        ),
        Err(AppendFailure::Rejected(AppendError::Io(e))) => {
            produce_error(ResponseError::KafkaStorageError, e.to_string())
        }
        Err(AppendFailure::Storage(m)) => produce_error(ResponseError::KafkaStorageError, m),
        // Only follower appends fail this way; a produce never is one.
        Err(AppendFailure::Replication(e)) => {
            produce_error(ResponseError::UnknownServerError, e.to_string())
        }
    }
}

pub fn partition_info(shard: &Shard, tp: &TopicPartition) -> Option<Arc<PartitionInfo>> {
    let meta = shard.metadata();
    let topic = meta.topic(&tp.topic)?;
    topic
        .partitions
        .get(usize::try_from(tp.partition).ok()?)
        .cloned()
}

pub async fn fetch_routed(
    shard: &Rc<Shard>,
    part: &Arc<PartitionInfo>,
    tp: TopicPartition,
    (offset, max_bytes, first): (i64, u32, FirstBatch),
    asker: FetchAsker,
) -> FetchPart {
    if part.shard == shard.id {
        return fetch_local(shard, tp, (offset, max_bytes, first), asker);
    }
    let sent = call(&shard.peers, part.shard, |reply| ShardMsg::Fetch {
        tp,
        offset,
        max_bytes,
        first,
        asker,
        reply,
    })
    .await;
    match sent {
        Ok(sent) => sent.into_local(),
        Err(_) => FetchPart::failed(ResponseError::NotLeaderOrFollower),
    }
}

/// Who sent a fetch.
#[derive(Debug, Clone)]
pub enum FetchAsker {
    /// A follower (cluster mode).
    Replica(crate::replica::ReplicaAsk),
    /// A consumer of Fetch v11+ (KIP-392's client metadata: it may read from a follower).
    Client(crate::replica::read_replica::ClientMetadata),
    /// A consumer of an older version: only the leader serves it. Its leader epoch (-1:
    /// none, before v9) is checked against the leader's, as Kafka does.
    LeaderOnly { current_leader_epoch: i32 },
}

/// Reads on the owning shard: the answer is a range of an open segment file, not bytes. A
/// follower's fetch goes to the partition's leader state first, a v11+ consumer's to its
/// replica role (`read_replica`).
pub fn fetch_local(
    shard: &Rc<Shard>,
    tp: TopicPartition,
    (offset, max_bytes, first): (i64, u32, FirstBatch),
    asker: FetchAsker,
) -> FetchPart {
    // A single node has no followers to track: a replica's fetch reads like a consumer's
    // (its high watermark is its log end).
    let info = partition_info(shard, &tp).filter(|i| i.replication.is_some());
    match (asker, info) {
        (FetchAsker::Replica(ask), Some(info)) => {
            return crate::replica::serve_follower(shard, (&tp, &info), ask, (offset, max_bytes));
        }
        (FetchAsker::Client(client), Some(_)) => {
            let read = (offset, max_bytes, first);
            return crate::replica::read_replica::serve_consumer(shard, &tp, &client, read);
        }
        (
            FetchAsker::LeaderOnly {
                current_leader_epoch,
            },
            Some(_),
        ) => {
            if let Some(e) =
                crate::replica::read_replica::leader_epoch_error(shard, &tp, current_leader_epoch)
            {
                return FetchPart::failed(e);
            }
        }
        _ => {}
    }
    let Some(log) = shard.log(&tp) else {
        return FetchPart::failed(ResponseError::UnknownTopicOrPartition);
    };
    read_local(
        shard,
        &tp,
        &log,
        (offset, max_bytes, first),
        FetchIsolation::HighWatermark,
    )
}

/// One read of `log` up to `isolation`'s bound, as a file range.
pub fn read_local(
    shard: &Shard,
    tp: &TopicPartition,
    log: &LogRef,
    (offset, max_bytes, first): (i64, u32, FirstBatch),
    isolation: FetchIsolation,
) -> FetchPart {
    let mut l = log.borrow_mut();
    let mut part = FetchPart {
        error: NONE,
        high_watermark: l.high_watermark(),
        log_start_offset: l.log_start_offset(),
        records: None,
        diverging_epoch: None,
        preferred_read_replica: None,
    };
    match l.read(offset, max_bytes, first, isolation) {
        Ok(None) => {}
        Ok(Some(slice)) if slice.len == 0 => {}
        Ok(Some(slice)) => {
            let records = (slice.next_offset - slice.base_offset) as u64;
            shard
                .metrics
                .fetched(&tp.topic, u64::from(slice.len), records);
            let range = FileRange {
                file: slice.file().clone(),
                position: slice.position,
            };
            part.records = Some((range, slice.len));
        }
        Err(ReadError::OffsetOutOfRange { .. }) => {
            part.error = ResponseError::OffsetOutOfRange.code()
        }
        Err(ReadError::Io(e)) => {
            tracing::error!(topic = %tp.topic, partition = tp.partition, "fetch failed: {e}");
            part.error = ResponseError::KafkaStorageError.code();
        }
    }
    part
}

/// Kafka's special ListOffsets timestamps.
pub const LATEST_TIMESTAMP: i64 = -1;
pub const EARLIEST_TIMESTAMP: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;
pub const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
/// KIP-1005 (ListOffsets v9+): the highest offset in tiered storage. Without tiered storage
/// Kafka answers no offset (-1, -1) and no error.
pub const LATEST_TIERED_TIMESTAMP: i64 = -5;

/// What a ListOffsets asks of one partition.
#[derive(Debug, Clone, Copy)]
pub struct ListOffsetsAsk {
    pub timestamp: i64,
    /// A client's request (replica id -1: Kafka's defined isolation level): answered up to
    /// the high watermark, and OFFSET_NOT_AVAILABLE while a new leader's high watermark is
    /// below the start of its epoch. Otherwise (a broker's or a debugging request) up to the
    /// log end.
    pub from_client: bool,
}

pub async fn list_offsets_routed(
    shard: &Rc<Shard>,
    part: &Arc<PartitionInfo>,
    tp: TopicPartition,
    ask: ListOffsetsAsk,
) -> ListOffsetsPart {
    if part.shard == shard.id {
        return list_offsets_local(shard, tp, ask);
    }
    call(&shard.peers, part.shard, |reply| ShardMsg::ListOffsets {
        tp,
        ask,
        reply,
    })
    .await
    .unwrap_or_else(|_| offsets_error(ResponseError::NotLeaderOrFollower))
}

/// Kafka's `Partition.fetchOffsetForTimestamp` on the owner: latest is the last fetchable
/// offset (the high watermark for a client); a lookup by timestamp (or max timestamp) finds
/// only offsets below it; and while this broker leads with a high watermark below the
/// start offset of its own leader epoch (a new leader whose followers have not caught up),
/// a client's latest, and a client's lookup that would reach past it, answer
/// OFFSET_NOT_AVAILABLE, so no client sees an offset lower than the old leader exposed.
pub fn list_offsets_local(
    shard: &Rc<Shard>,
    tp: TopicPartition,
    ask: ListOffsetsAsk,
) -> ListOffsetsPart {
    let Some(log) = shard.log(&tp) else {
        return offsets_error(ResponseError::UnknownTopicOrPartition);
    };
    let mut l = log.borrow_mut();
    let high_watermark = l.high_watermark();
    let lagging =
        ask.from_client && crate::replica::high_watermark_lagging(shard, &tp, high_watermark);
    let last_fetchable = if ask.from_client {
        high_watermark
    } else {
        l.log_end_offset()
    };
    let found = match ask.timestamp {
        LATEST_TIMESTAMP if lagging => return offsets_error(ResponseError::OffsetNotAvailable),
        LATEST_TIMESTAMP => Ok(Some((last_fetchable, -1))),
        EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => Ok(Some((l.log_start_offset(), -1))),
        MAX_TIMESTAMP => l.max_timestamp(),
        LATEST_TIERED_TIMESTAMP => Ok(None),
        t if t >= 0 => l.offset_for_timestamp(t),
        _ => return offsets_error(ResponseError::InvalidRequest),
    };
    // A lookup by timestamp may land in a segment DeleteRecords cut into.
    let log_start_offset = l.log_start_offset();
    let by_timestamp = ask.timestamp >= 0 || ask.timestamp == MAX_TIMESTAMP;
    match found {
        Ok(Some((offset, _))) if by_timestamp && offset >= last_fetchable && lagging => {
            offsets_error(ResponseError::OffsetNotAvailable)
        }
        Ok(Some((offset, _))) if by_timestamp && offset >= last_fetchable => {
            offsets_error_code(NONE)
        }
        Ok(Some((offset, timestamp))) => {
            let offset = offset.max(log_start_offset);
            let leader_epoch = match ask.timestamp {
                LATEST_TIMESTAMP => l.leader_epoch().0,
                _ => epoch_for_offset(&l, offset),
            };
            ListOffsetsPart {
                error: NONE,
                timestamp,
                offset,
                leader_epoch,
            }
        }
        Ok(None) => offsets_error_code(NONE),
        Err(e) => {
            tracing::error!(topic = %tp.topic, partition = tp.partition, "list offsets failed: {e}");
            offsets_error(ResponseError::KafkaStorageError)
        }
    }
}

/// No offset, with `error`.
pub fn offsets_error(error: ResponseError) -> ListOffsetsPart {
    offsets_error_code(error.code())
}

fn offsets_error_code(error: i16) -> ListOffsetsPart {
    ListOffsetsPart {
        error,
        timestamp: -1,
        offset: -1,
        leader_epoch: -1,
    }
}

/// Kafka's `LeaderEpochFileCache.epochForOffset`: the epoch whose range holds `offset`.
fn epoch_for_offset(log: &sluice_engine::PartitionLog, offset: i64) -> i32 {
    log.leader_epoch_cache()
        .entries()
        .iter()
        .take_while(|e| e.start_offset <= offset)
        .last()
        .map_or(-1, |e| e.epoch.0)
}

/// ListOffsets v0 on the partition's owner (`PartitionLog::legacy_offsets_before`).
pub async fn legacy_offsets_routed(
    shard: &Rc<Shard>,
    part: &Arc<PartitionInfo>,
    tp: TopicPartition,
    timestamp: i64,
    max_num_offsets: usize,
) -> (i16, Vec<i64>) {
    if part.shard == shard.id {
        return legacy_offsets_local(shard, tp, timestamp, max_num_offsets);
    }
    call(&shard.peers, part.shard, |reply| ShardMsg::LegacyOffsets {
        tp,
        timestamp,
        max_num_offsets,
        reply,
    })
    .await
    .unwrap_or_else(|_| (ResponseError::NotLeaderOrFollower.code(), Vec::new()))
}

pub fn legacy_offsets_local(
    shard: &Rc<Shard>,
    tp: TopicPartition,
    timestamp: i64,
    max_num_offsets: usize,
) -> (i16, Vec<i64>) {
    let Some(log) = shard.log(&tp) else {
        return (ResponseError::UnknownTopicOrPartition.code(), Vec::new());
    };
    let now_ms = crate::group::state::now_ms();
    let found = log
        .borrow()
        .legacy_offsets_before(timestamp, max_num_offsets, now_ms);
    match found {
        Ok(offsets) => (NONE, offsets),
        Err(e) => {
            tracing::error!(topic = %tp.topic, partition = tp.partition, "list offsets v0 failed: {e}");
            (ResponseError::KafkaStorageError.code(), Vec::new())
        }
    }
}

/// Creates the partition's log on this (owning) shard, with its topic's config
/// (`TOPIC_CONFIG_FILE` written in the new directory when there are overrides).
pub fn create_partition_local(
    shard: &Rc<Shard>,
    tp: TopicPartition,
    topic_id: TopicId,
    config: &TopicConfig,
) -> Result<(), String> {
    if shard.log(&tp).is_some() {
        return Ok(());
    }
    let Some(dir) = shard.pick_log_dir() else {
        return Err(format!(
            "creating {}-{}: every log dir is offline after a disk failure",
            tp.topic, tp.partition
        ));
    };
    let failed = |e: std::io::Error| {
        format!(
            "creating {}-{} in {}: {e}",
            tp.topic,
            tp.partition,
            dir.display()
        )
    };
    // The topic's config is written inside the new directory before it appears, so a
    // crash cannot leave the partition on broker defaults.
    let write_config = |partition_dir: &std::path::Path| match *config == TopicConfig::default() {
        true => Ok(()),
        false => config.write(partition_dir),
    };
    let log = PartitionLog::create_with(
        &dir,
        (&tp.topic, tp.partition),
        topic_id,
        config.log_config(&shard.current_config()),
        shard.files.clone(),
        &write_config,
    )
    .map_err(failed)?;
    shard
        .logs
        .borrow_mut()
        .insert(tp, Rc::new(std::cell::RefCell::new(log)));
    Ok(())
}

/// Removes the partition's log on this (owning) shard once no append or read holds it.
/// Its replica role goes first (a follower stops fetching it, a leader's acks=all waiters
/// wake and answer NOT_LEADER_OR_FOLLOWER), so a replica assigned here again later starts
/// from a new log and a first role.
pub async fn delete_partition_local(shard: &Rc<Shard>, tp: TopicPartition) -> Result<(), String> {
    const DELETE_WAIT_ROUNDS_MAX: u32 = 500;
    let Some(mut log) = shard.logs.borrow_mut().remove(&tp) else {
        return Ok(());
    };
    shard.replicas.borrow_mut().remove(&tp);
    if let Some(info) = partition_info(shard, &tp) {
        info.appended.notify(usize::MAX);
    }
    for _ in 0..DELETE_WAIT_ROUNDS_MAX {
        match Rc::try_unwrap(log) {
            Ok(cell) => {
                return cell
                    .into_inner()
                    .delete()
                    .map_err(|e| format!("deleting {}-{}: {e}", tp.topic, tp.partition));
            }
            Err(still_shared) => log = still_shared,
        }
        compio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Err(format!(
        "{}-{} is still in use; its directory was left in place",
        tp.topic, tp.partition
    ))
}

/// Topic config and DeleteRecords operations, run on the partition's owning shard.
pub enum PartitionAdmin {
    /// The topic's overrides as this partition stored them.
    ReadConfig {
        reply: oneshot::Sender<Result<TopicConfig, String>>,
    },
    /// Persists `config` in the partition directory and applies it to the log.
    SetConfig {
        config: Arc<TopicConfig>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Moves the log start offset (-1 = high watermark).
    DeleteRecords {
        offset: i64,
        reply: oneshot::Sender<DeleteRecordsPart>,
    },
    /// The end offset of `leader_epoch` (`handlers::offset_for_leader_epoch`).
    OffsetForLeaderEpoch {
        view: crate::handlers::offset_for_leader_epoch::LeaderView,
        current_leader_epoch: i32,
        leader_epoch: i32,
        reply: oneshot::Sender<crate::handlers::offset_for_leader_epoch::EpochEndAnswer>,
    },
}

/// One partition's DeleteRecords answer: error code and the new low watermark.
#[derive(Debug, Clone)]
pub struct DeleteRecordsPart {
    pub error: i16,
    pub low_watermark: i64,
    pub message: Option<String>,
}

/// Runs `op` on this (owning) shard.
pub fn admin_local(shard: &Rc<Shard>, tp: TopicPartition, op: PartitionAdmin) {
    let log = shard.log(&tp);
    let missing = || format!("{}-{} is not hosted here", tp.topic, tp.partition);
    match op {
        PartitionAdmin::ReadConfig { reply } => {
            let r = log
                .ok_or_else(missing)
                .and_then(|l| TopicConfig::read(l.borrow().dir()).map_err(|e| e.to_string()));
            let _ = reply.send(r);
        }
        PartitionAdmin::SetConfig { config, reply } => {
            let r = log.ok_or_else(missing).and_then(|l| {
                let mut l = l.borrow_mut();
                config.write(l.dir()).map_err(|e| e.to_string())?;
                l.set_config(config.log_config(&shard.current_config()))
                    .map_err(|e| e.to_string())
            });
            let _ = reply.send(r);
        }
        PartitionAdmin::DeleteRecords { offset, reply } => {
            let _ = reply.send(delete_records_local(log, offset));
        }
        PartitionAdmin::OffsetForLeaderEpoch {
            view,
            current_leader_epoch,
            leader_epoch,
            reply,
        } => {
            use crate::handlers::offset_for_leader_epoch::answer_local;
            let log = log.as_ref().map(|l| l.borrow());
            let answer = answer_local(log.as_deref(), view, current_leader_epoch, leader_epoch);
            let _ = reply.send(answer);
        }
    }
}

fn delete_records_local(log: Option<crate::shard::LogRef>, offset: i64) -> DeleteRecordsPart {
    let failed = |error: ResponseError, message: String| DeleteRecordsPart {
        error: error.code(),
        low_watermark: -1,
        message: Some(message),
    };
    let Some(log) = log else {
        return failed(
            ResponseError::UnknownTopicOrPartition,
            "This server does not host this topic-partition.".into(),
        );
    };
    let result = log.borrow_mut().delete_records(offset);
    match result {
        Ok(low_watermark) => DeleteRecordsPart {
            error: NONE,
            low_watermark,
            message: None,
        },
        Err(e @ DeleteRecordsError::OffsetOutOfRange { .. }) => {
            failed(ResponseError::OffsetOutOfRange, e.to_string())
        }
        Err(e) => failed(ResponseError::KafkaStorageError, e.to_string()),
    }
}

/// Runs `make`'s op on the partition's owner (locally or across its inbox).
pub async fn admin_routed<T>(
    shard: &Rc<Shard>,
    owner: usize,
    tp: TopicPartition,
    make: impl FnOnce(oneshot::Sender<T>) -> PartitionAdmin,
) -> Result<T, crate::shard::ShardGone> {
    let (tx, rx) = oneshot::channel();
    let op = make(tx);
    if owner == shard.id {
        admin_local(shard, tp, op);
    } else {
        shard.send(owner, ShardMsg::Admin { tp, op }).await?;
    }
    rx.await.map_err(|_| crate::shard::ShardGone)
}
