//! Linearizability checker for a read / write / compare-and-set register:
//! Wing & Gong's search with Lowe's just-in-time linearization and
//! memoization (the algorithm of Knossos and Porcupine), per key.
//!
//! A history is linearizable if every operation can be given one instant
//! between its invocation and its completion such that, replayed in that
//! order, a sequential register returns what the clients saw. The search
//! walks configurations `(linearized set, register value)`: from one, any
//! pending operation invoked before the earliest completion among the
//! unlinearized operations may come next (just in time: the one that
//! completes first must be linearized before anything invoked after it).
//! A configuration seen before is not explored again.
//!
//! Outcomes: `fail` operations never happened and are dropped; `info`
//! operations may have happened at any instant after their invocation, or
//! never (their completion is +infinity). An `info` read says nothing and is
//! dropped; an `info` write or cas may be linearized or left out. Leaving
//! one out is never worse than applying it, so a configuration whose
//! applied `info` set contains that of an explored configuration with the
//! same completed set and value is dominated and pruned; this keeps
//! histories with many timeouts tractable. A failed (`fail`) cas is not used
//! as evidence (Knossos does the same).
//!
//! The search is exponential in the worst case; it gives up (verdict
//! `Unknown`) after `limit` configurations.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::history::{secs, show, Call, Op, Outcome, Value};

/// The verdict on one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A valid order exists.
    Linearizable,
    /// No valid order exists; the explanation shows the longest linearizable
    /// prefix and why nothing can come next.
    Violation(String),
    /// The search hit its limit.
    Unknown(String),
}

impl Verdict {
    /// True for [`Verdict::Linearizable`].
    pub fn is_ok(&self) -> bool {
        matches!(self, Verdict::Linearizable)
    }
}

/// The verdict on one key, with the size of the work.
#[derive(Clone, Debug)]
pub struct KeyReport {
    /// The key.
    pub key: String,
    /// Operations of this key in the history (all outcomes).
    pub ops: usize,
    /// Configurations explored.
    pub explored: usize,
    /// The verdict.
    pub verdict: Verdict,
}

/// Default bound on explored configurations per key.
pub const DEFAULT_LIMIT: usize = 5_000_000;

/// Checks every key of `ops` separately (linearizability is compositional).
pub fn check(ops: &[Op], limit: usize) -> Vec<KeyReport> {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    by_key
        .into_iter()
        .map(|(key, ops)| {
            let (verdict, explored) = check_key(&ops, limit);
            KeyReport {
                key: key.to_string(),
                ops: ops.len(),
                explored,
                verdict,
            }
        })
        .collect()
}

/// One operation that takes part in the search.
struct Entry<'a> {
    op: &'a Op,
    inv: u64,
    /// `u64::MAX` for `info`.
    ret: u64,
    info: bool,
    /// Rank by completion among the completed (`ok`) entries.
    rank: u32,
}

/// What a sequential register does with `e` in state `s`: the new state, or
/// `None` if `e` cannot happen now. An `info` cas that would fail is treated
/// as not happening (leaving it out is equivalent and dominates).
fn step(s: Value, op: &Op) -> Option<Value> {
    match op.call {
        Call::Read => match op.read {
            Some(v) if v == s => Some(s),
            _ => None,
        },
        Call::Write { value } => Some(Some(value)),
        Call::Cas { expected, new } => (s == expected).then_some(Some(new)),
    }
}

/// Why `op` cannot happen in state `s` (for explanations).
fn why_not(s: Value, op: &Op) -> String {
    match op.call {
        Call::Read => format!(
            "it read {} but the register holds {}",
            op.read.map(show).unwrap_or_else(|| "?".into()),
            show(s)
        ),
        Call::Cas { expected, .. } => format!(
            "it expects {} but the register holds {}",
            show(expected),
            show(s)
        ),
        Call::Write { .. } => "every continuation after it fails".into(),
    }
}

/// The memo key: completed ops are `(first unlinearized rank, linearized
/// ranks above it)`, plus the register value.
type MemoKey = (u32, Vec<u32>, Value);

