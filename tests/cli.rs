//! Runs the built `tessera` binary for the failures that need no cluster:
//! bad flags, missing flags, and a node that is not there. Each must end
//! with a non-zero exit and a one-line message, never a panic.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn tessera(args: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run tessera");
    (out, start.elapsed())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_one_line_error(o: &Output) {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "expected failure, got {:?}; stderr: {err}",
        o.status
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "stderr is not one line: {err:?}"
    );
    assert!(err.starts_with("error: "), "{err:?}");
    assert!(!err.contains("panicked"), "{err:?}");
}

#[test]
fn unknown_flag_is_named() {
    let (o, _) = tessera(&["--bogus"]);
    assert_one_line_error(&o);
    assert!(stderr(&o).contains("--bogus"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
}

#[test]
fn start_without_store_names_it() {
    let (o, _) = tessera(&[
        "start",
        "--listen-addr=127.0.0.1:0",
        "--http-addr=127.0.0.1:0",
    ]);
    assert_one_line_error(&o);
    assert!(stderr(&o).contains("--store"), "{}", stderr(&o));
}

#[test]
fn bad_duration_is_a_usage_error() {
    let (o, _) = tessera(&[
        "start",
        "--store=/nonexistent/never-created",
        "--listen-addr=127.0.0.1:0",
        "--http-addr=127.0.0.1:0",
        "--max-offset=fast",
    ]);
    assert_one_line_error(&o);
    assert!(stderr(&o).contains("--max-offset"), "{}", stderr(&o));
}

#[test]
fn kv_get_against_nothing_fails_quickly_with_one_line() {
    let (o, took) = tessera(&["kv", "get", "x", "--host=127.0.0.1:1"]);
    assert_one_line_error(&o);
    assert!(
        o.stdout.is_empty(),
        "stdout: {:?}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(stderr(&o).contains("127.0.0.1:1"), "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(1));
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn system_keys_are_refused_before_connecting() {
    let (o, _) = tessera(&["kv", "put", "\u{2}nodes/1", "v", "--host=127.0.0.1:1"]);
    assert_one_line_error(&o);
    assert!(stderr(&o).contains("reserved"), "{}", stderr(&o));
}
