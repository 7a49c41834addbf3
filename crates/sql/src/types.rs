//! SQL types and values: [`DataType`] (what a column or expression is),
//! [`Datum`] (one value), the exact [`Decimal`], and calendar arithmetic for
//! DATE and TIMESTAMP.
//!
//! Each type has one canonical datum kind, so values of a column always
//! compare, hash and encode the same way:
//!
//! | types                         | datum            |
//! |-------------------------------|------------------|
//! | INT2, INT4, INT8              | `Int(i64)`       |
//! | FLOAT4, FLOAT8                | `Float(f64)`     |
//! | NUMERIC                       | `Decimal`        |
//! | BOOL                          | `Bool`           |
//! | TEXT, VARCHAR(n), CHAR(n)     | `Text`           |
//! | BYTEA                         | `Bytes`          |
//! | DATE                          | `Date(days since 1970-01-01)` |
//! | TIMESTAMP, TIMESTAMPTZ        | `Timestamp(µs since 1970-01-01 UTC)` |
//! | UUID                          | `Bytes` (16 bytes) |
//! | JSON, JSONB                   | `Text` (JSON: as given; JSONB: normalized) |
//!
//! Text input and output follow PostgreSQL's formats (`t`/`f`, `\x` hex
//! bytea, ISO dates, `+00` on TIMESTAMPTZ, which is always shown in UTC;
//! UUIDs as lowercase 8-4-4-4-12 hex; JSON input is validated, JSONB is
//! stored as PostgreSQL prints it: see [`crate::json`]). A UUID or JSON
//! value keeps its form only where its type is known (a column, a cast);
//! `uuid_col::text` gives the bytes' `\x` form, as the datum is shared.

use std::cmp::Ordering;
use std::fmt::Write as _;

use crate::error::{code, Result, SqlError};

/// A SQL type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DataType {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Bool,
    Text,
    Varchar(Option<u32>),
    Char(Option<u32>),
    /// Optional (precision, scale).
    Numeric(Option<(u32, u32)>),
    Bytea,
    Date,
    Timestamp,
    TimestampTz,
    Uuid,
    Json,
    Jsonb,
    /// The type of a bare NULL or an untyped parameter, before inference.
    Unknown,
}

impl DataType {
    /// The PostgreSQL name, as `CREATE TABLE` would accept it.
    pub fn sql_name(&self) -> String {
        match self {
            DataType::Int2 => "int2".into(),
            DataType::Int4 => "int4".into(),
            DataType::Int8 => "int8".into(),
            DataType::Float4 => "float4".into(),
            DataType::Float8 => "float8".into(),
            DataType::Bool => "bool".into(),
            DataType::Text => "text".into(),
            DataType::Varchar(None) => "varchar".into(),
            DataType::Varchar(Some(n)) => format!("varchar({n})"),
            DataType::Char(None) => "bpchar".into(),
            DataType::Char(Some(n)) => format!("char({n})"),
            DataType::Numeric(None) => "numeric".into(),
            DataType::Numeric(Some((p, s))) => format!("numeric({p},{s})"),
            DataType::Bytea => "bytea".into(),
            DataType::Date => "date".into(),
            DataType::Timestamp => "timestamp".into(),
            DataType::TimestampTz => "timestamptz".into(),
            DataType::Uuid => "uuid".into(),
            DataType::Json => "json".into(),
            DataType::Jsonb => "jsonb".into(),
            DataType::Unknown => "unknown".into(),
        }
    }

    /// Parses what [`DataType::sql_name`] produced (catalog storage).
    pub fn from_sql_name(s: &str) -> Option<DataType> {
        let (base, args) = match s.find('(') {
            Some(i) => (&s[..i], Some(s[i + 1..].trim_end_matches(')'))),
            None => (s, None),
        };
        let nums: Vec<u32> = args
            .map(|a| a.split(',').filter_map(|x| x.trim().parse().ok()).collect())
            .unwrap_or_default();
        Some(match base {
            "int2" => DataType::Int2,
            "int4" => DataType::Int4,
            "int8" => DataType::Int8,
            "float4" => DataType::Float4,
            "float8" => DataType::Float8,
            "bool" => DataType::Bool,
            "text" => DataType::Text,
            "varchar" => DataType::Varchar(nums.first().copied()),
            "bpchar" => DataType::Char(None),
            "char" => DataType::Char(nums.first().copied()),
            "numeric" => DataType::Numeric(match nums.as_slice() {
                [p, s] => Some((*p, *s)),
                [p] => Some((*p, 0)),
                _ => None,
            }),
            "bytea" => DataType::Bytea,
            "date" => DataType::Date,
            "timestamp" => DataType::Timestamp,
            "timestamptz" => DataType::TimestampTz,
            "uuid" => DataType::Uuid,
            "json" => DataType::Json,
            "jsonb" => DataType::Jsonb,
            _ => return None,
        })
    }

    pub fn is_integer(&self) -> bool {
        matches!(self, DataType::Int2 | DataType::Int4 | DataType::Int8)
    }

    pub fn is_float(&self) -> bool {
        matches!(self, DataType::Float4 | DataType::Float8)
    }

    pub fn is_numeric(&self) -> bool {
        self.is_integer() || self.is_float() || matches!(self, DataType::Numeric(_))
    }

    pub fn is_string(&self) -> bool {
        matches!(
            self,
            DataType::Text | DataType::Varchar(_) | DataType::Char(_)
        )
    }

