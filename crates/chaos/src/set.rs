//! The set checker: clients insert unique elements; after the faults heal,
//! one read of the whole set. Every acknowledged insert must be in it
//! (`lost` otherwise), every element in it must have been inserted by
//! someone (`phantom`), an insert that definitely failed must not be in it
//! (`failed-insert-present`), and no element appears twice (`duplicate`).
//! Inserts with an unknown outcome may be present or not.

use std::collections::{BTreeMap, BTreeSet};

use crate::history::Outcome;
use crate::txn::{Anomaly, Mop, Txn};

/// The result of a check.
#[derive(Debug, Default)]
pub struct Report {
    /// What is wrong.
    pub anomalies: Vec<Anomaly>,
    /// Acknowledged inserts.
    pub acked: usize,
    /// Inserts with an unknown outcome found in the final read.
    pub recovered: usize,
    /// Elements in the final read.
    pub final_size: usize,
}

/// Checks a set history; the final read is the last `ok` read of the set.
pub fn check(txns: &[Txn]) -> Report {
    let mut r = Report::default();
    let mut inserts: BTreeMap<u64, (Outcome, usize)> = BTreeMap::new();
    let mut last_read: Option<&Vec<u64>> = None;
    for t in txns {
        for m in &t.mops {
            match m {
                Mop::Insert { v } => {
                    inserts.insert(*v, (t.outcome, t.index));
                }
                Mop::ReadSet { set: Some(s) } if t.outcome == Outcome::Ok => last_read = Some(s),
                _ => {}
            }
        }
    }
    r.acked = inserts.values().filter(|(o, _)| *o == Outcome::Ok).count();
    let Some(read) = last_read else {
        r.anomalies.push(Anomaly::new(
            "no-final-read",
            "the set was never read".into(),
        ));
        return r;
    };
    r.final_size = read.len();
    let mut present = BTreeSet::new();
    for v in read {
        if !present.insert(*v) {
            r.anomalies
                .push(Anomaly::new("duplicate", format!("{v} read twice")));
        }
        match inserts.get(v) {
            None => r.anomalies.push(Anomaly::new(
                "phantom",
                format!("{v} is in the set but nobody inserted it"),
            )),
            Some((Outcome::Fail, i)) => r.anomalies.push(Anomaly::new(
                "failed-insert-present",
                format!("{v} is in the set, but its insert T{i} failed"),
            )),
            Some((Outcome::Info, _)) => r.recovered += 1,
            Some((Outcome::Ok, _)) => {}
        }
    }
    for (v, (o, i)) in &inserts {
        if *o == Outcome::Ok && !present.contains(v) {
            r.anomalies.push(Anomaly::new(
                "lost",
                format!("{v} was acknowledged (T{i}) but is not in the set"),
            ));
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ins(i: usize, o: Outcome, v: u64) -> Txn {
        Txn::new(i, o, vec![Mop::Insert { v }])
    }
    fn read(i: usize, s: &[u64]) -> Txn {
        Txn::new(
            i,
            Outcome::Ok,
            vec![Mop::ReadSet {
                set: Some(s.to_vec()),
            }],
        )
    }
    fn names(r: &Report) -> Vec<String> {
        r.anomalies.iter().map(|a| a.name.clone()).collect()
    }

    #[test]
    fn acknowledged_and_unknown_inserts_pass() {
        let h = vec![
            ins(0, Outcome::Ok, 1),
            ins(1, Outcome::Info, 2),
            ins(2, Outcome::Info, 3),
            ins(3, Outcome::Fail, 4),
            read(4, &[1, 2]),
        ];
        let r = check(&h);
        assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
        assert_eq!((r.acked, r.recovered, r.final_size), (1, 1, 2));
    }

    #[test]
    fn lost_phantom_duplicate_and_failed_inserts_are_caught() {
        let h = vec![
            ins(0, Outcome::Ok, 1),
            ins(1, Outcome::Fail, 2),
            read(2, &[2, 3, 3]),
        ];
        let mut n = names(&check(&h));
        n.sort();
        assert_eq!(
            n,
            [
                "duplicate",
                "failed-insert-present",
                "lost",
                "phantom",
                "phantom"
            ]
        );
        assert_eq!(names(&check(&[ins(0, Outcome::Ok, 1)])), ["no-final-read"]);
    }
}
