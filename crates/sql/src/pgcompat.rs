//! psql's describe commands (`\d`, `\dt`, `\di`, `\d name`), answered
//! from the catalog.
//!
//! psql 15 implements these with fixed queries over `pg_catalog` (captured
//! with `psql -E`; they use subqueries, arrays, `regclass` casts and
//! catalogs such as `pg_policy` that have no meaning here). Rather than a
//! general `pg_catalog`, this module recognizes those queries by their
//! shape and answers them with the columns psql reads, by position:
//!
//! - the relation list (`\d`, `\dt`, `\di`, with optional name patterns,
//!   matched with the regular expression psql sends): tables, and the
//!   indexes (`<table>_pkey` for the primary key, then the secondary ones);
//! - `\d name`: the lookup of the relation (tables only), its flags, its
//!   columns (type as `format_type` prints it, default, NOT NULL), its
//!   indexes (`CREATE [UNIQUE] INDEX ... USING btree (...)`); the queries
//!   for policies, statistics, publications and inheritance get no rows.
//!
//! pgbench's startup query (where `pgbench_accounts` is, whether it is
//! partitioned) is answered the same way: found in `public`, not
//! partitioned.
//!
//! A table's oid is its table id. Other `pg_catalog` queries are not
//! recognized and fail as before (42P01). A general `pg_catalog` needs
//! subqueries in the engine first.

use crate::catalog::{quote_ident, split_name, Catalog, TableDesc, PUBLIC_SCHEMA};
use crate::error::Result;
use crate::session::StmtResult;
use crate::types::{DataType, Datum};

fn text(s: impl Into<String>) -> Datum {
    Datum::Text(s.into())
}

fn cols(names: &[&str]) -> Vec<(String, DataType)> {
    names
        .iter()
        .map(|n| (n.to_string(), DataType::Text))
        .collect()
}

fn rows_result(columns: Vec<(String, DataType)>, rows: Vec<Vec<Datum>>) -> StmtResult {
    StmtResult::Rows {
        columns,
        rows,
        tag: "SELECT".into(),
    }
}

/// `SELECT pg_sleep(seconds)`: waits (an await point, so a cancel request
/// interrupts it) and returns one NULL of type void, shown as text.
pub async fn pg_sleep(sql: &str) -> Option<StmtResult> {
    let secs = pg_sleep_seconds(sql)?;
    if secs.is_finite() && secs > 0.0 {
        tokio::time::sleep(std::time::Duration::from_secs_f64(secs.min(1e6))).await;
    }
    Some(rows_result(cols(&["pg_sleep"]), vec![vec![Datum::Null]]))
}

/// Whether `sql` is a `SELECT pg_sleep(n)` that [`pg_sleep`] answers.
pub fn is_pg_sleep(sql: &str) -> bool {
    pg_sleep_seconds(sql).is_some()
}

fn pg_sleep_seconds(sql: &str) -> Option<f64> {
    let s = sql.trim().trim_end_matches(';').trim().to_ascii_lowercase();
    let arg = s
        .strip_prefix("select")?
        .trim_start()
        .strip_prefix("pg_sleep(")?
        .strip_suffix(')')?;
    arg.trim().trim_matches('\'').parse().ok()
}

/// The string literal following `after` in `sql`.
fn literal_after<'a>(sql: &'a str, after: &str) -> Option<&'a str> {
    let i = sql.find(after)? + after.len();
    let rest = sql[i..].trim_start().strip_prefix('\'')?;
    Some(&rest[..rest.find('\'')?])
}

/// The oid in `WHERE <col> = '<oid>'`.
fn oid_after(sql: &str, after: &str) -> Option<u64> {
    literal_after(sql, after)?.parse().ok()
}

/// The type as `format_type` prints it.
pub fn format_type(ty: &DataType) -> String {
    let base = crate::types::type_display(ty);
    match ty {
        DataType::Varchar(Some(n)) | DataType::Char(Some(n)) => format!("{base}({n})"),
        DataType::Numeric(Some((p, s))) => format!("{base}({p},{s})"),
        _ => base,
    }
}

