//! [`NewestVersionCache`]: the newest MVCC version of recently read keys,
//! kept in memory so that a point read whose timestamp is above it needs no
//! engine scan.
//!
//! An LSM engine answers a point `get` with bloom filters, but finding the
//! newest version of a key is a *range* seek (versions are keyed by
//! timestamp), which opens and positions an iterator in every table that
//! may hold the key. Reads of hot rows pay that on every read. The cache
//! holds, per encoded user key, the newest version's timestamp and value
//! (or a tombstone); a read at or above that timestamp is answered from it.
//!
//! Consistency with the engine: an engine owning a cache calls
//! [`NewestVersionCache::begin_write`] with the version keys of a batch
//! before it commits the batch and [`WriteTicket::finish`] after. Between
//! the two, lookups of the keys' stripes miss and nothing is filled there;
//! `finish` drops the keys' entries and bumps the stripes' generations, so
//! a fill made from an engine read that started before the write is
//! refused. Hence an entry found in the cache is never older than the engine
//! was when the lookup started, and a reader that looked at the engine
//! (e.g. for an intent) before the cache sees versions at least as new as
//! what it saw there.
//!
//! Writes of cached keys keep them cached ([`NewestVersionCache::begin_batch`]):
//! when a batch only adds versions to a key whose newest version was cached
//! as it began, and no other write touched the key's stripe meanwhile, the
//! newer of the cached version and the batch's newest is the key's newest
//! version after it, and `finish` installs that. A hot row written by every
//! transaction is then read from memory by each next one.
//!
//! Memory is bounded: a shard over its share of the budget drops a quarter
//! of its entries.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;

use tessera_common::Timestamp;

/// Shards (independent locks) of a cache.
const SHARDS: usize = 16;
/// Generation stripes per shard: a write refuses concurrent fills of the
/// keys hashing to its stripes only.
const STRIPES: usize = 64;

/// The newest version of a key: its timestamp and value (`None`: a
/// deletion tombstone).
#[derive(Debug, Clone, PartialEq)]
pub struct NewestVersion {
    pub ts: Timestamp,
    pub value: Option<Vec<u8>>,
}

struct Entry {
    encoded_key: Vec<u8>,
    /// `None`: the key has no version at all.
    newest: Option<NewestVersion>,
}

impl Entry {
    fn bytes(&self) -> usize {
        // Key, value and a fixed overhead for the map slot and headers.
        self.encoded_key.len()
            + self
                .newest
                .as_ref()
                .and_then(|v| v.value.as_ref())
                .map_or(0, Vec::len)
            + 64
    }
}

struct Shard {
    entries: HashMap<u64, Entry>,
    bytes: usize,
    generation: [u64; STRIPES],
    writes_in_flight: [u32; STRIPES],
    evictions: u64,
}

impl Default for Shard {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            bytes: 0,
            generation: [0; STRIPES],
            writes_in_flight: [0; STRIPES],
            evictions: 0,
        }
    }
}

impl Shard {
    fn remove(&mut self, hash: u64) -> Option<Entry> {
        let e = self.entries.remove(&hash)?;
        self.bytes -= e.bytes();
        Some(e)
    }

    /// Holds `entry` under `hash` (replacing any), within `budget` bytes.
    fn insert(&mut self, hash: u64, entry: Entry, budget: usize) {
        if entry.bytes() > budget {
            return;
        }
        self.remove(hash);
        if self.bytes + entry.bytes() > budget {
            self.evict_quarter();
        }
        self.bytes += entry.bytes();
        self.entries.insert(hash, entry);
    }

    /// Drops about a quarter of the entries, a different quarter each
    /// time (by hash bits, so unrelated to key order or age).
    fn evict_quarter(&mut self) {
        self.evictions += 1;
        let quarter = self.evictions % 4;
        let mut freed = 0;
        self.entries.retain(|hash, e| {
            let keep = (hash >> 32) % 4 != quarter;
            if !keep {
                freed += e.bytes();
            }
            keep
        });
        self.bytes -= freed;
    }
}

