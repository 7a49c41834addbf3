//! One chaos run: start the cluster, run the workload's clients and the
//! nemesis for the given time, heal, final reads, check, and write the run
//! folder:
//!
//! ```text
//! <out>/history.jsonl   one operation (register, register-kv) or one
//!                       transaction (bank, set, append) per line
//! <out>/nemesis.log     the faults, on the history's clock
//! <out>/n1.log ...      each node's log
//! <out>/verdict.txt     the checker's verdict, with explanations
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
use crate::nemesis::{self, Kind, Splits};
use crate::sqlwork::{self, Ids};
use crate::txn::{summarize, write_txns, Txn};
use crate::workload::{self, ClientConfig, Recorder};
use crate::{bank, elle, set};

/// The workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// Per-key read / write / compare-and-set over SQL, checked for
    /// linearizability.
    Register,
    /// The same over the KV API.
    RegisterKv,
    /// Transfers and read-alls: exact totals and serializability.
    Bank,
    /// Unique inserts: none lost, none invented.
    Set,
    /// Elle's list-append: G0, G1a, G1b, G1c, G-single, G2.
    Append,
}

impl Workload {
    /// Every workload.
    pub const ALL: [Workload; 5] = [
        Workload::Register,
        Workload::RegisterKv,
        Workload::Bank,
        Workload::Set,
        Workload::Append,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Register => "register",
            Workload::RegisterKv => "register-kv",
            Workload::Bank => "bank",
            Workload::Set => "set",
            Workload::Append => "append",
        }
    }

    /// The SQL workload, if it is one.
    pub fn sql(self) -> Option<sqlwork::Kind> {
        match self {
            Workload::Register => Some(sqlwork::Kind::Register),
            Workload::RegisterKv => None,
            Workload::Bank => Some(sqlwork::Kind::Bank),
            Workload::Set => Some(sqlwork::Kind::Set),
            Workload::Append => Some(sqlwork::Kind::Append),
        }
    }

    /// Whether the history is of register operations (else transactions).
    pub fn is_register(self) -> bool {
        matches!(self, Workload::Register | Workload::RegisterKv)
    }
}

/// Settings of a run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The workload.
    pub workload: Workload,
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
    /// Registers, accounts or lists.
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

/// The checker's verdict on a history.
#[derive(Debug, Default)]
pub struct Checked {
    /// Details, one finding per line.
    pub text: String,
    /// What is wrong (empty: nothing).
    pub problems: Vec<String>,
    /// A few numbers for the summary line.
    pub stats: String,
    /// Operations or transactions, and how many were ok / fail / info.
    pub counts: (usize, usize, usize, usize),
    /// Anomalies found (for the results table).
    pub anomalies: usize,
}

/// Checks a register history (linearizability per key).
pub fn check_ops(ops: &[Op], limit: usize) -> Checked {
    let mut c = Checked::default();
    let reports = linear::check(ops, limit);
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
        c.text.push_str(&format!(
            "{}: {} ops, {} configurations: {v}\n",
            r.key, r.ops, r.explored
        ));
    }
    if !bad.is_empty() {
        c.problems
            .push(format!("not linearizable: {}", bad.join(", ")));
    }
    if !unknown.is_empty() {
        c.problems
            .push(format!("checker gave up: {}", unknown.join(", ")));
    }
    c.anomalies = bad.len();
    let n = |o| ops.iter().filter(|op| op.outcome == o).count();
    c.counts = (
        ops.len(),
        n(Outcome::Ok),
        n(Outcome::Fail),
        n(Outcome::Info),
    );
    c.stats = format!(
        "linearizable={}/{}",
        reports.iter().filter(|r| r.verdict.is_ok()).count(),
        reports.len()
    );
    c
}

/// Checks a transactional history with `workload`'s checker.
pub fn check_txns(workload: Workload, txns: &[Txn], keys: usize) -> Checked {
    let mut c = Checked::default();
    let anomalies = match workload {
        Workload::Bank => {
            let r = bank::check(txns, keys as u64, sqlwork::BALANCE * keys as i64);
            c.stats = format!("read-alls={} edges={}", r.reads, r.edges);
            r.anomalies
        }
        Workload::Set => {
            let r = set::check(txns);
            c.stats = format!(
                "acked={} recovered={} final={}",
                r.acked, r.recovered, r.final_size
            );
            r.anomalies
        }
        Workload::Append => {
            let r = elle::check(txns);
            c.stats = format!("keys={} edges={}", r.keys, r.edges);
            r.anomalies
        }
        Workload::Register | Workload::RegisterKv => Vec::new(),
    };
    for a in &anomalies {
        c.text.push_str(&format!("{}: {}\n", a.name, a.explanation));
    }
    if !anomalies.is_empty() {
        c.problems
            .push(format!("anomalies: {}", summarize(&anomalies)));
    } else {
        c.text.push_str("no anomalies\n");
    }
    c.anomalies = anomalies.len();
    let n = |o| txns.iter().filter(|t| t.outcome == o).count();
    c.counts = (
        txns.len(),
        n(Outcome::Ok),
        n(Outcome::Fail),
        n(Outcome::Info),
    );
    // Why transactions failed, most common first: shows e.g. how many
    // were cross-range (0A000) or retries (40001).
    let mut why: std::collections::BTreeMap<String, usize> = Default::default();
    for t in txns.iter().filter(|t| t.outcome != Outcome::Ok) {
        let e = t.error.clone().unwrap_or_default();
        let code = e.split(':').next().unwrap_or("").to_string();
        *why.entry(code).or_default() += 1;
    }
    let mut why: Vec<(String, usize)> = why.into_iter().collect();
    why.sort_by_key(|w| std::cmp::Reverse(w.1));
    for (e, n) in why.iter().take(8) {
        c.text.push_str(&format!("not ok: {n} x {e}\n"));
    }
    c
}

