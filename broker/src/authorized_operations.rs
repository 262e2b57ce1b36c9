//! Authorized operations as Metadata and DescribeGroups report them: Kafka's `AclOperation`
//! codes as bits of an i32 (`Utils.to32BitField`). Sluice has no authorizer, so — as Kafka
//! without `authorizer.class.name` — every operation a resource type supports is allowed
//! (`AclEntry.supportedOperations`).

/// Kafka's schema default: the client did not ask for authorized operations.
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// Kafka's `AclOperation` codes (org.apache.kafka.common.acl.AclOperation).
pub mod acl_operation {
    pub const READ: u8 = 3;
    pub const WRITE: u8 = 4;
    pub const CREATE: u8 = 5;
    pub const DELETE: u8 = 6;
    pub const ALTER: u8 = 7;
    pub const DESCRIBE: u8 = 8;
    pub const CLUSTER_ACTION: u8 = 9;
    pub const DESCRIBE_CONFIGS: u8 = 10;
    pub const ALTER_CONFIGS: u8 = 11;
    pub const IDEMPOTENT_WRITE: u8 = 12;
}

use acl_operation::*;

/// The operations a topic supports.
pub const TOPIC_OPERATIONS: i32 = bits(&[
    READ,
    WRITE,
    CREATE,
    DESCRIBE,
    DELETE,
    ALTER,
    DESCRIBE_CONFIGS,
    ALTER_CONFIGS,
]);
/// The operations the cluster supports.
pub const CLUSTER_OPERATIONS: i32 = bits(&[
    CREATE,
    CLUSTER_ACTION,
    DESCRIBE_CONFIGS,
    ALTER_CONFIGS,
    IDEMPOTENT_WRITE,
    ALTER,
    DESCRIBE,
]);
/// The operations a consumer group supports.
pub const GROUP_OPERATIONS: i32 = bits(&[READ, DESCRIBE, DELETE, DESCRIBE_CONFIGS, ALTER_CONFIGS]);

/// `Utils.to32BitField`: bit `code` set for every operation.
const fn bits(codes: &[u8]) -> i32 {
    let mut value = 0i32;
    let mut i = 0;
    while i < codes.len() {
        assert!(codes[i] < 32, "an AclOperation code fits a 32-bit field");
        value |= 1 << codes[i];
        i += 1;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitfields_are_kafkas() {
        // What Kafka 4.1 without an authorizer returns (its AuthorizedOperations for
        // TOPIC, CLUSTER and GROUP resources).
        assert_eq!(TOPIC_OPERATIONS, 0b1101_1111_1000);
        assert_eq!(CLUSTER_OPERATIONS, 0b1_1111_1010_0000);
        assert_eq!(GROUP_OPERATIONS, 0b1101_0100_1000);
    }
}
