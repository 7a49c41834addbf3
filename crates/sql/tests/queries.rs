//! Query features end to end over `tokio-postgres`: subqueries (scalar,
//! IN, EXISTS, ANY/ALL, correlated), CTEs, set operations, views, outer
//! joins, generate_series, UPDATE ... FROM and tuple assignments, roles
//! and read-only transactions, TIME and INTERVAL columns with date/time
//! arithmetic, and the functions they need.

mod common;

use common::*;

async fn setup(c: &tokio_postgres::Client) {
    c.batch_execute(
        "CREATE TABLE t1 (a INT PRIMARY KEY, b INT);
         CREATE TABLE t2 (x INT, y INT);
         INSERT INTO t1 VALUES (1, 10), (2, 20), (3, NULL);
         INSERT INTO t2 VALUES (1, 100), (1, 101), (2, 200), (NULL, 300);",
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subqueries_follow_postgres_null_and_cardinality_rules() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    setup(&s).await;
    // Scalar: one row, no row (NULL), more rows (21000), more columns (42601).
    assert_eq!(flat(&s, "SELECT (SELECT max(y) FROM t2)").await, "300");
    assert_eq!(
        flat(&s, "SELECT (SELECT y FROM t2 WHERE x = 9)").await,
        "NULL"
    );
    assert_eq!(sqlstate(&s, "SELECT (SELECT y FROM t2)").await, "21000");
    assert_eq!(sqlstate(&s, "SELECT (SELECT x, y FROM t2)").await, "42601");
    // IN / NOT IN: a NULL in the subquery makes a miss unknown.
    assert_eq!(
        flat(
            &s,
            "SELECT a FROM t1 WHERE a IN (SELECT x FROM t2) ORDER BY a"
        )
        .await,
        "1;2"
    );
    assert_eq!(
        flat(&s, "SELECT a FROM t1 WHERE a NOT IN (SELECT x FROM t2)").await,
        ""
    );
    assert_eq!(
        flat(
            &s,
            "SELECT a FROM t1 WHERE a NOT IN (SELECT x FROM t2 WHERE x IS NOT NULL)"
        )
        .await,
        "3"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT 3 IN (SELECT x FROM t2), NULL IN (SELECT 1 WHERE false)"
        )
        .await,
        "NULL|f"
    );
    // EXISTS / NOT EXISTS, correlated.
    assert_eq!(
        flat(
            &s,
            "SELECT a FROM t1 WHERE EXISTS (SELECT 1 FROM t2 WHERE t2.x = t1.a) ORDER BY a"
        )
        .await,
        "1;2"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT a FROM t1 WHERE NOT EXISTS (SELECT 1 FROM t2 WHERE t2.x = t1.a)"
        )
        .await,
        "3"
    );
    // Correlated scalar subquery in the select list and ORDER BY.
    assert_eq!(
        flat(
            &s,
            "SELECT a, (SELECT count(*) FROM t2 WHERE t2.x = t1.a) AS n FROM t1 ORDER BY n DESC, a"
        )
        .await,
        "1|2;2|1;3|0"
    );
    // Two levels: the innermost query reads the outermost row.
    assert_eq!(
        flat(
            &s,
            "SELECT a FROM t1 WHERE EXISTS (SELECT 1 FROM t2 WHERE t2.x = t1.a \
             AND t2.y IN (SELECT y FROM t2 AS t3 WHERE t3.y > t1.b * 10)) ORDER BY a"
        )
        .await,
        "1"
    );
    // ANY / ALL.
    assert_eq!(
        flat(
            &s,
            "SELECT a FROM t1 WHERE b > ALL (SELECT 15 UNION SELECT 5)"
        )
        .await,
        "2"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT a FROM t1 WHERE b = ANY (SELECT y / 10 FROM t2) ORDER BY a"
        )
        .await,
        "1;2"
    );
    // Aggregated outer query: the subquery reads a grouped column.
    assert_eq!(
        flat(
            &s,
            "SELECT x, (SELECT b FROM t1 WHERE a = x) FROM t2 WHERE x IS NOT NULL GROUP BY x ORDER BY x"
        )
        .await,
        "1|10;2|20"
    );
    // In DML: WHERE and SET.
    s.batch_execute(
        "UPDATE t1 SET b = (SELECT sum(y) FROM t2 WHERE t2.x = t1.a) WHERE a IN (SELECT x FROM t2)",
    )
    .await
    .unwrap();
    assert_eq!(
        flat(&s, "SELECT a, b FROM t1 ORDER BY a").await,
        "1|201;2|200;3|NULL"
    );
    s.batch_execute("DELETE FROM t1 WHERE NOT EXISTS (SELECT 1 FROM t2 WHERE x = a)")
        .await
        .unwrap();
    assert_eq!(flat(&s, "SELECT a FROM t1 ORDER BY a").await, "1;2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctes_set_operations_and_views() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    setup(&s).await;
    assert_eq!(
        flat(
            &s,
            "WITH big AS (SELECT x, y FROM t2 WHERE y > 100), n(c) AS (SELECT count(*) FROM big) \
             SELECT c, (SELECT min(y) FROM big) FROM n"
        )
        .await,
        "3|101"
    );
    // A CTE shadows a table of the same name.
    assert_eq!(
        flat(&s, "WITH t1 AS (SELECT 7 AS a) SELECT a FROM t1").await,
        "7"
    );
    assert_eq!(
        flat(&s, "SELECT a FROM t1 UNION SELECT x FROM t2 ORDER BY 1").await,
        "1;2;3;NULL"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT x FROM t2 UNION ALL SELECT a FROM t1 ORDER BY 1 LIMIT 3"
        )
        .await,
        "1;1;1"
    );
    assert_eq!(
        flat(&s, "SELECT x FROM t2 INTERSECT SELECT a FROM t1 ORDER BY x").await,
        "1;2"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT x FROM t2 INTERSECT ALL SELECT 1 UNION ALL SELECT 1"
        )
        .await,
        "1;1"
    );
    assert_eq!(
        flat(&s, "SELECT a FROM t1 EXCEPT SELECT x FROM t2").await,
        "3"
    );
    assert_eq!(
        flat(&s, "SELECT x FROM t2 EXCEPT ALL SELECT 1 ORDER BY 1").await,
        "1;2;NULL"
    );
    // Types unify across branches; widths must match.
    assert_eq!(
        flat(&s, "SELECT 1 UNION SELECT 2.5 ORDER BY 1").await,
        "1;2.5"
    );
    assert_eq!(sqlstate(&s, "SELECT 1 UNION SELECT 1, 2").await, "42601");
    assert_eq!(
        sqlstate(&s, "SELECT 1 UNION SELECT 'a'::text").await,
        "42804"
    );

    // Views: stored, expanded where used, read-only, dropped.
    s.batch_execute("CREATE VIEW v1 (k, total) AS SELECT x, sum(y) FROM t2 GROUP BY x")
        .await
        .unwrap();
    assert_eq!(
        flat(&s, "SELECT k, total FROM v1 WHERE k IS NOT NULL ORDER BY k").await,
        "1|201;2|200"
    );
    let other = connect(c.addrs[1]).await;
    assert_eq!(
        flat(
            &other,
            "SELECT v.total FROM v1 AS v JOIN t1 ON t1.a = v.k WHERE a = 2"
        )
        .await,
        "200"
    );
    assert_eq!(sqlstate(&s, "CREATE VIEW v1 AS SELECT 1").await, "42P07");
    assert_eq!(sqlstate(&s, "CREATE VIEW t1 AS SELECT 1").await, "42P07");
    assert_eq!(
        sqlstate(&s, "CREATE VIEW bad AS SELECT nope FROM t1").await,
        "42703"
    );
    assert_eq!(sqlstate(&s, "INSERT INTO v1 VALUES (1, 2)").await, "42809");
    s.batch_execute("CREATE OR REPLACE VIEW v1 AS SELECT 1 AS one")
        .await
        .unwrap();
    assert_eq!(flat(&s, "SELECT * FROM v1").await, "1");
    assert_eq!(sqlstate(&s, "DROP VIEW t1").await, "42809");
    s.batch_execute("DROP VIEW v1").await.unwrap();
    assert_eq!(sqlstate(&s, "SELECT * FROM v1").await, "42P01");
    assert_eq!(sqlstate(&s, "DROP VIEW v1").await, "42P01");
    s.batch_execute("DROP VIEW IF EXISTS v1").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outer_joins_series_and_functions() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    setup(&s).await;
    assert_eq!(
        flat(&s, "SELECT a, x FROM t1 RIGHT JOIN t2 ON a = x ORDER BY y").await,
        "1|1;1|1;2|2;NULL|NULL"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT a, x FROM t1 FULL OUTER JOIN t2 ON a = x ORDER BY a, y"
        )
        .await,
        "1|1;1|1;2|2;3|NULL;NULL|NULL"
    );
    assert_eq!(
        flat(&s, "SELECT count(*) FROM t1 CROSS JOIN t2").await,
        "12"
    );
    // WHERE on the padded side of a RIGHT JOIN filters after the join.
    assert_eq!(
        flat(
            &s,
            "SELECT x FROM t1 RIGHT JOIN t2 ON a = x WHERE a IS NULL"
        )
        .await,
        "NULL"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT * FROM generate_series(1, 10, 4) AS g(v) ORDER BY v DESC"
        )
        .await,
        "9;5;1"
    );
    assert_eq!(flat(&s, "SELECT generate_series(3, 1, -1)").await, "3;2;1");
    assert_eq!(
        flat(&s, "SELECT count(*) FROM generate_series(1, 0)").await,
        "0"
    );
    assert_eq!(
        sqlstate(&s, "SELECT * FROM generate_series(1, 5, 0)").await,
        "22023"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT round(2.5), round(-2.5), round(1.2345, 2), round(1234, -2), round(2.5::float8)"
        )
        .await,
        "3|-3|1.23|1200|2"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT booleq(true, true), boolne(true, true), NULL IS UNKNOWN"
        )
        .await,
        "t|f|t"
    );
    assert_eq!(sqlstate(&s, "SELECT 1 IS UNKNOWN").await, "42804");
    assert_eq!(
        flat(&s, "SELECT DISTINCT ON (x) x, y FROM t2 ORDER BY x, y DESC").await,
        "1|101;2|200;NULL|300"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT array_agg(y) FILTER (WHERE y < 300) FROM t2 WHERE x = 1"
        )
        .await,
        "{100,101}"
    );
    assert_eq!(
        flat(&s, "SELECT a FROM t1 ORDER BY a LIMIT 1.5 * 2 OFFSET '1'").await,
        "2;3"
    );
    assert_eq!(flat(&s, "SELECT 1 / 0 FROM t1 WHERE false").await, "");
    assert_eq!(sqlstate(&s, "SELECT 1 / 0").await, "22012");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_from_and_tuple_assignments() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    setup(&s).await;
    s.batch_execute("UPDATE t1 SET b = t2.y FROM t2 WHERE t2.x = t1.a AND t2.y < 200")
        .await
        .unwrap();
    assert_eq!(
        flat(&s, "SELECT a, b FROM t1 ORDER BY a").await,
        "1|100;2|20;3|NULL"
    );
    s.batch_execute("UPDATE t1 SET (a, b) = (a + 10, a) WHERE a = 3")
        .await
        .unwrap();
    s.batch_execute("UPDATE t1 SET (b) = (SELECT max(y) FROM t2 WHERE x = t1.a) WHERE a < 3")
        .await
        .unwrap();
    assert_eq!(
        flat(&s, "SELECT a, b FROM t1 ORDER BY a").await,
        "1|101;2|200;13|3"
    );
    s.batch_execute("UPDATE t1 SET (a, b) = (SELECT 20, 21) WHERE a = 13")
        .await
        .unwrap();
    assert_eq!(flat(&s, "SELECT b FROM t1 WHERE a = 20").await, "21");
    assert_eq!(sqlstate(&s, "UPDATE t1 SET (a, b) = (1)").await, "42601");
    assert_eq!(
        sqlstate(&s, "UPDATE t1 SET (a, b) = (SELECT 1)").await,
        "42601"
    );
    assert_eq!(sqlstate(&s, "UPDATE t1 SET b = 1, b = 2").await, "42601");
    assert_eq!(
        sqlstate(&s, "UPDATE t1 SET b = (SELECT y FROM t2)").await,
        "21000"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_recorded_and_read_only_transactions_refuse_writes() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    setup(&s).await;
    s.batch_execute("CREATE USER alice").await.unwrap();
    assert_eq!(sqlstate(&s, "CREATE USER alice").await, "42710");
    s.batch_execute("DROP USER alice").await.unwrap();
    assert_eq!(sqlstate(&s, "DROP USER alice").await, "42704");
    s.batch_execute("START TRANSACTION READ ONLY")
        .await
        .unwrap();
    assert_eq!(flat(&s, "SELECT count(*) FROM t1").await, "3");
    assert_eq!(sqlstate(&s, "INSERT INTO t1 VALUES (9, 9)").await, "25006");
    s.batch_execute("ROLLBACK").await.unwrap();
    s.batch_execute("BEGIN; INSERT INTO t1 VALUES (9, 9); COMMIT")
        .await
        .unwrap();
    assert_eq!(flat(&s, "SELECT count(*) FROM t1").await, "4");
}

/// An INSERT too large for one raft command is still one transaction: a
/// row that fails near its end leaves none of the others written, and a
/// successful one is seen whole, index entries included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_insert_is_all_or_nothing() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    t.batch_execute(
        "CREATE TABLE big (id INT PRIMARY KEY, v INT); CREATE INDEX big_v ON big (v); \
         INSERT INTO big VALUES (4500, 0)",
    )
    .await
    .unwrap();
    let failing = "INSERT INTO big SELECT g, g FROM generate_series(1, 5000) AS g";
    assert_eq!(sqlstate(&t, failing).await, "23505");
    assert_eq!(flat(&t, "SELECT count(*) FROM big").await, "1");
    t.batch_execute("DELETE FROM big").await.unwrap();
    t.batch_execute(failing).await.unwrap();
    assert_eq!(flat(&t, "SELECT count(*) FROM big").await, "5000");
    assert_eq!(
        flat(&t, "SELECT count(*) FROM big WHERE v BETWEEN 1 AND 5000").await,
        "5000"
    );
}

/// CHECK and UNIQUE constraints, inline and table-level, named as
/// PostgreSQL names them; a violation fails with 23514 / 23505 and writes
/// nothing; NULL passes a CHECK and is distinct in a UNIQUE column.
/// In `INSERT ... SELECT`, a bare NULL or quoted literal in the select list
/// takes the target column's type, as in PostgreSQL; a typed expression
/// of another type is still refused (42804).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_select_gives_untyped_literals_the_column_type() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    s.batch_execute(
        "CREATE TABLE u (a INT PRIMARY KEY, b INT, c DATE);
         INSERT INTO u SELECT 1, NULL, NULL;
         INSERT INTO u SELECT 2, '7', '2026-01-02';
         INSERT INTO u (a, b) SELECT a + 10, NULL FROM u;",
    )
    .await
    .unwrap();
    assert_eq!(
        flat(&s, "SELECT a, b, c FROM u ORDER BY a").await,
        "1|NULL|NULL;2|7|2026-01-02;11|NULL|NULL;12|NULL|NULL"
    );
    assert_eq!(
        sqlstate(&s, "INSERT INTO u SELECT 3, 'x', NULL").await,
        "22P02"
    );
    assert_eq!(
        sqlstate(&s, "INSERT INTO u SELECT 4, 'x'::text, NULL").await,
        "42804"
    );
    assert_eq!(
        sqlstate(&s, "INSERT INTO u SELECT 5, NULL::text, NULL").await,
        "42804"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_unique_constraints() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    t.batch_execute(
        "CREATE TABLE products (id INT PRIMARY KEY, code TEXT UNIQUE, \
         price NUMERIC CHECK (price > 0), discounted NUMERIC, \
         CONSTRAINT sane CHECK (discounted <= price), UNIQUE (price, discounted))",
    )
    .await
    .unwrap();
    t.batch_execute(
        "INSERT INTO products VALUES (1, 'a', 10, 5), (2, NULL, 20, NULL), (3, NULL, 30, 1)",
    )
    .await
    .unwrap();
    let fails = |sql: &'static str| {
        let t = &t;
        async move { sqlstate(t, sql).await }
    };
    assert_eq!(
        fails("INSERT INTO products VALUES (4, 'b', -1, NULL)").await,
        "23514"
    );
    assert_eq!(
        fails("INSERT INTO products VALUES (4, 'b', 5, 6)").await,
        "23514"
    );
    assert_eq!(
        fails("UPDATE products SET price = 0 WHERE id = 1").await,
        "23514"
    );
    assert_eq!(fails("UPDATE products SET discounted = 100").await, "23514");
    assert_eq!(
        fails("INSERT INTO products VALUES (4, 'a', 1, 1)").await,
        "23505"
    );
    assert_eq!(
        fails("INSERT INTO products VALUES (4, 'c', 10, 5)").await,
        "23505"
    );
    assert_eq!(
        fails("INSERT INTO products VALUES (4, 'd', 1, 1) ON CONFLICT (id) DO NOTHING; \
               INSERT INTO products VALUES (1, 'e', 1, 1) ON CONFLICT (id) DO UPDATE SET price = -5")
        .await,
        "23514"
    );
    // One query string is one transaction: the first INSERT is undone too.
    assert_eq!(flat(&t, "SELECT count(*) FROM products").await, "3");
    assert_eq!(
        flat(
            &t,
            "SELECT id, price FROM products WHERE id IN (1, 4) ORDER BY id"
        )
        .await,
        "1|10"
    );
    // The error names the constraint.
    let e = t
        .simple_query("INSERT INTO products VALUES (9, 'z', 5, 6)")
        .await
        .unwrap_err();
    let msg = e.as_db_error().unwrap().message().to_string();
    assert!(msg.contains("\"sane\""), "{msg}");
    let e = t
        .simple_query("INSERT INTO products VALUES (9, 'z', -5, NULL)")
        .await
        .unwrap_err();
    let msg = e.as_db_error().unwrap().message().to_string();
    assert!(msg.contains("products_price_check"), "{msg}");
    let ddl = flat(&t, "SHOW CREATE TABLE products").await;
    assert!(ddl.contains("CONSTRAINT sane CHECK"), "{ddl}");
    assert!(ddl.contains("products_code_key"), "{ddl}");
    // A CHECK must be a boolean over the table's columns.
    assert_eq!(
        fails("CREATE TABLE bad (a INT CHECK (a + 1))").await,
        "42804"
    );
    assert_eq!(
        fails("CREATE TABLE bad (a INT CHECK (b > 0))").await,
        "42703"
    );
}

