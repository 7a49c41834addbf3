//! The most-read `pg_catalog` relations (`pg_namespace`, `pg_class`,
//! `pg_tables`, `pg_views`, `pg_indexes`, `pg_attribute`, `pg_type`,
//! `pg_database`), built from the catalog when a statement names them.
//!
//! Like `information_schema` (see [`crate::infoschema`]), each is a view
//! whose query lists its rows as `VALUES`, so filters, joins and
//! aggregates work on it. As in PostgreSQL, `pg_catalog` comes first on
//! the search path: `pg_tables` names `pg_catalog.pg_tables`. Columns are
//! PostgreSQL's most-used ones, under its names; oid columns are bigint.
//! Oids: a table's is its table id (a sequence's its id, from the same
//! counter), an index's `1000000 + 100 * table id +
//! index id`, a schema's 11 (`pg_catalog`), 2200 (`public`), 13000
//! (`information_schema`) or 16384 + its position among the created ones;
//! the owner of everything is role 10.

use std::sync::Arc;

use crate::catalog::{quote_ident, split_name, Catalog, TableDesc, ViewDesc, PUBLIC_SCHEMA};
use crate::error::Result;
use crate::infoschema::{lit, values_query};
use crate::types::{type_display, DataType};

/// How these relations are named internally (`pg_catalog.<name>`).
pub const PREFIX: &str = "pg_catalog.";

const OWNER: &str = "10";

/// The relations this module answers.
const RELATIONS: [&str; 8] = [
    "pg_namespace",
    "pg_class",
    "pg_tables",
    "pg_views",
    "pg_indexes",
    "pg_attribute",
    "pg_type",
    "pg_database",
];

/// The internal name of `name` if it is one of these relations, qualified
/// (`pg_catalog.pg_tables`) or not (`pg_tables`).
pub fn resolve(name: &str) -> Option<String> {
    let short = name.strip_prefix(PREFIX).unwrap_or(name);
    RELATIONS
        .contains(&short)
        .then(|| format!("{PREFIX}{short}"))
}

/// The types a column can have, for `pg_type`.
const TYPES: [DataType; 19] = [
    DataType::Bool,
    DataType::Bytea,
    DataType::Int8,
    DataType::Int2,
    DataType::Int4,
    DataType::Text,
    DataType::Json,
    DataType::Float4,
    DataType::Float8,
    DataType::Char(None),
    DataType::Varchar(None),
    DataType::Date,
    DataType::Time,
    DataType::Timestamp,
    DataType::TimestampTz,
    DataType::Interval,
    DataType::Numeric(None),
    DataType::Uuid,
    DataType::Jsonb,
];

fn type_len(ty: &DataType) -> i32 {
    match ty {
        DataType::Bool => 1,
        DataType::Int2 => 2,
        DataType::Int4 | DataType::Float4 | DataType::Date => 4,
        DataType::Int8
        | DataType::Float8
        | DataType::Time
        | DataType::Timestamp
        | DataType::TimestampTz => 8,
        DataType::Interval | DataType::Uuid => 16,
        _ => -1,
    }
}

/// The oid of PostgreSQL's array type of `ty`.
fn array_oid(ty: &DataType) -> u32 {
    match ty {
        DataType::Bool => 1000,
        DataType::Bytea => 1001,
        DataType::Int8 => 1016,
        DataType::Int2 => 1005,
        DataType::Int4 => 1007,
        DataType::Text => 1009,
        DataType::Json => 199,
        DataType::Float4 => 1021,
        DataType::Float8 => 1022,
        DataType::Char(_) => 1014,
        DataType::Varchar(_) => 1015,
        DataType::Date => 1182,
        DataType::Time => 1183,
        DataType::Timestamp => 1115,
        DataType::TimestampTz => 1185,
        DataType::Interval => 1187,
        DataType::Numeric(_) => 1231,
        DataType::Uuid => 2951,
        DataType::Jsonb => 3807,
        DataType::Array(_) | DataType::Unknown => 0,
    }
}

fn boolean(b: bool) -> String {
    b.to_string()
}

fn index_oid(t: &TableDesc, index_id: u64) -> u64 {
    1_000_000 + 100 * t.id + index_id
}

/// A table's indexes as psql lists them (see `pgcompat`), with their oids:
/// (oid, name, unique, columns as SQL).
fn indexes(t: &TableDesc) -> Vec<(u64, String, bool, String)> {
    crate::pgcompat::indexes(t)
        .into_iter()
        .map(|(name, primary, unique, cols)| {
            let id = match primary {
                true => 1,
                false => t.index(&name).map_or(0, |i| i.id),
            };
            (index_oid(t, id), name, unique, cols)
        })
        .collect()
}

