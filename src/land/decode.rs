//! Decoding and routing a batch, outside any transaction: every record becomes staged rows of
//! its table, or a dead letter (or an error, when its table says `on_error = "stop"`).

use std::borrow::Cow;

use tracing::{info, warn};

use super::prepare::{DdlEvent, DeadLetter, Prepared, StagedRow, TrailEntry, WatermarkEntry};
use super::{schema_watch, Lander, StopOnRecord};
use crate::codec::debezium::Hints;
use crate::codec::large_message::{ClaimCheck, Compression, Fetched};
use crate::codec::{open_protocol, Decoded, Decoder};
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
                self.refuse(rec, table, error, &mut p)?;
            }
        }
        Ok(p)
    }

    /// A record that cannot land: a dead letter of the table it belongs to (`table`, else
    /// [`Lander::owner_of_refused`]), or — under that table's `on_error = "stop"` — the error
    /// that stops the service.
    pub(super) fn refuse(
        &self,
        rec: &RawRecord,
        table: Option<usize>,
        error: String,
        p: &mut Prepared,
    ) -> anyhow::Result<()> {
        let table = table.or_else(|| self.owner_of_refused(rec));
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
        Ok(())
    }

    /// The configured table a record belongs to although it could not be decoded: the one its
    /// value names (canal-json's `database`/`table`, Debezium's `source.db`/`source.table`),
    /// else its topic's only table — so that its dead letter is filed, counted and listed under
    /// that table, not under "no configured table".
    fn owner_of_refused(&self, rec: &RawRecord) -> Option<usize> {
        let named = rec.value.as_deref().and_then(|v| serde_json::from_slice::<serde_json::Value>(v).ok());
        let names = named.as_ref().and_then(|v| {
            let source = v.get("payload").and_then(|p| p.get("source")).or_else(|| v.get("source"));
            match source {
                Some(s) => Some((s.get("db")?.as_str()?, s.get("table")?.as_str()?)),
                None => Some((v.get("database")?.as_str()?, v.get("table")?.as_str()?)),
            }
        });
        let (db, table) = names.unwrap_or(("", ""));
        self.router.route(&rec.topic, db, table).ok()
    }

    /// One record's rows; all changes of one record land or dead-letter together.
    fn prepare_one(&mut self, rec: &RawRecord, p: &mut Prepared) -> Result<(), Refusal> {
        let format = self.router.format(&rec.topic);
        let hints = if matches!(format, Format::Debezium | Format::DebeziumAvro | Format::Simple) {
            self.hints(&rec.topic)
        } else {
            None
        };
        let (compression, claim_check) = self.router.large_messages(&rec.topic);
        let decoder = self.decoders.get_mut(&format).ok_or((None, format!("no decoder for format {format}")))?;
        let decoded = decode_large(decoder, rec, compression, claim_check, &self.claim_objects, hints.as_deref())
            .map_err(|e| (None, e))?;
        let events = match decoded {
            Decoded::Rows(events) => events,
            Decoded::Ddl { db, table, sql, commit_ts } => {
                info!(topic = %rec.topic, partition = rec.partition, offset = rec.offset, db, table, sql, commit_ts, "upstream DDL");
                if let Some(ts) = commit_ts.and_then(|t| i64::try_from(t).ok()) {
                    p.ddl.push(DdlEvent { topic: rec.topic.clone(), commit_ts: ts, query: sql, db, table });
                }
                return Ok(());
            }
            Decoded::ClaimCheck { location } => {
                return Err((None, format!("the claim-check object {location} is itself a claim-check reference")))
            }
            Decoded::Watermark { ts } => {
                let ts = i64::try_from(ts).map_err(|_| (None, format!("watermark {ts} is out of range")))?;
                let entry = WatermarkEntry { offset: rec.offset, ts };
                p.watermarks.entry((rec.topic.clone(), rec.partition)).or_default().push(entry);
                return Ok(());
            }
        };
        let mut staged = Vec::new();
        for ev in events {
            let ti = self.router.route(&rec.topic, &ev.source_db, &ev.source_table).map_err(|e| (None, e))?;
            let Some(ev) = self.resolve_key_only(ti, ev).map_err(|e| (Some(ti), e))? else { continue };
            let table = &self.router.tables[ti];
            // A record that names no key (TiCDC's simple protocol before its table's BOOTSTRAP)
            // takes the configured one, else the one recorded.
            let recorded = if ev.key_names.is_empty() { self.caches[ti].key() } else { None };
            let changes = ev.into_changes(table.key.as_deref().or(recorded)).map_err(|e| (Some(ti), e))?;
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

    /// Streams without watermarks: one key on two partitions is said once per table.
    fn watch_ordering(&mut self, ti: usize, rec: &RawRecord, key: &str, p: &mut Prepared) {
        let table = &self.router.tables[ti];
        if !table.watermarks.gates(self.watermarked.contains(&table.topic)) && !p.ordering.iter().any(|(t, _)| *t == ti)
        {
            if let Some(other) = self.key_partitions.observe(ti, key, rec.partition) {
                let why = format!(
                    "key {key} of `{}` arrived on partitions {other} and {} of topic {}: the changefeed does not \
                     dispatch a key to one partition (index-value or table), and the stream carries no watermarks, \
                     so a lagging partition can apply an older change after a newer one; enable TiCDC's \
                     enable-tidb-extension (watermarks) or index-value dispatch",
                    table.name, rec.partition, rec.topic
                );
                tracing::warn!(table = %table.name, topic = %rec.topic, "{why}");
                p.ordering.push((ti, why));
            }
        }
    }

    /// A change of a record, staged ([`Lander::staged_row`]); its key watched for partitions.
    fn stage_change(&mut self, ti: usize, rec: &RawRecord, c: Change, p: &mut Prepared) -> Result<StagedRow, String> {
        let row = self.staged_row(ti, &rec.topic, rec.partition, rec.offset, c, p)?;
        self.watch_ordering(ti, rec, &row.key, p);
        Ok(row)
    }

    /// A change checked against its table's schema, its values held to the recorded types, as
    /// the staging row at this position.
    pub(super) fn staged_row(
        &mut self,
        ti: usize,
        topic: &std::sync::Arc<str>,
        partition: i32,
        offset: i64,
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
        let key = c.key_json();
        if c.is_partial() && !p.partial.contains(&ti) {
            p.partial.push(ti);
        }
        let commit_ts = match c.commit_ts {
            Some(ts) => Some(i64::try_from(ts).map_err(|_| format!("commit ts {ts} is out of range"))?),
            None => None,
        };
        Ok(StagedRow {
            topic: topic.clone(),
            partition,
            offset,
            sub: c.sub as i16,
            commit_ts,
            commit_ms: c.commit_ms,
            op: c.op.code(),
            key,
            row: c.row_json(),
        })
    }
}

/// Decodes a record, undoing TiCDC's large-message handling (`crate::codec::large_message`):
/// values (TiCDC's Debezium protocol: keys too) decompressed, claim-check references replaced by
/// the message their object holds — for the open protocol inside its framing, event by event.
fn decode_large(
    decoder: &mut Decoder,
    rec: &RawRecord,
    compression: Compression,
    claim_check: Option<&ClaimCheck>,
    fetched: &Fetched,
    hints: Option<&Hints>,
) -> Result<Decoded, String> {
    let storage = |location: &str| {
        claim_check.ok_or_else(|| {
            format!(
                "a claim-check message ({location}): configure claim_check_storage = \"file:///…\" or \
                 \"s3://bucket/prefix?…\" (where TiCDC's claim-check-storage-uri is readable) for this table"
            )
        })
    };
    if matches!(decoder, Decoder::OpenProtocol(_)) && (compression != Compression::None || claim_check.is_some()) {
        let key = rec.key.as_deref().ok_or("an open-protocol message without a key")?;
        let claimed = |location: &str| storage(location)?.read_pair(location, fetched);
        let (key, value) = open_protocol::resolve_large(key, rec.value.as_deref(), compression, &claimed)?;
        return decoder.decode(Some(&key), Some(&value), hints);
    }
    let value = inflate(compression, rec.value.as_deref())?;
    let key = if matches!(decoder, Decoder::Debezium(_)) {
        inflate(compression, rec.key.as_deref())?
    } else {
        rec.key.as_deref().map(Cow::Borrowed)
    };
    match decoder.decode(key.as_deref(), value.as_deref(), hints)? {
        Decoded::ClaimCheck { location } => {
            let object = compression.decompress(&storage(&location)?.read(&location, fetched)?)?;
            decoder.decode(key.as_deref(), Some(&object), hints)
        }
        other => Ok(other),
    }
}

/// `b` decompressed, when the changefeed compresses.
fn inflate(compression: Compression, b: Option<&[u8]>) -> Result<Option<Cow<'_, [u8]>>, String> {
    match b {
        Some(b) if compression != Compression::None => Ok(Some(Cow::Owned(compression.decompress(b)?))),
        b => Ok(b.map(Cow::Borrowed)),
    }
}