/// Foreign keys: a child row needs its parent (23503 with PostgreSQL's
/// message and DETAIL), a referenced parent cannot go (RESTRICT) unless ON
/// DELETE CASCADE takes its children along; NULL references nothing; DROP
/// and TRUNCATE of a referenced table are refused; the check holds across
/// ranges and inside transactions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_keys_keep_references_valid() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    t.batch_execute(
        "CREATE TABLE customers (id INT PRIMARY KEY, email TEXT UNIQUE); \
         CREATE TABLE orders (id INT PRIMARY KEY, customer INT REFERENCES customers, \
             email TEXT, FOREIGN KEY (email) REFERENCES customers (email)); \
         CREATE TABLE lines (order_id INT REFERENCES orders ON DELETE CASCADE, n INT, \
             PRIMARY KEY (order_id, n)); \
         INSERT INTO customers VALUES (1, 'a@x'), (2, 'b@x'); \
         INSERT INTO orders VALUES (10, 1, 'a@x'), (11, NULL, NULL); \
         INSERT INTO lines VALUES (10, 1), (10, 2), (11, 1)",
    )
    .await
    .unwrap();
    let fails = |sql: &'static str| {
        let t = &t;
        async move { sqlstate(t, sql).await }
    };
    let e = t
        .simple_query("INSERT INTO orders VALUES (12, 3, NULL)")
        .await
        .unwrap_err();
    let db = e.as_db_error().unwrap();
    assert_eq!(db.code().code(), "23503");
    assert_eq!(
        db.message(),
        "insert or update on table \"orders\" violates foreign key constraint \"orders_customer_fkey\""
    );
    assert_eq!(
        db.detail(),
        Some("Key (customer)=(3) is not present in table \"customers\".")
    );
    assert_eq!(
        fails("INSERT INTO orders VALUES (12, 1, 'c@x')").await,
        "23503"
    );
    assert_eq!(
        fails("UPDATE orders SET customer = 5 WHERE id = 10").await,
        "23503"
    );
    assert_eq!(fails("DELETE FROM customers WHERE id = 1").await, "23503");
    assert_eq!(
        fails("UPDATE customers SET id = 7 WHERE id = 1").await,
        "23503"
    );
    assert_eq!(
        fails("UPDATE customers SET email = 'z' WHERE id = 1").await,
        "23503"
    );
    // Unreferenced parents change freely; a child may move to another parent.
    t.batch_execute(
        "DELETE FROM customers WHERE id = 2; UPDATE orders SET customer = 1 WHERE id = 11",
    )
    .await
    .unwrap();
    // Parent and child in one transaction, on different ranges.
    let cat = tessera_sql::catalog::Catalog::new(c.dbs[&1].clone());
    let orders = cat.table("defaultdb", "orders").await.unwrap().unwrap();
    let at = tessera_sql::encoding::row_key(orders.id, &[tessera_sql::types::Datum::Int(11)]);
    let _ = c.dbs[&1].split(&at).await;
    t.batch_execute(
        "BEGIN; INSERT INTO customers VALUES (3, 'c@x'); INSERT INTO orders VALUES (13, 3, 'c@x'); COMMIT",
    )
    .await
    .unwrap();
    // CASCADE: deleting an order deletes its lines, and only its lines.
    t.batch_execute("DELETE FROM orders WHERE id = 10")
        .await
        .unwrap();
    assert_eq!(flat(&t, "SELECT order_id, n FROM lines").await, "11|1");
    assert_eq!(fails("DELETE FROM customers").await, "23503");
    assert_eq!(fails("DROP TABLE customers").await, "2BP01");
    assert_eq!(fails("TRUNCATE customers").await, "0A000");
    assert_eq!(
        fails("CREATE TABLE bad (x INT REFERENCES customers (email))").await,
        "42804"
    );
    assert_eq!(
        fails("CREATE TABLE bad (x TEXT REFERENCES orders (email))").await,
        "42830"
    );
    assert_eq!(
        fails("CREATE TABLE bad (x INT REFERENCES nope)").await,
        "42P01"
    );
    let ddl = flat(&t, "SHOW CREATE TABLE lines").await;
    assert!(
        ddl.contains("FOREIGN KEY (order_id) REFERENCES orders ON DELETE CASCADE"),
        "{ddl}"
    );
    // Dropping the children first frees the parents.
    t.batch_execute("DROP TABLE lines; DROP TABLE orders; DROP TABLE customers")
        .await
        .unwrap();
    // ON DELETE SET NULL empties the references (index entries follow),
    // and respects the child's NOT NULL constraints.
    t.batch_execute(
        "CREATE TABLE team (id INT PRIMARY KEY); INSERT INTO team VALUES (1), (2), (3); \
         CREATE TABLE player (id INT PRIMARY KEY, team_id INT REFERENCES team ON DELETE SET NULL); \
         INSERT INTO player VALUES (10, 1), (11, 1), (12, 2); \
         CREATE TABLE badge (id INT PRIMARY KEY, team_id INT NOT NULL \
         REFERENCES team (id) ON DELETE SET NULL); INSERT INTO badge VALUES (1, 3)",
    )
    .await
    .unwrap();
    t.batch_execute("DELETE FROM team WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(
        flat(&t, "SELECT id, team_id FROM player ORDER BY id").await,
        "10|NULL;11|NULL;12|2"
    );
    assert_eq!(
        flat(&t, "SELECT count(*) FROM player WHERE team_id IS NULL").await,
        "2"
    );
    assert_eq!(
        flat(&t, "SELECT id FROM player WHERE team_id = 2").await,
        "12"
    );
    assert_eq!(fails("DELETE FROM team WHERE id = 3").await, "23502");
    assert_eq!(flat(&t, "SELECT count(*) FROM team").await, "2");
    let ddl = flat(&t, "SHOW CREATE TABLE player").await;
    assert!(ddl.contains("REFERENCES team ON DELETE SET NULL"), "{ddl}");
}

/// ALTER TABLE ADD / DROP / RENAME COLUMN and RENAME TO, on a table with
/// rows and a secondary index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_table_adds_drops_and_renames() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    let other = connect(c.addrs[1]).await;
    t.batch_execute(
        "CREATE TABLE items (id INT PRIMARY KEY, name TEXT, qty INT); \
         CREATE INDEX items_qty ON items (qty); \
         INSERT INTO items VALUES (1, 'a', 10), (2, 'b', 20)",
    )
    .await
    .unwrap();
    // A column with a default fills existing rows; one without reads NULL.
    t.batch_execute("ALTER TABLE items ADD COLUMN price INT NOT NULL DEFAULT 5")
        .await
        .unwrap();
    t.batch_execute("ALTER TABLE items ADD note TEXT")
        .await
        .unwrap();
    assert_eq!(
        flat(&other, "SELECT * FROM items ORDER BY id").await,
        "1|a|10|5|NULL;2|b|20|5|NULL"
    );
    other
        .batch_execute("INSERT INTO items (id, name, qty) VALUES (3, 'c', 30)")
        .await
        .unwrap();
    assert_eq!(flat(&t, "SELECT price FROM items WHERE id = 3").await, "5");
    assert_eq!(
        sqlstate(&t, "ALTER TABLE items ADD COLUMN name TEXT").await,
        "42701"
    );
    assert_eq!(
        sqlstate(&t, "ALTER TABLE items ADD COLUMN must INT NOT NULL").await,
        "23502"
    );
    assert_eq!(
        sqlstate(
            &t,
            "ALTER TABLE items ADD COLUMN c INT DEFAULT 0 CHECK (c > 0)"
        )
        .await,
        "23514"
    );
    assert_eq!(flat(&t, "SELECT count(*) FROM items").await, "3");
    // Dropping a column drops its index; the name can be used again.
    t.batch_execute("ALTER TABLE items DROP COLUMN qty")
        .await
        .unwrap();
    assert_eq!(
        flat(&other, "SELECT * FROM items ORDER BY id").await,
        "1|a|5|NULL;2|b|5|NULL;3|c|5|NULL"
    );
    assert!(!flat(&t, "SHOW CREATE TABLE items")
        .await
        .contains("items_qty"));
    t.batch_execute(
        "ALTER TABLE items ADD COLUMN qty INT; INSERT INTO items VALUES (4, 'd', 6, NULL, 40)",
    )
    .await
    .unwrap();
    assert_eq!(
        flat(&t, "SELECT qty FROM items ORDER BY id").await,
        "NULL;NULL;NULL;40"
    );
    assert_eq!(
        sqlstate(&t, "ALTER TABLE items DROP COLUMN nope").await,
        "42703"
    );
    t.batch_execute("ALTER TABLE items DROP COLUMN IF EXISTS nope")
        .await
        .unwrap();
    assert_eq!(
        sqlstate(&t, "ALTER TABLE items DROP COLUMN id").await,
        "0A000"
    );
    // Renames.
    t.batch_execute(
        "ALTER TABLE items RENAME COLUMN name TO title; ALTER TABLE items RENAME TO goods",
    )
    .await
    .unwrap();
    assert_eq!(
        flat(&other, "SELECT title FROM goods WHERE id = 2").await,
        "b"
    );
    assert_eq!(sqlstate(&other, "SELECT * FROM items").await, "42P01");
    assert_eq!(sqlstate(&t, "SELECT name FROM goods").await, "42703");
}

/// CREATE / DROP DATABASE: each database has its own tables; a dropped one
/// cannot be connected to; only the public schema exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_are_created_and_dropped() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    let to = |db: &'static str| {
        let addr = c.addrs[1];
        async move {
            tokio_postgres::connect(
                &format!(
                    "host={} port={} user=root dbname={db}",
                    addr.ip(),
                    addr.port()
                ),
                tokio_postgres::NoTls,
            )
            .await
        }
    };
    t.batch_execute("CREATE DATABASE shop; CREATE DATABASE IF NOT EXISTS shop")
        .await
        .unwrap();
    assert_eq!(sqlstate(&t, "CREATE DATABASE shop").await, "42P04");
    let (shop, conn) = to("shop").await.unwrap();
    tokio::spawn(conn);
    shop.batch_execute("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    t.batch_execute("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (2), (3)")
        .await
        .unwrap();
    assert_eq!(flat(&shop, "SELECT id FROM t").await, "1");
    assert_eq!(flat(&t, "SELECT count(*) FROM t").await, "2");
    assert_eq!(sqlstate(&shop, "DROP DATABASE shop").await, "55006");
    t.batch_execute("DROP DATABASE shop; DROP DATABASE IF EXISTS shop")
        .await
        .unwrap();
    assert_eq!(sqlstate(&t, "DROP DATABASE shop").await, "3D000");
    let err = to("shop").await.err().expect("the database is gone");
    assert_eq!(err.code().map(|c| c.code()), Some("3D000"), "{err}");
    assert_eq!(flat(&t, "SELECT count(*) FROM t").await, "2");
    t.batch_execute("CREATE SCHEMA IF NOT EXISTS public")
        .await
        .unwrap();
    // Schemas belong to their database and go with it.
    t.batch_execute("CREATE DATABASE shop").await.unwrap();
    let (shop, conn) = to("shop").await.unwrap();
    tokio::spawn(conn);
    shop.batch_execute("CREATE SCHEMA app; CREATE TABLE app.x (i INT)")
        .await
        .unwrap();
    assert_eq!(sqlstate(&t, "SELECT * FROM app.x").await, "42P01");
    drop(shop);
    t.batch_execute("DROP DATABASE shop; CREATE DATABASE shop")
        .await
        .unwrap();
    let (shop, conn) = to("shop").await.unwrap();
    tokio::spawn(conn);
    assert_eq!(sqlstate(&shop, "CREATE TABLE app.x (i INT)").await, "3F000");
}

/// A table created inside a transaction that does not commit (ROLLBACK,
/// or a failed transaction) is dropped again; one that commits stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_is_undone_by_rollback() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    t.batch_execute(
        "BEGIN; CREATE TABLE tx (i INT PRIMARY KEY); INSERT INTO tx VALUES (1); ROLLBACK",
    )
    .await
    .unwrap();
    assert_eq!(sqlstate(&t, "SELECT * FROM tx").await, "42P01");
    t.batch_execute("BEGIN; CREATE TABLE tx (i INT PRIMARY KEY); INSERT INTO tx VALUES (1)")
        .await
        .unwrap();
    assert_eq!(sqlstate(&t, "INSERT INTO tx VALUES (1)").await, "23505");
    t.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(sqlstate(&t, "SELECT * FROM tx").await, "42P01");
    t.batch_execute("CREATE TABLE keep (i INT PRIMARY KEY); BEGIN; CREATE TABLE IF NOT EXISTS keep (i INT PRIMARY KEY); ROLLBACK")
        .await
        .unwrap();
    t.batch_execute(
        "BEGIN; CREATE TABLE tx (i INT PRIMARY KEY); INSERT INTO tx VALUES (2); COMMIT",
    )
    .await
    .unwrap();
    assert_eq!(flat(&t, "SELECT i FROM tx").await, "2");
    assert_eq!(flat(&t, "SELECT count(*) FROM keep").await, "0");
}

/// NUMERIC holds NaN, Infinity and -Infinity as PostgreSQL does: input in
/// any case, arithmetic, ordering (NaN above all), an indexed column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_special_values() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    assert_eq!(
        flat(
            &t,
            "SELECT ' +inFInity'::numeric, '-inf'::numeric, 'NaN'::numeric"
        )
        .await,
        "Infinity|-Infinity|NaN"
    );
    assert_eq!(
        flat(
            &t,
            "SELECT 'inf'::numeric + 1, 'inf'::numeric - 'inf'::numeric, \
             'inf'::numeric * -2, 1 / 'inf'::numeric, 'nan'::numeric = 'nan'::numeric"
        )
        .await,
        "Infinity|NaN|-Infinity|0|t"
    );
    t.batch_execute(
        "CREATE TABLE n (id INT PRIMARY KEY, v NUMERIC); CREATE INDEX n_v ON n (v); \
         INSERT INTO n VALUES (1, 'nan'), (2, 'inf'), (3, '-inf'), (4, 2.5), (5, -7)",
    )
    .await
    .unwrap();
    assert_eq!(
        flat(&t, "SELECT v FROM n ORDER BY v").await,
        "-Infinity;-7;2.5;Infinity;NaN"
    );
    assert_eq!(
        flat(&t, "SELECT id FROM n WHERE v > 100 ORDER BY id").await,
        "1;2"
    );
    assert_eq!(flat(&t, "SELECT id FROM n WHERE v = 'Infinity'").await, "2");
    assert_eq!(sqlstate(&t, "SELECT 'inf'::numeric::int").await, "0A000");
    assert_eq!(sqlstate(&t, "SELECT 'inf'::numeric(5, 2)").await, "22003");
    assert_eq!(sqlstate(&t, "SELECT 'inf'::numeric / 0").await, "22012");
}

/// Tables joined by commas with their join conditions in WHERE become
/// keyed (lookup, merge or hash) joins, not filtered cross products; a join that would produce
/// more rows than a statement may hold fails cleanly (54000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comma_joins_use_where_equalities_as_join_keys() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    t.batch_execute(
        "CREATE TABLE a (id INT PRIMARY KEY, x INT); CREATE TABLE b (id INT PRIMARY KEY, y INT); \
         CREATE TABLE c (id INT PRIMARY KEY, z INT); \
         INSERT INTO a SELECT g, g % 10 FROM generate_series(1, 300) AS g; \
         INSERT INTO b SELECT g, g % 7 FROM generate_series(1, 300) AS g; \
         INSERT INTO c SELECT g, g FROM generate_series(1, 300) AS g",
    )
    .await
    .unwrap();
    let q = "SELECT count(*), sum(c.z) FROM a, b, c WHERE a.id = b.id AND b.y = c.id AND a.x > 4 AND a.id + c.z > 5";
    let plan = flat(&t, &format!("EXPLAIN {q}")).await;
    assert_eq!(plan.matches(" join (inner)").count(), 2, "{plan}");
    assert!(!plan.contains("nested loop"), "{plan}");
    // a.id = b.id and a.x > 4: 150 rows; b.y = c.id drops y = 0 (c has no 0).
    let expected = flat(
        &t,
        "SELECT count(*), sum(b.y) FROM a JOIN b ON a.id = b.id WHERE a.x > 4 AND b.y > 0 AND a.id + b.y > 5",
    )
    .await;
    assert_eq!(flat(&t, q).await, expected);
    let huge = "SELECT count(*) FROM generate_series(1, 3000) AS x, generate_series(1, 3000) AS y";
    assert_eq!(sqlstate(&t, huge).await, "54000");
    assert_eq!(flat(&t, "SELECT count(*) FROM a").await, "300");
}

/// A SELECT of one table by key spans streams its rows (read page by page
/// as the client takes them): the result is complete and ordered, filters
/// and expressions apply, an error on a later row reaches the client, and
/// a client that stops reading holds up nobody else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_selects_stream() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    t.batch_execute(
        "CREATE TABLE big (id INT PRIMARY KEY, v INT); \
         INSERT INTO big SELECT g, g % 100 FROM generate_series(1, 25000) AS g",
    )
    .await
    .unwrap();
    let rows = t
        .query("SELECT id, v * 2 FROM big WHERE id > 10", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 24990);
    assert!(rows
        .windows(2)
        .all(|w| w[0].get::<_, i32>(0) < w[1].get::<_, i32>(0)));
    assert_eq!(rows[0].get::<_, i32>(0), 11);
    assert_eq!(rows[0].get::<_, i32>(1), 22);
    // Division by zero on the rows where v = 0, after others were sent.
    assert_eq!(sqlstate(&t, "SELECT id / v FROM big").await, "22012");
    // A client that stops reading a large result: others keep working.
    let slow = connect(c.addrs[0]).await;
    let stalled = tokio::spawn(async move {
        let s = slow
            .query_raw("SELECT id, v FROM big", Vec::<i32>::new())
            .await
            .unwrap();
        futures::pin_mut!(s);
        // Take one row, then stop reading for a while.
        let first = futures::StreamExt::next(&mut s).await;
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        first.is_some()
    });
    for _ in 0..5 {
        assert_eq!(
            flat(&t, "SELECT count(*) FROM big WHERE id <= 100").await,
            "100"
        );
    }
    t.batch_execute("UPDATE big SET v = 7 WHERE id = 25000")
        .await
        .unwrap();
    assert!(stalled.await.unwrap());
}

/// Common string, math and date functions and the string_agg / bool_and /
/// bool_or aggregates, with PostgreSQL's results and NULL rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn string_math_and_date_functions() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    let cases = [
        ("SELECT substring('hello' FROM 2 FOR 3), substr('hello', 3), substring('hello' for 2)", "ell|llo|he"),
        ("SELECT concat('a', NULL, 1, 'b'), concat_ws('-', 'x', NULL, 'y')", "a1b|x-y"),
        ("SELECT replace('aXbX', 'X', '-'), trim('  x  '), trim(leading 'x' from 'xxay'), rtrim('ab  ')", "a-b-|x|ay|ab"),
        ("SELECT position('l' in 'hello'), strpos('hello', 'z'), left('abcdef', 2), right('abcdef', -4)", "3|0|ab|ef"),
        ("SELECT lpad('7', 3, '0'), rpad('ab', 4, '.'), repeat('ab', 3), reverse('abc')", "007|ab..|ababab|cba"),
        ("SELECT split_part('a,b,c', ',', 2), initcap('hello wORLD'), chr(65), ascii('a')", "b|Hello World|A|97"),
        ("SELECT upper(NULL), length(substring(NULL, 1)), starts_with('tessera', 'tes')", "NULL|NULL|t"),
        ("SELECT ceil(1.2), floor(-1.2), ceil(2.5::float8), floor(7), trunc(-2.7), sign(-3.5)", "2|-2|3|7|-2|-1"),
        ("SELECT mod(7, 3), mod(-7.5, 2), power(2, 10), sqrt(16), abs(-2)", "1|-1.5|1024|4|2"),
        ("SELECT greatest(1, 3, NULL, 2), least('b', 'a'), greatest(1, 2.5)", "3|a|2.5"),
        ("SELECT round(sin(pi() / 2)::numeric, 6), cos(0), round(degrees(pi())), radians(180) = pi(), atan2(1, 1) = pi() / 4, round(acos(-1)::numeric, 4)", "1.000000|1|180|t|t|3.1416"),
        ("SELECT log(2, 8), log(2.0, 64.0), log10(1000), factorial(5), width_bucket(5.35, 0.024, 10.06, 5), width_bucket(-1, 0, 10, 5), width_bucket(99, 0, 10, 5)", "3.0000000000000000|6.0000000000000000|3|120|3|0|6"),
        ("SELECT num_nulls(1, NULL, 'a'), num_nonnulls(1, NULL, 'a'), scale(1.250), scale(7)", "1|2|3|0"),
        ("SELECT to_char(1234.5, 'FM9,999.00'), to_char(-7, '999'), to_char(3.14159::float8, '0.999'), to_char(123456, '999')", "1,234.50|  -7| 3.142| ###"),
        ("SELECT make_interval(days => 3), make_interval(1, 2), make_interval(hours => 1, mins => 30), make_interval(weeks => 1, secs => 1.5), make_interval()", "3 days|1 year 2 mons|01:30:00|7 days 00:00:01.5|00:00:00"),
        ("SELECT pg_size_pretty(10239), pg_size_pretty(10240), pg_size_pretty(12345678), pg_size_pretty(-5000000000), pg_size_pretty(4611686018427387904)", "10239 bytes|10 kB|12 MB|-4768 MB|4096 PB"),
        ("SELECT date_trunc('hour', TIMESTAMP '2020-01-02 03:04:05'), date_trunc('month', TIMESTAMP '2020-05-17')", "2020-01-02 03:00:00|2020-05-01 00:00:00"),
        ("SELECT string_agg(x::text, ',') FROM generate_series(1, 3) AS x", "1,2,3"),
        ("SELECT bool_and(x > 0), bool_or(x > 2), every(x > 1) FROM generate_series(1, 3) AS x", "t|t|f"),
        ("SELECT string_agg(x::text, ','), bool_and(x > 0) FROM generate_series(1, 0) AS x", "NULL|NULL"),
    ];
    for (q, want) in cases {
        assert_eq!(flat(&t, q).await, want, "{q}");
    }
    assert_eq!(sqlstate(&t, "SELECT sqrt(-1)").await, "2201F");
    assert_eq!(sqlstate(&t, "SELECT ln(0)").await, "2201E");
    assert_eq!(sqlstate(&t, "SELECT asin(2)").await, "22003");
    assert_eq!(
        sqlstate(&t, "SELECT make_interval(fortnights => 1)").await,
        "42883"
    );
    assert_eq!(
        sqlstate(&t, "SELECT make_interval(days => 1, 2)").await,
        "42601"
    );
    assert_eq!(sqlstate(&t, "SELECT lower(s => 'x')").await, "42883");
    assert_eq!(sqlstate(&t, "SELECT log(0, 2)").await, "2201E");
    assert_eq!(sqlstate(&t, "SELECT log(1, 2)").await, "22012");
    assert_eq!(sqlstate(&t, "SELECT factorial(-1)").await, "22003");
    assert_eq!(sqlstate(&t, "SELECT factorial(40)").await, "22003");
    assert_eq!(
        sqlstate(&t, "SELECT width_bucket(1, 1, 1, 1)").await,
        "2201G"
    );
    assert_eq!(sqlstate(&t, "SELECT sin('x'::text)").await, "42883");
    assert_eq!(sqlstate(&t, "SELECT upper(1)").await, "42883");
    assert_eq!(
        sqlstate(&t, "SELECT date_trunc('fortnight', now())").await,
        "22023"
    );
    assert_eq!(sqlstate(&t, "SELECT string_agg(1, ',')").await, "42883");
}

