//! Key-only records — TiCDC's large-message `handle-key-only` (canal-json's
//! `_tidb.onlyHandleKey`, the simple protocol's `handleKeyOnly`) — carry only the key of an
//! insert or update. With `[upstream]` configured, landing reads the full row from upstream
//! before it decodes the batch: on TiDB as of the change's commit ts (`@@tidb_snapshot`), on
//! MySQL and MariaDB as it is now (they have no reads as of a past point: the row may then be
//! newer than the change, never older, and the stream's later changes follow). The row lands as
//! the change's image. Without `[upstream]`, or when TiDB's GC has passed that ts (error 8055),
//! the record is a dead letter saying so. A delete needs only its key: it lands as it is.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Result;

use super::Lander;
use crate::codec::Decoded;
use crate::model::change::{Op, RowEvent, Value};
use crate::source::RawRecord;
use crate::sql::UpstreamStmt;
use crate::upstream::{key_binds, read_row, staged_text, value_context, Flavor, KeyBind, SourceTable, Upstream};

/// What upstream said of a key-only change's row.
#[derive(Debug, Clone)]
pub enum Resolved {
    /// The row, in the upstream table's column layout.
    Row(Vec<Value>),
    /// Upstream holds no such row (any more): the stream carries its delete.
    Gone,
    /// It cannot be read: why (no `[upstream]`, TiDB's GC, a value refused).
    Refused(String),
}

/// Landing's access to the upstream database, for key-only records.
#[derive(Default)]
pub struct KeyOnly {
    url: Option<String>,
    up: Option<Arc<Upstream>>,
    /// The upstream table of each configured table (by index), described once.
    tables: HashMap<usize, SourceTable>,
    /// This batch's rows, by (table index, key object, commit ts).
    resolved: HashMap<(usize, String, Option<u64>), Resolved>,
}

/// The key object (as staged) of a key-only event, from the key columns it carries.
fn key_json(ev: &RowEvent, key_names: &[String]) -> Option<String> {
    let after = ev.after.as_ref()?;
    let mut out = String::from("{");
    for (i, k) in key_names.iter().enumerate() {
        let v = &after[ev.schema.index_of(k)?];
        if i > 0 {
            out.push(',');
        }
        crate::model::change::write_json_str(&mut out, k);
        out.push(':');
        match staged_text(v) {
            Some(s) => crate::model::change::write_json_str(&mut out, &s),
            None => out.push_str("null"),
        }
    }
    out.push('}');
    Some(out)
}

impl Lander {
    /// Key-only records of this landing's tables are resolved from the upstream database at
    /// `url` (connected on first need).
    pub fn resolve_key_only_from(&mut self, url: String) {
        self.key_only.url = Some(url);
    }

