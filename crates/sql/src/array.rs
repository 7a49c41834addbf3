//! One-dimensional arrays (`int[]`, `text[]`, ...): PostgreSQL's text form
//! (`{1,2,NULL}`, `{"a b","x\"y"}`), its binary wire form, the order
//! arrays compare in, and the array functions and operators.
//!
//! An array is a [`Datum::Array`] of its elements (each of the element
//! type's canonical datum kind, or NULL); its type is
//! `DataType::Array(element type)`. Arrays are one-dimensional with a
//! lower bound of 1: a multidimensional literal is refused with 0A000
//! rather than flattened.

use std::cmp::Ordering;

use crate::error::{code, Result, SqlError};
use crate::expr::BinOp;
use crate::types::{format_datum, parse_datum, DataType, Datum};

fn malformed(s: &str, detail: &str) -> SqlError {
    SqlError::new(
        code::INVALID_TEXT_REPRESENTATION,
        format!("malformed array literal: \"{s}\""),
    )
    .with_detail(detail.to_string())
}

/// The elements of an array literal's text (`None` for an unquoted NULL).
pub fn parse_elements(s: &str) -> Result<Vec<Option<String>>> {
    let t = s.trim();
    if t.starts_with('[') {
        return Err(SqlError::new(
            code::FEATURE_NOT_SUPPORTED,
            "array bounds other than [1:n] are not supported",
        ));
    }
    let Some(inner) = t.strip_prefix('{') else {
        return Err(malformed(
            s,
            "Array value must start with \"{\" or dimension information.",
        ));
    };
    let mut chars = inner.chars().peekable();
    let mut out = Vec::new();
    let skip_ws = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
    };
    skip_ws(&mut chars);
    if chars.peek() == Some(&'}') {
        chars.next();
    } else {
        loop {
            skip_ws(&mut chars);
            match chars.peek() {
                Some('{') => {
                    return Err(SqlError::new(
                        code::FEATURE_NOT_SUPPORTED,
                        "multidimensional arrays are not supported",
                    ))
                }
                Some('"') => {
                    chars.next();
                    let mut item = String::new();
                    loop {
                        match chars.next() {
                            Some('"') => break,
                            Some('\\') => match chars.next() {
                                Some(c) => item.push(c),
                                None => return Err(malformed(s, "Unexpected end of input.")),
                            },
                            Some(c) => item.push(c),
                            None => return Err(malformed(s, "Unexpected end of input.")),
                        }
                    }
                    out.push(Some(item));
                    skip_ws(&mut chars);
                }
                _ => {
                    let mut item = String::new();
                    let mut escaped = false;
                    loop {
                        match chars.peek().copied() {
                            Some(',') | Some('}') => break,
                            Some('"') | Some('{') => {
                                return Err(malformed(s, "Unexpected array element."))
                            }
                            Some('\\') => {
                                chars.next();
                                match chars.next() {
                                    Some(c) => item.push(c),
                                    None => return Err(malformed(s, "Unexpected end of input.")),
                                }
                                escaped = true;
                            }
                            Some(c) => {
                                item.push(c);
                                chars.next();
                            }
                            None => return Err(malformed(s, "Unexpected end of input.")),
                        }
                    }
                    let item = item.trim_end().to_string();
                    if item.is_empty() {
                        return Err(malformed(s, "Unexpected \",\" character."));
                    }
                    if !escaped && item.eq_ignore_ascii_case("null") {
                        out.push(None);
                    } else {
                        out.push(Some(item));
                    }
                }
            }
            match chars.next() {
                Some(',') => {}
                Some('}') => break,
                _ => return Err(malformed(s, "Unexpected end of input.")),
            }
        }
    }
    if chars.any(|c| !c.is_whitespace()) {
        return Err(malformed(s, "Junk after closing right brace."));
    }
    Ok(out)
}

/// Parses an array literal of element type `elem`.
pub fn parse(s: &str, elem: &DataType) -> Result<Datum> {
    let items = parse_elements(s)?
        .into_iter()
        .map(|item| match item {
            None => Ok(Datum::Null),
            Some(text) => parse_datum(&text, elem),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Datum::Array(items))
}

/// The text form: `{1,2,NULL}`; elements that are empty, hold special
/// characters or spell NULL are double-quoted.
pub fn format(items: &[Datum], elem: &DataType) -> String {
    let mut s = String::from("{");
    for (i, d) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        match format_datum(d, elem) {
            None => s.push_str("NULL"),
            Some(text) => push_element(&mut s, &text),
        }
    }
    s.push('}');
    s
}

