//! MVCC over an [`Engine`]: every write of a user key is a *version* at an
//! HLC [`Timestamp`]; a transaction's provisional write is an *intent* in the
//! lock table (at most one per key) until it is resolved (committed into a
//! version, or aborted away). Reads at a timestamp see the newest version at
//! or below it. Old versions are garbage-collected below a threshold.
//!
//! Engine layout (see the crate docs):
//!
//! ```text
//! \x01 <enc(key)> <!wall: u64 BE> <!logical: u32 BE>  -> <tag> <value>   version
//! \x02 <enc(key)>                                     -> <intent>        intent
//! ```
//!
//! `enc` is [`encoding::encode_bytes`] (order-preserving, prefix-free) and
//! `!x` is `MAX - x`, so the versions of one key are contiguous and newest
//! first, and all versions of `k` sort before those of any `k2 > k`. A
//! version value is one tag byte (`0` deletion tombstone, `1` value) and the
//! value bytes. An intent value is a format byte (`1`), the txn id (16
//! bytes), its timestamp (wall u64 BE, logical u32 BE), then a tagged value
//! as for versions.
//!
//! Reads go to the engine only (they take `&dyn Engine`); writes go to a
//! [`WriteBatch`] the caller applies. [`put`] and [`resolve_intent`] also
//! look at intents and versions already in that batch, so several MVCC
//! writes (e.g. a one-phase commit: intents then their resolution) can share
//! one batch. In user-key spans `[start, end)`, an empty `end` means "no upper
//! bound".

use tessera_common::Timestamp;

use crate::encoding::{self, prefix_successor, DecodeError};
use crate::engine::{Engine, EngineIterator, WriteBatch};
use crate::{LOCK_PREFIX, MVCC_PREFIX};

/// Length of the encoded timestamp suffix of a version key.
const TS_LEN: usize = 12;
/// Version value tag: a deletion tombstone.
const TAG_TOMBSTONE: u8 = 0;
/// Version value tag: a value follows.
const TAG_VALUE: u8 = 1;
/// Format byte of encoded intents.
const INTENT_FORMAT: u8 = 1;
/// Length of an encoded intent before its tagged value.
const INTENT_HEADER_LEN: usize = 1 + 16 + TS_LEN;
/// After skipping this many versions of one key, a scan re-positions its
/// engine iterator instead of stepping over the rest (a "seek"). Small under
/// test so that the seeking paths are exercised everywhere.
const SEEK_AFTER: usize = if cfg!(test) { 3 } else { 32 };

/// The transaction a read or write belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TxnMeta {
    /// The transaction's unique id.
    pub id: [u8; 16],
    /// Its provisional write timestamp: where its intents are written.
    pub timestamp: Timestamp,
}

/// A provisional write of a transaction: the lock-table entry of `key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    /// The user key.
    pub key: Vec<u8>,
    /// The owning transaction, with the timestamp the intent was written at.
    pub txn: TxnMeta,
    /// The value it will commit; `None` is a deletion.
    pub value: Option<Vec<u8>>,
}

/// MVCC errors. `WriteIntent` and `WriteTooOld` are conflicts the caller
/// handles (push or wait for the intents' transactions; retry at a higher
/// timestamp); `Storage` and `Corruption` are not.
#[derive(Debug, thiserror::Error)]
pub enum MvccError {
    /// The engine failed.
    #[error(transparent)]
    Storage(#[from] crate::Error),
    /// Intents of other transactions are in the way.
    #[error("conflicting write intents on {} key(s)", intents.len())]
    WriteIntent {
        /// Every conflicting intent met (for scans: in the part scanned).
        intents: Vec<Intent>,
    },
    /// A committed version at or above the write timestamp exists: retry
    /// above `existing`.
    #[error("write too old: key {key:?} has a version at {existing}")]
    WriteTooOld {
        /// The user key.
        key: Vec<u8>,
        /// Timestamp of the newest committed version of `key`.
        existing: Timestamp,
    },
    /// Stored MVCC data could not be decoded.
    #[error("corrupt MVCC data: {0}")]
    Corruption(String),
}

impl From<DecodeError> for MvccError {
    fn from(e: DecodeError) -> Self {
        MvccError::Corruption(e.to_string())
    }
}

/// Result of MVCC operations.
pub type MvccResult<T> = std::result::Result<T, MvccError>;

/// Rows of a [`scan`], and where to continue if it stopped at its limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanResult {
    /// `(user key, value)` in scan order.
    pub rows: Vec<(Vec<u8>, Vec<u8>)>,
    /// `None` if the span was exhausted. Otherwise, forward: the start key to
    /// continue from (`[resume_key, end)`); reverse: the exclusive end to
    /// continue with (`[start, resume_key)`).
    pub resume_key: Option<Vec<u8>>,
}

