//! Date and time functions that work on calendar fields: `age` (the
//! symbolic difference in years, months and days), `to_char` of a date or
//! timestamp with PostgreSQL's template patterns, `make_date`,
//! `make_timestamp` and `to_timestamp` of epoch seconds; `to_date` and
//! `to_timestamp` of text read with a template; `justify_days`,
//! `justify_hours` and `justify_interval`.

use crate::error::{Result, SqlError};
use crate::types::{self, Interval, MICROS_PER_DAY};

/// A timestamp's calendar fields.
struct Fields {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
    micros: i64,
}

fn fields(ts: i64) -> Fields {
    let days = ts.div_euclid(MICROS_PER_DAY);
    let in_day = ts.rem_euclid(MICROS_PER_DAY);
    let (year, month, day) = types::civil_from_days(days);
    Fields {
        year,
        month,
        day,
        hour: in_day / 3_600_000_000,
        minute: in_day / 60_000_000 % 60,
        second: in_day / 1_000_000 % 60,
        micros: in_day % 1_000_000,
    }
}

fn out_of_range(what: &str) -> SqlError {
    SqlError::new("22008", format!("{what} out of range"))
}

/// `age(a, b)`: `a - b` as years, months, days and time, borrowing from
/// the month before as PostgreSQL does (`age('2001-04-10', '1957-06-13')`
/// is 43 years 9 mons 27 days).
pub fn age(a: i64, b: i64) -> Interval {
    let (f1, f2) = (fields(a), fields(b));
    let sign = if a < b { -1 } else { 1 };
    let mut us = sign * (f1.micros - f2.micros);
    let mut sec = sign * (f1.second - f2.second);
    let mut min = sign * (f1.minute - f2.minute);
    let mut hour = sign * (f1.hour - f2.hour);
    let mut day = sign * (f1.day as i64 - f2.day as i64);
    let mut mon = sign * (f1.month as i64 - f2.month as i64);
    let mut year = sign * (f1.year - f2.year);
    while us < 0 {
        us += 1_000_000;
        sec -= 1;
    }
    while sec < 0 {
        sec += 60;
        min -= 1;
    }
    while min < 0 {
        min += 60;
        hour -= 1;
    }
    while hour < 0 {
        hour += 24;
        day -= 1;
    }
    while day < 0 {
        // The length of the earlier timestamp's month.
        let (y, m) = if a < b {
            (f1.year, f1.month)
        } else {
            (f2.year, f2.month)
        };
        day += types::days_in_month(y, m) as i64;
        mon -= 1;
    }
    while mon < 0 {
        mon += 12;
        year -= 1;
    }
    Interval {
        months: (sign * (year * 12 + mon)) as i32,
        days: (sign * day) as i32,
        micros: sign * (((hour * 60 + min) * 60 + sec) * 1_000_000 + us),
    }
}

/// `make_date(year, month, day)`, as days since 1970-01-01.
pub fn make_date(year: i64, month: i64, day: i64) -> Result<i32> {
    let bad = || {
        SqlError::new(
            "22008",
            format!("date field value out of range: {year}-{month:02}-{day:02}"),
        )
    };
    if year == 0 || !(1..=12).contains(&month) || day < 1 {
        return Err(bad());
    }
    // Negative years are BC: year -1 is year 0 of the proleptic calendar.
    let y = if year < 0 { year + 1 } else { year };
    if day > types::days_in_month(y, month as u32) as i64 {
        return Err(bad());
    }
    i32::try_from(types::days_from_civil(y, month as u32, day as u32)).map_err(|_| bad())
}

/// `make_timestamp(year, month, day, hour, min, sec)`, in µs.
pub fn make_timestamp(date: i32, hour: i64, min: i64, sec: f64) -> Result<i64> {
    if !(0..=24).contains(&hour) || !(0..60).contains(&min) || !(0.0..=60.0).contains(&sec) {
        return Err(SqlError::new(
            "22008",
            format!("time field value out of range: {hour}:{min:02}:{sec:02}"),
        ));
    }
    let in_day = (hour * 60 + min) * 60_000_000 + (sec * 1e6).round() as i64;
    (date as i64)
        .checked_mul(MICROS_PER_DAY)
        .and_then(|d| d.checked_add(in_day))
        .ok_or_else(|| out_of_range("timestamp"))
}

