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
use crate::expr::{self, BinOp, EvalCtx, Expr, SubqueryPlan};
use crate::plan::{
    explain, join_strategy, AggCall, AggFunc, Arbiter, Binder, Bound, BoundQuery, DeletePlan,
    FrameBound, InsertPlan, InsertSource, JoinKind, JoinStrategy, KeyRange, OnConflict, Plan,
    Returning, RowLock, SetOpKind, SortKey, UpdatePlan, WindowCall, WindowFunc, LOOKUP_JOIN_LIMIT,
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
    if let Bound::Explain(inner) = b {
        return Ok(Output::Rows {
            columns: vec![("QUERY PLAN".into(), DataType::Text)],
            rows: explain(inner)
                .into_iter()
                .map(|l| vec![Datum::Text(l)])
                .collect(),
        });
    }
    if let Bound::ExplainAnalyze(inner) = b {
        let started = std::time::Instant::now();
        let out = Box::pin(execute(inner, catalog, txn, ctx)).await?;
        let elapsed = started.elapsed();
        let mut lines = explain(inner);
        lines.push(match &out {
            Output::Rows { rows, .. } => format!("rows returned: {}", rows.len()),
            Output::Count { tag, count, .. } => {
                format!("rows affected: {count} ({})", tag.to_lowercase())
            }
        });
        lines.push(format!(
            "Execution Time: {:.3} ms",
            elapsed.as_secs_f64() * 1000.0
        ));
        return Ok(Output::Rows {
            columns: vec![("QUERY PLAN".into(), DataType::Text)],
            rows: lines.into_iter().map(|l| vec![Datum::Text(l)]).collect(),
        });
    }
    // Every scan of the statement (subqueries included) is read before
    // anything is written: the statement sees one snapshot of its tables.
    let mut scans = Vec::new();
    collect_bound(b, &mut scans);
    let lock = match b {
        Bound::Query(q) => q.lock.as_ref(),
        _ => None,
    };
    let env = prefetch(scans, txn, ctx, lock).await?;
    let ctx = &EvalCtx {
        env: Some(Arc::new(env)),
        ..ctx.clone()
    };
    match b {
        Bound::Query(q) => Ok(Output::Rows {
            columns: q.columns.clone(),
            rows: run_sync(&q.plan, ctx)?,
        }),
        Bound::Insert(i) => insert(i, catalog, txn, ctx).await,
        Bound::Update(u) => update(u, catalog, txn, ctx).await,
        Bound::Delete(d) => delete(d, catalog, txn, ctx).await,
        Bound::Explain(_) | Bound::ExplainAnalyze(_) => unreachable!("handled above"),
    }
}

fn truthy(e: &Expr, row: &[Datum], ctx: &EvalCtx) -> Result<bool> {
    Ok(e.eval(row, ctx)?.truth()? == Some(true))
}

/// Runs a plan to completion (reads its scans, then evaluates it).
pub async fn run(plan: &Plan, txn: &Txn, ctx: &EvalCtx) -> Result<Vec<Row>> {
    let mut scans = Vec::new();
    collect_plan(plan, &mut scans);
    let env = prefetch(scans, txn, ctx, None).await?;
    let ctx = EvalCtx {
        env: Some(Arc::new(env)),
        ..ctx.clone()
    };
    run_sync(plan, &ctx)
}

// ---------------------------------------------------------------------------
// The statement's reads

/// The rows every scan of a statement read, keyed by the address of its
/// [`Plan::Scan`] node (plans do not move while a statement runs), and the
/// results of subqueries already run, keyed by plan and outer values.
///
/// Reading everything first keeps evaluation synchronous, so expressions
/// can run subqueries (once per outer row if they are correlated) without
/// going back to KV.
pub struct Env {
    scans: HashMap<usize, Arc<Vec<Row>>>,
    memo: parking_lot::Mutex<HashMap<MemoKey, Arc<Vec<Row>>>>,
    /// The current round's rows of each running `WITH RECURSIVE`, by work
    /// table id.
    work: parking_lot::Mutex<HashMap<usize, Arc<Vec<Row>>>>,
}

/// A subquery plan's address and the key of its outer values.
type MemoKey = (usize, Vec<u8>);

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Env({} scans)", self.scans.len())
    }
}

/// Subquery results remembered per statement (beyond this, correlated
/// subqueries are simply re-run).
const MEMO_LIMIT: usize = 100_000;

/// A scan of a statement: its plan node's address, table, key range and
/// filter; for the right side of a lookup join, the join's left side.
struct ScanRef<'p> {
    key: usize,
    table: Arc<TableDesc>,
    range: KeyRange,
    filter: Option<Expr>,
    lookup: Option<LookupRef<'p>>,
}

/// The left side of a lookup join and how its keys map onto the right
/// table's primary key (see [`JoinStrategy::Lookup`]).
struct LookupRef<'p> {
    left: &'p Plan,
    left_keys: &'p [Expr],
    key_columns: Vec<usize>,
}

fn plan_key(p: &Plan) -> usize {
    p as *const Plan as usize
}

fn collect_expr<'p>(e: &'p Expr, out: &mut Vec<ScanRef<'p>>) {
    e.walk(&mut |x| {
        if let Expr::Subquery { plan, .. } = x {
            collect_plan(&plan.plan, out)
        }
    });
}

fn collect_exprs<'p>(es: impl IntoIterator<Item = &'p Expr>, out: &mut Vec<ScanRef<'p>>) {
    es.into_iter().for_each(|e| collect_expr(e, out))
}

/// The scans of a plan, subqueries in its expressions included.
fn collect_plan<'p>(plan: &'p Plan, out: &mut Vec<ScanRef<'p>>) {
    match plan {
        Plan::Scan {
            table,
            range,
            filter,
        } => {
            out.push(ScanRef {
                key: plan_key(plan),
                table: table.clone(),
                range: range.clone(),
                filter: filter.clone(),
                lookup: None,
            });
            collect_exprs(filter, out);
        }
        Plan::Values { rows } => collect_exprs(rows.iter().flatten(), out),
        Plan::Series { args } | Plan::Unnest { args } => collect_exprs(args, out),
        Plan::Filter { input, predicate } => {
            collect_plan(input, out);
            collect_expr(predicate, out);
        }
        Plan::Project { input, exprs } => {
            collect_plan(input, out);
            collect_exprs(exprs, out);
        }
        Plan::ProjectSet { input, exprs, srfs } => {
            collect_plan(input, out);
            collect_exprs(exprs, out);
            collect_exprs(srfs.iter().flat_map(|(_, a)| a), out);
        }
        Plan::Join {
            left,
            right,
            left_keys,
            right_keys,
            on,
            ..
        } => {
            collect_plan(left, out);
            let first_right = out.len();
            collect_plan(right, out);
            if let JoinStrategy::Lookup { key_columns, .. } = join_strategy(plan) {
                // The right side is one scan: it reads what the left needs.
                out[first_right].lookup = Some(LookupRef {
                    left,
                    left_keys,
                    key_columns,
                });
            }
            collect_exprs(left_keys.iter().chain(right_keys).chain(on), out);
        }
        Plan::Aggregate {
            input,
            groups,
            aggs,
            ..
        } => {
            collect_plan(input, out);
            collect_exprs(groups, out);
            collect_exprs(
                aggs.iter().flat_map(|a| {
                    a.arg
                        .iter()
                        .chain(a.filter.iter())
                        .chain(a.delimiter.iter())
                        .chain(a.order_by.iter().map(|k| &k.expr))
                }),
                out,
            );
        }
        Plan::Sort { input, keys } => {
            collect_plan(input, out);
            collect_exprs(keys.iter().map(|k| &k.expr), out);
        }
        Plan::Distinct { input } => collect_plan(input, out),
        Plan::DistinctOn { input, keys } => {
            collect_plan(input, out);
            collect_exprs(keys, out);
        }
        Plan::Limit {
            input,
            limit,
            offset,
        } => {
            collect_plan(input, out);
            collect_exprs(limit.iter().chain(offset), out);
        }
        Plan::SetOp { left, right, .. } => {
            collect_plan(left, out);
            collect_plan(right, out);
        }
        Plan::Lateral {
            left,
            sub,
            args,
            on,
            ..
        } => {
            collect_plan(left, out);
            collect_plan(&sub.plan, out);
            collect_exprs(args.iter().chain(on), out);
        }
        Plan::Recursive {
            anchor, recursive, ..
        } => {
            collect_plan(anchor, out);
            collect_plan(recursive, out);
        }
        Plan::WorkTable { .. } => {}
        Plan::Window { input, calls } => {
            collect_plan(input, out);
            collect_exprs(calls.iter().flat_map(|c| c.exprs()), out);
        }
    }
}

fn collect_returning<'p>(r: &'p Option<Returning>, out: &mut Vec<ScanRef<'p>>) {
    if let Some(r) = r {
        collect_exprs(&r.exprs, out)
    }
}

/// The scans of a statement (the rows DML changes are read separately).
fn collect_bound<'p>(b: &'p Bound, out: &mut Vec<ScanRef<'p>>) {
    match b {
        Bound::Query(q) => collect_plan(&q.plan, out),
        Bound::Insert(i) => {
            match &i.source {
                InsertSource::Values(rows) => collect_exprs(rows.iter().flatten().flatten(), out),
                InsertSource::Query(p) => collect_plan(p, out),
            }
            if let Some(OnConflict::DoUpdate { sets, filter }) = &i.on_conflict {
                collect_exprs(sets.iter().map(|(_, e)| e).chain(filter), out);
            }
            collect_returning(&i.returning, out);
        }
        Bound::Update(u) => {
            collect_exprs(u.sets.iter().map(|(_, e)| e).chain(&u.filter), out);
            if let Some(from) = &u.from {
                collect_plan(from, out);
            }
            collect_returning(&u.returning, out);
        }
        Bound::Delete(d) => {
            collect_exprs(&d.filter, out);
            collect_returning(&d.returning, out);
        }
        Bound::Explain(_) | Bound::ExplainAnalyze(_) => {}
    }
}

