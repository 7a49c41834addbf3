//! Short chaos runs of the register workloads against the real `tessera`
//! binary: over the KV API with the kill and pause nemeses, over SQL with
//! network partitions (nodes reach each other only through the harness's
//! proxies, via `tessera start --dial-override`); each must PASS. The
//! whole workload x nemesis matrix runs from `scripts/chaos`.
//!
//! The `tessera` binary is taken from next to `tessera-chaos` in the target
//! folder (`cargo test --workspace` builds it); if it is missing, it is
//! built with `cargo build -p tessera --bin tessera` first. The runs go one
//! after another (two cores; elections are timing-sensitive), and a failing
//! run keeps its folder (history, node logs, verdict) and prints its path.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// One run at a time within this test binary.
static SERIAL: Mutex<()> = Mutex::new(());

fn tessera_bin() -> PathBuf {
    let chaos = PathBuf::from(env!("CARGO_BIN_EXE_tessera-chaos"));
    let bin = chaos.with_file_name("tessera");
    if !bin.is_file() {
        eprintln!("{} is missing: building it", bin.display());
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "tessera", "--bin", "tessera"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build -p tessera");
        assert!(status.success(), "cargo build -p tessera failed");
    }
    assert!(
        bin.is_file(),
        "no tessera binary at {} even after building it",
        bin.display()
    );
    bin
}

fn run(workload: &str, nemesis: &str, seconds: u32) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bin = tessera_bin();
    let dir = tempfile::Builder::new()
        .prefix(&format!("chaos-{workload}-{nemesis}-"))
        .tempdir()
        .expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_tessera-chaos"))
        .args(["--workload", workload, "--nemesis", nemesis])
        .arg(format!("--time={seconds}s"))
        .args(["--nodes", "3", "--clients", "10", "--keys", "5"])
        .arg(format!("--bin={}", bin.display()))
        .arg(format!("--out={}", dir.path().display()))
        .output()
        .expect("run tessera-chaos");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default().to_string();
    println!("{last}");
    if out.status.success() && last.ends_with(" PASS") {
        return;
    }
    let kept = dir.keep();
    let verdict = std::fs::read_to_string(kept.join("verdict.txt")).unwrap_or_default();
    let nemesis_log = std::fs::read_to_string(kept.join("nemesis.log")).unwrap_or_default();
    panic!(
        "chaos run failed ({}): {last}\nstderr: {}\nnemesis:\n{nemesis_log}\nverdict:\n{verdict}\nrun folder kept: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        kept.display()
    );
}

#[test]
fn register_under_kill_is_linearizable() {
    run("register-kv", "kill", 12);
}

#[test]
fn register_under_pause_is_linearizable() {
    run("register-kv", "pause", 12);
}

#[test]
fn sql_register_under_partitions_is_linearizable() {
    run("register", "partition", 15);
}

/// The checker must not be a rubber stamp: nodes that answer reads from
/// their own replica without a lease (an injected bug) must fail the run.
#[test]
fn injected_stale_follower_reads_are_caught() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bin = tessera_bin();
    let dir = tempfile::Builder::new()
        .prefix("chaos-register-bug-")
        .tempdir()
        .expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_tessera-chaos"))
        .args([
            "--workload",
            "register-kv",
            "--nemesis",
            "none",
            "--time=8s",
        ])
        .args(["--inject-bug", "stale-follower-read"])
        .arg(format!("--bin={}", bin.display()))
        .arg(format!("--out={}", dir.path().display()))
        .output()
        .expect("run tessera-chaos");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        !out.status.success() && last.ends_with(" FAIL") && last.contains("not linearizable"),
        "the injected bug went unnoticed: {last}"
    );
}
