//! Debezium's envelope in Avro (Confluent's AvroConverter for key and value: `<topic>-key` and
//! `<topic>-value` subjects; `before`/`after` unions with null; Connect's semantic types as
//! `connect.name` / `connect.parameters` on each field: `io.debezium.time.*`, `Decimal` bytes,
//! `VariableScaleDecimal` records, `Json`, `Uuid`, …), and TiCDC's `protocol=debezium` in Avro.
//!
//! Each record is read with its writer schema into exactly what Debezium's JSON converter
//! writes for it — the Connect schema and the payload (bytes as base64, unions unwrapped,
//! non-finite floats as `NaN`/`Infinity` strings) — and then decoded by the Debezium decoder,
//! so both encodings share one implementation of ordering, placeholders and types.

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::types::Value as Avro;
use base64::Engine;
use serde_json::{json, Map, Value as Json};

use super::avro::{frame, read_datum, WriterCache};
use super::debezium::{DebeziumDecoder, Hints};
use super::registry::Registry;
use super::text_values::ValueContext;
use super::Decoded;

/// A writer schema: Avro's, and the Connect schema Debezium's JSON converter would write.
pub(super) struct Writer {
    avro: apache_avro::Schema,
    connect: Json,
    /// Some field's Avro name is not its column's (see [`rename_fields`]).
    renamed: bool,
}

impl Writer {
    fn parse(text: &str) -> Result<Writer, String> {
        let avro = apache_avro::Schema::parse_str(text).map_err(|e| format!("not an Avro schema: {e}"))?;
        let json: Json = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let mut named = HashMap::new();
        let connect = connect_schema(&json, "", &mut named)?;
        Ok(Writer { avro, renamed: has_renames(&connect), connect })
    }

    fn read(&self, id_and_body: &[u8]) -> Result<Json, String> {
        let (_, body) = frame(id_and_body)?;
        let v = read_datum(&self.avro, body)?;
        let mut payload = payload(v)?;
        if self.renamed {
            rename_fields(&mut payload, &self.connect);
        }
        Ok(json!({"schema": self.connect, "payload": payload}))
    }
}

/// Marks a Connect field whose Avro name differs from the column's (`connect.field`).
const AVRO_NAME: &str = "tidemark_avro_name";

/// Whether any field of `schema` (at any depth) goes by another name in Avro.
fn has_renames(schema: &Json) -> bool {
    schema
        .get("fields")
        .and_then(Json::as_array)
        .is_some_and(|fs| fs.iter().any(|f| f.get(AVRO_NAME).is_some() || has_renames(f)))
}

/// The payload's members under their columns' names instead of their Avro names.
fn rename_fields(payload: &mut Json, schema: &Json) {
    let (Some(fields), Some(obj)) = (schema.get("fields").and_then(Json::as_array), payload.as_object_mut()) else {
        return;
    };
    for f in fields {
        let Some(column) = f.get("field").and_then(Json::as_str) else { continue };
        if let Some(avro) = f.get(AVRO_NAME).and_then(Json::as_str) {
            if let Some(v) = obj.remove(avro) {
                obj.insert(column.to_string(), v);
            }
        }
        if let Some(inner) = obj.get_mut(column) {
            rename_fields(inner, f);
        }
    }
}

pub struct DebeziumAvroDecoder {
    cache: WriterCache<Writer>,
    inner: DebeziumDecoder,
}

impl DebeziumAvroDecoder {
    pub fn new(ctx: ValueContext, registry: Arc<Registry>) -> DebeziumAvroDecoder {
        DebeziumAvroDecoder { cache: WriterCache::new(registry, Writer::parse), inner: DebeziumDecoder::new(ctx) }
    }

    pub async fn prefetch(&mut self, ids: Vec<u32>) -> anyhow::Result<()> {
        self.cache.prefetch(ids).await
    }

    pub fn decode(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        hints: Option<&Hints>,
    ) -> Result<Decoded, String> {
        let doc = |b: &[u8], what: &str| -> Result<Json, String> {
            let (id, _) = frame(b).map_err(|e| format!("{what}: {e}"))?;
            self.cache.writer(id)?.read(b).map_err(|e| format!("{what}: {e}"))
        };
        let key_doc = match key.filter(|k| !k.is_empty()) {
            Some(k) => Some(doc(k, "key")?),
            None => None,
        };
        let value_doc = match value.filter(|v| !v.is_empty()) {
            Some(v) => doc(v, "value")?,
            None => Json::Null,
        };
        self.inner.decode_docs(key_doc.as_ref(), &value_doc, hints)
    }
}

