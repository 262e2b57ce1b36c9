//! Request and response versions Kafka 4 removed (KIP-896) and `kafka-protocol` 0.18 no
//! longer decodes, served because old clients still send them (sarama's OffsetCommit v1):
//! OffsetCommit v0–v1, OffsetFetch v0, CreateTopics v0–v1, DeleteTopics v0,
//! DescribeConfigs v0, ListOffsets v0. None involves the old message formats (magic 0/1), so
//! Produce v0–v2 and Fetch v0–v3 stay unserved.
//!
//! Each old request is decoded by hand into `kafka-protocol`'s request type (the fields the
//! old version lacks take their defaults; ListOffsets v0's two extra fields travel as its file
//! says), so the broker's handler is the same for every
//! version; each answer is encoded by hand from `kafka-protocol`'s response type. Where an
//! old layout equals a newer one byte for byte, the newer version's generated codec is used
//! (named in each file). Unit tests compare every hand encoding against the old schema's
//! layout written out field by field. All are non-flexible versions (no tagged fields).
//!
//! A peer's element count never sizes an allocation: arrays grow one decoded element at a
//! time and fail when the frame runs out.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

mod create_topics;
mod describe_configs;
pub mod list_offsets;
mod offset_commit;

/// The lowest version of `api_key` served here, below `kafka-protocol`'s own range.
pub fn min_version(api_key: ApiKey) -> Option<i16> {
    match api_key {
        ApiKey::ListOffsets => Some(0),
        ApiKey::OffsetCommit => Some(0),
        ApiKey::OffsetFetch => Some(0),
        ApiKey::CreateTopics => Some(0),
        ApiKey::DeleteTopics => Some(0),
        ApiKey::DescribeConfigs => Some(0),
        _ => None,
    }
}

/// Whether `version` of `api_key` is one this module codes (below the generated range).
pub fn is_legacy(api_key: ApiKey, version: i16) -> bool {
    min_version(api_key).is_some_and(|min| min <= version && version < api_key.valid_versions().min)
}

/// Decodes an old request body into `kafka-protocol`'s request type.
pub fn decode(api_key: ApiKey, version: i16, body: &mut Bytes) -> Result<RequestKind, String> {
    let kind = match api_key {
        ApiKey::ListOffsets => RequestKind::ListOffsets(list_offsets::decode(body)?),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(offset_commit::decode(version, body)?),
        // OffsetFetch v0 is v1's layout (v0 read ZooKeeper, v1 Kafka: one store here).
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(generated(body, 1)?),
        ApiKey::CreateTopics => RequestKind::CreateTopics(create_topics::decode(version, body)?),
        // DeleteTopics v0 is v1's layout.
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(generated(body, 1)?),
        ApiKey::DescribeConfigs => {
            RequestKind::DescribeConfigs(describe_configs::decode(version, body)?)
        }
        other => return Err(format!("{other:?} v{version} has no legacy decoder")),
    };
    Ok(kind)
}

/// Encodes an old response body.
pub fn encode(version: i16, body: &ResponseKind, out: &mut BytesMut) -> Result<(), String> {
    match body {
        // v0–v1 answers are v2's layout (throttle time came in v3).
        ResponseKind::OffsetCommit(r) => encode_generated(r, 2, out),
        // v0 is v1's layout.
        ResponseKind::OffsetFetch(r) => encode_generated(r, 1, out),
        ResponseKind::CreateTopics(r) => create_topics::encode(version, r, out),
        // v0 is v1 without the leading throttle time.
        ResponseKind::DeleteTopics(r) => {
            let mut v1 = BytesMut::new();
            encode_generated(r, 1, &mut v1)?;
            out.put_slice(&v1[4..]);
            Ok(())
        }
        ResponseKind::DescribeConfigs(r) => describe_configs::encode(r, out),
        ResponseKind::ListOffsets(r) => list_offsets::encode(r, out),
        _ => Err(format!("no legacy encoder for this response at v{version}")),
    }
}

fn generated<T: Decodable>(body: &mut Bytes, version: i16) -> Result<T, String> {
    T::decode(body, version).map_err(|e| format!("{e:#}"))
}

fn encode_generated<T: Encodable>(r: &T, version: i16, out: &mut BytesMut) -> Result<(), String> {
    r.encode(out, version).map_err(|e| format!("{e:#}"))
}

/// Reads the non-flexible primitives of Kafka's old versions, failing on a short frame.
pub(crate) struct Reader<'a>(pub &'a mut Bytes);

impl Reader<'_> {
    fn need(&self, n: usize, what: &str) -> Result<(), String> {
        match self.0.remaining() >= n {
            true => Ok(()),
            false => Err(format!("{what}: frame ends early")),
        }
    }

    pub fn i16(&mut self, what: &str) -> Result<i16, String> {
        self.need(2, what)?;
        Ok(self.0.get_i16())
    }

    pub fn i32(&mut self, what: &str) -> Result<i32, String> {
        self.need(4, what)?;
        Ok(self.0.get_i32())
    }

    pub fn i64(&mut self, what: &str) -> Result<i64, String> {
        self.need(8, what)?;
        Ok(self.0.get_i64())
    }

    /// A nullable STRING (i16 length, -1 = null).
    pub fn nullable_string(&mut self, what: &str) -> Result<Option<StrBytes>, String> {
        let len = self.i16(what)?;
        if len < 0 {
            return Ok(None);
        }
        self.need(len as usize, what)?;
        let bytes = self.0.split_to(len as usize);
        StrBytes::from_utf8(bytes)
            .map(Some)
            .map_err(|_| format!("{what}: not UTF-8"))
    }

    pub fn string(&mut self, what: &str) -> Result<StrBytes, String> {
        self.nullable_string(what)?
            .ok_or_else(|| format!("{what}: null where a string is required"))
    }

    /// An ARRAY (i32 count) of elements read by `element`; a null array (-1) is `None`.
    pub fn nullable_array<T>(
        &mut self,
        what: &str,
        mut element: impl FnMut(&mut Self) -> Result<T, String>,
    ) -> Result<Option<Vec<T>>, String> {
        let count = self.i32(what)?;
        if count < 0 {
            return Ok(None);
        }
        let mut out = Vec::new();
        for _ in 0..count {
            out.push(element(self)?);
        }
        Ok(Some(out))
    }

    pub fn array<T>(
        &mut self,
        what: &str,
        element: impl FnMut(&mut Self) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        self.nullable_array(what, element)?
            .ok_or_else(|| format!("{what}: null where an array is required"))
    }

    /// One element decoded by `kafka-protocol` at a version whose layout equals the old one.
    pub fn generated<T: Decodable>(&mut self, version: i16) -> Result<T, String> {
        generated(self.0, version)
    }
}

/// Writes a nullable STRING; one longer than its i16 length can say is an error.
pub(crate) fn put_nullable_string(out: &mut BytesMut, s: Option<&str>) -> Result<(), String> {
    match s {
        Some(s) => {
            let len = i16::try_from(s.len())
                .map_err(|_| format!("a string of {} bytes does not fit a STRING", s.len()))?;
            out.put_i16(len);
            out.put_slice(s.as_bytes());
        }
        None => out.put_i16(-1),
    }
    Ok(())
}

#[cfg(test)]
mod tests;
