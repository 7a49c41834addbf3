//! Runs sqllogictest files against a real 3-node cluster (`tessera demo`,
//! one fresh cluster per file) through `scripts/slt.sh`, and fails if any
//! file fails.
//!
//! By default it runs the CI subset vendored in `tests/slt/` (files of the
//! peer corpus, with their licenses; see `tests/slt/SOURCES.md`). With
//! `SLT_CORPUS=DIR` it runs every `*.slt` of DIR instead, and with
//! `SLT_FILES="a.slt b.slt"` only those files (paths relative to the
//! corpus folder).
//!
//! The runner is `sqllogictest-bin` 0.29.1. It is looked up in `SLT_BIN`,
//! then `$TESSERA_SLT_ROOT/bin` (default `~/.cache/tessera-slt/bin`),
//! `/tmp/slt/bin`, then `PATH`; if none has it, the test installs it with
//! `cargo install --root $TESSERA_SLT_ROOT` (needs network once; later runs
//! reuse it). `psql` must be on PATH (the script waits for the cluster
//! with it). `SLT_SKIP=1` skips the test.

use std::path::{Path, PathBuf};
use std::process::Command;

const RUNNER_VERSION: &str = "0.29.1";

fn runner_works(p: &Path) -> bool {
    Command::new(p)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Finds the sqllogictest runner, installing it into a cache if needed.
fn runner() -> PathBuf {
    if let Ok(p) = std::env::var("SLT_BIN") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/tmp".into());
    let root = std::env::var("TESSERA_SLT_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(&home).join(".cache/tessera-slt"));
    let cached = root.join("bin/sqllogictest");
    for p in [cached.clone(), PathBuf::from("/tmp/slt/bin/sqllogictest")] {
        if runner_works(&p) {
            return p;
        }
    }
    if runner_works(Path::new("sqllogictest")) {
        return PathBuf::from("sqllogictest");
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["install", "--locked", "sqllogictest-bin", "--version"])
        .arg(RUNNER_VERSION)
        .arg("--root")
        .arg(&root)
        // Its own target dir: never the one this test runs from.
        .env("CARGO_TARGET_DIR", root.join("target"))
        .status()
        .expect("run cargo install sqllogictest-bin");
    assert!(status.success(), "cargo install sqllogictest-bin failed");
    let _ = std::fs::remove_dir_all(root.join("target"));
    assert!(runner_works(&cached), "installed runner does not run");
    cached
}

#[test]
fn sqllogictest_files_pass_on_a_three_node_cluster() {
    if std::env::var("SLT_SKIP").is_ok_and(|v| v == "1") {
        eprintln!("SLT_SKIP=1: skipped");
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = std::env::var("SLT_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo.join("tests/slt"));
    let mut files: Vec<PathBuf> = match std::env::var("SLT_FILES") {
        Ok(list) => list.split_whitespace().map(|f| corpus.join(f)).collect(),
        Err(_) => std::fs::read_dir(&corpus)
            .unwrap_or_else(|e| panic!("{}: {e}", corpus.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "slt"))
            .collect(),
    };
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", corpus.display());
    let bin = runner();
    let out = Command::new(repo.join("scripts/slt.sh"))
        .args(&files)
        .env("TESSERA_BIN", env!("CARGO_BIN_EXE_tessera"))
        .env("SLT_BIN", &bin)
        .env("SLT_VERBOSE", "1")
        .output()
        .expect("run scripts/slt.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "sqllogictest files failed:\n{}",
        stdout
            .lines()
            .filter(|l| l.starts_with("FAIL"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
