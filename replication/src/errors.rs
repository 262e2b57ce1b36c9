//! The Kafka error codes the controller answers with (Kafka's `Errors` numbering; the broker
//! passes them on to its clients).

pub const UNKNOWN_SERVER_ERROR: i16 = -1;
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub const LEADER_NOT_AVAILABLE: i16 = 5;
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
pub const REQUEST_TIMED_OUT: i16 = 7;
pub const TOPIC_ALREADY_EXISTS: i16 = 36;
pub const INVALID_PARTITIONS: i16 = 37;
pub const INVALID_REPLICATION_FACTOR: i16 = 38;
pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
pub const INVALID_CONFIG: i16 = 40;
pub const NOT_CONTROLLER: i16 = 41;
pub const INVALID_REQUEST: i16 = 42;
pub const FENCED_LEADER_EPOCH: i16 = 74;
pub const PREFERRED_LEADER_NOT_AVAILABLE: i16 = 80;
pub const ELIGIBLE_LEADERS_NOT_AVAILABLE: i16 = 83;
pub const ELECTION_NOT_NEEDED: i16 = 84;
pub const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;
pub const STALE_BROKER_EPOCH: i16 = 77;
pub const BROKER_ID_NOT_REGISTERED: i16 = 102;
pub const INCONSISTENT_CLUSTER_ID: i16 = 104;
pub const INELIGIBLE_REPLICA: i16 = 107;
pub const INVALID_UPDATE_VERSION: i16 = 108;
pub const INVALID_VOTER_KEY: i16 = 125;
pub const DUPLICATE_VOTER: i16 = 126;
pub const VOTER_NOT_FOUND: i16 = 127;
