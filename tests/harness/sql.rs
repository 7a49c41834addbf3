//! SQL clients for cluster tests: connecting to a node (or to whichever
//! answers), recognizing retryable errors, and reading `SHOW RANGES`.

use std::time::Duration;

use tokio_postgres::{Client, NoTls};

/// A connection to the SQL address `addr`, or `None` if it does not answer
/// within 2 s.
pub async fn connect_sql(addr: &str) -> Option<Client> {
    let url = format!("postgres://root@{addr}/defaultdb?connect_timeout=2");
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await.ok()?;
    tokio::spawn(conn);
    Some(client)
}

/// A connection to any node that answers, trying from `start`.
pub async fn any_node(addrs: &[String], start: usize) -> Client {
    let mut i = start;
    loop {
        if let Some(c) = connect_sql(&addrs[i % addrs.len()]).await {
            return c;
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Errors a client retries: serialization failure, deadlock, outcome
/// unknown, connection failure.
pub fn is_retry(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| matches!(c.code(), "40001" | "40P01" | "40003" | "08006"))
}

/// One row of `SHOW RANGES FROM TABLE`.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeRow {
    pub range_id: i64,
    /// Relative to the table's primary index: `/Min`, `/2`, `/Max`.
    pub start_key: String,
    pub end_key: String,
    /// Node id; `None` if no node could be reached for the range.
    pub lease_holder: Option<i64>,
}

/// `SHOW RANGES FROM TABLE table`, in key order.
pub async fn show_ranges(c: &Client, table: &str) -> Result<Vec<RangeRow>, tokio_postgres::Error> {
    let rows = c
        .query(&format!("SHOW RANGES FROM TABLE {table}"), &[])
        .await?;
    Ok(rows
        .iter()
        .map(|r| RangeRow {
            range_id: r.get("range_id"),
            start_key: r.get("start_key"),
            end_key: r.get("end_key"),
            lease_holder: r.get("lease_holder"),
        })
        .collect())
}
