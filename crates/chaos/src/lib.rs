//! Jepsen-style fault testing of Tessera: start real `tessera` processes,
//! run a workload from concurrent clients while a nemesis kills, pauses and
//! reshapes the cluster, record every operation, heal, and check the
//! history.
//!
//! - [`cluster`]: the processes (start, init, kill -9, SIGSTOP/SIGCONT,
//!   restart);
//! - [`workload`]: the register workload's clients and the recorder;
//! - [`nemesis`]: the faults;
//! - [`history`]: the recorded operations and their JSON-lines file;
//! - [`linear`]: the linearizability checker (Wing & Gong / Lowe);
//! - [`run`]: one run end to end, and its folder.

pub mod cluster;
pub mod history;
pub mod linear;
pub mod nemesis;
pub mod run;
pub mod workload;
