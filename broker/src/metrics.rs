//! Prometheus metrics, served by the broker itself on `metrics.listener`.
//!
//! Counters live on each shard in plain `Cell`s (only that shard's thread touches them, so
//! the hot path takes no lock and no atomic); a scrape asks every shard for a snapshot over
//! its bounded inbox, sums them, and renders Prometheus' text format. Per-partition gauges
//! (log size, log end offset, replica state) are read on the owning shard at scrape time.
//!
//! The `metrics` crate's global recorder would put shared atomics on the hot path; this
//! per-shard layout is why we render the text format ourselves.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

/// Upper bounds (seconds) of the request latency histogram buckets.
pub const LATENCY_BUCKETS_S: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
/// Distinct API keys tracked (Kafka's keys are small integers).
pub const API_KEYS_MAX: usize = 128;
/// Bytes of an HTTP request to the metrics listener we read at most.
pub const METRICS_REQUEST_BYTES_MAX: usize = 8192;

/// Per-topic traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicTraffic {
    pub bytes_in: u64,
    pub records_in: u64,
    pub bytes_out: u64,
    pub records_out: u64,
}

/// Requests of one API: count, latency sum and histogram.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ApiStats {
    pub count: u64,
    pub latency_sum_s: f64,
    /// Non-cumulative counts per bucket of `LATENCY_BUCKETS_S`, plus one for +Inf.
    pub buckets: [u64; LATENCY_BUCKETS_S.len() + 1],
}

impl ApiStats {
    fn observe(&mut self, latency: Duration) {
        let s = latency.as_secs_f64();
        self.count += 1;
        self.latency_sum_s += s;
        let bucket = LATENCY_BUCKETS_S
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(LATENCY_BUCKETS_S.len());
        self.buckets[bucket] += 1;
    }

    fn add(&mut self, other: &ApiStats) {
        self.count += other.count;
        self.latency_sum_s += other.latency_sum_s;
        for (a, b) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *a += b;
        }
    }
}

/// Replication events counted on a shard (cluster mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicationCounts {
    /// ISR changes this broker's leaders proposed and the controller committed (Kafka's
    /// `IsrShrinksPerSec` / `IsrExpandsPerSec`).
    pub isr_shrinks: u64,
    pub isr_expands: u64,
    /// Leaderships this broker took at a new leader epoch, from the ISR or not.
    pub elections_clean: u64,
    pub elections_unclean: u64,
}

impl ReplicationCounts {
    fn add(&mut self, o: &ReplicationCounts) {
        self.isr_shrinks += o.isr_shrinks;
        self.isr_expands += o.isr_expands;
        self.elections_clean += o.elections_clean;
        self.elections_unclean += o.elections_unclean;
    }
}

/// How a leader was elected: from the ISR, or (`unclean.leader.election.enable`) not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Election {
    Clean,
    Unclean,
}

/// One shard's counters. Lives on that shard only.
#[derive(Default)]
pub struct ShardMetrics {
    topics: RefCell<HashMap<Arc<str>, TopicTraffic>>,
    apis: RefCell<BTreeMap<i16, ApiStats>>,
    connections_open: Cell<u64>,
    connections_accepted: Cell<u64>,
    replication: Cell<ReplicationCounts>,
}

impl ShardMetrics {
    pub fn produced(&self, topic: &Arc<str>, bytes: u64, records: u64) {
        let mut topics = self.topics.borrow_mut();
        let t = topics.entry(topic.clone()).or_default();
        t.bytes_in += bytes;
        t.records_in += records;
    }

    pub fn fetched(&self, topic: &Arc<str>, bytes: u64, records: u64) {
        let mut topics = self.topics.borrow_mut();
        let t = topics.entry(topic.clone()).or_default();
        t.bytes_out += bytes;
        t.records_out += records;
    }

    pub fn request(&self, api_key: i16, latency: Duration) {
        let mut apis = self.apis.borrow_mut();
        if apis.len() < API_KEYS_MAX || apis.contains_key(&api_key) {
            apis.entry(api_key).or_default().observe(latency);
        }
    }

    pub fn connection_opened(&self) {
        self.connections_open.set(self.connections_open.get() + 1);
        self.connections_accepted
            .set(self.connections_accepted.get() + 1);
    }

    /// A committed ISR change of a partition this broker leads, from `before` to `after`
    /// members.
    pub fn isr_changed(&self, before: usize, after: usize) {
        let mut r = self.replication.get();
        match after.cmp(&before) {
            std::cmp::Ordering::Less => r.isr_shrinks += 1,
            std::cmp::Ordering::Greater => r.isr_expands += 1,
            std::cmp::Ordering::Equal => return,
        }
        self.replication.set(r);
    }

