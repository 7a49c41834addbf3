//! The workloads over SQL (tokio-postgres to each node's `--sql-addr`):
//!
//! - `register`: `register(k, v)`; read, write (upsert) and compare-and-set
//!   (`UPDATE ... WHERE v = expected`, or `INSERT ... ON CONFLICT DO
//!   NOTHING` from nil) recorded as [`crate::history::Op`]s for the
//!   linearizability checker;
//! - `bank`: `accounts(id, bal, ver)`; transfers (BEGIN, read both rows,
//!   update both with the transaction's id as `ver`, COMMIT) and read-alls;
//! - `set`: `elements(v)`; unique inserts, a final read;
//! - `append`: `lists(k, v)` with `v` a comma-separated text list;
//!   transactions of 1-4 reads and appends (`INSERT ... ON CONFLICT DO
//!   UPDATE SET v = lists.v || ',' || ...`).
//!
//! Outcome rules. A transaction that failed before COMMIT was sent is `fail`
//! (nothing commits without it; the connection is dropped). An error of a
//! COMMIT or of a single-statement write is `fail` only for SQLSTATEs that
//! say nothing was applied ([`definite`]: 40001 retry, 40P01, 0A000 a
//! cross-range transaction, 23505, 53300, 25P02, syntax and data errors),
//! otherwise `info`; a timeout or a lost connection is `info`. A read-only
//! operation that errs is `fail` (it changed nothing).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::history::{Call, Op, Outcome, Value};
use crate::txn::{Mop, Txn};
use crate::workload::{Recorder, VALUES};

/// Which SQL workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Per-key read / write / cas.
    Register,
    /// Transfers and read-alls.
    Bank,
    /// Unique inserts.
    Set,
    /// Elle's list-append.
    Append,
}

/// Workload settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Which workload.
    pub kind: Kind,
    /// Registers, accounts or lists.
    pub keys: usize,
    /// Give up on an operation after this long.
    pub op_timeout: Duration,
    /// Max pause between two operations of a client.
    pub think: Duration,
}

/// Initial balance of each bank account.
pub const BALANCE: i64 = 100;

/// The schema (and initial rows) of a workload.
pub fn schema(kind: Kind, keys: usize) -> Vec<String> {
    match kind {
        Kind::Register => vec!["CREATE TABLE register (k INT PRIMARY KEY, v INT)".into()],
        Kind::Bank => {
            let rows: Vec<String> = (0..keys).map(|i| format!("({i}, {BALANCE}, 0)")).collect();
            vec![
                "CREATE TABLE accounts (id INT PRIMARY KEY, bal BIGINT NOT NULL, ver BIGINT NOT NULL)"
                    .into(),
                format!("INSERT INTO accounts VALUES {}", rows.join(", ")),
            ]
        }
        Kind::Set => vec!["CREATE TABLE elements (v BIGINT PRIMARY KEY)".into()],
        Kind::Append => vec!["CREATE TABLE lists (k INT PRIMARY KEY, v TEXT)".into()],
    }
}

/// `ALTER TABLE ... SPLIT AT` statements the shuffle nemesis picks from.
pub fn split_statements(kind: Kind, keys: usize) -> Vec<String> {
    let table = match kind {
        Kind::Register => "register",
        Kind::Bank => "accounts",
        Kind::Set => "elements",
        Kind::Append => "lists",
    };
    let points: Vec<u64> = match kind {
        Kind::Set => (1..=8).map(|i| i * 500).collect(),
        _ => (1..keys as u64).collect(),
    };
    points
        .into_iter()
        .map(|p| format!("ALTER TABLE {table} SPLIT AT VALUES ({p})"))
        .collect()
}

