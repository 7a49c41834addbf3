//! Sequences seen from SQL: CREATE SEQUENCE's options, and the nextval /
//! currval / setval / lastval calls an expression makes.
//!
//! A sequence's state is one KV counter (see [`Catalog::next_value`]), so
//! a call is a KV round trip. Expressions are evaluated synchronously over
//! rows the statement has already read: a sequence call blocks its worker
//! thread for the round trip (`block_in_place`, which hands the thread's
//! other tasks to the rest of the runtime). The values a session took are
//! remembered for currval and lastval, as in PostgreSQL.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;
use sqlparser::ast;

use crate::catalog::{qualified_name, Catalog, SequenceDesc};
use crate::error::{code, Result, SqlError};
use crate::types::Datum;

/// The sequence functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqFn {
    NextVal,
    CurrVal,
    SetVal,
    LastVal,
}

/// What a session remembers of the sequences it used.
#[derive(Debug, Default)]
pub struct SessionSequences {
    /// The last value nextval (or setval) gave each sequence, by id.
    values: HashMap<u64, i64>,
    /// The last value nextval gave any sequence (lastval).
    last: Option<i64>,
}

impl SessionSequences {
    /// DISCARD SEQUENCES.
    pub fn clear(&mut self) {
        self.values.clear();
        self.last = None;
    }
}

/// A statement's access to sequences (part of its evaluation context).
pub struct SequenceAccess {
    catalog: Arc<Catalog>,
    database: String,
    search_path: Vec<String>,
    session: Arc<Mutex<SessionSequences>>,
    /// The sequences this statement named, by the text naming them: a
    /// call per row resolves its name once.
    resolved: Mutex<HashMap<String, Arc<SequenceDesc>>>,
}

impl std::fmt::Debug for SequenceAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SequenceAccess({})", self.database)
    }
}

impl SequenceAccess {
    pub fn new(
        catalog: Arc<Catalog>,
        database: String,
        search_path: Vec<String>,
        session: Arc<Mutex<SessionSequences>>,
    ) -> Self {
        SequenceAccess {
            catalog,
            database,
            search_path,
            session,
            resolved: Mutex::new(HashMap::new()),
        }
    }

