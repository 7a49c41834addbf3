//! Binding and planning: sqlparser's AST becomes our own bound tree at
//! once, then a [`Plan`] of relational operators.
//!
//! The binder resolves every name against the catalog (descriptors fetched
//! beforehand, so binding is synchronous), types every expression, infers
//! the types of parameters from their context (`id = $1` makes `$1` the
//! type of `id`), and rejects what PostgreSQL rejects even when sqlparser
//! accepted it.
//!
//! The planner's one optimization that matters today: conjuncts of the
//! WHERE clause that constrain the primary key become the scan's
//! [`KeyRange`] — all key columns equal to constants is a point lookup, an
//! IN list on a one-column key is a set of points, equalities on a key
//! prefix plus bounds on the next column are one span — instead of a full
//! table scan. When the primary key is not constrained, the same analysis
//! runs over each secondary index's columns; the first index with a usable
//! range becomes a [`KeyRange::Index`] (scan the index entries, then fetch
//! each row by its primary key: an index join). The whole predicate is
//! still applied as a filter, so the choice never changes results.
//! [`explain`] prints the plan and the spans.

use std::collections::HashMap;
use std::sync::Arc;

use sqlparser::ast;

use crate::array::ArrayFn;
use crate::catalog::{TableDesc, ViewDesc};
use crate::encoding;
use crate::error::{code, Result, SqlError};
use crate::expr::{BinOp, Expr, Func, PatternOp, SubqueryKind, SubqueryPlan};
use crate::functions::LibFn;
use crate::types::{self, DataType, DateTimeUnit, Datum, Decimal};

/// An expression with its type.
#[derive(Debug, Clone)]
pub struct Typed {
    pub e: Expr,
    pub ty: DataType,
}

/// Aggregate functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    CountStar,
    Count,
    Sum,
    Avg,
    Min,
    Max,
    ArrayAgg,
    /// `json_agg` / `jsonb_agg`: the values as a JSON array.
    JsonAgg {
        jsonb: bool,
    },
    /// `json_object_agg(key, value)` / `jsonb_object_agg`: a JSON object
    /// (the value, as JSON, rides in [`AggCall::delimiter`]).
    JsonObjectAgg {
        jsonb: bool,
    },
    /// `GROUPING(a, b, ...)`: per output row, a bit per argument (the
    /// first the most significant), set if the row's grouping set leaves
    /// that group out. `positions[..len]` are the arguments' positions
    /// among the query's groups.
    Grouping {
        positions: [u8; 8],
        len: u8,
    },
    /// `percentile_cont(f) / percentile_disc(f) WITHIN GROUP (ORDER BY
    /// x)`: the value at fraction `f` (bits of an f64) of the sorted
    /// values, interpolated (cont) or the first at or past it (disc).
    Percentile {
        cont: bool,
        fraction_bits: u64,
    },
    /// `mode() WITHIN GROUP (ORDER BY x)`: the most frequent value (the
    /// first in the order among equally frequent ones).
    Mode,
    /// `string_agg(value, delimiter)`.
    StringAgg,
    /// `bool_and` / `every`.
    BoolAnd,
    BoolOr,
    /// `var_samp` / `variance`, `var_pop`, `stddev_samp` / `stddev`,
    /// `stddev_pop`.
    Variance {
        population: bool,
        root: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct AggCall {
    pub func: AggFunc,
    pub arg: Option<Expr>,
    /// `string_agg`'s delimiter (evaluated per row, as in PostgreSQL).
    pub delimiter: Option<Expr>,
    pub distinct: bool,
    /// `FILTER (WHERE ...)`: rows it rejects are not aggregated.
    pub filter: Option<Expr>,
    /// The argument's type.
    pub arg_ty: DataType,
    /// `ORDER BY` inside the call (`string_agg(x, ',' ORDER BY y)`): the
    /// rows of a group are aggregated in this order.
    pub order_by: Vec<SortKey>,
}

/// A window function.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowFunc {
    RowNumber,
    Rank,
    DenseRank,
    /// `lag(value [, offset [, default]])`: `args` are the three (offset 1
    /// and default NULL when absent).
    Lag,
    /// `lead(...)`: as lag, looking forward.
    Lead,
    /// `first_value(v)` / `last_value(v)`: `v` at the frame's first / last
    /// row (NULL for an empty frame).
    FirstValue,
    LastValue,
    /// `nth_value(v, n)`: `v` at the frame's n-th row.
    NthValue,
    /// `ntile(k)`: the bucket (1..k) of the row when the partition is
    /// divided as evenly as possible, the first buckets one row larger.
    Ntile,
    /// `percent_rank()`: (rank - 1) / (partition rows - 1).
    PercentRank,
    /// `cume_dist()`: rows up to the current row's last peer / partition
    /// rows.
    CumeDist,
    /// An aggregate over the frame: the whole partition without ORDER BY,
    /// else from its start to the current row and its peers (PostgreSQL's
    /// default frame).
    Agg(Box<AggCall>),
}

/// One end of a window frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameBound {
    UnboundedPreceding,
    /// `n PRECEDING` (ROWS only).
    Preceding(u64),
    /// The current row (ROWS) or its last / first peer (RANGE).
    CurrentRow,
    /// `n FOLLOWING` (ROWS only).
    Following(u64),
    UnboundedFollowing,
}

/// The rows an aggregate window function reads around each row:
/// `ROWS` counts rows, `RANGE` treats peers (equal ORDER BY values) alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub rows: bool,
    pub start: FrameBound,
    pub end: FrameBound,
}

impl Frame {
    /// PostgreSQL's default: `RANGE BETWEEN UNBOUNDED PRECEDING AND
    /// CURRENT ROW` (the whole partition when there is no ORDER BY, since
    /// then every row is a peer).
    pub const DEFAULT: Frame = Frame {
        rows: false,
        start: FrameBound::UnboundedPreceding,
        end: FrameBound::CurrentRow,
    };
}

/// `func(args) OVER (PARTITION BY partition ORDER BY order frame)`.
#[derive(Debug, Clone)]
pub struct WindowCall {
    pub func: WindowFunc,
    pub args: Vec<Expr>,
    pub partition: Vec<Expr>,
    pub order: Vec<SortKey>,
    pub frame: Frame,
}

impl WindowCall {
    /// Rewrites every expression of the call with `f`.
    fn map_exprs(self, f: &mut impl FnMut(Expr) -> Result<Expr>) -> Result<WindowCall> {
        let func = match self.func {
            WindowFunc::Agg(mut a) => {
                a.arg = a.arg.map(&mut *f).transpose()?;
                a.filter = a.filter.map(&mut *f).transpose()?;
                a.delimiter = a.delimiter.map(&mut *f).transpose()?;
                a.order_by = std::mem::take(&mut a.order_by)
                    .into_iter()
                    .map(|k| {
                        Ok(SortKey {
                            expr: f(k.expr)?,
                            ..k
                        })
                    })
                    .collect::<Result<_>>()?;
                WindowFunc::Agg(a)
            }
            other => other,
        };
        Ok(WindowCall {
            func,
            args: self.args.into_iter().map(&mut *f).collect::<Result<_>>()?,
            partition: self
                .partition
                .into_iter()
                .map(&mut *f)
                .collect::<Result<_>>()?,
            order: self
                .order
                .into_iter()
                .map(|k| {
                    Ok(SortKey {
                        expr: f(k.expr)?,
                        ..k
                    })
                })
                .collect::<Result<_>>()?,
            frame: self.frame,
        })
    }

    /// Every expression of the call.
    pub fn exprs(&self) -> Vec<&Expr> {
        let mut out: Vec<&Expr> = self.args.iter().chain(&self.partition).collect();
        out.extend(self.order.iter().map(|k| &k.expr));
        if let WindowFunc::Agg(a) = &self.func {
            out.extend(a.arg.iter().chain(&a.filter).chain(&a.delimiter));
            out.extend(a.order_by.iter().map(|k| &k.expr));
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
}

/// How a [`Plan::Join`] with equality keys finds each row's matches (see
/// [`join_strategy`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinStrategy {
    /// No equality keys: every pair of rows is tested.
    NestedLoop,
    /// A hash table of the right side's keys, probed by each left row.
    Hash,
    /// Both sides are scans that come out ordered by the join keys (a
    /// prefix of each primary key, in order, of the same types): they are
    /// merged in one pass, no hash table.
    Merge,
    /// The right side is a table scan whose whole primary key is joined
    /// to left values: when the left side has at most [`LOOKUP_JOIN_LIMIT`]
    /// rows, only the right rows with those keys are read (a point lookup
    /// per left key) instead of the whole table; `key_columns[i]` is the
    /// left key feeding the right table's i-th primary key column. The
    /// rows found are then matched as by `then` (merge or hash).
    Lookup {
        key_columns: Vec<usize>,
        then: Box<JoinStrategy>,
    },
}

/// At most this many left rows turn a [`JoinStrategy::Lookup`] into point
/// lookups; with more, the right table is scanned in full.
pub const LOOKUP_JOIN_LIMIT: usize = 100;

/// Key types whose encoded order (a scan's order) is their SQL order, so a
/// scan ordered by them can be merged.
fn merge_orderable(ty: &DataType) -> bool {
    matches!(
        ty,
        DataType::Int2
            | DataType::Int4
            | DataType::Int8
            | DataType::Bool
            | DataType::Text
            | DataType::Varchar(_)
            | DataType::Date
            | DataType::Time
            | DataType::Timestamp
            | DataType::TimestampTz
            | DataType::Uuid
    )
}

/// The table of a scan whose rows come out in primary-key order.
fn ordered_scan(p: &Plan) -> Option<&Arc<TableDesc>> {
    match p {
        Plan::Scan { table, range, .. } if !matches!(range, KeyRange::Index { .. }) => Some(table),
        _ => None,
    }
}

/// Whether `p` can be evaluated before the statement runs, as a lookup
/// join's left side is: built of scans, filters, projections, joins and
/// literal rows, with no outer reference (a correlated subquery's values),
/// subquery or `WITH RECURSIVE` work table in it.
fn self_contained(p: &Plan) -> bool {
    let closed = |e: &Expr| {
        let mut ok = true;
        e.walk(&mut |x| ok &= !matches!(x, Expr::OuterRef(_) | Expr::Subquery { .. }));
        ok
    };
    match p {
        Plan::Scan { filter, .. } => filter.as_ref().is_none_or(closed),
        Plan::Values { rows } => rows.iter().flatten().all(closed),
        Plan::Filter { input, predicate } => closed(predicate) && self_contained(input),
        Plan::Project { input, exprs } => exprs.iter().all(closed) && self_contained(input),
        Plan::Join {
            left,
            right,
            left_keys,
            right_keys,
            on,
            ..
        } => {
            left_keys.iter().chain(right_keys).chain(on).all(closed)
                && self_contained(left)
                && self_contained(right)
        }
        _ => false,
    }
}

/// How join `plan` (a [`Plan::Join`]) matches rows: a lookup join when the
/// right side is a full scan of a table whose whole primary key the join
/// keys give (inner and left joins: the right rows without a match are not
/// needed); a merge join when both sides are scans ordered by the keys;
/// a hash join for other equality keys; a nested loop without keys.
pub fn join_strategy(plan: &Plan) -> JoinStrategy {
    let Plan::Join {
        left,
        right,
        kind,
        left_keys,
        right_keys,
        ..
    } = plan
    else {
        return JoinStrategy::NestedLoop;
    };
    if left_keys.is_empty() {
        return JoinStrategy::NestedLoop;
    }
    let column = |e: &Expr| match e {
        Expr::Column(i) => Some(*i),
        _ => None,
    };
    let merge = match (ordered_scan(left), ordered_scan(right)) {
        (Some(lt), Some(rt)) => {
            left_keys.len() <= lt.primary_key.len().min(rt.primary_key.len())
                && left_keys
                    .iter()
                    .zip(right_keys)
                    .enumerate()
                    .all(|(i, (l, r))| {
                        let (lc, rc) = (lt.primary_key[i], rt.primary_key[i]);
                        column(l) == Some(lc)
                            && column(r) == Some(rc)
                            && lt.columns[lc].ty == rt.columns[rc].ty
                            && merge_orderable(&lt.columns[lc].ty)
                    })
        }
        _ => false,
    };
    let then = if merge {
        JoinStrategy::Merge
    } else {
        JoinStrategy::Hash
    };
    if let (Plan::Scan { table, range, .. }, JoinKind::Inner | JoinKind::Left, true) =
        (right.as_ref(), kind, self_contained(left))
    {
        if *range == KeyRange::Full {
            let key_columns: Option<Vec<usize>> = table
                .primary_key
                .iter()
                .map(|pk| right_keys.iter().position(|r| column(r) == Some(*pk)))
                .collect();
            if let Some(key_columns) = key_columns {
                return JoinStrategy::Lookup {
                    key_columns,
                    then: Box::new(then),
                };
            }
        }
    }
    then
}

/// UNION, INTERSECT, EXCEPT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOpKind {
    Union,
    Intersect,
    Except,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub expr: Expr,
    pub desc: bool,
    pub nulls_first: bool,
}

/// Which keys of a table a scan reads.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyRange {
    /// Every row.
    Full,
    /// Rows whose full primary key equals these values (one list per point).
    Points(Vec<Vec<Expr>>),
    /// Rows whose key starts with `prefix` and whose next key column lies
    /// within the bounds (`(value, inclusive)`).
    Span {
        prefix: Vec<Expr>,
        lower: Option<(Expr, bool)>,
        upper: Option<(Expr, bool)>,
    },
    /// Through a secondary index: `range` is over the index's columns (a
    /// `Points` entry matches every row with those values); each entry
    /// found leads to its row in the primary index (an index join).
    Index { index_id: u64, range: Box<KeyRange> },
}

/// A relational operator tree. Each node produces rows of datums.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Rows of a table: all columns (hidden ones included), in order.
    Scan {
        table: Arc<TableDesc>,
        range: KeyRange,
        filter: Option<Expr>,
    },
    /// Literal rows (`SELECT` without FROM is one empty row).
    Values {
        rows: Vec<Vec<Expr>>,
    },
    /// `generate_series(start, stop [, step])` or `unnest(array)` (one
    /// argument) in FROM: one column.
    Series {
        args: Vec<Expr>,
    },
    /// `unnest(a, b, ...)` in FROM: a column per array, as many rows as
    /// the longest has elements (the others padded with NULLs).
    Unnest {
        args: Vec<Expr>,
    },
    Filter {
        input: Box<Plan>,
        predicate: Expr,
    },
    Project {
        input: Box<Plan>,
        exprs: Vec<Expr>,
    },
    /// A projection with set-returning functions in the select list: each
    /// input row yields as many rows as its longest series; `srfs` are
    /// (output position, generate_series arguments over the input row).
    ProjectSet {
        input: Box<Plan>,
        exprs: Vec<Expr>,
        srfs: Vec<(usize, Vec<Expr>)>,
    },
    /// Output: left columns then right columns. With `left_keys`, a hash
    /// join on those equalities; `on` is checked on the joined row.
    Join {
        left: Box<Plan>,
        right: Box<Plan>,
        kind: JoinKind,
        left_keys: Vec<Expr>,
        right_keys: Vec<Expr>,
        on: Option<Expr>,
        left_width: usize,
        right_width: usize,
    },
    /// `left [LEFT] JOIN LATERAL (subquery)`: the subquery runs once per
    /// left row (its outer values `args` taken from that row); output: the
    /// left row, then the subquery's (NULLs for an unmatched left row of
    /// an outer join).
    Lateral {
        left: Box<Plan>,
        sub: Arc<SubqueryPlan>,
        args: Vec<Expr>,
        /// Over the joined row.
        on: Option<Expr>,
        outer: bool,
        right_width: usize,
    },
    /// Output: the group values, then the aggregates.
    Aggregate {
        input: Box<Plan>,
        groups: Vec<Expr>,
        aggs: Vec<AggCall>,
        /// GROUPING SETS / ROLLUP / CUBE: the input is grouped once per
        /// set (positions in `groups`); the groups a set leaves out are
        /// NULL in its rows. Empty: one grouping by all of `groups`.
        sets: Vec<Vec<usize>>,
    },
    Sort {
        input: Box<Plan>,
        keys: Vec<SortKey>,
    },
    /// Removes duplicate rows.
    Distinct {
        input: Box<Plan>,
    },
    /// `DISTINCT ON (keys)`: the first row of each key (input sorted).
    DistinctOn {
        input: Box<Plan>,
        keys: Vec<Expr>,
    },
    /// UNION / INTERSECT / EXCEPT [ALL] of two inputs of equal width.
    SetOp {
        op: SetOpKind,
        all: bool,
        left: Box<Plan>,
        right: Box<Plan>,
    },
    Limit {
        input: Box<Plan>,
        limit: Option<Expr>,
        offset: Option<Expr>,
    },
    /// `WITH RECURSIVE`: the anchor's rows, then the recursive term run
    /// again and again over the rows the previous round added (its
    /// [`Plan::WorkTable`] `id`), until a round adds none. Without `all`,
    /// rows already produced are not added again.
    Recursive {
        id: usize,
        anchor: Box<Plan>,
        recursive: Box<Plan>,
        all: bool,
    },
    /// The rows of the current round of [`Plan::Recursive`] `id`.
    WorkTable {
        id: usize,
    },
    /// The input rows, each followed by the value of every window function
    /// for it; rows come out ordered by the first call's partition and
    /// ORDER BY.
    Window {
        input: Box<Plan>,
        calls: Vec<WindowCall>,
    },
}

/// A bound query: its plan and its output columns.
#[derive(Debug, Clone)]
pub struct BoundQuery {
    pub plan: Plan,
    pub columns: Vec<(String, DataType)>,
    /// `FOR UPDATE` / `FOR SHARE`: lock the rows read.
    pub lock: Option<RowLock>,
}

/// Which rows a `SELECT ... FOR UPDATE | FOR SHARE` locks: those read from
/// the tables named after `OF` (empty: from every table it reads). Both
/// strengths take the same exclusive lock.
#[derive(Debug, Clone)]
pub struct RowLock {
    pub of: Vec<String>,
}

/// The row locks a query's `FOR UPDATE | FOR SHARE` clauses ask for.
fn row_lock(q: &ast::Query) -> Result<Option<RowLock>> {
    if q.locks.is_empty() {
        return Ok(None);
    }
    let mut of = Vec::new();
    for l in &q.locks {
        if let Some(nb) = &l.nonblock {
            return Err(SqlError::unsupported(format!(
                "{} is not supported",
                match nb {
                    ast::NonBlock::Nowait => "NOWAIT",
                    ast::NonBlock::SkipLocked => "SKIP LOCKED",
                }
            )));
        }
        match &l.of {
            Some(name) => of.push(table_name(name)?),
            // One clause without OF covers every table.
            None => return Ok(Some(RowLock { of: Vec::new() })),
        }
    }
    Ok(Some(RowLock { of }))
}

#[derive(Debug, Clone)]
pub enum InsertSource {
    /// Rows of expressions over nothing; `None` is DEFAULT.
    Values(Vec<Vec<Option<Expr>>>),
    Query(Box<Plan>),
}

#[derive(Debug, Clone)]
pub struct Returning {
    /// Over the table's full row.
    pub exprs: Vec<Expr>,
    pub columns: Vec<(String, DataType)>,
}

#[derive(Debug, Clone)]
pub struct InsertPlan {
    pub table: Arc<TableDesc>,
    /// Table column positions the source provides, in source order.
    pub targets: Vec<usize>,
    pub source: InsertSource,
    pub returning: Option<Returning>,
    pub on_conflict: Option<OnConflict>,
    /// The constraints ON CONFLICT checks, in order (empty without it).
    pub arbiters: Vec<Arbiter>,
}

/// A unique constraint that ON CONFLICT checks for an existing row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arbiter {
    PrimaryKey,
    /// The unique index at this position of the table's `indexes`.
    Unique(usize),
}

/// What `ON CONFLICT` does when an arbiter finds an existing row.
#[derive(Debug, Clone)]
pub enum OnConflict {
    DoNothing,
    /// Expressions over the existing row followed by the proposed row
    /// (`EXCLUDED`): the table's columns, then the same columns again.
    DoUpdate {
        sets: Vec<(usize, Expr)>,
        filter: Option<Expr>,
    },
}

#[derive(Debug, Clone)]
pub struct UpdatePlan {
    pub table: Arc<TableDesc>,
    pub range: KeyRange,
    pub filter: Option<Expr>,
    /// (column position, new value over the old row, followed by the
    /// FROM row when there is one)
    pub sets: Vec<(usize, Expr)>,
    pub returning: Option<Returning>,
    /// `UPDATE ... FROM`: the joined FROM items; `filter` then applies to
    /// the target row followed by a FROM row.
    pub from: Option<Box<Plan>>,
}

#[derive(Debug, Clone)]
pub struct DeletePlan {
    pub table: Arc<TableDesc>,
    pub range: KeyRange,
    pub filter: Option<Expr>,
    pub returning: Option<Returning>,
}

/// A bound statement that runs through the executor.
#[derive(Debug, Clone)]
pub enum Bound {
    Query(BoundQuery),
    Insert(InsertPlan),
    Update(UpdatePlan),
    Delete(DeletePlan),
    Explain(Box<Bound>),
    /// EXPLAIN ANALYZE: runs the statement (writes included, as in
    /// PostgreSQL) and reports the plan with what the run took.
    ExplainAnalyze(Box<Bound>),
}

impl Bound {
    /// The columns the statement returns (empty: a command).
    pub fn columns(&self) -> Vec<(String, DataType)> {
        match self {
            Bound::Query(q) => q.columns.clone(),
            Bound::Insert(InsertPlan { returning, .. })
            | Bound::Update(UpdatePlan { returning, .. })
            | Bound::Delete(DeletePlan { returning, .. }) => returning
                .as_ref()
                .map(|r| r.columns.clone())
                .unwrap_or_default(),
            Bound::Explain(_) | Bound::ExplainAnalyze(_) => {
                vec![("QUERY PLAN".into(), DataType::Text)]
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Names

/// An identifier as PostgreSQL folds it: unquoted names are lower-cased.
pub fn ident(i: &ast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

/// The SQL-layer name of a relation's object name: `t`, `public.t` and
/// `db.public.t` are `t`; `s.t` and `db.s.t` are `s.t` (see the catalog).
pub fn table_name(n: &ast::ObjectName) -> Result<String> {
    let parts: Vec<String> =
        n.0.iter()
            .map(|p| match p {
                ast::ObjectNamePart::Identifier(i) => Ok(ident(i)),
                other => Err(SqlError::unsupported(format!("name {other}"))),
            })
            .collect::<Result<_>>()?;
    match parts.as_slice() {
        [t] => Ok(t.clone()),
        [s, t] if s == crate::catalog::PUBLIC_SCHEMA => Ok(t.clone()),
        [_, s, t] if s == crate::catalog::PUBLIC_SCHEMA => Ok(t.clone()),
        [s, t] | [_, s, t] if s == "information_schema" => {
            Ok(format!("{}{t}", crate::infoschema::PREFIX))
        }
        [s, t] | [_, s, t] if s == "pg_catalog" => Ok(format!("{}{t}", crate::pgcatalog::PREFIX)),
        [s, t] | [_, s, t] if !s.contains('.') => Ok(crate::catalog::qualified_name(s, t)),
        _ => Err(SqlError::undefined_table(&n.to_string())),
    }
}

/// How a statement spells a relation, as the key of the descriptors
/// fetched for it: [`table_name`], except that an explicit `public.t` stays
/// `public.t` (an unqualified `t` is looked up along the search path, a
/// qualified one is not; see `objects::fetch_relations`).
pub fn relation_key(n: &ast::ObjectName) -> Result<String> {
    let name = table_name(n)?;
    Ok(if n.0.len() > 1 && !name.contains('.') {
        format!("{}.{name}", crate::catalog::PUBLIC_SCHEMA)
    } else {
        name
    })
}

/// The relation names (tables or views) a statement reads or writes, so
/// their descriptors can be fetched before binding. Names of CTEs are
/// included too (they may also name a table; the binder prefers the CTE).
/// The arguments of a call with named ones (`make_interval(days => 3)`)
/// in parameter order, parameters not given their defaults. Only
/// `make_interval` has named parameters.
fn place_named_arguments(
    function: &str,
    mut positional: Vec<ast::Expr>,
    named: Vec<(String, ast::Expr)>,
) -> Result<Vec<ast::Expr>> {
    const MAKE_INTERVAL: [&str; 7] = ["years", "months", "weeks", "days", "hours", "mins", "secs"];
    let no_such = |arg: &str| {
        SqlError::new(
            code::UNDEFINED_FUNCTION,
            format!("function {function} has no parameter named \"{arg}\""),
        )
    };
    if function != "make_interval" {
        return Err(no_such(&named[0].0));
    }
    let zero = || ast::Expr::value(ast::Value::Number("0".into(), false));
    for (arg, e) in named {
        let pos = MAKE_INTERVAL
            .iter()
            .position(|p| *p == arg)
            .ok_or_else(|| no_such(&arg))?;
        if pos < positional.len() && positional[pos] != zero() {
            return Err(SqlError::syntax(format!(
                "argument \"{arg}\" of {function} is given twice"
            )));
        }
        if positional.len() <= pos {
            positional.resize_with(pos + 1, zero);
        }
        positional[pos] = e;
    }
    Ok(positional)
}

pub fn referenced_tables(stmt: &ast::Statement) -> Vec<String> {
    let mut out = Vec::new();
    match stmt {
        ast::Statement::Query(q) => query_tables(q, &mut out),
        ast::Statement::Insert(i) => {
            if let ast::TableObject::TableName(n) = &i.table {
                if let Ok(n) = relation_key(n) {
                    out.push(n)
                }
            }
            if let Some(src) = &i.source {
                query_tables(src, &mut out)
            }
            if let Some(ast::OnInsert::OnConflict(oc)) = &i.on {
                if let ast::OnConflictAction::DoUpdate(du) = &oc.action {
                    for a in &du.assignments {
                        expr_tables(&a.value, &mut out);
                    }
                    if let Some(w) = &du.selection {
                        expr_tables(w, &mut out);
                    }
                }
            }
        }
        ast::Statement::Update(u) => {
            twj_tables(&u.table, &mut out);
            if let Some(
                ast::UpdateTableFromKind::AfterSet(f) | ast::UpdateTableFromKind::BeforeSet(f),
            ) = &u.from
            {
                f.iter().for_each(|t| twj_tables(t, &mut out));
            }
            for a in &u.assignments {
                expr_tables(&a.value, &mut out);
            }
            if let Some(w) = &u.selection {
                expr_tables(w, &mut out);
            }
        }
        ast::Statement::Delete(d) => {
            let from = match &d.from {
                ast::FromTable::WithFromKeyword(f) | ast::FromTable::WithoutKeyword(f) => f,
            };
            from.iter().for_each(|t| twj_tables(t, &mut out));
            if let Some(using) = &d.using {
                using.iter().for_each(|t| twj_tables(t, &mut out));
            }
            if let Some(w) = &d.selection {
                expr_tables(w, &mut out);
            }
        }
        ast::Statement::Explain { statement, .. } => out = referenced_tables(statement),
        _ => {}
    }
    out.sort();
    out.dedup();
    out
}

/// The relation names a query reads (see [`referenced_tables`]).
pub fn query_tables(q: &ast::Query, out: &mut Vec<String>) {
    if let Some(w) = &q.with {
        for c in &w.cte_tables {
            query_tables(&c.query, out);
        }
    }
    setexpr_tables(&q.body, out);
    if let Some(ob) = &q.order_by {
        if let ast::OrderByKind::Expressions(list) = &ob.kind {
            list.iter().for_each(|o| expr_tables(&o.expr, out));
        }
    }
    if let Some(ast::LimitClause::LimitOffset { limit, offset, .. }) = &q.limit_clause {
        limit.iter().for_each(|e| expr_tables(e, out));
        offset.iter().for_each(|o| expr_tables(&o.value, out));
    }
}

fn setexpr_tables(s: &ast::SetExpr, out: &mut Vec<String>) {
    match s {
        ast::SetExpr::Select(sel) => {
            sel.from.iter().for_each(|t| twj_tables(t, out));
            for item in &sel.projection {
                match item {
                    ast::SelectItem::UnnamedExpr(e)
                    | ast::SelectItem::ExprWithAlias { expr: e, .. } => expr_tables(e, out),
                    _ => {}
                }
            }
            sel.selection.iter().for_each(|e| expr_tables(e, out));
            sel.having.iter().for_each(|e| expr_tables(e, out));
            if let ast::GroupByExpr::Expressions(list, _) = &sel.group_by {
                list.iter().for_each(|e| expr_tables(e, out));
            }
        }
        ast::SetExpr::Query(q) => query_tables(q, out),
        ast::SetExpr::SetOperation { left, right, .. } => {
            setexpr_tables(left, out);
            setexpr_tables(right, out);
        }
        ast::SetExpr::Values(v) => v
            .rows
            .iter()
            .for_each(|r| r.content.iter().for_each(|e| expr_tables(e, out))),
        _ => {}
    }
}

fn factor_tables(f: &ast::TableFactor, out: &mut Vec<String>) {
    match f {
        ast::TableFactor::Table { name, args, .. } => {
            if let Some(a) = args {
                for arg in &a.args {
                    if let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) = arg {
                        expr_tables(e, out)
                    }
                }
            } else if let Ok(n) = relation_key(name) {
                out.push(n)
            }
        }
        ast::TableFactor::Derived { subquery, .. } => query_tables(subquery, out),
        ast::TableFactor::NestedJoin {
            table_with_joins, ..
        } => twj_tables(table_with_joins, out),
        _ => {}
    }
}

fn twj_tables(t: &ast::TableWithJoins, out: &mut Vec<String>) {
    factor_tables(&t.relation, out);
    for j in &t.joins {
        factor_tables(&j.relation, out);
        if let ast::JoinOperator::Join(c)
        | ast::JoinOperator::Inner(c)
        | ast::JoinOperator::Left(c)
        | ast::JoinOperator::LeftOuter(c)
        | ast::JoinOperator::Right(c)
        | ast::JoinOperator::RightOuter(c)
        | ast::JoinOperator::FullOuter(c) = &j.join_operator
        {
            if let ast::JoinConstraint::On(e) = c {
                expr_tables(e, out)
            }
        }
    }
}

/// The relations read by subqueries inside an expression.
fn expr_tables(e: &ast::Expr, out: &mut Vec<String>) {
    use ast::Expr as A;
    match e {
        A::Cast {
            expr, data_type, ..
        } if is_regclass(data_type) => {
            out.push(format!("{}pg_class", crate::pgcatalog::PREFIX));
            out.push(format!("{}pg_namespace", crate::pgcatalog::PREFIX));
            expr_tables(expr, out);
        }
        A::Subquery(q) | A::Exists { subquery: q, .. } => query_tables(q, out),
        A::In { expr, target, .. } => {
            expr_tables(expr, out);
            match target {
                ast::InTarget::List(list) => list.iter().for_each(|x| expr_tables(x, out)),
                ast::InTarget::Subquery(q) => query_tables(q, out),
                _ => {}
            }
        }
        A::BinaryOp { left, right, .. }
        | A::AnyOp { left, right, .. }
        | A::AllOp { left, right, .. }
        | A::IsDistinctFrom(left, right)
        | A::IsNotDistinctFrom(left, right) => {
            expr_tables(left, out);
            expr_tables(right, out);
        }
        A::UnaryOp { expr, .. }
        | A::Nested(expr)
        | A::Cast { expr, .. }
        | A::IsNull(expr)
        | A::IsNotNull(expr)
        | A::IsTrue(expr)
        | A::IsNotTrue(expr)
        | A::IsFalse(expr)
        | A::IsNotFalse(expr)
        | A::IsUnknown(expr)
        | A::IsNotUnknown(expr)
        | A::Extract { expr, .. } => expr_tables(expr, out),
        A::Between {
            expr, low, high, ..
        } => {
            expr_tables(expr, out);
            expr_tables(low, out);
            expr_tables(high, out);
        }
        A::Like { expr, pattern, .. } | A::ILike { expr, pattern, .. } => {
            expr_tables(expr, out);
            expr_tables(pattern, out);
        }
        A::SimilarTo {
            expr,
            pattern,
            escape_char,
            ..
        } => {
            expr_tables(expr, out);
            expr_tables(pattern, out);
            escape_char.iter().for_each(|x| expr_tables(x, out));
        }
        A::Tuple(list) => list.iter().for_each(|x| expr_tables(x, out)),
        A::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            operand.iter().for_each(|x| expr_tables(x, out));
            for c in conditions {
                expr_tables(&c.condition, out);
                expr_tables(&c.result, out);
            }
            else_result.iter().for_each(|x| expr_tables(x, out));
        }
        A::Function(f) => match &f.args {
            ast::FunctionArguments::List(l) => {
                match function_name(f).as_str() {
                    "pg_get_constraintdef" => {
                        out.push(format!("{}pg_constraint", crate::pgcatalog::PREFIX))
                    }
                    "pg_get_indexdef" => out.push(format!("{}pg_index", crate::pgcatalog::PREFIX)),
                    _ => {}
                }
                for a in &l.args {
                    if let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) = a {
                        expr_tables(x, out)
                    }
                }
            }
            ast::FunctionArguments::Subquery(q) => query_tables(q, out),
            ast::FunctionArguments::None => {}
        },
        _ => {}
    }
}

/// Converts a type name of the AST; SERIAL types return `(type, true)`.
pub fn data_type(t: &ast::DataType) -> Result<(DataType, bool)> {
    use ast::DataType as A;
    let len = |l: &Option<ast::CharacterLength>| match l {
        Some(ast::CharacterLength::IntegerLength { length, .. }) => Some(*length as u32),
        _ => None,
    };
    let numeric = |n: &ast::ExactNumberInfo| match n {
        ast::ExactNumberInfo::None => DataType::Numeric(None),
        ast::ExactNumberInfo::Precision(p) => DataType::Numeric(Some((*p as u32, 0))),
        ast::ExactNumberInfo::PrecisionAndScale(p, s) => {
            DataType::Numeric(Some((*p as u32, (*s).max(0) as u32)))
        }
    };
    Ok((
        match t {
            A::SmallInt(_) | A::Int2(_) => DataType::Int2,
            A::Int(_) | A::Integer(_) | A::Int4(_) => DataType::Int4,
            A::BigInt(_) | A::Int8(_) => DataType::Int8,
            A::Real | A::Float4 => DataType::Float4,
            A::Float8 | A::DoublePrecision | A::Double(_) => DataType::Float8,
            A::Float(n) => match n {
                ast::ExactNumberInfo::Precision(p) if *p <= 24 => DataType::Float4,
                _ => DataType::Float8,
            },
            A::Bool | A::Boolean => DataType::Bool,
            A::Text | A::String(_) => DataType::Text,
            A::Varchar(l) | A::CharacterVarying(l) | A::CharVarying(l) => DataType::Varchar(len(l)),
            A::Char(l) | A::Character(l) => DataType::Char(Some(len(l).unwrap_or(1))),
            A::Numeric(n) | A::Decimal(n) | A::Dec(n) => numeric(n),
            A::Bytea => DataType::Bytea,
            A::Uuid => DataType::Uuid,
            A::Regclass => DataType::Int8,
            A::JSON => DataType::Json,
            A::JSONB => DataType::Jsonb,
            A::Date => DataType::Date,
            A::Timestamp(_, tz) => match tz {
                ast::TimezoneInfo::WithTimeZone | ast::TimezoneInfo::Tz => DataType::TimestampTz,
                _ => DataType::Timestamp,
            },
            A::Time(precision, ast::TimezoneInfo::None | ast::TimezoneInfo::WithoutTimeZone) => {
                // Microseconds are the only precision kept.
                if precision.is_some_and(|p| p < 6) {
                    return Err(SqlError::unsupported(format!(
                        "type {t} is not supported (TIME keeps microseconds)"
                    )));
                }
                DataType::Time
            }
            A::Interval {
                fields: None,
                precision: None,
            } => DataType::Interval,
            A::Array(
                ast::ArrayElemTypeDef::SquareBracket(elem, _)
                | ast::ArrayElemTypeDef::Qualified(elem, _)
                | ast::ArrayElemTypeDef::AngleBracket(elem)
                | ast::ArrayElemTypeDef::Parenthesis(elem),
            ) => array_of(data_type(elem)?)?,
            A::Custom(name, _) if name.to_string().starts_with('_') => {
                // PostgreSQL's name of an array type: `_int4` is `int4[]`.
                let n = name.to_string().to_lowercase();
                let undefined = || {
                    SqlError::new(
                        code::UNDEFINED_OBJECT,
                        format!("type \"{n}\" does not exist"),
                    )
                };
                let elem =
                    sqlparser::parser::Parser::new(&sqlparser::dialect::PostgreSqlDialect {})
                        .try_with_sql(&n[1..])
                        .and_then(|mut p| p.parse_data_type())
                        .map_err(|_| undefined())?;
                array_of(data_type(&elem).map_err(|_| undefined())?)?
            }
            A::Custom(name, _) => {
                let n = name.to_string().to_lowercase();
                return Ok(match n.as_str() {
                    "serial" | "serial4" => (DataType::Int4, true),
                    "bigserial" | "serial8" => (DataType::Int8, true),
                    "smallserial" | "serial2" => (DataType::Int2, true),
                    "int2" => (DataType::Int2, false),
                    "int4" => (DataType::Int4, false),
                    "int8" => (DataType::Int8, false),
                    "float4" => (DataType::Float4, false),
                    "float8" => (DataType::Float8, false),
                    "bpchar" => (DataType::Char(None), false),
                    "timestamptz" => (DataType::TimestampTz, false),
                    "string" => (DataType::Text, false),
                    // Object identifiers and the catalog's `name` type.
                    "oid" => (DataType::Oid, false),
                    "regclass" | "regtype" | "regproc" | "regnamespace" => (DataType::Int8, false),
                    "name" => (DataType::Text, false),
                    _ => {
                        return Err(SqlError::new(
                            code::UNDEFINED_OBJECT,
                            format!("type \"{n}\" does not exist"),
                        ))
                    }
                });
            }
            other => {
                return Err(SqlError::unsupported(format!(
                    "type {other} is not supported"
                )))
            }
        },
        false,
    ))
}

/// A set-returning function in FROM after other items (`FROM t,
/// unnest(t.a) AS x`) may use their columns, as in PostgreSQL: it becomes
/// `LATERAL (SELECT f(...) AS x) AS x`. `None` for anything else.
fn function_as_lateral(f: &ast::TableFactor) -> Result<Option<ast::TableFactor>> {
    let (name, args, alias) = match f {
        ast::TableFactor::Table {
            name,
            args: Some(args),
            alias,
            ..
        } => (table_name(name)?, args.args.clone(), alias.clone()),
        ast::TableFactor::Function {
            name, args, alias, ..
        } => (table_name(name)?, args.clone(), alias.clone()),
        ast::TableFactor::UNNEST {
            alias,
            array_exprs,
            with_offset: false,
            with_ordinality: false,
            ..
        } => (
            "unnest".to_string(),
            array_exprs
                .iter()
                .map(|e| ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e.clone())))
                .collect(),
            alias.clone(),
        ),
        _ => return Ok(None),
    };
    if !matches!(name.as_str(), "generate_series" | "unnest")
        || (name == "unnest" && args.len() != 1)
    {
        return Ok(None);
    }
    // Without column references it is bound on its own (and a cross join
    // keeps its size limit).
    let mentions = args.iter().any(|a| match a {
        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => mentions_columns(e),
        _ => false,
    });
    if !mentions {
        return Ok(None);
    }
    let column = alias
        .as_ref()
        .map(|a| {
            a.columns
                .first()
                .map(|c| c.name.clone())
                .unwrap_or(a.name.clone())
        })
        .unwrap_or_else(|| ast::Ident::new(&name));
    let call = ast::Expr::Function(ast::Function {
        name: ast::ObjectName::from(vec![ast::Ident::new(&name)]),
        uses_odbc_syntax: false,
        parameters: ast::FunctionArguments::None,
        args: ast::FunctionArguments::List(ast::FunctionArgumentList {
            duplicate_treatment: None,
            args,
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    });
    let sql = format!("SELECT {call} AS {column}");
    let alias = ast::TableAlias {
        explicit: true,
        name: alias
            .as_ref()
            .map(|a| a.name.clone())
            .unwrap_or(ast::Ident::new(&name)),
        columns: vec![ast::TableAliasColumnDef::from_name(column.value.clone())],
        at: None,
    };
    Ok(Some(ast::TableFactor::Derived {
        lateral: true,
        subquery: Box::new(parse_query(&sql)?),
        alias: Some(alias),
        sample: None,
    }))
}

/// The comparison of `x op ANY / ALL (...)`.
fn quantified_op(op: &ast::BinaryOperator) -> Result<BinOp> {
    Ok(match op {
        ast::BinaryOperator::Eq => BinOp::Eq,
        ast::BinaryOperator::NotEq => BinOp::NotEq,
        ast::BinaryOperator::Lt => BinOp::Lt,
        ast::BinaryOperator::LtEq => BinOp::LtEq,
        ast::BinaryOperator::Gt => BinOp::Gt,
        ast::BinaryOperator::GtEq => BinOp::GtEq,
        other => return Err(SqlError::unsupported(format!("operator {other} ANY"))),
    })
}

/// Whether an expression names a column (in the forms a function's
/// arguments take: operators, casts, calls, subscripts).
fn mentions_columns(e: &ast::Expr) -> bool {
    use ast::Expr as A;
    match e {
        A::Identifier(_) | A::CompoundIdentifier(_) | A::CompoundFieldAccess { .. } => true,
        A::BinaryOp { left, right, .. } => mentions_columns(left) || mentions_columns(right),
        A::UnaryOp { expr, .. } | A::Nested(expr) | A::Cast { expr, .. } => mentions_columns(expr),
        A::Array(a) => a.elem.iter().any(mentions_columns),
        A::Function(f) => match &f.args {
            ast::FunctionArguments::List(l) => l.args.iter().any(|a| match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) => mentions_columns(x),
                _ => false,
            }),
            _ => false,
        },
        _ => false,
    }
}

