//! `sluice-perf verify` on the command line: flags, the verdict line, `--json`.

use std::time::Duration;

use sluice_net::client::Acks;

use crate::report::JsonObject;
use crate::verify::checker::{Examples, RecordId, Verdict};
use crate::verify::consumer::ConsumeStats;
use crate::verify::fault::{parse_pids, FailoverStats, Fault, FaultSignal, FaultTarget};
use crate::verify::limits::EXAMPLES_PRINTED_MAX;
use crate::verify::{new_run_id, run, Latency, Options, Report, TopicLayout, VerifyError};

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// Broker(s) to bootstrap from, host:port[,host:port...].
    #[arg(long = "bootstrap-server")]
    bootstrap_server: String,
    /// Topic to write and check (created if missing when --partitions or
    /// --replication-factor is given).
    #[arg(long)]
    topic: String,
    /// How long to produce: 60s, 500ms, 2m, or plain seconds.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Concurrent producers; each writes every partition.
    #[arg(long, default_value_t = 4)]
    producers: u32,
    /// 0, 1 or all.
    #[arg(long, default_value = "all", value_parser = Acks::parse)]
    acks: Acks,
    /// Idempotent producers (InitProducerId, sequence numbers): needs --acks all.
    #[arg(long)]
    idempotent: bool,
    /// Partitions of the topic if it has to be created (else the broker's default).
    #[arg(long)]
    partitions: Option<i32>,
    /// Replication factor of the topic if it has to be created (else the broker's
    /// default).
    #[arg(long = "replication-factor")]
    replication_factor: Option<i16>,
    /// Bytes per record value (the record's identity pads up to it).
    #[arg(long = "record-size", default_value_t = 100)]
    record_size: usize,
    /// Records per second over all producers; -1 for no limit.
    #[arg(long, default_value_t = 10_000.0, allow_negative_numbers = true)]
    throughput: f64,
    /// Kafka's batch.size.
    #[arg(long = "batch-size", default_value_t = 16_384)]
    batch_size: usize,
    /// Kafka's max.in.flight.requests.per.connection, per producer and partition.
    #[arg(long = "max-in-flight", default_value_t = crate::verify::limits::IN_FLIGHT_BATCHES_MAX)]
    max_in_flight: usize,
    /// Kafka's delivery.timeout.ms: how long a record is retried.
    #[arg(long = "delivery-timeout-ms", default_value_t = crate::verify::limits::DELIVERY_TIMEOUT_MS_DEFAULT)]
    delivery_timeout_ms: u64,
    /// Kafka's request.timeout.ms: how long an answer may take.
    #[arg(long = "request-timeout-ms", default_value_t = crate::verify::limits::REQUEST_TIMEOUT_MS_DEFAULT)]
    request_timeout_ms: u64,
    /// Seed of the record filler and retry jitter (printed when chosen at random).
    #[arg(long)]
    seed: Option<u64>,
    /// Print the figures and examples as one JSON object on stdout (the verdict line
    /// then goes to stderr).
    #[arg(long)]
    json: bool,
    /// Strike the leader of --fault-partition during the run: kill (SIGKILL) or term
    /// (SIGTERM, a controlled shutdown). Needs --broker-pids; reports failover_ms, the
    /// time from the signal to the first acknowledgement from a new leader.
    #[arg(long, value_parser = FaultSignal::parse, requires = "broker_pids")]
    fault: Option<FaultSignal>,
    /// When to strike, from the start of the run.
    #[arg(long = "fault-after", default_value = "10s", value_parser = parse_duration)]
    fault_after: Duration,
    /// Whom to strike: leader (the leader of --fault-partition) or controller (the
    /// active controller, as DescribeQuorum names it, whatever it leads).
    #[arg(long = "fault-target", default_value = "leader", value_parser = FaultTarget::parse)]
    fault_target: FaultTarget,
    /// Whose leader is struck.
    #[arg(long = "fault-partition", default_value_t = 0)]
    fault_partition: i32,
    /// NODE=PID[,NODE=PID...]: the process of each broker that may be struck.
    #[arg(long = "broker-pids", value_parser = |t: &str| parse_pids(t).map(BrokerPids))]
    broker_pids: Option<BrokerPids>,
    /// Also consume the topic during the run as a member of this consumer group: reports
    /// the time from the fault to the next record read and the longest gap between reads.
    #[arg(long = "consumer-group")]
    consumer_group: Option<String>,
}

