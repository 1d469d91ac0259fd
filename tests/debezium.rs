//! Debezium envelopes on PostgreSQL and SQLite: the PostgreSQL connector of the StarRocks seed
//! (with its schema part, deletes followed by tombstones), TiCDC's Debezium output without
//! a schema part, typed by the table's source_ddl, records real Debezium emitted (PostgreSQL:
//! captured here; MySQL: one row of every type, captured by PingCAP).

mod common;

use common::*;
use serde_json::json;
use tidemark::config::Config;
use tidemark::merge::{merge, MergeOutcome};
use tidemark::source::RawRecord;
use tidemark::warehouse::Warehouse;

const TOPIC: &str = "test.public.customers";

fn customer_schema() -> serde_json::Value {
    let row = json!({"type":"struct","optional":true,"name":"test.public.customers.Value","fields":[
        {"type":"int32","optional":false,"field":"id"},
        {"type":"string","optional":true,"field":"first_name"},
        {"type":"string","optional":true,"field":"last_name"},
        {"type":"string","optional":true,"field":"email"}]});
    let mut before = row.clone();
    before["field"] = json!("before");
    let mut after = row;
    after["field"] = json!("after");
    json!({"type":"struct","name":"test.public.customers.Envelope","optional":false,"fields":[before, after,
        {"type":"struct","optional":false,"name":"io.debezium.connector.postgresql.Source","field":"source","fields":[
            {"type":"int64","optional":false,"field":"ts_ms"},{"type":"string","optional":false,"field":"schema"},
            {"type":"string","optional":false,"field":"table"},{"type":"int64","optional":true,"field":"lsn"}]},
        {"type":"string","optional":false,"field":"op"}]})
}

fn pg_key(id: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],
        "optional":false,"name":"test.public.customers.Key"},"payload":{"id":id}}))
    .unwrap()
}

fn pg_event(op: &str, before: serde_json::Value, after: serde_json::Value, lsn: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({"schema": customer_schema(), "payload": {"before": before, "after": after,
        "source": {"version":"2.5.3.Final","connector":"postgresql","name":"test","ts_ms":1714283798721i64,"snapshot":"false",
                   "db":"postgres","schema":"public","table":"customers","txId":756,"lsn":lsn,"xmin":null},
        "op": op, "ts_ms": 1714283798790u64, "transaction": null}}))
    .unwrap()
}

fn customer(id: i64, name: &str) -> serde_json::Value {
    json!({"id": id, "first_name": name, "last_name": "x", "email": format!("{name}@example.com")})
}

fn key_only(id: i64) -> serde_json::Value {
    json!({"id": id, "first_name": null, "last_name": null, "email": null})
}

fn rec(offset: i64, key: Vec<u8>, value: Option<Vec<u8>>) -> RawRecord {
    RawRecord { topic: TOPIC.into(), partition: 0, offset, key: Some(key), value }
}

async fn postgres_connector_records(url: &str) {
    let cfg = Config::parse(&format!(
        "[warehouse]\nurl = {url:?}\n[defaults]\nformat = \"debezium\"\n[[tables]]\nname = \"customers\"\ntopic = \"{TOPIC}\"\n"
    ))
    .unwrap();
    let wh = Warehouse::open(url).await.unwrap();
    let mut l = lander(&wh, &cfg).await;
    let n = serde_json::Value::Null;
    let batch = vec![
        rec(0, pg_key(1), Some(pg_event("c", n.clone(), customer(1, "a"), 100))),
        rec(1, pg_key(2), Some(pg_event("c", n.clone(), customer(2, "b"), 101))),
        rec(2, pg_key(2), Some(pg_event("u", n.clone(), customer(2, "b2"), 102))),
        // DELETE with REPLICA IDENTITY DEFAULT, then the tombstone (no lsn: ordered after it).
        rec(3, pg_key(1), Some(pg_event("d", key_only(1), n.clone(), 103))),
        rec(4, pg_key(1), None),
        // A primary-key change: delete + tombstone of the old key, create of the new one.
        rec(5, pg_key(2), Some(pg_event("d", key_only(2), n.clone(), 104))),
        rec(6, pg_key(2), None),
        rec(7, pg_key(3), Some(pg_event("c", n.clone(), customer(3, "b2"), 104))),
        // A snapshot read (op r) of another row.
        rec(8, pg_key(4), Some(pg_event("r", n.clone(), customer(4, "d"), 90))),
    ];
    let rep = l.land(&batch).await.unwrap();
    assert_eq!(rep.dead_letters, 0);
    assert!(matches!(merge(&wh, "customers", true).await.unwrap(), MergeOutcome::Merged(_)));
    let got = rows(&wh, "customers", "CAST(id AS TEXT), first_name, email", "\"customers\".id").await;
    assert_eq!(got, vec![vec![s("3"), s("b2"), s("b2@example.com")], vec![s("4"), s("d"), s("d@example.com")]]);
    // The order key is the LSN; freshness uses the source's ts_ms.
    let ms = rows(&wh, "_tidemark_merges", "CAST(oldest_commit_ms AS TEXT)", "id").await;
    assert_eq!(ms, vec![vec![s("1714283798721")]]);
}
both!(postgres_connector_records);

