//! The replica: one node's copy of one range, the state machine its raft
//! group drives.
//!
//! Commands are evaluated when applied, on every replica alike: a command
//! carries its timestamp (assigned by the leader when proposing), and its
//! effect depends only on the replica's state at that log position, so all
//! replicas compute the same result. The leaseholder answers the client
//! once the effect is written to its engine.
//!
//! [`ReplicaShared`] is the part the request path reads without going
//! through the raft thread: the descriptor, the raft role, and the lease.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use prost::Message as _;
use tessera_common::proto::{
    self, kv_error, raft_command, KvError, KvResponse, RaftCommand, RangeDescriptor, RangeSnapshot,
    ReplicaType,
};
use tessera_common::{Clock, Timestamp};
use tessera_raft::eraftpb::ConfState;
use tessera_raft::{Effect, GroupControl, StateMachine, StateRole};
use tessera_storage::mvcc::{self, MvccError};
use tessera_storage::{Engine, WriteBatch};
use tokio::sync::oneshot;

use crate::concurrency::Concurrency;
use crate::lease::LeaseState;
use crate::overlay::{Overlay, PendingWrites};

mod txn_eval;
pub use txn_eval::{aborted, read_record, record_without_raft, write_intent_error};

/// A step of a membership change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfChangeDirection {
    AddLearner,
    Promote,
    Remove,
}

/// Where a waiting client gets its answer.
pub type Responder = oneshot::Sender<KvResponse>;

/// Replicas of this node, by range id.
pub type Registry = Arc<RwLock<HashMap<u64, Arc<ReplicaShared>>>>;

/// Node-wide things every replica needs.
pub struct ReplicaContext {
    pub node_id: u64,
    pub engine: Arc<dyn Engine>,
    pub clock: Clock,
    /// The node's monotonic clock in milliseconds (leases); injected so a
    /// simulation owns time.
    pub monotonic: MonotonicClock,
    pub lease_duration: Duration,
    /// Ticks between lease renewals of a busy leaseholder.
    pub renew_every_ticks: u64,
    pub registry: Registry,
}

impl ReplicaContext {
    /// Monotonic milliseconds since the node started.
    pub fn mono_ms(&self) -> u64 {
        (self.monotonic)()
    }
}

/// Bytes in hex, for trace logs.
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A source of monotonic milliseconds.
pub type MonotonicClock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Monotonic milliseconds since this clock was made, from the OS.
pub fn system_monotonic() -> MonotonicClock {
    let epoch = Instant::now();
    Arc::new(move || epoch.elapsed().as_millis() as u64)
}

/// The raft role of a replica as last reported by its group.
#[derive(Clone, Copy, Debug)]
pub struct RaftView {
    pub role: StateRole,
    pub term: u64,
    pub leader: u64,
}

/// What the request path knows about a replica.
pub struct ReplicaShared {
    pub range_id: u64,
    pub descriptor: RwLock<RangeDescriptor>,
    /// False until the replica has data (an empty replica waits for a
    /// snapshot).
    pub initialized: AtomicBool,
    pub raft: Mutex<RaftView>,
    pub lease: Mutex<LeaseState>,
    pub applied: AtomicU64,
    /// Woken on any lease or role change.
    pub lease_changed: tokio::sync::Notify,
    /// Last time (mono ms) a client read or wrote: busy ranges keep their
    /// lease warm, idle ones let it lapse and quiesce.
    pub last_used_ms: AtomicU64,
    /// When (mono ms) this replica last became leader.
    pub leader_since_ms: AtomicU64,
    /// When (mono ms) this node last proposed an MVCC GC of the range.
    pub last_gc_ms: AtomicU64,
    /// The descriptor generation this node has seen recorded in /meta (0:
    /// not checked yet): /meta is read again only when it changes.
    pub meta_generation: AtomicU64,
    /// Timestamp cache, write latches and intent wake-ups (leaseholder).
    pub conc: Concurrency,
    /// The raft term whose lease set the timestamp cache's low-water mark.
    pub tscache_term: AtomicU64,
    /// Where this range's requests come from (lease placement).
    pub origins: Mutex<crate::placement::RequestOrigins>,
}

