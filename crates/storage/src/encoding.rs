//! Order-preserving ("memcomparable") key encoding: for every supported type,
//! comparing encoded bytes lexicographically gives the same answer as
//! comparing the values. A composite key (a tuple) is the concatenation of
//! its encoded columns; since every encoding is prefix-free, tuples compare
//! column by column, like SQL rows.
//!
//! | type  | ascending encoding                                           |
//! |-------|--------------------------------------------------------------|
//! | u64   | 8 bytes big-endian                                           |
//! | i64   | 8 bytes big-endian with the sign bit flipped                 |
//! | f64   | IEEE bits; negatives all bits flipped, else sign bit flipped (orders as [`f64::total_cmp`]) |
//! | bool  | one byte, 0 or 1                                             |
//! | bytes | each `0x00` escaped as `0x00 0xFF`, terminated by `0x00 0x01` |
//! | str   | its UTF-8 bytes, encoded as bytes                            |
//!
//! Descending variants (`*_desc`) are the bitwise complement of the ascending
//! encoding: they sort in reverse and are still prefix-free.
//!
//! Encoders append to a `Vec<u8>` (free functions, or the by-value builder
//! [`KeyEncoder`]); [`KeyDecoder`] reads the columns back in order and
//! returns [`DecodeError`] on malformed input, never panics.

/// Escape byte inside encoded bytes; followed by [`ESCAPED_00`] or [`TERMINATOR`].
const ESCAPE: u8 = 0x00;
/// `0x00 0xFF` stands for a `0x00` byte of the value.
const ESCAPED_00: u8 = 0xFF;
/// `0x00 0x01` ends an encoded byte string.
const TERMINATOR: u8 = 0x01;

const SIGN_BIT: u64 = 1 << 63;

/// Malformed encoded key: what was expected and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad encoded key at byte {offset}: {reason}")]
pub struct DecodeError {
    /// Byte offset in the decoder's input where decoding failed.
    pub offset: usize,
    /// What was wrong.
    pub reason: &'static str,
}

impl From<DecodeError> for crate::Error {
    fn from(e: DecodeError) -> Self {
        crate::Error::Corruption(e.to_string())
    }
}

// ---------------------------------------------------------------------------
// Free encoding functions.

/// Appends `v` as 8 big-endian bytes.
pub fn encode_u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_be_bytes());
}

/// Appends `v` so that larger values sort first.
pub fn encode_u64_desc(buf: &mut Vec<u8>, v: u64) {
    encode_u64(buf, !v);
}

/// Appends `v` as 8 big-endian bytes with the sign bit flipped.
pub fn encode_i64(buf: &mut Vec<u8>, v: i64) {
    encode_u64(buf, (v as u64) ^ SIGN_BIT);
}

/// Appends `v` so that larger values sort first.
pub fn encode_i64_desc(buf: &mut Vec<u8>, v: i64) {
    encode_u64(buf, !((v as u64) ^ SIGN_BIT));
}

fn f64_key(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits & SIGN_BIT != 0 {
        !bits
    } else {
        bits ^ SIGN_BIT
    }
}

fn f64_from_key(k: u64) -> f64 {
    let bits = if k & SIGN_BIT != 0 { k ^ SIGN_BIT } else { !k };
    f64::from_bits(bits)
}

/// Appends `v` ordered as [`f64::total_cmp`]: `-NaN < -inf < .. < -0.0 <
/// +0.0 < .. < +inf < +NaN`. The exact bits round-trip.
pub fn encode_f64(buf: &mut Vec<u8>, v: f64) {
    encode_u64(buf, f64_key(v));
}

/// Appends `v` so that larger values (by [`f64::total_cmp`]) sort first.
pub fn encode_f64_desc(buf: &mut Vec<u8>, v: f64) {
    encode_u64(buf, !f64_key(v));
}

/// Appends `false` as `0x00`, `true` as `0x01`.
pub fn encode_bool(buf: &mut Vec<u8>, v: bool) {
    buf.push(u8::from(v));
}

/// Appends `v` escaped (`0x00` -> `0x00 0xFF`) and terminated (`0x00 0x01`).
pub fn encode_bytes(buf: &mut Vec<u8>, v: &[u8]) {
    buf.reserve(v.len() + 2);
    let mut rest = v;
    while let Some(i) = rest.iter().position(|&b| b == ESCAPE) {
        buf.extend_from_slice(&rest[..i]);
        buf.extend_from_slice(&[ESCAPE, ESCAPED_00]);
        rest = &rest[i + 1..];
    }
    buf.extend_from_slice(rest);
    buf.extend_from_slice(&[ESCAPE, TERMINATOR]);
}

