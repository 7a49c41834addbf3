//! Durable raft state of one group: hard state, log entries, and the apply
//! state (applied index, truncation point, membership as of the applied
//! index), kept in memory for raft-rs and mirrored to the engine.
//!
//! Engine keys (node-local, never replicated):
//!
//! ```text
//! \x00 r <range id BE> h              hard state (term, vote, commit)
//! \x00 r <range id BE> a              apply state
//! \x00 r <range id BE> l <index BE>   log entry
//! ```
//!
//! Writes go into a [`WriteBatch`] supplied by the driver so that the log
//! appends and hard states of every group share one fsync.

use std::cell::Cell;
use std::collections::VecDeque;

use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};
use tessera_storage::{Engine, WriteBatch};

/// Index and term a freshly created range starts at (as if a snapshot at
/// this index had been applied). Every replica of a new range (bootstrap or
/// split) starts here, so their logs agree without any message.
pub const RAFT_INIT_INDEX: u64 = 10;
pub const RAFT_INIT_TERM: u64 = 5;

fn group_prefix(range_id: u64) -> Vec<u8> {
    let mut k = vec![0x00, b'r'];
    k.extend_from_slice(&range_id.to_be_bytes());
    k
}

fn hard_state_key(range_id: u64) -> Vec<u8> {
    let mut k = group_prefix(range_id);
    k.push(b'h');
    k
}

fn apply_state_key(range_id: u64) -> Vec<u8> {
    let mut k = group_prefix(range_id);
    k.push(b'a');
    k
}

