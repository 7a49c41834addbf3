//! `tessera workload kv`: a closed-loop load generator. N client tasks, each
//! with its own connection (round-robin over the given hosts), send one
//! `ClientKv` put or get at a time for the configured duration after a 1 s
//! warm-up, and report throughput and latency percentiles.
//!
//! Nothing is retried: a failed operation counts as an error (and the task
//! pauses 10 ms so that a dead node does not turn the loop into a busy
//! spin). An operation still in flight when the time is up counts neither
//! way. Latencies are of successful operations only.

use std::time::Duration;

use rand::distr::Alphanumeric;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tessera_common::proto::kv_request::Op;
use tessera_common::proto::{GetRequest, KvRequest, PutRequest};
use tokio::time::Instant;

use super::client::{connect, describe_kv_error, describe_status};
use super::{out, CliError, Result};

/// Operations before this much time has passed are not measured.
pub const WARM_UP: Duration = Duration::from_secs(1);
const ERROR_PAUSE: Duration = Duration::from_millis(10);

#[derive(Debug, Clone)]
pub struct KvWorkload {
    pub hosts: Vec<String>,
    pub concurrency: usize,
    pub duration: Duration,
    pub value_size: usize,
    pub read_percent: u32,
    pub keys: u64,
}

/// What one client task saw during the measured window.
#[derive(Debug, Default)]
struct WorkerStats {
    latencies_ns: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

/// The summary printed at the end.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub ops: u64,
    pub ops_per_sec: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub errors: u64,
}

/// The nearest-rank percentile `p` (0..=100) of ascending `sorted` values:
/// the smallest value such that at least p% of all values are <= it.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, n) - 1])
}

/// Sorts the latencies and summarizes a run over `window`.
pub fn summarize(mut latencies_ns: Vec<u64>, errors: u64, window: Duration) -> Summary {
    latencies_ns.sort_unstable();
    let ms = |ns: u64| ns as f64 / 1e6;
    let ops = latencies_ns.len() as u64;
    Summary {
        ops,
        ops_per_sec: if window.is_zero() {
            0.0
        } else {
            ops as f64 / window.as_secs_f64()
        },
        p50_ms: percentile(&latencies_ns, 50.0).map(ms),
        p99_ms: percentile(&latencies_ns, 99.0).map(ms),
        errors,
    }
}

impl Summary {
    /// `ops=... ops_per_sec=... p50_ms=... p99_ms=... errors=...`
    pub fn machine_line(&self) -> String {
        let p = |v: Option<f64>| v.map_or("nan".to_string(), |v| format!("{v:.3}"));
        format!(
            "ops={} ops_per_sec={:.1} p50_ms={} p99_ms={} errors={}",
            self.ops,
            self.ops_per_sec,
            p(self.p50_ms),
            p(self.p99_ms),
            self.errors
        )
    }
}

