//! The gRPC services of a node: `Internal` (node to node: KV requests for
//! local replicas, raft batches, join, gossip, local range status) and
//! `Admin` (clients and the CLI: init, routed KV operations, the range
//! table, node status). Both are served on `--listen-addr`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tessera_common::keys;
use tessera_common::proto::admin_server::Admin;
use tessera_common::proto::internal_server::Internal;
use tessera_common::proto::{
    self, kv_error, kv_request, GossipRequest, GossipResponse, InitRequest, InitResponse,
    JoinRequest, JoinResponse, KeyValue, KvError, KvRequest, KvResponse, LocalRange,
    LocalRangesRequest, LocalRangesResponse, NodeStatus, NodeStatusRequest, NodeStatusResponse,
    RaftBatch, RaftBatchResponse, RangeInfo, RangesRequest, RangesResponse,
};
use tessera_common::Timestamp;
use tessera_kv::db;
use tonic::{Request, Response, Status, Streaming};

use crate::gossip;
use crate::node::{Running, Shared};

/// What a node without a cluster answers to data requests.
const NOT_READY: &str = "node is not part of an initialized cluster yet";
/// Deadline for asking another node about its local ranges.
const LOCAL_RANGES_TIMEOUT: Duration = Duration::from_secs(3);

fn kv_error(kind: kv_error::Kind) -> KvResponse {
    KvResponse {
        error: Some(KvError { kind: Some(kind) }),
        ..Default::default()
    }
}

fn unavailable(reason: impl Into<String>) -> KvResponse {
    kv_error(kv_error::Kind::Unavailable(proto::Unavailable {
        reason: reason.into(),
        ambiguous: false,
    }))
}

fn bad_request(msg: impl Into<String>) -> KvResponse {
    kv_error(kv_error::Kind::BadRequest(msg.into()))
}

/// Maps a client error back to its wire form.
pub(crate) fn db_error(e: db::Error) -> KvResponse {
    kv_error(match e {
        db::Error::ConditionFailed { actual } => {
            kv_error::Kind::ConditionFailed(proto::ConditionFailed { actual })
        }
        db::Error::BadRequest(m) => kv_error::Kind::BadRequest(m),
        db::Error::Unavailable { reason, ambiguous } => {
            kv_error::Kind::Unavailable(proto::Unavailable { reason, ambiguous })
        }
        db::Error::Internal(m) => kv_error::Kind::Internal(m),
        db::Error::CrossRange(m) => kv_error::Kind::BadRequest(format!(
            "writes span several ranges ({m}); atomic cross-range writes need transactions"
        )),
        db::Error::Retry(m) => kv_error::Kind::TxnAborted(proto::TxnAborted {
            reason: format!("restart transaction: {m}"),
        }),
        db::Error::Deadlock(m) => kv_error::Kind::TxnAborted(proto::TxnAborted {
            reason: format!("deadlock detected: {m}"),
        }),
        db::Error::BelowGcThreshold { ts, threshold } => {
            kv_error::Kind::BelowGcThreshold(proto::BelowGcThreshold {
                threshold: Some(threshold.into()),
                ts: Some(ts.into()),
            })
        }
        e @ (db::Error::WriteIntent(_) | db::Error::WriteTooOld(_) | db::Error::Uncertainty(_)) => {
            kv_error::Kind::Internal(e.to_string())
        }
    })
}

/// Node-to-node service.
pub(crate) struct InternalService {
    shared: Arc<Shared>,
}

impl InternalService {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        InternalService { shared }
    }
}

#[tonic::async_trait]
impl Internal for InternalService {
    async fn kv(&self, request: Request<KvRequest>) -> Result<Response<KvResponse>, Status> {
        let Some(run) = self.shared.running() else {
            return Ok(Response::new(unavailable(NOT_READY)));
        };
        Ok(Response::new(run.store.execute(request.into_inner()).await))
    }

    async fn raft(
        &self,
        request: Request<Streaming<RaftBatch>>,
    ) -> Result<Response<RaftBatchResponse>, Status> {
        let mut batches = request.into_inner();
        while let Some(batch) = batches.message().await? {
            let Some(run) = self.shared.running() else {
                continue;
            };
            if batch.to_node == run.node_id {
                run.store.deliver(batch);
            } else {
                tracing::debug!(
                    "dropping raft batch for node {} (this is node {})",
                    batch.to_node,
                    run.node_id
                );
            }
        }
        Ok(Response::new(RaftBatchResponse {}))
    }

