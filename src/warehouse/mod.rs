//! The warehouse as tidemark sees it: connections ([`db`]), its metadata tables ([`migrate`],
//! and the table state in [`tables`]), staging tables, and the per-table locks of merges.

pub mod consistency;
pub mod db;
pub mod failure;
pub mod migrate;
pub mod monitor;
pub mod sqlite_real;
pub mod tables;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};

use crate::config::redact::redact_url;
use crate::from_row;
use crate::model::schema::TableSchema;
use crate::sql::dialect::{Dialect, DDL_LOCK_ID, LOCK_SPACE};
use crate::sql::{Sql, Stmt, TableCtx};
use db::{Access, Bind, Pool, Tx};
pub use tables::Recorded;

pub struct Warehouse {
    pub pool: Pool,
    pub sql: Sql,
    /// The url with any password masked.
    pub url: String,
    /// In-process merge locks: a table's merges never overlap within this process either.
    merge_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Staged rows this process's merges removed per table since it last vacuumed the table.
    removed_since_vacuum: Mutex<HashMap<String, u64>>,
}

/// One row of `_tidemark_offsets`.
#[derive(Debug, Clone)]
pub struct OffsetRow {
    pub topic: String,
    pub kafka_partition: i32,
    pub next_offset: i64,
    /// The order key of the record before `next_offset`.
    pub last_commit_ts: Option<i64>,
    /// The highest watermark landed from the partition.
    pub watermark: Option<i64>,
}
from_row!(OffsetRow { topic, kafka_partition, next_offset, last_commit_ts, watermark });

/// The result of the DDL lock (PostgreSQL): held once it returns.
struct Held {
    #[allow(dead_code)]
    held: Option<bool>,
}
from_row!(Held { held });

impl Warehouse {
    /// Connects and brings the metadata tables up to date (`run`, `migrate`).
    pub async fn open(url: &str) -> Result<Arc<Warehouse>> {
        let wh = Warehouse::new(url, Pool::connect(url).await?);
        migrate::run(&wh.pool).await.with_context(|| format!("applying migrations to {}", wh.url))?;
        Ok(Arc::new(wh))
    }

    /// Connects to a warehouse whose metadata tables are up to date, changing nothing there:
    /// every command but `run` and `migrate`. Behind (or never migrated): an error that says
    /// to run `tidemark migrate`.
    pub async fn open_migrated(url: &str, access: Access) -> Result<Arc<Warehouse>> {
        let Some((wh, state)) = Warehouse::open_existing(url, access).await? else {
            bail!(
                "there is no SQLite warehouse at {} yet: `tidemark migrate` (or `tidemark run`) creates it",
                redact_url(url)
            );
        };
        if !state.current() {
            let pending: Vec<String> = state.pending.iter().map(|v| format!("{v:04}")).collect();
            bail!(
                "the warehouse {} lacks tidemark's metadata versions {} (this tidemark's newest is {:04}): \
                 run `tidemark migrate` first (`tidemark run` also applies them)",
                wh.url,
                pending.join(", "),
                state.newest
            );
        }
        Ok(wh)
    }

    /// Connects to an existing warehouse without changing anything, and says where its
    /// metadata stands. `None`: an SQLite file that does not exist (nothing is created).
    pub async fn open_existing(url: &str, access: Access) -> Result<Option<(Arc<Warehouse>, migrate::State)>> {
        if !Pool::exists(url)? {
            return Ok(None);
        }
        let wh = Warehouse::new(url, Pool::connect_for(url, access).await?);
        let state = migrate::state(&wh.pool)
            .await
            .with_context(|| format!("reading which metadata versions {} has", wh.url))?;
        Ok(Some((Arc::new(wh), state)))
    }

