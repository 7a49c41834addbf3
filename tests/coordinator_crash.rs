//! Coordinator crash, over SQL on three real processes: a transaction that
//! updates two rows on two ranges (leases on two different nodes) loses its
//! coordinator - the SQL gateway its client is connected to - to kill -9.
//! Another transaction, from another node, reading and updating the same
//! two rows then completes within three heartbeat intervals (3 s) of the
//! kill, and the killed transaction's writes are all visible or all absent:
//! both rows are always incremented together, so they stay equal.
//!
//! Two scenarios, `COORD_TRIALS` trials each (default 4):
//!
//! - the transaction is still open (`BEGIN; UPDATE ..; UPDATE ..;` and no
//!   COMMIT) when its gateway dies, 0-1.5 s after the second UPDATE: it
//!   must stay invisible. Where UPDATE places its intents at statement
//!   time, the other transaction meets them and must push them out of the
//!   way once the dead transaction's heartbeats have expired (2 s); where
//!   writes wait in the gateway until COMMIT, nothing of it reached the
//!   ranges and the other transaction does not wait at all;
//! - the kill lands 0-20 ms (half the time under 5 ms) after COMMIT was
//!   sent, while the parallel commit (the STAGING transaction record, and
//!   the intents on both ranges where they were not written by the
//!   UPDATEs already) may be in flight: the other transaction finds the
//!   intents resolved, or a record that says COMMITTED, or a STAGING record
//!   that it recovers once expired - committed if every write is in place,
//!   aborted otherwise. If the client got COMMIT's answer before the kill,
//!   the writes must be visible.
//!
//! The killed gateway holds the lease of neither row's range, nor that of
//! the catalog version every statement reads (see [`placement`]), so the
//! time measured is the transaction protocol's, not a lease failover's.
//! It does hold leases of other ranges; the time until every range has a
//! live leaseholder again is printed for each trial (about 0.9-1.9 s).

mod harness;

use std::time::{Duration, Instant};

use harness::sql::{any_node, connect_sql, is_retry, show_ranges};
use harness::TestCluster;
use rand::Rng;
use tessera_kv::txn::{HEARTBEAT_INTERVAL, TXN_EXPIRY};
use tokio_postgres::Client;

/// How long the other transaction may take after the kill.
const BUDGET: Duration = Duration::from_secs(3 * HEARTBEAT_INTERVAL.as_secs());

#[derive(Clone, Copy, Debug, PartialEq)]
enum Scenario {
    /// Killed with the transaction open, before COMMIT.
    Open,
    /// Killed 0-20 ms after COMMIT was sent.
    CommitInFlight,
}

fn trials() -> usize {
    std::env::var("COORD_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4)
}

fn sql_addrs(c: &TestCluster) -> Vec<String> {
    c.nodes.iter().map(|n| n.sql.clone()).collect()
}

/// Table `t` with rows 1, 2 and 3 (v = 0), each in a range of its own.
async fn create_table(c: &TestCluster) {
    let admin = any_node(&sql_addrs(c), 0).await;
    admin
        .batch_execute(
            "CREATE TABLE t (id INT8 PRIMARY KEY, v INT8 NOT NULL);
             INSERT INTO t VALUES (1, 0), (2, 0), (3, 0)",
        )
        .await
        .unwrap();
    admin
        .batch_execute("ALTER TABLE t SPLIT AT VALUES (1), (2), (3), (4)")
        .await
        .unwrap();
}

/// The catalog version key, read by every SQL statement
/// (`crates/sql/src/catalog.rs`).
const CATALOG_VERSION_KEY: &[u8] = b"\x02sql/version";

/// Who does what in a trial (process indexes).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Placement {
    /// The two rows the transactions update, on two ranges.
    rows: (i64, i64),
    /// Their ranges' leaseholders.
    holders: (usize, usize),
    /// The gateway of the transaction that is killed: it holds neither
    /// row's lease, nor the catalog version's.
    coordinator: usize,
}

