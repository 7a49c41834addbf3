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
use crate::version_cache::{Lookup, NewestVersion};
use crate::{LOCK_PREFIX, MVCC_PREFIX, TXN_RECORD_PREFIX};

/// Length of the encoded timestamp suffix of a version key.
const TS_LEN: usize = 12;
/// Version value tag: a deletion tombstone.
const TAG_TOMBSTONE: u8 = 0;
/// Version value tag: a value follows.
const TAG_VALUE: u8 = 1;
/// Format byte of encoded intents (without an anchor key).
const INTENT_FORMAT: u8 = 1;
/// Format byte of encoded intents carrying their record's anchor key.
const INTENT_FORMAT_ANCHORED: u8 = 2;
/// Format byte of an anchored lock-only intent (no value).
const INTENT_FORMAT_LOCK: u8 = 3;
/// Length of an encoded intent before its tagged value.
const INTENT_HEADER_LEN: usize = 1 + 16 + TS_LEN;
/// After skipping this many versions of one key, a scan re-positions its
/// engine iterator instead of stepping over the rest (a "seek"). Small under
/// test so that the seeking paths are exercised everywhere.
const SEEK_AFTER: usize = if cfg!(test) { 3 } else { 32 };

/// The transaction a read or write belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TxnMeta {
    /// The transaction's unique id.
    pub id: [u8; 16],
    /// Its provisional write timestamp: where its intents are written.
    pub timestamp: Timestamp,
    /// The key anchoring its transaction record (empty: none). Stored in
    /// each intent, so whoever meets the intent can find the record.
    pub anchor: Vec<u8>,
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
    /// A lock only (SELECT ... FOR UPDATE, or a row about to be updated):
    /// it writes nothing, readers see through it, writers of other
    /// transactions wait for it, and resolving it only removes it.
    pub lock_only: bool,
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

/// A version's stored value decoded (`Some(None)`: a tombstone); `None`
/// if it is not a valid stored value.
pub(crate) fn decode_stored_value(raw: &[u8]) -> Option<Option<Vec<u8>>> {
    decode_value(raw).ok()
}

/// The encoded user key and timestamp of a version engine key; `None`
/// for other keys.
pub(crate) fn version_of(k: &[u8]) -> Option<(&[u8], Timestamp)> {
    split_version_key(k).ok()
}

fn is_tombstone(raw: &[u8]) -> MvccResult<bool> {
    match raw.first() {
        Some(&TAG_TOMBSTONE) => Ok(true),
        Some(&TAG_VALUE) => Ok(false),
        _ => Err(corrupt(format!("bad version value tag: {raw:x?}"))),
    }
}

fn encode_intent_value(txn: &TxnMeta, value: Option<&[u8]>, lock_only: bool) -> Vec<u8> {
    let mut buf =
        Vec::with_capacity(INTENT_HEADER_LEN + 5 + txn.anchor.len() + value.map_or(0, <[u8]>::len));
    buf.push(if lock_only {
        INTENT_FORMAT_LOCK
    } else {
        INTENT_FORMAT_ANCHORED
    });
    buf.extend_from_slice(&txn.id);
    buf.extend_from_slice(&txn.timestamp.wall.to_be_bytes());
    buf.extend_from_slice(&txn.timestamp.logical.to_be_bytes());
    buf.extend_from_slice(&(txn.anchor.len() as u32).to_be_bytes());
    buf.extend_from_slice(&txn.anchor);
    encode_value(&mut buf, value);
    buf
}

fn decode_intent_value(key: Vec<u8>, raw: &[u8]) -> MvccResult<Intent> {
    let bad = || corrupt(format!("bad intent for key {key:x?}"));
    if raw.len() < INTENT_HEADER_LEN
        || !matches!(
            raw[0],
            INTENT_FORMAT | INTENT_FORMAT_ANCHORED | INTENT_FORMAT_LOCK
        )
    {
        return Err(bad());
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&raw[1..17]);
    let mut wall = [0u8; 8];
    wall.copy_from_slice(&raw[17..25]);
    let mut logical = [0u8; 4];
    logical.copy_from_slice(&raw[25..29]);
    let mut rest = &raw[INTENT_HEADER_LEN..];
    let mut anchor = Vec::new();
    if raw[0] != INTENT_FORMAT {
        let len = rest.get(..4).ok_or_else(bad)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        anchor = rest.get(4..4 + len).ok_or_else(bad)?.to_vec();
        rest = &rest[4 + len..];
    }
    let value = decode_value(rest)?;
    Ok(Intent {
        key,
        txn: TxnMeta {
            id,
            timestamp: Timestamp::new(u64::from_be_bytes(wall), u32::from_be_bytes(logical)),
            anchor,
        },
        value,
        lock_only: raw[0] == INTENT_FORMAT_LOCK,
    })
}

fn decode_intent(engine_key: &[u8], raw: &[u8]) -> MvccResult<Intent> {
    decode_intent_value(decode_intent_key(engine_key)?, raw)
}

/// Engine key bounds covering every version, every intent and every
/// transaction record anchored at the user keys in `[start, end)` (empty
/// `end`: unbounded): `[versions, intents, records]`, each `(lo, hi)`
/// half-open. Use them to copy a range into a snapshot or to clear it.
pub fn engine_span(start: &[u8], end: &[u8]) -> [(Vec<u8>, Vec<u8>); 3] {
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
        (bound(TXN_RECORD_PREFIX, start), hi(TXN_RECORD_PREFIX)),
    ]
}

/// The byte that ends a [`resolved_marker_key`] (a record key has none).
const RESOLVED_MARKER: u8 = b'w';

/// The engine key of the record of transaction `id` anchored at `anchor`:
/// it sorts with the anchor key, so it lives on (and moves with) the range
/// holding that key.
pub fn txn_record_key(anchor: &[u8], id: &[u8; 16]) -> Vec<u8> {
    let mut k = vec![TXN_RECORD_PREFIX];
    encoding::encode_bytes(&mut k, anchor);
    k.extend_from_slice(id);
    k
}

/// The newest committed version of a user key in `[start, end)` whose
/// timestamp is in `(above, upto]`, if any: a read at `above` with an
/// uncertainty limit of `upto` cannot tell whether such a write happened
/// before it. Also used to check that reads are still valid at a later
/// timestamp (a refresh).
pub fn newest_in_window(
    engine: &dyn Engine,
    start: &[u8],
    end: &[u8],
    above: Timestamp,
    upto: Timestamp,
) -> MvccResult<Option<(Vec<u8>, Timestamp)>> {
    if upto <= above || (!end.is_empty() && start >= end) {
        return Ok(None);
    }
    if let Some(key) = point_span(start, end) {
        // Versions are newest first: the first one at or below `upto`
        // decides.
        let ek = encode_key(key);
        return match first_version(engine, &version_key_enc(&ek, upto), &group_end(&ek))? {
            Some((k, _)) => {
                let (_, ts) = split_version_key(&k)?;
                Ok((ts > above).then(|| (key.to_vec(), ts)))
            }
            None => Ok(None),
        };
    }
    let [(lo, hi), _, _] = engine_span(start, end);
    let mut c = Cursor::open(engine, lo, hi, false)?;
    let mut found: Option<(Vec<u8>, Timestamp)> = None;
    // The key whose versions are passing by, how many did, and whether its
    // newest version at or below `upto` was seen (the rest do not matter).
    let (mut current, mut seen, mut settled) = (Vec::new(), 0usize, false);
    while let Some((k, _)) = c.next()? {
        let (ek, ts) = split_version_key(&k)?;
        if ek != current.as_slice() {
            (current, seen, settled) = (ek.to_vec(), 0, false);
        }
        seen += 1;
        if settled || ts > upto {
            // A key with many versions: jump over them instead.
            if seen > SEEK_AFTER_VERSIONS {
                let to = if settled {
                    group_end(&current)
                } else {
                    version_key_enc(&current, upto)
                };
                c.seek(to)?;
                seen = 0;
            }
            continue;
        }
        settled = true;
        if ts > above && found.as_ref().is_none_or(|(_, f)| ts > *f) {
            found = Some((decode_user_key(ek)?, ts));
        }
    }
    Ok(found)
}

