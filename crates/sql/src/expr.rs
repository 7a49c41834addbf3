//! Bound scalar expressions and their evaluation.
//!
//! The binder turns sqlparser's AST into [`Expr`]: names are resolved to
//! column positions in the input row, parameters to their index, literals
//! to typed [`Datum`]s, functions to [`Func`]. Evaluation is a plain
//! recursive interpreter over a row, with SQL's three-valued logic (NULL
//! propagates; `AND`/`OR` follow Kleene logic).

use std::cmp::Ordering;
use std::sync::Arc;

use crate::error::{code, Result, SqlError};
use crate::types::{self, DataType, DateTimeUnit, Datum, Decimal, MICROS_PER_DAY};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Concat,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    And,
    Or,
    IsDistinctFrom,
    IsNotDistinctFrom,
}

impl BinOp {
    pub fn symbol(&self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Concat => "||",
            BinOp::Eq => "=",
            BinOp::NotEq => "<>",
            BinOp::Lt => "<",
            BinOp::LtEq => "<=",
            BinOp::Gt => ">",
            BinOp::GtEq => ">=",
            BinOp::And => "AND",
            BinOp::Or => "OR",
            BinOp::IsDistinctFrom => "IS DISTINCT FROM",
            BinOp::IsNotDistinctFrom => "IS NOT DISTINCT FROM",
        }
    }

    pub fn is_comparison(&self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::NotEq | BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq
        )
    }

    /// The operator with its operands swapped (`a < b` is `b > a`).
    pub fn flip(&self) -> BinOp {
        match self {
            BinOp::Lt => BinOp::Gt,
            BinOp::LtEq => BinOp::GtEq,
            BinOp::Gt => BinOp::Lt,
            BinOp::GtEq => BinOp::LtEq,
            other => *other,
        }
    }
}

/// Scalar functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Lower,
    Upper,
    Length,
    Abs,
    Coalesce,
    NullIf,
    Now,
    CurrentDate,
    Version,
    CurrentDatabase,
    CurrentSchema,
    /// current_user, session_user, user, current_role.
    CurrentUser,
    /// `current_setting(name [, missing_ok])`: what SHOW name says.
    CurrentSetting,
    /// `set_config(name, value, is_local)`: SET name = value (applied when
    /// the statement ends); returns the value.
    SetConfig,
    /// `round(x)` and `round(x, digits)`.
    Round,
    /// `booleq(a, b)` and `boolne(a, b)`.
    BoolEq,
    BoolNe,
    /// A function of the library in [`crate::functions`].
    Lib(crate::functions::LibFn),
    /// `EXTRACT(unit FROM x)`: a NUMERIC.
    Extract(DateTimeUnit),
    /// `date_part('unit', x)`: the same as a double precision.
    DatePart(DateTimeUnit),
    /// nextval, currval, setval, lastval.
    Sequence(crate::sequences::SeqFn),
    /// pg_backend_pid().
    BackendPid,
}

/// What a subquery expression computes from the subquery's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubqueryKind {
    /// `(SELECT ...)`: column `n` of the only row (NULL without rows;
    /// 21000 with more than one). Tuple assignments read other columns.
    Scalar(usize),
    /// `EXISTS (SELECT ...)`.
    Exists,
    /// `lhs [NOT] IN (SELECT ...)`.
    In { negated: bool },
    /// `lhs op ANY/ALL (SELECT ...)`.
    Quantified { op: BinOp, all: bool },
    /// `ARRAY(SELECT ...)`: the first column of every row, as an array.
    Array,
    /// A catalog lookup: the second column of the first row whose first
    /// column equals `lhs` (NULL if none does).
    Lookup,
}

/// The plan of a subquery, shared by the copies of its expression.
/// Equality is identity: two subqueries are the same only if they are one.
#[derive(Debug)]
pub struct SubqueryPlan {
    pub plan: crate::plan::Plan,
    /// Output columns of the subquery.
    pub width: usize,
}

impl PartialEq for SubqueryPlan {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

/// A bound expression over an input row.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Datum),
    /// A column of the input row, by position.
    Column(usize),
    /// A statement parameter (`$1` is 0).
    Param(usize),
    /// An aggregate's result while binding (replaced before execution).
    AggRef(usize),
    /// A window function's result while binding (replaced before
    /// execution).
    WindowRef(usize),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    IsNull(Box<Expr>, bool),
    /// `IS [NOT] TRUE/FALSE`: (expr, value, negated).
    IsBool(Box<Expr>, bool, bool),
    InList(Box<Expr>, Vec<Expr>, bool),
    /// (expr, pattern, negated, how the pattern matches)
    Like(Box<Expr>, Box<Expr>, bool, PatternOp),
    Case {
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    Cast(Box<Expr>, DataType),
    Func(Func, Vec<Expr>),
    /// A value of the enclosing query's row, passed into a correlated
    /// subquery: the subquery expression's `args[i]`.
    OuterRef(usize),
    /// A subquery. `args` are evaluated over the outer row and become the
    /// subquery's [`Expr::OuterRef`]s; `lhs` is the left operand of IN,
    /// ANY and ALL.
    Subquery {
        kind: SubqueryKind,
        lhs: Option<Box<Expr>>,
        plan: Arc<SubqueryPlan>,
        args: Vec<Expr>,
    },
}

/// What evaluation needs besides the row.
#[derive(Debug, Clone, Default)]
pub struct EvalCtx {
    pub params: Vec<Datum>,
    /// The statement's timestamp (now()), µs since the epoch.
    pub now: i64,
    pub database: String,
    /// The session's user (current_user).
    pub user: String,
    /// The first schema of the search path that exists (current_schema;
    /// empty: `public`).
    pub schema: String,
    /// The session's settings at the statement's start, by lower-case
    /// name (current_setting).
    pub settings: Option<Arc<std::collections::BTreeMap<String, String>>>,
    /// The values a correlated subquery receives from its outer row.
    pub outer: Vec<Datum>,
    /// The rows the statement's scans read, for running subqueries
    /// (set by the executor).
    pub env: Option<Arc<crate::exec::Env>>,
    /// For sequence functions (a session's statements have it).
    pub sequences: Option<Arc<crate::sequences::SequenceAccess>>,
    /// The session's process id (pg_backend_pid).
    pub backend_pid: i32,
    /// Settings set_config() changed, for the session to apply when the
    /// statement ends (`None` for a value: back to the default).
    pub setting_changes: Option<SettingChanges>,
}

/// Settings changed by set_config() during a statement: `(name, value)`,
/// `None` for back to the default.
pub type SettingChanges = Arc<std::sync::Mutex<Vec<(String, Option<String>)>>>;

impl Expr {
    pub fn lit(d: Datum) -> Expr {
        Expr::Literal(d)
    }

