//! The PostgreSQL wire protocol front end, on `pgwire`.
//!
//! Each accepted connection gets its own handler object holding its
//! [`Session`]; pgwire drives startup, the simple query protocol and the
//! extended protocol (Parse/Bind/Describe/Execute/Sync) and calls back in
//! here. SSLRequest is answered with `N` (no TLS yet). Connections from
//! loopback are accepted without a password (any user; `root` and
//! `defaultdb` are the defaults); others are refused with 28000 until
//! authentication exists. A malformed message makes pgwire drop that one
//! connection; the listener and other connections are unaffected.
//!
//! Values go out in text format, or in binary where the client asks for it
//! (all supported types have a binary form, NUMERIC included).
//!
//! Connections: at most [`ServerConfig::max_connections`] sessions per
//! node; the next one gets FATAL 53300 ("sorry, too many clients already")
//! after its startup message and is closed, while the others keep being
//! served. A CancelRequest (on its own connection, with the process id and
//! secret key the session received in BackendKeyData) interrupts the
//! statement running on that session: it fails with 57014, and an explicit
//! transaction it ran in is aborted (25P02 until ROLLBACK).
//!
//! Backpressure: a statement's rows are encoded into DataRow messages one
//! at a time as the socket accepts them (the write buffer is flushed when
//! it passes a few KB), and the next message of a client is read only when
//! the previous one is answered. A client that stops reading therefore
//! holds at most one statement's result (as the executor materialized it)
//! plus a socket buffer of server memory, however much it pipelines.
//!
//! `COPY ... FROM STDIN` (text and CSV) is run by [`crate::copy`].

use std::fmt::Debug;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use futures::sink::{Sink, SinkExt};
use futures::StreamExt;
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
    DefaultServerParameterProvider, StartupHandler,
};
use pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    CopyResponse, DescribePortalResponse, DescribeStatementResponse, FieldFormat, FieldInfo,
    QueryResponse, Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionManager, PgWireServerHandlers, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator, Type, METADATA_DATABASE, METADATA_USER,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::data::DataRow;
use pgwire::messages::extendedquery::{Bind, Describe, Execute, Parse};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tessera_kv::DB;
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use crate::catalog::{Catalog, DEFAULT_DATABASE};
use crate::copy::CopyIn;
use crate::error::{code, SqlError};
use crate::session::{Prepared, Session, StmtResult};
use crate::types::{self, DataType, Datum, Decimal, Interval, MICROS_PER_DAY, PG_EPOCH_DAYS};
use crate::wire_batch;

/// Settings of the SQL server of one node.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Sessions served at once; the next one is refused with 53300.
    pub max_connections: usize,
    /// The node serving: part of every hidden rowid it generates, so that
    /// nodes never generate the same one.
    pub node_id: u64,
}

/// The default of `tessera start --max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 200;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            node_id: 0,
        }
    }
}

/// State shared by every connection of one node.
struct Shared {
    catalog: Arc<Catalog>,
    pids: RandomPidSecretKeyGenerator,
    bootstrapped: tokio::sync::OnceCell<()>,
    config: ServerConfig,
    /// Sessions past startup, counted by [`SessionSlot`]s.
    sessions: Arc<AtomicUsize>,
    /// Running statements by (process id, secret key), for CancelRequest.
    cancels: Arc<ConnectionManager>,
}

/// One counted session; dropped with the connection.
struct SessionSlot(Arc<AtomicUsize>);

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves the PostgreSQL wire protocol on `listener` until `shutdown`
/// completes. Each connection runs on its own task; open connections are
/// not interrupted by shutdown (they end when their clients disconnect or
/// the runtime stops). The `defaultdb` database is created on first use.
///
/// ```no_run
/// # async fn demo(db: std::sync::Arc<tessera_kv::DB>) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:26257").await?;
/// tessera_sql::serve(listener, db, tokio::signal::ctrl_c().map(|_| ())).await
/// # }
/// # use futures::FutureExt;
/// ```
pub async fn serve(
    listener: TcpListener,
    db: Arc<DB>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_with(listener, db, ServerConfig::default(), shutdown).await
}

