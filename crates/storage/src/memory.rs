//! An in-memory [`Engine`] (a `BTreeMap` under a lock), for tests and
//! deterministic simulation. `sync` is a no-op: nothing here survives the
//! process.

use std::collections::BTreeMap;
use std::ops::Bound;

use parking_lot::RwLock;

use crate::engine::{Engine, EngineIterator, Result, WriteBatch};
use crate::version_cache::NewestVersionCache;

#[derive(Debug)]
pub struct MemoryEngine {
    data: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
    versions: NewestVersionCache,
}

/// A small cache, so that tests and simulations also exercise its
/// evictions.
const VERSION_CACHE_BYTES: usize = 256 << 10;

impl Default for MemoryEngine {
    fn default() -> Self {
        Self {
            data: RwLock::default(),
            versions: NewestVersionCache::new(VERSION_CACHE_BYTES),
        }
    }
}

impl MemoryEngine {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Engine for MemoryEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.data.read().get(key).cloned())
    }

    fn scan(&self, start: &[u8], end: &[u8], reverse: bool) -> Result<EngineIterator<'_>> {
        if start >= end {
            return Ok(Box::new(std::iter::empty()));
        }
        // Copy the span out so the iterator does not hold the lock.
        let data = self.data.read();
        let range = data.range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)));
        let mut items: Vec<_> = range.map(|(k, v)| Ok((k.clone(), v.clone()))).collect();
        if reverse {
            items.reverse();
        }
        Ok(Box::new(items.into_iter()))
    }

    fn write(&self, batch: WriteBatch, _sync: bool) -> Result<()> {
        let written = self.versions.begin_batch(batch.version_ops());
        let mut data = self.data.write();
        for (k, v) in batch.into_ops() {
            match v {
                Some(v) => data.insert(k, v),
                None => data.remove(&k),
            };
        }
        drop(data);
        written.finish(true);
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn newest_versions(&self) -> Option<&NewestVersionCache> {
        Some(&self.versions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_applies_in_order_and_scans_both_ways() {
        let e = MemoryEngine::new();
        let mut b = WriteBatch::new();
        b.put(b"a".to_vec(), b"1".to_vec());
        b.put(b"b".to_vec(), b"2".to_vec());
        b.put(b"c".to_vec(), b"3".to_vec());
        b.delete(b"b".to_vec());
        e.write(b, true).unwrap();
        let fwd: Vec<_> = e
            .scan(b"a", b"z", false)
            .unwrap()
            .map(|r| r.unwrap().0)
            .collect();
        assert_eq!(fwd, vec![b"a".to_vec(), b"c".to_vec()]);
        let rev: Vec<_> = e
            .scan(b"a", b"z", true)
            .unwrap()
            .map(|r| r.unwrap().0)
            .collect();
        assert_eq!(rev, vec![b"c".to_vec(), b"a".to_vec()]);
    }
}
