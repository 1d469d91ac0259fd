//! Debezium's JSON envelope: TiCDC's `protocol=debezium` (`reference/ticdc-formats.md` §3) and
//! Debezium's own connectors (the PostgreSQL connector of the StarRocks seed).
//!
//! `{"schema": …, "payload": {"op", "before", "after", "source", "ts_ms"}}`, the `schema` part
//! optional (the payload may also stand alone). `op`: c/r insert, u update, d delete, m a TiCDC
//! watermark; a key with a null value (tombstone) deletes the key. Column types come from the
//! Connect schema (type + semantic name: `io.debezium.time.Date` is epoch days, `MicroTimestamp`
//! epoch µs, `org.apache.kafka.connect.data.Decimal` base64 bytes at a scale, …); without it,
//! from the table's recorded types (e.g. its source_ddl), else from the JSON values themselves.
//! Order: TiCDC's `source.commit_ts`; PostgreSQL's commit order (`source.sequence`, see
//! [`postgres_order`]); else — MySQL's connector, snapshot records — the place in the partition.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use chrono::{DateTime, Duration, NaiveDate};
use serde_json::{Map, Value as Json};

use super::numbers::decimal_from_be;
use super::text_values::{bit_bytes, from_text, ValueContext};
use super::Decoded;
use crate::model::change::{Op, RowEvent, Value};
use crate::model::schema::{Column, Kind, RecordSchema, SourceType};

/// How a field's JSON value encodes its upstream value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// The value as it is (numbers, strings, JSON).
    Plain,
    /// Epoch days (`io.debezium.time.Date`, Connect `Date`).
    Days,
    /// Epoch milliseconds / microseconds / nanoseconds, no zone.
    Millis,
    Micros,
    Nanos,
    /// ISO-8601 with a zone (`io.debezium.time.ZonedTimestamp`).
    Zoned,
    /// A time of day / duration in milliseconds / microseconds / nanoseconds.
    TimeMillis,
    TimeMicros,
    TimeNanos,
    /// Base64 big-endian two's-complement unscaled integer (Connect `Decimal`).
    DecimalBytes(u32),
    /// `{"scale": s, "value": base64}` (`io.debezium.data.VariableScaleDecimal`).
    VariableDecimal,
    /// Base64 little-endian bytes (`io.debezium.data.Bits`).
    BitsLittleEndian,
    /// Base64 bytes.
    Base64,
    /// No schema: decided from the recorded type and the value's shape.
    Guess,
}

#[derive(Debug)]
struct Spec {
    unit: Unit,
    ty: SourceType,
}

/// Columns of one Connect struct schema, understood.
#[derive(Debug)]
struct Layout {
    schema: Arc<RecordSchema>,
    specs: Vec<Spec>,
}

#[derive(Default)]
pub struct DebeziumDecoder {
    ctx: ValueContext,
    /// Connect struct schemas seen, by their JSON text.
    layouts: HashMap<String, Arc<Layout>>,
    /// The placeholder as a binary column carries it (base64 of its UTF-8 bytes).
    unavailable_b64: String,
}

/// Upstream types known for a table, for payloads without a schema.
pub type Hints = HashMap<String, SourceType>;

impl DebeziumDecoder {
    pub fn new(ctx: ValueContext) -> DebeziumDecoder {
        let unavailable_b64 = base64::engine::general_purpose::STANDARD.encode(ctx.unavailable_value.as_bytes());
        DebeziumDecoder { ctx, layouts: HashMap::new(), unavailable_b64 }
    }

    pub fn decode(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        hints: Option<&Hints>,
    ) -> Result<Decoded, String> {
        let key_doc = match key.filter(|k| !k.is_empty()) {
            Some(k) => Some(serde_json::from_slice::<Json>(k).map_err(|e| format!("key is not JSON: {e}"))?),
            None => None,
        };
        let value_doc = match value.filter(|v| !v.is_empty()) {
            Some(v) => serde_json::from_slice::<Json>(v).map_err(|e| format!("value is not JSON: {e}"))?,
            None => Json::Null,
        };
        self.decode_docs(key_doc.as_ref(), &value_doc, hints)
    }

