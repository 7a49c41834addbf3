//! A cluster of real `tessera` processes on 127.0.0.1 for tests: start,
//! init, kill -9, SIGSTOP/SIGCONT, SIGTERM, restart (also with a skewed
//! clock); and a gRPC client to drive them. [`sql`] has SQL client helpers,
//! [`bank`] the bank workload.

#![allow(dead_code)]

pub mod bank;
pub mod sql;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tessera_common::proto::admin_client::AdminClient;
use tessera_common::proto::{
    kv_error, kv_request, KvRequest, KvResponse, NodeStatusRequest, RangeInfo, RangesRequest,
};
use tonic::transport::Channel;

pub const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// libfaketime (Debian package `faketime`).
pub const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// A free TCP port on 127.0.0.1 (bound then released), never one this
/// process handed out before: the OS may offer a just-released port again,
/// and two nodes of one cluster must not be given the same one.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

pub struct TestNode {
    pub index: usize,
    pub addr: String,
    pub http: String,
    pub sql: String,
    pub store: PathBuf,
    pub log: PathBuf,
    pub child: Option<Child>,
    pub join: Vec<String>,
    /// Extra environment (e.g. libfaketime's LD_PRELOAD and FAKETIME).
    pub env: Vec<(String, String)>,
}

impl TestNode {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("node is running").id()
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut cmd = Command::new(BIN);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.arg("start")
            .arg(format!("--store={}", self.store.display()))
            .arg(format!("--listen-addr={}", self.addr))
            .arg(format!("--http-addr={}", self.http))
            .arg(format!("--sql-addr={}", self.sql));
        if !self.join.is_empty() {
            cmd.arg(format!("--join={}", self.join.join(",")));
        }
        let filter = std::env::var("TESSERA_TEST_LOG").unwrap_or_else(|_| "info,raft=warn".into());
        cmd.env("RUST_LOG", filter)
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log));
        self.child = Some(cmd.spawn().expect("spawn tessera"));
    }
}

/// One cluster at a time per test binary: the machine has two cores and
/// elections are timing-sensitive.
static SLOT: std::sync::OnceLock<std::sync::Arc<tokio::sync::Semaphore>> =
    std::sync::OnceLock::new();

pub struct TestCluster {
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
    pub dir: tempfile::TempDir,
    pub nodes: Vec<TestNode>,
    /// Node id of each process (ids are assigned in join order).
    pub ids: Vec<u64>,
}

impl TestCluster {
    /// Starts `n` nodes that join each other, initializes the cluster and
    /// waits until every range has `min(n, 3)` voters.
    pub async fn start(n: usize) -> TestCluster {
        let slot = SLOT
            .get_or_init(|| std::sync::Arc::new(tokio::sync::Semaphore::new(1)))
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore");
        Self::start_in_slot(n, Some(slot)).await
    }

    /// Starts a second cluster inside a test that already holds one.
    pub async fn start_another(n: usize) -> TestCluster {
        Self::start_in_slot(n, None).await
    }

    async fn start_in_slot(
        n: usize,
        slot: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> TestCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let addrs: Vec<String> = (0..n)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let mut nodes = Vec::new();
        for i in 0..n {
            let mut node = TestNode {
                index: i,
                addr: addrs[i].clone(),
                http: format!("127.0.0.1:{}", free_port()),
                sql: format!("127.0.0.1:{}", free_port()),
                store: dir.path().join(format!("n{}", i + 1)),
                log: dir.path().join(format!("n{}.log", i + 1)),
                child: None,
                join: addrs.iter().filter(|a| **a != addrs[i]).cloned().collect(),
                env: Vec::new(),
            };
            node.spawn();
            nodes.push(node);
        }
        let mut c = TestCluster {
            _slot: slot,
            dir,
            nodes,
            ids: vec![0; n],
        };
        c.wait_listening(0).await;
        let out = c.cli(&["init", &format!("--host={}", c.nodes[0].addr)]);
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        c.wait_replicated(n.min(3)).await;
        for i in 0..n {
            c.ids[i] = c.fetch_node_id(i).await;
        }
        c
    }

