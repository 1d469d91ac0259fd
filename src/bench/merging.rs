//! The merge against its limit: `tidemark merge` of N staged changes into a replica of N rows,
//! against one hand-written MERGE (SQLite: one upsert and one delete) from an already
//! de-duplicated, typed table — checked to give the same replica.

use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use minijinja::Value as TmplValue;

use super::child::{write_config, Measured};
use super::order_line::TABLE;
use super::report::Runs;
use super::BenchArgs;
use crate::from_row;
use crate::merge::Bounds;
use crate::sql::{BenchStmt, Sql, Stmt, TableCtx, BENCH_TEMPLATES};
use crate::warehouse::db::Bind;
use crate::warehouse::Warehouse;

/// The merge's runs.
#[derive(Debug, Default)]
pub struct MergeRuns {
    /// tidemark's own figure for the merge, s.
    pub tidemark_s: Runs,
    /// The hand-written MERGE from the prepared source, s.
    pub limit_s: Runs,
    pub peak_mib: Runs,
    /// The whole `tidemark merge` process, s.
    pub wall_s: Runs,
    /// Per run, where tidemark's time went (statement and ms).
    pub steps: Vec<String>,
}

/// `differences`: rows in one table and not the other.
struct Differences {
    differences: i64,
}
from_row!(Differences { differences });

fn named<'a>(a: &'a str, b: &'a str) -> [(&'static str, TmplValue); 2] {
    [("a", TmplValue::from(a)), ("b", TmplValue::from(b))]
}

/// Merge runs on the staging landed in `url`. Each run starts from the same replica (N rows) and
/// the same staged changes; the limit runs from a de-duplicated, typed copy of them.
pub async fn merge_runs(args: &BenchArgs, url: &str, n: u64) -> Result<MergeRuns> {
    let wh = Warehouse::open(url).await?;
    let sql = Sql::with_sets(wh.dialect(), &[BENCH_TEMPLATES]);
    let schema = wh.schema(TABLE).await?.ok_or_else(|| anyhow!("nothing landed for {TABLE}"))?;
    let t = TableCtx::new(TABLE, &schema);
    save_start(&wh, &sql, &t, n).await?;
    let mut out = MergeRuns::default();
    for r in 0..args.runs {
        restore_start(&wh, &sql, &t).await?;
        let run = timed_merge(args, url, r).await?;
        out.steps.push(run.steps);
        let limit = reference_merge(&wh, &sql, &t).await?;
        let diff: Differences =
            wh.pool.fetch_one(sql.render(BenchStmt::Differences, &t, &named(TABLE, "bench_ref"))?, &[]).await?;
        if diff.differences != 0 {
            bail!("tidemark's merge and the hand-written one disagree on {} rows", diff.differences);
        }
        out.tidemark_s.push(run.secs);
        out.wall_s.push(run.wall);
        out.limit_s.push(limit);
        out.peak_mib.push(run.peak_mib);
    }
    wh.pool.close().await;
    Ok(out)
}

/// The starting point: the replica with N rows and the staged changes, both saved; the reference
/// replica; and the limit's input, tidemark's own typed last-change-per-key, made once.
async fn save_start(wh: &Warehouse, sql: &Sql, t: &TableCtx, n: u64) -> Result<()> {
    wh.pool.execute(sql.render(Stmt::ReplicaTable, t, &[])?, &[]).await?;
    wh.pool
        .execute(sql.render(BenchStmt::Fill, t, &[])?, &[Bind::I64(n as i64)])
        .await
        .context("filling the replica")?;
    wh.pool.execute(sql.render(BenchStmt::Save, t, &named(TABLE, "bench_replica_saved"))?, &[]).await?;
    wh.pool.execute(sql.render(BenchStmt::Save, t, &named(&t.staging, "bench_staging_saved"))?, &[]).await?;
    let reference = TableCtx { name: "bench_ref".into(), ..t.clone() };
    wh.pool.execute(sql.render(Stmt::ReplicaTable, &reference, &[])?, &[]).await?;
    prepare_source(wh, sql, t).await
}

