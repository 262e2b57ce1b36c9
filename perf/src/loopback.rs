//! `sluice-perf loopback`: the machine's TCP loopback bandwidth, the ceiling of any
//! broker benchmark run on one host.
//!
//! Two processes, as a client and a broker would be: this one listens on 127.0.0.1 and
//! reads; it starts a copy of itself (`--send-to`) that connects and writes
//! `--write-size` buffers for `--seconds`. The figure is bytes received over the time
//! from the first byte to the end of the stream. Blocking `read`/`write` on plain
//! threads: the fewest syscalls and no runtime in the way. Each side's CPU seconds per GiB
//! are reported too: on loopback the sender's `write` also runs the receiving TCP stack
//! (in softirq context on the sending CPU), which is the floor under any broker's CPU cost
//! per GiB sent to a client on the same host.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::resource::{getrusage, UsageWho};

use crate::report::{JsonObject, BYTES_PER_MB};

#[derive(clap::Args, Debug)]
pub struct LoopbackArgs {
    /// How long the sender writes.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Bytes per write and per read.
    #[arg(long = "write-size", default_value_t = 1024 * 1024)]
    write_bytes: usize,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
    /// Internal: be the sending process, writing to this address.
    #[arg(long = "send-to", hide = true)]
    send_to: Option<String>,
}

/// Largest `--write-size`.
const WRITE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Longest `--seconds`.
const SECONDS_MAX: u64 = 3600;

pub fn run(args: LoopbackArgs) -> Result<(), String> {
    if !(1..=WRITE_BYTES_MAX).contains(&args.write_bytes) {
        return Err(format!("--write-size must be in 1..={WRITE_BYTES_MAX}"));
    }
    if !(1..=SECONDS_MAX).contains(&args.seconds) {
        return Err(format!("--seconds must be in 1..={SECONDS_MAX}"));
    }
    match &args.send_to {
        Some(address) => send(address, args.write_bytes, Duration::from_secs(args.seconds)),
        None => receive(&args),
    }
}

/// The sending process: writes until the time is up, then closes.
fn send(address: &str, write_bytes: usize, length: Duration) -> Result<(), String> {
    let mut stream =
        TcpStream::connect(address).map_err(|error| format!("connecting to {address}: {error}"))?;
    let buf = vec![0x5a_u8; write_bytes];
    let deadline = Instant::now() + length;
    while Instant::now() < deadline {
        stream
            .write_all(&buf)
            .map_err(|error| format!("writing to {address}: {error}"))?;
    }
    Ok(())
}

/// The receiving process: starts the sender, reads to the end, prints the rate.
fn receive(args: &LoopbackArgs) -> Result<(), String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|error| format!("binding 127.0.0.1: {error}"))?;
    let address = listener
        .local_addr()
        .map_err(|error| format!("local address: {error}"))?;
    let exe = std::env::current_exe().map_err(|error| format!("finding myself: {error}"))?;
    let mut sender = Command::new(exe)
        .arg("loopback")
        .args(["--seconds", &args.seconds.to_string()])
        .args(["--write-size", &args.write_bytes.to_string()])
        .args(["--send-to", &address.to_string()])
        .stdin(Stdio::null())
        .spawn()
        .map_err(|error| format!("starting the sending process: {error}"))?;
    let (mut stream, _) = listener
        .accept()
        .map_err(|error| format!("accepting the sender: {error}"))?;
    let mut buf = vec![0_u8; args.write_bytes];
    let mut received_bytes: u64 = 0;
    let mut first_at = None;
    loop {
        let n = stream
            .read(&mut buf)
            .map_err(|error| format!("reading: {error}"))?;
        if n == 0 {
            break;
        }
        first_at.get_or_insert_with(Instant::now);
        received_bytes += n as u64;
    }
    let elapsed = first_at.map_or(Duration::ZERO, |at| at.elapsed());
    let status = sender
        .wait()
        .map_err(|error| format!("waiting for the sender: {error}"))?;
    if !status.success() {
        return Err(format!("the sending process failed: {status}"));
    }
    let cpu = Cpu {
        sender_s: cpu_seconds(UsageWho::RUSAGE_CHILDREN)?,
        receiver_s: cpu_seconds(UsageWho::RUSAGE_SELF)?,
    };
    print(args, received_bytes, elapsed, cpu);
    Ok(())
}

/// CPU seconds (user + system) of each side over the whole run.
struct Cpu {
    sender_s: f64,
    receiver_s: f64,
}

fn cpu_seconds(who: UsageWho) -> Result<f64, String> {
    let usage = getrusage(who).map_err(|error| format!("getrusage: {error}"))?;
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    Ok(seconds(usage.user_time()) + seconds(usage.system_time()))
}

fn print(args: &LoopbackArgs, bytes: u64, elapsed: Duration, cpu: Cpu) {
    let seconds = elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
    let mb_per_sec = bytes as f64 / BYTES_PER_MB / seconds;
    let gb_per_sec = bytes as f64 / 1e9 / seconds;
    let gib = (bytes as f64 / (1u64 << 30) as f64).max(f64::MIN_POSITIVE);
    let (sender_per_gib, receiver_per_gib) = (cpu.sender_s / gib, cpu.receiver_s / gib);
    if args.json {
        let object = JsonObject::default()
            .number("bytes", bytes as f64)
            .number("elapsed_ms", seconds * 1000.0)
            .number("write_size", args.write_bytes as f64)
            .number("mb_per_sec", mb_per_sec)
            .number("gb_per_sec", gb_per_sec)
            .number("sender_cpu_s_per_gib", sender_per_gib)
            .number("receiver_cpu_s_per_gib", receiver_per_gib);
        println!("{}", object.finish());
        return;
    }
    println!(
        "{bytes} bytes in {seconds:.2} s over 127.0.0.1 (writes of {} bytes): \
         {gb_per_sec:.3} GB/s ({mb_per_sec:.2} MB/sec); CPU per GiB: sender \
         {sender_per_gib:.3} s, receiver {receiver_per_gib:.3} s",
        args.write_bytes
    );
}
