//! A SQL session: one client connection's state — its database, session
//! variables, transaction — and the statement dispatcher.
//!
//! Statements outside BEGIN..COMMIT run in an implicit transaction that
//! commits when the statement ends; such a statement is retried (up to
//! [`IMPLICIT_RETRIES`] times) when its commit hits a serialization
//! failure, since nothing of it has reached the client yet. Inside an
//! explicit transaction, an error puts the session in the failed state
//! (25P02 for every statement until ROLLBACK), as PostgreSQL does.
//!
//! A statement interrupted by a cancel request (its future dropped at an
//! await point) aborts the explicit transaction it ran in: the next
//! statement finds the transaction failed. A statement of any size is
//! atomic: a KV transaction too large for one raft command writes its
//! intents in bounded batches and then commits.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sqlparser::ast::{self, Statement};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use crate::admin::{self, AdminStmt};
use crate::catalog::{Catalog, Column, TableDesc};
use crate::error::{code, Result, SqlError};
use crate::exec::{self, Output, Row};
use crate::expr::EvalCtx;
use crate::plan::{self, Binder, Bound};
use crate::txn::Txn;
use crate::types::{self, DataType, Datum};
use tessera_kv::txn::Isolation;

/// How often an implicit transaction is retried after a serialization failure.
pub const IMPLICIT_RETRIES: usize = 10;

/// What one statement returned.
#[derive(Debug)]
pub enum StmtResult {
    Rows {
        columns: Vec<(String, DataType)>,
        rows: Vec<Row>,
        /// The command tag without the row count (`SELECT`, `INSERT 0`).
        tag: String,
    },
    /// A command tag, complete (`CREATE TABLE`, `INSERT 0 3`).
    Command(String),
    /// BEGIN or START TRANSACTION (the tag says which).
    Begin(&'static str),
    /// COMMIT or ROLLBACK (the tag says which).
    End(String),
    Empty,
    /// COPY FROM STDIN: the front end feeds it the client's CopyData.
    CopyIn(Box<crate::copy::CopyIn>),
    /// Rows produced as the client reads them ([`exec::stream_query`]).
    RowStream {
        columns: Vec<(String, DataType)>,
        rows: exec::RowStream,
    },
}

/// A statement parsed and bound once (extended protocol, Parse).
#[derive(Debug)]
pub struct Prepared {
    pub sql: String,
    pub stmt: Option<Statement>,
    /// Bound plan for queries and DML (re-bound if the catalog moved).
    pub bound: Option<Bound>,
    pub catalog_version: u64,
    /// Declared by the client, then inferred.
    pub param_types: Vec<DataType>,
    pub columns: Vec<(String, DataType)>,
    /// A statement sqlparser does not know (SPLIT AT, SHOW RANGES).
    pub admin: Option<AdminStmt>,
    /// COPY FROM STDIN.
    pub copy: Option<crate::copy::CopyStmt>,
    /// `AS OF SYSTEM TIME` (resolved at each execution).
    pub as_of: Option<crate::aost::AsOf>,
    /// A command with nothing to do here (VACUUM, SET CONSTRAINTS, ...;
    /// see [`crate::alter::maintenance`]): its tag.
    pub command: Option<String>,
}

impl Prepared {
    /// A prepared statement that is not a parsed statement (COPY, SPLIT
    /// AT, a command answered as is): the caller sets what it is.
    fn special(sql: &str, catalog_version: u64) -> Prepared {
        Prepared {
            sql: sql.to_string(),
            stmt: None,
            bound: None,
            catalog_version,
            param_types: vec![],
            columns: vec![],
            admin: None,
            copy: None,
            as_of: None,
            command: None,
        }
    }
}

enum TxnState {
    Idle,
    Open(Txn),
    Failed,
}

/// One connection's session.
pub struct Session {
    catalog: Arc<Catalog>,
    pub database: String,
    pub user: String,
    /// The process id the client was given (BackendKeyData;
    /// pg_backend_pid).
    pub backend_pid: i32,
    txn: TxnState,
    vars: BTreeMap<String, String>,
    /// A statement started and has not returned: if the next one finds
    /// this set, the previous one was cancelled mid-way.
    in_flight: bool,
    /// The running statement's `AS OF SYSTEM TIME`.
    as_of: Option<tessera_common::Timestamp>,
    /// The open transaction reads at this fixed time (`BEGIN AS OF SYSTEM
    /// TIME`).
    txn_as_of: Option<tessera_common::Timestamp>,
    /// The last explicit transaction failed with a serialization failure or
    /// deadlock and none has committed since: the next one locks the rows
    /// it reads by primary key ([`Txn::lock_point_reads`]).
    after_retry_error: bool,
    /// Tables created inside the open explicit transaction: dropped again
    /// if it does not commit.
    created_in_txn: Vec<String>,
    /// The values nextval / setval gave in this session (currval,
    /// lastval).
    sequence_values: Arc<parking_lot::Mutex<crate::sequences::SessionSequences>>,
    /// The open transaction's savepoints, oldest first, with its writes
    /// at each.
    savepoints: Vec<(String, crate::txn::Savepoint)>,
    /// The transaction of a failed block, kept while it has savepoints: a
    /// ROLLBACK TO SAVEPOINT reopens it. `None` when the failure left the
    /// KV transaction unusable (a serialization failure, a deadlock, a
    /// cancelled statement), or when there is nothing to go back to.
    failed_txn: Option<Txn>,
    /// Every setting SHOW knows, for current_setting(); rebuilt after any
    /// statement that is not a query or DML (those cannot change one).
    settings: Option<Arc<BTreeMap<String, String>>>,
    /// Statements prepared with the SQL `PREPARE name AS ...`, by name.
    sql_prepared: HashMap<String, Arc<Prepared>>,
}

/// The isolation level a BEGIN / SET TRANSACTION asks for. READ
/// UNCOMMITTED is READ COMMITTED (as in PostgreSQL); REPEATABLE READ and
/// SNAPSHOT get SERIALIZABLE, which allows nothing they forbid.
fn requested_isolation(modes: &[ast::TransactionMode]) -> Option<Isolation> {
    modes.iter().rev().find_map(|m| match m {
        ast::TransactionMode::IsolationLevel(l) => Some(match l {
            ast::TransactionIsolationLevel::ReadUncommitted
            | ast::TransactionIsolationLevel::ReadCommitted => Isolation::ReadCommitted,
            _ => Isolation::Serializable,
        }),
        _ => None,
    })
}

fn isolation_name(i: Isolation) -> &'static str {
    match i {
        Isolation::Serializable => "serializable",
        Isolation::ReadCommitted => "read committed",
    }
}

/// Parses SQL text into statements (PostgreSQL dialect); 42601 on error.
pub fn parse(sql: &str) -> Result<Vec<Statement>> {
    Parser::parse_sql(&PostgreSqlDialect {}, sql).or_else(|e| {
        // `TABLE name` as a statement (SQL's short form of SELECT * FROM
        // name), which the parser takes only inside a query.
        if let Some(rewritten) = table_statements_as_selects(sql) {
            if let Ok(stmts) = Parser::parse_sql(&PostgreSqlDialect {}, &rewritten) {
                return Ok(stmts);
            }
        }
        let msg = e.to_string();
        let msg = msg
            .strip_prefix("sql parser error: ")
            .unwrap_or(&msg)
            .to_string();
        Err(SqlError::syntax(format!("syntax error: {msg}")))
    })
}

/// A serialization failure or a deadlock: the transaction may succeed
/// if run again.
fn is_retry_error(e: &SqlError) -> bool {
    e.code == code::SERIALIZATION_FAILURE || e.code == code::DEADLOCK_DETECTED
}

/// The wait before the `attempt`th server-side retry (4 ms, doubling up
/// to 128 ms).
async fn retry_backoff(attempt: usize) {
    tokio::time::sleep(std::time::Duration::from_millis(2u64 << attempt.min(6))).await;
}

/// The command tag of BEGIN / START TRANSACTION (`begin`: spelled BEGIN).
fn begin_tag(begin: bool) -> &'static str {
    if begin {
        "BEGIN"
    } else {
        "START TRANSACTION"
    }
}

/// The table a `SELECT ... INTO table` creates and the query without
/// its INTO; `None` for any other query.
fn select_into(q: &ast::Query) -> Option<(ast::Expr, ast::Query)> {
    let ast::SetExpr::Select(sel) = q.body.as_ref() else {
        return None;
    };
    let target = match sel.into.as_ref()?.targets.as_slice() {
        [t] => t.clone(),
        _ => return None,
    };
    let mut q = q.clone();
    if let ast::SetExpr::Select(sel) = q.body.as_mut() {
        sel.into = None;
    }
    Some((target, q))
}

/// One statement of a query string holding several, checked before any
/// of them runs.
enum Piece {
    /// Taken by a recognizer that reads the text itself (SPLIT AT, SHOW
    /// RANGES, AS OF SYSTEM TIME, VACUUM, pg_sleep, psql's catalog
    /// queries).
    Recognized,
    Parsed(Vec<Statement>),
}

fn check_statement_text(sql: &str) -> Result<Piece> {
    if crate::copy::parse(sql)?.is_some() {
        return Err(SqlError::new(
            code::FEATURE_NOT_SUPPORTED,
            "COPY FROM STDIN must be sent as a query string of its own",
        ));
    }
    if crate::alter::maintenance(sql).is_some()
        || crate::pgcompat::is_pg_sleep(sql)
        || sql.contains("pg_catalog.")
        || admin::parse(sql)?.is_some()
    {
        return Ok(Piece::Recognized);
    }
    if let Some((rest, _)) = crate::aost::extract(sql)? {
        parse(&rest)?;
        return Ok(Piece::Recognized);
    }
    Ok(Piece::Parsed(parse(sql)?))
}

/// `sql` with every statement that starts with the keyword TABLE starting
/// with `SELECT * FROM` instead; `None` if there is none.
fn table_statements_as_selects(sql: &str) -> Option<String> {
    use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    let mut out = String::with_capacity(sql.len() + 16);
    let mut at_start = true;
    let mut changed = false;
    for t in &tokens {
        match t {
            Token::Whitespace(_) => {}
            Token::SemiColon => at_start = true,
            Token::Word(w)
                if at_start && w.quote_style.is_none() && w.value.eq_ignore_ascii_case("table") =>
            {
                out.push_str("SELECT * FROM");
                changed = true;
                at_start = false;
                continue;
            }
            _ => at_start = false,
        }
        // Comments are dropped: a line comment would need its newline.
        match t {
            Token::Whitespace(Whitespace::SingleLineComment { .. })
            | Token::Whitespace(Whitespace::MultiLineComment(_)) => out.push(' '),
            t => out.push_str(&t.to_string()),
        }
    }
    changed.then_some(out)
}

fn is_query_like(s: &Statement) -> bool {
    matches!(
        s,
        Statement::Query(_)
            | Statement::Insert(_)
            | Statement::Update(_)
            | Statement::Delete(_)
            | Statement::Explain { .. }
    )
}

impl Session {
    pub fn new(catalog: Arc<Catalog>, database: String, user: String) -> Self {
        Session {
            catalog,
            database,
            user,
            txn: TxnState::Idle,
            vars: BTreeMap::new(),
            in_flight: false,
            as_of: None,
            txn_as_of: None,
            after_retry_error: false,
            created_in_txn: Vec::new(),
            savepoints: Vec::new(),
            failed_txn: None,
            settings: None,
            sequence_values: Default::default(),
            backend_pid: 0,
            sql_prepared: HashMap::new(),
        }
    }

    /// What a statement's sequence functions need.
    fn sequence_access(&self) -> Arc<crate::sequences::SequenceAccess> {
        Arc::new(crate::sequences::SequenceAccess::new(
            self.catalog.clone(),
            self.database.clone(),
            self.search_path(),
            self.sequence_values.clone(),
        ))
    }

    /// The settings for current_setting(), built once until one may
    /// have changed.
    fn settings_snapshot(&mut self) -> Arc<BTreeMap<String, String>> {
        if let Some(s) = &self.settings {
            return s.clone();
        }
        let mut map = BTreeMap::new();
        let known = [
            "server_version",
            "server_version_num",
            "transaction_isolation",
            "default_transaction_isolation",
            "client_encoding",
            "server_encoding",
            "datestyle",
            "timezone",
            "standard_conforming_strings",
            "integer_datetimes",
            "search_path",
            "application_name",
            "max_identifier_length",
        ];
        let names: Vec<String> = known
            .iter()
            .map(|n| n.to_string())
            .chain(self.vars.keys().cloned())
            .collect();
        for n in names {
            if let Ok(v) = self.show(&n) {
                map.insert(n, v);
            }
        }
        let s = Arc::new(map);
        self.settings = Some(s.clone());
        s
    }

