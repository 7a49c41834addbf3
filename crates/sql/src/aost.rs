//! `AS OF SYSTEM TIME`: historical reads at a consistent snapshot in the
//! past.
//!
//! The clause follows the FROM list of a SELECT (`SELECT * FROM t AS OF
//! SYSTEM TIME '-10s' WHERE ...`) or ends a BEGIN (`BEGIN AS OF SYSTEM
//! TIME '2026-11-26 10:00:00'`), which opens a read-only transaction at
//! that time. sqlparser does not know it, so [`extract`] cuts it out of the
//! token stream before parsing and [`AsOf::resolve`] turns it into an HLC
//! timestamp when the statement runs (a relative time is relative to each
//! execution). The value is one of:
//!
//! - a negative interval: `'-10s'`, `'-1m30s'`, `'-500ms'`, `'-2 hours'`;
//! - a timestamp: `'2026-11-26 10:00:00.5'` (UTC unless it names an offset);
//! - an HLC timestamp as a decimal: `'1764151200000000000.0000000000'`
//!   (nanoseconds since the epoch, then the logical counter).
//!
//! A time in the future is refused; one older than the GC window is
//! refused by the ranges it reads (their old versions may be gone).

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};
use tessera_common::Timestamp;

use crate::error::{code, Result, SqlError};

/// The time of an `AS OF SYSTEM TIME` clause, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct AsOf {
    text: String,
}

/// Finds an `AS OF SYSTEM TIME <value>` clause in `sql`. Returns the SQL
/// without it and the clause's value, or `None` if there is none.
pub fn extract(sql: &str) -> Result<Option<(String, AsOf)>> {
    // Cheap test first: almost no statement has the clause.
    if !sql.to_ascii_uppercase().contains("SYSTEM") {
        return Ok(None);
    }
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else {
        return Ok(None); // the parser reports the syntax error
    };
    let significant: Vec<usize> = (0..tokens.len())
        .filter(|&i| !matches!(tokens[i], Token::Whitespace(_)))
        .collect();
    let is_word = |i: usize, w: &str| {
        matches!(&tokens[i], Token::Word(word) if word.quote_style.is_none()
            && word.value.eq_ignore_ascii_case(w))
    };
    let Some(at) = significant.windows(4).position(|w| {
        is_word(w[0], "AS")
            && is_word(w[1], "OF")
            && is_word(w[2], "SYSTEM")
            && is_word(w[3], "TIME")
    }) else {
        return Ok(None);
    };
    let first = significant[at];
    let Some(&value_at) = significant.get(at + 4) else {
        return Err(SqlError::syntax(
            "syntax error: AS OF SYSTEM TIME needs a time, e.g. '-10s'",
        ));
    };
    let text = match &tokens[value_at] {
        Token::SingleQuotedString(s) => s.clone(),
        Token::Number(n, _) => n.clone(),
        other => {
            return Err(SqlError::syntax(format!(
                "syntax error: AS OF SYSTEM TIME expects a string constant such as '-10s' \
                 or '2026-11-26 10:00:00', found {other}"
            )))
        }
    };
    let mut rest = String::with_capacity(sql.len());
    for (i, t) in tokens.iter().enumerate() {
        if i == first {
            rest.push(' ');
        }
        if (first..=value_at).contains(&i) {
            continue;
        }
        rest.push_str(&token_text(t));
    }
    Ok(Some((rest, AsOf { text })))
}

/// A token as SQL text (line comments keep their line end).
fn token_text(t: &Token) -> String {
    match t {
        Token::Whitespace(Whitespace::SingleLineComment { comment, prefix }) => {
            let mut s = format!("{prefix}{comment}");
            if !s.ends_with('\n') {
                s.push('\n');
            }
            s
        }
        other => other.to_string(),
    }
}

impl AsOf {
    /// The HLC timestamp the clause names, given the current time `now`.
    pub fn resolve(&self, now: Timestamp) -> Result<Timestamp> {
        let text = self.text.trim();
        let ts = if let Some(ms) = parse_interval_ms(text) {
            if ms >= 0 {
                return Err(SqlError::new(
                    code::INVALID_PARAMETER_VALUE,
                    format!("AS OF SYSTEM TIME: interval '{text}' must be negative (in the past)"),
                ));
            }
            Timestamp::new(now.wall.saturating_sub(ms.unsigned_abs()), 0)
        } else if let Some(ts) = parse_decimal(text) {
            ts
        } else {
            let micros = crate::types::parse_timestamp(text).map_err(|_| {
                SqlError::new(
                    code::INVALID_DATETIME_FORMAT,
                    format!(
                        "AS OF SYSTEM TIME: '{text}' is neither an interval ('-10s'), a \
                         timestamp ('2026-11-26 10:00:00') nor an HLC timestamp"
                    ),
                )
            })?;
            Timestamp::new(micros.max(0) as u64 / 1000, 0)
        };
        if ts > now {
            return Err(SqlError::new(
                code::INVALID_PARAMETER_VALUE,
                format!("AS OF SYSTEM TIME: cannot read in the future ({ts} > {now})"),
            ));
        }
        if ts.is_zero() {
            return Err(SqlError::new(
                code::INVALID_PARAMETER_VALUE,
                "AS OF SYSTEM TIME: the time must be after the epoch",
            ));
        }
        Ok(ts)
    }
}

