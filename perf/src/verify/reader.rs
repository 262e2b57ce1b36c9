//! The read phase: every partition from its log start offset (ListOffsets earliest) to
//! its high watermark (ListOffsets latest, asked once the producers are done), with plain
//! Fetch requests to its leader. A leader that moves or dies costs a Metadata refresh and
//! a retry with backoff; a partition that makes no progress for the delivery timeout
//! ends the run with an error (its records would otherwise all count as lost).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use sluice_net::client::batch::{decode_records, Batches};
use sluice_net::client::{Client, ClientError, FetchOptions, FetchedPartition, OffsetSpec};

use crate::verify::checker::{History, Outcome, PartitionRead};
use crate::verify::limits::{READ_RECORDS_MAX, RETRY_BACKOFF_MAX_MS, RETRY_BACKOFF_MS};
use crate::verify::session::Session;
use crate::verify::{value, Options, VerifyError};

/// How long the broker may hold a fetch: there is data below the high watermark, so it
/// answers at once unless something is wrong.
const FETCH_MAX_WAIT_MS: i32 = 100;
/// Most times one partition's read starts over because its log start moved past it.
const READ_RESTARTS_MAX: u32 = 10;

/// Reads every partition of `options.topic`, keeping the records of run `run_id`.
pub async fn read(options: &Options, run_id: u64) -> Result<Vec<PartitionRead>, VerifyError> {
    let mut session = Session::new(
        &options.bootstrap,
        "sluice-verify-reader",
        options.request_timeout,
    );
    let topic = options.topic.as_str();
    let metadata = session
        .call("Metadata", async |c: &mut Client| c.topic(topic).await)
        .await?;
    let mut partitions: Vec<i32> = metadata.partitions.iter().map(|p| p.partition).collect();
    partitions.sort_unstable();
    let mut reads = Vec::with_capacity(partitions.len());
    for partition in partitions {
        let mut cursor = Cursor::new(partition);
        read_partition(&mut session, options, run_id, &mut cursor).await?;
        reads.push(cursor.read);
    }
    Ok(reads)
}

/// Waits, at most `request_timeout` in all, until each partition's high watermark covers
/// the highest offset acknowledged in it. With acks=1 a leader acknowledges before its
/// followers have the record, and consumers see it only once the high watermark moves
/// past it; reading earlier would count it lost. A partition that does not get there in
/// time is read anyway (its missing records then count as lost).
pub async fn await_high_watermarks(options: &Options, history: &History) {
    let mut wanted: BTreeMap<i32, i64> = BTreeMap::new();
    for sent in &history.sent {
        if let Outcome::Acked { offset } = sent.outcome {
            let end = wanted.entry(sent.partition).or_insert(0);
            *end = (*end).max(offset + 1);
        }
    }
    let topic = options.topic.as_str();
    let mut session = Session::new(
        &options.bootstrap,
        "sluice-verify-reader",
        options.request_timeout,
    );
    let deadline = Instant::now() + options.request_timeout;
    for (partition, end) in wanted {
        while Instant::now() < deadline {
            let high_watermark = session
                .call("ListOffsets", async |c: &mut Client| {
                    c.list_offsets(topic, partition, OffsetSpec::Latest).await
                })
                .await;
            match high_watermark {
                Ok(high_watermark) if high_watermark >= end => break,
                Ok(_) => {}
                Err(_) => {
                    let _ = session.refresh(topic).await;
                }
            }
            compio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
        }
    }
}

/// Where one partition's read stands.
struct Cursor {
    /// `None` until the offsets are listed (again after OFFSET_OUT_OF_RANGE).
    position: Option<i64>,
    /// The high watermark to read up to.
    end: i64,
    read: PartitionRead,
    /// Times the read started over.
    restarts: u32,
}

impl Cursor {
    fn new(partition: i32) -> Self {
        Self {
            position: None,
            end: 0,
            read: PartitionRead {
                partition,
                ..PartitionRead::default()
            },
            restarts: 0,
        }
    }
}

enum Step {
    Progress,
    Done,
}

