//! One merge of a unit (a table, or a consistency group) in one transaction. Where a table's
//! stream carries watermarks, the unit merges up to one point: the minimum watermark over every
//! partition of every topic of the unit — later changes stay staged, and what arrives at or below
//! a point already merged is a re-send, removed without being applied. A table stopped by an
//! incompatible type change is merged up to just before the change; past it, its unit stops.

use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use tracing::debug;

use super::{record_binds, replica, MergeReport, TableStopped, Target};
use crate::from_row;
use crate::merge::plan::{plan, Step};
use crate::model::schema::TableSchema;
use crate::sql::{Stmt, TableCtx};
use crate::warehouse::consistency::{self, TopicPoint};
use crate::warehouse::db::{Bind, Conn, Tx};
use crate::warehouse::failure::Failure;
use crate::warehouse::tables::{self, Recorded};
use crate::warehouse::Warehouse;

/// A watermark-gated unit has no consistent point yet: what it waits for.
#[derive(Debug, thiserror::Error)]
#[error("waiting for {0}")]
pub struct Waiting(pub String);

/// The commit ts range a table's merge applies: above `low` (its last point) up to `high`.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub low: i64,
    pub high: i64,
}

impl Bounds {
    /// Streams without watermarks: everything staged.
    pub const ALL: Bounds = Bounds { low: i64::MIN, high: i64::MAX };

    /// `merge_source`'s parameters: staged rows up to `seq` within these bounds.
    pub fn source_binds(self, seq: i64) -> [Bind; 3] {
        [Bind::I64(seq), Bind::I64(self.low), Bind::I64(self.high)]
    }
}

/// `merge_watermark`: the highest staged row the merge consumes and the commit times it spans.
struct Watermark {
    watermark: Option<i64>,
    oldest_commit_ms: Option<i64>,
    newest_commit_ms: Option<i64>,
    /// Staged rows may leave unchanged columns out ([`TableCtx::partial_rows`]).
    partial_rows: bool,
}
from_row!(Watermark { watermark, oldest_commit_ms, newest_commit_ms, partial_rows });

/// `merge_counts`: this transaction's cumulative insert/update/delete counters of the replica.
#[derive(Default, Clone, Copy)]
struct Counters {
    n_tup_ins: i64,
    n_tup_upd: i64,
    n_tup_del: i64,
}
from_row!(Counters { n_tup_ins, n_tup_upd, n_tup_del });

/// A table of the unit as the transaction found it.
struct Member {
    target: Target,
    recorded: Recorded,
    schema: TableSchema,
    /// Its topic's point, when its merges are gated by watermarks.
    gate: Option<TopicPoint>,
    /// While a snapshot of it runs: the highest order key its merge may apply.
    snapshot_cap: Option<i64>,
}

/// `snapshot_cap`: a running snapshot's limit on the table's merges.
struct SnapshotCap {
    cap: i64,
}
from_row!(SnapshotCap { cap });

/// The unit's merge transaction: per table its report, `None` where nothing was left to merge.
pub async fn run(
    wh: &Warehouse,
    conn: &mut Conn,
    targets: &[Target],
    started: DateTime<Utc>,
    t0: Instant,
) -> Result<Vec<Option<MergeReport>>> {
    let sql = &wh.sql;
    let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    let mut tx = conn
        .begin(sql.fixed(Stmt::MergeBegin)?)
        .await
        .with_context(|| format!("merge of {}: BEGIN", names.join(", ")))?;
    let (members, point) = members(wh, &mut tx, targets).await?;
    let mut reports = Vec::new();
    for m in &members {
        let bounds = m.bounds(point);
        check_stopped(m, bounds)?;
        let report = run_table(wh, &mut tx, m, bounds, started, t0).await?;
        if m.gate.is_some() {
            tx.execute(sql.fixed(Stmt::SetMergedPoint)?, &[Bind::Text(m.target.name.clone()), Bind::I64(bounds.high)])
                .await?;
        }
        reports.push(report);
    }
    tx.commit().await.with_context(|| format!("merge of {}: COMMIT", names.join(", ")))?;
    crate::failpoint::hit("merge.committed");
    for r in reports.iter_mut().flatten() {
        r.duration = t0.elapsed();
    }
    Ok(reports)
}