/// A TIME or INTERVAL value in its binary wire form (tokio-postgres has
/// no Rust type for either without chrono).
#[derive(Debug)]
struct WireValue(Vec<u8>);

impl<'a> tokio_postgres::types::FromSql<'a> for WireValue {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(WireValue(raw.to_vec()))
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        use tokio_postgres::types::Type;
        *ty == Type::TIME || *ty == Type::INTERVAL
    }
}

impl tokio_postgres::types::ToSql for WireValue {
    fn to_sql(
        &self,
        _: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(&self.0);
        Ok(tokio_postgres::types::IsNull::No)
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        <WireValue as tokio_postgres::types::FromSql>::accepts(ty)
    }

    tokio_postgres::types::to_sql_checked!();
}

/// PostgreSQL's binary INTERVAL: µs, days, months (big-endian).
fn binary_interval(micros: i64, days: i32, months: i32) -> Vec<u8> {
    let mut b = micros.to_be_bytes().to_vec();
    b.extend(days.to_be_bytes());
    b.extend(months.to_be_bytes());
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_and_interval_columns_and_datetime_arithmetic() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    s.batch_execute(
        "CREATE TABLE shifts (id INT PRIMARY KEY, starts TIME, length INTERVAL);
         CREATE INDEX shifts_length ON shifts (length);
         INSERT INTO shifts VALUES (1, '09:00', '8 hours'), (2, '22:30:00.5', '1 day 02:00:00'),
                                   (3, '00:00', '-3 days'), (4, NULL, '1 mon');",
    )
    .await
    .unwrap();
    // Text output as PostgreSQL prints it; both types order.
    assert_eq!(
        flat(&s, "SELECT id, starts, length FROM shifts ORDER BY length").await,
        "3|00:00:00|-3 days;1|09:00:00|08:00:00;2|22:30:00.5|1 day 02:00:00;4|NULL|1 mon"
    );
    assert_eq!(
        flat(&s, "SELECT id FROM shifts ORDER BY starts DESC").await,
        "4;2;1;3"
    );
    // A time moves by an interval's time part, around midnight.
    assert_eq!(
        flat(
            &s,
            "SELECT id, starts + length FROM shifts WHERE id < 3 ORDER BY id"
        )
        .await,
        "1|17:00:00;2|00:30:00.5"
    );
    // Through the index: intervals compare by length ('30 days' = '1 mon').
    assert_eq!(
        flat(
            &s,
            "SELECT id FROM shifts WHERE length = interval '30 days'"
        )
        .await,
        "4"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT id FROM shifts WHERE length > '1 day' ORDER BY id"
        )
        .await,
        "2;4"
    );
    s.batch_execute(
        "CREATE TABLE spans (s INTERVAL PRIMARY KEY); INSERT INTO spans VALUES ('1 day')",
    )
    .await
    .unwrap();
    assert_eq!(
        sqlstate(&s, "INSERT INTO spans VALUES ('24:00:00')").await,
        "23505"
    );
    // Timestamp and date arithmetic.
    assert_eq!(
        flat(
            &s,
            "SELECT '2008-01-02 01:00'::timestamp - '2008-01-01'::timestamp,
                    TIMESTAMP '2020-01-01' - TIMESTAMP '2020-01-01'"
        )
        .await,
        "1 day 01:00:00|00:00:00"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT TIMESTAMP '2020-01-31 10:00' + INTERVAL '1 month',
                    DATE '2020-02-28' + INTERVAL '1 day 01:00',
                    DATE '2020-03-01' - DATE '2020-02-01'"
        )
        .await,
        "2020-02-29 10:00:00|2020-02-29 01:00:00|29"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT now() - interval '1 hour' < now(), interval '1 day' * 1.5,
                    interval '1 mon' / 3, -interval '2 hours'"
        )
        .await,
        "t|1 day 12:00:00|10 days|-02:00:00"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT interval '50 h'::time, interval '-50 h'::time, '12:34:56'::time::interval,
                    EXTRACT(EPOCH FROM interval '1 day 01:00'), EXTRACT(HOUR FROM time '12:34:56')"
        )
        .await,
        "02:00:00|22:00:00|12:34:56|90000.000000|12"
    );
    // Errors carry PostgreSQL's SQLSTATEs.
    for (sql, code) in [
        (
            "SELECT TIMESTAMP '2020-01-01' + TIMESTAMP '2020-01-01'",
            "42883",
        ),
        (
            "SELECT t * t FROM (SELECT TIMESTAMP '2020-01-01' AS t) x",
            "42883",
        ),
        ("SELECT starts + starts FROM shifts", "42883"),
        ("SELECT interval '1 fortnight'", "22007"),
        ("SELECT '12:34:xx'::time", "22007"),
        ("SELECT '25:00'::time", "22008"),
        ("SELECT interval '3000000000 days'", "22015"),
        (
            "SELECT TIMESTAMP '294000-01-01' + interval '1000 years'",
            "22008",
        ),
    ] {
        assert_eq!(sqlstate(&s, sql).await, code, "{sql}");
    }
    // Extended protocol: binary results and parameters in PostgreSQL's
    // layouts (TIME: µs since midnight).
    let row = s
        .query_one("SELECT starts, length FROM shifts WHERE id = $1", &[&2i32])
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, WireValue>(0).0,
        81_000_500_000i64.to_be_bytes()
    );
    assert_eq!(
        row.get::<_, WireValue>(1).0,
        binary_interval(7_200_000_000, 1, 0)
    );
    let thirty_days = WireValue(binary_interval(0, 30, 0));
    let row = s
        .query_one("SELECT id FROM shifts WHERE length = $1", &[&thirty_days])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 4);
}

/// information_schema.tables, .columns and .schemata list the database's
/// relations and columns as PostgreSQL spells them, and work in joins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn information_schema_lists_tables_views_and_columns() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    assert_eq!(
        flat(
            &t,
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
        .await,
        "0"
    );
    t.batch_execute(
        "CREATE TABLE acct (id INT PRIMARY KEY, owner VARCHAR(20) NOT NULL DEFAULT 'x', \
         amount NUMERIC(10,2)); CREATE VIEW ids AS SELECT id FROM acct",
    )
    .await
    .unwrap();
    assert_eq!(
        flat(
            &t,
            "SELECT table_catalog, table_schema, table_name, table_type \
             FROM information_schema.tables ORDER BY table_name"
        )
        .await,
        "defaultdb|public|acct|BASE TABLE;defaultdb|public|ids|VIEW"
    );
    assert_eq!(
        flat(
            &t,
            "SELECT column_name, ordinal_position, is_nullable, data_type, \
             character_maximum_length, numeric_precision, numeric_scale \
             FROM information_schema.columns WHERE table_name = 'acct' \
             ORDER BY ordinal_position"
        )
        .await,
        "id|1|NO|integer|NULL|32|0;owner|2|NO|character varying|20|NULL|NULL;\
         amount|3|YES|numeric|NULL|10|2"
    );
    assert_eq!(
        flat(
            &t,
            "SELECT count(*) FROM information_schema.tables tables \
             JOIN information_schema.columns c ON c.table_name = tables.table_name"
        )
        .await,
        "3"
    );
    assert_eq!(
        flat(
            &t,
            "SELECT schema_name FROM information_schema.schemata ORDER BY 1"
        )
        .await,
        "information_schema;pg_catalog;public"
    );
    assert_eq!(
        sqlstate(&t, "SELECT * FROM information_schema.nothing").await,
        "42P01"
    );
}

/// CREATE SCHEMA gives a database a second namespace: `app.t` and
/// `public.t` are different tables; indexes, views, foreign keys, renames,
/// introspection and DROP SCHEMA [CASCADE] follow the schema, and every
/// node sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_hold_their_own_tables_views_and_indexes() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    let other = connect(c.addrs[1]).await;
    t.batch_execute("CREATE SCHEMA app").await.unwrap();
    assert_eq!(sqlstate(&t, "CREATE SCHEMA app").await, "42P06");
    assert_eq!(sqlstate(&t, "CREATE SCHEMA public").await, "42P06");
    t.batch_execute("CREATE SCHEMA IF NOT EXISTS app")
        .await
        .unwrap();
    assert_eq!(
        sqlstate(&t, "CREATE TABLE nope.t (id INT PRIMARY KEY)").await,
        "3F000"
    );
    t.batch_execute(
        "CREATE TABLE app.t (id INT PRIMARY KEY, v TEXT); \
         CREATE TABLE t (id INT PRIMARY KEY, v TEXT); \
         INSERT INTO app.t VALUES (1, 'app'); \
         INSERT INTO public.t VALUES (1, 'public'), (2, 'p2')",
    )
    .await
    .unwrap();
    // Another node's session sees the schema and its table at once.
    assert_eq!(flat(&other, "SELECT v FROM app.t").await, "app");
    assert_eq!(flat(&t, "SELECT count(*) FROM t").await, "2");
    assert_eq!(flat(&t, "SELECT t.v FROM app.t").await, "app");
    assert_eq!(flat(&t, "SELECT app.t.v FROM app.t").await, "app");
    assert_eq!(
        flat(
            &t,
            "SELECT a.v, p.v FROM app.t a JOIN public.t p ON a.id = p.id"
        )
        .await,
        "app|public"
    );
    t.batch_execute(
        "UPDATE app.t SET v = 'app1' WHERE id = 1; \
         INSERT INTO app.t SELECT id + 10, v FROM public.t; \
         DELETE FROM app.t WHERE id = 12",
    )
    .await
    .unwrap();
    assert_eq!(
        flat(&t, "SELECT id, v FROM app.t ORDER BY id").await,
        "1|app1;11|public"
    );
    // The search path decides where unqualified names live; an explicit
    // schema still wins.
    t.batch_execute("SET search_path = app, public")
        .await
        .unwrap();
    assert_eq!(flat(&t, "SELECT v FROM t ORDER BY id").await, "app1;public");
    assert_eq!(flat(&t, "SELECT count(*) FROM public.t").await, "2");
    t.batch_execute(
        "CREATE TABLE only_app (id INT PRIMARY KEY); INSERT INTO only_app VALUES (5); \
         INSERT INTO t VALUES (20, 'via path')",
    )
    .await
    .unwrap();
    assert_eq!(flat(&t, "SELECT id FROM app.only_app").await, "5");
    assert_eq!(
        flat(&t, "SELECT v FROM app.t WHERE id = 20").await,
        "via path"
    );
    assert_eq!(flat(&t, "SELECT count(*) FROM public.t").await, "2");
    t.batch_execute("DROP TABLE only_app; DELETE FROM t WHERE id = 20")
        .await
        .unwrap();
    assert_eq!(sqlstate(&t, "SELECT * FROM app.only_app").await, "42P01");
    t.batch_execute("SET search_path = nope").await.unwrap();
    assert_eq!(sqlstate(&t, "CREATE TABLE x (id INT)").await, "3F000");
    t.batch_execute("RESET search_path").await.unwrap();
    assert_eq!(flat(&t, "SELECT count(*) FROM t").await, "2");
    // Index names are per schema.
    t.batch_execute("CREATE INDEX ON app.t (v); CREATE INDEX ON t (v)")
        .await
        .unwrap();
    assert!(flat(&t, "EXPLAIN SELECT id FROM app.t WHERE v = 'app1'")
        .await
        .contains("t_v_idx"));
    assert_eq!(flat(&t, "SELECT id FROM app.t WHERE v = 'app1'").await, "1");
    t.batch_execute("DROP INDEX app.t_v_idx").await.unwrap();
    assert_eq!(sqlstate(&t, "DROP INDEX app.t_v_idx").await, "42704");
    t.batch_execute("DROP INDEX t_v_idx").await.unwrap();
    // Views, foreign keys and SHOW CREATE TABLE name the schema.
    t.batch_execute(
        "CREATE VIEW app.ids AS SELECT id FROM app.t; \
         CREATE TABLE app.child (id INT PRIMARY KEY, pid INT REFERENCES app.t (id))",
    )
    .await
    .unwrap();
    assert_eq!(flat(&t, "SELECT * FROM app.ids ORDER BY id").await, "1;11");
    assert_eq!(sqlstate(&t, "SELECT * FROM ids").await, "42P01");
    assert_eq!(
        sqlstate(&t, "INSERT INTO app.child VALUES (1, 5)").await,
        "23503"
    );
    t.batch_execute("INSERT INTO app.child VALUES (1, 11)")
        .await
        .unwrap();
    assert!(flat(&t, "SHOW CREATE TABLE app.child")
        .await
        .contains("CREATE TABLE app.child"));
    assert_eq!(flat(&t, "SHOW TABLES").await, "app|child;app|t;public|t");
    assert_eq!(
        flat(
            &t,
            "SELECT table_schema, table_type FROM information_schema.tables \
             WHERE table_name IN ('t', 'ids') ORDER BY 1, 2"
        )
        .await,
        "app|BASE TABLE;app|VIEW;public|BASE TABLE"
    );
    assert_eq!(
        flat(
            &t,
            "SELECT schema_name FROM information_schema.schemata ORDER BY 1"
        )
        .await,
        "app;information_schema;pg_catalog;public"
    );
    // A renamed table stays in its schema.
    t.batch_execute(
        "CREATE TABLE app.r (id INT PRIMARY KEY); INSERT INTO app.r VALUES (7); \
         ALTER TABLE app.r RENAME TO kid",
    )
    .await
    .unwrap();
    assert_eq!(flat(&t, "SELECT id FROM app.kid").await, "7");
    assert_eq!(sqlstate(&t, "SELECT * FROM kid").await, "42P01");
    // DROP SCHEMA refuses a schema with relations unless CASCADE.
    assert_eq!(sqlstate(&t, "DROP SCHEMA app").await, "2BP01");
    assert_eq!(sqlstate(&t, "DROP SCHEMA public").await, "2BP01");
    assert_eq!(sqlstate(&t, "DROP SCHEMA nope").await, "3F000");
    t.batch_execute("DROP SCHEMA IF EXISTS nope").await.unwrap();
    t.batch_execute("DROP SCHEMA app CASCADE").await.unwrap();
    assert_eq!(sqlstate(&other, "SELECT * FROM app.t").await, "42P01");
    assert_eq!(sqlstate(&t, "SELECT * FROM app.ids").await, "42P01");
    assert_eq!(flat(&t, "SELECT count(*) FROM t").await, "2");
    assert_eq!(sqlstate(&t, "CREATE TABLE app.t (id INT)").await, "3F000");
    // An empty schema drops without CASCADE, and can be made again.
    t.batch_execute("CREATE SCHEMA app; DROP SCHEMA app; CREATE SCHEMA app")
        .await
        .unwrap();
    assert_eq!(
        sqlstate(&t, "SELECT * FROM app.t").await,
        "42P01",
        "a dropped schema's tables do not come back with the schema"
    );
}