    /// [`DebeziumDecoder::decode`] of records already read as JSON (Debezium's Avro, turned
    /// into what its JSON converter writes: `crate::codec::debezium_avro`).
    pub fn decode_docs(
        &mut self,
        key_doc: Option<&Json>,
        value_doc: &Json,
        hints: Option<&Hints>,
    ) -> Result<Decoded, String> {
        let (payload, schema) = envelope(value_doc);
        // The key record: its payload object and (optional) schema.
        let key_struct = key_doc.map(envelope).and_then(|(p, s)| p.as_object().map(|o| (o, s)));
        let key_names: Vec<String> = key_struct.map(|(o, _)| o.keys().cloned().collect()).unwrap_or_default();

        if payload.is_null() {
            // A tombstone: the key's row is deleted.
            let (obj, kschema) = key_struct.ok_or("a tombstone without a key")?;
            return self.tombstone(kschema, obj, hints, key_names);
        }
        let p = payload.as_object().ok_or("the payload is not an object")?;
        let source = p.get("source").and_then(Json::as_object);
        let src = |k: &str| source.and_then(|s| s.get(k));
        let db = src("schema").or(src("db")).and_then(Json::as_str).unwrap_or_default().to_string();
        let table = src("table").and_then(Json::as_str).unwrap_or_default().to_string();
        let commit_ts = src("commit_ts").and_then(Json::as_u64).filter(|&t| t > 0);
        if let Some(ddl) = p.get("ddl").and_then(Json::as_str) {
            return Ok(Decoded::Ddl { db, table, sql: ddl.to_string(), commit_ts });
        }
        let op = match p.get("op").and_then(Json::as_str) {
            Some("c") | Some("r") => Op::Insert,
            Some("u") => Op::Update,
            Some("d") => Op::Delete,
            // TiCDC's watermark; one without a commit ts says nothing.
            Some("m") => return Ok(commit_ts.map_or(Decoded::Rows(Vec::new()), |ts| Decoded::Watermark { ts })),
            Some("t") => return Err("a TRUNCATE event: it cannot be applied as row changes".into()),
            Some(other) => return Err(format!("unknown Debezium op `{other}`")),
            None => return Err("a Debezium payload without `op`".into()),
        };
        let order = commit_ts.or_else(|| postgres_order(source, p.get("op").and_then(Json::as_str)));
        let commit_ms =
            commit_ts.map(|t| (t >> 18) as i64).or_else(|| src("ts_ms").and_then(Json::as_i64)).filter(|&m| m > 0);
        // Both images share one struct schema; the key's fields name the key.
        let image_schema = schema.and_then(|s| struct_field(s, "after").or_else(|| struct_field(s, "before")));
        let image = |name: &str| p.get(name).and_then(Json::as_object);
        let any_image = image("after").or(image("before")).ok_or("neither `after` nor `before`")?;
        let layout = self.layout(image_schema, any_image, hints)?;
        // A snapshot read has every value; a streamed change may carry the placeholder for a
        // column PostgreSQL did not send (an unchanged TOASTed value).
        let partial = p.get("op").and_then(Json::as_str) != Some("r");
        let after = match image("after") {
            Some(a) => Some(self.values(&layout, a, partial)?.into_iter().map(|v| v.unwrap_or(Value::Null)).collect()),
            None => None,
        };
        let before = match image("before") {
            Some(b) => Some(self.values(&layout, b, false)?),
            None => None,
        };
        if op != Op::Delete && after.is_none() {
            return Err("an insert or update without `after`".into());
        }
        Ok(Decoded::Rows(vec![RowEvent {
            source_db: db,
            source_table: table,
            schema: layout.schema.clone(),
            op,
            after,
            before,
            commit_ts: order,
            commit_ms,
            key_names,
            key_only: false,
        }]))
    }

    /// A tombstone: a delete of the key's row, which the key alone names.
    fn tombstone(
        &mut self,
        kschema: Option<&Json>,
        obj: &Map<String, Json>,
        hints: Option<&Hints>,
        key_names: Vec<String>,
    ) -> Result<Decoded, String> {
        let layout = self.layout(kschema, obj, hints)?;
        let before = self.values(&layout, obj, false)?;
        Ok(Decoded::Rows(vec![RowEvent {
            source_db: String::new(),
            source_table: String::new(),
            schema: layout.schema.clone(),
            op: Op::Delete,
            after: None,
            before: Some(before),
            commit_ts: None,
            commit_ms: None,
            key_names,
            key_only: false,
        }]))
    }

    /// The columns of a struct: from its Connect schema when there is one, else from the
    /// object's own fields (typed by `hints`, or as text).
    fn layout(
        &mut self,
        schema: Option<&Json>,
        obj: &Map<String, Json>,
        hints: Option<&Hints>,
    ) -> Result<Arc<Layout>, String> {
        if let Some(s) = schema {
            let text = s.to_string();
            if let Some(l) = self.layouts.get(&text) {
                return Ok(l.clone());
            }
            let fields = s.get("fields").and_then(Json::as_array).ok_or("a struct schema without fields")?;
            let mut columns = Vec::new();
            let mut specs = Vec::new();
            for f in fields {
                let name = f.get("field").and_then(Json::as_str).ok_or("a schema field without a name")?;
                let (ty, unit) = connect_type(f);
                columns.push(Column::new(name, ty.clone()));
                specs.push(Spec { unit, ty: SourceType::parse(&ty) });
            }
            let layout = Arc::new(Layout { schema: RecordSchema::new(columns), specs });
            self.layouts.insert(text, layout.clone());
            return Ok(layout);
        }
        let mut columns = Vec::new();
        let mut specs = Vec::new();
        for name in obj.keys() {
            let (source_type, ty) = match hints.and_then(|h| h.get(name)) {
                Some(t) => (hint_text(t), t.clone()),
                None => ("text".to_string(), SourceType::parse("text")),
            };
            columns.push(Column::new(name.clone(), source_type));
            specs.push(Spec { unit: Unit::Guess, ty });
        }
        Ok(Arc::new(Layout { schema: RecordSchema::new(columns), specs }))
    }

