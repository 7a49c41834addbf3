//! How rows become keys and values in the replicated keyspace.
//!
//! ```text
//! key   = /table <table id: u64> <index id: u64 = 1> <pk datum>...
//! value = (<column id: varint> <tag: u8> <payload>)*     NULL columns omitted
//! ```
//!
//! Key datums use the order-preserving encoding of `tessera_storage`, each
//! preceded by a tag byte (`0x00` is NULL, so NULLs sort first), so the byte
//! order of keys is the SQL order of primary keys and a predicate on a key
//! prefix is a contiguous span. The same encoding serves as a grouping key
//! for GROUP BY and DISTINCT: equal SQL values encode to equal bytes
//! (`1.50` and `1.5` as NUMERIC, `-0.0` and `0.0` as floats).
//!
//! Values carry column ids, not positions, so columns can be added or
//! dropped later without rewriting rows.
//!
//! Secondary index entries live next to the rows, under their own index id
//! (2, 3, ...): `/table <table id> <index id> <indexed datums> [<pk datums>]`
//! with the primary key datums as the value (layout and the UNIQUE case:
//! `exec::index_entry`).

use tessera_common::keys::TABLE_PREFIX;
use tessera_storage::encoding::{self as enc, KeyDecoder};

use crate::error::{Result, SqlError};
use crate::types::{Datum, Decimal, Interval};

/// The index id of the primary index (rows).
pub const PRIMARY_INDEX_ID: u64 = 1;

const TAG_NULL: u8 = 0x00;
const TAG_BOOL: u8 = 0x10;
const TAG_INT: u8 = 0x20;
const TAG_FLOAT: u8 = 0x30;
const TAG_DEC_NEG_INF: u8 = 0x3f;
const TAG_DEC_NEG: u8 = 0x40;
const TAG_DEC_ZERO: u8 = 0x41;
const TAG_DEC_POS: u8 = 0x42;
const TAG_DEC_INF: u8 = 0x43;
const TAG_DEC_NAN: u8 = 0x44;
const TAG_TEXT: u8 = 0x50;
const TAG_BYTES: u8 = 0x60;
const TAG_DATE: u8 = 0x70;
const TAG_TIMESTAMP: u8 = 0x80;
const TAG_TIME: u8 = 0x90;
const TAG_INTERVAL: u8 = 0xa0;
const TAG_ARRAY: u8 = 0xb0;
/// In a key, each array element is preceded by this byte and the array
/// ends with [`ARRAY_END`], so a prefix sorts first (`{1}` < `{1,0}`).
const ARRAY_ELEMENT: u8 = 0x01;
const ARRAY_END: u8 = 0x00;

/// `/table/<id>/<index>`: the prefix of every key of one index.
pub fn index_prefix(table_id: u64, index_id: u64) -> Vec<u8> {
    let mut k = TABLE_PREFIX.to_vec();
    enc::encode_u64(&mut k, table_id);
    enc::encode_u64(&mut k, index_id);
    k
}

/// `/table/<id>`: the prefix of all of a table's data.
pub fn table_prefix(table_id: u64) -> Vec<u8> {
    let mut k = TABLE_PREFIX.to_vec();
    enc::encode_u64(&mut k, table_id);
    k
}

