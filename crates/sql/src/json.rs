//! JSON text: validation (the `json` type keeps its input as given) and
//! normalization (the `jsonb` type stores what PostgreSQL would print).
//!
//! JSONB's printed form: `", "` between elements, `": "` after keys, object
//! keys ordered shorter first and then bytewise, a repeated key keeping its
//! last value, numbers as NUMERIC prints them (`1e2` is `100`), strings
//! re-escaped (`\"`, `\\`, `\n`, ... and `\u00XX` for other control
//! characters; everything else as UTF-8).
//!
//! Access and tests on documents, for the operators and functions:
//! [`get`] (`->`, `->>` with [`as_text`], `json_extract_path`),
//! [`contains`] (`@>`, `<@`), [`has_key`] (`?`), [`type_of`],
//! [`concat`] (`||`), [`delete_key`] and [`delete_index`] (`-`),
//! [`array_length`]; and
//! building documents: [`string`], [`number`], [`build_object`],
//! [`build_array`].

use std::fmt::Write as _;

use crate::types::Decimal;

/// A parsed JSON value; numbers keep their text.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

/// Nesting deeper than this is refused (the parser recurses).
const MAX_DEPTH: usize = 1000;

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

type PResult<T> = std::result::Result<T, String>;

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.at) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn expect(&mut self, word: &str) -> PResult<()> {
        if self.s[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(())
        } else {
            Err(format!("Token at byte {} is invalid.", self.at))
        }
    }

    fn value(&mut self, depth: usize) -> PResult<Value> {
        if depth > MAX_DEPTH {
            return Err("JSON nested too deeply".into());
        }
        self.ws();
        match self.peek() {
            None => Err("The input string ended unexpectedly.".into()),
            Some(b'n') => self.expect("null").map(|_| Value::Null),
            Some(b't') => self.expect("true").map(|_| Value::Bool(true)),
            Some(b'f') => self.expect("false").map(|_| Value::Bool(false)),
            Some(b'"') => self.string().map(Value::String),
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.at += 1;
                    return Ok(Value::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b']') => {
                            self.at += 1;
                            return Ok(Value::Array(items));
                        }
                        _ => return Err(format!("Expected \",\" or \"]\" at byte {}.", self.at)),
                    }
                }
            }
            Some(b'{') => {
                self.at += 1;
                let mut fields = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.at += 1;
                    return Ok(Value::Object(fields));
                }
                loop {
                    self.ws();
                    if self.peek() != Some(b'"') {
                        return Err(format!("Expected string at byte {}.", self.at));
                    }
                    let k = self.string()?;
                    self.ws();
                    if self.peek() != Some(b':') {
                        return Err(format!("Expected \":\" at byte {}.", self.at));
                    }
                    self.at += 1;
                    let v = self.value(depth + 1)?;
                    fields.push((k, v));
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b'}') => {
                            self.at += 1;
                            return Ok(Value::Object(fields));
                        }
                        _ => return Err(format!("Expected \",\" or \"}}\" at byte {}.", self.at)),
                    }
                }
            }
            Some(b'-' | b'0'..=b'9') => self.number().map(Value::Number),
            Some(_) => Err(format!("Token at byte {} is invalid.", self.at)),
        }
    }

    fn number(&mut self) -> PResult<String> {
        let start = self.at;
        let digits = |p: &mut Self| {
            let from = p.at;
            while let Some(b'0'..=b'9') = p.peek() {
                p.at += 1;
            }
            p.at > from
        };
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let int_start = self.at;
        if !digits(self) {
            return Err(format!("Token at byte {start} is invalid."));
        }
        if self.s[int_start] == b'0' && self.at - int_start > 1 {
            return Err(format!("Token at byte {start} is invalid."));
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if !digits(self) {
                return Err(format!("Token at byte {start} is invalid."));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if !digits(self) {
                return Err(format!("Token at byte {start} is invalid."));
            }
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.at]).into_owned())
    }

    fn hex4(&mut self) -> PResult<u32> {
        let h = self
            .s
            .get(self.at..self.at + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| "\"\\u\" must be followed by four hexadecimal digits.".to_string())?;
        self.at += 4;
        Ok(h)
    }

    fn string(&mut self) -> PResult<String> {
        self.at += 1; // opening quote
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err("The input string ended unexpectedly.".into());
            };
            self.at += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err("The input string ended unexpectedly.".into());
                    };
                    self.at += 1;
                    match e {
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'/' => out.push(b'/'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let mut c = self.hex4()?;
                            if (0xD800..0xDC00).contains(&c) {
                                self.expect("\\u").map_err(|_| {
                                    "Unicode low surrogate must follow a high surrogate."
                                })?;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(
                                        "Unicode low surrogate must follow a high surrogate."
                                            .into(),
                                    );
                                }
                                c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
                            }
                            if c == 0 {
                                return Err("\\u0000 cannot be converted to text.".into());
                            }
                            let ch = char::from_u32(c)
                                .ok_or_else(|| "invalid Unicode escape value".to_string())?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => {
                            return Err(format!("Escape sequence \"\\{}\" is invalid.", e as char))
                        }
                    }
                }
                0..=0x1f => return Err(format!("Character with value 0x{b:02x} must be escaped.")),
                _ => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| "invalid UTF-8 in string".into())
    }
}