/// Appends `v` so that larger byte strings sort first (the complement of
/// [`encode_bytes`]).
pub fn encode_bytes_desc(buf: &mut Vec<u8>, v: &[u8]) {
    let from = buf.len();
    encode_bytes(buf, v);
    for b in &mut buf[from..] {
        *b = !*b;
    }
}

/// Appends the UTF-8 bytes of `v` as [`encode_bytes`] does.
pub fn encode_str(buf: &mut Vec<u8>, v: &str) {
    encode_bytes(buf, v.as_bytes());
}

/// Appends `v` so that larger strings sort first.
pub fn encode_str_desc(buf: &mut Vec<u8>, v: &str) {
    encode_bytes_desc(buf, v.as_bytes());
}

/// Decodes one ascending byte string from the start of `buf`: returns the
/// value and the number of bytes it occupied.
pub fn decode_bytes(buf: &[u8]) -> Result<(Vec<u8>, usize), DecodeError> {
    decode_escaped(buf, 0x00)
}

/// Decodes one byte string written by [`encode_bytes_desc`] from the start
/// of `buf`: returns the value and the number of bytes it occupied.
pub fn decode_bytes_desc(buf: &[u8]) -> Result<(Vec<u8>, usize), DecodeError> {
    decode_escaped(buf, 0xFF)
}

/// Decodes an escaped byte string whose bytes were XORed with `mask`.
fn decode_escaped(buf: &[u8], mask: u8) -> Result<(Vec<u8>, usize), DecodeError> {
    let mut out = Vec::with_capacity(buf.len().min(64));
    let mut pos = 0;
    loop {
        let rest = &buf[pos..];
        let Some(i) = rest.iter().position(|&b| b == ESCAPE ^ mask) else {
            return Err(DecodeError {
                offset: buf.len(),
                reason: "unterminated byte string",
            });
        };
        out.extend(rest[..i].iter().map(|b| b ^ mask));
        match rest.get(i + 1).map(|b| b ^ mask) {
            Some(ESCAPED_00) => {
                out.push(0x00);
                pos += i + 2;
            }
            Some(TERMINATOR) => return Ok((out, pos + i + 2)),
            Some(_) => {
                return Err(DecodeError {
                    offset: pos + i + 1,
                    reason: "invalid escape in byte string",
                })
            }
            None => {
                return Err(DecodeError {
                    offset: buf.len(),
                    reason: "unterminated byte string",
                })
            }
        }
    }
}

/// The smallest byte string greater than every string that starts with
/// `prefix`; `None` if there is none (`prefix` is empty or all `0xFF`).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last < 0xFF {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Builder and cursor.

/// Builds an encoded key column by column:
///
/// ```
/// # use tessera_storage::encoding::{KeyDecoder, KeyEncoder};
/// let key = KeyEncoder::new().u64(7).str("alice").i64(-3).finish();
/// let mut d = KeyDecoder::new(&key);
/// assert_eq!(d.u64().unwrap(), 7);
/// assert_eq!(d.string().unwrap(), "alice");
/// assert_eq!(d.i64().unwrap(), -3);
/// d.finish().unwrap();
/// ```
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KeyEncoder {
    buf: Vec<u8>,
}

impl KeyEncoder {
    /// An empty key.
    pub fn new() -> Self {
        Self::default()
    }

    /// A key starting with the raw bytes `prefix` (not encoded).
    pub fn with_prefix(prefix: &[u8]) -> Self {
        Self {
            buf: prefix.to_vec(),
        }
    }

    /// Appends raw bytes, unencoded (for fixed prefixes).
    pub fn raw(mut self, bytes: &[u8]) -> Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    /// Appends an ascending `u64`.
    pub fn u64(mut self, v: u64) -> Self {
        encode_u64(&mut self.buf, v);
        self
    }

    /// Appends a descending `u64`.
    pub fn u64_desc(mut self, v: u64) -> Self {
        encode_u64_desc(&mut self.buf, v);
        self
    }

    /// Appends an ascending `i64`.
    pub fn i64(mut self, v: i64) -> Self {
        encode_i64(&mut self.buf, v);
        self
    }

