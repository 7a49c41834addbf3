//! The list-append checker, after Elle (Kingsbury & Alvaro, VLDB 2020).
//!
//! Transactions append unique values to lists and read whole lists. Because
//! every value is unique and a list only grows, a read reveals the order of
//! every append before it: the version order of a key is its longest read,
//! and every other read of the key must be a prefix of it. From that order:
//!
//! - `ww(k)`: the appender of element i precedes the appender of i+1;
//! - `wr(k)`: the appender of the last element a read saw precedes the
//!   reader;
//! - `rw(k)`: a reader that saw i elements precedes the appender of
//!   element i+1.
//!
//! Cycles in that graph are G0, G1c, G-single or G2 ([`crate::graph`]).
//! Found directly: G1a (a committed read saw an element whose append
//! failed), G1b (a read saw an element that its transaction later
//! followed with another append to the same key: an intermediate state),
//! `incompatible-order` (two reads of a key that are not prefixes of one
//! another), `duplicate-elements`, `phantom` (an element nobody appended)
//! and `internal` (a transaction's read does not end with its own earlier
//! appends).
//!
//! Committed transactions are the `ok` ones, and the `info` ones whose
//! appends someone read. Only reads of `ok` transactions are evidence.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::graph::{Graph, Kind};
use crate::history::Outcome;
use crate::txn::{show_list, Anomaly, Mop, Txn};

/// Most cycles explained per run.
const MAX_CYCLES: usize = 20;

/// The result of a check.
#[derive(Debug, Default)]
pub struct Report {
    /// What is wrong (empty: nothing found).
    pub anomalies: Vec<Anomaly>,
    /// Keys with at least one read.
    pub keys: usize,
    /// Edges in the dependency graph.
    pub edges: usize,
}

