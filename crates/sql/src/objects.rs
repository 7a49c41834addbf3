//! Catalog objects besides tables and indexes: views and roles, and the
//! fetching of the relations a statement names before it is bound.
//!
//! `CREATE VIEW` binds its query once (so a bad view is rejected at once,
//! with the error the query would raise) and stores the query text and
//! the output column names; every statement that reads the view binds the
//! text again in place of the name (see `plan::Binder`). Views are
//! read-only: INSERT, UPDATE and DELETE on one fail with 42809.
//!
//! `CREATE USER` / `CREATE ROLE` only record the name (see the catalog);
//! `DROP USER` / `DROP ROLE` remove it.

use std::collections::HashMap;
use std::sync::Arc;

use sqlparser::ast;

use crate::catalog::{Catalog, TableDesc, ViewDesc, PUBLIC_SCHEMA};
use crate::error::{code, Result, SqlError};
use crate::plan::{self, Binder, Bound};
use crate::session::StmtResult;

/// Descriptors of the relations a statement may read.
pub struct Relations {
    pub tables: HashMap<String, Arc<TableDesc>>,
    pub views: HashMap<String, Arc<ViewDesc>>,
}

/// Fetches the tables and views named in `names` (keys as
/// [`plan::relation_key`] makes them), and those named by the views found,
/// transitively. An unqualified name is looked up along `search_path`
/// (after `pg_catalog`, as in PostgreSQL).
pub async fn fetch_relations(
    catalog: &Catalog,
    db: &str,
    search_path: &[String],
    names: Vec<String>,
) -> Result<Relations> {
    let mut tables = HashMap::new();
    let mut views = HashMap::new();
    let mut todo = names;
    while let Some(name) = todo.pop() {
        if tables.contains_key(&name) || views.contains_key(&name) {
            continue;
        }
        let system = match crate::pgcatalog::resolve(&name) {
            Some(full) => crate::pgcatalog::view(catalog, db, &full).await?,
            None => crate::infoschema::view(catalog, db, &name).await?,
        };
        let public = format!("{PUBLIC_SCHEMA}.");
        let resolved = match name.strip_prefix(&public) {
            Some(t) => t.to_string(),
            None => catalog.resolve(db, search_path, &name).await?,
        };
        if let Some(v) = system {
            views.insert(name, v);
        } else if let Some(t) = catalog.table(db, &resolved).await? {
            tables.insert(name, t);
        } else if let Some(v) = catalog.view(db, &resolved).await? {
            if let Ok(q) = plan::parse_query(&v.query) {
                plan::query_tables(&q, &mut todo);
            }
            views.insert(name, v);
        }
    }
    Ok(Relations { tables, views })
}

/// The name of the existing relation `n` names: an unqualified name is
/// looked up along `search_path`, a qualified one is taken as it is.
pub async fn existing_name(
    catalog: &Catalog,
    db: &str,
    search_path: &[String],
    n: &ast::ObjectName,
) -> Result<String> {
    let name = plan::table_name(n)?;
    if n.0.len() > 1 {
        return Ok(name);
    }
    catalog.resolve(db, search_path, &name).await
}

/// The name a relation created as `n` gets: an unqualified one goes into
/// the first schema of `search_path` that exists.
pub async fn new_name(
    catalog: &Catalog,
    db: &str,
    search_path: &[String],
    n: &ast::ObjectName,
) -> Result<String> {
    let name = plan::table_name(n)?;
    if n.0.len() > 1 {
        return Ok(name);
    }
    catalog.name_for_new(db, search_path, &name).await
}

/// `CREATE [OR REPLACE] VIEW name [(columns)] AS query`.
pub async fn create_view(
    catalog: &Catalog,
    db: &str,
    search_path: &[String],
    cv: &ast::CreateView,
) -> Result<()> {
    if cv.materialized {
        return Err(SqlError::unsupported(
            "materialized views are not supported",
        ));
    }
    if cv.temporary {
        return Err(SqlError::unsupported("temporary views are not supported"));
    }
    let name = new_name(catalog, db, search_path, &cv.name).await?;
    if cv.if_not_exists
        && (catalog.view(db, &name).await?.is_some() || catalog.table(db, &name).await?.is_some())
    {
        return Ok(());
    }
    let mut names = Vec::new();
    plan::query_tables(&cv.query, &mut names);
    let rels = fetch_relations(catalog, db, search_path, names).await?;
    let mut binder = Binder::new(&rels.tables, vec![]).with_views(rels.views);
    let Bound::Query(q) = binder.bind_statement(&ast::Statement::Query(cv.query.clone()))? else {
        return Err(SqlError::internal("a view's query did not bind to a query"));
    };
    if !binder.params.is_empty() {
        return Err(SqlError::syntax(
            "there is no parameter in a view definition",
        ));
    }
    if cv.columns.len() > q.columns.len() {
        return Err(SqlError::syntax(
            "CREATE VIEW specifies more column names than columns",
        ));
    }
    let columns: Vec<String> = q
        .columns
        .iter()
        .enumerate()
        .map(|(i, (n, _))| {
            cv.columns
                .get(i)
                .map(|c| plan::ident(&c.name))
                .unwrap_or(n.clone())
        })
        .collect();
    for (i, c) in columns.iter().enumerate() {
        if columns[..i].contains(c) {
            return Err(SqlError::new(
                code::DUPLICATE_COLUMN,
                format!("column \"{c}\" specified more than once"),
            ));
        }
    }
    let desc = ViewDesc {
        name,
        query: cv.query.to_string(),
        columns,
    };
    catalog.create_view(db, &desc, cv.or_replace).await
}