    async fn fetch_node_id(&self, i: usize) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut cl) = connect(&self.nodes[i].addr).await {
                if let Ok(st) = cl.node_status(NodeStatusRequest {}).await {
                    let id = st.into_inner().node_id;
                    if id != 0 {
                        return id;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "node {} has no id\n{}",
                i + 1,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Node id of process `i`.
    pub fn node_id(&self, i: usize) -> u64 {
        self.ids[i]
    }

    /// Process index of node id `id`.
    pub fn index_of(&self, id: u64) -> Option<usize> {
        self.ids.iter().position(|x| *x == id)
    }

    pub fn addr(&self, i: usize) -> &str {
        &self.nodes[i].addr
    }

    pub fn logs(&self) -> String {
        let mut s = String::new();
        for n in &self.nodes {
            let text = std::fs::read_to_string(&n.log).unwrap_or_default();
            let keep = std::env::var("TESSERA_TEST_LOG_LINES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(40);
            let tail: Vec<&str> = text.lines().rev().take(keep).collect();
            s.push_str(&format!("==== node {} ({}) ====\n", n.index + 1, n.addr));
            for l in tail.into_iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }

    /// Runs the CLI with `args`.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN).args(args).output().expect("run tessera")
    }

    pub async fn wait_listening(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if tokio::net::TcpStream::connect(&self.nodes[i].addr)
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("node {} never listened\n{}", i + 1, self.logs());
    }

    /// Waits until every range has `voters` voting replicas.
    pub async fn wait_replicated(&self, voters: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut last = String::new();
        while Instant::now() < deadline {
            for i in 0..self.nodes.len() {
                if self.nodes[i].child.is_none() {
                    continue;
                }
                match self.ranges(i).await {
                    Ok(r) if !r.is_empty() && r.iter().all(|r| voter_count(r) >= voters) => return,
                    Ok(r) => last = format!("{r:?}"),
                    Err(e) => last = e,
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "ranges never reached {voters} voters: {last}\n{}",
            self.logs()
        );
    }

    pub async fn client(&self, i: usize) -> AdminClient<Channel> {
        connect(&self.nodes[i].addr).await.expect("connect")
    }

    pub async fn ranges(&self, i: usize) -> Result<Vec<RangeInfo>, String> {
        let mut c = connect(&self.nodes[i].addr).await?;
        c.ranges(RangesRequest {})
            .await
            .map(|r| r.into_inner().ranges)
            .map_err(|e| e.to_string())
    }

    pub async fn live_nodes(&self, i: usize) -> Result<usize, String> {
        let mut c = connect(&self.nodes[i].addr).await?;
        let st = c
            .node_status(NodeStatusRequest {})
            .await
            .map_err(|e| e.to_string())?
            .into_inner();
        Ok(st.nodes.iter().filter(|n| n.live).count())
    }

    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn signal(&self, i: usize, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.nodes[i].pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self, i: usize, timeout: Duration) -> Option<ExitStatus> {
        self.stop_with(i, "TERM", timeout)
    }

    /// Sends `sig` (TERM, INT) and waits for the process to exit.
    pub fn stop_with(&mut self, i: usize, sig: &str, timeout: Duration) -> Option<ExitStatus> {
        self.signal(i, sig);
        let deadline = Instant::now() + timeout;
        let child = self.nodes[i].child.as_mut().expect("running");
        while Instant::now() < deadline {
            if let Ok(Some(st)) = child.try_wait() {
                self.nodes[i].child = None;
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Restarts node `i` with its wall clock shifted by `offset` (a
    /// libfaketime offset such as `+0.5s`); monotonic time is left alone.
    pub async fn restart_with_clock_offset(&mut self, i: usize, offset: &str) {
        self.nodes[i].env = vec![
            ("LD_PRELOAD".into(), FAKETIME_LIB.into()),
            ("FAKETIME".into(), offset.into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
        ];
        self.nodes[i].spawn();
    }

    /// Waits up to `timeout` for node `i` to exit on its own.
    pub fn wait_exit(&mut self, i: usize, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.nodes[i].child.as_mut().expect("running");
        while Instant::now() < deadline {
            if let Ok(Some(st)) = child.try_wait() {
                self.nodes[i].child = None;
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    pub async fn restart(&mut self, i: usize) {
        self.nodes[i].spawn();
        self.wait_listening(i).await;
    }

    /// The node index holding the lease of the range containing `key`,
    /// as reported by `Admin.Ranges`.
    pub async fn leaseholder_of(&self, key: &[u8]) -> Option<usize> {
        for i in 0..self.nodes.len() {
            if self.nodes[i].child.is_none() {
                continue;
            }
            if let Ok(ranges) = self.ranges(i).await {
                for r in ranges {
                    let d = r.descriptor.clone().unwrap_or_default();
                    if d.start_key.as_slice() <= key && key < d.end_key.as_slice() {
                        return self.index_of(r.leaseholder_node);
                    }
                }
            }
        }
        None
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = Command::new("kill")
                    .arg("-CONT")
                    .arg(c.id().to_string())
                    .status();
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

pub fn voter_count(r: &RangeInfo) -> usize {
    r.descriptor
        .as_ref()
        .map(|d| d.replicas.iter().filter(|r| r.r#type == 0).count())
        .unwrap_or(0)
}

pub async fn connect(addr: &str) -> Result<AdminClient<Channel>, String> {
    let ch = Channel::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    Ok(AdminClient::new(ch)
        .max_decoding_message_size(512 << 20)
        .max_encoding_message_size(512 << 20))
}

/// Sends a client KV operation; `Err` for transport errors and KV errors.
pub async fn kv(c: &mut AdminClient<Channel>, op: kv_request::Op) -> Result<KvResponse, String> {
    let resp = c
        .client_kv(KvRequest {
            range_id: 0,
            timestamp: None,
            op: Some(op),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?
        .into_inner();
    match resp.error.as_ref().and_then(|e| e.kind.clone()) {
        None => Ok(resp),
        Some(kv_error::Kind::ConditionFailed(_)) => Err("condition failed".into()),
        Some(k) => Err(format!("{k:?}")),
    }
}

pub fn put(key: &str, value: &str) -> kv_request::Op {
    kv_request::Op::Put(tessera_common::proto::PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
    })
}

pub fn get(key: &str) -> kv_request::Op {
    kv_request::Op::Get(tessera_common::proto::GetRequest {
        key: key.as_bytes().to_vec(),
        ..Default::default()
    })
}

pub fn split(key: &str) -> kv_request::Op {
    kv_request::Op::Split(tessera_common::proto::SplitRequest {
        split_key: key.as_bytes().to_vec(),
    })
}

pub fn transfer(key: &str, node_id: u64) -> kv_request::Op {
    kv_request::Op::TransferLease(tessera_common::proto::TransferLeaseRequest {
        target_node: node_id,
        key: key.as_bytes().to_vec(),
    })
}
