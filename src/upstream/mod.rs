//! The upstream database the stream comes from (`[upstream]`): tidemark reads it to start a
//! replica with no gap and to prove a replica equal to it ([`crate::reconcile`]), and to read the
//! rows of key-only records (`land::key_only`).
//!
//! MySQL-protocol servers (TiDB, MySQL, MariaDB) through sqlx's MySQL driver, with the
//! statements of `templates/upstream/mysql/`. Every value is read as text in its canonical form
//! (binary columns as bytes) and converted exactly as a canal-json value of the same column
//! type is, so a snapshot row and a streamed row of the same upstream row stage identically.

use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::{Executor, Row};

use crate::codec::text_values::{from_text, ValueContext};
use crate::config::redact::redact_url;
use crate::model::change::{push_hex, Change, Op, Value};
use crate::model::schema::{Column, Kind, RecordSchema, TableSchema};
use crate::sql::dialect::Dialect;
use crate::sql::{safe, Rendered, Sql, TableCtx, UpstreamStmt, UPSTREAM_TEMPLATES};

/// Which MySQL-protocol server upstream is: it decides what a snapshot's point is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// TiDB: a snapshot reads at a TSO, comparable with the stream's commit ts.
    Tidb,
    /// MariaDB: the binlog position of a consistent snapshot is known exactly.
    Mariadb,
    Mysql,
}

/// A connection pool to the upstream database.
pub struct Upstream {
    pool: MySqlPool,
    pub flavor: Flavor,
    pub version: String,
    sql: Sql,
    /// The URL with its password masked, for messages.
    pub shown: String,
    /// The database the URL names: the default for tables without `source`.
    pub database: Option<String>,
}

/// An upstream table as tidemark reads it.
#[derive(Debug, Clone)]
pub struct SourceTable {
    pub db: String,
    pub table: String,
    pub schema: TableSchema,
    pub record: Arc<RecordSchema>,
    pub key_names: Arc<[String]>,
    /// Index in `schema.columns` of each key column, in key order.
    pub key_index: Vec<usize>,
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
}

/// A key value bound to an upstream statement.
#[derive(Debug, Clone)]
pub enum KeyBind {
    Text(String),
    Bytes(Vec<u8>),
}