    fn new(url: &str, pool: Pool) -> Warehouse {
        Warehouse {
            sql: Sql::new(pool.dialect()),
            pool,
            url: redact_url(url),
            merge_locks: Mutex::new(HashMap::new()),
            removed_since_vacuum: Mutex::new(HashMap::new()),
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.pool.dialect()
    }

    /// Records the table and creates its staging table (idempotent).
    pub async fn register_table(&self, name: &str, topic: &str) -> Result<()> {
        let t = TableCtx::bare(name);
        let mut tx = self.pool.begin(self.sql.fixed(Stmt::DdlBegin)?).await?;
        if self.sql.has(Stmt::DdlLock) {
            tx.fetch_as::<Held>(self.sql.fixed(Stmt::DdlLock)?, &[Bind::I32(LOCK_SPACE), Bind::I32(DDL_LOCK_ID)])
                .await
                .with_context(|| format!("registering table `{name}`: waiting for other instances' DDL"))?;
        }
        tx.execute(
            self.sql.fixed(Stmt::RegisterTable)?,
            &[Bind::Text(name.into()), Bind::Text(topic.into()), Bind::Text(t.staging.clone())],
        )
        .await
        .with_context(|| format!("registering table `{name}`"))?;
        tx.execute(self.sql.render(Stmt::StagingTable, &t, &[])?, &[])
            .await
            .with_context(|| format!("creating staging table {} for `{name}`", t.staging))?;
        tx.commit().await.with_context(|| format!("registering table `{name}`: COMMIT"))?;
        Ok(())
    }

    /// Records the columns and key a table's `source_ddl` declares. Its types win over what the
    /// stream showed; a key different from the one already recorded is an error.
    pub async fn apply_ddl(&self, table: &str, ddl: &TableSchema) -> Result<()> {
        let mut tx = self.pool.begin(self.sql.fixed(Stmt::DdlBegin)?).await?;
        let before = tables::read(&self.sql, &mut tx, table).await?;
        for c in &ddl.columns {
            let args = [Bind::Text(table.into()), Bind::Text(c.name.clone()), Bind::Text(c.source_type.clone())];
            tx.execute(self.sql.fixed(Stmt::DdlColumn)?, &args).await?;
        }
        if !ddl.key.is_empty() {
            let key = serde_json::to_string(&ddl.key)?;
            tx.execute(self.sql.fixed(Stmt::SetKey)?, &[Bind::Text(table.into()), Bind::Text(key)]).await?;
        }
        let after = tables::read(&self.sql, &mut tx, table).await?;
        if let Some(r) =
            after.as_ref().and_then(|r| r.schema.as_ref()).filter(|r| !ddl.key.is_empty() && r.key != ddl.key)
        {
            bail!(
                "table `{table}`: source_ddl declares the key {:?}, but the replica is keyed on {:?}",
                ddl.key,
                r.key
            );
        }
        if before.as_ref().map(|r| &r.schema) != after.as_ref().map(|r| &r.schema) {
            tx.execute(self.sql.fixed(Stmt::BumpVersion)?, &[Bind::Text(table.into())]).await?;
        }
        tx.commit().await.with_context(|| format!("recording the source_ddl of `{table}`"))?;
        Ok(())
    }

    /// What the warehouse records of `table`: `None` until it is registered.
    pub async fn table(&self, table: &str) -> Result<Option<Recorded>> {
        let name = [Bind::Text(table.into())];
        let row = self.pool.fetch_optional(self.sql.fixed(Stmt::LoadTable)?, &name).await?;
        let columns = self.pool.fetch_as(self.sql.fixed(Stmt::LoadColumns)?, &name).await?;
        tables::recorded(table, row, columns)
    }

    /// What the stream has shown of `table`: `None` until its first change landed.
    pub async fn schema(&self, table: &str) -> Result<Option<TableSchema>> {
        Ok(self.table(table).await?.and_then(|r| r.schema))
    }

    /// [`Warehouse::schema`] inside a transaction.
    pub async fn schema_in(&self, tx: &mut Tx<'_>, table: &str) -> Result<Option<TableSchema>> {
        Ok(tables::read(&self.sql, tx, table).await?.and_then(|r| r.schema))
    }

    /// Every registered table's state version.
    pub async fn versions(&self) -> Result<HashMap<String, i64>> {
        let rows: Vec<tables::VersionRow> = self.pool.fetch_as(self.sql.fixed(Stmt::TableVersions)?, &[]).await?;
        Ok(rows.into_iter().map(|r| (r.name, r.version)).collect())
    }

    /// The next offset to land for every partition the warehouse has seen.
    pub async fn offsets(&self) -> Result<HashMap<(String, i32), i64>> {
        let rows: Vec<OffsetRow> = self.pool.fetch_as(self.sql.fixed(Stmt::LoadOffsets)?, &[]).await?;
        Ok(rows.into_iter().map(|r| ((r.topic, r.kafka_partition), r.next_offset)).collect())
    }

    /// Lets a stopped table's merges run again, accepting the column types its stream now shows.
    /// Returns the accepted (column, type) pairs, or `None` when the table was not stopped.
    pub async fn resume(&self, table: &str) -> Result<Option<Vec<(String, String)>>> {
        let mut tx = self.pool.begin(self.sql.fixed(Stmt::DdlBegin)?).await?;
        let Some(schema) =
            tables::read(&self.sql, &mut tx, table).await?.and_then(|r| r.schema).filter(|s| s.stopped.is_some())
        else {
            return Ok(None);
        };
        let arg = [Bind::Text(table.into())];
        tx.execute(self.sql.fixed(Stmt::ResumeColumns)?, &arg).await?;
        tx.execute(self.sql.fixed(Stmt::ResumeTable)?, &arg).await?;
        tx.execute(self.sql.fixed(Stmt::BumpVersion)?, &arg).await?;
        tx.commit().await.with_context(|| format!("resuming `{table}`"))?;
        let mut accepted: Vec<(String, String)> = schema.pending.into_iter().collect();
        accepted.sort();
        tracing::info!(table, accepted = ?accepted, "resumed");
        Ok(Some(accepted))
    }

    /// Stops `table` because the warehouse refuses to land its records (`status` and `/readyz`
    /// show `reason`); its merges stop too until [`Warehouse::unstop_landing`].
    pub async fn stop_landing(&self, table: &str, reason: &str) -> Result<()> {
        let args = [Bind::Text(table.into()), Bind::Text(format!("landing refused: {reason}")), Bind::OptI64(None)];
        self.pool
            .execute(self.sql.fixed(Stmt::StopTable)?, &args)
            .await
            .with_context(|| format!("stopping `{table}`"))?;
        Ok(())
    }

    /// Undoes [`Warehouse::stop_landing`] (not a stop for any other reason). True: it was stopped so.
    pub async fn unstop_landing(&self, table: &str) -> Result<bool> {
        let n = self
            .pool
            .execute(self.sql.fixed(Stmt::UnstopLanding)?, &[Bind::Text(table.into())])
            .await
            .with_context(|| format!("letting `{table}` go on"))?;
        Ok(n > 0)
    }

    /// The in-process lock of a table's merges.
    pub fn merge_lock(&self, table: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.merge_locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(table.to_string()).or_default().clone()
    }

    /// Counts `removed` staged rows of `table`; true, and the count starts again, once at least
    /// `every` have been removed since the last time it said so.
    pub fn vacuum_due(&self, table: &str, removed: u64, every: u64) -> bool {
        let mut counts = self.removed_since_vacuum.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(table.to_string()).or_default();
        *n += removed;
        if *n < every {
            return false;
        }
        *n = 0;
        true
    }
}
