//! Multi-process cluster tests: three real `tessera` processes on
//! 127.0.0.1, driven over gRPC and the CLI, with kill -9, SIGSTOP/SIGCONT,
//! SIGTERM and restarts.

mod harness;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{get, kv, put, split, transfer, TestCluster};
use parking_lot::Mutex;

fn key(i: usize) -> String {
    format!("key{i:06}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_keys_over_ten_ranges_read_back_from_every_node() {
    let c = TestCluster::start(3).await;
    const N: usize = 10_000;
    // Write through all three nodes, 30 writers.
    let mut tasks = Vec::new();
    for w in 0..30 {
        let mut client = c.client(w % 3).await;
        tasks.push(tokio::spawn(async move {
            for i in (w..N).step_by(30) {
                kv(&mut client, put(&key(i), &format!("value-{i}")))
                    .await
                    .unwrap_or_else(|e| panic!("put {i}: {e}"));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut admin = c.client(1).await;
    for s in 1..10 {
        kv(&mut admin, split(&key(s * N / 10))).await.unwrap();
    }
    let ranges = c.ranges(0).await.unwrap();
    assert!(ranges.len() >= 10, "{} ranges", ranges.len());
    // Leases spread over the three nodes.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let holders: HashSet<u64> = c
            .ranges(0)
            .await
            .unwrap()
            .iter()
            .map(|r| r.leaseholder_node)
            .collect();
        if holders.contains(&1) && holders.contains(&2) && holders.contains(&3) {
            break;
        }
        assert!(Instant::now() < deadline, "leases not spread: {holders:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Every key from every node.
    for node in 0..3 {
        let mut tasks = Vec::new();
        for w in 0..16 {
            let mut client = c.client(node).await;
            tasks.push(tokio::spawn(async move {
                for i in (w..N).step_by(16) {
                    let v = kv(&mut client, get(&key(i))).await.unwrap();
                    assert_eq!(
                        v.value.as_deref(),
                        Some(format!("value-{i}").as_bytes()),
                        "node {node} key {i}"
                    );
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    // The CLI agrees.
    let out = c.cli(&["kv", "get", &key(4242), &format!("--host={}", c.addr(2))]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "value-4242");
    let out = c.cli(&["kv", "get", "nope", &format!("--host={}", c.addr(2))]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}

/// Writers that record every acknowledged write; each rotates to another
/// node when its node fails.
struct Writers {
    acked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    /// When each acknowledged write was sent (a write sent after a fault
    /// and acknowledged shows the cluster serving again).
    last_ok: Arc<Mutex<Vec<Instant>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Writers {
    async fn start(c: &TestCluster, n: usize, prefix: &'static str) -> Writers {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let last_ok = Arc::new(Mutex::new(Vec::new()));
        let addrs: Vec<String> = c.nodes.iter().map(|n| n.addr.clone()).collect();
        let mut tasks = Vec::new();
        for w in 0..n {
            let (acked, stop, last_ok, addrs) =
                (acked.clone(), stop.clone(), last_ok.clone(), addrs.clone());
            tasks.push(tokio::spawn(async move {
                let mut node = w % addrs.len();
                let mut seq = 0;
                let mut client = None;
                while !stop.load(Ordering::Relaxed) {
                    if client.is_none() {
                        client = harness::connect(&addrs[node]).await.ok();
                        if client.is_none() {
                            node = (node + 1) % addrs.len();
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    }
                    let k = format!("{prefix}/{w}/{seq:06}");
                    let invoked = Instant::now();
                    let res = tokio::time::timeout(
                        Duration::from_secs(5),
                        kv(client.as_mut().unwrap(), put(&k, "x")),
                    )
                    .await;
                    match res {
                        Ok(Ok(_)) => {
                            acked.lock().push(k);
                            last_ok.lock().push(invoked);
                            seq += 1;
                        }
                        _ => {
                            // Unknown outcome: never reuse the key; move on.
                            seq += 1;
                            client = None;
                            node = (node + 1) % addrs.len();
                        }
                    }
                }
            }));
        }
        Writers {
            acked,
            stop,
            last_ok,
            tasks,
        }
    }

    async fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        let v = self.acked.lock().clone();
        v
    }
}

async fn assert_all_present(c: &TestCluster, node: usize, keys: &[String]) {
    let mut client = c.client(node).await;
    let mut missing = Vec::new();
    for k in keys {
        match kv(&mut client, get(k)).await {
            Ok(r) if r.value.is_some() => {}
            other => missing.push(format!("{k}: {other:?}")),
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes missing, e.g. {:?}\n{}",
        missing.len(),
        keys.len(),
        &missing[..missing.len().min(5)],
        c.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_leaseholder_loses_no_acknowledged_write_and_it_catches_up() {
    let mut c = TestCluster::start(3).await;
    let writers = Writers::start(&c, 8, "w").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let victim = c.leaseholder_of(b"w/").await.expect("a leaseholder for w/");
    // Pin the lease on the victim (a lease that just moved stays put for a
    // few seconds), so the kill hits the node actually serving the writes.
    let mut admin = c.client((victim + 1) % 3).await;
    kv(&mut admin, transfer("w/", c.node_id(victim)))
        .await
        .expect("lease transfer to the victim");
    assert_eq!(
        c.leaseholder_of(b"w/").await,
        Some(victim),
        "victim lost the lease"
    );
    let before = writers.acked.lock().len();
    assert!(before > 0, "no writes before the kill\n{}", c.logs());
    let killed_at = Instant::now();
    c.kill(victim);
    // Writes resume within 10 s.
    let deadline = killed_at + Duration::from_secs(10);
    loop {
        let resumed = writers
            .last_ok
            .lock()
            .iter()
            .any(|t| *t > killed_at + Duration::from_millis(1));
        if resumed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes did not resume within 10s\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "writes resumed {:?} after kill -9",
        writers
            .last_ok
            .lock()
            .iter()
            .find(|t| **t > killed_at)
            .unwrap()
            .duration_since(killed_at)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let acked = writers.stop().await;
    eprintln!(
        "{} acknowledged writes ({before} before the kill)",
        acked.len()
    );
    let survivor = (0..3).find(|i| *i != victim).unwrap();
    assert_all_present(&c, survivor, &acked).await;

    // The killed node restarts, catches up, and serves reads once it holds
    // the lease again.
    c.restart(victim).await;
    let mut admin = c.client(survivor).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let res = kv(&mut admin, transfer("w/", c.node_id(victim))).await;
        let holder = c.leaseholder_of(b"w/").await;
        if res.is_ok() && holder == Some(victim) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lease never moved back: transfer {res:?}, holder {holder:?}, ranges {:?}\n{}",
            c.ranges(survivor).await,
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_all_present(&c, victim, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paused_leaseholder_never_serves_a_stale_read() {
    let c = TestCluster::start(3).await;
    let mut client = c.client(0).await;
    kv(&mut client, put("reg", "1")).await.unwrap();
    let lh = c.leaseholder_of(b"reg").await.expect("leaseholder");
    // Make sure the paused node holds a warm lease.
    let mut lh_client = c.client(lh).await;
    kv(&mut lh_client, get("reg")).await.unwrap();
    c.signal(lh, "STOP");
    let other = (lh + 1) % 3;
    let mut other_client = c.client(other).await;
    let mut acked = 1;
    let deadline = Instant::now() + Duration::from_secs(15);
    // Keep writing increasing values through the other nodes while paused
    // (longer than the election timeout).
    while Instant::now() < deadline && acked < 5 {
        if kv(&mut other_client, put("reg", &(acked + 1).to_string()))
            .await
            .is_ok()
        {
            acked += 1;
        }
    }
    assert!(
        acked >= 2,
        "no write succeeded while the leaseholder was paused\n{}",
        c.logs()
    );
    c.signal(lh, "CONT");
    // Every read, on every node, returns at least the last acknowledged value.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        for node in 0..3 {
            let mut cl = c.client(node).await;
            if let Ok(r) = kv(&mut cl, get("reg")).await {
                let v: u32 = String::from_utf8_lossy(r.value.as_deref().unwrap_or(b"0"))
                    .parse()
                    .unwrap();
                assert!(v >= acked, "stale read on node {}: {v} < {acked}", node + 1);
            }
        }
    }
}

/// Stops the node holding the writers' lease with `sig`: it hands its
/// leases over, finishes in-flight requests and exits 0, and no
/// acknowledged write is lost.
async fn graceful_stop_moves_leases_away(sig: &str) {
    let mut c = TestCluster::start(3).await;
    let mut admin = c.client(0).await;
    for s in ["a", "h", "p"] {
        kv(&mut admin, split(s)).await.unwrap();
    }
    // The writers' range is led by node index 2, the one that will leave.
    let leaving = 2;
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.leaseholder_of(b"t/").await != Some(leaving) {
        let _ = kv(&mut admin, transfer("t/", c.node_id(leaving))).await;
        assert!(
            Instant::now() < deadline,
            "lease never reached the node\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let writers = Writers::start(&c, 6, "t").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = c
        .stop_with(leaving, sig, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("node did not exit after SIG{sig}"));
    assert!(status.success(), "exit status {status:?}\n{}", c.logs());
    let stopped_at = Instant::now();
    // Writers go on: some write succeeds after the node left.
    let deadline = stopped_at + Duration::from_secs(10);
    while !writers.last_ok.lock().iter().any(|t| *t > stopped_at) {
        assert!(
            Instant::now() < deadline,
            "writes stalled after SIG{sig}\n{}",
            c.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let acked = writers.stop().await;
    assert!(!acked.is_empty());
    assert_all_present(&c, 0, &acked).await;
    let gone = c.node_id(leaving);
    for r in c.ranges(0).await.unwrap() {
        assert_ne!(r.leaseholder_node, gone, "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_moves_leases_away_and_exits_cleanly() {
    graceful_stop_moves_leases_away("TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ctrl_c_moves_leases_away_and_exits_cleanly() {
    graceful_stop_moves_leases_away("INT").await;
}

/// Leases follow the workload: the lease of a range read through one node
/// moves to that node (so its reads skip a network hop), and moves again
/// when the load comes from elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leases_follow_the_node_whose_clients_send_the_load() {
    let c = TestCluster::start(3).await;
    c.wait_replicated(3).await;
    let mut admin = c.client(0).await;
    kv(&mut admin, split("hot")).await.unwrap();
    kv(&mut admin, put("hot-key", "v")).await.unwrap();
    let first = c.leaseholder_of(b"hot-key").await.expect("a leaseholder");
    for gateway in [(first + 1) % 3, (first + 2) % 3] {
        let mut client = c.client(gateway).await;
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            for _ in 0..50 {
                let r = kv(&mut client, get("hot-key")).await.unwrap();
                assert_eq!(r.value.as_deref(), Some(&b"v"[..]));
            }
            if c.leaseholder_of(b"hot-key").await == Some(gateway) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the lease did not follow the load to node {}",
                c.node_id(gateway)
            );
        }
    }
}