/// Reads every scan of a statement; with `lock` (SELECT ... FOR UPDATE),
/// the rows of the tables it names are read under locks.
async fn prefetch(
    scans: Vec<ScanRef<'_>>,
    txn: &Txn,
    ctx: &EvalCtx,
    lock: Option<&RowLock>,
) -> Result<Env> {
    let mut out: HashMap<usize, Arc<Vec<Row>>> = HashMap::new();
    for s in scans {
        let ScanRef {
            key, table, filter, ..
        } = s;
        if out.contains_key(&key) {
            continue;
        }
        let range = match s.lookup {
            Some(l) => lookup_range(&l, &out, ctx)?.unwrap_or(s.range),
            None => s.range,
        };
        let locking = lock.is_some_and(|l| l.of.is_empty() || l.of.contains(&table.name));
        let (mode, filter) = if locking {
            // Lock only the rows that pass the scan's own filter (when it
            // can be evaluated before the statement's subqueries).
            let mut has_subquery = false;
            if let Some(f) = &filter {
                f.walk(&mut |x| has_subquery |= matches!(x, Expr::Subquery { .. }));
            }
            (ReadMode::Locking, filter.filter(|_| !has_subquery))
        } else {
            (ReadMode::Plain, None)
        };
        let rows: Vec<Row> = scan(&table, &range, filter.as_ref(), txn, ctx, mode)
            .await?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        out.insert(key, Arc::new(rows));
    }
    Ok(Env {
        scans: out,
        memo: parking_lot::Mutex::new(HashMap::new()),
        work: parking_lot::Mutex::new(HashMap::new()),
    })
}

/// The primary keys a lookup join's right side must read: those the rows
/// of its left side (whose scans `read` holds) give, or `None` if the left
/// has more than [`LOOKUP_JOIN_LIMIT`] rows (then the whole table is read).
fn lookup_range(
    l: &LookupRef<'_>,
    read: &HashMap<usize, Arc<Vec<Row>>>,
    ctx: &EvalCtx,
) -> Result<Option<KeyRange>> {
    let env = Env {
        scans: read.clone(),
        memo: parking_lot::Mutex::new(HashMap::new()),
        work: parking_lot::Mutex::new(HashMap::new()),
    };
    let ctx = EvalCtx {
        env: Some(Arc::new(env)),
        ..ctx.clone()
    };
    let rows = run_sync(l.left, &ctx)?;
    if rows.len() > LOOKUP_JOIN_LIMIT {
        return Ok(None);
    }
    let mut points = Vec::with_capacity(rows.len());
    for r in &rows {
        let values: Vec<Datum> = l
            .left_keys
            .iter()
            .map(|e| e.eval(r, &ctx))
            .collect::<Result<_>>()?;
        if values.iter().any(Datum::is_null) {
            continue; // NULL matches nothing
        }
        points.push(
            l.key_columns
                .iter()
                .map(|&i| Expr::Literal(values[i].clone()))
                .collect(),
        );
    }
    Ok(Some(KeyRange::Points(points)))
}

/// The rows of a subquery for the outer values `outer` (remembered, so an
/// uncorrelated subquery runs once per statement).
pub fn subquery_rows(
    sub: &SubqueryPlan,
    outer: Vec<Datum>,
    ctx: &EvalCtx,
) -> Result<Arc<Vec<Row>>> {
    let env = ctx
        .env
        .as_ref()
        .ok_or_else(|| SqlError::internal("subquery evaluated outside a statement"))?;
    let key = (sub as *const SubqueryPlan as usize, hash_key(&outer));
    if let Some(r) = env.memo.lock().get(&key) {
        return Ok(r.clone());
    }
    let inner = EvalCtx {
        outer,
        ..ctx.clone()
    };
    let rows = Arc::new(run_sync(&sub.plan, &inner)?);
    let mut memo = env.memo.lock();
    if memo.len() < MEMO_LIMIT {
        memo.insert(key, rows.clone());
    }
    Ok(rows)
}

/// Runs a `WITH RECURSIVE` (see [`Plan::Recursive`]). A query that keeps
/// producing rows stops with 54000 once it holds more than a join may.
fn recursive(
    id: usize,
    anchor: &Plan,
    recursive: &Plan,
    all: bool,
    ctx: &EvalCtx,
) -> Result<Vec<Row>> {
    let env = ctx
        .env
        .as_ref()
        .ok_or_else(|| SqlError::internal("WITH RECURSIVE evaluated outside a statement"))?;
    let mut seen = HashSet::new();
    let mut keep = |rows: Vec<Row>| -> Vec<Row> {
        if all {
            rows
        } else {
            rows.into_iter()
                .filter(|r| seen.insert(hash_key(r)))
                .collect()
        }
    };
    let mut out = keep(run_sync(anchor, ctx)?);
    let mut round = out.clone();
    while !round.is_empty() {
        let previous = env.work.lock().insert(id, Arc::new(round));
        let produced = run_sync(recursive, ctx);
        match previous {
            Some(p) => env.work.lock().insert(id, p),
            None => env.work.lock().remove(&id),
        };
        round = keep(produced?);
        if out.len() + round.len() > MAX_JOIN_ROWS {
            return Err(SqlError::new(
                code::PROGRAM_LIMIT_EXCEEDED,
                format!("a recursive query produced more than {MAX_JOIN_ROWS} rows"),
            )
            .with_hint("check that the recursive term stops producing rows"));
        }
        out.extend(round.iter().cloned());
    }
    Ok(out)
}

/// Orders two rows' sort key values as `keys` say (direction, NULLs).
fn compare_keys(a: &[Datum], b: &[Datum], keys: &[SortKey]) -> Ordering {
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
}