/// `--broker-pids` parsed (one value: clap would take a `Vec` for many).
#[derive(Debug, Clone)]
struct BrokerPids(Vec<(i32, i32)>);

/// `60s`, `500ms`, `2m`, `1h` or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || format!("duration {text:?}: expected e.g. 60s, 500ms, 2m, 1h");
    let number: u64 = number.parse().map_err(|_| bad())?;
    let millis = match unit {
        "ms" => Some(number),
        "" | "s" => number.checked_mul(1000),
        "m" => number.checked_mul(60_000),
        "h" => number.checked_mul(3_600_000),
        _ => return Err(bad()),
    };
    millis.map(Duration::from_millis).ok_or_else(bad)
}

impl VerifyArgs {
    fn options(&self) -> Options {
        let mut options = Options::new(&self.bootstrap_server, &self.topic);
        options.duration = self.duration;
        options.producers = self.producers;
        options.acks = self.acks;
        options.idempotent = self.idempotent;
        let wants_topic = self.partitions.is_some() || self.replication_factor.is_some();
        options.create = wants_topic.then(|| TopicLayout {
            partitions: self.partitions.unwrap_or(-1),
            replication_factor: self.replication_factor.unwrap_or(-1),
        });
        options.record_size_bytes = self.record_size;
        options.throughput = (self.throughput != -1.0).then_some(self.throughput);
        options.batch_size_bytes = self.batch_size;
        options.in_flight_batches_max = self.max_in_flight;
        options.delivery_timeout = Duration::from_millis(self.delivery_timeout_ms);
        options.request_timeout = Duration::from_millis(self.request_timeout_ms);
        options.seed = self.seed.unwrap_or_else(new_run_id);
        options.progress = true;
        options.consumer_group = self.consumer_group.clone();
        options.fault = self.fault.map(|signal| Fault {
            signal,
            target: self.fault_target,
            after: self.fault_after,
            partition: self.fault_partition,
            pids: self.broker_pids.clone().map(|p| p.0).unwrap_or_default(),
        });
        options
    }
}