    pub fn leader_elected(&self, election: Election) {
        let mut r = self.replication.get();
        match election {
            Election::Clean => r.elections_clean += 1,
            Election::Unclean => r.elections_unclean += 1,
        }
        self.replication.set(r);
    }

    pub fn connection_closed(&self) {
        self.connections_open
            .set(self.connections_open.get().saturating_sub(1));
    }

    /// A copy to send to the scraping shard.
    pub fn snapshot(&self, partitions: Vec<PartitionGauges>) -> MetricsSnapshot {
        MetricsSnapshot {
            topics: self
                .topics
                .borrow()
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            apis: self.apis.borrow().clone(),
            connections_open: self.connections_open.get(),
            connections_accepted: self.connections_accepted.get(),
            replication: self.replication.get(),
            partitions,
        }
    }
}

/// Gauges of one partition, read on its owning shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionGauges {
    pub topic: String,
    pub partition: i32,
    pub log_size_bytes: u64,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub replicas: u32,
    pub in_sync_replicas: u32,
    /// Offsets cut to follow leaders elected uncleanly.
    pub unclean_truncated_offsets: u64,
    /// On its leader: the ISR is below `min.insync.replicas`.
    pub under_min_isr: bool,
    /// On its leader, over its followers: the most offsets one is behind the log end and
    /// the longest time one has not been caught up (`None` elsewhere, or no followers).
    pub follower_lag: Option<(i64, Duration)>,
}

/// What one shard reports to a scrape (plain data: it crosses shards).
#[derive(Debug, Clone, Default)]
pub struct MetricsSnapshot {
    pub topics: BTreeMap<String, TopicTraffic>,
    pub apis: BTreeMap<i16, ApiStats>,
    pub connections_open: u64,
    pub connections_accepted: u64,
    pub replication: ReplicationCounts,
    pub partitions: Vec<PartitionGauges>,
}

impl MetricsSnapshot {
    /// Sums every shard's snapshot.
    pub fn sum(shards: Vec<MetricsSnapshot>) -> MetricsSnapshot {
        let mut total = MetricsSnapshot::default();
        for s in shards {
            for (topic, t) in s.topics {
                let e = total.topics.entry(topic).or_default();
                e.bytes_in += t.bytes_in;
                e.records_in += t.records_in;
                e.bytes_out += t.bytes_out;
                e.records_out += t.records_out;
            }
            for (key, a) in s.apis {
                total.apis.entry(key).or_default().add(&a);
            }
            total.connections_open += s.connections_open;
            total.connections_accepted += s.connections_accepted;
            total.replication.add(&s.replication);
            total.partitions.extend(s.partitions);
        }
        total
            .partitions
            .sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        total
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self, api_name: impl Fn(i16) -> String) -> String {
        let mut out = String::new();
        self.render_topics(&mut out);
        self.render_apis(&mut out, api_name);
        self.render_partitions(&mut out);
        self.render_replication(&mut out);
        let _ = writeln!(
            out,
            "# HELP sluice_connections Client connections open now."
        );
        let _ = writeln!(
            out,
            "# TYPE sluice_connections gauge\nsluice_connections {}",
            self.connections_open
        );
        let _ = writeln!(
            out,
            "# HELP sluice_connections_accepted_total Client connections accepted."
        );
        let _ =
            writeln!(out, "# TYPE sluice_connections_accepted_total counter\nsluice_connections_accepted_total {}", self.connections_accepted);
        out
    }