/// Versions of one key a scan steps over before it seeks past the rest.
const SEEK_AFTER_VERSIONS: usize = 16;

/// The key of `[start, end)` if the span holds exactly one key
/// (`end` is `start` followed by a zero byte).
fn point_span<'k>(start: &'k [u8], end: &[u8]) -> Option<&'k [u8]> {
    (end.len() == start.len() + 1 && end.starts_with(start) && end.last() == Some(&0))
        .then_some(start)
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
    if let Some(key) = point_span(start, end) {
        // A point lookup: an intent key rewritten often has many
        // superseded entries in the engine, which a scan steps through.
        return Ok(get_intent(engine, key)?.into_iter().collect());
    }
    let [_, (lo, hi), _] = engine_span(start, end);
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

/// The newest version of the key encoded as `ek`, tombstones included
/// (`Some(None)`: it has no version), from the engine's
/// [`NewestVersionCache`] or read into it; `None` if the engine keeps no
/// cache, or (`fill` false) on a miss.
fn cached_newest(
    engine: &dyn Engine,
    ek: &[u8],
    fill: bool,
) -> MvccResult<Option<Option<NewestVersion>>> {
    let Some(cache) = engine.newest_versions() else {
        return Ok(None);
    };
    let ticket = match cache.lookup(ek) {
        Lookup::Hit(newest) => return Ok(Some(newest)),
        Lookup::Miss(_) if !fill => return Ok(None),
        Lookup::Miss(ticket) => ticket,
    };
    let newest = match first_version(engine, &group_start(ek), &group_end(ek))? {
        None => None,
        Some((k, v)) => Some(NewestVersion {
            ts: split_version_key(&k)?.1,
            value: decode_value(&v)?,
        }),
    };
    cache.fill(ticket, ek, newest.clone());
    Ok(Some(newest))
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
    match cached_newest(engine, &ek, true)? {
        Some(None) => return Ok(None),
        Some(Some(v)) if v.ts <= ts => return Ok(Some((v.ts, v.value))),
        // No cache, or versions above `ts`: seek below them.
        _ => {}
    }
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
    // No uncertainty window: nothing can be uncertain.
    match get_within(engine, key, read_ts, read_ts, txn)? {
        PointRead::Value(v) => Ok(v),
        PointRead::Uncertain(ts) => Err(MvccError::Corruption(format!(
            "a version at {ts} above a read without uncertainty"
        ))),
    }
}

/// What a point read with an uncertainty window finds.
#[derive(Debug, PartialEq)]
pub enum PointRead {
    /// The value `get` at the read timestamp returns.
    Value(Option<Vec<u8>>),
    /// A version above the read timestamp but within the uncertainty
    /// limit, at this timestamp: it may have happened before the read.
    Uncertain(Timestamp),
}