    pub fn binary(op: BinOp, l: Expr, r: Expr) -> Expr {
        Expr::Binary(op, Box::new(l), Box::new(r))
    }

    /// Whether the value does not depend on the row (literals, parameters).
    pub fn is_constant(&self) -> bool {
        match self {
            Expr::Literal(_) | Expr::Param(_) => true,
            Expr::Cast(e, _) | Expr::Neg(e) => e.is_constant(),
            _ => false,
        }
    }

    /// Calls `f` on every column this expression reads.
    pub fn visit_columns(&self, f: &mut impl FnMut(usize)) {
        self.walk(&mut |e| {
            if let Expr::Column(i) = e {
                f(*i)
            }
        });
    }

    /// Pre-order walk over the tree.
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Expr)) {
        f(self);
        match self {
            Expr::Literal(_)
            | Expr::Column(_)
            | Expr::Param(_)
            | Expr::AggRef(_)
            | Expr::WindowRef(_)
            | Expr::OuterRef(_) => {}
            Expr::Subquery { lhs, args, .. } => {
                if let Some(l) = lhs {
                    l.walk(f);
                }
                args.iter().for_each(|x| x.walk(f));
            }
            Expr::Neg(e)
            | Expr::Not(e)
            | Expr::IsNull(e, _)
            | Expr::IsBool(e, _, _)
            | Expr::Cast(e, _) => e.walk(f),
            Expr::Binary(_, l, r) | Expr::Like(l, r, _, _) => {
                l.walk(f);
                r.walk(f);
            }
            Expr::InList(e, list, _) => {
                e.walk(f);
                list.iter().for_each(|x| x.walk(f));
            }
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                if let Some(o) = operand {
                    o.walk(f);
                }
                for (w, t) in whens {
                    w.walk(f);
                    t.walk(f);
                }
                if let Some(o) = otherwise {
                    o.walk(f);
                }
            }
            Expr::Func(_, args) => args.iter().for_each(|x| x.walk(f)),
        }
    }

    /// Rewrites the tree bottom-up with `f` (children first).
    pub fn transform(self, f: &mut impl FnMut(Expr) -> Result<Expr>) -> Result<Expr> {
        let bx = |e: Box<Expr>, f: &mut dyn FnMut(Expr) -> Result<Expr>| -> Result<Box<Expr>> {
            Ok(Box::new(transform_dyn(*e, f)?))
        };
        let e = match self {
            Expr::Neg(e) => Expr::Neg(bx(e, f)?),
            Expr::Not(e) => Expr::Not(bx(e, f)?),
            Expr::IsNull(e, n) => Expr::IsNull(bx(e, f)?, n),
            Expr::IsBool(e, v, n) => Expr::IsBool(bx(e, f)?, v, n),
            Expr::Cast(e, t) => Expr::Cast(bx(e, f)?, t),
            Expr::Binary(op, l, r) => Expr::Binary(op, bx(l, f)?, bx(r, f)?),
            Expr::Like(l, r, n, ci) => Expr::Like(bx(l, f)?, bx(r, f)?, n, ci),
            Expr::InList(e, list, n) => Expr::InList(
                bx(e, f)?,
                list.into_iter()
                    .map(|x| transform_dyn(x, f))
                    .collect::<Result<_>>()?,
                n,
            ),
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => Expr::Case {
                operand: operand.map(|o| bx(o, f)).transpose()?,
                whens: whens
                    .into_iter()
                    .map(|(w, t)| Ok((transform_dyn(w, f)?, transform_dyn(t, f)?)))
                    .collect::<Result<_>>()?,
                otherwise: otherwise.map(|o| bx(o, f)).transpose()?,
            },
            Expr::Func(func, args) => Expr::Func(
                func,
                args.into_iter()
                    .map(|x| transform_dyn(x, f))
                    .collect::<Result<_>>()?,
            ),
            Expr::Subquery {
                kind,
                lhs,
                plan,
                args,
            } => Expr::Subquery {
                kind,
                lhs: lhs.map(|l| bx(l, f)).transpose()?,
                plan,
                args: args
                    .into_iter()
                    .map(|x| transform_dyn(x, f))
                    .collect::<Result<_>>()?,
            },
            leaf => leaf,
        };
        f(e)
    }

    /// Evaluates against `row`.
    pub fn eval(&self, row: &[Datum], ctx: &EvalCtx) -> Result<Datum> {
        Ok(match self {
            Expr::Literal(d) => d.clone(),
            Expr::Column(i) => row
                .get(*i)
                .cloned()
                .ok_or_else(|| SqlError::internal(format!("column {i} out of range")))?,
            Expr::Param(i) => ctx.params.get(*i).cloned().ok_or_else(|| {
                SqlError::new(
                    code::UNDEFINED_PARAMETER,
                    format!("there is no parameter ${}", i + 1),
                )
            })?,
            Expr::AggRef(_) => return Err(SqlError::internal("unresolved aggregate")),
            Expr::WindowRef(_) => return Err(SqlError::internal("unresolved window function")),
            Expr::Neg(e) => match e.eval(row, ctx)? {
                Datum::Null => Datum::Null,
                Datum::Int(i) => Datum::Int(i.checked_neg().ok_or_else(int_overflow)?),
                Datum::Float(f) => Datum::Float(-f),
                Datum::Decimal(d) => Datum::Decimal(d.neg()),
                Datum::Interval(iv) => Datum::Interval(iv.checked_neg()?),
                other => {
                    return Err(SqlError::new(
                        code::UNDEFINED_FUNCTION,
                        format!("operator does not exist: - {}", other.kind_name()),
                    ))
                }
            },
            Expr::Not(e) => match e.eval(row, ctx)?.truth()? {
                None => Datum::Null,
                Some(b) => Datum::Bool(!b),
            },
            Expr::IsNull(e, negated) => Datum::Bool(e.eval(row, ctx)?.is_null() != *negated),
            Expr::IsBool(e, v, negated) => {
                let t = e.eval(row, ctx)?.truth()?;
                Datum::Bool((t == Some(*v)) != *negated)
            }
            Expr::Binary(op, l, r) => eval_binary(*op, l, r, row, ctx)?,
            Expr::InList(e, list, negated) => {
                let v = e.eval(row, ctx)?;
                if v.is_null() {
                    return Ok(Datum::Null);
                }
                let mut saw_null = false;
                let mut found = false;
                for x in list {
                    let x = x.eval(row, ctx)?;
                    match compare(&v, &x)? {
                        None => saw_null = true,
                        Some(Ordering::Equal) => {
                            found = true;
                            break;
                        }
                        Some(_) => {}
                    }
                }
                if found {
                    Datum::Bool(!negated)
                } else if saw_null {
                    Datum::Null
                } else {
                    Datum::Bool(*negated)
                }
            }
            Expr::Like(e, p, negated, ci) => {
                let (v, p) = (e.eval(row, ctx)?, p.eval(row, ctx)?);
                match (v, p) {
                    (Datum::Text(v), Datum::Text(p)) => {
                        let m = match ci {
                            PatternOp::ILike => like(&v.to_lowercase(), &p.to_lowercase()),
                            PatternOp::Like => like(&v, &p),
                            PatternOp::Regex => regex_match(&v, &p, false)?,
                            PatternOp::IRegex => regex_match(&v, &p, true)?,
                        };
                        Datum::Bool(m != *negated)
                    }
                    (Datum::Null, _) | (_, Datum::Null) => Datum::Null,
                    _ => return Err(SqlError::mismatch("LIKE and ~ need text operands")),
                }
            }
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                let op = operand.as_ref().map(|o| o.eval(row, ctx)).transpose()?;
                for (w, t) in whens {
                    let hit = match &op {
                        Some(v) => compare(v, &w.eval(row, ctx)?)? == Some(Ordering::Equal),
                        None => w.eval(row, ctx)?.truth()? == Some(true),
                    };
                    if hit {
                        return t.eval(row, ctx);
                    }
                }
                match otherwise {
                    Some(o) => o.eval(row, ctx)?,
                    None => Datum::Null,
                }
            }
            Expr::Cast(e, ty) => types::cast(e.eval(row, ctx)?, ty)?,
            Expr::Func(f, args) => eval_func(*f, args, row, ctx)?,
            Expr::OuterRef(i) => {
                ctx.outer.get(*i).cloned().ok_or_else(|| {
                    SqlError::internal(format!("outer reference {i} out of range"))
                })?
            }
            Expr::Subquery {
                kind,
                lhs,
                plan,
                args,
            } => eval_subquery(*kind, lhs.as_deref(), plan, args, row, ctx)?,
        })
    }
}

