//! Distributed transactions: the client-side coordinator ([`Txn`]) and the
//! conflict handling every client shares ([`DB::wait_for_intent`]).
//!
//! A transaction reads at its read timestamp (a snapshot: own writes aside,
//! every read sees the database as of that instant) and buffers its writes;
//! `commit` makes them durable atomically, across any number of ranges:
//!
//! - **One range (1PC):** all writes go to that range in one raft command
//!   that writes committed versions directly. No record, one round.
//! - **Several ranges (parallel commit):** the range of the first key (the
//!   *anchor*) gets its writes as intents plus the transaction record in
//!   state STAGING listing the writes in flight elsewhere; the other ranges
//!   get their intents, all at the same time. When every write succeeded at
//!   or below the staged timestamp the transaction is committed (a reader
//!   that finds the STAGING record can verify that itself), so the client is
//!   answered after one consensus round. The record is then marked
//!   COMMITTED and the intents resolved in the background.
//!
//! **Serializability** comes from timestamp ordering. A write lands above
//! every earlier read of its key (the leaseholder's timestamp cache) and
//! above every committed version. If that moves the commit timestamp above
//! the read timestamp, the transaction *refreshes*: it checks that nothing
//! it read changed in between; if something did, it fails with a retry
//! error (SQLSTATE 40001) naming the reason. A read that finds a value
//! written shortly after its timestamp, within the clock uncertainty
//! (`--max-offset`), cannot know whether that write happened first: it moves
//! its timestamp above the value (refreshing earlier reads) and reads again.
//!
//! **Conflicts.** Meeting another transaction's intent, a client *pushes*
//! that transaction: it reads its record on the record's range. A finished
//! transaction's intent is resolved on the spot; a live one is waited for
//! (the range wakes waiters when intents go away, no polling); a
//! transaction whose coordinator stopped heartbeating for [`TXN_EXPIRY`] is
//! aborted (or, if STAGING, recovered: committed if all its writes are
//! there, else aborted after making the missing ones impossible). A waiting
//! transaction publishes what it waits for in its own record, so waiters
//! follow the chain and detect cycles: the member with the lowest priority
//! is aborted with a deadlock error (SQLSTATE 40P01).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tessera_common::proto::{self, kv_request, BatchWrite, IntentInfo, TxnRecord, TxnStatus};
use tessera_common::Timestamp;

use crate::db::{Error, Result, Route, DB};
use crate::replica::contains;
use crate::store::point_end;

/// How often a coordinator proves it is alive.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// A transaction not heard from for this long may be aborted by anyone.
pub const TXN_EXPIRY: Duration = Duration::from_secs(2);
/// How long a blocked request waits on an intent before checking again
/// whether its owner is alive (and for deadlocks).
const PUSH_INTERVAL_MS: u32 = 250;
/// Longest waits-for chain followed when looking for a deadlock.
const MAX_CHAIN: usize = 16;
/// Most keys written, locked or resolved by one raft command. A larger
/// transaction writes its intents in batches first and then commits
/// explicitly (no in-flight list), so no command or record grows with it.
pub const MAX_BATCH_KEYS: usize = 2000;
/// Most bytes of values in one batch of intents.
const MAX_BATCH_BYTES: usize = 4 << 20;

/// A transaction id from its wire form.
pub fn txn_id(b: &[u8]) -> Option<[u8; 16]> {
    b.try_into().ok()
}

/// What a transaction's reads are isolated from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// Every read and write as of one timestamp, validated at commit.
    Serializable,
    /// Each statement reads the latest committed data; writes still never
    /// overwrite a change they did not see (conditional writes), but reads
    /// are not validated at commit.
    ReadCommitted,
}

/// A span read, `[start, end)`.
#[derive(Clone, Debug)]
struct ReadSpan {
    start: Vec<u8>,
    end: Vec<u8>,
}

/// The part of a transaction the heartbeat task shares.
struct Shared {
    waiting_for: Option<(Vec<u8>, Vec<u8>)>,
    aborted: bool,
}

/// A transaction. Reads go through it; writes are handed to [`Txn::commit`].
pub struct Txn {
    db: Arc<DB>,
    id: [u8; 16],
    priority: i32,
    isolation: Isolation,
    read_ts: Timestamp,
    uncertainty_limit: Timestamp,
    /// Fixed-timestamp (historical) read-only transaction.
    fixed: bool,
    reads: Vec<ReadSpan>,
    /// Per node: its clock when this transaction first read there.
    observed: BTreeMap<u64, Timestamp>,
    /// Whether the snapshot was taken (at the first read, as PostgreSQL
    /// takes it at the first statement, not at BEGIN).
    started: bool,
    anchor: Vec<u8>,
    /// Keys with intents written or locked, per attempt (for rollback).
    intents: Vec<Vec<u8>>,
    /// Whether some of those are replicated locks (READ COMMITTED).
    replicated_locks: bool,
    shared: Arc<Mutex<Shared>>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    finished: bool,
    /// Whether a STAGING or COMMITTED mark was sent for the record: from
    /// then on a failure is definite only once the record is ABORTED.
    commit_sent: bool,
}

/// What became of a transaction its coordinator tried to abort.
enum Aborted {
    /// Its record is ABORTED (or it never wrote one).
    Yes,
    /// Its record was COMMITTED already, at this timestamp.
    No(Timestamp),
    /// The record could not be reached.
    Unknown,
}

/// A transaction dropped before it finished (ROLLBACK, a failed statement,
/// a closed connection) is aborted in the background, so its intents and
/// row locks are released now rather than when others find its record
/// expired.
impl Drop for Txn {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        if self.finished || self.intents.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let end = self.abort_request();
        let (db, anchor, id) = (self.db.clone(), self.anchor.clone(), self.id);
        let keys = std::mem::take(&mut self.intents);
        runtime.spawn(async move {
            let _ = db.send_op(&anchor, kv_request::Op::TxnWrite(end)).await;
            db.resolve_in_background(id, keys, None);
        });
    }
}

impl Txn {
    /// Starts a transaction at the client's current time.
    pub fn begin(db: Arc<DB>, isolation: Isolation) -> Txn {
        let now = db.clock().now();
        let max_offset = db.clock().max_offset();
        Txn {
            id: rand::random(),
            priority: rand::random::<i32>().abs(),
            isolation,
            read_ts: now,
            uncertainty_limit: now.add_duration(max_offset),
            fixed: false,
            reads: Vec::new(),
            observed: BTreeMap::new(),
            started: false,
            anchor: Vec::new(),
            intents: Vec::new(),
            replicated_locks: false,
            shared: Arc::new(Mutex::new(Shared {
                waiting_for: None,
                aborted: false,
            })),
            heartbeat: None,
            finished: false,
            commit_sent: false,
            db,
        }
    }

