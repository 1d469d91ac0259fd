//! The demo's verdict: every replica table against the generator's model of upstream, and the
//! summary it prints.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{anyhow, Result};

use super::workload::{self, Workload};
use super::DemoArgs;
use crate::from_row;
use crate::model::change::Value;
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
    /// Merges checked against upstream as of their point, and what differed.
    pub as_of: Option<(u64, Vec<String>)>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.mismatches == 0 && self.staged_left == 0 && self.as_of.as_ref().is_none_or(|(_, m)| m.is_empty())
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
    Ok(Verdict { lines, mismatches, staged_left, merges: merge_stats(wh).await?, as_of: None })
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
    if let Some((checked, m)) = &v.as_of {
        if m.is_empty() {
            println!("  as of     after each of {checked} merges, every table equalled upstream as of the merge's point (one TSO for the group)");
        } else {
            println!("  as of     {} differences from upstream as of a merge's point, e.g.:", m.len());
            m.iter().take(5).for_each(|p| println!("              {p}"));
        }
    }
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
    compare_rows(wh, &up.spec, &up.rows).await
}

/// Upstream as of a point: the model's history replayed up to it. After every merge the demo
/// advances it to the point the merge reports and compares every table of the group with it.
pub struct AsOf {
    pub point: u64,
    tables: Vec<BTreeMap<Vec<String>, Vec<Value>>>,
    /// Merges checked, and the rows that differed.
    pub checked: u64,
    pub mismatches: Vec<String>,
}

impl AsOf {
    pub fn new(work: &Workload) -> AsOf {
        AsOf { point: 0, tables: vec![BTreeMap::new(); work.tables.len()], checked: 0, mismatches: Vec::new() }
    }

    /// Compares every table with upstream as of `point` (which only moves forward).
    pub async fn check(&mut self, wh: &Warehouse, work: &mut Workload, point: u64) -> Result<()> {
        for a in work.take_until(point) {
            match a.row {
                Some(row) => self.tables[a.table].insert(a.key, row),
                None => self.tables[a.table].remove(&a.key),
            };
        }
        self.point = self.point.max(point);
        self.checked += 1;
        for (t, rows) in work.tables.iter().zip(&self.tables) {
            let (_, problems) = compare_rows(wh, &t.spec, rows).await?;
            let at = crate::model::tso::describe(point as i64);
            self.mismatches.extend(problems.into_iter().map(|p| format!("{} as of {point} ({at}): {p}", t.spec.table)));
        }
        Ok(())
    }
}

/// The replica table of `spec` against `model`: (replica rows, descriptions of differences).
async fn compare_rows(
    wh: &Warehouse,
    spec: &workload::Spec,
    model: &BTreeMap<Vec<String>, Vec<Value>>,
) -> Result<(usize, Vec<String>)> {
    let name = spec.table;
    let schema = wh.schema(name).await?.ok_or_else(|| anyhow!("no schema recorded for `{name}`"))?;
    let t = TableCtx::new(name, &schema);
    let rows = wh.pool.fetch_rows(wh.sql.render(Stmt::ReplicaRows, &t, &[])?, &[]).await?;
    let pos: Vec<usize> = spec
        .columns
        .iter()
        .map(|(c, _, _)| {
            t.columns.iter().position(|x| x.name == *c).ok_or_else(|| anyhow!("replica `{name}` lacks column {c}"))
        })
        .collect::<Result<_>>()?;
    let mut replica: HashMap<Vec<String>, Vec<Option<String>>> = HashMap::new();
    for r in &rows {
        let texts: Vec<Option<String>> = pos.iter().map(|&i| r.cells()[i].to_text()).collect();
        let key = spec.key.iter().map(|&k| texts[k].clone().unwrap_or_default()).collect();
        replica.insert(key, texts);
    }
    let mut problems = Vec::new();
    for (key, want) in model {
        let want: Vec<Option<String>> = want
            .iter()
            .map(|v| match v {
                crate::model::change::Value::Null | crate::model::change::Value::Unchanged => None,
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