    async fn join(&self, request: Request<JoinRequest>) -> Result<Response<JoinResponse>, Status> {
        self.shared
            .admit(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn gossip(
        &self,
        request: Request<GossipRequest>,
    ) -> Result<Response<GossipResponse>, Status> {
        Ok(Response::new(gossip::handle(
            &self.shared,
            request.into_inner(),
        )))
    }

    async fn local_ranges(
        &self,
        _request: Request<LocalRangesRequest>,
    ) -> Result<Response<LocalRangesResponse>, Status> {
        let Some(run) = self.shared.running() else {
            return Ok(Response::new(LocalRangesResponse::default()));
        };
        Ok(Response::new(LocalRangesResponse {
            node_id: run.node_id,
            ranges: run.store.local_ranges().await,
        }))
    }
}

/// Client-facing service.
pub(crate) struct AdminService {
    shared: Arc<Shared>,
}

impl AdminService {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        AdminService { shared }
    }

    fn running(&self) -> Result<Arc<Running>, Status> {
        self.shared
            .running()
            .ok_or_else(|| Status::unavailable(NOT_READY))
    }

    /// The local ranges of every live node (this one included), asked in
    /// parallel; nodes that do not answer are left out.
    async fn local_ranges(&self, run: &Running) -> HashMap<u64, Vec<LocalRange>> {
        let mut out = HashMap::new();
        let mut set = tokio::task::JoinSet::new();
        for n in self.shared.book.live_node_ids() {
            if n == run.node_id {
                continue;
            }
            let Some(addr) = self.shared.book.address_of(n) else {
                continue;
            };
            let Ok(mut client) = self.shared.pool.internal(&addr) else {
                continue;
            };
            set.spawn(async move {
                let r = tokio::time::timeout(
                    LOCAL_RANGES_TIMEOUT,
                    client.local_ranges(LocalRangesRequest {}),
                )
                .await;
                (n, r)
            });
        }
        out.insert(run.node_id, run.store.local_ranges().await);
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((n, Ok(Ok(resp)))) => {
                    out.insert(n, resp.into_inner().ranges);
                }
                Ok((n, Ok(Err(s)))) => {
                    tracing::debug!("local ranges of node {n}: {}", s.message());
                }
                Ok((n, Err(_))) => tracing::debug!("local ranges of node {n}: timed out"),
                Err(_) => {}
            }
        }
        out
    }

    /// Runs one client operation through the routing client.
    async fn client_kv(&self, run: &Running, req: KvRequest) -> KvResponse {
        if let Some(ts) = req.timestamp {
            if let Err(e) = self.shared.clock.update(Timestamp::from(ts)) {
                return unavailable(format!("clock offset too large: {e}"));
            }
        }
        let Some(op) = req.op else {
            return bad_request("request without operation");
        };
        let db = &run.db;
        let result = match op {
            kv_request::Op::Get(g) => db.get(&g.key).await.map(|value| KvResponse {
                value,
                ..Default::default()
            }),
            kv_request::Op::Put(p) => {
                if let Err(resp) = check_user_key(&p.key) {
                    return *resp;
                }
                db.put(&p.key, &p.value)
                    .await
                    .map(|()| KvResponse::default())
            }
            kv_request::Op::Delete(d) => {
                if let Err(resp) = check_user_key(&d.key) {
                    return *resp;
                }
                db.delete(&d.key).await.map(|()| KvResponse::default())
            }
            kv_request::Op::Cput(c) => {
                if let Err(resp) = check_user_key(&c.key) {
                    return *resp;
                }
                db.cput(&c.key, &c.value, c.expected.as_deref())
                    .await
                    .map(|()| KvResponse::default())
            }
            kv_request::Op::Scan(s) => {
                let end = if s.end.is_empty() {
                    keys::KEY_MAX.to_vec()
                } else {
                    s.end
                };
                if s.start > end {
                    return bad_request("scan start is after its end");
                }
                db.scan(&s.start, &end, s.limit as usize, s.reverse)
                    .await
                    .map(|rows| KvResponse {
                        rows: rows
                            .into_iter()
                            .map(|(key, value)| KeyValue { key, value })
                            .collect(),
                        ..Default::default()
                    })
            }
            kv_request::Op::Batch(b) => {
                for k in b
                    .writes
                    .iter()
                    .filter_map(tessera_kv::store::batch_write_key)
                {
                    if let Err(resp) = check_user_key(k) {
                        return *resp;
                    }
                }
                db.write_batch(b.writes)
                    .await
                    .map(|()| KvResponse::default())
            }
            kv_request::Op::Split(s) => db.split(&s.split_key).await.map(|d| KvResponse {
                descriptor: Some(d),
                ..Default::default()
            }),
            kv_request::Op::TransferLease(t) => {
                let key = match self.range_key(run, req.range_id, t.key).await {
                    Ok(k) => k,
                    Err(resp) => return *resp,
                };
                db.transfer_lease(&key, t.target_node)
                    .await
                    .map(|()| KvResponse::default())
            }
            kv_request::Op::ChangeReplicas(c) => {
                let key = match self.range_key(run, req.range_id, c.key).await {
                    Ok(k) => k,
                    Err(resp) => return *resp,
                };
                db.change_replicas(&key, c.node_id, c.remove)
                    .await
                    .map(|d| KvResponse {
                        descriptor: Some(d),
                        ..Default::default()
                    })
            }
            // Transaction internals travel between nodes only.
            _ => return bad_request("not a client operation"),
        };
        let mut resp = result.unwrap_or_else(db_error);
        resp.timestamp = Some(self.shared.clock.now().into());
        resp
    }

    /// The key that routes a range-level operation: `key` (the range
    /// holding it; empty: range 1) when `range_id` is 0, else the start key
    /// of range `range_id` as recorded in /meta.
    async fn range_key(
        &self,
        run: &Running,
        range_id: u64,
        key: Vec<u8>,
    ) -> Result<Vec<u8>, Box<KvResponse>> {
        if range_id == 0 {
            return Ok(key);
        }
        let ranges = run.db.ranges().await.map_err(|e| Box::new(db_error(e)))?;
        ranges
            .into_iter()
            .find(|d| d.range_id == range_id)
            .map(|d| d.start_key)
            .ok_or_else(|| Box::new(bad_request(format!("range {range_id} does not exist"))))
    }
}

