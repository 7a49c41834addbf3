//! Raft scenarios on a simulated, seeded in-process network: partitions,
//! heals, drops and reordering, with the invariants of consensus checked
//! after every step (one leader per term; applied logs never diverge).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use raft::eraftpb::{ConfChange, ConfChangeType, ConfState};
use raft::StateRole;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tessera_common::proto::RaftEnvelope;
use tessera_storage::{MemoryEngine, WriteBatch};

use crate::{Config, Effect, MultiRaft, StateMachine};

/// A state machine that records every applied payload in order.
#[derive(Default)]
struct Recorder {
    applied: Vec<Vec<u8>>,
    /// Node id -> replica id (incarnation); empty: unknown.
    replica_ids: HashMap<u64, u64>,
    /// The physical clock (0: none).
    clock_ms: u64,
    /// Leadership handovers sent.
    handovers: std::cell::Cell<u32>,
}

impl StateMachine for Recorder {
    fn apply(
        &mut self,
        _: u64,
        _: u64,
        data: &[u8],
        _: &mut WriteBatch,
        _: &mut Vec<Effect<Self>>,
    ) {
        self.applied.push(data.to_vec());
    }
    fn apply_conf_change(
        &mut self,
        _: u64,
        _: &[u8],
        _: &ConfState,
        _: &mut WriteBatch,
        _: &mut Vec<Effect<Self>>,
    ) {
    }
    fn build_snapshot(&self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        for a in &self.applied {
            out.extend_from_slice(&(a.len() as u32).to_be_bytes());
            out.extend_from_slice(a);
        }
        Ok(out)
    }
    fn apply_snapshot(&mut self, mut data: &[u8], _: &mut WriteBatch) -> Result<(), String> {
        self.applied.clear();
        while data.len() >= 4 {
            let n = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
            self.applied.push(data[4..4 + n].to_vec());
            data = &data[4 + n..];
        }
        Ok(())
    }
    fn destroy(&mut self, _: &mut WriteBatch) {
        self.applied.clear();
    }
    fn span(&self) -> (Vec<u8>, Vec<u8>) {
        (vec![], vec![0xff])
    }
    fn replica_id(&self, node_id: u64) -> u64 {
        self.replica_ids.get(&node_id).copied().unwrap_or(0)
    }
    fn on_handover_sent(&self, _max_age_ms: u64) -> u64 {
        self.handovers.set(self.handovers.get() + 1);
        self.clock_ms
    }
    fn physical_now_ms(&self) -> u64 {
        self.clock_ms
    }
}

struct Sim {
    nodes: BTreeMap<u64, MultiRaft<Recorder>>,
    in_flight: Vec<(u64, u64, RaftEnvelope)>,
    /// Pairs (a, b) that cannot talk.
    cut: HashSet<(u64, u64)>,
    drop_rate: f64,
    /// Snapshot messages still to drop (the first ones sent).
    drop_snapshots: usize,
    /// Snapshot messages sent so far.
    snapshots_sent: usize,
    reorder: bool,
    rng: StdRng,
    leaders_by_term: HashMap<u64, u64>,
}

const RANGE: u64 = 1;

impl Sim {
    fn new(n: u64, seed: u64) -> Sim {
        let mut nodes = BTreeMap::new();
        let voters: Vec<u64> = (1..=n).collect();
        for id in 1..=n {
            let mut cfg = Config::new(id);
            cfg.vote_grace_ticks = 0;
            cfg.log_max_entries = 60;
            cfg.log_keep_entries = 10;
            let engine = Arc::new(MemoryEngine::new());
            let mut mr = MultiRaft::new(cfg, engine.clone());
            let mut batch = WriteBatch::new();
            mr.create_group(
                RANGE,
                voters.clone(),
                vec![],
                Recorder::default(),
                &mut batch,
            )
            .unwrap();
            tessera_storage::Engine::write(engine.as_ref(), batch, true).unwrap();
            nodes.insert(id, mr);
        }
        Sim {
            nodes,
            in_flight: Vec::new(),
            cut: HashSet::new(),
            drop_rate: 0.0,
            drop_snapshots: 0,
            snapshots_sent: 0,
            reorder: false,
            rng: StdRng::seed_from_u64(seed),
            leaders_by_term: HashMap::new(),
        }
    }