/// Runs a subquery for one outer row and reduces its rows as `kind` says.
fn eval_subquery(
    kind: SubqueryKind,
    lhs: Option<&Expr>,
    plan: &Arc<SubqueryPlan>,
    args: &[Expr],
    row: &[Datum],
    ctx: &EvalCtx,
) -> Result<Datum> {
    let outer: Vec<Datum> = args
        .iter()
        .map(|a| a.eval(row, ctx))
        .collect::<Result<_>>()?;
    let left = lhs.map(|l| l.eval(row, ctx)).transpose()?;
    let rows = crate::exec::subquery_rows(plan, outer, ctx)?;
    Ok(match kind {
        SubqueryKind::Scalar(col) => match rows.len() {
            0 => Datum::Null,
            1 => rows[0].get(col).cloned().unwrap_or(Datum::Null),
            _ => {
                return Err(SqlError::new(
                    code::CARDINALITY_VIOLATION,
                    "more than one row returned by a subquery used as an expression",
                ))
            }
        },
        SubqueryKind::Exists => Datum::Bool(!rows.is_empty()),
        SubqueryKind::Lookup => match left {
            None | Some(Datum::Null) => Datum::Null,
            Some(key) => rows
                .iter()
                .find(|r| {
                    r.first().and_then(|k| k.sql_cmp(&key)) == Some(std::cmp::Ordering::Equal)
                })
                .and_then(|r| r.get(1).cloned())
                .unwrap_or(Datum::Null),
        },
        SubqueryKind::Array => Datum::Array(
            rows.iter()
                .map(|r| r.first().cloned().unwrap_or(Datum::Null))
                .collect(),
        ),
        SubqueryKind::In { negated } => {
            let v = left.unwrap_or(Datum::Null);
            let r = quantified(BinOp::Eq, false, &v, &rows)?;
            match r {
                Datum::Bool(b) => Datum::Bool(b != negated),
                other => other,
            }
        }
        SubqueryKind::Quantified { op, all } => {
            quantified(op, all, &left.unwrap_or(Datum::Null), &rows)?
        }
    })
}

