//! The landing transaction — one implementation for every warehouse; the back ends
//! ([`super::postgres`], [`super::sqlite`]) differ only in how offsets are locked and how rows
//! get in. In one transaction it
//! 1. locks the `_tidemark_offsets` rows of the batch's partitions and reads them: a record
//!    below `next_offset` has landed already (a re-delivery after a crash or a rebalance) and
//!    is dropped — so landing is idempotent on source position;
//! 2. records columns and keys the stream showed for the first time, under a lock on each such
//!    table's state that proves landing's copy of it current;
//! 3. appends the staging rows and the dead letters;
//! 4. advances the offsets.
//!
//! It runs on a [`Writer`], an owned copy of what it needs of the lander, so that a large
//! batch's parts are written on a task of their own while the lander decodes the next part.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::{Context, Result};

use super::order::Plan;
use super::prepare::{DeadLetter, Prepared, StagedRow};
use super::schema_watch;
use super::{postgres, sqlite, LandReport, Lander};
use crate::sql::{Stmt, TableCtx};
use crate::warehouse::db::{Bind, Tx};
use crate::warehouse::tables::Version;
use crate::warehouse::Warehouse;

/// Landing's copy of a table's state is older than the warehouse's: reload it, decode again.
#[derive(Debug, thiserror::Error)]
#[error("the recorded state of table `{table}` changed elsewhere (version {seen}, landing had {had:?})")]
pub struct StaleState {
    pub index: usize,
    pub table: String,
    pub seen: i64,
    pub had: Option<i64>,
}

/// Runs `$f` of the transaction's back end.
macro_rules! backend {
    ($tx:expr, $f:ident($($arg:expr),*)) => {
        match $tx {
            Tx::Pg(t) => postgres::$f(t, $($arg),*).await,
            Tx::Lite(t) => sqlite::$f(t, $($arg),*).await,
        }
    };
}

/// What the landing transaction needs of the lander, owned: it can run on a task of its own
/// while the lander decodes the next part of a batch.
pub(super) struct Writer {
    wh: Arc<Warehouse>,
    /// Table names and staging tables, by table index.
    names: Arc<[String]>,
    staging: Arc<[TableCtx]>,
    /// Landing's copy of each table's state version.
    versions: Vec<Option<i64>>,
    watermarked: HashSet<String>,
    partial_recorded: HashSet<usize>,
}

impl Lander {
    /// The landing transaction's view of this lander, as of now.
    pub(super) fn writer(&self) -> Writer {
        Writer {
            wh: self.wh.clone(),
            names: self.names.clone(),
            staging: self.staging.clone(),
            versions: self.caches.iter().map(|c| c.version).collect(),
            watermarked: self.watermarked.clone(),
            partial_recorded: self.partial_recorded.clone(),
        }
    }

    /// [`Writer::commit`] with this lander's state as of now.
    pub(super) async fn commit(&self, p: &Prepared) -> Result<(LandReport, Vec<(usize, i64)>)> {
        self.writer().commit(p).await
    }
}

impl Writer {
    /// Lands a prepared batch in one transaction. Returns what it did and, per table whose
    /// state it recorded, the new state version.
    pub(super) async fn commit(&self, p: &Prepared) -> Result<(LandReport, Vec<(usize, i64)>)> {
        let sql = &self.wh.sql;
        let mut tx = self.wh.pool.begin(sql.fixed(Stmt::LandBegin)?).await?;
        let offsets = backend!(&mut tx, lock_offsets(sql, p)).context("locking the batch's offset rows")?;
        let plan = Plan::new(p, offsets);
        let versions = self.record_schema(&mut tx, p).await?;

        let mut report = LandReport::default();
        for (ti, rows) in p.rows.iter().enumerate() {
            let new: Vec<&StagedRow> = rows.iter().filter(|r| plan.is_fresh(&r.topic, r.partition, r.offset)).collect();
            report.duplicates += rows.len() - new.len();
            let fresh: Vec<&StagedRow> =
                new.iter().copied().filter(|r| !plan.is_resent(&r.topic, r.partition, r.offset)).collect();
            let resent = new.len() - fresh.len();
            if resent > 0 {
                let table = self.names[ti].clone();
                tx.execute(sql.fixed(Stmt::CountResent)?, &[Bind::Text(table.clone()), Bind::I64(resent as i64)])
                    .await?;
                report.resent.insert(table, resent);
            }
            if fresh.is_empty() {
                continue;
            }
            let staging = &self.staging[ti];
            backend!(&mut tx, stage(sql, staging, &fresh, &plan))
                .with_context(|| format!("writing {} rows into {}", fresh.len(), staging.staging))?;
            report.staged.insert(self.names[ti].clone(), fresh.len());
        }
        let dead: Vec<&DeadLetter> = p.dead.iter().filter(|d| plan.is_fresh(&d.topic, d.partition, d.offset)).collect();
        if !dead.is_empty() {
            backend!(&mut tx, dead_letters(sql, &dead)).context("writing dead letters")?;
            report.dead_letters = dead.len();
            report.dead_by_table = dead_by_table(&dead);
        }
        if let Some(step) = &p.snapshot {
            let binds = [
                Bind::Text(step.table.clone()),
                Bind::I64(step.generation),
                Bind::OptText(step.after.clone()),
                Bind::I64(step.rows),
                Bind::Text(step.last.clone()),
            ];
            if tx.execute(sql.fixed(Stmt::SnapshotStep)?, &binds).await? != 1 {
                anyhow::bail!(
                    "the snapshot of `{}` moved on meanwhile (another snapshot or verify --fix of it runs): this chunk is not landed",
                    step.table
                );
            }
        }
        backend!(&mut tx, advance(sql, &plan.advance)).context("advancing offsets")?;
        self.record_stream_events(&mut tx, p, &mut report).await?;
        crate::failpoint::hit("land.written");
        tx.commit().await.context("committing the landing transaction")?;
        report.gaps = plan.gaps.clone();
        report.next_offsets = plan.next_offsets();
        Ok((report, versions))
    }

