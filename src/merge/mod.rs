//! Merging staged changes into replicas.
//!
//! A merge unit is one table, or a consistency group (tables merged together). One merge of a
//! unit is one transaction ([`unit`]): for each table, capture a watermark of staging, pick the
//! last change per key among staged rows up to it — and, where the stream carries watermarks,
//! with a commit ts up to the consistent point — apply (delete / update / insert), remove exactly
//! those staged rows, record the run. The statements come from `templates/<dialect>/merge_*.sql`,
//! in the order of [`plan`] — the same list `tidemark sql` prints.
//!
//! A table's merges never overlap: an in-process lock, plus a session advisory lock on
//! PostgreSQL (SQLite's write lock, taken by `BEGIN IMMEDIATE`, does it there). A unit takes its
//! tables' locks in name order.

pub mod plan;
mod replica;
mod unit;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{debug, info, warn};

use crate::config::{Table, Watermarks};
use crate::from_row;
use crate::sql::dialect::{merge_lock_id, LOCK_SPACE};
use crate::sql::{Stmt, TableCtx};
use crate::warehouse::db::{Bind, Conn, Pool};
use crate::warehouse::failure::Failure;
use crate::warehouse::Warehouse;
pub use plan::{plan, Step};
pub use unit::{Bounds, Waiting};

/// A table to merge, and whether its merges wait for watermarks.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub watermarks: Watermarks,
}

impl Target {
    /// A table with the default policy (gated once its stream shows watermarks).
    pub fn auto(name: &str) -> Target {
        Target { name: name.to_string(), watermarks: Watermarks::Auto }
    }
}

