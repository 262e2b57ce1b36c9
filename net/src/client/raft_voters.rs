//! Kafka's AddRaftVoter (API 80) and RemoveRaftVoter (API 81), as `kafka-metadata-quorum
//! add-controller` / `remove-controller` send them: to a broker, which forwards them to the
//! metadata quorum's leader.

use kafka_protocol::messages::add_raft_voter_request::Listener;
use kafka_protocol::messages::{AddRaftVoterRequest, RemoveRaftVoterRequest};
use kafka_protocol::protocol::{Request, StrBytes};
use uuid::Uuid;

use crate::client::error::{ClientError, Result};
use crate::client::Client;

/// The controller to add: its node id, metadata directory id and controller listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftVoter {
    pub voter_id: i32,
    pub directory_id: Uuid,
    /// (listener name, host, port).
    pub listener: (String, String, u16),
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn add_raft_voter(
    cluster_id: Option<&str>,
    voter: &RaftVoter,
    timeout_ms: i32,
) -> AddRaftVoterRequest {
    let (name, host, port) = &voter.listener;
    let listener = Listener::default()
        .with_name(str_bytes(name))
        .with_host(str_bytes(host))
        .with_port(*port);
    AddRaftVoterRequest::default()
        .with_cluster_id(cluster_id.map(str_bytes))
        .with_timeout_ms(timeout_ms)
        .with_voter_id(voter.voter_id)
        .with_voter_directory_id(voter.directory_id)
        .with_listeners(vec![listener])
}

fn remove_raft_voter(cluster_id: Option<&str>, voter_id: i32, dir: Uuid) -> RemoveRaftVoterRequest {
    RemoveRaftVoterRequest::default()
        .with_cluster_id(cluster_id.map(str_bytes))
        .with_voter_id(voter_id)
        .with_voter_directory_id(dir)
}

impl Client {
    /// Adds `voter` to the metadata quorum: it is a voter once it has caught up (the
    /// broker answers within `timeout_ms`).
    pub async fn add_raft_voter(
        &mut self,
        cluster_id: Option<&str>,
        voter: &RaftVoter,
        timeout_ms: i32,
    ) -> Result<()> {
        let request = add_raft_voter(cluster_id, voter, timeout_ms);
        let what = format!("AddRaftVoter of node {}", voter.voter_id);
        self.voter_change(&request, what, |r| (r.error_code, r.error_message))
            .await
    }

    /// Removes the voter `(voter_id, directory_id)` from the metadata quorum.
    pub async fn remove_raft_voter(
        &mut self,
        cluster_id: Option<&str>,
        voter_id: i32,
        directory_id: Uuid,
    ) -> Result<()> {
        let request = remove_raft_voter(cluster_id, voter_id, directory_id);
        let what = format!("RemoveRaftVoter of node {voter_id}");
        self.voter_change(&request, what, |r| (r.error_code, r.error_message))
            .await
    }

    /// Sends `request` to the bootstrap broker; its error code and message as a result.
    async fn voter_change<R: Request>(
        &mut self,
        request: &R,
        what: String,
        outcome: impl FnOnce(R::Response) -> (i16, Option<StrBytes>),
    ) -> Result<()> {
        let connection = self.bootstrap();
        let address = connection.address().to_string();
        let (code, message) = outcome(connection.call(request).await?);
        ClientError::check_with_message(code, message.map(|m| m.to_string()), || {
            format!("{what} to {address}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiKey;
    use kafka_protocol::protocol::{Decodable, Encodable};

    #[test]
    fn requests_carry_the_voter_key_and_round_trip() {
        let dir = Uuid::new_v4();
        let voter = RaftVoter {
            voter_id: 2,
            directory_id: dir,
            listener: ("CONTROLLER".into(), "127.0.0.1".into(), 9193),
        };
        let add = add_raft_voter(Some("cid"), &voter, 30_000);
        for v in crate::client::limits::versions_under_test(ApiKey::AddRaftVoter) {
            let mut buf = bytes::BytesMut::new();
            add.encode(&mut buf, v).unwrap();
            let back = AddRaftVoterRequest::decode(&mut buf.freeze(), v).unwrap();
            assert_eq!(back, add);
        }
        assert_eq!((add.voter_id, add.voter_directory_id), (2, dir));
        assert_eq!(add.listeners[0].port, 9193);
        let remove = remove_raft_voter(None, 2, dir);
        for v in crate::client::limits::versions_under_test(ApiKey::RemoveRaftVoter) {
            let mut buf = bytes::BytesMut::new();
            remove.encode(&mut buf, v).unwrap();
            let back = RemoveRaftVoterRequest::decode(&mut buf.freeze(), v).unwrap();
            assert_eq!(back, remove);
        }
    }
}
