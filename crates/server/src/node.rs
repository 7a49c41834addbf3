//! The node's lifecycle: open the store directory, bind the ports, serve
//! gRPC and HTTP, become part of a cluster (the store identity found on
//! disk, `Admin.Init`, or `--join`), run the store and its background
//! queues, report fatal conditions, and shut down gracefully.
//!
//! The store identity (`\x00ident`, a [`StoreIdent`]) is written once, with
//! a sync, when the node initializes a cluster or joins one; a node that
//! finds it at start is part of that cluster at once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use prost::Message as _;
use tessera_common::keys;
use tessera_common::proto::admin_server::AdminServer;
use tessera_common::proto::internal_server::InternalServer;
use tessera_common::proto::{InitResponse, JoinRequest, JoinResponse, NodeDescriptor, StoreIdent};
use tessera_common::Clock;
use tessera_kv::{Store, StoreConfig, DB};
use tessera_storage::{Engine, FjallEngine, WriteBatch};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::gossip::{self, Book};
use crate::service::{AdminService, InternalService};
use crate::transport::{self, describe_error, describe_status, Dialer, Pool, RaftSender};
use crate::{NodeConfig, StartError, MAX_MESSAGE_BYTES};

/// Engine key (node-local) of the store identity.
pub(crate) const IDENT_KEY: &[u8] = b"\x00ident";
/// How often the store's leaseholder queues run.
const QUEUE_INTERVAL: Duration = Duration::from_secs(1);
/// Longest wait for leases to move away on shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for in-flight RPCs on shutdown.
const SERVER_STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline of one `Internal.Join` call.
const JOIN_CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between rounds over the `--join` addresses.
const JOIN_RETRY: Duration = Duration::from_millis(500);

/// The part of a node that exists once it belongs to a cluster.
pub(crate) struct Running {
    pub cluster_id: String,
    pub node_id: u64,
    pub store: Arc<Store>,
    pub db: Arc<DB>,
}

/// State shared by the services, the HTTP server and background tasks.
pub(crate) struct Shared {
    pub cfg: NodeConfig,
    /// This node's gRPC address as told to other nodes.
    pub advertise: String,
    pub http_addr: SocketAddr,
    /// The bound SQL address, if this node serves SQL.
    pub sql_addr: Option<SocketAddr>,
    /// The SQL listener, until the node is part of a cluster and serves it.
    sql_listener: Mutex<Option<TcpListener>>,
    pub engine: Arc<FjallEngine>,
    pub clock: Clock,
    pub book: Arc<Book>,
    pub pool: Arc<Pool>,
    running: RwLock<Option<Arc<Running>>>,
    /// Serializes becoming part of a cluster (Init, join).
    init_lock: tokio::sync::Mutex<()>,
    fatal: watch::Sender<Option<String>>,
    /// Background tasks, aborted on shutdown.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stopping: AtomicBool,
}

impl Shared {
    pub(crate) fn running(&self) -> Option<Arc<Running>> {
        self.running.read().clone()
    }

    /// Reports a condition the node cannot recover from (the first wins).
    pub(crate) fn fatal(&self, msg: String) {
        self.fatal.send_if_modified(|cur| {
            if cur.is_some() {
                return false;
            }
            tracing::error!("{msg}");
            *cur = Some(msg);
            true
        });
    }

    fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.lock().push(tokio::spawn(fut));
    }

    fn own_descriptor(&self, node_id: u64) -> NodeDescriptor {
        NodeDescriptor {
            node_id,
            address: self.advertise.clone(),
            sql_address: self.sql_addr.map(|a| a.to_string()).unwrap_or_default(),
            http_address: self.http_addr.to_string(),
        }
    }

    fn read_ident(&self) -> Result<Option<StoreIdent>, String> {
        read_ident(self.engine.as_ref(), &self.cfg)
    }

    /// Starts the store of an identified node and its background work.
    fn start_store(self: &Arc<Self>, ident: &StoreIdent) -> Result<Arc<Running>, String> {
        let node_id = ident.node_id;
        self.book.set_self(self.own_descriptor(node_id));
        let mut scfg = StoreConfig::new(node_id);
        scfg.tick = self.cfg.tick;
        scfg.gc_ttl = self.cfg.gc_ttl;
        let transport = Arc::new(RaftSender::new(
            tokio::runtime::Handle::current(),
            self.book.clone(),
            self.pool.clone(),
        ));
        let engine: Arc<dyn Engine> = self.engine.clone();
        let store = Store::start(
            scfg,
            engine,
            self.clock.clone(),
            transport,
            self.book.clone(),
        )
        .map_err(|e| format!("cannot start the store: {e}"))?;
        let mut dialer = Dialer::new(
            node_id,
            Arc::downgrade(&store),
            self.book.clone(),
            self.pool.clone(),
        );
        dialer.stale_follower_reads = self.cfg.inject_bug.as_deref() == Some("stale-follower-read");
        let dialer = Arc::new(dialer);
        let db = Arc::new(DB::new(dialer, self.clock.clone()));
        db.set_commit_wait(self.cfg.linearizable);
        store.set_db(db.clone());
        let run = Arc::new(Running {
            cluster_id: ident.cluster_id.clone(),
            node_id,
            store,
            db,
        });
        *self.running.write() = Some(run.clone());
        if let Some(listener) = self.sql_listener.lock().take() {
            let db = run.db.clone();
            let sql_cfg = tessera_sql::ServerConfig {
                max_connections: self.cfg.sql_max_connections,
                node_id,
            };
            tracing::info!(
                "serving SQL on {}; connections from loopback are accepted without a password",
                self.sql_addr.map(|a| a.to_string()).unwrap_or_default()
            );
            self.spawn(async move {
                if let Err(e) =
                    tessera_sql::serve_with(listener, db, sql_cfg, std::future::pending()).await
                {
                    tracing::error!("SQL server failed: {e}");
                }
            });
        }
        let weak = Arc::downgrade(&run.store);
        self.spawn(async move {
            loop {
                tokio::time::sleep(QUEUE_INTERVAL).await;
                let Some(store) = weak.upgrade() else { return };
                store.run_queues().await;
            }
        });
        Ok(run)
    }

    /// `Admin.Init`: makes this node the first of a new cluster.
    pub(crate) async fn init(self: &Arc<Self>) -> InitResponse {
        let _guard = self.init_lock.lock().await;
        let already = InitResponse {
            error: "cluster has already been initialized".into(),
            ..Default::default()
        };
        if self.running().is_some() || self.stopping.load(Ordering::SeqCst) {
            return already;
        }
        match self.read_ident() {
            Ok(None) => {}
            Ok(Some(_)) => return already,
            Err(e) => {
                return InitResponse {
                    error: e,
                    ..Default::default()
                }
            }
        }
        let cluster_id = format!("{:032x}", rand::random::<u128>());
        let ident = StoreIdent {
            cluster_id: cluster_id.clone(),
            node_id: 1,
        };
        // The identity and the first range land in one synced batch: a
        // crash cannot leave one without the other.
        let mut batch = WriteBatch::new();
        batch.put(IDENT_KEY.to_vec(), ident.encode_to_vec());
        let result = Store::bootstrap(self.engine.as_ref(), 1, self.clock.now(), batch)
            .map_err(|e| format!("cannot bootstrap the store: {e}"))
            .and_then(|()| self.start_store(&ident));
        match result {
            Ok(_) => {
                tracing::info!("initialized new cluster {cluster_id}; this is node 1");
                InitResponse {
                    cluster_id,
                    error: String::new(),
                }
            }
            Err(e) => {
                tracing::error!("initialization failed: {e}");
                InitResponse {
                    cluster_id: String::new(),
                    error: e,
                }
            }
        }
    }

    /// `Internal.Join` on a member: allocates an id for a new node.
    pub(crate) async fn admit(&self, req: JoinRequest) -> Result<JoinResponse, tonic::Status> {
        let Some(run) = self.running() else {
            return Ok(JoinResponse {
                not_initialized: true,
                ..Default::default()
            });
        };
        if req.address.is_empty() {
            return Err(tonic::Status::invalid_argument(
                "join request without an address",
            ));
        }
        let node_id = run
            .db
            .increment(keys::NODE_ID_GENERATOR)
            .await
            .map_err(|e| tonic::Status::unavailable(format!("cannot allocate a node id: {e}")))?;
        self.book.add_joined(NodeDescriptor {
            node_id,
            address: req.address.clone(),
            sql_address: req.sql_address,
            http_address: req.http_address,
        });
        tracing::info!("node {node_id} at {} joined the cluster", req.address);
        Ok(JoinResponse {
            cluster_id: run.cluster_id.clone(),
            node_id,
            nodes: self.book.descriptors(),
            ..Default::default()
        })
    }

    /// The joiner's side: tries every `--join` address until one admits
    /// this node, or until none has answered for `join_timeout`.
    async fn join_loop(self: Arc<Self>) {
        let mut last_answer = Instant::now();
        let mut unreachable: std::collections::BTreeMap<String, String> = Default::default();
        let mut told_waiting = false;
        // Asking ourselves would only ever say "not initialized".
        let join: Vec<String> = self
            .cfg
            .join
            .iter()
            .filter(|a| **a != self.advertise && **a != self.cfg.listen_addr)
            .cloned()
            .collect();
        if join.is_empty() {
            tracing::info!("store is not initialized; waiting for `tessera init`");
            return;
        }
        loop {
            if self.running().is_some() {
                return;
            }
            for addr in &join {
                let req = JoinRequest {
                    address: self.advertise.clone(),
                    sql_address: self.cfg.sql_addr.clone().unwrap_or_default(),
                    http_address: self.http_addr.to_string(),
                };
                match try_join(self.pool.dial_addr(addr), req).await {
                    JoinAttempt::Unreachable(e) => {
                        if !unreachable.contains_key(addr) {
                            tracing::warn!("cannot reach --join address {addr}: {e}; retrying");
                        }
                        unreachable.insert(addr.clone(), e);
                    }
                    JoinAttempt::Failed(e) => {
                        last_answer = Instant::now();
                        unreachable.remove(addr);
                        tracing::debug!("join: {addr} answered: {e}");
                    }
                    JoinAttempt::Answer(resp) => {
                        last_answer = Instant::now();
                        unreachable.remove(addr);
                        if !resp.error.is_empty() {
                            self.fatal(format!(
                                "cannot join the cluster through {addr}: {}",
                                resp.error
                            ));
                            return;
                        }
                        if resp.not_initialized || resp.cluster_id.is_empty() || resp.node_id == 0 {
                            if !told_waiting {
                                tracing::info!(
                                    "{addr} is not part of an initialized cluster yet; waiting (run `tessera init`)"
                                );
                                told_waiting = true;
                            }
                            continue;
                        }
                        match self.complete_join(resp).await {
                            Ok(_) => return,
                            Err(e) => {
                                self.fatal(e);
                                return;
                            }
                        }
                    }
                }
                if self.running().is_some() {
                    return;
                }
            }
            if last_answer.elapsed() >= self.cfg.join_timeout {
                let list: Vec<String> = join
                    .iter()
                    .map(|a| match unreachable.get(a) {
                        Some(e) => format!("{a}: {e}"),
                        None => a.clone(),
                    })
                    .collect();
                self.fatal(format!(
                    "cannot reach any --join address ({})",
                    list.join("; ")
                ));
                return;
            }
            tokio::time::sleep(JOIN_RETRY).await;
        }
    }

    /// Records the identity a member gave us and starts the store. Ok(false):
    /// this node became part of a cluster meanwhile (Init); the id is unused.
    async fn complete_join(self: &Arc<Self>, resp: JoinResponse) -> Result<bool, String> {
        let _guard = self.init_lock.lock().await;
        if self.running().is_some() || self.stopping.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let ident = StoreIdent {
            cluster_id: resp.cluster_id.clone(),
            node_id: resp.node_id,
        };
        write_ident(self.engine.as_ref(), &ident)?;
        for d in resp.nodes {
            self.book.learn_relayed(d);
        }
        self.start_store(&ident)?;
        tracing::info!("node {} joined cluster {}", ident.node_id, ident.cluster_id);
        Ok(true)
    }
}

