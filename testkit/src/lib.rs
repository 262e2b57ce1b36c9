//! Test support shared by the integration tests of every package: runs the real `sluiced`
//! on 127.0.0.1:0 with a data dir, reads the real port back from its first log lines, and
//! stops it (SIGTERM, SIGKILL, or on drop).
//!
//! [`Cluster`] runs N `sluiced` processes as a KRaft cluster (formatted with `sluice
//! storage format`, found beside `sluiced`).
//!
//! `sluiced` is a binary of the broker package, so Cargo hands its path only to the broker's
//! own tests. [`sluiced_path`] takes `$SLUICED` if set, else `sluiced` beside the running
//! test's profile directory (`target/<profile>/sluiced`, built by `cargo build -p
//! sluice-broker` or by any `cargo test --workspace`).

mod cluster;
pub mod disk;
pub mod netns;

pub use cluster::{
    create_topic_cli, sluice_path, topic_partitions, wait_for, Cluster, ClusterBuilder, Node,
    Roles, WAIT_POLL,
};
pub use disk::SmallDisk;
pub use netns::{Endpoint, Network};

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a broker may take to print its port and become ready.
pub const START_WAIT: Duration = Duration::from_secs(60);
/// How long a broker may take to exit after a signal.
pub const STOP_WAIT: Duration = Duration::from_secs(30);

/// Where the `sluiced` binary is (see the crate docs).
pub fn sluiced_path() -> PathBuf {
    binary_path("SLUICED", "sluiced", "sluice-broker")
}

/// `$<env>` if set, else `name` beside the running test's profile dir (built by `cargo
/// build -p <package>` or any `cargo test --workspace`).
fn binary_path(env: &str, name: &str, package: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("profile dir");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} not found: run `cargo build -p {package}` first (same profile and target \
         dir) or set {env}=/path/to/{name}",
        path.display()
    );
    path
}

/// A running `sluiced`.
pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    /// The data dir (`log.dirs`).
    pub dir: PathBuf,
    /// Every line the broker logged so far.
    pub log: Arc<Mutex<Vec<String>>>,
    /// Closes when the log thread has copied the last line (in a mutex: `Broker` is
    /// shared by threads).
    events: Mutex<mpsc::Receiver<LogEvent>>,
    _temp: Option<tempfile::TempDir>,
}

impl Broker {
    /// Starts `sluiced` on 127.0.0.1:0 with data in `dir` and the given extra overrides.
    pub fn start(dir: &Path, overrides: &[&str]) -> Broker {
        Broker::start_with_env(dir, overrides, &[])
    }

    /// `start` with extra environment variables (e.g. systemd's NOTIFY_SOCKET).
    pub fn start_with_env(dir: &Path, overrides: &[&str], env: &[(&str, &str)]) -> Broker {
        Broker::start_limited(dir, overrides, env, None)
    }

    /// `start` with the open-files limit (soft and hard) set to `nofile` descriptors.
    pub fn start_with_nofile(dir: &Path, overrides: &[&str], nofile: u64) -> Broker {
        Broker::start_limited(dir, overrides, &[], Some(nofile))
    }

