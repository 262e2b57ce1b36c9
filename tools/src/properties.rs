//! `--property key=value` (and `--config key=value`) flags, as Kafka's tools take them,
//! and Java properties files (`--command-config`, `--producer.config`, …).

use std::path::Path;

use crate::error::{Result, ToolError};
use crate::limits::PROPERTIES_FILE_BYTES_MAX;

/// `key=value` pairs in the order given; a later one overrides an earlier one.
#[derive(Debug, Default, Clone)]
pub struct Properties {
    pairs: Vec<(String, String)>,
}

impl Properties {
    /// Parses each `key=value`; `flag` names the flag in errors (`--property`).
    pub fn parse(values: &[String], flag: &str) -> Result<Properties> {
        let mut pairs = Vec::with_capacity(values.len());
        for value in values {
            let Some((key, val)) = value.split_once('=') else {
                return Err(ToolError::new(format!(
                    "{flag} {value:?}: expected key=value"
                )));
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(ToolError::new(format!(
                    "{flag} {value:?}: the key is empty"
                )));
            }
            pairs.retain(|(k, _): &(String, String)| k != key);
            pairs.push((key.to_string(), val.to_string()));
        }
        Ok(Properties { pairs })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A `true`/`false` property, `default` when absent.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key).map(str::trim) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ToolError::new(format!("{key}={v}: expected true or false"))),
        }
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

/// Reads a Java properties file (`java.util.Properties.load`: `key=value`, `key: value`
/// or `key value`; `#` and `!` comments; a trailing `\\` continues the line; `\\t`,
/// `\\n`, `\\uXXXX` escapes). `flag` names the flag in errors.
pub fn read_file(path: &Path, flag: &str) -> Result<Vec<(String, String)>> {
    let shown = path.display();
    let size = std::fs::metadata(path)
        .map_err(|e| ToolError::new(format!("{flag} {shown}: {e}")))?
        .len();
    if size > PROPERTIES_FILE_BYTES_MAX {
        return Err(ToolError::new(format!(
            "{flag} {shown}: {size} bytes, more than a properties file of \
             {PROPERTIES_FILE_BYTES_MAX} bytes this tool reads"
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| ToolError::new(format!("{flag} {shown}: {e}")))?;
    Ok(parse_text(&text))
}

/// The `(key, value)` pairs of properties-file text, in order.
fn parse_text(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut logical = String::new();
    for line in text.lines() {
        let line = line.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with(['#', '!'])) {
            continue;
        }
        let continued = line.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1;
        if continued {
            logical.push_str(&line[..line.len() - 1]);
            continue;
        }
        logical.push_str(line);
        if let Some(pair) = split_entry(&logical) {
            pairs.push(pair);
        }
        logical.clear();
    }
    if let Some(pair) = split_entry(&logical) {
        pairs.push(pair);
    }
    pairs
}

/// One logical line: the key ends at the first unescaped `=`, `:` or whitespace.
fn split_entry(line: &str) -> Option<(String, String)> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let mut end = line.len();
    let mut escaped = false;
    for (at, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '=' | ':' | ' ' | '\t' => {
                end = at;
                break;
            }
            _ => {}
        }
    }
    let (key, rest) = line.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix(['=', ':']).unwrap_or(rest).trim_start();
    Some((unescape(key), unescape(rest)))
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let decoded = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                out.push(decoded.unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_files_read_as_java_does() {
        let text = "# comment\n! also\n\ngroup.id=g1\nclient.id : c\nacks all\n\
                    key.separator=\\t\nlong=a\\\n    b\nempty=\n  spaced = v \n";
        let pairs = parse_text(text);
        let expected = [
            ("group.id", "g1"),
            ("client.id", "c"),
            ("acks", "all"),
            ("key.separator", "\t"),
            ("long", "ab"),
            ("empty", ""),
            ("spaced", "v"),
        ];
        let got: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, expected);
    }

    fn check(values: &[&str], key: &str, expected: Option<&str>) {
        let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        let properties = Properties::parse(&values, "--property").unwrap();
        assert_eq!(properties.get(key), expected, "{values:?}");
    }

    #[test]
    fn parses_pairs() {
        check(&["parse.key=true"], "parse.key", Some("true"));
        check(&["key.separator=:"], "key.separator", Some(":"));
        check(&["key.separator=="], "key.separator", Some("="));
        check(&["a=1", "a=2"], "a", Some("2"));
        check(&["a=1"], "b", None);
        assert!(Properties::parse(&["novalue".into()], "--property").is_err());
        assert!(Properties::parse(&["=x".into()], "--property").is_err());
    }
}
