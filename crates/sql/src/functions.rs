//! The library of scalar functions beyond the few the binder treats
//! itself: string (`substring`, `concat`, `replace`, `trim`, `strpos`,
//! `left`, `lpad`, `split_part`, ...), math (`ceil`, `floor`, `mod`,
//! `power`, `sqrt`, `ln`, `greatest`, ...), date (`date_trunc`, `age`,
//! `to_char`, `make_date`, `make_timestamp`, `to_timestamp`,
//! `clock_timestamp`), `md5`, `regexp_replace`, `translate`, `format`,
//! `quote_ident`, `quote_literal`, `to_hex`, `gen_random_uuid`, and JSON
//! (`->`, `->>`, `@>`, `<@`, `?`, `jsonb_typeof`, `jsonb_array_length`,
//! `#>`, `#>>`, `jsonb_extract_path[_text]`, `json[b]_build_object`,
//! `json[b]_build_array`, `to_json[b]`) functions and operators, with PostgreSQL's argument and result types and NULL rules
//! (a NULL argument gives NULL, except where PostgreSQL says otherwise:
//! `concat` skips NULLs, `greatest` / `least` ignore them).
//!
//! [`resolve`] picks a function for a name and argument types (untyped
//! literals and parameters take the types it asks for); [`call`] runs it.

use crate::error::{code, Result, SqlError};
use crate::types::{self, DataType, Datum, Decimal};
use crate::{datefns, json};

/// A library function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LibFn {
    Substring,
    Concat,
    ConcatWs,
    Replace,
    BTrim,
    LTrim,
    RTrim,
    StrPos,
    Left,
    Right,
    LPad,
    RPad,
    Repeat,
    Reverse,
    SplitPart,
    InitCap,
    Chr,
    Ascii,
    StartsWith,
    OctetLength,
    Ceil,
    Floor,
    Trunc,
    Sign,
    Mod,
    Power,
    Sqrt,
    Cbrt,
    Exp,
    Ln,
    Log10,
    /// `log(b, x)`: the logarithm of `x` to base `b`.
    LogBase,
    /// A trigonometric or hyperbolic function, or degrees/radians, of a
    /// double.
    Trig(Trig),
    /// `atan2(y, x)`.
    Atan2,
    /// `factorial(n)`, as numeric.
    Factorial,
    /// `width_bucket(operand, low, high, count)`.
    WidthBucket,
    /// `num_nulls(...)` (`false`) / `num_nonnulls(...)` (`true`).
    CountNulls(bool),
    /// `scale(numeric)`: digits after the decimal point.
    Scale,
    /// `pg_size_pretty(bytes)`: `123 bytes`, `10 kB`, ... as PostgreSQL
    /// rounds them.
    SizePretty,
    Pi,
    Random,
    Greatest,
    Least,
    DateTrunc,
    /// `->`: the element at a key or position, as JSON.
    JsonGet,
    /// `->>`: the element at a key or position, as text.
    JsonGetText,
    /// `json_extract_path`: the element at a path of keys, as JSON.
    JsonPath,
    /// `json_extract_path_text`: the same, as text.
    JsonPathText,
    /// `@>`: containment.
    JsonContains,
    /// `<@`: containment, reversed.
    JsonContainedIn,
    /// `?`: a top-level key (or string element).
    JsonHasKey,
    JsonConcat,
    JsonDeleteKey,
    JsonDeleteIndex,
    JsonTypeof,
    JsonArrayLength,
    /// `age(a, b)`; with one argument, from today's midnight.
    Age,
    AgeFromToday,
    MakeDate,
    /// `make_interval(years, months, weeks, days, hours, mins, secs)`,
    /// missing trailing arguments 0.
    MakeInterval,
    DivTrunc,
    ToDate,
    ToTimestampFormat,
    JustifyDays,
    JustifyHours,
    JustifyInterval,
    /// `pg_get_serial_sequence(table, column)`: the name of the sequence
    /// of a SERIAL or identity column, `schema.<table>_<column>_seq`.
    SerialSequenceName,
    /// `similar_to_escape(pattern [, escape])`: the regular expression a
    /// SIMILAR TO pattern means.
    SimilarToEscape,
    /// `encode(bytea, format)`: `hex`, `base64` or `escape`.
    Encode,
    /// `decode(text, format)`: the inverse of `encode`.
    Decode,
    /// `trunc(numeric, digits)`: toward zero, keeping `max(digits, 0)`
    /// decimals.
    TruncDigits,
    /// `gcd` / `lcm` of int4 (`false`) or int8 (`true`) arguments.
    Gcd(bool),
    Lcm(bool),
    /// `timezone(zone, ts)` and `ts AT TIME ZONE zone`: only UTC (and its
    /// other names) is known, so the value is the same instant relabelled.
    TimeZone,
    MakeTimestamp,
    ToTimestamp,
    ToChar,
    /// `to_char(number, template)` (see [`crate::numfmt`]).
    ToCharNumber,
    ClockTimestamp,
    Md5,
    RegexpReplace,
    Translate,
    /// `overlay(s placing t from start [for count])`.
    Overlay,
    Format,
    QuoteIdent,
    QuoteLiteral,
    /// `to_hex` of a 32-bit integer (negative ones print 8 hex digits).
    ToHex32,
    ToHex64,
    GenRandomUuid,
    BitLength,
    /// `#>` and `#>>`: the element at a path given as a text array.
    JsonPathArray,
    JsonPathArrayText,
    /// A value as JSON (the binder picks one by the value's type).
    ToJsonNumber,
    ToJsonBool,
    ToJsonString,
    /// `to_json` / `to_jsonb` of a value already made JSON.
    ToJson,
    ToJsonb,
    JsonBuildObject,
    JsonbBuildObject,
    JsonBuildArray,
    JsonbBuildArray,
    /// The text form of a UUID (for casts: a UUID is held as bytes).
    UuidText,
    /// The text form of a TIMESTAMPTZ (with its zone, as casts print it).
    TimestampTzText,
    /// An array function or operator (see [`crate::array`]).
    Array(crate::array::ArrayFn),
    /// `format_type(type oid, typmod)`: the type's SQL name.
    FormatType,
    /// `pg_get_expr(expr, relation [, pretty])`: a default's or
    /// predicate's SQL text (kept as text, so returned as it is).
    GetExpr,
    /// `parse_ident(text)`: a qualified identifier's parts (quoted ones
    /// as written, the others in lower case).
    ParseIdent,
    /// `name::regclass` (the binder builds it): the oid the lookup found,
    /// or 42P01 if it found none.
    RegclassChecked,
    /// `to_regtype(name)`: the type's oid, NULL if there is no such type.
    ToRegtype,
    /// The first `n` characters (an explicit cast to `varchar(n)` or
    /// `char(n)`).
    TruncateChars(u32),
}

/// A resolved call: the function, the types untyped arguments take, and
/// the result type.
pub struct Signature {
    pub func: LibFn,
    pub params: Vec<DataType>,
    pub result: DataType,
}

fn no_such(name: &str, args: &[DataType]) -> SqlError {
    let sig: Vec<String> = args.iter().map(types::type_display).collect();
    SqlError::new(
        code::UNDEFINED_FUNCTION,
        format!("function {name}({}) does not exist", sig.join(", ")),
    )
    .with_hint("No function matches the given name and argument types.")
}

fn no_operator(op: &str, args: &[DataType]) -> SqlError {
    SqlError::new(
        code::UNDEFINED_FUNCTION,
        format!(
            "operator does not exist: {} {op} {}",
            types::type_display(&args[0]),
            types::type_display(&args[1])
        ),
    )
    .with_hint("No operator matches the given name and argument types.")
}

fn is_datetime(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Timestamp | DataType::TimestampTz | DataType::Date | DataType::Unknown
    )
}

fn is_json(t: &DataType) -> bool {
    matches!(t, DataType::Json | DataType::Jsonb | DataType::Unknown)
}

/// The document type a JSON function works in: an untyped literal is JSONB.
fn json_type(t: &DataType) -> DataType {
    match t {
        DataType::Json => DataType::Json,
        _ => DataType::Jsonb,
    }
}

fn is_text(t: &DataType) -> bool {
    t.is_string() || *t == DataType::Unknown
}

fn is_int(t: &DataType) -> bool {
    t.is_integer() || *t == DataType::Unknown
}

fn is_num(t: &DataType) -> bool {
    t.is_numeric() || *t == DataType::Unknown
}

/// The one-argument functions of doubles named after trigonometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trig {
    Sin,
    Cos,
    Tan,
    Cot,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Asinh,
    Acosh,
    Atanh,
    Degrees,
    Radians,
}

impl Trig {
    fn named(name: &str) -> Option<Trig> {
        Some(match name {
            "sin" => Trig::Sin,
            "cos" => Trig::Cos,
            "tan" => Trig::Tan,
            "cot" => Trig::Cot,
            "asin" => Trig::Asin,
            "acos" => Trig::Acos,
            "atan" => Trig::Atan,
            "sinh" => Trig::Sinh,
            "cosh" => Trig::Cosh,
            "tanh" => Trig::Tanh,
            "asinh" => Trig::Asinh,
            "acosh" => Trig::Acosh,
            "atanh" => Trig::Atanh,
            "degrees" => Trig::Degrees,
            "radians" => Trig::Radians,
            _ => return None,
        })
    }

    /// The function at `x`; outside its domain, PostgreSQL's 22003.
    fn apply(self, x: f64) -> Result<f64> {
        let out_of_range =
            || SqlError::new(code::NUMERIC_VALUE_OUT_OF_RANGE, "input is out of range");
        Ok(match self {
            Trig::Sin => x.sin(),
            Trig::Cos => x.cos(),
            Trig::Tan => x.tan(),
            Trig::Cot => 1.0 / x.tan(),
            Trig::Asin | Trig::Acos if !(-1.0..=1.0).contains(&x) => return Err(out_of_range()),
            Trig::Asin => x.asin(),
            Trig::Acos => x.acos(),
            Trig::Atan => x.atan(),
            Trig::Sinh => x.sinh(),
            Trig::Cosh => x.cosh(),
            Trig::Tanh => x.tanh(),
            Trig::Asinh => x.asinh(),
            Trig::Acosh if x < 1.0 => return Err(out_of_range()),
            Trig::Acosh => x.acosh(),
            Trig::Atanh if !(-1.0..=1.0).contains(&x) => return Err(out_of_range()),
            Trig::Atanh => x.atanh(),
            Trig::Degrees => x.to_degrees(),
            Trig::Radians => x.to_radians(),
        })
    }
}