async fn read_partition(
    session: &mut Session,
    options: &Options,
    run_id: u64,
    cursor: &mut Cursor,
) -> Result<(), VerifyError> {
    let topic = options.topic.as_str();
    let partition = cursor.read.partition;
    let mut deadline = Instant::now() + options.delivery_timeout;
    let mut backoff = Duration::from_millis(RETRY_BACKOFF_MS);
    loop {
        let error = match step(session, topic, run_id, cursor).await {
            Ok(Step::Done) => return Ok(()),
            Ok(Step::Progress) => {
                deadline = Instant::now() + options.delivery_timeout;
                backoff = Duration::from_millis(RETRY_BACKOFF_MS);
                continue;
            }
            Err(error) => error,
        };
        if let ClientError::Batch { .. } | ClientError::UnsupportedApi { .. } = error {
            return Err(VerifyError(format!("reading {topic}-{partition}: {error}")));
        }
        if error.kafka_error().is_some_and(|e| !e.is_retriable()) {
            return Err(VerifyError(format!("reading {topic}-{partition}: {error}")));
        }
        if Instant::now() + backoff > deadline {
            return Err(VerifyError(format!(
                "reading {topic}-{partition}: no progress for delivery.timeout.ms={}; last \
                 error: {error}",
                options.delivery_timeout.as_millis()
            )));
        }
        compio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(RETRY_BACKOFF_MAX_MS));
        // The leader may have moved: the next step asks the one Metadata names now.
        let _ = session.refresh(topic).await;
    }
}

/// Lists the offsets, or fetches once from the position.
async fn step(
    session: &mut Session,
    topic: &str,
    run_id: u64,
    cursor: &mut Cursor,
) -> Result<Step, ClientError> {
    let partition = cursor.read.partition;
    let Some(position) = cursor.position else {
        let list = async |spec: OffsetSpec, session: &mut Session| {
            session
                .call("ListOffsets", async |c: &mut Client| {
                    c.list_offsets(topic, partition, spec).await
                })
                .await
        };
        let start = list(OffsetSpec::Earliest, session).await?;
        let end = list(OffsetSpec::Latest, session).await?;
        cursor.read.log_start_offset = start;
        cursor.read.high_watermark = start;
        cursor.end = end;
        cursor.position = Some(start);
        return Ok(Step::Progress);
    };
    if position >= cursor.end {
        return Ok(Step::Done);
    }
    let options = FetchOptions {
        max_wait_ms: FETCH_MAX_WAIT_MS,
        ..FetchOptions::default()
    };
    let fetched = session
        .call("Fetch", async |c: &mut Client| {
            c.fetch(topic, &[(partition, position)], &options).await
        })
        .await?;
    let answer = fetched
        .into_iter()
        .find(|p| p.partition == partition)
        .ok_or_else(|| {
            ClientError::Metadata(format!("Fetch did not answer {topic}-{partition}"))
        })?;
    match answer.error {
        None => {}
        Some(ResponseError::OffsetOutOfRange) if cursor.restarts < READ_RESTARTS_MAX => {
            // The log start moved past us (retention, DeleteRecords): start over.
            let restarts = cursor.restarts + 1;
            *cursor = Cursor::new(partition);
            cursor.restarts = restarts;
            return Ok(Step::Progress);
        }
        Some(error) => {
            return Err(ClientError::Kafka {
                context: format!("fetching {topic}-{partition} at offset {position}"),
                error,
                code: error.code(),
            })
        }
    }
    let next = take_records(&answer, topic, position, run_id, &mut cursor.read)?;
    if next <= position {
        return Err(ClientError::Metadata(format!(
            "fetching {topic}-{partition} at offset {position}: no record below the high \
             watermark {}",
            cursor.end
        )));
    }
    cursor.position = Some(next);
    cursor.read.high_watermark = next;
    Ok(Step::Progress)
}

/// Adds the run's records at or after `position` to `read`; returns the offset after
/// the last complete batch.
fn take_records(
    answer: &FetchedPartition,
    topic: &str,
    position: i64,
    run_id: u64,
    read: &mut PartitionRead,
) -> Result<i64, ClientError> {
    let context = || format!("{topic}-{} at offset {position}", answer.partition);
    let batch_error = |source| ClientError::Batch {
        context: context(),
        source,
    };
    let mut next = position;
    for batch in Batches::new(&answer.records) {
        let (header, bytes) = batch.map_err(batch_error)?;
        if header.next_offset() <= next {
            continue; // The broker answers from the batch holding the position.
        }
        for record in decode_records(&header, bytes).map_err(batch_error)? {
            if record.offset < next {
                continue;
            }
            match record.value.as_deref().and_then(value::parse) {
                Some((run, id)) if run == run_id => read.records.push((record.offset, id)),
                _ => read.foreign += 1,
            }
        }
        if read.records.len() as u64 > READ_RECORDS_MAX {
            return Err(ClientError::Metadata(format!(
                "{}: more than {READ_RECORDS_MAX} records of this run",
                context()
            )));
        }
        next = header.next_offset();
    }
    Ok(next)
}
