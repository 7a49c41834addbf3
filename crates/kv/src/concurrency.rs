//! What a leaseholder keeps in memory to order reads and writes of one
//! range: the timestamp cache, the latches of writes in flight, and the
//! wake-ups of requests waiting for intents to go away.
//!
//! - **Timestamp cache.** Every read records the timestamp it read at for
//!   its key or span. A later write to that key is placed above it (a
//!   transaction's write is *pushed*), so no write can slip under a read
//!   that already happened: the basis of serializability by timestamp
//!   ordering. The cache is bounded: when it grows too large its entries
//!   are folded into a low-water mark that applies to every key (this only
//!   pushes more writes, never fewer). A new leaseholder starts with the
//!   low-water mark at its clock's reading when its lease began: its clock
//!   is above every read the previous leaseholder served (lease transfers
//!   carry the old leaseholder's clock; after a failure, the new lease
//!   starts an election timeout after the old one ended, far more than the
//!   clock offset the cluster tolerates).
//! - **Write latches.** A write holds a latch on its keys from proposal to
//!   application. A read of those keys waits for it: a write proposed
//!   below the read's timestamp but not yet applied would otherwise be
//!   missed by the read and then appear under it.
//! - **Row locks of serializable transactions.** An UPDATE, DELETE or
//!   SELECT ... FOR UPDATE of a SERIALIZABLE transaction locks its rows in
//!   the leaseholder's memory, not through raft: writers of other
//!   transactions wait for the lock as for an intent. Before a lease is
//!   moved on purpose (a transfer, balancing, draining) the locks are
//!   written as replicated lock-only intents, so they hold at the next
//!   leaseholder; a lease lost otherwise (a crash) loses them (a new lease
//!   starts with none). That is safe: a lock's read is an ordinary MVCC
//!   read recorded in the timestamp cache and validated at commit, so a
//!   lost lock can cost a retry, never an anomaly. READ COMMITTED
//!   transactions, which do not validate their reads, always replicate
//!   their locks.
//! - **Published waits.** A transaction blocked on another one tells its
//!   record's leaseholder whom it waits for (deadlock detection follows
//!   these edges, see `txn.rs`); the leaseholder keeps that in memory and
//!   answers pushes with it, so waiting costs no raft command. The
//!   periodic heartbeat also writes it into the record, so a new
//!   leaseholder learns it within a heartbeat interval.
//! - **Intent wake-ups.** A request blocked on another transaction's
//!   intent (or lock) waits on the range's notifier, woken whenever an
//!   intent on the range is resolved, instead of polling.

use std::collections::{BTreeMap, HashMap};

use parking_lot::Mutex;
use tessera_common::hlc::Timestamp;

/// Entries kept before the cache is folded into its low-water mark.
const TSCACHE_MAX_ENTRIES: usize = 100_000;
/// Most row locks a range keeps in memory; locks taken beyond it are not
/// kept (their rows' other writers are not held off).
const MAX_LOCKS: usize = 100_000;

/// Who read: a transaction id, or `None` for reads outside transactions
/// (and for merged entries of several readers).
pub type Reader = Option<[u8; 16]>;

/// The latest read of a key: its timestamp and who read there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LastRead {
    pub ts: Timestamp,
    pub reader: Reader,
}

impl LastRead {
    fn merge(self, other: LastRead) -> LastRead {
        match self.ts.cmp(&other.ts) {
            std::cmp::Ordering::Greater => self,
            std::cmp::Ordering::Less => other,
            std::cmp::Ordering::Equal if self.reader == other.reader => self,
            std::cmp::Ordering::Equal => LastRead {
                ts: self.ts,
                reader: None,
            },
        }
    }

    /// Where a write of `writer` wanting `ts` must go: above this read,
    /// unless the read is the writer's own at that very timestamp.
    pub fn place(self, ts: Timestamp, writer: Reader) -> Timestamp {
        if self.ts > ts || (self.ts == ts && (writer.is_none() || self.reader != writer)) {
            self.ts.next()
        } else {
            ts
        }
    }
}