/// Appends each window function's value to every row (see
/// [`Plan::Window`]).
fn window(rows: Vec<Row>, calls: &[WindowCall], ctx: &EvalCtx) -> Result<Vec<Row>> {
    let mut extra: Vec<Vec<Datum>> = vec![Vec::with_capacity(calls.len()); rows.len()];
    let mut output_order = None;
    for call in calls {
        // Partitions, in the order of their key values.
        let mut parts: HashMap<Vec<u8>, (Row, Vec<usize>)> = HashMap::new();
        for (i, r) in rows.iter().enumerate() {
            let k: Row = call
                .partition
                .iter()
                .map(|e| e.eval(r, ctx))
                .collect::<Result<_>>()?;
            parts.entry(hash_key(&k)).or_insert((k, vec![])).1.push(i);
        }
        let mut parts: Vec<(Row, Vec<usize>)> = parts.into_values().collect();
        let asc: Vec<SortKey> = call
            .partition
            .iter()
            .map(|e| SortKey {
                expr: e.clone(),
                desc: false,
                nulls_first: false,
            })
            .collect();
        parts.sort_by(|(a, _), (b, _)| compare_keys(a, b, &asc));
        let mut arranged = Vec::with_capacity(rows.len());
        for (_, part) in parts {
            let keys: Vec<Row> = part
                .iter()
                .map(|&i| {
                    call.order
                        .iter()
                        .map(|k| k.expr.eval(&rows[i], ctx))
                        .collect()
                })
                .collect::<Result<_>>()?;
            let mut order: Vec<usize> = (0..part.len()).collect();
            order.sort_by(|&a, &b| compare_keys(&keys[a], &keys[b], &call.order));
            let peers = |a: usize, b: usize| {
                compare_keys(&keys[order[a]], &keys[order[b]], &call.order) == Ordering::Equal
            };
            let row = |pos: usize| &rows[part[order[pos]]];
            let n = part.len();
            let mut values = Vec::with_capacity(n);
            // Each row's peer group (rows with equal ORDER BY values) as
            // [start, end) positions, and its frame as [lo, hi).
            let mut group_start = vec![0; n];
            let mut group_end = vec![n; n];
            let mut pos = 0;
            while pos < n {
                let mut end = pos + 1;
                while end < n && peers(pos, end) {
                    end += 1;
                }
                group_start[pos..end].fill(pos);
                group_end[pos..end].fill(end);
                pos = end;
            }
            let f = call.frame;
            let at = |pos: usize, b: FrameBound, is_end: bool| -> usize {
                let (p, e) = (pos as i128, i128::from(is_end));
                let v = match b {
                    FrameBound::UnboundedPreceding => 0,
                    FrameBound::UnboundedFollowing => n as i128,
                    FrameBound::Preceding(k) => p - i128::from(k) + e,
                    FrameBound::Following(k) => p + i128::from(k) + e,
                    FrameBound::CurrentRow if f.rows => p + e,
                    FrameBound::CurrentRow if is_end => group_end[pos] as i128,
                    FrameBound::CurrentRow => group_start[pos] as i128,
                };
                v.clamp(0, n as i128) as usize
            };
            let frames: Vec<(usize, usize)> = (0..n)
                .map(|pos| (at(pos, f.start, false), at(pos, f.end, true)))
                .collect();
            match &call.func {
                WindowFunc::RowNumber => values.extend((1..=n as i64).map(Datum::Int)),
                WindowFunc::Rank | WindowFunc::DenseRank => {
                    let (mut rank, mut dense) = (0i64, 0i64);
                    for pos in 0..n {
                        if pos == 0 || !peers(pos - 1, pos) {
                            rank = pos as i64 + 1;
                            dense += 1;
                        }
                        values.push(Datum::Int(match call.func {
                            WindowFunc::Rank => rank,
                            _ => dense,
                        }));
                    }
                }
                WindowFunc::Lag | WindowFunc::Lead => {
                    for pos in 0..n {
                        let r = row(pos);
                        let offset = match call.args[1].eval(r, ctx)? {
                            Datum::Int(o) => o,
                            Datum::Null => {
                                values.push(Datum::Null);
                                continue;
                            }
                            _ => {
                                return Err(SqlError::internal("lag/lead offset is not an integer"))
                            }
                        };
                        let offset = if call.func == WindowFunc::Lag {
                            -offset
                        } else {
                            offset
                        };
                        let target = pos as i64 + offset;
                        values.push(if (0..n as i64).contains(&target) {
                            call.args[0].eval(row(target as usize), ctx)?
                        } else {
                            call.args[2].eval(r, ctx)?
                        });
                    }
                }
                WindowFunc::FirstValue | WindowFunc::LastValue | WindowFunc::NthValue => {
                    for (pos, &(lo, hi)) in frames.iter().enumerate() {
                        let at = match call.func {
                            WindowFunc::FirstValue => Some(lo),
                            WindowFunc::LastValue => hi.checked_sub(1),
                            _ => match call.args[1].eval(row(pos), ctx)? {
                                Datum::Null => None,
                                Datum::Int(k) if k > 0 => {
                                    usize::try_from(k - 1).ok().and_then(|k| lo.checked_add(k))
                                }
                                _ => {
                                    return Err(SqlError::new(
                                        "22016",
                                        "argument of nth_value must be greater than zero",
                                    ))
                                }
                            },
                        };
                        values.push(match at {
                            Some(p) if p >= lo && p < hi => call.args[0].eval(row(p), ctx)?,
                            _ => Datum::Null,
                        });
                    }
                }
                WindowFunc::Ntile => {
                    for pos in 0..n {
                        let k = match call.args[0].eval(row(pos), ctx)? {
                            Datum::Null => {
                                values.push(Datum::Null);
                                continue;
                            }
                            Datum::Int(k) if k > 0 => k as usize,
                            _ => {
                                return Err(SqlError::new(
                                    "22014",
                                    "argument of ntile must be greater than zero",
                                ))
                            }
                        };
                        // The first n % k buckets hold one row more.
                        let (small, larger) = (n / k, n % k);
                        let in_larger = larger * (small + 1);
                        let bucket = if pos < in_larger {
                            pos / (small + 1)
                        } else {
                            larger + (pos - in_larger) / small.max(1)
                        };
                        values.push(Datum::Int(bucket as i64 + 1));
                    }
                }
                WindowFunc::PercentRank | WindowFunc::CumeDist => {
                    for pos in 0..n {
                        values.push(Datum::Float(if call.func == WindowFunc::PercentRank {
                            if n == 1 {
                                0.0
                            } else {
                                group_start[pos] as f64 / (n - 1) as f64
                            }
                        } else {
                            group_end[pos] as f64 / n as f64
                        }));
                    }
                }
                WindowFunc::Agg(a) => {
                    if frames.iter().all(|(lo, _)| *lo == 0) {
                        // Frames that start at the partition's start only
                        // grow: one accumulator for all of them.
                        let mut acc = Acc::new(a);
                        let mut seen = HashSet::new();
                        let mut added = 0;
                        for (_, hi) in &frames {
                            while added < *hi {
                                acc.add(a, row(added), &mut seen, ctx)?;
                                added += 1;
                            }
                            values.push(acc.value(a)?);
                        }
                    } else {
                        for (lo, hi) in &frames {
                            let mut acc = Acc::new(a);
                            let mut seen = HashSet::new();
                            for p in *lo..(*hi).max(*lo) {
                                acc.add(a, row(p), &mut seen, ctx)?;
                            }
                            values.push(acc.value(a)?);
                        }
                    }
                }
            }
            for (pos, v) in values.into_iter().enumerate() {
                extra[part[order[pos]]].push(v);
                arranged.push(part[order[pos]]);
            }
        }
        output_order.get_or_insert(arranged);
    }
    let mut rows: Vec<Option<Row>> = rows
        .into_iter()
        .zip(extra)
        .map(|(mut r, e)| {
            r.extend(e);
            Some(r)
        })
        .collect();
    Ok(output_order
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| rows[i].take())
        .collect())
}

/// Evaluates a plan whose scans were read into `ctx.env`.
pub fn run_sync(plan: &Plan, ctx: &EvalCtx) -> Result<Vec<Row>> {
    Ok(match plan {
        Plan::Window { input, calls } => window(run_sync(input, ctx)?, calls, ctx)?,
        Plan::Recursive {
            id,
            anchor,
            recursive: term,
            all,
        } => recursive(*id, anchor, term, *all, ctx)?,
        Plan::WorkTable { id } => ctx
            .env
            .as_ref()
            .and_then(|e| e.work.lock().get(id).cloned())
            .ok_or_else(|| SqlError::internal("work table read outside its recursive query"))?
            .as_ref()
            .clone(),
        Plan::Scan { filter, .. } => {
            let rows = ctx
                .env
                .as_ref()
                .and_then(|env| env.scans.get(&plan_key(plan)))
                .ok_or_else(|| SqlError::internal("scan was not read before execution"))?;
            match filter {
                None => rows.as_ref().clone(),
                Some(f) => {
                    let mut out = Vec::new();
                    for r in rows.iter() {
                        if truthy(f, r, ctx)? {
                            out.push(r.clone());
                        }
                    }
                    out
                }
            }
        }
        Plan::Values { rows } => rows
            .iter()
            .map(|r| r.iter().map(|e| e.eval(&[], ctx)).collect())
            .collect::<Result<_>>()?,
        Plan::Unnest { args } => {
            let arrays: Vec<Vec<Datum>> = args
                .iter()
                .map(|a| {
                    Ok(match a.eval(&[], ctx)? {
                        Datum::Array(items) => items,
                        _ => Vec::new(),
                    })
                })
                .collect::<Result<_>>()?;
            let n = arrays.iter().map(Vec::len).max().unwrap_or(0);
            (0..n)
                .map(|i| {
                    arrays
                        .iter()
                        .map(|a| a.get(i).cloned().unwrap_or(Datum::Null))
                        .collect()
                })
                .collect()
        }
        Plan::Series { args } => {
            let vals: Vec<Datum> = args
                .iter()
                .map(|a| a.eval(&[], ctx))
                .collect::<Result<_>>()?;
            series(&vals)?.into_iter().map(|v| vec![v]).collect()
        }
        Plan::Filter { input, predicate } => {
            let mut out = Vec::new();
            for r in run_sync(input, ctx)? {
                if truthy(predicate, &r, ctx)? {
                    out.push(r);
                }
            }
            out
        }
        Plan::Project { input, exprs } => run_sync(input, ctx)?
            .iter()
            .map(|r| exprs.iter().map(|e| e.eval(r, ctx)).collect())
            .collect::<Result<_>>()?,
        Plan::ProjectSet { input, exprs, srfs } => {
            let mut out = Vec::new();
            for r in run_sync(input, ctx)? {
                let base: Row = exprs
                    .iter()
                    .map(|e| e.eval(&r, ctx))
                    .collect::<Result<_>>()?;
                let mut sets = Vec::new();
                for (_, args) in srfs {
                    let vals: Vec<Datum> = args
                        .iter()
                        .map(|a| a.eval(&r, ctx))
                        .collect::<Result<_>>()?;
                    sets.push(series(&vals)?);
                }
                // Several set-returning functions run in lockstep; the
                // shorter ones are padded with NULLs.
                let n = sets.iter().map(Vec::len).max().unwrap_or(0);
                for i in 0..n {
                    let mut row = base.clone();
                    for ((pos, _), set) in srfs.iter().zip(&sets) {
                        row[*pos] = set.get(i).cloned().unwrap_or(Datum::Null);
                    }
                    out.push(row);
                }
            }
            out
        }
        Plan::Join {
            left,
            right,
            kind,
            left_keys,
            right_keys,
            on,
            left_width,
            right_width,
        } => {
            let l = run_sync(left, ctx)?;
            let r = run_sync(right, ctx)?;
            let merge = match join_strategy(plan) {
                JoinStrategy::Merge => true,
                JoinStrategy::Lookup { then, .. } => *then == JoinStrategy::Merge,
                _ => false,
            };
            join(
                &l,
                &r,
                *kind,
                (left_keys, right_keys, merge),
                on.as_ref(),
                (*left_width, *right_width),
                ctx,
            )?
        }
        Plan::Aggregate {
            input,
            groups,
            aggs,
            sets,
        } if sets.is_empty() => aggregate(run_sync(input, ctx)?, groups, aggs, ctx)?,
        Plan::Aggregate {
            input,
            groups,
            aggs,
            sets,
        } => {
            let rows = run_sync(input, ctx)?;
            let mut out = Vec::new();
            for set in sets {
                let set_groups: Vec<Expr> = set.iter().map(|&i| groups[i].clone()).collect();
                // Not taken by this set: NULL.
                for r in aggregate(rows.clone(), &set_groups, aggs, ctx)? {
                    let mut full = vec![Datum::Null; groups.len()];
                    for (k, &i) in set.iter().enumerate() {
                        full[i] = r[k].clone();
                    }
                    full.extend(r.into_iter().skip(set.len()));
                    for (k, a) in aggs.iter().enumerate() {
                        if let AggFunc::Grouping { positions, len } = a.func {
                            let bits = positions[..len as usize].iter().fold(0i64, |acc, p| {
                                (acc << 1) | i64::from(!set.contains(&(*p as usize)))
                            });
                            full[groups.len() + k] = Datum::Int(bits);
                        }
                    }
                    out.push(full);
                }
            }
            out
        }
        Plan::Sort { input, keys } => {
            let rows = run_sync(input, ctx)?;
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
            keyed.sort_by(|(a, _), (b, _)| compare_keys(a, b, keys));
            keyed.into_iter().map(|(_, r)| r).collect()
        }
        Plan::Distinct { input } => {
            let mut seen = HashSet::new();
            run_sync(input, ctx)?
                .into_iter()
                .filter(|r| seen.insert(hash_key(r)))
                .collect()
        }
        Plan::DistinctOn { input, keys } => {
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for r in run_sync(input, ctx)? {
                let k: Row = keys
                    .iter()
                    .map(|e| e.eval(&r, ctx))
                    .collect::<Result<_>>()?;
                if seen.insert(hash_key(&k)) {
                    out.push(r);
                }
            }
            out
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
            run_sync(input, ctx)?
                .into_iter()
                .skip(offset)
                .take(limit.unwrap_or(usize::MAX))
                .collect()
        }
        Plan::SetOp {
            op,
            all,
            left,
            right,
        } => set_op(*op, *all, run_sync(left, ctx)?, run_sync(right, ctx)?),
        Plan::Lateral {
            left,
            sub,
            args,
            on,
            outer,
            right_width,
        } => {
            let mut out = Vec::new();
            for l in run_sync(left, ctx)? {
                let values: Vec<Datum> = args
                    .iter()
                    .map(|a| a.eval(&l, ctx))
                    .collect::<Result<_>>()?;
                let mut matched = false;
                for r in subquery_rows(sub, values, ctx)?.iter() {
                    let mut row = l.clone();
                    row.extend(r.iter().cloned());
                    if let Some(p) = on {
                        if !truthy(p, &row, ctx)? {
                            continue;
                        }
                    }
                    matched = true;
                    out.push(row);
                }
                if *outer && !matched {
                    let mut row = l;
                    row.extend(std::iter::repeat_n(Datum::Null, *right_width));
                    out.push(row);
                }
            }
            out
        }
    })
}