    fn start_limited(
        dir: &Path,
        overrides: &[&str],
        env: &[(&str, &str)],
        nofile: Option<u64>,
    ) -> Broker {
        let mut args: Vec<String> = vec![
            "--override".into(),
            "listeners=PLAINTEXT://127.0.0.1:0".into(),
            "--override".into(),
            format!("log.dirs={}", dir.display()),
        ];
        for o in overrides {
            args.push("--override".into());
            args.push(o.to_string());
        }
        let mut command = Command::new(sluiced_path());
        command
            .args(&args)
            .env("SLUICE_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(n) = nofile {
            use std::os::unix::process::CommandExt;
            let limit = libc::rlimit {
                rlim_cur: n as libc::rlim_t,
                rlim_max: n as libc::rlim_t,
            };
            // SAFETY: setrlimit(2) is async-signal-safe and reads only `limit`, a copy owned
            // by the closure; nothing else runs between fork and exec.
            unsafe {
                command.pre_exec(move || match libc::setrlimit(libc::RLIMIT_NOFILE, &limit) {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                });
            }
        }
        let mut child = command.spawn().expect("spawn sluiced");
        let log = Arc::new(Mutex::new(Vec::new()));
        let events = follow_log(&mut child, log.clone(), "[sluiced]".into(), None);
        let port = match wait_ready(&events).flatten() {
            Some(port) => port,
            None => {
                let _ = child.kill();
                panic!(
                    "sluiced did not become ready; log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Broker {
            child: Some(child),
            port,
            dir: dir.to_path_buf(),
            log,
            events: Mutex::new(events),
            _temp: None,
        }
    }

    /// `start` in a fresh temporary data dir, removed when the broker is dropped.
    pub fn start_temp(overrides: &[&str]) -> Broker {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut broker = Broker::start(temp.path(), overrides);
        broker._temp = Some(temp);
        broker
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("broker running").id() as i32
    }

    fn signal(&mut self, sig: i32) -> ExitStatus {
        let mut child = self.child.take().expect("broker already stopped");
        // SAFETY: kill(2) on our own child's pid; the child has not been reaped yet.
        unsafe { libc::kill(child.id() as i32, sig) };
        let status = reap(&mut child, sig);
        wait_log_closed(&self.events.lock().unwrap());
        status
    }

    /// SIGTERM; returns the exit status and how long the stop took.
    pub fn terminate(&mut self) -> (ExitStatus, Duration) {
        let t = Instant::now();
        let status = self.signal(libc::SIGTERM);
        (status, t.elapsed())
    }

    /// SIGKILL (its files stay in `dir`). Returns as soon as the process is reaped (a
    /// blocking wait, not a poll), so a restart right after it is as quick as `kill -9;
    /// sluiced` in a shell.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("broker already stopped");
        // SIGKILL cannot be caught: the wait ends once the kernel has torn the process down.
        child.kill().expect("SIGKILL sluiced");
        child.wait().expect("reap sluiced");
    }

    pub fn log_contains(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits up to [`STOP_WAIT`] for `child` to exit after `sig`; returns its status.
fn reap(child: &mut Child, sig: i32) -> ExitStatus {
    let deadline = Instant::now() + STOP_WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "sluiced did not exit after signal {sig}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Returns once the log thread behind `events` has ended (the process closed its stderr
/// and every line is in the log), or after [`STOP_WAIT`].
fn wait_log_closed(events: &mpsc::Receiver<LogEvent>) {
    let deadline = Instant::now() + STOP_WAIT;
    while Instant::now() < deadline {
        if let Err(mpsc::RecvTimeoutError::Disconnected) =
            events.recv_timeout(Duration::from_millis(50))
        {
            return;
        }
    }
}

enum LogEvent {
    Port(u16),
    Ready,
}

/// Copies the broker's stderr into `log`, the test's stderr (shown on failure) with
/// `label` before each line, and `file` if given, on a thread; reports the listening port
/// and readiness. The channel closes when the process closes its stderr (it exited).
fn follow_log(
    child: &mut Child,
    log: Arc<Mutex<Vec<String>>>,
    label: String,
    mut file: Option<std::fs::File>,
) -> mpsc::Receiver<LogEvent> {
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{label} {line}");
            if let Some(f) = file.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            // "listening on PLAINTEXT://<host>:<port>" (127.0.0.1, or a namespace's address).
            let listening = line.split("listening on PLAINTEXT://").nth(1);
            if let Some(port) = listening.and_then(|a| a.trim().rsplit_once(':')) {
                if let Ok(port) = port.1.parse::<u16>() {
                    let _ = tx.send(LogEvent::Port(port));
                }
            }
            if line.contains("ready:") {
                let _ = tx.send(LogEvent::Ready);
            }
            log.lock().unwrap().push(line);
        }
    });
    rx
}

/// Once the broker said it is ready: the client port it logged before that (`None` for a
/// node without a client listener). `None` if it exited or took longer than
/// [`START_WAIT`].
fn wait_ready(events: &mpsc::Receiver<LogEvent>) -> Option<Option<u16>> {
    let deadline = Instant::now() + START_WAIT;
    let mut port = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left).ok()? {
            LogEvent::Port(p) => port = Some(p),
            LogEvent::Ready => return Some(port),
        }
    }
}

/// Tries at finding a port free for both TCP and UDP before giving up.
pub const FREE_PORT_TRIES_MAX: usize = 100;

/// `n` distinct loopback ports that were free for TCP and UDP a moment ago (each bound on
/// 127.0.0.1 at port 0, its UDP twin bound too, all held until every one is found, then
/// closed). Another process may still take one before it is used: callers that bind them
/// later retry on "address in use".
pub fn free_ports(n: usize) -> Vec<u16> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..FREE_PORT_TRIES_MAX * n.max(1) {
        if held.len() == n {
            break;
        }
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = tcp.local_addr().expect("local addr").port();
        if let Ok(udp) = std::net::UdpSocket::bind(("127.0.0.1", port)) {
            held.push((port, tcp, udp));
        }
    }
    assert_eq!(held.len(), n, "could not find {n} free loopback ports");
    held.into_iter().map(|(port, _, _)| port).collect()
}

/// Runs `program` with `args` and waits for it; panics with both outputs unless it
/// exits successfully. Returns (stdout, stderr).
pub fn run_ok(program: &str, args: &[&str]) -> (String, String) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    (stdout, stderr)
}

/// The number after `"key": ` in a one-line JSON object (`sluice-perf --json`).
pub fn json_number(json: &str, key: &str) -> f64 {
    let needle = format!("\"{key}\": ");
    let start = json
        .find(&needle)
        .unwrap_or_else(|| panic!("{key} in {json}"))
        + needle.len();
    let end = json[start..].find([',', '}']).unwrap() + start;
    json[start..end].parse().unwrap()
}
