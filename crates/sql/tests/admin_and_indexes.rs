//! SPLIT AT, SHOW RANGES, ON CONFLICT and secondary indexes, end to end
//! against an in-process 3-store cluster.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_at_spreads_a_table_over_ranges_and_show_ranges_lists_them() {
    let c = cluster().await;
    let a = connect(c.addrs[0]).await;
    let b = connect(c.addrs[1]).await;
    a.batch_execute("CREATE TABLE kv (k INT PRIMARY KEY, v TEXT)")
        .await
        .unwrap();
    a.batch_execute("INSERT INTO kv VALUES (1, 'a'), (1500, 'b'), (2500, 'c')")
        .await
        .unwrap();

    // Before any split the table lives in one range that starts and ends
    // outside it.
    let before = rows(&a, "SHOW RANGES FROM TABLE kv").await;
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0][1].as_deref(), Some("/Min"));
    assert_eq!(before[0][2].as_deref(), Some("/Max"));
    assert_eq!(before[0][3].as_deref(), Some("{1,2,3}"));
    assert!(before[0][4].is_some(), "lease holder known: {before:?}");

    let split = rows(&a, "ALTER TABLE kv SPLIT AT VALUES (1000), (2000)").await;
    assert_eq!(split.len(), 2);
    assert_eq!(split[0][1].as_deref(), Some("/1000"));
    assert_eq!(split[1][1].as_deref(), Some("/2000"));
    assert!(split[0][0].as_deref().unwrap().ends_with("/1/1000"));
    // Splitting at an existing boundary is a no-op.
    assert_eq!(
        rows(&a, "ALTER TABLE kv SPLIT AT VALUES (1000);")
            .await
            .len(),
        1
    );

    let r = rows(&b, "SHOW RANGES FROM TABLE kv").await;
    let spans: Vec<(String, String)> = r
        .iter()
        .map(|x| (x[1].clone().unwrap(), x[2].clone().unwrap()))
        .collect();
    assert_eq!(
        spans,
        vec![
            ("/Min".to_string(), "/1000".to_string()),
            ("/1000".to_string(), "/2000".to_string()),
            ("/2000".to_string(), "/Max".to_string()),
        ]
    );
    let ids: std::collections::HashSet<_> = r.iter().map(|x| x[0].clone()).collect();
    assert_eq!(ids.len(), 3, "distinct range ids: {r:?}");
    for x in &r {
        let lh: u64 = x[4].as_deref().unwrap().parse().unwrap();
        assert!((1..=3).contains(&lh), "{r:?}");
    }
    // Through the extended protocol too (typed columns, parameters).
    let typed = b.query("SHOW RANGES FROM TABLE kv", &[]).await.unwrap();
    assert_eq!(typed.len(), 3);
    let first: i64 = typed[0].get("range_id");
    assert!(first >= 1);
    let lh: i64 = typed[2].get("lease_holder");
    assert!((1..=3).contains(&lh));
    let sp = b
        .query("ALTER TABLE kv SPLIT AT VALUES ($1::INT8)", &[&3000i64])
        .await
        .unwrap();
    assert_eq!(sp[0].get::<_, String>("pretty"), "/3000");
    assert_eq!(rows(&b, "SHOW RANGES FROM TABLE kv").await.len(), 4);
    assert_eq!(
        flat(&b, "SHOW RANGES FROM INDEX kv@primary").await,
        flat(&b, "SHOW RANGES FROM INDEX kv@kv_pkey").await
    );
    // The rows are all still there, and single-range writes work.
    assert_eq!(flat(&a, "SELECT k FROM kv ORDER BY k").await, "1;1500;2500");
    a.batch_execute("UPDATE kv SET v = 'z' WHERE k >= 2000")
        .await
        .unwrap();
    assert_eq!(flat(&b, "SELECT v FROM kv WHERE k = 2500").await, "z");

    // Composite keys split at full keys or prefixes.
    a.batch_execute("CREATE TABLE c2 (a INT, b TEXT, PRIMARY KEY (a, b))")
        .await
        .unwrap();
    let s = rows(&a, "ALTER TABLE c2 SPLIT AT VALUES (5, 'm')").await;
    assert_eq!(s[0][1].as_deref(), Some("/5/'m'"));
    let s = rows(&a, "ALTER TABLE c2 SPLIT AT VALUES (10)").await;
    assert_eq!(s[0][1].as_deref(), Some("/10"));
    let r2 = rows(&a, "SHOW RANGES FROM TABLE c2").await;
    assert_eq!(r2.len(), 3, "{r2:?}");
    assert_eq!(r2[1][1].as_deref(), Some("/5/'m'"));

    // Errors.
    assert_eq!(
        sqlstate(&a, "ALTER TABLE nope SPLIT AT VALUES (1)").await,
        "42P01"
    );
    assert_eq!(
        sqlstate(&a, "ALTER TABLE kv SPLIT AT VALUES (1, 2)").await,
        "42601"
    );
    assert_eq!(
        sqlstate(&a, "SHOW RANGES FROM INDEX kv@nope").await,
        "42704"
    );
    assert_eq!(
        sqlstate(&a, "ALTER TABLE kv SPLIT AT VALUES ('x')").await,
        "22P02"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_on_conflict_do_nothing_and_do_update() {
    let c = cluster().await;
    let a = connect(c.addrs[0]).await;
    a.batch_execute("CREATE TABLE u (id INT PRIMARY KEY, n INT NOT NULL, s TEXT)")
        .await
        .unwrap();
    a.batch_execute("INSERT INTO u VALUES (1, 10, 'a'), (2, 20, 'b')")
        .await
        .unwrap();
    // DO NOTHING skips existing keys (and duplicates within the statement).
    let r = a
        .execute(
            "INSERT INTO u VALUES (1, 99, 'x'), (3, 30, 'c'), (3, 31, 'd') ON CONFLICT DO NOTHING",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r, 1);
    assert_eq!(
        flat(&a, "SELECT id, n, s FROM u ORDER BY id").await,
        "1|10|a;2|20|b;3|30|c"
    );
    a.batch_execute("INSERT INTO u VALUES (2, 0, 'z') ON CONFLICT (id) DO NOTHING")
        .await
        .unwrap();
    assert_eq!(flat(&a, "SELECT n FROM u WHERE id = 2").await, "20");

    // DO UPDATE with EXCLUDED, the existing row, WHERE and RETURNING.
    assert_eq!(
        flat(
            &a,
            "INSERT INTO u AS t VALUES (1, 5, 'new'), (4, 40, 'd') \
             ON CONFLICT (id) DO UPDATE SET n = t.n + EXCLUDED.n, s = excluded.s \
             RETURNING id, n, s"
        )
        .await,
        "1|15|new;4|40|d"
    );
    a.batch_execute(
        "INSERT INTO u VALUES (2, 1, 'no') ON CONFLICT (id) DO UPDATE SET s = EXCLUDED.s WHERE u.n > 100",
    )
    .await
    .unwrap();
    assert_eq!(flat(&a, "SELECT s FROM u WHERE id = 2").await, "b");
    // Parameters through the extended protocol (the upsert of a counter).
    let st = a
        .prepare("INSERT INTO u (id, n) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET n = u.n + EXCLUDED.n")
        .await
        .unwrap();
    for _ in 0..3 {
        a.execute(&st, &[&7i32, &2i32]).await.unwrap();
    }
    assert_eq!(flat(&a, "SELECT n FROM u WHERE id = 7").await, "6");

    // Errors as PostgreSQL reports them.
    assert_eq!(
        sqlstate(
            &a,
            "INSERT INTO u VALUES (8, 1, 'a'), (8, 2, 'b') ON CONFLICT (id) DO UPDATE SET n = 0"
        )
        .await,
        "21000"
    );
    assert_eq!(
        sqlstate(
            &a,
            "INSERT INTO u VALUES (1, 1, 'a') ON CONFLICT (n) DO NOTHING"
        )
        .await,
        "42P10"
    );
    assert_eq!(
        sqlstate(
            &a,
            "INSERT INTO u VALUES (1, 1, 'a') ON CONFLICT DO UPDATE SET n = 0"
        )
        .await,
        "42601"
    );
    assert_eq!(
        sqlstate(
            &a,
            "INSERT INTO u VALUES (1, 1, 'a') ON CONFLICT (id) DO UPDATE SET n = NULL"
        )
        .await,
        "23502"
    );
    assert_eq!(flat(&a, "SELECT count(*) FROM u").await, "5");

    // A UNIQUE constraint or index as the arbiter: by its columns or by
    // name; DO NOTHING without a target skips a conflict in any of them.
    a.batch_execute(
        "CREATE TABLE users (id SERIAL PRIMARY KEY, email TEXT UNIQUE, a INT, b INT, visits INT DEFAULT 1); \
         CREATE UNIQUE INDEX users_ab ON users (a, b); \
         INSERT INTO users (email, a, b) VALUES ('x@e', 1, 1), ('y@e', 1, 2)",
    )
    .await
    .unwrap();
    assert_eq!(
        flat(
            &a,
            "INSERT INTO users (email) VALUES ('x@e'), ('z@e') \
             ON CONFLICT (email) DO UPDATE SET visits = users.visits + 1 RETURNING id, email, visits"
        )
        .await,
        "1|x@e|2;4|z@e|1"
    );
    assert_eq!(
        flat(
            &a,
            "INSERT INTO users (email, a, b) VALUES ('w@e', 1, 2) \
             ON CONFLICT ON CONSTRAINT users_ab DO UPDATE SET email = EXCLUDED.email RETURNING id"
        )
        .await,
        "2"
    );
    assert_eq!(
        flat(
            &a,
            "INSERT INTO users (email, a, b) VALUES ('w@e', 5, 5), ('v@e', 1, 1), ('u@e', 9, 9) \
             ON CONFLICT DO NOTHING RETURNING email"
        )
        .await,
        "u@e"
    );
    // NULLs never conflict; a conflict in another unique index than the
    // arbiter is still 23505.
    a.batch_execute(
        "INSERT INTO users (email, a, b) VALUES (NULL, 1, NULL), (NULL, 1, NULL) ON CONFLICT (email) DO NOTHING",
    )
    .await
    .unwrap();
    assert_eq!(
        sqlstate(
            &a,
            "INSERT INTO users (email, a, b) VALUES ('t@e', 1, 1) ON CONFLICT (email) DO NOTHING"
        )
        .await,
        "23505"
    );
    // The same value twice in one statement.
    assert_eq!(
        sqlstate(
            &a,
            "INSERT INTO users (email) VALUES ('q@e'), ('q@e') ON CONFLICT (email) DO UPDATE SET visits = 0"
        )
        .await,
        "21000"
    );
    assert_eq!(
        sqlstate(
            &a,
            "INSERT INTO users (email) VALUES ('q@e') ON CONFLICT ON CONSTRAINT nope DO NOTHING"
        )
        .await,
        "42704"
    );
    assert_eq!(
        flat(&a, "SELECT email, a, b, visits FROM users ORDER BY id").await,
        "x@e|1|1|2;w@e|1|2|1;z@e|NULL|NULL|1;u@e|9|9|1;NULL|1|NULL|1;NULL|1|NULL|1"
    );

    // Concurrent upserts of one counter from two nodes: none is lost
    // (a conflicting commit fails with 40001 and the statement retries).
    let b = connect(c.addrs[1]).await;
    a.batch_execute("CREATE TABLE ctr (k INT PRIMARY KEY, n INT)")
        .await
        .unwrap();
    let up = "INSERT INTO ctr VALUES (1, 1) ON CONFLICT (k) DO UPDATE SET n = ctr.n + 1";
    let run = |cl: tokio_postgres::Client| async move {
        let mut ok = 0;
        for _ in 0..15 {
            match cl.batch_execute(up).await {
                Ok(()) => ok += 1,
                Err(e) => assert_eq!(e.code().unwrap().code(), "40001", "{e}"),
            }
        }
        ok
    };
    let (x, y) = tokio::join!(run(a), run(b));
    let a = connect(c.addrs[0]).await;
    assert_eq!(
        flat(&a, "SELECT n FROM ctr").await,
        (x + y).to_string(),
        "every successful upsert counted once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secondary_indexes_are_backfilled_maintained_used_and_unique() {
    let c = cluster().await;
    let a = connect(c.addrs[0]).await;
    let b = connect(c.addrs[1]).await;
    a.batch_execute(
        "CREATE TABLE p (id INT PRIMARY KEY, email TEXT, city TEXT, age INT);
         INSERT INTO p VALUES (1, 'a@x', 'paris', 30), (2, 'b@x', 'oslo', 40),
                              (3, 'c@x', 'paris', 50), (4, NULL, NULL, 60);",
    )
    .await
    .unwrap();
    a.batch_execute("CREATE INDEX ON p (city)").await.unwrap();
    a.batch_execute("CREATE UNIQUE INDEX p_email_key ON p (email)")
        .await
        .unwrap();
    a.batch_execute("CREATE INDEX IF NOT EXISTS p_city_idx ON p (city)")
        .await
        .unwrap();
    assert_eq!(
        sqlstate(&a, "CREATE INDEX p_city_idx ON p (age)").await,
        "42P07"
    );

    // The planner uses the index (seen from another node too).
    let plan = flat(&b, "EXPLAIN SELECT id FROM p WHERE city = 'paris'").await;
    assert!(plan.contains("p@p_city_idx"), "{plan}");
    assert!(plan.contains("index join"), "{plan}");
    assert!(plan.contains("/Table/"), "{plan}");
    assert_eq!(
        flat(&b, "SELECT id FROM p WHERE city = 'paris' ORDER BY id").await,
        "1;3"
    );
    assert_eq!(flat(&b, "SELECT id FROM p WHERE email = 'b@x'").await, "2");
    assert_eq!(
        flat(&b, "SELECT id FROM p WHERE city > 'p' ORDER BY id").await,
        "1;3"
    );
    let plan = flat(&b, "EXPLAIN SELECT id FROM p WHERE email >= 'b'").await;
    assert!(plan.contains("p@p_email_key"), "{plan}");

    // Maintained by INSERT, UPDATE and DELETE.
    a.batch_execute("INSERT INTO p VALUES (5, 'e@x', 'paris', 20)")
        .await
        .unwrap();
    a.batch_execute("UPDATE p SET city = 'rome' WHERE id = 1")
        .await
        .unwrap();
    a.batch_execute("DELETE FROM p WHERE id = 3").await.unwrap();
    assert_eq!(
        flat(&b, "SELECT id FROM p WHERE city = 'paris' ORDER BY id").await,
        "5"
    );
    assert_eq!(flat(&b, "SELECT id FROM p WHERE city = 'rome'").await, "1");
    // UPDATE and DELETE find their rows through the index.
    a.batch_execute("UPDATE p SET age = age + 1 WHERE city = 'oslo'")
        .await
        .unwrap();
    assert_eq!(flat(&a, "SELECT age FROM p WHERE id = 2").await, "41");
    a.batch_execute("DELETE FROM p WHERE email = 'e@x'")
        .await
        .unwrap();
    assert_eq!(flat(&a, "SELECT count(*) FROM p").await, "3");
    assert_eq!(flat(&a, "SELECT id FROM p WHERE email = 'e@x'").await, "");

    // UNIQUE: violations are 23505, NULLs never conflict, a freed value
    // can be reused, and a swap inside one statement is refused as in
    // PostgreSQL.
    assert_eq!(
        sqlstate(&a, "INSERT INTO p VALUES (9, 'a@x', 'x', 1)").await,
        "23505"
    );
    assert_eq!(
        sqlstate(&b, "UPDATE p SET email = 'b@x' WHERE id = 1").await,
        "23505"
    );
    a.batch_execute("INSERT INTO p VALUES (10, NULL, NULL, 1), (11, NULL, NULL, 2)")
        .await
        .unwrap();
    a.batch_execute("UPDATE p SET email = 'z@x' WHERE id = 1")
        .await
        .unwrap();
    a.batch_execute("INSERT INTO p VALUES (12, 'a@x', 'x', 1)")
        .await
        .unwrap();
    assert_eq!(flat(&b, "SELECT id FROM p WHERE email = 'a@x'").await, "12");
    a.batch_execute("BEGIN; INSERT INTO p VALUES (13, 'q@x', 'x', 1)")
        .await
        .unwrap();
    assert_eq!(
        sqlstate(&a, "INSERT INTO p VALUES (14, 'q@x', 'x', 1)").await,
        "23505"
    );
    a.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        flat(&a, "SELECT count(*) FROM p WHERE email = 'q@x'").await,
        "0"
    );

    // A unique index the existing rows violate is not created.
    assert_eq!(
        sqlstate(&a, "CREATE UNIQUE INDEX p_age ON p (age)").await,
        "23505"
    );
    let plan = flat(&a, "EXPLAIN SELECT id FROM p WHERE age = 1").await;
    assert!(plan.contains("full scan"), "{plan}");
    a.batch_execute("CREATE UNIQUE INDEX p_age ON p (age, id)")
        .await
        .unwrap();
    assert_eq!(
        flat(&a, "SELECT id FROM p WHERE age = 1 ORDER BY id").await,
        "10;12"
    );
    let plan = flat(&a, "EXPLAIN SELECT id FROM p WHERE city = 'x'").await;
    assert!(plan.contains("p@p_city_idx"), "{plan}");

    // DROP INDEX: the planner stops using it, the entries are gone.
    a.batch_execute("DROP INDEX p_city_idx").await.unwrap();
    let plan = flat(&b, "EXPLAIN SELECT id FROM p WHERE city = 'x'").await;
    assert!(plan.contains("full scan"), "{plan}");
    assert_eq!(
        flat(&b, "SELECT id FROM p WHERE city = 'x' ORDER BY id").await,
        "12"
    );
    assert_eq!(sqlstate(&a, "DROP INDEX p_city_idx").await, "42704");
    a.batch_execute("DROP INDEX IF EXISTS p_city_idx")
        .await
        .unwrap();
    assert_eq!(
        flat(&a, "SHOW RANGES FROM INDEX p@p_email_key")
            .await
            .matches('|')
            .count(),
        4
    );

    // SHOW CREATE TABLE shows the table and its indexes.
    assert_eq!(
        rows(&b, "SHOW CREATE TABLE p").await[0][1].as_deref(),
        Some(
            "CREATE TABLE p (\n    id integer NOT NULL,\n    email text,\n    city text,\n    \
             age integer,\n    CONSTRAINT p_pkey PRIMARY KEY (id)\n);\n\
             CREATE UNIQUE INDEX p_email_key ON p (email);\n\
             CREATE UNIQUE INDEX p_age ON p (age, id);"
        )
    );
    assert_eq!(sqlstate(&b, "SHOW CREATE TABLE nope").await, "42P01");

    // Upserts maintain the indexes too.
    a.batch_execute(
        "INSERT INTO p VALUES (12, 'n@x', 'x', 1) ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email",
    )
    .await
    .unwrap();
    assert_eq!(flat(&b, "SELECT id FROM p WHERE email = 'n@x'").await, "12");
    assert_eq!(flat(&b, "SELECT id FROM p WHERE email = 'a@x'").await, "");

    // A row and its index entry in different ranges: one distributed
    // transaction writes both, and uniqueness holds across the ranges.
    let catalog = tessera_sql::catalog::Catalog::new(c.dbs[&1].clone());
    let desc = catalog.table("defaultdb", "p").await.unwrap().unwrap();
    let idx = desc.index("p_email_key").unwrap();
    c.dbs[&1]
        .split(&tessera_sql::encoding::index_prefix(desc.id, idx.id))
        .await
        .unwrap();
    a.batch_execute("INSERT INTO p VALUES (20, 'w@x', 'x', 1)")
        .await
        .unwrap();
    assert_eq!(flat(&b, "SELECT id FROM p WHERE email = 'w@x'").await, "20");
    assert_eq!(
        sqlstate(&a, "INSERT INTO p VALUES (21, 'w@x', 'x', 1)").await,
        "23505"
    );
    assert_eq!(flat(&a, "SELECT count(*) FROM p WHERE id = 21").await, "0");
    let r = rows(&a, "SHOW RANGES FROM INDEX p@p_email_key").await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0][1].as_deref(), Some("/Min"));
}

