//! The multi-raft driver: every raft group of one node, stepped, ticked and
//! persisted together.
//!
//! One call to [`MultiRaft::process_ready`] is one iteration of the node's
//! raft loop:
//!
//! ```text
//! for every group with a Ready:          (phase 1: persist)
//!     queue leader messages (safe to send before the local append)
//!     install a received snapshot
//!     append entries + hard state  ──┐
//! send the leader messages           │
//! apply entries committed and durable before this Ready, answer clients
//! engine.write(batch, sync = true)  <─┘  one fsync for all groups
//! for every group:                       (phase 2: apply)
//!     queue messages that needed the append to be durable
//!     advance; apply committed entries into one apply batch
//! engine.write(apply batch)              applied index travels with the effects
//! state machines acknowledge clients; snapshots are built if raft asked;
//! logs are truncated
//! ```
//!
//! Outgoing messages are grouped per destination node and returned in
//! [`ReadyOutput`]; the caller sends each batch as one RPC.
//!
//! A raft peer id is the node id: a range has at most one replica per node.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use protobuf::Message as _;
use raft::eraftpb::{
    ConfChange, ConfChangeV2, ConfState, EntryType, Message, MessageType, Snapshot,
};
use raft::{RawNode, StateRole};
use raft_proto::ConfChangeI;
use tessera_common::proto::RaftEnvelope;
use tessera_storage::{Engine, WriteBatch};

use crate::log_store::GroupStorage;

/// Tuning of the driver. Times are in ticks; the caller decides how long a
/// tick is (100 ms in a server).
#[derive(Clone, Debug)]
pub struct Config {
    pub node_id: u64,
    pub election_tick: usize,
    pub heartbeat_tick: usize,
    pub max_size_per_msg: u64,
    pub max_inflight_msgs: usize,
    /// Truncate a group's log once it holds more than this many entries...
    pub log_max_entries: u64,
    /// ...keeping this many applied entries for followers that lag a little.
    pub log_keep_entries: u64,
    /// A leader keeps the entries an active follower has yet to receive,
    /// unless they hold more than this many bytes (then the follower gets a
    /// snapshot instead).
    pub log_max_lag_bytes: u64,
    /// Idle ticks after which a leader quiesces its group.
    pub quiesce_after_ticks: u64,
    /// Vote requests are ignored for this many ticks after start: a node
    /// that restarts must not help elect a new leader while an old leader
    /// may still hold a lease it promised to respect before the restart.
    pub vote_grace_ticks: u64,
    /// A snapshot not acknowledged within this many ticks is assumed lost
    /// (the transport drops messages to unreachable nodes) and is resent.
    pub snapshot_timeout_ticks: u64,
    /// A leadership handover (MsgTimeoutNow) received more than this many
    /// milliseconds after it was sent (by the two nodes' physical clocks)
    /// is ignored; see `RaftEnvelope.sent_at_ms`.
    pub handover_max_age_ms: u64,
}

impl Config {
    pub fn new(node_id: u64) -> Self {
        Config {
            node_id,
            election_tick: 10,
            heartbeat_tick: 2,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            log_max_entries: 400,
            log_keep_entries: 100,
            log_max_lag_bytes: 64 << 20,
            quiesce_after_ticks: 6,
            vote_grace_ticks: 10,
            snapshot_timeout_ticks: 50,
            handover_max_age_ms: 500,
        }
    }
}

/// What a group's state machine asks the driver to do after an apply.
pub enum Effect<S> {
    /// Start a new group on this node (a split created it), already
    /// initialized with these members. `campaign`: elect this replica at once
    /// (the split's left-hand side was led from here).
    CreateGroup {
        range_id: u64,
        voters: Vec<u64>,
        learners: Vec<u64>,
        state_machine: S,
        campaign: bool,
    },
    /// This replica was removed from its group: drop it and its raft state.
    Destroy,
}

