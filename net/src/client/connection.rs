//! One client connection to one broker: version negotiation (ApiVersions), one request
//! at a time ([`Connection::call`]) or pipelined ([`Connection::into_pipeline`]).
//!
//! Kafka answers the requests of one connection in the order they were sent, so a
//! pipeline is a FIFO of in-flight requests matched to responses by position, with the
//! correlation id checked on every response.

use bytes::{Bytes, BytesMut};
use compio::buf::BufResult;
use compio::io::AsyncWriteExt;
use compio::net::TcpStream;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};

use crate::client::error::{ClientError, Result};
use crate::client::limits::{CLIENT_VERSIONS, REQUESTS_IN_FLIGHT_MAX, RESPONSE_BYTES_MAX};
use crate::codec::response_header_version;
use crate::frame::FrameReader;
use crate::limits::FRAME_SIZE_PREFIX_BYTES;

/// `UNSUPPORTED_VERSION`: the broker answers ApiVersions in v0 with its table.
const UNSUPPORTED_VERSION: i16 = 35;

/// What version negotiation found for one API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Negotiated {
    /// The highest version both sides speak.
    Version(i16),
    /// None in common: the broker's range.
    Disjoint { broker_min: i16, broker_max: i16 },
}

/// Per API, the version both sides speak (the highest common one).
#[derive(Debug, Clone, Default)]
pub struct ApiVersionTable {
    negotiated: Vec<(ApiKey, Negotiated)>,
}

impl ApiVersionTable {
    fn from_response(response: &ApiVersionsResponse) -> Self {
        let mut negotiated = Vec::new();
        for api in &response.api_keys {
            let Ok(api_key) = ApiKey::try_from(api.api_key) else {
                continue;
            };
            let Some((client_min, client_max)) = client_range(api_key) else {
                continue;
            };
            let max = client_max.min(api.max_version);
            let version = if max >= client_min.max(api.min_version) {
                Negotiated::Version(max)
            } else {
                Negotiated::Disjoint {
                    broker_min: api.min_version,
                    broker_max: api.max_version,
                }
            };
            negotiated.push((api_key, version));
        }
        Self { negotiated }
    }

    /// The negotiated version of `api_key`, or why there is none.
    pub fn version(&self, api_key: ApiKey, address: &str) -> Result<i16> {
        let (client_min, client_max) = client_range(api_key).expect("client implements it");
        let entry = self.negotiated.iter().find(|(key, _)| *key == api_key);
        let broker = match entry {
            Some((_, Negotiated::Version(version))) => return Ok(*version),
            Some((
                _,
                Negotiated::Disjoint {
                    broker_min,
                    broker_max,
                },
            )) => {
                format!("{broker_min}..={broker_max}")
            }
            None => "none".to_string(),
        };
        Err(ClientError::UnsupportedApi {
            address: address.to_string(),
            api_key,
            client_min,
            client_max,
            broker,
        })
    }
}

/// The versions of `api_key` this client implements, within what the codec knows.
fn client_range(api_key: ApiKey) -> Option<(i16, i16)> {
    let (_, min, max) = CLIENT_VERSIONS.iter().find(|(key, _, _)| *key == api_key)?;
    let codec = api_key.valid_versions();
    Some(((*min).max(codec.min), (*max).min(codec.max)))
}

/// A request encoded and framed, waiting to be written.
struct Encoded {
    frame: BytesMut,
    correlation_id: i32,
    api_key: ApiKey,
}

/// What a connection needs to encode requests: shared by both halves of a pipeline.
#[derive(Debug)]
struct Encoder {
    address: String,
    client_id: StrBytes,
    next_correlation_id: i32,
}