    /// Runs a KV operation from synchronous evaluation.
    fn block<T>(&self, f: impl Future<Output = Result<T>>) -> Result<T> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| SqlError::internal("sequence call outside the server's runtime"))?;
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return Err(SqlError::unsupported(
                "sequence functions need the server's multi-threaded runtime",
            ));
        }
        tokio::task::block_in_place(|| handle.block_on(f))
    }

    /// The sequence a nextval-style argument names: text parsed as
    /// PostgreSQL parses a regclass (`s`, `"S"`, `app.s`), unqualified
    /// names looked up along the search path.
    async fn resolve(&self, text: &str) -> Result<Arc<SequenceDesc>> {
        let parts = parse_relation_name(text)?;
        let candidates: Vec<String> = match parts.as_slice() {
            [schema, name] => vec![qualified_name(schema, name)],
            [name] => {
                let mut c =
                    along_search_path(&self.catalog, &self.database, &self.search_path, name)
                        .await?;
                c.push(name.clone());
                c
            }
            _ => {
                return Err(SqlError::new(
                    code::UNDEFINED_TABLE,
                    format!("relation \"{text}\" does not exist"),
                ))
            }
        };
        for name in &candidates {
            if let Some(s) = self.catalog.find_sequence(&self.database, name).await? {
                return Ok(s);
            }
        }
        Err(SqlError::new(
            code::UNDEFINED_TABLE,
            format!("relation \"{text}\" does not exist"),
        ))
    }

    /// [`SequenceAccess::resolve`], once per name and statement.
    fn sequence(&self, text: &str) -> Result<Arc<SequenceDesc>> {
        if let Some(s) = self.resolved.lock().get(text) {
            return Ok(s.clone());
        }
        let s = self.block(self.resolve(text))?;
        self.resolved.lock().insert(text.to_string(), s.clone());
        Ok(s)
    }

    /// Evaluates a sequence function over its evaluated arguments.
    pub fn call(&self, f: SeqFn, args: &[Datum]) -> Result<Datum> {
        if f == SeqFn::LastVal {
            return self.session.lock().last.map(Datum::Int).ok_or_else(|| {
                SqlError::new(
                    code::OBJECT_NOT_IN_PREREQUISITE_STATE,
                    "lastval is not yet defined in this session",
                )
            });
        }
        let name = match args.first() {
            Some(Datum::Null) | None => return Ok(Datum::Null),
            Some(Datum::Text(t)) => t.clone(),
            Some(other) => {
                return Err(SqlError::mismatch(format!(
                    "a sequence name must be text, not {}",
                    other.kind_name()
                )))
            }
        };
        match f {
            SeqFn::NextVal => {
                let seq = self.sequence(&name)?;
                let v = self.block(self.catalog.next_value(&seq))?;
                let mut session = self.session.lock();
                session.values.insert(seq.id, v);
                session.last = Some(v);
                Ok(Datum::Int(v))
            }
            SeqFn::CurrVal => {
                let seq = self.sequence(&name)?;
                let v = self.session.lock().values.get(&seq.id).copied();
                v.map(Datum::Int).ok_or_else(|| {
                    SqlError::new(
                        code::OBJECT_NOT_IN_PREREQUISITE_STATE,
                        format!(
                            "currval of sequence \"{}\" is not yet defined in this session",
                            short_name(&seq.name)
                        ),
                    )
                })
            }
            SeqFn::SetVal => {
                let value = match args.get(1) {
                    Some(Datum::Int(v)) => *v,
                    Some(Datum::Null) => return Ok(Datum::Null),
                    _ => return Err(SqlError::mismatch("setval expects a bigint value")),
                };
                let called = match args.get(2) {
                    Some(Datum::Null) => return Ok(Datum::Null),
                    Some(Datum::Bool(b)) => *b,
                    _ => true,
                };
                let seq = self.sequence(&name)?;
                self.block(async {
                    if !(seq.min..=seq.max).contains(&value) {
                        return Err(SqlError::new(
                            code::NUMERIC_VALUE_OUT_OF_RANGE,
                            format!(
                                "setval: value {value} is out of bounds for sequence \"{}\" ({}..{})",
                                short_name(&seq.name),
                                seq.min,
                                seq.max
                            ),
                        ));
                    }
                    // Not called: the next nextval returns `value` itself.
                    let last = if called {
                        value
                    } else {
                        value.checked_sub(seq.increment).ok_or_else(|| {
                            SqlError::new(code::NUMERIC_VALUE_OUT_OF_RANGE, "bigint out of range")
                        })?
                    };
                    self.catalog.set_sequence(seq.id, last).await
                })?;
                if called {
                    self.session.lock().values.insert(seq.id, value);
                }
                Ok(Datum::Int(value))
            }
            SeqFn::LastVal => unreachable!("handled above"),
        }
    }
}

/// `name` qualified by each schema of `search_path` that exists, in order.
async fn along_search_path(
    catalog: &Catalog,
    db: &str,
    search_path: &[String],
    name: &str,
) -> Result<Vec<String>> {
    let schemas = catalog.schema_names(db).await?;
    Ok(search_path
        .iter()
        .filter(|s| schemas.contains(s))
        .map(|s| qualified_name(s, name))
        .collect())
}

fn short_name(name: &str) -> &str {
    crate::catalog::split_name(name).1
}

/// `s`, `"S"`, `app.s` as PostgreSQL reads a relation name in text:
/// unquoted parts fold to lower case.
pub(crate) fn parse_relation_name(text: &str) -> Result<Vec<String>> {
    let bad = || SqlError::new(code::INVALID_NAME, "invalid name syntax");
    let mut parts = Vec::new();
    let mut chars = text.trim().chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    Some('"') => break,
                    Some(c) => part.push(c),
                    None => return Err(bad()),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                part.extend(c.to_lowercase());
                chars.next();
            }
            part = part.trim().to_string();
        }
        if part.is_empty() {
            return Err(bad());
        }
        parts.push(part);
        match chars.next() {
            None => return Ok(parts),
            Some('.') => {}
            Some(_) => return Err(bad()),
        }
    }
}

