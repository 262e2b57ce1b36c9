//! Output in the formats of Kafka's perf tools, and as JSON.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

/// Kafka's perf tools count MB as 1024 * 1024 bytes.
pub const BYTES_PER_MB: f64 = 1024.0 * 1024.0;

/// Highest latency the histograms track exactly: an hour, in microseconds. Larger ones
/// are recorded as this.
const LATENCY_US_MAX: u64 = 3_600_000_000;
/// Significant decimal digits the histograms keep.
const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;

/// An empty latency histogram in microseconds (`produce`, `verify`).
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, LATENCY_SIGNIFICANT_DIGITS)
        .expect("valid histogram bounds")
}

/// A JSON object written field by field (numbers and strings only).
#[derive(Default)]
pub struct JsonObject {
    body: String,
}

impl JsonObject {
    pub fn number(mut self, key: &str, value: f64) -> Self {
        let value = if value.is_finite() { value } else { 0.0 };
        self.key(key);
        // Integers print without a fraction, others with enough digits.
        if value.fract() == 0.0 && value.abs() < 1e15 {
            let _ = write!(self.body, "{}", value as i64);
        } else {
            let _ = write!(self.body, "{value:.4}");
        }
        self
    }

    pub fn string(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        self.body.push('"');
        for c in value.chars() {
            match c {
                '"' => self.body.push_str("\\\""),
                '\\' => self.body.push_str("\\\\"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(self.body, "\\u{:04x}", c as u32);
                }
                c => self.body.push(c),
            }
        }
        self.body.push('"');
        self
    }

    /// `value` must be JSON already (`null`, a number, a nested object or array).
    pub fn raw(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        self.body.push_str(value);
        self
    }

    pub fn object(self, key: &str, value: JsonObject) -> Self {
        let value = value.finish();
        self.raw(key, &value)
    }

    pub fn array(self, key: &str, items: impl IntoIterator<Item = JsonObject>) -> Self {
        let items: Vec<String> = items.into_iter().map(JsonObject::finish).collect();
        let value = format!("[{}]", items.join(", "));
        self.raw(key, &value)
    }

    fn key(&mut self, key: &str) {
        if !self.body.is_empty() {
            self.body.push_str(", ");
        }
        let _ = write!(self.body, "\"{key}\": ");
    }

    pub fn finish(self) -> String {
        format!("{{{}}}", self.body)
    }
}

/// `time` as Kafka's consumer perf tool prints it (`yyyy-MM-dd HH:mm:ss:SSS`), in UTC.
pub fn format_time(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let millis = since_epoch.as_millis() as i64;
    let (days, ms_of_day) = (millis.div_euclid(86_400_000), millis.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    let seconds = ms_of_day / 1000;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}:{:03}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        ms_of_day % 1000
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_format_like_kafka() {
        let check = |millis: u64, expected: &str| {
            let time = UNIX_EPOCH + Duration::from_millis(millis);
            assert_eq!(format_time(time), expected);
        };
        check(0, "1970-01-01 00:00:00:000");
        check(951_782_400_123, "2000-02-29 00:00:00:123");
        check(1_709_251_199_999, "2024-02-29 23:59:59:999");
        check(1_735_689_600_000, "2025-01-01 00:00:00:000");
    }

    #[test]
    fn json_escapes_and_numbers() {
        let json = JsonObject::default()
            .number("n", 3.0)
            .number("x", 1.25)
            .number("nan", f64::NAN)
            .string("s", "a\"b\\\n")
            .object("o", JsonObject::default().number("k", 1.0))
            .array(
                "a",
                [
                    JsonObject::default(),
                    JsonObject::default().raw("z", "null"),
                ],
            )
            .array("e", [])
            .finish();
        assert_eq!(
            json,
            r#"{"n": 3, "x": 1.2500, "nan": 0, "s": "a\"b\\\u000a", "o": {"k": 1}, "a": [{}, {"z": null}], "e": []}"#
        );
    }
}
