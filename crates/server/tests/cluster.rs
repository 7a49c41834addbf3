//! In-process cluster tests: real nodes on 127.0.0.1 ports with stores in
//! temporary directories, driven through the Admin service and HTTP.

use std::time::{Duration, Instant};

use tessera_common::proto::{
    kv_error, kv_request, GetRequest, InitRequest, KvRequest, KvResponse, NodeStatusRequest,
    PutRequest, RangesRequest, ScanRequest, SplitRequest, TransferLeaseRequest,
};
use tessera_server::{connect_admin, AdminClient, Channel, Node, NodeConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

fn config(dir: &std::path::Path, join: Vec<String>) -> NodeConfig {
    let mut cfg = NodeConfig::new(dir, "127.0.0.1:0", "127.0.0.1:0");
    cfg.join = join;
    cfg
}

/// Polls `check` until it returns Some or `timeout` passes.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(v) => return v,
            Err(e) => e,
        };
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last: {last}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn put(key: &[u8], value: &[u8]) -> KvRequest {
    KvRequest {
        op: Some(kv_request::Op::Put(PutRequest {
            key: key.to_vec(),
            value: value.to_vec(),
        })),
        ..Default::default()
    }
}

fn get(key: &[u8]) -> KvRequest {
    KvRequest {
        op: Some(kv_request::Op::Get(GetRequest {
            key: key.to_vec(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

async fn client_kv(admin: &mut AdminClient<Channel>, req: KvRequest) -> KvResponse {
    admin
        .client_kv(req)
        .await
        .expect("ClientKv RPC failed")
        .into_inner()
}

/// Raw HTTP GET; returns (status, body).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_join_replicate_and_serve_kv() {
    init_tracing();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let n1 = Node::start(config(dirs[0].path(), vec![])).await.unwrap();
    let seed = n1.listen_addr().to_string();
    let n2 = Node::start(config(dirs[1].path(), vec![seed.clone()]))
        .await
        .unwrap();
    let n3 = Node::start(config(dirs[2].path(), vec![seed.clone()]))
        .await
        .unwrap();
    let nodes = [&n1, &n2, &n3];

    // Before Init: no ids, /health says starting.
    for n in nodes {
        assert_eq!(n.node_id(), None);
        assert_eq!(http_get(n.http_addr(), "/health").await.0, 503);
    }

    let mut admin1 = connect_admin(&seed).await.unwrap();
    let init = admin1.init(InitRequest {}).await.unwrap().into_inner();
    assert!(init.error.is_empty(), "init failed: {}", init.error);
    assert_eq!(init.cluster_id.len(), 32);
    assert_eq!(n1.node_id(), Some(1));

    // The others join and get distinct ids.
    eventually("nodes 2 and 3 to join", Duration::from_secs(20), || async {
        match (n2.node_id(), n3.node_id()) {
            (Some(a), Some(b)) => Ok((a, b)),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let mut ids = vec![n1.node_id(), n2.node_id(), n3.node_id()];
    ids.sort();
    assert_eq!(ids, vec![Some(1), Some(2), Some(3)]);

    // Everyone sees three live nodes.
    for n in nodes {
        let mut admin = connect_admin(&n.listen_addr().to_string()).await.unwrap();
        eventually("3 live nodes", Duration::from_secs(20), || {
            let mut admin = admin.clone();
            async move {
                let st = admin
                    .node_status(NodeStatusRequest {})
                    .await
                    .map_err(|e| e.to_string())?
                    .into_inner();
                let live = st.nodes.iter().filter(|s| s.live).count();
                if st.nodes.len() == 3 && live == 3 {
                    Ok(st)
                } else {
                    Err(format!("{} nodes, {live} live", st.nodes.len()))
                }
            }
        })
        .await;
        let st = admin
            .node_status(NodeStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(st.cluster_id, init.cluster_id);
        assert_eq!(Some(st.node_id), n.node_id());
    }

    // Range 1 is up-replicated to all three nodes by the store queues.
    let ranges = eventually(
        "range 1 to have 3 replicas",
        Duration::from_secs(40),
        || {
            let mut admin = admin1.clone();
            async move {
                let r = admin
                    .ranges(RangesRequest {})
                    .await
                    .map_err(|e| e.to_string())?
                    .into_inner();
                let r1 = r
                    .ranges
                    .iter()
                    .find(|r| r.descriptor.as_ref().map(|d| d.range_id) == Some(1))
                    .ok_or("no range 1")?;
                let d = r1.descriptor.clone().unwrap_or_default();
                let voters = d.replicas.iter().filter(|r| r.r#type == 0).count();
                if voters == 3 && r1.leaseholder_node != 0 {
                    Ok(r)
                } else {
                    Err(format!(
                        "range 1 has {voters} voters of {:?}, leaseholder {}",
                        d.replicas, r1.leaseholder_node
                    ))
                }
            }
        },
    )
    .await;
    let mut replica_nodes: Vec<u64> = ranges.ranges[0]
        .descriptor
        .as_ref()
        .unwrap()
        .replicas
        .iter()
        .map(|r| r.node_id)
        .collect();
    replica_nodes.sort();
    assert_eq!(replica_nodes, vec![1, 2, 3]);

    // Writes through node 2, reads through node 3.
    let mut admin2 = connect_admin(&n2.listen_addr().to_string()).await.unwrap();
    let mut admin3 = connect_admin(&n3.listen_addr().to_string()).await.unwrap();
    for i in 0..200 {
        let key = format!("key{i:05}");
        let resp = client_kv(&mut admin2, put(key.as_bytes(), format!("v{i}").as_bytes())).await;
        assert!(resp.error.is_none(), "put {key}: {:?}", resp.error);
    }
    for i in 0..200 {
        let key = format!("key{i:05}");
        let resp = client_kv(&mut admin3, get(key.as_bytes())).await;
        assert!(resp.error.is_none(), "get {key}: {:?}", resp.error);
        assert_eq!(resp.value, Some(format!("v{i}").into_bytes()), "{key}");
    }
    let scan = client_kv(
        &mut admin1,
        KvRequest {
            op: Some(kv_request::Op::Scan(ScanRequest {
                start: b"key".to_vec(),
                end: b"kez".to_vec(),
                ..Default::default()
            })),
            ..Default::default()
        },
    )
    .await;
    assert!(scan.error.is_none(), "scan: {:?}", scan.error);
    assert_eq!(scan.rows.len(), 200);

    // A split through the gateway: two ranges, both fully replicated with
    // a leaseholder, and a scan across them still sees every key.
    let split = client_kv(
        &mut admin3,
        KvRequest {
            op: Some(kv_request::Op::Split(SplitRequest {
                split_key: b"key00100".to_vec(),
            })),
            ..Default::default()
        },
    )
    .await;
    assert!(split.error.is_none(), "split: {:?}", split.error);
    eventually(
        "2 ranges with 3 replicas and a leaseholder",
        Duration::from_secs(30),
        || {
            let mut admin = admin2.clone();
            async move {
                let r = admin
                    .ranges(RangesRequest {})
                    .await
                    .map_err(|e| e.to_string())?
                    .into_inner();
                let ok = r.ranges.len() == 2
                    && r.ranges.iter().all(|r| {
                        r.leaseholder_node != 0
                            && r.descriptor.as_ref().is_some_and(|d| d.replicas.len() == 3)
                    });
                if ok {
                    Ok(())
                } else {
                    Err(format!("{:?}", r.ranges))
                }
            }
        },
    )
    .await;
    let scan = client_kv(
        &mut admin2,
        KvRequest {
            op: Some(kv_request::Op::Scan(ScanRequest {
                start: b"key".to_vec(),
                end: Vec::new(),
                reverse: true,
                ..Default::default()
            })),
            ..Default::default()
        },
    )
    .await;
    assert!(scan.error.is_none(), "scan: {:?}", scan.error);
    assert_eq!(scan.rows.len(), 200);
    assert_eq!(scan.rows[0].key, b"key00199".to_vec());

    // Lease transfers are routed by key (empty: range 1).
    let transfer = client_kv(
        &mut admin1,
        KvRequest {
            op: Some(kv_request::Op::TransferLease(TransferLeaseRequest {
                target_node: 3,
                key: b"key00150".to_vec(),
            })),
            ..Default::default()
        },
    )
    .await;
    assert!(transfer.error.is_none(), "transfer: {:?}", transfer.error);

    // System keys cannot be written through the client API.
    let resp = client_kv(&mut admin2, put(b"\x02node-id-gen", b"x")).await;
    assert!(
        matches!(
            resp.error.and_then(|e| e.kind),
            Some(kv_error::Kind::BadRequest(_))
        ),
        "writing a system key must be refused"
    );

    // /health on every node.
    for n in nodes {
        let (status, body) = http_get(n.http_addr(), "/health").await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(&format!("\"node_id\":{}", n.node_id().unwrap())));
        assert!(body.contains(&init.cluster_id));
        assert_eq!(http_get(n.http_addr(), "/nope").await.0, 404);
    }

    // Init a second time, on any node, is refused.
    let again = admin1.init(InitRequest {}).await.unwrap().into_inner();
    assert_eq!(again.error, "cluster has already been initialized");
    let again = admin3.init(InitRequest {}).await.unwrap().into_inner();
    assert_eq!(again.error, "cluster has already been initialized");

    // A graceful stop of node 3 leaves the cluster serving.
    n3.shutdown().await;
    for i in [0, 99, 199] {
        let key = format!("key{i:05}");
        let resp = client_kv(&mut admin2, get(key.as_bytes())).await;
        assert_eq!(resp.value, Some(format!("v{i}").into_bytes()), "{key}");
    }
    let (r1, r2) = tokio::join!(n1.shutdown(), n2.shutdown());
    let _ = (r1, r2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_start_on_the_same_store_fails() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let n = Node::start(config(dir.path(), vec![])).await.unwrap();
    let err = match Node::start(config(dir.path(), vec![])).await {
        Ok(_) => panic!("a second node on the same store started"),
        Err(e) => e,
    };
    let msg = err.to_string();
    assert!(
        msg.contains(&dir.path().display().to_string()) && msg.contains("in use"),
        "{msg}"
    );
    n.shutdown().await;
    // The directory is released on shutdown.
    let again = Node::start(config(dir.path(), vec![])).await.unwrap();
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_errors_name_the_flag_and_address() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let cfg = NodeConfig::new(dir.path(), addr.clone(), "127.0.0.1:0");
    let err = Node::start(cfg).await.err().expect("bind must fail");
    assert_eq!(
        err.to_string(),
        format!("cannot bind --listen-addr {addr}: address in use")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_identity_and_data() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let n = Node::start(config(dir.path(), vec![])).await.unwrap();
    let mut admin = connect_admin(&n.listen_addr().to_string()).await.unwrap();
    let init = admin.init(InitRequest {}).await.unwrap().into_inner();
    assert!(init.error.is_empty(), "{}", init.error);
    let resp = client_kv(&mut admin, put(b"hello", b"world")).await;
    assert!(resp.error.is_none(), "{:?}", resp.error);
    n.shutdown().await;

    let n = Node::start(config(dir.path(), vec![])).await.unwrap();
    assert_eq!(n.node_id(), Some(1), "identity is known at once");
    assert_eq!(n.cluster_id(), Some(init.cluster_id.clone()));
    let mut admin = connect_admin(&n.listen_addr().to_string()).await.unwrap();
    let resp = client_kv(&mut admin, get(b"hello")).await;
    assert!(resp.error.is_none(), "{:?}", resp.error);
    assert_eq!(resp.value, Some(b"world".to_vec()));
    let again = admin.init(InitRequest {}).await.unwrap().into_inner();
    assert_eq!(again.error, "cluster has already been initialized");
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_join_addresses_are_fatal_after_the_join_timeout() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), vec!["127.0.0.1:1".into()]);
    cfg.join_timeout = Duration::from_millis(1500);
    let started = Instant::now();
    let n = Node::start(cfg).await.unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(10), n.wait_fatal())
        .await
        .expect("no fatal error");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert_eq!(
        msg,
        "cannot reach any --join address (127.0.0.1:1: connection refused)"
    );
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_another_cluster_is_fatal() {
    init_tracing();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Two separate single-node clusters.
    let a = Node::start(config(da.path(), vec![])).await.unwrap();
    let b = Node::start(config(db.path(), vec![])).await.unwrap();
    let mut cluster_ids = Vec::new();
    for n in [&a, &b] {
        let mut admin = connect_admin(&n.listen_addr().to_string()).await.unwrap();
        let init = admin.init(InitRequest {}).await.unwrap().into_inner();
        assert!(init.error.is_empty());
        cluster_ids.push(init.cluster_id);
    }
    a.shutdown().await;
    // A's store restarted with --join pointing into cluster B.
    let b_addr = b.listen_addr().to_string();
    let a = Node::start(config(da.path(), vec![b_addr.clone()]))
        .await
        .unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(10), a.wait_fatal())
        .await
        .expect("no fatal error");
    assert_eq!(
        msg,
        format!(
            "store belongs to cluster {} but {b_addr} is in cluster {}",
            cluster_ids[0], cluster_ids[1]
        )
    );
    // B never merged anything from A.
    let mut admin = connect_admin(&b_addr).await.unwrap();
    let st = admin
        .node_status(NodeStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.nodes.len(), 1);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_cluster_answers_unavailable() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let n = Node::start(config(dir.path(), vec![])).await.unwrap();
    let mut admin = connect_admin(&n.listen_addr().to_string()).await.unwrap();
    let resp = client_kv(&mut admin, get(b"k")).await;
    match resp.error.and_then(|e| e.kind) {
        Some(kv_error::Kind::Unavailable(u)) => {
            assert_eq!(u.reason, "node is not part of an initialized cluster yet")
        }
        other => panic!("unexpected {other:?}"),
    }
    let err = admin.ranges(RangesRequest {}).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    n.shutdown().await;
    let err = connect_admin("127.0.0.1:1").await.unwrap_err();
    assert_eq!(err, "cannot reach node at 127.0.0.1:1: connection refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_whole_cluster_restarts_with_its_data() {
    init_tracing();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let n1 = Node::start(config(dirs[0].path(), vec![])).await.unwrap();
    let seed = n1.listen_addr().to_string();
    let n2 = Node::start(config(dirs[1].path(), vec![seed.clone()]))
        .await
        .unwrap();
    let n3 = Node::start(config(dirs[2].path(), vec![seed.clone()]))
        .await
        .unwrap();
    let mut admin1 = connect_admin(&seed).await.unwrap();
    let init = admin1.init(InitRequest {}).await.unwrap().into_inner();
    assert!(init.error.is_empty(), "{}", init.error);
    eventually("range 1 on 3 nodes", Duration::from_secs(40), || {
        let mut admin = admin1.clone();
        async move {
            let r = admin
                .ranges(RangesRequest {})
                .await
                .map_err(|e| e.to_string())?
                .into_inner();
            match r.ranges.first().and_then(|r| r.descriptor.as_ref()) {
                Some(d) if d.replicas.iter().filter(|r| r.r#type == 0).count() == 3 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
    for i in 0..20 {
        let resp = client_kv(&mut admin1, put(format!("k{i}").as_bytes(), b"v")).await;
        assert!(resp.error.is_none(), "{:?}", resp.error);
    }
    let ids: Vec<_> = [&n1, &n2, &n3].iter().map(|n| n.node_id()).collect();
    let addrs: Vec<String> = [&n1, &n2, &n3]
        .iter()
        .map(|n| n.listen_addr().to_string())
        .collect();
    tokio::join!(n1.shutdown(), n2.shutdown(), n3.shutdown());

    // Same directories and addresses; node 1 has no --join and finds the
    // others through the peers it remembered.
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let join = if i == 0 {
            vec![]
        } else {
            vec![addrs[0].clone()]
        };
        let mut cfg = config(dir.path(), join);
        cfg.listen_addr = addrs[i].clone();
        nodes.push(Node::start(cfg).await.unwrap());
    }
    let restarted: Vec<_> = nodes.iter().map(|n| n.node_id()).collect();
    assert_eq!(restarted, ids);
    let mut admin3 = connect_admin(&addrs[2]).await.unwrap();
    for i in 0..20 {
        let resp = client_kv(&mut admin3, get(format!("k{i}").as_bytes())).await;
        assert!(resp.error.is_none(), "k{i}: {:?}", resp.error);
        assert_eq!(resp.value, Some(b"v".to_vec()), "k{i}");
    }
    let resp = client_kv(&mut admin3, put(b"after", b"restart")).await;
    assert!(resp.error.is_none(), "{:?}", resp.error);
    let mut admin1 = connect_admin(&addrs[0]).await.unwrap();
    eventually(
        "node 1 to see 3 live nodes",
        Duration::from_secs(20),
        || {
            let mut admin = admin1.clone();
            async move {
                let st = admin
                    .node_status(NodeStatusRequest {})
                    .await
                    .map_err(|e| e.to_string())?
                    .into_inner();
                let live = st.nodes.iter().filter(|s| s.live).count();
                if live == 3 {
                    Ok(())
                } else {
                    Err(format!("{live} live"))
                }
            }
        },
    )
    .await;
    let resp = client_kv(&mut admin1, get(b"after")).await;
    assert_eq!(resp.value, Some(b"restart".to_vec()), "{:?}", resp.error);
    let mut it = nodes.into_iter();
    let (a, b, c) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
    tokio::join!(a.shutdown(), b.shutdown(), c.shutdown());
}