fn push_element(s: &mut String, text: &str) {
    let quote = text.is_empty()
        || text.eq_ignore_ascii_case("null")
        || text
            .chars()
            .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_ascii_whitespace());
    if !quote {
        s.push_str(text);
        return;
    }
    s.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
}

/// The binary wire form: dimensions, a has-NULLs flag, the element type's
/// oid, `(length, lower bound)` per dimension, then each element as a
/// length (-1 for NULL) and its binary form (`element` encodes one).
pub fn to_binary(
    items: &[Datum],
    elem_oid: u32,
    mut element: impl FnMut(&Datum, &mut Vec<u8>) -> Result<()>,
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(20 + items.len() * 8);
    let ndim: i32 = if items.is_empty() { 0 } else { 1 };
    out.extend_from_slice(&ndim.to_be_bytes());
    out.extend_from_slice(&(items.iter().any(Datum::is_null) as i32).to_be_bytes());
    out.extend_from_slice(&elem_oid.to_be_bytes());
    if ndim == 1 {
        out.extend_from_slice(&(items.len() as i32).to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
    }
    let mut buf = Vec::new();
    for d in items {
        if d.is_null() {
            out.extend_from_slice(&(-1i32).to_be_bytes());
            continue;
        }
        buf.clear();
        element(d, &mut buf)?;
        out.extend_from_slice(&(buf.len() as i32).to_be_bytes());
        out.extend_from_slice(&buf);
    }
    Ok(out)
}

/// Decodes the binary wire form; `element` decodes one element's bytes.
pub fn from_binary(bytes: &[u8], mut element: impl FnMut(&[u8]) -> Result<Datum>) -> Result<Datum> {
    let bad = || {
        SqlError::new(
            code::INVALID_BINARY_REPRESENTATION,
            "invalid array binary format",
        )
    };
    let mut pos = 0usize;
    let int = |pos: &mut usize| -> Result<i32> {
        let b = bytes.get(*pos..*pos + 4).ok_or_else(bad)?;
        *pos += 4;
        Ok(i32::from_be_bytes(b.try_into().expect("4 bytes")))
    };
    let ndim = int(&mut pos)?;
    let _has_nulls = int(&mut pos)?;
    let _elem_oid = int(&mut pos)?;
    let len = match ndim {
        0 => 0,
        1 => {
            let n = int(&mut pos)?;
            let _lower = int(&mut pos)?;
            usize::try_from(n).map_err(|_| bad())?
        }
        _ => {
            return Err(SqlError::new(
                code::FEATURE_NOT_SUPPORTED,
                "multidimensional arrays are not supported",
            ))
        }
    };
    let mut items = Vec::with_capacity(len.min(1 << 16));
    for _ in 0..len {
        let n = int(&mut pos)?;
        if n < 0 {
            items.push(Datum::Null);
            continue;
        }
        let b = bytes.get(pos..pos + n as usize).ok_or_else(bad)?;
        pos += n as usize;
        items.push(element(b)?);
    }
    if pos != bytes.len() {
        return Err(bad());
    }
    Ok(Datum::Array(items))
}

/// The order of arrays: element by element (a NULL element after every
/// value, NULLs equal to each other), then the shorter first.
pub fn compare(a: &[Datum], b: &[Datum]) -> Option<Ordering> {
    for (x, y) in a.iter().zip(b) {
        let o = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => x.sql_cmp(y)?,
        };
        if o != Ordering::Equal {
            return Some(o);
        }
    }
    Some(a.len().cmp(&b.len()))
}

/// Whether two values are equal as array elements (NULL equals nothing).
fn elements_equal(a: &Datum, b: &Datum) -> bool {
    a.sql_cmp(b) == Some(Ordering::Equal)
}

/// `a @> b`: every element of `b` is in `a`.
pub fn contains(a: &[Datum], b: &[Datum]) -> bool {
    b.iter().all(|y| a.iter().any(|x| elements_equal(x, y)))
}

/// `a && b`: some element is in both.
pub fn overlaps(a: &[Datum], b: &[Datum]) -> bool {
    a.iter().any(|x| b.iter().any(|y| elements_equal(x, y)))
}