    /// The PostgreSQL wire type.
    pub fn pg_type(&self) -> pgwire::api::Type {
        use pgwire::api::Type;
        match self {
            DataType::Int2 => Type::INT2,
            DataType::Int4 => Type::INT4,
            DataType::Int8 => Type::INT8,
            DataType::Float4 => Type::FLOAT4,
            DataType::Float8 => Type::FLOAT8,
            DataType::Bool => Type::BOOL,
            DataType::Text | DataType::Unknown => Type::TEXT,
            DataType::Varchar(_) => Type::VARCHAR,
            DataType::Char(_) => Type::BPCHAR,
            DataType::Numeric(_) => Type::NUMERIC,
            DataType::Bytea => Type::BYTEA,
            DataType::Date => Type::DATE,
            DataType::Timestamp => Type::TIMESTAMP,
            DataType::TimestampTz => Type::TIMESTAMPTZ,
            DataType::Uuid => Type::UUID,
            DataType::Json => Type::JSON,
            DataType::Jsonb => Type::JSONB,
        }
    }

    /// The SQL type of a wire type (parameters a client declares).
    pub fn from_pg_type(t: &pgwire::api::Type) -> Option<DataType> {
        use pgwire::api::Type;
        Some(match t.clone() {
            Type::INT2 => DataType::Int2,
            Type::INT4 => DataType::Int4,
            Type::INT8 => DataType::Int8,
            Type::FLOAT4 => DataType::Float4,
            Type::FLOAT8 => DataType::Float8,
            Type::BOOL => DataType::Bool,
            Type::TEXT => DataType::Text,
            Type::VARCHAR => DataType::Varchar(None),
            Type::BPCHAR => DataType::Char(None),
            Type::NUMERIC => DataType::Numeric(None),
            Type::BYTEA => DataType::Bytea,
            Type::DATE => DataType::Date,
            Type::TIMESTAMP => DataType::Timestamp,
            Type::TIMESTAMPTZ => DataType::TimestampTz,
            Type::UUID => DataType::Uuid,
            Type::JSON => DataType::Json,
            Type::JSONB => DataType::Jsonb,
            Type::UNKNOWN => DataType::Unknown,
            _ => return None,
        })
    }
}

/// One SQL value.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Decimal(Decimal),
    Text(String),
    Bytes(Vec<u8>),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01 00:00:00 (UTC for TIMESTAMPTZ).
    Timestamp(i64),
}

impl Datum {
    pub fn is_null(&self) -> bool {
        matches!(self, Datum::Null)
    }

    /// Three-valued truth: `None` for NULL.
    pub fn truth(&self) -> Result<Option<bool>> {
        match self {
            Datum::Null => Ok(None),
            Datum::Bool(b) => Ok(Some(*b)),
            other => Err(SqlError::mismatch(format!(
                "argument must be type boolean, not {}",
                other.kind_name()
            ))),
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            Datum::Null => "unknown",
            Datum::Bool(_) => "boolean",
            Datum::Int(_) => "bigint",
            Datum::Float(_) => "double precision",
            Datum::Decimal(_) => "numeric",
            Datum::Text(_) => "text",
            Datum::Bytes(_) => "bytea",
            Datum::Date(_) => "date",
            Datum::Timestamp(_) => "timestamp",
        }
    }

    /// SQL comparison of two non-NULL values (numbers compare across kinds);
    /// `None` if either is NULL or they are not comparable.
    pub fn sql_cmp(&self, other: &Datum) -> Option<Ordering> {
        use Datum::*;
        Some(match (self, other) {
            (Null, _) | (_, Null) => return None,
            (Bool(a), Bool(b)) => a.cmp(b),
            (Int(a), Int(b)) => a.cmp(b),
            (Float(a), Float(b)) => float_cmp(*a, *b),
            (Int(a), Float(b)) => float_cmp(*a as f64, *b),
            (Float(a), Int(b)) => float_cmp(*a, *b as f64),
            (Decimal(a), Decimal(b)) => a.cmp(b),
            (Int(a), Decimal(b)) => self::Decimal::from_i64(*a).cmp(b),
            (Decimal(a), Int(b)) => a.cmp(&self::Decimal::from_i64(*b)),
            (Float(a), Decimal(b)) => float_cmp(*a, b.to_f64()),
            (Decimal(a), Float(b)) => float_cmp(a.to_f64(), *b),
            (Text(a), Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Bytes(a), Bytes(b)) => a.cmp(b),
            (Date(a), Date(b)) => a.cmp(b),
            (Timestamp(a), Timestamp(b)) => a.cmp(b),
            (Date(a), Timestamp(b)) => (*a as i64 * MICROS_PER_DAY).cmp(b),
            (Timestamp(a), Date(b)) => a.cmp(&(*b as i64 * MICROS_PER_DAY)),
            _ => return None,
        })
    }

    /// A total order for sorting: NULLs last (as PostgreSQL's ASC default).
    pub fn sort_cmp(&self, other: &Datum) -> Ordering {
        match (self.is_null(), other.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => self.sql_cmp(other).unwrap_or(Ordering::Equal),
        }
    }
}

/// Floats order as PostgreSQL does: NaN above everything, -0 = +0.
fn float_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

// ---------------------------------------------------------------------------
// Decimal