/// PostgreSQL's `pg_size_pretty`: bytes below 10 kB, then each unit
/// while the value is below 20 (half-rounded) thousand of it.
fn size_pretty(bytes: i64) -> String {
    // (name, limit, rounded, bits of the unit)
    const UNITS: [(&str, i64, bool, u32); 6] = [
        ("bytes", 10 * 1024, false, 0),
        ("kB", 20 * 1024 - 1, true, 10),
        ("MB", 20 * 1024 - 1, true, 20),
        ("GB", 20 * 1024 - 1, true, 30),
        ("TB", 20 * 1024 - 1, true, 40),
        ("PB", 20 * 1024 - 1, true, 50),
    ];
    let half_rounded = |x: i64| (x + if x < 0 { -1 } else { 1 }) / 2;
    let mut size = bytes;
    for (i, &(name, limit, round, bits)) in UNITS.iter().enumerate() {
        let last = i + 1 == UNITS.len();
        if last || size.abs() < limit {
            if round {
                size = half_rounded(size);
            }
            return format!("{size} {name}");
        }
        let (_, _, next_round, next_bits) = UNITS[i + 1];
        let shift = next_bits - bits - u32::from(next_round) + u32::from(round);
        size /= 1i64 << shift;
    }
    unreachable!("the last unit always answers")
}

/// The numeric type a math function computes in: NUMERIC stays NUMERIC,
/// anything else (integers included, as in PostgreSQL) is double.
fn math_type(t: &DataType) -> DataType {
    match t {
        DataType::Numeric(_) => DataType::Numeric(None),
        _ => DataType::Float8,
    }
}