/// `array_position(a, v)`: the 1-based position of the first element
/// not distinct from `v`.
pub fn position(a: &[Datum], v: &Datum) -> Option<usize> {
    a.iter()
        .position(|x| (x.is_null() && v.is_null()) || elements_equal(x, v))
        .map(|i| i + 1)
}

/// `a[i]` (1-based; NULL outside the array).
pub fn subscript(a: &[Datum], i: i64) -> Datum {
    usize::try_from(i)
        .ok()
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| a.get(i))
        .cloned()
        .unwrap_or(Datum::Null)
}

/// `a[lo:hi]` (either bound may be omitted; clipped to the array).
pub fn slice(a: &[Datum], lo: Option<i64>, hi: Option<i64>) -> Datum {
    let lo = lo.unwrap_or(1).max(1);
    let hi = hi.unwrap_or(a.len() as i64).min(a.len() as i64);
    if lo > hi {
        return Datum::Array(Vec::new());
    }
    Datum::Array(a[(lo - 1) as usize..hi as usize].to_vec())
}

/// An array function or operator (see [`resolve`] for the names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrayFn {
    /// `ARRAY[a, b, ...]`.
    Build,
    /// `a[i]`.
    Subscript,
    /// `a[lo:hi]`, `a[lo:]`, `a[:hi]`: which bounds are given.
    Slice {
        lower: bool,
        upper: bool,
    },
    /// `x op ANY (a)` / `x op ALL (a)`.
    Quantified {
        op: BinOp,
        all: bool,
    },
    /// `@>`, `<@`, `&&`.
    Contains,
    ContainedIn,
    Overlaps,
    /// `array_length(a, dim)`, `array_upper`, `array_lower`,
    /// `cardinality`, `array_ndims`, `array_dims`.
    Length,
    Upper,
    Lower,
    Cardinality,
    Ndims,
    Dims,
    /// `array_append(a, x)`, `array_prepend(x, a)`, `array_cat(a, b)`
    /// (also `||`).
    Append,
    Prepend,
    Cat,
    /// `array_remove(a, x)`, `array_replace(a, from, to)`.
    Remove,
    Replace,
    /// `array_position(a, x [, start])`, `array_positions(a, x)`.
    Position,
    Positions,
    /// `array_to_string(a, delimiter [, null_text])`.
    ToString,
    /// `string_to_array(s, delimiter [, null_text])`.
    FromString,
    /// The elements as JSON (`to_json`, `array_to_json`): `[1,"a",null]`.
    ToJson(ElemKind),
    /// The elements' text forms, for a cast of the array to text.
    AsText(ElemKind),
}

/// What an array's elements are, for the conversions whose result
/// depends on more than the datum (a UUID is held as bytes, a
/// TIMESTAMPTZ as a timestamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElemKind {
    Plain,
    /// JSON or JSONB: the text is the JSON.
    Json,
    TimestampTz,
    Uuid,
}

impl ElemKind {
    pub fn of(elem: &DataType) -> ElemKind {
        match elem {
            DataType::Json | DataType::Jsonb => ElemKind::Json,
            DataType::TimestampTz => ElemKind::TimestampTz,
            DataType::Uuid => ElemKind::Uuid,
            _ => ElemKind::Plain,
        }
    }

    fn text(self, d: &Datum) -> Option<String> {
        let ty = match self {
            ElemKind::TimestampTz => DataType::TimestampTz,
            ElemKind::Uuid => DataType::Uuid,
            _ => DataType::Unknown,
        };
        format_datum(d, &ty)
    }
}

