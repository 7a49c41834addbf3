//! SQL served by every node of a real multi-process cluster.

mod harness;

use harness::TestCluster;
use tokio_postgres::NoTls;

async fn sql(addr: &str) -> tokio_postgres::Client {
    let url = format!("postgres://root@{addr}/defaultdb");
    let (client, conn) = tokio_postgres::connect(&url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    tokio::spawn(conn);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_serves_sql_over_the_same_data() {
    let c = TestCluster::start(3).await;
    let n1 = sql(&c.nodes[0].sql).await;
    n1.batch_execute(
        "CREATE TABLE accounts (id INT PRIMARY KEY, owner TEXT NOT NULL, balance INT);
         INSERT INTO accounts VALUES (1, 'ada', 100), (2, 'bob', 50);",
    )
    .await
    .unwrap();
    for node in &c.nodes {
        let client = sql(&node.sql).await;
        let rows = client
            .query(
                "SELECT owner, balance FROM accounts WHERE id = $1",
                &[&2i32],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<_, &str>(0), "bob");
        assert_eq!(rows[0].get::<_, i32>(1), 50);
    }
    let n3 = sql(&c.nodes[2].sql).await;
    let err = n3.simple_query("SELECT * FROM nope").await.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42P01"));
    let err = n3
        .simple_query("INSERT INTO accounts VALUES (1, 'eve', 0)")
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("23505"));
    // The shell runs statements too.
    let url = format!("postgres://root@{}/defaultdb", c.nodes[1].sql);
    let out = c.cli(&[
        "sql",
        &format!("--url={url}"),
        "-e",
        "SELECT count(*) FROM accounts",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains('2'));
}

fn psql(addr: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new("psql")
        .arg(format!("postgres://root@{addr}/defaultdb"))
        .args(["-X", "-v", "ON_ERROR_STOP=1"])
        .args(args)
        .output()
        .expect("psql is installed (.ci/run installs postgresql-client)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_describes_tables_and_runs_a_transaction() {
    let c = TestCluster::start(3).await;
    let addr = c.nodes[0].sql.clone();
    let out = psql(
        &addr,
        &[
            "-c",
            "CREATE TABLE items (id INT PRIMARY KEY, name TEXT NOT NULL, qty INT DEFAULT 0)",
            "-c",
            "CREATE INDEX items_name_idx ON items (name)",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = psql(&addr, &["-c", "\\dt"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("items"),
        "\\dt: {text}"
    );
    let out = psql(&addr, &["-c", "\\d items"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("qty") && text.contains("items_name_idx"),
        "\\d items: {text}"
    );
    // A transaction through psql, seen from another node.
    let out = psql(
        &addr,
        &[
            "-c",
            "BEGIN; INSERT INTO items VALUES (1, 'bolt', 5); UPDATE items SET qty = qty + 1 WHERE id = 1; COMMIT;",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = psql(
        &c.nodes[2].sql,
        &["-At", "-c", "SELECT qty FROM items WHERE name = 'bolt'"],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "6");
    // A rolled-back transaction leaves nothing.
    let out = psql(
        &addr,
        &[
            "-c",
            "BEGIN; INSERT INTO items VALUES (2, 'nut'); ROLLBACK;",
        ],
    );
    assert!(out.status.success());
    let out = psql(&addr, &["-At", "-c", "SELECT count(*) FROM items"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    // Fewer values than columns: the rest take their defaults.
    let out = psql(&addr, &["-c", "INSERT INTO items VALUES (3, 'washer')"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = psql(&addr, &["-At", "-c", "SELECT qty FROM items WHERE id = 3"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_megabyte_statement_is_served_and_others_keep_working() {
    let c = TestCluster::start(3).await;
    let client = sql(&c.nodes[0].sql).await;
    client
        .batch_execute("CREATE TABLE blobs (id INT PRIMARY KEY, body TEXT)")
        .await
        .unwrap();
    let body = "x".repeat(10 * 1024 * 1024);
    let stmt = format!("INSERT INTO blobs VALUES (1, '{body}')");
    assert!(stmt.len() > 10_000_000);
    client.batch_execute(&stmt).await.unwrap();
    let other = sql(&c.nodes[1].sql).await;
    let row = other
        .query_one("SELECT length(body) FROM blobs WHERE id = 1", &[])
        .await
        .unwrap();
    let len: i64 = row
        .try_get(0)
        .or_else(|_| row.try_get::<_, i32>(0).map(i64::from))
        .unwrap();
    assert_eq!(len, body.len() as i64);
    // A 10 MB statement that is not valid SQL is a syntax error, not a crash.
    let err = client
        .simple_query(&format!("SELEC '{body}'"))
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42601"));
    assert_eq!(
        client
            .query_one("SELECT 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );
}
