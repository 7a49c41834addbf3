//! ALTER TABLE — `ADD [CONSTRAINT name] PRIMARY KEY (cols)`, `ADD
//! [CONSTRAINT name] CHECK (expr)` (ADD UNIQUE is a unique index, built by
//! the session), `ADD [COLUMN]`, `DROP [COLUMN]`, `ALTER [COLUMN] c SET /
//! DROP DEFAULT`,
//! `ALTER [COLUMN] c SET / DROP NOT NULL`, `RENAME [COLUMN] a TO b`,
//! `RENAME TO` — and
//! the maintenance statements clients send that have nothing to do here
//! (`VACUUM`, `ANALYZE`, `CHECKPOINT`: accepted, no effect).
//!
//! Rows store their values by column id, so adding a column leaves
//! existing rows as they are (they read NULL there) unless it has a
//! DEFAULT, which is then written into every existing row in batches. A
//! dropped column is kept in the descriptor as a hidden, nameless
//! placeholder (as PostgreSQL keeps `attisdropped` columns), so the
//! positions other parts of the descriptor refer to do not move; indexes
//! and CHECK constraints on it go with it. These, like all DDL here, are
//! not transactional: run them when the table is quiet.
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

/// `VACUUM ...`, `ANALYZE ...`, `CHECKPOINT`, `SET CONSTRAINTS ALL
/// DEFERRED | IMMEDIATE`: the command tag to answer. (Every constraint is
/// checked when its statement runs, so no constraint is deferrable and
/// SET CONSTRAINTS ALL changes nothing, as in PostgreSQL for
/// non-deferrable constraints.)
pub fn maintenance(sql: &str) -> Option<StmtResult> {
    let words: Vec<String> = sql
        .trim()
        .trim_end_matches(';')
        .split_whitespace()
        .map(str::to_ascii_uppercase)
        .collect();
    if let [set, constraints, all, mode] = words.as_slice() {
        if set == "SET"
            && constraints == "CONSTRAINTS"
            && all == "ALL"
            && (mode == "DEFERRED" || mode == "IMMEDIATE")
        {
            return Some(StmtResult::Command("SET CONSTRAINTS".into()));
        }
    }
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

/// Runs an ALTER TABLE of the table called `name` (resolved by the caller).
pub async fn alter_table(
    catalog: &Arc<Catalog>,
    database: &str,
    name: &str,
    at: &ast::AlterTable,
) -> Result<StmtResult> {
    catalog.refresh().await?;
    let name = name.to_string();
    let Some(desc) = catalog.table(database, &name).await? else {
        if at.if_exists {
            return Ok(StmtResult::Command("ALTER TABLE".into()));
        }
        return Err(SqlError::undefined_table(&name));
    };
    // Several operations run one after the other, each on the table as
    // the previous one left it (like all DDL here, not as one atomic step).
    let renames = at
        .operations
        .iter()
        .any(|op| matches!(op, ast::AlterTableOperation::RenameTable { .. }));
    if renames && at.operations.len() > 1 {
        return Err(SqlError::syntax(
            "RENAME TO cannot be combined with other ALTER TABLE operations",
        ));
    }
    let mut desc = desc;
    for (i, op) in at.operations.iter().enumerate() {
        if i > 0 {
            catalog.refresh().await?;
            desc = catalog
                .table(database, &name)
                .await?
                .ok_or_else(|| SqlError::undefined_table(&name))?;
        }
        alter_one(catalog, database, &name, &desc, op).await?;
    }
    Ok(StmtResult::Command("ALTER TABLE".into()))
}

/// One operation of an ALTER TABLE.
async fn alter_one(
    catalog: &Arc<Catalog>,
    database: &str,
    name: &str,
    desc: &Arc<TableDesc>,
    op: &ast::AlterTableOperation,
) -> Result<StmtResult> {
    let name = name.to_string();
    let desc = desc.clone();
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
        ast::AlterTableOperation::AddConstraint {
            constraint: ast::TableConstraint::Check(c),
            ..
        } => {
            add_check(catalog, database, &desc, c).await?;
            Ok(StmtResult::Command("ALTER TABLE".into()))
        }
        ast::AlterTableOperation::AddColumn {
            if_not_exists,
            column_def,
            ..
        } => {
            add_column(catalog, database, &desc, column_def, *if_not_exists).await?;
            Ok(StmtResult::Command("ALTER TABLE".into()))
        }
        ast::AlterTableOperation::DropColumn {
            column_names,
            if_exists,
            ..
        } => {
            for c in column_names {
                let desc = catalog
                    .table(database, &name)
                    .await?
                    .ok_or_else(|| SqlError::undefined_table(&name))?;
                drop_column(catalog, database, &desc, &plan::ident(c), *if_exists).await?;
                catalog.refresh().await?;
            }
            Ok(StmtResult::Command("ALTER TABLE".into()))
        }
        ast::AlterTableOperation::AlterColumn { column_name, op } => {
            alter_column(catalog, database, &desc, &plan::ident(column_name), op).await?;
            Ok(StmtResult::Command("ALTER TABLE".into()))
        }
        ast::AlterTableOperation::RenameColumn {
            old_column_name,
            new_column_name,
        } => {
            let (old, new) = (plan::ident(old_column_name), plan::ident(new_column_name));
            rename_column(catalog, database, &desc, &old, &new).await?;
            Ok(StmtResult::Command("ALTER TABLE".into()))
        }
        ast::AlterTableOperation::RenameTable { table_name } => {
            let (ast::RenameTableNameKind::To(n) | ast::RenameTableNameKind::As(n)) = table_name;
            // The table stays in its schema (PostgreSQL: the new name
            // cannot name another schema).
            let new_name = plan::table_name(n)?;
            let schema = crate::catalog::split_name(&desc.name).0;
            let new_name =
                crate::catalog::qualified_name(schema, crate::catalog::split_name(&new_name).1);
            rename_table(catalog, database, &desc, &new_name).await?;
            Ok(StmtResult::Command("ALTER TABLE".into()))
        }
        other => Err(SqlError::unsupported(format!(
            "ALTER TABLE operation not supported yet: {other}"
        ))),
    }
}