fn parse(s: &str) -> PResult<Value> {
    let mut p = Parser {
        s: s.as_bytes(),
        at: 0,
    };
    let v = p.value(0)?;
    p.ws();
    if p.at != p.s.len() {
        return Err(format!(
            "Expected end of input, but found more at byte {}.",
            p.at
        ));
    }
    Ok(v)
}

/// Checks that `s` is one JSON value; the error says where it is not.
pub fn validate(s: &str) -> std::result::Result<(), String> {
    parse(s).map(|_| ())
}

/// The JSONB form of the JSON text `s`.
pub fn normalize(s: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(s.len());
    write_value(&mut out, &parse(s)?);
    Ok(out)
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match Decimal::parse(n) {
            Some(d) => out.push_str(&d.to_string()),
            None => out.push_str(n),
        },
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, x);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            // Last one wins for a repeated key; then PostgreSQL's key order.
            let mut kept: Vec<&(String, Value)> = Vec::with_capacity(fields.len());
            for f in fields.iter().rev() {
                if !kept.iter().any(|k| k.0 == f.0) {
                    kept.push(f);
                }
            }
            kept.sort_by(|a, b| {
                a.0.len()
                    .cmp(&b.0.len())
                    .then_with(|| a.0.as_bytes().cmp(b.0.as_bytes()))
            });
            out.push('{');
            for (i, (k, x)) in kept.iter().map(|f| (&f.0, &f.1)).enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, k);
                out.push_str(": ");
                write_value(out, x);
            }
            out.push('}');
        }
    }
}

/// One step into a document: an object's key, or an array's position
/// (negative: from the end).
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    Key(&'a str),
    Index(i64),
}

fn step<'v>(v: &'v Value, s: Step) -> Option<&'v Value> {
    match (v, s) {
        (Value::Object(fields), Step::Key(k)) => fields
            .iter()
            .rev()
            .find(|(name, _)| name == k)
            .map(|f| &f.1),
        (Value::Array(items), Step::Index(i)) => {
            let at = if i < 0 { items.len() as i64 + i } else { i };
            usize::try_from(at).ok().and_then(|at| items.get(at))
        }
        // A path step on an array given as text: a position if it is one.
        (Value::Array(_), Step::Key(k)) => {
            k.trim().parse().ok().and_then(|i| step(v, Step::Index(i)))
        }
        _ => None,
    }
}