/// See the module docs.
pub struct NewestVersionCache {
    shards: Vec<Mutex<Shard>>,
    shard_budget: usize,
    hasher: std::hash::RandomState,
}

impl std::fmt::Debug for NewestVersionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewestVersionCache")
            .field("budget", &(self.shard_budget * SHARDS))
            .finish_non_exhaustive()
    }
}

/// What a lookup found.
#[derive(Debug, PartialEq)]
pub enum Lookup {
    /// The key's newest version (`None`: it has none).
    Hit(Option<NewestVersion>),
    /// Not cached: read the engine, then offer what it holds to
    /// [`NewestVersionCache::fill`] with this ticket.
    Miss(FillTicket),
}

/// Permission to fill one key, valid if no write touched its stripe since
/// the lookup that issued it.
#[derive(Debug, PartialEq)]
pub struct FillTicket {
    hash: u64,
    generation: u64,
}

/// The stripes a batch being written touches; see
/// [`NewestVersionCache::begin_write`].
#[must_use = "a write ticket must be finished after the engine write"]
pub struct WriteTicket<'c> {
    cache: &'c NewestVersionCache,
    hashes: Vec<u64>,
    /// Entries to install once the batch is in the engine (sorted by hash):
    /// the key's newest version after the batch, and its stripe's
    /// generation when the write began.
    installs: Vec<(u64, Entry, u64)>,
}