/// Whether a cast's type is `regclass` (a relation's oid, looked up by
/// name).
fn is_regclass(t: &ast::DataType) -> bool {
    let name = t.to_string().to_ascii_lowercase();
    name == "regclass" || name == "pg_catalog.regclass"
}

/// Whether `e` is an array written in the statement (`ARRAY[...]` or a
/// `'{...}'` literal, maybe cast), whose elements ANY/ALL can expand into
/// comparisons the planner can use as key spans.
fn written_array(e: &ast::Expr) -> bool {
    match e {
        ast::Expr::Array(_) => true,
        ast::Expr::Nested(inner) | ast::Expr::Cast { expr: inner, .. } => written_array(inner),
        ast::Expr::Value(v) => matches!(v.value, ast::Value::SingleQuotedString(_)),
        _ => false,
    }
}

/// The array type of an element type (`int[]`); arrays of arrays and of
/// SERIAL are refused.
fn array_of((elem, serial): (DataType, bool)) -> Result<DataType> {
    if serial || matches!(elem, DataType::Array(_)) {
        return Err(SqlError::unsupported(
            "arrays of arrays and of serial types are not supported",
        ));
    }
    Ok(DataType::Array(Box::new(elem)))
}

// ---------------------------------------------------------------------------
// Binder

enum OrderTarget {
    /// A select-list position.
    Output(usize),
    Expr(Expr),
}

#[derive(Debug, Clone)]
struct ScopeCol {
    table: Option<String>,
    name: String,
    ty: DataType,
    hidden: bool,
    /// A column of a join's side that USING (or NATURAL) merged into one
    /// output column: reachable as `table.column` and through `table.*`
    /// only.
    qualified_only: bool,
    /// A column read from a table: which read of a table (an id unique in
    /// the process) and whether it is in that table's primary key.
    /// Grouping by a table's whole primary key groups by its other
    /// columns too (they depend on it), as in PostgreSQL.
    key: Option<(u64, bool)>,
}

#[derive(Debug, Clone, Default)]
struct Scope {
    cols: Vec<ScopeCol>,
}

impl Scope {
    fn of_table(t: &TableDesc, alias: &str) -> Scope {
        static READS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let read = READS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Scope {
            cols: t
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| ScopeCol {
                    table: Some(alias.to_string()),
                    name: c.name.clone(),
                    ty: c.ty.clone(),
                    hidden: c.hidden,
                    qualified_only: false,
                    key: Some((read, t.primary_key.contains(&i))),
                })
                .collect(),
        }
    }

    /// The columns that depend on `groups` through a primary key: every
    /// other column of a table read whose whole primary key is grouped.
    fn dependent_columns(&self, groups: &[Expr]) -> Vec<usize> {
        let grouped = |i: usize| groups.contains(&Expr::Column(i));
        let mut reads: Vec<u64> = self
            .cols
            .iter()
            .filter_map(|c| c.key.map(|k| k.0))
            .collect();
        reads.dedup();
        let mut out = Vec::new();
        for read in reads {
            let cols: Vec<usize> = (0..self.cols.len())
                .filter(|i| self.cols[*i].key.is_some_and(|k| k.0 == read))
                .collect();
            let pk_grouped = cols
                .iter()
                .filter(|i| self.cols[**i].key.is_some_and(|k| k.1))
                .all(|i| grouped(*i));
            if pk_grouped {
                out.extend(cols.into_iter().filter(|i| !grouped(*i)));
            }
        }
        out
    }

    fn resolve(&self, table: Option<&str>, name: &str) -> Result<(usize, DataType)> {
        let mut found = None;
        for (i, c) in self.cols.iter().enumerate() {
            let reachable = match table {
                None => !c.qualified_only,
                Some(_) => c.table.as_deref() == table,
            };
            if c.name == name && reachable {
                if found.is_some() {
                    return Err(SqlError::new(
                        code::AMBIGUOUS_COLUMN,
                        format!("column reference \"{name}\" is ambiguous"),
                    ));
                }
                found = Some((i, c.ty.clone()));
            }
        }
        found.ok_or_else(|| match table {
            Some(t) if !self.cols.iter().any(|c| c.table.as_deref() == Some(t)) => SqlError::new(
                code::UNDEFINED_TABLE,
                format!("missing FROM-clause entry for table \"{t}\""),
            ),
            Some(t) => SqlError::undefined_column(&format!("{t}.{name}")),
            None => SqlError::undefined_column(name),
        })
    }
}

/// A bound subquery: its plan, output columns and outer values.
type BoundSubquery = (Arc<SubqueryPlan>, Vec<(String, DataType)>, Vec<Expr>);

/// A query enclosing the subquery being bound: its scope, and the values
/// the subquery takes from it (`args`, read inside as [`Expr::OuterRef`]).
struct OuterFrame {
    scope: Scope,
    args: Vec<Expr>,
}

/// A recursive CTE whose recursive term is being bound.
struct WorkTableScope {
    name: String,
    id: usize,
    columns: Vec<(String, DataType)>,
    /// The subquery depth (`outer.len()`) of the recursive term: a
    /// reference from a subquery in it is an error, as in PostgreSQL.
    depth: usize,
}

/// Binds statements against fetched descriptors.
pub struct Binder<'a> {
    tables: &'a HashMap<String, Arc<TableDesc>>,
    views: HashMap<String, Arc<ViewDesc>>,
    /// Parameter types: declared by the client or inferred (Unknown: not yet).
    pub params: Vec<DataType>,
    /// Aggregates found while binding a select list (None: not allowed here).
    aggs: Option<Vec<AggCall>>,
    agg_context: &'static str,
    /// Queries enclosing the one being bound, outermost first.
    outer: Vec<OuterFrame>,
    /// CTEs in scope, in definition order (later ones shadow earlier
    /// ones), and whether each is a recursive one.
    ctes: Vec<(String, ast::Cte, bool)>,
    /// Recursive CTEs whose recursive term is being bound.
    work_tables: Vec<WorkTableScope>,
    /// Window functions found while binding a select list or its ORDER BY
    /// (None: not allowed here).
    windows: Option<Vec<WindowCall>>,
    /// The `WINDOW name AS (...)` definitions of the select being bound.
    named_windows: Vec<ast::NamedWindowDefinition>,
    /// The query about to be bound is a branch of a set operation: its
    /// untyped (NULL, string literal) columns stay untyped.
    set_op_branch: bool,
    /// The next [`Plan::WorkTable`] id.
    next_work_table: usize,
    /// The GROUP BY expressions of the query whose select list is being
    /// bound (for GROUPING()).
    grouping_groups: Vec<Expr>,
    /// Views being expanded (a view that reaches itself is an error).
    expanding: Vec<String>,
}

impl<'a> Binder<'a> {
    pub fn new(tables: &'a HashMap<String, Arc<TableDesc>>, params: Vec<DataType>) -> Self {
        Binder {
            tables,
            views: HashMap::new(),
            params,
            aggs: None,
            agg_context: "WHERE",
            grouping_groups: Vec::new(),
            outer: Vec::new(),
            ctes: Vec::new(),
            work_tables: Vec::new(),
            next_work_table: 0,
            windows: None,
            named_windows: Vec::new(),
            set_op_branch: false,
            expanding: Vec::new(),
        }
    }

    /// Views the statement may reference (expanded where they are used).
    pub fn with_views(mut self, views: HashMap<String, Arc<ViewDesc>>) -> Self {
        self.views = views;
        self
    }

    /// Resolves a column name: in `scope`, else in the enclosing queries
    /// (innermost first), which makes it an outer reference threaded
    /// through every subquery level in between.
    fn resolve_name(
        &mut self,
        scope: &Scope,
        table: Option<&str>,
        name: &str,
    ) -> Result<(Expr, DataType)> {
        let local = match scope.resolve(table, name) {
            Ok((i, ty)) => return Ok((Expr::Column(i), ty)),
            Err(e) => e,
        };
        if local.code != code::UNDEFINED_COLUMN && local.code != code::UNDEFINED_TABLE {
            return Err(local);
        }
        let n = self.outer.len();
        for level in (0..n).rev() {
            match self.outer[level].scope.resolve(table, name) {
                Ok((i, ty)) => {
                    let mut e = Expr::Column(i);
                    for frame in &mut self.outer[level..] {
                        let k = match frame.args.iter().position(|a| *a == e) {
                            Some(k) => k,
                            None => {
                                frame.args.push(e);
                                frame.args.len() - 1
                            }
                        };
                        e = Expr::OuterRef(k);
                    }
                    return Ok((e, ty));
                }
                Err(e) if e.code == code::UNDEFINED_COLUMN || e.code == code::UNDEFINED_TABLE => {}
                Err(e) => return Err(e),
            }
        }
        Err(local)
    }

    /// Binds a subquery of an expression over `scope`: returns its plan,
    /// output columns and the outer values it needs.
    fn bind_subquery(&mut self, q: &ast::Query, scope: &Scope) -> Result<BoundSubquery> {
        let saved_aggs = self.aggs.take();
        let saved_ctx = self.agg_context;
        self.outer.push(OuterFrame {
            scope: scope.clone(),
            args: Vec::new(),
        });
        let r = self.bind_query(q);
        let frame = self.outer.pop().expect("pushed above");
        self.aggs = saved_aggs;
        self.agg_context = saved_ctx;
        let bq = r?;
        let width = bq.columns.len();
        Ok((
            Arc::new(SubqueryPlan {
                plan: bq.plan,
                width,
            }),
            bq.columns,
            frame.args,
        ))
    }

    /// Parameter types after binding; unresolved ones become TEXT.
    pub fn param_types(&self) -> Vec<DataType> {
        self.params
            .iter()
            .map(|t| {
                if *t == DataType::Unknown {
                    DataType::Text
                } else {
                    t.clone()
                }
            })
            .collect()
    }

    fn table(&self, n: &ast::ObjectName) -> Result<Arc<TableDesc>> {
        let name = relation_key(n)?;
        if let Some(t) = self.tables.get(&name) {
            return Ok(t.clone());
        }
        if self.views.contains_key(&name) {
            return Err(SqlError::new(
                code::WRONG_OBJECT_TYPE,
                format!("cannot change view \"{name}\""),
            )
            .with_hint("Views are read-only."));
        }
        Err(SqlError::undefined_table(&name))
    }

    /// Binds a statement the executor runs (queries, DML, EXPLAIN of them).
    pub fn bind_statement(&mut self, stmt: &ast::Statement) -> Result<Bound> {
        match stmt {
            ast::Statement::Query(q) => {
                let lock = row_lock(q)?;
                let mut bq = self.bind_query(q)?;
                bq.lock = lock;
                Ok(Bound::Query(bq))
            }
            ast::Statement::Insert(i) => Ok(Bound::Insert(self.bind_insert(i)?)),
            ast::Statement::Update(u) => Ok(Bound::Update(self.bind_update(u)?)),
            ast::Statement::Delete(d) => Ok(Bound::Delete(self.bind_delete(d)?)),
            ast::Statement::Explain {
                statement, analyze, ..
            } => {
                let inner = Box::new(self.bind_statement(statement)?);
                if matches!(*inner, Bound::Explain(_) | Bound::ExplainAnalyze(_)) {
                    return Err(SqlError::syntax("EXPLAIN of an EXPLAIN"));
                }
                Ok(if *analyze {
                    Bound::ExplainAnalyze(inner)
                } else {
                    Bound::Explain(inner)
                })
            }
            other => Err(SqlError::unsupported(format!(
                "statement not supported: {}",
                first_words(&other.to_string())
            ))),
        }
    }

    // -- queries ------------------------------------------------------------