/// Connects to `addr` (host:port), giving up after `timeout`.
pub async fn connect(addr: &str, timeout: Duration) -> Result<Client, String> {
    let url = format!("postgres://root@{addr}/defaultdb?connect_timeout=2");
    let (client, conn) = tokio::time::timeout(timeout, tokio_postgres::connect(&url, NoTls))
        .await
        .map_err(|_| format!("{addr}: connect timed out"))?
        .map_err(|e| format!("{addr}: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Runs `stmts` on some node until they succeed (setup), within `timeout`.
/// A statement that answers "already exists" counts as done (an earlier
/// attempt applied it).
pub async fn setup(addrs: &[String], stmts: &[String], timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    for (i, s) in stmts.iter().enumerate() {
        let mut node = i;
        loop {
            if Instant::now() > deadline {
                return Err(format!("setup {s:?}: {last}"));
            }
            let addr = &addrs[node % addrs.len()];
            node += 1;
            match connect(addr, Duration::from_secs(3)).await {
                Ok(c) => {
                    match tokio::time::timeout(Duration::from_secs(10), c.batch_execute(s)).await {
                        Ok(Ok(())) => break,
                        Ok(Err(e)) if e.code().map(|c| c.code()) == Some("42P07") => break,
                        Ok(Err(e)) if e.code().map(|c| c.code()) == Some("23505") => break,
                        Ok(Err(e)) => last = e.to_string(),
                        Err(_) => last = "timed out".into(),
                    }
                }
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    Ok(())
}

/// SQLSTATEs after which a statement or COMMIT definitely applied nothing.
pub fn definite(code: &str) -> bool {
    matches!(
        code,
        "40001" | "40P01" | "0A000" | "23505" | "53300" | "25P02"
    ) || code.starts_with("42")
        || code.starts_with("22")
}

/// What an error says about a write: `(outcome, description)`.
fn classify(e: &tokio_postgres::Error) -> (Outcome, String) {
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            let o = if definite(code) {
                Outcome::Fail
            } else {
                Outcome::Info
            };
            (o, format!("{code}: {}", db.message()))
        }
        None => (Outcome::Info, format!("connection: {e}")),
    }
}

/// An error of one step: a timeout or the driver's error.
enum StepError {
    Timeout,
    Sql(tokio_postgres::Error),
}

impl StepError {
    fn describe(&self) -> String {
        match self {
            StepError::Timeout => "timeout".into(),
            StepError::Sql(e) => classify(e).1,
        }
    }

    /// The outcome if this step was the commit point.
    fn at_commit(&self) -> Outcome {
        match self {
            StepError::Timeout => Outcome::Info,
            StepError::Sql(e) => classify(e).0,
        }
    }
}

/// Rows (as text columns) and the affected-row count of one statement.
struct Answer {
    rows: Vec<Vec<Option<String>>>,
    affected: u64,
}

async fn query(c: &Client, sql: &str, timeout: Duration) -> Result<Answer, StepError> {
    let msgs = tokio::time::timeout(timeout, c.simple_query(sql))
        .await
        .map_err(|_| StepError::Timeout)?
        .map_err(StepError::Sql)?;
    let mut a = Answer {
        rows: Vec::new(),
        affected: 0,
    };
    for m in msgs {
        match m {
            SimpleQueryMessage::Row(r) => {
                a.rows
                    .push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
            }
            SimpleQueryMessage::CommandComplete(n) => a.affected = n,
            _ => {}
        }
    }
    Ok(a)
}

fn int(s: &Option<String>) -> Option<i64> {
    s.as_deref().and_then(|s| s.trim().parse().ok())
}

/// Parses a list column: NULL or "" is empty; garbage maps to `u64::MAX`
/// (no append writes it, so the checker reports a phantom).
pub fn parse_list(s: Option<&str>) -> Vec<u64> {
    match s {
        None | Some("") => Vec::new(),
        Some(s) => s
            .split(',')
            .map(|x| x.trim().parse().unwrap_or(u64::MAX))
            .collect(),
    }
}

/// Shared counters of a run: unique values and transaction ids.
#[derive(Default)]
pub struct Ids {
    next: AtomicU64,
}

impl Ids {
    /// A fresh id (1, 2, ...).
    pub fn next(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Runs one client until `stop` is set.
pub async fn run_client(
    seed: u64,
    addrs: Vec<String>,
    cfg: Config,
    rec: Arc<Recorder>,
    ids: Arc<Ids>,
    stop: Arc<AtomicBool>,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut conns: Vec<Option<Client>> = (0..addrs.len()).map(|_| None).collect();
    let mut process = rec.process();
    while !stop.load(Ordering::Relaxed) {
        let node = rng.random_range(0..addrs.len());
        if conns[node].as_ref().is_none_or(|c| c.is_closed()) {
            match connect(&addrs[node], Duration::from_secs(1)).await {
                Ok(c) => conns[node] = Some(c),
                Err(_) => {
                    conns[node] = None;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let Some(client) = conns[node].as_ref() else {
            continue;
        };
        let (outcome, drop_conn) = match cfg.kind {
            Kind::Register => {
                let op = register_op(client, &mut rng, &cfg, &rec, process, node).await;
                let r = (
                    op.outcome,
                    op.error.as_deref().is_some_and(|e| e != CONDITION_FAILED),
                );
                rec.push(op);
                r
            }
            _ => {
                let t = txn(client, &mut rng, &cfg, &rec, &ids, process, node).await;
                let r = (t.outcome, t.error.is_some());
                rec.push_txn(t);
                r
            }
        };
        if outcome == Outcome::Info {
            process = rec.process();
        }
        if drop_conn {
            // After any error start from a fresh session (no transaction
            // left open, no request of ours still in flight on it).
            conns[node] = None;
        }
        if !cfg.think.is_zero() {
            let ms = rng.random_range(0..=cfg.think.as_millis() as u64);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }
}

/// The error of a cas whose condition did not hold (an answer, not a
/// problem of the session).
const CONDITION_FAILED: &str = "condition failed";

/// The key of register `k` in the history.
fn reg_key(k: u64) -> String {
    format!("register/{k}")
}

async fn register_op(
    c: &Client,
    rng: &mut StdRng,
    cfg: &Config,
    rec: &Recorder,
    process: u64,
    node: usize,
) -> Op {
    let k = rng.random_range(0..cfg.keys as u64);
    let call = match rng.random_range(0..3) {
        0 => Call::Read,
        1 => Call::Write {
            value: rng.random_range(0..VALUES),
        },
        _ => Call::Cas {
            expected: if rng.random_range(0..6) == 0 {
                None
            } else {
                Some(rng.random_range(0..VALUES))
            },
            new: rng.random_range(0..VALUES),
        },
    };
    register_call(c, rec, process, node, k, call, cfg.op_timeout).await
}

/// One register operation over SQL.
pub async fn register_call(
    c: &Client,
    rec: &Recorder,
    process: u64,
    node: usize,
    k: u64,
    call: Call,
    timeout: Duration,
) -> Op {
    let sql = match call {
        Call::Read => format!("SELECT v FROM register WHERE k = {k}"),
        Call::Write { value } => format!(
            "INSERT INTO register VALUES ({k}, {value}) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
        ),
        Call::Cas {
            expected: Some(e),
            new,
        } => format!("UPDATE register SET v = {new} WHERE k = {k} AND v = {e}"),
        Call::Cas {
            expected: None,
            new,
        } => format!("INSERT INTO register VALUES ({k}, {new}) ON CONFLICT (k) DO NOTHING"),
    };
    let invoke_ns = rec.now_ns();
    let res = query(c, &sql, timeout).await;
    let complete_ns = rec.now_ns();
    let (outcome, read, error) = match res {
        Ok(a) => match call {
            Call::Read => {
                let v: Value = match a.rows.first() {
                    None => None,
                    Some(r) => match r.first() {
                        Some(Some(s)) => Some(s.parse().unwrap_or(u64::MAX)),
                        _ => None,
                    },
                };
                (Outcome::Ok, Some(v), None)
            }
            Call::Write { .. } => (Outcome::Ok, None, None),
            Call::Cas { .. } if a.affected == 1 => (Outcome::Ok, None, None),
            Call::Cas { .. } => (Outcome::Fail, None, Some(CONDITION_FAILED.into())),
        },
        Err(e) if call == Call::Read => (Outcome::Fail, None, Some(e.describe())),
        Err(e) => (e.at_commit(), None, Some(e.describe())),
    };
    Op {
        index: 0,
        process,
        key: reg_key(k),
        call,
        outcome,
        read,
        invoke_ns,
        complete_ns,
        node: node + 1,
        error,
    }
}

/// Builds and runs one transaction of the bank, set or append workload.
async fn txn(
    c: &Client,
    rng: &mut StdRng,
    cfg: &Config,
    rec: &Recorder,
    ids: &Ids,
    process: u64,
    node: usize,
) -> Txn {
    let keys = cfg.keys as u64;
    let mops = match cfg.kind {
        Kind::Bank => {
            if rng.random_range(0..4) == 0 {
                (0..keys)
                    .map(|k| Mop::ReadBal {
                        k,
                        bal: None,
                        ver: None,
                    })
                    .collect()
            } else {
                let a = rng.random_range(0..keys);
                let mut b = rng.random_range(0..keys - 1);
                if b >= a {
                    b += 1;
                }
                let amount = rng.random_range(1..=20);
                let ver = ids.next();
                vec![
                    Mop::ReadBal {
                        k: a,
                        bal: None,
                        ver: None,
                    },
                    Mop::ReadBal {
                        k: b,
                        bal: None,
                        ver: None,
                    },
                    // Filled in from the reads: a -= amount, b += amount.
                    Mop::WriteBal {
                        k: a,
                        bal: -amount,
                        ver,
                    },
                    Mop::WriteBal {
                        k: b,
                        bal: amount,
                        ver,
                    },
                ]
            }
        }
        Kind::Set => vec![Mop::Insert { v: ids.next() }],
        Kind::Append | Kind::Register => (0..rng.random_range(1..=4))
            .map(|_| {
                let k = rng.random_range(0..keys);
                if rng.random_range(0..2) == 0 {
                    Mop::Read { k, list: None }
                } else {
                    Mop::Append { k, v: ids.next() }
                }
            })
            .collect(),
    };
    run_txn(c, rec, process, node, mops, cfg.op_timeout).await
}

/// Runs the micro-operations `mops` as one transaction (BEGIN .. COMMIT
/// when there is more than one statement) and records what they saw.
pub async fn run_txn(
    c: &Client,
    rec: &Recorder,
    process: u64,
    node: usize,
    mut mops: Vec<Mop>,
    timeout: Duration,
) -> Txn {
    let invoke_ns = rec.now_ns();
    let deadline = Instant::now() + timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    let is_bank_read_all =
        !mops.is_empty() && mops.iter().all(|m| matches!(m, Mop::ReadBal { .. })) && mops.len() > 2;
    let read_only = mops.iter().all(|m| {
        matches!(
            m,
            Mop::Read { .. } | Mop::ReadBal { .. } | Mop::ReadSet { .. }
        )
    });
    let single = mops.len() == 1 || is_bank_read_all;
    let mut result: Result<(), (Outcome, String)> = Ok(());
    if !single {
        if let Err(e) = query(c, "BEGIN", left()).await {
            result = Err((Outcome::Fail, e.describe()));
        }
    }
    if result.is_ok() {
        if is_bank_read_all {
            match query(c, "SELECT id, bal, ver FROM accounts", left()).await {
                Ok(a) => {
                    for r in &a.rows {
                        let (id, bal, ver) = (int(&r[0]), int(&r[1]), int(&r[2]));
                        for m in mops.iter_mut() {
                            if let Mop::ReadBal { k, bal: b, ver: v } = m {
                                if Some(*k as i64) == id {
                                    *b = bal;
                                    *v = ver.map(|x| x as u64);
                                }
                            }
                        }
                    }
                    if mops
                        .iter()
                        .any(|m| matches!(m, Mop::ReadBal { bal: None, .. }))
                    {
                        result =
                            Err((Outcome::Fail, format!("read-all saw {} rows", a.rows.len())));
                        // Keep what was seen: the checker counts only
                        // complete reads.
                    }
                }
                Err(e) => result = Err((Outcome::Fail, e.describe())),
            }
        } else {
            result = steps(c, &mut mops, single, read_only, &left).await;
        }
    }
    if result.is_ok() && !single {
        if let Err(e) = query(c, "COMMIT", left()).await {
            result = Err((e.at_commit(), e.describe()));
        }
    }
    let complete_ns = rec.now_ns();
    let (outcome, error) = match result {
        Ok(()) => (Outcome::Ok, None),
        Err((_, e)) if read_only => (Outcome::Fail, Some(e)),
        Err((o, e)) => (o, Some(e)),
    };
    Txn {
        index: 0,
        process,
        mops,
        outcome,
        invoke_ns,
        complete_ns,
        node: node + 1,
        error,
    }
}

/// The statements of a transaction, in order. `single`: the one statement
/// is the commit point.
async fn steps(
    c: &Client,
    mops: &mut [Mop],
    single: bool,
    read_only: bool,
    left: &impl Fn() -> Duration,
) -> Result<(), (Outcome, String)> {
    // An error before COMMIT: nothing applied (the session is dropped).
    let fail = |e: StepError| -> (Outcome, String) {
        if single && !read_only {
            (e.at_commit(), e.describe())
        } else {
            (Outcome::Fail, e.describe())
        }
    };
    let mut bank_reads: Vec<(u64, i64)> = Vec::new();
    for m in mops.iter_mut() {
        let sql = match &*m {
            Mop::Read { k, .. } => format!("SELECT v FROM lists WHERE k = {k}"),
            Mop::Append { k, v } => format!(
                "INSERT INTO lists VALUES ({k}, '{v}') ON CONFLICT (k) DO UPDATE SET v = lists.v || ',{v}'"
            ),
            Mop::ReadBal { k, .. } => format!("SELECT bal, ver FROM accounts WHERE id = {k}"),
            Mop::WriteBal { k, bal, ver } => {
                // `bal` holds the delta until now; the new balance is the
                // balance read plus the delta.
                let Some(&(_, seen)) = bank_reads.iter().find(|(a, _)| a == k) else {
                    return Err((Outcome::Fail, format!("account {k} not read")));
                };
                let new = seen + *bal;
                if new < 0 {
                    return Err((Outcome::Fail, "insufficient funds".into()));
                }
                format!("UPDATE accounts SET bal = {new}, ver = {ver} WHERE id = {k}")
            }
            Mop::Insert { v } => format!("INSERT INTO elements VALUES ({v})"),
            Mop::ReadSet { .. } => "SELECT v FROM elements".to_string(),
        };
        let a = query(c, &sql, left()).await.map_err(fail)?;
        match m {
            Mop::Read { list, .. } => {
                let s = a.rows.first().and_then(|r| r.first().cloned()).flatten();
                *list = Some(parse_list(s.as_deref()));
            }
            Mop::ReadBal { k, bal, ver } => {
                let Some(r) = a.rows.first() else {
                    return Err((Outcome::Fail, format!("account {k} missing")));
                };
                *bal = int(&r[0]);
                *ver = int(&r[1]).map(|v| v as u64);
                if let Some(b) = *bal {
                    bank_reads.push((*k, b));
                }
            }
            Mop::WriteBal { k, bal, .. } => {
                let seen = bank_reads
                    .iter()
                    .find(|(a, _)| a == k)
                    .map(|x| x.1)
                    .unwrap_or(0);
                *bal += seen;
                if a.affected != 1 {
                    return Err((Outcome::Fail, format!("account {k}: {} rows", a.affected)));
                }
            }
            Mop::ReadSet { set } => {
                let mut v: Vec<u64> = a
                    .rows
                    .iter()
                    .filter_map(|r| int(&r[0]).map(|x| x as u64))
                    .collect();
                v.sort();
                *set = Some(v);
            }
            Mop::Append { .. } | Mop::Insert { .. } => {}
        }
    }
    Ok(())
}

/// After the run: a final read of everything the workload checks, retried
/// through every node until it succeeds or `timeout` passes. Returns an
/// error if it never succeeded.
pub async fn final_reads(
    addrs: &[String],
    kind: Kind,
    keys: usize,
    rec: &Recorder,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let process = rec.process();
    let mut node = 0;
    let mut last = String::new();
    let mut pending: Vec<u64> = (0..keys as u64).collect();
    while Instant::now() < deadline {
        let at = node % addrs.len();
        node += 1;
        let c = match connect(&addrs[at], Duration::from_secs(3)).await {
            Ok(c) => c,
            Err(e) => {
                last = e;
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
        };
        let t = Duration::from_secs(10);
        match kind {
            Kind::Register => {
                while let Some(&k) = pending.first() {
                    let op = register_call(&c, rec, process, at, k, Call::Read, t).await;
                    let ok = op.outcome == Outcome::Ok;
                    last = op.error.clone().unwrap_or_default();
                    rec.push(op);
                    if !ok {
                        break;
                    }
                    pending.remove(0);
                }
                if pending.is_empty() {
                    return Ok(());
                }
            }
            Kind::Append => {
                while let Some(&k) = pending.first() {
                    let tx =
                        run_txn(&c, rec, process, at, vec![Mop::Read { k, list: None }], t).await;
                    let ok = tx.outcome == Outcome::Ok;
                    last = tx.error.clone().unwrap_or_default();
                    rec.push_txn(tx);
                    if !ok {
                        break;
                    }
                    pending.remove(0);
                }
                if pending.is_empty() {
                    return Ok(());
                }
            }
            Kind::Bank | Kind::Set => {
                let mops = if kind == Kind::Bank {
                    (0..keys as u64)
                        .map(|k| Mop::ReadBal {
                            k,
                            bal: None,
                            ver: None,
                        })
                        .collect()
                } else {
                    vec![Mop::ReadSet { set: None }]
                };
                let tx = run_txn(&c, rec, process, at, mops, t).await;
                let ok = tx.outcome == Outcome::Ok;
                last = tx.error.clone().unwrap_or_default();
                rec.push_txn(tx);
                if ok {
                    return Ok(());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Err(format!("final read failed: {last}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_garbage_is_flagged() {
        assert_eq!(parse_list(None), Vec::<u64>::new());
        assert_eq!(parse_list(Some("")), Vec::<u64>::new());
        assert_eq!(parse_list(Some("3,1,2")), [3, 1, 2]);
        assert_eq!(parse_list(Some("3,x")), [3, u64::MAX]);
    }

    #[test]
    fn only_sqlstates_that_apply_nothing_are_definite() {
        for c in ["40001", "0A000", "23505", "53300", "42601", "22003"] {
            assert!(definite(c), "{c}");
        }
        for c in ["40003", "XX000", "57P01", "08006"] {
            assert!(!definite(c), "{c}");
        }
    }
}