/// The replicated state machine of one group (in Tessera: a range replica).
pub trait StateMachine: Send + Sized + 'static {
    /// Applies one committed normal entry with a non-empty payload. All
    /// engine writes go into `batch`. Errors that every replica would hit
    /// must be handled here (they are part of the result); only a local
    /// failure may panic.
    fn apply(
        &mut self,
        index: u64,
        term: u64,
        data: &[u8],
        batch: &mut WriteBatch,
        effects: &mut Vec<Effect<Self>>,
    );

    /// Applies a committed membership change. `context` is what the
    /// proposer attached (in Tessera: the new range descriptor).
    fn apply_conf_change(
        &mut self,
        index: u64,
        context: &[u8],
        conf_state: &ConfState,
        batch: &mut WriteBatch,
        effects: &mut Vec<Effect<Self>>,
    );

    /// Called once every write of this round's applies is in the engine:
    /// the moment to answer waiting clients.
    fn on_applied(&mut self, _applied_index: u64) {}

    /// The state machine's content at the current applied index.
    fn build_snapshot(&self) -> Result<Vec<u8>, String>;

    /// Replaces the state machine's content with a snapshot.
    fn apply_snapshot(&mut self, data: &[u8], batch: &mut WriteBatch) -> Result<(), String>;

    /// Clears the state machine's content (the replica was removed).
    fn destroy(&mut self, batch: &mut WriteBatch);

    /// The key span the group covers; sent along with its messages.
    fn span(&self) -> (Vec<u8>, Vec<u8>);

    /// The generation of the group's configuration (see `RaftEnvelope`);
    /// sent along with its messages.
    fn generation(&self) -> u64 {
        0
    }

    /// The incarnation of `node_id`'s replica in the group's configuration
    /// as this replica knows it (0: unknown; see `RaftEnvelope`). A node's
    /// replica that is removed and added back is a new incarnation with a
    /// higher id, so that nothing of the old one (its log, its
    /// acknowledgements) counts for the new one.
    fn replica_id(&self, _node_id: u64) -> u64 {
        0
    }

    /// This replica, as leader, is handing its leadership over (sending
    /// raft's MsgTimeoutNow, which makes the recipient campaign past its
    /// promise to this leader). Returns the physical clock reading (ms
    /// since the epoch) the message carries; the recipient ignores it once
    /// older than `max_age_ms` (`Config::handover_max_age_ms`), and the
    /// vote requests of the campaign it starts once as old again. Until
    /// then they may still depose this leader, so this replica must hold no
    /// lease for twice that age plus the clocks' max offset. 0: no clock
    /// (the message is then never considered too old).
    fn on_handover_sent(&self, _max_age_ms: u64) -> u64 {
        0
    }

    /// The node's physical clock, ms since the epoch, as stamped by
    /// [`StateMachine::on_handover_sent`] (0: no clock).
    fn physical_now_ms(&self) -> u64 {
        0
    }

    /// A read index request issued with `ctx` completed at `index`: a quorum
    /// confirmed this node was leader when the request was made.
    fn on_read_index(&mut self, _ctx: &[u8], _index: u64) {}

    /// Role, term or leader changed.
    fn on_state_change(&mut self, _role: StateRole, _term: u64, _leader: u64) {}

    /// Called on every tick of an active group.
    fn on_tick(&mut self, _ctl: &mut GroupControl<'_>) {}

    /// Whether the group may quiesce now (the driver checks raft's side).
    fn can_quiesce(&self) -> bool {
        true
    }
}

/// Why a proposal was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposeError {
    UnknownGroup,
    /// Not the leader; `leader` is the current leader if known (0 if not).
    NotLeader {
        leader: u64,
    },
    /// Raft dropped it (leadership transfer in progress, or too much
    /// uncommitted data).
    Dropped,
}

/// Access to one group's raft node from a state machine hook.
pub struct GroupControl<'a> {
    node: &'a mut RawNode<GroupStorage>,
    woke: &'a mut bool,
}

impl GroupControl<'_> {
    pub fn role(&self) -> StateRole {
        self.node.raft.state
    }
    pub fn term(&self) -> u64 {
        self.node.raft.term
    }
    pub fn leader(&self) -> u64 {
        self.node.raft.leader_id
    }
    pub fn applied(&self) -> u64 {
        self.node.raft.raft_log.applied
    }
    pub fn committed(&self) -> u64 {
        self.node.raft.raft_log.committed
    }
    pub fn last_index(&self) -> u64 {
        self.node.raft.raft_log.last_index()
    }
    pub fn transferring_leadership(&self) -> bool {
        self.node.raft.lead_transferee.is_some()
    }
    /// Replication progress of every peer: (node id, matched index).
    pub fn progress(&self) -> Vec<(u64, u64)> {
        self.node
            .raft
            .prs()
            .iter()
            .map(|(id, pr)| (*id, pr.matched))
            .collect()
    }
    /// Human-readable replication state of every peer (for logs).
    pub fn describe_progress(&self) -> String {
        let r = &self.node.raft;
        let mut out = format!(
            "term={} last={} commit={} applied={} transferee={:?}",
            r.term,
            r.raft_log.last_index(),
            r.raft_log.committed,
            r.raft_log.applied,
            r.lead_transferee
        );
        for (id, pr) in r.prs().iter() {
            out.push_str(&format!(
                " [{id}: {:?} matched={} next={} paused={} pending_snap={} recent={}]",
                pr.state,
                pr.matched,
                pr.next_idx,
                pr.is_paused(),
                pr.pending_snapshot,
                pr.recent_active
            ));
        }
        out
    }

    /// Asks a quorum to confirm leadership; the answer arrives through
    /// [`StateMachine::on_read_index`].
    pub fn read_index(&mut self, ctx: Vec<u8>) {
        *self.woke = true;
        self.node.read_index(ctx);
    }
    pub fn transfer_leader(&mut self, to: u64) {
        *self.woke = true;
        self.node.transfer_leader(to);
    }
    pub fn campaign(&mut self) {
        *self.woke = true;
        let _ = self.node.campaign();
    }
}

