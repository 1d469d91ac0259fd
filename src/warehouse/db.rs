//! Connections to the warehouses tidemark drives itself (PostgreSQL, SQLite), behind one small
//! interface: execute or fetch a rendered statement with bound parameters. Rows come back as
//! named structs ([`FromRow`]): a column a template stops returning, or returns with another
//! type, is an error naming the statement and the column — never a silent default.

use std::str::FromStr;
use std::time::Duration;

use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Postgres, Row as _, Sqlite, Transaction, TypeInfo, ValueRef};

use crate::config::redact::redact_url;
use crate::sql::dialect::Dialect;
use crate::sql::{safe, Rendered};

/// A parameter bound to a statement.
#[derive(Debug, Clone)]
pub enum Bind {
    I64(i64),
    OptI64(Option<i64>),
    I32(i32),
    Text(String),
    OptText(Option<String>),
    Time(DateTime<Utc>),
}

/// One value of a fetched row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
    Bool(bool),
}

impl Cell {
    /// The value as text, the way a replica comparison reads it.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Cell::Null => None,
            Cell::Int(v) => Some(v.to_string()),
            Cell::Float(v) => Some(v.to_string()),
            Cell::Text(s) => Some(s.clone()),
            Cell::Bytes(b) => {
                let mut s = String::new();
                crate::model::change::push_hex(&mut s, b);
                Some(s)
            }
            Cell::Bool(b) => Some(b.to_string()),
        }
    }
}

/// One fetched row: its cells and the statement's column names.
#[derive(Debug, Clone)]
pub struct Row {
    columns: Arc<[String]>,
    cells: Vec<Cell>,
}

impl Row {
    /// The value of `column`, as `T`: an error when the statement has no such column or its
    /// value is not a `T`.
    pub fn get<T: FromCell>(&self, column: &str) -> Result<T> {
        let i = self
            .columns
            .iter()
            .position(|c| c == column)
            .ok_or_else(|| anyhow!("no column `{column}` (it returns {})", self.columns.join(", ")))?;
        T::from_cell(&self.cells[i]).ok_or_else(|| anyhow!("column `{column}` is {:?}, not {}", self.cells[i], T::WHAT))
    }

    /// The cells in column order (rows whose columns are the replica's own).
    pub fn cells(&self) -> &[Cell] {
        &self.cells
    }
}

/// A value a cell can be read as.
pub trait FromCell: Sized {
    /// What it is, for errors.
    const WHAT: &'static str;
    fn from_cell(c: &Cell) -> Option<Self>;
}

impl FromCell for i64 {
    const WHAT: &'static str = "an integer";
    fn from_cell(c: &Cell) -> Option<i64> {
        match c {
            Cell::Int(v) => Some(*v),
            _ => None,
        }
    }
}

impl FromCell for i32 {
    const WHAT: &'static str = "a 32-bit integer";
    fn from_cell(c: &Cell) -> Option<i32> {
        i64::from_cell(c).and_then(|v| i32::try_from(v).ok())
    }
}

impl FromCell for f64 {
    const WHAT: &'static str = "a number";
    fn from_cell(c: &Cell) -> Option<f64> {
        match c {
            Cell::Float(v) => Some(*v),
            Cell::Int(v) => Some(*v as f64),
            _ => None,
        }
    }
}

impl FromCell for bool {
    const WHAT: &'static str = "a boolean";
    fn from_cell(c: &Cell) -> Option<bool> {
        match c {
            Cell::Bool(b) => Some(*b),
            // SQLite has no boolean type: comparisons are 0 or 1.
            Cell::Int(0) => Some(false),
            Cell::Int(1) => Some(true),
            _ => None,
        }
    }
}