    /// Reads from upstream the rows of the batch's key-only inserts and updates.
    pub(super) async fn prefetch_key_only(&mut self, batch: &[RawRecord]) -> Result<()> {
        self.key_only.resolved.clear();
        // (table index, key object, commit ts), in batch order.
        let mut wanted: Vec<(usize, String, Option<u64>)> = Vec::new();
        // Every record is scanned once (a byte-by-byte comparison cost 8% of landing's CPU), for
        // what both markers hold, `onlyHandleKey` (canal-json) and `handleKeyOnly`; the decoder
        // says whether a record found is key-only.
        let marker = memchr::memmem::Finder::new(b"andleKey");
        for rec in batch {
            let Some(value) = rec.value.as_deref() else { continue };
            if marker.find(value).is_none() {
                continue;
            }
            let format = self.router.format(&rec.topic);
            let Some(decoder) = self.decoders.get_mut(&format) else { continue };
            let Ok(Decoded::Rows(events)) = decoder.decode(rec.key.as_deref(), Some(value), None) else { continue };
            for ev in events.iter().filter(|e| e.key_only && e.op != Op::Delete) {
                let Ok(ti) = self.router.route(&rec.topic, &ev.source_db, &ev.source_table) else { continue };
                let names = self.router.tables[ti].key.clone().unwrap_or_else(|| ev.key_names.clone());
                if let Some(k) = key_json(ev, &names) {
                    wanted.push((ti, k, ev.commit_ts));
                }
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        if self.key_only.url.is_none() {
            for (ti, key, _) in wanted {
                let why = "the record carries only the key columns (TiCDC large-message handle-key-only): configure \
                           [upstream] so that tidemark reads the row from the upstream database";
                self.key_only.resolved.insert((ti, key, None), Resolved::Refused(why.into()));
            }
            return Ok(());
        }
        let up = match &self.key_only.up {
            Some(up) => up.clone(),
            None => {
                let url = self.key_only.url.clone().unwrap_or_default();
                let up = Arc::new(Upstream::connect(&url).await?);
                self.key_only.up = Some(up.clone());
                up
            }
        };
        // One read per table and commit ts (TiDB) or per table (as of now).
        // (table index, commit ts) → its keys.
        type Group = ((usize, Option<u64>), Vec<String>);
        let mut groups: Vec<Group> = Vec::new();
        for (ti, key, ts) in wanted {
            let ts = if up.flavor == Flavor::Tidb { ts } else { None };
            match groups.iter_mut().find(|(g, _)| *g == (ti, ts)) {
                Some((_, keys)) => {
                    if !keys.contains(&key) {
                        keys.push(key)
                    }
                }
                None => groups.push(((ti, ts), vec![key])),
            }
        }
        for ((ti, ts), keys) in groups {
            let src = match self.key_only.tables.get(&ti) {
                Some(s) => s.clone(),
                None => {
                    let t = &self.router.tables[ti];
                    let s = up.describe(t.source.as_ref(), &t.name).await?;
                    self.key_only.tables.insert(ti, s.clone());
                    s
                }
            };
            let read = read_rows(&up, &src, &keys, ts).await?;
            for key in keys {
                let r = match &read {
                    Ok(rows) => match rows.get(&key) {
                        Some(Ok(values)) => Resolved::Row(values.clone()),
                        Some(Err(e)) => Resolved::Refused(format!("the row read from upstream: {e}")),
                        None => Resolved::Gone,
                    },
                    Err(e) => Resolved::Refused(e.clone()),
                };
                self.key_only.resolved.insert((ti, key, ts), r);
            }
        }
        Ok(())
    }

    /// A decoded event with its key-only image replaced by the row upstream holds; `None` when
    /// upstream holds none (its delete follows in the stream). Other events pass unchanged.
    pub(super) fn resolve_key_only(&self, ti: usize, ev: RowEvent) -> Result<Option<RowEvent>, String> {
        if !ev.key_only || ev.op == Op::Delete {
            return Ok(Some(ev));
        }
        let names = self.router.tables[ti].key.clone().unwrap_or_else(|| ev.key_names.clone());
        let key = key_json(&ev, &names).ok_or("a key-only record without its key columns")?;
        let tidb = self.key_only.up.as_ref().is_some_and(|u| u.flavor == Flavor::Tidb);
        let ts = if tidb { ev.commit_ts } else { None };
        let resolved = self.key_only.resolved.get(&(ti, key, ts)).ok_or("a key-only record that was not read ahead")?;
        match resolved {
            Resolved::Refused(why) => Err(why.clone()),
            Resolved::Gone => Ok(None),
            Resolved::Row(values) => {
                let src = self.key_only.tables.get(&ti).ok_or("the upstream table is not described")?;
                Ok(Some(RowEvent {
                    schema: src.record.clone(),
                    after: Some(values.clone()),
                    before: None,
                    key_names: src.key_names.to_vec(),
                    key_only: false,
                    ..ev
                }))
            }
        }
    }
}

/// The rows of `keys` upstream, by key object: as of TSO `ts` on TiDB, else now. Inside, the
/// refusal that stops every key (TiDB's GC past `ts`: error 8055); an upstream that cannot be
/// reached fails the batch (landed again later, as any outage).
async fn read_rows(
    up: &Upstream,
    src: &SourceTable,
    keys: &[String],
    ts: Option<u64>,
) -> Result<Result<HashMap<String, Result<Vec<Value>, String>>, String>> {
    let go = async {
        let mut conn = up.acquire().await?;
        if let Some(ts) = ts {
            conn.exec(up.fixed(UpstreamStmt::TidbSnapshotAt)?, &[KeyBind::Text(ts.to_string())]).await?;
        }
        let mut out = HashMap::new();
        let ctx = value_context();
        let bytes = src.bytes();
        for part in keys.chunks(1000) {
            let binds: Vec<_> = part.iter().map(|k| key_binds(src, k)).collect::<Result<Vec<_>>>()?.concat();
            let q = up.render(UpstreamStmt::RowsByKey, src, &[("rows", part.len().into())])?;
            let rows = conn.rows(q, &binds, &bytes).await?;
            for r in &rows {
                let read = read_row(src, r, &ctx);
                let key = match &read {
                    Ok(values) => src.key_json(values),
                    Err(_) => continue,
                };
                out.insert(key, read);
            }
        }
        if ts.is_some() {
            conn.run(up.fixed(UpstreamStmt::TidbSnapshotClear)?).await?;
        }
        anyhow::Ok(out)
    };
    match go.await {
        Ok(rows) => Ok(Ok(rows)),
        Err(e) if matches!(e.downcast_ref::<sqlx::Error>(), Some(sqlx::Error::Database(_))) => {
            let text = format!("{e:#}");
            Ok(Err(if text.contains("8055") {
                format!("TiDB's GC has passed the change's commit ts {ts:?}, so its row cannot be read (error 8055): {text}")
            } else {
                format!("reading the row from upstream: {text}")
            }))
        }
        Err(e) => Err(e.context(format!("reading key-only records' rows from upstream {}", up.shown))),
    }
}