impl ReplicaShared {
    pub fn new(descriptor: RangeDescriptor, initialized: bool) -> Arc<Self> {
        Arc::new(ReplicaShared {
            range_id: descriptor.range_id,
            descriptor: RwLock::new(descriptor),
            initialized: AtomicBool::new(initialized),
            raft: Mutex::new(RaftView {
                role: StateRole::Follower,
                term: 0,
                leader: 0,
            }),
            lease: Mutex::new(LeaseState::default()),
            applied: AtomicU64::new(0),
            lease_changed: tokio::sync::Notify::new(),
            last_used_ms: AtomicU64::new(0),
            leader_since_ms: AtomicU64::new(0),
            last_gc_ms: AtomicU64::new(0),
            meta_generation: AtomicU64::new(0),
            conc: Concurrency::default(),
            tscache_term: AtomicU64::new(0),
            origins: Mutex::new(Default::default()),
        })
    }

    pub fn descriptor(&self) -> RangeDescriptor {
        self.descriptor.read().clone()
    }

    /// Whether this replica may serve a consistent read now.
    pub fn has_valid_lease(&self, now_ms: u64) -> bool {
        let raft = *self.raft.lock();
        raft.role == StateRole::Leader
            && self
                .lease
                .lock()
                .valid(raft.term, now_ms, self.applied.load(Ordering::Acquire))
    }

    /// The node this replica believes leads the range (0: unknown).
    pub fn leader_hint(&self) -> u64 {
        self.raft.lock().leader
    }

    pub fn is_leader(&self) -> bool {
        self.raft.lock().role == StateRole::Leader
    }
}

/// Engine key of a replica's descriptor (node-local: written by every
/// replica identically when applying, and carried in snapshots).
pub fn descriptor_key(range_id: u64) -> Vec<u8> {
    let mut k = vec![0x00, b'd'];
    k.extend_from_slice(&range_id.to_be_bytes());
    k
}

/// Engine key range of all descriptors.
pub fn descriptor_span() -> (Vec<u8>, Vec<u8>) {
    (vec![0x00, b'd'], vec![0x00, b'e'])
}

/// Engine key recording that this node's replica of a range was removed:
/// its value is the first descriptor generation whose messages may create
/// a replica here again (8 bytes, big-endian; older tombstones hold one
/// byte and block the range for good). Messages from older configurations
/// are dropped instead of recreating the replica.
pub fn tombstone_key(range_id: u64) -> Vec<u8> {
    let mut k = vec![0x00, b't'];
    k.extend_from_slice(&range_id.to_be_bytes());
    k
}

pub fn kv_err(kind: kv_error::Kind) -> KvResponse {
    KvResponse {
        error: Some(KvError { kind: Some(kind) }),
        ..Default::default()
    }
}

pub fn internal(msg: impl Into<String>) -> KvResponse {
    kv_err(kv_error::Kind::Internal(msg.into()))
}

pub fn unavailable(reason: impl Into<String>, ambiguous: bool) -> KvResponse {
    kv_err(kv_error::Kind::Unavailable(proto::Unavailable {
        reason: reason.into(),
        ambiguous,
    }))
}

pub fn key_mismatch(descs: Vec<RangeDescriptor>) -> KvResponse {
    kv_err(kv_error::Kind::KeyMismatch(proto::RangeKeyMismatch {
        descriptors: descs,
    }))
}

/// Whether `key` lies in the descriptor's span.
/// A wire timestamp, zero if absent.
pub fn ts_of(t: &Option<proto::Timestamp>) -> Timestamp {
    (*t).unwrap_or_default().into()
}

pub fn contains(desc: &RangeDescriptor, key: &[u8]) -> bool {
    desc.start_key.as_slice() <= key && key < desc.end_key.as_slice()
}

/// The voters and learners of a descriptor.
pub fn members(desc: &RangeDescriptor) -> (Vec<u64>, Vec<u64>) {
    let mut voters = Vec::new();
    let mut learners = Vec::new();
    for r in &desc.replicas {
        if r.r#type == ReplicaType::Learner as i32 {
            learners.push(r.node_id);
        } else {
            voters.push(r.node_id);
        }
    }
    (voters, learners)
}