/// Picks the coordinator and the two rows once the leases are spread over
/// all nodes and have stayed put for three seconds (after a restart, lease
/// placement moves leases back to the restarted node over a few seconds:
/// that is waited out).
///
/// Every node holds some lease (placement spreads them), so killing any
/// node makes the ranges it led unavailable until a survivor's election
/// timeout and lease grant. The coordinator is chosen so that the other
/// transaction needs none of those ranges: not the rows' ranges, and not
/// the range of the catalog version key, which every SQL statement reads
/// (killing its leaseholder stalls every statement on every node for the
/// failover: the other transaction then took about 2.2 s even with nothing
/// to wait for). The failover of the leases the coordinator does hold is
/// measured in each trial.
async fn placement(c: &TestCluster) -> Placement {
    let addrs = sql_addrs(c);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last: Option<Placement> = None;
    let mut stable = 0;
    let mut seen = String::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "no placement with a coordinator holding neither row's lease: {seen}\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        let conn = any_node(&addrs, 0).await;
        let Ok(ranges) = show_ranges(&conn, "t").await else {
            continue;
        };
        let Ok(all) = c.ranges(0).await else {
            continue;
        };
        let lease_of = |key: &[u8]| {
            all.iter()
                .find(|r| {
                    let d = r.descriptor.clone().unwrap_or_default();
                    d.start_key.as_slice() <= key && key < d.end_key.as_slice()
                })
                .and_then(|r| c.index_of(r.leaseholder_node))
        };
        let catalog = lease_of(CATALOG_VERSION_KEY);
        // Lease placement has spread the leases: every node holds some.
        let spread = (0..c.nodes.len()).all(|i| {
            all.iter()
                .any(|r| c.index_of(r.leaseholder_node) == Some(i))
        });
        seen = format!("{ranges:?}, catalog version lease on {catalog:?}, spread: {spread}");
        let holder = |row: i64| {
            ranges
                .iter()
                .find(|r| r.start_key == format!("/{row}"))
                .and_then(|r| r.lease_holder)
                .and_then(|id| c.index_of(id as u64))
        };
        let holders: Vec<(i64, usize)> = (1..=3)
            .filter_map(|row| holder(row).map(|h| (row, h)))
            .collect();
        let mut found = None;
        if holders.len() == 3 && catalog.is_some() && spread {
            'pick: for coordinator in 0..c.nodes.len() {
                if Some(coordinator) == catalog {
                    continue;
                }
                let usable: Vec<(i64, usize)> = holders
                    .iter()
                    .copied()
                    .filter(|(_, h)| *h != coordinator)
                    .collect();
                // Two rows whose leases are on two different nodes.
                for (i, a) in usable.iter().enumerate() {
                    for b in &usable[i + 1..] {
                        if a.1 != b.1 {
                            found = Some(Placement {
                                rows: (a.0, b.0),
                                holders: (a.1, b.1),
                                coordinator,
                            });
                            break 'pick;
                        }
                    }
                }
            }
        }
        match found {
            Some(p) if found == last => {
                stable += 1;
                if stable >= 3 {
                    return p;
                }
            }
            _ => stable = 0,
        }
        last = found;
    }
}

/// The values of `rows`, by primary key lookups (a scan of the span
/// between them would also touch the range of the row in between, whose
/// lease may be the dead node's). Inside a transaction both reads are of
/// one snapshot.
async fn read_pair(c: &Client, rows: (i64, i64)) -> Result<(i64, i64), tokio_postgres::Error> {
    let mut v = [0i64; 2];
    for (i, id) in [rows.0, rows.1].into_iter().enumerate() {
        v[i] = c
            .query_one("SELECT v FROM t WHERE id = $1", &[&id])
            .await?
            .get(0);
    }
    Ok((v[0], v[1]))
}

/// `BEGIN`, then increments `rows` with one UPDATE each.
async fn begin_and_increment(c: &Client, rows: (i64, i64)) -> Result<(), tokio_postgres::Error> {
    c.batch_execute("BEGIN").await?;
    for id in [rows.0, rows.1] {
        let n = c
            .execute("UPDATE t SET v = v + 1 WHERE id = $1", &[&id])
            .await?;
        assert_eq!(n, 1, "UPDATE of row {id}");
    }
    Ok(())
}