/// `v op ANY (rows)` (or ALL) with SQL's NULL rules: ANY is true if some
/// comparison is true, else NULL if some was NULL, else false; ALL is
/// false if some comparison is false, else NULL if some was NULL, else
/// true. Over no rows ANY is false and ALL is true, whatever `v` is.
fn quantified(op: BinOp, all: bool, v: &Datum, rows: &[Vec<Datum>]) -> Result<Datum> {
    quantified_values(
        op,
        all,
        v,
        rows.iter().map(|r| r.first().unwrap_or(&Datum::Null)),
    )
}

/// `v op ANY (values)` (or ALL), with the NULL rules of [`quantified`]:
/// for subquery rows and for the elements of an array.
pub fn quantified_values<'a>(
    op: BinOp,
    all: bool,
    v: &Datum,
    values: impl Iterator<Item = &'a Datum>,
) -> Result<Datum> {
    let mut saw_null = false;
    for x in values {
        match binary(op, v.clone(), x.clone())? {
            Datum::Bool(b) if b != all => return Ok(Datum::Bool(b)),
            Datum::Bool(_) => {}
            _ => saw_null = true,
        }
    }
    Ok(if saw_null {
        Datum::Null
    } else {
        Datum::Bool(all)
    })
}

fn transform_dyn(e: Expr, f: &mut dyn FnMut(Expr) -> Result<Expr>) -> Result<Expr> {
    e.transform(&mut |x| f(x))
}

fn int_overflow() -> SqlError {
    SqlError::new(code::NUMERIC_VALUE_OUT_OF_RANGE, "bigint out of range")
}

fn div_zero() -> SqlError {
    SqlError::new(code::DIVISION_BY_ZERO, "division by zero")
}

/// SQL comparison; `Ok(None)` when either side is NULL.
pub fn compare(a: &Datum, b: &Datum) -> Result<Option<Ordering>> {
    if a.is_null() || b.is_null() {
        return Ok(None);
    }
    match a.sql_cmp(b) {
        Some(o) => Ok(Some(o)),
        None => Err(SqlError::new(
            code::UNDEFINED_FUNCTION,
            format!(
                "operator does not exist: {} = {}",
                a.kind_name(),
                b.kind_name()
            ),
        )),
    }
}

fn eval_binary(op: BinOp, l: &Expr, r: &Expr, row: &[Datum], ctx: &EvalCtx) -> Result<Datum> {
    // AND / OR short-circuit with three-valued logic.
    if op == BinOp::And || op == BinOp::Or {
        let a = l.eval(row, ctx)?.truth()?;
        let short = if op == BinOp::And {
            Some(false)
        } else {
            Some(true)
        };
        if a == short {
            return Ok(Datum::Bool(a == Some(true)));
        }
        let b = r.eval(row, ctx)?.truth()?;
        return Ok(match (a, b) {
            (_, x) if x == short => Datum::Bool(x == Some(true)),
            (Some(x), Some(y)) => Datum::Bool(if op == BinOp::And { x && y } else { x || y }),
            _ => Datum::Null,
        });
    }
    let (a, b) = (l.eval(row, ctx)?, r.eval(row, ctx)?);
    binary(op, a, b)
}