/// `to_timestamp(seconds since the epoch)`, in µs.
pub fn from_epoch_seconds(secs: f64) -> Result<i64> {
    let micros = (secs * 1e6).round();
    if !micros.is_finite() || micros.abs() > 9.2e18 {
        return Err(out_of_range("timestamp"));
    }
    Ok(micros as i64)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Template patterns, longest first so that `HH24` wins over `HH`.
const PATTERNS: [&str; 38] = [
    "HH24", "HH12", "YYYY", "MONTH", "Month", "month", "DDD", "MON", "Mon", "mon", "DAY", "Day",
    "day", "YYY", "A.M.", "P.M.", "a.m.", "p.m.", "HH", "MI", "SS", "MS", "US", "YY", "MM", "DD",
    "DY", "Dy", "dy", "AM", "PM", "am", "pm", "TZ", "tz", "Y", "D", "Q",
];

fn cased(word: &str, pattern: &str) -> String {
    if pattern.chars().all(|c| !c.is_ascii_lowercase()) {
        word.to_uppercase()
    } else if pattern.chars().all(|c| !c.is_ascii_uppercase()) {
        word.to_lowercase()
    } else {
        word.to_string()
    }
}

/// `to_char(timestamp, template)`: PostgreSQL's date/time template
/// patterns (`YYYY`, `MM`, `DD`, `HH24`, `HH12`, `MI`, `SS`, `MS`, `US`,
/// `Mon`, `Month`, `Dy`, `Day`, `AM`, `D`, `DDD`, `Q`, `TZ`, the `FM`
/// prefix that drops padding, and `"quoted"` text); other characters are
/// copied.
pub fn to_char(ts: i64, template: &str) -> String {
    let f = fields(ts);
    let days = ts.div_euclid(MICROS_PER_DAY);
    let weekday = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    let day_of_year = days - types::days_from_civil(f.year, 1, 1) + 1;
    let hour12 = match f.hour % 12 {
        0 => 12,
        h => h,
    };
    let pm = f.hour >= 12;
    let mut out = String::new();
    let mut rest = template;
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            out.push_str(&quoted[..end]);
            rest = quoted.get(end + 1..).unwrap_or("");
            continue;
        }
        let (fill_mode, body) = match rest.strip_prefix("FM") {
            Some(b) => (true, b),
            None => (false, rest),
        };
        let Some(p) = PATTERNS.iter().find(|p| body.starts_with(**p)) else {
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        };
        let num = |v: i64, width: usize| {
            if fill_mode {
                v.to_string()
            } else {
                format!("{v:0width$}")
            }
        };
        let word = |w: &str| {
            let w = cased(w, p);
            if fill_mode {
                w
            } else {
                format!("{w:<9}")
            }
        };
        let text = match *p {
            "YYYY" => num(f.year, 4),
            "YYY" => num(f.year % 1000, 3),
            "YY" => num(f.year % 100, 2),
            "Y" => num(f.year % 10, 1),
            "MM" => num(f.month as i64, 2),
            "DD" => num(f.day as i64, 2),
            "DDD" => num(day_of_year, 3),
            "D" => num(weekday as i64 + 1, 1),
            "Q" => num((f.month as i64 - 1) / 3 + 1, 1),
            "HH24" => num(f.hour, 2),
            "HH12" | "HH" => num(hour12, 2),
            "MI" => num(f.minute, 2),
            "SS" => num(f.second, 2),
            "MS" => num(f.micros / 1000, 3),
            "US" => num(f.micros, 6),
            "MONTH" | "Month" | "month" => word(MONTHS[f.month as usize - 1]),
            "MON" | "Mon" | "mon" => cased(&MONTHS[f.month as usize - 1][..3], p),
            "DAY" | "Day" | "day" => word(DAYS[weekday]),
            "DY" | "Dy" | "dy" => cased(&DAYS[weekday][..3], p),
            "AM" | "PM" => (if pm { "PM" } else { "AM" }).to_string(),
            "am" | "pm" => (if pm { "pm" } else { "am" }).to_string(),
            "A.M." | "P.M." => (if pm { "P.M." } else { "A.M." }).to_string(),
            "a.m." | "p.m." => (if pm { "p.m." } else { "a.m." }).to_string(),
            "TZ" => "UTC".to_string(),
            "tz" => "utc".to_string(),
            _ => unreachable!("every pattern is handled"),
        };
        out.push_str(&text);
        rest = &body[p.len()..];
    }
    out
}

