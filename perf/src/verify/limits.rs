//! Every bound of `verify`, kept together, with the assertions that tie them.

/// Most batches one producer keeps unanswered per partition: Kafka's ceiling for
/// `max.in.flight.requests.per.connection` with idempotence (the broker remembers the
/// last 5 batches of each producer to answer their retries as duplicates).
pub const IN_FLIGHT_BATCHES_MAX: usize = 5;
/// Largest `--batch-size`.
pub const BATCH_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Largest `--record-size` (Kafka's default `max.message.bytes` is about 1 MiB).
pub const RECORD_BYTES_MAX: usize = 1024 * 1024;
/// Most records one run generates: its history (and what is read back) is held in
/// memory. Generation stops there, saying so.
pub const SENT_RECORDS_MAX: u64 = 10_000_000;
/// Most records of the run one read may hold (duplicates included) before giving up.
pub const READ_RECORDS_MAX: u64 = 2 * SENT_RECORDS_MAX;
/// Most `--producers`.
pub const PRODUCERS_MAX: u32 = 256;
/// Most (producer, partition) lanes, each with its own connections.
pub const LANES_MAX: usize = 4096;
/// Most broker addresses a session remembers (bootstrap servers and Metadata's brokers).
pub const BROKERS_KNOWN_MAX: usize = 64;
/// Kafka's `retry.backoff.ms` and `retry.backoff.max.ms`: the first wait after a
/// failure, doubled per further failure up to the maximum.
pub const RETRY_BACKOFF_MS: u64 = 100;
pub const RETRY_BACKOFF_MAX_MS: u64 = 1000;
/// Kafka's producer defaults.
pub const DELIVERY_TIMEOUT_MS_DEFAULT: u64 = 120_000;
pub const REQUEST_TIMEOUT_MS_DEFAULT: u64 = 30_000;
/// Milliseconds between progress lines (stderr).
pub const PROGRESS_INTERVAL_MS: u64 = 5000;
/// Lines of each anomaly printed in text mode (the JSON carries
/// [`crate::verify::checker::EXAMPLES_MAX`]).
pub const EXAMPLES_PRINTED_MAX: usize = 5;

const _: () = {
    assert!(IN_FLIGHT_BATCHES_MAX >= 1);
    assert!(IN_FLIGHT_BATCHES_MAX <= sluice_net::client::limits::REQUESTS_IN_FLIGHT_MAX);
    assert!(RECORD_BYTES_MAX <= BATCH_BYTES_MAX);
    assert!(RETRY_BACKOFF_MS <= RETRY_BACKOFF_MAX_MS);
    assert!(REQUEST_TIMEOUT_MS_DEFAULT <= DELIVERY_TIMEOUT_MS_DEFAULT);
    assert!(SENT_RECORDS_MAX <= READ_RECORDS_MAX);
    assert!(EXAMPLES_PRINTED_MAX <= crate::verify::checker::EXAMPLES_MAX);
};