/// [`serve`] with explicit settings.
pub async fn serve_with(
    listener: TcpListener,
    db: Arc<DB>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared {
        catalog: Arc::new(Catalog::new(db).with_node_id(config.node_id)),
        pids: RandomPidSecretKeyGenerator::default(),
        bootstrapped: tokio::sync::OnceCell::new(),
        config,
        sessions: Arc::new(AtomicUsize::new(0)),
        cancels: Arc::new(ConnectionManager::new()),
    });
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!("sql: accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let handlers = Arc::new(ConnHandlers::new(shared.clone()));
                tokio::spawn(async move {
                    if let Err(e) = pgwire::tokio::process_socket(socket, None, handlers).await {
                        tracing::debug!("sql: connection from {peer} ended: {e}");
                    }
                });
            }
        }
    }
}

fn user_error(e: SqlError) -> PgWireError {
    tracing::debug!(code = e.code, "sql: statement failed: {}", e.message);
    let mut info = ErrorInfo::new("ERROR".into(), e.code.into(), e.message);
    info.hint = e.hint;
    info.detail = e.detail;
    PgWireError::UserError(Box::new(info))
}

fn fatal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        code.into(),
        message,
    )))
}

/// The handlers of one connection.
struct ConnHandlers {
    conn: Arc<Conn>,
}

impl ConnHandlers {
    fn new(shared: Arc<Shared>) -> Self {
        let session = Arc::new(Mutex::new(Session::new(
            shared.catalog.clone(),
            DEFAULT_DATABASE.into(),
            "root".into(),
        )));
        ConnHandlers {
            conn: Arc::new(Conn {
                shared: shared.clone(),
                session: session.clone(),
                parser: Arc::new(StmtParser { session }),
                copy: Mutex::new(None),
            }),
        }
    }
}

impl PgWireServerHandlers for ConnHandlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.conn.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.conn.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.conn.clone()
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        self.conn.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::new(DefaultCancelHandler::new(self.conn.shared.cancels.clone()))
    }
}

struct Conn {
    shared: Arc<Shared>,
    session: Arc<Mutex<Session>>,
    parser: Arc<StmtParser>,
    /// The COPY FROM STDIN in progress, if any.
    copy: Mutex<Option<CopyIn>>,
}

#[async_trait]
impl StartupHandler for Conn {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let PgWireFrontendMessage::Startup(ref startup) = message else {
            return Ok(());
        };
        let sessions = &self.shared.sessions;
        let slot = SessionSlot(sessions.clone());
        if sessions.fetch_add(1, Ordering::SeqCst) >= self.shared.config.max_connections {
            return Err(fatal(
                code::TOO_MANY_CONNECTIONS,
                "sorry, too many clients already".into(),
            ));
        }
        client.session_extensions().insert(slot);
        protocol_negotiation(client, startup).await?;
        save_startup_parameters_to_metadata(client, startup);
        if !client.socket_addr().ip().is_loopback() {
            return Err(fatal(
                code::INVALID_AUTHORIZATION,
                "password authentication is not available yet: connect from loopback".into(),
            ));
        }
        let user = client
            .metadata()
            .get(METADATA_USER)
            .cloned()
            .unwrap_or_else(|| "root".into());
        let database = client
            .metadata()
            .get(METADATA_DATABASE)
            .cloned()
            .unwrap_or_else(|| user.clone());
        let catalog = &self.shared.catalog;
        self.shared
            .bootstrapped
            .get_or_try_init(|| async { catalog.bootstrap().await })
            .await
            .map_err(|e| fatal(e.code, e.message))?;
        match catalog.database_exists(&database).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(fatal(
                    code::INVALID_CATALOG_NAME,
                    format!("database \"{database}\" does not exist"),
                ))
            }
            Err(e) => return Err(fatal(e.code, e.message)),
        }
        {
            let mut s = self.session.lock().await;
            s.database = database;
            s.user = user;
        }
        let (pid, secret) = self.shared.pids.generate(client);
        self.session.lock().await.backend_pid = pid;
        let (handle, guard) = self.shared.cancels.register(pid, secret.clone());
        client.session_extensions().insert(handle);
        client.session_extensions().insert(guard);
        client.set_pid_and_secret_key(pid, secret);
        let mut params = DefaultServerParameterProvider::default();
        params.server_version = crate::SERVER_VERSION.into();
        params.time_zone = "UTC".into();
        params.date_style = "ISO, MDY".into();
        params.search_path = "\"$user\", public".into();
        finish_authentication(client, &params).await?;
        Ok(())
    }
}

