//! The leaseholder's side of transactions: reads at a transaction's
//! timestamp (own intents visible, conflicts and uncertainty reported),
//! placing writes above the timestamp cache, and the requests that push,
//! recover, refresh, resolve and wait.

use std::sync::Arc;
use std::time::Duration;

use tessera_common::proto::{self, kv_error, raft_command, KvResponse, TxnMeta as ProtoMeta};
use tessera_common::Timestamp;
use tessera_storage::mvcc::{self, TxnMeta};

use super::{batch_write_key, not_leaseholder, Store};
use crate::concurrency::{HeldLock, PublishedWait};
use crate::replica::{
    contains, internal, key_mismatch, kv_err, record_without_raft, ts_of, write_intent_error,
    ReplicaShared,
};
use crate::txn::txn_id;

/// How long after a planned lease move starts its range's new row locks
/// are replicated (longer than a transfer takes; after a transfer that
/// failed, locks go back to memory).
const LOCK_HANDOVER_MS: u64 = 3_000;

/// Who proposes a write, for the row-lock check.
pub(super) enum Writer {
    /// A write outside transactions: every row lock holds it off.
    Plain,
    /// A transaction's write: other transactions' locks hold it off.
    Txn([u8; 16]),
    /// Intent resolution: it releases locks and never waits for one.
    Resolver,
}

impl Writer {
    /// `None`: no check; `Some(w)`: locks not held by `w` block.
    fn checked(&self) -> Option<Option<[u8; 16]>> {
        match self {
            Writer::Plain => Some(None),
            Writer::Txn(id) => Some(Some(*id)),
            Writer::Resolver => None,
        }
    }
}

/// A row lock reported as the intent in a writer's way.
fn lock_as_intent(key: &[u8], lock: &HeldLock) -> mvcc::Intent {
    mvcc::Intent {
        key: key.to_vec(),
        txn: TxnMeta {
            id: lock.txn,
            timestamp: lock.since,
            anchor: lock.anchor.clone(),
        },
        value: None,
        lock_only: true,
    }
}

/// Latches `keys` for a write of `writer`, unless another transaction's
/// row lock holds one of them: then the refusal, with the locks as the
/// intents in the way.
fn latch_writes(
    shared: &ReplicaShared,
    keys: Vec<Vec<u8>>,
    writer: &Writer,
) -> Result<u64, Box<KvResponse>> {
    let locks = shared.conc.locks.lock();
    if let Some(writer) = writer.checked() {
        let blocking: Vec<mvcc::Intent> = keys
            .iter()
            .filter_map(|k| locks.blocking(k, writer).map(|l| lock_as_intent(k, l)))
            .collect();
        if !blocking.is_empty() {
            return Err(Box::new(write_intent_error(blocking)));
        }
    }
    Ok(shared.conc.latches.lock().acquire(keys))
}

fn release_latch(shared: &ReplicaShared, latch: u64) {
    shared.conc.latches.lock().release(latch);
    shared.conc.latch_released.notify_waiters();
}

/// The storage-level identity of a transaction reading or writing.
fn storage_meta(m: &ProtoMeta) -> Option<TxnMeta> {
    Some(TxnMeta {
        id: txn_id(&m.id)?,
        timestamp: ts_of(&m.write_ts),
        anchor: m.anchor.clone(),
    })
}

/// Where a read happens and what it must not miss.
pub(super) struct ReadPlan {
    pub read_ts: Timestamp,
    /// The top of the uncertainty window: other transactions' intents and
    /// values up to here (above `read_ts`) may have happened before.
    pub limit: Timestamp,
    pub txn: Option<TxnMeta>,
}

