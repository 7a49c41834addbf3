//! A read view of the engine with a pending write batch laid over it, so
//! that commands applied in one raft round see the effects of the commands
//! applied before them in the same round.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use parking_lot::Mutex;

use tessera_storage::{Engine, EngineIterator, Result, WriteBatch};

/// Writes of the current apply round, indexed for reads.
#[derive(Default)]
pub struct PendingWrites {
    map: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl PendingWrites {
    pub fn record(&mut self, batch: &WriteBatch, from: usize) {
        for (k, v) in &batch.ops()[from..] {
            self.map.insert(k.clone(), v.clone());
        }
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }
}

/// `engine` as it will be once the pending writes are written. Owned
/// handles, because the engine trait wants `'static` implementors.
#[derive(Clone)]
pub struct Overlay {
    pub engine: Arc<dyn Engine>,
    pub pending: Arc<Mutex<PendingWrites>>,
}

impl Engine for Overlay {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        overlay_get(self.engine.as_ref(), &self.pending.lock(), key)
    }
    fn scan(&self, start: &[u8], end: &[u8], reverse: bool) -> Result<EngineIterator<'_>> {
        let pending = self.pending.lock();
        overlay_scan(self.engine.as_ref(), &pending, start, end, reverse)
    }
    fn write(&self, _: WriteBatch, _: bool) -> Result<()> {
        Err(tessera_storage::Error::Io("overlay is read-only".into()))
    }
    fn sync(&self) -> Result<()> {
        Ok(())
    }
}

fn overlay_get(
    engine: &dyn Engine,
    pending: &PendingWrites,
    key: &[u8],
) -> Result<Option<Vec<u8>>> {
    match pending.map.get(key) {
        Some(v) => Ok(v.clone()),
        None => engine.get(key),
    }
}

fn overlay_scan<'a>(
    engine: &'a dyn Engine,
    pending: &PendingWrites,
    start: &[u8],
    end: &[u8],
    reverse: bool,
) -> Result<EngineIterator<'a>> {
    let mine: Vec<(Vec<u8>, Option<Vec<u8>>)> = pending
        .map
        .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let base = engine.scan(start, end, reverse)?;
    if mine.is_empty() {
        return Ok(base);
    }
    let mut mine = mine;
    if reverse {
        mine.reverse();
    }
    Ok(Box::new(Merge {
        base: base.peekable(),
        mine: mine.into_iter().peekable(),
        reverse,
    }))
}

type PendingOp = (Vec<u8>, Option<Vec<u8>>);

struct Merge<'a> {
    base: std::iter::Peekable<EngineIterator<'a>>,
    mine: std::iter::Peekable<std::vec::IntoIter<PendingOp>>,
    reverse: bool,
}

impl Iterator for Merge<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let take_mine = match (self.base.peek(), self.mine.peek()) {
                (None, None) => return None,
                (Some(Err(_)), _) => return self.base.next(),
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (Some(Ok((bk, _))), Some((mk, _))) => {
                    if bk == mk {
                        self.base.next();
                        true
                    } else {
                        (mk < bk) != self.reverse
                    }
                }
            };
            if take_mine {
                let (k, v) = self.mine.next().expect("peeked");
                match v {
                    Some(v) => return Some(Ok((k, v))),
                    None => continue,
                }
            }
            return self.base.next();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_storage::MemoryEngine;

    #[test]
    fn scan_sees_pending_puts_and_hides_pending_deletes() {
        let e = MemoryEngine::new();
        let mut b = WriteBatch::new();
        b.put(b"a".to_vec(), b"1".to_vec());
        b.put(b"c".to_vec(), b"3".to_vec());
        e.write(b, false).unwrap();
        let mut pending = PendingWrites::default();
        let mut b = WriteBatch::new();
        b.put(b"b".to_vec(), b"2".to_vec());
        b.delete(b"c".to_vec());
        b.put(b"a".to_vec(), b"9".to_vec());
        pending.record(&b, 0);
        for reverse in [false, true] {
            let mut got: Vec<_> = overlay_scan(&e, &pending, b"a", b"z", reverse)
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            if reverse {
                got.reverse();
            }
            assert_eq!(
                got,
                vec![
                    (b"a".to_vec(), b"9".to_vec()),
                    (b"b".to_vec(), b"2".to_vec())
                ]
            );
        }
    }
}