    /// The open transaction fails: later statements are refused until
    /// ROLLBACK (or ROLLBACK TO SAVEPOINT, when `recoverable` and a
    /// savepoint exists).
    fn fail_txn(&mut self, recoverable: bool) {
        if !matches!(self.txn, TxnState::Open(_)) {
            return;
        }
        if let TxnState::Open(txn) = std::mem::replace(&mut self.txn, TxnState::Failed) {
            if recoverable && !self.savepoints.is_empty() {
                self.failed_txn = Some(txn);
            }
        }
    }

    /// The transaction block ended (COMMIT, ROLLBACK): its savepoints go.
    fn end_block(&mut self) {
        self.savepoints.clear();
        self.failed_txn = None;
    }

    /// SAVEPOINT, ROLLBACK TO SAVEPOINT and RELEASE SAVEPOINT.
    fn savepoint_statement(&mut self, stmt: &Statement) -> Result<StmtResult> {
        let (name, tag) = match stmt {
            Statement::Savepoint { name } => (crate::plan::ident(name), "SAVEPOINT"),
            Statement::ReleaseSavepoint { name } => (crate::plan::ident(name), "RELEASE"),
            Statement::Rollback {
                savepoint: Some(name),
                ..
            } => (crate::plan::ident(name), "ROLLBACK"),
            _ => return Err(SqlError::internal("not a savepoint statement")),
        };
        if matches!(self.txn, TxnState::Idle) {
            return Err(SqlError::new(
                code::NO_ACTIVE_SQL_TRANSACTION,
                format!("{tag} can only be used in transaction blocks"),
            ));
        }
        let missing = || {
            SqlError::new(
                code::INVALID_SAVEPOINT_SPECIFICATION,
                format!("savepoint \"{name}\" does not exist"),
            )
        };
        let found = self.savepoints.iter().rposition(|(n, _)| *n == name);
        match (tag, &mut self.txn) {
            ("SAVEPOINT", TxnState::Open(txn)) => {
                let sp = txn.savepoint();
                self.savepoints.push((name, sp));
                Ok(StmtResult::Command("SAVEPOINT".into()))
            }
            ("RELEASE", TxnState::Open(_)) => {
                let i = found.ok_or_else(missing)?;
                self.savepoints.truncate(i);
                Ok(StmtResult::Command("RELEASE".into()))
            }
            ("ROLLBACK", TxnState::Open(txn)) => {
                let i = found.ok_or_else(missing)?;
                self.savepoints.truncate(i + 1);
                txn.rollback_to(&self.savepoints[i].1);
                Ok(StmtResult::Command("ROLLBACK".into()))
            }
            ("ROLLBACK", TxnState::Failed) => {
                let i = found.ok_or_else(missing)?;
                let Some(mut txn) = self.failed_txn.take() else {
                    return Err(SqlError::new(
                        code::SERIALIZATION_FAILURE,
                        "restart transaction: the transaction was aborted and cannot continue \
                         from a savepoint",
                    )
                    .with_hint("ROLLBACK and retry the whole transaction"));
                };
                self.savepoints.truncate(i + 1);
                txn.rollback_to(&self.savepoints[i].1);
                self.txn = TxnState::Open(txn);
                Ok(StmtResult::Command("ROLLBACK".into()))
            }
            _ => Err(SqlError::new(
                code::IN_FAILED_SQL_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            )),
        }
    }

    /// Called when a statement starts: aborts the explicit transaction of
    /// a statement that never returned (cancelled), whose writes may be
    /// half-buffered.
    fn start_statement(&mut self) {
        if std::mem::replace(&mut self.in_flight, true) {
            self.fail_txn(false);
        }
    }

    /// A COPY FROM STDIN ended: the explicit transaction it was lent
    /// (if any) comes back, failed if the copy failed.
    pub fn copy_finished(&mut self, ok: bool, lent: Option<Txn>) {
        if let Some(txn) = lent {
            self.txn = if ok {
                TxnState::Open(txn)
            } else {
                TxnState::Failed
            };
        }
    }

