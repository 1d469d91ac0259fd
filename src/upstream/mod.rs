//! The upstream database the stream comes from (`[upstream]`): tidemark reads it to start a
//! replica with no gap and to prove a replica equal to it ([`crate::reconcile`]), and to read the
//! rows of key-only records (`land::key_only`).
//!
//! MySQL-protocol servers (TiDB, MySQL, MariaDB) through sqlx's MySQL driver, with the
//! statements of `templates/upstream/mysql/`; PostgreSQL (the source of a Debezium PostgreSQL
//! stream) through sqlx's PostgreSQL driver, with `templates/upstream/postgres/` ([`conn`]). Every value is read as text in its canonical form
//! (binary columns as bytes) and converted exactly as a canal-json value of the same column
//! type is, so a snapshot row and a streamed row of the same upstream row stage identically.

use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::Executor;

pub mod conn;

pub use conn::{Conn, KeyBind, RawRow};

use crate::codec::text_values::{from_text, ValueContext};
use crate::config::redact::redact_url;
use crate::model::change::{push_hex, Change, Op, Value};
use crate::model::schema::{Column, Kind, RecordSchema, TableSchema};
use crate::sql::dialect::Dialect;
use crate::sql::{safe, Rendered, Sql, TableCtx, UpstreamStmt, UPSTREAM_TEMPLATES};
use conn::Pool;

/// Which server upstream is: it decides what a snapshot's point is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// TiDB: a snapshot reads at a TSO, comparable with the stream's commit ts.
    Tidb,
    /// MariaDB: the binlog position of a consistent snapshot is known exactly.
    Mariadb,
    Mysql,
    /// PostgreSQL (the source of a Debezium PostgreSQL stream): a snapshot's point is a WAL LSN.
    Postgres,
}

/// A connection pool to the upstream database.
pub struct Upstream {
    pool: Pool,
    pub flavor: Flavor,
    pub version: String,
    sql: Sql,
    /// The URL with its password masked, for messages.
    pub shown: String,
    /// Where tables without `source` are: the URL's database (MySQL), schema `public`
    /// (PostgreSQL).
    pub database: Option<String>,
}

/// An upstream table as tidemark reads it.
#[derive(Debug, Clone)]
pub struct SourceTable {
    /// The database (MySQL) or schema (PostgreSQL) it is in.
    pub db: String,
    pub table: String,
    pub schema: TableSchema,
    pub record: Arc<RecordSchema>,
    pub key_names: Arc<[String]>,
    /// Index in `schema.columns` of each key column, in key order.
    pub key_index: Vec<usize>,
    /// PostgreSQL: each column's own type (`format_type`), for the casts of bound key values.
    native: Vec<String>,
    flavor: Flavor,
    ctx: TableCtx,
}

impl SourceTable {
    /// `db.table`.
    pub fn name(&self) -> String {
        format!("{}.{}", self.db, self.table)
    }

    /// The key object of a row, as staged: `{"id":"5"}`.
    pub fn key_json(&self, row: &[Value]) -> String {
        self.change(Op::Insert, self.key_of(row), None).key_json()
    }

    pub fn key_of(&self, row: &[Value]) -> Vec<Value> {
        self.key_index.iter().map(|&i| row[i].clone()).collect()
    }

    /// A change of this table: an upsert of `row`, or a delete of `key`.
    pub fn change(&self, op: Op, key: Vec<Value>, row: Option<Vec<Value>>) -> Change {
        Change {
            op,
            schema: self.record.clone(),
            key_names: self.key_names.clone(),
            key,
            row,
            commit_ts: None,
            commit_ms: None,
            sub: 0,
        }
    }

    /// Which of a whole row's columns are read as bytes.
    pub fn bytes(&self) -> Vec<bool> {
        self.schema.columns.iter().map(|c| c.ty.kind == Kind::Bytes).collect()
    }

    /// Which of the key's columns are read as bytes.
    pub fn key_bytes(&self) -> Vec<bool> {
        self.key_index.iter().map(|&i| self.schema.columns[i].ty.kind == Kind::Bytes).collect()
    }

    /// The binds of `chunk.sql` after a key. MySQL: the first key column, then for each key
    /// column i the columns before it and i itself (k1 = ? AND … AND ki > ?); PostgreSQL
    /// compares the key as one row value, bound once.
    pub fn chunk_binds(&self, after: &[KeyBind]) -> Vec<KeyBind> {
        if self.flavor == Flavor::Postgres {
            return after.to_vec();
        }
        chunk_binds(after)
    }
}

