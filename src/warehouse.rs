//! The warehouse as tidemark sees it: metadata tables (from `migrations/`), staging tables,
//! and the table schemas the stream has shown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context, Result};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::SqlSafeStr;

use crate::db::{redact_url, Bind, Pool, Tx};
use crate::dialect::{Dialect, DDL_LOCK_ID, LOCK_SPACE};
use crate::schema::{Column, TableSchema};
use crate::sql::{Sql, TableCtx, MIGRATIONS};

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

impl Warehouse {
    /// Connects and brings the metadata tables up to date.
    pub async fn open(url: &str) -> Result<Arc<Warehouse>> {
        let pool = Pool::connect(url).await?;
        let wh = Warehouse {
            sql: Sql::new(pool.dialect()),
            pool,
            url: redact_url(url),
            merge_locks: Mutex::new(HashMap::new()),
            removed_since_vacuum: Mutex::new(HashMap::new()),
        };
        wh.migrate().await.with_context(|| format!("applying migrations to {}", wh.url))?;
        Ok(Arc::new(wh))
    }

    pub fn dialect(&self) -> Dialect {
        self.pool.dialect()
    }

    async fn migrate(&self) -> Result<()> {
        let prefix = format!("{}/", self.dialect().name());
        let mut migrations = Vec::new();
        for (name, sql) in MIGRATIONS.iter().filter(|(n, _)| n.starts_with(&prefix)) {
            let file = name.trim_start_matches(&prefix).trim_end_matches(".sql");
            let (version, description) =
                file.split_once('_').ok_or_else(|| anyhow!("migration {name} is not named NNNN_description.sql"))?;
            let version: i64 = version.parse().map_err(|_| anyhow!("migration {name}: bad version"))?;
            migrations.push(Migration::new(
                version,
                description.replace('_', " ").into(),
                MigrationType::Simple,
                (*sql).into_sql_str(),
                false,
            ));
        }
        let mut migrator = Migrator::with_migrations(migrations);
        migrator.dangerous_set_table_name("_tidemark_migrations");
        match &self.pool {
            // sqlx serialises concurrent PostgreSQL migrators with an advisory lock.
            Pool::Pg(p) => migrator.run(p).await?,
            // On SQLite it does not: two processes opening a new file race to record the same
            // version. The migrations are idempotent (IF NOT EXISTS), so the loser retries and
            // then finds the version recorded.
            Pool::Lite(p) => {
                let mut attempt = 0;
                loop {
                    match migrator.run(p).await {
                        Ok(()) => break,
                        Err(e) if attempt < 5 => {
                            attempt += 1;
                            tracing::debug!(error = %e, attempt, "migration raced another process; retrying");
                            tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(())
    }

    /// Records the table and creates its staging table (idempotent).
    pub async fn register_table(&self, name: &str, topic: &str) -> Result<()> {
        let t = TableCtx::bare(name);
        let mut tx = self.pool.begin(self.sql.fixed("ddl_begin")?).await?;
        if self.sql.has("ddl_lock") {
            tx.fetch(self.sql.fixed("ddl_lock")?, &[Bind::I32(LOCK_SPACE), Bind::I32(DDL_LOCK_ID)])
                .await
                .with_context(|| format!("registering table `{name}`: waiting for other instances' DDL"))?;
        }
        tx.execute(
            self.sql.fixed("register_table")?,
            &[Bind::Text(name.into()), Bind::Text(topic.into()), Bind::Text(t.staging.clone())],
        )
        .await
        .with_context(|| format!("registering table `{name}`"))?;
        tx.execute(self.sql.render("staging_table", &t, &[])?, &[])
            .await
            .with_context(|| format!("creating staging table {} for `{name}`", t.staging))?;
        tx.commit().await.with_context(|| format!("registering table `{name}`: COMMIT"))?;
        Ok(())
    }

    /// Records the columns and key a table's `source_ddl` declares. Its types win over what the
    /// stream showed; a key different from the one already recorded is an error.
    pub async fn apply_ddl(&self, table: &str, ddl: &TableSchema) -> Result<()> {
        let mut tx = self.pool.begin(self.sql.fixed("merge_begin")?).await?;
        for c in &ddl.columns {
            let args = [Bind::Text(table.into()), Bind::Text(c.name.clone()), Bind::Text(c.source_type.clone())];
            tx.execute(self.sql.fixed("ddl_column")?, &args).await?;
        }
        if !ddl.key.is_empty() {
            let key = serde_json::to_string(&ddl.key)?;
            tx.execute(self.sql.fixed("set_key")?, &[Bind::Text(table.into()), Bind::Text(key)]).await?;
        }
        let recorded = self.schema_in(&mut tx, table).await?;
        if let Some(r) = recorded.filter(|r| !ddl.key.is_empty() && r.key != ddl.key) {
            bail!(
                "table `{table}`: source_ddl declares the key {:?}, but the replica is keyed on {:?}",
                ddl.key,
                r.key
            );
        }
        tx.commit().await.with_context(|| format!("recording the source_ddl of `{table}`"))?;
        Ok(())
    }

    /// What the stream has shown of `table`: `None` until its first change landed.
    pub async fn schema(&self, table: &str) -> Result<Option<TableSchema>> {
        let key = self.pool.fetch(self.sql.fixed("load_key")?, &[Bind::Text(table.into())]).await?;
        let cols = self.pool.fetch(self.sql.fixed("load_columns")?, &[Bind::Text(table.into())]).await?;
        schema_from_rows(table, key, cols)
    }

    /// [`Warehouse::schema`] inside a transaction.
    pub async fn schema_in(&self, tx: &mut Tx<'_>, table: &str) -> Result<Option<TableSchema>> {
        let key = tx.fetch(self.sql.fixed("load_key")?, &[Bind::Text(table.into())]).await?;
        let cols = tx.fetch(self.sql.fixed("load_columns")?, &[Bind::Text(table.into())]).await?;
        schema_from_rows(table, key, cols)
    }

    /// The next offset to land for every partition the warehouse has seen.
    pub async fn offsets(&self) -> Result<HashMap<(String, i32), i64>> {
        let rows = self.pool.fetch(self.sql.fixed("load_offsets")?, &[]).await?;
        rows.iter()
            .map(|r| {
                let topic = r[0].as_str().ok_or_else(|| anyhow!("offsets: bad topic"))?.to_string();
                let partition = r[1].as_i64().ok_or_else(|| anyhow!("offsets: bad partition"))? as i32;
                let next = r[2].as_i64().ok_or_else(|| anyhow!("offsets: bad offset"))?;
                Ok(((topic, partition), next))
            })
            .collect()
    }

    /// Lets a stopped table's merges run again, accepting the column types its stream now shows.
    /// Returns the accepted (column, type) pairs, or `None` when the table was not stopped.
    pub async fn resume(&self, table: &str) -> Result<Option<Vec<(String, String)>>> {
        let Some(schema) = self.schema(table).await?.filter(|s| s.stopped.is_some()) else { return Ok(None) };
        let mut tx = self.pool.begin(self.sql.fixed("merge_begin")?).await?;
        let arg = [Bind::Text(table.into())];
        tx.execute(self.sql.fixed("resume_columns")?, &arg).await?;
        tx.execute(self.sql.fixed("resume_table")?, &arg).await?;
        tx.commit().await.with_context(|| format!("resuming `{table}`"))?;
        let mut accepted: Vec<(String, String)> = schema.pending.into_iter().collect();
        accepted.sort();
        tracing::info!(table, accepted = ?accepted, "resumed");
        Ok(Some(accepted))
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

fn schema_from_rows(table: &str, key: crate::db::Rows, cols: crate::db::Rows) -> Result<Option<TableSchema>> {
    let key_json = key.first().and_then(|r| r[0].as_str().map(str::to_string));
    let Some(key_json) = key_json else { return Ok(None) };
    let stopped = key.first().and_then(|r| r[1].to_text());
    let key: Vec<String> = serde_json::from_str(&key_json)
        .with_context(|| format!("table `{table}`: stored key columns {key_json:?} are not a JSON array"))?;
    let mut schema = TableSchema { key, stopped, ..Default::default() };
    for r in &cols {
        let (Some(name), Some(ty)) = (r[0].as_str(), r[1].as_str()) else { continue };
        schema.columns.push(Column::new(name, ty));
        if let Some(applied) = r[2].to_text() {
            schema.applied.insert(name.to_string(), applied);
        }
        if let Some(pending) = r[3].to_text() {
            schema.pending.insert(name.to_string(), pending);
        }
    }
    if schema.columns.is_empty() {
        return Ok(None);
    }
    Ok(Some(schema))
}
