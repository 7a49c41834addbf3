//! The store: every replica on one node, the thread that drives their raft
//! groups, and the request path that serves reads under a lease and turns
//! writes into raft proposals.
//!
//! Threads: one raft thread owns the [`MultiRaft`] (ticks, steps, persists,
//! applies); requests arrive on async tasks and talk to it through a
//! channel. Reads never enter the raft thread: the leaseholder checks its
//! lease ([`crate::lease`]) and reads the engine directly.
//!
//! Background work of a leaseholder, once a second: up-replicate ranges
//! with fewer voters than the cluster can hold (learner, snapshot,
//! promote), keep the range's /meta record current, and move the lease to
//! the range's preferred node: toward the node whose clients send it the
//! most requests, else spread over the cluster ([`crate::placement`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use parking_lot::RwLock;
use prost::Message as _;
use tessera_common::keys;
use tessera_common::proto::{
    self, kv_error, kv_request, raft_command, KvRequest, KvResponse, LocalRange, RaftBatch,
    RaftCommand, RangeDescriptor, ReplicaType,
};
use tessera_common::{Clock, Timestamp};
use tessera_raft::eraftpb::{ConfChange, ConfChangeType};
use tessera_raft::{Config as RaftConfig, MultiRaft, ProposeError, StateRole};
use tessera_storage::mvcc;
use tessera_storage::{Engine, WriteBatch};
use tokio::sync::oneshot;

use crate::db::DB;
use crate::placement::{lease_target, LeaseTarget};
use crate::replica::{
    contains, descriptor_key, descriptor_span, internal, key_mismatch, kv_err, members,
    tombstone_key, unavailable, ConfChangeDirection, Registry, Replica, ReplicaContext,
    ReplicaShared,
};

mod txn_ops;
pub use txn_ops::point_end;

/// Lease placement leaves a lease where it is for this long after it moved.
const LEASE_MIN_HOLD_MS: u64 = 3_000;

/// Sends raft message batches to other nodes (never blocks).
pub trait RaftTransport: Send + Sync + 'static {
    fn send(&self, batch: RaftBatch);
}

/// What the store knows about other nodes (from gossip).
pub trait Liveness: Send + Sync + 'static {
    /// Live nodes and whether each is draining.
    fn live_nodes(&self) -> Vec<(u64, bool)>;
    fn is_live(&self, node_id: u64) -> bool;
}

/// Timing of the store. Leases are derived from the raft timing.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub node_id: u64,
    pub tick: Duration,
    pub election_tick: usize,
    pub heartbeat_tick: usize,
    /// Voters per range, when enough nodes are live.
    pub replication_factor: usize,
    /// How long a client write waits for its proposal to apply.
    pub proposal_timeout: Duration,
    /// MVCC versions older than this (and shadowed by a newer one) are
    /// garbage-collected: reads further in the past are not possible.
    pub gc_ttl: Duration,
    /// How often a leaseholder garbage-collects its range.
    pub gc_interval: Duration,
    /// How long the raft thread may hold back a background intent
    /// resolution, waiting for another proposal to share its raft round
    /// and fsync. Zero proposes them at once.
    pub background_resolution_delay: Duration,
    /// Hooks that let tests stop a request at a chosen point; all empty
    /// outside tests.
    pub testing: TestingKnobs,
}

/// A hook awaited at one point of a request, given the keys it concerns.
pub type TestingHook = Arc<dyn Fn(&[Vec<u8>]) -> BoxFuture<'static, ()> + Send + Sync>;

/// Points where a test can hold a request, to force an interleaving that
/// is otherwise a matter of thread timing.
#[derive(Clone, Default)]
pub struct TestingKnobs {
    /// Awaited by a transaction's write after its timestamp is placed and
    /// before it is proposed.
    pub write_placed: Option<TestingHook>,
}

impl std::fmt::Debug for TestingKnobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestingKnobs")
            .field("write_placed", &self.write_placed.is_some())
            .finish()
    }
}

impl StoreConfig {
    pub fn new(node_id: u64) -> Self {
        StoreConfig {
            node_id,
            tick: Duration::from_millis(100),
            election_tick: 10,
            heartbeat_tick: 2,
            replication_factor: 3,
            proposal_timeout: Duration::from_secs(10),
            gc_ttl: Duration::from_secs(4 * 3600),
            gc_interval: Duration::from_secs(600),
            background_resolution_delay: Duration::from_millis(2),
            testing: TestingKnobs::default(),
        }
    }

    /// Lease length: below the shortest time a follower needs to stop
    /// honouring its leader ((election_tick - 1) ticks), minus a margin.
    pub fn lease_duration(&self) -> Duration {
        let safe = self.tick * (self.election_tick as u32 - 1);
        safe.mul_f64(0.8)
    }
}

/// A leader's commit index and each peer's matched index.
type ReplicationProgress = (u64, Vec<(u64, u64)>);

enum RaftMsg {
    Raft(RaftBatch),
    Propose {
        range_id: u64,
        cmd: Box<RaftCommand>,
        reply: oneshot::Sender<KvResponse>,
    },
    ChangeReplicas {
        range_id: u64,
        node_id: u64,
        direction: ConfChangeDirection,
        reply: oneshot::Sender<KvResponse>,
    },
    RenewLease(u64),
    TransferLease {
        range_id: u64,
        target: u64,
    },
    Progress {
        range_id: u64,
        reply: oneshot::Sender<Option<ReplicationProgress>>,
    },
    Status(oneshot::Sender<HashMap<u64, tessera_raft::GroupStatus>>),
    /// Someone waits for a held-back background resolution: propose them.
    ProposeHeldBack,
    Stop,
}

