//! Distributed transactions on an in-process three-node cluster: atomic
//! commits across ranges, serializability under concurrent transfers,
//! write skew refused, coordinator failures that block nobody, deadlocks
//! broken.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tessera_common::proto::{
    batch_write::Write, kv_error, kv_request, BatchWrite, EndTxnRequest, KvRequest, PutRequest,
    RangeDescriptor, TxnMeta, TxnStatus, TxnWriteRequest,
};
use tessera_kv::db::{DialError, DialFuture, Error};
use tessera_kv::txn::{Isolation, Txn, TXN_EXPIRY};
use tessera_kv::{NodeDialer, StoreConfig, DB};

fn put(key: &[u8], value: &[u8]) -> BatchWrite {
    BatchWrite {
        write: Some(Write::Put(PutRequest {
            key: key.to_vec(),
            value: value.to_vec(),
        })),
    }
}

async fn ready_cluster(splits: &[&[u8]]) -> Cluster {
    ready_cluster_with(splits, |_| {}).await
}

async fn ready_cluster_with(splits: &[&[u8]], tune: impl Fn(&mut StoreConfig)) -> Cluster {
    let c = cluster_with(3, tune).await;
    let db = c.dbs[&1].clone();
    wait_for_three_voters(&db).await;
    for s in splits {
        db.split(s).await.unwrap();
    }
    c
}

/// A transfer of `amount` from `from` to `to`, retried on retry errors.
async fn transfer(db: &Arc<DB>, from: &[u8], to: &[u8], amount: i64) -> u32 {
    let mut retries = 0;
    loop {
        let mut t = Txn::begin(db.clone(), Isolation::Serializable);
        let r = async {
            let a = balance(t.get(from).await?);
            let b = balance(t.get(to).await?);
            t.commit(vec![
                put(from, (a - amount).to_string().as_bytes()),
                put(to, (b + amount).to_string().as_bytes()),
            ])
            .await
        }
        .await;
        match r {
            Ok(_) => return retries,
            Err(Error::Retry(_)) | Err(Error::Deadlock(_)) => {
                t.rollback().await;
                retries += 1;
            }
            Err(e) => panic!("transfer failed: {e}"),
        }
    }
}

fn balance(v: Option<Vec<u8>>) -> i64 {
    v.map(|v| String::from_utf8(v).unwrap().parse().unwrap())
        .unwrap_or(0)
}

