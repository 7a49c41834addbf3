//! Tessera's SQL layer: the PostgreSQL wire protocol over the replicated
//! key/value store.
//!
//! ```text
//! server      pgwire front end: startup, simple + extended protocol, values
//! session     one connection: transaction state, SET/SHOW, DDL, dispatch
//! plan        sqlparser AST -> bound tree (names, types, $n inference)
//!             -> Plan; WHERE on the primary key -> point lookups / spans
//! exec        runs plans and DML inside a txn (reads merge the write buffer)
//! txn         write buffer, committed as ONE kv write_batch with cputs
//! expr        bound scalar expressions and their evaluation
//! catalog     table descriptors in KV, cached per node, versioned
//! encoding    rows <-> keys and values
//! types       SQL types, datums, exact decimals, dates and times
//! ```
//!
//! The SQL layer uses only the `tessera_kv::DB` client API (get, scan,
//! cput, write_batch, increment): it never sees ranges, leases or raft.
//!
//! # Public API
//!
//! [`serve`] runs the server on a listener for one node:
//!
//! ```no_run
//! # async fn run(db: std::sync::Arc<tessera_kv::DB>) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:26257").await?;
//! let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
//! tokio::spawn(tessera_sql::serve(listener, db, async move { let _ = stop_rx.await; }));
//! // ... later: stop_tx.send(()) stops accepting connections.
//! # drop(stop_tx); Ok(())
//! # }
//! ```
//!
//! Clients connect as any user from loopback, without a password, e.g.
//! `postgres://root@127.0.0.1:26257/defaultdb`.
//!
//! # Transactions: what is and is not guaranteed
//!
//! A statement outside BEGIN..COMMIT is its own transaction; BEGIN..COMMIT
//! groups statements. Either way, the transaction **buffers** its writes
//! and applies them at the end (statement end, or COMMIT) with **one**
//! `DB::write_batch`, which is atomic: all rows or none. Reads inside the
//! transaction see its own buffered writes.
//!
//! Concurrency control is optimistic:
//!
//! - a row written by UPDATE or DELETE after the transaction read it is
//!   written with a conditional put expecting the value read; if another
//!   transaction changed it meanwhile, the commit fails with SQLSTATE
//!   **40001** ("restart transaction: ..."), and nothing is applied. So
//!   lost updates cannot happen. A single statement outside BEGIN is
//!   retried automatically a few times before 40001 reaches the client;
//! - an INSERT is a conditional put expecting the key to be absent: if the
//!   row exists at commit, the commit fails with **23505**;
//! - rows that are only read are not validated at commit: write skew and
//!   phantoms are possible. This is not yet SERIALIZABLE (the distributed
//!   transactions issue brings MVCC timestamps and read validation);
//! - if the buffered writes fall in more than one range, the batch is
//!   refused and the commit fails with **0A000** ("cross-range transactions
//!   are not supported yet"); nothing is applied;
//! - DDL (CREATE/DROP/TRUNCATE TABLE) is not transactional: it applies at
//!   once, even inside BEGIN..COMMIT. Sequences (SERIAL, the hidden rowid)
//!   are not transactional either, as in PostgreSQL.

pub mod catalog;
pub mod encoding;
pub mod error;
pub mod exec;
pub mod expr;
pub mod plan;
pub mod server;
pub mod session;
pub mod txn;
pub mod types;

pub use error::SqlError;
pub use server::serve;

/// The version reported to clients as `server_version`.
pub const SERVER_VERSION: &str = "15.0 (Tessera)";
