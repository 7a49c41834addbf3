//! Seeded deterministic simulation of replicas, leases and raft together:
//! three nodes in one thread, a simulated clock that drives both the HLC and
//! the lease clock, and a simulated network with delays, reordering, drops,
//! partitions, and crash-restarts. Invariants are checked after every step:
//!
//! - at most one raft leader per term;
//! - at most one replica holds a valid lease at any instant;
//! - a read served under a lease never returns a value older than one whose
//!   write was acknowledged before the read;
//! - after healing, every replica holds exactly the same data, and no
//!   acknowledged write is missing.
//!
//! A failure names its seed; `SEED=<n> cargo test -p tessera-kv --test sim`
//! replays exactly that run. `SIM_SEEDS=<n>` runs more seeds.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use prost::Message as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tessera_common::proto::{
    self, raft_command, KvResponse, RaftCommand, RaftEnvelope, RangeDescriptor, ReplicaType,
};
use tessera_common::{Clock, PhysicalClock, Timestamp};
use tessera_kv::replica::{descriptor_key, Replica, ReplicaContext, ReplicaShared};
use tessera_raft::{Config, MultiRaft, StateRole};
use tessera_storage::{mvcc, Engine, NewestVersionCache, WriteBatch};
use tokio::sync::oneshot;

const NODES: u64 = 3;
const RANGE: u64 = 1;
const STEP_MS: u64 = 5;
const TICK_MS: u64 = 100;
const KEYS: [&[u8]; 3] = [b"k0", b"k1", b"k2"];

/// An engine that loses writes like a machine crash does: synced writes
/// are durable; unsynced ones (applied state, log truncation) survive a
/// crash only as a prefix, in write order, the way a journal does.
/// It keeps a newest-version cache as the real engines do (forgotten on a
/// crash), so the simulation checks reads served from it too.
struct CrashEngine {
    inner: parking_lot::Mutex<CrashState>,
    versions: NewestVersionCache,
}

impl Default for CrashEngine {
    fn default() -> Self {
        Self {
            inner: Default::default(),
            // Small, so that evictions happen too.
            versions: NewestVersionCache::new(64 << 10),
        }
    }
}

#[derive(Default)]
struct CrashState {
    durable: BTreeMap<Vec<u8>, Vec<u8>>,
    unsynced: Vec<WriteBatch>,
    /// `durable` with every unsynced batch applied: what reads see.
    view: BTreeMap<Vec<u8>, Vec<u8>>,
}

fn apply(map: &mut BTreeMap<Vec<u8>, Vec<u8>>, batch: &WriteBatch) {
    for (k, v) in batch.ops() {
        match v {
            Some(v) => map.insert(k.clone(), v.clone()),
            None => map.remove(k),
        };
    }
}

impl CrashEngine {
    /// Simulates a power loss: keeps the first `keep` unsynced batches.
    fn crash(&self, keep: usize) {
        let mut s = self.inner.lock();
        let unsynced = std::mem::take(&mut s.unsynced);
        for b in unsynced.iter().take(keep) {
            apply(&mut s.durable, b);
        }
        s.view = s.durable.clone();
        self.versions.clear();
    }

    fn unsynced(&self) -> usize {
        self.inner.lock().unsynced.len()
    }
}

