//! `COPY table [(columns)] FROM STDIN` and bulk writes in bounded batches.
//!
//! The statement is parsed here (not by sqlparser, which rejects some of
//! what clients send, such as pgbench's `WITH (FREEZE ON)`). Accepted:
//!
//! ```text
//! COPY [schema.]table [(col, ...)] FROM STDIN
//!     [ [WITH] ( FORMAT text|csv|binary, DELIMITER 'c', NULL 's', HEADER [bool],
//!                QUOTE 'c', ESCAPE 'c', FREEZE [bool], ENCODING 'utf8' ) ]
//!     | [ BINARY | CSV | HEADER | DELIMITER [AS] 'c' | NULL [AS] 's'
//!         | QUOTE [AS] 'c' | ESCAPE [AS] 'c' | FREEZE ]...   -- pre-9.0 form
//! ```
//!
//! `FREEZE` is accepted and ignored (there is no vacuum to spare). The
//! binary format is PostgreSQL's (`PGCOPY` header, each field's length
//! and binary value, as a bind parameter's; 22P04 for a bad signature or
//! row width, 22P03 for a bad value). `COPY ... TO` is not supported
//! (0A000).
//!
//! Rows are parsed as CopyData messages arrive and added, in batches of
//! at most [`BATCH_ROWS`] rows or about [`BATCH_BYTES`] of input, to one
//! transaction (rows and their secondary index entries, each insert
//! conditional on its key being absent): the open transaction inside
//! BEGIN..COMMIT, otherwise one of the COPY's own that commits when the
//! data ends. COPY is atomic, as in PostgreSQL: a bad row anywhere leaves
//! nothing written, and a ROLLBACK removes what a COPY inside the block
//! added. The transaction's writes are held by the node until the commit,
//! which sends them in bounded raft commands. The first error (22P02 bad
//! value, 22P04 bad line shape, 23505 duplicate key, 23502 NULL in a NOT
//! NULL column) is reported when the client ends the copy, with the line
//! number; the rest of the data is then ignored.

use std::sync::Arc;

use crate::catalog::{Catalog, TableDesc};
use crate::error::{code, Result, SqlError};
use crate::exec;
use crate::expr::{EvalCtx, Expr};
use crate::plan::{Bound, InsertPlan, InsertSource};
use crate::txn::Txn;
use crate::types::{self, Datum};

/// Most rows in one write batch.
pub const BATCH_ROWS: usize = 2000;
/// Input bytes after which a batch is written even if it has fewer rows.
pub const BATCH_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Csv,
    /// PostgreSQL's binary COPY format: a `PGCOPY` header, then per row
    /// a field count and each field's length and binary value.
    Binary,
}

/// The binary format's signature (11 bytes), before the flags and the
/// header extension.
const BINARY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// The parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyStmt {
    pub table: String,
    /// Empty: all visible columns, in order.
    pub columns: Vec<String>,
    pub format: Format,
    pub delimiter: u8,
    pub null: String,
    pub header: bool,
    pub quote: u8,
    pub escape: u8,
}

// -- statement parsing -------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// Unquoted (lowercased) or quoted identifier / keyword.
    Word(String, bool),
    Str(String),
    Punct(char),
}