/// One operation of a batch on a version of a key: the encoded key, and
/// for a put the version's timestamp and stored value (`None`: a delete).
pub type VersionOp<'k> = (&'k [u8], Option<(Timestamp, &'k [u8])>);

impl NewestVersionCache {
    /// A cache holding about `budget_bytes` of keys and values.
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            shard_budget: budget_bytes / SHARDS,
            hasher: std::hash::RandomState::new(),
        }
    }

    fn hash(&self, encoded_key: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(encoded_key);
        h.finish()
    }

    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, Shard> {
        // A panic while holding a shard leaves it consistent (every update
        // is a single map operation), so a poisoned lock is still usable.
        self.shards[(hash >> 60) as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn stripe(hash: u64) -> usize {
        hash as usize % STRIPES
    }

    /// The cached newest version of the key whose encoded form (as in the
    /// version keys) is `encoded_key`.
    pub fn lookup(&self, encoded_key: &[u8]) -> Lookup {
        let hash = self.hash(encoded_key);
        let stripe = Self::stripe(hash);
        let shard = self.shard(hash);
        if shard.writes_in_flight[stripe] == 0 {
            if let Some(e) = shard.entries.get(&hash) {
                if e.encoded_key == encoded_key {
                    return Lookup::Hit(e.newest.clone());
                }
            }
        }
        Lookup::Miss(FillTicket {
            hash,
            generation: shard.generation[stripe],
        })
    }

    /// Records that `newest` is the key's newest version, as read from the
    /// engine after the lookup that issued `ticket`. Refused (silently) if a
    /// write touched the key's stripe since, or one is under way.
    pub fn fill(&self, ticket: FillTicket, encoded_key: &[u8], newest: Option<NewestVersion>) {
        let stripe = Self::stripe(ticket.hash);
        let mut shard = self.shard(ticket.hash);
        if shard.writes_in_flight[stripe] != 0 || shard.generation[stripe] != ticket.generation {
            return;
        }
        let entry = Entry {
            encoded_key: encoded_key.to_vec(),
            newest,
        };
        shard.insert(ticket.hash, entry, self.shard_budget);
    }

    /// Announces a write of versions of the keys whose encoded forms are
    /// `encoded_keys`: until the ticket is finished, their stripes miss;
    /// after, the keys are no longer cached.
    pub fn begin_write<'k>(&self, encoded_keys: impl Iterator<Item = &'k [u8]>) -> WriteTicket<'_> {
        self.begin_batch(encoded_keys.map(|k| (k, None)))
    }

    /// Announces the write of a batch of version operations: like
    /// [`NewestVersionCache::begin_write`], except that a cached key the
    /// batch only adds versions to stays cached, with its new newest
    /// version (see the module docs).
    pub fn begin_batch<'k>(&self, ops: impl Iterator<Item = VersionOp<'k>>) -> WriteTicket<'_> {
        let mut ops: Vec<(u64, VersionOp<'k>)> = ops.map(|op| (self.hash(op.0), op)).collect();
        // Sorted, hashes of one shard are adjacent (the shard is the top
        // bits); the sort is stable, so a key's operations stay in batch
        // order.
        ops.sort_by_key(|(hash, _)| *hash);
        let mut hashes: Vec<u64> = ops.iter().map(|(hash, _)| *hash).collect();
        // Duplicates go, so each stripe is counted once per key.
        hashes.dedup();
        let mut cached = Vec::new();
        self.for_each_shard(&hashes, |shard, hashes| {
            for &hash in hashes {
                let stripe = Self::stripe(hash);
                shard.writes_in_flight[stripe] += 1;
                if let Some(e) = shard.remove(hash) {
                    cached.push((hash, e, shard.generation[stripe]));
                }
            }
        });
        let installs = cached
            .into_iter()
            .filter_map(|(hash, e, generation)| {
                let start = ops.partition_point(|(h, _)| *h < hash);
                let end = ops.partition_point(|(h, _)| *h <= hash);
                let newest = newest_after(e.newest, &e.encoded_key, &ops[start..end])?;
                let entry = Entry {
                    encoded_key: e.encoded_key,
                    newest: Some(newest),
                };
                Some((hash, entry, generation))
            })
            .collect();
        WriteTicket {
            cache: self,
            hashes,
            installs,
        }
    }

    /// Runs `f` on the hashes of each shard, locking each shard once
    /// (hashes sorted by shard).
    fn for_each_shard(&self, hashes: &[u64], mut f: impl FnMut(&mut Shard, &[u64])) {
        let mut rest = hashes;
        while let Some(&first) = rest.first() {
            let n = rest.partition_point(|h| h >> 60 == first >> 60);
            f(&mut self.shard(first), &rest[..n]);
            rest = &rest[n..];
        }
    }

    /// Forgets everything, and refuses fills from reads that started
    /// before: for an engine whose contents changed other than by a write
    /// (e.g. a simulated crash that lost unsynced writes).
    pub fn clear(&self) {
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            shard.entries.clear();
            shard.bytes = 0;
            for g in &mut shard.generation {
                *g += 1;
            }
        }
    }

    /// Entries held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).entries.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The newest version of the key encoded as `encoded_key` after `ops` (the