/// What [`gc`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcStats {
    /// User keys with versions in the span.
    pub keys: u64,
    /// Versions deleted.
    pub versions_deleted: u64,
    /// Engine bytes (keys + values) deleted.
    pub bytes_deleted: u64,
}

// ---------------------------------------------------------------------------
// Keys and values.

fn append_ts(buf: &mut Vec<u8>, ts: Timestamp) {
    buf.extend_from_slice(&(u64::MAX - ts.wall).to_be_bytes());
    buf.extend_from_slice(&(u32::MAX - ts.logical).to_be_bytes());
}

fn decode_ts(b: &[u8]) -> MvccResult<Timestamp> {
    let (w, l) = match (b.get(..8), b.get(8..TS_LEN)) {
        (Some(w), Some(l)) if b.len() == TS_LEN => (w, l),
        _ => return Err(corrupt("bad timestamp suffix length")),
    };
    let mut wall = [0u8; 8];
    wall.copy_from_slice(w);
    let mut logical = [0u8; 4];
    logical.copy_from_slice(l);
    Ok(Timestamp::new(
        u64::MAX - u64::from_be_bytes(wall),
        u32::MAX - u32::from_be_bytes(logical),
    ))
}

fn corrupt(msg: impl Into<String>) -> MvccError {
    MvccError::Corruption(msg.into())
}

/// `MVCC_PREFIX ++ ek`: the first engine key of the versions of the user key
/// whose encoding is `ek`.
fn group_start(ek: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + ek.len() + TS_LEN);
    k.push(MVCC_PREFIX);
    k.extend_from_slice(ek);
    k
}

/// Just past the last engine key of the versions of the encoded key `ek`.
fn group_end(ek: &[u8]) -> Vec<u8> {
    prefix_successor(&group_start(ek)).unwrap_or_else(|| vec![MVCC_PREFIX + 1])
}

fn version_key_enc(ek: &[u8], ts: Timestamp) -> Vec<u8> {
    let mut k = group_start(ek);
    append_ts(&mut k, ts);
    k
}

fn encode_key(key: &[u8]) -> Vec<u8> {
    let mut ek = Vec::with_capacity(key.len() + 2);
    encoding::encode_bytes(&mut ek, key);
    ek
}

/// The engine key of the version of `key` at `ts`.
pub fn encode_version_key(key: &[u8], ts: Timestamp) -> Vec<u8> {
    version_key_enc(&encode_key(key), ts)
}

/// Splits a version engine key into the encoded user key and the timestamp.
fn split_version_key(k: &[u8]) -> MvccResult<(&[u8], Timestamp)> {
    if k.first() != Some(&MVCC_PREFIX) || k.len() < 1 + 2 + TS_LEN {
        return Err(corrupt(format!("not a version key: {k:x?}")));
    }
    let (ek, ts) = k[1..].split_at(k.len() - 1 - TS_LEN);
    Ok((ek, decode_ts(ts)?))
}

/// Decodes an encoded user key that must fill `ek` exactly.
fn decode_user_key(ek: &[u8]) -> MvccResult<Vec<u8>> {
    let (key, n) = encoding::decode_bytes(ek)?;
    if n != ek.len() {
        return Err(corrupt(format!("trailing bytes after user key: {ek:x?}")));
    }
    Ok(key)
}

/// The user key and timestamp of a version engine key.
pub fn decode_version_key(engine_key: &[u8]) -> MvccResult<(Vec<u8>, Timestamp)> {
    let (ek, ts) = split_version_key(engine_key)?;
    Ok((decode_user_key(ek)?, ts))
}

