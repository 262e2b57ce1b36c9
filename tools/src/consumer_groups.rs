//! `sluice consumer-groups`: kafka-consumer-groups' flags. Not implemented yet: it says
//! whether the broker lacks the group APIs or this CLI lacks the command.

use clap::{ArgGroup, Args};
use kafka_protocol::messages::ApiKey;

use crate::connect::connect;
use crate::error::{Result, ToolError};

/// What kafka-consumer-groups needs from a broker.
const GROUP_APIS: &[ApiKey] = &[
    ApiKey::FindCoordinator,
    ApiKey::ListGroups,
    ApiKey::DescribeGroups,
    ApiKey::OffsetFetch,
];

#[derive(Args)]
#[command(group(
    ArgGroup::new("action")
        .required(true)
        .args(["list", "describe", "reset_offsets", "delete"])
))]
pub struct GroupsArgs {
    /// Broker(s) to bootstrap from: host:port[,host:port...].
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap_server: String,
    /// List the groups.
    #[arg(long)]
    list: bool,
    /// Describe --group: offsets, lag and members.
    #[arg(long)]
    describe: bool,
    /// Reset --group's offsets.
    #[arg(long)]
    reset_offsets: bool,
    /// Delete --group.
    #[arg(long)]
    delete: bool,
    /// The group.
    #[arg(long)]
    group: Option<String>,
}

pub async fn run(args: GroupsArgs) -> Result<()> {
    let mut client = connect(&args.bootstrap_server).await?;
    let advertised = client.advertised_apis().await?;
    let missing: Vec<String> = GROUP_APIS
        .iter()
        .filter(|key| !advertised.iter().any(|api| api.api_key == **key as i16))
        .map(|key| format!("{key:?}"))
        .collect();
    if !missing.is_empty() {
        return Err(ToolError::new(format!(
            "consumer-groups needs the consumer-groups API, which the broker at {} does not \
             serve (missing from its ApiVersions answer: {})",
            args.bootstrap_server,
            missing.join(", ")
        )));
    }
    Err(ToolError::new(
        "the broker serves the consumer-groups API, but sluice consumer-groups is not \
         implemented in this version of the CLI yet",
    ))
}
