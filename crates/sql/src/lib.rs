//! Tessera's SQL layer: the PostgreSQL wire protocol over the replicated
//! key/value store.
//!
//! ```text
//! server      pgwire front end: startup, simple + extended protocol, values
//! session     one connection: transaction state, SET/SHOW, DDL, dispatch
//! split       a query string -> its statements' texts (quotes, comments)
//! plan        sqlparser AST -> bound tree (names, types, $n inference)
//!             -> Plan; WHERE on the primary key or on the leading column
//!             of a secondary index -> point lookups / spans / index joins
//! exec        runs plans and DML inside a txn (reads merge the write buffer);
//!             maintains secondary indexes; INSERT ... ON CONFLICT
//! txn         write buffer, committed as ONE kv write_batch with cputs
//! expr        bound scalar expressions and their evaluation
//! catalog     table descriptors (with their indexes) in KV, cached, versioned
//! encoding    rows and index entries <-> keys and values
//! types       SQL types, datums, exact decimals, dates and times
//! admin       ALTER TABLE .. SPLIT AT, SHOW RANGES FROM TABLE / INDEX
//! pgcompat    psql's \d, \dt, \di, \d name answered from the catalog
//! alter       ALTER TABLE .. ADD PRIMARY KEY (re-keys); VACUUM etc. accepted
//! copy        COPY ... FROM STDIN (text, CSV) in bounded write batches;
//!             large INSERTs outside BEGIN split the same way
//! json        JSON validation, JSONB normalization
//! objects     views (CREATE/DROP VIEW), roles, read-only transactions
//! ```
//!
//! The SQL layer uses the `tessera_kv::DB` client API (get, scan, cput,
//! write_batch, increment), plus `split`, `ranges` and `leaseholder_of`
//! for SPLIT AT and SHOW RANGES only: planning and execution never see
//! ranges, leases or raft.
//!
//! # Statements beyond the basics
//!
//! - `CREATE [UNIQUE] INDEX [IF NOT EXISTS] [name] ON t (cols)` and `DROP
//!   INDEX [IF EXISTS] name`: see [`catalog`] (backfill) and
//!   [`exec::index_entry`] (layout). Index entries are written in the same
//!   write batch as their row by INSERT, UPDATE and DELETE; a duplicate in
//!   a UNIQUE index is 23505 (NULLs never conflict). The planner uses the
//!   first index whose leading column the WHERE clause constrains (when
//!   the primary key is not constrained) and EXPLAIN names it and its spans.
//! - `INSERT ... ON CONFLICT [(cols) | ON CONSTRAINT name] DO NOTHING`
//!   and `... DO UPDATE SET col = EXCLUDED.col [, ...] [WHERE ...]`: the
//!   arbiter is the primary key or the UNIQUE constraint / index whose
//!   columns (or name) the target gives; DO NOTHING without a target
//!   checks all of them (a conflict in a unique index that is not an
//!   arbiter is still 23505; NULLs never conflict). The keys looked up
//!   are locked, present or absent, so concurrent upserts of one value
//!   queue. A row found is read (an update of it is a cput of what was
//!   read); a row not found by its primary key is inserted expecting it
//!   still absent at commit — if another transaction inserted it
//!   meanwhile, the commit fails with 40001 (and an implicit transaction
//!   retries, now seeing the row) rather than 23505. DO UPDATE touching
//!   one row twice is 21000.
//! - `ALTER TABLE t SPLIT AT VALUES (...)`, `SHOW RANGES FROM TABLE t`,
//!   `SHOW RANGES FROM INDEX t@idx`: see [`admin`].
//! - `SHOW CREATE TABLE t`: the CREATE TABLE and CREATE INDEX statements.
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
//! - a row and its secondary index entries are one batch too: if they fall
//!   in different ranges (after a split between the table's rows and its
//!   index), the write fails with 0A000 and applies nothing, until
//!   distributed transactions exist;
//! - DDL (CREATE/DROP/TRUNCATE TABLE, CREATE/DROP INDEX) is not
//!   transactional: it applies at once, even inside BEGIN..COMMIT. Sequences (SERIAL, the hidden rowid)
//!   are not transactional either, as in PostgreSQL.

pub mod admin;
pub mod alter;
pub mod aost;
pub mod array;
pub mod catalog;
pub mod copy;
pub mod datefns;
pub mod encoding;
pub mod error;
pub mod exec;
pub mod expr;
pub mod fk;
pub mod functions;
pub mod infoschema;
pub mod json;
pub mod numfmt;
pub mod objects;
pub mod pgcatalog;
pub mod pgcompat;
pub mod plan;
pub mod sequences;
pub mod server;
pub mod session;
pub mod split;
pub mod txn;
pub mod types;
pub mod wire_batch;

pub use error::SqlError;
pub use server::{serve, serve_with, ServerConfig};

/// The version reported to clients as `server_version`.
pub const SERVER_VERSION: &str = "15.0 (Tessera)";
