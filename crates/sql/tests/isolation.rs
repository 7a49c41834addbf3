//! Golden scripts, one per named anomaly (after Hermitage's tests of
//! PostgreSQL): two sessions on different nodes interleave statements on a
//! table whose two rows live in different ranges. Under SERIALIZABLE every
//! anomaly is prevented (a transaction fails with 40001 or never sees it);
//! under READ COMMITTED the ones PostgreSQL allows appear (fuzzy reads,
//! read skew, write skew, phantoms) and the ones it forbids do not (dirty
//! writes, dirty reads).
//!
//! As in PostgreSQL, an UPDATE of a row another open transaction changed
//! waits for it (row locks); then under SERIALIZABLE it fails with 40001 if
//! the transaction read anything that changed meanwhile, and under READ
//! COMMITTED it updates the latest version of the row.

mod common;

use common::*;
use tokio_postgres::Client;

/// `test (id, value)` = (1, 10), (2, 20), split so each row has its own
/// range; two sessions on two nodes, both at `level`.
async fn setup(c: &Cluster, level: &str) -> (Client, Client) {
    let (t1, t2) = (connect(c.addrs[0]).await, connect(c.addrs[1]).await);
    t1.batch_execute(
        "DROP TABLE IF EXISTS test; CREATE TABLE test (id INT PRIMARY KEY, value INT); \
         INSERT INTO test VALUES (1, 10), (2, 20)",
    )
    .await
    .unwrap();
    let catalog = tessera_sql::catalog::Catalog::new(c.dbs[&1].clone());
    let desc = catalog.table("defaultdb", "test").await.unwrap().unwrap();
    let at = tessera_sql::encoding::row_key(desc.id, &[tessera_sql::types::Datum::Int(2)]);
    let _ = c.dbs[&1].split(&at).await;
    for t in [&t1, &t2] {
        t.batch_execute(&format!(
            "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL {level}"
        ))
        .await
        .unwrap();
    }
    (t1, t2)
}