    /// A read-only transaction reading the snapshot at `ts` (AS OF SYSTEM
    /// TIME): no uncertainty, never restarted.
    pub fn at(db: Arc<DB>, ts: Timestamp) -> Txn {
        let mut t = Txn::begin(db, Isolation::Serializable);
        t.read_ts = ts;
        t.uncertainty_limit = ts;
        t.fixed = true;
        t.started = true;
        t
    }

    pub fn read_timestamp(&self) -> Timestamp {
        self.read_ts
    }

    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    pub fn set_isolation(&mut self, isolation: Isolation) {
        self.isolation = isolation;
    }

    /// READ COMMITTED: a new statement sees everything committed before it.
    pub fn new_statement(&mut self) {
        if self.isolation == Isolation::ReadCommitted && !self.fixed {
            let now = self.db.clock().now();
            self.read_ts = now;
            self.uncertainty_limit = now.add_duration(self.db.clock().max_offset());
            self.reads.clear();
            self.observed.clear();
        }
    }

    /// Takes the snapshot at the first read.
    fn start(&mut self) {
        if !self.started {
            self.started = true;
            let now = self.db.clock().now();
            self.read_ts = now;
            self.uncertainty_limit = now.add_duration(self.db.clock().max_offset());
        }
    }

    fn observe(&mut self, resp: &proto::KvResponse) {
        if resp.node_id != 0 {
            if let Some(ts) = resp.timestamp {
                self.observed.entry(resp.node_id).or_insert(ts.into());
            }
        }
    }

    fn meta(&self, write_ts: Timestamp) -> proto::TxnMeta {
        proto::TxnMeta {
            id: self.id.to_vec(),
            anchor: self.anchor.clone(),
            write_ts: Some(write_ts.into()),
            read_ts: Some(self.read_ts.into()),
            uncertainty_limit: Some(self.uncertainty_limit.into()),
            priority: self.priority,
            observed: self
                .observed
                .iter()
                .map(|(n, ts)| proto::ObservedTimestamp {
                    node_id: *n,
                    ts: Some((*ts).into()),
                })
                .collect(),
        }
    }

    fn read_op_meta(&self) -> (Option<proto::TxnMeta>, Option<proto::Timestamp>) {
        if self.fixed {
            (None, Some(self.read_ts.into()))
        } else {
            (Some(self.meta(self.read_ts)), None)
        }
    }

