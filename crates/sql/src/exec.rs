//! The executor: runs bound plans and DML inside a [`Txn`].
//!
//! Operators are evaluated bottom-up and materialize their rows (results
//! do not stream yet). Scans read only the key spans the planner chose:
//! points are `get`s, spans and full scans are KV `scan`s, always through
//! the transaction's write buffer; a scan through a secondary index reads
//! its entries, then `get`s each row by the primary key the entry holds.
//! INSERT, UPDATE and DELETE only buffer writes — the row and its index
//! entries ([`index_entry`]) — nothing reaches KV before the transaction
//! commits. An UPDATE rewrites an index entry only if it changed.
//! `INSERT ... ON CONFLICT` reads each proposed row's key first: see the
//! crate doc for its semantics.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tessera_storage::encoding::prefix_successor;

use crate::catalog::{Catalog, IndexDesc, TableDesc};
use crate::encoding::{self, encode_key_datum, index_prefix, PRIMARY_INDEX_ID};
use crate::error::{code, Result, SqlError};
use crate::expr::{self, BinOp, EvalCtx, Expr};
use crate::plan::{
    explain, AggCall, AggFunc, Binder, Bound, DeletePlan, InsertPlan, InsertSource, JoinKind,
    KeyRange, OnConflict, Plan, Returning, UpdatePlan,
};
use crate::txn::{ReadRow, Txn};
use crate::types::{self, DataType, Datum, Decimal};

pub type Row = Vec<Datum>;

/// Output column names and types.
pub type Columns = Vec<(String, DataType)>;

/// What a statement produced.
#[derive(Debug)]
pub enum Output {
    Rows {
        columns: Vec<(String, DataType)>,
        rows: Vec<Row>,
    },
    /// A DML count; `rows` from RETURNING if any.
    Count {
        tag: &'static str,
        count: usize,
        returning: Option<(Columns, Vec<Row>)>,
    },
}

/// Runs one bound statement.
pub async fn execute(b: &Bound, catalog: &Catalog, txn: &mut Txn, ctx: &EvalCtx) -> Result<Output> {
    match b {
        Bound::Query(q) => Ok(Output::Rows {
            columns: q.columns.clone(),
            rows: run(&q.plan, txn, ctx).await?,
        }),
        Bound::Insert(i) => insert(i, catalog, txn, ctx).await,
        Bound::Update(u) => update(u, txn, ctx).await,
        Bound::Delete(d) => delete(d, txn, ctx).await,
        Bound::Explain(inner) => Ok(Output::Rows {
            columns: vec![("QUERY PLAN".into(), DataType::Text)],
            rows: explain(inner)
                .into_iter()
                .map(|l| vec![Datum::Text(l)])
                .collect(),
        }),
    }
}

fn truthy(e: &Expr, row: &[Datum], ctx: &EvalCtx) -> Result<bool> {
    Ok(e.eval(row, ctx)?.truth()? == Some(true))
}

