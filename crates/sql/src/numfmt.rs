//! `to_char(number, template)`: PostgreSQL's numeric formatting for the
//! common template patterns: `9` (digit, blank when a leading zero), `0`
//! (digit, zero kept), `.` / `D` (decimal point), `,` / `G` (group
//! separator, blank before the first digit), `FM` (no padding, no trailing
//! zeros in `9` places), `S` (sign next to the number), `MI` / `PL` / `SG`
//! (minus / plus / either at that place). Other characters are copied.
//! A number with more integer digits than the template has places prints
//! `#` in every digit place, as in PostgreSQL.

use crate::error::{code, Result, SqlError};
use crate::types::Decimal;

#[derive(Clone, Copy, PartialEq)]
enum Tok {
    Nine,
    Zero,
    Point,
    Group,
    AnchoredSign,
    Minus,
    Plus,
    Signed,
    Lit(char),
}

fn parse(template: &str) -> (Vec<Tok>, bool) {
    let chars: Vec<char> = template.chars().collect();
    let mut toks = Vec::new();
    let mut fill = false;
    let mut i = 0;
    while i < chars.len() {
        let two: String = chars[i..(i + 2).min(chars.len())]
            .iter()
            .collect::<String>()
            .to_ascii_uppercase();
        let (tok, width) = match (two.as_str(), chars[i]) {
            ("FM", _) => {
                fill = true;
                i += 2;
                continue;
            }
            ("MI", _) => (Tok::Minus, 2),
            ("PL", _) => (Tok::Plus, 2),
            ("SG", _) => (Tok::Signed, 2),
            (_, '9') => (Tok::Nine, 1),
            (_, '0') => (Tok::Zero, 1),
            (_, '.') | (_, 'D') | (_, 'd') => (Tok::Point, 1),
            (_, ',') | (_, 'G') | (_, 'g') => (Tok::Group, 1),
            (_, 'S') | (_, 's') => (Tok::AnchoredSign, 1),
            (_, c) => (Tok::Lit(c), 1),
        };
        toks.push(tok);
        i += width;
    }
    (toks, fill)
}