struct Group<S> {
    node: RawNode<GroupStorage>,
    sm: S,
    quiesced: bool,
    idle_ticks: u64,
    /// Ticks each peer has spent waiting for a snapshot (leader only).
    snapshot_wait: HashMap<u64, u64>,
}

impl<S: StateMachine> Group<S> {
    fn control<'a>(&'a mut self, woke: &'a mut bool) -> (GroupControl<'a>, &'a mut S) {
        (
            GroupControl {
                node: &mut self.node,
                woke,
            },
            &mut self.sm,
        )
    }

    fn wake(&mut self) {
        self.quiesced = false;
        self.idle_ticks = 0;
    }

    /// Writes the removal of the group's data and raft state into `batch`.
    fn destroy(&mut self, batch: &mut WriteBatch) {
        self.sm.destroy(batch);
        self.node.store().destroy(batch);
    }

    /// Whether an idle leader can stop ticking: everything proposed is
    /// committed, applied and replicated to every peer.
    fn leader_can_quiesce(&self, after_ticks: u64) -> bool {
        let r = &self.node.raft;
        if r.state != StateRole::Leader
            || self.idle_ticks < after_ticks
            || r.lead_transferee.is_some()
            || self.node.has_ready()
            || !self.sm.can_quiesce()
        {
            return false;
        }
        let last = r.raft_log.last_index();
        if r.raft_log.committed != last || r.raft_log.applied != last || r.pending_conf_index > last
        {
            return false;
        }
        r.prs().iter().all(|(_, pr)| pr.matched == last)
    }
}

/// Messages to send after an iteration: one batch per destination node.
#[derive(Default, Debug)]
pub struct ReadyOutput {
    pub messages: BTreeMap<u64, Vec<RaftEnvelope>>,
}

impl ReadyOutput {
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

type Liveness = Box<dyn Fn(u64) -> bool + Send>;

/// Every raft group of one node.
pub struct MultiRaft<S: StateMachine> {
    cfg: Config,
    engine: Arc<dyn Engine>,
    groups: BTreeMap<u64, Group<S>>,
    logger: slog::Logger,
    outbox: BTreeMap<u64, Vec<RaftEnvelope>>,
    ticks: u64,
    liveness: Liveness,
    /// Term and vote of replicas destroyed because a later incarnation of
    /// them exists, for that incarnation's empty replica.
    superseded: HashMap<u64, (u64, u64)>,
}

impl<S: StateMachine> MultiRaft<S> {
    pub fn new(cfg: Config, engine: Arc<dyn Engine>) -> Self {
        MultiRaft {
            cfg,
            engine,
            groups: BTreeMap::new(),
            logger: crate::logger::tracing_logger(),
            outbox: BTreeMap::new(),
            ticks: 0,
            liveness: Box::new(|_| true),
            superseded: HashMap::new(),
        }
    }

    /// Installs the node liveness oracle: a quiesced follower whose leader's
    /// node is not live wakes up and elects a new leader.
    pub fn set_liveness(&mut self, f: impl Fn(u64) -> bool + Send + 'static) {
        self.liveness = Box::new(f);
    }

    pub fn node_id(&self) -> u64 {
        self.cfg.node_id
    }

    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    fn raft_config(&self, applied: u64) -> raft::Config {
        raft::Config {
            id: self.cfg.node_id,
            election_tick: self.cfg.election_tick,
            heartbeat_tick: self.cfg.heartbeat_tick,
            applied,
            max_size_per_msg: self.cfg.max_size_per_msg,
            max_inflight_msgs: self.cfg.max_inflight_msgs,
            check_quorum: true,
            pre_vote: true,
            read_only_option: raft::ReadOnlyOption::Safe,
            max_uncommitted_size: 64 << 20,
            max_committed_size_per_ready: 16 << 20,
            ..Default::default()
        }
    }

    fn insert(&mut self, range_id: u64, storage: GroupStorage, sm: S) -> Result<(), String> {
        let cfg = self.raft_config(storage.applied());
        let node = RawNode::new(&cfg, storage, &self.logger)
            .map_err(|e| format!("range {range_id}: cannot start raft: {e}"))?;
        self.groups.insert(
            range_id,
            Group {
                node,
                sm,
                quiesced: false,
                idle_ticks: 0,
                snapshot_wait: HashMap::new(),
            },
        );
        Ok(())
    }

    /// Restarts a group from its persisted raft state.
    pub fn load_group(&mut self, range_id: u64, sm: S) -> Result<(), String> {
        let storage = GroupStorage::load(self.engine.as_ref(), range_id)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("range {range_id}: no raft state on this node"))?;
        self.insert(range_id, storage, sm)
    }