fn tokenize(sql: &str) -> Result<Vec<Tok>> {
    let b: Vec<char> = sql.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let syntax = |m: &str| SqlError::syntax(format!("syntax error in COPY: {m}"));
    while i < b.len() {
        let c = b[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && b.get(i + 1) == Some(&'-') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '\'' || ((c == 'e' || c == 'E') && b.get(i + 1) == Some(&'\'')) {
            let escapes = c != '\'';
            i += if escapes { 2 } else { 1 };
            let mut s = String::new();
            loop {
                match b.get(i) {
                    None => return Err(syntax("unterminated string")),
                    Some('\'') if b.get(i + 1) == Some(&'\'') => {
                        s.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some('\\') if escapes => {
                        let e = *b.get(i + 1).ok_or_else(|| syntax("unterminated string"))?;
                        s.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            'b' => '\u{8}',
                            'f' => '\u{c}',
                            other => other,
                        });
                        i += 2;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(s));
        } else if c == '"' {
            i += 1;
            let mut s = String::new();
            loop {
                match b.get(i) {
                    None => return Err(syntax("unterminated quoted identifier")),
                    Some('"') if b.get(i + 1) == Some(&'"') => {
                        s.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Word(s, true));
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_' || b[i] == '$') {
                i += 1;
            }
            let w: String = b[start..i].iter().collect();
            out.push(Tok::Word(w.to_lowercase(), false));
        } else if "(),.;".contains(c) {
            out.push(Tok::Punct(c));
            i += 1;
        } else {
            return Err(syntax(&format!("unexpected character {c:?}")));
        }
    }
    while out.last() == Some(&Tok::Punct(';')) {
        out.pop();
    }
    Ok(out)
}

struct Toks {
    t: Vec<Tok>,
    at: usize,
}

impl Toks {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.at)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.t.get(self.at).cloned();
        self.at += 1;
        t
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w, false)) if w == kw)
    }
    fn eat_kw(&mut self, kw: &str) -> bool {
        let yes = self.is_kw(kw);
        if yes {
            self.at += 1;
        }
        yes
    }
    fn eat_punct(&mut self, p: char) -> bool {
        let yes = self.peek() == Some(&Tok::Punct(p));
        if yes {
            self.at += 1;
        }
        yes
    }
    fn ident(&mut self) -> Result<String> {
        match self.next() {
            Some(Tok::Word(w, _)) => Ok(w),
            other => Err(unexpected(other)),
        }
    }
    fn string(&mut self) -> Result<String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(s),
            other => Err(unexpected(other)),
        }
    }
    /// An optional boolean option value: true, false, on, off, 1, 0.
    fn opt_bool(&mut self) -> Result<bool> {
        let v = match self.peek() {
            Some(Tok::Word(w, false)) | Some(Tok::Str(w)) => match w.to_lowercase().as_str() {
                "true" | "on" | "1" => Some(true),
                "false" | "off" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        };
        if v.is_some() {
            self.at += 1;
        }
        Ok(v.unwrap_or(true))
    }
}

fn unexpected(t: Option<Tok>) -> SqlError {
    SqlError::syntax(match t {
        None => "syntax error at end of input".to_string(),
        Some(Tok::Word(w, _)) => format!("syntax error at or near \"{w}\""),
        Some(Tok::Str(s)) => format!("syntax error at or near \"'{s}'\""),
        Some(Tok::Punct(p)) => format!("syntax error at or near \"{p}\""),
    })
}

fn one_byte(s: &str, what: &str) -> Result<u8> {
    match s.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(SqlError::new(
            code::FEATURE_NOT_SUPPORTED,
            format!("COPY {what} must be a single one-byte character"),
        )),
    }
}

