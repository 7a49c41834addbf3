//! Ranges over the replicated store: the [`Replica`](replica::Replica)
//! state machine each raft group drives, range [`lease`]s, the per-node
//! [`Store`](store::Store) that serves requests, lease [`placement`], and
//! the [`DB`](db::DB) client that routes operations to leaseholders.

pub mod concurrency;
pub mod db;
pub mod lease;
pub mod overlay;
pub mod placement;
pub mod replica;
mod resolver;
pub mod store;
pub mod txn;

pub use db::{NodeDialer, DB};
pub use store::{Liveness, RaftTransport, Store, StoreConfig, TestingHook, TestingKnobs};