    /// An object's values aligned with the layout; `None` for fields it lacks. `partial`: a
    /// value equal to the unavailable-value placeholder is [`Value::Unchanged`].
    fn values(&self, layout: &Layout, obj: &Map<String, Json>, partial: bool) -> Result<Vec<Option<Value>>, String> {
        let zero = ValueContext::default();
        layout
            .schema
            .columns
            .iter()
            .zip(&layout.specs)
            .map(|(col, spec)| match obj.get(&col.name) {
                None => Ok(None),
                Some(Json::String(v)) if partial && self.is_placeholder(v, spec) => Ok(Some(Value::Unchanged)),
                Some(v) => convert(v, spec, &self.ctx, &zero)
                    .map(Some)
                    .map_err(|e| format!("column `{}` ({}): {e}", col.name, col.source_type)),
            })
            .collect()
    }
}

/// The order key of a Debezium PostgreSQL connector's change: PostgreSQL's commit order.
///
/// A streamed change's `source.lsn` is where the change itself was written, not where its
/// transaction committed: a transaction still open when the snapshot started streams later
/// with a *lower* LSN than the snapshot's records carry. `source.sequence` is
/// `["<lastCommitLsn>", "<lsn>"]`, the commit LSN of the transaction streamed before this
/// one: it grows with commit order, so a key's later transaction never sorts below an earlier
/// one, and changes of one transaction tie (then the partition's offset order decides).
/// Snapshot records (`op: r`, `source.snapshot` other than `false`) carry no order key of
/// their own: they take their partition's previous one, so a change streamed after them —
/// after, in the topic, is after the snapshot read the row — always wins.
fn postgres_order(source: Option<&Map<String, Json>>, op: Option<&str>) -> Option<u64> {
    let source = source?;
    let snapshot = source.get("snapshot").and_then(Json::as_str).is_some_and(|s| s != "false");
    if op == Some("r") || snapshot {
        return None;
    }
    match source.get("sequence").and_then(Json::as_str) {
        Some(seq) => {
            let parts: Vec<Option<String>> = serde_json::from_str(seq).ok()?;
            parts.first()?.as_deref()?.parse().ok()
        }
        None => source.get("lsn").and_then(Json::as_u64),
    }
}

impl DebeziumDecoder {
    /// Whether a string value is the placeholder (as text, or as a binary column's base64).
    fn is_placeholder(&self, v: &str, spec: &Spec) -> bool {
        match spec.unit {
            Unit::Base64 => v == self.unavailable_b64,
            Unit::Guess if spec.ty.kind == Kind::Bytes => v == self.unavailable_b64,
            _ => v == &*self.ctx.unavailable_value,
        }
    }
}

/// The type text recorded for a hinted (schema-less) column: the hint's own kind.
pub(super) fn hint_text(ty: &SourceType) -> String {
    match &ty.kind {
        Kind::Int { bytes: 2 } => "smallint".into(),
        Kind::Int { bytes: 4 } => "int".into(),
        Kind::Int { .. } => "bigint".into(),
        Kind::UInt64 => "bigint unsigned".into(),
        Kind::Float => "float".into(),
        Kind::Double => "double".into(),
        Kind::Decimal { precision: Some(p), scale } => format!("decimal({p},{})", scale.unwrap_or(0)),
        Kind::Decimal { .. } => "decimal".into(),
        Kind::Text { .. } => "text".into(),
        Kind::Bytes => "blob".into(),
        Kind::Bit => "bit".into(),
        Kind::Date => "date".into(),
        Kind::DateTime { fsp } => fsp.map(|f| format!("datetime({f})")).unwrap_or("datetime".into()),
        Kind::Timestamp { fsp } => fsp.map(|f| format!("timestamp({f})")).unwrap_or("timestamp".into()),
        Kind::Time { fsp } => fsp.map(|f| format!("time({f})")).unwrap_or("time".into()),
        Kind::Json => "json".into(),
        Kind::EnumIndex => "enum".into(),
        Kind::SetBits => "set".into(),
    }
}

/// `{"schema":…, "payload":…}` → (payload, schema); a bare payload stands alone.
fn envelope(doc: &Json) -> (&Json, Option<&Json>) {
    match doc.as_object() {
        Some(o) if o.contains_key("payload") => (&o["payload"], o.get("schema").filter(|s| !s.is_null())),
        _ => (doc, None),
    }
}

/// The struct schema of field `name` of an envelope schema.
fn struct_field<'a>(schema: &'a Json, name: &str) -> Option<&'a Json> {
    schema.get("fields")?.as_array()?.iter().find(|f| f.get("field").and_then(Json::as_str) == Some(name))
}