fn to_jsonb(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

/// The element of the document `doc` reached by `path` (in JSONB form),
/// or `None` where the path leads nowhere.
pub fn get(doc: &str, path: &[Step]) -> std::result::Result<Option<String>, String> {
    let root = parse(doc)?;
    let mut at = &root;
    for s in path {
        match step(at, *s) {
            Some(next) => at = next,
            None => return Ok(None),
        }
    }
    Ok(Some(to_jsonb(at)))
}

/// The text form of a JSON value, as `->>` gives it: a string without its
/// quotes, `null` as SQL NULL, anything else as its JSON text.
pub fn as_text(value: &str) -> std::result::Result<Option<String>, String> {
    Ok(match parse(value)? {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(to_jsonb(&other)),
    })
}

/// `jsonb_typeof`: object, array, string, number, boolean or null.
pub fn type_of(doc: &str) -> std::result::Result<&'static str, String> {
    Ok(match parse(doc)? {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    })
}

/// The number of elements of a JSON array; `None` for anything else.
pub fn array_length(doc: &str) -> std::result::Result<Option<i64>, String> {
    Ok(match parse(doc)? {
        Value::Array(items) => Some(items.len() as i64),
        _ => None,
    })
}

/// `?`: whether `key` is a key of the object `doc`, or a string element
/// of the array `doc` (or the string `doc` itself).
pub fn has_key(doc: &str, key: &str) -> std::result::Result<bool, String> {
    Ok(match parse(doc)? {
        Value::Object(fields) => fields.iter().any(|(k, _)| k == key),
        Value::Array(items) => items
            .iter()
            .any(|x| matches!(x, Value::String(s) if s == key)),
        Value::String(s) => s == key,
        _ => false,
    })
}

fn same_scalar(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (Decimal::parse(x), Decimal::parse(y)) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        _ => a == b,
    }
}

fn contains_value(a: &Value, b: &Value, top: bool) -> bool {
    match (a, b) {
        (Value::Object(af), Value::Object(bf)) => bf.iter().all(|(k, bv)| {
            af.iter()
                .rev()
                .find(|(ak, _)| ak == k)
                .is_some_and(|(_, av)| contains_value(av, bv, false))
        }),
        (Value::Array(ai), Value::Array(bi)) => bi.iter().all(|bv| {
            ai.iter().any(|av| match bv {
                Value::Array(_) | Value::Object(_) => contains_value(av, bv, false),
                _ => same_scalar(av, bv),
            })
        }),
        // A top-level array contains a scalar that is one of its elements.
        (Value::Array(ai), scalar) if top && !matches!(scalar, Value::Object(_)) => {
            ai.iter().any(|av| same_scalar(av, scalar))
        }
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => false,
        (x, y) => same_scalar(x, y),
    }
}

/// `a || b` on JSONB: two objects merge (the right one's keys win), two
/// arrays concatenate, and anything else becomes an array of both sides'
/// elements (a non-array side counts as one element).
pub fn concat(a: &str, b: &str) -> std::result::Result<String, String> {
    let out = match (parse(a)?, parse(b)?) {
        (Value::Object(mut x), Value::Object(y)) => {
            x.extend(y);
            Value::Object(x)
        }
        (x, y) => {
            let elements = |v: Value| match v {
                Value::Array(items) => items,
                other => vec![other],
            };
            let mut items = elements(x);
            items.extend(elements(y));
            Value::Array(items)
        }
    };
    Ok(to_jsonb(&out))
}

/// `doc - key` on JSONB: the object without `key`, or the array without
/// its string elements equal to `key`.
pub fn delete_key(doc: &str, key: &str) -> std::result::Result<String, String> {
    Ok(to_jsonb(&match parse(doc)? {
        Value::Object(fields) => {
            Value::Object(fields.into_iter().filter(|(k, _)| k != key).collect())
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .filter(|x| !matches!(x, Value::String(s) if s == key))
                .collect(),
        ),
        _ => return Err("cannot delete from scalar".into()),
    }))
}