fn undefined_column(table: &str, column: &str) -> SqlError {
    SqlError::new(
        code::UNDEFINED_COLUMN,
        format!("column \"{column}\" of relation \"{table}\" does not exist"),
    )
}

/// The position of a visible column by name.
pub(crate) fn visible_column(desc: &TableDesc, name: &str) -> Option<usize> {
    desc.column_index(name).filter(|p| !desc.columns[*p].hidden)
}

async fn add_column(
    catalog: &Arc<Catalog>,
    database: &str,
    desc: &Arc<TableDesc>,
    def: &ast::ColumnDef,
    if_not_exists: bool,
) -> Result<()> {
    let cname = plan::ident(&def.name);
    if desc.column_index(&cname).is_some() {
        if if_not_exists {
            return Ok(());
        }
        return Err(SqlError::new(
            code::DUPLICATE_COLUMN,
            format!(
                "column \"{cname}\" of relation \"{}\" already exists",
                desc.name
            ),
        ));
    }
    let (ty, serial) = plan::data_type(&def.data_type)?;
    if serial {
        return Err(SqlError::unsupported(
            "adding a SERIAL column to an existing table is not supported yet",
        ));
    }
    let mut new = (**desc).clone();
    let mut col = crate::catalog::Column {
        id: new.next_column_id,
        name: cname.clone(),
        ty,
        nullable: true,
        default: None,
        hidden: false,
        serial: false,
        identity: crate::catalog::Identity::None,
    };
    let mut checks = Vec::new();
    for opt in &def.options {
        match &opt.option {
            ast::ColumnOption::Null => col.nullable = true,
            ast::ColumnOption::NotNull => col.nullable = false,
            ast::ColumnOption::Default(e) => col.default = Some(e.to_string()),
            ast::ColumnOption::Check(c) => {
                let given = c.name.as_ref().or(opt.name.as_ref()).map(plan::ident);
                checks.push((
                    given.unwrap_or_else(|| format!("{}_{cname}_check", desc.name)),
                    c.expr.to_string(),
                ));
            }
            other => {
                return Err(SqlError::unsupported(format!(
                    "ALTER TABLE ADD COLUMN with {other} is not supported yet"
                )))
            }
        }
    }
    let no_tables = std::collections::HashMap::new();
    let default = match &col.default {
        Some(d) => Some(plan::Binder::new(&no_tables, vec![]).bind_default(d, &col.ty)?),
        None => None,
    };
    new.next_column_id += 1;
    new.columns.push(col.clone());
    for (name, expr) in checks {
        plan::Binder::new(&no_tables, vec![]).bind_check(&new, &expr)?;
        new.checks.push(crate::catalog::CheckDesc { name, expr });
    }
    // Existing rows: a NOT NULL column needs a default to fill them.
    let pos = new.columns.len() - 1;
    let has_rows = !catalog
        .kv()
        .scan(&row_prefix(desc), &row_end(desc), 1, false)
        .await?
        .is_empty();
    let fills = default.is_some() || !new.checks.is_empty();
    if has_rows && !col.nullable && default.is_none() {
        return Err(SqlError::new(
            code::NOT_NULL_VIOLATION,
            format!(
                "column \"{cname}\" of relation \"{}\" contains null values",
                desc.name
            ),
        ));
    }
    catalog.replace_table(database, desc, &new).await?;
    if has_rows && fills {
        let new = Arc::new(new);
        if let Err(e) = fill_column(catalog, &new, pos, default.as_ref()).await {
            // Undo: the table as it was (rows already filled keep a value
            // under a column id nothing refers to any more).
            catalog.refresh().await?;
            if let Some(now) = catalog.table(database, &desc.name).await? {
                let mut back = (**desc).clone();
                back.next_column_id = new.next_column_id;
                let _ = catalog.replace_table(database, &now, &back).await;
            }
            return Err(e);
        }
    }
    Ok(())
}