/// UNION, INTERSECT, EXCEPT; rows are compared as DISTINCT does (NULLs
/// equal). With ALL, duplicates count: INTERSECT ALL keeps min(m, n)
/// copies, EXCEPT ALL keeps max(m - n, 0).
fn set_op(op: SetOpKind, all: bool, left: Vec<Row>, right: Vec<Row>) -> Vec<Row> {
    match op {
        SetOpKind::Union => {
            let rows = left.into_iter().chain(right);
            if all {
                rows.collect()
            } else {
                let mut seen = HashSet::new();
                rows.filter(|r| seen.insert(hash_key(r))).collect()
            }
        }
        SetOpKind::Intersect | SetOpKind::Except => {
            let mut counts: HashMap<Vec<u8>, usize> = HashMap::new();
            for r in &right {
                *counts.entry(hash_key(r)).or_default() += 1;
            }
            let mut emitted = HashSet::new();
            let mut out = Vec::new();
            for r in left {
                let k = hash_key(&r);
                let n = counts.get(&k).copied().unwrap_or(0);
                let keep = match (op, all) {
                    (SetOpKind::Intersect, true) => {
                        if n > 0 {
                            counts.insert(k, n - 1);
                            true
                        } else {
                            false
                        }
                    }
                    (SetOpKind::Except, true) => {
                        if n > 0 {
                            counts.insert(k, n - 1);
                            false
                        } else {
                            true
                        }
                    }
                    (SetOpKind::Intersect, false) => n > 0 && emitted.insert(k),
                    (_, false) => n == 0 && emitted.insert(k),
                    (SetOpKind::Union, _) => unreachable!("handled above"),
                };
                if keep {
                    out.push(r);
                }
            }
            out
        }
    }
}

/// The values of `generate_series(start, stop [, step])`: integers or
/// numerics; NULL arguments give no rows; a zero step is an error. With
/// one argument, `unnest(array)`: the array's elements.
pub fn series(args: &[Datum]) -> Result<Vec<Datum>> {
    if let [a] = args {
        return Ok(match a {
            Datum::Array(items) => items.clone(),
            _ => Vec::new(),
        });
    }
    if args.iter().any(Datum::is_null) {
        return Ok(vec![]);
    }
    let step = args.get(2).cloned().unwrap_or(Datum::Int(1));
    let zero = match &step {
        // Intervals compare as PostgreSQL's do: a month is 30 days.
        Datum::Interval(_) => Datum::Interval(types::Interval {
            months: 0,
            days: 0,
            micros: 0,
        }),
        _ => Datum::Int(0),
    };
    if expr::binary(BinOp::Eq, step.clone(), zero.clone())? == Datum::Bool(true) {
        return Err(SqlError::new(
            code::INVALID_PARAMETER_VALUE,
            "step size cannot equal zero",
        ));
    }
    let up = expr::binary(BinOp::Gt, step.clone(), zero)? == Datum::Bool(true);
    let (mut cur, stop) = (args[0].clone(), args[1].clone());
    let mut out = Vec::new();
    loop {
        let more = expr::binary(
            if up { BinOp::LtEq } else { BinOp::GtEq },
            cur.clone(),
            stop.clone(),
        )?;
        if more != Datum::Bool(true) {
            break;
        }
        if out.len() >= 100_000_000 {
            return Err(SqlError::new(
                code::PROGRAM_LIMIT_EXCEEDED,
                "generate_series produces too many rows",
            ));
        }
        out.push(cur.clone());
        match expr::binary(BinOp::Add, cur, step.clone()) {
            Ok(next) => cur = next,
            // Past the type's range: the series ends.
            Err(_) => break,
        }
    }
    Ok(out)
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

/// The most rows one join may produce: results are held in memory, and a
/// runaway cross product must fail the statement, not exhaust the node.
pub const MAX_JOIN_ROWS: usize = 4_000_000;

fn join_too_large() -> SqlError {
    SqlError::new(
        code::PROGRAM_LIMIT_EXCEEDED,
        format!("a join produced more than {MAX_JOIN_ROWS} rows"),
    )
    .with_hint("add join conditions or filters that narrow the tables joined")
}

/// For each left row, the range of right rows whose keys equal its keys,
/// found by merging: both sides must come sorted by their keys (`None` if
/// they are not, so the caller hashes instead).
fn merge_ranges(
    left: &[Row],
    right: &[Row],
    (left_keys, right_keys): (&[Expr], &[Expr]),
    ctx: &EvalCtx,
) -> Result<Option<Vec<(usize, usize)>>> {
    let keys = |rows: &[Row], exprs: &[Expr]| -> Result<Vec<Vec<Datum>>> {
        rows.iter()
            .map(|r| exprs.iter().map(|e| e.eval(r, ctx)).collect())
            .collect()
    };
    let (lk, rk) = (keys(left, left_keys)?, keys(right, right_keys)?);
    let cmp = |a: &[Datum], b: &[Datum]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| x.sort_cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    };
    let sorted = |k: &[Vec<Datum>]| k.windows(2).all(|w| cmp(&w[0], &w[1]).is_le());
    if !sorted(&lk) || !sorted(&rk) {
        return Ok(None);
    }
    let mut ranges = Vec::with_capacity(left.len());
    let mut j = 0;
    for k in &lk {
        if k.iter().any(Datum::is_null) {
            ranges.push((0, 0));
            continue;
        }
        while j < rk.len() && cmp(&rk[j], k).is_lt() {
            j += 1;
        }
        let mut end = j;
        while end < rk.len() && cmp(&rk[end], k).is_eq() {
            end += 1;
        }
        ranges.push((j, end));
    }
    Ok(Some(ranges))
}

/// Joins two row sets. With keys, a merge join if `merge` says both sides
/// come sorted by them (checked), else a hash join (built on the right
/// side); without keys, a nested loop. `on` is checked on each joined row.
/// LEFT and FULL pad unmatched left rows with NULLs, RIGHT and FULL
/// unmatched right rows.
fn join(
    left: &[Row],
    right: &[Row],
    kind: JoinKind,
    (left_keys, right_keys, merge): (&[Expr], &[Expr], bool),
    on: Option<&Expr>,
    (left_width, right_width): (usize, usize),
    ctx: &EvalCtx,
) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    let mut right_matched = vec![false; right.len()];
    let emit = |l: &Row, r: &Row, out: &mut Vec<Row>| -> Result<bool> {
        let mut joined = l.clone();
        joined.extend(r.iter().cloned());
        if match on {
            Some(p) => truthy(p, &joined, ctx)?,
            None => true,
        } {
            if out.len() >= MAX_JOIN_ROWS {
                return Err(join_too_large());
            }
            out.push(joined);
            Ok(true)
        } else {
            Ok(false)
        }
    };
    let pad_left = matches!(kind, JoinKind::Left | JoinKind::Full);
    let mut table: Option<HashMap<Vec<u8>, Vec<usize>>> = None;
    let ranges = match merge && !left_keys.is_empty() {
        true => merge_ranges(left, right, (left_keys, right_keys), ctx)?,
        false => None,
    };
    if !left_keys.is_empty() && ranges.is_none() {
        let mut t: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
        for (i, r) in right.iter().enumerate() {
            let k: Vec<Datum> = right_keys
                .iter()
                .map(|e| e.eval(r, ctx))
                .collect::<Result<_>>()?;
            if k.iter().any(Datum::is_null) {
                continue;
            }
            t.entry(hash_key(&k)).or_default().push(i);
        }
        table = Some(t);
    }
    let all: Vec<usize> = (0..right.len()).collect();
    for (li, l) in left.iter().enumerate() {
        let mut matched = false;
        let candidates: &[usize] = match &table {
            None if ranges.is_some() => {
                let (a, b) = ranges.as_ref().expect("checked")[li];
                &all[a..b]
            }
            None => &all,
            Some(t) => {
                let k: Vec<Datum> = left_keys
                    .iter()
                    .map(|e| e.eval(l, ctx))
                    .collect::<Result<_>>()?;
                if k.iter().any(Datum::is_null) {
                    &[]
                } else {
                    t.get(&hash_key(&k)).map(Vec::as_slice).unwrap_or(&[])
                }
            }
        };
        for &i in candidates {
            if emit(l, &right[i], &mut out)? {
                matched = true;
                right_matched[i] = true;
            }
        }
        if !matched && pad_left {
            let mut joined = l.clone();
            joined.extend(std::iter::repeat_n(Datum::Null, right_width));
            out.push(joined);
        }
    }
    if matches!(kind, JoinKind::Right | JoinKind::Full) {
        for (r, m) in right.iter().zip(right_matched) {
            if !m {
                let mut joined = vec![Datum::Null; left_width];
                joined.extend(r.iter().cloned());
                out.push(joined);
            }
        }
    }
    Ok(out)
}

