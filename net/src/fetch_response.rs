//! Fetch response v4–v18, framed by hand so record data can stay in segment files.
//!
//! A fetch answer is a list of chunks: bytes this module encodes (frame size, response
//! header, every field of Kafka's FetchResponse schema) and, where each partition's
//! `records` go, opaque record sources (`R`: file ranges on the broker, plain bytes in
//! tests). The caller writes the chunks in order; record bytes never pass through here.
//!
//! Layout (Kafka 4.1 schema): `throttle_time_ms i32, error_code i16 (v7+), session_id i32
//! (v7+), responses [topic string (<v13) | topic_id uuid (v13+), partitions [partition_index
//! i32, error_code i16, high_watermark i64, last_stable_offset i64, log_start_offset i64
//! (v5+), aborted_transactions nullable [..] (always null here), preferred_read_replica i32
//! (v11+), records nullable bytes]]`. From v12 the message is flexible: compact arrays and
//! strings (unsigned varint length + 1) and an empty tagged-field section after every struct;
//! the tagged fields we never set (diverging_epoch, current_leader, snapshot_id,
//! node_endpoints) are omitted, which means "default". v17 and v18 change only the request
//! (a follower's directory id and high watermark), so their answers are v16's layout.

use bytes::{BufMut, Bytes, BytesMut};

/// The first flexible (compact encoding, tagged fields) version.
const FLEXIBLE_VERSION_MIN: i16 = 12;
/// The first version that names topics by id.
const TOPIC_ID_VERSION_MIN: i16 = 13;
pub const FETCH_VERSION_MIN: i16 = 4;
pub const FETCH_VERSION_MAX: i16 = 18;

/// One partition of the answer. `records` is `None` for a partition without data (encoded
/// as empty records, as Kafka does).
#[derive(Debug, Clone)]
pub struct FetchPartitionOut<R> {
    pub partition_index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    pub records: Option<(R, u32)>,
    /// KIP-320 (v12+, tagged field 0): the asking follower's log diverges from the leader's
    /// at the end of this (epoch, end offset); `None` is the default (not sent).
    pub diverging_epoch: Option<(i32, i64)>,
    /// KIP-392 (v11+): the replica the consumer should fetch from instead (-1: none).
    pub preferred_read_replica: i32,
}

#[derive(Debug, Clone)]
pub struct FetchTopicOut<R> {
    pub name: String,
    pub topic_id: uuid::Uuid,
    pub partitions: Vec<FetchPartitionOut<R>>,
}

/// A piece of the encoded response, in write order.
#[derive(Debug)]
pub enum Chunk<R> {
    Bytes(Bytes),
    Records(R, u32),
}

/// Encodes the frame (size prefix included) as chunks.
pub fn encode_fetch_response<R>(
    correlation_id: i32,
    version: i16,
    topics: Vec<FetchTopicOut<R>>,
) -> Vec<Chunk<R>> {
    assert!((FETCH_VERSION_MIN..=FETCH_VERSION_MAX).contains(&version));
    let flexible = version >= FLEXIBLE_VERSION_MIN;
    let mut out = Encoder {
        version,
        flexible,
        chunks: Vec::new(),
        buf: BytesMut::new(),
    };
    out.buf.put_i32(0); // frame size, patched below
    out.buf.put_i32(correlation_id);
    out.tags();
    out.buf.put_i32(0); // throttle_time_ms
    if version >= 7 {
        out.buf.put_i16(0); // error_code
        out.buf.put_i32(0); // session_id: no fetch sessions
    }
    out.array_len(topics.len());
    for topic in topics {
        out.topic(topic);
    }
    out.tags();
    out.finish()
}

struct Encoder<R> {
    version: i16,
    flexible: bool,
    chunks: Vec<Chunk<R>>,
    buf: BytesMut,
}

impl<R> Encoder<R> {
    fn topic(&mut self, topic: FetchTopicOut<R>) {
        if self.version >= TOPIC_ID_VERSION_MIN {
            self.buf.put_slice(topic.topic_id.as_bytes());
        } else {
            self.string(&topic.name);
        }
        self.array_len(topic.partitions.len());
        for p in topic.partitions {
            self.partition(p);
        }
        self.tags();
    }

    fn partition(&mut self, p: FetchPartitionOut<R>) {
        self.buf.put_i32(p.partition_index);
        self.buf.put_i16(p.error_code);
        self.buf.put_i64(p.high_watermark);
        self.buf.put_i64(p.last_stable_offset);
        if self.version >= 5 {
            self.buf.put_i64(p.log_start_offset);
        }
        // aborted_transactions: null (no transactions).
        if self.flexible {
            self.uvarint(0);
        } else {
            self.buf.put_i32(-1);
        }
        if self.version >= 11 {
            self.buf.put_i32(p.preferred_read_replica);
        }
        match p.records {
            Some((source, len)) => {
                self.bytes_len(len as usize);
                let head = self.buf.split().freeze();
                self.chunks.push(Chunk::Bytes(head));
                self.chunks.push(Chunk::Records(source, len));
            }
            None => self.bytes_len(0),
        }
        match p.diverging_epoch.filter(|_| self.flexible) {
            // One tagged field: tag 0, size, then EpochEndOffset (epoch i32, end_offset i64,
            // its own empty tag section).
            Some((epoch, end_offset)) => {
                self.uvarint(1);
                self.uvarint(0);
                self.uvarint(4 + 8 + 1);
                self.buf.put_i32(epoch);
                self.buf.put_i64(end_offset);
                self.uvarint(0);
            }
            None => self.tags(),
        }
    }