/// The stored rows of a table, read in chunks of [`copy::BATCH_ROWS`]
/// straight from KV (the latest committed values; DDL here is not
/// transactional).
pub(crate) struct TableRows {
    next: Vec<u8>,
    end: Vec<u8>,
}

impl TableRows {
    pub(crate) fn new(desc: &TableDesc) -> TableRows {
        TableRows {
            next: row_prefix(desc),
            end: row_end(desc),
        }
    }

    /// The next chunk of `(key, value)` pairs; `None` after the last.
    pub(crate) async fn next_chunk(
        &mut self,
        kv: &tessera_kv::DB,
    ) -> Result<Option<Vec<(Vec<u8>, Vec<u8>)>>> {
        let chunk = kv
            .scan(&self.next, &self.end, copy::BATCH_ROWS, false)
            .await?;
        let Some((last, _)) = chunk.last() else {
            return Ok(None);
        };
        self.next = tessera_common::keys::next_key(last);
        Ok(Some(chunk))
    }
}

fn row_prefix(desc: &TableDesc) -> Vec<u8> {
    crate::encoding::index_prefix(desc.id, crate::encoding::PRIMARY_INDEX_ID)
}

fn row_end(desc: &TableDesc) -> Vec<u8> {
    tessera_storage::encoding::prefix_successor(&row_prefix(desc)).expect("a table prefix")
}

/// Writes the default of the new column at `pos` into every existing row
/// (in batches), checking the table's CHECK constraints.
async fn fill_column(
    catalog: &Catalog,
    desc: &Arc<TableDesc>,
    pos: usize,
    default: Option<&crate::expr::Expr>,
) -> Result<()> {
    let kv = catalog.kv();
    let ctx = crate::expr::EvalCtx {
        now: crate::types::now_micros(),
        ..Default::default()
    };
    let checks = exec::bind_checks(desc)?;
    let mut rows = TableRows::new(desc);
    while let Some(chunk) = rows.next_chunk(kv).await? {
        let mut txn = crate::txn::Txn::new(kv.clone());
        for (k, v) in chunk {
            let mut row = exec::decode_row(desc, &v)?;
            if let Some(d) = default {
                row[pos] =
                    crate::types::coerce_for_column(d.eval(&[], &ctx)?, &desc.columns[pos].ty)?;
            }
            for (name, e) in &checks {
                if let crate::types::Datum::Bool(false) = e.eval(&row, &ctx)? {
                    return Err(SqlError::new(
                        code::CHECK_VIOLATION,
                        format!(
                            "check constraint \"{name}\" of relation \"{}\" is violated by some row",
                            desc.name
                        ),
                    ));
                }
            }
            let rr = crate::txn::ReadRow {
                key: k,
                origin: crate::txn::Origin::Kv(v.clone()),
                value: v,
            };
            txn.write_read_row(&rr, Some(exec::encode_row(desc, &row)));
        }
        txn.commit().await?;
    }
    Ok(())
}