    fn render_topics(&self, out: &mut String) {
        type Field = fn(&TopicTraffic) -> u64;
        let series: [(&str, &str, Field); 4] = [
            (
                "sluice_topic_bytes_in_total",
                "Record bytes appended per topic.",
                |t| t.bytes_in,
            ),
            (
                "sluice_topic_records_in_total",
                "Records appended per topic.",
                |t| t.records_in,
            ),
            (
                "sluice_topic_bytes_out_total",
                "Record bytes sent to fetchers per topic.",
                |t| t.bytes_out,
            ),
            (
                "sluice_topic_records_out_total",
                "Records sent to fetchers per topic (whole batches).",
                |t| t.records_out,
            ),
        ];
        for (name, help, field) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (topic, t) in &self.topics {
                let _ = writeln!(out, "{name}{{topic=\"{}\"}} {}", escape(topic), field(t));
            }
        }
    }

    fn render_apis(&self, out: &mut String, api_name: impl Fn(i16) -> String) {
        let name = "sluice_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Request handling time per Kafka API.\n# TYPE {name} histogram"
        );
        for (key, a) in &self.apis {
            let api = escape(&api_name(*key));
            let mut cumulative = 0;
            for (i, bound) in LATENCY_BUCKETS_S.iter().enumerate() {
                cumulative += a.buckets[i];
                let _ = writeln!(
                    out,
                    "{name}_bucket{{api=\"{api}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{api=\"{api}\",le=\"+Inf\"}} {}",
                a.count
            );
            let _ = writeln!(out, "{name}_sum{{api=\"{api}\"}} {}", a.latency_sum_s);
            let _ = writeln!(out, "{name}_count{{api=\"{api}\"}} {}", a.count);
        }
    }

    fn render_partitions(&self, out: &mut String) {
        type Gauge = fn(&PartitionGauges) -> i64;
        let gauges: [(&str, &str, Gauge); 4] = [
            (
                "sluice_log_size_bytes",
                "Bytes in the partition's segments.",
                |p| p.log_size_bytes as i64,
            ),
            (
                "sluice_log_start_offset",
                "The partition's log start offset.",
                |p| p.log_start_offset,
            ),
            (
                "sluice_log_end_offset",
                "The partition's log end offset.",
                |p| p.log_end_offset,
            ),
            (
                "sluice_unclean_truncated_offsets",
                "Offsets this replica cut to follow a leader elected uncleanly (lost records, some acknowledged).",
                |p| p.unclean_truncated_offsets as i64,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for p in &self.partitions {
                partition_sample(out, name, p, value(p));
            }
        }
        let under = self
            .partitions
            .iter()
            .filter(|p| p.in_sync_replicas < p.replicas)
            .count();
        let name = "sluice_under_replicated_partitions";
        let _ = writeln!(
            out,
            "# HELP {name} Partitions whose in-sync replicas are fewer than their replicas."
        );
        let _ = writeln!(out, "# TYPE {name} gauge\n{name} {under}");
    }
}

