//! SQL transactions over KV transactions ([`tessera_kv::txn::Txn`]):
//! reads at the transaction's snapshot, writes buffered and committed
//! atomically across any number of ranges, SERIALIZABLE by default.
//!
//! A [`Txn`] keeps every write in a sorted buffer. Reads merge the buffer
//! over what KV returns, so a transaction sees its own writes. Each
//! buffered write remembers what it assumed (checked at commit against the
//! latest committed value, which gives the PostgreSQL error a user
//! expects rather than a generic serialization failure):
//!
//! - an INSERT assumes the key is absent: at commit it is a conditional
//!   put expecting absence; if the key exists then, the commit fails with
//!   23505 (unique_violation). Inside BEGIN a (not bulk) INSERT also reads
//!   its new keys at once, so a key already committed fails the INSERT
//!   itself, as in PostgreSQL ([`Txn::check_inserted_absent`]);
//! - an UPDATE or DELETE of a row the transaction read assumes the row is
//!   still what it read: a conditional put expecting that value (a DELETE
//!   is a cput of the same value followed by a delete, in the same batch);
//!   if another transaction changed it first, the commit fails with 40001
//!   (serialization_failure, "restart transaction");
//! - an INSERT ... ON CONFLICT of a key it read as absent expects it still
//!   absent; if it exists at commit the commit fails with 40001, so the
//!   statement is retried and takes its conflict branch;
//! - everything read (rows and scanned spans, including empty ones) is
//!   validated by the KV transaction when its commit timestamp moves: a
//!   change means 40001, so write skew and phantoms are refused too.

use std::collections::BTreeMap;
use std::sync::Arc;

use tessera_common::proto::{
    batch_write::Write, BatchWrite, CPutRequest, DeleteRequest, PutRequest,
};
use tessera_kv::db::Error as KvError;
use tessera_kv::txn::{Isolation, Txn as KvTxn};
use tessera_kv::DB;

use crate::error::{code, Result, SqlError};

/// What a buffered write assumed about the key.
#[derive(Debug, Clone, PartialEq)]
enum Cond {
    /// Nothing (unconditional).
    Blind,
    /// The key is absent (an INSERT); the name is the violated constraint.
    Absent { constraint: String },
    /// The key holds this value (read by this transaction).
    Read(Option<Vec<u8>>),
}

#[derive(Debug, Clone)]
struct Pending {
    /// The new value; `None` deletes.
    value: Option<Vec<u8>>,
    cond: Cond,
}

/// Where a row a transaction read came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// From KV, with the raw value read.
    Kv(Vec<u8>),
    /// From this transaction's own writes.
    Buffer,
}

/// A key/value pair a transaction read.
#[derive(Debug, Clone)]
pub struct ReadRow {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub origin: Origin,
}

/// The write buffer of a transaction at a SAVEPOINT.
#[derive(Debug, Clone)]
pub struct Savepoint(BTreeMap<Vec<u8>, Pending>);

/// A transaction's write buffer and its view of KV.
pub struct Txn {
    db: Arc<DB>,
    kv: tokio::sync::Mutex<Box<KvTxn>>,
    writes: BTreeMap<Vec<u8>, Pending>,
    /// Point reads take row locks (see [`Txn::lock_point_reads`]).
    lock_point_reads: bool,
    /// A BEGIN ... COMMIT block (see [`Txn::check_inserted_absent`]).
    explicit: bool,
}

fn range_ok(k: &[u8], start: &[u8], end: &[u8]) -> bool {
    k >= start && k < end
}

impl Txn {
    pub fn new(db: Arc<DB>) -> Self {
        Txn {
            kv: tokio::sync::Mutex::new(Box::new(KvTxn::begin(
                db.clone(),
                Isolation::Serializable,
            ))),
            db,
            writes: BTreeMap::new(),
            lock_point_reads: false,
            explicit: false,
        }
    }

    /// Marks the transaction as a BEGIN ... COMMIT block.
    pub fn set_explicit(&mut self) {
        self.explicit = true;
    }

    pub fn is_explicit(&self) -> bool {
        self.explicit
    }

