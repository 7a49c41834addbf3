//! The network fault layer: one TCP proxy per ordered pair of nodes, run
//! inside `tessera-chaos`. Node A is started with
//! `--dial-override=<B's address>=<proxy(A->B)>` for every other node B, so
//! every connection A opens to B passes through proxy(A->B) and nothing
//! else; clients still reach every node directly (a partition separates
//! nodes from each other, not from their clients).
//!
//! A blocked pair is a black hole: bytes already in flight on its
//! connections stop moving (they are held, not dropped: TCP would
//! retransmit them after the partition heals), and new connections are
//! accepted but carry nothing. When the pair is unblocked, held bytes move
//! again; connections that outlived the peer's keepalive have been closed
//! by the node by then, as after a real partition.
//!
//! ```text
//!   n1 --dial n2--> proxy(1->2) --> n2      blocked(1,2): bytes wait
//!   n2 --dial n1--> proxy(2->1) --> n1      blocked(2,1): bytes wait
//! ```

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The proxies between `n` nodes and which ordered pairs are blocked.
pub struct Net {
    /// Listening address of proxy(a->b), by (a, b), 0-based.
    addrs: HashMap<(usize, usize), String>,
    /// Blocked flag of each ordered pair.
    blocked: HashMap<(usize, usize), watch::Sender<bool>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Net {
    /// Starts a proxy for every ordered pair of `targets` (the nodes'
    /// listen addresses), all unblocked.
    pub async fn start(targets: &[String]) -> Result<Net, String> {
        let mut net = Net {
            addrs: HashMap::new(),
            blocked: HashMap::new(),
            tasks: Vec::new(),
        };
        for a in 0..targets.len() {
            for (b, target) in targets.iter().enumerate() {
                if a == b {
                    continue;
                }
                let l = TcpListener::bind("127.0.0.1:0")
                    .await
                    .map_err(|e| format!("proxy listen: {e}"))?;
                let addr = l.local_addr().map_err(|e| e.to_string())?.to_string();
                let (tx, rx) = watch::channel(false);
                net.tasks.push(tokio::spawn(serve(l, target.clone(), rx)));
                net.addrs.insert((a, b), addr);
                net.blocked.insert((a, b), tx);
            }
        }
        Ok(net)
    }

    /// The `--dial-override` arguments of node `a`: `PEER=PROXY` for every
    /// other node.
    pub fn overrides(&self, a: usize, targets: &[String]) -> Vec<String> {
        targets
            .iter()
            .enumerate()
            .filter(|(b, _)| *b != a)
            .map(|(b, t)| format!("{t}={}", self.addrs[&(a, b)]))
            .collect()
    }

    /// Blocks exactly the ordered pairs in `cut` (unblocks all others).
    pub fn set_cut(&self, cut: &BTreeSet<(usize, usize)>) {
        for (pair, tx) in &self.blocked {
            tx.send_replace(cut.contains(pair));
        }
    }

    /// Unblocks every pair.
    pub fn heal(&self) {
        self.set_cut(&BTreeSet::new());
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn serve(l: TcpListener, target: String, blocked: watch::Receiver<bool>) {
    let target = Arc::new(target);
    while let Ok((inbound, _)) = l.accept().await {
        let _ = inbound.set_nodelay(true);
        let target = target.clone();
        let blocked = blocked.clone();
        tokio::spawn(async move {
            let mut held = blocked.clone();
            // A new connection across a cut waits here, carrying nothing.
            if wait_open(&mut held).await.is_err() {
                return;
            }
            let Ok(outbound) = TcpStream::connect(target.as_str()).await else {
                return; // the node is down: the dialer sees the close
            };
            let _ = outbound.set_nodelay(true);
            let (ri, wi) = inbound.into_split();
            let (ro, wo) = outbound.into_split();
            let up = tokio::spawn(pump(ri, wo, blocked.clone()));
            let down = tokio::spawn(pump(ro, wi, blocked));
            // When one direction ends, end the other (a closed connection).
            tokio::select! {
                _ = up => {}
                _ = down => {}
            }
        });
    }
}

/// Waits until the pair is not blocked; Err if the proxy is gone.
async fn wait_open(blocked: &mut watch::Receiver<bool>) -> Result<(), ()> {
    blocked.wait_for(|b| !*b).await.map(|_| ()).map_err(|_| ())
}

/// Copies `from` to `to`, holding bytes while the pair is blocked.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut blocked: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        if wait_open(&mut blocked).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if wait_open(&mut blocked).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// The shapes of partition the nemesis picks from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Two halves (the larger one a majority).
    Halves,
    /// One node cut off from all others.
    Isolate,
    /// Every node sees a majority, but no two nodes see the same one: on a
    /// ring, each node sees its neighbours up to the smallest distance that
    /// makes a majority (distance 1 for 5 nodes). Needs n >= 5; with fewer
    /// nodes it is a bridge.
    MajorityRing,
    /// Two halves and one node that sees both.
    Bridge,
}

impl Shape {
    /// Every shape.
    pub const ALL: [Shape; 4] = [
        Shape::Halves,
        Shape::Isolate,
        Shape::MajorityRing,
        Shape::Bridge,
    ];

    /// Name for the nemesis log.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Halves => "halves",
            Shape::Isolate => "isolate",
            Shape::MajorityRing => "majority-ring",
            Shape::Bridge => "bridge",
        }
    }
}

