//! `tidemark status`: per table, what is staged and what the last merge did — read from the
//! warehouse's metadata tables only, so it works from any machine while `run` runs elsewhere.

use std::fmt::Write as _;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Table;
use crate::source::ends::{pending, Ends};
use crate::warehouse::monitor::Consistency;
use crate::warehouse::Warehouse;

#[derive(Debug, Clone, Serialize)]
pub struct TableStatus {
    pub table: String,
    pub topic: String,
    /// False until `run` has registered the table in this warehouse.
    pub registered: bool,
    pub staged_rows: i64,
    /// Why its staging table could not be read (then `staged_rows` says nothing).
    pub staging_error: Option<String>,
    /// Upstream commit time of the oldest staged change (UTC).
    pub oldest_staged_commit: Option<DateTime<Utc>>,
    pub oldest_staged_age_s: Option<f64>,
    pub last_merge: Option<LastMerge>,
    pub dead_letters: i64,
    /// Why the table's merges are stopped, if they are.
    pub stopped: Option<String>,
    /// How far the replica is behind upstream: 0 when nothing is pending (`up_to_date`); else,
    /// where the stream carries watermarks, seconds from the point the replica is consistent as
    /// of to now (it keeps moving while upstream is idle); otherwise from the upstream commit of
    /// the newest change it holds.
    pub replica_lag_s: Option<f64>,
    /// Its consistency group, if any (merged together with the group's other tables).
    pub group: Option<String>,
    /// Where its stream carries watermarks: the point the replica is consistent as of, and what
    /// holds the point back.
    pub consistency: Option<Consistency>,
    /// Changes dropped at landing as re-sends (below their partition's watermark).
    pub resent: i64,
    /// Records of its topic the brokers hold that have not landed yet; `None` when the brokers
    /// were not asked, did not answer, or do not have the topic.
    pub pending_in_kafka: Option<i64>,
    /// Nothing is pending: every record of its topic has landed and every staged change is
    /// merged (then `replica_lag_s` is 0 — an idle upstream is not lag).
    pub up_to_date: bool,
    /// Why the stream cannot be ordered exactly, if tidemark found out.
    pub ordering_warning: Option<String>,
    /// Its topic's partitions as `run` last read them from the brokers; `None`: `run` has not
    /// seen the topic (it does not exist yet — Debezium and TiCDC create it with its first
    /// change — or no `run` has looked).
    pub topic_partitions: Option<i32>,
    /// Its last snapshot from upstream (`tidemark snapshot`, `verify --fix`), if any.
    pub snapshot: Option<SnapshotStatus>,
}

/// A table's last snapshot, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotStatus {
    pub source: String,
    /// Not done yet: it runs, or was stopped and resumes when run again; merges meanwhile apply
    /// only changes ordered below its rows.
    pub running: bool,
    pub rows_landed: i64,
    pub chunks: i64,
    /// UTC.
    pub started_at: String,
    pub done_at: Option<String>,
    /// Where upstream was as it read (a TSO, a binlog position).
    pub point: Option<String>,
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
    /// Why the brokers did not say what they hold, if they were asked and did not (then
    /// `pending_in_kafka` is unknown).
    pub brokers_unanswered: Option<String>,
}

/// An instance silent for longer than this (three heartbeats) is not running, whatever its last
/// state said.
const SILENT_S: f64 = 15.0;

/// The status as the warehouse alone says it (nothing asked of the brokers).
pub async fn collect(wh: &Warehouse, tables: &[Table]) -> Result<Status> {
    collect_with(wh, tables, None).await
}