/// The latest read timestamp of keys and spans of one range.
#[derive(Default)]
pub struct TsCache {
    low_water: Timestamp,
    points: BTreeMap<Vec<u8>, LastRead>,
    /// Span reads as disjoint segments `start -> (end, read)` (`end`
    /// exclusive, empty: unbounded): a key's latest span read is one
    /// lookup, however many spans were read.
    spans: BTreeMap<Vec<u8>, (Vec<u8>, LastRead)>,
}

/// Whether a segment ending at `end` (empty: unbounded) reaches past `key`.
fn ends_after(end: &[u8], key: &[u8]) -> bool {
    end.is_empty() || end > key
}

/// The smaller of two span ends (empty: unbounded).
fn min_end<'a>(a: &'a [u8], b: &'a [u8]) -> &'a [u8] {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b,
        (_, true) => a,
        _ => a.min(b),
    }
}

impl TsCache {
    /// Raises the low-water mark (a new lease) and forgets entries below it.
    pub fn set_low_water(&mut self, ts: Timestamp) {
        if ts > self.low_water {
            self.low_water = ts;
            self.points.retain(|_, r| r.ts > ts);
            self.spans.retain(|_, (_, r)| r.ts > ts);
        }
    }

    pub fn record_point(&mut self, key: &[u8], ts: Timestamp, reader: Reader) {
        if ts <= self.low_water {
            return;
        }
        let read = LastRead { ts, reader };
        let e = self.points.entry(key.to_vec()).or_insert(read);
        *e = e.merge(read);
        self.maybe_fold();
    }

    pub fn record_span(&mut self, start: &[u8], end: &[u8], ts: Timestamp, reader: Reader) {
        if ts <= self.low_water {
            return;
        }
        if !end.is_empty() && end <= start {
            return;
        }
        self.insert_span(start, end, LastRead { ts, reader });
        self.maybe_fold();
    }

    /// Merges `read` into every segment over `[start, end)`, splitting
    /// the segments it partly covers and filling the gaps between them;
    /// neighbouring pieces that end up equal are joined.
    fn insert_span(&mut self, start: &[u8], end: &[u8], read: LastRead) {
        // The segments overlapping [start, end): the one starting at or
        // before `start` if it reaches past it, and all starting inside.
        let mut overlapping: Vec<(Vec<u8>, Vec<u8>, LastRead)> = Vec::new();
        if let Some((s, (e, r))) = self
            .spans
            .range::<[u8], _>((std::ops::Bound::Unbounded, std::ops::Bound::Included(start)))
            .next_back()
        {
            if ends_after(e, start) {
                overlapping.push((s.clone(), e.clone(), *r));
            }
        }
        let upper = if end.is_empty() {
            std::ops::Bound::Unbounded
        } else {
            std::ops::Bound::Excluded(end)
        };
        for (s, (e, r)) in self
            .spans
            .range::<[u8], _>((std::ops::Bound::Excluded(start), upper))
        {
            overlapping.push((s.clone(), e.clone(), *r));
        }
        for (s, _, _) in &overlapping {
            self.spans.remove(s);
        }
        // Rebuild left to right.
        let mut pieces: Vec<(Vec<u8>, Vec<u8>, LastRead)> = Vec::new();
        let mut push = |s: Vec<u8>, e: Vec<u8>, r: LastRead| {
            if let Some(last) = pieces.last_mut() {
                if last.1 == s && last.2 == r {
                    last.1 = e;
                    return;
                }
            }
            pieces.push((s, e, r));
        };
        // `None`: the rebuilt pieces reach the end of the keyspace.
        let mut cursor: Option<Vec<u8>> = Some(start.to_vec());
        for (s, e, r) in overlapping {
            let Some(cur) = cursor.take() else { break };
            let from = if s.as_slice() < start {
                // The part before `start` keeps its read.
                push(s, start.to_vec(), r);
                start.to_vec()
            } else {
                if s > cur {
                    push(cur, s.clone(), read);
                }
                s
            };
            let to = min_end(&e, end).to_vec();
            push(from, to.clone(), r.merge(read));
            if !end.is_empty() && ends_after(&e, end) {
                // The part after `end` keeps its read.
                push(end.to_vec(), e, r);
            }
            cursor = (!to.is_empty()).then_some(to);
        }
        if let Some(cur) = cursor {
            if end.is_empty() || cur.as_slice() < end {
                push(cur, end.to_vec(), read);
            }
        }
        for (s, e, r) in pieces {
            self.spans.insert(s, (e, r));
        }
    }

