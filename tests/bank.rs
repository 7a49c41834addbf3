//! The bank test over SQL on a real three-process cluster: ten accounts
//! spread over five ranges whose leases sit on different nodes, eight
//! clients doing random transfers in explicit transactions while a nemesis
//! kill -9s and restarts a random node every 10 seconds. Every read-all
//! must see the exact total and no negative balance; the final total is
//! exact. `BANK_SECS` sets the duration (default 60). The workload is
//! `harness::bank`, shared with the clock-skew run of `tests/clock.rs`.

mod harness;

use std::time::{Duration, Instant};

use harness::bank::{create_accounts, Workload};
use harness::TestCluster;
use rand::Rng;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_keep_the_total_while_nodes_are_killed() {
    let secs: u64 = std::env::var("BANK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let mut c = TestCluster::start(3).await;
    let addrs: Vec<String> = c.nodes.iter().map(|n| n.sql.clone()).collect();
    create_accounts(&addrs, &[]).await;
    let workload = Workload::start(&addrs);

    // The nemesis: every 10 s, kill -9 a random node and restart it.
    let started = Instant::now();
    let mut kills = 0;
    while started.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(
            Duration::from_secs(10)
                .min(Duration::from_secs(secs).saturating_sub(started.elapsed())),
        )
        .await;
        if started.elapsed() >= Duration::from_secs(secs) {
            break;
        }
        let victim = rand::rng().random_range(0..3usize);
        c.kill(victim);
        kills += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
        c.restart(victim).await;
    }
    let stats = workload.finish().await;
    eprintln!("{secs}s, {kills} kills: {stats}");
}