/// Applies a binary operator to two values.
pub fn binary(op: BinOp, a: Datum, b: Datum) -> Result<Datum> {
    use Datum::*;
    match op {
        BinOp::IsDistinctFrom | BinOp::IsNotDistinctFrom => {
            let same = match (a.is_null(), b.is_null()) {
                (true, true) => true,
                (true, false) | (false, true) => false,
                _ => compare(&a, &b)? == Some(Ordering::Equal),
            };
            return Ok(Bool(same == (op == BinOp::IsNotDistinctFrom)));
        }
        _ => {}
    }
    if a.is_null() || b.is_null() {
        return Ok(Null);
    }
    if op.is_comparison() {
        let o = compare(&a, &b)?.expect("nulls handled above");
        return Ok(Bool(match op {
            BinOp::Eq => o == Ordering::Equal,
            BinOp::NotEq => o != Ordering::Equal,
            BinOp::Lt => o == Ordering::Less,
            BinOp::LtEq => o != Ordering::Greater,
            BinOp::Gt => o == Ordering::Greater,
            BinOp::GtEq => o != Ordering::Less,
            _ => unreachable!("comparison"),
        }));
    }
    if op == BinOp::Concat {
        let s = |d: &Datum| match d {
            Bool(b) => b.to_string(),
            d => types::format_datum(d, &DataType::Unknown).unwrap_or_default(),
        };
        return Ok(Text(format!("{}{}", s(&a), s(&b))));
    }
    Ok(match (a, b) {
        (Int(x), Int(y)) => Int(match op {
            BinOp::Add => x.checked_add(y).ok_or_else(int_overflow)?,
            BinOp::Sub => x.checked_sub(y).ok_or_else(int_overflow)?,
            BinOp::Mul => x.checked_mul(y).ok_or_else(int_overflow)?,
            BinOp::Div => {
                if y == 0 {
                    return Err(div_zero());
                }
                x.checked_div(y).ok_or_else(int_overflow)?
            }
            BinOp::Mod => {
                if y == 0 {
                    return Err(div_zero());
                }
                x.checked_rem(y).unwrap_or(0)
            }
            _ => return Err(bad_op(op, "bigint", "bigint")),
        }),
        (Float(x), Float(y)) => float_op(op, x, y)?,
        (Int(x), Float(y)) => float_op(op, x as f64, y)?,
        (Float(x), Int(y)) => float_op(op, x, y as f64)?,
        (Float(x), Decimal(y)) => float_op(op, x, y.to_f64())?,
        (Decimal(x), Float(y)) => float_op(op, x.to_f64(), y)?,
        (Decimal(x), Decimal(y)) => dec_op(op, x, y)?,
        (Int(x), Decimal(y)) => dec_op(op, types::Decimal::from_i64(x), y)?,
        (Decimal(x), Int(y)) => dec_op(op, x, types::Decimal::from_i64(y))?,
        (Date(d), Int(n)) if op == BinOp::Add => Date(d + n as i32),
        (Int(n), Date(d)) if op == BinOp::Add => Date(d + n as i32),
        (Date(d), Int(n)) if op == BinOp::Sub => Date(d - n as i32),
        (Date(a), Date(b)) if op == BinOp::Sub => Int(a as i64 - b as i64),
        (Timestamp(t), Int(n)) if op == BinOp::Add => Timestamp(t + n * MICROS_PER_DAY),
        (a, b) => datetime_op(op, a, b)?,
    })
}

/// The operators of dates, times, timestamps and intervals (PostgreSQL's
/// set: no `timestamp + timestamp`, and a time moves by an interval's
/// time part only, wrapping around midnight).
fn datetime_op(op: BinOp, a: Datum, b: Datum) -> Result<Datum> {
    use types::{date_to_timestamp, timestamp_difference, timestamp_plus_interval, wrap_time};
    use BinOp::{Add, Div, Mul, Sub};
    use Datum::*;
    let names = (a.kind_name(), b.kind_name());
    // A date meets an interval or a timestamp as the timestamp of its
    // midnight.
    let (a, b) = match (a, b) {
        (Date(d), b @ (Interval(_) | Timestamp(_))) => (Timestamp(date_to_timestamp(d)?), b),
        (a @ (Interval(_) | Timestamp(_)), Date(d)) => (a, Timestamp(date_to_timestamp(d)?)),
        pair => pair,
    };
    Ok(match (op, a, b) {
        (Add, Interval(x), Interval(y)) => Interval(x.checked_add(y)?),
        (Sub, Interval(x), Interval(y)) => Interval(x.checked_sub(y)?),
        (Mul, Interval(iv), n) | (Mul, n, Interval(iv)) => match number_as_f64(&n) {
            Some(factor) => Interval(iv.times(factor)?),
            None => return Err(bad_op(op, names.0, names.1)),
        },
        (Div, Interval(iv), n) => match number_as_f64(&n) {
            Some(divisor) => Interval(iv.divided_by(divisor)?),
            None => return Err(bad_op(op, names.0, names.1)),
        },
        (Add, Timestamp(t), Interval(iv)) | (Add, Interval(iv), Timestamp(t)) => {
            Timestamp(timestamp_plus_interval(t, iv)?)
        }
        (Sub, Timestamp(t), Interval(iv)) => {
            Timestamp(timestamp_plus_interval(t, iv.checked_neg()?)?)
        }
        (Sub, Timestamp(x), Timestamp(y)) => Interval(timestamp_difference(x, y)?),
        (Add, Date(d), Time(t)) | (Add, Time(t), Date(d)) => Timestamp(timestamp_plus_interval(
            date_to_timestamp(d)?,
            types::Interval::from_micros(t),
        )?),
        (Add, Time(t), Interval(iv)) | (Add, Interval(iv), Time(t)) => {
            Time(wrap_time(t as i128 + iv.micros as i128))
        }
        (Sub, Time(t), Interval(iv)) => Time(wrap_time(t as i128 - iv.micros as i128)),
        (Sub, Time(x), Time(y)) => Interval(types::Interval::from_micros(x - y)),
        _ => return Err(bad_op(op, names.0, names.1)),
    })
}

/// A number an interval can be multiplied or divided by.
fn number_as_f64(d: &Datum) -> Option<f64> {
    match d {
        Datum::Int(i) => Some(*i as f64),
        Datum::Float(f) => Some(*f),
        Datum::Decimal(d) => Some(d.to_f64()),
        _ => None,
    }
}

