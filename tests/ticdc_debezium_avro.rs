//! TiCDC's `protocol=debezium-avro` (reference §3.4): the Debezium envelope as Avro, with
//! `{cluster}.{schema}.{table}Key` / `…Envelope` names, every column optional, decimals as
//! `bytes`/`decimal` (`avro-decimal-handling-mode=precise`, parameters `precision`/`scale`),
//! BIGINT UNSIGNED as a string (`avro-bigint-unsigned-handling-mode=string`), the TiDB extension's
//! `tidb_type` and a column Avro cannot name under a sanitized name with `connect.field`.
//!
//! The records are built the way TiCDC builds them: the Connect schema and payload its
//! `dbzCodec` writes, turned into Avro by a port of its `debeziumAvroSchemaConverter`
//! (`pkg/sink/codec/debezium/avro.go`: `toAvroSchema`, `toNative`), registered in the tests'
//! registry under `<topic>-key` / `<topic>-value`, framed as Confluent's wire format.

mod common;

use std::collections::HashSet;

use apache_avro::types::Value as Avro;
use apache_avro::Schema;
use base64::Engine;
use common::registry::RegistryServer;
use common::*;
use num_bigint::BigInt;
use serde_json::{json, Value};
use tidemark::config::Config;
use tidemark::merge::{merge, MergeOutcome};
use tidemark::source::RawRecord;
use tidemark::sql::dialect::Dialect;
use tidemark::warehouse::Warehouse;

const TOPIC: &str = "tidb_test_t";

/// TiCDC's `common.SanitizeName`: Avro's name rules, `_` for what they refuse.
fn sanitize(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if ok {
            out.push(c);
        } else {
            out.push('_');
            if i == 0 && c.is_ascii_digit() {
                out.push(c);
            }
        }
    }
    out
}

fn full_name(name: &str) -> String {
    name.split('.').map(sanitize).collect::<Vec<_>>().join(".")
}

fn add_connect_metadata(avro: &mut serde_json::Map<String, Value>, s: &Value) {
    if let Some(n) = s.get("name") {
        avro.insert("connect.name".into(), n.clone());
    }
    if let Some(v) = s.get("version").filter(|v| v.as_i64() != Some(0)) {
        avro.insert("connect.version".into(), v.clone());
    }
    if let Some(p) = s.get("parameters") {
        avro.insert("connect.parameters".into(), p.clone());
    }
}

fn is_decimal(s: &Value) -> bool {
    s["type"] == "bytes" && s["name"] == "org.apache.kafka.connect.data.Decimal"
}

/// `toAvroSchema`.
fn to_avro_schema(s: &Value, fallback: &str, defined: &mut HashSet<String>) -> Value {
    let ty = s["type"].as_str().unwrap();
    match ty {
        "struct" => {
            let full = full_name(s.get("name").and_then(Value::as_str).unwrap_or(fallback));
            if !defined.insert(full.clone()) {
                return json!(full);
            }
            let (namespace, name) = full.rsplit_once('.').map_or(("", full.as_str()), |(a, b)| (a, b));
            let mut record = serde_json::Map::new();
            record.insert("type".into(), json!("record"));
            record.insert("name".into(), json!(name));
            if !namespace.is_empty() {
                record.insert("namespace".into(), json!(namespace));
            }
            add_connect_metadata(&mut record, s);
            let mut fields = Vec::new();
            for f in s["fields"].as_array().unwrap() {
                let column = f["field"].as_str().unwrap();
                let fname = sanitize(column);
                let t = to_avro_schema(f, &fname, defined);
                let mut field = json!({"name": fname, "type": t});
                field["connect.field"] = json!(column);
                if let Some(tt) = f.get("tidb_type") {
                    field["tidb_type"] = tt.clone();
                }
                if f["optional"] == true {
                    field["type"] = json!(["null", t]);
                    field["default"] = Value::Null;
                }
                fields.push(field);
            }
            record.insert("fields".into(), json!(fields));
            Value::Object(record)
        }
        _ if is_decimal(s) => {
            let p = &s["parameters"];
            let mut d = serde_json::Map::new();
            d.insert("type".into(), json!("bytes"));
            d.insert("logicalType".into(), json!("decimal"));
            d.insert("precision".into(), json!(p["precision"].as_str().unwrap().parse::<i64>().unwrap()));
            d.insert("scale".into(), json!(p["scale"].as_str().unwrap().parse::<i64>().unwrap()));
            add_connect_metadata(&mut d, s);
            Value::Object(d)
        }
        _ => {
            let avro = match ty {
                "boolean" | "string" | "bytes" | "float" | "double" => ty,
                "int8" | "int16" | "int32" => "int",
                "int64" => "long",
                other => panic!("unsupported {other}"),
            };
            let metadata = s.get("name").is_some() || s.get("parameters").is_some();
            if !metadata && ty != "int8" && ty != "int16" {
                return json!(avro);
            }
            let mut p = serde_json::Map::new();
            p.insert("type".into(), json!(avro));
            if ty == "int8" || ty == "int16" {
                p.insert("connect.type".into(), json!(ty));
            }
            add_connect_metadata(&mut p, s);
            Value::Object(p)
        }
    }
}

