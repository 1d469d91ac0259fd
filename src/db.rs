//! Connections to the warehouses tidemark drives itself (PostgreSQL, SQLite), behind one small
//! interface: execute or fetch a rendered statement with bound parameters.

use std::str::FromStr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection, Postgres, Row, Sqlite, Transaction, TypeInfo, ValueRef};

use crate::dialect::Dialect;
use crate::sql::safe;

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
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Cell::Int(v) => Some(*v),
            Cell::Text(s) => s.parse().ok(),
            Cell::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Cell::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Cell::Bool(b) => Some(*b),
            Cell::Int(v) => Some(*v != 0),
            _ => None,
        }
    }

    /// The value as text, the way a replica comparison reads it.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Cell::Null => None,
            Cell::Int(v) => Some(v.to_string()),
            Cell::Float(v) => Some(v.to_string()),
            Cell::Text(s) => Some(s.clone()),
            Cell::Bytes(b) => {
                let mut s = String::new();
                crate::change::push_hex(&mut s, b);
                Some(s)
            }
            Cell::Bool(b) => Some(b.to_string()),
        }
    }
}

pub type Rows = Vec<Vec<Cell>>;

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

fn pg_query(sql: String, binds: &[Bind]) -> Query<'static, Postgres, PgArguments> {
    bind_all!(sql, binds, |t| t)
}

fn lite_query(sql: String, binds: &[Bind]) -> Query<'static, Sqlite, SqliteArguments> {
    bind_all!(sql, binds, |t| sqlite_time(t))
}

/// SQLite keeps times as UTC text in the form its own `strftime` defaults use.
pub fn sqlite_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

fn pg_row(row: &PgRow) -> Result<Vec<Cell>> {
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

fn lite_row(row: &SqliteRow) -> Result<Vec<Cell>> {
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

impl Pool {
    /// Connects to `postgres://…` or `sqlite://…`.
    pub async fn connect(url: &str) -> Result<Pool> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)
                .map_err(|e| anyhow!("warehouse url {}: {e}", redact_url(url)))?
                .application_name("tidemark")
                // Identifier-derived literals in templates rely on standard strings.
                .options([("standard_conforming_strings", "on")]);
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
        } else if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| anyhow!("warehouse url {}: {e}", redact_url(url)))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: a landed batch is on disk before its Kafka offsets are committed.
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(120))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(130))
                .connect_with(opts)
                .await
                .with_context(|| format!("opening SQLite database {url}"))?;
            Ok(Pool::Lite(pool))
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

    pub async fn execute(&self, sql: String, binds: &[Bind]) -> Result<u64> {
        Ok(match self {
            Pool::Pg(p) => pg_query(sql, binds).execute(p).await?.rows_affected(),
            Pool::Lite(p) => lite_query(sql, binds).execute(p).await?.rows_affected(),
        })
    }

    pub async fn fetch(&self, sql: String, binds: &[Bind]) -> Result<Rows> {
        match self {
            Pool::Pg(p) => pg_query(sql, binds).fetch_all(p).await?.iter().map(pg_row).collect(),
            Pool::Lite(p) => lite_query(sql, binds).fetch_all(p).await?.iter().map(lite_row).collect(),
        }
    }

    pub async fn begin(&self, begin: String) -> Result<Tx<'static>> {
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
    pub async fn fetch(&mut self, sql: String, binds: &[Bind]) -> Result<Rows> {
        match self {
            Conn::Pg(c) => pg_query(sql, binds).fetch_all(&mut **c).await?.iter().map(pg_row).collect(),
            Conn::Lite(c) => lite_query(sql, binds).fetch_all(&mut **c).await?.iter().map(lite_row).collect(),
        }
    }

    pub async fn begin(&mut self, begin: String) -> Result<Tx<'_>> {
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
    pub async fn execute(&mut self, sql: String, binds: &[Bind]) -> Result<u64> {
        Ok(match self {
            Tx::Pg(t) => pg_query(sql, binds).execute(&mut **t).await?.rows_affected(),
            Tx::Lite(t) => lite_query(sql, binds).execute(&mut **t).await?.rows_affected(),
        })
    }

    pub async fn fetch(&mut self, sql: String, binds: &[Bind]) -> Result<Rows> {
        match self {
            Tx::Pg(t) => pg_query(sql, binds).fetch_all(&mut **t).await?.iter().map(pg_row).collect(),
            Tx::Lite(t) => lite_query(sql, binds).fetch_all(&mut **t).await?.iter().map(lite_row).collect(),
        }
    }

    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Pg(t) => t.commit().await?,
            Tx::Lite(t) => t.commit().await?,
        }
        Ok(())
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for logs and errors; a
/// `password=` query parameter is masked too.
pub fn redact_url(url: &str) -> String {
    let (main, query) = match url.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (url, None),
    };
    let mut out = redact_userinfo(main);
    if let Some(q) = query {
        let params: Vec<String> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => p.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

fn redact_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return url.to_string() };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else { return url.to_string() };
    let userinfo = &authority[..at];
    match userinfo.find(':') {
        Some(colon) => format!("{}://{}:***@{}", &url[..scheme_end], &userinfo[..colon], &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact_url("postgres://u:p%40ss@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
        assert_eq!(redact_url("postgres://u:a@b@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=s3&sslmode=require"),
            "postgres://h/db?user=u&password=***&sslmode=require"
        );
    }
}