/// One node's copy of one range.
pub struct Replica {
    shared: Arc<ReplicaShared>,
    ctx: Arc<ReplicaContext>,
    /// Proposals of this node waiting to apply: index -> (term, responder).
    proposals: BTreeMap<u64, (u64, Responder)>,
    /// Answers ready to send once this round's writes are in the engine.
    completed: Vec<(Responder, KvResponse)>,
    pending: Arc<Mutex<PendingWrites>>,
    ticks_since_renewal: u64,
    /// Ranges created by splits applied this round, registered once written.
    created: Vec<Arc<ReplicaShared>>,
    destroyed: bool,
    /// The timestamp of the command being applied.
    apply_ts: Timestamp,
    /// This replica's id (incarnation) when its descriptor does not name
    /// it yet: an empty replica knows it from the message that created it.
    incarnation: u64,
}

impl Replica {
    pub fn new(shared: Arc<ReplicaShared>, ctx: Arc<ReplicaContext>) -> Self {
        Replica {
            shared,
            ctx,
            proposals: BTreeMap::new(),
            completed: Vec::new(),
            pending: Arc::new(Mutex::new(PendingWrites::default())),
            ticks_since_renewal: 0,
            created: Vec::new(),
            destroyed: false,
            apply_ts: Timestamp::ZERO,
            incarnation: 0,
        }
    }

    /// An empty replica created for a message to replica `replica_id` of
    /// this node (see [`StateMachine::replica_id`]).
    pub fn with_incarnation(mut self, replica_id: u64) -> Self {
        self.incarnation = replica_id;
        self
    }

    pub fn shared(&self) -> &Arc<ReplicaShared> {
        &self.shared
    }

    /// Registers a client waiting for the proposal at (index, term).
    pub fn track_proposal(&mut self, index: u64, term: u64, responder: Responder) {
        self.proposals.insert(index, (term, responder));
    }

    /// Asks raft for a lease grant (a read index stamped with now).
    pub fn request_lease(&mut self, ctl: &mut GroupControl<'_>) {
        if ctl.role() == StateRole::Leader && !ctl.transferring_leadership() {
            let now = self.ctx.mono_ms();
            ctl.read_index(now.to_be_bytes().to_vec());
            self.ticks_since_renewal = 0;
        }
    }

    fn overlay(&self) -> Overlay {
        Overlay {
            engine: self.ctx.engine.clone(),
            pending: self.pending.clone(),
        }
    }

    fn persist_descriptor(desc: &RangeDescriptor, batch: &mut WriteBatch) {
        batch.put(descriptor_key(desc.range_id), desc.encode_to_vec());
    }

    /// Writes `value` (None: a deletion) at `ts` or, if a newer version
    /// exists, just above it. Returns the timestamp written.
    fn write_version(
        &self,
        view: &Overlay,
        batch: &mut WriteBatch,
        key: &[u8],
        mut ts: Timestamp,
        value: Option<Vec<u8>>,
    ) -> Result<Timestamp, Box<KvResponse>> {
        loop {
            match mvcc::put(view, batch, key, ts, value.clone(), None) {
                Ok(()) => return Ok(ts),
                Err(MvccError::WriteTooOld { existing, .. }) => ts = existing.next(),
                Err(MvccError::WriteIntent { intents }) => {
                    return Err(Box::new(write_intent_error(intents)))
                }
                Err(e) => return Err(Box::new(internal(format!("write failed: {e}")))),
            }
        }
    }

