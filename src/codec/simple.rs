//! TiCDC's `simple` protocol, JSON encoding (`reference/ticdc-formats.md` §4.1).
//!
//! One event per message, `"version": 1`. DML (`INSERT` with `data`, `UPDATE` with `data` and
//! `old`, `DELETE` with `old`) carries no types: the table's schema comes from the `BOOTSTRAP`
//! messages TiCDC sends before a table's first change and then every 120 s, and from DDL
//! messages (`tableSchema`), cached per table and `schemaVersion`. A DML whose schema version
//! has not been seen (a consumer that starts mid-stream) is read with the newest schema seen of
//! its table, else with the table's recorded types. `WATERMARK` (every second, on every
//! partition) is a watermark; DDL is recorded. Values are strings; binary columns base64;
//! ENUM/SET/BIT their numbers; TIMESTAMP `{"location", "value"}` — converted to UTC.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use serde_json::{Map, Value as Json};

use super::debezium::Hints;
use super::text_values::{from_text, ValueContext};
use super::Decoded;
use crate::model::change::{Op, RowEvent, Value};
use crate::model::schema::{Column, Kind, RecordSchema, SourceType};

/// Schemas kept, over every table and version, before the cache starts again.
const MAX_SCHEMAS: usize = 1024;

/// A table's columns at one schema version.
#[derive(Debug)]
struct TableSchema {
    schema: Arc<RecordSchema>,
    types: Vec<SourceType>,
    /// Columns whose string values are base64 (binary charset).
    base64: Vec<bool>,
    key: Vec<String>,
}

#[derive(Default)]
pub struct SimpleDecoder {
    ctx: ValueContext,
    /// (database, table, schema version) → schema.
    schemas: HashMap<(String, String, u64), Arc<TableSchema>>,
    /// (database, table) → the newest version seen.
    newest: HashMap<(String, String), u64>,
}

impl SimpleDecoder {
    pub fn new(ctx: ValueContext) -> SimpleDecoder {
        SimpleDecoder { ctx, ..Default::default() }
    }

    pub fn decode(&mut self, value: &[u8], hints: Option<&Hints>) -> Result<Decoded, String> {
        let doc: Json = serde_json::from_slice(value).map_err(|e| format!("value is not JSON: {e}"))?;
        let m = doc.as_object().ok_or("a simple-protocol message is not a JSON object")?;
        match m.get("version").and_then(Json::as_i64) {
            Some(1) => {}
            other => return Err(format!("simple protocol version {other:?}: tidemark reads version 1")),
        }
        let ty = m.get("type").and_then(Json::as_str).ok_or("a message without `type`")?;
        let commit_ts = m.get("commitTs").and_then(Json::as_u64).filter(|&t| t > 0);
        match ty {
            "WATERMARK" => Ok(commit_ts.map_or(Decoded::Rows(Vec::new()), |ts| Decoded::Watermark { ts })),
            "BOOTSTRAP" => {
                self.learn(m.get("tableSchema"))?;
                Ok(Decoded::Rows(Vec::new()))
            }
            "INSERT" | "UPDATE" | "DELETE" => self.dml(m, ty, commit_ts, hints),
            "CREATE" | "RENAME" | "CINDEX" | "DINDEX" | "ERASE" | "TRUNCATE" | "ALTER" | "QUERY" => {
                let schema = m.get("tableSchema");
                self.learn(schema)?;
                let text =
                    |k: &str| schema.and_then(|s| s.get(k)).and_then(Json::as_str).unwrap_or_default().to_string();
                let sql = m.get("sql").and_then(Json::as_str).unwrap_or_default().to_string();
                Ok(Decoded::Ddl { db: text("schema"), table: text("table"), sql, commit_ts })
            }
            other => Err(format!("unknown simple-protocol message type `{other}`")),
        }
    }

    /// Caches a `tableSchema`.
    fn learn(&mut self, schema: Option<&Json>) -> Result<(), String> {
        let Some(s) = schema.filter(|s| !s.is_null()) else { return Ok(()) };
        let text = |k: &str| s.get(k).and_then(Json::as_str).map(str::to_string);
        let db = text("schema").ok_or("a tableSchema without `schema`")?;
        let table = text("table").ok_or("a tableSchema without `table`")?;
        let version = s.get("version").and_then(Json::as_u64).ok_or("a tableSchema without `version`")?;
        let cols = s.get("columns").and_then(Json::as_array).ok_or("a tableSchema without `columns`")?;
        let mut columns = Vec::new();
        let mut types = Vec::new();
        let mut base64 = Vec::new();
        for c in cols {
            let name = c.get("name").and_then(Json::as_str).ok_or("a column without `name`")?;
            let dt = c.get("dataType").ok_or_else(|| format!("column `{name}` without `dataType`"))?;
            let (type_text, binary) = type_text(dt);
            types.push(SourceType::parse(&type_text));
            base64.push(binary);
            columns.push(Column::new(name, type_text));
        }
        let key = primary_key(s);
        if self.schemas.len() >= MAX_SCHEMAS {
            self.schemas.clear();
        }
        let entry = self.newest.entry((db.clone(), table.clone())).or_insert(version);
        *entry = (*entry).max(version);
        let schema = TableSchema { schema: RecordSchema::new(columns), types, base64, key };
        self.schemas.insert((db, table, version), Arc::new(schema));
        Ok(())
    }