pub async fn run_kv(w: KvWorkload) -> Result<()> {
    if w.hosts.is_empty() {
        return Err("workload kv: no --host given".into());
    }
    eprintln!(
        "workload kv: {} clients over {} host(s) for {} after a {}s warm-up...",
        w.concurrency,
        w.hosts.len(),
        super::duration::format_duration(w.duration),
        WARM_UP.as_secs()
    );
    // Connect every client first, so that connection setup is not measured.
    let mut clients = Vec::with_capacity(w.concurrency);
    for i in 0..w.concurrency {
        let host = w.hosts[i % w.hosts.len()].clone();
        let client = connect(&host).await?;
        clients.push((host, client));
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let warm_end = Instant::now() + WARM_UP;
    let end = warm_end + w.duration;
    let mut tasks = Vec::with_capacity(w.concurrency);
    for (i, (host, mut client)) in clients.into_iter().enumerate() {
        let w = w.clone();
        let mut rng =
            SmallRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        tasks.push(tokio::spawn(async move {
            let mut stats = WorkerStats::default();
            loop {
                let start = Instant::now();
                if start >= end {
                    break;
                }
                let key = format!("wl/{}", rng.random_range(0..w.keys)).into_bytes();
                let op = if rng.random_range(0..100) < w.read_percent {
                    Op::Get(GetRequest {
                        key,
                        ..Default::default()
                    })
                } else {
                    let value: Vec<u8> = (&mut rng)
                        .sample_iter(Alphanumeric)
                        .take(w.value_size)
                        .collect();
                    Op::Put(PutRequest { key, value })
                };
                let req = KvRequest {
                    range_id: 0,
                    timestamp: None,
                    op: Some(op),
                    ..Default::default()
                };
                let res = tokio::time::timeout_at(end, client.client_kv(req)).await;
                let elapsed = start.elapsed();
                let measured = start >= warm_end;
                let err = match res {
                    Err(_) => break, // in flight when the time ran out
                    Ok(Ok(resp)) => match &resp.get_ref().error {
                        None => {
                            if measured {
                                stats.latencies_ns.push(elapsed.as_nanos() as u64);
                            }
                            continue;
                        }
                        Some(e) => describe_kv_error(e),
                    },
                    Ok(Err(status)) => describe_status(&host, &status),
                };
                if measured {
                    stats.errors += 1;
                    stats.first_error.get_or_insert(err);
                }
                tokio::time::sleep(ERROR_PAUSE).await;
            }
            stats
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for t in tasks {
        let s = t
            .await
            .map_err(|e| CliError::new(format!("workload client failed: {e}")))?;
        latencies.extend(s.latencies_ns);
        errors += s.errors;
        if first_error.is_none() {
            first_error = s.first_error;
        }
    }
    let sum = summarize(latencies, errors, w.duration);
    let human = format!(
        "{} ops in {:.1}s: {:.1} ops/s, latency p50 {} p99 {}, {} errors ({} clients, {}% reads, {}-byte values, {} keys)",
        sum.ops,
        w.duration.as_secs_f64(),
        sum.ops_per_sec,
        sum.p50_ms.map_or("-".into(), |v| format!("{v:.2}ms")),
        sum.p99_ms.map_or("-".into(), |v| format!("{v:.2}ms")),
        sum.errors,
        w.concurrency,
        w.read_percent,
        w.value_size,
        w.keys
    );
    out(&format!("{}\n{human}\n", sum.machine_line()))?;
    if let Some(e) = &first_error {
        eprintln!("first error: {e}");
    }
    if sum.ops == 0 && sum.errors > 0 {
        return Err(CliError::new(format!(
            "no operation succeeded ({} errors; first: {})",
            sum.errors,
            first_error.unwrap_or_default()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&v, 99.5), Some(100));
        assert_eq!(percentile(&[7], 50.0), Some(7));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
        // Ten values: p50 is the 5th, p99 the 10th.
        let v: Vec<u64> = (10..20).collect();
        assert_eq!(percentile(&v, 50.0), Some(14));
        assert_eq!(percentile(&v, 99.0), Some(19));
    }

    #[test]
    fn summary_sorts_and_formats() {
        let lat = vec![3_000_000, 1_000_000, 2_000_000, 4_000_000];
        let s = summarize(lat, 2, Duration::from_secs(2));
        assert_eq!(s.ops, 4);
        assert_eq!(s.ops_per_sec, 2.0);
        assert_eq!(s.p50_ms, Some(2.0));
        assert_eq!(s.p99_ms, Some(4.0));
        assert_eq!(
            s.machine_line(),
            "ops=4 ops_per_sec=2.0 p50_ms=2.000 p99_ms=4.000 errors=2"
        );
        let empty = summarize(vec![], 5, Duration::from_secs(1));
        assert_eq!(
            empty.machine_line(),
            "ops=0 ops_per_sec=0.0 p50_ms=nan p99_ms=nan errors=5"
        );
    }
}
