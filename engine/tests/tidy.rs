//! Rules a linter does not know, checked over the crate's sources.

use std::path::Path;

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
}

/// Every `unsafe` block has a `// SAFETY:` comment in the comment block right above it.
#[test]
fn every_unsafe_block_says_why_it_is_safe() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut missing = Vec::new();
    for (path, text) in &files {
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if !code.contains("unsafe {") {
                continue;
            }
            // The comment block directly above the line must contain `// SAFETY:`.
            let mut comment = lines[..n]
                .iter()
                .rev()
                .take_while(|l| l.trim_start().starts_with("//"));
            if !comment.any(|l| l.trim_start().starts_with("// SAFETY:")) {
                missing.push(format!("{path}:{}", n + 1));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "unsafe without // SAFETY: at {missing:?}"
    );
}

/// Functions stay short (TigerStyle: about 70 lines at most).
#[test]
fn functions_stay_short() {
    const FUNCTION_LINES_MAX: usize = 80;
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut long = Vec::new();
    for (path, text) in &files {
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let is_fn = trimmed.starts_with("fn ")
                || trimmed.starts_with("pub fn ")
                || trimmed.starts_with("pub(crate) fn ")
                || trimmed.starts_with("async fn ")
                || trimmed.starts_with("pub async fn ");
            if !is_fn {
                continue;
            }
            let indent = line.len() - trimmed.len();
            let close = " ".repeat(indent) + "}";
            let length = lines[n..].iter().position(|l| *l == close).unwrap_or(0);
            if length > FUNCTION_LINES_MAX {
                long.push(format!("{path}:{} ({length} lines)", n + 1));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions longer than {FUNCTION_LINES_MAX} lines: {long:?}"
    );
}