/// `DROP VIEW [IF EXISTS] names`: 42P01 for a missing view, 42809 for a
/// table.
pub async fn drop_views(
    catalog: &Catalog,
    db: &str,
    search_path: &[String],
    names: &[ast::ObjectName],
    if_exists: bool,
) -> Result<()> {
    for n in names {
        let name = existing_name(catalog, db, search_path, n).await?;
        if catalog.table(db, &name).await?.is_some() {
            return Err(SqlError::new(
                code::WRONG_OBJECT_TYPE,
                format!("\"{name}\" is not a view"),
            )
            .with_hint("Use DROP TABLE to remove a table."));
        }
        if !catalog.drop_view(db, &name).await? && !if_exists {
            return Err(SqlError::new(
                code::UNDEFINED_TABLE,
                format!("view \"{name}\" does not exist"),
            ));
        }
    }
    Ok(())
}

/// `CREATE USER` / `CREATE ROLE`: recorded names only.
pub async fn create_roles(catalog: &Catalog, names: &[String], if_not_exists: bool) -> Result<()> {
    for n in names {
        match catalog.create_role(n).await {
            Err(e) if if_not_exists && e.code == code::DUPLICATE_OBJECT => {}
            other => other?,
        }
    }
    Ok(())
}

/// `DROP USER` / `DROP ROLE`.
pub async fn drop_roles(catalog: &Catalog, names: &[String], if_exists: bool) -> Result<()> {
    for n in names {
        if !catalog.drop_role(n).await? && !if_exists {
            return Err(SqlError::new(
                code::UNDEFINED_OBJECT,
                format!("role \"{n}\" does not exist"),
            ));
        }
    }
    Ok(())
}

/// Runs CREATE USER / CREATE ROLE / DROP USER / DROP ROLE.
pub async fn role_statement(catalog: &Catalog, stmt: &ast::Statement) -> Result<StmtResult> {
    match stmt {
        ast::Statement::CreateRole(cr) => {
            let names = cr
                .names
                .iter()
                .map(plan::table_name)
                .collect::<Result<Vec<_>>>()?;
            create_roles(catalog, &names, cr.if_not_exists).await?;
            Ok(StmtResult::Command("CREATE ROLE".into()))
        }
        ast::Statement::CreateUser(cu) => {
            create_roles(catalog, &[plan::ident(&cu.name)], cu.if_not_exists).await?;
            Ok(StmtResult::Command("CREATE ROLE".into()))
        }
        ast::Statement::Drop {
            names, if_exists, ..
        } => {
            let names = names
                .iter()
                .map(plan::table_name)
                .collect::<Result<Vec<_>>>()?;
            drop_roles(catalog, &names, *if_exists).await?;
            Ok(StmtResult::Command("DROP ROLE".into()))
        }
        _ => Err(SqlError::internal("not a role statement")),
    }
}

/// The session variable that holds whether the open transaction is
/// read-only (`BEGIN READ ONLY`, `START TRANSACTION READ ONLY`).
pub const READ_ONLY_VAR: &str = "transaction_read_only";

/// Whether transaction modes ask for a read-only transaction.
pub fn is_read_only(modes: &[ast::TransactionMode]) -> bool {
    modes.iter().any(|m| {
        matches!(
            m,
            ast::TransactionMode::AccessMode(ast::TransactionAccessMode::ReadOnly)
        )
    })
}

/// In a read-only transaction only reads and transaction control run:
/// anything else fails with 25006, as in PostgreSQL.
pub fn check_read_only(stmt: &ast::Statement) -> Result<()> {
    use ast::Statement as S;
    let allowed = match stmt {
        S::Query(_)
        | S::StartTransaction { .. }
        | S::Commit { .. }
        | S::Rollback { .. }
        | S::Savepoint { .. }
        | S::ReleaseSavepoint { .. }
        | S::Set(_)
        | S::ShowVariable { .. }
        | S::ShowTables { .. }
        | S::ShowCreate { .. } => true,
        S::Explain {
            statement, analyze, ..
        } => !analyze || check_read_only(statement).is_ok(),
        _ => false,
    };
    if allowed {
        return Ok(());
    }
    let what = match stmt {
        S::Insert(_) => "INSERT".to_string(),
        S::Update(_) => "UPDATE".to_string(),
        S::Delete(_) => "DELETE".to_string(),
        other => other
            .to_string()
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
            .to_uppercase(),
    };
    Err(SqlError::new(
        code::READ_ONLY_SQL_TRANSACTION,
        format!("cannot execute {what} in a read-only transaction"),
    ))
}