fn field_infos(columns: &[(String, DataType)], format: &Format) -> Vec<FieldInfo> {
    columns
        .iter()
        .enumerate()
        .map(|(i, (name, ty))| {
            FieldInfo::new(name.clone(), None, None, ty.pg_type(), format.format_for(i))
        })
        .collect()
}

/// Encodes one value into a DataRow buffer (length-prefixed).
fn put_value(buf: &mut BytesMut, d: &Datum, ty: &DataType, format: FieldFormat) {
    if d.is_null() {
        buf.put_i32(-1);
        return;
    }
    let at = buf.len();
    buf.put_i32(0);
    if format == FieldFormat::Binary {
        put_binary(buf, d, ty);
    } else if let Some(s) = types::format_datum(d, ty) {
        buf.put_slice(s.as_bytes());
    }
    let len = (buf.len() - at - 4) as i32;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn put_binary(buf: &mut BytesMut, d: &Datum, ty: &DataType) {
    match (d, ty) {
        (Datum::Int(i), DataType::Int2) => buf.put_i16(*i as i16),
        (Datum::Int(i), DataType::Int4) => buf.put_i32(*i as i32),
        (Datum::Int(i), DataType::Oid) => buf.put_u32(*i as u32),
        (Datum::Int(i), _) => buf.put_i64(*i),
        (Datum::Float(f), DataType::Float4) => buf.put_f32(*f as f32),
        (Datum::Float(f), _) => buf.put_f64(*f),
        (Datum::Bool(b), _) => buf.put_u8(*b as u8),
        (Datum::Text(s), DataType::Jsonb) => {
            buf.put_u8(1); // jsonb binary format version
            buf.put_slice(s.as_bytes())
        }
        (Datum::Text(s), _) => buf.put_slice(s.as_bytes()),
        (Datum::Bytes(b), _) => buf.put_slice(b),
        (Datum::Date(d), _) => buf.put_i32(d - PG_EPOCH_DAYS),
        (Datum::Timestamp(t), _) => buf.put_i64(t - PG_EPOCH_DAYS as i64 * MICROS_PER_DAY),
        (Datum::Time(t), _) => buf.put_i64(*t),
        (Datum::Interval(iv), _) => {
            buf.put_i64(iv.micros);
            buf.put_i32(iv.days);
            buf.put_i32(iv.months);
        }
        (Datum::Decimal(d), _) => put_numeric(buf, d),
        (Datum::Array(items), _) => {
            let elem = ty.element().cloned().unwrap_or(DataType::Text);
            let encoded = crate::array::to_binary(items, elem.pg_type().oid(), |d, out| {
                let mut b = BytesMut::new();
                put_binary(&mut b, d, &elem);
                out.extend_from_slice(&b);
                Ok(())
            });
            buf.put_slice(&encoded.unwrap_or_default());
        }
        (Datum::Null, _) => {}
    }
}

/// PostgreSQL's binary NUMERIC: base-10000 digits around the point.
fn put_numeric(buf: &mut BytesMut, d: &Decimal) {
    if d.is_special() {
        // No digits; the sign word says which (NaN, +Inf, -Inf).
        buf.put_i16(0);
        buf.put_i16(0);
        buf.put_u16(match d.mantissa {
            0 => 0xC000,
            m if m < 0 => 0xF000,
            _ => 0xD000,
        });
        buf.put_u16(0);
        return;
    }
    let digits = d.mantissa.unsigned_abs().to_string();
    let scale = d.scale as usize;
    let (int, frac) = if digits.len() > scale {
        (
            digits[..digits.len() - scale].to_string(),
            digits[digits.len() - scale..].to_string(),
        )
    } else {
        (String::new(), format!("{digits:0>scale$}"))
    };
    let int = format!("{}{int}", "0".repeat((4 - int.len() % 4) % 4));
    let frac = format!("{frac}{}", "0".repeat((4 - frac.len() % 4) % 4));
    let mut groups: Vec<i16> = int
        .as_bytes()
        .chunks(4)
        .chain(frac.as_bytes().chunks(4))
        .map(|c| std::str::from_utf8(c).unwrap_or("0").parse().unwrap_or(0))
        .collect();
    let mut weight = (int.len() / 4) as i16 - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    buf.put_i16(groups.len() as i16);
    buf.put_i16(weight);
    buf.put_u16(if d.mantissa < 0 { 0x4000 } else { 0 });
    buf.put_u16(d.scale as u16);
    for g in groups {
        buf.put_i16(g);
    }
}

fn get_numeric(b: &[u8]) -> Option<Decimal> {
    let rd =
        |i: usize| -> Option<i16> { Some(i16::from_be_bytes(b.get(i..i + 2)?.try_into().ok()?)) };
    let n = rd(0)? as usize;
    let weight = rd(2)? as i64;
    let sign = rd(4)? as u16;
    let dscale = rd(6)? as u16;
    match sign {
        0xC000 => return Some(Decimal::NAN),
        0xD000 => return Some(Decimal::INFINITY),
        0xF000 => return Some(Decimal::NEG_INFINITY),
        _ => {}
    }
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!("{:04}", rd(8 + 2 * i)?));
    }
    // value = 0.<s> * 10000^(weight+1)
    let exp = (weight + 1) * 4 - s.len() as i64;
    let text = format!(
        "{}{}e{exp}",
        if sign == 0x4000 { "-" } else { "" },
        if s.is_empty() { "0" } else { &s }
    );
    let d = Decimal::parse(&text)?;
    d.round_to(dscale as u32).ok()
}