/// An exact decimal: `mantissa / 10^scale`. 38 significant digits; an
/// operation that would need more fails with SQLSTATE 22003. As in
/// PostgreSQL, NUMERIC also holds `NaN`, `Infinity` and `-Infinity`
/// ([`Decimal::NAN`], ...: the scale [`SPECIAL`] marks them); NaN equals
/// itself and sorts above every other value.
#[derive(Debug, Clone, Copy)]
pub struct Decimal {
    pub mantissa: i128,
    pub scale: u32,
}

const MAX_SCALE: u32 = 30;
/// The scale of the special values (the mantissa says which: 0 NaN, 1
/// Infinity, -1 -Infinity).
pub const SPECIAL: u32 = u32::MAX;

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

fn overflow() -> SqlError {
    SqlError::new(code::NUMERIC_VALUE_OUT_OF_RANGE, "numeric field overflow")
}

impl Decimal {
    pub const NAN: Decimal = Decimal {
        mantissa: 0,
        scale: SPECIAL,
    };
    pub const INFINITY: Decimal = Decimal {
        mantissa: 1,
        scale: SPECIAL,
    };
    pub const NEG_INFINITY: Decimal = Decimal {
        mantissa: -1,
        scale: SPECIAL,
    };

    /// NaN, Infinity or -Infinity.
    pub fn is_special(&self) -> bool {
        self.scale == SPECIAL
    }

    pub fn is_nan(&self) -> bool {
        self.is_special() && self.mantissa == 0
    }

    /// -1, 0 or 1 (NaN: 0).
    fn sign(&self) -> i128 {
        self.mantissa.signum()
    }

    fn infinity(sign: i128) -> Decimal {
        if sign < 0 {
            Decimal::NEG_INFINITY
        } else {
            Decimal::INFINITY
        }
    }

    pub fn from_i64(v: i64) -> Decimal {
        Decimal {
            mantissa: v as i128,
            scale: 0,
        }
    }