/// One group of an aggregation: its values, accumulators and, for
/// DISTINCT aggregates, the values seen.
/// A group's key values, its accumulators, the values each DISTINCT
/// aggregate took, and (when an aggregate has its own ORDER BY) the
/// positions of its input rows.
type GroupState = (Row, Vec<Acc>, Vec<HashSet<Vec<u8>>>, Vec<usize>);

enum Acc {
    Count(i64),
    Sum(Option<Datum>),
    Avg(Option<Datum>, i64),
    Min(Option<Datum>),
    Max(Option<Datum>),
    Array(Vec<Datum>),
    /// Keys and JSON values (json_object_agg).
    Pairs(Vec<(String, String)>),
    Text(Option<String>),
    Bool(Option<bool>),
    /// Count, sum and sum of squares of integer or numeric values, exact.
    Moments(i64, Decimal, Decimal),
    /// Count, sum and sum of squared deviations of float values
    /// (Youngs-Cramer, as PostgreSQL's float aggregates).
    FloatMoments(f64, f64, f64),
}

fn widen(v: Datum, arg_ty: &DataType) -> Result<Datum> {
    // int8 sums are numeric (no overflow), avg of integers is numeric.
    Ok(match (v, arg_ty) {
        (Datum::Int(i), DataType::Int8) => Datum::Decimal(Decimal::from_i64(i)),
        (v, _) => v,
    })
}

impl Acc {
    /// An empty accumulator for `a`.
    fn new(a: &AggCall) -> Acc {
        match a.func {
            // GROUPING() is 0 unless a grouping set leaves a group out
            // (see the Aggregate plan's grouping sets).
            AggFunc::CountStar | AggFunc::Count | AggFunc::Grouping { .. } => Acc::Count(0),
            AggFunc::Sum => Acc::Sum(None),
            AggFunc::Avg => Acc::Avg(None, 0),
            AggFunc::Min => Acc::Min(None),
            AggFunc::Max => Acc::Max(None),
            AggFunc::JsonObjectAgg { .. } => Acc::Pairs(Vec::new()),
            AggFunc::ArrayAgg
            | AggFunc::JsonAgg { .. }
            | AggFunc::Percentile { .. }
            | AggFunc::Mode => Acc::Array(Vec::new()),
            AggFunc::StringAgg => Acc::Text(None),
            AggFunc::BoolAnd | AggFunc::BoolOr => Acc::Bool(None),
            AggFunc::Variance { .. } if a.arg_ty.is_float() => Acc::FloatMoments(0.0, 0.0, 0.0),
            AggFunc::Variance { .. } => Acc::Moments(0, Decimal::from_i64(0), Decimal::from_i64(0)),
        }
    }

    /// Adds row `r` (FILTER and DISTINCT applied; `seen` holds the
    /// values a DISTINCT aggregate took so far).
    fn add(
        &mut self,
        a: &AggCall,
        r: &[Datum],
        seen: &mut HashSet<Vec<u8>>,
        ctx: &EvalCtx,
    ) -> Result<()> {
        if matches!(a.func, AggFunc::Grouping { .. }) {
            return Ok(());
        }
        if let Some(f) = &a.filter {
            if !truthy(f, r, ctx)? {
                return Ok(());
            }
        }
        let v = match &a.arg {
            Some(e) => e.eval(r, ctx)?,
            None => Datum::Bool(true),
        };
        if let Acc::Pairs(pairs) = self {
            let key = match v {
                Datum::Null => return Err(SqlError::new("22004", "field name must not be null")),
                Datum::Text(t) => t,
                other => types::format_datum(&other, &a.arg_ty).unwrap_or_default(),
            };
            let value = match a.delimiter.as_ref().map(|e| e.eval(r, ctx)).transpose()? {
                None | Some(Datum::Null) => "null".to_string(),
                Some(Datum::Text(t)) => t,
                Some(other) => types::format_datum(&other, &DataType::Unknown).unwrap_or_default(),
            };
            pairs.push((key, value));
            return Ok(());
        }
        if let Acc::Array(items) = self {
            // array_agg keeps NULLs.
            if !a.distinct || seen.insert(hash_key(std::slice::from_ref(&v))) {
                items.push(v);
            }
            return Ok(());
        }
        if v.is_null() {
            return Ok(());
        }
        if a.distinct && !seen.insert(hash_key(std::slice::from_ref(&v))) {
            return Ok(());
        }
        match self {
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
            Acc::Text(acc) => {
                let piece = match v {
                    Datum::Text(t) => t,
                    other => types::format_datum(&other, &a.arg_ty).unwrap_or_default(),
                };
                *acc = Some(match acc.take() {
                    None => piece,
                    Some(mut s) => {
                        let d = match &a.delimiter {
                            Some(e) => e.eval(r, ctx)?,
                            None => Datum::Null,
                        };
                        if let Datum::Text(d) = d {
                            s.push_str(&d);
                        }
                        s.push_str(&piece);
                        s
                    }
                });
            }
            Acc::Bool(acc) => {
                let b = matches!(v, Datum::Bool(true));
                *acc = Some(match (acc.take(), a.func) {
                    (None, _) => b,
                    (Some(x), AggFunc::BoolAnd) => x && b,
                    (Some(x), _) => x || b,
                });
            }
            Acc::Moments(n, sum, sumsq) => {
                let x = match v {
                    Datum::Int(i) => Decimal::from_i64(i),
                    Datum::Decimal(d) => d,
                    other => return Err(SqlError::internal(format!("variance of {other:?}"))),
                };
                *n += 1;
                *sum = sum.add(&x)?;
                *sumsq = sumsq.add(&x.mul(&x)?)?;
            }
            Acc::FloatMoments(n, sx, sxx) => {
                let x = match v {
                    Datum::Float(f) => f,
                    Datum::Int(i) => i as f64,
                    other => return Err(SqlError::internal(format!("variance of {other:?}"))),
                };
                *n += 1.0;
                *sx += x;
                if *n > 1.0 {
                    let t = x * *n - *sx;
                    *sxx += t * t / (*n * (*n - 1.0));
                }
            }
            Acc::Array(_) | Acc::Pairs(_) => unreachable!("handled above"),
        }
        Ok(())
    }