    fn dml(
        &mut self,
        m: &Map<String, Json>,
        ty: &str,
        commit_ts: Option<u64>,
        hints: Option<&Hints>,
    ) -> Result<Decoded, String> {
        let text = |k: &str| m.get(k).and_then(Json::as_str).unwrap_or_default().to_string();
        let (db, table) = (text("database"), text("table"));
        if let Some(location) = m.get("claimCheckLocation").and_then(Json::as_str) {
            return Ok(Decoded::ClaimCheck { location: location.to_string() });
        }
        let version = m.get("schemaVersion").and_then(Json::as_u64).unwrap_or(0);
        let data = m.get("data").and_then(Json::as_object);
        let old = m.get("old").and_then(Json::as_object);
        let any = data.or(old).ok_or("a DML message without `data` or `old`")?;
        let schema = self.schema_for(&db, &table, version, any, hints)?;
        let after = match data {
            Some(d) => Some(self.values(&schema, d)?.into_iter().map(|v| v.unwrap_or(Value::Null)).collect()),
            None => None,
        };
        let before = match old {
            Some(o) => Some(self.values(&schema, o)?),
            None => None,
        };
        let op = match ty {
            "INSERT" => Op::Insert,
            "UPDATE" => Op::Update,
            _ => Op::Delete,
        };
        if op != Op::Delete && after.is_none() {
            return Err(format!("an {ty} without `data`"));
        }
        Ok(Decoded::Rows(vec![RowEvent {
            source_db: db,
            source_table: table,
            schema: schema.schema.clone(),
            op,
            after,
            before,
            commit_ts,
            commit_ms: commit_ts.map(|t| (t >> 18) as i64),
            key_names: schema.key.clone(),
            key_only: m.get("handleKeyOnly").and_then(Json::as_bool).unwrap_or(false),
        }]))
    }

    /// The schema a DML is read with: its version's, else the newest of its table, else the
    /// table's recorded types (key from the recorded key or the config).
    fn schema_for(
        &self,
        db: &str,
        table: &str,
        version: u64,
        obj: &Map<String, Json>,
        hints: Option<&Hints>,
    ) -> Result<Arc<TableSchema>, String> {
        let (d, t) = (db.to_string(), table.to_string());
        if let Some(s) = self.schemas.get(&(d.clone(), t.clone(), version)) {
            return Ok(s.clone());
        }
        if let Some(s) = self.newest.get(&(d.clone(), t.clone())).and_then(|v| self.schemas.get(&(d, t, *v))) {
            return Ok(s.clone());
        }
        let hints = hints.ok_or_else(|| {
            format!(
                "no BOOTSTRAP or DDL message of {db}.{table} (schema version {version}) has been read: TiCDC sends \
                 one before a table's first change and every 120 s (send-bootstrap-interval-in-sec)"
            )
        })?;
        let mut columns = Vec::new();
        let mut types = Vec::new();
        for name in obj.keys() {
            let ty = hints.get(name).cloned().unwrap_or_else(|| SourceType::parse("text"));
            columns.push(Column::new(name.clone(), super::debezium::hint_text(&ty)));
            types.push(ty);
        }
        // Binary columns are base64 whatever their recorded type says of the charset.
        let base64 = types.iter().map(|t| t.kind == Kind::Bytes).collect();
        Ok(Arc::new(TableSchema { schema: RecordSchema::new(columns), types, base64, key: Vec::new() }))
    }

    /// An object's values aligned with the schema; `None` for columns it lacks.
    fn values(&self, s: &TableSchema, obj: &Map<String, Json>) -> Result<Vec<Option<Value>>, String> {
        s.schema
            .columns
            .iter()
            .enumerate()
            .map(|(i, col)| match obj.get(&col.name) {
                None => Ok(None),
                Some(v) => self
                    .value(v, &s.types[i], s.base64[i])
                    .map(Some)
                    .map_err(|e| format!("column `{}` ({}): {e}", col.name, col.source_type)),
            })
            .collect()
    }

