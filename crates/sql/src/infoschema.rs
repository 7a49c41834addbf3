//! `information_schema.tables`, `.columns`, `.schemata` and `.sequences`
//! (those made by CREATE SEQUENCE), built from the
//! catalog when a statement names them.
//!
//! Each is a view whose query lists its rows as `VALUES` (typed by casts),
//! so filters, joins, ordering and aggregates work on it as on any view.
//! They list the relations of every schema of the current database;
//! `schemata` also names `information_schema` and `pg_catalog`. Column sets are PostgreSQL's
//! most-used columns, under PostgreSQL's names and value spellings
//! (`BASE TABLE`, `YES` / `NO`, `character varying`).

use std::sync::Arc;

use crate::catalog::{split_name, Catalog, ViewDesc, SYSTEM_SCHEMAS};
use crate::error::Result;
use crate::types::{type_display, DataType};

/// How these relations are named internally (`information_schema.<name>`).
pub const PREFIX: &str = "information_schema.";

/// A SQL literal: `'text'` (quotes doubled), or NULL.
pub(crate) fn lit(v: Option<&str>) -> String {
    match v {
        Some(s) => format!("'{}'", s.replace('\'', "''")),
        None => "NULL".into(),
    }
}

/// The query of a view with columns `cols` (name, SQL type) and `rows`
/// (SQL literals), every value cast to its column's type.
pub(crate) fn values_query(cols: &[(&str, &str)], rows: &[Vec<String>]) -> String {
    let names: Vec<&str> = cols.iter().map(|(n, _)| *n).collect();
    if rows.is_empty() {
        let nulls: Vec<String> = cols
            .iter()
            .map(|(n, t)| format!("CAST(NULL AS {t}) AS {n}"))
            .collect();
        return format!("SELECT {} WHERE false", nulls.join(", "));
    }
    let rows: Vec<String> = rows
        .iter()
        .map(|r| {
            let vals: Vec<String> = r
                .iter()
                .zip(cols)
                .map(|(v, (_, t))| format!("CAST({v} AS {t})"))
                .collect();
            format!("({})", vals.join(", "))
        })
        .collect();
    format!(
        "SELECT * FROM (VALUES {}) AS v({})",
        rows.join(", "),
        names.join(", ")
    )
}

/// Precision and scale PostgreSQL reports for a numeric column type.
fn numeric_shape(ty: &DataType) -> (Option<u32>, Option<u32>) {
    match ty {
        DataType::Int2 => (Some(16), Some(0)),
        DataType::Int4 => (Some(32), Some(0)),
        DataType::Int8 => (Some(64), Some(0)),
        DataType::Float4 => (Some(24), None),
        DataType::Float8 => (Some(53), None),
        DataType::Numeric(Some((p, s))) => (Some(*p), Some(*s)),
        _ => (None, None),
    }
}

fn num(v: Option<u32>) -> String {
    v.map_or("NULL".into(), |n| n.to_string())
}