    /// Parses `-12.340`, `1e3`, `.5`, and (any case) `NaN`, `Infinity`,
    /// `inf`, with a sign.
    pub fn parse(s: &str) -> Option<Decimal> {
        let s = s.trim();
        let lower = s.to_ascii_lowercase();
        match lower.as_str() {
            "nan" => return Some(Decimal::NAN),
            "infinity" | "+infinity" | "inf" | "+inf" => return Some(Decimal::INFINITY),
            "-infinity" | "-inf" => return Some(Decimal::NEG_INFINITY),
            _ => {}
        }
        let (num, exp) = match s.find(['e', 'E']) {
            Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
            None => (s, 0),
        };
        let (neg, digits) = match num.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, num.strip_prefix('+').unwrap_or(num)),
        };
        let (int, frac) = match digits.find('.') {
            Some(i) => (&digits[..i], &digits[i + 1..]),
            None => (digits, ""),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut m: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            m = m.checked_mul(10)?.checked_add((b - b'0') as i128)?;
        }
        let mut scale = frac.len() as i32 - exp;
        while scale < 0 {
            m = m.checked_mul(10)?;
            scale += 1;
        }
        let mut d = Decimal {
            mantissa: if neg { -m } else { m },
            scale: scale as u32,
        };
        if d.scale > MAX_SCALE {
            d = d.round_to(MAX_SCALE).ok()?;
        }
        Some(d)
    }

    pub fn from_f64(v: f64) -> Result<Decimal> {
        if v.is_nan() {
            return Ok(Decimal::NAN);
        }
        if v.is_infinite() {
            return Ok(Decimal::infinity(if v < 0.0 { -1 } else { 1 }));
        }
        Decimal::parse(&format!("{v}")).ok_or_else(overflow)
    }

    pub fn to_f64(&self) -> f64 {
        if self.is_special() {
            return match self.mantissa {
                0 => f64::NAN,
                m if m < 0 => f64::NEG_INFINITY,
                _ => f64::INFINITY,
            };
        }
        // Through the text form: exact to the nearest double.
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    /// Rounds half away from zero to `scale` digits after the point.
    pub fn round_to(&self, scale: u32) -> Result<Decimal> {
        if self.is_special() {
            return Ok(*self);
        }
        if scale >= self.scale {
            let f = pow10(scale - self.scale).ok_or_else(overflow)?;
            return Ok(Decimal {
                mantissa: self.mantissa.checked_mul(f).ok_or_else(overflow)?,
                scale,
            });
        }
        let f = pow10(self.scale - scale).ok_or_else(overflow)?;
        let q = self.mantissa / f;
        let r = self.mantissa % f;
        let adj = if r.abs() * 2 >= f {
            self.mantissa.signum()
        } else {
            0
        };
        Ok(Decimal {
            mantissa: q + adj,
            scale,
        })
    }

    /// Removes trailing fractional zeros.
    pub fn normalize(&self) -> Decimal {
        if self.is_special() {
            return *self;
        }
        let mut d = *self;
        while d.scale > 0 && d.mantissa % 10 == 0 {
            d.mantissa /= 10;
            d.scale -= 1;
        }
        d
    }

    fn align(a: &Decimal, b: &Decimal) -> Result<(i128, i128, u32)> {
        let s = a.scale.max(b.scale);
        Ok((a.round_to(s)?.mantissa, b.round_to(s)?.mantissa, s))
    }

    /// The result of `+` when either side is special.
    fn special_add(&self, o: &Decimal) -> Decimal {
        if self.is_nan() || o.is_nan() {
            return Decimal::NAN;
        }
        match (self.is_special(), o.is_special()) {
            (true, true) if self.sign() != o.sign() => Decimal::NAN,
            (true, _) => *self,
            _ => *o,
        }
    }

    pub fn add(&self, o: &Decimal) -> Result<Decimal> {
        if self.is_special() || o.is_special() {
            return Ok(self.special_add(o));
        }
        let (a, b, s) = Self::align(self, o)?;
        Ok(Decimal {
            mantissa: a.checked_add(b).ok_or_else(overflow)?,
            scale: s,
        })
    }

    pub fn sub(&self, o: &Decimal) -> Result<Decimal> {
        if self.is_special() || o.is_special() {
            return Ok(self.special_add(&o.neg()));
        }
        let (a, b, s) = Self::align(self, o)?;
        Ok(Decimal {
            mantissa: a.checked_sub(b).ok_or_else(overflow)?,
            scale: s,
        })
    }

    pub fn mul(&self, o: &Decimal) -> Result<Decimal> {
        if self.is_special() || o.is_special() {
            if self.is_nan() || o.is_nan() || self.sign() == 0 || o.sign() == 0 {
                return Ok(Decimal::NAN);
            }
            return Ok(Decimal::infinity(self.sign() * o.sign()));
        }
        let d = Decimal {
            mantissa: self.mantissa.checked_mul(o.mantissa).ok_or_else(overflow)?,
            scale: self.scale + o.scale,
        };
        if d.scale > MAX_SCALE {
            d.round_to(MAX_SCALE)
        } else {
            Ok(d)
        }
    }

    /// Division with PostgreSQL-like result scale (at least 16 digits),
    /// rounded half away from zero.
    pub fn div(&self, o: &Decimal) -> Result<Decimal> {
        if self.is_nan() || o.is_nan() {
            return Ok(Decimal::NAN);
        }
        if o.mantissa == 0 {
            return Err(SqlError::new(code::DIVISION_BY_ZERO, "division by zero"));
        }
        match (self.is_special(), o.is_special()) {
            (true, true) => return Ok(Decimal::NAN),
            (true, false) => return Ok(Decimal::infinity(self.sign() * o.sign())),
            (false, true) => return Ok(Decimal::from_i64(0)),
            (false, false) => {}
        }
        let mut t = self.scale.max(o.scale).clamp(16, MAX_SCALE);
        loop {
            let shift = t as i64 + o.scale as i64 - self.scale as i64;
            let (num, den) = if shift >= 0 {
                (
                    pow10(shift as u32).and_then(|f| self.mantissa.checked_mul(f)),
                    Some(o.mantissa),
                )
            } else {
                (
                    Some(self.mantissa),
                    pow10((-shift) as u32).and_then(|f| o.mantissa.checked_mul(f)),
                )
            };
            if let (Some(n), Some(d)) = (num, den) {
                let mut q = n / d;
                let r = n % d;
                if r.abs() >= d.abs() - r.abs() {
                    q += n.signum() * d.signum();
                }
                return Ok(Decimal {
                    mantissa: q,
                    scale: t,
                });
            }
            if t == 0 {
                return Err(overflow());
            }
            t -= 1;
        }
    }

    pub fn rem(&self, o: &Decimal) -> Result<Decimal> {
        if self.is_nan() || o.is_nan() {
            return Ok(Decimal::NAN);
        }
        if o.mantissa == 0 {
            return Err(SqlError::new(code::DIVISION_BY_ZERO, "division by zero"));
        }
        if self.is_special() {
            return Ok(Decimal::NAN);
        }
        if o.is_special() {
            return Ok(*self);
        }
        let (a, b, s) = Self::align(self, o)?;
        Ok(Decimal {
            mantissa: a % b,
            scale: s,
        })
    }

    pub fn neg(&self) -> Decimal {
        if self.is_special() {
            return Decimal {
                mantissa: -self.mantissa,
                scale: SPECIAL,
            };
        }
        Decimal {
            mantissa: -self.mantissa,
            scale: self.scale,
        }
    }

    /// Fits the value into NUMERIC(precision, scale), rounding the scale.
    pub fn fit(&self, precision: u32, scale: u32) -> Result<Decimal> {
        if self.is_special() {
            if self.is_nan() {
                return Ok(*self);
            }
            return Err(
                SqlError::new(code::NUMERIC_VALUE_OUT_OF_RANGE, "numeric field overflow")
                    .with_detail(format!(
                "A field with precision {precision}, scale {scale} cannot hold an infinite value."
            )),
            );
        }
        let d = self.round_to(scale)?;
        let digits = d.mantissa.unsigned_abs().to_string().len() as u32;
        if d.mantissa != 0 && digits > precision {
            return Err(SqlError::new(
                code::NUMERIC_VALUE_OUT_OF_RANGE,
                "numeric field overflow",
            )
            .with_hint(format!(
                "A field with precision {precision}, scale {scale} must round to an absolute value less than 10^{}.",
                precision - scale
            )));
        }
        Ok(d)
    }

    /// The digits and decimal exponent of the normalized value: `0.d1d2.. x 10^e`.
    pub fn sci(&self) -> (bool, i64, String) {
        let n = self.normalize();
        let digits = n.mantissa.unsigned_abs().to_string();
        let e = digits.len() as i64 - n.scale as i64;
        let trimmed = digits.trim_end_matches('0').to_string();
        (n.mantissa < 0, e, trimmed)
    }
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Decimal {}
impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        if self.is_special() || other.is_special() {
            // -Infinity < finite < Infinity < NaN.
            let rank = |d: &Decimal| match (d.is_special(), d.mantissa) {
                (false, _) => 1,
                (true, m) if m < 0 => 0,
                (true, 0) => 3,
                (true, _) => 2,
            };
            return rank(self).cmp(&rank(other));
        }
        match Decimal::align(self, other) {
            Ok((a, b, _)) => a.cmp(&b),
            Err(_) => self.to_f64().total_cmp(&other.to_f64()),
        }
    }
}

