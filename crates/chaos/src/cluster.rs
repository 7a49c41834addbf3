//! A cluster of real `tessera` processes on 127.0.0.1 that the nemesis
//! controls: start (free ports, stores in a temporary folder, logs in the
//! run folder), init, kill -9, SIGSTOP/SIGCONT, restart (also under
//! libfaketime with a shifted wall clock), partitions through the proxies
//! of [`crate::net`]; and the gRPC client helpers the workload uses.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tessera_common::proto::admin_client::AdminClient;
use tessera_common::proto::{NodeStatusRequest, RangeInfo, RangesRequest};
use tonic::transport::Channel;

use crate::net::Net;

/// A free TCP port on 127.0.0.1 (bound then released), never one this
/// process handed out before: two nodes or proxies must not be given the
/// same one. It is taken below the kernel's ephemeral range when it can
/// be: a port from that range may become the source port of some
/// outgoing connection before the node that was given it binds it (the
/// node then fails with "address in use").
pub fn free_port() -> std::io::Result<u16> {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let below = ephemeral_start.saturating_sub(12_000).max(10_000)..ephemeral_start;
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64 ^ std::process::id() as u64)
        .unwrap_or(1);
    for attempt in 0.. {
        let port = if attempt < 200 && !below.is_empty() {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let span = (below.end - below.start) as u64;
            below.start + ((seed >> 33) % span) as u16
        } else {
            0
        };
        let Ok(l) = TcpListener::bind(("127.0.0.1", port)) else {
            continue;
        };
        let port = l.local_addr()?.port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return Ok(port);
        }
    }
    unreachable!("the loop returns a port")
}

/// When set, every node starts with `--inject-bug=<value>` (see
/// `tessera-chaos --inject-bug`).
pub const INJECT_BUG_ENV: &str = "TESSERA_CHAOS_INJECT_BUG";

/// libfaketime (Debian package `faketime`), for the clock nemesis.
pub const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// One `tessera start` process.
pub struct Node {
    /// 1-based index (n1, n2, ...).
    pub index: usize,
    /// Inter-node and client RPC address.
    pub addr: String,
    /// SQL (PostgreSQL wire protocol) address.
    pub sql: String,
    http: String,
    /// `--dial-override` values (through the partition proxies).
    overrides: Vec<String>,
    /// Wall clock offset (a libfaketime `FAKETIME` value), if shifted.
    pub clock: Option<String>,
    store: PathBuf,
    log: PathBuf,
    join: Vec<String>,
    child: Option<Child>,
    paused: bool,
}

