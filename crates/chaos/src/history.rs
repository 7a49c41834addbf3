//! The recorded history of a register workload: one [`Op`] per client
//! operation, with its invocation and completion times (nanoseconds on a
//! monotonic clock since the start of the run) and its outcome.
//!
//! Outcomes follow Jepsen: `ok` (it happened, with this result), `fail` (it
//! definitely did not happen: a condition failed, or the server said the
//! request was not executed) and `info` (unknown: a timeout, a transport
//! error after the request may have been sent, an ambiguous error). A
//! history file holds one JSON object per line.

use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A register value; `None` is "the key does not exist" (the initial state).
pub type Value = Option<u64>;

/// What an operation asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "lowercase")]
pub enum Call {
    /// Read the register.
    Read,
    /// Write `value`.
    Write { value: u64 },
    /// Compare-and-set: write `new` if the register holds `expected`.
    Cas { expected: Value, new: u64 },
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It took effect; for a read, `read` holds what it saw.
    Ok,
    /// It definitely did not take effect.
    Fail,
    /// Unknown: it may or may not have taken effect, at any time after its
    /// invocation.
    Info,
}

/// One client operation on one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// Position in the history (unique).
    pub index: usize,
    /// Logical client process; a client that saw an `info` outcome takes a
    /// new process id (it may still have that operation in flight).
    pub process: u64,
    /// The register (key) operated on.
    pub key: String,
    /// What was asked.
    #[serde(flatten)]
    pub call: Call,
    /// How it ended.
    pub outcome: Outcome,
    /// For an `ok` read: the value seen.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "present_value"
    )]
    pub read: Option<Value>,
    /// Invocation time, ns since the start of the run.
    pub invoke_ns: u64,
    /// Completion time, ns since the start of the run (when the client gave
    /// up, for `info`).
    pub complete_ns: u64,
    /// Node index (1-based) the request was sent to.
    #[serde(default)]
    pub node: usize,
    /// The error, for `fail` and `info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Op {
    /// A short human description: `#12 p3 write 4 ok [1.203s..1.250s] n2`.
    pub fn describe(&self) -> String {
        let what = match (self.call, self.read) {
            (Call::Read, Some(v)) => format!("read -> {}", show(v)),
            (Call::Read, None) => "read".to_string(),
            (Call::Write { value }, _) => format!("write {value}"),
            (Call::Cas { expected, new }, _) => format!("cas {} -> {new}", show(expected)),
        };
        let outcome = match self.outcome {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        };
        format!(
            "#{} p{} {} {} {} [{}..{}] n{}{}",
            self.index,
            self.process,
            self.key,
            what,
            outcome,
            secs(self.invoke_ns),
            secs(self.complete_ns),
            self.node,
            self.error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        )
    }
}

/// (De)serializes `Option<Value>` so that a present `null` is `Some(None)`
/// (a read that saw no value) and a missing field is `None`.
mod present_value {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Value;

    pub fn serialize<S: Serializer>(v: &Option<Value>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(x) => x.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
        Value::deserialize(d).map(Some)
    }
}

/// A value for humans: `nil` for absent.
pub fn show(v: Value) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "nil".into())
}

/// Nanoseconds as seconds with millisecond precision.
pub fn secs(ns: u64) -> String {
    format!("{}.{:03}s", ns / 1_000_000_000, (ns / 1_000_000) % 1000)
}

/// Writes `ops` as JSON lines.
pub fn write_history(path: &Path, ops: &[Op]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for op in ops {
        let line = serde_json::to_string(op).map_err(std::io::Error::other)?;
        writeln!(f, "{line}")?;
    }
    f.flush()
}

/// Reads a history written by [`write_history`].
pub fn read_history(path: &Path) -> std::io::Result<Vec<Op>> {
    let f = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut ops = Vec::new();
    for (n, line) in f.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let op: Op = serde_json::from_str(&line).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}:{}: {e}", path.display(), n + 1),
            )
        })?;
        ops.push(op);
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip_through_json_lines() {
        let ops = vec![
            Op {
                index: 0,
                process: 1,
                key: "r/0".into(),
                call: Call::Cas {
                    expected: None,
                    new: 3,
                },
                outcome: Outcome::Info,
                read: None,
                invoke_ns: 5,
                complete_ns: 9,
                node: 2,
                error: Some("timeout".into()),
            },
            Op {
                index: 1,
                process: 2,
                key: "r/0".into(),
                call: Call::Read,
                outcome: Outcome::Ok,
                read: Some(None),
                invoke_ns: 10,
                complete_ns: 12,
                node: 1,
                error: None,
            },
        ];
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("h.jsonl");
        write_history(&p, &ops).expect("write");
        assert_eq!(read_history(&p).expect("read"), ops);
    }
}