impl Upstream {
    /// Connects (a small pool) and finds out which server it is.
    pub async fn connect(url: &str) -> Result<Upstream> {
        let shown = redact_url(url);
        let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
        if !(postgres || url.starts_with("mysql://") || url.starts_with("mariadb://") || url.starts_with("tidb://")) {
            bail!(
                "[upstream] url {shown}: tidemark reads MySQL-protocol upstreams (TiDB, MySQL, MariaDB) as \
                 mysql://user:password@host:port/db and PostgreSQL as postgres://user:password@host:port/db"
            );
        }
        let dialect = if postgres { Dialect::Postgres } else { Dialect::Mysql };
        let sql = Sql::with_sets(dialect, &[UPSTREAM_TEMPLATES]);
        let session = sql.fixed(UpstreamStmt::Session)?;
        let connecting = || format!("connecting to the upstream database {shown}");
        let (pool, database) = if postgres {
            let options: PgConnectOptions =
                url.parse().with_context(|| format!("[upstream] url {shown} is not a PostgreSQL connection URL"))?;
            let pool = PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(std::time::Duration::from_secs(30))
                .after_connect(session_hook::<sqlx::Postgres>(session.clone()))
                .connect_with(options)
                .await
                .with_context(connecting)?;
            (Pool::Postgres(pool), Some("public".to_string()))
        } else {
            let url = url.replacen("mariadb://", "mysql://", 1).replacen("tidb://", "mysql://", 1);
            let options: MySqlConnectOptions =
                url.parse().with_context(|| format!("[upstream] url {shown} is not a MySQL connection URL"))?;
            let database = url::Url::parse(&url).ok().and_then(|u| {
                let db = u.path().trim_start_matches('/').to_string();
                (!db.is_empty()).then_some(db)
            });
            let pool = MySqlPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(std::time::Duration::from_secs(30))
                .after_connect(session_hook::<sqlx::MySql>(session.clone()))
                .connect_with(options)
                .await
                .with_context(connecting)?;
            (Pool::Mysql(pool), database)
        };
        let mut up = Upstream { pool, flavor: Flavor::Mysql, version: String::new(), sql, shown, database };
        let version = up.texts(up.fixed(UpstreamStmt::ServerVersion)?, &[]).await.context("asking for its version")?;
        up.version = version.into_iter().next().and_then(|r| r.into_iter().next().flatten()).unwrap_or_default();
        up.flavor = if postgres {
            Flavor::Postgres
        } else if up.version.contains("TiDB") {
            Flavor::Tidb
        } else if up.version.to_ascii_lowercase().contains("mariadb") {
            Flavor::Mariadb
        } else {
            Flavor::Mysql
        };
        Ok(up)
    }

    /// A connection of the pool.
    pub async fn acquire(&self) -> Result<Conn> {
        self.pool.acquire().await.with_context(|| format!("connecting to {}", self.shown))
    }

    /// A text-only query on a connection of the pool.
    pub async fn texts(&self, sql: Rendered, binds: &[KeyBind]) -> Result<Vec<Vec<Option<String>>>> {
        let name = sql.name;
        let mut conn = self.acquire().await?;
        conn.texts(sql, binds).await.with_context(|| format!("{} on {}", name, self.shown))
    }

    /// A statement for table `t` (`extra`: `rows`, `after`).
    pub fn render(&self, s: UpstreamStmt, t: &SourceTable, extra: &[(&str, minijinja::Value)]) -> Result<Rendered> {
        let key_native: Vec<String> = t.key_index.iter().filter_map(|&i| t.native.get(i).cloned()).collect();
        let mut all: Vec<(&str, minijinja::Value)> = vec![
            ("db", t.db.clone().into()),
            ("table", t.table.clone().into()),
            ("native", t.native.clone().into()),
            ("key_native", key_native.into()),
        ];
        all.extend(extra.iter().cloned());
        self.sql.render(s, &t.ctx, &all)
    }

    pub fn fixed(&self, s: UpstreamStmt) -> Result<Rendered> {
        self.sql.fixed(s)
    }

    /// Whether this server has the statement (some are one server's own).
    pub fn has(&self, s: UpstreamStmt) -> bool {
        self.sql.has(s)
    }