fn bad_op(op: BinOp, a: &str, b: &str) -> SqlError {
    SqlError::new(
        code::UNDEFINED_FUNCTION,
        format!("operator does not exist: {a} {} {b}", op.symbol()),
    )
}

fn float_op(op: BinOp, x: f64, y: f64) -> Result<Datum> {
    Ok(Datum::Float(match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => {
            if y == 0.0 {
                return Err(div_zero());
            }
            x / y
        }
        BinOp::Mod => {
            if y == 0.0 {
                return Err(div_zero());
            }
            x % y
        }
        _ => return Err(bad_op(op, "double precision", "double precision")),
    }))
}

fn dec_op(op: BinOp, x: Decimal, y: Decimal) -> Result<Datum> {
    Ok(Datum::Decimal(match op {
        BinOp::Add => x.add(&y)?,
        BinOp::Sub => x.sub(&y)?,
        BinOp::Mul => x.mul(&y)?,
        BinOp::Div => x.div(&y)?,
        BinOp::Mod => x.rem(&y)?,
        _ => return Err(bad_op(op, "numeric", "numeric")),
    }))
}

/// SQL LIKE with `%` and `_` (and `\` escaping).
/// How [`Expr::Like`] matches: `LIKE`, `ILIKE`, `~` or `~*` (their `NOT`
/// / `!` forms set its `negated`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternOp {
    Like,
    ILike,
    /// A POSIX-style regular expression, found anywhere in the value.
    Regex,
    /// `~*`: a regular expression, ignoring case.
    IRegex,
}

/// Whether regular expression `pattern` matches somewhere in `s` (2201B
/// if it is not a valid expression). The last pattern compiled on this
/// thread is kept, so a filter over many rows compiles it once.
fn regex_match(s: &str, pattern: &str, ignore_case: bool) -> Result<bool> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(String, bool, regex_lite::Regex)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        let cached = matches!(&*last, Some((p, ic, _)) if p == pattern && *ic == ignore_case);
        if !cached {
            let re = regex_lite::RegexBuilder::new(pattern)
                .case_insensitive(ignore_case)
                .build()
                .map_err(|e| {
                    SqlError::new(
                        code::INVALID_REGULAR_EXPRESSION,
                        format!("invalid regular expression: {e}"),
                    )
                })?;
            *last = Some((pattern.to_string(), ignore_case, re));
        }
        let (_, _, re) = last.as_ref().expect("compiled above");
        Ok(re.is_match(s))
    })
}

pub fn like(s: &str, pattern: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    fn go(s: &[char], p: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('%') => (0..=s.len()).any(|i| go(&s[i..], &p[1..])),
            Some('_') => !s.is_empty() && go(&s[1..], &p[1..]),
            Some('\\') if p.len() > 1 => s.first() == Some(&p[1]) && go(&s[1..], &p[2..]),
            Some(c) => s.first() == Some(c) && go(&s[1..], &p[1..]),
        }
    }
    go(&s, &p)
}