    /// The aggregate's value over the rows added so far.
    fn value(&self, a: &AggCall) -> Result<Datum> {
        Ok(match self {
            Acc::Count(n) => Datum::Int(*n),
            Acc::Sum(s) => match (s, &a.arg_ty) {
                (Some(Datum::Int(i)), DataType::Numeric(_)) => {
                    Datum::Decimal(Decimal::from_i64(*i))
                }
                (s, _) => s.clone().unwrap_or(Datum::Null),
            },
            Acc::Avg(None, _) => Datum::Null,
            Acc::Avg(Some(s), n) => expr::binary(BinOp::Div, s.clone(), Datum::Int(*n))?,
            Acc::Min(m) | Acc::Max(m) => m.clone().unwrap_or(Datum::Null),
            Acc::Pairs(pairs) if pairs.is_empty() => Datum::Null,
            Acc::Pairs(pairs) => {
                let bad = |e| SqlError::new(code::INVALID_TEXT_REPRESENTATION, e);
                match a.func {
                    AggFunc::JsonObjectAgg { jsonb: true } => {
                        Datum::Text(crate::json::build_object(pairs, true).map_err(bad)?)
                    }
                    // PostgreSQL's json_object_agg spacing: `{ "k" : v, ... }`.
                    _ => {
                        let body: Vec<String> = pairs
                            .iter()
                            .map(|(k, v)| format!("{} : {v}", crate::json::string(k)))
                            .collect();
                        Datum::Text(format!("{{ {} }}", body.join(", ")))
                    }
                }
            }
            Acc::Array(items) if items.is_empty() => Datum::Null,
            Acc::Array(items) => match a.func {
                AggFunc::Percentile {
                    cont,
                    fraction_bits,
                } => percentile(items, cont, f64::from_bits(fraction_bits)),
                AggFunc::Mode => mode(items),
                AggFunc::JsonAgg { jsonb } => {
                    let items: Vec<String> = items
                        .iter()
                        .map(|v| match v {
                            Datum::Null => "null".to_string(),
                            Datum::Text(t) => t.clone(),
                            v => types::format_datum(v, &DataType::Unknown).unwrap_or_default(),
                        })
                        .collect();
                    Datum::Text(
                        crate::json::build_array(&items, jsonb)
                            .map_err(|e| SqlError::new(code::INVALID_TEXT_REPRESENTATION, e))?,
                    )
                }
                _ => Datum::Array(items.clone()),
            },
            Acc::Text(t) => t.clone().map_or(Datum::Null, Datum::Text),
            Acc::Bool(b) => b.map_or(Datum::Null, Datum::Bool),
            Acc::Moments(n, sum, sumsq) => {
                let AggFunc::Variance { population, root } = a.func else {
                    return Err(SqlError::internal("moments of a non-variance aggregate"));
                };
                if *n == 0 || (*n == 1 && !population) {
                    return Ok(Datum::Null);
                }
                // (n * sum(x^2) - sum(x)^2) / (n * (n - 1)), or n * n.
                let count = Decimal::from_i64(*n);
                let numerator = count.mul(sumsq)?.sub(&sum.mul(sum)?)?;
                if numerator.is_special() {
                    return Ok(Datum::Decimal(Decimal::NAN));
                }
                if numerator.mantissa <= 0 {
                    return Ok(Datum::Decimal(Decimal::from_i64(0)));
                }
                let other = Decimal::from_i64(if population { *n } else { *n - 1 });
                let variance = numerator.div(&count.mul(&other)?)?;
                Datum::Decimal(if root {
                    variance.sqrt_at(variance.scale)?
                } else {
                    variance
                })
            }
            Acc::FloatMoments(n, _, sxx) => {
                let AggFunc::Variance { population, root } = a.func else {
                    return Err(SqlError::internal("moments of a non-variance aggregate"));
                };
                if *n == 0.0 || (*n == 1.0 && !population) {
                    return Ok(Datum::Null);
                }
                let variance = sxx / if population { *n } else { *n - 1.0 };
                Datum::Float(if root { variance.sqrt() } else { variance })
            }
        })
    }
}

fn aggregate(rows: Vec<Row>, groups: &[Expr], aggs: &[AggCall], ctx: &EvalCtx) -> Result<Vec<Row>> {
    let new_accs = || -> Vec<Acc> { aggs.iter().map(Acc::new).collect() };
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut states: Vec<GroupState> = Vec::new();
    let any_ordered = aggs.iter().any(|a| !a.order_by.is_empty());
    for (pos, r) in rows.iter().enumerate() {
        let g: Row = groups
            .iter()
            .map(|e| e.eval(r, ctx))
            .collect::<Result<_>>()?;
        let key = hash_key(&g);
        let idx = match index.get(&key) {
            Some(i) => *i,
            None => {
                states.push((g, new_accs(), vec![HashSet::new(); aggs.len()], Vec::new()));
                index.insert(key, states.len() - 1);
                states.len() - 1
            }
        };
        let (_, accs, seen, members) = &mut states[idx];
        for (i, a) in aggs.iter().enumerate() {
            if a.order_by.is_empty() {
                accs[i].add(a, r, &mut seen[i], ctx)?;
            }
        }
        if any_ordered {
            members.push(pos);
        }
    }
    // Aggregates with their own ORDER BY take their group's rows sorted.
    for (i, a) in aggs.iter().enumerate() {
        if a.order_by.is_empty() {
            continue;
        }
        for (_, accs, seen, members) in &mut states {
            let mut keyed = Vec::with_capacity(members.len());
            for &pos in members.iter() {
                let key: Row = a
                    .order_by
                    .iter()
                    .map(|k| k.expr.eval(&rows[pos], ctx))
                    .collect::<Result<_>>()?;
                keyed.push((key, pos));
            }
            // Stable: rows with equal keys keep their input order.
            keyed.sort_by(|(x, _), (y, _)| compare_keys(x, y, &a.order_by));
            for (_, pos) in keyed {
                accs[i].add(a, &rows[pos], &mut seen[i], ctx)?;
            }
        }
    }
    if states.is_empty() && groups.is_empty() {
        states.push((vec![], new_accs(), vec![], Vec::new()));
    }
    states
        .into_iter()
        .map(|(mut g, accs, _, _)| {
            for (acc, a) in accs.iter().zip(aggs) {
                g.push(acc.value(a)?);
            }
            Ok(g)
        })
        .collect()
}

/// The value at fraction `f` of `sorted` (NULLs skipped): interpolated
/// between its neighbours (`cont`, float values), or the first value at or
/// past it.
fn percentile(sorted: &[Datum], cont: bool, f: f64) -> Datum {
    let values: Vec<&Datum> = sorted.iter().filter(|v| !v.is_null()).collect();
    if values.is_empty() {
        return Datum::Null;
    }
    let n = values.len();
    if !cont {
        let at = ((f * n as f64).ceil() as usize).clamp(1, n) - 1;
        return values[at].clone();
    }
    let pos = f * (n - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    match (values[lo], values[hi]) {
        (Datum::Float(a), Datum::Float(b)) => Datum::Float(a + (pos - lo as f64) * (b - a)),
        (a, _) => a.clone(),
    }
}

/// The most frequent value of `sorted` (NULLs skipped); among equally
/// frequent ones the first.
fn mode(sorted: &[Datum]) -> Datum {
    let mut best: Option<(&Datum, usize)> = None;
    let mut run: Option<(&Datum, usize)> = None;
    for v in sorted.iter().filter(|v| !v.is_null()) {
        run = match run {
            Some((r, n)) if r == v => Some((r, n + 1)),
            _ => Some((v, 1)),
        };
        let (r, n) = run.expect("just set");
        if best.is_none_or(|(_, b)| n > b) {
            best = Some((r, n));
        }
    }
    best.map_or(Datum::Null, |(v, _)| v.clone())
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

/// How a scan reads its rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// At the transaction's snapshot.
    Plain,
    /// Under row locks, the latest rows (the rows an UPDATE or DELETE
    /// changes, SELECT ... FOR UPDATE). Point lookups lock before reading;
    /// rows found by a scan are locked after it, re-read and filtered
    /// again.
    Locking,
}

/// Reads the rows of `table` in `range` that pass `filter`, through the
/// transaction's buffer, with what was read (for conditional writes).
pub async fn scan(
    table: &Arc<TableDesc>,
    range: &KeyRange,
    filter: Option<&Expr>,
    txn: &Txn,
    ctx: &EvalCtx,
    mode: ReadMode,
) -> Result<Vec<(ReadRow, Row)>> {
    let (points, spans) = resolve_range(table, range, ctx)?;
    let mut read = Vec::new();
    if mode == ReadMode::Locking || (txn.locks_point_reads() && !points.is_empty()) {
        read.extend(txn.get_locked(&points).await?.into_iter().flatten());
    } else {
        for k in points {
            if let Some(r) = txn.get(&k).await? {
                read.push(r);
            }
        }
    }
    let locked_points = read.len();
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
    let mut to_lock = Vec::new();
    for (i, rr) in read.into_iter().enumerate() {
        let row = decode_row(table, &rr.value)?;
        if let Some(f) = filter {
            if !truthy(f, &row, ctx)? {
                continue;
            }
        }
        if mode == ReadMode::Locking && i >= locked_points {
            to_lock.push(out.len());
        }
        out.push((rr, row));
    }
    if to_lock.is_empty() {
        return Ok(out);
    }
    // Rows found by scanning: lock them and take their latest versions
    // (a row changed or deleted since the snapshot is filtered again).
    let keys: Vec<Vec<u8>> = to_lock.iter().map(|&i| out[i].0.key.clone()).collect();
    let latest = txn.get_locked(&keys).await?;
    let mut gone = HashSet::new();
    for (&i, now) in to_lock.iter().zip(latest) {
        match now {
            Some(rr) if rr.value == out[i].0.value => {}
            Some(rr) => {
                let row = decode_row(table, &rr.value)?;
                let keep = match filter {
                    Some(f) => truthy(f, &row, ctx)?,
                    None => true,
                };
                if keep {
                    out[i] = (rr, row);
                } else {
                    gone.insert(i);
                }
            }
            None => {
                gone.insert(i);
            }
        }
    }
    Ok(out
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !gone.contains(i))
        .map(|(_, r)| r)
        .collect())
}

// ---------------------------------------------------------------------------
// DML

/// The table's CHECK constraints, bound over its columns (once per
/// statement).
pub fn bind_checks(table: &TableDesc) -> Result<Vec<(String, Expr)>> {
    let no_tables = HashMap::new();
    let mut b = crate::plan::Binder::new(&no_tables, vec![]);
    table
        .checks
        .iter()
        .map(|c| Ok((c.name.clone(), b.bind_check(table, &c.expr)?)))
        .collect()
}

/// NOT NULL and CHECK constraints of a row about to be written (a CHECK
/// fails only when false: NULL passes, as in PostgreSQL).
pub fn row_check(
    table: &TableDesc,
    checks: &[(String, Expr)],
    row: &[Datum],
    ctx: &EvalCtx,
) -> Result<()> {
    not_null_check(table, row)?;
    for (name, e) in checks {
        if let Datum::Bool(false) = e.eval(row, ctx)? {
            return Err(SqlError::new(
                code::CHECK_VIOLATION,
                format!(
                    "new row for relation \"{}\" violates check constraint \"{name}\"",
                    table.name
                ),
            ));
        }
    }
    Ok(())
}

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

