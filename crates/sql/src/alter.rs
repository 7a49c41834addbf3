//! `ALTER TABLE t ADD [CONSTRAINT name] PRIMARY KEY (cols)` and the
//! maintenance statements clients send that have nothing to do here
//! (`VACUUM`, `ANALYZE`, `CHECKPOINT`: accepted, no effect).
//!
//! A table created without a primary key is keyed by a hidden `rowid`.
//! Adding a primary key re-keys it: every row is copied under a new table
//! id, keyed by the new columns (in write batches of
//! [`crate::copy::BATCH_ROWS`] rows, secondary index entries rebuilt), then
//! the descriptor is swapped to the new id and the old rows are removed —
//! as TRUNCATE swaps ids. A duplicate key fails with 23505 and a NULL with
//! 23502, leaving the table as it was. Like other DDL here this is not
//! transactional, and writes to the table while it runs are lost: run it
//! when the table is quiet (pgbench and sysbench add keys right after
//! loading).

use std::sync::Arc;

use sqlparser::ast;

use crate::catalog::{Catalog, TableDesc};
use crate::error::{code, Result, SqlError};
use crate::session::StmtResult;
use crate::{copy, exec, plan};

/// `VACUUM ...`, `ANALYZE ...`, `CHECKPOINT`: the command tag to answer.
pub fn maintenance(sql: &str) -> Option<StmtResult> {
    let first = sql
        .trim_start()
        .split(|c: char| c.is_whitespace() || c == ';')
        .next()?
        .to_ascii_uppercase();
    match first.as_str() {
        "VACUUM" | "ANALYZE" | "ANALYSE" | "CHECKPOINT" => {
            let tag = if first == "ANALYSE" {
                "ANALYZE"
            } else {
                &first
            };
            Some(StmtResult::Command(tag.to_string()))
        }
        _ => None,
    }
}

/// Runs an ALTER TABLE (only ADD PRIMARY KEY so far).
pub async fn alter_table(
    catalog: &Arc<Catalog>,
    database: &str,
    at: &ast::AlterTable,
) -> Result<StmtResult> {
    catalog.refresh().await?;
    let name = plan::table_name(&at.name)?;
    let Some(desc) = catalog.table(database, &name).await? else {
        if at.if_exists {
            return Ok(StmtResult::Command("ALTER TABLE".into()));
        }
        return Err(SqlError::undefined_table(&name));
    };
    let [op] = at.operations.as_slice() else {
        return Err(SqlError::unsupported(
            "ALTER TABLE with several operations is not supported yet",
        ));
    };
    match op {
        ast::AlterTableOperation::AddConstraint {
            constraint: ast::TableConstraint::PrimaryKey(pk),
            ..
        } => {
            let mut cols = Vec::new();
            for ic in &pk.columns {
                let ast::Expr::Identifier(id) = &ic.column.expr else {
                    return Err(SqlError::unsupported("expressions in PRIMARY KEY"));
                };
                let n = plan::ident(id);
                let pos = desc
                    .column_index(&n)
                    .filter(|p| !desc.columns[*p].hidden)
                    .ok_or_else(|| {
                        SqlError::new(
                            code::UNDEFINED_COLUMN,
                            format!("column \"{n}\" of relation \"{name}\" does not exist"),
                        )
                    })?;
                cols.push(pos);
            }
            add_primary_key(catalog, database, &desc, cols).await?;
            Ok(StmtResult::Command("ALTER TABLE".into()))
        }
        other => Err(SqlError::unsupported(format!(
            "ALTER TABLE operation not supported yet: {other}"
        ))),
    }
}

async fn add_primary_key(
    catalog: &Arc<Catalog>,
    database: &str,
    desc: &Arc<TableDesc>,
    cols: Vec<usize>,
) -> Result<()> {
    let rowid = match desc.primary_key.as_slice() {
        [k] if desc.columns[*k].hidden => *k,
        _ => {
            return Err(SqlError::new(
                code::INVALID_TABLE_DEFINITION,
                format!(
                    "multiple primary keys for table \"{}\" are not allowed",
                    desc.name
                ),
            ))
        }
    };
    let mut new = (**desc).clone();
    new.id = catalog.allocate_id().await?;
    new.primary_key = cols.clone();
    for c in &cols {
        new.columns[*c].nullable = false;
    }
    // The hidden rowid goes if nothing else refers to its position.
    let drop_rowid =
        rowid + 1 == new.columns.len() && !new.indexes.iter().any(|i| i.columns.contains(&rowid));
    if drop_rowid {
        new.columns.pop();
    }
    let new = Arc::new(new);
    if let Err(e) = copy_rows(catalog, desc, &new, drop_rowid).await {
        exec::purge_table_data(catalog.kv(), new.id).await?;
        return Err(e);
    }
    catalog.replace_table(database, desc, &new).await?;
    exec::purge_table_data(catalog.kv(), desc.id).await?;
    Ok(())
}

/// Copies every row of `old` into `new` (a new table id), in batches.
async fn copy_rows(
    catalog: &Catalog,
    old: &TableDesc,
    new: &Arc<TableDesc>,
    drop_rowid: bool,
) -> Result<()> {
    let kv = catalog.kv();
    let start = crate::encoding::index_prefix(old.id, crate::encoding::PRIMARY_INDEX_ID);
    let end =
        tessera_storage::encoding::prefix_successor(&start).expect("table prefix is not all 0xff");
    let targets: Vec<usize> = (0..new.columns.len()).collect();
    let mut lo = start;
    loop {
        let chunk = kv.scan(&lo, &end, copy::BATCH_ROWS, false).await?;
        let Some((last, _)) = chunk.last() else {
            return Ok(());
        };
        lo = tessera_common::keys::next_key(last);
        let mut rows = Vec::with_capacity(chunk.len());
        for (_, v) in &chunk {
            let mut row = exec::decode_row(old, v)?;
            if drop_rowid {
                row.pop();
            }
            rows.push(row);
        }
        copy::insert_batch(catalog, new, &targets, rows).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_statements_are_recognized() {
        for (sql, tag) in [
            ("vacuum analyze pgbench_branches", "VACUUM"),
            ("VACUUM", "VACUUM"),
            ("analyze t;", "ANALYZE"),
            ("checkpoint", "CHECKPOINT"),
        ] {
            match maintenance(sql) {
                Some(StmtResult::Command(t)) => assert_eq!(t, tag, "{sql}"),
                other => panic!("{sql}: {other:?}"),
            }
        }
        assert!(maintenance("vacuumx").is_none());
        assert!(maintenance("select 1").is_none());
    }
}