/// Joins pick their algorithm from the shape of their inputs (EXPLAIN
/// names it): a merge join for two scans ordered by the join keys, a hash
/// join for other equalities, a lookup join when a few left rows give the
/// right table's whole primary key. All give the same rows; the lookup
/// join reads only the right rows it needs, so an uncommitted write to
/// another row of that table does not hold it up (a full scan waits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_choose_merge_hash_or_lookup() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    t.batch_execute(
        "CREATE TABLE a (id INT PRIMARY KEY, v INT); CREATE TABLE b (id INT PRIMARY KEY, w INT); \
         CREATE TABLE ck (k1 INT, k2 INT, x INT, PRIMARY KEY (k1, k2)); \
         CREATE TABLE dk (k1 INT, k2 INT, y INT, PRIMARY KEY (k1, k2)); \
         INSERT INTO a SELECT g, g % 50 FROM generate_series(1, 400) AS g; \
         INSERT INTO b SELECT g * 2, g FROM generate_series(1, 300) AS g; \
         INSERT INTO ck SELECT g % 20, g, g FROM generate_series(1, 200) AS g; \
         INSERT INTO dk SELECT g % 30, g, g FROM generate_series(1, 200) AS g",
    )
    .await
    .unwrap();
    let explain = |q: &str| {
        let t = &t;
        let q = format!("EXPLAIN {q}");
        async move { flat(t, &q).await }
    };
    // Two primary-key-ordered scans: merged (also for outer joins).
    for (kind, q) in [
        (
            "full",
            "SELECT count(*), count(a.id), count(b.id) FROM a FULL JOIN b ON a.id = b.id",
        ),
        (
            "right",
            "SELECT count(*), count(a.id) FROM a RIGHT JOIN b ON a.id = b.id",
        ),
        (
            "inner",
            "SELECT count(*), sum(ck.x + dk.y) FROM ck JOIN dk ON ck.k1 = dk.k1",
        ),
    ] {
        let plan = explain(q).await;
        assert!(plan.contains(&format!("merge join ({kind})")), "{plan}");
    }
    // 400 + 300 rows, 200 ids in common (even ids up to 400).
    assert_eq!(
        flat(
            &t,
            "SELECT count(*), count(a.id), count(b.id) FROM a FULL JOIN b ON a.id = b.id"
        )
        .await,
        "500|400|300"
    );
    assert_eq!(
        flat(
            &t,
            "SELECT count(*), count(a.id) FROM a RIGHT JOIN b ON a.id = b.id"
        )
        .await,
        "300|200"
    );
    // Groups of equal k1 on both sides: 20 groups of 10 x 200/30-ish rows.
    let expected = flat(
        &t,
        "SELECT count(*), sum(ck.x + dk.y) FROM ck, dk WHERE ck.k1 + 0 = dk.k1 + 0",
    )
    .await;
    assert!(explain("SELECT * FROM ck, dk WHERE ck.k1 + 0 = dk.k1 + 0")
        .await
        .contains("hash join (inner)"));
    assert_eq!(
        flat(
            &t,
            "SELECT count(*), sum(ck.x + dk.y) FROM ck JOIN dk ON ck.k1 = dk.k1"
        )
        .await,
        expected
    );
    // Not on the keys' order: hashed.
    let plan = explain("SELECT * FROM a RIGHT JOIN b ON a.v = b.w").await;
    assert!(plan.contains("hash join (right)"), "{plan}");
    // A few left rows giving b's key: looked up.
    let q = "SELECT a.id, b.w FROM a JOIN b ON b.id = a.v WHERE a.id < 5 ORDER BY a.id";
    let plan = explain(q).await;
    assert!(
        plan.contains("lookup join (inner) into b@primary"),
        "{plan}"
    );
    assert_eq!(flat(&t, q).await, "2|1;4|2");
    // A join whose left side depends on the outer row (a correlated
    // subquery) cannot be looked up in advance: it is hashed per row.
    let correlated = "SELECT a.id, (SELECT b.w FROM a a2 JOIN b ON b.id = a2.v \
                      WHERE a2.id = a.id) FROM a WHERE a.id < 5 ORDER BY a.id";
    assert_eq!(flat(&t, correlated).await, "1|NULL;2|1;3|NULL;4|2");
    let q_left = "SELECT a.id, b.w FROM a LEFT JOIN b ON b.id = a.v WHERE a.id < 5 ORDER BY a.id";
    assert_eq!(flat(&t, q_left).await, "1|NULL;2|1;3|NULL;4|2");
    // Many left rows: the same plan reads b in full and gives all matches.
    assert_eq!(
        flat(&t, "SELECT count(*), sum(b.w) FROM a JOIN b ON b.id = a.v").await,
        flat(
            &t,
            "SELECT count(*), sum(b.w) FROM a JOIN b ON b.id + 0 = a.v"
        )
        .await
    );
    // FOR UPDATE locks the rows read: the lookup join reads (and locks)
    // only b's rows 2 and 4, a full scan of b locks them all.
    let timeout = std::time::Duration::from_secs(2);
    let update_within = |id: i32| {
        let addr = c.addrs[1];
        async move {
            let w = connect(addr).await;
            let q = format!("UPDATE b SET w = w + 1 WHERE id = {id}");
            tokio::time::timeout(timeout, w.batch_execute(&q))
                .await
                .is_ok()
        }
    };
    t.batch_execute("BEGIN").await.unwrap();
    assert_eq!(flat(&t, &format!("{q} FOR UPDATE")).await, "2|1;4|2");
    assert!(update_within(400).await, "the lookup join locked b/400");
    assert!(!update_within(4).await, "the lookup join did not lock b/4");
    t.batch_execute("ROLLBACK").await.unwrap();
    // The update of b/4 goes through once the lock is gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while flat(&t, "SELECT w FROM b WHERE id = 4").await != "3" {
        assert!(
            std::time::Instant::now() < deadline,
            "the update of b/4 never ran"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let full = "SELECT a.id FROM a JOIN b ON b.id + 0 = a.v WHERE a.id < 5 ORDER BY a.id";
    t.batch_execute("BEGIN").await.unwrap();
    assert_eq!(flat(&t, &format!("{full} FOR UPDATE")).await, "2;4");
    assert!(
        !update_within(398).await,
        "a full scan of b locks every row"
    );
    t.batch_execute("ROLLBACK").await.unwrap();
}

/// The most-read pg_catalog relations list the database's schemas,
/// tables, views, indexes, columns, types and databases, qualified or not,
/// and join as PostgreSQL's do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_catalog_relations_describe_the_catalog() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    t.batch_execute(
        "CREATE SCHEMA app; \
         CREATE TABLE acct (id INT PRIMARY KEY, owner TEXT NOT NULL, n BIGINT DEFAULT 0); \
         CREATE UNIQUE INDEX acct_owner ON acct (owner); \
         CREATE TABLE app.log (msg TEXT); \
         CREATE VIEW owners AS SELECT owner FROM acct",
    )
    .await
    .unwrap();
    assert_eq!(
        flat(
            &t,
            "SELECT schemaname, tablename, hasindexes FROM pg_tables ORDER BY 1, 2"
        )
        .await,
        "app|log|f;public|acct|t"
    );
    assert_eq!(
        flat(
            &t,
            "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = 'public'"
        )
        .await,
        "acct"
    );
    assert_eq!(
        flat(&t, "SELECT viewname, definition FROM pg_views").await,
        "owners|SELECT owner FROM acct"
    );
    assert_eq!(
        flat(
            &t,
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'acct' ORDER BY 1"
        )
        .await,
        "acct_owner|CREATE UNIQUE INDEX acct_owner ON public.acct USING btree (owner);\
         acct_pkey|CREATE UNIQUE INDEX acct_pkey ON public.acct USING btree (id)"
    );
    assert_eq!(
        flat(
            &t,
            "SELECT n.nspname, c.relname, c.relkind FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname <> 'pg_catalog' ORDER BY 2"
        )
        .await,
        "public|acct|r;public|acct_owner|i;public|acct_pkey|i;app|log|r;public|owners|v"
    );
    assert_eq!(
        flat(
            &t,
            "SELECT a.attnum, a.attname, ty.typname, a.attnotnull, a.atthasdef \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_type ty ON ty.oid = a.atttypid \
             WHERE c.relname = 'acct' ORDER BY a.attnum"
        )
        .await,
        "1|id|int4|t|f;2|owner|text|t|f;3|n|int8|f|t"
    );
    assert_eq!(
        flat(
            &t,
            "SELECT datname FROM pg_database WHERE datname = current_database()"
        )
        .await,
        "defaultdb"
    );
    assert_eq!(
        sqlstate(&t, "SELECT * FROM pg_catalog.pg_nothing").await,
        "42P01"
    );
    // psql's \dn, with its regular-expression operator.
    assert_eq!(
        flat(
            &t,
            "SELECT n.nspname AS \"Name\", pg_catalog.pg_get_userbyid(n.nspowner) AS \"Owner\" \
             FROM pg_catalog.pg_namespace n \
             WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' ORDER BY 1"
        )
        .await,
        "app|root;public|root"
    );
    assert_eq!(
        flat(
            &t,
            "SELECT 'abc' ~ 'b', 'abc' ~ '^b', 'ABC' ~* 'b', 'abc' !~ 'z', 'ABC' !~* 'a', \
             NULL ~ 'a', 'x1y22' ~ '^x[0-9]+y[0-9]{2}$'"
        )
        .await,
        "t|f|t|t|f|NULL|t"
    );
    // What drivers and ORMs ask on connect.
    assert_eq!(
        flat(
            &t,
            "SELECT t.oid, typarray FROM pg_type t JOIN pg_namespace ns ON typnamespace = ns.oid \
             WHERE typname IN ('int4', 'text') ORDER BY 1"
        )
        .await,
        "23|1007;25|1009"
    );
    assert_eq!(
        flat(
            &t,
            "SELECT c.relname FROM pg_catalog.pg_class c \
             LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'v') AND NOT c.relispartition \
             AND n.nspname NOT IN ('pg_catalog', 'pg_toast') \
             AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 1"
        )
        .await,
        "acct;log;owners"
    );
    assert_eq!(
        flat(
            &t,
            "SELECT current_user, session_user, current_schema, current_schema()"
        )
        .await,
        "root|root|public|public"
    );
    t.batch_execute("SET search_path = app, public")
        .await
        .unwrap();
    assert_eq!(flat(&t, "SELECT current_schema()").await, "app");
    t.batch_execute("RESET search_path").await.unwrap();
    assert_eq!(sqlstate(&t, "SELECT 'a' ~ '('").await, "2201B");
    assert_eq!(sqlstate(&t, "SELECT 1 ~ 'a'").await, "42883");
}

/// WITH RECURSIVE: series, tree walks over a join, UNION stopping at a
/// cycle, a runaway recursion stopped with 54000, and PostgreSQL's 42P19
/// for recursive references where they may not be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_recursive_walks_series_trees_and_graphs() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    assert_eq!(
        flat(
            &t,
            "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 100) \
             SELECT count(*), sum(n), max(n) FROM s"
        )
        .await,
        "100|5050|100"
    );
    t.batch_execute(
        "CREATE TABLE emp (id INT PRIMARY KEY, boss INT, name TEXT); \
         INSERT INTO emp VALUES (1, NULL, 'ada'), (2, 1, 'bo'), (3, 1, 'cy'), (4, 2, 'di'), \
         (5, 4, 'ed'), (6, 3, 'flo'); \
         CREATE TABLE edges (src INT, dst INT, PRIMARY KEY (src, dst)); \
         INSERT INTO edges VALUES (1, 2), (2, 3), (3, 1), (3, 4), (5, 6)",
    )
    .await
    .unwrap();
    // Everyone under bo, with depth and path, joined both ways round.
    for join in [
        "emp e JOIN chain c ON e.boss = c.id",
        "chain c JOIN emp e ON e.boss = c.id",
    ] {
        let q = format!(
            "WITH RECURSIVE chain(id, name, depth, path) AS ( \
               SELECT id, name, 0, name FROM emp WHERE id = 2 \
               UNION ALL \
               SELECT e.id, e.name, c.depth + 1, c.path || '/' || e.name FROM {join}) \
             SELECT name, depth, path FROM chain ORDER BY depth, name"
        );
        assert_eq!(
            flat(&t, &q).await,
            "bo|0|bo;di|1|bo/di;ed|2|bo/di/ed",
            "{join}"
        );
    }
    // The boss chain upwards, through a lookup of each boss by key.
    assert_eq!(
        flat(
            &t,
            "WITH RECURSIVE up AS (SELECT id, boss FROM emp WHERE id = 5 \
             UNION ALL SELECT e.id, e.boss FROM up JOIN emp e ON e.id = up.boss) \
             SELECT id FROM up ORDER BY id"
        )
        .await,
        "1;2;4;5"
    );
    // UNION (not ALL) stops at the cycle 1 -> 2 -> 3 -> 1.
    assert_eq!(
        flat(
            &t,
            "WITH RECURSIVE r(x) AS (SELECT 1 UNION SELECT e.dst FROM edges e JOIN r ON e.src = r.x) \
             SELECT x FROM r ORDER BY x"
        )
        .await,
        "1;2;3;4"
    );
    // A non-recursive CTE under WITH RECURSIVE, used by the recursive one.
    assert_eq!(
        flat(
            &t,
            "WITH RECURSIVE start AS (SELECT 5 AS x), \
             r(x) AS (SELECT x FROM start UNION ALL SELECT x - 1 FROM r WHERE x > 1) \
             SELECT string_agg(x::text, ',') FROM r"
        )
        .await,
        "5,4,3,2,1"
    );
    assert_eq!(
        sqlstate(
            &t,
            "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x FROM r) SELECT count(*) FROM r"
        )
        .await,
        "54000"
    );
    assert_eq!(
        sqlstate(
            &t,
            "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL \
             SELECT x + 1 FROM emp WHERE id IN (SELECT x FROM r)) SELECT * FROM r"
        )
        .await,
        "42P19"
    );
    assert_eq!(
        sqlstate(
            &t,
            "WITH RECURSIVE r(x) AS (SELECT x FROM r UNION ALL SELECT 1) SELECT * FROM r"
        )
        .await,
        "42P19"
    );
    assert!(flat(
        &t,
        "EXPLAIN WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 3) \
         SELECT n FROM s"
    )
    .await
    .contains("recursive union all"));
}

