//! Parsing of human-written durations for command-line flags: `250ms`,
//! `10s`, `2m`, `1h`, `1.5s`. A number without a unit is an error for flags
//! where the unit is not obvious (`--max-offset`), and seconds where the
//! flag says so (`workload --duration`).

use std::time::Duration;

/// Parses `<number><unit>` with unit `ms`, `s`, `m` or `h`. The number may
/// have a fractional part (`1.5s`); whitespace around it is ignored.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    parse(s, None)
}

/// Like [`parse_duration`], but a bare number (`10`) means seconds.
pub fn parse_seconds_or_duration(s: &str) -> Result<Duration, String> {
    parse(s, Some(1.0))
}

fn parse(s: &str, bare_unit_secs: Option<f64>) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    let bad = |why: &str| format!("invalid duration '{s}': {why} (examples: 250ms, 10s, 2m)");
    if num.is_empty() {
        return Err(bad("expected a number"));
    }
    let n: f64 = num.parse().map_err(|_| bad("not a number"))?;
    let unit_secs = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "" => match bare_unit_secs {
            Some(u) => u,
            None => return Err(bad("missing unit")),
        },
        _ => return Err(bad(&format!("unknown unit '{unit}'"))),
    };
    let secs = n * unit_secs;
    // A year is plenty for any flag; this also keeps from_secs_f64 from
    // panicking on absurd input.
    if !secs.is_finite() || secs > 365.0 * 86400.0 {
        return Err(bad("too large"));
    }
    // Round to whole nanoseconds so that 0.001 * 250 is exactly 250ms.
    Ok(Duration::from_nanos((secs * 1e9).round() as u64))
}

/// Renders a duration the way [`parse_duration`] reads it (for banners).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !d.as_nanos().is_multiple_of(1_000_000) {
        format!("{:.3}ms", d.as_secs_f64() * 1000.0)
    } else if ms > 0 && ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms > 0 && ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 1.5s "), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0.25s"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn rejects_bad_input_with_a_message_naming_it() {
        for bad in [
            "", "ms", "10", "10x", "10 sec", "-5s", "1.2.3s", "s10", "1e9h",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains(&format!("'{bad}'")), "{err}");
        }
        assert!(parse_duration("10").unwrap_err().contains("missing unit"));
        assert!(parse_duration("10x")
            .unwrap_err()
            .contains("unknown unit 'x'"));
    }

    #[test]
    fn bare_numbers_are_seconds_where_allowed() {
        assert_eq!(parse_seconds_or_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(
            parse_seconds_or_duration("10s"),
            Ok(Duration::from_secs(10))
        );
        assert_eq!(
            parse_seconds_or_duration("500ms"),
            Ok(Duration::from_millis(500))
        );
        assert!(parse_seconds_or_duration("ten").is_err());
    }

    #[test]
    fn formats_round_trip() {
        for s in ["250ms", "10s", "2m", "1500ms"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{s}");
        }
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
    }
}