fn index_columns(t: &TableDesc, cols: &[usize]) -> String {
    cols.iter()
        .map(|c| quote_ident(&t.columns[*c].name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A table's indexes as psql lists them: (name, primary, unique, columns).
pub(crate) fn indexes(t: &TableDesc) -> Vec<(String, bool, bool, String)> {
    let mut out = Vec::new();
    if !t.primary_key.iter().any(|p| t.columns[*p].hidden) {
        out.push((t.pkey_name(), true, true, index_columns(t, &t.primary_key)));
    }
    let mut sec: Vec<_> = t
        .indexes
        .iter()
        .map(|i| {
            (
                i.name.clone(),
                false,
                i.unique,
                index_columns(t, &i.columns),
            )
        })
        .collect();
    sec.sort();
    out.extend(sec);
    out
}

async fn tables(catalog: &Catalog, db: &str) -> Result<Vec<std::sync::Arc<TableDesc>>> {
    let mut out = Vec::new();
    for n in catalog.table_names(db).await? {
        if let Some(t) = catalog.table(db, &n).await? {
            out.push(t);
        }
    }
    Ok(out)
}

async fn table_by_oid(
    catalog: &Catalog,
    db: &str,
    oid: u64,
) -> Result<Option<std::sync::Arc<TableDesc>>> {
    Ok(tables(catalog, db).await?.into_iter().find(|t| t.id == oid))
}

/// Answers `sql` if it is one of psql's describe queries.
pub async fn answer(
    sql: &str,
    catalog: &Catalog,
    db: &str,
    user: &str,
) -> Result<Option<StmtResult>> {
    if !sql.contains("pg_catalog.") {
        return Ok(None);
    }
    let s = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let name_re = literal_after(&s, "c.relname OPERATOR(pg_catalog.~)").map(Regex::new);
    let nsp_re = literal_after(&s, "n.nspname OPERATOR(pg_catalog.~)").map(Regex::new);
    // A relation is listed if its name matches and its schema matches the
    // schema pattern; psql asks for pg_table_is_visible instead when the
    // pattern names no schema: true on the search path (`public`).
    let on_path = s.contains("pg_catalog.pg_table_is_visible(c.oid)");
    let visible = |schema: &str, name: &str| {
        name_re.as_ref().is_none_or(|r| r.is_match(name))
            && nsp_re.as_ref().is_none_or(|r| r.is_match(schema))
            && (!on_path || schema == PUBLIC_SCHEMA)
    };

    // \d, \dt, \di [pattern]: the list of relations.
    if s.starts_with("SELECT n.nspname as \"Schema\", c.relname as \"Name\", CASE c.relkind")
        && s.contains("FROM pg_catalog.pg_class c")
    {
        catalog.refresh().await?;
        let kinds = s
            .find("c.relkind IN (")
            .map(|i| {
                let r = &s[i + 14..];
                r[..r.find(')').unwrap_or(0)].to_string()
            })
            .unwrap_or_default();
        let with_table = s.contains("c2.relname as \"Table\"");
        let mut out = Vec::new();
        for t in tables(catalog, db).await? {
            let (schema, tname) = split_name(&t.name);
            if kinds.contains("'r'") && visible(schema, tname) {
                let mut r = vec![text(schema), text(tname), text("table"), text(user)];
                if with_table {
                    r.push(Datum::Null);
                }
                out.push(r);
            }
            if kinds.contains("'i'") {
                for (name, ..) in indexes(&t) {
                    if visible(schema, &name) {
                        let mut r = vec![text(schema), text(name), text("index"), text(user)];
                        if with_table {
                            r.push(text(tname));
                        }
                        out.push(r);
                    }
                }
            }
        }
        let others = [("'v'", "view"), ("'S'", "sequence")];
        for (kind, what) in others {
            if !kinds.contains(kind) {
                continue;
            }
            let names = match what {
                "view" => catalog.view_names(db).await?,
                _ => catalog
                    .sequences(db)
                    .await?
                    .into_iter()
                    .map(|q| q.name)
                    .collect(),
            };
            for n in names {
                let (schema, name) = split_name(&n);
                if visible(schema, name) {
                    let mut r = vec![text(schema), text(name), text(what), text(user)];
                    if with_table {
                        r.push(Datum::Null);
                    }
                    out.push(r);
                }
            }
        }
        out.sort_by(|a, b| format!("{:?}", a[1]).cmp(&format!("{:?}", b[1])));
        let mut names = vec!["Schema", "Name", "Type", "Owner"];
        if with_table {
            names.push("Table");
        }
        return Ok(Some(rows_result(cols(&names), out)));
    }

    // \d name: find the relation.
    if s.starts_with("SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c") {
        catalog.refresh().await?;
        let mut out = Vec::new();
        for t in tables(catalog, db).await? {
            let (schema, tname) = split_name(&t.name);
            if visible(schema, tname) {
                out.push(vec![Datum::Int(t.id as i64), text(schema), text(tname)]);
            }
        }
        let mut c = cols(&["oid", "nspname", "relname"]);
        c[0].1 = DataType::Int8;
        return Ok(Some(rows_result(c, out)));
    }

    // \d name: the relation's flags.
    if s.starts_with("SELECT c.relchecks, c.relkind, c.relhasindex") {
        let names = [
            "relchecks",
            "relkind",
            "relhasindex",
            "relhasrules",
            "relhastriggers",
            "relrowsecurity",
            "relforcerowsecurity",
            "relhasoids",
            "relispartition",
            "?column?",
            "reltablespace",
            "reloftype",
            "relpersistence",
            "relreplident",
            "amname",
        ];
        let mut out = Vec::new();
        if let Some(t) = match oid_after(&s, "WHERE c.oid =") {
            Some(oid) => table_by_oid(catalog, db, oid).await?,
            None => None,
        } {
            let f = || text("f");
            // A table on either side of a foreign key has triggers in
            // PostgreSQL (psql then asks for its foreign keys).
            let has_fks = !t.fks.is_empty() || !t.inbound.is_empty();
            out.push(vec![
                text("0"),
                text("r"),
                text(if indexes(&t).is_empty() { "f" } else { "t" }),
                f(),
                text(if has_fks { "t" } else { "f" }),
                f(),
                f(),
                f(),
                f(),
                text(""),
                text("0"),
                text(""),
                text("p"),
                text("d"),
                text("heap"),
            ]);
        }
        return Ok(Some(rows_result(cols(&names), out)));
    }

    // \d name: its foreign keys, and those of other tables that
    // reference it.
    if s.contains("FROM pg_catalog.pg_constraint r") && s.contains("r.contype = 'f'") {
        let mut out = Vec::new();
        if let Some(t) = match oid_after(&s, "WHERE r.conrelid =") {
            Some(oid) => table_by_oid(catalog, db, oid).await?,
            None => None,
        } {
            let all = tables(catalog, db).await?;
            for f in &t.fks {
                if let Some(parent) = all.iter().find(|p| p.name == f.parent) {
                    out.push(vec![
                        text("t"),
                        text(&f.name),
                        text(crate::pgcatalog::fk_definition(&t, f, parent)),
                        text(&t.name),
                    ]);
                }
            }
        }
        out.sort_by(|a, b| a[1].sort_cmp(&b[1]));
        return Ok(Some(rows_result(
            cols(&["sametable", "conname", "condef", "ontable"]),
            out,
        )));
    }
    if s.contains("WHERE confrelid IN (SELECT pg_catalog.pg_partition_ancestors(") {
        let mut out = Vec::new();
        if let Some(t) = match oid_after(&s, "pg_catalog.pg_partition_ancestors(") {
            Some(oid) => table_by_oid(catalog, db, oid).await?,
            None => None,
        } {
            for child in tables(catalog, db).await? {
                for f in child.fks.iter().filter(|f| f.parent == t.name) {
                    out.push(vec![
                        text(&f.name),
                        text(&child.name),
                        text(crate::pgcatalog::fk_definition(&child, f, &t)),
                    ]);
                }
            }
        }
        out.sort_by(|a, b| a[0].sort_cmp(&b[0]));
        return Ok(Some(rows_result(
            cols(&["conname", "ontable", "condef"]),
            out,
        )));
    }

    // \l: the databases.
    if s.starts_with("SELECT d.datname as \"Name\"") && s.contains("FROM pg_catalog.pg_database d")
    {
        let names = [
            "Name",
            "Owner",
            "Encoding",
            "Collate",
            "Ctype",
            "ICU Locale",
            "Locale Provider",
            "Access privileges",
        ];
        let mut dbs = catalog.database_names().await?;
        dbs.sort();
        let out = dbs
            .into_iter()
            .map(|d| {
                vec![
                    text(d),
                    text(user),
                    text("UTF8"),
                    text("C"),
                    text("C"),
                    Datum::Null,
                    text("libc"),
                    Datum::Null,
                ]
            })
            .collect();
        return Ok(Some(rows_result(cols(&names), out)));
    }

    // \du: the roles (every one may log in; there are no privileges).
    if s.starts_with("SELECT r.rolname, r.rolsuper") && s.contains("FROM pg_catalog.pg_roles r") {
        let names = [
            "rolname",
            "rolsuper",
            "rolinherit",
            "rolcreaterole",
            "rolcreatedb",
            "rolcanlogin",
            "rolconnlimit",
            "rolvaliduntil",
            "memberof",
            "rolreplication",
            "rolbypassrls",
        ];
        let mut roles = catalog.role_names().await?;
        for builtin in ["root", user] {
            if !roles.iter().any(|r| r == builtin) {
                roles.push(builtin.to_string());
            }
        }
        roles.sort();
        let out = roles
            .into_iter()
            .map(|r| {
                let sup = if r == "root" { "t" } else { "f" };
                vec![
                    text(r),
                    text(sup),
                    text("t"),
                    text(sup),
                    text(sup),
                    text("t"),
                    text("-1"),
                    Datum::Null,
                    text("{}"),
                    text("f"),
                    text("f"),
                ]
            })
            .collect();
        return Ok(Some(rows_result(cols(&names), out)));
    }

    // \d name: the columns.
    if s.starts_with("SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)")
        && s.contains("FROM pg_catalog.pg_attribute a")
    {
        let mut names = vec![
            "attname",
            "format_type",
            "pg_get_expr",
            "attnotnull",
            "attcollation",
            "attidentity",
            "attgenerated",
        ];
        // \d+ also asks for storage, compression, statistics target and
        // the column's comment.
        let plus = s.contains("a.attstorage");
        if plus {
            names.extend([
                "attstorage",
                "attcompression",
                "attstattarget",
                "col_description",
            ]);
        }
        let mut out = Vec::new();
        if let Some(t) = match oid_after(&s, "WHERE a.attrelid =") {
            Some(oid) => table_by_oid(catalog, db, oid).await?,
            None => None,
        } {
            for c in t.columns.iter().filter(|c| !c.hidden) {
                let default = if c.serial {
                    text(format!("nextval('{}_{}_seq'::regclass)", t.name, c.name))
                } else {
                    c.default.clone().map(text).unwrap_or(Datum::Null)
                };
                let mut row = vec![
                    text(&c.name),
                    text(format_type(&c.ty)),
                    default,
                    text(if c.nullable { "f" } else { "t" }),
                    Datum::Null,
                    text(""),
                    text(""),
                ];
                if plus {
                    // Values are stored inline in the row ('p', plain).
                    row.extend([text("p"), text(""), Datum::Null, Datum::Null]);
                }
                out.push(row);
            }
        }
        return Ok(Some(rows_result(cols(&names), out)));
    }

    // \d name: the indexes.
    if s.starts_with("SELECT c2.relname, i.indisprimary, i.indisunique") {
        let names = [
            "relname",
            "indisprimary",
            "indisunique",
            "indisclustered",
            "indisvalid",
            "pg_get_indexdef",
            "pg_get_constraintdef",
            "contype",
            "condeferrable",
            "condeferred",
            "indisreplident",
            "reltablespace",
        ];
        let mut out = Vec::new();
        if let Some(t) = match oid_after(&s, "WHERE c.oid =") {
            Some(oid) => table_by_oid(catalog, db, oid).await?,
            None => None,
        } {
            let tf = |b: bool| text(if b { "t" } else { "f" });
            for (name, primary, unique, columns) in indexes(&t) {
                out.push(vec![
                    text(&name),
                    tf(primary),
                    tf(unique),
                    tf(false),
                    tf(true),
                    text(format!(
                        "CREATE {}INDEX {} ON {}.{} USING btree ({columns})",
                        if unique { "UNIQUE " } else { "" },
                        quote_ident(&name),
                        quote_ident(split_name(&t.name).0),
                        quote_ident(split_name(&t.name).1)
                    )),
                    if primary {
                        text(format!("PRIMARY KEY ({columns})"))
                    } else {
                        Datum::Null
                    },
                    if primary { text("p") } else { Datum::Null },
                    tf(false),
                    tf(false),
                    tf(false),
                    text("0"),
                ]);
            }
        }
        return Ok(Some(rows_result(cols(&names), out)));
    }

    // pgbench's startup lookup of pgbench_accounts (its position in the
    // search path, partitioning method, partition count).
    if s.starts_with("select o.n, p.partstrat, pg_catalog.count(i.inhparent)") {
        catalog.refresh().await?;
        let mut out = Vec::new();
        if let Some(name) = literal_after(&s, "where c.relname =") {
            if catalog.table(db, name).await?.is_some() {
                out.push(vec![Datum::Int(2), Datum::Null, Datum::Int(0)]);
            }
        }
        let mut c = cols(&["n", "partstrat", "count"]);
        c[0].1 = DataType::Int4;
        c[2].1 = DataType::Int8;
        return Ok(Some(rows_result(c, out)));
    }

    // \d name: policies, statistics, publications, inheritance, user
    // triggers: none.
    let empty: &[(&str, usize)] = &[
        ("FROM pg_catalog.pg_policy pol", 6),
        ("pg_catalog.pg_get_triggerdef(t.oid, true)", 5),
        ("FROM pg_catalog.pg_statistic_ext", 9),
        ("FROM pg_catalog.pg_publication p", 3),
        ("SELECT c.oid::pg_catalog.regclass FROM pg_catalog.pg_class c, pg_catalog.pg_inherits i", 1),
        ("SELECT c.oid::pg_catalog.regclass, c.relkind, inhdetachpending", 4),
    ];
    for (marker, n) in empty {
        if s.contains(marker) {
            let names: Vec<String> = (1..=*n).map(|i| format!("column{i}")).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            return Ok(Some(rows_result(cols(&names), vec![])));
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------------------
// The regular expressions psql sends for name patterns: `^(t.*)$`,
// `^(a|b)$`. Supported: literals, `\` escapes, `.`, `*`, `+`, `?`,
// `^`, `$`, groups and alternation.

#[derive(Debug, Clone)]
enum Node {
    Char(char),
    Any,
    Start,
    End,
    Group(Vec<Vec<(Node, Rep)>>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Rep {
    One,
    Star,
    Plus,
    Opt,
}

/// A small backtracking regular expression (see above).
pub struct Regex {
    alts: Vec<Vec<(Node, Rep)>>,
}

impl Regex {
    pub fn new(pattern: &str) -> Regex {
        let chars: Vec<char> = pattern.chars().collect();
        let mut pos = 0;
        Regex {
            alts: parse_alts(&chars, &mut pos),
        }
    }

    /// Whether the expression matches somewhere in `s`.
    pub fn is_match(&self, s: &str) -> bool {
        let chars: Vec<char> = s.chars().collect();
        (0..=chars.len()).any(|i| match_alts(&self.alts, &chars, i, &mut |_| true))
    }
}

fn parse_alts(p: &[char], pos: &mut usize) -> Vec<Vec<(Node, Rep)>> {
    let mut alts = vec![Vec::new()];
    while *pos < p.len() {
        let c = p[*pos];
        *pos += 1;
        let node = match c {
            ')' => break,
            '|' => {
                alts.push(Vec::new());
                continue;
            }
            '(' => Node::Group(parse_alts(p, pos)),
            '.' => Node::Any,
            '^' => Node::Start,
            '$' => Node::End,
            '\\' if *pos < p.len() => {
                *pos += 1;
                Node::Char(p[*pos - 1])
            }
            c => Node::Char(c),
        };
        let rep = match p.get(*pos) {
            Some('*') => Rep::Star,
            Some('+') => Rep::Plus,
            Some('?') => Rep::Opt,
            _ => Rep::One,
        };
        if rep != Rep::One {
            *pos += 1;
        }
        alts.last_mut()
            .expect("one alternative at least")
            .push((node, rep));
    }
    alts
}

fn match_alts(
    alts: &[Vec<(Node, Rep)>],
    s: &[char],
    i: usize,
    k: &mut dyn FnMut(usize) -> bool,
) -> bool {
    alts.iter().any(|seq| match_seq(seq, s, i, k))
}

fn match_seq(seq: &[(Node, Rep)], s: &[char], i: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
    let Some(((node, rep), rest)) = seq.split_first() else {
        return k(i);
    };
    match rep {
        Rep::One => match_node(node, s, i, &mut |j| match_seq(rest, s, j, k)),
        Rep::Opt => {
            match_node(node, s, i, &mut |j| match_seq(rest, s, j, k)) || match_seq(rest, s, i, k)
        }
        Rep::Star | Rep::Plus => {
            // Greedy: collect every end reachable by repetition.
            let mut ends = if *rep == Rep::Star { vec![i] } else { vec![] };
            let mut frontier = vec![i];
            while let Some(at) = frontier.pop() {
                let mut next = Vec::new();
                match_node(node, s, at, &mut |j| {
                    if j != at && !ends.contains(&j) {
                        next.push(j);
                    }
                    false
                });
                for j in next {
                    ends.push(j);
                    frontier.push(j);
                }
            }
            ends.sort_unstable_by(|a, b| b.cmp(a));
            ends.into_iter().any(|j| match_seq(rest, s, j, k))
        }
    }
}

fn match_node(node: &Node, s: &[char], i: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
    match node {
        Node::Char(c) => s.get(i) == Some(c) && k(i + 1),
        Node::Any => i < s.len() && k(i + 1),
        Node::Start => i == 0 && k(i),
        Node::End => i == s.len() && k(i),
        Node::Group(alts) => match_alts(alts, s, i, k),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psql_patterns_match_like_postgres() {
        let m = |p: &str, s: &str| Regex::new(p).is_match(s);
        assert!(m("^(t)$", "t"));
        assert!(!m("^(t)$", "tt"));
        assert!(m("^(t.*)$", "tab"));
        assert!(!m("^(t.*)$", "xt"));
        assert!(m("^(a|bc)$", "bc"));
        assert!(!m("^(a|bc)$", "abc"));
        assert!(m("^pg_toast", "pg_toast_1"));
        assert!(m("oa", "foab"));
        assert!(m("^(t.?x+)$", "tx"));
        assert!(m("^(t\\.x)$", "t.x"));
        assert!(!m("^(t\\.x)$", "tax"));
    }

    #[test]
    fn literals_and_oids_are_found_after_their_marker() {
        let s = "WHERE c.oid = '16384' AND x";
        assert_eq!(oid_after(s, "WHERE c.oid ="), Some(16384));
        assert_eq!(
            literal_after(
                "c.relname OPERATOR(pg_catalog.~) '^(t)$' COLLATE",
                "OPERATOR(pg_catalog.~)"
            ),
            Some("^(t)$")
        );
    }
}