impl Engine for CrashEngine {
    fn get(&self, key: &[u8]) -> tessera_storage::Result<Option<Vec<u8>>> {
        Ok(self.inner.lock().view.get(key).cloned())
    }
    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        reverse: bool,
    ) -> tessera_storage::Result<tessera_storage::EngineIterator<'_>> {
        if start >= end {
            return Ok(Box::new(std::iter::empty()));
        }
        let s = self.inner.lock();
        let mut items: Vec<_> = s
            .view
            .range::<[u8], _>((
                std::ops::Bound::Included(start),
                std::ops::Bound::Excluded(end),
            ))
            .map(|(k, v)| Ok((k.clone(), v.clone())))
            .collect();
        if reverse {
            items.reverse();
        }
        Ok(Box::new(items.into_iter()))
    }
    fn write(&self, batch: WriteBatch, sync: bool) -> tessera_storage::Result<()> {
        let written = self.versions.begin_batch(batch.version_ops());
        let mut s = self.inner.lock();
        apply(&mut s.view, &batch);
        s.unsynced.push(batch);
        if sync {
            let all = std::mem::take(&mut s.unsynced);
            for b in &all {
                apply(&mut s.durable, b);
            }
        }
        drop(s);
        written.finish(true);
        Ok(())
    }
    fn newest_versions(&self) -> Option<&NewestVersionCache> {
        Some(&self.versions)
    }
    fn sync(&self) -> tessera_storage::Result<()> {
        let mut s = self.inner.lock();
        let all = std::mem::take(&mut s.unsynced);
        for b in &all {
            apply(&mut s.durable, b);
        }
        Ok(())
    }
}