/// A Connect field schema → (MySQL type text, how its JSON value encodes it).
fn connect_type(f: &Json) -> (String, Unit) {
    let ty = f.get("type").and_then(Json::as_str).unwrap_or("string");
    let name = f.get("name").and_then(Json::as_str).unwrap_or_default();
    let param = |k: &str| f.get("parameters").and_then(|p| p.get(k)).and_then(Json::as_str);
    // TiCDC's extension names the TiDB type; it alone knows about UNSIGNED.
    if let Some(t) = f.get("tidb_type").and_then(Json::as_str) {
        let t = t.to_ascii_lowercase();
        if t.contains("int") && !t.contains("point") {
            return (t, Unit::Plain);
        }
    }
    let list = |k: &str| {
        param(k)
            .map(|a| a.split(',').map(|m| format!("'{}'", m.replace('\'', "''"))).collect::<Vec<_>>().join(","))
            .unwrap_or_default()
    };
    match name {
        "io.debezium.time.Date" | "org.apache.kafka.connect.data.Date" => ("date".into(), Unit::Days),
        "io.debezium.time.Timestamp" | "org.apache.kafka.connect.data.Timestamp" => {
            ("datetime(3)".into(), Unit::Millis)
        }
        "io.debezium.time.MicroTimestamp" => ("datetime(6)".into(), Unit::Micros),
        "io.debezium.time.NanoTimestamp" => ("datetime(6)".into(), Unit::Nanos),
        "io.debezium.time.ZonedTimestamp" => ("timestamp(6)".into(), Unit::Zoned),
        "io.debezium.time.Time" | "org.apache.kafka.connect.data.Time" => ("time(3)".into(), Unit::TimeMillis),
        "io.debezium.time.MicroTime" => ("time(6)".into(), Unit::TimeMicros),
        "io.debezium.time.NanoTime" => ("time(6)".into(), Unit::TimeNanos),
        "io.debezium.time.Year" => ("year".into(), Unit::Plain),
        "org.apache.kafka.connect.data.Decimal" => {
            let scale: u32 = param("scale").and_then(|s| s.parse().ok()).unwrap_or(0);
            // Confluent's AvroConverter names it `connect.decimal.precision`; TiCDC's
            // debezium-avro `precision`.
            let precision: u32 = param("connect.decimal.precision")
                .or_else(|| param("precision"))
                .and_then(|s| s.parse().ok())
                .unwrap_or(65);
            (format!("decimal({precision},{scale})"), Unit::DecimalBytes(scale))
        }
        "io.debezium.data.VariableScaleDecimal" => ("decimal".into(), Unit::VariableDecimal),
        "io.debezium.data.Bits" => {
            (param("length").map(|n| format!("bit({n})")).unwrap_or("bit".into()), Unit::BitsLittleEndian)
        }
        "io.debezium.data.Enum" => (format!("enum({})", list("allowed")), Unit::Plain),
        "io.debezium.data.EnumSet" => (format!("set({})", list("allowed")), Unit::Plain),
        "io.debezium.data.Json" => ("json".into(), Unit::Plain),
        _ => match ty {
            "int8" => ("tinyint".into(), Unit::Plain),
            "int16" => ("smallint".into(), Unit::Plain),
            "int32" => ("int".into(), Unit::Plain),
            "int64" => ("bigint".into(), Unit::Plain),
            "float" | "float32" => ("float".into(), Unit::Plain),
            "double" | "float64" => ("double".into(), Unit::Plain),
            "boolean" => ("boolean".into(), Unit::Plain),
            "bytes" => ("blob".into(), Unit::Base64),
            "struct" | "array" | "map" => ("json".into(), Unit::Plain),
            _ => ("text".into(), Unit::Plain),
        },
    }
}

fn b64(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD.decode(s).map_err(|e| format!("not base64: {e}"))
}

fn epoch(n: i64, unit: Unit) -> Result<String, String> {
    let (secs, nanos, digits) = match unit {
        Unit::Millis => (n.div_euclid(1000), n.rem_euclid(1000) * 1_000_000, 3),
        Unit::Micros => (n.div_euclid(1_000_000), n.rem_euclid(1_000_000) * 1000, 6),
        _ => (n.div_euclid(1_000_000_000), n.rem_euclid(1_000_000_000) / 1000 * 1000, 6),
    };
    let t = DateTime::from_timestamp(secs, nanos as u32).ok_or_else(|| format!("{n} is out of range"))?;
    Ok(match digits {
        3 => t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        _ => t.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
    })
}

fn duration(n: i64, unit: Unit) -> String {
    let micros = match unit {
        Unit::TimeMillis => n * 1000,
        Unit::TimeNanos => n / 1000,
        _ => n,
    };
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    let hms = format!("{sign}{:02}:{:02}:{:02}", m / 3_600_000_000, m / 60_000_000 % 60, m / 1_000_000 % 60);
    // Milliseconds fill a time(3) column: six digits would not fit it.
    match unit {
        Unit::TimeMillis => format!("{hms}.{:03}", m % 1_000_000 / 1000),
        _ => format!("{hms}.{:06}", m % 1_000_000),
    }
}

