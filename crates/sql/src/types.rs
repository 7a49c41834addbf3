//! SQL types and values: [`DataType`] (what a column or expression is),
//! [`Datum`] (one value), the exact [`Decimal`], PostgreSQL's three-field
//! [`Interval`], and calendar arithmetic for DATE, TIME, TIMESTAMP and
//! INTERVAL (including EXTRACT).
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
//! | TIME                          | `Time(µs since midnight)` |
//! | TIMESTAMP, TIMESTAMPTZ        | `Timestamp(µs since 1970-01-01 UTC)` |
//! | INTERVAL                      | `Interval` (months, days, µs) |
//! | UUID                          | `Bytes` (16 bytes) |
//! | JSON, JSONB                   | `Text` (JSON: as given; JSONB: normalized) |
//! | T[] (one dimension)           | `Array` of T's datums |
//!
//! Text input and output follow PostgreSQL's formats (`t`/`f`, `\x` hex
//! bytea, ISO dates, `+00` on TIMESTAMPTZ, which is always shown in UTC;
//! intervals as IntervalStyle `postgres` shows them, `1 day 02:00:00`;
//! UUIDs as lowercase 8-4-4-4-12 hex; JSON input is validated, JSONB is
//! stored as PostgreSQL prints it: see [`crate::json`]). A UUID or JSON
//! value keeps its form only where its type is known (a column, a cast);
//! `uuid_col::text` gives the bytes' `\x` form, as the datum is shared.
//! Intervals compare by their length with 30-day months and 24-hour days,
//! as PostgreSQL compares them, so `'1 mon'` equals `'30 days'`.

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
    /// Time of day without time zone.
    Time,
    Timestamp,
    TimestampTz,
    Interval,
    Uuid,
    Json,
    Jsonb,
    /// A one-dimensional array of the element type (see [`crate::array`]).
    Array(Box<DataType>),
    /// An object identifier: an unsigned 32-bit integer (`oid`); it
    /// counts as an integer type.
    Oid,
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
            DataType::Time => "time".into(),
            DataType::Timestamp => "timestamp".into(),
            DataType::TimestampTz => "timestamptz".into(),
            DataType::Interval => "interval".into(),
            DataType::Uuid => "uuid".into(),
            DataType::Json => "json".into(),
            DataType::Jsonb => "jsonb".into(),
            DataType::Array(elem) => format!("{}[]", elem.sql_name()),
            DataType::Oid => "oid".into(),
            DataType::Unknown => "unknown".into(),
        }
    }

    /// Parses what [`DataType::sql_name`] produced (catalog storage).
    pub fn from_sql_name(s: &str) -> Option<DataType> {
        if let Some(elem) = s.strip_suffix("[]") {
            return Some(DataType::Array(Box::new(DataType::from_sql_name(elem)?)));
        }
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
            "time" => DataType::Time,
            "timestamp" => DataType::Timestamp,
            "timestamptz" => DataType::TimestampTz,
            "interval" => DataType::Interval,
            "uuid" => DataType::Uuid,
            "json" => DataType::Json,
            "jsonb" => DataType::Jsonb,
            "oid" => DataType::Oid,
            _ => return None,
        })
    }

    pub fn is_integer(&self) -> bool {
        matches!(
            self,
            DataType::Int2 | DataType::Int4 | DataType::Int8 | DataType::Oid
        )
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
            DataType::Time => Type::TIME,
            DataType::Timestamp => Type::TIMESTAMP,
            DataType::TimestampTz => Type::TIMESTAMPTZ,
            DataType::Interval => Type::INTERVAL,
            DataType::Uuid => Type::UUID,
            DataType::Json => Type::JSON,
            DataType::Jsonb => Type::JSONB,
            DataType::Oid => Type::OID,
            DataType::Array(elem) => match elem.pg_type() {
                Type::INT2 => Type::INT2_ARRAY,
                Type::INT4 => Type::INT4_ARRAY,
                Type::INT8 => Type::INT8_ARRAY,
                Type::FLOAT4 => Type::FLOAT4_ARRAY,
                Type::FLOAT8 => Type::FLOAT8_ARRAY,
                Type::BOOL => Type::BOOL_ARRAY,
                Type::VARCHAR => Type::VARCHAR_ARRAY,
                Type::BPCHAR => Type::BPCHAR_ARRAY,
                Type::NUMERIC => Type::NUMERIC_ARRAY,
                Type::BYTEA => Type::BYTEA_ARRAY,
                Type::DATE => Type::DATE_ARRAY,
                Type::TIME => Type::TIME_ARRAY,
                Type::TIMESTAMP => Type::TIMESTAMP_ARRAY,
                Type::TIMESTAMPTZ => Type::TIMESTAMPTZ_ARRAY,
                Type::INTERVAL => Type::INTERVAL_ARRAY,
                Type::UUID => Type::UUID_ARRAY,
                Type::JSON => Type::JSON_ARRAY,
                Type::JSONB => Type::JSONB_ARRAY,
                Type::OID => Type::OID_ARRAY,
                _ => Type::TEXT_ARRAY,
            },
        }
    }

    /// The element type of an array type.
    pub fn element(&self) -> Option<&DataType> {
        match self {
            DataType::Array(elem) => Some(elem),
            _ => None,
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
            Type::TIME => DataType::Time,
            Type::TIMESTAMP => DataType::Timestamp,
            Type::TIMESTAMPTZ => DataType::TimestampTz,
            Type::INTERVAL => DataType::Interval,
            Type::UUID => DataType::Uuid,
            Type::JSON => DataType::Json,
            Type::JSONB => DataType::Jsonb,
            Type::UNKNOWN => DataType::Unknown,
            Type::OID => DataType::Oid,
            other => {
                let elem = match other {
                    Type::INT2_ARRAY => Type::INT2,
                    Type::INT4_ARRAY => Type::INT4,
                    Type::INT8_ARRAY => Type::INT8,
                    Type::FLOAT4_ARRAY => Type::FLOAT4,
                    Type::FLOAT8_ARRAY => Type::FLOAT8,
                    Type::BOOL_ARRAY => Type::BOOL,
                    Type::TEXT_ARRAY => Type::TEXT,
                    Type::VARCHAR_ARRAY => Type::VARCHAR,
                    Type::BPCHAR_ARRAY => Type::BPCHAR,
                    Type::NUMERIC_ARRAY => Type::NUMERIC,
                    Type::BYTEA_ARRAY => Type::BYTEA,
                    Type::DATE_ARRAY => Type::DATE,
                    Type::TIME_ARRAY => Type::TIME,
                    Type::TIMESTAMP_ARRAY => Type::TIMESTAMP,
                    Type::TIMESTAMPTZ_ARRAY => Type::TIMESTAMPTZ,
                    Type::INTERVAL_ARRAY => Type::INTERVAL,
                    Type::UUID_ARRAY => Type::UUID,
                    Type::JSON_ARRAY => Type::JSON,
                    Type::JSONB_ARRAY => Type::JSONB,
                    Type::OID_ARRAY => Type::OID,
                    _ => return None,
                };
                DataType::Array(Box::new(DataType::from_pg_type(&elem)?))
            }
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
    /// Microseconds since midnight, 0 to 24:00:00 (which PostgreSQL allows).
    Time(i64),
    Interval(Interval),
    /// A one-dimensional array (see [`crate::array`]).
    Array(Vec<Datum>),
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
            Datum::Time(_) => "time without time zone",
            Datum::Interval(_) => "interval",
            Datum::Array(_) => "array",
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
            (Time(a), Time(b)) => a.cmp(b),
            (Interval(a), Interval(b)) => a.span().cmp(&b.span()),
            (Array(a), Array(b)) => crate::array::compare(a, b)?,
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

    /// The weight and first digit of a finite value in base 10,000, the
    /// representation PostgreSQL's numeric uses (zero: `(0, 0)`).
    fn base10000_head(&self) -> (i64, i128) {
        let m = self.mantissa.unsigned_abs();
        if m == 0 {
            return (0, 0);
        }
        let exp10 = m.ilog10() as i64 - self.scale as i64;
        let weight = exp10.div_euclid(4);
        let shift = self.scale as i64 + 4 * weight;
        let first = if shift >= 0 {
            m / 10u128.pow(shift as u32)
        } else {
            m * 10u128.pow((-shift) as u32)
        };
        (weight, first as i128)
    }

    /// PostgreSQL's result scale for `self / o` (`select_div_scale`): at
    /// least 16 significant digits and no fewer digits after the point
    /// than either operand has, so `1 / 2` is `0.50000000000000000000`.
    fn div_scale(&self, o: &Decimal) -> u32 {
        let ((w1, f1), (w2, f2)) = (self.base10000_head(), o.base10000_head());
        let mut qweight = w1 - w2;
        if f1 <= f2 {
            qweight -= 1;
        }
        (16 - qweight * 4)
            .max(self.scale as i64)
            .max(o.scale as i64)
            .clamp(0, 1000) as u32
    }

    /// Division with PostgreSQL's result scale ([`Decimal::div_scale`],
    /// at most 30 digits after the point), rounded half away from zero.
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
        let mut t = self.div_scale(o).min(MAX_SCALE);
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

    /// The square root of a finite, non-negative value with `scale`
    /// digits after the point (fewer when the digits would not fit),
    /// rounded half up: exact integer arithmetic, no float detour.
    pub fn sqrt_at(&self, scale: u32) -> Result<Decimal> {
        if self.is_special() || self.mantissa < 0 {
            return Err(SqlError::new(
                "2201F",
                "cannot take square root of a negative number",
            ));
        }
        let mut t = scale.min(MAX_SCALE);
        loop {
            // sqrt(m / 10^s) * 10^t = sqrt(m * 10^(2t - s)).
            let exp = 2 * t as i64 - self.scale as i64;
            let n = if exp >= 0 {
                pow10(exp as u32).and_then(|f| self.mantissa.checked_mul(f))
            } else {
                pow10((-exp) as u32).map(|f| self.mantissa / f)
            };
            if let Some(n) = n {
                let n = n as u128;
                let mut r = (n as f64).sqrt() as u128;
                while r * r > n {
                    r -= 1;
                }
                while (r + 1) * (r + 1) <= n {
                    r += 1;
                }
                if n - r * r > r {
                    r += 1;
                }
                return Ok(Decimal {
                    mantissa: r as i128,
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

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;
const MICROS_PER_HOUR: i64 = 60 * MICROS_PER_MINUTE;
pub const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;
/// How many days a month of an interval counts where months and days must
/// be compared or converted (PostgreSQL's rule).
const DAYS_PER_MONTH: i64 = 30;
/// The earliest timestamp, 4714-11-24 00:00:00 BC (PostgreSQL's limit).
const MIN_TIMESTAMP: i64 = -210_866_803_200_000_000;
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

pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// `YYYY-MM-DD` as days since 1970-01-01; a month or day that does not
/// exist (`2023-02-29`) is a field overflow, as in PostgreSQL.
fn parse_date_part(s: &str) -> DateTimeResult<i64> {
    let mut it = s.splitn(3, '-');
    let mut field = || -> DateTimeResult<&str> {
        let f = it.next().ok_or(DateTimeError::BadFormat)?.trim();
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DateTimeError::BadFormat);
        }
        Ok(f)
    };
    let (y, m, d) = (field()?, field()?, field()?);
    let y: i64 = y.parse().map_err(|_| DateTimeError::FieldOverflow)?;
    let m: u32 = m.parse().map_err(|_| DateTimeError::FieldOverflow)?;
    let d: u32 = d.parse().map_err(|_| DateTimeError::FieldOverflow)?;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return Err(DateTimeError::FieldOverflow);
    }
    Ok(days_from_civil(y, m, d))
}

pub fn parse_date(s: &str) -> Result<i32> {
    let t = s.trim();
    let date = t.split([' ', 'T']).next().unwrap_or("");
    parse_date_part(date)
        .map(|d| d as i32)
        .map_err(|e| e.for_input("date", s))
}

/// Why date/time text was refused: PostgreSQL tells a malformed value
/// (22007) from a field out of range (22008; 22015 for intervals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateTimeError {
    BadFormat,
    FieldOverflow,
}

type DateTimeResult<T> = std::result::Result<T, DateTimeError>;

impl DateTimeError {
    /// The error PostgreSQL raises for input `s` of type `ty`.
    fn for_input(self, ty: &str, s: &str) -> SqlError {
        match self {
            DateTimeError::BadFormat => SqlError::new(
                code::INVALID_DATETIME_FORMAT,
                format!("invalid input syntax for type {ty}: \"{s}\""),
            ),
            DateTimeError::FieldOverflow if ty == "interval" => SqlError::new(
                code::INTERVAL_FIELD_OVERFLOW,
                format!("interval field value out of range: \"{s}\""),
            ),
            DateTimeError::FieldOverflow => SqlError::new(
                code::DATETIME_FIELD_OVERFLOW,
                format!("date/time field value out of range: \"{s}\""),
            ),
        }
    }
}

fn timestamp_out_of_range() -> SqlError {
    SqlError::new(code::DATETIME_FIELD_OVERFLOW, "timestamp out of range")
}

fn interval_out_of_range() -> SqlError {
    SqlError::new(code::DATETIME_FIELD_OVERFLOW, "interval out of range")
}

/// A timestamp PostgreSQL can hold: from 4714-11-24 BC on (the upper end
/// is where 64-bit microseconds since 1970 end, in the year 294247).
fn check_timestamp(micros: i128) -> Result<i64> {
    i64::try_from(micros)
        .ok()
        .filter(|m| *m >= MIN_TIMESTAMP)
        .ok_or_else(timestamp_out_of_range)
}

/// The midnight starting a date, as a timestamp (22008 past the year
/// 294247, where timestamps end).
pub fn date_to_timestamp(days: i32) -> Result<i64> {
    check_timestamp(days as i128 * MICROS_PER_DAY as i128)
}

/// Parses `YYYY-MM-DD[ HH:MM[:SS[.ffffff]]][ AM|PM][Z|UTC|±HH[:MM]]`; with
/// an offset the result is converted to UTC.
pub fn parse_timestamp(s: &str) -> Result<i64> {
    let bad = |e: DateTimeError| e.for_input("timestamp", s);
    let t = s.trim();
    let (date, rest) = match t.find([' ', 'T']) {
        Some(i) => (&t[..i], t[i + 1..].trim()),
        None => (t, ""),
    };
    let days = parse_date_part(date).map_err(bad)?;
    let (clock, offset) = split_zone(rest).map_err(bad)?;
    let time_of_day = if clock.is_empty() {
        0
    } else {
        parse_time_of_day(clock).map_err(bad)?
    };
    check_timestamp(days as i128 * MICROS_PER_DAY as i128 + time_of_day as i128 - offset as i128)
        .map_err(|_| {
            SqlError::new(
                code::DATETIME_FIELD_OVERFLOW,
                format!("timestamp out of range: \"{s}\""),
            )
        })
}

/// Parses TIME input: a time of day, after an optional date and before an
/// optional zone, both ignored (as PostgreSQL ignores them).
pub fn parse_time(s: &str) -> Result<i64> {
    let bad = |e: DateTimeError| e.for_input("time", s);
    let mut t = s.trim();
    if let Some(i) = t.find([' ', 'T']) {
        if parse_date_part(&t[..i]).is_ok() {
            t = t[i + 1..].trim();
        }
    }
    let (clock, _offset) = split_zone(t).map_err(bad)?;
    parse_time_of_day(clock).map_err(bad)
}

/// Splits a time of day from its zone suffix (`Z`, `UTC`, `GMT`, `+02`,
/// `-05:30`, `+0530`), giving the zone's offset east of UTC in µs.
fn split_zone(s: &str) -> DateTimeResult<(&str, i64)> {
    let lower = s.to_ascii_lowercase();
    for name in ["utc", "gmt", "z"] {
        if let Some(clock) = lower.strip_suffix(name) {
            return Ok((s[..clock.len()].trim(), 0));
        }
    }
    let Some(i) = s.find(['+', '-']) else {
        return Ok((s, 0));
    };
    let (clock, zone) = (s[..i].trim(), &s[i..]);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let body = &zone[1..];
    let (hours, minutes) = match body.find(':') {
        Some(j) => (&body[..j], &body[j + 1..]),
        None if body.len() == 4 => (&body[..2], &body[2..]),
        None => (body, "0"),
    };
    let number = |x: &str| -> DateTimeResult<i64> {
        if x.is_empty() || x.len() > 2 || !x.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DateTimeError::BadFormat);
        }
        x.parse().map_err(|_| DateTimeError::BadFormat)
    };
    let offset = (number(hours)? * 60 + number(minutes)?) * MICROS_PER_MINUTE;
    Ok((clock, sign * offset))
}

/// Parses a time of day, `H:MM[:SS[.ffffff]]` with an optional `AM`/`PM`,
/// up to 24:00:00 (PostgreSQL's range), into µs since midnight.
fn parse_time_of_day(text: &str) -> DateTimeResult<i64> {
    let lower = text.to_ascii_lowercase();
    let (clock, pm) = if let Some(c) = lower.strip_suffix("am") {
        (c.trim_end(), Some(false))
    } else if let Some(c) = lower.strip_suffix("pm") {
        (c.trim_end(), Some(true))
    } else {
        (lower.as_str(), None)
    };
    let c = parse_clock(clock, false)?;
    let hours = match pm {
        None => c.hours,
        Some(_) if c.hours > 12 => return Err(DateTimeError::FieldOverflow),
        Some(false) => c.hours % 12,
        Some(true) => c.hours % 12 + 12,
    };
    if hours > 24 {
        return Err(DateTimeError::FieldOverflow);
    }
    let micros = hours * MICROS_PER_HOUR + c.micros_after_hour;
    if micros > MICROS_PER_DAY {
        return Err(DateTimeError::FieldOverflow);
    }
    Ok(micros)
}

/// A clock reading split at the hour (hours are not bounded here: an
/// interval's `100:00:00` is one).
struct Clock {
    hours: i64,
    micros_after_hour: i64,
}

/// Parses `H:MM`, `H:MM:SS[.ffffff]` or `MM:SS.ffffff` (and `MM:SS` when
/// `minutes_first`, for INTERVAL ... MINUTE TO SECOND), as PostgreSQL
/// reads them; fractions round to microseconds.
fn parse_clock(s: &str, minutes_first: bool) -> DateTimeResult<Clock> {
    let fields: Vec<&str> = s.split(':').collect();
    let (h, m, sec) = match fields.as_slice() {
        [a, b] if minutes_first || b.contains('.') => ("0", *a, *b),
        [a, b] => (*a, *b, "0"),
        [a, b, c] => (*a, *b, *c),
        _ => return Err(DateTimeError::BadFormat),
    };
    let (whole_seconds, fraction) = sec.split_once('.').unwrap_or((sec, ""));
    let number = |x: &str| -> DateTimeResult<i64> {
        if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DateTimeError::BadFormat);
        }
        x.parse().map_err(|_| DateTimeError::FieldOverflow)
    };
    let (hours, minutes, seconds) = (number(h)?, number(m)?, number(whole_seconds)?);
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DateTimeError::BadFormat);
    }
    if minutes > 59 || seconds > 60 {
        return Err(DateTimeError::FieldOverflow);
    }
    Ok(Clock {
        hours,
        micros_after_hour: minutes * MICROS_PER_MINUTE
            + seconds * MICROS_PER_SECOND
            + fraction_micros(fraction),
    })
}

