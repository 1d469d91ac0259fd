//! Landing: Kafka records → staging tables, in batches, exactly once.
//!
//! A batch is decoded first (outside any transaction), then landed in one transaction that
//! 1. locks the `_tidemark_offsets` rows of the batch's partitions and reads them: a record
//!    below `next_offset` has landed already (a re-delivery after a crash or a rebalance) and
//!    is dropped — so landing is idempotent on source position;
//! 2. records columns and keys the stream showed for the first time;
//! 3. appends the staging rows (binary COPY on PostgreSQL, multi-row INSERTs on SQLite) and
//!    the dead letters;
//! 4. advances the offsets.
//!
//! Only after it commits may the consumer store the batch's Kafka offsets.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use minijinja::Value as TmplValue;
use tracing::{info, warn};

use crate::change::{Change, Value};
use crate::codec::debezium::Hints;
use crate::codec::registry::Registry;
use crate::codec::{Decoded, Decoder, KeyValue, ValueContext};
use crate::config::{Format, OnError, Table};
use crate::db::Pool;
use crate::schema::{compare, RecordSchema, SourceType, TypeChange};
use crate::sql::{safe, TableCtx};
use crate::warehouse::Warehouse;

/// A record refused under `on_error = "stop"`: the service stops instead of retrying.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StopOnRecord(pub String);

/// A Kafka record as read.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

impl RawRecord {
    pub fn bytes(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len) + self.value.as_ref().map_or(0, Vec::len) + 64
    }
}

/// Which configured table a record belongs to.
pub struct Router {
    pub tables: Vec<Table>,
    by_topic: HashMap<String, Vec<usize>>,
}

impl Router {
    pub fn new(tables: Vec<Table>) -> Router {
        let mut by_topic: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, t) in tables.iter().enumerate() {
            by_topic.entry(t.topic.clone()).or_default().push(i);
        }
        Router { tables, by_topic }
    }

    pub fn topics(&self) -> Vec<String> {
        let mut t: Vec<String> = self.by_topic.keys().cloned().collect();
        t.sort();
        t
    }

    fn candidates(&self, topic: &str) -> &[usize] {
        self.by_topic.get(topic).map(Vec::as_slice).unwrap_or_default()
    }

    /// The table of a change of upstream `db.table` read from `topic`.
    fn route(&self, topic: &str, db: &str, table: &str) -> Result<usize, String> {
        let c = self.candidates(topic);
        // A tombstone names no table: it belongs to its topic's table.
        if db.is_empty() && table.is_empty() {
            return match c {
                [only] => Ok(*only),
                _ => {
                    Err(format!("a record naming no table (a tombstone?) on topic {topic}, which feeds several tables"))
                }
            };
        }
        if let [only] = c {
            match &self.tables[*only].source {
                None => return Ok(*only),
                Some((d, t)) if d == db && t == table => return Ok(*only),
                Some(_) => {}
            }
        }
        c.iter()
            .copied()
            .find(|&i| matches!(&self.tables[i].source, Some((d, t)) if d == db && t == table))
            .ok_or_else(|| format!("a change of {db}.{table} on topic {topic}, which no configured table takes"))
    }

    /// A record that could not be routed stops the service if any table of its topic says so.
    fn on_error(&self, topic: &str) -> OnError {
        if self.candidates(topic).iter().any(|&i| self.tables[i].on_error == OnError::Stop) {
            OnError::Stop
        } else {
            OnError::DeadLetter
        }
    }

    fn format(&self, topic: &str) -> Format {
        self.candidates(topic).first().map(|&i| self.tables[i].format).unwrap_or_default()
    }
}

/// A Kafka partition: (topic, partition).
type Partition = (Arc<str>, i32);
/// A record's position: (topic, partition, offset).
type Position = (Arc<str>, i32, i64);

/// One staged change, ready to write.
struct StagedRow {
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    sub: i16,
    /// The record's own order key; `None` inherits the previous record's in the partition.
    commit_ts: Option<i64>,
    commit_ms: Option<i64>,
    op: &'static str,
    key: String,
    row: Option<String>,
}

struct DeadLetter {
    table: Option<String>,
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    error: String,
}

