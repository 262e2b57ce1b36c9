use super::*;
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse, ProduceRequest,
};
use kafka_protocol::protocol::StrBytes;

/// Serves every version the codec can decode (`kafka-protocol`'s and the legacy ones).
fn permissive(api_key: ApiKey) -> Option<(i16, i16)> {
    Some(codec_versions(api_key))
}

/// A request frame (without size prefix): `api_key` header at `version`, then `body`.
fn frame(api_key: ApiKey, version: i16, body: &[u8]) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(42)
        .with_client_id(Some(StrBytes::from_static_str("sluice-test")));
    let mut out = BytesMut::new();
    header
        .encode(&mut out, api_key.request_header_version(version))
        .unwrap();
    out.extend_from_slice(body);
    out.freeze()
}

fn encoded(body: &RequestKind, version: i16) -> Vec<u8> {
    let mut out = BytesMut::new();
    body.encode(&mut out, version).unwrap();
    out.to_vec()
}

#[test]
fn round_trips_typed_requests() {
    let metadata = RequestKind::Metadata(MetadataRequest::default().with_topics(None));
    let api_versions = RequestKind::ApiVersions(
        ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("kcat"))
            .with_client_software_version(StrBytes::from_static_str("1.7")),
    );
    let produce = RequestKind::Produce(ProduceRequest::default().with_acks(-1));
    let cases = [
        (ApiKey::Metadata, 1, &metadata),
        (ApiKey::Metadata, 12, &metadata),
        (ApiKey::ApiVersions, 0, &api_versions),
        (ApiKey::ApiVersions, 3, &api_versions),
        (ApiKey::Produce, 3, &produce),
        (ApiKey::Produce, 9, &produce),
    ];
    for (api_key, version, body) in cases {
        let decoded = decode_request(frame(api_key, version, &encoded(body, version)), permissive)
            .unwrap_or_else(|error| panic!("{api_key:?} v{version}: {error}"));
        assert_eq!((decoded.api_key, decoded.version), (api_key, version));
        assert_eq!(decoded.header.correlation_id, 42);
        assert_eq!(decoded.header.client_id.as_deref(), Some("sluice-test"));
        assert_eq!(decoded.trailing_bytes, 0);
        assert_eq!(encoded(&decoded.body, version), encoded(body, version));
    }
}

#[test]
fn trailing_bytes_are_ignored_and_counted() {
    let body = RequestKind::Metadata(MetadataRequest::default());
    let mut bytes = encoded(&body, 4);
    bytes.extend_from_slice(&[9, 9, 9]);
    let decoded = decode_request(frame(ApiKey::Metadata, 4, &bytes), permissive).unwrap();
    assert_eq!(decoded.trailing_bytes, 3);
}

/// The broker table of the tests: ApiVersions 0..=3, Metadata 0..=12, nothing else.
fn narrow(api_key: ApiKey) -> Option<(i16, i16)> {
    match api_key {
        ApiKey::ApiVersions => Some((0, 3)),
        ApiKey::Metadata => Some((0, 12)),
        _ => None,
    }
}

/// One line per case: raw frame bytes in, the error's Display out.
fn check_error(frame: &[u8], expected: &str) {
    let error = decode_request(Bytes::copy_from_slice(frame), narrow).unwrap_err();
    assert_eq!(error.to_string(), expected, "frame {frame:?}");
}

#[test]
fn rejects_what_we_do_not_serve() {
    check_error(
        &[0, 18, 0],
        "malformed request: request of 3 bytes is shorter than the 8-byte header prefix",
    );
    check_error(
        &[0x7f, 0, 0, 0, 0, 0, 0, 1],
        "unknown API key 32512; closing the connection",
    );
    check_error(
        &[0, 0, 0, 9, 0, 0, 0, 1],
        "Produce v9 is not supported by this broker (correlation id 1)",
    );
    check_error(
        &[0, 3, 0, 13, 0, 0, 0, 1],
        "Metadata v13 is not supported by this broker (correlation id 1)",
    );
    check_error(&[0, 3, 0, 4, 0, 0, 0, 1, 0], "malformed request: Metadata v4 request header v1: Not enough bytes remaining in buffer to read value (requested 2 but only 1 available)");
}

