//! Statements sqlparser does not know, recognized before it runs:
//!
//! ```text
//! ALTER TABLE t SPLIT AT VALUES (v1), (v2), ...   (or any query)
//! SHOW RANGES FROM TABLE t
//! SHOW RANGES FROM INDEX t@idx                    (t@primary, t@t_pkey: the rows)
//! ```
//!
//! `SPLIT AT` evaluates its query; each row is a primary key (or a prefix
//! of one, for composite keys), converted to the key columns' types and
//! encoded as a row key, and the range holding that key is split there
//! (`DB::split`; splitting at an existing boundary is a no-op). It returns
//! one row per split: `key` (the whole key, `/Table/104/1/1000`) and
//! `pretty` (relative to the index, `/1000`).
//!
//! `SHOW RANGES` lists the ranges overlapping the table's span (all of its
//! indexes) or one index's span, with columns `range_id`, `start_key`,
//! `end_key`, `replicas` (node ids, as `{1,2,3}`), `lease_holder` (the node
//! serving the range, found with a read routed to it; NULL if unreachable).
//! Keys are decoded relative to the index: `/1000`. A range boundary at or
//! beyond the start of the span shows as `/Min`, at or beyond its end as
//! `/Max`; with `FROM TABLE`, a boundary inside another index of the table
//! shows as the whole key (`/Table/104/2/'x'`).

use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use crate::error::{code, Result, SqlError};
use crate::types::DataType;

/// A statement of this module.
#[derive(Debug, Clone)]
pub enum AdminStmt {
    SplitAt {
        table: String,
        query: Box<ast::Query>,
    },
    ShowRanges {
        table: String,
        /// `None`: the whole table.
        index: Option<String>,
    },
}

impl AdminStmt {
    /// The columns the statement returns.
    pub fn columns(&self) -> Vec<(String, DataType)> {
        match self {
            AdminStmt::SplitAt { .. } => vec![
                ("key".into(), DataType::Text),
                ("pretty".into(), DataType::Text),
            ],
            AdminStmt::ShowRanges { .. } => vec![
                ("range_id".into(), DataType::Int8),
                ("start_key".into(), DataType::Text),
                ("end_key".into(), DataType::Text),
                ("replicas".into(), DataType::Text),
                ("lease_holder".into(), DataType::Int8),
            ],
        }
    }
}

/// Words of `sql` with their byte offsets.
fn words(sql: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in sql.char_indices() {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                out.push((s, &sql[s..i]));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push((s, &sql[s..]));
    }
    out
}

/// The object name that is the whole of `text`.
fn object_name(text: &str) -> Result<String> {
    let syntax = |e: sqlparser::parser::ParserError| SqlError::syntax(format!("syntax error: {e}"));
    let mut p = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(text)
        .map_err(syntax)?;
    let name = p.parse_object_name(false).map_err(syntax)?;
    let next = p.peek_token();
    if next.token != sqlparser::tokenizer::Token::EOF {
        return Err(SqlError::syntax(format!(
            "syntax error at or near \"{}\"",
            next.token
        )));
    }
    crate::plan::table_name(&name)
}

/// Recognizes one of this module's statements (the whole of `sql`, an
/// optional trailing `;` aside). `Ok(None)`: not one of ours.
pub fn parse(sql: &str) -> Result<Option<AdminStmt>> {
    let sql = sql.trim().trim_end_matches(';').trim_end();
    let w = words(sql);
    let is = |i: usize, kw: &str| w.get(i).is_some_and(|(_, s)| s.eq_ignore_ascii_case(kw));
    if is(0, "alter") && is(1, "table") {
        let Some(at) = (2..w.len()).find(|&i| is(i, "split") && is(i + 1, "at")) else {
            return Ok(None);
        };
        let name_text = &sql[w.get(2).map(|x| x.0).unwrap_or(sql.len())..w[at].0];
        let table = object_name(name_text.trim())?;
        let rest = w.get(at + 2).map(|x| &sql[x.0..]).ok_or_else(|| {
            SqlError::syntax("syntax error: SPLIT AT needs VALUES (...) or a query")
        })?;
        let syntax =
            |e: sqlparser::parser::ParserError| SqlError::syntax(format!("syntax error: {e}"));
        let mut p = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(rest)
            .map_err(syntax)?;
        let query = p.parse_query().map_err(syntax)?;
        if p.peek_token().token != sqlparser::tokenizer::Token::EOF {
            return Err(SqlError::syntax(
                "syntax error: SPLIT AT must be a statement of its own",
            ));
        }
        return Ok(Some(AdminStmt::SplitAt { table, query }));
    }
    if is(0, "show") && is(1, "ranges") {
        if !is(2, "from") || w.len() < 5 {
            return Err(SqlError::syntax(
                "syntax error: expected SHOW RANGES FROM TABLE t or FROM INDEX t@idx",
            ));
        }
        let target = sql[w[4].0..].trim();
        if is(3, "table") {
            return Ok(Some(AdminStmt::ShowRanges {
                table: object_name(target)?,
                index: None,
            }));
        }
        if is(3, "index") {
            let (t, i) = target.split_once('@').ok_or_else(|| {
                SqlError::syntax("syntax error: expected an index name as table@index")
            })?;
            return Ok(Some(AdminStmt::ShowRanges {
                table: object_name(t.trim())?,
                index: Some(crate::plan::ident(&ast::Ident::new(i.trim()))),
            }));
        }
        return Err(SqlError::new(
            code::SYNTAX_ERROR,
            "syntax error: expected SHOW RANGES FROM TABLE t or FROM INDEX t@idx",
        ));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_split_and_show_ranges() {
        match parse("alter TABLE public.t SPLIT  AT VALUES (1, 'a'), (2, 'b');").unwrap() {
            Some(AdminStmt::SplitAt { table, query }) => {
                assert_eq!(table, "t");
                assert!(query.to_string().starts_with("VALUES (1, 'a')"));
            }
            other => panic!("{other:?}"),
        }
        match parse("SHOW RANGES FROM INDEX t@T_pkey").unwrap() {
            Some(AdminStmt::ShowRanges { table, index }) => {
                assert_eq!(table, "t");
                assert_eq!(index.as_deref(), Some("t_pkey"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse("show ranges from table kv").unwrap(),
            Some(AdminStmt::ShowRanges { index: None, .. })
        ));
        assert!(parse("ALTER TABLE t ADD COLUMN x INT").unwrap().is_none());
        assert!(parse("SELECT 1").unwrap().is_none());
        assert!(parse("SHOW RANGES FROM nothing").is_err());
        assert!(parse("ALTER TABLE t SPLIT AT VALUES (1); SELECT 1").is_err());
        assert!(parse("SHOW RANGES FROM TABLE t; SELECT 1").is_err());
        assert!(parse("SHOW RANGES FROM TABLE t extra").is_err());
    }
}