impl FromCell for String {
    const WHAT: &'static str = "text";
    fn from_cell(c: &Cell) -> Option<String> {
        match c {
            Cell::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl FromCell for Vec<u8> {
    const WHAT: &'static str = "bytes";
    fn from_cell(c: &Cell) -> Option<Vec<u8>> {
        match c {
            Cell::Bytes(b) => Some(b.clone()),
            _ => None,
        }
    }
}

impl<T: FromCell> FromCell for Option<T> {
    const WHAT: &'static str = T::WHAT;
    fn from_cell(c: &Cell) -> Option<Option<T>> {
        match c {
            Cell::Null => Some(None),
            c => T::from_cell(c).map(Some),
        }
    }
}

/// A struct read from a row by column name.
pub trait FromRow: Sized {
    fn from_row(row: &Row) -> Result<Self>;
}

/// Implements [`FromRow`] for a struct whose fields are named as the statement's columns.
#[macro_export]
macro_rules! from_row {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl $crate::warehouse::db::FromRow for $ty {
            fn from_row(row: &$crate::warehouse::db::Row) -> anyhow::Result<$ty> {
                Ok($ty { $($field: row.get(stringify!($field))?),* })
            }
        }
    };
}

fn decode<T: FromRow>(statement: &str, rows: Vec<Row>) -> Result<Vec<T>> {
    rows.iter()
        .map(T::from_row)
        .collect::<Result<Vec<T>>>()
        .with_context(|| format!("reading the result of {statement}"))
}

/// Rows a PostgreSQL back end fetched itself (array parameters, COPY), as `T`.
pub fn decode_pg<T: FromRow>(statement: &str, rows: Vec<PgRow>) -> Result<Vec<T>> {
    decode(statement, pg_rows(rows)?)
}

/// Rows an SQLite back end fetched itself, as `T`.
pub fn decode_sqlite<T: FromRow>(statement: &str, rows: Vec<SqliteRow>) -> Result<Vec<T>> {
    decode(statement, lite_rows(rows)?)
}

fn exactly_one<T>(statement: &str, mut rows: Vec<T>) -> Result<T> {
    match rows.len() {
        1 => Ok(rows.remove(0)),
        n => bail!("{statement} returned {n} rows, not one"),
    }
}

fn at_most_one<T>(statement: &str, mut rows: Vec<T>) -> Result<Option<T>> {
    match rows.len() {
        0 => Ok(None),
        1 => Ok(Some(rows.remove(0))),
        n => bail!("{statement} returned {n} rows, not at most one"),
    }
}

/// The typed reads, on top of `fetch_rows`, for the pool, a connection and a transaction.
macro_rules! typed_reads {
    ($($mut:ident)?) => {
        /// Every row, as `T`.
        pub async fn fetch_as<T: FromRow>(&$($mut)? self, sql: Rendered, binds: &[Bind]) -> Result<Vec<T>> {
            let name = sql.name;
            decode(name, self.fetch_rows(sql, binds).await?)
        }

        /// The one row the statement returns, as `T`.
        pub async fn fetch_one<T: FromRow>(&$($mut)? self, sql: Rendered, binds: &[Bind]) -> Result<T> {
            let name = sql.name;
            exactly_one(name, self.fetch_as(sql, binds).await?)
        }

        /// The row the statement returns, if any, as `T`.
        pub async fn fetch_optional<T: FromRow>(&$($mut)? self, sql: Rendered, binds: &[Bind]) -> Result<Option<T>> {
            let name = sql.name;
            at_most_one(name, self.fetch_as(sql, binds).await?)
        }
    };
}

/// Binds `binds` in order; `$time` encodes a time for the database at hand.
macro_rules! bind_all {
    ($sql:expr, $binds:expr, |$t:ident| $time:expr) => {{
        let mut q = sqlx::query(safe($sql));
        for b in $binds {
            q = match b.clone() {
                Bind::I64(v) => q.bind(v),
                Bind::OptI64(v) => q.bind(v),
                Bind::I32(v) => q.bind(v),
                Bind::Text(v) => q.bind(v),
                Bind::OptText(v) => q.bind(v),
                Bind::Time($t) => q.bind($time),
            };
        }
        q
    }};
}

fn pg_query(sql: Rendered, binds: &[Bind]) -> Query<'static, Postgres, PgArguments> {
    bind_all!(sql, binds, |t| t)
}

fn lite_query(sql: Rendered, binds: &[Bind]) -> Query<'static, Sqlite, SqliteArguments> {
    bind_all!(sql, binds, |t| sqlite_time(t))
}