/// Appends one datum in key (order-preserving) form.
pub fn encode_key_datum(buf: &mut Vec<u8>, d: &Datum) {
    match d {
        Datum::Null => buf.push(TAG_NULL),
        Datum::Bool(b) => {
            buf.push(TAG_BOOL);
            enc::encode_bool(buf, *b);
        }
        Datum::Int(i) => {
            buf.push(TAG_INT);
            enc::encode_i64(buf, *i);
        }
        Datum::Float(f) => {
            buf.push(TAG_FLOAT);
            let f = if *f == 0.0 { 0.0 } else { *f };
            enc::encode_f64(buf, f);
        }
        Datum::Decimal(d) if d.is_special() => buf.push(match d.mantissa {
            0 => TAG_DEC_NAN,
            m if m < 0 => TAG_DEC_NEG_INF,
            _ => TAG_DEC_INF,
        }),
        Datum::Decimal(d) => {
            let (neg, exp, digits) = d.sci();
            if digits.is_empty() {
                buf.push(TAG_DEC_ZERO);
            } else if neg {
                buf.push(TAG_DEC_NEG);
                enc::encode_i64_desc(buf, exp);
                enc::encode_bytes_desc(buf, digits.as_bytes());
            } else {
                buf.push(TAG_DEC_POS);
                enc::encode_i64(buf, exp);
                enc::encode_bytes(buf, digits.as_bytes());
            }
        }
        Datum::Text(s) => {
            buf.push(TAG_TEXT);
            enc::encode_str(buf, s);
        }
        Datum::Bytes(b) => {
            buf.push(TAG_BYTES);
            enc::encode_bytes(buf, b);
        }
        Datum::Date(d) => {
            buf.push(TAG_DATE);
            enc::encode_i64(buf, *d as i64);
        }
        Datum::Timestamp(t) => {
            buf.push(TAG_TIMESTAMP);
            enc::encode_i64(buf, *t);
        }
        Datum::Time(t) => {
            buf.push(TAG_TIME);
            enc::encode_i64(buf, *t);
        }
        Datum::Interval(iv) => {
            // The length intervals compare by, as a 128-bit number (high
            // half signed, low half unsigned), so equal intervals such as
            // `1 mon` and `30 days` share a key.
            let span = iv.span();
            buf.push(TAG_INTERVAL);
            enc::encode_i64(buf, (span >> 64) as i64);
            enc::encode_u64(buf, span as u64);
        }
        Datum::Array(items) => {
            buf.push(TAG_ARRAY);
            for d in items {
                buf.push(ARRAY_ELEMENT);
                encode_key_datum(buf, d);
            }
            buf.push(ARRAY_END);
        }
    }
}

fn corrupt(e: impl std::fmt::Display) -> SqlError {
    SqlError::internal(format!("corrupt key: {e}"))
}

/// Reads one datum written by [`encode_key_datum`].
pub fn decode_key_datum(d: &mut KeyDecoder<'_>) -> Result<Datum> {
    let tag = d.raw(1).map_err(corrupt)?[0];
    Ok(match tag {
        TAG_NULL => Datum::Null,
        TAG_BOOL => Datum::Bool(d.bool().map_err(corrupt)?),
        TAG_INT => Datum::Int(d.i64().map_err(corrupt)?),
        TAG_FLOAT => Datum::Float(d.f64().map_err(corrupt)?),
        TAG_DEC_ZERO => Datum::Decimal(Decimal::from_i64(0)),
        TAG_DEC_NAN => Datum::Decimal(Decimal::NAN),
        TAG_DEC_INF => Datum::Decimal(Decimal::INFINITY),
        TAG_DEC_NEG_INF => Datum::Decimal(Decimal::NEG_INFINITY),
        TAG_DEC_POS | TAG_DEC_NEG => {
            let neg = tag == TAG_DEC_NEG;
            let (exp, digits) = if neg {
                (
                    d.i64_desc().map_err(corrupt)?,
                    d.bytes_desc().map_err(corrupt)?,
                )
            } else {
                (d.i64().map_err(corrupt)?, d.bytes().map_err(corrupt)?)
            };
            let digits = String::from_utf8(digits).map_err(corrupt)?;
            let text = format!("{}0.{digits}e{exp}", if neg { "-" } else { "" });
            Datum::Decimal(
                Decimal::parse(&text)
                    .ok_or_else(|| corrupt("decimal"))?
                    .normalize(),
            )
        }
        TAG_TEXT => Datum::Text(d.string().map_err(corrupt)?),
        TAG_BYTES => Datum::Bytes(d.bytes().map_err(corrupt)?),
        TAG_DATE => Datum::Date(d.i64().map_err(corrupt)? as i32),
        TAG_TIMESTAMP => Datum::Timestamp(d.i64().map_err(corrupt)?),
        TAG_TIME => Datum::Time(d.i64().map_err(corrupt)?),
        TAG_INTERVAL => {
            let high = d.i64().map_err(corrupt)? as i128;
            let low = d.u64().map_err(corrupt)? as i128;
            Datum::Interval(
                Interval::from_span(high << 64 | low).ok_or_else(|| corrupt("interval"))?,
            )
        }
        TAG_ARRAY => {
            let mut items = Vec::new();
            loop {
                match d.raw(1).map_err(corrupt)?[0] {
                    ARRAY_END => break,
                    ARRAY_ELEMENT => items.push(decode_key_datum(d)?),
                    other => return Err(corrupt(format!("array element marker {other:#x}"))),
                }
            }
            Datum::Array(items)
        }
        other => return Err(corrupt(format!("unknown datum tag {other:#x}"))),
    })
}

