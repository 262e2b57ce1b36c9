//! A [`Client`] that survives brokers dying under it: every call is bounded by the
//! request timeout (Kafka's `request.timeout.ms`), and after a timeout or a broken
//! connection the client is dropped and the next call connects afresh to the next known
//! broker (the bootstrap list, then every broker Metadata named), as Kafka's clients do.

use std::time::Duration;

use sluice_net::client::{Client, ClientError, TopicMetadata};

use crate::verify::limits::BROKERS_KNOWN_MAX;

pub struct Session {
    /// Where to connect, bootstrap servers first; at most [`BROKERS_KNOWN_MAX`].
    addresses: Vec<String>,
    client_id: String,
    request_timeout: Duration,
    client: Option<Client>,
    /// Index into `addresses` of the next broker to connect to.
    next_address: usize,
}

/// Whether the connection may be kept after `error`: the broker answered with a Kafka
/// error code, so the bytes on the wire are in step.
fn connection_intact(error: &ClientError) -> bool {
    error.kafka_error().is_some()
}

/// The broker dropped or refused the connection (not a timeout, which already took a
/// whole request timeout).
fn connection_lost(error: &ClientError) -> bool {
    matches!(
        error,
        ClientError::Closed { .. }
            | ClientError::Io { .. }
            | ClientError::Connect { .. }
            | ClientError::Frame { .. }
    )
}

impl Session {
    pub fn new(bootstrap: &str, client_id: &str, request_timeout: Duration) -> Self {
        let mut session = Self {
            addresses: Vec::new(),
            client_id: client_id.to_string(),
            request_timeout,
            client: None,
            next_address: 0,
        };
        for address in bootstrap.split(',').map(str::trim) {
            session.learn(address);
        }
        session
    }

    fn learn(&mut self, address: &str) {
        let known = self.addresses.iter().any(|a| a == address);
        if !address.is_empty() && !known && self.addresses.len() < BROKERS_KNOWN_MAX {
            self.addresses.push(address.to_string());
        }
    }

    fn timed_out(&self, what: &str) -> ClientError {
        ClientError::Metadata(format!(
            "{what}: no answer within request.timeout.ms={}",
            self.request_timeout.as_millis()
        ))
    }

    /// Drops the client: the next call connects again, to the next broker.
    pub fn disconnect(&mut self) {
        self.client = None;
    }

    /// The client, connecting first if needed: to each known broker in turn (a dead one
    /// is skipped) until one answers; the last failure when none does.
    async fn client(&mut self) -> Result<&mut Client, ClientError> {
        let mut failure = ClientError::Bootstrap(String::new());
        for _ in 0..self.addresses.len() {
            if self.client.is_some() {
                break;
            }
            let index = self.next_address % self.addresses.len();
            let address = self.addresses[index].clone();
            self.next_address = self.next_address.wrapping_add(1);
            let connect = Client::connect_as(&address, &self.client_id);
            match compio::time::timeout(self.request_timeout, connect).await {
                Ok(Ok(client)) => self.client = Some(client),
                Ok(Err(error)) => failure = error,
                Err(_elapsed) => failure = self.timed_out(&format!("connecting to {address}")),
            }
        }
        self.client.as_mut().ok_or(failure)
    }

    /// Runs `call` on the client, connecting first if needed, within the request timeout.
    pub async fn call<T>(
        &mut self,
        what: &str,
        call: impl AsyncFnOnce(&mut Client) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let timeout = self.request_timeout;
        let outcome = match self.client().await {
            Ok(client) => compio::time::timeout(timeout, call(client)).await,
            Err(error) => Ok(Err(error)),
        };
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                if !connection_intact(&error) {
                    self.disconnect();
                }
                Err(error)
            }
            Err(_elapsed) => {
                self.disconnect();
                Err(self.timed_out(what))
            }
        }
    }

    /// Fresh metadata of `topic` (it may still lack leaders); remembers every broker named.
    ///
    /// Metadata changes nothing, so a broker that drops the connection (it is stopping)
    /// is not waited for: the next known broker is asked at once, each at most once.
    pub async fn refresh(&mut self, topic: &str) -> Result<TopicMetadata, ClientError> {
        let mut attempts = self.addresses.len().max(1);
        let metadata = loop {
            attempts -= 1;
            match self
                .call("Metadata", async |c: &mut Client| {
                    c.metadata(&[topic]).await
                })
                .await
            {
                Err(e) if connection_lost(&e) && attempts > 0 => continue,
                other => break other?,
            }
        };
        for broker in &metadata.brokers {
            self.learn(&broker.address());
        }
        let found = metadata.topics.into_iter().find(|t| t.name == topic);
        let topic_metadata = found.ok_or_else(|| {
            ClientError::Metadata(format!("Metadata did not list topic {topic:?}"))
        })?;
        if let Some(error) = topic_metadata.error {
            return Err(ClientError::Kafka {
                context: format!("metadata of topic {topic:?}"),
                error,
                code: error.code(),
            });
        }
        Ok(topic_metadata)
    }
}
