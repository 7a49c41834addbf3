//! A Tessera node: everything that turns a store directory and a few
//! addresses into a member of a cluster.
//!
//! - [`Node`] owns the lifecycle: open the store, bind the ports, serve,
//!   initialize a new cluster (`Admin.Init`) or join one (`--join`), run the
//!   store's background queues, and shut down gracefully.
//! - `gossip` keeps the membership book: which nodes exist, where they
//!   listen, which are live or draining, and where range 1 is. The book is
//!   the store's [`tessera_kv::Liveness`].
//! - `transport` carries raft batches to other nodes
//!   ([`tessera_kv::RaftTransport`]) and lets the [`tessera_kv::DB`] client
//!   reach any node's store ([`tessera_kv::NodeDialer`]), over gRPC.
//! - `service` implements the gRPC services `Internal` (node to node) and
//!   `Admin` (clients and the CLI), both served on `--listen-addr`.
//! - `http` is a minimal hand-written HTTP/1.1 server for `/health`.
//!
//! The CLI reaches a node with [`connect_admin`].

mod gossip;
mod http;
mod node;
mod service;
mod transport;

use std::path::PathBuf;
use std::time::Duration;

pub use node::Node;
pub use tessera_common::proto::admin_client::AdminClient;
pub use tonic::transport::Channel;

/// Largest gRPC message a node sends or accepts: raft snapshots travel
/// inside raft batches and carry a whole range.
pub const MAX_MESSAGE_BYTES: usize = 512 << 20;

/// How a node is started.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The store directory (created if missing).
    pub store_dir: PathBuf,
    /// host:port for gRPC (the `Internal` and `Admin` services). Port 0
    /// picks a free port; [`Node::listen_addr`] tells which.
    pub listen_addr: String,
    /// host:port for HTTP (`/health`).
    pub http_addr: String,
    /// Recorded in the node descriptor for clients; SQL comes later.
    pub sql_addr: Option<String>,
    /// SQL sessions served at once (`--max-connections`); more are
    /// refused with SQLSTATE 53300.
    pub sql_max_connections: usize,
    /// The gRPC address other nodes should use (host:port). Default: the
    /// bound `listen_addr`, which only works across machines if it names
    /// a reachable interface (not 0.0.0.0).
    pub advertise_addr: Option<String>,
    /// Addresses (host:port) of other nodes of the cluster.
    pub join: Vec<String>,
    /// Dial overrides: when this node connects to another node at the key
    /// address (as that node advertises itself, or as given in `join`), it
    /// connects to the value address instead (a proxy, tunnel or port
    /// forward in between). Empty: connect to addresses as they are.
    pub dial_overrides: std::collections::HashMap<String, String>,
    /// Largest tolerated clock offset between nodes.
    pub max_offset: Duration,
    /// How long a node without a store identity keeps trying `join`
    /// addresses when none of them answers before it gives up.
    pub join_timeout: Duration,
    /// Raft tick.
    pub tick: Duration,
    /// MVCC garbage collection TTL (default 4h).
    pub gc_ttl: Duration,
    /// Commits wait out the clock uncertainty before they are acknowledged
    /// (external consistency across unrelated keys).
    pub linearizable: bool,
    /// Fault injection for testing the chaos harness's checkers, never for
    /// production: `stale-follower-read` makes a node answer reads from
    /// its own replica, leaseholder or not (breaking linearizability).
    pub inject_bug: Option<String>,
}

/// Bugs `NodeConfig::inject_bug` knows.
pub const INJECTABLE_BUGS: &[&str] = &["stale-follower-read"];

impl NodeConfig {
    /// A configuration with the defaults: no `--join`, no SQL address,
    /// max offset 250ms, join timeout 10s, raft tick 100ms.
    pub fn new(
        store_dir: impl Into<PathBuf>,
        listen_addr: impl Into<String>,
        http_addr: impl Into<String>,
    ) -> Self {
        NodeConfig {
            store_dir: store_dir.into(),
            listen_addr: listen_addr.into(),
            http_addr: http_addr.into(),
            sql_addr: None,
            sql_max_connections: tessera_sql::server::DEFAULT_MAX_CONNECTIONS,
            advertise_addr: None,
            join: Vec::new(),
            dial_overrides: Default::default(),
            max_offset: Duration::from_millis(250),
            join_timeout: Duration::from_secs(10),
            tick: Duration::from_millis(100),
            gc_ttl: Duration::from_secs(4 * 3600),
            linearizable: false,
            inject_bug: None,
        }
    }
}

/// Why a node could not start: one line naming the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// Connects the CLI to the `Admin` service of the node at `host` (host:port),
/// giving up after 3 seconds.
pub async fn connect_admin(host: &str) -> Result<AdminClient<Channel>, String> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{host}"))
        .map_err(|e| format!("cannot reach node at {host}: invalid address: {e}"))?
        .connect_timeout(Duration::from_secs(3))
        .tcp_nodelay(true);
    let channel = tokio::time::timeout(Duration::from_secs(3), endpoint.connect())
        .await
        .map_err(|_| format!("cannot reach node at {host}: timed out"))?
        .map_err(|e| {
            format!(
                "cannot reach node at {host}: {}",
                transport::describe_error(&e)
            )
        })?;
    Ok(AdminClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}