struct SimClock(Arc<AtomicU64>);
impl PhysicalClock for SimClock {
    fn now_millis(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct SimNode {
    engine: Arc<CrashEngine>,
    mr: Option<MultiRaft<Replica>>,
    shared: Arc<ReplicaShared>,
    clock: Clock,
    /// Sim time at which a crashed node comes back.
    down_until: Option<u64>,
    /// Until this sim time the node is frozen (SIGSTOP): it neither ticks,
    /// nor processes, nor serves; messages to it wait.
    paused_until: u64,
}

impl SimNode {
    fn running(&self, now: u64) -> bool {
        self.mr.is_some() && self.paused_until <= now
    }
}

struct Pending {
    key: usize,
    value: u64,
    rx: oneshot::Receiver<KvResponse>,
}

struct Sim {
    seed: u64,
    rng: StdRng,
    now: Arc<AtomicU64>,
    nodes: BTreeMap<u64, SimNode>,
    in_flight: Vec<(u64, u64, u64, RaftEnvelope)>,
    cut: HashSet<(u64, u64)>,
    heal_at: u64,
    leaders: HashMap<u64, u64>,
    next_value: u64,
    pending: Vec<Pending>,
    /// Per key: the highest value whose write was acknowledged.
    acked: [u64; 3],
    reads: u64,
    writes_acked: u64,
    /// Clients still write (off while the cluster settles at the end).
    writing: bool,
}

fn descriptor() -> RangeDescriptor {
    RangeDescriptor {
        range_id: RANGE,
        start_key: tessera_common::keys::KEY_MIN.to_vec(),
        end_key: tessera_common::keys::KEY_MAX.to_vec(),
        replicas: (1..=NODES)
            .map(|n| proto::ReplicaDescriptor {
                node_id: n,
                replica_id: n,
                r#type: ReplicaType::Voter as i32,
            })
            .collect(),
        generation: 1,
        next_replica_id: NODES + 1,
    }
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let now = Arc::new(AtomicU64::new(1_000_000));
        let mut sim = Sim {
            seed,
            rng: StdRng::seed_from_u64(seed),
            now: now.clone(),
            nodes: BTreeMap::new(),
            in_flight: Vec::new(),
            cut: HashSet::new(),
            heal_at: 0,
            leaders: HashMap::new(),
            next_value: 1,
            pending: Vec::new(),
            acked: [0; 3],
            reads: 0,
            writes_acked: 0,
            writing: true,
        };
        for id in 1..=NODES {
            let engine = Arc::new(CrashEngine::default());
            let mut batch = WriteBatch::new();
            batch.put(descriptor_key(RANGE), descriptor().encode_to_vec());
            tessera_raft::GroupStorage::initialized(
                RANGE,
                (1..=NODES).collect(),
                vec![],
                &mut batch,
            );
            engine.write(batch, true).unwrap();
            let clock = Clock::new(
                Arc::new(SimClock(now.clone())),
                std::time::Duration::from_millis(250),
            );
            let shared = ReplicaShared::new(descriptor(), true);
            sim.nodes.insert(
                id,
                SimNode {
                    engine,
                    mr: None,
                    shared,
                    clock,
                    down_until: None,
                    paused_until: 0,
                },
            );
            sim.boot(id);
        }
        sim
    }

    fn now(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    /// (Re)starts node `id` from what its engine holds.
    fn boot(&mut self, id: u64) {
        let now = self.now.clone();
        let node = self.nodes.get_mut(&id).unwrap();
        let shared = ReplicaShared::new(descriptor(), true);
        let registry = Arc::new(RwLock::new(HashMap::new()));
        registry.write().insert(RANGE, shared.clone());
        let ctx = Arc::new(ReplicaContext {
            node_id: id,
            engine: node.engine.clone(),
            clock: node.clock.clone(),
            monotonic: Arc::new(move || now.load(Ordering::SeqCst)),
            lease_duration: std::time::Duration::from_millis(720),
            renew_every_ticks: 2,
            registry,
        });
        let mut cfg = Config::new(id);
        cfg.vote_grace_ticks = 10;
        cfg.log_max_entries = 80;
        cfg.log_keep_entries = 20;
        let mut mr = MultiRaft::new(cfg, node.engine.clone());
        shared.last_used_ms.store(u64::MAX / 2, Ordering::SeqCst);
        mr.load_group(RANGE, Replica::new(shared.clone(), ctx))
            .unwrap();
        node.mr = Some(mr);
        node.shared = shared;
        node.down_until = None;
    }

    fn fail(&self, what: String) -> ! {
        panic!("seed {}: at {} ms: {what}", self.seed, self.now());
    }

    fn step(&mut self, faults: bool) {
        let now = self.now.fetch_add(STEP_MS, Ordering::SeqCst) + STEP_MS;
        // Keep the lease warm: every replica thinks clients are active.
        for n in self.nodes.values() {
            n.shared.last_used_ms.store(now, Ordering::SeqCst);
        }
        // Crashed nodes come back.
        let back: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.down_until.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in back {
            self.boot(id);
        }
        if now >= self.heal_at {
            self.cut.clear();
        }
        if faults && self.rng.random_bool(0.004) {
            self.inject_fault(now);
        }
        if now.is_multiple_of(TICK_MS) {
            for n in self.nodes.values_mut() {
                if n.paused_until > now {
                    continue;
                }
                if let Some(mr) = n.mr.as_mut() {
                    mr.tick();
                }
            }
        }
        self.client_ops(now);
        // Persist, apply, send.
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            let node = self.nodes.get_mut(&id).unwrap();
            if node.paused_until > now {
                continue;
            }
            let Some(mr) = node.mr.as_mut() else {
                continue;
            };
            let out = mr.process_ready().unwrap();
            for (to, envs) in out.messages {
                for env in envs {
                    let delay = self.rng.random_range(1..20);
                    if faults && self.rng.random_bool(0.02) {
                        continue; // dropped
                    }
                    self.in_flight.push((now + delay, id, to, env));
                }
            }
        }
        // Deliver what is due, in random order.
        let mut due = Vec::new();
        let mut later = Vec::new();
        let frozen: HashSet<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.paused_until > now)
            .map(|(id, _)| *id)
            .collect();
        for m in self.in_flight.drain(..) {
            if m.0 <= now && !frozen.contains(&m.2) {
                due.push(m);
            } else {
                later.push(m);
            }
        }
        self.in_flight = later;
        for i in (1..due.len()).rev() {
            let j = self.rng.random_range(0..=i);
            due.swap(i, j);
        }
        for (_, from, to, env) in due {
            if self.cut.contains(&(from, to)) {
                continue;
            }
            if let Some(mr) = self.nodes.get_mut(&to).and_then(|n| n.mr.as_mut()) {
                mr.step(&env).unwrap();
            }
        }
        self.collect_acks();
        self.check(now);
    }

