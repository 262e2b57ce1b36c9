//! `--property key=value` (and `--config key=value`) flags, as Kafka's tools take them.

use crate::error::{Result, ToolError};

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

#[cfg(test)]
mod tests {
    use super::*;

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
