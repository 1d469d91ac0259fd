//! `tidemark status`: per table, what is staged and what the last merge did — read from the
//! warehouse's metadata tables only, so it works from any machine while `run` runs elsewhere.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Table;
use crate::db::Bind;
use crate::sql::TableCtx;
use crate::warehouse::Warehouse;

#[derive(Debug, Clone, Serialize)]
pub struct TableStatus {
    pub table: String,
    pub topic: String,
    /// False until `run` has registered the table in this warehouse.
    pub registered: bool,
    pub staged_rows: i64,
    /// Upstream commit time of the oldest staged change (UTC).
    pub oldest_staged_commit: Option<DateTime<Utc>>,
    pub oldest_staged_age_s: Option<f64>,
    pub last_merge: Option<LastMerge>,
    pub dead_letters: i64,
    /// Why the table's merges are stopped, if they are.
    pub stopped: Option<String>,
    /// How far the replica is behind upstream: seconds from the upstream commit of the newest
    /// change the replica holds (by the last successful merge) to now.
    pub replica_lag_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastMerge {
    /// UTC, as recorded.
    pub finished_at: String,
    pub status: String,
    pub staged_rows: i64,
    pub inserted: i64,
    pub updated: i64,
    pub deleted: i64,
    pub duration_ms: i64,
    pub error: Option<String>,
    /// Upstream commit time of the newest change it applied (UTC).
    pub newest_commit: Option<DateTime<Utc>>,
}

/// A `tidemark run` process, from its heartbeat.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceStatus {
    pub instance: String,
    pub host: String,
    pub pid: i64,
    /// UTC.
    pub started_at: String,
    /// `running`, `waiting for … since … (error)`, or `stopped`.
    pub state: String,
    pub seen_s_ago: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub tables: Vec<TableStatus>,
    /// The `run` processes heard from in the last day.
    pub instances: Vec<InstanceStatus>,
    /// Dead letters no configured table took (`tidemark dead-letters --table ''`).
    pub unrouted_dead_letters: i64,
}

/// An instance silent for longer than this (three heartbeats) is not running, whatever its last
/// state said.
const SILENT_S: f64 = 15.0;

pub async fn collect(wh: &Warehouse, tables: &[Table]) -> Result<Status> {
    let instances = wh
        .pool
        .fetch(wh.sql.fixed("status_instances")?, &[])
        .await
        .context("reading _tidemark_instances")?
        .iter()
        .map(|r| InstanceStatus {
            instance: r[0].to_text().unwrap_or_default(),
            host: r[1].to_text().unwrap_or_default(),
            pid: r[2].as_i64().unwrap_or(0),
            started_at: r[3].to_text().unwrap_or_default(),
            state: r[4].to_text().unwrap_or_default(),
            seen_s_ago: r[5].to_text().and_then(|t| t.parse().ok()).unwrap_or(f64::NAN),
        })
        .collect();
    let unrouted = wh.pool.fetch(wh.sql.fixed("status_unrouted_dead_letters")?, &[]).await?;
    Ok(Status {
        tables: collect_tables(wh, tables).await?,
        instances,
        unrouted_dead_letters: unrouted.first().and_then(|r| r[0].as_i64()).unwrap_or(0),
    })
}