    /// Creates a brand-new group (bootstrap) with the given members and
    /// persists its initial raft state.
    pub fn create_group(
        &mut self,
        range_id: u64,
        voters: Vec<u64>,
        learners: Vec<u64>,
        sm: S,
        batch: &mut WriteBatch,
    ) -> Result<(), String> {
        let storage = GroupStorage::initialized(range_id, voters, learners, batch);
        self.insert(range_id, storage, sm)
    }

    /// Creates an empty replica that waits for a snapshot from its leader.
    pub fn create_uninitialized(&mut self, range_id: u64, sm: S) -> Result<(), String> {
        let storage = match self.superseded.remove(&range_id) {
            Some((term, vote)) => GroupStorage::uninitialized_after(range_id, term, vote),
            None => GroupStorage::uninitialized(range_id),
        };
        self.insert(range_id, storage, sm)
    }

    pub fn has_group(&self, range_id: u64) -> bool {
        self.groups.contains_key(&range_id)
    }

    pub fn group_ids(&self) -> Vec<u64> {
        self.groups.keys().copied().collect()
    }

    /// Whether some local group's span overlaps `[start, end)`.
    pub fn overlaps(&self, start: &[u8], end: &[u8]) -> bool {
        self.groups.values().any(|g| {
            let (s, e) = g.sm.span();
            s.as_slice() < end && start < e.as_slice()
        })
    }

    pub fn state_machine(&self, range_id: u64) -> Option<&S> {
        self.groups.get(&range_id).map(|g| &g.sm)
    }

    pub fn state_machine_mut(&mut self, range_id: u64) -> Option<&mut S> {
        self.groups.get_mut(&range_id).map(|g| &mut g.sm)
    }

