//! The client API over the whole keyspace: [`DB`] routes every operation to
//! the leaseholder of the range that holds its key.
//!
//! Routing uses a [`RangeCache`] of descriptors and leaseholders. A miss
//! reads the descriptor from /meta (in range 1, found through gossip). A
//! reply that says the cache was wrong (`NotLeaseholder`,
//! `RangeKeyMismatch`, `RangeNotFound`, an unreachable node) updates the
//! cache and the operation is retried, with backoff, until it succeeds or
//! the deadline passes. Each operation is linearizable per key: reads are
//! served by the leaseholder under a valid lease, writes are applied
//! through raft before they are acknowledged.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prost::Message as _;
use tessera_common::keys;
use tessera_common::proto::{
    self, kv_error, kv_request, KvRequest, KvResponse, RangeDescriptor, ReplicaType, TxnStatus,
};
use tessera_common::{Clock, Timestamp};

/// Errors of the client API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A conditional put found another value (`None`: the key is absent).
    ConditionFailed {
        actual: Option<Vec<u8>>,
    },
    /// The request is invalid (not worth retrying).
    BadRequest(String),
    /// The cluster could not serve the request before the deadline. With
    /// `ambiguous`, a write may or may not have been applied.
    Unavailable {
        reason: String,
        ambiguous: bool,
    },
    Internal(String),
    /// The writes of an atomic batch fall in more than one range (use a
    /// transaction for atomic writes across ranges).
    CrossRange(String),
    /// Intents of other transactions are in the way (handled inside the
    /// client: it pushes or waits, then retries).
    WriteIntent(Vec<proto::IntentInfo>),
    /// A write could not happen at the requested timestamp (a one-phase
    /// commit or a refresh found a newer write at `ts`).
    WriteTooOld(Timestamp),
    /// A read met a value in its uncertainty window, written at `ts`.
    Uncertainty(Timestamp),
    /// The transaction must be retried from the start (SQLSTATE 40001);
    /// the message names why.
    Retry(String),
    /// The transaction was chosen to break a deadlock (SQLSTATE 40P01).
    Deadlock(String),
    /// A read at `ts` is below the GC threshold: what it would see may
    /// have been garbage-collected.
    BelowGcThreshold {
        ts: Timestamp,
        threshold: Timestamp,
    },
}

impl Error {
    /// Whether the operation may or may not have taken effect.
    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            Error::Unavailable {
                ambiguous: true,
                ..
            }
        )
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::ConditionFailed { actual: None } => write!(f, "condition failed: key is absent"),
            Error::ConditionFailed { actual: Some(v) } => write!(
                f,
                "condition failed: current value is {:?}",
                String::from_utf8_lossy(v)
            ),
            Error::BadRequest(m) => write!(f, "bad request: {m}"),
            Error::Unavailable { reason, ambiguous } => {
                if *ambiguous {
                    write!(f, "result unknown: {reason}")
                } else {
                    write!(f, "unavailable: {reason}")
                }
            }
            Error::Internal(m) => write!(f, "internal error: {m}"),
            Error::CrossRange(m) => write!(f, "writes span several ranges: {m}"),
            Error::WriteIntent(i) => write!(f, "conflicting intents on {} key(s)", i.len()),
            Error::WriteTooOld(ts) => write!(f, "write too old: a newer write exists at {ts}"),
            Error::Uncertainty(ts) => {
                write!(
                    f,
                    "read within uncertainty interval: a write exists at {ts}"
                )
            }
            Error::Retry(m) => write!(f, "restart transaction: {m}"),
            Error::Deadlock(m) => write!(f, "deadlock detected: {m}"),
            Error::BelowGcThreshold { ts, threshold } => write!(
                f,
                "timestamp {ts} is below the GC threshold {threshold}: the versions it \
                 would read may have been garbage-collected"
            ),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// How many times an operation that is safe to repeat tries again after
/// an attempt whose outcome is unknown.
const AMBIGUOUS_RETRIES: u32 = 5;

/// A future returned by a [`NodeDialer`].
pub type DialFuture =
    Pin<Box<dyn Future<Output = std::result::Result<KvResponse, DialError>> + Send>>;

/// Why a request to a node got no answer.
#[derive(Clone, Debug)]
pub struct DialError {
    pub reason: String,
    /// Whether the node may have received, and acted on, the request.
    /// False only when it certainly did not (no connection could be
    /// opened, the node is known to be down): a write in it did not apply.
    pub maybe_delivered: bool,
}

