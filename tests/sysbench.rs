//! sysbench's PostgreSQL driver, unmodified, against a real three-process
//! cluster: `oltp_read_write` prepare (table, rows, secondary index) and a
//! run with several threads that must end without a fatal error, then the
//! table must still hold every row once, with its secondary index in step
//! with the rows.
//!
//! sysbench retries a transaction that fails with a serialization failure
//! or deadlock (40001 / 40P01) and counts it as an "ignored error"; the run
//! prints how many there were. `SYSBENCH_SECS` sets the run's length
//! (default 20), `SYSBENCH_THREADS` its threads (default 4).

mod harness;

use std::process::Command;

use harness::TestCluster;
use tokio_postgres::NoTls;

const TABLE_SIZE: i64 = 10_000;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.into())
}

/// Runs `sysbench oltp_read_write <args> <command>` against `addr`;
/// returns its output. Fails the test if sysbench fails or hangs.
async fn sysbench(addr: &str, command: &str, args: &[String]) -> String {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let mut cmd = Command::new("timeout");
    cmd.args(["600", "sysbench", "--db-driver=pgsql"])
        .arg(format!("--pgsql-host={host}"))
        .arg(format!("--pgsql-port={port}"))
        .args(["--pgsql-user=root", "--pgsql-db=defaultdb", "--tables=1"])
        .arg(format!("--table-size={TABLE_SIZE}"))
        .args(args)
        .args(["oltp_read_write", command]);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("sysbench is installed (.ci/run installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "sysbench {command} failed:\n{text}");
    assert!(!text.contains("FATAL"), "sysbench {command}:\n{text}");
    eprintln!("sysbench oltp_read_write {command}:\n{text}");
    text
}

/// The first number after `label` in sysbench's report.
fn count(report: &str, label: &str) -> u64 {
    let line = report
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{report}"));
    line[label.len()..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad line {line:?}"))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sysbench_oltp_read_write_prepares_and_runs_without_errors() {
    let c = TestCluster::start(3).await;
    let addr = c.nodes[0].sql.clone();
    sysbench(&addr, "prepare", &[]).await;

    let (client, conn) = tokio_postgres::connect(
        &format!("postgres://root@{}/defaultdb", c.nodes[1].sql),
        NoTls,
    )
    .await
    .expect("connect");
    tokio::spawn(conn);
    assert_eq!(
        scalar(&client, "SELECT count(*) FROM sbtest1").await,
        TABLE_SIZE
    );

    let run = sysbench(
        &addr,
        "run",
        &[
            format!("--time={}", env_or("SYSBENCH_SECS", "20")),
            format!("--threads={}", env_or("SYSBENCH_THREADS", "4")),
        ],
    )
    .await;
    let done = count(&run, "transactions:");
    let retried = count(&run, "ignored errors:");
    assert!(done > 0, "{run}");
    eprintln!("{done} transactions, {retried} retried after 40001/40P01");

    // Each transaction deletes a row and inserts it again: the count
    // stands, and the secondary index on k lists every row exactly once.
    assert_eq!(
        scalar(&client, "SELECT count(*) FROM sbtest1").await,
        TABLE_SIZE
    );
    let plan = client
        .simple_query("EXPLAIN SELECT count(*) FROM sbtest1 WHERE k >= 0")
        .await
        .unwrap();
    let plan: Vec<String> = plan
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect();
    assert!(
        plan.iter().any(|l| l.contains("k_1")),
        "the count below must go through the index: {plan:?}"
    );
    assert_eq!(
        scalar(&client, "SELECT count(*) FROM sbtest1 WHERE k >= 0").await,
        TABLE_SIZE
    );
}
