//! The [`Engine`] trait: an ordered byte-string key/value store with atomic
//! write batches and explicit durability. Everything above storage sees the
//! disk through this trait only.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::version_cache::NewestVersionCache;

/// Errors from the storage engine. An engine error while applying replicated
/// state is not deterministic (another replica would not hit it): callers
/// must stop the replica rather than carry on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("storage I/O error: {0}")]
    Io(String),
    #[error("corrupt data: {0}")]
    Corruption(String),
    #[error("store is locked by another process: {0}")]
    Locked(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// A forward or reverse iterator over `(key, value)` pairs.
pub type EngineIterator<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + 'a>;

/// An ordered key/value store.
pub trait Engine: Send + Sync + 'static {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Keys in `[start, end)`, ascending, or descending if `reverse`.
    fn scan(&self, start: &[u8], end: &[u8], reverse: bool) -> Result<EngineIterator<'_>>;

    /// Applies every operation of `batch` atomically. With `sync`, the batch
    /// (and every batch written before it) is on stable storage when this
    /// returns.
    fn write(&self, batch: WriteBatch, sync: bool) -> Result<()>;

    /// Makes every write so far durable.
    fn sync(&self) -> Result<()>;

    /// The engine's cache of newest MVCC versions, if it keeps one (kept
    /// consistent by [`Engine::write`]; see [`NewestVersionCache`]).
    fn newest_versions(&self) -> Option<&NewestVersionCache> {
        None
    }
}

impl<E: Engine + ?Sized> Engine for Arc<E> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        (**self).get(key)
    }
    fn scan(&self, start: &[u8], end: &[u8], reverse: bool) -> Result<EngineIterator<'_>> {
        (**self).scan(start, end, reverse)
    }
    fn write(&self, batch: WriteBatch, sync: bool) -> Result<()> {
        (**self).write(batch, sync)
    }
    fn sync(&self) -> Result<()> {
        (**self).sync()
    }

    fn newest_versions(&self) -> Option<&NewestVersionCache> {
        (**self).newest_versions()
    }
}

/// One write in a batch: a put (`Some`) or a delete (`None`).
pub type BatchOp = (Vec<u8>, Option<Vec<u8>>);

/// An ordered list of puts and deletes applied atomically by
/// [`Engine::write`]. Later operations on the same key win.
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    ops: Vec<BatchOp>,
    bytes: usize,
    /// The last operation on each key, built by the first
    /// [`WriteBatch::lookup`] of a large batch and kept current after, so
    /// that resolving every intent of a large transaction in one batch is
    /// linear, not quadratic.
    index: OnceLock<HashMap<Vec<u8>, usize>>,
}

/// Batches up to this many operations are searched without an index.
const LOOKUP_SCAN_MAX: usize = 32;

impl WriteBatch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        let (key, value) = (key.into(), value.into());
        self.bytes += key.len() + value.len();
        self.index_op(&key);
        self.ops.push((key, Some(value)));
    }

    pub fn delete(&mut self, key: impl Into<Vec<u8>>) {
        let key = key.into();
        self.bytes += key.len();
        self.index_op(&key);
        self.ops.push((key, None));
    }

    /// Records in the index (if built) that the next operation is `key`'s.
    fn index_op(&mut self, key: &[u8]) {
        let at = self.ops.len();
        if let Some(index) = self.index.get_mut() {
            index.insert(key.to_vec(), at);
        }
    }

    /// Appends every operation of `other`, after this batch's own.
    pub fn extend(&mut self, other: WriteBatch) {
        self.bytes += other.bytes;
        if let Some(index) = self.index.get_mut() {
            let base = self.ops.len();
            for (i, (k, _)) in other.ops.iter().enumerate() {
                index.insert(k.clone(), base + i);
            }
        }
        self.ops.extend(other.ops);
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Approximate payload size in bytes.
    pub fn size_bytes(&self) -> usize {
        self.bytes
    }

    pub fn ops(&self) -> &[BatchOp] {
        &self.ops
    }

    pub fn into_ops(self) -> Vec<BatchOp> {
        self.ops
    }

    /// This batch's operations on MVCC versions, for a
    /// [`NewestVersionCache`]: each version's encoded user key, and for a
    /// put its timestamp and stored value.
    pub fn version_ops(&self) -> impl Iterator<Item = crate::version_cache::VersionOp<'_>> {
        self.ops.iter().filter_map(|(k, v)| {
            let (ek, ts) = crate::mvcc::version_of(k)?;
            Some((ek, v.as_deref().map(|v| (ts, v))))
        })
    }

    /// The value this batch would leave for `key`: `Some(Some(v))` put,
    /// `Some(None)` deleted, `None` untouched.
    pub fn lookup(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        if self.ops.len() <= LOOKUP_SCAN_MAX && self.index.get().is_none() {
            return self
                .ops
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_deref());
        }
        let index = self.index.get_or_init(|| {
            self.ops
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i))
                .collect()
        });
        index.get(key).map(|&i| self.ops[i].1.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small and large batches (indexed after the first lookup) answer the
    /// same: the last operation on a key wins, before and after lookups.
    #[test]
    fn lookup_sees_the_last_operation_on_a_key() {
        for n in [5u32, 1000] {
            let mut b = WriteBatch::new();
            for i in 0..n {
                b.put(i.to_be_bytes().to_vec(), b"v1".to_vec());
            }
            b.delete(3u32.to_be_bytes().to_vec());
            assert_eq!(b.lookup(&3u32.to_be_bytes()), Some(None));
            assert_eq!(b.lookup(&4u32.to_be_bytes()), Some(Some(&b"v1"[..])));
            assert_eq!(b.lookup(b"absent"), None);
            // Writes after a lookup are seen by the next one.
            b.put(3u32.to_be_bytes().to_vec(), b"v2".to_vec());
            b.delete(4u32.to_be_bytes().to_vec());
            let mut other = WriteBatch::new();
            other.put(b"absent".to_vec(), b"v3".to_vec());
            b.extend(other);
            assert_eq!(b.lookup(&3u32.to_be_bytes()), Some(Some(&b"v2"[..])));
            assert_eq!(b.lookup(&4u32.to_be_bytes()), Some(None));
            assert_eq!(b.lookup(b"absent"), Some(Some(&b"v3"[..])));
            assert_eq!(b.clone().lookup(b"absent"), Some(Some(&b"v3"[..])));
        }
    }
}
