//! Connecting to a cluster, bounded in time, with errors that say what to check.

use std::time::Duration;

use sluice_net::client::Client;

use crate::error::{Result, ToolError};
use crate::limits::CONNECT_TIMEOUT_MS;

/// Client id in request headers, so broker logs tell the CLI's connections apart.
const CLIENT_ID: &str = "sluice-cli";

/// Connects to the first reachable address of `bootstrap` (`host:port[,…]`).
pub async fn connect(bootstrap: &str) -> Result<Client> {
    let timeout = Duration::from_millis(CONNECT_TIMEOUT_MS);
    match compio::time::timeout(timeout, Client::connect_as(bootstrap, CLIENT_ID)).await {
        Ok(client) => Ok(client?),
        Err(_elapsed) => Err(ToolError::new(format!(
            "no answer from a broker at {bootstrap} within {CONNECT_TIMEOUT_MS} ms. Check the \
             host and port in --bootstrap-server and that no firewall drops the connection"
        ))),
    }
}
