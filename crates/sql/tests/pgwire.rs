//! End-to-end SQL tests: an in-process 3-store cluster (direct calls
//! instead of RPCs, as in the kv crate's cluster tests), `tessera_sql::serve`
//! on 127.0.0.1:0 for two of the nodes, and `tokio-postgres` as the client.

mod common;

use common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::NoTls;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_rows_queries_and_ddl_visible_from_every_node() {
    let c = cluster().await;
    let a = connect(c.addrs[0]).await;
    let b = connect(c.addrs[1]).await;
    assert_eq!(flat(&a, "SHOW server_version").await, "15.0 (Tessera)");

    a.batch_execute(
        "CREATE TABLE accounts (id INT PRIMARY KEY, owner TEXT NOT NULL, balance DECIMAL(12,2) DEFAULT 0, \
         kind VARCHAR(10), opened DATE, flag BOOL) WITH (fillfactor=100)",
    )
    .await
    .unwrap();
    a.batch_execute("CREATE TABLE IF NOT EXISTS accounts (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let n = a
        .execute(
            "INSERT INTO accounts (id, owner, balance, kind, opened, flag) VALUES \
             (1, 'ann', 100.50, 'checking', '2024-01-02', true), \
             (2, 'bob', 20, 'savings', '2023-12-31', false), \
             (3, 'cat', DEFAULT, 'checking', NULL, NULL), \
             (4, 'dan', 7.125, 'savings', '2024-02-29', true)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 4);
    // Another node sees the new table and its rows.
    assert_eq!(
        flat(&b, "SELECT id, owner, balance FROM accounts ORDER BY id").await,
        "1|ann|100.50;2|bob|20.00;3|cat|0.00;4|dan|7.13"
    );
    assert_eq!(flat(&b, "SHOW TABLES").await, "public|accounts");
    // WHERE, ORDER BY, LIMIT/OFFSET, expressions, functions.
    assert_eq!(
        flat(&a, "SELECT upper(owner), balance * 2 FROM accounts WHERE balance > 10 ORDER BY balance DESC").await,
        "ANN|201.00;BOB|40.00"
    );
    assert_eq!(
        flat(
            &a,
            "SELECT id FROM accounts ORDER BY id DESC LIMIT 2 OFFSET 1"
        )
        .await,
        "3;2"
    );
    assert_eq!(
        flat(&a, "SELECT id, coalesce(opened, '1999-01-01'), length(owner) FROM accounts WHERE id IN (3, 1) ORDER BY 1").await,
        "1|2024-01-02|3;3|1999-01-01|3"
    );
    assert_eq!(
        flat(&a, "SELECT DISTINCT kind FROM accounts ORDER BY kind").await,
        "checking;savings"
    );
    // Aggregates.
    assert_eq!(
        flat(&a, "SELECT kind, count(*), sum(balance), min(id), max(owner) FROM accounts GROUP BY kind ORDER BY kind").await,
        "checking|2|100.50|1|cat;savings|2|27.13|2|dan"
    );
    assert_eq!(
        flat(
            &a,
            "SELECT kind FROM accounts GROUP BY kind HAVING count(*) > 1 AND sum(balance) > 50"
        )
        .await,
        "checking"
    );
    assert_eq!(
        flat(&a, "SELECT count(*), avg(id) FROM accounts WHERE id > 100").await,
        "0|NULL"
    );
    assert_eq!(
        flat(&a, "SELECT avg(id) FROM accounts").await,
        "2.5000000000000000"
    );
    // Joins: hash (equality) and left outer.
    a.batch_execute(
        "CREATE TABLE txns (tid BIGSERIAL PRIMARY KEY, account INT, amount INT); \
         INSERT INTO txns (account, amount) VALUES (1, 10), (1, 5), (2, 7), (9, 1)",
    )
    .await
    .unwrap();
    assert_eq!(
        flat(&a, "SELECT tid FROM txns ORDER BY tid").await,
        "1;2;3;4"
    );
    assert_eq!(
        flat(&a, "SELECT a.owner, sum(t.amount) FROM accounts a JOIN txns t ON t.account = a.id GROUP BY a.owner ORDER BY a.owner").await,
        "ann|15;bob|7"
    );
    assert_eq!(
        flat(&a, "SELECT a.id, t.amount FROM accounts a LEFT JOIN txns t ON a.id = t.account AND t.amount > 6 ORDER BY a.id, t.amount").await,
        "1|10;2|7;3|NULL;4|NULL"
    );
    // UPDATE and DELETE, with RETURNING.
    assert_eq!(
        flat(&a, "UPDATE accounts SET balance = balance + 1, kind = 'vip' WHERE id = 2 RETURNING id, balance").await,
        "2|21.00"
    );
    assert_eq!(
        a.execute("DELETE FROM accounts WHERE flag IS NULL", &[])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        flat(&b, "SELECT id, kind FROM accounts ORDER BY id").await,
        "1|checking;2|vip;4|savings"
    );
    // Primary-key predicates become point lookups and spans.
    let plan = flat(&a, "EXPLAIN SELECT * FROM accounts WHERE id = 2").await;
    assert!(
        plan.contains("point lookup") && plan.contains("/1/2"),
        "{plan}"
    );
    let plan = flat(
        &a,
        "EXPLAIN SELECT * FROM accounts WHERE id BETWEEN 2 AND 3",
    )
    .await;
    assert!(
        plan.contains("span scan") && plan.contains("/1/2 - "),
        "{plan}"
    );
    let plan = flat(&a, "EXPLAIN UPDATE accounts SET flag = false WHERE id = 4").await;
    assert!(plan.contains("/1/4"), "{plan}");
    let plan = flat(&a, "EXPLAIN SELECT * FROM accounts WHERE owner = 'x'").await;
    assert!(plan.contains("FULL SCAN"), "{plan}");
    // A table without a primary key gets a hidden rowid.
    a.batch_execute("CREATE TABLE log (msg TEXT, at TIMESTAMP); INSERT INTO log VALUES ('a', '2024-05-06 07:08:09'), ('a', NULL)")
        .await
        .unwrap();
    assert_eq!(
        flat(&a, "SELECT * FROM log ORDER BY at").await,
        "a|2024-05-06 07:08:09;a|NULL"
    );
    // Rowids come from each node without coordination: never the same
    // twice, in one statement or across nodes; one node's rows keep their
    // insertion order.
    let (ra, rb) = tokio::join!(
        a.batch_execute("INSERT INTO log (msg) SELECT 'b' || g FROM generate_series(1, 300) AS g"),
        b.batch_execute("INSERT INTO log (msg) SELECT 'c' || g FROM generate_series(1, 300) AS g"),
    );
    ra.unwrap();
    rb.unwrap();
    assert_eq!(flat(&a, "SELECT count(*) FROM log").await, "602");
    assert_eq!(
        flat(&b, "SELECT msg FROM log WHERE msg LIKE 'b%' LIMIT 3").await,
        "b1;b2;b3"
    );
    // TRUNCATE and DROP.
    a.batch_execute("TRUNCATE log").await.unwrap();
    assert_eq!(flat(&b, "SELECT count(*) FROM log").await, "0");
    a.batch_execute("DROP TABLE log, txns").await.unwrap();
    assert_eq!(sqlstate(&b, "SELECT * FROM log").await, "42P01");
    a.batch_execute("DROP TABLE IF EXISTS log").await.unwrap();
    // SET and SHOW session variables.
    a.batch_execute("SET application_name = 'tests'")
        .await
        .unwrap();
    assert_eq!(flat(&a, "SHOW application_name").await, "tests");
    assert_eq!(flat(&a, "SHOW transaction_isolation").await, "serializable");
    // RESET and RESET ALL bring back the defaults.
    a.batch_execute("RESET application_name").await.unwrap();
    assert_eq!(flat(&a, "SHOW application_name").await, "");
    a.batch_execute(
        "SET application_name = 'again'; SET search_path = a, b; \
         SET default_transaction_isolation = 'read committed'",
    )
    .await
    .unwrap();
    assert_eq!(flat(&a, "SHOW search_path").await, "a, b");
    assert_eq!(
        flat(&a, "SHOW transaction_isolation").await,
        "read committed"
    );
    a.batch_execute("RESET ALL").await.unwrap();
    assert_eq!(flat(&a, "SHOW application_name").await, "");
    assert_eq!(flat(&a, "SHOW search_path").await, "\"$user\", public");
    assert_eq!(flat(&a, "SHOW transaction_isolation").await, "serializable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_transactions_commit_roll_back_and_see_their_own_writes() {
    let c = cluster().await;
    let a = connect(c.addrs[0]).await;
    let b = connect(c.addrs[1]).await;
    a.batch_execute("CREATE TABLE kv (k INT PRIMARY KEY, v TEXT)")
        .await
        .unwrap();
    a.batch_execute("INSERT INTO kv VALUES (1, 'one')")
        .await
        .unwrap();

    // Rolled back: nothing is applied.
    a.batch_execute("BEGIN").await.unwrap();
    a.batch_execute("INSERT INTO kv VALUES (2, 'two')")
        .await
        .unwrap();
    a.batch_execute("UPDATE kv SET v = 'uno' WHERE k = 1")
        .await
        .unwrap();
    assert_eq!(
        flat(&a, "SELECT k, v FROM kv ORDER BY k").await,
        "1|uno;2|two"
    );
    assert_eq!(flat(&b, "SELECT k, v FROM kv ORDER BY k").await, "1|one");
    a.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(flat(&a, "SELECT k, v FROM kv ORDER BY k").await, "1|one");

    // Committed: everything at once.
    a.batch_execute(
        "BEGIN; INSERT INTO kv VALUES (2, 'two'), (3, 'three'); DELETE FROM kv WHERE k = 1",
    )
    .await
    .unwrap();
    assert_eq!(flat(&b, "SELECT count(*) FROM kv").await, "1");
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(flat(&b, "SELECT k FROM kv ORDER BY k").await, "2;3");

    // An error aborts the transaction until ROLLBACK.
    a.batch_execute("BEGIN").await.unwrap();
    a.batch_execute("INSERT INTO kv VALUES (4, 'four')")
        .await
        .unwrap();
    assert_eq!(sqlstate(&a, "SELECT 1/0").await, "22012");
    assert_eq!(sqlstate(&a, "SELECT 1").await, "25P02");
    a.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(flat(&a, "SELECT count(*) FROM kv WHERE k = 4").await, "0");

    // So does an error found before anything runs: a syntax error, an
    // unknown table, in the simple and in the extended protocol. COMMIT
    // then rolls back (its tag says so) and nothing of the block stays.
    for bad in ["SELEC 1", "SELECT * FROM nosuch"] {
        a.batch_execute("BEGIN; INSERT INTO kv VALUES (6, 'six')")
            .await
            .unwrap();
        assert!(a.simple_query(bad).await.is_err(), "{bad}");
        assert_eq!(sqlstate(&a, "SELECT 1").await, "25P02");
        let tag = a.simple_query("COMMIT").await.unwrap();
        assert!(
            matches!(
                &tag[0],
                tokio_postgres::SimpleQueryMessage::CommandComplete(0)
            ),
            "{bad}"
        );
        assert_eq!(flat(&b, "SELECT count(*) FROM kv WHERE k = 6").await, "0");
        a.batch_execute("BEGIN; INSERT INTO kv VALUES (6, 'six')")
            .await
            .unwrap();
        assert!(a.prepare(bad).await.is_err(), "{bad}");
        assert_eq!(sqlstate(&a, "SELECT 1").await, "25P02");
        a.batch_execute("COMMIT").await.unwrap();
        assert_eq!(flat(&b, "SELECT count(*) FROM kv WHERE k = 6").await, "0");
    }

    // tokio-postgres' transaction API (extended protocol).
    let mut a = a;
    let tx = a.transaction().await.unwrap();
    tx.execute("INSERT INTO kv VALUES ($1, $2)", &[&5i32, &"five"])
        .await
        .unwrap();
    let row = tx
        .query_one("SELECT v FROM kv WHERE k = $1", &[&5i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "five");
    tx.commit().await.unwrap();
    assert_eq!(flat(&b, "SELECT v FROM kv WHERE k = 5").await, "five");
}

/// The results of a simple query: each row's values joined by `|`,
/// rows by `;`, one entry per statement that returned rows.
async fn results(c: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rows = Vec::new();
    for m in c.simple_query(sql).await.unwrap() {
        match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => rows.push(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL"))
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            tokio_postgres::SimpleQueryMessage::CommandComplete(_) if !rows.is_empty() => {
                out.push(std::mem::take(&mut rows).join(";"))
            }
            _ => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_string_of_several_statements_runs_them_all_or_none() {
    let c = cluster().await;
    let a = connect(c.addrs[0]).await;
    let b = connect(c.addrs[1]).await;
    // DDL, SPLIT AT and SHOW RANGES among other statements.
    let r = results(
        &a,
        "CREATE TABLE m (k INT PRIMARY KEY, v TEXT); \
         INSERT INTO m VALUES (1, 'a;b'), (20, $$c;d$$); -- a comment; with a semicolon
         ALTER TABLE m SPLIT AT VALUES (10); \
         SHOW RANGES FROM TABLE m; SELECT v FROM m ORDER BY k; VACUUM",
    )
    .await;
    assert_eq!(r.len(), 3, "{r:?}");
    assert!(r[0].ends_with("|/10"), "SPLIT AT: {r:?}");
    assert_eq!(r[1].matches(';').count(), 1, "two ranges: {r:?}");
    assert_eq!(r[2], "a;b;c;d");

    // Queries and DML outside BEGIN: one transaction, as in PostgreSQL. A
    // failure undoes the statements before it, on both ranges.
    assert_eq!(
        sqlstate(
            &a,
            "INSERT INTO m VALUES (2, 'x'); UPDATE m SET v = 'y' WHERE k = 20; \
             INSERT INTO m VALUES (1, 'dup')"
        )
        .await,
        "23505"
    );
    assert_eq!(
        flat(&b, "SELECT k, v FROM m ORDER BY k").await,
        "1|a;b;20|c;d"
    );
    assert_eq!(sqlstate(&a, "DELETE FROM m; SELECT 1/0").await, "22012");
    assert_eq!(flat(&b, "SELECT count(*) FROM m").await, "2");
    // The session is not left in a transaction.
    assert_eq!(flat(&a, "SELECT count(*) FROM m").await, "2");
    // Later statements see the earlier ones' writes; all commit together.
    let r = results(
        &a,
        "INSERT INTO m VALUES (3, 'c'); UPDATE m SET v = v || '!' WHERE k > 1; \
         SELECT k, v FROM m ORDER BY k",
    )
    .await;
    assert_eq!(r, ["1|a;b;3|c!;20|c;d!"]);
    assert_eq!(
        flat(&b, "SELECT count(*) FROM m WHERE v LIKE '%!'").await,
        "2"
    );

    // A syntax error anywhere runs nothing.
    assert_eq!(
        sqlstate(&a, "INSERT INTO m VALUES (4, 'd'); SELEC 1").await,
        "42601"
    );
    assert_eq!(
        sqlstate(
            &a,
            "CREATE TABLE n (k INT PRIMARY KEY); SHOW RANGES FROM TABLE n m"
        )
        .await,
        "42601"
    );
    assert_eq!(flat(&b, "SELECT count(*) FROM m WHERE k = 4").await, "0");
    assert_eq!(sqlstate(&b, "SELECT * FROM n").await, "42P01");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_string_that_meets_a_conflict_is_retried_whole() {
    let c = cluster().await;
    let a = connect(c.addrs[0]).await;
    let b = connect(c.addrs[1]).await;
    a.batch_execute(
        "CREATE TABLE r (k INT PRIMARY KEY, v INT); INSERT INTO r VALUES (1, 0); \
         CREATE TABLE gate (k INT PRIMARY KEY, v INT); INSERT INTO gate VALUES (1, 0)",
    )
    .await
    .unwrap();
    // b holds the gate row; a's string reads row 1 of r, then waits for
    // the gate while b changes row 1 and commits. a's first attempt read a
    // stale row 1, so it cannot commit; the server runs the whole string
    // again and, since no result had been sent, the client sees only the
    // second attempt's results.
    b.batch_execute("BEGIN; UPDATE gate SET v = 1 WHERE k = 1")
        .await
        .unwrap();
    let (first, ()) = tokio::join!(
        async {
            results(
                &a,
                "SELECT v FROM r WHERE k = 1; UPDATE gate SET v = 2 WHERE k = 1; \
                 UPDATE r SET v = v + 1 WHERE k = 1; SELECT v FROM r WHERE k = 1",
            )
            .await
        },
        async {
            tokio::time::sleep(std::time::Duration::from_millis(400)).await;
            b.batch_execute("UPDATE r SET v = 100 WHERE k = 1; COMMIT")
                .await
                .unwrap();
        }
    );
    assert_eq!(first, ["100", "101"], "the retried attempt's results");
    assert_eq!(flat(&b, "SELECT v FROM r WHERE k = 1").await, "101");
    assert_eq!(flat(&b, "SELECT v FROM gate WHERE k = 1").await, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_transactions_fail_with_serialization_or_unique_errors() {
    let c = cluster().await;
    let a = connect(c.addrs[0]).await;
    let b = connect(c.addrs[1]).await;
    a.batch_execute("CREATE TABLE acct (id INT PRIMARY KEY, bal INT NOT NULL)")
        .await
        .unwrap();
    a.batch_execute("INSERT INTO acct VALUES (1, 100), (2, 100)")
        .await
        .unwrap();

    // Both update row 1: the second waits for the first (a row lock) and
    // then changes the row the first committed; nothing is lost.
    a.batch_execute("BEGIN; UPDATE acct SET bal = bal - 10 WHERE id = 1")
        .await
        .unwrap();
    let (second, ()) = tokio::join!(
        b.batch_execute("BEGIN; UPDATE acct SET bal = bal - 20 WHERE id = 1"),
        async {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            a.batch_execute("COMMIT").await.unwrap();
        }
    );
    second.unwrap();
    b.batch_execute("COMMIT").await.unwrap();
    assert_eq!(flat(&a, "SELECT bal FROM acct WHERE id = 1").await, "70");

    // Both read row 1 first: the second cannot be ordered after the first,
    // so it fails (40001) instead of updating a row it saw before.
    a.batch_execute(
        "BEGIN; SELECT bal FROM acct WHERE id = 1; UPDATE acct SET bal = 0 WHERE id = 1",
    )
    .await
    .unwrap();
    b.batch_execute("BEGIN; SELECT bal FROM acct WHERE id = 1")
        .await
        .unwrap();
    let (second, ()) = tokio::join!(
        b.batch_execute("UPDATE acct SET bal = 1 WHERE id = 1"),
        async {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            a.batch_execute("COMMIT").await.unwrap();
        }
    );
    let code = second.unwrap_err().code().map(|c| c.code().to_string());
    assert_eq!(code.as_deref(), Some("40001"));
    b.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(flat(&a, "SELECT bal FROM acct WHERE id = 1").await, "0");

    // Two inserts of the same key: the second commit is a unique violation.
    a.batch_execute("BEGIN; INSERT INTO acct VALUES (3, 1)")
        .await
        .unwrap();
    b.batch_execute("BEGIN; INSERT INTO acct VALUES (3, 2)")
        .await
        .unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(sqlstate(&b, "COMMIT").await, "23505");
    b.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(flat(&b, "SELECT bal FROM acct WHERE id = 3").await, "1");

    // Concurrent single-statement increments are retried, none is lost.
    let mut tasks = Vec::new();
    for i in 0..6 {
        let addr = c.addrs[i % 2];
        tasks.push(tokio::spawn(async move {
            let c = connect(addr).await;
            for _ in 0..5 {
                c.batch_execute("UPDATE acct SET bal = bal + 1 WHERE id = 2")
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(flat(&a, "SELECT bal FROM acct WHERE id = 2").await, "130");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_spanning_ranges_commits_atomically() {
    let c = cluster().await;
    let a = connect(c.addrs[0]).await;
    let b = connect(c.addrs[1]).await;
    a.batch_execute("CREATE TABLE t (id INT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    a.batch_execute("INSERT INTO t VALUES (1, 0), (2, 0), (8, 0), (9, 0)")
        .await
        .unwrap();
    // Split the table's rows at id 5.
    let catalog = tessera_sql::catalog::Catalog::new(c.dbs[&1].clone());
    let desc = catalog.table("defaultdb", "t").await.unwrap().unwrap();
    let split = tessera_sql::encoding::row_key(desc.id, &[tessera_sql::types::Datum::Int(5)]);
    c.dbs[&1].split(&split).await.unwrap();

    a.batch_execute("BEGIN; UPDATE t SET v = 1 WHERE id = 1; UPDATE t SET v = 1 WHERE id = 9")
        .await
        .unwrap();
    // Not visible to others before COMMIT...
    assert_eq!(flat(&b, "SELECT sum(v) FROM t").await, "0");
    a.batch_execute("COMMIT").await.unwrap();
    // ...and all of it after.
    assert_eq!(
        flat(&b, "SELECT id, v FROM t ORDER BY id").await,
        "1|1;2|0;8|0;9|1"
    );
    // A rolled-back one leaves nothing, on either range.
    a.batch_execute("BEGIN; UPDATE t SET v = 7; ROLLBACK")
        .await
        .unwrap();
    assert_eq!(flat(&b, "SELECT sum(v) FROM t").await, "2");
    // A single statement over both ranges is one transaction.
    a.batch_execute("UPDATE t SET v = 3").await.unwrap();
    assert_eq!(
        flat(&b, "SELECT id, v FROM t ORDER BY id").await,
        "1|3;2|3;8|3;9|3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_take_parameters_and_return_binary_results() {
    let c = cluster().await;
    let a = connect(c.addrs[0]).await;
    a.batch_execute(
        "CREATE TABLE items (id INT PRIMARY KEY, name TEXT, price FLOAT8, ok BOOL, qty BIGINT, small SMALLINT, code CHAR(4))",
    )
    .await
    .unwrap();
    let ins = a
        .prepare("INSERT INTO items VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .await
        .unwrap();
    for i in 1..=5i32 {
        a.execute(
            &ins,
            &[
                &i,
                &format!("item{i}"),
                &(i as f64 * 1.5),
                &(i % 2 == 0),
                &(i as i64 * 1000),
                &(i as i16),
                &"ab",
            ],
        )
        .await
        .unwrap();
    }
    // tokio-postgres asks for binary results.
    let row = a
        .query_one(
            "SELECT id, name, price, ok, qty, small, code FROM items WHERE id = $1",
            &[&3i32],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 3);
    assert_eq!(row.get::<_, String>(1), "item3");
    assert_eq!(row.get::<_, f64>(2), 4.5);
    assert!(!row.get::<_, bool>(3));
    assert_eq!(row.get::<_, i64>(4), 3000);
    assert_eq!(row.get::<_, i16>(5), 3);
    assert_eq!(row.get::<_, String>(6), "ab  ");
    // An int8 parameter compared with an int4 key, typed by the client.
    let st = a
        .prepare_typed(
            "SELECT sum(small), count(*), sum(qty)::int8 FROM items WHERE id BETWEEN $1 AND $2",
            &[
                tokio_postgres::types::Type::INT8,
                tokio_postgres::types::Type::INT8,
            ],
        )
        .await
        .unwrap();
    let row = a.query_one(&st, &[&2i64, &4i64]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 9);
    assert_eq!(row.get::<_, i64>(1), 3);
    assert_eq!(row.get::<_, i64>(2), 9000);
    // Parameter types are inferred from context.
    let up = a
        .prepare("UPDATE items SET qty = qty + $1 WHERE id = $2")
        .await
        .unwrap();
    assert_eq!(
        up.params(),
        &[
            tokio_postgres::types::Type::INT8,
            tokio_postgres::types::Type::INT4
        ]
    );
    assert_eq!(a.execute(&up, &[&5i64, &1i32]).await.unwrap(), 1);
    let row = a
        .query_one("SELECT qty FROM items WHERE id = 1", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1005);
    // Re-executing the same prepared statement many times.
    let sel = a
        .prepare("SELECT name FROM items WHERE id = $1")
        .await
        .unwrap();
    for i in 1..=5i32 {
        let r = a.query(&sel, &[&i]).await.unwrap();
        assert_eq!(r[0].get::<_, String>(0), format!("item{i}"));
    }
    assert!(a.query(&sel, &[&99i32]).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_the_postgres_sqlstate() {
    let c = cluster().await;
    let a = connect(c.addrs[0]).await;
    a.batch_execute("CREATE TABLE e (id INT PRIMARY KEY, name TEXT NOT NULL, n INT)")
        .await
        .unwrap();
    a.batch_execute("INSERT INTO e VALUES (1, 'x', 1)")
        .await
        .unwrap();
    assert_eq!(sqlstate(&a, "SELEC 1").await, "42601");
    assert_eq!(sqlstate(&a, "SELECT * FROM nope").await, "42P01");
    assert_eq!(sqlstate(&a, "SELECT nope FROM e").await, "42703");
    assert_eq!(sqlstate(&a, "CREATE TABLE e (id INT)").await, "42P07");
    assert_eq!(
        sqlstate(&a, "INSERT INTO e VALUES (1, 'y', 2)").await,
        "23505"
    );
    assert_eq!(
        sqlstate(&a, "INSERT INTO e VALUES (2, NULL, 2)").await,
        "23502"
    );
    assert_eq!(sqlstate(&a, "INSERT INTO e (id) VALUES (3)").await, "23502");
    assert_eq!(sqlstate(&a, "SELECT n / 0 FROM e").await, "22012");
    assert_eq!(
        sqlstate(&a, "SELECT * FROM e WHERE id = 'abc'").await,
        "22P02"
    );
    assert_eq!(
        sqlstate(&a, "INSERT INTO e VALUES (4, 'z', true)").await,
        "42804"
    );
    assert_eq!(sqlstate(&a, "SELECT * FROM e WHERE n").await, "42804");
    assert_eq!(
        sqlstate(&a, "SELECT id FROM e GROUP BY name").await,
        "42803"
    );
    // A unique violation within one multi-row statement applies nothing.
    assert_eq!(
        sqlstate(&a, "INSERT INTO e VALUES (5, 'a', 0), (5, 'b', 0)").await,
        "23505"
    );
    assert_eq!(flat(&a, "SELECT count(*) FROM e").await, "1");
    // The connection still works after all of that.
    assert_eq!(flat(&a, "SELECT name FROM e WHERE id = 1").await, "x");
    // Errors on the extended protocol too.
    let err = a
        .query("SELECT * FROM e WHERE id = $1 / 0", &[&1i32])
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "22012");
    let err = a.prepare("SELECT * FROM missing").await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42P01");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_one_connection_closes_only_that_connection() {
    let c = cluster().await;
    let a = connect(c.addrs[0]).await;
    a.batch_execute("CREATE TABLE g (id INT PRIMARY KEY)")
        .await
        .unwrap();

    // SSLRequest is answered with 'N'.
    let mut s = tokio::net::TcpStream::connect(c.addrs[0]).await.unwrap();
    s.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .await
        .unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await.unwrap();
    assert_eq!(b[0], b'N');

    // Garbage instead of a startup message: that connection is closed.
    let mut g = tokio::net::TcpStream::connect(c.addrs[0]).await.unwrap();
    g.write_all(b"\xff\xff\xff\xffGARBAGE GARBAGE GARBAGE\x00\x01\x02")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match g.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => continue,
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(closed, "the garbage connection should be closed");

    // Garbage after a good startup: an unknown message type.
    let mut g = tokio::net::TcpStream::connect(c.addrs[0]).await.unwrap();
    let mut body = Vec::new();
    body.extend_from_slice(&196608u32.to_be_bytes());
    body.extend_from_slice(b"user\0root\0database\0defaultdb\0\0");
    let mut startup = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    startup.extend_from_slice(&body);
    g.write_all(&startup).await.unwrap();
    // Read until ReadyForQuery ('Z' ... 'I').
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !got.ends_with(&[b'Z', 0, 0, 0, 5, b'I']) {
            let n = g.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed during startup");
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("startup completes");
    g.write_all(b"\x01\x00\x00\x00\x08garbage!").await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match g.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => continue,
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(closed, "the connection that sent garbage should be closed");

    // The other connection and new ones keep working.
    a.batch_execute("INSERT INTO g VALUES (1)").await.unwrap();
    assert_eq!(flat(&a, "SELECT count(*) FROM g").await, "1");
    let fresh = connect(c.addrs[0]).await;
    assert_eq!(flat(&fresh, "SELECT id FROM g").await, "1");
    // A database that does not exist is refused.
    let err = tokio_postgres::connect(
        &format!(
            "host=127.0.0.1 port={} user=root dbname=nope",
            c.addrs[0].port()
        ),
        NoTls,
    )
    .await
    .err()
    .expect("connecting to a missing database fails");
    assert_eq!(err.code().unwrap().code(), "3D000");
}
