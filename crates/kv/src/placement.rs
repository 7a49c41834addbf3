//! Where a range's lease should live: near the load ("follow the
//! workload"), else spread over the live voters.
//!
//! A read served by a leaseholder on the gateway's own node skips a
//! network hop and an RPC: on one machine a point select through a remote
//! leaseholder costs several times one served locally. So the leaseholder
//! counts its requests by the node whose client sent them
//! ([`RequestOrigins`]) and, once a round, [`lease_target`] decides: a
//! node that sends clearly more requests than this one gets the lease;
//! a node that is itself the busiest gateway keeps it; a range without
//! enough load to judge has its lease spread by range id, so that leases
//! of idle ranges are balanced over the cluster.

/// Requests of one round (decayed counts) below which load does not
/// decide where the lease goes.
pub const MIN_REQUESTS: u64 = 50;

/// How many times more requests another node must send than this one
/// before the lease moves there (hysteresis against ping-pong).
pub const MOVE_FACTOR: u64 = 2;

/// Requests a replica received, by the node they came from (cleared each
/// round while the replica is not the leaseholder). Counts halve every
/// round, so they weigh the last few rounds most.
#[derive(Debug, Default)]
pub struct RequestOrigins {
    counts: Vec<(u64, u64)>,
}

impl RequestOrigins {
    /// Counts one request from `gateway` (0: not from a node; ignored).
    pub fn record(&mut self, gateway: u64) {
        if gateway == 0 {
            return;
        }
        match self.counts.iter_mut().find(|(n, _)| *n == gateway) {
            Some((_, c)) => *c += 1,
            None => self.counts.push((gateway, 1)),
        }
    }

    /// The counts as they stand, then halved for the next round.
    pub fn take_round(&mut self) -> Vec<(u64, u64)> {
        let now = self.counts.clone();
        for (_, c) in &mut self.counts {
            *c /= 2;
        }
        self.counts.retain(|(_, c)| *c > 0);
        now
    }

    pub fn clear(&mut self) {
        self.counts.clear();
    }
}

/// What load says about the lease of a range this node holds.
#[derive(Debug, PartialEq, Eq)]
pub enum LeaseTarget {
    /// Too little load (or no clear winner): spread by range id.
    Spread,
    /// This node is the busiest gateway: keep the lease here.
    Stay,
    /// Another node sends clearly more: move the lease there.
    MoveTo(u64),
}

/// Decides from one round of `counts` where the lease of a range held by
/// `this_node` should go; only nodes in `eligible` (live voters) are
/// candidates.
pub fn lease_target(counts: &[(u64, u64)], this_node: u64, eligible: &[u64]) -> LeaseTarget {
    let own = counts
        .iter()
        .find(|(n, _)| *n == this_node)
        .map_or(0, |(_, c)| *c);
    let busiest = counts
        .iter()
        .filter(|(n, _)| eligible.contains(n))
        .max_by_key(|(n, c)| (*c, std::cmp::Reverse(*n)));
    match busiest {
        Some(&(node, count)) if count >= MIN_REQUESTS => {
            if node == this_node {
                LeaseTarget::Stay
            } else if count > own.saturating_mul(MOVE_FACTOR) {
                LeaseTarget::MoveTo(node)
            } else if own >= MIN_REQUESTS {
                // Busy here too, just not the busiest by enough.
                LeaseTarget::Stay
            } else {
                LeaseTarget::Spread
            }
        }
        _ => LeaseTarget::Spread,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_decay_by_half_each_round() {
        let mut o = RequestOrigins::default();
        for _ in 0..10 {
            o.record(2);
        }
        o.record(3);
        o.record(0);
        assert_eq!(o.take_round(), vec![(2, 10), (3, 1)]);
        assert_eq!(o.take_round(), vec![(2, 5)]);
        assert_eq!(o.take_round(), vec![(2, 2)]);
    }

    #[test]
    fn the_lease_follows_a_dominant_gateway() {
        let all = [1, 2, 3];
        // Node 1 holds the lease; node 2 sends nearly everything.
        assert_eq!(
            lease_target(&[(2, 400), (1, 10)], 1, &all),
            LeaseTarget::MoveTo(2)
        );
        // The busiest gateway keeps its lease.
        assert_eq!(
            lease_target(&[(1, 400), (2, 300)], 1, &all),
            LeaseTarget::Stay
        );
        // Busy here too, and the other is not twice as busy: stay.
        assert_eq!(
            lease_target(&[(2, 150), (1, 100)], 1, &all),
            LeaseTarget::Stay
        );
        // Too little load to judge.
        assert_eq!(lease_target(&[(2, 20)], 1, &all), LeaseTarget::Spread);
        assert_eq!(lease_target(&[], 1, &all), LeaseTarget::Spread);
        // A busy node that is not an eligible voter does not get it.
        assert_eq!(lease_target(&[(4, 900)], 1, &all), LeaseTarget::Spread);
    }
}