/// An array function for a name and argument types: the function, the
/// types untyped arguments take, and the result type. `None` if `name`
/// is not an array function or the arguments are not arrays where it
/// needs them.
pub fn resolve(name: &str, args: &[DataType]) -> Option<(ArrayFn, Vec<DataType>, DataType)> {
    use DataType as T;
    let n = args.len();
    let array_at = |i: usize| match args.get(i) {
        Some(t @ T::Array(_)) => Some(t.clone()),
        _ => None,
    };
    let elem_of = |t: &DataType| t.element().cloned().unwrap_or(T::Unknown);
    let int = |i: usize| {
        args.get(i)
            .is_some_and(|t| t.is_integer() || *t == T::Unknown)
    };
    let text = |i: usize| {
        args.get(i)
            .is_some_and(|t| t.is_string() || *t == T::Unknown)
    };
    Some(match name {
        "@>" | "<@" | "&&" if n == 2 => {
            let a = array_at(0).or_else(|| array_at(1))?;
            if !args.iter().all(|t| matches!(t, T::Array(_) | T::Unknown)) {
                return None;
            }
            let f = match name {
                "@>" => ArrayFn::Contains,
                "<@" => ArrayFn::ContainedIn,
                _ => ArrayFn::Overlaps,
            };
            (f, vec![a.clone(), a], T::Bool)
        }
        "array_length" | "array_upper" | "array_lower" if n == 2 && int(1) => {
            let f = match name {
                "array_length" => ArrayFn::Length,
                "array_upper" => ArrayFn::Upper,
                _ => ArrayFn::Lower,
            };
            (f, vec![array_at(0)?, T::Int4], T::Int4)
        }
        "cardinality" | "array_ndims" if n == 1 => {
            let f = if name == "cardinality" {
                ArrayFn::Cardinality
            } else {
                ArrayFn::Ndims
            };
            (f, vec![array_at(0)?], T::Int4)
        }
        "array_dims" if n == 1 => (ArrayFn::Dims, vec![array_at(0)?], T::Text),
        "array_append" | "array_remove" | "array_position" | "array_positions"
            if n == 2 || (n == 3 && name == "array_position" && int(2)) =>
        {
            let a = match array_at(0) {
                Some(a) => a,
                None if args[0] == T::Unknown && args[1] != T::Unknown => {
                    T::Array(Box::new(args[1].clone()))
                }
                None => return None,
            };
            let mut params = vec![a.clone(), elem_of(&a)];
            let (f, result) = match name {
                "array_append" => (ArrayFn::Append, a),
                "array_remove" => (ArrayFn::Remove, a),
                "array_position" => (ArrayFn::Position, T::Int4),
                _ => (ArrayFn::Positions, T::Array(Box::new(T::Int4))),
            };
            if n == 3 {
                params.push(T::Int4);
            }
            (f, params, result)
        }
        "array_prepend" if n == 2 => {
            let a = array_at(1).unwrap_or_else(|| T::Array(Box::new(args[0].clone())));
            (ArrayFn::Prepend, vec![elem_of(&a), a.clone()], a)
        }
        "array_cat" if n == 2 => {
            let a = array_at(0).or_else(|| array_at(1))?;
            (ArrayFn::Cat, vec![a.clone(), a.clone()], a)
        }
        "array_replace" if n == 3 => {
            let a = array_at(0)?;
            let e = elem_of(&a);
            (ArrayFn::Replace, vec![a.clone(), e.clone(), e], a)
        }
        "array_to_string" if (n == 2 || n == 3) && text(1) && (n == 2 || text(2)) => {
            let mut params = vec![array_at(0)?, T::Text];
            if n == 3 {
                params.push(T::Text);
            }
            (ArrayFn::ToString, params, T::Text)
        }
        "string_to_array" if (n == 2 || n == 3) && text(0) && text(1) && (n == 2 || text(2)) => (
            ArrayFn::FromString,
            vec![T::Text; n],
            T::Array(Box::new(T::Text)),
        ),
        _ => return None,
    })
}

fn items(d: &Datum) -> Result<&[Datum]> {
    match d {
        Datum::Array(v) => Ok(v),
        other => Err(SqlError::internal(format!("not an array: {other:?}"))),
    }
}

fn int_arg(d: &Datum) -> Result<i64> {
    match d {
        Datum::Int(i) => Ok(*i),
        other => Err(SqlError::internal(format!("not an integer: {other:?}"))),
    }
}

fn text_arg(d: &Datum) -> Result<String> {
    match d {
        Datum::Text(s) => Ok(s.clone()),
        other => Ok(format_datum(other, &DataType::Unknown).unwrap_or_default()),
    }
}

