//! The request/response codec: a frame body in, a typed request out; a typed response in,
//! a framed response out. The message types and their (de)serialisation are
//! `kafka-protocol`'s, used as a library; this module adds what a broker needs around
//! them: the broker's own version table, the KIP-511 answer path for ApiVersions, and
//! errors that say what was wrong.
//!
//! Safety of decoding peer input: `kafka-protocol` trusts the element counts a peer
//! writes and reserves capacity for them before reading any element. The process must run
//! with [`crate::alloc::LazyLargeAlloc`] as its global allocator, which makes those
//! reservations free; see that module for the limits (`vm.overcommit_memory=2`).
//! The tests below decode bodies claiming `i32::MAX` / `u32::MAX` elements for every API
//! and version `kafka-protocol` knows.
//!
//! Versions Kafka 4 removed and `kafka-protocol` no longer knows (OffsetCommit v0–v1, …) are
//! coded by hand in `legacy`, into and from the same message types.
//!
//! Trailing bytes after a decoded body are ignored, as Kafka does: a newer client may
//! append data an older schema does not know. They are reported in
//! [`DecodedRequest::trailing_bytes`] for the caller to log if it likes.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::limits::{FRAME_BYTES_MAX, FRAME_SIZE_PREFIX_BYTES};

/// The request header fields every header version (0, 1, 2) starts with: enough to
/// answer a request whose body we will not decode (KIP-511: an ApiVersions request of a
/// version we do not support gets a v0 response with `UNSUPPORTED_VERSION`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeaderV {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    /// `None` when the header is v0 (no client id), the id is null, or it is cut short
    /// or not UTF-8: the answer does not depend on it.
    pub client_id: Option<String>,
}

/// Why a request frame could not be turned into a request.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The API key is not one Kafka defines (as far as `kafka-protocol` knows).
    #[error("unknown API key {0}; closing the connection")]
    UnknownApiKey(i16),
    /// We do not serve this version of this API. For ApiVersions the broker answers
    /// with a v0 response carrying `UNSUPPORTED_VERSION` and its version table; for any
    /// other API it closes the connection, as Kafka does.
    #[error(
        "{api_key:?} v{version} is not supported by this broker \
         (correlation id {})", header.correlation_id
    )]
    UnsupportedVersion {
        api_key: ApiKey,
        version: i16,
        header: RequestHeaderV,
    },
    /// The header or body does not parse for its declared API and version.
    #[error("malformed request: {0}")]
    Malformed(String),
}

/// Why a response could not be encoded. Each is a broker bug (a response built for a
/// version it cannot be written in), not a peer's fault.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("encoding {api_key:?} v{version} response: {reason}")]
    Body {
        api_key: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("{api_key:?} v{version} response of {size_bytes} bytes exceeds a Kafka frame")]
    TooLarge {
        api_key: ApiKey,
        version: i16,
        size_bytes: usize,
    },
}

/// A request decoded from one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedRequest {
    pub header: RequestHeader,
    pub api_key: ApiKey,
    pub version: i16,
    pub body: RequestKind,
    /// Bytes left in the frame after the body (ignored; see the module documentation).
    pub trailing_bytes: usize,
}

/// Bytes of api key + api version + correlation id at the start of every request.
const HEADER_FIXED_BYTES: usize = 8;

/// Parses the fields every request header version starts with (api key, api version,
/// correlation id, then the v1+ nullable client id, read leniently).
pub fn peek_request_header(frame: &[u8]) -> Result<RequestHeaderV, DecodeError> {
    if frame.len() < HEADER_FIXED_BYTES {
        return Err(DecodeError::Malformed(format!(
            "request of {} bytes is shorter than the {HEADER_FIXED_BYTES}-byte header prefix",
            frame.len()
        )));
    }
    let mut fixed = &frame[..HEADER_FIXED_BYTES];
    Ok(RequestHeaderV {
        api_key: fixed.get_i16(),
        api_version: fixed.get_i16(),
        correlation_id: fixed.get_i32(),
        client_id: peek_client_id(&frame[HEADER_FIXED_BYTES..]),
    })
}

/// Reads a Kafka nullable `STRING` (i16 length, -1 for null); `None` if absent, null,
/// cut short or not UTF-8.
fn peek_client_id(mut rest: &[u8]) -> Option<String> {
    if rest.len() < 2 {
        return None;
    }
    let len = usize::try_from(rest.get_i16()).ok()?;
    let bytes = rest.get(..len)?;
    String::from_utf8(bytes.to_vec()).ok()
}

/// The versions of `api_key` this codec decodes and encodes: `kafka-protocol`'s, and below
/// them the old versions [`legacy`] codes by hand.
pub fn codec_versions(api_key: ApiKey) -> (i16, i16) {
    let generated = api_key.valid_versions();
    let min = legacy::min_version(api_key).unwrap_or(generated.min);
    (min, generated.max)
}