/// The digits after a decimal point as microseconds, rounded half up.
fn fraction_micros(digits: &str) -> i64 {
    let d = digits.as_bytes();
    let mut micros = 0;
    for i in 0..6 {
        micros = micros * 10 + d.get(i).map_or(0, |b| (b - b'0') as i64);
    }
    if d.get(6).is_some_and(|b| *b >= b'5') {
        micros += 1;
    }
    micros
}

pub fn format_date(days: i32) -> String {
    let (y, m, d) = civil_from_days(days as i64);
    if y <= 0 {
        format!("{:04}-{m:02}-{d:02} BC", 1 - y)
    } else {
        format!("{y:04}-{m:02}-{d:02}")
    }
}

/// `2024-03-05 13:14:15.25` (`... BC` at the end before year 1).
pub fn format_timestamp(micros: i64) -> String {
    let date = format_date(micros.div_euclid(MICROS_PER_DAY) as i32);
    let time = format_time(micros.rem_euclid(MICROS_PER_DAY));
    match date.strip_suffix(" BC") {
        Some(d) => format!("{d} {time} BC"),
        None => format!("{date} {time}"),
    }
}

/// A time of day, `13:14:15` or `13:14:15.25`.
pub fn format_time(micros: i64) -> String {
    let mut s = String::with_capacity(15);
    push_clock(&mut s, micros.unsigned_abs());
    s
}