    /// The upstream table `source` (`db.table`, else the URL's database — PostgreSQL: schema
    /// `public` — and `table`): its columns, their types and its key (the primary key, else a
    /// unique key of NOT NULL columns).
    pub async fn describe(&self, source: Option<&(String, String)>, table: &str) -> Result<SourceTable> {
        let (db, name) = match source {
            Some((db, t)) => (db.clone(), t.clone()),
            None => {
                let db = self.database.clone().ok_or_else(|| {
                    anyhow!("table `{table}`: give it source = \"db.table\", or name a database in [upstream] url")
                })?;
                (db, table.to_string())
            }
        };
        let binds = [KeyBind::Text(db.clone()), KeyBind::Text(name.clone())];
        let columns = self
            .texts(self.sql.fixed(UpstreamStmt::TableColumns)?, &binds)
            .await
            .with_context(|| format!("reading the columns of upstream table {db}.{name}"))?;
        if columns.is_empty() {
            bail!("upstream table {db}.{name} does not exist in {} (or this user cannot see it)", self.shown);
        }
        let key_rows = self
            .texts(self.sql.fixed(UpstreamStmt::TableKey)?, &binds)
            .await
            .with_context(|| format!("reading the key of upstream table {db}.{name}"))?;
        let cell = |r: &[Option<String>], i: usize| r.get(i).cloned().flatten().unwrap_or_default();
        let first_index = key_rows.first().map(|r| cell(r, 1));
        let key: Vec<String> =
            key_rows.iter().filter(|r| Some(cell(r, 1)) == first_index).map(|r| cell(r, 0)).collect();
        if key.is_empty() {
            bail!(
                "upstream table {db}.{name} has no primary key and no unique key of NOT NULL columns: tidemark cannot \
                 read it in key ranges, nor keep a replica of it"
            );
        }
        let cols: Vec<Column> = columns.iter().map(|r| Column::new(cell(r, 0).as_str(), cell(r, 1).as_str())).collect();
        let mut native = Vec::new();
        if self.flavor == Flavor::Postgres {
            for r in &columns {
                let ty = cell(r, 2);
                // Spliced into casts: only what PostgreSQL's format_type writes for a type name.
                if ty.is_empty() || !ty.chars().all(|c| c.is_alphanumeric() || " _.,()\"[]".contains(c)) {
                    bail!(
                        "upstream table {db}.{name}: column `{}` has a type tidemark cannot name ({ty:?})",
                        cell(r, 0)
                    );
                }
                native.push(ty);
            }
        }
        let schema = TableSchema { columns: cols.clone(), key: key.clone(), ..Default::default() };
        let key_index = key.iter().map(|k| cols.iter().position(|c| &c.name == k).unwrap_or(0)).collect();
        let ctx = TableCtx::new(&name, &schema);
        Ok(SourceTable {
            db,
            table: name,
            record: RecordSchema::new(cols),
            key_names: key.into(),
            key_index,
            schema,
            native,
            flavor: self.flavor,
            ctx,
        })
    }

    /// The server's estimate of a table's rows (progress only).
    pub async fn estimate_rows(&self, t: &SourceTable) -> u64 {
        let Ok(q) = self.sql.fixed(UpstreamStmt::TableRowsEstimate) else { return 0 };
        let rows = self.texts(q, &[KeyBind::Text(t.db.clone()), KeyBind::Text(t.table.clone())]).await;
        rows.ok()
            .and_then(|r| r.into_iter().next())
            .and_then(|r| r.into_iter().next().flatten())
            .and_then(|n| n.parse::<f64>().ok())
            .map_or(0, |n| n.max(0.0) as u64)
    }
}

/// Runs the session's settings on each new connection.
fn session_hook<DB: sqlx::Database>(
    session: Rendered,
) -> impl Fn(
    &mut DB::Connection,
    sqlx::pool::PoolConnectionMetadata,
) -> futures_util::future::BoxFuture<'_, Result<(), sqlx::Error>>
       + Send
       + Sync
       + 'static
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    move |conn, _| {
        let session = session.clone();
        Box::pin(async move {
            conn.execute(sqlx::raw_sql(safe(session))).await?;
            Ok(())
        })
    }
}

/// Reads one upstream row (columns in `t.schema` order, as read) as values, exactly as the
/// stream's text of each column type converts. A value the column type does not take is an
/// error naming the column.
pub fn read_row(t: &SourceTable, row: &[Value], ctx: &ValueContext) -> Result<Vec<Value>, String> {
    let mut out = Vec::with_capacity(t.schema.columns.len());
    for (c, v) in t.schema.columns.iter().zip(row) {
        let v = match v {
            Value::Text(s) if c.ty.members.is_some() && (c.ty.is_enum || c.ty.is_set) => {
                // ENUM and SET read as their member names already (the stream sends indexes).
                Value::Text(s.clone())
            }
            Value::Text(s) if t.flavor == Flavor::Postgres && postgres_special(&c.ty.kind, s) => Value::Text(s.clone()),
            Value::Text(s) => from_text(&c.ty, s, ctx, false).map_err(|e| format!("column `{}`: {e}", c.name))?,
            other => other.clone(),
        };
        out.push(v);
    }
    Ok(out)
}