/// The function `name` applied to arguments of types `args`, or `None` if
/// there is no function of that name (42883 if the name exists but not
/// for these types).
pub fn resolve(name: &str, args: &[DataType]) -> Result<Option<Signature>> {
    use DataType as T;
    let n = args.len();
    let text = T::Text;
    let sig = |func, params: Vec<DataType>, result| {
        Ok(Some(Signature {
            func,
            params,
            result,
        }))
    };
    let all = |ok: fn(&DataType) -> bool| args.iter().all(ok);
    let bad = || Err(no_such(name, args));
    if let Some((f, params, result)) = crate::array::resolve(name, args) {
        return sig(LibFn::Array(f), params, result);
    }
    match name {
        "format_type" if n == 2 && all(is_int) => {
            return sig(LibFn::FormatType, vec![T::Int8, T::Int4], T::Text)
        }
        "pg_get_expr" if (n == 2 || n == 3) && is_text(&args[0]) => {
            let mut p = vec![text.clone(), T::Int8];
            if n == 3 {
                p.push(T::Bool);
            }
            return sig(LibFn::GetExpr, p, T::Text);
        }
        "to_regtype" if n == 1 && all(is_text) => {
            return sig(LibFn::ToRegtype, vec![text.clone()], T::Int8)
        }
        "parse_ident" if n == 1 && all(is_text) => {
            return sig(
                LibFn::ParseIdent,
                vec![text.clone()],
                T::Array(Box::new(T::Text)),
            )
        }
        _ => {}
    }
    match name {
        "substring" | "substr" if (n == 2 || n == 3) && is_text(&args[0]) => {
            if !args[1..].iter().all(is_int) {
                return bad();
            }
            let mut p = vec![text.clone(), T::Int4];
            if n == 3 {
                p.push(T::Int4);
            }
            sig(LibFn::Substring, p, T::Text)
        }
        "concat" => sig(LibFn::Concat, vec![text; n], T::Text),
        "concat_ws" if n >= 1 => sig(LibFn::ConcatWs, vec![text; n], T::Text),
        "replace" if n == 3 && all(is_text) => sig(LibFn::Replace, vec![text; 3], T::Text),
        "btrim" | "trim" | "ltrim" | "rtrim" if (n == 1 || n == 2) && all(is_text) => {
            let f = match name {
                "ltrim" => LibFn::LTrim,
                "rtrim" => LibFn::RTrim,
                _ => LibFn::BTrim,
            };
            sig(f, vec![text; n], T::Text)
        }
        "strpos" | "position" if n == 2 && all(is_text) => {
            sig(LibFn::StrPos, vec![text; 2], T::Int4)
        }
        "left" | "right" if n == 2 && is_text(&args[0]) && is_int(&args[1]) => {
            let f = if name == "left" {
                LibFn::Left
            } else {
                LibFn::Right
            };
            sig(f, vec![text, T::Int4], T::Text)
        }
        "lpad" | "rpad"
            if (n == 2 || n == 3)
                && is_text(&args[0])
                && is_int(&args[1])
                && args.get(2).is_none_or(is_text) =>
        {
            let f = if name == "lpad" {
                LibFn::LPad
            } else {
                LibFn::RPad
            };
            let mut p = vec![text.clone(), T::Int4];
            if n == 3 {
                p.push(text);
            }
            sig(f, p, T::Text)
        }
        "repeat" if n == 2 && is_text(&args[0]) && is_int(&args[1]) => {
            sig(LibFn::Repeat, vec![text, T::Int4], T::Text)
        }
        "reverse" if n == 1 && all(is_text) => sig(LibFn::Reverse, vec![text], T::Text),
        "split_part" if n == 3 && is_text(&args[0]) && is_text(&args[1]) && is_int(&args[2]) => {
            sig(LibFn::SplitPart, vec![text.clone(), text, T::Int4], T::Text)
        }
        "initcap" if n == 1 && all(is_text) => sig(LibFn::InitCap, vec![text], T::Text),
        "chr" if n == 1 && all(is_int) => sig(LibFn::Chr, vec![T::Int4], T::Text),
        "ascii" if n == 1 && all(is_text) => sig(LibFn::Ascii, vec![text], T::Int4),
        "starts_with" if n == 2 && all(is_text) => sig(LibFn::StartsWith, vec![text; 2], T::Bool),
        "octet_length" if n == 1 && (is_text(&args[0]) || args[0] == T::Bytea) => {
            sig(LibFn::OctetLength, vec![text], T::Int4)
        }
        "ceil" | "ceiling" | "floor" | "trunc" | "sign" if n == 1 && all(is_num) => {
            let f = match name {
                "floor" => LibFn::Floor,
                "trunc" => LibFn::Trunc,
                "sign" => LibFn::Sign,
                _ => LibFn::Ceil,
            };
            let t = math_type(&args[0]);
            sig(f, vec![t.clone()], t)
        }
        "mod" if n == 2 && all(is_num) => {
            let t = if args.iter().all(is_int) {
                if args.contains(&T::Int8) {
                    T::Int8
                } else if args.iter().all(|a| *a == T::Int2) {
                    T::Int2
                } else {
                    T::Int4
                }
            } else {
                T::Numeric(None)
            };
            sig(LibFn::Mod, vec![t.clone(); 2], t)
        }
        "div" if n == 2 && all(is_num) => {
            let t = if args.iter().all(is_int) {
                T::Int8
            } else {
                T::Numeric(None)
            };
            sig(LibFn::DivTrunc, vec![t; 2], T::Numeric(None))
        }
        "power" | "pow" if n == 2 && all(is_num) => {
            let t = if args.iter().any(|a| matches!(a, T::Numeric(_))) {
                T::Numeric(None)
            } else {
                T::Float8
            };
            sig(LibFn::Power, vec![t.clone(); 2], t)
        }
        "sqrt" | "cbrt" | "exp" | "ln" | "log" if n == 1 && all(is_num) => {
            let f = match name {
                "sqrt" => LibFn::Sqrt,
                "cbrt" => LibFn::Cbrt,
                "exp" => LibFn::Exp,
                "ln" => LibFn::Ln,
                _ => LibFn::Log10,
            };
            let t = if name == "cbrt" {
                T::Float8
            } else {
                math_type(&args[0])
            };
            sig(f, vec![t.clone()], t)
        }
        "log10" if n == 1 && all(is_num) => {
            let t = math_type(&args[0]);
            sig(LibFn::Log10, vec![t.clone()], t)
        }
        "log" if n == 2 && all(is_num) => {
            let t = if args.iter().any(|a| matches!(a, T::Numeric(_))) || all(is_int) {
                T::Numeric(None)
            } else {
                T::Float8
            };
            sig(LibFn::LogBase, vec![t.clone(); 2], t)
        }
        _ if n == 1 && all(is_num) && Trig::named(name).is_some() => {
            let f = LibFn::Trig(Trig::named(name).expect("checked"));
            sig(f, vec![T::Float8], T::Float8)
        }
        "atan2" if n == 2 && all(is_num) => sig(LibFn::Atan2, vec![T::Float8; 2], T::Float8),
        "factorial" if n == 1 && all(is_int) => {
            sig(LibFn::Factorial, vec![T::Int8], T::Numeric(None))
        }
        "width_bucket" if n == 4 && args[..3].iter().all(is_num) && is_int(&args[3]) => {
            let t = if args[..3].iter().any(|a| matches!(a, T::Numeric(_))) {
                T::Numeric(None)
            } else {
                T::Float8
            };
            sig(
                LibFn::WidthBucket,
                vec![t.clone(), t.clone(), t, T::Int4],
                T::Int4,
            )
        }
        "num_nulls" | "num_nonnulls" if n >= 1 => {
            let params = args
                .iter()
                .map(|a| if *a == T::Unknown { T::Text } else { a.clone() })
                .collect();
            sig(LibFn::CountNulls(name == "num_nonnulls"), params, T::Int4)
        }
        "scale" if n == 1 && all(is_num) => sig(LibFn::Scale, vec![T::Numeric(None)], T::Int4),
        "pg_size_pretty" if n == 1 && all(is_num) => sig(LibFn::SizePretty, vec![T::Int8], T::Text),
        "pi" if n == 0 => sig(LibFn::Pi, vec![], T::Float8),
        "random" if n == 0 => sig(LibFn::Random, vec![], T::Float8),
        "greatest" | "least" if n >= 1 => {
            let t = args
                .iter()
                .find(|t| **t != T::Unknown)
                .cloned()
                .unwrap_or(T::Text);
            let t = if args.iter().all(|a| a.is_numeric() || *a == T::Unknown) && t.is_numeric() {
                // The widest numeric type among them.
                args.iter().fold(t, |acc, a| widest(&acc, a))
            } else {
                t
            };
            let f = if name == "greatest" {
                LibFn::Greatest
            } else {
                LibFn::Least
            };
            sig(f, vec![t.clone(); n], t)
        }
        "date_trunc"
            if n == 2
                && is_text(&args[0])
                && matches!(
                    args[1],
                    T::Timestamp | T::TimestampTz | T::Date | T::Unknown
                ) =>
        {
            let t = match &args[1] {
                T::TimestampTz => T::TimestampTz,
                T::Date => T::TimestampTz,
                _ => T::Timestamp,
            };
            sig(LibFn::DateTrunc, vec![text, t.clone()], t)
        }
        "->" | "->>" if n == 2 && is_json(&args[0]) && (is_text(&args[1]) || is_int(&args[1])) => {
            let doc = json_type(&args[0]);
            let step = if args[1].is_integer() {
                T::Int4
            } else {
                text.clone()
            };
            let (f, result) = match name {
                "->" => (LibFn::JsonGet, doc.clone()),
                _ => (LibFn::JsonGetText, T::Text),
            };
            sig(f, vec![doc, step], result)
        }
        "@>" | "<@" if n == 2 && all(is_json) && args.iter().any(|t| *t != T::Json) => {
            let f = match name {
                "@>" => LibFn::JsonContains,
                _ => LibFn::JsonContainedIn,
            };
            sig(f, vec![T::Jsonb; 2], T::Bool)
        }
        "||" if n == 2 && all(is_json) && args.contains(&T::Jsonb) => {
            sig(LibFn::JsonConcat, vec![T::Jsonb; 2], T::Jsonb)
        }
        "-" if n == 2 && args[0] == T::Jsonb && args[1].is_integer() => {
            sig(LibFn::JsonDeleteIndex, vec![T::Jsonb, T::Int4], T::Jsonb)
        }
        "-" if n == 2 && args[0] == T::Jsonb && is_text(&args[1]) => {
            sig(LibFn::JsonDeleteKey, vec![T::Jsonb, text], T::Jsonb)
        }
        "?" if n == 2 && is_json(&args[0]) && args[0] != T::Json && is_text(&args[1]) => {
            sig(LibFn::JsonHasKey, vec![T::Jsonb, text], T::Bool)
        }
        "json_typeof" | "jsonb_typeof" if n == 1 && is_json(&args[0]) => {
            sig(LibFn::JsonTypeof, vec![json_type(&args[0])], T::Text)
        }
        "json_array_length" | "jsonb_array_length" if n == 1 && is_json(&args[0]) => {
            sig(LibFn::JsonArrayLength, vec![json_type(&args[0])], T::Int4)
        }
        "json_extract_path"
        | "jsonb_extract_path"
        | "json_extract_path_text"
        | "jsonb_extract_path_text"
            if n >= 1 && is_json(&args[0]) && args[1..].iter().all(is_text) =>
        {
            let doc = json_type(&args[0]);
            let mut params = vec![doc.clone()];
            params.extend(std::iter::repeat_n(text.clone(), n - 1));
            if name.ends_with("_text") {
                sig(LibFn::JsonPathText, params, T::Text)
            } else {
                sig(LibFn::JsonPath, params, doc)
            }
        }
        "age" if (n == 1 || n == 2) && args.iter().all(is_datetime) => {
            let t = if args.contains(&T::TimestampTz) {
                T::TimestampTz
            } else {
                T::Timestamp
            };
            let f = if n == 2 {
                LibFn::Age
            } else {
                LibFn::AgeFromToday
            };
            sig(f, vec![t; n], T::Interval)
        }
        "make_date" if n == 3 && all(is_int) => sig(LibFn::MakeDate, vec![T::Int4; 3], T::Date),
        "make_interval"
            if n <= 7 && args[..n.min(6)].iter().all(is_int) && args.get(6).is_none_or(is_num) =>
        {
            let mut p = vec![T::Int4; n.min(6)];
            if n == 7 {
                p.push(T::Float8);
            }
            sig(LibFn::MakeInterval, p, T::Interval)
        }
        "make_timestamp" if n == 6 && args[..5].iter().all(is_int) && is_num(&args[5]) => {
            let mut p = vec![T::Int4; 5];
            p.push(T::Float8);
            sig(LibFn::MakeTimestamp, p, T::Timestamp)
        }
        "to_timestamp" if n == 1 && is_num(&args[0]) => {
            sig(LibFn::ToTimestamp, vec![T::Float8], T::TimestampTz)
        }
        "to_date" if n == 2 && all(is_text) => sig(LibFn::ToDate, vec![text; 2], T::Date),
        "timezone" if n == 2 && is_text(&args[0]) && args[1] == T::TimestampTz => {
            sig(LibFn::TimeZone, vec![text, T::TimestampTz], T::Timestamp)
        }
        "timezone"
            if n == 2 && is_text(&args[0]) && matches!(args[1], T::Timestamp | T::Unknown) =>
        {
            sig(LibFn::TimeZone, vec![text, T::Timestamp], T::TimestampTz)
        }
        "to_timestamp" if n == 2 && all(is_text) => {
            sig(LibFn::ToTimestampFormat, vec![text; 2], T::TimestampTz)
        }
        "justify_days" | "justify_hours" | "justify_interval"
            if n == 1 && matches!(args[0], T::Interval | T::Unknown) =>
        {
            let f = match name {
                "justify_days" => LibFn::JustifyDays,
                "justify_hours" => LibFn::JustifyHours,
                _ => LibFn::JustifyInterval,
            };
            sig(f, vec![T::Interval], T::Interval)
        }
        "to_char" if n == 2 && is_datetime(&args[0]) && is_text(&args[1]) => {
            let t = match &args[0] {
                T::TimestampTz => T::TimestampTz,
                _ => T::Timestamp,
            };
            sig(LibFn::ToChar, vec![t, text], T::Text)
        }
        "to_char" if n == 2 && args[0].is_numeric() && is_text(&args[1]) => {
            sig(LibFn::ToCharNumber, vec![args[0].clone(), text], T::Text)
        }
        "clock_timestamp" if n == 0 => sig(LibFn::ClockTimestamp, vec![], T::TimestampTz),
        "md5" if n == 1 && (is_text(&args[0]) || args[0] == T::Bytea) => {
            let t = if args[0] == T::Bytea {
                T::Bytea
            } else {
                text.clone()
            };
            sig(LibFn::Md5, vec![t], T::Text)
        }
        "regexp_replace" if (n == 3 || n == 4) && all(is_text) => {
            sig(LibFn::RegexpReplace, vec![text; n], T::Text)
        }
        "translate" if n == 3 && all(is_text) => sig(LibFn::Translate, vec![text; 3], T::Text),
        "overlay"
            if (n == 3 || n == 4)
                && is_text(&args[0])
                && is_text(&args[1])
                && args[2..].iter().all(is_int) =>
        {
            let mut p = vec![text.clone(), text.clone(), T::Int4];
            if n == 4 {
                p.push(T::Int4);
            }
            sig(LibFn::Overlay, p, T::Text)
        }
        "format" if n >= 1 && is_text(&args[0]) => {
            let mut p = vec![text.clone()];
            p.extend(args[1..].iter().map(|t| match t {
                T::Unknown => text.clone(),
                t => t.clone(),
            }));
            sig(LibFn::Format, p, T::Text)
        }
        "quote_ident" if n == 1 && is_text(&args[0]) => sig(LibFn::QuoteIdent, vec![text], T::Text),
        "quote_literal" if n == 1 => {
            let t = match &args[0] {
                T::Unknown => text.clone(),
                t => t.clone(),
            };
            sig(LibFn::QuoteLiteral, vec![t], T::Text)
        }
        "to_hex" if n == 1 && is_int(&args[0]) => match &args[0] {
            T::Int8 => sig(LibFn::ToHex64, vec![T::Int8], T::Text),
            _ => sig(LibFn::ToHex32, vec![T::Int4], T::Text),
        },
        "gen_random_uuid" if n == 0 => sig(LibFn::GenRandomUuid, vec![], T::Uuid),
        "encode" if n == 2 && matches!(args[0], T::Bytea | T::Unknown) && is_text(&args[1]) => {
            sig(LibFn::Encode, vec![T::Bytea, text], T::Text)
        }
        "decode" if n == 2 && all(is_text) => sig(LibFn::Decode, vec![text; 2], T::Bytea),
        "pg_get_serial_sequence" if n == 2 && all(is_text) => {
            sig(LibFn::SerialSequenceName, vec![text; 2], T::Text)
        }
        "similar_to_escape" if (n == 1 || n == 2) && all(is_text) => {
            sig(LibFn::SimilarToEscape, vec![text; n], T::Text)
        }
        "trunc" if n == 2 && is_num(&args[0]) && is_int(&args[1]) => sig(
            LibFn::TruncDigits,
            vec![T::Numeric(None), T::Int4],
            T::Numeric(None),
        ),
        "gcd" | "lcm" if n == 2 && all(is_int) => {
            let t = if args.contains(&T::Int8) {
                T::Int8
            } else {
                T::Int4
            };
            let wide = t == T::Int8;
            let f = if name == "gcd" {
                LibFn::Gcd(wide)
            } else {
                LibFn::Lcm(wide)
            };
            sig(f, vec![t.clone(); 2], t)
        }
        "bit_length" if n == 1 && is_text(&args[0]) => sig(LibFn::BitLength, vec![text], T::Int4),
        "age" | "make_date" | "make_timestamp" | "to_timestamp" | "to_char" | "clock_timestamp"
        | "md5" | "regexp_replace" | "translate" | "format" | "quote_ident" | "quote_literal"
        | "to_hex" | "gen_random_uuid" | "bit_length" | "encode" | "decode" | "gcd" | "lcm" => {
            bad()
        }
        "#>" | "#>>" if n == 2 && is_json(&args[0]) && is_text(&args[1]) => {
            let doc = json_type(&args[0]);
            let (f, result) = match name {
                "#>" => (LibFn::JsonPathArray, doc.clone()),
                _ => (LibFn::JsonPathArrayText, T::Text),
            };
            sig(f, vec![doc, text], result)
        }
        // Their arguments arrive as JSON (see `json_builder`).
        "json_build_object" | "jsonb_build_object" => {
            if !n.is_multiple_of(2) {
                return Err(invalid_argument(
                    "argument list must have even number of elements",
                ));
            }
            let (f, t) = match name {
                "json_build_object" => (LibFn::JsonBuildObject, T::Json),
                _ => (LibFn::JsonbBuildObject, T::Jsonb),
            };
            sig(f, vec![T::Json; n], t)
        }
        "json_build_array" => sig(LibFn::JsonBuildArray, vec![T::Json; n], T::Json),
        "jsonb_build_array" => sig(LibFn::JsonbBuildArray, vec![T::Json; n], T::Jsonb),
        "to_json" if n == 1 => sig(LibFn::ToJson, vec![T::Json], T::Json),
        "to_jsonb" if n == 1 => sig(LibFn::ToJsonb, vec![T::Json], T::Jsonb),
        "#>" | "#>>" | "->" | "->>" | "@>" | "<@" | "?" | "||" | "-" => {
            Err(no_operator(name, args))
        }
        "to_json" | "to_jsonb" => bad(),
        "json_typeof"
        | "jsonb_typeof"
        | "json_array_length"
        | "jsonb_array_length"
        | "json_extract_path"
        | "jsonb_extract_path"
        | "json_extract_path_text"
        | "jsonb_extract_path_text" => bad(),
        "substring" | "substr" | "concat_ws" | "replace" | "btrim" | "trim" | "ltrim" | "rtrim"
        | "strpos" | "position" | "left" | "right" | "lpad" | "rpad" | "repeat" | "reverse"
        | "split_part" | "initcap" | "chr" | "ascii" | "starts_with" | "octet_length" | "ceil"
        | "ceiling" | "floor" | "trunc" | "sign" | "mod" | "power" | "pow" | "sqrt" | "cbrt"
        | "exp" | "ln" | "log" | "pi" | "random" | "greatest" | "least" | "date_trunc"
        | "log10" | "atan2" | "factorial" | "width_bucket" | "num_nulls" | "num_nonnulls"
        | "scale" | "pg_size_pretty" | "make_interval" => bad(),
        _ if Trig::named(name).is_some() => bad(),
        _ => Ok(None),
    }
}