    fn apply_command(
        &mut self,
        data: &[u8],
        batch: &mut WriteBatch,
        effects: &mut Vec<Effect<Replica>>,
    ) -> KvResponse {
        let cmd = match RaftCommand::decode(data) {
            Ok(c) => c,
            Err(e) => return internal(format!("undecodable command: {e}")),
        };
        let ts: Timestamp = cmd.timestamp.unwrap_or_default().into();
        self.ctx.clock.forward_to(ts);
        self.apply_ts = ts;
        let desc = self.shared.descriptor();
        let view = self.overlay();
        let written = |r: Result<Timestamp, Box<KvResponse>>| match r {
            Ok(ts) => KvResponse {
                timestamp: Some(ts.into()),
                ..Default::default()
            },
            Err(e) => *e,
        };
        match cmd.cmd {
            Some(raft_command::Cmd::Put(p)) => {
                if !contains(&desc, &p.key) {
                    return key_mismatch(vec![desc]);
                }
                written(self.write_version(&view, batch, &p.key, ts, Some(p.value)))
            }
            Some(raft_command::Cmd::Delete(d)) => {
                if !contains(&desc, &d.key) {
                    return key_mismatch(vec![desc]);
                }
                written(self.write_version(&view, batch, &d.key, ts, None))
            }
            Some(raft_command::Cmd::Cput(c)) => {
                if !contains(&desc, &c.key) {
                    return key_mismatch(vec![desc]);
                }
                let current = match mvcc::get_version(&view, &c.key, Timestamp::MAX) {
                    Ok(v) => v.and_then(|(_, v)| v),
                    Err(e) => return internal(format!("read failed: {e}")),
                };
                if current != c.expected {
                    return kv_err(kv_error::Kind::ConditionFailed(proto::ConditionFailed {
                        actual: current,
                    }));
                }
                written(self.write_version(&view, batch, &c.key, ts, Some(c.value)))
            }
            Some(raft_command::Cmd::Split(s)) => self.apply_split(s, batch, effects),
            Some(raft_command::Cmd::Batch(b)) => self.apply_write_batch(b, ts, &desc, batch),
            Some(raft_command::Cmd::TxnWrite(w)) => self.apply_txn_write(w, &desc, batch),
            Some(raft_command::Cmd::TxnRecord(r)) => {
                let what = if tracing::enabled!(target: "tessera_kv::apply", tracing::Level::TRACE)
                {
                    format!("{:?}", r.op)
                } else {
                    String::new()
                };
                let resp = self.apply_txn_record(r, &desc, batch);
                tracing::trace!(
                    target: "tessera_kv::apply",
                    "range {}: record command {what} -> record {:?}, error {:?}",
                    desc.range_id,
                    resp.record.as_ref().map(|r| (
                        crate::txn::short(&r.id),
                        r.status,
                        r.timestamp.map(Timestamp::from)
                    )),
                    resp.error
                );
                resp
            }
            Some(raft_command::Cmd::ResolveIntents(r)) => self.apply_resolve(r, &desc, batch),
            Some(raft_command::Cmd::Gc(g)) => {
                let threshold: Timestamp = g.threshold.unwrap_or_default().into();
                match mvcc::gc(&view, batch, &desc.start_key, &desc.end_key, threshold) {
                    Ok(stats) => {
                        if stats.versions_deleted > 0 {
                            tracing::debug!(
                                "range {}: GC below {threshold} removed {} versions ({} bytes)",
                                desc.range_id,
                                stats.versions_deleted,
                                stats.bytes_deleted
                            );
                        }
                        KvResponse::default()
                    }
                    Err(e) => internal(format!("GC failed: {e}")),
                }
            }
            None => internal("empty command"),
        }
    }

    /// Applies every write of `b` or, if one cannot be (a failed
    /// condition, a key outside the range), none of them.
    fn apply_write_batch(
        &mut self,
        b: proto::WriteBatchRequest,
        ts: Timestamp,
        desc: &RangeDescriptor,
        batch: &mut WriteBatch,
    ) -> KvResponse {
        use proto::batch_write::Write;
        // Stage into a private batch over a private overlay, so a failure
        // midway leaves no trace.
        let mut staged = WriteBatch::new();
        // Reads see: the engine, this round's earlier commands (the
        // replica's pending writes), then this batch's own staged writes.
        let staging = Arc::new(Mutex::new(PendingWrites::default()));
        let view = Overlay {
            engine: Arc::new(Overlay {
                engine: self.ctx.engine.clone(),
                pending: self.pending.clone(),
            }),
            pending: staging.clone(),
        };
        let mut max_ts = ts;
        for w in b.writes {
            let (key, value, expected) = match w.write {
                Some(Write::Put(p)) => (p.key, Some(p.value), None),
                Some(Write::Delete(d)) => (d.key, None, None),
                Some(Write::Cput(c)) => (c.key, Some(c.value), Some(c.expected)),
                Some(Write::Lock(_)) => return internal("a lock outside a transaction"),
                None => return internal("empty write in batch"),
            };
            if !contains(desc, &key) {
                return key_mismatch(vec![desc.clone()]);
            }
            if let Some(expected) = expected {
                let current = match mvcc::get_version(&view, &key, Timestamp::MAX) {
                    Ok(v) => v.and_then(|(_, v)| v),
                    Err(e) => return internal(format!("read failed: {e}")),
                };
                if current != expected {
                    return kv_err(kv_error::Kind::ConditionFailed(proto::ConditionFailed {
                        actual: current,
                    }));
                }
            }
            let from = staged.len();
            match self.write_version(&view, &mut staged, &key, ts, value) {
                Ok(written) => max_ts = max_ts.max(written),
                Err(e) => return *e,
            }
            staging.lock().record(&staged, from);
        }
        batch.extend(staged);
        KvResponse {
            timestamp: Some(max_ts.into()),
            ..Default::default()
        }
    }