async fn exec(c: &Client, sql: &str) {
    c.batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Runs `waiting` on `waiter` while `other` runs `releasing` after a pause:
/// `waiting` must not finish before `releasing` has begun (it waits on a
/// row lock, which `releasing` frees as it commits or rolls back; the
/// waiter may hear of it before `other`'s client hears its own answer).
/// Returns its outcome: "ok" or its SQLSTATE.
async fn waits_for(waiter: &Client, waiting: &str, other: &Client, releasing: &str) -> String {
    let blocked = async {
        let r = waiter.batch_execute(waiting).await;
        (r, std::time::Instant::now())
    };
    let release = async {
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        let started = std::time::Instant::now();
        exec(other, releasing).await;
        started
    };
    let ((r, finished), releasing_began) = tokio::join!(blocked, release);
    assert!(
        finished >= releasing_began,
        "{waiting} did not wait for {releasing}"
    );
    match r {
        Ok(()) => "ok".into(),
        Err(e) => e
            .code()
            .map(|c| c.code().to_string())
            .unwrap_or_else(|| format!("no SQLSTATE: {e}")),
    }
}

/// The SQLSTATE of a statement expected to fail.
async fn fails(c: &Client, sql: &str) -> String {
    sqlstate(c, sql).await
}

async fn table(c: &Client) -> String {
    flat(c, "SELECT id, value FROM test ORDER BY id").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serializable_prevents_every_anomaly() {
    let c = cluster().await;

    // G0, dirty write: two writers of the same rows never interleave.
    let (t1, t2) = setup(&c, "SERIALIZABLE").await;
    exec(&t1, "BEGIN").await;
    exec(&t2, "BEGIN").await;
    exec(&t1, "UPDATE test SET value = 11 WHERE id = 1").await;
    // T2 waits for T1's row; T2 read nothing, so it then goes on after T1.
    let t2_update = "UPDATE test SET value = 12 WHERE id = 1";
    let t1_rest = "UPDATE test SET value = 21 WHERE id = 2; COMMIT";
    assert_eq!(waits_for(&t2, t2_update, &t1, t1_rest).await, "ok", "G0");
    exec(&t2, "UPDATE test SET value = 22 WHERE id = 2").await;
    exec(&t2, "COMMIT").await;
    assert_eq!(table(&t1).await, "1|12;2|22", "G0");

    // G1a, aborted read: nobody sees a write that is rolled back.
    let (t1, t2) = setup(&c, "SERIALIZABLE").await;
    exec(&t1, "BEGIN").await;
    exec(&t2, "BEGIN").await;
    exec(&t1, "UPDATE test SET value = 101 WHERE id = 1").await;
    assert_eq!(flat(&t2, "SELECT value FROM test WHERE id = 1").await, "10");
    exec(&t1, "ROLLBACK").await;
    assert_eq!(flat(&t2, "SELECT value FROM test WHERE id = 1").await, "10");
    exec(&t2, "COMMIT").await;

    // G1b, intermediate read: only final values are ever seen.
    let (t1, t2) = setup(&c, "SERIALIZABLE").await;
    exec(&t1, "BEGIN").await;
    exec(&t2, "BEGIN").await;
    exec(&t1, "UPDATE test SET value = 101 WHERE id = 1").await;
    assert_eq!(flat(&t2, "SELECT value FROM test WHERE id = 1").await, "10");
    exec(&t1, "UPDATE test SET value = 11 WHERE id = 1").await;
    exec(&t1, "COMMIT").await;
    assert_eq!(flat(&t2, "SELECT value FROM test WHERE id = 1").await, "10");
    exec(&t2, "COMMIT").await;

    // P4, lost update: both read 10, both write 11; one must fail.
    let (t1, t2) = setup(&c, "SERIALIZABLE").await;
    exec(&t1, "BEGIN").await;
    exec(&t2, "BEGIN").await;
    assert_eq!(flat(&t1, "SELECT value FROM test WHERE id = 1").await, "10");
    assert_eq!(flat(&t2, "SELECT value FROM test WHERE id = 1").await, "10");
    exec(&t1, "UPDATE test SET value = 11 WHERE id = 1").await;
    let t2_update = "UPDATE test SET value = 11 WHERE id = 1";
    assert_eq!(
        waits_for(&t2, t2_update, &t1, "COMMIT").await,
        "40001",
        "P4"
    );
    exec(&t2, "ROLLBACK").await;
    assert_eq!(table(&t1).await, "1|11;2|20", "P4");

    // P2, fuzzy read: a repeated read sees the same value.
    let (t1, t2) = setup(&c, "SERIALIZABLE").await;
    exec(&t1, "BEGIN").await;
    exec(&t2, "BEGIN").await;
    assert_eq!(flat(&t1, "SELECT value FROM test WHERE id = 1").await, "10");
    exec(&t2, "UPDATE test SET value = 11 WHERE id = 1").await;
    exec(&t2, "COMMIT").await;
    assert_eq!(
        flat(&t1, "SELECT value FROM test WHERE id = 1").await,
        "10",
        "P2"
    );
    exec(&t1, "COMMIT").await;

    // G-single, read skew: a transfer is seen whole or not at all, and a
    // write based on a skewed read cannot commit.
    let (t1, t2) = setup(&c, "SERIALIZABLE").await;
    exec(&t1, "BEGIN").await;
    exec(&t2, "BEGIN").await;
    assert_eq!(flat(&t1, "SELECT value FROM test WHERE id = 1").await, "10");
    exec(&t2, "UPDATE test SET value = 12 WHERE id = 1").await;
    exec(&t2, "UPDATE test SET value = 18 WHERE id = 2").await;
    exec(&t2, "COMMIT").await;
    assert_eq!(
        flat(&t1, "SELECT value FROM test WHERE id = 2").await,
        "20",
        "G-single"
    );
    assert_eq!(
        fails(&t1, "UPDATE test SET value = 0 WHERE id = 2").await,
        "40001",
        "G-single"
    );
    exec(&t1, "ROLLBACK").await;

    // G2-item, write skew: each reads both rows and updates a different one.
    let (t1, t2) = setup(&c, "SERIALIZABLE").await;
    exec(&t1, "BEGIN").await;
    exec(&t2, "BEGIN").await;
    for t in [&t1, &t2] {
        assert_eq!(
            flat(t, "SELECT value FROM test WHERE id IN (1, 2) ORDER BY id").await,
            "10;20"
        );
    }
    exec(&t1, "UPDATE test SET value = 11 WHERE id = 1").await;
    exec(&t2, "UPDATE test SET value = 21 WHERE id = 2").await;
    exec(&t1, "COMMIT").await;
    assert_eq!(fails(&t2, "COMMIT").await, "40001", "G2-item");
    assert_eq!(table(&t1).await, "1|11;2|20");

    // P3, phantom: a predicate read sees the same rows again.
    let (t1, t2) = setup(&c, "SERIALIZABLE").await;
    exec(&t1, "BEGIN").await;
    exec(&t2, "BEGIN").await;
    assert_eq!(flat(&t1, "SELECT id FROM test WHERE value = 30").await, "");
    exec(&t2, "INSERT INTO test VALUES (3, 30)").await;
    exec(&t2, "COMMIT").await;
    assert_eq!(
        flat(&t1, "SELECT id FROM test WHERE value = 30").await,
        "",
        "P3"
    );
    exec(&t1, "COMMIT").await;

    // G2, anti-dependency cycle over predicates: both check that no row
    // matches, both insert one; one must fail.
    let (t1, t2) = setup(&c, "SERIALIZABLE").await;
    exec(&t1, "BEGIN").await;
    exec(&t2, "BEGIN").await;
    for t in [&t1, &t2] {
        assert_eq!(flat(t, "SELECT id FROM test WHERE value % 3 = 0").await, "");
    }
    exec(&t1, "INSERT INTO test VALUES (3, 30)").await;
    exec(&t2, "INSERT INTO test VALUES (4, 42)").await;
    exec(&t1, "COMMIT").await;
    assert_eq!(fails(&t2, "COMMIT").await, "40001", "G2");
    assert_eq!(
        flat(&t1, "SELECT id FROM test WHERE value % 3 = 0").await,
        "3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_shows_exactly_what_postgres_allows() {
    let c = cluster().await;

    let (t1, _) = setup(&c, "READ COMMITTED").await;
    assert_eq!(
        flat(&t1, "SHOW transaction_isolation").await,
        "read committed"
    );
    exec(&t1, "BEGIN ISOLATION LEVEL SERIALIZABLE").await;
    assert_eq!(
        flat(&t1, "SHOW transaction_isolation").await,
        "serializable"
    );
    exec(&t1, "COMMIT").await;

    // G0 and G1 stay impossible.
    let (t1, t2) = setup(&c, "READ COMMITTED").await;
    exec(&t1, "BEGIN").await;
    exec(&t2, "BEGIN").await;
    exec(&t1, "UPDATE test SET value = 101 WHERE id = 1").await;
    assert_eq!(
        flat(&t2, "SELECT value FROM test WHERE id = 1").await,
        "10",
        "G1a"
    );
    exec(&t1, "ROLLBACK").await;
    exec(&t2, "COMMIT").await;
    assert_eq!(table(&t1).await, "1|10;2|20");

    // P2, fuzzy read: allowed; the second read sees the committed change.
    let (t1, t2) = setup(&c, "READ COMMITTED").await;
    exec(&t1, "BEGIN").await;
    assert_eq!(flat(&t1, "SELECT value FROM test WHERE id = 1").await, "10");
    exec(&t2, "UPDATE test SET value = 11 WHERE id = 1").await;
    assert_eq!(
        flat(&t1, "SELECT value FROM test WHERE id = 1").await,
        "11",
        "P2"
    );
    exec(&t1, "COMMIT").await;

    // G-single, read skew: allowed.
    let (t1, t2) = setup(&c, "READ COMMITTED").await;
    exec(&t1, "BEGIN").await;
    assert_eq!(flat(&t1, "SELECT value FROM test WHERE id = 1").await, "10");
    exec(&t2, "BEGIN").await;
    exec(&t2, "UPDATE test SET value = 12 WHERE id = 1").await;
    exec(&t2, "UPDATE test SET value = 18 WHERE id = 2").await;
    exec(&t2, "COMMIT").await;
    assert_eq!(
        flat(&t1, "SELECT value FROM test WHERE id = 2").await,
        "18",
        "G-single"
    );
    exec(&t1, "COMMIT").await;

    // G2-item, write skew: allowed; both commit.
    let (t1, t2) = setup(&c, "READ COMMITTED").await;
    exec(&t1, "BEGIN").await;
    exec(&t2, "BEGIN").await;
    for t in [&t1, &t2] {
        assert_eq!(
            flat(t, "SELECT value FROM test WHERE id IN (1, 2) ORDER BY id").await,
            "10;20"
        );
    }
    exec(&t1, "UPDATE test SET value = 11 WHERE id = 1").await;
    exec(&t2, "UPDATE test SET value = 21 WHERE id = 2").await;
    exec(&t1, "COMMIT").await;
    exec(&t2, "COMMIT").await;
    assert_eq!(table(&t1).await, "1|11;2|21", "G2-item");

    // P4, lost update: not lost. The second increment waits for the first
    // and then updates the row as committed by it (PostgreSQL re-reads it).
    let (t1, t2) = setup(&c, "READ COMMITTED").await;
    exec(&t1, "BEGIN").await;
    exec(&t2, "BEGIN").await;
    assert_eq!(flat(&t1, "SELECT value FROM test WHERE id = 1").await, "10");
    assert_eq!(flat(&t2, "SELECT value FROM test WHERE id = 1").await, "10");
    exec(&t1, "UPDATE test SET value = value + 1 WHERE id = 1").await;
    let t2_update = "UPDATE test SET value = value + 1 WHERE id = 1";
    assert_eq!(waits_for(&t2, t2_update, &t1, "COMMIT").await, "ok", "P4");
    exec(&t2, "COMMIT").await;
    assert_eq!(table(&t1).await, "1|12;2|20", "P4");

    // P3, phantom: allowed.
    let (t1, t2) = setup(&c, "READ COMMITTED").await;
    exec(&t1, "BEGIN").await;
    assert_eq!(flat(&t1, "SELECT id FROM test WHERE value = 30").await, "");
    exec(&t2, "INSERT INTO test VALUES (3, 30)").await;
    assert_eq!(
        flat(&t1, "SELECT id FROM test WHERE value = 30").await,
        "3",
        "P3"
    );
    exec(&t1, "COMMIT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_for_update_and_for_share_lock_the_rows_they_return() {
    let c = cluster().await;

    // FOR UPDATE: writers wait, readers do not; the waiting increment
    // applies to the locking transaction's result.
    let (t1, t2) = setup(&c, "SERIALIZABLE").await;
    exec(&t1, "BEGIN").await;
    assert_eq!(
        flat(&t1, "SELECT value FROM test WHERE id = 1 FOR UPDATE").await,
        "10"
    );
    assert_eq!(flat(&t2, "SELECT value FROM test WHERE id = 1").await, "10");
    let add = "UPDATE test SET value = value + 5 WHERE id = 1";
    let finish = "UPDATE test SET value = 100 WHERE id = 1; COMMIT";
    assert_eq!(waits_for(&t2, add, &t1, finish).await, "ok");
    assert_eq!(table(&t1).await, "1|105;2|20");

    // FOR SHARE locks too.
    let (t1, t2) = setup(&c, "SERIALIZABLE").await;
    exec(&t1, "BEGIN").await;
    assert_eq!(
        flat(&t1, "SELECT value FROM test WHERE id = 2 FOR SHARE").await,
        "20"
    );
    let delete = "DELETE FROM test WHERE id = 2";
    assert_eq!(waits_for(&t2, delete, &t1, "COMMIT").await, "ok");
    assert_eq!(table(&t1).await, "1|10");

    // Only the rows returned are locked: a scan's other rows stay free.
    let (t1, t2) = setup(&c, "SERIALIZABLE").await;
    exec(&t1, "BEGIN").await;
    assert_eq!(
        flat(&t1, "SELECT id FROM test WHERE value > 15 FOR UPDATE").await,
        "2"
    );
    let started = std::time::Instant::now();
    exec(&t2, "UPDATE test SET value = 11 WHERE id = 1").await;
    assert!(started.elapsed() < std::time::Duration::from_millis(1500));
    let update = "UPDATE test SET value = 21 WHERE id = 2";
    assert_eq!(waits_for(&t2, update, &t1, "COMMIT").await, "ok");
    assert_eq!(table(&t1).await, "1|11;2|21");

    // FOR UPDATE OF another table locks nothing here; a locked row
    // is released by ROLLBACK as well.
    let (t1, t2) = setup(&c, "SERIALIZABLE").await;
    exec(&t1, "CREATE TABLE other (id INT PRIMARY KEY)").await;
    exec(&t1, "BEGIN").await;
    flat(&t1, "SELECT test.id FROM test, other FOR UPDATE OF other").await;
    exec(&t2, "UPDATE test SET value = 12 WHERE id = 1").await;
    assert_eq!(
        flat(&t1, "SELECT id FROM test WHERE id = 2 FOR UPDATE").await,
        "2"
    );
    let update = "UPDATE test SET value = 22 WHERE id = 2";
    assert_eq!(waits_for(&t2, update, &t1, "ROLLBACK").await, "ok");
    assert_eq!(table(&t1).await, "1|12;2|22");

    // Not supported: say so.
    assert_eq!(
        fails(&t1, "SELECT * FROM test FOR UPDATE NOWAIT").await,
        "0A000"
    );
    exec(&t1, "DROP TABLE other").await;
}

/// `AS OF SYSTEM TIME`: a SELECT or a whole read-only transaction reads a
/// consistent snapshot in the past, across ranges and nodes, as a relative
/// interval, a timestamp or an HLC decimal; future times, writes and
/// locks are refused; prepared statements resolve a relative time at
/// every execution.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_of_system_time_reads_a_past_snapshot() {
    let c = cluster().await;
    let (t1, t2) = setup(&c, "SERIALIZABLE").await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    // A timestamp between the two states, as the server's clock reads it.
    let before = rows(&t1, "SELECT now()::TIMESTAMP::TEXT").await[0][0]
        .clone()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    // Both rows change in one transaction (they are in different ranges).
    exec(&t2, "UPDATE test SET value = value + 100").await;
    assert_eq!(table(&t1).await, "1|110;2|120");

    // A relative time, from another node.
    let past = "SELECT id, value FROM test AS OF SYSTEM TIME '-1s' ORDER BY id";
    assert_eq!(flat(&t2, past).await, "1|10;2|20");
    // An absolute one, and the clause before WHERE.
    let q = format!("SELECT value FROM test AS OF SYSTEM TIME '{before}' WHERE id = 2");
    assert_eq!(flat(&t1, &q).await, "20");
    // A transaction at a fixed time: every statement sees that snapshot
    // and nothing can be written.
    exec(&t1, &format!("BEGIN AS OF SYSTEM TIME '{before}'")).await;
    assert_eq!(flat(&t1, "SELECT sum(value) FROM test").await, "30");
    assert_eq!(fails(&t1, "UPDATE test SET value = 0").await, "25006");
    exec(&t1, "ROLLBACK").await;
    // Prepared: the interval is resolved at every execution.
    let stmt = t1
        .prepare("SELECT value FROM test AS OF SYSTEM TIME '-1s' WHERE id = $1")
        .await
        .unwrap();
    let v: i32 = t1.query_one(&stmt, &[&1i32]).await.unwrap().get(0);
    assert_eq!(v, 10);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let v: i32 = t1.query_one(&stmt, &[&1i32]).await.unwrap().get(0);
    assert_eq!(v, 110);

    // Refused: the future, positive intervals, nonsense, writes, locks.
    let future = "SELECT * FROM test AS OF SYSTEM TIME '2999-01-01'";
    assert_eq!(fails(&t1, future).await, "22023");
    assert_eq!(
        fails(&t1, "SELECT * FROM test AS OF SYSTEM TIME '10s'").await,
        "22023"
    );
    assert_eq!(
        fails(&t1, "SELECT * FROM test AS OF SYSTEM TIME 'soon'").await,
        "22007"
    );
    let update = "UPDATE test SET value = 1 AS OF SYSTEM TIME '-1s'";
    assert_eq!(fails(&t1, update).await, "0A000");
    let lock = "SELECT * FROM test AS OF SYSTEM TIME '-1s' FOR UPDATE";
    assert_eq!(fails(&t1, lock).await, "0A000");
    // Older than the GC window (4 h by default).
    let old = "SELECT * FROM test AS OF SYSTEM TIME '-5h'";
    assert_eq!(fails(&t1, old).await, "22023");
    assert_eq!(table(&t1).await, "1|110;2|120");
}
