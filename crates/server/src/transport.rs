//! Node-to-node transport over gRPC: the connection [`Pool`] (one lazily
//! connected tonic channel per address), the [`RaftSender`] that carries the
//! raft thread's message batches to other nodes, and the [`Dialer`] through
//! which the [`DB`](tessera_kv::DB) client reaches any node's store.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tessera_common::proto::internal_client::InternalClient;
use tessera_common::proto::{KvRequest, RaftBatch, RangeDescriptor};
use tessera_kv::db::{DialError, DialFuture};
use tessera_kv::{NodeDialer, RaftTransport, Store};
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};

use crate::gossip::Book;
use crate::MAX_MESSAGE_BYTES;

/// How long opening a connection to another node may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Deadline of one `Internal.Kv` call.
const KV_TIMEOUT: Duration = Duration::from_secs(6);

/// A human description of a transport error: the innermost cause, e.g.
/// "connection refused" rather than "transport error".
pub(crate) fn describe_error(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut last = e.to_string();
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return if io.raw_os_error().is_some() {
                io.kind().to_string()
            } else {
                io.to_string()
            };
        }
        let s = err.to_string();
        if !s.is_empty() {
            last = s;
        }
        cur = err.source();
    }
    last
}

/// Describes a failed gRPC call: the transport cause if the call never
/// reached the other node, else the status message.
pub(crate) fn describe_status(s: &tonic::Status) -> String {
    use std::error::Error as _;
    match s.source() {
        Some(src) => describe_error(src),
        None if s.message().is_empty() => format!("{:?}", s.code()),
        None => s.message().to_string(),
    }
}

/// Whether a failed call never reached the other node because no
/// connection to it could be opened: then the request was not sent.
pub(crate) fn never_connected(s: &tonic::Status) -> bool {
    use std::error::Error as _;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = s.source();
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        // tonic's wrapper of every failure to open a connection.
        if err.downcast_ref::<tonic::ConnectError>().is_some() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// An endpoint for `addr` with the node-to-node settings.
pub(crate) fn endpoint(addr: &str) -> Result<Endpoint, String> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| format!("invalid address {addr}: {e}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5)))
}

/// An `Internal` client over `channel` with the large message limits.
pub(crate) fn internal_client(channel: Channel) -> InternalClient<Channel> {
    InternalClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// One channel per address, created on first use; tonic reconnects a
/// channel by itself after a failure. An address with a dial override
/// (`NodeConfig::dial_overrides`) is reached through its override.
#[derive(Default)]
pub(crate) struct Pool {
    channels: Mutex<HashMap<String, Channel>>,
    overrides: HashMap<String, String>,
}

impl Pool {
    /// A pool that dials `overrides[addr]` instead of `addr` where set.
    pub(crate) fn new(overrides: HashMap<String, String>) -> Self {
        Pool {
            channels: Mutex::new(HashMap::new()),
            overrides,
        }
    }

    /// The address actually dialed to reach `addr`.
    pub(crate) fn dial_addr<'a>(&'a self, addr: &'a str) -> &'a str {
        self.overrides.get(addr).map(String::as_str).unwrap_or(addr)
    }

    /// A client for the `Internal` service of the node at `addr`. Must be
    /// called inside the tokio runtime.
    pub(crate) fn internal(&self, addr: &str) -> Result<InternalClient<Channel>, String> {
        let mut channels = self.channels.lock();
        let channel = match channels.get(addr) {
            Some(c) => c.clone(),
            None => {
                let c = endpoint(self.dial_addr(addr))?.connect_lazy();
                channels.insert(addr.to_string(), c.clone());
                c
            }
        };
        Ok(internal_client(channel))
    }
}

/// Logs a warning about a peer at most once per `every`.
pub(crate) struct RateLimit {
    every: Duration,
    last: Option<Instant>,
}

impl RateLimit {
    pub(crate) fn new(every: Duration) -> Self {
        RateLimit { every, last: None }
    }

    /// Whether to log now (and remember that we did).
    pub(crate) fn allow(&mut self) -> bool {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < self.every)
        {
            return false;
        }
        self.last = Some(now);
        true
    }
}

/// [`RaftTransport`] over gRPC: per destination node, an unbounded queue
/// and a task that streams what is queued into one long-lived
/// `Internal.Raft` call (no reply per batch: a batch costs one HTTP/2
/// data frame). Batches that cannot be sent are dropped (raft resends).
pub(crate) struct RaftSender {
    runtime: tokio::runtime::Handle,
    book: Arc<Book>,
    pool: Arc<Pool>,
    queues: Mutex<HashMap<u64, mpsc::UnboundedSender<RaftBatch>>>,
}

impl RaftSender {
    pub(crate) fn new(runtime: tokio::runtime::Handle, book: Arc<Book>, pool: Arc<Pool>) -> Self {
        RaftSender {
            runtime,
            book,
            pool,
            queues: Mutex::new(HashMap::new()),
        }
    }
}

impl RaftTransport for RaftSender {
    fn send(&self, batch: RaftBatch) {
        let to = batch.to_node;
        let mut queues = self.queues.lock();
        let tx = queues.entry(to).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            self.runtime.spawn(send_loop(
                batch.from_node,
                to,
                rx,
                self.book.clone(),
                self.pool.clone(),
            ));
            tx
        });
        if tx.send(batch).is_err() {
            // The task is gone (the runtime is shutting down).
            queues.remove(&to);
        }
    }
}