async fn drop_column(
    catalog: &Arc<Catalog>,
    database: &str,
    desc: &Arc<TableDesc>,
    cname: &str,
    if_exists: bool,
) -> Result<()> {
    let Some(pos) = visible_column(desc, cname) else {
        if if_exists {
            return Ok(());
        }
        return Err(undefined_column(&desc.name, cname));
    };
    if desc.primary_key.contains(&pos) {
        return Err(SqlError::unsupported(format!(
            "cannot drop column \"{cname}\": it is part of the primary key of \"{}\"",
            desc.name
        )));
    }
    if desc.fks.iter().any(|f| f.columns.contains(&pos))
        || !desc.inbound.is_empty() && {
            let mut used = false;
            for i in &desc.inbound {
                if let Some(child) = catalog.table(database, &i.child).await? {
                    used |= child
                        .fks
                        .iter()
                        .any(|f| f.name == i.name && f.parent_columns.contains(&pos));
                }
            }
            used
        }
    {
        return Err(SqlError::new(
            code::DEPENDENT_OBJECTS_STILL_EXIST,
            format!(
                "cannot drop column {cname} of table {} because a foreign key depends on it",
                desc.name
            ),
        ));
    }
    let mut new = (**desc).clone();
    {
        let c = &mut new.columns[pos];
        c.name = format!("........dropped.{}", c.id);
        c.hidden = true;
        c.serial = false;
        c.nullable = true;
        c.default = None;
    }
    // Indexes on the column go; so do CHECKs that mention it.
    let (gone, kept): (Vec<_>, Vec<_>) = new
        .indexes
        .drain(..)
        .partition(|i| i.columns.contains(&pos));
    new.indexes = kept;
    let no_tables = std::collections::HashMap::new();
    let probe = new.clone();
    new.checks.retain(|c| {
        plan::Binder::new(&no_tables, vec![])
            .bind_check(&probe, &c.expr)
            .is_ok()
    });
    catalog.replace_table(database, desc, &new).await?;
    for i in gone {
        exec::purge_prefix(catalog.kv(), &crate::encoding::index_prefix(desc.id, i.id)).await?;
    }
    Ok(())
}

