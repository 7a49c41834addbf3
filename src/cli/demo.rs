//! `tessera demo`: a throwaway cluster of N nodes inside this process, on
//! 127.0.0.1 with ports picked by the OS and temporary stores, initialized and ready for
//! the other commands. It serves until SIGINT/SIGTERM, then shuts the nodes
//! down and removes the stores. Every node serves SQL; unless `--no-shell`,
//! a SQL shell connected to node 1 opens, and leaving it (`\q`, end of
//! input) stops the cluster.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tessera_common::proto::{InitRequest, NodeStatusRequest};

use super::client::{call, connect, Admin};
use super::server_api::{Node, NodeConfig};
use super::start::{Logging, Signals};
use super::{out, CliError, Result};

/// How long the nodes may take to all report live.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one node may take to shut down gracefully.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct DemoOpts {
    pub nodes: usize,
    pub no_shell: bool,
    /// SQL port of node 1; node i gets `sql_port + i - 1`.
    pub sql_port: Option<u16>,
    /// Commit-wait on every node (`tessera start --linearizable`).
    pub linearizable: bool,
}

/// The configuration of node `i` (0-based) of the demo cluster: ports
/// picked by the OS (port 0; the node advertises the port it bound), node 1
/// alone, the others joining node 1 at `first`.
pub fn node_config(
    opts: &DemoOpts,
    root: &std::path::Path,
    i: usize,
    first: Option<&str>,
) -> NodeConfig {
    let mut cfg = NodeConfig::new(
        root.join(format!("node{}", i + 1)),
        "127.0.0.1:0",
        "127.0.0.1:0",
    );
    cfg.join = first.map(|f| vec![f.to_string()]).unwrap_or_default();
    cfg.linearizable = opts.linearizable;
    cfg.sql_addr = Some(match opts.sql_port {
        Some(p) => format!("127.0.0.1:{}", p as usize + i),
        None => "127.0.0.1:0".to_string(),
    });
    cfg
}

pub async fn run(opts: DemoOpts, logging: &Logging) -> Result<()> {
    if opts.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    if let Some(p) = opts.sql_port {
        if p as usize + opts.nodes - 1 > u16::MAX as usize {
            return Err(CliError::new(format!(
                "--sql-port {p} leaves no room for {} nodes",
                opts.nodes
            )));
        }
    }
    let mut signals = Signals::new()?;
    let dir = tempfile::Builder::new()
        .prefix("tessera-demo-")
        .tempdir()
        .map_err(|e| CliError::new(format!("cannot create a temporary directory: {e}")))?;
    eprintln!(
        "starting {} nodes (stores under {})...",
        opts.nodes,
        dir.path().display()
    );

    let mut nodes: Vec<Node> = Vec::with_capacity(opts.nodes);
    let result = serve(&opts, dir.path(), &mut nodes, &mut signals).await;
    logging.quiet();

    let interrupted = shutdown_all(nodes, &mut signals).await;
    let removed = dir.path().display().to_string();
    if let Err(e) = dir.close() {
        eprintln!("warning: could not remove {removed}: {e}");
    }
    result?;
    match interrupted {
        Some(sig) => Err(CliError::new(format!(
            "received {sig} again; exited without finishing the shutdown"
        ))),
        None => Ok(()),
    }
}

/// Starts the nodes (pushing them to `nodes` so the caller can always shut
/// down what was started), bootstraps the cluster, and waits for a signal.
async fn serve(
    opts: &DemoOpts,
    root: &std::path::Path,
    nodes: &mut Vec<Node>,
    signals: &mut Signals,
) -> Result<()> {
    let mut first: Option<String> = None;
    for i in 0..opts.nodes {
        let cfg = node_config(opts, root, i, first.as_deref());
        let node = Node::start(cfg)
            .await
            .map_err(|e| CliError::new(format!("node {}: {e}", i + 1)))?;
        if first.is_none() {
            first = Some(node.listen_addr().to_string());
        }
        nodes.push(node);
    }
    let host = first.unwrap_or_default();

    let cluster_id = tokio::select! {
        r = bootstrap(&host, opts.nodes) => r?,
        (i, msg) = first_fatal(nodes) => return Err(CliError::new(format!("node {}: {msg}", i + 1))),
        sig = signals.recv() => return Err(CliError::new(format!("received {sig} while starting"))),
    };
    out(&banner(opts, nodes, &cluster_id))?;
    if !opts.no_shell {
        let url = sql_url(&nodes[0]);
        return tokio::select! {
            r = super::sql::run(super::sql::ShellOpts { url, execute: Vec::new() }) => r,
            sig = signals.recv() => {
                eprintln!("received {sig}; shutting down the cluster (send it again to exit at once)...");
                Ok(())
            }
            (i, msg) = first_fatal(nodes) => Err(CliError::new(format!("node {}: {msg}", i + 1))),
        };
    }
    tokio::select! {
        sig = signals.recv() => {
            eprintln!("received {sig}; shutting down the cluster (send it again to exit at once)...");
            Ok(())
        }
        (i, msg) = first_fatal(nodes) => Err(CliError::new(format!("node {}: {msg}", i + 1))),
    }
}

