//! Hybrid logical clock (HLC).
//!
//! A timestamp is wall-clock milliseconds plus a logical counter. The clock
//! never goes backwards: `now()` returns a value greater than every value it
//! returned or received before. Every RPC carries the sender's clock; the
//! receiver calls [`Clock::update`] so that causally related events get
//! increasing timestamps across nodes.
//!
//! `max_offset` bounds how far apart the physical clocks of two nodes may be.
//! A remote timestamp further ahead of our physical clock than `max_offset`
//! means one of the clocks is broken: [`Clock::update`] refuses it rather
//! than dragging the whole cluster's time forward.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

/// A point in hybrid logical time, ordered by wall time then logical counter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Milliseconds since the Unix epoch.
    pub wall: u64,
    /// Orders events within one millisecond.
    pub logical: u32,
}

impl Timestamp {
    /// The zero timestamp, below every real one.
    pub const ZERO: Timestamp = Timestamp {
        wall: 0,
        logical: 0,
    };
    /// The largest timestamp.
    pub const MAX: Timestamp = Timestamp {
        wall: u64::MAX,
        logical: u32::MAX,
    };

    pub fn new(wall: u64, logical: u32) -> Self {
        Timestamp { wall, logical }
    }

    /// The smallest timestamp greater than `self`.
    pub fn next(self) -> Self {
        if self.logical == u32::MAX {
            Timestamp::new(self.wall + 1, 0)
        } else {
            Timestamp::new(self.wall, self.logical + 1)
        }
    }

    /// `self` moved forward by `d` of wall time.
    pub fn add_duration(self, d: Duration) -> Self {
        Timestamp::new(self.wall.saturating_add(d.as_millis() as u64), self.logical)
    }

    pub fn is_zero(&self) -> bool {
        *self == Timestamp::ZERO
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:010}", self.wall, self.logical)
    }
}

impl From<crate::proto::Timestamp> for Timestamp {
    fn from(t: crate::proto::Timestamp) -> Self {
        Timestamp::new(t.wall, t.logical)
    }
}

impl From<Timestamp> for crate::proto::Timestamp {
    fn from(t: Timestamp) -> Self {
        crate::proto::Timestamp {
            wall: t.wall,
            logical: t.logical,
        }
    }
}

/// Source of physical time in milliseconds; injected so tests control time.
pub trait PhysicalClock: Send + Sync + 'static {
    fn now_millis(&self) -> u64;
}

/// The operating system's wall clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl PhysicalClock for SystemClock {
    fn now_millis(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// A remote clock was further ahead of ours than the configured bound.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("remote clock {remote} is {ahead_ms}ms ahead of local physical time {local_ms}, more than max offset {max_offset_ms}ms")]
pub struct ClockOffsetError {
    pub remote: Timestamp,
    pub local_ms: u64,
    pub ahead_ms: u64,
    pub max_offset_ms: u64,
}

/// A hybrid logical clock shared by everything on one node.
#[derive(Clone)]
pub struct Clock {
    physical: Arc<dyn PhysicalClock>,
    last: Arc<Mutex<Timestamp>>,
    max_offset: Duration,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clock")
            .field("last", &*self.last.lock())
            .field("max_offset", &self.max_offset)
            .finish()
    }
}

impl Clock {
    pub fn new(physical: Arc<dyn PhysicalClock>, max_offset: Duration) -> Self {
        Clock {
            physical,
            last: Arc::new(Mutex::new(Timestamp::ZERO)),
            max_offset,
        }
    }

    /// A clock over the system wall clock.
    pub fn system(max_offset: Duration) -> Self {
        Clock::new(Arc::new(SystemClock), max_offset)
    }

    pub fn max_offset(&self) -> Duration {
        self.max_offset
    }

    /// Physical time in milliseconds, without advancing the clock.
    pub fn physical_now(&self) -> u64 {
        self.physical.now_millis()
    }

    /// A timestamp greater than every timestamp this clock issued or saw.
    pub fn now(&self) -> Timestamp {
        let physical = self.physical.now_millis();
        let mut last = self.last.lock();
        *last = if physical > last.wall {
            Timestamp::new(physical, 0)
        } else {
            last.next()
        };
        *last
    }

    /// The latest timestamp issued or seen, without advancing the clock.
    pub fn peek(&self) -> Timestamp {
        *self.last.lock()
    }

    /// Folds a timestamp received from another node into this clock, so that
    /// later `now()` calls return something larger. Refuses a remote clock
    /// further ahead than `max_offset` (the clock is left untouched).
    pub fn update(&self, remote: Timestamp) -> Result<(), ClockOffsetError> {
        let physical = self.physical.now_millis();
        let max_offset_ms = self.max_offset.as_millis() as u64;
        if max_offset_ms > 0 && remote.wall > physical.saturating_add(max_offset_ms) {
            return Err(ClockOffsetError {
                remote,
                local_ms: physical,
                ahead_ms: remote.wall - physical,
                max_offset_ms,
            });
        }
        let mut last = self.last.lock();
        if remote > *last {
            *last = remote;
        }
        Ok(())
    }

    /// Like [`Clock::update`] but without the offset check: for timestamps
    /// that are already part of replicated state (applied raft commands).
    pub fn forward_to(&self, ts: Timestamp) {
        let mut last = self.last.lock();
        if ts > *last {
            *last = ts;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct ManualClock(AtomicU64);
    impl PhysicalClock for ManualClock {
        fn now_millis(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn manual(ms: u64) -> (Arc<ManualClock>, Clock) {
        let p = Arc::new(ManualClock(AtomicU64::new(ms)));
        (p.clone(), Clock::new(p, Duration::from_millis(250)))
    }

    #[test]
    fn now_is_strictly_increasing_when_physical_time_stalls() {
        let (_, clock) = manual(1000);
        let a = clock.now();
        let b = clock.now();
        assert!(b > a);
        assert_eq!(b, Timestamp::new(1000, 1));
    }

    #[test]
    fn now_follows_physical_time_when_it_moves_ahead() {
        let (p, clock) = manual(1000);
        clock.now();
        clock.now();
        p.0.store(2000, Ordering::SeqCst);
        assert_eq!(clock.now(), Timestamp::new(2000, 0));
    }

    #[test]
    fn update_pushes_later_timestamps_above_the_remote_one() {
        let (_, clock) = manual(1000);
        clock.update(Timestamp::new(1200, 7)).unwrap();
        assert!(clock.now() > Timestamp::new(1200, 7));
    }

    #[test]
    fn update_refuses_a_clock_beyond_max_offset() {
        let (_, clock) = manual(1000);
        let err = clock.update(Timestamp::new(1251, 0)).unwrap_err();
        assert_eq!(err.ahead_ms, 251);
        assert!(clock.now() < Timestamp::new(1251, 0));
    }

    proptest::proptest! {
        #[test]
        fn clock_is_monotonic_under_any_mix_of_events(
            events in proptest::collection::vec((0u8..3, 0u64..500, 0u32..5), 1..200)
        ) {
            let (p, clock) = manual(10_000);
            let mut prev = Timestamp::ZERO;
            for (kind, ms, logical) in events {
                match kind {
                    0 => p.0.store(10_000 + ms, Ordering::SeqCst),
                    1 => { let _ = clock.update(Timestamp::new(10_000 + ms, logical)); }
                    _ => {}
                }
                let now = clock.now();
                proptest::prop_assert!(now > prev);
                prev = now;
            }
        }
    }
}