impl MetricsSnapshot {
    fn render_replication(&self, out: &mut String) {
        let r = &self.replication;
        for (name, help, value) in [
            (
                "sluice_isr_shrinks_total",
                "ISR shrinks of partitions led here, committed by the controller.",
                r.isr_shrinks,
            ),
            (
                "sluice_isr_expands_total",
                "ISR expansions of partitions led here, committed by the controller.",
                r.isr_expands,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let name = "sluice_leader_elections_total";
        let _ = writeln!(
            out,
            "# HELP {name} Leaderships this broker took at a new leader epoch, clean (from the ISR) or unclean.\n\
             # TYPE {name} counter\n{name}{{type=\"clean\"}} {}\n{name}{{type=\"unclean\"}} {}",
            r.elections_clean, r.elections_unclean
        );
        let under = self.partitions.iter().filter(|p| p.under_min_isr).count();
        let name = "sluice_under_min_isr_partitions";
        let _ = writeln!(
            out,
            "# HELP {name} Partitions led here whose ISR is below min.insync.replicas.\n\
             # TYPE {name} gauge\n{name} {under}"
        );
        type Lag = fn(&(i64, Duration)) -> String;
        let lags: [(&str, &str, Lag); 2] = [
            (
                "sluice_follower_lag_offsets",
                "On the leader: the most offsets a follower is behind the log end.",
                |l| l.0.to_string(),
            ),
            (
                "sluice_follower_lag_seconds",
                "On the leader: the longest time a follower has not been caught up.",
                |l| l.1.as_secs_f64().to_string(),
            ),
        ];
        for (name, help, value) in lags {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for p in &self.partitions {
                if let Some(lag) = &p.follower_lag {
                    partition_sample(out, name, p, value(lag));
                }
            }
        }
    }
}

/// One sample of a per-partition series.
fn partition_sample(
    out: &mut String,
    name: &str,
    p: &PartitionGauges,
    value: impl std::fmt::Display,
) {
    let (topic, partition) = (escape(&p.topic), p.partition);
    let _ = writeln!(
        out,
        "{name}{{topic=\"{topic}\",partition=\"{partition}\"}} {value}"
    );
}

/// Label values escape backslash, quote and newline.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves `GET /metrics` on `listener` (shard 0's runtime; no second runtime).
pub async fn serve(shard: std::rc::Rc<crate::shard::Shard>, listener: compio::net::TcpListener) {
    loop {
        let accepted = {
            let stop = shard.stop.listen();
            if shard.stopping.get() {
                return;
            }
            match futures_util::future::select(Box::pin(listener.accept()), stop).await {
                futures_util::future::Either::Left((r, _)) => r,
                futures_util::future::Either::Right(_) => return,
            }
        };
        match accepted {
            Ok((stream, _)) => {
                compio::runtime::spawn(scrape(shard.clone(), stream)).detach();
            }
            Err(e) => tracing::warn!("metrics listener: {e}"),
        }
    }
}

async fn scrape(shard: std::rc::Rc<crate::shard::Shard>, mut stream: compio::net::TcpStream) {
    use compio::io::{AsyncRead, AsyncWriteExt};
    let mut request = Vec::with_capacity(1024);
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < METRICS_REQUEST_BYTES_MAX
    {
        let buf = Vec::with_capacity(1024);
        let compio::BufResult(read, buf) = stream.read(buf).await;
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => request.extend_from_slice(&buf),
        }
    }
    let wanted = request.starts_with(b"GET /metrics ") || request.starts_with(b"GET / ");
    let (status, body) = if wanted {
        ("200 OK", gather(&shard).await)
    } else {
        (
            "404 Not Found",
            "only GET /metrics is served here\n".to_string(),
        )
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.into_bytes()).await;
}

async fn gather(shard: &crate::shard::Shard) -> String {
    let shards = shard.shard_count();
    let snapshots = futures_util::future::join_all((0..shards).map(|to| {
        crate::msg::call(&shard.peers, to, |reply| crate::msg::ShardMsg::Metrics {
            reply,
        })
    }))
    .await;
    let total = MetricsSnapshot::sum(snapshots.into_iter().flatten().collect());
    let mut text = total.render(
        |key| match kafka_protocol::messages::ApiKey::try_from(key) {
            Ok(api) => format!("{api:?}"),
            Err(_) => key.to_string(),
        },
    );
    render_cluster(shard, &mut text).await;
    if let Some(pool) = &shard.broker.request_pool {
        let _ = writeln!(
            text,
            "# HELP sluice_request_pool_used_bytes Bytes reserved by requests being read or \
             handled (bounded by queued.max.request.bytes).\n\
             # TYPE sluice_request_pool_used_bytes gauge\nsluice_request_pool_used_bytes {}",
            pool.used_bytes()
        );
    }
    text
}

/// This shard's snapshot, with the gauges of the partitions it owns.
pub fn local_snapshot(shard: &crate::shard::Shard) -> MetricsSnapshot {
    let partitions = shard
        .logs
        .borrow()
        .iter()
        .map(|(tp, log)| {
            let l = log.borrow();
            // The leader reports its partition's replicas and ISR (Kafka's
            // UnderReplicatedPartitions counts on leaders); a follower or a single node
            // counts itself, in sync.
            let led = crate::ops::partition_info(shard, tp)
                .and_then(|i| i.replication.clone())
                .filter(|r| r.leader == shard.broker.node_id);
            let under_min_isr = led
                .as_ref()
                .is_some_and(|r| (r.isr.len() as i32) < r.min_insync_replicas);
            let (replicas, in_sync) =
                led.map_or((1, 1), |r| (r.replicas.len() as u32, r.isr.len() as u32));
            let follower_lag = follower_lag(shard, tp, l.log_end_offset());
            PartitionGauges {
                topic: tp.topic.to_string(),
                partition: tp.partition,
                log_size_bytes: l.size_bytes(),
                log_start_offset: l.log_start_offset(),
                log_end_offset: l.log_end_offset(),
                replicas,
                in_sync_replicas: in_sync,
                unclean_truncated_offsets: l.unclean_truncated_offsets(),
                under_min_isr,
                follower_lag,
            }
        })
        .collect();
    shard.metrics.snapshot(partitions)
}

/// On the leader of `tp`: the most offsets any follower is behind `log_end` and the
/// longest time one has not been caught up (0 for a follower holding everything).
fn follower_lag(
    shard: &crate::shard::Shard,
    tp: &crate::shard::TopicPartition,
    log_end: i64,
) -> Option<(i64, Duration)> {
    let replicas = shard.replicas.borrow();
    let Some(crate::replica::Role::Leader(state)) = replicas.get(tp) else {
        return None;
    };
    let now = std::time::Instant::now();
    state.followers.values().fold(None, |max, f| {
        let behind = (log_end - f.log_end_offset.max(0)).max(0);
        let time = match behind {
            0 => Duration::ZERO,
            _ => now.saturating_duration_since(f.last_caught_up),
        };
        let (offsets, longest) = max.unwrap_or((0, Duration::ZERO));
        Some((offsets.max(behind), longest.max(time)))
    })
}

/// What shard 0 adds in a cluster: this node's metadata quorum state (Kafka's
/// `raft-metrics`) and, on the active controller, the offline partitions (Kafka's
/// `OfflinePartitionsCount` and `ActiveControllerCount`).
async fn render_cluster(shard: &crate::shard::Shard, out: &mut String) {
    let Some(handle) = &shard.broker.cluster else {
        return;
    };
    let Some(q) = handle.local_quorum_view().await else {
        return;
    };
    let active = q.leader == Some(shard.broker.node_id);
    let offline = match active {
        true => shard
            .metadata()
            .topics
            .values()
            .flat_map(|t| t.partitions.iter())
            .filter(|p| p.replication.as_ref().is_some_and(|r| r.leader < 0))
            .count(),
        false => 0,
    };
    let gauges: [(&str, &str, i64); 2] = [
        (
            "sluice_active_controller",
            "1 on the active controller (the metadata quorum's leader).",
            i64::from(active),
        ),
        (
            "sluice_offline_partitions",
            "On the active controller: partitions without a leader.",
            offline as i64,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
    let name = "sluice_raft_state";
    let _ = writeln!(
        out,
        "# HELP {name} This node's metadata quorum state (leader, follower, candidate, unattached, observer).\n\
         # TYPE {name} gauge\n{name}{{state=\"{}\"}} 1",
        escape(&q.local_state)
    );
    let mut raft: Vec<(&str, &str, i64)> = vec![
        (
            "sluice_raft_current_leader",
            "The metadata quorum's leader this node knows (-1: none).",
            q.leader.map_or(-1, i64::from),
        ),
        (
            "sluice_raft_current_epoch",
            "The metadata quorum's epoch (Raft term) this node is in.",
            q.term as i64,
        ),
    ];
    if q.local_log_end_offset >= 0 {
        raft.extend([
            (
                "sluice_raft_log_end_offset",
                "The index after this node's last metadata log entry.",
                q.local_log_end_offset,
            ),
            (
                "sluice_raft_high_watermark",
                "The index after the last metadata log entry this node applied.",
                q.high_watermark,
            ),
            (
                "sluice_raft_commit_lag_offsets",
                "Metadata log entries this node holds but has not applied (committed) yet.",
                (q.local_log_end_offset - q.high_watermark).max(0),
            ),
        ]);
    }
    for (name, help, value) in raft {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_sum_and_render() {
        let a = ShardMetrics::default();
        let b = ShardMetrics::default();
        let t: Arc<str> = "orders".into();
        a.produced(&t, 100, 3);
        b.produced(&t, 50, 2);
        b.fetched(&t, 150, 5);
        a.request(0, Duration::from_micros(300));
        b.request(0, Duration::from_millis(20));
        a.connection_opened();
        a.isr_changed(3, 2);
        b.isr_changed(2, 3);
        b.isr_changed(2, 1);
        a.leader_elected(Election::Unclean);
        let gauges = PartitionGauges {
            topic: "orders".into(),
            partition: 0,
            log_size_bytes: 150,
            log_start_offset: 0,
            log_end_offset: 5,
            replicas: 1,
            in_sync_replicas: 1,
            unclean_truncated_offsets: 0,
            under_min_isr: true,
            follower_lag: Some((7, Duration::from_millis(1500))),
        };
        let total = MetricsSnapshot::sum(vec![a.snapshot(vec![gauges]), b.snapshot(vec![])]);
        let text = total.render(|k| {
            if k == 0 {
                "Produce".into()
            } else {
                k.to_string()
            }
        });
        for line in [
            "sluice_topic_bytes_in_total{topic=\"orders\"} 150",
            "sluice_topic_records_in_total{topic=\"orders\"} 5",
            "sluice_topic_bytes_out_total{topic=\"orders\"} 150",
            "sluice_request_duration_seconds_bucket{api=\"Produce\",le=\"0.0005\"} 1",
            "sluice_request_duration_seconds_bucket{api=\"Produce\",le=\"0.025\"} 2",
            "sluice_request_duration_seconds_count{api=\"Produce\"} 2",
            "sluice_log_end_offset{topic=\"orders\",partition=\"0\"} 5",
            "sluice_under_replicated_partitions 0",
            "sluice_isr_shrinks_total 2",
            "sluice_isr_expands_total 1",
            "sluice_leader_elections_total{type=\"clean\"} 0",
            "sluice_leader_elections_total{type=\"unclean\"} 1",
            "sluice_under_min_isr_partitions 1",
            "sluice_follower_lag_offsets{topic=\"orders\",partition=\"0\"} 7",
            "sluice_follower_lag_seconds{topic=\"orders\",partition=\"0\"} 1.5",
            "sluice_connections 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