/// Runs the workload; errors are setup failures (no verdict).
pub async fn run(cfg: &Config) -> Result<RunResult, String> {
    std::fs::create_dir_all(&cfg.out).map_err(|e| format!("{}: {e}", cfg.out.display()))?;
    let proxied = matches!(cfg.nemesis, Kind::Partition | Kind::All);
    let cluster = Cluster::start(&cfg.bin, cfg.nodes, &cfg.out, proxied).await?;
    let addrs = cluster.addrs();
    let sql_addrs = cluster.sql_addrs();
    let cluster = Arc::new(AsyncMutex::new(cluster));
    let rec = Arc::new(Recorder::new());
    let log = Arc::new(nemesis::Log::default());
    let stop = Arc::new(AtomicBool::new(false));
    let ids = Arc::new(Ids::default());

    let mut splits = Splits::default();
    let mut clients = Vec::new();
    match cfg.workload.sql() {
        None => {
            splits.keys = (0..cfg.keys).map(workload::register_key).collect();
            let ccfg = ClientConfig {
                keys: cfg.keys,
                op_timeout: cfg.op_timeout,
                think: cfg.think,
            };
            for c in 0..cfg.clients {
                clients.push(tokio::spawn(workload::run_client(
                    cfg.seed.wrapping_mul(1000).wrapping_add(c as u64),
                    addrs.clone(),
                    ccfg.clone(),
                    rec.clone(),
                    stop.clone(),
                )));
            }
        }
        Some(kind) => {
            sqlwork::setup(
                &sql_addrs,
                &sqlwork::schema(kind, cfg.keys),
                Duration::from_secs(60),
            )
            .await?;
            splits.statements = sqlwork::split_statements(kind, cfg.keys);
            splits.sql_addrs = sql_addrs.clone();
            let scfg = sqlwork::Config {
                kind,
                keys: cfg.keys,
                op_timeout: cfg.op_timeout,
                think: cfg.think,
            };
            for c in 0..cfg.clients {
                clients.push(tokio::spawn(sqlwork::run_client(
                    cfg.seed.wrapping_mul(1000).wrapping_add(c as u64),
                    sql_addrs.clone(),
                    scfg.clone(),
                    rec.clone(),
                    ids.clone(),
                    stop.clone(),
                )));
            }
        }
    }
    let nem = tokio::spawn(nemesis::run(
        cfg.nemesis,
        cfg.seed,
        splits,
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

    // Heal, let the cluster settle, then read everything.
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
    let unread = match cfg.workload.sql() {
        None => workload::final_reads(&addrs, cfg.keys, &rec, Duration::from_secs(30)).await,
        Some(kind) => {
            sqlwork::final_reads(&sql_addrs, kind, cfg.keys, &rec, Duration::from_secs(60))
                .await
                .err()
                .into_iter()
                .collect()
        }
    };
    crashes.extend(cluster.lock().await.crashed());
    for line in log.lines() {
        if let Some(c) = line.split("CRASH: ").nth(1) {
            crashes.push(c.to_string());
        }
    }
    drop(cluster); // stops the processes

    write_lines(&cfg.out.join("nemesis.log"), &log.lines())?;
    let history = cfg.out.join("history.jsonl");
    let mut checked = if cfg.workload.is_register() {
        let ops = rec.ops();
        write_history(&history, &ops).map_err(|e| e.to_string())?;
        check_ops(&ops, cfg.limit)
    } else {
        let txns = rec.txns();
        write_txns(&history, &txns).map_err(|e| e.to_string())?;
        check_txns(cfg.workload, &txns, cfg.keys)
    };
    if !crashes.is_empty() {
        checked
            .problems
            .push(format!("crashed: {}", crashes.join("; ")));
    }
    if let Err(e) = &settled {
        checked.problems.push(format!("did not recover: {e}"));
    }
    if !unread.is_empty() {
        checked
            .problems
            .push(format!("final reads failed: {}", unread.join(", ")));
    }
    let mut verdict = checked.text.clone();
    for p in &checked.problems {
        verdict.push_str(&format!("problem: {p}\n"));
    }
    let pass = checked.problems.is_empty();
    let (n, ok, fail, info) = checked.counts;
    let summary = format!(
        "{} nemesis={} nodes={} clients={} keys={} time={}s seed={} ops={n} (ok {ok}, fail {fail}, info {info}) {} anomalies={} out={}{} {}",
        cfg.workload.name(),
        cfg.nemesis.name(),
        cfg.nodes,
        cfg.clients,
        cfg.keys,
        cfg.time.as_secs(),
        cfg.seed,
        checked.stats,
        checked.anomalies,
        cfg.out.display(),
        if pass {
            String::new()
        } else {
            format!(" [{}]", checked.problems.join("; "))
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