fn check_user_key(key: &[u8]) -> Result<(), Box<KvResponse>> {
    if keys::is_user_key(key) {
        Ok(())
    } else {
        Err(Box::new(bad_request(format!(
            "key {} is outside the user keyspace (user keys start with a byte >= 0x20)",
            keys::pretty(key)
        ))))
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn init(&self, _request: Request<InitRequest>) -> Result<Response<InitResponse>, Status> {
        Ok(Response::new(self.shared.init().await))
    }

    async fn client_kv(&self, request: Request<KvRequest>) -> Result<Response<KvResponse>, Status> {
        let Some(run) = self.shared.running() else {
            return Ok(Response::new(unavailable(NOT_READY)));
        };
        Ok(Response::new(
            AdminService::client_kv(self, &run, request.into_inner()).await,
        ))
    }

    async fn ranges(
        &self,
        _request: Request<RangesRequest>,
    ) -> Result<Response<RangesResponse>, Status> {
        let run = self.running()?;
        let descs = run
            .db
            .ranges()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let locals = self.local_ranges(&run).await;
        let mut nodes: Vec<&u64> = locals.keys().collect();
        nodes.sort();
        let ranges = descs
            .into_iter()
            .map(|d| {
                // A deposed leader may not know it yet: the claim in the
                // highest raft term wins.
                let leaseholder_node = nodes
                    .iter()
                    .filter_map(|n| {
                        locals[*n]
                            .iter()
                            .find(|l| {
                                l.leaseholder
                                    && l.descriptor.as_ref().map(|x| x.range_id) == Some(d.range_id)
                            })
                            .map(|l| (l.term, **n))
                    })
                    .max()
                    .map(|(_, n)| n)
                    .unwrap_or(0);
                RangeInfo {
                    descriptor: Some(d),
                    leaseholder_node,
                }
            })
            .collect();
        Ok(Response::new(RangesResponse { ranges }))
    }

    async fn node_status(
        &self,
        _request: Request<NodeStatusRequest>,
    ) -> Result<Response<NodeStatusResponse>, Status> {
        let run = self.running()?;
        let locals = self.local_ranges(&run).await;
        let nodes = self
            .shared
            .book
            .descriptors()
            .into_iter()
            .map(|d| {
                let (live, draining) = self.shared.book.status(d.node_id);
                let local = locals.get(&d.node_id);
                NodeStatus {
                    live,
                    draining,
                    replicas: local.map_or(0, |l| l.len() as u64),
                    leases: local.map_or(0, |l| l.iter().filter(|r| r.leaseholder).count() as u64),
                    descriptor: Some(d),
                }
            })
            .collect();
        Ok(Response::new(NodeStatusResponse {
            cluster_id: run.cluster_id.clone(),
            node_id: run.node_id,
            nodes,
        }))
    }
}