/// Formats `value` by `template`.
pub fn to_char(value: &Decimal, template: &str) -> Result<String> {
    if value.is_special() {
        return Err(SqlError::new(
            code::INVALID_PARAMETER_VALUE,
            "cannot format NaN or infinity with to_char",
        ));
    }
    let (toks, fill) = parse(template);
    let point = toks.iter().position(|t| *t == Tok::Point);
    let is_digit = |t: &Tok| matches!(t, Tok::Nine | Tok::Zero);
    let int_places = toks[..point.unwrap_or(toks.len())]
        .iter()
        .filter(|t| is_digit(t))
        .count();
    let frac_places = point.map_or(0, |p| toks[p..].iter().filter(|t| is_digit(t)).count());
    let rounded = value.round_to(frac_places as u32)?;
    let negative = rounded.mantissa < 0;
    let digits = rounded.mantissa.unsigned_abs().to_string();
    let scale = rounded.scale as usize;
    let digits = format!("{digits:0>width$}", width = scale + 1);
    let (int_digits, frac_digits) = digits.split_at(digits.len() - scale);
    let int_digits = int_digits.trim_start_matches('0');
    let frac_digits = format!("{:0<frac_places$}", &frac_digits[..scale.min(frac_places)]);
    let overflow = int_digits.len() > int_places;
    let explicit_sign = toks
        .iter()
        .any(|t| matches!(t, Tok::AnchoredSign | Tok::Minus | Tok::Plus | Tok::Signed));
    // The first '0' place starts zero padding; digits fill from the right.
    let first_zero = toks
        .iter()
        .filter(|t| is_digit(t))
        .position(|t| *t == Tok::Zero)
        .unwrap_or(usize::MAX);
    let leading = int_places.saturating_sub(int_digits.len());
    // Trailing '9' places of the fraction that FM drops (zeros).
    let frac_kept = if fill {
        let mut keep = frac_places;
        let frac_toks: Vec<Tok> = point.map_or(vec![], |p| {
            toks[p..].iter().copied().filter(|t| is_digit(t)).collect()
        });
        while keep > 0
            && frac_toks[keep - 1] == Tok::Nine
            && frac_digits.as_bytes()[keep - 1] == b'0'
        {
            keep -= 1;
        }
        keep
    } else {
        frac_places
    };
    let sign_char = if negative { '-' } else { '+' };
    // `S` after the last digit place puts the sign there (`999S`: `485-`);
    // elsewhere it goes just before the number.
    let last_digit = toks.iter().rposition(is_digit);
    let trailing_s = toks
        .iter()
        .position(|t| *t == Tok::AnchoredSign)
        .is_some_and(|s| last_digit.is_none_or(|d| s > d));
    let mut out = String::new();
    let mut digit_index = 0; // digit places seen (integer, then fraction)
    let mut started = false; // a digit of the number (or a kept zero) printed
    let mut sign_pending = !explicit_sign || (toks.contains(&Tok::AnchoredSign) && !trailing_s);
    let put_sign = |out: &mut String, pending: &mut bool| {
        if *pending {
            *pending = false;
            if explicit_sign {
                out.push(sign_char);
            } else if negative {
                out.push('-');
            } else if !fill {
                out.push(' ');
            }
        }
    };
    let mut after_point = false;
    for t in &toks {
        match t {
            Tok::Nine | Tok::Zero if !after_point => {
                let i = digit_index;
                digit_index += 1;
                if overflow {
                    put_sign(&mut out, &mut sign_pending);
                    out.push('#');
                } else if i < leading {
                    if i >= first_zero {
                        put_sign(&mut out, &mut sign_pending);
                        out.push('0');
                        started = true;
                    } else if !fill {
                        out.push(' ');
                    }
                } else {
                    put_sign(&mut out, &mut sign_pending);
                    out.push(char::from(int_digits.as_bytes()[i - leading]));
                    started = true;
                }
            }
            Tok::Nine | Tok::Zero => {
                let i = digit_index - int_places;
                digit_index += 1;
                if overflow {
                    out.push('#');
                } else if i < frac_kept {
                    out.push(char::from(frac_digits.as_bytes()[i]));
                }
            }
            Tok::Point => {
                put_sign(&mut out, &mut sign_pending);
                after_point = true;
                out.push('.');
            }
            Tok::Group if !after_point && !started && !overflow => {
                if !fill {
                    out.push(' ');
                }
            }
            Tok::Group => out.push(','),
            Tok::AnchoredSign if trailing_s => out.push(sign_char),
            Tok::AnchoredSign => {}
            Tok::Minus if negative => out.push('-'),
            Tok::Plus if !negative => out.push('+'),
            Tok::Minus | Tok::Plus if !fill => out.push(' '),
            Tok::Minus | Tok::Plus => {}
            Tok::Signed => out.push(sign_char),
            Tok::Lit(c) => out.push(*c),
        }
    }
    put_sign(&mut out, &mut sign_pending);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(v: &str, t: &str) -> String {
        to_char(&Decimal::parse(v).unwrap(), t).unwrap()
    }

    /// Outputs of PostgreSQL 15 for the same calls.
    #[test]
    fn formats_as_postgresql_does() {
        assert_eq!(fmt("1234.5", "9999.99"), " 1234.50");
        assert_eq!(fmt("-1234.5", "9999.99"), "-1234.50");
        assert_eq!(fmt("5", "999"), "   5");
        assert_eq!(fmt("-5", "999"), "  -5");
        assert_eq!(fmt("5", "000"), " 005");
        assert_eq!(fmt("1234.5", "FM9999.99"), "1234.5");
        assert_eq!(fmt("1234.5", "FM9999.00"), "1234.50");
        assert_eq!(fmt("1234567.891", "9,999,999.99"), " 1,234,567.89");
        assert_eq!(fmt("12", "9,999"), "    12");
        assert_eq!(fmt("12345", "999"), " ###");
        assert_eq!(fmt("0.5", "0.99"), " 0.50");
        assert_eq!(fmt("2.345", "9.9"), " 2.3");
        assert_eq!(fmt("-12", "S999"), " -12");
        assert_eq!(fmt("12", "999MI"), " 12 ");
        assert_eq!(fmt("-12", "999MI"), " 12-");
        assert_eq!(fmt("42", "FM999"), "42");
        // The examples of PostgreSQL's documentation.
        assert_eq!(fmt("-0.1", "99.99"), "  -.10");
        assert_eq!(fmt("-0.1", "FM9.99"), "-.1");
        assert_eq!(fmt("0.1", "0.9"), " 0.1");
        assert_eq!(fmt("12", "9990999.9"), "    0012.0");
        assert_eq!(fmt("12", "FM9990999.9"), "0012.");
        assert_eq!(fmt("485", "999"), " 485");
        assert_eq!(fmt("-485", "999"), "-485");
        assert_eq!(fmt("1485", "9,999"), " 1,485");
        assert_eq!(fmt("148.5", "999.999"), " 148.500");
        assert_eq!(fmt("148.5", "FM999.999"), "148.5");
        assert_eq!(fmt("-485", "999S"), "485-");
        assert_eq!(fmt("-485", "999MI"), "485-");
        assert_eq!(fmt("485", "999MI"), "485 ");
        assert_eq!(fmt("485", "FM999MI"), "485");
        assert_eq!(fmt("485", "PL999"), "+485");
        assert_eq!(fmt("485", "SG999"), "+485");
        assert_eq!(fmt("-485", "SG999"), "-485");
        assert_eq!(fmt("-485", "9SG99"), "4-85");
    }
}