impl Encoder {
    fn encode<R: Request>(&mut self, request: &R, version: i16) -> Result<Encoded> {
        let api_key = ApiKey::try_from(R::KEY).expect("kafka-protocol request key");
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let protocol = |reason: String| ClientError::Protocol {
            address: self.address.clone(),
            api_key,
            version,
            reason,
        };
        let mut frame = BytesMut::with_capacity(256);
        frame.extend_from_slice(&[0; FRAME_SIZE_PREFIX_BYTES]);
        header
            .encode(&mut frame, api_key.request_header_version(version))
            .map_err(|error| protocol(format!("encoding request header: {error:#}")))?;
        request
            .encode(&mut frame, version)
            .map_err(|error| protocol(format!("encoding request: {error:#}")))?;
        let body_bytes = i32::try_from(frame.len() - FRAME_SIZE_PREFIX_BYTES)
            .map_err(|_| protocol(format!("request of {} bytes", frame.len())))?;
        frame[..FRAME_SIZE_PREFIX_BYTES].copy_from_slice(&body_bytes.to_be_bytes());
        Ok(Encoded {
            frame,
            correlation_id,
            api_key,
        })
    }
}

/// Reads responses and checks their headers.
#[derive(Debug)]
struct Decoder {
    address: String,
    reader: FrameReader,
}

impl Decoder {
    /// Reads the next response frame, checks its correlation id and decodes the body
    /// as `T` (the response type of `api_key`).
    async fn read<T: Decodable>(
        &mut self,
        stream: &mut TcpStream,
        expected: &Expected,
        in_flight: usize,
    ) -> Result<T> {
        let frame = self.read_frame(stream, in_flight).await?;
        self.decode(frame, expected)
    }

    async fn read_frame(&mut self, stream: &mut TcpStream, in_flight: usize) -> Result<Bytes> {
        match self.reader.read_frame(stream).await {
            Ok(Some(frame)) => Ok(frame),
            Ok(None) => Err(ClientError::Closed {
                address: self.address.clone(),
                in_flight,
            }),
            Err(source) => Err(ClientError::Frame {
                address: self.address.clone(),
                source,
            }),
        }
    }

    fn decode<T: Decodable>(&self, mut frame: Bytes, expected: &Expected) -> Result<T> {
        let Expected {
            api_key,
            version,
            correlation_id,
        } = *expected;
        let protocol = |reason: String| ClientError::Protocol {
            address: self.address.clone(),
            api_key,
            version,
            reason,
        };
        let header_version = response_header_version(api_key, version);
        let header = ResponseHeader::decode(&mut frame, header_version)
            .map_err(|error| protocol(format!("response header: {error:#}")))?;
        if header.correlation_id != correlation_id {
            return Err(protocol(format!(
                "response has correlation id {}, expected {correlation_id}",
                header.correlation_id
            )));
        }
        T::decode(&mut frame, version).map_err(|error| protocol(format!("response: {error:#}")))
    }
}

/// The request a response is expected for.
#[derive(Debug, Clone, Copy)]
struct Expected {
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
}

/// A connection to one broker, requests answered one at a time.
///
/// Lives on one compio runtime thread (its socket is registered there).
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    encoder: Encoder,
    decoder: Decoder,
    versions: ApiVersionTable,
}

impl Connection {
    /// Connects to `address` (`host:port`) and negotiates API versions.
    pub async fn connect(address: &str, client_id: &str) -> Result<Self> {
        let stream = TcpStream::connect(address)
            .await
            .map_err(|source| ClientError::Connect {
                address: address.to_string(),
                source,
            })?;
        // Pipelined small requests must not wait for Nagle.
        stream.set_nodelay(true).map_err(|source| ClientError::Io {
            action: "setting TCP_NODELAY on the connection to",
            address: address.to_string(),
            source,
        })?;
        let mut connection = Self {
            stream,
            encoder: Encoder {
                address: address.to_string(),
                client_id: StrBytes::from_string(client_id.to_string()),
                next_correlation_id: 1,
            },
            decoder: Decoder {
                address: address.to_string(),
                reader: FrameReader::new(RESPONSE_BYTES_MAX),
            },
            versions: ApiVersionTable::default(),
        };
        connection.negotiate_versions().await?;
        Ok(connection)
    }

    pub fn address(&self) -> &str {
        &self.encoder.address
    }

    pub fn versions(&self) -> &ApiVersionTable {
        &self.versions
    }

    /// The negotiated version of `api_key`.
    pub fn version(&self, api_key: ApiKey) -> Result<i16> {
        self.versions.version(api_key, self.address())
    }

