//! Multi-raft: one driver per node runs every range's raft group.
//!
//! [`raft`](https://docs.rs/raft) (raft-rs) provides the consensus state
//! machine of one group; this crate provides what makes many of them cheap
//! on one node:
//!
//! - **Batched durability.** [`MultiRaft::process_ready`] collects the
//!   `Ready` of every group, writes all new log entries and hard states in
//!   one engine batch with one fsync, then sends messages and applies
//!   committed entries.
//! - **Batched messages.** Outgoing messages are grouped per destination
//!   node ([`proto::RaftBatch`](tessera_common::proto::RaftBatch)).
//! - **Log truncation** after apply, and **snapshots** of a range's keys for
//!   replicas that fall behind the truncated log (built by the
//!   [`StateMachine`] when raft asks for one).
//! - **Quiescence.** An idle group stops ticking: no heartbeats, no
//!   elections. Any message, proposal or read wakes it; a follower whose
//!   leader's node is no longer live wakes up to elect a new leader.
//!
//! The driver is sans-IO apart from the storage engine it is given: callers
//! feed it messages and ticks and collect the outgoing batches, so a whole
//! cluster can run in one test, deterministically, over a simulated network.
//! The crate never interprets commands: entries are opaque bytes handed to
//! the [`StateMachine`] of their group.

mod log_store;
mod logger;
mod multiraft;

pub use log_store::{raft_local_span, GroupStorage, RAFT_INIT_INDEX, RAFT_INIT_TERM};
pub use logger::tracing_logger;
pub use multiraft::{
    Config, Effect, GroupControl, GroupStatus, MultiRaft, ProposeError, ReadyOutput, StateMachine,
};
pub use raft::eraftpb;
pub use raft::{SnapshotStatus, StateRole};

#[cfg(test)]
mod sim_tests;