/// The engine key of the intent (lock-table entry) of `key`.
pub fn encode_intent_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 3);
    k.push(LOCK_PREFIX);
    encoding::encode_bytes(&mut k, key);
    k
}

/// The encoded user key part of an intent engine key.
fn intent_user_part(k: &[u8]) -> MvccResult<&[u8]> {
    match k.split_first() {
        Some((&LOCK_PREFIX, ek)) => Ok(ek),
        _ => Err(corrupt(format!("not an intent key: {k:x?}"))),
    }
}

/// The user key of an intent engine key.
pub fn decode_intent_key(engine_key: &[u8]) -> MvccResult<Vec<u8>> {
    decode_user_key(intent_user_part(engine_key)?)
}

fn encode_value(buf: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => buf.push(TAG_TOMBSTONE),
        Some(v) => {
            buf.reserve(1 + v.len());
            buf.push(TAG_VALUE);
            buf.extend_from_slice(v);
        }
    }
}

fn decode_value(raw: &[u8]) -> MvccResult<Option<Vec<u8>>> {
    match raw.split_first() {
        Some((&TAG_VALUE, v)) => Ok(Some(v.to_vec())),
        Some((&TAG_TOMBSTONE, [])) => Ok(None),
        _ => Err(corrupt(format!("bad version value tag: {raw:x?}"))),
    }
}

fn is_tombstone(raw: &[u8]) -> MvccResult<bool> {
    match raw.first() {
        Some(&TAG_TOMBSTONE) => Ok(true),
        Some(&TAG_VALUE) => Ok(false),
        _ => Err(corrupt(format!("bad version value tag: {raw:x?}"))),
    }
}

fn encode_intent_value(txn: &TxnMeta, value: Option<&[u8]>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(INTENT_HEADER_LEN + 1 + value.map_or(0, <[u8]>::len));
    buf.push(INTENT_FORMAT);
    buf.extend_from_slice(&txn.id);
    buf.extend_from_slice(&txn.timestamp.wall.to_be_bytes());
    buf.extend_from_slice(&txn.timestamp.logical.to_be_bytes());
    encode_value(&mut buf, value);
    buf
}

fn decode_intent_value(key: Vec<u8>, raw: &[u8]) -> MvccResult<Intent> {
    if raw.len() < INTENT_HEADER_LEN || raw[0] != INTENT_FORMAT {
        return Err(corrupt(format!("bad intent for key {key:x?}")));
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&raw[1..17]);
    let mut wall = [0u8; 8];
    wall.copy_from_slice(&raw[17..25]);
    let mut logical = [0u8; 4];
    logical.copy_from_slice(&raw[25..29]);
    let value = decode_value(&raw[INTENT_HEADER_LEN..])?;
    Ok(Intent {
        key,
        txn: TxnMeta {
            id,
            timestamp: Timestamp::new(u64::from_be_bytes(wall), u32::from_be_bytes(logical)),
        },
        value,
    })
}

fn decode_intent(engine_key: &[u8], raw: &[u8]) -> MvccResult<Intent> {
    decode_intent_value(decode_intent_key(engine_key)?, raw)
}

/// Engine key bounds covering every version and every intent of the user
/// keys in `[start, end)` (empty `end`: unbounded): `[versions, intents]`,
/// each `(lo, hi)` half-open. Use them to copy a range into a snapshot or to
/// clear it.
pub fn engine_span(start: &[u8], end: &[u8]) -> [(Vec<u8>, Vec<u8>); 2] {
    let bound = |prefix: u8, key: &[u8]| {
        let mut k = vec![prefix];
        encoding::encode_bytes(&mut k, key);
        k
    };
    let hi = |prefix: u8| {
        if end.is_empty() {
            vec![prefix + 1]
        } else {
            bound(prefix, end)
        }
    };
    [
        (bound(MVCC_PREFIX, start), hi(MVCC_PREFIX)),
        (bound(LOCK_PREFIX, start), hi(LOCK_PREFIX)),
    ]
}

// ---------------------------------------------------------------------------
// Reads.