fn widest(a: &DataType, b: &DataType) -> DataType {
    use DataType as T;
    let rank = |t: &DataType| match t {
        T::Int2 => 1,
        T::Int4 => 2,
        T::Int8 => 3,
        T::Numeric(_) => 4,
        T::Float4 => 5,
        T::Float8 => 6,
        _ => 0,
    };
    if rank(b) > rank(a) {
        b.clone()
    } else {
        a.clone()
    }
}

/// PostgreSQL's translation of a SIMILAR TO pattern into a regular
/// expression anchored at both ends: `%` is `.*`, `_` is `.`, `(` opens
/// a non-capturing group, the escape character makes the next one
/// literal, `.`, `^`, `$` and `\\` are literal; bracket expressions and
/// the other regex operators (`|`, `*`, `+`, `?`, `{m,n}`) pass through.
pub fn similar_to_regex(pattern: &str, escape: Option<char>) -> String {
    let mut out = String::from("^(?:");
    let mut chars = pattern.chars();
    let mut in_brackets = false;
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            if let Some(next) = chars.next() {
                out.push_str(&regex_lite::escape(&next.to_string()));
            }
            continue;
        }
        if in_brackets {
            if c == ']' {
                in_brackets = false;
            }
            if c == '\\' {
                out.push('\\');
            }
            out.push(c);
            continue;
        }
        match c {
            '[' => {
                in_brackets = true;
                out.push('[');
            }
            '%' => out.push_str(".*"),
            '_' => out.push('.'),
            '(' => out.push_str("(?:"),
            '.' | '^' | '$' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push_str(")$");
    out
}

fn unknown_encoding(name: &str) -> SqlError {
    SqlError::new(
        code::INVALID_PARAMETER_VALUE,
        format!("unrecognized encoding: \"{name}\""),
    )
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 as PostgreSQL's `encode` writes it: a newline every 76 characters.
fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push('\n');
        }
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (j, &b)| acc | (u32::from(b) << (16 - 8 * j)));
        for j in 0..4 {
            if j <= chunk.len() {
                out.push(BASE64[(n >> (18 - 6 * j) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Base64 input: whitespace ignored, `=` padding only at the end.
fn base64_decode(text: &str) -> Result<Vec<u8>> {
    let bad = |what: String| SqlError::new(code::INVALID_PARAMETER_VALUE, what);
    let mut out = Vec::new();
    let (mut acc, mut bits, mut padding) = (0u32, 0u32, 0usize);
    for c in text.chars().filter(|c| !c.is_ascii_whitespace()) {
        if c == '=' {
            padding += 1;
            continue;
        }
        if padding > 0 {
            return Err(bad("unexpected \"=\" while decoding base64 sequence".into()));
        }
        let Some(v) = BASE64.iter().position(|&b| b as char == c) else {
            return Err(bad(format!(
                "invalid symbol \"{c}\" found while decoding base64 sequence"
            )));
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 6 || padding > 2 {
        return Err(bad("invalid base64 end sequence".into()));
    }
    Ok(out)
}

/// Hex digit pairs; whitespace between pairs is skipped.
fn hex_decode(text: &str) -> Result<Vec<u8>> {
    let digits: Vec<char> = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let value = |c: char| {
        c.to_digit(16).ok_or_else(|| {
            SqlError::new(
                code::INVALID_PARAMETER_VALUE,
                format!("invalid hexadecimal digit: \"{c}\""),
            )
        })
    };
    if !digits.len().is_multiple_of(2) {
        return Err(SqlError::new(
            code::INVALID_PARAMETER_VALUE,
            "invalid hexadecimal data: odd number of digits",
        ));
    }
    digits
        .chunks(2)
        .map(|p| Ok((value(p[0])? * 16 + value(p[1])?) as u8))
        .collect()
}

/// bytea's escape format: `\\` is a backslash, `\nnn` an octal byte.
fn escape_decode(text: &str) -> Result<Vec<u8>> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
        } else if b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else if let Some(oct) = b
            .get(i + 1..i + 4)
            .filter(|o| o[0] <= b'3' && o.iter().all(|c| (b'0'..=b'7').contains(c)))
        {
            out.push(oct.iter().fold(0u8, |acc, c| acc * 8 + (c - b'0')));
            i += 4;
        } else {
            return Err(SqlError::new(
                "22P02",
                "invalid input syntax for type bytea",
            ));
        }
    }
    Ok(out)
}

/// `trunc(numeric, digits)`: toward zero; negative digits zero the tens,
/// hundreds, ...; the result keeps `max(digits, 0)` decimals.
fn trunc_decimal(d: Decimal, digits: i64) -> Result<Decimal> {
    if d.is_special() {
        return Ok(d);
    }
    let digits = digits.clamp(-38, 30);
    if digits >= 0 && d.scale as i64 <= digits {
        return d.round_to(digits as u32);
    }
    let drop = (d.scale as i64 - digits) as u32;
    let Some(p) = 10i128.checked_pow(drop) else {
        return Ok(Decimal::from_i64(0));
    };
    let kept = d.mantissa / p;
    Ok(if digits >= 0 {
        Decimal {
            mantissa: kept,
            scale: digits as u32,
        }
    } else {
        Decimal {
            mantissa: kept * 10i128.pow((-digits) as u32),
            scale: 0,
        }
    })
}

fn text_arg(d: &Datum) -> Result<String> {
    match d {
        Datum::Text(s) => Ok(s.clone()),
        other => Ok(types::format_datum(other, &DataType::Unknown).unwrap_or_default()),
    }
}

fn int_arg(d: &Datum) -> Result<i64> {
    match d {
        Datum::Int(i) => Ok(*i),
        other => Err(SqlError::mismatch(format!(
            "expected an integer, got {}",
            other.kind_name()
        ))),
    }
}

/// `regexp_replace(s, pattern, replacement, flags)`: the first match (all
/// with flag `g`; `i` ignores case), with `\\1`..`\\9` and `\\&` in the
/// replacement standing for groups and the whole match.
fn regexp_replace(s: &str, pattern: &str, replacement: &str, flags: &str) -> Result<String> {
    let mut global = false;
    let mut ignore_case = false;
    for f in flags.chars() {
        match f {
            'g' => global = true,
            'i' => ignore_case = true,
            'c' => ignore_case = false,
            other => {
                return Err(invalid_argument(format!(
                    "invalid regular expression option: \"{other}\""
                )))
            }
        }
    }
    let re = regex_lite::RegexBuilder::new(pattern)
        .case_insensitive(ignore_case)
        .build()
        .map_err(|e| SqlError::new("2201B", format!("invalid regular expression: {e}")))?;
    let mut rep = String::new();
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(d @ '1'..='9') => {
                    rep.push_str("${");
                    rep.push(d);
                    rep.push('}');
                }
                Some('&') => rep.push_str("${0}"),
                Some(other) => rep.push(other),
                None => rep.push('\\'),
            },
            '$' => rep.push_str("$$"),
            c => rep.push(c),
        }
    }
    Ok(if global {
        re.replace_all(s, rep.as_str()).into_owned()
    } else {
        re.replace(s, rep.as_str()).into_owned()
    })
}

fn quote_ident(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

fn quote_literal(s: &str) -> String {
    let body = s.replace('\'', "''");
    if s.contains('\\') {
        format!("E'{}'", body.replace('\\', "\\\\"))
    } else {
        format!("'{body}'")
    }
}

/// `format(template, args...)`: `%s` (text; NULL is empty), `%I` (an
/// identifier, quoted if needed), `%L` (a literal; NULL is `NULL`), `%%`,
/// each optionally with an argument position (`%2$s`).
fn format_template(template: &str, args: &[Datum]) -> Result<String> {
    let mut out = String::new();
    let mut next = 0usize;
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
            spec.push(d);
            chars.next();
        }
        let position = if !spec.is_empty() {
            if chars.next() != Some('$') {
                return Err(invalid_argument("unrecognized format() type specifier"));
            }
            spec.parse::<usize>()
                .ok()
                .filter(|p| *p >= 1)
                .map(|p| p - 1)
        } else {
            None
        };
        let kind = chars
            .next()
            .ok_or_else(|| invalid_argument("unterminated format() type specifier"))?;
        if kind == '%' {
            out.push('%');
            continue;
        }
        let at = position.unwrap_or(next);
        next = at + 1;
        let arg = args
            .get(at)
            .ok_or_else(|| invalid_argument("too few arguments for format()"))?;
        match kind {
            's' if arg.is_null() => {}
            's' => out.push_str(&text_arg(arg)?),
            'I' if arg.is_null() => {
                return Err(SqlError::new(
                    "22004",
                    "null values cannot be formatted as an SQL identifier",
                ))
            }
            'I' => out.push_str(&quote_ident(&text_arg(arg)?)),
            'L' if arg.is_null() => out.push_str("NULL"),
            'L' => out.push_str(&quote_literal(&text_arg(arg)?)),
            other => {
                return Err(invalid_argument(format!(
                    "unrecognized format() type specifier \"{other}\""
                )))
            }
        }
    }
    Ok(out)
}