/// batch's operations whose key hashes like it), given that it was
/// `before`; `None` if the batch deletes a version of the key (or holds
/// one that cannot be decoded).
fn newest_after(
    before: Option<NewestVersion>,
    encoded_key: &[u8],
    ops: &[(u64, VersionOp<'_>)],
) -> Option<NewestVersion> {
    let mut newest = before;
    for (_, (key, op)) in ops {
        if *key != encoded_key {
            continue;
        }
        let (ts, raw) = (*op)?;
        if newest.as_ref().is_none_or(|n| n.ts <= ts) {
            let value = crate::mvcc::decode_stored_value(raw)?;
            newest = Some(NewestVersion { ts, value });
        }
    }
    newest
}

impl WriteTicket<'_> {
    /// The batch is in the engine (`written`) or failed: drop the keys'
    /// entries again (a fill may have slipped in before `begin_write`'s),
    /// refuse fills from reads that started before now, and, if written,
    /// install the new newest versions of keys that were cached, where no
    /// other write touched their stripe since this one began.
    pub fn finish(self, written: bool) {
        // Both lists are sorted by hash and shards are visited in hash
        // order (the shard is the top bits): each shard takes its installs
        // off the front.
        let mut installs = if written { self.installs } else { Vec::new() }
            .into_iter()
            .peekable();
        self.cache.for_each_shard(&self.hashes, |shard, hashes| {
            let here = hashes[0] >> 60;
            let mut undisturbed = Vec::new();
            while let Some((hash, entry, generation)) =
                installs.next_if(|(hash, _, _)| hash >> 60 == here)
            {
                // Checked before this write's own counts go: the stripe may
                // count only this write's keys, and its generation must be
                // the one seen when the write began.
                let stripe = NewestVersionCache::stripe(hash);
                let own = hashes
                    .iter()
                    .filter(|h| NewestVersionCache::stripe(**h) == stripe)
                    .count();
                if shard.writes_in_flight[stripe] as usize == own
                    && shard.generation[stripe] == generation
                {
                    undisturbed.push((hash, entry));
                }
            }
            // Stripes shared by several keys of the batch were counted
            // once per key; undo exactly what begin_batch did.
            for &hash in hashes {
                let stripe = NewestVersionCache::stripe(hash);
                shard.writes_in_flight[stripe] -= 1;
                shard.generation[stripe] += 1;
                shard.remove(hash);
            }
            for (hash, entry) in undisturbed {
                shard.insert(hash, entry, self.cache.shard_budget);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(wall: u64, v: &str) -> Option<NewestVersion> {
        Some(NewestVersion {
            ts: Timestamp::new(wall, 0),
            value: Some(v.as_bytes().to_vec()),
        })
    }

    fn fill_after_miss(c: &NewestVersionCache, k: &[u8], v: Option<NewestVersion>) {
        match c.lookup(k) {
            Lookup::Miss(t) => c.fill(t, k, v),
            Lookup::Hit(_) => panic!("expected a miss"),
        }
    }

    #[test]
    fn fills_are_found_and_writes_drop_them() {
        let c = NewestVersionCache::new(1 << 20);
        fill_after_miss(&c, b"a", version(1, "x"));
        fill_after_miss(&c, b"b", None);
        assert_eq!(c.lookup(b"a"), Lookup::Hit(version(1, "x")));
        assert_eq!(c.lookup(b"b"), Lookup::Hit(None));
        c.begin_write([&b"a"[..]].into_iter()).finish(true);
        assert!(matches!(c.lookup(b"a"), Lookup::Miss(_)));
        assert_eq!(c.lookup(b"b"), Lookup::Hit(None));
    }

    /// A fill from a read that started before a write (and may have read
    /// the engine before the batch) is refused, whether the write is under
    /// way or finished; lookups miss while it is under way.
    #[test]
    fn fills_racing_a_write_are_refused() {
        let c = NewestVersionCache::new(1 << 20);
        let Lookup::Miss(before) = c.lookup(b"k") else {
            panic!()
        };
        let w = c.begin_write([&b"k"[..]].into_iter());
        let Lookup::Miss(during) = c.lookup(b"k") else {
            panic!()
        };
        c.fill(during, b"k", version(1, "old"));
        assert!(matches!(c.lookup(b"k"), Lookup::Miss(_)));
        w.finish(true);
        c.fill(before, b"k", version(1, "old"));
        assert!(matches!(c.lookup(b"k"), Lookup::Miss(_)));
        fill_after_miss(&c, b"k", version(2, "new"));
        assert_eq!(c.lookup(b"k"), Lookup::Hit(version(2, "new")));
    }

    /// Two writes of one key (or of keys sharing a stripe) in flight at
    /// once: lookups miss until both are finished.
    #[test]
    fn overlapping_writes_keep_the_stripe_closed() {
        let c = NewestVersionCache::new(1 << 20);
        let w1 = c.begin_write([&b"k"[..], &b"k"[..]].into_iter());
        let w2 = c.begin_write([&b"k"[..]].into_iter());
        w1.finish(true);
        fill_after_miss(&c, b"k", version(1, "x"));
        assert!(matches!(c.lookup(b"k"), Lookup::Miss(_)));
        w2.finish(true);
        fill_after_miss(&c, b"k", version(1, "x"));
        assert_eq!(c.lookup(b"k"), Lookup::Hit(version(1, "x")));
    }

    /// A batch putting `value` at `wall` for `key`, and the key's encoded
    /// form (the cache's key).
    fn put_batch(key: &[u8], wall: u64, value: Option<&str>) -> (crate::WriteBatch, Vec<u8>) {
        let engine = crate::MemoryEngine::new();
        let mut b = crate::WriteBatch::new();
        crate::mvcc::put(
            &engine,
            &mut b,
            key,
            Timestamp::new(wall, 0),
            value.map(|v| v.as_bytes().to_vec()),
            None,
        )
        .unwrap();
        let ek = b.version_ops().next().unwrap().0.to_vec();
        (b, ek)
    }

    #[test]
    fn writes_of_cached_keys_leave_their_newest_version_cached() {
        let c = NewestVersionCache::new(1 << 20);
        let (b2, ek) = put_batch(b"k", 2, Some("two"));
        fill_after_miss(&c, &ek, version(1, "one"));
        c.begin_batch(b2.version_ops()).finish(true);
        assert_eq!(c.lookup(&ek), Lookup::Hit(version(2, "two")));
        // A version below the newest leaves the newest.
        let (b1, _) = put_batch(b"k", 1, Some("late"));
        c.begin_batch(b1.version_ops()).finish(true);
        assert_eq!(c.lookup(&ek), Lookup::Hit(version(2, "two")));
        // A tombstone is a version too.
        let (b3, _) = put_batch(b"k", 3, None);
        c.begin_batch(b3.version_ops()).finish(true);
        let tombstone = Some(NewestVersion {
            ts: Timestamp::new(3, 0),
            value: None,
        });
        assert_eq!(c.lookup(&ek), Lookup::Hit(tombstone));
        // A key that had no entry gets none: older versions are unknown.
        let (b, other) = put_batch(b"other", 5, Some("x"));
        c.begin_batch(b.version_ops()).finish(true);
        assert!(matches!(c.lookup(&other), Lookup::Miss(_)));
    }

    #[test]
    fn failed_writes_and_deletes_of_versions_uncache_the_key() {
        let c = NewestVersionCache::new(1 << 20);
        let (b2, ek) = put_batch(b"k", 2, Some("two"));
        fill_after_miss(&c, &ek, version(1, "one"));
        c.begin_batch(b2.version_ops()).finish(false);
        assert!(matches!(c.lookup(&ek), Lookup::Miss(_)));

        fill_after_miss(&c, &ek, version(1, "one"));
        let mut gc = crate::WriteBatch::new();
        gc.delete(crate::mvcc::encode_version_key(b"k", Timestamp::new(1, 0)));
        c.begin_batch(gc.version_ops()).finish(true);
        assert!(matches!(c.lookup(&ek), Lookup::Miss(_)));
    }

    /// A write that overlaps another on the key's stripe cannot know which
    /// landed last: it installs nothing, whether the other is still under
    /// way when it finishes or finished in between.
    #[test]
    fn overlapping_writes_install_nothing() {
        let c = NewestVersionCache::new(1 << 20);
        let (b2, ek) = put_batch(b"k", 2, Some("two"));
        let (b3, _) = put_batch(b"k", 3, Some("three"));
        fill_after_miss(&c, &ek, version(1, "one"));
        let w2 = c.begin_batch(b2.version_ops());
        let w3 = c.begin_batch(b3.version_ops());
        w2.finish(true);
        assert!(matches!(c.lookup(&ek), Lookup::Miss(_)));
        w3.finish(true);
        assert!(matches!(c.lookup(&ek), Lookup::Miss(_)));

        fill_after_miss(&c, &ek, version(3, "three"));
        let (b4, _) = put_batch(b"k", 4, Some("four"));
        let (b5, _) = put_batch(b"k", 5, Some("five"));
        let w4 = c.begin_batch(b4.version_ops());
        c.begin_batch(b5.version_ops()).finish(true);
        w4.finish(true);
        assert!(matches!(c.lookup(&ek), Lookup::Miss(_)));
    }

    /// Writers commit ever newer versions of a few keys while readers
    /// read them through a small cache (so entries are also evicted): no
    /// read returns a version older than one whose write had returned
    /// before the read began.
    #[test]
    fn concurrent_reads_never_see_a_version_older_than_a_finished_write() {
        use std::sync::atomic::{AtomicU64, Ordering};

        use crate::{mvcc, Engine, FjallEngine, WriteBatch};

        const KEYS: usize = 8;
        const WRITES_PER_WRITER: u64 = 1500;
        let dir = tempfile::tempdir().unwrap();
        let engine = FjallEngine::open_with(
            dir.path(),
            crate::fjall_engine::FjallOptions {
                version_cache_bytes: 4 << 10,
                ..Default::default()
            },
        )
        .unwrap();
        let key = |k: usize| format!("key{k}").into_bytes();
        let next: Vec<parking_lot::Mutex<u64>> = (0..KEYS).map(|_| Default::default()).collect();
        let done: Vec<AtomicU64> = (0..KEYS).map(|_| AtomicU64::new(0)).collect();
        let writers_left = AtomicU64::new(2);
        std::thread::scope(|s| {
            for w in 0..2u64 {
                let (engine, next, done, writers_left) = (&engine, &next, &done, &writers_left);
                s.spawn(move || {
                    for i in 0..WRITES_PER_WRITER {
                        let k = ((i * 7 + w * 3) % KEYS as u64) as usize;
                        // One writer per key at a time, so versions of a
                        // key are written in timestamp order.
                        let mut n = next[k].lock();
                        *n += 1;
                        let v = *n;
                        let mut b = WriteBatch::new();
                        mvcc::put(
                            engine,
                            &mut b,
                            &key(k),
                            Timestamp::new(v, 0),
                            Some(v.to_be_bytes().to_vec()),
                            None,
                        )
                        .unwrap();
                        engine.write(b, false).unwrap();
                        drop(n);
                        done[k].fetch_max(v, Ordering::SeqCst);
                    }
                    writers_left.fetch_sub(1, Ordering::SeqCst);
                });
            }
            for r in 0..2usize {
                let (engine, done, writers_left) = (&engine, &done, &writers_left);
                s.spawn(move || {
                    let mut i = r;
                    while writers_left.load(Ordering::SeqCst) > 0 {
                        i = (i + 5) % KEYS;
                        let floor = done[i].load(Ordering::SeqCst);
                        let read =
                            mvcc::get(engine, &key(i), Timestamp::new(u64::MAX / 2, 0), None)
                                .unwrap()
                                .map_or(0, |v| u64::from_be_bytes(v.try_into().unwrap()));
                        assert!(
                            read >= floor,
                            "key{i}: read version {read} after {floor} was written"
                        );
                    }
                });
            }
        });
    }

    #[test]
    fn memory_stays_within_the_budget() {
        let c = NewestVersionCache::new(16 * 1024);
        for i in 0..10_000u32 {
            let k = i.to_be_bytes();
            fill_after_miss(&c, &k, version(1, "0123456789"));
        }
        let held: usize = c.shards.iter().map(|s| s.lock().unwrap().bytes).sum();
        assert!(held <= 16 * 1024, "{held}");
        assert!(!c.is_empty());
    }
}