/// PostgreSQL's values beyond the ordinary, staged as PostgreSQL spells them (as the Debezium
/// decoder stages them): NaN and infinite floats, infinite timestamps.
fn postgres_special(kind: &Kind, s: &str) -> bool {
    match kind {
        Kind::Float | Kind::Double => matches!(s, "NaN" | "Infinity" | "-Infinity"),
        Kind::DateTime { .. } | Kind::Timestamp { .. } => matches!(s, "infinity" | "-infinity"),
        _ => false,
    }
}

/// How tidemark reads upstream values: TIMESTAMP in UTC (the session's time zone).
pub fn value_context() -> ValueContext {
    ValueContext { source_offset_secs: 0, ..Default::default() }
}

/// The values of a staged key object (`{"id":"5"}`; bytes in hex), in key order.
pub fn key_texts(t: &SourceTable, key_json: &str) -> Result<Vec<Option<String>>> {
    let obj: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(key_json).with_context(|| format!("a key object `{key_json}`"))?;
    Ok(t.key_names
        .iter()
        .map(|k| match obj.get(k) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        })
        .collect())
}

/// The upstream values of a staged key object, as binds of the key's columns.
pub fn key_binds(t: &SourceTable, key_json: &str) -> Result<Vec<KeyBind>> {
    key_binds_of_texts(t, &key_texts(t, key_json)?)
}

/// The staged key object of a row, from its key columns as read (never converted: a chunk
/// continues after exactly this key, even when the row itself is refused).
pub fn raw_key_json(t: &SourceTable, row: &[Value]) -> String {
    t.key_json(row)
}

/// Key binds from key values as canonical text (bytes and BIT in hex).
pub fn key_binds_of_texts(t: &SourceTable, texts: &[Option<String>]) -> Result<Vec<KeyBind>> {
    t.key_index
        .iter()
        .zip(texts)
        .map(|(&i, text)| {
            let c = &t.schema.columns[i];
            let text = text.clone().ok_or_else(|| anyhow!("key column `{}` is NULL", c.name))?;
            Ok(match c.ty.kind {
                Kind::Bytes => KeyBind::Bytes(unhex(&text).with_context(|| format!("key column `{}`", c.name))?),
                Kind::Bit => {
                    let b = unhex(&text).with_context(|| format!("key column `{}`", c.name))?;
                    KeyBind::Text(b.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b)).to_string())
                }
                _ => KeyBind::Text(text),
            })
        })
        .collect()
}

/// A value as the text the staging row holds (bytes in hex), `None` for NULL.
pub fn staged_text(v: &Value) -> Option<String> {
    match v {
        Value::Null | Value::Unchanged => None,
        Value::Text(s) => Some(s.clone()),
        Value::Bytes(b) => {
            let mut s = String::with_capacity(b.len() * 2);
            push_hex(&mut s, b);
            Some(s)
        }
    }
}

fn unhex(s: &str) -> Result<Vec<u8>> {
    if s.len() % 2 != 0 {
        bail!("`{s}` is not hex");
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| anyhow!("`{s}` is not hex")))
        .collect()
}

/// MySQL's binds of `chunk.sql` after a key (see [`SourceTable::chunk_binds`]).
fn chunk_binds(after: &[KeyBind]) -> Vec<KeyBind> {
    let mut out = vec![after[0].clone()];
    for i in 0..after.len() {
        out.extend(after[..=i].iter().cloned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_binds_follow_the_template() {
        let k = |s: &str| KeyBind::Text(s.into());
        let got: Vec<String> = chunk_binds(&[k("a"), k("b"), k("c")])
            .into_iter()
            .map(|b| match b {
                KeyBind::Text(s) => s,
                KeyBind::Bytes(_) => unreachable!(),
            })
            .collect();
        // k1 >= a AND ((k1 > a) OR (k1 = a AND k2 > b) OR (k1 = a AND k2 = b AND k3 > c))
        assert_eq!(got, ["a", "a", "a", "b", "a", "b", "c"]);
    }
}
