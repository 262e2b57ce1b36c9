//! Kafka's consumer protocol: the bytes a `consumer` group carries in JoinGroup metadata
//! (`ConsumerProtocolSubscription`) and in SyncGroup / DescribeGroups assignments
//! (`ConsumerProtocolAssignment`), and the range assignor.
//!
//! Layouts (big-endian, strings i16-length-prefixed, bytes i32-length-prefixed, -1 = null):
//! - Subscription v0..3: version i16, topics [string], user_data bytes; v1+ owned
//!   partitions [(topic string, partitions [i32])]; v2+ generation_id i32; v3+ rack_id
//!   nullable string. We write v0 and read the topics of any version.
//! - Assignment v0..3: version i16, assigned [(topic string, partitions [i32])], user_data
//!   bytes. The same fields in every version.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::client::error::{ClientError, Result};

/// The protocol type of groups of Kafka consumers.
pub const PROTOCOL_TYPE: &str = "consumer";
/// The name of the range assignor (Kafka's `RangeAssignor`, librdkafka's `range`).
pub const RANGE_ASSIGNOR: &str = "range";
/// Most topics or partitions one subscription or assignment may list: peer input is
/// bounded before anything is reserved.
pub const ENTRIES_MAX: usize = 1 << 20;
/// The newest consumer protocol version we read.
const VERSION_MAX: i16 = 3;

/// Topic → partitions, sorted: what one member is assigned.
pub type Assignment = BTreeMap<String, Vec<i32>>;

/// `ConsumerProtocolSubscription` v0 with `topics` and no user data.
pub fn encode_subscription(topics: &[&str]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(0);
    put_len(&mut out, topics.len());
    for topic in topics {
        put_string(&mut out, topic);
    }
    out.put_i32(-1);
    out.freeze()
}

/// The topics of a `ConsumerProtocolSubscription` of any version 0..=3.
pub fn decode_subscription(mut bytes: &[u8]) -> Result<Vec<String>> {
    version(&mut bytes, "subscription")?;
    let count = array_len(&mut bytes, "subscription topics")?;
    let mut topics = Vec::with_capacity(count.min(bytes.len() / 2));
    for _ in 0..count {
        topics.push(string(&mut bytes, "subscription topic")?);
    }
    Ok(topics)
}

/// `ConsumerProtocolAssignment` v0 with no user data.
pub fn encode_assignment(assignment: &Assignment) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(0);
    put_len(&mut out, assignment.len());
    for (topic, partitions) in assignment {
        put_string(&mut out, topic);
        put_len(&mut out, partitions.len());
        for partition in partitions {
            out.put_i32(*partition);
        }
    }
    out.put_i32(-1);
    out.freeze()
}

/// A `ConsumerProtocolAssignment` of any version 0..=3; empty bytes (a member that has
/// not synced yet) are an empty assignment.
pub fn decode_assignment(mut bytes: &[u8]) -> Result<Assignment> {
    let mut assignment = Assignment::new();
    if bytes.is_empty() {
        return Ok(assignment);
    }
    version(&mut bytes, "assignment")?;
    let topics = array_len(&mut bytes, "assignment topics")?;
    for _ in 0..topics {
        let topic = string(&mut bytes, "assignment topic")?;
        let count = array_len(&mut bytes, "assignment partitions")?;
        if bytes.len() < count * 4 {
            return Err(malformed("assignment partitions"));
        }
        let mut partitions: Vec<i32> = (0..count).map(|_| bytes.get_i32()).collect();
        partitions.sort_unstable();
        assignment.entry(topic).or_default().extend(partitions);
    }
    Ok(assignment)
}

/// The range assignor: per topic, members subscribed to it (by member id order) take
/// consecutive ranges; the first `partitions % members` take one more.
///
/// `members` is `(member_id, subscribed topics)`; `partition_counts` the partition count
/// of each topic (a topic missing there is assigned to no one).
pub fn assign_range(
    members: &[(String, Vec<String>)],
    partition_counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, Assignment> {
    let mut result: BTreeMap<String, Assignment> = members
        .iter()
        .map(|(id, _)| (id.clone(), Assignment::new()))
        .collect();
    for (topic, &count) in partition_counts {
        let mut subscribed: Vec<&str> = members
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(id, _)| id.as_str())
            .collect();
        subscribed.sort_unstable();
        if subscribed.is_empty() || count <= 0 {
            continue;
        }
        let n = subscribed.len() as i32;
        let (each, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, member) in subscribed.iter().enumerate() {
            let take = each + i32::from((i as i32) < extra);
            let partitions: Vec<i32> = (next..next + take).collect();
            next += take;
            if !partitions.is_empty() {
                let assignment = result.get_mut(*member).expect("every member has an entry");
                assignment.insert(topic.clone(), partitions);
            }
        }
        assert_eq!(
            next, count,
            "the range assignor assigns every partition once"
        );
    }
    result
}