    fn value(&self, v: &Json, ty: &SourceType, base64: bool) -> Result<Value, String> {
        match v {
            Json::Null => Ok(Value::Null),
            Json::String(s) if base64 => base64::engine::general_purpose::STANDARD
                .decode(s)
                .map(Value::Bytes)
                .map_err(|e| format!("not base64: {e}")),
            Json::String(s) => from_text(ty, s, &self.ctx, false),
            // TIMESTAMP: `{"location": "<tz>", "value": "<text in that zone>"}`.
            Json::Object(o) => {
                let text = o.get("value").and_then(Json::as_str).ok_or("a TIMESTAMP object without `value`")?;
                let location = o.get("location").and_then(Json::as_str).unwrap_or("UTC");
                let offset = match location {
                    "UTC" | "" => 0,
                    other => crate::config::parse_offset(other).unwrap_or(self.ctx.source_offset_secs),
                };
                let ctx = ValueContext { source_offset_secs: offset, ..self.ctx.clone() };
                from_text(ty, text, &ctx, false)
            }
            Json::Number(n) => from_text(ty, &n.to_string(), &self.ctx, false),
            Json::Bool(b) => from_text(ty, if *b { "1" } else { "0" }, &self.ctx, false),
            Json::Array(_) => Err("an array value".into()),
        }
    }
}

