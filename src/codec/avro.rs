//! TiCDC Avro (`protocol=avro`), as `reference/ticdc-formats.md` §1 describes it.
//!
//! Key and value are each in Confluent wire format: magic byte 0, a 4-byte big-endian schema
//! id, then the Avro body. Writer schemas come from the registry by id (fetched before a batch
//! is decoded, cached). The key schema holds the handle-key columns, the value schema all
//! columns plus TiCDC's `_tidb_*` extension fields, which are metadata, never columns. A key
//! with a null value is a delete, and carries no commit ts.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apache_avro::types::Value as Avro;
use serde_json::Value as Json;

use super::numbers::decimal_from_be;
use super::registry::Registry;
use super::text_values::{from_text, ValueContext};
use super::Decoded;
use crate::model::change::{Op, RowEvent, Value};
use crate::model::schema::{Column, Kind, RecordSchema, SourceType};

/// Magic byte, schema id, body.
pub fn frame(bytes: &[u8]) -> Result<(u32, &[u8]), String> {
    match bytes {
        [0, a, b, c, d, body @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), body)),
        [m, ..] if bytes.len() >= 5 => Err(format!("not Confluent wire format: magic byte {m:#04x}, expected 0x00")),
        _ => Err(format!("not Confluent wire format: {} bytes, fewer than the 5-byte header", bytes.len())),
    }
}

/// A table's schema from the registry's latest schemas for `topic` (TiCDC's subjects:
/// `<topic>-key` and `<topic>-value`, dots in the topic turned into underscores).
pub async fn schema_from_registry(
    registry: &Registry,
    topic: &str,
) -> anyhow::Result<Option<crate::model::schema::TableSchema>> {
    let subject = topic.replace('.', "_");
    let Some(value) = registry.latest(&format!("{subject}-value")).await? else { return Ok(None) };
    let value = Writer::parse(&value).map_err(|e| anyhow::anyhow!("the latest schema of {subject}-value: {e}"))?;
    let key = match registry.latest(&format!("{subject}-key")).await? {
        Some(k) => Writer::parse(&k)
            .map_err(|e| anyhow::anyhow!("the latest schema of {subject}-key: {e}"))?
            .layout
            .columns
            .iter()
            .map(|c| c.name.clone())
            .collect(),
        None => Vec::new(),
    };
    Ok(Some(crate::model::schema::TableSchema { columns: value.layout.columns.clone(), key, ..Default::default() }))
}

/// One Avro datum, all of `body`, read with its writer schema.
pub(super) fn read_datum(schema: &apache_avro::Schema, mut body: &[u8]) -> Result<Avro, String> {
    let v = apache_avro::reader::datum::GenericDatumReader::builder(schema)
        .build()
        .and_then(|r| r.read_value(&mut body))
        .map_err(|e| format!("undecodable Avro: {e}"))?;
    if !body.is_empty() {
        return Err(format!("{} bytes after the Avro datum", body.len()));
    }
    Ok(v)
}

/// TiCDC's extension fields in the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    Op,
    CommitTs,
    PhysicalTime,
    Other,
}

#[derive(Debug)]
struct Field {
    name: String,
    ext: Option<Ext>,
    /// The upstream type, as MySQL type text and parsed.
    source_type: String,
    ty: SourceType,
    scale: Option<u32>,
}

/// A writer schema, understood.
#[derive(Debug)]
struct Writer {
    avro: apache_avro::Schema,
    db: String,
    table: String,
    fields: Vec<Field>,
    /// The data columns (no extension fields), in schema order.
    layout: Arc<RecordSchema>,
}

/// A schema id the registry did not have is asked for again this many times, with a doubling
/// pause from [`FIRST_RETRY`], before its records become dead letters: a schema registered a
/// moment after its first record (or a registry replica that lags) costs a pause, not records.
const MISSING_RETRIES: u32 = 3;
const FIRST_RETRY: Duration = Duration::from_millis(250);
/// Schema ids kept; past this the oldest entries are dropped (and fetched again if needed).
const CAPACITY: usize = 1024;

/// What the decoder knows of a schema id.
enum Known<W> {
    Usable(Arc<W>),
    /// The registry has it, but tidemark cannot use it (not a record, ...): final.
    Unusable(String),
    /// The registry did not have it; asked again after `until`.
    Missing {
        error: String,
        until: Instant,
    },
}

pub struct AvroDecoder {
    ctx: ValueContext,
    cache: WriterCache<Writer>,
}

/// Writer schemas by registry id, understood by `parse`, bounded ([`CAPACITY`]).
pub(super) struct WriterCache<W> {
    registry: Arc<Registry>,
    schemas: HashMap<u32, Known<W>>,
    /// The ids in `schemas`, oldest first (for the bound).
    order: VecDeque<u32>,
    parse: fn(&str) -> Result<W, String>,
}