enum JoinAttempt {
    /// No connection could be made.
    Unreachable(String),
    /// The node answered with an RPC error.
    Failed(String),
    Answer(JoinResponse),
}

async fn try_join(addr: &str, req: JoinRequest) -> JoinAttempt {
    let endpoint = match transport::endpoint(addr) {
        Ok(e) => e,
        Err(e) => return JoinAttempt::Unreachable(e),
    };
    let channel =
        match tokio::time::timeout(transport::CONNECT_TIMEOUT * 2, endpoint.connect()).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return JoinAttempt::Unreachable(describe_error(&e)),
            Err(_) => return JoinAttempt::Unreachable("timed out".into()),
        };
    let mut client = transport::internal_client(channel);
    match tokio::time::timeout(JOIN_CALL_TIMEOUT, client.join(req)).await {
        Ok(Ok(r)) => JoinAttempt::Answer(r.into_inner()),
        Ok(Err(s)) => JoinAttempt::Failed(describe_status(&s)),
        Err(_) => JoinAttempt::Failed("timed out".into()),
    }
}

fn read_ident(engine: &dyn Engine, cfg: &NodeConfig) -> Result<Option<StoreIdent>, String> {
    let raw = engine.get(IDENT_KEY).map_err(|e| {
        format!(
            "cannot read the store identity in {}: {e}",
            cfg.store_dir.display()
        )
    })?;
    let Some(raw) = raw else { return Ok(None) };
    let ident = StoreIdent::decode(raw.as_slice()).map_err(|e| {
        format!(
            "store directory {} has a corrupt identity: {e}",
            cfg.store_dir.display()
        )
    })?;
    if ident.cluster_id.is_empty() || ident.node_id == 0 {
        return Err(format!(
            "store directory {} has an invalid identity (cluster {:?}, node {})",
            cfg.store_dir.display(),
            ident.cluster_id,
            ident.node_id
        ));
    }
    Ok(Some(ident))
}