/// The status, with what the brokers hold (`ends`, when they answered): how many records of each
/// topic have not landed yet, and so whether a replica is up to date.
pub async fn collect_with(wh: &Warehouse, tables: &[Table], ends: Option<&Ends>) -> Result<Status> {
    let instances = wh
        .instances()
        .await?
        .into_iter()
        .map(|r| InstanceStatus {
            instance: r.instance,
            host: r.host,
            pid: r.pid,
            started_at: r.started_at,
            state: r.state,
            seen_s_ago: r.seen_s_ago,
        })
        .collect();
    let landed = match ends {
        Some(_) => wh.offsets().await?,
        None => Default::default(),
    };
    let mut statuses = Vec::new();
    for t in tables {
        let mut s = table_status(wh, t).await?;
        s.pending_in_kafka = ends.and_then(|e| pending(e, &landed, &t.topic));
        if s.pending_in_kafka == Some(0) && s.staged_rows == 0 && s.staging_error.is_none() && s.registered {
            s.up_to_date = true;
            s.replica_lag_s = Some(0.0);
        }
        statuses.push(s);
    }
    Ok(Status {
        tables: statuses,
        instances,
        unrouted_dead_letters: wh.unrouted_dead_letters().await?,
        brokers_unanswered: None,
    })
}

async fn table_status(wh: &Warehouse, t: &Table) -> Result<TableStatus> {
    let now = Utc::now();
    let age = |c: DateTime<Utc>| (now - c).num_milliseconds() as f64 / 1000.0;
    let state = wh.table(&t.name).await?;
    let mut s = TableStatus {
        table: t.name.clone(),
        topic: t.topic.clone(),
        registered: state.is_some(),
        staged_rows: 0,
        staging_error: None,
        oldest_staged_commit: None,
        oldest_staged_age_s: None,
        last_merge: None,
        dead_letters: wh.dead_letters(&t.name).await?,
        stopped: state.as_ref().and_then(|s| s.stopped.clone()),
        replica_lag_s: None,
        group: t.group.clone(),
        consistency: None,
        resent: state.as_ref().map_or(0, |s| s.resent),
        pending_in_kafka: None,
        up_to_date: false,
        ordering_warning: state.as_ref().and_then(|s| s.ordering_warning.clone()),
        topic_partitions: crate::warehouse::consistency::read_now(&wh.sql, &wh.pool, &t.topic)
            .await?
            .partitions
            .filter(|&n| n > 0),
        snapshot: crate::reconcile::snapshot::state(wh, &t.name).await?.map(|r| SnapshotStatus {
            source: r.source,
            running: r.done_at.is_none(),
            rows_landed: r.rows_landed,
            chunks: r.chunks,
            started_at: r.started_at,
            done_at: r.done_at,
            point: r.point,
        }),
    };
    if state.is_none() {
        return Ok(s);
    }
    // A staging table that cannot be read (gone, no permission) is this table's problem, said
    // in its row: the other tables' status still shows.
    match wh.staged(&t.name).await {
        Ok(staged) => {
            s.staged_rows = staged.staged_rows;
            s.oldest_staged_commit = staged.oldest_commit_ms.and_then(DateTime::from_timestamp_millis);
            s.oldest_staged_age_s = s.oldest_staged_commit.map(age);
        }
        Err(e) => s.staging_error = Some(format!("{e:#}")),
    }
    s.last_merge = wh.last_merge(&t.name).await?.map(|m| LastMerge {
        finished_at: m.finished_at,
        status: m.status,
        staged_rows: m.staged_rows,
        inserted: m.inserted,
        updated: m.updated,
        deleted: m.deleted,
        duration_ms: m.duration_ms,
        error: m.error,
        newest_commit: m.newest_commit_ms.and_then(DateTime::from_timestamp_millis),
    });
    s.replica_lag_s = wh.newest_merged(&t.name).await?.and_then(DateTime::from_timestamp_millis).map(age);
    if s.staging_error.is_none() {
        s.consistency = wh.consistency(&t.name, |watermarked| t.watermarks.gates(watermarked)).await?;
    }
    // Where the stream carries watermarks the replica is upstream as of its point, which keeps
    // moving while upstream is idle (TiCDC sends watermarks all the same): that is its lag, not
    // the age of the newest change it holds.
    if let Some(as_of) = s.consistency.as_ref().and_then(|c| c.as_of) {
        s.replica_lag_s = Some(age(as_of).max(0.0));
    }
    Ok(s)
}