/// Runs an array function on evaluated arguments, with PostgreSQL's NULL
/// rules (`array_append(NULL, 1)` is `{1}`; most others give NULL for a
/// NULL array).
pub fn call(f: ArrayFn, args: &[Datum]) -> Result<Datum> {
    use ArrayFn as F;
    let null = |i: usize| args.get(i).is_none_or(Datum::is_null);
    Ok(match f {
        F::Build => Datum::Array(args.to_vec()),
        F::Append | F::Prepend | F::Cat => {
            let (a, b) = (&args[0], &args[1]);
            let mut out = Vec::new();
            let mut push = |d: &Datum, whole: bool| -> Result<()> {
                match d {
                    Datum::Null if whole => {}
                    Datum::Array(v) if whole => out.extend(v.iter().cloned()),
                    d => out.push(d.clone()),
                }
                Ok(())
            };
            match f {
                F::Append => {
                    push(a, true)?;
                    push(b, false)?;
                }
                F::Prepend => {
                    push(a, false)?;
                    push(b, true)?;
                }
                _ => {
                    if a.is_null() && b.is_null() {
                        return Ok(Datum::Null);
                    }
                    push(a, true)?;
                    push(b, true)?;
                }
            }
            Datum::Array(out)
        }
        F::Remove if !null(0) => Datum::Array(
            items(&args[0])?
                .iter()
                .filter(|x| position(std::slice::from_ref(x), &args[1]).is_none())
                .cloned()
                .collect(),
        ),
        F::Replace if !null(0) => Datum::Array(
            items(&args[0])?
                .iter()
                .map(|x| {
                    if position(std::slice::from_ref(x), &args[1]).is_some() {
                        args[2].clone()
                    } else {
                        x.clone()
                    }
                })
                .collect(),
        ),
        F::Position if !null(0) => {
            let a = items(&args[0])?;
            let start = match args.get(2) {
                Some(Datum::Null) => return Ok(Datum::Null),
                Some(d) => int_arg(d)?.max(1) as usize,
                None => 1,
            };
            let from = (start - 1).min(a.len());
            match position(&a[from..], &args[1]) {
                Some(p) => Datum::Int((p + from) as i64),
                None => Datum::Null,
            }
        }
        F::Positions if !null(0) => {
            let a = items(&args[0])?;
            Datum::Array(
                (0..a.len())
                    .filter(|&i| position(&a[i..=i], &args[1]).is_some())
                    .map(|i| Datum::Int(i as i64 + 1))
                    .collect(),
            )
        }
        F::Quantified { op, all } => {
            if null(1) {
                return Ok(Datum::Null);
            }
            crate::expr::quantified_values(op, all, &args[0], items(&args[1])?.iter())?
        }
        F::ToString if !null(0) && !null(1) => {
            let delim = text_arg(&args[1])?;
            let null_text = args
                .get(2)
                .filter(|d| !d.is_null())
                .map(text_arg)
                .transpose()?;
            let parts: Vec<String> = items(&args[0])?
                .iter()
                .filter_map(|d| match d {
                    Datum::Null => null_text.clone(),
                    d => Some(text_arg(d).unwrap_or_default()),
                })
                .collect();
            Datum::Text(parts.join(&delim))
        }
        F::FromString if !null(0) => {
            let s = text_arg(&args[0])?;
            let null_text = args
                .get(2)
                .filter(|d| !d.is_null())
                .map(text_arg)
                .transpose()?;
            let pieces: Vec<String> = if null(1) {
                s.chars().map(String::from).collect()
            } else {
                let delim = text_arg(&args[1])?;
                if s.is_empty() {
                    Vec::new()
                } else if delim.is_empty() {
                    vec![s]
                } else {
                    s.split(delim.as_str()).map(String::from).collect()
                }
            };
            Datum::Array(
                pieces
                    .into_iter()
                    .map(|p| {
                        if null_text.as_deref() == Some(p.as_str()) {
                            Datum::Null
                        } else {
                            Datum::Text(p)
                        }
                    })
                    .collect(),
            )
        }
        _ if args.iter().any(Datum::is_null) => Datum::Null,
        F::ToJson(kind) => {
            let parts: Vec<String> = items(&args[0])?
                .iter()
                .map(|d| match (d, kind) {
                    (Datum::Null, _) => "null".to_string(),
                    (Datum::Bool(b), _) => b.to_string(),
                    (Datum::Int(_) | Datum::Float(_) | Datum::Decimal(_), _) => {
                        crate::json::number(&kind.text(d).unwrap_or_default())
                    }
                    (Datum::Text(t), ElemKind::Json) => t.clone(),
                    (d, _) => crate::json::string(&kind.text(d).unwrap_or_default()),
                })
                .collect();
            Datum::Text(format!("[{}]", parts.join(",")))
        }
        F::AsText(kind) => Datum::Array(
            items(&args[0])?
                .iter()
                .map(|d| kind.text(d).map_or(Datum::Null, Datum::Text))
                .collect(),
        ),
        F::Subscript => subscript(items(&args[0])?, int_arg(&args[1])?),
        F::Slice { lower, upper } => {
            let lo = lower.then(|| int_arg(&args[1])).transpose()?;
            let hi = upper
                .then(|| int_arg(&args[if lower { 2 } else { 1 }]))
                .transpose()?;
            slice(items(&args[0])?, lo, hi)
        }
        F::Contains => Datum::Bool(contains(items(&args[0])?, items(&args[1])?)),
        F::ContainedIn => Datum::Bool(contains(items(&args[1])?, items(&args[0])?)),
        F::Overlaps => Datum::Bool(overlaps(items(&args[0])?, items(&args[1])?)),
        F::Cardinality => Datum::Int(items(&args[0])?.len() as i64),
        F::Length | F::Upper | F::Lower | F::Ndims | F::Dims => {
            let len = items(&args[0])?.len() as i64;
            let dim = if f == F::Ndims || f == F::Dims {
                1
            } else {
                int_arg(&args[1])?
            };
            if len == 0 || dim != 1 {
                return Ok(Datum::Null);
            }
            match f {
                F::Lower | F::Ndims => Datum::Int(1),
                F::Dims => Datum::Text(format!("[1:{len}]")),
                _ => Datum::Int(len),
            }
        }
        F::Remove | F::Replace | F::Position | F::Positions | F::ToString | F::FromString => {
            Datum::Null
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(s: &str) -> Vec<Datum> {
        match parse(s, &DataType::Int4).unwrap() {
            Datum::Array(v) => v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn text_form_round_trips_with_quoting_and_nulls() {
        assert_eq!(
            ints("{1, 2 ,NULL}"),
            [Datum::Int(1), Datum::Int(2), Datum::Null]
        );
        assert_eq!(ints(" { } "), []);
        let texts = parse(r#"{a,"b c","x\"y",NULL,"NULL",""}"#, &DataType::Text).unwrap();
        let Datum::Array(items) = &texts else {
            panic!()
        };
        assert_eq!(items[3], Datum::Null);
        assert_eq!(items[4], Datum::Text("NULL".into()));
        assert_eq!(
            format(items, &DataType::Text),
            r#"{a,"b c","x\"y",NULL,"NULL",""}"#
        );
        for bad in ["1,2", "{1,2", "{1,,2}", "{1}x", "{\"a}"] {
            let e = parse(bad, &DataType::Int4).unwrap_err();
            assert_eq!(e.code, code::INVALID_TEXT_REPRESENTATION, "{bad}");
        }
        assert_eq!(
            parse("{{1},{2}}", &DataType::Int4).unwrap_err().code,
            code::FEATURE_NOT_SUPPORTED
        );
        assert_eq!(
            parse("{1,x}", &DataType::Int4).unwrap_err().code,
            code::INVALID_TEXT_REPRESENTATION
        );
    }

    #[test]
    fn arrays_compare_element_by_element_then_by_length() {
        let c = |a: &str, b: &str| compare(&ints(a), &ints(b)).unwrap();
        assert_eq!(c("{1,2}", "{1,3}"), Ordering::Less);
        assert_eq!(c("{1,2}", "{1,2,0}"), Ordering::Less);
        assert_eq!(c("{2}", "{1,9}"), Ordering::Greater);
        assert_eq!(c("{1,NULL}", "{1,5}"), Ordering::Greater);
        assert_eq!(c("{NULL}", "{NULL}"), Ordering::Equal);
        assert!(contains(&ints("{1,2,3}"), &ints("{3,1}")));
        assert!(!contains(&ints("{1,2,3}"), &ints("{4}")));
        assert!(overlaps(&ints("{1,2}"), &ints("{2,7}")));
        assert_eq!(
            slice(&ints("{1,2,3,4}"), Some(2), None),
            Datum::Array(ints("{2,3,4}"))
        );
        assert_eq!(subscript(&ints("{1,2}"), 3), Datum::Null);
    }

    #[test]
    fn binary_form_round_trips() {
        let items = ints("{7,NULL,-1}");
        let bytes = to_binary(&items, 23, |d, out| {
            let Datum::Int(i) = d else { unreachable!() };
            out.extend_from_slice(&(*i as i32).to_be_bytes());
            Ok(())
        })
        .unwrap();
        let back = from_binary(&bytes, |b| {
            Ok(Datum::Int(i32::from_be_bytes(b.try_into().unwrap()) as i64))
        })
        .unwrap();
        assert_eq!(back, Datum::Array(items));
        assert!(from_binary(&bytes[..bytes.len() - 1], |_| Ok(Datum::Null)).is_err());
    }
}