/// Window functions: ranking, running and whole-partition aggregates with
/// peers, lag / lead, windows over a grouped query and in ORDER BY, and
/// PostgreSQL's errors where they may not be used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_functions_rank_run_and_look_around() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    t.batch_execute(
        "CREATE TABLE pay (id INT PRIMARY KEY, dept TEXT, salary INT); \
         INSERT INTO pay VALUES (1, 'a', 100), (2, 'a', 200), (3, 'a', 200), (4, 'b', 50), \
         (5, 'b', NULL), (6, 'c', 300)",
    )
    .await
    .unwrap();
    let cases = [
        (
            "SELECT id, row_number() OVER (ORDER BY id DESC) FROM pay ORDER BY id",
            "1|6;2|5;3|4;4|3;5|2;6|1",
        ),
        (
            "SELECT id, rank() OVER (PARTITION BY dept ORDER BY salary DESC), \
             dense_rank() OVER (PARTITION BY dept ORDER BY salary DESC) FROM pay ORDER BY id",
            "1|3|2;2|1|1;3|1|1;4|2|2;5|1|1;6|1|1",
        ),
        (
            "SELECT id, sum(salary) OVER (PARTITION BY dept ORDER BY id) FROM pay ORDER BY id",
            "1|100;2|300;3|500;4|50;5|50;6|300",
        ),
        (
            // Rows with equal ORDER BY values are peers: they share the sum.
            "SELECT id, sum(salary) OVER (ORDER BY dept) FROM pay ORDER BY id",
            "1|500;2|500;3|500;4|550;5|550;6|850",
        ),
        (
            "SELECT id, count(*) OVER (PARTITION BY dept), max(salary) OVER () FROM pay ORDER BY id",
            "1|3|300;2|3|300;3|3|300;4|2|300;5|2|300;6|1|300",
        ),
        (
            "SELECT id, lag(salary) OVER (ORDER BY id), lead(salary, 2, -1) OVER (ORDER BY id) \
             FROM pay ORDER BY id",
            "1|NULL|200;2|100|50;3|200|NULL;4|200|300;5|50|-1;6|NULL|-1",
        ),
        (
            "SELECT dept, sum(salary), rank() OVER (ORDER BY sum(salary) DESC) FROM pay \
             GROUP BY dept ORDER BY dept",
            "a|500|1;b|50|3;c|300|2",
        ),
        (
            "SELECT id FROM pay ORDER BY row_number() OVER (ORDER BY id DESC) LIMIT 2",
            "6;5",
        ),
        (
            // The first of each department, by a window in a subquery.
            "SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY dept \
             ORDER BY salary DESC NULLS LAST, id) AS rn FROM pay) AS ranked \
             WHERE rn = 1 ORDER BY id",
            "2;4;6",
        ),
        (
            // Frames: a moving sum over the row before and the row after,
            // a running count by rows (not peers), a trailing window that
            // ends before the current row.
            "SELECT id, sum(id) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING), \
             count(*) OVER (ORDER BY dept ROWS UNBOUNDED PRECEDING), \
             sum(id) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 2 PRECEDING), \
             max(id) OVER (PARTITION BY dept ORDER BY id RANGE BETWEEN CURRENT ROW AND \
             UNBOUNDED FOLLOWING) FROM pay ORDER BY id",
            "1|3|1|NULL|3;2|6|2|NULL|3;3|9|3|1|3;4|12|4|3|5;5|15|5|6|5;6|11|6|10|6",
        ),
        (
            // Without an ORDER BY the rows come in the window's order.
            "SELECT id, row_number() OVER (ORDER BY salary NULLS FIRST, id) FROM pay",
            "5|1;4|2;1|3;2|4;3|5;6|6",
        ),
    ];
    for (q, want) in cases {
        assert_eq!(flat(&t, q).await, want, "{q}");
    }
    assert_eq!(
        sqlstate(&t, "SELECT id FROM pay WHERE row_number() OVER () > 1").await,
        "42P20"
    );
    assert_eq!(
        sqlstate(&t, "SELECT sum(row_number() OVER ()) FROM pay").await,
        "42P20"
    );
    assert_eq!(
        sqlstate(&t, "SELECT lower(dept) OVER () FROM pay").await,
        "42809"
    );
    assert_eq!(
        sqlstate(
            &t,
            "SELECT sum(id) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED FOLLOWING AND CURRENT ROW) FROM pay"
        )
        .await,
        "42P20"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_operators_and_functions_reach_into_documents() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    s.batch_execute(
        r#"CREATE TABLE docs (id INT PRIMARY KEY, d JSONB, j JSON);
           INSERT INTO docs VALUES
             (1, '{"name": "ann", "tags": ["a", "b"], "n": 1.50, "sub": {"x": null}}', '{"k": [1, 2]}'),
             (2, '{"name": "bob", "tags": [], "n": 2}', '[10, 20]'),
             (3, NULL, NULL);"#,
    )
    .await
    .unwrap();
    // -> gives JSON, ->> text; a missing key or position (or NULL) is NULL.
    assert_eq!(
        flat(
            &s,
            "SELECT d->'name', d->>'name', d->'tags'->1, d->'tags'->> -1 FROM docs ORDER BY id"
        )
        .await,
        r#""ann"|ann|"b"|b;"bob"|bob|NULL|NULL;NULL|NULL|NULL|NULL"#
    );
    assert_eq!(
        flat(
            &s,
            "SELECT d->'sub'->>'x', d->'sub'->'x', d->>'sub', d->>'n' FROM docs WHERE id = 1"
        )
        .await,
        r#"NULL|null|{"x": null}|1.50"#
    );
    assert_eq!(
        flat(&s, "SELECT j->'k'->>0, j->1 FROM docs ORDER BY id").await,
        "1|NULL;NULL|20;NULL|NULL"
    );
    // In predicates, with parameters, and their result types.
    assert_eq!(
        flat(&s, "SELECT id FROM docs WHERE d->>'name' = 'bob'").await,
        "2"
    );
    let rows = s
        .query("SELECT id FROM docs WHERE d->>$1 = $2", &[&"name", &"ann"])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i32>(0), 1);
    assert_eq!(
        flat(&s, "SELECT pg_typeof(d->'n'), pg_typeof(d->>'n'), pg_typeof(j->'k') FROM docs WHERE id = 1").await,
        "jsonb|text|json"
    );
    // Containment and key tests.
    assert_eq!(
        flat(
            &s,
            r#"SELECT id FROM docs WHERE d @> '{"tags": ["b"]}' ORDER BY id"#
        )
        .await,
        "1"
    );
    assert_eq!(
        flat(
            &s,
            r#"SELECT '{"n": 2}' <@ d, d ? 'tags', d ? 'zz', d->'tags' ? 'a' FROM docs ORDER BY id"#
        )
        .await,
        "f|t|f|t;t|t|f|f;NULL|NULL|NULL|NULL"
    );
    // Functions.
    assert_eq!(
        flat(&s, "SELECT jsonb_typeof(d), jsonb_typeof(d->'tags'), jsonb_array_length(d->'tags'), json_typeof(j), jsonb_extract_path_text(d, 'sub', 'x'), jsonb_extract_path(d, 'tags', '0') FROM docs WHERE id = 1").await,
        r#"object|array|2|object|NULL|"a""#
    );
    assert_eq!(
        sqlstate(&s, "SELECT jsonb_array_length(d) FROM docs WHERE id = 1").await,
        "22023"
    );
    // Paths as text arrays, and documents built from values.
    assert_eq!(
        flat(
            &s,
            "SELECT d #> '{tags,1}', d #>> '{name}', d #> '{nope,x}', d #> '{name,NULL}' FROM docs WHERE id = 1"
        )
        .await,
        r#""b"|ann|NULL|NULL"#
    );
    assert_eq!(sqlstate(&s, "SELECT d #> 'name' FROM docs").await, "22P02");
    assert_eq!(
        flat(&s, "SELECT jsonb_build_object('id', id, 'name', d->'name', 'ok', id < 2, 'none', NULL), json_build_object('a', 1.5, 'b', 'x'), jsonb_build_array(id, 'x', NULL, d->'tags'), to_jsonb('q\"'::text), to_json(7) FROM docs WHERE id = 1").await,
        r#"{"id": 1, "ok": true, "name": "ann", "none": null}|{"a" : 1.5, "b" : "x"}|[1, "x", null, ["a", "b"]]|"q\""|7"#
    );
    assert_eq!(
        sqlstate(&s, "SELECT jsonb_build_object('a')").await,
        "22023"
    );
    assert_eq!(sqlstate(&s, "SELECT 1 -> 'a'").await, "42883");
    assert_eq!(sqlstate(&s, "SELECT j @> j FROM docs").await, "42883");
    // jsonb || merges objects and concatenates arrays; - deletes a key or an element.
    assert_eq!(
        flat(&s, r#"SELECT '{"a":1,"b":2}'::jsonb || '{"b":3,"c":4}'::jsonb, '[1,2]'::jsonb || '[3]'::jsonb, '[1]'::jsonb || '{"x":1}'::jsonb, d - 'name', (d->'tags') - 0, (d->'tags') - -1 FROM docs WHERE id = 1"#).await,
        r#"{"a": 1, "b": 3, "c": 4}|[1, 2, 3]|[1, {"x": 1}]|{"n": 1.50, "sub": {"x": null}, "tags": ["a", "b"]}|["b"]|["a"]"#
    );
    assert_eq!(
        sqlstate(&s, r#"SELECT '{"a":1}'::jsonb - 0"#).await,
        "22023"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_and_all_compare_with_every_array_element() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    assert_eq!(
        flat(&s, "SELECT 2 = ANY(ARRAY[1,2]), 3 = ANY(ARRAY[1,2]), 3 <> ALL('{1,2}'), 2 <> ALL('{1,2}'::int[]), 5 > ALL(ARRAY[1,4]), 1 = ANY('{}'::int[]), 1 = ALL('{}'::int[]), NULL::int = ANY(ARRAY[1])").await,
        "t|f|t|f|t|f|t|NULL"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT 'b' = ANY(ARRAY['a','b']), 'c' = ANY(ARRAY['a','b'])"
        )
        .await,
        "t|f"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn date_string_and_math_functions_print_as_postgresql_does() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    assert_eq!(
        flat(&s, "SELECT age(TIMESTAMP '2001-04-10', TIMESTAMP '1957-06-13'), age(DATE '2024-03-01', DATE '2024-01-31')").await,
        "43 years 9 mons 27 days|1 mon 1 day"
    );
    assert_eq!(
        flat(&s, "SELECT to_char(TIMESTAMP '2024-03-05 14:07:09', 'YYYY-MM-DD HH24:MI:SS'), to_char(DATE '2024-03-05', 'FMDay, FMDD Mon YYYY')").await,
        "2024-03-05 14:07:09|Tuesday, 5 Mar 2024"
    );
    assert_eq!(
        flat(&s, "SELECT make_date(2024, 2, 29), make_timestamp(2024, 2, 29, 13, 5, 1.5), to_timestamp(86400)").await,
        "2024-02-29|2024-02-29 13:05:01.5|1970-01-02 00:00:00+00"
    );
    assert_eq!(sqlstate(&s, "SELECT make_date(2023, 2, 29)").await, "22008");
    assert_eq!(
        flat(&s, "SELECT md5('a'), md5(''), 2 ^ 10, |/ 16, ||/ 27, @ -5").await,
        "0cc175b9c0f1b6a831c399e269772661|d41d8cd98f00b204e9800998ecf8427e|1024|4|3|5"
    );
    assert_eq!(
        flat(&s, "SELECT clock_timestamp() > TIMESTAMPTZ '2020-01-01', age(TIMESTAMP '2000-01-01') > INTERVAL '20 years'").await,
        "t|t"
    );
    assert_eq!(
        flat(&s, r"SELECT regexp_replace('a1b22', '[0-9]+', '#'), regexp_replace('a1b22', '([0-9]+)', '<\1>', 'g'), regexp_replace('ABC', 'b', 'x', 'i'), translate('abcb', 'bc', 'x')").await,
        "a#b22|a<1>b<22>|AxC|axx"
    );
    assert_eq!(
        flat(&s, "SELECT format('%s=%L, %I %% %2$s', 'k', 'it''s', 'Col'), format('%s|%L', NULL, NULL), quote_ident('ok_1'), quote_ident('a b'), quote_literal(42)").await,
        r#"k='it''s', "Col" % it's||NULL|ok_1|"a b"|'42'"#
    );
    assert_eq!(
        flat(&s, "SELECT to_hex(255), to_hex(-1), to_hex(-1::int8), bit_length('ab'), length(gen_random_uuid()::text)").await,
        "ff|ffffffff|ffffffffffffffff|16|36"
    );
    assert_eq!(sqlstate(&s, "SELECT format('%s %s', 1)").await, "22023");
    assert_eq!(
        flat(&s, "SELECT div(7, 2), div(-7, 2), div(7.5, 2), to_date('2024-01-05', 'YYYY-MM-DD'), to_timestamp('05 Mar 2024 02:07 PM', 'DD Mon YYYY HH12:MI AM')").await,
        "3|-3|3|2024-01-05|2024-03-05 14:07:00+00"
    );
    assert_eq!(
        flat(&s, "SELECT justify_days(interval '35 days'), justify_hours(interval '27 hours'), justify_interval(interval '1 mon -1 hour')").await,
        "1 mon 5 days|1 day 03:00:00|29 days 23:00:00"
    );
    assert_eq!(sqlstate(&s, "SELECT div(1, 0)").await, "22012");
    assert_eq!(
        flat(&s, r"SELECT encode('abc'::bytea, 'hex'), encode('hello world'::bytea, 'base64'), encode('\x00ff5c41'::bytea, 'escape'), decode('616263', 'hex'), decode('aGVsbG8gd29ybGQ=', 'base64'), decode('a\\b\101', 'escape')").await,
        r"616263|aGVsbG8gd29ybGQ=|\000\377\\A|\x616263|\x68656c6c6f20776f726c64|\x615c6241"
    );
    assert_eq!(sqlstate(&s, "SELECT decode('6x', 'hex')").await, "22023");
    assert_eq!(
        sqlstate(&s, "SELECT encode('a'::bytea, 'rot13')").await,
        "22023"
    );
    assert_eq!(
        flat(&s, "SELECT trunc(2.567, 1), trunc(-2.567, 2), trunc(1234.5, -2), trunc(2.5, 3), gcd(12, 18), lcm(4, 6), gcd(0, 0), lcm(-4::int8, 6)").await,
        "2.5|-2.56|1200|2.500|6|12|0|12"
    );
    assert_eq!(
        sqlstate(&s, "SELECT lcm(2147483647, 2147483646)").await,
        "22003"
    );
    // SIMILAR TO: SQL's regular expressions, anchored at both ends.
    assert_eq!(
        flat(&s, r"SELECT 'abc' SIMILAR TO 'a%', 'abc' SIMILAR TO 'b%', 'abc' SIMILAR TO '(a|x)_c', 'a.c' SIMILAR TO 'a.c', 'abc' SIMILAR TO 'a.c', 'aab' SIMILAR TO 'a+b', 'a%' SIMILAR TO 'a#%' ESCAPE '#', 'ab' SIMILAR TO 'a#%' ESCAPE '#', 'b2' NOT SIMILAR TO '[a-c][0-9]'").await,
        "t|f|t|t|f|t|t|f|f"
    );
    assert_eq!(
        sqlstate(&s, "SELECT 'a' SIMILAR TO 'a' ESCAPE 'xy'").await,
        "22025"
    );
    assert_eq!(
        sqlstate(&s, "SELECT to_date('2024-13-01', 'YYYY-MM-DD')").await,
        "22008"
    );
    // Casts to text print as the source type does.
    assert_eq!(
        flat(&s, "SELECT '550E8400-e29b-41d4-a716-446655440000'::uuid::text, CAST(TIMESTAMPTZ '2024-01-01 10:00:00+02' AS varchar)").await,
        "550e8400-e29b-41d4-a716-446655440000|2024-01-01 08:00:00+00"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unaliased_columns_are_named_as_postgresql_names_them() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    s.batch_execute("CREATE TABLE named (id INT PRIMARY KEY, label TEXT)")
        .await
        .unwrap();
    let names = |sql: &'static str| {
        let s = &s;
        async move {
            let stmt = s.prepare(sql).await.unwrap();
            stmt.columns()
                .iter()
                .map(|c| c.name().to_string())
                .collect::<Vec<_>>()
                .join(",")
        }
    };
    assert_eq!(
        names("SELECT id, named.label, substr(label, 1, 2), substring(label FROM 2), trim(label), trim(leading from label), position('a' in label), ceil(1.5), count(*), upper(label) FROM named GROUP BY id, label").await,
        "id,label,substr,substring,btrim,ltrim,position,ceil,count,upper"
    );
    assert_eq!(
        names("SELECT 1::int, '1'::bigint, 2.5::double precision, 'x'::varchar(3), 'x'::char(2), label::text, (id + 1)::text, true, NULL, 1 + 1, CASE WHEN id > 0 THEN 1 END, EXISTS (SELECT 1), DATE '2024-01-01' FROM named").await,
        "int4,int8,float8,varchar,bpchar,label,text,bool,?column?,?column?,case,exists,date"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_take_their_own_order_and_statistics() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    s.batch_execute(
        "CREATE TABLE obs (id INT PRIMARY KEY, grp TEXT, v INT, f FLOAT8);
         INSERT INTO obs VALUES (1, 'a', 3, 1.5), (2, 'a', 1, 2.5), (3, 'b', 2, 4.0),
                                (4, 'a', 2, NULL), (5, 'b', NULL, 8.0);",
    )
    .await
    .unwrap();
    // ORDER BY inside the call orders what the aggregate sees.
    assert_eq!(
        flat(&s, "SELECT grp, string_agg(id::text, ',' ORDER BY v DESC), array_agg(v ORDER BY v NULLS FIRST), string_agg(DISTINCT grp, '' ORDER BY grp) FROM obs GROUP BY grp ORDER BY grp").await,
        "a|1,4,2|{1,2,3}|a;b|5,3|{NULL,2}|b"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT string_agg(grp || id, ' ' ORDER BY grp DESC, id) FROM obs"
        )
        .await,
        "b3 b5 a1 a2 a4"
    );
    assert_eq!(
        sqlstate(
            &s,
            "SELECT string_agg(DISTINCT grp, ',' ORDER BY id) FROM obs"
        )
        .await,
        "42P10"
    );
    assert_eq!(
        sqlstate(&s, "SELECT lower(grp ORDER BY id) FROM obs").await,
        "42809"
    );
    assert_eq!(
        sqlstate(&s, "SELECT count(*) WITHIN GROUP (ORDER BY id) FROM obs").await,
        "42809"
    );
    // Variance and standard deviation, exact for integers and numerics.
    assert_eq!(
        flat(&s, "SELECT variance(x), var_pop(x), stddev(x), stddev_pop(x), var_samp(x::float8), stddev_samp(x::float8) FROM generate_series(1, 4) AS x").await,
        "1.6666666666666667|1.2500000000000000|1.2909944487358056|1.1180339887498948|1.6666666666666667|1.2909944487358056"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT grp, variance(v), stddev(f) FROM obs GROUP BY grp ORDER BY grp"
        )
        .await,
        "a|1.00000000000000000000|0.7071067811865476;b|NULL|2.8284271247461903"
    );
    assert_eq!(
        flat(&s, "SELECT var_pop(v), variance(v) FROM obs WHERE id = 1").await,
        "0|NULL"
    );
    // Numeric division keeps PostgreSQL's result scale.
    assert_eq!(
        flat(
            &s,
            "SELECT 1::numeric / 3, 10::numeric / 4, avg(x) FROM (VALUES (1), (1)) AS t(x)"
        )
        .await,
        "0.33333333333333333333|2.5000000000000000|1.00000000000000000000"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_series_steps_through_timestamps() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    assert_eq!(
        flat(&s, "SELECT * FROM generate_series(TIMESTAMP '2024-01-30', TIMESTAMP '2024-04-01', INTERVAL '1 month')").await,
        "2024-01-30 00:00:00;2024-02-29 00:00:00;2024-03-29 00:00:00"
    );
    assert_eq!(
        flat(&s, "SELECT g FROM generate_series('2024-01-01 12:00'::timestamp, '2024-01-01 10:00', '-1 hour') AS g").await,
        "2024-01-01 12:00:00;2024-01-01 11:00:00;2024-01-01 10:00:00"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT generate_series(DATE '2024-01-01', DATE '2024-01-02', '12 hours')"
        )
        .await,
        "2024-01-01 00:00:00+00;2024-01-01 12:00:00+00;2024-01-02 00:00:00+00"
    );
    assert_eq!(
        flat(&s, "SELECT count(*), min(d)::date FROM generate_series(TIMESTAMPTZ '2024-01-01 00:00+00', TIMESTAMPTZ '2024-12-31 00:00+00', INTERVAL '1 day') AS d").await,
        "366|2024-01-01"
    );
    assert_eq!(
        sqlstate(&s, "SELECT * FROM generate_series(TIMESTAMP '2024-01-01', TIMESTAMP '2024-01-02', INTERVAL '0 days')").await,
        "22023"
    );
    // AT TIME ZONE / timezone(): UTC relabels a timestamp as timestamptz
    // and back; other zones are refused.
    assert_eq!(
        flat(&s, "SELECT TIMESTAMP '2024-01-01 10:00' AT TIME ZONE 'UTC', TIMESTAMPTZ '2024-01-01 10:00+02' AT TIME ZONE 'utc', timezone('Etc/UTC', TIMESTAMPTZ '2024-01-01 00:00+00')").await,
        "2024-01-01 10:00:00+00|2024-01-01 08:00:00|2024-01-01 00:00:00"
    );
    assert_eq!(
        sqlstate(&s, "SELECT now() AT TIME ZONE 'Mars/Olympus'").await,
        "22023"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_column_changes_defaults_and_nullability() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    s.batch_execute(
        "CREATE TABLE acc (id SERIAL PRIMARY KEY, name TEXT, kind TEXT DEFAULT 'basic');
         INSERT INTO acc (name) VALUES ('a'), (NULL);
         ALTER TABLE acc ALTER COLUMN kind SET DEFAULT 'pro';
         INSERT INTO acc (name) VALUES ('c');
         ALTER TABLE acc ALTER kind DROP DEFAULT;
         INSERT INTO acc (name) VALUES ('d');",
    )
    .await
    .unwrap();
    assert_eq!(
        flat(&s, "SELECT id, name, kind FROM acc ORDER BY id").await,
        "1|a|basic;2|NULL|basic;3|c|pro;4|d|NULL"
    );
    // SET NOT NULL checks the rows already there.
    assert_eq!(
        sqlstate(&s, "ALTER TABLE acc ALTER COLUMN name SET NOT NULL").await,
        "23502"
    );
    s.batch_execute(
        "UPDATE acc SET name = 'b' WHERE id = 2;
         ALTER TABLE acc ALTER COLUMN name SET NOT NULL;",
    )
    .await
    .unwrap();
    assert_eq!(
        sqlstate(&s, "INSERT INTO acc (name) VALUES (NULL)").await,
        "23502"
    );
    s.batch_execute(
        "ALTER TABLE acc ALTER COLUMN name DROP NOT NULL;
         INSERT INTO acc (name) VALUES (NULL);",
    )
    .await
    .unwrap();
    assert_eq!(
        flat(&s, "SELECT count(*) FROM acc WHERE name IS NULL").await,
        "1"
    );
    assert_eq!(
        sqlstate(&s, "ALTER TABLE acc ALTER COLUMN id DROP NOT NULL").await,
        "42P16"
    );
    assert_eq!(
        sqlstate(&s, "ALTER TABLE acc ALTER COLUMN nope SET DEFAULT 1").await,
        "42703"
    );
    assert_eq!(
        sqlstate(&s, "ALTER TABLE acc ALTER COLUMN kind SET DEFAULT 1 +").await,
        "42601"
    );
    // The catalog shows the change.
    assert_eq!(
        flat(&s, "SELECT column_name, is_nullable, column_default FROM information_schema.columns WHERE table_name = 'acc' AND column_name IN ('name', 'kind') ORDER BY column_name").await,
        "kind|YES|NULL;name|YES|NULL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn savepoints_undo_what_came_after_them() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    s.batch_execute("CREATE TABLE sp (id INT PRIMARY KEY, v TEXT)")
        .await
        .unwrap();
    s.batch_execute(
        "BEGIN;
         INSERT INTO sp VALUES (1, 'a');
         SAVEPOINT one;
         INSERT INTO sp VALUES (2, 'b');
         UPDATE sp SET v = 'changed' WHERE id = 1;
         SAVEPOINT two;
         INSERT INTO sp VALUES (3, 'c');
         ROLLBACK TO SAVEPOINT one;
         INSERT INTO sp VALUES (4, 'd');
         SAVEPOINT three;
         RELEASE SAVEPOINT three;
         COMMIT;",
    )
    .await
    .unwrap();
    assert_eq!(
        flat(&s, "SELECT id, v FROM sp ORDER BY id").await,
        "1|a;4|d"
    );
    // An error inside the block is undone by ROLLBACK TO, and the block
    // goes on (what psql's ON_ERROR_ROLLBACK and ORMs rely on).
    s.batch_execute("BEGIN; INSERT INTO sp VALUES (5, 'e'); SAVEPOINT s;")
        .await
        .unwrap();
    assert_eq!(
        sqlstate(&s, "INSERT INTO sp VALUES (6, 'f'), (5, 'dup')").await,
        "23505"
    );
    assert_eq!(sqlstate(&s, "SELECT 1").await, "25P02");
    assert_eq!(sqlstate(&s, "ROLLBACK TO SAVEPOINT nope").await, "3B001");
    s.batch_execute("ROLLBACK TO SAVEPOINT s; INSERT INTO sp VALUES (7, 'g'); COMMIT;")
        .await
        .unwrap();
    assert_eq!(flat(&s, "SELECT id FROM sp ORDER BY id").await, "1;4;5;7");
    // A duplicate of a committed key fails the INSERT itself inside a
    // block (unique index too), so get-or-create works: savepoint, insert,
    // on 23505 roll back to the savepoint and read.
    s.batch_execute("CREATE UNIQUE INDEX sp_v ON sp (v); BEGIN; SAVEPOINT s;")
        .await
        .unwrap();
    assert_eq!(
        sqlstate(&s, "INSERT INTO sp VALUES (1, 'again')").await,
        "23505"
    );
    s.batch_execute("ROLLBACK TO SAVEPOINT s").await.unwrap();
    assert_eq!(
        sqlstate(&s, "INSERT INTO sp VALUES (9, 'a')").await,
        "23505"
    );
    s.batch_execute("ROLLBACK TO SAVEPOINT s; INSERT INTO sp VALUES (9, 'i'); COMMIT;")
        .await
        .unwrap();
    assert_eq!(flat(&s, "SELECT v FROM sp WHERE id = 9").await, "i");
    // Deleting a row and inserting its key again in one block is no
    // duplicate.
    s.batch_execute("BEGIN; DELETE FROM sp WHERE id = 9; INSERT INTO sp VALUES (9, 'j'); COMMIT;")
        .await
        .unwrap();
    assert_eq!(flat(&s, "SELECT v FROM sp WHERE id = 9").await, "j");
    // Savepoints belong to a transaction block.
    assert_eq!(sqlstate(&s, "SAVEPOINT x").await, "25P01");
    assert_eq!(sqlstate(&s, "RELEASE SAVEPOINT x").await, "25P01");
    s.batch_execute("BEGIN; SAVEPOINT a;").await.unwrap();
    assert_eq!(sqlstate(&s, "RELEASE SAVEPOINT b").await, "3B001");
    s.batch_execute("ROLLBACK").await.unwrap();
    // A ROLLBACK after a failure still ends the whole block.
    s.batch_execute("BEGIN; INSERT INTO sp VALUES (8, 'h'); SAVEPOINT a;")
        .await
        .unwrap();
    assert_eq!(sqlstate(&s, "SELECT 1/0").await, "22012");
    s.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(flat(&s, "SELECT count(*) FROM sp WHERE id = 8").await, "0");
    // After a serialization failure the transaction itself is gone: a
    // ROLLBACK TO SAVEPOINT cannot continue it (40001 again), only ROLLBACK.
    let rival = connect(c.addrs[0]).await;
    s.batch_execute("BEGIN; SAVEPOINT a; SELECT v FROM sp WHERE id = 1")
        .await
        .unwrap();
    rival
        .batch_execute(
            "BEGIN; SELECT v FROM sp WHERE id = 1; UPDATE sp SET v = 'rival' WHERE id = 1",
        )
        .await
        .unwrap();
    let (mine, ()) = tokio::join!(
        s.batch_execute("UPDATE sp SET v = 'mine' WHERE id = 1"),
        async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            rival.batch_execute("COMMIT").await.unwrap();
        }
    );
    let code = mine.unwrap_err().code().map(|c| c.code().to_string());
    assert_eq!(code.as_deref(), Some("40001"));
    assert_eq!(sqlstate(&s, "ROLLBACK TO SAVEPOINT a").await, "40001");
    assert_eq!(sqlstate(&s, "SELECT 1").await, "25P02");
    s.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(flat(&s, "SELECT v FROM sp WHERE id = 1").await, "rival");
    // Nothing from a rolled-back savepoint leaks into another session.
    let other = connect(c.addrs[1]).await;
    assert_eq!(
        flat(&other, "SELECT id FROM sp ORDER BY id").await,
        "1;4;5;7;9"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_columns_number_rows_like_serial() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    s.batch_execute(
        "CREATE TABLE byd (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v TEXT);
         CREATE TABLE alw (id INT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v TEXT);
         INSERT INTO byd (v) VALUES ('a'), ('b');
         INSERT INTO byd VALUES (100, 'given');
         INSERT INTO alw (v) VALUES ('x');
         INSERT INTO alw (id, v) VALUES (DEFAULT, 'y');",
    )
    .await
    .unwrap();
    assert_eq!(
        flat(&s, "SELECT id, v FROM byd ORDER BY id").await,
        "1|a;2|b;100|given"
    );
    assert_eq!(
        flat(&s, "SELECT id, v FROM alw ORDER BY id").await,
        "1|x;2|y"
    );
    assert_eq!(
        sqlstate(&s, "INSERT INTO alw (id, v) VALUES (7, 'z')").await,
        "428C9"
    );
    assert_eq!(sqlstate(&s, "UPDATE alw SET id = 9").await, "428C9");
    assert_eq!(
        sqlstate(
            &s,
            "CREATE TABLE bad (id TEXT GENERATED ALWAYS AS IDENTITY)"
        )
        .await,
        "22023"
    );
    assert!(flat(&s, "SHOW CREATE TABLE alw")
        .await
        .contains("integer GENERATED ALWAYS AS IDENTITY"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_as_copies_a_query() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    s.batch_execute(
        "CREATE TABLE src (id INT PRIMARY KEY, name TEXT, amount NUMERIC(8,2));
         INSERT INTO src VALUES (1, 'a', 1.50), (2, 'b', 2.25), (3, 'c', NULL);",
    )
    .await
    .unwrap();
    let tag = s
        .simple_query("CREATE TABLE copy AS SELECT id, upper(name) AS big, amount * 2 AS twice, 'x' AS lit FROM src WHERE id < 3")
        .await
        .unwrap();
    assert!(matches!(
        tag.last(),
        Some(tokio_postgres::SimpleQueryMessage::CommandComplete(2))
    ));
    assert_eq!(
        flat(&s, "SELECT id, big, twice, lit FROM copy ORDER BY id").await,
        "1|A|3.00|x;2|B|4.50|x"
    );
    assert_eq!(
        flat(&s, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'copy' ORDER BY ordinal_position").await,
        "id|integer;big|text;twice|numeric;lit|text"
    );
    // The copy is a table of its own.
    s.batch_execute("INSERT INTO copy VALUES (9, 'Z', 0, 'y'); DELETE FROM src")
        .await
        .unwrap();
    assert_eq!(flat(&s, "SELECT count(*) FROM copy").await, "3");
    assert_eq!(sqlstate(&s, "CREATE TABLE copy AS SELECT 1").await, "42P07");
    s.batch_execute("CREATE TABLE IF NOT EXISTS copy AS SELECT 1")
        .await
        .unwrap();
    // A query that fails leaves no table behind; inside BEGIN, ROLLBACK
    // removes it.
    assert_eq!(
        sqlstate(&s, "CREATE TABLE bad AS SELECT 1 / (id - id) FROM copy").await,
        "22012"
    );
    assert_eq!(sqlstate(&s, "SELECT * FROM bad").await, "42P01");
    s.batch_execute("BEGIN; CREATE TABLE intxn AS SELECT 1 AS one; ROLLBACK;")
        .await
        .unwrap();
    assert_eq!(sqlstate(&s, "SELECT * FROM intxn").await, "42P01");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_table_adds_constraints_and_runs_several_operations() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    s.batch_execute(
        "CREATE TABLE item (id INT PRIMARY KEY, code TEXT, qty INT);
         INSERT INTO item VALUES (1, 'a', 5), (2, 'b', 0), (3, 'b', 7);",
    )
    .await
    .unwrap();
    // UNIQUE: refused while rows collide, then enforced.
    assert_eq!(
        sqlstate(
            &s,
            "ALTER TABLE item ADD CONSTRAINT item_code_uq UNIQUE (code)"
        )
        .await,
        "23505"
    );
    s.batch_execute("UPDATE item SET code = 'c' WHERE id = 3; ALTER TABLE item ADD UNIQUE (code)")
        .await
        .unwrap();
    assert_eq!(
        sqlstate(&s, "INSERT INTO item VALUES (4, 'a', 1)").await,
        "23505"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT indexname FROM pg_indexes WHERE tablename = 'item' ORDER BY 1"
        )
        .await,
        "item_code_key;item_pkey"
    );
    // CHECK: refused while a row breaks it, then enforced.
    assert_eq!(
        sqlstate(
            &s,
            "ALTER TABLE item ADD CONSTRAINT positive CHECK (qty > 0)"
        )
        .await,
        "23514"
    );
    s.batch_execute("UPDATE item SET qty = 1 WHERE id = 2; ALTER TABLE item ADD CONSTRAINT positive CHECK (qty > 0)")
        .await
        .unwrap();
    assert_eq!(
        sqlstate(&s, "UPDATE item SET qty = -1 WHERE id = 1").await,
        "23514"
    );
    assert_eq!(
        sqlstate(
            &s,
            "ALTER TABLE item ADD CONSTRAINT positive CHECK (qty < 100)"
        )
        .await,
        "42710"
    );
    // Several operations in one statement, in order.
    s.batch_execute(
        "ALTER TABLE item ADD COLUMN note TEXT DEFAULT 'n', ALTER COLUMN qty SET DEFAULT 1, DROP COLUMN code",
    )
    .await
    .unwrap();
    s.batch_execute("INSERT INTO item (id) VALUES (10)")
        .await
        .unwrap();
    assert_eq!(
        flat(&s, "SELECT * FROM item ORDER BY id").await,
        "1|5|n;2|1|n;3|7|n;10|1|n"
    );
    assert_eq!(
        sqlstate(&s, "ALTER TABLE item RENAME TO other, ADD COLUMN x INT").await,
        "42601"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_table_adds_foreign_keys_to_tables_with_rows() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    s.batch_execute(
        "CREATE TABLE author (id INT PRIMARY KEY, name TEXT);
         CREATE TABLE book (id INT PRIMARY KEY, author_id INT, title TEXT);
         INSERT INTO author VALUES (1, 'ann'), (2, 'bob');
         INSERT INTO book VALUES (10, 1, 'x'), (11, 3, 'orphan'), (12, NULL, 'anon');",
    )
    .await
    .unwrap();
    // A row without its parent refuses the constraint, and leaves nothing.
    assert_eq!(
        sqlstate(&s, "ALTER TABLE book ADD CONSTRAINT book_author_fk FOREIGN KEY (author_id) REFERENCES author (id)").await,
        "23503"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'book'"
        )
        .await,
        "1"
    );
    s.batch_execute(
        "DELETE FROM book WHERE id = 11;
         ALTER TABLE book ADD CONSTRAINT book_author_fk FOREIGN KEY (author_id) REFERENCES author (id) ON DELETE CASCADE;",
    )
    .await
    .unwrap();
    // Enforced both ways from now on, through the index it built.
    assert_eq!(
        sqlstate(&s, "INSERT INTO book VALUES (13, 9, 'y')").await,
        "23503"
    );
    s.batch_execute("INSERT INTO book VALUES (13, 2, 'y'); DELETE FROM author WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(flat(&s, "SELECT id FROM book ORDER BY id").await, "12;13");
    assert_eq!(
        sqlstate(&s, "ALTER TABLE book ADD CONSTRAINT book_author_fk FOREIGN KEY (author_id) REFERENCES author (id)").await,
        "42710"
    );
    assert_eq!(
        sqlstate(
            &s,
            "ALTER TABLE book ADD FOREIGN KEY (nope) REFERENCES author (id)"
        )
        .await,
        "42703"
    );
    // The constraint shows up where clients look for it.
    assert!(flat(&s, "SHOW CREATE TABLE book")
        .await
        .contains("book_author_fk"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_analyze_runs_the_statement() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    s.batch_execute(
        "CREATE TABLE ea (id INT PRIMARY KEY, v INT);
         INSERT INTO ea SELECT x, x * 10 FROM generate_series(1, 50) AS x;",
    )
    .await
    .unwrap();
    let plan = flat(
        &s,
        "EXPLAIN ANALYZE SELECT * FROM ea WHERE id BETWEEN 5 AND 9",
    )
    .await;
    assert!(plan.contains("rows returned: 5"), "{plan}");
    assert!(plan.contains("Execution Time: "), "{plan}");
    assert!(plan.contains("/5 - /9") || plan.contains("ea@"), "{plan}");
    // As in PostgreSQL, an analyzed UPDATE happens.
    let plan = flat(&s, "EXPLAIN ANALYZE UPDATE ea SET v = 0 WHERE id <= 3").await;
    assert!(plan.contains("rows affected: 3 (update)"), "{plan}");
    assert_eq!(flat(&s, "SELECT count(*) FROM ea WHERE v = 0").await, "3");
    s.batch_execute("BEGIN READ ONLY").await.unwrap();
    assert_eq!(
        sqlstate(&s, "EXPLAIN ANALYZE DELETE FROM ea").await,
        "25006"
    );
    s.batch_execute("ROLLBACK").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_setting_reads_what_show_reads() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    assert_eq!(
        flat(&s, "SELECT current_setting('server_version_num'), current_setting('TimeZone'), current_setting('transaction_isolation')").await,
        "150000|UTC|serializable"
    );
    s.batch_execute("SET application_name = 'tool'; SET myapp.tenant = '42'")
        .await
        .unwrap();
    assert_eq!(
        flat(
            &s,
            "SELECT current_setting('application_name'), current_setting('myapp.tenant')::int + 1"
        )
        .await,
        "tool|43"
    );
    s.batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        .await
        .unwrap();
    assert_eq!(
        flat(&s, "SELECT current_setting('transaction_isolation')").await,
        "read committed"
    );
    s.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        flat(&s, "SELECT current_setting('no.such', true) IS NULL").await,
        "t"
    );
    assert_eq!(
        sqlstate(&s, "SELECT current_setting('no_such')").await,
        "42704"
    );
    // Prepared, then the setting changes: the new value is read.
    let stmt = s
        .prepare("SELECT current_setting('myapp.tenant')")
        .await
        .unwrap();
    s.batch_execute("SET myapp.tenant = '7'").await.unwrap();
    let row = s.query_one(&stmt, &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_sequences_answer_nextval_currval_and_setval() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    s.batch_execute("CREATE TABLE users (id SERIAL PRIMARY KEY, name TEXT)")
        .await
        .unwrap();
    // A bulk load with explicit ids, then the sequence is moved past them
    // as migration scripts do; the next SERIAL value does not collide.
    s.batch_execute("INSERT INTO users VALUES (1, 'a'), (2, 'b'), (50, 'c')")
        .await
        .unwrap();
    assert_eq!(
        flat(
            &s,
            "SELECT setval(pg_get_serial_sequence('users', 'id'), coalesce(max(id), 1)) FROM users"
        )
        .await,
        "50"
    );
    s.batch_execute("INSERT INTO users (name) VALUES ('d')")
        .await
        .unwrap();
    assert_eq!(flat(&s, "SELECT max(id) FROM users").await, "51");
    assert_eq!(flat(&s, "SELECT nextval('users_id_seq')").await, "52");
    assert_eq!(
        flat(&s, "SELECT currval('public.users_id_seq'::regclass) AS c").await,
        "52"
    );
    assert_eq!(
        flat(&s, "SELECT setval('users_id_seq', 100, false)").await,
        "100"
    );
    assert_eq!(flat(&s, "SELECT nextval('users_id_seq')").await, "100");
    assert_eq!(sqlstate(&s, "SELECT nextval('nope_seq')").await, "42P01");
    assert_eq!(
        sqlstate(&s, "SELECT setval('users_id_seq', 0)").await,
        "22003"
    );
    let other = connect(c.addrs[1]).await;
    assert_eq!(
        sqlstate(&other, "SELECT currval('users_id_seq')").await,
        "55000"
    );
    assert_eq!(flat(&other, "SELECT nextval('users_id_seq')").await, "101");
    // Drivers send it prepared (extended protocol).
    let row = other
        .query_one("SELECT nextval('users_id_seq') AS id", &[])
        .await
        .unwrap();
    assert_eq!(row.columns()[0].name(), "id");
    assert_eq!(row.get::<_, i64>(0), 102);
}

/// CREATE SEQUENCE with PostgreSQL's options; nextval, currval, setval
/// and lastval anywhere in an expression (DEFAULT, VALUES, SET, a
/// projection over many rows); bounds, cycles, DROP SEQUENCE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_sequences_work_in_any_expression() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    s.batch_execute(
        "CREATE SEQUENCE order_no START WITH 1000 INCREMENT BY 10;
         CREATE TABLE orders (id BIGINT PRIMARY KEY DEFAULT nextval('order_no'), item TEXT);
         INSERT INTO orders (item) VALUES ('a'), ('b');
         INSERT INTO orders VALUES (nextval('order_no'::regclass) + 1, 'c');",
    )
    .await
    .unwrap();
    assert_eq!(
        flat(&s, "SELECT id, item FROM orders ORDER BY id").await,
        "1000|a;1010|b;1021|c"
    );
    assert_eq!(
        flat(&s, "SELECT currval('order_no'), lastval()").await,
        "1020|1020"
    );
    // One value per row, in a projection and in UPDATE ... SET.
    assert_eq!(
        flat(&s, "SELECT count(DISTINCT n) FROM (SELECT nextval('order_no') AS n FROM generate_series(1, 5)) v").await,
        "5"
    );
    s.batch_execute("UPDATE orders SET item = item || nextval('order_no')::text")
        .await
        .unwrap();
    assert_eq!(
        flat(&s, "SELECT item FROM orders ORDER BY item").await,
        "a1080;b1090;c1100"
    );
    // Another session continues the sequence and has no currval yet.
    let other = connect(c.addrs[1]).await;
    assert_eq!(
        sqlstate(&other, "SELECT currval('order_no')").await,
        "55000"
    );
    assert_eq!(sqlstate(&other, "SELECT lastval()").await, "55000");
    assert_eq!(flat(&other, "SELECT nextval('ORDER_NO')").await, "1110");
    assert_eq!(
        flat(&other, "SELECT setval('order_no', 5, false)").await,
        "5"
    );
    assert_eq!(flat(&s, "SELECT nextval('order_no')").await, "5");
    // Bounds: a descending sequence that stops, one that cycles.
    s.batch_execute(
        "CREATE SEQUENCE down INCREMENT -1 MINVALUE 1 MAXVALUE 2;
         CREATE SEQUENCE ring AS smallint MINVALUE 1 MAXVALUE 2 CYCLE;",
    )
    .await
    .unwrap();
    assert_eq!(
        flat(&s, "SELECT nextval('down'), nextval('down')").await,
        "2|1"
    );
    assert_eq!(sqlstate(&s, "SELECT nextval('down')").await, "2200H");
    assert_eq!(
        flat(
            &s,
            "SELECT nextval('ring'), nextval('ring'), nextval('ring')"
        )
        .await,
        "1|2|1"
    );
    assert_eq!(sqlstate(&s, "SELECT setval('ring', 3)").await, "22003");
    // Names: taken, bad options, IF [NOT] EXISTS, a schema.
    assert_eq!(sqlstate(&s, "CREATE SEQUENCE orders").await, "42P07");
    assert_eq!(sqlstate(&s, "CREATE SEQUENCE ring").await, "42P07");
    s.batch_execute("CREATE SEQUENCE IF NOT EXISTS ring")
        .await
        .unwrap();
    assert_eq!(sqlstate(&s, "CREATE SEQUENCE z INCREMENT 0").await, "22023");
    s.batch_execute("CREATE SCHEMA app; CREATE SEQUENCE app.ids START 7")
        .await
        .unwrap();
    assert_eq!(flat(&s, "SELECT nextval('app.ids')").await, "7");
    assert_eq!(sqlstate(&s, "SELECT nextval('ids')").await, "42P01");
    s.batch_execute("SET search_path = app, public")
        .await
        .unwrap();
    assert_eq!(flat(&s, "SELECT nextval('ids')").await, "8");
    assert_eq!(
        flat(&s, "SELECT sequence_schema, sequence_name, start_value, increment, cycle_option FROM information_schema.sequences ORDER BY 2").await,
        "public|down|2|-1|NO;app|ids|7|1|NO;public|order_no|1000|10|NO;public|ring|1|1|YES"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT relname FROM pg_catalog.pg_class WHERE relkind = 'S' ORDER BY 1"
        )
        .await,
        "down;ids;order_no;ring"
    );
    s.batch_execute("DROP SEQUENCE ids, ring; DROP SEQUENCE IF EXISTS nope")
        .await
        .unwrap();
    assert_eq!(sqlstate(&s, "SELECT nextval('ring')").await, "42P01");
    assert_eq!(sqlstate(&s, "DROP SEQUENCE ring").await, "42P01");
    // Recreated, it starts over.
    s.batch_execute("CREATE SEQUENCE ring").await.unwrap();
    assert_eq!(flat(&s, "SELECT nextval('ring')").await, "1");
}

/// json_agg / jsonb_agg gather values (NULLs as null, in ORDER BY order);
/// OVERLAY replaces a substring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_aggregates_and_overlay() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    assert_eq!(
        flat(
            &s,
            "SELECT json_agg(x), jsonb_agg(x ORDER BY x DESC) FROM generate_series(1, 3) x"
        )
        .await,
        "[1, 2, 3]|[3, 2, 1]"
    );
    assert_eq!(
        flat(&s, "SELECT json_agg(v), jsonb_agg(DISTINCT b) FROM (VALUES ('a', true), (NULL, true)) t(v, b)").await,
        "[\"a\", null]|[true]"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT jsonb_agg(x) IS NULL, json_agg(x) IS NULL FROM generate_series(1, 0) x"
        )
        .await,
        "t|t"
    );
    assert_eq!(
        flat(&s, "SELECT k % 2, jsonb_agg(jsonb_build_object('k', k)) FROM generate_series(1, 3) k GROUP BY 1 ORDER BY 1").await,
        "0|[{\"k\": 2}];1|[{\"k\": 1}, {\"k\": 3}]"
    );
    assert_eq!(
        flat(&s, "SELECT overlay('Txxxxas' placing 'hom' from 2 for 4), overlay('abc' placing 'XY' from 2), overlay('abc' placing 'Z' from 9)").await,
        "Thomas|aXY|abcZ"
    );
    assert_eq!(
        sqlstate(&s, "SELECT overlay('abc' placing 'x' from 0)").await,
        "22011"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT json_object_agg(k, v) FROM (VALUES ('a', 1), ('b', 2)) t(k, v)"
        )
        .await,
        "{ \"a\" : 1, \"b\" : 2 }"
    );
    assert_eq!(
        flat(&s, "SELECT jsonb_object_agg(k, v), json_object_agg(x, x * 2) FROM (VALUES ('b', 'x', 1), ('a', NULL, 2)) t(k, v, x)").await,
        "{\"a\": null, \"b\": \"x\"}|{ \"1\" : 2, \"2\" : 4 }"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT jsonb_object_agg(x, x) IS NULL FROM generate_series(1, 0) x"
        )
        .await,
        "t"
    );
    assert_eq!(
        sqlstate(
            &s,
            "SELECT json_object_agg(k, 1) FROM (VALUES ('a'), (NULL)) t(k)"
        )
        .await,
        "22004"
    );
}