    fn apply_split(
        &mut self,
        split: proto::SplitCommand,
        batch: &mut WriteBatch,
        effects: &mut Vec<Effect<Replica>>,
    ) -> KvResponse {
        let desc = self.shared.descriptor();
        let (Some(left), Some(right)) = (split.left, split.right) else {
            return internal("split without descriptors");
        };
        let valid = left.range_id == desc.range_id
            && left.start_key == desc.start_key
            && right.end_key == desc.end_key
            && left.end_key == right.start_key
            && left.generation > desc.generation
            && left.start_key < left.end_key
            && right.start_key < right.end_key;
        if !valid {
            // The range changed since the split was planned: refuse.
            return key_mismatch(vec![desc]);
        }
        Self::persist_descriptor(&left, batch);
        Self::persist_descriptor(&right, batch);
        *self.shared.descriptor.write() = left.clone();
        let right_shared = ReplicaShared::new(right.clone(), true);
        let (voters, learners) = members(&right);
        let campaign = self.shared.is_leader();
        effects.push(Effect::CreateGroup {
            range_id: right.range_id,
            voters,
            learners,
            state_machine: Replica::new(right_shared.clone(), self.ctx.clone()),
            campaign,
        });
        self.created.push(right_shared);
        KvResponse {
            descriptor: Some(left),
            ..Default::default()
        }
    }
}

impl StateMachine for Replica {
    fn on_handover_sent(&self, max_age_ms: u64) -> u64 {
        // The handover is taken until `max_age_ms` after it was sent (plus
        // the clocks' offset), and the votes of the campaign it starts
        // until as long again after that.
        let quiet = (Duration::from_millis(max_age_ms) + self.ctx.clock.max_offset()) * 2;
        let until = self.ctx.mono_ms() + quiet.as_millis() as u64;
        self.shared.lease.lock().revoke(until);
        tracing::trace!(
            target: "tessera_kv::apply",
            "range {}: leadership handover sent; no lease for {} ms",
            self.shared.range_id,
            quiet.as_millis()
        );
        self.ctx.clock.physical_now()
    }

    fn physical_now_ms(&self) -> u64 {
        self.ctx.clock.physical_now()
    }

    fn apply(
        &mut self,
        index: u64,
        term: u64,
        data: &[u8],
        batch: &mut WriteBatch,
        effects: &mut Vec<Effect<Self>>,
    ) {
        let from = batch.len();
        let resp = self.apply_command(data, batch, effects);
        self.pending.lock().record(batch, from);
        self.answer(index, term, resp);
    }

    fn apply_conf_change(
        &mut self,
        index: u64,
        context: &[u8],
        _conf_state: &ConfState,
        batch: &mut WriteBatch,
        effects: &mut Vec<Effect<Self>>,
    ) {
        let term = self.proposals.get(&index).map(|(t, _)| *t).unwrap_or(0);
        let resp = match RangeDescriptor::decode(context) {
            Ok(desc) if desc.range_id == self.shared.range_id => {
                Self::persist_descriptor(&desc, batch);
                let removed = !desc.replicas.iter().any(|r| r.node_id == self.ctx.node_id);
                *self.shared.descriptor.write() = desc.clone();
                if removed {
                    effects.push(Effect::Destroy);
                }
                KvResponse {
                    descriptor: Some(desc),
                    ..Default::default()
                }
            }
            _ => internal("membership change without a valid descriptor"),
        };
        self.answer(index, term, resp);
    }

