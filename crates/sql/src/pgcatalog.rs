//! The most-read `pg_catalog` relations (`pg_namespace`, `pg_class`,
//! `pg_tables`, `pg_views`, `pg_indexes`, `pg_attribute`, `pg_type`,
//! `pg_database`, `pg_constraint`, `pg_index`, `pg_attrdef`,
//! `pg_sequence`, `pg_description`, `pg_collation`, `pg_am`,
//! `pg_opclass`), built from the catalog when a statement names them:
//! enough for psql and for ORMs that reflect tables (SQLAlchemy's
//! inspector).
//!
//! Like `information_schema` (see [`crate::infoschema`]), each is a view
//! whose query lists its rows as `VALUES`, so filters, joins and
//! aggregates work on it. As in PostgreSQL, `pg_catalog` comes first on
//! the search path: `pg_tables` names `pg_catalog.pg_tables`. Columns are
//! PostgreSQL's most-used ones, under its names and types (oid columns
//! are `oid`, an integer type here).
//! Oids: a table's is its table id (a sequence's its id, from the same
//! counter), an index's `1000000 + 100 * table id +
//! index id`, a schema's 11 (`pg_catalog`), 2200 (`public`), 13000
//! (`information_schema`) or 16384 + its position among the created ones;
//! the owner of everything is role 10.

use std::sync::Arc;

use crate::catalog::{
    quote_ident, split_name, Catalog, ForeignKeyDesc, Identity, TableDesc, ViewDesc, PUBLIC_SCHEMA,
};
use crate::error::Result;
use crate::infoschema::{lit, values_query};
use crate::types::{type_display, DataType, Datum};

/// How these relations are named internally (`pg_catalog.<name>`).
pub const PREFIX: &str = "pg_catalog.";

const OWNER: &str = "10";

/// The relations this module answers, with the oids PostgreSQL gives
/// them (`'pg_catalog.pg_class'::regclass`).
const RELATIONS: [(&str, u32); 17] = [
    ("pg_namespace", 2615),
    ("pg_class", 1259),
    ("pg_tables", 12_904),
    ("pg_views", 12_908),
    ("pg_indexes", 12_925),
    ("pg_attribute", 1249),
    ("pg_type", 1247),
    ("pg_database", 1262),
    ("pg_constraint", 2606),
    ("pg_index", 2610),
    ("pg_attrdef", 2604),
    ("pg_sequence", 2224),
    ("pg_description", 2609),
    ("pg_collation", 3456),
    ("pg_am", 2601),
    ("pg_opclass", 2616),
    ("pg_range", 3541),
];

/// The internal name of `name` if it is one of these relations, qualified
/// (`pg_catalog.pg_tables`) or not (`pg_tables`).
pub fn resolve(name: &str) -> Option<String> {
    let short = name.strip_prefix(PREFIX).unwrap_or(name);
    RELATIONS
        .iter()
        .any(|(r, _)| *r == short)
        .then(|| format!("{PREFIX}{short}"))
}

/// The types a column can have, for `pg_type`.
const TYPES: [DataType; 20] = [
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
    DataType::Oid,
];

fn type_len(ty: &DataType) -> i32 {
    match ty {
        DataType::Bool => 1,
        DataType::Int2 => 2,
        DataType::Int4 | DataType::Float4 | DataType::Date | DataType::Oid => 4,
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
        DataType::Oid => 1028,
        DataType::Array(_) | DataType::Unknown => 0,
    }
}

fn boolean(b: bool) -> String {
    b.to_string()
}