/// Parses `sql` if it is a COPY statement (`None` otherwise).
pub fn parse(sql: &str) -> Result<Option<CopyStmt>> {
    let head = sql.trim_start();
    if !head
        .get(..4)
        .is_some_and(|h| h.eq_ignore_ascii_case("copy"))
        || head[4..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
    {
        return Ok(None);
    }
    let mut t = Toks {
        t: tokenize(sql)?,
        at: 1,
    };
    if t.peek() == Some(&Tok::Punct('(')) {
        return Err(SqlError::unsupported("COPY (query) TO is not supported"));
    }
    let mut table = t.ident()?;
    if t.eat_punct('.') {
        let name = t.ident()?;
        if table != crate::catalog::PUBLIC_SCHEMA {
            return Err(SqlError::undefined_table(&format!("{table}.{name}")));
        }
        table = name;
    }
    let mut columns = Vec::new();
    if t.eat_punct('(') {
        loop {
            columns.push(t.ident()?);
            if t.eat_punct(')') {
                break;
            }
            if !t.eat_punct(',') {
                return Err(unexpected(t.next()));
            }
        }
    }
    if t.eat_kw("to") {
        return Err(SqlError::unsupported("COPY ... TO is not supported yet"));
    }
    if !t.eat_kw("from") {
        return Err(unexpected(t.next()));
    }
    if !t.eat_kw("stdin") {
        return Err(SqlError::unsupported(
            "COPY FROM a file or program is not supported: use FROM STDIN",
        ));
    }
    let mut stmt = CopyStmt {
        table,
        columns,
        format: Format::Text,
        delimiter: b'\t',
        null: "\\N".into(),
        header: false,
        quote: b'"',
        escape: b'"',
    };
    let (mut delimiter, mut null, mut quote, mut escape) = (None, None, None, None);
    t.eat_kw("with");
    if t.eat_punct('(') {
        loop {
            let opt = t.ident()?;
            match opt.as_str() {
                "format" => match t.ident()?.as_str() {
                    "text" => stmt.format = Format::Text,
                    "csv" => stmt.format = Format::Csv,
                    "binary" => stmt.format = Format::Binary,
                    f => {
                        return Err(SqlError::new(
                            code::INVALID_PARAMETER_VALUE,
                            format!("COPY format \"{f}\" not recognized"),
                        ))
                    }
                },
                "freeze" => {
                    t.opt_bool()?;
                }
                "header" => stmt.header = t.opt_bool()?,
                "delimiter" => delimiter = Some(one_byte(&t.string()?, "delimiter")?),
                "null" => null = Some(t.string()?),
                "quote" => quote = Some(one_byte(&t.string()?, "quote")?),
                "escape" => escape = Some(one_byte(&t.string()?, "escape")?),
                "encoding" => {
                    let e = t.string()?.to_lowercase().replace(['-', '_'], "");
                    if e != "utf8" {
                        return Err(SqlError::unsupported("COPY ENCODING other than UTF8"));
                    }
                }
                other => {
                    return Err(SqlError::unsupported(format!(
                        "COPY option \"{other}\" is not supported"
                    )))
                }
            }
            if t.eat_punct(')') {
                break;
            }
            if !t.eat_punct(',') {
                return Err(unexpected(t.next()));
            }
        }
    } else {
        while let Some(tok) = t.next() {
            let Tok::Word(w, false) = &tok else {
                return Err(unexpected(Some(tok)));
            };
            match w.as_str() {
                "binary" => stmt.format = Format::Binary,
                "csv" => stmt.format = Format::Csv,
                "header" => stmt.header = true,
                "freeze" => {}
                "delimiter" | "null" | "quote" | "escape" => {
                    t.eat_kw("as");
                    let s = t.string()?;
                    match w.as_str() {
                        "delimiter" => delimiter = Some(one_byte(&s, "delimiter")?),
                        "null" => null = Some(s),
                        "quote" => quote = Some(one_byte(&s, "quote")?),
                        _ => escape = Some(one_byte(&s, "escape")?),
                    }
                }
                _ => return Err(unexpected(Some(tok))),
            }
        }
    }
    if let Some(tok) = t.next() {
        return Err(unexpected(Some(tok)));
    }
    if stmt.format == Format::Binary
        && (delimiter.is_some()
            || null.is_some()
            || stmt.header
            || quote.is_some()
            || escape.is_some())
    {
        return Err(SqlError::syntax(
            "cannot specify DELIMITER, NULL, HEADER, QUOTE or ESCAPE in BINARY mode",
        ));
    }
    if stmt.format == Format::Csv {
        stmt.delimiter = b',';
        stmt.null = String::new();
    } else if quote.is_some() || escape.is_some() {
        return Err(SqlError::unsupported(
            "COPY QUOTE and ESCAPE are available only in CSV mode",
        ));
    }
    if let Some(d) = delimiter {
        stmt.delimiter = d;
    }
    if let Some(n) = null {
        stmt.null = n;
    }
    if let Some(q) = quote {
        stmt.quote = q;
        stmt.escape = q;
    }
    if let Some(e) = escape {
        stmt.escape = e;
    }
    if matches!(stmt.delimiter, b'\n' | b'\r')
        || (stmt.format == Format::Text && stmt.delimiter == b'\\')
    {
        return Err(SqlError::new(
            code::INVALID_PARAMETER_VALUE,
            "COPY delimiter cannot be newline, carriage return or backslash",
        ));
    }
    Ok(Some(stmt))
}

// -- data ---------------------------------------------------------------------

/// A COPY FROM STDIN in progress on one connection.
pub struct CopyIn {
    catalog: Arc<Catalog>,
    table: Arc<TableDesc>,
    /// Table column positions, in the order the data gives them.
    targets: Vec<usize>,
    stmt: CopyStmt,
    /// Input not yet split into lines.
    buf: Vec<u8>,
    /// Lines consumed (for error messages).
    line: u64,
    pending: Vec<Vec<Datum>>,
    pending_bytes: usize,
    rows: u64,
    error: Option<SqlError>,
    /// `\.` seen: the rest is ignored.
    ended: bool,
    /// Where the rows go.
    txn: Txn,
    /// `txn` is the session's open transaction (returned to it at the
    /// end), not the COPY's own (committed at the end).
    lent: bool,
    /// For defaults that call nextval.
    sequences: Option<Arc<crate::sequences::SequenceAccess>>,
}

impl std::fmt::Debug for CopyIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyIn")
            .field("table", &self.table.name)
            .field("rows", &self.rows)
            .finish()
    }
}

