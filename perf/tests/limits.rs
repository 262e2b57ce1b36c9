//! The machine-limit tools of `perf/bench.sh`: the sink answers the load client like a
//! broker (produce, consume, populate run against it unchanged), and loopback measures.

use sluice_testkit::{json_number, run_ok};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Runs `sluice-perf` with `args`; returns its stdout.
fn perf(args: &[&str]) -> String {
    run_ok(env!("CARGO_BIN_EXE_sluice-perf"), args).0
}

struct Sink {
    child: Child,
    address: String,
}

impl Sink {
    fn start(partitions: &str) -> Sink {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice-perf"))
            .args(["sink", "--port", "0", "--partitions", partitions])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the sink");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .trim()
            .strip_prefix("sink: listening on ")
            .unwrap_or_else(|| panic!("first line: {line:?}"))
            .to_string();
        Sink { child, address }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_load_client_runs_against_the_sink() {
    let sink = Sink::start("3");
    let produced = perf(&[
        "produce",
        "--bootstrap-server",
        &sink.address,
        "--topic",
        "t",
        "--num-records",
        "20000",
        "--record-size",
        "1024",
        "--throughput",
        "-1",
        "--producer-props",
        "acks=1",
        "batch.size=16384",
        "--json",
    ]);
    assert_eq!(json_number(&produced, "records"), 20000.0, "{produced}");
    assert_eq!(json_number(&produced, "records_failed"), 0.0, "{produced}");
    // 15 records of 1 KiB fill a 16 KiB batch.
    let batches = json_number(&produced, "batches");
    assert!((1334.0..=1400.0).contains(&batches), "{produced}");
    let consumed = perf(&[
        "consume",
        "--bootstrap-server",
        &sink.address,
        "--topic",
        "t",
        "--messages",
        "50000",
        "--json",
    ]);
    assert_eq!(json_number(&consumed, "records"), 50000.0, "{consumed}");
    let populated = perf(&[
        "populate",
        "--bootstrap-server",
        &sink.address,
        "--topics",
        "2",
        "--partitions",
        "3",
        "--json",
    ]);
    // The sink claims `--partitions` for every topic, whatever CreateTopics asked.
    assert_eq!(json_number(&populated, "records"), 6.0, "{populated}");
}

#[test]
fn loopback_measures_a_stream_between_two_processes() {
    let out = perf(&[
        "loopback",
        "--seconds",
        "1",
        "--write-size",
        "65536",
        "--json",
    ]);
    assert!(json_number(&out, "bytes") > 0.0, "{out}");
    assert!(json_number(&out, "mb_per_sec") > 0.0, "{out}");
}
