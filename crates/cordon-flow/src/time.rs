//! Timestamps: epoch milliseconds, RFC 3339 in and out, without a calendar
//! library.

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
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
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parse an RFC 3339 timestamp (`2026-02-05T09:14:02.118403201Z`,
/// `...+01:00`) into epoch milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    parse_rfc3339_us(s).map(|us| us.div_euclid(1000))
}

/// Parse an RFC 3339 timestamp into epoch microseconds (digits past the
/// sixth of the fraction are dropped).
pub fn parse_rfc3339_us(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = (s.get(..10)?, s.get(10..)?);
    let mut parts = date.split('-');
    let (y, m, d) = (
        digits(parts.next()?)?,
        digits(parts.next()?)?,
        digits(parts.next()?)?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let (clock, zone) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => (rest.get(..i)?, rest.get(i..)?),
        None => return None,
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((a, b)) => (a, b),
        None => (clock, ""),
    };
    let mut hms = hms.split(':');
    let (hh, mm, ss) = (
        digits(hms.next()?)?,
        digits(hms.next()?)?,
        digits(hms.next()?)?,
    );
    if hh > 23 || mm > 59 || ss > 60 || hms.next().is_some() {
        return None;
    }
    let micros = if frac.is_empty() {
        0
    } else {
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let f: String = frac.chars().chain("000000".chars()).take(6).collect();
        digits(&f)?
    };
    let offset_minutes = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (oh, om) = zone.get(1..)?.split_once(':')?;
            sign * (digits(oh)? * 60 + digits(om)?)
        }
    };
    let days = days_from_civil(y, m, d);
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss - offset_minutes * 60;
    secs.checked_mul(1_000_000)?.checked_add(micros)
}

/// Format epoch microseconds as RFC 3339 UTC with six fraction digits
/// (`2026-12-07T07:17:45.123456Z`).
pub fn format_rfc3339_us(us: i64) -> String {
    let ms = format_rfc3339(us.div_euclid(1000));
    let extra = us.rem_euclid(1000);
    // `...SS.mmmZ` → `...SS.mmmuuuZ`
    format!("{}{extra:03}Z", &ms[..ms.len() - 1])
}

/// Now, in epoch microseconds.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Format epoch milliseconds as RFC 3339 UTC with milliseconds.
pub fn format_rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Now, in epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Parse a duration such as `24h`, `30m`, `7d`, `90s` into milliseconds.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().ok()?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms)
}

/// Parse a time given on a command line: RFC 3339, epoch seconds, or a
/// duration back from `now` (`24h` = 24 hours ago).
pub fn parse_time_arg(s: &str, now: i64) -> Option<i64> {
    if let Some(ms) = parse_rfc3339(s) {
        return Some(ms);
    }
    if let Some(d) = parse_duration_ms(s) {
        return Some(now - d);
    }
    s.parse::<i64>().ok().map(|secs| secs * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microseconds_round_trip() {
        let us = parse_rfc3339_us("2026-12-07T07:17:45.123456Z").unwrap();
        assert_eq!(us % 1_000_000, 123_456);
        assert_eq!(format_rfc3339_us(us), "2026-12-07T07:17:45.123456Z");
        assert_eq!(parse_rfc3339(&format_rfc3339_us(us)), Some(us / 1000));
        // Nanoseconds are cut to microseconds; offsets are applied.
        assert_eq!(
            parse_rfc3339_us("2026-12-07T08:17:45.1234569+01:00"),
            Some(us)
        );
        assert_eq!(format_rfc3339_us(-1), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn malformed_timestamps_are_refused() {
        for bad in [
            "",
            "2026-12-07",
            "2026-12-07T07:17:45",
            "2026-13-07T07:17:45Z",
            "2026-12-07T07:17:45:01Z",
            "2026-12-07T07:17:45.12a4Z",
            "9999999999-12-07T07:17:45Z",
        ] {
            assert_eq!(parse_rfc3339_us(bad), None, "{bad}");
        }
    }
}