    fn string(&mut self, s: &str) {
        if self.flexible {
            self.uvarint(s.len() as u64 + 1);
        } else {
            self.buf.put_i16(s.len() as i16);
        }
        self.buf.put_slice(s.as_bytes());
    }

    fn array_len(&mut self, n: usize) {
        if self.flexible {
            self.uvarint(n as u64 + 1);
        } else {
            self.buf.put_i32(n as i32);
        }
    }

    fn bytes_len(&mut self, n: usize) {
        if self.flexible {
            self.uvarint(n as u64 + 1);
        } else {
            self.buf.put_i32(n as i32);
        }
    }

    /// An empty tagged-field section (flexible versions only).
    fn tags(&mut self) {
        if self.flexible {
            self.uvarint(0);
        }
    }

    fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
    }

    /// Closes the last byte chunk and patches the frame size (everything after the prefix).
    fn finish(mut self) -> Vec<Chunk<R>> {
        let tail = self.buf.split().freeze();
        self.chunks.push(Chunk::Bytes(tail));
        let total: usize = self
            .chunks
            .iter()
            .map(|c| match c {
                Chunk::Bytes(b) => b.len(),
                Chunk::Records(_, len) => *len as usize,
            })
            .sum();
        let size = (total - 4) as i32;
        let Some(Chunk::Bytes(first)) = self.chunks.first_mut() else {
            unreachable!("the first chunk holds the frame size")
        };
        let mut patched = BytesMut::from(&first[..]);
        patched[..4].copy_from_slice(&size.to_be_bytes());
        *first = patched.freeze();
        self.chunks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseKind, TopicName};
    use kafka_protocol::protocol::StrBytes;

    /// Our framing must equal kafka-protocol's encoding of the same response.
    fn check(version: i16, topics: Vec<FetchTopicOut<Bytes>>) {
        let ours: Vec<u8> = encode_fetch_response(7, version, topics.clone())
            .into_iter()
            .flat_map(|c| match c {
                Chunk::Bytes(b) => b.to_vec(),
                Chunk::Records(r, len) => {
                    assert_eq!(r.len(), len as usize);
                    r.to_vec()
                }
            })
            .collect();
        let mut resp = FetchResponse::default();
        for t in topics {
            let mut rt = FetchableTopicResponse::default();
            if version >= TOPIC_ID_VERSION_MIN {
                rt.topic_id = t.topic_id;
            } else {
                rt.topic = TopicName(StrBytes::from_string(t.name));
            }
            for p in t.partitions {
                let mut d = PartitionData::default();
                d.partition_index = p.partition_index;
                d.error_code = p.error_code;
                d.high_watermark = p.high_watermark;
                d.last_stable_offset = p.last_stable_offset;
                if version >= 5 {
                    d.log_start_offset = p.log_start_offset;
                }
                d.aborted_transactions = None;
                if version >= 11 {
                    d.preferred_read_replica =
                        kafka_protocol::messages::BrokerId(p.preferred_read_replica);
                }
                if let Some((epoch, end_offset)) = p.diverging_epoch.filter(|_| version >= 12) {
                    d.diverging_epoch.epoch = epoch;
                    d.diverging_epoch.end_offset = end_offset;
                }
                d.records = Some(p.records.map(|(r, _)| r).unwrap_or_default());
                rt.partitions.push(d);
            }
            resp.responses.push(rt);
        }
        let mut theirs = BytesMut::new();
        crate::codec::encode_response(
            7,
            ApiKey::Fetch,
            version,
            &ResponseKind::Fetch(resp),
            &mut theirs,
        )
        .unwrap();
        assert_eq!(ours, theirs.to_vec(), "v{version}");
    }

    fn partition(index: i32, records: Option<&'static [u8]>) -> FetchPartitionOut<Bytes> {
        FetchPartitionOut {
            partition_index: index,
            error_code: if records.is_none() { 1 } else { 0 },
            high_watermark: 1000 + index as i64,
            last_stable_offset: 999,
            log_start_offset: 3,
            records: records.map(|r| (Bytes::from_static(r), r.len() as u32)),
            diverging_epoch: (index == 1).then_some((5, 1234)),
            preferred_read_replica: if index == 1 { 3 } else { -1 },
        }
    }

    #[test]
    fn matches_kafka_protocol_for_every_version() {
        let long = vec![b'r'; 300].leak();
        for version in FETCH_VERSION_MIN..=FETCH_VERSION_MAX {
            check(version, vec![]);
            check(
                version,
                vec![
                    FetchTopicOut {
                        name: "orders".into(),
                        topic_id: uuid::Uuid::from_u128(42),
                        partitions: vec![
                            partition(0, Some(b"abc")),
                            partition(1, None),
                            partition(2, Some(long)),
                        ],
                    },
                    FetchTopicOut {
                        name: "t".repeat(200),
                        topic_id: uuid::Uuid::from_u128(7),
                        partitions: vec![],
                    },
                ],
            );
        }
    }
}