/// Runs a plan to completion.
pub fn run<'a>(
    plan: &'a Plan,
    txn: &'a Txn,
    ctx: &'a EvalCtx,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<Row>>> + Send + 'a>> {
    Box::pin(async move {
        Ok(match plan {
            Plan::Scan {
                table,
                range,
                filter,
            } => scan(table, range, filter.as_ref(), txn, ctx)
                .await?
                .into_iter()
                .map(|(_, r)| r)
                .collect(),
            Plan::Values { rows } => rows
                .iter()
                .map(|r| r.iter().map(|e| e.eval(&[], ctx)).collect())
                .collect::<Result<_>>()?,
            Plan::Filter { input, predicate } => {
                let mut out = Vec::new();
                for r in run(input, txn, ctx).await? {
                    if truthy(predicate, &r, ctx)? {
                        out.push(r);
                    }
                }
                out
            }
            Plan::Project { input, exprs } => run(input, txn, ctx)
                .await?
                .iter()
                .map(|r| exprs.iter().map(|e| e.eval(r, ctx)).collect())
                .collect::<Result<_>>()?,
            Plan::Join {
                left,
                right,
                kind,
                left_keys,
                right_keys,
                on,
                right_width,
            } => {
                let l = run(left, txn, ctx).await?;
                let r = run(right, txn, ctx).await?;
                join(
                    &l,
                    &r,
                    *kind,
                    left_keys,
                    right_keys,
                    on.as_ref(),
                    *right_width,
                    ctx,
                )?
            }
            Plan::Aggregate {
                input,
                groups,
                aggs,
            } => aggregate(run(input, txn, ctx).await?, groups, aggs, ctx)?,
            Plan::Sort { input, keys } => {
                let rows = run(input, txn, ctx).await?;
                let mut keyed: Vec<(Vec<Datum>, Row)> = rows
                    .into_iter()
                    .map(|r| {
                        let k = keys
                            .iter()
                            .map(|k| k.expr.eval(&r, ctx))
                            .collect::<Result<Vec<_>>>()?;
                        Ok((k, r))
                    })
                    .collect::<Result<_>>()?;
                keyed.sort_by(|(a, _), (b, _)| {
                    for (i, k) in keys.iter().enumerate() {
                        let (x, y) = (&a[i], &b[i]);
                        let o = match (x.is_null(), y.is_null()) {
                            (true, true) => Ordering::Equal,
                            (true, false) => {
                                if k.nulls_first {
                                    Ordering::Less
                                } else {
                                    Ordering::Greater
                                }
                            }
                            (false, true) => {
                                if k.nulls_first {
                                    Ordering::Greater
                                } else {
                                    Ordering::Less
                                }
                            }
                            _ => {
                                let o = x.sort_cmp(y);
                                if k.desc {
                                    o.reverse()
                                } else {
                                    o
                                }
                            }
                        };
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                    Ordering::Equal
                });
                keyed.into_iter().map(|(_, r)| r).collect()
            }
            Plan::Distinct { input } => {
                let mut seen = HashSet::new();
                run(input, txn, ctx)
                    .await?
                    .into_iter()
                    .filter(|r| seen.insert(hash_key(r)))
                    .collect()
            }
            Plan::Limit {
                input,
                limit,
                offset,
            } => {
                let count = |e: &Option<Expr>, what: &str| -> Result<Option<usize>> {
                    match e.as_ref().map(|e| e.eval(&[], ctx)).transpose()? {
                        None | Some(Datum::Null) => Ok(None),
                        Some(Datum::Int(n)) if n >= 0 => Ok(Some(n as usize)),
                        Some(_) => Err(SqlError::new(
                            "2201W",
                            format!("{what} must not be negative"),
                        )),
                    }
                };
                let limit = count(limit, "LIMIT")?;
                let offset = count(offset, "OFFSET")?.unwrap_or(0);
                run(input, txn, ctx)
                    .await?
                    .into_iter()
                    .skip(offset)
                    .take(limit.unwrap_or(usize::MAX))
                    .collect()
            }
        })
    })
}

/// A hashing key for rows: equal SQL values give equal keys, and integer
/// and decimal values that are equal hash alike.
fn hash_key(values: &[Datum]) -> Vec<u8> {
    let mut k = Vec::new();
    for v in values {
        match v {
            Datum::Int(i) => encode_key_datum(&mut k, &Datum::Decimal(Decimal::from_i64(*i))),
            other => encode_key_datum(&mut k, other),
        }
    }
    k
}

#[allow(clippy::too_many_arguments)]
fn join(
    left: &[Row],
    right: &[Row],
    kind: JoinKind,
    left_keys: &[Expr],
    right_keys: &[Expr],
    on: Option<&Expr>,
    right_width: usize,
    ctx: &EvalCtx,
) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    let nulls = vec![Datum::Null; right_width];
    let emit = |l: &Row, r: &Row, out: &mut Vec<Row>| -> Result<bool> {
        let mut joined = l.clone();
        joined.extend(r.iter().cloned());
        if match on {
            Some(p) => truthy(p, &joined, ctx)?,
            None => true,
        } {
            out.push(joined);
            Ok(true)
        } else {
            Ok(false)
        }
    };
    if left_keys.is_empty() {
        for l in left {
            let mut matched = false;
            for r in right {
                matched |= emit(l, r, &mut out)?;
            }
            if !matched && kind == JoinKind::Left {
                let mut joined = l.clone();
                joined.extend(nulls.iter().cloned());
                out.push(joined);
            }
        }
        return Ok(out);
    }
    // Hash join: build on the right side.
    let mut table: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
    for (i, r) in right.iter().enumerate() {
        let k: Vec<Datum> = right_keys
            .iter()
            .map(|e| e.eval(r, ctx))
            .collect::<Result<_>>()?;
        if k.iter().any(Datum::is_null) {
            continue;
        }
        table.entry(hash_key(&k)).or_default().push(i);
    }
    for l in left {
        let k: Vec<Datum> = left_keys
            .iter()
            .map(|e| e.eval(l, ctx))
            .collect::<Result<_>>()?;
        let mut matched = false;
        if !k.iter().any(Datum::is_null) {
            if let Some(rows) = table.get(&hash_key(&k)) {
                for &i in rows {
                    matched |= emit(l, &right[i], &mut out)?;
                }
            }
        }
        if !matched && kind == JoinKind::Left {
            let mut joined = l.clone();
            joined.extend(nulls.iter().cloned());
            out.push(joined);
        }
    }
    Ok(out)
}