/// `to_date(text, template)` and `to_timestamp(text, template)`: reads
/// the fields the template names (`YYYY`, `YY`, `MM`, `DD`, `DDD`, `HH24`,
/// `HH12`, `MI`, `SS`, `MS`, `US`, `Mon`, `Month`, `AM`/`PM`; `Dy`/`Day`
/// and `TZ` are read and ignored); any other template character skips one
/// character of the input, and spaces in the input before a field are
/// skipped as PostgreSQL does. Unset fields are those of 0001-01-01 00:00.
pub fn from_template(input: &str, template: &str) -> Result<i64> {
    let bad = |what: String| SqlError::new("22007", what);
    let (mut year, mut month, mut day) = (1i64, 1i64, 1i64);
    let (mut hour, mut minute, mut second, mut micros) = (0i64, 0i64, 0i64, 0i64);
    let mut day_of_year = None;
    let mut pm = None;
    let mut hour12 = false;
    let mut rest = input;
    let mut tpl = template;
    while !tpl.is_empty() {
        if let Some(quoted) = tpl.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            for _ in quoted[..end].chars() {
                let mut cs = rest.chars();
                cs.next();
                rest = cs.as_str();
            }
            tpl = quoted.get(end + 1..).unwrap_or("");
            continue;
        }
        let body = tpl.strip_prefix("FM").unwrap_or(tpl);
        let Some(p) = PATTERNS.iter().find(|p| body.starts_with(**p)) else {
            let c = tpl.chars().next().expect("not empty");
            tpl = &tpl[c.len_utf8()..];
            // A separator in the template skips one character of input.
            let mut cs = rest.chars();
            if cs.next().is_some() {
                rest = cs.as_str();
            }
            continue;
        };
        tpl = &body[p.len()..];
        rest = rest.trim_start();
        let mut number = |width: usize, name: &str| -> Result<i64> {
            let neg = rest.starts_with('-') && *name == *"year";
            let digits_from = usize::from(neg);
            let len = rest[digits_from..]
                .bytes()
                .take(width)
                .take_while(u8::is_ascii_digit)
                .count();
            if len == 0 {
                return Err(bad(format!(
                    "invalid value \"{}\" for \"{p}\"",
                    rest.chars().take(width).collect::<String>()
                )));
            }
            let after = rest.as_bytes().get(digits_from + len).copied();
            if len < width && after.is_some_and(|b| b.is_ascii_alphabetic()) {
                return Err(bad(format!(
                    "invalid value \"{}\" for \"{p}\"",
                    rest.chars().take(width).collect::<String>()
                )));
            }
            let v: i64 = rest[digits_from..digits_from + len]
                .parse()
                .expect("digits");
            rest = &rest[digits_from + len..];
            Ok(if neg { -v } else { v })
        };
        match *p {
            "YYYY" => year = number(4, "year")?,
            "YYY" => year = 2000 + number(3, "year")?,
            "YY" => {
                let y = number(2, "year")?;
                year = if y < 70 { 2000 + y } else { 1900 + y };
            }
            "Y" => year = 2000 + number(1, "year")?,
            "MM" => month = number(2, "month")?,
            "DD" => day = number(2, "day")?,
            "DDD" => day_of_year = Some(number(3, "day")?),
            "HH24" => hour = number(2, "hour")?,
            "HH12" | "HH" => {
                hour = number(2, "hour")?;
                hour12 = true;
            }
            "MI" => minute = number(2, "minute")?,
            "SS" => second = number(2, "second")?,
            "MS" => micros = number(3, "ms")? * 1000,
            "US" => micros = number(6, "us")?,
            "D" | "Q" => {
                number(1, "field")?;
            }
            "MONTH" | "Month" | "month" | "MON" | "Mon" | "mon" => {
                let lower = rest.to_ascii_lowercase();
                let full = p.len() > 3;
                let found = MONTHS.iter().enumerate().find_map(|(i, m)| {
                    let m = m.to_ascii_lowercase();
                    let word = if full { m.as_str() } else { &m[..3] };
                    lower.starts_with(word).then_some((i, word.len()))
                });
                let Some((i, len)) = found else {
                    return Err(bad(format!(
                        "invalid value \"{}\" for \"{p}\"",
                        rest.chars().take(3).collect::<String>()
                    )));
                };
                month = i as i64 + 1;
                rest = &rest[len..];
            }
            "DAY" | "Day" | "day" | "DY" | "Dy" | "dy" => {
                let n = rest.chars().take_while(|c| c.is_alphabetic()).count();
                rest = &rest[rest.char_indices().nth(n).map_or(rest.len(), |(i, _)| i)..];
            }
            "AM" | "PM" | "am" | "pm" | "A.M." | "P.M." | "a.m." | "p.m." => {
                let lower = rest.to_ascii_lowercase();
                let (is_pm, len) = if lower.starts_with("p.m.") {
                    (true, 4)
                } else if lower.starts_with("a.m.") {
                    (false, 4)
                } else if lower.starts_with("pm") {
                    (true, 2)
                } else if lower.starts_with("am") {
                    (false, 2)
                } else {
                    return Err(bad(format!("invalid value for \"{p}\"")));
                };
                pm = Some(is_pm);
                rest = &rest[len..];
            }
            _ => {
                // TZ: a zone name; only UTC is known here.
                let n = rest.chars().take_while(|c| c.is_alphabetic()).count();
                rest = &rest[rest.char_indices().nth(n).map_or(rest.len(), |(i, _)| i)..];
            }
        }
    }
    if hour12 || pm.is_some() {
        if !(1..=12).contains(&hour) {
            return Err(SqlError::new(
                "22008",
                format!("hour \"{hour}\" is invalid for the 12-hour clock"),
            ));
        }
        hour %= 12;
        if pm == Some(true) {
            hour += 12;
        }
    }
    let date = match day_of_year {
        Some(n) => {
            let jan1 = make_date(year, 1, 1)?;
            let days_in_year = if types::days_in_month(year, 2) == 29 {
                366
            } else {
                365
            };
            if !(1..=days_in_year).contains(&n) {
                return Err(out_of_range("date/time field value"));
            }
            jan1 + n as i32 - 1
        }
        None => make_date(year, month, day)?,
    };
    if hour > 24 || minute > 59 || second > 60 {
        return Err(out_of_range("date/time field value"));
    }
    make_timestamp(date, hour, minute, second as f64).map(|t| t + micros)
}

