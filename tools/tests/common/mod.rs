//! Helpers shared by the integration tests: run `sluice` (or a link to it under
//! one of Kafka's names) with arguments and stdin, and check its exit code.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fmt::Debug;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

/// Runs `program args...` with `stdin`, returning its output.
pub fn run<S: AsRef<OsStr>>(program: &Path, args: &[S], stdin: &str) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice");
    let mut input = child.stdin.take().expect("stdin");
    // A command that fails early may close stdin first.
    if let Err(e) = input.write_all(stdin.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    drop(input);
    child.wait_with_output().expect("sluice ran")
}

/// `sluice args...` with `stdin`.
pub fn sluice<S: AsRef<OsStr>>(args: &[S], stdin: &str) -> Output {
    run(Path::new(SLUICE), args, stdin)
}

/// `sluice args...`, asserting success; returns (stdout, stderr).
pub fn ok_with_stderr<S: AsRef<OsStr> + Debug>(args: &[S], stdin: &str) -> (String, String) {
    let output = sluice(args, stdin);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "sluice {args:?} failed: {stderr}");
    (
        String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr,
    )
}

/// `sluice args...`, asserting success; returns stdout.
pub fn ok<S: AsRef<OsStr> + Debug>(args: &[S], stdin: &str) -> String {
    ok_with_stderr(args, stdin).0
}

/// `sluice args...`, asserting exit code 1; returns stderr.
pub fn fails<S: AsRef<OsStr> + Debug>(args: &[S], stdin: &str) -> String {
    let output = sluice(args, stdin);
    let stderr = String::from_utf8(output.stderr).expect("utf-8 stderr");
    assert_eq!(
        output.status.code(),
        Some(1),
        "sluice {args:?} should fail: {stderr}"
    );
    stderr
}

/// `args` with `--bootstrap-server B` after the first (the subcommand).
pub fn with_bootstrap<'a>(b: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![args[0], "--bootstrap-server", b];
    all.extend_from_slice(&args[1..]);
    all
}