fn log_key(range_id: u64, index: u64) -> Vec<u8> {
    let mut k = group_prefix(range_id);
    k.push(b'l');
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// Engine span `[start, end)` of every raft key of `range_id`.
pub fn raft_local_span(range_id: u64) -> (Vec<u8>, Vec<u8>) {
    let start = group_prefix(range_id);
    let end = group_prefix(range_id + 1);
    (start, end)
}

fn storage_err(e: impl std::fmt::Display) -> raft::Error {
    raft::Error::Store(StorageError::Other(e.to_string().into()))
}

/// One group's raft log and state, implementing raft-rs's `Storage`.
pub struct GroupStorage {
    range_id: u64,
    hard_state: HardState,
    /// Membership as of `applied`.
    conf_state: ConfState,
    applied: u64,
    truncated_index: u64,
    truncated_term: u64,
    /// Entries `truncated_index + 1 ..= last_index`.
    entries: VecDeque<Entry>,
    /// A snapshot built on request, handed to raft on its next attempt.
    prepared_snapshot: Option<Snapshot>,
    /// Set when raft asked for a snapshot we did not have yet.
    snapshot_requested: Cell<Option<u64>>,
}

impl GroupStorage {
    /// A replica that knows nothing yet: it waits for a snapshot.
    pub fn uninitialized(range_id: u64) -> Self {
        GroupStorage {
            range_id,
            hard_state: HardState::default(),
            conf_state: ConfState::default(),
            applied: 0,
            truncated_index: 0,
            truncated_term: 0,
            entries: VecDeque::new(),
            prepared_snapshot: None,
            snapshot_requested: Cell::new(None),
        }
    }

    /// An empty replica that replaces an obsolete one of the same node
    /// (see `MultiRaft::step`): it keeps that one's term and vote, since
    /// raft knows both as the same peer and a peer votes once per term.
    pub fn uninitialized_after(range_id: u64, term: u64, vote: u64) -> Self {
        let mut s = Self::uninitialized(range_id);
        s.hard_state.term = term;
        s.hard_state.vote = vote;
        s
    }

    /// A new range's replica, at the initial index with the given members.
    /// Its state is written into `batch`.
    pub fn initialized(
        range_id: u64,
        voters: Vec<u64>,
        learners: Vec<u64>,
        batch: &mut WriteBatch,
    ) -> Self {
        let mut s = Self::uninitialized(range_id);
        s.conf_state.voters = voters;
        s.conf_state.learners = learners;
        s.applied = RAFT_INIT_INDEX;
        s.truncated_index = RAFT_INIT_INDEX;
        s.truncated_term = RAFT_INIT_TERM;
        s.hard_state.term = RAFT_INIT_TERM;
        s.hard_state.commit = RAFT_INIT_INDEX;
        s.write_hard_state(batch);
        s.write_apply_state(batch);
        s
    }

    /// Loads a group's persisted state; `None` if the engine has none.
    pub fn load(engine: &dyn Engine, range_id: u64) -> tessera_storage::Result<Option<Self>> {
        let corrupt = |e: protobuf::ProtobufError| {
            tessera_storage::Error::Corruption(format!("raft state of range {range_id}: {e}"))
        };
        let Some(apply) = engine.get(&apply_state_key(range_id))? else {
            return Ok(None);
        };
        let mut s = Self::uninitialized(range_id);
        s.decode_apply_state(&apply)?;
        if let Some(hs) = engine.get(&hard_state_key(range_id))? {
            s.hard_state = HardState::parse_from_bytes(&hs).map_err(corrupt)?;
        }
        let start = log_key(range_id, s.truncated_index + 1);
        let end = log_key(range_id, u64::MAX);
        for (expected, item) in (s.truncated_index + 1..).zip(engine.scan(&start, &end, false)?) {
            let (_, v) = item?;
            let e = Entry::parse_from_bytes(&v).map_err(corrupt)?;
            if e.index != expected {
                return Err(tessera_storage::Error::Corruption(format!(
                    "range {range_id}: log has a gap at index {expected} (found {})",
                    e.index
                )));
            }
            s.entries.push_back(e);
        }
        Ok(Some(s))
    }

    pub fn range_id(&self) -> u64 {
        self.range_id
    }

    pub fn applied(&self) -> u64 {
        self.applied
    }

    pub fn conf_state(&self) -> &ConfState {
        &self.conf_state
    }

    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    pub fn is_initialized(&self) -> bool {
        self.truncated_index > 0 || !self.entries.is_empty()
    }

    pub fn truncated_index(&self) -> u64 {
        self.truncated_index
    }

    fn last(&self) -> u64 {
        self.truncated_index + self.entries.len() as u64
    }

    /// Appends entries from a `Ready`, replacing any conflicting suffix.
    pub fn append(&mut self, entries: &[Entry], batch: &mut WriteBatch) {
        let Some(first) = entries.first() else { return };
        let old_last = self.last();
        if first.index <= self.truncated_index {
            // Raft never rewrites committed (hence never truncated) entries.
            debug_assert!(false, "append below the truncated index");
            return;
        }
        let keep = (first.index - self.truncated_index - 1) as usize;
        self.entries.truncate(keep);
        for e in entries {
            batch.put(
                log_key(self.range_id, e.index),
                e.write_to_bytes().unwrap_or_default(),
            );
            self.entries.push_back(e.clone());
        }
        let new_last = self.last();
        for idx in new_last + 1..=old_last {
            batch.delete(log_key(self.range_id, idx));
        }
    }

    /// Records `hs` in `batch`. Returns whether the write must be synced
    /// before raft's messages go out: a new term or vote must survive a
    /// crash; a commit index alone need not (it is learnt again from the
    /// leader, and it is written before any apply that depends on it).
    pub fn set_hard_state(&mut self, hs: HardState, batch: &mut WriteBatch) -> bool {
        let must_sync = hs.term != self.hard_state.term || hs.vote != self.hard_state.vote;
        self.hard_state = hs;
        self.write_hard_state(batch);
        must_sync
    }

    pub fn set_commit(&mut self, commit: u64, batch: &mut WriteBatch) {
        if commit > self.hard_state.commit {
            self.hard_state.commit = commit;
            self.write_hard_state(batch);
        }
    }

    /// Records in `batch` the hard state with `applied` as its commit index,
    /// for a batch that applies entries up to `applied` and is written
    /// before the iteration's synced write of the hard state (and of new
    /// entries): should only the first reach the disk, the commit index
    /// there is neither below the applied index nor above the log.
    pub fn write_commit_for_apply(&self, applied: u64, batch: &mut WriteBatch) {
        let mut hs = self.hard_state.clone();
        hs.commit = applied;
        batch.put(
            hard_state_key(self.range_id),
            hs.write_to_bytes().unwrap_or_default(),
        );
    }

    /// Records the applied index (and membership) in `batch`, which must be
    /// the batch holding the applied commands' effects.
    pub fn set_applied(
        &mut self,
        applied: u64,
        conf_state: Option<ConfState>,
        batch: &mut WriteBatch,
    ) {
        self.applied = applied;
        if let Some(cs) = conf_state {
            self.conf_state = cs;
            // A snapshot from before a membership change must not be sent
            // to a peer added since: it would replay the entries between
            // (such as that peer's own earlier removal) and destroy it.
            self.prepared_snapshot = None;
        }
        self.write_apply_state(batch);
    }

    /// Replaces the log with a snapshot's position and membership.
    pub fn apply_snapshot(&mut self, snap: &Snapshot, batch: &mut WriteBatch) {
        let meta = snap.get_metadata();
        for idx in self.truncated_index + 1..=self.last() {
            batch.delete(log_key(self.range_id, idx));
        }
        self.entries.clear();
        self.truncated_index = meta.index;
        self.truncated_term = meta.term;
        self.applied = meta.index;
        self.conf_state = meta.get_conf_state().clone();
        if self.hard_state.commit < meta.index {
            self.hard_state.commit = meta.index;
        }
        if self.hard_state.term < meta.term {
            self.hard_state.term = meta.term;
        }
        self.prepared_snapshot = None;
        self.write_hard_state(batch);
        self.write_apply_state(batch);
    }

    /// Drops log entries up to and including `index` (which must be applied).
    pub fn compact(&mut self, index: u64, batch: &mut WriteBatch) {
        let index = index.min(self.applied);
        if index <= self.truncated_index {
            return;
        }
        let term = match raft::Storage::term(self, index) {
            Ok(t) => t,
            Err(_) => return,
        };
        for idx in self.truncated_index + 1..=index {
            batch.delete(log_key(self.range_id, idx));
        }
        let drop = (index - self.truncated_index) as usize;
        self.entries.drain(..drop.min(self.entries.len()));
        self.truncated_index = index;
        self.truncated_term = term;
        self.write_apply_state(batch);
    }

    /// Number of entries kept in the log.
    pub fn log_len(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Bytes of the entries after `index` still in the log.
    pub fn bytes_after(&self, index: u64) -> u64 {
        let skip = index.saturating_sub(self.truncated_index) as usize;
        self.entries
            .iter()
            .skip(skip)
            .map(|e| e.data.len() as u64)
            .sum()
    }

    /// The index raft asked a snapshot for, if it is still waiting.
    pub fn snapshot_requested(&self) -> Option<u64> {
        self.snapshot_requested.get()
    }

    /// Stores a snapshot (built by the state machine at the applied index)
    /// for raft to send on its next attempt.
    pub fn set_prepared_snapshot(&mut self, data: Vec<u8>) {
        let mut snap = Snapshot {
            data: data.into(),
            ..Default::default()
        };
        let meta = snap.mut_metadata();
        meta.index = self.applied;
        meta.term = raft::Storage::term(self, self.applied).unwrap_or(self.truncated_term);
        meta.set_conf_state(self.conf_state.clone());
        self.prepared_snapshot = Some(snap);
        self.snapshot_requested.set(None);
    }

    /// Deletes every raft key of this group.
    pub fn destroy(&self, batch: &mut WriteBatch) {
        batch.delete(hard_state_key(self.range_id));
        batch.delete(apply_state_key(self.range_id));
        for idx in self.truncated_index + 1..=self.last() {
            batch.delete(log_key(self.range_id, idx));
        }
    }

    fn write_hard_state(&self, batch: &mut WriteBatch) {
        batch.put(
            hard_state_key(self.range_id),
            self.hard_state.write_to_bytes().unwrap_or_default(),
        );
    }

    fn write_apply_state(&self, batch: &mut WriteBatch) {
        let cs = self.conf_state.write_to_bytes().unwrap_or_default();
        let mut v = Vec::with_capacity(24 + cs.len());
        v.extend_from_slice(&self.applied.to_be_bytes());
        v.extend_from_slice(&self.truncated_index.to_be_bytes());
        v.extend_from_slice(&self.truncated_term.to_be_bytes());
        v.extend_from_slice(&cs);
        batch.put(apply_state_key(self.range_id), v);
    }

    fn decode_apply_state(&mut self, v: &[u8]) -> tessera_storage::Result<()> {
        let corrupt = || {
            tessera_storage::Error::Corruption(format!("apply state of range {}", self.range_id))
        };
        if v.len() < 24 {
            return Err(corrupt());
        }
        let u = |i: usize| u64::from_be_bytes(v[i..i + 8].try_into().expect("8 bytes"));
        self.applied = u(0);
        self.truncated_index = u(8);
        self.truncated_term = u(16);
        self.conf_state = ConfState::parse_from_bytes(&v[24..]).map_err(|_| corrupt())?;
        Ok(())
    }
}

impl raft::Storage for GroupStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState {
            hard_state: self.hard_state.clone(),
            conf_state: self.conf_state.clone(),
        })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low <= self.truncated_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 {
            return Err(storage_err(format!(
                "entries [{low}, {high}) beyond last index {}",
                self.last()
            )));
        }
        let offset = self.truncated_index + 1;
        let mut out: Vec<Entry> = self
            .entries
            .range((low - offset) as usize..(high - offset) as usize)
            .cloned()
            .collect();
        raft::util::limit_size(&mut out, max_size.into());
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx == self.truncated_index {
            return Ok(self.truncated_term);
        }
        if idx < self.truncated_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > self.last() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(self.entries[(idx - self.truncated_index - 1) as usize].term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.truncated_index + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        if let Some(snap) = &self.prepared_snapshot {
            let cs = snap.get_metadata().get_conf_state();
            // A snapshot that predates the recipient's membership would be
            // refused by it: build a newer one instead.
            let knows_recipient = cs.voters.contains(&to) || cs.learners.contains(&to);
            // Raft asks for a snapshot because the entries the peer needs
            // were truncated: one older than the truncation point is useless.
            let fresh = snap.get_metadata().index >= request_index.max(self.truncated_index);
            if fresh && knows_recipient {
                return Ok(snap.clone());
            }
        }
        self.snapshot_requested.set(Some(request_index));
        Err(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::Storage;
    use tessera_storage::MemoryEngine;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: vec![index as u8].into(),
            ..Default::default()
        }
    }

    #[test]
    fn log_survives_reload_and_conflicting_suffix_is_replaced() {
        let engine = MemoryEngine::new();
        let mut batch = WriteBatch::new();
        let mut s = GroupStorage::initialized(7, vec![1, 2, 3], vec![], &mut batch);
        s.append(&[entry(11, 5), entry(12, 5), entry(13, 5)], &mut batch);
        s.append(&[entry(12, 6)], &mut batch);
        engine.write(batch, true).unwrap();

        let loaded = GroupStorage::load(&engine, 7).unwrap().unwrap();
        assert_eq!(loaded.last_index().unwrap(), 12);
        assert_eq!(loaded.term(12).unwrap(), 6);
        assert_eq!(loaded.term(10).unwrap(), RAFT_INIT_TERM);
        assert_eq!(loaded.conf_state().voters, vec![1, 2, 3]);
    }

    /// Only a new term or vote asks for a synced write; a commit index
    /// alone does not (it is learnt again from the leader).
    #[test]
    fn only_terms_and_votes_need_a_synced_hard_state() {
        let mut b = WriteBatch::new();
        let mut s = GroupStorage::initialized(1, vec![1], vec![], &mut b);
        let hs = |term, vote, commit| HardState {
            term,
            vote,
            commit,
            ..Default::default()
        };
        assert!(s.set_hard_state(hs(1, 0, 0), &mut b), "new term");
        assert!(s.set_hard_state(hs(1, 2, 0), &mut b), "new vote");
        assert!(!s.set_hard_state(hs(1, 2, 5), &mut b), "commit only");
        assert_eq!(s.hard_state().commit, 5);
        assert!(s.set_hard_state(hs(2, 2, 5), &mut b), "next term");
    }

    /// A peer removed and added back must get a snapshot taken after its
    /// new addition, not one prepared while it was a member before.
    #[test]
    fn a_membership_change_discards_the_prepared_snapshot() {
        let mut batch = WriteBatch::new();
        let mut s = GroupStorage::initialized(3, vec![1, 2, 3], vec![], &mut batch);
        s.append(&[entry(11, 5), entry(12, 5)], &mut batch);
        s.set_applied(12, None, &mut batch);
        s.set_prepared_snapshot(b"at 12".to_vec());
        assert_eq!(s.snapshot(0, 2).unwrap().get_metadata().index, 12);
        // Peer 2 is removed (13) and added back as a learner (14).
        let removed = ConfState {
            voters: vec![1, 3],
            ..Default::default()
        };
        s.append(&[entry(13, 5), entry(14, 5)], &mut batch);
        s.set_applied(13, Some(removed), &mut batch);
        let mut readded = ConfState {
            voters: vec![1, 3],
            ..Default::default()
        };
        readded.learners = vec![2];
        s.set_applied(14, Some(readded), &mut batch);
        assert!(
            s.snapshot(0, 2).is_err(),
            "the snapshot at 12 predates the re-add"
        );
        assert_eq!(s.snapshot_requested(), Some(0));
        s.set_prepared_snapshot(b"at 14".to_vec());
        assert_eq!(s.snapshot(0, 2).unwrap().get_metadata().index, 14);
    }

    #[test]
    fn compaction_drops_entries_and_keeps_the_boundary_term() {
        let engine = MemoryEngine::new();
        let mut batch = WriteBatch::new();
        let mut s = GroupStorage::initialized(1, vec![1], vec![], &mut batch);
        s.append(&[entry(11, 5), entry(12, 6), entry(13, 6)], &mut batch);
        s.set_applied(13, None, &mut batch);
        s.compact(12, &mut batch);
        engine.write(batch, true).unwrap();
        assert_eq!(s.first_index().unwrap(), 13);
        assert_eq!(s.term(12).unwrap(), 6);
        assert!(s
            .entries(12, 14, None, GetEntriesContext::empty(false))
            .is_err());
        let loaded = GroupStorage::load(&engine, 1).unwrap().unwrap();
        assert_eq!(loaded.first_index().unwrap(), 13);
        assert_eq!(loaded.last_index().unwrap(), 13);
    }
}
