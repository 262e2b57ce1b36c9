//! Client errors: each says what was being done, to which broker, and what to try.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;

use crate::client::batch::BatchError;
use crate::frame::FrameError;

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connecting to {address}: {source} (is the broker running?)")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("{action} {address}: {source}")]
    Io {
        action: &'static str,
        address: String,
        source: std::io::Error,
    },
    #[error("reading a response from {address}: {source}")]
    Frame { address: String, source: FrameError },
    #[error("{address} closed the connection with {in_flight} request(s) unanswered")]
    Closed { address: String, in_flight: usize },
    #[error("{address}: {api_key:?} v{version}: {reason}")]
    Protocol {
        address: String,
        api_key: ApiKey,
        version: i16,
        reason: String,
    },
    #[error(
        "{address} does not serve {api_key:?} in a version this client speaks \
         (client {client_min}..={client_max}, broker {broker})"
    )]
    UnsupportedApi {
        address: String,
        api_key: ApiKey,
        client_min: i16,
        client_max: i16,
        broker: String,
    },
    #[error("{context}: {error} (Kafka error code {code})")]
    Kafka {
        context: String,
        error: ResponseError,
        code: i16,
    },
    /// A Kafka error the broker explained in its `error_message`.
    #[error("{context}: {message} ({error}, Kafka error code {code})")]
    KafkaWithMessage {
        context: String,
        message: String,
        error: ResponseError,
        code: i16,
    },
    #[error("{0}")]
    Metadata(String),
    #[error("bad bootstrap address {0:?}: expected host:port")]
    Bootstrap(String),
    #[error("records from {context}: {source}")]
    Batch { context: String, source: BatchError },
    #[error("{requests_in_flight_max} requests already in flight on this connection")]
    InFlightFull { requests_in_flight_max: usize },
}

impl ClientError {
    /// A Kafka error code turned into an error, if it is one.
    pub fn check(code: i16, context: impl FnOnce() -> String) -> Result<()> {
        match ResponseError::try_from_code(code) {
            None => Ok(()),
            Some(error) => Err(ClientError::Kafka {
                context: context(),
                error,
                code,
            }),
        }
    }

    /// [`Self::check`] with the broker's `error_message`, said after the context when
    /// there is one (`creating topic "t" on b:9092: Replication factor: 3 larger than
    /// available brokers: 1. (InvalidReplicationFactor, Kafka error code 38)`).
    pub fn check_with_message(
        code: i16,
        message: Option<String>,
        context: impl FnOnce() -> String,
    ) -> Result<()> {
        let Some(error) = ResponseError::try_from_code(code) else {
            return Ok(());
        };
        let context = context();
        Err(match message.map(|m| m.trim().to_string()) {
            Some(message) if !message.is_empty() => ClientError::KafkaWithMessage {
                context,
                message,
                error,
                code,
            },
            _ => ClientError::Kafka {
                context,
                error,
                code,
            },
        })
    }

    /// The Kafka error this is, if the broker answered with one.
    pub fn kafka_error(&self) -> Option<ResponseError> {
        match self {
            ClientError::Kafka { error, .. } | ClientError::KafkaWithMessage { error, .. } => {
                Some(*error)
            }
            _ => None,
        }
    }
}
