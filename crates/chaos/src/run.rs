//! One chaos run: start the cluster, run the workload's clients and the
//! nemesis for the given time, heal, final reads, check, and write the run
//! folder:
//!
//! ```text
//! <out>/history.jsonl   one operation per line (see `history`)
//! <out>/nemesis.log     the faults, on the history's clock
//! <out>/n1.log ...      each node's log
//! <out>/verdict.txt     the checker's verdict per key, with explanations
//! <out>/summary.txt     the one-line summary (also printed)
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex as AsyncMutex;

use crate::cluster::Cluster;
use crate::history::{write_history, Op, Outcome};
use crate::linear::{self, Verdict};
use crate::nemesis::{self, Kind};
use crate::workload::{self, ClientConfig, Recorder};

/// Settings of a run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The `tessera` binary.
    pub bin: PathBuf,
    /// Run folder.
    pub out: PathBuf,
    /// Faults.
    pub nemesis: Kind,
    /// How long clients run.
    pub time: Duration,
    /// Processes in the cluster.
    pub nodes: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Registers.
    pub keys: usize,
    /// Client operation timeout.
    pub op_timeout: Duration,
    /// Max pause between two operations of a client.
    pub think: Duration,
    /// Seed of clients' and nemesis' choices.
    pub seed: u64,
    /// Checker limit (configurations per key).
    pub limit: usize,
}

/// The result of a run.
#[derive(Debug)]
pub struct RunResult {
    /// True if the history is linearizable and nothing crashed.
    pub pass: bool,
    /// The one-line summary (ends in PASS or FAIL).
    pub summary: String,
}

/// Counts of outcomes.
fn counts(ops: &[Op]) -> (usize, usize, usize) {
    let n = |o| ops.iter().filter(|op| op.outcome == o).count();
    (n(Outcome::Ok), n(Outcome::Fail), n(Outcome::Info))
}

/// Runs the workload; errors are setup failures (no verdict).
pub async fn run(cfg: &Config) -> Result<RunResult, String> {
    std::fs::create_dir_all(&cfg.out).map_err(|e| format!("{}: {e}", cfg.out.display()))?;
    let cluster = Cluster::start(&cfg.bin, cfg.nodes, &cfg.out).await?;
    let addrs = cluster.addrs();
    let cluster = Arc::new(AsyncMutex::new(cluster));
    let rec = Arc::new(Recorder::new());
    let log = Arc::new(nemesis::Log::default());
    let stop = Arc::new(AtomicBool::new(false));

    let ccfg = ClientConfig {
        keys: cfg.keys,
        op_timeout: cfg.op_timeout,
        think: cfg.think,
    };
    let mut clients = Vec::new();
    for c in 0..cfg.clients {
        clients.push(tokio::spawn(workload::run_client(
            cfg.seed.wrapping_mul(1000).wrapping_add(c as u64),
            addrs.clone(),
            ccfg.clone(),
            rec.clone(),
            stop.clone(),
        )));
    }
    let nem = tokio::spawn(nemesis::run(
        cfg.nemesis,
        cfg.seed,
        cfg.keys,
        cluster.clone(),
        rec.clone(),
        log.clone(),
        stop.clone(),
    ));
    tokio::time::sleep(cfg.time).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }
    let _ = nem.await;

    // Heal, let the cluster settle, then read every register.
    let mut crashes = cluster.lock().await.crashed();
    let healed = cluster.lock().await.heal().await;
    let settled = match &healed {
        Ok(()) => {
            cluster
                .lock()
                .await
                .wait_replicated(cfg.nodes.min(3), Duration::from_secs(30))
                .await
        }
        Err(e) => Err(e.clone()),
    };
    let unread = workload::final_reads(&addrs, cfg.keys, &rec, Duration::from_secs(30)).await;
    crashes.extend(cluster.lock().await.crashed());
    for line in log.lines() {
        if let Some(c) = line.split("CRASH: ").nth(1) {
            crashes.push(c.to_string());
        }
    }
    drop(cluster); // stops the processes

    let ops = rec.ops();
    write_history(&cfg.out.join("history.jsonl"), &ops).map_err(|e| e.to_string())?;
    write_lines(&cfg.out.join("nemesis.log"), &log.lines())?;

    let reports = linear::check(&ops, cfg.limit);
    let mut verdict = String::new();
    let mut bad = Vec::new();
    let mut unknown = Vec::new();
    for r in &reports {
        let v = match &r.verdict {
            Verdict::Linearizable => "linearizable".to_string(),
            Verdict::Violation(e) => {
                bad.push(r.key.clone());
                e.clone()
            }
            Verdict::Unknown(e) => {
                unknown.push(r.key.clone());
                format!("unknown: {e}")
            }
        };
        verdict.push_str(&format!(
            "{}: {} ops, {} configurations: {v}\n",
            r.key, r.ops, r.explored
        ));
    }
    let mut problems = Vec::new();
    if !bad.is_empty() {
        problems.push(format!("not linearizable: {}", bad.join(", ")));
    }
    if !unknown.is_empty() {
        problems.push(format!("checker gave up: {}", unknown.join(", ")));
    }
    if !crashes.is_empty() {
        problems.push(format!("crashed: {}", crashes.join("; ")));
    }
    if let Err(e) = &settled {
        problems.push(format!("did not recover: {e}"));
    }
    if !unread.is_empty() {
        problems.push(format!("final reads failed: {}", unread.join(", ")));
    }
    for p in &problems {
        verdict.push_str(&format!("problem: {p}\n"));
    }
    let pass = problems.is_empty();
    let (ok, fail, info) = counts(&ops);
    let summary = format!(
        "register nemesis={} nodes={} clients={} keys={} time={}s seed={} ops={} (ok {ok}, fail {fail}, info {info}) linearizable={}/{} out={}{} {}",
        cfg.nemesis.name(),
        cfg.nodes,
        cfg.clients,
        cfg.keys,
        cfg.time.as_secs(),
        cfg.seed,
        ops.len(),
        reports.iter().filter(|r| r.verdict.is_ok()).count(),
        reports.len(),
        cfg.out.display(),
        if problems.is_empty() {
            String::new()
        } else {
            format!(" [{}]", problems.join("; "))
        },
        if pass { "PASS" } else { "FAIL" }
    );
    verdict.push_str(&summary);
    verdict.push('\n');
    std::fs::write(cfg.out.join("verdict.txt"), &verdict).map_err(|e| e.to_string())?;
    std::fs::write(cfg.out.join("summary.txt"), format!("{summary}\n"))
        .map_err(|e| e.to_string())?;
    Ok(RunResult { pass, summary })
}

fn write_lines(path: &Path, lines: &[String]) -> Result<(), String> {
    let mut s = lines.join("\n");
    s.push('\n');
    std::fs::write(path, s).map_err(|e| format!("{}: {e}", path.display()))
}