/// Every run starts from the saved replica and staging.
async fn restore_start(wh: &Warehouse, sql: &Sql, t: &TableCtx) -> Result<()> {
    for (saved, table) in [
        ("bench_replica_saved", TABLE),
        ("bench_staging_saved", t.staging.as_str()),
        ("bench_replica_saved", "bench_ref"),
    ] {
        let mut tx = wh.pool.begin(sql.fixed(Stmt::MergeBegin)?).await?;
        tx.execute(sql.render(BenchStmt::Clear, t, &named(saved, table))?, &[]).await?;
        tx.execute(sql.render(BenchStmt::Restore, t, &named(saved, table))?, &[]).await?;
        tx.commit().await?;
    }
    wh.pool.execute(sql.render(BenchStmt::Analyze, t, &[])?, &[]).await?;
    Ok(())
}

/// One `tidemark merge` run.
struct TimedMerge {
    /// Its own figure ("… in N ms"): the merge, without starting a process and connecting.
    secs: f64,
    wall: f64,
    peak_mib: f64,
    steps: String,
}

async fn timed_merge(args: &BenchArgs, url: &str, r: usize) -> Result<TimedMerge> {
    let config = write_config(
        args,
        &args.brokers,
        "unused",
        url,
        &format!("bench-merge-{r}-{}", std::process::id()),
        "0 0 0 1 1 *",
    )?;
    let log = args.dir.join(format!("bench-merge-{r}.log"));
    let t0 = Instant::now();
    let mut child = Measured::spawn(&config, &["merge", "--table", TABLE], &log)?;
    let status = child.wait().await?;
    let wall = t0.elapsed().as_secs_f64();
    let mut stdout = String::new();
    if let Some(mut o) = child.child.stdout.take() {
        std::io::Read::read_to_string(&mut o, &mut stdout)?;
    }
    let reported = stdout
        .rsplit_once(" in ")
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse::<f64>().ok())
        .map(|ms| ms / 1000.0);
    let Some(secs) = reported.filter(|_| status.success()) else {
        bail!("tidemark merge failed: {stdout} (see {})", log.display());
    };
    // Where its time went, from its own log ("merge step … statement=… ms=…").
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let steps: Vec<String> = text
        .lines()
        .filter(|l| l.contains("merge step"))
        .filter_map(|l| {
            let field = |k: &str| l.split(k).nth(1)?.split_whitespace().next().map(|v| v.trim_matches('"').to_string());
            Some(format!("{} {} ms", field("statement=")?, field("ms=")?))
        })
        .collect();
    Ok(TimedMerge { secs, wall, peak_mib: child.peak_mib(), steps: steps.join(", ") })
}

/// `bench_src`: every staged change's last per key, typed — what tidemark's merge computes
/// before it applies, kept as a table of its own.
async fn prepare_source(wh: &Warehouse, sql: &Sql, t: &TableCtx) -> Result<()> {
    let mut conn = wh.pool.acquire().await?;
    let mut tx = conn.begin(sql.fixed(Stmt::MergeBegin)?).await?;
    if sql.has(Stmt::MergeDropSource) {
        tx.execute(sql.render(Stmt::MergeDropSource, t, &[])?, &[]).await?;
    }
    tx.execute(sql.render(Stmt::MergeSource, t, &[])?, &Bounds::ALL.source_binds(i64::MAX))
        .await
        .context("bench source")?;
    tx.execute(sql.render(BenchStmt::Src, t, &[])?, &[]).await?;
    if sql.has(Stmt::MergeDropSource) {
        tx.execute(sql.render(Stmt::MergeDropSource, t, &[])?, &[]).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The limit: the apply alone, from the prepared source, in one transaction: seconds.
async fn reference_merge(wh: &Warehouse, sql: &Sql, t: &TableCtx) -> Result<f64> {
    let reference = TableCtx { name: "bench_ref".into(), ..t.clone() };
    let mut conn = wh.pool.acquire().await?;
    let mut tx = conn.begin(sql.fixed(Stmt::MergeBegin)?).await?;
    if sql.has(BenchStmt::SrcTemp) {
        tx.execute(sql.render(BenchStmt::SrcTemp, t, &[])?, &[]).await?;
    }
    let t0 = Instant::now();
    for step in [BenchStmt::RefDelete, BenchStmt::RefApply] {
        if sql.has(step) {
            tx.execute(sql.render(step, &reference, &[])?, &[])
                .await
                .with_context(|| format!("bench {}", step.name()))?;
        }
    }
    tx.commit().await?;
    Ok(t0.elapsed().as_secs_f64())
}