impl DialError {
    /// The request never left: nothing it asked for happened.
    pub fn not_sent(reason: impl Into<String>) -> Self {
        DialError {
            reason: reason.into(),
            maybe_delivered: false,
        }
    }

    /// The request may have reached the node, which did not answer.
    pub fn unanswered(reason: impl Into<String>) -> Self {
        DialError {
            reason: reason.into(),
            maybe_delivered: true,
        }
    }
}

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// How the client reaches nodes (gRPC in a server, direct calls in tests).
pub trait NodeDialer: Send + Sync + 'static {
    /// Sends a request to the store of `node_id`. `Err` means no answer
    /// came, and says whether the request may still have been delivered.
    fn send(&self, node_id: u64, req: KvRequest) -> DialFuture;
    /// Range 1's descriptor and its leaseholder, as known from gossip.
    fn first_range(&self) -> Option<(RangeDescriptor, u64)>;
    /// Nodes to try when nothing better is known.
    fn known_nodes(&self) -> Vec<u64>;
    /// The node this client runs on (0: none), sent with every request so
    /// that leases can move toward their load.
    fn local_node(&self) -> u64 {
        0
    }
}

#[derive(Clone, Debug)]
struct CachedRange {
    desc: RangeDescriptor,
    leaseholder: u64,
}

/// Descriptors and leaseholders of ranges, keyed by end key.
#[derive(Default)]
pub struct RangeCache {
    by_end: BTreeMap<Vec<u8>, CachedRange>,
}

impl RangeCache {
    /// The cached range containing `key`.
    fn lookup(&self, key: &[u8]) -> Option<CachedRange> {
        let next = keys::next_key(key);
        let (_, r) = self
            .by_end
            .range::<[u8], _>((
                std::ops::Bound::Included(next.as_slice()),
                std::ops::Bound::Unbounded,
            ))
            .next()?;
        (r.desc.start_key.as_slice() <= key).then(|| r.clone())
    }