/// The element of `doc` at `path` (NULL where there is none), as JSON
/// or, with `as_text`, as `->>` gives it.
fn json_at(doc: &str, path: &[json::Step], as_text: bool) -> Result<Datum> {
    let Some(v) = json::get(doc, path).map_err(bad_json)? else {
        return Ok(Datum::Null);
    };
    if !as_text {
        return Ok(Datum::Text(v));
    }
    Ok(match json::as_text(&v).map_err(bad_json)? {
        Some(t) => Datum::Text(t),
        None => Datum::Null,
    })
}

/// A date or timestamp argument, in µs.
fn ts_arg(d: &Datum) -> Result<i64> {
    match d {
        Datum::Timestamp(t) => Ok(*t),
        Datum::Date(days) => types::date_to_timestamp(*days),
        other => Err(SqlError::mismatch(format!(
            "expected a timestamp, got {}",
            other.kind_name()
        ))),
    }
}

fn system_now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn float_arg(d: &Datum) -> Result<f64> {
    match d {
        Datum::Int(i) => Ok(*i as f64),
        Datum::Float(f) => Ok(*f),
        Datum::Decimal(d) => Ok(d.to_f64()),
        other => Err(SqlError::mismatch(format!(
            "expected a number, got {}",
            other.kind_name()
        ))),
    }
}

/// A double result in the argument's kind: NUMERIC arguments get NUMERIC.
fn like_arg(arg: &Datum, v: f64) -> Result<Datum> {
    match arg {
        Datum::Decimal(_) => Ok(Datum::Decimal(Decimal::from_f64(v)?)),
        _ => Ok(Datum::Float(v)),
    }
}

fn bad_json(detail: String) -> SqlError {
    SqlError::new(
        code::INVALID_TEXT_REPRESENTATION,
        "invalid input syntax for type json",
    )
    .with_hint(detail)
}

/// A JSONB deletion that has no meaning for the document (22023).
fn json_delete(msg: String) -> SqlError {
    invalid_argument(msg)
}

fn invalid_argument(msg: impl Into<String>) -> SqlError {
    SqlError::new("22023", msg)
}

fn trim_chars(s: &str, chars: &str, left: bool, right: bool) -> String {
    let set: Vec<char> = chars.chars().collect();
    let mut out = s;
    if left {
        out = out.trim_start_matches(|c| set.contains(&c));
    }
    if right {
        out = out.trim_end_matches(|c| set.contains(&c));
    }
    out.to_string()
}

fn pad(s: &str, len: i64, fill: &str, left: bool) -> String {
    let len = len.max(0) as usize;
    let chars: Vec<char> = s.chars().collect();
    if chars.len() >= len {
        return chars[..len].iter().collect();
    }
    if fill.is_empty() {
        return s.to_string();
    }
    let padding: String = fill.chars().cycle().take(len - chars.len()).collect();
    if left {
        format!("{padding}{s}")
    } else {
        format!("{s}{padding}")
    }
}