/// Appends `HH:MM:SS[.ffffff]` (trailing fractional zeros dropped) for a
/// non-negative count of microseconds; hours may pass 24.
fn push_clock(s: &mut String, micros: u64) {
    let secs = micros / 1_000_000;
    let frac = micros % 1_000_000;
    let _ = write!(
        s,
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    );
    if frac != 0 {
        let f = format!("{frac:06}");
        let _ = write!(s, ".{}", f.trim_end_matches('0'));
    }
}

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Intervals and date/time arithmetic

/// A PostgreSQL interval: months, days and microseconds, kept apart as
/// PostgreSQL keeps them, since a month has no fixed number of days. Two
/// intervals compare by [`Interval::span`], so `1 mon` equals `30 days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interval {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

impl Interval {
    pub fn from_micros(micros: i64) -> Interval {
        Interval {
            months: 0,
            days: 0,
            micros,
        }
    }

    /// The length PostgreSQL orders intervals by: a month counts 30 days,
    /// a day 24 hours.
    pub fn span(&self) -> i128 {
        (self.months as i128 * DAYS_PER_MONTH as i128 + self.days as i128) * MICROS_PER_DAY as i128
            + self.micros as i128
    }

    /// The interval of length `span` with whole days moved into days and
    /// runs of 30 days into months; `None` if the months overflow.
    pub fn from_span(span: i128) -> Option<Interval> {
        let day = MICROS_PER_DAY as i128;
        let days = span / day;
        Some(Interval {
            months: i32::try_from(days / DAYS_PER_MONTH as i128).ok()?,
            days: (days % DAYS_PER_MONTH as i128) as i32,
            micros: (span % day) as i64,
        })
    }

    pub fn checked_add(self, o: Interval) -> Result<Interval> {
        Ok(Interval {
            months: self
                .months
                .checked_add(o.months)
                .ok_or_else(interval_out_of_range)?,
            days: self
                .days
                .checked_add(o.days)
                .ok_or_else(interval_out_of_range)?,
            micros: self
                .micros
                .checked_add(o.micros)
                .ok_or_else(interval_out_of_range)?,
        })
    }

    pub fn checked_sub(self, o: Interval) -> Result<Interval> {
        Ok(Interval {
            months: self
                .months
                .checked_sub(o.months)
                .ok_or_else(interval_out_of_range)?,
            days: self
                .days
                .checked_sub(o.days)
                .ok_or_else(interval_out_of_range)?,
            micros: self
                .micros
                .checked_sub(o.micros)
                .ok_or_else(interval_out_of_range)?,
        })
    }

    pub fn checked_neg(self) -> Result<Interval> {
        Interval::default().checked_sub(self)
    }

