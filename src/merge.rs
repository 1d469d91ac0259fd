//! Merging a table's staged changes into its replica.
//!
//! One merge, in one transaction: capture a watermark of staging, pick the last change per key
//! among staged rows up to it, apply (delete / update / insert), remove exactly those staged
//! rows, record the run. The statements come from `templates/<dialect>/merge_*.sql`, in the
//! order of [`plan`] — the same list `tidemark sql` prints.
//!
//! A table's merges never overlap: an in-process lock, plus a session advisory lock on
//! PostgreSQL (SQLite's write lock, taken by `BEGIN IMMEDIATE`, does it there).

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{debug, info, warn};

use crate::db::{Bind, Conn, Pool};
use crate::dialect::{merge_lock_id, Dialect, LOCK_SPACE};
use crate::sql::TableCtx;
use crate::warehouse::Warehouse;

/// One statement of a merge and what its result means.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// Run it.
    Run(&'static str),
    /// Run it with the watermark bound as parameter 1.
    Bounded(&'static str),
    /// A query returning cumulative (inserted, updated, deleted) counters, read before ...
    Baseline(&'static str),
    /// ... and after the statements that change the replica: the difference is what they did.
    Counts(&'static str),
    /// Run it; its row count is that many rows inserted / updated / deleted.
    Inserted(&'static str),
    Updated(&'static str),
    Deleted(&'static str),
    /// Remove the consumed staging rows (watermark bound); its row count is what was consumed.
    Cleanup(&'static str),
}

impl Step {
    pub fn statement(self) -> &'static str {
        match self {
            Step::Run(s)
            | Step::Bounded(s)
            | Step::Baseline(s)
            | Step::Counts(s)
            | Step::Inserted(s)
            | Step::Updated(s)
            | Step::Deleted(s)
            | Step::Cleanup(s) => s,
        }
    }
}

/// The statements of one merge, in order, after `merge_begin` and `merge_watermark`.
pub fn plan(dialect: Dialect) -> &'static [Step] {
    match dialect {
        Dialect::Postgres => &[
            Step::Bounded("merge_source"),
            Step::Baseline("merge_counts"),
            Step::Run("merge_apply"),
            Step::Counts("merge_counts"),
            Step::Cleanup("merge_cleanup"),
        ],
        Dialect::Sqlite => &[
            Step::Run("merge_drop_source"),
            Step::Bounded("merge_source"),
            Step::Deleted("merge_delete"),
            Step::Updated("merge_update"),
            Step::Inserted("merge_insert"),
            Step::Cleanup("merge_cleanup"),
            Step::Run("merge_drop_source"),
        ],
        // Warehouses tidemark does not drive have scripts instead (script.rs).
        _ => &[],
    }
}

/// What one merge did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MergeReport {
    pub table: String,
    /// Staging rows consumed.
    pub staged_rows: u64,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    #[serde(serialize_with = "ser_ms")]
    pub duration: Duration,
    pub watermark: i64,
    /// Upstream commit time (epoch ms) of the first staged change consumed.
    pub oldest_commit_ms: Option<i64>,
    /// Upstream commit time (epoch ms) of the newest staged change consumed.
    pub newest_commit_ms: Option<i64>,
    pub replica_created: bool,
    pub columns_added: Vec<String>,
    /// Replica columns whose type was widened to what the stream now shows.
    pub columns_widened: Vec<String>,
    #[serde(skip)]
    pub finished_at: Option<DateTime<Utc>>,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

#[derive(Debug, Clone)]
pub enum MergeOutcome {
    Merged(MergeReport),
    /// Staging was empty: one cheap query, no transaction.
    NothingStaged,
    /// Another merge of this table is running (only when not waiting).
    Busy,
}

/// The table's merges are stopped (an incompatible type change upstream); its changes stay
/// staged until `tidemark resume`.
#[derive(Debug, thiserror::Error)]
#[error("table `{table}` is stopped: {reason}")]
pub struct TableStopped {
    pub table: String,
    pub reason: String,
}

/// Merges `table` now. `wait`: wait for a merge running elsewhere instead of returning Busy.
pub async fn merge(wh: &Warehouse, table: &str, wait: bool) -> Result<MergeOutcome> {
    let sql = &wh.sql;
    let bare = TableCtx::bare(table);
    let probe = wh
        .pool
        .fetch(sql.render("staging_probe", &bare, &[])?, &[])
        .await
        .with_context(|| format!("merge of `{table}`: checking its staging table {}", bare.staging))?;
    if !probe.first().and_then(|r| r.first()).and_then(|c| c.as_bool()).unwrap_or(false) {
        return Ok(MergeOutcome::NothingStaged);
    }
    let table_row = wh.pool.fetch(sql.fixed("load_key")?, &[Bind::Text(table.into())]).await?;
    if let Some(reason) = table_row.first().and_then(|r| r[1].to_text()) {
        return Err(TableStopped { table: table.into(), reason }.into());
    }

    let lock = wh.merge_lock(table);
    let _guard = if wait {
        lock.lock_owned().await
    } else {
        match lock.try_lock_owned() {
            Ok(g) => g,
            Err(_) => return Ok(MergeOutcome::Busy),
        }
    };
    let mut conn = wh.pool.acquire().await.with_context(|| format!("merge of `{table}`: connecting"))?;
    let lock_args = [Bind::I32(LOCK_SPACE), Bind::I32(merge_lock_id(table))];
    if matches!(wh.pool, Pool::Pg(_)) {
        let stmt = if wait { "merge_lock" } else { "merge_try_lock" };
        let got = conn
            .fetch(sql.fixed(stmt)?, &lock_args)
            .await
            .with_context(|| format!("merge of `{table}`: taking its advisory lock"))?;
        // pg_advisory_lock returns void (NULL); pg_try_advisory_lock a boolean.
        if got.first().and_then(|r| r.first()).and_then(|c| c.as_bool()) == Some(false) {
            return Ok(MergeOutcome::Busy);
        }
    }

    let started = Utc::now();
    let t0 = Instant::now();
    let result = run(wh, &mut conn, table, started, t0).await;

    // Release the session lock; a connection in doubt is closed, never reused.
    let released = match wh.pool {
        Pool::Pg(_) if result.is_ok() => conn.fetch(sql.fixed("merge_unlock")?, &lock_args).await.is_ok(),
        Pool::Pg(_) => false,
        Pool::Lite(_) => true,
    };
    if !released {
        conn.discard().await;
    }

    match result {
        Ok(Some(report)) => {
            crate::telemetry::merged(table, &report);
            info!(
                table,
                staged = report.staged_rows,
                inserted = report.inserted,
                updated = report.updated,
                deleted = report.deleted,
                ms = report.duration.as_millis() as u64,
                "merged"
            );
            vacuum_staging(wh, table, report.staged_rows).await;
            Ok(MergeOutcome::Merged(report))
        }
        Ok(None) => Ok(MergeOutcome::NothingStaged),
        Err(e) => {
            crate::telemetry::merge_failed(table);
            let record = wh
                .pool
                .execute(
                    sql.fixed("record_merge")?,
                    &record_binds(table, started, "failed", &MergeReport::default(), Some(format!("{e:#}"))),
                )
                .await;
            if let Err(re) = record {
                warn!(table, error = %re, "could not record the failed merge");
            }
            Err(e)
        }
    }
}

/// Staged rows a table's merges remove before this process vacuums its staging table.
const VACUUM_AFTER_ROWS: u64 = 20_000;

/// PostgreSQL keeps deleted rows until a vacuum, and autovacuum visits a table at most once a
/// minute (`autovacuum_naptime`): at 20,000 changes/s a minute of dead staging rows makes every
/// scan of staging — the emptiness probe, the watermark, the merge source — read hundreds of MB,
/// more with each merge. So once merges have removed [`VACUUM_AFTER_ROWS`] rows of a table, this
/// process vacuums its staging table itself (`staging_vacuum`; dialects without it need none).
/// A failure is only logged: autovacuum still comes.
async fn vacuum_staging(wh: &Warehouse, table: &str, removed: u64) {
    if !wh.sql.has("staging_vacuum") || !wh.vacuum_due(table, removed, VACUUM_AFTER_ROWS) {
        return;
    }
    let started = Instant::now();
    let done = match wh.sql.render("staging_vacuum", &TableCtx::bare(table), &[]) {
        Ok(text) => wh.pool.execute(text, &[]).await.map(|_| ()),
        Err(e) => Err(e),
    };
    match done {
        Ok(()) => debug!(table, statement = "staging_vacuum", ms = started.elapsed().as_millis() as u64, "merge step"),
        Err(e) => warn!(table, error = %format!("{e:#}"), "could not vacuum the staging table; autovacuum will"),
    }
}

fn record_binds(
    table: &str,
    started: DateTime<Utc>,
    status: &str,
    r: &MergeReport,
    error: Option<String>,
) -> Vec<Bind> {
    vec![
        Bind::Text(table.into()),
        Bind::Time(started),
        Bind::Time(r.finished_at.unwrap_or_else(Utc::now)),
        Bind::Text(status.into()),
        Bind::I64(r.staged_rows as i64),
        Bind::I64(r.inserted as i64),
        Bind::I64(r.updated as i64),
        Bind::I64(r.deleted as i64),
        Bind::OptI64(if status == "ok" { Some(r.watermark) } else { None }),
        Bind::OptI64(r.oldest_commit_ms),
        Bind::OptText(error),
        Bind::OptI64(r.newest_commit_ms),
    ]
}

/// The merge transaction. `Ok(None)`: another merge emptied staging first.
async fn run(
    wh: &Warehouse,
    conn: &mut Conn,
    table: &str,
    started: DateTime<Utc>,
    t0: Instant,
) -> Result<Option<MergeReport>> {
    let sql = &wh.sql;
    let mut tx = conn.begin(sql.fixed("merge_begin")?).await.with_context(|| format!("merge of `{table}`: BEGIN"))?;
    let schema = wh
        .schema_in(&mut tx, table)
        .await?
        .ok_or_else(|| anyhow!("merge of `{table}`: rows are staged but no schema is recorded"))?;
    if schema.column("_tidemark_op").is_some() {
        bail!("table `{table}` has a column named `_tidemark_op`, which tidemark's merge uses itself");
    }
    let t = TableCtx::new(table, &schema);
    let mut report = MergeReport { table: table.into(), ..Default::default() };

    if let Some(reason) = &schema.stopped {
        return Err(TableStopped { table: table.into(), reason: reason.clone() }.into());
    }
    // The replica: created on first use, given the columns the stream gained since, and
    // widened where the stream's types widened.
    let existing: Vec<String> = tx
        .fetch(sql.fixed("replica_columns")?, &[Bind::Text(table.into())])
        .await
        .with_context(|| format!("merge of `{table}`: reading the replica's columns"))?
        .iter()
        .filter_map(|r| r[0].as_str().map(str::to_string))
        .collect();
    let mark = |c: &str| vec![Bind::Text(table.into()), Bind::Text(c.into())];
    if existing.is_empty() {
        tx.execute(sql.render("replica_table", &t, &[])?, &[])
            .await
            .with_context(|| format!("merge of `{table}`: creating the replica table"))?;
        for c in &t.columns {
            tx.execute(sql.fixed("mark_applied")?, &mark(&c.name)).await?;
        }
        report.replica_created = true;
        info!(table, columns = t.columns.len(), "created the replica table");
    } else {
        for (c, col) in t.columns.iter().zip(&schema.columns) {
            if !existing.iter().any(|e| e == &c.name) {
                tx.execute(sql.render("add_column", &t, &[("c", crate::sql::value(c))])?, &[])
                    .await
                    .with_context(|| format!("merge of `{table}`: adding column `{}`", c.name))?;
                tx.execute(sql.fixed("mark_applied")?, &mark(&c.name)).await?;
                info!(table, column = %c.name, "added a column to the replica");
                report.columns_added.push(c.name.clone());
                continue;
            }
            match schema.applied.get(&c.name) {
                // A column tidemark did not make (a replica created by hand): left as it is.
                None => tx.execute(sql.fixed("mark_applied")?, &mark(&c.name)).await.map(|_| ())?,
                Some(applied) if applied != &col.source_type => {
                    let old = crate::schema::Column::new(&c.name, applied.as_str());
                    let old_ctx =
                        TableCtx::new(table, &crate::schema::TableSchema { columns: vec![old], ..Default::default() });
                    let was = sql.render("column_type", &old_ctx, &[("c", crate::sql::value(&old_ctx.columns[0]))])?;
                    let now = sql.render("column_type", &t, &[("c", crate::sql::value(c))])?;
                    if was != now {
                        if !sql.has("alter_column_type") {
                            warn!(table, column = %c.name, was, now, "this dialect cannot change a column's type; values are stored as they come");
                        } else {
                            tx.execute(sql.render("alter_column_type", &t, &[("c", crate::sql::value(c))])?, &[])
                                .await
                                .with_context(|| {
                                    format!("merge of `{table}`: changing column `{}` from {was} to {now}", c.name)
                                })?;
                            info!(table, column = %c.name, was, now, "changed the replica column's type");
                            report.columns_widened.push(c.name.clone());
                        }
                    }
                    tx.execute(sql.fixed("mark_applied")?, &mark(&c.name)).await?;
                }
                Some(_) => {}
            }
        }
    }

    let wm = tx
        .fetch(sql.render("merge_watermark", &t, &[])?, &[])
        .await
        .with_context(|| format!("merge of `{table}`: reading the watermark"))?;
    let Some(watermark) = wm.first().and_then(|r| r[0].as_i64()) else {
        return Ok(None);
    };
    report.watermark = watermark;
    report.oldest_commit_ms = wm.first().and_then(|r| r[1].as_i64());
    report.newest_commit_ms = wm.first().and_then(|r| r.get(2)).and_then(|c| c.as_i64());

    let mut baseline = (0u64, 0u64, 0u64);
    for step in plan(wh.dialect()) {
        let name = step.statement();
        let step_started = Instant::now();
        let text = sql.render(name, &t, &[])?;
        let ctx = || format!("merge of `{table}`: statement {name}");
        let bound = [Bind::I64(watermark)];
        match *step {
            Step::Run(_) => {
                tx.execute(text, &[]).await.with_context(ctx)?;
            }
            Step::Bounded(_) => {
                tx.execute(text, &bound).await.with_context(ctx)?;
            }
            Step::Baseline(_) | Step::Counts(_) => {
                let rows = tx.fetch(text, &[]).await.with_context(ctx)?;
                // No row: nothing counted yet (a table this transaction has not touched).
                let n = |i: usize| rows.first().and_then(|r| r.get(i)).and_then(|c| c.as_i64()).unwrap_or(0) as u64;
                let now = (n(0), n(1), n(2));
                if matches!(step, Step::Baseline(_)) {
                    baseline = now;
                } else {
                    report.inserted = now.0.saturating_sub(baseline.0);
                    report.updated = now.1.saturating_sub(baseline.1);
                    report.deleted = now.2.saturating_sub(baseline.2);
                }
            }
            Step::Inserted(_) => report.inserted = tx.execute(text, &[]).await.with_context(ctx)?,
            Step::Updated(_) => report.updated = tx.execute(text, &[]).await.with_context(ctx)?,
            Step::Deleted(_) => report.deleted = tx.execute(text, &[]).await.with_context(ctx)?,
            Step::Cleanup(_) => {
                crate::failpoint::hit("merge.applied");
                report.staged_rows = tx.execute(text, &bound).await.with_context(ctx)?
            }
        }
        debug!(table, statement = name, ms = step_started.elapsed().as_millis() as u64, "merge step");
    }
    report.duration = t0.elapsed();
    report.finished_at = Some(Utc::now());
    tx.execute(sql.fixed("record_merge")?, &record_binds(table, started, "ok", &report, None))
        .await
        .with_context(|| format!("merge of `{table}`: recording the run"))?;
    tx.commit().await.with_context(|| format!("merge of `{table}`: COMMIT"))?;
    crate::failpoint::hit("merge.committed");
    report.duration = t0.elapsed();
    Ok(Some(report))
}
