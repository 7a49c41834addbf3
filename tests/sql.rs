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