    /// `interval * factor`, as PostgreSQL's `interval_mul`.
    pub fn times(self, factor: f64) -> Result<Interval> {
        Interval::cascade(
            self.months as f64 * factor,
            self.days as f64 * factor,
            self.micros as f64 * factor,
        )
    }

    /// `interval / divisor`, as PostgreSQL's `interval_div`.
    pub fn divided_by(self, divisor: f64) -> Result<Interval> {
        if divisor == 0.0 {
            return Err(SqlError::new(code::DIVISION_BY_ZERO, "division by zero"));
        }
        Interval::cascade(
            self.months as f64 / divisor,
            self.days as f64 / divisor,
            self.micros as f64 / divisor,
        )
    }

    /// Builds an interval from scaled fields: fractional months become
    /// days (30 a month) and fractional days become time (24 hours a
    /// day), never the other way round, as PostgreSQL does.
    fn cascade(months: f64, days: f64, micros: f64) -> Result<Interval> {
        let to_i32 = |v: f64| -> Result<i32> {
            if v.is_nan() || v > i32::MAX as f64 || v < i32::MIN as f64 {
                return Err(interval_out_of_range());
            }
            Ok(v as i32)
        };
        // Rounds to the microsecond, so 0.1 * 30 days stays 3 days.
        let round_micro = |v: f64| (v * 1e6).round_ties_even() / 1e6;
        let whole_months = to_i32(months)?;
        let mut whole_days = to_i32(days)?;
        let month_remainder_days = round_micro((months - whole_months as f64) * 30.0);
        let mut remainder_secs = round_micro(
            (days - whole_days as f64 + month_remainder_days - month_remainder_days.trunc())
                * 86_400.0,
        );
        if remainder_secs.abs() >= 86_400.0 {
            let carry = (remainder_secs / 86_400.0).trunc();
            whole_days = whole_days
                .checked_add(carry as i32)
                .ok_or_else(interval_out_of_range)?;
            remainder_secs -= carry * 86_400.0;
        }
        whole_days = whole_days
            .checked_add(month_remainder_days as i32)
            .ok_or_else(interval_out_of_range)?;
        let micros = (micros + remainder_secs * 1e6).round_ties_even();
        if micros.is_nan() || micros >= i64::MAX as f64 || micros < i64::MIN as f64 {
            return Err(interval_out_of_range());
        }
        Ok(Interval {
            months: whole_months,
            days: whole_days,
            micros: micros as i64,
        })
    }
}

/// PostgreSQL's default output (IntervalStyle `postgres`): `1 year 2 mons
/// 3 days 04:05:06`, `-1 days +02:00:00`, `00:00:00.5`.
impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        // A part after a negative one shows its sign even when positive.
        let mut after_negative = false;
        let parts = [
            (self.months / 12, "year"),
            (self.months % 12, "mon"),
            (self.days, "day"),
        ];
        for (value, unit) in parts {
            if value == 0 {
                continue;
            }
            if !s.is_empty() {
                s.push(' ');
            }
            if after_negative && value > 0 {
                s.push('+');
            }
            let plural = if value == 1 { "" } else { "s" };
            let _ = write!(s, "{value} {unit}{plural}");
            after_negative = value < 0;
        }
        if s.is_empty() || self.micros != 0 {
            if !s.is_empty() {
                s.push(' ');
            }
            if self.micros < 0 {
                s.push('-');
            } else if after_negative {
                s.push('+');
            }
            push_clock(&mut s, self.micros.unsigned_abs());
        }
        f.write_str(&s)
    }
}

/// The units of interval input and of EXTRACT, by PostgreSQL's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateTimeUnit {
    Microseconds,
    Milliseconds,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
    Decade,
    Century,
    Millennium,
    /// Seconds since 1970-01-01 (or in an interval or a time of day).
    Epoch,
    /// Day of the week, Sunday = 0.
    DayOfWeek,
    /// Day of the week, Monday = 1 ... Sunday = 7.
    IsoDayOfWeek,
    DayOfYear,
    /// The ISO 8601 week-numbering year.
    IsoYear,
}

impl DateTimeUnit {
    /// A unit by any name PostgreSQL takes for it (`hours`, `hr`, `h`;
    /// names are compared on their first 10 letters, as PostgreSQL does,
    /// so `microseconds` is `microsecon`).
    pub fn parse(name: &str) -> Option<DateTimeUnit> {
        use DateTimeUnit as U;
        let lower = name.to_ascii_lowercase();
        let key = lower.get(..lower.len().min(10)).unwrap_or(&lower);
        Some(match key {
            "us" | "usec" | "usecs" | "usecond" | "useconds" | "microsecon" => U::Microseconds,
            "ms" | "msec" | "msecs" | "msecond" | "mseconds" | "millisecon" => U::Milliseconds,
            "s" | "sec" | "secs" | "second" | "seconds" => U::Second,
            "m" | "min" | "mins" | "minute" | "minutes" => U::Minute,
            "h" | "hr" | "hrs" | "hour" | "hours" => U::Hour,
            "d" | "day" | "days" => U::Day,
            "w" | "week" | "weeks" => U::Week,
            "mon" | "mons" | "month" | "months" => U::Month,
            "qtr" | "quarter" => U::Quarter,
            "y" | "yr" | "yrs" | "year" | "years" => U::Year,
            "dec" | "decs" | "decade" | "decades" => U::Decade,
            "c" | "cent" | "century" | "centuries" => U::Century,
            "mil" | "mils" | "millennium" | "millennia" => U::Millennium,
            "epoch" => U::Epoch,
            "dow" => U::DayOfWeek,
            "isodow" => U::IsoDayOfWeek,
            "doy" => U::DayOfYear,
            "isoyear" => U::IsoYear,
            _ => return None,
        })
    }

    /// The name PostgreSQL's messages use.
    pub fn name(&self) -> &'static str {
        use DateTimeUnit as U;
        match self {
            U::Microseconds => "microseconds",
            U::Milliseconds => "milliseconds",
            U::Second => "second",
            U::Minute => "minute",
            U::Hour => "hour",
            U::Day => "day",
            U::Week => "week",
            U::Month => "month",
            U::Quarter => "quarter",
            U::Year => "year",
            U::Decade => "decade",
            U::Century => "century",
            U::Millennium => "millennium",
            U::Epoch => "epoch",
            U::DayOfWeek => "dow",
            U::IsoDayOfWeek => "isodow",
            U::DayOfYear => "doy",
            U::IsoYear => "isoyear",
        }
    }

    /// The bit interval input uses to refuse a unit given twice.
    fn input_bit(&self) -> u16 {
        1 << (*self as u16)
    }
}

/// The fields an INTERVAL literal's qualifier names (`INTERVAL '1' DAY`,
/// `INTERVAL '1:30' HOUR TO MINUTE`): a bare number counts in the last
/// field's unit, and the fields below the last one are dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntervalFields {
    pub first: DateTimeUnit,
    pub last: DateTimeUnit,
}

impl IntervalFields {
    /// Drops what lies below the last field, as PostgreSQL does.
    fn restrict(&self, iv: Interval) -> Interval {
        use DateTimeUnit as U;
        let truncate = |micros: i64, unit: i64| micros / unit * unit;
        match self.last {
            U::Year => Interval {
                months: iv.months / 12 * 12,
                days: 0,
                micros: 0,
            },
            U::Month => Interval {
                days: 0,
                micros: 0,
                ..iv
            },
            U::Day => Interval { micros: 0, ..iv },
            U::Hour => Interval {
                micros: truncate(iv.micros, MICROS_PER_HOUR),
                ..iv
            },
            U::Minute => Interval {
                micros: truncate(iv.micros, MICROS_PER_MINUTE),
                ..iv
            },
            _ => iv,
        }
    }
}