/// Runs `f` on evaluated arguments.
pub fn call(f: LibFn, args: &[Datum]) -> Result<Datum> {
    use LibFn as F;
    // Functions that look at NULL arguments themselves.
    match f {
        F::Array(f) => return crate::array::call(f, args),
        F::RegclassChecked => {
            return match (&args[0], &args[1]) {
                (Datum::Null, _) => Ok(Datum::Null),
                (name, Datum::Null) => Err(SqlError::new(
                    code::UNDEFINED_TABLE,
                    format!("relation \"{}\" does not exist", text_arg(name)?),
                )),
                (_, oid) => Ok(oid.clone()),
            }
        }
        F::Concat => {
            let parts: Vec<String> = args
                .iter()
                .filter(|a| !a.is_null())
                .map(text_arg)
                .collect::<Result<_>>()?;
            return Ok(Datum::Text(parts.concat()));
        }
        F::ConcatWs => {
            if args[0].is_null() {
                return Ok(Datum::Null);
            }
            let sep = text_arg(&args[0])?;
            let parts: Vec<String> = args[1..]
                .iter()
                .filter(|a| !a.is_null())
                .map(text_arg)
                .collect::<Result<_>>()?;
            return Ok(Datum::Text(parts.join(&sep)));
        }
        F::Greatest | F::Least => {
            let mut best: Option<&Datum> = None;
            for a in args.iter().filter(|a| !a.is_null()) {
                let better = match best {
                    None => true,
                    Some(b) => {
                        let o = a.sort_cmp(b);
                        if f == F::Greatest {
                            o.is_gt()
                        } else {
                            o.is_lt()
                        }
                    }
                };
                if better {
                    best = Some(a);
                }
            }
            return Ok(best.cloned().unwrap_or(Datum::Null));
        }
        F::CountNulls(count_non_nulls) => {
            let nulls = args.iter().filter(|a| a.is_null()).count();
            let n = if count_non_nulls {
                args.len() - nulls
            } else {
                nulls
            };
            return Ok(Datum::Int(n as i64));
        }
        F::ClockTimestamp => return Ok(Datum::Timestamp(system_now_micros())),
        F::GenRandomUuid => {
            let mut b: [u8; 16] = rand::random();
            b[6] = (b[6] & 0x0f) | 0x40; // version 4
            b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
            return Ok(Datum::Bytes(b.to_vec()));
        }
        F::JsonBuildObject | F::JsonbBuildObject => {
            let mut fields = Vec::with_capacity(args.len() / 2);
            for (i, pair) in args.chunks(2).enumerate() {
                let key = match &pair[0] {
                    Datum::Null => {
                        return Err(SqlError::new(
                            "22004",
                            format!("argument {}: key must not be null", 2 * i + 1),
                        ))
                    }
                    k => json::as_text(&text_arg(k)?)
                        .map_err(bad_json)?
                        .unwrap_or_default(),
                };
                let value = match &pair[1] {
                    Datum::Null => "null".to_string(),
                    v => text_arg(v)?,
                };
                fields.push((key, value));
            }
            let built = json::build_object(&fields, f == F::JsonbBuildObject).map_err(bad_json)?;
            return Ok(Datum::Text(built));
        }
        F::JsonBuildArray | F::JsonbBuildArray => {
            let items: Vec<String> = args
                .iter()
                .map(|a| match a {
                    Datum::Null => Ok("null".to_string()),
                    v => text_arg(v),
                })
                .collect::<Result<_>>()?;
            let built = json::build_array(&items, f == F::JsonbBuildArray).map_err(bad_json)?;
            return Ok(Datum::Text(built));
        }
        F::Format => {
            if args[0].is_null() {
                return Ok(Datum::Null);
            }
            return Ok(Datum::Text(format_template(
                &text_arg(&args[0])?,
                &args[1..],
            )?));
        }
        F::Pi => return Ok(Datum::Float(std::f64::consts::PI)),
        F::Random => return Ok(Datum::Float(rand::random::<f64>())),
        _ => {}
    }
    if args.iter().any(Datum::is_null) {
        return Ok(Datum::Null);
    }
    Ok(match f {
        F::Substring => {
            let s: Vec<char> = text_arg(&args[0])?.chars().collect();
            let from = int_arg(&args[1])?;
            let end = match args.get(2) {
                Some(n) => {
                    let n = int_arg(n)?;
                    if n < 0 {
                        return Err(SqlError::new(
                            "22011",
                            "negative substring length not allowed",
                        ));
                    }
                    from.saturating_add(n)
                }
                None => i64::MAX,
            };
            let lo = (from - 1).clamp(0, s.len() as i64) as usize;
            let hi = (end - 1).clamp(0, s.len() as i64) as usize;
            Datum::Text(s[lo..hi.max(lo)].iter().collect())
        }
        F::Replace => {
            let (s, from, to) = (
                text_arg(&args[0])?,
                text_arg(&args[1])?,
                text_arg(&args[2])?,
            );
            Datum::Text(if from.is_empty() {
                s
            } else {
                s.replace(&from, &to)
            })
        }
        F::BTrim | F::LTrim | F::RTrim => {
            let s = text_arg(&args[0])?;
            let chars = match args.get(1) {
                Some(c) => text_arg(c)?,
                None => " ".into(),
            };
            Datum::Text(trim_chars(&s, &chars, f != F::RTrim, f != F::LTrim))
        }
        F::StrPos => {
            let (s, sub) = (text_arg(&args[0])?, text_arg(&args[1])?);
            Datum::Int(match s.find(&sub) {
                Some(i) => s[..i].chars().count() as i64 + 1,
                None => 0,
            })
        }
        F::Left | F::Right => {
            let s: Vec<char> = text_arg(&args[0])?.chars().collect();
            let n = int_arg(&args[1])?;
            let len = s.len() as i64;
            let take = if n >= 0 { n.min(len) } else { (len + n).max(0) } as usize;
            Datum::Text(if f == F::Left {
                s[..take].iter().collect()
            } else {
                s[s.len() - take..].iter().collect()
            })
        }
        F::LPad | F::RPad => {
            let s = text_arg(&args[0])?;
            let fill = match args.get(2) {
                Some(c) => text_arg(c)?,
                None => " ".into(),
            };
            Datum::Text(pad(&s, int_arg(&args[1])?, &fill, f == F::LPad))
        }
        F::Repeat => {
            let n = int_arg(&args[1])?.max(0) as usize;
            let s = text_arg(&args[0])?;
            if s.len().saturating_mul(n) > 1 << 28 {
                return Err(SqlError::new("54000", "requested length too large"));
            }
            Datum::Text(s.repeat(n))
        }
        F::Reverse => Datum::Text(text_arg(&args[0])?.chars().rev().collect()),
        F::SplitPart => {
            let (s, sep) = (text_arg(&args[0])?, text_arg(&args[1])?);
            let n = int_arg(&args[2])?;
            if n == 0 {
                return Err(invalid_argument("field position must not be zero"));
            }
            let parts: Vec<&str> = if sep.is_empty() {
                vec![s.as_str()]
            } else {
                s.split(sep.as_str()).collect()
            };
            let idx = if n > 0 { n - 1 } else { parts.len() as i64 + n };
            Datum::Text(
                usize::try_from(idx)
                    .ok()
                    .and_then(|i| parts.get(i))
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
            )
        }
        F::InitCap => {
            let mut out = String::new();
            let mut start = true;
            for c in text_arg(&args[0])?.chars() {
                if c.is_alphanumeric() {
                    if start {
                        out.extend(c.to_uppercase());
                    } else {
                        out.extend(c.to_lowercase());
                    }
                    start = false;
                } else {
                    out.push(c);
                    start = true;
                }
            }
            Datum::Text(out)
        }
        F::Chr => {
            let n = int_arg(&args[0])?;
            let c = u32::try_from(n)
                .ok()
                .filter(|n| *n != 0)
                .and_then(char::from_u32)
                .ok_or_else(|| {
                    SqlError::new(
                        "54000",
                        format!("requested character too large for encoding: {n}"),
                    )
                })?;
            Datum::Text(c.to_string())
        }
        F::Ascii => Datum::Int(text_arg(&args[0])?.chars().next().map_or(0, |c| c as i64)),
        F::StartsWith => Datum::Bool(text_arg(&args[0])?.starts_with(text_arg(&args[1])?.as_str())),
        F::OctetLength => Datum::Int(match &args[0] {
            Datum::Bytes(b) => b.len() as i64,
            other => text_arg(other)?.len() as i64,
        }),
        F::Ceil | F::Floor | F::Trunc => match &args[0] {
            Datum::Decimal(d) if !d.is_special() => {
                let whole = d.round_to(0)?;
                let exact = whole == *d;
                let adjust = |w: Decimal, by: i64| w.add(&Decimal::from_i64(by));
                let r = if exact {
                    whole
                } else {
                    // round_to rounds half away from zero; step to the
                    // integer on the requested side.
                    let below = if whole > *d {
                        adjust(whole, -1)?
                    } else {
                        whole
                    };
                    let above = if whole < *d { adjust(whole, 1)? } else { whole };
                    match f {
                        F::Ceil => above,
                        F::Floor => below,
                        _ if d.mantissa < 0 => above,
                        _ => below,
                    }
                };
                Datum::Decimal(r.normalize())
            }
            other => {
                let x = float_arg(other)?;
                let v = match f {
                    F::Ceil => x.ceil(),
                    F::Floor => x.floor(),
                    _ => x.trunc(),
                };
                like_arg(other, v)?
            }
        },
        F::Sign => {
            let x = float_arg(&args[0])?;
            let s = if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            };
            like_arg(&args[0], s)?
        }
        F::Mod => crate::expr::binary(crate::expr::BinOp::Mod, args[0].clone(), args[1].clone())?,
        F::Power => {
            let (a, b) = (float_arg(&args[0])?, float_arg(&args[1])?);
            if a == 0.0 && b < 0.0 {
                return Err(SqlError::new(
                    "2201F",
                    "zero raised to a negative power is undefined",
                ));
            }
            if a < 0.0 && b.fract() != 0.0 {
                return Err(SqlError::new(
                    "2201F",
                    "a negative number raised to a non-integer power yields a complex result",
                ));
            }
            let v = a.powf(b);
            if !v.is_finite() {
                return Err(SqlError::new(
                    code::NUMERIC_VALUE_OUT_OF_RANGE,
                    "value out of range: overflow",
                ));
            }
            match (&args[0], &args[1]) {
                (Datum::Decimal(_), _) | (_, Datum::Decimal(_)) => {
                    Datum::Decimal(Decimal::from_f64(v)?)
                }
                _ => Datum::Float(v),
            }
        }
        F::Sqrt | F::Cbrt | F::Exp | F::Ln | F::Log10 => {
            let x = float_arg(&args[0])?;
            let v = match f {
                F::Sqrt if x < 0.0 => {
                    return Err(SqlError::new(
                        "2201F",
                        "cannot take square root of a negative number",
                    ))
                }
                F::Ln | F::Log10 if x == 0.0 => {
                    return Err(SqlError::new("2201E", "cannot take logarithm of zero"))
                }
                F::Ln | F::Log10 if x < 0.0 => {
                    return Err(SqlError::new(
                        "2201E",
                        "cannot take logarithm of a negative number",
                    ))
                }
                F::Sqrt => x.sqrt(),
                F::Cbrt => x.cbrt(),
                F::Exp => x.exp(),
                F::Ln => x.ln(),
                _ => x.log10(),
            };
            if f == F::Cbrt {
                Datum::Float(v)
            } else {
                like_arg(&args[0], v)?
            }
        }
        F::LogBase => {
            let (b, x) = (float_arg(&args[0])?, float_arg(&args[1])?);
            if b == 0.0 || x == 0.0 {
                return Err(SqlError::new("2201E", "cannot take logarithm of zero"));
            }
            if b < 0.0 || x < 0.0 {
                return Err(SqlError::new(
                    "2201E",
                    "cannot take logarithm of a negative number",
                ));
            }
            if b == 1.0 {
                return Err(SqlError::new(code::DIVISION_BY_ZERO, "division by zero"));
            }
            let v = x.ln() / b.ln();
            // Exact powers come out exact (log(2, 8) is 3, not 2.9999...).
            let v = if (v - v.round()).abs() < 1e-12 && b.powf(v.round()) == x {
                v.round()
            } else {
                v
            };
            let numeric = args.iter().any(|a| matches!(a, Datum::Decimal(_)))
                || args.iter().all(|a| matches!(a, Datum::Int(_)));
            if numeric {
                // As PostgreSQL prints a numeric logarithm: 16 decimals.
                Datum::Decimal(Decimal::from_f64(v)?.round_to(16)?)
            } else {
                Datum::Float(v)
            }
        }
        F::Trig(t) => Datum::Float(t.apply(float_arg(&args[0])?)?),
        F::Atan2 => Datum::Float(float_arg(&args[0])?.atan2(float_arg(&args[1])?)),
        F::Factorial => {
            let n = int_arg(&args[0])?;
            if n < 0 {
                return Err(SqlError::new(
                    code::NUMERIC_VALUE_OUT_OF_RANGE,
                    "factorial of a negative number is undefined",
                ));
            }
            let mut acc: i128 = 1;
            for i in 2..=n as i128 {
                acc = acc.checked_mul(i).ok_or_else(|| {
                    SqlError::new(
                        code::NUMERIC_VALUE_OUT_OF_RANGE,
                        "value out of range: overflow",
                    )
                })?;
            }
            Datum::Decimal(Decimal {
                mantissa: acc,
                scale: 0,
            })
        }
        F::WidthBucket => {
            let (x, low, high) = (
                float_arg(&args[0])?,
                float_arg(&args[1])?,
                float_arg(&args[2])?,
            );
            let count = int_arg(&args[3])?;
            if count <= 0 {
                return Err(SqlError::new("2201G", "count must be greater than zero"));
            }
            if low == high {
                return Err(SqlError::new(
                    "2201G",
                    "lower bound cannot equal upper bound",
                ));
            }
            if x.is_nan() || low.is_nan() || high.is_nan() {
                return Err(SqlError::new(
                    "2201G",
                    "operand, lower bound, and upper bound cannot be NaN",
                ));
            }
            let bucket = if low < high {
                if x < low {
                    0
                } else if x >= high {
                    count + 1
                } else {
                    ((x - low) / (high - low) * count as f64).floor() as i64 + 1
                }
            } else if x > low {
                0
            } else if x <= high {
                count + 1
            } else {
                ((low - x) / (low - high) * count as f64).floor() as i64 + 1
            };
            Datum::Int(bucket.min(count + 1))
        }
        F::SizePretty => Datum::Text(size_pretty(int_arg(&args[0])?)),
        F::Scale => match &args[0] {
            Datum::Decimal(d) if d.scale == types::SPECIAL => Datum::Null,
            Datum::Decimal(d) => Datum::Int(d.scale as i64),
            Datum::Int(_) => Datum::Int(0),
            other => Datum::Int(Decimal::from_f64(float_arg(other)?)?.scale as i64),
        },
        F::JsonGet | F::JsonGetText | F::JsonPath | F::JsonPathText => {
            let doc = text_arg(&args[0])?;
            let keys: Vec<String> = args[1..]
                .iter()
                .filter(|a| !matches!(a, Datum::Int(_)))
                .map(text_arg)
                .collect::<Result<_>>()?;
            let path: Vec<json::Step> = match &args[1..] {
                [Datum::Int(i)] => vec![json::Step::Index(*i)],
                _ => keys.iter().map(|k| json::Step::Key(k)).collect(),
            };
            json_at(&doc, &path, matches!(f, F::JsonGetText | F::JsonPathText))?
        }
        F::JsonContains | F::JsonContainedIn => {
            let (a, b) = (text_arg(&args[0])?, text_arg(&args[1])?);
            let (outer, inner) = if f == F::JsonContains { (a, b) } else { (b, a) };
            Datum::Bool(json::contains(&outer, &inner).map_err(bad_json)?)
        }
        F::JsonConcat => {
            Datum::Text(json::concat(&text_arg(&args[0])?, &text_arg(&args[1])?).map_err(bad_json)?)
        }
        F::JsonDeleteKey => Datum::Text(
            json::delete_key(&text_arg(&args[0])?, &text_arg(&args[1])?).map_err(json_delete)?,
        ),
        F::JsonDeleteIndex => {
            let Datum::Int(at) = args[1] else {
                return Err(SqlError::internal("jsonb - expects an integer"));
            };
            Datum::Text(json::delete_index(&text_arg(&args[0])?, at).map_err(json_delete)?)
        }
        F::JsonHasKey => Datum::Bool(
            json::has_key(&text_arg(&args[0])?, &text_arg(&args[1])?).map_err(bad_json)?,
        ),
        F::JsonTypeof => Datum::Text(
            json::type_of(&text_arg(&args[0])?)
                .map_err(bad_json)?
                .into(),
        ),
        F::JsonArrayLength => {
            let doc = text_arg(&args[0])?;
            match json::array_length(&doc).map_err(bad_json)? {
                Some(n) => Datum::Int(n),
                None => {
                    let what = json::type_of(&doc).map_err(bad_json)?;
                    let what = if what == "object" {
                        "a non-array"
                    } else {
                        "a scalar"
                    };
                    return Err(invalid_argument(format!(
                        "cannot get array length of {what}"
                    )));
                }
            }
        }
        F::Age => Datum::Interval(datefns::age(ts_arg(&args[0])?, ts_arg(&args[1])?)),
        F::AgeFromToday => {
            let today =
                system_now_micros().div_euclid(types::MICROS_PER_DAY) * types::MICROS_PER_DAY;
            Datum::Interval(datefns::age(today, ts_arg(&args[0])?))
        }
        F::MakeInterval => {
            let overflow = || SqlError::new(code::DATETIME_FIELD_OVERFLOW, "interval out of range");
            let int = |i: usize| -> Result<i64> { args.get(i).map_or(Ok(0), int_arg) };
            let (years, months, weeks, days) = (int(0)?, int(1)?, int(2)?, int(3)?);
            let months = years
                .checked_mul(12)
                .and_then(|m| m.checked_add(months))
                .and_then(|m| i32::try_from(m).ok())
                .ok_or_else(overflow)?;
            let days = weeks
                .checked_mul(7)
                .and_then(|d| d.checked_add(days))
                .and_then(|d| i32::try_from(d).ok())
                .ok_or_else(overflow)?;
            let secs = args.get(6).map_or(Ok(0.0), float_arg)?;
            let micros = (int(4)? as f64 * 3_600e6 + int(5)? as f64 * 60e6 + secs * 1e6).round();
            if !micros.is_finite() || micros.abs() >= i64::MAX as f64 {
                return Err(overflow());
            }
            Datum::Interval(types::Interval {
                months,
                days,
                micros: micros as i64,
            })
        }
        F::MakeDate => Datum::Date(datefns::make_date(
            int_arg(&args[0])?,
            int_arg(&args[1])?,
            int_arg(&args[2])?,
        )?),
        F::MakeTimestamp => {
            let date =
                datefns::make_date(int_arg(&args[0])?, int_arg(&args[1])?, int_arg(&args[2])?)?;
            Datum::Timestamp(datefns::make_timestamp(
                date,
                int_arg(&args[3])?,
                int_arg(&args[4])?,
                float_arg(&args[5])?,
            )?)
        }
        F::ToTimestamp => Datum::Timestamp(datefns::from_epoch_seconds(float_arg(&args[0])?)?),
        F::ToDate => {
            let ts = datefns::from_template(&text_arg(&args[0])?, &text_arg(&args[1])?)?;
            Datum::Date(ts.div_euclid(types::MICROS_PER_DAY) as i32)
        }
        F::SerialSequenceName => {
            // Identifiers as SQL reads them: lower-cased unless quoted.
            let ident = |s: &str| match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                Some(q) => q.to_string(),
                None => s.to_lowercase(),
            };
            let table = text_arg(&args[0])?;
            let (schema, name) = match table.rsplit_once('.') {
                Some((s, t)) => (ident(s), ident(t)),
                None => (crate::catalog::PUBLIC_SCHEMA.to_string(), ident(&table)),
            };
            let column = ident(&text_arg(&args[1])?);
            Datum::Text(format!("{schema}.{name}_{column}_seq"))
        }
        F::SimilarToEscape => {
            let escape = match args.get(1) {
                None => Some('\\'),
                Some(e) => {
                    let e = text_arg(e)?;
                    let mut cs = e.chars();
                    match (cs.next(), cs.next()) {
                        (None, _) => None,
                        (Some(c), None) => Some(c),
                        _ => {
                            return Err(SqlError::new("22025", "invalid escape string")
                                .with_hint("Escape string must be empty or one character."))
                        }
                    }
                }
            };
            Datum::Text(similar_to_regex(&text_arg(&args[0])?, escape))
        }
        F::Encode => {
            let Datum::Bytes(b) = &args[0] else {
                return Err(SqlError::internal("encode expects bytea"));
            };
            Datum::Text(match text_arg(&args[1])?.to_ascii_lowercase().as_str() {
                "hex" => b.iter().map(|x| format!("{x:02x}")).collect(),
                "base64" => base64_encode(b),
                "escape" => b
                    .iter()
                    .map(|&x| match x {
                        b'\\' => "\\\\".to_string(),
                        0 | 0x80..=0xff => format!("\\{x:03o}"),
                        x => (x as char).to_string(),
                    })
                    .collect(),
                other => return Err(unknown_encoding(other)),
            })
        }
        F::Decode => {
            let input = text_arg(&args[0])?;
            Datum::Bytes(match text_arg(&args[1])?.to_ascii_lowercase().as_str() {
                "hex" => hex_decode(&input)?,
                "base64" => base64_decode(&input)?,
                "escape" => escape_decode(&input)?,
                other => return Err(unknown_encoding(other)),
            })
        }
        F::TruncDigits => {
            let d = match &args[0] {
                Datum::Decimal(d) => *d,
                Datum::Int(i) => Decimal::from_i64(*i),
                other => return Err(SqlError::internal(format!("trunc of {other:?}"))),
            };
            Datum::Decimal(trunc_decimal(d, int_arg(&args[1])?)?)
        }
        F::Gcd(ret_is_int8) | F::Lcm(ret_is_int8) => {
            let (a, b) = (int_arg(&args[0])?, int_arg(&args[1])?);
            let (mut x, mut y) = (a.unsigned_abs(), b.unsigned_abs());
            while y != 0 {
                (x, y) = (y, x % y);
            }
            let out = if matches!(f, F::Gcd(_)) {
                Some(x)
            } else {
                // lcm(0, 0) is 0.
                match a.unsigned_abs().checked_div(x) {
                    Some(q) => q.checked_mul(b.unsigned_abs()),
                    None => Some(0),
                }
            };
            let limit = if ret_is_int8 {
                i64::MAX as u64
            } else {
                i32::MAX as u64
            };
            match out {
                Some(v) if v <= limit => Datum::Int(v as i64),
                _ => {
                    return Err(SqlError::new(
                        code::NUMERIC_VALUE_OUT_OF_RANGE,
                        if ret_is_int8 {
                            "bigint out of range"
                        } else {
                            "integer out of range"
                        },
                    ))
                }
            }
        }
        F::TimeZone => {
            let zone = text_arg(&args[0])?;
            let utc = [
                "utc",
                "gmt",
                "z",
                "zulu",
                "etc/utc",
                "etc/gmt",
                "universal",
                "+00",
                "+00:00",
                "-00",
                "00:00",
            ];
            if !utc.contains(&zone.trim().to_ascii_lowercase().as_str()) {
                return Err(SqlError::new(
                    code::INVALID_PARAMETER_VALUE,
                    format!("time zone \"{zone}\" not recognized"),
                )
                .with_hint("only UTC is known: the server's clock and every timestamptz are UTC"));
            }
            args[1].clone()
        }
        F::ToTimestampFormat => Datum::Timestamp(datefns::from_template(
            &text_arg(&args[0])?,
            &text_arg(&args[1])?,
        )?),
        F::JustifyDays | F::JustifyHours | F::JustifyInterval => {
            let Datum::Interval(i) = &args[0] else {
                return Err(SqlError::internal("justify expects an interval"));
            };
            Datum::Interval(match f {
                F::JustifyDays => datefns::justify_days(*i),
                F::JustifyHours => datefns::justify_hours(*i),
                _ => datefns::justify_interval(*i),
            })
        }
        F::DivTrunc => {
            let q = crate::expr::binary(crate::expr::BinOp::Div, args[0].clone(), args[1].clone())?;
            match q {
                Datum::Int(i) => Datum::Decimal(types::Decimal::from_i64(i)),
                Datum::Null => Datum::Null,
                other => call(F::Trunc, &[other])?,
            }
        }
        F::ToChar => Datum::Text(datefns::to_char(ts_arg(&args[0])?, &text_arg(&args[1])?)),
        F::ToCharNumber => {
            let value = match &args[0] {
                Datum::Decimal(d) => *d,
                Datum::Int(i) => Decimal::from_i64(*i),
                other => Decimal::from_f64(float_arg(other)?)?,
            };
            Datum::Text(crate::numfmt::to_char(&value, &text_arg(&args[1])?)?)
        }
        F::Md5 => {
            let digest = match &args[0] {
                Datum::Bytes(b) => md5::compute(b),
                other => md5::compute(text_arg(other)?.as_bytes()),
            };
            Datum::Text(format!("{digest:x}"))
        }
        F::ClockTimestamp
        | F::GenRandomUuid
        | F::Format
        | F::JsonBuildObject
        | F::JsonbBuildObject
        | F::JsonBuildArray
        | F::JsonbBuildArray => unreachable!("handled above"),
        F::JsonPathArray | F::JsonPathArrayText => {
            // A NULL step finds nothing, as in PostgreSQL.
            let path = crate::array::parse_elements(&text_arg(&args[1])?)?;
            match path.into_iter().collect::<Option<Vec<String>>>() {
                None => Datum::Null,
                Some(path) => {
                    let steps: Vec<json::Step> = path.iter().map(|k| json::Step::Key(k)).collect();
                    json_at(&text_arg(&args[0])?, &steps, f == F::JsonPathArrayText)?
                }
            }
        }
        F::ToJsonNumber => Datum::Text(json::number(&text_arg(&args[0])?)),
        F::ToJsonBool => Datum::Text(match args[0].truth()? {
            Some(true) => "true".into(),
            _ => "false".into(),
        }),
        F::ToJsonString => Datum::Text(json::string(&text_arg(&args[0])?)),
        F::ToJson => args[0].clone(),
        F::ToJsonb => Datum::Text(json::normalize(&text_arg(&args[0])?).map_err(bad_json)?),
        F::RegexpReplace => {
            let flags = match args.get(3) {
                Some(f) => text_arg(f)?,
                None => String::new(),
            };
            Datum::Text(regexp_replace(
                &text_arg(&args[0])?,
                &text_arg(&args[1])?,
                &text_arg(&args[2])?,
                &flags,
            )?)
        }
        F::Overlay => {
            let s: Vec<char> = text_arg(&args[0])?.chars().collect();
            let what = text_arg(&args[1])?;
            let start = int_arg(&args[2])?;
            let count = match args.get(3) {
                Some(c) => int_arg(c)?,
                None => what.chars().count() as i64,
            };
            if start < 1 || count < 0 {
                return Err(SqlError::new(
                    code::SUBSTRING_ERROR,
                    "negative substring length not allowed",
                ));
            }
            let head = (start - 1).min(s.len() as i64) as usize;
            let tail = (start - 1).saturating_add(count).min(s.len() as i64) as usize;
            let mut out: String = s[..head].iter().collect();
            out.push_str(&what);
            out.extend(&s[tail..]);
            Datum::Text(out)
        }
        F::Translate => {
            let from: Vec<char> = text_arg(&args[1])?.chars().collect();
            let to: Vec<char> = text_arg(&args[2])?.chars().collect();
            let out = text_arg(&args[0])?
                .chars()
                .filter_map(|c| match from.iter().position(|f| *f == c) {
                    Some(i) => to.get(i).copied(),
                    None => Some(c),
                })
                .collect();
            Datum::Text(out)
        }
        F::QuoteIdent => Datum::Text(quote_ident(&text_arg(&args[0])?)),
        F::QuoteLiteral => Datum::Text(quote_literal(&text_arg(&args[0])?)),
        F::ToHex32 => Datum::Text(format!("{:x}", int_arg(&args[0])? as i32)),
        F::ToHex64 => Datum::Text(format!("{:x}", int_arg(&args[0])?)),
        F::BitLength => Datum::Int(text_arg(&args[0])?.len() as i64 * 8),
        F::UuidText => {
            Datum::Text(types::format_datum(&args[0], &DataType::Uuid).unwrap_or_default())
        }
        F::TimestampTzText => {
            Datum::Text(types::format_datum(&args[0], &DataType::TimestampTz).unwrap_or_default())
        }
        F::Array(_) => unreachable!("array functions return above"),
        F::FormatType => {
            match crate::pgcatalog::format_type(int_arg(&args[0])?, int_arg(&args[1])?) {
                Some(name) => Datum::Text(name),
                None => Datum::Text("???".into()),
            }
        }
        F::GetExpr => args[0].clone(),
        F::RegclassChecked => unreachable!("returns above"),
        F::TruncateChars(n) => {
            let s = text_arg(&args[0])?;
            match s.char_indices().nth(n as usize) {
                Some((i, _)) => Datum::Text(s[..i].to_string()),
                None => Datum::Text(s),
            }
        }
        F::ToRegtype => {
            let name = text_arg(&args[0])?;
            let parsed = sqlparser::parser::Parser::new(&sqlparser::dialect::PostgreSqlDialect {})
                .try_with_sql(&name)
                .and_then(|mut p| p.parse_data_type());
            match parsed.ok().and_then(|t| crate::plan::data_type(&t).ok()) {
                Some((ty, false)) => Datum::Int(ty.pg_type().oid() as i64),
                _ => Datum::Null,
            }
        }
        F::ParseIdent => Datum::Array(
            parse_ident(&text_arg(&args[0])?)?
                .into_iter()
                .map(Datum::Text)
                .collect(),
        ),
        F::DateTrunc => {
            let unit = text_arg(&args[0])?.to_ascii_lowercase();
            let micros = match &args[1] {
                Datum::Timestamp(t) => *t,
                Datum::Date(d) => *d as i64 * types::MICROS_PER_DAY,
                other => {
                    return Err(SqlError::mismatch(format!(
                        "date_trunc expects a timestamp, got {}",
                        other.kind_name()
                    )))
                }
            };
            Datum::Timestamp(date_trunc(&unit, micros)?)
        }
        F::Concat | F::ConcatWs | F::Greatest | F::Least | F::Pi | F::Random | F::CountNulls(_) => {
            unreachable!("handled above")
        }
    })
}