    fn add_node(&mut self, id: u64) {
        let mut cfg = Config::new(id);
        cfg.vote_grace_ticks = 0;
        let mut mr = MultiRaft::new(cfg, Arc::new(MemoryEngine::new()));
        mr.create_uninitialized(RANGE, Recorder::default()).unwrap();
        self.nodes.insert(id, mr);
    }

    fn isolate(&mut self, id: u64) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for other in ids {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    fn heal(&mut self) {
        self.cut.clear();
    }

    /// Processes readies everywhere, then delivers what is in flight.
    fn step(&mut self) {
        for (id, node) in self.nodes.iter_mut() {
            let out = node.process_ready().unwrap();
            for (to, envs) in out.messages {
                for env in envs {
                    self.in_flight.push((*id, to, env));
                }
            }
        }
        let mut msgs = std::mem::take(&mut self.in_flight);
        if self.reorder {
            for i in (1..msgs.len()).rev() {
                let j = self.rng.random_range(0..=i);
                msgs.swap(i, j);
            }
        }
        for (from, to, env) in msgs {
            if self.cut.contains(&(from, to)) {
                continue;
            }
            if self.drop_rate > 0.0 && self.rng.random_bool(self.drop_rate) {
                continue;
            }
            use protobuf::Message as _;
            let m = raft::eraftpb::Message::parse_from_bytes(&env.message).unwrap();
            if m.get_msg_type() == raft::eraftpb::MessageType::MsgSnapshot {
                self.snapshots_sent += 1;
                if self.drop_snapshots > 0 {
                    self.drop_snapshots -= 1;
                    continue;
                }
            }
            if let Some(node) = self.nodes.get_mut(&to) {
                node.step(&env).unwrap();
            }
        }
        self.check_invariants();
    }

    fn tick(&mut self) {
        for node in self.nodes.values_mut() {
            node.tick();
        }
        self.step();
    }

    fn run(&mut self, ticks: usize) {
        for _ in 0..ticks {
            self.tick();
            for _ in 0..3 {
                self.step();
            }
        }
    }

    /// Runs until a node other than `not` leads, and returns it: raft's
    /// randomized election timeouts (not seeded by the simulation) can
    /// split a vote or two before someone wins.
    fn run_until_leader(&mut self, not: Option<u64>) -> u64 {
        for _ in 0..500 {
            match self.leader() {
                Some(l) if Some(l) != not => return l,
                _ => self.run(1),
            }
        }
        panic!("no new leader in 500 ticks");
    }

    fn leader(&self) -> Option<u64> {
        let mut best: Option<(u64, u64)> = None;
        for (id, n) in &self.nodes {
            let st = &n.statuses()[&RANGE];
            if st.role == StateRole::Leader && best.is_none_or(|(t, _)| st.term > t) {
                best = Some((st.term, *id));
            }
        }
        best.map(|(_, id)| id)
    }

    fn applied(&self, id: u64) -> &Vec<Vec<u8>> {
        &self.nodes[&id].state_machine(RANGE).unwrap().applied
    }

    fn check_invariants(&mut self) {
        for (id, n) in &self.nodes {
            let st = &n.statuses()[&RANGE];
            if st.role == StateRole::Leader {
                let prev = self.leaders_by_term.entry(st.term).or_insert(*id);
                assert_eq!(*prev, *id, "two leaders in term {}", st.term);
            }
        }
        let logs: Vec<&Vec<Vec<u8>>> = self.nodes.keys().map(|id| self.applied(*id)).collect();
        let longest = logs.iter().max_by_key(|l| l.len()).unwrap();
        for l in &logs {
            assert_eq!(&longest[..l.len()], &l[..], "applied logs diverged");
        }
    }

    fn propose(&mut self, data: &[u8]) -> bool {
        match self.leader() {
            Some(l) => self
                .nodes
                .get_mut(&l)
                .unwrap()
                .propose(RANGE, data.to_vec())
                .is_ok(),
            None => false,
        }
    }
}

#[test]
fn three_nodes_elect_one_leader_and_apply_the_same_log() {
    let mut sim = Sim::new(3, 1);
    sim.run(30);
    assert!(sim.leader().is_some(), "no leader after 30 ticks");
    for i in 0..50u32 {
        assert!(sim.propose(&i.to_be_bytes()));
        sim.step();
    }
    sim.run(5);
    for id in 1..=3 {
        assert_eq!(sim.applied(id).len(), 50, "node {id}");
    }
}

#[test]
fn partitioned_leader_is_replaced_and_its_uncommitted_writes_vanish() {
    let mut sim = Sim::new(3, 2);
    sim.run(30);
    let old = sim.run_until_leader(None);
    for i in 0..10u32 {
        sim.propose(&i.to_be_bytes());
    }
    sim.run(3);
    sim.isolate(old);
    // Proposed to the isolated leader: can never commit.
    sim.nodes
        .get_mut(&old)
        .unwrap()
        .propose(RANGE, b"lost".to_vec())
        .unwrap();
    sim.run(40);
    let new = sim.run_until_leader(Some(old));
    assert_ne!(new, old);
    assert!(sim.propose(b"kept"));
    sim.run(5);
    sim.heal();
    sim.run(30);
    for id in 1..=3 {
        let log = sim.applied(id);
        assert!(
            log.contains(&b"kept".to_vec()),
            "node {id} misses a committed entry"
        );
        assert!(
            !log.contains(&b"lost".to_vec()),
            "node {id} applied an uncommitted entry"
        );
        assert_eq!(log.len(), 11);
    }
}

#[test]
fn random_drops_and_reordering_never_break_consensus() {
    for seed in 0..8 {
        let mut sim = Sim::new(3, seed);
        sim.drop_rate = 0.2;
        sim.reorder = true;
        let mut proposed = 0u32;
        for round in 0..300 {
            if round % 3 == 0 && sim.propose(&proposed.to_be_bytes()) {
                proposed += 1;
            }
            if round % 50 == 10 {
                let victim = 1 + (round as u64 / 50) % 3;
                sim.isolate(victim);
            }
            if round % 50 == 30 {
                sim.heal();
            }
            sim.tick();
        }
        sim.heal();
        sim.drop_rate = 0.0;
        sim.run(60);
        let lens: Vec<usize> = (1..=3).map(|id| sim.applied(id).len()).collect();
        assert!(lens.iter().all(|l| *l == lens[0]), "seed {seed}: {lens:?}");
        assert!(lens[0] > 0, "seed {seed}: nothing committed");
    }
}

#[test]
fn lagging_follower_catches_up_from_a_snapshot_after_truncation() {
    let mut sim = Sim::new(3, 4);
    sim.run(30);
    let leader = sim.run_until_leader(None);
    let lagger = (1..=3).find(|id| *id != leader).unwrap();
    sim.isolate(lagger);
    for i in 0..200u32 {
        sim.propose(&i.to_be_bytes());
        sim.step();
    }
    // The leader keeps the log for a follower it heard from recently; it
    // forgets that at its next check-quorum round, one election timeout
    // later at most, and only then cuts below the lagger.
    sim.run(1);
    let st = &sim.nodes[&leader].statuses()[&RANGE];
    assert!(st.applied >= 200, "proposals were not applied: {st:?}");
    sim.run(Config::new(leader).election_tick + 2);
    let st = &sim.nodes[&leader].statuses()[&RANGE];
    assert!(st.first_index > 100, "log was not truncated: {st:?}");
    sim.heal();
    sim.run(30);
    assert_eq!(sim.applied(lagger).len(), 200);
    assert_eq!(sim.applied(lagger), sim.applied(leader));
}

#[test]
fn new_member_joins_as_learner_gets_a_snapshot_and_is_promoted() {
    let mut sim = Sim::new(3, 5);
    sim.run(30);
    for i in 0..20u32 {
        sim.propose(&i.to_be_bytes());
    }
    sim.run(5);
    sim.add_node(4);
    let leader = sim.run_until_leader(None);
    let mut cc = ConfChange::default();
    cc.set_change_type(ConfChangeType::AddLearnerNode);
    cc.node_id = 4;
    sim.nodes
        .get_mut(&leader)
        .unwrap()
        .propose_conf_change(RANGE, vec![], cc)
        .unwrap();
    sim.run(20);
    assert_eq!(sim.applied(4).len(), 20, "learner did not catch up");
    let mut cc = ConfChange::default();
    cc.set_change_type(ConfChangeType::AddNode);
    cc.node_id = 4;
    sim.nodes
        .get_mut(&leader)
        .unwrap()
        .propose_conf_change(RANGE, vec![], cc)
        .unwrap();
    sim.run(10);
    let voters = sim.nodes[&leader].statuses();
    assert_eq!(
        voters[&RANGE].applied,
        sim.nodes[&4].statuses()[&RANGE].applied
    );
    // With 4 voters, two nodes down stops progress; one down does not.
    sim.isolate(if leader == 1 { 2 } else { 1 });
    assert!(sim.propose(b"after"));
    sim.run(10);
    assert_eq!(sim.applied(4).last().unwrap(), b"after");
}

#[test]
fn idle_group_quiesces_and_wakes_on_a_proposal() {
    let mut sim = Sim::new(3, 6);
    sim.run(30);
    sim.propose(b"x");
    sim.run(20);
    for id in 1..=3 {
        assert!(sim.nodes[&id].is_quiesced(RANGE), "node {id} still ticking");
    }
    // Quiesced: ticks produce no traffic at all.
    for node in sim.nodes.values_mut() {
        node.tick();
        assert!(node.process_ready().unwrap().is_empty());
    }
    assert!(sim.propose(b"y"));
    sim.run(3);
    for id in 1..=3 {
        assert_eq!(sim.applied(id).last().unwrap(), b"y");
    }
}

#[test]
fn quiesced_followers_wake_when_the_leader_node_dies() {
    let mut sim = Sim::new(3, 7);
    sim.run(30);
    sim.propose(b"x");
    sim.run(20);
    let old = sim.run_until_leader(None);
    assert!(sim.nodes[&old].is_quiesced(RANGE));
    sim.isolate(old);
    for (id, node) in sim.nodes.iter_mut() {
        if *id != old {
            node.set_liveness(move |n| n != old);
        }
    }
    sim.run(40);
    let new = sim.run_until_leader(Some(old));
    assert_ne!(new, old);
}

#[test]
fn a_lost_snapshot_is_sent_again() {
    let mut sim = Sim::new(3, 8);
    sim.run(30);
    let leader = sim.run_until_leader(None);
    let lagger = (1..=3).find(|id| *id != leader).unwrap();
    sim.isolate(lagger);
    for i in 0..200u32 {
        sim.propose(&i.to_be_bytes());
        sim.step();
    }
    sim.run(5);
    sim.drop_snapshots = 1;
    sim.heal();
    sim.run(100);
    assert_eq!(sim.drop_snapshots, 0, "no snapshot was sent");
    assert_eq!(sim.applied(lagger), sim.applied(leader));
}

#[test]
fn an_active_follower_a_little_behind_catches_up_from_the_log() {
    let mut sim = Sim::new(3, 5);
    sim.run(30);
    let leader = sim.run_until_leader(None);
    let lagger = (1..=3).find(|id| *id != leader).unwrap();
    let snapshots = sim.snapshots_sent;
    let had = sim.nodes[&lagger].statuses()[&RANGE].last_index;
    // Behind by 200 entries (the log limit is 60), but not for long
    // enough to count as inactive (no tick passes).
    sim.isolate(lagger);
    for i in 0..200u32 {
        sim.propose(&i.to_be_bytes());
        sim.step();
    }
    let st = &sim.nodes[&leader].statuses()[&RANGE];
    assert!(
        st.first_index <= had + 1,
        "the leader kept the entries after {had}: {st:?}"
    );
    sim.heal();
    sim.run(30);
    assert_eq!(sim.applied(lagger), sim.applied(leader));
    assert_eq!(
        sim.snapshots_sent, snapshots,
        "caught up without a snapshot"
    );
    // Once it caught up, the log is cut again.
    for i in 0..100u32 {
        sim.propose(&(1000 + i).to_be_bytes());
        sim.step();
    }
    sim.run(3);
    let st = &sim.nodes[&leader].statuses()[&RANGE];
    assert!(st.first_index > 200, "log was not truncated: {st:?}");
}

#[test]
fn a_follower_lagging_twice_gets_a_fresh_snapshot_each_time() {
    let mut sim = Sim::new(3, 9);
    sim.run(30);
    let leader = sim.run_until_leader(None);
    let lagger = (1..=3).find(|id| *id != leader).unwrap();
    for round in 0..2u32 {
        sim.isolate(lagger);
        for i in 0..200u32 {
            sim.propose(&(round * 1000 + i).to_be_bytes());
            sim.step();
        }
        sim.run(5);
        sim.heal();
        sim.run(40);
        assert_eq!(sim.applied(lagger), sim.applied(leader), "round {round}");
    }
}

/// Counts writes and how many asked for an fsync.
#[derive(Default)]
struct CountingEngine {
    inner: MemoryEngine,
    synced: std::sync::atomic::AtomicUsize,
}

impl tessera_storage::Engine for CountingEngine {
    fn get(&self, key: &[u8]) -> tessera_storage::Result<Option<Vec<u8>>> {
        self.inner.get(key)
    }
    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        reverse: bool,
    ) -> tessera_storage::Result<tessera_storage::EngineIterator<'_>> {
        self.inner.scan(start, end, reverse)
    }
    fn write(&self, batch: WriteBatch, sync: bool) -> tessera_storage::Result<()> {
        if sync {
            self.synced
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        self.inner.write(batch, sync)
    }
    fn sync(&self) -> tessera_storage::Result<()> {
        self.synced
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn one_fsync_persists_the_new_entries_of_every_group() {
    let engine = Arc::new(CountingEngine::default());
    let mut mr = MultiRaft::new(Config::new(1), engine.clone());
    let mut batch = WriteBatch::new();
    for range in 1..=10 {
        mr.create_group(range, vec![1], vec![], Recorder::default(), &mut batch)
            .unwrap();
    }
    tessera_storage::Engine::write(engine.as_ref(), batch, true).unwrap();
    for range in 1..=10 {
        mr.with_group(range, |ctl, _| ctl.campaign());
    }
    mr.process_ready().unwrap();
    mr.process_ready().unwrap();
    for range in 1..=10 {
        mr.propose(range, b"x".to_vec()).unwrap();
    }
    let before = engine.synced.load(std::sync::atomic::Ordering::SeqCst);
    mr.process_ready().unwrap();
    let fsyncs = engine.synced.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert_eq!(fsyncs, 1, "10 groups' appends should share one fsync");
    mr.process_ready().unwrap();
    for range in 1..=10 {
        assert_eq!(
            mr.state_machine(range).unwrap().applied,
            vec![b"x".to_vec()]
        );
    }
}

/// Incarnations: a message to an earlier replica of this node, or from an
/// earlier replica of its sender, is dropped; one addressed to a later
/// replica of this node destroys this one, and the empty replica created
/// in its place keeps its term and vote (a peer votes once per term).
#[test]
fn messages_of_other_incarnations_are_dropped_or_replace_the_replica() {
    use protobuf::Message as _;
    use raft::eraftpb::{Message, MessageType};
    let mut cfg = Config::new(1);
    cfg.vote_grace_ticks = 0;
    let engine = Arc::new(MemoryEngine::new());
    let mut mr = MultiRaft::new(cfg, engine.clone());
    let mut batch = WriteBatch::new();
    // This node's replica is incarnation 4; node 2's is 2.
    let sm = Recorder {
        replica_ids: HashMap::from([(1, 4), (2, 2), (3, 3)]),
        ..Default::default()
    };
    mr.create_group(RANGE, vec![1, 2, 3], vec![], sm, &mut batch)
        .unwrap();
    tessera_storage::Engine::write(engine.as_ref(), batch, true).unwrap();
    let vote_request = |from: u64, term: u64| {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgRequestVote);
        m.from = from;
        m.to = 1;
        m.term = term;
        m.index = 1000;
        m.log_term = term;
        m
    };
    let env = |m: &Message, from_replica: u64, to_replica: u64| RaftEnvelope {
        range_id: RANGE,
        message: m.write_to_bytes().unwrap(),
        from_replica,
        to_replica,
        ..Default::default()
    };
    let term = |mr: &mut MultiRaft<Recorder>| mr.with_group(RANGE, |ctl, _| ctl.term()).unwrap();
    let granted = |mr: &mut MultiRaft<Recorder>, to: u64| {
        let out = mr.process_ready().unwrap();
        let answers: Vec<bool> = out
            .messages
            .get(&to)
            .into_iter()
            .flatten()
            .filter_map(|e| Message::parse_from_bytes(&e.message).ok())
            .filter(|m| m.get_msg_type() == MessageType::MsgRequestVoteResponse)
            .map(|m| !m.reject)
            .collect();
        answers
    };
    let start = term(&mut mr);

    // To an earlier incarnation of node 1: dropped.
    assert!(mr.step(&env(&vote_request(2, start + 5), 2, 3)).unwrap());
    assert_eq!(
        term(&mut mr),
        start,
        "a message to replica 3 reached replica 4"
    );
    // From an earlier incarnation of node 2: dropped.
    assert!(mr.step(&env(&vote_request(2, start + 5), 1, 4)).unwrap());
    assert_eq!(
        term(&mut mr),
        start,
        "a message from replica 1 of node 2 was stepped"
    );
    // The current incarnations: node 1 votes for node 2.
    assert!(mr.step(&env(&vote_request(2, start + 5), 2, 4)).unwrap());
    assert_eq!(term(&mut mr), start + 5);
    assert_eq!(granted(&mut mr, 2), vec![true]);

    // Addressed to incarnation 6 of node 1: replica 4 is obsolete.
    assert!(!mr.step(&env(&vote_request(3, start + 5), 3, 6)).unwrap());
    assert!(!mr.has_group(RANGE), "the obsolete replica is gone");
    let fresh = Recorder {
        replica_ids: HashMap::from([(1, 6)]),
        ..Default::default()
    };
    mr.create_uninitialized(RANGE, fresh).unwrap();
    assert_eq!(term(&mut mr), start + 5, "the term is kept");
    // Its vote in that term went to node 2: node 3 does not get it.
    assert!(mr.step(&env(&vote_request(3, start + 5), 0, 6)).unwrap());
    assert_eq!(
        granted(&mut mr, 3),
        vec![false],
        "a second vote in one term"
    );
}

/// A leadership handover (MsgTimeoutNow), and the vote requests of the
/// campaign it starts, override a follower's promise to its leader: one
/// held by the network and delivered late could depose a leader that holds
/// a lease again. They carry their send time; older than
/// `handover_max_age_ms` (or unstamped), they are ignored.
#[test]
fn late_handovers_and_their_votes_are_ignored() {
    use protobuf::Message as _;
    use raft::eraftpb::{Message, MessageType};
    const NOW: u64 = 1_800_000_000_000;
    let mut cfg = Config::new(1);
    cfg.vote_grace_ticks = 0;
    let max_age = cfg.handover_max_age_ms;
    let engine = Arc::new(MemoryEngine::new());
    let mut mr = MultiRaft::new(cfg, engine.clone());
    let mut batch = WriteBatch::new();
    let sm = Recorder {
        clock_ms: NOW,
        ..Default::default()
    };
    mr.create_group(RANGE, vec![1, 2, 3], vec![], sm, &mut batch)
        .unwrap();
    tessera_storage::Engine::write(engine.as_ref(), batch, true).unwrap();
    let term = |mr: &mut MultiRaft<Recorder>| mr.with_group(RANGE, |ctl, _| ctl.term()).unwrap();
    let env = |m: &Message, sent_at_ms: u64| RaftEnvelope {
        range_id: RANGE,
        message: m.write_to_bytes().unwrap(),
        sent_at_ms,
        ..Default::default()
    };
    let t = term(&mut mr);
    let mut handover = Message::default();
    handover.set_msg_type(MessageType::MsgTimeoutNow);
    handover.from = 2;
    handover.to = 1;
    handover.term = t;

    // Too old, or without a send time: no campaign.
    for sent_at in [NOW - max_age - 1, 0] {
        assert!(mr.step(&env(&handover, sent_at)).unwrap());
        assert_eq!(
            term(&mut mr),
            t,
            "a handover sent at {sent_at} started a campaign"
        );
    }
    // Fresh: node 1 campaigns at once, in the next term.
    assert!(mr.step(&env(&handover, NOW - max_age + 1)).unwrap());
    assert_eq!(term(&mut mr), t + 1);
    let out = mr.process_ready().unwrap();
    let votes: Vec<RaftEnvelope> = out
        .messages
        .get(&2)
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let vote = votes
        .iter()
        .find(|e| {
            Message::parse_from_bytes(&e.message)
                .is_ok_and(|m| m.get_msg_type() == MessageType::MsgRequestVote)
        })
        .expect("a vote request to node 2");
    assert_eq!(
        vote.sent_at_ms, NOW,
        "the campaign's vote requests carry their send time"
    );

    // A forced vote request (a handover's campaign) from node 3, later term.
    let mut forced = Message::default();
    forced.set_msg_type(MessageType::MsgRequestVote);
    forced.from = 3;
    forced.to = 1;
    forced.term = t + 5;
    forced.index = 1000;
    forced.log_term = t + 5;
    forced.context = raft::CAMPAIGN_TRANSFER.to_vec().into();
    assert!(mr.step(&env(&forced, NOW - max_age - 1)).unwrap());
    assert_eq!(
        term(&mut mr),
        t + 1,
        "a late forced vote request was stepped"
    );
    assert!(mr.step(&env(&forced, NOW)).unwrap());
    assert_eq!(term(&mut mr), t + 5);
}

/// A leader that hands its leadership over stamps the handover with its
/// clock and is told (`on_handover_sent`, where the range store drops its
/// lease for as long as the handover could still be acted on); a fresh
/// handover goes through.
#[test]
fn a_handover_is_stamped_and_reported_by_its_sender() {
    use protobuf::Message as _;
    use raft::eraftpb::{Message, MessageType};
    const NOW: u64 = 1_800_000_000_000;
    let mut sim = Sim::new(3, 7);
    for node in sim.nodes.values_mut() {
        node.state_machine_mut(RANGE).unwrap().clock_ms = NOW;
    }
    let old = sim.run_until_leader(None);
    let target = if old == 1 { 2 } else { 1 };
    sim.run(5);
    sim.nodes
        .get_mut(&old)
        .unwrap()
        .with_group(RANGE, |ctl, _| ctl.transfer_leader(target))
        .unwrap();
    let out = sim.nodes.get_mut(&old).unwrap().process_ready().unwrap();
    let handover = out
        .messages
        .get(&target)
        .into_iter()
        .flatten()
        .find(|e| {
            Message::parse_from_bytes(&e.message)
                .is_ok_and(|m| m.get_msg_type() == MessageType::MsgTimeoutNow)
        })
        .expect("a handover to the target")
        .clone();
    assert_eq!(handover.sent_at_ms, NOW);
    assert_eq!(
        sim.nodes[&old]
            .state_machine(RANGE)
            .unwrap()
            .handovers
            .get(),
        1,
        "the sender was not told of its handover"
    );
    sim.nodes.get_mut(&target).unwrap().step(&handover).unwrap();
    assert_eq!(sim.run_until_leader(Some(old)), target);
}