/// The view for `name` (e.g. `information_schema.tables`) in database
/// `db`, or `None` if `name` is not one of them.
pub async fn view(catalog: &Catalog, db: &str, name: &str) -> Result<Option<Arc<ViewDesc>>> {
    let Some(short) = name.strip_prefix(PREFIX) else {
        return Ok(None);
    };
    let (cols, rows): (&[(&str, &str)], Vec<Vec<String>>) = match short {
        "tables" => {
            // (name, table_type, is_insertable_into)
            let mut relations: Vec<(String, &str, &str)> = Vec::new();
            for t in catalog.table_names(db).await? {
                relations.push((t, "BASE TABLE", "YES"));
            }
            for v in catalog.view_names(db).await? {
                relations.push((v, "VIEW", "NO"));
            }
            let mut rows: Vec<Vec<String>> = relations
                .iter()
                .map(|(name, kind, insertable)| {
                    let (schema, name) = split_name(name);
                    vec![
                        lit(Some(db)),
                        lit(Some(schema)),
                        lit(Some(name)),
                        lit(Some(kind)),
                        lit(Some(insertable)),
                        lit(Some("NO")),
                    ]
                })
                .collect();
            rows.sort();
            (
                &[
                    ("table_catalog", "text"),
                    ("table_schema", "text"),
                    ("table_name", "text"),
                    ("table_type", "text"),
                    ("is_insertable_into", "text"),
                    ("is_typed", "text"),
                ],
                rows,
            )
        }
        "columns" => {
            let mut rows = Vec::new();
            for t in catalog.tables(db).await? {
                let visible = t.columns.iter().filter(|c| !c.hidden);
                for (i, c) in visible.enumerate() {
                    let (precision, scale) = numeric_shape(&c.ty);
                    let max_len = match &c.ty {
                        DataType::Varchar(n) | DataType::Char(n) => *n,
                        _ => None,
                    };
                    let (schema, name) = split_name(&t.name);
                    rows.push(vec![
                        lit(Some(db)),
                        lit(Some(schema)),
                        lit(Some(name)),
                        lit(Some(&c.name)),
                        (i + 1).to_string(),
                        lit(c.default.as_deref()),
                        lit(Some(if c.nullable { "YES" } else { "NO" })),
                        lit(Some(&match &c.ty {
                            DataType::Array(_) => "ARRAY".to_string(),
                            ty => type_display(ty),
                        })),
                        num(max_len),
                        num(precision),
                        num(scale),
                        lit(Some(&udt_name(&c.ty))),
                    ]);
                }
            }
            (
                &[
                    ("table_catalog", "text"),
                    ("table_schema", "text"),
                    ("table_name", "text"),
                    ("column_name", "text"),
                    ("ordinal_position", "integer"),
                    ("column_default", "text"),
                    ("is_nullable", "text"),
                    ("data_type", "text"),
                    ("character_maximum_length", "integer"),
                    ("numeric_precision", "integer"),
                    ("numeric_scale", "integer"),
                    ("udt_name", "text"),
                ],
                rows,
            )
        }
        "schemata" => {
            let mut schemas: Vec<String> = SYSTEM_SCHEMAS.iter().map(|s| s.to_string()).collect();
            schemas.extend(catalog.schema_names(db).await?.iter().cloned());
            schemas.sort();
            let rows = schemas
                .iter()
                .map(|s| vec![lit(Some(db)), lit(Some(s)), lit(Some("root"))])
                .collect();
            (
                &[
                    ("catalog_name", "text"),
                    ("schema_name", "text"),
                    ("schema_owner", "text"),
                ],
                rows,
            )
        }
        "sequences" => {
            let mut rows = Vec::new();
            for q in catalog.sequences(db).await? {
                let (schema, name) = split_name(&q.name);
                let bits = match q.type_name.as_str() {
                    "smallint" => 16,
                    "integer" => 32,
                    _ => 64,
                };
                rows.push(vec![
                    lit(Some(db)),
                    lit(Some(schema)),
                    lit(Some(name)),
                    lit(Some(&q.type_name)),
                    bits.to_string(),
                    "2".into(),
                    "0".into(),
                    lit(Some(&q.start.to_string())),
                    lit(Some(&q.min.to_string())),
                    lit(Some(&q.max.to_string())),
                    lit(Some(&q.increment.to_string())),
                    lit(Some(if q.cycle { "YES" } else { "NO" })),
                ]);
            }
            (
                &[
                    ("sequence_catalog", "text"),
                    ("sequence_schema", "text"),
                    ("sequence_name", "text"),
                    ("data_type", "text"),
                    ("numeric_precision", "integer"),
                    ("numeric_precision_radix", "integer"),
                    ("numeric_scale", "integer"),
                    ("start_value", "text"),
                    ("minimum_value", "text"),
                    ("maximum_value", "text"),
                    ("increment", "text"),
                    ("cycle_option", "text"),
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

/// The name of a column's type in `pg_type` (`int4`, `varchar`, `_text`).
fn udt_name(ty: &DataType) -> String {
    match ty {
        DataType::Array(elem) => format!("_{}", udt_name(elem)),
        DataType::Varchar(_) => "varchar".into(),
        DataType::Char(_) => "bpchar".into(),
        DataType::Numeric(_) => "numeric".into(),
        other => other.sql_name(),
    }
}