/// Parses interval input in PostgreSQL's forms: `1 year 2 mons 3 days`,
/// `50 h`, `1.5 days`, `1 day 02:03:04`, `-1 day -02:00:00`, `1-2` (years
/// and months), `@ 3 days ago`; a bare number is seconds (or in the unit
/// of `fields`' last field).
pub fn parse_interval(s: &str, fields: Option<IntervalFields>) -> Result<Interval> {
    let iv = parse_interval_parts(s, fields).map_err(|e| e.for_input("interval", s))?;
    Ok(match fields {
        Some(f) => f.restrict(iv),
        None => iv,
    })
}

fn parse_interval_parts(s: &str, fields: Option<IntervalFields>) -> DateTimeResult<Interval> {
    use DateTimeError::{BadFormat, FieldOverflow};
    // Words, with a number glued to its unit (`50h`, `1day`) split off.
    let mut words: Vec<String> = Vec::new();
    for w in s.split_whitespace() {
        let w = w.to_ascii_lowercase();
        match w.find(|c: char| c.is_ascii_alphabetic()) {
            Some(i) if i > 0 && !w.contains(':') => {
                words.push(w[..i].to_string());
                words.push(w[i..].to_string());
            }
            _ => words.push(w),
        }
    }
    if words.first().is_some_and(|w| w == "@") {
        words.remove(0);
    }
    let ago = words.len() > 1 && words.last().is_some_and(|w| w == "ago");
    if ago {
        words.pop();
    }
    if words.is_empty() {
        return Err(BadFormat);
    }
    let mut total = IntervalSum::default();
    let mut seen = 0u16;
    let mut claim = |units: &[DateTimeUnit]| -> DateTimeResult<()> {
        for u in units {
            if seen & u.input_bit() != 0 {
                return Err(BadFormat);
            }
            seen |= u.input_bit();
        }
        Ok(())
    };
    let bare_unit = fields.map_or(DateTimeUnit::Second, |f| f.last);
    let minutes_first =
        fields.is_some_and(|f| f.first == DateTimeUnit::Minute && f.last == DateTimeUnit::Second);
    let mut i = 0;
    while i < words.len() {
        let word = words[i].as_str();
        i += 1;
        let (negative, body) = match word.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, word.strip_prefix('+').unwrap_or(word)),
        };
        if body.contains(':') {
            claim(&[
                DateTimeUnit::Hour,
                DateTimeUnit::Minute,
                DateTimeUnit::Second,
            ])?;
            let c = parse_clock(body, minutes_first)?;
            let micros = c.hours as i128 * MICROS_PER_HOUR as i128 + c.micros_after_hour as i128;
            total.micros += if negative { -micros } else { micros };
            continue;
        }
        if let Some((years, months)) = body.split_once('-') {
            // SQL's year-month form, `1-2`.
            claim(&[DateTimeUnit::Year, DateTimeUnit::Month])?;
            let number = |x: &str| -> DateTimeResult<i64> {
                if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(BadFormat);
                }
                x.parse().map_err(|_| FieldOverflow)
            };
            let (y, m) = (number(years)?, number(months)?);
            if m > 11 {
                return Err(FieldOverflow);
            }
            let m = y
                .checked_mul(12)
                .and_then(|y| y.checked_add(m))
                .ok_or(FieldOverflow)?;
            total.months += if negative { -m } else { m } as i128;
            continue;
        }
        let (whole, fraction) = parse_interval_number(body)?;
        let (whole, fraction) = if negative {
            (-whole, -fraction)
        } else {
            (whole, fraction)
        };
        let unit = match words.get(i) {
            Some(next) if next.contains(':') => DateTimeUnit::Day,
            Some(next) => match DateTimeUnit::parse(next) {
                Some(u) => {
                    i += 1;
                    u
                }
                None => bare_unit,
            },
            None => bare_unit,
        };
        claim(&[unit])?;
        total.add(unit, whole, fraction)?;
    }
    if ago {
        total = IntervalSum {
            months: -total.months,
            days: -total.days,
            micros: -total.micros,
        };
    }
    Ok(Interval {
        months: i32::try_from(total.months).map_err(|_| FieldOverflow)?,
        days: i32::try_from(total.days).map_err(|_| FieldOverflow)?,
        micros: i64::try_from(total.micros).map_err(|_| FieldOverflow)?,
    })
}

/// A number of interval input: its whole part and its fraction.
fn parse_interval_number(s: &str) -> DateTimeResult<(i64, f64)> {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return Err(DateTimeError::BadFormat);
    }
    let w = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| DateTimeError::FieldOverflow)?
    };
    let f = if fraction.is_empty() {
        0.0
    } else {
        format!("0.{fraction}").parse().unwrap_or(0.0)
    };
    Ok((w, f))
}

/// Interval input being added up, wide enough not to overflow on the way.
#[derive(Default)]
struct IntervalSum {
    months: i128,
    days: i128,
    micros: i128,
}

impl IntervalSum {
    /// Adds `whole + fraction` of `unit`. A fraction moves down to the
    /// smaller units as PostgreSQL moves it: of years to whole months, of
    /// months and weeks to days (30 and 7) and time, of days to time.
    fn add(&mut self, unit: DateTimeUnit, whole: i64, fraction: f64) -> DateTimeResult<()> {
        use DateTimeUnit as U;
        let w = whole as i128;
        match unit {
            U::Microseconds => self.micros += (whole as f64 + fraction).round_ties_even() as i128,
            U::Milliseconds => {
                self.micros += w / 1000 * MICROS_PER_SECOND as i128
                    + (((w % 1000) as f64 + fraction) * 1000.0).round_ties_even() as i128
            }
            U::Second => self.micros += w * MICROS_PER_SECOND as i128 + seconds_to_micros(fraction),
            U::Minute => {
                self.micros += w * MICROS_PER_MINUTE as i128 + seconds_to_micros(fraction * 60.0)
            }
            U::Hour => {
                self.micros += w * MICROS_PER_HOUR as i128 + seconds_to_micros(fraction * 3600.0)
            }
            U::Day => {
                self.days += w;
                self.micros += seconds_to_micros(fraction * 86_400.0);
            }
            U::Week => {
                self.days += w * 7;
                self.add_days(fraction * 7.0);
            }
            U::Month => {
                self.months += w;
                self.add_days(fraction * DAYS_PER_MONTH as f64);
            }
            U::Year | U::Decade | U::Century | U::Millennium => {
                let months_per_unit = match unit {
                    U::Year => 12,
                    U::Decade => 120,
                    U::Century => 1200,
                    _ => 12_000,
                };
                self.months += w * months_per_unit
                    + (fraction * months_per_unit as f64).round_ties_even() as i128;
            }
            _ => return Err(DateTimeError::BadFormat),
        }
        Ok(())
    }

    /// Adds a fractional number of days: whole days, the rest as time.
    fn add_days(&mut self, days: f64) {
        self.days += days.trunc() as i128;
        self.micros += seconds_to_micros((days - days.trunc()) * 86_400.0);
    }
}

/// Seconds in µs: whole seconds exact, the rest rounded to the µs.
fn seconds_to_micros(secs: f64) -> i128 {
    secs.trunc() as i128 * MICROS_PER_SECOND as i128
        + ((secs - secs.trunc()) * 1e6).round_ties_even() as i128
}

/// `timestamp + interval`: months by the calendar (the day of the month
/// clamped to the new month's length, so Jan 31 + 1 mon is the end of
/// February), then days, then microseconds.
pub fn timestamp_plus_interval(ts: i64, iv: Interval) -> Result<i64> {
    let mut t = ts as i128;
    if iv.months != 0 {
        let (y, m, d) = civil_from_days(ts.div_euclid(MICROS_PER_DAY));
        let month_index = y * 12 + (m as i64 - 1) + iv.months as i64;
        let (y, m) = (
            month_index.div_euclid(12),
            month_index.rem_euclid(12) as u32 + 1,
        );
        let d = d.min(days_in_month(y, m));
        t = days_from_civil(y, m, d) as i128 * MICROS_PER_DAY as i128
            + ts.rem_euclid(MICROS_PER_DAY) as i128;
    }
    check_timestamp(t + iv.days as i128 * MICROS_PER_DAY as i128 + iv.micros as i128)
}

