//! Golden scripts, one per named anomaly (after Hermitage's tests of
//! PostgreSQL): two sessions on different nodes interleave statements on a
//! table whose two rows live in different ranges. Under SERIALIZABLE every
//! anomaly is prevented (a transaction fails with 40001 or never sees it);
//! under READ COMMITTED the ones PostgreSQL allows appear (fuzzy reads,
//! read skew, write skew, phantoms) and the ones it forbids do not (dirty
//! writes, dirty reads).

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
    exec(&t2, "UPDATE test SET value = 12 WHERE id = 1").await;
    exec(&t1, "UPDATE test SET value = 21 WHERE id = 2").await;
    exec(&t2, "UPDATE test SET value = 22 WHERE id = 2").await;
    exec(&t1, "COMMIT").await;
    assert_eq!(fails(&t2, "COMMIT").await, "40001");
    assert_eq!(table(&t1).await, "1|11;2|21", "G0");

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
    exec(&t2, "UPDATE test SET value = 11 WHERE id = 1").await;
    exec(&t1, "COMMIT").await;
    assert_eq!(fails(&t2, "COMMIT").await, "40001", "P4");

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
    exec(&t1, "UPDATE test SET value = 0 WHERE id = 2").await;
    assert_eq!(fails(&t1, "COMMIT").await, "40001", "G-single");

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