    fn on_applied(&mut self, applied_index: u64) {
        self.pending.lock().clear();
        self.shared.applied.store(applied_index, Ordering::Release);
        for (responder, resp) in self.completed.drain(..) {
            let _ = responder.send(resp);
        }
        // Proposals at or below the applied index that were not answered
        // were replaced by other entries (e.g. an empty entry of a new term).
        while let Some(entry) = self.proposals.first_entry() {
            if *entry.key() > applied_index {
                break;
            }
            let (_, responder) = entry.remove();
            let _ = responder.send(unavailable("proposal was dropped by raft", false));
        }
        if !self.created.is_empty() {
            let mut reg = self.ctx.registry.write();
            for s in self.created.drain(..) {
                reg.entry(s.range_id).or_insert(s);
            }
        }
        self.shared.lease_changed.notify_waiters();
        self.shared.conc.intents_changed.notify_waiters();
    }

    fn build_snapshot(&self) -> Result<Vec<u8>, String> {
        let desc = self.shared.descriptor();
        let mut snap = RangeSnapshot {
            descriptor: Some(desc.clone()),
            data: Vec::new(),
        };
        for (lo, hi) in mvcc::engine_span(&desc.start_key, &desc.end_key) {
            let iter = self
                .ctx
                .engine
                .scan(&lo, &hi, false)
                .map_err(|e| e.to_string())?;
            for item in iter {
                let (key, value) = item.map_err(|e| e.to_string())?;
                snap.data.push(proto::KeyValue { key, value });
            }
        }
        Ok(snap.encode_to_vec())
    }

    fn apply_snapshot(&mut self, data: &[u8], batch: &mut WriteBatch) -> Result<(), String> {
        let snap = RangeSnapshot::decode(data).map_err(|e| e.to_string())?;
        let desc = snap.descriptor.ok_or("snapshot without descriptor")?;
        let old = self.shared.descriptor();
        for d in [&old, &desc] {
            if d.start_key < d.end_key {
                mvcc::clear_span(self.ctx.engine.as_ref(), batch, &d.start_key, &d.end_key)
                    .map_err(|e| e.to_string())?;
            }
        }
        for kv in snap.data {
            batch.put(kv.key, kv.value);
        }
        Self::persist_descriptor(&desc, batch);
        *self.shared.descriptor.write() = desc;
        self.shared.initialized.store(true, Ordering::Release);
        self.ctx
            .registry
            .write()
            .insert(self.shared.range_id, self.shared.clone());
        Ok(())
    }

    fn destroy(&mut self, batch: &mut WriteBatch) {
        let desc = self.shared.descriptor();
        if let Err(e) = mvcc::clear_span(
            self.ctx.engine.as_ref(),
            batch,
            &desc.start_key,
            &desc.end_key,
        ) {
            tracing::error!("range {}: cannot clear removed replica: {e}", desc.range_id);
        }
        batch.delete(descriptor_key(desc.range_id));
        // Messages of this configuration or an older one are dropped from
        // now on; a later one (the range added a replica here again)
        // creates a fresh replica.
        let next_generation = desc.generation + 1;
        batch.put(
            tombstone_key(desc.range_id),
            next_generation.to_be_bytes().to_vec(),
        );
        self.destroyed = true;
        self.shared.initialized.store(false, Ordering::Release);
        self.ctx.registry.write().remove(&desc.range_id);
        tracing::info!("range {}: replica removed from this node", desc.range_id);
    }

    fn span(&self) -> (Vec<u8>, Vec<u8>) {
        let d = self.shared.descriptor.read();
        (d.start_key.clone(), d.end_key.clone())
    }

    fn generation(&self) -> u64 {
        self.shared.descriptor.read().generation
    }

    fn replica_id(&self, node_id: u64) -> u64 {
        let named = self
            .shared
            .descriptor
            .read()
            .replicas
            .iter()
            .find(|r| r.node_id == node_id)
            .map(|r| r.replica_id);
        match named {
            Some(id) => id,
            None if node_id == self.ctx.node_id => self.incarnation,
            None => 0,
        }
    }

