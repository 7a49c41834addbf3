//! The catalog: databases and table descriptors, stored in KV under
//! `/system/sql/...`, cached per node.
//!
//! ```text
//! /system/sql/db/<name>                          -> "" (the database exists)
//! /system/sql/schema/<db>/<name>                 -> "" (CREATE SCHEMA)
//! /system/sql/table/<db>/<schema>/<name>         -> TableDescriptor (protobuf)
//! /system/sql/view/<db>/<schema>/<name>          -> ViewDescriptor (protobuf)
//! /system/sql/role/<name>                        -> "" (CREATE USER / ROLE)
//! /system/sql/desc-id                            -> u64 counter: table ids
//! /system/sql/sequence/<db>/<schema>/<name>      -> SequenceDescriptor (CREATE SEQUENCE)
//! /system/sql/seq/<sequence id>                  -> the last value handed out (i64; SERIAL too)
//! /system/sql/version                            -> u64 counter: bumped by every DDL
//! ```
//!
//! Every DDL writes its descriptor with a conditional put (so two nodes
//! creating the same table race safely: one gets 42P07) and then bumps the
//! catalog version. Each statement starts by checking the version: if it
//! moved, the node drops its cached descriptors. A node trusts a version
//! it read for [`VERSION_TTL`] (measured from before it asked), and a DDL
//! returns only that long after its bump: every statement that starts
//! after a DDL returned, on any node, sees it, without a KV read per
//! statement. A table missing from the cache is always looked up in KV
//! before 42P01 is raised, so a table created on another node is visible
//! at once.
//!
//! A table descriptor carries its secondary indexes (name, id, columns,
//! unique). CREATE INDEX writes the new descriptor first, so every
//! statement that starts afterwards maintains the index, then backfills
//! the existing rows (a conditional put per entry); a UNIQUE index whose
//! backfill finds a duplicate is removed again and the statement fails
//! with 23505. A write that bound its plan before the descriptor changed
//! and commits during the backfill may miss its entry: CREATE INDEX is
//! not yet safe against concurrent writes to the same table. DROP INDEX
//! removes it from the descriptor, then deletes its entries.
//!
//! TRUNCATE gives the table a fresh table id (its rows live under the id),
//! so it swaps all rows out atomically with one descriptor write; the old
//! rows are deleted afterwards. DROP removes the descriptor first, then the
//! rows. DDL is not transactional: it applies at once, even inside
//! BEGIN..COMMIT.
//!
//! A view is its defining query as SQL text plus its column names; it is
//! bound again wherever it is used (so it reads the tables as they are
//! then). Tables and views share one namespace: each create checks the
//! other kind first.
//!
//! Every database has the schema `public`; CREATE SCHEMA adds others. A
//! relation outside `public` is named `<schema>.<name>` throughout the
//! SQL layer (the descriptor key stores the two parts separately), so a
//! name with no dot is in `public`. A statement's unqualified names are
//! looked up along the session's `search_path` ([`Catalog::resolve`]) and
//! created in its first existing schema ([`Catalog::name_for_new`]); a
//! view's query is resolved again wherever it is used. DROP SCHEMA refuses
//! a schema that still holds relations unless CASCADE drops them too.
//!
//! Roles (CREATE USER / CREATE ROLE) are only recorded, so that creating
//! one twice fails and DROP USER finds it; there are no privileges and
//! every connection may use any user name.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prost::Message;
use tessera_kv::db::Error as KvError;
use tessera_kv::DB;
use tessera_storage::encoding::{prefix_successor, KeyDecoder, KeyEncoder};

use crate::error::{code, Result, SqlError};
use crate::types::DataType;

const VERSION_KEY: &[u8] = b"\x02sql/version";
const DESC_ID_KEY: &[u8] = b"\x02sql/desc-id";
const DB_PREFIX: &[u8] = b"\x02sql/db/";
const TABLE_DESC_PREFIX: &[u8] = b"\x02sql/table/";
const SEQ_PREFIX: &[u8] = b"\x02sql/seq/";
const VIEW_DESC_PREFIX: &[u8] = b"\x02sql/view/";
const SEQUENCE_DESC_PREFIX: &[u8] = b"\x02sql/sequence/";
const ROLE_PREFIX: &[u8] = b"\x02sql/role/";
const SCHEMA_PREFIX: &[u8] = b"\x02sql/schema/";

/// User table ids start here (lower ids are reserved for system tables).
const FIRST_TABLE_ID: u64 = 100;

/// The schema every database has, where unqualified names live.
pub const PUBLIC_SCHEMA: &str = "public";
/// Schemas that exist in every database but hold no user relations.
pub const SYSTEM_SCHEMAS: [&str; 2] = ["information_schema", "pg_catalog"];
/// The database created at startup.
pub const DEFAULT_DATABASE: &str = "defaultdb";

#[derive(Clone, PartialEq, prost::Message)]
struct ColumnProto {
    #[prost(uint32, tag = "1")]
    id: u32,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(string, tag = "3")]
    type_name: String,
    #[prost(bool, tag = "4")]
    nullable: bool,
    #[prost(string, optional, tag = "5")]
    default_expr: Option<String>,
    #[prost(bool, tag = "6")]
    hidden: bool,
    #[prost(bool, tag = "7")]
    serial: bool,
    /// 0: not an identity column, 1: GENERATED BY DEFAULT, 2: ALWAYS.
    #[prost(uint32, tag = "8")]
    identity: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TableProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(uint64, tag = "2")]
    id: u64,
    #[prost(message, repeated, tag = "3")]
    columns: Vec<ColumnProto>,
    #[prost(uint32, repeated, tag = "4")]
    primary_key: Vec<u32>,
    #[prost(uint64, tag = "5")]
    seq_id: u64,
    #[prost(uint32, tag = "6")]
    next_column_id: u32,
    #[prost(message, repeated, tag = "7")]
    indexes: Vec<IndexProto>,
    #[prost(uint64, tag = "8")]
    next_index_id: u64,
    #[prost(message, repeated, tag = "9")]
    checks: Vec<CheckProto>,
    #[prost(message, repeated, tag = "10")]
    fks: Vec<FkProto>,
    #[prost(message, repeated, tag = "11")]
    inbound: Vec<InboundProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct FkProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(uint32, repeated, tag = "2")]
    columns: Vec<u32>,
    #[prost(string, tag = "3")]
    parent: String,
    #[prost(uint32, repeated, tag = "4")]
    parent_columns: Vec<u32>,
    #[prost(bool, tag = "5")]
    cascade_delete: bool,
    #[prost(bool, tag = "6")]
    set_null_delete: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