/// One group of an aggregation: its values, accumulators and, for
/// DISTINCT aggregates, the values seen.
type GroupState = (Row, Vec<Acc>, Vec<HashSet<Vec<u8>>>);

enum Acc {
    Count(i64),
    Sum(Option<Datum>),
    Avg(Option<Datum>, i64),
    Min(Option<Datum>),
    Max(Option<Datum>),
}

fn widen(v: Datum, arg_ty: &DataType) -> Result<Datum> {
    // int8 sums are numeric (no overflow), avg of integers is numeric.
    Ok(match (v, arg_ty) {
        (Datum::Int(i), DataType::Int8) => Datum::Decimal(Decimal::from_i64(i)),
        (v, _) => v,
    })
}

fn aggregate(rows: Vec<Row>, groups: &[Expr], aggs: &[AggCall], ctx: &EvalCtx) -> Result<Vec<Row>> {
    let new_accs = || -> Vec<Acc> {
        aggs.iter()
            .map(|a| match a.func {
                AggFunc::CountStar | AggFunc::Count => Acc::Count(0),
                AggFunc::Sum => Acc::Sum(None),
                AggFunc::Avg => Acc::Avg(None, 0),
                AggFunc::Min => Acc::Min(None),
                AggFunc::Max => Acc::Max(None),
            })
            .collect()
    };
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut states: Vec<GroupState> = Vec::new();
    for r in &rows {
        let g: Row = groups
            .iter()
            .map(|e| e.eval(r, ctx))
            .collect::<Result<_>>()?;
        let key = hash_key(&g);
        let idx = match index.get(&key) {
            Some(i) => *i,
            None => {
                states.push((g, new_accs(), vec![HashSet::new(); aggs.len()]));
                index.insert(key, states.len() - 1);
                states.len() - 1
            }
        };
        let (_, accs, seen) = &mut states[idx];
        for (i, a) in aggs.iter().enumerate() {
            let v = match &a.arg {
                Some(e) => e.eval(r, ctx)?,
                None => Datum::Bool(true),
            };
            if v.is_null() {
                continue;
            }
            if a.distinct && !seen[i].insert(hash_key(std::slice::from_ref(&v))) {
                continue;
            }
            match &mut accs[i] {
                Acc::Count(n) => *n += 1,
                Acc::Sum(s) => {
                    let v = widen(v, &a.arg_ty)?;
                    *s = Some(match s.take() {
                        None => v,
                        Some(x) => expr::binary(BinOp::Add, x, v)?,
                    })
                }
                Acc::Avg(s, n) => {
                    let v = match v {
                        Datum::Int(i) => Datum::Decimal(Decimal::from_i64(i)),
                        v => v,
                    };
                    *s = Some(match s.take() {
                        None => v,
                        Some(x) => expr::binary(BinOp::Add, x, v)?,
                    });
                    *n += 1;
                }
                Acc::Min(m) => {
                    if m.as_ref().is_none_or(|x| v.sort_cmp(x) == Ordering::Less) {
                        *m = Some(v)
                    }
                }
                Acc::Max(m) => {
                    if m.as_ref()
                        .is_none_or(|x| v.sort_cmp(x) == Ordering::Greater)
                    {
                        *m = Some(v)
                    }
                }
            }
        }
    }
    if states.is_empty() && groups.is_empty() {
        states.push((vec![], new_accs(), vec![]));
    }
    states
        .into_iter()
        .map(|(mut g, accs, _)| {
            for (acc, a) in accs.into_iter().zip(aggs) {
                g.push(match acc {
                    Acc::Count(n) => Datum::Int(n),
                    Acc::Sum(s) => match (s, &a.arg_ty) {
                        (Some(Datum::Int(i)), DataType::Numeric(_)) => {
                            Datum::Decimal(Decimal::from_i64(i))
                        }
                        (s, _) => s.unwrap_or(Datum::Null),
                    },
                    Acc::Avg(None, _) => Datum::Null,
                    Acc::Avg(Some(s), n) => expr::binary(BinOp::Div, s, Datum::Int(n))?,
                    Acc::Min(m) | Acc::Max(m) => m.unwrap_or(Datum::Null),
                });
            }
            Ok(g)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Scans

/// Decodes a row value into the table's column order.
pub fn decode_row(table: &TableDesc, value: &[u8]) -> Result<Row> {
    let mut row = vec![Datum::Null; table.columns.len()];
    for (id, d) in encoding::decode_row(value)? {
        if let Some(p) = table.columns.iter().position(|c| c.id == id) {
            row[p] = d;
        }
    }
    Ok(row)
}

pub fn encode_row(table: &TableDesc, row: &[Datum]) -> Vec<u8> {
    let cols: Vec<(u32, &Datum)> = table.columns.iter().map(|c| c.id).zip(row.iter()).collect();
    encoding::encode_row(&cols)
}

/// A constant converted to a key column's type, or `None` if no key can
/// equal it (NULL, or a value the type cannot represent exactly).
fn key_value(e: &Expr, ty: &DataType, ctx: &EvalCtx) -> Result<Option<Datum>> {
    let v = e.eval(&[], ctx)?;
    if v.is_null() {
        return Ok(None);
    }
    let Ok(c) = types::coerce_for_column(v.clone(), ty) else {
        return Ok(None);
    };
    if v.sql_cmp(&c) != Some(Ordering::Equal) && !matches!(ty, DataType::Char(_)) {
        return Ok(None);
    }
    Ok(Some(c))
}

/// A KV span `[start, end)`.
type Span = (Vec<u8>, Vec<u8>);

/// The KV keys and spans a key range covers: `(points, spans)`.
fn resolve_range(
    table: &TableDesc,
    range: &KeyRange,
    ctx: &EvalCtx,
) -> Result<(Vec<Vec<u8>>, Vec<Span>)> {
    resolve_on(table, PRIMARY_INDEX_ID, &table.primary_key, range, ctx)
}

/// [`resolve_range`] over the index `index_id` on columns `cols`.
fn resolve_on(
    table: &TableDesc,
    index_id: u64,
    cols: &[usize],
    range: &KeyRange,
    ctx: &EvalCtx,
) -> Result<(Vec<Vec<u8>>, Vec<Span>)> {
    let base = index_prefix(table.id, index_id);
    let succ = |k: &[u8]| prefix_successor(k).expect("table keys are not all 0xff");
    let ty = |k: usize| &table.columns[cols[k]].ty;
    match range {
        KeyRange::Index { index_id, range } => {
            let idx = table
                .indexes
                .iter()
                .find(|i| i.id == *index_id)
                .ok_or_else(|| SqlError::internal("index vanished from its table"))?;
            let (points, mut spans) = resolve_on(table, idx.id, &idx.columns, range, ctx)?;
            // Entries of a non-unique (or partly NULL) index carry the
            // primary key after the indexed values: a point is a prefix.
            spans.extend(points.into_iter().map(|p| {
                let e = succ(&p);
                (p, e)
            }));
            Ok((vec![], spans))
        }
        KeyRange::Full => Ok((vec![], vec![(base.clone(), succ(&base))])),
        KeyRange::Points(points) => {
            let mut keys = Vec::new();
            'points: for p in points {
                let mut k = base.clone();
                for (i, e) in p.iter().enumerate() {
                    match key_value(e, ty(i), ctx)? {
                        Some(v) => encode_key_datum(&mut k, &v),
                        None => continue 'points,
                    }
                }
                keys.push(k);
            }
            keys.sort();
            keys.dedup();
            Ok((keys, vec![]))
        }
        KeyRange::Span {
            prefix,
            lower,
            upper,
        } => {
            let mut p = base.clone();
            for (i, e) in prefix.iter().enumerate() {
                match key_value(e, ty(i), ctx)? {
                    Some(v) => encode_key_datum(&mut p, &v),
                    None => return Ok((vec![], vec![])),
                }
            }
            let k = prefix.len();
            let bound = |b: &Option<(Expr, bool)>| -> Result<Option<(Vec<u8>, bool)>> {
                let Some((e, incl)) = b else { return Ok(None) };
                let v = e.eval(&[], ctx)?;
                if v.is_null() {
                    // x > NULL matches nothing; signal with an empty span.
                    return Ok(Some((vec![], false)));
                }
                match key_value(e, ty(k), ctx)? {
                    Some(v) => {
                        let mut key = p.clone();
                        encode_key_datum(&mut key, &v);
                        Ok(Some((key, *incl)))
                    }
                    // Not exactly representable: widen to the whole prefix;
                    // the filter decides.
                    None => Ok(None),
                }
            };
            let lo = bound(lower)?;
            let hi = bound(upper)?;
            if matches!(&lo, Some((k, _)) if k.is_empty())
                || matches!(&hi, Some((k, _)) if k.is_empty())
            {
                return Ok((vec![], vec![]));
            }
            // Keys whose column k is NULL sort first (tag 0x00): skip them.
            let mut null_key = p.clone();
            encode_key_datum(&mut null_key, &Datum::Null);
            let start = match lo {
                Some((key, true)) => key,
                Some((key, false)) => succ(&key),
                None => succ(&null_key),
            };
            let end = match hi {
                Some((key, true)) => succ(&key),
                Some((key, false)) => key,
                None => succ(&p),
            };
            Ok((vec![], vec![(start, end)]))
        }
    }
}

/// Reads the rows of `table` in `range` that pass `filter`, through the
/// transaction's buffer, with what was read (for conditional writes).
pub async fn scan(
    table: &Arc<TableDesc>,
    range: &KeyRange,
    filter: Option<&Expr>,
    txn: &Txn,
    ctx: &EvalCtx,
) -> Result<Vec<(ReadRow, Row)>> {
    let (points, spans) = resolve_range(table, range, ctx)?;
    let mut read = Vec::new();
    for k in points {
        if let Some(r) = txn.get(&k).await? {
            read.push(r);
        }
    }
    if let KeyRange::Index { .. } = range {
        // Index join: each entry's value is its row's primary key.
        let primary = index_prefix(table.id, PRIMARY_INDEX_ID);
        let mut seen = HashSet::new();
        for (s, e) in spans {
            for entry in txn.scan(&s, &e).await? {
                let mut k = primary.clone();
                k.extend_from_slice(&entry.value);
                if !seen.insert(k.clone()) {
                    continue;
                }
                if let Some(r) = txn.get(&k).await? {
                    read.push(r);
                }
            }
        }
    } else {
        for (s, e) in spans {
            read.extend(txn.scan(&s, &e).await?);
        }
    }
    let mut out = Vec::with_capacity(read.len());
    for rr in read {
        let row = decode_row(table, &rr.value)?;
        if let Some(f) = filter {
            if !truthy(f, &row, ctx)? {
                continue;
            }
        }
        out.push((rr, row));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// DML

fn not_null_check(table: &TableDesc, row: &[Datum]) -> Result<()> {
    for (c, v) in table.columns.iter().zip(row) {
        if !c.nullable && v.is_null() {
            return Err(SqlError::new(
                code::NOT_NULL_VIOLATION,
                format!(
                    "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                    c.name, table.name
                ),
            ));
        }
    }
    Ok(())
}

fn row_key_of(table: &TableDesc, row: &[Datum]) -> Vec<u8> {
    let pk: Vec<Datum> = table.primary_key.iter().map(|p| row[*p].clone()).collect();
    encoding::row_key(table.id, &pk)
}

/// The entry of `row` in a secondary index: its key and value.
///
/// ```text
/// key   = /table <table id> <index id> <indexed cols>... [<pk cols>...]
/// value = <pk cols>...          (key-encoded: the row key's suffix)
/// ```
///
/// A UNIQUE index leaves the primary key out of the key when no indexed
/// value is NULL, so two rows with the same values collide on one key
/// (the insert's "absent" condition catches it: 23505). Otherwise the
/// primary key makes the key unique (NULLs never conflict).
pub fn index_entry(table: &TableDesc, idx: &IndexDesc, row: &[Datum]) -> (Vec<u8>, Vec<u8>) {
    let mut k = index_prefix(table.id, idx.id);
    let mut any_null = false;
    for c in &idx.columns {
        any_null |= row[*c].is_null();
        encode_key_datum(&mut k, &row[*c]);
    }
    let mut pk = Vec::new();
    for c in &table.primary_key {
        encode_key_datum(&mut pk, &row[*c]);
    }
    if !idx.unique || any_null {
        k.extend_from_slice(&pk);
    }
    (k, pk)
}

/// Buffers a new row and its index entries.
fn insert_row(txn: &mut Txn, table: &TableDesc, row: &[Datum], guarded: bool) -> Result<()> {
    let key = row_key_of(table, row);
    let value = encode_row(table, row);
    if guarded {
        txn.insert_absent_read(key, value)?;
    } else {
        txn.insert(key, value, &table.pkey_name())?;
    }
    for idx in &table.indexes {
        let (k, v) = index_entry(table, idx, row);
        txn.insert(k, v, &idx.name)?;
    }
    Ok(())
}

/// Buffers the change of a row read as `rr` (holding `old`) to `new`.
fn update_row(txn: &mut Txn, table: &TableDesc, rr: &ReadRow, old: &Row, new: &Row) -> Result<()> {
    let key = row_key_of(table, new);
    let value = encode_row(table, new);
    if key == rr.key {
        txn.write_read_row(rr, Some(value));
    } else {
        txn.write_read_row(rr, None);
        txn.insert(key, value, &table.pkey_name())?;
    }
    for idx in &table.indexes {
        let before = index_entry(table, idx, old);
        let after = index_entry(table, idx, new);
        if before != after {
            txn.delete_entry(before.0, &before.1, &idx.name)?;
            txn.insert(after.0, after.1, &idx.name)?;
        }
    }
    Ok(())
}

/// Buffers the deletion of a row read as `rr` (holding `row`).
fn delete_row(txn: &mut Txn, table: &TableDesc, rr: &ReadRow, row: &Row) -> Result<()> {
    txn.write_read_row(rr, None);
    for idx in &table.indexes {
        let (k, v) = index_entry(table, idx, row);
        txn.delete_entry(k, &v, &idx.name)?;
    }
    Ok(())
}

fn returning_rows(
    r: &Option<Returning>,
    rows: &[Row],
    ctx: &EvalCtx,
) -> Result<Option<(Columns, Vec<Row>)>> {
    let Some(r) = r else { return Ok(None) };
    let out = rows
        .iter()
        .map(|row| r.exprs.iter().map(|e| e.eval(row, ctx)).collect())
        .collect::<Result<_>>()?;
    Ok(Some((r.columns.clone(), out)))
}

async fn insert(p: &InsertPlan, catalog: &Catalog, txn: &mut Txn, ctx: &EvalCtx) -> Result<Output> {
    let table = &p.table;
    let source: Vec<Vec<Option<Datum>>> = match &p.source {
        InsertSource::Values(rows) => rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|e| e.as_ref().map(|e| e.eval(&[], ctx)).transpose())
                    .collect::<Result<_>>()
            })
            .collect::<Result<_>>()?,
        InsertSource::Query(plan) => run(plan, txn, ctx)
            .await?
            .into_iter()
            .map(|r| r.into_iter().map(Some).collect())
            .collect(),
    };
    // Defaults, bound once per statement.
    let no_tables = HashMap::new();
    let mut binder = Binder::new(&no_tables, vec![]);
    let defaults: Vec<Option<Expr>> = table
        .columns
        .iter()
        .map(|c| {
            c.default
                .as_ref()
                .map(|d| binder.bind_default(d, &c.ty))
                .transpose()
        })
        .collect::<Result<_>>()?;
    // Serial values: one reservation for the whole statement.
    let serial_cols: Vec<usize> = (0..table.columns.len())
        .filter(|i| table.columns[*i].serial)
        .collect();
    let mut needed = 0u64;
    for r in &source {
        for c in &serial_cols {
            match p.targets.iter().position(|t| t == c) {
                Some(k) if r[k].is_some() => {}
                _ => needed += 1,
            }
        }
    }
    let mut next_serial = if needed > 0 {
        catalog.reserve(table.seq_id, needed).await?
    } else {
        0
    };
    let mut written = Vec::new();
    // Keys this statement inserted or updated (ON CONFLICT DO UPDATE may
    // not touch a row twice).
    let mut touched: HashSet<Vec<u8>> = HashSet::new();
    for r in source {
        let mut row = vec![Datum::Null; table.columns.len()];
        let mut given = vec![false; table.columns.len()];
        for (k, v) in r.into_iter().enumerate() {
            if let Some(v) = v {
                let c = p.targets[k];
                row[c] = types::coerce_for_column(v, &table.columns[c].ty)?;
                given[c] = true;
            }
        }
        for (i, c) in table.columns.iter().enumerate() {
            if given[i] {
                continue;
            }
            if c.serial {
                row[i] = types::coerce_for_column(Datum::Int(next_serial), &c.ty)?;
                next_serial += 1;
            } else if let Some(d) = &defaults[i] {
                row[i] = types::coerce_for_column(d.eval(&[], ctx)?, &c.ty)?;
            }
        }
        not_null_check(table, &row)?;
        let Some(oc) = &p.on_conflict else {
            insert_row(txn, table, &row, false)?;
            written.push(row);
            continue;
        };
        let key = row_key_of(table, &row);
        let existing = txn.get(&key).await?;
        let Some(rr) = existing else {
            // Absent now; if someone inserts it before we commit, the
            // commit fails with 40001 and the statement is retried (and
            // then sees the row).
            insert_row(txn, table, &row, true)?;
            touched.insert(key);
            written.push(row);
            continue;
        };
        let OnConflict::DoUpdate { sets, filter } = oc else {
            continue;
        };
        if !touched.insert(key) {
            return Err(SqlError::new(
                code::CARDINALITY_VIOLATION,
                "ON CONFLICT DO UPDATE command cannot affect row a second time",
            )
            .with_hint(
                "Ensure that no rows proposed for insertion within the same command have duplicate constrained values.",
            ));
        }
        let old = decode_row(table, &rr.value)?;
        let mut both = old.clone();
        both.extend(row.iter().cloned());
        if let Some(f) = filter {
            if !truthy(f, &both, ctx)? {
                continue;
            }
        }
        let mut new = old.clone();
        for (c, e) in sets {
            new[*c] = types::coerce_for_column(e.eval(&both, ctx)?, &table.columns[*c].ty)?;
        }
        not_null_check(table, &new)?;
        update_row(txn, table, &rr, &old, &new)?;
        touched.insert(row_key_of(table, &new));
        written.push(new);
    }
    Ok(Output::Count {
        tag: "INSERT",
        count: written.len(),
        returning: returning_rows(&p.returning, &written, ctx)?,
    })
}

async fn update(p: &UpdatePlan, txn: &mut Txn, ctx: &EvalCtx) -> Result<Output> {
    let table = &p.table;
    let rows = scan(table, &p.range, p.filter.as_ref(), txn, ctx).await?;
    let mut written = Vec::new();
    for (rr, old) in rows {
        let mut new = old.clone();
        for (c, e) in &p.sets {
            new[*c] = types::coerce_for_column(e.eval(&old, ctx)?, &table.columns[*c].ty)?;
        }
        not_null_check(table, &new)?;
        update_row(txn, table, &rr, &old, &new)?;
        written.push(new);
    }
    Ok(Output::Count {
        tag: "UPDATE",
        count: written.len(),
        returning: returning_rows(&p.returning, &written, ctx)?,
    })
}

async fn delete(p: &DeletePlan, txn: &mut Txn, ctx: &EvalCtx) -> Result<Output> {
    let rows = scan(&p.table, &p.range, p.filter.as_ref(), txn, ctx).await?;
    let mut deleted = Vec::new();
    for (rr, row) in rows {
        delete_row(txn, &p.table, &rr, &row)?;
        deleted.push(row);
    }
    Ok(Output::Count {
        tag: "DELETE",
        count: deleted.len(),
        returning: returning_rows(&p.returning, &deleted, ctx)?,
    })
}

/// Deletes every key under a table id, in bounded batches (after DROP or
/// TRUNCATE made them unreachable, so partial progress is invisible).
pub async fn purge_table_data(db: &tessera_kv::DB, table_id: u64) -> Result<()> {
    purge_prefix(db, &encoding::table_prefix(table_id)).await
}

/// Deletes every key under `start` (a table's or an index's prefix), in
/// bounded batches.
pub async fn purge_prefix(db: &tessera_kv::DB, start: &[u8]) -> Result<()> {
    let end = prefix_successor(start).expect("table prefix is not all 0xff");
    loop {
        let rows = db.scan(start, &end, 1000, false).await?;
        if rows.is_empty() {
            return Ok(());
        }
        for (k, _) in rows {
            db.delete(&k).await?;
        }
    }
}
