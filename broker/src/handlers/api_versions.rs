//! ApiVersions v0–v4. A version we do not know gets a v0 response with UNSUPPORTED_VERSION
//! and ApiVersions' own range (KIP-511), so the client can retry with one we do.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, ResponseKind};

use super::{CLUSTER_ONLY, SUPPORTED};

/// `cluster`: a cluster node, which also serves `CLUSTER_ONLY`.
pub fn handle(_version: i16, _req: ApiVersionsRequest, cluster: bool) -> ApiVersionsResponse {
    let mut resp = ApiVersionsResponse::default();
    resp.api_keys = SUPPORTED
        .iter()
        .filter(|(key, _, _)| cluster || !CLUSTER_ONLY.contains(key))
        .map(|(key, min, max)| {
            let mut v = ApiVersion::default();
            v.api_key = *key as i16;
            v.min_version = *min;
            v.max_version = *max;
            v
        })
        .collect();
    resp.finalized_features_epoch = -1;
    resp
}

pub fn unsupported_version() -> ResponseKind {
    let mut resp = handle(0, ApiVersionsRequest::default(), false);
    resp.error_code = ResponseError::UnsupportedVersion.code();
    resp.api_keys
        .retain(|v| v.api_key == ApiKey::ApiVersions as i16);
    ResponseKind::ApiVersions(resp)
}
