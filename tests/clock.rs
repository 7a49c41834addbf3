//! Clock skew, with libfaketime: a node within the allowed offset keeps
//! serving correctly; a node off by more than --max-offset (250 ms) from the
//! majority stops itself with a clear log line instead of risking stale
//! reads.

mod harness;

use std::time::Duration;

use harness::{get, kv, put, TestCluster};

fn faketime_available() -> bool {
    std::path::Path::new(harness::FAKETIME_LIB).exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_a_skewed_clock_serves_within_the_bound_and_stops_beyond_it() {
    assert!(
        faketime_available(),
        "faketime is missing (Debian package `faketime`; .ci/run installs it)"
    );
    let mut c = TestCluster::start(3).await;
    let skewed = 2;

    // Half the max offset ahead: the node stays and serves.
    c.kill(skewed);
    c.restart_with_clock_offset(skewed, "+0.125s").await;
    c.wait_listening(skewed).await;
    let mut client = c.client(skewed).await;
    let mut ok = false;
    for i in 0..100 {
        if kv(&mut client, put("skew/k", &i.to_string())).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "skewed node could not write\n{}", c.logs());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        c.nodes[skewed]
            .child
            .as_mut()
            .unwrap()
            .try_wait()
            .unwrap()
            .is_none(),
        "node within the bound stopped\n{}",
        c.logs()
    );
    let v = kv(&mut c.client(0).await, get("skew/k")).await.unwrap();
    assert!(v.value.is_some());

    // Twice the max offset behind: the node stops itself, saying why.
    c.kill(skewed);
    c.restart_with_clock_offset(skewed, "-0.5s").await;
    let status = c
        .wait_exit(skewed, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("node with a 500ms clock offset kept running\n{}", c.logs()));
    assert!(!status.success());
    let log = std::fs::read_to_string(&c.nodes[skewed].log).unwrap();
    assert!(
        log.lines()
            .any(|l| l.starts_with("error:") && l.contains("clock offset")),
        "no clear error line in the log:\n{}",
        log.lines().rev().take(15).collect::<Vec<_>>().join("\n")
    );
    // The others are unaffected.
    kv(&mut c.client(0).await, put("skew/after", "1"))
        .await
        .unwrap();
}
