//! The bank checker. Accounts hold a balance and a version: the id of the
//! transaction that last wrote the row (0 initially). A transfer reads both
//! of its accounts and writes both with its own id as the new version; a
//! read-all reads every account.
//!
//! Checks:
//!
//! - every `ok` read-all sees the exact total, and no balance is negative;
//! - version order: a transfer that read version `v` of an account and
//!   wrote it installed the version right after `v` (it read what it
//!   overwrote). Two committed transfers overwriting the same version is a
//!   `lost-update`; reading a version a failed transfer wrote is `G1a`; a
//!   version nobody wrote is `phantom`; a read whose balance differs from
//!   what that version's writer wrote is `garbage`;
//! - serializability: the dependency graph (`ww` from a version to the next,
//!   `wr` from a version's writer to its readers, `rw` from a reader to the
//!   writer of the next version) must be acyclic ([`crate::graph`]).
//!
//! Committed transfers are the `ok` ones, and the `info` ones whose
//! versions someone read or overwrote (found by fixpoint).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::graph::{Graph, Kind};
use crate::history::Outcome;
use crate::txn::{Anomaly, Mop, Txn};

/// The result of a check.
#[derive(Debug, Default)]
pub struct Report {
    /// What is wrong.
    pub anomalies: Vec<Anomaly>,
    /// `ok` read-alls checked for the total.
    pub reads: usize,
    /// Edges in the dependency graph.
    pub edges: usize,
}

/// Version id of the initial balances.
pub const INITIAL: u64 = 0;

