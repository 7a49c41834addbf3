//! Foreign keys: a child row's referencing columns must match a row of the
//! parent (on its primary key or a unique index), checked when the child
//! row is written; a parent row still referenced cannot be deleted or have
//! its referenced columns changed (RESTRICT / NO ACTION, 23503), unless
//! the constraint says `ON DELETE CASCADE`, which deletes the children
//! too, or `ON DELETE SET NULL`, which sets their referencing columns to
//! NULL (NOT NULL and CHECK constraints apply to the changed rows). A row with a NULL in its referencing columns references nothing
//! (MATCH SIMPLE).
//!
//! Every foreign key has an index on its referencing columns (created with
//! the constraint when the table has none), so finding a parent's children
//! is a prefix scan, never a table scan. Each parent descriptor lists the
//! constraints that reference it ([`crate::catalog::InboundFk`]).
//!
//! Under SERIALIZABLE the reads made by these checks are validated at
//! commit like any other read, so a concurrent delete of the parent and
//! insert of a child cannot both commit. Under READ COMMITTED the parent
//! row is locked (as PostgreSQL's `FOR KEY SHARE` would hold it).

use std::sync::Arc;

use tessera_storage::encoding::prefix_successor;

use crate::catalog::{Catalog, ForeignKeyDesc, TableDesc};
use crate::encoding::{self, encode_key_datum, index_prefix, PRIMARY_INDEX_ID};
use crate::error::{code, Result, SqlError};
use crate::exec::{bind_checks, decode_row, delete_row_entries, row_check, update_row};
use crate::expr::EvalCtx;
use crate::txn::{ReadRow, Txn};
use crate::types::Datum;
use tessera_kv::txn::Isolation;

/// `(a, b)=(1, 2)`, as PostgreSQL's DETAIL lines show a key.
fn key_text(table: &TableDesc, cols: &[usize], values: &[Datum]) -> String {
    let names: Vec<&str> = cols
        .iter()
        .map(|c| table.columns[*c].name.as_str())
        .collect();
    let vals: Vec<String> = cols
        .iter()
        .zip(values)
        .map(|(c, v)| {
            crate::types::format_datum(v, &table.columns[*c].ty).unwrap_or_else(|| "null".into())
        })
        .collect();
    format!("({})=({})", names.join(", "), vals.join(", "))
}

fn values_of(row: &[Datum], cols: &[usize]) -> Option<Vec<Datum>> {
    let v: Vec<Datum> = cols.iter().map(|c| row[*c].clone()).collect();
    (!v.iter().any(Datum::is_null)).then_some(v)
}

async fn table_named(catalog: &Catalog, db: &str, name: &str) -> Result<Arc<TableDesc>> {
    catalog
        .table(db, name)
        .await?
        .ok_or_else(|| SqlError::undefined_table(name))
}

/// Where rows whose `cols` equal `values` start in `table`'s primary key
/// or in an index led by `cols`: the prefix to scan, and whether the
/// entries are index entries (their value is the row's primary key).
pub fn lookup_prefix(
    table: &TableDesc,
    cols: &[usize],
    values: &[Datum],
) -> Option<(Vec<u8>, bool)> {
    let leads = |key: &[usize]| key.len() >= cols.len() && key[..cols.len()] == *cols;
    let mut prefix = if leads(&table.primary_key) {
        index_prefix(table.id, PRIMARY_INDEX_ID)
    } else {
        let idx = table.indexes.iter().find(|i| leads(&i.columns))?;
        index_prefix(table.id, idx.id)
    };
    let through_index = !leads(&table.primary_key);
    for v in values {
        encode_key_datum(&mut prefix, v);
    }
    Some((prefix, through_index))
}

/// The rows of `table` whose `cols` equal `values`.
async fn rows_matching(
    txn: &Txn,
    table: &TableDesc,
    cols: &[usize],
    values: &[Datum],
) -> Result<Vec<ReadRow>> {
    let (prefix, through_index) = lookup_prefix(table, cols, values).ok_or_else(|| {
        SqlError::internal(format!(
            "no index on the foreign key columns of \"{}\"",
            table.name
        ))
    })?;
    let end = prefix_successor(&prefix).expect("a table prefix");
    let found = txn.scan(&prefix, &end).await?;
    if !through_index {
        return Ok(found);
    }
    let primary = index_prefix(table.id, PRIMARY_INDEX_ID);
    let mut rows = Vec::new();
    for entry in found {
        let mut k = primary.clone();
        k.extend_from_slice(&entry.value);
        if let Some(r) = txn.get(&k).await? {
            rows.push(r);
        }
    }
    Ok(rows)
}