/// Decodes a parameter value sent in `format` for type `ty`.
pub(crate) fn decode_param(
    v: &Option<Bytes>,
    ty: &DataType,
    binary: bool,
) -> Result<Datum, SqlError> {
    let Some(b) = v else { return Ok(Datum::Null) };
    let bad = || {
        SqlError::new(
            code::PROTOCOL_VIOLATION,
            format!(
                "incorrect binary data format in bind parameter of type {}",
                ty.sql_name()
            ),
        )
    };
    if !binary {
        let s = std::str::from_utf8(b)
            .map_err(|_| SqlError::invalid_text(&ty.sql_name(), "<invalid UTF-8>"))?;
        return types::cast(Datum::Text(s.to_string()), ty);
    }
    let arr = |n: usize| -> Result<&[u8], SqlError> {
        if b.len() == n {
            Ok(&b[..])
        } else {
            Err(bad())
        }
    };
    Ok(match ty {
        DataType::Int2 => {
            Datum::Int(i16::from_be_bytes(arr(2)?.try_into().map_err(|_| bad())?) as i64)
        }
        DataType::Int4 => {
            Datum::Int(i32::from_be_bytes(arr(4)?.try_into().map_err(|_| bad())?) as i64)
        }
        DataType::Int8 => Datum::Int(i64::from_be_bytes(arr(8)?.try_into().map_err(|_| bad())?)),
        DataType::Oid => {
            Datum::Int(u32::from_be_bytes(arr(4)?.try_into().map_err(|_| bad())?) as i64)
        }
        DataType::Float4 => {
            Datum::Float(f32::from_be_bytes(arr(4)?.try_into().map_err(|_| bad())?) as f64)
        }
        DataType::Float8 => {
            Datum::Float(f64::from_be_bytes(arr(8)?.try_into().map_err(|_| bad())?))
        }
        DataType::Bool => Datum::Bool(arr(1)?[0] != 0),
        DataType::Bytea => Datum::Bytes(b.to_vec()),
        DataType::Uuid => {
            arr(16)?;
            Datum::Bytes(b.to_vec())
        }
        DataType::Json | DataType::Jsonb => {
            let body = match (ty, b.split_first()) {
                (DataType::Jsonb, Some((1, rest))) => rest,
                (DataType::Jsonb, _) => return Err(bad()),
                _ => &b[..],
            };
            let s = std::str::from_utf8(body).map_err(|_| bad())?.to_string();
            types::cast(Datum::Text(s), ty)?
        }
        DataType::Date => {
            Datum::Date(i32::from_be_bytes(arr(4)?.try_into().map_err(|_| bad())?) + PG_EPOCH_DAYS)
        }
        DataType::Timestamp | DataType::TimestampTz => Datum::Timestamp(
            i64::from_be_bytes(arr(8)?.try_into().map_err(|_| bad())?)
                + PG_EPOCH_DAYS as i64 * MICROS_PER_DAY,
        ),
        DataType::Time => {
            let t = i64::from_be_bytes(arr(8)?.try_into().map_err(|_| bad())?);
            if !(0..=MICROS_PER_DAY).contains(&t) {
                return Err(bad());
            }
            Datum::Time(t)
        }
        DataType::Interval => {
            // µs, days, months: int64, int32, int32.
            let b = arr(16)?;
            Datum::Interval(Interval {
                micros: i64::from_be_bytes(b[..8].try_into().map_err(|_| bad())?),
                days: i32::from_be_bytes(b[8..12].try_into().map_err(|_| bad())?),
                months: i32::from_be_bytes(b[12..].try_into().map_err(|_| bad())?),
            })
        }
        DataType::Numeric(_) => Datum::Decimal(get_numeric(b).ok_or_else(bad)?),
        DataType::Array(elem) => crate::array::from_binary(b, |e| {
            decode_param(&Some(Bytes::copy_from_slice(e)), elem, true)
        })?,
        DataType::Text | DataType::Varchar(_) | DataType::Char(_) | DataType::Unknown => {
            let s = std::str::from_utf8(b).map_err(|_| bad())?.to_string();
            types::cast(Datum::Text(s), ty)?
        }
    })
}