/// `ALTER COLUMN c SET DEFAULT e / DROP DEFAULT / SET NOT NULL / DROP NOT
/// NULL`. SET NOT NULL reads every row first and refuses (23502) if one
/// holds a NULL there.
async fn alter_column(
    catalog: &Arc<Catalog>,
    database: &str,
    desc: &Arc<TableDesc>,
    cname: &str,
    op: &ast::AlterColumnOperation,
) -> Result<()> {
    let pos = visible_column(desc, cname).ok_or_else(|| undefined_column(&desc.name, cname))?;
    let mut new = (**desc).clone();
    let col = &mut new.columns[pos];
    match op {
        ast::AlterColumnOperation::SetDefault { value } => {
            let no_tables = std::collections::HashMap::new();
            let text = value.to_string();
            plan::Binder::new(&no_tables, vec![]).bind_default(&text, &col.ty)?;
            col.default = Some(text);
            col.serial = false;
        }
        ast::AlterColumnOperation::DropDefault => {
            col.default = None;
            col.serial = false;
        }
        ast::AlterColumnOperation::DropNotNull => {
            if desc.primary_key.contains(&pos) {
                return Err(SqlError::new(
                    code::INVALID_TABLE_DEFINITION,
                    format!("column \"{cname}\" is in a primary key"),
                ));
            }
            col.nullable = true;
        }
        ast::AlterColumnOperation::SetNotNull => {
            col.nullable = false;
            if desc.columns[pos].nullable && column_has_null(catalog, desc, pos).await? {
                return Err(SqlError::new(
                    code::NOT_NULL_VIOLATION,
                    format!(
                        "column \"{cname}\" of relation \"{}\" contains null values",
                        desc.name
                    ),
                ));
            }
        }
        ast::AlterColumnOperation::SetDataType {
            data_type, using, ..
        } => {
            if using.is_some() {
                return Err(SqlError::unsupported("ALTER COLUMN ... TYPE ... USING"));
            }
            let (ty, serial) = plan::data_type(data_type)?;
            if serial {
                return Err(SqlError::new(
                    code::UNDEFINED_OBJECT,
                    format!("type \"{data_type}\" does not exist"),
                ));
            }
            // A foreign key compares the column with another: both must
            // stay in one family (integers with integers, strings with
            // strings).
            let old_ty = &desc.columns[pos].ty;
            let same_family = old_ty == &ty
                || (old_ty.is_integer() && ty.is_integer())
                || (old_ty.is_string() && ty.is_string());
            let in_fk = desc.fks.iter().any(|f| f.columns.contains(&pos))
                || (!desc.inbound.is_empty()
                    && (desc.primary_key.contains(&pos)
                        || desc
                            .indexes
                            .iter()
                            .any(|i| i.unique && i.columns.contains(&pos))));
            if in_fk && !same_family {
                return Err(SqlError::mismatch(format!(
                    "column \"{cname}\" is in a foreign key: it cannot change from {} to {}",
                    crate::types::type_display(old_ty),
                    crate::types::type_display(&ty)
                )));
            }
            check_retype(catalog, desc, pos, &ty).await?;
            col.ty = ty;
            if let Some(d) = &col.default {
                let no_tables = std::collections::HashMap::new();
                plan::Binder::new(&no_tables, vec![]).bind_default(d, &col.ty)?;
            }
            let no_tables = std::collections::HashMap::new();
            for c in &new.checks {
                plan::Binder::new(&no_tables, vec![]).bind_check(&new, &c.expr)?;
            }
        }
        other => {
            return Err(SqlError::unsupported(format!(
                "ALTER TABLE operation not supported yet: ALTER COLUMN {cname} {other}"
            )))
        }
    }
    catalog.replace_table(database, desc, &new).await
}

/// `ALTER COLUMN c TYPE t` changes only the catalog: every stored value
/// must already be a value of the new type, unchanged (varchar(50) to
/// varchar(150) or text, int4 to int8, a narrowing that every row
/// fits). A value the new type refuses fails as an insert would (22001,
/// 22003, ...); one it would change (numeric rounding, char padding, a
/// different representation such as int to text) needs the rows
/// rewritten, which is not supported (0A000).
async fn check_retype(
    catalog: &Catalog,
    desc: &TableDesc,
    pos: usize,
    ty: &crate::types::DataType,
) -> Result<()> {
    let mut rows = TableRows::new(desc);
    while let Some(chunk) = rows.next_chunk(catalog.kv()).await? {
        for (_, v) in &chunk {
            let value = exec::decode_row(desc, v)?.swap_remove(pos);
            if value.is_null() {
                continue;
            }
            if crate::types::coerce_for_column(value.clone(), ty)? != value {
                return Err(SqlError::unsupported(format!(
                    "changing column \"{}\" from {} to {} would rewrite its rows",
                    desc.columns[pos].name,
                    crate::types::type_display(&desc.columns[pos].ty),
                    crate::types::type_display(ty)
                )));
            }
        }
    }
    Ok(())
}

