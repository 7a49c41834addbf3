//! The [`Engine`] trait: an ordered byte-string key/value store with atomic
//! write batches and explicit durability. Everything above storage sees the
//! disk through this trait only.

use std::sync::Arc;

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
}

/// One write in a batch: a put (`Some`) or a delete (`None`).
pub type BatchOp = (Vec<u8>, Option<Vec<u8>>);

/// An ordered list of puts and deletes applied atomically by
/// [`Engine::write`]. Later operations on the same key win.
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    ops: Vec<BatchOp>,
    bytes: usize,
}

impl WriteBatch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        let (key, value) = (key.into(), value.into());
        self.bytes += key.len() + value.len();
        self.ops.push((key, Some(value)));
    }

    pub fn delete(&mut self, key: impl Into<Vec<u8>>) {
        let key = key.into();
        self.bytes += key.len();
        self.ops.push((key, None));
    }

    /// Appends every operation of `other`, after this batch's own.
    pub fn extend(&mut self, other: WriteBatch) {
        self.bytes += other.bytes;
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

    /// The value this batch would leave for `key`: `Some(Some(v))` put,
    /// `Some(None)` deleted, `None` untouched.
    pub fn lookup(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.ops
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_deref())
    }
}