/// GROUP BY ROLLUP, CUBE and GROUPING SETS (alone or after plain
/// groups), with GROUPING() telling which groups a row leaves out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollup_cube_and_grouping_sets() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    s.batch_execute(
        "CREATE TABLE sales (id INT PRIMARY KEY, a TEXT, b INT, v INT);
         INSERT INTO sales VALUES (1, 'x', 1, 10), (2, 'x', 2, 20), (3, 'y', 1, 30);
         CREATE TABLE nosales (a TEXT, v INT);",
    )
    .await
    .unwrap();
    assert_eq!(
        flat(
            &s,
            "SELECT a, b, sum(v), grouping(a, b) FROM sales GROUP BY ROLLUP (a, b) ORDER BY a, b"
        )
        .await,
        "x|1|10|0;x|2|20|0;x|NULL|30|1;y|1|30|0;y|NULL|30|1;NULL|NULL|60|3"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT a, b, count(*) FROM sales GROUP BY CUBE (a, b) ORDER BY a, b"
        )
        .await,
        "x|1|1;x|2|1;x|NULL|2;y|1|1;y|NULL|1;NULL|1|2;NULL|2|1;NULL|NULL|3"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT a, b, sum(v) FROM sales GROUP BY GROUPING SETS ((a), (b), ()) ORDER BY a, b"
        )
        .await,
        "x|NULL|30;y|NULL|30;NULL|1|40;NULL|2|20;NULL|NULL|60"
    );
    assert_eq!(
        flat(
            &s,
            "SELECT a, b, sum(v) FROM sales GROUP BY a, ROLLUP (b) ORDER BY a, b"
        )
        .await,
        "x|1|10;x|2|20;x|NULL|30;y|1|30;y|NULL|30"
    );
    assert_eq!(
        flat(&s, "SELECT CASE WHEN grouping(a) = 1 THEN 'total' ELSE a END, sum(v) FROM sales GROUP BY ROLLUP (a) HAVING sum(v) > 30").await,
        "total|60"
    );
    // Over no rows the empty set still gives its one row.
    assert_eq!(
        flat(
            &s,
            "SELECT a, count(*), sum(v) FROM nosales GROUP BY ROLLUP (a)"
        )
        .await,
        "NULL|0|NULL"
    );
    assert_eq!(
        sqlstate(&s, "SELECT grouping(v) FROM sales GROUP BY ROLLUP (a)").await,
        "42803"
    );
    assert_eq!(sqlstate(&s, "SELECT grouping(a) FROM sales").await, "42803");
}