fn rows_response(
    columns: &[(String, DataType)],
    rows: Vec<Vec<Datum>>,
    tag: &str,
    format: &Format,
) -> Response {
    let fields = Arc::new(field_infos(columns, format));
    let types: Vec<DataType> = columns.iter().map(|(_, t)| t.clone()).collect();
    let formats: Vec<FieldFormat> = (0..columns.len()).map(|i| format.format_for(i)).collect();
    // Encoded lazily, as the socket takes them.
    let data = futures::stream::iter(rows.into_iter().map(move |r| {
        let mut buf = BytesMut::with_capacity(16 * r.len());
        for (i, d) in r.iter().enumerate() {
            put_value(&mut buf, d, &types[i], formats[i]);
        }
        Ok(DataRow::new(buf, r.len() as i16))
    }));
    let mut q = QueryResponse::new(fields, data);
    q.set_command_tag(tag);
    Response::Query(q)
}

/// Rows sent as the query produces them; an error ends the result.
fn streamed_response(
    columns: &[(String, DataType)],
    rows: crate::exec::RowStream,
    format: &Format,
) -> Response {
    let fields = Arc::new(field_infos(columns, format));
    let types: Vec<DataType> = columns.iter().map(|(_, t)| t.clone()).collect();
    let formats: Vec<FieldFormat> = (0..columns.len()).map(|i| format.format_for(i)).collect();
    let data = futures::stream::unfold(rows, |mut rows| async move {
        let next = rows.recv().await?;
        Some((next, rows))
    })
    .map(move |r| match r {
        Ok(r) => {
            let mut buf = BytesMut::with_capacity(16 * r.len());
            for (i, d) in r.iter().enumerate() {
                put_value(&mut buf, d, &types[i], formats[i]);
            }
            Ok(DataRow::new(buf, r.len() as i16))
        }
        Err(e) => Err(user_error(e)),
    });
    let mut q = QueryResponse::new(fields, data);
    q.set_command_tag("SELECT");
    Response::Query(q)
}

