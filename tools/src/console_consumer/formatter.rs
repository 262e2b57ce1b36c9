//! Kafka's `DefaultMessageFormatter` (`kafka.tools.DefaultMessageFormatter`, since Kafka
//! 3.8 `org.apache.kafka.tools.consumer.DefaultMessageFormatter`): the columns it prints,
//! in its order, and its properties.

use std::io::Write;

use sluice_net::client::batch::DecodedRecord;

use crate::error::{Result, ToolError};
use crate::properties::Properties;

/// The formatter class names `--formatter` accepts.
const DEFAULT_FORMATTERS: [&str; 3] = [
    "kafka.tools.DefaultMessageFormatter",
    "org.apache.kafka.tools.consumer.DefaultMessageFormatter",
    "DefaultMessageFormatter",
];

/// The properties the formatter honours.
const PROPERTIES: [&str; 14] = [
    "print.timestamp",
    "print.key",
    "print.value",
    "print.partition",
    "print.offset",
    "print.delivery",
    "print.headers",
    "key.separator",
    "line.separator",
    "headers.separator",
    "null.literal",
    "key.deserializer",
    "value.deserializer",
    "headers.deserializer",
];

/// Deserializers that print the bytes as they are (what the formatter does without one).
const BYTE_DESERIALIZERS: [&str; 3] = [
    "StringDeserializer",
    "ByteArrayDeserializer",
    "BytesDeserializer",
];

/// How a record is printed.
pub(super) struct Formatter {
    print_timestamp: bool,
    print_partition: bool,
    print_offset: bool,
    print_delivery: bool,
    print_headers: bool,
    print_key: bool,
    print_value: bool,
    key_separator: Vec<u8>,
    line_separator: Vec<u8>,
    headers_separator: Vec<u8>,
    null_literal: Vec<u8>,
}

/// Refuses a `--formatter` other than Kafka's default one.
pub(super) fn check_formatter(class: Option<&str>) -> Result<()> {
    match class {
        None => Ok(()),
        Some(class) if DEFAULT_FORMATTERS.contains(&class) => Ok(()),
        Some(class) => Err(ToolError::new(format!(
            "--formatter {class}: sluice console-consumer has Kafka's default formatter only \
             (org.apache.kafka.tools.consumer.DefaultMessageFormatter, formerly \
             kafka.tools.DefaultMessageFormatter)"
        ))),
    }
}

impl Formatter {
    pub(super) fn from_properties(p: &Properties) -> Result<Formatter> {
        for (key, value) in p.pairs() {
            if !PROPERTIES.contains(&key.as_str()) {
                eprintln!(
                    "WARN: {key}={value} (--property) is not a property of Kafka's \
                     DefaultMessageFormatter; it is ignored"
                );
            }
        }
        for key in [
            "key.deserializer",
            "value.deserializer",
            "headers.deserializer",
        ] {
            if let Some(class) = p.get(key) {
                let simple = class.rsplit('.').next().unwrap_or(class);
                if !BYTE_DESERIALIZERS.contains(&simple) {
                    return Err(ToolError::new(format!(
                        "{key}={class}: sluice prints keys, values and headers as their bytes \
                         (StringDeserializer, ByteArrayDeserializer, BytesDeserializer); other \
                         deserializers are not available"
                    )));
                }
            }
        }
        let bytes = |key: &str, default: &str| p.get(key).unwrap_or(default).as_bytes().to_vec();
        Ok(Formatter {
            print_timestamp: p.flag("print.timestamp", false)?,
            print_partition: p.flag("print.partition", false)?,
            print_offset: p.flag("print.offset", false)?,
            print_delivery: p.flag("print.delivery", false)?,
            print_headers: p.flag("print.headers", false)?,
            print_key: p.flag("print.key", false)?,
            print_value: p.flag("print.value", true)?,
            key_separator: bytes("key.separator", "\t"),
            line_separator: bytes("line.separator", "\n"),
            headers_separator: bytes("headers.separator", ","),
            null_literal: bytes("null.literal", "null"),
        })
    }

