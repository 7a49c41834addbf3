//! The test cluster shared by the SQL tests: an in-process 3-store
//! cluster (direct calls instead of RPCs, as in the kv crate's cluster
//! tests), `tessera_sql::serve` on 127.0.0.1:0 for nodes 1 and 2, and
//! helpers over `tokio-postgres`.
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
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

#[derive(Default)]
struct Net {
    stores: RwLock<HashMap<u64, Arc<Store>>>,
    down: RwLock<HashSet<u64>>,
}

struct Transport(Arc<Net>);
impl RaftTransport for Transport {
    fn send(&self, batch: RaftBatch) {
        let s = self.0.stores.read().get(&batch.to_node).cloned();
        if let Some(s) = s {
            s.deliver(batch);
        }
    }
}

struct Live(Arc<Net>);
impl Liveness for Live {
    fn live_nodes(&self) -> Vec<(u64, bool)> {
        let mut v: Vec<_> = self.0.stores.read().keys().map(|id| (*id, false)).collect();
        v.sort();
        v
    }
    fn is_live(&self, id: u64) -> bool {
        !self.0.down.read().contains(&id)
    }
}

struct Dialer(Arc<Net>);
impl NodeDialer for Dialer {
    fn send(&self, node_id: u64, req: KvRequest) -> DialFuture {
        let store = self.0.stores.read().get(&node_id).cloned();
        Box::pin(async move {
            match store {
                Some(s) => Ok(s.execute(req).await),
                None => Err(DialError::not_sent(format!("node {node_id} is down"))),
            }
        })
    }
    fn first_range(&self) -> Option<(RangeDescriptor, u64)> {
        let stores: Vec<_> = self.0.stores.read().values().cloned().collect();
        let mut best: Option<(RangeDescriptor, u64)> = None;
        for s in stores {
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
    pub dbs: HashMap<u64, Arc<DB>>,
    /// SQL address of nodes 1 and 2.
    pub addrs: Vec<std::net::SocketAddr>,
    _stop: Vec<tokio::sync::oneshot::Sender<()>>,
}

pub async fn cluster() -> Cluster {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let net = Arc::new(Net::default());
    let mut dbs = HashMap::new();
    for id in 1..=3u64 {
        let engine = Arc::new(MemoryEngine::new());
        let clock = Clock::system(Duration::from_millis(250));
        if id == 1 {
            Store::bootstrap(engine.as_ref(), 1, clock.now(), Default::default()).unwrap();
        }
        let mut cfg = StoreConfig::new(id);
        cfg.tick = Duration::from_millis(20);
        let store = Store::start(
            cfg,
            engine,
            clock.clone(),
            Arc::new(Transport(net.clone())),
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
    let db1 = dbs[&1].clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = db1.ranges().await {
            if r.len() == 1 && r[0].replicas.iter().filter(|x| x.r#type == 0).count() == 3 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "range 1 never got 3 voters");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut addrs = Vec::new();
    let mut stop = Vec::new();
    for id in [1u64, 2] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        stop.push(tx);
        tokio::spawn(tessera_sql::serve(listener, dbs[&id].clone(), async move {
            let _ = rx.await;
        }));
    }
    Cluster {
        dbs,
        addrs,
        _stop: stop,
    }
}

pub async fn connect(addr: std::net::SocketAddr) -> Client {
    let conn_str = format!(
        "host={} port={} user=root dbname=defaultdb",
        addr.ip(),
        addr.port()
    );
    let (client, conn) = tokio_postgres::connect(&conn_str, NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// Rows of a simple query, as text.
pub async fn rows(c: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    c.simple_query(sql)
        .await
        .unwrap_or_else(|e| match e.as_db_error() {
            Some(d) => panic!("{sql}: {} {}", d.code().code(), d.message()),
            None => panic!("{sql}: {e}"),
        })
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).map(|s| s.to_string()))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// The rows flattened to `a|b;c|d` for compact asserts (NULL as `NULL`).
pub async fn flat(c: &Client, sql: &str) -> String {
    rows(c, sql)
        .await
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| v.unwrap_or_else(|| "NULL".into()))
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect::<Vec<_>>()
        .join(";")
}

pub async fn sqlstate(c: &Client, sql: &str) -> String {
    match c.simple_query(sql).await {
        Ok(_) => panic!("expected an error from {sql}"),
        Err(e) => e
            .code()
            .map(|c| c.code().to_string())
            .unwrap_or_else(|| format!("no SQLSTATE: {e}")),
    }
}
