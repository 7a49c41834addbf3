//! The nemesis: faults injected into the running cluster, each followed by
//! a recovery window. `kill` = kill -9 one node, restart it a few seconds
//! later; `pause` = SIGSTOP one node for 3-6 s, then SIGCONT; `split` =
//! split ranges at random keys and move leases to random nodes; `all` = a
//! random mix. At most one node is down or paused at a time, so a majority
//! stays available. Every action is logged with the run's clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tessera_common::proto::{kv_error, kv_request, KvRequest, SplitRequest, TransferLeaseRequest};
use tokio::sync::Mutex as AsyncMutex;

use crate::cluster::{connect, Cluster};
use crate::history::secs;
use crate::workload::{register_key, Recorder};

/// Which faults to inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// No faults.
    None,
    /// kill -9 and restart.
    Kill,
    /// SIGSTOP / SIGCONT.
    Pause,
    /// Range splits and lease transfers.
    Split,
    /// A random mix of the above.
    All,
}

impl Kind {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Kind::None => "none",
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::Split => "split",
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
    keys: usize,
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
        let quiet = if kind == Kind::Split {
            ms(&mut rng, 1000, 3000)
        } else {
            ms(&mut rng, 3000, 6000)
        };
        if !sleep_unless(&stop, quiet).await {
            return;
        }
        let action = match kind {
            Kind::All => [Kind::Kill, Kind::Pause, Kind::Split][rng.random_range(0..3)],
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
            Kind::Split => {
                let (addr, ids) = {
                    let c = cluster.lock().await;
                    (c.nodes[i].addr.clone(), c.ids.clone())
                };
                let at = format!(
                    "{}{}",
                    register_key(rng.random_range(0..keys)),
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
                    &rec,
                    format!("split at {at:?} via n{}: {}", i + 1, result(&r)),
                );
                let key = register_key(rng.random_range(0..keys));
                let target = ids[rng.random_range(0..ids.len())];
                let r = admin(
                    &addr,
                    kv_request::Op::TransferLease(TransferLeaseRequest {
                        target_node: target,
                        key: key.clone().into_bytes(),
                    }),
                )
                .await;
                log.add(
                    &rec,
                    format!(
                        "transfer lease of {key:?} to node id {target} via n{}: {}",
                        i + 1,
                        result(&r)
                    ),
                );
            }
            Kind::None | Kind::All => {}
        }
        let crashed = cluster.lock().await.crashed();
        for c in crashed {
            log.add(&rec, format!("CRASH: {c}"));
        }
    }
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