    /// The topics whose stream carries watermarks (marked once), and upstream DDL — recorded
    /// once however many partitions carried it and however often it is replayed.
    async fn record_stream_events(&self, tx: &mut Tx<'_>, p: &Prepared, report: &mut LandReport) -> Result<()> {
        let sql = &self.wh.sql;
        let mut topics: Vec<&str> = p.watermarks.keys().map(|(t, _)| &**t).collect();
        topics.dedup();
        for topic in topics {
            report.watermarked_topics.push(topic.to_string());
            if self.watermarked.contains(topic) {
                continue;
            }
            tx.execute(sql.fixed(Stmt::TopicWatermarked)?, &[Bind::Text(topic.into())])
                .await
                .with_context(|| format!("recording that topic {topic} carries watermarks"))?;
        }
        for &ti in &p.partial {
            if self.partial_recorded.contains(&ti) {
                continue;
            }
            let table = self.names[ti].clone();
            tx.execute(sql.fixed(Stmt::SetPartialRows)?, &[Bind::Text(table)])
                .await
                .with_context(|| format!("recording that `{}` stages rows with unchanged columns", self.names[ti]))?;
            report.partial_recorded.push(ti);
        }
        for (ti, why) in &p.ordering {
            let table = self.names[*ti].clone();
            tx.execute(sql.fixed(Stmt::SetOrderingWarning)?, &[Bind::Text(table), Bind::Text(why.clone())]).await?;
            report.ordering_warned.push(*ti);
        }
        for d in &p.ddl {
            let binds = [
                Bind::Text(d.topic.to_string()),
                Bind::I64(d.commit_ts),
                Bind::Text(d.query.clone()),
                Bind::Text(d.db.clone()),
                Bind::Text(d.table.clone()),
            ];
            let new = tx.execute(sql.fixed(Stmt::RecordDdl)?, &binds).await.context("recording upstream DDL")?;
            if new > 0 {
                report.ddl += 1;
            } else {
                tracing::debug!(topic = %d.topic, commit_ts = d.commit_ts, "a DDL seen before (replayed, or on another partition)");
            }
        }
        Ok(())
    }

    /// Records the batch's schema news. Each table it touches is locked first and its version
    /// compared with landing's copy: a copy made stale elsewhere is an error ([`StaleState`]),
    /// never a write over what another process recorded. Returns each table's new version.
    async fn record_schema(&self, tx: &mut Tx<'_>, p: &Prepared) -> Result<Vec<(usize, i64)>> {
        let statements = schema_watch::statements(&p.news, |ti| self.names[ti].clone());
        if statements.is_empty() {
            return Ok(Vec::new());
        }
        let sql = &self.wh.sql;
        let mut touched: Vec<usize> = statements.iter().map(|(ti, _)| *ti).collect();
        touched.sort_by(|a, b| self.names[*a].cmp(&self.names[*b]));
        touched.dedup();
        let mut versions = Vec::new();
        for &ti in &touched {
            let table = self.names[ti].clone();
            let Version { version } = tx
                .fetch_one(sql.fixed(Stmt::LockTable)?, &[Bind::Text(table.clone())])
                .await
                .with_context(|| format!("locking the state of `{table}`"))?;
            if Some(version) != self.versions[ti] {
                return Err(StaleState { index: ti, table, seen: version, had: self.versions[ti] }.into());
            }
            versions.push((ti, version + 1));
        }
        for (_, (statement, binds)) in statements {
            tx.execute(sql.fixed(statement)?, &binds)
                .await
                .with_context(|| format!("recording schema news ({})", statement.name()))?;
        }
        for &ti in &touched {
            tx.execute(sql.fixed(Stmt::BumpVersion)?, &[Bind::Text(self.names[ti].clone())]).await?;
        }
        Ok(versions)
    }
}

fn dead_by_table(dead: &[&DeadLetter]) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for d in dead {
        *out.entry(d.table.clone().unwrap_or_default()).or_default() += 1;
    }
    out
}