    pub fn bind_query(&mut self, q: &ast::Query) -> Result<BoundQuery> {
        let before = self.ctes.len();
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                let name = ident(&cte.alias.name);
                if self.ctes[before..].iter().any(|(n, _, _)| *n == name) {
                    self.ctes.truncate(before);
                    return Err(SqlError::new(
                        code::DUPLICATE_ALIAS,
                        format!("WITH query name \"{name}\" specified more than once"),
                    ));
                }
                // Under WITH RECURSIVE, a CTE that names itself recurses.
                let recursive = with.recursive && {
                    let mut names = Vec::new();
                    query_tables(&cte.query, &mut names);
                    names.contains(&name)
                };
                self.ctes.push((name, cte.clone(), recursive));
            }
        }
        let r = match q.body.as_ref() {
            ast::SetExpr::Select(s) => self.bind_select(s, Some(q)),
            other => self
                .bind_set_expr(other)
                .and_then(|bq| self.order_outputs(q, bq)),
        };
        self.ctes.truncate(before);
        r
    }

    /// A recursive CTE `name`: `anchor UNION [ALL] recursive term`, where
    /// only the recursive term names `name` (bound as the work table).
    fn bind_recursive_cte(&mut self, name: &str, cte: &ast::Cte) -> Result<BoundQuery> {
        let bad_form = || {
            SqlError::new(
                code::INVALID_RECURSION,
                format!(
                    "recursive query \"{name}\" does not have the form \
                     non-recursive-term UNION [ALL] recursive-term"
                ),
            )
        };
        let q = &cte.query;
        if q.order_by.is_some() || q.limit_clause.is_some() || q.fetch.is_some() || q.with.is_some()
        {
            return Err(SqlError::unsupported(
                "ORDER BY, LIMIT or WITH in a recursive query",
            ));
        }
        let ast::SetExpr::SetOperation {
            op: ast::SetOperator::Union,
            set_quantifier,
            left,
            right,
        } = q.body.as_ref()
        else {
            return Err(bad_form());
        };
        let all = match set_quantifier {
            ast::SetQuantifier::All => true,
            ast::SetQuantifier::Distinct | ast::SetQuantifier::None => false,
            _ => return Err(bad_form()),
        };
        let mut anchor_names = Vec::new();
        setexpr_tables(left, &mut anchor_names);
        if anchor_names.iter().any(|n| n == name) {
            return Err(SqlError::new(
                code::INVALID_RECURSION,
                format!("recursive reference to query \"{name}\" must not appear within its non-recursive term"),
            ));
        }
        let anchor = self.bind_set_expr(left)?;
        let names = rename_columns(&anchor.columns, &cte.alias.columns)?;
        let columns: Vec<(String, DataType)> = names
            .into_iter()
            .zip(anchor.columns.iter().map(|(_, t)| t.clone()))
            .collect();
        let id = self.next_work_table;
        self.next_work_table += 1;
        self.work_tables.push(WorkTableScope {
            name: name.to_string(),
            id,
            columns: columns.clone(),
            depth: self.outer.len(),
        });
        let rec = self.bind_set_expr(right);
        self.work_tables.pop();
        let rec = rec?;
        if rec.columns.len() != columns.len() {
            return Err(SqlError::syntax(
                "each UNION query must have the same number of columns",
            ));
        }
        // The recursive term's rows take the anchor's types.
        let mut exprs = Vec::new();
        for (i, ((_, want), (_, got))) in columns.iter().zip(&rec.columns).enumerate() {
            if want == got || *got == DataType::Unknown {
                exprs.push(Expr::Column(i));
            } else if common_type(want, got).is_some() {
                exprs.push(Expr::Cast(Box::new(Expr::Column(i)), want.clone()));
            } else {
                return Err(SqlError::mismatch(format!(
                    "recursive query \"{name}\" column {} has type {} in non-recursive term \
                     but type {} overall",
                    i + 1,
                    types::type_display(want),
                    types::type_display(got)
                )));
            }
        }
        let recursive = if exprs.iter().enumerate().all(|(i, e)| *e == Expr::Column(i)) {
            rec.plan
        } else {
            Plan::Project {
                input: Box::new(rec.plan),
                exprs,
            }
        };
        Ok(BoundQuery {
            plan: Plan::Recursive {
                id,
                anchor: Box::new(anchor.plan),
                recursive: Box::new(recursive),
                all,
            },
            columns,
            lock: None,
        })
    }

    /// A query body without its ORDER BY and LIMIT.
    fn bind_set_expr(&mut self, body: &ast::SetExpr) -> Result<BoundQuery> {
        match body {
            ast::SetExpr::Select(s) => self.bind_select(s, None),
            ast::SetExpr::Values(v) => self.bind_values(v),
            ast::SetExpr::Query(q) => self.bind_query(q),
            ast::SetExpr::SetOperation {
                op,
                set_quantifier,
                left,
                right,
            } => {
                let kind = match op {
                    ast::SetOperator::Union => SetOpKind::Union,
                    ast::SetOperator::Intersect => SetOpKind::Intersect,
                    ast::SetOperator::Except | ast::SetOperator::Minus => SetOpKind::Except,
                };
                let all = match set_quantifier {
                    ast::SetQuantifier::All => true,
                    ast::SetQuantifier::Distinct | ast::SetQuantifier::None => false,
                    other => return Err(SqlError::unsupported(format!("{op} {other}"))),
                };
                let keep_unknown = self.set_op_branch;
                self.set_op_branch = true;
                let l = self.bind_set_expr(left);
                self.set_op_branch = true;
                let r = self.bind_set_expr(right);
                self.set_op_branch = false;
                let (l, r) = (l?, r?);
                let name = op.to_string().to_uppercase();
                if l.columns.len() != r.columns.len() {
                    return Err(SqlError::syntax(format!(
                        "each {name} query must have the same number of columns"
                    )));
                }
                let mut columns = Vec::new();
                let mut lcast = Vec::new();
                let mut rcast = Vec::new();
                for (i, ((ln, lt), (_, rt))) in l.columns.iter().zip(&r.columns).enumerate() {
                    let ty = common_type(lt, rt).ok_or_else(|| {
                        SqlError::mismatch(format!(
                            "{name} types {} and {} cannot be matched",
                            types::type_display(lt),
                            types::type_display(rt)
                        ))
                    })?;
                    let cast = |from: &DataType| {
                        if *from == ty {
                            Expr::Column(i)
                        } else {
                            Expr::Cast(Box::new(Expr::Column(i)), ty.clone())
                        }
                    };
                    lcast.push(cast(lt));
                    rcast.push(cast(rt));
                    let ty = if keep_unknown {
                        ty
                    } else {
                        resolve_unknown(&ty)
                    };
                    columns.push((ln.clone(), ty));
                }
                let wrap = |plan: Plan, exprs: Vec<Expr>| {
                    if exprs.iter().enumerate().all(|(i, e)| *e == Expr::Column(i)) {
                        plan
                    } else {
                        Plan::Project {
                            input: Box::new(plan),
                            exprs,
                        }
                    }
                };
                Ok(BoundQuery {
                    lock: None,
                    plan: Plan::SetOp {
                        op: kind,
                        all,
                        left: Box::new(wrap(l.plan, lcast)),
                        right: Box::new(wrap(r.plan, rcast)),
                    },
                    columns,
                })
            }
            other => Err(SqlError::unsupported(format!(
                "query form not supported yet: {}",
                first_words(&other.to_string())
            ))),
        }
    }

    /// ORDER BY and LIMIT of a query whose body is not a plain SELECT
    /// (set operations, VALUES, a parenthesized query): keys are output
    /// positions or expressions over the output columns.
    fn order_outputs(&mut self, q: &ast::Query, bq: BoundQuery) -> Result<BoundQuery> {
        let mut plan = bq.plan;
        if let Some(ob) = &q.order_by {
            let ast::OrderByKind::Expressions(list) = &ob.kind else {
                return Err(SqlError::unsupported("ORDER BY ALL"));
            };
            let scope = Scope {
                cols: bq
                    .columns
                    .iter()
                    .map(|(n, ty)| ScopeCol {
                        table: None,
                        name: n.clone(),
                        ty: ty.clone(),
                        hidden: false,
                        qualified_only: false,
                        key: None,
                    })
                    .collect(),
            };
            let mut keys = Vec::new();
            for o in list {
                let desc = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
                let nulls_first = o.options.nulls_first.unwrap_or(desc);
                let expr = match &o.expr {
                    ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)) => {
                        let n: usize =
                            v.value.to_string().parse().map_err(|_| {
                                SqlError::syntax("non-integer constant in ORDER BY")
                            })?;
                        if n == 0 || n > bq.columns.len() {
                            return Err(SqlError::new(
                                code::INVALID_COLUMN_REFERENCE,
                                format!("ORDER BY position {n} is not in select list"),
                            ));
                        }
                        Expr::Column(n - 1)
                    }
                    e => self.bind_expr_no_agg(e, &scope, "ORDER BY")?.e,
                };
                keys.push(SortKey {
                    expr,
                    desc,
                    nulls_first,
                });
            }
            plan = Plan::Sort {
                input: Box::new(plan),
                keys,
            };
        }
        let plan = self.bind_limit(q, plan)?;
        Ok(BoundQuery {
            plan,
            columns: bq.columns,
            lock: None,
        })
    }

    /// One SELECT; `q` carries its ORDER BY and LIMIT (None inside a set
    /// operation).
    fn bind_select(&mut self, select: &ast::Select, q: Option<&ast::Query>) -> Result<BoundQuery> {
        // An enclosing query's window functions wait while this one binds.
        let outer_windows = self.windows.take();
        let outer_named = std::mem::replace(&mut self.named_windows, select.named_window.clone());
        let keep_unknown = std::mem::replace(&mut self.set_op_branch, false);
        let r = self.bind_select_inner(select, q);
        self.windows = outer_windows;
        self.named_windows = outer_named;
        let mut bq = r?;
        // A branch of UNION / INTERSECT / EXCEPT leaves a NULL or string
        // literal column untyped: the other branch decides (`SELECT 1
        // UNION SELECT NULL` is integer), as in PostgreSQL.
        if !keep_unknown {
            for c in &mut bq.columns {
                c.1 = resolve_unknown(&c.1);
            }
        }
        Ok(bq)
    }

    /// The window `over` names or defines, with named windows (`OVER w`,
    /// `OVER (w ORDER BY ...)`) replaced by their definitions.
    fn resolve_window(&self, over: &ast::WindowType) -> Result<ast::WindowSpec> {
        let named = |name: &ast::Ident| -> Result<ast::WindowSpec> {
            let mut name = ident(name);
            for _ in 0..=self.named_windows.len() {
                let def = self
                    .named_windows
                    .iter()
                    .find(|d| ident(&d.0) == name)
                    .ok_or_else(|| {
                        SqlError::new(
                            code::UNDEFINED_OBJECT,
                            format!("window \"{name}\" does not exist"),
                        )
                    })?;
                match &def.1 {
                    ast::NamedWindowExpr::WindowSpec(spec) => return Ok(spec.clone()),
                    ast::NamedWindowExpr::NamedWindow(other) => name = ident(other),
                }
            }
            Err(SqlError::syntax(
                "named windows refer to each other in a cycle",
            ))
        };
        let mut spec = match over {
            ast::WindowType::NamedWindow(name) => return named(name),
            ast::WindowType::WindowSpec(spec) => spec.clone(),
        };
        let mut depth = 0;
        while let Some(base_name) = spec.window_name.take() {
            depth += 1;
            if depth > self.named_windows.len() + 1 {
                return Err(SqlError::syntax(
                    "named windows refer to each other in a cycle",
                ));
            }
            let base = named(&base_name)?;
            if !spec.partition_by.is_empty() {
                return Err(SqlError::new(
                    code::WINDOWING_ERROR,
                    format!(
                        "cannot override PARTITION BY clause of window \"{}\"",
                        ident(&base_name)
                    ),
                ));
            }
            if !spec.order_by.is_empty() && !base.order_by.is_empty() {
                return Err(SqlError::new(
                    code::WINDOWING_ERROR,
                    format!(
                        "cannot override ORDER BY clause of window \"{}\"",
                        ident(&base_name)
                    ),
                ));
            }
            spec.partition_by = base.partition_by;
            if spec.order_by.is_empty() {
                spec.order_by = base.order_by;
            }
            if spec.window_frame.is_none() {
                spec.window_frame = base.window_frame;
            }
            spec.window_name = base.window_name;
        }
        Ok(spec)
    }

    /// A window function call: its result is a column the select's
    /// [`Plan::Window`] adds.
    fn bind_window(
        &mut self,
        f: &ast::Function,
        name: &str,
        args: &[ast::Expr],
        over: &ast::WindowType,
        scope: &Scope,
    ) -> Result<Typed> {
        if self.windows.is_none() {
            return Err(SqlError::new(
                code::WINDOWING_ERROR,
                "window functions are not allowed here (only in the select list and ORDER BY)",
            ));
        }
        let spec = self.resolve_window(over)?;
        // No window function inside another one.
        let calls = self.windows.take();
        let r = self.bind_window_call(f, name, args, &spec, scope);
        self.windows = calls;
        let (call, ty) = r?;
        let calls = self.windows.as_mut().expect("checked above");
        calls.push(call);
        Ok(Typed {
            e: Expr::WindowRef(calls.len() - 1),
            ty,
        })
    }

    fn bind_window_call(
        &mut self,
        f: &ast::Function,
        name: &str,
        args: &[ast::Expr],
        spec: &ast::WindowSpec,
        scope: &Scope,
    ) -> Result<(WindowCall, DataType)> {
        let partition = spec
            .partition_by
            .iter()
            .map(|e| Ok(Self::fold(self.bind_expr(e, scope)?)?.e))
            .collect::<Result<Vec<_>>>()?;
        let mut order = Vec::new();
        for o in &spec.order_by {
            let desc = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
            order.push(SortKey {
                expr: Self::fold(self.bind_expr(&o.expr, scope)?)?.e,
                desc,
                nulls_first: o.options.nulls_first.unwrap_or(desc),
            });
        }
        let frame = match &spec.window_frame {
            None => Frame::DEFAULT,
            Some(f) => self.bind_frame(f, scope)?,
        };
        let arity = |lo: usize, hi: usize| {
            if (lo..=hi).contains(&args.len()) {
                Ok(())
            } else {
                Err(SqlError::new(
                    code::UNDEFINED_FUNCTION,
                    format!("function {name} does not take {} argument(s)", args.len()),
                ))
            }
        };
        let (func, bound, ty) = match name {
            "row_number" | "rank" | "dense_rank" => {
                arity(0, 0)?;
                let func = match name {
                    "row_number" => WindowFunc::RowNumber,
                    "rank" => WindowFunc::Rank,
                    _ => WindowFunc::DenseRank,
                };
                (func, vec![], DataType::Int8)
            }
            "lag" | "lead" => {
                arity(1, 3)?;
                let value = self.bind_expr(&args[0], scope)?;
                let ty = resolve_unknown(&value.ty);
                let mut offset = match args.get(1) {
                    Some(a) => self.bind_expr(a, scope)?,
                    None => Typed {
                        e: Expr::Literal(Datum::Int(1)),
                        ty: DataType::Int8,
                    },
                };
                self.unify_with(&mut offset, &DataType::Int8);
                if !offset.ty.is_integer() {
                    return Err(SqlError::mismatch(format!(
                        "{name}'s offset must be an integer"
                    )));
                }
                let mut default = match args.get(2) {
                    Some(a) => self.bind_expr(a, scope)?,
                    None => Typed {
                        e: Expr::Literal(Datum::Null),
                        ty: ty.clone(),
                    },
                };
                self.unify_with(&mut default, &ty);
                let func = if name == "lag" {
                    WindowFunc::Lag
                } else {
                    WindowFunc::Lead
                };
                let bound = vec![
                    Self::fold(value)?.e,
                    Self::fold(offset)?.e,
                    Self::fold(default)?.e,
                ];
                (func, bound, ty)
            }
            "first_value" | "last_value" | "nth_value" => {
                let nth = name == "nth_value";
                if nth {
                    arity(2, 2)?;
                } else {
                    arity(1, 1)?;
                }
                let value = self.bind_expr(&args[0], scope)?;
                let ty = resolve_unknown(&value.ty);
                let mut bound = vec![Self::fold(value)?.e];
                if nth {
                    let mut n = self.bind_expr(&args[1], scope)?;
                    self.unify_with(&mut n, &DataType::Int8);
                    if !n.ty.is_integer() {
                        return Err(SqlError::mismatch(
                            "nth_value's position must be an integer",
                        ));
                    }
                    bound.push(Self::fold(n)?.e);
                }
                let func = match name {
                    "first_value" => WindowFunc::FirstValue,
                    "last_value" => WindowFunc::LastValue,
                    _ => WindowFunc::NthValue,
                };
                (func, bound, ty)
            }
            "ntile" => {
                arity(1, 1)?;
                let mut k = self.bind_expr(&args[0], scope)?;
                self.unify_with(&mut k, &DataType::Int8);
                if !k.ty.is_integer() {
                    return Err(SqlError::mismatch("ntile's argument must be an integer"));
                }
                (WindowFunc::Ntile, vec![Self::fold(k)?.e], DataType::Int4)
            }
            "percent_rank" | "cume_dist" => {
                arity(0, 0)?;
                let func = if name == "percent_rank" {
                    WindowFunc::PercentRank
                } else {
                    WindowFunc::CumeDist
                };
                (func, vec![], DataType::Float8)
            }
            _ => {
                // An aggregate over the window: bound as an aggregate.
                let mut plain = f.clone();
                plain.over = None;
                let outer_aggs = self.aggs.replace(Vec::new());
                let r = self.bind_function(&plain, scope);
                let found = std::mem::replace(&mut self.aggs, outer_aggs).unwrap_or_default();
                let t = r?;
                match (t.e, <[AggCall; 1]>::try_from(found)) {
                    (Expr::AggRef(0), Ok([call])) if !call.order_by.is_empty() => {
                        return Err(SqlError::unsupported(
                            "aggregate ORDER BY in a window function",
                        ));
                    }
                    (Expr::AggRef(0), Ok([call])) => {
                        (WindowFunc::Agg(Box::new(call)), vec![], t.ty)
                    }
                    _ => {
                        return Err(SqlError::new(
                            code::WRONG_OBJECT_TYPE,
                            format!("function {name} is not a window function or an aggregate"),
                        ))
                    }
                }
            }
        };
        Ok((
            WindowCall {
                func,
                args: bound,
                partition,
                order,
                frame,
            },
            ty,
        ))
    }

    /// `ROWS | RANGE [BETWEEN] start [AND end]`: ROWS takes constant
    /// offsets, RANGE only UNBOUNDED and CURRENT ROW.
    fn bind_frame(&mut self, f: &ast::WindowFrame, scope: &Scope) -> Result<Frame> {
        let rows = match f.units {
            ast::WindowFrameUnits::Rows => true,
            ast::WindowFrameUnits::Range => false,
            ast::WindowFrameUnits::Groups => {
                return Err(SqlError::unsupported("GROUPS window frames"))
            }
        };
        let mut bound = |b: &ast::WindowFrameBound| -> Result<FrameBound> {
            let offset = |binder: &mut Self, e: &ast::Expr| -> Result<u64> {
                if !rows {
                    return Err(SqlError::unsupported(
                        "RANGE frames with an offset (use ROWS, or UNBOUNDED / CURRENT ROW)",
                    ));
                }
                let t = Self::fold(binder.bind_expr_no_agg(e, scope, "window frame")?)?;
                match t.e {
                    Expr::Literal(Datum::Int(n)) if n >= 0 => Ok(n as u64),
                    Expr::Literal(Datum::Int(_)) => {
                        Err(SqlError::new("22013", "frame offset must not be negative"))
                    }
                    _ => Err(SqlError::unsupported(
                        "a window frame offset that is not a constant integer",
                    )),
                }
            };
            Ok(match b {
                ast::WindowFrameBound::CurrentRow => FrameBound::CurrentRow,
                ast::WindowFrameBound::Preceding(None) => FrameBound::UnboundedPreceding,
                ast::WindowFrameBound::Following(None) => FrameBound::UnboundedFollowing,
                ast::WindowFrameBound::Preceding(Some(e)) => {
                    FrameBound::Preceding(offset(self, e)?)
                }
                ast::WindowFrameBound::Following(Some(e)) => {
                    FrameBound::Following(offset(self, e)?)
                }
            })
        };
        let start = bound(&f.start_bound)?;
        let end = match &f.end_bound {
            Some(b) => bound(b)?,
            None => FrameBound::CurrentRow,
        };
        if start == FrameBound::UnboundedFollowing {
            return Err(SqlError::new(
                code::WINDOWING_ERROR,
                "frame start cannot be UNBOUNDED FOLLOWING",
            ));
        }
        if end == FrameBound::UnboundedPreceding {
            return Err(SqlError::new(
                code::WINDOWING_ERROR,
                "frame end cannot be UNBOUNDED PRECEDING",
            ));
        }
        Ok(Frame { rows, start, end })
    }

    fn bind_select_inner(
        &mut self,
        select: &ast::Select,
        q: Option<&ast::Query>,
    ) -> Result<BoundQuery> {
        if select.into.is_some() {
            // The session runs a SELECT INTO statement as CREATE TABLE AS.
            return Err(SqlError::unsupported(
                "SELECT ... INTO here (only as a statement of its own)",
            ));
        }
        // FROM
        let (mut plan, scope) = self.bind_from(&select.from)?;
        // WHERE
        if let Some(w) = &select.selection {
            let pred = self.bind_bool(w, &scope, "WHERE")?;
            plan = push_filter(plan, pred);
        }
        // Select list, HAVING, ORDER BY: aggregates allowed.
        let (group_exprs, grouping_sets) = match &select.group_by {
            ast::GroupByExpr::Expressions(exprs, mods) if mods.is_empty() => {
                self.bind_group_by(exprs, select, &scope)?
            }
            ast::GroupByExpr::Expressions(..) | ast::GroupByExpr::All(_) => {
                return Err(SqlError::unsupported("this GROUP BY form is not supported"))
            }
        };
        let mut group_exprs = group_exprs;
        if grouping_sets.is_empty() && !group_exprs.is_empty() {
            let groups: Vec<Expr> = group_exprs.iter().map(|g| g.e.clone()).collect();
            for c in scope.dependent_columns(&groups) {
                group_exprs.push(Typed {
                    e: Expr::Column(c),
                    ty: scope.cols[c].ty.clone(),
                });
            }
        }
        self.aggs = Some(Vec::new());
        self.agg_context = "";
        self.windows = Some(Vec::new());
        let outer_groups = std::mem::replace(
            &mut self.grouping_groups,
            group_exprs.iter().map(|g| g.e.clone()).collect(),
        );
        let mut items: Vec<(String, Typed)> = Vec::new();
        // Set-returning functions of the select list: (position, arguments).
        let mut srfs: Vec<(usize, Vec<Expr>)> = Vec::new();
        for item in &select.projection {
            if let ast::SelectItem::UnnamedExpr(e)
            | ast::SelectItem::ExprWithAlias { expr: e, .. } = item
            {
                if let ast::Expr::Function(f) = e {
                    let fname = function_name(f);
                    if matches!(
                        fname.as_str(),
                        "generate_series" | "unnest" | "generate_subscripts"
                    ) {
                        let (args, ty) = match (&f.args, fname.as_str()) {
                            (ast::FunctionArguments::List(list), "unnest") => {
                                self.bind_unnest_list(list, &scope)?
                            }
                            (ast::FunctionArguments::List(list), "generate_subscripts") => {
                                self.bind_subscripts_list(list, &scope)?
                            }
                            (_, "unnest" | "generate_subscripts") => {
                                return Err(no_function(&fname, &DataType::Unknown))
                            }
                            _ => self.bind_series_args(f, &scope)?,
                        };
                        srfs.push((items.len(), args));
                        let name = match item {
                            ast::SelectItem::ExprWithAlias { alias, .. } => ident(alias),
                            _ => fname.clone(),
                        };
                        items.push((
                            name,
                            Typed {
                                e: Expr::Literal(Datum::Null),
                                ty,
                            },
                        ));
                        continue;
                    }
                }
            }
            match item {
                ast::SelectItem::UnnamedExpr(e) => {
                    let t = self.bind_expr(e, &scope)?;
                    items.push((output_name(e), t));
                }
                ast::SelectItem::ExprWithAlias { expr, alias } => {
                    let t = self.bind_expr(expr, &scope)?;
                    items.push((ident(alias), t));
                }
                ast::SelectItem::Wildcard(_) => {
                    if scope.cols.is_empty() {
                        return Err(SqlError::syntax(
                            "SELECT * with no tables specified is not valid",
                        ));
                    }
                    for (i, c) in scope.cols.iter().enumerate() {
                        if !c.hidden && !c.qualified_only {
                            items.push((
                                c.name.clone(),
                                Typed {
                                    e: Expr::Column(i),
                                    ty: c.ty.clone(),
                                },
                            ));
                        }
                    }
                }
                ast::SelectItem::QualifiedWildcard(kind, _) => {
                    let t = match kind {
                        ast::SelectItemQualifiedWildcardKind::ObjectName(n) => {
                            crate::catalog::split_name(&table_name(n)?).1.to_string()
                        }
                        _ => return Err(SqlError::unsupported("this wildcard form")),
                    };
                    let mut any = false;
                    for (i, c) in scope.cols.iter().enumerate() {
                        if c.table.as_deref() == Some(t.as_str()) && !c.hidden {
                            any = true;
                            items.push((
                                c.name.clone(),
                                Typed {
                                    e: Expr::Column(i),
                                    ty: c.ty.clone(),
                                },
                            ));
                        }
                    }
                    if !any {
                        return Err(SqlError::new(
                            code::UNDEFINED_TABLE,
                            format!("missing FROM-clause entry for table \"{t}\""),
                        ));
                    }
                }
                other => return Err(SqlError::unsupported(format!("select item {other}"))),
            }
        }
        let windows = self.windows.take();
        let having = select
            .having
            .as_ref()
            .map(|h| self.bind_bool(h, &scope, "HAVING"))
            .transpose()?;
        self.windows = windows;
        // ORDER BY: output position, output alias, or an expression.
        let mut order: Vec<(OrderTarget, bool, bool)> = Vec::new();
        if let Some(ob) = q.and_then(|q| q.order_by.as_ref()) {
            let ast::OrderByKind::Expressions(list) = &ob.kind else {
                return Err(SqlError::unsupported("ORDER BY ALL"));
            };
            for o in list {
                let desc = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
                let nulls_first = o.options.nulls_first.unwrap_or(desc);
                let t = match &o.expr {
                    ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)) => {
                        let n: usize =
                            v.value.to_string().parse().map_err(|_| {
                                SqlError::syntax("non-integer constant in ORDER BY")
                            })?;
                        if n == 0 || n > items.len() {
                            return Err(SqlError::new(
                                code::INVALID_COLUMN_REFERENCE,
                                format!("ORDER BY position {n} is not in select list"),
                            ));
                        }
                        OrderTarget::Output(n - 1)
                    }
                    ast::Expr::Identifier(i)
                        if items.iter().any(|(name, _)| *name == ident(i))
                            && scope.resolve(None, &ident(i)).is_err() =>
                    {
                        let n = items
                            .iter()
                            .position(|(name, _)| *name == ident(i))
                            .expect("checked above");
                        OrderTarget::Output(n)
                    }
                    e => OrderTarget::Expr(self.bind_expr(e, &scope)?.e),
                };
                order.push((t, desc, nulls_first));
            }
        }
        let aggs = self.aggs.take().unwrap_or_default();
        let windows = self.windows.take().unwrap_or_default();
        self.grouping_groups = outer_groups;
        let is_agg = !aggs.is_empty() || !group_exprs.is_empty() || having.is_some();

        let ngroups = group_exprs.len();
        let groups: Vec<Expr> = group_exprs.iter().map(|g| g.e.clone()).collect();
        // Window results follow the (grouped) row.
        let width = if is_agg {
            ngroups + aggs.len()
        } else {
            scope.cols.len()
        };
        let fix = |e: Expr| -> Result<Expr> {
            let e = if is_agg {
                map_to_groups(e, &groups, ngroups, &scope)?
            } else {
                e
            };
            e.transform(&mut |x| match x {
                Expr::WindowRef(i) => Ok(Expr::Column(width + i)),
                other => Ok(other),
            })
        };
        if is_agg {
            plan = Plan::Aggregate {
                input: Box::new(plan),
                groups: groups.clone(),
                aggs,
                sets: grouping_sets,
            };
            if let Some(h) = having {
                plan = Plan::Filter {
                    input: Box::new(plan),
                    predicate: fix(h)?,
                };
            }
        }
        if !windows.is_empty() {
            plan = Plan::Window {
                input: Box::new(plan),
                calls: windows
                    .into_iter()
                    .map(|w| w.map_exprs(&mut |e| fix(e)))
                    .collect::<Result<_>>()?,
            };
        }
        let mut exprs: Vec<Expr> = Vec::new();
        let mut columns = Vec::new();
        for (name, t) in &items {
            exprs.push(fix(t.e.clone())?);
            columns.push((name.clone(), t.ty.clone()));
        }
        let visible = exprs.len();
        let mut keys = Vec::new();
        for (t, desc, nulls_first) in order {
            let pos = match t {
                OrderTarget::Output(n) => n,
                OrderTarget::Expr(e) => {
                    let e = fix(e)?;
                    match exprs.iter().position(|x| *x == e) {
                        Some(p) => p,
                        None => {
                            let distinct = matches!(select.distinct, Some(ast::Distinct::Distinct));
                            if distinct {
                                return Err(SqlError::new(
                                    code::INVALID_COLUMN_REFERENCE,
                                    "for SELECT DISTINCT, ORDER BY expressions must appear in select list",
                                ));
                            }
                            exprs.push(e);
                            exprs.len() - 1
                        }
                    }
                }
            };
            keys.push(SortKey {
                expr: Expr::Column(pos),
                desc,
                nulls_first,
            });
        }
        // DISTINCT ON keys become extra (hidden) output columns.
        let mut distinct_on = Vec::new();
        if let Some(ast::Distinct::On(list)) = &select.distinct {
            for e in list {
                let e = match e {
                    ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)) => {
                        let n: usize = v.value.to_string().parse().unwrap_or(0);
                        if n == 0 || n > visible {
                            return Err(SqlError::new(
                                code::INVALID_COLUMN_REFERENCE,
                                format!("SELECT DISTINCT ON position {n} is not in select list"),
                            ));
                        }
                        distinct_on.push(Expr::Column(n - 1));
                        continue;
                    }
                    e => fix(self.bind_expr(e, &scope)?.e)?,
                };
                let pos = match exprs.iter().position(|x| *x == e) {
                    Some(p) => p,
                    None => {
                        exprs.push(e);
                        exprs.len() - 1
                    }
                };
                distinct_on.push(Expr::Column(pos));
            }
        }
        let width = exprs.len();
        plan = if srfs.is_empty() {
            Plan::Project {
                input: Box::new(plan),
                exprs,
            }
        } else {
            let srfs = srfs
                .into_iter()
                .map(|(p, args)| Ok((p, args.into_iter().map(&fix).collect::<Result<_>>()?)))
                .collect::<Result<_>>()?;
            Plan::ProjectSet {
                input: Box::new(plan),
                exprs,
                srfs,
            }
        };
        if let Some(ast::Distinct::Distinct) = &select.distinct {
            plan = Plan::Distinct {
                input: Box::new(plan),
            }
        }
        if !keys.is_empty() {
            plan = Plan::Sort {
                input: Box::new(plan),
                keys,
            };
        }
        if !distinct_on.is_empty() {
            plan = Plan::DistinctOn {
                input: Box::new(plan),
                keys: distinct_on,
            };
        }
        if let Some(q) = q {
            plan = self.bind_limit(q, plan)?;
        }
        if width > visible {
            plan = Plan::Project {
                input: Box::new(plan),
                exprs: (0..visible).map(Expr::Column).collect(),
            };
        }
        Ok(BoundQuery {
            plan,
            columns,
            lock: None,
        })
    }

    /// The GROUP BY list: the distinct grouping expressions and, if it
    /// uses ROLLUP, CUBE or GROUPING SETS, the grouping sets (positions in
    /// the expressions): the cross product of its items' sets, a plain
    /// item being in every set.
    fn bind_group_by(
        &mut self,
        items: &[ast::Expr],
        select: &ast::Select,
        scope: &Scope,
    ) -> Result<(Vec<Typed>, Vec<Vec<usize>>)> {
        let mut exprs: Vec<Typed> = Vec::new();
        let mut position = |this: &mut Self, e: &ast::Expr| -> Result<usize> {
            let t = this.bind_group_item(e, select, scope)?;
            Ok(match exprs.iter().position(|x| x.e == t.e) {
                Some(i) => i,
                None => {
                    exprs.push(t);
                    exprs.len() - 1
                }
            })
        };
        let mut sets: Vec<Vec<usize>> = vec![Vec::new()];
        let mut any_sets = false;
        for item in items {
            let lists: &Vec<Vec<ast::Expr>> = match item {
                ast::Expr::Rollup(l) | ast::Expr::Cube(l) | ast::Expr::GroupingSets(l) => l,
                e => {
                    let i = position(self, e)?;
                    for s in &mut sets {
                        s.push(i);
                    }
                    continue;
                }
            };
            any_sets = true;
            let mut elements: Vec<Vec<usize>> = Vec::new();
            for list in lists {
                let mut el = Vec::new();
                for e in list {
                    if matches!(
                        e,
                        ast::Expr::Rollup(_) | ast::Expr::Cube(_) | ast::Expr::GroupingSets(_)
                    ) {
                        return Err(SqlError::unsupported(
                            "nested ROLLUP, CUBE or GROUPING SETS",
                        ));
                    }
                    // `()` inside GROUPING SETS: the empty set.
                    if matches!(e, ast::Expr::Tuple(t) if t.is_empty()) {
                        continue;
                    }
                    el.push(position(self, e)?);
                }
                elements.push(el);
            }
            let item_sets: Vec<Vec<usize>> = match item {
                // (a, b, c), (a, b), (a), ()
                ast::Expr::Rollup(_) => (0..=elements.len())
                    .rev()
                    .map(|n| elements[..n].concat())
                    .collect(),
                // Every subset, the largest first.
                ast::Expr::Cube(_) => {
                    if elements.len() > 12 {
                        return Err(SqlError::new(
                            code::PROGRAM_LIMIT_EXCEEDED,
                            "CUBE is limited to 12 elements",
                        ));
                    }
                    let n = elements.len();
                    let mut masks: Vec<u32> = (0..1u32 << n).collect();
                    masks.sort_by_key(|m| std::cmp::Reverse(m.count_ones()));
                    masks
                        .into_iter()
                        .map(|m| {
                            (0..n)
                                .filter(|i| m & (1 << (n - 1 - i)) != 0)
                                .flat_map(|i| elements[i].clone())
                                .collect()
                        })
                        .collect()
                }
                _ => elements,
            };
            sets = sets
                .iter()
                .flat_map(|s| {
                    item_sets.iter().map(move |t| {
                        let mut u = s.clone();
                        u.extend(t.iter().filter(|i| !s.contains(i)));
                        u
                    })
                })
                .collect();
        }
        if !any_sets {
            sets.clear();
        }
        Ok((exprs, sets))
    }

    /// Registers an aggregate of the select list being bound (once: equal
    /// calls share one result); returns its [`Expr::AggRef`] position.
    fn add_agg(&mut self, call: AggCall) -> usize {
        let aggs = self
            .aggs
            .as_mut()
            .expect("callers check that aggregates are allowed");
        match aggs.iter().position(|a| *a == call) {
            Some(i) => i,
            None => {
                aggs.push(call);
                aggs.len() - 1
            }
        }
    }

    /// The ordered-set aggregates: `percentile_cont(f)`,
    /// `percentile_disc(f)` and `mode()`, `WITHIN GROUP (ORDER BY x)`; the
    /// fraction must be a constant.
    fn bind_ordered_set(
        &mut self,
        name: &str,
        args: &[ast::Expr],
        within: &[ast::OrderByExpr],
        scope: &Scope,
    ) -> Result<Typed> {
        if self.aggs.is_none() {
            return Err(SqlError::new(
                code::GROUPING_ERROR,
                format!(
                    "aggregate functions are not allowed in {}",
                    self.agg_context
                ),
            ));
        }
        let [order] = within else {
            return Err(SqlError::new(
                code::UNDEFINED_FUNCTION,
                format!("function {name} takes one ORDER BY expression in WITHIN GROUP"),
            ));
        };
        let func = if name == "mode" {
            if !args.is_empty() {
                return Err(SqlError::new(
                    code::UNDEFINED_FUNCTION,
                    "function mode takes no direct arguments",
                ));
            }
            AggFunc::Mode
        } else {
            let [fraction] = args else {
                return Err(SqlError::new(
                    code::UNDEFINED_FUNCTION,
                    format!("function {name} takes one fraction"),
                ));
            };
            let mut t = self.bind_expr_no_agg(fraction, scope, "aggregate function calls")?;
            self.unify_with(&mut t, &DataType::Float8);
            let value = match &Self::fold(t)?.e {
                Expr::Literal(d) => types::cast(d.clone(), &DataType::Float8)?,
                _ => {
                    return Err(SqlError::unsupported(format!(
                        "{name} with a fraction that is not a constant"
                    )))
                }
            };
            let f = match value {
                Datum::Float(f) => f,
                _ => {
                    return Err(SqlError::mismatch(format!(
                        "{name} needs a numeric fraction"
                    )))
                }
            };
            if !(0.0..=1.0).contains(&f) {
                return Err(SqlError::new(
                    code::NUMERIC_VALUE_OUT_OF_RANGE,
                    format!("percentile value {f} is not between 0 and 1"),
                ));
            }
            AggFunc::Percentile {
                cont: name == "percentile_cont",
                fraction_bits: f.to_bits(),
            }
        };
        let mut x = self.bind_expr_no_agg(&order.expr, scope, "aggregate function calls")?;
        if matches!(func, AggFunc::Percentile { cont: true, .. }) {
            self.unify_with(&mut x, &DataType::Float8);
            if !x.ty.is_numeric() {
                return Err(no_function(name, &x.ty));
            }
            if x.ty != DataType::Float8 {
                x = Typed {
                    e: Expr::Cast(Box::new(x.e), DataType::Float8),
                    ty: DataType::Float8,
                };
            }
        } else if x.ty == DataType::Unknown {
            self.unify_with(&mut x, &DataType::Text);
        }
        let x = Self::fold(x)?;
        let desc = matches!(order.options.sort, Some(ast::OrderBySort::Desc));
        let call = AggCall {
            func,
            arg: Some(x.e.clone()),
            delimiter: None,
            distinct: false,
            filter: None,
            arg_ty: x.ty.clone(),
            order_by: vec![SortKey {
                expr: x.e,
                desc,
                nulls_first: order.options.nulls_first.unwrap_or(desc),
            }],
        };
        let idx = self.add_agg(call);
        Ok(Typed {
            e: Expr::AggRef(idx),
            ty: x.ty,
        })
    }

    /// `GROUPING(args)`: each argument must be one of the query's GROUP
    /// BY expressions.
    fn bind_grouping(&mut self, args: &[ast::Expr], scope: &Scope) -> Result<Typed> {
        if self.aggs.is_none() {
            return Err(SqlError::new(
                code::GROUPING_ERROR,
                format!(
                    "grouping operations are not allowed in {}",
                    self.agg_context
                ),
            ));
        }
        if args.is_empty() || args.len() > 8 {
            return Err(SqlError::new(
                code::UNDEFINED_FUNCTION,
                "GROUPING takes 1 to 8 arguments",
            ));
        }
        let mut positions = [0u8; 8];
        for (k, a) in args.iter().enumerate() {
            let t = self.bind_expr_no_agg(a, scope, "GROUPING")?;
            positions[k] = match self.grouping_groups.iter().position(|g| *g == t.e) {
                Some(p) if p < 256 => p as u8,
                _ => {
                    return Err(SqlError::new(
                        code::GROUPING_ERROR,
                        "arguments to GROUPING must be grouping expressions of the associated query level",
                    ))
                }
            };
        }
        let call = AggCall {
            func: AggFunc::Grouping {
                positions,
                len: args.len() as u8,
            },
            arg: None,
            delimiter: None,
            distinct: false,
            filter: None,
            arg_ty: DataType::Int4,
            order_by: Vec::new(),
        };
        let idx = self.add_agg(call);
        Ok(Typed {
            e: Expr::AggRef(idx),
            ty: DataType::Int4,
        })
    }

    fn bind_group_item(
        &mut self,
        e: &ast::Expr,
        select: &ast::Select,
        scope: &Scope,
    ) -> Result<Typed> {
        // GROUP BY 1 refers to the first select item.
        if let ast::Expr::Value(v) = e {
            if let ast::Value::Number(n, _) = &v.value {
                let n: usize = n
                    .parse()
                    .map_err(|_| SqlError::syntax("non-integer constant in GROUP BY"))?;
                return match select.projection.get(n.wrapping_sub(1)) {
                    Some(ast::SelectItem::UnnamedExpr(x))
                    | Some(ast::SelectItem::ExprWithAlias { expr: x, .. }) => {
                        self.bind_expr_no_agg(x, scope, "GROUP BY")
                    }
                    _ => Err(SqlError::syntax(format!(
                        "GROUP BY position {n} is not in select list"
                    ))),
                };
            }
        }
        match self.bind_expr_no_agg(e, scope, "GROUP BY") {
            // A name that is no input column may be an output column's
            // alias (input columns win, as in PostgreSQL).
            Err(err) if err.code == code::UNDEFINED_COLUMN => {
                let ast::Expr::Identifier(name) = e else {
                    return Err(err);
                };
                let name = ident(name);
                let aliased = select.projection.iter().find_map(|item| match item {
                    ast::SelectItem::ExprWithAlias { expr, alias } if ident(alias) == name => {
                        Some(expr)
                    }
                    _ => None,
                });
                match aliased {
                    Some(x) => self.bind_expr_no_agg(x, scope, "GROUP BY"),
                    None => Err(err),
                }
            }
            r => r,
        }
    }

    fn bind_limit(&mut self, q: &ast::Query, plan: Plan) -> Result<Plan> {
        // `FETCH FIRST [n] ROWS ONLY` is the standard's LIMIT n (1 when
        // no count is given).
        let one = ast::Expr::value(ast::Value::Number("1".into(), false));
        let fetched = match &q.fetch {
            None => None,
            Some(f) if f.with_ties || f.percent => {
                return Err(SqlError::unsupported("FETCH ... WITH TIES or PERCENT"))
            }
            Some(f) => Some(f.quantity.as_ref().unwrap_or(&one)),
        };
        let no_limit = ast::LimitClause::LimitOffset {
            limit: None,
            offset: None,
            limit_by: Vec::new(),
        };
        let lc = match (&q.limit_clause, fetched) {
            (None, None) => return Ok(plan),
            (Some(ast::LimitClause::LimitOffset { limit: Some(_), .. }), Some(_)) => {
                return Err(SqlError::syntax("multiple LIMIT clauses not allowed"))
            }
            (Some(lc), _) => lc,
            (None, Some(_)) => &no_limit,
        };
        let (limit, offset) = match lc {
            ast::LimitClause::LimitOffset {
                limit,
                offset,
                limit_by,
            } => {
                if !limit_by.is_empty() {
                    return Err(SqlError::unsupported("LIMIT BY"));
                }
                (
                    limit.as_ref().or(fetched),
                    offset.as_ref().map(|o| &o.value),
                )
            }
            ast::LimitClause::OffsetCommaLimit { .. } => {
                return Err(SqlError::syntax("LIMIT #,# syntax is not supported"))
            }
        };
        let empty = Scope::default();
        let mut bind_int = |e: &ast::Expr, what: &'static str| -> Result<Option<Expr>> {
            if matches!(e, ast::Expr::Value(v) if v.value == ast::Value::Null) {
                return Ok(None);
            }
            let mut t = self.bind_expr_no_agg(e, &empty, what)?;
            self.unify_with(&mut t, &DataType::Int8);
            if t.ty.is_numeric() && !t.ty.is_integer() {
                // Numbers are cast to bigint (rounding), as PostgreSQL does.
                t = Self::fold(Typed {
                    e: Expr::Cast(Box::new(t.e), DataType::Int8),
                    ty: DataType::Int8,
                })?;
            }
            if !t.ty.is_integer() {
                return Err(SqlError::mismatch(format!(
                    "argument of {what} must be type bigint, not type {}",
                    types::type_display(&t.ty)
                )));
            }
            Ok(Some(t.e))
        };
        let limit = match limit {
            Some(l) => bind_int(l, "LIMIT")?,
            None => None,
        };
        let offset = match offset {
            Some(o) => bind_int(o, "OFFSET")?,
            None => None,
        };
        Ok(Plan::Limit {
            input: Box::new(plan),
            limit,
            offset,
        })
    }

    fn bind_values(&mut self, v: &ast::Values) -> Result<BoundQuery> {
        let empty = Scope::default();
        let mut cells: Vec<Vec<Typed>> = Vec::new();
        let mut types: Vec<DataType> = Vec::new();
        for r in &v.rows {
            let mut row = Vec::new();
            for (i, e) in r.content.iter().enumerate() {
                let t = self.bind_expr_no_agg(e, &empty, "VALUES")?;
                if types.len() <= i {
                    types.push(t.ty.clone());
                } else if let Some(c) = common_type(&types[i], &t.ty) {
                    types[i] = c;
                } else {
                    return Err(SqlError::mismatch(format!(
                        "VALUES types {} and {} cannot be matched",
                        types::type_display(&types[i]),
                        types::type_display(&t.ty)
                    )));
                }
                row.push(t);
            }
            if !cells.is_empty() && row.len() != types.len() {
                return Err(SqlError::syntax("VALUES lists must all be the same length"));
            }
            cells.push(row);
        }
        let mut rows = Vec::new();
        for row in cells {
            let mut out = Vec::new();
            for (i, mut t) in row.into_iter().enumerate() {
                self.unify_with(&mut t, &types[i]);
                let e = if t.ty != types[i] && types[i] != DataType::Unknown {
                    Expr::Cast(Box::new(t.e), types[i].clone())
                } else {
                    t.e
                };
                out.push(
                    Self::fold(Typed {
                        e,
                        ty: types[i].clone(),
                    })?
                    .e,
                );
            }
            rows.push(out);
        }
        let columns = types
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("column{}", i + 1), resolve_unknown(t)))
            .collect();
        Ok(BoundQuery {
            plan: Plan::Values { rows },
            columns,
            lock: None,
        })
    }

    fn bind_table_factor(&mut self, f: &ast::TableFactor) -> Result<(Plan, Scope)> {
        match f {
            ast::TableFactor::Table {
                name, alias, args, ..
            } => {
                if let Some(args) = args {
                    return self.bind_table_function(name, args, alias.as_ref());
                }
                let rel = relation_key(name)?;
                if name.0.len() == 1 {
                    if let Some(w) = self.work_tables.iter().rev().find(|w| w.name == rel) {
                        let (id, columns, depth) = (w.id, w.columns.clone(), w.depth);
                        if depth != self.outer.len() {
                            return Err(SqlError::new(
                                code::INVALID_RECURSION,
                                format!(
                                    "recursive reference to query \"{rel}\" must not appear \
                                     within a subquery"
                                ),
                            ));
                        }
                        let names = columns.iter().map(|(n, _)| n.clone()).collect();
                        let q = BoundQuery {
                            plan: Plan::WorkTable { id },
                            columns,
                            lock: None,
                        };
                        return derived(q, names, &rel, alias.as_ref());
                    }
                    if let Some(pos) = self.ctes.iter().rposition(|(n, _, _)| *n == rel) {
                        let (_, cte, recursive) = self.ctes[pos].clone();
                        // A CTE sees only the CTEs defined before it (and
                        // a recursive one itself).
                        let hidden = self.ctes.split_off(pos + usize::from(recursive));
                        let r = if recursive {
                            self.bind_recursive_cte(&rel, &cte)
                        } else {
                            self.bind_query(&cte.query)
                        };
                        self.ctes.extend(hidden);
                        let q = r?;
                        let names = rename_columns(&q.columns, &cte.alias.columns)?;
                        return derived(q, names, &rel, alias.as_ref());
                    }
                }
                if let Some(view) = self.views.get(&rel).cloned() {
                    if self.expanding.contains(&rel) {
                        return Err(SqlError::new(
                            code::INVALID_OBJECT_DEFINITION,
                            format!("infinite recursion detected in rules for relation \"{rel}\""),
                        ));
                    }
                    let query = parse_query(&view.query)?;
                    // A view is bound on its own: no outer columns or CTEs.
                    let outer = std::mem::take(&mut self.outer);
                    let ctes = std::mem::take(&mut self.ctes);
                    let aggs = self.aggs.take();
                    self.expanding.push(rel.clone());
                    let r = self.bind_query(&query);
                    self.expanding.pop();
                    self.outer = outer;
                    self.ctes = ctes;
                    self.aggs = aggs;
                    let q = r?;
                    let names = view.columns.clone();
                    if names.len() != q.columns.len() {
                        return Err(SqlError::new(
                            code::INVALID_OBJECT_DEFINITION,
                            format!("view \"{rel}\" changed shape; recreate it"),
                        ));
                    }
                    // `information_schema.tables` is `tables` in the query.
                    let scope_name = crate::catalog::split_name(&rel).1;
                    return derived(q, names, scope_name, alias.as_ref());
                }
                let t = self.table(name)?;
                let alias_name = match alias {
                    Some(a) => ident(&a.name),
                    None => crate::catalog::split_name(&t.name).1.to_string(),
                };
                let mut scope = Scope::of_table(&t, &alias_name);
                if let Some(a) = alias {
                    for (i, c) in a.columns.iter().enumerate() {
                        if let Some(sc) = scope.cols.iter_mut().filter(|c| !c.hidden).nth(i) {
                            sc.name = ident(&c.name);
                        }
                    }
                }
                Ok((
                    Plan::Scan {
                        table: t,
                        range: KeyRange::Full,
                        filter: None,
                    },
                    scope,
                ))
            }
            ast::TableFactor::Derived {
                subquery, alias, ..
            } => {
                let q = self.bind_query(subquery)?;
                let alias_name = alias.as_ref().map(|a| ident(&a.name));
                let scope = Scope {
                    cols: q
                        .columns
                        .iter()
                        .enumerate()
                        .map(|(i, (n, ty))| ScopeCol {
                            table: alias_name.clone(),
                            name: alias
                                .as_ref()
                                .and_then(|a| a.columns.get(i))
                                .map(|c| ident(&c.name))
                                .unwrap_or_else(|| n.clone()),
                            ty: ty.clone(),
                            hidden: false,
                            qualified_only: false,
                            key: None,
                        })
                        .collect(),
                };
                Ok((q.plan, scope))
            }
            ast::TableFactor::Function {
                name, args, alias, ..
            } => {
                let args = ast::TableFunctionArgs {
                    args: args.clone(),
                    settings: None,
                };
                self.bind_table_function(name, &args, alias.as_ref())
            }
            ast::TableFactor::NestedJoin {
                table_with_joins, ..
            } => self.bind_table_with_joins(table_with_joins),
            ast::TableFactor::UNNEST {
                alias,
                array_exprs,
                with_offset: false,
                with_ordinality: false,
                ..
            } => {
                let args = ast::TableFunctionArgs {
                    args: array_exprs
                        .iter()
                        .map(|e| ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e.clone())))
                        .collect(),
                    settings: None,
                };
                let name = ast::ObjectName::from(vec![ast::Ident::new("unnest")]);
                self.bind_table_function(&name, &args, alias.as_ref())
            }
            other => Err(SqlError::unsupported(format!("FROM item {other}"))),
        }
    }

    /// `LATERAL (subquery) [alias]` joined to `left`: the subquery is
    /// bound as a correlated subquery of the left side's scope.
    fn bind_lateral(
        &mut self,
        left: Plan,
        left_scope: &Scope,
        factor: &ast::TableFactor,
        outer: bool,
        on: Option<&ast::Expr>,
    ) -> Result<(Plan, Scope)> {
        let ast::TableFactor::Derived {
            subquery, alias, ..
        } = factor
        else {
            return Err(SqlError::internal("LATERAL without a subquery"));
        };
        let (sub, columns, args) = self.bind_subquery(subquery, left_scope)?;
        let alias_name = alias.as_ref().map(|a| ident(&a.name));
        let mut scope = left_scope.clone();
        let right_width = columns.len();
        scope
            .cols
            .extend(columns.iter().enumerate().map(|(i, (n, ty))| {
                ScopeCol {
                    table: alias_name.clone(),
                    name: alias
                        .as_ref()
                        .and_then(|a| a.columns.get(i))
                        .map(|c| ident(&c.name))
                        .unwrap_or_else(|| n.clone()),
                    ty: ty.clone(),
                    hidden: false,
                    qualified_only: false,
                    key: None,
                }
            }));
        let on = on.map(|e| self.bind_bool(e, &scope, "JOIN")).transpose()?;
        Ok((
            Plan::Lateral {
                left: Box::new(left),
                sub,
                args,
                on,
                outer,
                right_width,
            },
            scope,
        ))
    }

    /// The FROM list: its items cross-joined (no FROM: one empty row).
    fn bind_from(&mut self, from: &[ast::TableWithJoins]) -> Result<(Plan, Scope)> {
        if from.is_empty() {
            return Ok((Plan::Values { rows: vec![vec![]] }, Scope::default()));
        }
        let mut acc: Option<(Plan, Scope)> = None;
        for t in from {
            let as_lateral = function_as_lateral(&t.relation)?;
            let relation = as_lateral.as_ref().unwrap_or(&t.relation);
            if let (Some((lp, ls)), ast::TableFactor::Derived { lateral: true, .. }) =
                (&acc, relation)
            {
                if t.joins.is_empty() {
                    let joined = self.bind_lateral(lp.clone(), ls, relation, false, None)?;
                    acc = Some(joined);
                    continue;
                }
            }
            let (p, s) = self.bind_table_with_joins(t)?;
            acc = Some(match acc {
                None => (p, s),
                Some((lp, mut ls)) => {
                    let left_width = ls.cols.len();
                    let right_width = s.cols.len();
                    ls.cols.extend(s.cols);
                    (
                        Plan::Join {
                            left: Box::new(lp),
                            right: Box::new(p),
                            kind: JoinKind::Inner,
                            left_keys: vec![],
                            right_keys: vec![],
                            on: None,
                            left_width,
                            right_width,
                        },
                        ls,
                    )
                }
            });
        }
        Ok(acc.expect("FROM is not empty"))
    }

    /// A function in FROM: `generate_series(start, stop [, step])`.
    fn bind_table_function(
        &mut self,
        name: &ast::ObjectName,
        args: &ast::TableFunctionArgs,
        alias: Option<&ast::TableAlias>,
    ) -> Result<(Plan, Scope)> {
        let fname = table_name(name)?;
        if fname != "generate_series" && fname != "unnest" {
            return Err(SqlError::new(
                code::UNDEFINED_FUNCTION,
                format!("function {fname} does not exist"),
            ));
        }
        let list = ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: args.args.clone(),
            clauses: vec![],
        };
        let alias_name = alias.map(|a| ident(&a.name)).unwrap_or(fname.clone());
        if fname == "unnest" && list.args.len() > 1 {
            // unnest(a, b, ...): a column per array.
            let mut exprs = Vec::new();
            let mut cols = Vec::new();
            for (i, a) in list.args.iter().enumerate() {
                let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) = a else {
                    return Err(SqlError::unsupported(format!("argument {a}")));
                };
                let mut t = self.bind_expr_no_agg(e, &Scope::default(), "FROM")?;
                if t.ty == DataType::Unknown {
                    self.unify_with(&mut t, &DataType::Array(Box::new(DataType::Text)));
                }
                let DataType::Array(elem) = t.ty.clone() else {
                    return Err(no_function("unnest", &t.ty));
                };
                exprs.push(Self::fold(t)?.e);
                cols.push(ScopeCol {
                    table: Some(alias_name.clone()),
                    name: alias
                        .and_then(|a| a.columns.get(i))
                        .map(|c| ident(&c.name))
                        .unwrap_or_else(|| "unnest".into()),
                    ty: *elem,
                    hidden: false,
                    qualified_only: false,
                    key: None,
                });
            }
            return Ok((Plan::Unnest { args: exprs }, Scope { cols }));
        }
        let (args, ty) = if fname == "unnest" {
            self.bind_unnest_list(&list, &Scope::default())?
        } else {
            self.bind_series_list(&list, &Scope::default())?
        };
        let col = alias
            .and_then(|a| a.columns.first())
            .map(|c| ident(&c.name))
            .unwrap_or(if alias.is_some() {
                alias_name.clone()
            } else {
                fname
            });
        Ok((
            Plan::Series { args },
            Scope {
                cols: vec![ScopeCol {
                    table: Some(alias_name),
                    name: col,
                    ty,
                    hidden: false,
                    qualified_only: false,
                    key: None,
                }],
            },
        ))
    }

    /// The argument of `unnest(array)` and the type of its elements.
    fn bind_unnest_list(
        &mut self,
        list: &ast::FunctionArgumentList,
        scope: &Scope,
    ) -> Result<(Vec<Expr>, DataType)> {
        let [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e))] = list.args.as_slice()
        else {
            return Err(SqlError::unsupported(
                "unnest takes one array (unnest of several arrays is not supported)",
            ));
        };
        let a = self.bind_expr_no_agg(e, scope, "FROM")?;
        let DataType::Array(elem) = a.ty.clone() else {
            return Err(no_function("unnest", &a.ty));
        };
        Ok((vec![Self::fold(a)?.e], *elem))
    }

    /// `generate_subscripts(array, dim)`: the series 1..cardinality of a
    /// one-dimensional array (nothing for another dimension).
    fn bind_subscripts_list(
        &mut self,
        list: &ast::FunctionArgumentList,
        scope: &Scope,
    ) -> Result<(Vec<Expr>, DataType)> {
        let [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(a)), ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(d))] =
            list.args.as_slice()
        else {
            return Err(no_function("generate_subscripts", &DataType::Unknown));
        };
        let a = self.bind_expr_no_agg(a, scope, "FROM")?;
        if !matches!(a.ty, DataType::Array(_)) {
            return Err(no_function("generate_subscripts", &a.ty));
        }
        let mut d = self.bind_expr_no_agg(d, scope, "FROM")?;
        self.unify_with(&mut d, &DataType::Int4);
        if !d.ty.is_integer() {
            return Err(no_function("generate_subscripts", &d.ty));
        }
        let cardinality = Expr::Func(
            Func::Lib(LibFn::Array(ArrayFn::Cardinality)),
            vec![Self::fold(a)?.e],
        );
        let upper = Expr::Case {
            operand: None,
            whens: vec![(
                Expr::binary(BinOp::Eq, Self::fold(d)?.e, Expr::Literal(Datum::Int(1))),
                cardinality,
            )],
            otherwise: Some(Box::new(Expr::Literal(Datum::Int(0)))),
        };
        Ok((vec![Expr::Literal(Datum::Int(1)), upper], DataType::Int4))
    }

    /// The arguments of generate_series and the type of its values.
    fn bind_series_args(
        &mut self,
        f: &ast::Function,
        scope: &Scope,
    ) -> Result<(Vec<Expr>, DataType)> {
        let ast::FunctionArguments::List(list) = &f.args else {
            return Err(no_function("generate_series", &DataType::Unknown));
        };
        self.bind_series_list(list, scope)
    }

    fn bind_series_list(
        &mut self,
        list: &ast::FunctionArgumentList,
        scope: &Scope,
    ) -> Result<(Vec<Expr>, DataType)> {
        let mut bound = Vec::new();
        for a in &list.args {
            let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) = a else {
                return Err(SqlError::unsupported(format!("argument {a}")));
            };
            bound.push(self.bind_expr_no_agg(e, scope, "FROM")?);
        }
        if bound.len() < 2 || bound.len() > 3 {
            let sig: Vec<String> = bound.iter().map(|b| types::type_display(&b.ty)).collect();
            return Err(SqlError::new(
                code::UNDEFINED_FUNCTION,
                format!(
                    "function generate_series({}) does not exist",
                    sig.join(", ")
                ),
            ));
        }
        // generate_series(timestamp[tz], timestamp[tz], interval); dates
        // count as timestamptz, as PostgreSQL resolves them.
        let datetime = |t: &DataType| {
            matches!(
                t,
                DataType::Timestamp | DataType::TimestampTz | DataType::Date
            )
        };
        if bound.len() == 3
            && bound[..2].iter().any(|b| datetime(&b.ty))
            && bound[..2]
                .iter()
                .all(|b| datetime(&b.ty) || b.ty == DataType::Unknown)
            && matches!(bound[2].ty, DataType::Interval | DataType::Unknown)
        {
            let ty = if bound[..2]
                .iter()
                .any(|b| matches!(b.ty, DataType::TimestampTz | DataType::Date))
            {
                DataType::TimestampTz
            } else {
                DataType::Timestamp
            };
            let mut args = Vec::new();
            for (i, mut b) in bound.into_iter().enumerate() {
                let want = if i == 2 {
                    DataType::Interval
                } else {
                    ty.clone()
                };
                self.unify_with(&mut b, &want);
                let e = if b.ty != want {
                    Expr::Cast(Box::new(b.e), want.clone())
                } else {
                    b.e
                };
                args.push(Self::fold(Typed { e, ty: want })?.e);
            }
            return Ok((args, ty));
        }
        let mut ty = DataType::Int4;
        for b in &bound {
            ty = match common_type(&ty, &b.ty) {
                Some(t) if t.is_integer() || matches!(t, DataType::Numeric(_)) => t,
                _ => {
                    let sig: Vec<String> =
                        bound.iter().map(|b| types::type_display(&b.ty)).collect();
                    return Err(SqlError::new(
                        code::UNDEFINED_FUNCTION,
                        format!(
                            "function generate_series({}) does not exist",
                            sig.join(", ")
                        ),
                    ));
                }
            };
        }
        let mut args = Vec::new();
        for mut b in bound {
            self.unify_with(&mut b, &ty);
            let e = if b.ty != ty {
                Expr::Cast(Box::new(b.e), ty.clone())
            } else {
                b.e
            };
            args.push(Self::fold(Typed { e, ty: ty.clone() })?.e);
        }
        Ok((args, ty))
    }

    fn bind_table_with_joins(&mut self, t: &ast::TableWithJoins) -> Result<(Plan, Scope)> {
        let (mut plan, mut scope) = self.bind_table_factor(&t.relation)?;
        for j in &t.joins {
            let as_lateral = function_as_lateral(&j.relation)?;
            let relation = as_lateral.as_ref().unwrap_or(&j.relation);
            if matches!(relation, ast::TableFactor::Derived { lateral: true, .. }) {
                let (outer, on) = match &j.join_operator {
                    ast::JoinOperator::Join(c) | ast::JoinOperator::Inner(c) => (false, Some(c)),
                    ast::JoinOperator::Left(c) | ast::JoinOperator::LeftOuter(c) => (true, Some(c)),
                    ast::JoinOperator::CrossJoin(_) => (false, None),
                    _ => {
                        return Err(SqlError::new(
                            code::INVALID_COLUMN_REFERENCE,
                            "the combining JOIN type must be INNER or LEFT for a LATERAL reference",
                        ))
                    }
                };
                let on = match on {
                    None | Some(ast::JoinConstraint::None) => None,
                    Some(ast::JoinConstraint::On(e)) => Some(e),
                    Some(_) => return Err(SqlError::unsupported("USING or NATURAL with LATERAL")),
                };
                (plan, scope) = self.bind_lateral(plan, &scope, relation, outer, on)?;
                continue;
            }
            let (rplan, rscope) = self.bind_table_factor(&j.relation)?;
            let (kind, constraint) = match &j.join_operator {
                ast::JoinOperator::Join(c) | ast::JoinOperator::Inner(c) => {
                    (JoinKind::Inner, Some(c))
                }
                ast::JoinOperator::Left(c) | ast::JoinOperator::LeftOuter(c) => {
                    (JoinKind::Left, Some(c))
                }
                ast::JoinOperator::Right(c) | ast::JoinOperator::RightOuter(c) => {
                    (JoinKind::Right, Some(c))
                }
                ast::JoinOperator::FullOuter(c) => (JoinKind::Full, Some(c)),
                ast::JoinOperator::CrossJoin(_) => (JoinKind::Inner, None),
                _ => return Err(SqlError::unsupported("this join type is not supported")),
            };
            let left_width = scope.cols.len();
            let right_width = rscope.cols.len();
            let mut joined = scope.clone();
            joined.cols.extend(rscope.cols.clone());
            // USING (a, b) and NATURAL (the visible names both sides
            // have) join on equal columns and merge each pair into one.
            let using: Vec<String> = match constraint {
                Some(ast::JoinConstraint::Using(cols)) => {
                    cols.iter().map(table_name).collect::<Result<_>>()?
                }
                Some(ast::JoinConstraint::Natural) => scope
                    .cols
                    .iter()
                    .filter(|c| !c.hidden && !c.qualified_only)
                    .filter(|c| {
                        rscope
                            .cols
                            .iter()
                            .any(|r| !r.hidden && !r.qualified_only && r.name == c.name)
                    })
                    .map(|c| c.name.clone())
                    .collect(),
                _ => Vec::new(),
            };
            let mut merged: Vec<(String, usize, usize, DataType)> = Vec::new();
            let on = match constraint {
                None | Some(ast::JoinConstraint::None) => None,
                Some(ast::JoinConstraint::On(e)) => Some(self.bind_bool(e, &joined, "JOIN")?),
                Some(ast::JoinConstraint::Using(_)) | Some(ast::JoinConstraint::Natural) => {
                    let mut pred: Option<Expr> = None;
                    for name in &using {
                        if merged.iter().any(|(n, ..)| n == name) {
                            return Err(SqlError::new(
                                code::DUPLICATE_COLUMN,
                                format!("column \"{name}\" appears more than once in USING clause"),
                            ));
                        }
                        let (l, lty) = scope.resolve(None, name).map_err(|_| {
                            SqlError::new(
                                code::UNDEFINED_COLUMN,
                                format!("column \"{name}\" specified in USING clause does not exist in left table"),
                            )
                        })?;
                        let (r, rty) = rscope.resolve(None, name).map_err(|_| {
                            SqlError::new(
                                code::UNDEFINED_COLUMN,
                                format!("column \"{name}\" specified in USING clause does not exist in right table"),
                            )
                        })?;
                        let eq =
                            Expr::binary(BinOp::Eq, Expr::Column(l), Expr::Column(left_width + r));
                        pred = Some(match pred {
                            None => eq,
                            Some(p) => Expr::binary(BinOp::And, p, eq),
                        });
                        let ty = common_type(&lty, &rty).unwrap_or(lty);
                        merged.push((name.clone(), l, left_width + r, ty));
                    }
                    pred
                }
                Some(_) => return Err(SqlError::unsupported("JOIN ... USING (...) AS alias")),
            };
            // Split equalities between the two sides into hash keys.
            let mut left_keys = Vec::new();
            let mut right_keys = Vec::new();
            let mut rest = Vec::new();
            for c in on.map(conjuncts).unwrap_or_default() {
                if let Expr::Binary(BinOp::Eq, a, b) = &c {
                    let side = |e: &Expr| -> Option<bool> {
                        let mut lo = true;
                        let mut ro = true;
                        let mut any = false;
                        e.visit_columns(&mut |i| {
                            any = true;
                            if i < left_width {
                                ro = false
                            } else {
                                lo = false
                            }
                        });
                        if !any {
                            None
                        } else if lo {
                            Some(true)
                        } else if ro {
                            Some(false)
                        } else {
                            None
                        }
                    };
                    match (side(a), side(b)) {
                        (Some(true), Some(false)) => {
                            left_keys.push((**a).clone());
                            right_keys.push(shift_columns((**b).clone(), left_width));
                            continue;
                        }
                        (Some(false), Some(true)) => {
                            left_keys.push((**b).clone());
                            right_keys.push(shift_columns((**a).clone(), left_width));
                            continue;
                        }
                        _ => {}
                    }
                }
                rest.push(c);
            }
            plan = Plan::Join {
                left: Box::new(plan),
                right: Box::new(rplan),
                kind,
                left_keys,
                right_keys,
                on: and_all(rest),
                left_width,
                right_width,
            };
            if merged.is_empty() {
                scope = joined;
                continue;
            }
            // The merged columns come first (as PostgreSQL shows them), then
            // both sides' columns, the merged ones reachable by qualified
            // name only.
            let mut exprs = Vec::new();
            let mut cols = Vec::new();
            for (name, l, r, ty) in &merged {
                let side = |i: usize| Expr::Column(i);
                exprs.push(match kind {
                    JoinKind::Right => side(*r),
                    JoinKind::Full => Expr::Func(Func::Coalesce, vec![side(*l), side(*r)]),
                    _ => side(*l),
                });
                cols.push(ScopeCol {
                    table: None,
                    name: name.clone(),
                    ty: ty.clone(),
                    hidden: false,
                    qualified_only: false,
                    key: None,
                });
                joined.cols[*l].qualified_only = true;
                joined.cols[*r].qualified_only = true;
            }
            exprs.extend((0..joined.cols.len()).map(Expr::Column));
            cols.extend(joined.cols);
            plan = Plan::Project {
                input: Box::new(plan),
                exprs,
            };
            scope = Scope { cols };
        }
        Ok((plan, scope))
    }

    // -- DML ----------------------------------------------------------------

    /// Binds RETURNING over the rows of `table`, named `alias` in the
    /// statement.
    fn bind_returning(
        &mut self,
        items: &Option<Vec<ast::SelectItem>>,
        table: &Arc<TableDesc>,
        alias: &str,
    ) -> Result<Option<Returning>> {
        let Some(items) = items else {
            return Ok(None);
        };
        let scope = Scope::of_table(table, alias);
        let mut exprs = Vec::new();
        let mut columns = Vec::new();
        for item in items {
            let all_columns = match item {
                ast::SelectItem::Wildcard(_) => true,
                ast::SelectItem::QualifiedWildcard(
                    ast::SelectItemQualifiedWildcardKind::ObjectName(n),
                    _,
                ) => {
                    let t = table_name(n)?;
                    if crate::catalog::split_name(&t).1 != alias {
                        return Err(SqlError::new(
                            code::UNDEFINED_TABLE,
                            format!("missing FROM-clause entry for table \"{t}\""),
                        ));
                    }
                    true
                }
                _ => false,
            };
            match item {
                _ if all_columns => {
                    for (i, c) in table.columns.iter().enumerate() {
                        if !c.hidden {
                            exprs.push(Expr::Column(i));
                            columns.push((c.name.clone(), c.ty.clone()));
                        }
                    }
                }
                ast::SelectItem::UnnamedExpr(e) => {
                    let t = self.bind_expr_no_agg(e, &scope, "RETURNING")?;
                    exprs.push(t.e);
                    columns.push((output_name(e), resolve_unknown(&t.ty)));
                }
                ast::SelectItem::ExprWithAlias { expr, alias } => {
                    let t = self.bind_expr_no_agg(expr, &scope, "RETURNING")?;
                    exprs.push(t.e);
                    columns.push((ident(alias), resolve_unknown(&t.ty)));
                }
                other => return Err(SqlError::unsupported(format!("RETURNING {other}"))),
            }
        }
        Ok(Some(Returning { exprs, columns }))
    }

    /// Binds `SET col = expr, ...` and `SET (a, b) = (expr, expr)` or
    /// `= (SELECT ...)` (UPDATE, ON CONFLICT DO UPDATE) against `table`,
    /// expressions resolved in `scope`.
    fn bind_assignments(
        &mut self,
        assignments: &[ast::Assignment],
        table: &TableDesc,
        scope: &Scope,
    ) -> Result<Vec<(usize, Expr)>> {
        let mut sets: Vec<(usize, Expr)> = Vec::new();
        let column = |c: &ast::ObjectName| -> Result<usize> {
            let n =
                c.0.last()
                    .and_then(|p| p.as_ident())
                    .map(ident)
                    .ok_or_else(|| SqlError::syntax("bad column name"))?;
            table.column_index(&n).ok_or_else(|| {
                SqlError::new(
                    code::UNDEFINED_COLUMN,
                    format!(
                        "column \"{n}\" of relation \"{}\" does not exist",
                        table.name
                    ),
                )
            })
        };
        for a in assignments {
            let targets: Vec<usize> = match &a.target {
                ast::AssignmentTarget::ColumnName(c) => vec![column(c)?],
                ast::AssignmentTarget::Tuple(cols) => {
                    cols.iter().map(&column).collect::<Result<_>>()?
                }
            };
            for p in &targets {
                if table.columns[*p].identity == crate::catalog::Identity::Always {
                    return Err(SqlError::new(
                        code::GENERATED_ALWAYS,
                        format!(
                            "column \"{}\" can only be updated to DEFAULT",
                            table.columns[*p].name
                        ),
                    ));
                }
                if sets.iter().any(|(q, _)| q == p)
                    || targets.iter().filter(|q| *q == p).count() > 1
                {
                    return Err(SqlError::syntax(format!(
                        "multiple assignments to same column \"{}\"",
                        table.columns[*p].name
                    )));
                }
            }
            let ast::AssignmentTarget::Tuple(_) = &a.target else {
                let e = self.bind_assignment(&a.value, table, targets[0], scope)?;
                sets.push((targets[0], e));
                continue;
            };
            match &a.value {
                ast::Expr::Tuple(values) => {
                    if values.len() != targets.len() {
                        return Err(SqlError::syntax(
                            "number of columns does not match number of values",
                        ));
                    }
                    for (p, v) in targets.iter().zip(values) {
                        let e = self.bind_assignment(v, table, *p, scope)?;
                        sets.push((*p, e));
                    }
                }
                ast::Expr::Subquery(q) => {
                    let (plan, cols, args) = self.bind_subquery(q, scope)?;
                    if cols.len() != targets.len() {
                        return Err(SqlError::syntax(
                            "number of columns does not match number of values",
                        ));
                    }
                    for (i, p) in targets.iter().enumerate() {
                        let col = &table.columns[*p];
                        check_assignable(&cols[i].1, &col.ty, &col.name)?;
                        sets.push((
                            *p,
                            Expr::Subquery {
                                kind: SubqueryKind::Scalar(i),
                                lhs: None,
                                plan: plan.clone(),
                                args: args.clone(),
                            },
                        ));
                    }
                }
                _ => {
                    return Err(SqlError::syntax(
                        "source for a multiple-column UPDATE item must be a sub-SELECT or ROW() expression",
                    ))
                }
            }
        }
        Ok(sets)
    }

    /// The new value of column `p` (DEFAULT is its default).
    fn bind_assignment(
        &mut self,
        value: &ast::Expr,
        table: &TableDesc,
        p: usize,
        scope: &Scope,
    ) -> Result<Expr> {
        let col = &table.columns[p];
        if is_default_keyword(value) {
            return match &col.default {
                Some(d) => self.bind_default(d, &col.ty),
                None => Ok(Expr::Literal(Datum::Null)),
            };
        }
        let mut t = self.bind_expr_no_agg(value, scope, "UPDATE")?;
        self.unify_with(&mut t, &col.ty);
        check_assignable(&t.ty, &col.ty, &col.name)?;
        Ok(t.e)
    }

    fn bind_insert(&mut self, i: &ast::Insert) -> Result<InsertPlan> {
        let ast::TableObject::TableName(name) = &i.table else {
            return Err(SqlError::unsupported("INSERT into a table function"));
        };
        let table = self.table(name)?;
        // Without a column list, PostgreSQL fills the first N columns, N
        // being the width of what is inserted; the rest get their defaults.
        let implicit_columns = i.columns.is_empty();
        let mut targets: Vec<usize> = if i.columns.is_empty() {
            table
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| !c.hidden)
                .map(|(p, _)| p)
                .collect()
        } else {
            let mut seen = Vec::new();
            for c in &i.columns {
                let n = table_name(c)?;
                let p = table.column_index(&n).ok_or_else(|| {
                    SqlError::new(
                        code::UNDEFINED_COLUMN,
                        format!(
                            "column \"{n}\" of relation \"{}\" does not exist",
                            table.name
                        ),
                    )
                })?;
                if seen.contains(&p) {
                    return Err(SqlError::new(
                        code::DUPLICATE_COLUMN,
                        format!("column \"{n}\" specified more than once"),
                    ));
                }
                seen.push(p);
            }
            seen
        };
        let source = match i.source.as_deref().map(|src| (src, src.body.as_ref())) {
            // INSERT ... DEFAULT VALUES: one row, every column its default.
            None => {
                targets.clear();
                InsertSource::Values(vec![Vec::new()])
            }
            Some((src, ast::SetExpr::Values(v)))
                if src.order_by.is_none() && src.limit_clause.is_none() && src.fetch.is_none() =>
            {
                let empty = Scope::default();
                let mut rows = Vec::new();
                if let Some(first) = v.rows.first() {
                    if v.rows
                        .iter()
                        .any(|r| r.content.len() != first.content.len())
                    {
                        return Err(SqlError::syntax("VALUES lists must all be the same length"));
                    }
                    if implicit_columns && first.content.len() < targets.len() {
                        targets.truncate(first.content.len());
                    }
                }
                for r in &v.rows {
                    if r.content.len() > targets.len() {
                        return Err(SqlError::syntax(
                            "INSERT has more expressions than target columns",
                        ));
                    }
                    if r.content.len() < targets.len() {
                        return Err(SqlError::syntax(
                            "INSERT has more target columns than expressions",
                        ));
                    }
                    let mut row = Vec::new();
                    for (k, e) in r.content.iter().enumerate() {
                        let col = &table.columns[targets[k]];
                        if is_default_keyword(e) {
                            row.push(None);
                            continue;
                        }
                        let mut t = self.bind_expr_no_agg(e, &empty, "VALUES")?;
                        self.unify_with(&mut t, &col.ty);
                        check_assignable(&t.ty, &col.ty, &col.name)?;
                        row.push(Some(t.e));
                    }
                    rows.push(row);
                }
                InsertSource::Values(rows)
            }
            Some((src, _)) => {
                let q = self.bind_query(src)?;
                if implicit_columns && q.columns.len() < targets.len() {
                    targets.truncate(q.columns.len());
                }
                if q.columns.len() != targets.len() {
                    return Err(SqlError::syntax(if q.columns.len() > targets.len() {
                        "INSERT has more expressions than target columns"
                    } else {
                        "INSERT has more target columns than expressions"
                    }));
                }
                let untyped = untyped_outputs(src);
                for (k, (_, ty)) in q.columns.iter().enumerate() {
                    let col = &table.columns[targets[k]];
                    if !untyped.get(k).copied().unwrap_or(false) {
                        check_assignable(ty, &col.ty, &col.name)?;
                    }
                }
                InsertSource::Query(Box::new(q.plan))
            }
        };
        let alias = i
            .table_alias
            .as_ref()
            .map(|a| ident(&a.alias))
            .unwrap_or_else(|| crate::catalog::split_name(&table.name).1.to_string());
        let returning = self.bind_returning(&i.returning, &table, &alias)?;
        let (on_conflict, arbiters) = match &i.on {
            None => (None, Vec::new()),
            Some(on) => {
                let (oc, arbiters) = self.bind_on_conflict(on, &table, i.table_alias.as_ref())?;
                (Some(oc), arbiters)
            }
        };
        Ok(InsertPlan {
            table,
            targets,
            source,
            returning,
            on_conflict,
            arbiters,
        })
    }

    fn bind_on_conflict(
        &mut self,
        on: &ast::OnInsert,
        table: &Arc<TableDesc>,
        alias: Option<&ast::TableAliasWithoutColumns>,
    ) -> Result<(OnConflict, Vec<Arbiter>)> {
        let ast::OnInsert::OnConflict(oc) = on else {
            return Err(SqlError::unsupported("ON DUPLICATE KEY UPDATE"));
        };
        let no_match = || {
            SqlError::new(
                code::INVALID_COLUMN_REFERENCE,
                "there is no unique or exclusion constraint matching the ON CONFLICT specification",
            )
        };
        let unique_indexes = || table.indexes.iter().enumerate().filter(|(_, i)| i.unique);
        let arbiters = match &oc.conflict_target {
            // Any unique constraint.
            None => {
                if matches!(oc.action, ast::OnConflictAction::DoUpdate(_)) {
                    return Err(SqlError::syntax(
                        "ON CONFLICT DO UPDATE requires inference specification or constraint name",
                    ));
                }
                let mut all = vec![Arbiter::PrimaryKey];
                all.extend(unique_indexes().map(|(n, _)| Arbiter::Unique(n)));
                all
            }
            Some(ast::ConflictTarget::Columns { columns, predicate }) => {
                if predicate.is_some() {
                    return Err(no_match());
                }
                let mut cols = Vec::new();
                for c in columns {
                    let n = ident(c);
                    let p = table.column_index(&n).ok_or_else(|| {
                        SqlError::new(
                            code::UNDEFINED_COLUMN,
                            format!("column \"{n}\" does not exist"),
                        )
                    })?;
                    cols.push(p);
                }
                cols.sort_unstable();
                cols.dedup();
                let sorted = |c: &[usize]| {
                    let mut c = c.to_vec();
                    c.sort_unstable();
                    c
                };
                if cols == sorted(&table.primary_key) {
                    vec![Arbiter::PrimaryKey]
                } else {
                    let (n, _) = unique_indexes()
                        .find(|(_, i)| sorted(&i.columns) == cols)
                        .ok_or_else(no_match)?;
                    vec![Arbiter::Unique(n)]
                }
            }
            Some(ast::ConflictTarget::OnConstraint(n)) => {
                let name = table_name(n)?;
                if name == table.pkey_name() {
                    vec![Arbiter::PrimaryKey]
                } else {
                    let (n, _) =
                        unique_indexes()
                            .find(|(_, i)| i.name == name)
                            .ok_or_else(|| {
                                SqlError::new(
                                    code::UNDEFINED_OBJECT,
                                    format!(
                                        "constraint \"{name}\" for table \"{}\" does not exist",
                                        table.name
                                    ),
                                )
                            })?;
                    vec![Arbiter::Unique(n)]
                }
            }
        };
        let ast::OnConflictAction::DoUpdate(du) = &oc.action else {
            return Ok((OnConflict::DoNothing, arbiters));
        };
        let alias = alias
            .map(|a| ident(&a.alias))
            .unwrap_or_else(|| crate::catalog::split_name(&table.name).1.to_string());
        let mut scope = Scope::of_table(table, &alias);
        scope.cols.extend(Scope::of_table(table, "excluded").cols);
        let sets = self.bind_assignments(&du.assignments, table, &scope)?;
        let filter = du
            .selection
            .as_ref()
            .map(|w| self.bind_bool(w, &scope, "WHERE"))
            .transpose()?;
        Ok((OnConflict::DoUpdate { sets, filter }, arbiters))
    }

    fn bind_update(&mut self, u: &ast::Update) -> Result<UpdatePlan> {
        if !u.table.joins.is_empty() {
            return Err(SqlError::unsupported("UPDATE of a join"));
        }
        let ast::TableFactor::Table { name, alias, .. } = &u.table.relation else {
            return Err(SqlError::unsupported("UPDATE of this relation"));
        };
        let rel = relation_key(name)?;
        if self.views.contains_key(&rel) {
            return Err(SqlError::new(
                code::WRONG_OBJECT_TYPE,
                format!("cannot update view \"{rel}\""),
            ));
        }
        let table = self.table(name)?;
        let alias = alias
            .as_ref()
            .map(|a| ident(&a.name))
            .unwrap_or_else(|| crate::catalog::split_name(&table.name).1.to_string());
        let mut scope = Scope::of_table(&table, &alias);
        let from_items = match &u.from {
            Some(
                ast::UpdateTableFromKind::AfterSet(f) | ast::UpdateTableFromKind::BeforeSet(f),
            ) => f.as_slice(),
            None => &[],
        };
        let from = if from_items.is_empty() {
            None
        } else {
            let (plan, fscope) = self.bind_from(from_items)?;
            if fscope
                .cols
                .iter()
                .any(|c| c.table.as_deref() == Some(alias.as_str()))
            {
                return Err(SqlError::new(
                    code::DUPLICATE_ALIAS,
                    format!("table name \"{alias}\" specified more than once"),
                ));
            }
            scope.cols.extend(fscope.cols);
            Some(Box::new(finalize_ranges(plan)))
        };
        let sets = self.bind_assignments(&u.assignments, &table, &scope)?;
        let (filter, range) = self.bind_row_filter(u.selection.as_ref(), &table, &scope)?;
        let returning = self.bind_returning(&u.returning, &table, &alias)?;
        Ok(UpdatePlan {
            table,
            range,
            filter,
            sets,
            returning,
            from,
        })
    }

    /// Binds the WHERE of an UPDATE or DELETE and picks the key range it
    /// allows scanning.
    fn bind_row_filter(
        &mut self,
        selection: Option<&ast::Expr>,
        table: &TableDesc,
        scope: &Scope,
    ) -> Result<(Option<Expr>, KeyRange)> {
        let filter = selection
            .map(|w| self.bind_bool(w, scope, "WHERE"))
            .transpose()?;
        let range = filter
            .as_ref()
            .map(|f| choose_range(table, f))
            .unwrap_or(KeyRange::Full);
        Ok((filter, range))
    }

    fn bind_delete(&mut self, d: &ast::Delete) -> Result<DeletePlan> {
        let from = match &d.from {
            ast::FromTable::WithFromKeyword(f) | ast::FromTable::WithoutKeyword(f) => f,
        };
        if from.len() != 1 || !from[0].joins.is_empty() {
            return Err(SqlError::unsupported("DELETE from several tables"));
        }
        let ast::TableFactor::Table { name, alias, .. } = &from[0].relation else {
            return Err(SqlError::unsupported("DELETE from this relation"));
        };
        let table = self.table(name)?;
        let alias = alias
            .as_ref()
            .map(|a| ident(&a.name))
            .unwrap_or_else(|| crate::catalog::split_name(&table.name).1.to_string());
        let scope = Scope::of_table(&table, &alias);
        // DELETE ... USING others WHERE cond deletes the rows for which
        // some combination of the others' rows satisfies cond: the rows
        // where EXISTS (SELECT 1 FROM others WHERE cond).
        let selection = match &d.using {
            None => d.selection.clone(),
            Some(using) => {
                let others: Vec<String> = using.iter().map(ToString::to_string).collect();
                let cond = d
                    .selection
                    .as_ref()
                    .map(|w| format!(" WHERE {w}"))
                    .unwrap_or_default();
                Some(parse_expr(&format!(
                    "EXISTS (SELECT 1 FROM {}{cond})",
                    others.join(", ")
                ))?)
            }
        };
        let (filter, range) = self.bind_row_filter(selection.as_ref(), &table, &scope)?;
        let returning = self.bind_returning(&d.returning, &table, &alias)?;
        Ok(DeletePlan {
            table,
            range,
            filter,
            returning,
        })
    }

    /// Binds a column's DEFAULT expression (stored as SQL text).
    /// A CHECK constraint of `table`: a boolean expression over its
    /// columns (no subqueries, no aggregates).
    pub fn bind_check(&mut self, table: &TableDesc, sql: &str) -> Result<Expr> {
        let e = parse_expr(sql)?;
        let scope = Scope::of_table(table, &table.name);
        let bound = self.bind_bool(&e, &scope, "CHECK")?;
        let mut subquery = false;
        bound.walk(&mut |x| subquery |= matches!(x, Expr::Subquery { .. }));
        if subquery {
            return Err(SqlError::unsupported(
                "cannot use subquery in check constraint",
            ));
        }
        Ok(bound)
    }

    pub fn bind_default(&mut self, sql: &str, ty: &DataType) -> Result<Expr> {
        let e = parse_expr(sql)?;
        let mut t = self.bind_expr_no_agg(&e, &Scope::default(), "DEFAULT")?;
        self.unify_with(&mut t, ty);
        check_assignable(&t.ty, ty, "default")?;
        Ok(t.e)
    }

    // -- expressions --------------------------------------------------------

    fn bind_bool(&mut self, e: &ast::Expr, scope: &Scope, what: &'static str) -> Result<Expr> {
        let mut t = if what == "HAVING" {
            self.bind_expr(e, scope)?
        } else {
            self.bind_expr_no_agg(e, scope, what)?
        };
        self.unify_with(&mut t, &DataType::Bool);
        if t.ty != DataType::Bool && t.ty != DataType::Unknown {
            return Err(SqlError::mismatch(format!(
                "argument of {what} must be type boolean, not type {}",
                types::type_display(&t.ty)
            )));
        }
        Ok(t.e)
    }

    fn bind_expr_no_agg(
        &mut self,
        e: &ast::Expr,
        scope: &Scope,
        what: &'static str,
    ) -> Result<Typed> {
        let saved = self.aggs.take();
        let saved_windows = self.windows.take();
        let saved_ctx = self.agg_context;
        self.agg_context = what;
        let r = self.bind_expr(e, scope);
        self.aggs = saved;
        self.windows = saved_windows;
        self.agg_context = saved_ctx;
        r
    }

    /// If `t` is an untyped parameter or literal, gives it type `ty`.
    fn unify_with(&mut self, t: &mut Typed, ty: &DataType) {
        if t.ty != DataType::Unknown || *ty == DataType::Unknown {
            return;
        }
        match &t.e {
            Expr::Param(i) => {
                if let Some(p) = self.params.get_mut(*i) {
                    *p = ty.clone();
                }
                t.ty = ty.clone();
            }
            Expr::Literal(Datum::Text(_)) | Expr::Literal(Datum::Null) => {
                t.e = Expr::Cast(Box::new(t.e.clone()), ty.clone());
                t.ty = ty.clone();
            }
            _ => {}
        }
    }

    /// Folds casts of literals at bind time, so bad input fails early
    /// with 22P02 and span values are plain literals.
    fn fold(t: Typed) -> Result<Typed> {
        if let Expr::Cast(inner, ty) = &t.e {
            if let Expr::Literal(d) = inner.as_ref() {
                return Ok(Typed {
                    e: Expr::Literal(types::cast(d.clone(), ty)?),
                    ty: t.ty,
                });
            }
        }
        Ok(t)
    }

    /// Binds an expression. The recursive cases that nest deeply (AND/OR
    /// chains, parentheses) go through small functions, so a deeply
    /// nested predicate does not exhaust the stack of a debug build.
    fn bind_expr(&mut self, e: &ast::Expr, scope: &Scope) -> Result<Typed> {
        match e {
            ast::Expr::Nested(inner) => self.bind_expr(inner, scope),
            // Text compares byte-wise, which is the C collation.
            ast::Expr::Collate { expr, collation } => {
                let name = collation.to_string();
                let name = name.trim_matches('"');
                if !["C", "POSIX", "default", "ucs_basic"].contains(&name) {
                    return Err(SqlError::new(
                        code::UNDEFINED_OBJECT,
                        format!("collation \"{name}\" for encoding \"UTF8\" does not exist"),
                    ));
                }
                self.bind_expr(expr, scope)
            }
            ast::Expr::BinaryOp { left, op, right } => {
                if let (ast::Expr::Tuple(l), ast::Expr::Tuple(r)) = (left.as_ref(), right.as_ref())
                {
                    let expanded = row_comparison(l, op, r)?;
                    return self.bind_expr(&expanded, scope);
                }
                self.bind_binary_op(left, op, right, scope)
            }
            ast::Expr::In {
                expr,
                target: ast::InTarget::List(list),
                negated,
                ..
            } if matches!(expr.as_ref(), ast::Expr::Tuple(_)) => {
                let ast::Expr::Tuple(l) = expr.as_ref() else {
                    unreachable!("matched above")
                };
                let mut any: Option<ast::Expr> = None;
                for item in list {
                    let ast::Expr::Tuple(r) = item else {
                        return Err(SqlError::syntax(
                            "IN: each item must be a row like the left side",
                        ));
                    };
                    let eq = row_comparison(l, &ast::BinaryOperator::Eq, r)?;
                    any = Some(match any {
                        None => eq,
                        Some(a) => or_expr(a, eq),
                    });
                }
                let any = any.ok_or_else(|| SqlError::syntax("IN needs at least one item"))?;
                let e = if *negated {
                    ast::Expr::UnaryOp {
                        op: ast::UnaryOperator::Not,
                        expr: Box::new(ast::Expr::Nested(Box::new(any))),
                    }
                } else {
                    any
                };
                self.bind_expr(&e, scope)
            }
            other => self.bind_expr_other(other, scope),
        }
    }

    /// `x LIKE / ILIKE / ~ / ~* p` and their negations: both sides text.
    fn bind_pattern(
        &mut self,
        expr: &ast::Expr,
        pattern: &ast::Expr,
        negated: bool,
        how: PatternOp,
        op_name: &str,
        scope: &Scope,
    ) -> Result<Typed> {
        let x = self.bind_expr(expr, scope)?;
        let p = self.bind_expr(pattern, scope)?;
        self.pattern_match(x, p, negated, how, op_name)
    }

    /// `x <op> p` over bound operands: both sides text.
    fn pattern_match(
        &mut self,
        mut x: Typed,
        mut p: Typed,
        negated: bool,
        how: PatternOp,
        op_name: &str,
    ) -> Result<Typed> {
        self.unify_with(&mut x, &DataType::Text);
        self.unify_with(&mut p, &DataType::Text);
        if !x.ty.is_string() || !p.ty.is_string() {
            return Err(SqlError::new(
                code::UNDEFINED_FUNCTION,
                format!(
                    "operator does not exist: {} {op_name} {}",
                    types::type_display(&x.ty),
                    types::type_display(&p.ty)
                ),
            ));
        }
        Ok(Typed {
            e: Expr::Like(Box::new(x.e), Box::new(p.e), negated, how),
            ty: DataType::Bool,
        })
    }

    #[inline(never)]
    fn bind_binary_op(
        &mut self,
        left: &ast::Expr,
        op: &ast::BinaryOperator,
        right: &ast::Expr,
        scope: &Scope,
    ) -> Result<Typed> {
        let regex = match op {
            ast::BinaryOperator::PGRegexMatch => Some((false, PatternOp::Regex)),
            ast::BinaryOperator::PGRegexNotMatch => Some((true, PatternOp::Regex)),
            ast::BinaryOperator::PGRegexIMatch => Some((false, PatternOp::IRegex)),
            ast::BinaryOperator::PGRegexNotIMatch => Some((true, PatternOp::IRegex)),
            _ => None,
        };
        if let Some((negated, how)) = regex {
            return self.bind_pattern(left, right, negated, how, &op.to_string(), scope);
        }
        let json = match op {
            ast::BinaryOperator::Arrow => Some("->"),
            ast::BinaryOperator::LongArrow => Some("->>"),
            ast::BinaryOperator::AtArrow => Some("@>"),
            ast::BinaryOperator::ArrowAt => Some("<@"),
            ast::BinaryOperator::Question => Some("?"),
            ast::BinaryOperator::HashArrow => Some("#>"),
            ast::BinaryOperator::HashLongArrow => Some("#>>"),
            // PostgreSQL's `^` is exponentiation (`#` is XOR).
            ast::BinaryOperator::PGExp | ast::BinaryOperator::BitwiseXor => Some("power"),
            _ => None,
        };
        if let Some(name) = json {
            let l = self.bind_expr(left, scope)?;
            let r = self.bind_expr(right, scope)?;
            return self.bind_library_call(name, vec![l, r]);
        }
        if matches!(op, ast::BinaryOperator::PGOverlap) {
            let l = self.bind_expr(left, scope)?;
            let r = self.bind_expr(right, scope)?;
            return self.bind_library_call("&&", vec![l, r]);
        }
        if matches!(op, ast::BinaryOperator::StringConcat) {
            let l = self.bind_expr(left, scope)?;
            let r = self.bind_expr(right, scope)?;
            let name = match (&l.ty, &r.ty) {
                (DataType::Array(_), DataType::Array(_) | DataType::Unknown)
                | (DataType::Unknown, DataType::Array(_)) => Some("array_cat"),
                (DataType::Array(_), _) => Some("array_append"),
                (_, DataType::Array(_)) => Some("array_prepend"),
                _ => None,
            };
            if let Some(name) = name {
                return self.bind_library_call(name, vec![l, r]);
            }
            return self.bind_binary(BinOp::Concat, l, r);
        }
        let op = match op {
            ast::BinaryOperator::Plus => BinOp::Add,
            ast::BinaryOperator::Minus => BinOp::Sub,
            ast::BinaryOperator::Multiply => BinOp::Mul,
            ast::BinaryOperator::Divide => BinOp::Div,
            ast::BinaryOperator::Modulo => BinOp::Mod,
            ast::BinaryOperator::StringConcat => BinOp::Concat,
            ast::BinaryOperator::Eq => BinOp::Eq,
            ast::BinaryOperator::NotEq => BinOp::NotEq,
            ast::BinaryOperator::Lt => BinOp::Lt,
            ast::BinaryOperator::LtEq => BinOp::LtEq,
            ast::BinaryOperator::Gt => BinOp::Gt,
            ast::BinaryOperator::GtEq => BinOp::GtEq,
            ast::BinaryOperator::And => BinOp::And,
            ast::BinaryOperator::Or => BinOp::Or,
            other => return Err(SqlError::unsupported(format!("operator {other}"))),
        };
        let l = self.bind_expr(left, scope)?;
        let r = self.bind_expr(right, scope)?;
        self.bind_binary(op, l, r)
    }

    #[inline(never)]
    fn bind_expr_other(&mut self, e: &ast::Expr, scope: &Scope) -> Result<Typed> {
        use ast::Expr as A;
        let t = match e {
            A::AtTimeZone {
                timestamp,
                time_zone,
            } => {
                let zone = self.bind_expr(time_zone, scope)?;
                let ts = self.bind_expr(timestamp, scope)?;
                return self.bind_library_call("timezone", vec![zone, ts]);
            }
            A::Identifier(i) => match self.resolve_name(scope, None, &ident(i)) {
                Ok((e, ty)) => Typed { e, ty },
                // `current_schema` is also written without parentheses.
                Err(_) if i.quote_style.is_none() && ident(i) == "current_schema" => Typed {
                    e: Expr::Func(Func::CurrentSchema, vec![]),
                    ty: DataType::Text,
                },
                Err(e) => return Err(e),
            },
            A::CompoundIdentifier(parts) => {
                let names: Vec<String> = parts.iter().map(ident).collect();
                let (t, c) = match names.as_slice() {
                    [t, c] => (t.clone(), c.clone()),
                    [_, t, c] | [_, _, t, c] => (t.clone(), c.clone()),
                    _ => return Err(SqlError::syntax(format!("improper qualified name: {e}"))),
                };
                let (e, ty) = self.resolve_name(scope, Some(&t), &c)?;
                Typed { e, ty }
            }
            A::Value(v) => self.bind_value(&v.value)?,
            A::UnaryOp { op, expr } => {
                let mut t = self.bind_expr(expr, scope)?;
                match op {
                    ast::UnaryOperator::Not => {
                        self.unify_with(&mut t, &DataType::Bool);
                        expect_bool(&t, "NOT")?;
                        Typed {
                            e: Expr::Not(Box::new(t.e)),
                            ty: DataType::Bool,
                        }
                    }
                    ast::UnaryOperator::Minus => {
                        // Fold negative literals (so -9223372036854775808 parses).
                        if let Expr::Literal(d) = &t.e {
                            let v = crate::expr::binary(BinOp::Sub, Datum::Int(0), d.clone());
                            if let (Ok(v), Datum::Int(_) | Datum::Float(_) | Datum::Decimal(_)) =
                                (v, d)
                            {
                                return Ok(Typed {
                                    e: Expr::Literal(v),
                                    ty: t.ty,
                                });
                            }
                        }
                        if !t.ty.is_numeric()
                            && !matches!(t.ty, DataType::Unknown | DataType::Interval)
                        {
                            return Err(SqlError::new(
                                code::UNDEFINED_FUNCTION,
                                format!(
                                    "operator does not exist: - {}",
                                    types::type_display(&t.ty)
                                ),
                            ));
                        }
                        Typed {
                            e: Expr::Neg(Box::new(t.e)),
                            ty: t.ty,
                        }
                    }
                    ast::UnaryOperator::Plus => t,
                    ast::UnaryOperator::PGSquareRoot => {
                        return self.bind_library_call("sqrt", vec![t])
                    }
                    ast::UnaryOperator::PGCubeRoot => {
                        return self.bind_library_call("cbrt", vec![t])
                    }
                    ast::UnaryOperator::PGAbs => {
                        let mut t = t;
                        self.unify_with(&mut t, &DataType::Float8);
                        if !t.ty.is_numeric() {
                            return Err(SqlError::new(
                                code::UNDEFINED_FUNCTION,
                                format!(
                                    "operator does not exist: @ {}",
                                    types::type_display(&t.ty)
                                ),
                            ));
                        }
                        Typed {
                            e: Expr::Func(Func::Abs, vec![t.e]),
                            ty: t.ty,
                        }
                    }
                    other => return Err(SqlError::unsupported(format!("operator {other}"))),
                }
            }
            A::Nested(_) | A::BinaryOp { .. } => {
                return Err(SqlError::internal("bound by bind_expr"))
            }
            A::IsNull(x) | A::IsNotNull(x) => {
                let t = self.bind_expr(x, scope)?;
                Typed {
                    e: Expr::IsNull(Box::new(t.e), matches!(e, A::IsNotNull(_))),
                    ty: DataType::Bool,
                }
            }
            A::IsTrue(x) | A::IsNotTrue(x) | A::IsFalse(x) | A::IsNotFalse(x) => {
                let mut t = self.bind_expr(x, scope)?;
                self.unify_with(&mut t, &DataType::Bool);
                expect_bool(&t, "IS TRUE")?;
                let value = matches!(e, A::IsTrue(_) | A::IsNotTrue(_));
                let negated = matches!(e, A::IsNotTrue(_) | A::IsNotFalse(_));
                Typed {
                    e: Expr::IsBool(Box::new(t.e), value, negated),
                    ty: DataType::Bool,
                }
            }
            A::IsDistinctFrom(a, b) | A::IsNotDistinctFrom(a, b) => {
                let l = self.bind_expr(a, scope)?;
                let r = self.bind_expr(b, scope)?;
                let op = if matches!(e, A::IsDistinctFrom(..)) {
                    BinOp::IsDistinctFrom
                } else {
                    BinOp::IsNotDistinctFrom
                };
                self.bind_binary(op, l, r)?
            }
            A::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let x = self.bind_expr(expr, scope)?;
                let lo = self.bind_expr(low, scope)?;
                let hi = self.bind_expr(high, scope)?;
                let a = self.bind_binary(BinOp::GtEq, x.clone(), lo)?;
                let b = self.bind_binary(BinOp::LtEq, x, hi)?;
                let both = Expr::binary(BinOp::And, a.e, b.e);
                Typed {
                    e: if *negated {
                        Expr::Not(Box::new(both))
                    } else {
                        both
                    },
                    ty: DataType::Bool,
                }
            }
            A::In {
                expr,
                target: ast::InTarget::List(list),
                negated,
                ..
            } => {
                let x = self.bind_expr(expr, scope)?;
                let mut items = Vec::new();
                for item in list {
                    let mut t = self.bind_expr(item, scope)?;
                    self.unify_with(&mut t, &x.ty);
                    check_comparable(&x.ty, &t.ty, BinOp::Eq)?;
                    items.push(Self::fold(t)?.e);
                }
                Typed {
                    e: Expr::InList(Box::new(x.e), items, *negated),
                    ty: DataType::Bool,
                }
            }
            A::Like {
                negated,
                expr,
                pattern,
                escape_char: None,
                any: false,
            }
            | A::ILike {
                negated,
                expr,
                pattern,
                escape_char: None,
                any: false,
            } => {
                let how = match e {
                    A::ILike { .. } => PatternOp::ILike,
                    _ => PatternOp::Like,
                };
                self.bind_pattern(expr, pattern, *negated, how, "~~", scope)?
            }
            A::Like {
                negated,
                expr,
                pattern,
                escape_char: Some(esc),
                any: false,
            }
            | A::ILike {
                negated,
                expr,
                pattern,
                escape_char: Some(esc),
                any: false,
            } => {
                let how = match e {
                    A::ILike { .. } => PatternOp::ILike,
                    _ => PatternOp::Like,
                };
                let (Some(p), Some(esc)) = (string_literal(pattern), string_literal(esc)) else {
                    return Err(SqlError::unsupported(
                        "LIKE ... ESCAPE with a pattern or escape that is not a string literal",
                    ));
                };
                let pattern = ast::Expr::value(ast::Value::SingleQuotedString(
                    like_pattern_with_escape(&p, &esc)?,
                ));
                self.bind_pattern(expr, &pattern, *negated, how, "~~", scope)?
            }
            A::SimilarTo {
                negated,
                expr,
                pattern,
                escape_char,
            } => {
                // As PostgreSQL: `x ~ similar_to_escape(pattern [, escape])`.
                let x = self.bind_expr(expr, scope)?;
                let mut args = vec![self.bind_expr(pattern, scope)?];
                if let Some(esc) = escape_char {
                    args.push(self.bind_expr(esc, scope)?);
                }
                let regex = self.bind_library_call("similar_to_escape", args)?;
                self.pattern_match(x, regex, *negated, PatternOp::Regex, "~")?
            }
            A::Cast {
                expr, data_type, ..
            } if is_regclass(data_type)
                || matches!(expr.as_ref(), ast::Expr::Cast { data_type: inner, .. } if is_regclass(inner)) =>
            {
                self.bind_regclass(expr, data_type, scope)?
            }
            // `oid::regtype::text`: the type's name.
            A::Cast {
                expr, data_type, ..
            } if matches!(expr.as_ref(), ast::Expr::Cast { data_type: inner, .. }
                    if inner.to_string().eq_ignore_ascii_case("regtype"))
                && data_type_cast(data_type).is_ok_and(|(t, _)| t.is_string()) =>
            {
                let ast::Expr::Cast { expr: oid, .. } = expr.as_ref() else {
                    unreachable!("matched above")
                };
                let mut oid = self.bind_expr(oid, scope)?;
                self.unify_with(&mut oid, &DataType::Int8);
                Typed {
                    e: Expr::Func(
                        Func::Lib(LibFn::FormatType),
                        vec![Self::fold(oid)?.e, Expr::Literal(Datum::Int(-1))],
                    ),
                    ty: DataType::Text,
                }
            }
            A::Cast {
                expr, data_type, ..
            } => {
                let (ty, _) = data_type_cast(data_type)?;
                let mut t = self.bind_expr(expr, scope)?;
                if let Expr::Param(_) = t.e {
                    self.unify_with(&mut t, &ty);
                }
                // An array of such values prints its elements the same way.
                if let (DataType::Array(elem), true) = (
                    &t.ty,
                    ty.is_string() || matches!(&ty, DataType::Array(e) if e.is_string()),
                ) {
                    let kind = crate::array::ElemKind::of(elem);
                    if kind != crate::array::ElemKind::Plain {
                        t = Typed {
                            e: Expr::Func(
                                Func::Lib(LibFn::Array(ArrayFn::AsText(kind))),
                                vec![t.e],
                            ),
                            ty: DataType::Array(Box::new(DataType::Text)),
                        };
                    }
                }
                // Types whose values do not say how they print: their text
                // form is made with the type known here.
                let text_of = match t.ty {
                    DataType::Uuid => Some(crate::functions::LibFn::UuidText),
                    DataType::TimestampTz => Some(crate::functions::LibFn::TimestampTzText),
                    _ => None,
                };
                if let (Some(f), true) = (text_of, ty.is_string()) {
                    t = Typed {
                        e: Expr::Func(Func::Lib(f), vec![t.e]),
                        ty: DataType::Text,
                    };
                }
                if matches!(ty, DataType::Text | DataType::Varchar(_)) {
                    t = char_as_text(t);
                }
                let cast = Self::fold(Typed {
                    e: Expr::Cast(Box::new(t.e), ty.clone()),
                    ty: ty.clone(),
                })?;
                // An explicit cast to a length cuts the string to it (an
                // assignment refuses a longer one instead).
                match (ty, cast.e) {
                    (DataType::Varchar(Some(n)) | DataType::Char(Some(n)), e) => {
                        let f = LibFn::TruncateChars(n);
                        let e = match e {
                            Expr::Literal(d) => Expr::Literal(crate::functions::call(f, &[d])?),
                            e => Expr::Func(Func::Lib(f), vec![e]),
                        };
                        Typed { e, ty: cast.ty }
                    }
                    (_, e) => Typed { e, ty: cast.ty },
                }
            }
            A::Interval(iv) => Typed {
                e: Expr::Literal(Datum::Interval(interval_literal(iv)?)),
                ty: DataType::Interval,
            },
            A::Extract { field, expr, .. } => {
                let mut t = self.bind_expr(expr, scope)?;
                self.unify_with(&mut t, &DataType::Timestamp);
                let name = match field {
                    ast::DateTimeField::Custom(i) => i.value.to_lowercase(),
                    other => other.to_string().to_lowercase(),
                };
                let unit = datetime_unit("extract", &name, &t.ty)?;
                Typed {
                    e: Expr::Func(Func::Extract(unit), vec![Self::fold(t)?.e]),
                    ty: DataType::Numeric(None),
                }
            }
            A::TypedString(ts) => {
                let (ty, _) = data_type(&ts.data_type)?;
                let s = match &ts.value.value {
                    ast::Value::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                };
                Typed {
                    e: Expr::Literal(types::parse_datum(&s, &ty)?),
                    ty,
                }
            }
            A::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let op = operand
                    .as_ref()
                    .map(|o| self.bind_expr(o, scope))
                    .transpose()?;
                let mut whens = Vec::new();
                let mut ty = DataType::Unknown;
                let mut results = Vec::new();
                for cw in conditions {
                    let mut w = self.bind_expr(&cw.condition, scope)?;
                    match &op {
                        Some(o) => self.unify_with(&mut w, &o.ty),
                        None => {
                            self.unify_with(&mut w, &DataType::Bool);
                            expect_bool(&w, "CASE/WHEN")?;
                        }
                    }
                    let r = self.bind_expr(&cw.result, scope)?;
                    if ty == DataType::Unknown {
                        ty = r.ty.clone();
                    }
                    whens.push(w.e);
                    results.push(r);
                }
                let mut otherwise = else_result
                    .as_ref()
                    .map(|o| self.bind_expr(o, scope))
                    .transpose()?;
                if ty == DataType::Unknown {
                    if let Some(o) = &otherwise {
                        ty = o.ty.clone();
                    }
                }
                let mut pairs = Vec::new();
                for (w, mut r) in whens.into_iter().zip(results) {
                    self.unify_with(&mut r, &ty);
                    pairs.push((w, Self::fold(r)?.e));
                }
                if let Some(o) = otherwise.as_mut() {
                    self.unify_with(o, &ty);
                }
                Typed {
                    e: Expr::Case {
                        operand: op.map(|o| Box::new(o.e)),
                        whens: pairs,
                        otherwise: otherwise
                            .map(|o| Ok::<_, SqlError>(Box::new(Self::fold(o)?.e)))
                            .transpose()?,
                    },
                    ty,
                }
            }
            A::Function(f) => self.bind_function(f, scope)?,
            A::Array(a) => self.bind_array(&a.elem, scope)?,
            A::CompoundFieldAccess { root, access_chain } => {
                self.bind_subscripts(root, access_chain, scope)?
            }
            A::Subquery(q) => {
                let (plan, cols, args) = self.bind_subquery(q, scope)?;
                if cols.len() != 1 {
                    return Err(SqlError::syntax("subquery must return only one column"));
                }
                Typed {
                    e: Expr::Subquery {
                        kind: SubqueryKind::Scalar(0),
                        lhs: None,
                        plan,
                        args,
                    },
                    ty: cols[0].1.clone(),
                }
            }
            A::Exists { subquery, negated } => {
                let (plan, _, args) = self.bind_subquery(subquery, scope)?;
                let e = Expr::Subquery {
                    kind: SubqueryKind::Exists,
                    lhs: None,
                    plan,
                    args,
                };
                Typed {
                    e: if *negated { Expr::Not(Box::new(e)) } else { e },
                    ty: DataType::Bool,
                }
            }
            A::In {
                expr,
                target: ast::InTarget::Subquery(q),
                negated,
                ..
            } => self.bind_quantified(expr, q, scope, SubqueryKind::In { negated: *negated })?,
            A::AnyOp {
                left,
                compare_op,
                right,
                ..
            }
            | A::AllOp {
                left,
                compare_op,
                right,
            } => {
                let all = matches!(e, A::AllOp { .. });
                let ast::Expr::Subquery(q) = right.as_ref() else {
                    return self.bind_quantified_array(left, compare_op, right, all, scope);
                };
                let op = quantified_op(compare_op)?;
                self.bind_quantified(left, q, scope, SubqueryKind::Quantified { op, all })?
            }
            A::IsUnknown(x) | A::IsNotUnknown(x) => {
                let mut t = self.bind_expr(x, scope)?;
                self.unify_with(&mut t, &DataType::Bool);
                expect_bool(&t, "IS UNKNOWN")?;
                Typed {
                    e: Expr::IsNull(Box::new(Self::fold(t)?.e), matches!(e, A::IsNotUnknown(_))),
                    ty: DataType::Bool,
                }
            }
            other => match self.bind_special_call(other, scope)? {
                Some(t) => t,
                None => {
                    return Err(SqlError::unsupported(format!(
                        "expression not supported yet: {}",
                        first_words(&other.to_string())
                    )))
                }
            },
        };
        Ok(t)
    }

    /// `lhs op ANY (array)` and `lhs op ALL (array)` where the array is
    /// written in the statement (`ARRAY[a, b]` or `'{a,b}'`): the
    /// comparisons with each element joined by OR (ANY) or AND (ALL),
    /// which gives SQL's answer with NULLs too. An empty array is false
    /// for ANY and true for ALL.
    fn bind_quantified_array(
        &mut self,
        lhs: &ast::Expr,
        op: &ast::BinaryOperator,
        array: &ast::Expr,
        all: bool,
        scope: &Scope,
    ) -> Result<Typed> {
        fn elements(e: &ast::Expr) -> Result<Vec<ast::Expr>> {
            match e {
                ast::Expr::Array(a) => Ok(a.elem.clone()),
                ast::Expr::Nested(inner) | ast::Expr::Cast { expr: inner, .. } => elements(inner),
                ast::Expr::Value(v) => match &v.value {
                    ast::Value::SingleQuotedString(s) => Ok(crate::array::parse_elements(s)?
                        .into_iter()
                        .map(|x| {
                            ast::Expr::value(match x {
                                Some(x) => ast::Value::SingleQuotedString(x),
                                None => ast::Value::Null,
                            })
                        })
                        .collect()),
                    _ => Err(SqlError::mismatch(
                        "op ANY/ALL (array) requires array on right side",
                    )),
                },
                _ => Err(SqlError::unsupported(
                    "ANY/ALL over an array that is not written in the statement",
                )),
            }
        }
        if !written_array(array) {
            return self.bind_quantified_runtime(lhs, op, array, all, scope);
        }
        let items = elements(array)?;
        // `= ANY` is IN and `<> ALL` is NOT IN (the same NULL rules), which
        // the planner turns into point spans.
        let in_list = match (op, all) {
            (ast::BinaryOperator::Eq, false) => Some(false),
            (ast::BinaryOperator::NotEq, true) => Some(true),
            _ => None,
        };
        if let (Some(negated), false) = (in_list, items.is_empty()) {
            let e = ast::Expr::In {
                expr: Box::new(lhs.clone()),
                target: ast::InTarget::List(items),
                negated,
                global: false,
            };
            return self.bind_expr(&e, scope);
        }
        let join = if all {
            ast::BinaryOperator::And
        } else {
            ast::BinaryOperator::Or
        };
        let combined = items
            .into_iter()
            .map(|el| ast::Expr::BinaryOp {
                left: Box::new(lhs.clone()),
                op: op.clone(),
                right: Box::new(el),
            })
            .reduce(|acc, cmp| ast::Expr::BinaryOp {
                left: Box::new(acc),
                op: join.clone(),
                right: Box::new(cmp),
            })
            .unwrap_or_else(|| ast::Expr::value(ast::Value::Boolean(all)));
        self.bind_expr(&ast::Expr::Nested(Box::new(combined)), scope)
    }

    /// `lhs IN (subquery)`, `lhs op ANY/ALL (subquery)`.
    fn bind_quantified(
        &mut self,
        lhs: &ast::Expr,
        q: &ast::Query,
        scope: &Scope,
        kind: SubqueryKind,
    ) -> Result<Typed> {
        let mut l = self.bind_expr(lhs, scope)?;
        let (plan, cols, args) = self.bind_subquery(q, scope)?;
        if cols.len() != 1 {
            return Err(SqlError::syntax("subquery has too many columns"));
        }
        let ty = cols[0].1.clone();
        self.unify_with(&mut l, &ty);
        check_comparable(&l.ty, &ty, BinOp::Eq)?;
        Ok(Typed {
            e: Expr::Subquery {
                kind,
                lhs: Some(Box::new(Self::fold(l)?.e)),
                plan,
                args,
            },
            ty: DataType::Bool,
        })
    }

    /// `lhs op ANY/ALL (array)` over an array known only when the row is
    /// (a column, a parameter, a function's result): each element is
    /// compared when the expression runs. A parameter there is an array
    /// of the left side's type (psycopg's `x = ANY(%s)` with a list).
    fn bind_quantified_runtime(
        &mut self,
        lhs: &ast::Expr,
        op: &ast::BinaryOperator,
        array: &ast::Expr,
        all: bool,
        scope: &Scope,
    ) -> Result<Typed> {
        let op = quantified_op(op)?;
        let mut l = self.bind_expr(lhs, scope)?;
        let mut a = self.bind_expr(array, scope)?;
        if a.ty == DataType::Unknown {
            let elem = resolve_unknown(&l.ty);
            self.unify_with(&mut a, &DataType::Array(Box::new(elem)));
            a = Self::fold(a)?;
        }
        let DataType::Array(elem) = a.ty.clone() else {
            return Err(SqlError::mismatch(
                "op ANY/ALL (array) requires array on right side",
            ));
        };
        self.unify_with(&mut l, &elem);
        check_comparable(&l.ty, &elem, op)?;
        Ok(Typed {
            e: Expr::Func(
                Func::Lib(LibFn::Array(ArrayFn::Quantified { op, all })),
                vec![Self::fold(l)?.e, a.e],
            ),
            ty: DataType::Bool,
        })
    }

    /// `(lhs)` looked up in the two-column rows of `sql` (an uncorrelated
    /// query over the catalog relations): the second column of the first
    /// row whose first column equals `lhs`, NULL if none does.
    fn bind_lookup(&mut self, lhs: Typed, sql: &str, scope: &Scope) -> Result<Typed> {
        let (plan, cols, args) = self.bind_subquery(&parse_query(sql)?, scope)?;
        Ok(Typed {
            e: Expr::Subquery {
                kind: SubqueryKind::Lookup,
                lhs: Some(Box::new(Self::fold(lhs)?.e)),
                plan,
                args,
            },
            ty: cols[1].1.clone(),
        })
    }

    /// Casts involving `regclass`: `'name'::regclass` looks the relation
    /// up in pg_class (a name without a schema in pg_catalog, then
    /// public; 42P01 if there is none), an integer is taken as the oid,
    /// and `x::regclass::text` is the relation's name.
    fn bind_regclass(
        &mut self,
        expr: &ast::Expr,
        data_type: &ast::DataType,
        scope: &Scope,
    ) -> Result<Typed> {
        if !is_regclass(data_type) {
            // `x::regclass::<type>`.
            let ast::Expr::Cast { expr: inner, .. } = expr else {
                unreachable!("matched by the caller")
            };
            let (ty, _) = data_type_cast(data_type)?;
            let oid = self.bind_regclass(inner, &ast::DataType::Regclass, scope)?;
            if !ty.is_string() {
                return Ok(Typed {
                    e: Expr::Cast(Box::new(oid.e), ty.clone()),
                    ty,
                });
            }
            return self.bind_lookup(oid, "SELECT oid, relname FROM pg_catalog.pg_class", scope);
        }
        let mut t = self.bind_expr(expr, scope)?;
        if t.ty.is_integer() {
            return Ok(Typed {
                e: Expr::Cast(Box::new(t.e), DataType::Int8),
                ty: DataType::Int8,
            });
        }
        if !(t.ty.is_string() || t.ty == DataType::Unknown) {
            return Err(SqlError::mismatch(format!(
                "cannot cast type {} to regclass",
                types::type_display(&t.ty)
            )));
        }
        self.unify_with(&mut t, &DataType::Text);
        let name = Self::fold(t)?;
        // The name as `schema.relation`, parts unquoted and folded.
        let key = Typed {
            e: Expr::Func(
                Func::Lib(LibFn::Array(ArrayFn::ToString)),
                vec![
                    Expr::Func(Func::Lib(LibFn::ParseIdent), vec![name.e.clone()]),
                    Expr::Literal(Datum::Text(".".into())),
                ],
            ),
            ty: DataType::Text,
        };
        let found = self.bind_lookup(
            key,
            "SELECT k, oid FROM ( \
               SELECT n.nspname || '.' || c.relname AS k, c.oid, 0 AS pref \
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
               UNION ALL \
               SELECT c.relname, c.oid, CASE WHEN n.nspname = 'pg_catalog' THEN 1 ELSE 2 END \
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
               WHERE n.nspname IN ('pg_catalog', 'public')) AS names ORDER BY pref",
            scope,
        )?;
        Ok(Typed {
            e: Expr::Func(Func::Lib(LibFn::RegclassChecked), vec![name.e, found.e]),
            ty: DataType::Int8,
        })
    }

    /// `pg_get_constraintdef(oid [, pretty])` and `pg_get_indexdef(oid
    /// [, column, pretty])`: the definition the catalog relation holds.
    fn bind_catalog_definition(
        &mut self,
        name: &str,
        args: &[ast::Expr],
        scope: &Scope,
    ) -> Result<Typed> {
        let (oid, sql) = match (name, args) {
            ("pg_get_constraintdef", [oid] | [oid, _]) => {
                (oid, "SELECT oid, condef FROM pg_catalog.pg_constraint")
            }
            ("pg_get_indexdef", [oid]) => {
                (oid, "SELECT indexrelid, indexdef FROM pg_catalog.pg_index")
            }
            // Column `n` of an index: its name (there are no expression
            // indexes); 0 is the whole definition.
            ("pg_get_indexdef", [oid, column, _]) => {
                let mut oid = self.bind_expr(oid, scope)?;
                self.unify_with(&mut oid, &DataType::Int8);
                let mut column = self.bind_expr(column, scope)?;
                self.unify_with(&mut column, &DataType::Int4);
                let defs = self.bind_lookup(
                    oid.clone(),
                    "SELECT indexrelid, indexdef FROM pg_catalog.pg_index",
                    scope,
                )?;
                let names = self.bind_lookup(
                    oid,
                    "SELECT indexrelid, indcolnames FROM pg_catalog.pg_index",
                    scope,
                )?;
                let column = Self::fold(column)?.e;
                return Ok(Typed {
                    e: Expr::Case {
                        operand: None,
                        whens: vec![(
                            Expr::binary(BinOp::Eq, column.clone(), Expr::Literal(Datum::Int(0))),
                            defs.e,
                        )],
                        otherwise: Some(Box::new(Expr::Func(
                            Func::Lib(LibFn::Array(ArrayFn::Subscript)),
                            vec![names.e, column],
                        ))),
                    },
                    ty: DataType::Text,
                });
            }
            _ => {
                return Err(SqlError::new(
                    code::UNDEFINED_FUNCTION,
                    format!(
                        "function {name} with {} arguments does not exist",
                        args.len()
                    ),
                ))
            }
        };
        let mut oid = self.bind_expr(oid, scope)?;
        self.unify_with(&mut oid, &DataType::Int8);
        self.bind_lookup(oid, sql, scope)
    }

    /// `ARRAY[a, b, ...]`: the elements take their common type.
    fn bind_array(&mut self, elems: &[ast::Expr], scope: &Scope) -> Result<Typed> {
        let mut bound = Vec::with_capacity(elems.len());
        for e in elems {
            bound.push(self.bind_expr(e, scope)?);
        }
        let mut elem = DataType::Unknown;
        for b in &bound {
            elem = common_type(&elem, &b.ty).ok_or_else(|| {
                SqlError::mismatch(format!(
                    "ARRAY types {} and {} cannot be matched",
                    types::type_display(&elem),
                    types::type_display(&b.ty)
                ))
            })?;
        }
        if matches!(elem, DataType::Array(_)) {
            return Err(SqlError::unsupported(
                "arrays of arrays (multidimensional arrays)",
            ));
        }
        let elem = if bound.is_empty() {
            DataType::Unknown
        } else {
            resolve_unknown(&elem)
        };
        let mut args = Vec::with_capacity(bound.len());
        for mut b in bound {
            self.unify_with(&mut b, &elem);
            let e = if b.ty != elem {
                Expr::Cast(Box::new(b.e), elem.clone())
            } else {
                b.e
            };
            args.push(
                Self::fold(Typed {
                    e,
                    ty: elem.clone(),
                })?
                .e,
            );
        }
        let e = if args.iter().all(|a| matches!(a, Expr::Literal(_))) {
            let values = args
                .into_iter()
                .map(|a| match a {
                    Expr::Literal(d) => d,
                    _ => unreachable!("all literals"),
                })
                .collect();
            Expr::Literal(Datum::Array(values))
        } else {
            Expr::Func(Func::Lib(LibFn::Array(ArrayFn::Build)), args)
        };
        Ok(Typed {
            e,
            ty: DataType::Array(Box::new(elem)),
        })
    }

    /// `a[i]`, `a[lo:hi]` (and chains of them: `a[2:3][1]`).
    fn bind_subscripts(
        &mut self,
        root: &ast::Expr,
        chain: &[ast::AccessExpr],
        scope: &Scope,
    ) -> Result<Typed> {
        // `t.col[1]` arrives as `t` with the accesses `.col` and `[1]`.
        let dots = chain
            .iter()
            .take_while(|a| matches!(a, ast::AccessExpr::Dot(ast::Expr::Identifier(_))))
            .count();
        let mut t = if dots == 0 {
            self.bind_expr(root, scope)?
        } else {
            let ast::Expr::Identifier(first) = root else {
                return Err(SqlError::unsupported(format!(
                    "field access on {}",
                    first_words(&root.to_string())
                )));
            };
            let mut parts = vec![first.clone()];
            for a in &chain[..dots] {
                if let ast::AccessExpr::Dot(ast::Expr::Identifier(i)) = a {
                    parts.push(i.clone());
                }
            }
            self.bind_expr(&ast::Expr::CompoundIdentifier(parts), scope)?
        };
        let chain = &chain[dots..];
        for access in chain {
            let DataType::Array(elem) = t.ty.clone() else {
                return Err(SqlError::mismatch(format!(
                    "cannot subscript type {} because it does not support subscripting",
                    types::type_display(&t.ty)
                )));
            };
            let mut bound_int = |e: &ast::Expr| -> Result<Expr> {
                let mut b = self.bind_expr(e, scope)?;
                self.unify_with(&mut b, &DataType::Int4);
                if !b.ty.is_integer() {
                    return Err(SqlError::mismatch(format!(
                        "array subscript must have type integer, not {}",
                        types::type_display(&b.ty)
                    )));
                }
                Ok(Self::fold(b)?.e)
            };
            t = match access {
                ast::AccessExpr::Subscript(ast::Subscript::Index { index }) => Typed {
                    e: Expr::Func(
                        Func::Lib(LibFn::Array(ArrayFn::Subscript)),
                        vec![t.e, bound_int(index)?],
                    ),
                    ty: *elem,
                },
                ast::AccessExpr::Subscript(ast::Subscript::Slice {
                    lower_bound,
                    upper_bound,
                    stride: None,
                }) => {
                    let mut args = vec![t.e];
                    if let Some(lo) = lower_bound {
                        args.push(bound_int(lo)?);
                    }
                    if let Some(hi) = upper_bound {
                        args.push(bound_int(hi)?);
                    }
                    let f = ArrayFn::Slice {
                        lower: lower_bound.is_some(),
                        upper: upper_bound.is_some(),
                    };
                    Typed {
                        e: Expr::Func(Func::Lib(LibFn::Array(f)), args),
                        ty: DataType::Array(elem),
                    }
                }
                other => {
                    return Err(SqlError::unsupported(format!(
                        "{other} after {}",
                        first_words(&root.to_string())
                    )))
                }
            };
        }
        Ok(t)
    }

    fn bind_value(&mut self, v: &ast::Value) -> Result<Typed> {
        Ok(match v {
            ast::Value::Number(n, _) => {
                if let Ok(i) = n.parse::<i64>() {
                    Typed {
                        e: Expr::Literal(Datum::Int(i)),
                        ty: if i32::try_from(i).is_ok() {
                            DataType::Int4
                        } else {
                            DataType::Int8
                        },
                    }
                } else if let Some(d) = Decimal::parse(n) {
                    Typed {
                        e: Expr::Literal(Datum::Decimal(d)),
                        ty: DataType::Numeric(None),
                    }
                } else {
                    // Beyond numeric's 38 digits (`1e300`): a double.
                    match n.parse::<f64>() {
                        Ok(f) if f.is_finite() => Typed {
                            e: Expr::Literal(Datum::Float(f)),
                            ty: DataType::Float8,
                        },
                        _ => {
                            return Err(SqlError::new(
                                code::NUMERIC_VALUE_OUT_OF_RANGE,
                                "value overflows numeric format",
                            ))
                        }
                    }
                }
            }
            ast::Value::SingleQuotedString(s)
            | ast::Value::EscapedStringLiteral(s)
            | ast::Value::UnicodeStringLiteral(s)
            | ast::Value::DoubleQuotedString(s) => Typed {
                e: Expr::Literal(Datum::Text(s.clone())),
                ty: DataType::Unknown,
            },
            ast::Value::DollarQuotedString(s) => Typed {
                e: Expr::Literal(Datum::Text(s.value.clone())),
                ty: DataType::Unknown,
            },
            ast::Value::HexStringLiteral(h) => Typed {
                e: Expr::Literal(types::parse_datum(&format!("\\x{h}"), &DataType::Bytea)?),
                ty: DataType::Bytea,
            },
            ast::Value::Boolean(b) => Typed {
                e: Expr::Literal(Datum::Bool(*b)),
                ty: DataType::Bool,
            },
            ast::Value::Null => Typed {
                e: Expr::Literal(Datum::Null),
                ty: DataType::Unknown,
            },
            ast::Value::Placeholder(p) => {
                let n: usize = p
                    .strip_prefix('$')
                    .and_then(|x| x.parse().ok())
                    .filter(|n| *n >= 1 && *n <= 65535)
                    .ok_or_else(|| SqlError::syntax(format!("bad parameter {p}")))?;
                if self.params.len() < n {
                    self.params.resize(n, DataType::Unknown);
                }
                Typed {
                    e: Expr::Param(n - 1),
                    ty: self.params[n - 1].clone(),
                }
            }
            other => return Err(SqlError::unsupported(format!("literal {other}"))),
        })
    }

    fn bind_binary(&mut self, op: BinOp, mut l: Typed, mut r: Typed) -> Result<Typed> {
        if op == BinOp::And || op == BinOp::Or {
            self.unify_with(&mut l, &DataType::Bool);
            self.unify_with(&mut r, &DataType::Bool);
            expect_bool(&l, op.symbol())?;
            expect_bool(&r, op.symbol())?;
            return Ok(Typed {
                e: Expr::binary(op, l.e, r.e),
                ty: DataType::Bool,
            });
        }
        // JSONB's `||` (merge) and `-` (delete a key or an element).
        let jsonb = |t: &Typed| t.ty == DataType::Jsonb;
        if (op == BinOp::Concat && (jsonb(&l) || jsonb(&r))) || (op == BinOp::Sub && jsonb(&l)) {
            return self.bind_library_call(op.symbol(), vec![l, r]);
        }
        if op == BinOp::Concat {
            self.unify_with(&mut l, &DataType::Text);
            self.unify_with(&mut r, &DataType::Text);
            let (l, r) = (char_as_text(l), char_as_text(r));
            return Ok(Typed {
                e: Expr::binary(op, l.e, r.e),
                ty: DataType::Text,
            });
        }
        let rt = r.ty.clone();
        self.unify_with(&mut l, &rt);
        let lt = l.ty.clone();
        self.unify_with(&mut r, &lt);
        let (l, r) = (Self::fold(l)?, Self::fold(r)?);
        let ty = if op.is_comparison()
            || op == BinOp::IsDistinctFrom
            || op == BinOp::IsNotDistinctFrom
        {
            check_comparable(&l.ty, &r.ty, op)?;
            DataType::Bool
        } else {
            arith_type(op, &l.ty, &r.ty)?
        };
        let mut e = Expr::binary(op, l.e, r.e);
        if matches!(ty, DataType::Int2 | DataType::Int4 | DataType::Float4) {
            // Integers are computed in 64 bits and reals in double
            // precision: the result is brought to its type (for integers,
            // 22003 "integer out of range" if it does not fit).
            e = Expr::Cast(Box::new(e), ty.clone());
        }
        Ok(Typed { e, ty })
    }

    fn bind_function(&mut self, f: &ast::Function, scope: &Scope) -> Result<Typed> {
        let name = f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(ident)
            .unwrap_or_default();
        let name = name.as_str();
        let mut order_clause: &[ast::OrderByExpr] = &[];
        let (args, distinct, star) = match &f.args {
            ast::FunctionArguments::None => (vec![], false, false),
            ast::FunctionArguments::List(l) => {
                for clause in &l.clauses {
                    match clause {
                        ast::FunctionArgumentClause::OrderBy(o) => order_clause = o,
                        other => {
                            return Err(SqlError::unsupported(format!(
                                "{other} in a function call"
                            )))
                        }
                    }
                }
                let mut out = Vec::new();
                let mut star = false;
                let mut named = Vec::new();
                for a in &l.args {
                    match a {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e))
                            if named.is_empty() =>
                        {
                            out.push(e.clone())
                        }
                        ast::FunctionArg::Unnamed(_) if !named.is_empty() => {
                            return Err(SqlError::syntax(
                                "positional argument cannot follow named argument",
                            ))
                        }
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => star = true,
                        ast::FunctionArg::Named {
                            name: arg_name,
                            arg: ast::FunctionArgExpr::Expr(e),
                            ..
                        } => named.push((ident(arg_name), e.clone())),
                        ast::FunctionArg::ExprNamed {
                            name: ast::Expr::Identifier(arg_name),
                            arg: ast::FunctionArgExpr::Expr(e),
                            ..
                        } => named.push((ident(arg_name), e.clone())),
                        other => return Err(SqlError::unsupported(format!("argument {other}"))),
                    }
                }
                if !named.is_empty() {
                    out = place_named_arguments(name, out, named)?;
                }
                (
                    out,
                    matches!(
                        l.duplicate_treatment,
                        Some(ast::DuplicateTreatment::Distinct)
                    ),
                    star,
                )
            }
            ast::FunctionArguments::Subquery(q) if name == "array" => {
                let (plan, cols, args) = self.bind_subquery(q, scope)?;
                if cols.len() != 1 {
                    return Err(SqlError::syntax("subquery must return only one column"));
                }
                let elem = resolve_unknown(&cols[0].1);
                if matches!(elem, DataType::Array(_)) {
                    return Err(SqlError::unsupported(
                        "ARRAY() of arrays (multidimensional arrays)",
                    ));
                }
                return Ok(Typed {
                    e: Expr::Subquery {
                        kind: SubqueryKind::Array,
                        lhs: None,
                        plan,
                        args,
                    },
                    ty: DataType::Array(Box::new(elem)),
                });
            }
            ast::FunctionArguments::Subquery(_) => {
                return Err(SqlError::unsupported("subqueries are not supported yet"))
            }
        };
        if let Some(over) = &f.over {
            return self.bind_window(f, name, &args, over, scope);
        }
        if name == "grouping" {
            return self.bind_grouping(&args, scope);
        }
        let agg = match name {
            "count" => Some(if star {
                AggFunc::CountStar
            } else {
                AggFunc::Count
            }),
            "sum" => Some(AggFunc::Sum),
            "avg" => Some(AggFunc::Avg),
            "min" => Some(AggFunc::Min),
            "max" => Some(AggFunc::Max),
            "array_agg" => Some(AggFunc::ArrayAgg),
            "json_agg" => Some(AggFunc::JsonAgg { jsonb: false }),
            "jsonb_agg" => Some(AggFunc::JsonAgg { jsonb: true }),
            "json_object_agg" => Some(AggFunc::JsonObjectAgg { jsonb: false }),
            "jsonb_object_agg" => Some(AggFunc::JsonObjectAgg { jsonb: true }),
            "string_agg" => Some(AggFunc::StringAgg),
            "bool_and" | "every" => Some(AggFunc::BoolAnd),
            "bool_or" => Some(AggFunc::BoolOr),
            "var_samp" | "variance" | "var_pop" | "stddev_samp" | "stddev" | "stddev_pop" => {
                Some(AggFunc::Variance {
                    population: name.ends_with("_pop"),
                    root: name.starts_with("stddev"),
                })
            }
            _ => None,
        };
        if agg.is_none() && f.filter.is_some() {
            return Err(SqlError::syntax(format!(
                "FILTER specified, but {name} is not an aggregate function"
            )));
        }
        if agg.is_none() && !order_clause.is_empty() {
            return Err(SqlError::new(
                code::WRONG_OBJECT_TYPE,
                format!("ORDER BY specified, but {name} is not an aggregate function"),
            ));
        }
        if !f.within_group.is_empty() {
            return Err(match name {
                "percentile_cont" | "percentile_disc" | "mode" => {
                    return self.bind_ordered_set(name, &args, &f.within_group, scope)
                }
                _ => SqlError::new(
                    code::WRONG_OBJECT_TYPE,
                    format!(
                        "{name} is not an ordered-set aggregate, so it cannot have WITHIN GROUP"
                    ),
                ),
            });
        }
        if let Some(func) = agg {
            if self.aggs.is_none() {
                return Err(SqlError::new(
                    code::GROUPING_ERROR,
                    format!(
                        "aggregate functions are not allowed in {}",
                        self.agg_context
                    ),
                ));
            }
            let wanted = match func {
                AggFunc::StringAgg | AggFunc::JsonObjectAgg { .. } => 2,
                _ => 1,
            };
            let mut delimiter = None;
            let (arg, arg_ty) = if func == AggFunc::CountStar {
                (None, DataType::Int8)
            } else {
                if args.len() != wanted {
                    return Err(SqlError::new(
                        code::UNDEFINED_FUNCTION,
                        format!("function {name} takes {wanted} argument(s)"),
                    ));
                }
                let mut t = self.bind_expr_no_agg(&args[0], scope, "aggregate function calls")?;
                match func {
                    AggFunc::StringAgg => {
                        self.unify_with(&mut t, &DataType::Text);
                        t = char_as_text(t);
                        let mut d =
                            self.bind_expr_no_agg(&args[1], scope, "aggregate function calls")?;
                        self.unify_with(&mut d, &DataType::Text);
                        if !(t.ty.is_string() || t.ty == DataType::Bytea) || !d.ty.is_string() {
                            return Err(SqlError::new(
                                code::UNDEFINED_FUNCTION,
                                format!(
                                    "function string_agg({}, {}) does not exist",
                                    types::type_display(&t.ty),
                                    types::type_display(&d.ty)
                                ),
                            ));
                        }
                        delimiter = Some(Self::fold(d)?.e);
                    }
                    AggFunc::JsonAgg { .. } => t = self.as_json(t),
                    AggFunc::JsonObjectAgg { .. } => {
                        self.unify_with(&mut t, &DataType::Text);
                        let d =
                            self.bind_expr_no_agg(&args[1], scope, "aggregate function calls")?;
                        delimiter = Some(Self::fold(self.as_json(d))?.e);
                    }
                    AggFunc::BoolAnd | AggFunc::BoolOr => {
                        self.unify_with(&mut t, &DataType::Bool);
                        if t.ty != DataType::Bool {
                            return Err(no_function(name, &t.ty));
                        }
                    }
                    _ => {}
                }
                let t = Self::fold(t)?;
                (Some(t.e), t.ty)
            };
            let filter = f
                .filter
                .as_ref()
                .map(|w| self.bind_bool(w, scope, "FILTER"))
                .transpose()?;
            let mut order_by = Vec::new();
            for o in order_clause {
                let desc = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
                let key = self.bind_expr_no_agg(&o.expr, scope, "aggregate function calls")?;
                let key = Self::fold(key)?.e;
                if distinct && arg.as_ref() != Some(&key) {
                    return Err(SqlError::new(
                        code::INVALID_COLUMN_REFERENCE,
                        "in an aggregate with DISTINCT, ORDER BY expressions must appear in argument list",
                    ));
                }
                order_by.push(SortKey {
                    expr: key,
                    desc,
                    nulls_first: o.options.nulls_first.unwrap_or(desc),
                });
            }
            let ty = match func {
                AggFunc::CountStar | AggFunc::Count => DataType::Int8,
                AggFunc::Sum => match &arg_ty {
                    DataType::Int2 | DataType::Int4 => DataType::Int8,
                    DataType::Int8 | DataType::Numeric(_) => DataType::Numeric(None),
                    t if t.is_float() => DataType::Float8,
                    DataType::Interval => DataType::Interval,
                    t => return Err(no_function(name, t)),
                },
                AggFunc::Avg => match &arg_ty {
                    t if t.is_integer() || matches!(t, DataType::Numeric(_)) => {
                        DataType::Numeric(None)
                    }
                    t if t.is_float() => DataType::Float8,
                    DataType::Interval => DataType::Interval,
                    t => return Err(no_function(name, t)),
                },
                AggFunc::Min | AggFunc::Max => arg_ty.clone(),
                AggFunc::ArrayAgg => match &arg_ty {
                    DataType::Unknown => DataType::Array(Box::new(DataType::Text)),
                    DataType::Array(_) => {
                        return Err(SqlError::unsupported(
                            "array_agg of arrays (multidimensional arrays)",
                        ))
                    }
                    t => DataType::Array(Box::new(t.clone())),
                },
                AggFunc::JsonAgg { jsonb: false } => DataType::Json,
                AggFunc::JsonAgg { jsonb: true } => DataType::Jsonb,
                AggFunc::JsonObjectAgg { jsonb: false } => DataType::Json,
                AggFunc::JsonObjectAgg { jsonb: true } => DataType::Jsonb,
                AggFunc::Grouping { .. } => DataType::Int4,
                AggFunc::Percentile { .. } | AggFunc::Mode => arg_ty.clone(),
                AggFunc::StringAgg => DataType::Text,
                AggFunc::BoolAnd | AggFunc::BoolOr => DataType::Bool,
                AggFunc::Variance { .. } => match &arg_ty {
                    t if t.is_integer() || matches!(t, DataType::Numeric(_)) => {
                        DataType::Numeric(None)
                    }
                    t if t.is_float() => DataType::Float8,
                    t => return Err(no_function(name, t)),
                },
            };
            let idx = self.add_agg(AggCall {
                func,
                arg,
                delimiter,
                distinct,
                filter,
                arg_ty,
                order_by,
            });
            return Ok(Typed {
                e: Expr::AggRef(idx),
                ty,
            });
        }
        if matches!(name, "pg_get_constraintdef" | "pg_get_indexdef") {
            return self.bind_catalog_definition(name, &args, scope);
        }
        if name == "array_to_json" && args.len() == 1 {
            let a = self.bind_expr(&args[0], scope)?;
            if !matches!(a.ty, DataType::Array(_)) {
                return Err(no_function(name, &a.ty));
            }
            return Ok(self.as_json(a));
        }
        // nextval('s'::regclass): the name is what counts.
        let mut args = args;
        if matches!(name, "nextval" | "currval" | "setval") {
            if let Some(ast::Expr::Cast {
                expr, data_type, ..
            }) = args.first()
            {
                if data_type.to_string().eq_ignore_ascii_case("regclass") {
                    args[0] = (**expr).clone();
                }
            }
        }
        let mut bound = Vec::new();
        for a in &args {
            bound.push(self.bind_expr(a, scope)?);
        }
        let arity = |n: usize| -> Result<()> {
            if bound.len() == n {
                Ok(())
            } else {
                Err(SqlError::new(
                    code::UNDEFINED_FUNCTION,
                    format!("function {name} expects {n} argument(s)"),
                ))
            }
        };
        let (func, ty) = match name {
            "lower" | "upper" | "length" | "char_length" | "character_length" => {
                arity(1)?;
                self.unify_with(&mut bound[0], &DataType::Text);
                let ok =
                    bound[0].ty.is_string() || (name == "length" && bound[0].ty == DataType::Bytea);
                if !ok {
                    return Err(no_function(name, &bound[0].ty));
                }
                bound[0] = char_as_text(bound[0].clone());
                match name {
                    "lower" => (Func::Lower, DataType::Text),
                    "upper" => (Func::Upper, DataType::Text),
                    _ => (Func::Length, DataType::Int4),
                }
            }
            "round" => {
                if bound.is_empty() || bound.len() > 2 {
                    return Err(no_function(name, &DataType::Unknown));
                }
                self.unify_with(&mut bound[0], &DataType::Numeric(None));
                if bound.len() == 2 {
                    self.unify_with(&mut bound[1], &DataType::Int4);
                    if !bound[1].ty.is_integer()
                        || !(bound[0].ty.is_integer()
                            || matches!(bound[0].ty, DataType::Numeric(_)))
                    {
                        let sig = format!(
                            "{}, {}",
                            types::type_display(&bound[0].ty),
                            types::type_display(&bound[1].ty)
                        );
                        return Err(SqlError::new(
                            code::UNDEFINED_FUNCTION,
                            format!("function round({sig}) does not exist"),
                        ));
                    }
                    (Func::Round, DataType::Numeric(None))
                } else if bound[0].ty.is_float() {
                    (Func::Round, DataType::Float8)
                } else if bound[0].ty.is_integer() || matches!(bound[0].ty, DataType::Numeric(_)) {
                    (Func::Round, DataType::Numeric(None))
                } else {
                    return Err(no_function(name, &bound[0].ty));
                }
            }
            "booleq" | "boolne" => {
                arity(2)?;
                for b in bound.iter_mut() {
                    self.unify_with(b, &DataType::Bool);
                }
                if bound.iter().any(|b| b.ty != DataType::Bool) {
                    let sig: Vec<String> =
                        bound.iter().map(|b| types::type_display(&b.ty)).collect();
                    return Err(SqlError::new(
                        code::UNDEFINED_FUNCTION,
                        format!("function {name}({}) does not exist", sig.join(", ")),
                    ));
                }
                let f = if name == "booleq" {
                    Func::BoolEq
                } else {
                    Func::BoolNe
                };
                (f, DataType::Bool)
            }
            "abs" => {
                arity(1)?;
                self.unify_with(&mut bound[0], &DataType::Float8);
                if !bound[0].ty.is_numeric() {
                    return Err(no_function(name, &bound[0].ty));
                }
                (Func::Abs, bound[0].ty.clone())
            }
            "coalesce" => {
                if bound.is_empty() {
                    return Err(SqlError::syntax("coalesce needs arguments"));
                }
                let ty = bound
                    .iter()
                    .map(|b| b.ty.clone())
                    .find(|t| *t != DataType::Unknown)
                    .unwrap_or(DataType::Unknown);
                for b in bound.iter_mut() {
                    self.unify_with(b, &ty);
                }
                (Func::Coalesce, ty)
            }
            "nullif" => {
                arity(2)?;
                let ty = bound[0].ty.clone();
                self.unify_with(&mut bound[1], &ty);
                (Func::NullIf, ty)
            }
            "now"
            | "current_timestamp"
            | "transaction_timestamp"
            | "statement_timestamp"
            | "localtimestamp" => {
                arity(0)?;
                (Func::Now, DataType::TimestampTz)
            }
            "current_date" => {
                arity(0)?;
                (Func::CurrentDate, DataType::Date)
            }
            "date_part" => {
                arity(2)?;
                let unit_name = match &bound[0].e {
                    Expr::Literal(Datum::Text(n)) => n.to_lowercase(),
                    _ => {
                        return Err(SqlError::unsupported(
                            "date_part needs its unit as a constant",
                        ))
                    }
                };
                self.unify_with(&mut bound[1], &DataType::Timestamp);
                let unit = datetime_unit(name, &unit_name, &bound[1].ty)?;
                bound.remove(0);
                (Func::DatePart(unit), DataType::Float8)
            }
            "version" => {
                arity(0)?;
                (Func::Version, DataType::Text)
            }
            "current_database" => {
                arity(0)?;
                (Func::CurrentDatabase, DataType::Text)
            }
            "pg_backend_pid" => {
                arity(0)?;
                (Func::BackendPid, DataType::Int4)
            }
            "current_schema" => {
                arity(0)?;
                (Func::CurrentSchema, DataType::Text)
            }
            "current_setting" if bound.len() == 1 || bound.len() == 2 => {
                self.unify_with(&mut bound[0], &DataType::Text);
                if let Some(b) = bound.get_mut(1) {
                    self.unify_with(b, &DataType::Bool);
                }
                if !bound[0].ty.is_string() || bound.get(1).is_some_and(|b| b.ty != DataType::Bool)
                {
                    let sig: Vec<String> =
                        bound.iter().map(|b| types::type_display(&b.ty)).collect();
                    return Err(SqlError::new(
                        code::UNDEFINED_FUNCTION,
                        format!(
                            "function current_setting({}) does not exist",
                            sig.join(", ")
                        ),
                    ));
                }
                (Func::CurrentSetting, DataType::Text)
            }
            "set_config" if bound.len() == 3 => {
                self.unify_with(&mut bound[0], &DataType::Text);
                self.unify_with(&mut bound[1], &DataType::Text);
                self.unify_with(&mut bound[2], &DataType::Bool);
                if !bound[0].ty.is_string()
                    || !bound[1].ty.is_string()
                    || bound[2].ty != DataType::Bool
                {
                    let sig: Vec<String> =
                        bound.iter().map(|b| types::type_display(&b.ty)).collect();
                    return Err(SqlError::new(
                        code::UNDEFINED_FUNCTION,
                        format!("function set_config({}) does not exist", sig.join(", ")),
                    ));
                }
                (Func::SetConfig, DataType::Text)
            }
            "nextval" | "currval" | "setval" | "lastval" => {
                use crate::sequences::SeqFn;
                let (f, wanted): (SeqFn, &[DataType]) = match name {
                    "nextval" => (SeqFn::NextVal, &[DataType::Text]),
                    "currval" => (SeqFn::CurrVal, &[DataType::Text]),
                    "lastval" => (SeqFn::LastVal, &[]),
                    _ if bound.len() == 3 => (
                        SeqFn::SetVal,
                        &[DataType::Text, DataType::Int8, DataType::Bool],
                    ),
                    _ => (SeqFn::SetVal, &[DataType::Text, DataType::Int8]),
                };
                arity(wanted.len())?;
                for (b, ty) in bound.iter_mut().zip(wanted) {
                    self.unify_with(b, ty);
                    let fits = match ty {
                        DataType::Text => b.ty.is_string(),
                        DataType::Int8 => b.ty.is_integer(),
                        t => &b.ty == t,
                    };
                    if !fits {
                        let sig: Vec<String> =
                            bound.iter().map(|b| types::type_display(&b.ty)).collect();
                        return Err(SqlError::new(
                            code::UNDEFINED_FUNCTION,
                            format!("function {name}({}) does not exist", sig.join(", ")),
                        ));
                    }
                }
                for b in bound.iter_mut().skip(1) {
                    if b.ty.is_integer() && b.ty != DataType::Int8 {
                        let inner = std::mem::replace(&mut b.e, Expr::Literal(Datum::Null));
                        b.e = Expr::Cast(Box::new(inner), DataType::Int8);
                        b.ty = DataType::Int8;
                    }
                }
                (Func::Sequence(f), DataType::Int8)
            }
            "current_user" | "session_user" | "user" | "current_role" => {
                arity(0)?;
                (Func::CurrentUser, DataType::Text)
            }
            // Every relation is taken as visible (the search path is not
            // known here).
            "pg_table_is_visible"
            | "pg_type_is_visible"
            | "pg_collation_is_visible"
            | "pg_function_is_visible" => {
                arity(1)?;
                return Ok(Typed {
                    e: Expr::Literal(Datum::Bool(true)),
                    ty: DataType::Bool,
                });
            }
            // The argument's type, known at bind time.
            "pg_typeof" => {
                arity(1)?;
                let name = match &bound[0].ty {
                    DataType::Unknown => "unknown".to_string(),
                    t => types::type_display(t),
                };
                return Ok(Typed {
                    e: Expr::Literal(Datum::Text(name)),
                    ty: DataType::Text,
                });
            }
            // Comments are not kept (pg_description is empty).
            "obj_description" | "col_description" | "shobj_description"
                if bound.len() == 1 || bound.len() == 2 =>
            {
                return Ok(Typed {
                    e: Expr::Literal(Datum::Null),
                    ty: DataType::Text,
                });
            }
            // Every object is owned by root (role 10; see pg_catalog).
            "pg_get_userbyid" => {
                arity(1)?;
                return Ok(Typed {
                    e: Expr::Literal(Datum::Text("root".into())),
                    ty: DataType::Text,
                });
            }
            _ => return self.bind_library_call(name, bound),
        };
        let args = bound
            .into_iter()
            .map(|b| Ok(Self::fold(b)?.e))
            .collect::<Result<_>>()?;
        Ok(Typed {
            e: Expr::Func(func, args),
            ty,
        })
    }
}