impl std::fmt::Display for Decimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_special() {
            return f.write_str(match self.mantissa {
                0 => "NaN",
                m if m < 0 => "-Infinity",
                _ => "Infinity",
            });
        }
        let neg = self.mantissa < 0;
        let digits = self.mantissa.unsigned_abs().to_string();
        let s = self.scale as usize;
        let (int, frac) = if digits.len() > s {
            (
                digits[..digits.len() - s].to_string(),
                digits[digits.len() - s..].to_string(),
            )
        } else {
            ("0".to_string(), format!("{digits:0>s$}"))
        };
        if neg {
            f.write_str("-")?;
        }
        f.write_str(&int)?;
        if s > 0 {
            write!(f, ".{frac}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Dates and times

pub const MICROS_PER_DAY: i64 = 86_400_000_000;
/// Days from 1970-01-01 to 2000-01-01 (PostgreSQL's binary epoch).
pub const PG_EPOCH_DAYS: i32 = 10_957;

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn parse_date_part(s: &str) -> Option<i64> {
    let mut it = s.splitn(3, '-');
    let y: i64 = it.next()?.trim().parse().ok()?;
    let m: u32 = it.next()?.trim().parse().ok()?;
    let d: u32 = it.next()?.trim().parse().ok()?;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

pub fn parse_date(s: &str) -> Result<i32> {
    let t = s.trim();
    let date = t.split([' ', 'T']).next().unwrap_or("");
    parse_date_part(date).map(|d| d as i32).ok_or_else(|| {
        SqlError::new(
            code::INVALID_DATETIME_FORMAT,
            format!("invalid input syntax for type date: \"{s}\""),
        )
    })
}

/// Parses `YYYY-MM-DD[ HH:MM[:SS[.ffffff]]][Z|±HH[:MM]]`; with an offset the
/// result is converted to UTC.
pub fn parse_timestamp(s: &str) -> Result<i64> {
    let err = || {
        SqlError::new(
            code::INVALID_DATETIME_FORMAT,
            format!("invalid input syntax for type timestamp: \"{s}\""),
        )
    };
    let t = s.trim();
    let (date, rest) = match t.find([' ', 'T']) {
        Some(i) => (&t[..i], t[i + 1..].trim()),
        None => (t, ""),
    };
    let days = parse_date_part(date).ok_or_else(err)?;
    let mut micros = days * MICROS_PER_DAY;
    if rest.is_empty() {
        return Ok(micros);
    }
    // Split off a zone suffix.
    let (time, zone) = match rest.find(['+', '-', 'Z', 'z']) {
        Some(i) => (rest[..i].trim(), Some(rest[i..].trim())),
        None => (rest, None),
    };
    let mut parts = time.split(':');
    let h: i64 = parts.next().ok_or_else(err)?.parse().map_err(|_| err())?;
    let mi: i64 = parts.next().unwrap_or("0").parse().map_err(|_| err())?;
    let sec = parts.next().unwrap_or("0");
    let (sec_int, sec_frac) = match sec.find('.') {
        Some(i) => (&sec[..i], &sec[i + 1..]),
        None => (sec, ""),
    };
    let se: i64 = sec_int.parse().map_err(|_| err())?;
    if h > 24 || mi > 59 || se > 60 || !sec_frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let frac: i64 = format!("{:0<6}", &sec_frac[..sec_frac.len().min(6)])
        .parse()
        .unwrap_or(0);
    micros += ((h * 60 + mi) * 60 + se) * 1_000_000 + frac;
    if let Some(z) = zone {
        if z.eq_ignore_ascii_case("z") || z.eq_ignore_ascii_case("utc") {
            return Ok(micros);
        }
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let body = &z[1..];
        let (zh, zm) = match body.find(':') {
            Some(i) => (&body[..i], &body[i + 1..]),
            None if body.len() == 4 => (&body[..2], &body[2..]),
            None => (body, "0"),
        };
        let zh: i64 = zh.parse().map_err(|_| err())?;
        let zm: i64 = zm.parse().map_err(|_| err())?;
        micros -= sign * (zh * 3600 + zm * 60) * 1_000_000;
    }
    Ok(micros)
}

pub fn format_date(days: i32) -> String {
    let (y, m, d) = civil_from_days(days as i64);
    if y <= 0 {
        format!("{:04}-{m:02}-{d:02} BC", 1 - y)
    } else {
        format!("{y:04}-{m:02}-{d:02}")
    }
}

pub fn format_timestamp(micros: i64) -> String {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let rem = micros.rem_euclid(MICROS_PER_DAY);
    let mut s = format_date(days as i32);
    let secs = rem / 1_000_000;
    let frac = rem % 1_000_000;
    let _ = write!(
        s,
        " {:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    );
    if frac != 0 {
        let f = format!("{frac:06}");
        let _ = write!(s, ".{}", f.trim_end_matches('0'));
    }
    s
}

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Text formatting and parsing

pub fn format_float(v: f64, ty: &DataType) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let s = if *ty == DataType::Float4 {
        format!("{}", v as f32)
    } else {
        format!("{v}")
    };
    let abs = v.abs();
    if abs != 0.0 && !(1e-4..1e15).contains(&abs) {
        let e = if *ty == DataType::Float4 {
            format!("{:e}", v as f32)
        } else {
            format!("{v:e}")
        };
        // Rust writes 1e20 / 1e-5; PostgreSQL writes 1e+20 / 1e-05.
        if let Some(i) = e.find('e') {
            let (m, x) = (&e[..i], &e[i + 1..]);
            let (sign, digits) = match x.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', x),
            };
            return format!("{m}e{sign}{digits:0>2}");
        }
    }
    s
}

/// The text form of a value of type `ty` (PostgreSQL output format).
pub fn format_datum(d: &Datum, ty: &DataType) -> Option<String> {
    Some(match d {
        Datum::Null => return None,
        Datum::Bool(b) => if *b { "t" } else { "f" }.into(),
        Datum::Int(i) => i.to_string(),
        Datum::Float(f) => format_float(*f, ty),
        Datum::Decimal(d) => d.to_string(),
        Datum::Text(s) => s.clone(),
        Datum::Bytes(b) if *ty == DataType::Uuid && b.len() == 16 => format_uuid(b),
        Datum::Bytes(b) => {
            let mut s = String::with_capacity(2 + b.len() * 2);
            s.push_str("\\x");
            for x in b {
                let _ = write!(s, "{x:02x}");
            }
            s
        }
        Datum::Date(d) => format_date(*d),
        Datum::Timestamp(t) => {
            let mut s = format_timestamp(*t);
            if *ty == DataType::TimestampTz {
                s.push_str("+00");
            }
            s
        }
    })
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "yes" | "y" | "on" | "1" => Some(true),
        "f" | "false" | "no" | "n" | "off" | "0" => Some(false),
        _ => None,
    }
}

fn parse_bytea(s: &str) -> Option<Vec<u8>> {
    if let Some(hex) = s.strip_prefix("\\x") {
        if hex.len() % 2 != 0 {
            return None;
        }
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect()
    } else {
        Some(s.as_bytes().to_vec())
    }
}

/// `a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11`.
pub fn format_uuid(b: &[u8]) -> String {
    let mut s = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// PostgreSQL's UUID input: 32 hex digits, upper or lower case, with or
/// without braces, a hyphen allowed after any group of four digits.
pub fn parse_uuid(s: &str) -> Option<Vec<u8>> {
    let t = s.trim();
    let t = match t.strip_prefix('{') {
        Some(r) => r.strip_suffix('}')?,
        None => t,
    };
    let mut digits = Vec::with_capacity(32);
    let mut since_hyphen = 0;
    for (i, c) in t.chars().enumerate() {
        if c == '-' {
            if i == 0 || since_hyphen % 4 != 0 || since_hyphen == 0 {
                return None;
            }
            since_hyphen = 0;
            continue;
        }
        digits.push(c.to_digit(16)? as u8);
        since_hyphen += 1;
    }
    if digits.len() != 32 || t.ends_with('-') {
        return None;
    }
    Some(digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect())
}

/// Parses the text form of a value of type `ty` (input functions).
pub fn parse_datum(s: &str, ty: &DataType) -> Result<Datum> {
    let bad = || SqlError::invalid_text(&type_display(ty), s);
    Ok(match ty {
        DataType::Int2 | DataType::Int4 | DataType::Int8 => {
            let v: i64 = s.trim().parse().map_err(|_| bad())?;
            check_int_range(v, ty)?;
            Datum::Int(v)
        }
        DataType::Float4 | DataType::Float8 => {
            let t = s.trim();
            let v = match t.to_ascii_lowercase().as_str() {
                "nan" => f64::NAN,
                "infinity" | "inf" => f64::INFINITY,
                "-infinity" | "-inf" => f64::NEG_INFINITY,
                _ => t.parse().map_err(|_| bad())?,
            };
            Datum::Float(v)
        }
        DataType::Numeric(_) => Datum::Decimal(Decimal::parse(s).ok_or_else(bad)?),
        DataType::Bool => Datum::Bool(parse_bool(s).ok_or_else(bad)?),
        DataType::Text | DataType::Varchar(_) | DataType::Char(_) | DataType::Unknown => {
            Datum::Text(s.to_string())
        }
        DataType::Bytea => Datum::Bytes(parse_bytea(s).ok_or_else(bad)?),
        DataType::Date => Datum::Date(parse_date(s)?),
        DataType::Timestamp | DataType::TimestampTz => Datum::Timestamp(parse_timestamp(s)?),
        DataType::Uuid => Datum::Bytes(parse_uuid(s).ok_or_else(bad)?),
        DataType::Json => {
            crate::json::validate(s).map_err(|e| json_error(ty, s, &e))?;
            Datum::Text(s.to_string())
        }
        DataType::Jsonb => {
            Datum::Text(crate::json::normalize(s).map_err(|e| json_error(ty, s, &e))?)
        }
    })
}

fn json_error(ty: &DataType, s: &str, detail: &str) -> SqlError {
    SqlError::invalid_text(&ty.sql_name(), s).with_hint(detail.to_string())
}

/// The name PostgreSQL uses in messages (`integer`, `bigint`, ...).
pub fn type_display(ty: &DataType) -> String {
    match ty {
        DataType::Int2 => "smallint".into(),
        DataType::Int4 => "integer".into(),
        DataType::Int8 => "bigint".into(),
        DataType::Float4 => "real".into(),
        DataType::Float8 => "double precision".into(),
        DataType::Bool => "boolean".into(),
        DataType::Numeric(_) => "numeric".into(),
        DataType::Varchar(_) => "character varying".into(),
        DataType::Char(_) => "character".into(),
        DataType::Timestamp => "timestamp without time zone".into(),
        DataType::TimestampTz => "timestamp with time zone".into(),
        other => other.sql_name(),
    }
}

pub fn check_int_range(v: i64, ty: &DataType) -> Result<()> {
    let ok = match ty {
        DataType::Int2 => i16::try_from(v).is_ok(),
        DataType::Int4 => i32::try_from(v).is_ok(),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(SqlError::new(
            code::NUMERIC_VALUE_OUT_OF_RANGE,
            format!("{} out of range", type_display(ty)),
        ))
    }
}

/// Converts a value to type `ty` (explicit or assignment cast).
pub fn cast(d: Datum, ty: &DataType) -> Result<Datum> {
    if d.is_null() || *ty == DataType::Unknown {
        return Ok(d);
    }
    let out = match (d, ty) {
        (Datum::Text(s), _) => parse_datum(&s, ty)?,
        (Datum::Int(i), t) if t.is_integer() => {
            check_int_range(i, t)?;
            Datum::Int(i)
        }
        (Datum::Int(i), t) if t.is_float() => Datum::Float(i as f64),
        (Datum::Int(i), DataType::Numeric(_)) => Datum::Decimal(Decimal::from_i64(i)),
        (Datum::Int(i), DataType::Bool) => Datum::Bool(i != 0),
        (Datum::Float(f), t) if t.is_integer() => {
            if !f.is_finite() || f.round() > i64::MAX as f64 || f.round() < i64::MIN as f64 {
                return Err(SqlError::new(
                    code::NUMERIC_VALUE_OUT_OF_RANGE,
                    format!("{} out of range", type_display(t)),
                ));
            }
            let v = f.round_ties_even() as i64;
            check_int_range(v, t)?;
            Datum::Int(v)
        }
        (Datum::Float(f), DataType::Float4) => Datum::Float(f as f32 as f64),
        (Datum::Float(f), DataType::Float8) => Datum::Float(f),
        (Datum::Float(f), DataType::Numeric(_)) => Datum::Decimal(Decimal::from_f64(f)?),
        (Datum::Decimal(d), t) if t.is_integer() => {
            if d.is_special() {
                return Err(SqlError::new(
                    code::FEATURE_NOT_SUPPORTED,
                    format!("cannot convert {d} to {}", type_display(t)),
                ));
            }
            let r = d.round_to(0)?;
            let v = i64::try_from(r.mantissa).map_err(|_| {
                SqlError::new(
                    code::NUMERIC_VALUE_OUT_OF_RANGE,
                    format!("{} out of range", type_display(t)),
                )
            })?;
            check_int_range(v, t)?;
            Datum::Int(v)
        }
        (Datum::Decimal(d), t) if t.is_float() => Datum::Float(d.to_f64()),
        (Datum::Decimal(d), DataType::Numeric(_)) => Datum::Decimal(d),
        (Datum::Bool(b), DataType::Bool) => Datum::Bool(b),
        (Datum::Bool(b), t) if t.is_integer() => Datum::Int(b as i64),
        (Datum::Bytes(b), DataType::Bytea) => Datum::Bytes(b),
        (Datum::Bytes(b), DataType::Uuid) if b.len() == 16 => Datum::Bytes(b),
        (Datum::Date(d), DataType::Date) => Datum::Date(d),
        (Datum::Date(d), DataType::Timestamp | DataType::TimestampTz) => {
            Datum::Timestamp(d as i64 * MICROS_PER_DAY)
        }
        (Datum::Timestamp(t), DataType::Timestamp | DataType::TimestampTz) => Datum::Timestamp(t),
        (Datum::Timestamp(t), DataType::Date) => Datum::Date(t.div_euclid(MICROS_PER_DAY) as i32),
        (d, t) if t.is_string() => {
            Datum::Text(format_datum(&d, &DataType::Unknown).unwrap_or_default())
        }
        (d, t) => {
            return Err(SqlError::new(
                code::DATATYPE_MISMATCH,
                format!("cannot cast type {} to {}", d.kind_name(), type_display(t)),
            ))
        }
    };
    // CHAR(n) values are blank-padded, so they compare equal to stored
    // ones; NUMERIC(p, s) rounds to its scale and checks its precision.
    Ok(match (out, ty) {
        (Datum::Decimal(d), DataType::Numeric(Some((p, s)))) => Datum::Decimal(d.fit(*p, *s)?),
        (Datum::Text(mut s), DataType::Char(Some(n))) => {
            let len = s.chars().count();
            if len < *n as usize {
                s.extend(std::iter::repeat_n(' ', *n as usize - len));
            }
            Datum::Text(s)
        }
        (d, _) => d,
    })
}

/// Applies a column type's constraints to a value being stored: integer
/// range, CHAR padding, VARCHAR length, NUMERIC precision and scale.
pub fn coerce_for_column(d: Datum, ty: &DataType) -> Result<Datum> {
    let d = cast(d, ty)?;
    Ok(match (d, ty) {
        (Datum::Text(s), DataType::Varchar(Some(n))) => {
            if s.chars().count() > *n as usize {
                let trimmed = s.trim_end_matches(' ');
                if trimmed.chars().count() > *n as usize {
                    return Err(SqlError::new(
                        code::STRING_DATA_RIGHT_TRUNCATION,
                        format!("value too long for type character varying({n})"),
                    ));
                }
                Datum::Text(trimmed.chars().take(*n as usize).collect())
            } else {
                Datum::Text(s)
            }
        }
        (Datum::Text(s), DataType::Char(Some(n))) => {
            let n = *n as usize;
            let len = s.chars().count();
            if len > n {
                let trimmed = s.trim_end_matches(' ');
                if trimmed.chars().count() > n {
                    return Err(SqlError::new(
                        code::STRING_DATA_RIGHT_TRUNCATION,
                        format!("value too long for type character({n})"),
                    ));
                }
                Datum::Text(s.chars().take(n).collect())
            } else {
                let mut s = s;
                s.extend(std::iter::repeat_n(' ', n - len));
                Datum::Text(s)
            }
        }
        (Datum::Decimal(d), DataType::Numeric(Some((p, s)))) => Datum::Decimal(d.fit(*p, *s)?),
        (d, _) => d,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_parses_formats_and_computes_exactly() {
        let a = Decimal::parse("12.340").unwrap();
        assert_eq!(a.to_string(), "12.340");
        let b = Decimal::parse("-0.5").unwrap();
        assert_eq!(a.add(&b).unwrap().to_string(), "11.840");
        assert_eq!(a.mul(&b).unwrap().to_string(), "-6.1700");
        assert_eq!(Decimal::parse("1e3").unwrap().to_string(), "1000");
        assert_eq!(Decimal::parse(".5").unwrap().to_string(), "0.5");
        let third = Decimal::from_i64(1).div(&Decimal::from_i64(3)).unwrap();
        assert_eq!(third.to_string(), "0.3333333333333333");
        assert_eq!(
            Decimal::parse("1.50").unwrap(),
            Decimal::parse("1.5").unwrap()
        );
        assert!(Decimal::from_i64(1).div(&Decimal::from_i64(0)).is_err());
        assert_eq!(
            Decimal::parse("2.345")
                .unwrap()
                .fit(5, 2)
                .unwrap()
                .to_string(),
            "2.35"
        );
        assert!(Decimal::parse("1234.5").unwrap().fit(4, 2).is_err());
        assert!(Decimal::parse("abc").is_none());
    }

    #[test]
    fn dates_round_trip_through_day_numbers() {
        for days in [-800_000i64, -1, 0, 1, 10_957, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(parse_date("2000-01-01").unwrap(), PG_EPOCH_DAYS);
        assert_eq!(format_date(0), "1970-01-01");
        assert!(parse_date("2023-02-29").is_err());
        let ts = parse_timestamp("2024-03-05 13:14:15.25").unwrap();
        assert_eq!(format_timestamp(ts), "2024-03-05 13:14:15.25");
        let tz = parse_timestamp("2024-03-05 13:14:15+02").unwrap();
        assert_eq!(format_timestamp(tz), "2024-03-05 11:14:15");
    }

    #[test]
    fn text_input_checks_types_and_ranges() {
        assert_eq!(parse_datum("42", &DataType::Int4).unwrap(), Datum::Int(42));
        let e = parse_datum("4x", &DataType::Int4).unwrap_err();
        assert_eq!(e.code, "22P02");
        assert_eq!(
            parse_datum("70000", &DataType::Int2).unwrap_err().code,
            "22003"
        );
        assert_eq!(
            parse_datum("yes", &DataType::Bool).unwrap(),
            Datum::Bool(true)
        );
        assert_eq!(
            parse_datum("\\x00ff", &DataType::Bytea).unwrap(),
            Datum::Bytes(vec![0, 255])
        );
        assert_eq!(
            coerce_for_column(Datum::Text("ab".into()), &DataType::Char(Some(4))).unwrap(),
            Datum::Text("ab  ".into())
        );
        assert_eq!(
            coerce_for_column(Datum::Text("abcdef".into()), &DataType::Varchar(Some(3)))
                .unwrap_err()
                .code,
            "22001"
        );
    }

    #[test]
    fn floats_print_like_postgres() {
        assert_eq!(format_float(1.5, &DataType::Float8), "1.5");
        assert_eq!(format_float(1e20, &DataType::Float8), "1e+20");
        assert_eq!(format_float(f64::NAN, &DataType::Float8), "NaN");
        assert_eq!(format_float(0.1f32 as f64, &DataType::Float4), "0.1");
    }

    #[test]
    fn type_names_round_trip() {
        for t in [
            DataType::Int4,
            DataType::Varchar(Some(10)),
            DataType::Char(Some(3)),
            DataType::Numeric(Some((10, 2))),
            DataType::Numeric(None),
            DataType::TimestampTz,
        ] {
            assert_eq!(DataType::from_sql_name(&t.sql_name()), Some(t));
        }
    }
}