/// TiCDC `protocol=debezium` with `debezium-disable-schema=true`: values encoded as TiCDC does
/// (dates as epoch days, DATETIME(6) as epoch µs, TIMESTAMP as UTC ISO, TIME as µs, BIGINT
/// UNSIGNED wrapped negative), their types from source_ddl.
async fn ticdc_without_schema_typed_by_ddl(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.sql"),
        "CREATE TABLE t (id bigint unsigned NOT NULL, d date, dt datetime(6), ts timestamp(6) NULL, tm time, \
         price double, name varchar(10), PRIMARY KEY (id))",
    )
    .unwrap();
    let path = dir.path().join("tidemark.toml");
    std::fs::write(
        &path,
        format!("[warehouse]\nurl = {url:?}\n[[tables]]\nname = \"t\"\ntopic = \"tidb_test_t\"\nformat = \"debezium\"\nsource_ddl = \"t.sql\"\n"),
    )
    .unwrap();
    let cfg = Config::load(&path, false).unwrap();
    let wh = Warehouse::open(url).await.unwrap();
    let mut l = lander(&wh, &cfg).await;
    let ev = |op: &str, after: serde_json::Value, before: serde_json::Value, ts: u64| {
        serde_json::to_vec(&json!({"payload": {"before": before, "after": after, "op": op,
            "source": {"connector":"TiCDC","db":"test","table":"t","commit_ts": ts, "ts_ms": 0}, "ts_ms": 1, "transaction": null}}))
        .unwrap()
    };
    let row = json!({"id": -1, "d": 19691, "dt": 1701347696123456i64, "ts": "2023-11-30T12:34:56.654321Z",
                     "tm": -3020399000000i64, "price": 12.5, "name": "café"});
    let row2 = json!({"id": 7, "d": null, "dt": null, "ts": null, "tm": 0, "price": 1, "name": ""});
    let batch = vec![
        RawRecord {
            topic: "tidb_test_t".into(),
            partition: 0,
            offset: 0,
            key: None,
            value: Some(ev("c", row, json!(null), tso(1))),
        },
        RawRecord {
            topic: "tidb_test_t".into(),
            partition: 0,
            offset: 1,
            key: None,
            value: Some(ev("c", row2.clone(), json!(null), tso(2))),
        },
        RawRecord {
            topic: "tidb_test_t".into(),
            partition: 0,
            offset: 2,
            key: None,
            value: Some(ev("d", json!(null), row2, tso(3))),
        },
    ];
    let rep = l.land(&batch).await.unwrap();
    assert_eq!(rep.dead_letters, 0);
    assert!(matches!(merge(&wh, "t", true).await.unwrap(), MergeOutcome::Merged(_)));
    let select = match wh.dialect() {
        tidemark::sql::dialect::Dialect::Postgres => {
            "CAST(id AS TEXT), CAST(d AS TEXT), CAST(dt AS TEXT), to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), \
             CAST(tm AS TEXT), CAST(price AS TEXT), name"
        }
        _ => "id, d, dt, ts, tm, price, name",
    };
    let got = rows(&wh, "t", select, "1").await;
    let want_tm =
        if wh.dialect() == tidemark::sql::dialect::Dialect::Postgres { "-838:59:59" } else { "-838:59:59.000000" };
    assert_eq!(
        got,
        vec![vec![
            s("18446744073709551615"),
            s("2023-11-30"),
            s("2023-11-30 12:34:56.123456"),
            s("2023-11-30 12:34:56.654321"),
            s(want_tm),
            s("12.5"),
            s("café")
        ]]
    );
}
both!(ticdc_without_schema_typed_by_ddl);