/// A JSON value as the column's canonical value.
fn convert(v: &Json, spec: &Spec, ctx: &ValueContext, utc: &ValueContext) -> Result<Value, String> {
    let ty = &spec.ty;
    let text = |s: String, c: &ValueContext| from_text(ty, &s, c, false);
    if v.is_null() {
        return Ok(Value::Null);
    }
    let unit = match spec.unit {
        Unit::Guess => guess(ty, v),
        u => u,
    };
    if let Some(special) = special_value(ty, unit, v) {
        return Ok(Value::Text(special.into()));
    }
    match (unit, v) {
        (Unit::Days, Json::Number(n)) => {
            let d = n.as_i64().ok_or("not a day number")?;
            let date = NaiveDate::from_ymd_opt(1970, 1, 1).and_then(|e| e.checked_add_signed(Duration::days(d)));
            text(date.ok_or("out of range")?.format("%Y-%m-%d").to_string(), utc)
        }
        (Unit::Millis | Unit::Micros | Unit::Nanos, Json::Number(n)) => {
            text(epoch(n.as_i64().ok_or("not an integer")?, unit)?, utc)
        }
        (Unit::Zoned, Json::String(s)) => {
            let t = DateTime::parse_from_rfc3339(s).map_err(|e| format!("`{s}` is not an ISO timestamp: {e}"))?;
            text(t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string(), utc)
        }
        (Unit::TimeMillis | Unit::TimeMicros | Unit::TimeNanos, Json::Number(n)) => {
            text(duration(n.as_i64().ok_or("not an integer")?, unit), utc)
        }
        (Unit::DecimalBytes(scale), Json::String(s)) => text(decimal_from_be(&b64(s)?, scale), ctx),
        (Unit::VariableDecimal, Json::Object(o)) => {
            let scale = o.get("scale").and_then(Json::as_u64).ok_or("a variable-scale decimal without scale")?;
            let bytes = b64(o.get("value").and_then(Json::as_str).ok_or("a variable-scale decimal without value")?)?;
            text(decimal_from_be(&bytes, scale as u32), ctx)
        }
        (Unit::BitsLittleEndian, Json::String(s)) => {
            // Little-endian; zero may come as no bytes at all (Debezium's PostgreSQL B'00000').
            let mut b = b64(s)?;
            if b.is_empty() {
                b.push(0);
            }
            b.reverse();
            let first = b.iter().position(|&x| x != 0).unwrap_or(b.len().saturating_sub(1));
            Ok(Value::Bytes(b[first..].to_vec()))
        }
        (Unit::BitsLittleEndian, Json::Bool(x)) => Ok(Value::Bytes(bit_bytes(*x as u64))),
        (Unit::Base64, Json::String(s)) => Ok(Value::Bytes(b64(s)?)),
        (_, Json::Bool(b)) => text(if *b { "1" } else { "0" }.into(), ctx),
        // BIGINT UNSIGNED: TiCDC writes int64(v), so values above 2^63-1 arrive negative.
        (_, Json::Number(n)) if ty.kind == Kind::UInt64 && n.as_i64().is_some_and(|i| i < 0) => {
            text((n.as_i64().unwrap_or(0) as u64).to_string(), ctx)
        }
        (_, Json::Number(n)) => text(n.to_string(), ctx),
        (_, Json::String(s)) if ty.kind == Kind::Json => Ok(Value::Text(s.clone())),
        (_, Json::String(s)) if ty.members.is_some() => Ok(Value::Text(s.clone())),
        (_, Json::String(s)) => text(s.clone(), ctx),
        (_, o @ (Json::Object(_) | Json::Array(_))) => Ok(Value::Text(o.to_string())),
        (_, other) => Err(format!("unexpected value {other}")),
    }
}

/// PostgreSQL's values beyond the ordinary, as Debezium's PostgreSQL connector sends them:
/// `NaN`/`Infinity`/`-Infinity` floats (strings), `infinity`/`-infinity` timestamps (pgjdbc's
/// `DATE_POSITIVE_INFINITY`/`DATE_NEGATIVE_INFINITY` as epoch numbers; strings for
/// `ZonedTimestamp`). Staged as PostgreSQL spells them; each replica keeps what it can hold.
fn special_value(ty: &SourceType, unit: Unit, v: &Json) -> Option<&'static str> {
    const POSITIVE_INFINITY: i64 = 9_223_372_036_825_200_000;
    const NEGATIVE_INFINITY: i64 = -9_223_372_036_832_400_000;
    match (&ty.kind, unit, v) {
        (Kind::Float | Kind::Double, _, Json::String(s)) => match s.as_str() {
            "NaN" => Some("NaN"),
            "Infinity" => Some("Infinity"),
            "-Infinity" => Some("-Infinity"),
            _ => None,
        },
        (_, Unit::Millis | Unit::Micros | Unit::Nanos, Json::Number(n)) => match n.as_i64() {
            Some(POSITIVE_INFINITY) => Some("infinity"),
            Some(NEGATIVE_INFINITY) => Some("-infinity"),
            _ => None,
        },
        (_, Unit::Zoned, Json::String(s)) => match s.as_str() {
            "infinity" => Some("infinity"),
            "-infinity" => Some("-infinity"),
            _ => None,
        },
        _ => None,
    }
}