fn malformed(what: &str) -> ClientError {
    ClientError::Metadata(format!("malformed consumer protocol {what}"))
}

fn version(bytes: &mut &[u8], what: &str) -> Result<i16> {
    if bytes.len() < 2 {
        return Err(malformed(what));
    }
    let version = bytes.get_i16();
    if !(0..=VERSION_MAX).contains(&version) {
        return Err(ClientError::Metadata(format!(
            "consumer protocol {what} version {version} (this client reads 0..={VERSION_MAX})"
        )));
    }
    Ok(version)
}

fn array_len(bytes: &mut &[u8], what: &str) -> Result<usize> {
    if bytes.len() < 4 {
        return Err(malformed(what));
    }
    let len = bytes.get_i32();
    match usize::try_from(len) {
        Ok(len) if len <= ENTRIES_MAX => Ok(len),
        _ if len == -1 => Ok(0),
        _ => Err(malformed(what)),
    }
}

fn string(bytes: &mut &[u8], what: &str) -> Result<String> {
    if bytes.len() < 2 {
        return Err(malformed(what));
    }
    let len = usize::try_from(bytes.get_i16()).map_err(|_| malformed(what))?;
    if bytes.len() < len {
        return Err(malformed(what));
    }
    let text = std::str::from_utf8(&bytes[..len]).map_err(|_| malformed(what))?;
    let text = text.to_string();
    bytes.advance(len);
    Ok(text)
}

fn put_len(out: &mut BytesMut, len: usize) {
    out.put_i32(i32::try_from(len).expect("consumer protocol array fits i32"));
}

fn put_string(out: &mut BytesMut, text: &str) {
    out.put_i16(i16::try_from(text.len()).expect("topic name fits i16"));
    out.put_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_roundtrips() {
        let mut assignment = Assignment::new();
        assignment.insert("a".into(), vec![0, 2]);
        assignment.insert("b".into(), vec![1]);
        let bytes = encode_assignment(&assignment);
        assert_eq!(decode_assignment(&bytes).unwrap(), assignment);
        assert!(decode_assignment(&[]).unwrap().is_empty());
        assert!(decode_assignment(&bytes[..bytes.len() - 6]).is_err());
    }

    #[test]
    fn assignment_v3_from_java_reads() {
        // version 3, one topic "t" with partitions [4, 1], user data null.
        let bytes = [
            0, 3, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 1, 255, 255, 255, 255,
        ];
        let assignment = decode_assignment(&bytes).unwrap();
        assert_eq!(assignment["t"], vec![1, 4]);
    }

    #[test]
    fn subscription_roundtrips() {
        let bytes = encode_subscription(&["x", "yz"]);
        assert_eq!(decode_subscription(&bytes).unwrap(), ["x", "yz"]);
    }

    fn check(
        members: &[(&str, &[&str])],
        counts: &[(&str, i32)],
        expected: &[(&str, &str, &[i32])],
    ) {
        let members: Vec<(String, Vec<String>)> = members
            .iter()
            .map(|(id, topics)| {
                (
                    id.to_string(),
                    topics.iter().map(|t| t.to_string()).collect(),
                )
            })
            .collect();
        let counts = counts.iter().map(|(t, n)| (t.to_string(), *n)).collect();
        let result = assign_range(&members, &counts);
        for (member, topic, partitions) in expected {
            let got = result[*member].get(*topic).cloned().unwrap_or_default();
            assert_eq!(got, *partitions, "{member} {topic}");
        }
    }

    #[test]
    fn range_assignor_like_kafka() {
        check(
            &[("m1", &["t"]), ("m2", &["t"])],
            &[("t", 3)],
            &[("m1", "t", &[0, 1]), ("m2", "t", &[2])],
        );
        check(
            &[("b", &["t"]), ("a", &["t"]), ("c", &["t"])],
            &[("t", 6)],
            &[
                ("a", "t", &[0, 1]),
                ("b", "t", &[2, 3]),
                ("c", "t", &[4, 5]),
            ],
        );
        check(
            &[("m1", &["t"]), ("m2", &["u"])],
            &[("t", 2), ("u", 1)],
            &[("m1", "t", &[0, 1]), ("m2", "u", &[0]), ("m1", "u", &[])],
        );
        check(
            &[("m1", &["t"]), ("m2", &["t"]), ("m3", &["t"])],
            &[("t", 1)],
            &[("m1", "t", &[0]), ("m2", "t", &[]), ("m3", "t", &[])],
        );
    }
}
