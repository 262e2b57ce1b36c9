//! Kafka's `__consumer_offsets` record schemas, encoded and decoded by hand (kafka-protocol
//! 0.18 does not generate them).
//!
//! Keys (big-endian, non-flexible):
//! - `OffsetCommitKey` v1: `i16 version=1, string group, string topic, i32 partition`
//!   (v0 reads the same).
//! - `GroupMetadataKey` v2: `i16 version=2, string group`.
//!
//! Values: `OffsetCommitValue` v3 (`i64 offset, i32 leader_epoch, string metadata,
//! i64 commit_timestamp`; v0–v2 are read too) and `GroupMetadataValue` v3 (`string
//! protocol_type, i32 generation, nullable string protocol, nullable string leader,
//! i64 current_state_timestamp, [member_id, nullable instance_id, client_id, client_host,
//! i32 rebalance_timeout, i32 session_timeout, bytes subscription, bytes assignment]`).
//! A null value is a tombstone: the key was deleted.

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub const OFFSET_KEY_VERSION: i16 = 1;
pub const GROUP_KEY_VERSION: i16 = 2;
pub const OFFSET_VALUE_VERSION: i16 = 3;
pub const GROUP_VALUE_VERSION: i16 = 3;
/// Members one stored group may list (a decoded count beyond it is corrupt).
pub const STORED_MEMBERS_MAX: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StoredKey {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
    },
}

impl StoredKey {
    pub fn group(&self) -> &str {
        match self {
            StoredKey::Offset { group, .. } | StoredKey::Group { group } => group,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGroup {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub state_timestamp: i64,
    pub members: Vec<StoredMember>,
}

fn put_str(out: &mut BytesMut, s: &str) {
    out.put_i16(s.len() as i16);
    out.put_slice(s.as_bytes());
}

fn put_nullable_str(out: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => out.put_i16(-1),
    }
}

fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    out.put_i32(b.len() as i32);
    out.put_slice(b);
}

/// Tombstones (key, no value) for `group`'s offsets of `partitions`, then for the group's
/// metadata too when `group_too`.
pub fn tombstones<'a>(
    group: &str,
    partitions: impl Iterator<Item = &'a (String, i32)>,
    group_too: bool,
) -> Vec<(Bytes, Option<Bytes>)> {
    let mut records: Vec<(Bytes, Option<Bytes>)> = partitions
        .map(|(topic, partition)| {
            let key = StoredKey::Offset {
                group: group.to_string(),
                topic: topic.clone(),
                partition: *partition,
            };
            (encode_key(&key), None)
        })
        .collect();
    if group_too {
        let key = StoredKey::Group {
            group: group.to_string(),
        };
        records.push((encode_key(&key), None));
    }
    records
}

pub fn encode_key(key: &StoredKey) -> Bytes {
    let mut out = BytesMut::new();
    match key {
        StoredKey::Offset {
            group,
            topic,
            partition,
        } => {
            out.put_i16(OFFSET_KEY_VERSION);
            put_str(&mut out, group);
            put_str(&mut out, topic);
            out.put_i32(*partition);
        }
        StoredKey::Group { group } => {
            out.put_i16(GROUP_KEY_VERSION);
            put_str(&mut out, group);
        }
    }
    out.freeze()
}

pub fn encode_offset(v: &StoredOffset) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(OFFSET_VALUE_VERSION);
    out.put_i64(v.offset);
    out.put_i32(v.leader_epoch);
    put_str(&mut out, &v.metadata);
    out.put_i64(v.commit_timestamp);
    out.freeze()
}

pub fn encode_group(g: &StoredGroup) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(GROUP_VALUE_VERSION);
    put_str(&mut out, &g.protocol_type);
    out.put_i32(g.generation);
    put_nullable_str(&mut out, g.protocol.as_deref());
    put_nullable_str(&mut out, g.leader.as_deref());
    out.put_i64(g.state_timestamp);
    out.put_i32(g.members.len() as i32);
    for m in &g.members {
        put_str(&mut out, &m.member_id);
        put_nullable_str(&mut out, m.instance_id.as_deref());
        put_str(&mut out, &m.client_id);
        put_str(&mut out, &m.client_host);
        out.put_i32(m.rebalance_timeout_ms);
        out.put_i32(m.session_timeout_ms);
        put_bytes(&mut out, &m.subscription);
        put_bytes(&mut out, &m.assignment);
    }
    out.freeze()
}

/// A bounds-checked reader over one key or value.
struct Reader(Bytes);

type Decoded<T> = Result<T, String>;