    /// ApiVersions at our highest version; if the broker does not know it (KIP-511: it
    /// answers v0 with `UNSUPPORTED_VERSION` and its own table), again at its highest.
    async fn negotiate_versions(&mut self) -> Result<()> {
        let (_, ours) = client_range(ApiKey::ApiVersions).expect("client speaks ApiVersions");
        let mut version = ours;
        for _attempt in 0..2 {
            let request = ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("sluice"))
                .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
            let response = self.call_version(&request, version).await?;
            if response.error_code == UNSUPPORTED_VERSION {
                let theirs = response
                    .api_keys
                    .iter()
                    .find(|api| api.api_key == ApiKey::ApiVersions as i16)
                    .map_or(0, |api| api.max_version);
                version = theirs.min(ours);
                continue;
            }
            ClientError::check(response.error_code, || {
                format!("ApiVersions v{version} to {}", self.address())
            })?;
            self.versions = ApiVersionTable::from_response(&response);
            return Ok(());
        }
        Err(ClientError::Metadata(format!(
            "{}: ApiVersions negotiation did not converge",
            self.address()
        )))
    }

    /// Sends `request` at the negotiated version and waits for its response.
    pub async fn call<R: Request>(&mut self, request: &R) -> Result<R::Response> {
        let api_key = ApiKey::try_from(R::KEY).expect("kafka-protocol request key");
        let version = self.version(api_key)?;
        self.call_version(request, version).await
    }

    /// Sends `request` at `version` and waits for its response.
    pub async fn call_version<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response> {
        let encoded = self.encoder.encode(request, version)?;
        let expected = Expected {
            api_key: encoded.api_key,
            version,
            correlation_id: encoded.correlation_id,
        };
        write_frame(&mut self.stream, encoded.frame, &self.encoder.address).await?;
        if encoded.api_key == ApiKey::ApiVersions {
            return self.read_api_versions(&expected).await;
        }
        self.decoder.read(&mut self.stream, &expected, 1).await
    }

    /// Sends `request` at `version` for which no response will come (Produce with
    /// acks=0).
    pub async fn send_only<R: Request>(&mut self, request: &R, version: i16) -> Result<()> {
        let encoded = self.encoder.encode(request, version)?;
        write_frame(&mut self.stream, encoded.frame, &self.encoder.address).await
    }

    /// ApiVersions responses to a version the broker does not know come back as v0.
    async fn read_api_versions<T: Decodable>(&mut self, expected: &Expected) -> Result<T> {
        let frame = self.decoder.read_frame(&mut self.stream, 1).await?;
        match self.decoder.decode(frame.clone(), expected) {
            Ok(response) => Ok(response),
            Err(error) if expected.version > 0 => {
                let v0 = Expected {
                    version: 0,
                    ..*expected
                };
                self.decoder.decode(frame, &v0).map_err(|_| error)
            }
            Err(error) => Err(error),
        }
    }

    /// Splits the connection into a sending half and a receiving half with at most
    /// `requests_in_flight_max` requests sent and not yet received.
    ///
    /// # Panics
    /// If `requests_in_flight_max` is 0 or above [`REQUESTS_IN_FLIGHT_MAX`].
    pub fn into_pipeline<T>(
        self,
        requests_in_flight_max: usize,
    ) -> (PipelineSender<T>, PipelineReceiver<T>) {
        assert!(
            (1..=REQUESTS_IN_FLIGHT_MAX).contains(&requests_in_flight_max),
            "requests_in_flight_max {requests_in_flight_max} outside 1..={REQUESTS_IN_FLIGHT_MAX}"
        );
        let (pending_tx, pending_rx) = async_channel::bounded(requests_in_flight_max);
        let (slots_tx, slots_rx) = async_channel::bounded(requests_in_flight_max);
        for _ in 0..requests_in_flight_max {
            slots_tx.try_send(()).expect("room for every slot");
        }
        let (read_stream, write_stream) = self.stream.into_split();
        let sender = PipelineSender {
            stream: write_stream,
            encoder: self.encoder,
            versions: self.versions,
            pending: pending_tx,
            free_slots: slots_rx,
            requests_in_flight_max,
        };
        let receiver = PipelineReceiver {
            stream: read_stream,
            decoder: self.decoder,
            pending: pending_rx,
            free_slots: slots_tx,
        };
        (sender, receiver)
    }
}