fn write_ident(engine: &dyn Engine, ident: &StoreIdent) -> Result<(), String> {
    let mut batch = WriteBatch::new();
    batch.put(IDENT_KEY.to_vec(), ident.encode_to_vec());
    engine
        .write(batch, true)
        .map_err(|e| format!("cannot write the store identity: {e}"))
}

/// A one-line description of a failed bind.
fn bind_error(flag: &str, addr: &str, e: &std::io::Error) -> StartError {
    let why = if e.raw_os_error().is_some() {
        e.kind().to_string()
    } else {
        e.to_string()
    };
    StartError(format!("cannot bind {flag} {addr}: {why}"))
}

/// A running Tessera node.
pub struct Node {
    shared: Arc<Shared>,
    listen_addr: SocketAddr,
    http_addr: SocketAddr,
    fatal: watch::Receiver<Option<String>>,
    server_stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl Node {
    /// Opens the store, binds the ports, starts serving. Returns once
    /// listening (before the cluster is initialized or joined); joining
    /// continues in the background.
    pub async fn start(cfg: NodeConfig) -> Result<Node, StartError> {
        if let Some(bug) = &cfg.inject_bug {
            if !crate::INJECTABLE_BUGS.contains(&bug.as_str()) {
                return Err(StartError(format!(
                    "--inject-bug {bug}: unknown (known: {})",
                    crate::INJECTABLE_BUGS.join(", ")
                )));
            }
            tracing::warn!("INJECTED BUG ACTIVE: {bug} (test use only)");
        }
        let dir = cfg.store_dir.display().to_string();
        let engine = match FjallEngine::open(&cfg.store_dir) {
            Ok(e) => Arc::new(e),
            Err(tessera_storage::Error::Locked(_)) => {
                return Err(StartError(format!(
                    "store directory {dir} is in use by another tessera process"
                )))
            }
            Err(e) => {
                return Err(StartError(format!(
                    "cannot open store directory {dir}: {e}"
                )))
            }
        };
        let ident = read_ident(engine.as_ref(), &cfg).map_err(StartError)?;
        let listener = TcpListener::bind(&cfg.listen_addr)
            .await
            .map_err(|e| bind_error("--listen-addr", &cfg.listen_addr, &e))?;
        let http_listener = TcpListener::bind(&cfg.http_addr)
            .await
            .map_err(|e| bind_error("--http-addr", &cfg.http_addr, &e))?;
        let sql_listener = match &cfg.sql_addr {
            Some(a) => Some(
                TcpListener::bind(a)
                    .await
                    .map_err(|e| bind_error("--sql-addr", a, &e))?,
            ),
            None => None,
        };
        let sql_addr = match &sql_listener {
            Some(l) => Some(l.local_addr().map_err(|e| {
                bind_error("--sql-addr", cfg.sql_addr.as_deref().unwrap_or(""), &e)
            })?),
            None => None,
        };
        let listen_addr = listener
            .local_addr()
            .map_err(|e| bind_error("--listen-addr", &cfg.listen_addr, &e))?;
        let http_addr = http_listener
            .local_addr()
            .map_err(|e| bind_error("--http-addr", &cfg.http_addr, &e))?;

        let (fatal_tx, fatal_rx) = watch::channel(None);
        let book = Arc::new(Book::default());
        if ident.is_some() {
            book.remember(gossip::load_peers(engine.as_ref()));
        }
        let advertise = match &cfg.advertise_addr {
            Some(a) => a.clone(),
            None => {
                if listen_addr.ip().is_unspecified() {
                    tracing::warn!(
                        "advertising {listen_addr} to other nodes: set an advertise address reachable from them"
                    );
                }
                listen_addr.to_string()
            }
        };
        let shared = Arc::new(Shared {
            advertise,
            http_addr,
            sql_addr,
            sql_listener: Mutex::new(sql_listener),
            clock: Clock::system(cfg.max_offset),
            engine,
            book,
            pool: Arc::new(Pool::new(cfg.dial_overrides.clone())),
            running: RwLock::new(None),
            init_lock: tokio::sync::Mutex::new(()),
            fatal: fatal_tx,
            tasks: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            cfg,
        });
        if let Some(ident) = &ident {
            shared.start_store(ident).map_err(StartError)?;
            tracing::info!(
                "node {} of cluster {} restarted from {dir}",
                ident.node_id,
                ident.cluster_id
            );
        }

        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let router = tonic::transport::Server::builder()
            // Raft streams are long-lived: a peer that went silent (a
            // dead host, a black-holed link) is dropped by these pings.
            .http2_keepalive_interval(Some(Duration::from_secs(5)))
            .http2_keepalive_timeout(Some(Duration::from_secs(5)))
            .add_service(
                InternalServer::new(InternalService::new(shared.clone()))
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
            )
            .add_service(
                AdminServer::new(AdminService::new(shared.clone()))
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
            );
        let server = tokio::spawn(async move {
            let stop = async {
                let _ = stop_rx.await;
            };
            if let Err(e) = router.serve_with_incoming_shutdown(incoming, stop).await {
                tracing::error!("gRPC server failed: {e}");
            }
        });
        shared.spawn(crate::http::serve(http_listener, shared.clone()));
        shared.spawn(gossip::run(shared.clone()));
        if ident.is_none() {
            if shared.cfg.join.is_empty() {
                tracing::info!("store is not initialized; waiting for `tessera init`");
            } else {
                shared.spawn(shared.clone().join_loop());
            }
        }
        tracing::info!("listening on {listen_addr} (gRPC), {http_addr} (HTTP)");
        Ok(Node {
            shared,
            listen_addr,
            http_addr,
            fatal: fatal_rx,
            server_stop: Some(stop_tx),
            server: Some(server),
        })
    }

    /// The bound gRPC address.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The bound SQL address, if the node serves SQL.
    pub fn sql_addr(&self) -> Option<SocketAddr> {
        self.shared.sql_addr
    }

    /// This node's id; `None` until it initialized or joined a cluster.
    pub fn node_id(&self) -> Option<u64> {
        self.shared.running().map(|r| r.node_id)
    }

    /// The id of the node's cluster; `None` until initialized or joined.
    pub fn cluster_id(&self) -> Option<String> {
        self.shared.running().map(|r| r.cluster_id.clone())
    }

    /// Resolves when the node must stop on its own, with the reason.
    pub async fn wait_fatal(&self) -> String {
        let mut rx = self.fatal.clone();
        loop {
            if let Some(msg) = rx.borrow_and_update().clone() {
                return msg;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Graceful stop: mark the node draining (and gossip it), move leases
    /// away, finish in-flight RPCs, stop the raft thread, sync the engine
    /// and release the store directory.
    pub async fn shutdown(mut self) {
        let shared = self.shared.clone();
        shared.stopping.store(true, Ordering::SeqCst);
        // Wait out an Init or join in progress, then let none start.
        let guard = shared.init_lock.lock().await;
        let run = shared.running();
        if let Some(run) = &run {
            tracing::info!("node {}: draining", run.node_id);
            shared.book.set_draining(true);
            let mut state = gossip::LoopState::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(3), gossip::round(&shared, &mut state))
                    .await;
            let others = tessera_kv::Liveness::live_nodes(shared.book.as_ref())
                .into_iter()
                .any(|(n, draining)| n != run.node_id && !draining);
            let timeout = if others {
                DRAIN_TIMEOUT
            } else {
                Duration::ZERO
            };
            let leading = run.store.drain(timeout).await;
            if leading > 0 && others {
                tracing::warn!(
                    "node {}: {leading} range(s) still led here after the drain timeout",
                    run.node_id
                );
            }
        }
        drop(guard);
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *shared.tasks.lock());
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
        if let Some(stop) = self.server_stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut server) = self.server.take() {
            if tokio::time::timeout(SERVER_STOP_TIMEOUT, &mut server)
                .await
                .is_err()
            {
                tracing::warn!("in-flight RPCs did not finish in time; closing anyway");
                server.abort();
                let _ = server.await;
            }
        }
        let taken = shared.running.write().take();
        drop(run);
        if let Some(run) = taken {
            run.store.stop();
            tracing::info!("node {} stopped", run.node_id);
        }
        if let Err(e) = shared.engine.sync() {
            tracing::error!("syncing the store failed: {e}");
        }
        // Release the store directory: wait for the last users of the
        // engine (requests that were still finishing) to let go.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&shared.engine) > 1 || Arc::strong_count(&shared) > 2 {
            if Instant::now() >= deadline {
                tracing::warn!(
                    "the store is still in use; its directory stays locked until the process exits"
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(self);
        drop(shared);
    }
}
