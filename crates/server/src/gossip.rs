//! Membership by gossip: the [`Book`] of known nodes (descriptors, when
//! each was last heard from, who is draining, where range 1 is) and the
//! loop that exchanges it with every known address twice a second.
//!
//! A node is live if it was heard from (a gossip request from it, or a
//! response to ours) within [`LIVENESS_WINDOW`]; the node itself is always
//! live. The book implements [`Liveness`] for the store.
//!
//! Gossip also guards the cluster's integrity: messages carry the cluster
//! id (a node never merges state of another cluster, and a store that
//! belongs to another cluster than its `--join` addresses is fatal) and the
//! sender's clock (an offset beyond `--max-offset` is refused; a node whose
//! clock disagrees with most of its peers stops).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tessera_common::proto::{GossipRequest, GossipResponse, NodeDescriptor, RangeDescriptor};
use tessera_common::Timestamp;
use tessera_kv::Liveness;
use tessera_storage::{Engine, WriteBatch};

use crate::node::Shared;
use crate::transport::{best_first_range, describe_status, RateLimit};

/// A node heard from within this window is live.
pub(crate) const LIVENESS_WINDOW: Duration = Duration::from_secs(3);
/// Time between gossip rounds.
pub(crate) const GOSSIP_INTERVAL: Duration = Duration::from_millis(500);
/// Deadline of one gossip exchange.
const GOSSIP_TIMEOUT: Duration = Duration::from_secs(2);
/// Consecutive rounds in which most peers disagree with our clock before
/// the node stops.
const OFFSET_ROUNDS_FATAL: u32 = 3;
/// Engine key (node-local) of the addresses of known peers, newline
/// separated: lets a restarted node find its cluster with a stale --join.
pub(crate) const PEERS_KEY: &[u8] = b"\x00peers";
/// Prefix of the error a node answers when it refuses our clock.
const CLOCK_ERROR_PREFIX: &str = "clock offset";

struct Peer {
    desc: NodeDescriptor,
    heard: Option<Instant>,
    draining: bool,
}

#[derive(Default)]
struct Inner {
    nodes: BTreeMap<u64, Peer>,
    /// Range 1's descriptor and leaseholder as gossiped.
    first_range: Option<(RangeDescriptor, u64)>,
    /// Addresses remembered from a previous run (gossip targets).
    remembered: BTreeSet<String>,
}

/// What this node knows about the members of its cluster.
#[derive(Default)]
pub(crate) struct Book {
    self_id: AtomicU64,
    draining: AtomicBool,
    inner: Mutex<Inner>,
}

impl Book {
    /// Records this node's own descriptor (once its id is known).
    pub(crate) fn set_self(&self, desc: NodeDescriptor) {
        self.self_id.store(desc.node_id, Ordering::SeqCst);
        let mut inner = self.inner.lock();
        inner.nodes.insert(
            desc.node_id,
            Peer {
                desc,
                heard: Some(Instant::now()),
                draining: false,
            },
        );
    }

    pub(crate) fn self_id(&self) -> u64 {
        self.self_id.load(Ordering::SeqCst)
    }

