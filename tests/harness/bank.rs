//! The bank workload over SQL: [`ACCOUNTS`] accounts of [`INITIAL`] each,
//! spread over five ranges; eight clients doing random transfers in
//! explicit transactions, from every node; a checker reading all balances
//! in one statement, which must always see the exact total and no negative
//! balance. Tests add a nemesis (kills, clock skew) around it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::task::JoinHandle;
use tokio_postgres::Client;

use super::sql::{any_node, is_retry, show_ranges};

pub const ACCOUNTS: i64 = 10;
pub const INITIAL: i64 = 1000;

/// Creates `accounts` with [`ACCOUNTS`] rows over five ranges and waits
/// until those ranges' leases are on at least two nodes, and on every node
/// of `must_hold` (node ids). Returns the lease holder of each range.
pub async fn create_accounts(addrs: &[String], must_hold: &[i64]) -> Vec<Option<i64>> {
    let admin = any_node(addrs, 0).await;
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
    // Lease placement spreads the leases over the nodes.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ranges = show_ranges(&admin, "accounts").await;
        let holders: Vec<Option<i64>> = ranges.iter().flatten().map(|r| r.lease_holder).collect();
        let nodes: BTreeSet<i64> = holders.iter().flatten().copied().collect();
        if holders.len() >= 5
            && holders.iter().all(Option::is_some)
            && nodes.len() >= 2
            && must_hold.iter().all(|n| nodes.contains(n))
        {
            eprintln!(
                "{} ranges, leases on nodes {nodes:?}: {holders:?}",
                holders.len()
            );
            return holders;
        }
        assert!(
            Instant::now() < deadline,
            "leases never spread over two nodes and {must_hold:?}: {ranges:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[derive(Default, Debug)]
pub struct Stats {
    pub committed: AtomicU64,
    pub retried: AtomicU64,
    pub unknown: AtomicU64,
    pub reads: AtomicU64,
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} transfers committed, {} retried, {} unknown; {} read-alls",
            self.committed.load(Ordering::Relaxed),
            self.retried.load(Ordering::Relaxed),
            self.unknown.load(Ordering::Relaxed),
            self.reads.load(Ordering::Relaxed),
        )
    }
}

/// One transfer in an explicit transaction. Ok(true): committed;
/// Ok(false): refused (insufficient funds); Err: retryable or connection.
pub async fn transfer(
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

/// Sum, minimum and count of the balances, read in one statement.
pub async fn read_all(c: &Client) -> Result<(i64, i64, i64), tokio_postgres::Error> {
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

/// The running clients and checker.
pub struct Workload {
    addrs: Vec<String>,
    stop: Arc<AtomicBool>,
    pub stats: Arc<Stats>,
    clients: Vec<JoinHandle<()>>,
    checker: JoinHandle<()>,
}

impl Workload {
    /// Starts eight transfer clients (client `w` connects to node `w % n`
    /// first, and moves on to the next node when its node goes away) and
    /// the checker (from node 2). The checker panics on the first read-all
    /// with a wrong total, a missing row or a negative balance.
    pub fn start(addrs: &[String]) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let mut clients = Vec::new();
        for w in 0..8usize {
            let (addrs, stop, stats) = (addrs.to_vec(), stop.clone(), stats.clone());
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
            let (addrs, stop, stats) = (addrs.to_vec(), stop.clone(), stats.clone());
            tokio::spawn(async move {
                let mut conn = any_node(&addrs, 1).await;
                let mut next = 1;
                while !stop.load(Ordering::Relaxed) {
                    match tokio::time::timeout(Duration::from_secs(30), read_all(&conn)).await {
                        Ok(Ok((sum, min, n))) => {
                            assert_eq!(n, ACCOUNTS, "a read-all missed rows");
                            assert_eq!(
                                sum,
                                ACCOUNTS * INITIAL,
                                "a read-all saw a partial transfer"
                            );
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
        Workload {
            addrs: addrs.to_vec(),
            stop,
            stats,
            clients,
            checker,
        }
    }

    /// Stops the clients and the checker (re-raising a checker's or
    /// client's panic), then checks the final balances: exact total, none
    /// negative, and that transfers and read-alls did happen.
    pub async fn finish(self) -> Arc<Stats> {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.clients {
            h.await.unwrap();
        }
        self.checker.await.unwrap();
        let conn = any_node(&self.addrs, 0).await;
        let (sum, min, n) = loop {
            match read_all(&conn).await {
                Ok(r) => break r,
                Err(e) if is_retry(&e) => continue,
                Err(e) => panic!("final read: {e:?}"),
            }
        };
        assert_eq!(n, ACCOUNTS);
        assert_eq!(sum, ACCOUNTS * INITIAL, "the final total is wrong");
        assert!(min >= 0);
        assert!(
            self.stats.committed.load(Ordering::Relaxed) > 0,
            "no transfer committed"
        );
        assert!(
            self.stats.reads.load(Ordering::Relaxed) > 0,
            "no read-all succeeded"
        );
        self.stats
    }
}
