//! Test harness: the real `sluiced` on port 0 (`sluice-testkit`, shared with the other
//! packages' tests), and a run expected to fail at startup.

#![allow(dead_code)]

use std::process::{Command, Stdio};

pub use sluice_testkit::Broker;

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
