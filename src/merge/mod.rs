//! Merging a table's staged changes into its replica.
//!
//! One merge, in one transaction: capture a watermark of staging, pick the last change per key
//! among staged rows up to it, apply (delete / update / insert), remove exactly those staged
//! rows, record the run. The statements come from `templates/<dialect>/merge_*.sql`, in the
//! order of [`plan`] — the same list `tidemark sql` prints.
//!
//! A table's merges never overlap: an in-process lock, plus a session advisory lock on
//! PostgreSQL (SQLite's write lock, taken by `BEGIN IMMEDIATE`, does it there).

pub mod plan;
mod replica;

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{debug, info, warn};

use crate::from_row;
use crate::sql::dialect::{merge_lock_id, LOCK_SPACE};
use crate::sql::{Stmt, TableCtx};
use crate::warehouse::db::{Bind, Conn, Pool, Tx};
use crate::warehouse::tables::TableRow;
use crate::warehouse::Warehouse;
pub use plan::{plan, Step};

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

/// `staging_probe`: is anything staged?
struct Probe {
    staged: bool,
}
from_row!(Probe { staged });

/// An advisory lock's answer (`merge_lock` waits and says true; `merge_try_lock` may say false).
struct Held {
    held: Option<bool>,
}
from_row!(Held { held });

/// `merge_watermark`: the highest staged row the merge consumes and the commit times it spans.
struct Watermark {
    watermark: Option<i64>,
    oldest_commit_ms: Option<i64>,
    newest_commit_ms: Option<i64>,
}
from_row!(Watermark { watermark, oldest_commit_ms, newest_commit_ms });

/// `merge_counts`: this transaction's cumulative insert/update/delete counters of the replica.
#[derive(Default, Clone, Copy)]
struct Counters {
    n_tup_ins: i64,
    n_tup_upd: i64,
    n_tup_del: i64,
}
from_row!(Counters { n_tup_ins, n_tup_upd, n_tup_del });