impl Binder<'_> {
    /// A call of a [`crate::functions`] library function on bound
    /// arguments (untyped ones take the types it asks for).
    fn bind_library_call(&mut self, name: &str, mut bound: Vec<Typed>) -> Result<Typed> {
        if matches!(
            name,
            "json_build_object"
                | "jsonb_build_object"
                | "json_build_array"
                | "jsonb_build_array"
                | "to_json"
                | "to_jsonb"
        ) {
            bound = bound.into_iter().map(|b| self.as_json(b)).collect();
        }
        let types_of = |b: &[Typed]| b.iter().map(|t| t.ty.clone()).collect::<Vec<_>>();
        let Some(sig) = crate::functions::resolve(name, &types_of(&bound))? else {
            let sig: Vec<String> = bound.iter().map(|b| types::type_display(&b.ty)).collect();
            return Err(SqlError::new(
                code::UNDEFINED_FUNCTION,
                format!("function {name}({}) does not exist", sig.join(", ")),
            ));
        };
        for (b, p) in bound.iter_mut().zip(&sig.params) {
            self.unify_with(b, p);
        }
        let args = bound
            .into_iter()
            .zip(
                sig.params
                    .iter()
                    .chain(std::iter::repeat(&DataType::Unknown)),
            )
            .map(|(b, p)| {
                // Functions over text see CHAR(n) values without padding;
                // octet_length and the `any` arguments of concat keep it.
                let text_param = *p == DataType::Text
                    && !matches!(name, "octet_length" | "concat" | "concat_ws");
                let b = if text_param { char_as_text(b) } else { b };
                Ok(Self::fold(b)?.e)
            })
            .collect::<Result<_>>()?;
        Ok(Typed {
            e: Expr::Func(Func::Lib(sig.func), args),
            ty: sig.result,
        })
    }

    /// A value as JSON, by its type: numbers and booleans as themselves,
    /// JSON as it is, anything else as a string of its text form.
    fn as_json(&mut self, mut b: Typed) -> Typed {
        use crate::functions::LibFn;
        let lib = |f: LibFn, e: Expr| Expr::Func(Func::Lib(f), vec![e]);
        if b.ty == DataType::Unknown {
            self.unify_with(&mut b, &DataType::Text);
        }
        let e = match &b.ty {
            DataType::Json | DataType::Jsonb => b.e,
            t if t.is_numeric() => lib(LibFn::ToJsonNumber, b.e),
            DataType::Bool => lib(LibFn::ToJsonBool, b.e),
            DataType::Uuid => lib(LibFn::ToJsonString, lib(LibFn::UuidText, b.e)),
            DataType::TimestampTz => lib(LibFn::ToJsonString, lib(LibFn::TimestampTzText, b.e)),
            DataType::Array(elem) => lib(
                LibFn::Array(ArrayFn::ToJson(crate::array::ElemKind::of(elem))),
                b.e,
            ),
            _ => lib(LibFn::ToJsonString, b.e),
        };
        Typed {
            e,
            ty: DataType::Json,
        }
    }

    /// SQL's special call syntax for library functions: `SUBSTRING(s FROM
    /// a FOR b)`, `TRIM([BOTH|LEADING|TRAILING] [c] FROM s)`, `POSITION(a
    /// IN b)`, `CEIL(x)`, `FLOOR(x)`.
    fn bind_special_call(&mut self, e: &ast::Expr, scope: &Scope) -> Result<Option<Typed>> {
        let (name, args): (&str, Vec<&ast::Expr>) = match e {
            ast::Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let one = ast::Expr::value(ast::Value::Number("1".into(), false));
                let mut bound = vec![self.bind_expr(expr, scope)?];
                bound.push(match substring_from {
                    Some(f) => self.bind_expr(f, scope)?,
                    None => self.bind_expr(&one, scope)?,
                });
                if let Some(n) = substring_for {
                    bound.push(self.bind_expr(n, scope)?);
                }
                return self.bind_library_call("substring", bound).map(Some);
            }
            ast::Expr::Trim {
                trim_where,
                trim_what,
                expr,
                trim_characters,
            } => {
                if trim_characters.is_some() {
                    return Err(SqlError::unsupported("TRIM with a character list"));
                }
                let name = match trim_where {
                    Some(ast::TrimWhereField::Leading) => "ltrim",
                    Some(ast::TrimWhereField::Trailing) => "rtrim",
                    _ => "btrim",
                };
                let mut args = vec![&**expr];
                if let Some(w) = trim_what {
                    args.push(w);
                }
                (name, args)
            }
            ast::Expr::Position { expr, r#in } => ("strpos", vec![&**r#in, &**expr]),
            ast::Expr::Overlay {
                expr,
                overlay_what,
                overlay_from,
                overlay_for,
            } => {
                let mut args = vec![&**expr, &**overlay_what, &**overlay_from];
                args.extend(overlay_for.as_deref());
                ("overlay", args)
            }
            ast::Expr::Ceil { expr, field } | ast::Expr::Floor { expr, field } => {
                if !matches!(
                    field,
                    ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime)
                ) {
                    return Err(SqlError::unsupported("CEIL / FLOOR with a scale or unit"));
                }
                let name = if matches!(e, ast::Expr::Ceil { .. }) {
                    "ceil"
                } else {
                    "floor"
                };
                (name, vec![&**expr])
            }
            _ => return Ok(None),
        };
        let mut bound = Vec::new();
        for a in args {
            bound.push(self.bind_expr(a, scope)?);
        }
        self.bind_library_call(name, bound).map(Some)
    }
}