    fn inject_fault(&mut self, now: u64) {
        let victim = self.rng.random_range(1..=NODES);
        let down = self.nodes.values().filter(|n| !n.running(now)).count();
        let roll: f64 = self.rng.random();
        if roll < 0.33 {
            if down > 0 {
                return;
            }
            // Pause (SIGSTOP): time runs on, the node does not.
            self.nodes.get_mut(&victim).unwrap().paused_until =
                now + self.rng.random_range(300..3_000);
        } else if roll < 0.66 {
            if down > 0 {
                return;
            }
            // Crash: the process state is gone, and so is a suffix of the
            // writes that were not synced.
            let n = self.nodes.get_mut(&victim).unwrap();
            n.mr = None;
            let keep = self.rng.random_range(0..=n.engine.unsynced());
            n.engine.crash(keep);
            n.down_until = Some(now + self.rng.random_range(200..2_000));
            self.in_flight.retain(|m| m.2 != victim);
        } else {
            for other in 1..=NODES {
                if other != victim {
                    self.cut.insert((victim, other));
                    self.cut.insert((other, victim));
                }
            }
            self.heal_at = now + self.rng.random_range(300..3_000);
        }
    }

    fn client_ops(&mut self, now: u64) {
        // A write to whoever believes it leads.
        if self.writing && self.rng.random_bool(0.3) {
            let key = self.rng.random_range(0..KEYS.len());
            let value = self.next_value;
            let leader = self
                .nodes
                .iter_mut()
                .filter(|(_, n)| n.running(now) && n.shared.is_leader())
                .map(|(id, _)| *id)
                .next();
            if let Some(id) = leader {
                let n = self.nodes.get_mut(&id).unwrap();
                let cmd = RaftCommand {
                    timestamp: Some(n.clock.now().into()),
                    cmd: Some(raft_command::Cmd::Put(proto::PutRequest {
                        key: KEYS[key].to_vec(),
                        value: value.to_be_bytes().to_vec(),
                    })),
                };
                let mr = n.mr.as_mut().unwrap();
                if let Ok((index, term)) = mr.propose(RANGE, cmd.encode_to_vec()) {
                    let (tx, rx) = oneshot::channel();
                    mr.state_machine_mut(RANGE)
                        .unwrap()
                        .track_proposal(index, term, tx);
                    self.pending.push(Pending { key, value, rx });
                    self.next_value += 1;
                }
            }
        }
        // Reads on every node that holds a valid lease.
        for n in self.nodes.values() {
            if !n.running(now) || !n.shared.has_valid_lease(now) {
                continue;
            }
            for (k, key) in KEYS.iter().enumerate() {
                let v = mvcc::get(n.engine.as_ref(), key, n.clock.now(), None).unwrap();
                let v = v
                    .map(|b| u64::from_be_bytes(b.try_into().unwrap()))
                    .unwrap_or(0);
                self.reads += 1;
                if v < self.acked[k] {
                    let msg = format!(
                        "stale read of {:?}: got {v}, but {} was acknowledged earlier",
                        String::from_utf8_lossy(key),
                        self.acked[k]
                    );
                    self.fail(msg);
                }
            }
        }
    }

    fn collect_acks(&mut self) {
        let mut still = Vec::new();
        for mut p in self.pending.drain(..) {
            match p.rx.try_recv() {
                Ok(resp) if resp.error.is_none() => {
                    self.acked[p.key] = self.acked[p.key].max(p.value);
                    self.writes_acked += 1;
                }
                Ok(_) | Err(oneshot::error::TryRecvError::Closed) => {}
                Err(oneshot::error::TryRecvError::Empty) => still.push(p),
            }
        }
        self.pending = still;
    }

    fn check(&mut self, now: u64) {
        let mut with_lease = Vec::new();
        for (id, n) in &self.nodes {
            let Some(mr) = &n.mr else { continue };
            let st = &mr.statuses()[&RANGE];
            if st.role == StateRole::Leader {
                let prev = *self.leaders.entry(st.term).or_insert(*id);
                if prev != *id {
                    self.fail(format!("two leaders in term {}: {prev} and {id}", st.term));
                }
            }
            // A frozen node cannot act on its lease, but the moment it
            // resumes it could: count it.
            if n.shared.has_valid_lease(now) {
                with_lease.push(*id);
            }
        }
        if with_lease.len() > 1 {
            self.fail(format!("overlapping leases on nodes {with_lease:?}"));
        }
    }