fn eval_func(f: Func, args: &[Expr], row: &[Datum], ctx: &EvalCtx) -> Result<Datum> {
    let arg = |i: usize| -> Result<Datum> {
        args.get(i)
            .ok_or_else(|| SqlError::internal("missing argument"))?
            .eval(row, ctx)
    };
    Ok(match f {
        Func::Lib(l) => {
            let values = args
                .iter()
                .map(|a| a.eval(row, ctx))
                .collect::<Result<Vec<_>>>()?;
            return crate::functions::call(l, &values);
        }
        Func::Coalesce => {
            for a in args {
                let v = a.eval(row, ctx)?;
                if !v.is_null() {
                    return Ok(v);
                }
            }
            Datum::Null
        }
        Func::NullIf => {
            let (a, b) = (arg(0)?, arg(1)?);
            if compare(&a, &b)? == Some(Ordering::Equal) {
                Datum::Null
            } else {
                a
            }
        }
        Func::Now => Datum::Timestamp(ctx.now),
        Func::CurrentDate => Datum::Date(ctx.now.div_euclid(MICROS_PER_DAY) as i32),
        Func::Version => Datum::Text(format!(
            "PostgreSQL {} on Tessera {}",
            crate::SERVER_VERSION,
            env!("CARGO_PKG_VERSION")
        )),
        Func::CurrentDatabase => Datum::Text(ctx.database.clone()),
        Func::BackendPid => Datum::Int(ctx.backend_pid as i64),
        Func::Sequence(f) => {
            let values = (0..args.len()).map(arg).collect::<Result<Vec<_>>>()?;
            match &ctx.sequences {
                Some(s) => s.call(f, &values)?,
                None => {
                    return Err(SqlError::unsupported(
                        "sequence functions are not available in this statement",
                    ))
                }
            }
        }
        Func::CurrentSetting => {
            let name = match arg(0)? {
                Datum::Null => return Ok(Datum::Null),
                Datum::Text(t) => t.to_lowercase(),
                other => other.kind_name().to_string(),
            };
            let missing_ok = args.len() > 1 && arg(1)?.truth()? == Some(true);
            match ctx.settings.as_ref().and_then(|s| s.get(&name)) {
                Some(v) => Datum::Text(v.clone()),
                None if missing_ok => Datum::Null,
                None => {
                    return Err(SqlError::new(
                        crate::error::code::UNDEFINED_OBJECT,
                        format!("unrecognized configuration parameter \"{name}\""),
                    ))
                }
            }
        }
        Func::CurrentSchema => Datum::Text(if ctx.schema.is_empty() {
            crate::catalog::PUBLIC_SCHEMA.into()
        } else {
            ctx.schema.clone()
        }),
        Func::SetConfig => {
            let name = match arg(0)? {
                Datum::Text(n) => n.to_lowercase(),
                _ => {
                    return Err(SqlError::new(
                        code::INVALID_PARAMETER_VALUE,
                        "SET requires parameter name",
                    ))
                }
            };
            let value = match arg(1)? {
                Datum::Text(v) => Some(v),
                _ => None,
            };
            let Some(changes) = &ctx.setting_changes else {
                return Err(SqlError::unsupported("set_config() outside a session"));
            };
            changes
                .lock()
                .map_err(|_| SqlError::internal("settings lock poisoned"))?
                .push((name, value.clone()));
            value.map_or(Datum::Null, Datum::Text)
        }
        Func::CurrentUser => Datum::Text(if ctx.user.is_empty() {
            "root".into()
        } else {
            ctx.user.clone()
        }),
        Func::Lower | Func::Upper | Func::Length => match arg(0)? {
            Datum::Null => Datum::Null,
            Datum::Text(s) => match f {
                Func::Lower => Datum::Text(s.to_lowercase()),
                Func::Upper => Datum::Text(s.to_uppercase()),
                _ => Datum::Int(s.chars().count() as i64),
            },
            Datum::Bytes(b) if f == Func::Length => Datum::Int(b.len() as i64),
            other => {
                return Err(SqlError::new(
                    code::UNDEFINED_FUNCTION,
                    format!("function {f:?}({}) does not exist", other.kind_name()).to_lowercase(),
                ))
            }
        },
        Func::BoolEq | Func::BoolNe => match (arg(0)?, arg(1)?) {
            (Datum::Bool(a), Datum::Bool(b)) => Datum::Bool((a == b) == (f == Func::BoolEq)),
            _ => Datum::Null,
        },
        Func::Round => {
            let digits = match args.len() {
                1 => 0,
                _ => match arg(1)? {
                    Datum::Null => return Ok(Datum::Null),
                    Datum::Int(n) => n,
                    other => {
                        return Err(SqlError::mismatch(format!(
                            "round digits must be an integer, not {}",
                            other.kind_name()
                        )))
                    }
                },
            };
            match arg(0)? {
                Datum::Null => Datum::Null,
                Datum::Int(i) => Datum::Decimal(round_decimal(Decimal::from_i64(i), digits)?),
                Datum::Decimal(d) => Datum::Decimal(round_decimal(d, digits)?),
                // round(double precision) rounds half to even, as C's rint().
                Datum::Float(x) => Datum::Float(x.round_ties_even()),
                other => {
                    return Err(SqlError::new(
                        code::UNDEFINED_FUNCTION,
                        format!("function round({}) does not exist", other.kind_name()),
                    ))
                }
            }
        }
        Func::Extract(unit) => types::extract(unit, &arg(0)?)?,
        Func::DatePart(unit) => {
            // date_part takes a date as the timestamp of its midnight.
            let v = match arg(0)? {
                Datum::Date(days) => Datum::Timestamp(types::date_to_timestamp(days)?),
                v => v,
            };
            match types::extract(unit, &v)? {
                Datum::Decimal(d) => Datum::Float(d.to_f64()),
                other => other,
            }
        }
        Func::Abs => match arg(0)? {
            Datum::Null => Datum::Null,
            Datum::Int(i) => Datum::Int(i.checked_abs().ok_or_else(int_overflow)?),
            Datum::Float(x) => Datum::Float(x.abs()),
            Datum::Decimal(d) if d.mantissa < 0 => Datum::Decimal(d.neg()),
            Datum::Decimal(d) => Datum::Decimal(d),
            other => {
                return Err(SqlError::new(
                    code::UNDEFINED_FUNCTION,
                    format!("function abs({}) does not exist", other.kind_name()),
                ))
            }
        },
    })
}