/// Without a schema: the unit a value of this shape has for a column recorded as `ty`.
fn guess(ty: &SourceType, v: &Json) -> Unit {
    match (&ty.kind, v) {
        (Kind::Date, Json::Number(_)) => Unit::Days,
        (Kind::DateTime { .. } | Kind::Timestamp { .. }, Json::Number(n)) => {
            // Epoch ms for year 5138 is 1e14; epoch µs passed it in 1973.
            if n.as_i64().is_some_and(|i| i.unsigned_abs() >= 100_000_000_000_000) {
                Unit::Micros
            } else {
                Unit::Millis
            }
        }
        (Kind::Timestamp { .. }, Json::String(s)) if s.contains('T') => Unit::Zoned,
        (Kind::Time { .. }, Json::Number(_)) => Unit::TimeMicros,
        (Kind::Decimal { scale, .. }, Json::String(s)) if s.parse::<f64>().is_err() => {
            Unit::DecimalBytes(scale.unwrap_or(0) as u32)
        }
        (Kind::Bytes, Json::String(_)) => Unit::Base64,
        (Kind::Bit, Json::String(_) | Json::Bool(_)) => Unit::BitsLittleEndian,
        _ => Unit::Plain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(d: Decoded) -> Vec<RowEvent> {
        match d {
            Decoded::Rows(r) => r,
            other => panic!("expected rows, got {other:?}"),
        }
    }

    fn dec(key: Option<&str>, value: Option<&str>) -> Result<Decoded, String> {
        DebeziumDecoder::default().decode(key.map(str::as_bytes), value.map(str::as_bytes), None)
    }

    // TiCDC's examples (reference §3.2), schema disabled.
    const TICDC_INSERT: &str = r#"{"payload":{"before":null,"after":{"tiny":1},"op":"c","source":{"cluster_id":"test_cluster","name":"test_cluster","commit_ts":1,"connector":"TiCDC","db":"test","table":"table1","ts_ms":0,"file":"","gtid":null,"pos":0,"query":null,"row":0,"server_id":0,"snapshot":"false","thread":0,"version":"2.4.0.Final"},"ts_ms":1701326309000,"transaction":null}}"#;
    const TICDC_UPDATE: &str = r#"{"payload":{"source":{"version":"2.4.0.Final","connector":"TiCDC","name":"test_cluster","ts_ms":0,"snapshot":"false","db":"test","table":"table1","server_id":0,"gtid":null,"file":"","pos":0,"row":0,"thread":0,"query":null,"commit_ts":1,"cluster_id":"test_cluster"},"ts_ms":1701326309000,"transaction":null,"op":"u","before":{"tiny":2},"after":{"tiny":1}}}"#;
    const TICDC_DELETE: &str = r#"{"payload":{"before":{"tiny":2},"after":null,"op":"d","source":{"cluster_id":"test_cluster","name":"test_cluster","commit_ts":1,"connector":"TiCDC","db":"test","table":"table1","ts_ms":0,"file":"","gtid":null,"pos":0,"query":null,"row":0,"server_id":0,"snapshot":"false","thread":0,"version":"2.4.0.Final"},"ts_ms":1701326309000,"transaction":null}}"#;
    const TICDC_KEY: &str = r#"{"payload":{"tiny":1},"schema":{"fields":[{"field":"tiny","optional":true,"type":"int16"}],"name":"test_cluster.test.table1.Key","optional":false,"type":"struct"}}"#;

    #[test]
    fn ticdc_examples() {
        let ev = rows(dec(Some(TICDC_KEY), Some(TICDC_INSERT)).unwrap()).remove(0);
        assert_eq!(
            (ev.source_db.as_str(), ev.source_table.as_str(), ev.op, ev.commit_ts),
            ("test", "table1", Op::Insert, Some(1))
        );
        let c = ev.into_changes(None).unwrap().remove(0);
        assert_eq!(
            (c.key_json(), c.row_json().unwrap()),
            (r#"{"tiny":"1"}"#.to_string(), r#"{"tiny":"1"}"#.to_string())
        );
        // An update whose key changed (tiny 2 → 1): delete the old key, upsert the new.
        let up = rows(dec(Some(TICDC_KEY), Some(TICDC_UPDATE)).unwrap()).remove(0).into_changes(None).unwrap();
        assert_eq!((up.len(), up[0].op, up[0].key_json()), (2, Op::Delete, r#"{"tiny":"2"}"#.to_string()));
        let del = rows(dec(Some(TICDC_KEY), Some(TICDC_DELETE)).unwrap()).remove(0).into_changes(None).unwrap();
        assert_eq!((del[0].op, del[0].key_json()), (Op::Delete, r#"{"tiny":"2"}"#.to_string()));
        let wm = r#"{"payload":{"source":{"commit_ts":42},"op":"m","ts_ms":1}}"#;
        assert!(matches!(dec(None, Some(wm)).unwrap(), Decoded::Watermark { ts: 42 }));
        let ddl = r#"{"payload":{"source":{"db":"test","table":"table1","commit_ts":1},"ts_ms":1,"databaseName":"test","ddl":"RENAME TABLE test.table1 to test.table2","tableChanges":[]}}"#;
        assert!(matches!(dec(None, Some(ddl)).unwrap(), Decoded::Ddl { .. }));
    }

    /// The StarRocks seed's Debezium PostgreSQL connector record, then its delete and tombstone.
    #[test]
    fn postgres_connector_with_schema_and_tombstone() {
        let schema = r#"{"type":"struct","fields":[{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},{"type":"string","optional":true,"field":"first_name"},{"type":"string","optional":true,"field":"last_name"},{"type":"string","optional":true,"field":"email"}],"optional":true,"name":"test.public.customers.Value","field":"before"},{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},{"type":"string","optional":true,"field":"first_name"},{"type":"string","optional":true,"field":"last_name"},{"type":"string","optional":true,"field":"email"}],"optional":true,"name":"test.public.customers.Value","field":"after"},{"type":"struct","fields":[{"type":"string","optional":false,"field":"version"},{"type":"int64","optional":true,"field":"lsn"}],"optional":false,"name":"io.debezium.connector.postgresql.Source","field":"source"},{"type":"string","optional":false,"field":"op"}],"optional":false,"name":"test.public.customers.Envelope","version":1}"#;
        let insert = format!(
            r#"{{"schema":{schema},"payload":{{"before":null,"after":{{"id":1,"first_name":"a","last_name":"a","email":"a@a.com"}},"source":{{"version":"2.5.3.Final","connector":"postgresql","name":"test","ts_ms":1714283798721,"snapshot":"false","db":"postgres","sequence":"[\"22910216\",\"22910504\"]","schema":"public","table":"customers","txId":756,"lsn":22910504,"xmin":null}},"op":"c","ts_ms":1714283798790,"transaction":null}}}}"#
        );
        let key = r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":false,"name":"test.public.customers.Key"},"payload":{"id":1}}"#;
        let mut d = DebeziumDecoder::default();
        let ev = rows(d.decode(Some(key.as_bytes()), Some(insert.as_bytes()), None).unwrap()).remove(0);
        assert_eq!((ev.source_db.as_str(), ev.source_table.as_str()), ("public", "customers"));
        // Ordered by the last commit LSN of `source.sequence`, not by the change's own `lsn`.
        assert_eq!((ev.commit_ts, ev.commit_ms), (Some(22910216), Some(1714283798721)));
        assert_eq!(
            ev.schema.columns.iter().map(|c| c.source_type.as_str()).collect::<Vec<_>>(),
            vec!["int", "text", "text", "text"]
        );
        let c = ev.into_changes(None).unwrap().remove(0);
        assert_eq!(c.row_json().unwrap(), r#"{"id":"1","first_name":"a","last_name":"a","email":"a@a.com"}"#);
        // REPLICA IDENTITY DEFAULT: the delete's `before` holds only the key.
        let delete = insert
            .replace(
                r#""before":null,"after":{"id":1,"first_name":"a","last_name":"a","email":"a@a.com"}"#,
                r#""before":{"id":1,"first_name":null,"last_name":null,"email":null},"after":null"#,
            )
            .replace(r#""op":"c""#, r#""op":"d""#);
        let del = rows(d.decode(Some(key.as_bytes()), Some(delete.as_bytes()), None).unwrap())
            .remove(0)
            .into_changes(None)
            .unwrap();
        assert_eq!((del[0].op, del[0].key_json()), (Op::Delete, r#"{"id":"1"}"#.to_string()));
        let tomb = rows(d.decode(Some(key.as_bytes()), None, None).unwrap()).remove(0);
        assert_eq!((tomb.op, tomb.commit_ts), (Op::Delete, None));
        assert_eq!(tomb.into_changes(None).unwrap()[0].key_json(), r#"{"id":"1"}"#);
    }

    #[test]
    fn connect_types() {
        let schema = r#"{"type":"struct","fields":[{"type":"struct","field":"after","fields":[
            {"field":"d","type":"int32","name":"io.debezium.time.Date"},
            {"field":"ts","type":"int64","name":"io.debezium.time.MicroTimestamp"},
            {"field":"ms","type":"int64","name":"io.debezium.time.Timestamp"},
            {"field":"z","type":"string","name":"io.debezium.time.ZonedTimestamp"},
            {"field":"t","type":"int64","name":"io.debezium.time.MicroTime"},
            {"field":"tm","type":"int32","name":"io.debezium.time.Time"},
            {"field":"dec","type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2","connect.decimal.precision":"10"}},
            {"field":"v","type":"struct","name":"io.debezium.data.VariableScaleDecimal"},
            {"field":"bits","type":"bytes","name":"io.debezium.data.Bits","parameters":{"length":"5"}},
            {"field":"bin","type":"bytes"},
            {"field":"u","type":"int64","tidb_type":"BIGINT UNSIGNED"},
            {"field":"e","type":"string","name":"io.debezium.data.Enum","parameters":{"allowed":"a,b"}}
        ]}]}"#;
        let payload = r#"{"op":"c","source":{},"after":{"d":19691,"ts":1701347696123456,"ms":1701347696123,"z":"2023-11-30T12:34:56.123456Z","t":-3020399000000,"tm":45296789,
            "dec":"MDk=","v":{"scale":3,"value":"AQ=="},"bits":"EA==","bin":"Zm9v","u":-1,"e":"b"}}"#;
        let doc = format!(r#"{{"schema":{schema},"payload":{payload}}}"#);
        let ev = rows(DebeziumDecoder::default().decode(None, Some(doc.as_bytes()), None).unwrap()).remove(0);
        let t = |s: &str| Value::Text(s.into());
        assert_eq!(
            ev.after.unwrap(),
            vec![
                t("2023-11-30"),
                t("2023-11-30 12:34:56.123456"),
                t("2023-11-30 12:34:56.123"),
                t("2023-11-30 12:34:56.123456"),
                t("-838:59:59.000000"),
                t("12:34:56.789"),
                t("123.45"),
                t("0.001"),
                Value::Bytes(vec![16]),
                Value::Bytes(b"foo".to_vec()),
                t("18446744073709551615"),
                t("b"),
            ]
        );
    }

    /// Doubles arrive as JSON numbers: each is read to exactly the f64 it names (serde_json's
    /// `float_roundtrip`), e.g. `1.2345678912345679E8` was staged as `123456789.1234568`.
    #[test]
    fn doubles_are_read_to_the_exact_binary_value() {
        let schema = r#"{"type":"struct","fields":[{"type":"struct","field":"after","fields":[{"field":"x","type":"double"}]}]}"#;
        for literal in [
            "1.2345678912345679E8",
            "-1e-300",
            "2.2250738585072014E-308",
            "4.9E-324",
            "1.7976931348623157E308",
            "0.30000000000000004",
            "8.988465674311579E307",
            "-6.103515625E-5",
        ] {
            let doc =
                format!(r#"{{"schema":{schema},"payload":{{"op":"c","source":{{}},"after":{{"x":{literal}}}}}}}"#);
            let ev = rows(DebeziumDecoder::default().decode(None, Some(doc.as_bytes()), None).unwrap()).remove(0);
            let Some(Value::Text(staged)) = ev.after.unwrap().pop() else { panic!("{literal}: not text") };
            let want: f64 = literal.parse().unwrap();
            assert_eq!(staged.parse::<f64>().unwrap().to_bits(), want.to_bits(), "{literal} staged as {staged}");
        }
    }

    #[test]
    fn schemaless_values_follow_the_hints() {
        let mut hints = Hints::new();
        hints.insert("id".into(), SourceType::parse("int"));
        hints.insert("d".into(), SourceType::parse("date"));
        hints.insert("at".into(), SourceType::parse("datetime(6)"));
        hints.insert("price".into(), SourceType::parse("decimal(10,2)"));
        let v = r#"{"op":"c","source":{"commit_ts":7},"after":{"id":5,"d":19691,"at":1701347696123456,"price":"MDk=","note":"x"}}"#;
        let ev = rows(DebeziumDecoder::default().decode(None, Some(v.as_bytes()), Some(&hints)).unwrap()).remove(0);
        let t = |s: &str| Value::Text(s.into());
        assert_eq!(
            ev.after.unwrap(),
            vec![t("5"), t("2023-11-30"), t("2023-11-30 12:34:56.123456"), t("123.45"), t("x")]
        );
        assert_eq!(ev.schema.columns[3].source_type, "decimal(10,2)");
        assert_eq!(ev.schema.columns[4].source_type, "text");
    }

    #[test]
    fn bad_input() {
        assert!(dec(None, Some("{not json")).is_err());
        assert!(dec(None, None).unwrap_err().contains("tombstone without a key"));
        assert!(dec(None, Some(r#"{"payload":{"op":"t","source":{}}}"#)).unwrap_err().contains("TRUNCATE"));
        assert!(dec(None, Some(r#"{"payload":{"op":"c","source":{}}}"#)).is_err());
    }
}