/// SQLite keeps times as UTC text in the form its own `strftime` defaults use.
pub fn sqlite_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

fn column_names<R: sqlx::Row>(row: &R) -> Arc<[String]> {
    row.columns().iter().map(|c| sqlx::Column::name(c).to_string()).collect()
}

fn pg_rows(rows: Vec<PgRow>) -> Result<Vec<Row>> {
    let Some(first) = rows.first() else { return Ok(Vec::new()) };
    let columns = column_names(first);
    rows.iter().map(|r| Ok(Row { columns: columns.clone(), cells: pg_cells(r)? })).collect()
}

fn lite_rows(rows: Vec<SqliteRow>) -> Result<Vec<Row>> {
    let Some(first) = rows.first() else { return Ok(Vec::new()) };
    let columns = column_names(first);
    rows.iter().map(|r| Ok(Row { columns: columns.clone(), cells: lite_cells(r)? })).collect()
}

fn pg_cells(row: &PgRow) -> Result<Vec<Cell>> {
    (0..row.len())
        .map(|i| {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                return Ok(Cell::Null);
            }
            let ty = raw.type_info().name().to_string();
            Ok(match ty.as_str() {
                "INT2" => Cell::Int(row.try_get::<i16, _>(i)? as i64),
                "INT4" => Cell::Int(row.try_get::<i32, _>(i)? as i64),
                "INT8" => Cell::Int(row.try_get::<i64, _>(i)?),
                "FLOAT4" => Cell::Float(row.try_get::<f32, _>(i)? as f64),
                "FLOAT8" => Cell::Float(row.try_get::<f64, _>(i)?),
                "BOOL" => Cell::Bool(row.try_get::<bool, _>(i)?),
                "BYTEA" => Cell::Bytes(row.try_get::<Vec<u8>, _>(i)?),
                "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" => Cell::Text(row.try_get::<String, _>(i)?),
                other => bail!("column {i} has type {other}: cast it to text in the template"),
            })
        })
        .collect()
}

fn lite_cells(row: &SqliteRow) -> Result<Vec<Cell>> {
    (0..row.len())
        .map(|i| {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                return Ok(Cell::Null);
            }
            let ty = raw.type_info().name().to_string();
            Ok(match ty.as_str() {
                "INTEGER" | "BOOLEAN" => Cell::Int(row.try_get::<i64, _>(i)?),
                "REAL" => Cell::Float(row.try_get::<f64, _>(i)?),
                "BLOB" => Cell::Bytes(row.try_get::<Vec<u8>, _>(i)?),
                _ => Cell::Text(row.try_get::<String, _>(i)?),
            })
        })
        .collect()
}

/// A warehouse connection pool.
#[derive(Clone)]
pub enum Pool {
    Pg(PgPool),
    Lite(SqlitePool),
}

/// One connection taken from the pool (locks that live on a session need one).
pub enum Conn {
    Pg(PoolConnection<Postgres>),
    Lite(PoolConnection<Sqlite>),
}

/// An open transaction; dropping it rolls back.
pub enum Tx<'c> {
    Pg(Transaction<'c, Postgres>),
    Lite(Transaction<'c, Sqlite>),
}

/// sqlx's note of a statement slower than a second: debug, not a warning — merges and COPYs of
/// large batches take seconds by design, and tidemark reports their durations itself.
const SLOW_STATEMENT_LEVEL: log::LevelFilter = log::LevelFilter::Debug;

/// What a command may do to the warehouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Land, merge, migrate.
    ReadWrite,
    /// Look only (`status`, `dead-letters`, `check`, `sql`): a PostgreSQL session whose
    /// transactions are read-only (a role with only `SELECT` suffices), an SQLite file opened
    /// read-only and never created.
    ReadOnly,
}

