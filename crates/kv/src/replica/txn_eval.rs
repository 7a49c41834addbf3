//! Applying transactional commands: intents (and one-phase commits),
//! transaction record changes, and intent resolution. Like every command,
//! each is evaluated at its log position from the replica's state and the
//! command's timestamp only, so every replica computes the same result.
//!
//! Record life cycle (key: [`mvcc::txn_record_key`], on the anchor's range):
//!
//! ```text
//!   (none) --heartbeat--> PENDING --end(STAGING)--> STAGING --+--> COMMITTED
//!     |                     |                          |      |
//!     +--push (expired)-----+--push (expired/victim)---|------+--> ABORTED
//!                                                      +--recover
//! ```
//!
//! A record never leaves COMMITTED or ABORTED, and a pusher can abort only a
//! transaction whose coordinator stopped heartbeating (or, for deadlocks, a
//! chosen victim that is not STAGING). A STAGING record is decided by
//! recovery: committed if every in-flight write is found, else aborted after
//! making sure the missing writes can never land at the staged timestamp.

use prost::Message as _;
use tessera_common::proto::{
    self, kv_error, txn_record_command, KvResponse, TxnRecord, TxnStatus, TxnWriteRequest,
};
use tessera_common::Timestamp;
use tessera_storage::mvcc::{self, TxnMeta};
use tessera_storage::{Engine, WriteBatch};

use super::{contains, hex, internal, key_mismatch, kv_err, ts_of, Replica};
use crate::overlay::{Overlay, PendingWrites};
use crate::txn::{txn_id, TXN_EXPIRY};

/// Most intents one conflict reply lists (the client deals with these and
/// retries; the reply stays small however many there are).
const MAX_REPORTED_INTENTS: usize = 1000;

/// The error reply for conflicting intents.
pub fn write_intent_error(intents: Vec<mvcc::Intent>) -> KvResponse {
    kv_err(kv_error::Kind::WriteIntent(proto::WriteIntentError {
        intents: intents
            .into_iter()
            .take(MAX_REPORTED_INTENTS)
            .map(|i| proto::IntentInfo {
                key: i.key,
                txn_id: i.txn.id.to_vec(),
                anchor: i.txn.anchor,
                timestamp: Some(i.txn.timestamp.into()),
            })
            .collect(),
    }))
}

pub fn aborted(reason: impl Into<String>) -> KvResponse {
    kv_err(kv_error::Kind::TxnAborted(proto::TxnAborted {
        reason: reason.into(),
    }))
}

pub fn read_record(
    engine: &dyn Engine,
    anchor: &[u8],
    id: &[u8; 16],
) -> Result<Option<TxnRecord>, String> {
    match engine.get(&mvcc::txn_record_key(anchor, id)) {
        Ok(Some(raw)) => TxnRecord::decode(raw.as_slice())
            .map(Some)
            .map_err(|e| format!("corrupt transaction record: {e}")),
        Ok(None) => Ok(None),
        Err(e) => Err(format!("reading transaction record: {e}")),
    }
}

fn write_record(batch: &mut WriteBatch, rec: &TxnRecord) {
    let mut id = [0u8; 16];
    id.copy_from_slice(&rec.id[..16.min(rec.id.len())]);
    batch.put(mvcc::txn_record_key(&rec.anchor, &id), rec.encode_to_vec());
}

fn status(rec: &TxnRecord) -> TxnStatus {
    TxnStatus::try_from(rec.status).unwrap_or(TxnStatus::Pending)
}

fn expired(heartbeat: Timestamp, now: Timestamp) -> bool {
    heartbeat.wall + (TXN_EXPIRY.as_millis() as u64) < now.wall
}

/// What locking a key finds.
enum LockOutcome {
    /// The value the transaction reads under the lock.
    Value(Option<Vec<u8>>),
    /// Another transaction's intent is in the way.
    Conflict(mvcc::Intent),
    /// The reply refusing the batch: a version newer than the read
    /// timestamp (the transaction must move above it first), or an error.
    Refused(Box<KvResponse>),
}