/// Runs `verify` and prints what it found; an `Err` when it found anomalies or could
/// not complete.
pub async fn run_cli(args: VerifyArgs) -> Result<(), VerifyError> {
    let options = args.options();
    options.validate()?;
    eprintln!(
        "verify: {} producers on {} for {} ms, acks={}{}, seed {}",
        options.producers,
        options.topic,
        options.duration.as_millis(),
        match args.acks {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        },
        if options.idempotent {
            ", idempotent"
        } else {
            ""
        },
        options.seed
    );
    let report = run(&options).await?;
    if report.produce.stopped_at_bound {
        eprintln!(
            "verify: generation stopped at {} records (SENT_RECORDS_MAX) before --duration",
            report.produce.records
        );
    }
    let line = report.verdict_line();
    if args.json {
        eprintln!("{line}");
        println!("{}", report.json().finish());
    } else {
        print_examples(&report, &options.topic);
        println!("{line}");
    }
    if report.verdict.is_ok() {
        return Ok(());
    }
    Err(VerifyError(format!(
        "verify found {} anomalies in {}",
        report.verdict.anomalies(),
        options.topic
    )))
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn show(id: RecordId) -> String {
    format!("producer {} seq {}", id.producer, id.seq)
}

impl Report {
    /// `verify: OK acked=… lost=0 …`: the run's verdict on one line.
    pub fn verdict_line(&self) -> String {
        let v = &self.verdict;
        let optional = |value: Option<f64>| value.map_or("n/a".to_string(), |v| format!("{v:.2}"));
        let latency = self.produce.latency;
        let quantile = |pick: fn(&Latency) -> f64| optional(latency.as_ref().map(pick));
        format!(
            "verify: {} acked={} lost={} duplicated={} reordered={} disagreeing={} phantom={} \
             unacked_present={} unacked={} foreign={} unavailable_max_ms={} \
             partition_unavailable_max_ms={} latency_p50_ms={} latency_p99_ms={} latency_p999_ms={}{}{}",
            if v.is_ok() { "OK" } else { "FAIL" },
            v.acked,
            v.lost,
            v.duplicated,
            v.reordered,
            v.disagreeing,
            v.phantom,
            v.unacked_present,
            v.unacked,
            v.foreign,
            optional(self.produce.unavailable_max.map(ms)),
            optional(self.produce.partition_unavailable_max.map(|(_, gap)| ms(gap))),
            quantile(|l| l.p50_ms),
            quantile(|l| l.p99_ms),
            quantile(|l| l.p999_ms),
            self.produce.failover.as_ref().map_or(String::new(), failover_words),
            self.consume.as_ref().map_or(String::new(), consume_words),
        )
    }

    /// Every count, the produce figures and the examples of each anomaly.
    pub fn json(&self) -> JsonObject {
        let v = &self.verdict;
        let p = &self.produce;
        let mut object = JsonObject::default()
            .string("verdict", if v.is_ok() { "OK" } else { "FAIL" })
            .string("run_id", &format!("{:016x}", self.run_id))
            .string("seed", &self.seed.to_string())
            .number("partitions", self.partitions as f64)
            .number("records", p.records as f64)
            .number("acked", v.acked as f64)
            .number("unknown", p.unknown as f64)
            .number("failed", p.failed as f64)
            .number("unacked", v.unacked as f64)
            .number("read", v.read as f64)
            .number("foreign", v.foreign as f64)
            .number("lost", v.lost as f64)
            .number("duplicated", v.duplicated as f64)
            .number("reordered", v.reordered as f64)
            .number("disagreeing", v.disagreeing as f64)
            .number("phantom", v.phantom as f64)
            .number("unacked_present", v.unacked_present as f64)
            .number("resent_batches", p.resent_batches as f64)
            .number("reconnects", p.reconnects as f64)
            .number("elapsed_ms", ms(p.elapsed));
        if let Some(gap) = p.unavailable_max {
            object = object
                .number("unavailable_max_ms", ms(gap))
                .number("unavailable_from_ms", ms(p.unavailable_from));
        }
        if let Some((partition, gap)) = p.partition_unavailable_max {
            object = object
                .number("partition_unavailable_max_ms", ms(gap))
                .number("partition_unavailable_partition", f64::from(partition));
        }
        if let Some(l) = p.latency {
            object = object
                .number("latency_avg_ms", l.avg_ms)
                .number("latency_p50_ms", l.p50_ms)
                .number("latency_p95_ms", l.p95_ms)
                .number("latency_p99_ms", l.p99_ms)
                .number("latency_p999_ms", l.p999_ms)
                .number("latency_max_ms", l.max_ms);
        }
        if let Some(f) = &p.failover {
            object = failover_json(object, f);
        }
        if let Some(c) = &self.consume {
            object = consume_json(object, c);
        }
        object.object("examples", examples_json(&v.examples))
    }
}

/// ` fault=kill node=2 failover_ms=812.00 …` at the end of the verdict line.
fn failover_words(f: &FailoverStats) -> String {
    // "never": a partition it led was not served again; "n/a": it led none.
    let none = if f.partitions == 0 { "n/a" } else { "never" };
    let optional = |d: Option<Duration>| d.map_or(none.to_string(), |d| format!("{:.2}", ms(d)));
    format!(
        " fault={} target={} node={} failover_ms={} failover_first_ms={} \
         failover_partitions={}/{}",
        f.signal.name(),
        f.target.name(),
        f.node,
        optional(f.all),
        optional(f.first),
        f.recovered,
        f.partitions
    )
}

/// ` consumed=… consume_gap_max_ms=… consume_after_fault_ms=…` at the end of the line.
fn consume_words(c: &ConsumeStats) -> String {
    let optional = |d: Option<Duration>| d.map_or("n/a".to_string(), |d| format!("{:.2}", ms(d)));
    let after = c.after_fault.as_ref().map_or(String::new(), |a| {
        format!(
            " consume_after_fault_ms={} consume_failover_ms={} consume_failover_partitions={}/{}",
            optional(a.first),
            optional(a.all),
            a.recovered,
            a.partitions
        )
    });
    format!(
        " consumed={} consume_first_ms={} consume_gap_max_ms={} \
         consume_partition_gap_max_ms={}{after}",
        c.read,
        optional(c.first_read),
        optional(c.gap_max),
        optional(c.partition_gap_max.map(|(_, gap)| gap)),
    )
}

fn consume_json(object: JsonObject, c: &ConsumeStats) -> JsonObject {
    let mut object = object
        .string("consumer_group", &c.group)
        .number("consumed", c.read as f64)
        .number("consume_joins", c.joins as f64)
        .number("consume_commits", c.commits as f64)
        .number("consume_member_errors", c.member_errors as f64)
        .number("consume_fetch_errors", c.fetch_errors as f64);
    let mut timed = |key: &str, d: Option<Duration>| {
        if let Some(d) = d {
            object = std::mem::take(&mut object).number(key, ms(d));
        }
    };
    timed("consume_first_ms", c.first_read);
    timed("consume_gap_max_ms", c.gap_max);
    timed("consume_gap_from_ms", c.gap_max.map(|_| c.gap_from));
    timed(
        "consume_partition_gap_max_ms",
        c.partition_gap_max.map(|(_, gap)| gap),
    );
    if let Some(a) = &c.after_fault {
        timed("consume_after_fault_ms", a.first);
        timed("consume_failover_ms", a.all);
        object = object
            .number("consume_failover_partitions", a.partitions as f64)
            .number("consume_failover_recovered", a.recovered as f64);
    }
    object
}

fn failover_json(object: JsonObject, f: &FailoverStats) -> JsonObject {
    let object = object
        .string("fault", f.signal.name())
        .string("fault_target", f.target.name())
        .number("fault_node", f64::from(f.node))
        .number("fault_at_ms", ms(f.struck_at))
        .number("failover_partitions", f.partitions as f64)
        .number("failover_recovered", f.recovered as f64);
    let object = match f.first {
        Some(first) => object.number("failover_first_ms", ms(first)),
        None => object,
    };
    match f.all {
        Some(all) => object.number("failover_ms", ms(all)),
        None => object,
    }
}

fn id_json(id: RecordId) -> JsonObject {
    JsonObject::default()
        .number("producer", f64::from(id.producer))
        .number("seq", id.seq as f64)
}

fn place(object: JsonObject, partition: i32, offset: i64) -> JsonObject {
    object
        .number("partition", f64::from(partition))
        .number("offset", offset as f64)
}

fn examples_json(e: &Examples) -> JsonObject {
    let found = |f: &crate::verify::checker::Found| place(id_json(f.id), f.partition, f.offset);
    JsonObject::default()
        .array(
            "lost",
            e.lost
                .iter()
                .map(|l| place(id_json(l.id), l.partition, l.offset)),
        )
        .array(
            "duplicated",
            e.duplicated.iter().map(|d| {
                let at =
                    d.at.iter()
                        .map(|&(p, o)| place(JsonObject::default(), p, o));
                id_json(d.id)
                    .number("copies", d.copies as f64)
                    .array("at", at)
            }),
        )
        .array(
            "reordered",
            e.reordered.iter().map(|r| {
                place(id_json(r.id), r.partition, r.offset).object(
                    "after",
                    id_json(r.after).number("offset", r.after_offset as f64),
                )
            }),
        )
        .array(
            "disagreeing",
            e.disagreeing.iter().map(|d| {
                let object = place(JsonObject::default(), d.partition, d.offset)
                    .object("expected", id_json(d.expected));
                match d.found {
                    Some(found) => object.object("found", id_json(found)),
                    None => object.raw("found", "null"),
                }
            }),
        )
        .array("phantom", e.phantom.iter().map(found))
        .array("unacked_present", e.unacked_present.iter().map(found))
}

/// A few lines per anomaly kind, on stderr.
fn print_examples(report: &Report, topic: &str) {
    let Verdict { examples: e, .. } = &report.verdict;
    let at = |partition: i32, offset: i64| format!("{topic}-{partition} offset {offset}");
    let mut lines = Vec::new();
    for l in e.lost.iter().take(EXAMPLES_PRINTED_MAX) {
        let line = format!(
            "lost: {} acknowledged at {}",
            show(l.id),
            at(l.partition, l.offset)
        );
        lines.push(line);
    }
    for d in e.duplicated.iter().take(EXAMPLES_PRINTED_MAX) {
        let places: Vec<String> = d.at.iter().map(|&(p, o)| at(p, o)).collect();
        lines.push(format!(
            "duplicated: {} {} times: {}",
            show(d.id),
            d.copies,
            places.join(", ")
        ));
    }
    for r in e.reordered.iter().take(EXAMPLES_PRINTED_MAX) {
        lines.push(format!(
            "reordered: {} at {} after {} at offset {}",
            show(r.id),
            at(r.partition, r.offset),
            show(r.after),
            r.after_offset
        ));
    }
    for d in e.disagreeing.iter().take(EXAMPLES_PRINTED_MAX) {
        let found = d.found.map_or("no record of this run".to_string(), show);
        lines.push(format!(
            "disagreeing: {} holds {found}, expected {}",
            at(d.partition, d.offset),
            show(d.expected)
        ));
    }
    for f in e.phantom.iter().take(EXAMPLES_PRINTED_MAX) {
        lines.push(format!(
            "phantom: {} at {} was never sent",
            show(f.id),
            at(f.partition, f.offset)
        ));
    }
    for line in lines {
        eprintln!("verify: {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::checker::Lost;
    use crate::verify::ProduceStats;

    fn report(verdict: Verdict, latency: Option<Latency>) -> Report {
        let produce = ProduceStats {
            elapsed: Duration::from_secs(2),
            records: 3,
            acked: verdict.acked,
            unknown: verdict.unacked,
            failed: 0,
            resent_batches: 0,
            reconnects: 0,
            unavailable_max: latency.map(|_| Duration::from_millis(12)),
            unavailable_from: Duration::ZERO,
            partition_unavailable_max: latency.map(|_| (0, Duration::from_millis(7))),
            latency,
            stopped_at_bound: false,
            failover: None,
        };
        Report {
            run_id: 0xab,
            seed: 7,
            partitions: 1,
            produce,
            consume: None,
            verdict,
        }
    }

    #[test]
    fn verdict_line_and_json_name_every_count() {
        let latency = Latency {
            avg_ms: 1.0,
            p50_ms: 1.0,
            p95_ms: 2.0,
            p99_ms: 3.0,
            p999_ms: 4.0,
            max_ms: 5.0,
        };
        let clean = Verdict {
            acked: 3,
            read: 3,
            ..Verdict::default()
        };
        let line = report(clean.clone(), Some(latency)).verdict_line();
        assert!(
            line.starts_with("verify: OK acked=3 lost=0 duplicated=0 reordered=0 "),
            "{line}"
        );
        assert!(
            line.contains(
                " unavailable_max_ms=12.00 partition_unavailable_max_ms=7.00 latency_p50_ms=1.00 "
            ),
            "{line}"
        );
        let id = RecordId {
            producer: 1,
            seq: 2,
        };
        let mut lossy = clean;
        lossy.lost = 1;
        lossy.examples.lost.push(Lost {
            id,
            partition: 0,
            offset: 9,
        });
        let unanswered = report(lossy, None);
        let line = unanswered.verdict_line();
        assert!(line.starts_with("verify: FAIL acked=3 lost=1 "), "{line}");
        assert!(
            line.ends_with(
                "unavailable_max_ms=n/a partition_unavailable_max_ms=n/a latency_p50_ms=n/a \
                 latency_p99_ms=n/a latency_p999_ms=n/a"
            ),
            "{line}"
        );
        let json = unanswered.json().finish();
        assert!(
            json.starts_with(r#"{"verdict": "FAIL", "run_id": "00000000000000ab", "seed": "7""#),
            "{json}"
        );
        assert!(json.contains(r#""lost": 1, "#), "{json}");
        assert!(!json.contains("latency_p50_ms"), "{json}");
        let lost = r#""lost": [{"producer": 1, "seq": 2, "partition": 0, "offset": 9}]"#;
        assert!(json.contains(lost), "{json}");
    }

    #[test]
    fn a_struck_run_reports_its_failover() {
        let clean = Verdict {
            acked: 3,
            read: 3,
            ..Verdict::default()
        };
        let mut struck = report(clean, None);
        struck.produce.failover = Some(FailoverStats {
            signal: FaultSignal::Kill,
            target: FaultTarget::Leader,
            node: 2,
            struck_at: Duration::from_secs(5),
            partitions: 2,
            recovered: 1,
            first: Some(Duration::from_millis(812)),
            all: None,
        });
        let line = struck.verdict_line();
        let words = " fault=kill target=leader node=2 failover_ms=never failover_first_ms=812.00 \
                     failover_partitions=1/2";
        assert!(line.ends_with(words), "{line}");
        let json = struck.json().finish();
        let fault =
            r#""fault": "kill", "fault_target": "leader", "fault_node": 2, "fault_at_ms": 5000"#;
        assert!(json.contains(fault), "{json}");
        assert!(json.contains(r#""failover_first_ms": 812, "#), "{json}");
        assert!(!json.contains(r#""failover_ms""#), "{json}");
    }

    #[test]
    fn a_consumed_run_reports_its_reads() {
        let clean = Verdict {
            acked: 3,
            read: 3,
            ..Verdict::default()
        };
        let mut consumed = report(clean, None);
        let ms = Duration::from_millis;
        consumed.consume = Some(ConsumeStats {
            group: "g".into(),
            read: 3,
            first_read: Some(ms(40)),
            gap_max: Some(ms(1500)),
            gap_from: ms(5000),
            partition_gap_max: Some((1, ms(1600))),
            joins: 1,
            commits: 4,
            member_errors: 0,
            fetch_errors: 2,
            after_fault: Some(crate::verify::ReadsAfterFault {
                first: Some(ms(12)),
                partitions: 1,
                recovered: 0,
                all: None,
            }),
        });
        let line = consumed.verdict_line();
        let words = " consumed=3 consume_first_ms=40.00 consume_gap_max_ms=1500.00 \
                     consume_partition_gap_max_ms=1600.00 consume_after_fault_ms=12.00 \
                     consume_failover_ms=n/a consume_failover_partitions=0/1";
        assert!(line.ends_with(words), "{line}");
        let json = consumed.json().finish();
        for key in [
            r#""consumer_group": "g""#,
            r#""consume_gap_max_ms": 1500"#,
            r#""consume_after_fault_ms": 12"#,
            r#""consume_fetch_errors": 2"#,
        ] {
            assert!(json.contains(key), "{key} in {json}");
        }
        assert!(!json.contains("consume_failover_ms"), "{json}");
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in [
            "",
            "s",
            "1.5s",
            "-1s",
            "10 parsecs",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