    /// Runs `f` with control over a group (waking it if `f` acts on raft).
    pub fn with_group<R>(
        &mut self,
        range_id: u64,
        f: impl FnOnce(&mut GroupControl<'_>, &mut S) -> R,
    ) -> Option<R> {
        let g = self.groups.get_mut(&range_id)?;
        let mut woke = false;
        let r = {
            let (mut ctl, sm) = g.control(&mut woke);
            f(&mut ctl, sm)
        };
        if woke {
            g.wake();
        }
        Some(r)
    }

    /// Whether the group is quiesced (not ticking).
    pub fn is_quiesced(&self, range_id: u64) -> bool {
        self.groups.get(&range_id).is_some_and(|g| g.quiesced)
    }

    /// Delivers a message from another node. Returns false if there is no
    /// such group here (the caller may create one and deliver again).
    pub fn step(&mut self, env: &RaftEnvelope) -> Result<bool, String> {
        let Some(g) = self.groups.get_mut(&env.range_id) else {
            return Ok(false);
        };
        let msg = Message::parse_from_bytes(&env.message)
            .map_err(|e| format!("range {}: bad raft message: {e}", env.range_id))?;
        // Incarnations: a message meant for an earlier replica of this node,
        // or sent by an earlier replica of its node, is stale; one meant
        // for a later replica of this node means this one was removed (and
        // may never have applied it): it must not answer in the new one's
        // name, so it is destroyed and the caller creates the new one.
        let me = g.sm.replica_id(self.cfg.node_id);
        if env.to_replica != 0 && me != 0 && env.to_replica != me {
            if env.to_replica < me {
                return Ok(true);
            }
            tracing::info!(
                "range {}: replica {me} superseded by replica {} on this node",
                env.range_id,
                env.to_replica
            );
            self.destroy_group(env.range_id)
                .map_err(|e| format!("range {}: cannot destroy replica: {e}", env.range_id))?;
            return Ok(false);
        }
        let sender = g.sm.replica_id(msg.from);
        if env.from_replica != 0 && sender != 0 && env.from_replica < sender {
            return Ok(true);
        }
        let ty = msg.get_msg_type();
        // A handover, and the votes of the campaign it starts, override
        // the promise to the current leader: only while fresh (see
        // `RaftEnvelope.sent_at_ms`).
        if ty == MessageType::MsgTimeoutNow || is_forced_vote(&msg) {
            let now = g.sm.physical_now_ms();
            let age = now.saturating_sub(env.sent_at_ms);
            if now != 0 && (env.sent_at_ms == 0 || age > self.cfg.handover_max_age_ms) {
                tracing::info!(
                    "range {}: ignoring a {} from node {} sent {age} ms ago",
                    env.range_id,
                    if ty == MessageType::MsgTimeoutNow {
                        "leadership handover"
                    } else {
                        "handover's vote request"
                    },
                    msg.from
                );
                return Ok(true);
            }
        }
        if matches!(
            ty,
            MessageType::MsgRequestVote | MessageType::MsgRequestPreVote
        ) && self.ticks < self.cfg.vote_grace_ticks
            && msg.term > g.node.raft.term
        {
            return Ok(true);
        }
        // A quiescing heartbeat and the answers to heartbeats keep a group
        // asleep; anything else is activity.
        if !(env.quiesce || ty == MessageType::MsgHeartbeatResponse) {
            g.wake();
        }
        let from_leader = msg.from;
        let term = msg.term;
        // raft-rs rejects messages from unknown peers in some states; those
        // errors are not fatal to the group.
        let _ = g.node.step(msg);
        if env.quiesce {
            let r = &g.node.raft;
            if r.state == StateRole::Follower
                && r.leader_id == from_leader
                && r.term == term
                && r.raft_log.last_index() == r.raft_log.committed
            {
                g.quiesced = true;
            }
        }
        Ok(true)
    }

    /// Proposes a command; returns the (index, term) it will commit at if
    /// it commits. The outcome is known when that index is applied: same
    /// term means this proposal, another term means it was lost.
    pub fn propose(&mut self, range_id: u64, data: Vec<u8>) -> Result<(u64, u64), ProposeError> {
        let g = self
            .groups
            .get_mut(&range_id)
            .ok_or(ProposeError::UnknownGroup)?;
        if g.node.raft.state != StateRole::Leader {
            return Err(ProposeError::NotLeader {
                leader: g.node.raft.leader_id,
            });
        }
        g.wake();
        g.node
            .propose(vec![], data)
            .map_err(|_| ProposeError::Dropped)?;
        let index = g.node.raft.raft_log.last_index();
        Ok((index, g.node.raft.term))
    }

    /// Proposes a membership change; `context` reaches
    /// [`StateMachine::apply_conf_change`].
    pub fn propose_conf_change(
        &mut self,
        range_id: u64,
        context: Vec<u8>,
        cc: ConfChange,
    ) -> Result<(u64, u64), ProposeError> {
        let g = self
            .groups
            .get_mut(&range_id)
            .ok_or(ProposeError::UnknownGroup)?;
        if g.node.raft.state != StateRole::Leader {
            return Err(ProposeError::NotLeader {
                leader: g.node.raft.leader_id,
            });
        }
        g.wake();
        g.node
            .propose_conf_change(context, cc)
            .map_err(|_| ProposeError::Dropped)?;
        Ok((g.node.raft.raft_log.last_index(), g.node.raft.term))
    }

    /// Drops a group and its state (data and raft log) from this node.
    fn destroy_group(&mut self, range_id: u64) -> tessera_storage::Result<()> {
        let Some(mut g) = self.groups.remove(&range_id) else {
            return Ok(());
        };
        let mut batch = WriteBatch::new();
        g.destroy(&mut batch);
        self.engine.write(batch, false)?;
        let r = &g.node.raft;
        self.superseded.insert(range_id, (r.term, r.vote));
        Ok(())
    }

    /// Reports that a snapshot sent to `to` failed, so raft retries.
    pub fn report_snapshot_failure(&mut self, range_id: u64, to: u64) {
        if let Some(g) = self.groups.get_mut(&range_id) {
            g.node.report_snapshot(to, raft::SnapshotStatus::Failure);
        }
    }

    pub fn report_unreachable(&mut self, range_id: u64, to: u64) {
        if let Some(g) = self.groups.get_mut(&range_id) {
            g.node.report_unreachable(to);
        }
    }

    /// Advances logical time by one tick for every active group; quiesces
    /// idle leaders and wakes followers whose leader's node died.
    pub fn tick(&mut self) {
        self.ticks += 1;
        let node_id = self.cfg.node_id;
        let after = self.cfg.quiesce_after_ticks;
        let mut quiesce_msgs = Vec::new();
        for (range_id, g) in self.groups.iter_mut() {
            if g.quiesced {
                let leader = g.node.raft.leader_id;
                let leader_gone = leader == 0 || (leader != node_id && !(self.liveness)(leader));
                if !leader_gone {
                    continue;
                }
                g.wake();
            }
            g.node.tick();
            g.idle_ticks += 1;
            Self::expire_lost_snapshots(g, self.cfg.snapshot_timeout_ticks);
            let mut woke = false;
            {
                let (mut ctl, sm) = g.control(&mut woke);
                sm.on_tick(&mut ctl);
            }
            if woke {
                g.idle_ticks = 0;
            }
            if g.leader_can_quiesce(after) {
                g.quiesced = true;
                let r = &g.node.raft;
                let header = Self::envelope_header(&g.sm, node_id, *range_id, true);
                for (peer, _) in r.prs().iter() {
                    if *peer == node_id {
                        continue;
                    }
                    let mut m = Message::default();
                    m.set_msg_type(MessageType::MsgHeartbeat);
                    m.to = *peer;
                    m.from = node_id;
                    m.term = r.term;
                    m.commit = r.raft_log.committed;
                    quiesce_msgs.push((*peer, Self::envelope(&header, &g.sm, &m, 0)));
                }
            }
        }
        for (to, env) in quiesce_msgs {
            self.outbox.entry(to).or_default().push(env);
        }
    }

    /// Peers stuck waiting for a snapshot whose message was lost go back
    /// to probing, so raft sends a new one.
    fn expire_lost_snapshots(g: &mut Group<S>, timeout: u64) {
        if g.node.raft.state != StateRole::Leader {
            g.snapshot_wait.clear();
            return;
        }
        let waiting: Vec<u64> = g
            .node
            .raft
            .prs()
            .iter()
            .filter(|(_, pr)| pr.state == raft::ProgressState::Snapshot)
            .map(|(id, _)| *id)
            .collect();
        g.snapshot_wait.retain(|id, _| waiting.contains(id));
        for id in waiting {
            let ticks = g.snapshot_wait.entry(id).or_insert(0);
            *ticks += 1;
            if *ticks > timeout {
                tracing::debug!("snapshot to {id} not acknowledged; resending");
                g.node.report_snapshot(id, raft::SnapshotStatus::Failure);
                g.snapshot_wait.remove(&id);
            }
        }
    }

    /// What every message of group `range_id` carries besides the raft
    /// message itself: the sender's span, generation and incarnation
    /// (read once per batch of messages).
    fn envelope_header(sm: &S, node_id: u64, range_id: u64, quiesce: bool) -> RaftEnvelope {
        let (start_key, end_key) = sm.span();
        RaftEnvelope {
            range_id,
            start_key,
            end_key,
            quiesce,
            generation: sm.generation(),
            from_replica: sm.replica_id(node_id),
            ..Default::default()
        }
    }

    /// `m` in an envelope: `header`, the recipient's incarnation and, on
    /// a leadership handover, its send time.
    fn envelope(
        header: &RaftEnvelope,
        sm: &S,
        m: &Message,
        handover_max_age_ms: u64,
    ) -> RaftEnvelope {
        let sent_at_ms = match m.get_msg_type() {
            MessageType::MsgTimeoutNow => sm.on_handover_sent(handover_max_age_ms),
            _ if is_forced_vote(m) => sm.physical_now_ms(),
            _ => 0,
        };
        RaftEnvelope {
            message: m.write_to_bytes().unwrap_or_default(),
            to_replica: sm.replica_id(m.to),
            sent_at_ms,
            ..header.clone()
        }
    }

    fn queue(
        outbox: &mut BTreeMap<u64, Vec<RaftEnvelope>>,
        cfg: &Config,
        range_id: u64,
        sm: &S,
        msgs: Vec<Message>,
    ) {
        if msgs.is_empty() {
            return;
        }
        let header = Self::envelope_header(sm, cfg.node_id, range_id, false);
        for m in msgs {
            let env = Self::envelope(&header, sm, &m, cfg.handover_max_age_ms);
            outbox.entry(m.to).or_default().push(env);
        }
    }

    /// One iteration: persist, send, apply (see the module doc). Returns the
    /// messages to send, grouped by destination node. A storage error is
    /// returned as is: the caller must stop the node, since this replica's
    /// state can no longer be trusted to match its peers'.
    pub fn process_ready(&mut self) -> tessera_storage::Result<ReadyOutput> {
        let mut early = BTreeMap::new();
        let mut out = self.process_ready_with(|m| early = m)?;
        for (to, mut envs) in early {
            let later = out.messages.remove(&to).unwrap_or_default();
            envs.extend(later);
            out.messages.insert(to, envs);
        }
        Ok(out)
    }

    /// Like [`MultiRaft::process_ready`], but hands the messages that may
    /// leave before the local fsync (a leader's appends) to `send_early`,
    /// so followers write in parallel with the leader.
    pub fn process_ready_with(
        &mut self,
        mut send_early: impl FnMut(BTreeMap<u64, Vec<RaftEnvelope>>),
    ) -> tessera_storage::Result<ReadyOutput> {
        let mut batch = WriteBatch::new();
        let mut must_sync = false;
        let mut readies = Vec::new();
        // Entries committed (and already durable here) that can be applied
        // before this iteration's fsync.
        let mut early = Vec::new();
        for (range_id, g) in self.groups.iter_mut() {
            if !g.node.has_ready() {
                continue;
            }
            let mut rd = g.node.ready();
            if let Some(ss) = rd.ss() {
                let (role, leader) = (ss.raft_state, ss.leader_id);
                g.sm.on_state_change(role, g.node.raft.term, leader);
            }
            Self::queue(
                &mut self.outbox,
                &self.cfg,
                *range_id,
                &g.sm,
                rd.take_messages(),
            );
            if rd.snapshot().is_empty()
                && !rd.committed_entries().is_empty()
                && rd
                    .committed_entries()
                    .iter()
                    .all(|e| e.get_entry_type() == EntryType::EntryNormal)
            {
                early.push((*range_id, rd.take_committed_entries()));
            }
            if !rd.snapshot().is_empty() {
                let snap: Snapshot = rd.snapshot().clone();
                if let Err(e) = g.sm.apply_snapshot(&snap.data, &mut batch) {
                    return Err(tessera_storage::Error::Corruption(format!(
                        "range {range_id}: cannot apply snapshot: {e}"
                    )));
                }
                g.node.mut_store().apply_snapshot(&snap, &mut batch);
                must_sync = true;
            }
            if !rd.entries().is_empty() {
                g.node.mut_store().append(rd.entries(), &mut batch);
                must_sync = true;
            }
            if let Some(hs) = rd.hs() {
                must_sync |= g.node.mut_store().set_hard_state(hs.clone(), &mut batch);
            }
            readies.push((*range_id, rd));
        }
        if !self.outbox.is_empty() {
            send_early(std::mem::take(&mut self.outbox));
        }

        // Entries raft reports committed are durable on this node already
        // (raft-rs hands out none above the persisted index), so they are
        // applied, and their clients answered, before the fsync of the new
        // entries: an answer does not wait for an unrelated write. The
        // commit index goes into the same batch, so that after a crash the
        // applied index is never above the committed one.
        let mut new_groups = Vec::new();
        let mut destroyed = Vec::new();
        let mut applied_groups = Vec::new();
        if !early.is_empty() {
            let mut early_batch = WriteBatch::new();
            let mut answered = Vec::new();
            for (range_id, committed) in early {
                let g = self
                    .groups
                    .get_mut(&range_id)
                    .expect("group of a ready exists");
                let last = committed.last().map_or(0, |e| e.index);
                g.node
                    .mut_store()
                    .write_commit_for_apply(last, &mut early_batch);
                let created = new_groups.len();
                let last = Self::apply_committed(
                    range_id,
                    g,
                    &committed,
                    &mut early_batch,
                    &mut new_groups,
                    &mut destroyed,
                )?;
                if new_groups.len() == created {
                    answered.push((range_id, last));
                } else {
                    // A split: its clients are answered once the new group
                    // exists, at the end of the iteration.
                    applied_groups.push((range_id, last));
                }
            }
            self.engine.write(early_batch, false)?;
            for (range_id, applied) in answered {
                if let Some(g) = self.groups.get_mut(&range_id) {
                    g.sm.on_applied(applied);
                }
            }
        }
        if !batch.is_empty() {
            // One sync for every range's new entries and votes; a batch
            // that only moves commit indexes is ordered in the journal
            // before later writes but not waited for.
            self.engine.write(batch, must_sync)?;
        }

        let mut apply_batch = WriteBatch::new();
        for (range_id, mut rd) in readies {
            let g = self
                .groups
                .get_mut(&range_id)
                .expect("group of a ready exists");
            Self::queue(
                &mut self.outbox,
                &self.cfg,
                range_id,
                &g.sm,
                rd.take_persisted_messages(),
            );
            for rs in rd.take_read_states() {
                g.sm.on_read_index(&rs.request_ctx, rs.index);
            }
            let mut committed = rd.take_committed_entries();
            let mut light = g.node.advance(rd);
            if let Some(commit) = light.commit_index() {
                g.node.mut_store().set_commit(commit, &mut apply_batch);
            }
            Self::queue(
                &mut self.outbox,
                &self.cfg,
                range_id,
                &g.sm,
                light.take_messages(),
            );
            committed.extend(light.take_committed_entries());
            if committed.is_empty() {
                continue;
            }
            let last = Self::apply_committed(
                range_id,
                g,
                &committed,
                &mut apply_batch,
                &mut new_groups,
                &mut destroyed,
            )?;
            applied_groups.push((range_id, last));
        }
        if !apply_batch.is_empty() {
            self.engine.write(apply_batch, false)?;
        }
        for (range_id, applied) in &applied_groups {
            if let Some(g) = self.groups.get_mut(range_id) {
                g.sm.on_applied(*applied);
            }
        }
        for range_id in destroyed {
            self.groups.remove(&range_id);
        }
        for (range_id, storage, sm, campaign) in new_groups {
            if self.groups.contains_key(&range_id) {
                continue;
            }
            if let Err(e) = self.insert(range_id, storage, sm) {
                tracing::error!("{e}");
                continue;
            }
            if campaign {
                if let Some(g) = self.groups.get_mut(&range_id) {
                    let _ = g.node.campaign();
                }
            }
        }
        self.maintain_logs()?;
        Ok(ReadyOutput {
            messages: std::mem::take(&mut self.outbox),
        })
    }

    /// Applies `committed` (a run of committed entries of one group) into
    /// `batch` with the applied index and the effects' writes. Groups the
    /// effects create are pushed to `new_groups`; a destroyed group (this
    /// replica was removed) to `destroyed`. Returns the last index applied.
    fn apply_committed(
        range_id: u64,
        g: &mut Group<S>,
        committed: &[raft::eraftpb::Entry],
        batch: &mut WriteBatch,
        new_groups: &mut Vec<(u64, GroupStorage, S, bool)>,
        destroyed: &mut Vec<u64>,
    ) -> tessera_storage::Result<u64> {
        let mut effects = Vec::new();
        let mut conf_state = None;
        let mut last = 0;
        for e in committed {
            last = e.index;
            match e.get_entry_type() {
                EntryType::EntryNormal => {
                    if !e.data.is_empty() {
                        g.sm.apply(e.index, e.term, &e.data, batch, &mut effects);
                    }
                }
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    let (cc, context) = decode_conf_change(e).map_err(|err| {
                        tessera_storage::Error::Corruption(format!(
                            "range {range_id}: bad conf change: {err}"
                        ))
                    })?;
                    let cs = g.node.apply_conf_change(&cc).map_err(|err| {
                        tessera_storage::Error::Corruption(format!(
                            "range {range_id}: cannot apply conf change: {err}"
                        ))
                    })?;
                    g.sm.apply_conf_change(e.index, &context, &cs, batch, &mut effects);
                    conf_state = Some(cs);
                }
            }
        }
        g.node.mut_store().set_applied(last, conf_state, batch);
        g.node.advance_apply_to(last);
        for effect in effects {
            match effect {
                Effect::CreateGroup {
                    range_id: new_id,
                    voters,
                    learners,
                    state_machine,
                    campaign,
                } => {
                    let storage = GroupStorage::initialized(new_id, voters, learners, batch);
                    new_groups.push((new_id, storage, state_machine, campaign));
                }
                Effect::Destroy => {
                    g.destroy(batch);
                    destroyed.push(range_id);
                }
            }
        }
        Ok(last)
    }