/// The descriptor CREATE SEQUENCE `name` with `options` makes (PostgreSQL's
/// defaults: ascending from 1 by 1 up to the type's maximum; a descending
/// sequence from -1 down to the type's minimum).
pub fn descriptor_from_options(
    name: String,
    id: u64,
    options: &[ast::SequenceOptions],
) -> Result<SequenceDesc> {
    let number = |e: &ast::Expr, what: &str| -> Result<i64> {
        let text = e.to_string().replace(' ', "");
        text.parse::<i64>().map_err(|_| {
            SqlError::new(
                code::SYNTAX_ERROR,
                format!("{what} must be an integer, not {e}"),
            )
        })
    };
    let mut type_name = "bigint".to_string();
    let mut increment = 1i64;
    let mut min = None;
    let mut max = None;
    let mut start = None;
    let mut cycle = false;
    for o in options {
        match o {
            ast::SequenceOptions::DataType(t) => {
                type_name = match t.to_string().to_lowercase().as_str() {
                    "smallint" | "int2" => "smallint",
                    "integer" | "int" | "int4" => "integer",
                    "bigint" | "int8" => "bigint",
                    other => {
                        return Err(SqlError::new(
                            code::INVALID_PARAMETER_VALUE,
                            format!(
                                "sequence type must be smallint, integer, or bigint, not {other}"
                            ),
                        ))
                    }
                }
                .to_string()
            }
            ast::SequenceOptions::IncrementBy(e, _) => increment = number(e, "INCREMENT")?,
            ast::SequenceOptions::MinValue(e) => {
                min = e.as_ref().map(|e| number(e, "MINVALUE")).transpose()?
            }
            ast::SequenceOptions::MaxValue(e) => {
                max = e.as_ref().map(|e| number(e, "MAXVALUE")).transpose()?
            }
            ast::SequenceOptions::StartWith(e, _) => start = Some(number(e, "START")?),
            // Every value is one KV round trip; values are not cached per
            // session.
            ast::SequenceOptions::Cache(e) => {
                if number(e, "CACHE")? < 1 {
                    return Err(SqlError::new(
                        code::INVALID_PARAMETER_VALUE,
                        format!("CACHE ({e}) must be greater than zero"),
                    ));
                }
            }
            // `Cycle(true)` is NO CYCLE.
            ast::SequenceOptions::Cycle(no) => cycle = !no,
            ast::SequenceOptions::OwnedBy(_) => {}
        }
    }
    if increment == 0 {
        return Err(SqlError::new(
            code::INVALID_PARAMETER_VALUE,
            "INCREMENT must not be zero",
        ));
    }
    let (type_min, type_max) = match type_name.as_str() {
        "smallint" => (i16::MIN as i64, i16::MAX as i64),
        "integer" => (i32::MIN as i64, i32::MAX as i64),
        _ => (i64::MIN, i64::MAX),
    };
    let min = min.unwrap_or(if increment > 0 { 1 } else { type_min });
    let max = max.unwrap_or(if increment > 0 { type_max } else { -1 });
    for (what, v) in [("MINVALUE", min), ("MAXVALUE", max)] {
        if v < type_min || v > type_max {
            return Err(SqlError::new(
                code::INVALID_PARAMETER_VALUE,
                format!("{what} ({v}) is out of range for sequence data type {type_name}"),
            ));
        }
    }
    if min >= max {
        return Err(SqlError::new(
            code::INVALID_PARAMETER_VALUE,
            format!("MINVALUE ({min}) must be less than MAXVALUE ({max})"),
        ));
    }
    let start = start.unwrap_or(if increment > 0 { min } else { max });
    if start < min {
        return Err(SqlError::new(
            code::INVALID_PARAMETER_VALUE,
            format!("START value ({start}) cannot be less than MINVALUE ({min})"),
        ));
    }
    if start > max {
        return Err(SqlError::new(
            code::INVALID_PARAMETER_VALUE,
            format!("START value ({start}) cannot be greater than MAXVALUE ({max})"),
        ));
    }
    Ok(SequenceDesc {
        name,
        id,
        start,
        increment,
        min,
        max,
        cycle,
        type_name,
    })
}