/// `round(numeric, digits)`: half away from zero; negative digits round
/// to tens, hundreds, ... and the result keeps `max(digits, 0)` decimals.
pub fn round_decimal(d: Decimal, digits: i64) -> Result<Decimal> {
    if d.is_special() {
        return Ok(d);
    }
    if digits >= 0 {
        // round_to pads with zeros too: round(42, 1) is 42.0.
        return d.round_to(digits.min(100) as u32);
    }
    let shift = (-digits).min(38) as u32;
    let whole = d.round_to(0)?;
    let p = 10i128.pow(shift);
    let m = whole.mantissa;
    let q = m / p;
    let r = m % p;
    let q = if r.abs() * 2 >= p { q + m.signum() } else { q };
    Ok(Decimal {
        mantissa: q.checked_mul(p).ok_or_else(int_overflow)?,
        scale: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(i: i64) -> Expr {
        Expr::Literal(Datum::Int(i))
    }

    fn eval(e: &Expr) -> Result<Datum> {
        e.eval(&[], &EvalCtx::default())
    }

    #[test]
    fn arithmetic_follows_sql_types() {
        assert_eq!(
            eval(&Expr::binary(BinOp::Div, int(7), int(2))).unwrap(),
            Datum::Int(3)
        );
        let e = eval(&Expr::binary(BinOp::Div, int(1), int(0))).unwrap_err();
        assert_eq!(e.code, "22012");
        let e = eval(&Expr::binary(BinOp::Add, int(i64::MAX), int(1))).unwrap_err();
        assert_eq!(e.code, "22003");
        let d = Expr::Literal(Datum::Decimal(Decimal::parse("1.5").unwrap()));
        assert_eq!(
            eval(&Expr::binary(BinOp::Mul, d, int(3))).unwrap(),
            Datum::Decimal(Decimal::parse("4.5").unwrap())
        );
        assert_eq!(
            eval(&Expr::binary(
                BinOp::Add,
                Expr::Literal(Datum::Null),
                int(1)
            ))
            .unwrap(),
            Datum::Null
        );
    }

    #[test]
    fn three_valued_logic() {
        let null = Expr::Literal(Datum::Null);
        let t = Expr::Literal(Datum::Bool(true));
        let f = Expr::Literal(Datum::Bool(false));
        assert_eq!(
            eval(&Expr::binary(BinOp::And, null.clone(), f.clone())).unwrap(),
            Datum::Bool(false)
        );
        assert_eq!(
            eval(&Expr::binary(BinOp::And, null.clone(), t.clone())).unwrap(),
            Datum::Null
        );
        assert_eq!(
            eval(&Expr::binary(BinOp::Or, null.clone(), t)).unwrap(),
            Datum::Bool(true)
        );
        assert_eq!(
            eval(&Expr::Not(Box::new(null.clone()))).unwrap(),
            Datum::Null
        );
        let in_list = Expr::InList(Box::new(int(3)), vec![int(1), null], false);
        assert_eq!(eval(&in_list).unwrap(), Datum::Null);
        let in_list = Expr::InList(Box::new(int(1)), vec![int(1)], true);
        assert_eq!(eval(&in_list).unwrap(), Datum::Bool(false));
    }

    #[test]
    fn functions_and_like() {
        let s = |x: &str| Expr::Literal(Datum::Text(x.into()));
        assert_eq!(
            eval(&Expr::Func(Func::Upper, vec![s("abc")])).unwrap(),
            Datum::Text("ABC".into())
        );
        assert_eq!(
            eval(&Expr::Func(Func::Length, vec![s("héllo")])).unwrap(),
            Datum::Int(5)
        );
        assert_eq!(
            eval(&Expr::Func(Func::Abs, vec![int(-4)])).unwrap(),
            Datum::Int(4)
        );
        assert_eq!(
            eval(&Expr::Func(
                Func::Coalesce,
                vec![Expr::Literal(Datum::Null), int(2)]
            ))
            .unwrap(),
            Datum::Int(2)
        );
        assert!(like("hello", "h%o"));
        assert!(like("hello", "_ello"));
        assert!(!like("hello", "h_o"));
        assert!(like("50%", "50\\%"));
    }

    #[test]
    fn any_all_and_in_follow_null_rules() {
        let rows = |v: &[Datum]| v.iter().map(|d| vec![d.clone()]).collect::<Vec<_>>();
        let one_null = rows(&[Datum::Int(1), Datum::Null]);
        // 1 = ANY {1, NULL} is true; 2 = ANY {1, NULL} is unknown.
        assert_eq!(
            quantified(BinOp::Eq, false, &Datum::Int(1), &one_null).unwrap(),
            Datum::Bool(true)
        );
        assert_eq!(
            quantified(BinOp::Eq, false, &Datum::Int(2), &one_null).unwrap(),
            Datum::Null
        );
        // 0 < ALL {1, NULL} is unknown; 5 < ALL {1, NULL} is false.
        assert_eq!(
            quantified(BinOp::Lt, true, &Datum::Int(0), &one_null).unwrap(),
            Datum::Null
        );
        assert_eq!(
            quantified(BinOp::Lt, true, &Datum::Int(5), &one_null).unwrap(),
            Datum::Bool(false)
        );
        // Over no rows: ANY is false and ALL is true, even for NULL.
        assert_eq!(
            quantified(BinOp::Eq, false, &Datum::Null, &[]).unwrap(),
            Datum::Bool(false)
        );
        assert_eq!(
            quantified(BinOp::Eq, true, &Datum::Null, &[]).unwrap(),
            Datum::Bool(true)
        );
    }

    #[test]
    fn round_is_half_away_from_zero_with_digits() {
        let d = |s: &str| Decimal::parse(s).unwrap();
        let r = |s: &str, n: i64| round_decimal(d(s), n).unwrap().to_string();
        assert_eq!(r("2.5", 0), "3");
        assert_eq!(r("-2.5", 0), "-3");
        assert_eq!(r("1.165", 2), "1.17");
        assert_eq!(r("42", 1), "42.0");
        assert_eq!(r("1.1987", -1), "0");
        assert_eq!(r("1250", -2), "1300");
        assert_eq!(
            eval(&Expr::Func(
                Func::Round,
                vec![Expr::Literal(Datum::Float(-0.1))]
            ))
            .unwrap(),
            Datum::Float(-0.0)
        );
    }

    #[test]
    fn columns_and_params_come_from_row_and_context() {
        let ctx = EvalCtx {
            params: vec![Datum::Int(10)],
            ..Default::default()
        };
        let e = Expr::binary(BinOp::Add, Expr::Column(1), Expr::Param(0));
        assert_eq!(
            e.eval(&[Datum::Int(0), Datum::Int(5)], &ctx).unwrap(),
            Datum::Int(15)
        );
        assert_eq!(Expr::Param(3).eval(&[], &ctx).unwrap_err().code, "42P02");
    }
}