/// `toNative`, as apache-avro values (a record's fields in schema order; optional fields as
/// unions with null first).
fn to_native(s: &Value, v: &Value) -> Avro {
    match s["type"].as_str().unwrap() {
        "struct" => Avro::Record(
            s["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    let column = f["field"].as_str().unwrap();
                    let raw = &v[column];
                    let native = if raw.is_null() { Avro::Null } else { to_native(f, raw) };
                    let native = match (f["optional"] == true, native) {
                        (true, Avro::Null) => Avro::Union(0, Box::new(Avro::Null)),
                        (true, n) => Avro::Union(1, Box::new(n)),
                        (false, n) => n,
                    };
                    (sanitize(column), native)
                })
                .collect(),
        ),
        "bytes" if is_decimal(s) => {
            let scale: usize = s["parameters"]["scale"].as_str().unwrap().parse().unwrap();
            let text = v.as_str().unwrap();
            let (int, frac) = text.split_once('.').unwrap_or((text, ""));
            let n = BigInt::parse_bytes(format!("{int}{frac:0<scale$}").as_bytes(), 10).unwrap();
            Avro::Decimal(apache_avro::Decimal::from(n.to_signed_bytes_be()))
        }
        "bytes" => Avro::Bytes(base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap()),
        "boolean" => Avro::Boolean(v.as_bool().unwrap()),
        "string" => Avro::String(v.as_str().unwrap().to_string()),
        "int8" | "int16" | "int32" => Avro::Int(v.as_i64().unwrap() as i32),
        "int64" => Avro::Long(v.as_i64().unwrap()),
        "float" => Avro::Float(v.as_f64().unwrap() as f32),
        "double" => Avro::Double(v.as_f64().unwrap()),
        other => panic!("unsupported {other}"),
    }
}

fn col(field: &str, ty: &str, tidb: &str) -> Value {
    json!({"type": ty, "optional": true, "field": field, "tidb_type": tidb})
}

/// The columns of `t` as TiCDC's dbzCodec describes them in debezium-avro (every column
/// optional), for `CREATE TABLE t (id INT PRIMARY KEY, tiny TINYINT, price DECIMAL(10,4),
/// ubig BIGINT UNSIGNED, bin VARBINARY(16), dt DATETIME(6), ts TIMESTAMP(3), d DATE, y YEAR,
/// f FLOAT, dbl DOUBLE, `first-name` VARCHAR(20), e ENUM('a','b'))`.
fn columns() -> Vec<Value> {
    let mut price = col("price", "bytes", "decimal");
    price["name"] = json!("org.apache.kafka.connect.data.Decimal");
    price["parameters"] = json!({"precision": "10", "scale": "4"});
    let named = |field: &str, ty: &str, tidb: &str, name: &str| {
        let mut c = col(field, ty, tidb);
        c["name"] = json!(name);
        c["version"] = json!(1);
        c
    };
    let mut e = named("e", "string", "enum", "io.debezium.data.Enum");
    e["parameters"] = json!({"allowed": "a,b"});
    vec![
        col("id", "int32", "int"),
        col("tiny", "int16", "tinyint"),
        price,
        col("ubig", "string", "bigint unsigned"),
        col("bin", "bytes", "varbinary"),
        named("dt", "int64", "datetime", "io.debezium.time.MicroTimestamp"),
        named("ts", "string", "timestamp", "io.debezium.time.ZonedTimestamp"),
        named("d", "int32", "date", "io.debezium.time.Date"),
        named("y", "int32", "year", "io.debezium.time.Year"),
        col("f", "float", "float"),
        col("dbl", "double", "double"),
        col("first-name", "string", "varchar"),
        e,
    ]
}