impl Reader {
    fn need(&self, n: usize) -> Decoded<()> {
        if self.0.remaining() < n {
            return Err(format!(
                "truncated: need {n} bytes, {} left",
                self.0.remaining()
            ));
        }
        Ok(())
    }
    fn i16(&mut self) -> Decoded<i16> {
        self.need(2)?;
        Ok(self.0.get_i16())
    }
    fn i32(&mut self) -> Decoded<i32> {
        self.need(4)?;
        Ok(self.0.get_i32())
    }
    fn i64(&mut self) -> Decoded<i64> {
        self.need(8)?;
        Ok(self.0.get_i64())
    }
    fn nullable_str(&mut self) -> Decoded<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        self.need(len as usize)?;
        let raw = self.0.split_to(len as usize);
        String::from_utf8(raw.to_vec())
            .map(Some)
            .map_err(|_| "string is not UTF-8".to_string())
    }
    fn str(&mut self) -> Decoded<String> {
        self.nullable_str()?
            .ok_or_else(|| "null string".to_string())
    }
    fn bytes(&mut self) -> Decoded<Bytes> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(Bytes::new());
        }
        self.need(len as usize)?;
        Ok(self.0.split_to(len as usize))
    }
}

pub fn decode_key(raw: Bytes) -> Decoded<StoredKey> {
    let mut r = Reader(raw);
    match r.i16()? {
        0 | 1 => Ok(StoredKey::Offset {
            group: r.str()?,
            topic: r.str()?,
            partition: r.i32()?,
        }),
        2 => Ok(StoredKey::Group { group: r.str()? }),
        v => Err(format!("unknown key version {v}")),
    }
}

pub fn decode_offset(raw: Bytes) -> Decoded<StoredOffset> {
    let mut r = Reader(raw);
    let version = r.i16()?;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.str()?;
    let commit_timestamp = r.i64()?;
    if !(0..=3).contains(&version) {
        return Err(format!("unknown offset value version {version}"));
    }
    Ok(StoredOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
    })
}

pub fn decode_group(raw: Bytes) -> Decoded<StoredGroup> {
    let mut r = Reader(raw);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err(format!("unknown group value version {version}"));
    }
    let protocol_type = r.str()?;
    let generation = r.i32()?;
    let protocol = r.nullable_str()?;
    let leader = r.nullable_str()?;
    let state_timestamp = if version >= 2 { r.i64()? } else { -1 };
    let count = r.i32()?;
    if count < 0 || count as usize > STORED_MEMBERS_MAX {
        return Err(format!("member count {count}"));
    }
    let mut members = Vec::new();
    for _ in 0..count {
        members.push(decode_member(&mut r, version)?);
    }
    Ok(StoredGroup {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp,
        members,
    })
}

fn decode_member(r: &mut Reader, version: i16) -> Decoded<StoredMember> {
    let member_id = r.str()?;
    let instance_id = if version >= 3 {
        r.nullable_str()?
    } else {
        None
    };
    let client_id = r.str()?;
    let client_host = r.str()?;
    let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { -1 };
    let session_timeout_ms = r.i32()?;
    Ok(StoredMember {
        member_id,
        instance_id,
        client_id,
        client_host,
        rebalance_timeout_ms: if version >= 1 {
            rebalance_timeout_ms
        } else {
            session_timeout_ms
        },
        session_timeout_ms,
        subscription: r.bytes()?,
        assignment: r.bytes()?,
    })
}

/// Kafka's `Utils.abs(groupId.hashCode) % partitions`: Java's String.hashCode over UTF-16.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in group.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(unit as i32);
    }
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip() {
        let keys = [
            StoredKey::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 7,
            },
            StoredKey::Group { group: "g".into() },
        ];
        for k in keys {
            assert_eq!(decode_key(encode_key(&k)).unwrap(), k);
        }
        let o = StoredOffset {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp: 99,
        };
        assert_eq!(decode_offset(encode_offset(&o)).unwrap(), o);
        let g = StoredGroup {
            protocol_type: "consumer".into(),
            generation: 5,
            protocol: Some("range".into()),
            leader: Some("a".into()),
            state_timestamp: 1,
            members: vec![StoredMember {
                member_id: "a".into(),
                instance_id: Some("i".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300,
                session_timeout_ms: 100,
                subscription: Bytes::from_static(b"s"),
                assignment: Bytes::from_static(b"x"),
            }],
        };
        assert_eq!(decode_group(encode_group(&g)).unwrap(), g);
    }

    #[test]
    fn partition_matches_java_hash_code() {
        // "group".hashCode() == 98629247 in Java; 98629247 % 50 == 47.
        assert_eq!(partition_for("group", 50), 47);
        assert_eq!(partition_for("", 50), 0);
        assert!(decode_key(Bytes::from_static(&[0, 1, 0])).is_err());
    }
}