    fn on_read_index(&mut self, ctx: &[u8], index: u64) {
        let Ok(bytes) = <[u8; 8]>::try_from(ctx) else {
            return;
        };
        let requested_ms = u64::from_be_bytes(bytes);
        let term = self.shared.raft.lock().term;
        self.shared
            .lease
            .lock()
            .grant(term, requested_ms, index, self.ctx.lease_duration);
        tracing::trace!(
            target: "tessera_kv::apply",
            "range {}: lease grant term {term} requested at {requested_ms} ms, read index {index}, now {}",
            self.shared.range_id,
            self.ctx.clock.now()
        );
        // A new lease: no read of a previous leaseholder can be above this
        // clock reading (see the concurrency module).
        // Nor can it know the previous leaseholder's row locks: a new lease
        // starts without any (and without stale ones of an earlier lease).
        if self.shared.tscache_term.swap(term, Ordering::AcqRel) != term {
            self.shared
                .conc
                .tscache
                .lock()
                .set_low_water(self.ctx.clock.now());
            self.shared.conc.locks.lock().clear();
        }
        self.shared.lease_changed.notify_waiters();
    }

    fn on_state_change(&mut self, role: StateRole, term: u64, leader: u64) {
        let was_leader = self.shared.raft.lock().role == StateRole::Leader;
        *self.shared.raft.lock() = RaftView { role, term, leader };
        if role == StateRole::Leader && !was_leader {
            self.shared
                .leader_since_ms
                .store(self.ctx.mono_ms(), Ordering::Relaxed);
        }
        if role != StateRole::Leader {
            self.shared.lease.lock().revoke(self.ctx.mono_ms());
            // Row locks live with the lease: whoever waits on one here
            // looks again (and finds the new leaseholder).
            if was_leader {
                self.shared.conc.locks.lock().clear();
                self.shared.conc.intents_changed.notify_waiters();
            }
        }
        self.shared.lease_changed.notify_waiters();
    }

    fn on_tick(&mut self, ctl: &mut GroupControl<'_>) {
        // Keep the raft view's term current (terms can change without a
        // soft-state change being reported, e.g. a follower's term bump).
        {
            let mut view = self.shared.raft.lock();
            view.term = ctl.term();
            view.leader = ctl.leader();
            view.role = ctl.role();
        }
        if ctl.role() != StateRole::Leader {
            return;
        }
        self.ticks_since_renewal += 1;
        let now = self.ctx.mono_ms();
        let busy = now.saturating_sub(self.shared.last_used_ms.load(Ordering::Relaxed)) < 3_000;
        if busy && self.ticks_since_renewal >= self.ctx.renew_every_ticks {
            self.request_lease(ctl);
        }
    }
}

impl Replica {
    fn answer(&mut self, index: u64, term: u64, resp: KvResponse) {
        if let Some((want_term, responder)) = self.proposals.remove(&index) {
            if want_term == term {
                self.completed.push((responder, resp));
            } else {
                self.completed.push((
                    responder,
                    unavailable("proposal lost to a leadership change", false),
                ));
            }
        }
    }

    /// Builds the descriptor after a membership change on `node_id`.
    pub fn changed_descriptor(
        desc: &RangeDescriptor,
        node_id: u64,
        direction: ConfChangeDirection,
    ) -> RangeDescriptor {
        let mut d = desc.clone();
        d.generation += 1;
        match direction {
            ConfChangeDirection::AddLearner => {
                // A fresh id: a replica that was here before (removed, and
                // maybe unaware of it) is a different incarnation.
                let replica_id = d
                    .replicas
                    .iter()
                    .map(|r| r.replica_id + 1)
                    .max()
                    .unwrap_or(1)
                    .max(d.next_replica_id);
                d.next_replica_id = replica_id + 1;
                d.replicas.retain(|r| r.node_id != node_id);
                d.replicas.push(proto::ReplicaDescriptor {
                    node_id,
                    replica_id,
                    r#type: ReplicaType::Learner as i32,
                });
            }
            ConfChangeDirection::Promote => {
                for r in d.replicas.iter_mut() {
                    if r.node_id == node_id {
                        r.r#type = ReplicaType::Voter as i32;
                    }
                }
            }
            ConfChangeDirection::Remove => d.replicas.retain(|r| r.node_id != node_id),
        }
        d.replicas.sort_by_key(|r| r.node_id);
        d
    }
}