fn with_record(rec: TxnRecord) -> KvResponse {
    KvResponse {
        record: Some(rec),
        ..Default::default()
    }
}

/// What a push does to the pushee's record `rec` (anchored at `anchor`):
/// the record to answer with, and whether it changed (it must be
/// written). A pending transaction is aborted if the push says so or its
/// coordinator stopped heartbeating; one with no record yet is alive
/// until its intent or lock (`pushee_ts`) is that old.
fn decide_push(
    rec: Option<TxnRecord>,
    p: &proto::PushTxnRequest,
    anchor: &[u8],
    now: Timestamp,
) -> (TxnRecord, bool) {
    let pushee_ts = ts_of(&p.pushee_ts);
    match rec {
        None => {
            let abort = p.abort || expired(pushee_ts, now);
            let status = if abort {
                TxnStatus::Aborted
            } else {
                TxnStatus::Pending
            };
            let r = TxnRecord {
                id: p.pushee_id.clone(),
                anchor: anchor.to_vec(),
                status: status as i32,
                timestamp: Some(pushee_ts.into()),
                // Not started heartbeating yet: alive as far as anyone can
                // tell, since its intent or lock.
                heartbeat: Some(if abort { now } else { pushee_ts }.into()),
                ..Default::default()
            };
            (r, abort)
        }
        Some(mut r) => {
            let abort =
                status(&r) == TxnStatus::Pending && (p.abort || expired(ts_of(&r.heartbeat), now));
            if abort {
                r.status = TxnStatus::Aborted as i32;
            }
            (r, abort)
        }
    }
}

/// The answer to a record command that would write nothing, read from
/// the leaseholder's state without a raft round: a push that neither
/// aborts nor finds an expired coordinator, and a `wait_only` heartbeat
/// (its wait is kept in memory by the caller). `None`: the command may
/// change the record and must go through raft ([`Replica::apply_txn_record`]
/// decides it the same way). A record can only be older here than at the
/// command's place in the log, and the statuses a record leaves
/// (PENDING, STAGING) send the pusher waiting again, never deciding.
pub fn record_without_raft(
    engine: &dyn Engine,
    anchor: &[u8],
    cmd: &proto::TxnRecordCommand,
    now: Timestamp,
) -> Result<Option<TxnRecord>, String> {
    use txn_record_command::Op;
    match &cmd.op {
        Some(Op::Push(p)) => {
            let Some(id) = txn_id(&p.pushee_id) else {
                return Ok(None);
            };
            let rec = read_record(engine, anchor, &id)?;
            let (r, changed) = decide_push(rec, p, anchor, now);
            Ok((!changed).then_some(r))
        }
        Some(Op::Heartbeat(h)) if h.wait_only => {
            let meta = h.txn.clone().unwrap_or_default();
            let Some(id) = txn_id(&meta.id) else {
                return Ok(None);
            };
            Ok(match read_record(engine, anchor, &id)? {
                // Waiting means a write is missing: a STAGING record must
                // go back to PENDING, through raft.
                Some(r) if status(&r) == TxnStatus::Staging => None,
                Some(r) => Some(r),
                None => Some(TxnRecord {
                    id: meta.id.clone(),
                    anchor: anchor.to_vec(),
                    status: TxnStatus::Pending as i32,
                    timestamp: Some(ts_of(&meta.write_ts).into()),
                    heartbeat: Some(now.into()),
                    priority: meta.priority,
                    ..Default::default()
                }),
            })
        }
        _ => Ok(None),
    }
}