async fn write_frame(stream: &mut TcpStream, frame: BytesMut, address: &str) -> Result<()> {
    let BufResult(result, _) = stream.write_all(frame).await;
    result.map_err(|source| ClientError::Io {
        action: "sending a request to",
        address: address.to_string(),
        source,
    })
}

/// Whether a pipelined request gets a response (Produce with acks=0 does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseExpected {
    Yes,
    No,
}

/// A request sent on a pipeline, waiting for its response.
struct InFlight<T> {
    expected: Expected,
    response: ResponseExpected,
    tag: T,
}

/// The sending half of a pipelined connection.
pub struct PipelineSender<T> {
    stream: TcpStream,
    encoder: Encoder,
    versions: ApiVersionTable,
    /// The requests sent and not yet received, oldest first.
    pending: async_channel::Sender<InFlight<T>>,
    /// One token per request that may still be sent: taken before a send, returned by
    /// the receiver once the response is read. Holds `requests_in_flight_max` tokens.
    free_slots: async_channel::Receiver<()>,
    requests_in_flight_max: usize,
}

impl<T> PipelineSender<T> {
    pub fn address(&self) -> &str {
        &self.encoder.address
    }

    /// The negotiated version of `api_key`.
    pub fn version(&self, api_key: ApiKey) -> Result<i16> {
        self.versions.version(api_key, &self.encoder.address)
    }

    /// Whether [`Self::send`] would go out without waiting for a response first.
    pub fn has_capacity(&self) -> bool {
        !self.free_slots.is_empty()
    }

    pub fn in_flight(&self) -> usize {
        self.requests_in_flight_max - self.free_slots.len()
    }

    pub fn requests_in_flight_max(&self) -> usize {
        self.requests_in_flight_max
    }

    /// Sends `request` at `version`; waits first while `requests_in_flight_max`
    /// requests are unanswered. `tag` comes back with the response.
    pub async fn send<R: Request>(
        &mut self,
        request: &R,
        version: i16,
        response: ResponseExpected,
        tag: T,
    ) -> Result<()> {
        let address = self.encoder.address.clone();
        let closed = || ClientError::Closed {
            address: address.clone(),
            in_flight: 0,
        };
        self.free_slots.recv().await.map_err(|_| closed())?;
        let encoded = self.encoder.encode(request, version)?;
        let in_flight = InFlight {
            expected: Expected {
                api_key: encoded.api_key,
                version,
                correlation_id: encoded.correlation_id,
            },
            response,
            tag,
        };
        // Registered before the write, so the receiver never sees a response it does
        // not expect. Never waits: a slot was taken above.
        self.pending.send(in_flight).await.map_err(|_| closed())?;
        write_frame(&mut self.stream, encoded.frame, &self.encoder.address).await
    }
}

/// The receiving half of a pipelined connection.
pub struct PipelineReceiver<T> {
    stream: TcpStream,
    decoder: Decoder,
    pending: async_channel::Receiver<InFlight<T>>,
    free_slots: async_channel::Sender<()>,
}

impl<T> PipelineReceiver<T> {
    /// The response to the oldest request in flight, decoded as `Resp`, with its tag;
    /// `None` once the sender is dropped and every response has been received.
    /// Requests sent with [`ResponseExpected::No`] come back as `(tag, None)` in their
    /// turn. Every request on the pipeline must have the response type `Resp`.
    pub async fn receive<Resp: Decodable>(&mut self) -> Result<Option<(T, Option<Resp>)>> {
        let Ok(in_flight) = self.pending.recv().await else {
            return Ok(None);
        };
        if in_flight.response == ResponseExpected::No {
            self.release_slot();
            return Ok(Some((in_flight.tag, None)));
        }
        let unanswered = self.pending.len() + 1;
        let response = self
            .decoder
            .read(&mut self.stream, &in_flight.expected, unanswered)
            .await?;
        self.release_slot();
        Ok(Some((in_flight.tag, Some(response))))
    }

    fn release_slot(&self) {
        // Fails only when the sender is gone, and then nobody needs the slot.
        let _ = self.free_slots.try_send(());
    }
}