    fn maybe_fold(&mut self) {
        if self.points.len() + self.spans.len() > TSCACHE_MAX_ENTRIES {
            let max = self
                .points
                .values()
                .chain(self.spans.values().map(|(_, r)| r))
                .map(|r| r.ts)
                .max()
                .unwrap_or_default();
            self.low_water = self.low_water.max(max);
            self.points.clear();
            self.spans.clear();
        }
    }

    /// The latest read of `key`: a write to it must go above this.
    pub fn max_read(&self, key: &[u8]) -> LastRead {
        let mut read = LastRead {
            ts: self.low_water,
            reader: None,
        };
        if let Some(r) = self.points.get(key) {
            read = read.merge(*r);
        }
        if let Some((_, (e, r))) = self
            .spans
            .range::<[u8], _>((std::ops::Bound::Unbounded, std::ops::Bound::Included(key)))
            .next_back()
        {
            if ends_after(e, key) {
                read = read.merge(*r);
            }
        }
        read
    }
}

/// Keys of writes proposed but not yet applied.
#[derive(Default)]
pub struct Latches {
    next_id: u64,
    held: BTreeMap<u64, Vec<Vec<u8>>>,
}

impl Latches {
    pub fn acquire(&mut self, keys: Vec<Vec<u8>>) -> u64 {
        self.next_id += 1;
        self.held.insert(self.next_id, keys);
        self.next_id
    }

    pub fn release(&mut self, id: u64) {
        self.held.remove(&id);
    }

    /// Whether a write in flight touches `[start, end)` (`end` empty:
    /// unbounded; `end == None`: the single key `start`).
    pub fn conflicts(&self, start: &[u8], end: Option<&[u8]>) -> bool {
        self.held.values().flatten().any(|k| match end {
            None => k.as_slice() == start,
            Some(end) => k.as_slice() >= start && (end.is_empty() || k.as_slice() < end),
        })
    }
}

/// A row lock held in the leaseholder's memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldLock {
    pub txn: [u8; 16],
    /// Where the holder's record is (or will be).
    pub anchor: Vec<u8>,
    /// The leaseholder's clock when the lock was taken: a holder that has
    /// written no record by [`crate::txn::TXN_EXPIRY`] after this may be
    /// aborted by whoever waits for it (a live holder heartbeats its
    /// record into existence well before).
    pub since: Timestamp,
}

/// Whom a transaction waits for, as its coordinator last published it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishedWait {
    pub waiting_for: Vec<u8>,
    pub waiting_for_anchor: Vec<u8>,
    pub priority: i32,
}

/// The published waits of the transactions whose records this range holds.
#[derive(Default)]
pub struct Waits {
    by_txn: HashMap<[u8; 16], PublishedWait>,
}

impl Waits {
    /// Records what `txn` waits for now (nothing: forgets it).
    pub fn publish(&mut self, txn: [u8; 16], wait: PublishedWait) {
        if wait.waiting_for.is_empty() {
            self.by_txn.remove(&txn);
            return;
        }
        if self.by_txn.len() >= MAX_LOCKS && !self.by_txn.contains_key(&txn) {
            // Forgetting costs only time: the periodic heartbeats write
            // the waits into the records too.
            self.by_txn.clear();
        }
        self.by_txn.insert(txn, wait);
    }

    /// `rec` as pushers should see it: a live record with the latest
    /// published wait (and, for a record not written yet, the priority).
    pub fn annotate(&mut self, rec: &mut tessera_common::proto::TxnRecord) {
        use tessera_common::proto::TxnStatus;
        let Ok(id) = <[u8; 16]>::try_from(rec.id.as_slice()) else {
            return;
        };
        if rec.status == TxnStatus::Committed as i32 || rec.status == TxnStatus::Aborted as i32 {
            self.by_txn.remove(&id);
            return;
        }
        if let Some(w) = self.by_txn.get(&id) {
            rec.waiting_for = w.waiting_for.clone();
            rec.waiting_for_anchor = w.waiting_for_anchor.clone();
            if rec.priority == 0 {
                rec.priority = w.priority;
            }
        }
    }
}