/// LATERAL subqueries see the columns of the FROM items before them:
/// comma, CROSS JOIN, [INNER] JOIN ... ON and LEFT JOIN ... ON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lateral_subqueries() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    s.batch_execute(
        "CREATE TABLE authors (id INT PRIMARY KEY, name TEXT);
         CREATE TABLE posts (id INT PRIMARY KEY, author INT, score INT);
         INSERT INTO authors VALUES (1, 'ann'), (2, 'bob'), (3, 'cy');
         INSERT INTO posts VALUES (10, 1, 5), (11, 1, 9), (12, 1, 7), (13, 2, 3);",
    )
    .await
    .unwrap();
    // The top two posts of each author.
    assert_eq!(
        flat(&s, "SELECT a.name, p.id FROM authors a, LATERAL (SELECT id FROM posts WHERE author = a.id ORDER BY score DESC LIMIT 2) p ORDER BY 1, 2").await,
        "ann|11;ann|12;bob|13"
    );
    assert_eq!(
        flat(&s, "SELECT a.name, p.n FROM authors a LEFT JOIN LATERAL (SELECT count(*) AS n, max(score) AS m FROM posts WHERE author = a.id) p ON p.m > 4 ORDER BY 1").await,
        "ann|3;bob|NULL;cy|NULL"
    );
    assert_eq!(
        flat(&s, "SELECT a.id, x.double FROM authors a CROSS JOIN LATERAL (SELECT a.id * 2 AS double) x WHERE a.id < 3 ORDER BY 1").await,
        "1|2;2|4"
    );
    assert_eq!(
        flat(&s, "SELECT a.name, t.total FROM authors a JOIN LATERAL (SELECT sum(score) AS total FROM posts WHERE author = a.id) t ON t.total IS NOT NULL ORDER BY 1").await,
        "ann|21;bob|3"
    );
    // Without LATERAL the outer column is not in scope.
    assert_eq!(
        sqlstate(
            &s,
            "SELECT * FROM authors a, (SELECT id FROM posts WHERE author = a.id) p"
        )
        .await,
        "42P01"
    );
}

/// The ordered-set aggregates percentile_cont, percentile_disc and mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_set_aggregates() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    assert_eq!(
        flat(&s, "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x), percentile_disc(0.5) WITHIN GROUP (ORDER BY x), percentile_disc(0.25) WITHIN GROUP (ORDER BY x DESC) FROM generate_series(1, 4) x").await,
        "2.5|2|4"
    );
    assert_eq!(
        flat(&s, "SELECT percentile_cont(0.25) WITHIN GROUP (ORDER BY v) FROM (VALUES (40), (10), (NULL), (30), (20)) t(v)").await,
        "17.5"
    );
    assert_eq!(
        flat(&s, "SELECT g, mode() WITHIN GROUP (ORDER BY v) FROM (VALUES (1, 'b'), (1, 'a'), (1, 'b'), (2, 'c'), (2, 'a')) t(g, v) GROUP BY g ORDER BY g").await,
        "1|b;2|a"
    );
    assert_eq!(
        flat(&s, "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) IS NULL, mode() WITHIN GROUP (ORDER BY x) IS NULL FROM generate_series(1, 0) x").await,
        "t|t"
    );
    assert_eq!(
        sqlstate(
            &s,
            "SELECT percentile_cont(1.5) WITHIN GROUP (ORDER BY x) FROM generate_series(1, 3) x"
        )
        .await,
        "22003"
    );
    assert_eq!(
        sqlstate(
            &s,
            "SELECT sum(x) WITHIN GROUP (ORDER BY x) FROM generate_series(1, 3) x"
        )
        .await,
        "42809"
    );
}

/// `TABLE name` is `SELECT * FROM name`; pg_backend_pid() is the
/// session's process id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_statement_and_backend_pid() {
    let c = cluster().await;
    let s = connect(c.addrs[0]).await;
    s.batch_execute(
        "CREATE TABLE tt (k INT PRIMARY KEY, v TEXT); INSERT INTO tt VALUES (2, 'b'), (1, 'a')",
    )
    .await
    .unwrap();
    assert_eq!(flat(&s, "TABLE tt").await, "1|a;2|b");
    assert_eq!(flat(&s, "table tt; -- the table\n").await, "1|a;2|b");
    assert_eq!(sqlstate(&s, "TABLE nope").await, "42P01");
    assert_eq!(sqlstate(&s, "TABLE").await, "42601");
    let pid = flat(&s, "SELECT pg_backend_pid()").await;
    assert_eq!(flat(&s, "SELECT pg_backend_pid()").await, pid);
    let other = connect(c.addrs[0]).await;
    assert_ne!(flat(&other, "SELECT pg_backend_pid()").await, pid);
}

/// `JOIN ... USING (cols)` and `NATURAL JOIN` join on the named (or all
/// shared) columns and show each of them once, first: the left side's
/// value for inner and left joins, the right side's for right joins, the
/// one that is not NULL for full joins. The sides' own columns stay
/// reachable by qualified name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn using_and_natural_joins_merge_their_columns() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    t.batch_execute(
        "CREATE TABLE ua (id INT PRIMARY KEY, x TEXT);
         CREATE TABLE ub (y TEXT, id INT PRIMARY KEY);
         INSERT INTO ua VALUES (1, 'a1'), (2, 'a2'), (3, NULL);
         INSERT INTO ub VALUES ('b1', 1), ('b3', 3), ('b4', 4);",
    )
    .await
    .unwrap();
    let cases = [
        (
            "SELECT * FROM ua JOIN ub USING (id) ORDER BY id",
            "1|a1|b1;3|NULL|b3",
        ),
        ("SELECT id FROM ua JOIN ub USING (id) WHERE id > 1", "3"),
        (
            "SELECT * FROM ua NATURAL JOIN ub ORDER BY 1",
            "1|a1|b1;3|NULL|b3",
        ),
        (
            "SELECT id, ua.id, ub.id FROM ua LEFT JOIN ub USING (id) ORDER BY 1",
            "1|1|1;2|2|NULL;3|3|3",
        ),
        (
            "SELECT id, ua.id, ub.id FROM ua RIGHT JOIN ub USING (id) ORDER BY 1",
            "1|1|1;3|3|3;4|NULL|4",
        ),
        (
            "SELECT id, x, y FROM ua FULL JOIN ub USING (id) ORDER BY id",
            "1|a1|b1;2|a2|NULL;3|NULL|b3;4|NULL|b4",
        ),
        (
            "SELECT ub.* FROM ua JOIN ub USING (id) ORDER BY ub.id",
            "b1|1;b3|3",
        ),
        ("SELECT count(*) FROM ua NATURAL LEFT JOIN ub", "3"),
        (
            "SELECT id FROM ua JOIN ub USING (id) JOIN ua AS u2 USING (id) ORDER BY 1",
            "1;3",
        ),
        ("SELECT count(*) FROM ua NATURAL JOIN (SELECT 1 AS zz) s", "3"),
        ("SELECT id, count(*) FROM ua JOIN ub USING (id) GROUP BY id ORDER BY id", "1|1;3|1"),
        ("SELECT * FROM (SELECT * FROM ua JOIN ub USING (id)) s WHERE s.id = 3", "3|NULL|b3"),
        ("SELECT id FROM ua JOIN ub USING (id) ORDER BY ua.x NULLS FIRST", "3;1"),
        ("SELECT id FROM ua WHERE EXISTS (SELECT 1 FROM ub JOIN ua AS u3 USING (id) WHERE ub.id = ua.id) ORDER BY id", "1;3"),
    ];
    for (q, want) in cases {
        assert_eq!(flat(&t, q).await, want, "{q}");
    }
    let stmt = t
        .prepare("SELECT * FROM ua JOIN ub USING (id)")
        .await
        .unwrap();
    let names: Vec<&str> = stmt.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["id", "x", "y"]);
    assert_eq!(
        sqlstate(&t, "SELECT * FROM ua JOIN ub USING (nope)").await,
        "42703"
    );
    assert_eq!(
        sqlstate(&t, "SELECT * FROM ua JOIN ub USING (id, id)").await,
        "42701"
    );
    assert_eq!(
        sqlstate(&t, "SELECT ua.nope FROM ua JOIN ub USING (id)").await,
        "42703"
    );
}

/// `INSERT ... DEFAULT VALUES`, `DELETE ... USING` (rows matched by some
/// row of the other tables) and `RETURNING alias.*` / `alias.col`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_values_delete_using_and_qualified_returning() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    t.batch_execute(
        "CREATE TABLE dv (id SERIAL PRIMARY KEY, t TEXT DEFAULT 'd', n INT);
         CREATE TABLE orders (id INT PRIMARY KEY, customer INT, total INT);
         CREATE TABLE banned (customer INT PRIMARY KEY, why TEXT);
         INSERT INTO orders VALUES (1, 10, 5), (2, 20, 7), (3, 10, 9), (4, 30, 1);
         INSERT INTO banned VALUES (10, 'fraud'), (30, 'spam');",
    )
    .await
    .unwrap();
    assert_eq!(
        flat(&t, "INSERT INTO dv DEFAULT VALUES RETURNING *").await,
        "1|d|NULL"
    );
    assert_eq!(
        flat(&t, "INSERT INTO dv AS x DEFAULT VALUES RETURNING x.id, x.*").await,
        "2|2|d|NULL"
    );
    assert_eq!(
        flat(
            &t,
            "DELETE FROM orders o USING banned b WHERE o.customer = b.customer AND b.why = 'fraud' RETURNING o.id"
        )
        .await,
        "1;3"
    );
    assert_eq!(flat(&t, "SELECT id FROM orders ORDER BY id").await, "2;4");
    assert_eq!(
        flat(
            &t,
            "UPDATE orders AS o SET total = total + 1 WHERE id = 2 RETURNING o.*"
        )
        .await,
        "2|20|8"
    );
    assert_eq!(
        flat(&t, "DELETE FROM orders USING banned RETURNING orders.id").await,
        "2;4"
    );
    assert_eq!(
        sqlstate(&t, "DELETE FROM orders USING nope WHERE true").await,
        "42P01"
    );
    assert_eq!(
        sqlstate(&t, "DELETE FROM orders o RETURNING other.*").await,
        "42P01"
    );
}

/// first_value / last_value / nth_value read the row's frame (the default
/// frame ends at the current row's last peer); ntile, percent_rank and
/// cume_dist follow PostgreSQL's definitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn value_and_distribution_window_functions() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    t.batch_execute(
        "CREATE TABLE w (id INT PRIMARY KEY, g TEXT, v INT);
         INSERT INTO w VALUES (1, 'a', 10), (2, 'a', 20), (3, 'a', 20), (4, 'a', 40),
                              (5, 'b', 5), (6, 'b', 6), (7, 'c', 7);",
    )
    .await
    .unwrap();
    let cases = [
        (
            "SELECT id, first_value(id) OVER (PARTITION BY g ORDER BY v), last_value(id) OVER (PARTITION BY g ORDER BY v, id) FROM w ORDER BY id",
            "1|1|1;2|1|2;3|1|3;4|1|4;5|5|5;6|5|6;7|7|7",
        ),
        (
            "SELECT id, last_value(v) OVER (PARTITION BY g ORDER BY v) FROM w WHERE g = 'a' ORDER BY id",
            "1|10;2|20;3|20;4|40",
        ),
        (
            "SELECT id, last_value(id) OVER (PARTITION BY g ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING), nth_value(id, 2) OVER (PARTITION BY g ORDER BY id) FROM w ORDER BY id",
            "1|4|NULL;2|4|2;3|4|2;4|4|2;5|6|NULL;6|6|6;7|7|NULL",
        ),
        (
            "SELECT id, ntile(3) OVER (ORDER BY id) FROM w ORDER BY id",
            "1|1;2|1;3|1;4|2;5|2;6|3;7|3",
        ),
        (
            "SELECT id, ntile(10) OVER (PARTITION BY g ORDER BY id) FROM w WHERE g <> 'a' ORDER BY id",
            "5|1;6|2;7|1",
        ),
        (
            "SELECT id, percent_rank() OVER (PARTITION BY g ORDER BY v), cume_dist() OVER (PARTITION BY g ORDER BY v) FROM w WHERE g IN ('a', 'c') ORDER BY id",
            "1|0|0.25;2|0.3333333333333333|0.75;3|0.3333333333333333|0.75;4|1|1;7|0|1",
        ),
    ];
    for (q, want) in cases {
        assert_eq!(flat(&t, q).await, want, "{q}");
    }
    assert_eq!(
        sqlstate(&t, "SELECT nth_value(v, 0) OVER () FROM w").await,
        "22016"
    );
    assert_eq!(
        sqlstate(&t, "SELECT ntile(0) OVER () FROM w").await,
        "22014"
    );
    assert_eq!(
        sqlstate(&t, "SELECT first_value(v, 1) OVER () FROM w").await,
        "42883"
    );
}

/// SQL-level `PREPARE` / `EXECUTE` / `DEALLOCATE [ALL]` and `DISCARD ALL`
/// (what connection poolers send between clients).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_prepare_execute_deallocate_and_discard() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    t.batch_execute(
        "CREATE TABLE pe (id INT PRIMARY KEY, name TEXT);
         INSERT INTO pe VALUES (1, 'one'), (2, 'two');
         PREPARE get_one (int) AS SELECT name FROM pe WHERE id = $1;
         PREPARE put_one AS INSERT INTO pe VALUES ($1, $2);",
    )
    .await
    .unwrap();
    assert_eq!(flat(&t, "EXECUTE get_one(2)").await, "two");
    assert_eq!(flat(&t, "EXECUTE get_one(1 + 0)").await, "one");
    t.batch_execute("EXECUTE put_one(3, 'three')")
        .await
        .unwrap();
    assert_eq!(flat(&t, "EXECUTE get_one(3)").await, "three");
    assert_eq!(sqlstate(&t, "EXECUTE nope(1)").await, "26000");
    assert_eq!(sqlstate(&t, "EXECUTE get_one(1, 2)").await, "42601");
    assert_eq!(sqlstate(&t, "EXECUTE put_one(3, 'again')").await, "23505");
    assert_eq!(sqlstate(&t, "PREPARE get_one AS SELECT 1").await, "42P05");
    t.batch_execute("DEALLOCATE get_one").await.unwrap();
    assert_eq!(sqlstate(&t, "EXECUTE get_one(1)").await, "26000");
    assert_eq!(sqlstate(&t, "DEALLOCATE get_one").await, "26000");
    t.batch_execute("PREPARE again AS SELECT 1; DEALLOCATE ALL")
        .await
        .unwrap();
    assert_eq!(sqlstate(&t, "EXECUTE again").await, "26000");
    // DISCARD ALL: prepared statements and settings go; not in a block.
    t.batch_execute("PREPARE p AS SELECT 1; SET application_name = 'pooled'")
        .await
        .unwrap();
    assert_eq!(flat(&t, "SHOW application_name").await, "pooled");
    t.batch_execute("DISCARD ALL").await.unwrap();
    assert_eq!(sqlstate(&t, "EXECUTE p").await, "26000");
    assert_eq!(flat(&t, "SHOW application_name").await, "");
    t.batch_execute("BEGIN").await.unwrap();
    assert_eq!(sqlstate(&t, "DISCARD ALL").await, "25001");
    t.batch_execute("ROLLBACK").await.unwrap();
}

