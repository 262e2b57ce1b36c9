//! Strong id newtypes: an offset is not a file position, an epoch is not a count.

use std::fmt;

/// A Kafka offset: the position of a record in a partition's log (not a byte position).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Offset(pub i64);

/// A partition leader epoch, as stored in every batch's `partitionLeaderEpoch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaderEpoch(pub i32);

/// A Kafka topic id (a UUID). Displayed the way Kafka prints it: the 16 bytes in
/// URL-safe base64 without padding (22 characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicId(pub uuid::Uuid);

const BASE64URL_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// 16 bytes in base64 without padding.
const TOPIC_ID_BASE64_CHARS: usize = 22;

/// Tries at drawing a random UUID whose Kafka form does not start with `-` (each fails
/// with probability 1/64).
const RANDOM_UUID_TRIES_MAX: usize = 64;

/// Kafka's `Uuid.toString()`: base64url, no padding.
pub fn kafka_uuid_string(id: &uuid::Uuid) -> String {
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(TOPIC_ID_BASE64_CHARS);
    for chunk in bytes.chunks(3) {
        let mut group = [0u8; 3];
        group[..chunk.len()].copy_from_slice(chunk);
        let bits = u32::from_be_bytes([0, group[0], group[1], group[2]]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let index = (bits >> (18 - 6 * i)) & 0x3f;
            out.push(BASE64URL_ALPHABET[index as usize] as char);
        }
    }
    assert_eq!(out.len(), TOPIC_ID_BASE64_CHARS);
    out
}

/// Parses Kafka's `Uuid.toString()` form; `None` if it is not 22 base64url characters
/// encoding 16 bytes.
pub fn parse_kafka_uuid(text: &str) -> Option<uuid::Uuid> {
    if text.len() != TOPIC_ID_BASE64_CHARS {
        return None;
    }
    let mut bits: u64 = 0;
    let mut bit_count = 0;
    let mut bytes = Vec::with_capacity(16);
    for c in text.bytes() {
        let value = BASE64URL_ALPHABET.iter().position(|&a| a == c)? as u64;
        bits = (bits << 6) | value;
        bit_count += 6;
        if bit_count >= 8 {
            bit_count -= 8;
            bytes.push((bits >> bit_count) as u8);
            bits &= (1 << bit_count) - 1;
        }
    }
    // 22 chars carry 132 bits: the last 4 must be zero.
    if bytes.len() != 16 || bits != 0 {
        return None;
    }
    uuid::Uuid::from_slice(&bytes).ok()
}

/// Kafka's `Uuid.randomUuid()`: a random (v4) UUID whose string form does not start with
/// `-` (so it cannot be mistaken for a command-line flag). A v4 UUID is never one of
/// Kafka's reserved ids (all zero, or zero but the last byte).
pub fn random_kafka_uuid() -> uuid::Uuid {
    for _ in 0..RANDOM_UUID_TRIES_MAX {
        let id = uuid::Uuid::new_v4();
        if !kafka_uuid_string(&id).starts_with('-') {
            return id;
        }
    }
    panic!("{RANDOM_UUID_TRIES_MAX} random UUIDs in a row started with '-': broken RNG");
}

impl TopicId {
    /// Kafka's `Uuid.toString()`: base64url, no padding.
    pub fn to_kafka_string(&self) -> String {
        kafka_uuid_string(&self.0)
    }

    /// Parses Kafka's `Uuid.toString()` form.
    pub fn from_kafka_string(text: &str) -> Option<TopicId> {
        parse_kafka_uuid(text).map(TopicId)
    }
}

/// Kafka's `directory.id` of a log dir (KIP-858): written by `sluice storage format` into
/// its `meta.properties`, fresh for every dir, so a wiped and re-formatted disk is a new
/// directory. Kafka names a quorum voter by node id plus the metadata log dir's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DirectoryId(pub uuid::Uuid);

impl DirectoryId {
    pub fn random() -> DirectoryId {
        DirectoryId(random_kafka_uuid())
    }

    pub fn to_kafka_string(&self) -> String {
        kafka_uuid_string(&self.0)
    }

    pub fn from_kafka_string(text: &str) -> Option<DirectoryId> {
        parse_kafka_uuid(text).map(DirectoryId)
    }
}

impl fmt::Display for DirectoryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_kafka_string())
    }
}

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_kafka_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_id_round_trips_kafka_form() {
        // Kafka prints Uuid(0x0123456789abcdef, 0xfedcba9876543210) as "ASNFZ4mrze_-3LqYdlQyEA".
        let id = TopicId(uuid::Uuid::from_u128(
            0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
        ));
        assert_eq!(id.to_kafka_string(), "ASNFZ4mrze_-3LqYdlQyEA");
        assert_eq!(
            TopicId::from_kafka_string("ASNFZ4mrze_-3LqYdlQyEA"),
            Some(id)
        );
        for _ in 0..100 {
            let id = TopicId(uuid::Uuid::new_v4());
            assert_eq!(TopicId::from_kafka_string(&id.to_kafka_string()), Some(id));
        }
        assert_eq!(TopicId::from_kafka_string("ASNFZ4mrze_-3LqYdlQyE"), None);
        assert_eq!(TopicId::from_kafka_string("ASNFZ4mrze_-3LqYdlQyE="), None);
        for _ in 0..100 {
            let id = random_kafka_uuid();
            assert!(!kafka_uuid_string(&id).starts_with('-'));
            assert_eq!(parse_kafka_uuid(&kafka_uuid_string(&id)), Some(id));
        }
    }
}