/// `justify_days`: every 30 days become a month (signs made to agree).
pub fn justify_days(mut i: Interval) -> Interval {
    i.months += i.days / 30;
    i.days %= 30;
    if i.months > 0 && i.days < 0 {
        i.days += 30;
        i.months -= 1;
    } else if i.months < 0 && i.days > 0 {
        i.days -= 30;
        i.months += 1;
    }
    i
}

/// `justify_hours`: every 24 hours become a day (signs made to agree).
pub fn justify_hours(mut i: Interval) -> Interval {
    i.days += (i.micros / MICROS_PER_DAY) as i32;
    i.micros %= MICROS_PER_DAY;
    if i.days > 0 && i.micros < 0 {
        i.micros += MICROS_PER_DAY;
        i.days -= 1;
    } else if i.days < 0 && i.micros > 0 {
        i.micros -= MICROS_PER_DAY;
        i.days += 1;
    }
    i
}

/// `justify_interval`: both, with every field's sign made to agree.
pub fn justify_interval(mut i: Interval) -> Interval {
    i.days += (i.micros / MICROS_PER_DAY) as i32;
    i.micros %= MICROS_PER_DAY;
    i.months += i.days / 30;
    i.days %= 30;
    if i.months > 0 && (i.days < 0 || (i.days == 0 && i.micros < 0)) {
        i.days += 30;
        i.months -= 1;
    } else if i.months < 0 && (i.days > 0 || (i.days == 0 && i.micros > 0)) {
        i.days -= 30;
        i.months += 1;
    }
    if i.days > 0 && i.micros < 0 {
        i.micros += MICROS_PER_DAY;
        i.days -= 1;
    } else if i.days < 0 && i.micros > 0 {
        i.micros -= MICROS_PER_DAY;
        i.days += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        types::parse_timestamp(s).unwrap()
    }

    #[test]
    fn age_borrows_months_as_postgresql_does() {
        let show = |iv: Interval| (iv.months, iv.days, iv.micros);
        // PostgreSQL's documented example: 43 years 9 mons 27 days.
        assert_eq!(
            show(age(ts("2001-04-10"), ts("1957-06-13"))),
            (43 * 12 + 9, 27, 0)
        );
        // 4 years 1 mon 16 days (January's 31 days borrowed).
        assert_eq!(show(age(ts("2024-03-05"), ts("2020-01-20"))), (49, 16, 0));
        assert_eq!(show(age(ts("2020-01-20"), ts("2024-03-05"))), (-49, -16, 0));
        // 1 mon 1 day 23:00 (February 2024 has 29 days: borrowed from b's month)
        assert_eq!(
            show(age(ts("2024-03-31 00:00"), ts("2024-02-29 01:00"))),
            (1, 1, 23 * 3_600_000_000)
        );
        assert_eq!(show(age(ts("2024-03-01"), ts("2024-01-31"))), (1, 1, 0));
    }

    #[test]
    fn to_char_knows_the_common_patterns() {
        let t = ts("2024-03-05 14:07:09.123456");
        assert_eq!(to_char(t, "YYYY-MM-DD HH24:MI:SS"), "2024-03-05 14:07:09");
        assert_eq!(
            to_char(t, "HH12:MI AM, Dy DD Mon YY"),
            "02:07 PM, Tue 05 Mar 24"
        );
        assert_eq!(
            to_char(t, "Day|FMDay|MONTH|FMMonth"),
            "Tuesday  |Tuesday|MARCH    |March"
        );
        assert_eq!(to_char(t, "MS US DDD D Q"), "123 123456 065 3 1");
        assert_eq!(to_char(t, "FMMM/FMDD \"at\" FMHH12 pm"), "3/5 at 2 pm");
    }

    #[test]
    fn templates_read_dates_and_times_back() {
        let read =
            |s: &str, t: &str| from_template(s, t).map(|v| to_char(v, "YYYY-MM-DD HH24:MI:SS.US"));
        assert_eq!(
            read("2024-01-05", "YYYY-MM-DD").unwrap(),
            "2024-01-05 00:00:00.000000"
        );
        assert_eq!(
            read("05 Mar 2024 02:07:09 PM", "DD Mon YYYY HH12:MI:SS AM").unwrap(),
            "2024-03-05 14:07:09.000000"
        );
        assert_eq!(
            read("20240305 1407", "YYYYMMDD HH24MI").unwrap(),
            "2024-03-05 14:07:00.000000"
        );
        assert_eq!(
            read("Tuesday, March 5, 24", "Day, Month DD, YY").unwrap(),
            "2024-03-05 00:00:00.000000"
        );
        assert_eq!(
            read("2024 065", "YYYY DDD").unwrap(),
            "2024-03-05 00:00:00.000000"
        );
        assert_eq!(
            read("12:30:01.250", "HH24:MI:SS.MS").unwrap(),
            "0001-01-01 12:30:01.250000"
        );
        assert_eq!(read("2023-02-29", "YYYY-MM-DD").unwrap_err().code, "22008");
        assert_eq!(read("20x4-01-05", "YYYY-MM-DD").unwrap_err().code, "22007");
        assert_eq!(read("13:00 PM", "HH12:MI PM").unwrap_err().code, "22008");
    }

    #[test]
    fn justify_moves_days_into_months_and_hours_into_days() {
        let iv = |months, days, hours: i64| Interval {
            months,
            days,
            micros: hours * 3_600_000_000,
        };
        let show = |i: Interval| (i.months, i.days, i.micros / 3_600_000_000);
        assert_eq!(show(justify_days(iv(0, 35, 0))), (1, 5, 0));
        assert_eq!(show(justify_days(iv(1, -5, 0))), (0, 25, 0));
        assert_eq!(show(justify_hours(iv(0, 0, 27))), (0, 1, 3));
        assert_eq!(show(justify_hours(iv(0, 1, -3))), (0, 0, 21));
        // PostgreSQL: justify_interval('1 mon -1 hour') = 29 days 23:00:00
        assert_eq!(show(justify_interval(iv(1, 0, -1))), (0, 29, 23));
        assert_eq!(show(justify_interval(iv(0, 61, 49))), (2, 3, 1));
    }

    #[test]
    fn make_date_refuses_impossible_dates() {
        assert_eq!(make_date(2024, 2, 29).unwrap(), 19782);
        assert!(make_date(2023, 2, 29).is_err());
        assert!(make_date(2024, 13, 1).is_err());
        assert!(make_date(0, 1, 1).is_err());
    }
}
