//! Producer statistics: Kafka's `ProducerPerformance.Stats`, on an HDR histogram.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use sluice_net::client::ClientError;

use crate::report::{latency_histogram, BYTES_PER_MB};

/// Figures of one reporting window.
#[derive(Default)]
struct Window {
    records: u64,
    bytes: u64,
    latency_sum_us: u64,
    latency_max_us: u64,
}

pub struct Stats {
    started_at: Instant,
    histogram: Histogram<u64>,
    records: u64,
    /// Batches acknowledged (one per produce request).
    batches: u64,
    records_failed: u64,
    batches_failed: u64,
    bytes: u64,
    latency_sum_us: u64,
    latency_max_us: u64,
    window: Window,
    window_started_at: Instant,
    reporting_interval: Duration,
    /// Progress lines go to stderr when stdout carries JSON.
    progress_to_stderr: bool,
}

/// The final figures.
pub struct Total {
    pub records: u64,
    pub batches: u64,
    pub records_failed: u64,
    pub elapsed_ms: f64,
    pub records_per_sec: f64,
    pub bytes_per_sec: f64,
    pub latency_avg_ms: f64,
    pub latency_max_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
}

impl Stats {
    pub fn new(reporting_interval: Duration, progress_to_stderr: bool) -> Self {
        let histogram = latency_histogram();
        Self {
            started_at: Instant::now(),
            histogram,
            records: 0,
            batches: 0,
            records_failed: 0,
            batches_failed: 0,
            bytes: 0,
            latency_sum_us: 0,
            latency_max_us: 0,
            window: Window::default(),
            window_started_at: Instant::now(),
            reporting_interval,
            progress_to_stderr,
        }
    }

    /// Starts the clock: the first record is appended now.
    pub fn start(&mut self) {
        self.started_at = Instant::now();
        self.window_started_at = self.started_at;
    }

    pub fn started_at(&self) -> Instant {
        self.started_at
    }

    /// A batch was acknowledged now; its records were appended at `appended_us`
    /// (microseconds since the start).
    pub fn record_batch(&mut self, appended_us: &[u64], payload_bytes: u64) {
        let now_us = self.started_at.elapsed().as_micros() as u64;
        for &at in appended_us {
            let latency_us = now_us.saturating_sub(at);
            self.histogram.saturating_record(latency_us.max(1));
            self.latency_sum_us += latency_us;
            self.latency_max_us = self.latency_max_us.max(latency_us);
            self.window.latency_sum_us += latency_us;
            self.window.latency_max_us = self.window.latency_max_us.max(latency_us);
        }
        let records = appended_us.len() as u64;
        self.records += records;
        self.batches += 1;
        self.bytes += payload_bytes;
        self.window.records += records;
        self.window.bytes += payload_bytes;
        if self.window_started_at.elapsed() >= self.reporting_interval {
            self.print_window();
        }
    }

    /// Records of a failed batch; returns how many batches failed so far.
    pub fn record_failure(&mut self, records: u64) -> u64 {
        self.records_failed += records;
        self.batches_failed += 1;
        self.batches_failed
    }

    fn print_window(&mut self) {
        let elapsed_s = self.window_started_at.elapsed().as_secs_f64();
        let window = std::mem::take(&mut self.window);
        let line = format!(
            "{} records sent, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, \
             {:.1} ms max latency.",
            window.records,
            window.records as f64 / elapsed_s,
            window.bytes as f64 / BYTES_PER_MB / elapsed_s,
            window.latency_sum_us as f64 / window.records.max(1) as f64 / 1000.0,
            window.latency_max_us as f64 / 1000.0,
        );
        if self.progress_to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
        self.window_started_at = Instant::now();
    }

    pub fn total(&self) -> Total {
        let elapsed_s = self.started_at.elapsed().as_secs_f64();
        let percentile_ms = |q: f64| self.histogram.value_at_quantile(q) as f64 / 1000.0;
        Total {
            records: self.records,
            batches: self.batches,
            records_failed: self.records_failed,
            elapsed_ms: elapsed_s * 1000.0,
            records_per_sec: self.records as f64 / elapsed_s,
            bytes_per_sec: self.bytes as f64 / elapsed_s,
            latency_avg_ms: self.latency_sum_us as f64 / self.records.max(1) as f64 / 1000.0,
            latency_max_ms: self.latency_max_us as f64 / 1000.0,
            p50_ms: percentile_ms(0.5),
            p95_ms: percentile_ms(0.95),
            p99_ms: percentile_ms(0.99),
            p999_ms: percentile_ms(0.999),
        }
    }

    /// An error if any record failed.
    pub fn failure(&self) -> Result<(), ClientError> {
        if self.records_failed == 0 {
            return Ok(());
        }
        Err(ClientError::Metadata(format!(
            "{} of {} records failed",
            self.records_failed,
            self.records + self.records_failed
        )))
    }
}
