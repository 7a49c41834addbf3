//! pgbench, unmodified, against a real three-process cluster:
//!
//! - both initialisations (`pgbench -i -s 2` with client-side COPY, and
//!   `-I dtGp` with server-side generation and primary keys added after),
//!   each followed by TPC-B runs (`-c 4 -j 2`) in simple and prepared query
//!   modes with zero failed transactions;
//! - TPC-B on one branch with 16 clients (every transaction updates the
//!   same branch row) with zero failed transactions, and the TPC-B
//!   invariant afterwards: the branch, teller and account balances each sum
//!   to the sum of the history's deltas;
//! - a read-then-update script on that one branch in explicit transactions
//!   with 8 clients: serialization failures happen (40001) and pgbench's
//!   retries (`--max-tries=10`) get every transaction through.
//!
//! `PGBENCH_SECS` sets the length of each run (default 20),
//! `PGBENCH_SCALE` the scale of the initialisations (default 2).

mod harness;

use std::process::Command;

use harness::TestCluster;
use tokio_postgres::NoTls;

fn run_secs() -> String {
    std::env::var("PGBENCH_SECS").unwrap_or_else(|_| "20".into())
}

/// The scale of the two initialisations (`PGBENCH_SCALE`, default 2).
fn scale() -> i64 {
    std::env::var("PGBENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2)
}

/// Runs pgbench against `addr` (host:port) with `args`; returns stdout and
/// stderr together. Fails the test if pgbench fails or hangs.
async fn pgbench(addr: &str, args: &[&str]) -> String {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let mut cmd = Command::new("timeout");
    cmd.args(["600", "pgbench", "-h", host, "-p", port, "-U", "root"])
        .args(args)
        .arg("defaultdb");
    let shown = format!("pgbench {}", args.join(" "));
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("pgbench is installed (.ci/run installs postgresql-client)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{shown} failed:\n{text}");
    eprintln!("{shown}:\n{text}");
    text
}

/// The number after `label` in pgbench's report (e.g. "number of failed
/// transactions: 0 (0.000%)").
fn count(report: &str, label: &str) -> u64 {
    let line = report
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{report}"));
    line[label.len()..]
        .trim_start_matches(':')
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad line {line:?}"))
}

/// A TPC-B run: some transactions, none failed.
async fn run_without_failures(addr: &str, extra: &[&str]) -> String {
    let secs = run_secs();
    let mut args = vec!["-T", &secs, "-j", "2"];
    args.extend_from_slice(extra);
    let report = pgbench(addr, &args).await;
    assert!(
        count(&report, "number of transactions actually processed") > 0,
        "{report}"
    );
    assert_eq!(
        count(&report, "number of failed transactions"),
        0,
        "{report}"
    );
    report
}

async fn sql(addr: &str) -> tokio_postgres::Client {
    let (client, conn) =
        tokio_postgres::connect(&format!("postgres://root@{addr}/defaultdb"), NoTls)
            .await
            .expect("connect");
    tokio::spawn(conn);
    client
}

async fn scalar(c: &tokio_postgres::Client, q: &str) -> i64 {
    let rows = c.simple_query(q).await.expect(q);
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse().ok()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{q}: no integer in {rows:?}"))
}

/// The balance total (branches, tellers and accounts must agree).
async fn balance_total(c: &tokio_postgres::Client) -> i64 {
    let mut totals = Vec::new();
    for table in ["branches", "tellers", "accounts"] {
        let col = &table[..1];
        let q = format!("SELECT coalesce(sum({col}balance), 0) FROM pgbench_{table}");
        totals.push((table, scalar(c, &q).await));
    }
    assert!(
        totals.iter().all(|(_, t)| *t == totals[0].1),
        "balance totals disagree: {totals:?}"
    );
    totals[0].1
}

/// A TPC-B run (pgbench empties the history first) that changed the
/// balances by exactly the sum of the deltas it recorded.
async fn run_keeping_the_invariant(
    addr: &str,
    c: &tokio_postgres::Client,
    extra: &[&str],
) -> String {
    let before = balance_total(c).await;
    let report = run_without_failures(addr, extra).await;
    let after = balance_total(c).await;
    let history = scalar(c, "SELECT coalesce(sum(delta), 0) FROM pgbench_history").await;
    assert_eq!(
        after - before,
        history,
        "balances moved by other than the deltas"
    );
    assert_eq!(
        scalar(c, "SELECT count(*) FROM pgbench_history").await as u64,
        count(&report, "number of transactions actually processed"),
        "every committed transaction left its history row, and only those"
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_initializes_both_ways_and_runs_without_failures() {
    let c = TestCluster::start(3).await;
    let addr = c.nodes[0].sql.clone();
    let client = sql(&c.nodes[2].sql).await;

    let s = scale().to_string();
    pgbench(&addr, &["-i", "-s", &s]).await;
    assert_eq!(
        scalar(&client, "SELECT count(*) FROM pgbench_accounts").await,
        100_000 * scale()
    );
    assert_eq!(
        scalar(&client, "SELECT count(*) FROM pgbench_branches").await,
        scale()
    );
    for mode in ["simple", "prepared"] {
        run_keeping_the_invariant(&addr, &client, &["-c", "4", "-M", mode]).await;
    }

    pgbench(&addr, &["-i", "-I", "dtGp", "-s", &s]).await;
    assert_eq!(
        scalar(&client, "SELECT count(*) FROM pgbench_accounts").await,
        100_000 * scale()
    );
    assert_eq!(balance_total(&client).await, 0);
    for mode in ["simple", "prepared"] {
        run_keeping_the_invariant(&addr, &client, &["-c", "4", "-M", mode]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_clients_on_one_branch_finish_without_failures() {
    let c = TestCluster::start(3).await;
    let addr = c.nodes[1].sql.clone();
    pgbench(&addr, &["-i", "-s", "1"]).await;
    let client = sql(&c.nodes[0].sql).await;
    run_keeping_the_invariant(&addr, &client, &["-c", "16", "-M", "prepared"]).await;

    // Read, then write what was read, in explicit transactions: under
    // SERIALIZABLE a concurrent update in between fails the transaction
    // with 40001, and pgbench retries it (`--max-tries`). Every transaction
    // must get through within its tries: a retried transaction must not
    // lose the same race every time.
    let script = std::env::temp_dir().join(format!("read-then-update-{}.sql", std::process::id()));
    std::fs::write(
        &script,
        "\\set bid random(1, :scale)\n\\set delta random(-5000, 5000)\nBEGIN;\n\
         SELECT bbalance FROM pgbench_branches WHERE bid = :bid;\n\
         UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;\n\
         INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) \
         VALUES (1, :bid, 1, :delta, CURRENT_TIMESTAMP);\nEND;\n",
    )
    .unwrap();
    let script = script.to_str().unwrap().to_string();
    let before = scalar(&client, "SELECT sum(bbalance) FROM pgbench_branches").await;
    client
        .batch_execute("TRUNCATE pgbench_history")
        .await
        .unwrap();
    let report = run_without_failures(
        &addr,
        &["-c", "8", "-M", "prepared", "--max-tries=10", "-f", &script],
    )
    .await;
    let _ = std::fs::remove_file(&script);
    assert!(
        count(&report, "number of transactions retried") > 0,
        "no transaction met a serialization failure: {report}"
    );
    let after = scalar(&client, "SELECT sum(bbalance) FROM pgbench_branches").await;
    let history = scalar(
        &client,
        "SELECT coalesce(sum(delta), 0) FROM pgbench_history",
    )
    .await;
    assert_eq!(
        after - before,
        history,
        "balances moved by other than the deltas"
    );
}