struct InboundProto {
    #[prost(string, tag = "1")]
    child: String,
    #[prost(string, tag = "2")]
    name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct CheckProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    expr: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct IndexProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(uint64, tag = "2")]
    id: u64,
    #[prost(uint32, repeated, tag = "3")]
    columns: Vec<u32>,
    #[prost(bool, tag = "4")]
    unique: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ViewProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    query: String,
    #[prost(string, repeated, tag = "3")]
    columns: Vec<String>,
}

/// A view: a named query.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewDesc {
    pub name: String,
    /// The defining query, as SQL text.
    pub query: String,
    /// Output column names (from the query or the view's column list).
    pub columns: Vec<String>,
}

impl ViewDesc {
    pub fn encode(&self) -> Vec<u8> {
        ViewProto {
            name: self.name.clone(),
            query: self.query.clone(),
            columns: self.columns.clone(),
        }
        .encode_to_vec()
    }

    pub fn decode(buf: &[u8]) -> Result<ViewDesc> {
        let p = ViewProto::decode(buf)
            .map_err(|e| SqlError::internal(format!("corrupt view descriptor: {e}")))?;
        Ok(ViewDesc {
            name: p.name,
            query: p.query,
            columns: p.columns,
        })
    }
}

#[derive(Clone, PartialEq, prost::Message)]
struct SequenceProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(uint64, tag = "2")]
    id: u64,
    #[prost(int64, tag = "3")]
    start: i64,
    #[prost(int64, tag = "4")]
    increment: i64,
    #[prost(int64, tag = "5")]
    min: i64,
    #[prost(int64, tag = "6")]
    max: i64,
    #[prost(bool, tag = "7")]
    cycle: bool,
    #[prost(string, tag = "8")]
    type_name: String,
}

/// A sequence made by CREATE SEQUENCE (the sequences behind SERIAL and
/// identity columns belong to their table and count 1, 2, 3, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceDesc {
    pub name: String,
    /// Its counter lives at `/system/sql/seq/<id>`.
    pub id: u64,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    /// Whether it wraps around at its bound instead of failing.
    pub cycle: bool,
    /// `smallint`, `integer` or `bigint` (AS type).
    pub type_name: String,
}

impl SequenceDesc {
    /// The descriptor of the sequence of a SERIAL or identity column.
    pub fn serial(name: String, id: u64) -> SequenceDesc {
        SequenceDesc {
            name,
            id,
            start: 1,
            increment: 1,
            min: 1,
            max: i64::MAX,
            cycle: false,
            type_name: "bigint".into(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        SequenceProto {
            name: self.name.clone(),
            id: self.id,
            start: self.start,
            increment: self.increment,
            min: self.min,
            max: self.max,
            cycle: self.cycle,
            type_name: self.type_name.clone(),
        }
        .encode_to_vec()
    }

    pub fn decode(buf: &[u8]) -> Result<SequenceDesc> {
        let p = SequenceProto::decode(buf)
            .map_err(|e| SqlError::internal(format!("corrupt sequence descriptor: {e}")))?;
        Ok(SequenceDesc {
            name: p.name,
            id: p.id,
            start: p.start,
            increment: p.increment,
            min: p.min,
            max: p.max,
            cycle: p.cycle,
            type_name: p.type_name,
        })
    }
}

/// A secondary index of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexDesc {
    pub name: String,
    /// Its keys live under `/table/<table id>/<index id>`; ids from 2.
    pub id: u64,
    /// Positions (in the table's `columns`) of the indexed columns.
    pub columns: Vec<usize>,
    pub unique: bool,
}

/// A column of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Stable id, stored in row values.
    pub id: u32,
    pub name: String,
    pub ty: DataType,
    pub nullable: bool,
    /// The DEFAULT expression, as SQL text.
    pub default: Option<String>,
    /// Not shown by `SELECT *` (the rowid of a table without a primary key).
    pub hidden: bool,
    /// Filled when not given: from the table's sequence (SERIAL), or by
    /// [`Catalog::unique_rowid`] (the hidden rowid).
    pub serial: bool,
    /// `GENERATED ... AS IDENTITY` (also `serial`: filled from the table's
    /// sequence).
    pub identity: Identity,
}

/// Whether a column is an identity column, and which kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    None,
    /// `GENERATED BY DEFAULT AS IDENTITY`: a given value is taken.
    ByDefault,
    /// `GENERATED ALWAYS AS IDENTITY`: a given value is refused (428C9).
    Always,
}

/// A table descriptor.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDesc {
    pub name: String,
    /// Where the rows live: `/table/<id>/...`. Changes on TRUNCATE.
    pub id: u64,
    pub columns: Vec<Column>,
    /// Positions (in `columns`) of the primary key columns.
    pub primary_key: Vec<usize>,
    /// The sequence feeding SERIAL columns.
    pub seq_id: u64,
    pub next_column_id: u32,
    /// Secondary indexes.
    pub indexes: Vec<IndexDesc>,
    /// The id the next secondary index gets (at least 2).
    pub next_index_id: u64,
    /// CHECK constraints: every row written must not make one false.
    pub checks: Vec<CheckDesc>,
    /// Foreign keys of this table (see [`crate::fk`]).
    pub fks: Vec<ForeignKeyDesc>,
    /// Foreign keys of other tables (or this one) that reference it.
    pub inbound: Vec<InboundFk>,
}

/// A FOREIGN KEY constraint of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct ForeignKeyDesc {
    pub name: String,
    /// Positions of the referencing columns in this table.
    pub columns: Vec<usize>,
    /// The referenced table (same database).
    pub parent: String,
    /// Positions of the referenced columns in the parent (its primary key
    /// or the columns of a unique index).
    pub parent_columns: Vec<usize>,
    /// ON DELETE CASCADE (otherwise RESTRICT / NO ACTION).
    pub cascade_delete: bool,
    /// ON DELETE SET NULL.
    pub set_null_delete: bool,
}

/// A foreign key referencing a table: the child table and the
/// constraint's name there.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundFk {
    pub child: String,
    pub name: String,
}

/// A CHECK constraint.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckDesc {
    pub name: String,
    /// A boolean expression over the table's columns, as SQL text.
    pub expr: String,
}

impl TableDesc {
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Whether column `i` is the hidden rowid keying a table created
    /// without a primary key.
    pub fn is_rowid(&self, i: usize) -> bool {
        self.columns[i].hidden && self.primary_key.contains(&i)
    }

    /// A secondary index by name.
    pub fn index(&self, name: &str) -> Option<&IndexDesc> {
        self.indexes.iter().find(|i| i.name == name)
    }