    /// Builds snapshots raft asked for, and truncates long logs.
    fn maintain_logs(&mut self) -> tessera_storage::Result<()> {
        let mut batch = WriteBatch::new();
        for (range_id, g) in self.groups.iter_mut() {
            if g.node.store().snapshot_requested().is_some() {
                match g.sm.build_snapshot() {
                    Ok(data) => g.node.mut_store().set_prepared_snapshot(data),
                    Err(e) => tracing::warn!("range {range_id}: cannot build snapshot: {e}"),
                }
            }
            let store = g.node.store();
            if store.log_len() > self.cfg.log_max_entries {
                let applied = store.applied();
                let mut to = applied.saturating_sub(self.cfg.log_keep_entries);
                // A follower that is only a little behind (a busy node)
                // catches up from the log: cut below it, and it would need
                // a snapshot of the whole range.
                if g.node.raft.state == StateRole::Leader {
                    let me = self.cfg.node_id;
                    let slowest = g
                        .node
                        .raft
                        .prs()
                        .iter()
                        .filter(|(id, pr)| **id != me && pr.recent_active)
                        .map(|(_, pr)| pr.matched)
                        .min();
                    if let Some(slowest) = slowest.filter(|m| *m < to) {
                        if store.bytes_after(slowest) <= self.cfg.log_max_lag_bytes {
                            to = slowest;
                        }
                    }
                }
                g.node.mut_store().compact(to, &mut batch);
            }
        }
        if !batch.is_empty() {
            self.engine.write(batch, false)?;
        }
        Ok(())
    }

