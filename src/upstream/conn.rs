//! One connection layer over both upstream drivers (sqlx's MySQL and PostgreSQL): statements
//! run with key values bound, rows come back as they were read — each column text, bytes for a
//! binary column, or NULL — so everything above reads one kind of row whichever server it is.

use sqlx::pool::PoolConnection;
use sqlx::{Executor, MySql, Postgres, Row};

use crate::model::change::Value;
use crate::sql::{safe, Rendered};

/// A key value bound to an upstream statement.
#[derive(Debug, Clone)]
pub enum KeyBind {
    Text(String),
    Bytes(Vec<u8>),
}

/// A row as read: per column `Value::Text`, `Value::Bytes` (binary columns) or `Value::Null`.
pub type RawRow = Vec<Value>;

/// A connection pool to the upstream database.
pub enum Pool {
    Mysql(sqlx::MySqlPool),
    Postgres(sqlx::PgPool),
}

/// One upstream connection (a snapshot's transaction lives on one).
pub enum Conn {
    Mysql(PoolConnection<MySql>),
    Postgres(PoolConnection<Postgres>),
}

impl Pool {
    pub async fn acquire(&self) -> Result<Conn, sqlx::Error> {
        Ok(match self {
            Pool::Mysql(p) => Conn::Mysql(p.acquire().await?),
            Pool::Postgres(p) => Conn::Postgres(p.acquire().await?),
        })
    }
}

macro_rules! bind_all {
    ($q:expr, $binds:expr) => {{
        let mut q = $q;
        for b in $binds {
            q = match b {
                KeyBind::Text(s) => q.bind(s.as_str()),
                KeyBind::Bytes(v) => q.bind(v.as_slice()),
            };
        }
        q
    }};
}

/// Column `i` of a row: bytes when `bytes[i]`, else text.
macro_rules! raw_row {
    ($row:expr, $bytes:expr) => {{
        let row = $row;
        (0..row.len())
            .map(|i| {
                if $bytes.get(i).copied().unwrap_or(false) {
                    row.try_get::<Option<Vec<u8>>, _>(i).map(|v| v.map_or(Value::Null, Value::Bytes))
                } else {
                    row.try_get::<Option<String>, _>(i).map(|v| v.map_or(Value::Null, Value::Text))
                }
            })
            .collect::<Result<RawRow, sqlx::Error>>()
    }};
}

impl Conn {
    /// A statement without binds: session settings, transaction control.
    pub async fn run(&mut self, sql: Rendered) -> Result<(), sqlx::Error> {
        match self {
            Conn::Mysql(c) => c.execute(sqlx::raw_sql(safe(sql))).await.map(drop),
            Conn::Postgres(c) => c.execute(sqlx::raw_sql(safe(sql))).await.map(drop),
        }
    }

    /// A statement with binds whose result is not read.
    pub async fn exec(&mut self, sql: Rendered, binds: &[KeyBind]) -> Result<(), sqlx::Error> {
        match self {
            Conn::Mysql(c) => bind_all!(sqlx::query(safe(sql)), binds).execute(&mut **c).await.map(drop),
            Conn::Postgres(c) => bind_all!(sqlx::query(safe(sql)), binds).execute(&mut **c).await.map(drop),
        }
    }

    /// The rows of a query; column `i` read as bytes when `bytes[i]`, else as text.
    pub async fn rows(&mut self, sql: Rendered, binds: &[KeyBind], bytes: &[bool]) -> Result<Vec<RawRow>, sqlx::Error> {
        match self {
            Conn::Mysql(c) => {
                let rows = bind_all!(sqlx::query(safe(sql)), binds).fetch_all(&mut **c).await?;
                rows.iter().map(|r| raw_row!(r, bytes)).collect()
            }
            Conn::Postgres(c) => {
                let rows = bind_all!(sqlx::query(safe(sql)), binds).fetch_all(&mut **c).await?;
                rows.iter().map(|r| raw_row!(r, bytes)).collect()
            }
        }
    }

    /// The rows of a query whose every column is text.
    pub async fn texts(&mut self, sql: Rendered, binds: &[KeyBind]) -> Result<Vec<Vec<Option<String>>>, sqlx::Error> {
        Ok(self.rows(sql, binds, &[]).await?.into_iter().map(|r| r.into_iter().map(text_of).collect()).collect())
    }
}

/// A text column's value (`None`: NULL).
pub fn text_of(v: Value) -> Option<String> {
    match v {
        Value::Text(s) => Some(s),
        _ => None,
    }
}