/// Initializes the cluster through `host` and waits until `n` nodes are
/// live. Returns the cluster id.
async fn bootstrap(host: &str, n: usize) -> Result<String> {
    let mut c = connect(host).await?;
    let resp = call(host, c.init(InitRequest {})).await?;
    if !resp.error.is_empty() {
        return Err(CliError::new(format!("init: {}", resp.error)));
    }
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    loop {
        let live = live_nodes(&mut c, host).await;
        if matches!(live, Ok(k) if k >= n) {
            return Ok(resp.cluster_id);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CliError::new(match live {
                Ok(k) => format!(
                    "only {k} of {n} nodes are live after {}s",
                    READY_TIMEOUT.as_secs()
                ),
                Err(e) => format!("nodes not ready after {}s: {e}", READY_TIMEOUT.as_secs()),
            }));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn live_nodes(c: &mut Admin, host: &str) -> Result<usize> {
    let resp = call(host, c.node_status(NodeStatusRequest {})).await?;
    Ok(resp.nodes.iter().filter(|n| n.live).count())
}

/// Resolves with (index, message) of the first node that reports a fatal
/// condition; never, if none does.
async fn first_fatal(nodes: &[Node]) -> (usize, String) {
    let mut futs: Vec<Pin<Box<dyn Future<Output = String> + '_>>> = nodes
        .iter()
        .map(|n| Box::pin(n.wait_fatal()) as Pin<Box<dyn Future<Output = String>>>)
        .collect();
    std::future::poll_fn(|cx| {
        for (i, f) in futs.iter_mut().enumerate() {
            if let Poll::Ready(msg) = f.as_mut().poll(cx) {
                return Poll::Ready((i, msg));
            }
        }
        Poll::Pending
    })
    .await
}

/// Shuts the nodes down one at a time, last started first. Returns the
/// signal's name if a second signal cut this short.
async fn shutdown_all(nodes: Vec<Node>, signals: &mut Signals) -> Option<&'static str> {
    for (i, node) in nodes.into_iter().enumerate().rev() {
        tokio::select! {
            r = tokio::time::timeout(SHUTDOWN_TIMEOUT, node.shutdown()) => {
                if r.is_err() {
                    eprintln!("warning: node {} did not shut down within {}s", i + 1, SHUTDOWN_TIMEOUT.as_secs());
                }
            }
            sig = signals.recv() => return Some(sig),
        }
    }
    None
}

/// The connection URL of a node's SQL server.
fn sql_url(n: &Node) -> String {
    match n.sql_addr() {
        Some(a) => format!("postgres://root@{a}/defaultdb"),
        None => String::new(),
    }
}

fn banner(opts: &DemoOpts, nodes: &[Node], cluster_id: &str) -> String {
    let addrs: Vec<String> = nodes.iter().map(|n| n.listen_addr().to_string()).collect();
    let h1 = &addrs[0];
    let h2 = addrs.get(1).unwrap_or(h1);
    let mut s = format!(
        "\nTessera demo cluster: {} node(s), cluster id {cluster_id}\n\n",
        nodes.len()
    );
    for (i, n) in nodes.iter().enumerate() {
        let id = n
            .node_id()
            .map_or(format!("{}", i + 1), |id| id.to_string());
        s.push_str(&format!(
            "  node {id}  rpc {}  http http://{}\n",
            n.listen_addr(),
            n.http_addr()
        ));
    }
    s.push_str("\nTry, from another terminal:\n");
    s.push_str(&format!("  tessera kv put hello world --host={h1}\n"));
    s.push_str(&format!("  tessera kv get hello --host={h2}\n"));
    s.push_str(&format!("  tessera kv scan a z --host={h1}\n"));
    s.push_str(&format!("  tessera debug split m --host={h1}\n"));
    s.push_str(&format!("  tessera debug ranges --host={h1}\n"));
    s.push_str(&format!("  tessera node status --host={h1}\n"));
    s.push_str(&format!(
        "  tessera workload kv --host={} --concurrency=8 --duration=10s --value-size=64\n",
        addrs.join(",")
    ));
    s.push('\n');
    s.push_str("SQL (loopback connections need no password):\n");
    for n in nodes {
        s.push_str(&format!("  {}\n", sql_url(n)));
    }
    s.push_str(&format!(
        "  e.g. tessera sql --url={}   or   psql {}\n",
        sql_url(&nodes[0]),
        sql_url(&nodes[0])
    ));
    if opts.no_shell {
        s.push_str("\nPress Ctrl-C to stop the cluster; its data is removed on exit.\n");
    } else {
        s.push_str("\nSQL shell on node 1 (\\q to quit and stop the cluster):\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_nodes_join_the_first() {
        let opts = DemoOpts {
            nodes: 3,
            no_shell: true,
            sql_port: Some(5432),
            linearizable: false,
        };
        let root = std::path::Path::new("/tmp/demo");
        let c1 = node_config(&opts, root, 0, None);
        assert!(c1.join.is_empty());
        assert_eq!(c1.listen_addr, "127.0.0.1:0");
        assert_eq!(c1.http_addr, "127.0.0.1:0");
        assert_eq!(c1.sql_addr.as_deref(), Some("127.0.0.1:5432"));
        let no_port = DemoOpts {
            sql_port: None,
            ..opts.clone()
        };
        assert_eq!(
            node_config(&no_port, root, 1, None).sql_addr.as_deref(),
            Some("127.0.0.1:0")
        );
        let c3 = node_config(&opts, root, 2, Some("127.0.0.1:1001"));
        assert_eq!(c3.join, vec!["127.0.0.1:1001".to_string()]);
        assert_eq!(c3.store_dir, root.join("node3"));
        assert_eq!(c3.sql_addr.as_deref(), Some("127.0.0.1:5434"));
    }
}