struct Search<'a> {
    entries: Vec<Entry<'a>>,
    /// Entry index of each completed rank.
    by_rank: Vec<u32>,
    /// Unlinearized entries, in invocation order (entries are sorted so).
    unlin: BTreeSet<u32>,
    /// Unlinearized completed ranks.
    unlin_ranks: BTreeSet<u32>,
    /// Linearized completed ranks.
    lin_ranks: BTreeSet<u32>,
    /// Linearized `info` entries.
    lin_info: BTreeSet<u32>,
    memo: HashMap<MemoKey, Vec<Vec<u32>>>,
    explored: usize,
}

struct Frame {
    cands: Vec<u32>,
    next: usize,
    state: Value,
    applied: Option<u32>,
}

impl<'a> Search<'a> {
    fn new(ops: &[&'a Op]) -> Search<'a> {
        let mut entries: Vec<Entry<'a>> = ops
            .iter()
            .filter(|op| match op.outcome {
                Outcome::Fail => false,
                Outcome::Info => op.call != Call::Read,
                Outcome::Ok => op.call != Call::Read || op.read.is_some(),
            })
            .map(|op| {
                let info = op.outcome == Outcome::Info;
                Entry {
                    op,
                    inv: op.invoke_ns,
                    ret: if info { u64::MAX } else { op.complete_ns },
                    info,
                    rank: u32::MAX,
                }
            })
            .collect();
        entries.sort_by_key(|e| (e.inv, e.op.index));
        let mut done: Vec<u32> = (0..entries.len() as u32)
            .filter(|i| !entries[*i as usize].info)
            .collect();
        done.sort_by_key(|i| (entries[*i as usize].ret, entries[*i as usize].op.index));
        for (rank, i) in done.iter().enumerate() {
            entries[*i as usize].rank = rank as u32;
        }
        Search {
            unlin: (0..entries.len() as u32).collect(),
            unlin_ranks: (0..done.len() as u32).collect(),
            lin_ranks: BTreeSet::new(),
            lin_info: BTreeSet::new(),
            by_rank: done,
            entries,
            memo: HashMap::new(),
            explored: 0,
        }
    }

    /// The entries that may come next, completed ones by completion time
    /// first, then `info` ones.
    fn candidates(&self) -> Vec<u32> {
        let Some(first) = self.unlin_ranks.first() else {
            return Vec::new();
        };
        let deadline = self.entries[self.by_rank[*first as usize] as usize].ret;
        let mut done = Vec::new();
        let mut info = Vec::new();
        for &i in &self.unlin {
            let e = &self.entries[i as usize];
            if e.inv > deadline {
                break;
            }
            if e.info {
                info.push(i);
            } else {
                done.push(i);
            }
        }
        done.sort_by_key(|i| self.entries[*i as usize].rank);
        done.extend(info);
        done
    }

    fn apply(&mut self, i: u32) {
        self.unlin.remove(&i);
        let e = &self.entries[i as usize];
        if e.info {
            self.lin_info.insert(i);
        } else {
            self.unlin_ranks.remove(&e.rank);
            self.lin_ranks.insert(e.rank);
        }
    }

    fn undo(&mut self, i: u32) {
        self.unlin.insert(i);
        let e = &self.entries[i as usize];
        if e.info {
            self.lin_info.remove(&i);
        } else {
            self.unlin_ranks.insert(e.rank);
            self.lin_ranks.remove(&e.rank);
        }
    }

    /// Records the configuration; false if it (or one that dominates it)
    /// was explored already.
    fn remember(&mut self, state: Value) -> bool {
        let first = self
            .unlin_ranks
            .first()
            .copied()
            .unwrap_or(self.by_rank.len() as u32);
        let above: Vec<u32> = self.lin_ranks.range(first..).copied().collect();
        let info: Vec<u32> = self.lin_info.iter().copied().collect();
        let seen = self.memo.entry((first, above, state)).or_default();
        if seen.iter().any(|s| is_subset(s, &info)) {
            return false;
        }
        seen.push(info);
        self.explored += 1;
        true
    }
}

/// `a ⊆ b` for sorted slices.
fn is_subset(a: &[u32], b: &[u32]) -> bool {
    let mut j = 0;
    for x in a {
        while j < b.len() && b[j] < *x {
            j += 1;
        }
        if j == b.len() || b[j] != *x {
            return false;
        }
        j += 1;
    }
    true
}

/// Checks the operations of one key; returns the verdict and the number of
/// configurations explored.
pub fn check_key(ops: &[&Op], limit: usize) -> (Verdict, usize) {
    let mut s = Search::new(ops);
    if s.unlin_ranks.is_empty() {
        return (Verdict::Linearizable, 0);
    }
    s.remember(None);
    let mut stack = vec![Frame {
        cands: s.candidates(),
        next: 0,
        state: None,
        applied: None,
    }];
    // The deepest configuration: (completed ops linearized, path).
    let mut best: (usize, Vec<u32>) = (0, Vec::new());
    loop {
        let Some(top) = stack.last_mut() else {
            return (Verdict::Violation(explain(&s, &best.1)), s.explored);
        };
        if top.next >= top.cands.len() {
            if let Some(i) = top.applied {
                s.undo(i);
            }
            stack.pop();
            continue;
        }
        let i = top.cands[top.next];
        top.next += 1;
        let state = top.state;
        let Some(next) = step(state, s.entries[i as usize].op) else {
            continue;
        };
        s.apply(i);
        if s.unlin_ranks.is_empty() {
            return (Verdict::Linearizable, s.explored);
        }
        if !s.remember(next) {
            s.undo(i);
            continue;
        }
        if s.explored > limit {
            return (
                Verdict::Unknown(format!(
                    "gave up after {} configurations ({} of {} completed operations linearized at best)",
                    s.explored,
                    best.0,
                    s.by_rank.len()
                )),
                s.explored,
            );
        }
        let done = s.lin_ranks.len();
        if done > best.0 {
            let mut path: Vec<u32> = stack.iter().filter_map(|f| f.applied).collect();
            path.push(i);
            best = (done, path);
        }
        stack.push(Frame {
            cands: s.candidates(),
            next: 0,
            state: next,
            applied: Some(i),
        });
    }
}

/// Describes the deepest configuration reached: the order that worked so
/// far and why no pending operation can come next.
fn explain(s: &Search, path: &[u32]) -> String {
    let linearized: HashSet<u32> = path.iter().copied().collect();
    let entry = |i: u32| &s.entries[i as usize];
    let mut state: Value = None;
    for &i in path {
        state = step(state, entry(i).op).unwrap_or(state);
    }
    let done = path.iter().filter(|i| !entry(**i).info).count();
    let mut out = format!(
        "not linearizable: at best {done} of {} completed operations can be ordered.\n",
        s.by_rank.len()
    );
    let shown = path.len().saturating_sub(8);
    if path.is_empty() {
        out.push_str("  No operation can be linearized first; the register starts as nil.\n");
    } else {
        out.push_str(&format!(
            "  A valid order ends with (last {} of {}):\n",
            path.len() - shown,
            path.len()
        ));
        for &i in &path[shown..] {
            out.push_str(&format!("    {}\n", entry(i).op.describe()));
        }
        out.push_str(&format!(
            "  after which the register holds {}.\n",
            show(state)
        ));
    }
    let Some(&first) = s.by_rank.iter().find(|i| !linearized.contains(i)) else {
        return out;
    };
    let blocker = entry(first);
    out.push_str(&format!(
        "  Before {} (completion of {}), one of these must take effect, and none can:\n",
        secs(blocker.ret),
        blocker.op.describe()
    ));
    for i in 0..s.entries.len() as u32 {
        let e = entry(i);
        if e.inv > blocker.ret {
            break;
        }
        if linearized.contains(&i) {
            continue;
        }
        let why = if step(state, e.op).is_some() {
            "every continuation after it fails".to_string()
        } else {
            why_not(state, e.op)
        };
        out.push_str(&format!("    {}: {why}\n", e.op.describe()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds histories by hand: times in ms, `None` completion = info.
    struct H {
        ops: Vec<Op>,
    }

    impl H {
        fn new() -> H {
            H { ops: Vec::new() }
        }
        fn push(&mut self, call: Call, read: Option<Value>, outcome: Outcome, t: (u64, u64)) {
            let index = self.ops.len();
            self.ops.push(Op {
                index,
                process: index as u64,
                key: "k".into(),
                call,
                outcome,
                read,
                invoke_ns: t.0 * 1_000_000,
                complete_ns: t.1 * 1_000_000,
                node: 1,
                error: None,
            });
        }
        fn w(mut self, v: u64, a: u64, b: u64) -> H {
            self.push(Call::Write { value: v }, None, Outcome::Ok, (a, b));
            self
        }
        fn w_info(mut self, v: u64, a: u64, b: u64) -> H {
            self.push(Call::Write { value: v }, None, Outcome::Info, (a, b));
            self
        }
        fn r(mut self, v: Value, a: u64, b: u64) -> H {
            self.push(Call::Read, Some(v), Outcome::Ok, (a, b));
            self
        }
        fn cas(mut self, e: Value, n: u64, outcome: Outcome, a: u64, b: u64) -> H {
            self.push(
                Call::Cas {
                    expected: e,
                    new: n,
                },
                None,
                outcome,
                (a, b),
            );
            self
        }
        fn verdict(&self) -> Verdict {
            let ops: Vec<&Op> = self.ops.iter().collect();
            check_key(&ops, 1_000_000).0
        }
    }

    fn assert_ok(h: H) {
        let v = h.verdict();
        assert_eq!(v, Verdict::Linearizable, "{v:?}");
    }

    fn assert_bad(h: H) -> String {
        match h.verdict() {
            Verdict::Violation(e) => e,
            v => panic!("expected a violation, got {v:?}"),
        }
    }

    #[test]
    fn empty_and_sequential_histories_are_linearizable() {
        assert_ok(H::new());
        assert_ok(H::new().r(None, 0, 1));
        assert_ok(
            H::new()
                .w(1, 0, 1)
                .r(Some(1), 2, 3)
                .cas(Some(1), 2, Outcome::Ok, 4, 5)
                .r(Some(2), 6, 7)
                .cas(Some(1), 3, Outcome::Fail, 8, 9)
                .r(Some(2), 10, 11),
        );
    }

    #[test]
    fn concurrent_reads_may_see_either_side_of_a_write() {
        // Write 2 over [10, 50]; reads inside may see 1 or 2, but once one
        // has seen 2, a later one cannot see 1.
        assert_ok(
            H::new()
                .w(1, 0, 1)
                .w(2, 10, 50)
                .r(Some(1), 11, 12)
                .r(Some(2), 13, 14)
                .r(Some(2), 20, 60),
        );
        assert_ok(H::new().w(1, 0, 1).w(2, 10, 50).r(Some(1), 20, 60));
    }

    #[test]
    fn overlapping_writes_may_take_effect_in_either_order() {
        assert_ok(H::new().w(1, 0, 10).w(2, 1, 9).r(Some(1), 11, 12));
        assert_ok(H::new().w(1, 0, 10).w(2, 1, 9).r(Some(2), 11, 12));
    }

    #[test]
    fn an_unknown_write_may_take_effect_late_or_never() {
        // Timed out at 5, seen at 100: fine (completion is +infinity).
        assert_ok(
            H::new()
                .w(1, 0, 1)
                .w_info(7, 2, 5)
                .r(Some(1), 6, 7)
                .r(Some(7), 100, 101),
        );
        // Never seen: fine too.
        assert_ok(H::new().w(1, 0, 1).w_info(7, 2, 5).r(Some(1), 100, 101));
        // An unknown cas that took effect.
        assert_ok(
            H::new()
                .w(1, 0, 1)
                .cas(Some(1), 4, Outcome::Info, 2, 3)
                .r(Some(4), 10, 11),
        );
        // But not before it was invoked.
        let e = assert_bad(H::new().w(1, 0, 1).r(Some(7), 2, 3).w_info(7, 4, 5));
        assert!(e.contains("read -> 7"), "{e}");
    }

    #[test]
    fn a_failed_operation_never_takes_effect() {
        let e = assert_bad(H::new().w(1, 0, 1).cas(Some(1), 5, Outcome::Fail, 2, 3).r(
            Some(5),
            4,
            5,
        ));
        assert!(e.contains("read -> 5"), "{e}");
    }

    #[test]
    fn many_unknown_writes_stay_tractable() {
        let mut h = H::new().w(0, 0, 1);
        for i in 0..40 {
            h = h.w_info(100 + i, 2 + i, 3 + i);
        }
        for i in 0..200 {
            h = h.r(Some(0), 100 + 2 * i, 101 + 2 * i);
        }
        h = h.r(Some(139), 1000, 1001).r(Some(139), 1002, 1003);
        let ops: Vec<&Op> = h.ops.iter().collect();
        let (v, explored) = check_key(&ops, 1_000_000);
        assert_eq!(v, Verdict::Linearizable);
        assert!(explored < 50_000, "{explored}");
    }

    #[test]
    fn rejects_a_stale_read_after_a_completed_write() {
        let e = assert_bad(H::new().w(1, 0, 1).w(2, 2, 3).r(Some(1), 4, 5));
        assert!(e.contains("read -> 1"), "{e}");
        assert!(e.contains("register holds 2"), "{e}");
    }

    #[test]
    fn rejects_a_lost_write() {
        // An acknowledged write that a later read does not see.
        let e = assert_bad(H::new().w(3, 0, 1).r(None, 2, 3));
        assert!(e.contains("read -> nil"), "{e}");
        // And one overwritten by nothing: the final read sees the old value.
        assert_bad(
            H::new()
                .w(1, 0, 1)
                .w(2, 2, 3)
                .cas(Some(2), 4, Outcome::Ok, 4, 5)
                .r(Some(2), 6, 7),
        );
    }

    #[test]
    fn rejects_a_cas_that_succeeds_on_a_wrong_value() {
        let e = assert_bad(H::new().w(1, 0, 1).cas(Some(2), 3, Outcome::Ok, 2, 3));
        assert!(e.contains("expects 2 but the register holds 1"), "{e}");
        // A cas from nil after the key exists.
        assert_bad(H::new().w(1, 0, 1).cas(None, 3, Outcome::Ok, 2, 3));
    }

    #[test]
    fn rejects_reads_going_backwards() {
        // Both reads overlap the write, but the second saw the older value
        // after the first had seen the newer one.
        let e = assert_bad(
            H::new()
                .w(1, 0, 1)
                .w(2, 10, 100)
                .r(Some(2), 20, 30)
                .r(Some(1), 40, 50),
        );
        assert!(e.contains("read -> 1"), "{e}");
    }

    #[test]
    fn check_splits_by_key() {
        let mut h = H::new().w(1, 0, 1).r(Some(1), 2, 3);
        let mut other = H::new().w(5, 0, 1).r(Some(4), 2, 3).ops;
        for op in &mut other {
            op.key = "other".into();
            op.index += 10;
        }
        h.ops.extend(other);
        let reports = check(&h.ops, 1000);
        assert_eq!(reports.len(), 2);
        assert!(reports[0].verdict.is_ok());
        assert_eq!(reports[1].key, "other");
        assert!(matches!(reports[1].verdict, Verdict::Violation(_)));
    }

    #[test]
    fn gives_up_at_the_limit() {
        let mut h = H::new();
        for i in 0..12 {
            h = h.w(i, 0, 100);
        }
        h = h.r(Some(99), 101, 102);
        let ops: Vec<&Op> = h.ops.iter().collect();
        assert!(matches!(check_key(&ops, 100).0, Verdict::Unknown(_)));
    }
}

/// Cross-check against brute force on small random histories.
#[cfg(test)]
mod brute {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Every subset of the `info` ops, every order respecting real time.
    fn brute(ops: &[&Op]) -> bool {
        let ops: Vec<&Op> = ops
            .iter()
            .copied()
            .filter(|o| match o.outcome {
                Outcome::Fail => false,
                Outcome::Info => o.call != Call::Read,
                Outcome::Ok => true,
            })
            .collect();
        let ret = |o: &Op| {
            if o.outcome == Outcome::Info {
                u64::MAX
            } else {
                o.complete_ns
            }
        };
        let n = ops.len();
        // DFS over orders: `used` bitmask.
        fn go(ops: &[&Op], ret: &dyn Fn(&Op) -> u64, used: u32, state: Value) -> bool {
            let n = ops.len();
            let all_done = (0..n).all(|i| used & (1 << i) != 0 || ops[i].outcome == Outcome::Info);
            if all_done {
                return true;
            }
            for i in 0..n {
                if used & (1 << i) != 0 {
                    continue;
                }
                // Every unused op that must precede i (returned before i
                // was invoked) blocks it.
                let blocked = (0..n)
                    .any(|j| j != i && used & (1 << j) == 0 && ret(ops[j]) < ops[i].invoke_ns);
                if blocked {
                    continue;
                }
                let next = match (ops[i].call, ops[i].outcome) {
                    (Call::Read, _) => (ops[i].read == Some(state)).then_some(state),
                    (Call::Write { value }, _) => Some(Some(value)),
                    (Call::Cas { expected, new }, Outcome::Ok) => {
                        (state == expected).then_some(Some(new))
                    }
                    (Call::Cas { expected, new }, _) => {
                        Some(if state == expected { Some(new) } else { state })
                    }
                };
                if let Some(s) = next {
                    if go(ops, ret, used | (1 << i), s) {
                        return true;
                    }
                }
            }
            false
        }
        let _ = n;
        go(&ops, &ret, 0, None)
    }

    fn random_history(rng: &mut StdRng) -> Vec<Op> {
        let n = rng.random_range(1..=7);
        (0..n)
            .map(|index| {
                let inv = rng.random_range(0..20u64);
                let len = rng.random_range(1..8u64);
                let call = match rng.random_range(0..3) {
                    0 => Call::Read,
                    1 => Call::Write {
                        value: rng.random_range(0..3),
                    },
                    _ => Call::Cas {
                        expected: if rng.random_range(0..4) == 0 {
                            None
                        } else {
                            Some(rng.random_range(0..3))
                        },
                        new: rng.random_range(0..3),
                    },
                };
                let outcome = match rng.random_range(0..10) {
                    0 => Outcome::Fail,
                    1 | 2 => Outcome::Info,
                    _ => Outcome::Ok,
                };
                let read = (call == Call::Read && outcome == Outcome::Ok).then(|| {
                    if rng.random_range(0..4) == 0 {
                        None
                    } else {
                        Some(rng.random_range(0..3))
                    }
                });
                Op {
                    index,
                    process: index as u64,
                    key: "k".into(),
                    call,
                    outcome,
                    read,
                    invoke_ns: inv,
                    complete_ns: inv + len,
                    node: 1,
                    error: None,
                }
            })
            .collect()
    }

    #[test]
    fn agrees_with_brute_force_on_random_small_histories() {
        let mut rng = StdRng::seed_from_u64(7);
        let (mut good, mut bad) = (0, 0);
        for case in 0..20_000 {
            let h = random_history(&mut rng);
            let ops: Vec<&Op> = h.iter().collect();
            let expect = brute(&ops);
            let (got, _) = check_key(&ops, 1_000_000);
            assert_eq!(got.is_ok(), expect, "case {case}: {h:#?}\n{got:?}");
            if expect {
                good += 1;
            } else {
                bad += 1;
            }
        }
        assert!(good > 1000 && bad > 1000, "{good} good, {bad} bad");
    }

    #[test]
    fn explanation_of_a_stale_read_reads_well() {
        let mk = |index, call, read, a: u64, b: u64| Op {
            index,
            process: index as u64,
            key: "k".into(),
            call,
            outcome: Outcome::Ok,
            read,
            invoke_ns: a * 1_000_000,
            complete_ns: b * 1_000_000,
            node: 1,
            error: None,
        };
        let h = [
            mk(0, Call::Write { value: 1 }, None, 0, 10),
            mk(1, Call::Write { value: 2 }, None, 20, 30),
            mk(2, Call::Read, Some(Some(1)), 40, 50),
        ];
        let ops: Vec<&Op> = h.iter().collect();
        let Verdict::Violation(e) = check_key(&ops, 1000).0 else {
            panic!("accepted a stale read");
        };
        println!("{e}");
        assert!(e.contains("at best 2 of 3"), "{e}");
        assert!(e.contains("#2 p2 k read -> 1 ok"), "{e}");
    }
}