/// The Connect schema (as Kafka Connect's JSON converter writes it) of an Avro schema;
/// `named`: the records defined so far, by full name, for later references.
fn connect_schema(s: &Json, namespace: &str, named: &mut HashMap<String, Json>) -> Result<Json, String> {
    match s {
        Json::String(t) => Ok(match t.as_str() {
            "null" => json!({"type": "null"}),
            "boolean" => json!({"type": "boolean"}),
            "int" => json!({"type": "int32"}),
            "long" => json!({"type": "int64"}),
            "float" => json!({"type": "float"}),
            "double" => json!({"type": "double"}),
            "bytes" | "fixed" => json!({"type": "bytes"}),
            "string" => json!({"type": "string"}),
            name => {
                let full = if name.contains('.') || namespace.is_empty() {
                    name.to_string()
                } else {
                    format!("{namespace}.{name}")
                };
                named
                    .get(&full)
                    .or_else(|| named.get(name))
                    .cloned()
                    .ok_or_else(|| format!("an unknown type `{name}`"))?
            }
        }),
        // A union with null is an optional field of the other branch.
        Json::Array(branches) => {
            let other: Vec<&Json> = branches.iter().filter(|b| b.as_str() != Some("null")).collect();
            match other.as_slice() {
                [one] => {
                    let mut c = connect_schema(one, namespace, named)?;
                    c["optional"] = json!(true);
                    Ok(c)
                }
                _ => Err("a union of several non-null types".into()),
            }
        }
        Json::Object(o) => {
            let ty = o.get("type").ok_or("a schema without a type")?;
            let mut c = match ty.as_str() {
                Some("record") => {
                    let ns = o.get("namespace").and_then(Json::as_str).unwrap_or(namespace).to_string();
                    let name = o.get("name").and_then(Json::as_str).unwrap_or_default();
                    let mut fields = Vec::new();
                    for f in o.get("fields").and_then(Json::as_array).ok_or("a record without fields")? {
                        let fname = f.get("name").and_then(Json::as_str).ok_or("a field without a name")?;
                        let mut fc = connect_schema(f.get("type").ok_or("a field without a type")?, &ns, named)?;
                        // TiCDC writes a column whose name Avro does not allow under a sanitized
                        // name, with the column's own in `connect.field` (and its type in
                        // `tidb_type`, with the TiDB extension).
                        let column = f.get("connect.field").and_then(Json::as_str).unwrap_or(fname);
                        fc["field"] = json!(column);
                        if column != fname {
                            fc[AVRO_NAME] = json!(fname);
                        }
                        if let Some(t) = f.get("tidb_type") {
                            fc["tidb_type"] = t.clone();
                        }
                        fields.push(fc);
                    }
                    let c = json!({"type": "struct", "fields": fields});
                    let full =
                        if name.contains('.') || ns.is_empty() { name.to_string() } else { format!("{ns}.{name}") };
                    let mut c = c;
                    copy_connect(o, &mut c);
                    named.insert(full, c.clone());
                    return Ok(c);
                }
                Some("array") => json!({"type": "array"}),
                Some("map") => json!({"type": "map"}),
                Some("enum") => json!({"type": "string"}),
                Some("fixed") => json!({"type": "bytes"}),
                Some(_) | None => connect_schema(ty, namespace, named)?,
            };
            // `connect.type` narrows Avro's int: int8, int16.
            if let Some(t) = o.get("connect.type").and_then(Json::as_str) {
                c["type"] = json!(t);
            }
            copy_connect(o, &mut c);
            Ok(c)
        }
        other => Err(format!("an unexpected schema {other}")),
    }
}

/// `connect.name` → `name`, `connect.parameters` → `parameters`.
fn copy_connect(o: &Map<String, Json>, c: &mut Json) {
    if let Some(n) = o.get("connect.name") {
        c["name"] = n.clone();
    }
    if let Some(p) = o.get("connect.parameters") {
        c["parameters"] = p.clone();
    }
}

/// An Avro value as Kafka Connect's JSON converter writes it.
fn payload(v: Avro) -> Result<Json, String> {
    let b64 = |b: &[u8]| Json::String(base64::engine::general_purpose::STANDARD.encode(b));
    let float = |f: f64| {
        if f.is_nan() {
            json!("NaN")
        } else if f.is_infinite() {
            json!(if f > 0.0 { "Infinity" } else { "-Infinity" })
        } else {
            serde_json::Number::from_f64(f).map(Json::Number).unwrap_or(Json::Null)
        }
    };
    Ok(match v {
        Avro::Null => Json::Null,
        Avro::Boolean(b) => json!(b),
        Avro::Int(i) | Avro::Date(i) | Avro::TimeMillis(i) => json!(i),
        Avro::Long(l)
        | Avro::TimeMicros(l)
        | Avro::TimestampMillis(l)
        | Avro::TimestampMicros(l)
        | Avro::TimestampNanos(l)
        | Avro::LocalTimestampMillis(l)
        | Avro::LocalTimestampMicros(l)
        | Avro::LocalTimestampNanos(l) => json!(l),
        // Widening f32 to f64 is exact; the decoder rounds it back for FLOAT columns.
        Avro::Float(f) => float(f64::from(f)),
        Avro::Double(f) => float(f),
        Avro::Bytes(b) | Avro::Fixed(_, b) => b64(&b),
        Avro::String(s) | Avro::Enum(_, s) => Json::String(s),
        Avro::Uuid(u) => Json::String(u.to_string()),
        Avro::Decimal(d) => {
            let bytes: Vec<u8> = Vec::try_from(&d).map_err(|e| format!("a decimal: {e}"))?;
            b64(&bytes)
        }
        Avro::Union(_, inner) => payload(*inner)?,
        Avro::Record(fields) => {
            let mut m = Map::new();
            for (k, v) in fields {
                m.insert(k, payload(v)?);
            }
            Json::Object(m)
        }
        Avro::Array(items) => Json::Array(items.into_iter().map(payload).collect::<Result<_, _>>()?),
        Avro::Map(entries) => {
            let mut m = Map::new();
            for (k, v) in entries {
                m.insert(k, payload(v)?);
            }
            Json::Object(m)
        }
        other => return Err(format!("an Avro value tidemark does not read: {other:?}")),
    })
}
