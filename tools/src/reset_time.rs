//! The times `consumer-groups --reset-offsets` accepts, as kafka-consumer-groups does:
//! `--to-datetime 'YYYY-MM-DDTHH:mm:SS.sss'` (an optional `Z` or `±HH:MM` zone; without one,
//! UTC, as Kafka's `Utils.getDateTime` appends `Z`) and `--by-duration 'PnDTnHnMnS'`
//! (ISO-8601, back from now).

use crate::error::{Result, ToolError};

const MS_PER_SECOND: i64 = 1000;
const MS_PER_MINUTE: i64 = 60 * MS_PER_SECOND;
const MS_PER_HOUR: i64 = 60 * MS_PER_MINUTE;
const MS_PER_DAY: i64 = 24 * MS_PER_HOUR;

/// Milliseconds since the epoch of a `--to-datetime` value.
pub fn parse_datetime(text: &str) -> Result<i64> {
    let bad = || {
        ToolError::new(format!(
            "--to-datetime '{text}': expected 'YYYY-MM-DDTHH:mm:SS.sss', optionally followed \
             by Z or a zone offset like +02:00"
        ))
    };
    let (date, rest) = text.split_once('T').ok_or_else(bad)?;
    let mut ymd = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (Some(Some(year)), Some(Some(month)), Some(Some(day))) =
        (ymd.next(), ymd.next(), ymd.next())
    else {
        return Err(bad());
    };
    let zone_at = rest.find(['Z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(zone_at);
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut parts = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (Some(Some(hour)), Some(Some(minute)), second) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let second = second.unwrap_or(Some(0)).ok_or_else(bad)?;
    let millis = fraction_ms(fraction).ok_or_else(bad)?;
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0..60).contains(&second);
    if !valid {
        return Err(bad());
    }
    let civil = Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
    };
    let seconds = match zone {
        "" | "Z" => civil.utc_seconds(),
        offset => civil.utc_seconds() - zone_offset_seconds(offset).ok_or_else(bad)?,
    };
    Ok(seconds * MS_PER_SECOND + millis)
}

/// Milliseconds a `--by-duration` value stands for: `P[nD][T[nH][nM][n[.n]S]]`.
pub fn parse_duration(text: &str) -> Result<i64> {
    let bad = || {
        ToolError::new(format!(
            "--by-duration '{text}': expected an ISO-8601 duration like PT15M, P1DT2H or \
             PT30.5S"
        ))
    };
    // Java's Duration.parse also takes lower case and a comma as the decimal separator.
    let normalized = text.to_ascii_uppercase().replace(',', ".");
    let body = normalized.strip_prefix('P').ok_or_else(bad)?;
    let (days, time) = body.split_once('T').unwrap_or((body, ""));
    let mut total = 0i64;
    if !days.is_empty() {
        let n = days.strip_suffix('D').ok_or_else(bad)?;
        let ms = n
            .parse::<i64>()
            .ok()
            .and_then(|d| d.checked_mul(MS_PER_DAY));
        total = ms.ok_or_else(bad)?;
    }
    let mut number = String::new();
    for c in time.chars() {
        let unit = match c {
            '0'..='9' | '.' => {
                number.push(c);
                continue;
            }
            'H' => MS_PER_HOUR,
            'M' => MS_PER_MINUTE,
            'S' => MS_PER_SECOND,
            _ => return Err(bad()),
        };
        let value: f64 = number.parse().map_err(|_| bad())?;
        let ms = value * unit as f64;
        if !ms.is_finite() || ms >= i64::MAX as f64 {
            return Err(bad());
        }
        total = total.checked_add(ms.round() as i64).ok_or_else(bad)?;
        number.clear();
    }
    let empty = days.is_empty() && time.is_empty();
    if !number.is_empty() || empty || (body.contains('T') && time.is_empty()) {
        return Err(bad());
    }
    Ok(total)
}

/// Milliseconds from a fraction of a second's digits (`"5"` = 500).
fn fraction_ms(digits: &str) -> Option<i64> {
    if digits.is_empty() {
        return Some(0);
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 9 {
        return None;
    }
    let padded = format!("{digits:0<3}");
    padded[..3].parse().ok()
}

/// `+HH:MM`, `-HH:MM`, `+HHMM` or `+HH` as seconds east of UTC.
fn zone_offset_seconds(zone: &str) -> Option<i64> {
    let (sign, digits) = match zone.as_bytes().first()? {
        b'+' => (1, &zone[1..]),
        b'-' => (-1, &zone[1..]),
        _ => return None,
    };
    let digits = digits.replace(':', "");
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    (hours < 24 && minutes < 60).then_some(sign * (hours * 3600 + minutes * 60))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A wall-clock date and time, zone not yet applied.
struct Civil {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
}

impl Civil {
    /// Seconds since the epoch if this time is UTC (days from the civil date: the
    /// proleptic Gregorian calendar, shifted to start the year in March).
    fn utc_seconds(&self) -> i64 {
        let y = if self.month <= 2 {
            self.year - 1
        } else {
            self.year
        };
        let era = y.div_euclid(400);
        let year_of_era = y - era * 400;
        let month_from_march = (self.month + 9) % 12;
        let day_of_year = (153 * month_from_march + 2) / 5 + self.day - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        let days = era * 146_097 + day_of_era - 719_468;
        days * 86_400 + self.hour * 3600 + self.minute * 60 + self.second
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_with_zones() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            parse_datetime("2026-11-21T23:05:17.250Z").unwrap(),
            1_795_302_317_250
        );
        assert_eq!(
            parse_datetime("2026-11-22T01:05:17.25+02:00").unwrap(),
            1_795_302_317_250
        );
        assert_eq!(
            parse_datetime("2026-11-21T18:05:17.250-0500").unwrap(),
            1_795_302_317_250
        );
        assert_eq!(
            parse_datetime("2024-02-29T12:00Z").unwrap(),
            1_709_208_000_000
        );
        for bad in [
            "2026-11-21",
            "2026-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-11-21T24:00:00Z",
            "2026-11-21T10:00:00+25:00",
            "2026-11-21T10:00:00.x",
            "yesterday",
        ] {
            assert!(parse_datetime(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_datetime_without_zone_is_utc() {
        assert_eq!(
            parse_datetime("2026-06-01T12:00:00.000").unwrap(),
            parse_datetime("2026-06-01T12:00:00.000Z").unwrap()
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("PT15M").unwrap(), 15 * MS_PER_MINUTE);
        assert_eq!(
            parse_duration("P1DT2H3M4.5S").unwrap(),
            MS_PER_DAY + 2 * MS_PER_HOUR + 3 * MS_PER_MINUTE + 4500
        );
        assert_eq!(parse_duration("P2D").unwrap(), 2 * MS_PER_DAY);
        assert_eq!(parse_duration("PT0S").unwrap(), 0);
        assert_eq!(parse_duration("pt1,5s").unwrap(), 1500);
        for bad in [
            "",
            "P",
            "PT",
            "15M",
            "PT15",
            "P1H",
            "PT1X",
            "P1DT",
            "P200000000000D",
            "PT99999999999999999999H",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