    /// Appends a descending `i64`.
    pub fn i64_desc(mut self, v: i64) -> Self {
        encode_i64_desc(&mut self.buf, v);
        self
    }

    /// Appends an ascending `f64` (total order).
    pub fn f64(mut self, v: f64) -> Self {
        encode_f64(&mut self.buf, v);
        self
    }

    /// Appends a descending `f64` (total order).
    pub fn f64_desc(mut self, v: f64) -> Self {
        encode_f64_desc(&mut self.buf, v);
        self
    }

    /// Appends a `bool`.
    pub fn bool(mut self, v: bool) -> Self {
        encode_bool(&mut self.buf, v);
        self
    }

    /// Appends an ascending byte string.
    pub fn bytes(mut self, v: &[u8]) -> Self {
        encode_bytes(&mut self.buf, v);
        self
    }

    /// Appends a descending byte string.
    pub fn bytes_desc(mut self, v: &[u8]) -> Self {
        encode_bytes_desc(&mut self.buf, v);
        self
    }

    /// Appends an ascending string.
    pub fn str(mut self, v: &str) -> Self {
        encode_str(&mut self.buf, v);
        self
    }

    /// Appends a descending string.
    pub fn str_desc(mut self, v: &str) -> Self {
        encode_str_desc(&mut self.buf, v);
        self
    }