/// The other transaction: reads both rows, increments both, commits;
/// retried on retryable errors. Returns what it read and its attempts.
async fn increment_both(c: &Client, rows: (i64, i64)) -> ((i64, i64), u32) {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let r = async {
            c.batch_execute("BEGIN").await?;
            let seen = read_pair(c, rows).await?;
            for id in [rows.0, rows.1] {
                c.execute("UPDATE t SET v = v + 1 WHERE id = $1", &[&id])
                    .await?;
            }
            c.batch_execute("COMMIT").await?;
            Ok::<_, tokio_postgres::Error>(seen)
        }
        .await;
        match r {
            Ok(seen) => return (seen, attempts),
            Err(e) if is_retry(&e) => {
                let _ = c.batch_execute("ROLLBACK").await;
            }
            Err(e) => panic!("the other transaction failed: {e:?}"),
        }
    }
}

/// The ranges whose lease node `node` (an id) holds, seen through process
/// `via`'s admin service.
async fn leases_of(c: &TestCluster, via: usize, node: u64) -> Vec<u64> {
    let mut ids: Vec<u64> = c
        .ranges(via)
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.leaseholder_node == node)
        .filter_map(|r| r.descriptor.as_ref().map(|d| d.range_id))
        .collect();
    ids.sort_unstable();
    ids
}

