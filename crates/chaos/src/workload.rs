//! The register workload over the KV API (`register-kv`): concurrent clients doing read / write /
//! compare-and-set on a few keys through `Admin.ClientKv` (range 0: the
//! receiving node routes), each operation sent to a random node, every
//! invocation and completion recorded.
//!
//! Outcome rules (erring towards `info`, which only weakens the check):
//! a read that errs is `fail` (a read changes nothing, so fail and unknown
//! are equivalent); a cas answered `ConditionFailed` is `fail`; a write
//! answered `Unavailable { ambiguous: false }` is `fail`; any other error,
//! a transport error or a timeout is `info`. A connection that cannot be
//! established is not an operation at all (nothing was sent).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tessera_common::proto::admin_client::AdminClient;
use tessera_common::proto::{kv_error, kv_request, CPutRequest, GetRequest, KvRequest, PutRequest};
use tonic::transport::Channel;

use crate::cluster::connect;
use crate::history::{Call, Op, Outcome, Value};
use crate::txn::Txn;

/// Values written are drawn from `0..VALUES` (few values: cas succeeds often).
pub const VALUES: u64 = 5;

/// The key of register `k`.
pub fn register_key(k: usize) -> String {
    format!("chaos/reg/{k}")
}

/// Collects operations from every client, with one clock.
pub struct Recorder {
    start: Instant,
    ops: Mutex<Vec<Op>>,
    txns: Mutex<Vec<Txn>>,
    next_process: AtomicU64,
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            ops: Mutex::new(Vec::new()),
            txns: Mutex::new(Vec::new()),
            next_process: AtomicU64::new(0),
        }
    }

    /// Nanoseconds since the start.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// A fresh process id.
    pub fn process(&self) -> u64 {
        self.next_process.fetch_add(1, Ordering::Relaxed)
    }

    /// Records a completed register operation.
    pub fn push(&self, mut op: Op) {
        let mut ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        op.index = ops.len();
        ops.push(op);
    }

    /// The operations so far, in completion order.
    pub fn ops(&self) -> Vec<Op> {
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records a completed transaction.
    pub fn push_txn(&self, mut t: Txn) {
        let mut txns = self.txns.lock().unwrap_or_else(|e| e.into_inner());
        t.index = txns.len();
        txns.push(t);
    }

    /// The transactions so far, in completion order.
    pub fn txns(&self) -> Vec<Txn> {
        self.txns.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

/// Client settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Number of registers.
    pub keys: usize,
    /// Give up on an operation after this long (outcome `info`).
    pub op_timeout: Duration,
    /// Pause between two operations of one client, at most.
    pub think: Duration,
}

/// Runs one client until `stop` is set.
pub async fn run_client(
    seed: u64,
    addrs: Vec<String>,
    cfg: ClientConfig,
    rec: Arc<Recorder>,
    stop: Arc<AtomicBool>,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut conns: Vec<Option<AdminClient<Channel>>> = vec![None; addrs.len()];
    let mut process = rec.process();
    while !stop.load(Ordering::Relaxed) {
        let node = rng.random_range(0..addrs.len());
        if conns[node].is_none() {
            match tokio::time::timeout(Duration::from_secs(1), connect(&addrs[node])).await {
                Ok(Ok(c)) => conns[node] = Some(c),
                _ => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let Some(client) = conns[node].as_mut() else {
            continue;
        };
        let key = register_key(rng.random_range(0..cfg.keys));
        let call = match rng.random_range(0..3) {
            0 => Call::Read,
            1 => Call::Write {
                value: rng.random_range(0..VALUES),
            },
            _ => Call::Cas {
                expected: if rng.random_range(0..6) == 0 {
                    None
                } else {
                    Some(rng.random_range(0..VALUES))
                },
                new: rng.random_range(0..VALUES),
            },
        };
        let op = invoke(client, &rec, process, node, &key, call, cfg.op_timeout).await;
        if op.outcome == Outcome::Info {
            // The request may still be in flight: a new process id, and a
            // new connection.
            process = rec.process();
            conns[node] = None;
        } else if op
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("transport"))
        {
            conns[node] = None;
        }
        rec.push(op);
        if !cfg.think.is_zero() {
            let ms = rng.random_range(0..=cfg.think.as_millis() as u64);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }
}

/// Sends one operation and classifies its outcome.
pub async fn invoke(
    client: &mut AdminClient<Channel>,
    rec: &Recorder,
    process: u64,
    node: usize,
    key: &str,
    call: Call,
    timeout: Duration,
) -> Op {
    let op = match call {
        // A plain (non-transactional, latest) read; other fields default.
        #[allow(clippy::needless_update)]
        Call::Read => kv_request::Op::Get(GetRequest {
            key: key.as_bytes().to_vec(),
            ..Default::default()
        }),
        Call::Write { value } => kv_request::Op::Put(PutRequest {
            key: key.as_bytes().to_vec(),
            value: value.to_string().into_bytes(),
        }),
        Call::Cas { expected, new } => kv_request::Op::Cput(CPutRequest {
            key: key.as_bytes().to_vec(),
            value: new.to_string().into_bytes(),
            expected: expected.map(|v| v.to_string().into_bytes()),
        }),
    };
    let req = KvRequest {
        range_id: 0,
        timestamp: None,
        op: Some(op),
        ..Default::default()
    };
    let invoke_ns = rec.now_ns();
    let res = tokio::time::timeout(timeout, client.client_kv(req)).await;
    let complete_ns = rec.now_ns();
    let is_read = call == Call::Read;
    let unknown = if is_read {
        Outcome::Fail
    } else {
        Outcome::Info
    };
    let (outcome, read, error) = match res {
        Err(_) => (unknown, None, Some("timeout".to_string())),
        Ok(Err(status)) => (
            unknown,
            None,
            Some(format!("transport: {}", status.message())),
        ),
        Ok(Ok(resp)) => {
            let resp = resp.into_inner();
            match resp.error.and_then(|e| e.kind) {
                None if is_read => {
                    let (v, err) = parse_value(resp.value.as_deref());
                    (Outcome::Ok, Some(v), err)
                }
                None => (Outcome::Ok, None, None),
                Some(kv_error::Kind::ConditionFailed(c)) if matches!(call, Call::Cas { .. }) => (
                    Outcome::Fail,
                    None,
                    Some(format!(
                        "condition failed (actual {})",
                        c.actual
                            .as_deref()
                            .map(|a| String::from_utf8_lossy(a).into_owned())
                            .unwrap_or_else(|| "nil".into())
                    )),
                ),
                Some(kv_error::Kind::Unavailable(u)) if !u.ambiguous => (
                    Outcome::Fail,
                    None,
                    Some(format!("unavailable: {}", u.reason)),
                ),
                Some(k) => (unknown, None, Some(format!("{k:?}"))),
            }
        }
    };
    Op {
        index: 0,
        process,
        key: key.to_string(),
        call,
        outcome,
        read,
        invoke_ns,
        complete_ns,
        node: node + 1,
        error,
    }
}

/// A stored register value; garbage (never written by this workload) maps
/// to `u64::MAX`, which no write produces, so the checker flags it.
fn parse_value(v: Option<&[u8]>) -> (Value, Option<String>) {
    match v {
        None => (None, None),
        Some(b) => match std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()) {
            Some(n) => (Some(n), None),
            None => (
                Some(u64::MAX),
                Some(format!("unexpected value {:?}", String::from_utf8_lossy(b))),
            ),
        },
    }
}

/// Reads every register once, after the faults healed, retrying each
/// (through every node in turn) until it succeeds or `timeout` passes.
/// Returns the reads that succeeded and the keys that never could be read.
pub async fn final_reads(
    addrs: &[String],
    keys: usize,
    rec: &Recorder,
    timeout: Duration,
) -> Vec<String> {
    let mut unread = Vec::new();
    let process = rec.process();
    for k in 0..keys {
        let key = register_key(k);
        let deadline = Instant::now() + timeout;
        let mut node = k % addrs.len();
        let mut done = false;
        while Instant::now() < deadline && !done {
            if let Ok(Ok(mut c)) =
                tokio::time::timeout(Duration::from_secs(2), connect(&addrs[node])).await
            {
                let op = invoke(
                    &mut c,
                    rec,
                    process,
                    node,
                    &key,
                    Call::Read,
                    Duration::from_secs(5),
                )
                .await;
                done = op.outcome == Outcome::Ok;
                rec.push(op);
            }
            if !done {
                node = (node + 1) % addrs.len();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        if !done {
            unread.push(key);
        }
    }
    unread
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_and_garbage_is_flagged() {
        assert_eq!(parse_value(None), (None, None));
        assert_eq!(parse_value(Some(b"3")), (Some(3), None));
        let (v, e) = parse_value(Some(b"x\xff"));
        assert_eq!(v, Some(u64::MAX));
        assert!(e.is_some());
    }
}