    /// Inserts a descriptor, evicting overlapping older ones.
    fn insert(&mut self, desc: RangeDescriptor, leaseholder: u64) {
        let overlapping: Vec<Vec<u8>> = self
            .by_end
            .range::<[u8], _>((
                std::ops::Bound::Excluded(desc.start_key.as_slice()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(_, r)| r.desc.start_key < desc.end_key)
            .map(|(k, _)| k.clone())
            .collect();
        for k in overlapping {
            if let Some(r) = self.by_end.get(&k) {
                if r.desc.generation > desc.generation && r.desc.range_id == desc.range_id {
                    return; // we already know something newer
                }
            }
            self.by_end.remove(&k);
        }
        self.by_end
            .insert(desc.end_key.clone(), CachedRange { desc, leaseholder });
    }

    fn set_leaseholder(&mut self, range_id: u64, node: u64) {
        for r in self.by_end.values_mut() {
            if r.desc.range_id == range_id {
                r.leaseholder = node;
            }
        }
    }

    fn evict(&mut self, range_id: u64) {
        self.by_end.retain(|_, r| r.desc.range_id != range_id);
    }
}

/// The cluster-wide key/value client.
pub struct DB {
    dialer: Arc<dyn NodeDialer>,
    cache: Mutex<RangeCache>,
    clock: Clock,
    /// How long an operation keeps retrying.
    pub deadline: Duration,
    /// `--linearizable`: commits wait out the clock uncertainty.
    commit_wait: std::sync::atomic::AtomicBool,
    /// Intent resolutions waiting to be sent, batched per range.
    pub(crate) resolver: crate::resolver::Resolver,
}

#[derive(Clone, Copy)]
pub(crate) enum Route {
    /// The range containing the key.
    Key,
    /// The range containing the keys just below the key (reverse scans).
    Before,
}

impl DB {
    pub fn new(dialer: Arc<dyn NodeDialer>, clock: Clock) -> Self {
        DB {
            dialer,
            cache: Mutex::new(RangeCache::default()),
            clock,
            deadline: Duration::from_secs(20),
            commit_wait: std::sync::atomic::AtomicBool::new(false),
            resolver: Default::default(),
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Makes every transaction commit wait until its timestamp is behind
    /// every node's clock (external consistency, at a latency cost).
    pub fn set_commit_wait(&self, on: bool) {
        self.commit_wait
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn commit_wait(&self) -> bool {
        self.commit_wait.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The descriptor of the range holding `key` (from the cache if known).
    pub async fn range_for(&self, key: &[u8]) -> Result<RangeDescriptor> {
        Ok(self.lookup(key).await?.desc)
    }

    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let op = kv_request::Op::Get(proto::GetRequest {
            key: key.to_vec(),
            ..Default::default()
        });
        Ok(self.send(key, Route::Key, op).await?.1.value)
    }

    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let op = kv_request::Op::Put(proto::PutRequest {
            key: key.to_vec(),
            value: value.to_vec(),
        });
        self.send(key, Route::Key, op).await.map(|_| ())
    }

    pub async fn delete(&self, key: &[u8]) -> Result<()> {
        let op = kv_request::Op::Delete(proto::DeleteRequest { key: key.to_vec() });
        self.send(key, Route::Key, op).await.map(|_| ())
    }

    /// Writes `value` if the current value is `expected` (`None`: absent).
    pub async fn cput(&self, key: &[u8], value: &[u8], expected: Option<&[u8]>) -> Result<()> {
        let op = kv_request::Op::Cput(proto::CPutRequest {
            key: key.to_vec(),
            value: value.to_vec(),
            expected: expected.map(|e| e.to_vec()),
        });
        self.send(key, Route::Key, op).await.map(|_| ())
    }

    /// Applies `writes` atomically: all or none. They must fall in one
    /// range ([`Error::CrossRange`] otherwise); a failed conditional put
    /// fails the whole batch with [`Error::ConditionFailed`].
    pub async fn write_batch(&self, writes: Vec<proto::BatchWrite>) -> Result<()> {
        let keys: Vec<Vec<u8>> = writes
            .iter()
            .filter_map(|w| crate::store::batch_write_key(w).map(|k| k.to_vec()))
            .collect();
        let Some(first) = keys.first().cloned() else {
            return Ok(());
        };
        let op = kv_request::Op::Batch(proto::WriteBatchRequest { writes });
        self.send_with(&first, Route::Key, |desc| {
            match keys.iter().find(|k| {
                !(desc.start_key.as_slice() <= k.as_slice()
                    && k.as_slice() < desc.end_key.as_slice())
            }) {
                Some(k) => Err(Error::CrossRange(format!(
                    "{} and {} are in different ranges",
                    keys::pretty(&first),
                    keys::pretty(k)
                ))),
                None => Ok(op.clone()),
            }
        })
        .await
        .map(|_| ())
    }

    /// Keys in `[start, end)` in order (descending if `reverse`), at most
    /// `limit` (0: all), across as many ranges as the span covers.
    pub async fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        let (mut lo, mut hi) = (start.to_vec(), end.to_vec());
        while lo < hi {
            let remaining = if limit == 0 { 0 } else { limit - out.len() };
            let (route_key, route) = if reverse {
                (hi.clone(), Route::Before)
            } else {
                (lo.clone(), Route::Key)
            };
            let (desc, resp) = self
                .send_with(&route_key, route, |desc| {
                    let s = lo.clone().max(desc.start_key.clone());
                    let e = hi.clone().min(desc.end_key.clone());
                    Ok(kv_request::Op::Scan(proto::ScanRequest {
                        start: s,
                        end: e,
                        limit: remaining as u32,
                        reverse,
                        ..Default::default()
                    }))
                })
                .await?;
            out.extend(resp.rows.into_iter().map(|kv| (kv.key, kv.value)));
            if limit != 0 && out.len() >= limit {
                break;
            }
            if reverse {
                hi = match resp.resume_key {
                    Some(k) => k,
                    None => desc.start_key.clone(),
                };
            } else {
                lo = match resp.resume_key {
                    Some(k) => k,
                    None => desc.end_key.clone(),
                };
            }
        }
        Ok(out)
    }

    /// Splits the range containing `key` so that a range starts at `key`.
    pub async fn split(&self, key: &[u8]) -> Result<RangeDescriptor> {
        let op = kv_request::Op::Split(proto::SplitRequest {
            split_key: key.to_vec(),
        });
        let (_, resp) = self.send(key, Route::Key, op).await?;
        // The left side changed: refresh what we know.
        if let Some(d) = &resp.descriptor {
            self.cache.lock().evict(d.range_id);
        }
        Ok(resp.descriptor.unwrap_or_default())
    }

    /// Moves the lease of the range containing `key` to `node_id`.
    pub async fn transfer_lease(&self, key: &[u8], node_id: u64) -> Result<()> {
        let op = kv_request::Op::TransferLease(proto::TransferLeaseRequest {
            target_node: node_id,
            key: key.to_vec(),
        });
        self.send(key, Route::Key, op).await?;
        let range_id = self.lookup(key).await?.desc.range_id;
        self.cache.lock().set_leaseholder(range_id, node_id);
        Ok(())
    }

    /// Adds (or removes) a replica of the range containing `key`.
    pub async fn change_replicas(
        &self,
        key: &[u8],
        node_id: u64,
        remove: bool,
    ) -> Result<RangeDescriptor> {
        let op = kv_request::Op::ChangeReplicas(proto::ChangeReplicasRequest {
            node_id,
            remove,
            key: key.to_vec(),
        });
        let (_, resp) = self.send(key, Route::Key, op).await?;
        Ok(resp.descriptor.unwrap_or_default())
    }

    /// Atomically adds one to the u64 counter at `key`; returns the new value.
    pub async fn increment(&self, key: &[u8]) -> Result<u64> {
        self.add(key, 1).await
    }

    /// Atomically adds `n` to the u64 counter at `key` (big-endian, absent
    /// is 0); returns the new value. Numbers are never handed out twice;
    /// an attempt whose outcome is unknown may leave a gap.
    pub async fn add(&self, key: &[u8], n: u64) -> Result<u64> {
        let mut attempts = 0..AMBIGUOUS_RETRIES;
        loop {
            let cur = self.get(key).await?;
            let old = match &cur {
                Some(v) => u64::from_be_bytes(
                    v.as_slice()
                        .try_into()
                        .map_err(|_| Error::Internal("counter is not a u64".into()))?,
                ),
                None => 0,
            };
            let new = old.checked_add(n).ok_or_else(|| {
                Error::BadRequest(format!("counter {} overflows", keys::pretty(key)))
            })?;
            match self.cput(key, &new.to_be_bytes(), cur.as_deref()).await {
                Ok(()) => return Ok(new),
                Err(Error::ConditionFailed { .. }) => continue,
                // The lost attempt may have taken these numbers; the next
                // one takes numbers after them (a gap, never a duplicate).
                Err(
                    e @ Error::Unavailable {
                        ambiguous: true, ..
                    },
                ) if attempts.next().is_some() => {
                    tracing::debug!("adding to {}: {e}; trying again", keys::pretty(key));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Records `desc` in /meta unless a newer generation is already there.
    pub async fn update_meta(&self, desc: &RangeDescriptor) -> Result<()> {
        let key = keys::meta_key(&desc.end_key);
        let mut attempts = 0..AMBIGUOUS_RETRIES;
        loop {
            let cur = self.get(&key).await?;
            if let Some(bytes) = &cur {
                if let Ok(existing) = RangeDescriptor::decode(bytes.as_slice()) {
                    if existing.generation >= desc.generation {
                        return Ok(());
                    }
                }
            }
            match self.cput(&key, &desc.encode_to_vec(), cur.as_deref()).await {
                Ok(()) => return Ok(()),
                Err(Error::ConditionFailed { .. }) => continue,
                // Writing the same descriptor again is harmless: look.
                Err(Error::Unavailable {
                    ambiguous: true, ..
                }) if attempts.next().is_some() => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Every range descriptor, in key order, read from /meta.
    pub async fn ranges(&self) -> Result<Vec<RangeDescriptor>> {
        let rows = self
            .scan(keys::META_PREFIX, keys::META_END, 0, false)
            .await?;
        rows.into_iter()
            .map(|(_, v)| {
                RangeDescriptor::decode(v.as_slice())
                    .map_err(|e| Error::Internal(format!("corrupt descriptor in /meta: {e}")))
            })
            .collect()
    }

    /// The node serving the lease of `desc`'s range: sends a cheap read
    /// (a Get of the range's start key) so routing finds the leaseholder and
    /// caches it, then returns it (0 if the range could not be reached).
    pub async fn leaseholder_of(&self, desc: &RangeDescriptor) -> Result<u64> {
        let op = kv_request::Op::Get(proto::GetRequest {
            key: desc.start_key.clone(),
            ..Default::default()
        });
        let (d, _) = self.send(&desc.start_key, Route::Key, op).await?;
        Ok(self.cached_leaseholder(d.range_id))
    }

    /// The leaseholder this client last saw for a range (0: unknown).
    pub fn cached_leaseholder(&self, range_id: u64) -> u64 {
        self.cache
            .lock()
            .by_end
            .values()
            .find(|r| r.desc.range_id == range_id)
            .map(|r| r.leaseholder)
            .unwrap_or(0)
    }

    /// The range containing `key`: from the cache, else from /meta.
    async fn lookup(&self, key: &[u8]) -> Result<CachedRange> {
        if let Some(r) = self.cache.lock().lookup(key) {
            return Ok(r);
        }
        self.lookup_uncached(key, Route::Key).await
    }

    async fn lookup_uncached(&self, key: &[u8], route: Route) -> Result<CachedRange> {
        if key < keys::META_END {
            // Range 1 holds /meta; it is found through gossip.
            let (desc, lh) = self
                .dialer
                .first_range()
                .ok_or_else(|| Error::Unavailable {
                    reason: "range 1 location unknown (cluster not initialized or unreachable)"
                        .into(),
                    ambiguous: false,
                })?;
            self.cache.lock().insert(desc.clone(), lh);
            return Ok(CachedRange {
                desc,
                leaseholder: lh,
            });
        }
        let start = match route {
            Route::Key => keys::meta_lookup_start(key),
            Route::Before => keys::meta_key(key),
        };
        let rows = Box::pin(self.scan(&start, keys::META_END, 1, false)).await?;
        let (_, v) = rows.into_iter().next().ok_or_else(|| {
            Error::Internal(format!("no range descriptor covers {}", keys::pretty(key)))
        })?;
        let desc = RangeDescriptor::decode(v.as_slice())
            .map_err(|e| Error::Internal(format!("corrupt descriptor in /meta: {e}")))?;
        let cached = CachedRange {
            desc: desc.clone(),
            leaseholder: 0,
        };
        self.cache.lock().insert(desc, 0);
        Ok(cached)
    }

    async fn send(
        &self,
        key: &[u8],
        route: Route,
        op: kv_request::Op,
    ) -> Result<(RangeDescriptor, KvResponse)> {
        self.send_with(key, route, |_| Ok(op.clone())).await
    }

    /// [`DB::send_raw`] for operations outside transactions: intents in
    /// the way are waited for (their transactions pushed), then the
    /// operation is retried.
    async fn send_with(
        &self,
        key: &[u8],
        route: Route,
        build: impl Fn(&RangeDescriptor) -> Result<kv_request::Op>,
    ) -> Result<(RangeDescriptor, KvResponse)> {
        loop {
            match self.send_raw(key, route, &build).await {
                Err(Error::WriteIntent(intents)) => self.wait_for_intents(&intents).await?,
                r => return r,
            }
        }
    }

    /// [`DB::send_raw`] of one fixed operation to the range holding `key`.
    pub(crate) async fn send_op(
        &self,
        key: &[u8],
        op: kv_request::Op,
    ) -> Result<(RangeDescriptor, KvResponse)> {
        let build = move |_: &RangeDescriptor| Ok(op.clone());
        self.send_raw(key, Route::Key, &build).await
    }

    /// Sends an operation (built for the range found) to the leaseholder of
    /// the range holding `key`, retrying through routing errors.
    pub(crate) async fn send_raw(
        &self,
        key: &[u8],
        route: Route,
        build: impl Fn(&RangeDescriptor) -> Result<kv_request::Op>,
    ) -> Result<(RangeDescriptor, KvResponse)> {
        let deadline = Instant::now() + self.deadline;
        let mut backoff = Duration::from_millis(10);
        let mut last_err = String::from("no attempt made");
        let mut tried: Vec<u64> = Vec::new();
        let mut ambiguous = false;
        // Whether the operation, once applied, commits a transaction (a
        // one-phase commit, or a record marked STAGING or COMMITTED): after
        // an attempt that may have applied, no later failure says it did
        // not, since the first attempt's own write may be what the retry
        // runs into (another transaction's intent laid over it, a range
        // split since). Such failures are reported as outcome-unknown.
        let mut commits = false;
        loop {
            if Instant::now() >= deadline {
                return Err(Error::Unavailable {
                    reason: last_err,
                    ambiguous,
                });
            }
            let cached = match route {
                Route::Key => self.cache.lock().lookup(key),
                Route::Before => {
                    // The range whose span includes keys just below `key`.
                    let c = self.cache.lock();
                    c.by_end
                        .range::<[u8], _>((
                            std::ops::Bound::Included(key),
                            std::ops::Bound::Unbounded,
                        ))
                        .next()
                        .filter(|(_, r)| r.desc.start_key.as_slice() < key)
                        .map(|(_, r)| r.clone())
                }
            };
            let range = match cached {
                Some(r) => r,
                None => match self
                    .lookup_uncached(
                        key,
                        match route {
                            Route::Key => Route::Key,
                            Route::Before => Route::Before,
                        },
                    )
                    .await
                {
                    Ok(r) => r,
                    Err(e) => {
                        last_err = e.to_string();
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_millis(500));
                        continue;
                    }
                },
            };
            let desc = range.desc.clone();
            // Target: the known leaseholder, else replicas not yet tried.
            let voters: Vec<u64> = desc
                .replicas
                .iter()
                .filter(|r| r.r#type == ReplicaType::Voter as i32)
                .map(|r| r.node_id)
                .collect();
            let target = if range.leaseholder != 0 && !tried.contains(&range.leaseholder) {
                range.leaseholder
            } else if let Some(n) = voters.iter().find(|n| !tried.contains(n)) {
                *n
            } else {
                // Everyone tried: start over after a pause, forgetting
                // what we knew about this range.
                tried.clear();
                self.cache.lock().evict(desc.range_id);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
                continue;
            };
            let op = match build(&desc) {
                Ok(op) => op,
                Err(e) => return Err(final_error(e, ambiguous && commits, &last_err)),
            };
            let is_read = matches!(op, kv_request::Op::Get(_) | kv_request::Op::Scan(_));
            commits |= match &op {
                kv_request::Op::TxnWrite(w) => {
                    w.one_phase
                        || w.end
                            .as_ref()
                            .is_some_and(|e| e.status != TxnStatus::Aborted as i32)
                }
                _ => false,
            };
            // A write outside a transaction, or a one-phase commit that may
            // be pushed, takes its timestamp where it applies: a second
            // attempt after a first one that applied would write again,
            // later, over whatever came between. Its outcome, once unknown,
            // stays unknown.
            let unrepeatable = match &op {
                kv_request::Op::Put(_)
                | kv_request::Op::Delete(_)
                | kv_request::Op::Cput(_)
                | kv_request::Op::Batch(_) => true,
                kv_request::Op::TxnWrite(w) => w.one_phase && w.allow_push,
                _ => false,
            };
            let req = KvRequest {
                range_id: desc.range_id,
                timestamp: Some(self.clock.now().into()),
                gateway_node_id: self.dialer.local_node(),
                op: Some(op),
            };
            let resp = match self.dialer.send(target, req).await {
                Ok(r) => r,
                Err(e) => {
                    // A write whose RPC failed after it was sent may still
                    // have been applied (a timeout, or a node that died
                    // after proposing): if the operation ends in failure,
                    // its outcome is unknown.
                    ambiguous |= !is_read && e.maybe_delivered;
                    last_err = format!("node {target}: {e}");
                    if ambiguous && unrepeatable {
                        return Err(Error::Unavailable {
                            reason: format!("{last_err}; the write may or may not have applied"),
                            ambiguous: true,
                        });
                    }
                    tried.push(target);
                    self.cache.lock().set_leaseholder(desc.range_id, 0);
                    continue;
                }
            };
            if let Some(ts) = resp.timestamp {
                let _ = self.clock.update(ts.into());
            }
            let Some(kind) = resp.error.as_ref().and_then(|e| e.kind.clone()) else {
                self.cache.lock().set_leaseholder(desc.range_id, target);
                return Ok((desc, resp));
            };
            // A failure that ends the request (see [`final_error`]).
            let fail = |e: Error| final_error(e, ambiguous && commits, &last_err);
            match kind {
                kv_error::Kind::NotLeaseholder(nl) => {
                    tried.push(target);
                    let hint = if tried.contains(&nl.leaseholder_node) {
                        0
                    } else {
                        nl.leaseholder_node
                    };
                    {
                        let mut cache = self.cache.lock();
                        if let Some(d) = nl.descriptor {
                            if d.generation > desc.generation {
                                cache.insert(d, 0);
                            }
                        }
                        cache.set_leaseholder(desc.range_id, hint);
                    }
                    last_err = format!("range {}: no leaseholder reachable", desc.range_id);
                    if hint == 0 {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_millis(500));
                    }
                }
                kv_error::Kind::RangeNotFound(_) => {
                    tried.push(target);
                    last_err = format!("range {} not found on node {target}", desc.range_id);
                }
                kv_error::Kind::KeyMismatch(m) => {
                    {
                        let mut cache = self.cache.lock();
                        cache.evict(desc.range_id);
                        for d in m.descriptors {
                            if d.range_id != desc.range_id || d.generation > desc.generation {
                                cache.insert(d, target);
                            }
                        }
                    }
                    last_err = format!("range {} changed", desc.range_id);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
                kv_error::Kind::ConditionFailed(c) => {
                    if ambiguous {
                        // An earlier attempt may have applied this very
                        // write, which is why the condition no longer holds.
                        return Err(Error::Unavailable {
                            reason: format!(
                                "{last_err}; a retry found the condition changed, so the \
                                 first attempt may have applied"
                            ),
                            ambiguous: true,
                        });
                    }
                    return Err(Error::ConditionFailed { actual: c.actual });
                }
                kv_error::Kind::BadRequest(m) => return Err(fail(Error::BadRequest(m))),
                kv_error::Kind::WriteIntent(w) => return Err(fail(Error::WriteIntent(w.intents))),
                kv_error::Kind::TxnAborted(a) => return Err(fail(Error::Retry(a.reason))),
                kv_error::Kind::WriteTooOld(w) => {
                    if ambiguous {
                        // An earlier attempt of this very commit may have
                        // applied: its own write is what is "newer" now.
                        return Err(Error::Unavailable {
                            reason: format!(
                                "{last_err}; a retry found a newer write, which may be the \
                                 first attempt's"
                            ),
                            ambiguous: true,
                        });
                    }
                    return Err(Error::WriteTooOld(w.ts.unwrap_or_default().into()));
                }
                kv_error::Kind::BelowGcThreshold(b) => {
                    return Err(Error::BelowGcThreshold {
                        ts: b.ts.unwrap_or_default().into(),
                        threshold: b.threshold.unwrap_or_default().into(),
                    })
                }
                kv_error::Kind::Uncertainty(u) => {
                    return Err(Error::Uncertainty(u.ts.unwrap_or_default().into()))
                }
                kv_error::Kind::Internal(m) => return Err(fail(Error::Internal(m))),
                kv_error::Kind::Unavailable(u) => {
                    ambiguous |= u.ambiguous;
                    last_err = u.reason;
                    if ambiguous && unrepeatable {
                        return Err(Error::Unavailable {
                            reason: last_err,
                            ambiguous: true,
                        });
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
            }
        }
    }
}

/// The error a request ends with. Once an attempt of a commit may have
/// applied, no later failure says it did not (the retry may be running
/// into that attempt's own write): the outcome is unknown.
fn final_error(e: Error, commit_may_have_applied: bool, last_err: &str) -> Error {
    if !commit_may_have_applied {
        return e;
    }
    Error::Unavailable {
        reason: format!("{last_err}; then: {e}; the commit may or may not have applied"),
        ambiguous: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(id: u64, start: &[u8], end: &[u8], generation: u64) -> RangeDescriptor {
        RangeDescriptor {
            range_id: id,
            start_key: start.to_vec(),
            end_key: end.to_vec(),
            generation,
            ..Default::default()
        }
    }

    #[test]
    fn cache_finds_the_range_containing_a_key() {
        let mut c = RangeCache::default();
        c.insert(desc(1, b"", b"m", 1), 0);
        c.insert(desc(2, b"m", b"\xff\xff", 1), 0);
        assert_eq!(c.lookup(b"a").unwrap().desc.range_id, 1);
        assert_eq!(c.lookup(b"m").unwrap().desc.range_id, 2);
        assert_eq!(c.lookup(b"l\xff").unwrap().desc.range_id, 1);
    }

    #[test]
    fn cache_replaces_overlapping_descriptors_after_a_split() {
        let mut c = RangeCache::default();
        c.insert(desc(1, b"", b"\xff\xff", 1), 0);
        c.insert(desc(1, b"", b"k", 2), 0);
        assert!(c.lookup(b"z").is_none());
        assert_eq!(c.lookup(b"a").unwrap().desc.generation, 2);
    }
}