/// Batches that may wait for a stream that does not move (a black-holed
/// connection) before further ones are dropped.
const STREAM_BUFFER: usize = 256;
/// How long a reopened stream must stay up before it counts as recovered.
const STREAM_STABLE: Duration = Duration::from_secs(2);

async fn send_loop(
    from: u64,
    to: u64,
    mut rx: mpsc::UnboundedReceiver<RaftBatch>,
    book: Arc<Book>,
    pool: Arc<Pool>,
) {
    let mut backoff = Duration::from_millis(50);
    let mut warn = RateLimit::new(Duration::from_secs(30));
    let mut failing = false;
    loop {
        // A stream is opened when there is something to send.
        let Some(first) = rx.recv().await else { return };
        let client = match book.address_of(to) {
            None => Err(format!("address of node {to} unknown")),
            Some(addr) => pool.internal(&addr).map(|c| (addr, c)),
        };
        let error = match client {
            Err(e) => e,
            Ok((addr, mut client)) => {
                let (stream_tx, mut stream_rx) = mpsc::channel::<RaftBatch>(STREAM_BUFFER);
                let _ = stream_tx.try_send(first);
                let outgoing = futures::stream::poll_fn(move |cx| stream_rx.poll_recv(cx));
                let call = client.raft(outgoing);
                tokio::pin!(call);
                let stable = tokio::time::sleep(STREAM_STABLE);
                tokio::pin!(stable);
                loop {
                    tokio::select! {
                        ended = &mut call => break match ended {
                            Ok(_) => format!("{addr}: stream closed"),
                            Err(s) => format!("{addr}: {}", describe_status(&s)),
                        },
                        () = &mut stable, if failing => {
                            tracing::info!("n{from}: raft messages to node {to} flow again");
                            failing = false;
                            backoff = Duration::from_millis(50);
                        }
                        next = rx.recv() => {
                            let Some(mut batch) = next else { return };
                            while let Ok(more) = rx.try_recv() {
                                batch.messages.extend(more.messages);
                                if more.timestamp.is_some() {
                                    batch.timestamp = more.timestamp;
                                }
                            }
                            // Full: the connection does not move; raft
                            // resends what is dropped here.
                            let _ = stream_tx.try_send(batch);
                        }
                    }
                }
            }
        };
        if warn.allow() {
            tracing::warn!("n{from}: cannot send raft messages to node {to}: {error}");
        }
        failing = true;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
        // Whatever queued meanwhile is stale: raft resends.
        while rx.try_recv().is_ok() {}
    }
}

/// [`NodeDialer`] for the [`DB`](tessera_kv::DB) client: this node's store
/// directly, other nodes through `Internal.Kv`.
pub(crate) struct Dialer {
    node_id: u64,
    store: Weak<Store>,
    book: Arc<Book>,
    pool: Arc<Pool>,
    /// Injected bug (tests only): serve reads from the local replica.
    pub(crate) stale_follower_reads: bool,
}

impl Dialer {
    pub(crate) fn new(node_id: u64, store: Weak<Store>, book: Arc<Book>, pool: Arc<Pool>) -> Self {
        Dialer {
            node_id,
            store,
            book,
            pool,
            stale_follower_reads: false,
        }
    }
}