    /// The key so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The finished key.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads the columns of an encoded key back, in the order they were written.
/// The caller knows the schema: the encoding carries no type tags.
#[derive(Debug, Clone)]
pub struct KeyDecoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> KeyDecoder<'a> {
    /// A decoder at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes not consumed yet.
    pub fn remaining(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Whether everything was consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Succeeds only if every byte was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.err(self.pos, "trailing bytes after key"))
        }
    }

    fn err(&self, offset: usize, reason: &'static str) -> DecodeError {
        DecodeError { offset, reason }
    }

    /// Consumes `n` raw bytes.
    pub fn raw(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let out = self
            .buf
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or_else(|| self.err(self.buf.len(), "key too short"))?;
        self.pos += n;
        Ok(out)
    }

    fn word(&mut self) -> Result<u64, DecodeError> {
        let b = self.raw(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// Reads an ascending `u64`.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        self.word()
    }

    /// Reads a descending `u64`.
    pub fn u64_desc(&mut self) -> Result<u64, DecodeError> {
        Ok(!self.word()?)
    }

    /// Reads an ascending `i64`.
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok((self.word()? ^ SIGN_BIT) as i64)
    }

    /// Reads a descending `i64`.
    pub fn i64_desc(&mut self) -> Result<i64, DecodeError> {
        Ok((!self.word()? ^ SIGN_BIT) as i64)
    }

    /// Reads an ascending `f64`.
    pub fn f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64_from_key(self.word()?))
    }

    /// Reads a descending `f64`.
    pub fn f64_desc(&mut self) -> Result<f64, DecodeError> {
        Ok(f64_from_key(!self.word()?))
    }

    /// Reads a `bool`; bytes other than 0 and 1 are an error.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        let at = self.pos;
        match self.raw(1)? {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err(self.err(at, "invalid bool")),
        }
    }

    /// Reads an ascending byte string.
    pub fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        self.escaped(0x00)
    }

    /// Reads a descending byte string.
    pub fn bytes_desc(&mut self) -> Result<Vec<u8>, DecodeError> {
        self.escaped(0xFF)
    }

    /// Reads an ascending string; invalid UTF-8 is an error.
    pub fn string(&mut self) -> Result<String, DecodeError> {
        let at = self.pos;
        let b = self.bytes()?;
        String::from_utf8(b).map_err(|_| self.err(at, "invalid UTF-8 in string"))
    }

    /// Reads a descending string; invalid UTF-8 is an error.
    pub fn string_desc(&mut self) -> Result<String, DecodeError> {
        let at = self.pos;
        let b = self.bytes_desc()?;
        String::from_utf8(b).map_err(|_| self.err(at, "invalid UTF-8 in string"))
    }

    fn escaped(&mut self, mask: u8) -> Result<Vec<u8>, DecodeError> {
        let at = self.pos;
        match decode_escaped(&self.buf[self.pos..], mask) {
            Ok((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            Err(e) => Err(self.err(at + e.offset, e.reason)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc_u64(v: u64) -> Vec<u8> {
        KeyEncoder::new().u64(v).finish()
    }
    fn enc_i64(v: i64) -> Vec<u8> {
        KeyEncoder::new().i64(v).finish()
    }
    fn enc_f64(v: f64) -> Vec<u8> {
        KeyEncoder::new().f64(v).finish()
    }
    fn enc_bytes(v: &[u8]) -> Vec<u8> {
        KeyEncoder::new().bytes(v).finish()
    }
    fn enc_tuple(t: &(i64, String, Vec<u8>)) -> Vec<u8> {
        KeyEncoder::new().i64(t.0).str(&t.1).bytes(&t.2).finish()
    }

    /// Byte strings rich in the bytes the escaping cares about.
    fn tricky_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                Just(0x00u8),
                Just(0x01),
                Just(0xFE),
                Just(0xFF),
                any::<u8>()
            ],
            0..12,
        )
    }

    fn any_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            Just(0.0),
            Just(-0.0),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(f64::NAN),
            Just(-f64::NAN),
            Just(f64::MIN_POSITIVE),
            Just(f64::MAX),
            Just(f64::MIN),
        ]
    }

    #[test]
    fn bytes_escape_zero_and_terminate() {
        assert_eq!(enc_bytes(b""), vec![0x00, 0x01]);
        assert_eq!(
            enc_bytes(b"a\x00b"),
            vec![b'a', 0x00, 0xFF, b'b', 0x00, 0x01]
        );
        // A prefix sorts before its extensions, including by a zero byte.
        assert!(enc_bytes(b"a") < enc_bytes(b"a\x00"));
        assert!(enc_bytes(b"a\x00") < enc_bytes(b"a\x00\x00"));
        assert!(enc_bytes(b"a\x00") < enc_bytes(b"a\x01"));
    }

    #[test]
    fn floats_order_like_total_cmp() {
        let vals = [
            -f64::NAN,
            f64::NEG_INFINITY,
            -1.5,
            -0.0,
            0.0,
            f64::MIN_POSITIVE,
            2.0,
            f64::INFINITY,
            f64::NAN,
        ];
        for w in vals.windows(2) {
            assert!(enc_f64(w[0]) < enc_f64(w[1]), "{} < {}", w[0], w[1]);
        }
    }

    #[test]
    fn prefix_successor_skips_ff() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff"), None);
        assert_eq!(prefix_successor(b""), None);
    }

    #[test]
    fn decoding_errors_are_reported() {
        assert!(KeyDecoder::new(&[1, 2, 3]).u64().is_err());
        assert!(KeyDecoder::new(&[2]).bool().is_err());
        assert!(KeyDecoder::new(b"abc").bytes().is_err());
        assert!(KeyDecoder::new(&[b'a', 0x00, 0x07]).bytes().is_err());
        assert!(KeyDecoder::new(&[b'a', 0x00]).bytes().is_err());
        assert!(KeyDecoder::new(&[0xC3, 0x28, 0x00, 0x01]).string().is_err());
        let key = KeyEncoder::new().u64(1).finish();
        let mut d = KeyDecoder::new(&key);
        d.u64().unwrap();
        assert!(d.finish().is_ok());
        let key = KeyEncoder::new().u64(1).bool(true).finish();
        let mut d = KeyDecoder::new(&key);
        d.u64().unwrap();
        assert!(d.finish().is_err());
    }

    proptest! {
        #[test]
        fn u64_order(a: u64, b: u64) {
            prop_assert_eq!(a.cmp(&b), enc_u64(a).cmp(&enc_u64(b)));
            let (da, db) = (KeyEncoder::new().u64_desc(a).finish(), KeyEncoder::new().u64_desc(b).finish());
            prop_assert_eq!(b.cmp(&a), da.cmp(&db));
        }

        #[test]
        fn i64_order(a: i64, b: i64) {
            prop_assert_eq!(a.cmp(&b), enc_i64(a).cmp(&enc_i64(b)));
            let (da, db) = (KeyEncoder::new().i64_desc(a).finish(), KeyEncoder::new().i64_desc(b).finish());
            prop_assert_eq!(b.cmp(&a), da.cmp(&db));
        }

        #[test]
        fn f64_order(a in any_f64(), b in any_f64()) {
            prop_assert_eq!(a.total_cmp(&b), enc_f64(a).cmp(&enc_f64(b)));
            let (da, db) = (KeyEncoder::new().f64_desc(a).finish(), KeyEncoder::new().f64_desc(b).finish());
            prop_assert_eq!(b.total_cmp(&a), da.cmp(&db));
        }

        #[test]
        fn bool_order(a: bool, b: bool) {
            let (ea, eb) = (KeyEncoder::new().bool(a).finish(), KeyEncoder::new().bool(b).finish());
            prop_assert_eq!(a.cmp(&b), ea.cmp(&eb));
        }

        #[test]
        fn bytes_order(a in tricky_bytes(), b in tricky_bytes()) {
            prop_assert_eq!(a.cmp(&b), enc_bytes(&a).cmp(&enc_bytes(&b)));
            let (da, db) = (KeyEncoder::new().bytes_desc(&a).finish(), KeyEncoder::new().bytes_desc(&b).finish());
            prop_assert_eq!(b.cmp(&a), da.cmp(&db));
        }

        #[test]
        fn string_order(a: String, b: String) {
            let (ea, eb) = (KeyEncoder::new().str(&a).finish(), KeyEncoder::new().str(&b).finish());
            prop_assert_eq!(a.cmp(&b), ea.cmp(&eb));
            let (da, db) = (KeyEncoder::new().str_desc(&a).finish(), KeyEncoder::new().str_desc(&b).finish());
            prop_assert_eq!(b.cmp(&a), da.cmp(&db));
        }

        #[test]
        fn tuple_order(
            a in (any::<i64>(), "[a\\x00b]{0,4}", tricky_bytes()),
            b in (any::<i64>(), "[a\\x00b]{0,4}", tricky_bytes()),
        ) {
            prop_assert_eq!(a.cmp(&b), enc_tuple(&a).cmp(&enc_tuple(&b)));
        }

        #[test]
        fn tuple_round_trip(t in (any::<i64>(), any::<String>(), tricky_bytes())) {
            let key = enc_tuple(&t);
            let mut d = KeyDecoder::new(&key);
            let back = (d.i64().unwrap(), d.string().unwrap(), d.bytes().unwrap());
            d.finish().unwrap();
            prop_assert_eq!(back, t);
        }

        #[test]
        fn scalar_round_trip(u: u64, i: i64, f in any_f64(), b: bool, s: String, v in tricky_bytes()) {
            let key = KeyEncoder::new()
                .u64(u).u64_desc(u).i64(i).i64_desc(i).f64(f).f64_desc(f).bool(b)
                .str(&s).str_desc(&s).bytes(&v).bytes_desc(&v)
                .finish();
            let mut d = KeyDecoder::new(&key);
            prop_assert_eq!(d.u64().unwrap(), u);
            prop_assert_eq!(d.u64_desc().unwrap(), u);
            prop_assert_eq!(d.i64().unwrap(), i);
            prop_assert_eq!(d.i64_desc().unwrap(), i);
            prop_assert_eq!(d.f64().unwrap().to_bits(), f.to_bits());
            prop_assert_eq!(d.f64_desc().unwrap().to_bits(), f.to_bits());
            prop_assert_eq!(d.bool().unwrap(), b);
            prop_assert_eq!(d.string().unwrap(), s.clone());
            prop_assert_eq!(d.string_desc().unwrap(), s);
            prop_assert_eq!(d.bytes().unwrap(), v.clone());
            prop_assert_eq!(d.bytes_desc().unwrap(), v);
            prop_assert!(d.finish().is_ok());
        }

        #[test]
        fn garbage_never_panics(g in prop::collection::vec(any::<u8>(), 0..24)) {
            let mut d = KeyDecoder::new(&g);
            let _ = d.u64();
            let _ = KeyDecoder::new(&g).i64();
            let _ = KeyDecoder::new(&g).f64_desc();
            let _ = KeyDecoder::new(&g).bool();
            let _ = KeyDecoder::new(&g).bytes();
            let _ = KeyDecoder::new(&g).bytes_desc();
            let _ = KeyDecoder::new(&g).string();
            let _ = KeyDecoder::new(&g).string_desc();
            let _ = decode_bytes(&g);
            let mut d = KeyDecoder::new(&g);
            while !d.is_empty() {
                if d.bytes().is_err() { break; }
            }
        }

        #[test]
        fn truncated_bytes_are_an_error(v in tricky_bytes(), cut in 0usize..16) {
            let key = enc_bytes(&v);
            let cut = cut.min(key.len() - 1);
            prop_assert!(decode_bytes(&key[..cut]).is_err());
        }
    }
}