    /// Starts a COPY FROM STDIN (not in a failed transaction). Inside
    /// BEGIN the open transaction is lent to the copy (the session counts
    /// as failed until it comes back).
    async fn start_copy(&mut self, stmt: &crate::copy::CopyStmt) -> Result<StmtResult> {
        if let TxnState::Failed = self.txn {
            return Err(SqlError::new(
                code::IN_FAILED_SQL_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        let read_only = self
            .vars
            .get(crate::objects::READ_ONLY_VAR)
            .is_some_and(|v| v == "on");
        if read_only && matches!(self.txn, TxnState::Open(_)) {
            self.fail_txn(true);
            return Err(SqlError::new(
                code::READ_ONLY_SQL_TRANSACTION,
                "cannot execute COPY FROM in a read-only transaction",
            ));
        }
        let lent = match std::mem::replace(&mut self.txn, TxnState::Failed) {
            TxnState::Open(txn) => Some(txn),
            other => {
                self.txn = other;
                None
            }
        };
        let mut stmt = stmt.clone();
        let path = self.search_path();
        stmt.table = self
            .catalog
            .resolve(&self.database, &path, &stmt.table)
            .await?;
        let c =
            crate::copy::CopyIn::start(self.catalog.clone(), &self.database, stmt, lent).await?;
        Ok(StmtResult::CopyIn(Box::new(
            c.with_sequences(self.sequence_access()),
        )))
    }

    /// Whether an explicit transaction is open (or failed).
    pub fn in_transaction(&self) -> bool {
        !matches!(self.txn, TxnState::Idle)
    }

    /// Runs a simple-protocol query string: every statement in order,
    /// stopping at the first error.
    pub async fn execute_sql(&mut self, sql: &str) -> Vec<Result<StmtResult>> {
        self.start_statement();
        let r = self.execute_sql_inner(sql).await;
        self.in_flight = false;
        // Any error inside a transaction block aborts it, as in
        // PostgreSQL: one found before a statement ran (a syntax error)
        // as much as one a statement raised.
        if r.iter().any(|x| x.is_err()) {
            self.fail_txn(true);
        }
        r
    }

    async fn execute_sql_inner(&mut self, sql: &str) -> Vec<Result<StmtResult>> {
        let texts = crate::split::statements(sql);
        if texts.len() <= 1 {
            return self.execute_statement_text(sql).await;
        }
        // PostgreSQL parses the whole string before running any of it: a
        // syntax error anywhere runs nothing.
        let mut pieces = Vec::with_capacity(texts.len());
        for t in &texts {
            match check_statement_text(t) {
                Ok(p) => pieces.push(p),
                Err(e) => return vec![Err(e)],
            }
        }
        let dml_only = pieces.iter().all(|p| match p {
            Piece::Parsed(stmts) => stmts.iter().all(is_query_like),
            Piece::Recognized => false,
        });
        if dml_only && matches!(self.txn, TxnState::Idle) {
            let stmts: Vec<Statement> = pieces
                .into_iter()
                .flat_map(|p| match p {
                    Piece::Parsed(stmts) => stmts,
                    Piece::Recognized => vec![],
                })
                .collect();
            return self.run_implicit_block(&stmts).await;
        }
        let mut out = Vec::new();
        for (text, piece) in texts.into_iter().zip(pieces) {
            let results = match piece {
                Piece::Parsed(stmts) => self.run_statements(&stmts).await,
                Piece::Recognized => self.execute_statement_text(text).await,
            };
            let failed = results.iter().any(|r| r.is_err());
            out.extend(results);
            if failed {
                break;
            }
        }
        out
    }

    /// Runs `stmts` in order, stopping at the first error (its result is
    /// the last one).
    async fn run_statements(&mut self, stmts: &[Statement]) -> Vec<Result<StmtResult>> {
        let mut out = Vec::with_capacity(stmts.len());
        for s in stmts {
            let r = self.run_statement(s, None, &[]).await;
            let failed = r.is_err();
            out.push(r);
            if failed {
                break;
            }
        }
        out
    }

    /// Runs the statements of one query string (queries and DML only,
    /// outside BEGIN) as one transaction, as PostgreSQL does: all of them
    /// commit or none. Nothing has been sent to the client yet, so a
    /// serialization failure or deadlock runs the whole block again (up
    /// to [`IMPLICIT_RETRIES`] times).
    async fn run_implicit_block(&mut self, stmts: &[Statement]) -> Vec<Result<StmtResult>> {
        let after_retry_error = self.after_retry_error;
        let mut attempt = 0;
        loop {
            let mut txn = Txn::new(self.catalog.kv().clone());
            txn.set_explicit();
            txn.kv().set_isolation(self.default_isolation());
            self.txn = TxnState::Open(txn);
            self.vars
                .insert(crate::objects::READ_ONLY_VAR.into(), "off".into());
            let mut out = self.run_statements(stmts).await;
            let failure = match out.last() {
                Some(Err(_)) => out.pop().and_then(Result::err),
                _ => None,
            };
            let state = std::mem::replace(&mut self.txn, TxnState::Idle);
            self.end_block();
            self.after_retry_error = after_retry_error;
            let e = match (failure, state) {
                (None, TxnState::Open(txn)) => match txn.commit().await {
                    Ok(()) => return out,
                    Err(e) => e,
                },
                (Some(e), _) => e,
                (None, _) => SqlError::internal("a query string's transaction ended early"),
            };
            if is_retry_error(&e) && attempt < IMPLICIT_RETRIES {
                attempt += 1;
                retry_backoff(attempt).await;
                continue;
            }
            out.push(Err(e));
            return out;
        }
    }

    /// Runs the text of one statement (or a string the recognizers below
    /// take whole).
    async fn execute_statement_text(&mut self, sql: &str) -> Vec<Result<StmtResult>> {
        match crate::copy::parse(sql) {
            Ok(Some(c)) => return vec![self.start_copy(&c).await],
            Ok(None) => {}
            Err(e) => return vec![Err(e)],
        }
        if !matches!(self.txn, TxnState::Failed) {
            if let Some(r) = crate::pgcompat::pg_sleep(sql).await {
                return vec![Ok(r)];
            }
            if let Some(r) = crate::alter::maintenance(sql) {
                return vec![Ok(r)];
            }
        }
        if !matches!(self.txn, TxnState::Failed) {
            match crate::pgcompat::answer(sql, &self.catalog, &self.database, &self.user).await {
                Ok(Some(r)) => return vec![Ok(r)],
                Ok(None) => {}
                Err(e) => return vec![Err(e)],
            }
        }
        match admin::parse(sql) {
            Ok(Some(a)) => return vec![self.run_admin(&a, &[]).await],
            Ok(None) => {}
            Err(e) => return vec![Err(e)],
        }
        match crate::aost::extract(sql) {
            Ok(Some((rest, as_of))) => {
                let r = match parse(&rest) {
                    Ok(mut stmts) if stmts.len() == 1 => {
                        let stmt = stmts.pop().expect("one statement");
                        self.run_as_of(&stmt, &as_of, None, &[]).await
                    }
                    Ok(_) => Err(SqlError::syntax(
                        "AS OF SYSTEM TIME: send the statement on its own, not with others",
                    )),
                    Err(e) => Err(e),
                };
                return vec![r];
            }
            Ok(None) => {}
            Err(e) => return vec![Err(e)],
        }
        match parse(sql) {
            Ok(stmts) if stmts.is_empty() => vec![Ok(StmtResult::Empty)],
            Ok(stmts) => self.run_statements(&stmts).await,
            Err(e) => vec![Err(e)],
        }
    }

    /// The session's `search_path` as a list of schemas (`$user` is the
    /// session's user).
    pub fn search_path(&self) -> Vec<String> {
        let path = self
            .vars
            .get("search_path")
            .map(String::as_str)
            .unwrap_or("\"$user\", public");
        path.split(',')
            .map(|s| s.trim().trim_matches('"'))
            .filter(|s| !s.is_empty())
            .map(|s| match s {
                "$user" => self.user.clone(),
                s => s.to_string(),
            })
            .collect()
    }

    /// The name of the existing relation `n` names, an unqualified name
    /// looked up along the search path.
    async fn existing_name(&self, n: &ast::ObjectName) -> Result<String> {
        let path = self.search_path();
        crate::objects::existing_name(&self.catalog, &self.database, &path, n).await
    }

    /// The name a relation created as `n` gets: an unqualified one goes
    /// into the first schema of the search path that exists.
    async fn new_name(&self, n: &ast::ObjectName) -> Result<String> {
        let path = self.search_path();
        crate::objects::new_name(&self.catalog, &self.database, &path, n).await
    }

    async fn bind(
        &self,
        stmt: &Statement,
        params: Vec<DataType>,
    ) -> Result<(Bound, Vec<DataType>)> {
        let names = plan::referenced_tables(stmt);
        let path = self.search_path();
        let rels =
            crate::objects::fetch_relations(&self.catalog, &self.database, &path, names).await?;
        let tables = rels.tables;
        let mut b = Binder::new(&tables, params).with_views(rels.views);
        let bound = b.bind_statement(stmt)?;
        Ok((bound, b.param_types()))
    }

    /// Parses and binds one statement for the extended protocol.
    pub async fn prepare(&mut self, sql: &str, declared: &[Option<DataType>]) -> Result<Prepared> {
        let r = self.prepare_inner(sql, declared).await;
        if r.is_err() {
            // A statement that does not parse or bind aborts the block.
            self.fail_txn(true);
        }
        r
    }

    async fn prepare_inner(
        &mut self,
        sql: &str,
        declared: &[Option<DataType>],
    ) -> Result<Prepared> {
        if let Some(c) = crate::copy::parse(sql)? {
            return Ok(Prepared {
                copy: Some(c),
                ..Prepared::special(sql, self.catalog.cached_version())
            });
        }
        if let Some(a) = admin::parse(sql)? {
            let declared: Vec<DataType> = declared
                .iter()
                .map(|t| t.clone().unwrap_or(DataType::Unknown))
                .collect();
            let param_types = match &a {
                AdminStmt::SplitAt { query, .. } => {
                    self.catalog.refresh().await?;
                    let stmt = Statement::Query(query.clone());
                    self.bind(&stmt, declared).await?.1
                }
                AdminStmt::ShowRanges { .. } => declared,
            };
            return Ok(Prepared {
                param_types,
                columns: a.columns(),
                admin: Some(a),
                ..Prepared::special(sql, self.catalog.cached_version())
            });
        }
        if let Some(StmtResult::Command(tag)) = crate::alter::maintenance(sql) {
            return Ok(Prepared {
                command: Some(tag),
                ..Prepared::special(sql, self.catalog.cached_version())
            });
        }
        let (text, as_of) = match crate::aost::extract(sql)? {
            Some((rest, as_of)) => (rest, Some(as_of)),
            None => (sql.to_string(), None),
        };
        let mut stmts = parse(&text)?;
        if stmts.len() > 1 {
            return Err(SqlError::syntax(
                "cannot insert multiple commands into a prepared statement",
            ));
        }
        let stmt = stmts.pop();
        let declared: Vec<DataType> = declared
            .iter()
            .map(|t| t.clone().unwrap_or(DataType::Unknown))
            .collect();
        let version = self.catalog.refresh().await?;
        let (bound, param_types, columns) = match &stmt {
            Some(s) if is_query_like(s) => {
                let (b, p) = self.bind(s, declared).await?;
                let cols = b.columns();
                (Some(b), p, cols)
            }
            Some(Statement::ShowVariable { variable }) => {
                let name = variable_name(variable);
                (None, declared, vec![(name, DataType::Text)])
            }
            Some(Statement::ShowTables { .. }) => (None, declared, show_tables_columns()),
            Some(Statement::ShowCreate { .. }) => (None, declared, show_create_columns()),
            _ => (None, declared, vec![]),
        };
        Ok(Prepared {
            sql: sql.to_string(),
            stmt,
            bound,
            catalog_version: version,
            param_types,
            columns,
            admin: None,
            copy: None,
            as_of,
            command: None,
        })
    }

    /// `PREPARE name [(types)] AS statement`: parsed and bound once, as
    /// for the extended protocol's Parse.
    async fn sql_prepare(
        &mut self,
        name: &ast::Ident,
        data_types: &[ast::DataType],
        statement: &Statement,
    ) -> Result<StmtResult> {
        let name = plan::ident(name);
        if self.sql_prepared.contains_key(&name) {
            return Err(SqlError::new(
                "42P05",
                format!("prepared statement \"{name}\" already exists"),
            ));
        }
        let declared = data_types
            .iter()
            .map(|t| Ok(Some(plan::data_type(t)?.0)))
            .collect::<Result<Vec<_>>>()?;
        let prepared = self.prepare(&statement.to_string(), &declared).await?;
        self.sql_prepared.insert(name, Arc::new(prepared));
        Ok(StmtResult::Command("PREPARE".into()))
    }

    /// `EXECUTE name [(values)]`: the values are constant expressions,
    /// converted to the statement's parameter types.
    async fn sql_execute(
        &mut self,
        name: &ast::ObjectName,
        values: &[ast::Expr],
    ) -> Result<StmtResult> {
        let name = plan::table_name(name)?;
        let prepared = self
            .sql_prepared
            .get(&name)
            .cloned()
            .ok_or_else(|| no_prepared_statement(&name))?;
        if values.len() != prepared.param_types.len() {
            return Err(SqlError::new(
                code::SYNTAX_ERROR,
                format!("wrong number of parameters for prepared statement \"{name}\""),
            )
            .with_detail(format!(
                "Expected {} parameters but got {}.",
                prepared.param_types.len(),
                values.len()
            )));
        }
        let ctx = crate::expr::EvalCtx {
            now: crate::types::now_micros(),
            database: self.database.clone(),
            user: self.user.clone(),
            ..Default::default()
        };
        let no_tables = HashMap::new();
        let mut params = Vec::with_capacity(values.len());
        for (value, ty) in values.iter().zip(&prepared.param_types) {
            let ty = match ty {
                DataType::Unknown => DataType::Text,
                t => t.clone(),
            };
            let e = Binder::new(&no_tables, vec![]).bind_default(&value.to_string(), &ty)?;
            params.push(crate::types::coerce_for_column(e.eval(&[], &ctx)?, &ty)?);
        }
        Box::pin(self.execute_prepared_inner(&prepared, &params)).await
    }

    /// Runs a prepared statement with decoded parameter values.
    pub async fn execute_prepared(&mut self, p: &Prepared, params: &[Datum]) -> Result<StmtResult> {
        self.start_statement();
        let r = self.execute_prepared_inner(p, params).await;
        self.in_flight = false;
        if r.is_err() {
            self.fail_txn(true);
        }
        r
    }

    async fn execute_prepared_inner(
        &mut self,
        p: &Prepared,
        params: &[Datum],
    ) -> Result<StmtResult> {
        if let Some(c) = &p.copy {
            return self.start_copy(c).await;
        }
        if let Some(a) = &p.admin {
            return self.run_admin(a, params).await;
        }
        if let Some(tag) = &p.command {
            if let TxnState::Failed = self.txn {
                return Err(SqlError::new(
                    code::IN_FAILED_SQL_TRANSACTION,
                    "current transaction is aborted, commands ignored until end of transaction block",
                ));
            }
            return Ok(StmtResult::Command(tag.clone()));
        }
        let Some(stmt) = &p.stmt else {
            return Ok(StmtResult::Empty);
        };
        if params.len() < p.param_types.len() {
            return Err(SqlError::new(
                code::PROTOCOL_VIOLATION,
                format!(
                    "bind message supplies {} parameters, but prepared statement requires {}",
                    params.len(),
                    p.param_types.len()
                ),
            ));
        }
        let prebound = match &p.bound {
            Some(b) if self.catalog.cached_version() == p.catalog_version => Some(b),
            _ => None,
        };
        let prebound = prebound.map(|b| (b, p.catalog_version));
        match &p.as_of {
            Some(as_of) => self.run_as_of(stmt, as_of, prebound, params).await,
            None => self.run_statement(stmt, prebound, params).await,
        }
    }

    /// Runs a statement that carried `AS OF SYSTEM TIME`: a SELECT reads
    /// at that time; a BEGIN opens a read-only transaction there.
    async fn run_as_of(
        &mut self,
        stmt: &Statement,
        as_of: &crate::aost::AsOf,
        prebound: Option<(&Bound, u64)>,
        params: &[Datum],
    ) -> Result<StmtResult> {
        if let TxnState::Failed = self.txn {
            return self.run_statement(stmt, prebound, params).await;
        }
        let ts = as_of.resolve(self.catalog.kv().clock().now())?;
        match stmt {
            Statement::StartTransaction { begin, .. } => {
                let tag = begin_tag(*begin);
                if !matches!(self.txn, TxnState::Idle) {
                    return Err(SqlError::new(
                        code::ACTIVE_SQL_TRANSACTION,
                        "AS OF SYSTEM TIME: a transaction is already in progress",
                    ));
                }
                self.txn = TxnState::Open(Txn::at(self.catalog.kv().clone(), ts));
                self.txn_as_of = Some(ts);
                self.vars
                    .insert(crate::objects::READ_ONLY_VAR.into(), "on".into());
                self.settings = None;
                Ok(StmtResult::Begin(tag))
            }
            Statement::Query(q) if !q.locks.is_empty() => Err(SqlError::new(
                code::FEATURE_NOT_SUPPORTED,
                "AS OF SYSTEM TIME cannot lock rows (FOR UPDATE / FOR SHARE)",
            )),
            Statement::Query(_) => {
                if matches!(self.txn, TxnState::Open(_)) && self.txn_as_of != Some(ts) {
                    let e = SqlError::new(
                        code::FEATURE_NOT_SUPPORTED,
                        "AS OF SYSTEM TIME inside a transaction must name the transaction's \
                         own time",
                    )
                    .with_hint("put AS OF SYSTEM TIME on the BEGIN");
                    self.fail_txn(true);
                    return Err(e);
                }
                self.as_of = Some(ts);
                let r = self.run_statement(stmt, prebound, params).await;
                self.as_of = None;
                r
            }
            _ => Err(SqlError::new(
                code::FEATURE_NOT_SUPPORTED,
                "AS OF SYSTEM TIME is only allowed on SELECT and BEGIN",
            )),
        }
    }

    /// Executes one statement with the transaction rules above.
    async fn run_statement(
        &mut self,
        stmt: &Statement,
        prebound: Option<(&Bound, u64)>,
        params: &[Datum],
    ) -> Result<StmtResult> {
        if !is_query_like(stmt) {
            self.settings = None;
        }
        if let TxnState::Failed = self.txn {
            return match stmt {
                Statement::Rollback {
                    savepoint: Some(_),
                    ..
                } => self.savepoint_statement(stmt),
                Statement::Rollback { .. } | Statement::Commit { .. } => {
                    self.txn = TxnState::Idle;
                    self.end_block();
                    self.undo_created_tables().await?;
                    Ok(StmtResult::End("ROLLBACK".into()))
                }
                _ => Err(SqlError::new(
                    code::IN_FAILED_SQL_TRANSACTION,
                    "current transaction is aborted, commands ignored until end of transaction block",
                )),
            };
        }
        let explicit = matches!(self.txn, TxnState::Open(_));
        let r = self.dispatch(stmt, prebound, params).await;
        if !is_query_like(stmt) {
            self.settings = None;
        }
        if matches!(self.txn, TxnState::Idle) {
            self.end_block();
        }
        if let Err(e) = &r {
            // Errors of the transaction itself (40001, 40P01, an unknown
            // commit outcome, a cancel, an internal or connection error)
            // leave nothing to continue from a savepoint.
            let fatal = ["40", "57", "58", "XX", "08", "53"]
                .iter()
                .any(|class| e.code.starts_with(class));
            self.fail_txn(!fatal);
            if explicit && is_retry_error(e) {
                self.after_retry_error = true;
            }
        }
        r
    }

    async fn dispatch(
        &mut self,
        stmt: &Statement,
        prebound: Option<(&Bound, u64)>,
        params: &[Datum],
    ) -> Result<StmtResult> {
        if !matches!(self.txn, TxnState::Idle)
            && self
                .vars
                .get(crate::objects::READ_ONLY_VAR)
                .map(String::as_str)
                == Some("on")
        {
            crate::objects::check_read_only(stmt)?;
        }
        match stmt {
            Statement::StartTransaction { modes, begin, .. } => {
                let tag = begin_tag(*begin);
                if let TxnState::Idle = self.txn {
                    let mut txn = Txn::new(self.catalog.kv().clone());
                    txn.set_explicit();
                    let level = requested_isolation(modes).unwrap_or(self.default_isolation());
                    txn.kv().set_isolation(level);
                    if self.after_retry_error {
                        txn.lock_point_reads();
                    }
                    self.txn = TxnState::Open(txn);
                    self.txn_as_of = None;
                    let ro = crate::objects::is_read_only(modes);
                    self.vars.insert(
                        crate::objects::READ_ONLY_VAR.into(),
                        if ro { "on" } else { "off" }.into(),
                    );
                }
                Ok(StmtResult::Begin(tag))
            }
            // SELECT ... INTO t: CREATE TABLE t AS SELECT ...
            Statement::Query(q) if select_into(q).is_some() => {
                let (name, q) = select_into(q).expect("checked");
                let stmts = parse(&format!("CREATE TABLE {name} AS {q}"))?;
                let Some(Statement::CreateTable(ct)) = stmts.first() else {
                    return Err(SqlError::internal("SELECT INTO: no CREATE TABLE"));
                };
                Box::pin(self.create_table_as(ct)).await
            }
            Statement::CreateView(cv) => {
                let path = self.search_path();
                crate::objects::create_view(&self.catalog, &self.database, &path, cv).await?;
                Ok(StmtResult::Command("CREATE VIEW".into()))
            }
            Statement::Drop {
                object_type: ast::ObjectType::View,
                if_exists,
                names,
                ..
            } => {
                let path = self.search_path();
                crate::objects::drop_views(&self.catalog, &self.database, &path, names, *if_exists)
                    .await?;
                Ok(StmtResult::Command("DROP VIEW".into()))
            }
            Statement::CreateSequence {
                temporary,
                if_not_exists,
                name,
                sequence_options,
            } => {
                let path = self.search_path();
                crate::sequences::create_sequence(
                    &self.catalog,
                    &self.database,
                    &path,
                    name,
                    *if_not_exists,
                    *temporary,
                    sequence_options,
                )
                .await?;
                Ok(StmtResult::Command("CREATE SEQUENCE".into()))
            }
            Statement::Drop {
                object_type: ast::ObjectType::Sequence,
                if_exists,
                names,
                ..
            } => {
                let path = self.search_path();
                crate::sequences::drop_sequences(
                    &self.catalog,
                    &self.database,
                    &path,
                    names,
                    *if_exists,
                )
                .await?;
                Ok(StmtResult::Command("DROP SEQUENCE".into()))
            }
            Statement::CreateRole(_)
            | Statement::CreateUser(_)
            | Statement::Drop {
                object_type: ast::ObjectType::Role | ast::ObjectType::User,
                ..
            } => crate::objects::role_statement(&self.catalog, stmt).await,
            Statement::Commit { .. } => {
                match std::mem::replace(&mut self.txn, TxnState::Idle) {
                    TxnState::Open(txn) => {
                        if let Err(e) = txn.commit().await {
                            self.undo_created_tables().await?;
                            return Err(e);
                        }
                        self.after_retry_error = false;
                        self.created_in_txn.clear();
                    }
                    TxnState::Idle | TxnState::Failed => {}
                }
                Ok(StmtResult::End("COMMIT".into()))
            }
            Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. }
            | Statement::Rollback {
                savepoint: Some(_), ..
            } => self.savepoint_statement(stmt),
            Statement::Rollback {
                savepoint: None, ..
            } => {
                self.txn = TxnState::Idle;
                self.undo_created_tables().await?;
                Ok(StmtResult::End("ROLLBACK".into()))
            }
            Statement::Set(set) => self.set(set),
            Statement::Reset(r) => {
                match &r.reset {
                    // Back to the defaults; the open transaction's own
                    // settings stay.
                    ast::Reset::ALL => self.vars.retain(|k, _| k == crate::objects::READ_ONLY_VAR),
                    ast::Reset::ConfigurationParameter(p) => {
                        let name = p.to_string().to_lowercase();
                        if name != crate::objects::READ_ONLY_VAR {
                            self.vars.remove(&name);
                        }
                    }
                    ast::Reset::SessionAuthorization => {}
                }
                Ok(StmtResult::Command("RESET".into()))
            }
            Statement::ShowVariable { variable } => {
                let name = variable_name(variable);
                let value = self.show(&name)?;
                Ok(StmtResult::Rows {
                    columns: vec![(name, DataType::Text)],
                    rows: vec![vec![Datum::Text(value)]],
                    tag: "SHOW".into(),
                })
            }
            Statement::ShowTables { .. } => {
                self.catalog.refresh().await?;
                let names = self.catalog.table_names(&self.database).await?;
                Ok(StmtResult::Rows {
                    columns: show_tables_columns(),
                    rows: names
                        .iter()
                        .map(|n| {
                            let (schema, name) = crate::catalog::split_name(n);
                            vec![Datum::Text(schema.into()), Datum::Text(name.into())]
                        })
                        .collect(),
                    tag: "SHOW".into(),
                })
            }
            Statement::ShowCreate {
                obj_type: ast::ShowCreateObject::Table,
                obj_name,
            } => {
                self.catalog.refresh().await?;
                let name = self.existing_name(obj_name).await?;
                let desc = self
                    .catalog
                    .table(&self.database, &name)
                    .await?
                    .ok_or_else(|| SqlError::undefined_table(&name))?;
                Ok(StmtResult::Rows {
                    columns: show_create_columns(),
                    rows: vec![vec![
                        Datum::Text(desc.name.clone()),
                        Datum::Text(desc.create_statement()),
                    ]],
                    tag: "SHOW".into(),
                })
            }
            Statement::CreateDatabase {
                db_name,
                if_not_exists,
                ..
            } => {
                let name = plan::table_name(db_name)?;
                match self.catalog.create_database(&name).await {
                    Err(e) if e.code == code::DUPLICATE_DATABASE && *if_not_exists => {}
                    other => other?,
                }
                Ok(StmtResult::Command("CREATE DATABASE".into()))
            }
            Statement::Drop {
                object_type: ast::ObjectType::Database,
                if_exists,
                names,
                ..
            } => {
                for n in names {
                    self.drop_database(&plan::table_name(n)?, *if_exists)
                        .await?;
                }
                Ok(StmtResult::Command("DROP DATABASE".into()))
            }
            Statement::CreateSchema {
                schema_name,
                if_not_exists,
                ..
            } => {
                let name = match schema_name {
                    ast::SchemaName::Simple(n) => plan::table_name(n)?,
                    _ => return Err(SqlError::unsupported("CREATE SCHEMA ... AUTHORIZATION")),
                };
                self.catalog.refresh().await?;
                match self.catalog.create_schema(&self.database, &name).await {
                    Err(e) if e.code == code::DUPLICATE_SCHEMA && *if_not_exists => {}
                    other => other?,
                }
                Ok(StmtResult::Command("CREATE SCHEMA".into()))
            }
            Statement::Drop {
                object_type: ast::ObjectType::Schema,
                if_exists,
                names,
                cascade,
                ..
            } => {
                self.drop_schemas(names, *if_exists, *cascade).await?;
                Ok(StmtResult::Command("DROP SCHEMA".into()))
            }
            Statement::CreateTable(ct) if ct.query.is_some() => self.create_table_as(ct).await,
            Statement::CreateTable(ct) => {
                self.catalog.refresh().await?;
                let name = self.new_name(&ct.name).await?;
                let existed = self.catalog.table(&self.database, &name).await?.is_some();
                let r = self.create_table(ct).await?;
                if matches!(self.txn, TxnState::Open(_)) && !existed {
                    self.created_in_txn.push(name);
                }
                Ok(r)
            }
            Statement::Drop {
                object_type: ast::ObjectType::Table,
                if_exists,
                names,
                ..
            } => self.drop_tables(names, *if_exists).await,
            Statement::Truncate(t) => self.truncate(t).await,
            Statement::AlterTable(at) => {
                self.catalog.refresh().await?;
                let name = self.existing_name(&at.name).await?;
                let unique = |op: &ast::AlterTableOperation| {
                    matches!(
                        op,
                        ast::AlterTableOperation::AddConstraint {
                            constraint: ast::TableConstraint::Unique(_),
                            ..
                        }
                    )
                };
                let foreign = |op: &ast::AlterTableOperation| {
                    matches!(
                        op,
                        ast::AlterTableOperation::AddConstraint {
                            constraint: ast::TableConstraint::ForeignKey(_),
                            ..
                        }
                    )
                };
                if at.operations.iter().any(foreign) {
                    if at.operations.len() > 1 {
                        return Err(SqlError::unsupported(
                            "ADD FOREIGN KEY together with other ALTER TABLE operations",
                        ));
                    }
                    if let ast::AlterTableOperation::AddConstraint {
                        constraint: ast::TableConstraint::ForeignKey(f),
                        ..
                    } = &at.operations[0]
                    {
                        self.add_foreign_key(&at.name, &name, f).await?;
                    }
                    return Ok(StmtResult::Command("ALTER TABLE".into()));
                }
                if at.operations.iter().any(unique) {
                    if !at.operations.iter().all(unique) {
                        return Err(SqlError::unsupported(
                            "ADD UNIQUE together with other ALTER TABLE operations",
                        ));
                    }
                    for op in &at.operations {
                        self.add_unique_constraint(&at.name, &name, op).await?;
                    }
                    return Ok(StmtResult::Command("ALTER TABLE".into()));
                }
                crate::alter::alter_table(&self.catalog, &self.database, &name, at).await
            }
            Statement::CreateIndex(ci) => self.create_index(ci).await,
            Statement::Drop {
                object_type: ast::ObjectType::Index,
                if_exists,
                names,
                ..
            } => self.drop_indexes(names, *if_exists).await,
            s if is_query_like(s) => self.run_dml(s, prebound, params).await,
            Statement::Prepare {
                name,
                data_types,
                statement,
            } => self.sql_prepare(name, data_types, statement).await,
            Statement::Execute {
                name: Some(name),
                parameters,
                immediate: false,
                ..
            } => self.sql_execute(name, parameters).await,
            Statement::Deallocate { name, .. } => {
                let name = plan::ident(name);
                if name == "all" {
                    self.sql_prepared.clear();
                    return Ok(StmtResult::Command("DEALLOCATE ALL".into()));
                }
                if self.sql_prepared.remove(&name).is_none() {
                    return Err(no_prepared_statement(&name));
                }
                Ok(StmtResult::Command("DEALLOCATE".into()))
            }
            Statement::Discard { object_type } => {
                match object_type {
                    ast::DiscardObject::ALL => {
                        if !matches!(self.txn, TxnState::Idle) {
                            return Err(SqlError::new(
                                code::ACTIVE_SQL_TRANSACTION,
                                "DISCARD ALL cannot run inside a transaction block",
                            ));
                        }
                        // Prepared statements, settings, sequence state.
                        self.sql_prepared.clear();
                        self.vars.retain(|k, _| k == crate::objects::READ_ONLY_VAR);
                        self.sequence_values.lock().clear();
                    }
                    ast::DiscardObject::SEQUENCES => self.sequence_values.lock().clear(),
                    // Plans are re-bound whenever the catalog changes, and
                    // there are no temporary objects to drop.
                    ast::DiscardObject::PLANS | ast::DiscardObject::TEMP => {}
                }
                Ok(StmtResult::Command(format!("DISCARD {object_type}")))
            }
            other => Err(SqlError::unsupported(format!(
                "statement not supported yet: {}",
                other
                    .to_string()
                    .split_whitespace()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" ")
            ))),
        }
    }

    async fn run_dml(
        &mut self,
        stmt: &Statement,
        prebound: Option<(&Bound, u64)>,
        params: &[Datum],
    ) -> Result<StmtResult> {
        let version = self.catalog.refresh().await?;
        let owned;
        let bound = match prebound {
            Some((b, v)) if v == version => b,
            _ => {
                let declared = vec![DataType::Unknown; params.len()];
                owned = self.bind(stmt, declared).await?.0;
                &owned
            }
        };
        let path = self.search_path();
        let schemas = self.catalog.schema_names(&self.database).await?;
        let settings = Some(self.settings_snapshot());
        let changes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let ctx = EvalCtx {
            setting_changes: Some(changes.clone()),
            params: params.to_vec(),
            now: types::now_micros(),
            database: self.database.clone(),
            user: self.user.clone(),
            settings,
            sequences: Some(self.sequence_access()),
            backend_pid: self.backend_pid,
            schema: path
                .into_iter()
                .find(|s| schemas.contains(s))
                .unwrap_or_default(),
            ..Default::default()
        };
        let out = match &mut self.txn {
            TxnState::Open(txn) => {
                // READ COMMITTED: every statement sees what committed before it.
                txn.kv().new_statement();
                exec::execute(bound, &self.catalog, txn, &ctx).await?
            }
            _ if self.as_of.is_some() => {
                let ts = self.as_of.expect("checked");
                let mut txn = Txn::at(self.catalog.kv().clone(), ts);
                exec::execute(bound, &self.catalog, &mut txn, &ctx).await?
            }
            _ => {
                if let Bound::Query(q) = bound {
                    if let Some(rows) = exec::stream_query(q, self.catalog.kv().clone(), &ctx)? {
                        return Ok(StmtResult::RowStream {
                            columns: q.columns.clone(),
                            rows,
                        });
                    }
                }
                let mut attempt = 0;
                loop {
                    let mut txn = Txn::new(self.catalog.kv().clone());
                    // Nothing was sent to the client yet: a retry error
                    // while reading or committing restarts the statement.
                    let r = match exec::execute(bound, &self.catalog, &mut txn, &ctx).await {
                        Ok(out) => txn.commit().await.map(|()| out),
                        Err(e) => Err(e),
                    };
                    match r {
                        Ok(out) => break out,
                        Err(e) if is_retry_error(&e) && attempt < IMPLICIT_RETRIES => {
                            attempt += 1;
                            retry_backoff(attempt).await;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        };
        // set_config() calls take effect now, as SET would.
        let changes = std::mem::take(
            &mut *changes
                .lock()
                .map_err(|_| SqlError::internal("settings lock poisoned"))?,
        );
        for (name, value) in changes {
            match value {
                Some(v) => self.vars.insert(name, v),
                None => self.vars.remove(&name),
            };
            self.settings = None;
        }
        Ok(match out {
            Output::Rows { columns, rows } => StmtResult::Rows {
                columns,
                rows,
                tag: "SELECT".into(),
            },
            Output::Count {
                tag,
                count,
                returning,
            } => {
                let tag = if tag == "INSERT" { "INSERT 0" } else { tag };
                match returning {
                    Some((columns, rows)) => StmtResult::Rows {
                        columns,
                        rows,
                        tag: tag.into(),
                    },
                    None => StmtResult::Command(format!("{tag} {count}")),
                }
            }
        })
    }

    // -- SPLIT AT, SHOW RANGES ---------------------------------------------

    async fn run_admin(&mut self, a: &AdminStmt, params: &[Datum]) -> Result<StmtResult> {
        if let TxnState::Failed = self.txn {
            return Err(SqlError::new(
                code::IN_FAILED_SQL_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        let r = self.admin(a, params).await;
        if r.is_err() {
            self.fail_txn(true);
        }
        r
    }

    async fn admin(&mut self, a: &AdminStmt, params: &[Datum]) -> Result<StmtResult> {
        use crate::encoding::{
            index_prefix, pretty_key, pretty_relative, row_key, table_prefix, PRIMARY_INDEX_ID,
        };
        self.catalog.refresh().await?;
        let columns = a.columns();
        let (AdminStmt::SplitAt { table, .. } | AdminStmt::ShowRanges { table, .. }) = a;
        let path = self.search_path();
        let table = &self.catalog.resolve(&self.database, &path, table).await?;
        let desc = self
            .catalog
            .table(&self.database, table)
            .await?
            .ok_or_else(|| SqlError::undefined_table(table))?;
        let kv = self.catalog.kv().clone();
        let primary = index_prefix(desc.id, PRIMARY_INDEX_ID);
        match a {
            AdminStmt::SplitAt { query, .. } => {
                let stmt = Statement::Query(query.clone());
                let (bound, _) = self
                    .bind(&stmt, vec![DataType::Unknown; params.len()])
                    .await?;
                let Bound::Query(q) = bound else {
                    return Err(SqlError::internal("SPLIT AT data is not a query"));
                };
                let ctx = EvalCtx {
                    params: params.to_vec(),
                    now: types::now_micros(),
                    database: self.database.clone(),
                    ..Default::default()
                };
                let txn = Txn::new(kv.clone());
                let data = exec::run(&q.plan, &txn, &ctx).await?;
                let mut rows = Vec::new();
                for r in data {
                    if r.len() > desc.primary_key.len() {
                        return Err(SqlError::new(
                            code::SYNTAX_ERROR,
                            "too many columns in SPLIT AT data",
                        ));
                    }
                    let pk = r
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| {
                            types::coerce_for_column(v, &desc.columns[desc.primary_key[i]].ty)
                        })
                        .collect::<Result<Vec<_>>>()?;
                    let key = row_key(desc.id, &pk);
                    kv.split(&key).await?;
                    rows.push(vec![
                        Datum::Text(pretty_key(&key)),
                        Datum::Text(pretty_relative(&key, &primary).unwrap_or_default()),
                    ]);
                }
                Ok(StmtResult::Rows {
                    columns,
                    rows,
                    tag: "SELECT".into(),
                })
            }
            AdminStmt::ShowRanges { index, .. } => {
                let (span, rel) = match index {
                    None => (table_prefix(desc.id), primary.clone()),
                    Some(n) if n == "primary" || *n == desc.pkey_name() => {
                        (primary.clone(), primary.clone())
                    }
                    Some(n) => match desc.index(n) {
                        Some(i) => {
                            let p = index_prefix(desc.id, i.id);
                            (p.clone(), p)
                        }
                        None => {
                            return Err(SqlError::new(
                                code::UNDEFINED_OBJECT,
                                format!("index \"{n}\" does not exist"),
                            ))
                        }
                    },
                };
                let span_end = tessera_storage::encoding::prefix_successor(&span)
                    .expect("table prefix is not all 0xff");
                let show = |k: &[u8]| {
                    if k <= span.as_slice() {
                        "/Min".to_string()
                    } else if k >= span_end.as_slice() {
                        "/Max".to_string()
                    } else {
                        pretty_relative(k, &rel).unwrap_or_else(|| pretty_key(k))
                    }
                };
                let mut rows = Vec::new();
                for r in kv.ranges().await? {
                    if r.end_key.as_slice() <= span.as_slice()
                        || r.start_key.as_slice() >= span_end.as_slice()
                    {
                        continue;
                    }
                    let mut nodes: Vec<u64> = r.replicas.iter().map(|x| x.node_id).collect();
                    nodes.sort_unstable();
                    nodes.dedup();
                    let replicas = format!(
                        "{{{}}}",
                        nodes
                            .iter()
                            .map(|n| n.to_string())
                            .collect::<Vec<_>>()
                            .join(",")
                    );
                    let lease_holder = match kv.leaseholder_of(&r).await {
                        Ok(n) if n != 0 => Datum::Int(n as i64),
                        _ => Datum::Null,
                    };
                    rows.push(vec![
                        Datum::Int(r.range_id as i64),
                        Datum::Text(show(&r.start_key)),
                        Datum::Text(show(&r.end_key)),
                        Datum::Text(replicas),
                        lease_holder,
                    ]);
                }
                Ok(StmtResult::Rows {
                    columns,
                    rows,
                    tag: "SHOW".into(),
                })
            }
        }
    }

    // -- session variables --------------------------------------------------

    fn set(&mut self, set: &ast::Set) -> Result<StmtResult> {
        match set {
            ast::Set::SingleAssignment {
                variable, values, ..
            } => {
                let name = variable.to_string().to_lowercase();
                let value = values
                    .iter()
                    .map(|v| match v {
                        ast::Expr::Value(v) => match &v.value {
                            ast::Value::SingleQuotedString(s) => s.clone(),
                            other => other.to_string(),
                        },
                        ast::Expr::Identifier(i) => i.value.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let value = if value.eq_ignore_ascii_case("default") {
                    self.vars.remove(&name);
                    return Ok(StmtResult::Command("SET".into()));
                } else {
                    value
                };
                self.vars.insert(name, value);
            }
            ast::Set::SetTimeZone { value, .. } => {
                let v = match value {
                    ast::Expr::Value(v) => match &v.value {
                        ast::Value::SingleQuotedString(s) => s.clone(),
                        other => other.to_string(),
                    },
                    other => other.to_string(),
                };
                self.vars.insert("timezone".into(), v);
            }
            ast::Set::SetTransaction { modes, session, .. } => {
                if let Some(level) = requested_isolation(modes) {
                    if *session {
                        self.vars.insert(
                            "default_transaction_isolation".into(),
                            isolation_name(level).into(),
                        );
                    } else if let TxnState::Open(txn) = &mut self.txn {
                        txn.kv().set_isolation(level);
                    }
                }
            }
            ast::Set::SetNames { .. }
            | ast::Set::SetNamesDefault {}
            | ast::Set::SetSessionParam(_) => {}
            other => {
                return Err(SqlError::unsupported(format!(
                    "SET form not supported: {other}"
                )))
            }
        }
        Ok(StmtResult::Command("SET".into()))
    }

    /// The session's default isolation (`default_transaction_isolation`).
    fn default_isolation(&self) -> Isolation {
        match self
            .vars
            .get("default_transaction_isolation")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            Some("read committed") | Some("read uncommitted") => Isolation::ReadCommitted,
            _ => Isolation::Serializable,
        }
    }

    fn show(&self, name: &str) -> Result<String> {
        if let Some(v) = self.vars.get(name) {
            return Ok(v.clone());
        }
        Ok(match name {
            "server_version" => crate::SERVER_VERSION.into(),
            "server_version_num" => "150000".into(),
            "transaction_isolation" => match &self.txn {
                TxnState::Open(txn) => isolation_name(txn.isolation()).into(),
                _ => isolation_name(self.default_isolation()).into(),
            },
            "default_transaction_isolation" => "serializable".into(),
            "client_encoding" | "server_encoding" => "UTF8".into(),
            "datestyle" => "ISO, MDY".into(),
            "timezone" => "UTC".into(),
            "standard_conforming_strings" => "on".into(),
            "integer_datetimes" => "on".into(),
            "search_path" => "\"$user\", public".into(),
            "application_name" => String::new(),
            "database" => self.database.clone(),
            "session_user" | "current_user" => self.user.clone(),
            "max_identifier_length" => "63".into(),
            _ => {
                return Err(SqlError::new(
                    code::UNDEFINED_OBJECT,
                    format!("unrecognized configuration parameter \"{name}\""),
                ))
            }
        })
    }

    // -- DDL ----------------------------------------------------------------

    async fn create_table(&mut self, ct: &ast::CreateTable) -> Result<StmtResult> {
        self.catalog.refresh().await?;
        let name = self.new_name(&ct.name).await?;
        if ct.query.is_some() || ct.like.is_some() {
            return Err(SqlError::unsupported(
                "CREATE TABLE AS / LIKE is not supported yet",
            ));
        }
        if self.catalog.table(&self.database, &name).await?.is_some() {
            if ct.if_not_exists {
                return Ok(StmtResult::Command("CREATE TABLE".into()));
            }
            return Err(SqlError::new(
                code::DUPLICATE_TABLE,
                format!("relation \"{name}\" already exists"),
            ));
        }
        let mut columns: Vec<Column> = Vec::new();
        let mut pk: Option<Vec<usize>> = None;
        let multiple_pk = || {
            SqlError::new(
                code::INVALID_TABLE_DEFINITION,
                format!("multiple primary keys for table \"{name}\" are not allowed"),
            )
        };
        let no_tables = HashMap::new();
        // (given name, SQL, column it was declared on)
        let mut checks: Vec<(Option<String>, String, Option<String>)> = Vec::new();
        // (given name, column positions)
        let mut uniques: Vec<(Option<String>, Vec<usize>)> = Vec::new();
        // (the constraint, its referencing column positions)
        let mut fks: Vec<(ast::ForeignKeyConstraint, Vec<usize>)> = Vec::new();
        for (i, cd) in ct.columns.iter().enumerate() {
            let cname = plan::ident(&cd.name);
            if columns.iter().any(|c| c.name == cname) {
                return Err(SqlError::new(
                    code::DUPLICATE_COLUMN,
                    format!("column \"{cname}\" specified more than once"),
                ));
            }
            let (ty, serial) = plan::data_type(&cd.data_type)?;
            let mut col = Column {
                id: i as u32 + 1,
                name: cname,
                ty,
                nullable: !serial,
                default: None,
                hidden: false,
                serial,
                identity: crate::catalog::Identity::None,
            };
            for opt in &cd.options {
                match &opt.option {
                    ast::ColumnOption::Null => col.nullable = true,
                    ast::ColumnOption::NotNull => col.nullable = false,
                    ast::ColumnOption::Default(e) => {
                        let sql = e.to_string();
                        // Validate now: the expression must bind and fit.
                        Binder::new(&no_tables, vec![]).bind_default(&sql, &col.ty)?;
                        col.default = Some(sql);
                    }
                    ast::ColumnOption::PrimaryKey(_) => {
                        if pk.is_some() {
                            return Err(multiple_pk());
                        }
                        pk = Some(vec![i]);
                    }
                    ast::ColumnOption::Unique(u) => {
                        let given = u.name.as_ref().or(opt.name.as_ref()).map(plan::ident);
                        uniques.push((given, vec![i]));
                    }
                    ast::ColumnOption::Check(c) => {
                        let given = c.name.as_ref().or(opt.name.as_ref()).map(plan::ident);
                        checks.push((given, c.expr.to_string(), Some(col.name.clone())));
                    }
                    ast::ColumnOption::Generated {
                        generated_as: how @ (ast::GeneratedAs::Always | ast::GeneratedAs::ByDefault),
                        sequence_options,
                        generation_expr: None,
                        ..
                    } => {
                        if !col.ty.is_integer() {
                            return Err(SqlError::new(
                                code::INVALID_PARAMETER_VALUE,
                                "identity column type must be smallint, integer, or bigint",
                            ));
                        }
                        if sequence_options.as_ref().is_some_and(|o| !o.is_empty()) {
                            return Err(SqlError::unsupported(
                                "sequence options of an identity column",
                            ));
                        }
                        col.serial = true;
                        col.nullable = false;
                        col.identity = if matches!(how, ast::GeneratedAs::Always) {
                            crate::catalog::Identity::Always
                        } else {
                            crate::catalog::Identity::ByDefault
                        };
                    }
                    ast::ColumnOption::ForeignKey(f) => {
                        let mut f = f.clone();
                        if f.name.is_none() {
                            f.name = opt.name.clone();
                        }
                        fks.push((f, vec![i]));
                    }
                    other => {
                        return Err(SqlError::unsupported(format!(
                            "column constraint not supported yet: {other}"
                        )))
                    }
                }
            }
            columns.push(col);
        }
        for c in &ct.constraints {
            match c {
                ast::TableConstraint::PrimaryKey(p) => {
                    if pk.is_some() {
                        return Err(multiple_pk());
                    }
                    let mut cols = Vec::new();
                    for ic in &p.columns {
                        let ast::Expr::Identifier(id) = &ic.column.expr else {
                            return Err(SqlError::unsupported("expressions in PRIMARY KEY"));
                        };
                        let n = plan::ident(id);
                        let pos = columns.iter().position(|c| c.name == n).ok_or_else(|| {
                            SqlError::new(
                                code::UNDEFINED_COLUMN,
                                format!("column \"{n}\" named in key does not exist"),
                            )
                        })?;
                        cols.push(pos);
                    }
                    pk = Some(cols);
                }
                ast::TableConstraint::Unique(u) => {
                    let mut cols = Vec::new();
                    for ic in &u.columns {
                        let ast::Expr::Identifier(id) = &ic.column.expr else {
                            return Err(SqlError::unsupported("expressions in UNIQUE"));
                        };
                        let n = plan::ident(id);
                        let pos = columns.iter().position(|c| c.name == n).ok_or_else(|| {
                            SqlError::new(
                                code::UNDEFINED_COLUMN,
                                format!("column \"{n}\" named in key does not exist"),
                            )
                        })?;
                        cols.push(pos);
                    }
                    uniques.push((u.name.as_ref().map(plan::ident), cols));
                }
                ast::TableConstraint::Check(c) => {
                    checks.push((c.name.as_ref().map(plan::ident), c.expr.to_string(), None));
                }
                ast::TableConstraint::ForeignKey(f) => {
                    let mut cols = Vec::new();
                    for id in &f.columns {
                        let n = plan::ident(id);
                        let pos = columns.iter().position(|c| c.name == n).ok_or_else(|| {
                            SqlError::new(
                                code::UNDEFINED_COLUMN,
                                format!("column \"{n}\" referenced in foreign key constraint does not exist"),
                            )
                        })?;
                        cols.push(pos);
                    }
                    fks.push((f.clone(), cols));
                }
                other => {
                    return Err(SqlError::unsupported(format!(
                        "table constraint not supported yet: {other}"
                    )))
                }
            }
        }
        let pk = match pk {
            Some(p) => {
                for i in &p {
                    columns[*i].nullable = false;
                }
                p
            }
            None => {
                // A hidden, unique rowid keys tables without a primary key.
                columns.push(Column {
                    id: columns.len() as u32 + 1,
                    name: "rowid".into(),
                    ty: DataType::Int8,
                    nullable: false,
                    default: None,
                    hidden: true,
                    serial: true,
                    identity: crate::catalog::Identity::None,
                });
                vec![columns.len() - 1]
            }
        };
        let id = self.catalog.allocate_id().await?;
        let mut desc = TableDesc {
            name: name.clone(),
            id,
            next_column_id: columns.len() as u32 + 1,
            indexes: vec![],
            next_index_id: 2,
            columns,
            primary_key: pk,
            seq_id: id,
            checks: vec![],
            fks: vec![],
            inbound: vec![],
        };
        // Constraint names as PostgreSQL makes them: t_col_check, t_check,
        // t_col_key, numbered when taken.
        let mut taken: Vec<String> = vec![desc.pkey_name()];
        let fresh = crate::catalog::fresh_name;
        for (given, cols) in uniques {
            let names: Vec<&str> = cols
                .iter()
                .map(|c| desc.columns[*c].name.as_str())
                .collect();
            let iname = match given {
                Some(g) => g,
                None => fresh(format!("{name}_{}_key", names.join("_")), &mut taken),
            };
            if desc.indexes.iter().any(|i| i.columns == cols) || cols == desc.primary_key {
                continue; // already unique
            }
            desc.indexes.push(crate::catalog::IndexDesc {
                name: iname,
                id: desc.next_index_id,
                columns: cols,
                unique: true,
            });
            desc.next_index_id += 1;
        }
        for (given, sql, column) in checks {
            let cname = match given {
                Some(g) => g,
                None => match column {
                    Some(c) => fresh(format!("{name}_{c}_check"), &mut taken),
                    None => fresh(format!("{name}_check"), &mut taken),
                },
            };
            // Validate now: it must be a boolean over the columns.
            Binder::new(&no_tables, vec![]).bind_check(&desc, &sql)?;
            desc.checks.push(crate::catalog::CheckDesc {
                name: cname,
                expr: sql,
            });
        }
        let mut parents: Vec<(Arc<TableDesc>, String)> = Vec::new();
        for (f, cols) in fks {
            let (fk, parent) = self.foreign_key(&desc, &f, cols, &mut taken).await?;
            // The children of a parent row are found through an index led
            // by the referencing columns: create one if there is none.
            if crate::fk::lookup_prefix(&desc, &fk.columns, &[]).is_none() {
                let names: Vec<&str> = fk
                    .columns
                    .iter()
                    .map(|c| desc.columns[*c].name.as_str())
                    .collect();
                let iname = fresh(format!("{name}_{}_idx", names.join("_")), &mut taken);
                desc.indexes.push(crate::catalog::IndexDesc {
                    name: iname,
                    id: desc.next_index_id,
                    columns: fk.columns.clone(),
                    unique: false,
                });
                desc.next_index_id += 1;
            }
            match parent {
                None => desc.inbound.push(crate::catalog::InboundFk {
                    child: name.clone(),
                    name: fk.name.clone(),
                }),
                Some(p) => parents.push((p, fk.name.clone())),
            }
            desc.fks.push(fk);
        }
        match self.catalog.create_table(&self.database, &desc).await {
            Err(e) if e.code == code::DUPLICATE_TABLE && ct.if_not_exists => {
                return Ok(StmtResult::Command("CREATE TABLE".into()))
            }
            other => other?,
        }
        for (parent, fk_name) in parents {
            self.link_parent(&parent.name, Some((name.clone(), fk_name)), None)
                .await?;
        }
        Ok(StmtResult::Command("CREATE TABLE".into()))
    }

    /// Resolves a FOREIGN KEY of the table being created: the parent (None
    /// when the table references itself), its referenced columns (its
    /// primary key unless named; they must be the primary key or a unique
    /// index), the actions and the constraint's name.
    async fn foreign_key(
        &self,
        desc: &TableDesc,
        f: &ast::ForeignKeyConstraint,
        columns: Vec<usize>,
        taken: &mut Vec<String>,
    ) -> Result<(crate::catalog::ForeignKeyDesc, Option<Arc<TableDesc>>)> {
        let pname = self.existing_name(&f.foreign_table).await?;
        let parent = if pname == desc.name {
            None
        } else {
            Some(
                self.catalog
                    .table(&self.database, &pname)
                    .await?
                    .ok_or_else(|| SqlError::undefined_table(&pname))?,
            )
        };
        let p: &TableDesc = parent.as_deref().unwrap_or(desc);
        let parent_columns: Vec<usize> = if f.referred_columns.is_empty() {
            p.primary_key.clone()
        } else {
            let mut v = Vec::new();
            for id in &f.referred_columns {
                let n = plan::ident(id);
                v.push(p.column_index(&n).ok_or_else(|| {
                    SqlError::new(
                        code::UNDEFINED_COLUMN,
                        format!(
                            "column \"{n}\" referenced in foreign key constraint does not exist"
                        ),
                    )
                })?);
            }
            v
        };
        let unique = parent_columns == p.primary_key
            || p.indexes
                .iter()
                .any(|i| i.unique && i.columns == parent_columns);
        if !unique || p.columns[p.primary_key[0]].hidden && parent_columns == p.primary_key {
            return Err(SqlError::new(
                code::INVALID_FOREIGN_KEY,
                format!(
                    "there is no unique constraint matching given keys for referenced table \"{}\"",
                    p.name
                ),
            ));
        }
        if parent_columns.len() != columns.len() {
            return Err(SqlError::new(
                code::INVALID_FOREIGN_KEY,
                "number of referencing and referenced columns for foreign key disagree",
            ));
        }
        for (c, pc) in columns.iter().zip(&parent_columns) {
            let (a, b) = (&desc.columns[*c].ty, &p.columns[*pc].ty);
            let family = |t: &DataType| match t {
                DataType::Int2 | DataType::Int4 | DataType::Int8 => "int".to_string(),
                DataType::Text | DataType::Varchar(_) | DataType::Char(_) => "text".to_string(),
                other => types::type_display(other),
            };
            if family(a) != family(b) {
                return Err(SqlError::mismatch(format!(
                    "foreign key constraint cannot be implemented: key columns \"{}\" and \"{}\" are of incompatible types: {} and {}",
                    desc.columns[*c].name,
                    p.columns[*pc].name,
                    types::type_display(a),
                    types::type_display(b)
                )));
            }
        }
        let (cascade_delete, set_null_delete) = match f.on_delete {
            None | Some(ast::ReferentialAction::NoAction | ast::ReferentialAction::Restrict) => {
                (false, false)
            }
            Some(ast::ReferentialAction::Cascade) => (true, false),
            Some(ast::ReferentialAction::SetNull) => (false, true),
            Some(other) => {
                return Err(SqlError::unsupported(format!(
                    "ON DELETE {other} is not supported yet (RESTRICT, NO ACTION, CASCADE and SET NULL are)"
                )))
            }
        };
        if let Some(a) = f.on_update {
            if !matches!(
                a,
                ast::ReferentialAction::NoAction | ast::ReferentialAction::Restrict
            ) {
                return Err(SqlError::unsupported(format!(
                    "ON UPDATE {a} is not supported yet (RESTRICT and NO ACTION are)"
                )));
            }
        }
        let names: Vec<&str> = columns
            .iter()
            .map(|c| desc.columns[*c].name.as_str())
            .collect();
        let name = match &f.name {
            Some(n) => plan::ident(n),
            None => {
                let base = format!("{}_{}_fkey", desc.name, names.join("_"));
                let mut n = base.clone();
                let mut k = 0;
                while taken.contains(&n) {
                    k += 1;
                    n = format!("{base}{k}");
                }
                n
            }
        };
        taken.push(name.clone());
        Ok((
            crate::catalog::ForeignKeyDesc {
                name,
                columns,
                parent: pname,
                parent_columns,
                cascade_delete,
                set_null_delete,
            },
            parent,
        ))
    }

    /// Adds (`add`) or removes (`remove`: the child table) inbound
    /// foreign keys on the parent table's descriptor.
    async fn link_parent(
        &self,
        parent: &str,
        add: Option<(String, String)>,
        remove: Option<&str>,
    ) -> Result<()> {
        for _ in 0..10 {
            let Some(old) = self.catalog.table(&self.database, parent).await? else {
                return Ok(());
            };
            let mut new = (*old).clone();
            if let Some(child) = remove {
                new.inbound.retain(|i| i.child != child);
            }
            if let Some((child, name)) = &add {
                new.inbound.push(crate::catalog::InboundFk {
                    child: child.clone(),
                    name: name.clone(),
                });
            }
            match self.catalog.replace_table(&self.database, &old, &new).await {
                Err(e) if e.code == code::SERIALIZATION_FAILURE => {
                    self.catalog.refresh().await?;
                }
                other => return other,
            }
        }
        Err(SqlError::new(
            code::SERIALIZATION_FAILURE,
            format!("restart transaction: table \"{parent}\" kept changing"),
        ))
    }

    /// A transaction that created tables ended without committing: the
    /// tables go again (other sessions could see them meanwhile: DDL is
    /// not isolated, but it is undone).
    /// `ALTER TABLE t ADD [CONSTRAINT name] FOREIGN KEY (cols) REFERENCES
    /// p [(cols)] [ON DELETE ...]`: resolved as in CREATE TABLE; the index
    /// that finds a parent's children is built first when there is none;
    /// every existing row must then have its parent (23503 otherwise)
    /// before the constraint is recorded on both tables.
    async fn add_foreign_key(
        &mut self,
        table: &ast::ObjectName,
        resolved: &str,
        f: &ast::ForeignKeyConstraint,
    ) -> Result<()> {
        let missing = || SqlError::undefined_table(resolved);
        let desc = self
            .catalog
            .table(&self.database, resolved)
            .await?
            .ok_or_else(missing)?;
        let mut cols = Vec::new();
        for id in &f.columns {
            let n = plan::ident(id);
            let pos = crate::alter::visible_column(&desc, &n).ok_or_else(|| {
                SqlError::new(
                    code::UNDEFINED_COLUMN,
                    format!("column \"{n}\" referenced in foreign key constraint does not exist"),
                )
            })?;
            cols.push(pos);
        }
        let mut taken: Vec<String> = desc
            .indexes
            .iter()
            .map(|i| i.name.clone())
            .chain(desc.checks.iter().map(|c| c.name.clone()))
            .chain(desc.fks.iter().map(|f| f.name.clone()))
            .chain([desc.pkey_name()])
            .collect();
        let (fk, _) = self.foreign_key(&desc, f, cols, &mut taken).await?;
        if desc.fks.iter().any(|d| d.name == fk.name) {
            return Err(SqlError::new(
                code::DUPLICATE_OBJECT,
                format!(
                    "constraint \"{}\" for relation \"{}\" already exists",
                    fk.name, desc.name
                ),
            ));
        }
        // The children of a parent row are found through an index led by
        // the referencing columns: build one if there is none.
        let mut built_index = None;
        if crate::fk::lookup_prefix(&desc, &fk.columns, &[]).is_none() {
            let names: Vec<&str> = fk
                .columns
                .iter()
                .map(|c| desc.columns[*c].name.as_str())
                .collect();
            let base = format!(
                "{}_{}_idx",
                crate::catalog::split_name(&desc.name).1,
                names.join("_")
            );
            let index = crate::catalog::fresh_name(base, &mut taken);
            self.create_index_on(table, &index, &names, false).await?;
            self.catalog.refresh().await?;
            let schema = crate::catalog::split_name(&desc.name).0;
            built_index = Some(ast::ObjectName::from(vec![
                ast::Ident::new(schema),
                ast::Ident::new(index),
            ]));
        }
        let r = self.link_foreign_key(resolved, fk).await;
        if r.is_err() {
            if let Some(index) = built_index {
                let _ = self.drop_indexes(&[index], true).await;
            }
        }
        r
    }

    /// Checks that every row of `resolved` has the parent `fk` asks for,
    /// then records `fk` on the table and on its parent.
    async fn link_foreign_key(
        &mut self,
        resolved: &str,
        fk: crate::catalog::ForeignKeyDesc,
    ) -> Result<()> {
        let missing = || SqlError::undefined_table(resolved);
        let desc = self
            .catalog
            .table(&self.database, resolved)
            .await?
            .ok_or_else(missing)?;
        // Every row must reference an existing parent (checked against
        // this constraint alone).
        let mut only_new = (*desc).clone();
        only_new.fks = vec![fk.clone()];
        let kv = self.catalog.kv().clone();
        let check_txn = Txn::new(kv.clone());
        let mut rows = crate::alter::TableRows::new(&desc);
        while let Some(chunk) = rows.next_chunk(&kv).await? {
            for (_, v) in &chunk {
                let row = exec::decode_row(&desc, v)?;
                crate::fk::check_parents(
                    &self.catalog,
                    &check_txn,
                    &self.database,
                    &only_new,
                    &row,
                    None,
                )
                .await?;
            }
        }
        let mut new = (*desc).clone();
        new.fks.push(fk.clone());
        let link = Some((desc.name.clone(), fk.name.clone()));
        if fk.parent == desc.name {
            // Its own parent: both ends of the link in one descriptor.
            new.inbound.push(crate::catalog::InboundFk {
                child: desc.name.clone(),
                name: fk.name.clone(),
            });
        }
        self.catalog
            .replace_table(&self.database, &desc, &new)
            .await?;
        if fk.parent == desc.name {
            return Ok(());
        }
        self.link_parent(&fk.parent, link, None).await
    }

    /// `ALTER TABLE t ADD [CONSTRAINT name] UNIQUE (cols)`: a unique index,
    /// named `<table>_<cols>_key` unless named, built as CREATE UNIQUE
    /// INDEX builds one (23505 if the rows already hold a duplicate).
    async fn add_unique_constraint(
        &mut self,
        table: &ast::ObjectName,
        resolved: &str,
        op: &ast::AlterTableOperation,
    ) -> Result<()> {
        let ast::AlterTableOperation::AddConstraint {
            constraint: ast::TableConstraint::Unique(u),
            ..
        } = op
        else {
            return Err(SqlError::internal("not an ADD UNIQUE"));
        };
        let mut cols = Vec::new();
        for ic in &u.columns {
            let ast::Expr::Identifier(id) = &ic.column.expr else {
                return Err(SqlError::unsupported("expressions in UNIQUE"));
            };
            cols.push(plan::ident(id));
        }
        let index = match &u.name {
            Some(n) => plan::ident(n),
            None => format!(
                "{}_{}_key",
                crate::catalog::split_name(resolved).1,
                cols.join("_")
            ),
        };
        let cols: Vec<&str> = cols.iter().map(String::as_str).collect();
        self.create_index_on(table, &index, &cols, true).await
    }

    /// `CREATE [UNIQUE] INDEX index ON table (columns)`, built as that
    /// statement builds it (for the constraints ALTER TABLE adds).
    async fn create_index_on(
        &mut self,
        table: &ast::ObjectName,
        index: &str,
        columns: &[&str],
        unique: bool,
    ) -> Result<()> {
        let quoted: Vec<String> = columns
            .iter()
            .map(|c| crate::catalog::quote_ident(c))
            .collect();
        let sql = format!(
            "CREATE {}INDEX {} ON {table} ({})",
            if unique { "UNIQUE " } else { "" },
            crate::catalog::quote_ident(index),
            quoted.join(", ")
        );
        let Some(Statement::CreateIndex(ci)) = parse(&sql)?.into_iter().next() else {
            return Err(SqlError::internal("no CREATE INDEX parsed"));
        };
        self.create_index(&ci).await.map(|_| ())
    }

    /// `CREATE TABLE name AS query`: a table with the query's column names
    /// and types (no primary key: keyed by a hidden rowid), filled by the
    /// query in the same statement. If filling it fails the table is
    /// dropped again; inside BEGIN it belongs to the transaction as CREATE
    /// TABLE does.
    async fn create_table_as(&mut self, ct: &ast::CreateTable) -> Result<StmtResult> {
        let Some(query) = &ct.query else {
            return Err(SqlError::internal("CREATE TABLE AS without a query"));
        };
        if !ct.columns.is_empty() || ct.like.is_some() {
            return Err(SqlError::unsupported(
                "CREATE TABLE AS with a column list is not supported yet",
            ));
        }
        self.catalog.refresh().await?;
        let name = self.new_name(&ct.name).await?;
        if self.catalog.table(&self.database, &name).await?.is_some() {
            if ct.if_not_exists {
                return Ok(StmtResult::Command("CREATE TABLE AS".into()));
            }
            return Err(SqlError::new(
                code::DUPLICATE_TABLE,
                format!("relation \"{name}\" already exists"),
            ));
        }
        let select = Statement::Query(query.clone());
        let (bound, _) = self.bind(&select, vec![]).await?;
        let defs: Vec<String> = bound
            .columns()
            .into_iter()
            .map(|(n, t)| {
                let t = if t == DataType::Unknown {
                    DataType::Text
                } else {
                    t
                };
                format!("{} {}", crate::catalog::quote_ident(&n), t.sql_name())
            })
            .collect();
        let create = parse(&format!("CREATE TABLE {} ({})", ct.name, defs.join(", ")))?;
        let insert = parse(&format!("INSERT INTO {} {query}", ct.name))?;
        let (Some(create), Some(insert)) = (create.first(), insert.first()) else {
            return Err(SqlError::internal("CREATE TABLE AS: no statement"));
        };
        Box::pin(self.dispatch(create, None, &[])).await?;
        let explicit = matches!(self.txn, TxnState::Open(_));
        match Box::pin(self.dispatch(insert, None, &[])).await {
            Ok(StmtResult::Command(tag)) => {
                let rows = tag.rsplit(' ').next().unwrap_or("0").to_string();
                Ok(StmtResult::Command(format!("SELECT {rows}")))
            }
            Ok(_) => Ok(StmtResult::Command("SELECT 0".into())),
            Err(e) => {
                if !explicit {
                    // Undo the empty table (inside BEGIN, ROLLBACK does).
                    let names = [ct.name.clone()];
                    self.drop_tables(&names, true).await?;
                }
                Err(e)
            }
        }
    }

    async fn undo_created_tables(&mut self) -> Result<()> {
        let names = std::mem::take(&mut self.created_in_txn);
        if names.is_empty() {
            return Ok(());
        }
        self.catalog.refresh().await?;
        let names: Vec<ast::ObjectName> = names
            .iter()
            .map(|n| ast::ObjectName::from(vec![ast::Ident::new(n)]))
            .collect();
        self.drop_tables(&names, true).await.map(|_| ())
    }

    /// DROP DATABASE: its tables (rows and descriptors), views and record.
    /// Not the database this session is connected to (55006).
    async fn drop_database(&mut self, name: &str, if_exists: bool) -> Result<()> {
        if name == self.database {
            return Err(SqlError::new(
                code::OBJECT_IN_USE,
                "cannot drop the currently open database",
            ));
        }
        if !self.catalog.database_exists(name).await? {
            if if_exists {
                return Ok(());
            }
            return Err(SqlError::new(
                code::INVALID_CATALOG_NAME,
                format!("database \"{name}\" does not exist"),
            ));
        }
        self.catalog.refresh().await?;
        for t in self.catalog.table_names(name).await? {
            if let Some(d) = self.catalog.table(name, &t).await? {
                self.catalog.drop_table(name, &d).await?;
                exec::purge_table_data(self.catalog.kv(), d.id).await?;
            }
        }
        self.catalog.drop_database(name).await
    }

    /// DROP SCHEMA: all named schemas must exist (unless IF EXISTS) and,
    /// without CASCADE, be empty (2BP01); CASCADE drops their views and
    /// tables first.
    async fn drop_schemas(
        &mut self,
        names: &[ast::ObjectName],
        if_exists: bool,
        cascade: bool,
    ) -> Result<()> {
        self.catalog.refresh().await?;
        let mut schemas = Vec::new();
        for n in names {
            let name = plan::table_name(n)?;
            if name == crate::catalog::PUBLIC_SCHEMA
                || crate::catalog::SYSTEM_SCHEMAS.contains(&name.as_str())
            {
                return Err(SqlError::new(
                    code::DEPENDENT_OBJECTS_STILL_EXIST,
                    format!("cannot drop schema {name}: it is a schema every database has"),
                ));
            }
            if !self.catalog.schema_exists(&self.database, &name).await? {
                if if_exists {
                    continue;
                }
                return Err(SqlError::new(
                    code::INVALID_SCHEMA_NAME,
                    format!("schema \"{name}\" does not exist"),
                ));
            }
            schemas.push(name);
        }
        let in_schemas = |n: &String| schemas.iter().any(|s| crate::catalog::split_name(n).0 == s);
        let tables: Vec<String> = (self.catalog.table_names(&self.database).await?)
            .into_iter()
            .filter(in_schemas)
            .collect();
        let views: Vec<String> = (self.catalog.view_names(&self.database).await?)
            .into_iter()
            .filter(in_schemas)
            .collect();
        if let Some(first) = tables.iter().chain(&views).next() {
            if !cascade {
                let (schema, _) = crate::catalog::split_name(first);
                return Err(SqlError::new(
                    code::DEPENDENT_OBJECTS_STILL_EXIST,
                    format!("cannot drop schema {schema} because other objects depend on it"),
                )
                .with_detail(format!("relation {first} depends on schema {schema}"))
                .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
            }
        }
        for v in &views {
            self.catalog.drop_view(&self.database, v).await?;
        }
        let objects: Vec<ast::ObjectName> = tables
            .iter()
            .map(|t| {
                let (schema, name) = crate::catalog::split_name(t);
                ast::ObjectName::from(vec![
                    ast::Ident::with_quote('"', schema),
                    ast::Ident::with_quote('"', name),
                ])
            })
            .collect();
        if !objects.is_empty() {
            self.drop_tables(&objects, true).await?;
        }
        for s in &schemas {
            self.catalog.drop_schema(&self.database, s).await?;
        }
        Ok(())
    }

    async fn drop_tables(
        &mut self,
        names: &[ast::ObjectName],
        if_exists: bool,
    ) -> Result<StmtResult> {
        self.catalog.refresh().await?;
        // Check all first, so a missing table drops none.
        let mut descs = Vec::new();
        for n in names {
            let name = self.existing_name(n).await?;
            match self.catalog.table(&self.database, &name).await? {
                Some(d) => descs.push(d),
                None if if_exists => {}
                None => return Err(SqlError::undefined_table(&name)),
            }
        }
        let dropped: Vec<String> = descs.iter().map(|d| d.name.clone()).collect();
        for d in &descs {
            if let Some(i) = d.inbound.iter().find(|i| !dropped.contains(&i.child)) {
                return Err(SqlError::new(
                    code::DEPENDENT_OBJECTS_STILL_EXIST,
                    format!(
                        "cannot drop table {} because other objects depend on it",
                        d.name
                    ),
                )
                .with_detail(format!(
                    "constraint {} on table {} depends on table {}",
                    i.name, i.child, d.name
                )));
            }
        }
        for d in descs {
            self.catalog.drop_table(&self.database, &d).await?;
            exec::purge_table_data(self.catalog.kv(), d.id).await?;
            for f in &d.fks {
                if !dropped.contains(&f.parent) {
                    self.link_parent(&f.parent, None, Some(&d.name)).await?;
                }
            }
        }
        Ok(StmtResult::Command("DROP TABLE".into()))
    }

    /// CREATE [UNIQUE] INDEX: the descriptor first (so writers maintain the
    /// index from then on), then a backfill of the existing rows. A UNIQUE
    /// index that existing rows violate is removed again (23505).
    async fn create_index(&mut self, ci: &ast::CreateIndex) -> Result<StmtResult> {
        self.catalog.refresh().await?;
        let tname = self.existing_name(&ci.table_name).await?;
        let desc = self
            .catalog
            .table(&self.database, &tname)
            .await?
            .ok_or_else(|| SqlError::undefined_table(&tname))?;
        if ci.predicate.is_some() || !ci.include.is_empty() {
            return Err(SqlError::unsupported(
                "partial indexes and INCLUDE are not supported yet",
            ));
        }
        let mut cols = Vec::new();
        for c in &ci.columns {
            let ast::Expr::Identifier(id) = &c.column.expr else {
                return Err(SqlError::unsupported("expression indexes"));
            };
            let n = plan::ident(id);
            let pos = desc
                .column_index(&n)
                .ok_or_else(|| SqlError::undefined_column(&n))?;
            cols.push(pos);
        }
        // An index lives in its table's schema.
        let schema = crate::catalog::split_name(&desc.name).0.to_string();
        let name = match &ci.name {
            Some(n) => crate::catalog::split_name(&plan::table_name(n)?)
                .1
                .to_string(),
            None => {
                let mut n = crate::catalog::split_name(&desc.name).1.to_string();
                for c in &cols {
                    n.push('_');
                    n.push_str(&desc.columns[*c].name);
                }
                n.push_str(if ci.unique { "_key" } else { "_idx" });
                n
            }
        };
        if self.find_index(&schema, &name).await?.is_some() || name == desc.pkey_name() {
            if ci.if_not_exists {
                return Ok(StmtResult::Command("CREATE INDEX".into()));
            }
            return Err(SqlError::new(
                code::DUPLICATE_TABLE,
                format!("relation \"{name}\" already exists"),
            ));
        }
        let idx = crate::catalog::IndexDesc {
            name: name.clone(),
            id: desc.next_index_id.max(2),
            columns: cols,
            unique: ci.unique,
        };
        let mut new = (*desc).clone();
        new.next_index_id = idx.id + 1;
        new.indexes.push(idx.clone());
        self.catalog
            .replace_table(&self.database, &desc, &new)
            .await?;
        if let Err(e) = self.backfill(&new, &idx).await {
            // Take the index away again; its entries are garbage.
            if let Some(cur) = self.catalog.table(&self.database, &tname).await? {
                let mut back = (*cur).clone();
                back.indexes.retain(|i| i.id != idx.id);
                self.catalog
                    .replace_table(&self.database, &cur, &back)
                    .await?;
            }
            exec::purge_prefix(
                self.catalog.kv(),
                &crate::encoding::index_prefix(new.id, idx.id),
            )
            .await?;
            return Err(e);
        }
        Ok(StmtResult::Command("CREATE INDEX".into()))
    }

    async fn backfill(&self, table: &TableDesc, idx: &crate::catalog::IndexDesc) -> Result<()> {
        use tessera_common::proto::{batch_write, BatchWrite, CPutRequest};
        use tessera_kv::db::Error as KvError;
        let kv = self.catalog.kv();
        let start = crate::encoding::index_prefix(table.id, crate::encoding::PRIMARY_INDEX_ID);
        let end = tessera_storage::encoding::prefix_successor(&start)
            .expect("table prefix is not all 0xff");
        let mut lo = start.clone();
        loop {
            let rows = kv.scan(&lo, &end, 1000, false).await?;
            let Some((last, _)) = rows.last() else {
                return Ok(());
            };
            lo = tessera_common::keys::next_key(last);
            let duplicate = || {
                SqlError::new(
                    code::UNIQUE_VIOLATION,
                    format!("could not create unique index \"{}\"", idx.name),
                )
            };
            let mut entries: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            for (_, v) in &rows {
                let row = exec::decode_row(table, v)?;
                let (k, v) = exec::index_entry(table, idx, &row);
                if let Some(prev) = entries.insert(k, v.clone()) {
                    if prev != v {
                        return Err(duplicate());
                    }
                }
            }
            // One batch per chunk when the entries share a range; entry by
            // entry otherwise, or to tell a duplicate from an entry that a
            // writer knowing the index wrote meanwhile.
            let batch = entries
                .iter()
                .map(|(k, v)| BatchWrite {
                    write: Some(batch_write::Write::Cput(CPutRequest {
                        key: k.clone(),
                        value: v.clone(),
                        expected: None,
                    })),
                })
                .collect();
            match kv.write_batch(batch).await {
                Ok(()) => continue,
                // Entry by entry: an entry the lost attempt wrote is found
                // equal to what it should be.
                Err(
                    KvError::ConditionFailed { .. }
                    | KvError::CrossRange(_)
                    | KvError::Unavailable {
                        ambiguous: true, ..
                    },
                ) => {}
                Err(e) => return Err(e.into()),
            }
            for (k, v) in entries {
                match kv.cput(&k, &v, None).await {
                    Ok(()) => {}
                    Err(KvError::ConditionFailed { actual: Some(a) }) if a == v => {}
                    Err(KvError::ConditionFailed { .. }) => return Err(duplicate()),
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }

    /// The table of schema `schema` holding the index called `name`.
    async fn find_index(&self, schema: &str, name: &str) -> Result<Option<Arc<TableDesc>>> {
        for t in self.catalog.table_names(&self.database).await? {
            if crate::catalog::split_name(&t).0 != schema {
                continue;
            }
            if let Some(d) = self.catalog.table(&self.database, &t).await? {
                if d.index(name).is_some() {
                    return Ok(Some(d));
                }
            }
        }
        Ok(None)
    }

    async fn drop_indexes(
        &mut self,
        names: &[ast::ObjectName],
        if_exists: bool,
    ) -> Result<StmtResult> {
        self.catalog.refresh().await?;
        for n in names {
            let qualified = plan::table_name(n)?;
            let (schema, name) = crate::catalog::split_name(&qualified);
            // An unqualified index name is looked up along the search path.
            let schemas = match n.0.len() {
                1 => self.search_path(),
                _ => vec![schema.to_string()],
            };
            let mut found = None;
            for s in &schemas {
                if let Some(d) = self.find_index(s, name).await? {
                    found = Some(d);
                    break;
                }
            }
            let Some(desc) = found else {
                if if_exists {
                    continue;
                }
                return Err(SqlError::new(
                    code::UNDEFINED_OBJECT,
                    format!("index \"{name}\" does not exist"),
                ));
            };
            let idx = desc.index(name).expect("found above").clone();
            let mut new = (*desc).clone();
            new.indexes.retain(|i| i.id != idx.id);
            self.catalog
                .replace_table(&self.database, &desc, &new)
                .await?;
            exec::purge_prefix(
                self.catalog.kv(),
                &crate::encoding::index_prefix(desc.id, idx.id),
            )
            .await?;
        }
        Ok(StmtResult::Command("DROP INDEX".into()))
    }

    async fn truncate(&mut self, t: &ast::Truncate) -> Result<StmtResult> {
        self.catalog.refresh().await?;
        let mut descs = Vec::new();
        for target in &t.table_names {
            let name = self.existing_name(&target.name).await?;
            match self.catalog.table(&self.database, &name).await? {
                Some(d) => descs.push(d),
                None if t.if_exists => {}
                None => return Err(SqlError::undefined_table(&name)),
            }
        }
        let names: Vec<&str> = descs.iter().map(|d| d.name.as_str()).collect();
        for d in &descs {
            if let Some(i) = d
                .inbound
                .iter()
                .find(|i| !names.contains(&i.child.as_str()))
            {
                return Err(SqlError::unsupported(
                    "cannot truncate a table referenced in a foreign key constraint",
                )
                .with_detail(format!("Table \"{}\" references \"{}\".", i.child, d.name))
                .with_hint(format!("Truncate table \"{}\" at the same time.", i.child)));
            }
        }
        for d in descs {
            let mut fresh = (*d).clone();
            fresh.id = self.catalog.allocate_id().await?;
            self.catalog
                .replace_table(&self.database, &d, &fresh)
                .await?;
            exec::purge_table_data(self.catalog.kv(), d.id).await?;
        }
        Ok(StmtResult::Command("TRUNCATE TABLE".into()))
    }
}

fn variable_name(v: &[ast::Ident]) -> String {
    let s = v
        .iter()
        .map(|i| i.value.to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    match s.as_str() {
        "transaction isolation level" => "transaction_isolation".into(),
        "time zone" => "timezone".into(),
        _ => s,
    }
}

fn show_tables_columns() -> Vec<(String, DataType)> {
    vec![
        ("schema_name".into(), DataType::Text),
        ("table_name".into(), DataType::Text),
    ]
}

fn show_create_columns() -> Vec<(String, DataType)> {
    vec![
        ("table_name".into(), DataType::Text),
        ("create_statement".into(), DataType::Text),
    ]
}

/// 26000: EXECUTE or DEALLOCATE of a name nothing was prepared as.
fn no_prepared_statement(name: &str) -> SqlError {
    SqlError::new(
        "26000",
        format!("prepared statement \"{name}\" does not exist"),
    )
}