impl AvroDecoder {
    pub fn new(ctx: ValueContext, registry: Arc<Registry>) -> AvroDecoder {
        AvroDecoder { ctx, cache: WriterCache::new(registry, Writer::parse) }
    }

    pub async fn prefetch(&mut self, ids: Vec<u32>) -> anyhow::Result<()> {
        self.cache.prefetch(ids).await
    }

    fn writer(&self, id: u32) -> Result<Arc<Writer>, String> {
        self.cache.writer(id)
    }
}

impl<W> WriterCache<W> {
    pub(super) fn new(registry: Arc<Registry>, parse: fn(&str) -> Result<W, String>) -> WriterCache<W> {
        WriterCache { registry, schemas: HashMap::new(), order: VecDeque::new(), parse }
    }

    /// Fetches the writer schemas a batch refers to. An unreachable registry is an error
    /// (the batch is retried, nothing committed); an id the registry still does not have after
    /// [`MISSING_RETRIES`] is remembered as missing for the registry's `missing_ttl`, and the
    /// records using it become dead letters.
    pub(super) async fn prefetch(&mut self, ids: Vec<u32>) -> anyhow::Result<()> {
        self.trim(&ids);
        let now = Instant::now();
        let mut wanted: Vec<u32> = ids
            .into_iter()
            .filter(|id| match self.schemas.get(id) {
                None => true,
                Some(Known::Missing { until, .. }) => *until <= now,
                Some(_) => false,
            })
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut pause = FIRST_RETRY;
        for attempt in 0..=MISSING_RETRIES {
            let mut missing = Vec::new();
            for id in wanted {
                match self.registry.schema(id).await? {
                    None => missing.push(id),
                    Some(text) => {
                        let known = match (self.parse)(&text) {
                            Ok(w) => Known::Usable(Arc::new(w)),
                            Err(e) => Known::Unusable(format!("schema id {id}: {e}")),
                        };
                        self.remember(id, known);
                    }
                }
            }
            wanted = missing;
            if wanted.is_empty() {
                return Ok(());
            }
            if attempt < MISSING_RETRIES {
                tracing::debug!(ids = ?wanted, attempt, "the schema registry does not have these schema ids (yet)");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
        let until = Instant::now() + self.registry.missing_ttl;
        for id in wanted {
            let error = format!(
                "schema id {id} is not in the schema registry at {} (asked {} times; asked again after {} s)",
                self.registry.url(),
                MISSING_RETRIES + 1,
                self.registry.missing_ttl.as_secs()
            );
            self.remember(id, Known::Missing { error, until });
        }
        Ok(())
    }

    fn remember(&mut self, id: u32, known: Known<W>) {
        if self.schemas.insert(id, known).is_none() {
            self.order.push_back(id);
        }
    }

    /// Drops the oldest ids beyond [`CAPACITY`], except those the coming batch uses.
    fn trim(&mut self, batch: &[u32]) {
        let mut excess = self.order.len().saturating_sub(CAPACITY);
        if excess == 0 {
            return;
        }
        let schemas = &mut self.schemas;
        self.order.retain(|id| {
            if excess > 0 && !batch.contains(id) {
                excess -= 1;
                schemas.remove(id);
                false
            } else {
                true
            }
        });
    }

    pub(super) fn writer(&self, id: u32) -> Result<Arc<W>, String> {
        match self.schemas.get(&id) {
            Some(Known::Usable(w)) => Ok(w.clone()),
            Some(Known::Unusable(e) | Known::Missing { error: e, .. }) => Err(e.clone()),
            None => Err(format!("schema id {id} was not fetched")),
        }
    }
}

impl AvroDecoder {
    pub fn decode(&mut self, key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Decoded, String> {
        let key =
            key.filter(|k| !k.is_empty()).ok_or("an Avro record without a key (TiCDC always sends the handle key)")?;
        let (key_id, key_body) = frame(key).map_err(|e| format!("key: {e}"))?;
        let kw = self.writer(key_id)?;
        let key_values = kw.decode(key_body, &self.ctx).map_err(|e| format!("key: {e}"))?;
        let key_names: Vec<String> = kw.layout.columns.iter().map(|c| c.name.clone()).collect();
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            // A tombstone: the key's row is deleted. TiCDC's Avro deletes carry no commit ts.
            return Ok(Decoded::Rows(vec![RowEvent {
                source_db: kw.db.clone(),
                source_table: kw.table.clone(),
                schema: kw.layout.clone(),
                op: Op::Delete,
                after: None,
                before: Some(key_values.row.into_iter().map(Some).collect()),
                commit_ts: None,
                commit_ms: None,
                key_names,
                key_only: false,
            }]));
        };
        let (id, body) = frame(value).map_err(|e| format!("value: {e}"))?;
        let w = self.writer(id)?;
        let d = w.decode(body, &self.ctx).map_err(|e| format!("value: {e}"))?;
        let op = match d.op.as_deref() {
            Some("u") => Op::Update,
            _ => Op::Insert,
        };
        let commit_ts = d.commit_ts.filter(|&t| t > 0).map(|t| t as u64);
        let commit_ms = d.physical_ms.filter(|&t| t > 0).or(commit_ts.map(|t| (t >> 18) as i64));
        Ok(Decoded::Rows(vec![RowEvent {
            source_db: w.db.clone(),
            source_table: w.table.clone(),
            schema: w.layout.clone(),
            op,
            after: Some(d.row),
            before: None,
            commit_ts,
            commit_ms,
            key_names,
            key_only: false,
        }]))
    }
}

/// One decoded datum: the data columns and TiCDC's extension fields.
struct Datum {
    row: Vec<Value>,
    op: Option<String>,
    commit_ts: Option<i64>,
    physical_ms: Option<i64>,
}

impl Writer {
    fn parse(text: &str) -> Result<Writer, String> {
        let avro = apache_avro::Schema::parse_str(text).map_err(|e| format!("not an Avro schema: {e}"))?;
        let json: Json = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        if json.get("type").and_then(Json::as_str) != Some("record") {
            return Err("not a record schema".into());
        }
        let table = json.get("name").and_then(Json::as_str).unwrap_or_default().to_string();
        // TiCDC's namespace is `<changefeed namespace>.<db>` ("default.test").
        let namespace = json.get("namespace").and_then(Json::as_str).unwrap_or_default();
        let db = namespace.split_once('.').map(|(_, db)| db).unwrap_or(namespace).to_string();
        let mut fields = Vec::new();
        for f in json.get("fields").and_then(Json::as_array).ok_or("a record without fields")? {
            let name = f.get("name").and_then(Json::as_str).ok_or("a field without a name")?.to_string();
            let ext = match name.as_str() {
                "_tidb_op" => Some(Ext::Op),
                "_tidb_commit_ts" => Some(Ext::CommitTs),
                "_tidb_commit_physical_time" => Some(Ext::PhysicalTime),
                n if n.starts_with("_tidb_") => Some(Ext::Other),
                _ => None,
            };
            let (source_type, scale) = field_type(f.get("type").ok_or("a field without a type")?)?;
            let ty = SourceType::parse(&source_type);
            fields.push(Field { name, ext, source_type, ty, scale });
        }
        let layout = RecordSchema::new(
            fields
                .iter()
                .filter(|f| f.ext.is_none())
                .map(|f| Column::new(f.name.clone(), f.source_type.clone()))
                .collect(),
        );
        Ok(Writer { avro, db, table, fields, layout })
    }

    fn decode(&self, body: &[u8], ctx: &ValueContext) -> Result<Datum, String> {
        let v = read_datum(&self.avro, body)?;
        let Avro::Record(values) = v else { return Err("the datum is not a record".into()) };
        let mut d =
            Datum { row: Vec::with_capacity(self.layout.columns.len()), op: None, commit_ts: None, physical_ms: None };
        for (f, (_, v)) in self.fields.iter().zip(values) {
            match f.ext {
                None => {
                    d.row.push(convert(f, v, ctx).map_err(|e| format!("column `{}` ({}): {e}", f.name, f.source_type))?)
                }
                Some(Ext::Op) => d.op = as_string(v),
                Some(Ext::CommitTs) => d.commit_ts = as_long(v),
                Some(Ext::PhysicalTime) => d.physical_ms = as_long(v),
                Some(Ext::Other) => {}
            }
        }
        Ok(d)
    }
}

fn unwrap_union(v: Avro) -> Avro {
    match v {
        Avro::Union(_, inner) => unwrap_union(*inner),
        v => v,
    }
}

fn as_string(v: Avro) -> Option<String> {
    match unwrap_union(v) {
        Avro::String(s) => Some(s),
        _ => None,
    }
}

fn as_long(v: Avro) -> Option<i64> {
    match unwrap_union(v) {
        Avro::Long(l) => Some(l),
        Avro::Int(i) => Some(i as i64),
        _ => None,
    }
}

/// The upstream type of a field from its Avro type: TiCDC's `connect.parameters.tidb_type`
/// when present (union branches in either order), else the Avro type itself.
/// Returns the MySQL type text and, for a logical decimal, its scale.
fn field_type(t: &Json) -> Result<(String, Option<u32>), String> {
    let t = match t {
        Json::Array(branches) => branches.iter().find(|b| b.as_str() != Some("null")).ok_or("a union of only null")?,
        t => t,
    };
    let (avro_type, obj) = match t {
        Json::String(s) => (s.as_str(), None),
        Json::Object(o) => (o.get("type").and_then(Json::as_str).ok_or("a type object without a type")?, Some(o)),
        _ => return Err(format!("unsupported field type {t}")),
    };
    let get = |k: &str| obj.and_then(|o| o.get(k));
    let params = get("connect.parameters");
    let param = |k: &str| params.and_then(|p| p.get(k)).and_then(Json::as_str);
    let logical = get("logicalType").and_then(Json::as_str);
    let num = |k: &str| get(k).and_then(Json::as_u64).map(|v| v as u32);
    if logical == Some("decimal") {
        let p = num("precision").unwrap_or(65);
        let s = num("scale").unwrap_or(0);
        return Ok((format!("decimal({p},{s})"), Some(s)));
    }
    let quoted = |list: &str| {
        // `allowed` escapes commas inside members as `\,`.
        let mut members = Vec::new();
        let mut cur = String::new();
        let mut chars = list.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&',') => {
                    cur.push(',');
                    chars.next();
                }
                ',' => members.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        members.push(cur);
        members.iter().map(|m| format!("'{}'", m.replace('\'', "''"))).collect::<Vec<_>>().join(",")
    };
    let text = match param("tidb_type").map(str::to_ascii_uppercase).as_deref() {
        Some("ENUM") => format!("enum({})", quoted(param("allowed").unwrap_or_default())),
        Some("SET") => format!("set({})", quoted(param("allowed").unwrap_or_default())),
        Some("BIT") => match param("length") {
            Some(n) => format!("bit({n})"),
            None => "bit".into(),
        },
        Some("TEXT") => "text".into(),
        Some("BLOB") => "blob".into(),
        Some(t) if t.starts_with("TIDBVECTOR") => "text".into(),
        Some(t) => t.to_ascii_lowercase(),
        None => match avro_type {
            "int" => "int".into(),
            "long" => "bigint".into(),
            "float" => "float".into(),
            "double" => "double".into(),
            "boolean" => "tinyint".into(),
            "bytes" | "fixed" => "blob".into(),
            _ => "text".into(),
        },
    };
    Ok((text, None))
}

/// One Avro value as the column's canonical value.
fn convert(f: &Field, v: Avro, ctx: &ValueContext) -> Result<Value, String> {
    let text = |s: String| from_text(&f.ty, &s, ctx, false);
    match unwrap_union(v) {
        Avro::Null => Ok(Value::Null),
        Avro::Int(i) => text(i.to_string()),
        // BIGINT UNSIGNED in TiCDC's `long` mode: values above 2^63-1 arrive wrapped negative.
        Avro::Long(l) if f.ty.kind == Kind::UInt64 && l < 0 => text((l as u64).to_string()),
        Avro::Long(l) => text(l.to_string()),
        Avro::Float(x) if x.is_finite() => Ok(Value::Text(x.to_string())),
        Avro::Double(x) if x.is_finite() => Ok(Value::Text(x.to_string())),
        Avro::Float(_) | Avro::Double(_) => Err("not a finite number".into()),
        Avro::Decimal(d) => {
            let bytes = <Vec<u8>>::try_from(&d).map_err(|e| format!("decimal: {e}"))?;
            text(decimal_from_be(&bytes, f.scale.unwrap_or(0)))
        }
        Avro::Bytes(b) | Avro::Fixed(_, b) => Ok(Value::Bytes(b)),
        // ENUM and SET arrive as member names.
        Avro::String(s) if f.ty.members.is_some() => Ok(Value::Text(s)),
        Avro::String(s) => text(s),
        Avro::Enum(_, s) => Ok(Value::Text(s)),
        Avro::Boolean(b) => text(if b { "1" } else { "0" }.into()),
        other => Err(format!("unsupported Avro value {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SchemaRegistryConfig;

    fn decoder() -> AvroDecoder {
        let cfg = SchemaRegistryConfig {
            url: "http://127.0.0.1:1".into(),
            username: None,
            password: None,
            timeout_ms: 100,
            missing_id_ttl_secs: 60,
        };
        AvroDecoder::new(ValueContext::default(), Arc::new(Registry::new(&cfg).expect("registry")))
    }

    #[test]
    fn the_schema_cache_keeps_a_bounded_number_of_ids_but_never_the_coming_batchs() {
        let mut d = decoder().cache;
        for id in 0..(CAPACITY as u32 + 500) {
            d.remember(id, Known::Unusable(format!("{id}")));
        }
        // The next batch uses the oldest id and a new one: the oldest stays, others make room.
        d.trim(&[0, 5000]);
        assert_eq!(d.schemas.len(), CAPACITY);
        assert_eq!(d.order.len(), CAPACITY);
        assert!(d.schemas.contains_key(&0), "an id of the coming batch was dropped");
        assert!(!d.schemas.contains_key(&1));
        assert!(d.schemas.contains_key(&(CAPACITY as u32 + 499)));
    }
}