impl CopyIn {
    /// Resolves the statement's table and columns. The rows go into
    /// `txn`, the session's open transaction, if given.
    pub async fn start(
        catalog: Arc<Catalog>,
        database: &str,
        stmt: CopyStmt,
        txn: Option<Txn>,
    ) -> Result<CopyIn> {
        catalog.refresh().await?;
        let table = catalog
            .table(database, &stmt.table)
            .await?
            .ok_or_else(|| SqlError::undefined_table(&stmt.table))?;
        let targets = if stmt.columns.is_empty() {
            (0..table.columns.len())
                .filter(|i| !table.columns[*i].hidden)
                .collect()
        } else {
            let mut t = Vec::new();
            for c in &stmt.columns {
                let pos = table
                    .column_index(c)
                    .filter(|p| !table.columns[*p].hidden)
                    .ok_or_else(|| {
                        SqlError::new(
                            code::UNDEFINED_COLUMN,
                            format!(
                                "column \"{c}\" of relation \"{}\" does not exist",
                                table.name
                            ),
                        )
                    })?;
                if t.contains(&pos) {
                    return Err(SqlError::new(
                        code::DUPLICATE_COLUMN,
                        format!("column \"{c}\" specified more than once"),
                    ));
                }
                t.push(pos);
            }
            t
        };
        Ok(CopyIn {
            table,
            targets,
            stmt,
            buf: Vec::new(),
            line: 0,
            pending: Vec::new(),
            pending_bytes: 0,
            rows: 0,
            error: None,
            ended: false,
            lent: txn.is_some(),
            sequences: None,
            txn: match txn {
                Some(t) => t,
                None => Txn::new(catalog.kv().clone()),
            },
            catalog,
        })
    }

    /// Lets the rows' defaults call sequence functions.
    pub fn with_sequences(mut self, s: Arc<crate::sequences::SequenceAccess>) -> Self {
        self.sequences = Some(s);
        self
    }

    /// Columns per row (for CopyInResponse).
    pub fn columns(&self) -> usize {
        self.targets.len()
    }

    /// Whether the rows come in the binary format (for CopyInResponse).
    pub fn is_binary(&self) -> bool {
        self.stmt.format == Format::Binary
    }

    /// Takes one CopyData payload; writes a batch when one is full. An
    /// error is kept for [`CopyIn::finish`] and the rest is ignored.
    pub async fn data(&mut self, bytes: &[u8]) {
        if self.error.is_some() || self.ended {
            return;
        }
        self.buf.extend_from_slice(bytes);
        if let Err(e) = self.consume(false).await {
            self.fail(e);
        }
    }

    /// Ends the copy: the last line, the last batch, the commit of the
    /// COPY's own transaction. Returns the row count, and the session's
    /// transaction if it was lent (to be failed if the copy failed).
    pub async fn finish(mut self) -> (Result<u64>, Option<Txn>) {
        if self.error.is_none() && !self.ended {
            if let Err(e) = self.consume(true).await {
                self.fail(e);
            }
        }
        if self.error.is_none() {
            if let Err(e) = self.flush().await {
                self.fail(e);
            }
        }
        if let Some(e) = self.error {
            return (Err(e), self.lent.then_some(self.txn));
        }
        if self.lent {
            return (Ok(self.rows), Some(self.txn));
        }
        let rows = self.rows;
        (self.txn.commit().await.map(|()| rows), None)
    }