/// The lower-cased name of a function call.
fn function_name(f: &ast::Function) -> String {
    f.name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map(ident)
        .unwrap_or_default()
}

/// Output names after a column alias list (`name(a, b)`): 42P10 with more
/// aliases than columns.
fn rename_columns(
    columns: &[(String, DataType)],
    aliases: &[ast::TableAliasColumnDef],
) -> Result<Vec<String>> {
    if aliases.len() > columns.len() {
        return Err(SqlError::new(
            code::INVALID_COLUMN_REFERENCE,
            format!(
                "table has {} columns available but {} columns specified",
                columns.len(),
                aliases.len()
            ),
        ));
    }
    Ok(columns
        .iter()
        .enumerate()
        .map(|(i, (n, _))| aliases.get(i).map(|a| ident(&a.name)).unwrap_or(n.clone()))
        .collect())
}

/// A bound query used as a FROM item named `rel` (a CTE or a view).
fn derived(
    q: BoundQuery,
    names: Vec<String>,
    rel: &str,
    alias: Option<&ast::TableAlias>,
) -> Result<(Plan, Scope)> {
    let names = match alias {
        Some(a) => {
            let named: Vec<(String, DataType)> = names
                .into_iter()
                .zip(q.columns.iter().map(|(_, t)| t.clone()))
                .collect();
            rename_columns(&named, &a.columns)?
        }
        None => names,
    };
    let table = alias.map(|a| ident(&a.name)).unwrap_or(rel.to_string());
    let scope = Scope {
        cols: names
            .into_iter()
            .zip(&q.columns)
            .map(|(name, (_, ty))| ScopeCol {
                table: Some(table.clone()),
                name,
                ty: ty.clone(),
                hidden: false,
                qualified_only: false,
                key: None,
            })
            .collect(),
    };
    Ok((q.plan, scope))
}

