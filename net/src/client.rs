//! A small async Kafka client on compio: the `sluice` CLI, replication followers and
//! `sluice-perf` talk to brokers through it.
//!
//! [`Client`] knows the cluster (brokers, topics, partition leaders) and routes each
//! call to the right broker, one request at a time per connection. For throughput,
//! [`Client::producer`] opens a dedicated pipelined connection to a partition's leader
//! ([`producer::ProduceSender`] / [`producer::ProduceAcks`]).
//!
//! Everything here lives on one compio runtime thread.
//!
//! ```ignore
//! let mut client = Client::connect("127.0.0.1:9092").await?;
//! client.create_topic("events", 3, 1).await?;
//! let mut batch = RecordBatchBuilder::new(now_ms);
//! batch.push(&Record { value: Some(b"hello"), timestamp_ms: now_ms, ..Record::default() });
//! let base_offset = client.produce("events", 0, batch.finish(), Acks::All).await?;
//! ```

mod admin;
pub mod batch;
pub mod cluster;
mod configs;
pub mod connection;
pub mod consumer_protocol;
pub mod error;
mod groups;
pub mod limits;
pub mod log_dirs;
pub mod membership;
pub mod producer;
pub mod raft_voters;
pub mod reassignments;
pub mod replica;
mod requests;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, ProduceResponse};
use uuid::Uuid;

pub use admin::{AdvertisedApi, DeletedRecords};
pub use batch::{Batches, BatchesSummary, ProducerIdentity, Record, RecordBatchBuilder};
pub use configs::{config_source_name, ConfigChange, ConfigResourceType, DescribedConfig};
pub use connection::{Connection, ResponseExpected};
pub use error::{ClientError, Result};
pub use groups::{
    CommittedOffset, Committer, GroupDescription, GroupMemberDescription, ListedGroup,
};
pub use producer::{Acks, ProduceAcks, ProduceSender};

use limits::{RETRIES_MAX, RETRY_BACKOFF_MS};

/// Client id sent in request headers unless the caller picks one.
pub const CLIENT_ID_DEFAULT: &str = "sluice";

/// A broker as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerMetadata {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

impl BrokerMetadata {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// One partition as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    pub partition: i32,
    /// -1 when there is no leader.
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub error: Option<ResponseError>,
}

/// One topic as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    pub name: String,
    /// Nil when the broker's Metadata version predates topic ids.
    pub topic_id: Uuid,
    pub error: Option<ResponseError>,
    pub partitions: Vec<PartitionMetadata>,
}

/// A Metadata answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata {
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub brokers: Vec<BrokerMetadata>,
    pub topics: Vec<TopicMetadata>,
}

/// What [`Client::create_topic`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicCreation {
    Created,
    AlreadyExists,
}

/// Which offset [`Client::list_offsets`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset (high watermark for consumers).
    Latest,
    /// The first offset whose timestamp is at least this many ms since the epoch.
    Timestamp(i64),
}

impl OffsetSpec {
    fn timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(ms) => ms,
        }
    }
}

/// Long-poll and size bounds of a fetch (Kafka's consumer settings of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchOptions {
    /// `fetch.max.wait.ms`: how long the broker may wait for `min_bytes`.
    pub max_wait_ms: i32,
    /// `fetch.min.bytes`.
    pub min_bytes: i32,
    /// `fetch.max.bytes`: the whole response.
    pub max_bytes: i32,
    /// `max.partition.fetch.bytes`.
    pub partition_max_bytes: i32,
    /// Send each partition's leader epoch as Metadata last gave it (`current_leader_epoch`,
    /// v9+), as Kafka's consumer does (KIP-320): a broker that is no longer the leader of that
    /// epoch answers FENCED_LEADER_EPOCH (retriable: refresh Metadata) instead of serving
    /// what it still has. False: -1, no check.
    pub current_leader_epoch: bool,
}

impl Default for FetchOptions {
    /// Kafka's consumer defaults.
    fn default() -> Self {
        Self {
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 50 * 1024 * 1024,
            partition_max_bytes: 1024 * 1024,
            current_leader_epoch: false,
        }
    }
}

/// One partition's part of a fetch answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedPartition {
    pub partition: i32,
    pub error: Option<ResponseError>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// Record batches as the broker sent them; the last may be partial.
    pub records: Bytes,
}