/// A child row about to be written (`old`: its previous version, for an
/// update) must reference existing parent rows.
pub async fn check_parents(
    catalog: &Catalog,
    txn: &Txn,
    db: &str,
    table: &TableDesc,
    row: &[Datum],
    old: Option<&[Datum]>,
) -> Result<()> {
    for fk in &table.fks {
        let Some(values) = values_of(row, &fk.columns) else {
            continue;
        };
        if old.is_some_and(|o| values_of(o, &fk.columns).as_ref() == Some(&values)) {
            continue;
        }
        let parent = if fk.parent == table.name {
            Arc::new(table.clone())
        } else {
            table_named(catalog, db, &fk.parent).await?
        };
        if !parent_exists(txn, &parent, fk, &values).await? {
            return Err(SqlError::new(
                code::FOREIGN_KEY_VIOLATION,
                format!(
                    "insert or update on table \"{}\" violates foreign key constraint \"{}\"",
                    table.name, fk.name
                ),
            )
            .with_detail(format!(
                "Key {} is not present in table \"{}\".",
                key_text(table, &fk.columns, &values),
                parent.name
            )));
        }
    }
    Ok(())
}

async fn parent_exists(
    txn: &Txn,
    parent: &TableDesc,
    fk: &ForeignKeyDesc,
    values: &[Datum],
) -> Result<bool> {
    if fk.parent_columns == parent.primary_key {
        let key = encoding::row_key(parent.id, values);
        if txn.isolation() == Isolation::ReadCommitted {
            return Ok(txn.get_locked(&[key]).await?.pop().flatten().is_some());
        }
        return Ok(txn.get(&key).await?.is_some());
    }
    Ok(!rows_matching(txn, parent, &fk.parent_columns, values)
        .await?
        .is_empty())
}

/// A parent row is being deleted (`new` = None) or updated: rows that
/// reference what changes are deleted with it (ON DELETE CASCADE) or make
/// the statement fail.
pub async fn on_parent_change(
    catalog: &Catalog,
    txn: &mut Txn,
    db: &str,
    table: &TableDesc,
    old: &[Datum],
    new: Option<&[Datum]>,
) -> Result<()> {
    for inbound in &table.inbound {
        let child = if inbound.child == table.name {
            Arc::new(table.clone())
        } else {
            table_named(catalog, db, &inbound.child).await?
        };
        let Some(fk) = child.fks.iter().find(|f| f.name == inbound.name) else {
            continue;
        };
        let Some(values) = values_of(old, &fk.parent_columns) else {
            continue;
        };
        if new.is_some_and(|n| values_of(n, &fk.parent_columns).as_ref() == Some(&values)) {
            continue;
        }
        let children = rows_matching(txn, &child, &fk.columns, &values).await?;
        if children.is_empty() {
            continue;
        }
        if new.is_none() && fk.cascade_delete {
            for rr in children {
                let row = decode_row(&child, &rr.value)?;
                Box::pin(on_parent_change(catalog, txn, db, &child, &row, None)).await?;
                delete_row_entries(txn, &child, &rr, &row)?;
            }
            continue;
        }
        if new.is_none() && fk.set_null_delete {
            let checks = bind_checks(&child)?;
            for rr in children {
                let row = decode_row(&child, &rr.value)?;
                let mut nulled = row.clone();
                for c in &fk.columns {
                    nulled[*c] = Datum::Null;
                }
                row_check(&child, &checks, &nulled, &EvalCtx::default())?;
                // Rows referencing the child's changed key (when the
                // foreign key is part of it) follow their own rules.
                Box::pin(on_parent_change(
                    catalog,
                    txn,
                    db,
                    &child,
                    &row,
                    Some(&nulled),
                ))
                .await?;
                update_row(txn, &child, &rr, &row, &nulled)?;
            }
            continue;
        }
        return Err(SqlError::new(
            code::FOREIGN_KEY_VIOLATION,
            format!(
                "update or delete on table \"{}\" violates foreign key constraint \"{}\" on table \"{}\"",
                table.name, fk.name, child.name
            ),
        )
        .with_detail(format!(
            "Key {} is still referenced from table \"{}\".",
            key_text(table, &fk.parent_columns, &values),
            child.name
        )));
    }
    Ok(())
}