impl Upstream {
    /// Connects (a small pool) and finds out which server it is.
    pub async fn connect(url: &str) -> Result<Upstream> {
        let shown = redact_url(url);
        if !(url.starts_with("mysql://") || url.starts_with("mariadb://") || url.starts_with("tidb://")) {
            bail!(
                "[upstream] url {shown}: tidemark reads MySQL-protocol upstreams (TiDB, MySQL, MariaDB) as mysql://user:password@host:port/db"
            );
        }
        let url = url.replacen("mariadb://", "mysql://", 1).replacen("tidb://", "mysql://", 1);
        let options: MySqlConnectOptions =
            url.parse().with_context(|| format!("[upstream] url {shown} is not a MySQL connection URL"))?;
        let database = url::Url::parse(&url).ok().and_then(|u| {
            let db = u.path().trim_start_matches('/').to_string();
            (!db.is_empty()).then_some(db)
        });
        let sql = Sql::with_sets(Dialect::Mysql, &[UPSTREAM_TEMPLATES]);
        let session = sql.fixed(UpstreamStmt::Session)?;
        let pool = MySqlPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(std::time::Duration::from_secs(30))
            .after_connect(move |conn, _| {
                let session = session.clone();
                Box::pin(async move {
                    conn.execute(sqlx::raw_sql(safe(session))).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(|| format!("connecting to the upstream database {shown}"))?;
        let version: String = {
            let row = sqlx::query(safe(sql.fixed(UpstreamStmt::ServerVersion)?))
                .fetch_one(&pool)
                .await
                .with_context(|| format!("asking {shown} for its version"))?;
            row.try_get("version")?
        };
        let flavor = if version.contains("TiDB") {
            Flavor::Tidb
        } else if version.to_ascii_lowercase().contains("mariadb") {
            Flavor::Mariadb
        } else {
            Flavor::Mysql
        };
        Ok(Upstream { pool, flavor, version, sql, shown, database })
    }

    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// A statement for table `t` (`extra`: `rows`, `after`).
    pub fn render(&self, s: UpstreamStmt, t: &SourceTable, extra: &[(&str, minijinja::Value)]) -> Result<Rendered> {
        let mut all: Vec<(&str, minijinja::Value)> =
            vec![("db", t.db.clone().into()), ("table", t.table.clone().into())];
        all.extend(extra.iter().cloned());
        self.sql.render(s, &t.ctx, &all)
    }

    pub fn fixed(&self, s: UpstreamStmt) -> Result<Rendered> {
        self.sql.fixed(s)
    }

    /// The upstream table `source` (`db.table`, else the URL's database and `table`): its
    /// columns, their types and its key (the primary key, else a unique key of NOT NULL columns).
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
        let columns: Vec<(String, String)> = sqlx::query(safe(self.sql.fixed(UpstreamStmt::TableColumns)?))
            .bind(&db)
            .bind(&name)
            .fetch_all(&self.pool)
            .await
            .with_context(|| format!("reading the columns of upstream table {db}.{name}"))?
            .iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("column_type")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        if columns.is_empty() {
            bail!("upstream table {db}.{name} does not exist in {} (or this user cannot see it)", self.shown);
        }
        let key_rows: Vec<(String, String)> = sqlx::query(safe(self.sql.fixed(UpstreamStmt::TableKey)?))
            .bind(&db)
            .bind(&name)
            .fetch_all(&self.pool)
            .await
            .with_context(|| format!("reading the key of upstream table {db}.{name}"))?
            .iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("index_name")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let first_index = key_rows.first().map(|(_, i)| i.clone());
        let key: Vec<String> =
            key_rows.into_iter().filter(|(_, i)| Some(i) == first_index.as_ref()).map(|(c, _)| c).collect();
        if key.is_empty() {
            bail!(
                "upstream table {db}.{name} has no primary key and no unique key of NOT NULL columns: tidemark cannot \
                 read it in key ranges, nor keep a replica of it"
            );
        }
        let cols: Vec<Column> = columns.iter().map(|(n, ty)| Column::new(n.as_str(), ty.as_str())).collect();
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
            ctx,
        })
    }

    /// The server's estimate of a table's rows (progress only).
    pub async fn estimate_rows(&self, t: &SourceTable) -> u64 {
        let q = match self.sql.fixed(UpstreamStmt::TableRowsEstimate) {
            Ok(q) => q,
            Err(_) => return 0,
        };
        let row = sqlx::query(safe(q)).bind(&t.db).bind(&t.table).fetch_optional(&self.pool).await;
        match row {
            Ok(Some(r)) => r.try_get::<i64, _>("estimate").map(|n| n.max(0) as u64).unwrap_or(0),
            _ => 0,
        }
    }
}

/// Reads one upstream row (columns in `t.schema` order) as values, exactly as the stream's
/// text of each column type converts. A value the column type does not take is an error naming
/// the column.
pub fn read_row(t: &SourceTable, row: &MySqlRow, ctx: &ValueContext) -> Result<Vec<Value>, String> {
    let mut out = Vec::with_capacity(t.schema.columns.len());
    for (i, c) in t.schema.columns.iter().enumerate() {
        let v = if c.ty.kind == Kind::Bytes {
            match row.try_get::<Option<Vec<u8>>, _>(i) {
                Ok(Some(b)) => Value::Bytes(b),
                Ok(None) => Value::Null,
                Err(e) => return Err(format!("column `{}`: {e}", c.name)),
            }
        } else {
            match row.try_get::<Option<String>, _>(i) {
                // ENUM and SET read as their member names already (the stream sends indexes).
                Ok(Some(s)) if c.ty.members.is_some() && (c.ty.is_enum || c.ty.is_set) => Value::Text(s),
                Ok(Some(s)) => from_text(&c.ty, &s, ctx, false).map_err(|e| format!("column `{}`: {e}", c.name))?,
                Ok(None) => Value::Null,
                Err(e) => return Err(format!("column `{}`: {e}", c.name)),
            }
        };
        out.push(v);
    }
    Ok(out)
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

/// Column `i` of a row as read — text, or bytes for a binary column — unconverted.
pub fn read_raw(kind: &Kind, row: &MySqlRow, i: usize) -> Value {
    if *kind == Kind::Bytes {
        match row.try_get::<Option<Vec<u8>>, _>(i) {
            Ok(Some(b)) => Value::Bytes(b),
            _ => Value::Null,
        }
    } else {
        match row.try_get::<Option<String>, _>(i) {
            Ok(Some(s)) => Value::Text(s),
            _ => Value::Null,
        }
    }
}

/// Every column of a row as read, unconverted.
pub fn raw_values(t: &SourceTable, row: &MySqlRow) -> Vec<Value> {
    t.schema.columns.iter().enumerate().map(|(i, c)| read_raw(&c.ty.kind, row, i)).collect()
}

/// The staged key object of a row, from its key columns as read (never converted: a chunk
/// continues after exactly this key, even when the row itself is refused).
pub fn raw_key_json(t: &SourceTable, row: &MySqlRow) -> String {
    t.key_json(&raw_values(t, row))
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

/// Binds key values to a query, in order.
pub fn bind_keys<'q>(
    mut q: sqlx::query::Query<'q, sqlx::MySql, sqlx::mysql::MySqlArguments>,
    binds: &'q [KeyBind],
) -> sqlx::query::Query<'q, sqlx::MySql, sqlx::mysql::MySqlArguments> {
    for b in binds {
        q = match b {
            KeyBind::Text(s) => q.bind(s.as_str()),
            KeyBind::Bytes(v) => q.bind(v.as_slice()),
        };
    }
    q
}

/// The binds of `chunk.sql` after a key: the first key column, then for each key column i the
/// columns before it and i itself.
pub fn chunk_binds(after: &[KeyBind]) -> Vec<KeyBind> {
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