    /// A summary of every group, for introspection.
    pub fn statuses(&self) -> HashMap<u64, GroupStatus> {
        self.groups
            .iter()
            .map(|(id, g)| {
                let r = &g.node.raft;
                (
                    *id,
                    GroupStatus {
                        role: r.state,
                        term: r.term,
                        leader: r.leader_id,
                        applied: r.raft_log.applied,
                        committed: r.raft_log.committed,
                        last_index: r.raft_log.last_index(),
                        quiesced: g.quiesced,
                        first_index: g.node.store().truncated_index() + 1,
                    },
                )
            })
            .collect()
    }
}

/// A membership change entry as a `ConfChangeV2`, with the context its
/// proposer attached (raft-rs keeps it on the entry; older entries on the
/// change itself).
fn decode_conf_change(
    e: &raft::eraftpb::Entry,
) -> Result<(ConfChangeV2, Vec<u8>), protobuf::ProtobufError> {
    let cc = if e.get_entry_type() == EntryType::EntryConfChange {
        ConfChange::parse_from_bytes(&e.data)?.into_v2()
    } else {
        ConfChangeV2::parse_from_bytes(&e.data)?
    };
    let context = if e.context.is_empty() {
        cc.context.to_vec()
    } else {
        e.context.to_vec()
    };
    Ok((cc, context))
}

/// A snapshot of one group's raft status.
#[derive(Clone, Debug)]
pub struct GroupStatus {
    pub role: StateRole,
    pub term: u64,
    pub leader: u64,
    pub applied: u64,
    pub committed: u64,
    pub last_index: u64,
    pub first_index: u64,
    pub quiesced: bool,
}

/// A vote request of a campaign started by a leadership handover: voters
/// grant it even while they honour their promise to the current leader.
fn is_forced_vote(m: &Message) -> bool {
    m.get_msg_type() == MessageType::MsgRequestVote && m.context[..] == *raft::CAMPAIGN_TRANSFER
}