    /// Writes one record as Kafka's formatter does: the chosen columns (timestamp,
    /// partition, offset, delivery, headers, key, value) separated by `key.separator`,
    /// the last one followed by `line.separator`; nothing when no column is chosen.
    pub(super) fn write(
        &self,
        out: &mut impl Write,
        partition: i32,
        record: &DecodedRecord,
        timestamp_type: &str,
    ) -> std::io::Result<()> {
        let mut columns: Vec<Vec<u8>> = Vec::with_capacity(7);
        if self.print_timestamp {
            columns.push(format!("{timestamp_type}:{}", record.timestamp_ms).into_bytes());
        }
        if self.print_partition {
            columns.push(format!("Partition:{partition}").into_bytes());
        }
        if self.print_offset {
            columns.push(format!("Offset:{}", record.offset).into_bytes());
        }
        if self.print_delivery {
            // A classic consumer's records have no delivery count (share groups only).
            columns.push(b"Delivery:NONE".to_vec());
        }
        if self.print_headers {
            columns.push(self.headers(record));
        }
        let or_null = |b: &Option<Vec<u8>>| b.clone().unwrap_or_else(|| self.null_literal.clone());
        if self.print_key {
            columns.push(or_null(&record.key));
        }
        if self.print_value {
            columns.push(or_null(&record.value));
        }
        if columns.is_empty() {
            return Ok(());
        }
        out.write_all(&columns.join(self.key_separator.as_slice()))?;
        out.write_all(&self.line_separator)
    }

    /// `key:value` of each header joined by `headers.separator`, or `NO_HEADERS`.
    fn headers(&self, record: &DecodedRecord) -> Vec<u8> {
        if record.headers.is_empty() {
            return b"NO_HEADERS".to_vec();
        }
        let mut text = Vec::new();
        for (i, (key, value)) in record.headers.iter().enumerate() {
            if i > 0 {
                text.extend_from_slice(&self.headers_separator);
            }
            text.extend_from_slice(key.as_bytes());
            text.push(b':');
            text.extend_from_slice(value.as_deref().unwrap_or(&self.null_literal));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(properties: &[&str], expected: &str) {
        let values: Vec<String> = properties.iter().map(|v| v.to_string()).collect();
        let formatter =
            Formatter::from_properties(&Properties::parse(&values, "--property").unwrap()).unwrap();
        let record = DecodedRecord {
            offset: 7,
            timestamp_ms: 1_700_000_000_000,
            key: Some(b"k".to_vec()),
            value: None,
            headers: vec![("h1".into(), Some(b"x".to_vec())), ("h2".into(), None)],
        };
        let mut out = Vec::new();
        formatter.write(&mut out, 2, &record, "CreateTime").unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), expected, "{properties:?}");
    }

    #[test]
    fn records_print_like_kafka() {
        check(&[], "null\n");
        check(&["print.key=true"], "k\tnull\n");
        check(&["print.key=true", "key.separator=:"], "k:null\n");
        check(&["print.key=true", "null.literal=-"], "k\t-\n");
        check(
            &[
                "print.timestamp=true",
                "print.partition=true",
                "print.offset=true",
            ],
            "CreateTime:1700000000000\tPartition:2\tOffset:7\tnull\n",
        );
        check(&["print.key=true", "print.value=false"], "k\n");
        check(&["print.value=false"], "");
        check(
            &[
                "print.headers=true",
                "print.value=false",
                "headers.separator=;",
            ],
            "h1:x;h2:null\n",
        );
        check(
            &["print.delivery=true", "print.value=false"],
            "Delivery:NONE\n",
        );
    }

    #[test]
    fn only_kafkas_default_formatter_and_byte_deserializers() {
        assert!(check_formatter(Some("kafka.tools.DefaultMessageFormatter")).is_ok());
        assert!(check_formatter(Some(
            "org.apache.kafka.tools.consumer.DefaultMessageFormatter"
        ))
        .is_ok());
        assert!(check_formatter(Some("kafka.tools.LoggingMessageFormatter")).is_err());
        let p = |v: &str| Properties::parse(&[v.to_string()], "--property").unwrap();
        let string = "key.deserializer=org.apache.kafka.common.serialization.StringDeserializer";
        assert!(Formatter::from_properties(&p(string)).is_ok());
        let long = "value.deserializer=org.apache.kafka.common.serialization.LongDeserializer";
        assert!(Formatter::from_properties(&p(long)).is_err());
    }
}
