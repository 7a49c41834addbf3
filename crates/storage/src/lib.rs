//! Storage: the [`Engine`] trait over an ordered key/value store (the
//! embedded LSM `fjall`, or memory for tests and simulation), the
//! order-preserving key [`encoding`], and [`mvcc`]: versioned values at HLC
//! timestamps, intents and their resolution, garbage collection; and the
//! [`version_cache`] that answers point reads of recently read keys without
//! an LSM seek.
//!
//! Engine keys are split by their first byte:
//!
//! ```text
//! \x00 ...                    node-local, unversioned (raft log, hard state, store ident)
//! \x01 <enc(key)> <!ts>       MVCC versions of replicated keys, newest first
//! \x02 <enc(key)>             intents (the lock table): one per key at most
//! ```

pub mod encoding;
pub mod engine;
pub mod fjall_engine;
pub mod memory;
pub mod mvcc;
pub mod version_cache;

pub use engine::{Engine, EngineIterator, Error, Result, WriteBatch};
pub use fjall_engine::FjallEngine;
pub use memory::MemoryEngine;
pub use version_cache::NewestVersionCache;

/// First byte of node-local engine keys.
pub const LOCAL_PREFIX: u8 = 0x00;
/// First byte of MVCC version keys.
pub const MVCC_PREFIX: u8 = 0x01;
/// First byte of intent (lock table) keys.
pub const LOCK_PREFIX: u8 = 0x02;
/// First byte of transaction record keys.
pub const TXN_RECORD_PREFIX: u8 = 0x03;