/// The unreplicated row locks of one range, by key.
#[derive(Default)]
pub struct LockTable {
    held: HashMap<Vec<u8>, HeldLock>,
}

impl LockTable {
    /// The lock on `key` of a transaction other than `writer` (`None`:
    /// a write outside any transaction, which every lock holds off).
    pub fn blocking(&self, key: &[u8], writer: Option<[u8; 16]>) -> Option<&HeldLock> {
        self.held
            .get(key)
            .filter(|l| writer.is_none_or(|w| w != l.txn))
    }

    pub fn holder(&self, key: &[u8]) -> Option<&HeldLock> {
        self.held.get(key)
    }

    /// Locks `key` for `lock.txn`, unless the table is full: the lock is
    /// then not kept (best effort, as every lock here: its holder's reads
    /// are still validated at commit).
    pub fn acquire(&mut self, key: Vec<u8>, lock: HeldLock) {
        if self.held.len() < MAX_LOCKS || self.held.contains_key(&key) {
            self.held.insert(key, lock);
        }
    }

    /// Releases the locks of `txn` on `keys`; whether any was held.
    pub fn release<'a>(&mut self, txn: &[u8], keys: impl IntoIterator<Item = &'a Vec<u8>>) -> bool {
        let mut any = false;
        for k in keys {
            if self.held.get(k).is_some_and(|l| l.txn.as_slice() == txn) {
                self.held.remove(k);
                any = true;
            }
        }
        any
    }

    /// The locks by holder, each with its keys (to replicate them before
    /// the lease moves away).
    pub fn by_holder(&self) -> Vec<(HeldLock, Vec<Vec<u8>>)> {
        let mut out: Vec<(HeldLock, Vec<Vec<u8>>)> = Vec::new();
        for (k, l) in &self.held {
            match out.iter_mut().find(|(h, _)| h.txn == l.txn) {
                Some((_, keys)) => keys.push(k.clone()),
                None => out.push((l.clone(), vec![k.clone()])),
            }
        }
        out
    }

    /// Forgets every lock (a new lease: the previous leaseholder's locks
    /// were lost, and any left from an earlier lease of this node are
    /// stale).
    pub fn clear(&mut self) {
        self.held.clear();
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

/// The concurrency state of one replica (used while it holds the lease).
#[derive(Default)]
pub struct Concurrency {
    pub tscache: Mutex<TsCache>,
    pub latches: Mutex<Latches>,
    /// Serializable transactions' row locks. Lock order: `locks` before
    /// `latches`, so that checking the locks and latching a write is one
    /// step, as is checking the latches and taking a lock.
    pub locks: Mutex<LockTable>,
    /// Published waits of transactions anchored here (leaseholder).
    pub waits: Mutex<Waits>,
    /// Until when (monotonic ms) a planned lease move is under way: row
    /// locks are replicated, not kept in memory.
    handover_until_ms: std::sync::atomic::AtomicU64,
    /// Woken when a latch is released.
    pub latch_released: tokio::sync::Notify,
    /// Woken when an intent on the range is resolved (or the range's
    /// transaction records change).
    pub intents_changed: tokio::sync::Notify,
}

impl Concurrency {
    /// A planned lease move begins; call with `locks` held, so that no
    /// lock is being taken in memory meanwhile.
    pub fn start_handover(&self, until_ms: u64) {
        self.handover_until_ms
            .fetch_max(until_ms, std::sync::atomic::Ordering::AcqRel);
    }

    pub fn handing_over(&self, now_ms: u64) -> bool {
        now_ms
            < self
                .handover_until_ms
                .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Waits until no write in flight touches the key or span; calls
    /// `on_wait` once if it has to wait.
    pub async fn wait_for_writes(&self, start: &[u8], end: Option<&[u8]>, on_wait: impl FnOnce()) {
        let mut on_wait = Some(on_wait);
        loop {
            let released = self.latch_released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if !self.latches.lock().conflicts(start, end) {
                return;
            }
            if let Some(f) = on_wait.take() {
                f();
            }
            released.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(w: u64) -> Timestamp {
        Timestamp::new(w, 0)
    }

    #[test]
    fn a_row_lock_holds_off_other_writers_and_is_released_only_by_its_owner() {
        let (t1, t2) = ([1u8; 16], [2u8; 16]);
        let mut locks = LockTable::default();
        let held = HeldLock {
            txn: t1,
            anchor: b"a".to_vec(),
            since: ts(5),
        };
        locks.acquire(b"k".to_vec(), held.clone());
        assert_eq!(locks.blocking(b"k", Some(t2)), Some(&held));
        assert_eq!(
            locks.blocking(b"k", None),
            Some(&held),
            "plain writes wait too"
        );
        assert_eq!(locks.blocking(b"k", Some(t1)), None, "not for its owner");
        assert_eq!(locks.blocking(b"other", Some(t2)), None);
        assert!(
            !locks.release(&t2, [&b"k".to_vec()]),
            "only the owner releases"
        );
        assert_eq!(locks.len(), 1);
        locks.acquire(b"j".to_vec(), held.clone());
        let by_holder = locks.by_holder();
        assert_eq!(by_holder.len(), 1);
        assert_eq!(by_holder[0].1.len(), 2);
        assert!(locks.release(&t1, [&b"k".to_vec(), &b"j".to_vec()]));
        assert!(locks.is_empty());
        locks.acquire(b"k".to_vec(), held);
        locks.clear();
        assert!(locks.blocking(b"k", Some(t2)).is_none());
    }

    #[test]
    fn published_waits_annotate_live_records_and_go_with_final_ones() {
        use tessera_common::proto::{TxnRecord, TxnStatus};
        let mut waits = Waits::default();
        let wait = PublishedWait {
            waiting_for: vec![2; 16],
            waiting_for_anchor: b"b".to_vec(),
            priority: 7,
        };
        waits.publish([1; 16], wait.clone());
        // Not written yet: the wait and the priority come from memory.
        let mut rec = TxnRecord {
            id: vec![1; 16],
            status: TxnStatus::Pending as i32,
            ..Default::default()
        };
        waits.annotate(&mut rec);
        assert_eq!(
            (rec.waiting_for.clone(), rec.waiting_for_anchor.clone()),
            (vec![2; 16], b"b".to_vec())
        );
        assert_eq!(rec.priority, 7);
        // Nothing awaited any more: the record keeps what it says.
        waits.publish([1; 16], PublishedWait::default());
        let mut rec = TxnRecord {
            id: vec![1; 16],
            ..Default::default()
        };
        waits.annotate(&mut rec);
        assert!(rec.waiting_for.is_empty());
        // A finished transaction waits for nothing, and is forgotten.
        waits.publish([1; 16], wait);
        let mut done = TxnRecord {
            id: vec![1; 16],
            status: TxnStatus::Committed as i32,
            ..Default::default()
        };
        waits.annotate(&mut done);
        assert!(done.waiting_for.is_empty());
        let mut rec = TxnRecord {
            id: vec![1; 16],
            ..Default::default()
        };
        waits.annotate(&mut rec);
        assert!(rec.waiting_for.is_empty());
    }

    #[test]
    fn writes_go_above_the_latest_read_of_their_key() {
        let mut c = TsCache::default();
        c.record_point(b"a", ts(10), None);
        c.record_point(b"a", ts(5), None);
        c.record_span(b"m", b"p", ts(20), None);
        assert_eq!(c.max_read(b"a").ts, ts(10));
        assert_eq!(c.max_read(b"b").ts, ts(0));
        assert_eq!(c.max_read(b"n").ts, ts(20));
        assert_eq!(c.max_read(b"p").ts, ts(0), "span ends are exclusive");
        c.set_low_water(ts(15));
        assert_eq!(c.max_read(b"a").ts, ts(15));
        assert_eq!(c.max_read(b"n").ts, ts(20));
        // A write at 20 goes above the read at 20; a write at 21 stays.
        assert_eq!(c.max_read(b"n").place(ts(20), Some([1; 16])), ts(20).next());
        assert_eq!(c.max_read(b"n").place(ts(21), Some([1; 16])), ts(21));
    }

    #[test]
    fn a_transaction_is_not_pushed_by_its_own_read() {
        let mut c = TsCache::default();
        let (me, other) = (Some([1; 16]), Some([2; 16]));
        c.record_point(b"k", ts(10), me);
        assert_eq!(c.max_read(b"k").place(ts(10), me), ts(10));
        assert_eq!(c.max_read(b"k").place(ts(10), other), ts(10).next());
        assert_eq!(c.max_read(b"k").place(ts(10), None), ts(10).next());
        // Another reader at the same timestamp: nobody owns it any more.
        c.record_point(b"k", ts(10), other);
        assert_eq!(c.max_read(b"k").place(ts(10), me), ts(10).next());
    }

    #[test]
    fn overlapping_span_reads_keep_the_latest_read_of_every_key() {
        let mut c = TsCache::default();
        c.record_span(b"c", b"f", ts(10), None);
        c.record_span(b"a", b"d", ts(5), None);
        c.record_span(b"e", b"h", ts(20), None);
        c.record_span(b"x", b"", ts(7), None);
        c.record_span(b"b", b"b", ts(99), None); // empty: ignored
        let at = |c: &TsCache, k: &[u8]| c.max_read(k).ts;
        assert_eq!(at(&c, b"a"), ts(5));
        assert_eq!(at(&c, b"b"), ts(5));
        assert_eq!(at(&c, b"c"), ts(10));
        assert_eq!(at(&c, b"d"), ts(10));
        assert_eq!(at(&c, b"e"), ts(20));
        assert_eq!(at(&c, b"g"), ts(20));
        assert_eq!(at(&c, b"h"), ts(0));
        assert_eq!(at(&c, b"z\xff"), ts(7));
        // A newer read over everything wins everywhere and joins the pieces.
        c.record_span(b"", b"", ts(30), None);
        for k in [&b""[..], b"a", b"d", b"g", b"zz"] {
            assert_eq!(at(&c, k), ts(30));
        }
        assert_eq!(c.spans.len(), 1);
        // An older read under it changes nothing.
        c.record_span(b"b", b"y", ts(3), None);
        assert_eq!(at(&c, b"c"), ts(30));
    }

    /// The segment map answers as a plain list of every span read would.
    #[test]
    fn span_segments_agree_with_a_list_of_every_read() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut c = TsCache::default();
        let mut all: Vec<(Vec<u8>, Vec<u8>, LastRead)> = Vec::new();
        for _ in 0..2000 {
            let a = vec![b'a' + rand(20) as u8];
            let b = if rand(10) == 0 {
                Vec::new()
            } else {
                vec![b'a' + rand(21) as u8]
            };
            let read = LastRead {
                ts: ts(rand(50)),
                reader: if rand(2) == 0 {
                    None
                } else {
                    Some([rand(3) as u8; 16])
                },
            };
            c.record_span(&a, &b, read.ts, read.reader);
            if read.ts > Timestamp::default() && (b.is_empty() || b > a) {
                all.push((a, b, read));
            }
        }
        for k in 0..22u8 {
            let key = [b'a' + k];
            let expected = all
                .iter()
                .filter(|(s, e, _)| key.as_slice() >= s.as_slice() && ends_after(e, &key))
                .fold(LastRead::default(), |acc, (_, _, r)| acc.merge(*r));
            assert_eq!(c.max_read(&key), expected, "key {}", key[0] as char);
        }
    }

    #[test]
    fn a_full_cache_folds_into_its_low_water_mark_and_never_forgets_a_read() {
        let mut c = TsCache::default();
        for i in 0..=TSCACHE_MAX_ENTRIES as u64 {
            c.record_point(&i.to_be_bytes(), ts(i + 1), None);
        }
        assert!(c.points.is_empty());
        assert!(c.max_read(b"anything").ts >= ts(TSCACHE_MAX_ENTRIES as u64 + 1));
    }

    #[test]
    fn latches_cover_keys_and_spans() {
        let mut l = Latches::default();
        let id = l.acquire(vec![b"k".to_vec()]);
        assert!(l.conflicts(b"k", None));
        assert!(!l.conflicts(b"j", None));
        assert!(l.conflicts(b"a", Some(b"z")));
        assert!(l.conflicts(b"a", Some(b"")));
        assert!(!l.conflicts(b"l", Some(b"z")));
        l.release(id);
        assert!(!l.conflicts(b"k", None));
    }
}
