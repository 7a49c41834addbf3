//! The bank test over SQL on a real three-process cluster: ten accounts
//! spread over five ranges whose leases sit on different nodes, eight
//! clients doing random transfers in explicit transactions while a nemesis
//! kill -9s and restarts a random node every 10 seconds. Every read-all
//! must see the exact total and no negative balance; the final total is
//! exact. `BANK_SECS` sets the duration (default 60).

mod harness;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::TestCluster;
use rand::Rng;
use tokio_postgres::{Client, NoTls};

const ACCOUNTS: i64 = 10;
const INITIAL: i64 = 1000;

async fn sql(addr: &str) -> Option<Client> {
    let url = format!("postgres://root@{addr}/defaultdb?connect_timeout=2");
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await.ok()?;
    tokio::spawn(conn);
    Some(client)
}

/// A connection to any node that answers, trying from `start`.
async fn any_node(addrs: &[String], start: usize) -> Client {
    let mut i = start;
    loop {
        if let Some(c) = sql(&addrs[i % addrs.len()]).await {
            return c;
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[derive(Default)]
struct Stats {
    committed: AtomicU64,
    retried: AtomicU64,
    unknown: AtomicU64,
    reads: AtomicU64,
}

/// One transfer in an explicit transaction. Ok(true): committed;
/// Ok(false): refused (insufficient funds) or retryable; Err: connection.
async fn transfer(
    c: &Client,
    from: i64,
    to: i64,
    amount: i64,
) -> Result<bool, tokio_postgres::Error> {
    c.batch_execute("BEGIN").await?;
    let r = async {
        let row = c
            .query_one("SELECT balance FROM accounts WHERE id = $1", &[&from])
            .await?;
        let balance: i64 = row.get(0);
        if balance < amount {
            c.batch_execute("ROLLBACK").await?;
            return Ok(false);
        }
        c.execute(
            "UPDATE accounts SET balance = balance - $2 WHERE id = $1",
            &[&from, &amount],
        )
        .await?;
        c.execute(
            "UPDATE accounts SET balance = balance + $2 WHERE id = $1",
            &[&to, &amount],
        )
        .await?;
        c.batch_execute("COMMIT").await?;
        Ok(true)
    }
    .await;
    if r.is_err() {
        let _ = c.batch_execute("ROLLBACK").await;
    }
    r
}

fn is_retry(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| matches!(c.code(), "40001" | "40P01" | "40003" | "08006"))
}

/// Sum, minimum and count of the balances, read in one statement.
async fn read_all(c: &Client) -> Result<(i64, i64, i64), tokio_postgres::Error> {
    let rows = c
        .query("SELECT balance FROM accounts ORDER BY id", &[])
        .await?;
    let balances: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    Ok((
        balances.iter().sum(),
        balances.iter().copied().min().unwrap_or(0),
        balances.len() as i64,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_keep_the_total_while_nodes_are_killed() {
    let secs: u64 = std::env::var("BANK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let mut c = TestCluster::start(3).await;
    let addrs: Vec<String> = c.nodes.iter().map(|n| n.sql.clone()).collect();
    let admin = any_node(&addrs, 0).await;
    admin
        .batch_execute("CREATE TABLE accounts (id INT8 PRIMARY KEY, balance INT8 NOT NULL)")
        .await
        .unwrap();
    let values: Vec<String> = (0..ACCOUNTS).map(|i| format!("({i}, {INITIAL})")).collect();
    admin
        .batch_execute(&format!(
            "INSERT INTO accounts VALUES {}",
            values.join(", ")
        ))
        .await
        .unwrap();
    admin
        .batch_execute("ALTER TABLE accounts SPLIT AT VALUES (2), (4), (6), (8)")
        .await
        .unwrap();
    // Leases spread over the nodes (lease placement moves them).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = admin
            .query(
                "SELECT lease_holder FROM [SHOW RANGES FROM TABLE accounts]",
                &[],
            )
            .await
            .or(admin.query("SHOW RANGES FROM TABLE accounts", &[]).await)
            .unwrap();
        let holders: std::collections::BTreeSet<String> = rows
            .iter()
            .map(|r| format!("{:?}", r.try_get::<_, i64>("lease_holder").ok()))
            .collect();
        if rows.len() >= 5 && holders.len() >= 2 {
            eprintln!("{} ranges, leases on {} nodes", rows.len(), holders.len());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "leases never spread: {holders:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(admin);

    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Stats::default());
    let mut clients = Vec::new();
    for w in 0..8usize {
        let (addrs, stop, stats) = (addrs.clone(), stop.clone(), stats.clone());
        clients.push(tokio::spawn(async move {
            let mut conn = any_node(&addrs, w).await;
            let mut next = w;
            while !stop.load(Ordering::Relaxed) {
                let (from, to, amount) = {
                    let mut rng = rand::rng();
                    let from = rng.random_range(0..ACCOUNTS);
                    let to = (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
                    (from, to, rng.random_range(1..100i64))
                };
                match tokio::time::timeout(
                    Duration::from_secs(30),
                    transfer(&conn, from, to, amount),
                )
                .await
                {
                    Ok(Ok(true)) => {
                        stats.committed.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) if is_retry(&e) => {
                        stats.retried.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Err(e)) if e.is_closed() || e.code().is_none() => {
                        // The node went away mid-transaction: outcome
                        // unknown, which a transfer's total never minds.
                        stats.unknown.fetch_add(1, Ordering::Relaxed);
                        next += 1;
                        conn = any_node(&addrs, next).await;
                    }
                    Ok(Err(e)) => panic!("transfer failed: {e:?}"),
                    Err(_) => {
                        stats.unknown.fetch_add(1, Ordering::Relaxed);
                        next += 1;
                        conn = any_node(&addrs, next).await;
                    }
                }
            }
        }));
    }
    let checker = {
        let (addrs, stop, stats) = (addrs.clone(), stop.clone(), stats.clone());
        tokio::spawn(async move {
            let mut conn = any_node(&addrs, 1).await;
            let mut next = 1;
            while !stop.load(Ordering::Relaxed) {
                match tokio::time::timeout(Duration::from_secs(30), read_all(&conn)).await {
                    Ok(Ok((sum, min, n))) => {
                        assert_eq!(n, ACCOUNTS, "a read-all missed rows");
                        assert_eq!(sum, ACCOUNTS * INITIAL, "a read-all saw a partial transfer");
                        assert!(min >= 0, "a balance went negative: {min}");
                        stats.reads.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Err(e)) if is_retry(&e) => {}
                    _ => {
                        next += 1;
                        conn = any_node(&addrs, next).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    // The nemesis: every 10 s, kill -9 a random node and restart it.
    let started = Instant::now();
    let mut kills = 0;
    while started.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(
            Duration::from_secs(10)
                .min(Duration::from_secs(secs).saturating_sub(started.elapsed())),
        )
        .await;
        if started.elapsed() >= Duration::from_secs(secs) {
            break;
        }
        let victim = rand::rng().random_range(0..3usize);
        c.kill(victim);
        kills += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
        c.restart(victim).await;
    }
    stop.store(true, Ordering::Relaxed);
    for h in clients {
        h.await.unwrap();
    }
    checker.await.unwrap();

    let conn = any_node(&addrs, 0).await;
    let (sum, min, n) = loop {
        match read_all(&conn).await {
            Ok(r) => break r,
            Err(e) if is_retry(&e) => continue,
            Err(e) => panic!("final read: {e:?}"),
        }
    };
    eprintln!(
        "{secs}s, {kills} kills: {} transfers committed, {} retried, {} unknown; {} read-alls",
        stats.committed.load(Ordering::Relaxed),
        stats.retried.load(Ordering::Relaxed),
        stats.unknown.load(Ordering::Relaxed),
        stats.reads.load(Ordering::Relaxed),
    );
    assert_eq!(n, ACCOUNTS);
    assert_eq!(sum, ACCOUNTS * INITIAL, "the final total is wrong");
    assert!(min >= 0);
    assert!(
        stats.committed.load(Ordering::Relaxed) > 0,
        "no transfer committed"
    );
    assert!(
        stats.reads.load(Ordering::Relaxed) > 0,
        "no read-all succeeded"
    );
}
