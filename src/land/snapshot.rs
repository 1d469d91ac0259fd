//! Landing rows read from the upstream database (`tidemark snapshot`, `verify --fix`): the same
//! staging rows, schema checks and transaction as Kafka records, at a position of their own
//! (`snapshot:<db>.<table>`, the row's ordinal) and ordered at the snapshot's order key, with
//! the snapshot's progress recorded in the transaction that stages the chunk.

use std::sync::Arc;

use anyhow::{anyhow, Context, Result};

use super::prepare::{DeadLetter, Prepared, SnapshotStep};
use super::write::StaleState;
use super::{LandReport, Lander, STALE_RETRIES};
use crate::model::change::Change;

/// A row upstream holds that cannot land (a value its column type does not take).
#[derive(Debug, Clone)]
pub struct RefusedRow {
    /// The row as upstream returned it, as JSON text (for the dead letter).
    pub row: String,
    pub key: String,
    pub error: String,
}

/// One chunk of a snapshot, ready to land.
pub struct SnapshotChunk {
    /// The replica table.
    pub table: String,
    /// The position its rows are filed under: `snapshot:<db>.<table>`.
    pub topic: Arc<str>,
    /// The ordinal of its first row within the snapshot.
    pub first: i64,
    /// Every row's order key (the snapshot's point; `-1`: before every streamed change).
    pub order_key: i64,
    pub changes: Vec<Change>,
    pub refused: Vec<RefusedRow>,
    pub step: SnapshotStep,
}

impl Lander {
    /// Lands a snapshot chunk in one transaction, with its progress: all of it or none.
    pub async fn land_snapshot(&mut self, chunk: &SnapshotChunk) -> Result<LandReport> {
        let ti = self
            .router
            .tables
            .iter()
            .position(|t| t.name == chunk.table)
            .ok_or_else(|| anyhow!("table `{}` is not one landing knows", chunk.table))?;
        self.refresh().await.context("reading the table's recorded state")?;
        let mut attempt = 0;
        loop {
            let prepared = self.prepare_snapshot(ti, chunk)?;
            match self.commit(&prepared).await {
                Ok((report, versions)) => {
                    self.absorb(prepared, &versions);
                    return Ok(report);
                }
                Err(e) if attempt < STALE_RETRIES && e.downcast_ref::<StaleState>().is_some() => {
                    attempt += 1;
                    self.refresh().await.context("reading the table's recorded state")?;
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!(
                            "landing {} snapshot rows of `{}` (rows {}…) into {}",
                            chunk.changes.len(),
                            chunk.table,
                            chunk.first,
                            self.wh.url
                        )
                    })
                }
            }
        }
    }

    fn prepare_snapshot(&mut self, ti: usize, chunk: &SnapshotChunk) -> Result<Prepared> {
        let mut p = Prepared::new(self.router.tables.len());
        let mut ordinal = chunk.first;
        for c in &chunk.changes {
            let key = c.key_json();
            match self.staged_row(ti, &chunk.topic, 0, ordinal, c.clone(), &mut p) {
                Ok(mut row) => {
                    row.commit_ts = Some(chunk.order_key);
                    p.rows[ti].push(row);
                }
                Err(error) => {
                    let row = c.row_json();
                    p.dead.push(self.snapshot_dead_letter(chunk, ordinal, key, row.unwrap_or_default(), error));
                }
            }
            ordinal += 1;
        }
        for r in &chunk.refused {
            p.dead.push(self.snapshot_dead_letter(chunk, ordinal, r.key.clone(), r.row.clone(), r.error.clone()));
            ordinal += 1;
        }
        p.snapshot = Some(chunk.step.clone());
        Ok(p)
    }

    fn snapshot_dead_letter(
        &self,
        chunk: &SnapshotChunk,
        ordinal: i64,
        key: String,
        row: String,
        error: String,
    ) -> DeadLetter {
        tracing::warn!(table = %chunk.table, key, %error, "an upstream row sent to the dead-letter table");
        DeadLetter {
            table: Some(chunk.table.clone()),
            topic: chunk.topic.clone(),
            partition: 0,
            offset: ordinal,
            key: Some(key.into_bytes()),
            value: Some(row.into_bytes()),
            error,
        }
    }
}
