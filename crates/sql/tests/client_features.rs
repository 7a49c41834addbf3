//! What drivers and loaders rely on, through `tokio-postgres`: parameters
//! and binary results for the common types (uuid, json, jsonb, date,
//! timestamp[tz], numeric, bytea, ...), COPY FROM STDIN (text and CSV,
//! secondary indexes maintained, SQLSTATEs for bad data), cancel
//! requests, and the per-node connection limit.

mod common;

use std::error::Error;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use common::*;
use futures::SinkExt;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type};
use tokio_postgres::NoTls;

/// A value in its binary wire form, for types the client has no Rust type
/// for without optional features (uuid, json, date, numeric, ...).
#[derive(Debug, Clone, PartialEq)]
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

impl ToSql for Raw {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.put_slice(&self.0);
        Ok(IsNull::No)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    tokio_postgres::types::to_sql_checked!();
}

const UUID: [u8; 16] = [
    0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_and_binary_results_for_common_types() {
    let c = cluster().await;
    let a = connect(c.addrs[0]).await;
    a.batch_execute(
        "CREATE TABLE t (id INT2 PRIMARY KEY, u UUID, j JSON, jb JSONB, d DATE, ts TIMESTAMP, \
         tz TIMESTAMPTZ, n NUMERIC(10,3), b BYTEA, f FLOAT4, v VARCHAR(8), big INT8, ok BOOL)",
    )
    .await
    .unwrap();
    // Parameters in binary (what tokio-postgres sends).
    let days_2024_01_02: i32 = 8767; // since 2000-01-01
    let micros: i64 = days_2024_01_02 as i64 * 86_400_000_000 + 3_600_000_000;
    let mut jsonb = vec![1u8];
    jsonb.extend_from_slice(br#"{"b": 1, "a": [1, 2]}"#);
    // Stored (and returned) as PostgreSQL prints jsonb.
    let mut jsonb_out = vec![1u8];
    jsonb_out.extend_from_slice(br#"{"a": [1, 2], "b": 1}"#);
    let mut numeric = BytesMut::new(); // 12.5 = 12 + 5000 * 10000^-1, dscale 3
    for v in [2i16, 0, 0, 3, 12, 5000] {
        numeric.put_i16(v);
    }
    a.execute(
        "INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        &[
            &7i16,
            &Raw(UUID.to_vec()),
            &Raw(br#"{"b":1,  "a":[1,2]}"#.to_vec()),
            &Raw(jsonb.clone()),
            &Raw(days_2024_01_02.to_be_bytes().to_vec()),
            &Raw(micros.to_be_bytes().to_vec()),
            &Raw(micros.to_be_bytes().to_vec()),
            &Raw(numeric.to_vec()),
            &vec![0u8, 255, 10],
            &1.5f32,
            &"abc",
            &(1i64 << 40),
            &true,
        ],
    )
    .await
    .unwrap();
    // Text forms (simple protocol) are PostgreSQL's.
    assert_eq!(
        flat(&a, "SELECT u, j, jb, d, ts, tz, n, b, f, v, big, ok FROM t").await,
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|{\"b\":1,  \"a\":[1,2]}|{\"a\": [1, 2], \"b\": 1}|\
         2024-01-02|2024-01-02 01:00:00|2024-01-02 01:00:00+00|12.500|\\x00ff0a|1.5|abc|1099511627776|t"
    );
    // Binary results (tokio-postgres asks for binary), with a parameter
    // in the WHERE clause.
    let row = a
        .query_one(
            "SELECT id, u, j, jb, d, ts, tz, n, b, f, v, big, ok FROM t WHERE id = $1",
            &[&7i16],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i16>(0), 7);
    assert_eq!(row.get::<_, Raw>(1), Raw(UUID.to_vec()));
    assert_eq!(
        row.get::<_, Raw>(2),
        Raw(br#"{"b":1,  "a":[1,2]}"#.to_vec())
    );
    assert_eq!(row.get::<_, Raw>(3), Raw(jsonb_out));
    assert_eq!(row.get::<_, Raw>(4).0, days_2024_01_02.to_be_bytes());
    assert_eq!(row.get::<_, Raw>(5).0, micros.to_be_bytes());
    assert_eq!(row.get::<_, Raw>(6).0, micros.to_be_bytes());
    assert_eq!(row.get::<_, Raw>(7).0, numeric.to_vec());
    assert_eq!(row.get::<_, Vec<u8>>(8), vec![0u8, 255, 10]);
    assert_eq!(row.get::<_, f32>(9), 1.5);
    assert_eq!(row.get::<_, String>(10), "abc");
    assert_eq!(row.get::<_, i64>(11), 1 << 40);
    assert!(row.get::<_, bool>(12));
    // Types as the client sees them in RowDescription.
    let types: Vec<String> = row
        .columns()
        .iter()
        .map(|c| c.type_().name().to_string())
        .collect();
    assert_eq!(
        types,
        [
            "int2",
            "uuid",
            "json",
            "jsonb",
            "date",
            "timestamp",
            "timestamptz",
            "numeric",
            "bytea",
            "float4",
            "varchar",
            "int8",
            "bool"
        ]
    );
    // Text input, comparisons and bad values.
    a.batch_execute(
        "INSERT INTO t (id, u, jb) VALUES (8, '{A0EEBC99-9C0B4EF8-BB6D6BB9-BD380A11}', '[1, {\"x\": null}]')",
    )
    .await
    .unwrap();
    assert_eq!(
        flat(
            &a,
            "SELECT id, jb FROM t WHERE u = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' ORDER BY id"
        )
        .await,
        "7|{\"a\": [1, 2], \"b\": 1};8|[1, {\"x\": null}]"
    );
    assert_eq!(
        sqlstate(&a, "INSERT INTO t (id, u) VALUES (9, 'not-a-uuid')").await,
        "22P02"
    );
    assert_eq!(
        sqlstate(&a, "INSERT INTO t (id, jb) VALUES (9, '{\"a\": }')").await,
        "22P02"
    );
}

/// One COPY on its own connection. (After a COPY through the extended
/// protocol, the next statement on the same tokio-postgres connection has
/// been seen to fail with "unexpected message from server": a known
/// problem, not yet understood; psql and pgbench use the simple protocol.)
async fn copy_in(addr: std::net::SocketAddr, sql: &str, data: &[&str]) -> Result<u64, String> {
    let c = connect(addr).await;
    let sink = c.copy_in(sql).await.map_err(|e| code_of(&e))?;
    futures::pin_mut!(sink);
    for d in data {
        sink.send(Bytes::from(d.to_string()))
            .await
            .map_err(|e| code_of(&e))?;
    }
    sink.finish().await.map_err(|e| code_of(&e))
}

fn code_of(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_from_stdin_loads_rows_and_maintains_indexes() {
    let c = cluster().await;
    let a = connect(c.addrs[0]).await;
    a.batch_execute(
        "CREATE TABLE acc (aid INT PRIMARY KEY, bid INT, abalance INT, filler CHAR(20)); \
         CREATE INDEX acc_bid ON acc (bid)",
    )
    .await
    .unwrap();
    // Text format, in pieces that split rows, more rows than one batch.
    let n = 5000;
    let mut text = String::new();
    for i in 1..=n {
        text.push_str(&format!("{i}\t{}\t0\t\\N\n", i % 7));
    }
    let (x, y) = text.split_at(text.len() / 3);
    let (y, z) = y.split_at(y.len() / 2);
    let rows = copy_in(
        c.addrs[0],
        "copy acc from stdin with (freeze on)",
        &[x, y, z, "\\.\n"],
    )
    .await
    .unwrap();
    assert_eq!(rows, n as u64);
    assert_eq!(flat(&a, "SELECT count(*) FROM acc").await, "5000");
    // The secondary index has every row (EXPLAIN shows it is used).
    assert_eq!(
        flat(&a, "SELECT count(*) FROM acc WHERE bid = 3").await,
        "714"
    );
    assert!(flat(&a, "EXPLAIN SELECT aid FROM acc WHERE bid = 3")
        .await
        .contains("acc_bid"));
    // CSV with a header, a column list, quotes and NULLs.
    let rows = copy_in(
        c.addrs[0],
        "COPY acc (aid, filler, bid) FROM STDIN WITH (FORMAT csv, HEADER)",
        &["aid,filler,bid\n6001,\"a,\"\"b\"\"\",\n6002,,9\n"],
    )
    .await
    .unwrap();
    assert_eq!(rows, 2);
    assert_eq!(
        flat(
            &a,
            "SELECT aid, bid, filler FROM acc WHERE aid > 6000 ORDER BY aid"
        )
        .await,
        format!("6001|NULL|a,\"b\"{};6002|9|NULL", " ".repeat(15))
    );
    // Column defaults that call nextval are filled per row.
    a.batch_execute(
        "CREATE SEQUENCE tag_no START 100; \
         CREATE TABLE tags (id INT PRIMARY KEY DEFAULT nextval('tag_no'), name TEXT)",
    )
    .await
    .unwrap();
    let rows = copy_in(c.addrs[0], "COPY tags (name) FROM STDIN", &["x\ny\n"])
        .await
        .unwrap();
    assert_eq!(rows, 2);
    assert_eq!(
        flat(&a, "SELECT id, name FROM tags ORDER BY id").await,
        "100|x;101|y"
    );
    // Errors carry SQLSTATEs; the session keeps working.
    assert_eq!(
        copy_in(c.addrs[0], "COPY acc FROM STDIN", &["7000\tx\t0\t\n"]).await,
        Err("22P02".into())
    );
    assert_eq!(
        copy_in(c.addrs[0], "COPY acc FROM STDIN", &["7001\t1\n"]).await,
        Err("22P04".into())
    );
    assert_eq!(
        copy_in(c.addrs[0], "COPY acc FROM STDIN", &["1\t1\t1\tdup\n"]).await,
        Err("23505".into())
    );
    assert_eq!(
        copy_in(c.addrs[0], "COPY nope FROM STDIN", &[]).await,
        Err("42P01".into())
    );
    assert_eq!(flat(&a, "SELECT count(*) FROM acc").await, "5002");
    // COPY is atomic: a bad row after thousands of good ones leaves none.
    let mut text: String = (10_001..=14_000)
        .map(|i| format!("{i}\t1\t0\tx\n"))
        .collect();
    text.push_str("14001\tbad\t0\tx\n");
    assert_eq!(
        copy_in(c.addrs[0], "COPY acc FROM STDIN", &[&text]).await,
        Err("22P02".into())
    );
    assert_eq!(flat(&a, "SELECT count(*) FROM acc").await, "5002");
    // Inside BEGIN the rows belong to the transaction: seen by it, undone
    // by ROLLBACK, kept by COMMIT.
    for (end, count) in [("ROLLBACK", "5002"), ("COMMIT", "5004")] {
        let t = connect(c.addrs[1]).await;
        t.batch_execute("BEGIN").await.unwrap();
        let sink = t.copy_in("COPY acc FROM STDIN").await.unwrap();
        futures::pin_mut!(sink);
        sink.send(Bytes::from("8001\t1\t0\tx\n8002\t1\t0\tx\n"))
            .await
            .unwrap();
        assert_eq!(sink.finish().await.unwrap(), 2);
        assert_eq!(flat(&t, "SELECT count(*) FROM acc").await, "5004");
        assert_eq!(flat(&a, "SELECT count(*) FROM acc").await, "5002");
        t.batch_execute(end).await.unwrap();
        assert_eq!(flat(&a, "SELECT count(*) FROM acc").await, count);
    }
    // A large INSERT ... SELECT outside BEGIN is one transaction too.
    a.batch_execute("CREATE TABLE acc2 (aid INT PRIMARY KEY, bid INT)")
        .await
        .unwrap();
    assert_eq!(
        a.execute("INSERT INTO acc2 SELECT aid, bid FROM acc", &[])
            .await
            .unwrap(),
        5004
    );
    assert_eq!(
        flat(&a, "SELECT count(*), sum(aid) FROM acc2").await,
        "5004|12530506"
    );
}

/// COPY FROM STDIN in the binary format (asyncpg's copy_records_to_table
/// sends it): the header, rows of (length, binary value) fields, the
/// trailer; data split anywhere across CopyData messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_copy_from_stdin_loads_rows() {
    let c = cluster().await;
    let a = connect(c.addrs[0]).await;
    a.batch_execute("CREATE TABLE bin (id INT PRIMARY KEY, name TEXT, tags INT[])")
        .await
        .unwrap();
    fn field(out: &mut Vec<u8>, value: Option<&[u8]>) {
        match value {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(v) => {
                out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                out.extend_from_slice(v);
            }
        }
    }
    let mut data = b"PGCOPY\n\xff\r\n\0".to_vec();
    data.extend_from_slice(&0u32.to_be_bytes()); // flags
    data.extend_from_slice(&0u32.to_be_bytes()); // no header extension
    for i in 0..3000i32 {
        data.extend_from_slice(&3i16.to_be_bytes());
        field(&mut data, Some(&i.to_be_bytes()));
        let name = format!("n{i}");
        field(&mut data, (i % 2 == 0).then_some(name.as_bytes()));
        // int4[] {i, i + 1}: 1 dimension, no NULLs, element oid 23.
        let mut arr = Vec::new();
        for x in [1i32, 0, 23, 2, 1, 4, i, 4, i + 1] {
            arr.extend_from_slice(&x.to_be_bytes());
        }
        field(&mut data, Some(&arr));
    }
    data.extend_from_slice(&(-1i16).to_be_bytes());
    let chunks: Vec<&[u8]> = data.chunks(7777).collect();
    let conn = connect(c.addrs[0]).await;
    let sink = conn
        .copy_in("COPY bin FROM STDIN WITH (FORMAT binary)")
        .await
        .unwrap();
    futures::pin_mut!(sink);
    for chunk in chunks {
        sink.send(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    assert_eq!(sink.finish().await.unwrap(), 3000);
    assert_eq!(
        flat(&a, "SELECT count(*), count(name), sum(tags[2]) FROM bin").await,
        "3000|1500|4501500"
    );
    assert_eq!(
        flat(
            &a,
            "SELECT name, tags FROM bin WHERE id IN (10, 11) ORDER BY id"
        )
        .await,
        "n10|{10,11};NULL|{11,12}"
    );

    // A bad signature and a row of the wrong width are 22P04.
    async fn binary_copy(addr: std::net::SocketAddr, data: Vec<u8>) -> Result<u64, String> {
        let c = connect(addr).await;
        let sink = c
            .copy_in("COPY bin FROM STDIN (FORMAT binary)")
            .await
            .map_err(|e| code_of(&e))?;
        futures::pin_mut!(sink);
        sink.send(Bytes::from(data))
            .await
            .map_err(|e| code_of(&e))?;
        sink.finish().await.map_err(|e| code_of(&e))
    }
    assert_eq!(
        binary_copy(c.addrs[0], b"PGCOPY\nxx".to_vec()).await,
        Err("22P04".into())
    );
    let mut short = b"PGCOPY\n\xff\r\n\0".to_vec();
    short.extend_from_slice(&[0; 8]);
    short.extend_from_slice(&1i16.to_be_bytes());
    field(&mut short, Some(&5000i32.to_be_bytes()));
    short.extend_from_slice(&(-1i16).to_be_bytes());
    assert_eq!(binary_copy(c.addrs[0], short).await, Err("22P04".into()));
    assert_eq!(
        sqlstate(&a, "COPY bin FROM STDIN (FORMAT binary, DELIMITER ',')").await,
        "42601"
    );
    assert_eq!(flat(&a, "SELECT count(*) FROM bin").await, "3000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_request_interrupts_a_running_statement() {
    let c = cluster().await;
    let a = connect(c.addrs[0]).await;
    let token = a.cancel_token();
    let started = Instant::now();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(NoTls).await
    });
    let err = a.simple_query("SELECT pg_sleep(30)").await.unwrap_err();
    assert_eq!(code_of(&err), "57014");
    assert!(started.elapsed() < Duration::from_secs(10));
    canceller.await.unwrap().unwrap();
    // The session still works; a cancelled statement aborts its transaction.
    assert_eq!(flat(&a, "SELECT 1").await, "1");
    a.batch_execute("CREATE TABLE k (id INT PRIMARY KEY)")
        .await
        .unwrap();
    a.batch_execute("BEGIN; INSERT INTO k VALUES (1)")
        .await
        .unwrap();
    let token = a.cancel_token();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(NoTls).await
    });
    assert_eq!(
        code_of(&a.simple_query("SELECT pg_sleep(30)").await.unwrap_err()),
        "57014"
    );
    assert_eq!(sqlstate(&a, "SELECT 1").await, "25P02");
    a.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(flat(&a, "SELECT count(*) FROM k").await, "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_beyond_the_limit_get_53300_and_the_others_keep_working() {
    let c = cluster().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, rx) = tokio::sync::oneshot::channel::<()>();
    let limit = 4;
    tokio::spawn(tessera_sql::serve_with(
        listener,
        c.dbs[&1].clone(),
        tessera_sql::ServerConfig {
            max_connections: limit,
            ..Default::default()
        },
        async move {
            let _ = rx.await;
        },
    ));
    let mut held = Vec::new();
    for _ in 0..limit {
        held.push(connect(addr).await);
    }
    // Ten times as many clients more: every one is refused with 53300.
    let conn_str = format!(
        "host={} port={} user=root dbname=defaultdb",
        addr.ip(),
        addr.port()
    );
    let mut refused = 0;
    for _ in 0..10 * limit {
        match tokio_postgres::connect(&conn_str, NoTls).await {
            Ok(_) => panic!("a connection beyond the limit was accepted"),
            Err(e) => {
                assert_eq!(code_of(&e), "53300", "{e}");
                let msg = e.as_db_error().map(|d| d.message().to_string());
                assert_eq!(msg.as_deref(), Some("sorry, too many clients already"));
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 10 * limit);
    // The sessions already open keep working.
    for (i, h) in held.iter().enumerate() {
        assert_eq!(flat(h, &format!("SELECT {i}")).await, i.to_string());
    }
    // A closed session frees its slot.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tokio_postgres::connect(&conn_str, NoTls).await {
            Ok((client, conn)) => {
                tokio::spawn(conn);
                assert_eq!(flat(&client, "SELECT 2").await, "2");
                break;
            }
            Err(e) => {
                assert_eq!(code_of(&e), "53300");
                assert!(Instant::now() < deadline, "the slot was never freed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