impl Pool {
    /// Connects to `postgres://…` or `sqlite://…`.
    pub async fn connect(url: &str) -> Result<Pool> {
        Pool::connect_for(url, Access::ReadWrite).await
    }

    /// The dialect a warehouse url names, without connecting.
    pub fn dialect_of(url: &str) -> Option<Dialect> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Dialect::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Dialect::Sqlite)
        } else {
            None
        }
    }

    /// Whether an SQLite warehouse's file exists (always true for PostgreSQL).
    pub fn exists(url: &str) -> Result<bool> {
        if Pool::dialect_of(url) != Some(Dialect::Sqlite) {
            return Ok(true);
        }
        let opts =
            SqliteConnectOptions::from_str(url).map_err(|e| anyhow!("warehouse url {}: {e}", redact_url(url)))?;
        let file = opts.get_filename();
        Ok(file.as_os_str() == ":memory:" || file.exists())
    }

    /// Connects with the given [`Access`].
    pub async fn connect_for(url: &str, access: Access) -> Result<Pool> {
        let read_only = access == Access::ReadOnly;
        if Pool::dialect_of(url) == Some(Dialect::Postgres) {
            let mut options = vec![("standard_conforming_strings", "on")];
            if read_only {
                options.push(("default_transaction_read_only", "on"));
            }
            let opts = PgConnectOptions::from_str(url)
                .map_err(|e| anyhow!("warehouse url {}: {e}", redact_url(url)))?
                .application_name("tidemark")
                // Identifier-derived literals in templates rely on standard strings.
                .options(options)
                .log_slow_statements(SLOW_STATEMENT_LEVEL, Duration::from_secs(1));
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(opts)
                .await
                .with_context(|| format!("connecting to PostgreSQL at {}", redact_url(url)))?;
            let version: String = sqlx::query_scalar("SHOW server_version_num").fetch_one(&pool).await?;
            let n: u32 = version.trim().parse().unwrap_or(0);
            if n < 150000 {
                bail!("tidemark needs PostgreSQL 15 or newer (for MERGE); {} runs {version}", redact_url(url));
            }
            Ok(Pool::Pg(pool))
        } else if Pool::dialect_of(url) == Some(Dialect::Sqlite) {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| anyhow!("warehouse url {}: {e}", redact_url(url)))?
                .busy_timeout(Duration::from_secs(120))
                .foreign_keys(true)
                .log_slow_statements(SLOW_STATEMENT_LEVEL, Duration::from_secs(1));
            let opts = if read_only {
                // The file's journal mode (WAL, set by the first writer) is left as it is.
                opts.read_only(true).create_if_missing(false)
            } else {
                opts.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // FULL: a landed batch is on disk before its Kafka offsets are committed.
                    .synchronous(SqliteSynchronous::Full)
            };
            // Switching a new file to WAL takes an exclusive lock that the busy timeout does not
            // wait for: two processes opening a new file at once can see "database is locked".
            // Once the file is in WAL mode that cannot happen; until then, try again.
            let mut attempt = 0u32;
            loop {
                let opened = SqlitePoolOptions::new()
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            let mut handle = conn.lock_handle().await?;
                            let rc = super::sqlite_real::register(&mut handle);
                            if rc != libsqlite3_sys::SQLITE_OK {
                                return Err(sqlx::Error::Configuration(
                                    format!("registering tidemark_real() on SQLite: result code {rc}").into(),
                                ));
                            }
                            Ok(())
                        })
                    })
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(130))
                    .connect_with(opts.clone())
                    .await;
                match opened {
                    Ok(pool) => return Ok(Pool::Lite(pool)),
                    Err(e) if attempt < 20 && e.to_string().contains("database is locked") => {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(25 * u64::from(attempt))).await;
                    }
                    Err(e) => return Err(e).with_context(|| format!("opening SQLite database {url}")),
                }
            }
        } else {
            bail!(
                "warehouse url {} is neither postgres://… nor sqlite://… (for Snowflake and other \
                 warehouses tidemark does not drive, use `tidemark sql --dialect …`)",
                redact_url(url)
            )
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Pool::Pg(_) => Dialect::Postgres,
            Pool::Lite(_) => Dialect::Sqlite,
        }
    }

    pub async fn execute(&self, sql: Rendered, binds: &[Bind]) -> Result<u64> {
        Ok(match self {
            Pool::Pg(p) => pg_query(sql, binds).execute(p).await?.rows_affected(),
            Pool::Lite(p) => lite_query(sql, binds).execute(p).await?.rows_affected(),
        })
    }

    pub async fn fetch_rows(&self, sql: Rendered, binds: &[Bind]) -> Result<Vec<Row>> {
        match self {
            Pool::Pg(p) => pg_rows(pg_query(sql, binds).fetch_all(p).await?),
            Pool::Lite(p) => lite_rows(lite_query(sql, binds).fetch_all(p).await?),
        }
    }

    typed_reads!();

    pub async fn begin(&self, begin: Rendered) -> Result<Tx<'static>> {
        Ok(match self {
            Pool::Pg(p) => Tx::Pg(p.begin_with(safe(begin)).await?),
            Pool::Lite(p) => Tx::Lite(p.begin_with(safe(begin)).await?),
        })
    }

    pub async fn acquire(&self) -> Result<Conn> {
        Ok(match self {
            Pool::Pg(p) => Conn::Pg(p.acquire().await?),
            Pool::Lite(p) => Conn::Lite(p.acquire().await?),
        })
    }

    pub async fn close(&self) {
        match self {
            Pool::Pg(p) => p.close().await,
            Pool::Lite(p) => p.close().await,
        }
    }
}

