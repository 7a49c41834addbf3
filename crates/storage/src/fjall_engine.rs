//! [`FjallEngine`]: the on-disk [`Engine`], over the embedded LSM `fjall`.
//!
//! Layout of a store directory:
//!
//! ```text
//! <dir>/LOCK      exclusive advisory lock, held while the engine is open
//! <dir>/fjall/    the fjall database
//! ```
//!
//! Engine keys live in one of two fjall keyspaces, split at `[0x01]`:
//!
//! - `local`: keys below `[0x01]`, i.e. node-local keys (first byte `0x00`:
//!   raft logs, hard states, store identity). Raft logs see heavy deletes,
//!   and keeping them apart keeps their tombstones out of the data's way.
//! - `data`: keys at or above `[0x01]`: MVCC versions and intents.
//!
//! Both keyspaces share fjall's single journal, so one [`WriteBatch`]
//! across both is atomic (one journal entry, one fsync). A scan whose span
//! crosses `[0x01]` reads both keyspaces from one fjall snapshot and chains
//! them in order, so any span works and is consistent.
//!
//! Limits inherited from fjall: keys must be non-empty and at most 65535
//! bytes; writing such a key is an [`Error::Io`] (the whole batch is
//! refused), reading it finds nothing.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};

use crate::engine::{Engine, EngineIterator, Error, Result, WriteBatch};
use crate::version_cache::NewestVersionCache;

/// Name of the lock file inside a store directory.
pub const LOCK_FILE: &str = "LOCK";
/// Name of the fjall database directory inside a store directory.
pub const FJALL_DIR: &str = "fjall";

/// The first key of the `data` keyspace; every smaller key is `local`.
const SPLIT: &[u8] = &[0x01];

/// Tuning knobs for [`FjallEngine::open_with`].
#[derive(Debug, Clone)]
pub struct FjallOptions {
    /// Block cache size in bytes, shared by both keyspaces. Default 64 MiB.
    pub cache_bytes: u64,
    /// Background flush/compaction threads. Default 1: with more than one,
    /// fjall 3.1's worker 0 hands every compaction request back to the queue
    /// and takes it again at once, spinning for as long as another worker
    /// compacts (43% of a 3-node demo's CPU under pgbench).
    pub worker_threads: usize,
    /// Journal size after which fjall flushes memtables so that old journals
    /// can be dropped. Default 256 MiB.
    pub max_journal_bytes: u64,
    /// Size at which a keyspace's memtable is flushed. Default 32 MiB.
    pub max_memtable_bytes: u64,
    /// Memory for the newest versions of recently read keys
    /// ([`NewestVersionCache`]). Default 64 MiB.
    pub version_cache_bytes: usize,
}

impl Default for FjallOptions {
    fn default() -> Self {
        Self {
            cache_bytes: 64 << 20,
            worker_threads: 1,
            max_journal_bytes: 256 << 20,
            max_memtable_bytes: 32 << 20,
            version_cache_bytes: 64 << 20,
        }
    }
}

/// An [`Engine`] stored on disk by fjall. Holds the store directory's
/// `LOCK` for its whole lifetime; dropping the engine closes fjall and then
/// releases the lock.
pub struct FjallEngine {
    // Field order matters: fields drop in declaration order, and the lock
    // must outlive the database.
    local: Keyspace,
    data: Keyspace,
    db: Database,
    versions: NewestVersionCache,
    path: PathBuf,
    _lock: File,
}