impl From<&Table> for Target {
    fn from(t: &Table) -> Target {
        Target { name: t.name.clone(), watermarks: t.watermarks }
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
    /// The highest staging row (`_tm_seq`) the merge consumed.
    pub watermark: i64,
    /// The consistent point it merged up to (watermark-gated merges): the replica holds the
    /// upstream table as of this commit ts.
    pub point: Option<i64>,
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
    /// Watermark-gated and no consistent point yet: what it waits for.
    Waiting(String),
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

/// Merges `table` now, on its own, with the default watermark policy. `wait`: wait for a merge
/// running elsewhere instead of returning Busy.
pub async fn merge(wh: &Warehouse, table: &str, wait: bool) -> Result<MergeOutcome> {
    let mut out = merge_unit(wh, &[Target::auto(table)], wait).await?;
    Ok(out.remove(0).1)
}

/// How often one merge sets refused rows aside and tries again.
const SET_ASIDE_ROUNDS: usize = 3;

/// Merges a unit — one table, or every table of a consistency group in one transaction up to
/// one common point. Returns each table's outcome, in the order given; an error fails them all.
pub async fn merge_unit(wh: &Warehouse, targets: &[Target], wait: bool) -> Result<Vec<(String, MergeOutcome)>> {
    let all = |o: MergeOutcome| targets.iter().map(|t| (t.name.clone(), o.clone())).collect();
    if !anything_staged(wh, targets).await? {
        return Ok(all(MergeOutcome::NothingStaged));
    }
    let mut names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    names.sort();
    let mut guards = Vec::new();
    for name in &names {
        let lock = wh.merge_lock(name);
        guards.push(if wait {
            lock.lock_owned().await
        } else {
            match lock.try_lock_owned() {
                Ok(g) => g,
                Err(_) => return Ok(all(MergeOutcome::Busy)),
            }
        });
    }
    let mut conn = wh.pool.acquire().await.with_context(|| format!("merge of {}: connecting", names.join(", ")))?;
    let mut locked = Vec::new();
    for name in &names {
        if !lock_session(wh, &mut conn, name, wait).await? {
            release(wh, conn, &locked, true).await;
            return Ok(all(MergeOutcome::Busy));
        }
        locked.push(*name);
    }
    let started = Utc::now();
    let mut result = unit::run(wh, &mut conn, targets, started, Instant::now()).await;
    // Refused data: set the rows responsible aside, merge the rest in the same cycle.
    for _ in 0..SET_ASIDE_ROUNDS {
        let Err(e) = &result else { break };
        if Failure::of(e) != Failure::Data {
            break;
        }
        warn!(unit = %names.join(", "), error = %format!("{e:#}"), "the replica refused a merge's data: looking for the staged rows responsible");
        match unit::set_aside_refused(wh, &mut conn, targets).await {
            Ok(0) => break,
            Ok(n) => {
                info!(unit = %names.join(", "), rows = n, "refused staged rows moved to the dead-letter table; merging the rest");
                result = unit::run(wh, &mut conn, targets, started, Instant::now()).await;
            }
            Err(find) => {
                warn!(error = %format!("{find:#}"), "could not look for the refused rows");
                break;
            }
        }
    }
    release(wh, conn, &locked, result.is_ok()).await;
    finish(wh, targets, started, result).await
}

/// Whether any table of the unit has staged rows: one cheap query each, no transaction.
async fn anything_staged(wh: &Warehouse, targets: &[Target]) -> Result<bool> {
    for t in targets {
        let bare = TableCtx::bare(&t.name);
        let probe: Probe = wh
            .pool
            .fetch_one(wh.sql.render(Stmt::StagingProbe, &bare, &[])?, &[])
            .await
            .with_context(|| format!("merge of `{}`: checking its staging table {}", t.name, bare.staging))?;
        if probe.staged {
            return Ok(true);
        }
    }
    Ok(false)
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

/// Releases the session locks; a connection in doubt is closed, never reused.
async fn release(wh: &Warehouse, mut conn: Conn, locked: &[&str], ok: bool) {
    let mut released = matches!(wh.pool, Pool::Lite(_)) || ok;
    if matches!(wh.pool, Pool::Pg(_)) && ok {
        for name in locked {
            let unlocked = match wh.sql.fixed(Stmt::MergeUnlock) {
                Ok(stmt) => conn.fetch_rows(stmt, &lock_args(name)).await.is_ok(),
                Err(_) => false,
            };
            released &= unlocked;
        }
    }
    if !released {
        conn.discard().await;
    }
}

/// After the transaction: metrics and the log line, the staging vacuum, or the failure recorded.
async fn finish(
    wh: &Warehouse,
    targets: &[Target],
    started: DateTime<Utc>,
    result: Result<Vec<Option<MergeReport>>>,
) -> Result<Vec<(String, MergeOutcome)>> {
    let reports = match result {
        Ok(r) => r,
        Err(e) => {
            if let Some(w) = e.downcast_ref::<Waiting>() {
                let why = w.0.clone();
                return Ok(targets.iter().map(|t| (t.name.clone(), MergeOutcome::Waiting(why.clone()))).collect());
            }
            for t in targets {
                record_failure(wh, &t.name, started, &e).await;
            }
            return Err(e);
        }
    };
    let mut out = Vec::new();
    for (t, report) in targets.iter().zip(reports) {
        let Some(report) = report else {
            out.push((t.name.clone(), MergeOutcome::NothingStaged));
            continue;
        };
        let table = t.name.as_str();
        crate::observe::telemetry::merged(table, &report);
        info!(
            table,
            staged = report.staged_rows,
            inserted = report.inserted,
            updated = report.updated,
            deleted = report.deleted,
            point = report.point,
            ms = report.duration.as_millis() as u64,
            "merged"
        );
        vacuum_staging(wh, table, report.staged_rows).await;
        out.push((t.name.clone(), MergeOutcome::Merged(report)));
    }
    Ok(out)
}

async fn record_failure(wh: &Warehouse, table: &str, started: DateTime<Utc>, e: &anyhow::Error) {
    crate::observe::telemetry::merge_failed(table);
    let binds = record_binds(table, started, "failed", &MergeReport::default(), Some(format!("{e:#}")));
    let record = match wh.sql.fixed(Stmt::RecordMerge) {
        Ok(stmt) => wh.pool.execute(stmt, &binds).await.map(|_| ()),
        Err(re) => Err(re),
    };
    if let Err(re) = record {
        warn!(table, error = %re, "could not record the failed merge");
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
        Bind::OptI64(r.point),
    ]
}
