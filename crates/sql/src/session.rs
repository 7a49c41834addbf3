//! A SQL session: one client connection's state — its database, session
//! variables, transaction — and the statement dispatcher.
//!
//! Statements outside BEGIN..COMMIT run in an implicit transaction that
//! commits when the statement ends; such a statement is retried (up to
//! [`IMPLICIT_RETRIES`] times) when its commit hits a serialization
//! failure, since nothing of it has reached the client yet. Inside an
//! explicit transaction, an error puts the session in the failed state
//! (25P02 for every statement until ROLLBACK), as PostgreSQL does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sqlparser::ast::{self, Statement};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use crate::catalog::{Catalog, Column, TableDesc};
use crate::error::{code, Result, SqlError};
use crate::exec::{self, Output, Row};
use crate::expr::EvalCtx;
use crate::plan::{self, Binder, Bound};
use crate::txn::Txn;
use crate::types::{self, DataType, Datum};

/// How often an implicit transaction is retried after a serialization failure.
pub const IMPLICIT_RETRIES: usize = 5;

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
    Begin,
    /// COMMIT or ROLLBACK (the tag says which).
    End(String),
    Empty,
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
    txn: TxnState,
    vars: BTreeMap<String, String>,
}

/// Parses SQL text into statements (PostgreSQL dialect); 42601 on error.
pub fn parse(sql: &str) -> Result<Vec<Statement>> {
    Parser::parse_sql(&PostgreSqlDialect {}, sql).map_err(|e| {
        let msg = e.to_string();
        let msg = msg
            .strip_prefix("sql parser error: ")
            .unwrap_or(&msg)
            .to_string();
        SqlError::syntax(format!("syntax error: {msg}"))
    })
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
        }
    }

    /// Whether an explicit transaction is open (or failed).
    pub fn in_transaction(&self) -> bool {
        !matches!(self.txn, TxnState::Idle)
    }

    /// Runs a simple-protocol query string: every statement in order,
    /// stopping at the first error.
    pub async fn execute_sql(&mut self, sql: &str) -> Vec<Result<StmtResult>> {
        let stmts = match parse(sql) {
            Ok(s) => s,
            Err(e) => return vec![Err(e)],
        };
        if stmts.is_empty() {
            return vec![Ok(StmtResult::Empty)];
        }
        let mut out = Vec::new();
        for s in &stmts {
            let r = self.run_statement(s, None, &[]).await;
            let failed = r.is_err();
            out.push(r);
            if failed {
                break;
            }
        }
        out
    }

    async fn fetch_tables(&self, stmt: &Statement) -> Result<HashMap<String, Arc<TableDesc>>> {
        let mut tables = HashMap::new();
        for name in plan::referenced_tables(stmt) {
            if let Some(t) = self.catalog.table(&self.database, &name).await? {
                tables.insert(name, t);
            }
        }
        Ok(tables)
    }

    async fn bind(
        &self,
        stmt: &Statement,
        params: Vec<DataType>,
    ) -> Result<(Bound, Vec<DataType>)> {
        let tables = self.fetch_tables(stmt).await?;
        let mut b = Binder::new(&tables, params);
        let bound = b.bind_statement(stmt)?;
        Ok((bound, b.param_types()))
    }

    /// Parses and binds one statement for the extended protocol.
    pub async fn prepare(&mut self, sql: &str, declared: &[Option<DataType>]) -> Result<Prepared> {
        let mut stmts = parse(sql)?;
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
            _ => (None, declared, vec![]),
        };
        Ok(Prepared {
            sql: sql.to_string(),
            stmt,
            bound,
            catalog_version: version,
            param_types,
            columns,
        })
    }

    /// Runs a prepared statement with decoded parameter values.
    pub async fn execute_prepared(&mut self, p: &Prepared, params: &[Datum]) -> Result<StmtResult> {
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
        self.run_statement(stmt, prebound.map(|b| (b, p.catalog_version)), params)
            .await
    }

    /// Executes one statement with the transaction rules above.
    async fn run_statement(
        &mut self,
        stmt: &Statement,
        prebound: Option<(&Bound, u64)>,
        params: &[Datum],
    ) -> Result<StmtResult> {
        if let TxnState::Failed = self.txn {
            return match stmt {
                Statement::Rollback { .. } | Statement::Commit { .. } => {
                    self.txn = TxnState::Idle;
                    Ok(StmtResult::End("ROLLBACK".into()))
                }
                _ => Err(SqlError::new(
                    code::IN_FAILED_SQL_TRANSACTION,
                    "current transaction is aborted, commands ignored until end of transaction block",
                )),
            };
        }
        let r = self.dispatch(stmt, prebound, params).await;
        if r.is_err() {
            if let TxnState::Open(_) = self.txn {
                self.txn = TxnState::Failed;
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
        match stmt {
            Statement::StartTransaction { .. } => {
                if let TxnState::Idle = self.txn {
                    self.txn = TxnState::Open(Txn::new(self.catalog.kv().clone()));
                }
                Ok(StmtResult::Begin)
            }
            Statement::Commit { .. } => {
                match std::mem::replace(&mut self.txn, TxnState::Idle) {
                    TxnState::Open(txn) => txn.commit().await?,
                    TxnState::Idle | TxnState::Failed => {}
                }
                Ok(StmtResult::End("COMMIT".into()))
            }
            Statement::Rollback {
                savepoint: None, ..
            } => {
                self.txn = TxnState::Idle;
                Ok(StmtResult::End("ROLLBACK".into()))
            }
            Statement::Set(set) => self.set(set),
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
                        .into_iter()
                        .map(|n| {
                            vec![
                                Datum::Text(crate::catalog::PUBLIC_SCHEMA.into()),
                                Datum::Text(n),
                            ]
                        })
                        .collect(),
                    tag: "SHOW".into(),
                })
            }
            Statement::CreateTable(ct) => self.create_table(ct).await,
            Statement::Drop {
                object_type: ast::ObjectType::Table,
                if_exists,
                names,
                ..
            } => self.drop_tables(names, *if_exists).await,
            Statement::Truncate(t) => self.truncate(t).await,
            s if is_query_like(s) => self.run_dml(s, prebound, params).await,
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
        let ctx = EvalCtx {
            params: params.to_vec(),
            now: types::now_micros(),
            database: self.database.clone(),
        };
        let out = match &mut self.txn {
            TxnState::Open(txn) => exec::execute(bound, &self.catalog, txn, &ctx).await?,
            _ => {
                let mut attempt = 0;
                loop {
                    let mut txn = Txn::new(self.catalog.kv().clone());
                    let out = exec::execute(bound, &self.catalog, &mut txn, &ctx).await?;
                    match txn.commit().await {
                        Ok(()) => break out,
                        Err(e)
                            if e.code == code::SERIALIZATION_FAILURE
                                && attempt < IMPLICIT_RETRIES =>
                        {
                            attempt += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(
                                2u64 << attempt.min(6),
                            ))
                            .await;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        };
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
            ast::Set::SetNames { .. }
            | ast::Set::SetNamesDefault {}
            | ast::Set::SetTransaction { .. }
            | ast::Set::SetSessionParam(_) => {}
            other => {
                return Err(SqlError::unsupported(format!(
                    "SET form not supported: {other}"
                )))
            }
        }
        Ok(StmtResult::Command("SET".into()))
    }

    fn show(&self, name: &str) -> Result<String> {
        if let Some(v) = self.vars.get(name) {
            return Ok(v.clone());
        }
        Ok(match name {
            "server_version" => crate::SERVER_VERSION.into(),
            "server_version_num" => "150000".into(),
            "transaction_isolation" | "default_transaction_isolation" => "serializable".into(),
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
        let name = plan::table_name(&ct.name)?;
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
                });
                vec![columns.len() - 1]
            }
        };
        let id = self.catalog.allocate_id().await?;
        let desc = TableDesc {
            name: name.clone(),
            id,
            next_column_id: columns.len() as u32 + 1,
            columns,
            primary_key: pk,
            seq_id: id,
        };
        match self.catalog.create_table(&self.database, &desc).await {
            Err(e) if e.code == code::DUPLICATE_TABLE && ct.if_not_exists => {}
            other => other?,
        }
        Ok(StmtResult::Command("CREATE TABLE".into()))
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
            let name = plan::table_name(n)?;
            match self.catalog.table(&self.database, &name).await? {
                Some(d) => descs.push(d),
                None if if_exists => {}
                None => return Err(SqlError::undefined_table(&name)),
            }
        }
        for d in descs {
            self.catalog.drop_table(&self.database, &d).await?;
            exec::purge_table_data(self.catalog.kv(), d.id).await?;
        }
        Ok(StmtResult::Command("DROP TABLE".into()))
    }

    async fn truncate(&mut self, t: &ast::Truncate) -> Result<StmtResult> {
        self.catalog.refresh().await?;
        let mut descs = Vec::new();
        for target in &t.table_names {
            let name = plan::table_name(&target.name)?;
            match self.catalog.table(&self.database, &name).await? {
                Some(d) => descs.push(d),
                None if t.if_exists => {}
                None => return Err(SqlError::undefined_table(&name)),
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