/// The unit's tables as the transaction finds them, and their common point.
async fn members(wh: &Warehouse, tx: &mut Tx<'_>, targets: &[Target]) -> Result<(Vec<Member>, Option<i64>)> {
    let mut members = Vec::new();
    for t in targets {
        members.push(member(wh, tx, t).await?);
    }
    let point = common_point(&members)?;
    Ok((members, point))
}

impl Member {
    /// What its merge applies, given the unit's point. While a snapshot of the table runs, only
    /// changes ordered below the snapshot's rows: a change already applied is then never
    /// overwritten by an older snapshot row (the first merge after the snapshot applies both,
    /// by their order keys).
    fn bounds(&self, point: Option<i64>) -> Bounds {
        let mut bounds = match (&self.gate, point) {
            (Some(_), Some(high)) => Bounds { low: self.recorded.merged_point.unwrap_or(i64::MIN), high },
            _ => Bounds::ALL,
        };
        if let Some(cap) = self.snapshot_cap {
            bounds.high = bounds.high.min(cap).max(bounds.low);
        }
        bounds
    }

    /// Its schema as of the merge's upper bound: columns added upstream after a gated merge's
    /// point are not merged yet (an ungated merge applies everything staged).
    fn schema_at(&self, bounds: Bounds) -> TableSchema {
        if bounds.high == i64::MAX || self.gate.is_none() {
            self.schema.clone()
        } else {
            self.schema.as_of(bounds.high)
        }
    }
}

/// Reads a table's recorded state and, when its merges are gated, its topic's point.
async fn member(wh: &Warehouse, tx: &mut Tx<'_>, t: &Target) -> Result<Member> {
    let table = t.name.as_str();
    let recorded =
        tables::read(&wh.sql, tx, table).await?.ok_or_else(|| anyhow!("table `{table}` is not registered"))?;
    let schema = recorded
        .schema
        .clone()
        .ok_or_else(|| anyhow!("merge of `{table}`: rows are staged but no schema is recorded"))?;
    if schema.column("_tidemark_op").is_some() {
        bail!("table `{table}` has a column named `_tidemark_op`, which tidemark's merge uses itself");
    }
    let topic = consistency::read(&wh.sql, tx, &recorded.topic).await?;
    let gated = t.watermarks.gates(topic.watermarked);
    let cap: Option<SnapshotCap> = tx
        .fetch_optional(wh.sql.fixed(Stmt::SnapshotCap)?, &[Bind::Text(table.into())])
        .await
        .with_context(|| format!("merge of `{table}`: reading whether a snapshot of it runs"))?;
    Ok(Member { target: t.clone(), recorded, schema, gate: gated.then_some(topic), snapshot_cap: cap.map(|c| c.cap) })
}

/// The unit's point: the minimum over its gated tables' topics, and before any of them stops.
fn common_point(members: &[Member]) -> Result<Option<i64>> {
    let mut point: Option<i64> = None;
    for m in members {
        let Some(topic) = &m.gate else { continue };
        let Some(p) = topic.point() else { return Err(Waiting(topic.waiting_for()).into()) };
        let mut p = p;
        if let (Some(_), Some(stop)) = (&m.recorded.stopped, m.recorded.stopped_ts) {
            p = p.min(stop - 1);
        }
        point = Some(point.map_or(p, |q| q.min(p)));
    }
    Ok(point)
}

/// A stopped table refuses, unless its merges are gated and changes before the stop remain.
fn check_stopped(m: &Member, bounds: Bounds) -> Result<()> {
    let Some(reason) = &m.recorded.stopped else { return Ok(()) };
    let before_the_stop = m.gate.is_some() && m.recorded.stopped_ts.is_some_and(|s| bounds.low < s - 1);
    if before_the_stop {
        return Ok(());
    }
    Err(TableStopped { table: m.target.name.clone(), reason: reason.clone() }.into())
}

