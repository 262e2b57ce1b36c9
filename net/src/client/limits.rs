//! Every bound of the client, kept together, with the assertions that tie them.

use kafka_protocol::messages::ApiKey;

use crate::limits::{FRAME_BYTES_MAX, READ_CHUNK_BYTES};

/// Largest response body the client accepts. A fetch answer is bounded by the request's
/// `max_bytes` plus per-partition overhead; this leaves room for Kafka's 50 MiB
/// `fetch.max.bytes` default and the broker's habit of returning one whole batch even
/// when it is larger than `max_bytes`.
pub const RESPONSE_BYTES_MAX: usize = 128 * 1024 * 1024;

/// Most requests one pipelined connection may have unanswered (Kafka's
/// `max.in.flight.requests.per.connection` defaults to 5).
pub const REQUESTS_IN_FLIGHT_MAX: usize = 1024;

/// Largest `max_bytes` a fetch may ask for: the rest of a response is headers.
pub const FETCH_BYTES_MAX: usize = 100 * 1024 * 1024;

/// Most times an operation is retried after a retriable Kafka error (leader moved,
/// topic still being created).
pub const RETRIES_MAX: u32 = 20;

/// Wait between such retries.
pub const RETRY_BACKOFF_MS: u64 = 100;

/// (API, lowest, highest version) this client implements. Produce v13 and Fetch v13+
/// address topics by id, which the client learns from Metadata v10+.
pub const CLIENT_VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 13),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 1, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteRecords, 0, 2),
    // Idempotent producers (no transactional id).
    (ApiKey::InitProducerId, 0, 5),
    // Configs (`configs.rs`).
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    // A follower's calls (`replica.rs`); Kafka 4.1 has OffsetForLeaderEpoch v2-v4.
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    // Consumer groups (`groups.rs`, `membership.rs`). FindCoordinator v4+ and
    // OffsetFetch v8+ are the batched forms; LeaveGroup v3+ names members in a list;
    // OffsetFetch v2+ can ask for every committed partition.
    (ApiKey::FindCoordinator, 0, 3),
    (ApiKey::JoinGroup, 1, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 3, 5),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 2, 7),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    // `sluice metadata-quorum add-controller` / `remove-controller` (`raft_voters.rs`).
    (ApiKey::AddRaftVoter, 0, 0),
    (ApiKey::RemoveRaftVoter, 0, 0),
    // A cluster's admin calls (`cluster.rs`).
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    // `sluice log-dirs` (`log_dirs.rs`).
    (ApiKey::DescribeLogDirs, 1, 4),
];

/// Most JoinGroup rounds [`crate::client::membership::GroupMembership::join`] makes
/// before giving up (each rebalance that starts while we join costs one).
pub const JOIN_ATTEMPTS_MAX: u32 = 20;

/// Every version of `key` the client may negotiate (its range within the codec's), for
/// tests that encode each request at each of them.
#[cfg(test)]
pub(crate) fn versions_under_test(key: ApiKey) -> std::ops::RangeInclusive<i16> {
    let (_, min, max) = *CLIENT_VERSIONS
        .iter()
        .find(|(k, _, _)| *k == key)
        .expect("the client implements it");
    let codec = key.valid_versions();
    min.max(codec.min)..=max.min(codec.max)
}

const _: () = {
    assert!(RESPONSE_BYTES_MAX <= FRAME_BYTES_MAX);
    assert!(FETCH_BYTES_MAX < RESPONSE_BYTES_MAX);
    assert!(READ_CHUNK_BYTES <= RESPONSE_BYTES_MAX);
    assert!(REQUESTS_IN_FLIGHT_MAX >= 1);
};