#[test]
fn api_versions_from_the_future_is_answerable() {
    // ApiVersions v99 from a newer client: header v2 prefix, then a body we cannot know.
    let mut frame = vec![0, 18, 0, 99, 0, 0, 0x30, 0x39, 0, 3];
    frame.extend_from_slice(b"cli\0\xff\xff\xff");
    let error = decode_request(Bytes::from(frame), narrow).unwrap_err();
    let DecodeError::UnsupportedVersion {
        api_key,
        version,
        header,
    } = error
    else {
        panic!("expected UnsupportedVersion, got {error}");
    };
    assert_eq!((api_key, version), (ApiKey::ApiVersions, 99));
    let expected = RequestHeaderV {
        api_key: 18,
        api_version: 99,
        correlation_id: 12345,
        client_id: Some("cli".to_string()),
    };
    assert_eq!(header, expected);
    // A cut-short client id is not an obstacle to answering.
    let short = peek_request_header(&[0, 18, 0, 99, 0, 0, 0, 7, 0, 200, b'x']).unwrap();
    assert_eq!((short.correlation_id, short.client_id), (7, None));
}

fn encode(api_key: ApiKey, version: i16, body: &ResponseKind) -> Vec<u8> {
    let mut out = BytesMut::from(&b"keep"[..]);
    encode_response(0x01020304, api_key, version, body, &mut out).unwrap();
    assert_eq!(&out[..4], b"keep");
    let size = i32::from_be_bytes(out[4..8].try_into().unwrap());
    assert_eq!(size as usize, out.len() - 8);
    out[8..].to_vec()
}

#[test]
fn encodes_response_headers_by_version() {
    let api_versions = ResponseKind::ApiVersions(ApiVersionsResponse::default());
    let metadata = ResponseKind::Metadata(MetadataResponse::default());
    // ApiVersions v3 is flexible but still uses header v0: no tagged-field byte.
    let v3 = encode(ApiKey::ApiVersions, 3, &api_versions);
    assert_eq!(&v3[..4], &[1, 2, 3, 4]);
    let mut body = BytesMut::new();
    api_versions.encode(&mut body, 3).unwrap();
    assert_eq!(&v3[4..], &body[..]);
    // Metadata v9+ uses header v1: correlation id then an empty tagged-field section.
    let v9 = encode(ApiKey::Metadata, 9, &metadata);
    assert_eq!(&v9[..5], &[1, 2, 3, 4, 0]);
    let v8 = encode(ApiKey::Metadata, 8, &metadata);
    let mut body = BytesMut::new();
    metadata.encode(&mut body, 8).unwrap();
    assert_eq!(&v8[..4], &[1, 2, 3, 4]);
    assert_eq!(&v8[4..], &body[..]);
}

#[test]
fn failed_encode_appends_nothing() {
    let metadata = ResponseKind::Metadata(MetadataResponse::default());
    let mut out = BytesMut::from(&b"keep"[..]);
    let error = encode_response(1, ApiKey::Metadata, 99, &metadata, &mut out).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("encoding Metadata v99 response:"),
        "{error}"
    );
    assert_eq!(&out[..], b"keep");
}

/// Bodies of a few bytes that claim enormous element counts, in every encoding Kafka
/// uses for a count (i32 arrays, unsigned varint compact arrays/strings, i16 strings),
/// behind prefixes of zeros so the claim lands on every field position.
fn hostile_bodies() -> Vec<Vec<u8>> {
    let counts: [&[u8]; 4] = [
        &[0x7f, 0xff, 0xff, 0xff],
        &[0xff, 0xff, 0xff, 0xff, 0x0f],
        &[0xff, 0xff, 0xff, 0xff],
        &[0xff],
    ];
    let mut bodies = Vec::new();
    for count in counts {
        for repeat in 1..=6 {
            bodies.push(count.repeat(repeat));
        }
        for zeros in 0..=40 {
            let mut body = vec![0u8; zeros];
            body.extend_from_slice(count);
            bodies.push(body.clone());
            body.extend_from_slice(&[0; 3]);
            bodies.push(body);
        }
    }
    for ones in 1..=40 {
        let mut body = vec![1u8; ones];
        body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        bodies.push(body);
    }
    bodies
}

#[test]
fn huge_claimed_counts_fail_without_aborting() {
    let bodies = hostile_bodies();
    let mut decoded_ok = 0usize;
    let mut pairs = 0usize;
    for api_key in ApiKey::iter() {
        let (min, max) = codec_versions(api_key);
        for version in min..=max {
            pairs += 1;
            for body in &bodies {
                let started = std::time::Instant::now();
                let result = decode_request(frame(api_key, version, body), permissive);
                let elapsed = started.elapsed();
                assert!(
                    elapsed < std::time::Duration::from_secs(1),
                    "{api_key:?} v{version} body {body:02x?} took {elapsed:?}"
                );
                match result {
                    Ok(_) => decoded_ok += 1,
                    Err(DecodeError::Malformed(_)) => {}
                    Err(error) => panic!("{api_key:?} v{version}: unexpected {error}"),
                }
            }
        }
    }
    assert!(pairs > 250, "{pairs} (api, version) pairs");
    // Some short bodies are valid requests (all fields optional or tiny): fine.
    assert!(decoded_ok < pairs * bodies.len() / 2);
}
