//! SQL errors: every error a client sees carries a PostgreSQL SQLSTATE.
//!
//! Errors are values of [`SqlError`]: a five-character SQLSTATE, a message
//! shaped like PostgreSQL's, and an optional hint. The constructors below
//! name the classes Tessera raises; the pgwire front end turns a
//! `SqlError` into an `ErrorResponse`.

use std::fmt;

/// An error with its SQLSTATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// The five-character SQLSTATE, e.g. `42P01`.
    pub code: &'static str,
    pub message: String,
    pub hint: Option<String>,
    /// PostgreSQL's DETAIL line (e.g. the key of a constraint violation).
    pub detail: Option<String>,
}

pub type Result<T> = std::result::Result<T, SqlError>;

impl SqlError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        SqlError {
            code,
            message: message.into(),
            hint: None,
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn syntax(message: impl Into<String>) -> Self {
        Self::new(code::SYNTAX_ERROR, message)
    }

    pub fn undefined_table(name: &str) -> Self {
        Self::new(
            code::UNDEFINED_TABLE,
            format!("relation \"{name}\" does not exist"),
        )
    }

    pub fn undefined_column(name: &str) -> Self {
        Self::new(
            code::UNDEFINED_COLUMN,
            format!("column \"{name}\" does not exist"),
        )
    }

    pub fn unsupported(what: impl Into<String>) -> Self {
        Self::new(code::FEATURE_NOT_SUPPORTED, what)
    }

    pub fn mismatch(message: impl Into<String>) -> Self {
        Self::new(code::DATATYPE_MISMATCH, message)
    }

    pub fn invalid_text(ty: &str, text: &str) -> Self {
        Self::new(
            code::INVALID_TEXT_REPRESENTATION,
            format!("invalid input syntax for type {ty}: \"{text}\""),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(code::INTERNAL_ERROR, message)
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (SQLSTATE {})", self.message, self.code)
    }
}

impl std::error::Error for SqlError {}

impl From<tessera_kv::db::Error> for SqlError {
    fn from(e: tessera_kv::db::Error) -> Self {
        use tessera_kv::db::Error as E;
        match e {
            E::CrossRange(m) => SqlError::unsupported(format!(
                "cross-range transactions are not supported yet: {m}"
            ))
            .with_hint("keep the rows a transaction writes within one range"),
            E::Unavailable { reason, ambiguous } => SqlError::new(
                if ambiguous {
                    code::STATEMENT_COMPLETION_UNKNOWN
                } else {
                    code::CONNECTION_FAILURE
                },
                format!("cluster unavailable: {reason}"),
            ),
            E::Retry(m) => SqlError::new(
                code::SERIALIZATION_FAILURE,
                format!("restart transaction: {m}"),
            )
            .with_hint("retry the transaction"),
            E::Deadlock(m) => {
                SqlError::new(code::DEADLOCK_DETECTED, format!("deadlock detected: {m}"))
                    .with_hint("retry the transaction")
            }
            E::BelowGcThreshold { .. } => {
                SqlError::new(code::INVALID_PARAMETER_VALUE, e.to_string())
                    .with_hint("read at a time within the GC window (--gc-ttl, 4h by default)")
            }
            other => SqlError::internal(other.to_string()),
        }
    }
}

/// The SQLSTATE codes Tessera uses.
pub mod code {
    pub const SUCCESSFUL_COMPLETION: &str = "00000";
    pub const CONNECTION_FAILURE: &str = "08006";
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const STRING_DATA_RIGHT_TRUNCATION: &str = "22001";
    pub const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
    pub const INVALID_DATETIME_FORMAT: &str = "22007";
    pub const DATETIME_FIELD_OVERFLOW: &str = "22008";
    pub const INTERVAL_FIELD_OVERFLOW: &str = "22015";
    pub const SUBSTRING_ERROR: &str = "22011";
    pub const DIVISION_BY_ZERO: &str = "22012";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const SEQUENCE_LIMIT: &str = "2200H";
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    pub const INVALID_BINARY_REPRESENTATION: &str = "22P03";
    pub const ARRAY_SUBSCRIPT_ERROR: &str = "2202E";
    pub const NOT_NULL_VIOLATION: &str = "23502";
    pub const UNIQUE_VIOLATION: &str = "23505";
    pub const FOREIGN_KEY_VIOLATION: &str = "23503";
    pub const CHECK_VIOLATION: &str = "23514";
    pub const INVALID_FOREIGN_KEY: &str = "42830";
    pub const DEPENDENT_OBJECTS_STILL_EXIST: &str = "2BP01";
    pub const CARDINALITY_VIOLATION: &str = "21000";
    pub const ACTIVE_SQL_TRANSACTION: &str = "25001";
    pub const NO_ACTIVE_SQL_TRANSACTION: &str = "25P01";
    pub const IN_FAILED_SQL_TRANSACTION: &str = "25P02";
    pub const INVALID_SAVEPOINT_SPECIFICATION: &str = "3B001";
    pub const OBJECT_NOT_IN_PREREQUISITE_STATE: &str = "55000";
    /// A value given for a GENERATED ALWAYS identity column.
    pub const GENERATED_ALWAYS: &str = "428C9";
    pub const INVALID_AUTHORIZATION: &str = "28000";
    pub const SERIALIZATION_FAILURE: &str = "40001";
    pub const DEADLOCK_DETECTED: &str = "40P01";
    pub const STATEMENT_COMPLETION_UNKNOWN: &str = "40003";
    pub const SYNTAX_ERROR: &str = "42601";
    pub const INVALID_NAME: &str = "42602";
    pub const UNDEFINED_COLUMN: &str = "42703";
    pub const UNDEFINED_FUNCTION: &str = "42883";
    pub const UNDEFINED_TABLE: &str = "42P01";
    pub const UNDEFINED_OBJECT: &str = "42704";
    pub const INVALID_ESCAPE_SEQUENCE: &str = "22025";
    pub const UNDEFINED_PARAMETER: &str = "42P02";
    pub const DUPLICATE_TABLE: &str = "42P07";
    pub const DUPLICATE_COLUMN: &str = "42701";
    pub const AMBIGUOUS_COLUMN: &str = "42702";
    pub const GROUPING_ERROR: &str = "42803";
    pub const DATATYPE_MISMATCH: &str = "42804";
    pub const INVALID_TABLE_DEFINITION: &str = "42P16";
    pub const INVALID_COLUMN_REFERENCE: &str = "42P10";
    pub const INVALID_CATALOG_NAME: &str = "3D000";
    pub const DUPLICATE_DATABASE: &str = "42P04";
    pub const DUPLICATE_SCHEMA: &str = "42P06";
    pub const INVALID_SCHEMA_NAME: &str = "3F000";
    pub const INVALID_REGULAR_EXPRESSION: &str = "2201B";
    pub const INVALID_RECURSION: &str = "42P19";
    pub const WINDOWING_ERROR: &str = "42P20";
    pub const OBJECT_IN_USE: &str = "55006";
    pub const INTERNAL_ERROR: &str = "XX000";
    pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
    pub const WRONG_OBJECT_TYPE: &str = "42809";
    pub const DUPLICATE_OBJECT: &str = "42710";
    pub const DUPLICATE_ALIAS: &str = "42712";
    pub const INVALID_OBJECT_DEFINITION: &str = "42P17";
    pub const READ_ONLY_SQL_TRANSACTION: &str = "25006";
    pub const QUERY_CANCELED: &str = "57014";
    pub const TOO_MANY_CONNECTIONS: &str = "53300";
    pub const BAD_COPY_FILE_FORMAT: &str = "22P04";
}