/// [`get`] at `read_ts` for a reader whose clock may lag the writers' by up
/// to `limit`: another transaction's intent at or below `limit` is
/// [`MvccError::WriteIntent`]; a version in `(read_ts, limit]` is
/// [`PointRead::Uncertain`]. One intent lookup and one version seek.
pub fn get_within(
    engine: &dyn Engine,
    key: &[u8],
    read_ts: Timestamp,
    limit: Timestamp,
    txn: Option<&TxnMeta>,
) -> MvccResult<PointRead> {
    let limit = limit.max(read_ts);
    // Intent before versions: should a resolution commit between the two
    // reads, we see the intent (and report it) rather than miss the value.
    if let Some(intent) = read_intent(engine, None, key)?.filter(|i| !i.lock_only) {
        if txn.is_some_and(|t| t.id == intent.txn.id) {
            return Ok(PointRead::Value(intent.value));
        }
        if intent.txn.timestamp <= limit {
            return Err(MvccError::WriteIntent {
                intents: vec![intent],
            });
        }
    }
    match get_version(engine, key, limit)? {
        Some((ts, _)) if ts > read_ts => Ok(PointRead::Uncertain(ts)),
        Some((_, value)) => Ok(PointRead::Value(value)),
        None => Ok(PointRead::Value(None)),
    }
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
    let [(vlo, vhi), (ilo, ihi), _] = engine_span(start, end);
    // Intents before versions, as in `get`.
    let mut intents = Cursor::open(engine, ilo, ihi, reverse)?;
    let mut versions = Cursor::open(engine, vlo, vhi, reverse)?;
    let mut conflicts = Vec::new();
    loop {
        let vk = head_version_part(&versions)?;
        let ik = intents
            .head()
            .map(|(k, _)| intent_user_part(k))
            .transpose()?;
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
                if intent.lock_only {
                    // Readers see through locks.
                } else if txn.is_some_and(|t| t.id == intent.txn.id) {
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
    // No fill on a miss: the write about to happen would drop the entry.
    let mut newest = match cached_newest(engine, &ek, false)? {
        Some(cached) => cached.map(|v| v.ts),
        None => match first_version(engine, &start, &group_end(&ek))? {
            Some((k, _)) => Some(split_version_key(&k)?.1),
            None => None,
        },
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
        if txn.is_none_or(|t| t.id != intent.txn.id) {
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
        Some(t) => batch.put(
            encode_intent_key(key),
            encode_intent_value(t, value.as_deref(), false),
        ),
    }
    Ok(())
}

/// Locks `key` for transaction `txn` with a lock-only intent (see
/// [`Intent::lock_only`]), unless the transaction already holds an intent
/// there. Another transaction's intent is [`MvccError::WriteIntent`].
pub fn lock(
    engine: &dyn Engine,
    batch: &mut WriteBatch,
    key: &[u8],
    txn: &TxnMeta,
) -> MvccResult<()> {
    if let Some(intent) = read_intent(engine, Some(batch), key)? {
        if intent.txn.id != txn.id {
            return Err(MvccError::WriteIntent {
                intents: vec![intent],
            });
        }
        return Ok(());
    }
    batch.put(encode_intent_key(key), encode_intent_value(txn, None, true));
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
    resolve(engine, batch, key, txn_id, commit_ts, false)
}

/// [`resolve_intent`] committing at `commit_ts` while the transaction's
/// record may still be STAGING: a write intent resolved leaves a marker
/// ([`resolved_marker_key`]) that [`has_resolved_marker`] finds, so that a
/// recovery of the record takes the write as in place.
pub fn resolve_intent_leaving_marker(
    engine: &dyn Engine,
    batch: &mut WriteBatch,
    key: &[u8],
    txn_id: [u8; 16],
    commit_ts: Timestamp,
) -> MvccResult<bool> {
    resolve(engine, batch, key, txn_id, Some(commit_ts), true)
}

fn resolve(
    engine: &dyn Engine,
    batch: &mut WriteBatch,
    key: &[u8],
    txn_id: [u8; 16],
    commit_ts: Option<Timestamp>,
    leave_marker: bool,
) -> MvccResult<bool> {
    let Some(intent) = read_intent(engine, Some(batch), key)? else {
        return Ok(false);
    };
    if intent.txn.id != txn_id {
        return Ok(false);
    }
    if let Some(ts) = commit_ts.filter(|_| !intent.lock_only) {
        let mut v = Vec::new();
        encode_value(&mut v, intent.value.as_deref());
        batch.put(encode_version_key(key, ts), v);
        if leave_marker {
            let mut at = Vec::new();
            append_ts(&mut at, ts);
            batch.put(resolved_marker_key(key, &txn_id), at);
        }
    }
    batch.delete(encode_intent_key(key));
    Ok(true)
}

/// The engine key of the marker that [`resolve_intent_leaving_marker`]
/// leaves beside `key` for transaction `id`: in the records keyspace, just
/// after the key of a record of `id` anchored at `key`, so it lives on (and
/// moves with) the range holding `key`.
pub fn resolved_marker_key(key: &[u8], id: &[u8; 16]) -> Vec<u8> {
    let mut k = txn_record_key(key, id);
    k.push(RESOLVED_MARKER);
    k
}

/// Whether transaction `id`'s write of `key` was resolved as committed
/// with a marker (see [`resolve_intent_leaving_marker`]).
pub fn has_resolved_marker(engine: &dyn Engine, key: &[u8], id: &[u8; 16]) -> MvccResult<bool> {
    Ok(engine.get(&resolved_marker_key(key, id))?.is_some())
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
    let [(lo, hi), _, _] = engine_span(start, end);
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::{FjallEngine, MemoryEngine};

    fn ts(wall: u64) -> Timestamp {
        Timestamp::new(wall, 0)
    }

    fn txn(id: u8, wall: u64) -> TxnMeta {
        TxnMeta {
            id: [id; 16],
            timestamp: ts(wall),
            anchor: b"anchor".to_vec(),
        }
    }

    fn val(s: &str) -> Option<Vec<u8>> {
        Some(s.as_bytes().to_vec())
    }

    /// Non-transactional put (or delete with `None`), applied at once.
    fn write(e: &dyn Engine, key: &str, wall: u64, value: Option<&str>) {
        let mut b = WriteBatch::new();
        put(
            e,
            &mut b,
            key.as_bytes(),
            ts(wall),
            value.and_then(val),
            None,
        )
        .unwrap();
        e.write(b, false).unwrap();
    }

    fn write_intent(e: &dyn Engine, key: &str, t: &TxnMeta, value: Option<&str>) {
        let mut b = WriteBatch::new();
        put(
            e,
            &mut b,
            key.as_bytes(),
            t.timestamp,
            value.and_then(val),
            Some(t),
        )
        .unwrap();
        e.write(b, false).unwrap();
    }

    fn resolve(e: &dyn Engine, key: &str, t: &TxnMeta, commit: Option<u64>) -> bool {
        let mut b = WriteBatch::new();
        let found = resolve_intent(e, &mut b, key.as_bytes(), t.id, commit.map(ts)).unwrap();
        e.write(b, false).unwrap();
        found
    }

    fn read(e: &dyn Engine, key: &str, wall: u64) -> Option<String> {
        get(e, key.as_bytes(), ts(wall), None)
            .unwrap()
            .map(|v| String::from_utf8(v).unwrap())
    }

    /// Point reads answered from the engine's newest-version cache follow
    /// every kind of write of the key: a newer version, a committed
    /// intent, a tombstone, garbage collection and a cleared span; reads
    /// below the newest version, and within an uncertainty window, still
    /// see what they must. Both engines keep a cache.
    #[test]
    fn cached_point_reads_follow_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let fjall = FjallEngine::open(dir.path()).unwrap();
        let memory = MemoryEngine::new();
        for e in [&fjall as &dyn Engine, &memory] {
            assert!(e.newest_versions().is_some());
            assert_eq!(read(e, "k", 50), None);
            write(e, "k", 10, Some("a"));
            assert_eq!(read(e, "k", 50), Some("a".into()));
            assert_eq!(read(e, "k", 50), Some("a".into()), "from the cache");
            write(e, "k", 20, Some("b"));
            assert_eq!(read(e, "k", 50), Some("b".into()));
            assert_eq!(read(e, "k", 15), Some("a".into()), "below the newest");
            assert_eq!(read(e, "k", 5), None);
            let window = get_within(e, b"k", ts(15), ts(25), None).unwrap();
            assert_eq!(window, PointRead::Uncertain(ts(20)));
            let t = txn(1, 30);
            write_intent(e, "k", &t, Some("c"));
            assert!(matches!(
                get_within(e, b"k", ts(50), ts(50), None),
                Err(MvccError::WriteIntent { .. })
            ));
            assert_eq!(read(e, "k", 29), Some("b".into()));
            assert!(resolve(e, "k", &t, Some(30)));
            assert_eq!(read(e, "k", 50), Some("c".into()));
            write(e, "k", 40, None);
            assert_eq!(read(e, "k", 50), None);
            assert_eq!(read(e, "k", 35), Some("c".into()));
            let mut b = WriteBatch::new();
            gc(e, &mut b, b"", b"", ts(45)).unwrap();
            e.write(b, false).unwrap();
            assert_eq!(read(e, "k", 50), None);
            write(e, "k", 60, Some("d"));
            assert_eq!(read(e, "k", 70), Some("d".into()));
            let mut b = WriteBatch::new();
            clear_span(e, &mut b, b"", b"").unwrap();
            e.write(b, false).unwrap();
            assert_eq!(read(e, "k", 70), None);
            assert_eq!(
                newest_version_ts(e, &WriteBatch::new(), b"k").unwrap(),
                None
            );
            write(e, "k", 80, Some("e"));
            assert_eq!(
                newest_version_ts(e, &WriteBatch::new(), b"k").unwrap(),
                Some(ts(80))
            );
            assert_eq!(read(e, "k", 90), Some("e".into()));
        }
    }

    fn rows(r: &ScanResult) -> Vec<(String, String)> {
        r.rows
            .iter()
            .map(|(k, v)| {
                (
                    String::from_utf8(k.clone()).unwrap(),
                    String::from_utf8(v.clone()).unwrap(),
                )
            })
            .collect()
    }

    fn scan_all(e: &dyn Engine, wall: u64, reverse: bool) -> Vec<(String, String)> {
        rows(&scan(e, b"", b"", ts(wall), 0, reverse, None).unwrap())
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn intent_keys(err: MvccError) -> Vec<Vec<u8>> {
        match err {
            MvccError::WriteIntent { intents } => intents.into_iter().map(|i| i.key).collect(),
            other => panic!("expected WriteIntent, got {other:?}"),
        }
    }

    #[test]
    fn version_keys_round_trip_and_sort_newest_first() {
        let k1 = encode_version_key(b"a", Timestamp::new(5, 1));
        let k2 = encode_version_key(b"a", Timestamp::new(5, 0));
        let k3 = encode_version_key(b"a", Timestamp::new(4, 9));
        let k4 = encode_version_key(b"a\x00", Timestamp::MAX);
        assert!(k1 < k2 && k2 < k3 && k3 < k4);
        assert_eq!(
            decode_version_key(&k1).unwrap(),
            (b"a".to_vec(), Timestamp::new(5, 1))
        );
        assert_eq!(
            decode_intent_key(&encode_intent_key(b"x\x00y")).unwrap(),
            b"x\x00y".to_vec()
        );
        assert!(decode_version_key(b"\x01a").is_err());
        assert!(decode_version_key(&encode_intent_key(b"a")).is_err());
    }

    #[test]
    fn read_at_old_timestamp_sees_old_version() {
        let e = MemoryEngine::new();
        write(&e, "k", 10, Some("v10"));
        write(&e, "k", 20, Some("v20"));
        assert_eq!(read(&e, "k", 5), None);
        assert_eq!(read(&e, "k", 10), Some("v10".into()));
        assert_eq!(read(&e, "k", 15), Some("v10".into()));
        assert_eq!(read(&e, "k", 20), Some("v20".into()));
        assert_eq!(read(&e, "k", 99), Some("v20".into()));
        // The logical counter orders versions within one millisecond.
        let mut b = WriteBatch::new();
        put(&e, &mut b, b"k", Timestamp::new(30, 2), val("v30.2"), None).unwrap();
        e.write(b, false).unwrap();
        assert_eq!(
            get(&e, b"k", Timestamp::new(30, 1), None).unwrap(),
            val("v20")
        );
        assert_eq!(
            get(&e, b"k", Timestamp::new(30, 2), None).unwrap(),
            val("v30.2")
        );
    }

    #[test]
    fn tombstone_hides_value_and_get_version_reports_it() {
        let e = MemoryEngine::new();
        write(&e, "k", 10, Some("v"));
        write(&e, "k", 20, None);
        write(&e, "k", 30, Some("back"));
        assert_eq!(read(&e, "k", 25), None);
        assert_eq!(read(&e, "k", 30), Some("back".into()));
        assert_eq!(get_version(&e, b"k", ts(25)).unwrap(), Some((ts(20), None)));
        assert_eq!(get_version(&e, b"k", ts(9)).unwrap(), None);
        assert_eq!(scan_all(&e, 25, false), vec![]);
    }

    #[test]
    fn scan_forward_and_reverse_at_various_timestamps() {
        let e = MemoryEngine::new();
        write(&e, "a", 10, Some("a10"));
        write(&e, "b", 10, Some("b10"));
        write(&e, "b", 20, Some("b20"));
        write(&e, "c", 20, Some("c20"));
        write(&e, "a", 30, None);
        // A key with many versions exercises the seeking paths.
        for w in 1..50 {
            write(&e, "m", w, Some(&format!("m{w}")));
        }
        let at15 = pairs(&[("a", "a10"), ("b", "b10"), ("m", "m15")]);
        assert_eq!(scan_all(&e, 15, false), at15);
        let mut rev = at15.clone();
        rev.reverse();
        assert_eq!(scan_all(&e, 15, true), rev);
        let at30 = pairs(&[("b", "b20"), ("c", "c20"), ("m", "m30")]);
        assert_eq!(scan_all(&e, 30, false), at30);
        let mut rev = at30.clone();
        rev.reverse();
        assert_eq!(scan_all(&e, 30, true), rev);
        assert_eq!(scan_all(&e, 0, false), vec![]);
        // Bounded spans.
        let r = scan(&e, b"b", b"m", ts(30), 0, false, None).unwrap();
        assert_eq!(rows(&r), pairs(&[("b", "b20"), ("c", "c20")]));
        let r = scan(&e, b"b", b"m", ts(30), 0, true, None).unwrap();
        assert_eq!(rows(&r), pairs(&[("c", "c20"), ("b", "b20")]));
        let r = scan(&e, b"m", b"b", ts(30), 0, true, None).unwrap();
        assert!(r.rows.is_empty());
    }

    #[test]
    fn write_at_or_below_newest_version_is_too_old() {
        let e = MemoryEngine::new();
        write(&e, "k", 10, Some("v"));
        let mut b = WriteBatch::new();
        for w in [5, 10] {
            match put(&e, &mut b, b"k", ts(w), val("x"), None) {
                Err(MvccError::WriteTooOld { key, existing }) => {
                    assert_eq!(key, b"k".to_vec());
                    assert_eq!(existing, ts(10));
                }
                other => panic!("expected WriteTooOld, got {other:?}"),
            }
        }
        // A transaction below the newest version is too old as well.
        let t = txn(1, 10);
        assert!(matches!(
            put(&e, &mut b, b"k", t.timestamp, val("x"), Some(&t)),
            Err(MvccError::WriteTooOld { .. })
        ));
        // A version already in the batch counts.
        put(&e, &mut b, b"k", ts(11), val("x"), None).unwrap();
        assert!(matches!(
            put(&e, &mut b, b"k", ts(11), val("y"), None),
            Err(MvccError::WriteTooOld { existing, .. }) if existing == ts(11)
        ));
        assert!(b.len() == 1);
    }

    #[test]
    fn intent_blocks_other_readers_at_or_above_its_timestamp() {
        let e = MemoryEngine::new();
        write(&e, "k", 10, Some("old"));
        let t = txn(1, 20);
        write_intent(&e, "k", &t, Some("new"));
        assert_eq!(
            intent_keys(get(&e, b"k", ts(20), None).unwrap_err()),
            vec![b"k".to_vec()]
        );
        let other = txn(2, 25);
        assert!(get(&e, b"k", ts(25), Some(&other)).is_err());
        // Below the intent, it is invisible.
        assert_eq!(read(&e, "k", 19), Some("old".into()));
        let r = scan(&e, b"", b"", ts(19), 0, false, None).unwrap();
        assert_eq!(rows(&r), pairs(&[("k", "old")]));
        // The intent itself.
        let i = get_intent(&e, b"k").unwrap().unwrap();
        assert_eq!((i.key, i.txn, i.value), (b"k".to_vec(), t, val("new")));
    }

    #[test]
    fn own_intent_is_visible_to_its_txn() {
        let e = MemoryEngine::new();
        write(&e, "a", 10, Some("a10"));
        write(&e, "b", 10, Some("b10"));
        let t = txn(1, 20);
        write_intent(&e, "a", &t, Some("mine"));
        write_intent(&e, "b", &t, None);
        write_intent(&e, "c", &t, Some("new"));
        // Even when reading below the intent's timestamp.
        for read_ts in [ts(5), ts(20), ts(30)] {
            assert_eq!(get(&e, b"a", read_ts, Some(&t)).unwrap(), val("mine"));
            assert_eq!(get(&e, b"b", read_ts, Some(&t)).unwrap(), None);
            let fwd = scan(&e, b"", b"", read_ts, 0, false, Some(&t)).unwrap();
            assert_eq!(rows(&fwd), pairs(&[("a", "mine"), ("c", "new")]));
            let rev = scan(&e, b"", b"", read_ts, 0, true, Some(&t)).unwrap();
            assert_eq!(rows(&rev), pairs(&[("c", "new"), ("a", "mine")]));
        }
    }

    #[test]
    fn intent_blocks_other_writers() {
        let e = MemoryEngine::new();
        let t1 = txn(1, 20);
        write_intent(&e, "k", &t1, Some("t1"));
        let mut b = WriteBatch::new();
        let t2 = txn(2, 30);
        assert_eq!(
            intent_keys(put(&e, &mut b, b"k", ts(30), val("x"), Some(&t2)).unwrap_err()),
            vec![b"k".to_vec()]
        );
        assert!(matches!(
            put(&e, &mut b, b"k", ts(30), val("x"), None),
            Err(MvccError::WriteIntent { .. })
        ));
        assert!(b.is_empty());
        // The owner may rewrite it, at a pushed timestamp too.
        let pushed = txn(1, 25);
        write_intent(&e, "k", &pushed, Some("t1 again"));
        let i = get_intent(&e, b"k").unwrap().unwrap();
        assert_eq!((i.txn.timestamp, i.value), (ts(25), val("t1 again")));
    }

    #[test]
    fn commit_intent_makes_value_visible_at_commit_ts() {
        let e = MemoryEngine::new();
        write(&e, "k", 10, Some("old"));
        let t = txn(1, 20);
        write_intent(&e, "k", &t, Some("new"));
        assert!(resolve(&e, "k", &t, Some(22)));
        assert_eq!(get_intent(&e, b"k").unwrap(), None);
        assert_eq!(read(&e, "k", 21), Some("old".into()));
        assert_eq!(read(&e, "k", 22), Some("new".into()));
        // A committed deletion.
        let t = txn(2, 30);
        write_intent(&e, "k", &t, None);
        assert!(resolve(&e, "k", &t, Some(30)));
        assert_eq!(read(&e, "k", 30), None);
        assert_eq!(get_version(&e, b"k", ts(30)).unwrap(), Some((ts(30), None)));
    }

    #[test]
    fn abort_intent_removes_it() {
        let e = MemoryEngine::new();
        write(&e, "k", 10, Some("old"));
        let t = txn(1, 20);
        write_intent(&e, "k", &t, Some("new"));
        assert!(resolve(&e, "k", &t, None));
        assert_eq!(get_intent(&e, b"k").unwrap(), None);
        assert_eq!(read(&e, "k", 30), Some("old".into()));
        assert_eq!(
            get_version(&e, b"k", Timestamp::MAX).unwrap(),
            Some((ts(10), val("old")))
        );
    }

    #[test]
    fn a_lock_blocks_writers_not_readers_and_commits_to_nothing() {
        let e = MemoryEngine::new();
        write(&e, "k", 10, Some("old"));
        let t = txn(1, 20);
        let mut b = WriteBatch::new();
        lock(&e, &mut b, b"k", &t).unwrap();
        e.write(b, false).unwrap();
        let held = get_intent(&e, b"k").unwrap().expect("lock");
        assert!(held.lock_only);
        // Readers (its own transaction included) see the committed value.
        assert_eq!(read(&e, "k", 30), Some("old".into()));
        assert_eq!(get(&e, b"k", ts(30), Some(&t)).unwrap(), val("old"));
        let rows = scan(&e, b"a", b"z", ts(30), 0, false, None).unwrap();
        assert_eq!(rows.rows.len(), 1);
        // Other writers and lockers conflict.
        let other = txn(2, 25);
        let mut b = WriteBatch::new();
        assert!(matches!(
            put(&e, &mut b, b"k", other.timestamp, val("x"), Some(&other)),
            Err(MvccError::WriteIntent { .. })
        ));
        assert!(matches!(
            lock(&e, &mut b, b"k", &other),
            Err(MvccError::WriteIntent { .. })
        ));
        // Locking again is a no-op; writing turns the lock into an intent.
        let mut b = WriteBatch::new();
        lock(&e, &mut b, b"k", &t).unwrap();
        assert!(b.is_empty());
        write_intent(&e, "k", &t, Some("new"));
        assert!(!get_intent(&e, b"k").unwrap().unwrap().lock_only);
        assert!(resolve(&e, "k", &t, Some(40)));
        assert_eq!(read(&e, "k", 40), Some("new".into()));
        // A lock resolved as committed leaves no version behind.
        let t3 = txn(3, 50);
        let mut b = WriteBatch::new();
        lock(&e, &mut b, b"k", &t3).unwrap();
        e.write(b, false).unwrap();
        assert!(resolve(&e, "k", &t3, Some(60)));
        assert_eq!(get_intent(&e, b"k").unwrap(), None);
        assert_eq!(
            get_version(&e, b"k", Timestamp::MAX).unwrap(),
            Some((ts(40), val("new")))
        );
    }

    #[test]
    fn resolve_without_matching_intent_does_nothing() {
        let e = MemoryEngine::new();
        let t1 = txn(1, 20);
        assert!(!resolve(&e, "k", &t1, Some(20)));
        write_intent(&e, "k", &t1, Some("v"));
        let t2 = txn(2, 20);
        let mut b = WriteBatch::new();
        assert!(!resolve_intent(&e, &mut b, b"k", t2.id, Some(ts(20))).unwrap());
        assert!(b.is_empty());
        assert!(get_intent(&e, b"k").unwrap().is_some());
    }

    #[test]
    fn a_resolution_leaving_a_marker_is_found_by_it_and_kept_with_the_key() {
        let e = MemoryEngine::new();
        let (t, other) = (txn(1, 20), txn(2, 20));
        write_intent(&e, "k", &t, Some("v"));
        // A lock is not a write: no marker.
        let mut b = WriteBatch::new();
        lock(&e, &mut b, b"l", &t).unwrap();
        e.write(b, false).unwrap();
        let mut b = WriteBatch::new();
        assert!(resolve_intent_leaving_marker(&e, &mut b, b"k", t.id, ts(20)).unwrap());
        assert!(resolve_intent_leaving_marker(&e, &mut b, b"l", t.id, ts(20)).unwrap());
        e.write(b, false).unwrap();
        assert_eq!(read(&e, "k", 20).as_deref(), Some("v"));
        assert!(has_resolved_marker(&e, b"k", &t.id).unwrap());
        assert!(!has_resolved_marker(&e, b"l", &t.id).unwrap());
        assert!(!has_resolved_marker(&e, b"k", &other.id).unwrap());
        // The marker sorts with its key: a range's span holds it.
        let [_, _, (lo, hi)] = engine_span(b"k", b"k\0");
        let marker = resolved_marker_key(b"k", &t.id);
        assert!(lo <= marker && marker < hi);
        let [_, _, (lo, hi)] = engine_span(b"a", b"k");
        assert!(!(lo <= marker && marker < hi));
    }

    #[test]
    fn intent_and_its_resolution_can_share_a_batch() {
        // One-phase commit: write intents and commit them in one batch.
        let e = MemoryEngine::new();
        let t = txn(1, 20);
        let mut b = WriteBatch::new();
        put(&e, &mut b, b"a", t.timestamp, val("1"), Some(&t)).unwrap();
        put(&e, &mut b, b"b", t.timestamp, val("2"), Some(&t)).unwrap();
        // Another writer sees the intent in the batch.
        assert!(matches!(
            put(&e, &mut b, b"a", ts(30), val("x"), None),
            Err(MvccError::WriteIntent { .. })
        ));
        assert!(resolve_intent(&e, &mut b, b"a", t.id, Some(ts(20))).unwrap());
        assert!(resolve_intent(&e, &mut b, b"b", t.id, Some(ts(20))).unwrap());
        // Resolved in the batch: a second resolution finds nothing.
        assert!(!resolve_intent(&e, &mut b, b"a", t.id, Some(ts(20))).unwrap());
        e.write(b, false).unwrap();
        assert_eq!(scan_all(&e, 20, false), pairs(&[("a", "1"), ("b", "2")]));
        assert!(scan_intents(&e, b"", b"", 0).unwrap().is_empty());
    }

    #[test]
    fn scan_reports_every_conflicting_intent() {
        let e = MemoryEngine::new();
        write(&e, "a", 10, Some("a"));
        write_intent(&e, "b", &txn(1, 15), Some("x"));
        write(&e, "c", 10, Some("c"));
        write_intent(&e, "d", &txn(2, 12), None);
        write_intent(&e, "e", &txn(3, 50), Some("later"));
        for reverse in [false, true] {
            let err = scan(&e, b"", b"", ts(20), 0, reverse, None).unwrap_err();
            let mut keys = intent_keys(err);
            keys.sort();
            assert_eq!(keys, vec![b"b".to_vec(), b"d".to_vec()]);
        }
        // Outside the scanned span, or above read_ts, intents do not matter.
        let r = scan(&e, b"c", b"d", ts(20), 0, false, None).unwrap();
        assert_eq!(rows(&r), pairs(&[("c", "c")]));
        let r = scan(&e, b"", b"", ts(11), 0, false, None).unwrap();
        assert_eq!(rows(&r), pairs(&[("a", "a"), ("c", "c")]));
        // Beyond the limit, they do not either.
        let r = scan(&e, b"", b"", ts(20), 1, false, None).unwrap();
        assert_eq!(rows(&r), pairs(&[("a", "a")]));
        assert_eq!(r.resume_key, Some(b"b".to_vec()));
        assert_eq!(scan_intents(&e, b"", b"", 0).unwrap().len(), 3);
        assert_eq!(
            scan_intents(&e, b"c", b"", 1).unwrap()[0].key,
            b"d".to_vec()
        );
    }

    #[test]
    fn scan_limit_sets_resume_key() {
        let e = MemoryEngine::new();
        for k in ["a", "b", "c", "d"] {
            write(&e, k, 10, Some(k));
        }
        write(&e, "e", 10, None);
        let r = scan(&e, b"", b"", ts(10), 2, false, None).unwrap();
        assert_eq!(rows(&r), pairs(&[("a", "a"), ("b", "b")]));
        assert_eq!(r.resume_key, Some(b"c".to_vec()));
        let r = scan(&e, b"c", b"", ts(10), 2, false, None).unwrap();
        assert_eq!(rows(&r), pairs(&[("c", "c"), ("d", "d")]));
        assert_eq!(r.resume_key, None, "only a tombstone is left");
        let r = scan(&e, b"", b"", ts(10), 3, true, None).unwrap();
        assert_eq!(rows(&r), pairs(&[("d", "d"), ("c", "c"), ("b", "b")]));
        assert_eq!(r.resume_key, Some(b"a\x00".to_vec()));
        let r = scan(&e, b"", b"a\x00", ts(10), 3, true, None).unwrap();
        assert_eq!(rows(&r), pairs(&[("a", "a")]));
        assert_eq!(r.resume_key, None);
    }

    #[test]
    fn gc_keeps_what_reads_at_threshold_see() {
        let e = MemoryEngine::new();
        for w in [10, 20, 30, 40] {
            write(&e, "k", w, Some(&format!("k{w}")));
        }
        write(&e, "t", 10, Some("t10"));
        write(&e, "t", 20, None);
        write(&e, "u", 10, None);
        write_intent(&e, "k", &txn(1, 50), Some("intent"));
        let mut b = WriteBatch::new();
        let stats = gc(&e, &mut b, b"", b"", ts(25)).unwrap();
        e.write(b, false).unwrap();
        assert_eq!(stats.keys, 3);
        assert_eq!(stats.versions_deleted, 4, "k@10, t@20, t@10, u@10");
        assert!(stats.bytes_deleted > 0);
        assert_eq!(read(&e, "k", 25), Some("k20".into()));
        assert_eq!(read(&e, "k", 35), Some("k30".into()));
        assert_eq!(get_version(&e, b"k", ts(15)).unwrap(), None);
        assert_eq!(read(&e, "t", 25), None);
        assert_eq!(get_version(&e, b"t", Timestamp::MAX).unwrap(), None);
        assert_eq!(get_version(&e, b"u", Timestamp::MAX).unwrap(), None);
        assert!(get_intent(&e, b"k").unwrap().is_some());
        // Running it again finds nothing more to do.
        let mut b = WriteBatch::new();
        assert_eq!(
            gc(&e, &mut b, b"", b"", ts(25)).unwrap().versions_deleted,
            0
        );
        assert!(b.is_empty());
    }

    #[test]
    fn versions_in_an_uncertainty_window_are_found() {
        let e = MemoryEngine::new();
        write(&e, "a", 10, Some("a10"));
        write(&e, "b", 20, Some("b20"));
        write(&e, "b", 30, None);
        write(&e, "c", 40, Some("c40"));
        let w = |lo, hi| newest_in_window(&e, b"a", b"c", ts(lo), ts(hi)).unwrap();
        assert_eq!(w(10, 19), None, "window (10, 19] holds nothing");
        assert_eq!(w(10, 20), Some((b"b".to_vec(), ts(20))));
        // Tombstones are writes too; the newest in the window wins.
        assert_eq!(w(5, 35), Some((b"b".to_vec(), ts(30))));
        // `end` is exclusive: c at 40 is outside [a, c).
        assert_eq!(w(30, 99), None);
    }

    #[test]
    fn windows_over_keys_with_many_versions_match_every_version() {
        let e = MemoryEngine::new();
        // b has far more versions than a scan steps over before seeking.
        let mut written: Vec<(&str, u64)> = vec![("a", 5), ("a", 50), ("c", 7)];
        for t in (10..=200).step_by(3) {
            written.push(("b", t));
        }
        written.push(("ba", 102));
        for (k, t) in &written {
            write(&e, k, *t, Some("v"));
        }
        let expected = |start: &str, end: &str, above: u64, upto: u64| {
            written
                .iter()
                .filter(|(k, t)| *k >= start && *k < end && *t > above && *t <= upto)
                // Only the newest version at or below `upto` of each key
                // counts; the window is then checked against it.
                .filter(|(k, t)| {
                    !written
                        .iter()
                        .any(|(k2, t2)| k2 == k && t2 > t && *t2 <= upto)
                })
                .max_by_key(|(_, t)| *t)
                .map(|(k, t)| (k.as_bytes().to_vec(), ts(*t)))
        };
        for (above, upto) in [
            (0, 4),
            (0, 300),
            (11, 12),
            (13, 15),
            (99, 101),
            (150, 160),
            (199, 400),
        ] {
            for (start, end) in [
                ("a", "d"),
                ("b", "c"),
                ("a", "b"),
                ("b", "b\0"),
                ("ba", "ba\0"),
            ] {
                assert_eq!(
                    newest_in_window(&e, start.as_bytes(), end.as_bytes(), ts(above), ts(upto))
                        .unwrap(),
                    expected(start, end, above, upto),
                    "[{start}, {end}) in ({above}, {upto}]"
                );
            }
        }
    }

    #[test]
    fn point_reads_see_their_uncertainty_window() {
        let e = MemoryEngine::new();
        write(&e, "k", 10, Some("v10"));
        write(&e, "k", 20, Some("v20"));
        let v = |s: &str| PointRead::Value(val(s));
        assert_eq!(
            get_within(&e, b"k", ts(15), ts(15), None).unwrap(),
            v("v10")
        );
        assert_eq!(
            get_within(&e, b"k", ts(15), ts(19), None).unwrap(),
            v("v10")
        );
        assert_eq!(
            get_within(&e, b"k", ts(15), ts(25), None).unwrap(),
            PointRead::Uncertain(ts(20))
        );
        assert_eq!(
            get_within(&e, b"k", ts(25), ts(40), None).unwrap(),
            v("v20")
        );
        assert_eq!(
            get_within(&e, b"k", ts(5), ts(9), None).unwrap(),
            PointRead::Value(None)
        );
        assert_eq!(
            get_within(&e, b"j", ts(50), ts(60), None).unwrap(),
            PointRead::Value(None)
        );
        // Another transaction's intent: in the way up to the limit.
        let other = txn(2, 30);
        write_intent(&e, "k", &other, Some("v30"));
        assert!(matches!(
            get_within(&e, b"k", ts(25), ts(30), None),
            Err(MvccError::WriteIntent { .. })
        ));
        assert_eq!(
            get_within(&e, b"k", ts(25), ts(29), None).unwrap(),
            v("v20")
        );
        // Its own intent is what the writer reads.
        assert_eq!(
            get_within(&e, b"k", ts(25), ts(40), Some(&other)).unwrap(),
            v("v30")
        );
    }

    #[test]
    fn point_spans_find_their_intent() {
        let e = MemoryEngine::new();
        write_intent(&e, "k", &txn(1, 10), Some("v"));
        write_intent(&e, "k1", &txn(2, 10), Some("v"));
        let found = scan_intents(&e, b"k", b"k\0", 0).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].txn, txn(1, 10));
        assert!(scan_intents(&e, b"j", b"j\0", 0).unwrap().is_empty());
        assert_eq!(scan_intents(&e, b"k", b"l", 0).unwrap().len(), 2);
    }

    #[test]
    fn intents_carry_their_record_anchor_and_records_sort_with_it() {
        let e = MemoryEngine::new();
        let mut b = WriteBatch::new();
        let meta = txn(7, 10);
        put(&e, &mut b, b"k", ts(10), val("v"), Some(&meta)).unwrap();
        e.write(b, false).unwrap();
        let intent = get_intent(&e, b"k").unwrap().unwrap();
        assert_eq!(intent.txn, meta);
        assert_eq!(intent.txn.anchor, b"anchor".to_vec());
        let [_, _, (lo, hi)] = engine_span(b"a", b"b");
        let rec = txn_record_key(b"anchor", &meta.id);
        assert!(rec >= lo && rec < hi, "a record lives in its anchor's span");
        let [_, _, (lo, hi)] = engine_span(b"b", b"");
        assert!(!(rec >= lo && rec < hi));
    }

    #[test]
    fn engine_span_covers_exactly_the_user_span() {
        let e = MemoryEngine::new();
        for k in ["a", "b", "b\x00", "c"] {
            write(&e, k, 10, Some(k));
            write_intent(&e, k, &txn(1, 20), Some(k));
        }
        e.write(
            {
                let mut b = WriteBatch::new();
                b.put(b"\x00local".to_vec(), b"x".to_vec());
                b
            },
            false,
        )
        .unwrap();
        let mut found = Vec::new();
        for (lo, hi) in engine_span(b"b", b"c") {
            for item in e.scan(&lo, &hi, false).unwrap() {
                let (k, _) = item.unwrap();
                found.push(match k[0] {
                    MVCC_PREFIX => decode_version_key(&k).unwrap().0,
                    _ => decode_intent_key(&k).unwrap(),
                });
            }
        }
        assert_eq!(
            found,
            vec![
                b"b".to_vec(),
                b"b\x00".to_vec(),
                b"b".to_vec(),
                b"b\x00".to_vec()
            ]
        );
        let mut b = WriteBatch::new();
        assert_eq!(clear_span(&e, &mut b, b"b", b"c").unwrap(), 4);
        e.write(b, false).unwrap();
        let r = scan(&e, b"", b"", ts(15), 0, false, None).unwrap();
        assert_eq!(rows(&r), pairs(&[("a", "a"), ("c", "c")]));
        assert_eq!(e.get(b"\x00local").unwrap(), Some(b"x".to_vec()));
    }

    #[test]
    fn corrupt_data_is_an_error_not_a_panic() {
        let e = MemoryEngine::new();
        let mut b = WriteBatch::new();
        b.put(encode_version_key(b"v", ts(10)), vec![7, 1, 2]);
        b.put(encode_intent_key(b"i"), vec![1, 2, 3]);
        b.put(vec![MVCC_PREFIX, b'x'], vec![1]);
        e.write(b, false).unwrap();
        assert!(matches!(
            get(&e, b"v", ts(10), None),
            Err(MvccError::Corruption(_))
        ));
        assert!(matches!(
            get(&e, b"i", ts(10), None),
            Err(MvccError::Corruption(_))
        ));
        assert!(matches!(
            scan(&e, b"", b"", ts(10), 0, false, None),
            Err(MvccError::Corruption(_))
        ));
        assert!(matches!(
            scan(&e, b"", b"", ts(10), 0, true, None),
            Err(MvccError::Corruption(_))
        ));
        let mut b = WriteBatch::new();
        assert!(gc(&e, &mut b, b"", b"", ts(20)).is_err());
    }

    #[test]
    fn mvcc_on_fjall_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let t = txn(1, 30);
        {
            let e = FjallEngine::open(dir.path()).unwrap();
            write(&e, "a", 10, Some("a10"));
            write(&e, "a", 20, Some("a20"));
            write(&e, "b", 10, Some("b10"));
            write_intent(&e, "c", &t, Some("c30"));
            e.sync().unwrap();
        }
        let e = FjallEngine::open(dir.path()).unwrap();
        assert_eq!(read(&e, "a", 15), Some("a10".into()));
        assert_eq!(scan_all(&e, 25, true), pairs(&[("b", "b10"), ("a", "a20")]));
        assert!(get(&e, b"c", ts(30), None).is_err());
        assert!(resolve(&e, "c", &t, Some(31)));
        assert_eq!(
            scan_all(&e, 31, false),
            pairs(&[("a", "a20"), ("b", "b10"), ("c", "c30")])
        );
    }

    // -----------------------------------------------------------------------
    // Model-based property tests.

    /// A random history: versions and intents of a few short keys.
    #[derive(Debug, Clone)]
    struct History {
        versions: Vec<(Vec<u8>, Timestamp, Option<Vec<u8>>)>,
        /// key -> (txn id byte, timestamp, value)
        intents: Vec<ModelIntent>,
    }

    /// An intent of a history: key, txn id byte, timestamp, value.
    type ModelIntent = (Vec<u8>, u8, Timestamp, Option<Vec<u8>>);
    /// Rows, or the keys of conflicting intents.
    type ModelScan = std::result::Result<Vec<(Vec<u8>, Vec<u8>)>, Vec<Vec<u8>>>;

    fn key_strategy() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![Just(0u8), Just(1u8), Just(b'a'), Just(b'b')],
            0..3,
        )
    }

    fn ts_strategy() -> impl Strategy<Value = Timestamp> {
        (1u64..8, 0u32..3).prop_map(|(w, l)| Timestamp::new(w, l))
    }

    fn value_strategy() -> impl Strategy<Value = Option<Vec<u8>>> {
        prop_oneof![
            1 => Just(None),
            3 => prop::collection::vec(any::<u8>(), 0..3).prop_map(Some),
        ]
    }

    fn history(with_intents: bool) -> impl Strategy<Value = History> {
        let versions =
            prop::collection::vec((key_strategy(), ts_strategy(), value_strategy()), 0..60);
        let n_intents = if with_intents { 0..5usize } else { 0..1usize };
        let intents = prop::collection::vec(
            (key_strategy(), 1u8..3, ts_strategy(), value_strategy()),
            n_intents,
        )
        .prop_map(move |v| if with_intents { v } else { Vec::new() });
        (versions, intents).prop_map(|(versions, intents)| History { versions, intents })
    }

    type Model = BTreeMap<Vec<u8>, (BTreeMap<Timestamp, Option<Vec<u8>>>, Option<Intent>)>;

    /// Writes `h` directly (bypassing conflict checks) and returns the model.
    fn load(e: &dyn Engine, h: &History) -> Model {
        let mut model = Model::new();
        let mut b = WriteBatch::new();
        for (k, t, v) in &h.versions {
            let mut raw = Vec::new();
            encode_value(&mut raw, v.as_deref());
            b.put(encode_version_key(k, *t), raw);
            model.entry(k.clone()).or_default().0.insert(*t, v.clone());
        }
        for (k, id, t, v) in &h.intents {
            let meta = TxnMeta {
                id: [*id; 16],
                timestamp: *t,
                anchor: k.clone(),
            };
            b.put(
                encode_intent_key(k),
                encode_intent_value(&meta, v.as_deref(), false),
            );
            model.entry(k.clone()).or_default().1 = Some(Intent {
                key: k.clone(),
                txn: meta,
                value: v.clone(),
                lock_only: false,
            });
        }
        e.write(b, false).unwrap();
        model
    }

    /// What a scan should return: rows, or the conflicting intents' keys.
    fn model_scan(
        m: &Model,
        start: &[u8],
        end: &[u8],
        read_ts: Timestamp,
        reverse: bool,
        txn: Option<&TxnMeta>,
    ) -> ModelScan {
        let mut rows = Vec::new();
        let mut conflicts = Vec::new();
        for (k, (versions, intent)) in m {
            if k.as_slice() < start || (!end.is_empty() && k.as_slice() >= end) {
                continue;
            }
            let value = match intent {
                Some(i) if txn.is_some_and(|t| t.id == i.txn.id) => i.value.clone(),
                Some(i) if i.txn.timestamp <= read_ts => {
                    conflicts.push(k.clone());
                    continue;
                }
                _ => versions
                    .range(..=read_ts)
                    .next_back()
                    .and_then(|(_, v)| v.clone()),
            };
            if let Some(v) = value {
                rows.push((k.clone(), v));
            }
        }
        if reverse {
            rows.reverse();
        }
        if conflicts.is_empty() {
            Ok(rows)
        } else {
            Err(conflicts)
        }
    }

    fn check_scan(
        e: &dyn Engine,
        m: &Model,
        start: &[u8],
        end: &[u8],
        read_ts: Timestamp,
        reverse: bool,
        txn: Option<&TxnMeta>,
    ) -> std::result::Result<(), TestCaseError> {
        let got = scan(e, start, end, read_ts, 0, reverse, txn);
        match model_scan(m, start, end, read_ts, reverse, txn) {
            Ok(want) => {
                let got = got.map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                prop_assert_eq!(&got.rows, &want);
                prop_assert_eq!(got.resume_key, None);
            }
            Err(mut want) => {
                let mut keys = match got {
                    Err(MvccError::WriteIntent { intents }) => {
                        intents.into_iter().map(|i| i.key).collect::<Vec<_>>()
                    }
                    other => {
                        return Err(TestCaseError::fail(format!(
                            "want conflicts, got {other:?}"
                        )))
                    }
                };
                keys.sort();
                want.sort();
                prop_assert_eq!(keys, want);
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn scan_and_get_match_model(
            h in history(true),
            read_ts in ts_strategy(),
            start in key_strategy(),
            end in key_strategy(),
            reader in 0u8..3,
        ) {
            let e = MemoryEngine::new();
            let m = load(&e, &h);
            let reader = (reader > 0).then_some(TxnMeta {
                id: [reader; 16],
                timestamp: read_ts,
                anchor: Vec::new(),
            });
            for reverse in [false, true] {
                check_scan(&e, &m, b"", b"", read_ts, reverse, reader.as_ref())?;
                check_scan(&e, &m, &start, &end, read_ts, reverse, reader.as_ref())?;
            }
            for k in m.keys() {
                let want = model_scan(&m, k, &keys_next(k), read_ts, false, reader.as_ref());
                match (get(&e, k, read_ts, reader.as_ref()), want) {
                    (Ok(got), Ok(want)) => prop_assert_eq!(got, want.into_iter().next().map(|r| r.1)),
                    (Err(MvccError::WriteIntent { .. }), Err(_)) => {}
                    (got, want) => prop_assert!(false, "get {:?}: {:?} vs {:?}", k, got, want),
                }
            }
        }

        #[test]
        fn scan_pages_concatenate_to_full_scan(
            h in history(false),
            read_ts in ts_strategy(),
            limit in 1usize..4,
            reverse: bool,
        ) {
            let e = MemoryEngine::new();
            load(&e, &h);
            let full = scan(&e, b"", b"", read_ts, 0, reverse, None).unwrap().rows;
            let (mut start, mut end) = (Vec::new(), Vec::new());
            let mut paged = Vec::new();
            for _ in 0..100 {
                let page = scan(&e, &start, &end, read_ts, limit, reverse, None).unwrap();
                prop_assert!(page.rows.len() <= limit);
                paged.extend(page.rows);
                match page.resume_key {
                    None => break,
                    Some(k) if reverse => end = k,
                    Some(k) => start = k,
                }
            }
            prop_assert_eq!(paged, full);
        }

        #[test]
        fn gc_preserves_reads_at_or_above_threshold(
            h in history(true),
            threshold in ts_strategy(),
            probes in prop::collection::vec(ts_strategy(), 1..6),
        ) {
            let e = MemoryEngine::new();
            load(&e, &h);
            let reads = |e: &MemoryEngine, t: Timestamp| {
                (
                    scan(e, b"", b"", t, 0, false, None).map_err(|e| format!("{e:?}")),
                    e.scan(&[LOCK_PREFIX], &[LOCK_PREFIX + 1], false).unwrap().map(|r| r.unwrap()).collect::<Vec<_>>(),
                )
            };
            let probes: Vec<Timestamp> = probes.into_iter().map(|p| p.max(threshold)).chain([threshold, Timestamp::MAX]).collect();
            let before: Vec<_> = probes.iter().map(|t| reads(&e, *t)).collect();
            let mut b = WriteBatch::new();
            let stats = gc(&e, &mut b, b"", b"", threshold).unwrap();
            e.write(b, false).unwrap();
            let after: Vec<_> = probes.iter().map(|t| reads(&e, *t)).collect();
            prop_assert_eq!(before, after);
            // At most one version per key remains at or below the threshold,
            // and it is not a tombstone.
            let mut below: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
            let mut remaining = 0u64;
            for item in e.scan(&[MVCC_PREFIX], &[MVCC_PREFIX + 1], false).unwrap() {
                let (k, v) = item.unwrap();
                remaining += 1;
                let (key, t) = decode_version_key(&k).unwrap();
                if t <= threshold {
                    prop_assert!(!is_tombstone(&v).unwrap());
                    *below.entry(key).or_default() += 1;
                }
            }
            prop_assert!(below.values().all(|n| *n == 1));
            let distinct: std::collections::BTreeSet<_> = h.versions.iter().map(|(k, t, _)| (k.clone(), *t)).collect();
            prop_assert_eq!(remaining + stats.versions_deleted, distinct.len() as u64);
        }

        #[test]
        fn fjall_scans_match_memory(h in history(true), read_ts in ts_strategy(), reverse: bool) {
            let dir = tempfile::tempdir().unwrap();
            let f = FjallEngine::open(dir.path()).unwrap();
            let m = MemoryEngine::new();
            load(&f, &h);
            load(&m, &h);
            let a = scan(&f, b"", b"", read_ts, 0, reverse, None).map_err(|e| format!("{e:?}"));
            let b = scan(&m, b"", b"", read_ts, 0, reverse, None).map_err(|e| format!("{e:?}"));
            prop_assert_eq!(a, b);
        }
    }

    fn keys_next(k: &[u8]) -> Vec<u8> {
        let mut n = k.to_vec();
        n.push(0);
        n
    }
}