/// The key of the row whose primary key is `pk`.
pub fn row_key(table_id: u64, pk: &[Datum]) -> Vec<u8> {
    let mut k = index_prefix(table_id, PRIMARY_INDEX_ID);
    for d in pk {
        encode_key_datum(&mut k, d);
    }
    k
}

/// The primary key datums of a row key.
pub fn decode_row_key(table_id: u64, key: &[u8], n: usize) -> Result<Vec<Datum>> {
    let prefix = index_prefix(table_id, PRIMARY_INDEX_ID);
    let rest = key
        .strip_prefix(prefix.as_slice())
        .ok_or_else(|| corrupt("row key outside its table"))?;
    let mut d = KeyDecoder::new(rest);
    (0..n).map(|_| decode_key_datum(&mut d)).collect()
}

/// A grouping key: equal SQL values give equal bytes.
pub fn group_key(datums: &[Datum]) -> Vec<u8> {
    let mut k = Vec::new();
    for d in datums {
        encode_key_datum(&mut k, d);
    }
    k
}

/// Renders a key for EXPLAIN: `/Table/104/1/42/'x'`.
pub fn pretty_key(key: &[u8]) -> String {
    let Some(rest) = key.strip_prefix(TABLE_PREFIX) else {
        return tessera_common::keys::pretty(key);
    };
    let mut d = KeyDecoder::new(rest);
    let mut s = String::from("/Table");
    for _ in 0..2 {
        match d.u64() {
            Ok(v) => s.push_str(&format!("/{v}")),
            Err(_) => return s,
        }
    }
    push_pretty_datums(&mut d, &mut s);
    s
}

/// Renders `key` relative to `prefix` (`/1000/'x'` for a row of the index
/// whose prefix is given); `None` if the key is not under the prefix.
pub fn pretty_relative(key: &[u8], prefix: &[u8]) -> Option<String> {
    let rest = key.strip_prefix(prefix)?;
    let mut s = String::new();
    push_pretty_datums(&mut KeyDecoder::new(rest), &mut s);
    if s.is_empty() {
        s.push_str("/Min");
    }
    Some(s)
}