/// Merges `table` now. `wait`: wait for a merge running elsewhere instead of returning Busy.
pub async fn merge(wh: &Warehouse, table: &str, wait: bool) -> Result<MergeOutcome> {
    let sql = &wh.sql;
    let bare = TableCtx::bare(table);
    let probe: Probe = wh
        .pool
        .fetch_one(sql.render(Stmt::StagingProbe, &bare, &[])?, &[])
        .await
        .with_context(|| format!("merge of `{table}`: checking its staging table {}", bare.staging))?;
    if !probe.staged {
        return Ok(MergeOutcome::NothingStaged);
    }
    let state: Option<TableRow> =
        wh.pool.fetch_optional(sql.fixed(Stmt::LoadTable)?, &[Bind::Text(table.into())]).await?;
    if let Some(reason) = state.and_then(|s| s.stopped) {
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
    if !lock_session(wh, &mut conn, table, wait).await? {
        return Ok(MergeOutcome::Busy);
    }

    let started = Utc::now();
    let t0 = Instant::now();
    let result = run(wh, &mut conn, table, started, t0).await;

    // Release the session lock; a connection in doubt is closed, never reused.
    let released = match wh.pool {
        Pool::Pg(_) if result.is_ok() => {
            conn.fetch_rows(sql.fixed(Stmt::MergeUnlock)?, &lock_args(table)).await.is_ok()
        }
        Pool::Pg(_) => false,
        Pool::Lite(_) => true,
    };
    if !released {
        conn.discard().await;
    }
    finish(wh, table, started, result).await
}

fn lock_args(table: &str) -> [Bind; 2] {
    [Bind::I32(LOCK_SPACE), Bind::I32(merge_lock_id(table))]
}

/// PostgreSQL: the table's session advisory lock, waiting for it or not. False: another
/// process holds it. (SQLite's write lock, taken by the merge's `BEGIN IMMEDIATE`, does it.)
async fn lock_session(wh: &Warehouse, conn: &mut Conn, table: &str, wait: bool) -> Result<bool> {
    if !matches!(wh.pool, Pool::Pg(_)) {
        return Ok(true);
    }
    let stmt = if wait { Stmt::MergeLock } else { Stmt::MergeTryLock };
    let got: Held = conn
        .fetch_one(wh.sql.fixed(stmt)?, &lock_args(table))
        .await
        .with_context(|| format!("merge of `{table}`: taking its advisory lock"))?;
    Ok(got.held != Some(false))
}

/// After the transaction: metrics and the log line, the staging vacuum, or the failure recorded.
async fn finish(
    wh: &Warehouse,
    table: &str,
    started: DateTime<Utc>,
    result: Result<Option<MergeReport>>,
) -> Result<MergeOutcome> {
    match result {
        Ok(Some(report)) => {
            crate::observe::telemetry::merged(table, &report);
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
            crate::observe::telemetry::merge_failed(table);
            let binds = record_binds(table, started, "failed", &MergeReport::default(), Some(format!("{e:#}")));
            let record = match wh.sql.fixed(Stmt::RecordMerge) {
                Ok(stmt) => wh.pool.execute(stmt, &binds).await.map(|_| ()),
                Err(re) => Err(re),
            };
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
    if !wh.sql.has(Stmt::StagingVacuum) || !wh.vacuum_due(table, removed, VACUUM_AFTER_ROWS) {
        return;
    }
    let started = Instant::now();
    let done = match wh.sql.render(Stmt::StagingVacuum, &TableCtx::bare(table), &[]) {
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
    let mut tx =
        conn.begin(sql.fixed(Stmt::MergeBegin)?).await.with_context(|| format!("merge of `{table}`: BEGIN"))?;
    let schema = wh
        .schema_in(&mut tx, table)
        .await?
        .ok_or_else(|| anyhow!("merge of `{table}`: rows are staged but no schema is recorded"))?;
    if schema.column("_tidemark_op").is_some() {
        bail!("table `{table}` has a column named `_tidemark_op`, which tidemark's merge uses itself");
    }
    if let Some(reason) = &schema.stopped {
        return Err(TableStopped { table: table.into(), reason: reason.clone() }.into());
    }
    let t = TableCtx::new(table, &schema);
    let mut report = MergeReport { table: table.into(), ..Default::default() };
    replica::evolve(wh, &mut tx, &t, &schema, &mut report).await?;

    let wm: Watermark = tx
        .fetch_one(sql.render(Stmt::MergeWatermark, &t, &[])?, &[])
        .await
        .with_context(|| format!("merge of `{table}`: reading the watermark"))?;
    let Some(watermark) = wm.watermark else {
        return Ok(None);
    };
    report.watermark = watermark;
    report.oldest_commit_ms = wm.oldest_commit_ms;
    report.newest_commit_ms = wm.newest_commit_ms;

    apply(wh, &mut tx, &t, &mut report).await?;
    report.duration = t0.elapsed();
    report.finished_at = Some(Utc::now());
    tx.execute(sql.fixed(Stmt::RecordMerge)?, &record_binds(table, started, "ok", &report, None))
        .await
        .with_context(|| format!("merge of `{table}`: recording the run"))?;
    tx.commit().await.with_context(|| format!("merge of `{table}`: COMMIT"))?;
    crate::failpoint::hit("merge.committed");
    report.duration = t0.elapsed();
    Ok(Some(report))
}

/// Runs the dialect's [`plan`]: the merge source up to the watermark, the apply, the cleanup;
/// the counts go into `report`.
async fn apply(wh: &Warehouse, tx: &mut Tx<'_>, t: &TableCtx, report: &mut MergeReport) -> Result<()> {
    let table = t.name.as_str();
    let mut baseline = Counters::default();
    for step in plan(wh.dialect()) {
        let name = step.statement();
        let step_started = Instant::now();
        let text = wh.sql.render(name, t, &[])?;
        let ctx = || format!("merge of `{table}`: statement {}", name.name());
        let bound = [Bind::I64(report.watermark)];
        match *step {
            Step::Run(_) => {
                tx.execute(text, &[]).await.with_context(ctx)?;
            }
            Step::Bounded(_) => {
                tx.execute(text, &bound).await.with_context(ctx)?;
            }
            Step::Baseline(_) | Step::Counts(_) => {
                // No row: nothing counted yet (a table this transaction has not touched).
                let now: Counters = tx.fetch_optional(text, &[]).await.with_context(ctx)?.unwrap_or_default();
                if matches!(step, Step::Baseline(_)) {
                    baseline = now;
                } else {
                    report.inserted = (now.n_tup_ins - baseline.n_tup_ins).max(0) as u64;
                    report.updated = (now.n_tup_upd - baseline.n_tup_upd).max(0) as u64;
                    report.deleted = (now.n_tup_del - baseline.n_tup_del).max(0) as u64;
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
        debug!(table, statement = name.name(), ms = step_started.elapsed().as_millis() as u64, "merge step");
    }
    Ok(())
}