async fn collect_tables(wh: &Warehouse, tables: &[Table]) -> Result<Vec<TableStatus>> {
    let mut out = Vec::new();
    let now = Utc::now();
    for t in tables {
        let name = Bind::Text(t.name.clone());
        let table_row = wh.pool.fetch(wh.sql.fixed("load_key")?, std::slice::from_ref(&name)).await?;
        let registered = !table_row.is_empty();
        let mut s = TableStatus {
            table: t.name.clone(),
            topic: t.topic.clone(),
            registered,
            staged_rows: 0,
            oldest_staged_commit: None,
            oldest_staged_age_s: None,
            last_merge: None,
            dead_letters: 0,
            stopped: table_row.first().and_then(|r| r[1].to_text()),
            replica_lag_s: None,
        };
        if registered {
            let staged = wh
                .pool
                .fetch(wh.sql.render("status_staging", &TableCtx::bare(&t.name), &[])?, &[])
                .await
                .with_context(|| format!("reading the staging table of `{}`", t.name))?;
            if let Some(r) = staged.first() {
                s.staged_rows = r[0].as_i64().unwrap_or(0);
                s.oldest_staged_commit = r[1].as_i64().and_then(DateTime::from_timestamp_millis);
                s.oldest_staged_age_s = s.oldest_staged_commit.map(|c| (now - c).num_milliseconds() as f64 / 1000.0);
            }
            let last = wh.pool.fetch(wh.sql.fixed("status_last_merge")?, std::slice::from_ref(&name)).await?;
            s.last_merge = last.first().map(|r| LastMerge {
                finished_at: r[0].to_text().unwrap_or_default(),
                status: r[1].to_text().unwrap_or_default(),
                staged_rows: r[2].as_i64().unwrap_or(0),
                inserted: r[3].as_i64().unwrap_or(0),
                updated: r[4].as_i64().unwrap_or(0),
                deleted: r[5].as_i64().unwrap_or(0),
                duration_ms: r[6].as_i64().unwrap_or(0),
                error: r[7].to_text(),
                newest_commit: r.get(8).and_then(|c| c.as_i64()).and_then(DateTime::from_timestamp_millis),
            });
            let lag = wh.pool.fetch(wh.sql.fixed("status_replica_lag")?, std::slice::from_ref(&name)).await?;
            s.replica_lag_s = lag
                .first()
                .and_then(|r| r[0].as_i64())
                .and_then(DateTime::from_timestamp_millis)
                .map(|c| (now - c).num_milliseconds() as f64 / 1000.0);
        }
        let dead = wh.pool.fetch(wh.sql.fixed("status_dead_letters")?, &[name]).await?;
        s.dead_letters = dead.first().and_then(|r| r[0].as_i64()).unwrap_or(0);
        out.push(s);
    }
    Ok(out)
}

/// Plain text for terminals: the tables, then the instances.
pub fn render(status: &Status) -> String {
    let mut out = render_tables(&status.tables);
    if status.unrouted_dead_letters > 0 {
        let _ = writeln!(
            out,
            "\n{} dead letters of no configured table (`tidemark dead-letters --table ''`)",
            status.unrouted_dead_letters
        );
    }
    if status.instances.is_empty() {
        out.push_str("\nno `tidemark run` heard from in the last day\n");
    }
    for i in &status.instances {
        let silent = i.seen_s_ago.is_nan() || i.seen_s_ago >= SILENT_S;
        let state = if i.state != "stopped" && silent {
            format!("NOT RESPONDING (last said: {})", i.state)
        } else {
            i.state.clone()
        };
        let _ = write!(
            out,
            "\ninstance {} pid {} (started {} UTC, heard {}): {state}",
            i.host,
            i.pid,
            i.started_at,
            format_age(i.seen_s_ago)
        );
    }
    if !status.instances.is_empty() {
        out.push('\n');
    }
    out
}

fn render_tables(statuses: &[TableStatus]) -> String {
    let mut rows = vec![[
        "TABLE".to_string(),
        "STAGED".into(),
        "OLDEST STAGED".into(),
        "LAST MERGE (UTC)".into(),
        "RESULT".into(),
        "ROWS +ins ~upd -del".into(),
        "REPLICA LAG".into(),
        "DEAD LETTERS".into(),
    ]];
    for s in statuses {
        let oldest = match s.oldest_staged_age_s {
            Some(age) => format_age(age),
            None if s.registered => "-".into(),
            None => "not started".into(),
        };
        let (when, mut result, counts) = match &s.last_merge {
            Some(m) => (
                m.finished_at.clone(),
                if m.status == "ok" {
                    "ok".to_string()
                } else {
                    format!("FAILED: {}", m.error.as_deref().unwrap_or("?"))
                },
                format!(
                    "+{} ~{} -{} ({} staged, {} ms)",
                    m.inserted, m.updated, m.deleted, m.staged_rows, m.duration_ms
                ),
            ),
            None => ("never".into(), "-".into(), "-".into()),
        };
        if let Some(why) = &s.stopped {
            result = format!("STOPPED: {why}");
        }
        rows.push([
            s.table.clone(),
            s.staged_rows.to_string(),
            oldest,
            when,
            result,
            counts,
            s.replica_lag_s.map(format_age).map(|a| a.replace(" ago", "")).unwrap_or_else(|| "-".into()),
            s.dead_letters.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..8).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

fn format_age(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.1} s ago")
    } else if s < 7200.0 {
        format!("{:.1} min ago", s / 60.0)
    } else {
        format!("{:.1} h ago", s / 3600.0)
    }
}
