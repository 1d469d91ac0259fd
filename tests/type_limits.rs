//! Every type's limits, on PostgreSQL and SQLite: for each type of the README's mapping, the
//! boundary value lands and is merged into the replica, and one step past it is a dead letter
//! (decoding knows exactly what the replica column holds) — so no value can fail a merge and
//! block the table.

mod common;

use common::*;
use tidemark::merge::{merge, MergeOutcome};
use tidemark::warehouse::Warehouse;

const TOPIC: &str = "tidb_test_limits";

/// (column, mysqlType, the boundary value, one step past it).
const LIMITS: &[(&str, &str, &str, &str)] = &[
    ("c_float", "float", "3.4028235e38", "3.5e38"),
    ("c_float_small", "float", "1.5e-45", "1e-46"),
    ("c_float_neg", "float", "-3.4028235e38", "-1e39"),
    ("c_double", "double", "1.7976931348623157e308", "1.8e308"),
    ("c_double_small", "double", "5e-324", "1e-325"),
    ("c_time", "time", "838:59:59", "839:00:00"),
    ("c_time_neg", "time", "-838:59:59", "-838:59:60"),
    ("c_time3", "time(3)", "12:00:00.123", "12:00:00.1234"),
    ("c_date", "date", "9999-12-31", "10000-01-01"),
    ("c_date_low", "date", "1000-01-01", "1000-01-32"),
    ("c_datetime", "datetime(6)", "9999-12-31 23:59:59.999999", "9999-12-31 23:59:59.9999999"),
    ("c_datetime0", "datetime", "2024-02-29 23:59:59", "2023-02-29 00:00:00"),
    ("c_timestamp3", "timestamp(3)", "2038-01-19 03:14:07.999", "2038-01-19 03:14:07.9999"),
    ("c_year", "year", "2155", "2156"),
    ("c_bit", "bit(3)", "7", "8"),
    ("c_bit64", "bit(64)", "18446744073709551615", "18446744073709551616"),
    ("c_decimal", "decimal(5,2)", "-999.99", "1000.00"),
    ("c_decimal_scale", "decimal(5,2)", "1.25", "1.255"),
    ("c_decimal0", "decimal(3,0)", "999", "1000"),
    ("c_varchar", "varchar(3)", "äöü", "äöüx"),
    ("c_char", "char(2)", "ab", "abc"),
    ("c_json", "json", "{\"a\":[1,2,{\"b\":null}]}", "{\"a\":[1,2,"),
    ("c_enum", "enum('x','y')", "2", "3"),
    ("c_set", "set('x','y')", "3", "4"),
    ("c_tinyint", "tinyint", "-128", "-129"),
    ("c_utinyint", "tinyint unsigned", "255", "256"),
    ("c_smallint", "smallint", "32767", "32768"),
    ("c_int", "int", "-2147483648", "-2147483649"),
    ("c_uint", "int unsigned", "4294967295", "4294967296"),
    ("c_bigint", "bigint", "9223372036854775807", "9223372036854775808"),
    ("c_ubigint", "bigint unsigned", "18446744073709551615", "18446744073709551616"),
];

fn canal() -> Canal {
    let mut types = vec![("id", "int")];
    types.extend(LIMITS.iter().map(|(c, t, _, _)| (*c, *t)));
    Canal { db: "test", table: "limits", pk: vec!["id"], types }
}

/// A row of `limits` with only `column` set (besides the key).
fn row(c: &Canal, id: usize, column: usize, value: &str, ts: u64) -> Vec<u8> {
    let id = id.to_string();
    let mut values: Vec<Option<&str>> = vec![None; c.types.len()];
    values[0] = Some(&id);
    values[column + 1] = Some(value);
    c.insert(&values, tso(ts))
}

async fn every_type_holds_its_boundary_and_refuses_one_step_past(url: &str) {
    let wh = Warehouse::open(url).await.expect("warehouse");
    let cfg = config(url, &[("limits", TOPIC)]);
    let mut lander = lander(&wh, &cfg).await;
    let c = canal();
    // Offsets 2k: column k at its boundary; 2k+1: one step past.
    let mut batch = Vec::new();
    for (k, (_, _, ok, past)) in LIMITS.iter().enumerate() {
        batch.push(row(&c, 2 * k, k, ok, 2 * k as u64 + 1));
        batch.push(row(&c, 2 * k + 1, k, past, 2 * k as u64 + 2));
    }
    let report = lander.land(&records(TOPIC, 0, 0, batch)).await.expect("land");
    let dead = rows(&wh, "_tidemark_dead_letters", "CAST(kafka_offset AS TEXT), error", "kafka_offset").await;
    let dead_offsets: Vec<usize> = dead.iter().map(|d| d[0].as_deref().unwrap().parse().unwrap()).collect();
    for (k, (column, ty, ok, past)) in LIMITS.iter().enumerate() {
        assert!(!dead_offsets.contains(&(2 * k)), "{column} {ty}: the boundary {ok} was refused: {dead:?}");
        assert!(dead_offsets.contains(&(2 * k + 1)), "{column} {ty}: {past} was accepted");
    }
    assert_eq!((report.staged.get("limits"), report.dead_letters), (Some(&LIMITS.len()), LIMITS.len()));

    // Every boundary value is held by the replica: the merge succeeds and keeps each row.
    match merge(&wh, "limits", true).await.expect("the merge of every boundary value") {
        MergeOutcome::Merged(m) => assert_eq!(m.inserted, LIMITS.len() as u64),
        other => panic!("{other:?}"),
    }
    assert_eq!(count(&wh, "limits").await, LIMITS.len() as i64);
    let held =
        rows(&wh, "limits", "CAST(c_varchar AS TEXT), CAST(c_decimal AS TEXT), CAST(c_ubigint AS TEXT)", "id").await;
    let column = |name: &str| LIMITS.iter().position(|(c, ..)| *c == name).unwrap();
    assert_eq!(held[column("c_varchar")][0], s("äöü"));
    assert_eq!(held[column("c_decimal")][1], s("-999.99"));
    assert_eq!(held[column("c_ubigint")][2], s("18446744073709551615"));
}
both!(every_type_holds_its_boundary_and_refuses_one_step_past);

/// Text and JSON holding U+0000: PostgreSQL's text and jsonb cannot hold it (a dead letter
/// there); SQLite's TEXT can (it lands and is merged).
async fn nul_characters_where_the_warehouse_can_hold_them(url: &str) {
    let wh = Warehouse::open(url).await.expect("warehouse");
    let cfg = config(url, &[("limits", TOPIC)]);
    let mut lander = lander(&wh, &cfg).await;
    let c = canal();
    let varchar = LIMITS.iter().position(|(c, ..)| *c == "c_varchar").unwrap();
    let json = LIMITS.iter().position(|(c, ..)| *c == "c_json").unwrap();
    let batch = vec![row(&c, 1, varchar, "a\u{0}b", 1), row(&c, 2, json, "{\"a\":\"x\\u0000y\"}", 2)];
    let report = lander.land(&records(TOPIC, 0, 0, batch)).await.expect("land");
    let postgres = wh.dialect() == tidemark::sql::dialect::Dialect::Postgres;
    let expected = if postgres { 2 } else { 0 };
    assert_eq!(report.dead_letters, expected, "{report:?}");
    if !postgres {
        assert!(matches!(merge(&wh, "limits", true).await.expect("merge"), MergeOutcome::Merged(_)));
        assert_eq!(count(&wh, "limits").await, 2);
    }
}
both!(nul_characters_where_the_warehouse_can_hold_them);
