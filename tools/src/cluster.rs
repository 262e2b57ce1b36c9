//! `sluice cluster`: a friendly summary of a cluster (Sluice's own, no Kafka tool prints
//! this): its id, every registered broker with its address, rack and whether it is alive or
//! fenced, and the metadata quorum — its leader (the active controller), epoch, high
//! watermark and each voter's and observer's lag. From DescribeCluster and DescribeQuorum;
//! a single node (no quorum) says so.

use kafka_protocol::messages::ApiKey;
use sluice_net::client::cluster::{ClusterDescription, QuorumInfo, QuorumReplica};

use crate::connect::AdminConnection;
use crate::error::{Result, ToolError};
use crate::metadata_quorum::pretty_table;

#[derive(clap::Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    connection: AdminConnection,
}

pub async fn run(args: ClusterArgs) -> Result<()> {
    let mut client = args.connection.connect("cluster").await?;
    if !client.advertises(ApiKey::DescribeCluster).await? {
        return Err(ToolError::new(format!(
            "{} does not list DescribeCluster in its ApiVersions answer",
            args.connection.bootstrap_server
        )));
    }
    let cluster = client.describe_cluster().await?;
    let quorum = match client.advertises(ApiKey::DescribeQuorum).await? {
        true => Some(client.describe_quorum().await?),
        false => None,
    };
    print!("{}", summary(&cluster, quorum.as_ref()));
    Ok(())
}

fn summary(cluster: &ClusterDescription, quorum: Option<&QuorumInfo>) -> String {
    let alive = cluster.brokers.iter().filter(|b| !b.fenced).count();
    let mut out = format!(
        "Cluster {}: {} broker(s), {alive} alive\n",
        cluster.cluster_id,
        cluster.brokers.len()
    );
    let mut brokers: Vec<_> = cluster.brokers.iter().collect();
    brokers.sort_by_key(|b| b.id);
    let rows: Vec<Vec<String>> = brokers
        .iter()
        .map(|b| {
            vec![
                b.id.to_string(),
                format!("{}:{}", b.host, b.port),
                b.rack.clone().unwrap_or_else(|| "-".into()),
                if b.fenced { "fenced" } else { "alive" }.to_string(),
            ]
        })
        .collect();
    out.push_str(&indent(&pretty_table(
        &["BROKER", "ADDRESS", "RACK", "STATUS"],
        &rows,
    )));
    let Some(q) = quorum else {
        out.push_str("Metadata quorum: none (a single node, not a KRaft cluster member)\n");
        return out;
    };
    out.push_str(&format!(
        "Active controller: {} (the metadata quorum's leader), epoch {}, high watermark {}\n",
        q.leader_id, q.leader_epoch, q.high_watermark
    ));
    let leader_end = q
        .voters
        .iter()
        .find(|v| v.id == q.leader_id)
        .map_or(-1, |v| v.log_end_offset);
    let row = |r: &QuorumReplica, role: &str| {
        let lag = match r.log_end_offset {
            e if e < 0 || leader_end < 0 => "unknown".to_string(),
            e => (leader_end - e).to_string(),
        };
        vec![
            r.id.to_string(),
            role.to_string(),
            r.log_end_offset.to_string(),
            lag,
        ]
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    for v in &q.voters {
        let role = if v.id == q.leader_id {
            "leader"
        } else {
            "follower"
        };
        rows.push(row(v, role));
    }
    rows.extend(q.observers.iter().map(|o| row(o, "observer")));
    out.push_str(&indent(&pretty_table(
        &["NODE", "QUORUM-ROLE", "LOG-END-OFFSET", "LAG"],
        &rows,
    )));
    out.push_str(&format!(
        "Admin requests go to broker {} (a live broker; it forwards them to the active controller)\n",
        cluster.controller_id
    ));
    out
}

fn indent(table: &str) -> String {
    table
        .lines()
        .map(|l| format!("  {}\n", l.trim_end()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_net::client::cluster::ClusterBroker;
    use uuid::Uuid;

    #[test]
    fn summary_names_brokers_and_the_quorum() {
        let broker = |id, fenced| ClusterBroker {
            id,
            host: "127.0.0.1".into(),
            port: 9092,
            rack: None,
            fenced,
        };
        let cluster = ClusterDescription {
            cluster_id: "c1".into(),
            controller_id: 1,
            brokers: vec![broker(2, true), broker(1, false)],
        };
        let replica = |id, log_end_offset| QuorumReplica {
            id,
            directory_id: Uuid::nil(),
            log_end_offset,
            last_fetch_timestamp: -1,
            last_caught_up_timestamp: -1,
        };
        let quorum = QuorumInfo {
            leader_id: 1,
            leader_epoch: 3,
            high_watermark: 10,
            voters: vec![replica(1, 10), replica(2, 7)],
            observers: vec![],
            nodes: vec![],
        };
        let text = summary(&cluster, Some(&quorum));
        assert!(
            text.starts_with("Cluster c1: 2 broker(s), 1 alive\n"),
            "{text}"
        );
        assert!(
            text.contains("  1     \t127.0.0.1:9092\t-   \talive"),
            "{text}"
        );
        assert!(
            text.contains("  2     \t127.0.0.1:9092\t-   \tfenced"),
            "{text}"
        );
        assert!(
            text.contains(
                "Active controller: 1 (the metadata quorum's leader), epoch 3, high watermark 10"
            ),
            "{text}"
        );
        assert!(
            text.contains("  2   \tfollower   \t7             \t3"),
            "{text}"
        );
        assert!(summary(&cluster, None).contains("Metadata quorum: none"));
    }
}