fn source_schema() -> Value {
    let f = |field: &str, ty: &str, optional: bool| json!({"type": ty, "optional": optional, "field": field});
    json!({"type": "struct", "optional": false, "name": "c1.test.Source", "field": "source", "fields": [
        f("version", "string", false), f("connector", "string", false), f("name", "string", false),
        f("ts_ms", "int64", false), f("snapshot", "string", true), f("db", "string", false),
        f("table", "string", true), f("server_id", "int64", false), f("gtid", "string", true),
        f("file", "string", false), f("pos", "int64", false), f("row", "int32", false),
        f("thread", "int64", true), f("query", "string", true), f("commit_ts", "int64", false),
        f("cluster_id", "string", false)]})
}

fn key_schema() -> Value {
    json!({"type": "struct", "optional": false, "name": "c1.test.tKey", "fields": [col("id", "int32", "int")]})
}

fn envelope_schema() -> Value {
    let row = |field: &str| json!({"type": "struct", "optional": true, "name": "c1.test.t", "field": field, "fields": columns()});
    json!({"type": "struct", "optional": false, "name": "c1.test.tEnvelope", "version": 1, "fields": [
        row("before"), row("after"), source_schema(),
        {"type": "string", "optional": false, "field": "op"},
        {"type": "int64", "optional": false, "field": "ts_ms"}]})
}

struct Encoder {
    key: (u32, Schema, Value),
    value: (u32, Schema, Value),
    offset: i64,
}

impl Encoder {
    async fn new(registry: &RegistryServer) -> Encoder {
        let reg = async |suffix: &str, connect: Value| {
            let text = to_avro_schema(&connect, "", &mut HashSet::new()).to_string();
            let id = registry.register(&format!("{TOPIC}-{suffix}"), &text, None).await;
            (id, Schema::parse_str(&text).expect("TiCDC's Avro schema parses"), connect)
        };
        Encoder { key: reg("key", key_schema()).await, value: reg("value", envelope_schema()).await, offset: 0 }
    }

    fn framed((id, schema, connect): &(u32, Schema, Value), payload: &Value) -> Vec<u8> {
        let body = apache_avro::writer::datum::GenericDatumWriter::builder(schema)
            .build()
            .unwrap()
            .write_value_to_vec(to_native(connect, payload))
            .expect("encode");
        let mut out = vec![0];
        out.extend_from_slice(&id.to_be_bytes());
        out.extend(body);
        out
    }

    /// One row change as TiCDC's `buildDebeziumAvro{Key,Value}Message` builds it.
    fn event(&mut self, op: &str, before: Value, after: Value, commit_ts: u64) -> RawRecord {
        let id = if after.is_null() { before["id"].clone() } else { after["id"].clone() };
        let source = json!({"version": "2.4.0.Final", "connector": "TiCDC", "name": "c1",
            "ts_ms": (commit_ts >> 18) as i64, "snapshot": null, "db": "test", "table": "t", "server_id": 0,
            "gtid": null, "file": "", "pos": 0, "row": 0, "thread": null, "query": null,
            "commit_ts": commit_ts as i64, "cluster_id": "c1"});
        let value =
            json!({"before": before, "after": after, "source": source, "op": op, "ts_ms": 1_701_326_309_000i64});
        self.offset += 1;
        RawRecord {
            topic: TOPIC.into(),
            partition: 0,
            offset: self.offset - 1,
            key: Some(Self::framed(&self.key, &json!({ "id": id }))),
            value: Some(Self::framed(&self.value, &value)),
        }
    }
}