/// Reads the intent of `key`, from `batch` if it touched it, else the engine.
fn read_intent(
    engine: &dyn Engine,
    batch: Option<&WriteBatch>,
    key: &[u8],
) -> MvccResult<Option<Intent>> {
    let ik = encode_intent_key(key);
    let raw = match batch.and_then(|b| b.lookup(&ik)) {
        Some(in_batch) => in_batch.map(<[u8]>::to_vec),
        None => engine.get(&ik)?,
    };
    raw.map(|raw| decode_intent_value(key.to_vec(), &raw))
        .transpose()
}

/// The intent on `key`, if any.
pub fn get_intent(engine: &dyn Engine, key: &[u8]) -> MvccResult<Option<Intent>> {
    read_intent(engine, None, key)
}

/// The intents on user keys in `[start, end)` (empty `end`: unbounded), in
/// key order, at most `limit` of them (0: no limit).
pub fn scan_intents(
    engine: &dyn Engine,
    start: &[u8],
    end: &[u8],
    limit: usize,
) -> MvccResult<Vec<Intent>> {
    let [_, (lo, hi)] = engine_span(start, end);
    let mut out = Vec::new();
    for item in engine.scan(&lo, &hi, false)? {
        let (k, v) = item?;
        out.push(decode_intent(&k, &v)?);
        if limit > 0 && out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// The first version in `[from, to)` (forward): its raw key and value.
fn first_version(
    engine: &dyn Engine,
    from: &[u8],
    to: &[u8],
) -> MvccResult<Option<(Vec<u8>, Vec<u8>)>> {
    Ok(engine.scan(from, to, false)?.next().transpose()?)
}

/// The newest version of `key` at or below `ts`, tombstones included
/// (`(ts, None)`), ignoring intents. For conditional writes and for callers
/// that need the version's timestamp.
pub fn get_version(
    engine: &dyn Engine,
    key: &[u8],
    ts: Timestamp,
) -> MvccResult<Option<(Timestamp, Option<Vec<u8>>)>> {
    let ek = encode_key(key);
    match first_version(engine, &version_key_enc(&ek, ts), &group_end(&ek))? {
        None => Ok(None),
        Some((k, v)) => {
            let (_, vts) = split_version_key(&k)?;
            Ok(Some((vts, decode_value(&v)?)))
        }
    }
}

/// The value of `key` a read at `read_ts` sees: the newest version at or
/// below `read_ts`, `None` if there is none or it is a tombstone.
///
/// Intents: the reading transaction (`txn`) sees its own intent's value
/// whatever its timestamp; another transaction's intent at or below
/// `read_ts` is [`MvccError::WriteIntent`]; one above `read_ts` is ignored.
pub fn get(
    engine: &dyn Engine,
    key: &[u8],
    read_ts: Timestamp,
    txn: Option<&TxnMeta>,
) -> MvccResult<Option<Vec<u8>>> {
    // Intent before versions: should a resolution commit between the two
    // reads, we see the intent (and report it) rather than miss the value.
    if let Some(intent) = read_intent(engine, None, key)? {
        if txn.is_some_and(|t| t.id == intent.txn.id) {
            return Ok(intent.value);
        }
        if intent.txn.timestamp <= read_ts {
            return Err(MvccError::WriteIntent {
                intents: vec![intent],
            });
        }
    }
    Ok(get_version(engine, key, read_ts)?.and_then(|(_, v)| v))
}

/// A positioned engine iterator over `[lo, hi)` that can re-position
/// ("seek") by opening a new engine scan.
struct Cursor<'e> {
    engine: &'e dyn Engine,
    lo: Vec<u8>,
    hi: Vec<u8>,
    reverse: bool,
    iter: EngineIterator<'e>,
    head: Option<(Vec<u8>, Vec<u8>)>,
}

impl<'e> Cursor<'e> {
    fn open(engine: &'e dyn Engine, lo: Vec<u8>, hi: Vec<u8>, reverse: bool) -> MvccResult<Self> {
        let iter = engine.scan(&lo, &hi, reverse)?;
        let mut c = Cursor {
            engine,
            lo,
            hi,
            reverse,
            iter,
            head: None,
        };
        c.fill()?;
        Ok(c)
    }

    fn fill(&mut self) -> MvccResult<()> {
        self.head = self.iter.next().transpose()?;
        Ok(())
    }

    fn head(&self) -> Option<&(Vec<u8>, Vec<u8>)> {
        self.head.as_ref()
    }

    fn next(&mut self) -> MvccResult<Option<(Vec<u8>, Vec<u8>)>> {
        let h = self.head.take();
        if h.is_some() {
            self.fill()?;
        }
        Ok(h)
    }

    /// Forward: continue at the first key `>= key`. Reverse: continue at the
    /// last key `< key`. Only ever moves in the scan's direction.
    fn seek(&mut self, key: Vec<u8>) -> MvccResult<()> {
        if self.reverse {
            if key < self.hi {
                self.hi = key;
            }
        } else if key > self.lo {
            self.lo = key;
        }
        self.iter = self.engine.scan(&self.lo, &self.hi, self.reverse)?;
        self.fill()
    }
}

/// The encoded user key of the cursor's head version, if any.
fn head_version_part<'c>(c: &'c Cursor<'_>) -> MvccResult<Option<&'c [u8]>> {
    c.head()
        .map(|(k, _)| split_version_key(k).map(|(ek, _)| ek))
        .transpose()
}

/// Steps over every version of `ek` (cursor at one of them).
fn skip_versions(c: &mut Cursor<'_>, ek: &[u8]) -> MvccResult<()> {
    let mut skipped = 0;
    while head_version_part(c)? == Some(ek) {
        skipped += 1;
        if skipped > SEEK_AFTER {
            return c.seek(if c.reverse {
                group_start(ek)
            } else {
                group_end(ek)
            });
        }
        c.next()?;
    }
    Ok(())
}

/// Forward scan: consumes the versions of `ek` (cursor at the newest) and
/// returns the raw value of the newest at or below `read_ts`.
fn visible_forward(
    c: &mut Cursor<'_>,
    ek: &[u8],
    read_ts: Timestamp,
) -> MvccResult<Option<Vec<u8>>> {
    let mut skipped = 0;
    while let Some((k, _)) = c.head() {
        let (part, ts) = split_version_key(k)?;
        if part != ek {
            break;
        }
        if ts <= read_ts {
            let found = c.next()?.map(|(_, v)| v);
            skip_versions(c, ek)?;
            return Ok(found);
        }
        skipped += 1;
        if skipped > SEEK_AFTER {
            c.seek(version_key_enc(ek, read_ts))?;
            skipped = 0;
        } else {
            c.next()?;
        }
    }
    Ok(None)
}

/// Reverse scan: consumes the versions of `ek` (cursor at the oldest; they
/// come oldest first) and returns the raw value of the newest at or below
/// `read_ts`.
fn visible_reverse(
    c: &mut Cursor<'_>,
    ek: &[u8],
    read_ts: Timestamp,
) -> MvccResult<Option<Vec<u8>>> {
    let mut found = None;
    let mut seen = 0;
    while let Some((k, _)) = c.head() {
        let (part, ts) = split_version_key(k)?;
        if part != ek {
            break;
        }
        if ts > read_ts {
            // Everything left of this key is newer still.
            skip_versions(c, ek)?;
            break;
        }
        seen += 1;
        if seen > SEEK_AFTER {
            // Many old versions: look the answer up directly, jump past.
            let lookup = first_version(c.engine, &version_key_enc(ek, read_ts), &group_end(ek))?;
            c.seek(group_start(ek))?;
            return Ok(lookup.map(|(_, v)| v));
        }
        found = c.next()?.map(|(_, v)| v);
    }
    Ok(found)
}

/// Reads the user keys in `[start, end)` (empty `end`: unbounded) at
/// `read_ts`, ascending or, with `reverse`, descending: for each key, what
/// [`get`] would return (keys reading `None` are left out).
///
/// At most `limit` rows (0: no limit); if more remain, `resume_key` says
/// where to continue (see [`ScanResult`]). Other transactions' intents at
/// or below `read_ts` in the part of the span scanned make the scan fail
/// with [`MvccError::WriteIntent`] listing all of them.
///
/// Cost: one pass over the engine span (versions and intents, merged);
/// keys with many versions are skipped by re-positioning the iterator.
pub fn scan(
    engine: &dyn Engine,
    start: &[u8],
    end: &[u8],
    read_ts: Timestamp,
    limit: usize,
    reverse: bool,
    txn: Option<&TxnMeta>,
) -> MvccResult<ScanResult> {
    let mut out = ScanResult::default();
    if !end.is_empty() && start >= end {
        return Ok(out);
    }
    let [(vlo, vhi), (ilo, ihi)] = engine_span(start, end);
    // Intents before versions, as in `get`.
    let mut intents = Cursor::open(engine, ilo, ihi, reverse)?;
    let mut versions = Cursor::open(engine, vlo, vhi, reverse)?;
    let mut conflicts = Vec::new();
    loop {
        let vk = head_version_part(&versions)?;
        let ik = intents.head().map(|(k, _)| intent_user_part(k)).transpose()?;
        // The next user key (encoded) in scan order, and who has it.
        let ek: Vec<u8> = match (vk, ik) {
            (None, None) => break,
            (Some(v), None) => v.to_vec(),
            (None, Some(i)) => i.to_vec(),
            (Some(v), Some(i)) => {
                if (v <= i) != reverse || v == i {
                    v.to_vec()
                } else {
                    i.to_vec()
                }
            }
        };
        let has_versions = vk == Some(ek.as_slice());
        let has_intent = ik == Some(ek.as_slice());

        // `Some(v)`: the intent decides the key's value.
        let mut from_intent: Option<Option<Vec<u8>>> = None;
        let mut conflict = None;
        if has_intent {
            if let Some((k, v)) = intents.next()? {
                let intent = decode_intent(&k, &v)?;
                if txn.is_some_and(|t| t.id == intent.txn.id) {
                    from_intent = Some(intent.value);
                } else if intent.txn.timestamp <= read_ts {
                    conflict = Some(intent);
                }
            }
        }
        let value = if let Some(v) = from_intent {
            if has_versions {
                skip_versions(&mut versions, &ek)?;
            }
            v
        } else if conflict.is_some() {
            if has_versions {
                skip_versions(&mut versions, &ek)?;
            }
            None
        } else if has_versions {
            let raw = if reverse {
                visible_reverse(&mut versions, &ek, read_ts)?
            } else {
                visible_forward(&mut versions, &ek, read_ts)?
            };
            match raw {
                Some(raw) => decode_value(&raw)?,
                None => None,
            }
        } else {
            None
        };

        if value.is_none() && conflict.is_none() {
            continue;
        }
        if limit > 0 && out.rows.len() >= limit {
            let key = decode_user_key(&ek)?;
            out.resume_key = Some(if reverse {
                let mut k = key;
                k.push(0);
                k
            } else {
                key
            });
            break;
        }
        match (conflict, value) {
            (Some(c), _) => conflicts.push(c),
            (None, Some(v)) => out.rows.push((decode_user_key(&ek)?, v)),
            (None, None) => {}
        }
    }
    if conflicts.is_empty() {
        Ok(out)
    } else {
        Err(MvccError::WriteIntent { intents: conflicts })
    }
}

// ---------------------------------------------------------------------------
// Writes.

/// The timestamp of the newest committed version of `key`, in the engine or
/// written by `batch`.
fn newest_version_ts(
    engine: &dyn Engine,
    batch: &WriteBatch,
    key: &[u8],
) -> MvccResult<Option<Timestamp>> {
    let ek = encode_key(key);
    let start = group_start(&ek);
    let mut newest = match first_version(engine, &start, &group_end(&ek))? {
        Some((k, _)) => Some(split_version_key(&k)?.1),
        None => None,
    };
    for (k, v) in batch.ops() {
        if v.is_some() && k.len() == start.len() + TS_LEN && k.starts_with(&start) {
            let ts = decode_ts(&k[start.len()..])?;
            newest = newest.max(Some(ts));
        }
    }
    Ok(newest)
}

/// Writes `value` (`None`: a deletion tombstone) for `key` into `batch`.
///
/// Without `txn`: a committed version at `ts`. Fails with
/// [`MvccError::WriteIntent`] if any transaction has an intent on `key`, and
/// with [`MvccError::WriteTooOld`] if a version at or above `ts` exists (the
/// caller retries above it).
///
/// With `txn`: writes or replaces the transaction's intent, at
/// `txn.timestamp` (`ts` is ignored). Fails with `WriteIntent` if another
/// transaction has an intent on `key`, and with `WriteTooOld` if a committed
/// version at or above `txn.timestamp` exists.
pub fn put(
    engine: &dyn Engine,
    batch: &mut WriteBatch,
    key: &[u8],
    ts: Timestamp,
    value: Option<Vec<u8>>,
    txn: Option<&TxnMeta>,
) -> MvccResult<()> {
    if let Some(intent) = read_intent(engine, Some(batch), key)? {
        if !txn.is_some_and(|t| t.id == intent.txn.id) {
            return Err(MvccError::WriteIntent {
                intents: vec![intent],
            });
        }
    }
    let write_ts = txn.map_or(ts, |t| t.timestamp);
    if let Some(existing) = newest_version_ts(engine, batch, key)? {
        if existing >= write_ts {
            return Err(MvccError::WriteTooOld {
                key: key.to_vec(),
                existing,
            });
        }
    }
    match txn {
        None => {
            let mut v = Vec::new();
            encode_value(&mut v, value.as_deref());
            batch.put(encode_version_key(key, ts), v);
        }
        Some(t) => batch.put(encode_intent_key(key), encode_intent_value(t, value.as_deref())),
    }
    Ok(())
}

/// Resolves the intent of transaction `txn_id` on `key`: with
/// `Some(commit_ts)` commits it (its value becomes a version at `commit_ts`),
/// with `None` aborts it; either way the intent is removed. Returns `false`
/// (and writes nothing) if `key` has no intent of that transaction.
pub fn resolve_intent(
    engine: &dyn Engine,
    batch: &mut WriteBatch,
    key: &[u8],
    txn_id: [u8; 16],
    commit_ts: Option<Timestamp>,
) -> MvccResult<bool> {
    let Some(intent) = read_intent(engine, Some(batch), key)? else {
        return Ok(false);
    };
    if intent.txn.id != txn_id {
        return Ok(false);
    }
    if let Some(ts) = commit_ts {
        let mut v = Vec::new();
        encode_value(&mut v, intent.value.as_deref());
        batch.put(encode_version_key(key, ts), v);
    }
    batch.delete(encode_intent_key(key));
    Ok(true)
}

/// Garbage-collects versions of the user keys in `[start, end)` (empty
/// `end`: unbounded) into `batch`: keeps every version above `threshold`
/// and the newest at or below it (what a read at `threshold` sees) and
/// deletes the older ones; that kept version is deleted too if it is a
/// tombstone. Reads at or above `threshold` see the same before and after.
/// Intents are never touched. Callers must refuse reads and writes below
/// `threshold` afterwards.
pub fn gc(
    engine: &dyn Engine,
    batch: &mut WriteBatch,
    start: &[u8],
    end: &[u8],
    threshold: Timestamp,
) -> MvccResult<GcStats> {
    let mut stats = GcStats::default();
    if !end.is_empty() && start >= end {
        return Ok(stats);
    }
    let [(lo, hi), _] = engine_span(start, end);
    let mut current: Option<Vec<u8>> = None;
    // Whether the current key's newest version <= threshold was passed.
    let mut passed_visible = false;
    for item in engine.scan(&lo, &hi, false)? {
        let (k, v) = item?;
        let (ek, ts) = split_version_key(&k)?;
        if current.as_deref() != Some(ek) {
            current = Some(ek.to_vec());
            passed_visible = false;
            stats.keys += 1;
        }
        if ts > threshold {
            continue;
        }
        let delete = if passed_visible {
            true
        } else {
            passed_visible = true;
            is_tombstone(&v)?
        };
        if delete {
            stats.versions_deleted += 1;
            stats.bytes_deleted += (k.len() + v.len()) as u64;
            batch.delete(k);
        }
    }
    Ok(stats)
}

/// Deletes every version and intent of the user keys in `[start, end)`
/// (empty `end`: unbounded) into `batch`; returns how many engine keys.
pub fn clear_span(
    engine: &dyn Engine,
    batch: &mut WriteBatch,
    start: &[u8],
    end: &[u8],
) -> MvccResult<u64> {
    let mut n = 0;
    if !end.is_empty() && start >= end {
        return Ok(n);
    }
    for (lo, hi) in engine_span(start, end) {
        for item in engine.scan(&lo, &hi, false)? {
            batch.delete(item?.0);
            n += 1;
        }
    }
    Ok(n)
}