impl Store {
    /// Prepares a read of `[start, end)` (`end == None`: the key `start`)
    /// under the lease: records it in the timestamp cache and waits for
    /// writes in flight on it. The caller then reads and runs
    /// [`Store::check_read`] over what it read.
    pub(super) async fn prepare_read(
        &self,
        shared: &Arc<ReplicaShared>,
        start: &[u8],
        end: Option<&[u8]>,
        txn: Option<&ProtoMeta>,
        fixed_ts: Option<Timestamp>,
    ) -> Result<ReadPlan, KvResponse> {
        self.ensure_lease(shared).await?;
        let (read_ts, limit, meta) = match txn {
            Some(m) => {
                let read_ts = ts_of(&m.read_ts);
                let mut limit = ts_of(&m.uncertainty_limit).max(read_ts);
                // Everything applied here before the transaction's first
                // read here is at or below that reading of this node's
                // clock (applying a command advances the clock to its
                // timestamp); anything later began after the transaction.
                if let Some(o) = m.observed.iter().find(|o| o.node_id == self.ctx.node_id) {
                    limit = limit.min(ts_of(&o.ts).max(read_ts));
                }
                (read_ts, limit, storage_meta(m))
            }
            None => {
                let ts = fixed_ts.unwrap_or_else(|| self.ctx.clock.now());
                (ts, ts, None)
            }
        };
        if let Some(refusal) = self.check_gc_window(read_ts) {
            return Err(refusal);
        }
        {
            let reader = meta.as_ref().map(|m| m.id);
            let mut tsc = shared.conc.tscache.lock();
            match end {
                None => tsc.record_point(start, read_ts, reader),
                Some(end) => tsc.record_span(start, end, read_ts, reader),
            }
        }
        shared
            .conc
            .wait_for_writes(start, end, || self.propose_held_back())
            .await;
        Ok(ReadPlan {
            read_ts,
            limit,
            txn: meta,
        })
    }

    /// The refusal of a read, if any: other transactions' intents at or
    /// below the plan's uncertainty limit, or values inside its uncertainty
    /// window, in `[start, end)` (point reads check theirs in
    /// [`mvcc::get_within`]). A scan that stopped at its row limit checks
    /// only the part it read: checking the whole span would make paging
    /// through a large span, past a transaction's own intents, quadratic.
    pub(super) fn check_read(
        &self,
        plan: &ReadPlan,
        start: &[u8],
        end: &[u8],
    ) -> Option<KvResponse> {
        let (read_ts, limit, meta) = (plan.read_ts, plan.limit, &plan.txn);
        let engine = self.ctx.engine.as_ref();
        let intents = match mvcc::scan_intents(engine, start, end, 0) {
            Ok(v) => v,
            Err(e) => return Some(internal(format!("read failed: {e}"))),
        };
        let own = meta.as_ref().map(|m| m.id);
        let conflicts: Vec<_> = intents
            .into_iter()
            .filter(|i| !i.lock_only && Some(i.txn.id) != own && i.txn.timestamp <= limit)
            .collect();
        if !conflicts.is_empty() {
            return Some(write_intent_error(conflicts));
        }
        if limit > read_ts {
            match mvcc::newest_in_window(engine, start, end, read_ts, limit) {
                Ok(Some((_, ts))) => {
                    return Some(kv_err(kv_error::Kind::Uncertainty(
                        proto::ReadWithinUncertainty {
                            ts: Some(ts.into()),
                        },
                    )))
                }
                Ok(None) => {}
                Err(e) => return Some(internal(format!("read failed: {e}"))),
            }
        }
        None
    }

    /// Proposes a command that writes `keys`, holding their latches until
    /// it is applied (or definitely dropped). A write of `writer` that
    /// meets another transaction's row lock is refused with the lock as
    /// the conflicting intent (the writer waits for it as for one).
    pub(super) async fn propose_latched(
        &self,
        shared: &Arc<ReplicaShared>,
        keys: Vec<Vec<u8>>,
        cmd: raft_command::Cmd,
        writer: Writer,
    ) -> KvResponse {
        match latch_writes(shared, keys, &writer) {
            Ok(latch) => self.propose_with_latch(shared, latch, cmd).await,
            Err(resp) => *resp,
        }
    }