fn row(id: i64, price: &str, name: &str) -> Value {
    json!({"id": id, "tiny": -128, "price": price, "ubig": "18446744073709551615", "bin": "AQID",
           "dt": 1_701_347_696_123_456i64, "ts": "2023-11-30T12:34:56.123Z", "d": 19691, "y": 2023,
           "f": 1.5, "dbl": 0.1, "first-name": name, "e": "b"})
}

/// Inserts, an update (with its before image), a delete: the replica has TiDB's types (the
/// decimal's precision too) and every value exactly, on both databases.
async fn ticdc_debezium_avro_replicates_exactly(url: &str) {
    let registry = RegistryServer::start(None).await;
    let cfg = Config::parse(&format!(
        "[warehouse]\nurl = {url:?}\n[schema_registry]\nurl = {:?}\n[[tables]]\nname = \"t\"\ntopic = \"{TOPIC}\"\n\
         format = \"debezium-avro\"\n",
        registry.url
    ))
    .unwrap();
    let wh = Warehouse::open(url).await.unwrap();
    let mut l = lander(&wh, &cfg).await;
    let mut enc = Encoder::new(&registry).await;
    let batch = vec![
        enc.event("c", Value::Null, row(1, "12.3400", "café"), tso(1)),
        enc.event("c", Value::Null, row(2, "-0.0001", "bob"), tso(2)),
        enc.event("u", row(1, "12.3400", "café"), row(1, "999999.9999", "Zoë"), tso(3)),
        enc.event("d", row(2, "-0.0001", "bob"), Value::Null, tso(4)),
    ];
    let rep = l.land(&batch).await.unwrap();
    assert_eq!(rep.dead_letters, 0, "{:?}", common::query(&wh, "SELECT error FROM _tidemark_dead_letters", &[]).await);
    assert!(matches!(merge(&wh, "t", true).await.unwrap(), MergeOutcome::Merged(_)));
    let pg = wh.dialect() == Dialect::Postgres;
    let select = if pg {
        "CAST(id AS TEXT), CAST(tiny AS TEXT), CAST(price AS TEXT), CAST(ubig AS TEXT), encode(bin, 'hex'), \
         CAST(dt AS TEXT), to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'), CAST(d AS TEXT), CAST(y AS TEXT), \
         CAST(f AS TEXT), CAST(dbl AS TEXT), \"first-name\", CAST(e AS TEXT)"
    } else {
        "id, tiny, price, ubig, lower(hex(bin)), dt, ts, d, y, f, dbl, \"first-name\", e"
    };
    let got = rows(&wh, "t", select, "1").await;
    // A ZonedTimestamp's column keeps microseconds (its precision is not on the wire).
    let (dt, ts) = if pg {
        ("2023-11-30 12:34:56.123456", "2023-11-30 12:34:56.123")
    } else {
        ("2023-11-30 12:34:56.123456", "2023-11-30 12:34:56.123000")
    };
    assert_eq!(
        got,
        vec![vec![
            s("1"),
            s("-128"),
            s("999999.9999"),
            s("18446744073709551615"),
            s("010203"),
            s(dt),
            s(ts),
            s("2023-11-30"),
            s("2023"),
            s("1.5"),
            s("0.1"),
            s("Zoë"),
            s("b")
        ]]
    );
    if pg {
        let ty = common::query(
            &wh,
            "SELECT data_type || '(' || numeric_precision || ',' || numeric_scale || ')' FROM information_schema.columns \
             WHERE table_name = 't' AND column_name = 'price'",
            &[],
        )
        .await;
        assert_eq!(ty, vec![vec![s("numeric(10,4)")]], "DECIMAL(10,4) as TiCDC declares it");
    }
}
both!(ticdc_debezium_avro_replicates_exactly);