/// `-10s`, `-1m30s`, `- 2 hours`, `-500ms`, `-1.5s` in milliseconds.
fn parse_interval_ms(s: &str) -> Option<i64> {
    let (sign, body) = match s.strip_prefix('-') {
        Some(b) => (-1.0, b),
        None => (1.0, s.strip_prefix('+').unwrap_or(s)),
    };
    let mut total = 0.0f64;
    let mut rest = body.trim_start();
    let mut parts = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = rest[num_len..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic() && c != 'µ')
            .unwrap_or(rest.len());
        let unit = rest[..unit_len].to_ascii_lowercase();
        rest = rest[unit_len..].trim_start();
        let ms = match unit.as_str() {
            "us" | "µs" | "usec" | "usecs" | "microsecond" | "microseconds" => 0.001,
            "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 1.0,
            "s" | "sec" | "secs" | "second" | "seconds" => 1_000.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60_000.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000.0,
            "d" | "day" | "days" => 86_400_000.0,
            _ => return None,
        };
        total += n * ms;
        parts += 1;
    }
    (parts > 0).then_some((sign * total).round() as i64)
}

/// `<nanoseconds>[.<logical>]`, the HLC form.
fn parse_decimal(s: &str) -> Option<Timestamp> {
    let (nanos, logical) = match s.split_once('.') {
        Some((n, l)) => (n, l),
        None => (s, "0"),
    };
    if nanos.is_empty()
        || !nanos.bytes().all(|b| b.is_ascii_digit())
        || !logical.bytes().all(|b| b.is_ascii_digit())
        || logical.len() > 10
    {
        return None;
    }
    let nanos: u64 = nanos.parse().ok()?;
    let logical: u32 = if logical.is_empty() {
        0
    } else {
        format!("{logical:0<10}")
            .parse::<u64>()
            .ok()?
            .min(u32::MAX as u64) as u32
    };
    Some(Timestamp::new(nanos / 1_000_000, logical))
}

/// The HLC form of `ts` accepted back by `AS OF SYSTEM TIME`.
pub fn decimal(ts: Timestamp) -> String {
    format!("{}.{:010}", ts.wall as u128 * 1_000_000, ts.logical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::new(1_764_151_200_000, 7)
    }

    #[test]
    fn the_clause_is_cut_out_of_selects_and_begins() {
        let (sql, at) = extract("SELECT * FROM t AS OF SYSTEM TIME '-10s' WHERE a = 1")
            .unwrap()
            .unwrap();
        assert_eq!(
            sql.split_whitespace().collect::<Vec<_>>().join(" "),
            "SELECT * FROM t WHERE a = 1"
        );
        assert_eq!(at.text, "-10s");
        let (sql, _) = extract("begin as of system time '-1m'").unwrap().unwrap();
        assert_eq!(sql.trim(), "begin");
        // Not a clause: inside a string, or quoted identifiers.
        assert_eq!(extract("SELECT 'as of system time 1'").unwrap(), None);
        assert_eq!(extract("SELECT 1 AS \"of\"").unwrap(), None);
        assert!(extract("SELECT * FROM t AS OF SYSTEM TIME").is_err());
        assert!(extract("SELECT * FROM t AS OF SYSTEM TIME now()").is_err());
    }

    #[test]
    fn intervals_timestamps_and_hlc_decimals_resolve() {
        let at = |t: &str| AsOf { text: t.into() }.resolve(now());
        assert_eq!(at("-10s").unwrap(), Timestamp::new(now().wall - 10_000, 0));
        assert_eq!(
            at("-1m30s").unwrap(),
            Timestamp::new(now().wall - 90_000, 0)
        );
        assert_eq!(
            at("-2 hours").unwrap(),
            Timestamp::new(now().wall - 7_200_000, 0)
        );
        assert_eq!(at("-500ms").unwrap(), Timestamp::new(now().wall - 500, 0));
        assert_eq!(
            at("2025-11-26 09:00:00").unwrap(),
            Timestamp::new(now().wall - 3_600_000, 0)
        );
        let hlc = Timestamp::new(1_764_151_100_000, 3);
        assert_eq!(at(&decimal(hlc)).unwrap(), hlc);
        assert_eq!(at("10s").unwrap_err().code, code::INVALID_PARAMETER_VALUE);
        assert_eq!(
            at("2030-01-01").unwrap_err().code,
            code::INVALID_PARAMETER_VALUE
        );
        assert_eq!(
            at("yesterday-ish").unwrap_err().code,
            code::INVALID_DATETIME_FORMAT
        );
    }
}