    /// The session's transaction, if it was lent (the copy was abandoned).
    pub fn into_lent_txn(self) -> Option<Txn> {
        self.lent.then_some(self.txn)
    }

    fn fail(&mut self, e: SqlError) {
        self.error = Some(e);
        self.buf = Vec::new();
        self.pending = Vec::new();
    }

    /// Splits complete records off the buffer (all of it at the end).
    async fn consume(&mut self, at_end: bool) -> Result<()> {
        if self.stmt.format == Format::Binary {
            return self.consume_binary(at_end).await;
        }
        let mut start = 0;
        while let Some(end) = self.record_end(start, at_end) {
            let mut rec = &self.buf[start..end];
            start = (end + 1).min(self.buf.len());
            if let Some(r) = rec.strip_suffix(b"\r") {
                rec = r;
            }
            self.line += 1;
            if rec == b"\\." {
                self.ended = true;
                break;
            }
            if self.stmt.header && self.line == 1 {
                continue;
            }
            if at_end && rec.is_empty() && start >= self.buf.len() {
                break;
            }
            let row = self.parse_record(rec)?;
            self.pending_bytes += rec.len();
            self.pending.push(row);
            if self.pending.len() >= BATCH_ROWS || self.pending_bytes >= BATCH_BYTES {
                self.buf.drain(..start);
                start = 0;
                self.flush().await?;
            }
        }
        self.buf.drain(..start);
        if self.ended {
            self.buf.clear();
        }
        Ok(())
    }

