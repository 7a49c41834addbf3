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
//! - **Intent wake-ups.** A request blocked on another transaction's
//!   intent waits on the range's notifier, woken whenever an intent on the
//!   range is resolved, instead of polling.

use std::collections::BTreeMap;

use parking_lot::Mutex;
use tessera_common::hlc::Timestamp;

/// Entries kept before the cache is folded into its low-water mark.
const TSCACHE_MAX_ENTRIES: usize = 100_000;

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
    /// `(start, end, read)`, `end` exclusive (empty: unbounded).
    spans: Vec<(Vec<u8>, Vec<u8>, LastRead)>,
}

impl TsCache {
    /// Raises the low-water mark (a new lease) and forgets entries below it.
    pub fn set_low_water(&mut self, ts: Timestamp) {
        if ts > self.low_water {
            self.low_water = ts;
            self.points.retain(|_, r| r.ts > ts);
            self.spans.retain(|(_, _, r)| r.ts > ts);
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
        self.spans
            .push((start.to_vec(), end.to_vec(), LastRead { ts, reader }));
        self.maybe_fold();
    }

    fn maybe_fold(&mut self) {
        if self.points.len() + self.spans.len() > TSCACHE_MAX_ENTRIES {
            let max = self
                .points
                .values()
                .chain(self.spans.iter().map(|(_, _, r)| r))
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
        for (s, e, r) in &self.spans {
            if key >= s.as_slice() && (e.is_empty() || key < e.as_slice()) {
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

/// The concurrency state of one replica (used while it holds the lease).
#[derive(Default)]
pub struct Concurrency {
    pub tscache: Mutex<TsCache>,
    pub latches: Mutex<Latches>,
    /// Woken when a latch is released.
    pub latch_released: tokio::sync::Notify,
    /// Woken when an intent on the range is resolved (or the range's
    /// transaction records change).
    pub intents_changed: tokio::sync::Notify,
}

impl Concurrency {
    /// Waits until no write in flight touches the key or span.
    pub async fn wait_for_writes(&self, start: &[u8], end: Option<&[u8]>) {
        loop {
            let released = self.latch_released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if !self.latches.lock().conflicts(start, end) {
                return;
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