    pub(crate) fn set_draining(&self, draining: bool) {
        self.draining.store(draining, Ordering::SeqCst);
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Every known node descriptor, this node's included, by id.
    pub(crate) fn descriptors(&self) -> Vec<NodeDescriptor> {
        self.inner
            .lock()
            .nodes
            .values()
            .map(|p| p.desc.clone())
            .collect()
    }

    pub(crate) fn address_of(&self, node_id: u64) -> Option<String> {
        self.inner
            .lock()
            .nodes
            .get(&node_id)
            .map(|p| p.desc.address.clone())
            .filter(|a| !a.is_empty())
    }

    /// The node listening at `addr` (the most recently heard one if
    /// several ever did).
    pub(crate) fn node_at(&self, addr: &str) -> Option<u64> {
        self.inner
            .lock()
            .nodes
            .values()
            .filter(|p| p.desc.address == addr)
            .max_by_key(|p| p.heard)
            .map(|p| p.desc.node_id)
    }

    /// Whether `node_id` is live, and whether it is draining.
    pub(crate) fn status(&self, node_id: u64) -> (bool, bool) {
        if node_id == self.self_id() {
            return (true, self.is_draining());
        }
        let inner = self.inner.lock();
        match inner.nodes.get(&node_id) {
            Some(p) => (
                p.heard.is_some_and(|t| t.elapsed() < LIVENESS_WINDOW),
                p.draining,
            ),
            None => (false, false),
        }
    }

    /// Whether a node we used to hear from has gone quiet (dead, paused or
    /// cut off): requests to it would hang, so callers fail over at once.
    pub(crate) fn is_suspect(&self, node_id: u64) -> bool {
        if node_id == self.self_id() {
            return false;
        }
        let inner = self.inner.lock();
        inner
            .nodes
            .get(&node_id)
            .and_then(|p| p.heard)
            .is_some_and(|t| t.elapsed() >= LIVENESS_WINDOW)
    }

    /// Ids of live nodes, this one included.
    pub(crate) fn live_node_ids(&self) -> Vec<u64> {
        self.live_nodes().into_iter().map(|(n, _)| n).collect()
    }

    /// Notes that `node_id` just spoke to us (and whether it drains, if it
    /// said so).
    pub(crate) fn heard(&self, node_id: u64, draining: Option<bool>) {
        if node_id == 0 || node_id == self.self_id() {
            return;
        }
        let mut inner = self.inner.lock();
        if let Some(p) = inner.nodes.get_mut(&node_id) {
            p.heard = Some(Instant::now());
            if let Some(d) = draining {
                p.draining = d;
            }
        }
    }

    /// A descriptor a node sent about itself: it replaces what we knew.
    pub(crate) fn learn_from_owner(&self, desc: NodeDescriptor) {
        if desc.node_id == 0 || desc.node_id == self.self_id() {
            return;
        }
        let mut inner = self.inner.lock();
        match inner.nodes.get_mut(&desc.node_id) {
            Some(p) => p.desc = desc,
            None => {
                inner.nodes.insert(
                    desc.node_id,
                    Peer {
                        desc,
                        heard: None,
                        draining: false,
                    },
                );
            }
        }
    }

    /// A descriptor relayed by a third node: only fills gaps.
    pub(crate) fn learn_relayed(&self, desc: NodeDescriptor) {
        if desc.node_id == 0 || desc.node_id == self.self_id() {
            return;
        }
        self.inner.lock().nodes.entry(desc.node_id).or_insert(Peer {
            desc,
            heard: None,
            draining: false,
        });
    }

    /// A node that just joined through us: it is live, and any older node
    /// at the same address is gone.
    pub(crate) fn add_joined(&self, desc: NodeDescriptor) {
        let mut inner = self.inner.lock();
        let id = desc.node_id;
        inner.nodes.retain(|n, p| {
            *n == id
                || p.desc.address != desc.address
                || p.heard.is_some_and(|t| t.elapsed() < LIVENESS_WINDOW)
        });
        inner.nodes.insert(
            id,
            Peer {
                desc,
                heard: Some(Instant::now()),
                draining: false,
            },
        );
    }

    /// Folds in what `sender` says about range 1: a newer descriptor wins;
    /// at the same generation, the word of the leaseholder itself wins, and
    /// any known leaseholder beats an unknown one.
    pub(crate) fn merge_first_range(&self, desc: Option<RangeDescriptor>, lh: u64, sender: u64) {
        let Some(desc) = desc else { return };
        if desc.range_id != 1 || desc.replicas.is_empty() {
            return;
        }
        let mut inner = self.inner.lock();
        let replace = match &inner.first_range {
            None => true,
            Some((cur, cur_lh)) => {
                desc.generation > cur.generation
                    || (desc.generation == cur.generation
                        && lh != 0
                        && (lh == sender || *cur_lh == 0))
            }
        };
        if replace {
            inner.first_range = Some((desc, lh));
        }
    }

    pub(crate) fn first_range(&self) -> Option<(RangeDescriptor, u64)> {
        self.inner.lock().first_range.clone()
    }

    pub(crate) fn remember(&self, addrs: impl IntoIterator<Item = String>) {
        self.inner.lock().remembered.extend(addrs);
    }

    /// Forgets an address that turned out to belong to another cluster.
    pub(crate) fn forget_address(&self, addr: &str) {
        let mut inner = self.inner.lock();
        inner.remembered.remove(addr);
        let self_id = self.self_id();
        inner
            .nodes
            .retain(|n, p| *n == self_id || p.desc.address != addr);
    }

    /// Addresses to gossip with: `join`, remembered, and every known
    /// node's, except `own`.
    pub(crate) fn targets(&self, join: &[String], own: &str) -> BTreeSet<String> {
        let inner = self.inner.lock();
        let self_id = self.self_id();
        join.iter()
            .cloned()
            .chain(inner.remembered.iter().cloned())
            .chain(
                inner
                    .nodes
                    .values()
                    .filter(|p| p.desc.node_id != self_id)
                    .map(|p| p.desc.address.clone()),
            )
            .filter(|a| !a.is_empty() && a != own)
            .collect()
    }

    /// Addresses of the other known nodes, to persist.
    fn peer_addresses(&self) -> Vec<String> {
        let inner = self.inner.lock();
        let self_id = self.self_id();
        let set: BTreeSet<String> = inner
            .nodes
            .values()
            .filter(|p| p.desc.node_id != self_id && !p.desc.address.is_empty())
            .map(|p| p.desc.address.clone())
            .collect();
        set.into_iter().collect()
    }
}

impl Liveness for Book {
    fn live_nodes(&self) -> Vec<(u64, bool)> {
        let self_id = self.self_id();
        let inner = self.inner.lock();
        let mut out: Vec<(u64, bool)> = inner
            .nodes
            .values()
            .filter(|p| p.desc.node_id != self_id)
            .filter(|p| p.heard.is_some_and(|t| t.elapsed() < LIVENESS_WINDOW))
            .map(|p| (p.desc.node_id, p.draining))
            .collect();
        if self_id != 0 {
            out.push((self_id, self.is_draining()));
            out.sort();
        }
        out
    }