/// A running `run` has looked at the brokers and not found the table's topic.
fn missing_topic(status: &Status, s: &TableStatus) -> bool {
    let running = status.instances.iter().any(|i| i.state != "stopped" && i.seen_s_ago < SILENT_S);
    running && s.registered && s.topic_partitions.is_none()
}

/// Plain text for terminals: the tables, then the instances.
pub fn render(status: &Status) -> String {
    let mut out = render_tables(&status.tables);
    for s in &status.tables {
        if let Some(c) = &s.consistency {
            let group = s.group.as_ref().map(|g| format!(" (group {g})")).unwrap_or_default();
            let point = match (c.point, c.as_of) {
                (Some(p), Some(t)) => format!("consistent as of TSO {p} ({} UTC)", t.format("%Y-%m-%d %H:%M:%S%.3f")),
                _ => "not consistent as of any point yet".to_string(),
            };
            let _ = write!(out, "\n{}{group}: {point}", s.table);
            if let Some(h) = &c.held_back_by {
                let _ = write!(out, "; the point waits for {h}");
            }
        }
        if s.resent > 0 {
            let _ =
                write!(out, "\n{}: {} re-sent changes dropped (below their partition's watermark)", s.table, s.resent);
        }
        if let Some(w) = &s.ordering_warning {
            let _ = write!(out, "\n{}: WARNING: {w}", s.table);
        }
        if let Some(snap) = &s.snapshot {
            let _ = match &snap.done_at {
                None => write!(
                    out,
                    "\n{}: snapshot from {} NOT DONE (begun {} UTC): {} rows in {} chunks landed; its merges apply only \
                     changes ordered below its rows until it is (run `tidemark snapshot --table {}` to resume it)",
                    s.table, snap.source, snap.started_at, snap.rows_landed, snap.chunks, s.table
                ),
                Some(done) => write!(
                    out,
                    "\n{}: snapshot from {} done {done} UTC: {} rows",
                    s.table, snap.source, snap.rows_landed
                ),
            };
        }
        if missing_topic(status, s) {
            let _ = write!(
                out,
                "\n{}: topic {} does not exist yet (as `run` last read the brokers; it is read within seconds of \
                 being created — Debezium and TiCDC create a table's topic with its first change)",
                s.table, s.topic
            );
        }
    }
    let noted = |s: &TableStatus| {
        s.consistency.is_some()
            || s.resent > 0
            || s.ordering_warning.is_some()
            || s.snapshot.is_some()
            || missing_topic(status, s)
    };
    if status.tables.iter().any(noted) {
        out.push('\n');
    }
    if status.unrouted_dead_letters > 0 {
        let _ = writeln!(
            out,
            "\n{} dead letters of no configured table (`tidemark dead-letters --table ''`)",
            status.unrouted_dead_letters
        );
    }
    if let Some(e) = &status.brokers_unanswered {
        let _ = writeln!(out, "\nthe brokers did not say what they hold (IN KAFKA: ?): {e}");
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
        "IN KAFKA".into(),
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
        if let Some(e) = &s.staging_error {
            result = format!("{result}; STAGING UNREADABLE: {e}");
        }
        rows.push([
            s.table.clone(),
            s.pending_in_kafka.map_or_else(|| "?".into(), |n| n.to_string()),
            if s.staging_error.is_some() { "?".into() } else { s.staged_rows.to_string() },
            oldest,
            when,
            result,
            counts,
            match s.replica_lag_s {
                _ if s.up_to_date => "up to date".into(),
                Some(lag) => format_age(lag).replace(" ago", ""),
                None => "-".into(),
            },
            s.dead_letters.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..9).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
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
