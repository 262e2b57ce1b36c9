//! DescribeConfigs v0 (Kafka 3.9's schema). Request: `resources [resource_type i8,
//! resource_name string, configuration_keys nullable [string]]` — v1's resources, decoded
//! by `kafka-protocol` at v1 — without v1's `include_synonyms` (false). Answer:
//! `throttle_time_ms i32, results [error_code i16, error_message nullable string,
//! resource_type i8, resource_name string, configs [name string, value nullable string,
//! read_only bool, is_default bool, is_sensitive bool]]`: v0 has `is_default` where v1 has
//! `config_source`, and no synonyms. `is_default` is `config_source == DEFAULT_CONFIG`.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::{put_nullable_string, Reader};

/// Kafka's `ConfigSource.DEFAULT_CONFIG`.
const SOURCE_DEFAULT_CONFIG: i8 = 5;

pub fn decode(_version: i16, body: &mut Bytes) -> Result<DescribeConfigsRequest, String> {
    let mut r = Reader(body);
    let mut req = DescribeConfigsRequest::default();
    req.resources = r.array("resources", |r| r.generated::<DescribeConfigsResource>(1))?;
    req.include_synonyms = false;
    Ok(req)
}

pub fn encode(resp: &DescribeConfigsResponse, out: &mut BytesMut) -> Result<(), String> {
    out.put_i32(resp.throttle_time_ms);
    out.put_i32(resp.results.len() as i32);
    for result in &resp.results {
        out.put_i16(result.error_code);
        put_nullable_string(out, result.error_message.as_deref())?;
        out.put_i8(result.resource_type);
        put_nullable_string(out, Some(result.resource_name.as_str()))?;
        out.put_i32(result.configs.len() as i32);
        for c in &result.configs {
            put_nullable_string(out, Some(c.name.as_str()))?;
            put_nullable_string(out, c.value.as_deref())?;
            out.put_u8(u8::from(c.read_only));
            out.put_u8(u8::from(c.config_source == SOURCE_DEFAULT_CONFIG));
            out.put_u8(u8::from(c.is_sensitive));
        }
    }
    Ok(())
}