    /// The statements that create this table and its indexes (SHOW CREATE
    /// TABLE): types as PostgreSQL spells them, SERIAL columns as
    /// `serial`/`bigserial`, the hidden rowid of a table without a primary
    /// key left out.
    pub fn create_statement(&self) -> String {
        let q = quote_ident;
        let mut lines = Vec::new();
        for c in self.columns.iter().filter(|c| !c.hidden) {
            let ty = match (&c.ty, c.serial) {
                (ty, _) if c.identity != Identity::None => {
                    let how = if c.identity == Identity::Always {
                        "ALWAYS"
                    } else {
                        "BY DEFAULT"
                    };
                    format!(
                        "{} GENERATED {how} AS IDENTITY",
                        crate::types::type_display(ty)
                    )
                }
                (DataType::Int2, true) => "smallserial".to_string(),
                (DataType::Int4, true) => "serial".to_string(),
                (DataType::Int8, true) => "bigserial".to_string(),
                (ty, _) => crate::types::type_display(ty),
            };
            let ty = match &c.ty {
                DataType::Varchar(Some(n)) | DataType::Char(Some(n)) => format!("{ty}({n})"),
                DataType::Numeric(Some((p, s))) => format!("{ty}({p},{s})"),
                _ => ty,
            };
            let mut l = format!("    {} {ty}", q(&c.name));
            if !c.nullable && !c.serial {
                l.push_str(" NOT NULL");
            }
            if let Some(d) = &c.default {
                l.push_str(&format!(" DEFAULT {d}"));
            }
            lines.push(l);
        }
        for c in &self.checks {
            lines.push(format!("    CONSTRAINT {} CHECK ({})", q(&c.name), c.expr));
        }
        for f in &self.fks {
            let cols: Vec<String> = f
                .columns
                .iter()
                .map(|p| q(&self.columns[*p].name))
                .collect();
            lines.push(format!(
                "    CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {}{}",
                q(&f.name),
                cols.join(", "),
                quote_name(&f.parent),
                if f.cascade_delete {
                    " ON DELETE CASCADE"
                } else if f.set_null_delete {
                    " ON DELETE SET NULL"
                } else {
                    ""
                }
            ));
        }
        if !self.primary_key.iter().any(|p| self.columns[*p].hidden) {
            let cols: Vec<String> = self
                .primary_key
                .iter()
                .map(|p| q(&self.columns[*p].name))
                .collect();
            lines.push(format!(
                "    CONSTRAINT {} PRIMARY KEY ({})",
                q(&self.pkey_name()),
                cols.join(", ")
            ));
        }
        let mut out = format!(
            "CREATE TABLE {} (\n{}\n);",
            quote_name(&self.name),
            lines.join(",\n")
        );
        for i in &self.indexes {
            let cols: Vec<String> = i
                .columns
                .iter()
                .map(|p| q(&self.columns[*p].name))
                .collect();
            out.push_str(&format!(
                "\nCREATE {}INDEX {} ON {} ({});",
                if i.unique { "UNIQUE " } else { "" },
                q(&i.name),
                quote_name(&self.name),
                cols.join(", ")
            ));
        }
        out
    }

    /// The name of the primary key constraint, as PostgreSQL names it.
    pub fn pkey_name(&self) -> String {
        format!("{}_pkey", split_name(&self.name).1)
    }