/// The existing row that one of `arbiters` (ON CONFLICT's constraints)
/// finds in conflict with the proposed `row`, if any. Every key looked
/// up is locked, present or absent: a concurrent upsert of the same
/// values waits for this transaction, then sees its row. NULLs never
/// conflict in a unique index.
async fn conflicting_row(
    txn: &mut Txn,
    table: &TableDesc,
    arbiters: &[Arbiter],
    row: &[Datum],
) -> Result<Option<ReadRow>> {
    for a in arbiters {
        let key = match a {
            Arbiter::PrimaryKey => row_key_of(table, row),
            Arbiter::Unique(i) => {
                let idx = &table.indexes[*i];
                if idx.columns.iter().any(|c| row[*c].is_null()) {
                    continue;
                }
                let (entry_key, _) = index_entry(table, idx, row);
                let Some(entry) = txn.get_locked(&[entry_key]).await?.pop().flatten() else {
                    continue;
                };
                let mut key = index_prefix(table.id, PRIMARY_INDEX_ID);
                key.extend_from_slice(&entry.value);
                key
            }
        };
        if let Some(rr) = txn.get_locked(&[key]).await?.pop().flatten() {
            return Ok(Some(rr));
        }
    }
    Ok(None)
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
pub fn update_row(
    txn: &mut Txn,
    table: &TableDesc,
    rr: &ReadRow,
    old: &Row,
    new: &Row,
) -> Result<()> {
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

/// A new primary key must be free when the row moves to it: checked at
/// once, row by row, as PostgreSQL checks a non-deferrable unique
/// constraint (so `SET k = k + 1` over consecutive keys fails with 23505).
async fn check_moved_key(txn: &Txn, table: &TableDesc, rr: &ReadRow, new: &Row) -> Result<()> {
    let key = row_key_of(table, new);
    if key != rr.key && txn.get(&key).await?.is_some() {
        return Err(SqlError::new(
            code::UNIQUE_VIOLATION,
            format!(
                "duplicate key value violates unique constraint \"{}\"",
                table.pkey_name()
            ),
        ));
    }
    Ok(())
}

/// Buffers the deletion of a row read as `rr` (holding `row`) and of its
/// index entries (foreign keys are the caller's business).
pub fn delete_row_entries(txn: &mut Txn, table: &TableDesc, rr: &ReadRow, row: &Row) -> Result<()> {
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

/// Inside BEGIN, an INSERT of at most this many rows reads its new keys
/// at once so a duplicate fails the INSERT itself; a larger one (a bulk
/// load) finds duplicates at COMMIT, without a read per row.
const EARLY_UNIQUE_CHECK_ROWS: usize = 1000;

async fn insert(p: &InsertPlan, catalog: &Catalog, txn: &mut Txn, ctx: &EvalCtx) -> Result<Output> {
    let table = &p.table;
    let checks = bind_checks(table)?;
    let source: Vec<Vec<Option<Datum>>> = match &p.source {
        InsertSource::Values(rows) => rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|e| e.as_ref().map(|e| e.eval(&[], ctx)).transpose())
                    .collect::<Result<_>>()
            })
            .collect::<Result<_>>()?,
        InsertSource::Query(plan) => run_sync(plan, ctx)?
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
        .filter(|i| table.columns[*i].serial && !table.is_rowid(*i))
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
                if table.columns[c].identity == crate::catalog::Identity::Always {
                    let name = &table.columns[c].name;
                    return Err(SqlError::new(
                        code::GENERATED_ALWAYS,
                        format!("cannot insert a non-DEFAULT value into column \"{name}\""),
                    )
                    .with_detail(format!(
                        "Column \"{name}\" is an identity column defined as GENERATED ALWAYS."
                    )));
                }
                row[c] = types::coerce_for_column(v, &table.columns[c].ty)?;
                given[c] = true;
            }
        }
        for (i, c) in table.columns.iter().enumerate() {
            if given[i] {
                continue;
            }
            if table.is_rowid(i) {
                row[i] = Datum::Int(catalog.unique_rowid());
            } else if c.serial {
                row[i] = types::coerce_for_column(Datum::Int(next_serial), &c.ty)?;
                next_serial += 1;
            } else if let Some(d) = &defaults[i] {
                row[i] = types::coerce_for_column(d.eval(&[], ctx)?, &c.ty)?;
            }
        }
        row_check(table, &checks, &row, ctx)?;
        crate::fk::check_parents(catalog, txn, &ctx.database, table, &row, None).await?;
        let Some(oc) = &p.on_conflict else {
            insert_row(txn, table, &row, false)?;
            written.push(row);
            continue;
        };
        let Some(rr) = conflicting_row(txn, table, &p.arbiters, &row).await? else {
            let pk_checked = p.arbiters.contains(&Arbiter::PrimaryKey);
            insert_row(txn, table, &row, pk_checked)?;
            touched.insert(row_key_of(table, &row));
            written.push(row);
            continue;
        };
        let OnConflict::DoUpdate { sets, filter } = oc else {
            continue;
        };
        if !touched.insert(rr.key.clone()) {
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
        row_check(table, &checks, &new, ctx)?;
        check_moved_key(txn, table, &rr, &new).await?;
        crate::fk::check_parents(catalog, txn, &ctx.database, table, &new, Some(&old)).await?;
        crate::fk::on_parent_change(catalog, txn, &ctx.database, table, &old, Some(&new)).await?;
        update_row(txn, table, &rr, &old, &new)?;
        touched.insert(row_key_of(table, &new));
        written.push(new);
    }
    if txn.is_explicit() && written.len() <= EARLY_UNIQUE_CHECK_ROWS {
        let mut keys = Vec::new();
        // A hidden rowid is unique by construction: no read for it.
        let rowid_keyed = table.primary_key.iter().any(|c| table.is_rowid(*c));
        for row in &written {
            if !rowid_keyed {
                keys.push(row_key_of(table, row));
            }
            for idx in table.indexes.iter().filter(|i| i.unique) {
                keys.push(index_entry(table, idx, row).0);
            }
        }
        txn.check_inserted_absent(&keys).await?;
    }
    Ok(Output::Count {
        tag: "INSERT",
        count: written.len(),
        returning: returning_rows(&p.returning, &written, ctx)?,
    })
}

async fn update(p: &UpdatePlan, catalog: &Catalog, txn: &mut Txn, ctx: &EvalCtx) -> Result<Output> {
    let table = &p.table;
    let checks = bind_checks(table)?;
    let mut written = Vec::new();
    let Some(from) = &p.from else {
        let rows = scan(
            table,
            &p.range,
            p.filter.as_ref(),
            txn,
            ctx,
            ReadMode::Locking,
        )
        .await?;
        for (rr, old) in rows {
            let mut new = old.clone();
            for (c, e) in &p.sets {
                new[*c] = types::coerce_for_column(e.eval(&old, ctx)?, &table.columns[*c].ty)?;
            }
            row_check(table, &checks, &new, ctx)?;
            check_moved_key(txn, table, &rr, &new).await?;
            crate::fk::check_parents(catalog, txn, &ctx.database, table, &new, Some(&old)).await?;
            crate::fk::on_parent_change(catalog, txn, &ctx.database, table, &old, Some(&new))
                .await?;
            update_row(txn, table, &rr, &old, &new)?;
            written.push(new);
        }
        return Ok(Output::Count {
            tag: "UPDATE",
            count: written.len(),
            returning: returning_rows(&p.returning, &written, ctx)?,
        });
    };
    // UPDATE ... FROM: the filter and the new values see the target row
    // followed by a row of FROM; each target row is updated at most once,
    // with the first FROM row that matches it.
    let sources = run_sync(from, ctx)?;
    let targets = scan(table, &p.range, None, txn, ctx, ReadMode::Plain).await?;
    for (rr, old) in targets {
        let mut hit = None;
        for s in &sources {
            let mut both = old.clone();
            both.extend(s.iter().cloned());
            let ok = match &p.filter {
                Some(f) => truthy(f, &both, ctx)?,
                None => true,
            };
            if ok {
                hit = Some(both);
                break;
            }
        }
        let Some(both) = hit else { continue };
        let mut new = old.clone();
        for (c, e) in &p.sets {
            new[*c] = types::coerce_for_column(e.eval(&both, ctx)?, &table.columns[*c].ty)?;
        }
        row_check(table, &checks, &new, ctx)?;
        check_moved_key(txn, table, &rr, &new).await?;
        crate::fk::check_parents(catalog, txn, &ctx.database, table, &new, Some(&old)).await?;
        crate::fk::on_parent_change(catalog, txn, &ctx.database, table, &old, Some(&new)).await?;
        update_row(txn, table, &rr, &old, &new)?;
        written.push(new);
    }
    Ok(Output::Count {
        tag: "UPDATE",
        count: written.len(),
        returning: returning_rows(&p.returning, &written, ctx)?,
    })
}