/// `date_trunc(unit, ts)` on microseconds since the epoch.
fn date_trunc(unit: &str, micros: i64) -> Result<i64> {
    let day = micros.div_euclid(types::MICROS_PER_DAY);
    let in_day = micros.rem_euclid(types::MICROS_PER_DAY);
    let (y, m, _) = types::civil_from_days(day);
    let at_day = |d: i64| d * types::MICROS_PER_DAY;
    Ok(match unit {
        "microsecond" | "microseconds" => micros,
        "millisecond" | "milliseconds" => micros - micros.rem_euclid(1_000),
        "second" | "seconds" => micros - micros.rem_euclid(1_000_000),
        "minute" | "minutes" => micros - micros.rem_euclid(60_000_000),
        "hour" | "hours" => micros - micros.rem_euclid(3_600_000_000),
        "day" | "days" => micros - in_day,
        "week" | "weeks" => {
            // ISO weeks start on Monday; 1970-01-01 was a Thursday.
            let monday = day - (day + 3).rem_euclid(7);
            at_day(monday)
        }
        "month" | "months" => at_day(types::days_from_civil(y, m, 1)),
        "quarter" => at_day(types::days_from_civil(y, (m - 1) / 3 * 3 + 1, 1)),
        "year" | "years" => at_day(types::days_from_civil(y, 1, 1)),
        "decade" => at_day(types::days_from_civil(y.div_euclid(10) * 10, 1, 1)),
        "century" => at_day(types::days_from_civil(
            (y - 1).div_euclid(100) * 100 + 1,
            1,
            1,
        )),
        "millennium" => at_day(types::days_from_civil(
            (y - 1).div_euclid(1000) * 1000 + 1,
            1,
            1,
        )),
        other => {
            return Err(SqlError::new(
                "22023",
                format!("unit \"{other}\" not recognized for type timestamp"),
            ))
        }
    })
}