    /// In a BEGIN block, an INSERT of a key that others committed must
    /// fail at the INSERT (23505), as in PostgreSQL, not only at COMMIT:
    /// clients catch the error there and go on (after a ROLLBACK TO
    /// SAVEPOINT). Reads the latest committed value of each new key this
    /// transaction inserted (among `keys`), outside the transaction's read
    /// set: the read only reports early what the conditional put at commit
    /// enforces (a key committed after this check is still caught there).
    pub async fn check_inserted_absent(&self, keys: &[Vec<u8>]) -> Result<()> {
        let new_keys: Vec<(Vec<u8>, String)> = keys
            .iter()
            .filter_map(|k| match self.writes.get(k) {
                Some(Pending {
                    value: Some(_),
                    cond: Cond::Absent { constraint },
                }) => Some((k.clone(), constraint.clone())),
                _ => None,
            })
            .collect();
        // Sixteen reads in flight at once: a multi-row INSERT does not pay
        // one round trip per key.
        for chunk in new_keys.chunks(16) {
            let reads: Vec<_> = chunk.iter().map(|(k, _)| self.db.get(k)).collect();
            let found = futures::future::try_join_all(reads).await?;
            if let Some(i) = found.iter().position(Option::is_some) {
                return Err(unique_violation(&chunk[i].1));
            }
        }
        Ok(())
    }

    /// A read-only transaction over the snapshot at `ts` (AS OF SYSTEM
    /// TIME).
    pub fn at(db: Arc<DB>, ts: tessera_common::Timestamp) -> Self {
        Txn {
            kv: tokio::sync::Mutex::new(Box::new(KvTxn::at(db.clone(), ts))),
            db,
            writes: BTreeMap::new(),
            lock_point_reads: false,
            explicit: false,
        }
    }

    /// Makes every primary-key point read lock its row, as `SELECT ... FOR
    /// UPDATE` would. A session turns this on for the transaction that
    /// follows a serialization failure: a read-then-write transaction
    /// retried by its client then holds what it read, so it cannot lose the
    /// same race again and again (no starvation under contention).
    pub fn lock_point_reads(&mut self) {
        self.lock_point_reads = true;
    }

    pub fn locks_point_reads(&self) -> bool {
        self.lock_point_reads
    }

    /// The KV transaction (isolation level, statement snapshots).
    pub fn kv(&mut self) -> &mut KvTxn {
        self.kv.get_mut()
    }

    pub fn isolation(&self) -> Isolation {
        self.kv
            .try_lock()
            .map(|k| k.isolation())
            .unwrap_or(Isolation::Serializable)
    }

    /// The buffered writes as they are now, for a SAVEPOINT.
    pub fn savepoint(&self) -> Savepoint {
        Savepoint(self.writes.clone())
    }

    /// Back to the writes of `sp` (ROLLBACK TO SAVEPOINT). Reads and row
    /// locks taken since stay with the transaction: its commit still
    /// validates them, which can only refuse more, never accept a wrong
    /// result.
    pub fn rollback_to(&mut self, sp: &Savepoint) {
        self.writes = sp.0.clone();
    }

    /// Number of buffered writes.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Reads one key through the buffer.
    pub async fn get(&self, key: &[u8]) -> Result<Option<ReadRow>> {
        if let Some(p) = self.writes.get(key) {
            return Ok(p.value.as_ref().map(|v| ReadRow {
                key: key.to_vec(),
                value: v.clone(),
                origin: Origin::Buffer,
            }));
        }
        Ok(self.kv.lock().await.get(key).await?.map(|v| ReadRow {
            key: key.to_vec(),
            origin: Origin::Kv(v.clone()),
            value: v,
        }))
    }