/// Time from `since` until every range has a leaseholder other than
/// `dead_node`, seen through the admin service at `admin_addr` (None if
/// that takes over 30 s).
async fn lease_failover(admin_addr: String, dead_node: u64, since: Instant) -> Option<Duration> {
    while since.elapsed() < Duration::from_secs(30) {
        let ranges = async {
            let mut client = harness::connect(&admin_addr).await?;
            client
                .ranges(tessera_common::proto::RangesRequest {})
                .await
                .map(|r| r.into_inner().ranges)
                .map_err(|e| e.to_string())
        }
        .await;
        if let Ok(ranges) = ranges {
            if !ranges.is_empty()
                && ranges
                    .iter()
                    .all(|r| r.leaseholder_node != 0 && r.leaseholder_node != dead_node)
            {
                return Some(since.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

struct Outcome {
    /// What the killed transaction's client heard of COMMIT, if sent.
    commit: Option<Result<(), String>>,
    /// Whether the killed transaction's writes are visible.
    visible: bool,
    waited: Duration,
    attempts: u32,
    failover: Option<Duration>,
}

async fn trial(c: &mut TestCluster, scenario: Scenario, n: usize) -> Outcome {
    let p = placement(c).await;
    let rows = p.rows;
    let addrs = sql_addrs(c);
    let (other, checker) = if n.is_multiple_of(2) {
        (p.holders.0, p.holders.1)
    } else {
        (p.holders.1, p.holders.0)
    };
    let dead = c.node_id(p.coordinator);
    let coordinator_leases = leases_of(c, checker, dead).await;
    let coord = connect_sql(&addrs[p.coordinator]).await.expect("connect");
    let other_conn = connect_sql(&addrs[other]).await.expect("connect");
    let check_conn = connect_sql(&addrs[checker]).await.expect("connect");
    // The rows chosen may differ from the last trial's: start them equal.
    for id in [rows.0, rows.1] {
        check_conn
            .execute("UPDATE t SET v = 0 WHERE id = $1", &[&id])
            .await
            .unwrap();
    }
    let before = read_pair(&check_conn, rows).await.unwrap();
    assert_eq!(before, (0, 0));

    begin_and_increment(&coord, rows).await.unwrap();
    let (delay, commit) = match scenario {
        Scenario::Open => {
            let delay = Duration::from_millis(rand::rng().random_range(0..1500));
            tokio::time::sleep(delay).await;
            (delay, None)
        }
        Scenario::CommitInFlight => {
            let commit = tokio::spawn(async move {
                coord
                    .batch_execute("COMMIT")
                    .await
                    .map_err(|e| e.to_string())
            });
            // 0-20 ms, mostly short: a commit is often answered within
            // a few ms, and the kill should land before that often.
            let u: f64 = rand::rng().random();
            let delay = Duration::from_micros((u * u * 20_000.0) as u64);
            tokio::time::sleep(delay).await;
            (delay, Some(commit))
        }
    };
    let killed_at = Instant::now();
    c.kill(p.coordinator);
    let failover = tokio::spawn(lease_failover(c.addr(checker).to_string(), dead, killed_at));

    let (seen, attempts) =
        tokio::time::timeout(Duration::from_secs(60), increment_both(&other_conn, rows))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the other transaction was blocked for 60 s by the dead coordinator\n{}",
                    c.logs()
                )
            });
    let waited = killed_at.elapsed();
    let commit = match commit {
        Some(h) => Some(h.await.unwrap()),
        None => None,
    };
    let after = read_pair(&check_conn, rows).await.unwrap();
    let failover = failover.await.unwrap();
    eprintln!(
        "{scenario:?} #{n}: rows {rows:?} led by nodes {} and {}; coordinator node {dead} \
         (leases of ranges {coordinator_leases:?}), killed {delay:?} after {}; COMMIT's answer: \
         {commit:?}; rows before {before:?}, seen {seen:?}, after {after:?}; the other \
         transaction (via node {}) done {waited:?} after the kill, {attempts} attempt(s); \
         every lease on a live node after {failover:?}",
        c.node_id(p.holders.0),
        c.node_id(p.holders.1),
        if scenario == Scenario::Open {
            "the second UPDATE"
        } else {
            "sending COMMIT"
        },
        c.node_id(other),
    );

    // All or nothing.
    assert_eq!(
        seen.0, seen.1,
        "the killed transaction's writes are partly visible: {seen:?} (before {before:?})"
    );
    assert!(
        seen.0 == before.0 || seen.0 == before.0 + 1,
        "rows changed by something else: before {before:?}, seen {seen:?}"
    );
    let visible = seen.0 == before.0 + 1;
    match &commit {
        None => assert!(!visible, "a transaction that never committed is visible"),
        Some(Ok(())) => assert!(visible, "an acknowledged commit was lost"),
        Some(Err(_)) => {}
    }
    assert_eq!(
        after,
        (seen.0 + 1, seen.1 + 1),
        "the other transaction's writes"
    );
    assert!(
        waited < BUDGET,
        "the other transaction took {waited:?} after the coordinator was killed \
         (budget {BUDGET:?}: 3 heartbeat intervals; expiry {TXN_EXPIRY:?})\n{}",
        c.logs()
    );

    // Back to where it was: the node restarted and its leases back on it.
    c.restart(p.coordinator).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while leases_of(c, checker, dead).await != coordinator_leases {
        assert!(
            Instant::now() < deadline,
            "node {dead} did not get its leases {coordinator_leases:?} back after its restart\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Outcome {
        commit,
        visible,
        waited,
        attempts,
        failover,
    }
}

async fn run(scenario: Scenario) -> Vec<Outcome> {
    let mut c = TestCluster::start(3).await;
    create_table(&c).await;
    let mut outcomes = Vec::new();
    for n in 0..trials() {
        outcomes.push(trial(&mut c, scenario, n).await);
    }
    let max = outcomes.iter().map(|o| o.waited).max().unwrap_or_default();
    let visible = outcomes.iter().filter(|o| o.visible).count();
    let acked = outcomes
        .iter()
        .filter(|o| matches!(o.commit, Some(Ok(()))))
        .count();
    let retried: u32 = outcomes.iter().map(|o| o.attempts - 1).sum();
    let waited = outcomes
        .iter()
        .filter(|o| o.waited > Duration::from_millis(500))
        .count();
    let failover: Vec<Option<Duration>> = outcomes.iter().map(|o| o.failover).collect();
    eprintln!(
        "{scenario:?}: {} trials; the other transaction finished at most {max:?} after the \
         kill ({retried} retries), waiting on the dead transaction in {waited}; killed \
         transaction visible in {visible}, its COMMIT acknowledged in {acked}; lease \
         failover: {failover:?}",
        outcomes.len()
    );
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_of_a_killed_gateway_never_blocks_others_and_stays_invisible() {
    run(Scenario::Open).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_in_flight_on_a_killed_gateway_is_all_or_nothing_and_never_blocks_others() {
    run(Scenario::CommitInFlight).await;
}
