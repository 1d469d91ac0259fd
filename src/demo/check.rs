//! The demo's verdict: every replica table against the generator's model of upstream, and the
//! summary it prints.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{anyhow, Result};

use super::workload::{self, Workload};
use super::DemoArgs;
use crate::from_row;
use crate::service::pipeline::ConsumeStats;
use crate::sql::{DemoStmt, Sql, Stmt, TableCtx, DEMO_TEMPLATES};
use crate::warehouse::Warehouse;

/// `merge_stats`: successful merges and the worst staleness they saw.
pub struct MergeStats {
    pub merges: i64,
    /// Milliseconds from the upstream commit of the oldest change a merge applied to its commit.
    pub worst_staleness_ms: Option<i64>,
}
from_row!(MergeStats { merges, worst_staleness_ms });

pub async fn merge_stats(wh: &Warehouse) -> Result<MergeStats> {
    let sql = Sql::with_sets(wh.dialect(), &[DEMO_TEMPLATES]);
    wh.pool.fetch_one(sql.fixed(DemoStmt::MergeStats)?, &[]).await
}

/// What the demo found.
pub struct Verdict {
    /// Per table: one line, and up to five examples of differences.
    pub lines: Vec<String>,
    pub mismatches: usize,
    pub staged_left: i64,
    pub merges: MergeStats,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.mismatches == 0 && self.staged_left == 0
    }
}

/// Every replica table against the model.
pub async fn verdict(wh: &Warehouse, work: &Workload) -> Result<Verdict> {
    let mut mismatches = 0;
    let mut lines = Vec::new();
    let mut staged_left = 0;
    for t in &work.tables {
        let (n, problems) = compare(wh, t).await?;
        mismatches += problems.len();
        if problems.is_empty() {
            lines.push(format!("  {:<9} {n} rows, equal to upstream", t.spec.table));
        } else {
            lines.push(format!("  {:<9} {n} rows, {} MISMATCHES, e.g.:", t.spec.table, problems.len()));
            lines.extend(problems.iter().take(5).map(|p| format!("              {p}")));
        }
        staged_left += wh.staged(t.spec.table).await?.staged_rows;
    }
    Ok(Verdict { lines, mismatches, staged_left, merges: merge_stats(wh).await? })
}

/// Prints the demo's summary.
pub fn summary(
    args: &DemoArgs,
    work: &Workload,
    v: &Verdict,
    records: i64,
    stats: &ConsumeStats,
    killed: &ConsumeStats,
    took: Duration,
) {
    let c = &work.counts;
    println!("tidemark demo — {:.1} s", took.as_secs_f64());
    println!(
        "  upstream  {} changes: {} inserts, {} updates, {} deletes, {} deletes of unknown keys, {} key changes",
        c.changes, c.inserts, c.updates, c.deletes, c.unknown_deletes, c.key_changes
    );
    println!(
        "  kafka     {records} records on {} partitions: {} re-sent by TiCDC, {} watermarks, {} DDL",
        work.tables.len() as i32 * args.partitions,
        c.resent,
        c.watermarks,
        c.ddl
    );
    println!(
        "  landed    {} staged rows, {} dead letters; after the kill, {} re-delivered records were recognised and dropped",
        stats.staged + killed.staged,
        stats.dead_letters + killed.dead_letters,
        stats.duplicates
    );
    let skipped = stats.skipped_offsets + killed.skipped_offsets;
    if skipped > 0 {
        println!("  LOST      {skipped} records were gone from Kafka before they were read (see the log)");
    }
    println!(
        "  merged    {} merges on a 1 s schedule; worst staleness {:.2} s (upstream commit → visible in the replica); {} rows left staged",
        v.merges.merges,
        v.merges.worst_staleness_ms.unwrap_or(0) as f64 / 1000.0,
        v.staged_left
    );
    for l in &v.lines {
        println!("{l}");
    }
    if v.ok() && skipped == 0 {
        println!("OK: every replica table equals the upstream model");
    } else {
        println!("FAILED: {} rows differ from the upstream model", v.mismatches);
    }
}

/// The replica against the model: (replica rows, descriptions of differences).
pub async fn compare(wh: &Warehouse, up: &workload::Upstream) -> Result<(usize, Vec<String>)> {
    let name = up.spec.table;
    let schema = wh.schema(name).await?.ok_or_else(|| anyhow!("no schema recorded for `{name}`"))?;
    let t = TableCtx::new(name, &schema);
    let rows = wh.pool.fetch_rows(wh.sql.render(Stmt::ReplicaRows, &t, &[])?, &[]).await?;
    let pos: Vec<usize> = up
        .spec
        .columns
        .iter()
        .map(|(c, _, _)| {
            t.columns.iter().position(|x| x.name == *c).ok_or_else(|| anyhow!("replica `{name}` lacks column {c}"))
        })
        .collect::<Result<_>>()?;
    let mut replica: HashMap<Vec<String>, Vec<Option<String>>> = HashMap::new();
    for r in &rows {
        let texts: Vec<Option<String>> = pos.iter().map(|&i| r.cells()[i].to_text()).collect();
        let key = up.spec.key.iter().map(|&k| texts[k].clone().unwrap_or_default()).collect();
        replica.insert(key, texts);
    }
    let mut problems = Vec::new();
    for (key, want) in &up.rows {
        let want: Vec<Option<String>> = want
            .iter()
            .map(|v| match v {
                crate::model::change::Value::Null => None,
                crate::model::change::Value::Text(s) => Some(s.clone()),
                crate::model::change::Value::Bytes(b) => {
                    let mut s = String::new();
                    crate::model::change::push_hex(&mut s, b);
                    Some(s)
                }
            })
            .collect();
        match replica.remove(key) {
            None => problems.push(format!("missing {key:?}")),
            Some(got) if got != want => problems.push(format!("{key:?}: replica {got:?}, upstream {want:?}")),
            Some(_) => {}
        }
    }
    for key in replica.keys() {
        problems.push(format!("extra {key:?} (not upstream)"));
    }
    Ok((rows.len(), problems))
}
