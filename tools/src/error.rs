//! The CLI's one error type: a message a person can act on, printed as
//! `sluice: error: …` with a non-zero exit code.

use std::fmt;

use kafka_protocol::error::ResponseError;
use sluice_net::client::ClientError;

#[derive(Debug)]
pub struct ToolError {
    message: String,
}

impl ToolError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<ClientError> for ToolError {
    fn from(error: ClientError) -> Self {
        match &error {
            ClientError::Connect { address, source } => ToolError::new(format!(
                "cannot reach a broker at {address}: {source}. Check that sluiced (or another \
                 Kafka broker) is running and listening there — its first log lines name the \
                 listener — and that --bootstrap-server is host:port of that listener"
            )),
            _ if error.kafka_error() == Some(ResponseError::UnknownTopicOrPartition) => {
                ToolError::new(format!(
                    "{error}. Does the topic exist? `sluice topics --list` shows the topics; \
                     `sluice topics --create --topic NAME` creates one"
                ))
            }
            _ => ToolError::new(error.to_string()),
        }
    }
}

/// What the command-line's `Result`s carry.
pub type Result<T, E = ToolError> = std::result::Result<T, E>;