    fn is_live(&self, node_id: u64) -> bool {
        self.status(node_id).0
    }
}

/// Reads the remembered peer addresses from the engine.
pub(crate) fn load_peers(engine: &dyn Engine) -> Vec<String> {
    match engine.get(PEERS_KEY) {
        Ok(Some(v)) => String::from_utf8_lossy(&v)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// What the gossip loop remembers between rounds.
pub(crate) struct LoopState {
    /// Per address: whether it failed last time, and the warning limiter.
    peers: HashMap<String, (bool, RateLimit)>,
    offset_rounds: u32,
    persisted: Vec<String>,
}

impl LoopState {
    pub(crate) fn new() -> Self {
        LoopState {
            peers: HashMap::new(),
            offset_rounds: 0,
            persisted: Vec::new(),
        }
    }

    fn peer(&mut self, addr: &str) -> &mut (bool, RateLimit) {
        self.peers
            .entry(addr.to_string())
            .or_insert_with(|| (false, RateLimit::new(Duration::from_secs(60))))
    }
}

/// Gossips every [`GOSSIP_INTERVAL`] once the node is part of a cluster.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut state = LoopState::new();
    let mut interval = tokio::time::interval(GOSSIP_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        round(&shared, &mut state).await;
    }
}

/// The request this node sends in a round (None before it has an id).
fn request(shared: &Shared) -> Option<GossipRequest> {
    let run = shared.running()?;
    let book = &shared.book;
    let own = book
        .descriptors()
        .into_iter()
        .find(|d| d.node_id == run.node_id)?;
    let (first_range, lh) = match best_first_range(run.store.first_range(), book.first_range()) {
        Some((d, lh)) => (Some(d), lh),
        None => (None, 0),
    };
    Some(GossipRequest {
        cluster_id: run.cluster_id.clone(),
        from: Some(own),
        nodes: book.descriptors(),
        first_range,
        first_range_leaseholder: lh,
        timestamp: Some(shared.clock.now().into()),
        draining: book.is_draining(),
    })
}

/// One exchange with every target address.
pub(crate) async fn round(shared: &Arc<Shared>, state: &mut LoopState) {
    let Some(req) = request(shared) else { return };
    let own_cluster = req.cluster_id.clone();
    let targets = shared.book.targets(&shared.cfg.join, &shared.advertise);
    let mut set = tokio::task::JoinSet::new();
    for addr in targets {
        let client = shared.pool.internal(&addr);
        let req = req.clone();
        set.spawn(async move {
            let result = match client {
                Err(e) => Err(e),
                Ok(mut c) => match tokio::time::timeout(GOSSIP_TIMEOUT, c.gossip(req)).await {
                    Ok(Ok(r)) => Ok(r.into_inner()),
                    Ok(Err(s)) => Err(describe_status(&s)),
                    Err(_) => Err("timed out".to_string()),
                },
            };
            (addr, result)
        });
    }
    let (mut answered, mut offset_problems) = (0usize, 0usize);
    while let Some(joined) = set.join_next().await {
        let Ok((addr, result)) = joined else { continue };
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                let (down, limit) = state.peer(&addr);
                *down = true;
                if limit.allow() {
                    tracing::warn!("node at {addr} is unreachable: {e}");
                }
                continue;
            }
        };
        {
            let (down, _) = state.peer(&addr);
            if *down {
                tracing::info!("node at {addr} is reachable again");
            }
            *down = false;
        }
        if resp.cluster_id.is_empty() {
            // A node that has not joined any cluster yet.
            continue;
        }
        if resp.cluster_id != own_cluster {
            if shared.cfg.join.contains(&addr) {
                shared.fatal(format!(
                    "store belongs to cluster {own_cluster} but {addr} is in cluster {}",
                    resp.cluster_id
                ));
                return;
            }
            tracing::warn!(
                "{addr} is now in cluster {}, not ours ({own_cluster}): forgetting it",
                resp.cluster_id
            );
            shared.book.forget_address(&addr);
            continue;
        }
        answered += 1;
        if resp.error.starts_with(CLOCK_ERROR_PREFIX) {
            offset_problems += 1;
            tracing::warn!("{addr} refused our clock: {}", resp.error);
            continue;
        }
        if !resp.error.is_empty() {
            tracing::warn!("gossip with {addr} failed: {}", resp.error);
            continue;
        }
        if let Some(ts) = resp.timestamp {
            if let Err(e) = shared.clock.update(Timestamp::from(ts)) {
                offset_problems += 1;
                tracing::warn!("refusing gossip from {addr}: {e}");
                continue;
            }
        }
        let responder = shared.book.node_at(&addr).unwrap_or(0);
        shared.book.heard(responder, None);
        for d in resp.nodes {
            if d.node_id == responder {
                shared.book.learn_from_owner(d);
            } else {
                shared.book.learn_relayed(d);
            }
        }
        shared
            .book
            .merge_first_range(resp.first_range, resp.first_range_leaseholder, responder);
        // A responder we could not name yet is known now: note it.
        if responder == 0 {
            if let Some(n) = shared.book.node_at(&addr) {
                shared.book.heard(n, None);
            }
        }
    }
    if answered > 0 && offset_problems * 2 > answered {
        state.offset_rounds += 1;
        if state.offset_rounds >= OFFSET_ROUNDS_FATAL {
            shared.fatal(format!(
                "clock offset: this node's clock disagrees by more than --max-offset ({}ms) with {offset_problems} of {answered} nodes",
                shared.clock.max_offset().as_millis()
            ));
        }
    } else {
        state.offset_rounds = 0;
    }
    persist_peers(shared, state);
}