/// Checks a bank history: `accounts` accounts holding `total` in all.
pub fn check(txns: &[Txn], accounts: u64, total: i64) -> Report {
    let mut r = Report::default();
    let by_index: HashMap<usize, &Txn> = txns.iter().map(|t| (t.index, t)).collect();
    // Version (transaction id) -> transaction index. Ids are assigned by
    // the workload; `WriteBal.ver` is the writer's id.
    let mut ver_writer: HashMap<u64, usize> = HashMap::new();
    // (account, version) -> balance written.
    let mut written: HashMap<(u64, u64), i64> = HashMap::new();
    // Transfers: index -> [(account, version read, version written)].
    let mut transfers: HashMap<usize, Vec<(u64, u64, u64)>> = HashMap::new();
    for t in txns {
        let mut read_ver: HashMap<u64, u64> = HashMap::new();
        for m in &t.mops {
            match m {
                Mop::ReadBal {
                    k, ver: Some(v), ..
                } => {
                    read_ver.insert(*k, *v);
                }
                Mop::WriteBal { k, bal, ver } => {
                    ver_writer.insert(*ver, t.index);
                    written.insert((*k, *ver), *bal);
                    if let Some(prev) = read_ver.get(k) {
                        transfers
                            .entry(t.index)
                            .or_default()
                            .push((*k, *prev, *ver));
                    }
                }
                _ => {}
            }
        }
    }
    // Reads of ok transactions: (reader, account, balance, version).
    let mut reads: Vec<(usize, u64, i64, u64)> = Vec::new();
    for t in txns.iter().filter(|t| t.outcome == Outcome::Ok) {
        let mut sum = 0i64;
        let mut all = true;
        let mut seen = 0;
        for m in &t.mops {
            match m {
                Mop::ReadBal {
                    k,
                    bal: Some(b),
                    ver: Some(v),
                } => {
                    reads.push((t.index, *k, *b, *v));
                    sum += b;
                    seen += 1;
                    if *b < 0 {
                        r.anomalies.push(Anomaly::new(
                            "negative-balance",
                            format!("{} saw account {k} at {b}", t.describe()),
                        ));
                    }
                }
                Mop::ReadBal { .. } => all = false,
                Mop::WriteBal { .. } => all = false,
                _ => {}
            }
        }
        if all && seen == accounts as usize {
            r.reads += 1;
            if sum != total {
                r.anomalies.push(Anomaly::new(
                    "wrong-total",
                    format!("{} saw a total of {sum}, not {total}", t.describe()),
                ));
            }
        }
    }
    // Committed: ok transfers, and info ones whose versions were observed
    // (read, or overwritten by a committed transfer), to a fixpoint.
    let mut committed: HashSet<usize> = txns
        .iter()
        .filter(|t| t.outcome == Outcome::Ok)
        .map(|t| t.index)
        .collect();
    loop {
        let before = committed.len();
        let mut observed: Vec<u64> = reads.iter().map(|r| r.3).collect();
        for (t, ws) in &transfers {
            if committed.contains(t) {
                observed.extend(ws.iter().map(|w| w.1));
            }
        }
        for v in observed {
            if let Some(w) = ver_writer.get(&v) {
                if by_index[w].outcome == Outcome::Info {
                    committed.insert(*w);
                }
            }
        }
        if committed.len() == before {
            break;
        }
    }
    // What each read saw must exist, be committed, and match.
    for &(reader, k, bal, v) in &reads {
        if v == INITIAL {
            continue;
        }
        match ver_writer.get(&v).map(|w| by_index[w]) {
            None => r.anomalies.push(Anomaly::new(
                "phantom",
                format!("T{reader} read account {k} at version {v}, which nobody wrote"),
            )),
            Some(w) if w.outcome == Outcome::Fail => r.anomalies.push(Anomaly::new(
                "G1a",
                format!(
                    "T{reader} read account {k} = {bal} written by aborted {}",
                    w.describe()
                ),
            )),
            Some(w) => match written.get(&(k, v)) {
                Some(b) if *b == bal => {}
                other => r.anomalies.push(Anomaly::new(
                    "garbage",
                    format!(
                        "T{reader} read account {k} = {bal} at version {v}, but {} wrote {:?}",
                        w.describe(),
                        other
                    ),
                )),
            },
        }
    }
    // Version chains: (account, version) -> committed overwriters.
    let mut next: BTreeMap<(u64, u64), Vec<usize>> = BTreeMap::new();
    for (t, ws) in &transfers {
        if !committed.contains(t) {
            continue;
        }
        for &(k, prev, _) in ws {
            next.entry((k, prev)).or_default().push(*t);
        }
    }
    for ((k, prev), ws) in &next {
        if ws.len() > 1 {
            let mut ws = ws.clone();
            ws.sort();
            let who: Vec<String> = ws.iter().map(|w| by_index[w].describe()).collect();
            r.anomalies.push(Anomaly::new(
                "lost-update",
                format!(
                    "{} committed transfers overwrote version {prev} of account {k}:\n    {}",
                    ws.len(),
                    who.join("\n    ")
                ),
            ));
        }
    }
    // The graph.
    let mut g = Graph::default();
    let key = |k: u64| format!("acct{k}");
    for ((k, prev), ws) in &next {
        if let Some(p) = ver_writer.get(prev).filter(|p| committed.contains(p)) {
            for w in ws {
                g.add(*p, *w, Kind::Ww, key(*k));
            }
        }
    }
    for &(reader, k, _, v) in &reads {
        if let Some(w) = ver_writer.get(&v).filter(|w| committed.contains(w)) {
            if v != INITIAL {
                g.add(*w, reader, Kind::Wr, key(k));
            }
        }
        for w in next.get(&(k, v)).map(Vec::as_slice).unwrap_or(&[]) {
            g.add(reader, *w, Kind::Rw, key(k));
        }
    }
    r.edges = g.len();
    for c in g.cycles(20) {
        let mut text = c.explain();
        let mut shown = HashSet::new();
        for e in &c.edges {
            if shown.insert(e.from) {
                text.push_str(&format!("\n    {}", by_index[&e.from].describe()));
            }
        }
        r.anomalies.push(Anomaly::new(c.anomaly, text));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rb(k: u64, bal: i64, ver: u64) -> Mop {
        Mop::ReadBal {
            k,
            bal: Some(bal),
            ver: Some(ver),
        }
    }
    fn wb(k: u64, bal: i64, ver: u64) -> Mop {
        Mop::WriteBal { k, bal, ver }
    }
    fn t(i: usize, o: Outcome, m: Vec<Mop>) -> Txn {
        Txn::new(i, o, m)
    }
    fn names(r: &Report) -> Vec<String> {
        r.anomalies.iter().map(|a| a.name.clone()).collect()
    }

    /// Two accounts of 10; T0 (id 1) moves 3 from 0 to 1.
    fn transfer() -> Txn {
        t(
            0,
            Outcome::Ok,
            vec![rb(0, 10, 0), rb(1, 10, 0), wb(0, 7, 1), wb(1, 13, 1)],
        )
    }

    #[test]
    fn serial_transfers_and_reads_pass() {
        let h = vec![
            transfer(),
            t(1, Outcome::Ok, vec![rb(0, 7, 1), rb(1, 13, 1)]),
            t(
                2,
                Outcome::Ok,
                vec![rb(0, 7, 1), rb(1, 13, 1), wb(0, 8, 3), wb(1, 12, 3)],
            ),
            t(
                3,
                Outcome::Fail,
                vec![rb(0, 8, 3), rb(1, 12, 3), wb(0, 0, 4), wb(1, 20, 4)],
            ),
            t(4, Outcome::Ok, vec![rb(0, 8, 3), rb(1, 12, 3)]),
        ];
        let r = check(&h, 2, 20);
        assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
        assert_eq!(r.reads, 2);
    }

    #[test]
    fn a_wrong_total_and_a_negative_balance_are_caught() {
        let h = vec![
            transfer(),
            t(1, Outcome::Ok, vec![rb(0, 7, 1), rb(1, 10, 0)]),
        ];
        let n = names(&check(&h, 2, 20));
        assert!(n.contains(&"wrong-total".to_string()), "{n:?}");
        // ... which is also read skew: T1 saw T0's write to 0 but not to 1.
        assert!(n.contains(&"G-single".to_string()), "{n:?}");
        let h = vec![t(0, Outcome::Ok, vec![rb(0, -1, 0), rb(1, 21, 0)])];
        assert_eq!(names(&check(&h, 2, 20)), ["negative-balance"]);
    }

    #[test]
    fn two_transfers_overwriting_one_version_are_a_lost_update() {
        let h = vec![
            transfer(),
            t(
                1,
                Outcome::Ok,
                vec![rb(0, 10, 0), rb(1, 10, 0), wb(0, 9, 2), wb(1, 11, 2)],
            ),
        ];
        let n = names(&check(&h, 2, 20));
        assert!(n.contains(&"lost-update".to_string()), "{n:?}");
    }

    #[test]
    fn reading_a_failed_transfer_is_g1a() {
        let h = vec![
            t(
                0,
                Outcome::Fail,
                vec![rb(0, 10, 0), rb(1, 10, 0), wb(0, 7, 1), wb(1, 13, 1)],
            ),
            t(1, Outcome::Ok, vec![rb(0, 7, 1), rb(1, 13, 1)]),
        ];
        // One per account read.
        assert_eq!(names(&check(&h, 2, 20)), ["G1a", "G1a"]);
    }

    #[test]
    fn write_skew_between_transfers_is_g2() {
        // Each reads both accounts and writes one (as a withdrawal that
        // checks the sum would): both read the initial versions.
        let h = vec![
            t(
                0,
                Outcome::Ok,
                vec![rb(1, 10, 0), rb(0, 10, 0), wb(0, 9, 1)],
            ),
            t(
                1,
                Outcome::Ok,
                vec![rb(0, 10, 0), rb(1, 10, 0), wb(1, 9, 2)],
            ),
        ];
        let n = names(&check(&h, 2, 20));
        assert_eq!(n, ["G2"]);
    }

    #[test]
    fn an_unknown_transfer_that_was_read_is_committed() {
        let mut tr = transfer();
        tr.outcome = Outcome::Info;
        let h = vec![tr, t(1, Outcome::Ok, vec![rb(0, 7, 1), rb(1, 13, 1)])];
        let r = check(&h, 2, 20);
        assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
        // And an unknown one nobody saw is ignored, not a lost update.
        let mut tr = transfer();
        tr.outcome = Outcome::Info;
        let h = vec![
            tr,
            t(
                1,
                Outcome::Ok,
                vec![rb(0, 10, 0), rb(1, 10, 0), wb(0, 9, 2), wb(1, 11, 2)],
            ),
            t(2, Outcome::Ok, vec![rb(0, 9, 2), rb(1, 11, 2)]),
        ];
        let r = check(&h, 2, 20);
        assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
    }

    #[test]
    fn a_version_nobody_wrote_or_a_wrong_balance_is_caught() {
        let h = vec![t(0, Outcome::Ok, vec![rb(0, 10, 77), rb(1, 10, 0)])];
        assert_eq!(names(&check(&h, 2, 20)), ["phantom"]);
        let h = vec![
            transfer(),
            t(1, Outcome::Ok, vec![rb(0, 8, 1), rb(1, 12, 1)]),
        ];
        assert!(names(&check(&h, 2, 20)).contains(&"garbage".to_string()));
    }
}