/// A column's `dataType` as MySQL type text, and whether its string values are base64.
fn type_text(dt: &Json) -> (String, bool) {
    let ty = dt.get("mysqlType").and_then(Json::as_str).unwrap_or("text").to_ascii_lowercase();
    let num = |k: &str| dt.get(k).and_then(Json::as_i64).filter(|&n| n > 0);
    let binary_charset = dt.get("charset").and_then(Json::as_str) == Some("binary");
    let unsigned = dt.get("unsigned").and_then(Json::as_bool).unwrap_or(false);
    let elements = || {
        dt.get("elements")
            .and_then(Json::as_array)
            .map(|e| {
                e.iter()
                    .filter_map(Json::as_str)
                    .map(|m| format!("'{}'", m.replace('\'', "''")))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    let stringy = matches!(
        ty.as_str(),
        "char"
            | "varchar"
            | "binary"
            | "varbinary"
            | "tinytext"
            | "text"
            | "mediumtext"
            | "longtext"
            | "tinyblob"
            | "blob"
            | "mediumblob"
            | "longblob"
    );
    let text = match ty.as_str() {
        "decimal" => match (num("length"), dt.get("decimal").and_then(Json::as_i64)) {
            (Some(p), Some(s)) => format!("decimal({p},{})", s.max(0)),
            _ => "decimal".into(),
        },
        "datetime" | "timestamp" | "time" => match dt.get("decimal").and_then(Json::as_i64).filter(|&f| f > 0) {
            Some(fsp) => format!("{ty}({fsp})"),
            None => ty.clone(),
        },
        "char" | "varchar" | "binary" | "varbinary" => match num("length") {
            Some(n) => format!("{ty}({n})"),
            None => ty.clone(),
        },
        "bit" => format!("bit({})", num("length").unwrap_or(1)),
        "enum" | "set" => format!("{ty}({})", elements()),
        t if t.contains("int") && unsigned => format!("{t} unsigned"),
        _ => ty.clone(),
    };
    (text, stringy && binary_charset)
}

/// The primary key's columns, else the first unique index of NOT NULL columns.
fn primary_key(schema: &Json) -> Vec<String> {
    let indexes = schema.get("indexes").and_then(Json::as_array).cloned().unwrap_or_default();
    let cols = |i: &Json| -> Vec<String> {
        i.get("columns")
            .and_then(Json::as_array)
            .map(|c| c.iter().filter_map(|n| n.as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    let flag = |i: &Json, k: &str| i.get(k).and_then(Json::as_bool).unwrap_or(false);
    indexes
        .iter()
        .find(|i| flag(i, "primary"))
        .or_else(|| indexes.iter().find(|i| flag(i, "unique") && !flag(i, "nullable")))
        .map(cols)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The reference's literal examples (§4.1, TiCDC's docs), with the BOOTSTRAP of `user`.
    const BOOTSTRAP: &str = r#"{"version":1,"type":"BOOTSTRAP","commitTs":0,"buildTs":1708924603278,"tableSchema":{"schema":"simple","table":"user","tableID":148,"version":447984074911121426,"columns":[{"name":"id","dataType":{"mysqlType":"int","charset":"binary","collate":"binary","length":11},"nullable":false,"default":null},{"name":"name","dataType":{"mysqlType":"varchar","charset":"utf8mb4","collate":"utf8mb4_bin","length":255},"nullable":true,"default":null},{"name":"age","dataType":{"mysqlType":"int","charset":"binary","collate":"binary","length":11},"nullable":true,"default":null},{"name":"score","dataType":{"mysqlType":"float","charset":"binary","collate":"binary","length":12},"nullable":true,"default":null}],"indexes":[{"name":"primary","unique":true,"primary":true,"nullable":false,"columns":["id"]}]}}"#;
    const INSERT: &str = r#"{"version":1,"database":"simple","table":"user","tableID":148,"type":"INSERT","commitTs":447984084414103554,"buildTs":1708923662983,"schemaVersion":447984074911121426,"data":{"age":"25","id":"1","name":"John Doe","score":"90.5"}}"#;
    const UPDATE: &str = r#"{"version":1,"database":"simple","table":"user","tableID":148,"type":"UPDATE","commitTs":447984099186180098,"buildTs":1708923719184,"schemaVersion":447984074911121426,"data":{"age":"25","id":"1","name":"John Doe","score":"95"},"old":{"age":"25","id":"1","name":"John Doe","score":"90.5"}}"#;
    const DELETE: &str = r#"{"version":1,"database":"simple","table":"user","tableID":148,"type":"DELETE","commitTs":447984114259722243,"buildTs":1708923776484,"schemaVersion":447984074911121426,"old":{"age":"25","id":"1","name":"John Doe","score":"95"}}"#;
    const WATERMARK: &str = r#"{"version":1,"type":"WATERMARK","commitTs":447984124732375041,"buildTs":1708923816911}"#;

    fn rows(d: Decoded) -> Vec<RowEvent> {
        match d {
            Decoded::Rows(r) => r,
            other => panic!("expected rows, got {other:?}"),
        }
    }

    #[test]
    fn the_references_examples() {
        let mut d = SimpleDecoder::default();
        assert!(d.decode(INSERT.as_bytes(), None).unwrap_err().contains("no BOOTSTRAP"));
        assert!(rows(d.decode(BOOTSTRAP.as_bytes(), None).unwrap()).is_empty());
        let ev = rows(d.decode(INSERT.as_bytes(), None).unwrap()).remove(0);
        assert_eq!(
            (ev.op, ev.commit_ts, ev.key_names.clone()),
            (Op::Insert, Some(447984084414103554), vec!["id".to_string()])
        );
        assert_eq!(
            ev.schema.columns.iter().map(|c| c.source_type.as_str()).collect::<Vec<_>>(),
            vec!["int", "varchar(255)", "int", "float"]
        );
        let c = ev.into_changes(None).unwrap().remove(0);
        assert_eq!(c.row_json().unwrap(), r#"{"id":"1","name":"John Doe","age":"25","score":"90.5"}"#);
        let up = rows(d.decode(UPDATE.as_bytes(), None).unwrap()).remove(0).into_changes(None).unwrap();
        assert_eq!((up.len(), up[0].op), (1, Op::Update));
        let del = rows(d.decode(DELETE.as_bytes(), None).unwrap()).remove(0).into_changes(None).unwrap();
        assert_eq!((del[0].op, del[0].key_json()), (Op::Delete, r#"{"id":"1"}"#.to_string()));
        assert!(matches!(d.decode(WATERMARK.as_bytes(), None).unwrap(), Decoded::Watermark { ts: 447984124732375041 }));
    }

    #[test]
    fn binary_is_base64_and_timestamps_carry_their_zone() {
        let schema = r#"{"version":1,"type":"CREATE","sql":"CREATE TABLE t (...)","commitTs":5,"tableSchema":{"schema":"s","table":"t","version":7,"columns":[
            {"name":"id","dataType":{"mysqlType":"bigint","charset":"binary","unsigned":true}},
            {"name":"b","dataType":{"mysqlType":"varbinary","charset":"binary","length":8}},
            {"name":"ts","dataType":{"mysqlType":"timestamp","charset":"binary","decimal":3}},
            {"name":"e","dataType":{"mysqlType":"enum","charset":"utf8mb4","elements":["a","b"]}},
            {"name":"bt","dataType":{"mysqlType":"bit","charset":"binary","length":4}}],
            "indexes":[{"name":"primary","primary":true,"unique":true,"columns":["id"]}]}}"#;
        let mut d = SimpleDecoder::default();
        assert!(matches!(d.decode(schema.as_bytes(), None).unwrap(), Decoded::Ddl { commit_ts: Some(5), .. }));
        let dml = r#"{"version":1,"database":"s","table":"t","type":"INSERT","commitTs":9,"schemaVersion":7,"data":
            {"id":"18446744073709551615","b":"AP8=","ts":{"location":"+08:00","value":"2024-01-01 08:00:00.123"},"e":"2","bt":"5"}}"#;
        let ev = rows(d.decode(dml.as_bytes(), None).unwrap()).remove(0);
        let t = |s: &str| Value::Text(s.into());
        assert_eq!(
            ev.after.unwrap(),
            vec![
                t("18446744073709551615"),
                Value::Bytes(vec![0, 255]),
                t("2024-01-01 00:00:00.123"),
                t("b"),
                Value::Bytes(vec![5])
            ]
        );
    }
}
