//! Test harness: runs the real `sluiced` binary on port 0 with a temporary data dir and reads
//! the real port back from its first log lines.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a broker may take to print its port and become ready.
pub const START_WAIT: Duration = Duration::from_secs(60);

pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Broker {
    /// Starts `sluiced` on 127.0.0.1:0 with data in `dir` and the given extra overrides.
    pub fn start(dir: &Path, overrides: &[&str]) -> Broker {
        Broker::start_with_env(dir, overrides, &[])
    }

    /// `start` with extra environment variables (e.g. systemd's NOTIFY_SOCKET).
    pub fn start_with_env(dir: &Path, overrides: &[&str], env: &[(&str, &str)]) -> Broker {
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
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluiced"))
            .args(&args)
            .env("SLUICE_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sluiced");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[sluiced] {line}");
                if let Some(port) = line.split("listening on PLAINTEXT://127.0.0.1:").nth(1) {
                    let _ = tx.send(Ok(port.trim().parse::<u16>().unwrap()));
                }
                if line.contains("ready:") {
                    let _ = tx.send(Err(()));
                }
                sink.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + START_WAIT;
        let mut port = None;
        let mut ready = false;
        while !(ready && port.is_some()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Ok(p)) => port = Some(p),
                Ok(Err(())) => ready = true,
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "sluiced did not become ready; log:\n{}",
                        log.lock().unwrap().join("\n")
                    );
                }
            }
        }
        Broker {
            child: Some(child),
            port: port.unwrap(),
            dir: dir.to_path_buf(),
            log,
        }
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    fn signal(&mut self, sig: i32) -> ExitStatus {
        let mut child = self.child.take().expect("broker already stopped");
        // SAFETY: kill(2) on our own child's pid; the child has not been reaped yet.
        unsafe { libc::kill(child.id() as i32, sig) };
        let deadline = Instant::now() + Duration::from_secs(30);
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

    /// SIGTERM; returns the exit status and how long the stop took.
    pub fn terminate(&mut self) -> (ExitStatus, Duration) {
        let t = Instant::now();
        let status = self.signal(libc::SIGTERM);
        (status, t.elapsed())
    }

    pub fn kill(&mut self) {
        self.signal(libc::SIGKILL);
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

/// Runs `sluiced` expecting it to refuse to start; returns (exit code, stderr).
pub fn start_fails(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluiced"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluiced")
        .wait_with_output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