fn persist_peers(shared: &Shared, state: &mut LoopState) {
    let peers = shared.book.peer_addresses();
    if peers == state.persisted || peers.is_empty() {
        return;
    }
    let mut batch = WriteBatch::new();
    batch.put(PEERS_KEY.to_vec(), peers.join("\n").into_bytes());
    match shared.engine.write(batch, false) {
        Ok(()) => state.persisted = peers,
        Err(e) => tracing::warn!("cannot remember peer addresses: {e}"),
    }
}

/// Answers a gossip request from another node.
pub(crate) fn handle(shared: &Shared, req: GossipRequest) -> GossipResponse {
    let Some(run) = shared.running() else {
        // Not part of a cluster: nothing to merge, nothing to tell.
        return GossipResponse::default();
    };
    let from = req.from.clone().unwrap_or_default();
    let mut resp = GossipResponse {
        cluster_id: run.cluster_id.clone(),
        ..Default::default()
    };
    if !req.cluster_id.is_empty() && req.cluster_id != run.cluster_id {
        resp.error = format!(
            "node {} at {} is in cluster {}, this node is in cluster {}",
            from.node_id, from.address, req.cluster_id, run.cluster_id
        );
        return resp;
    }
    if let Some(ts) = req.timestamp {
        if let Err(e) = shared.clock.update(Timestamp::from(ts)) {
            tracing::warn!(
                "refusing gossip from node {} at {}: {e}",
                from.node_id,
                from.address
            );
            resp.error = format!("{CLOCK_ERROR_PREFIX}: {e}");
            resp.timestamp = Some(shared.clock.now().into());
            return resp;
        }
    }
    if from.node_id != 0 {
        shared.book.learn_from_owner(from.clone());
        shared.book.heard(from.node_id, Some(req.draining));
    }
    for d in req.nodes {
        if d.node_id == from.node_id {
            continue;
        }
        shared.book.learn_relayed(d);
    }
    shared
        .book
        .merge_first_range(req.first_range, req.first_range_leaseholder, from.node_id);
    let (first_range, lh) =
        match best_first_range(run.store.first_range(), shared.book.first_range()) {
            Some((d, lh)) => (Some(d), lh),
            None => (None, 0),
        };
    resp.nodes = shared.book.descriptors();
    resp.first_range = first_range;
    resp.first_range_leaseholder = lh;
    resp.timestamp = Some(shared.clock.now().into());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_common::proto::ReplicaDescriptor;

    fn nd(id: u64, addr: &str) -> NodeDescriptor {
        NodeDescriptor {
            node_id: id,
            address: addr.into(),
            ..Default::default()
        }
    }

    fn range1(generation: u64) -> RangeDescriptor {
        RangeDescriptor {
            range_id: 1,
            generation,
            replicas: vec![ReplicaDescriptor {
                node_id: 1,
                replica_id: 1,
                r#type: 0,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn liveness_needs_recent_contact_and_self_is_always_live() {
        let book = Book::default();
        book.set_self(nd(1, "a:1"));
        book.learn_relayed(nd(2, "b:1"));
        assert!(book.is_live(1));
        assert!(!book.is_live(2), "known but never heard from");
        book.heard(2, Some(true));
        assert!(book.is_live(2));
        assert_eq!(book.live_nodes(), vec![(1, false), (2, true)]);
        assert!(!book.is_live(3));
    }

    #[test]
    fn owner_descriptor_replaces_relayed_one() {
        let book = Book::default();
        book.set_self(nd(1, "a:1"));
        book.learn_relayed(nd(2, "old:1"));
        book.learn_relayed(nd(2, "other:1"));
        assert_eq!(book.address_of(2).as_deref(), Some("old:1"));
        book.learn_from_owner(nd(2, "new:1"));
        assert_eq!(book.address_of(2).as_deref(), Some("new:1"));
        assert_eq!(book.node_at("new:1"), Some(2));
        let t = book.targets(&["a:1".into(), "j:1".into()], "a:1");
        assert_eq!(t.into_iter().collect::<Vec<_>>(), vec!["j:1", "new:1"]);
    }

    #[test]
    fn first_range_prefers_newer_generation_then_the_leaseholder_itself() {
        let book = Book::default();
        book.merge_first_range(Some(range1(2)), 0, 3);
        assert_eq!(book.first_range().map(|r| r.1), Some(0));
        book.merge_first_range(Some(range1(2)), 2, 3); // relayed, fills a gap
        assert_eq!(book.first_range().map(|r| r.1), Some(2));
        book.merge_first_range(Some(range1(2)), 1, 3); // relayed, same gen: no
        assert_eq!(book.first_range().map(|r| r.1), Some(2));
        book.merge_first_range(Some(range1(2)), 1, 1); // from the leaseholder
        assert_eq!(book.first_range().map(|r| r.1), Some(1));
        book.merge_first_range(Some(range1(1)), 3, 3); // older: no
        assert_eq!(
            book.first_range().map(|r| (r.0.generation, r.1)),
            Some((2, 1))
        );
        book.merge_first_range(Some(range1(3)), 0, 2); // newer wins
        assert_eq!(
            book.first_range().map(|r| (r.0.generation, r.1)),
            Some((3, 0))
        );
    }
}
