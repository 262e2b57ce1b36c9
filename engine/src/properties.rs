//! Java-properties text, the subset Kafka's files use: `key=value` or `key: value`,
//! `#`/`!` comments, blank lines, trailing-backslash continuations. Read here because
//! `meta.properties` (a log dir's identity, [`crate::logdir::MetaProperties`]) is in this
//! format; the broker's and the tools' `server.properties` readers use the same parser.

/// A line that is not `key=value` (1-based line number and its text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {text:?} is not `key=value`")]
pub struct PropertiesError {
    pub line: usize,
    pub text: String,
}

/// The `(key, value)` pairs in file order (a later duplicate is the one that counts).
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, PropertiesError> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for (number, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(line);
        let entry = std::mem::take(&mut pending);
        let Some(split) = entry.find(['=', ':']) else {
            return Err(PropertiesError {
                line: number + 1,
                text: entry,
            });
        };
        let key = entry[..split].trim().to_string();
        let value = entry[split + 1..].trim().to_string();
        out.push((key, value));
    }
    Ok(out)
}

/// The last value of `key` in `pairs`.
pub fn last_value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expect: Result<&[(&str, &str)], usize>) {
        let got = parse_properties(text);
        match expect {
            Ok(pairs) => {
                let pairs: Vec<(String, String)> = pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                assert_eq!(got, Ok(pairs), "{text:?}");
            }
            Err(line) => assert_eq!(got.map_err(|e| e.line), Err(line), "{text:?}"),
        }
    }

    #[test]
    fn kafka_properties_subset() {
        check("", Ok(&[]));
        check("# c\n! c\n\n", Ok(&[]));
        check(
            "a=1\nb: 2\n c = 3 \n",
            Ok(&[("a", "1"), ("b", "2"), ("c", "3")]),
        );
        check("log.dirs=/a,\\\n  /b\n", Ok(&[("log.dirs", "/a,/b")]));
        check("x=a=b\n", Ok(&[("x", "a=b")]));
        check("a=1\nnot a pair\n", Err(2));
    }
}