/// A decoded batch, ready to land.
struct Prepared {
    /// Staged rows per table index.
    rows: Vec<Vec<StagedRow>>,
    dead: Vec<DeadLetter>,
    /// (topic, partition) → highest offset in the batch.
    high: HashMap<(Arc<str>, i32), i64>,
    /// (topic, partition) → lowest offset in the batch.
    low: HashMap<(Arc<str>, i32), i64>,
    /// (topic, partition) → (offset, own order key) of each record with rows, in offset order.
    trail: HashMap<Partition, Vec<(i64, Option<i64>)>>,
    /// Columns the stream shows new, wider, or incompatible: recorded with the batch.
    columns: Vec<ColumnEvent>,
    new_keys: Vec<(usize, Vec<String>)>,
    layouts: Vec<(usize, Arc<RecordSchema>)>,
}

/// What one landed batch did.
#[derive(Debug, Default, Clone)]
pub struct LandReport {
    pub records: usize,
    /// Staging rows written per table name.
    pub staged: HashMap<String, usize>,
    pub dead_letters: usize,
    /// Dead letters per table name (`""`: records no configured table took).
    pub dead_by_table: HashMap<String, usize>,
    /// Records skipped because they had landed before.
    pub duplicates: usize,
    pub ddl: usize,
    /// (topic, partition, next offset): what the consumer may now commit.
    pub next_offsets: Vec<(String, i32, i64)>,
    /// Offsets skipped: (topic, partition, first missing, first read). Records there were
    /// never landed and could not be read (retention, a topic recreated, a reset group).
    pub gaps: Vec<(String, i32, i64, i64)>,
}

/// Columns of a layout (by index) and the recorded types their values must conform to.
type ConformList = Arc<Vec<(usize, SourceType)>>;

/// A column the stream shows differently from what is recorded.
struct ColumnEvent {
    table: usize,
    name: String,
    /// The type the stream shows.
    ty: String,
    change: ColumnChange,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnChange {
    Added,
    Widened,
    Incompatible,
}

/// What the warehouse already knows about a table's schema.
#[derive(Default)]
struct Known {
    columns: HashMap<String, String>,
    /// Incompatible types already reported (awaiting `tidemark resume`).
    pending: HashMap<String, String>,
    /// The types come from the table's source_ddl: they decide, and the stream's (often less
    /// precise: Avro's INT covers TINYINT..INT) only have to be of the same kind.
    ddl: bool,
    /// Per layout: its columns whose values must be conformed to a stricter recorded type
    /// (the layout is held so that its address cannot be reused by another).
    conform: HashMap<usize, (Arc<RecordSchema>, ConformList)>,
    /// The recorded types, for records that carry none (Debezium without its schema part).
    hints: Option<Arc<Hints>>,
    key: Option<Vec<String>>,
    verified: HashSet<usize>,
    /// Keeps verified layouts alive so their addresses are never reused.
    keep: Vec<Arc<RecordSchema>>,
}

/// Lands batches of Kafka records into staging tables.
pub struct Lander {
    wh: Arc<Warehouse>,
    router: Router,
    decoders: HashMap<Format, Decoder>,
    known: Vec<Known>,
    staging: Vec<TableCtx>,
}

/// SQLite statements stay under its bound-parameter limit.
const SQLITE_ROWS_PER_INSERT: usize = 1000;
/// COPY data is sent in chunks of about this size.
const COPY_CHUNK: usize = 1 << 20;

impl Lander {
    /// Registers every table (staging tables created) and loads what the warehouse knows.
    /// `registry`: the Schema Registry, when a table's format needs one (Avro).
    pub async fn new(
        wh: Arc<Warehouse>,
        mut tables: Vec<Table>,
        ctx: ValueContext,
        registry: Option<&crate::config::SchemaRegistryConfig>,
    ) -> Result<Lander> {
        let mut known = Vec::new();
        let mut staging = Vec::new();
        for t in &mut tables {
            wh.register_table(&t.name, &t.topic).await?;
            let mut k = Known::default();
            if let Some(path) = &t.source_ddl {
                let ddl = crate::ddl::load(path)?;
                wh.apply_ddl(&t.name, &ddl.schema).await?;
                if t.key.is_none() && !ddl.schema.key.is_empty() {
                    t.key = Some(ddl.schema.key.clone());
                }
                k.ddl = true;
            }
            if let Some(s) = wh.schema(&t.name).await? {
                k.columns = s.columns.into_iter().map(|c| (c.name, c.source_type)).collect();
                k.pending = s.pending;
                k.key = Some(s.key);
            }
            known.push(k);
            staging.push(TableCtx::bare(&t.name));
        }
        let registry = registry.map(Registry::new).transpose()?.map(Arc::new);
        let mut decoders = HashMap::new();
        for t in &tables {
            if let std::collections::hash_map::Entry::Vacant(e) = decoders.entry(t.format) {
                e.insert(Decoder::new(t.format, ctx, registry.clone())?);
            }
        }
        Ok(Lander { wh, router: Router::new(tables), decoders, known, staging })
    }