fn account(i: usize) -> Vec<u8> {
    format!("acct/{i:02}").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_commits_atomically_across_ranges() {
    let c = ready_cluster(&[b"m"]).await;
    let db = c.dbs[&1].clone();
    let mut t = Txn::begin(db.clone(), Isolation::Serializable);
    assert_eq!(t.get(b"a").await.unwrap(), None);
    t.commit(vec![put(b"a", b"1"), put(b"z", b"2")])
        .await
        .unwrap();
    for db in c.dbs.values() {
        assert_eq!(db.get(b"a").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(db.get(b"z").await.unwrap(), Some(b"2".to_vec()));
    }
    // A rolled-back transaction leaves nothing.
    let mut t = Txn::begin(db.clone(), Isolation::Serializable);
    t.get(b"a").await.unwrap();
    t.rollback().await;
    assert_eq!(db.get(b"a").await.unwrap(), Some(b"1".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transfers_across_ranges_keep_the_total() {
    let c = ready_cluster(&[b"acct/03", b"acct/06"]).await;
    let db = c.dbs[&1].clone();
    const N: usize = 8;
    let mut init = Txn::begin(db.clone(), Isolation::Serializable);
    init.commit((0..N).map(|i| put(&account(i), b"100")).collect())
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4u64 {
        let db = c.dbs[&(w % 3 + 1)].clone();
        workers.push(tokio::spawn(async move {
            let mut retries = 0;
            for i in 0..15usize {
                let from = account((i * 3 + w as usize) % N);
                let to = account((i * 5 + 1 + w as usize * 2) % N);
                if from != to {
                    retries += transfer(&db, &from, &to, 7).await;
                }
            }
            retries
        }));
    }
    let reader = {
        let db = c.dbs[&2].clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut t = Txn::begin(db.clone(), Isolation::Serializable);
                match t.scan(b"acct/", b"acct0", 0, false).await {
                    Ok(rows) => {
                        let total: i64 = rows.iter().map(|(_, v)| balance(Some(v.clone()))).sum();
                        assert_eq!(total, 100 * N as i64, "a snapshot saw a partial transfer");
                        reads += 1;
                    }
                    Err(Error::Retry(_)) => {}
                    Err(e) => panic!("read-all failed: {e}"),
                }
            }
            reads
        })
    };
    let mut retries = 0;
    for w in workers {
        retries += w.await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.await.unwrap();
    let rows = db.scan(b"acct/", b"acct0", 0, false).await.unwrap();
    let total: i64 = rows.iter().map(|(_, v)| balance(Some(v.clone()))).sum();
    assert_eq!(rows.len(), N);
    assert_eq!(total, 100 * N as i64);
    eprintln!("60 transfers ({retries} retries), {reads} consistent read-alls");
    assert!(reads > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_skew_is_refused() {
    let c = ready_cluster(&[b"y"]).await;
    let db = c.dbs[&1].clone();
    db.put(b"x", b"1").await.unwrap();
    db.put(b"y", b"1").await.unwrap();
    // Both read x and y (on-call doctors); each takes one off call.
    let mut t1 = Txn::begin(db.clone(), Isolation::Serializable);
    let mut t2 = Txn::begin(c.dbs[&2].clone(), Isolation::Serializable);
    for t in [&mut t1, &mut t2] {
        assert_eq!(t.get(b"x").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(t.get(b"y").await.unwrap(), Some(b"1".to_vec()));
    }
    let r1 = t1.commit(vec![put(b"x", b"0")]).await;
    let r2 = t2.commit(vec![put(b"y", b"0")]).await;
    assert!(r1.is_ok(), "{r1:?}");
    match r2 {
        Err(Error::Retry(m)) => assert!(m.contains("serialization"), "{m}"),
        other => panic!("write skew allowed: {other:?}"),
    }
    assert_eq!(db.get(b"y").await.unwrap(), Some(b"1".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_update_is_refused() {
    let c = ready_cluster(&[]).await;
    let db = c.dbs[&1].clone();
    db.put(b"counter", b"0").await.unwrap();
    let mut t1 = Txn::begin(db.clone(), Isolation::Serializable);
    let mut t2 = Txn::begin(c.dbs[&3].clone(), Isolation::Serializable);
    let v1 = balance(t1.get(b"counter").await.unwrap());
    let v2 = balance(t2.get(b"counter").await.unwrap());
    t1.commit(vec![put(b"counter", (v1 + 1).to_string().as_bytes())])
        .await
        .unwrap();
    let r2 = t2
        .commit(vec![put(b"counter", (v2 + 1).to_string().as_bytes())])
        .await;
    assert!(matches!(r2, Err(Error::Retry(_))), "{r2:?}");
    assert_eq!(db.get(b"counter").await.unwrap(), Some(b"1".to_vec()));
}

/// A client whose node "dies" after `allowed` transactional writes: every
/// later request fails, like a coordinator killed mid-commit.
struct DyingDialer {
    inner: Dialer,
    allowed: AtomicUsize,
    dead: AtomicBool,
}

impl NodeDialer for DyingDialer {
    fn send(&self, node_id: u64, req: KvRequest) -> DialFuture {
        if matches!(req.op, Some(kv_request::Op::TxnWrite(_)))
            && self
                .allowed
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_err()
        {
            self.dead.store(true, Ordering::SeqCst);
        }
        if self.dead.load(Ordering::SeqCst) {
            return Box::pin(async { Err(DialError::not_sent("coordinator is dead")) });
        }
        self.inner.send(node_id, req)
    }
    fn first_range(&self) -> Option<(RangeDescriptor, u64)> {
        self.inner.first_range()
    }
    fn known_nodes(&self) -> Vec<u64> {
        self.inner.known_nodes()
    }
}

async fn coordinator_dies_after(allowed: usize) -> (Cluster, Duration) {
    let c = ready_cluster(&[b"m"]).await;
    let db = c.dbs[&1].clone();
    db.put(b"a", b"old").await.unwrap();
    db.put(b"z", b"old").await.unwrap();
    let dying = Arc::new(DB::new(
        Arc::new(DyingDialer {
            inner: Dialer(c.net.clone()),
            allowed: AtomicUsize::new(allowed),
            dead: AtomicBool::new(false),
        }),
        db.clock().clone(),
    ));
    // Warm its range cache so the commit's requests go out in order.
    dying.get(b"a").await.unwrap();
    dying.get(b"z").await.unwrap();
    let doomed = dying.clone();
    tokio::spawn(async move {
        let mut t = Txn::begin(doomed, Isolation::Serializable);
        let _ = t.commit(vec![put(b"a", b"new"), put(b"z", b"new")]).await;
    });
    // Let it write what it can, then die.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another transaction writes the same keys: it must get through.
    let started = Instant::now();
    let mut t = Txn::begin(c.dbs[&2].clone(), Isolation::Serializable);
    let a = t.get(b"a").await.unwrap();
    let z = t.get(b"z").await.unwrap();
    assert_eq!(a, z, "the dead transaction is visible in part: {a:?} {z:?}");
    t.commit(vec![put(b"a", b"after"), put(b"z", b"after")])
        .await
        .unwrap();
    (c, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_coordinator_with_all_writes_in_place_is_committed_by_others() {
    // Both intents and the STAGING record are written; the coordinator dies
    // before saying COMMITTED.
    let (c, waited) = coordinator_dies_after(2).await;
    assert!(waited < Duration::from_secs(6), "blocked for {waited:?}");
    assert_eq!(c.dbs[&3].get(b"a").await.unwrap(), Some(b"after".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_coordinator_with_a_write_missing_is_aborted_by_others() {
    // Only the anchor's intent and STAGING record are written.
    let (c, waited) = coordinator_dies_after(1).await;
    assert!(waited < Duration::from_secs(6), "blocked for {waited:?}");
    assert_eq!(c.dbs[&3].get(b"z").await.unwrap(), Some(b"after".to_vec()));
}

/// Drops every parallel commit's COMMITTED mark (the resolution naming its
/// record's anchor) while the other resolutions get through: a coordinator
/// that dies right after answering its client, the record still STAGING
/// and the writes of other ranges already resolved.
struct MarkDroppingDialer {
    inner: Dialer,
}

impl NodeDialer for MarkDroppingDialer {
    fn send(&self, node_id: u64, req: KvRequest) -> DialFuture {
        if let Some(kv_request::Op::ResolveIntents(r)) = &req.op {
            if !r.commit_record_anchor.is_empty() {
                return Box::pin(async { Err(DialError::not_sent("coordinator is dead")) });
            }
        }
        self.inner.send(node_id, req)
    }
    fn first_range(&self) -> Option<(RangeDescriptor, u64)> {
        self.inner.first_range()
    }
    fn known_nodes(&self) -> Vec<u64> {
        self.inner.known_nodes()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_racing_the_committed_mark_finds_the_writes_resolved_before_it() {
    let c = ready_cluster(&[b"m"]).await;
    let db = c.dbs[&1].clone();
    let dying = Arc::new(DB::new(
        Arc::new(MarkDroppingDialer {
            inner: Dialer(c.net.clone()),
        }),
        db.clock().clone(),
    ));
    // A commit pushed above its read timestamp (say, by a lease newer than
    // it) commits explicitly instead: try fresh keys until one commits in
    // parallel.
    for i in 0..10 {
        let (a, z) = (format!("a{i}").into_bytes(), format!("z{i}").into_bytes());
        db.put(&a, b"old").await.unwrap();
        db.put(&z, b"old").await.unwrap();
        dying.get(&a).await.unwrap();
        dying.get(&z).await.unwrap();
        let mut t = Txn::begin(dying.clone(), Isolation::Serializable);
        t.commit(vec![put(&a, b"new"), put(&z, b"new")])
            .await
            .unwrap();
        drop(t);
        // `z` (off the record's range) is resolved; `a` keeps its intent
        // under the STAGING record if the commit was a parallel one.
        wait_for("z resolved", Duration::from_secs(10), async || {
            intents_of(&c, &z) == 0
        })
        .await;
        if intents_of(&c, &a) == 0 {
            continue;
        }
        // A reader meets `a`'s intent and, once the record's heartbeat has
        // expired, recovers the record: `z` is not missing (its marker
        // says it was resolved committed), so the commit stands.
        let mut t = Txn::begin(c.dbs[&2].clone(), Isolation::Serializable);
        assert_eq!(t.get(&a).await.unwrap(), Some(b"new".to_vec()));
        assert_eq!(t.get(&z).await.unwrap(), Some(b"new".to_vec()));
        return;
    }
    panic!("no commit was a parallel one");
}

/// Delays transactional writes to keys with a prefix, to interleave two
/// commits into a deadlock.
struct SlowDialer {
    inner: Dialer,
    slow_prefix: Vec<u8>,
}

impl NodeDialer for SlowDialer {
    fn send(&self, node_id: u64, req: KvRequest) -> DialFuture {
        let slow = match &req.op {
            Some(kv_request::Op::TxnWrite(w)) => w.writes.iter().any(|w| match &w.write {
                Some(Write::Put(p)) => p.key.starts_with(&self.slow_prefix),
                _ => false,
            }),
            _ => false,
        };
        let fut = self.inner.send(node_id, req);
        Box::pin(async move {
            if slow {
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            fut.await
        })
    }
    fn first_range(&self) -> Option<(RangeDescriptor, u64)> {
        self.inner.first_range()
    }
    fn known_nodes(&self) -> Vec<u64> {
        self.inner.known_nodes()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlock_aborts_exactly_one_transaction() {
    let c = ready_cluster(&[b"m"]).await;
    let clock = c.dbs[&1].clock().clone();
    let slow_db = |prefix: &[u8]| {
        Arc::new(DB::new(
            Arc::new(SlowDialer {
                inner: Dialer(c.net.clone()),
                slow_prefix: prefix.to_vec(),
            }),
            clock.clone(),
        ))
    };
    // T1 gets "a" at once and "z" late; T2 gets "z" at once and "a" late.
    let (db1, db2) = (slow_db(b"z"), slow_db(b"a"));
    let run = |db: Arc<DB>, v: &'static [u8]| {
        tokio::spawn(async move {
            let mut t = Txn::begin(db, Isolation::Serializable);
            let r = t.commit(vec![put(b"a", v), put(b"z", v)]).await;
            if r.is_err() {
                t.rollback().await;
            }
            r
        })
    };
    let started = Instant::now();
    let (h1, h2) = (run(db1, b"1"), run(db2, b"2"));
    let (r1, r2) = (h1.await.unwrap(), h2.await.unwrap());
    let deadlocks = [&r1, &r2]
        .iter()
        .filter(|r| matches!(r, Err(Error::Deadlock(_))))
        .count();
    assert_eq!(deadlocks, 1, "{r1:?} {r2:?}");
    assert!(r1.is_ok() || r2.is_ok(), "{r1:?} {r2:?}");
    let winner: &[u8] = if r1.is_ok() { b"1" } else { b"2" };
    let db = &c.dbs[&3];
    assert_eq!(db.get(b"a").await.unwrap(), Some(winner.to_vec()));
    assert_eq!(db.get(b"z").await.unwrap(), Some(winner.to_vec()));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linearizable_commits_wait_out_the_clock_uncertainty() {
    let c = ready_cluster(&[b"m"]).await;
    let db = c.dbs[&1].clone();
    let max_offset = db.clock().max_offset();
    db.set_commit_wait(true);
    for keys in [[b"a", b"b"], [b"a", b"z"]] {
        let started = Instant::now();
        let mut t = Txn::begin(db.clone(), Isolation::Serializable);
        let ts = t
            .commit(vec![put(keys[0], b"1"), put(keys[1], b"1")])
            .await
            .unwrap();
        // Acknowledged only once the commit timestamp is behind every
        // clock in the cluster.
        assert!(db.clock().physical_now() > ts.wall + max_offset.as_millis() as u64);
        assert!(started.elapsed() >= max_offset);
    }
    db.set_commit_wait(false);
}

/// A cluster where `list` holds "1", and a transaction that read it and
/// is about to append: its value with ",2" appended.
async fn list_read_for_an_append() -> (Cluster, Arc<DB>, Txn, Vec<u8>) {
    let c = ready_cluster(&[]).await;
    let db = c.dbs[&1].clone();
    db.put(b"list", b"1").await.unwrap();
    let mut t = Txn::begin(db.clone(), Isolation::Serializable);
    let mut appended = t.get(b"list").await.unwrap().unwrap();
    appended.extend_from_slice(b",2");
    (c, db, t, appended)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_reply_was_lost_is_reported_as_unknown_not_as_a_retry() {
    // Found by the chaos harness (append under kill): the retry of a
    // one-phase commit that had applied met its own write, was told
    // "write too old", and the client was told to retry: the append then
    // happened twice.
    let (c, db, mut t, appended) = list_read_for_an_append().await;
    // The reply is lost, and another client appends before the retry.
    c.net.put_after_lost_reply(b"list", b"1,2,3");
    c.net.lose_next_write_reply.store(true, Ordering::SeqCst);
    let r = t.commit(vec![put(b"list", &appended)]).await;
    match r {
        Err(Error::Unavailable {
            ambiguous: true, ..
        }) => {}
        other => panic!("an applied commit was reported as {other:?}"),
    }
    assert_eq!(db.get(b"list").await.unwrap(), Some(b"1,2,3".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_reply_was_lost_is_unknown_even_if_the_retry_meets_an_intent() {
    // Found by the chaos harness (append under clock skew, whose restarts
    // kill the leaseholder): a one-phase commit applied, its reply was
    // lost, and another transaction laid an intent over its write before
    // the retry. The retry met that intent, waited for it and tried again
    // as if nothing had applied: it met its own first write as "write too
    // old" and either failed to refresh (the client was told to retry a
    // transaction that had committed) or refreshed and applied a second
    // time (here: reported as a success at a later timestamp).
    let (c, db, mut t, appended) = list_read_for_an_append().await;
    // The other transaction's intent; its record never appears, so it is
    // aborted once it looks abandoned.
    let now = db.clock().now();
    let other = TxnMeta {
        id: vec![7; 16],
        anchor: b"list".to_vec(),
        write_ts: Some(now.into()),
        read_ts: Some(now.into()),
        ..Default::default()
    };
    *c.net.after_lost_reply.lock() = Some(kv_request::Op::TxnWrite(TxnWriteRequest {
        txn: Some(other),
        writes: vec![put(b"list", b"1,2,3")],
        ..Default::default()
    }));
    c.net.lose_next_write_reply.store(true, Ordering::SeqCst);
    match t.commit(vec![put(b"list", &appended)]).await {
        Err(Error::Unavailable {
            ambiguous: true, ..
        }) => {}
        other => panic!("an applied commit was reported as {other:?}"),
    }
    // The other transaction is abandoned: readers abort it and see the
    // commit whose reply was lost.
    assert_eq!(db.get(b"list").await.unwrap(), Some(b"1,2".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborting_a_transaction_that_recovery_committed_answers_with_the_record() {
    // A coordinator that fails after its record went STAGING aborts it;
    // if recovery committed it first, the answer must say so (the
    // coordinator then resolves the intents as committed and reports
    // success instead of removing them).
    let c = ready_cluster(&[]).await;
    let store = c.net.up(1).unwrap();
    let range_id = store.first_range().unwrap().0.range_id;
    let now = c.dbs[&1].clock().now();
    let meta = TxnMeta {
        id: vec![9; 16],
        anchor: b"anchor".to_vec(),
        write_ts: Some(now.into()),
        read_ts: Some(now.into()),
        ..Default::default()
    };
    let end = |status: TxnStatus| {
        kv_request::Op::TxnWrite(TxnWriteRequest {
            txn: Some(meta.clone()),
            end: Some(EndTxnRequest {
                status: status as i32,
                commit_ts: Some(now.into()),
                in_flight: Vec::new(),
            }),
            ..Default::default()
        })
    };
    // Sent to each node in turn until the leaseholder answers.
    let net = &c.net;
    let send = |op: kv_request::Op| async move {
        for n in 1..=3 {
            let resp = net
                .up(n)
                .unwrap()
                .execute(KvRequest {
                    range_id,
                    op: Some(op.clone()),
                    ..Default::default()
                })
                .await;
            let not_leaseholder = matches!(
                resp.error.as_ref().and_then(|e| e.kind.as_ref()),
                Some(kv_error::Kind::NotLeaseholder(_))
            );
            if !not_leaseholder {
                return resp;
            }
        }
        panic!("no leaseholder");
    };
    let committed = send(end(TxnStatus::Committed)).await;
    assert!(committed.error.is_none(), "{committed:?}");
    let aborted = send(end(TxnStatus::Aborted)).await;
    assert!(aborted.error.is_none(), "{aborted:?}");
    assert_eq!(
        aborted.record.map(|r| r.status),
        Some(TxnStatus::Committed as i32)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blind_commit_whose_reply_was_lost_is_not_applied_twice() {
    // A one-phase commit without reads may be pushed above newer writes;
    // sent again after a lost reply, it would apply a second time, over
    // the write that came between.
    let c = ready_cluster(&[]).await;
    let db = c.dbs[&1].clone();
    for isolation in [Isolation::Serializable, Isolation::ReadCommitted] {
        db.put(b"blind", b"old").await.unwrap();
        let mut t = Txn::begin(db.clone(), isolation);
        c.net.put_after_lost_reply(b"blind", b"between");
        c.net.lose_next_write_reply.store(true, Ordering::SeqCst);
        match t.commit(vec![put(b"blind", b"mine")]).await {
            Err(Error::Unavailable {
                ambiguous: true, ..
            }) => {}
            other => panic!("{isolation:?}: a commit whose reply was lost gave {other:?}"),
        }
        assert_eq!(
            db.get(b"blind").await.unwrap(),
            Some(b"between".to_vec()),
            "{isolation:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_blocks_writers_until_its_transaction_ends_but_not_readers() {
    let c = ready_cluster(&[b"m"]).await;
    let db = c.dbs[&1].clone();
    db.put(b"a", b"1").await.unwrap();
    db.put(b"z", b"1").await.unwrap();
    let mut holder = Txn::begin(db.clone(), Isolation::Serializable);
    let values = holder.lock(&[b"z".to_vec(), b"a".to_vec()]).await.unwrap();
    assert_eq!(values, vec![Some(b"1".to_vec()), Some(b"1".to_vec())]);

    // A plain reader, transactional or not, is not blocked.
    let reader = c.dbs[&2].clone();
    let read = tokio::time::timeout(Duration::from_secs(2), reader.get(b"a")).await;
    assert_eq!(
        read.expect("a reader waited on a lock").unwrap(),
        Some(b"1".to_vec())
    );
    let mut t = Txn::begin(reader.clone(), Isolation::Serializable);
    let read = tokio::time::timeout(Duration::from_secs(2), t.get(b"z")).await;
    assert_eq!(
        read.expect("a reader waited on a lock").unwrap(),
        Some(b"1".to_vec())
    );
    t.rollback().await;

    // A writer waits for the holder (which keeps heartbeating).
    let writer = tokio::spawn({
        let db = c.dbs[&3].clone();
        async move {
            let mut t = Txn::begin(db, Isolation::Serializable);
            let v = t.lock(&[b"a".to_vec()]).await.unwrap()[0].clone();
            let n = balance(v) + 10;
            t.commit(vec![put(b"a", n.to_string().as_bytes())])
                .await
                .unwrap();
            Instant::now()
        }
    });
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(!writer.is_finished(), "a writer went through a held lock");
    holder
        .commit(vec![put(b"a", b"5"), put(b"z", b"5")])
        .await
        .unwrap();
    let released = Instant::now();
    let done = tokio::time::timeout(Duration::from_secs(5), writer)
        .await
        .expect("the writer was not woken when the lock went")
        .unwrap();
    assert!(done.duration_since(released) < Duration::from_secs(2));
    // The writer read the holder's value under its lock: no lost update.
    assert_eq!(db.get(b"a").await.unwrap(), Some(b"15".to_vec()));
    assert_eq!(db.get(b"z").await.unwrap(), Some(b"5".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_reads_the_latest_value_and_refreshes_or_restarts() {
    let c = ready_cluster(&[b"m"]).await;
    let db = c.dbs[&1].clone();
    db.put(b"a", b"1").await.unwrap();
    db.put(b"z", b"1").await.unwrap();

    // The locked key changed after the snapshot; nothing else read changed:
    // the transaction moves up and sees the new value.
    let mut t = Txn::begin(db.clone(), Isolation::Serializable);
    assert_eq!(t.get(b"z").await.unwrap(), Some(b"1".to_vec()));
    c.dbs[&2].put(b"a", b"2").await.unwrap();
    assert_eq!(
        t.lock(&[b"a".to_vec()]).await.unwrap(),
        vec![Some(b"2".to_vec())]
    );
    t.commit(vec![put(b"a", b"3")]).await.unwrap();
    assert_eq!(db.get(b"a").await.unwrap(), Some(b"3".to_vec()));

    // Something read earlier changed too: the move is refused.
    let mut t = Txn::begin(db.clone(), Isolation::Serializable);
    assert_eq!(t.get(b"z").await.unwrap(), Some(b"1".to_vec()));
    c.dbs[&2].put(b"z", b"2").await.unwrap();
    c.dbs[&2].put(b"a", b"4").await.unwrap();
    let r = t.lock(&[b"a".to_vec()]).await;
    assert!(
        matches!(&r, Err(Error::Retry(m)) if m.contains("write too old")),
        "{r:?}"
    );
    t.rollback().await;

    // A lock taken and released writes nothing: a reader's snapshot of the
    // key stays valid (no new version appears).
    let mut reader = Txn::begin(db.clone(), Isolation::Serializable);
    let before = reader.get(b"a").await.unwrap();
    let mut locker = Txn::begin(c.dbs[&3].clone(), Isolation::Serializable);
    locker.lock(&[b"a".to_vec()]).await.unwrap();
    locker.commit(vec![]).await.unwrap();
    reader.commit(vec![put(b"z", b"x")]).await.unwrap();
    assert_eq!(db.get(b"a").await.unwrap(), before);
}

/// Moves the lease of the range holding `key` away from its holder;
/// returns the new leaseholder.
async fn move_lease(db: &Arc<DB>, key: &[u8]) -> u64 {
    let desc = db.range_for(key).await.unwrap();
    let from = db.leaseholder_of(&desc).await.unwrap();
    let to = if from == 1 { 2 } else { 1 };
    db.transfer_lease(key, to).await.unwrap();
    wait_for("the lease to move", Duration::from_secs(10), async || {
        db.leaseholder_of(&desc).await.ok() == Some(to)
    })
    .await;
    to
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_locks_hold_across_a_lease_transfer() {
    let c = ready_cluster(&[b"m"]).await;
    let db = c.dbs[&1].clone();
    // SERIALIZABLE locks live in the leaseholder's memory and are
    // replicated before it hands the lease over; READ COMMITTED ones are
    // replicated from the start.
    for (isolation, key) in [
        (Isolation::Serializable, b"a"),
        (Isolation::ReadCommitted, b"b"),
    ] {
        db.put(key, b"1").await.unwrap();
        let mut holder = Txn::begin(db.clone(), isolation);
        holder.lock(&[key.to_vec()]).await.unwrap();
        move_lease(&db, key).await;
        let writer = tokio::spawn({
            let db = c.dbs[&3].clone();
            async move {
                let mut t = Txn::begin(db, isolation);
                let v = t.lock(&[key.to_vec()]).await.unwrap()[0].clone();
                let n = balance(v) + 10;
                t.commit(vec![put(key, n.to_string().as_bytes())])
                    .await
                    .unwrap();
            }
        });
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            !writer.is_finished(),
            "{isolation:?}: a writer went through a lock held across a lease transfer"
        );
        holder.commit(vec![put(key, b"5")]).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), writer)
            .await
            .expect("the writer was not woken when the lock went")
            .unwrap();
        assert_eq!(db.get(key).await.unwrap(), Some(b"15".to_vec()));
    }
}

/// A read that arrives after a write has taken its timestamp, and before
/// the write is proposed, must wait for it: the write is below the read.
/// Regression: the write's timestamp used to be placed before its keys
/// were latched, so a read in between read the old value, and the write
/// then committed below it (found by the chaos bank run, seed 582113337).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_between_a_writes_placement_and_its_proposal_waits_for_it() {
    let armed = Arc::new(AtomicBool::new(false));
    let placed = Arc::new(tokio::sync::Notify::new());
    let go = Arc::new(tokio::sync::Notify::new());
    let hook: tessera_kv::TestingHook = {
        let (armed, placed, go) = (armed.clone(), placed.clone(), go.clone());
        Arc::new(move |keys: &[Vec<u8>]| {
            let hold = keys.iter().any(|k| k == b"k") && armed.swap(false, Ordering::SeqCst);
            let (placed, go) = (placed.clone(), go.clone());
            Box::pin(async move {
                if hold {
                    placed.notify_one();
                    go.notified().await;
                }
            })
        })
    };
    let c = cluster_with(3, |cfg| cfg.testing.write_placed = Some(hook.clone())).await;
    let db = c.dbs[&1].clone();
    wait_for_three_voters(&db).await;
    db.put(b"k", b"old").await.unwrap();
    armed.store(true, Ordering::SeqCst);
    let writer = tokio::spawn({
        let db = db.clone();
        async move {
            let mut t = Txn::begin(db, Isolation::Serializable);
            t.commit(vec![put(b"k", b"new")]).await
        }
    });
    tokio::time::timeout(Duration::from_secs(10), placed.notified())
        .await
        .expect("the write never reached its proposal");
    // The read's timestamp is taken now, above the write's.
    let reader = tokio::spawn({
        let db = c.dbs[&2].clone();
        async move { db.get(b"k").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!reader.is_finished(), "the read did not wait for the write");
    go.notify_one();
    let commit_ts = writer.await.unwrap().unwrap();
    let seen = reader.await.unwrap().unwrap();
    assert_eq!(
        seen,
        Some(b"new".to_vec()),
        "a read after the write's placement (commit at {commit_ts:?}) missed it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_taken_while_the_lease_is_handed_over_is_replicated() {
    let c = ready_cluster(&[b"m"]).await;
    let db = c.dbs[&1].clone();
    db.put(b"a", b"1").await.unwrap();
    let desc = db.range_for(b"a").await.unwrap();
    let lh = db.leaseholder_of(&desc).await.unwrap();
    let store = c.net.stores.read()[&lh].clone();
    let replica = store
        .replicas()
        .into_iter()
        .find(|r| r.range_id == desc.range_id)
        .unwrap();
    // A planned lease move has begun (and does not end in this test): a
    // SERIALIZABLE lock taken now would be lost with the lease if it were
    // kept in memory, so it is written as a lock-only intent.
    replica.conc.start_handover(u64::MAX);
    let mut t = Txn::begin(db.clone(), Isolation::Serializable);
    t.lock(&[b"a".to_vec()]).await.unwrap();
    assert!(replica.conc.locks.lock().is_empty(), "kept in memory");
    let intent = tessera_storage::mvcc::get_intent(store.engine().as_ref(), b"a")
        .unwrap()
        .expect("no replicated lock");
    assert!(intent.lock_only);
    // It still commits in one phase, its lock going with it.
    t.commit(vec![put(b"a", b"2")]).await.unwrap();
    assert_eq!(db.get(b"a").await.unwrap(), Some(b"2".to_vec()));
    wait_for("the lock resolved", Duration::from_secs(5), async || {
        tessera_storage::mvcc::get_intent(store.engine().as_ref(), b"a")
            .unwrap()
            .is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_lock_lost_with_a_failed_leaseholder_costs_a_retry_never_a_lost_update() {
    let c = ready_cluster(&[b"m"]).await;
    let db = c.dbs[&1].clone();
    db.put(b"a", b"1").await.unwrap();
    let lh = db
        .leaseholder_of(&db.range_for(b"a").await.unwrap())
        .await
        .unwrap();
    let mut others = (1..=3).filter(|n| *n != lh);
    let (h, o) = (others.next().unwrap(), others.next().unwrap());
    let mut holder = Txn::begin(c.dbs[&h].clone(), Isolation::Serializable);
    let v = holder.lock(&[b"a".to_vec()]).await.unwrap();
    assert_eq!(v, vec![Some(b"1".to_vec())]);
    // The leaseholder fails: the SERIALIZABLE lock lived in its memory
    // only, and the next leaseholder lets another writer through.
    c.net.down.write().insert(lh);
    let other = async {
        let mut t = Txn::begin(c.dbs[&o].clone(), Isolation::Serializable);
        let v = t.lock(&[b"a".to_vec()]).await?[0].clone();
        assert_eq!(v, Some(b"1".to_vec()));
        t.commit(vec![put(b"a", b"2")]).await
    };
    tokio::time::timeout(Duration::from_secs(20), other)
        .await
        .expect("the other writer never got through")
        .unwrap();
    c.net.down.write().remove(&lh);
    // The holder's read under the lost lock is validated at commit: its
    // update, based on a value overwritten since, is refused.
    let r = holder.commit(vec![put(b"a", b"11")]).await;
    assert!(matches!(&r, Err(Error::Retry(_))), "{r:?}");
    assert_eq!(c.dbs[&o].get(b"a").await.unwrap(), Some(b"2".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_of_a_dead_coordinator_are_released_after_its_heartbeats_stop() {
    let c = ready_cluster(&[b"m"]).await;
    let db = c.dbs[&1].clone();
    db.put(b"a", b"1").await.unwrap();
    db.put(b"z", b"1").await.unwrap();
    let mut dead = Txn::begin(db.clone(), Isolation::Serializable);
    dead.lock(&[b"a".to_vec(), b"z".to_vec()]).await.unwrap();
    // The coordinator vanishes: no rollback, no more heartbeats.
    dead.abandon();
    let started = Instant::now();
    let mut t = Txn::begin(c.dbs[&2].clone(), Isolation::Serializable);
    t.lock(&[b"a".to_vec(), b"z".to_vec()]).await.unwrap();
    t.commit(vec![put(b"a", b"2"), put(b"z", b"2")])
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(6), "blocked for {waited:?}");
    assert_eq!(db.get(b"z").await.unwrap(), Some(b"2".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_transaction_releases_its_locks_at_once() {
    let c = ready_cluster(&[b"m"]).await;
    let db = c.dbs[&1].clone();
    let mut gone = Txn::begin(db.clone(), Isolation::Serializable);
    gone.lock(&[b"a".to_vec(), b"z".to_vec()]).await.unwrap();
    // A failed statement or a closed connection drops the transaction
    // without a rollback: it is aborted in the background, so writers of
    // its keys do not wait for its record to expire.
    drop(gone);
    let started = Instant::now();
    let mut t = Txn::begin(c.dbs[&2].clone(), Isolation::Serializable);
    t.lock(&[b"a".to_vec(), b"z".to_vec()]).await.unwrap();
    t.commit(vec![put(b"a", b"2"), put(b"z", b"2")])
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(waited < TXN_EXPIRY / 2, "blocked for {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_larger_than_one_command_commits_all_or_nothing() {
    use tessera_common::proto::CPutRequest;
    let c = ready_cluster(&[b"k/2500"]).await;
    let db = c.dbs[&1].clone();
    let n = 2 * tessera_kv::txn::MAX_BATCH_KEYS + 500;
    let key = |i: usize| format!("k/{i:04}").into_bytes();
    let mut t = Txn::begin(db.clone(), Isolation::Serializable);
    let writes: Vec<BatchWrite> = (0..n).map(|i| put(&key(i), b"v")).collect();
    t.commit(writes).await.unwrap();
    let all = db.scan(b"k/", b"k/~", 0, false).await.unwrap();
    assert_eq!(all.len(), n);

    // The last write's condition fails: nothing of the batch is left.
    let mut t = Txn::begin(c.dbs[&2].clone(), Isolation::Serializable);
    let mut writes: Vec<BatchWrite> = (0..n).map(|i| put(&key(i), b"w")).collect();
    writes.push(BatchWrite {
        write: Some(Write::Cput(CPutRequest {
            key: key(n - 1),
            value: b"w".to_vec(),
            expected: Some(b"not this".to_vec()),
        })),
    });
    let r = t.commit(writes).await;
    assert!(matches!(r, Err(Error::ConditionFailed { .. })), "{r:?}");
    let all = db.scan(b"k/", b"k/~", 0, false).await.unwrap();
    assert_eq!(all.len(), n);
    assert!(
        all.iter().all(|(_, v)| v == b"v"),
        "a failed transaction left writes"
    );
}

/// A scan that stops at its row limit answers from the part it read: an
/// unresolved intent further on (here a dead coordinator's, which takes
/// the heartbeat expiry to clear) does not hold it up, while a scan over
/// that intent has to wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_scan_is_not_held_up_by_an_intent_past_its_page() {
    let c = ready_cluster(&[b"m"]).await;
    let db = c.dbs[&1].clone();
    db.put(b"a0", b"first").await.unwrap();
    db.put(b"a5", b"old").await.unwrap();
    db.put(b"z", b"old").await.unwrap();
    // Writes the intent on a5 (with its STAGING record), then dies before
    // writing z: the record stays pending until its heartbeat expires.
    let dying = Arc::new(DB::new(
        Arc::new(DyingDialer {
            inner: Dialer(c.net.clone()),
            allowed: AtomicUsize::new(1),
            dead: AtomicBool::new(false),
        }),
        db.clock().clone(),
    ));
    dying.get(b"a5").await.unwrap();
    dying.get(b"z").await.unwrap();
    let doomed = dying.clone();
    tokio::spawn(async move {
        let mut t = Txn::begin(doomed, Isolation::Serializable);
        let _ = t.commit(vec![put(b"a5", b"new"), put(b"z", b"new")]).await;
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let mut t = Txn::begin(c.dbs[&2].clone(), Isolation::Serializable);
    let page = t.scan(b"a", b"b", 1, false).await.unwrap();
    assert_eq!(page, vec![(b"a0".to_vec(), b"first".to_vec())]);
    assert!(
        started.elapsed() < TXN_EXPIRY / 2,
        "the first page waited {:?} for an intent it did not read",
        started.elapsed()
    );
    let all = t.scan(b"a", b"b", 0, false).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(
        started.elapsed() >= TXN_EXPIRY / 2,
        "the whole span was read past a pending intent without waiting"
    );
    t.rollback().await;
}

/// The highest applied index among the replicas of the range `which`
/// picks: it counts the range's commands.
async fn applied_index(c: &Cluster, which: impl Fn(&RangeDescriptor) -> bool) -> u64 {
    let mut top = 0;
    let stores: Vec<_> = c.net.stores.read().values().cloned().collect();
    for store in stores {
        for r in store.local_ranges().await {
            if r.descriptor.as_ref().is_some_and(&which) {
                top = top.max(r.applied_index);
            }
        }
    }
    top
}

/// Intents left on every node.
fn intent_count(c: &Cluster) -> usize {
    c.net
        .stores
        .read()
        .values()
        .map(|store| {
            tessera_storage::mvcc::scan_intents(store.engine().as_ref(), b"", b"", 0)
                .unwrap()
                .len()
        })
        .sum()
}

/// Committed transactions' intents are resolved in the background, and the
/// resolutions of concurrent transactions on a range share raft commands:
/// 40 transactions, each writing one key on each of two ranges, cost the
/// second range fewer commands than an intent write plus a resolution each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_resolve_their_intents_in_shared_commands() {
    const N: usize = 40;
    let c = ready_cluster(&[b"m"]).await;
    let db = c.dbs[&1].clone();
    // The range of the `z` keys: its applied index counts its commands.
    let applied = async || applied_index(&c, |d| d.start_key == b"m").await;
    // Settle leases first (their commands are not the transactions').
    db.put(b"zz", b"0").await.unwrap();
    let before = applied().await;
    let commits: Vec<_> = (0..N)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut t = Txn::begin(db, Isolation::Serializable);
                t.commit(vec![
                    put(format!("a{i:02}").as_bytes(), b"1"),
                    put(format!("z{i:02}").as_bytes(), b"1"),
                ])
                .await
                .unwrap();
            })
        })
        .collect();
    for c in commits {
        c.await.unwrap();
    }
    let intents = || intent_count(&c);
    wait_for("intents resolved", Duration::from_secs(10), async || {
        intents() == 0
    })
    .await;
    let used = applied().await - before;
    assert!(
        used < 2 * N as u64,
        "{used} commands on the range for {N} transactions"
    );
    for i in 0..N {
        assert_eq!(
            db.get(format!("z{i:02}").as_bytes()).await.unwrap(),
            Some(b"1".to_vec())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_commit_marks_its_record_in_its_anchor_range_resolution() {
    const N: u64 = 10;
    let c = ready_cluster(&[b"m"]).await;
    let db = c.dbs[&1].clone();
    // The records' range (the `a` keys anchor every transaction): its
    // applied index counts its commands.
    let applied = async || applied_index(&c, |d| d.end_key == b"m").await;
    // Leases on the gateway's node first, where they stay for the test.
    for key in [&b"a"[..], b"z"] {
        let desc = db.range_for(key).await.unwrap();
        db.transfer_lease(key, 1).await.unwrap();
        wait_for("the lease on node 1", Duration::from_secs(10), async || {
            db.leaseholder_of(&desc).await.ok() == Some(1)
        })
        .await;
        db.put(key, b"0").await.unwrap();
    }
    let intents = || intent_count(&c);
    let before = applied().await;
    for i in 0..N {
        let mut t = Txn::begin(db.clone(), Isolation::Serializable);
        t.commit(vec![
            put(format!("a{i:02}").as_bytes(), b"1"),
            put(format!("z{i:02}").as_bytes(), b"1"),
        ])
        .await
        .unwrap();
        wait_for("intents resolved", Duration::from_secs(10), async || {
            intents() == 0
        })
        .await;
    }
    // Per transaction: its intents with the STAGING record, then the
    // COMMITTED mark with the resolution of those intents (not a command
    // for the mark and another for the resolution).
    let used = applied().await - before;
    assert!(used <= 2 * N + 2, "{used} commands for {N} transactions");
    for i in 0..N {
        assert_eq!(
            c.dbs[&2].get(format!("z{i:02}").as_bytes()).await.unwrap(),
            Some(b"1".to_vec())
        );
    }
}

/// Intents of `key` on any node.
fn intents_of(c: &Cluster, key: &[u8]) -> usize {
    c.net
        .stores
        .read()
        .values()
        .filter(|store| {
            tessera_storage::mvcc::get_intent(store.engine().as_ref(), key)
                .unwrap()
                .is_some()
        })
        .count()
}

/// A finished transaction's background resolutions wait in the raft
/// thread for the node's next proposal, to share its raft round and fsync
/// (here the wait is an hour, so nothing else brings them out), and never
/// keep anyone waiting: a reader or writer that meets them has them
/// proposed at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_back_resolutions_go_with_the_next_proposal_or_when_someone_waits() {
    let c = ready_cluster_with(&[b"m"], |cfg| {
        cfg.background_resolution_delay = Duration::from_secs(3600);
    })
    .await;
    let db = c.dbs[&1].clone();
    for key in [&b"a"[..], b"z"] {
        let desc = db.range_for(key).await.unwrap();
        db.transfer_lease(key, 1).await.unwrap();
        wait_for("the lease on node 1", Duration::from_secs(10), async || {
            db.leaseholder_of(&desc).await.ok() == Some(1)
        })
        .await;
        db.put(key, b"0").await.unwrap();
    }
    let commit = async |a: &[u8], z: &[u8]| {
        let mut t = Txn::begin(db.clone(), Isolation::Serializable);
        t.commit(vec![put(a, b"1"), put(z, b"1")]).await.unwrap();
    };
    // Nothing but the held-back resolution (the COMMITTED mark with the
    // anchor range's intents) is left to propose: the intents stay.
    commit(b"a1", b"z1").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(intents_of(&c, b"a1"), 3, "resolved without a proposal");
    // The next transaction's proposals bring it out.
    commit(b"a2", b"z2").await;
    wait_for("a1 resolved", Duration::from_secs(5), async || {
        intents_of(&c, b"a1") == 0
    })
    .await;
    // A reader of held-back intents, on another node, does not wait for
    // the hour, nor for its pushes to find the transaction committed (3 s
    // here): it meets the intents (or the latches of their resolutions)
    // and has them proposed at once (in milliseconds).
    let started = Instant::now();
    for key in [&b"z1"[..], b"a2", b"z2"] {
        let mut t = Txn::begin(c.dbs[&2].clone(), Isolation::Serializable);
        assert_eq!(t.get(key).await.unwrap(), Some(b"1".to_vec()));
        t.rollback().await;
    }
    // So does a writer.
    commit(b"a3", b"z3").await;
    let mut t = Txn::begin(c.dbs[&3].clone(), Isolation::Serializable);
    t.commit(vec![put(b"z3", b"2")]).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(db.get(b"z3").await.unwrap(), Some(b"2".to_vec()));
}

/// Waiting is free of consensus: a writer blocked on another
/// transaction's lock publishes its wait and pushes the holder without a
/// raft command on either record's range (the leaseholders answer from
/// memory and from their state); only the periodic heartbeat, a second
/// later, writes a record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_on_a_lock_costs_no_raft_command() {
    let c = ready_cluster(&[b"m"]).await;
    let db = c.dbs[&1].clone();
    db.put(b"a", b"1").await.unwrap();
    db.put(b"z", b"1").await.unwrap();
    // The holder's record would be on the first range, the waiter's on
    // the second.
    let mut holder = Txn::begin(db.clone(), Isolation::Serializable);
    holder.lock(&[b"a".to_vec()]).await.unwrap();
    let mut waiter = Txn::begin(c.dbs[&2].clone(), Isolation::Serializable);
    waiter.lock(&[b"z".to_vec()]).await.unwrap();
    let commands = async || {
        applied_index(&c, |d| d.start_key.is_empty()).await
            + applied_index(&c, |d| d.start_key == b"m").await
    };
    let before = commands().await;
    let blocked = tokio::spawn(async move {
        let v = waiter.lock(&[b"a".to_vec()]).await;
        (waiter, v)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!blocked.is_finished(), "a writer went through a held lock");
    assert_eq!(commands().await, before, "raft commands while waiting");
    holder.commit(vec![put(b"a", b"2")]).await.unwrap();
    let (mut waiter, v) = tokio::time::timeout(Duration::from_secs(5), blocked)
        .await
        .expect("the waiter was not woken")
        .unwrap();
    assert_eq!(v.unwrap(), vec![Some(b"2".to_vec())]);
    waiter.commit(vec![put(b"a", b"3")]).await.unwrap();
    assert_eq!(db.get(b"a").await.unwrap(), Some(b"3".to_vec()));
}
