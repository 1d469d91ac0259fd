//! TiCDC canal-json (`protocol=canal-json`), as `reference/ticdc-formats.md` §2 describes it.
//!
//! One row per message; every value a JSON string or null; `isDdl` → DDL, `TIDB_WATERMARK` →
//! watermark, otherwise DML. The commit timestamp is `_tidb.commitTs` (a u64 TSO, parsed
//! exactly) when the changefeed has `enable-tidb-extension=true`, else `es` (commit physical
//! milliseconds) shifted into TSO form so both order the same way.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::text_values::{from_text, ValueContext};
use super::Decoded;
use crate::model::change::{Op, RowEvent, Value};
use crate::model::schema::{Column, RecordSchema};

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default, borrow)]
    database: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    table: Option<Cow<'a, str>>,
    #[serde(default, rename = "pkNames", borrow)]
    pk_names: Option<Vec<Cow<'a, str>>>,
    #[serde(default, rename = "isDdl")]
    is_ddl: bool,
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    es: Option<i64>,
    #[serde(default, borrow)]
    sql: Option<Cow<'a, str>>,
    #[serde(default, rename = "mysqlType", borrow)]
    mysql_type: Option<Pairs<'a>>,
    #[serde(default, borrow)]
    data: Option<Vec<Pairs<'a>>>,
    #[serde(default, borrow)]
    old: Option<Vec<Pairs<'a>>>,
    #[serde(default, rename = "_tidb")]
    tidb: Option<TidbExtension>,
}

#[derive(Deserialize, Default)]
struct TidbExtension {
    #[serde(default, rename = "commitTs")]
    commit_ts: Option<u64>,
    #[serde(default, rename = "watermarkTs")]
    watermark_ts: Option<u64>,
    #[serde(default, rename = "onlyHandleKey")]
    only_handle_key: bool,
    #[serde(default, rename = "claimCheckLocation")]
    claim_check_location: Option<String>,
}

