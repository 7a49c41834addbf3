//! The recorded history of the transactional workloads (bank, set,
//! list-append): one [`Txn`] per client transaction, a list of
//! micro-operations with what each observed, the outcome and the times.
//! Outcomes are those of [`crate::history::Outcome`]: `ok` committed,
//! `fail` definitely not applied (e.g. SQLSTATE 40001, 0A000, 23505),
//! `info` unknown (timeout, lost connection, an ambiguous error).
//! A history file holds one JSON object per line.

use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::history::{secs, Outcome};

/// One step of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum Mop {
    /// list-append: read list `k`; `list` is what was seen (`None` until
    /// the read returned; an absent row reads as empty).
    Read {
        /// The key.
        k: u64,
        /// The elements seen.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        list: Option<Vec<u64>>,
    },
    /// list-append: append `v` to list `k` (values are unique per key).
    Append {
        /// The key.
        k: u64,
        /// The element.
        v: u64,
    },
    /// bank: read account `k`: balance and the version (id of the
    /// transaction that wrote it, 0 for the initial one).
    ReadBal {
        /// The account.
        k: u64,
        /// The balance seen.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bal: Option<i64>,
        /// The version seen.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ver: Option<u64>,
    },
    /// bank: set account `k` to `bal`, version `ver` (this transaction's
    /// id).
    WriteBal {
        /// The account.
        k: u64,
        /// The new balance.
        bal: i64,
        /// The new version.
        ver: u64,
    },
    /// set: insert the unique element `v`.
    Insert {
        /// The element.
        v: u64,
    },
    /// set: read every element.
    ReadSet {
        /// The elements seen.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        set: Option<Vec<u64>>,
    },
}

/// One client transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    /// Position in the history (unique; the `T<n>` of explanations).
    pub index: usize,
    /// Logical client process (a new one after an `info` outcome).
    pub process: u64,
    /// The steps, in order; reads filled in as they returned.
    pub mops: Vec<Mop>,
    /// How it ended.
    pub outcome: Outcome,
    /// Invocation time, ns since the start of the run.
    pub invoke_ns: u64,
    /// Completion time, ns since the start of the run.
    pub complete_ns: u64,
    /// Node index (1-based) the client was connected to.
    #[serde(default)]
    pub node: usize,
    /// The error, for `fail` and `info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Txn {
    /// A transaction for tests and checkers: `ok`, times from the index.
    pub fn new(index: usize, outcome: Outcome, mops: Vec<Mop>) -> Txn {
        Txn {
            index,
            process: index as u64,
            mops,
            outcome,
            invoke_ns: index as u64 * 10,
            complete_ns: index as u64 * 10 + 5,
            node: 1,
            error: None,
        }
    }

    /// `T12 ok [1.200s..1.250s] n2 [append 3 7, r 4 [1 2]]`.
    pub fn describe(&self) -> String {
        let mops: Vec<String> = self
            .mops
            .iter()
            .map(|m| match m {
                Mop::Read { k, list } => format!("r {k} {}", show_list(list.as_deref())),
                Mop::Append { k, v } => format!("append {k} {v}"),
                Mop::ReadBal { k, bal, ver } => format!(
                    "r acct{k} {} (v{})",
                    bal.map(|b| b.to_string()).unwrap_or("?".into()),
                    ver.map(|b| b.to_string()).unwrap_or("?".into())
                ),
                Mop::WriteBal { k, bal, ver } => format!("w acct{k} {bal} (v{ver})"),
                Mop::Insert { v } => format!("insert {v}"),
                Mop::ReadSet { set } => format!(
                    "read-set ({} elements)",
                    set.as_ref()
                        .map(|s| s.len().to_string())
                        .unwrap_or("?".into())
                ),
            })
            .collect();
        let outcome = match self.outcome {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        };
        format!(
            "T{} {outcome} [{}..{}] n{} [{}]{}",
            self.index,
            secs(self.invoke_ns),
            secs(self.complete_ns),
            self.node,
            mops.join(", "),
            self.error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        )
    }
}

/// One anomaly a checker found: its name (`G1a`, `lost-update`, ...) and
/// the evidence, for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anomaly {
    /// The anomaly class.
    pub name: String,
    /// What happened, naming the transactions (`T<index>`).
    pub explanation: String,
}

impl Anomaly {
    /// An anomaly of class `name`.
    pub fn new(name: &str, explanation: String) -> Anomaly {
        Anomaly {
            name: name.to_string(),
            explanation,
        }
    }
}

/// Counts per anomaly class: `G1a x2, G2 x1`.
pub fn summarize(anomalies: &[Anomaly]) -> String {
    let mut by: std::collections::BTreeMap<&str, usize> = Default::default();
    for a in anomalies {
        *by.entry(a.name.as_str()).or_default() += 1;
    }
    let v: Vec<String> = by.iter().map(|(k, n)| format!("{k} x{n}")).collect();
    v.join(", ")
}

/// `[1 2 3]`, or `?` for a read that did not return; a long list shows
/// its length and last elements: `[(120) ... 7 9 12]`.
pub fn show_list(l: Option<&[u64]>) -> String {
    const SHOWN: usize = 6;
    match l {
        None => "?".into(),
        Some(l) if l.len() > SHOWN => {
            let v: Vec<String> = l[l.len() - SHOWN..].iter().map(|x| x.to_string()).collect();
            format!("[({}) ... {}]", l.len(), v.join(" "))
        }
        Some(l) => {
            let v: Vec<String> = l.iter().map(|x| x.to_string()).collect();
            format!("[{}]", v.join(" "))
        }
    }
}

/// Writes `txns` as JSON lines.
pub fn write_txns(path: &Path, txns: &[Txn]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for t in txns {
        let line = serde_json::to_string(t).map_err(std::io::Error::other)?;
        writeln!(f, "{line}")?;
    }
    f.flush()
}

/// Reads a history written by [`write_txns`].
pub fn read_txns(path: &Path) -> std::io::Result<Vec<Txn>> {
    let f = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut out = Vec::new();
    for (n, line) in f.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}:{}: {e}", path.display(), n + 1),
            )
        })?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txns_round_trip_through_json_lines() {
        let txns = vec![
            Txn::new(
                0,
                Outcome::Ok,
                vec![
                    Mop::Append { k: 1, v: 2 },
                    Mop::Read {
                        k: 1,
                        list: Some(vec![2]),
                    },
                    Mop::Read { k: 3, list: None },
                ],
            ),
            Txn::new(
                1,
                Outcome::Info,
                vec![
                    Mop::ReadBal {
                        k: 0,
                        bal: Some(10),
                        ver: Some(0),
                    },
                    Mop::WriteBal {
                        k: 0,
                        bal: 7,
                        ver: 1,
                    },
                    Mop::Insert { v: 4 },
                    Mop::ReadSet { set: Some(vec![4]) },
                ],
            ),
        ];
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("h.jsonl");
        write_txns(&p, &txns).expect("write");
        assert_eq!(read_txns(&p).expect("read"), txns);
        assert!(txns[0].describe().contains("append 1 2, r 1 [2], r 3 ?"));
        let long: Vec<u64> = (1..=10).collect();
        assert_eq!(show_list(Some(&long)), "[(10) ... 5 6 7 8 9 10]");
    }
}