    /// The warehouse's next offset to land, per partition.
    pub async fn offsets(&self) -> Result<HashMap<(String, i32), i64>> {
        self.wh.offsets().await
    }

    pub fn topics(&self) -> Vec<String> {
        self.router.topics()
    }

    pub fn tables(&self) -> &[Table] {
        &self.router.tables
    }

    /// Lands a batch: all of it, or (on error) none of it.
    pub async fn land(&mut self, batch: &[RawRecord]) -> Result<LandReport> {
        for (format, decoder) in self.decoders.iter_mut() {
            let records: Vec<KeyValue> = batch
                .iter()
                .filter(|r| self.router.format(&r.topic) == *format)
                .map(|r| (r.key.as_deref(), r.value.as_deref()))
                .collect();
            decoder.prefetch(records).await.with_context(|| format!("preparing to decode {format} records"))?;
        }
        let prepared = self.prepare(batch)?;
        let mut report = match &self.wh.pool {
            Pool::Pg(_) => self.commit_pg(&prepared).await,
            Pool::Lite(_) => self.commit_sqlite(&prepared).await,
        }
        .with_context(|| format!("landing a batch of {} records into {}", batch.len(), self.wh.url))?;
        // The warehouse has it now: remember, so the next batch does not record it again.
        for ev in prepared.columns {
            let known = &mut self.known[ev.table];
            known.conform.clear();
            known.hints = None;
            match ev.change {
                ColumnChange::Added | ColumnChange::Widened => known.columns.insert(ev.name, ev.ty),
                ColumnChange::Incompatible => known.pending.insert(ev.name, ev.ty),
            };
        }
        for (ti, key) in prepared.new_keys {
            self.known[ti].key.get_or_insert(key);
        }
        for (ti, layout) in prepared.layouts {
            let k = &mut self.known[ti];
            if k.verified.insert(Arc::as_ptr(&layout) as usize) {
                k.keep.push(layout);
            }
        }
        report.records = batch.len();
        Ok(report)
    }