async fn delete(p: &DeletePlan, catalog: &Catalog, txn: &mut Txn, ctx: &EvalCtx) -> Result<Output> {
    let rows = scan(
        &p.table,
        &p.range,
        p.filter.as_ref(),
        txn,
        ctx,
        ReadMode::Locking,
    )
    .await?;
    let mut deleted = Vec::new();
    for (rr, row) in rows {
        crate::fk::on_parent_change(catalog, txn, &ctx.database, &p.table, &row, None).await?;
        delete_row_entries(txn, &p.table, &rr, &row)?;
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
    use tessera_common::proto::{batch_write::Write, BatchWrite, DeleteRequest};
    let end = prefix_successor(start).expect("table prefix is not all 0xff");
    // Continue after the last key deleted (rescanning from the start would
    // step over every tombstone left so far), one raft command per chunk.
    let mut lo = start.to_vec();
    loop {
        let rows = db.scan(&lo, &end, 1000, false).await?;
        let Some((last, _)) = rows.last() else {
            return Ok(());
        };
        lo = tessera_common::keys::next_key(last);
        let keys: Vec<Vec<u8>> = rows.into_iter().map(|(k, _)| k).collect();
        let batch = keys
            .iter()
            .map(|k| BatchWrite {
                write: Some(Write::Delete(DeleteRequest { key: k.clone() })),
            })
            .collect();
        match db.write_batch(batch).await {
            Ok(()) => {}
            // The chunk straddles ranges: key by key.
            Err(tessera_kv::db::Error::CrossRange(_)) => {
                for k in keys {
                    db.delete(&k).await?;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

// ---------------------------------------------------------------------------
// Streaming

/// Rows a query produces while the client reads them.
pub type RowStream = tokio::sync::mpsc::Receiver<Result<Row>>;

/// Rows read from KV per request while streaming.
const STREAM_PAGE_ROWS: usize = 1000;
/// Rows produced ahead of the client: with the page being read, what a
/// streaming query holds in memory however large its result.
const STREAM_BUFFER_ROWS: usize = 1000;

/// Starts a query that reads one table by key spans, filters and projects
/// (no sort, aggregate, join or subquery) as a stream: pages of rows are
/// read in a read-only transaction of its own and sent as the client takes
/// them, so neither a large result nor a client that stops reading makes
/// the node hold the table. `None` if the query has another shape (it
/// then runs whole, in memory). An error after rows went out ends the
/// stream with that error.
pub fn stream_query(
    q: &BoundQuery,
    db: Arc<tessera_kv::DB>,
    ctx: &EvalCtx,
) -> Result<Option<RowStream>> {
    if q.lock.is_some() {
        return Ok(None);
    }
    // A projection always names the output columns (a bare scan would
    // also carry hidden ones).
    let Plan::Project { input, exprs } = &q.plan else {
        return Ok(None);
    };
    let (scan, exprs) = (&**input, Some(exprs.clone()));
    let Plan::Scan {
        table,
        range,
        filter,
    } = scan
    else {
        return Ok(None);
    };
    if matches!(range, KeyRange::Points(_) | KeyRange::Index { .. }) {
        return Ok(None);
    }
    let mut subquery = false;
    for e in exprs.iter().flatten().chain(filter.iter()) {
        // Subqueries need the statement's reads; set_config must take
        // effect when the statement ends.
        e.walk(&mut |x| {
            subquery |= matches!(
                x,
                Expr::Subquery { .. } | Expr::Func(expr::Func::SetConfig, _)
            )
        });
    }
    if subquery {
        return Ok(None);
    }
    let (_, spans) = resolve_range(table, range, ctx)?;
    let (tx, rx) = tokio::sync::mpsc::channel(STREAM_BUFFER_ROWS);
    let (table, filter, ctx) = (table.clone(), filter.clone(), ctx.clone());
    tokio::spawn(async move {
        let mut txn = tessera_kv::txn::Txn::begin(db, tessera_kv::txn::Isolation::Serializable);
        for (start, end) in spans {
            let mut lo = start;
            loop {
                let page = match txn.scan(&lo, &end, STREAM_PAGE_ROWS, false).await {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                };
                let Some((last, _)) = page.last() else { break };
                lo = tessera_common::keys::next_key(last);
                let full = page.len() == STREAM_PAGE_ROWS;
                for (_, value) in page {
                    let row = decode_row(&table, &value).and_then(|row| {
                        if let Some(f) = &filter {
                            if !truthy(f, &row, &ctx)? {
                                return Ok(None);
                            }
                        }
                        Ok(Some(match &exprs {
                            Some(es) => es
                                .iter()
                                .map(|e| e.eval(&row, &ctx))
                                .collect::<Result<Row>>()?,
                            None => row,
                        }))
                    });
                    let row = match row {
                        Ok(Some(r)) => Ok(r),
                        Ok(None) => continue,
                        Err(e) => Err(e),
                    };
                    let failed = row.is_err();
                    // The client went away: stop reading.
                    if tx.send(row).await.is_err() || failed {
                        return;
                    }
                }
                if !full {
                    break;
                }
            }
        }
        let _ = txn.commit(Vec::new()).await;
    });
    Ok(Some(rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(v: &[i64]) -> Vec<Row> {
        v.iter().map(|i| vec![Datum::Int(*i)]).collect()
    }

    #[test]
    fn set_operations_count_duplicates_only_with_all() {
        let l = ints(&[1, 1, 2, 3]);
        let r = ints(&[1, 3, 3, 4]);
        assert_eq!(
            set_op(SetOpKind::Union, false, l.clone(), r.clone()),
            ints(&[1, 2, 3, 4])
        );
        assert_eq!(
            set_op(SetOpKind::Union, true, l.clone(), r.clone()).len(),
            8
        );
        assert_eq!(
            set_op(SetOpKind::Intersect, false, l.clone(), r.clone()),
            ints(&[1, 3])
        );
        assert_eq!(
            set_op(SetOpKind::Intersect, true, l.clone(), r.clone()),
            ints(&[1, 3])
        );
        assert_eq!(
            set_op(SetOpKind::Except, false, l.clone(), r.clone()),
            ints(&[2])
        );
        assert_eq!(set_op(SetOpKind::Except, true, l, r), ints(&[1, 2]));
        // NULLs are equal to each other here.
        let n = vec![vec![Datum::Null]];
        assert_eq!(
            set_op(SetOpKind::Union, false, n.clone(), n.clone()).len(),
            1
        );
        assert!(set_op(SetOpKind::Except, false, n.clone(), n).is_empty());
    }

    #[test]
    fn series_steps_both_ways_and_rejects_a_zero_step() {
        let s = |a: &[Datum]| series(a).unwrap();
        assert_eq!(
            s(&[Datum::Int(1), Datum::Int(3)]),
            vec![Datum::Int(1), Datum::Int(2), Datum::Int(3)]
        );
        assert_eq!(
            s(&[Datum::Int(5), Datum::Int(1), Datum::Int(-2)]),
            vec![Datum::Int(5), Datum::Int(3), Datum::Int(1)]
        );
        assert!(s(&[Datum::Int(1), Datum::Int(0)]).is_empty());
        assert!(s(&[Datum::Null, Datum::Int(3)]).is_empty());
        assert_eq!(
            series(&[Datum::Int(1), Datum::Int(2), Datum::Int(0)])
                .unwrap_err()
                .code,
            "22023"
        );
        // Stops at the end of the type's range instead of overflowing.
        assert_eq!(
            s(&[Datum::Int(i64::MAX - 1), Datum::Int(i64::MAX)]).len(),
            2
        );
    }

    /// A merge join of sorted inputs gives what a hash join gives, for
    /// every join kind, with duplicate keys on both sides; unsorted inputs
    /// fall back to hashing.
    #[test]
    fn merge_join_matches_hash_join() {
        let ctx = EvalCtx::default();
        let mut seed = 7u64;
        let mut next = move |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let rows = |keys: Vec<i64>, tag: i64| -> Vec<Row> {
            keys.iter()
                .enumerate()
                .map(|(i, k)| vec![Datum::Int(*k), Datum::Int(tag * 1000 + i as i64)])
                .collect()
        };
        let on = Expr::binary(BinOp::Lt, Expr::Column(1), Expr::Column(3));
        for round in 0..200 {
            let mut lk: Vec<i64> = (0..next(12)).map(|_| next(8) as i64).collect();
            let mut rk: Vec<i64> = (0..next(12)).map(|_| next(8) as i64).collect();
            let sorted = round % 10 != 0;
            if sorted {
                lk.sort();
                rk.sort();
            }
            let (l, r) = (rows(lk, 1), rows(rk, 2));
            let keys = [Expr::Column(0)];
            for kind in [
                JoinKind::Inner,
                JoinKind::Left,
                JoinKind::Right,
                JoinKind::Full,
            ] {
                for on in [None, Some(&on)] {
                    let run = |merge| {
                        let mut out =
                            join(&l, &r, kind, (&keys, &keys, merge), on, (2, 2), &ctx).unwrap();
                        out.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
                        out
                    };
                    assert_eq!(run(true), run(false), "{kind:?} on {l:?} and {r:?}");
                }
            }
            let ranges = merge_ranges(&l, &r, (&keys, &keys), &ctx).unwrap();
            let is_sorted =
                |rows: &[Row]| rows.windows(2).all(|w| w[0][0].sort_cmp(&w[1][0]).is_le());
            assert_eq!(ranges.is_some(), is_sorted(&l) && is_sorted(&r));
        }
    }

    #[test]
    fn outer_joins_pad_the_unmatched_side() {
        let ctx = EvalCtx::default();
        let l = ints(&[1, 2]);
        let r = ints(&[2, 3]);
        let keys = (&[Expr::Column(0)][..], &[Expr::Column(0)][..], false);
        let full = join(&l, &r, JoinKind::Full, keys, None, (1, 1), &ctx).unwrap();
        assert_eq!(
            full,
            vec![
                vec![Datum::Int(1), Datum::Null],
                vec![Datum::Int(2), Datum::Int(2)],
                vec![Datum::Null, Datum::Int(3)],
            ]
        );
        let right = join(&l, &r, JoinKind::Right, keys, None, (1, 1), &ctx).unwrap();
        assert_eq!(right.len(), 2);
    }
}