/// The ordered pairs to block for `shape` over nodes in the order `perm`
/// (a permutation of `0..n`, the caller's random choice of who goes where).
/// Cuts are symmetric: (a, b) blocked iff (b, a) is.
pub fn cut(shape: Shape, perm: &[usize]) -> BTreeSet<(usize, usize)> {
    let n = perm.len();
    // see[i][j]: position i and position j may talk.
    let sees = |i: usize, j: usize| -> bool {
        if i == j {
            return true;
        }
        match shape {
            Shape::Halves => (i < n / 2) == (j < n / 2),
            Shape::Isolate => i != 0 && j != 0,
            Shape::MajorityRing if n >= 5 => {
                let d = i.abs_diff(j);
                d.min(n - d) <= (n / 2).div_ceil(2)
            }
            Shape::MajorityRing | Shape::Bridge => {
                // Positions 0..m-1 | m | m+1..n-1, m = n/2 the bridge.
                let m = n / 2;
                i == m || j == m || ((i < m) == (j < m))
            }
        }
    };
    let mut out = BTreeSet::new();
    for i in 0..n {
        for j in 0..n {
            if !sees(i, j) {
                out.insert((perm[i], perm[j]));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component_sizes(n: usize, cut: &BTreeSet<(usize, usize)>) -> Vec<usize> {
        (0..n)
            .map(|a| (0..n).filter(|b| !cut.contains(&(a, *b))).count())
            .collect()
    }

    #[test]
    fn shapes_cut_what_they_say() {
        let id3: Vec<usize> = (0..3).collect();
        let id5: Vec<usize> = (0..5).collect();
        // Halves of 5: 2 | 3.
        assert_eq!(
            component_sizes(5, &cut(Shape::Halves, &id5)),
            [2, 2, 3, 3, 3]
        );
        // One isolated node sees only itself.
        assert_eq!(component_sizes(3, &cut(Shape::Isolate, &id3)), [1, 2, 2]);
        // Bridge of 3: the middle one sees everyone, the ends each other not.
        let b = cut(Shape::Bridge, &id3);
        assert_eq!(b, BTreeSet::from([(0, 2), (2, 0)]));
        // Majority ring of 5: everyone sees exactly 3 (a majority), and no
        // two nodes see the same three.
        let r = cut(Shape::MajorityRing, &id5);
        assert_eq!(component_sizes(5, &r), [3; 5]);
        let views: BTreeSet<Vec<usize>> = (0..5)
            .map(|a| (0..5).filter(|b| !r.contains(&(a, *b))).collect())
            .collect();
        assert_eq!(views.len(), 5);
        // Cuts are symmetric and follow the permutation.
        let p = cut(Shape::Isolate, &[2, 0, 1]);
        assert_eq!(p, BTreeSet::from([(2, 0), (2, 1), (0, 2), (1, 2)]));
        for s in Shape::ALL {
            let c = cut(s, &id5);
            assert!(c.iter().all(|(a, b)| c.contains(&(*b, *a))), "{s:?}");
        }
    }

    #[tokio::test]
    async fn a_blocked_pair_holds_bytes_until_healed() {
        let echo = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let target = echo.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let mut b = [0u8; 16];
                    while let Ok(n) = s.read(&mut b).await {
                        if n == 0 || s.write_all(&b[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let targets = vec!["127.0.0.1:1".to_string(), target.clone()];
        let net = Net::start(&targets).await.expect("net");
        let via = net.overrides(0, &targets)[0]
            .split_once('=')
            .expect("PEER=VIA")
            .1
            .to_string();
        let mut c = TcpStream::connect(&via).await.expect("connect");
        c.write_all(b"a").await.expect("write");
        let mut b = [0u8; 1];
        c.read_exact(&mut b).await.expect("echo");
        net.set_cut(&BTreeSet::from([(0, 1), (1, 0)]));
        c.write_all(b"b").await.expect("write");
        let r = tokio::time::timeout(std::time::Duration::from_millis(300), c.read_exact(&mut b));
        assert!(r.await.is_err(), "a byte crossed the cut");
        net.heal();
        tokio::time::timeout(std::time::Duration::from_secs(2), c.read_exact(&mut b))
            .await
            .expect("held byte delivered after heal")
            .expect("read");
        assert_eq!(&b, b"b");
    }
}