/// `doc - n` on JSONB: the array without its element at position `n`
/// (negative: from the end); past either end, the array as it is.
pub fn delete_index(doc: &str, at: i64) -> std::result::Result<String, String> {
    match parse(doc)? {
        Value::Array(mut items) => {
            let at = if at < 0 { items.len() as i64 + at } else { at };
            if let Ok(at) = usize::try_from(at) {
                if at < items.len() {
                    items.remove(at);
                }
            }
            Ok(to_jsonb(&Value::Array(items)))
        }
        Value::Object(_) => Err("cannot delete from object using integer index".into()),
        _ => Err("cannot delete from scalar".into()),
    }
}

/// `a @> b`: whether the document `a` contains the document `b`, as
/// PostgreSQL defines JSONB containment.
pub fn contains(a: &str, b: &str) -> std::result::Result<bool, String> {
    Ok(contains_value(&parse(a)?, &parse(b)?, true))
}

/// A JSON string holding `s`.
pub fn string(s: &str) -> String {
    let mut out = String::new();
    write_string(&mut out, s);
    out
}

/// A JSON number for a number's text; JSON has no NaN or infinity, which
/// become strings.
pub fn number(text: &str) -> String {
    if parse(text).is_ok_and(|v| matches!(v, Value::Number(_))) {
        text.to_string()
    } else {
        string(text)
    }
}

/// An object of (key, JSON value) pairs: in JSONB form when `jsonb`, else
/// as `json_build_object` prints it (`{"a" : 1}`).
pub fn build_object(
    fields: &[(String, String)],
    jsonb: bool,
) -> std::result::Result<String, String> {
    let sep = if jsonb { ": " } else { " : " };
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}{sep}{v}", string(k)))
        .collect();
    let text = format!("{{{}}}", body.join(", "));
    if jsonb {
        normalize(&text)
    } else {
        Ok(text)
    }
}