/// Records real Debezium 3.6 (PostgreSQL connector, defaults) emitted — captured by
/// `tests/debezium/capture.py` (see `tests/debezium_live.rs`): the snapshot row of `busy` key
/// 273 (stamped with the snapshot's LSN) and its update by a transaction open when the snapshot
/// began (streamed after it, with a lower LSN); TOASTed columns left out of updates; special
/// values; every type; a key change. Landed (one topic per table, partition 0) in one batch and
/// one merge, or one record per batch and merge: the same replica either way.
fn captured() -> Vec<(String, Option<String>, Option<String>)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/debezium_postgres.jsonl"))
        .expect("fixture");
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("line");
            let s = |k: &str| v[k].as_str().map(str::to_string);
            (s("topic").expect("topic"), s("key"), s("value"))
        })
        .collect()
}

/// The `after` image of the first record of `topic` with `op` for `id`.
fn captured_after(topic: &str, op: &str, id: i64) -> serde_json::Value {
    captured()
        .into_iter()
        .filter(|(t, _, _)| t == topic)
        .filter_map(|(_, _, v)| v.map(|v| serde_json::from_str::<serde_json::Value>(&v).unwrap()["payload"].clone()))
        .find(|p| p["op"] == op && p["after"]["id"] == id)
        .map(|p| p["after"].clone())
        .unwrap_or_else(|| panic!("{topic} {op} {id}"))
}

const CAPTURED_TABLES: [&str; 5] = ["busy", "every_type", "toasted", "special", "Marker"];