impl std::fmt::Debug for FjallEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallEngine")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FjallEngine {
    /// Opens (creating if needed) the store at `path` with default options.
    /// Fails with [`Error::Locked`] if the store is open elsewhere, in this
    /// process or another.
    pub fn open(path: impl AsRef<Path>) -> Result<FjallEngine> {
        Self::open_with(path, FjallOptions::default())
    }

    /// Opens (creating if needed) the store at `path`. Fails with
    /// [`Error::Locked`] if the store is open elsewhere, in this process or
    /// another.
    pub fn open_with(path: impl AsRef<Path>, opts: FjallOptions) -> Result<FjallEngine> {
        let path = path.as_ref().to_path_buf();
        std::fs::create_dir_all(&path)
            .map_err(|e| Error::Io(format!("creating {}: {e}", path.display())))?;
        let lock = lock_dir(&path)?;

        let db = Database::builder(path.join(FJALL_DIR))
            .cache_size(opts.cache_bytes)
            .max_journaling_size(opts.max_journal_bytes)
            .worker_threads(opts.worker_threads.max(1))
            .open()
            .map_err(|e| map_err(&path, e))?;
        let memtable = opts.max_memtable_bytes;
        let local = db
            .keyspace("local", || {
                KeyspaceCreateOptions::default().max_memtable_size(memtable)
            })
            .map_err(|e| map_err(&path, e))?;
        let data = db
            .keyspace("data", || {
                KeyspaceCreateOptions::default().max_memtable_size(memtable)
            })
            .map_err(|e| map_err(&path, e))?;
        Ok(FjallEngine {
            local,
            data,
            db,
            versions: NewestVersionCache::new(opts.version_cache_bytes),
            path,
            _lock: lock,
        })
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes on disk used by the database (tables and journals).
    pub fn disk_space(&self) -> Result<u64> {
        self.db.disk_space().map_err(|e| map_err(&self.path, e))
    }

    fn keyspace_for(&self, key: &[u8]) -> &Keyspace {
        if key < SPLIT {
            &self.local
        } else {
            &self.data
        }
    }
}

/// Takes the exclusive lock on `<dir>/LOCK` and records our pid in it.
fn lock_dir(dir: &Path) -> Result<File> {
    let lock_path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| Error::Io(format!("opening {}: {e}", lock_path.display())))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(Error::Locked(format!(
                "{} (another engine holds {})",
                dir.display(),
                lock_path.display()
            )))
        }
        Err(TryLockError::Error(e)) => {
            return Err(Error::Io(format!("locking {}: {e}", lock_path.display())))
        }
    }
    // Best effort: the pid helps a human find the other holder.
    let _ = file.set_len(0);
    let _ = writeln!(file, "{}", std::process::id());
    Ok(file)
}

fn map_err(path: &Path, e: fjall::Error) -> Error {
    match e {
        fjall::Error::Locked => Error::Locked(format!("{} (fjall lock)", path.display())),
        fjall::Error::Io(e) => Error::Io(format!("{}: {e}", path.display())),
        fjall::Error::Storage(fjall::LsmError::Io(e)) => {
            Error::Io(format!("{}: {e}", path.display()))
        }
        fjall::Error::Poisoned | fjall::Error::KeyspaceDeleted => {
            Error::Io(format!("{}: {e}", path.display()))
        }
        other => Error::Corruption(format!("{}: {other}", path.display())),
    }
}

fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(Error::Io(
            "fjall engine: empty keys are not supported".into(),
        ));
    }
    if key.len() > u16::MAX as usize {
        return Err(Error::Io(format!(
            "fjall engine: key of {} bytes exceeds the 65535-byte limit",
            key.len()
        )));
    }
    Ok(())
}

fn iter_items(
    path: PathBuf,
    it: impl Iterator<Item = fjall::Guard> + 'static,
) -> EngineIterator<'static> {
    Box::new(it.map(move |g| {
        g.into_inner()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .map_err(|e| map_err(&path, e))
    }))
}