/// An array of JSON values, in JSONB form when `jsonb`.
pub fn build_array(items: &[String], jsonb: bool) -> std::result::Result<String, String> {
    let text = format!("[{}]", items.join(", "));
    if jsonb {
        normalize(&text)
    } else {
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonb_prints_as_postgresql_does() {
        for (input, want) in [
            (
                r#"{"b":1,"a":[1,2,{"x":null}]}"#,
                r#"{"a": [1, 2, {"x": null}], "b": 1}"#,
            ),
            (
                r#"{"aa":1,"b":2,"a":3,"a":4}"#,
                r#"{"a": 4, "b": 2, "aa": 1}"#,
            ),
            (" [ true , false ] ", "[true, false]"),
            ("1e2", "100"),
            ("-0.50", "-0.50"),
            (r#""a\u00e9\n\"""#, r#""aé\n\"""#),
            (r#""\ud83d\ude00""#, "\"😀\""),
            ("{}", "{}"),
        ] {
            assert_eq!(normalize(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn concatenation_and_deletion_follow_postgresql() {
        for (a, b, want) in [
            (
                r#"{"a":1,"b":2}"#,
                r#"{"b":3,"c":4}"#,
                r#"{"a": 1, "b": 3, "c": 4}"#,
            ),
            ("[1,2]", "[3]", "[1, 2, 3]"),
            ("[1]", r#"{"a":1}"#, r#"[1, {"a": 1}]"#),
            (r#"{"a":1}"#, "2", r#"[{"a": 1}, 2]"#),
            ("1", "[2]", "[1, 2]"),
            ("1", "2", "[1, 2]"),
        ] {
            assert_eq!(concat(a, b).unwrap(), want, "{a} || {b}");
        }
        assert_eq!(delete_key(r#"{"a":1,"b":2}"#, "a").unwrap(), r#"{"b": 2}"#);
        assert_eq!(delete_key(r#"["a","b",1]"#, "a").unwrap(), r#"["b", 1]"#);
        assert!(delete_key("1", "a").is_err());
        assert_eq!(delete_index("[1,2,3]", -1).unwrap(), "[1, 2]");
        assert_eq!(delete_index("[1,2,3]", 0).unwrap(), "[2, 3]");
        assert_eq!(delete_index("[1,2,3]", 7).unwrap(), "[1, 2, 3]");
        assert!(delete_index(r#"{"a":1}"#, 0).is_err());
    }

    #[test]
    fn invalid_json_is_refused() {
        for bad in [
            "", "{", "[1,]", "{\"a\"}", "01", "1.", "tru", "\"a", "[1] x", "{1: 2}", "\"\t\"",
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
        assert!(validate(r#" {"a": [1, 2.5e-3, "x", null, true]} "#).is_ok());
    }

    #[test]
    fn paths_reach_keys_and_positions() {
        let doc = r#"{"a": {"b": [10, "x", null]}, "n": 1.50}"#;
        let get1 = |p: &[Step]| get(doc, p).unwrap();
        assert_eq!(
            get1(&[Step::Key("a"), Step::Key("b"), Step::Index(1)]),
            Some("\"x\"".into())
        );
        assert_eq!(
            get1(&[Step::Key("a"), Step::Key("b"), Step::Index(-3)]),
            Some("10".into())
        );
        assert_eq!(
            get1(&[Step::Key("a"), Step::Key("b"), Step::Key("0")]),
            Some("10".into())
        );
        assert_eq!(
            get1(&[Step::Key("a"), Step::Key("b"), Step::Index(3)]),
            None
        );
        assert_eq!(get1(&[Step::Key("zz")]), None);
        assert_eq!(get1(&[Step::Index(0)]), None);
        assert_eq!(as_text("\"x\"").unwrap(), Some("x".into()));
        assert_eq!(as_text("null").unwrap(), None);
        assert_eq!(as_text("[1, 2]").unwrap(), Some("[1, 2]".into()));
        assert_eq!(type_of(doc).unwrap(), "object");
        assert_eq!(array_length("[1, [2, 3]]").unwrap(), Some(2));
        assert_eq!(array_length("{}").unwrap(), None);
        assert!(has_key(doc, "n").unwrap());
        assert!(has_key(r#"["n", 1]"#, "n").unwrap());
        assert!(!has_key(r#"[1]"#, "1").unwrap());
    }

    #[test]
    fn containment_follows_postgresql() {
        for (a, b, want) in [
            (r#"{"a": 1, "b": [1, 2, 3]}"#, r#"{"b": [3, 1]}"#, true),
            (r#"{"a": 1, "b": [1, 2, 3]}"#, r#"{"a": 1.0}"#, true),
            (r#"{"a": 1}"#, r#"{"a": 1, "c": 2}"#, false),
            (r#"{"a": {"x": 1, "y": 2}}"#, r#"{"a": {"y": 2}}"#, true),
            ("[1, 2, [3, 4]]", "[[3]]", true),
            ("[1, 2, [3, 4]]", "[3]", false),
            ("[1, 2]", "1", true),
            ("[[1, 2]]", "1", false),
            ("\"a\"", "\"a\"", true),
            ("{}", "[]", false),
            ("[]", "{}", false),
        ] {
            assert_eq!(contains(a, b).unwrap(), want, "{a} @> {b}");
        }
    }

    #[test]
    fn numbers_and_built_documents() {
        assert_eq!(number("1.50"), "1.50");
        assert_eq!(number("NaN"), "\"NaN\"");
        let fields = [
            ("b".to_string(), "1".to_string()),
            ("a".to_string(), string("x")),
        ];
        assert_eq!(
            build_object(&fields, false).unwrap(),
            r#"{"b" : 1, "a" : "x"}"#
        );
        assert_eq!(
            build_object(&fields, true).unwrap(),
            r#"{"a": "x", "b": 1}"#
        );
        assert_eq!(
            build_array(&["1".into(), "null".into()], true).unwrap(),
            "[1, null]"
        );
    }
}