/// `timestamp - timestamp`: whole days of 24 hours and the time left
/// (never months), as PostgreSQL gives it.
pub fn timestamp_difference(a: i64, b: i64) -> Result<Interval> {
    let diff = a.checked_sub(b).ok_or_else(interval_out_of_range)?;
    Ok(Interval {
        months: 0,
        days: (diff / MICROS_PER_DAY) as i32,
        micros: diff % MICROS_PER_DAY,
    })
}

/// A time of day from any count of µs, wrapping around midnight
/// (`time + interval`, `interval '-50 h'::time` = 22:00:00).
pub fn wrap_time(micros: i128) -> i64 {
    micros.rem_euclid(MICROS_PER_DAY as i128) as i64
}

/// EXTRACT(unit FROM value) over DATE, TIMESTAMP[TZ], TIME and INTERVAL
/// values, as PostgreSQL 15 computes it: a NUMERIC, with 6 decimals for
/// seconds and the epoch of a timestamp, time or interval, 3 for
/// milliseconds. A unit the type does not have fails with 0A000.
pub fn extract(unit: DateTimeUnit, d: &Datum) -> Result<Datum> {
    use DateTimeUnit as U;
    let unsupported = |ty: &str| {
        SqlError::unsupported(format!(
            "unit \"{}\" not supported for type {ty}",
            unit.name()
        ))
    };
    let numeric = |mantissa: i64, scale: u32| {
        Datum::Decimal(Decimal {
            mantissa: mantissa as i128,
            scale,
        })
    };
    Ok(match d {
        Datum::Null => Datum::Null,
        Datum::Timestamp(ts) => extract_from_timestamp(unit, *ts),
        Datum::Date(days) => match unit {
            U::Microseconds | U::Milliseconds | U::Second | U::Minute | U::Hour => {
                return Err(unsupported("date"))
            }
            U::Epoch => numeric(*days as i64 * 86_400, 0),
            _ => extract_from_timestamp(unit, *days as i64 * MICROS_PER_DAY),
        },
        Datum::Time(t) => match unit {
            U::Microseconds => numeric(t % MICROS_PER_MINUTE, 0),
            U::Milliseconds => numeric(t % MICROS_PER_MINUTE, 3),
            U::Second => numeric(t % MICROS_PER_MINUTE, 6),
            U::Minute => numeric(t / MICROS_PER_MINUTE % 60, 0),
            U::Hour => numeric(t / MICROS_PER_HOUR, 0),
            U::Epoch => numeric(*t, 6),
            _ => return Err(unsupported("time without time zone")),
        },
        Datum::Interval(iv) => {
            let (years, months) = ((iv.months / 12) as i64, (iv.months % 12) as i64);
            match unit {
                U::Microseconds => numeric(iv.micros % MICROS_PER_MINUTE, 0),
                U::Milliseconds => numeric(iv.micros % MICROS_PER_MINUTE, 3),
                U::Second => numeric(iv.micros % MICROS_PER_MINUTE, 6),
                U::Minute => numeric(iv.micros / MICROS_PER_MINUTE % 60, 0),
                U::Hour => numeric(iv.micros / MICROS_PER_HOUR, 0),
                U::Day => numeric(iv.days as i64, 0),
                U::Month => numeric(months, 0),
                U::Quarter => numeric(months / 3 + 1, 0),
                U::Year => numeric(years, 0),
                U::Decade => numeric(years / 10, 0),
                U::Century => numeric(years / 100, 0),
                U::Millennium => numeric(years / 1000, 0),
                // A year counts 365.25 days here, a month 30.
                U::Epoch => Datum::Decimal(Decimal {
                    mantissa: years as i128 * 31_557_600_000_000
                        + (months * DAYS_PER_MONTH + iv.days as i64) as i128
                            * MICROS_PER_DAY as i128
                        + iv.micros as i128,
                    scale: 6,
                }),
                _ => return Err(unsupported("interval")),
            }
        }
        other => {
            return Err(SqlError::new(
                code::UNDEFINED_FUNCTION,
                format!(
                    "function extract(unknown, {}) does not exist",
                    other.kind_name()
                ),
            ))
        }
    })
}

fn extract_from_timestamp(unit: DateTimeUnit, ts: i64) -> Datum {
    use DateTimeUnit as U;
    let days = ts.div_euclid(MICROS_PER_DAY);
    let time = ts.rem_euclid(MICROS_PER_DAY);
    // `y` counts as astronomers do (0 is 1 BC); PostgreSQL's years,
    // decades, centuries and millennia skip the year 0.
    let (y, m, d) = civil_from_days(days);
    let (value, scale) = match unit {
        U::Microseconds => (time % MICROS_PER_MINUTE, 0),
        U::Milliseconds => (time % MICROS_PER_MINUTE, 3),
        U::Second => (time % MICROS_PER_MINUTE, 6),
        U::Minute => (time / MICROS_PER_MINUTE % 60, 0),
        U::Hour => (time / MICROS_PER_HOUR, 0),
        U::Day => (d as i64, 0),
        U::Week => (iso_week(days).1, 0),
        U::Month => (m as i64, 0),
        U::Quarter => ((m as i64 - 1) / 3 + 1, 0),
        U::Year if y > 0 => (y, 0),
        U::Year => (y - 1, 0),
        U::Decade if y >= 0 => (y / 10, 0),
        U::Decade => (-((8 - (y - 1)) / 10), 0),
        U::Century if y > 0 => ((y + 99) / 100, 0),
        U::Century => (-((99 - (y - 1)) / 100), 0),
        U::Millennium if y > 0 => ((y + 999) / 1000, 0),
        U::Millennium => (-((999 - (y - 1)) / 1000), 0),
        U::Epoch => (ts, 6),
        // 1970-01-01 was a Thursday.
        U::DayOfWeek => ((days + 4).rem_euclid(7), 0),
        U::IsoDayOfWeek => ((days + 3).rem_euclid(7) + 1, 0),
        U::DayOfYear => (days - days_from_civil(y, 1, 1) + 1, 0),
        U::IsoYear => match iso_week(days).0 {
            iy if iy > 0 => (iy, 0),
            iy => (iy - 1, 0),
        },
    };
    Datum::Decimal(Decimal {
        mantissa: value as i128,
        scale,
    })
}

/// The ISO 8601 week-numbering year and week of a day: weeks start on
/// Monday, and week 1 is the one holding the year's first Thursday.
fn iso_week(days: i64) -> (i64, i64) {
    let days_since_monday = (days + 3).rem_euclid(7);
    let thursday = days - days_since_monday + 3;
    let (year, _, _) = civil_from_days(thursday);
    (year, (thursday - days_from_civil(year, 1, 1)) / 7 + 1)
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
        Datum::Time(t) => format_time(*t),
        Datum::Interval(iv) => iv.to_string(),
        Datum::Array(items) => {
            crate::array::format(items, ty.element().unwrap_or(&DataType::Unknown))
        }
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
        DataType::Int2 | DataType::Int4 | DataType::Int8 | DataType::Oid => {
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
        DataType::Time => Datum::Time(parse_time(s)?),
        DataType::Interval => Datum::Interval(parse_interval(s, None)?),
        DataType::Uuid => Datum::Bytes(parse_uuid(s).ok_or_else(bad)?),
        DataType::Json => {
            crate::json::validate(s).map_err(|e| json_error(ty, s, &e))?;
            Datum::Text(s.to_string())
        }
        DataType::Jsonb => {
            Datum::Text(crate::json::normalize(s).map_err(|e| json_error(ty, s, &e))?)
        }
        DataType::Array(elem) => crate::array::parse(s, elem)?,
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
        DataType::Time => "time without time zone".into(),
        DataType::Array(elem) => format!("{}[]", type_display(elem)),
        other => other.sql_name(),
    }
}