impl RaftMsg {
    /// A proposal the raft thread may hold back (see
    /// [`StoreConfig::background_resolution_delay`]).
    fn may_wait(&self) -> bool {
        matches!(self, RaftMsg::Propose { cmd, .. }
            if matches!(&cmd.cmd, Some(raft_command::Cmd::ResolveIntents(r)) if r.background))
    }

    /// Does this message bring held-back proposals out? Any other proposal
    /// (they share its raft round, placed before it in the log, as they
    /// were submitted first), and whatever changes who leads.
    fn releases_held_back(&self) -> bool {
        matches!(
            self,
            RaftMsg::Propose { .. }
                | RaftMsg::ChangeReplicas { .. }
                | RaftMsg::TransferLease { .. }
                | RaftMsg::ProposeHeldBack
        )
    }
}

/// All replicas of one node.
pub struct Store {
    cfg: StoreConfig,
    ctx: Arc<ReplicaContext>,
    tx: mpsc::Sender<RaftMsg>,
    db: OnceLock<Arc<DB>>,
    liveness: Arc<dyn Liveness>,
    draining: AtomicBool,
    thread: parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn not_leaseholder(shared: &ReplicaShared) -> KvResponse {
    kv_err(kv_error::Kind::NotLeaseholder(proto::NotLeaseholder {
        leaseholder_node: shared.leader_hint(),
        descriptor: Some(shared.descriptor()),
    }))
}

impl Store {
    /// Writes the first range of a new cluster into `engine`: one replica,
    /// on this node, covering the whole keyspace, with its /meta record and
    /// the id generators. `batch` may carry the caller's own writes (the
    /// store identity): everything lands in one atomic, synced write.
    pub fn bootstrap(
        engine: &dyn Engine,
        node_id: u64,
        now: Timestamp,
        mut batch: WriteBatch,
    ) -> Result<(), String> {
        let desc = RangeDescriptor {
            range_id: 1,
            start_key: keys::KEY_MIN.to_vec(),
            end_key: keys::KEY_MAX.to_vec(),
            replicas: vec![proto::ReplicaDescriptor {
                node_id,
                replica_id: node_id,
                r#type: ReplicaType::Voter as i32,
            }],
            generation: 1,
            next_replica_id: node_id + 1,
        };
        batch.put(descriptor_key(1), desc.encode_to_vec());
        tessera_raft::GroupStorage::initialized(1, vec![node_id], vec![], &mut batch);
        let puts: [(&[u8], Vec<u8>); 3] = [
            (&keys::meta_key(keys::KEY_MAX), desc.encode_to_vec()),
            (keys::NODE_ID_GENERATOR, node_id.to_be_bytes().to_vec()),
            (keys::RANGE_ID_GENERATOR, 1u64.to_be_bytes().to_vec()),
        ];
        for (k, v) in puts {
            mvcc::put(engine, &mut batch, k, now, Some(v), None).map_err(|e| e.to_string())?;
        }
        engine.write(batch, true).map_err(|e| e.to_string())
    }

    /// Opens every replica found in `engine` and starts the raft thread.
    pub fn start(
        cfg: StoreConfig,
        engine: Arc<dyn Engine>,
        clock: Clock,
        transport: Arc<dyn RaftTransport>,
        liveness: Arc<dyn Liveness>,
    ) -> Result<Arc<Store>, String> {
        let registry: Registry = Arc::new(RwLock::new(HashMap::new()));
        let ctx = Arc::new(ReplicaContext {
            node_id: cfg.node_id,
            engine: engine.clone(),
            clock: clock.clone(),
            monotonic: crate::replica::system_monotonic(),
            lease_duration: cfg.lease_duration(),
            renew_every_ticks: cfg.heartbeat_tick as u64,
            registry: registry.clone(),
        });
        let mut rcfg = RaftConfig::new(cfg.node_id);
        rcfg.election_tick = cfg.election_tick;
        rcfg.heartbeat_tick = cfg.heartbeat_tick;
        rcfg.vote_grace_ticks = cfg.election_tick as u64;
        let mut mr: MultiRaft<Replica> = MultiRaft::new(rcfg, engine.clone());
        let live = liveness.clone();
        mr.set_liveness(move |n| live.is_live(n));

        let (lo, hi) = descriptor_span();
        for item in engine.scan(&lo, &hi, false).map_err(|e| e.to_string())? {
            let (_, v) = item.map_err(|e| e.to_string())?;
            let desc = RangeDescriptor::decode(v.as_slice())
                .map_err(|e| format!("corrupt range descriptor: {e}"))?;
            let shared = ReplicaShared::new(desc.clone(), true);
            registry.write().insert(desc.range_id, shared.clone());
            mr.load_group(desc.range_id, Replica::new(shared, ctx.clone()))?;
        }
        let (tx, rx) = mpsc::channel();
        let store = Arc::new(Store {
            cfg: cfg.clone(),
            ctx: ctx.clone(),
            tx,
            db: OnceLock::new(),
            liveness,
            draining: AtomicBool::new(false),
            thread: parking_lot::Mutex::new(None),
        });
        let handle = std::thread::Builder::new()
            .name(format!("raft-n{}", cfg.node_id))
            .spawn(move || {
                // Without its raft thread a node still answers RPCs but no
                // range on it moves: fail stop, like a storage failure.
                let run = std::panic::AssertUnwindSafe(|| {
                    raft_loop(
                        mr,
                        rx,
                        transport,
                        ctx,
                        cfg.tick,
                        cfg.background_resolution_delay,
                    )
                });
                if std::panic::catch_unwind(run).is_err() {
                    tracing::error!("the raft thread panicked (a bug); stopping the node");
                    std::process::exit(70);
                }
            })
            .map_err(|e| e.to_string())?;
        *store.thread.lock() = Some(handle);
        Ok(store)
    }