/// Parses one query (view definitions are stored as SQL text).
pub fn parse_query(sql: &str) -> Result<ast::Query> {
    let dialect = sqlparser::dialect::PostgreSqlDialect {};
    let mut stmts = sqlparser::parser::Parser::parse_sql(&dialect, sql)
        .map_err(|e| SqlError::syntax(e.to_string()))?;
    match (stmts.pop(), stmts.is_empty()) {
        (Some(ast::Statement::Query(q)), true) => Ok(*q),
        _ => Err(SqlError::syntax("a view must be defined by one query")),
    }
}

fn no_function(name: &str, t: &DataType) -> SqlError {
    SqlError::new(
        code::UNDEFINED_FUNCTION,
        format!("function {name}({}) does not exist", types::type_display(t)),
    )
}

fn data_type_cast(t: &ast::DataType) -> Result<(DataType, bool)> {
    // `::char` without a length casts without padding in PostgreSQL.
    match t {
        ast::DataType::Char(None) | ast::DataType::Character(None) => {
            Ok((DataType::Char(None), false))
        }
        other => data_type(other),
    }
}

/// Parses one SQL expression (column defaults are stored as text).
pub fn parse_expr(sql: &str) -> Result<ast::Expr> {
    let dialect = sqlparser::dialect::PostgreSqlDialect {};
    sqlparser::parser::Parser::new(&dialect)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| SqlError::syntax(e.to_string()))
}