    /// The value of `key` in this transaction's snapshot.
    pub async fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.start();
        loop {
            let (txn, read_ts) = self.read_op_meta();
            let op = kv_request::Op::Get(proto::GetRequest {
                key: key.to_vec(),
                txn,
                read_ts,
            });
            match self.db.send_op(key, op.clone()).await {
                Ok((_, resp)) => {
                    self.observe(&resp);
                    self.reads.push(ReadSpan {
                        start: key.to_vec(),
                        end: point_end(key),
                    });
                    return Ok(resp.value);
                }
                Err(e) => self.on_read_error(e).await?,
            }
        }
    }

    /// Keys in `[start, end)` in this transaction's snapshot, at most
    /// `limit` (0: all), descending if `reverse`.
    pub async fn scan(
        &mut self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.start();
        let mut out = Vec::new();
        let (mut lo, mut hi) = (start.to_vec(), end.to_vec());
        while lo < hi {
            let remaining = if limit == 0 { 0 } else { limit - out.len() };
            let (route_key, route) = if reverse {
                (hi.clone(), Route::Before)
            } else {
                (lo.clone(), Route::Key)
            };
            let (txn, read_ts) = self.read_op_meta();
            let build = |desc: &proto::RangeDescriptor| -> Result<kv_request::Op> {
                Ok(kv_request::Op::Scan(proto::ScanRequest {
                    start: lo.clone().max(desc.start_key.clone()),
                    end: hi.clone().min(desc.end_key.clone()),
                    limit: remaining as u32,
                    reverse,
                    txn: txn.clone(),
                    read_ts,
                }))
            };
            let (desc, resp) = match self.db.send_raw(&route_key, route, &build).await {
                Ok(r) => r,
                Err(e) => {
                    self.on_read_error(e).await?;
                    continue;
                }
            };
            self.observe(&resp);
            let n = resp.rows.len();
            out.extend(resp.rows.into_iter().map(|kv| (kv.key, kv.value)));
            let done = limit != 0 && out.len() >= limit;
            // Record what was actually read: up to the last row returned if
            // the scan stopped at its limit.
            let span_lo = lo.clone().max(desc.start_key.clone());
            let span_hi = hi.clone().min(desc.end_key.clone());
            if reverse {
                let next = match (&resp.resume_key, done) {
                    (_, true) => out
                        .last()
                        .map(|(k, _)| k.clone())
                        .unwrap_or(span_lo.clone()),
                    (Some(k), _) => k.clone(),
                    (None, _) => span_lo.clone(),
                };
                self.reads.push(ReadSpan {
                    start: next.clone(),
                    end: span_hi,
                });
                hi = next;
            } else {
                let next = match (&resp.resume_key, done) {
                    (_, true) if n > 0 => point_end(&out.last().expect("rows").0),
                    (Some(k), _) => k.clone(),
                    _ => span_hi.clone(),
                };
                self.reads.push(ReadSpan {
                    start: span_lo,
                    end: next.clone(),
                });
                lo = next;
            }
            if done {
                break;
            }
        }
        Ok(out)
    }

    /// Locks `keys` for this transaction (SELECT ... FOR UPDATE, the rows
    /// an UPDATE or DELETE is about to change) and returns their values,
    /// in the order given. Nobody else can write a locked key until this
    /// transaction ends; plain readers are not blocked.
    ///
    /// A lock reads the latest committed value: if a key changed after the
    /// read timestamp, the transaction first moves its read timestamp
    /// there, which needs everything read so far to be unchanged (a
    /// refresh; if that fails: a retry error). Under READ COMMITTED the
    /// move always succeeds: the statement sees the latest row, as in
    /// PostgreSQL.
    pub async fn lock(&mut self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        if self.fixed {
            return Err(Error::BadRequest(
                "a historical (AS OF SYSTEM TIME) transaction cannot lock rows".into(),
            ));
        }
        if self.finished {
            return Err(Error::BadRequest("transaction already finished".into()));
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.start();
        let mut sorted = keys.to_vec();
        sorted.sort();
        sorted.dedup();
        // SERIALIZABLE: the leaseholders keep the locks in memory (see the
        // concurrency module); the record is written by the heartbeat if
        // the transaction lives that long, else with the commit.
        // READ COMMITTED replicates them: the first lock writes the
        // transaction record in the same command (the lowest key anchors
        // it, so the first batch holds it): whoever meets a lock finds a
        // live transaction, never an abandoned one, and the record costs
        // no consensus round of its own.
        let unreplicated = self.isolation == Isolation::Serializable;
        let mut record_pending = self.anchor.is_empty() && !unreplicated;
        if self.anchor.is_empty() {
            self.anchor = sorted[0].clone();
        }
        let mut values = std::collections::HashMap::new();
        let mut todo = sorted;
        while !todo.is_empty() {
            let groups = self.db.group_by_range(todo.iter()).await?;
            let mut split = Vec::new();
            for group in groups.iter().flat_map(|g| g.chunks(MAX_BATCH_KEYS)) {
                let group = group.to_vec();
                let with_record = record_pending && group.contains(&self.anchor);
                if record_pending && !with_record {
                    // The range split under the anchor: write the record
                    // by itself before any lock.
                    let meta = self.meta(self.read_ts);
                    self.db.heartbeat(&meta, None, false).await?;
                    if self.heartbeat.is_none() {
                        self.start_heartbeat();
                    }
                    record_pending = false;
                }
                match self.lock_in_range(&group, with_record, unreplicated).await {
                    Ok(rows) => {
                        if with_record {
                            record_pending = false;
                        }
                        self.replicated_locks |= !unreplicated;
                        if self.heartbeat.is_none() {
                            self.start_heartbeat();
                        }
                        values.extend(rows.into_iter().map(|kv| (kv.key, kv.value)));
                        for k in &group {
                            self.reads.push(ReadSpan {
                                start: k.clone(),
                                end: point_end(k),
                            });
                        }
                        self.intents.extend(group);
                    }
                    // The range split meanwhile: group again.
                    Err(Error::CrossRange(_)) => split.extend(group),
                    Err(e) => return Err(e),
                }
            }
            todo = split;
        }
        Ok(keys.iter().map(|k| values.get(k).cloned()).collect())
    }

    /// Locks keys of one range: waits out other transactions' intents and
    /// moves the read timestamp above newer versions.
    async fn lock_in_range(
        &mut self,
        keys: &[Vec<u8>],
        with_record: bool,
        unreplicated: bool,
    ) -> Result<Vec<proto::KeyValue>> {
        let writes: Vec<BatchWrite> = keys
            .iter()
            .map(|k| BatchWrite {
                write: Some(proto::batch_write::Write::Lock(proto::LockRequest {
                    key: k.clone(),
                })),
            })
            .collect();
        loop {
            let req = proto::TxnWriteRequest {
                txn: Some(self.meta(self.read_ts)),
                writes: writes.clone(),
                one_phase: false,
                allow_push: true,
                // The record, PENDING, with the transaction's first lock.
                end: with_record.then(|| proto::EndTxnRequest {
                    status: TxnStatus::Pending as i32,
                    commit_ts: Some(self.read_ts.into()),
                    in_flight: Vec::new(),
                }),
                unreplicated,
            };
            let build = |desc: &proto::RangeDescriptor| -> Result<kv_request::Op> {
                if keys.iter().all(|k| contains(desc, k)) {
                    Ok(kv_request::Op::TxnWrite(req.clone()))
                } else {
                    Err(Error::CrossRange("the range split".into()))
                }
            };
            match self.db.send_raw(&keys[0], Route::Key, &build).await {
                Ok((_, resp)) => {
                    self.shared.lock().waiting_for = None;
                    self.observe(&resp);
                    return Ok(resp.rows);
                }
                Err(Error::WriteIntent(intents)) => {
                    for i in &intents {
                        self.wait_as_writer(i).await?;
                    }
                }
                Err(Error::WriteTooOld(ts)) => {
                    let to = ts.max(self.read_ts);
                    self.refresh(to).await.map_err(|e| match e {
                        Error::Retry(m) => Error::Retry(format!("write too old; {m}")),
                        e => e,
                    })?;
                    self.read_ts = to;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A read failed: wait out conflicts, or move above an uncertain value.
    async fn on_read_error(&mut self, e: Error) -> Result<()> {
        match e {
            Error::WriteIntent(intents) => self.db.wait_for_intents(&intents).await,
            Error::Uncertainty(ts) if !self.fixed => {
                // Read again above the uncertain value, if everything read
                // so far is still the same there.
                if self.refresh(ts).await.is_err() {
                    return Err(Error::Retry(format!(
                        "read within uncertainty interval (a write at {ts})"
                    )));
                }
                self.read_ts = ts;
                Ok(())
            }
            e => Err(e),
        }
    }

    /// Checks that every read made at `read_ts` sees the same at `to`.
    async fn refresh(&self, to: Timestamp) -> Result<()> {
        if self.isolation == Isolation::ReadCommitted {
            return Ok(());
        }
        for span in &self.reads {
            let mut lo = span.start.clone();
            while lo < span.end {
                let build = |desc: &proto::RangeDescriptor| -> Result<kv_request::Op> {
                    Ok(kv_request::Op::Refresh(proto::RefreshRequest {
                        start: lo.clone().max(desc.start_key.clone()),
                        end: span.end.clone().min(desc.end_key.clone()),
                        from: Some(self.read_ts.into()),
                        to: Some(to.into()),
                        txn_id: self.id.to_vec(),
                    }))
                };
                match self.db.send_raw(&lo, Route::Key, &build).await {
                    Ok((desc, _)) => lo = desc.end_key.clone().min(span.end.clone()),
                    Err(Error::WriteTooOld(ts)) => {
                        return Err(Error::Retry(format!(
                            "serialization failure: a value read was written again at {ts}"
                        )))
                    }
                    Err(Error::WriteIntent(_)) => {
                        return Err(Error::Retry(
                            "serialization failure: a value read is being written by \
                             another transaction"
                                .into(),
                        ))
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Commits `writes` (the last write of a key wins; `Cput`s check the
    /// latest committed value). Returns the commit timestamp.
    pub async fn commit(&mut self, writes: Vec<BatchWrite>) -> Result<Timestamp> {
        if self.finished {
            return Err(Error::BadRequest("transaction already finished".into()));
        }
        self.finished = true;
        // Several writes of one key stay in order (a conditional put then
        // a delete is a conditional delete); the range applies them in turn.
        let mut by_key: BTreeMap<Vec<u8>, Vec<BatchWrite>> = BTreeMap::new();
        for w in writes {
            if let Some(k) = crate::store::batch_write_key(&w) {
                by_key.entry(k.to_vec()).or_default().push(w);
            }
        }
        if by_key.is_empty() || self.fixed {
            if !by_key.is_empty() {
                return Err(Error::BadRequest(
                    "a historical (AS OF SYSTEM TIME) transaction cannot write".into(),
                ));
            }
            // Read-only: its reads stand at the read timestamp; locks, if
            // any, are released.
            self.abort_written().await;
            return Ok(self.read_ts);
        }
        self.start();
        let res = self.commit_writes(by_key).await;
        let res = match res {
            Ok(ts) => {
                self.commit_wait(ts).await;
                Ok(ts)
            }
            Err(e) => match self.abort_written().await {
                Aborted::Yes => Err(e),
                // Recovery found every write of a STAGING record in place
                // and committed it: the failure came after the commit.
                Aborted::No(ts) => {
                    self.commit_wait(ts).await;
                    Ok(ts)
                }
                Aborted::Unknown if self.commit_sent && !e.is_ambiguous() => {
                    Err(Error::Unavailable {
                        reason: format!(
                            "{e}; the transaction could not be aborted, and may have committed"
                        ),
                        ambiguous: true,
                    })
                }
                Aborted::Unknown => Err(e),
            },
        };
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        res
    }

    /// `--linearizable`: wait until the commit timestamp is in the past on
    /// every clock of the cluster before acknowledging.
    async fn commit_wait(&self, ts: Timestamp) {
        if !self.db.commit_wait() {
            return;
        }
        let until = ts.wall + self.db.clock().max_offset().as_millis() as u64;
        loop {
            let now = self.db.clock().physical_now();
            if now > until {
                return;
            }
            tokio::time::sleep(Duration::from_millis(until + 1 - now)).await;
        }
    }

    /// Stops heartbeating and forgets the transaction without releasing
    /// its intents, as a crashed coordinator would (fault injection and
    /// tests): others abort it once its record expires.
    pub fn abandon(mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        self.finished = true;
    }

    /// Abandons the transaction: its intents (if any) are removed.
    pub async fn rollback(&mut self) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        self.abort_written().await;
    }

    /// The request that marks the record ABORTED.
    fn abort_request(&self) -> proto::TxnWriteRequest {
        proto::TxnWriteRequest {
            txn: Some(self.meta(self.read_ts)),
            writes: Vec::new(),
            one_phase: false,
            allow_push: false,
            end: Some(proto::EndTxnRequest {
                status: TxnStatus::Aborted as i32,
                commit_ts: Some(self.read_ts.into()),
                in_flight: Vec::new(),
            }),
            unreplicated: false,
        }
    }

    /// Marks the record ABORTED and removes the intents - unless the
    /// record is COMMITTED already (recovery of a STAGING record found
    /// every write in place): then they are resolved as committed. When
    /// the record cannot be reached the intents stay; whoever meets one
    /// pushes the record and decides.
    async fn abort_written(&mut self) -> Aborted {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        if self.intents.is_empty() {
            return Aborted::Yes;
        }
        let end = self.abort_request();
        let anchor = self.anchor.clone();
        let reply = self
            .db
            .send_op(&anchor, kv_request::Op::TxnWrite(end.clone()))
            .await;
        let keys = std::mem::take(&mut self.intents);
        match reply.map(|(_, r)| r.record) {
            Ok(Some(rec)) if rec.status == TxnStatus::Committed as i32 => {
                let ts: Timestamp = rec.timestamp.unwrap_or_default().into();
                self.db
                    .clone()
                    .resolve_in_background(self.id, keys, Some(ts));
                Aborted::No(ts)
            }
            // Marked now, or aborted earlier by another transaction.
            Ok(_) | Err(Error::Retry(_)) => {
                self.db.clone().resolve_in_background(self.id, keys, None);
                Aborted::Yes
            }
            Err(_) => Aborted::Unknown,
        }
    }

    async fn commit_writes(
        &mut self,
        writes: BTreeMap<Vec<u8>, Vec<BatchWrite>>,
    ) -> Result<Timestamp> {
        let bytes: usize = writes.values().flatten().map(write_size).sum();
        if writes.len() > MAX_BATCH_KEYS || bytes > MAX_BATCH_BYTES {
            return self.commit_large(writes).await;
        }
        let mut groups = self.db.group_by_range(writes.keys()).await?;
        // One range, and no locks but in-memory ones on rows written here
        // (the range releases those as it commits).
        if groups.len() == 1
            && !self.replicated_locks
            && self.intents.iter().all(|k| writes.contains_key(k))
        {
            return self
                .commit_one_phase(writes.into_values().flatten().collect())
                .await;
        }
        if self.anchor.is_empty() {
            self.anchor = writes.keys().next().cloned().expect("not empty");
        } else {
            // Locks placed the record already: its range's writes go first,
            // with the record (no writes there: the record alone).
            let anchor_range = self.db.range_for(&self.anchor).await?;
            match groups.iter().position(|g| contains(&anchor_range, &g[0])) {
                Some(i) => groups.swap(0, i),
                None => groups.insert(0, Vec::new()),
            }
        }
        let mut commit_ts = self.read_ts;
        // Per range: the writes still to send.
        let mut todo: Vec<Vec<BatchWrite>> = groups
            .into_iter()
            .map(|keys| keys.iter().flat_map(|k| writes[k].clone()).collect())
            .collect();
        let mut in_flight: Vec<Vec<u8>> = todo[1..]
            .iter()
            .flatten()
            .filter_map(|w| crate::store::batch_write_key(w).map(<[u8]>::to_vec))
            .collect();
        in_flight.sort();
        in_flight.dedup();
        self.intents.extend(writes.keys().cloned());
        if self.heartbeat.is_none() {
            self.start_heartbeat();
        }
        // Round 1: everything at once.
        self.commit_sent = true;
        let mut pushed = false;
        let mut staged = true;
        let mut results = Vec::new();
        {
            let mut futs = Vec::new();
            for (i, group) in todo.iter().enumerate() {
                let end = (i == 0).then(|| proto::EndTxnRequest {
                    status: TxnStatus::Staging as i32,
                    commit_ts: Some(commit_ts.into()),
                    in_flight: in_flight.clone(),
                });
                futs.push(self.send_intents(group.clone(), commit_ts, end));
            }
            for r in futures::future::join_all(futs).await {
                results.push(r);
            }
        }
        let mut failed = Vec::new();
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok(resp) => {
                    let ts: Timestamp = resp.timestamp.unwrap_or_default().into();
                    if ts > commit_ts {
                        pushed = true;
                    }
                    if i == 0
                        && resp
                            .record
                            .as_ref()
                            .is_some_and(|r| r.status != TxnStatus::Staging as i32)
                    {
                        staged = false;
                    }
                    commit_ts = commit_ts.max(ts);
                    todo[i].clear();
                }
                Err(Error::WriteIntent(intents)) => failed.push((i, intents)),
                Err(e) => return Err(e),
            }
        }
        if failed.is_empty() && !pushed && staged {
            // Implicitly committed: every write is durable at the staged
            // timestamp. Make it explicit and clean up in the background.
            let db = self.db.clone();
            let meta = self.meta(commit_ts);
            let keys = self.intents.clone();
            tokio::spawn(db.finish_parallel_commit(meta, keys, commit_ts));
            self.intents.clear();
            return Ok(commit_ts);
        }
        // Round 2: wait out conflicts and retry what failed.
        for (i, intents) in failed {
            let mut intents = intents;
            loop {
                for it in &intents {
                    self.wait_as_writer(it).await?;
                }
                match self.send_intents(todo[i].clone(), commit_ts, None).await {
                    Ok(resp) => {
                        commit_ts = commit_ts.max(resp.timestamp.unwrap_or_default().into());
                        break;
                    }
                    Err(Error::WriteIntent(more)) => intents = more,
                    Err(e) => return Err(e),
                }
            }
        }
        self.shared.lock().waiting_for = None;
        if commit_ts > self.read_ts {
            self.refresh(commit_ts).await?;
        }
        // Explicit commit.
        let meta = self.meta(commit_ts);
        self.commit_sent = true;
        self.db.finish_record(meta, commit_ts).await?;
        let keys = std::mem::take(&mut self.intents);
        self.db
            .clone()
            .resolve_in_background(self.id, keys, Some(commit_ts));
        Ok(commit_ts)
    }

    /// A transaction too large for one command per range: its intents go
    /// out in bounded batches, range by range; once all are in place the
    /// record is marked COMMITTED (two rounds of latency, like a classic
    /// two-phase commit, instead of a STAGING record listing every key).
    async fn commit_large(
        &mut self,
        writes: BTreeMap<Vec<u8>, Vec<BatchWrite>>,
    ) -> Result<Timestamp> {
        if self.anchor.is_empty() {
            self.anchor = writes.keys().next().cloned().expect("not empty");
            let meta = self.meta(self.read_ts);
            self.db.heartbeat(&meta, None, false).await?;
        }
        if self.heartbeat.is_none() {
            self.start_heartbeat();
        }
        self.intents.extend(writes.keys().cloned());
        let mut commit_ts = self.read_ts;
        let mut todo: Vec<Vec<u8>> = writes.keys().cloned().collect();
        while !todo.is_empty() {
            let mut split = Vec::new();
            for group in self.db.group_by_range(todo.iter()).await? {
                let mut batches: Vec<Vec<Vec<u8>>> = vec![Vec::new()];
                let mut batch_bytes = 0;
                for k in group {
                    let size: usize = writes[&k].iter().map(write_size).sum();
                    let last = batches.last_mut().expect("one batch");
                    if !last.is_empty()
                        && (last.len() >= MAX_BATCH_KEYS || batch_bytes + size > MAX_BATCH_BYTES)
                    {
                        batches.push(Vec::new());
                        batch_bytes = 0;
                    }
                    batch_bytes += size;
                    batches.last_mut().expect("one batch").push(k);
                }
                for keys in batches {
                    let batch: Vec<BatchWrite> =
                        keys.iter().flat_map(|k| writes[k].clone()).collect();
                    match self.write_intents(&keys, batch, commit_ts).await {
                        Ok(ts) => commit_ts = commit_ts.max(ts),
                        Err(Error::CrossRange(_)) => split.extend(keys),
                        Err(e) => return Err(e),
                    }
                }
            }
            todo = split;
        }
        if commit_ts > self.read_ts {
            self.refresh(commit_ts).await?;
        }
        let meta = self.meta(commit_ts);
        self.commit_sent = true;
        self.db.finish_record(meta, commit_ts).await?;
        let keys = std::mem::take(&mut self.intents);
        self.db
            .clone()
            .resolve_in_background(self.id, keys, Some(commit_ts));
        Ok(commit_ts)
    }

    /// Writes intents of `keys` (all in one range) at `ts` or above,
    /// waiting out other transactions' intents. Returns where they landed.
    async fn write_intents(
        &mut self,
        keys: &[Vec<u8>],
        writes: Vec<BatchWrite>,
        ts: Timestamp,
    ) -> Result<Timestamp> {
        loop {
            let req = proto::TxnWriteRequest {
                txn: Some(self.meta(ts)),
                writes: writes.clone(),
                one_phase: false,
                allow_push: true,
                end: None,
                unreplicated: false,
            };
            let build = |desc: &proto::RangeDescriptor| -> Result<kv_request::Op> {
                if keys.iter().all(|k| contains(desc, k)) {
                    Ok(kv_request::Op::TxnWrite(req.clone()))
                } else {
                    Err(Error::CrossRange("the range split".into()))
                }
            };
            match self.db.send_raw(&keys[0], Route::Key, &build).await {
                Ok((_, resp)) => {
                    self.shared.lock().waiting_for = None;
                    return Ok(resp.timestamp.unwrap_or_default().into());
                }
                Err(Error::WriteIntent(intents)) => {
                    for i in &intents {
                        self.wait_as_writer(i).await?;
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// All writes in one range: one raft command, no record.
    async fn commit_one_phase(&mut self, writes: Vec<BatchWrite>) -> Result<Timestamp> {
        let mut write_ts = self.read_ts;
        let key = crate::store::batch_write_key(&writes[0])
            .expect("keyed")
            .to_vec();
        let keys: Vec<Vec<u8>> = writes
            .iter()
            .filter_map(|w| crate::store::batch_write_key(w).map(<[u8]>::to_vec))
            .collect();
        loop {
            let req = proto::TxnWriteRequest {
                txn: Some(self.meta(write_ts)),
                writes: writes.clone(),
                one_phase: true,
                allow_push: self.reads.is_empty() || self.isolation == Isolation::ReadCommitted,
                end: None,
                unreplicated: false,
            };
            let build = |desc: &proto::RangeDescriptor| -> Result<kv_request::Op> {
                if keys.iter().all(|k| contains(desc, k)) {
                    Ok(kv_request::Op::TxnWrite(req.clone()))
                } else {
                    Err(Error::CrossRange("the range split".into()))
                }
            };
            match self.db.send_raw(&key, Route::Key, &build).await {
                Ok((_, resp)) => return Ok(resp.timestamp.unwrap_or_default().into()),
                Err(Error::WriteTooOld(ts)) => {
                    let to = ts.next().max(write_ts);
                    self.refresh(to).await.map_err(|e| match e {
                        Error::Retry(m) => Error::Retry(format!("write too old; {m}")),
                        e => e,
                    })?;
                    self.read_ts = to;
                    write_ts = to;
                }
                Err(Error::WriteIntent(intents)) => self.db.wait_for_intents(&intents).await?,
                Err(Error::CrossRange(_)) => {
                    // A split between grouping and sending: commit as a
                    // distributed transaction instead.
                    let mut map: BTreeMap<Vec<u8>, Vec<BatchWrite>> = BTreeMap::new();
                    for w in &writes {
                        let k = crate::store::batch_write_key(w).expect("keyed").to_vec();
                        map.entry(k).or_default().push(w.clone());
                    }
                    return Box::pin(self.commit_writes(map)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn send_intents(
        &self,
        writes: Vec<BatchWrite>,
        ts: Timestamp,
        end: Option<proto::EndTxnRequest>,
    ) -> Result<proto::KvResponse> {
        let key = match end {
            Some(_) => self.anchor.clone(),
            None => crate::store::batch_write_key(&writes[0])
                .expect("keyed")
                .to_vec(),
        };
        let req = proto::TxnWriteRequest {
            txn: Some(self.meta(ts)),
            writes,
            one_phase: false,
            allow_push: true,
            end,
            unreplicated: false,
        };
        self.db
            .send_op(&key, kv_request::Op::TxnWrite(req.clone()))
            .await
            .map(|(_, r)| r)
    }

    fn start_heartbeat(&mut self) {
        let db = self.db.clone();
        let shared = self.shared.clone();
        let meta = self.meta(self.read_ts);
        self.heartbeat = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT_INTERVAL).await;
                let waiting = shared.lock().waiting_for.clone();
                if let Ok(rec) = db.heartbeat(&meta, waiting, false).await {
                    if rec.status == TxnStatus::Aborted as i32 {
                        shared.lock().aborted = true;
                        return;
                    }
                }
            }
        }));
    }

    /// A writer blocked on `intent`: publish the wait, push, detect
    /// deadlocks, wait.
    async fn wait_as_writer(&mut self, intent: &IntentInfo) -> Result<()> {
        self.shared.lock().waiting_for = Some((intent.txn_id.clone(), intent.anchor.clone()));
        let meta = self.meta(self.read_ts);
        let waiting = self.shared.lock().waiting_for.clone();
        let me = self.db.heartbeat(&meta, waiting, true).await?;
        if me.status == TxnStatus::Aborted as i32 {
            return Err(Error::Retry(
                "transaction aborted by a conflicting transaction".into(),
            ));
        }
        // Keep the record alive while waiting (the periodic heartbeat
        // writes it if it is not there yet).
        if self.heartbeat.is_none() {
            self.start_heartbeat();
        }
        let pusher = Pusher {
            id: self.id,
            anchor: self.anchor.clone(),
            priority: self.priority,
        };
        let started = Instant::now();
        let r = self.db.wait_for_intent(intent, Some(&pusher)).await;
        if started.elapsed() > Duration::from_millis(100) {
            tracing::debug!(
                "txn {} waited {:?} as a writer on {} at {}: {r:?}",
                short(&self.id),
                started.elapsed(),
                short(&intent.txn_id),
                tessera_common::keys::pretty(&intent.key)
            );
        }
        if self.shared.lock().aborted {
            return Err(Error::Retry(
                "transaction aborted by a conflicting transaction".into(),
            ));
        }
        r
    }
}

/// Who is pushing: a transaction holding intents (it can be in a deadlock).
pub struct Pusher {
    pub id: [u8; 16],
    pub anchor: Vec<u8>,
    pub priority: i32,
}

/// The bytes a write carries.
fn write_size(w: &BatchWrite) -> usize {
    use proto::batch_write::Write;
    match &w.write {
        Some(Write::Put(p)) => p.key.len() + p.value.len(),
        Some(Write::Cput(c)) => {
            c.key.len() + c.value.len() + c.expected.as_ref().map_or(0, Vec::len)
        }
        Some(Write::Delete(d)) => d.key.len(),
        Some(Write::Lock(l)) => l.key.len(),
        None => 0,
    }
}

fn is_final(rec: &TxnRecord) -> bool {
    rec.status == TxnStatus::Committed as i32 || rec.status == TxnStatus::Aborted as i32
}

impl DB {
    /// Groups keys (sorted) by the range holding them, in key order.
    pub(crate) async fn group_by_range<'a>(
        &self,
        keys: impl Iterator<Item = &'a Vec<u8>>,
    ) -> Result<Vec<Vec<Vec<u8>>>> {
        let mut groups: Vec<Vec<Vec<u8>>> = Vec::new();
        let mut current_end: Option<Vec<u8>> = None;
        for k in keys {
            let fits = current_end
                .as_ref()
                .is_some_and(|end| end.is_empty() || k < end);
            if !fits || groups.is_empty() {
                let desc = self.range_for(k).await?;
                current_end = Some(desc.end_key.clone());
                groups.push(Vec::new());
            }
            groups.last_mut().expect("pushed").push(k.clone());
        }
        Ok(groups)
    }

    /// Heartbeats the record of `meta` (creating it if missing) and
    /// publishes what the transaction waits for. `wait_only`: publishes
    /// the wait alone, kept in the anchor leaseholder's memory (see
    /// [`proto::HeartbeatTxnRequest`]).
    async fn heartbeat(
        &self,
        meta: &proto::TxnMeta,
        waiting: Option<(Vec<u8>, Vec<u8>)>,
        wait_only: bool,
    ) -> Result<TxnRecord> {
        let (wf, wfa) = waiting.unwrap_or_default();
        let op = kv_request::Op::HeartbeatTxn(proto::HeartbeatTxnRequest {
            txn: Some(meta.clone()),
            waiting_for: wf,
            waiting_for_anchor: wfa,
            wait_only,
        });
        let (_, resp) = self.send_op(&meta.anchor, op.clone()).await?;
        Ok(resp.record.unwrap_or_default())
    }

    /// Marks a transaction's record COMMITTED at `ts`.
    async fn finish_record(&self, meta: proto::TxnMeta, ts: Timestamp) -> Result<()> {
        let req = proto::TxnWriteRequest {
            txn: Some(meta.clone()),
            writes: Vec::new(),
            one_phase: false,
            allow_push: false,
            end: Some(proto::EndTxnRequest {
                status: TxnStatus::Committed as i32,
                commit_ts: Some(ts.into()),
                in_flight: Vec::new(),
            }),
            unreplicated: false,
        };
        self.send_op(&meta.anchor, kv_request::Op::TxnWrite(req))
            .await
            .map(|_| ())
    }

    /// After a parallel commit (every write in place at `ts`, the record
    /// STAGING): marks the record COMMITTED in the same command that
    /// resolves the anchor range's intents and, at the same time, resolves
    /// the other ranges' intents leaving markers (`record_staging`): a
    /// recovery of the record that runs before the mark finds those writes
    /// in place from their markers, never missing. A row of another range
    /// is so released one consensus round after the commit, not two.
    pub(crate) async fn finish_parallel_commit(
        self: Arc<Self>,
        meta: proto::TxnMeta,
        mut keys: Vec<Vec<u8>>,
        ts: Timestamp,
    ) {
        let Some(id) = txn_id(&meta.id) else { return };
        keys.sort();
        keys.dedup();
        let Ok(anchor_range) = self.range_for(&meta.anchor).await else {
            return;
        };
        let (local, rest): (Vec<_>, Vec<_>) =
            keys.into_iter().partition(|k| contains(&anchor_range, k));
        if !rest.is_empty() {
            self.clone()
                .resolve_in_background_with(id, rest, Some(ts), true);
        }
        let req = proto::ResolveIntentsRequest {
            txn_id: meta.id.clone(),
            keys: Vec::new(),
            commit: true,
            commit_ts: Some(ts.into()),
            more: Vec::new(),
            commit_record_anchor: meta.anchor.clone(),
            background: true,
            record_staging: false,
        };
        let build = |desc: &proto::RangeDescriptor| -> Result<kv_request::Op> {
            Ok(kv_request::Op::ResolveIntents(
                proto::ResolveIntentsRequest {
                    keys: local
                        .iter()
                        .filter(|k| contains(desc, k))
                        .cloned()
                        .collect(),
                    ..req.clone()
                },
            ))
        };
        // The anchor range may have split since: what left it is resolved
        // once the record is COMMITTED.
        let left: Vec<Vec<u8>> = match self.send_raw(&meta.anchor, Route::Key, &build).await {
            Ok((desc, _)) => local.into_iter().filter(|k| !contains(&desc, k)).collect(),
            Err(e) => {
                tracing::debug!("txn {}: COMMITTED mark failed: {e}", short(&id));
                return;
            }
        };
        if !left.is_empty() {
            self.resolve_in_background(id, left, Some(ts));
        }
    }

    /// Resolves intents of a finished transaction, range by range.
    pub(crate) async fn resolve_intents(
        &self,
        id: [u8; 16],
        keys: Vec<Vec<u8>>,
        commit_ts: Option<Timestamp>,
    ) -> Result<()> {
        self.resolve_intents_with(id, keys, commit_ts, false).await
    }

    /// [`DB::resolve_intents`]; `record_staging` as in
    /// [`DB::resolve_in_background_with`].
    pub(crate) async fn resolve_intents_with(
        &self,
        id: [u8; 16],
        mut keys: Vec<Vec<u8>>,
        commit_ts: Option<Timestamp>,
        record_staging: bool,
    ) -> Result<()> {
        keys.sort();
        keys.dedup();
        let groups = self.group_by_range(keys.iter()).await?;
        for group in groups.iter().flat_map(|g| g.chunks(MAX_BATCH_KEYS)) {
            let group = group.to_vec();
            let req = proto::ResolveIntentsRequest {
                txn_id: id.to_vec(),
                keys: group.clone(),
                commit: commit_ts.is_some(),
                commit_ts: commit_ts.map(Into::into),
                more: Vec::new(),
                commit_record_anchor: Vec::new(),
                // Someone waits for these (a reader or writer that met them).
                background: false,
                record_staging: record_staging && commit_ts.is_some(),
            };
            let first = group[0].clone();
            let build = |desc: &proto::RangeDescriptor| -> Result<kv_request::Op> {
                Ok(kv_request::Op::ResolveIntents(
                    proto::ResolveIntentsRequest {
                        keys: req
                            .keys
                            .iter()
                            .filter(|k| contains(desc, k))
                            .cloned()
                            .collect(),
                        ..req.clone()
                    },
                ))
            };
            // A group that split meanwhile is resolved key by key.
            let (desc, _) = self.send_raw(&first, Route::Key, &build).await?;
            let rest: Vec<Vec<u8>> = group
                .into_iter()
                .filter(|k| k.as_slice() >= desc.end_key.as_slice())
                .collect();
            if !rest.is_empty() {
                Box::pin(self.resolve_intents_with(id, rest, commit_ts, record_staging)).await?;
            }
        }
        Ok(())
    }

    async fn push(
        &self,
        id: &[u8],
        anchor: &[u8],
        ts: Timestamp,
        abort: bool,
    ) -> Result<TxnRecord> {
        let op = kv_request::Op::PushTxn(proto::PushTxnRequest {
            pushee_id: id.to_vec(),
            pushee_anchor: anchor.to_vec(),
            pushee_ts: Some(ts.into()),
            abort,
        });
        let (_, resp) = self.send_op(anchor, op.clone()).await?;
        Ok(resp.record.unwrap_or_default())
    }

    /// Decides a STAGING transaction whose coordinator is gone.
    async fn recover(&self, rec: &TxnRecord) -> Result<()> {
        let staging_ts = rec.timestamp;
        let mut all_found = true;
        for key in &rec.in_flight {
            let op = kv_request::Op::QueryIntent(proto::QueryIntentRequest {
                key: key.clone(),
                txn_id: rec.id.clone(),
                max_ts: staging_ts,
                prevent: true,
            });
            let (_, resp) = self.send_op(key, op.clone()).await?;
            if !resp.found {
                all_found = false;
                break;
            }
        }
        let op = kv_request::Op::RecoverTxn(proto::RecoverTxnRequest {
            id: rec.id.clone(),
            anchor: rec.anchor.clone(),
            staging_ts,
            commit: all_found,
        });
        self.send_op(&rec.anchor, op.clone()).await.map(|_| ())
    }

    /// Waits until the `intents` a read met are gone. One push per
    /// transaction: the intents of a finished one are resolved together
    /// (a scan over a large committed transaction's writes must not
    /// resolve them one by one); a live one is waited for.
    pub async fn wait_for_intents(&self, intents: &[IntentInfo]) -> Result<()> {
        let mut by_txn: BTreeMap<&[u8], Vec<&IntentInfo>> = BTreeMap::new();
        for i in intents {
            by_txn.entry(&i.txn_id).or_default().push(i);
        }
        for group in by_txn.values() {
            let first = group[0];
            if group.len() > 1 {
                let ts: Timestamp = first.timestamp.unwrap_or_default().into();
                let rec = self.push(&first.txn_id, &first.anchor, ts, false).await?;
                if is_final(&rec) {
                    let commit = (rec.status == TxnStatus::Committed as i32)
                        .then(|| Timestamp::from(rec.timestamp.unwrap_or_default()));
                    let keys = group.iter().map(|i| i.key.clone()).collect();
                    let id = txn_id(&first.txn_id).unwrap_or_default();
                    self.resolve_intents(id, keys, commit).await?;
                    continue;
                }
            }
            let started = Instant::now();
            let r = self.wait_for_intent(first, None).await;
            if started.elapsed() > Duration::from_millis(100) {
                tracing::debug!(
                    "a read waited {:?} on {} at {}: {r:?}",
                    started.elapsed(),
                    short(&first.txn_id),
                    tessera_common::keys::pretty(&first.key)
                );
            }
            r?;
        }
        Ok(())
    }

    /// Waits until `intent` is gone: resolves it if its transaction is
    /// finished, aborts (or recovers) the transaction if its coordinator is
    /// gone, otherwise waits on the intent's range. `pusher` is the waiting
    /// transaction if it holds intents itself: then deadlocks are detected.
    pub async fn wait_for_intent(
        &self,
        intent: &IntentInfo,
        pusher: Option<&Pusher>,
    ) -> Result<()> {
        let its_ts: Timestamp = intent.timestamp.unwrap_or_default().into();
        let started = Instant::now();
        loop {
            let rec = self
                .push(&intent.txn_id, &intent.anchor, its_ts, false)
                .await?;
            if is_final(&rec) {
                let commit = (rec.status == TxnStatus::Committed as i32)
                    .then(|| Timestamp::from(rec.timestamp.unwrap_or_default()));
                return self
                    .resolve_intents(
                        txn_id(&intent.txn_id).unwrap_or_default(),
                        vec![intent.key.clone()],
                        commit,
                    )
                    .await;
            }
            let heartbeat: Timestamp = rec.heartbeat.unwrap_or_default().into();
            if rec.status == TxnStatus::Staging as i32
                && heartbeat.wall + (TXN_EXPIRY.as_millis() as u64) < self.clock().now().wall
            {
                self.recover(&rec).await?;
                continue;
            }
            if let Some(p) = pusher {
                if let Some(victim) = self.find_deadlock(p, &rec).await? {
                    if victim == p.id {
                        return Err(Error::Deadlock(format!(
                            "transaction {} waited on {} in a cycle and was chosen to abort",
                            short(&p.id),
                            short(&intent.txn_id)
                        )));
                    }
                }
            }
            if started.elapsed() > self.deadline * 3 {
                return Err(Error::Retry(format!(
                    "gave up waiting on transaction {}",
                    short(&intent.txn_id)
                )));
            }
            let op = kv_request::Op::WaitIntent(proto::WaitIntentRequest {
                key: intent.key.clone(),
                txn_id: intent.txn_id.clone(),
                timeout_ms: PUSH_INTERVAL_MS,
            });
            let (_, resp) = self.send_op(&intent.key, op.clone()).await?;
            if !resp.found {
                return Ok(());
            }
        }
    }

    /// Follows the waits-for chain from `pushee`; if it leads back to the
    /// pusher, returns the victim (lowest priority, then lowest id). A
    /// victim other than the pusher is aborted here if it can be.
    async fn find_deadlock(&self, pusher: &Pusher, pushee: &TxnRecord) -> Result<Option<[u8; 16]>> {
        let mut cycle: Vec<(i32, [u8; 16], Vec<u8>)> =
            vec![(pusher.priority, pusher.id, pusher.anchor.clone())];
        let mut rec = pushee.clone();
        for _ in 0..MAX_CHAIN {
            let Some(id) = txn_id(&rec.id) else {
                return Ok(None);
            };
            if id == pusher.id {
                let victim = cycle
                    .iter()
                    .min_by_key(|(prio, id, _)| (*prio, *id))
                    .expect("not empty")
                    .clone();
                if victim.1 != pusher.id {
                    // Abort it (refused if it is STAGING: then it finds the
                    // cycle itself and aborts).
                    let _ = self.push(&victim.1, &victim.2, Timestamp::ZERO, true).await;
                }
                return Ok(Some(victim.1));
            }
            if rec.waiting_for.is_empty() || is_final(&rec) {
                return Ok(None);
            }
            cycle.push((rec.priority, id, rec.anchor.clone()));
            let next_id = rec.waiting_for.clone();
            let next_anchor = rec.waiting_for_anchor.clone();
            rec = self
                .push(&next_id, &next_anchor, self.clock().now(), false)
                .await?;
            if rec.id.is_empty() {
                return Ok(None);
            }
        }
        Ok(None)
    }
}

/// The first bytes of a transaction id in hex, for logs.
pub(crate) fn short(id: &[u8]) -> String {
    id.iter().take(4).map(|b| format!("{b:02x}")).collect()
}
