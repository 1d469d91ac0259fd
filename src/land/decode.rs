//! Decoding and routing a batch, outside any transaction: every record becomes staged rows of
//! its table, or a dead letter (or an error, when its table says `on_error = "stop"`).

use tracing::{info, warn};

use super::prepare::{DeadLetter, Prepared, StagedRow, TrailEntry};
use super::{schema_watch, Lander, StopOnRecord};
use crate::codec::Decoded;
use crate::config::{Format, OnError};
use crate::model::change::Change;
use crate::source::RawRecord;
use crate::sql::dialect::Dialect;

/// Why a record cannot land: the table it belongs to, when known, and the reason.
type Refusal = (Option<usize>, String);

impl Lander {
    /// Decodes and routes a batch.
    pub(super) fn prepare(&mut self, batch: &[RawRecord]) -> anyhow::Result<Prepared> {
        let mut p = Prepared::new(self.router.tables.len());
        for rec in batch {
            p.cover(&rec.topic, rec.partition, rec.offset);
            if let Err((table, error)) = self.prepare_one(rec, &mut p) {
                let policy = match table {
                    Some(ti) => self.router.tables[ti].on_error,
                    None => self.router.on_error(&rec.topic),
                };
                let where_ = format!("{} partition {} offset {}", rec.topic, rec.partition, rec.offset);
                if policy == OnError::Stop {
                    return Err(StopOnRecord(format!("record at {where_}: {error} (on_error = \"stop\")")).into());
                }
                warn!(topic = %rec.topic, partition = rec.partition, offset = rec.offset, %error, "record sent to the dead-letter table");
                p.dead.push(DeadLetter {
                    table: table.map(|ti| self.router.tables[ti].name.clone()),
                    topic: rec.topic.clone(),
                    partition: rec.partition,
                    offset: rec.offset,
                    key: rec.key.clone(),
                    value: rec.value.clone(),
                    error,
                });
            }
        }
        Ok(p)
    }

    /// One record's rows; all changes of one record land or dead-letter together.
    fn prepare_one(&mut self, rec: &RawRecord, p: &mut Prepared) -> Result<(), Refusal> {
        let format = self.router.format(&rec.topic);
        let hints = if format == Format::Debezium { self.hints(&rec.topic) } else { None };
        let decoder = self.decoders.get_mut(&format).ok_or((None, format!("no decoder for format {format}")))?;
        let decoded =
            decoder.decode(rec.key.as_deref(), rec.value.as_deref(), hints.as_deref()).map_err(|e| (None, e))?;
        let events = match decoded {
            Decoded::Rows(events) => events,
            Decoded::Ddl { db, table, sql, commit_ts } => {
                info!(topic = %rec.topic, partition = rec.partition, offset = rec.offset, db, table, sql, commit_ts, "upstream DDL");
                return Ok(());
            }
            Decoded::Watermark { .. } => return Ok(()),
        };
        let mut staged = Vec::new();
        for ev in events {
            let ti = self.router.route(&rec.topic, &ev.source_db, &ev.source_table).map_err(|e| (None, e))?;
            let table = &self.router.tables[ti];
            let changes = ev.into_changes(table.key.as_deref()).map_err(|e| (Some(ti), e))?;
            for c in changes {
                staged.push((ti, self.stage_change(ti, rec, c, p).map_err(|e| (Some(ti), e))?));
            }
        }
        if let Some((_, first)) = staged.first() {
            let entry = TrailEntry { offset: rec.offset, own_key: first.commit_ts };
            p.trail.entry((rec.topic.clone(), rec.partition)).or_default().push(entry);
        }
        for (ti, row) in staged {
            p.rows[ti].push(row);
        }
        Ok(())
    }

    /// A change checked against its table's schema, its values held to the recorded types.
    fn stage_change(
        &mut self,
        ti: usize,
        rec: &RawRecord,
        mut c: Change,
        p: &mut Prepared,
    ) -> Result<StagedRow, String> {
        let name = &self.router.tables[ti].name;
        schema_watch::check(&self.caches[ti], ti, name, &c, &mut p.news)?;
        schema_watch::conform(&mut self.caches[ti], &mut c)?;
        if self.wh.dialect() == Dialect::Postgres {
            if let Some(col) = c.column_with_nul() {
                return Err(format!("column `{col}` holds the NUL character (U+0000), which PostgreSQL cannot store"));
            }
        }
        let commit_ts = match c.commit_ts {
            Some(ts) => Some(i64::try_from(ts).map_err(|_| format!("commit ts {ts} is out of range"))?),
            None => None,
        };
        Ok(StagedRow {
            topic: rec.topic.clone(),
            partition: rec.partition,
            offset: rec.offset,
            sub: c.sub as i16,
            commit_ts,
            commit_ms: c.commit_ms,
            op: c.op.code(),
            key: c.key_json(),
            row: c.row_json(),
        })
    }
}
