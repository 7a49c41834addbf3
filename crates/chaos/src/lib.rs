//! Jepsen-style fault testing of Tessera: start real `tessera` processes,
//! run a workload from concurrent clients while a nemesis kills, pauses,
//! partitions, skews and reshapes the cluster, record every operation,
//! heal, and check the history.
//!
//! - [`cluster`]: the processes (start, init, kill -9, SIGSTOP/SIGCONT,
//!   restart, libfaketime clocks);
//! - [`net`]: the partition proxies between nodes;
//! - [`nemesis`]: the faults;
//! - [`workload`]: the recorder and the register workload over the KV API;
//! - [`sqlwork`]: the SQL workloads (register, bank, set, list-append);
//! - [`history`], [`txn`]: the recorded operations and transactions and
//!   their JSON-lines files;
//! - checkers: [`linear`] (linearizability, Wing & Gong / Lowe), [`bank`]
//!   (totals and serializability), [`set`] (lost and phantom elements),
//!   [`elle`] (list-append, after Elle), over [`graph`] (dependency graphs
//!   and cycle classification);
//! - [`run`]: one run end to end, and its folder.

pub mod bank;
pub mod cluster;
pub mod elle;
pub mod graph;
pub mod history;
pub mod linear;
pub mod nemesis;
pub mod net;
pub mod run;
pub mod set;
pub mod sqlwork;
pub mod txn;
pub mod workload;