/// One table's part of the unit's transaction. `None`: nothing staged within its bounds.
async fn run_table(
    wh: &Warehouse,
    tx: &mut Tx<'_>,
    m: &Member,
    bounds: Bounds,
    started: DateTime<Utc>,
    t0: Instant,
) -> Result<Option<MergeReport>> {
    let sql = &wh.sql;
    let table = m.target.name.as_str();
    let schema = m.schema_at(bounds);
    let mut t = TableCtx::new(table, &schema);
    let mut report = MergeReport { table: table.into(), ..Default::default() };
    replica::evolve(wh, tx, &t, &schema, &mut report).await?;

    let wm: Watermark = tx
        .fetch_one(sql.render(Stmt::MergeWatermark, &t, &[])?, &[Bind::I64(bounds.high)])
        .await
        .with_context(|| format!("merge of `{table}`: reading the watermark"))?;
    let Some(watermark) = wm.watermark else {
        return Ok(None);
    };
    t.partial_rows = wm.partial_rows;
    report.watermark = watermark;
    report.point = m.gate.is_some().then_some(bounds.high);
    report.oldest_commit_ms = wm.oldest_commit_ms;
    report.newest_commit_ms = wm.newest_commit_ms;

    apply(wh, tx, &t, bounds, &mut report).await?;
    report.duration = t0.elapsed();
    report.finished_at = Some(Utc::now());
    tx.execute(sql.fixed(Stmt::RecordMerge)?, &record_binds(table, started, "ok", &report, None))
        .await
        .with_context(|| format!("merge of `{table}`: recording the run"))?;
    Ok(Some(report))
}

/// Runs the dialect's [`plan`]: the merge source within `bounds`, the apply, the cleanup; the
/// counts go into `report`.
async fn apply(wh: &Warehouse, tx: &mut Tx<'_>, t: &TableCtx, bounds: Bounds, report: &mut MergeReport) -> Result<()> {
    let table = t.name.as_str();
    let mut baseline = Counters::default();
    for step in plan(wh.dialect()).iter().filter(|s| s.runs_for(t)) {
        let name = step.statement();
        let step_started = Instant::now();
        let text = wh.sql.render(name, t, &[])?;
        let ctx = || format!("merge of `{table}`: statement {}", name.name());
        let source = bounds.source_binds(report.watermark);
        let consumed = [Bind::I64(report.watermark), Bind::I64(bounds.high)];
        match *step {
            Step::Run(_) => {
                tx.execute(text, &[]).await.with_context(ctx)?;
            }
            Step::Bounded(_) | Step::Fill(_) => {
                tx.execute(text, &source).await.with_context(ctx)?;
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
                report.staged_rows = tx.execute(text, &consumed).await.with_context(ctx)?
            }
        }
        debug!(table, statement = name.name(), ms = step_started.elapsed().as_millis() as u64, "merge step");
    }
    Ok(())
}

/// Refused rows set aside per table and merge, at most: the next merge goes on with the rest.
const MAX_REFUSED: usize = 1000;

/// `merge_first_seq`.
struct FirstSeq {
    first_seq: Option<i64>,
}
from_row!(FirstSeq { first_seq });