fn push_pretty_datums(d: &mut KeyDecoder<'_>, s: &mut String) {
    while !d.is_empty() {
        let before = d.clone();
        match decode_key_datum(d) {
            Ok(Datum::Text(t)) => s.push_str(&format!("/'{t}'")),
            Ok(Datum::Null) => s.push_str("/NULL"),
            Ok(v) => s.push_str(&format!(
                "/{}",
                crate::types::format_datum(&v, &crate::types::DataType::Unknown)
                    .unwrap_or_default()
            )),
            Err(_) => {
                for b in before.remaining() {
                    s.push_str(&format!("\\x{b:02x}"));
                }
                break;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Values

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn get_varint(buf: &[u8], pos: &mut usize) -> Result<u64> {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = *buf
            .get(*pos)
            .ok_or_else(|| SqlError::internal("corrupt row value: truncated varint"))?;
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
        shift += 7;
        if shift > 63 {
            return Err(SqlError::internal("corrupt row value: varint too long"));
        }
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn take<'a>(buf: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8]> {
    let out = buf
        .get(*pos..pos.saturating_add(n))
        .ok_or_else(|| SqlError::internal("corrupt row value: truncated"))?;
    *pos += n;
    Ok(out)
}

/// Encodes a row: `(column id, datum)` pairs; NULLs are omitted.
pub fn encode_row(cols: &[(u32, &Datum)]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(cols.len() * 8);
    for (id, d) in cols {
        if d.is_null() {
            continue;
        }
        put_varint(&mut buf, *id as u64);
        encode_value_datum(&mut buf, d);
    }
    buf
}

/// Appends one datum in value form: its tag and payload (a NULL, which
/// rows omit, only inside arrays).
fn encode_value_datum(buf: &mut Vec<u8>, d: &Datum) {
    match d {
        Datum::Null => buf.push(TAG_NULL),
        Datum::Bool(b) => {
            buf.push(TAG_BOOL);
            buf.push(*b as u8);
        }
        Datum::Int(i) => {
            buf.push(TAG_INT);
            put_varint(buf, zigzag(*i));
        }
        Datum::Float(f) => {
            buf.push(TAG_FLOAT);
            buf.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Datum::Decimal(d) => {
            buf.push(TAG_DEC_POS);
            buf.extend_from_slice(&d.mantissa.to_le_bytes());
            put_varint(buf, d.scale as u64);
        }
        Datum::Text(s) => {
            buf.push(TAG_TEXT);
            put_varint(buf, s.len() as u64);
            buf.extend_from_slice(s.as_bytes());
        }
        Datum::Bytes(b) => {
            buf.push(TAG_BYTES);
            put_varint(buf, b.len() as u64);
            buf.extend_from_slice(b);
        }
        Datum::Date(d) => {
            buf.push(TAG_DATE);
            put_varint(buf, zigzag(*d as i64));
        }
        Datum::Timestamp(t) => {
            buf.push(TAG_TIMESTAMP);
            put_varint(buf, zigzag(*t));
        }
        Datum::Time(t) => {
            buf.push(TAG_TIME);
            put_varint(buf, zigzag(*t));
        }
        Datum::Interval(iv) => {
            buf.push(TAG_INTERVAL);
            put_varint(buf, zigzag(iv.months as i64));
            put_varint(buf, zigzag(iv.days as i64));
            put_varint(buf, zigzag(iv.micros));
        }
        Datum::Array(items) => {
            buf.push(TAG_ARRAY);
            put_varint(buf, items.len() as u64);
            for d in items {
                encode_value_datum(buf, d);
            }
        }
    }
}

/// Decodes a row value into `(column id, datum)` pairs.
pub fn decode_row(buf: &[u8]) -> Result<Vec<(u32, Datum)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let id = get_varint(buf, &mut pos)? as u32;
        let d = decode_value_datum(buf, &mut pos)?;
        out.push((id, d));
    }
    Ok(out)
}

/// Reads one datum in value form (see [`encode_value_datum`]).
fn decode_value_datum(buf: &[u8], pos: &mut usize) -> Result<Datum> {
    let tag = take(buf, pos, 1)?[0];
    Ok(match tag {
        TAG_NULL => Datum::Null,
        TAG_BOOL => Datum::Bool(take(buf, pos, 1)?[0] != 0),
        TAG_INT => Datum::Int(unzigzag(get_varint(buf, pos)?)),
        TAG_FLOAT => {
            let b: [u8; 8] = take(buf, pos, 8)?.try_into().expect("8 bytes taken");
            Datum::Float(f64::from_bits(u64::from_le_bytes(b)))
        }
        TAG_DEC_POS => {
            let b: [u8; 16] = take(buf, pos, 16)?.try_into().expect("16 bytes taken");
            let scale = get_varint(buf, pos)? as u32;
            Datum::Decimal(Decimal {
                mantissa: i128::from_le_bytes(b),
                scale,
            })
        }
        TAG_TEXT => {
            let n = get_varint(buf, pos)? as usize;
            let b = take(buf, pos, n)?;
            Datum::Text(
                String::from_utf8(b.to_vec())
                    .map_err(|_| SqlError::internal("corrupt row value: bad UTF-8"))?,
            )
        }
        TAG_BYTES => {
            let n = get_varint(buf, pos)? as usize;
            Datum::Bytes(take(buf, pos, n)?.to_vec())
        }
        TAG_DATE => Datum::Date(unzigzag(get_varint(buf, pos)?) as i32),
        TAG_TIMESTAMP => Datum::Timestamp(unzigzag(get_varint(buf, pos)?)),
        TAG_TIME => Datum::Time(unzigzag(get_varint(buf, pos)?)),
        TAG_INTERVAL => {
            let field = |pos: &mut usize| -> Result<i32> {
                i32::try_from(unzigzag(get_varint(buf, pos)?))
                    .map_err(|_| SqlError::internal("corrupt row value: interval field"))
            };
            let months = field(pos)?;
            let days = field(pos)?;
            let micros = unzigzag(get_varint(buf, pos)?);
            Datum::Interval(Interval {
                months,
                days,
                micros,
            })
        }
        TAG_ARRAY => {
            let n = get_varint(buf, pos)? as usize;
            let mut items = Vec::with_capacity(n.min(buf.len()));
            for _ in 0..n {
                items.push(decode_value_datum(buf, pos)?);
            }
            Datum::Array(items)
        }
        other => {
            return Err(SqlError::internal(format!(
                "corrupt row value: unknown tag {other:#x}"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Datum {
        Datum::Decimal(Decimal::parse(s).unwrap())
    }

    #[test]
    fn row_values_round_trip_and_omit_nulls() {
        let vals = [
            Datum::Int(-5),
            Datum::Null,
            Datum::Text("héllo".into()),
            Datum::Float(1.25),
            dec("-12.50"),
            Datum::Bool(true),
            Datum::Bytes(vec![0, 1, 255]),
            Datum::Date(-3),
            Datum::Timestamp(1_700_000_000_000_000),
            Datum::Time(45_296_500_000),
            Datum::Interval(Interval {
                months: -14,
                days: 3,
                micros: -7_200_000_000,
            }),
        ];
        let cols: Vec<(u32, &Datum)> = vals
            .iter()
            .enumerate()
            .map(|(i, d)| (i as u32 + 1, d))
            .collect();
        let buf = encode_row(&cols);
        let back = decode_row(&buf).unwrap();
        assert_eq!(back.len(), vals.len() - 1);
        for (id, d) in back {
            assert_eq!(d, vals[id as usize - 1]);
        }
        assert!(decode_row(&[1, TAG_TEXT, 9, b'a']).is_err());
        assert!(decode_row(&[1, 0x99]).is_err());
    }

    #[test]
    fn key_datums_sort_like_sql_values() {
        let ordered = [
            vec![Datum::Null],
            vec![Datum::Int(i64::MIN)],
            vec![Datum::Int(-1)],
            vec![Datum::Int(0)],
            vec![Datum::Int(7)],
        ];
        let keys: Vec<_> = ordered.iter().map(|d| row_key(104, d)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        let decs = [
            "-100", "-2.5", "-2.25", "0", "0.001", "0.5", "1", "1.5", "10", "123.45",
        ];
        let keys: Vec<_> = decs.iter().map(|s| row_key(1, &[dec(s)])).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{decs:?}");
        assert_eq!(row_key(1, &[dec("1.50")]), row_key(1, &[dec("1.5")]));
        let texts = ["", "a", "a\0", "ab", "b"];
        let keys: Vec<_> = texts
            .iter()
            .map(|s| row_key(1, &[Datum::Text(s.to_string())]))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        // Composite keys compare column by column.
        assert!(
            row_key(1, &[Datum::Int(1), Datum::Text("z".into())])
                < row_key(1, &[Datum::Int(2), Datum::Text("a".into())])
        );
        let times = [0, 1, 3_600_000_000, 86_400_000_000];
        let keys: Vec<_> = times
            .iter()
            .map(|t| row_key(1, &[Datum::Time(*t)]))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }

    fn interval(s: &str) -> Datum {
        Datum::Interval(crate::types::parse_interval(s, None).unwrap())
    }

    #[test]
    fn interval_keys_sort_and_group_by_length() {
        let ordered = [
            "-178000000 years",
            "-1 year",
            "-1 day",
            "-00:00:01",
            "00:00:00",
            "1 us",
            "23:59:59.999999",
            "1 day",
            "1 day 00:00:01",
            "1 mon 1 us",
            "1 year",
            "178000000 years",
        ];
        let keys: Vec<_> = ordered.iter().map(|s| row_key(1, &[interval(s)])).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{ordered:?}");
        // Equal lengths are one key (PostgreSQL: '1 mon' = '30 days').
        assert_eq!(
            row_key(1, &[interval("1 mon")]),
            row_key(1, &[interval("30 days")])
        );
        assert_eq!(
            group_key(&[interval("1 day")]),
            group_key(&[interval("24:00:00")])
        );
        // A key decodes to the interval of that length, days and months
        // carried up.
        let k = row_key(1, &[interval("1 mon 2 days 25:00:00")]);
        assert_eq!(
            decode_row_key(1, &k, 1).unwrap(),
            vec![interval("1 mon 3 days 01:00:00")]
        );
        assert_eq!(pretty_key(&k), "/Table/1/1/1 mon 3 days 01:00:00");
    }

    #[test]
    fn row_keys_decode_back_to_their_datums() {
        let pk = vec![
            Datum::Int(42),
            Datum::Text("x".into()),
            dec("-3.5"),
            Datum::Bool(false),
        ];
        let k = row_key(104, &pk);
        let back = decode_row_key(104, &k, 4).unwrap();
        assert_eq!(back, pk);
        assert!(decode_row_key(105, &k, 4).is_err());
        assert_eq!(
            pretty_key(&row_key(104, &[Datum::Int(42)])),
            "/Table/104/1/42"
        );
    }
}
