//! sluice-broker: the daemon `sluiced`. Shards (thread-per-core), partition→shard routing,
//! one handler module per Kafka API, config, startup and shutdown.
//!
//! Architecture Invariant: only this crate knows about shards and threads.

pub mod append;
pub mod authorized_operations;
pub mod checkpoint;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod controller;
pub mod dynamic_config;
pub mod group;
pub mod handlers;
pub mod iowq;
pub mod log_dir_failure;
pub mod log_limit;
pub mod metadata;
pub mod metrics;
pub mod msg;
pub mod ops;
pub mod producer_ids;
pub mod replica;
pub mod retention;
pub mod runtime;
pub mod shard;
pub mod startup;
pub mod systemd;
pub mod throttle;
pub mod topic_config;