/// Checks a list-append history.
pub fn check(txns: &[Txn]) -> Report {
    let mut r = Report::default();
    let by_index: HashMap<usize, &Txn> = txns.iter().map(|t| (t.index, t)).collect();
    // (k, v) -> appending transaction.
    let mut writer: HashMap<(u64, u64), usize> = HashMap::new();
    // transaction -> key -> its appends in order.
    let mut appends: HashMap<usize, BTreeMap<u64, Vec<u64>>> = HashMap::new();
    for t in txns {
        for m in &t.mops {
            if let Mop::Append { k, v } = m {
                if let Some(other) = writer.insert((*k, *v), t.index) {
                    r.anomalies.push(Anomaly::new(
                        "duplicate-append",
                        format!("T{other} and T{} both append {v} to {k}", t.index),
                    ));
                }
                appends
                    .entry(t.index)
                    .or_default()
                    .entry(*k)
                    .or_default()
                    .push(*v);
            }
        }
    }
    // Reads of committed (ok) transactions: (reader, key, list).
    let mut reads: Vec<(usize, u64, &[u64])> = Vec::new();
    for t in txns.iter().filter(|t| t.outcome == Outcome::Ok) {
        let mut own: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for m in &t.mops {
            match m {
                Mop::Append { k, v } => own.entry(*k).or_default().push(*v),
                Mop::Read { k, list: Some(l) } => {
                    reads.push((t.index, *k, l));
                    if let Some(mine) = own.get(k) {
                        if !l.ends_with(mine) {
                            r.anomalies.push(Anomaly::new(
                                "internal",
                                format!(
                                    "T{} read {k} = {} after appending {} to it",
                                    t.index,
                                    show_list(Some(l)),
                                    show_list(Some(mine))
                                ),
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    // Committed: ok, or info with an append someone read.
    let mut committed: HashSet<usize> = txns
        .iter()
        .filter(|t| t.outcome == Outcome::Ok)
        .map(|t| t.index)
        .collect();
    for (reader, k, l) in &reads {
        let mut seen = HashSet::new();
        for v in l.iter() {
            if !seen.insert(*v) {
                r.anomalies.push(Anomaly::new(
                    "duplicate-elements",
                    format!("T{reader} read {k} = {} ({v} twice)", show_list(Some(l))),
                ));
            }
            match writer.get(&(*k, *v)).and_then(|w| by_index.get(w)) {
                None => r.anomalies.push(Anomaly::new(
                    "phantom",
                    format!("T{reader} read {v} in {k}, which nobody appended"),
                )),
                Some(w) if w.outcome == Outcome::Fail => r.anomalies.push(Anomaly::new(
                    "G1a",
                    format!(
                        "T{reader} read {k} = {}, containing {v} from aborted {}",
                        show_list(Some(l)),
                        w.describe()
                    ),
                )),
                Some(w) => {
                    committed.insert(w.index);
                }
            }
        }
        // G1b: the last element is not its writer's last append to k.
        if let Some(last) = l.last() {
            if let Some(&w) = writer.get(&(*k, *last)) {
                let theirs = &appends[&w][k];
                if w != *reader && theirs.last() != Some(last) {
                    r.anomalies.push(Anomaly::new(
                        "G1b",
                        format!(
                            "T{reader} read {k} = {}, an intermediate state of T{w}, which appended {} to it",
                            show_list(Some(l)),
                            show_list(Some(theirs))
                        ),
                    ));
                }
            }
        }
    }
    // Version order: the longest read of each key; all others prefixes.
    let mut order: BTreeMap<u64, &[u64]> = BTreeMap::new();
    for (_, k, l) in &reads {
        let e = order.entry(*k).or_insert(l);
        if l.len() > e.len() {
            *e = l;
        }
    }
    for (reader, k, l) in &reads {
        let longest = order[k];
        if !longest.starts_with(l) {
            r.anomalies.push(Anomaly::new(
                "incompatible-order",
                format!(
                    "T{reader} read {k} = {}, not a prefix of {} read by another transaction",
                    show_list(Some(l)),
                    show_list(Some(longest))
                ),
            ));
        }
    }
    r.keys = order.len();
    // The graph, over committed transactions.
    let mut g = Graph::default();
    let w_of = |k: u64, v: u64| -> Option<usize> {
        writer
            .get(&(k, v))
            .copied()
            .filter(|w| committed.contains(w))
    };
    for (k, vs) in &order {
        for pair in vs.windows(2) {
            if let (Some(a), Some(b)) = (w_of(*k, pair[0]), w_of(*k, pair[1])) {
                g.add(a, b, Kind::Ww, k.to_string());
            }
        }
    }
    for (reader, k, l) in &reads {
        // wr: from the last element written by someone else.
        if let Some(w) = l
            .iter()
            .rev()
            .filter_map(|v| w_of(*k, *v))
            .find(|w| w != reader)
        {
            g.add(w, *reader, Kind::Wr, k.to_string());
        }
        // rw: to the appender of the next element.
        let longest = order[k];
        if longest.starts_with(l) {
            if let Some(next) = longest.get(l.len()).and_then(|v| w_of(*k, *v)) {
                g.add(*reader, next, Kind::Rw, k.to_string());
            }
        }
    }
    r.edges = g.len();
    for c in g.cycles(MAX_CYCLES) {
        let mut text = c.explain();
        let mut shown = HashSet::new();
        for e in &c.edges {
            if shown.insert(e.from) {
                if let Some(t) = by_index.get(&e.from) {
                    text.push_str(&format!("\n    {}", t.describe()));
                }
            }
        }
        r.anomalies.push(Anomaly::new(c.anomaly, text));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ap(k: u64, v: u64) -> Mop {
        Mop::Append { k, v }
    }
    fn rd(k: u64, l: &[u64]) -> Mop {
        Mop::Read {
            k,
            list: Some(l.to_vec()),
        }
    }
    fn ok(i: usize, m: Vec<Mop>) -> Txn {
        Txn::new(i, Outcome::Ok, m)
    }
    fn names(r: &Report) -> Vec<String> {
        r.anomalies.iter().map(|a| a.name.clone()).collect()
    }

    #[test]
    fn a_serial_history_passes() {
        let h = vec![
            ok(0, vec![ap(1, 1), ap(2, 1)]),
            ok(1, vec![rd(1, &[1]), ap(1, 2)]),
            ok(2, vec![rd(1, &[1, 2]), rd(2, &[1])]),
            Txn::new(3, Outcome::Info, vec![ap(2, 2)]),
            Txn::new(4, Outcome::Fail, vec![ap(2, 3)]),
            ok(5, vec![rd(2, &[1, 2]), ap(1, 3), rd(1, &[1, 2, 3])]),
        ];
        let r = check(&h);
        assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
        assert!(r.edges > 0);
    }

    #[test]
    fn reading_an_aborted_append_is_g1a() {
        let h = vec![
            Txn::new(0, Outcome::Fail, vec![ap(1, 1)]),
            ok(1, vec![rd(1, &[1])]),
        ];
        assert_eq!(names(&check(&h)), ["G1a"]);
    }

    #[test]
    fn reading_an_intermediate_state_is_g1b() {
        let h = vec![
            ok(0, vec![ap(1, 1), ap(1, 2)]),
            ok(1, vec![rd(1, &[1])]),
            ok(2, vec![rd(1, &[1, 2])]),
        ];
        assert!(names(&check(&h)).contains(&"G1b".to_string()));
    }

    #[test]
    fn circular_information_flow_is_g1c() {
        // T0 appends x and reads T1's y; T1 appends y and reads T0's x.
        let h = vec![
            ok(0, vec![ap(1, 1), rd(2, &[1])]),
            ok(1, vec![ap(2, 1), rd(1, &[1])]),
        ];
        assert_eq!(names(&check(&h)), ["G1c"]);
    }

    #[test]
    fn lost_update_is_g_single() {
        // Both read the empty list and append; the later read shows both:
        // T1 read [] but its append lands after T0's.
        let h = vec![
            ok(0, vec![rd(1, &[]), ap(1, 1)]),
            ok(1, vec![rd(1, &[]), ap(1, 2)]),
            ok(2, vec![rd(1, &[1, 2])]),
        ];
        let r = check(&h);
        assert_eq!(names(&r), ["G-single"]);
        assert!(r.anomalies[0].explanation.contains("-rw(1)->"));
    }

    #[test]
    fn read_skew_is_g_single() {
        // T0 appends to 1 and 2; T1 sees the append to 1 but not to 2.
        let h = vec![
            ok(0, vec![ap(1, 1), ap(2, 1)]),
            ok(1, vec![rd(1, &[1]), rd(2, &[])]),
            ok(2, vec![rd(2, &[1])]),
        ];
        assert_eq!(names(&check(&h)), ["G-single"]);
    }

    #[test]
    fn write_skew_is_g2() {
        // Each reads the other's key empty and appends to its own.
        let h = vec![
            ok(0, vec![rd(2, &[]), ap(1, 1)]),
            ok(1, vec![rd(1, &[]), ap(2, 1)]),
            ok(2, vec![rd(1, &[1]), rd(2, &[1])]),
        ];
        assert_eq!(names(&check(&h)), ["G2"]);
    }

    #[test]
    fn dirty_writes_in_opposite_orders_are_g0() {
        let h = vec![
            ok(0, vec![ap(1, 1), ap(2, 2)]),
            ok(1, vec![ap(1, 2), ap(2, 1)]),
            ok(2, vec![rd(1, &[1, 2]), rd(2, &[1, 2])]),
        ];
        assert_eq!(names(&check(&h)), ["G0"]);
    }

    #[test]
    fn diverging_reads_duplicates_and_phantoms_are_caught() {
        let h = vec![
            ok(0, vec![ap(1, 1)]),
            ok(1, vec![ap(1, 2)]),
            ok(2, vec![rd(1, &[1, 2])]),
            ok(3, vec![rd(1, &[2, 1])]),
            ok(4, vec![rd(1, &[1, 1])]),
            ok(5, vec![rd(1, &[9])]),
        ];
        let n = names(&check(&h));
        for want in ["incompatible-order", "duplicate-elements", "phantom"] {
            assert!(n.iter().any(|x| x == want), "{want} missing from {n:?}");
        }
    }

    #[test]
    fn a_read_missing_its_own_append_is_internal() {
        let h = vec![ok(0, vec![ap(1, 1), rd(1, &[])])];
        assert!(names(&check(&h)).contains(&"internal".to_string()));
    }

    #[test]
    fn an_unknown_append_someone_read_counts_as_committed() {
        // T0's outcome is unknown, but T1 saw it: T1 read [] of key 2
        // before T0's append there, and saw T0's append to 1: G-single.
        let h = vec![
            Txn::new(0, Outcome::Info, vec![ap(1, 1), ap(2, 1)]),
            ok(1, vec![rd(1, &[1]), rd(2, &[])]),
            ok(2, vec![rd(2, &[1])]),
        ];
        assert_eq!(names(&check(&h)), ["G-single"]);
    }
}