    fn data(&self, id: u64) -> Vec<(Vec<u8>, Vec<u8>)> {
        let n = &self.nodes[&id];
        let [(lo, hi), (ilo, ihi), _] = mvcc::engine_span(b"k", b"l");
        let mut out: Vec<_> = n
            .engine
            .scan(&lo, &hi, false)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        out.extend(
            n.engine
                .scan(&ilo, &ihi, false)
                .unwrap()
                .map(|r| r.unwrap()),
        );
        out
    }
}

fn run(seed: u64) -> (u64, u64) {
    let mut sim = Sim::new(seed);
    // 20 s of faults, then 10 s to heal and settle.
    for _ in 0..(20_000 / STEP_MS) {
        sim.step(true);
    }
    sim.cut.clear();
    for n in sim.nodes.values_mut() {
        n.paused_until = 0;
    }
    let down: Vec<u64> = sim
        .nodes
        .iter()
        .filter(|(_, n)| n.mr.is_none())
        .map(|(id, _)| *id)
        .collect();
    for id in down {
        sim.boot(id);
    }
    for _ in 0..(5_000 / STEP_MS) {
        sim.step(false);
    }
    sim.writing = false;
    for _ in 0..(5_000 / STEP_MS) {
        sim.step(false);
    }
    let reference = sim.data(1);
    for id in 2..=NODES {
        let mine = sim.data(id);
        if mine != reference {
            let st: Vec<String> = sim
                .nodes
                .values()
                .map(|n| format!("{:?}", n.mr.as_ref().map(|m| m.statuses()[&RANGE].clone())))
                .collect();
            let show = |d: &[(Vec<u8>, Vec<u8>)]| -> Vec<String> {
                d.iter()
                    .map(|(k, v)| match mvcc::decode_version_key(k) {
                        Ok((uk, ts)) => format!("{}@{ts}={:?}", String::from_utf8_lossy(&uk), v),
                        Err(_) => format!("intent {k:?}"),
                    })
                    .collect()
            };
            sim.fail(format!(
                "replica on node {id} differs from node 1 after healing:\n node1 {} entries {:?}\n node{id} {} entries {:?}\n status {st:?}",
                reference.len(),
                &show(&reference)[..reference.len().min(6)],
                mine.len(),
                &show(&mine)[..mine.len().min(6)]
            ));
        }
    }
    for (k, key) in KEYS.iter().enumerate() {
        let n = &sim.nodes[&1];
        let v = mvcc::get(n.engine.as_ref(), key, Timestamp::MAX, None)
            .unwrap()
            .map(|b| u64::from_be_bytes(b.try_into().unwrap()))
            .unwrap_or(0);
        if v < sim.acked[k] {
            sim.fail(format!(
                "acknowledged write {} of key {k} lost (found {v})",
                sim.acked[k]
            ));
        }
    }
    (sim.writes_acked, sim.reads)
}

#[test]
fn replicas_leases_and_raft_survive_seeded_faults() {
    let seeds: Vec<u64> = match std::env::var("SEED") {
        Ok(s) => vec![s.parse().expect("SEED is a number")],
        Err(_) => {
            let n: u64 = std::env::var("SIM_SEEDS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(20);
            (0..n).collect()
        }
    };
    let (mut writes, mut reads) = (0, 0);
    for seed in &seeds {
        let (w, r) = run(*seed);
        writes += w;
        reads += r;
    }
    assert!(
        writes > 100 * seeds.len() as u64,
        "too few writes acknowledged: {writes}"
    );
    assert!(
        reads > 100 * seeds.len() as u64,
        "too few lease reads: {reads}"
    );
    eprintln!(
        "{} seeds: {writes} writes acknowledged, {reads} lease reads checked",
        seeds.len()
    );
}
