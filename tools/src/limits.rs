//! Every bound of the CLI, kept together.

/// How long connecting to a bootstrap broker may take before the CLI gives up
/// (an address that drops SYNs would otherwise hang for minutes).
pub const CONNECT_TIMEOUT_MS: u64 = 10_000;

/// Largest line the console producer accepts: Kafka's `max.request.size` default.
pub const LINE_BYTES_MAX: usize = 1024 * 1024;

/// Bytes of records per batch before the console producer sends it: Kafka's
/// `batch.size` default.
pub const BATCH_BYTES_MAX: usize = 16 * 1024;

/// The console producer's standard-input buffer: above stdin's own 8 KiB, so reads
/// bypass that one and what is buffered can be inspected.
pub const INPUT_BUFFER_BYTES: usize = 64 * 1024;

/// Lines the console producer reads (when already buffered) before sending what it has.
pub const ROUND_LINES_MAX: usize = 10_000;

/// How long one console-consumer fetch may wait at the broker for records.
pub const FETCH_WAIT_MS_MAX: u64 = 500;

/// Pause before a fetch is retried after a retriable error (leader moved, topic not
/// ready).
pub const RETRY_BACKOFF_MS: u64 = 100;

/// Largest `--offset-json-file` delete-records reads.
pub const OFFSET_JSON_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// `session.timeout.ms` of `console-consumer --group`: a killed CLI's partitions move
/// to the others after this long.
pub const GROUP_SESSION_TIMEOUT_MS: i32 = 10_000;

/// `heartbeat.interval.ms` of `console-consumer --group` (a third of the session).
pub const GROUP_HEARTBEAT_INTERVAL_MS: u64 = 3_000;

/// `max.poll.interval.ms` of `console-consumer --group`: how long a rebalance waits for it.
pub const GROUP_REBALANCE_TIMEOUT_MS: i32 = 60_000;

const _: () = {
    assert!(GROUP_HEARTBEAT_INTERVAL_MS * 3 <= GROUP_SESSION_TIMEOUT_MS as u64);
    assert!(FETCH_WAIT_MS_MAX < GROUP_HEARTBEAT_INTERVAL_MS);
    assert!(BATCH_BYTES_MAX <= LINE_BYTES_MAX);
    assert!(RETRY_BACKOFF_MS < FETCH_WAIT_MS_MAX);
};