impl NodeDialer for Dialer {
    fn send(&self, node_id: u64, req: KvRequest) -> DialFuture {
        if self.stale_follower_reads {
            if let Some(store) = self.store.upgrade() {
                if let Some(resp) = store.read_without_lease(&req) {
                    return Box::pin(async move { Ok(resp) });
                }
            }
        }
        if node_id == self.node_id {
            let store = self.store.upgrade();
            return Box::pin(async move {
                match store {
                    Some(s) => Ok(s.execute(req).await),
                    None => Err(DialError::not_sent("node is shutting down")),
                }
            });
        }
        if self.book.is_suspect(node_id) {
            return Box::pin(async move {
                Err(DialError::not_sent(format!("node {node_id} is not live")))
            });
        }
        let client = match self.book.address_of(node_id) {
            None => Err(DialError::not_sent(format!(
                "address of node {node_id} unknown"
            ))),
            Some(addr) => self
                .pool
                .internal(&addr)
                .map(|c| (addr, c))
                .map_err(DialError::not_sent),
        };
        Box::pin(async move {
            let (addr, mut client) = client?;
            match tokio::time::timeout(KV_TIMEOUT, client.kv(req)).await {
                Ok(Ok(resp)) => Ok(resp.into_inner()),
                Ok(Err(s)) => {
                    let reason = format!("{addr}: {}", describe_status(&s));
                    Err(if never_connected(&s) {
                        DialError::not_sent(reason)
                    } else {
                        DialError::unanswered(reason)
                    })
                }
                Err(_) => Err(DialError::unanswered(format!("{addr}: timed out"))),
            }
        })
    }

    fn local_node(&self) -> u64 {
        self.node_id
    }

    fn first_range(&self) -> Option<(RangeDescriptor, u64)> {
        let local = self.store.upgrade().and_then(|s| s.first_range());
        best_first_range(local, self.book.first_range())
    }

    fn known_nodes(&self) -> Vec<u64> {
        self.book.live_node_ids()
    }
}

/// Combines what the local store knows about range 1 with what gossip
/// says: the newer descriptor wins; at equal generations the local one,
/// with gossip's leaseholder if the local replica knows none.
pub(crate) fn best_first_range(
    local: Option<(RangeDescriptor, u64)>,
    gossiped: Option<(RangeDescriptor, u64)>,
) -> Option<(RangeDescriptor, u64)> {
    match (local, gossiped) {
        (None, g) => g,
        (l, None) => l,
        (Some(l), Some(g)) => {
            if g.0.generation > l.0.generation {
                Some(g)
            } else if l.1 == 0 && g.0.generation == l.0.generation {
                Some((l.0, g.1))
            } else {
                Some(l)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_overrides_redirect_only_their_address() {
        let pool = Pool::new(HashMap::from([(
            "10.0.0.2:26257".to_string(),
            "127.0.0.1:40001".to_string(),
        )]));
        assert_eq!(pool.dial_addr("10.0.0.2:26257"), "127.0.0.1:40001");
        assert_eq!(pool.dial_addr("10.0.0.3:26257"), "10.0.0.3:26257");
        assert_eq!(
            Pool::default().dial_addr("10.0.0.2:26257"),
            "10.0.0.2:26257"
        );
    }

    fn desc(generation: u64) -> RangeDescriptor {
        RangeDescriptor {
            range_id: 1,
            generation,
            ..Default::default()
        }
    }

    #[test]
    fn newer_gossip_beats_local_and_local_leaseholder_beats_equal_gossip() {
        let pick = |l, g| best_first_range(l, g).map(|(d, lh)| (d.generation, lh));
        assert_eq!(pick(Some((desc(2), 1)), Some((desc(3), 2))), Some((3, 2)));
        assert_eq!(pick(Some((desc(3), 1)), Some((desc(3), 2))), Some((3, 1)));
        assert_eq!(pick(Some((desc(3), 0)), Some((desc(3), 2))), Some((3, 2)));
        assert_eq!(pick(Some((desc(4), 0)), Some((desc(3), 2))), Some((4, 0)));
        assert_eq!(pick(None, Some((desc(3), 2))), Some((3, 2)));
        assert_eq!(pick(None, None), None);
    }

    /// A `Kv` call to `addr` through a fresh channel: its failure status.
    async fn failed_kv_call(addr: &str) -> tonic::Status {
        let mut client = Pool::default().internal(addr).unwrap();
        client.kv(KvRequest::default()).await.unwrap_err()
    }

    #[tokio::test]
    async fn only_a_connection_never_opened_means_the_request_was_not_sent() {
        // Nothing listens: the connection is refused, nothing was sent.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let refused = failed_kv_call(&format!("127.0.0.1:{port}")).await;
        assert!(never_connected(&refused), "{refused:?}");
        // A peer that accepts and then drops the connection may have read
        // the request: its fate is unknown.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = [0u8; 256];
                let _ = sock.read(&mut buf).await;
                drop(sock);
            }
        });
        let dropped = failed_kv_call(&addr.to_string()).await;
        assert!(!never_connected(&dropped), "{dropped:?}");
    }

    #[test]
    fn describe_error_finds_the_io_cause() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("transport error")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::from_raw_os_error(111));
        assert_eq!(describe_error(&e), "connection refused");
    }
}