/// A JSON object read as an ordered list of (name, string-or-null): keeps upstream column
/// order and borrows from the message where it can.
struct Pairs<'a>(Vec<(Cow<'a, str>, Option<Cow<'a, str>>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Pairs<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Pairs<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of column values")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Pairs<'a>, M::Error> {
                let mut out = Vec::with_capacity(m.size_hint().unwrap_or(8));
                while let Some(k) = m.next_key::<Text<'a>>()? {
                    let v = m.next_value::<Option<Text<'a>>>()?;
                    out.push((k.0, v.map(|t| t.0)));
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A string (borrowed when unescaped); numbers and booleans are accepted as their JSON text.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(if v { "1" } else { "0" })))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Text<'a>, A::Error> {
                Err(de::Error::custom("a column value must be a string or null, not an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Text<'a>, A::Error> {
                Err(de::Error::custom("a column value must be a string or null, not an object"))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Decodes canal-json; remembers each table's last column layout so that records with the
/// same layout share one [`RecordSchema`].
#[derive(Default)]
pub struct CanalJsonDecoder {
    ctx: ValueContext,
    layouts: HashMap<(String, String), Arc<RecordSchema>>,
}

impl CanalJsonDecoder {
    pub fn new(ctx: ValueContext) -> Self {
        CanalJsonDecoder { ctx, layouts: HashMap::new() }
    }

    pub fn decode(&mut self, value: &[u8]) -> Result<Decoded, String> {
        if value.is_empty() {
            return Err("empty message (canal-json records always carry a value)".into());
        }
        let m: Message = serde_json::from_slice(value).map_err(|e| format!("invalid canal-json: {e}"))?;
        let tidb = m.tidb.unwrap_or_default();
        let commit_ts = tidb.commit_ts.or_else(|| m.es.filter(|&es| es > 0).map(|es| (es as u64) << 18));
        let db = m.database.as_deref().unwrap_or_default().to_string();
        let table = m.table.as_deref().unwrap_or_default().to_string();
        if m.is_ddl {
            return Ok(Decoded::Ddl { db, table, sql: m.sql.map(|s| s.into_owned()).unwrap_or_default(), commit_ts });
        }
        if m.kind == "TIDB_WATERMARK" {
            let ts = tidb.watermark_ts.or_else(|| m.es.map(|es| (es.max(0) as u64) << 18)).unwrap_or(0);
            return Ok(Decoded::Watermark { ts });
        }
        let op = match &*m.kind {
            "INSERT" => Op::Insert,
            "UPDATE" => Op::Update,
            "DELETE" => Op::Delete,
            other => return Err(format!("unknown canal-json type `{other}`")),
        };
        if table.is_empty() {
            return Err("a DML message without a table name".into());
        }
        if let Some(location) = tidb.claim_check_location.clone() {
            return Ok(Decoded::ClaimCheck { location });
        }
        let types = m.mysql_type.ok_or("a DML message without mysqlType")?;
        let key_only = tidb.only_handle_key;
        let schema = self.layout(&db, &table, &types, key_only);

        let mut data = m.data.unwrap_or_default();
        if data.len() != 1 {
            return Err(format!("expected exactly one row in `data`, found {}", data.len()));
        }
        let data = self.values(&schema, data.swap_remove(0))?;
        let old = match m.old {
            Some(mut old) if op == Op::Update && !old.is_empty() => Some(self.values(&schema, old.swap_remove(0))?),
            _ => None,
        };
        let key_names = m.pk_names.unwrap_or_default().into_iter().map(Cow::into_owned).collect();
        let (after, before) = match op {
            Op::Insert => (Some(fill(data)), None),
            Op::Update => (Some(fill(data)), old),
            Op::Delete => (None, Some(data)),
        };
        let commit_ms = m.es.filter(|&es| es > 0).or(commit_ts.map(|ts| (ts >> 18) as i64));
        let event = RowEvent {
            source_db: db,
            source_table: table,
            schema,
            op,
            after,
            before,
            commit_ts,
            commit_ms,
            key_names,
            key_only,
        };
        Ok(Decoded::Rows(vec![event]))
    }

    /// The table's column layout from `mysqlType`, reusing the cached one when unchanged.
    fn layout(&mut self, db: &str, table: &str, types: &Pairs, key_only: bool) -> Arc<RecordSchema> {
        let key = (db.to_string(), table.to_string());
        if let Some(cached) = self.layouts.get(&key) {
            let same = cached.columns.len() == types.0.len()
                && cached
                    .columns
                    .iter()
                    .zip(&types.0)
                    .all(|(c, (n, t))| c.name == *n && Some(c.source_type.as_str()) == t.as_deref());
            if same {
                return cached.clone();
            }
        }
        let schema = RecordSchema::new(
            types.0.iter().map(|(n, t)| Column::new(n.as_ref(), t.as_deref().unwrap_or("text"))).collect(),
        );
        // A handle-key-only record lists only the key columns: not the table's layout.
        if !key_only {
            self.layouts.insert(key, schema.clone());
        }
        schema
    }

    /// Column values aligned with `schema`; `None` where the row leaves a column out.
    fn values(&self, schema: &RecordSchema, row: Pairs) -> Result<Vec<Option<Value>>, String> {
        let mut out: Vec<Option<Value>> = vec![None; schema.columns.len()];
        for (pos, (name, v)) in row.0.into_iter().enumerate() {
            // Values come in mysqlType order almost always: try the same position first.
            let i = match schema.columns.get(pos) {
                Some(c) if c.name == name => pos,
                _ => schema.index_of(&name).ok_or_else(|| format!("column `{name}` has a value but no mysqlType"))?,
            };
            let col = &schema.columns[i];
            out[i] = Some(match v {
                None => Value::Null,
                Some(s) => from_text(&col.ty, &s, &self.ctx, true)
                    .map_err(|e| format!("column `{}` ({}): {e}", col.name, col.source_type))?,
            });
        }
        Ok(out)
    }
}

/// A full row image: columns the record left out are NULL.
fn fill(row: Vec<Option<Value>>) -> Vec<Value> {
    row.into_iter().map(|v| v.unwrap_or(Value::Null)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::change::Op;

    fn decode(json: &str) -> Decoded {
        CanalJsonDecoder::default().decode(json.as_bytes()).unwrap()
    }

    fn rows(d: Decoded) -> Vec<RowEvent> {
        match d {
            Decoded::Rows(r) => r,
            other => panic!("expected rows, got {other:?}"),
        }
    }

    // The INSERT example of ticdc-canal-json.md (comments stripped).
    const INSERT: &str = r#"{
        "id": 0, "database": "test", "table": "tp_int", "pkNames": ["id"], "isDdl": false,
        "type": "INSERT", "es": 1639633141221, "ts": 1639633142960, "sql": "",
        "sqlType": {"c_bigint": -5, "c_int": 4, "c_mediumint": 4, "c_smallint": 5, "c_tinyint": -6, "id": 4},
        "mysqlType": {"c_bigint": "bigint", "c_int": "int", "c_mediumint": "mediumint",
                      "c_smallint": "smallint", "c_tinyint": "tinyint", "id": "int"},
        "data": [{"c_bigint": "9223372036854775807", "c_int": "2147483647", "c_mediumint": "8388607",
                  "c_smallint": "32767", "c_tinyint": "127", "id": "2"}],
        "old": null,
        "_tidb": {"commitTs": 429918007904436226}
    }"#;

    #[test]
    fn insert_from_the_docs() {
        let ev = rows(decode(INSERT)).remove(0);
        assert_eq!((ev.source_db.as_str(), ev.source_table.as_str()), ("test", "tp_int"));
        assert_eq!(ev.op, Op::Insert);
        assert_eq!(ev.commit_ts, Some(429918007904436226));
        let c = ev.into_changes(None).unwrap().remove(0);
        assert_eq!(c.key_json(), r#"{"id":"2"}"#);
        assert_eq!(
            c.row_json().unwrap(),
            r#"{"c_bigint":"9223372036854775807","c_int":"2147483647","c_mediumint":"8388607","c_smallint":"32767","c_tinyint":"127","id":"2"}"#
        );
    }

    #[test]
    fn commit_ts_is_exact_u64_and_es_is_the_fallback() {
        let big = INSERT.replace("429918007904436226", "18446744073709551615");
        assert_eq!(rows(decode(&big))[0].commit_ts, Some(u64::MAX));
        let no_ext = INSERT.replace(r#""_tidb": {"commitTs": 429918007904436226}"#, r#""_x": 1"#);
        assert_eq!(rows(decode(&no_ext))[0].commit_ts, Some(1639633141221u64 << 18));
    }

    #[test]
    fn binary_bigint_unsigned_decimal_and_nulls() {
        let msg = r#"{"id":0,"database":"test","table":"t","pkNames":["id"],"isDdl":false,"type":"INSERT",
            "es":1,"ts":1,"sql":"",
            "mysqlType":{"id":"bigint unsigned","c_varbinary":"varbinary","d":"decimal","s":"varchar","n":"varchar"},
            "data":[{"id":"18446744073709551615","c_varbinary":"\u0005\u0007\n\u000f$2+cx\u003c\u0026ÿþ-7F",
                     "d":"-123456789012345678901234567890.123456789012345678901234567890","s":"","n":null}],
            "old":null}"#;
        let ev = rows(decode(msg)).remove(0);
        let after = ev.after.clone().unwrap();
        assert_eq!(after[0], Value::Text("18446744073709551615".into()));
        assert_eq!(after[1], Value::Bytes(vec![5, 7, 10, 15, 36, 50, 43, 99, 120, 60, 38, 255, 254, 45, 55, 70]));
        assert_eq!(after[2], Value::Text("-123456789012345678901234567890.123456789012345678901234567890".into()));
        assert_eq!(after[3], Value::Text(String::new()), "empty string stays distinct from NULL");
        assert_eq!(after[4], Value::Null);
        let c = ev.into_changes(None).unwrap().remove(0);
        assert!(c.row_json().unwrap().contains(r#""c_varbinary":"05070a0f24322b63783c26fffe2d3746""#));
    }

    #[test]
    fn update_with_key_change_becomes_delete_plus_upsert() {
        let msg = r#"{"id":0,"database":"test","table":"t","pkNames":["id"],"isDdl":false,"type":"UPDATE",
            "es":1639633141221,"ts":1,"sql":"","mysqlType":{"id":"int","v":"varchar"},
            "data":[{"id":"20","v":"b"}],"old":[{"id":"10","v":"a"}],"_tidb":{"commitTs":5}}"#;
        let changes = rows(decode(msg)).remove(0).into_changes(None).unwrap();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].op, Op::Delete);
        assert_eq!(changes[0].key_json(), r#"{"id":"10"}"#);
        assert_eq!(changes[1].op, Op::Update);
        assert_eq!(changes[1].key_json(), r#"{"id":"20"}"#);
        assert_eq!(changes[1].commit_ts, Some(5));
    }

    #[test]
    fn update_keeping_the_key_and_delete() {
        let upd = r#"{"id":0,"database":"test","table":"t","pkNames":["id"],"isDdl":false,"type":"UPDATE",
            "es":1,"ts":1,"sql":"","mysqlType":{"id":"int","v":"varchar"},
            "data":[{"id":"1","v":"b"}],"old":[{"id":"1","v":"a"}]}"#;
        let c = rows(decode(upd)).remove(0).into_changes(None).unwrap();
        assert_eq!((c.len(), c[0].op), (1, Op::Update));
        let del = r#"{"id":0,"database":"test","table":"t","pkNames":["id"],"isDdl":false,"type":"DELETE",
            "es":1,"ts":1,"sql":"","mysqlType":{"id":"int","v":"varchar"},
            "data":[{"id":"1","v":"b"}],"old":null}"#;
        let c = rows(decode(del)).remove(0).into_changes(None).unwrap();
        assert_eq!((c.len(), c[0].op, c[0].row_json()), (1, Op::Delete, None));
        assert_eq!(c[0].key_json(), r#"{"id":"1"}"#);
    }

    #[test]
    fn ddl_and_watermark_are_not_rows() {
        let ddl = r#"{"id":0,"database":"test","table":"","pkNames":null,"isDdl":true,"type":"QUERY",
            "es":1639633094670,"ts":1639633095489,"sql":"drop database if exists test","sqlType":null,
            "mysqlType":null,"data":null,"old":null,"_tidb":{"commitTs":429918007904436226}}"#;
        match decode(ddl) {
            Decoded::Ddl { sql, commit_ts, .. } => {
                assert_eq!(sql, "drop database if exists test");
                assert_eq!(commit_ts, Some(429918007904436226));
            }
            other => panic!("{other:?}"),
        }
        let wm = r#"{"id":0,"database":"","table":"","pkNames":null,"isDdl":false,"type":"TIDB_WATERMARK",
            "es":1640007049196,"ts":1640007050284,"sql":"","sqlType":null,"mysqlType":null,"data":null,
            "old":null,"_tidb":{"watermarkTs":429918007904436226}}"#;
        assert!(matches!(decode(wm), Decoded::Watermark { ts: 429918007904436226 }));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut d = CanalJsonDecoder::default();
        for bad in [
            "",
            "{",
            "[]",
            "{\"type\":\"INSERT\"}",
            r#"{"type":"INSERT","table":"t","mysqlType":{"a":"int"},"data":[{"a":"x"}]}"#,
        ] {
            assert!(d.decode(bad.as_bytes()).is_err(), "{bad}");
        }
        let only_key = r#"{"database":"test","table":"tp_int","pkNames":["id"],"isDdl":false,"type":"INSERT",
            "es":1,"mysqlType":{"id":"int"},"data":[{"id":"2"}],"old":null,
            "_tidb":{"commitTs":1,"onlyHandleKey":true}}"#;
        let ev = rows(d.decode(only_key.as_bytes()).unwrap()).remove(0);
        assert!(ev.into_changes(None).unwrap_err().contains("handle-key-only"));
    }

    #[test]
    fn layouts_are_shared_between_records() {
        let mut d = CanalJsonDecoder::default();
        let a = rows(d.decode(INSERT.as_bytes()).unwrap()).remove(0).schema;
        let b = rows(d.decode(INSERT.as_bytes()).unwrap()).remove(0).schema;
        assert!(Arc::ptr_eq(&a, &b));
        let added = INSERT.replace(r#""id": "int"}"#, r#""id": "int", "extra": "int"}"#);
        let c = rows(d.decode(added.as_bytes()).unwrap()).remove(0).schema;
        assert_eq!(c.columns.len(), 7);
    }
}