/// Runs psql against the cluster; prints what it sends and gets.
async fn psql(addr: std::net::SocketAddr, cmd: &str) -> (bool, String) {
    let (ip, port, cmd) = (
        addr.ip().to_string(),
        addr.port().to_string(),
        cmd.to_string(),
    );
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("psql")
            .args([
                "-X",
                "-E",
                "-h",
                &ip,
                "-p",
                &port,
                "-U",
                "root",
                "-d",
                "defaultdb",
                "-c",
                &cmd,
            ])
            .output()
    })
    .await
    .unwrap()
    .expect("psql runs (is /usr/bin/psql installed?)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_describe_commands_work() {
    let c = cluster().await;
    let a = connect(c.addrs[0]).await;
    a.batch_execute(
        "CREATE TABLE t (id INT PRIMARY KEY, v TEXT NOT NULL DEFAULT 'x');
         CREATE TABLE s (id SERIAL PRIMARY KEY, n NUMERIC(10,2), c VARCHAR(5));
         CREATE TABLE nokey (x INT);
         CREATE UNIQUE INDEX t_v_key ON t (v);
         CREATE INDEX ON s (n, c);",
    )
    .await
    .unwrap();
    let run = |cmd: &'static str| {
        let addr = c.addrs[1];
        async move {
            let (ok, text) = psql(addr, cmd).await;
            assert!(ok, "psql -c '{cmd}' failed:\n{text}");
            // Only psql's output, not the echoed queries.
            text.rsplit("**************************\n")
                .next()
                .unwrap()
                .trim()
                .to_string()
        }
    };
    let dt = run("\\dt").await;
    for t in [" nokey ", " s ", " t "] {
        assert!(dt.contains(t), "{dt}");
    }
    assert!(dt.contains("(3 rows)"), "{dt}");
    let dt_pattern = run("\\dt t*").await;
    assert!(dt_pattern.contains("(1 row)"), "{dt_pattern}");
    let di = run("\\di").await;
    for i in ["t_pkey", "t_v_key", "s_pkey", "s_n_c_idx"] {
        assert!(di.contains(i), "{di}");
    }
    assert!(di.contains("(4 rows)"), "{di}");
    assert!(run("\\d").await.contains("(3 rows)"));

    let d = run("\\d t").await;
    assert!(d.contains("Table \"public.t\""), "{d}");
    assert!(
        d.contains("id     | integer |           | not null |"),
        "{d}"
    );
    assert!(
        d.contains("v      | text    |           | not null | 'x'"),
        "{d}"
    );
    assert!(d.contains("\"t_pkey\" PRIMARY KEY, btree (id)"), "{d}");
    assert!(d.contains("\"t_v_key\" UNIQUE, btree (v)"), "{d}");
    let d = run("\\d s").await;
    assert!(d.contains("nextval('s_id_seq'::regclass)"), "{d}");
    assert!(d.contains("numeric(10,2)"), "{d}");
    assert!(d.contains("character varying(5)"), "{d}");
    assert!(d.contains("\"s_n_c_idx\" btree (n, c)"), "{d}");
    let l = run("\\l").await;
    assert!(l.contains(" defaultdb ") && l.contains("| UTF8 "), "{l}");
    a.batch_execute("CREATE USER alice").await.unwrap();
    let du = run("\\du").await;
    assert!(du.contains(" alice ") && du.contains("Superuser"), "{du}");
    let dplus = run("\\d+ t").await;
    assert!(
        dplus.contains("Storage") && dplus.contains("| plain"),
        "{dplus}"
    );
    // Foreign keys, from both sides.
    a.batch_execute(
        "CREATE TABLE child (id INT PRIMARY KEY, tid INT REFERENCES t (id) ON DELETE CASCADE)",
    )
    .await
    .unwrap();
    let d = run("\\d child").await;
    assert!(
        d.contains("Foreign-key constraints:\n    \"child_tid_fkey\" FOREIGN KEY (tid) REFERENCES t(id) ON DELETE CASCADE"),
        "{d}"
    );
    let d = run("\\d t").await;
    assert!(
        d.contains("Referenced by:\n    TABLE \"child\" CONSTRAINT \"child_tid_fkey\" FOREIGN KEY (tid) REFERENCES t(id) ON DELETE CASCADE"),
        "{d}"
    );
    a.batch_execute("DROP TABLE child").await.unwrap();
    let d = run("\\d nokey").await;
    assert!(d.contains("x      | integer"), "{d}");
    assert!(!d.contains("rowid"), "{d}");
    let (ok, text) = psql(c.addrs[0], "\\d nosuch").await;
    assert!(
        !ok && text.contains("Did not find any relation named \"nosuch\""),
        "{text}"
    );
    // Command tags as psql prints them.
    let (ok, text) = psql(c.addrs[0], "START TRANSACTION; BEGIN; COMMIT").await;
    assert!(ok, "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| !l.starts_with("WARNING"))
            .collect::<Vec<_>>(),
        ["START TRANSACTION", "BEGIN", "COMMIT"],
        "{text}"
    );
    a.batch_execute("CREATE SEQUENCE ids; CREATE VIEW tv AS SELECT id FROM t")
        .await
        .unwrap();
    let ds = run("\\ds").await;
    assert!(ds.contains(" ids ") && ds.contains(" sequence "), "{ds}");
    assert!(ds.contains("(1 row)"), "{ds}");
    let dv = run("\\dv").await;
    assert!(dv.contains(" tv ") && dv.contains(" view "), "{dv}");
    assert!(dv.contains("(1 row)"), "{dv}");
    assert!(run("\\d").await.contains("(5 rows)"));

    // pgbench's startup query finds its table (and only if it exists).
    let q = "select o.n, p.partstrat, pg_catalog.count(i.inhparent) \
             from pg_catalog.pg_class as c \
             join pg_catalog.pg_namespace as n on (n.oid = c.relnamespace) \
             cross join lateral (select pg_catalog.array_position(pg_catalog.current_schemas(true), n.nspname)) as o(n) \
             left join pg_catalog.pg_partitioned_table as p on (p.partrelid = c.oid) \
             left join pg_catalog.pg_inherits as i on (c.oid = i.inhparent) \
             where c.relname = 'pgbench_accounts' and o.n is not null \
             group by 1, 2 order by 1 asc limit 1";
    assert_eq!(flat(&a, q).await, "");
    a.batch_execute("CREATE TABLE pgbench_accounts (aid INT PRIMARY KEY)")
        .await
        .unwrap();
    assert_eq!(flat(&a, q).await, "2|NULL|0");

    // A transaction through psql.
    let (ok, text) = psql(
        c.addrs[0],
        "BEGIN; INSERT INTO t VALUES (1, 'a'); UPDATE t SET v = 'b' WHERE id = 1; COMMIT; SELECT v FROM t",
    )
    .await;
    assert!(ok && text.contains(" b\n(1 row)"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_backfill_covers_every_row_and_finds_duplicates_across_chunks() {
    let c = cluster().await;
    let a = connect(c.addrs[0]).await;
    a.batch_execute("CREATE TABLE big (id INT PRIMARY KEY, u INT, d INT)")
        .await
        .unwrap();
    // u is distinct; d repeats once, 1300 rows apart (backfill chunks are
    // 1000 rows), and once within a chunk in `e`.
    let values: Vec<String> = (0..2500)
        .map(|i| format!("({i}, {}, {})", 10_000 - i, if i == 1700 { 5 } else { i }))
        .collect();
    a.batch_execute(&format!("INSERT INTO big VALUES {}", values.join(",")))
        .await
        .unwrap();
    a.batch_execute("CREATE UNIQUE INDEX big_u ON big (u)")
        .await
        .unwrap();
    assert_eq!(
        flat(&a, "SELECT count(*) FROM big WHERE u > 0").await,
        "2500"
    );
    assert_eq!(flat(&a, "SELECT id FROM big WHERE u = 7501").await, "2499");
    let plan = flat(&a, "EXPLAIN SELECT id FROM big WHERE u = 7501").await;
    assert!(plan.contains("big@big_u"), "{plan}");
    assert_eq!(
        sqlstate(&a, "CREATE UNIQUE INDEX big_d ON big (d)").await,
        "23505"
    );
    assert_eq!(
        sqlstate(&a, "CREATE UNIQUE INDEX big_e ON big ((d))").await,
        "0A000"
    );
    a.batch_execute("UPDATE big SET d = 100000 WHERE id = 1700")
        .await
        .unwrap();
    a.batch_execute("UPDATE big SET d = 1 WHERE id = 2")
        .await
        .unwrap();
    assert_eq!(
        sqlstate(&a, "CREATE UNIQUE INDEX big_d ON big (d)").await,
        "23505"
    );
    a.batch_execute("UPDATE big SET d = 2 WHERE id = 2")
        .await
        .unwrap();
    a.batch_execute("CREATE UNIQUE INDEX big_d ON big (d)")
        .await
        .unwrap();
    assert_eq!(
        flat(&a, "SELECT id FROM big WHERE d = 100000").await,
        "1700"
    );
    assert_eq!(
        flat(&a, "SELECT count(*) FROM big WHERE d >= 0").await,
        "2500"
    );
}

/// The catalog queries ORMs reflect tables with (these are the shapes
/// SQLAlchemy's inspector sends): pg_constraint and pg_index with their
/// key arrays unnested, pg_attrdef, format_type, pg_get_constraintdef,
/// pg_get_indexdef and regclass casts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orm_reflection_queries_read_the_catalog() {
    let c = cluster().await;
    let t = connect(c.addrs[0]).await;
    t.batch_execute(
        "CREATE TABLE rauthor (id SERIAL PRIMARY KEY, name VARCHAR(80) NOT NULL UNIQUE, \
           score NUMERIC(10,2) DEFAULT 0); \
         CREATE TABLE rbook (id BIGINT PRIMARY KEY, title VARCHAR(200) NOT NULL, \
           author_id INT NOT NULL REFERENCES rauthor(id) ON DELETE CASCADE, tags TEXT[], \
           CONSTRAINT uq_t UNIQUE (author_id, title), CONSTRAINT pos CHECK (id > 0)); \
         CREATE INDEX ix_title ON rbook (title)",
    )
    .await
    .unwrap();
    let cases = [
        (
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), \
               (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d \
                WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum), a.attnotnull \
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid \
             WHERE c.relname = 'rauthor' AND a.attnum > 0 ORDER BY a.attnum",
            "id|integer|nextval('rauthor_id_seq'::regclass)|t;\
             name|character varying(80)|NULL|t;score|numeric(10,2)|0|f",
        ),
        (
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = 'rbook'::regclass AND attname = 'tags'",
            "text[]",
        ),
        // Constraint columns in key order, through the index's key array.
        (
            "SELECT k.conname, array_agg(a.attname ORDER BY k.ord) FROM \
               (SELECT con.conname, con.conrelid, unnest(i.indkey) AS attnum, \
                       generate_subscripts(i.indkey, 1) AS ord \
                FROM pg_catalog.pg_constraint con \
                JOIN pg_catalog.pg_index i ON con.conindid = i.indexrelid \
                WHERE con.contype IN ('p', 'u') AND con.conrelid = 'rbook'::regclass) k \
             JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.attnum \
             GROUP BY k.conname ORDER BY k.conname",
            "rbook_pkey|{id};uq_t|{author_id,title}",
        ),
        (
            "SELECT conname, pg_get_constraintdef(oid, true), confrelid::regclass::text, confkey \
             FROM pg_catalog.pg_constraint WHERE contype IN ('f', 'c') \
               AND conrelid = 'public.rbook'::regclass ORDER BY conname",
            "pos|CHECK ((id > 0))|NULL|NULL;\
             rbook_author_id_fkey|FOREIGN KEY (author_id) REFERENCES rauthor(id) ON DELETE CASCADE|rauthor|{1}",
        ),
        (
            "SELECT c.relname, i.indisunique, i.indoption, pg_get_indexdef(i.indexrelid) \
             FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid \
             WHERE i.indrelid = 'rbook'::regclass AND NOT i.indisprimary ORDER BY c.relname",
            "ix_title|f|0|CREATE INDEX ix_title ON public.rbook USING btree (title);\
             uq_t|t|0 0|CREATE UNIQUE INDEX uq_t ON public.rbook USING btree (author_id, title)",
        ),
        (
            "SELECT 'pg_catalog.pg_class'::regclass, to_regtype('int4'), to_regtype('hstore'), \
               23::regtype::text, '1015'::oid::regtype::text, parse_ident('a.\"B c\"')",
            "1259|23|NULL|integer|character varying[]|{a,\"B c\"}",
        ),
        (
            "SELECT relname, relkind, relpersistence FROM pg_catalog.pg_class \
             WHERE relkind = ANY (ARRAY['r', 'p']) AND relname LIKE 'r%' ORDER BY relname",
            "rauthor|r|p;rbook|r|p",
        ),
    ];
    for (q, want) in cases {
        assert_eq!(flat(&t, q).await, want, "{q}");
    }
    assert_eq!(sqlstate(&t, "SELECT 'nosuch'::regclass").await, "42P01");

    // What asyncpg sends before it looks types up: set_config sets as SET
    // does, and an `oid[]` parameter (binary, 4-byte elements) reaches a
    // recursive query over pg_type that follows array element types.
    assert_eq!(
        flat(&t, "SELECT set_config('jit', 'off', false)").await,
        "off"
    );
    assert_eq!(flat(&t, "SHOW jit").await, "off");
    let oids: Vec<u32> = vec![1016];
    let rows = t
        .query(
            "WITH RECURSIVE tree(oid, name, elem, depth) AS ( \
               SELECT t.oid, t.typname, t.typelem, 0 FROM pg_catalog.pg_type t \
               WHERE t.oid = any($1::oid[]) \
               UNION ALL \
               SELECT t.oid, t.typname, t.typelem, tree.depth + 1 \
               FROM pg_catalog.pg_type t, tree WHERE tree.elem <> 0 AND t.oid = tree.elem) \
             SELECT oid, name, elem::regtype::text FROM tree ORDER BY depth DESC",
            &[&oids],
        )
        .await
        .unwrap();
    let got: Vec<(u32, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        got,
        [
            (20, "int8".to_string(), "-".to_string()),
            (1016, "_int8".to_string(), "bigint".to_string())
        ]
    );
    assert_eq!(sqlstate(&t, "SELECT parse_ident('a..b')").await, "22023");
}
