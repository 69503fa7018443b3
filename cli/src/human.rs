//! Sizes, ages and timestamps as docker prints them. docker formats with
//! Go's `%g` (go-units `HumanSizeWithPrecision`) and go-units'
//! `HumanDuration`; the same rules are reproduced here so that columns and
//! scripts that parse them read alike.

use std::time::{SystemTime, UNIX_EPOCH};

const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];

/// go-units `HumanSizeWithPrecision`: decimal units, `precision`
/// significant digits (`4.26MB`, `1.5kB`, `0B`; docker's quirky `1e+03kB`
/// for 999.5 kB too).
pub fn size(bytes: u64, precision: usize) -> String {
    // Sizes are far below 2^53 bytes; f64 is what docker uses as well.
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < DECIMAL_UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{}{}", go_g(value, precision), DECIMAL_UNITS[unit])
}

/// go-units `BytesSize`: binary units, four significant digits
/// (`23.54GiB`, `1.5MiB`), as `docker info` and `stats` show memory.
pub fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{}{}", go_g(value, 4), UNITS[unit])
}

/// Go's `fmt.Sprintf("%.*g", precision, value)` for a finite value >= 0:
/// exponent form when the exponent is below -4 or at least the precision,
/// trailing zeros dropped.
fn go_g(value: f64, precision: usize) -> String {
    let precision = precision.max(1);
    if value == 0.0 {
        return "0".to_owned();
    }
    // Rust's `{:e}` rounds to the same digit Go's %g does, so the exponent
    // is the one after rounding (9.995 at 3 digits is 1.00e1).
    let sci = format!("{:.*e}", precision - 1, value);
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= precision as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim_zeros(mantissa), exp.abs())
    } else {
        let decimals = usize::try_from(precision as i32 - 1 - exp).unwrap_or(0);
        trim_zeros(&format!("{value:.decimals$}")).to_owned()
    }
}

fn trim_zeros(number: &str) -> &str {
    if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    }
}

/// go-units `HumanDuration` of `seconds` (docker adds " ago").
pub fn duration(seconds: i64) -> String {
    if seconds < 1 {
        return "Less than a second".to_owned();
    }
    if seconds == 1 {
        return "1 second".to_owned();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".to_owned();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // Go's Duration.Round(time.Hour): half an hour rounds up.
    let hours = (seconds + 1800) / 3600;
    if hours == 1 {
        "About an hour".to_owned()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", seconds / 3600 / 24 / 365)
    }
}

/// `2 hours ago` for an RFC 3339 time; `N/A` when absent or unreadable
/// (imported configs may lack it).
pub fn since(created: Option<&str>) -> String {
    match created.and_then(parse_rfc3339) {
        Some(t) => format!("{} ago", duration(now() - t)),
        None => "N/A".to_owned(),
    }
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Seconds since the epoch of an RFC 3339 time
/// (`2024-05-01T10:00:00.123+02:00`); `None` if it is not one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |from: usize, to: usize| -> Option<i64> {
        let digits = text.get(from..to)?;
        if !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = text.get(19..)?;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let r = rest.as_bytes();
            if r.len() != 6 || r[3] != b':' {
                return None;
            }
            let sign = match r[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hh: i64 = rest.get(1..3)?.parse().ok()?;
            let mm: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (hh * 3600 + mm * 60)
        }
    };
    Some(days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset)
}

/// Go's `time.Time.String()` in UTC: `2023-05-19 19:51:46 +0000 UTC`
/// (docker's `images --format json` CreatedAt).
pub fn go_time_string(created: Option<&str>) -> String {
    match created.and_then(parse_rfc3339) {
        Some(t) => {
            let (date, time) = civil(t);
            format!("{date} {time} +0000 UTC")
        }
        None => String::new(),
    }
}

/// RFC 3339 in UTC, whole seconds (docker's `history` CreatedAt).
pub fn rfc3339(created: Option<&str>) -> String {
    match created.and_then(parse_rfc3339) {
        Some(t) => {
            let (date, time) = civil(t);
            format!("{date}T{time}Z")
        }
        None => String::new(),
    }
}

/// (`YYYY-MM-DD`, `HH:MM:SS`) of epoch seconds, in UTC.
fn civil(t: i64) -> (String, String) {
    let (y, m, d) = civil_from_days(t.div_euclid(86400));
    let s = t.rem_euclid(86400);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60),
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_docker_prints_them() {
        assert_eq!(size(0, 3), "0B");
        assert_eq!(size(512, 3), "512B");
        assert_eq!(size(1500, 3), "1.5kB");
        assert_eq!(size(12_345, 3), "12.3kB");
        assert_eq!(size(4_261_550, 3), "4.26MB");
        assert_eq!(size(999_500, 3), "1e+03kB");
        assert_eq!(size(1_000_000, 3), "1MB");
        assert_eq!(size(1_234_567_890, 4), "1.235GB");
    }

    #[test]
    fn durations_read_as_go_units() {
        assert_eq!(duration(0), "Less than a second");
        assert_eq!(duration(1), "1 second");
        assert_eq!(duration(59), "59 seconds");
        assert_eq!(duration(90), "About a minute");
        assert_eq!(duration(45 * 60), "45 minutes");
        assert_eq!(duration(3600 + 1700), "About an hour");
        assert_eq!(duration(2 * 3600), "2 hours");
        assert_eq!(duration(3 * 86400), "3 days");
        assert_eq!(duration(20 * 86400), "2 weeks");
        assert_eq!(duration(90 * 86400), "3 months");
        assert_eq!(duration(800 * 86400), "2 years");
    }

    #[test]
    fn timestamps_parse_and_print_in_utc() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01T02:00:00.5+02:00"), Some(0));
        assert_eq!(parse_rfc3339("2024-02-29T12:00:00Z"), Some(1_709_208_000));
        assert_eq!(parse_rfc3339("2024-02-29"), None);
        assert_eq!(parse_rfc3339("2024-13-01T00:00:00Z"), None);
        assert_eq!(
            go_time_string(Some("2023-05-19T21:51:46+02:00")),
            "2023-05-19 19:51:46 +0000 UTC"
        );
        assert_eq!(
            rfc3339(Some("2000-03-01T00:00:00Z")),
            "2000-03-01T00:00:00Z"
        );
        assert_eq!(since(None), "N/A");
    }
}
