//! One module per Kafka API. `SUPPORTED` is exactly what ApiVersions advertises and what the
//! decoder lets through.

use kafka_protocol::messages::ApiKey;

pub mod alter_configs;
pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_quorum;
pub mod describe_topic_partitions;
pub mod elect_leaders;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_config_resources;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod partition_reassignments;
pub mod produce;
pub mod raft_voters;
pub mod sync_group;

/// (API, lowest version, highest version) this broker implements. Versions below
/// kafka-protocol's range are coded by `sluice_net::codec`'s legacy module.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 13),
    (ApiKey::Fetch, 4, 18),
    (ApiKey::ListOffsets, 0, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 0, 7),
    (ApiKey::DeleteTopics, 0, 6),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 0, 9),
    (ApiKey::OffsetFetch, 0, 9),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeConfigs, 0, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::ListConfigResources, 0, 1),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::AddRaftVoter, 0, 0),
    (ApiKey::RemoveRaftVoter, 0, 0),
];

/// APIs only a cluster node (`process.roles`) serves and advertises: a single node has no
/// metadata quorum to describe.
pub const CLUSTER_ONLY: &[ApiKey] = &[
    ApiKey::DescribeQuorum,
    ApiKey::AlterPartitionReassignments,
    ApiKey::ListPartitionReassignments,
    ApiKey::AddRaftVoter,
    ApiKey::RemoveRaftVoter,
];

pub fn supported(api_key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == api_key)
        .map(|(_, min, max)| (*min, *max))
}

/// What a node serves: `SUPPORTED`, less `CLUSTER_ONLY` on a single node.
pub fn served(api_key: ApiKey, cluster: bool) -> Option<(i16, i16)> {
    if !cluster && CLUSTER_ONLY.contains(&api_key) {
        return None;
    }
    supported(api_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_ranges_are_within_the_codec() {
        for (key, min, max) in SUPPORTED {
            let valid = sluice_net::codec::codec_versions(*key);
            assert!(
                valid.0 <= *min && *max <= valid.1,
                "{key:?} {min}..={max} vs {valid:?}"
            );
        }
    }

    /// README's "Supported Kafka APIs" table: (name, key, min, max) per row.
    fn readme_table() -> Vec<(String, i16, i16, i16)> {
        let readme = include_str!("../../../README.md");
        let table = readme
            .split("### Supported Kafka APIs")
            .nth(1)
            .expect("README has the supported-APIs section");
        table
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2) // header and separator
            .map(|row| {
                let cells: Vec<&str> = row.split('|').map(str::trim).collect();
                let versions = cells[3].split(' ').next().unwrap();
                let (min, max) = versions.split_once('–').unwrap_or((versions, versions));
                let number = |s: &str| s.parse::<i16>().unwrap_or_else(|_| panic!("{row}"));
                (
                    cells[1].to_string(),
                    number(cells[2]),
                    number(min),
                    number(max),
                )
            })
            .collect()
    }

    #[test]
    fn readme_table_is_what_api_versions_advertises() {
        let mut readme = readme_table();
        readme.sort_by_key(|r| r.1);
        let mut ours: Vec<(String, i16, i16, i16)> = SUPPORTED
            .iter()
            .map(|(key, min, max)| (format!("{key:?}"), *key as i16, *min, *max))
            .collect();
        ours.sort_by_key(|r| r.1);
        assert_eq!(readme, ours);
    }
}