/// The view for `name` (as [`resolve`] returns it) in database `db`, or
/// `None` if `name` is not one of these relations.
pub async fn view(catalog: &Catalog, db: &str, name: &str) -> Result<Option<Arc<ViewDesc>>> {
    let Some(short) = name.strip_prefix(PREFIX) else {
        return Ok(None);
    };
    let schemas = catalog.schema_names(db).await?;
    let schema_oid = |s: &str| -> u64 {
        match s {
            "pg_catalog" => 11,
            PUBLIC_SCHEMA => 2200,
            "information_schema" => 13000,
            _ => 16384 + schemas.iter().position(|x| x == s).unwrap_or(0) as u64,
        }
    };
    let (cols, rows): (&[(&str, &str)], Vec<Vec<String>>) = match short {
        "pg_namespace" => {
            let mut all: Vec<&str> = vec!["pg_catalog", "information_schema"];
            all.extend(schemas.iter().map(String::as_str));
            let rows = all
                .iter()
                .map(|s| vec![schema_oid(s).to_string(), lit(Some(s)), OWNER.into()])
                .collect();
            (
                &[
                    ("oid", "bigint"),
                    ("nspname", "text"),
                    ("nspowner", "bigint"),
                ],
                rows,
            )
        }
        "pg_class" => {
            let mut rows = Vec::new();
            for t in catalog.tables(db).await? {
                let (schema, tname) = split_name(&t.name);
                let nsp = schema_oid(schema).to_string();
                let idx = indexes(&t);
                rows.push(vec![
                    t.id.to_string(),
                    lit(Some(tname)),
                    nsp.clone(),
                    lit(Some("r")),
                    OWNER.into(),
                    boolean(!idx.is_empty()),
                    (t.columns.iter().filter(|c| !c.hidden).count()).to_string(),
                    boolean(false),
                ]);
                for (oid, name, _, cols) in idx {
                    rows.push(vec![
                        oid.to_string(),
                        lit(Some(&name)),
                        nsp.clone(),
                        lit(Some("i")),
                        OWNER.into(),
                        boolean(false),
                        cols.split(", ").count().to_string(),
                        boolean(false),
                    ]);
                }
            }
            for (i, v) in catalog.view_names(db).await?.iter().enumerate() {
                let (schema, vname) = split_name(v);
                let columns = match catalog.view(db, v).await? {
                    Some(d) => d.columns.len(),
                    None => continue,
                };
                rows.push(vec![
                    (2_000_000 + i).to_string(),
                    lit(Some(vname)),
                    schema_oid(schema).to_string(),
                    lit(Some("v")),
                    OWNER.into(),
                    boolean(false),
                    columns.to_string(),
                    boolean(false),
                ]);
            }
            for q in catalog.sequences(db).await? {
                let (schema, qname) = split_name(&q.name);
                rows.push(vec![
                    q.id.to_string(),
                    lit(Some(qname)),
                    schema_oid(schema).to_string(),
                    lit(Some("S")),
                    OWNER.into(),
                    boolean(false),
                    "3".into(),
                    boolean(false),
                ]);
            }
            (
                &[
                    ("oid", "bigint"),
                    ("relname", "text"),
                    ("relnamespace", "bigint"),
                    ("relkind", "text"),
                    ("relowner", "bigint"),
                    ("relhasindex", "boolean"),
                    ("relnatts", "smallint"),
                    ("relispartition", "boolean"),
                ],
                rows,
            )
        }
        "pg_tables" => {
            let mut rows = Vec::new();
            for t in catalog.tables(db).await? {
                let (schema, tname) = split_name(&t.name);
                rows.push(vec![
                    lit(Some(schema)),
                    lit(Some(tname)),
                    lit(Some("root")),
                    lit(None),
                    boolean(!indexes(&t).is_empty()),
                    boolean(false),
                    boolean(false),
                    boolean(false),
                ]);
            }
            (
                &[
                    ("schemaname", "text"),
                    ("tablename", "text"),
                    ("tableowner", "text"),
                    ("tablespace", "text"),
                    ("hasindexes", "boolean"),
                    ("hasrules", "boolean"),
                    ("hastriggers", "boolean"),
                    ("rowsecurity", "boolean"),
                ],
                rows,
            )
        }
        "pg_views" => {
            let mut rows = Vec::new();
            for v in catalog.view_names(db).await? {
                let Some(d) = catalog.view(db, &v).await? else {
                    continue;
                };
                let (schema, vname) = split_name(&v);
                rows.push(vec![
                    lit(Some(schema)),
                    lit(Some(vname)),
                    lit(Some("root")),
                    lit(Some(&d.query)),
                ]);
            }
            (
                &[
                    ("schemaname", "text"),
                    ("viewname", "text"),
                    ("viewowner", "text"),
                    ("definition", "text"),
                ],
                rows,
            )
        }
        "pg_indexes" => {
            let mut rows = Vec::new();
            for t in catalog.tables(db).await? {
                let (schema, tname) = split_name(&t.name);
                for (_, name, unique, cols) in indexes(&t) {
                    let def = format!(
                        "CREATE {}INDEX {} ON {}.{} USING btree ({cols})",
                        if unique { "UNIQUE " } else { "" },
                        quote_ident(&name),
                        quote_ident(schema),
                        quote_ident(tname),
                    );
                    rows.push(vec![
                        lit(Some(schema)),
                        lit(Some(tname)),
                        lit(Some(&name)),
                        lit(None),
                        lit(Some(&def)),
                    ]);
                }
            }
            (
                &[
                    ("schemaname", "text"),
                    ("tablename", "text"),
                    ("indexname", "text"),
                    ("tablespace", "text"),
                    ("indexdef", "text"),
                ],
                rows,
            )
        }
        "pg_attribute" => {
            let mut rows = Vec::new();
            for t in catalog.tables(db).await? {
                let visible = t.columns.iter().filter(|c| !c.hidden);
                for (i, c) in visible.enumerate() {
                    rows.push(vec![
                        t.id.to_string(),
                        lit(Some(&c.name)),
                        c.ty.pg_type().oid().to_string(),
                        (i + 1).to_string(),
                        boolean(!c.nullable),
                        boolean(c.default.is_some() || c.serial),
                        boolean(false),
                        lit(Some(&type_display(&c.ty))),
                    ]);
                }
            }
            (
                &[
                    ("attrelid", "bigint"),
                    ("attname", "text"),
                    ("atttypid", "bigint"),
                    ("attnum", "smallint"),
                    ("attnotnull", "boolean"),
                    ("atthasdef", "boolean"),
                    ("attisdropped", "boolean"),
                    // Not in PostgreSQL's pg_attribute: format_type's text.
                    ("atttypname", "text"),
                ],
                rows,
            )
        }
        "pg_type" => {
            let rows = TYPES
                .iter()
                .map(|ty| {
                    let t = ty.pg_type();
                    vec![
                        t.oid().to_string(),
                        lit(Some(t.name())),
                        "11".into(),
                        type_len(ty).to_string(),
                        lit(Some("b")),
                        array_oid(ty).to_string(),
                    ]
                })
                .collect();
            (
                &[
                    ("oid", "bigint"),
                    ("typname", "text"),
                    ("typnamespace", "bigint"),
                    ("typlen", "smallint"),
                    ("typtype", "text"),
                    ("typarray", "bigint"),
                ],
                rows,
            )
        }
        "pg_database" => {
            let rows = catalog
                .database_names()
                .await?
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    vec![
                        (16384 + i).to_string(),
                        lit(Some(d)),
                        OWNER.into(),
                        "6".into(),
                        lit(Some("C")),
                        lit(Some("C")),
                        boolean(true),
                    ]
                })
                .collect();
            (
                &[
                    ("oid", "bigint"),
                    ("datname", "text"),
                    ("datdba", "bigint"),
                    ("encoding", "integer"),
                    ("datcollate", "text"),
                    ("datctype", "text"),
                    ("datallowconn", "boolean"),
                ],
                rows,
            )
        }
        _ => return Ok(None),
    };
    Ok(Some(Arc::new(ViewDesc {
        name: name.to_string(),
        query: values_query(cols, &rows),
        columns: cols.iter().map(|(n, _)| n.to_string()).collect(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_with_or_without_the_schema() {
        assert_eq!(
            resolve("pg_tables").as_deref(),
            Some("pg_catalog.pg_tables")
        );
        assert_eq!(
            resolve("pg_catalog.pg_class").as_deref(),
            Some("pg_catalog.pg_class")
        );
        assert_eq!(resolve("pg_nothing"), None);
        assert_eq!(resolve("accounts"), None);
    }
}