fn to_response(r: StmtResult, format: &Format) -> Response {
    match r {
        StmtResult::Rows { columns, rows, tag } => rows_response(&columns, rows, &tag, format),
        StmtResult::RowStream { columns, rows } => streamed_response(&columns, rows, format),
        StmtResult::Command(tag) => Response::Execution(Tag::new(&tag)),
        StmtResult::Begin(tag) => Response::TransactionStart(Tag::new(tag)),
        StmtResult::End(tag) => Response::TransactionEnd(Tag::new(&tag)),
        StmtResult::Empty => Response::EmptyQuery,
        // Started by `Conn::start_copy`; never reaches here.
        StmtResult::CopyIn(_) => Response::Execution(Tag::new("COPY")),
    }
}

fn error_response(e: SqlError) -> Response {
    tracing::debug!(code = e.code, "sql: statement failed: {}", e.message);
    let mut info = ErrorInfo::new("ERROR".into(), e.code.into(), e.message);
    info.hint = e.hint;
    info.detail = e.detail;
    Response::Error(Box::new(info))
}

impl Conn {
    /// Keeps a COPY FROM STDIN for the CopyData to come; the response
    /// tells the client to send it.
    async fn start_copy(&self, c: CopyIn) -> Response {
        let columns = c.columns();
        let format = if c.is_binary() { 1 } else { 0 };
        *self.copy.lock().await = Some(c);
        Response::CopyIn(CopyResponse::new(
            format,
            columns,
            futures::stream::empty::<PgWireResult<CopyData>>(),
        ))
    }
}

#[async_trait]
impl SimpleQueryHandler for Conn {
    async fn do_query<C>(&self, _client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let results = self.session.lock().await.execute_sql(query).await;
        let mut out = Vec::with_capacity(results.len());
        for r in results {
            out.push(match r {
                Ok(StmtResult::CopyIn(c)) => self.start_copy(*c).await,
                Ok(r) => to_response(r, &Format::UnifiedText),
                Err(e) => error_response(e),
            });
        }
        Ok(out)
    }
}

#[async_trait]
impl CopyHandler for Conn {
    async fn on_copy_data<C>(&self, _client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // Errors are kept until CopyDone: the client is still sending.
        if let Some(c) = self.copy.lock().await.as_mut() {
            c.data(&copy_data.data).await;
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Some(c) = self.copy.lock().await.take() else {
            return Err(user_error(SqlError::new(
                code::PROTOCOL_VIOLATION,
                "CopyDone without COPY in progress",
            )));
        };
        let (result, lent) = c.finish().await;
        self.session
            .lock()
            .await
            .copy_finished(result.is_ok(), lent);
        let rows = result.map_err(user_error)?;
        client
            .send(PgWireBackendMessage::CommandComplete(
                Tag::new("COPY").with_rows(rows as usize).into(),
            ))
            .await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, _client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let lent = self
            .copy
            .lock()
            .await
            .take()
            .and_then(CopyIn::into_lent_txn);
        self.session.lock().await.copy_finished(false, lent);
        user_error(SqlError::new(
            code::QUERY_CANCELED,
            format!("COPY from stdin failed: {}", fail.message),
        ))
    }
}

/// Parses and binds statements for the extended protocol.
struct StmtParser {
    session: Arc<Mutex<Session>>,
}

#[async_trait]
impl QueryParser for StmtParser {
    type Statement = Arc<Prepared>;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let declared: Vec<Option<DataType>> = types
            .iter()
            .map(|t| t.as_ref().and_then(DataType::from_pg_type))
            .collect();
        let p = self
            .session
            .lock()
            .await
            .prepare(sql, &declared)
            .await
            .map_err(user_error)?;
        Ok(Some(Arc::new(p)))
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        Ok(stmt.param_types.iter().map(|t| t.pg_type()).collect())
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        Ok(field_infos(
            &stmt.columns,
            format.unwrap_or(&Format::UnifiedText),
        ))
    }
}