    /// Splits complete binary rows off the buffer: the header first, then
    /// rows until the trailer (a field count of -1).
    async fn consume_binary(&mut self, at_end: bool) -> Result<()> {
        let bad = |m: &str| SqlError::new(code::BAD_COPY_FILE_FORMAT, m.to_string());
        let mut pos = 0;
        loop {
            let b = &self.buf[pos..];
            if self.line == 0 {
                // Signature, flags, header extension length and extension.
                if b.len() < BINARY_SIGNATURE.len() + 8 {
                    break;
                }
                if &b[..BINARY_SIGNATURE.len()] != BINARY_SIGNATURE {
                    return Err(bad("COPY file signature not recognized"));
                }
                let at = BINARY_SIGNATURE.len();
                let flags = u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"));
                if flags & 0xffff_0000 != 0 {
                    return Err(bad(
                        "invalid COPY file header (unrecognized critical flags)",
                    ));
                }
                let ext =
                    u32::from_be_bytes(b[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
                if b.len() < at + 8 + ext {
                    break;
                }
                pos += at + 8 + ext;
                self.line = 1;
                continue;
            }
            if b.len() < 2 {
                break;
            }
            let count = i16::from_be_bytes([b[0], b[1]]);
            if count == -1 {
                self.ended = true;
                pos = self.buf.len();
                break;
            }
            if count as usize != self.targets.len() || count < 0 {
                return Err(bad(&format!(
                    "row field count is {count}, expected {} ({})",
                    self.targets.len(),
                    self.context(None)
                )));
            }
            // The whole row, or wait for more data.
            let mut at = 2;
            let mut fields = Vec::with_capacity(count as usize);
            let mut complete = true;
            for _ in 0..count {
                let Some(len) = b.get(at..at + 4) else {
                    complete = false;
                    break;
                };
                let len = i32::from_be_bytes(len.try_into().expect("4 bytes"));
                at += 4;
                if len < 0 {
                    fields.push(None);
                    continue;
                }
                let Some(value) = b.get(at..at + len as usize) else {
                    complete = false;
                    break;
                };
                fields.push(Some(bytes::Bytes::copy_from_slice(value)));
                at += len as usize;
            }
            if !complete {
                break;
            }
            let row = fields
                .iter()
                .enumerate()
                .map(|(k, f)| {
                    let ty = &self.table.columns[self.targets[k]].ty;
                    crate::server::decode_param(f, ty, true).map_err(|mut e| {
                        e.code = code::INVALID_BINARY_REPRESENTATION;
                        e.message = format!("{} ({})", e.message, self.context(Some(k)));
                        e
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            pos += at;
            self.line += 1;
            self.pending_bytes += at;
            self.pending.push(row);
            if self.pending.len() >= BATCH_ROWS || self.pending_bytes >= BATCH_BYTES {
                self.buf.drain(..pos);
                pos = 0;
                self.flush().await?;
            }
        }
        self.buf.drain(..pos);
        if at_end && !self.ended && !self.buf.is_empty() {
            return Err(bad("unexpected EOF in COPY data"));
        }
        Ok(())
    }

    /// Where the record starting at `start` ends (its newline), if the
    /// buffer holds all of it. CSV newlines inside quotes are data.
    fn record_end(&self, start: usize, at_end: bool) -> Option<usize> {
        let b = &self.buf[start..];
        let found = match self.stmt.format {
            Format::Text | Format::Binary => b.iter().position(|c| *c == b'\n'),
            Format::Csv => {
                let (q, e) = (self.stmt.quote, self.stmt.escape);
                let mut in_quotes = false;
                let mut i = 0;
                let mut found = None;
                while i < b.len() {
                    let c = b[i];
                    if in_quotes {
                        if c == e && e != q && b.get(i + 1).is_some_and(|n| *n == q || *n == e) {
                            i += 1;
                        } else if c == q {
                            in_quotes = false;
                        }
                    } else if c == q {
                        in_quotes = true;
                    } else if c == b'\n' {
                        found = Some(i);
                        break;
                    }
                    i += 1;
                }
                found
            }
        };
        match found {
            Some(i) => Some(start + i),
            None if at_end && !b.is_empty() => Some(self.buf.len()),
            None => None,
        }
    }

    fn context(&self, column: Option<usize>) -> String {
        match column {
            Some(k) => format!(
                "COPY {}, line {}, column {}",
                self.table.name, self.line, self.table.columns[self.targets[k]].name
            ),
            None => format!("COPY {}, line {}", self.table.name, self.line),
        }
    }

    fn parse_record(&self, rec: &[u8]) -> Result<Vec<Datum>> {
        let fields = match self.stmt.format {
            Format::Text | Format::Binary => split_text(rec, self.stmt.delimiter, &self.stmt.null),
            Format::Csv => split_csv(
                rec,
                self.stmt.delimiter,
                self.stmt.quote,
                self.stmt.escape,
                &self.stmt.null,
            ),
        }
        .map_err(|m| {
            SqlError::new(
                code::BAD_COPY_FILE_FORMAT,
                format!("{m} ({})", self.context(None)),
            )
        })?;
        if fields.len() < self.targets.len() {
            let missing = &self.table.columns[self.targets[fields.len()]].name;
            return Err(SqlError::new(
                code::BAD_COPY_FILE_FORMAT,
                format!(
                    "missing data for column \"{missing}\" ({})",
                    self.context(None)
                ),
            ));
        }
        if fields.len() > self.targets.len() {
            return Err(SqlError::new(
                code::BAD_COPY_FILE_FORMAT,
                format!(
                    "extra data after last expected column ({})",
                    self.context(None)
                ),
            ));
        }
        fields
            .into_iter()
            .enumerate()
            .map(|(k, f)| match f {
                None => Ok(Datum::Null),
                Some(bytes) => {
                    let s = String::from_utf8(bytes).map_err(|_| {
                        SqlError::new(
                            code::INVALID_TEXT_REPRESENTATION,
                            format!(
                                "invalid byte sequence for encoding \"UTF8\" ({})",
                                self.context(Some(k))
                            ),
                        )
                    })?;
                    let ty = &self.table.columns[self.targets[k]].ty;
                    types::parse_datum(&s, ty).map_err(|mut e| {
                        e.message = format!("{} ({})", e.message, self.context(Some(k)));
                        e
                    })
                }
            })
            .collect()
    }

    /// Writes the pending rows as one batch.
    async fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let n = rows.len() as u64;
        let plan = insert_plan(&self.table, &self.targets, rows);
        let ctx = EvalCtx {
            now: types::now_micros(),
            sequences: self.sequences.clone(),
            ..EvalCtx::default()
        };
        exec::execute(&plan, &self.catalog, &mut self.txn, &ctx)
            .await
            .map_err(|mut e| {
                e.message = format!(
                    "{} (COPY {}, in the batch ending at line {})",
                    e.message, self.table.name, self.line
                );
                e
            })?;
        self.rows += n;
        Ok(())
    }
}

/// One text-format line: fields, `None` for the NULL marker.
fn split_text(
    rec: &[u8],
    delim: u8,
    null: &str,
) -> std::result::Result<Vec<Option<Vec<u8>>>, String> {
    let mut fields = Vec::new();
    let mut raw_start = 0;
    let mut cur = Vec::new();
    let mut i = 0;
    let finish = |fields: &mut Vec<Option<Vec<u8>>>, raw: &[u8], cur: &mut Vec<u8>| {
        if raw == null.as_bytes() {
            fields.push(None);
            cur.clear();
        } else {
            fields.push(Some(std::mem::take(cur)));
        }
    };
    while i < rec.len() {
        let c = rec[i];
        if c == delim {
            finish(&mut fields, &rec[raw_start..i], &mut cur);
            i += 1;
            raw_start = i;
            continue;
        }
        if c != b'\\' {
            cur.push(c);
            i += 1;
            continue;
        }
        let Some(&e) = rec.get(i + 1) else {
            // A backslash at the end of the line stands for itself.
            cur.push(b'\\');
            i += 1;
            continue;
        };
        i += 2;
        match e {
            b'b' => cur.push(8),
            b'f' => cur.push(12),
            b'n' => cur.push(b'\n'),
            b'r' => cur.push(b'\r'),
            b't' => cur.push(b'\t'),
            b'v' => cur.push(11),
            b'0'..=b'7' => {
                let mut v = (e - b'0') as u32;
                for _ in 0..2 {
                    match rec.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + (d - b'0') as u32;
                            i += 1;
                        }
                        _ => break,
                    }
                }
                cur.push(v as u8);
            }
            b'x' if rec.get(i).is_some_and(|d| d.is_ascii_hexdigit()) => {
                let mut v = 0u32;
                for _ in 0..2 {
                    match rec.get(i) {
                        Some(d) if d.is_ascii_hexdigit() => {
                            v = v * 16 + (*d as char).to_digit(16).unwrap_or(0);
                            i += 1;
                        }
                        _ => break,
                    }
                }
                cur.push(v as u8);
            }
            b'.' => return Err("end-of-copy marker corrupt".into()),
            other => cur.push(other),
        }
    }
    finish(&mut fields, &rec[raw_start..], &mut cur);
    Ok(fields)
}

/// One CSV record: fields, `None` for an unquoted NULL string.
fn split_csv(
    rec: &[u8],
    delim: u8,
    quote: u8,
    escape: u8,
    null: &str,
) -> std::result::Result<Vec<Option<Vec<u8>>>, String> {
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let mut cur = Vec::new();
        let mut quoted = false;
        let mut in_quotes = false;
        while i < rec.len() {
            let c = rec[i];
            if in_quotes {
                if c == escape && rec.get(i + 1).is_some_and(|n| *n == quote || *n == escape) {
                    // With escape == quote this is the doubled quote.
                    cur.push(rec[i + 1]);
                    i += 2;
                    continue;
                }
                if c == quote {
                    in_quotes = false;
                } else {
                    cur.push(c);
                }
            } else if c == quote {
                in_quotes = true;
                quoted = true;
            } else if c == delim {
                break;
            } else {
                cur.push(c);
            }
            i += 1;
        }
        if in_quotes {
            return Err("unterminated CSV quoted field".into());
        }
        if !quoted && cur == null.as_bytes() {
            fields.push(None);
        } else {
            fields.push(Some(cur));
        }
        if i >= rec.len() {
            break;
        }
        i += 1; // the delimiter
    }
    Ok(fields)
}

// -- batched writes -----------------------------------------------------------

/// Inserts `rows` (values for the `targets` columns) as one transaction:
/// defaults, SERIAL values, NOT NULL and secondary indexes as for INSERT.
pub async fn insert_batch(
    catalog: &Catalog,
    table: &Arc<TableDesc>,
    targets: &[usize],
    rows: Vec<Vec<Datum>>,
) -> Result<()> {
    let plan = insert_plan(table, targets, rows);
    let ctx = EvalCtx {
        now: types::now_micros(),
        ..EvalCtx::default()
    };
    let mut txn = Txn::new(catalog.kv().clone());
    exec::execute(&plan, catalog, &mut txn, &ctx).await?;
    txn.commit().await
}

/// The INSERT of `rows` (values for the `targets` columns) into `table`.
fn insert_plan(table: &Arc<TableDesc>, targets: &[usize], rows: Vec<Vec<Datum>>) -> Bound {
    Bound::Insert(InsertPlan {
        table: table.clone(),
        targets: targets.to_vec(),
        source: InsertSource::Values(
            rows.into_iter()
                .map(|r| r.into_iter().map(|d| Some(Expr::Literal(d))).collect())
                .collect(),
        ),
        returning: None,
        on_conflict: None,
        arbiters: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgbench_and_psql_copy_statements_parse() {
        let s = parse("copy pgbench_accounts from stdin with (freeze on)")
            .unwrap()
            .unwrap();
        assert_eq!(s.table, "pgbench_accounts");
        assert_eq!(s.format, Format::Text);
        assert_eq!(s.delimiter, b'\t');
        assert_eq!(s.null, "\\N");
        let s = parse("COPY public.\"T\" (a, b) FROM STDIN WITH (FORMAT csv, HEADER true, DELIMITER ';', NULL 'NA');")
            .unwrap()
            .unwrap();
        assert_eq!(s.table, "T");
        assert_eq!(s.columns, ["a", "b"]);
        assert_eq!(s.format, Format::Csv);
        assert!(s.header);
        assert_eq!(s.delimiter, b';');
        assert_eq!(s.null, "NA");
        let s = parse("copy t from stdin csv header freeze")
            .unwrap()
            .unwrap();
        assert_eq!((s.format, s.header, s.delimiter), (Format::Csv, true, b','));
        assert_eq!(parse("select 1").unwrap(), None);
        assert_eq!(parse("copyx").unwrap(), None);
        assert_eq!(parse("copy t to stdout").unwrap_err().code, "0A000");
        assert_eq!(
            parse("copy t from '/etc/passwd'").unwrap_err().code,
            "0A000"
        );
        assert_eq!(
            parse("copy t from stdin (format binary)")
                .unwrap()
                .unwrap()
                .format,
            Format::Binary
        );
        assert_eq!(
            parse("copy t from stdin binary").unwrap().unwrap().format,
            Format::Binary
        );
        assert_eq!(
            parse("copy t from stdin (format binary, header)")
                .unwrap_err()
                .code,
            "42601"
        );
        assert_eq!(parse("copy t from stdin with (").unwrap_err().code, "42601");
    }

    #[test]
    fn text_format_fields_unescape() {
        let f = split_text(b"1\t\\N\ta\\tb\\\\c\t\\101\\x41\t", b'\t', "\\N").unwrap();
        assert_eq!(
            f,
            vec![
                Some(b"1".to_vec()),
                None,
                Some(b"a\tb\\c".to_vec()),
                Some(b"AA".to_vec()),
                Some(vec![]),
            ]
        );
    }

    #[test]
    fn csv_fields_quote_and_null() {
        let f = split_csv(b"1,,\"\",\"a,\"\"b\"\"\nc\"", b',', b'"', b'"', "").unwrap();
        assert_eq!(
            f,
            vec![
                Some(b"1".to_vec()),
                None,
                Some(vec![]),
                Some(b"a,\"b\"\nc".to_vec()),
            ]
        );
        assert!(split_csv(b"\"open", b',', b'"', b'"', "").is_err());
    }
}
