//! Misuse of `tessera start`/`init` gets a one-line error naming the
//! problem and a non-zero exit: never a panic, never a hang.

mod harness;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use harness::{free_port, TestCluster, BIN};

/// Runs `tessera args...`, killing it if it runs longer than `timeout`.
fn run_with_timeout(args: &[String], timeout: Duration) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "tessera {args:?} hung for {timeout:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_clean_error(out: &Output, must_contain: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let error_lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert!(
        error_lines
            .iter()
            .any(|l| l.to_lowercase().contains(must_contain)),
        "no one-line error mentioning {must_contain:?} in: {stderr}"
    );
}

fn start_args(store: &std::path::Path, join: Option<&str>) -> Vec<String> {
    let mut v = vec![
        "start".to_string(),
        format!("--store={}", store.display()),
        format!("--listen-addr=127.0.0.1:{}", free_port()),
        format!("--http-addr=127.0.0.1:{}", free_port()),
    ];
    if let Some(j) = join {
        v.push(format!("--join={j}"));
    }
    v
}

#[test]
fn unknown_flag_is_named() {
    let out = run_with_timeout(
        &["start".into(), "--bogus-flag=1".into()],
        Duration::from_secs(10),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bogus-flag"));
}

#[test]
fn joining_an_unreachable_address_fails_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("127.0.0.1:{}", free_port());
    let out = run_with_timeout(
        &start_args(&dir.path().join("s"), Some(&dead)),
        Duration::from_secs(40),
    );
    assert_clean_error(&out, &dead);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_in_use_init_twice_and_foreign_store_are_refused() {
    let c = TestCluster::start(1).await;

    // The running node's store directory is locked.
    let out = run_with_timeout(
        &start_args(&c.nodes[0].store, None),
        Duration::from_secs(20),
    );
    assert_clean_error(&out, "in use");

    // A second init is refused.
    let out = c.cli(&["init", &format!("--host={}", c.addr(0))]);
    assert_clean_error(&out, "already");

    // A store initialized by another cluster cannot join this one.
    let other = TestCluster::start_another(1).await;
    let mut other = other;
    other.kill(0);
    let args = start_args(&other.nodes[0].store, Some(c.addr(0)));
    let out = run_with_timeout(&args, Duration::from_secs(40));
    assert_clean_error(&out, "cluster");
}
