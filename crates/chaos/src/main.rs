//! The `tessera-chaos` binary: parses the command line, runs one chaos run
//! (or re-checks a saved history) and prints one line ending in PASS or
//! FAIL; exit 0 on PASS, 1 on FAIL, 2 on a setup error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tessera_chaos::history::read_history;
use tessera_chaos::linear;
use tessera_chaos::nemesis::Kind;
use tessera_chaos::run::{self, Config, Workload};
use tessera_chaos::txn::read_txns;

/// Run a Jepsen-style workload against a cluster of real `tessera`
/// processes under faults, and check the history.
#[derive(Parser, Debug)]
#[command(name = "tessera-chaos")]
struct Args {
    /// The workload.
    #[arg(long, value_enum, default_value_t = Workload::Register)]
    workload: Workload,
    /// The faults.
    #[arg(long, value_enum, default_value_t = Kind::None)]
    nemesis: Kind,
    /// How long the clients run (e.g. 30s, 2m).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    time: Duration,
    /// Processes in the cluster.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=9))]
    nodes: u32,
    /// Concurrent clients.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=200))]
    clients: u32,
    /// Registers, bank accounts or lists (keys).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    keys: u32,
    /// Client operation timeout; a timed-out write has an unknown outcome.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    op_timeout: Duration,
    /// Max pause between two operations of one client.
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    think: Duration,
    /// The `tessera` binary [default: next to this one, else target/debug/tessera].
    #[arg(long, value_name = "PATH")]
    bin: Option<PathBuf>,
    /// Run folder [default: target/chaos/<time>-<workload>-<nemesis>].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Seed of the clients' and the nemesis' random choices [default: random].
    #[arg(long)]
    seed: Option<u64>,
    /// Checker: give up on a key after this many configurations.
    #[arg(long, default_value_t = linear::DEFAULT_LIMIT)]
    limit: usize,
    /// Start the nodes with a known bug (e.g. stale-follower-read): the run
    /// must then FAIL, showing the checker catches it.
    #[arg(long, value_name = "BUG")]
    inject_bug: Option<String>,
    /// Only check a saved history.jsonl of --workload (no cluster).
    #[arg(long, value_name = "FILE")]
    check: Option<PathBuf>,
}

/// `30s`, `2m`, `500ms`, `1h` or plain seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("bad duration {s:?} (use e.g. 30s, 2m, 500ms)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("bad duration unit in {s:?} (ms, s, m, h)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("bad duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `tessera` next to this executable, else `target/debug/tessera`.
fn default_bin() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let p = dir.join("tessera");
            if p.is_file() {
                return p;
            }
        }
    }
    PathBuf::from("target/debug/tessera")
}

fn check_only(path: &Path, workload: Workload, keys: usize, limit: usize) -> ExitCode {
    let checked = if workload.is_register() {
        read_history(path).map(|ops| run::check_ops(&ops, limit))
    } else {
        read_txns(path).map(|txns| run::check_txns(workload, &txns, keys))
    };
    let checked = match checked {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{}", checked.text);
    let pass = checked.problems.is_empty();
    let (n, ok, fail, info) = checked.counts;
    println!(
        "check {} {} ops={n} (ok {ok}, fail {fail}, info {info}) {} anomalies={}{} {}",
        workload.name(),
        path.display(),
        checked.stats,
        checked.anomalies,
        if pass {
            String::new()
        } else {
            format!(" [{}]", checked.problems.join("; "))
        },
        if pass { "PASS" } else { "FAIL" }
    );
    if pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = &args.check {
        return check_only(path, args.workload, args.keys as usize, args.limit);
    }
    if let Some(bug) = &args.inject_bug {
        // Read by the cluster when it spawns nodes. Set before any thread
        // starts, so no one reads the environment concurrently.
        std::env::set_var(tessera_chaos::cluster::INJECT_BUG_ENV, bug);
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let out = args.out.clone().unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        PathBuf::from(format!(
            "target/chaos/{t}-{}-{}-{seed}",
            args.workload.name(),
            args.nemesis.name()
        ))
    });
    let cfg = Config {
        workload: args.workload,
        bin: args.bin.clone().unwrap_or_else(default_bin),
        out,
        nemesis: args.nemesis,
        time: args.time,
        nodes: args.nodes as usize,
        clients: args.clients as usize,
        keys: args.keys as usize,
        op_timeout: args.op_timeout,
        think: args.think,
        seed,
        limit: args.limit,
    };
    if !cfg.bin.is_file() {
        eprintln!(
            "error: no tessera binary at {} (build it with `cargo build -p tessera`, or pass --bin)",
            cfg.bin.display()
        );
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run::run(&cfg)) {
        Ok(r) => {
            println!("{}", r.summary);
            if r.pass {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            println!(
                "{} nemesis={} out={} [setup failed: {e}] FAIL",
                cfg.workload.name(),
                cfg.nemesis.name(),
                cfg.out.display()
            );
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("12"), Ok(Duration::from_secs(12)));
        assert!(parse_duration("3x").is_err());
        assert!(parse_duration("").is_err());
    }
}
