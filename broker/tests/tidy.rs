//! Rules a linter does not know, checked over every crate's sources (TigerBeetle's `tidy`).

use std::path::{Path, PathBuf};

/// The crates whose `src/` the rules cover, relative to the workspace root.
const CRATES: &[&str] = &["engine", "net", "replication", "broker", "perf", "tools"];
/// Files allowed a lock shared across tasks, and why.
const LOCKS_ALLOWED: &[(&str, &str)] = &[(
    "replication/src/quorum/log_store.rs",
    "openraft 0.9 wants Send + Sync log readers; only the controller thread takes the lock",
)];
/// TigerStyle asks for about 70 lines at most.
const FUNCTION_LINES_MAX: usize = 80;

fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path: PathBuf = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push((
                    path.display().to_string(),
                    std::fs::read_to_string(&path).unwrap(),
                ));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut out = Vec::new();
    for c in CRATES {
        walk(&root.join(c).join("src"), &mut out);
    }
    assert!(out.len() > 20, "found the sources");
    out
}

/// Lines (as `path:line`) of code (comments stripped) matching `hit`.
fn code_lines(hit: impl Fn(&str, &[&str], usize) -> bool) -> Vec<String> {
    let mut found = Vec::new();
    for (path, text) in sources() {
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if hit(code, &lines, n) {
                found.push(format!("{path}:{}", n + 1));
            }
        }
    }
    found
}

#[test]
fn every_unsafe_block_says_why_it_is_safe() {
    let missing = code_lines(|code, lines, n| {
        let is_unsafe = code.contains("unsafe {") || code.contains("unsafe impl");
        let mut comment = lines[..n]
            .iter()
            .rev()
            .take_while(|l| l.trim_start().starts_with("//"));
        is_unsafe && !comment.any(|l| l.trim_start().starts_with("// SAFETY:"))
    });
    assert!(
        missing.is_empty(),
        "unsafe without // SAFETY: at {missing:?}"
    );
}

#[test]
fn no_unbounded_queues_or_locked_shard_state() {
    let found: Vec<String> = code_lines(|code, _, _| {
        let compact = code.replace("std::sync::", "");
        ["unbounded(", "unbounded_channel", "Arc<Mutex", "Arc<RwLock"]
            .iter()
            .any(|p| compact.contains(p))
    })
    .into_iter()
    .filter(|at| !LOCKS_ALLOWED.iter().any(|(file, _)| at.contains(file)))
    .collect();
    assert!(
        found.is_empty(),
        "unbounded queue or locked shared state at {found:?}"
    );
}

#[test]
fn functions_stay_short() {
    let long = code_lines(|code, lines, n| {
        let trimmed = code.trim_start();
        let is_fn = [
            "fn ",
            "pub fn ",
            "pub(crate) fn ",
            "async fn ",
            "pub async fn ",
        ]
        .iter()
        .any(|p| trimmed.starts_with(p));
        let close = " ".repeat(code.len() - trimmed.len()) + "}";
        is_fn && lines[n..].iter().position(|l| *l == close).unwrap_or(0) > FUNCTION_LINES_MAX
    });
    assert!(
        long.is_empty(),
        "functions longer than {FUNCTION_LINES_MAX} lines at {long:?}"
    );
}
