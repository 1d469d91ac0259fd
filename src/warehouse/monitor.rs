//! What the warehouse's metadata says about progress — staged rows, the last merge, how far the
//! replica is behind, dead letters, the `run` instances — as `tidemark status` and the service's
//! gauges read it. Read-only.

use anyhow::{Context, Result};

use super::db::Bind;
use super::Warehouse;
use crate::from_row;
use crate::sql::{Stmt, TableCtx};

/// `status_staging`: rows waiting in a table's staging.
#[derive(Debug, Clone, Default)]
pub struct Staged {
    pub staged_rows: i64,
    /// Upstream commit time (epoch ms) of the oldest (first landed) staged change.
    pub oldest_commit_ms: Option<i64>,
}
from_row!(Staged { staged_rows, oldest_commit_ms });

/// `status_last_merge`: a table's latest merge.
#[derive(Debug, Clone)]
pub struct LastMergeRow {
    /// UTC, as text.
    pub finished_at: String,
    pub status: String,
    pub staged_rows: i64,
    pub inserted: i64,
    pub updated: i64,
    pub deleted: i64,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub newest_commit_ms: Option<i64>,
}
from_row!(LastMergeRow {
    finished_at,
    status,
    staged_rows,
    inserted,
    updated,
    deleted,
    duration_ms,
    error,
    newest_commit_ms
});

/// `status_replica_lag`: the upstream commit time of the newest change the replica holds.
#[derive(Debug, Clone)]
pub struct Newest {
    pub newest_commit_ms: Option<i64>,
}
from_row!(Newest { newest_commit_ms });

/// `status_instances`: a `run` process's heartbeat.
#[derive(Debug, Clone)]
pub struct InstanceRow {
    pub instance: String,
    pub host: String,
    pub pid: i64,
    /// UTC, as text.
    pub started_at: String,
    pub state: String,
    pub seen_s_ago: f64,
}
from_row!(InstanceRow { instance, host, pid, started_at, state, seen_s_ago });

/// A count of dead letters.
#[derive(Debug, Clone)]
pub struct DeadCount {
    pub dead_letters: i64,
}
from_row!(DeadCount { dead_letters });

/// How far a watermark-gated table is consistent.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Consistency {
    /// The replica holds the upstream table exactly as of this commit ts (TSO).
    pub point: Option<i64>,
    /// Its wall-clock time.
    pub as_of: Option<chrono::DateTime<chrono::Utc>>,
    /// The partition the topic's point waits for, with its watermark and since when.
    pub held_back_by: Option<String>,
}

/// `staged_up_to`.
struct StagedUpTo {
    staged: bool,
}
from_row!(StagedUpTo { staged });

impl Warehouse {
    /// Where a table whose merges are gated by watermarks is consistent: its topic's point when
    /// everything up to it is merged, else the point of its last merge. `None` for a table whose
    /// merges are not gated (`gated`: its policy says so, given whether the topic carries
    /// watermarks).
    pub async fn consistency(&self, table: &str, gated: impl Fn(bool) -> bool) -> Result<Option<Consistency>> {
        let Some(recorded) = self.table(table).await? else { return Ok(None) };
        let topic = super::consistency::read_now(&self.sql, &self.pool, &recorded.topic).await?;
        if !gated(topic.watermarked) {
            return Ok(None);
        }
        let point = match topic.point() {
            Some(now) => {
                let up_to: StagedUpTo = self
                    .pool
                    .fetch_one(self.sql.render(Stmt::StagedUpTo, &TableCtx::bare(table), &[])?, &[Bind::I64(now)])
                    .await?;
                if up_to.staged {
                    recorded.merged_point
                } else {
                    Some(now.max(recorded.merged_point.unwrap_or(i64::MIN)))
                }
            }
            None => recorded.merged_point,
        };
        let held_back_by = topic.holder().map(|h| match h.watermark {
            None => format!("topic {} partition {}: no watermark yet", topic.topic, h.partition),
            Some(w) => format!(
                "topic {} partition {}: watermark {} (since {} UTC)",
                topic.topic,
                h.partition,
                crate::model::tso::describe(w),
                h.since.as_deref().unwrap_or("?")
            ),
        });
        let held_back_by = held_back_by.or_else(|| topic.partitions.is_none().then(|| topic.waiting_for()));
        Ok(Some(Consistency { point, as_of: point.and_then(crate::model::tso::time), held_back_by }))
    }

    /// What is staged for `table`.
    pub async fn staged(&self, table: &str) -> Result<Staged> {
        self.pool
            .fetch_one(self.sql.render(Stmt::StatusStaging, &TableCtx::bare(table), &[])?, &[])
            .await
            .with_context(|| format!("reading the staging table of `{table}`"))
    }

    /// The latest merge of `table`, if it has had one.
    pub async fn last_merge(&self, table: &str) -> Result<Option<LastMergeRow>> {
        self.pool.fetch_optional(self.sql.fixed(Stmt::StatusLastMerge)?, &[Bind::Text(table.into())]).await
    }

    /// The upstream commit time (epoch ms) of the newest change `table`'s replica holds, by
    /// the merges of every instance.
    pub async fn newest_merged(&self, table: &str) -> Result<Option<i64>> {
        let row: Option<Newest> =
            self.pool.fetch_optional(self.sql.fixed(Stmt::StatusReplicaLag)?, &[Bind::Text(table.into())]).await?;
        Ok(row.and_then(|r| r.newest_commit_ms))
    }

    /// Dead letters filed under `table`.
    pub async fn dead_letters(&self, table: &str) -> Result<i64> {
        let row: DeadCount =
            self.pool.fetch_one(self.sql.fixed(Stmt::StatusDeadLetters)?, &[Bind::Text(table.into())]).await?;
        Ok(row.dead_letters)
    }

    /// Dead letters no configured table took.
    pub async fn unrouted_dead_letters(&self) -> Result<i64> {
        let row: DeadCount = self.pool.fetch_one(self.sql.fixed(Stmt::StatusUnroutedDeadLetters)?, &[]).await?;
        Ok(row.dead_letters)
    }

    /// The `run` processes heard from in the last day.
    pub async fn instances(&self) -> Result<Vec<InstanceRow>> {
        self.pool.fetch_as(self.sql.fixed(Stmt::StatusInstances)?, &[]).await.context("reading _tidemark_instances")
    }
}