async fn captured_records_replicate_exactly(url: &str, one_by_one: bool) {
    let mut toml = format!("[warehouse]\nurl = {url:?}\n[defaults]\nformat = \"debezium\"\n");
    for t in CAPTURED_TABLES {
        toml.push_str(&format!("[[tables]]\nname = {t:?}\ntopic = \"cap.public.{t}\"\n"));
    }
    let cfg = Config::parse(&toml).unwrap();
    let wh = Warehouse::open(url).await.unwrap();
    let mut l = lander(&wh, &cfg).await;
    let mut offsets = std::collections::HashMap::new();
    let batch: Vec<RawRecord> = captured()
        .into_iter()
        .map(|(topic, key, value)| {
            let offset = offsets.entry(topic.clone()).or_insert(0i64);
            *offset += 1;
            RawRecord {
                topic: topic.into(),
                partition: 0,
                offset: *offset - 1,
                key: key.map(String::into_bytes),
                value: value.map(String::into_bytes),
            }
        })
        .collect();
    let chunks: Vec<&[RawRecord]> = if one_by_one { batch.chunks(1).collect() } else { vec![&batch[..]] };
    let pg = wh.dialect() == tidemark::sql::dialect::Dialect::Postgres;
    let mut busy_v = 0i64;
    for chunk in chunks {
        let rep = l.land(chunk).await.unwrap();
        assert_eq!(rep.dead_letters, 0, "{:?}", query(&wh, "SELECT error FROM _tidemark_dead_letters", &[]).await);
        for t in CAPTURED_TABLES {
            merge(&wh, t, true).await.unwrap();
        }
        // After every merge: never back in time (key 273's value only grows upstream), and never
        // a placeholder in place of a value. (A replica table exists from its first merge on.)
        let cells = |sql: &str| {
            let q = tidemark::sql::Rendered { name: "a test's query", text: sql.to_string() };
            let wh = wh.clone();
            async move {
                let rows = wh.pool.fetch_rows(q, &[]).await.ok()?;
                Some(rows.into_iter().map(|r| r.cells()[0].to_text()).collect::<Vec<_>>())
            }
        };
        if let Some(Some(v)) = cells("SELECT CAST(v AS TEXT) FROM busy").await.and_then(|v| v.into_iter().next()) {
            let v: i64 = v.parse().unwrap();
            assert!(v >= busy_v, "busy 273 went back from {busy_v} to {v}");
            busy_v = v;
        }
        let bytes = if pg {
            "convert_to('__debezium_unavailable_value', 'UTF8')"
        } else {
            "CAST('__debezium_unavailable_value' AS BLOB)"
        };
        let placeholders = cells(&format!(
            "SELECT CAST(count(*) AS TEXT) FROM toasted WHERE big = '__debezium_unavailable_value' OR blob = {bytes}"
        ))
        .await;
        assert!(placeholders.is_none_or(|p| p == vec![Some("0".to_string())]), "a placeholder reached the replica");
    }
    let text = |c: &str| format!("CAST({c} AS TEXT)");
    let hex = |c: &str| if pg { format!("encode({c}, 'hex')") } else { format!("lower(hex({c}))") };

    // The update streamed after the snapshot wins over the snapshot's row, whatever their LSNs.
    let busy = rows(&wh, "busy", &format!("{}, note", text("v")), "id").await;
    assert_eq!(busy, vec![vec![s("1"), s("w1-1796304337.6686084")]], "busy key 273");

    // Updates that left the TOASTed columns out keep them (filled within a merge, kept across).
    let big = |id: i64| captured_after("cap.public.toasted", "c", id)["big"].as_str().unwrap().to_string();
    let blob = |id: i64| {
        let b64 = captured_after("cap.public.toasted", "c", id)["blob"].as_str().unwrap().to_string();
        let bytes = base64_decode(&b64);
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let toasted = rows(&wh, "toasted", &format!("{}, big, {}", text("small"), hex("blob")), "id").await;
    assert_eq!(
        toasted,
        vec![
            vec![s("4"), Some(big(1)), Some(blob(1))],
            vec![s("3"), s("now short"), Some(blob(2))],
            vec![s("1"), s("short"), s("01")],
        ]
    );

    // Values beyond the ordinary: PostgreSQL holds them all; SQLite's REAL holds ±Infinity, not NaN.
    let special = if pg {
        rows(
            &wh,
            "special",
            "CAST(nu AS TEXT), CAST(d AS TEXT), CAST(r AS TEXT), CAST(tz AS TEXT), CAST(ts AS TEXT), CAST(tm AS TEXT)",
            "id",
        )
        .await
    } else {
        rows(&wh, "special", "CAST(nu AS TEXT), CAST(d AS TEXT), CAST(r AS TEXT), tz, ts, tm", "id").await
    };
    let (nan, inf, ninf) = if pg { (s("NaN"), s("Infinity"), s("-Infinity")) } else { (None, s("Inf"), s("-Inf")) };
    let e100 = format!("1{}", "0".repeat(100));
    let em100 = format!("0.{}1", "0".repeat(99));
    assert_eq!(special[0][..3], [None, nan.clone(), nan], "numeric NaN: Debezium sends null");
    assert_eq!(special[0][3..5], [s("infinity"), s("infinity")]);
    assert!(special[0][5].as_deref().unwrap().starts_with("24:00:00"), "{:?}", special[0]);
    assert_eq!(special[1][..5], [Some(e100), inf.clone(), inf, s("-infinity"), s("-infinity")]);
    assert_eq!(special[2][..3], [Some(em100), ninf.clone(), ninf]);
    assert_eq!(special[3][0].as_deref().map(str::len), Some(101), "a 100-digit numeric: {:?}", special[3]);

    // Doubles to the bit, on both databases (SQLite's own text-to-REAL is one unit off here).
    // 17 significant digits: SQLite's CAST(… AS TEXT) rounds to 15, which would hide a last-place error.
    let d_text = if pg { "CAST(d AS TEXT)" } else { "printf('%!.17g', d)" };
    let d = query(&wh, &format!("SELECT {d_text} FROM every_type WHERE d IS NOT NULL ORDER BY id"), &[]).await;
    let bits: Vec<u64> = d.iter().map(|r| r[0].as_deref().unwrap().parse::<f64>().unwrap().to_bits()).collect();
    assert_eq!(bits, vec![4.9e-324f64.to_bits(), 1e-300f64.to_bits() | (1 << 63)], "{d:?}");
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

async fn captured_records_in_one_merge(url: &str) {
    captured_records_replicate_exactly(url, false).await;
}
both!(captured_records_in_one_merge);

async fn captured_records_one_merge_each(url: &str) {
    captured_records_replicate_exactly(url, true).await;
}
both!(captured_records_one_merge_each);

/// A record of the real Debezium MySQL connector (2.4.0.Final; `decimal.handling.mode=double`,
/// `binary.handling.mode=base64`, `bigint.unsigned.handling.mode=long`) for one row of every
/// MySQL type — captured by PingCAP to check TiCDC's Debezium protocol against it
/// (`pingcap/ticdc` `pkg/sink/codec/debezium/testdata/datatype.dbz.json` and `.key.json`, Apache
/// 2.0; the row is `datatype.dml.sql` there). What the connector sent is what the replica holds:
/// dates and times to the microsecond (a negative TIME too), `0000-00-00` as NULL, bits, ENUM and
/// SET names, JSON; and what it lost stays lost (the DOUBLE of a DECIMAL, BIGINT UNSIGNED's
/// 2^64-1 sent as -1, binary sent as base64 text).
async fn a_real_mysql_connector_record(url: &str) {
    let read = |f: &str| std::fs::read(format!("{}/tests/fixtures/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let cfg = Config::parse(&format!(
        "[warehouse]\nurl = {url:?}\n[[tables]]\nname = \"foo\"\ntopic = \"dbserver1.test.foo\"\nformat = \"debezium\"\n"
    ))
    .unwrap();
    let wh = Warehouse::open(url).await.unwrap();
    let mut l = lander(&wh, &cfg).await;
    let rec = RawRecord {
        topic: "dbserver1.test.foo".into(),
        partition: 0,
        offset: 0,
        key: Some(read("debezium_mysql_datatype.key.json")),
        value: Some(read("debezium_mysql_datatype.json")),
    };
    let rep = l.land(&[rec]).await.unwrap();
    assert_eq!(rep.dead_letters, 0, "{:?}", common::query(&wh, "SELECT error FROM _tidemark_dead_letters", &[]).await);
    assert!(matches!(merge(&wh, "foo", true).await.unwrap(), MergeOutcome::Merged(_)));
    let cols = [
        "pk",
        "col_d_2023",
        "col_d_1000",
        "col_d_9999",
        "col_d_0000",
        "col_dt",
        "col_dt_fsp_1",
        "col_dt_fsp_4",
        "col_dt_fsp_6",
        "col_dt_0000",
        "col_t",
        "col_t_fsp_6",
        "col_t_neg",
        "col_ts",
        "col_ts_fsp_1",
        "col_ts_fsp_5",
        "col_y",
        "col_bit_1",
        "col_bit_5",
        "col_bit_60",
        "col_varchar",
        "col_varbinary",
        "col_decimal",
        "col_float",
        "col_double",
        "col_int",
        "col_int_unsigned",
        "col_tinyint",
        "col_tinyint_unsigned",
        "col_smallint_unsigned",
        "col_mediumint_unsigned",
        "col_bigint",
        "col_bigint_unsigned",
        "col_enum",
        "col_enum_invalid",
        "col_set",
        "col_json",
    ];
    let pg = wh.dialect() == tidemark::sql::dialect::Dialect::Postgres;
    let text = |c: &str| match (pg, c) {
        (true, "col_ts" | "col_ts_fsp_1" | "col_ts_fsp_5") => {
            format!("to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")
        }
        (true, _) => format!("CAST({c} AS TEXT)"),
        (false, _) => format!("CAST({c} AS TEXT)"),
    };
    let select = cols.iter().map(|c| text(c)).collect::<Vec<_>>().join(", ");
    let got = rows(&wh, "foo", &select, "1").await;
    let got: Vec<(&str, Option<String>)> = cols.iter().copied().zip(got[0].clone()).collect();
    // Where the databases' text forms differ: (PostgreSQL, SQLite).
    let by = |p: &str, l: &str| s(if pg { p } else { l });
    let want = vec![
        s("1"),
        s("2023-11-30"),
        s("1000-01-01"),
        s("9999-12-31"),
        None,
        by("2023-11-30 12:34:56", "2023-11-30 12:34:56.000"),
        by("2023-11-30 12:34:56.1", "2023-11-30 12:34:56.100"),
        by("2023-11-30 12:34:56.1235", "2023-11-30 12:34:56.123500"),
        s("2023-11-30 12:34:56.123456"),
        None,
        by("12:34:56", "12:34:56.000000"),
        s("12:34:56.123456"),
        s("-12:34:56.123456"),
        s("2023-11-30 12:34:56.000000"),
        s("2023-11-30 12:34:56.100000"),
        s("2023-11-30 12:34:56.123460"),
        s("2023"),
        s("1"),
        by("\\x10", "\u{10}"),
        by("\\x10", "\u{10}"),
        s("foo"),
        s("Zm9v"),
        s("12345.12345"),
        // FLOAT's single-precision value; SQLite's REAL shows it as a double.
        by("12345.123", "12345.123046875"),
        s("12345.12345"),
        s("-2147483648"),
        s("4294967295"),
        s("-128"),
        s("255"),
        s("65535"),
        s("16777215"),
        s("-9223372036854775808"),
        s("-1"),
        s("a"),
        s(""),
        s("a,b"),
        s("[\"foo\"]"),
    ];
    let want: Vec<(&str, Option<String>)> = cols.iter().copied().zip(want).collect();
    assert_eq!(got, want);
}
both!(a_real_mysql_connector_record);
