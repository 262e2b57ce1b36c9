//! Kafka client configs as Kafka's tools take them: a properties file
//! (`--command-config`, `--producer.config`, `--consumer.config`) overridden by
//! `--producer-property` / `--consumer-property` flags, overridden in turn by the tool's
//! own flags. Each command reads the keys it honours with [`ClientConfig::get`];
//! [`ClientConfig::warn_unused`] then names every other key on stderr, so nothing given
//! is ignored silently.

use std::cell::Cell;
use std::path::Path;

use crate::error::{Result, ToolError};
use crate::properties::{self, Properties};

/// One key and where it came from.
#[derive(Debug)]
struct Entry {
    key: String,
    value: String,
    origin: String,
    used: Cell<bool>,
}

/// The client configs of one run of a tool.
#[derive(Debug, Default)]
pub struct ClientConfig {
    entries: Vec<Entry>,
}

impl ClientConfig {
    /// The file's keys (if any), then `flag_values` (`key=value`, as given to `flag`)
    /// over them.
    pub fn load(
        file: Option<(&Path, &str)>,
        flag_values: &[String],
        flag: &str,
    ) -> Result<ClientConfig> {
        let mut config = ClientConfig::default();
        if let Some((path, file_flag)) = file {
            for (key, value) in properties::read_file(path, file_flag)? {
                config.set(&key, &value, &format!("{file_flag} {}", path.display()));
            }
        }
        for (key, value) in Properties::parse(flag_values, flag)?.pairs() {
            config.set(key, value, flag);
        }
        Ok(config)
    }

    /// Sets `key` (a later value wins, as in Kafka).
    pub fn set(&mut self, key: &str, value: &str, origin: &str) {
        self.entries.retain(|e| e.key != key);
        self.entries.push(Entry {
            key: key.to_string(),
            value: value.to_string(),
            origin: origin.to_string(),
            used: Cell::new(false),
        });
    }

    /// The value of `key`, marking it honoured.
    pub fn get(&self, key: &str) -> Option<&str> {
        let entry = self.entries.iter().find(|e| e.key == key)?;
        entry.used.set(true);
        Some(entry.value.trim())
    }

    /// `key` parsed as a number in `min..=max`, `default` when absent.
    pub fn number(&self, key: &str, default: i64, (min, max): (i64, i64)) -> Result<i64> {
        let Some(text) = self.get(key) else {
            return Ok(default);
        };
        match text.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ToolError::new(format!(
                "{key}={text} ({}): expected a whole number in {min}..={max}",
                self.origin(key)
            ))),
        }
    }

    /// `key` as `true`/`false`, `default` when absent.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ToolError::new(format!(
                "{key}={v} ({}): expected true or false",
                self.origin(key)
            ))),
        }
    }

    /// Where `key` was given (for messages).
    pub fn origin(&self, key: &str) -> &str {
        self.entries
            .iter()
            .find(|e| e.key == key)
            .map_or("", |e| e.origin.as_str())
    }

    /// Checks what every tool must refuse rather than ignore: a security protocol other
    /// than PLAINTEXT (the client has no TLS or SASL), and reads `client.id`.
    pub fn connection_settings(&self) -> Result<ConnectionSettings> {
        if let Some(protocol) = self.get("security.protocol") {
            if !protocol.eq_ignore_ascii_case("PLAINTEXT") {
                return Err(ToolError::new(format!(
                    "security.protocol={protocol} ({}): sluice's client speaks PLAINTEXT only \
                     (no TLS or SASL yet)",
                    self.origin("security.protocol")
                )));
            }
        }
        Ok(ConnectionSettings {
            client_id: self.get("client.id").map(str::to_string),
        })
    }

    /// One warning line per key no one honoured, naming it, its value's origin and
    /// `tool`.
    pub fn warn_unused(&self, tool: &str) {
        for e in self.entries.iter().filter(|e| !e.used.get()) {
            eprintln!(
                "WARN: {}={} ({}) is not honoured by sluice {tool}; it is ignored",
                e.key, e.value, e.origin
            );
        }
    }
}

/// What every tool's connection takes from the client config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// `client.id`, else the CLI's own.
    pub client_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_unused_keys_are_known() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("client.properties");
        std::fs::write(&file, "acks=1\nlinger.ms=5\nclient.id=from-file\n").unwrap();
        let flags = vec!["acks=all".to_string()];
        let config = ClientConfig::load(
            Some((&file, "--producer.config")),
            &flags,
            "--producer-property",
        )
        .unwrap();
        assert_eq!(config.get("acks"), Some("all"));
        assert_eq!(config.origin("acks"), "--producer-property");
        assert_eq!(config.number("linger.ms", 0, (0, 10)).unwrap(), 5);
        assert!(config.number("linger.ms", 0, (0, 1)).is_err());
        let settings = config.connection_settings().unwrap();
        assert_eq!(settings.client_id.as_deref(), Some("from-file"));
        let unused: Vec<&str> = config
            .entries
            .iter()
            .filter(|e| !e.used.get())
            .map(|e| e.key.as_str())
            .collect();
        assert!(unused.is_empty(), "{unused:?}");
        let mut tls = ClientConfig::default();
        tls.set("security.protocol", "SSL", "--command-config f");
        assert!(tls.connection_settings().is_err());
    }
}