    /// Decodes and routes a batch; a record that fails becomes a dead letter (or an error
    /// when its table says `on_error = "stop"`).
    fn prepare(&mut self, batch: &[RawRecord]) -> Result<Prepared> {
        let mut p = Prepared {
            rows: self.router.tables.iter().map(|_| Vec::new()).collect(),
            dead: Vec::new(),
            high: HashMap::new(),
            low: HashMap::new(),
            trail: HashMap::new(),
            columns: Vec::new(),
            new_keys: Vec::new(),
            layouts: Vec::new(),
        };
        for rec in batch {
            let high = p.high.entry((rec.topic.clone(), rec.partition)).or_insert(rec.offset);
            *high = (*high).max(rec.offset);
            let low = p.low.entry((rec.topic.clone(), rec.partition)).or_insert(rec.offset);
            *low = (*low).min(rec.offset);
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

    fn prepare_one(&mut self, rec: &RawRecord, p: &mut Prepared) -> Result<(), (Option<usize>, String)> {
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
        // All changes of one record land or dead-letter together.
        let mut staged = Vec::new();
        for ev in events {
            let ti = self.router.route(&rec.topic, &ev.source_db, &ev.source_table).map_err(|e| (None, e))?;
            let table = &self.router.tables[ti];
            let changes = ev.into_changes(table.key.as_deref()).map_err(|e| (Some(ti), e))?;
            for mut c in changes {
                self.check_schema(ti, &c, p).map_err(|e| (Some(ti), e))?;
                self.conform(ti, &mut c).map_err(|e| (Some(ti), e))?;
                if self.wh.dialect() == crate::dialect::Dialect::Postgres {
                    if let Some(col) = c.column_with_nul() {
                        return Err((
                            Some(ti),
                            format!("column `{col}` holds the NUL character (U+0000), which PostgreSQL cannot store"),
                        ));
                    }
                }
                let commit_ts = match c.commit_ts {
                    Some(ts) => {
                        Some(i64::try_from(ts).map_err(|_| (Some(ti), format!("commit ts {ts} is out of range")))?)
                    }
                    None => None,
                };
                staged.push((
                    ti,
                    StagedRow {
                        topic: rec.topic.clone(),
                        partition: rec.partition,
                        offset: rec.offset,
                        sub: c.sub as i16,
                        commit_ts,
                        commit_ms: c.commit_ms,
                        op: c.op.code(),
                        key: c.key_json(),
                        row: c.row_json(),
                    },
                ));
            }
        }
        if let Some((_, first)) = staged.first() {
            p.trail.entry((rec.topic.clone(), rec.partition)).or_default().push((rec.offset, first.commit_ts));
        }
        for (ti, row) in staged {
            p.rows[ti].push(row);
        }
        Ok(())
    }

    /// New columns and the key are recorded with the batch that first shows them.
    fn check_schema(&mut self, ti: usize, c: &Change, p: &mut Prepared) -> Result<(), String> {
        let known = &mut self.known[ti];
        let table = &self.router.tables[ti].name;
        let pending_key = p.new_keys.iter().find(|(t, _)| *t == ti).map(|(_, k)| k);
        match known.key.as_ref().or(pending_key) {
            Some(k) if k.as_slice() != &*c.key_names => {
                return Err(format!(
                    "the key of `{table}` changed upstream from {k:?} to {:?}: a replica keyed differently \
                     needs a new table",
                    c.key_names
                ));
            }
            Some(_) => {}
            None => p.new_keys.push((ti, c.key_names.to_vec())),
        }
        let ptr = Arc::as_ptr(&c.schema) as usize;
        if known.verified.contains(&ptr) || p.layouts.iter().any(|(t, l)| *t == ti && Arc::as_ptr(l) as usize == ptr) {
            return Ok(());
        }
        for col in &c.schema.columns {
            if p.columns.iter().any(|e| e.table == ti && e.name == col.name && e.ty == col.source_type) {
                continue;
            }
            let change = match known.columns.get(&col.name) {
                None => Some(ColumnChange::Added),
                Some(ty) if ty.eq_ignore_ascii_case(&col.source_type) => None,
                Some(_) if known.pending.get(&col.name) == Some(&col.source_type) => None,
                Some(ty) => match compare(&SourceType::parse(ty), &col.ty) {
                    TypeChange::Fits => None,
                    TypeChange::Widens if known.ddl => None,
                    TypeChange::Widens => Some(ColumnChange::Widened),
                    TypeChange::Incompatible => Some(ColumnChange::Incompatible),
                },
            };
            let Some(change) = change else { continue };
            let recorded = known.columns.get(&col.name).map(String::as_str).unwrap_or("-");
            match change {
                ColumnChange::Added => {
                    info!(table, column = %col.name, source_type = %col.source_type, "new column in the stream")
                }
                ColumnChange::Widened => info!(table, column = %col.name, from = recorded, to = %col.source_type,
                    "column widened upstream; the replica follows at the next merge"),
                ColumnChange::Incompatible => {
                    tracing::error!(table, column = %col.name, from = recorded, to = %col.source_type,
                    "incompatible type change upstream: the table's merges stop (its changes stay staged) until `tidemark resume`")
                }
            }
            p.columns.push(ColumnEvent { table: ti, name: col.name.clone(), ty: col.source_type.clone(), change });
        }
        p.layouts.push((ti, c.schema.clone()));
        Ok(())
    }

    /// The recorded column types of the (first) table on `topic`.
    fn hints(&mut self, topic: &str) -> Option<Arc<Hints>> {
        let ti = *self.router.candidates(topic).first()?;
        let known = &mut self.known[ti];
        if known.columns.is_empty() {
            return None;
        }
        let columns = &known.columns;
        Some(
            known
                .hints
                .get_or_insert_with(|| {
                    Arc::new(columns.iter().map(|(n, t)| (n.clone(), SourceType::parse(t))).collect())
                })
                .clone(),
        )
    }

    /// Values are checked against the recorded column types where those are stricter than the
    /// record's own (a DECIMAL(5,2) or VARCHAR(24) from source_ddl for canal-json's bare
    /// `decimal`/`varchar`, ENUM members for an index).
    fn conform(&mut self, ti: usize, c: &mut Change) -> Result<(), String> {
        let known = &mut self.known[ti];
        if known.columns.is_empty() {
            return Ok(());
        }
        let ptr = Arc::as_ptr(&c.schema) as usize;
        let list = match known.conform.get(&ptr) {
            Some((_, list)) => list.clone(),
            None => {
                let mut list = Vec::new();
                for (i, col) in c.schema.columns.iter().enumerate() {
                    let Some(recorded) = known.columns.get(&col.name) else { continue };
                    if recorded.eq_ignore_ascii_case(&col.source_type) {
                        continue;
                    }
                    let ty = SourceType::parse(recorded);
                    // Only where the stream's type fits the recorded one: a widening (the
                    // replica follows) or an incompatible change (the table stops) keeps its
                    // values as they are. With a source_ddl the DDL's types always decide.
                    let fits = match compare(&ty, &col.ty) {
                        TypeChange::Fits => true,
                        TypeChange::Widens => known.ddl,
                        TypeChange::Incompatible => false,
                    };
                    if fits && crate::codec::text_values::needs_conform(&ty) {
                        list.push((i, ty));
                    }
                }
                let list = Arc::new(list);
                known.conform.insert(ptr, (c.schema.clone(), list.clone()));
                list
            }
        };
        for (i, ty) in list.iter() {
            let name = &c.schema.columns[*i].name;
            let fix = |v: &mut Value| -> Result<(), String> {
                let conformed = crate::codec::text_values::conform(ty, v)
                    .map_err(|e| format!("column `{name}` (recorded as {}): {e}", known.columns[name]))?;
                *v = conformed;
                Ok(())
            };
            if let Some(row) = c.row.as_mut() {
                fix(&mut row[*i])?;
            }
            if let Some(k) = c.key_names.iter().position(|k| k == name) {
                fix(&mut c.key[k])?;
            }
        }
        Ok(())
    }

    /// Partitions whose batch starts beyond the next offset to land: records that were never
    /// landed and can no longer be read. Logged loudly, once per gap.
    fn gaps(p: &Prepared, current: &HashMap<(String, i32), PartState>) -> Vec<(String, i32, i64, i64)> {
        let mut gaps = Vec::new();
        for ((topic, part), low) in &p.low {
            let known = current.get(&(topic.to_string(), *part)).map(|s| s.next);
            let next = known.unwrap_or(0);
            if *low > next {
                if known.is_some_and(|n| n > 0) {
                    tracing::error!(topic = %topic, partition = part, missing_from = next, missing_to = low - 1,
                        "offsets were never landed and are no longer in Kafka (retention? a reset or recreated topic?): \
                         the replica misses those changes; re-seed it from a snapshot");
                } else {
                    warn!(topic = %topic, partition = part, first_offset = low,
                        "starting at this offset: earlier records are no longer in Kafka, so the replica holds only \
                         changes from here on (seed it from a snapshot if it must be complete)");
                }
                gaps.push((topic.to_string(), *part, next, *low));
            }
        }
        gaps
    }

    /// Order keys for records that carry none (TiCDC Avro deletes, tombstones): the key of the
    /// record before them in their partition, so offset order decides among them and against
    /// their neighbours; `0` when nothing came before. Returns the key of every record and the
    /// partitions' new last keys.
    fn order_keys(
        p: &Prepared,
        current: &HashMap<(String, i32), PartState>,
    ) -> (HashMap<Position, i64>, HashMap<Partition, i64>) {
        let mut keys = HashMap::new();
        let mut last = HashMap::new();
        for ((topic, part), trail) in &p.trail {
            let mut prev = current.get(&(topic.to_string(), *part)).and_then(|s| s.last_ts).unwrap_or(0);
            for (offset, own) in trail {
                prev = own.unwrap_or(prev);
                keys.insert((topic.clone(), *part, *offset), prev);
            }
            last.insert((topic.clone(), *part), prev);
        }
        (keys, last)
    }

    /// (topic, partition, next offset, last order key) after this batch.
    fn next_offsets(
        p: &Prepared,
        current: &HashMap<(String, i32), PartState>,
        last: &HashMap<Partition, i64>,
    ) -> Vec<(String, i32, i64, Option<i64>)> {
        p.high
            .iter()
            .map(|((topic, part), high)| {
                let cur = current.get(&(topic.to_string(), *part));
                let next = cur.map(|s| s.next).unwrap_or(0).max(high + 1);
                let last_ts = last.get(&(topic.clone(), *part)).copied().or(cur.and_then(|s| s.last_ts));
                (topic.to_string(), *part, next, last_ts)
            })
            .collect()
    }

    async fn commit_pg(&self, p: &Prepared) -> Result<LandReport> {
        let Pool::Pg(pool) = &self.wh.pool else { bail!("not a PostgreSQL warehouse") };
        let sql = &self.wh.sql;
        let mut tx = pool.begin().await?;
        let topics: Vec<String> = p.high.keys().map(|(t, _)| t.to_string()).collect();
        let parts: Vec<i32> = p.high.keys().map(|(_, part)| *part).collect();
        let rows: Vec<(String, i32, i64, Option<i64>)> = sqlx::query_as(safe(sql.fixed("land_offsets_lock")?))
            .bind(&topics)
            .bind(&parts)
            .fetch_all(&mut *tx)
            .await
            .context("locking the batch's offset rows")?;
        let current: HashMap<(String, i32), PartState> =
            rows.into_iter().map(|(t, p, next, last_ts)| ((t, p), PartState { next, last_ts })).collect();
        let fresh = |topic: &str, part: i32, offset: i64| {
            offset >= current.get(&(topic.to_string(), part)).map(|s| s.next).unwrap_or(0)
        };
        let (keys, last) = Self::order_keys(p, &current);

        self.record_schema_pg(&mut tx, p).await?;
        let mut report = LandReport::default();
        for (ti, rows) in p.rows.iter().enumerate() {
            let mut buf = CopyBuf::new();
            let mut n = 0usize;
            for r in rows {
                if fresh(&r.topic, r.partition, r.offset) {
                    buf.row(r, order_key(r, &keys));
                    n += 1;
                } else {
                    report.duplicates += 1;
                }
            }
            if n == 0 {
                continue;
            }
            buf.finish();
            let staging = &self.staging[ti].staging;
            let mut copy = tx.copy_in_raw(&sql.render("land_copy", &self.staging[ti], &[])?).await?;
            for chunk in buf.0.chunks(COPY_CHUNK) {
                copy.send(chunk).await.with_context(|| format!("COPY into {staging}"))?;
            }
            copy.finish().await.with_context(|| format!("COPY into {staging}"))?;
            report.staged.insert(self.router.tables[ti].name.clone(), n);
        }
        let dead: Vec<&DeadLetter> = p.dead.iter().filter(|d| fresh(&d.topic, d.partition, d.offset)).collect();
        if !dead.is_empty() {
            sqlx::query(safe(sql.fixed("land_dead_letters")?))
                .bind(dead.iter().map(|d| d.table.clone()).collect::<Vec<_>>())
                .bind(dead.iter().map(|d| d.topic.to_string()).collect::<Vec<_>>())
                .bind(dead.iter().map(|d| d.partition).collect::<Vec<_>>())
                .bind(dead.iter().map(|d| d.offset).collect::<Vec<_>>())
                .bind(dead.iter().map(|d| d.key.clone()).collect::<Vec<_>>())
                .bind(dead.iter().map(|d| d.value.clone()).collect::<Vec<_>>())
                .bind(dead.iter().map(|d| d.error.clone()).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await
                .context("writing dead letters")?;
            report.dead_letters = dead.len();
            report.dead_by_table = dead_by_table(&dead);
        }
        report.gaps = Self::gaps(p, &current);
        let next = Self::next_offsets(p, &current, &last);
        sqlx::query(safe(sql.fixed("land_offsets_update")?))
            .bind(next.iter().map(|o| o.0.clone()).collect::<Vec<_>>())
            .bind(next.iter().map(|o| o.1).collect::<Vec<_>>())
            .bind(next.iter().map(|o| o.2).collect::<Vec<_>>())
            .bind(next.iter().map(|o| o.3).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .context("advancing offsets")?;
        crate::failpoint::hit("land.written");
        tx.commit().await.context("committing the landing transaction")?;
        report.next_offsets = next.into_iter().map(|(t, p, n, _)| (t, p, n)).collect();
        Ok(report)
    }

    async fn record_schema_pg(&self, tx: &mut sqlx::Transaction<'static, sqlx::Postgres>, p: &Prepared) -> Result<()> {
        let sql = &self.wh.sql;
        for (statement, args) in self.schema_statements(p)? {
            let mut q = sqlx::query(safe(sql.fixed(statement)?));
            for a in args {
                q = q.bind(a);
            }
            q.execute(&mut **tx).await.with_context(|| format!("recording schema news ({statement})"))?;
        }
        Ok(())
    }

    /// The metadata statements a batch's schema news needs, with their parameters.
    /// An incompatible column also stops its table.
    fn schema_statements(&self, p: &Prepared) -> Result<Vec<(&'static str, Vec<String>)>> {
        let mut out = Vec::new();
        for ev in &p.columns {
            let table = self.router.tables[ev.table].name.clone();
            match ev.change {
                ColumnChange::Added => out.push(("add_source_column", vec![table, ev.name.clone(), ev.ty.clone()])),
                ColumnChange::Widened => out.push(("widen_column", vec![table, ev.name.clone(), ev.ty.clone()])),
                ColumnChange::Incompatible => {
                    let reason = format!(
                        "column `{}` changed upstream to {}, which its replica column cannot take in place; \
                         alter the replica if needed, then run `tidemark resume --table {}`",
                        ev.name, ev.ty, table
                    );
                    out.push(("stop_column", vec![table.clone(), ev.name.clone(), ev.ty.clone()]));
                    out.push(("stop_table", vec![table, reason]));
                }
            }
        }
        for (ti, key) in &p.new_keys {
            out.push(("set_key", vec![self.router.tables[*ti].name.clone(), serde_json::to_string(key)?]));
        }
        Ok(out)
    }

    async fn commit_sqlite(&self, p: &Prepared) -> Result<LandReport> {
        let Pool::Lite(pool) = &self.wh.pool else { bail!("not an SQLite warehouse") };
        let sql = &self.wh.sql;
        let mut tx = pool.begin_with(safe(sql.fixed("land_begin")?)).await?;
        let rows: Vec<(String, i64, i64, Option<i64>)> =
            sqlx::query_as(safe(sql.fixed("load_offsets")?)).fetch_all(&mut *tx).await?;
        let current: HashMap<(String, i32), PartState> =
            rows.into_iter().map(|(t, p, next, last_ts)| ((t, p as i32), PartState { next, last_ts })).collect();
        let fresh = |topic: &str, part: i32, offset: i64| {
            offset >= current.get(&(topic.to_string(), part)).map(|s| s.next).unwrap_or(0)
        };
        let (keys, last) = Self::order_keys(p, &current);

        for (statement, args) in self.schema_statements(p)? {
            let mut q = sqlx::query(safe(sql.fixed(statement)?));
            for a in args {
                q = q.bind(a);
            }
            q.execute(&mut *tx).await.with_context(|| format!("recording schema news ({statement})"))?;
        }
        let mut report = LandReport::default();
        let mut statements: HashMap<(usize, usize), String> = HashMap::new();
        for (ti, rows) in p.rows.iter().enumerate() {
            let fresh_rows: Vec<&StagedRow> = rows.iter().filter(|r| fresh(&r.topic, r.partition, r.offset)).collect();
            report.duplicates += rows.len() - fresh_rows.len();
            if fresh_rows.is_empty() {
                continue;
            }
            for chunk in fresh_rows.chunks(SQLITE_ROWS_PER_INSERT) {
                let text = match statements.get(&(ti, chunk.len())) {
                    Some(s) => s.clone(),
                    None => {
                        let s =
                            sql.render("land_rows", &self.staging[ti], &[("rows", TmplValue::from(chunk.len()))])?;
                        statements.insert((ti, chunk.len()), s.clone());
                        s
                    }
                };
                let mut q = sqlx::query(safe(text));
                for r in chunk {
                    q = q
                        .bind(r.topic.to_string())
                        .bind(r.partition)
                        .bind(r.offset)
                        .bind(r.sub)
                        .bind(order_key(r, &keys))
                        .bind(r.commit_ms)
                        .bind(r.op)
                        .bind(r.key.as_str())
                        .bind(r.row.as_deref());
                }
                q.execute(&mut *tx).await.with_context(|| format!("inserting into {}", self.staging[ti].staging))?;
            }
            report.staged.insert(self.router.tables[ti].name.clone(), fresh_rows.len());
        }
        let dead: Vec<&DeadLetter> = p.dead.iter().filter(|d| fresh(&d.topic, d.partition, d.offset)).collect();
        for chunk in dead.chunks(SQLITE_ROWS_PER_INSERT) {
            let text =
                sql.render("land_dead_letters", &TableCtx::bare("-"), &[("rows", TmplValue::from(chunk.len()))])?;
            let mut q = sqlx::query(safe(text));
            for d in chunk {
                q = q
                    .bind(d.table.clone())
                    .bind(d.topic.to_string())
                    .bind(d.partition)
                    .bind(d.offset)
                    .bind(d.key.clone())
                    .bind(d.value.clone())
                    .bind(d.error.clone());
            }
            q.execute(&mut *tx).await.context("writing dead letters")?;
        }
        report.dead_letters = dead.len();
        report.dead_by_table = dead_by_table(&dead);
        report.gaps = Self::gaps(p, &current);
        let next = Self::next_offsets(p, &current, &last);
        for chunk in next.chunks(SQLITE_ROWS_PER_INSERT) {
            let text =
                sql.render("land_offsets_update", &TableCtx::bare("-"), &[("rows", TmplValue::from(chunk.len()))])?;
            let mut q = sqlx::query(safe(text));
            for (topic, part, next, last_ts) in chunk {
                q = q.bind(topic.clone()).bind(*part).bind(*next).bind(*last_ts);
            }
            q.execute(&mut *tx).await.context("advancing offsets")?;
        }
        crate::failpoint::hit("land.written");
        tx.commit().await.context("committing the landing transaction")?;
        report.next_offsets = next.into_iter().map(|(t, p, n, _)| (t, p, n)).collect();
        Ok(report)
    }
}

/// What the warehouse records of a partition: the next offset to land and the order key of
/// the record before it.
struct PartState {
    next: i64,
    last_ts: Option<i64>,
}

fn dead_by_table(dead: &[&DeadLetter]) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for d in dead {
        *out.entry(d.table.clone().unwrap_or_default()).or_default() += 1;
    }
    out
}

/// A row's order key: its own, else the one inherited from its partition.
fn order_key(r: &StagedRow, keys: &HashMap<Position, i64>) -> i64 {
    r.commit_ts.or_else(|| keys.get(&(r.topic.clone(), r.partition, r.offset)).copied()).unwrap_or(0)
}

/// PostgreSQL binary COPY data for staging rows.
struct CopyBuf(Vec<u8>);

impl CopyBuf {
    fn new() -> CopyBuf {
        let mut b = Vec::with_capacity(64 << 10);
        b.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        b.extend_from_slice(&0u32.to_be_bytes()); // flags
        b.extend_from_slice(&0u32.to_be_bytes()); // header extension length
        CopyBuf(b)
    }

    fn row(&mut self, r: &StagedRow, order_key: i64) {
        let b = &mut self.0;
        b.extend_from_slice(&9i16.to_be_bytes());
        field(b, r.topic.as_bytes());
        field(b, &r.partition.to_be_bytes());
        field(b, &r.offset.to_be_bytes());
        field(b, &r.sub.to_be_bytes());
        field(b, &order_key.to_be_bytes());
        match r.commit_ms {
            Some(ms) => field(b, &ms.to_be_bytes()),
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
        }
        field(b, r.op.as_bytes());
        jsonb(b, &r.key);
        match &r.row {
            Some(row) => jsonb(b, row),
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }

    fn finish(&mut self) {
        self.0.extend_from_slice(&(-1i16).to_be_bytes());
    }
}

fn field(b: &mut Vec<u8>, data: &[u8]) {
    b.extend_from_slice(&(data.len() as i32).to_be_bytes());
    b.extend_from_slice(data);
}

/// jsonb's binary form: a version byte (1), then the JSON text.
fn jsonb(b: &mut Vec<u8>, text: &str) {
    b.extend_from_slice(&((text.len() + 1) as i32).to_be_bytes());
    b.push(1);
    b.extend_from_slice(text.as_bytes());
}
