//! Every bound of the CLI, kept together.

/// How long connecting to a bootstrap broker may take before the CLI gives up
/// (an address that drops SYNs would otherwise hang for minutes).
pub const CONNECT_TIMEOUT_MS: u64 = 10_000;

/// Largest `max.request.size` the console producer accepts (the broker's default
/// `socket.request.max.bytes`): it bounds one line, one record and one batch in memory.
pub const REQUEST_BYTES_MAX: usize = 100 * 1024 * 1024;

/// Largest `batch.size` the console producer accepts.
pub const BATCH_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Largest `buffer.memory` (bytes of records waiting in all batches) it accepts.
pub const BUFFER_MEMORY_BYTES_MAX: usize = 1024 * 1024 * 1024;

/// Largest `linger.ms` and `request.timeout.ms` it accepts (a day).
pub const LINGER_MS_MAX: u64 = 24 * 3600 * 1000;
pub const REQUEST_TIMEOUT_MS_MAX: u64 = 24 * 3600 * 1000;

/// Bytes of standard input read at a time by the console producer.
pub const INPUT_CHUNK_BYTES: usize = 64 * 1024;

/// Bytes of already written standard input the console producer still reads (and sends)
/// after SIGINT/SIGTERM.
pub const STOP_DRAIN_BYTES_MAX: usize = 16 * 1024 * 1024;

/// How often a console tool waiting for input or records checks for SIGINT/SIGTERM.
pub const STOP_CHECK_MS: u64 = 100;

/// The most one compressed batch may decompress to in console-consumer and dump-log (the
/// broker's own bound for any topic).
pub const DECOMPRESSED_BATCH_BYTES_MAX: usize =
    sluice_engine::log_validator::DECOMPRESSED_BATCH_BYTES_MAX;

/// How long one console-consumer fetch may wait at the broker for records.
pub const FETCH_WAIT_MS_MAX: u64 = 500;

/// Pause before a fetch is retried after a retriable error (leader moved, topic not
/// ready).
pub const RETRY_BACKOFF_MS: u64 = 100;

/// Largest properties file (`--command-config`, `--producer.config`, …) a tool reads.
pub const PROPERTIES_FILE_BYTES_MAX: u64 = 1024 * 1024;

/// Largest `--offset-json-file` delete-records reads.
pub const OFFSET_JSON_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// `session.timeout.ms` of `console-consumer --group`: a killed CLI's partitions move
/// to the others after this long.
pub const GROUP_SESSION_TIMEOUT_MS: i32 = 10_000;

/// `heartbeat.interval.ms` of `console-consumer --group` (a third of the session).
pub const GROUP_HEARTBEAT_INTERVAL_MS: u64 = 3_000;

/// `max.poll.interval.ms` of `console-consumer --group`: how long a rebalance waits for it.
pub const GROUP_REBALANCE_TIMEOUT_MS: i32 = 60_000;

/// How long `metadata-quorum add-controller` lets the new controller catch up as a
/// learner before the quorum's leader gives up (the request's `TimeoutMs`; Kafka's admin
/// client waits `default.api.timeout.ms`, 60 s).
pub const ADD_CONTROLLER_TIMEOUT_MS: i32 = 60_000;

const _: () = {
    assert!(GROUP_HEARTBEAT_INTERVAL_MS * 3 <= GROUP_SESSION_TIMEOUT_MS as u64);
    assert!(FETCH_WAIT_MS_MAX < GROUP_HEARTBEAT_INTERVAL_MS);
    assert!(BATCH_BYTES_MAX <= REQUEST_BYTES_MAX);
    assert!(REQUEST_BYTES_MAX <= BUFFER_MEMORY_BYTES_MAX);
    assert!(STOP_CHECK_MS <= FETCH_WAIT_MS_MAX);
    assert!(RETRY_BACKOFF_MS < FETCH_WAIT_MS_MAX);
};