#[async_trait]
impl ExtendedQueryHandler for Conn {
    type Statement = Arc<Prepared>;
    type QueryParser = StmtParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        wire_batch::parse(self, client, message).await
    }

    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        wire_batch::bind(client, message).await
    }

    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        wire_batch::describe(self, client, message).await
    }

    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        wire_batch::execute(self, client, message).await
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        target: &StoredStatement<Self::Statement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let p = &target.statement;
        let params = p.param_types.iter().map(|t| t.pg_type()).collect();
        Ok(DescribeStatementResponse::new(
            params,
            field_infos(&p.columns, &Format::UnifiedText),
        ))
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Self::Statement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let p = &portal.statement.statement;
        Ok(DescribePortalResponse::new(field_infos(
            &p.columns,
            &portal.result_column_format,
        )))
    }

    async fn do_query<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let p = portal.statement.statement.clone();
        let mut params = Vec::with_capacity(portal.parameters.len());
        for (i, v) in portal.parameters.iter().enumerate() {
            let ty = p.param_types.get(i).cloned().unwrap_or(DataType::Text);
            let binary = portal.parameter_format.is_binary(i);
            params.push(decode_param(v, &ty, binary).map_err(user_error)?);
        }
        let r = self
            .session
            .lock()
            .await
            .execute_prepared(&p, &params)
            .await
            .map_err(user_error)?;
        Ok(match r {
            StmtResult::CopyIn(c) => self.start_copy(*c).await,
            r => to_response(r, &portal.result_column_format),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_numeric_round_trips() {
        for s in [
            "0",
            "1",
            "-1.5",
            "12345.6789",
            "0.0001",
            "100000000",
            "-0.00012",
        ] {
            let d = Decimal::parse(s).unwrap();
            let mut buf = BytesMut::new();
            put_numeric(&mut buf, &d);
            let back = get_numeric(&buf).unwrap();
            assert_eq!(back, d, "{s}");
            assert_eq!(back.to_string(), d.to_string(), "{s}");
        }
    }

    #[test]
    fn binary_parameters_decode_by_type() {
        let b = |v: &[u8]| Some(Bytes::copy_from_slice(v));
        assert_eq!(
            decode_param(&b(&7i64.to_be_bytes()), &DataType::Int8, true).unwrap(),
            Datum::Int(7)
        );
        assert_eq!(
            decode_param(&b(b"42"), &DataType::Int4, false).unwrap(),
            Datum::Int(42)
        );
        assert_eq!(
            decode_param(&None, &DataType::Int4, true).unwrap(),
            Datum::Null
        );
        assert!(decode_param(&b(&[1, 2, 3]), &DataType::Int4, true).is_err());
        assert_eq!(
            decode_param(&b(b"x4"), &DataType::Int4, false)
                .unwrap_err()
                .code,
            "22P02"
        );
    }

    #[test]
    fn binary_times_and_intervals_use_postgres_layouts() {
        let binary = |d: &Datum, ty: &DataType| {
            let mut buf = BytesMut::new();
            put_binary(&mut buf, d, ty);
            buf.freeze()
        };
        // INTERVAL: µs (int64), days (int32), months (int32), big-endian.
        let iv = Datum::Interval(Interval {
            months: 14,
            days: -3,
            micros: 7_200_500_000,
        });
        let bytes = binary(&iv, &DataType::Interval);
        let mut expected = 7_200_500_000i64.to_be_bytes().to_vec();
        expected.extend((-3i32).to_be_bytes());
        expected.extend(14i32.to_be_bytes());
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(
            decode_param(&Some(bytes), &DataType::Interval, true).unwrap(),
            iv
        );
        // TIME: µs since midnight (int64), at most 24:00:00.
        let t = Datum::Time(45_296_500_000);
        let bytes = binary(&t, &DataType::Time);
        assert_eq!(&bytes[..], &45_296_500_000i64.to_be_bytes());
        assert_eq!(
            decode_param(&Some(bytes), &DataType::Time, true).unwrap(),
            t
        );
        let past_midnight = Bytes::copy_from_slice(&(MICROS_PER_DAY + 1).to_be_bytes());
        assert!(decode_param(&Some(past_midnight), &DataType::Time, true).is_err());
        assert!(decode_param(
            &Some(Bytes::from_static(&[0; 12])),
            &DataType::Interval,
            true
        )
        .is_err());
    }
}