/// Which output columns of a plain `SELECT` are bare NULLs or quoted
/// literals: PostgreSQL leaves those untyped in `INSERT ... SELECT` and
/// converts them to the target column's type (empty if unknown, e.g. with
/// `*` or a set operation).
fn untyped_outputs(q: &ast::Query) -> Vec<bool> {
    let ast::SetExpr::Select(select) = q.body.as_ref() else {
        return Vec::new();
    };
    let untyped = |e: &ast::Expr| matches!(e, ast::Expr::Value(v) if matches!(v.value, ast::Value::Null | ast::Value::SingleQuotedString(_)));
    let mut out = Vec::new();
    for item in &select.projection {
        match item {
            ast::SelectItem::UnnamedExpr(e) => out.push(untyped(e)),
            ast::SelectItem::ExprWithAlias { expr, .. } => out.push(untyped(expr)),
            _ => return Vec::new(),
        }
    }
    out
}

fn is_default_keyword(e: &ast::Expr) -> bool {
    matches!(e, ast::Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default"))
}

fn expect_bool(t: &Typed, what: &str) -> Result<()> {
    if t.ty == DataType::Bool || t.ty == DataType::Unknown {
        Ok(())
    } else {
        Err(SqlError::mismatch(format!(
            "argument of {what} must be type boolean, not type {}",
            types::type_display(&t.ty)
        )))
    }
}

fn family(t: &DataType) -> u8 {
    match t {
        t if t.is_numeric() => 1,
        t if t.is_string() => 2,
        DataType::Bool => 3,
        DataType::Bytea => 4,
        DataType::Date | DataType::Timestamp | DataType::TimestampTz => 5,
        DataType::Time => 6,
        DataType::Interval => 7,
        DataType::Array(elem) => 100 + family(elem),
        _ => 0,
    }
}

fn check_comparable(a: &DataType, b: &DataType, op: BinOp) -> Result<()> {
    if *a == DataType::Unknown || *b == DataType::Unknown || family(a) == family(b) {
        Ok(())
    } else {
        Err(SqlError::new(
            code::UNDEFINED_FUNCTION,
            format!(
                "operator does not exist: {} {} {}",
                types::type_display(a),
                op.symbol(),
                types::type_display(b)
            ),
        )
        .with_hint("No operator matches the given name and argument types. You might need to add explicit type casts."))
    }
}

fn arith_type(op: BinOp, a: &DataType, b: &DataType) -> Result<DataType> {
    use DataType as T;
    let err = || {
        SqlError::new(
            code::UNDEFINED_FUNCTION,
            format!(
                "operator does not exist: {} {} {}",
                types::type_display(a),
                op.symbol(),
                types::type_display(b)
            ),
        )
    };
    Ok(match (a, b) {
        (T::Unknown, T::Unknown) => T::Unknown,
        (x, y) if x.is_integer() && y.is_integer() => {
            if *x == T::Int8 || *y == T::Int8 {
                T::Int8
            } else if *x == T::Int4 || *y == T::Int4 {
                T::Int4
            } else {
                T::Int2
            }
        }
        (T::Float4, T::Float4)
            if matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div) =>
        {
            T::Float4
        }
        (x, y) if (x.is_float() || y.is_float()) && x.is_numeric() && y.is_numeric() => T::Float8,
        (x, y) if x.is_numeric() && y.is_numeric() => T::Numeric(None),
        (T::Date, y) if y.is_integer() && matches!(op, BinOp::Add | BinOp::Sub) => T::Date,
        (x, T::Date) if x.is_integer() && op == BinOp::Add => T::Date,
        (T::Date, T::Date) if op == BinOp::Sub => T::Int4,
        // A date meets a timestamp or an interval as a timestamp.
        (x, y) if family(x) == 5 && family(y) == 5 && op == BinOp::Sub => T::Interval,
        (x, T::Interval) if family(x) == 5 && matches!(op, BinOp::Add | BinOp::Sub) => {
            timestamp_of(x)
        }
        (T::Interval, y) if family(y) == 5 && op == BinOp::Add => timestamp_of(y),
        (T::Date, T::Time) | (T::Time, T::Date) if op == BinOp::Add => T::Timestamp,
        (T::Time, T::Interval) if matches!(op, BinOp::Add | BinOp::Sub) => T::Time,
        (T::Interval, T::Time) if op == BinOp::Add => T::Time,
        (T::Time, T::Time) if op == BinOp::Sub => T::Interval,
        (T::Interval, T::Interval) if matches!(op, BinOp::Add | BinOp::Sub) => T::Interval,
        (T::Interval, y) if y.is_numeric() && matches!(op, BinOp::Mul | BinOp::Div) => T::Interval,
        (x, T::Interval) if x.is_numeric() && op == BinOp::Mul => T::Interval,
        _ => return Err(err()),
    })
}

/// The type of `x + interval` for a date or timestamp type `x`.
fn timestamp_of(x: &DataType) -> DataType {
    match x {
        DataType::Date => DataType::Timestamp,
        other => other.clone(),
    }
}

/// The unit of EXTRACT or date_part over a value of type `ty`: 42883 if
/// the type has no such function, 22023 for an unknown unit.
fn datetime_unit(function: &str, name: &str, ty: &DataType) -> Result<DateTimeUnit> {
    use DataType as T;
    if !matches!(
        ty,
        T::Date | T::Time | T::Timestamp | T::TimestampTz | T::Interval
    ) {
        return Err(SqlError::new(
            code::UNDEFINED_FUNCTION,
            format!(
                "function {function}(unknown, {}) does not exist",
                types::type_display(ty)
            ),
        ));
    }
    DateTimeUnit::parse(name).ok_or_else(|| {
        SqlError::new(
            code::INVALID_PARAMETER_VALUE,
            format!(
                "unit \"{name}\" not recognized for type {}",
                types::type_display(ty)
            ),
        )
    })
}

/// The value of an `INTERVAL '...' [fields]` literal.
fn interval_literal(iv: &ast::Interval) -> Result<types::Interval> {
    let text = match iv.value.as_ref() {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) | ast::Value::Number(s, _) => s.clone(),
            other => return Err(SqlError::syntax(format!("bad interval value {other}"))),
        },
        other => {
            return Err(SqlError::unsupported(format!(
                "INTERVAL of an expression ({}); cast it with ::interval",
                first_words(&other.to_string())
            )))
        }
    };
    if iv.leading_precision.is_some() || iv.fractional_seconds_precision.is_some() {
        return Err(SqlError::unsupported(
            "INTERVAL with a precision is not supported yet",
        ));
    }
    let field = |f: &ast::DateTimeField| -> Result<DateTimeUnit> {
        use DateTimeUnit as U;
        match DateTimeUnit::parse(&f.to_string()) {
            Some(u @ (U::Year | U::Month | U::Day | U::Hour | U::Minute | U::Second)) => Ok(u),
            _ => Err(SqlError::syntax(format!("bad interval field {f}"))),
        }
    };
    let fields = match (&iv.leading_field, &iv.last_field) {
        (None, _) => None,
        (Some(first), last) => {
            let first = field(first)?;
            let last = last.as_ref().map(field).transpose()?.unwrap_or(first);
            use DateTimeUnit as U;
            let allowed = first == last
                || matches!(
                    (first, last),
                    (U::Year, U::Month)
                        | (U::Day, U::Hour | U::Minute | U::Second)
                        | (U::Hour, U::Minute | U::Second)
                        | (U::Minute, U::Second)
                );
            if !allowed {
                return Err(SqlError::syntax(format!(
                    "syntax error at or near \"{}\"",
                    last.name().to_uppercase()
                )));
            }
            Some(types::IntervalFields { first, last })
        }
    };
    types::parse_interval(&text, fields)
}

/// The type two branches of a UNION (or rows of VALUES) resolve to, as
/// PostgreSQL's rules pick it: an untyped side takes the other's type;
/// numbers widen (smallint < integer < bigint < numeric < real < double);
/// strings become text. None: the types cannot be matched.
fn common_type(a: &DataType, b: &DataType) -> Option<DataType> {
    use DataType as T;
    if a == b {
        return Some(a.clone());
    }
    if *a == T::Unknown {
        return Some(b.clone());
    }
    if *b == T::Unknown {
        return Some(a.clone());
    }
    if a.is_numeric() && b.is_numeric() {
        let rank = |t: &T| match t {
            T::Int2 => 0,
            T::Int4 => 1,
            T::Int8 | T::Oid => 2,
            T::Numeric(_) => 3,
            T::Float4 => 4,
            _ => 5,
        };
        let t = if rank(a) >= rank(b) { a } else { b };
        return Some(match t {
            T::Numeric(_) => T::Numeric(None),
            other => other.clone(),
        });
    }
    if a.is_string() && b.is_string() {
        return Some(T::Text);
    }
    if let (T::Array(x), T::Array(y)) = (a, b) {
        return Some(T::Array(Box::new(common_type(x, y)?)));
    }
    if family(a) == family(b) && family(a) == 5 {
        // date < timestamp < timestamptz
        return Some(if *a == T::TimestampTz || *b == T::TimestampTz {
            T::TimestampTz
        } else {
            T::Timestamp
        });
    }
    None
}

/// Whether a value of type `from` may be stored in a column of type `to`.
fn check_assignable(from: &DataType, to: &DataType, column: &str) -> Result<()> {
    let ok = *from == DataType::Unknown
        || family(from) == family(to)
        || (to.is_string() && *from != DataType::Bytea);
    if ok {
        Ok(())
    } else {
        Err(SqlError::mismatch(format!(
            "column \"{column}\" is of type {} but expression is of type {}",
            types::type_display(to),
            types::type_display(from)
        ))
        .with_hint("You will need to rewrite or cast the expression."))
    }
}

fn resolve_unknown(t: &DataType) -> DataType {
    if *t == DataType::Unknown {
        DataType::Text
    } else {
        t.clone()
    }
}

/// The column name PostgreSQL gives an unaliased select item.
fn output_name(e: &ast::Expr) -> String {
    figure_name(e).unwrap_or_else(|| "?column?".into())
}

/// PostgreSQL's rules for naming an unaliased output column: a column's
/// name, a function's name (also for the special call syntaxes such as
/// `SUBSTRING(... FROM ...)`, `TRIM`, `POSITION`), `case`, `exists`;
/// a cast takes the name of what it casts or, when that has none, the
/// type's name (`1::int` is `int4`). `None` for `?column?`.
fn figure_name(e: &ast::Expr) -> Option<String> {
    let type_name = |t: &ast::DataType| match data_type_cast(t) {
        Ok((ty, _)) => {
            let name = ty.sql_name();
            let base = name.split('(').next().unwrap_or_default();
            if base == "char" {
                "bpchar".into()
            } else {
                base.to_string()
            }
        }
        Err(_) => t.to_string().to_lowercase(),
    };
    Some(match e {
        ast::Expr::Identifier(i) => ident(i),
        ast::Expr::CompoundIdentifier(p) => p.last().map(ident)?,
        ast::Expr::Function(f) => f.name.0.last().and_then(|p| p.as_ident()).map(ident)?,
        ast::Expr::Cast {
            expr, data_type, ..
        } => match figure_name(expr) {
            Some(n) if !named_by_type(expr) => n,
            _ => type_name(data_type),
        },
        ast::Expr::Nested(inner) => figure_name(inner)?,
        ast::Expr::Value(v) if matches!(v.value, ast::Value::Boolean(_)) => "bool".into(),
        ast::Expr::Case { .. } => "case".into(),
        ast::Expr::Exists { negated: false, .. } => "exists".into(),
        ast::Expr::Interval(_) => "interval".into(),
        ast::Expr::TypedString(ts) => type_name(&ts.data_type),
        ast::Expr::Extract { .. } => "extract".into(),
        ast::Expr::AtTimeZone { .. } => "timezone".into(),
        ast::Expr::Substring { shorthand, .. } => {
            if *shorthand { "substr" } else { "substring" }.into()
        }
        ast::Expr::Trim { trim_where, .. } => match trim_where {
            Some(ast::TrimWhereField::Leading) => "ltrim",
            Some(ast::TrimWhereField::Trailing) => "rtrim",
            _ => "btrim",
        }
        .into(),
        ast::Expr::Position { .. } => "position".into(),
        ast::Expr::Ceil { .. } => "ceil".into(),
        ast::Expr::Floor { .. } => "floor".into(),
        ast::Expr::Overlay { .. } => "overlay".into(),
        ast::Expr::Array(_) => "array".into(),
        // `a[1]` is named after `a`.
        ast::Expr::CompoundFieldAccess { root, .. } => figure_name(root)?,
        // A scalar subquery: its (first) column's name.
        ast::Expr::Subquery(q) => query_first_name(q)?,
        _ => return None,
    })
}

/// The text of a string literal expression.
fn string_literal(e: &ast::Expr) -> Option<String> {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) | ast::Value::EscapedStringLiteral(s) => {
                Some(s.clone())
            }
            _ => None,
        },
        ast::Expr::Nested(inner) => string_literal(inner),
        _ => None,
    }
}