/// The parts of a qualified identifier (`a."B c".d`): unquoted parts in
/// lower case, quoted ones as written, as PostgreSQL reads a name.
fn parse_ident(s: &str) -> Result<Vec<String>> {
    crate::sequences::parse_relation_name(s).map_err(|_| {
        SqlError::new(
            code::INVALID_PARAMETER_VALUE,
            format!("string is not a valid identifier: \"{s}\""),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Datum {
        Datum::Text(s.into())
    }

    #[test]
    fn base64_round_trips_and_wraps_lines_as_postgresql_does() {
        let data: Vec<u8> = (0..=255u8).collect();
        let text = base64_encode(&data);
        assert!(text.lines().all(|l| l.len() <= 76));
        assert_eq!(text.lines().next().unwrap().len(), 76);
        assert_eq!(base64_decode(&text).unwrap(), data);
        assert_eq!(base64_encode(b"a"), "YQ==");
        assert_eq!(base64_encode(b"ab"), "YWI=");
        assert_eq!(base64_decode("YW Jj\n").unwrap(), b"abc");
        assert!(base64_decode("YQ=x").is_err());
        assert!(base64_decode("Y").is_err());
        assert!(base64_decode("Y*==").is_err());
    }

    #[test]
    fn string_functions_follow_postgres() {
        let c = |f, a: &[Datum]| call(f, a).unwrap();
        assert_eq!(
            c(
                LibFn::Substring,
                &[t("hello"), Datum::Int(2), Datum::Int(3)]
            ),
            t("ell")
        );
        assert_eq!(
            c(
                LibFn::Substring,
                &[t("hello"), Datum::Int(0), Datum::Int(2)]
            ),
            t("h")
        );
        assert_eq!(c(LibFn::Substring, &[t("hello"), Datum::Int(4)]), t("lo"));
        assert_eq!(
            c(LibFn::Concat, &[t("a"), Datum::Null, Datum::Int(1)]),
            t("a1")
        );
        assert_eq!(
            c(LibFn::ConcatWs, &[t(","), t("a"), Datum::Null, t("b")]),
            t("a,b")
        );
        assert_eq!(c(LibFn::BTrim, &[t("xxaxx"), t("x")]), t("a"));
        assert_eq!(c(LibFn::LTrim, &[t("  a ")]), t("a "));
        assert_eq!(c(LibFn::StrPos, &[t("héllo"), t("l")]), Datum::Int(3));
        assert_eq!(c(LibFn::Left, &[t("abcdef"), Datum::Int(-2)]), t("abcd"));
        assert_eq!(c(LibFn::Right, &[t("abcdef"), Datum::Int(2)]), t("ef"));
        assert_eq!(c(LibFn::LPad, &[t("7"), Datum::Int(3), t("0")]), t("007"));
        assert_eq!(c(LibFn::RPad, &[t("abcd"), Datum::Int(2)]), t("ab"));
        assert_eq!(
            c(LibFn::SplitPart, &[t("a,b,c"), t(","), Datum::Int(-1)]),
            t("c")
        );
        assert_eq!(c(LibFn::InitCap, &[t("hello wORLD")]), t("Hello World"));
        assert_eq!(c(LibFn::Replace, &[t("a-b-c"), t("-"), t("+")]), t("a+b+c"));
        assert_eq!(c(LibFn::Reverse, &[Datum::Null]), Datum::Null);
    }

    #[test]
    fn math_and_dates_follow_postgres() {
        let d = |s: &str| Datum::Decimal(Decimal::parse(s).unwrap());
        let c = |f, a: &[Datum]| call(f, a).unwrap();
        assert_eq!(c(LibFn::Ceil, &[d("1.2")]), d("2"));
        assert_eq!(c(LibFn::Ceil, &[d("-1.5")]), d("-1"));
        assert_eq!(c(LibFn::Floor, &[d("-1.2")]), d("-2"));
        assert_eq!(c(LibFn::Trunc, &[d("-1.7")]), d("-1"));
        assert_eq!(c(LibFn::Floor, &[Datum::Float(1.8)]), Datum::Float(1.0));
        assert_eq!(
            c(
                LibFn::Greatest,
                &[Datum::Int(1), Datum::Null, Datum::Int(3)]
            ),
            Datum::Int(3)
        );
        assert_eq!(
            c(LibFn::Power, &[Datum::Int(2), Datum::Int(10)]),
            Datum::Float(1024.0)
        );
        assert!(call(LibFn::Sqrt, &[Datum::Int(-1)]).is_err());
        assert!(call(LibFn::Ln, &[Datum::Int(0)]).is_err());
        let ts = types::parse_timestamp("2020-05-17 13:14:15.5").unwrap();
        let trunc = |u: &str| c(LibFn::DateTrunc, &[t(u), Datum::Timestamp(ts)]);
        let at = |s: &str| Datum::Timestamp(types::parse_timestamp(s).unwrap());
        assert_eq!(trunc("hour"), at("2020-05-17 13:00:00"));
        assert_eq!(trunc("month"), at("2020-05-01"));
        assert_eq!(trunc("quarter"), at("2020-04-01"));
        assert_eq!(trunc("week"), at("2020-05-11"));
        assert!(call(LibFn::DateTrunc, &[t("fortnight"), Datum::Timestamp(ts)]).is_err());
    }
}