/// After the unit's merge failed on its data ([`Failure::Data`]: a cast, a constraint or a
/// trigger of the replica): per table, finds the staged rows the replica refuses — trial
/// merges of halves of the staged rows, and halves of those, each undone — and moves them to
/// the dead-letter table with the database's error, so that the next merge applies the rest.
/// A row that is refused only as the last change of its key is found as such; one refused
/// only together with others is not found (the merge then keeps failing, visibly). Returns how
/// many rows were set aside.
pub async fn set_aside_refused(wh: &Warehouse, conn: &mut Conn, targets: &[Target]) -> Result<usize> {
    let sql = &wh.sql;
    let mut tx = conn.begin(sql.fixed(Stmt::MergeBegin)?).await?;
    let (members, point) = members(wh, &mut tx, targets).await?;
    let mut set_aside = 0;
    for m in &members {
        let bounds = m.bounds(point);
        if check_stopped(m, bounds).is_err() {
            continue;
        }
        let table = m.target.name.as_str();
        let schema = m.schema_at(bounds);
        let mut t = TableCtx::new(table, &schema);
        replica::evolve(wh, &mut tx, &t, &schema, &mut MergeReport::default()).await?;
        let wm: Watermark = tx.fetch_one(sql.render(Stmt::MergeWatermark, &t, &[])?, &[Bind::I64(bounds.high)]).await?;
        let Some(last) = wm.watermark else { continue };
        t.partial_rows = wm.partial_rows;
        let first: FirstSeq = tx.fetch_one(sql.render(Stmt::MergeFirstSeq, &t, &[])?, &[Bind::I64(last)]).await?;
        let Some(first) = first.first_seq else { continue };
        let mut ranges = vec![(first, last)];
        let mut refused = Vec::new();
        while let Some((lo, hi)) = ranges.pop() {
            match trial(wh, &mut tx, &t, bounds, lo, hi).await? {
                None => {}
                Some(error) if lo == hi => refused.push((lo, error)),
                Some(_) => {
                    let mid = lo + (hi - lo) / 2;
                    ranges.push((mid + 1, hi));
                    ranges.push((lo, mid));
                }
            }
            if refused.len() >= MAX_REFUSED {
                break;
            }
        }
        for (seq, error) in &refused {
            tracing::warn!(table, staged_row = seq, %error, "the replica refuses a staged change: moved to the dead-letter table");
            let args =
                [Bind::Text(table.into()), Bind::Text(format!("the replica refused it: {error}")), Bind::I64(*seq)];
            tx.execute(sql.render(Stmt::MergeRefuseRow, &t, &[])?, &args).await?;
            tx.execute(sql.render(Stmt::MergeUnstageRow, &t, &[])?, &[Bind::I64(*seq)]).await?;
        }
        set_aside += refused.len();
    }
    tx.commit().await.context("setting refused staged rows aside: COMMIT")?;
    Ok(set_aside)
}

/// Merges the staged rows `from ..= to` (within `bounds`) into the replica and undoes it:
/// `Some(error)` when the database refuses their data.
async fn trial(
    wh: &Warehouse,
    tx: &mut Tx<'_>,
    t: &TableCtx,
    bounds: Bounds,
    from: i64,
    to: i64,
) -> Result<Option<String>> {
    let sql = &wh.sql;
    tx.execute(sql.fixed(Stmt::MergeTrialBegin)?, &[]).await?;
    let tried: Result<()> = async {
        tx.execute(sql.render(Stmt::MergeDropSource, t, &[])?, &[]).await?;
        let [seq, low, high] = bounds.source_binds(to);
        let source = sql.render(Stmt::MergeSource, t, &[("from_seq", true.into())])?;
        tx.execute(source, &[seq.clone(), low.clone(), high.clone(), Bind::I64(from)])
            .await
            .context("statement merge_source")?;
        if t.partial_rows {
            let fill = sql.render(Stmt::MergeFill, t, &[("from_seq", true.into())])?;
            tx.execute(fill, &[seq, low, high, Bind::I64(from)]).await.context("statement merge_fill")?;
        }
        for step in plan(wh.dialect()).iter().filter(|s| s.changes_replica()) {
            let name = step.statement();
            tx.execute(sql.render(name, t, &[])?, &[]).await.with_context(|| format!("statement {}", name.name()))?;
        }
        Ok(())
    }
    .await;
    tx.execute(sql.fixed(Stmt::MergeTrialEnd)?, &[]).await?;
    match tried {
        Ok(()) => Ok(None),
        Err(e) if Failure::of(&e) == Failure::Data => Ok(Some(format!("{e:#}"))),
        Err(e) => Err(e),
    }
}