    /// Gives the store a client for cluster-wide operations (id
    /// allocation, /meta updates). Set once, right after start.
    pub fn set_db(&self, db: Arc<DB>) {
        let _ = self.db.set(db);
    }

    pub fn node_id(&self) -> u64 {
        self.cfg.node_id
    }

    pub fn clock(&self) -> &Clock {
        &self.ctx.clock
    }

    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.ctx.engine
    }

    fn replica(&self, range_id: u64) -> Option<Arc<ReplicaShared>> {
        let r = self.ctx.registry.read().get(&range_id).cloned()?;
        r.initialized.load(Ordering::Acquire).then_some(r)
    }

    /// Descriptors of the local replicas.
    pub fn replicas(&self) -> Vec<Arc<ReplicaShared>> {
        let mut v: Vec<_> = self.ctx.registry.read().values().cloned().collect();
        v.sort_by_key(|r| r.range_id);
        v
    }

    /// The descriptor of range 1 if this node holds a replica of it, and
    /// the leaseholder it believes in.
    pub fn first_range(&self) -> Option<(RangeDescriptor, u64)> {
        self.replica(1).map(|r| (r.descriptor(), r.leader_hint()))
    }

    /// Delivers raft messages from another node.
    pub fn deliver(&self, batch: RaftBatch) {
        if let Some(ts) = batch.timestamp {
            let _ = self.ctx.clock.update(ts.into());
        }
        let _ = self.tx.send(RaftMsg::Raft(batch));
    }