impl Node {
    fn spawn(&mut self, bin: &Path) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(bin);
        cmd.arg("start")
            .arg(format!("--store={}", self.store.display()))
            .arg(format!("--listen-addr={}", self.addr))
            .arg(format!("--http-addr={}", self.http))
            .arg(format!("--sql-addr={}", self.sql));
        if !self.join.is_empty() {
            cmd.arg(format!("--join={}", self.join.join(",")));
        }
        if !self.overrides.is_empty() {
            cmd.arg(format!("--dial-override={}", self.overrides.join(",")));
        }
        if let Some(offset) = &self.clock {
            cmd.env("LD_PRELOAD", FAKETIME_LIB)
                .env("FAKETIME", offset)
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        if let Ok(bug) = std::env::var(INJECT_BUG_ENV) {
            cmd.arg(format!("--inject-bug={bug}"));
        }
        let filter = std::env::var("TESSERA_CHAOS_LOG").unwrap_or_else(|_| "info,raft=warn".into());
        cmd.env("RUST_LOG", filter)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    /// True while the process runs (paused or not).
    pub fn is_up(&self) -> bool {
        self.child.is_some()
    }

    /// True while SIGSTOPped.
    pub fn is_paused(&self) -> bool {
        self.paused
    }
}

/// The processes of one run.
pub struct Cluster {
    bin: PathBuf,
    _stores: tempfile::TempDir,
    /// The nodes, n1 first.
    pub nodes: Vec<Node>,
    /// Node id of each process (assigned by the cluster at join).
    pub ids: Vec<u64>,
    /// The partition proxies, when nodes talk through them.
    pub net: Option<Net>,
}

impl Cluster {
    /// Starts `n` nodes that join each other, logs into `log_dir`, inits
    /// the cluster and waits until every range has `min(n, 3)` voters.
    /// With `proxied`, nodes reach each other only through the partition
    /// proxies (see [`crate::net`]).
    pub async fn start(
        bin: &Path,
        n: usize,
        log_dir: &Path,
        proxied: bool,
    ) -> Result<Cluster, String> {
        let stores = tempfile::Builder::new()
            .prefix("tessera-chaos-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let mut addrs = Vec::new();
        for _ in 0..n {
            addrs.push(format!(
                "127.0.0.1:{}",
                free_port().map_err(|e| e.to_string())?
            ));
        }
        let net = if proxied {
            Some(Net::start(&addrs).await?)
        } else {
            None
        };
        let mut nodes = Vec::new();
        for (i, addr) in addrs.iter().enumerate() {
            nodes.push(Node {
                index: i + 1,
                addr: addr.clone(),
                sql: format!("127.0.0.1:{}", free_port().map_err(|e| e.to_string())?),
                overrides: net
                    .as_ref()
                    .map(|net| net.overrides(i, &addrs))
                    .unwrap_or_default(),
                clock: None,
                http: format!("127.0.0.1:{}", free_port().map_err(|e| e.to_string())?),
                store: stores.path().join(format!("n{}", i + 1)),
                log: log_dir.join(format!("n{}.log", i + 1)),
                join: addrs.iter().filter(|a| *a != addr).cloned().collect(),
                child: None,
                paused: false,
            });
        }
        let mut c = Cluster {
            bin: bin.to_path_buf(),
            _stores: stores,
            nodes,
            ids: vec![0; n],
            net,
        };
        for i in 0..n {
            c.nodes[i].spawn(bin)?;
        }
        c.wait_listening(0, Duration::from_secs(30)).await?;
        c.init().await?;
        c.wait_replicated(n.min(3), Duration::from_secs(120))
            .await?;
        for i in 0..n {
            c.ids[i] = c.fetch_node_id(i).await?;
        }
        Ok(c)
    }

    async fn init(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new(&self.bin)
                .arg("init")
                .arg(format!("--host={}", self.nodes[0].addr))
                .output()
                .map_err(|e| format!("run {} init: {e}", self.bin.display()))?;
            if out.status.success() {
                return Ok(());
            }
            let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if err.contains("already") {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("init failed: {err}"));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn fetch_node_id(&self, i: usize) -> Result<u64, String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut cl) = connect(&self.nodes[i].addr).await {
                if let Ok(st) = cl.node_status(NodeStatusRequest {}).await {
                    let id = st.into_inner().node_id;
                    if id != 0 {
                        return Ok(id);
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(format!("node n{} reports no node id", i + 1));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until node `i` accepts TCP connections.
    pub async fn wait_listening(&self, i: usize, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if tokio::net::TcpStream::connect(&self.nodes[i].addr)
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("node n{} never listened", i + 1))
    }

    /// Waits until some live node reports every range with `voters` voters.
    pub async fn wait_replicated(&self, voters: usize, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            for i in 0..self.nodes.len() {
                if !self.nodes[i].is_up() || self.nodes[i].is_paused() {
                    continue;
                }
                match self.ranges(i).await {
                    Ok(r) if !r.is_empty() && r.iter().all(|r| voter_count(r) >= voters) => {
                        return Ok(())
                    }
                    Ok(r) => last = format!("{} ranges, voters {:?}", r.len(), voters_of(&r)),
                    Err(e) => last = e,
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!("ranges never reached {voters} voters: {last}"))
    }

    /// The ranges as node `i` sees them.
    pub async fn ranges(&self, i: usize) -> Result<Vec<RangeInfo>, String> {
        let mut c = connect(&self.nodes[i].addr).await?;
        let r = tokio::time::timeout(Duration::from_secs(5), c.ranges(RangesRequest {}))
            .await
            .map_err(|_| "ranges: timed out".to_string())?;
        r.map(|r| r.into_inner().ranges)
            .map_err(|e| e.message().to_string())
    }

    /// kill -9 node `i` (no-op if it is down).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.nodes[i].paused = false;
    }

    /// Restarts node `i` if it is down and waits until it listens.
    pub async fn restart(&mut self, i: usize) -> Result<(), String> {
        if self.nodes[i].is_up() {
            return Ok(());
        }
        let bin = self.bin.clone();
        self.nodes[i].spawn(&bin)?;
        self.wait_listening(i, Duration::from_secs(30)).await
    }

    fn signal(&self, i: usize, sig: &str) -> Result<(), String> {
        let Some(child) = &self.nodes[i].child else {
            return Err(format!("n{} is down", i + 1));
        };
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(child.id().to_string())
            .status()
            .map_err(|e| format!("kill -{sig}: {e}"))?;
        if st.success() {
            Ok(())
        } else {
            Err(format!("kill -{sig} n{}: {st}", i + 1))
        }
    }

    /// SIGSTOP node `i`.
    pub fn pause(&mut self, i: usize) -> Result<(), String> {
        self.signal(i, "STOP")?;
        self.nodes[i].paused = true;
        Ok(())
    }

    /// SIGCONT node `i` (no-op unless paused).
    pub fn resume(&mut self, i: usize) -> Result<(), String> {
        if !self.nodes[i].paused {
            return Ok(());
        }
        self.signal(i, "CONT")?;
        self.nodes[i].paused = false;
        Ok(())
    }

    /// Kills node `i` and starts it again with its wall clock shifted by
    /// `offset` (libfaketime syntax, e.g. `+0.1s`; `None`: the true clock).
    pub async fn restart_with_clock(
        &mut self,
        i: usize,
        offset: Option<String>,
    ) -> Result<(), String> {
        self.kill(i);
        self.nodes[i].clock = offset;
        self.restart(i).await
    }

    /// Blocks the ordered node pairs in `cut` (0-based), unblocking the
    /// rest; an error if nodes do not talk through proxies.
    pub fn partition(&self, cut: &BTreeSet<(usize, usize)>) -> Result<(), String> {
        let net = self
            .net
            .as_ref()
            .ok_or("the cluster was started without proxies")?;
        net.set_cut(cut);
        Ok(())
    }

    /// Ends partitions, resumes paused nodes, restarts killed ones and
    /// puts every clock back.
    pub async fn heal(&mut self) -> Result<(), String> {
        if let Some(net) = &self.net {
            net.heal();
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].clock.is_some() {
                self.restart_with_clock(i, None).await?;
            }
            self.resume(i)?;
            self.restart(i).await?;
        }
        Ok(())
    }

    /// Whether some process exited on its own (a crash), with its status.
    pub fn crashed(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for n in &mut self.nodes {
            if let Some(c) = n.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    out.push(format!("n{} exited: {st}", n.index));
                    n.child = None;
                }
            }
        }
        out
    }

    /// The node addresses, n1 first.
    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr.clone()).collect()
    }

    /// The nodes' SQL addresses, n1 first.
    pub fn sql_addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.sql.clone()).collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            let _ = self.resume(i);
            self.kill(i);
        }
    }
}

/// Voting replicas of a range.
pub fn voter_count(r: &RangeInfo) -> usize {
    r.descriptor
        .as_ref()
        .map(|d| d.replicas.iter().filter(|r| r.r#type == 0).count())
        .unwrap_or(0)
}

fn voters_of(r: &[RangeInfo]) -> Vec<usize> {
    r.iter().map(voter_count).collect()
}

/// Connects an Admin client (2 s connect timeout).
pub async fn connect(addr: &str) -> Result<AdminClient<Channel>, String> {
    let ch = Channel::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    Ok(AdminClient::new(ch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let ports: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        let mut unique = ports.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "{ports:?}");
        if let Some(start) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        {
            assert!(ports.iter().all(|p| *p < start), "{ports:?} vs {start}");
        }
        for p in ports {
            TcpListener::bind(("127.0.0.1", p)).unwrap();
        }
    }
}
