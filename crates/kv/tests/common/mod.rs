//! An in-process cluster for tests: stores wired with direct calls instead
//! of RPCs, with switches to take nodes down and lose replies.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use tessera_common::proto::{KvRequest, RaftBatch, RangeDescriptor};
use tessera_common::Clock;
use tessera_kv::db::{DialError, DialFuture};
use tessera_kv::{Liveness, NodeDialer, RaftTransport, Store, StoreConfig, DB};
use tessera_storage::MemoryEngine;

#[derive(Default)]
pub struct Net {
    pub stores: RwLock<HashMap<u64, Arc<Store>>>,
    pub down: RwLock<HashSet<u64>>,
    /// Nodes whose raft messages (sent and received) are dropped; they
    /// stay live and reachable for requests.
    pub raft_cut: RwLock<HashSet<u64>>,
    /// The next write is applied but its reply is lost (as on a timeout).
    pub lose_next_write_reply: std::sync::atomic::AtomicBool,
    /// A request another client makes right after the reply is lost,
    /// before the loser retries.
    pub after_lost_reply: parking_lot::Mutex<Option<tessera_common::proto::kv_request::Op>>,
}

impl Net {
    /// Another client's put of `key` right after the next lost reply.
    pub fn put_after_lost_reply(&self, key: &[u8], value: &[u8]) {
        *self.after_lost_reply.lock() = Some(tessera_common::proto::kv_request::Op::Put(
            tessera_common::proto::PutRequest {
                key: key.to_vec(),
                value: value.to_vec(),
            },
        ));
    }
}

impl Net {
    pub fn up(&self, id: u64) -> Option<Arc<Store>> {
        if self.down.read().contains(&id) {
            return None;
        }
        self.stores.read().get(&id).cloned()
    }
}

pub struct Transport(pub Arc<Net>, pub u64);
impl RaftTransport for Transport {
    fn send(&self, batch: RaftBatch) {
        if self.0.down.read().contains(&self.1) {
            return;
        }
        let cut = self.0.raft_cut.read();
        if cut.contains(&self.1) || cut.contains(&batch.to_node) {
            return;
        }
        drop(cut);
        if let Some(s) = self.0.up(batch.to_node) {
            s.deliver(batch);
        }
    }
}

pub struct Live(pub Arc<Net>);
impl Liveness for Live {
    fn live_nodes(&self) -> Vec<(u64, bool)> {
        let mut v: Vec<_> = self
            .0
            .stores
            .read()
            .keys()
            .filter(|id| !self.0.down.read().contains(id))
            .map(|id| (*id, false))
            .collect();
        v.sort();
        v
    }
    fn is_live(&self, id: u64) -> bool {
        !self.0.down.read().contains(&id)
    }
}

pub struct Dialer(pub Arc<Net>);
impl NodeDialer for Dialer {
    fn send(&self, node_id: u64, req: KvRequest) -> DialFuture {
        let store = self.0.up(node_id);
        let is_write = matches!(
            req.op,
            Some(tessera_common::proto::kv_request::Op::Cput(_))
                | Some(tessera_common::proto::kv_request::Op::Put(_))
                | Some(tessera_common::proto::kv_request::Op::TxnWrite(_))
        );
        let lose = is_write
            && self
                .0
                .lose_next_write_reply
                .swap(false, std::sync::atomic::Ordering::SeqCst);
        let then = if lose {
            self.0.after_lost_reply.lock().take()
        } else {
            None
        };
        let range_id = req.range_id;
        Box::pin(async move {
            match store {
                Some(s) => {
                    let resp = s.execute(req).await;
                    if lose {
                        if let Some(op) = then {
                            let req = KvRequest {
                                range_id,
                                op: Some(op),
                                ..Default::default()
                            };
                            s.execute(req).await;
                        }
                        return Err(DialError::unanswered("timed out"));
                    }
                    Ok(resp)
                }
                None => Err(DialError::not_sent(format!("node {node_id} is down"))),
            }
        })
    }
    fn first_range(&self) -> Option<(RangeDescriptor, u64)> {
        let stores: Vec<_> = self.0.stores.read().values().cloned().collect();
        let mut best: Option<(RangeDescriptor, u64)> = None;
        for s in stores {
            if self.0.down.read().contains(&s.node_id()) {
                continue;
            }
            if let Some((d, lh)) = s.first_range() {
                if best
                    .as_ref()
                    .is_none_or(|(b, _)| d.generation > b.generation || lh != 0)
                {
                    best = Some((d, lh));
                }
            }
        }
        best
    }
    fn known_nodes(&self) -> Vec<u64> {
        self.0.stores.read().keys().copied().collect()
    }
}

pub struct Cluster {
    pub net: Arc<Net>,
    pub dbs: HashMap<u64, Arc<DB>>,
}

pub async fn cluster(n: u64) -> Cluster {
    cluster_with(n, |_| {}).await
}

pub async fn cluster_with(n: u64, tune: impl Fn(&mut StoreConfig)) -> Cluster {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let net = Arc::new(Net::default());
    let mut dbs = HashMap::new();
    for id in 1..=n {
        let engine = Arc::new(MemoryEngine::new());
        let clock = Clock::system(Duration::from_millis(250));
        if id == 1 {
            Store::bootstrap(engine.as_ref(), 1, clock.now(), Default::default()).unwrap();
        }
        let mut cfg = StoreConfig::new(id);
        cfg.tick = Duration::from_millis(20);
        tune(&mut cfg);
        let store = Store::start(
            cfg,
            engine,
            clock.clone(),
            Arc::new(Transport(net.clone(), id)),
            Arc::new(Live(net.clone())),
        )
        .unwrap();
        let db = Arc::new(DB::new(Arc::new(Dialer(net.clone())), clock));
        store.set_db(db.clone());
        net.stores.write().insert(id, store.clone());
        dbs.insert(id, db);
        let s = store.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                s.run_queues().await;
            }
        });
    }
    Cluster { net, dbs }
}

pub fn voters(d: &RangeDescriptor) -> usize {
    d.replicas.iter().filter(|r| r.r#type == 0).count()
}

/// Waits until range 1 has three voters (up-replication finished).
pub async fn wait_for_three_voters(db: &DB) {
    wait_for(
        "3 voters",
        Duration::from_secs(20),
        async || matches!(db.ranges().await, Ok(r) if voters(&r[0]) == 3),
    )
    .await;
}

pub async fn wait_for(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}