impl Conn {
    pub async fn fetch_rows(&mut self, sql: Rendered, binds: &[Bind]) -> Result<Vec<Row>> {
        match self {
            Conn::Pg(c) => pg_rows(pg_query(sql, binds).fetch_all(&mut **c).await?),
            Conn::Lite(c) => lite_rows(lite_query(sql, binds).fetch_all(&mut **c).await?),
        }
    }

    typed_reads!(mut);

    pub async fn begin(&mut self, begin: Rendered) -> Result<Tx<'_>> {
        Ok(match self {
            Conn::Pg(c) => Tx::Pg((**c).begin_with(safe(begin)).await?),
            Conn::Lite(c) => Tx::Lite((**c).begin_with(safe(begin)).await?),
        })
    }

    /// Closes the connection instead of returning it to the pool (after an error that may
    /// have left session state behind, such as an advisory lock).
    pub async fn discard(self) {
        match self {
            Conn::Pg(c) => {
                let _ = c.detach().close().await;
            }
            Conn::Lite(c) => {
                let _ = c.detach().close().await;
            }
        }
    }
}

impl Tx<'_> {
    pub async fn execute(&mut self, sql: Rendered, binds: &[Bind]) -> Result<u64> {
        Ok(match self {
            Tx::Pg(t) => pg_query(sql, binds).execute(&mut **t).await?.rows_affected(),
            Tx::Lite(t) => lite_query(sql, binds).execute(&mut **t).await?.rows_affected(),
        })
    }

    pub async fn fetch_rows(&mut self, sql: Rendered, binds: &[Bind]) -> Result<Vec<Row>> {
        match self {
            Tx::Pg(t) => pg_rows(pg_query(sql, binds).fetch_all(&mut **t).await?),
            Tx::Lite(t) => lite_rows(lite_query(sql, binds).fetch_all(&mut **t).await?),
        }
    }

    typed_reads!(mut);

    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Pg(t) => t.commit().await?,
            Tx::Lite(t) => t.commit().await?,
        }
        Ok(())
    }
}