/// A LIKE pattern written with `ESCAPE esc` rewritten to the default
/// escape, the backslash (an empty `esc`: no escape character at all).
fn like_pattern_with_escape(pattern: &str, esc: &str) -> Result<String> {
    let mut chars = esc.chars();
    let esc = match (chars.next(), chars.next()) {
        (None, _) => None,
        (Some(c), None) => Some(c),
        _ => {
            return Err(
                SqlError::new(code::INVALID_ESCAPE_SEQUENCE, "invalid escape string")
                    .with_hint("Escape string must be empty or one character."),
            )
        }
    };
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        if Some(c) == esc {
            match it.next() {
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                // A trailing escape character stands for itself.
                None => {
                    out.push('\\');
                    out.push(c);
                }
            }
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

fn binop_expr(l: ast::Expr, op: ast::BinaryOperator, r: ast::Expr) -> ast::Expr {
    ast::Expr::Nested(Box::new(ast::Expr::BinaryOp {
        left: Box::new(l),
        op,
        right: Box::new(r),
    }))
}

fn or_expr(l: ast::Expr, r: ast::Expr) -> ast::Expr {
    binop_expr(l, ast::BinaryOperator::Or, r)
}

/// A comparison of two rows, `(a, b) op (x, y)`, as comparisons of their
/// fields: `=` all equal, `<>` any differs, `<` `<=` `>` `>=` ordered by
/// the first field that differs (as in PostgreSQL).
fn row_comparison(l: &[ast::Expr], op: &ast::BinaryOperator, r: &[ast::Expr]) -> Result<ast::Expr> {
    use ast::BinaryOperator as B;
    if l.len() != r.len() || l.is_empty() {
        return Err(SqlError::syntax(
            "unequal number of entries in row expressions",
        ));
    }
    let pairs = l.iter().cloned().zip(r.iter().cloned());
    let fold = |join: B, cmp: B| {
        pairs
            .clone()
            .map(|(a, b)| binop_expr(a, cmp.clone(), b))
            .reduce(|acc, e| binop_expr(acc, join.clone(), e))
            .expect("rows are not empty")
    };
    Ok(match op {
        B::Eq => fold(B::And, B::Eq),
        B::NotEq => fold(B::Or, B::NotEq),
        B::Lt | B::LtEq | B::Gt | B::GtEq => {
            let strict = if matches!(op, B::Lt | B::LtEq) {
                B::Lt
            } else {
                B::Gt
            };
            let mut fields: Vec<(ast::Expr, ast::Expr)> = pairs.collect();
            let (a, b) = fields.pop().expect("rows are not empty");
            let mut acc = binop_expr(a, op.clone(), b);
            while let Some((a, b)) = fields.pop() {
                let tie = binop_expr(binop_expr(a.clone(), B::Eq, b.clone()), B::And, acc);
                acc = or_expr(binop_expr(a, strict.clone(), b), tie);
            }
            acc
        }
        other => {
            return Err(SqlError::unsupported(format!(
                "operator {other} between rows"
            )))
        }
    })
}

/// A CHAR(n) value used as text loses its padding, as PostgreSQL's cast
/// from bpchar to text does (`'x'::char(3) || '|'` is `x|`).
fn char_as_text(t: Typed) -> Typed {
    if !matches!(t.ty, DataType::Char(_)) {
        return t;
    }
    Typed {
        e: Expr::Func(Func::Lib(crate::functions::LibFn::RTrim), vec![t.e]),
        ty: DataType::Text,
    }
}

/// Whether [`figure_name`] names `e` after a type (`true` is `bool`,
/// `1::int` is `int4`): an outer cast's type name replaces such a name.
fn named_by_type(e: &ast::Expr) -> bool {
    match e {
        ast::Expr::Value(v) => matches!(v.value, ast::Value::Boolean(_)),
        ast::Expr::TypedString(_) | ast::Expr::Interval(_) => true,
        ast::Expr::Cast { expr, .. } => named_by_type(expr) || figure_name(expr).is_none(),
        ast::Expr::Nested(inner) => named_by_type(inner),
        _ => false,
    }
}

/// The name of the first output column of `q` (the left-most SELECT's).
fn query_first_name(q: &ast::Query) -> Option<String> {
    let mut body = q.body.as_ref();
    loop {
        match body {
            ast::SetExpr::Select(s) => {
                return match s.projection.first()? {
                    ast::SelectItem::UnnamedExpr(e) => figure_name(e),
                    ast::SelectItem::ExprWithAlias { alias, .. } => Some(ident(alias)),
                    _ => None,
                };
            }
            ast::SetExpr::SetOperation { left, .. } => body = left,
            ast::SetExpr::Query(q) => body = q.body.as_ref(),
            _ => return None,
        }
    }
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(4).collect::<Vec<_>>().join(" ")
}

/// After aggregation, the row is `groups ++ aggregates`: rewrites an
/// expression bound over the input row into one over that row.
fn map_to_groups(e: Expr, groups: &[Expr], ngroups: usize, scope: &Scope) -> Result<Expr> {
    if let Some(i) = groups.iter().position(|g| *g == e) {
        return Ok(Expr::Column(i));
    }
    match e {
        Expr::AggRef(i) => Ok(Expr::Column(ngroups + i)),
        Expr::WindowRef(_) => Ok(e),
        Expr::Column(c) => {
            let name = scope
                .cols
                .get(c)
                .map(|sc| match &sc.table {
                    Some(t) => format!("{t}.{}", sc.name),
                    None => sc.name.clone(),
                })
                .unwrap_or_default();
            Err(SqlError::new(
                code::GROUPING_ERROR,
                format!("column \"{name}\" must appear in the GROUP BY clause or be used in an aggregate function"),
            ))
        }
        Expr::Literal(_) | Expr::Param(_) => Ok(e),
        Expr::Neg(x) => Ok(Expr::Neg(Box::new(map_to_groups(
            *x, groups, ngroups, scope,
        )?))),
        Expr::Not(x) => Ok(Expr::Not(Box::new(map_to_groups(
            *x, groups, ngroups, scope,
        )?))),
        Expr::IsNull(x, n) => Ok(Expr::IsNull(
            Box::new(map_to_groups(*x, groups, ngroups, scope)?),
            n,
        )),
        Expr::IsBool(x, v, n) => Ok(Expr::IsBool(
            Box::new(map_to_groups(*x, groups, ngroups, scope)?),
            v,
            n,
        )),
        Expr::Cast(x, t) => Ok(Expr::Cast(
            Box::new(map_to_groups(*x, groups, ngroups, scope)?),
            t,
        )),
        Expr::Binary(op, l, r) => Ok(Expr::binary(
            op,
            map_to_groups(*l, groups, ngroups, scope)?,
            map_to_groups(*r, groups, ngroups, scope)?,
        )),
        Expr::Like(l, r, n, ci) => Ok(Expr::Like(
            Box::new(map_to_groups(*l, groups, ngroups, scope)?),
            Box::new(map_to_groups(*r, groups, ngroups, scope)?),
            n,
            ci,
        )),
        Expr::InList(x, list, n) => Ok(Expr::InList(
            Box::new(map_to_groups(*x, groups, ngroups, scope)?),
            list.into_iter()
                .map(|i| map_to_groups(i, groups, ngroups, scope))
                .collect::<Result<_>>()?,
            n,
        )),
        Expr::Case {
            operand,
            whens,
            otherwise,
        } => Ok(Expr::Case {
            operand: operand
                .map(|o| map_to_groups(*o, groups, ngroups, scope).map(Box::new))
                .transpose()?,
            whens: whens
                .into_iter()
                .map(|(w, t)| {
                    Ok((
                        map_to_groups(w, groups, ngroups, scope)?,
                        map_to_groups(t, groups, ngroups, scope)?,
                    ))
                })
                .collect::<Result<_>>()?,
            otherwise: otherwise
                .map(|o| map_to_groups(*o, groups, ngroups, scope).map(Box::new))
                .transpose()?,
        }),
        Expr::Func(f, args) => Ok(Expr::Func(
            f,
            args.into_iter()
                .map(|a| map_to_groups(a, groups, ngroups, scope))
                .collect::<Result<_>>()?,
        )),
        Expr::OuterRef(_) => Ok(e),
        Expr::Subquery {
            kind,
            lhs,
            plan,
            args,
        } => Ok(Expr::Subquery {
            kind,
            lhs: lhs
                .map(|l| map_to_groups(*l, groups, ngroups, scope).map(Box::new))
                .transpose()?,
            plan,
            args: args
                .into_iter()
                .map(|a| map_to_groups(a, groups, ngroups, scope))
                .collect::<Result<_>>()?,
        }),
    }
}

// ---------------------------------------------------------------------------
// Planning

/// Splits a predicate into its AND-ed parts.
pub fn conjuncts(e: Expr) -> Vec<Expr> {
    match e {
        Expr::Binary(BinOp::And, l, r) => {
            let mut v = conjuncts(*l);
            v.extend(conjuncts(*r));
            v
        }
        other => vec![other],
    }
}

fn and_all(parts: Vec<Expr>) -> Option<Expr> {
    parts
        .into_iter()
        .reduce(|a, b| Expr::binary(BinOp::And, a, b))
}

fn shift_columns(e: Expr, by: usize) -> Expr {
    e.transform(&mut |x| {
        Ok(match x {
            Expr::Column(i) => Expr::Column(i - by),
            other => other,
        })
    })
    .expect("shifting columns cannot fail")
}

/// Pushes a predicate as far down as it can go: into a scan (where it can
/// become a key range), or through inner joins to the side whose columns
/// it reads.
fn push_filter(plan: Plan, pred: Expr) -> Plan {
    let mut plan = plan;
    let mut rest = Vec::new();
    for c in conjuncts(pred) {
        plan = match try_push(plan, c) {
            (p, None) => p,
            (p, Some(c)) => {
                rest.push(c);
                p
            }
        };
    }
    let plan = match plan {
        Plan::Scan { table, filter, .. } => {
            let range = filter
                .as_ref()
                .map(|f| choose_range(&table, f))
                .unwrap_or(KeyRange::Full);
            Plan::Scan {
                table,
                range,
                filter,
            }
        }
        other => finalize_ranges(other),
    };
    match and_all(rest) {
        Some(p) => Plan::Filter {
            input: Box::new(plan),
            predicate: p,
        },
        None => plan,
    }
}

fn finalize_ranges(plan: Plan) -> Plan {
    match plan {
        Plan::Scan { table, filter, .. } => {
            let range = filter
                .as_ref()
                .map(|f| choose_range(&table, f))
                .unwrap_or(KeyRange::Full);
            Plan::Scan {
                table,
                range,
                filter,
            }
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
        } => Plan::Join {
            left: Box::new(finalize_ranges(*left)),
            right: Box::new(finalize_ranges(*right)),
            kind,
            left_keys,
            right_keys,
            on,
            left_width,
            right_width,
        },
        Plan::Lateral {
            left,
            sub,
            args,
            on,
            outer,
            right_width,
        } => Plan::Lateral {
            left: Box::new(finalize_ranges(*left)),
            sub,
            args,
            on,
            outer,
            right_width,
        },
        other => other,
    }
}

/// Tries to push one conjunct into `plan`; returns it back if it cannot.
fn try_push(plan: Plan, c: Expr) -> (Plan, Option<Expr>) {
    match plan {
        Plan::Scan {
            table,
            range,
            filter,
        } => {
            let filter = Some(match filter {
                Some(f) => Expr::binary(BinOp::And, f, c),
                None => c,
            });
            (
                Plan::Scan {
                    table,
                    range,
                    filter,
                },
                None,
            )
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
            let lw = left_width;
            let mut uses_left = false;
            let mut uses_right = false;
            c.visit_columns(&mut |i| {
                if i < lw {
                    uses_left = true
                } else {
                    uses_right = true
                }
            });
            // A conjunct joining the two sides of an inner join becomes
            // part of it (a hash key if it is an equality of one side's
            // expression with the other's), so a comma join never builds
            // the whole cross product before filtering it.
            if uses_left && uses_right && kind == JoinKind::Inner && !has_subquery(&c) {
                let (mut left_keys, mut right_keys, mut on) = (left_keys, right_keys, on);
                match split_equality(&c, lw) {
                    Some((l, r)) => {
                        left_keys.push(l);
                        right_keys.push(r);
                    }
                    None => {
                        on = Some(match on {
                            Some(o) => Expr::binary(BinOp::And, o, c),
                            None => c,
                        })
                    }
                }
                return (
                    Plan::Join {
                        left,
                        right,
                        kind,
                        left_keys,
                        right_keys,
                        on,
                        left_width,
                        right_width,
                    },
                    None,
                );
            }
            let rebuild = |left, right| Plan::Join {
                left: Box::new(left),
                right: Box::new(right),
                kind,
                left_keys: left_keys.clone(),
                right_keys: right_keys.clone(),
                on: on.clone(),
                left_width,
                right_width,
            };
            // A WHERE conjunct may move below a join only to a side whose
            // rows the join does not pad with NULLs.
            if uses_left && !uses_right && matches!(kind, JoinKind::Inner | JoinKind::Left) {
                let (l, back) = try_push(*left, c);
                (rebuild(l, *right), back)
            } else if uses_right && !uses_left && kind == JoinKind::Inner {
                let (r, back) = try_push(*right, shift_columns(c, lw));
                (rebuild(*left, r), back.map(|b| shift_columns_back(b, lw)))
            } else {
                (rebuild(*left, *right), Some(c))
            }
        }
        other => (other, Some(c)),
    }
}

fn has_subquery(e: &Expr) -> bool {
    let mut found = false;
    e.walk(&mut |x| found |= matches!(x, Expr::Subquery { .. }));
    found
}

/// `a = b` where one side reads only columns below `left_width` and the
/// other only columns at or above it: (left expression, right expression
/// shifted to the right side's own columns).
fn split_equality(c: &Expr, left_width: usize) -> Option<(Expr, Expr)> {
    let Expr::Binary(BinOp::Eq, a, b) = c else {
        return None;
    };
    let side = |e: &Expr| -> Option<bool> {
        let (mut left, mut right) = (false, false);
        e.visit_columns(&mut |i| {
            if i < left_width {
                left = true
            } else {
                right = true
            }
        });
        match (left, right) {
            (true, false) => Some(true),
            (false, true) => Some(false),
            _ => None,
        }
    };
    match (side(a), side(b)) {
        (Some(true), Some(false)) => {
            Some(((**a).clone(), shift_columns((**b).clone(), left_width)))
        }
        (Some(false), Some(true)) => {
            Some(((**b).clone(), shift_columns((**a).clone(), left_width)))
        }
        _ => None,
    }
}

fn shift_columns_back(e: Expr, by: usize) -> Expr {
    e.transform(&mut |x| {
        Ok(match x {
            Expr::Column(i) => Expr::Column(i + by),
            other => other,
        })
    })
    .expect("shifting columns cannot fail")
}

/// Whether a constant of type `v` can address a key column of type `col`
/// exactly (so its key encoding is the column's).
fn key_compatible(col: &DataType, v: &Expr) -> bool {
    let vt = match v {
        Expr::Literal(Datum::Int(_)) => DataType::Int8,
        Expr::Literal(Datum::Float(_)) => DataType::Float8,
        Expr::Literal(Datum::Decimal(_)) => DataType::Numeric(None),
        Expr::Literal(Datum::Text(_)) => DataType::Text,
        Expr::Literal(Datum::Bool(_)) => DataType::Bool,
        Expr::Literal(Datum::Bytes(_)) => DataType::Bytea,
        Expr::Literal(Datum::Date(_)) => DataType::Date,
        Expr::Literal(Datum::Timestamp(_)) => DataType::Timestamp,
        Expr::Literal(Datum::Time(_)) => DataType::Time,
        Expr::Literal(Datum::Interval(_)) => DataType::Interval,
        Expr::Cast(_, t) => t.clone(),
        // Parameters are typed by inference or by the client; the executor
        // converts their values to the column type and checks exactness.
        Expr::Param(_) => return true,
        _ => return false,
    };
    match col {
        c if c.is_integer() => vt.is_integer(),
        c if c.is_float() => vt.is_float() || vt.is_integer(),
        DataType::Numeric(_) => vt.is_numeric() && !vt.is_float(),
        c if c.is_string() => vt.is_string(),
        DataType::Bool => vt == DataType::Bool,
        DataType::Bytea => vt == DataType::Bytea,
        DataType::Date => vt == DataType::Date,
        DataType::Timestamp | DataType::TimestampTz => {
            matches!(vt, DataType::Timestamp | DataType::TimestampTz)
        }
        DataType::Time => vt == DataType::Time,
        DataType::Interval => vt == DataType::Interval,
        _ => false,
    }
}

/// Picks the key range a scan of `table` needs to evaluate `filter`: the
/// primary key if the filter constrains it, else the first secondary index
/// whose leading column it constrains, else a full scan.
pub fn choose_range(table: &TableDesc, filter: &Expr) -> KeyRange {
    let r = choose_on(table, &table.primary_key, filter);
    if r != KeyRange::Full {
        return r;
    }
    for idx in &table.indexes {
        let r = choose_on(table, &idx.columns, filter);
        if r != KeyRange::Full {
            return KeyRange::Index {
                index_id: idx.id,
                range: Box::new(r),
            };
        }
    }
    KeyRange::Full
}

/// The key range over the index on columns `pk` (positions) that `filter`
/// needs.
fn choose_on(table: &TableDesc, pk: &[usize], filter: &Expr) -> KeyRange {
    let n = pk.len();
    let mut eq: Vec<Option<Expr>> = vec![None; n];
    let mut lower: Vec<Option<(Expr, bool)>> = vec![None; n];
    let mut upper: Vec<Option<(Expr, bool)>> = vec![None; n];
    let mut inlist: Vec<Option<Vec<Expr>>> = vec![None; n];
    for c in conjuncts(filter.clone()) {
        match &c {
            Expr::Binary(op, a, b) if op.is_comparison() && *op != BinOp::NotEq => {
                let (col, val, op) = match (a.as_ref(), b.as_ref()) {
                    (Expr::Column(i), v) if v.is_constant() => (*i, v.clone(), *op),
                    (v, Expr::Column(i)) if v.is_constant() => (*i, v.clone(), op.flip()),
                    _ => continue,
                };
                let Some(k) = pk.iter().position(|p| *p == col) else {
                    continue;
                };
                if !key_compatible(&table.columns[col].ty, &val) {
                    continue;
                }
                match op {
                    BinOp::Eq => eq[k] = Some(val),
                    BinOp::Gt => lower[k] = Some((val, false)),
                    BinOp::GtEq => lower[k] = Some((val, true)),
                    BinOp::Lt => upper[k] = Some((val, false)),
                    BinOp::LtEq => upper[k] = Some((val, true)),
                    _ => {}
                }
            }
            Expr::InList(x, list, false) => {
                if let Expr::Column(col) = x.as_ref() {
                    if let Some(k) = pk.iter().position(|p| p == col) {
                        if list
                            .iter()
                            .all(|v| v.is_constant() && key_compatible(&table.columns[*col].ty, v))
                        {
                            inlist[k] = Some(list.clone());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let mut prefix = Vec::new();
    for v in &eq {
        match v {
            Some(v) => prefix.push(v.clone()),
            None => break,
        }
    }
    if n > 0 && prefix.len() == n {
        return KeyRange::Points(vec![prefix]);
    }
    let k = prefix.len();
    if k + 1 == n {
        if let Some(list) = &inlist[k] {
            return KeyRange::Points(
                list.iter()
                    .map(|v| {
                        let mut p = prefix.clone();
                        p.push(v.clone());
                        p
                    })
                    .collect(),
            );
        }
    }
    if k < n && (k > 0 || lower[k].is_some() || upper[k].is_some()) {
        return KeyRange::Span {
            prefix,
            lower: lower[k].clone(),
            upper: upper[k].clone(),
        };
    }
    KeyRange::Full
}

// ---------------------------------------------------------------------------
// EXPLAIN

fn show_value(e: &Expr) -> String {
    match e {
        Expr::Literal(Datum::Text(s)) => format!("'{s}'"),
        Expr::Literal(d) => types::format_datum(d, &DataType::Unknown).unwrap_or("NULL".into()),
        Expr::Param(i) => format!("${}", i + 1),
        Expr::Cast(x, _) => show_value(x),
        Expr::Neg(x) => format!("-{}", show_value(x)),
        _ => "?".into(),
    }
}

/// The spans a key range covers, for humans: `/Table/104/1/42`,
/// `[/Table/104/1/10 - /Table/104/1/20]`.
pub fn describe_range(table: &TableDesc, range: &KeyRange) -> String {
    describe_on(table, encoding::PRIMARY_INDEX_ID, range)
}

/// The name of an index of `table` (`primary` for the rows).
pub fn index_name(table: &TableDesc, index_id: u64) -> String {
    table
        .indexes
        .iter()
        .find(|i| i.id == index_id)
        .map(|i| i.name.clone())
        .unwrap_or_else(|| "primary".into())
}

fn describe_on(table: &TableDesc, index_id: u64, range: &KeyRange) -> String {
    let base = encoding::pretty_key(&encoding::index_prefix(table.id, index_id));
    let key = |vals: &[Expr]| {
        let mut s = base.clone();
        for v in vals {
            s.push('/');
            s.push_str(&show_value(v));
        }
        s
    };
    match range {
        KeyRange::Full => format!("FULL SCAN [{base} - {base}/Max)"),
        KeyRange::Index { index_id, range } => describe_on(table, *index_id, range),
        KeyRange::Points(points) => points.iter().map(|p| key(p)).collect::<Vec<_>>().join(", "),
        KeyRange::Span {
            prefix,
            lower,
            upper,
        } => {
            let p = key(prefix);
            let lo = match lower {
                Some((v, incl)) => {
                    format!("{}{p}/{}", if *incl { "[" } else { "(" }, show_value(v))
                }
                None => format!("[{p}"),
            };
            let hi = match upper {
                Some((v, incl)) => {
                    format!("{p}/{}{}", show_value(v), if *incl { "]" } else { ")" })
                }
                None => format!("{p}/Max)"),
            };
            format!("{lo} - {hi}")
        }
    }
}

fn explain_plan(plan: &Plan, depth: usize, out: &mut Vec<String>) {
    let pad = "  ".repeat(depth);
    match plan {
        Plan::Recursive {
            anchor,
            recursive,
            all,
            ..
        } => {
            let all = if *all { " all" } else { "" };
            out.push(format!("{pad}recursive union{all}"));
            explain_plan(anchor, depth + 1, out);
            explain_plan(recursive, depth + 1, out);
        }
        Plan::WorkTable { .. } => out.push(format!("{pad}work table (previous round)")),
        Plan::Window { input, calls } => {
            out.push(format!("{pad}window ({} functions)", calls.len()));
            explain_plan(input, depth + 1, out);
        }
        Plan::Scan {
            table,
            range,
            filter,
        } => {
            let kind = |r: &KeyRange| match r {
                KeyRange::Full => "full scan",
                KeyRange::Points(_) => "point lookup",
                KeyRange::Span { .. } | KeyRange::Index { .. } => "span scan",
            };
            if let KeyRange::Index { index_id, range: r } = range {
                out.push(format!(
                    "{pad}index join {}@primary (lookup of each row found)",
                    table.name
                ));
                out.push(format!(
                    "{pad}  scan {}@{} ({})",
                    table.name,
                    index_name(table, *index_id),
                    match **r {
                        // Entries carry the primary key after the value.
                        KeyRange::Points(_) => "lookup by value",
                        _ => kind(r),
                    }
                ));
                out.push(format!("{pad}    spans: {}", describe_range(table, range)));
            } else {
                out.push(format!(
                    "{pad}scan {}@primary ({})",
                    table.name,
                    kind(range)
                ));
                out.push(format!("{pad}  spans: {}", describe_range(table, range)));
            }
            if filter.is_some() {
                out.push(format!("{pad}  filter: yes"));
            }
        }
        Plan::Values { rows } => out.push(format!("{pad}values ({} rows)", rows.len())),
        Plan::Filter { input, .. } => {
            out.push(format!("{pad}filter"));
            explain_plan(input, depth + 1, out);
        }
        Plan::Project { input, exprs } => {
            out.push(format!("{pad}project ({} columns)", exprs.len()));
            explain_plan(input, depth + 1, out);
        }
        Plan::Join {
            left, right, kind, ..
        } => {
            let k = match kind {
                JoinKind::Inner => "inner",
                JoinKind::Left => "left",
                JoinKind::Right => "right",
                JoinKind::Full => "full",
            };
            let algo = |s: &JoinStrategy| match s {
                JoinStrategy::NestedLoop => "nested loop",
                JoinStrategy::Hash => "hash",
                JoinStrategy::Merge => "merge",
                JoinStrategy::Lookup { .. } => "lookup",
            };
            match join_strategy(plan) {
                JoinStrategy::Lookup { then, .. } => {
                    let table = match right.as_ref() {
                        Plan::Scan { table, .. } => table.name.clone(),
                        _ => String::new(),
                    };
                    out.push(format!(
                        "{pad}lookup join ({k}) into {table}@primary (point lookups for at \
                         most {LOOKUP_JOIN_LIMIT} left rows, else a full scan; then {})",
                        algo(&then)
                    ));
                }
                s => out.push(format!("{pad}{} join ({k})", algo(&s))),
            }
            explain_plan(left, depth + 1, out);
            explain_plan(right, depth + 1, out);
        }
        Plan::Aggregate {
            input,
            groups,
            aggs,
            sets,
        } => {
            out.push(format!(
                "{pad}aggregate ({} groups keys, {} aggregates{})",
                groups.len(),
                aggs.len(),
                if sets.is_empty() {
                    String::new()
                } else {
                    format!(", {} grouping sets", sets.len())
                }
            ));
            explain_plan(input, depth + 1, out);
        }
        Plan::Sort { input, keys } => {
            out.push(format!("{pad}sort ({} keys)", keys.len()));
            explain_plan(input, depth + 1, out);
        }
        Plan::Distinct { input } => {
            out.push(format!("{pad}distinct"));
            explain_plan(input, depth + 1, out);
        }
        Plan::DistinctOn { input, keys } => {
            out.push(format!("{pad}distinct on ({} keys)", keys.len()));
            explain_plan(input, depth + 1, out);
        }
        Plan::Series { args } if args.len() == 1 => out.push(format!("{pad}unnest")),
        Plan::Series { .. } => out.push(format!("{pad}generate_series")),
        Plan::Unnest { .. } => out.push(format!("{pad}unnest")),
        Plan::ProjectSet { input, exprs, srfs } => {
            out.push(format!(
                "{pad}project set ({} columns, {} set-returning)",
                exprs.len(),
                srfs.len()
            ));
            explain_plan(input, depth + 1, out);
        }
        Plan::Lateral {
            left, sub, outer, ..
        } => {
            out.push(format!(
                "{pad}lateral join{} (the subquery runs per left row)",
                if *outer { " (left)" } else { "" }
            ));
            explain_plan(left, depth + 1, out);
            explain_plan(&sub.plan, depth + 1, out);
        }
        Plan::SetOp {
            op,
            all,
            left,
            right,
        } => {
            let name = match op {
                SetOpKind::Union => "union",
                SetOpKind::Intersect => "intersect",
                SetOpKind::Except => "except",
            };
            out.push(format!("{pad}{name}{}", if *all { " all" } else { "" }));
            explain_plan(left, depth + 1, out);
            explain_plan(right, depth + 1, out);
        }
        Plan::Limit {
            input,
            limit,
            offset,
        } => {
            let show = |e: &Option<Expr>| e.as_ref().map(show_value).unwrap_or("ALL".into());
            out.push(format!(
                "{pad}limit {} offset {}",
                show(limit),
                show(offset)
            ));
            explain_plan(input, depth + 1, out);
        }
    }
}

/// The lines of EXPLAIN for a bound statement.
pub fn explain(b: &Bound) -> Vec<String> {
    let mut out = Vec::new();
    let scan_line = |out: &mut Vec<String>, table: &TableDesc, range: &KeyRange| {
        let idx = match range {
            KeyRange::Index { index_id, .. } => index_name(table, *index_id),
            _ => "primary".into(),
        };
        out.push(format!("  scan {}@{idx}", table.name));
        out.push(format!("    spans: {}", describe_range(table, range)));
    };
    match b {
        Bound::Query(q) => explain_plan(&q.plan, 0, &mut out),
        Bound::Insert(i) => {
            out.push(format!("insert into {}", i.table.name));
            match &i.on_conflict {
                Some(OnConflict::DoNothing) => out.push("  on conflict: do nothing".into()),
                Some(OnConflict::DoUpdate { .. }) => out.push("  on conflict: do update".into()),
                None => {}
            }
            match &i.source {
                InsertSource::Values(rows) => out.push(format!("  values ({} rows)", rows.len())),
                InsertSource::Query(p) => explain_plan(p, 1, &mut out),
            }
        }
        Bound::Update(u) => {
            out.push(format!("update {}", u.table.name));
            scan_line(&mut out, &u.table, &u.range);
            if let Some(from) = &u.from {
                out.push("  from:".into());
                explain_plan(from, 2, &mut out);
            }
        }
        Bound::Delete(d) => {
            out.push(format!("delete from {}", d.table.name));
            scan_line(&mut out, &d.table, &d.range);
        }
        Bound::Explain(inner) | Bound::ExplainAnalyze(inner) => out = explain(inner),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Column;

    fn table() -> Arc<TableDesc> {
        let col = |id: u32, name: &str, ty: DataType| Column {
            id,
            name: name.into(),
            ty,
            nullable: true,
            default: None,
            hidden: false,
            serial: false,
            identity: crate::catalog::Identity::None,
        };
        Arc::new(TableDesc {
            name: "t".into(),
            id: 104,
            columns: vec![
                col(1, "a", DataType::Int4),
                col(2, "b", DataType::Text),
                col(3, "v", DataType::Int8),
            ],
            primary_key: vec![0, 1],
            seq_id: 105,
            next_column_id: 4,
            indexes: vec![],
            next_index_id: 2,
            checks: vec![],
            fks: vec![],
            inbound: vec![],
        })
    }

    fn plan(sql: &str) -> Bound {
        let stmts =
            sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::PostgreSqlDialect {}, sql)
                .unwrap();
        let mut tables = HashMap::new();
        tables.insert("t".to_string(), table());
        let mut b = Binder::new(&tables, vec![]);
        b.bind_statement(&stmts[0]).unwrap()
    }

    fn scan_range(b: &Bound) -> KeyRange {
        fn find(p: &Plan) -> Option<KeyRange> {
            match p {
                Plan::Scan { range, .. } => Some(range.clone()),
                Plan::Filter { input, .. }
                | Plan::Project { input, .. }
                | Plan::ProjectSet { input, .. }
                | Plan::Aggregate { input, .. }
                | Plan::Sort { input, .. }
                | Plan::Distinct { input }
                | Plan::DistinctOn { input, .. }
                | Plan::Limit { input, .. } => find(input),
                Plan::Join { left, .. } | Plan::SetOp { left, .. } | Plan::Lateral { left, .. } => {
                    find(left)
                }
                Plan::Recursive { anchor, .. } => find(anchor),
                Plan::Window { input, .. } => find(input),
                Plan::Values { .. }
                | Plan::Series { .. }
                | Plan::Unnest { .. }
                | Plan::WorkTable { .. } => None,
            }
        }
        match b {
            Bound::Query(q) => find(&q.plan).unwrap(),
            Bound::Update(u) => u.range.clone(),
            Bound::Delete(d) => d.range.clone(),
            _ => panic!("no scan"),
        }
    }

    #[test]
    fn a_secondary_index_serves_predicates_on_its_leading_column() {
        let mut t = (*table()).clone();
        t.indexes.push(crate::catalog::IndexDesc {
            name: "t_v_idx".into(),
            id: 2,
            columns: vec![2, 1],
            unique: false,
        });
        let t = Arc::new(t);
        let bind = |sql: &str| {
            let stmts = sqlparser::parser::Parser::parse_sql(
                &sqlparser::dialect::PostgreSqlDialect {},
                sql,
            )
            .unwrap();
            let mut tables = HashMap::new();
            tables.insert("t".to_string(), t.clone());
            Binder::new(&tables, vec![])
                .bind_statement(&stmts[0])
                .unwrap()
        };
        let b = bind("SELECT * FROM t WHERE v = 7");
        match scan_range(&b) {
            KeyRange::Index { index_id: 2, range } => assert!(
                matches!(&*range, KeyRange::Span { prefix, lower: None, upper: None } if prefix.len() == 1),
                "{range:?}"
            ),
            other => panic!("{other:?}"),
        }
        let b = bind("DELETE FROM t WHERE v > 7 AND v <= 9");
        assert!(matches!(
            scan_range(&b),
            KeyRange::Index { index_id: 2, range } if matches!(*range, KeyRange::Span { .. })
        ));
        // The primary key wins; a predicate on a non-leading column of the
        // index does not use it.
        let b = bind("SELECT * FROM t WHERE a = 1 AND v = 7");
        assert!(matches!(scan_range(&b), KeyRange::Span { .. }));
        let b = bind("SELECT * FROM t WHERE b = 'x'");
        assert_eq!(scan_range(&b), KeyRange::Full);
        let lines = explain(&bind("EXPLAIN SELECT * FROM t WHERE v = 7")).join("\n");
        assert!(lines.contains("scan t@t_v_idx"), "{lines}");
        assert!(lines.contains("/Table/104/2/7"), "{lines}");
    }

    #[test]
    fn equality_on_the_whole_key_is_a_point_lookup() {
        let r = scan_range(&plan("SELECT v FROM t WHERE a = 1 AND b = 'x'"));
        assert_eq!(
            r,
            KeyRange::Points(vec![vec![
                Expr::Literal(Datum::Int(1)),
                Expr::Literal(Datum::Text("x".into()))
            ]])
        );
        let r = scan_range(&plan("UPDATE t SET v = v + 1 WHERE b = $2 AND $1 = a"));
        assert_eq!(
            r,
            KeyRange::Points(vec![vec![Expr::Param(0), Expr::Param(1)]])
        );
    }

    #[test]
    fn key_prefix_and_bounds_become_a_span() {
        let r = scan_range(&plan("SELECT * FROM t WHERE a = 3"));
        assert!(
            matches!(r, KeyRange::Span { ref prefix, lower: None, upper: None } if prefix.len() == 1)
        );
        let r = scan_range(&plan("DELETE FROM t WHERE a BETWEEN 10 AND 20"));
        match r {
            KeyRange::Span {
                prefix,
                lower: Some((lo, true)),
                upper: Some((hi, true)),
            } => {
                assert!(prefix.is_empty());
                assert_eq!(lo, Expr::Literal(Datum::Int(10)));
                assert_eq!(hi, Expr::Literal(Datum::Int(20)));
            }
            other => panic!("{other:?}"),
        }
        let r = scan_range(&plan("SELECT * FROM t WHERE a > 5"));
        assert!(matches!(
            r,
            KeyRange::Span {
                lower: Some((_, false)),
                upper: None,
                ..
            }
        ));
    }

    #[test]
    fn predicates_off_the_key_scan_everything() {
        assert_eq!(
            scan_range(&plan("SELECT * FROM t WHERE v = 1")),
            KeyRange::Full
        );
        assert_eq!(
            scan_range(&plan("SELECT * FROM t WHERE b = 'x'")),
            KeyRange::Full
        );
        assert_eq!(
            scan_range(&plan("SELECT * FROM t WHERE a = 1 OR a = 2")),
            KeyRange::Full
        );
        // A fractional constant cannot address an integer key exactly.
        assert_eq!(
            scan_range(&plan("SELECT * FROM t WHERE a = 1.5")),
            KeyRange::Full
        );
    }

    #[test]
    fn explain_shows_the_spans() {
        let lines = explain(&plan("SELECT v FROM t WHERE a = 7 AND b = 'k'"));
        let text = lines.join("\n");
        assert!(text.contains("point lookup"), "{text}");
        assert!(text.contains("/Table/104/1/7/'k'"), "{text}");
        let text = explain(&plan("SELECT * FROM t WHERE a >= 2 AND a < 9")).join("\n");
        assert!(text.contains("[/Table/104/1/2 - /Table/104/1/9)"), "{text}");
    }

    #[test]
    fn parameter_types_are_inferred_from_context() {
        let stmts = sqlparser::parser::Parser::parse_sql(
            &sqlparser::dialect::PostgreSqlDialect {},
            "UPDATE t SET v = v + $1 WHERE a = $2 AND b = $3",
        )
        .unwrap();
        let mut tables = HashMap::new();
        tables.insert("t".to_string(), table());
        let mut b = Binder::new(&tables, vec![]);
        b.bind_statement(&stmts[0]).unwrap();
        assert_eq!(
            b.param_types(),
            vec![DataType::Int8, DataType::Int4, DataType::Text]
        );
    }

    #[test]
    fn binder_reports_postgres_errors() {
        let mut tables = HashMap::new();
        tables.insert("t".to_string(), table());
        let err = |sql: &str| {
            let stmts = sqlparser::parser::Parser::parse_sql(
                &sqlparser::dialect::PostgreSqlDialect {},
                sql,
            )
            .unwrap();
            Binder::new(&tables, vec![])
                .bind_statement(&stmts[0])
                .unwrap_err()
                .code
        };
        assert_eq!(err("SELECT * FROM nope"), "42P01");
        assert_eq!(err("SELECT nope FROM t"), "42703");
        assert_eq!(err("SELECT v FROM t GROUP BY a"), "42803");
        assert_eq!(err("SELECT * FROM t WHERE a = 'abc'"), "22P02");
        assert_eq!(
            err("INSERT INTO t (a, b, v) VALUES (1, 'x', true)"),
            "42804"
        );
        assert_eq!(err("SELECT * FROM t WHERE count(*) > 1"), "42803");
    }
}