/// A foreign key as `pg_get_constraintdef` gives it: `FOREIGN KEY (a)
/// REFERENCES parent(id) [ON DELETE ...]`.
pub fn fk_definition(t: &TableDesc, f: &ForeignKeyDesc, parent: &TableDesc) -> String {
    let names = |cols: &[usize], owner: &TableDesc| -> String {
        cols.iter()
            .map(|p| quote_ident(&owner.columns[*p].name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let action = if f.cascade_delete {
        " ON DELETE CASCADE"
    } else if f.set_null_delete {
        " ON DELETE SET NULL"
    } else {
        ""
    };
    format!(
        "FOREIGN KEY ({}) REFERENCES {}({}){action}",
        names(&f.columns, t),
        crate::catalog::quote_name(&parent.name),
        names(&f.parent_columns, parent)
    )
}

/// An index's CREATE INDEX statement, as `pg_indexes.indexdef` and
/// `pg_get_indexdef` give it.
fn index_definition(schema: &str, table: &str, name: &str, unique: bool, cols: &str) -> String {
    format!(
        "CREATE {}INDEX {} ON {}.{} USING btree ({cols})",
        if unique { "UNIQUE " } else { "" },
        quote_ident(name),
        quote_ident(schema),
        quote_ident(table),
    )
}

/// A row of `pg_class`.
fn class_row(
    oid: u64,
    name: &str,
    nsp: &str,
    kind: &str,
    has_index: bool,
    natts: usize,
) -> Vec<String> {
    vec![
        oid.to_string(),
        lit(Some(name)),
        nsp.to_string(),
        lit(Some(kind)),
        OWNER.into(),
        boolean(has_index),
        natts.to_string(),
        boolean(false),
        lit(Some("p")),
        match kind {
            "r" => "2",
            "i" => "403",
            _ => "0",
        }
        .into(),
        lit(None),
        "0".into(),
    ]
}

/// `format_type(oid, typmod)`: `character varying(80)`, `numeric(10,2)`,
/// `integer[]`; `None` for an oid that is not a type here.
pub fn format_type(oid: i64, typmod: i64) -> Option<String> {
    if oid == 0 {
        return Some("-".into());
    }
    let ty = DataType::from_pg_type(&pgwire::api::Type::from_oid(u32::try_from(oid).ok()?)?)?;
    let with_mod = |ty: DataType| -> DataType {
        let m = typmod - 4;
        match ty {
            DataType::Varchar(_) if m >= 0 => DataType::Varchar(Some(m as u32)),
            DataType::Char(_) if m >= 0 => DataType::Char(Some(m as u32)),
            DataType::Numeric(_) if m >= 0 => {
                DataType::Numeric(Some(((m >> 16) as u32, (m & 0xffff) as u32)))
            }
            other => other,
        }
    };
    Some(match ty {
        DataType::Array(elem) => format!("{}[]", crate::pgcompat::format_type(&with_mod(*elem))),
        DataType::Char(None) if typmod < 0 => "bpchar".into(),
        ty => crate::pgcompat::format_type(&with_mod(ty)),
    })
}

/// A column's number in `pg_attribute` (1-based among the visible ones).
fn attnum(t: &TableDesc, position: usize) -> usize {
    t.columns[..position].iter().filter(|c| !c.hidden).count() + 1
}

/// PostgreSQL's type modifier: the declared length plus 4 for
/// `varchar(n)` / `char(n)`, `(precision << 16 | scale) + 4` for
/// `numeric(p, s)`, -1 when there is none.
pub fn typmod(ty: &DataType) -> i64 {
    match ty {
        DataType::Varchar(Some(n)) | DataType::Char(Some(n)) => *n as i64 + 4,
        DataType::Numeric(Some((p, s))) => ((*p as i64) << 16 | *s as i64) + 4,
        DataType::Array(elem) => typmod(elem),
        _ => -1,
    }
}

/// The collation oid of a column: `default` (100) for strings.
fn collation(ty: &DataType) -> u32 {
    match ty {
        t if t.is_string() => 100,
        DataType::Array(elem) => collation(elem),
        _ => 0,
    }
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
                &[("oid", "oid"), ("nspname", "text"), ("nspowner", "oid")],
                rows,
            )
        }
        "pg_class" => {
            let mut rows = Vec::new();
            for t in catalog.tables(db).await? {
                let (schema, tname) = split_name(&t.name);
                let nsp = schema_oid(schema).to_string();
                let idx = indexes(&t);
                rows.push(class_row(
                    t.id,
                    tname,
                    &nsp,
                    "r",
                    !idx.is_empty(),
                    t.columns.iter().filter(|c| !c.hidden).count(),
                ));
                for (oid, name, _, cols) in idx {
                    rows.push(class_row(
                        oid,
                        &name,
                        &nsp,
                        "i",
                        false,
                        cols.split(", ").count(),
                    ));
                }
            }
            for (i, v) in catalog.view_names(db).await?.iter().enumerate() {
                let (schema, vname) = split_name(v);
                let columns = match catalog.view(db, v).await? {
                    Some(d) => d.columns.len(),
                    None => continue,
                };
                rows.push(class_row(
                    2_000_000 + i as u64,
                    vname,
                    &schema_oid(schema).to_string(),
                    "v",
                    false,
                    columns,
                ));
            }
            for q in catalog.sequences(db).await? {
                let (schema, qname) = split_name(&q.name);
                rows.push(class_row(
                    q.id,
                    qname,
                    &schema_oid(schema).to_string(),
                    "S",
                    false,
                    3,
                ));
            }
            // The catalog's own relations (views there are pg_tables,
            // pg_views and pg_indexes; the others are tables).
            for (rel, oid) in RELATIONS {
                let kind = match rel {
                    "pg_tables" | "pg_views" | "pg_indexes" => "v",
                    _ => "r",
                };
                rows.push(class_row(oid as u64, rel, "11", kind, false, 0));
            }
            (
                &[
                    ("oid", "oid"),
                    ("relname", "text"),
                    ("relnamespace", "oid"),
                    ("relkind", "text"),
                    ("relowner", "oid"),
                    ("relhasindex", "boolean"),
                    ("relnatts", "smallint"),
                    ("relispartition", "boolean"),
                    ("relpersistence", "text"),
                    ("relam", "oid"),
                    ("reloptions", "text[]"),
                    ("reltype", "oid"),
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
                    let def = index_definition(schema, tname, &name, unique, &cols);
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
                    let identity = match c.identity {
                        Identity::Always => "a",
                        Identity::ByDefault => "d",
                        Identity::None => "",
                    };
                    rows.push(vec![
                        t.id.to_string(),
                        lit(Some(&c.name)),
                        c.ty.pg_type().oid().to_string(),
                        (i + 1).to_string(),
                        boolean(!c.nullable),
                        boolean(c.default.is_some() || c.serial),
                        boolean(false),
                        lit(Some(&type_display(&c.ty))),
                        typmod(&c.ty).to_string(),
                        lit(Some(identity)),
                        lit(Some("")),
                        collation(&c.ty).to_string(),
                    ]);
                }
            }
            (
                &[
                    ("attrelid", "oid"),
                    ("attname", "text"),
                    ("atttypid", "oid"),
                    ("attnum", "smallint"),
                    ("attnotnull", "boolean"),
                    ("atthasdef", "boolean"),
                    ("attisdropped", "boolean"),
                    // Not in PostgreSQL's pg_attribute: format_type's text.
                    ("atttypname", "text"),
                    ("atttypmod", "integer"),
                    ("attidentity", "text"),
                    ("attgenerated", "text"),
                    ("attcollation", "oid"),
                ],
                rows,
            )
        }
        "pg_type" => {
            let mut rows = Vec::new();
            for ty in &TYPES {
                let t = ty.pg_type();
                rows.push(vec![
                    t.oid().to_string(),
                    lit(Some(t.name())),
                    "11".into(),
                    type_len(ty).to_string(),
                    lit(Some("b")),
                    array_oid(ty).to_string(),
                    "0".into(),
                    collation(ty).to_string(),
                    lit(Some(",")),
                    "0".into(),
                ]);
                // Its array type: `_int4`.
                let array = DataType::Array(Box::new(ty.clone()));
                let a = array.pg_type();
                rows.push(vec![
                    a.oid().to_string(),
                    lit(Some(a.name())),
                    "11".into(),
                    "-1".into(),
                    lit(Some("b")),
                    "0".into(),
                    t.oid().to_string(),
                    collation(&array).to_string(),
                    lit(Some(",")),
                    "0".into(),
                ]);
            }
            (
                &[
                    ("oid", "oid"),
                    ("typname", "text"),
                    ("typnamespace", "oid"),
                    ("typlen", "smallint"),
                    ("typtype", "text"),
                    ("typarray", "oid"),
                    ("typelem", "oid"),
                    ("typcollation", "oid"),
                    ("typdelim", "text"),
                    ("typbasetype", "oid"),
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
                    ("oid", "oid"),
                    ("datname", "text"),
                    ("datdba", "oid"),
                    ("encoding", "integer"),
                    ("datcollate", "text"),
                    ("datctype", "text"),
                    ("datallowconn", "boolean"),
                ],
                rows,
            )
        }
        "pg_attrdef" => {
            let mut rows = Vec::new();
            for t in catalog.tables(db).await? {
                for (i, c) in t.columns.iter().filter(|c| !c.hidden).enumerate() {
                    let default = match (&c.default, c.serial) {
                        (Some(d), _) => d.clone(),
                        (None, true) if c.identity == Identity::None => {
                            format!("nextval('{}_{}_seq'::regclass)", t.name, c.name)
                        }
                        _ => continue,
                    };
                    rows.push(vec![
                        (4_000_000 + 1000 * t.id + i as u64 + 1).to_string(),
                        t.id.to_string(),
                        (i + 1).to_string(),
                        lit(Some(&default)),
                    ]);
                }
            }
            (
                &[
                    ("oid", "oid"),
                    ("adrelid", "oid"),
                    ("adnum", "smallint"),
                    // The default's SQL text (pg_get_expr returns it).
                    ("adbin", "text"),
                ],
                rows,
            )
        }
        // Comments are not kept.
        "pg_description" => (
            &[
                ("objoid", "oid"),
                ("classoid", "oid"),
                ("objsubid", "integer"),
                ("description", "text"),
            ],
            Vec::new(),
        ),
        "pg_sequence" => {
            let rows = catalog
                .sequences(db)
                .await?
                .iter()
                .map(|q| {
                    let ty = match q.type_name.as_str() {
                        "smallint" => DataType::Int2,
                        "integer" => DataType::Int4,
                        _ => DataType::Int8,
                    };
                    vec![
                        q.id.to_string(),
                        ty.pg_type().oid().to_string(),
                        q.start.to_string(),
                        q.increment.to_string(),
                        q.max.to_string(),
                        q.min.to_string(),
                        "1".into(),
                        boolean(q.cycle),
                    ]
                })
                .collect();
            (
                &[
                    ("seqrelid", "oid"),
                    ("seqtypid", "oid"),
                    ("seqstart", "bigint"),
                    ("seqincrement", "bigint"),
                    ("seqmax", "bigint"),
                    ("seqmin", "bigint"),
                    ("seqcache", "bigint"),
                    ("seqcycle", "boolean"),
                ],
                rows,
            )
        }
        "pg_collation" => (
            &[
                ("oid", "oid"),
                ("collname", "text"),
                ("collnamespace", "oid"),
            ],
            vec![
                vec!["100".into(), lit(Some("default")), "11".into()],
                vec!["950".into(), lit(Some("C")), "11".into()],
            ],
        ),
        "pg_am" => (
            &[("oid", "oid"), ("amname", "text"), ("amtype", "text")],
            vec![
                vec!["2".into(), lit(Some("heap")), lit(Some("t"))],
                vec!["403".into(), lit(Some("btree")), lit(Some("i"))],
            ],
        ),
        // There are no range types.
        "pg_range" => (
            &[
                ("rngtypid", "oid"),
                ("rngsubtype", "oid"),
                ("rngmultitypid", "oid"),
            ],
            Vec::new(),
        ),
        // Every index uses its columns' default operator class.
        "pg_opclass" => (
            &[
                ("oid", "oid"),
                ("opcname", "text"),
                ("opcmethod", "oid"),
                ("opcdefault", "boolean"),
            ],
            Vec::new(),
        ),
        "pg_index" => {
            let mut rows = Vec::new();
            for t in catalog.tables(db).await? {
                let (schema, tname) = split_name(&t.name);
                for (oid, name, unique, cols) in indexes(&t) {
                    let primary = name == t.pkey_name() && t.index(&name).is_none();
                    let positions = match t.index(&name) {
                        Some(i) if !primary => i.columns.clone(),
                        _ => t.primary_key.clone(),
                    };
                    let keys: Vec<String> = positions
                        .iter()
                        .map(|p| attnum(&t, *p).to_string())
                        .collect();
                    let names: Vec<&str> = positions
                        .iter()
                        .map(|p| t.columns[*p].name.as_str())
                        .collect();
                    let def = index_definition(schema, tname, &name, unique, &cols);
                    rows.push(vec![
                        oid.to_string(),
                        t.id.to_string(),
                        keys.len().to_string(),
                        keys.len().to_string(),
                        boolean(unique),
                        boolean(primary),
                        boolean(true),
                        lit(Some(&format!("{{{}}}", keys.join(",")))),
                        lit(Some(&format!("{{{}}}", vec!["0"; keys.len()].join(",")))),
                        lit(Some(&vec!["0"; keys.len()].join(" "))),
                        lit(None),
                        lit(None),
                        boolean(false),
                        lit(Some(&def)),
                        lit(Some(&crate::array::format(
                            &names
                                .iter()
                                .map(|n| Datum::Text(n.to_string()))
                                .collect::<Vec<_>>(),
                            &DataType::Text,
                        ))),
                    ]);
                }
            }
            (
                &[
                    ("indexrelid", "oid"),
                    ("indrelid", "oid"),
                    ("indnatts", "smallint"),
                    ("indnkeyatts", "smallint"),
                    ("indisunique", "boolean"),
                    ("indisprimary", "boolean"),
                    ("indisvalid", "boolean"),
                    ("indkey", "smallint[]"),
                    ("indclass", "oid[]"),
                    // int2vector's text form (`0 0`), as drivers read it.
                    ("indoption", "text"),
                    ("indexprs", "text"),
                    ("indpred", "text"),
                    ("indnullsnotdistinct", "boolean"),
                    // Not in PostgreSQL's pg_index: what pg_get_indexdef
                    // returns, and the indexed columns' names.
                    ("indexdef", "text"),
                    ("indcolnames", "text[]"),
                ],
                rows,
            )
        }
        "pg_constraint" => {
            let tables = catalog.tables(db).await?;
            let mut rows = Vec::new();
            for t in &tables {
                let (schema, _) = split_name(&t.name);
                let nsp = schema_oid(schema).to_string();
                let keys = |cols: &[usize], owner: &TableDesc| -> String {
                    let k: Vec<String> =
                        cols.iter().map(|p| attnum(owner, *p).to_string()).collect();
                    lit(Some(&format!("{{{}}}", k.join(","))))
                };
                let names = |cols: &[usize], owner: &TableDesc| -> String {
                    cols.iter()
                        .map(|p| quote_ident(&owner.columns[*p].name))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let mut k = 0u64;
                let mut push = |name: &str,
                                kind: &str,
                                index: u64,
                                parent: u64,
                                key: String,
                                fkey: String,
                                on_delete: &str,
                                def: String| {
                    k += 1;
                    rows.push(vec![
                        (50_000_000 + 100 * t.id + k).to_string(),
                        lit(Some(name)),
                        nsp.clone(),
                        lit(Some(kind)),
                        boolean(false),
                        boolean(false),
                        boolean(true),
                        t.id.to_string(),
                        index.to_string(),
                        parent.to_string(),
                        lit(Some(if kind == "f" { "a" } else { " " })),
                        lit(Some(on_delete)),
                        lit(Some(if kind == "f" { "s" } else { " " })),
                        key,
                        fkey,
                        lit(Some(&def)),
                    ]);
                };
                if !t.primary_key.iter().any(|p| t.columns[*p].hidden) {
                    push(
                        &t.pkey_name(),
                        "p",
                        index_oid(t, 1),
                        0,
                        keys(&t.primary_key, t),
                        lit(None),
                        " ",
                        format!("PRIMARY KEY ({})", names(&t.primary_key, t)),
                    );
                }
                for i in t.indexes.iter().filter(|i| i.unique) {
                    push(
                        &i.name,
                        "u",
                        index_oid(t, i.id),
                        0,
                        keys(&i.columns, t),
                        lit(None),
                        " ",
                        format!("UNIQUE ({})", names(&i.columns, t)),
                    );
                }
                for f in &t.fks {
                    let Some(parent) = tables.iter().find(|p| p.name == f.parent) else {
                        continue;
                    };
                    let on_delete = if f.cascade_delete {
                        "c"
                    } else if f.set_null_delete {
                        "n"
                    } else {
                        "a"
                    };
                    push(
                        &f.name,
                        "f",
                        0,
                        parent.id,
                        keys(&f.columns, t),
                        keys(&f.parent_columns, parent),
                        on_delete,
                        fk_definition(t, f, parent),
                    );
                }
                for c in &t.checks {
                    push(
                        &c.name,
                        "c",
                        0,
                        0,
                        lit(None),
                        lit(None),
                        " ",
                        format!("CHECK (({}))", c.expr),
                    );
                }
            }
            (
                &[
                    ("oid", "oid"),
                    ("conname", "text"),
                    ("connamespace", "oid"),
                    ("contype", "text"),
                    ("condeferrable", "boolean"),
                    ("condeferred", "boolean"),
                    ("convalidated", "boolean"),
                    ("conrelid", "oid"),
                    ("conindid", "oid"),
                    ("confrelid", "oid"),
                    ("confupdtype", "text"),
                    ("confdeltype", "text"),
                    ("confmatchtype", "text"),
                    ("conkey", "smallint[]"),
                    ("confkey", "smallint[]"),
                    // Not in PostgreSQL's pg_constraint: what
                    // pg_get_constraintdef returns.
                    ("condef", "text"),
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
