//! A pipelined producer on one connection to a partition leader: the sending half
//! ([`ProduceSender`]) and the acknowledging half ([`ProduceAcks`]) run as separate tasks
//! of one compio runtime, with at most `requests_in_flight_max` requests unanswered.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ProduceResponse};

use crate::client::connection::{Connection, PipelineReceiver, PipelineSender, ResponseExpected};
use crate::client::error::Result;
use crate::client::{requests, TopicMetadata};

/// Kafka's `acks`: how much replication a produce waits for before its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: no answer at all.
    None,
    /// `acks=1`: the leader appended.
    Leader,
    /// `acks=all` (`-1`): every in-sync replica appended.
    All,
}

impl Acks {
    /// Parses Kafka's spellings: `0`, `1`, `all`, `-1`.
    pub fn parse(value: &str) -> std::result::Result<Acks, String> {
        match value.trim() {
            "0" => Ok(Acks::None),
            "1" => Ok(Acks::Leader),
            "all" | "-1" => Ok(Acks::All),
            other => Err(format!("acks={other}: expected 0, 1, all or -1")),
        }
    }

    pub fn as_i16(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// What became of one produced batch: its base offset (`None` with [`Acks::None`]), or
/// the Kafka error the broker answered.
pub type ProduceOutcome = Result<Option<i64>>;

/// Tag carried through the pipeline with each batch.
struct Sent<T> {
    partition: i32,
    tag: T,
}

/// Opens a pipelined producer on `connection`.
pub(crate) fn open<T>(
    connection: Connection,
    topic: &TopicMetadata,
    acks: Acks,
    requests_in_flight_max: usize,
) -> Result<(ProduceSender<T>, ProduceAcks<T>)> {
    let version = requests::version_with_ids(connection.version(ApiKey::Produce)?, &topic.topic_id);
    let address = connection.address().to_string();
    let (sender, receiver) = connection.into_pipeline(requests_in_flight_max);
    let sender = ProduceSender {
        pipeline: sender,
        topic: topic.clone(),
        acks,
        version,
        timeout_ms: requests::REQUEST_TIMEOUT_MS,
    };
    let acks = ProduceAcks {
        pipeline: receiver,
        topic: topic.name.clone(),
        address,
    };
    Ok((sender, acks))
}

/// Sends record batches to partitions of one topic whose leader is this connection's
/// broker.
pub struct ProduceSender<T> {
    pipeline: PipelineSender<Sent<T>>,
    topic: TopicMetadata,
    acks: Acks,
    version: i16,
    /// How long the broker may wait for the in-sync replicas (acks=all).
    timeout_ms: i32,
}

impl<T> ProduceSender<T> {
    /// Sets the produce requests' `timeout_ms` (default 30000): how long the broker may
    /// wait for the in-sync replicas before answering REQUEST_TIMED_OUT. Kafka's producer
    /// sends its `request.timeout.ms` here.
    pub fn set_timeout_ms(&mut self, timeout_ms: i32) {
        self.timeout_ms = timeout_ms;
    }

    /// Sends `batch` (from [`crate::client::RecordBatchBuilder`]) to `partition`; waits
    /// first while `requests_in_flight_max` requests are unanswered. `tag` comes back
    /// from [`ProduceAcks::next`] with the outcome.
    pub async fn send(&mut self, partition: i32, batch: Bytes, tag: T) -> Result<()> {
        let request = requests::produce(&self.topic, partition, batch, self.acks, self.version)
            .with_timeout_ms(self.timeout_ms);
        let response = match self.acks {
            Acks::None => ResponseExpected::No,
            Acks::Leader | Acks::All => ResponseExpected::Yes,
        };
        let sent = Sent { partition, tag };
        self.pipeline
            .send(&request, self.version, response, sent)
            .await
    }

    /// Whether [`Self::send`] would go out without waiting for an answer first.
    pub fn has_capacity(&self) -> bool {
        self.pipeline.has_capacity()
    }

    pub fn in_flight(&self) -> usize {
        self.pipeline.in_flight()
    }

    pub fn address(&self) -> &str {
        self.pipeline.address()
    }

    /// The Produce version in use.
    pub fn version(&self) -> i16 {
        self.version
    }
}

/// Receives the answers to a [`ProduceSender`]'s batches, in the order they were sent.
pub struct ProduceAcks<T> {
    pipeline: PipelineReceiver<Sent<T>>,
    topic: String,
    address: String,
}

impl<T> ProduceAcks<T> {
    /// The next batch's tag and outcome; `None` once the sender is dropped and every
    /// answer has arrived. An `Err` means the connection is broken: every batch still
    /// in flight is lost.
    pub async fn next(&mut self) -> Result<Option<(T, ProduceOutcome)>> {
        let Some((sent, response)) = self.pipeline.receive::<ProduceResponse>().await? else {
            return Ok(None);
        };
        let Some(response) = response else {
            return Ok(Some((sent.tag, Ok(None))));
        };
        let partition = sent.partition;
        let context = || {
            format!(
                "producing to {}-{partition} on {}",
                self.topic, self.address
            )
        };
        let outcome = requests::parse_produce(&response, partition, context).map(Some);
        Ok(Some((sent.tag, outcome)))
    }
}