    /// Reads `keys` under row locks (the rows an UPDATE or DELETE changes,
    /// SELECT ... FOR UPDATE), through the buffer: each result is the
    /// latest committed row (or this transaction's own write), and nobody
    /// else can change it before this transaction ends. Keys this
    /// transaction wrote already need no lock.
    pub async fn get_locked(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<ReadRow>>> {
        let to_lock: Vec<Vec<u8>> = keys
            .iter()
            .filter(|k| !self.writes.contains_key(*k))
            .cloned()
            .collect();
        let values = self.kv.lock().await.lock(&to_lock).await?;
        let locked: std::collections::HashMap<Vec<u8>, Option<Vec<u8>>> =
            to_lock.into_iter().zip(values).collect();
        Ok(keys
            .iter()
            .map(|k| match self.writes.get(k) {
                Some(p) => p.value.as_ref().map(|v| ReadRow {
                    key: k.clone(),
                    value: v.clone(),
                    origin: Origin::Buffer,
                }),
                None => locked.get(k).cloned().flatten().map(|v| ReadRow {
                    key: k.clone(),
                    origin: Origin::Kv(v.clone()),
                    value: v,
                }),
            })
            .collect())
    }

    /// Reads `[start, end)` in key order, through the buffer.
    pub async fn scan(&self, start: &[u8], end: &[u8]) -> Result<Vec<ReadRow>> {
        if start >= end {
            return Ok(vec![]);
        }
        let kv = self.kv.lock().await.scan(start, end, 0, false).await?;
        let mut out = Vec::with_capacity(kv.len());
        let mut buffered = self
            .writes
            .range::<[u8], _>((
                std::ops::Bound::Included(start),
                std::ops::Bound::Excluded(end),
            ))
            .peekable();
        let emit_buffered = |out: &mut Vec<ReadRow>, k: &Vec<u8>, p: &Pending| {
            if let Some(v) = &p.value {
                out.push(ReadRow {
                    key: k.clone(),
                    value: v.clone(),
                    origin: Origin::Buffer,
                });
            }
        };
        for (k, v) in kv {
            while let Some((bk, bp)) = buffered.peek() {
                if bk.as_slice() < k.as_slice() {
                    emit_buffered(&mut out, bk, bp);
                    buffered.next();
                } else {
                    break;
                }
            }
            match buffered.peek() {
                Some((bk, bp)) if **bk == k => {
                    emit_buffered(&mut out, bk, bp);
                    buffered.next();
                }
                _ => out.push(ReadRow {
                    key: k,
                    origin: Origin::Kv(v.clone()),
                    value: v,
                }),
            }
        }
        for (bk, bp) in buffered {
            debug_assert!(range_ok(bk, start, end));
            emit_buffered(&mut out, bk, bp);
        }
        Ok(out)
    }

    /// Buffers an INSERT. A key already written (and not deleted) by this
    /// transaction is a 23505 at once; one committed by others is caught
    /// at commit.
    pub fn insert(&mut self, key: Vec<u8>, value: Vec<u8>, constraint: &str) -> Result<()> {
        match self.writes.get_mut(&key) {
            Some(p) if p.value.is_some() => Err(unique_violation(constraint)),
            Some(p) => {
                // Deleted earlier in this transaction: re-insert over it.
                p.value = Some(value);
                Ok(())
            }
            None => {
                self.writes.insert(
                    key,
                    Pending {
                        value: Some(value),
                        cond: Cond::Absent {
                            constraint: constraint.to_string(),
                        },
                    },
                );
                Ok(())
            }
        }
    }

    /// Buffers an insert of a key this transaction read as absent (INSERT
    /// ... ON CONFLICT): if it exists at commit, the commit fails with
    /// 40001 (retryable: the retry sees the row), not 23505.
    pub fn insert_absent_read(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        match self.writes.get_mut(&key) {
            Some(p) if p.value.is_some() => Err(SqlError::internal(
                "ON CONFLICT insert of a row this transaction holds",
            )),
            Some(p) => {
                p.value = Some(value);
                Ok(())
            }
            None => {
                self.writes.insert(
                    key,
                    Pending {
                        value: Some(value),
                        cond: Cond::Read(None),
                    },
                );
                Ok(())
            }
        }
    }

    /// Buffers a new value (or a deletion, `None`) for a row read as `row`.
    pub fn write_read_row(&mut self, row: &ReadRow, value: Option<Vec<u8>>) {
        match self.writes.get_mut(&row.key) {
            Some(p) => p.value = value,
            None => {
                let cond = match &row.origin {
                    Origin::Kv(v) => Cond::Read(Some(v.clone())),
                    Origin::Buffer => Cond::Blind,
                };
                self.writes.insert(row.key.clone(), Pending { value, cond });
            }
        }
    }

    /// Buffers the deletion of an index entry expected to hold `expected`
    /// (the row's primary key). If this transaction already wrote another
    /// row's entry at that key, two rows claimed one unique value: 23505.
    pub fn delete_entry(&mut self, key: Vec<u8>, expected: &[u8], constraint: &str) -> Result<()> {
        if let Some(Pending { value: Some(v), .. }) = self.writes.get(&key) {
            if v.as_slice() != expected {
                return Err(unique_violation(constraint));
            }
        }
        self.delete_blind(key);
        Ok(())
    }

    /// Buffers an unconditional delete (DROP/TRUNCATE cleanup).
    pub fn delete_blind(&mut self, key: Vec<u8>) {
        self.writes.insert(
            key,
            Pending {
                value: None,
                cond: Cond::Blind,
            },
        );
    }

    /// The writes as one batch.
    fn batch(&self) -> Vec<BatchWrite> {
        let mut out = Vec::with_capacity(self.writes.len());
        let w = |write| BatchWrite { write: Some(write) };
        for (k, p) in &self.writes {
            match (&p.cond, &p.value) {
                (Cond::Absent { .. }, Some(v)) | (Cond::Read(None), Some(v)) => {
                    out.push(w(Write::Cput(CPutRequest {
                        key: k.clone(),
                        value: v.clone(),
                        expected: None,
                    })))
                }
                (Cond::Absent { .. }, None) | (Cond::Read(None), None) => {}
                (Cond::Read(Some(old)), Some(v)) => out.push(w(Write::Cput(CPutRequest {
                    key: k.clone(),
                    value: v.clone(),
                    expected: Some(old.clone()),
                }))),
                (Cond::Read(Some(old)), None) => {
                    out.push(w(Write::Cput(CPutRequest {
                        key: k.clone(),
                        value: old.clone(),
                        expected: Some(old.clone()),
                    })));
                    out.push(w(Write::Delete(DeleteRequest { key: k.clone() })));
                }
                (Cond::Blind, Some(v)) => out.push(w(Write::Put(PutRequest {
                    key: k.clone(),
                    value: v.clone(),
                }))),
                (Cond::Blind, None) => out.push(w(Write::Delete(DeleteRequest { key: k.clone() }))),
            }
        }
        out
    }

    /// Applies every buffered write atomically, or none.
    pub async fn commit(self) -> Result<()> {
        let batch = self.batch();
        let r = self.kv.lock().await.commit(batch).await;
        match r {
            Ok(_) => Ok(()),
            Err(KvError::ConditionFailed { .. }) => Err(self.explain_conflict().await),
            Err(e) => Err(e.into()),
        }
    }

    /// After a failed condition: a key we inserted that now exists is a
    /// unique violation; otherwise a row we read changed under us.
    async fn explain_conflict(&self) -> SqlError {
        // A row we read that changed is a conflict to retry, whatever else
        // failed with it (an index entry of a row inserted concurrently).
        for (k, p) in &self.writes {
            if let Cond::Read(expected) = &p.cond {
                if let Ok(actual) = self.db.get(k).await {
                    if actual != *expected {
                        return serialization_failure();
                    }
                }
            }
        }
        for (k, p) in &self.writes {
            if let (Cond::Absent { constraint }, Some(_)) = (&p.cond, &p.value) {
                if let Ok(Some(_)) = self.db.get(k).await {
                    return unique_violation(constraint);
                }
            }
        }
        serialization_failure()
    }
}

fn serialization_failure() -> SqlError {
    SqlError::new(
        code::SERIALIZATION_FAILURE,
        "restart transaction: a row this transaction read was changed by another transaction",
    )
    .with_hint("retry the transaction")
}

pub fn unique_violation(constraint: &str) -> SqlError {
    SqlError::new(
        code::UNIQUE_VIOLATION,
        format!("duplicate key value violates unique constraint \"{constraint}\""),
    )
}
