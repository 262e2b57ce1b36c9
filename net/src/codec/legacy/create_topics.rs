//! CreateTopics v0–v1 (Kafka 3.9's schema). Requests: `topics [CreatableTopic], timeout_ms
//! i32`, then `validate_only bool` from v1 — v1 is v2's layout; v0's topics are v2's
//! (decoded by `kafka-protocol` at v2). Answers: `topics [name string, error_code i16]`,
//! then `error_message nullable string` per topic from v1 (no throttle time before v2).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::{put_nullable_string, Reader};

pub fn decode(version: i16, body: &mut Bytes) -> Result<CreateTopicsRequest, String> {
    if version == 1 {
        return super::generated(body, 2);
    }
    let mut r = Reader(body);
    let mut req = CreateTopicsRequest::default();
    req.topics = r.array("topics", |r| r.generated::<CreatableTopic>(2))?;
    req.timeout_ms = r.i32("timeout_ms")?;
    req.validate_only = false;
    Ok(req)
}

pub fn encode(version: i16, resp: &CreateTopicsResponse, out: &mut BytesMut) -> Result<(), String> {
    out.put_i32(resp.topics.len() as i32);
    for t in &resp.topics {
        put_nullable_string(out, Some(t.name.0.as_str()))?;
        out.put_i16(t.error_code);
        if version >= 1 {
            put_nullable_string(out, t.error_message.as_deref())?;
        }
    }
    Ok(())
}
