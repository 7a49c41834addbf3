//! The nemesis: faults injected into the running cluster, each followed by
//! a recovery window (3-6 s without faults). `kill` = kill -9 one node,
//! restart it 2-4 s later; `pause` = SIGSTOP one node for 3-6 s, then
//! SIGCONT; `partition` = cut the network between nodes for 3-8 s (halves,
//! one node isolated, majority ring or bridge; see [`crate::net`]);
//! `clock` = restart one node with its wall clock 40-120 ms ahead or behind
//! (libfaketime; below the default 250 ms max offset) for 4-8 s, then
//! restart it with the true clock; `shuffle` = a range split, two lease
//! transfers to random nodes and, every other time, a replica move (see
//! [`move_replica`]); `all` = a random mix. At most one fault at a
//! time, so a majority stays available outside partitions. Every action is
//! logged with the run's clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tessera_common::proto::{
    kv_error, kv_request, ChangeReplicasRequest, KvRequest, RangeDescriptor, SplitRequest,
    TransferLeaseRequest,
};
use tokio::sync::Mutex as AsyncMutex;

use crate::cluster::{connect, Cluster};
use crate::history::secs;
use crate::net::{cut, Shape};
use crate::workload::Recorder;

/// Which faults to inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// No faults.
    None,
    /// kill -9 and restart.
    Kill,
    /// SIGSTOP / SIGCONT.
    Pause,
    /// Network partitions between nodes.
    Partition,
    /// Wall clock skew below the max offset.
    Clock,
    /// Range splits and lease transfers.
    #[value(alias = "split")]
    Shuffle,
    /// A random mix of the above.
    All,
}

/// Where the shuffle nemesis splits.
#[derive(Clone, Debug, Default)]
pub struct Splits {
    /// Raw keys (the KV register workload).
    pub keys: Vec<String>,
    /// `ALTER TABLE ... SPLIT AT` statements (the SQL workloads).
    pub statements: Vec<String>,
    /// SQL addresses to run the statements on.
    pub sql_addrs: Vec<String>,
}

impl Kind {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Kind::None => "none",
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::Partition => "partition",
            Kind::Clock => "clock",
            Kind::Shuffle => "shuffle",
            Kind::All => "all",
        }
    }
}

/// A timestamped log of nemesis actions.
#[derive(Default)]
pub struct Log {
    lines: Mutex<Vec<String>>,
}

impl Log {
    fn add(&self, rec: &Recorder, what: String) {
        let line = format!("{} {what}", secs(rec.now_ns()));
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }

    /// The lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Sleeps `d` or until `stop` is set; false if stopped.
async fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let step = Duration::from_millis(100);
    let mut left = d;
    while !left.is_zero() {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let s = left.min(step);
        tokio::time::sleep(s).await;
        left -= s;
    }
    !stop.load(Ordering::Relaxed)
}

fn ms(rng: &mut StdRng, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(rng.random_range(lo..=hi))
}

