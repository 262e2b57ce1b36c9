//! Connecting to a cluster, bounded in time, with errors that say what to check; and the
//! connection flags every admin command shares.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use sluice_net::client::Client;

use crate::client_config::ClientConfig;
use crate::error::{Result, ToolError};
use crate::limits::CONNECT_TIMEOUT_MS;

/// Client id in request headers, so broker logs tell the CLI's connections apart.
const CLIENT_ID: &str = "sluice-cli";

/// `--bootstrap-server` (alias `--broker-list`) and `--command-config`, as Kafka's admin
/// tools take them.
#[derive(Args, Debug, Clone)]
pub struct AdminConnection {
    /// Broker(s) to bootstrap from: host:port[,host:port...].
    #[arg(long, value_name = "HOST:PORT", alias = "broker-list")]
    pub bootstrap_server: String,
    /// Properties file for the admin client (Kafka's --command-config): client.id is
    /// honoured, security.protocol must be PLAINTEXT, other keys are named in a warning.
    #[arg(long, value_name = "FILE")]
    pub command_config: Option<PathBuf>,
}

impl AdminConnection {
    /// Connects with the `--command-config` settings, warning about keys not honoured.
    pub async fn connect(&self, tool: &str) -> Result<Client> {
        let file = self
            .command_config
            .as_deref()
            .map(|path| (path, "--command-config"));
        let config = ClientConfig::load(file, &[], "--command-config")?;
        let settings = config.connection_settings()?;
        config.warn_unused(tool);
        connect_as(&self.bootstrap_server, settings.client_id.as_deref()).await
    }
}

/// Connects to the first reachable address of `bootstrap` (`host:port[,…]`) as
/// `client.id` (the CLI's own when `None`).
pub async fn connect_as(bootstrap: &str, client_id: Option<&str>) -> Result<Client> {
    let timeout = Duration::from_millis(CONNECT_TIMEOUT_MS);
    let client_id = client_id.unwrap_or(CLIENT_ID);
    match compio::time::timeout(timeout, Client::connect_as(bootstrap, client_id)).await {
        Ok(client) => Ok(client?),
        Err(_elapsed) => Err(ToolError::new(format!(
            "no answer from a broker at {bootstrap} within {CONNECT_TIMEOUT_MS} ms. Check the \
             host and port in --bootstrap-server and that no firewall drops the connection"
        ))),
    }
}