/// Details checked against PostgreSQL 15 with the same statements: the
/// names of unaliased columns, casts to text, 32-bit integer and real
/// arithmetic, literals beyond numeric's range, date field errors and
/// COLLATE "C".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_details_of_names_casts_and_ranges() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    t.batch_execute(
        "CREATE TABLE d (name TEXT PRIMARY KEY, floor INT); INSERT INTO d VALUES ('b', 1), ('a', 2)",
    )
    .await
    .unwrap();
    let names = |sql: &'static str| {
        let t = &t;
        async move {
            let st = t.prepare(sql).await.unwrap();
            let names: Vec<&str> = st.columns().iter().map(|c| c.name()).collect();
            names.join(",")
        }
    };
    assert_eq!(
        names("SELECT (SELECT floor FROM d LIMIT 1), (SELECT 1 AS one UNION SELECT 2)").await,
        "floor,one"
    );
    assert_eq!(
        names("SELECT true::text, 1::int::text, name::varchar, EXISTS (SELECT 1), NOT EXISTS (SELECT 1) FROM d").await,
        "text,text,name,exists,?column?"
    );
    assert_eq!(
        flat(
            &t,
            "SELECT true::text, false::varchar, 'x' || true, 1::bool::text"
        )
        .await,
        "true|false|xtrue|true"
    );
    // An explicit cast to a length cuts; an assignment refuses.
    assert_eq!(
        flat(
            &t,
            "SELECT 'abcdef'::varchar(2), 'abc'::char(2), 'ab'::char(4) || '|', name::varchar(1) FROM d ORDER BY 1 LIMIT 1"
        )
        .await,
        "ab|ab|ab||a"
    );
    assert_eq!(
        sqlstate(
            &t,
            "CREATE TABLE vc (v VARCHAR(2)); INSERT INTO vc VALUES ('abc')"
        )
        .await,
        "22001"
    );
    assert_eq!(sqlstate(&t, "SELECT 2147483647::int4 + 1").await, "22003");
    assert_eq!(
        sqlstate(&t, "SELECT floor * 2000000000 FROM d").await,
        "22003"
    );
    assert_eq!(sqlstate(&t, "SELECT 32767::int2 + 1::int2").await, "22003");
    assert_eq!(
        flat(&t, "SELECT 2147483647::int4 + 1::int8").await,
        "2147483648"
    );
    assert_eq!(flat(&t, "SELECT 0.1::float4 + 0.2::float4").await, "0.3");
    assert_eq!(flat(&t, "SELECT 1e300::float8 * 10").await, "1e+301");
    assert_eq!(sqlstate(&t, "SELECT date '2020-02-30'").await, "22008");
    assert_eq!(sqlstate(&t, "SELECT date '2020-0x-01'").await, "22007");
    assert_eq!(
        flat(&t, "SELECT name FROM d ORDER BY name COLLATE \"C\"").await,
        "a;b"
    );
    assert_eq!(
        sqlstate(&t, "SELECT name FROM d ORDER BY name COLLATE \"xx\"").await,
        "42704"
    );
    // SELECT ... INTO creates the table (it was a plain SELECT).
    t.batch_execute("SELECT name, floor * 10 AS f INTO d2 FROM d WHERE floor > 1")
        .await
        .unwrap();
    assert_eq!(flat(&t, "SELECT name, f FROM d2").await, "a|20");
    assert_eq!(sqlstate(&t, "SELECT 1 INTO x1, x2").await, "0A000");
    // UNION branches: an untyped NULL or string literal takes the other
    // branch's type.
    assert_eq!(
        flat(&t, "SELECT 1 UNION SELECT NULL UNION SELECT '2' ORDER BY 1").await,
        "1;2;NULL"
    );
    assert_eq!(
        names("SELECT floor FROM d UNION ALL SELECT NULL").await,
        "floor"
    );
    assert_eq!(sqlstate(&t, "SELECT 1 UNION SELECT 'x'").await, "22P02");
    // LIKE ... ESCAPE and U& strings.
    assert_eq!(
        flat(
            &t,
            "SELECT 'a%c' LIKE 'a#%c' ESCAPE '#', 'abc' LIKE 'a#%c' ESCAPE '#', \
             'a\\c' LIKE 'a\\c' ESCAPE '', 'a_c' ILIKE 'A!_C' ESCAPE '!', U&'\\0041'"
        )
        .await,
        "t|f|t|t|A"
    );
    assert_eq!(
        sqlstate(&t, "SELECT 'a' LIKE 'a' ESCAPE 'xy'").await,
        "22025"
    );
    // CHAR(n) used as text loses its padding; output, octet_length and
    // concat keep it.
    t.batch_execute(
        "CREATE TABLE ch (id INT PRIMARY KEY, c CHAR(4)); INSERT INTO ch VALUES (1, 'ab')",
    )
    .await
    .unwrap();
    assert_eq!(
        flat(
            &t,
            "SELECT c, length(c), octet_length(c), c || '|', concat(c, '|'), upper(c), \
             c::text || '|', c::varchar || '|', string_agg(c, ',') OVER () FROM ch"
        )
        .await,
        "ab  |2|4|ab||ab  ||AB|ab||ab||ab"
    );
}

/// Row comparisons (keyset pagination), FETCH FIRST, GROUP BY an output
/// alias and named windows, with PostgreSQL's results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_comparisons_fetch_first_group_by_alias_and_named_windows() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    t.batch_execute(
        "CREATE TABLE k (a INT, b INT, c TEXT, PRIMARY KEY (a, b)); \
         INSERT INTO k SELECT x, y, x || '-' || y FROM generate_series(1, 3) x, generate_series(1, 3) y",
    )
    .await
    .unwrap();
    let cases = [
        ("SELECT c FROM k WHERE (a, b) > (2, 2) ORDER BY a, b", "2-3;3-1;3-2;3-3"),
        ("SELECT c FROM k WHERE (a, b) >= (2, 2) AND (a, b) < (3, 2) ORDER BY a, b", "2-2;2-3;3-1"),
        ("SELECT c FROM k WHERE (a, b) <= (1, 2) ORDER BY a, b", "1-1;1-2"),
        ("SELECT c FROM k WHERE (a, b) = (2, 3)", "2-3"),
        ("SELECT c FROM k WHERE (a, b) <> (1, 1) AND a = 1 ORDER BY b", "1-2;1-3"),
        ("SELECT c FROM k WHERE (a, b) IN ((1, 1), (3, 2)) ORDER BY c", "1-1;3-2"),
        ("SELECT c FROM k WHERE (a, b) NOT IN ((1, 1), (3, 2)) AND a = 1 ORDER BY c", "1-2;1-3"),
        ("SELECT (1, NULL) = (1, 2), (1, 2) < (1, NULL), (1, 2) < (2, NULL)", "NULL|NULL|t"),
        ("SELECT c FROM k ORDER BY c FETCH FIRST 2 ROWS ONLY", "1-1;1-2"),
        ("SELECT c FROM k ORDER BY c OFFSET 7 ROWS FETCH NEXT ROW ONLY", "3-2"),
        ("SELECT a * 10 AS t, count(*) FROM k GROUP BY t ORDER BY t", "10|3;20|3;30|3"),
        (
            "SELECT a, b, sum(b) OVER w, row_number() OVER w, rank() OVER v FROM k \
             WINDOW w AS (PARTITION BY a ORDER BY b), v AS (ORDER BY a) ORDER BY a, b LIMIT 4",
            "1|1|1|1|1;1|2|3|2|1;1|3|6|3|1;2|1|1|1|4",
        ),
        (
            "SELECT a, first_value(b) OVER (w ORDER BY b DESC) FROM k WINDOW w AS (PARTITION BY a) ORDER BY a LIMIT 2",
            "1|3;1|3",
        ),
    ];
    for (q, want) in cases {
        assert_eq!(flat(&t, q).await, want, "{q}");
    }
    assert_eq!(sqlstate(&t, "SELECT (1, 2) = (1, 2, 3)").await, "42601");
    // An input column wins over an output alias of the same name: `a`
    // is then not grouped.
    assert_eq!(
        sqlstate(&t, "SELECT a AS b, count(*) FROM k GROUP BY b").await,
        "42803"
    );
    assert_eq!(
        sqlstate(&t, "SELECT c FROM k LIMIT 1 FETCH FIRST 2 ROWS ONLY").await,
        "42601"
    );
    assert_eq!(
        sqlstate(&t, "SELECT sum(a) OVER nosuch FROM k").await,
        "42704"
    );
    assert_eq!(
        sqlstate(
            &t,
            "SELECT sum(a) OVER (w ORDER BY b) FROM k WINDOW w AS (ORDER BY a)"
        )
        .await,
        "42P20"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrays_are_values_columns_keys_and_parameters() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    t.batch_execute(
        "CREATE TABLE arr (id INT PRIMARY KEY, tags TEXT[], nums INT[], f FLOAT8[]); \
         INSERT INTO arr VALUES (1, ARRAY['a','b'], '{1,2,3}', '{1.5,NULL}'), \
           (2, '{}', ARRAY[4], NULL), (3, '{\"c d\",e}', '{}', '{}'); \
         CREATE INDEX ON arr (nums)",
    )
    .await
    .unwrap();
    let cases = [
        (
            "SELECT ARRAY[1,2,3], ARRAY['x','y z',NULL], '{1,2}'::int[]",
            "{1,2,3}|{x,\"y z\",NULL}|{1,2}",
        ),
        ("SELECT (ARRAY[10,20,30])[2], (ARRAY[10,20,30])[2:3], (ARRAY[10,20,30])[5]", "20|{20,30}|NULL"),
        ("SELECT * FROM arr ORDER BY id", "1|{a,b}|{1,2,3}|{1.5,NULL};2|{}|{4}|NULL;3|{\"c d\",e}|{}|{}"),
        (
            "SELECT id, tags[1], array_length(nums, 1), cardinality(nums) FROM arr ORDER BY id",
            "1|a|3|3;2|NULL|1|1;3|c d|NULL|0",
        ),
        ("SELECT id FROM arr WHERE 2 = ANY(nums)", "1"),
        ("SELECT id FROM arr WHERE 'a' = ANY(tags) OR tags @> ARRAY['e'] ORDER BY id", "1;3"),
        ("SELECT id FROM arr WHERE nums && ARRAY[3,4] ORDER BY id", "1;2"),
        ("SELECT id FROM arr WHERE nums <@ '{1,2,3,4}' ORDER BY id", "1;2;3"),
        ("SELECT array_agg(id ORDER BY id DESC) FROM arr", "{3,2,1}"),
        ("SELECT unnest(ARRAY[1,2,3])", "1;2;3"),
        ("SELECT v FROM unnest(ARRAY['p','q']) AS t(v)", "p;q"),
        ("SELECT id, unnest(tags) FROM arr ORDER BY id, 2", "1|a;1|b;3|c d;3|e"),
        ("SELECT ARRAY(SELECT id FROM arr ORDER BY id)", "{1,2,3}"),
        (
            "SELECT array_to_string(ARRAY[1,NULL,3], ',', '*'), string_to_array('a,b,,c', ','), \
             array_append(ARRAY[1], 2), ARRAY[1] || ARRAY[2,3], 0 || ARRAY[1], ARRAY[1,2] || 3",
            "1,*,3|{a,b,\"\",c}|{1,2}|{1,2,3}|{0,1}|{1,2,3}",
        ),
        (
            "SELECT array_position(ARRAY['a','b','c'], 'b'), array_remove(ARRAY[1,2,1], 1), \
             array_replace(ARRAY[1,2,1], 1, 9), array_cat(NULL::int[], ARRAY[1])",
            "2|{2}|{9,2,9}|{1}",
        ),
        ("SELECT ARRAY[1,2] = ARRAY[1,2], ARRAY[1,2] < ARRAY[1,3], ARRAY[1] < ARRAY[1,0]", "t|t|t"),
        (
            "SELECT 1 = ANY('{1,2}'), 3 <> ALL(ARRAY[1,2]), NULL::int = ANY(ARRAY[1]), 1 = ANY(NULL::int[])",
            "t|t|NULL|NULL",
        ),
        ("SELECT '{1,2}'::int[]::text, pg_typeof(ARRAY[1,2])", "{1,2}|integer[]"),
        ("SELECT nums, count(*) FROM arr GROUP BY nums ORDER BY nums", "{}|1;{1,2,3}|1;{4}|1"),
        // The secondary index on an array column serves equality.
        ("SELECT id FROM arr WHERE nums = ARRAY[4]", "2"),
        // Functions in FROM may use the columns of the items before them.
        ("SELECT count(*) FROM arr, unnest(arr.nums) AS x", "4"),
        (
            "SELECT id, x FROM arr CROSS JOIN LATERAL unnest(arr.tags) AS x ORDER BY 1, 2",
            "1|a;1|b;3|c d;3|e",
        ),
        (
            "SELECT to_json(nums), to_jsonb(tags), array_to_json(ARRAY[1.5, NULL]) FROM arr WHERE id = 1",
            "[1,2,3]|[\"a\", \"b\"]|[1.5,null]",
        ),
        (
            "SELECT ARRAY['2024-01-01'::timestamptz]::text, \
             ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid]::text",
            "{\"2024-01-01 00:00:00+00\"}|{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
        ),
        (
            "SELECT data_type, udt_name FROM information_schema.columns \
             WHERE table_name = 'arr' AND column_name = 'tags'",
            "ARRAY|_text",
        ),
    ];
    for (q, want) in cases {
        assert_eq!(flat(&t, q).await, want, "{q}");
    }
    // `= ANY (written array)` is an IN list: point lookups, not a scan.
    let plan = flat(&t, "EXPLAIN SELECT * FROM arr WHERE id = ANY(ARRAY[1, 3])").await;
    assert!(plan.contains("point lookup"), "{plan}");
    assert_eq!(
        flat(
            &t,
            "UPDATE arr SET nums = nums || 99 WHERE id = 1 RETURNING nums"
        )
        .await,
        "{1,2,3,99}"
    );
    assert_eq!(sqlstate(&t, "SELECT '{1,x}'::int[]").await, "22P02");
    assert_eq!(sqlstate(&t, "SELECT '{1,2'::int[]").await, "22P02");
    assert_eq!(sqlstate(&t, "SELECT '{{1},{2}}'::int[]").await, "0A000");
    assert_eq!(sqlstate(&t, "SELECT ARRAY[1,'a']").await, "22P02");
    assert_eq!(sqlstate(&t, "SELECT (ARRAY[1,2])['x']").await, "22P02");
    assert_eq!(sqlstate(&t, "SELECT 1 = ANY(5)").await, "42804");
    assert_eq!(
        sqlstate(&t, "INSERT INTO arr (id, nums) VALUES (9, '{a}')").await,
        "22P02"
    );

    // An array primary key: rows in array order, point lookups by value.
    t.batch_execute(
        "CREATE TABLE arrpk (k INT[] PRIMARY KEY, v TEXT); \
         INSERT INTO arrpk VALUES ('{1,2}', 'a'), ('{1}', 'b'), ('{1,2,0}', 'c'), ('{0,5}', 'd')",
    )
    .await
    .unwrap();
    assert_eq!(flat(&t, "SELECT v FROM arrpk ORDER BY k").await, "d;b;a;c");
    assert_eq!(flat(&t, "SELECT v FROM arrpk WHERE k = '{1,2}'").await, "a");
    assert_eq!(
        sqlstate(&t, "INSERT INTO arrpk VALUES (ARRAY[1,2], 'dup')").await,
        "23505"
    );

    // Parameters and binary results (tokio-postgres sends and reads
    // arrays in the binary format): `= ANY($1)` with a list, as drivers
    // send `IN` lists.
    let ids: Vec<i32> = vec![1, 3, 7];
    let rows = t
        .query(
            "SELECT id, tags FROM arr WHERE id = ANY($1) ORDER BY id",
            &[&ids],
        )
        .await
        .unwrap();
    let got: Vec<(i32, Vec<Option<String>>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        [
            (1, vec![Some("a".to_string()), Some("b".to_string())]),
            (3, vec![Some("c d".to_string()), Some("e".to_string())])
        ]
    );
    let tags: Vec<Option<&str>> = vec![Some("x"), None, Some("y \"z\"")];
    t.execute("INSERT INTO arr (id, tags) VALUES (5, $1)", &[&tags])
        .await
        .unwrap();
    assert_eq!(
        flat(&t, "SELECT tags FROM arr WHERE id = 5").await,
        "{x,NULL,\"y \\\"z\\\"\"}"
    );
    let back: Vec<Option<String>> = t
        .query_one("SELECT tags FROM arr WHERE id = 5", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(back, [Some("x".into()), None, Some("y \"z\"".into())]);
    let f: Vec<Option<f64>> = t
        .query_one("SELECT f FROM arr WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(f, [Some(1.5), None]);
}

/// What ORMs such as Django send besides plain queries: grouping by a
/// primary key and selecting the table's other columns, INSERT ... SELECT
/// FROM unnest of several arrays (bulk inserts), ALTER COLUMN ... TYPE
/// (migrations widening a varchar), obj_description.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_by_primary_key_multi_array_unnest_and_alter_column_type() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    t.batch_execute(
        "CREATE TABLE author (id INT PRIMARY KEY, name VARCHAR(5) NOT NULL, n INT); \
         CREATE TABLE book (id INT PRIMARY KEY, author_id INT REFERENCES author(id), price INT); \
         INSERT INTO author VALUES (1, 'ann', 10), (2, 'bob', 20)",
    )
    .await
    .unwrap();
    // Several arrays unnested side by side, the shorter padded with NULLs.
    let ids: Vec<i32> = vec![1, 2, 3];
    let authors: Vec<i32> = vec![1, 1, 2];
    let prices: Vec<i32> = vec![5, 7];
    t.execute(
        "INSERT INTO book (id, author_id, price) \
         SELECT * FROM unnest($1::int[], $2::int[], $3::int[])",
        &[&ids, &authors, &prices],
    )
    .await
    .unwrap();
    assert_eq!(
        flat(&t, "SELECT id, author_id, price FROM book ORDER BY id").await,
        "1|1|5;2|1|7;3|2|NULL"
    );
    assert_eq!(
        flat(
            &t,
            "SELECT * FROM unnest(ARRAY[1, 2], ARRAY['a']) AS u(x, y)"
        )
        .await,
        "1|a;2|NULL"
    );
    // GROUP BY the primary key: the table's other columns may be selected.
    let cases = [
        (
            "SELECT a.name, a.n, count(b.id), sum(b.price) FROM author a \
             LEFT JOIN book b ON b.author_id = a.id GROUP BY a.id ORDER BY a.name",
            "ann|10|2|12;bob|20|1|NULL",
        ),
        (
            "SELECT obj_description(1, 'pg_class'), col_description(1, 1)",
            "NULL|NULL",
        ),
    ];
    for (q, want) in cases {
        assert_eq!(flat(&t, q).await, want, "{q}");
    }
    // Grouping by another column does not make the rest selectable.
    assert_eq!(
        sqlstate(&t, "SELECT a.name, a.n FROM author a GROUP BY a.name").await,
        "42803"
    );
    // ALTER COLUMN TYPE: a change every stored value already satisfies.
    t.batch_execute("ALTER TABLE author ALTER COLUMN name TYPE varchar(150)")
        .await
        .unwrap();
    t.batch_execute("INSERT INTO author VALUES (3, 'a longer name', 30)")
        .await
        .unwrap();
    t.batch_execute("ALTER TABLE author ALTER COLUMN n TYPE bigint")
        .await
        .unwrap();
    assert_eq!(
        flat(
            &t,
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = 'author'::regclass AND attnum IN (2, 3) ORDER BY attnum"
        )
        .await,
        "character varying(150);bigint"
    );
    assert_eq!(
        sqlstate(&t, "ALTER TABLE author ALTER COLUMN name TYPE varchar(3)").await,
        "22001"
    );
    assert_eq!(
        sqlstate(&t, "ALTER TABLE author ALTER COLUMN n TYPE text").await,
        "0A000"
    );
    // A foreign key's columns keep their family.
    assert_eq!(
        sqlstate(&t, "ALTER TABLE book ALTER COLUMN author_id TYPE text").await,
        "42804"
    );
    t.batch_execute("ALTER TABLE book ALTER COLUMN author_id TYPE bigint")
        .await
        .unwrap();
    assert_eq!(
        sqlstate(&t, "INSERT INTO book VALUES (9, 99, 1)").await,
        "23503"
    );
    assert_eq!(
        flat(&t, "SELECT name FROM author WHERE id = 3").await,
        "a longer name"
    );
    // Django's constraint checks: SET CONSTRAINTS (every constraint here
    // is checked at once, so it changes nothing), in both protocols.
    t.execute("SET CONSTRAINTS ALL IMMEDIATE", &[])
        .await
        .unwrap();
    t.batch_execute("BEGIN; SET CONSTRAINTS ALL DEFERRED; COMMIT")
        .await
        .unwrap();
}