/// A client of one Kafka cluster.
///
/// Lives on one compio runtime thread.
pub struct Client {
    bootstrap: Connection,
    client_id: String,
    brokers: HashMap<i32, String>,
    /// One connection per broker, opened on first use; bounded by the brokers Metadata
    /// lists.
    connections: HashMap<i32, Connection>,
    topics: HashMap<String, TopicMetadata>,
}

impl Client {
    /// Connects to the first reachable address of `bootstrap` (`host:port[,host:port…]`)
    /// and negotiates API versions.
    pub async fn connect(bootstrap: &str) -> Result<Client> {
        Self::connect_as(bootstrap, CLIENT_ID_DEFAULT).await
    }

    /// [`Self::connect`] with a client id of the caller's choice.
    pub async fn connect_as(bootstrap: &str, client_id: &str) -> Result<Client> {
        let mut last_error = ClientError::Bootstrap(bootstrap.to_string());
        for address in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            if !address.contains(':') {
                return Err(ClientError::Bootstrap(address.to_string()));
            }
            match Connection::connect(address, client_id).await {
                Ok(bootstrap) => {
                    return Ok(Client {
                        bootstrap,
                        client_id: client_id.to_string(),
                        brokers: HashMap::new(),
                        connections: HashMap::new(),
                        topics: HashMap::new(),
                    })
                }
                Err(error) => last_error = error,
            }
        }
        Err(last_error)
    }

    /// The connection to the bootstrap broker.
    pub fn bootstrap(&mut self) -> &mut Connection {
        &mut self.bootstrap
    }

    /// Metadata of `topics` (of every topic when empty), without creating any. Also
    /// refreshes what the client knows of brokers and leaders.
    pub async fn metadata(&mut self, topics: &[&str]) -> Result<Metadata> {
        let version = self.bootstrap.version(ApiKey::Metadata)?;
        let request = requests::metadata(topics, version);
        let response = self.bootstrap.call(&request).await?;
        let metadata = requests::parse_metadata(response, self.bootstrap.address())?;
        for broker in &metadata.brokers {
            self.brokers.insert(broker.node_id, broker.address());
        }
        for topic in &metadata.topics {
            if topic.error.is_none() {
                self.topics.insert(topic.name.clone(), topic.clone());
            }
        }
        Ok(metadata)
    }

    /// The metadata of `topic`, waiting (up to [`RETRIES_MAX`] tries) while it has no
    /// leaders yet, as right after its creation.
    pub async fn topic(&mut self, topic: &str) -> Result<TopicMetadata> {
        let mut tries = 0;
        loop {
            let metadata = self.metadata(&[topic]).await?;
            let found = metadata.topics.into_iter().find(|t| t.name == topic);
            let outcome = match found {
                None => Err(ClientError::Metadata(format!(
                    "{}: Metadata did not list topic {topic:?}",
                    self.bootstrap.address()
                ))),
                Some(t) => requests::topic_ready(t, self.bootstrap.address()),
            };
            match outcome {
                Err(error) if tries < RETRIES_MAX && is_retriable(&error) => {
                    tries += 1;
                    compio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
                }
                outcome => return outcome,
            }
        }
    }

    /// Creates `topic` unless it exists.
    pub async fn create_topic(
        &mut self,
        topic: &str,
        partitions: i32,
        replication_factor: i16,
    ) -> Result<TopicCreation> {
        let request = requests::create_topic(topic, partitions, replication_factor);
        let response = self.bootstrap.call(&request).await?;
        let address = self.bootstrap.address();
        let result = response
            .topics
            .iter()
            .find(|t| t.name.0.as_str() == topic)
            .ok_or_else(|| {
                ClientError::Metadata(format!("{address}: CreateTopics did not answer {topic:?}"))
            })?;
        if result.error_code == ResponseError::TopicAlreadyExists.code() {
            return Ok(TopicCreation::AlreadyExists);
        }
        let message = result.error_message.as_ref().map(|m| m.to_string());
        ClientError::check_with_message(result.error_code, message, || {
            format!("creating topic {topic:?} on {address}")
        })?;
        Ok(TopicCreation::Created)
    }

    /// Produces one record batch to `topic`/`partition` on its leader and waits for the
    /// acknowledgement. Returns the batch's base offset (`None` with [`Acks::None`]).
    pub async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        batch: Bytes,
        acks: Acks,
    ) -> Result<Option<i64>> {
        let metadata = self.known_topic(topic).await?;
        let connection = self.leader(&metadata, partition).await?;
        let version =
            requests::version_with_ids(connection.version(ApiKey::Produce)?, &metadata.topic_id);
        let request = requests::produce(&metadata, partition, batch, acks, version);
        if acks == Acks::None {
            // The broker does not answer acks=0 produce requests.
            connection.send_only(&request, version).await?;
            return Ok(None);
        }
        let response: ProduceResponse = connection.call_version(&request, version).await?;
        let context = || format!("producing to {topic}-{partition}");
        requests::parse_produce(&response, partition, context).map(Some)
    }

    /// A producer id and epoch for an idempotent producer (InitProducerId without a
    /// transactional id, asked of the bootstrap broker as any broker may answer it).
    /// Batches built with [`RecordBatchBuilder::finish_idempotent`] then carry it.
    pub async fn init_producer_id(&mut self) -> Result<ProducerIdentity> {
        let response = self.bootstrap.call(&requests::init_producer_id()).await?;
        requests::parse_init_producer_id(&response, self.bootstrap.address())
    }

    /// Fetches `partitions` (`(partition, fetch_offset)`) of `topic`, all of which must
    /// have the same leader.
    pub async fn fetch(
        &mut self,
        topic: &str,
        partitions: &[(i32, i64)],
        options: &FetchOptions,
    ) -> Result<Vec<FetchedPartition>> {
        let Some(&(first, _)) = partitions.first() else {
            return Ok(Vec::new());
        };
        let metadata = self.known_topic(topic).await?;
        let connection = self.leader(&metadata, first).await?;
        let version =
            requests::version_with_ids(connection.version(ApiKey::Fetch)?, &metadata.topic_id);
        let request = requests::fetch(&metadata, partitions, options, version)?;
        let response = connection.call_version(&request, version).await?;
        requests::parse_fetch(response, || {
            format!("fetching {topic} from {}", connection.address())
        })
    }

    /// The offset `spec` names in `topic`/`partition`, from its leader.
    pub async fn list_offsets(
        &mut self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
    ) -> Result<i64> {
        let metadata = self.known_topic(topic).await?;
        let connection = self.leader(&metadata, partition).await?;
        let request = requests::list_offsets(topic, partition, spec.timestamp());
        let response = connection.call(&request).await?;
        requests::parse_list_offsets(&response, partition, || {
            format!("listing offsets of {topic}-{partition}")
        })
    }

    /// A dedicated pipelined producer connection to the leader of `topic`/`partition`,
    /// with at most `requests_in_flight_max` produce requests unanswered.
    pub async fn producer<T>(
        &mut self,
        topic: &str,
        partition: i32,
        acks: Acks,
        requests_in_flight_max: usize,
    ) -> Result<(ProduceSender<T>, ProduceAcks<T>)> {
        let metadata = self.known_topic(topic).await?;
        let address = self.leader_address(&metadata, partition)?;
        let connection = Connection::connect(&address, &self.client_id).await?;
        producer::open(connection, &metadata, acks, requests_in_flight_max)
    }

    /// What the client knows of `topic`, asking the cluster if it knows nothing.
    async fn known_topic(&mut self, topic: &str) -> Result<TopicMetadata> {
        match self.topics.get(topic) {
            Some(metadata) => Ok(metadata.clone()),
            None => self.topic(topic).await,
        }
    }

    fn leader_address(&self, topic: &TopicMetadata, partition: i32) -> Result<String> {
        let leader_id = requests::leader_id(topic, partition)?;
        self.brokers.get(&leader_id).cloned().ok_or_else(|| {
            ClientError::Metadata(format!(
                "leader {leader_id} of {}-{partition} is not among the brokers Metadata listed",
                topic.name
            ))
        })
    }

    /// The connection to the leader of `partition`, opened if needed.
    async fn leader(&mut self, topic: &TopicMetadata, partition: i32) -> Result<&mut Connection> {
        let leader_id = requests::leader_id(topic, partition)?;
        if !self.connections.contains_key(&leader_id) {
            let address = self.leader_address(topic, partition)?;
            let connection = Connection::connect(&address, &self.client_id).await?;
            self.connections.insert(leader_id, connection);
        }
        Ok(self
            .connections
            .get_mut(&leader_id)
            .expect("inserted above"))
    }
}

/// Whether retrying after `error` may succeed (Kafka's retriable error codes).
pub fn is_retriable(error: &ClientError) -> bool {
    error.kafka_error().is_some_and(|e| e.is_retriable())
}