/// `ADD [CONSTRAINT name] CHECK (expr)`: every row must pass it first
/// (23514 otherwise). Unnamed, it is `<table>_check` (numbered when taken).
async fn add_check(
    catalog: &Arc<Catalog>,
    database: &str,
    desc: &Arc<TableDesc>,
    c: &ast::CheckConstraint,
) -> Result<()> {
    let base = crate::catalog::split_name(&desc.name).1.to_string();
    let taken = |n: &str| desc.checks.iter().any(|c| c.name == n);
    let name = match &c.name {
        Some(n) => {
            let n = plan::ident(n);
            if taken(&n) {
                return Err(SqlError::new(
                    code::DUPLICATE_OBJECT,
                    format!(
                        "constraint \"{n}\" for relation \"{}\" already exists",
                        desc.name
                    ),
                ));
            }
            n
        }
        None => {
            let mut names: Vec<String> = desc.checks.iter().map(|c| c.name.clone()).collect();
            crate::catalog::fresh_name(format!("{base}_check"), &mut names)
        }
    };
    let mut new = (**desc).clone();
    let expr = c.expr.to_string();
    let no_tables = std::collections::HashMap::new();
    let check = plan::Binder::new(&no_tables, vec![]).bind_check(&new, &expr)?;
    new.checks.push(crate::catalog::CheckDesc {
        name: name.clone(),
        expr,
    });
    let ctx = crate::expr::EvalCtx {
        now: crate::types::now_micros(),
        ..Default::default()
    };
    let mut rows = TableRows::new(desc);
    while let Some(chunk) = rows.next_chunk(catalog.kv()).await? {
        for (_, v) in &chunk {
            let row = exec::decode_row(desc, v)?;
            if let crate::types::Datum::Bool(false) = check.eval(&row, &ctx)? {
                return Err(SqlError::new(
                    code::CHECK_VIOLATION,
                    format!(
                        "check constraint \"{name}\" of relation \"{}\" is violated by some row",
                        desc.name
                    ),
                ));
            }
        }
    }
    catalog.replace_table(database, desc, &new).await
}

/// Whether some row of the table holds NULL in the column at `pos`.
async fn column_has_null(catalog: &Catalog, desc: &TableDesc, pos: usize) -> Result<bool> {
    let mut rows = TableRows::new(desc);
    while let Some(chunk) = rows.next_chunk(catalog.kv()).await? {
        for (_, v) in &chunk {
            if exec::decode_row(desc, v)?[pos].is_null() {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

async fn rename_column(
    catalog: &Arc<Catalog>,
    database: &str,
    desc: &Arc<TableDesc>,
    old: &str,
    new_name: &str,
) -> Result<()> {
    let pos = visible_column(desc, old).ok_or_else(|| undefined_column(&desc.name, old))?;
    if desc.column_index(new_name).is_some() {
        return Err(SqlError::new(
            code::DUPLICATE_COLUMN,
            format!(
                "column \"{new_name}\" of relation \"{}\" already exists",
                desc.name
            ),
        ));
    }
    let mut new = (**desc).clone();
    new.columns[pos].name = new_name.to_string();
    let no_tables = std::collections::HashMap::new();
    if let Some(c) = new.checks.iter().find(|c| {
        plan::Binder::new(&no_tables, vec![])
            .bind_check(&new, &c.expr)
            .is_err()
    }) {
        return Err(SqlError::unsupported(format!(
            "cannot rename column \"{old}\": CHECK constraint \"{}\" refers to it",
            c.name
        )));
    }
    catalog.replace_table(database, desc, &new).await
}

async fn rename_table(
    catalog: &Arc<Catalog>,
    database: &str,
    desc: &Arc<TableDesc>,
    new_name: &str,
) -> Result<()> {
    if !desc.fks.is_empty() || !desc.inbound.is_empty() {
        return Err(SqlError::unsupported(format!(
            "renaming table \"{}\", which has foreign keys, is not supported yet",
            desc.name
        )));
    }
    let mut new = (**desc).clone();
    new.name = new_name.to_string();
    catalog.create_table(database, &new).await?;
    catalog.drop_table(database, desc).await
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
        assert!(matches!(
            maintenance("SET CONSTRAINTS ALL IMMEDIATE;"),
            Some(StmtResult::Command(t)) if t == "SET CONSTRAINTS"
        ));
        assert!(maintenance("set constraints fk_a deferred").is_none());
        assert!(maintenance("select 1").is_none());
    }
}