/// The versions of `api_key` we decode: the broker's table intersected with what the codec
/// can decode. `None` if that is empty.
fn served_versions(
    api_key: ApiKey,
    supported: impl Fn(ApiKey) -> Option<(i16, i16)>,
) -> Option<(i16, i16)> {
    let (broker_min, broker_max) = supported(api_key)?;
    let (codec_min, codec_max) = codec_versions(api_key);
    let min = broker_min.max(codec_min);
    let max = broker_max.min(codec_max);
    (min <= max).then_some((min, max))
}

/// Decodes header and body of one request frame (without its size prefix).
///
/// `supported(api_key) -> Option<(min, max)>` is the broker's table of the versions it
/// implements; it is intersected with `kafka-protocol`'s valid versions. A version
/// outside it yields [`DecodeError::UnsupportedVersion`] with the header prefix parsed,
/// before any body byte is looked at.
pub fn decode_request(
    frame: Bytes,
    supported: impl Fn(ApiKey) -> Option<(i16, i16)>,
) -> Result<DecodedRequest, DecodeError> {
    let prefix = peek_request_header(&frame)?;
    let api_key = ApiKey::try_from(prefix.api_key)
        .map_err(|()| DecodeError::UnknownApiKey(prefix.api_key))?;
    let version = prefix.api_version;
    match served_versions(api_key, supported) {
        Some((min, max)) if (min..=max).contains(&version) => {}
        _ => {
            return Err(DecodeError::UnsupportedVersion {
                api_key,
                version,
                header: prefix,
            })
        }
    }
    let mut rest = frame;
    let header = decode_header(api_key, version, &mut rest)?;
    let body = match legacy::is_legacy(api_key, version) {
        true => legacy::decode(api_key, version, &mut rest),
        false => RequestKind::decode(api_key, &mut rest, version).map_err(|e| format!("{e:#}")),
    }
    .map_err(|error| {
        DecodeError::Malformed(format!("{api_key:?} v{version} request body: {error}"))
    })?;
    Ok(DecodedRequest {
        header,
        api_key,
        version,
        body,
        trailing_bytes: rest.remaining(),
    })
}

fn decode_header(
    api_key: ApiKey,
    version: i16,
    rest: &mut Bytes,
) -> Result<RequestHeader, DecodeError> {
    let header_version = api_key.request_header_version(version);
    RequestHeader::decode(rest, header_version).map_err(|error| {
        DecodeError::Malformed(format!(
            "{api_key:?} v{version} request header v{header_version}: {error:#}"
        ))
    })
}

/// The response header version for `api_key` at `version`. ApiVersions responses always
/// use header v0 (KIP-511: a client that does not know our version must still parse it).
pub fn response_header_version(api_key: ApiKey, version: i16) -> i16 {
    if api_key == ApiKey::ApiVersions {
        return 0;
    }
    api_key.response_header_version(version)
}

/// Appends one framed response to `out`: size prefix, response header, body.
///
/// `body` must be the response type of `api_key`. On error nothing is appended (`out`
/// is restored to its previous length).
pub fn encode_response(
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    body: &ResponseKind,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let start = out.len();
    let result = encode_response_unframed(correlation_id, api_key, version, body, out, start);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn encode_response_unframed(
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    body: &ResponseKind,
    out: &mut BytesMut,
    start: usize,
) -> Result<(), EncodeError> {
    let body_error = |reason: String| EncodeError::Body {
        api_key,
        version,
        reason,
    };
    out.put_i32(0); // Size prefix, patched below.
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header
        .encode(out, response_header_version(api_key, version))
        .map_err(|error| body_error(format!("response header: {error:#}")))?;
    match legacy::is_legacy(api_key, version) {
        true => legacy::encode(version, body, out),
        false => body.encode(out, version).map_err(|e| format!("{e:#}")),
    }
    .map_err(|error| body_error(format!("body: {error}")))?;
    let size_bytes = out.len() - start - FRAME_SIZE_PREFIX_BYTES;
    if size_bytes > FRAME_BYTES_MAX {
        return Err(EncodeError::TooLarge {
            api_key,
            version,
            size_bytes,
        });
    }
    let size = i32::try_from(size_bytes).expect("checked against FRAME_BYTES_MAX");
    out[start..start + FRAME_SIZE_PREFIX_BYTES].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

mod legacy;

/// ListOffsets v0's fields that `kafka-protocol`'s types lack (see `legacy::list_offsets`).
pub use legacy::list_offsets::{max_num_offsets, set_old_style_offsets};

#[cfg(test)]
mod tests;