pub fn check_int_range(v: i64, ty: &DataType) -> Result<()> {
    let ok = match ty {
        DataType::Int2 => i16::try_from(v).is_ok(),
        DataType::Int4 => i32::try_from(v).is_ok(),
        DataType::Oid => u32::try_from(v).is_ok(),
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
            Datum::Timestamp(date_to_timestamp(d)?)
        }
        (Datum::Timestamp(t), DataType::Timestamp | DataType::TimestampTz) => Datum::Timestamp(t),
        (Datum::Timestamp(t), DataType::Date) => Datum::Date(t.div_euclid(MICROS_PER_DAY) as i32),
        (Datum::Timestamp(t), DataType::Time) => Datum::Time(t.rem_euclid(MICROS_PER_DAY)),
        (Datum::Time(t), DataType::Time) => Datum::Time(t),
        (Datum::Time(t), DataType::Interval) => Datum::Interval(Interval::from_micros(t)),
        (Datum::Interval(iv), DataType::Interval) => Datum::Interval(iv),
        (Datum::Interval(iv), DataType::Time) => Datum::Time(wrap_time(iv.micros as i128)),
        (Datum::Array(items), DataType::Array(elem)) => Datum::Array(
            items
                .into_iter()
                .map(|d| cast(d, elem))
                .collect::<Result<Vec<_>>>()?,
        ),
        // The cast says `true` where the output format says `t`.
        (Datum::Bool(b), t) if t.is_string() => Datum::Text(b.to_string()),
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
        (Datum::Array(items), DataType::Array(elem)) => Datum::Array(
            items
                .into_iter()
                .map(|d| coerce_for_column(d, elem))
                .collect::<Result<Vec<_>>>()?,
        ),
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
        // PostgreSQL's select_div_scale: 16 significant digits, more
        // when the quotient is below one base-10000 digit's weight.
        assert_eq!(third.to_string(), "0.33333333333333333333");
        let div = |a: &str, b: &str| {
            Decimal::parse(a)
                .unwrap()
                .div(&Decimal::parse(b).unwrap())
                .unwrap()
                .to_string()
        };
        assert_eq!(div("10", "4"), "2.5000000000000000");
        assert_eq!(div("2", "2"), "1.00000000000000000000");
        assert_eq!(div("100000", "3"), "33333.333333333333");
        assert_eq!(div("0", "5"), "0.00000000000000000000");
        assert_eq!(div("1.5", "0.5"), "3.0000000000000000");
        assert_eq!(div("7", "0.001"), "7000.0000000000000000");
        let sqrt = |a: &str, scale| {
            Decimal::parse(a)
                .unwrap()
                .sqrt_at(scale)
                .unwrap()
                .to_string()
        };
        assert_eq!(sqrt("1.6666666666666667", 16), "1.2909944487358056");
        assert_eq!(sqrt("2", 4), "1.4142");
        assert_eq!(sqrt("0.25", 2), "0.50");
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

    fn iv(s: &str) -> Interval {
        parse_interval(s, None).unwrap()
    }

    fn ts(s: &str) -> i64 {
        parse_timestamp(s).unwrap()
    }

    #[test]
    fn intervals_read_and_print_like_postgres() {
        for (input, shown) in [
            ("50 h", "50:00:00"),
            ("50h", "50:00:00"),
            ("-3 day", "-3 days"),
            ("1 day", "1 day"),
            ("1 day 02:03:04", "1 day 02:03:04"),
            ("1 02:03:04", "1 day 02:03:04"),
            ("1 year 2 mons 3 days", "1 year 2 mons 3 days"),
            (
                "1 yr 2 months 3 d 4 hrs 5 min 6 s",
                "1 year 2 mons 3 days 04:05:06",
            ),
            ("2 hours 30 minutes", "02:30:00"),
            ("12:34:56", "12:34:56"),
            ("12:34", "12:34:00"),
            ("-1 day -02:00:00", "-1 days -02:00:00"),
            ("-1 day 02:00:00", "-1 days +02:00:00"),
            ("-1 day +02:00:00", "-1 days +02:00:00"),
            ("1 year -1 mons", "11 mons"),
            ("1 mon -1 day", "1 mon -1 days"),
            ("-1 year -2 mons", "-1 years -2 mons"),
            ("-02:00:00", "-02:00:00"),
            ("00:00:01.5", "00:00:01.5"),
            ("1.5 seconds", "00:00:01.5"),
            ("10 ms", "00:00:00.01"),
            ("1 microsecond", "00:00:00.000001"),
            ("1.5 days", "1 day 12:00:00"),
            ("1.5 months", "1 mon 15 days"),
            ("1.5 years", "1 year 6 mons"),
            ("2 weeks", "14 days"),
            ("1 decade 1 century", "110 years"),
            ("1 day 2", "1 day 00:00:02"),
            ("0", "00:00:00"),
            ("1-2", "1 year 2 mons"),
            ("@ 3 days ago", "-3 days"),
            ("1 day 01:00 ago", "-1 days -01:00:00"),
            ("  1   DAY  ", "1 day"),
        ] {
            assert_eq!(iv(input).to_string(), shown, "{input}");
        }
        for (input, sqlstate) in [
            ("", "22007"),
            ("abc", "22007"),
            ("1 fortnight", "22007"),
            ("1 day 1 day", "22007"),
            ("day", "22007"),
            ("1 day ago ago", "22007"),
            ("01:02 03:04", "22007"),
            ("12:61", "22015"),
            ("3000000000 days", "22015"),
            ("99999999999999999999 s", "22015"),
        ] {
            let e = parse_interval(input, None).unwrap_err();
            assert_eq!(e.code, sqlstate, "{input}: {}", e.message);
        }
        let at_least_microsecond = Interval::from_micros(-1);
        assert_eq!(at_least_microsecond.to_string(), "-00:00:00.000001");
    }

    #[test]
    fn interval_literal_fields_pick_the_unit_and_drop_smaller_fields() {
        let with = |s: &str, first, last| {
            parse_interval(s, Some(IntervalFields { first, last }))
                .unwrap()
                .to_string()
        };
        use DateTimeUnit as U;
        assert_eq!(with("3", U::Day, U::Day), "3 days");
        assert_eq!(with("1 day 02:03:04", U::Hour, U::Hour), "1 day 02:00:00");
        assert_eq!(with("1 year 2 mons 3 days", U::Year, U::Year), "1 year");
        assert_eq!(with("1:30", U::Hour, U::Minute), "01:30:00");
        assert_eq!(with("1:30", U::Minute, U::Second), "00:01:30");
    }

    #[test]
    fn intervals_compare_by_length_and_compute_like_postgres() {
        assert_eq!(iv("1 mon").span(), iv("30 days").span());
        assert_eq!(iv("1 day").span(), iv("24:00:00").span());
        assert!(iv("1 day 00:00:01").span() > iv("1 day").span());
        assert!(iv("-1 year").span() < iv("-11 mons").span());
        let t = |x: Interval| x.to_string();
        assert_eq!(
            t(iv("1 day").checked_add(iv("-02:00:00")).unwrap()),
            "1 day -02:00:00"
        );
        assert_eq!(
            t(iv("1 mon").checked_sub(iv("1 day")).unwrap()),
            "1 mon -1 days"
        );
        assert_eq!(
            t(iv("1 day 01:00").checked_neg().unwrap()),
            "-1 days -01:00:00"
        );
        assert_eq!(t(iv("1 mon").times(1.5).unwrap()), "1 mon 15 days");
        assert_eq!(t(iv("1 day").times(0.5).unwrap()), "12:00:00");
        assert_eq!(t(iv("01:00").times(-2.0).unwrap()), "-02:00:00");
        assert_eq!(t(iv("1 mon").divided_by(3.0).unwrap()), "10 days");
        assert_eq!(t(iv("1 day").divided_by(3.0).unwrap()), "08:00:00");
        assert_eq!(iv("1 day").divided_by(0.0).unwrap_err().code, "22012");
        let max = Interval {
            months: i32::MAX,
            days: 0,
            micros: 0,
        };
        assert_eq!(max.checked_add(iv("1 mon")).unwrap_err().code, "22008");
        assert_eq!(max.times(2.0).unwrap_err().code, "22008");
        assert_eq!(
            Interval::from_span(iv("1 mon 2 days 25:00:00").span()),
            Some(iv("1 mon 3 days 01:00:00"))
        );
    }

    #[test]
    fn times_read_print_and_wrap_like_postgres() {
        let time = |s: &str| format_time(parse_time(s).unwrap());
        assert_eq!(time("12:34:56"), "12:34:56");
        assert_eq!(time("12:34"), "12:34:00");
        assert_eq!(time(" 12:34:56.5 "), "12:34:56.5");
        assert_eq!(time("12:34:56.1234567"), "12:34:56.123457");
        assert_eq!(time("24:00:00"), "24:00:00");
        assert_eq!(time("1:30 pm"), "13:30:00");
        assert_eq!(time("12:00 AM"), "00:00:00");
        assert_eq!(time("2020-01-01 12:34:56"), "12:34:56");
        assert_eq!(time("12:34:56+02"), "12:34:56");
        for (input, sqlstate) in [
            ("abc", "22007"),
            ("12", "22007"),
            ("12:34:56 xyz", "22007"),
            ("24:00:01", "22008"),
            ("25:00", "22008"),
            ("12:60", "22008"),
            ("13:00 pm", "22008"),
        ] {
            assert_eq!(parse_time(input).unwrap_err().code, sqlstate, "{input}");
        }
        // interval '50 h'::time, interval '-50 h'::time, time + interval.
        assert_eq!(
            format_time(wrap_time(iv("50 h").micros as i128)),
            "02:00:00"
        );
        assert_eq!(
            format_time(wrap_time(iv("-50 h").micros as i128)),
            "22:00:00"
        );
        let eleven = parse_time("23:00").unwrap() as i128;
        assert_eq!(
            format_time(wrap_time(eleven + iv("02:30").micros as i128)),
            "01:30:00"
        );
    }

    #[test]
    fn timestamps_move_by_intervals_on_the_calendar() {
        let plus =
            |t: &str, i: &str| format_timestamp(timestamp_plus_interval(ts(t), iv(i)).unwrap());
        assert_eq!(plus("2020-01-31", "1 mon"), "2020-02-29 00:00:00");
        assert_eq!(plus("2021-01-31 10:00", "1 mon"), "2021-02-28 10:00:00");
        assert_eq!(plus("2020-03-31", "-1 mon"), "2020-02-29 00:00:00");
        assert_eq!(plus("2020-12-15", "1 year 1 mon"), "2022-01-15 00:00:00");
        assert_eq!(plus("2020-01-01", "-1 mon"), "2019-12-01 00:00:00");
        assert_eq!(plus("2020-01-01", "1 day 01:00"), "2020-01-02 01:00:00");
        assert_eq!(plus("2020-01-01", "-00:00:00.5"), "2019-12-31 23:59:59.5");
        assert_eq!(
            timestamp_plus_interval(ts("294000-01-01"), iv("1000 years"))
                .unwrap_err()
                .code,
            "22008"
        );
        let minus = |a: &str, b: &str| timestamp_difference(ts(a), ts(b)).unwrap().to_string();
        assert_eq!(minus("2008-01-02 01:00", "2008-01-01"), "1 day 01:00:00");
        assert_eq!(minus("2008-01-01", "2008-01-02 01:00"), "-1 days -01:00:00");
        assert_eq!(minus("2008-03-01", "2008-01-01"), "60 days");
        assert_eq!(minus("2008-01-01", "2008-01-01"), "00:00:00");
        assert_eq!(
            format_timestamp(ts("100000-01-01 00:00:01.5")),
            "100000-01-01 00:00:01.5"
        );
        assert_eq!(parse_timestamp("300000-01-01").unwrap_err().code, "22008");
        assert_eq!(
            parse_timestamp("2020-01-01 25:00").unwrap_err().code,
            "22008"
        );
        assert_eq!(
            parse_timestamp("2020-01-01 13:10:11 AA").unwrap_err().code,
            "22007"
        );
        assert_eq!(
            format_timestamp(ts("2020-01-01 1:30 pm")),
            "2020-01-01 13:30:00"
        );
        assert_eq!(
            format_timestamp(ts("2020-01-01 24:00")),
            "2020-01-02 00:00:00"
        );
        assert_eq!(
            format_timestamp(ts("0000-06-01 12:00")),
            "0001-06-01 12:00:00 BC"
        );
    }

    #[test]
    fn extract_reads_fields_as_postgres_does() {
        let unit = |n: &str| DateTimeUnit::parse(n).unwrap();
        let x = |u: &str, d: Datum| extract(unit(u), &d).unwrap();
        let num = |s: &str| Datum::Decimal(Decimal::parse(s).unwrap());
        let shown = |d: Datum| format_datum(&d, &DataType::Numeric(None)).unwrap();
        let t = Datum::Timestamp(ts("2001-02-16 20:38:40.5"));
        assert_eq!(shown(x("second", t.clone())), "40.500000");
        for (u, v) in [
            ("year", "2001"),
            ("month", "2"),
            ("day", "16"),
            ("hour", "20"),
            ("minute", "38"),
            ("milliseconds", "40500.000"),
            ("microseconds", "40500000"),
            ("week", "7"),
            ("quarter", "1"),
            ("dow", "5"),
            ("isodow", "5"),
            ("doy", "47"),
            ("decade", "200"),
            ("century", "21"),
            ("millennium", "3"),
            ("epoch", "982355920.500000"),
        ] {
            assert_eq!(x(u, t.clone()), num(v), "{u}");
            assert_eq!(shown(x(u, t.clone())), v, "{u}");
        }
        let date = |s: &str| Datum::Date(parse_date(s).unwrap());
        assert_eq!(x("isoyear", date("2006-01-01")), num("2005"));
        assert_eq!(x("isoyear", date("2006-01-02")), num("2006"));
        assert_eq!(x("week", date("2005-01-01")), num("53"));
        assert_eq!(x("century", date("2000-12-16")), num("20"));
        assert_eq!(x("year", date("0000-06-01")), num("-1"));
        assert_eq!(x("epoch", date("1970-01-02")), num("86400"));
        assert_eq!(
            extract(unit("hour"), &date("2000-01-01")).unwrap_err().code,
            "0A000"
        );
        let time = Datum::Time(parse_time("17:12:28.5").unwrap());
        assert_eq!(shown(x("seconds", time.clone())), "28.500000");
        assert_eq!(shown(x("milliseconds", time.clone())), "28500.000");
        assert_eq!(x("hour", time.clone()), num("17"));
        assert_eq!(extract(unit("day"), &time).unwrap_err().code, "0A000");
        let interval = |s: &str| Datum::Interval(iv(s));
        assert_eq!(
            shown(x("epoch", interval("5 days 3 hours"))),
            "442800.000000"
        );
        assert_eq!(x("epoch", interval("1 year")), num("31557600"));
        assert_eq!(x("hour", interval("50 h")), num("50"));
        assert_eq!(x("month", interval("2 years 13 months")), num("1"));
        assert_eq!(x("minute", interval("-01:02:03")), num("-2"));
        assert_eq!(
            extract(unit("dow"), &interval("1 day")).unwrap_err().code,
            "0A000"
        );
        assert_eq!(x("year", Datum::Null), Datum::Null);
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
            DataType::Time,
            DataType::Interval,
        ] {
            assert_eq!(DataType::from_sql_name(&t.sql_name()), Some(t));
        }
    }
}