impl Replica {
    /// Writes the intents of a transaction (or commits them in one phase),
    /// all at one timestamp, and updates its record if `end` is set. All or
    /// nothing: a conflict leaves no trace.
    pub(super) fn apply_txn_write(
        &mut self,
        req: TxnWriteRequest,
        desc: &proto::RangeDescriptor,
        batch: &mut WriteBatch,
    ) -> KvResponse {
        use proto::batch_write::Write;
        let Some(meta) = req.txn.clone() else {
            return internal("transactional write without a transaction");
        };
        let Some(id) = txn_id(&meta.id) else {
            return internal("bad transaction id");
        };
        let view = self.overlay();
        let mut ts = ts_of(&meta.write_ts);
        // Key -> final value; conditions are checked write by write against
        // the committed state.
        let mut writes: std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>> =
            std::collections::BTreeMap::new();
        let mut conflicts = Vec::new();
        // Keys to lock, and the values the transaction reads under the locks.
        let mut locks = Vec::new();
        let mut locked_rows = Vec::new();
        let read_ts = ts_of(&meta.read_ts);
        for w in req.writes {
            let (key, value, expected) = match w.write {
                Some(Write::Put(p)) => (p.key, Some(p.value), None),
                Some(Write::Delete(d)) => (d.key, None, None),
                Some(Write::Cput(c)) => (c.key, Some(c.value), Some(c.expected)),
                Some(Write::Lock(l)) => {
                    match self.evaluate_lock(&view, desc, &l.key, id, read_ts) {
                        LockOutcome::Value(value) => {
                            if let Some(value) = value {
                                locked_rows.push(proto::KeyValue {
                                    key: l.key.clone(),
                                    value,
                                });
                            }
                            locks.push(l.key);
                        }
                        LockOutcome::Conflict(intent) => conflicts.push(intent),
                        LockOutcome::Refused(resp) => return *resp,
                    }
                    continue;
                }
                None => return internal("empty write in batch"),
            };
            if !contains(desc, &key) {
                return key_mismatch(vec![desc.clone()]);
            }
            match mvcc::get_intent(&view, &key) {
                Ok(Some(i)) if i.txn.id != id => {
                    conflicts.push(i);
                    continue;
                }
                Ok(_) => {}
                Err(e) => return internal(format!("read failed: {e}")),
            }
            let newest = match mvcc::get_version(&view, &key, Timestamp::MAX) {
                Ok(v) => v,
                Err(e) => return internal(format!("read failed: {e}")),
            };
            if let Some(expected) = expected {
                let current = newest.as_ref().and_then(|(_, v)| v.clone());
                if current != expected {
                    return kv_err(kv_error::Kind::ConditionFailed(proto::ConditionFailed {
                        actual: current,
                    }));
                }
            }
            if let Some((existing, _)) = newest {
                if existing >= ts {
                    if req.one_phase && !req.allow_push {
                        return kv_err(kv_error::Kind::WriteTooOld(proto::WriteTooOld {
                            ts: Some(existing.into()),
                        }));
                    }
                    ts = existing.next();
                }
            }
            writes.insert(key, value);
        }
        if !conflicts.is_empty() {
            return write_intent_error(conflicts);
        }
        let mut staged = WriteBatch::new();
        let txn = TxnMeta {
            id,
            timestamp: ts,
            anchor: meta.anchor.clone(),
        };
        // Each write goes over the staged earlier ones (a key written twice
        // keeps the last value).
        let staging = std::sync::Arc::new(parking_lot::Mutex::new(PendingWrites::default()));
        let staged_view = Overlay {
            engine: std::sync::Arc::new(view.clone()),
            pending: staging.clone(),
        };
        let traced = tracing::enabled!(target: "tessera_kv::apply", tracing::Level::TRACE);
        let summary = if traced {
            writes
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{}={}", tessera_common::keys::pretty(k), hex(v)),
                    None => format!("{}=<deleted>", tessera_common::keys::pretty(k)),
                })
                .chain(
                    locks
                        .iter()
                        .map(|k| format!("{}=<lock>", tessera_common::keys::pretty(k))),
                )
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            String::new()
        };
        for (key, value) in writes {
            let from = staged.len();
            let r = if req.one_phase {
                // The transaction's own lock on the key (a row lock made
                // replicated by a lease move) goes as it commits.
                mvcc::resolve_intent(&staged_view, &mut staged, &key, id, None)
                    .and_then(|_| mvcc::put(&staged_view, &mut staged, &key, ts, value, None))
            } else {
                mvcc::put(&staged_view, &mut staged, &key, ts, value, Some(&txn))
            };
            if let Err(e) = r {
                return internal(format!("write failed: {e}"));
            }
            staging.lock().record(&staged, from);
        }
        if req.one_phase && !locks.is_empty() {
            return internal("a one-phase commit cannot take locks");
        }
        // A key also written in this batch already holds the intent.
        for key in locks {
            let from = staged.len();
            if let Err(e) = mvcc::lock(&staged_view, &mut staged, &key, &txn) {
                return internal(format!("lock failed: {e}"));
            }
            staging.lock().record(&staged, from);
        }
        let mut resp = KvResponse {
            timestamp: Some(ts.into()),
            rows: locked_rows,
            ..Default::default()
        };
        if let Some(end) = req.end {
            let mut rec = match read_record(&view, &meta.anchor, &id) {
                Ok(r) => r,
                Err(e) => return internal(e),
            };
            if let Some(r) = &rec {
                match status(r) {
                    TxnStatus::Aborted => {
                        return aborted("transaction aborted by a conflicting transaction")
                    }
                    // A coordinator aborting a transaction that recovery
                    // committed learns it from the record.
                    TxnStatus::Committed => {
                        return if end.status != TxnStatus::Staging as i32 {
                            with_record(r.clone())
                        } else {
                            internal("transaction already committed")
                        }
                    }
                    _ => {}
                }
            }
            let commit_ts = ts_of(&end.commit_ts).max(ts);
            let mut status_now = end.status;
            // Writes pushed above the staged timestamp: not implicitly
            // committed; the coordinator refreshes and commits explicitly.
            if end.status == TxnStatus::Staging as i32 && ts > ts_of(&end.commit_ts) {
                status_now = TxnStatus::Pending as i32;
            }
            let r = rec.get_or_insert_with(|| TxnRecord {
                id: meta.id.clone(),
                anchor: meta.anchor.clone(),
                priority: meta.priority,
                ..Default::default()
            });
            r.status = status_now;
            r.timestamp = Some(commit_ts.into());
            r.in_flight = end.in_flight;
            r.heartbeat = Some(self.apply_ts.into());
            write_record(&mut staged, r);
            resp.record = rec;
        }
        if traced {
            tracing::trace!(
                target: "tessera_kv::apply",
                "range {} txn {}: {} at {ts} (asked {}, read {read_ts}): {summary}; record {:?}",
                desc.range_id,
                crate::txn::short(&meta.id),
                if req.one_phase { "one-phase commit" } else { "intents" },
                ts_of(&meta.write_ts),
                resp.record.as_ref().map(|r| (r.status, r.timestamp.map(Timestamp::from))),
            );
        }
        batch.extend(staged);
        resp
    }

    /// A lock of `key` for transaction `id` reading at `read_ts`.
    fn evaluate_lock(
        &self,
        view: &dyn Engine,
        desc: &proto::RangeDescriptor,
        key: &[u8],
        id: [u8; 16],
        read_ts: Timestamp,
    ) -> LockOutcome {
        if !contains(desc, key) {
            return LockOutcome::Refused(Box::new(key_mismatch(vec![desc.clone()])));
        }
        match mvcc::get_intent(view, key) {
            Ok(Some(i)) if i.txn.id != id => return LockOutcome::Conflict(i),
            Ok(Some(i)) if !i.lock_only => return LockOutcome::Value(i.value),
            Ok(_) => {}
            Err(e) => return LockOutcome::Refused(Box::new(internal(format!("read failed: {e}")))),
        }
        LockOutcome::Refused(Box::new(
            match mvcc::get_version(view, key, Timestamp::MAX) {
                Ok(Some((existing, _))) if existing > read_ts => {
                    kv_err(kv_error::Kind::WriteTooOld(proto::WriteTooOld {
                        ts: Some(existing.into()),
                    }))
                }
                Ok(v) => return LockOutcome::Value(v.and_then(|(_, v)| v)),
                Err(e) => internal(format!("read failed: {e}")),
            },
        ))
    }

    /// Applies a change to a transaction record on this range.
    pub(super) fn apply_txn_record(
        &mut self,
        cmd: proto::TxnRecordCommand,
        desc: &proto::RangeDescriptor,
        batch: &mut WriteBatch,
    ) -> KvResponse {
        use txn_record_command::Op;
        let now = self.apply_ts;
        let view = self.overlay();
        let (id, anchor) = match &cmd.op {
            Some(Op::Heartbeat(h)) => {
                let m = h.txn.clone().unwrap_or_default();
                (m.id, m.anchor)
            }
            Some(Op::Push(p)) => (p.pushee_id.clone(), p.pushee_anchor.clone()),
            Some(Op::Recover(r)) => (r.id.clone(), r.anchor.clone()),
            Some(Op::End(_)) => {
                let m = cmd.txn.clone().unwrap_or_default();
                (m.id, m.anchor)
            }
            None => return internal("empty record command"),
        };
        let Some(id_arr) = txn_id(&id) else {
            return internal("bad transaction id");
        };
        if !contains(desc, &anchor) {
            return key_mismatch(vec![desc.clone()]);
        }
        let rec = match read_record(&view, &anchor, &id_arr) {
            Ok(r) => r,
            Err(e) => return internal(e),
        };
        let fresh = |status: TxnStatus, ts: Timestamp, priority: i32| TxnRecord {
            id: id.clone(),
            anchor: anchor.clone(),
            status: status as i32,
            timestamp: Some(ts.into()),
            heartbeat: Some(now.into()),
            priority,
            ..Default::default()
        };
        match cmd.op.expect("checked above") {
            Op::Heartbeat(h) => {
                let meta = h.txn.unwrap_or_default();
                let mut r = match rec {
                    Some(r) if matches!(status(&r), TxnStatus::Committed | TxnStatus::Aborted) => {
                        return with_record(r)
                    }
                    Some(r) => r,
                    None => fresh(TxnStatus::Pending, ts_of(&meta.write_ts), meta.priority),
                };
                r.heartbeat = Some(now.into());
                // A coordinator that waits on another transaction has a
                // write missing: it is not implicitly committed, and must
                // stay abortable (deadlocks).
                if !h.waiting_for.is_empty() && status(&r) == TxnStatus::Staging {
                    r.status = TxnStatus::Pending as i32;
                }
                r.waiting_for = h.waiting_for;
                r.waiting_for_anchor = h.waiting_for_anchor;
                write_record(batch, &r);
                with_record(r)
            }
            Op::Push(p) => {
                let (r, changed) = decide_push(rec, &p, &anchor, now);
                if changed {
                    write_record(batch, &r);
                }
                with_record(r)
            }
            Op::Recover(rv) => match rec {
                Some(mut r)
                    if status(&r) == TxnStatus::Staging
                        && ts_of(&r.timestamp) == ts_of(&rv.staging_ts) =>
                {
                    r.status = if rv.commit {
                        TxnStatus::Committed
                    } else {
                        TxnStatus::Aborted
                    } as i32;
                    write_record(batch, &r);
                    with_record(r)
                }
                Some(r) => with_record(r),
                None => internal("recovering a transaction without a record"),
            },
            Op::End(end) => {
                let meta = cmd.txn.unwrap_or_default();
                let mut r = match rec {
                    Some(r) if status(&r) == TxnStatus::Aborted => {
                        return if end.status == TxnStatus::Aborted as i32 {
                            with_record(r)
                        } else {
                            aborted("transaction aborted by a conflicting transaction")
                        }
                    }
                    Some(r) if status(&r) == TxnStatus::Committed => {
                        return if end.status != TxnStatus::Staging as i32 {
                            with_record(r)
                        } else {
                            internal("transaction already committed")
                        }
                    }
                    Some(r) => r,
                    None => fresh(TxnStatus::Pending, ts_of(&meta.write_ts), meta.priority),
                };
                r.status = end.status;
                r.timestamp = end.commit_ts;
                r.in_flight = end.in_flight;
                r.heartbeat = Some(now.into());
                write_record(batch, &r);
                with_record(r)
            }
        }
    }

    /// Marks the record of `id`, anchored at `anchor` on this range,
    /// COMMITTED at `ts` (a parallel commit's explicit mark). A record
    /// that is missing or aborted - which a transaction committed in
    /// parallel cannot have - is refused.
    fn mark_committed(
        &self,
        view: &Overlay,
        batch: &mut WriteBatch,
        desc: &proto::RangeDescriptor,
        anchor: &[u8],
        id: [u8; 16],
        ts: Timestamp,
    ) -> Result<(), Box<KvResponse>> {
        if !contains(desc, anchor) {
            return Err(Box::new(key_mismatch(vec![desc.clone()])));
        }
        let mut rec = match read_record(view, anchor, &id) {
            Ok(Some(r)) => r,
            Ok(None) => {
                return Err(Box::new(internal(
                    "no transaction record to mark committed",
                )))
            }
            Err(e) => return Err(Box::new(internal(e))),
        };
        match status(&rec) {
            TxnStatus::Committed => Ok(()),
            TxnStatus::Aborted => Err(Box::new(aborted(
                "transaction aborted by a conflicting transaction",
            ))),
            _ => {
                rec.status = TxnStatus::Committed as i32;
                rec.timestamp = Some(ts.into());
                rec.in_flight = Vec::new();
                rec.heartbeat = Some(self.apply_ts.into());
                write_record(batch, &rec);
                tracing::trace!(
                    target: "tessera_kv::apply",
                    "range {} txn {}: record committed at {ts}, with its resolutions",
                    desc.range_id,
                    crate::txn::short(&id),
                );
                Ok(())
            }
        }
    }

    /// Commits or aborts the intents of one transaction on this range.
    pub(super) fn apply_resolve(
        &mut self,
        mut req: proto::ResolveIntentsRequest,
        desc: &proto::RangeDescriptor,
        batch: &mut WriteBatch,
    ) -> KvResponse {
        let more = std::mem::take(&mut req.more);
        let view = self.overlay();
        // Record marks first: one that cannot be made fails the command
        // before anything is written.
        let mut marks = WriteBatch::new();
        for r in std::iter::once(&req).chain(&more) {
            if r.commit && !r.commit_record_anchor.is_empty() {
                let (Some(id), ts) = (txn_id(&r.txn_id), ts_of(&r.commit_ts)) else {
                    return internal("bad transaction id");
                };
                if let Err(e) =
                    self.mark_committed(&view, &mut marks, desc, &r.commit_record_anchor, id, ts)
                {
                    return *e;
                }
            }
        }
        batch.extend(marks);
        for req in std::iter::once(req).chain(more) {
            let Some(id) = txn_id(&req.txn_id) else {
                return internal("bad transaction id");
            };
            let commit_ts = req.commit.then(|| ts_of(&req.commit_ts));
            for key in req.keys {
                if !contains(desc, &key) {
                    continue;
                }
                let resolved = match commit_ts {
                    Some(ts) if req.record_staging => {
                        mvcc::resolve_intent_leaving_marker(&view, batch, &key, id, ts)
                    }
                    _ => mvcc::resolve_intent(&view, batch, &key, id, commit_ts),
                };
                match resolved {
                    Ok(found) => tracing::trace!(
                        target: "tessera_kv::apply",
                        "range {} txn {}: resolve {} {}{}",
                        desc.range_id,
                        crate::txn::short(&id),
                        tessera_common::keys::pretty(&key),
                        match commit_ts {
                            Some(ts) => format!("committed at {ts}"),
                            None => "aborted".to_string(),
                        },
                        if found { "" } else { " (no intent)" },
                    ),
                    Err(e) => return internal(format!("resolving intent: {e}")),
                }
            }
        }
        KvResponse::default()
    }
}