    /// Status of every local replica, for introspection.
    pub async fn local_ranges(&self) -> Vec<LocalRange> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(RaftMsg::Status(reply)).is_err() {
            return vec![];
        }
        let statuses = rx.await.unwrap_or_default();
        let now = self.ctx.mono_ms();
        self.replicas()
            .into_iter()
            .filter(|r| r.initialized.load(Ordering::Acquire))
            .map(|r| {
                let st = statuses.get(&r.range_id);
                LocalRange {
                    descriptor: Some(r.descriptor()),
                    leaseholder: r.has_valid_lease(now)
                        || st.is_some_and(|s| s.role == StateRole::Leader),
                    raft_leader: st.map(|s| s.leader).unwrap_or(0),
                    term: st.map(|s| s.term).unwrap_or(0),
                    applied_index: st.map(|s| s.applied).unwrap_or(0),
                    quiesced: st.is_some_and(|s| s.quiesced),
                }
            })
            .collect()
    }

    /// Fault injection only (`--inject-bug stale-follower-read`): answers a
    /// get from this node's replica whatever its role, without a lease, so
    /// the chaos harness can prove its checker catches stale reads. `None`
    /// if the request is not a get or there is no such local replica.
    pub fn read_without_lease(&self, req: &KvRequest) -> Option<KvResponse> {
        let Some(kv_request::Op::Get(g)) = &req.op else {
            return None;
        };
        let shared = self.replica(req.range_id)?;
        if !contains(&shared.descriptor(), &g.key) {
            return None;
        }
        let value = mvcc::get(self.ctx.engine.as_ref(), &g.key, self.ctx.clock.now(), None).ok()?;
        Some(KvResponse {
            value,
            timestamp: Some(self.ctx.clock.now().into()),
            ..Default::default()
        })
    }

    /// Serves one request addressed to a local replica.
    pub async fn execute(&self, req: KvRequest) -> KvResponse {
        if let Some(ts) = req.timestamp {
            if let Err(e) = self.ctx.clock.update(ts.into()) {
                return unavailable(format!("clock offset too large: {e}"), false);
            }
        }
        let Some(shared) = self.replica(req.range_id) else {
            return kv_err(kv_error::Kind::RangeNotFound(proto::RangeNotFound {}));
        };
        shared
            .last_used_ms
            .store(self.ctx.mono_ms(), Ordering::Relaxed);
        let desc = shared.descriptor();
        let Some(op) = req.op else {
            return kv_err(kv_error::Kind::BadRequest(
                "request without operation".into(),
            ));
        };
        // Load that decides where the lease goes: reads and writes, not
        // the pushes and waits of transactions in conflict.
        if matches!(
            op,
            kv_request::Op::Get(_)
                | kv_request::Op::Scan(_)
                | kv_request::Op::Put(_)
                | kv_request::Op::Delete(_)
                | kv_request::Op::Cput(_)
                | kv_request::Op::Batch(_)
                | kv_request::Op::TxnWrite(_)
                | kv_request::Op::Refresh(_)
        ) {
            shared.origins.lock().record(req.gateway_node_id);
        }
        let mut resp = match op {
            kv_request::Op::Get(g) => {
                if !contains(&desc, &g.key) {
                    return key_mismatch(vec![desc]);
                }
                let fixed = g.read_ts.map(Timestamp::from);
                let plan = match self
                    .prepare_read(&shared, &g.key, None, g.txn.as_ref(), fixed)
                    .await
                {
                    Ok(p) => p,
                    Err(resp) => return resp,
                };
                match mvcc::get_within(
                    self.ctx.engine.as_ref(),
                    &g.key,
                    plan.read_ts,
                    plan.limit,
                    plan.txn.as_ref(),
                ) {
                    Ok(mvcc::PointRead::Value(value)) => {
                        tracing::trace!(
                            target: "tessera_kv::apply",
                            "range {}: get {} at {} -> {:?}",
                            desc.range_id,
                            keys::pretty(&g.key),
                            plan.read_ts,
                            value.as_deref().map(crate::replica::hex)
                        );
                        KvResponse {
                            value,
                            ..Default::default()
                        }
                    }
                    Ok(mvcc::PointRead::Uncertain(ts)) => {
                        kv_err(kv_error::Kind::Uncertainty(proto::ReadWithinUncertainty {
                            ts: Some(ts.into()),
                        }))
                    }
                    Err(mvcc::MvccError::WriteIntent { intents }) => {
                        crate::replica::write_intent_error(intents)
                    }
                    Err(e) => internal(format!("read failed: {e}")),
                }
            }
            kv_request::Op::Scan(s) => {
                if s.start < desc.start_key || s.end > desc.end_key || s.start > s.end {
                    return key_mismatch(vec![desc]);
                }
                let fixed = s.read_ts.map(Timestamp::from);
                let plan = match self
                    .prepare_read(&shared, &s.start, Some(&s.end), s.txn.as_ref(), fixed)
                    .await
                {
                    Ok(p) => p,
                    Err(resp) => return resp,
                };
                match mvcc::scan(
                    self.ctx.engine.as_ref(),
                    &s.start,
                    &s.end,
                    plan.read_ts,
                    s.limit as usize,
                    s.reverse,
                    plan.txn.as_ref(),
                ) {
                    Ok(r) => {
                        // The part of the span the scan covered.
                        let (from, to) = match (&r.resume_key, s.reverse) {
                            (None, _) => (&s.start[..], &s.end[..]),
                            (Some(k), false) => (&s.start[..], &k[..]),
                            (Some(k), true) => (&k[..], &s.end[..]),
                        };
                        if let Some(resp) = self.check_read(&plan, from, to) {
                            return resp;
                        }
                        tracing::trace!(
                            target: "tessera_kv::apply",
                            "range {}: scan {}..{} at {} -> {} rows, first {:?}",
                            desc.range_id,
                            keys::pretty(&s.start),
                            keys::pretty(&s.end),
                            plan.read_ts,
                            r.rows.len(),
                            r.rows.first().map(|(k, v)| format!(
                                "{}={}",
                                keys::pretty(k),
                                crate::replica::hex(v)
                            ))
                        );
                        KvResponse {
                            rows: r
                                .rows
                                .into_iter()
                                .map(|(key, value)| proto::KeyValue { key, value })
                                .collect(),
                            resume_key: r.resume_key,
                            ..Default::default()
                        }
                    }
                    Err(mvcc::MvccError::WriteIntent { intents }) => {
                        crate::replica::write_intent_error(intents)
                    }
                    Err(e) => internal(format!("scan failed: {e}")),
                }
            }
            kv_request::Op::Put(p) => {
                self.write(
                    &shared,
                    &desc,
                    vec![p.key.clone()],
                    raft_command::Cmd::Put(p),
                )
                .await
            }
            kv_request::Op::Delete(d) => {
                self.write(
                    &shared,
                    &desc,
                    vec![d.key.clone()],
                    raft_command::Cmd::Delete(d),
                )
                .await
            }
            kv_request::Op::Cput(c) => {
                self.write(
                    &shared,
                    &desc,
                    vec![c.key.clone()],
                    raft_command::Cmd::Cput(c),
                )
                .await
            }
            kv_request::Op::Batch(b) => {
                let Some(first) = b.writes.first().and_then(batch_write_key) else {
                    return KvResponse::default();
                };
                if let Some(outside) = b
                    .writes
                    .iter()
                    .filter_map(batch_write_key)
                    .find(|k| !contains(&desc, k))
                {
                    let _ = outside;
                    return key_mismatch(vec![desc]);
                }
                let _ = first;
                let keys = b
                    .writes
                    .iter()
                    .filter_map(batch_write_key)
                    .map(<[u8]>::to_vec)
                    .collect();
                self.write(&shared, &desc, keys, raft_command::Cmd::Batch(b))
                    .await
            }
            kv_request::Op::TxnWrite(w) => self.txn_write(&shared, &desc, w).await,
            kv_request::Op::HeartbeatTxn(h) => {
                let anchor = h.txn.as_ref().map(|t| t.anchor.clone()).unwrap_or_default();
                let cmd = proto::TxnRecordCommand {
                    op: Some(proto::txn_record_command::Op::Heartbeat(h)),
                    txn: None,
                };
                self.txn_record(&shared, &desc, &anchor, cmd).await
            }
            kv_request::Op::PushTxn(p) => {
                let anchor = p.pushee_anchor.clone();
                let cmd = proto::TxnRecordCommand {
                    op: Some(proto::txn_record_command::Op::Push(p)),
                    txn: None,
                };
                self.txn_record(&shared, &desc, &anchor, cmd).await
            }
            kv_request::Op::RecoverTxn(r) => {
                let anchor = r.anchor.clone();
                let cmd = proto::TxnRecordCommand {
                    op: Some(proto::txn_record_command::Op::Recover(r)),
                    txn: None,
                };
                self.txn_record(&shared, &desc, &anchor, cmd).await
            }
            kv_request::Op::QueryIntent(q) => self.query_intent(&shared, &desc, q).await,
            kv_request::Op::ResolveIntents(r) => self.resolve_intents(&shared, &desc, r).await,
            kv_request::Op::WaitIntent(w) => self.wait_intent(&shared, &desc, w).await,
            kv_request::Op::Refresh(r) => self.refresh(&shared, &desc, r).await,
            kv_request::Op::Split(s) => self.admin_split(&shared, s.split_key).await,
            kv_request::Op::TransferLease(t) => {
                self.admin_transfer_lease(&shared, t.target_node).await
            }
            kv_request::Op::ChangeReplicas(c) => {
                if c.remove {
                    self.change_replicas(&shared, c.node_id, ConfChangeDirection::Remove)
                        .await
                } else {
                    self.add_replica(&shared, c.node_id).await
                }
            }
        };
        if resp.timestamp.is_none() {
            resp.timestamp = Some(self.ctx.clock.now().into());
        }
        resp.node_id = self.ctx.node_id;
        resp
    }

    /// Waits until this replica holds a valid lease, or says who does.
    async fn ensure_lease(&self, shared: &Arc<ReplicaShared>) -> Result<(), KvResponse> {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            if shared.has_valid_lease(self.ctx.mono_ms()) {
                return Ok(());
            }
            if !shared.is_leader() || Instant::now() >= deadline {
                return Err(not_leaseholder(shared));
            }
            // Register before asking, so the answer cannot be missed.
            let notified = shared.lease_changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let _ = self.tx.send(RaftMsg::RenewLease(shared.range_id));
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }

    async fn write(
        &self,
        shared: &Arc<ReplicaShared>,
        desc: &RangeDescriptor,
        keys: Vec<Vec<u8>>,
        cmd: raft_command::Cmd,
    ) -> KvResponse {
        if keys.iter().any(|k| !contains(desc, k)) {
            return key_mismatch(vec![desc.clone()]);
        }
        if !shared.is_leader() {
            return not_leaseholder(shared);
        }
        self.propose_latched(shared, keys, cmd, txn_ops::Writer::Plain)
            .await
    }

    async fn propose(&self, range_id: u64, cmd: raft_command::Cmd) -> KvResponse {
        self.propose_tracked(range_id, cmd).await.0
    }

    /// Proposes `cmd`; on a timeout also returns the channel that will
    /// still say when raft decided it.
    async fn propose_tracked(
        &self,
        range_id: u64,
        cmd: raft_command::Cmd,
    ) -> (KvResponse, Option<oneshot::Receiver<KvResponse>>) {
        let Some(mut rx) = self.submit(range_id, cmd) else {
            return (unavailable("node is shutting down", false), None);
        };
        match tokio::time::timeout(self.cfg.proposal_timeout, &mut rx).await {
            Ok(Ok(resp)) => (resp, None),
            Ok(Err(_)) => (unavailable("node is shutting down", true), None),
            Err(_) => (
                unavailable("write timed out; it may or may not have applied", true),
                Some(rx),
            ),
        }
    }

    /// Someone waits on a write in flight, which may be a background
    /// resolution the raft thread holds back: propose those now.
    fn propose_held_back(&self) {
        let _ = self.tx.send(RaftMsg::ProposeHeldBack);
    }

    /// Hands a command to the raft thread; the receiver says what became
    /// of it (answered when applied, or dropped if raft dropped it).
    /// `None`: the node is shutting down.
    fn submit(
        &self,
        range_id: u64,
        cmd: raft_command::Cmd,
    ) -> Option<oneshot::Receiver<KvResponse>> {
        let (reply, rx) = oneshot::channel();
        let msg = RaftMsg::Propose {
            range_id,
            cmd: Box::new(RaftCommand {
                timestamp: None,
                cmd: Some(cmd),
            }),
            reply,
        };
        self.tx.send(msg).ok()?;
        Some(rx)
    }

    async fn admin_split(&self, shared: &Arc<ReplicaShared>, split_key: Vec<u8>) -> KvResponse {
        let desc = shared.descriptor();
        if split_key.as_slice() < keys::SYSTEM_PREFIX {
            return kv_err(kv_error::Kind::BadRequest(
                "cannot split inside /meta: range 1 holds all range descriptors".into(),
            ));
        }
        if !contains(&desc, &split_key) {
            return key_mismatch(vec![desc]);
        }
        if split_key == desc.start_key {
            // Already a range boundary: nothing to do.
            return KvResponse {
                descriptor: Some(desc),
                ..Default::default()
            };
        }
        if !shared.is_leader() {
            return not_leaseholder(shared);
        }
        let Some(db) = self.db.get() else {
            return unavailable("node is starting", false);
        };
        let new_id = match db.increment(keys::RANGE_ID_GENERATOR).await {
            Ok(id) => id,
            Err(e) => return unavailable(format!("cannot allocate a range id: {e}"), false),
        };
        let mut left = desc.clone();
        left.end_key = split_key.clone();
        left.generation += 1;
        let right = RangeDescriptor {
            range_id: new_id,
            start_key: split_key,
            end_key: desc.end_key.clone(),
            replicas: desc.replicas.clone(),
            generation: desc.generation + 1,
            next_replica_id: desc.next_replica_id,
        };
        let resp = self
            .propose(
                shared.range_id,
                raft_command::Cmd::Split(proto::SplitCommand {
                    left: Some(left.clone()),
                    right: Some(right.clone()),
                }),
            )
            .await;
        if resp.error.is_some() {
            return resp;
        }
        for d in [&right, &left] {
            if let Err(e) = db.update_meta(d).await {
                tracing::warn!("range {}: /meta update after split failed: {e}", d.range_id);
            }
        }
        tracing::info!(
            "split range {} at {}: new range {}",
            desc.range_id,
            keys::pretty(&right.start_key),
            right.range_id
        );
        resp
    }

    async fn admin_transfer_lease(&self, shared: &Arc<ReplicaShared>, target: u64) -> KvResponse {
        let desc = shared.descriptor();
        if !desc
            .replicas
            .iter()
            .any(|r| r.node_id == target && r.r#type == ReplicaType::Voter as i32)
        {
            return kv_err(kv_error::Kind::BadRequest(format!(
                "node {target} has no voting replica of range {}",
                desc.range_id
            )));
        }
        if shared.leader_hint() == target {
            return KvResponse::default();
        }
        if !shared.is_leader() {
            return not_leaseholder(shared);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            self.replicate_locks(shared).await;
            let notified = shared.lease_changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let _ = self.tx.send(RaftMsg::TransferLease {
                range_id: shared.range_id,
                target,
            });
            let _ = tokio::time::timeout(Duration::from_millis(500), notified).await;
            if !shared.is_leader() {
                return KvResponse::default();
            }
        }
        unavailable(
            format!("lease transfer to node {target} did not complete"),
            false,
        )
    }

    async fn change_replicas(
        &self,
        shared: &Arc<ReplicaShared>,
        node_id: u64,
        direction: ConfChangeDirection,
    ) -> KvResponse {
        if !shared.is_leader() {
            return not_leaseholder(shared);
        }
        if direction == ConfChangeDirection::Remove && node_id == self.cfg.node_id {
            return kv_err(kv_error::Kind::BadRequest(
                "the leaseholder cannot remove itself; transfer the lease first".into(),
            ));
        }
        let (reply, rx) = oneshot::channel();
        let msg = RaftMsg::ChangeReplicas {
            range_id: shared.range_id,
            node_id,
            direction,
            reply,
        };
        if self.tx.send(msg).is_err() {
            return unavailable("node is shutting down", false);
        }
        let resp = match tokio::time::timeout(self.cfg.proposal_timeout, rx).await {
            Ok(Ok(resp)) => resp,
            _ => return unavailable("membership change timed out", true),
        };
        if let (None, Some(d)) = (&resp.error, &resp.descriptor) {
            if let Some(db) = self.db.get() {
                if let Err(e) = db.update_meta(d).await {
                    tracing::warn!("range {}: /meta update failed: {e}", d.range_id);
                }
            }
        }
        resp
    }

    /// Adds a voter on `node_id`: learner first, then a snapshot brings it
    /// up to date, then it is promoted.
    async fn add_replica(&self, shared: &Arc<ReplicaShared>, node_id: u64) -> KvResponse {
        let desc = shared.descriptor();
        let existing = desc.replicas.iter().find(|r| r.node_id == node_id);
        if existing.is_some_and(|r| r.r#type == ReplicaType::Voter as i32) {
            return KvResponse {
                descriptor: Some(desc),
                ..Default::default()
            };
        }
        if existing.is_none() {
            let resp = self
                .change_replicas(shared, node_id, ConfChangeDirection::AddLearner)
                .await;
            if resp.error.is_some() {
                return resp;
            }
        }
        // Wait for the learner to catch up (raft sends it a snapshot).
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (reply, rx) = oneshot::channel();
            let _ = self.tx.send(RaftMsg::Progress {
                range_id: shared.range_id,
                reply,
            });
            if let Ok(Some((committed, progress))) = rx.await {
                if progress
                    .iter()
                    .any(|(id, matched)| *id == node_id && *matched >= committed)
                {
                    break;
                }
            }
            if Instant::now() > deadline {
                return unavailable(format!("learner on node {node_id} did not catch up"), false);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.change_replicas(shared, node_id, ConfChangeDirection::Promote)
            .await
    }

    /// Moves leases away from this node and stops taking new ones; returns
    /// once no local replica leads its range (or after `timeout`).
    pub async fn drain(&self, timeout: Duration) -> usize {
        self.draining.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + timeout;
        loop {
            let leading: Vec<_> = self
                .replicas()
                .into_iter()
                .filter(|r| r.is_leader())
                .collect();
            if leading.is_empty() || Instant::now() >= deadline {
                return leading.len();
            }
            let live: Vec<u64> = self
                .liveness
                .live_nodes()
                .into_iter()
                .filter(|(n, draining)| *n != self.cfg.node_id && !draining)
                .map(|(n, _)| n)
                .collect();
            for r in &leading {
                let (voters, _) = members(&r.descriptor());
                if let Some(target) = voters.iter().find(|v| live.contains(v)) {
                    self.replicate_locks(r).await;
                    let _ = self.tx.send(RaftMsg::TransferLease {
                        range_id: r.range_id,
                        target: *target,
                    });
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Stops the raft thread (after a drain, on shutdown).
    pub fn stop(&self) {
        let _ = self.tx.send(RaftMsg::Stop);
        if let Some(h) = self.thread.lock().take() {
            let _ = h.join();
        }
        let _ = self.ctx.engine.sync();
    }

    /// One round of leaseholder duties for every local range (see the
    /// module doc). Run about once a second.
    pub async fn run_queues(&self) {
        if self.is_draining() {
            return;
        }
        let Some(db) = self.db.get() else { return };
        let live = self.liveness.live_nodes();
        let candidates: Vec<u64> = live.iter().filter(|(_, d)| !d).map(|(n, _)| *n).collect();
        for shared in self.replicas() {
            if !shared.is_leader() || !shared.initialized.load(Ordering::Acquire) {
                // Requests a follower turned away say nothing about load.
                shared.origins.lock().clear();
                continue;
            }
            let load = shared.origins.lock().take_round();
            let desc = shared.descriptor();
            let (voters, learners) = members(&desc);
            // Leftover learner from an interrupted up-replication.
            if let Some(l) = learners.first() {
                let resp = if candidates.contains(l) {
                    self.add_replica(&shared, *l).await
                } else {
                    self.change_replicas(&shared, *l, ConfChangeDirection::Remove)
                        .await
                };
                if let Some(e) = resp.error {
                    tracing::debug!("range {}: learner {l}: {e:?}", desc.range_id);
                }
                continue;
            }
            let want = self.cfg.replication_factor.min(candidates.len().max(1));
            if voters.len() < want {
                // Spread: the live node with the fewest replicas we know of
                // is not known here; pick deterministically by range id.
                let mut options: Vec<u64> = candidates
                    .iter()
                    .copied()
                    .filter(|n| !voters.contains(n))
                    .collect();
                options.sort();
                if !options.is_empty() {
                    let target = options[desc.range_id as usize % options.len()];
                    tracing::info!("range {}: adding a replica on node {target}", desc.range_id);
                    let resp = self.add_replica(&shared, target).await;
                    if let Some(e) = resp.error {
                        tracing::warn!("range {}: up-replication failed: {e:?}", desc.range_id);
                    }
                }
                continue;
            }
            // Repairs /meta if whoever changed the range died before
            // recording it; one read per descriptor change, not per round.
            if desc.generation > shared.meta_generation.load(Ordering::Relaxed) {
                match db.update_meta(&desc).await {
                    Ok(()) => shared
                        .meta_generation
                        .store(desc.generation, Ordering::Relaxed),
                    Err(e) => tracing::debug!("range {}: /meta check failed: {e}", desc.range_id),
                }
            }
            self.maybe_gc(&shared).await;
            // Lease placement: the preferred node among live voters.
            let mut eligible: Vec<u64> = voters
                .iter()
                .copied()
                .filter(|v| candidates.contains(v))
                .collect();
            eligible.sort();
            // A lease that just moved (by hand or by us) stays a while, so
            // that manual transfers stick and leases never ping-pong.
            let held_ms = self
                .ctx
                .mono_ms()
                .saturating_sub(shared.leader_since_ms.load(Ordering::Relaxed));
            if eligible.len() == voters.len()
                && !eligible.is_empty()
                && held_ms >= LEASE_MIN_HOLD_MS
            {
                let preferred = match lease_target(&load, self.cfg.node_id, &eligible) {
                    LeaseTarget::Stay => self.cfg.node_id,
                    LeaseTarget::MoveTo(node) => node,
                    LeaseTarget::Spread => eligible[desc.range_id as usize % eligible.len()],
                };
                if preferred != self.cfg.node_id && self.caught_up(shared.range_id, preferred).await
                {
                    tracing::debug!(
                        "range {}: moving lease to preferred node {preferred} (requests by gateway: {load:?})",
                        desc.range_id
                    );
                    self.replicate_locks(&shared).await;
                    let _ = self.tx.send(RaftMsg::TransferLease {
                        range_id: shared.range_id,
                        target: preferred,
                    });
                }
            }
        }
    }

    /// Proposes an MVCC GC of the range if its interval has passed. The
    /// threshold (now - TTL) is fixed by the leaseholder, so every replica
    /// removes exactly the same versions.
    async fn maybe_gc(&self, shared: &Arc<ReplicaShared>) {
        let now = self.ctx.mono_ms();
        let last = shared.last_gc_ms.load(Ordering::Relaxed);
        let interval = self.cfg.gc_interval.as_millis() as u64;
        if last != 0 && now.saturating_sub(last) < interval {
            return;
        }
        if last == 0 {
            // First round after becoming leaseholder: start the interval.
            shared.last_gc_ms.store(now.max(1), Ordering::Relaxed);
            return;
        }
        shared.last_gc_ms.store(now, Ordering::Relaxed);
        let now_ts = self.ctx.clock.now();
        let ttl_ms = self.cfg.gc_ttl.as_millis() as u64;
        if now_ts.wall <= ttl_ms {
            return;
        }
        let threshold = Timestamp::new(now_ts.wall - ttl_ms, 0);
        let resp = self
            .propose(
                shared.range_id,
                raft_command::Cmd::Gc(proto::GcCommand {
                    threshold: Some(threshold.into()),
                }),
            )
            .await;
        if let Some(e) = resp.error {
            tracing::debug!("range {}: GC proposal failed: {e:?}", shared.range_id);
        }
    }

    async fn caught_up(&self, range_id: u64, node_id: u64) -> bool {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(RaftMsg::Progress { range_id, reply });
        matches!(rx.await, Ok(Some((committed, progress)))
            if progress.iter().any(|(id, m)| *id == node_id && *m >= committed))
    }
}

/// The key a batched write touches.
pub fn batch_write_key(w: &proto::BatchWrite) -> Option<&[u8]> {
    use proto::batch_write::Write;
    match w.write.as_ref()? {
        Write::Put(p) => Some(&p.key),
        Write::Delete(d) => Some(&d.key),
        Write::Cput(c) => Some(&c.key),
        Write::Lock(l) => Some(&l.key),
    }
}

fn raft_loop(
    mut mr: MultiRaft<Replica>,
    rx: mpsc::Receiver<RaftMsg>,
    transport: Arc<dyn RaftTransport>,
    ctx: Arc<ReplicaContext>,
    tick: Duration,
    hold_back: Duration,
) {
    let mut next_tick = Instant::now() + tick;
    // Background resolutions waiting for another proposal to go with, and
    // when they go regardless.
    let mut held_back: Vec<RaftMsg> = Vec::new();
    let mut held_until = Instant::now();
    loop {
        let until = if held_back.is_empty() {
            next_tick
        } else {
            next_tick.min(held_until)
        };
        let wait = until.saturating_duration_since(Instant::now());
        let first = match rx.recv_timeout(wait) {
            Ok(m) => Some(m),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut handled = 0;
        let mut next = first;
        while let Some(msg) = next {
            if matches!(msg, RaftMsg::Stop) {
                let _ = mr.process_ready();
                return;
            }
            if !hold_back.is_zero() && msg.may_wait() {
                if held_back.is_empty() {
                    held_until = Instant::now() + hold_back;
                }
                held_back.push(msg);
            } else {
                if msg.releases_held_back() {
                    for m in held_back.drain(..) {
                        handle(&mut mr, m, &ctx);
                    }
                }
                handle(&mut mr, msg, &ctx);
            }
            handled += 1;
            next = if handled < 4096 {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        let now = Instant::now();
        if !held_back.is_empty() && now >= held_until {
            for m in held_back.drain(..) {
                handle(&mut mr, m, &ctx);
            }
        }
        if now >= next_tick {
            mr.tick();
            // Never catch up missed ticks in a burst: after a stall (GC,
            // SIGSTOP) time must not appear to run faster (leases rely on it).
            next_tick = now + tick;
        }
        let send = |out: std::collections::BTreeMap<u64, Vec<proto::RaftEnvelope>>| {
            for (to, messages) in out {
                transport.send(RaftBatch {
                    from_node: ctx.node_id,
                    to_node: to,
                    messages,
                    timestamp: Some(ctx.clock.now().into()),
                });
            }
        };
        match mr.process_ready_with(send) {
            Ok(out) => send(out.messages),
            Err(e) => {
                // The local disk failed under replicated state: this replica
                // can no longer be trusted to match its peers. Stop the node.
                tracing::error!("storage failure in the raft loop, stopping: {e}");
                std::process::exit(70);
            }
        }
    }
}

fn handle(mr: &mut MultiRaft<Replica>, msg: RaftMsg, ctx: &Arc<ReplicaContext>) {
    match msg {
        RaftMsg::Raft(batch) => {
            for env in batch.messages {
                match mr.step(&env) {
                    Ok(true) => {}
                    Ok(false) => {
                        // A replica we do not have: create an empty one that
                        // waits for a snapshot, unless it was removed from
                        // here and the message is from that configuration
                        // or an older one, or it overlaps a replica we have
                        // (then a split we have not applied yet will create
                        // it).
                        let tombstoned = match ctx.engine.get(&tombstone_key(env.range_id)) {
                            Ok(None) => false,
                            Ok(Some(v)) => match <[u8; 8]>::try_from(v.as_slice()) {
                                Ok(g) => env.generation < u64::from_be_bytes(g),
                                Err(_) => true,
                            },
                            Err(_) => true,
                        };
                        if tombstoned || mr.overlaps(&env.start_key, &env.end_key) {
                            continue;
                        }
                        let desc = RangeDescriptor {
                            range_id: env.range_id,
                            start_key: env.start_key.clone(),
                            end_key: env.end_key.clone(),
                            ..Default::default()
                        };
                        let shared = ReplicaShared::new(desc, false);
                        ctx.registry.write().insert(env.range_id, shared.clone());
                        let replica =
                            Replica::new(shared, ctx.clone()).with_incarnation(env.to_replica);
                        if mr.create_uninitialized(env.range_id, replica).is_ok() {
                            let _ = mr.step(&env);
                        }
                    }
                    Err(e) => tracing::warn!("dropping raft message: {e}"),
                }
            }
        }
        RaftMsg::Propose {
            range_id,
            mut cmd,
            reply,
        } => {
            // The timestamp is taken here, in log order: a leader's
            // proposals carry increasing timestamps.
            cmd.timestamp = Some(ctx.clock.now().into());
            match mr.propose(range_id, cmd.encode_to_vec()) {
                Ok((index, term)) => {
                    if let Some(r) = mr.state_machine_mut(range_id) {
                        r.track_proposal(index, term, reply);
                    }
                }
                Err(ProposeError::NotLeader { leader }) => {
                    let desc = mr.state_machine(range_id).map(|r| r.shared().descriptor());
                    let _ = reply.send(kv_err(kv_error::Kind::NotLeaseholder(
                        proto::NotLeaseholder {
                            leaseholder_node: leader,
                            descriptor: desc,
                        },
                    )));
                }
                Err(ProposeError::UnknownGroup) => {
                    let _ = reply.send(kv_err(kv_error::Kind::RangeNotFound(
                        proto::RangeNotFound {},
                    )));
                }
                Err(ProposeError::Dropped) => {
                    let _ =
                        reply.send(unavailable("proposal dropped (leadership changing)", false));
                }
            }
        }
        RaftMsg::ChangeReplicas {
            range_id,
            node_id,
            direction,
            reply,
        } => {
            let Some(r) = mr.state_machine(range_id) else {
                let _ = reply.send(kv_err(kv_error::Kind::RangeNotFound(
                    proto::RangeNotFound {},
                )));
                return;
            };
            let desc = Replica::changed_descriptor(&r.shared().descriptor(), node_id, direction);
            let mut cc = ConfChange {
                node_id,
                ..Default::default()
            };
            cc.set_change_type(match direction {
                ConfChangeDirection::AddLearner => ConfChangeType::AddLearnerNode,
                ConfChangeDirection::Promote => ConfChangeType::AddNode,
                ConfChangeDirection::Remove => ConfChangeType::RemoveNode,
            });
            match mr.propose_conf_change(range_id, desc.encode_to_vec(), cc) {
                Ok((index, term)) => {
                    if let Some(r) = mr.state_machine_mut(range_id) {
                        r.track_proposal(index, term, reply);
                    }
                }
                Err(e) => {
                    let _ = reply.send(unavailable(
                        format!("membership change refused: {e:?}"),
                        false,
                    ));
                }
            }
        }
        RaftMsg::RenewLease(range_id) => {
            mr.with_group(range_id, |ctl, r| r.request_lease(ctl));
        }
        RaftMsg::TransferLease { range_id, target } => {
            let now = ctx.mono_ms();
            mr.with_group(range_id, |ctl, r| {
                if ctl.role() == StateRole::Leader && ctl.leader() != target {
                    tracing::debug!(
                        "range {range_id}: transferring lease to {target}: {}",
                        ctl.describe_progress()
                    );
                    r.shared().lease.lock().revoke(now);
                    ctl.transfer_leader(target);
                }
            });
        }
        RaftMsg::Progress { range_id, reply } => {
            let p = mr.with_group(range_id, |ctl, _| (ctl.committed(), ctl.progress()));
            let _ = reply.send(p);
        }
        RaftMsg::Status(reply) => {
            let _ = reply.send(mr.statuses());
        }
        RaftMsg::ProposeHeldBack | RaftMsg::Stop => {}
    }
}