    fn to_proto(&self) -> TableProto {
        TableProto {
            name: self.name.clone(),
            id: self.id,
            columns: self
                .columns
                .iter()
                .map(|c| ColumnProto {
                    id: c.id,
                    name: c.name.clone(),
                    type_name: c.ty.sql_name(),
                    nullable: c.nullable,
                    default_expr: c.default.clone(),
                    hidden: c.hidden,
                    serial: c.serial,
                    identity: match c.identity {
                        Identity::None => 0,
                        Identity::ByDefault => 1,
                        Identity::Always => 2,
                    },
                })
                .collect(),
            primary_key: self.primary_key.iter().map(|i| *i as u32).collect(),
            seq_id: self.seq_id,
            next_column_id: self.next_column_id,
            indexes: self
                .indexes
                .iter()
                .map(|i| IndexProto {
                    name: i.name.clone(),
                    id: i.id,
                    columns: i.columns.iter().map(|c| *c as u32).collect(),
                    unique: i.unique,
                })
                .collect(),
            next_index_id: self.next_index_id,
            checks: self
                .checks
                .iter()
                .map(|c| CheckProto {
                    name: c.name.clone(),
                    expr: c.expr.clone(),
                })
                .collect(),
            fks: self
                .fks
                .iter()
                .map(|f| FkProto {
                    name: f.name.clone(),
                    columns: f.columns.iter().map(|c| *c as u32).collect(),
                    parent: f.parent.clone(),
                    parent_columns: f.parent_columns.iter().map(|c| *c as u32).collect(),
                    cascade_delete: f.cascade_delete,
                    set_null_delete: f.set_null_delete,
                })
                .collect(),
            inbound: self
                .inbound
                .iter()
                .map(|i| InboundProto {
                    child: i.child.clone(),
                    name: i.name.clone(),
                })
                .collect(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        self.to_proto().encode_to_vec()
    }

    pub fn decode(buf: &[u8]) -> Result<TableDesc> {
        let p = TableProto::decode(buf)
            .map_err(|e| SqlError::internal(format!("corrupt table descriptor: {e}")))?;
        let columns = p
            .columns
            .into_iter()
            .map(|c| {
                Ok(Column {
                    id: c.id,
                    ty: DataType::from_sql_name(&c.type_name).ok_or_else(|| {
                        SqlError::internal(format!("unknown type {} in descriptor", c.type_name))
                    })?,
                    name: c.name,
                    nullable: c.nullable,
                    default: c.default_expr,
                    hidden: c.hidden,
                    serial: c.serial,
                    identity: match c.identity {
                        1 => Identity::ByDefault,
                        2 => Identity::Always,
                        _ => Identity::None,
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TableDesc {
            name: p.name,
            id: p.id,
            columns,
            primary_key: p.primary_key.into_iter().map(|i| i as usize).collect(),
            seq_id: p.seq_id,
            next_column_id: p.next_column_id,
            indexes: p
                .indexes
                .into_iter()
                .map(|i| IndexDesc {
                    name: i.name,
                    id: i.id,
                    columns: i.columns.into_iter().map(|c| c as usize).collect(),
                    unique: i.unique,
                })
                .collect(),
            next_index_id: p.next_index_id.max(2),
            checks: p
                .checks
                .into_iter()
                .map(|c| CheckDesc {
                    name: c.name,
                    expr: c.expr,
                })
                .collect(),
            fks: p
                .fks
                .into_iter()
                .map(|f| ForeignKeyDesc {
                    name: f.name,
                    columns: f.columns.into_iter().map(|c| c as usize).collect(),
                    parent: f.parent,
                    parent_columns: f.parent_columns.into_iter().map(|c| c as usize).collect(),
                    cascade_delete: f.cascade_delete,
                    set_null_delete: f.set_null_delete,
                })
                .collect(),
            inbound: p
                .inbound
                .into_iter()
                .map(|i| InboundFk {
                    child: i.child,
                    name: i.name,
                })
                .collect(),
        })
    }
}

/// An identifier as SQL text: quoted unless it is a plain lower-case name.
/// `base`, or `base1`, `base2`, ... if taken; the name returned is added
/// to `taken` (constraint and index names PostgreSQL makes up).
pub fn fresh_name(base: String, taken: &mut Vec<String>) -> String {
    let mut n = base.clone();
    let mut k = 0;
    while taken.contains(&n) {
        k += 1;
        n = format!("{base}{k}");
    }
    taken.push(n.clone());
    n
}

pub fn quote_ident(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// The schema and the name within it of a relation's SQL-layer name
/// (`s.t` -> (`s`, `t`); `t` -> (`public`, `t`)).
pub fn split_name(name: &str) -> (&str, &str) {
    name.split_once('.').unwrap_or((PUBLIC_SCHEMA, name))
}

/// The SQL-layer name of relation `name` in `schema`.
pub fn qualified_name(schema: &str, name: &str) -> String {
    if schema == PUBLIC_SCHEMA {
        name.to_string()
    } else {
        format!("{schema}.{name}")
    }
}

/// A relation's SQL-layer name as SQL text (`t`, `s.t`, `"S"."T"`).
pub fn quote_name(name: &str) -> String {
    match name.split_once('.') {
        Some((s, t)) => format!("{}.{}", quote_ident(s), quote_ident(t)),
        None => quote_ident(name),
    }
}

fn table_desc_key(db: &str, name: &str) -> Vec<u8> {
    let (schema, name) = split_name(name);
    KeyEncoder::with_prefix(TABLE_DESC_PREFIX)
        .str(db)
        .str(schema)
        .str(name)
        .finish()
}

fn view_desc_key(db: &str, name: &str) -> Vec<u8> {
    let (schema, name) = split_name(name);
    KeyEncoder::with_prefix(VIEW_DESC_PREFIX)
        .str(db)
        .str(schema)
        .str(name)
        .finish()
}

fn schema_key(db: &str, name: &str) -> Vec<u8> {
    KeyEncoder::with_prefix(SCHEMA_PREFIX)
        .str(db)
        .str(name)
        .finish()
}

fn role_key(name: &str) -> Vec<u8> {
    KeyEncoder::with_prefix(ROLE_PREFIX).str(name).finish()
}

fn sequence_desc_key(db: &str, name: &str) -> Vec<u8> {
    let (schema, name) = split_name(name);
    KeyEncoder::with_prefix(SEQUENCE_DESC_PREFIX)
        .str(db)
        .str(schema)
        .str(name)
        .finish()
}

pub(crate) fn seq_key(seq_id: u64) -> Vec<u8> {
    KeyEncoder::with_prefix(SEQ_PREFIX).u64(seq_id).finish()
}

fn db_key(name: &str) -> Vec<u8> {
    let mut k = DB_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// How long a node uses a catalog version it read without reading it
/// again; how long a DDL waits after bumping it.
pub const VERSION_TTL: Duration = Duration::from_millis(20);

#[derive(Default)]
struct Cache {
    version: u64,
    /// Until when `version` is known to be current: it was read at most
    /// [`VERSION_TTL`] before, and every DDL since waits that long.
    version_valid_until: Option<Instant>,
    tables: HashMap<(String, String), Arc<TableDesc>>,
    /// Views by (database, name); `None` remembers that there is none.
    views: HashMap<(String, String), Option<Arc<ViewDesc>>>,
    /// Sequences (CREATE SEQUENCE) by (database, name); `None` remembers
    /// that there is none.
    sequences: HashMap<(String, String), Option<Arc<SequenceDesc>>>,
    /// Each database's schemas (see [`Catalog::schema_names`]).
    schemas: HashMap<String, Arc<Vec<String>>>,
}

impl Cache {
    /// Records that the catalog was at version `v` when it was `asked`:
    /// descriptors cached at an older version go. Versions only move
    /// forward (a slow read may return after a newer one). Returns the
    /// version now cached.
    fn observe_version(&mut self, v: u64, asked: Instant) -> u64 {
        if v > self.version {
            self.tables.clear();
            self.views.clear();
            self.sequences.clear();
            self.schemas.clear();
            self.version = v;
        }
        if v == self.version {
            let until = asked + VERSION_TTL;
            self.version_valid_until =
                Some(self.version_valid_until.map_or(until, |t| t.max(until)));
        }
        self.version
    }
}

/// The catalog of one node: KV-backed, cached, invalidated by version.
pub struct Catalog {
    db: Arc<DB>,
    cache: Mutex<Cache>,
    /// The node this catalog serves (see [`Catalog::unique_rowid`]).
    node_id: u64,
}

/// The last rowid tick handed out in this process (see
/// [`Catalog::unique_rowid`]).
static LAST_ROWID_TICK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Rowid ticks count 10 µs from 2025-01-01: 48 bits last until 2114.
const ROWID_EPOCH_MS: u64 = 1_735_689_600_000;
const ROWID_NODE_BITS: u32 = 15;

fn read_i64(b: &[u8]) -> Result<i64> {
    Ok(i64::from_be_bytes(b.try_into().map_err(|_| {
        SqlError::internal("sequence counter is not an i64")
    })?))
}

fn read_u64(v: Option<Vec<u8>>) -> Result<u64> {
    match v {
        None => Ok(0),
        Some(b) => {
            Ok(u64::from_be_bytes(b.as_slice().try_into().map_err(
                |_| SqlError::internal("catalog counter is not a u64"),
            )?))
        }
    }
}

/// See [`Catalog::unique_rowid`]; `wall_ms` is the clock's reading.
fn unique_rowid(wall_ms: u64, node_id: u64) -> i64 {
    use std::sync::atomic::Ordering;
    let now = wall_ms.saturating_sub(ROWID_EPOCH_MS) * 100;
    let prev = LAST_ROWID_TICK
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(now.max(last + 1))
        })
        .expect("the update always succeeds");
    let tick = now.max(prev + 1) & ((1 << 48) - 1);
    ((tick << ROWID_NODE_BITS) | (node_id & ((1 << ROWID_NODE_BITS) - 1))) as i64
}

impl Catalog {
    pub fn new(db: Arc<DB>) -> Self {
        Catalog {
            db,
            cache: Mutex::new(Cache::default()),
            node_id: 0,
        }
    }

    /// The catalog of node `node_id`.
    pub fn with_node_id(mut self, node_id: u64) -> Self {
        self.node_id = node_id;
        self
    }

    /// A value for the hidden rowid of a table without a primary key,
    /// unique in the cluster without a round trip: the clock in 10 µs ticks
    /// (strictly increasing in this process, running ahead of the clock if
    /// asked faster than that) above 15 bits of the node id. Rows inserted
    /// through one node sort in insertion order.
    pub fn unique_rowid(&self) -> i64 {
        unique_rowid(self.db.clock().now().wall, self.node_id)
    }

    pub fn kv(&self) -> &Arc<DB> {
        &self.db
    }

    /// Creates `defaultdb` and `postgres` (the database PostgreSQL tools
    /// connect to by default) if they do not exist yet (idempotent).
    pub async fn bootstrap(&self) -> Result<()> {
        for name in [DEFAULT_DATABASE, "postgres"] {
            match self.db.cput(&db_key(name), b"", None).await {
                Ok(()) | Err(KvError::ConditionFailed { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    pub async fn database_exists(&self, name: &str) -> Result<bool> {
        Ok(self.db.get(&db_key(name)).await?.is_some())
    }

    /// CREATE DATABASE (42P04 if it exists).
    pub async fn create_database(&self, name: &str) -> Result<()> {
        match self.db.cput(&db_key(name), b"", None).await {
            Ok(()) => self.bump_version().await,
            Err(KvError::ConditionFailed { .. }) => Err(SqlError::new(
                code::DUPLICATE_DATABASE,
                format!("database \"{name}\" already exists"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a database's record, its views and its schemas; the
    /// caller drops its tables first.
    pub async fn drop_database(&self, name: &str) -> Result<()> {
        for prefix in [VIEW_DESC_PREFIX, SCHEMA_PREFIX] {
            let start = KeyEncoder::with_prefix(prefix).str(name).finish();
            let end = prefix_successor(&start).expect("prefix is not all 0xff");
            for (k, _) in self.db.scan(&start, &end, 0, false).await? {
                self.db.delete(&k).await?;
            }
        }
        self.db.delete(&db_key(name)).await?;
        self.bump_version().await
    }

    /// Names of all databases, sorted.
    pub async fn database_names(&self) -> Result<Vec<String>> {
        let end = prefix_successor(DB_PREFIX).expect("prefix is not all 0xff");
        let rows = self.db.scan(DB_PREFIX, &end, 0, false).await?;
        Ok(rows
            .into_iter()
            .map(|(k, _)| String::from_utf8_lossy(&k[DB_PREFIX.len()..]).into_owned())
            .collect())
    }

    /// The current catalog version (read again if the one cached is older
    /// than [`VERSION_TTL`]); drops the cache if it moved. Called at the
    /// start of every statement.
    pub async fn refresh(&self) -> Result<u64> {
        {
            let c = self.cache.lock();
            if c.version_valid_until.is_some_and(|t| Instant::now() < t) {
                return Ok(c.version);
            }
        }
        let asked = Instant::now();
        let v = read_u64(self.db.get(VERSION_KEY).await?)?;
        Ok(self.cache.lock().observe_version(v, asked))
    }

    /// The version the cache was last synchronized with.
    pub fn cached_version(&self) -> u64 {
        self.cache.lock().version
    }

    /// A table by name: from the cache, else from KV.
    pub async fn table(&self, db: &str, name: &str) -> Result<Option<Arc<TableDesc>>> {
        let key = (db.to_string(), name.to_string());
        if let Some(t) = self.cache.lock().tables.get(&key) {
            return Ok(Some(t.clone()));
        }
        let Some(raw) = self.db.get(&table_desc_key(db, name)).await? else {
            return Ok(None);
        };
        let desc = Arc::new(TableDesc::decode(&raw)?);
        self.cache.lock().tables.insert(key, desc.clone());
        Ok(Some(desc))
    }

    /// Whether schema `name` exists in database `db` (`public` and the
    /// system schemas always do).
    pub async fn schema_exists(&self, db: &str, name: &str) -> Result<bool> {
        if name == PUBLIC_SCHEMA || SYSTEM_SCHEMAS.contains(&name) {
            return Ok(true);
        }
        Ok(self.db.get(&schema_key(db, name)).await?.is_some())
    }

    /// CREATE SCHEMA (42P06 if it exists).
    pub async fn create_schema(&self, db: &str, name: &str) -> Result<()> {
        let exists = || {
            SqlError::new(
                code::DUPLICATE_SCHEMA,
                format!("schema \"{name}\" already exists"),
            )
        };
        if name == PUBLIC_SCHEMA || SYSTEM_SCHEMAS.contains(&name) {
            return Err(exists());
        }
        if name.contains('.') {
            return Err(SqlError::new(
                code::INVALID_SCHEMA_NAME,
                format!("schema name \"{name}\" may not contain a dot"),
            ));
        }
        match self.db.cput(&schema_key(db, name), b"", None).await {
            Ok(()) => self.bump_version().await,
            Err(KvError::ConditionFailed { .. }) => Err(exists()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a schema's record; the caller drops its relations first.
    /// False if there was none.
    pub async fn drop_schema(&self, db: &str, name: &str) -> Result<bool> {
        if !self.schema_exists(db, name).await? {
            return Ok(false);
        }
        self.db.delete(&schema_key(db, name)).await?;
        self.bump_version().await?;
        Ok(true)
    }

    /// The schemas of database `db` that hold user relations: `public`
    /// first, then the created ones in name order (cached until the next
    /// DDL).
    pub async fn schema_names(&self, db: &str) -> Result<Arc<Vec<String>>> {
        if let Some(s) = self.cache.lock().schemas.get(db) {
            return Ok(s.clone());
        }
        let names = Arc::new(self.read_schema_names(db).await?);
        self.cache
            .lock()
            .schemas
            .insert(db.to_string(), names.clone());
        Ok(names)
    }

    /// The name under which relation `name` exists: a qualified name as it
    /// is; an unqualified one in the first schema of `search_path` holding
    /// a table or view of that name (or in `public`, unchanged, if none
    /// does, so that the caller's lookup fails as usual).
    pub async fn resolve(&self, db: &str, search_path: &[String], name: &str) -> Result<String> {
        if name.contains('.') {
            return Ok(name.to_string());
        }
        let schemas = self.schema_names(db).await?;
        let path: Vec<&String> = search_path.iter().filter(|s| schemas.contains(s)).collect();
        if path.iter().all(|s| *s == PUBLIC_SCHEMA) {
            return Ok(name.to_string());
        }
        for s in path {
            let q = qualified_name(s, name);
            if self.table(db, &q).await?.is_some() || self.view(db, &q).await?.is_some() {
                return Ok(q);
            }
        }
        Ok(name.to_string())
    }

    /// The name a new relation `name` gets: a qualified name as it is; an
    /// unqualified one in the first schema of `search_path` that exists
    /// (3F000 if none does).
    pub async fn name_for_new(
        &self,
        db: &str,
        search_path: &[String],
        name: &str,
    ) -> Result<String> {
        if name.contains('.') {
            return Ok(name.to_string());
        }
        let schemas = self.schema_names(db).await?;
        match search_path.iter().find(|s| schemas.contains(s)) {
            Some(s) => Ok(qualified_name(s, name)),
            None => Err(SqlError::new(
                code::INVALID_SCHEMA_NAME,
                "no schema has been selected to create in",
            )),
        }
    }

    async fn read_schema_names(&self, db: &str) -> Result<Vec<String>> {
        let start = KeyEncoder::with_prefix(SCHEMA_PREFIX).str(db).finish();
        let end = prefix_successor(&start).expect("prefix is not all 0xff");
        let mut names = vec![PUBLIC_SCHEMA.to_string()];
        for (k, _) in self.db.scan(&start, &end, 0, false).await? {
            let mut d = KeyDecoder::new(&k[SCHEMA_PREFIX.len()..]);
            let name = d.string().and_then(|_db| d.string());
            names.push(name.map_err(|e| SqlError::internal(format!("schema key: {e}")))?);
        }
        Ok(names)
    }

    /// Fails with 3F000 unless the schema of relation name `name` exists.
    async fn check_schema(&self, db: &str, name: &str) -> Result<()> {
        let (schema, _) = split_name(name);
        if self.schema_exists(db, schema).await? {
            Ok(())
        } else {
            Err(SqlError::new(
                code::INVALID_SCHEMA_NAME,
                format!("schema \"{schema}\" does not exist"),
            ))
        }
    }

    /// Every descriptor stored under `prefix` for database `db` (all its
    /// schemas), decoded, in (schema, name) order.
    async fn descriptors<T>(
        &self,
        prefix: &[u8],
        db: &str,
        decode: impl Fn(&[u8]) -> Result<T>,
    ) -> Result<Vec<T>> {
        let start = KeyEncoder::with_prefix(prefix).str(db).finish();
        let end = prefix_successor(&start).expect("prefix is not all 0xff");
        let rows = self.db.scan(&start, &end, 0, false).await?;
        rows.into_iter().map(|(_, v)| decode(&v)).collect()
    }

    /// The tables of a database, sorted by name.
    pub async fn tables(&self, db: &str) -> Result<Vec<TableDesc>> {
        self.descriptors(TABLE_DESC_PREFIX, db, TableDesc::decode)
            .await
    }

    /// Names of the tables of a database, sorted.
    pub async fn table_names(&self, db: &str) -> Result<Vec<String>> {
        Ok(self.tables(db).await?.into_iter().map(|t| t.name).collect())
    }

    /// The names of the views of database `db`, sorted.
    pub async fn view_names(&self, db: &str) -> Result<Vec<String>> {
        let views = self.descriptors(VIEW_DESC_PREFIX, db, ViewDesc::decode);
        Ok(views.await?.into_iter().map(|v| v.name).collect())
    }

    /// A fresh id for a table or sequence.
    pub async fn allocate_id(&self) -> Result<u64> {
        Ok(self.db.increment(DESC_ID_KEY).await? + FIRST_TABLE_ID)
    }

    /// Makes every node drop its cached descriptors: returns once no node
    /// can still trust an older version (see [`VERSION_TTL`]).
    async fn bump_version(&self) -> Result<()> {
        let asked = Instant::now();
        let v = self.db.increment(VERSION_KEY).await?;
        self.cache.lock().observe_version(v, asked);
        tokio::time::sleep(VERSION_TTL).await;
        Ok(())
    }

    /// Stores a new table; 42P07 if the name is taken, 3F000 if its
    /// schema does not exist.
    pub async fn create_table(&self, db: &str, desc: &TableDesc) -> Result<()> {
        self.check_schema(db, &desc.name).await?;
        if self.db.get(&view_desc_key(db, &desc.name)).await?.is_some() {
            return Err(SqlError::new(
                code::DUPLICATE_TABLE,
                format!("relation \"{}\" already exists", desc.name),
            ));
        }
        match self
            .db
            .cput(&table_desc_key(db, &desc.name), &desc.encode(), None)
            .await
        {
            Ok(()) => {}
            Err(KvError::ConditionFailed { .. }) => {
                return Err(SqlError::new(
                    code::DUPLICATE_TABLE,
                    format!("relation \"{}\" already exists", desc.name),
                ))
            }
            Err(e) => return Err(e.into()),
        }
        self.bump_version().await
    }

    /// Replaces a descriptor, expecting it unchanged since `old` was read.
    pub async fn replace_table(&self, db: &str, old: &TableDesc, new: &TableDesc) -> Result<()> {
        match self
            .db
            .cput(
                &table_desc_key(db, &old.name),
                &new.encode(),
                Some(&old.encode()),
            )
            .await
        {
            Ok(()) => {}
            Err(KvError::ConditionFailed { .. }) => {
                return Err(SqlError::new(
                    code::SERIALIZATION_FAILURE,
                    format!(
                        "restart transaction: table \"{}\" was changed concurrently",
                        old.name
                    ),
                ))
            }
            Err(e) => return Err(e.into()),
        }
        self.bump_version().await
    }

    /// Removes a descriptor (the caller deletes the rows).
    pub async fn drop_table(&self, db: &str, desc: &TableDesc) -> Result<()> {
        let key = table_desc_key(db, &desc.name);
        // Make sure we drop what we looked at, then delete.
        match self
            .db
            .cput(&key, &desc.encode(), Some(&desc.encode()))
            .await
        {
            Ok(()) => {}
            Err(KvError::ConditionFailed { .. }) => {
                return Err(SqlError::new(
                    code::SERIALIZATION_FAILURE,
                    format!(
                        "restart transaction: table \"{}\" was changed concurrently",
                        desc.name
                    ),
                ))
            }
            Err(e) => return Err(e.into()),
        }
        self.db.delete(&key).await?;
        self.bump_version().await
    }

    /// A view by name: from the cache, else from KV (absence is cached
    /// too, until the next DDL).
    pub async fn view(&self, db: &str, name: &str) -> Result<Option<Arc<ViewDesc>>> {
        let key = (db.to_string(), name.to_string());
        if let Some(v) = self.cache.lock().views.get(&key) {
            return Ok(v.clone());
        }
        let v = match self.db.get(&view_desc_key(db, name)).await? {
            Some(raw) => Some(Arc::new(ViewDesc::decode(&raw)?)),
            None => None,
        };
        self.cache.lock().views.insert(key, v.clone());
        Ok(v)
    }

    /// Stores a view; 42P07 if a table or (unless `replace`) a view has
    /// the name.
    pub async fn create_view(&self, db: &str, desc: &ViewDesc, replace: bool) -> Result<()> {
        let exists = || {
            SqlError::new(
                code::DUPLICATE_TABLE,
                format!("relation \"{}\" already exists", desc.name),
            )
        };
        self.check_schema(db, &desc.name).await?;
        if self
            .db
            .get(&table_desc_key(db, &desc.name))
            .await?
            .is_some()
        {
            return Err(exists());
        }
        let key = view_desc_key(db, &desc.name);
        if replace {
            self.db.put(&key, &desc.encode()).await?;
        } else {
            match self.db.cput(&key, &desc.encode(), None).await {
                Ok(()) => {}
                Err(KvError::ConditionFailed { .. }) => return Err(exists()),
                Err(e) => return Err(e.into()),
            }
        }
        self.bump_version().await
    }

    /// Removes a view; false if there was none.
    pub async fn drop_view(&self, db: &str, name: &str) -> Result<bool> {
        let key = view_desc_key(db, name);
        if self.db.get(&key).await?.is_none() {
            return Ok(false);
        }
        self.db.delete(&key).await?;
        self.bump_version().await?;
        Ok(true)
    }

    /// Records a role; 42710 if it exists.
    pub async fn create_role(&self, name: &str) -> Result<()> {
        match self.db.cput(&role_key(name), b"", None).await {
            Ok(()) => Ok(()),
            Err(KvError::ConditionFailed { .. }) => Err(SqlError::new(
                code::DUPLICATE_OBJECT,
                format!("role \"{name}\" already exists"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// The roles CREATE ROLE / USER recorded, in name order.
    pub async fn role_names(&self) -> Result<Vec<String>> {
        let end = prefix_successor(ROLE_PREFIX).expect("prefix is not all 0xff");
        let mut names = Vec::new();
        for (k, _) in self.db.scan(ROLE_PREFIX, &end, 0, false).await? {
            let mut d = KeyDecoder::new(&k[ROLE_PREFIX.len()..]);
            names.push(
                d.string()
                    .map_err(|e| SqlError::internal(format!("role key: {e}")))?,
            );
        }
        Ok(names)
    }

    /// Removes a role; false if there was none.
    pub async fn drop_role(&self, name: &str) -> Result<bool> {
        let key = role_key(name);
        if self.db.get(&key).await?.is_none() {
            return Ok(false);
        }
        self.db.delete(&key).await?;
        Ok(true)
    }

    /// A sequence made by CREATE SEQUENCE, by (qualified) name: from the
    /// cache, else from KV (absence is cached too, until the next DDL).
    pub async fn sequence(&self, db: &str, name: &str) -> Result<Option<Arc<SequenceDesc>>> {
        let key = (db.to_string(), name.to_string());
        if let Some(s) = self.cache.lock().sequences.get(&key) {
            return Ok(s.clone());
        }
        let s = match self.db.get(&sequence_desc_key(db, name)).await? {
            Some(raw) => Some(Arc::new(SequenceDesc::decode(&raw)?)),
            None => None,
        };
        self.cache.lock().sequences.insert(key, s.clone());
        Ok(s)
    }

    /// The sequences of a database made by CREATE SEQUENCE, by name.
    pub async fn sequences(&self, db: &str) -> Result<Vec<SequenceDesc>> {
        self.descriptors(SEQUENCE_DESC_PREFIX, db, SequenceDesc::decode)
            .await
    }

    /// Stores a new sequence (its counter starts absent: nothing handed
    /// out yet); 42P07 if a table, view or sequence has the name, unless
    /// `if_not_exists` (then false).
    pub async fn create_sequence(
        &self,
        db: &str,
        desc: &SequenceDesc,
        if_not_exists: bool,
    ) -> Result<bool> {
        self.check_schema(db, &desc.name).await?;
        let exists = || {
            SqlError::new(
                code::DUPLICATE_TABLE,
                format!("relation \"{}\" already exists", desc.name),
            )
        };
        let taken = self
            .db
            .get(&table_desc_key(db, &desc.name))
            .await?
            .is_some()
            || self.db.get(&view_desc_key(db, &desc.name)).await?.is_some();
        let created = !taken
            && match self
                .db
                .cput(&sequence_desc_key(db, &desc.name), &desc.encode(), None)
                .await
            {
                Ok(()) => true,
                Err(KvError::ConditionFailed { .. }) => false,
                Err(e) => return Err(e.into()),
            };
        if !created {
            return if if_not_exists {
                Ok(false)
            } else {
                Err(exists())
            };
        }
        self.bump_version().await?;
        Ok(true)
    }

    /// Removes a sequence and its counter; false if there was none.
    pub async fn drop_sequence(&self, db: &str, name: &str) -> Result<bool> {
        let key = sequence_desc_key(db, name);
        let Some(raw) = self.db.get(&key).await? else {
            return Ok(false);
        };
        let desc = SequenceDesc::decode(&raw)?;
        self.db.delete(&key).await?;
        self.db.delete(&seq_key(desc.id)).await?;
        self.bump_version().await?;
        Ok(true)
    }

    /// The last value `seq` handed out (None: none yet).
    pub async fn sequence_last_value(&self, seq: &SequenceDesc) -> Result<Option<i64>> {
        self.db
            .get(&seq_key(seq.id))
            .await?
            .map(|b| read_i64(&b))
            .transpose()
    }

    /// Hands out the next value of `seq` (nextval): start, then each step
    /// `increment` further; past a bound it wraps around if the sequence
    /// cycles, else fails with 2200H. Not transactional, as in PostgreSQL:
    /// a value is never handed out twice, and a rolled-back transaction
    /// leaves a gap.
    pub async fn next_value(&self, seq: &SequenceDesc) -> Result<i64> {
        let key = seq_key(seq.id);
        let mut ambiguous_retries = 5;
        loop {
            let cur = self.db.get(&key).await?;
            let next = match &cur {
                None => seq.start,
                Some(b) => {
                    let last = read_i64(b)?;
                    match last.checked_add(seq.increment) {
                        Some(n) if (seq.min..=seq.max).contains(&n) => n,
                        _ if seq.cycle => {
                            if seq.increment > 0 {
                                seq.min
                            } else {
                                seq.max
                            }
                        }
                        _ => {
                            let (which, bound) = if seq.increment > 0 {
                                ("maximum", seq.max)
                            } else {
                                ("minimum", seq.min)
                            };
                            return Err(SqlError::new(
                                code::SEQUENCE_LIMIT,
                                format!(
                                    "nextval: reached {which} value of sequence \"{}\" ({bound})",
                                    split_name(&seq.name).1
                                ),
                            ));
                        }
                    }
                }
            };
            match self
                .db
                .cput(&key, &next.to_be_bytes(), cur.as_deref())
                .await
            {
                Ok(()) => return Ok(next),
                Err(KvError::ConditionFailed { .. }) => continue,
                // The lost attempt may have taken the value: take the next
                // one (a gap, never a duplicate).
                Err(KvError::Unavailable {
                    ambiguous: true, ..
                }) if ambiguous_retries > 0 => ambiguous_retries -= 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Makes `last` the sequence's last value: the next value is `last`
    /// plus the increment (setval).
    pub async fn set_sequence(&self, seq_id: u64, last: i64) -> Result<()> {
        let key = seq_key(seq_id);
        loop {
            let cur = self.db.get(&key).await?;
            match self
                .db
                .cput(&key, &last.to_be_bytes(), cur.as_deref())
                .await
            {
                Ok(()) => return Ok(()),
                Err(tessera_kv::db::Error::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A sequence by the name nextval() is given: one made by CREATE
    /// SEQUENCE, else the sequence of a SERIAL or identity column.
    pub async fn find_sequence(&self, db: &str, name: &str) -> Result<Option<Arc<SequenceDesc>>> {
        if let Some(s) = self.sequence(db, name).await? {
            return Ok(Some(s));
        }
        Ok(self
            .sequence_named(db, name)
            .await?
            .map(|id| Arc::new(SequenceDesc::serial(name.to_string(), id))))
    }

    /// The sequence of a SERIAL or identity column by the name PostgreSQL
    /// gives it, `<table>_<column>_seq` (optionally schema-qualified).
    pub async fn sequence_named(&self, db: &str, name: &str) -> Result<Option<u64>> {
        let (schema, base) = match name.rsplit_once('.') {
            Some((s, b)) => (Some(s), b),
            None => (None, name),
        };
        for t in self.tables(db).await? {
            let (tschema, tbase) = split_name(&t.name);
            if schema.is_some_and(|s| s != tschema) {
                continue;
            }
            for (i, c) in t.columns.iter().enumerate() {
                if c.serial && !t.is_rowid(i) && format!("{tbase}_{}_seq", c.name) == base {
                    return Ok(Some(t.seq_id));
                }
            }
        }
        Ok(None)
    }

    /// Reserves `n` consecutive values of a sequence; returns the first.
    /// Sequences are not transactional (as in PostgreSQL): a rolled-back
    /// insert leaves a gap.
    pub async fn reserve(&self, seq_id: u64, n: u64) -> Result<i64> {
        let last = self.db.add(&seq_key(seq_id), n).await?;
        Ok((last - n) as i64 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_version_only_moves_forward_and_expires() {
        let mut c = Cache::default();
        let t0 = Instant::now();
        assert_eq!(c.observe_version(3, t0), 3);
        assert_eq!(c.version_valid_until, Some(t0 + VERSION_TTL));
        c.views.insert(("d".into(), "v".into()), None);
        // A slow read that returns an older version changes nothing.
        assert_eq!(c.observe_version(2, t0 + VERSION_TTL), 3);
        assert_eq!(c.version_valid_until, Some(t0 + VERSION_TTL));
        assert_eq!(c.views.len(), 1);
        // The same version read again: trusted for longer, cache kept.
        let t1 = t0 + VERSION_TTL / 2;
        assert_eq!(c.observe_version(3, t1), 3);
        assert_eq!(c.version_valid_until, Some(t1 + VERSION_TTL));
        assert_eq!(c.views.len(), 1);
        // A newer one drops the descriptors cached at the old one.
        assert_eq!(c.observe_version(4, t1), 4);
        assert!(c.views.is_empty());
    }

    #[test]
    fn rowids_increase_and_carry_the_node() {
        let now = 1_800_000_000_000;
        let a = unique_rowid(now, 3);
        // Asked faster than the clock ticks (or with the clock behind):
        // still strictly increasing.
        let b = unique_rowid(now, 3);
        let c = unique_rowid(now - 5_000, 3);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert!(a > 0);
        assert_eq!(a & 0x7fff, 3);
        assert_eq!(unique_rowid(now, 0x8005) & 0x7fff, 5);
        // Later clock readings give larger rowids.
        assert!(unique_rowid(now + 1_000, 1) > c);
    }

    #[test]
    fn descriptors_round_trip() {
        let d = TableDesc {
            name: "t".into(),
            id: 104,
            columns: vec![
                Column {
                    id: 1,
                    name: "id".into(),
                    ty: DataType::Int8,
                    nullable: false,
                    default: None,
                    hidden: false,
                    serial: true,
                    identity: crate::catalog::Identity::None,
                },
                Column {
                    id: 2,
                    name: "v".into(),
                    ty: DataType::Numeric(Some((10, 2))),
                    nullable: true,
                    default: Some("1.5".into()),
                    hidden: false,
                    serial: false,
                    identity: crate::catalog::Identity::None,
                },
            ],
            primary_key: vec![0],
            seq_id: 105,
            next_column_id: 3,
            indexes: vec![IndexDesc {
                name: "t_v_idx".into(),
                id: 2,
                columns: vec![1],
                unique: true,
            }],
            next_index_id: 3,
            checks: vec![CheckDesc {
                name: "t_v_check".into(),
                expr: "v > 0".into(),
            }],
            fks: vec![ForeignKeyDesc {
                name: "t_v_fkey".into(),
                columns: vec![1],
                parent: "p".into(),
                parent_columns: vec![0],
                cascade_delete: true,
                set_null_delete: false,
            }],
            inbound: vec![InboundFk {
                child: "c".into(),
                name: "c_t_fkey".into(),
            }],
        };
        assert_eq!(TableDesc::decode(&d.encode()).unwrap(), d);
        assert!(TableDesc::decode(b"\xff\xff").is_err());
    }

    #[test]
    fn table_keys_of_a_database_share_a_prefix() {
        let start = KeyEncoder::with_prefix(TABLE_DESC_PREFIX)
            .str("defaultdb")
            .str(PUBLIC_SCHEMA)
            .finish();
        assert!(table_desc_key("defaultdb", "a").starts_with(&start));
        assert!(!table_desc_key("otherdb", "a").starts_with(&start));
    }
}