/// Runs the nemesis until `stop` is set; leaves the cluster as it is (the
/// caller heals it).
pub async fn run(
    kind: Kind,
    seed: u64,
    splits: Splits,
    cluster: Arc<AsyncMutex<Cluster>>,
    rec: Arc<Recorder>,
    log: Arc<Log>,
    stop: Arc<AtomicBool>,
) {
    if kind == Kind::None {
        return;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let n = cluster.lock().await.nodes.len();
    loop {
        // Healthy window.
        let quiet = if kind == Kind::Shuffle {
            ms(&mut rng, 1000, 3000)
        } else {
            ms(&mut rng, 3000, 6000)
        };
        if !sleep_unless(&stop, quiet).await {
            return;
        }
        let action = match kind {
            Kind::All => [
                Kind::Kill,
                Kind::Pause,
                Kind::Partition,
                Kind::Clock,
                Kind::Shuffle,
            ][rng.random_range(0..5)],
            k => k,
        };
        let i = rng.random_range(0..n);
        match action {
            Kind::Kill => {
                cluster.lock().await.kill(i);
                log.add(&rec, format!("kill -9 n{}", i + 1));
                sleep_unless(&stop, ms(&mut rng, 2000, 4000)).await;
                let r = cluster.lock().await.restart(i).await;
                log.add(&rec, format!("restart n{}: {}", i + 1, result(&r)));
            }
            Kind::Pause => {
                let r = cluster.lock().await.pause(i);
                log.add(&rec, format!("pause n{}: {}", i + 1, result(&r)));
                sleep_unless(&stop, ms(&mut rng, 3000, 6000)).await;
                let r = cluster.lock().await.resume(i);
                log.add(&rec, format!("resume n{}: {}", i + 1, result(&r)));
            }
            Kind::Partition => {
                let shape = Shape::ALL[rng.random_range(0..Shape::ALL.len())];
                let mut perm: Vec<usize> = (0..n).collect();
                perm.shuffle(&mut rng);
                let c = cut(shape, &perm);
                let r = cluster.lock().await.partition(&c);
                log.add(
                    &rec,
                    format!(
                        "partition {} {}: {}",
                        shape.name(),
                        describe_cut(n, &c),
                        result(&r)
                    ),
                );
                sleep_unless(&stop, ms(&mut rng, 3000, 8000)).await;
                let r = cluster.lock().await.partition(&Default::default());
                log.add(&rec, format!("heal partition: {}", result(&r)));
            }
            Kind::Clock => {
                let off = rng.random_range(40..=120);
                let sign = if rng.random_range(0..2) == 0 {
                    '+'
                } else {
                    '-'
                };
                let offset = format!("{sign}0.{off:03}s");
                let r = cluster
                    .lock()
                    .await
                    .restart_with_clock(i, Some(offset.clone()))
                    .await;
                log.add(
                    &rec,
                    format!("restart n{} with clock {offset}: {}", i + 1, result(&r)),
                );
                sleep_unless(&stop, ms(&mut rng, 4000, 8000)).await;
                let r = cluster.lock().await.restart_with_clock(i, None).await;
                log.add(
                    &rec,
                    format!("restart n{} with the true clock: {}", i + 1, result(&r)),
                );
            }
            Kind::Shuffle => shuffle(&mut rng, i, &splits, &cluster, &rec, &log).await,
            Kind::None | Kind::All => {}
        }
        let crashed = cluster.lock().await.crashed();
        for c in crashed {
            log.add(&rec, format!("CRASH: {c}"));
        }
    }
}

/// One split (a statement or a raw key), two lease transfers of random
/// ranges to random nodes and, half the time, a replica move.
async fn shuffle(
    rng: &mut StdRng,
    i: usize,
    splits: &Splits,
    cluster: &AsyncMutex<Cluster>,
    rec: &Recorder,
    log: &Log,
) {
    let (addr, ids) = {
        let c = cluster.lock().await;
        (c.nodes[i].addr.clone(), c.ids.clone())
    };
    if !splits.statements.is_empty() && !splits.sql_addrs.is_empty() {
        let stmt = &splits.statements[rng.random_range(0..splits.statements.len())];
        let r = sql_exec(&splits.sql_addrs[i % splits.sql_addrs.len()], stmt).await;
        log.add(rec, format!("{stmt} via n{}: {}", i + 1, result(&r)));
    } else if !splits.keys.is_empty() {
        let at = format!(
            "{}{}",
            splits.keys[rng.random_range(0..splits.keys.len())],
            ["", "/", "0"][rng.random_range(0..3)]
        );
        let r = admin(
            &addr,
            kv_request::Op::Split(SplitRequest {
                split_key: at.clone().into_bytes(),
            }),
        )
        .await;
        log.add(
            rec,
            format!("split at {at:?} via n{}: {}", i + 1, result(&r)),
        );
    }
    let ranges = cluster.lock().await.ranges(i).await;
    let ranges = match ranges {
        Ok(r) if !r.is_empty() => r,
        Ok(_) => return,
        Err(e) => {
            log.add(rec, format!("list ranges via n{}: error: {e}", i + 1));
            return;
        }
    };
    for _ in 0..2 {
        let Some(d) = ranges[rng.random_range(0..ranges.len())].descriptor.clone() else {
            continue;
        };
        let target = ids[rng.random_range(0..ids.len())];
        let r = admin(
            &addr,
            kv_request::Op::TransferLease(TransferLeaseRequest {
                target_node: target,
                key: d.start_key.clone(),
            }),
        )
        .await;
        log.add(
            rec,
            format!(
                "transfer lease of range {} to node id {target} via n{}: {}",
                d.range_id,
                i + 1,
                result(&r)
            ),
        );
    }
    if rng.random_bool(0.5) {
        if let Some(d) = ranges[rng.random_range(0..ranges.len())].descriptor.clone() {
            move_replica(rng, &addr, i, &ids, &d, rec, log).await;
        }
    }
}

/// Moves one replica of range `d`: to a node without one, from a random
/// holder (add, then remove); when every node holds one (3 nodes, 3
/// replicas), a random node's replica is removed and added back (a fresh
/// replica, filled by snapshot). The add is retried for up to 20 s, so
/// the range is back to full strength before the next fault.
async fn move_replica(
    rng: &mut StdRng,
    addr: &str,
    i: usize,
    ids: &[u64],
    d: &RangeDescriptor,
    rec: &Recorder,
    log: &Log,
) {
    let holders: Vec<u64> = d.replicas.iter().map(|r| r.node_id).collect();
    if holders.is_empty() {
        return;
    }
    let change = |node_id: u64, remove: bool| {
        admin(
            addr,
            kv_request::Op::ChangeReplicas(ChangeReplicasRequest {
                node_id,
                remove,
                key: d.start_key.clone(),
            }),
        )
    };
    let spare: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|n| !holders.contains(n))
        .collect();
    let from = holders[rng.random_range(0..holders.len())];
    let to = if spare.is_empty() {
        from
    } else {
        spare[rng.random_range(0..spare.len())]
    };
    if to != from {
        let r = change(to, false).await;
        log.add(
            rec,
            format!(
                "add a replica of range {} on node id {to} via n{}: {}",
                d.range_id,
                i + 1,
                result(&r)
            ),
        );
        if r.is_err() {
            return;
        }
    }
    let r = change(from, true).await;
    log.add(
        rec,
        format!(
            "remove the replica of range {} on node id {from} via n{}: {}",
            d.range_id,
            i + 1,
            result(&r)
        ),
    );
    // A refused removal changed nothing; one that timed out may have
    // happened, so the replica is added back then too.
    if to != from || r.as_ref().is_err_and(|e| e.starts_with("bad request")) {
        return;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = change(from, false).await;
        let refused = r.as_ref().is_err_and(|e| e.starts_with("bad request"));
        if r.is_ok() || refused || tokio::time::Instant::now() > deadline {
            log.add(
                rec,
                format!(
                    "add the replica of range {} on node id {from} back via n{}: {}",
                    d.range_id,
                    i + 1,
                    result(&r)
                ),
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Runs one statement on the node at `addr`.
async fn sql_exec(addr: &str, stmt: &str) -> Result<(), String> {
    let c = crate::sqlwork::connect(addr, Duration::from_secs(2)).await?;
    tokio::time::timeout(Duration::from_secs(10), c.batch_execute(stmt))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        })
}

/// `{n1 n2} | {n3}`-style: for each node, the nodes it cannot reach.
fn describe_cut(n: usize, cut: &std::collections::BTreeSet<(usize, usize)>) -> String {
    let mut parts = Vec::new();
    for a in 0..n {
        let cant: Vec<String> = (0..n)
            .filter(|b| cut.contains(&(a, *b)))
            .map(|b| format!("n{}", b + 1))
            .collect();
        if !cant.is_empty() {
            parts.push(format!("n{}-x-{{{}}}", a + 1, cant.join(" ")));
        }
    }
    parts.join(" ")
}

fn result(r: &Result<(), String>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => format!("error: {e}"),
    }
}

/// One admin operation through the client-facing service.
async fn admin(addr: &str, op: kv_request::Op) -> Result<(), String> {
    let mut c = tokio::time::timeout(Duration::from_secs(2), connect(addr))
        .await
        .map_err(|_| "connect timed out".to_string())??;
    let resp = tokio::time::timeout(
        Duration::from_secs(10),
        c.client_kv(KvRequest {
            range_id: 0,
            timestamp: None,
            op: Some(op),
            ..Default::default()
        }),
    )
    .await
    .map_err(|_| "timed out".to_string())?
    .map_err(|s| s.message().to_string())?
    .into_inner();
    match resp.error.and_then(|e| e.kind) {
        None => Ok(()),
        Some(kv_error::Kind::BadRequest(m)) => Err(format!("bad request: {m}")),
        Some(k) => Err(format!("{k:?}")),
    }
}
