//! Range leases: who may serve reads without a raft round, and why a
//! deposed leader never can.
//!
//! The lease of a range belongs to its raft leader, but being leader is not
//! enough to read locally: a leader cut off from its peers (partitioned,
//! paused with SIGSTOP, or just slow) still believes it leads while the
//! others elect someone new and accept writes. Reading locally from the old
//! leader would then return stale data. The lease closes that gap with
//! time, measured on each node's monotonic clock:
//!
//! 1. **Grant.** The leader asks raft for a read index with a context that
//!    holds the local monotonic time `t` at which it asked. raft-rs sends a
//!    heartbeat round and reports the read index only once a quorum has
//!    answered that heartbeat. That quorum acknowledged this node as leader
//!    at some time after `t`. The lease then runs until `t + duration`.
//! 2. **Promise.** Every follower runs raft-rs with `check_quorum`: it
//!    refuses to vote for anyone for an election timeout (`election_tick`
//!    ticks) after hearing from its leader. Ticks never run faster than
//!    real time, so no new leader can be elected before
//!    `t + (election_tick - 1) * tick` for a heartbeat answered after `t`: the quorum that
//!    granted the lease intersects every quorum that could elect a
//!    successor. `duration` is shorter than that, with a margin for clock
//!    rate differences.
//! 3. **Restarts.** A restarted node has forgotten when it last heard from
//!    the leader, so it ignores vote requests for an election timeout after
//!    start (`vote_grace_ticks` in the raft driver): the promise survives.
//! 4. **Transfers.** Handing leadership over (`MsgTimeoutNow`) bypasses the
//!    promise: its recipient campaigns at once, and voters grant that
//!    campaign's votes even while they honour the current leader. So the
//!    old leader drops its lease before starting a transfer. A transfer
//!    that fails (the recipient is unreachable) is not the end of it: the
//!    network may still deliver the handover, or the campaign's vote
//!    requests, seconds later. Both carry their send time and are ignored
//!    once older than raft's `handover_max_age_ms` by the receiver's clock; the
//!    sender ignores grants asked for until twice that age plus the
//!    clocks' max offset after it sent a handover (one bound for the
//!    handover, one for the votes of the campaign it may start).
//! 5. **Serving.** A replica serves a read locally only if it is leader in
//!    the lease's term, `now < expiration`, and it has applied at least the
//!    read index of the grant: every write acknowledged by any earlier
//!    leader is in its state.
//!
//! A paused leader that resumes finds its lease expired (monotonic time kept
//! running) and must get a new grant, which the new term's quorum refuses:
//! it learns the new term and steps down instead.

use std::time::Duration;

/// The lease of one replica, as seen by the request path.
#[derive(Clone, Copy, Debug, Default)]
pub struct LeaseState {
    /// Raft term the lease was granted in (0: none).
    pub term: u64,
    /// Monotonic milliseconds (node clock) at which the lease ends.
    pub expiration_ms: u64,
    /// The read index of the grant: must be applied before serving.
    pub read_index: u64,
    /// Grants requested before this moment are ignored (a transfer started).
    pub not_before_ms: u64,
}

impl LeaseState {
    /// Records a grant requested at `requested_ms` in `term`.
    pub fn grant(&mut self, term: u64, requested_ms: u64, index: u64, duration: Duration) {
        if requested_ms < self.not_before_ms {
            return;
        }
        let expiration = requested_ms + duration.as_millis() as u64;
        if term != self.term {
            self.term = term;
            self.expiration_ms = expiration;
            self.read_index = index;
        } else {
            self.expiration_ms = self.expiration_ms.max(expiration);
            self.read_index = self.read_index.max(index);
        }
    }

    /// Drops the lease; grants asked for before `until_ms` (at least now)
    /// are ignored.
    pub fn revoke(&mut self, until_ms: u64) {
        self.term = 0;
        self.expiration_ms = 0;
        self.not_before_ms = self.not_before_ms.max(until_ms);
    }

    /// Whether a replica that is leader in `term` with `applied` may serve a
    /// read at `now_ms`.
    pub fn valid(&self, term: u64, now_ms: u64, applied: u64) -> bool {
        self.term != 0
            && self.term == term
            && now_ms < self.expiration_ms
            && applied >= self.read_index
    }

    /// Milliseconds left, if any.
    pub fn remaining_ms(&self, now_ms: u64) -> u64 {
        self.expiration_ms.saturating_sub(now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_millis(800);

    #[test]
    fn lease_expires_on_the_monotonic_clock() {
        let mut l = LeaseState::default();
        l.grant(3, 1000, 50, D);
        assert!(l.valid(3, 1500, 50));
        assert!(!l.valid(3, 1800, 50));
    }

    #[test]
    fn lease_needs_the_grant_index_applied_and_the_same_term() {
        let mut l = LeaseState::default();
        l.grant(3, 1000, 50, D);
        assert!(!l.valid(3, 1100, 49));
        assert!(!l.valid(4, 1100, 50));
    }

    #[test]
    fn grants_requested_before_a_revoke_are_ignored() {
        let mut l = LeaseState::default();
        l.grant(3, 1000, 50, D);
        l.revoke(1200);
        l.grant(3, 1100, 51, D);
        assert!(!l.valid(3, 1300, 60));
        l.grant(3, 1250, 52, D);
        assert!(l.valid(3, 1300, 60));
    }

    #[test]
    fn a_revoke_can_hold_off_grants_until_a_later_moment() {
        // A leader that sent a handover at 1000 may be deposed by it until
        // 3000: no grant asked for before then counts.
        let mut l = LeaseState::default();
        l.grant(3, 900, 50, D);
        l.revoke(3000);
        l.grant(3, 2000, 51, D);
        assert!(!l.valid(3, 2100, 60));
        // A later revoke with an earlier bound does not shorten it.
        l.revoke(2500);
        l.grant(3, 2900, 52, D);
        assert!(!l.valid(3, 2950, 60));
        l.grant(3, 3000, 53, D);
        assert!(l.valid(3, 3100, 60));
    }
}