    /// Proposes `cmd` under `latch` (from [`latch_writes`]), released when
    /// raft decides the command.
    async fn propose_with_latch(
        &self,
        shared: &Arc<ReplicaShared>,
        latch: u64,
        cmd: raft_command::Cmd,
    ) -> KvResponse {
        let release = {
            let shared = shared.clone();
            move || release_latch(&shared, latch)
        };
        let Some(rx) = self.submit(shared.range_id, cmd) else {
            release();
            return crate::replica::unavailable("node is shutting down", false);
        };
        // The latch is released when raft decides, not when this request
        // ends: a client that gives up (dropping this future) must not
        // free a write that may still apply.
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let r = rx.await;
            release();
            let _ = done_tx.send(r);
        });
        match tokio::time::timeout(self.cfg.proposal_timeout, done_rx).await {
            Ok(Ok(Ok(resp))) => resp,
            Ok(_) => crate::replica::unavailable("node is shutting down", true),
            Err(_) => {
                crate::replica::unavailable("write timed out; it may or may not have applied", true)
            }
        }
    }

    /// Intents (or a one-phase commit) of a transaction on this range,
    /// placed above every earlier read of their keys.
    pub(super) async fn txn_write(
        &self,
        shared: &Arc<ReplicaShared>,
        desc: &proto::RangeDescriptor,
        mut req: proto::TxnWriteRequest,
    ) -> KvResponse {
        let keys: Vec<Vec<u8>> = req
            .writes
            .iter()
            .filter_map(batch_write_key)
            .map(<[u8]>::to_vec)
            .collect();
        if keys.iter().any(|k| !contains(desc, k)) {
            return key_mismatch(vec![desc.clone()]);
        }
        let Some(anchor) = req.txn.as_ref().map(|m| &m.anchor) else {
            return internal("transactional write without a transaction");
        };
        if req.end.is_some() && !contains(desc, anchor) {
            return key_mismatch(vec![desc.clone()]);
        }
        if !shared.is_leader() {
            return not_leaseholder(shared);
        }
        if let Err(resp) = self.ensure_lease(shared).await {
            return resp;
        }
        if req.unreplicated {
            if let Some(resp) = self.lock_in_memory(shared, desc, &req).await {
                return resp;
            }
            // The lease is being handed over: a lock kept in memory now
            // would be lost, so this one is replicated. Its intent carries
            // the lock's time, as a lock in memory does.
            req.unreplicated = false;
            let now = self.ctx.clock.now();
            if let Some(m) = req.txn.as_mut() {
                m.write_ts = Some(ts_of(&m.write_ts).max(now).into());
            }
        }
        let Some(meta) = req.txn.as_mut() else {
            return internal("transactional write without a transaction");
        };
        let Some(writer) = txn_id(&meta.id) else {
            return internal("bad transaction id");
        };
        // Latch first, then read the timestamp cache: a read records itself
        // there before it checks the latches, so either this write sees the
        // read (and goes above it) or the read sees the latch (and waits for
        // the write). The other order lets a read slip in between and miss
        // a write placed below it.
        let latch = match latch_writes(shared, keys.clone(), &Writer::Txn(writer)) {
            Ok(l) => l,
            Err(resp) => return *resp,
        };
        let asked = ts_of(&meta.write_ts);
        let mut ts = asked;
        {
            let writer = txn_id(&meta.id);
            let mut tsc = shared.conc.tscache.lock();
            // A lock reads its key at the transaction's read timestamp.
            let read_ts = ts_of(&meta.read_ts);
            for w in &req.writes {
                if let Some(proto::batch_write::Write::Lock(l)) = &w.write {
                    tsc.record_point(&l.key, read_ts, writer);
                }
            }
            for k in &keys {
                ts = tsc.max_read(k).place(ts, writer);
            }
        }
        if ts > asked {
            // Pushed writes go to the present: then they are above the
            // clock reading of any transaction that read here before, and
            // do not look uncertain to it.
            ts = ts.max(self.ctx.clock.now());
        }
        if ts > asked && req.one_phase && !req.allow_push {
            release_latch(shared, latch);
            return kv_err(kv_error::Kind::WriteTooOld(proto::WriteTooOld {
                ts: Some(ts.into()),
            }));
        }
        meta.write_ts = Some(ts.into());
        if let Some(hook) = &self.cfg.testing.write_placed {
            hook(&keys).await;
        }
        let one_phase = req.one_phase;
        let written = if one_phase { keys } else { Vec::new() };
        let resp = self
            .propose_with_latch(shared, latch, raft_command::Cmd::TxnWrite(req))
            .await;
        if one_phase && resp.error.is_none() {
            // Committed: the transaction's row locks on what it wrote go.
            if shared.conc.locks.lock().release(&writer, &written) {
                shared.conc.intents_changed.notify_waiters();
            }
        }
        resp
    }

    /// Row locks kept in the leaseholder's memory (see the concurrency
    /// module): each key's value as of the transaction's read timestamp
    /// is returned and the key is locked, or, if another transaction's
    /// intent or lock is in the way, nothing is locked and the conflicts
    /// are returned. A version newer than the read timestamp is refused
    /// (`WriteTooOld`): the transaction moves above it first.
    ///
    /// `None` while the lease is being handed over (see
    /// [`Store::replicate_locks`]): the caller replicates the locks instead.
    async fn lock_in_memory(
        &self,
        shared: &Arc<ReplicaShared>,
        desc: &proto::RangeDescriptor,
        req: &proto::TxnWriteRequest,
    ) -> Option<KvResponse> {
        use proto::batch_write::Write;
        if shared.conc.handing_over(self.ctx.mono_ms()) {
            return None;
        }
        if req.one_phase || req.end.is_some() {
            return Some(internal("unreplicated locks with a commit or record"));
        }
        let meta = req.txn.clone().unwrap_or_default();
        let Some(id) = txn_id(&meta.id) else {
            return Some(internal("bad transaction id"));
        };
        let mut keys = Vec::with_capacity(req.writes.len());
        for w in &req.writes {
            match &w.write {
                Some(Write::Lock(l)) => keys.push(l.key.clone()),
                _ => return Some(internal("unreplicated locks mixed with writes")),
            }
        }
        let read_ts = ts_of(&meta.read_ts);
        {
            let mut tsc = shared.conc.tscache.lock();
            for k in &keys {
                tsc.record_point(k, read_ts, Some(id));
            }
        }
        let engine = self.ctx.engine.as_ref();
        loop {
            for k in &keys {
                shared
                    .conc
                    .wait_for_writes(k, None, || self.propose_held_back())
                    .await;
            }
            let mut locks = shared.conc.locks.lock();
            // A write latched meanwhile: wait for it too (a write latched
            // after this point sees the locks taken here).
            if keys
                .iter()
                .any(|k| shared.conc.latches.lock().conflicts(k, None))
            {
                continue;
            }
            if shared.conc.handing_over(self.ctx.mono_ms()) {
                return None;
            }
            let mut conflicts = Vec::new();
            let mut rows = Vec::new();
            for k in &keys {
                if let Some(l) = locks.blocking(k, Some(id)) {
                    conflicts.push(lock_as_intent(k, l));
                    continue;
                }
                match mvcc::get_intent(engine, k) {
                    Ok(Some(i)) if i.txn.id != id => {
                        conflicts.push(i);
                        continue;
                    }
                    Ok(Some(i)) if !i.lock_only => {
                        if let Some(value) = i.value {
                            rows.push(proto::KeyValue {
                                key: k.clone(),
                                value,
                            });
                        }
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => return Some(internal(format!("read failed: {e}"))),
                }
                match mvcc::get_version(engine, k, Timestamp::MAX) {
                    Ok(Some((existing, _))) if existing > read_ts => {
                        return Some(kv_err(kv_error::Kind::WriteTooOld(proto::WriteTooOld {
                            ts: Some(existing.into()),
                        })))
                    }
                    Ok(Some((_, Some(value)))) => rows.push(proto::KeyValue {
                        key: k.clone(),
                        value,
                    }),
                    Ok(_) => {}
                    Err(e) => return Some(internal(format!("read failed: {e}"))),
                }
            }
            if !conflicts.is_empty() {
                return Some(write_intent_error(conflicts));
            }
            let since = self.ctx.clock.now();
            for k in &keys {
                locks.acquire(
                    k.clone(),
                    HeldLock {
                        txn: id,
                        anchor: meta.anchor.clone(),
                        since,
                    },
                );
            }
            tracing::trace!(
                target: "tessera_kv::apply",
                "range {} txn {}: locked in memory at {read_ts}: {}",
                desc.range_id,
                crate::txn::short(&id),
                keys.iter()
                    .map(|k| tessera_common::keys::pretty(k))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            return Some(KvResponse {
                rows,
                ..Default::default()
            });
        }
    }

    /// Before the lease moves away on purpose: writes the range's row locks
    /// as replicated lock-only intents (one command per holder, at the
    /// lock's time, so whoever waits on one ages it as before), so they
    /// hold at the next leaseholder. A lock taken after this, before the
    /// move, is lost: safe (see the concurrency module).
    pub(super) async fn replicate_locks(&self, shared: &Arc<ReplicaShared>) {
        // From here until the handover is over (or has surely failed), new
        // locks are replicated as they are taken: none can slip in after
        // the snapshot below and be lost.
        let holders = {
            let locks = shared.conc.locks.lock();
            shared
                .conc
                .start_handover(self.ctx.mono_ms() + LOCK_HANDOVER_MS);
            locks.by_holder()
        };
        let writes = holders.into_iter().map(|(lock, keys)| {
            let req = proto::TxnWriteRequest {
                txn: Some(ProtoMeta {
                    id: lock.txn.to_vec(),
                    anchor: lock.anchor,
                    write_ts: Some(lock.since.into()),
                    // Taken already: no version can be too new for it.
                    read_ts: Some(Timestamp::MAX.into()),
                    ..Default::default()
                }),
                writes: keys
                    .into_iter()
                    .map(|key| proto::BatchWrite {
                        write: Some(proto::batch_write::Write::Lock(proto::LockRequest { key })),
                    })
                    .collect(),
                one_phase: false,
                allow_push: false,
                end: None,
                unreplicated: false,
            };
            self.propose(shared.range_id, raft_command::Cmd::TxnWrite(req))
        });
        for resp in futures::future::join_all(writes).await {
            if let Some(e) = resp.error {
                tracing::debug!("range {}: replicating locks: {e:?}", shared.range_id);
            }
        }
    }

    /// A change to a transaction record anchored on this range.
    pub(super) async fn txn_record(
        &self,
        shared: &Arc<ReplicaShared>,
        desc: &proto::RangeDescriptor,
        anchor: &[u8],
        cmd: proto::TxnRecordCommand,
    ) -> KvResponse {
        if !contains(desc, anchor) {
            return key_mismatch(vec![desc.clone()]);
        }
        if !shared.is_leader() {
            return not_leaseholder(shared);
        }
        use proto::txn_record_command::Op;
        // A heartbeat publishes its wait whether or not it goes through
        // raft (a periodic one with no wait clears it).
        if let Some(Op::Heartbeat(h)) = &cmd.op {
            let meta = h.txn.clone().unwrap_or_default();
            if let Some(id) = txn_id(&meta.id) {
                shared.conc.waits.lock().publish(
                    id,
                    PublishedWait {
                        waiting_for: h.waiting_for.clone(),
                        waiting_for_anchor: h.waiting_for_anchor.clone(),
                        priority: meta.priority,
                    },
                );
            }
        }
        let answered = if shared.has_valid_lease(self.ctx.mono_ms()) {
            let now = self.ctx.clock.now();
            match record_without_raft(self.ctx.engine.as_ref(), anchor, &cmd, now) {
                Ok(r) => r,
                Err(e) => return internal(e),
            }
        } else {
            None
        };
        let mut resp = match answered {
            Some(rec) => KvResponse {
                record: Some(rec),
                ..Default::default()
            },
            None => {
                self.propose(shared.range_id, raft_command::Cmd::TxnRecord(cmd))
                    .await
            }
        };
        if let Some(rec) = resp.record.as_mut() {
            shared.conc.waits.lock().annotate(rec);
        }
        resp
    }

    pub(super) async fn resolve_intents(
        &self,
        shared: &Arc<ReplicaShared>,
        desc: &proto::RangeDescriptor,
        req: proto::ResolveIntentsRequest,
    ) -> KvResponse {
        let all = || std::iter::once(&req).chain(&req.more).flat_map(|r| &r.keys);
        if all().any(|k| !contains(desc, k)) {
            return key_mismatch(vec![desc.clone()]);
        }
        if !shared.is_leader() {
            return not_leaseholder(shared);
        }
        let keys: Vec<Vec<u8>> = all().cloned().collect();
        let resolved: Vec<(Vec<u8>, Vec<Vec<u8>>)> = std::iter::once(&req)
            .chain(&req.more)
            .map(|r| (r.txn_id.clone(), r.keys.clone()))
            .collect();
        let resp = self
            .propose_latched(
                shared,
                keys,
                raft_command::Cmd::ResolveIntents(req),
                Writer::Resolver,
            )
            .await;
        if resp.error.is_none() {
            // A finished transaction's row locks go with its intents.
            let mut locks = shared.conc.locks.lock();
            let mut any = false;
            for (txn, keys) in &resolved {
                any |= locks.release(txn, keys);
            }
            drop(locks);
            if any {
                shared.conc.intents_changed.notify_waiters();
            }
        }
        resp
    }

    /// Is the intent there? With `prevent`, a missing intent can never be
    /// written at or below `max_ts` afterwards (the timestamp cache pushes
    /// it above).
    pub(super) async fn query_intent(
        &self,
        shared: &Arc<ReplicaShared>,
        desc: &proto::RangeDescriptor,
        q: proto::QueryIntentRequest,
    ) -> KvResponse {
        if !contains(desc, &q.key) {
            return key_mismatch(vec![desc.clone()]);
        }
        if let Err(resp) = self.ensure_lease(shared).await {
            return resp;
        }
        let max_ts = ts_of(&q.max_ts);
        if q.prevent {
            shared
                .conc
                .tscache
                .lock()
                .record_point(&q.key, max_ts, None);
        }
        shared
            .conc
            .wait_for_writes(&q.key, None, || self.propose_held_back())
            .await;
        let engine = self.ctx.engine.as_ref();
        let found = match mvcc::get_intent(engine, &q.key) {
            // A lock is not the write: the write may still be on its way.
            Ok(Some(i))
                if !i.lock_only
                    && i.txn.id.as_slice() == q.txn_id.as_slice()
                    && i.txn.timestamp <= max_ts =>
            {
                true
            }
            // Resolved already, by a resolution racing the COMMITTED mark
            // (read after the intent: the resolution removes the one and
            // writes the other in one command).
            Ok(_) => match txn_id(&q.txn_id) {
                Some(id) => match mvcc::has_resolved_marker(engine, &q.key, &id) {
                    Ok(marked) => marked,
                    Err(e) => return internal(format!("read failed: {e}")),
                },
                None => false,
            },
            Err(e) => return internal(format!("read failed: {e}")),
        };
        KvResponse {
            found,
            ..Default::default()
        }
    }

    /// Waits until `key` holds no intent of the transaction, or the timeout.
    pub(super) async fn wait_intent(
        &self,
        shared: &Arc<ReplicaShared>,
        desc: &proto::RangeDescriptor,
        w: proto::WaitIntentRequest,
    ) -> KvResponse {
        if !contains(desc, &w.key) {
            return key_mismatch(vec![desc.clone()]);
        }
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(u64::from(w.timeout_ms.min(5_000)));
        loop {
            let changed = shared.conc.intents_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let locked = shared
                .conc
                .locks
                .lock()
                .holder(&w.key)
                .is_some_and(|l| l.txn.as_slice() == w.txn_id.as_slice());
            let held = locked
                || match mvcc::get_intent(self.ctx.engine.as_ref(), &w.key) {
                    Ok(Some(i)) => i.txn.id.as_slice() == w.txn_id.as_slice(),
                    Ok(None) => false,
                    Err(e) => return internal(format!("read failed: {e}")),
                };
            if !held {
                return KvResponse {
                    found: false,
                    ..Default::default()
                };
            }
            // The intent's resolution may be held back on this node.
            self.propose_held_back();
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return KvResponse {
                    found: true,
                    ..Default::default()
                };
            }
        }
    }

    /// Refuses a read at `ts` that versions removed by MVCC GC could
    /// affect. GC proposes `now - gc_ttl` as its threshold from whichever
    /// node holds the lease; another node's clock may be up to the max
    /// offset ahead, so reads must stay that much above this node's
    /// `now - gc_ttl` (at most half the TTL, so that a TTL shorter than the
    /// offset, as in tests, still leaves a window). Every node must run
    /// with the same `--gc-ttl`.
    fn check_gc_window(&self, ts: Timestamp) -> Option<KvResponse> {
        let now = self.ctx.clock.now();
        let ttl = self.cfg.gc_ttl;
        let window = ttl.saturating_sub(self.ctx.clock.max_offset().min(ttl / 2));
        let window = window.as_millis() as u64;
        let threshold = Timestamp::new(now.wall.saturating_sub(window), 0);
        (ts < threshold).then(|| {
            kv_err(kv_error::Kind::BelowGcThreshold(proto::BelowGcThreshold {
                threshold: Some(threshold.into()),
                ts: Some(ts.into()),
            }))
        })
    }

    /// Validates reads of `[start, end)` made at `from` for a commit at `to`.
    pub(super) async fn refresh(
        &self,
        shared: &Arc<ReplicaShared>,
        desc: &proto::RangeDescriptor,
        r: proto::RefreshRequest,
    ) -> KvResponse {
        if r.start < desc.start_key || (r.end > desc.end_key && !desc.end_key.is_empty()) {
            return key_mismatch(vec![desc.clone()]);
        }
        if let Err(resp) = self.ensure_lease(shared).await {
            return resp;
        }
        let (from, to) = (ts_of(&r.from), ts_of(&r.to));
        shared
            .conc
            .tscache
            .lock()
            .record_span(&r.start, &r.end, to, txn_id(&r.txn_id));
        shared
            .conc
            .wait_for_writes(&r.start, Some(&r.end), || self.propose_held_back())
            .await;
        let engine = self.ctx.engine.as_ref();
        match mvcc::scan_intents(engine, &r.start, &r.end, 0) {
            Ok(intents) => {
                if let Some(i) = intents.into_iter().find(|i| {
                    !i.lock_only
                        && i.txn.id.as_slice() != r.txn_id.as_slice()
                        && i.txn.timestamp <= to
                }) {
                    return write_intent_error(vec![i]);
                }
            }
            Err(e) => return internal(format!("read failed: {e}")),
        }
        match mvcc::newest_in_window(engine, &r.start, &r.end, from, to) {
            Ok(Some((_, ts))) => kv_err(kv_error::Kind::WriteTooOld(proto::WriteTooOld {
                ts: Some(ts.into()),
            })),
            Ok(None) => KvResponse::default(),
            Err(e) => internal(format!("read failed: {e}")),
        }
    }
}

/// The exclusive end of the span holding only `key`.
pub fn point_end(key: &[u8]) -> Vec<u8> {
    let mut e = key.to_vec();
    e.push(0);
    e
}