/// `CREATE SEQUENCE [IF NOT EXISTS] name [options]`.
pub async fn create_sequence(
    catalog: &Catalog,
    db: &str,
    search_path: &[String],
    name: &ast::ObjectName,
    if_not_exists: bool,
    temporary: bool,
    options: &[ast::SequenceOptions],
) -> Result<()> {
    if temporary {
        return Err(SqlError::unsupported(
            "temporary sequences are not supported",
        ));
    }
    let name = crate::objects::new_name(catalog, db, search_path, name).await?;
    // Options are checked before an id is spent on them.
    let mut desc = descriptor_from_options(name, 0, options)?;
    desc.id = catalog.allocate_id().await?;
    catalog.create_sequence(db, &desc, if_not_exists).await?;
    Ok(())
}

/// `DROP SEQUENCE [IF EXISTS] name, ...`.
pub async fn drop_sequences(
    catalog: &Catalog,
    db: &str,
    search_path: &[String],
    names: &[ast::ObjectName],
    if_exists: bool,
) -> Result<()> {
    for n in names {
        let name = crate::plan::table_name(n)?;
        let candidates: Vec<String> = if n.0.len() > 1 {
            vec![name.clone()]
        } else {
            along_search_path(catalog, db, search_path, &name).await?
        };
        let mut found = None;
        for c in candidates {
            if catalog.sequence(db, &c).await?.is_some() {
                found = Some(c);
                break;
            }
        }
        match found {
            Some(c) => {
                catalog.drop_sequence(db, &c).await?;
            }
            None if if_exists => {}
            None => {
                return Err(SqlError::new(
                    code::UNDEFINED_TABLE,
                    format!("sequence \"{name}\" does not exist"),
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(sql: &str) -> Vec<ast::SequenceOptions> {
        let stmts =
            sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::PostgreSqlDialect {}, sql)
                .unwrap();
        match &stmts[0] {
            ast::Statement::CreateSequence {
                sequence_options, ..
            } => sequence_options.clone(),
            other => panic!("not CREATE SEQUENCE: {other}"),
        }
    }

    #[test]
    fn defaults_follow_postgres() {
        let up = descriptor_from_options("s".into(), 1, &options("CREATE SEQUENCE s")).unwrap();
        assert_eq!(
            (up.start, up.increment, up.min, up.max),
            (1, 1, 1, i64::MAX)
        );
        let down = descriptor_from_options(
            "s".into(),
            1,
            &options("CREATE SEQUENCE s AS integer INCREMENT BY -2"),
        )
        .unwrap();
        assert_eq!(
            (down.start, down.increment, down.min, down.max),
            (-1, -2, i32::MIN as i64, -1)
        );
        let custom = descriptor_from_options(
            "s".into(),
            1,
            &options("CREATE SEQUENCE s START WITH 10 INCREMENT 5 MAXVALUE 30 CYCLE"),
        )
        .unwrap();
        assert_eq!((custom.start, custom.increment, custom.max), (10, 5, 30));
        assert!(custom.cycle);
        assert!(
            !descriptor_from_options("s".into(), 1, &options("CREATE SEQUENCE s NO CYCLE"))
                .unwrap()
                .cycle
        );
    }

    #[test]
    fn bad_options_are_refused() {
        for sql in [
            "CREATE SEQUENCE s INCREMENT 0",
            "CREATE SEQUENCE s MINVALUE 5 MAXVALUE 5",
            "CREATE SEQUENCE s START 0",
            "CREATE SEQUENCE s MAXVALUE 10 START 11",
            "CREATE SEQUENCE s AS smallint MAXVALUE 40000",
        ] {
            let e = descriptor_from_options("s".into(), 1, &options(sql)).unwrap_err();
            assert_eq!(e.code, code::INVALID_PARAMETER_VALUE, "{sql}");
        }
    }

    #[test]
    fn relation_names_fold_like_regclass() {
        assert_eq!(parse_relation_name("Seq").unwrap(), vec!["seq"]);
        assert_eq!(parse_relation_name("\"Seq\"").unwrap(), vec!["Seq"]);
        assert_eq!(
            parse_relation_name("App.\"a.b\"").unwrap(),
            vec!["app", "a.b"]
        );
        assert!(parse_relation_name("a..b").is_err());
        assert!(parse_relation_name("").is_err());
    }
}