impl Engine for FjallEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if key.is_empty() || key.len() > u16::MAX as usize {
            return Ok(None);
        }
        let v = self
            .keyspace_for(key)
            .get(key)
            .map_err(|e| map_err(&self.path, e))?;
        Ok(v.map(|v| v.to_vec()))
    }

    fn scan(&self, start: &[u8], end: &[u8], reverse: bool) -> Result<EngineIterator<'_>> {
        if start >= end {
            return Ok(Box::new(std::iter::empty()));
        }
        let bounds =
            |lo: &[u8], hi: &[u8]| (Bound::Included(lo.to_vec()), Bound::Excluded(hi.to_vec()));
        let path = self.path.clone();
        if end <= SPLIT || start >= SPLIT {
            let it = self.keyspace_for(start).range(bounds(start, end));
            return Ok(if reverse {
                iter_items(path, it.rev())
            } else {
                iter_items(path, it)
            });
        }
        // The span crosses the split: read both keyspaces at one snapshot.
        let snap = self.db.snapshot();
        let local = snap.range(&self.local, bounds(start, SPLIT));
        let data = snap.range(&self.data, bounds(SPLIT, end));
        Ok(if reverse {
            iter_items(path, data.rev().chain(local.rev()))
        } else {
            iter_items(path, local.chain(data))
        })
    }

    fn write(&self, batch: WriteBatch, sync: bool) -> Result<()> {
        if batch.is_empty() {
            return if sync { self.sync() } else { Ok(()) };
        }
        for (k, _) in batch.ops() {
            check_key(k)?;
        }
        let mode = if sync {
            PersistMode::SyncData
        } else {
            // Hand the journal to the OS: survives a process crash, not a
            // power loss. A later synced write makes it durable.
            PersistMode::Buffer
        };
        let written = self.versions.begin_batch(batch.version_ops());
        let mut b = self.db.batch().durability(Some(mode));
        for (k, v) in batch.into_ops() {
            let ks = self.keyspace_for(&k);
            match v {
                Some(v) => b.insert(ks, k, v),
                None => b.remove(ks, k),
            }
        }
        let committed = b.commit().map_err(|e| map_err(&self.path, e));
        written.finish(committed.is_ok());
        committed
    }

    fn sync(&self) -> Result<()> {
        self.db
            .persist(PersistMode::SyncAll)
            .map_err(|e| map_err(&self.path, e))
    }

    fn newest_versions(&self) -> Option<&NewestVersionCache> {
        Some(&self.versions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(b: &mut WriteBatch, k: &[u8], v: &[u8]) {
        b.put(k.to_vec(), v.to_vec());
    }

    fn keys(e: &FjallEngine, start: &[u8], end: &[u8], reverse: bool) -> Vec<Vec<u8>> {
        e.scan(start, end, reverse)
            .unwrap()
            .map(|r| r.unwrap().0)
            .collect()
    }

    #[test]
    fn synced_writes_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let e = FjallEngine::open(dir.path()).unwrap();
            let mut b = WriteBatch::new();
            put(&mut b, b"\x00raft/1", b"entry");
            put(&mut b, b"\x01k", b"v");
            e.write(b, true).unwrap();
            let mut b = WriteBatch::new();
            put(&mut b, b"\x02unsynced-then-synced", b"x");
            e.write(b, false).unwrap();
            e.write(WriteBatch::new(), true).unwrap();
        }
        let e = FjallEngine::open(dir.path()).unwrap();
        assert_eq!(e.get(b"\x00raft/1").unwrap(), Some(b"entry".to_vec()));
        assert_eq!(e.get(b"\x01k").unwrap(), Some(b"v".to_vec()));
        assert_eq!(
            e.get(b"\x02unsynced-then-synced").unwrap(),
            Some(b"x".to_vec())
        );
        assert_eq!(e.get(b"\x01missing").unwrap(), None);
        assert_eq!(e.get(b"").unwrap(), None);
    }

    #[test]
    fn second_open_is_locked_and_drop_releases() {
        let dir = tempfile::tempdir().unwrap();
        let e = FjallEngine::open(dir.path()).unwrap();
        match FjallEngine::open(dir.path()) {
            Err(Error::Locked(msg)) => {
                assert!(msg.contains(&dir.path().display().to_string()), "{msg}")
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(e);
        let e = FjallEngine::open(dir.path()).unwrap();
        drop(e);
        FjallEngine::open(dir.path()).unwrap();
    }

    #[test]
    fn scans_forward_and_reverse_across_keyspaces() {
        let dir = tempfile::tempdir().unwrap();
        let e = FjallEngine::open(dir.path()).unwrap();
        let mut b = WriteBatch::new();
        for k in [
            &b"\x00a"[..],
            b"\x00b",
            b"\x00\xff",
            b"\x01",
            b"\x01a",
            b"\x02",
            b"z",
        ] {
            put(&mut b, k, b"v");
        }
        e.write(b, false).unwrap();
        let all: Vec<Vec<u8>> = [
            &b"\x00a"[..],
            b"\x00b",
            b"\x00\xff",
            b"\x01",
            b"\x01a",
            b"\x02",
            b"z",
        ]
        .iter()
        .map(|k| k.to_vec())
        .collect();
        assert_eq!(keys(&e, b"", b"\xff", false), all);
        let mut rev = all.clone();
        rev.reverse();
        assert_eq!(keys(&e, b"", b"\xff", true), rev);
        // Within one keyspace.
        assert_eq!(keys(&e, b"\x00", b"\x01", false), all[..3].to_vec());
        assert_eq!(
            keys(&e, b"\x00b", b"\x01", true),
            vec![all[2].clone(), all[1].clone()]
        );
        assert_eq!(
            keys(&e, b"\x01", b"\x02", true),
            vec![all[4].clone(), all[3].clone()]
        );
        // Crossing the split with exclusive end.
        assert_eq!(keys(&e, b"\x00b", b"\x01a", false), all[1..4].to_vec());
        assert_eq!(
            keys(&e, b"\x00b", b"\x01a", true),
            vec![all[3].clone(), all[2].clone(), all[1].clone()]
        );
        assert!(keys(&e, b"b", b"a", false).is_empty());
    }

    #[test]
    fn batch_is_atomic_across_keyspaces_and_last_op_wins() {
        let dir = tempfile::tempdir().unwrap();
        {
            let e = FjallEngine::open(dir.path()).unwrap();
            let mut b = WriteBatch::new();
            put(&mut b, b"\x00log", b"1");
            put(&mut b, b"\x01data", b"1");
            put(&mut b, b"\x01twice", b"first");
            put(&mut b, b"\x01twice", b"second");
            put(&mut b, b"\x00gone", b"x");
            b.delete(b"\x00gone".to_vec());
            e.write(b, true).unwrap();
            assert_eq!(e.get(b"\x01twice").unwrap(), Some(b"second".to_vec()));
            assert_eq!(e.get(b"\x00gone").unwrap(), None);

            // A batch with an invalid key is refused as a whole.
            let mut b = WriteBatch::new();
            put(&mut b, b"\x00log", b"2");
            put(&mut b, b"", b"bad");
            assert!(e.write(b, true).is_err());
            assert_eq!(e.get(b"\x00log").unwrap(), Some(b"1".to_vec()));
        }
        // The journal replays the same way.
        let e = FjallEngine::open(dir.path()).unwrap();
        assert_eq!(e.get(b"\x00log").unwrap(), Some(b"1".to_vec()));
        assert_eq!(e.get(b"\x01data").unwrap(), Some(b"1".to_vec()));
        assert_eq!(e.get(b"\x01twice").unwrap(), Some(b"second".to_vec()));
        assert_eq!(e.get(b"\x00gone").unwrap(), None);
    }

    #[test]
    fn lock_is_exclusive_across_processes() {
        // flock conflicts between open file descriptions, so a second open
        // of LOCK in this process stands in for another process.
        let dir = tempfile::tempdir().unwrap();
        let _e = FjallEngine::open(dir.path()).unwrap();
        let f = File::open(dir.path().join(LOCK_FILE)).unwrap();
        assert!(matches!(f.try_lock(), Err(TryLockError::WouldBlock)));
    }
}
