//! Type fidelity, end to end through staging and the merge, on PostgreSQL and SQLite:
//! decimals keep every digit, BIGINT UNSIGNED keeps values above 2^63, binary stays bytes,
//! timestamps keep their instant, NULL stays distinct from the empty string.

mod common;

use common::*;
use tidemark::merge::{merge, MergeOutcome};
use tidemark::sql::dialect::Dialect;
use tidemark::warehouse::Warehouse;

const TOPIC: &str = "tidb_test_types";

fn canal() -> Canal {
    Canal {
        db: "test",
        table: "types",
        pk: vec!["id"],
        types: vec![
            ("id", "bigint unsigned"),
            ("d", "decimal(65, 30)"),
            ("b", "varbinary(256)"),
            ("t", "varchar(10)"),
            ("n", "varchar(10)"),
            ("ts", "timestamp(3)"),
            ("dt", "datetime(6)"),
            ("j", "json"),
            ("f", "double"),
            ("tm", "time"),
            ("dte", "date"),
            ("bt", "bit(16)"),
            ("e", "enum('a','b','c')"),
            ("zero", "datetime"),
            ("emoji", "text"),
        ],
    }
}

const DECIMAL: &str = "-12345678901234567890123456789012345.123456789012345678901234567890";

fn all_bytes_latin1() -> String {
    (0u8..=255).map(|b| b as char).collect()
}

fn all_bytes_hex() -> String {
    (0u8..=255).map(|b| format!("{b:02x}")).collect()
}

async fn types_round_trip(url: &str) {
    let cfg = config(url, &[("types", TOPIC)]);
    let wh = Warehouse::open(url).await.unwrap();
    let mut l = lander(&wh, &cfg).await;
    let c = canal();
    let bytes = all_bytes_latin1();
    let row: Vec<Option<&str>> = vec![
        Some("18446744073709551615"),
        Some(DECIMAL),
        Some(&bytes),
        Some(""),
        None,
        Some("2024-03-01 07:30:00.125"),
        Some("2024-03-01 07:30:00.123456"),
        Some(r#"{"a": [1, 2.5, "x"]}"#),
        Some("3.141592653589793"),
        Some("-838:59:59"),
        Some("2024-02-29"),
        Some("258"),
        Some("2"),
        Some("0000-00-00 00:00:00"),
        Some("naïve 😀 'quoted' \\ \"x\""),
    ];
    // The encoded message goes through JSON exactly as TiCDC writes it (binary as U+00XX).
    let rep = l.land(&records(TOPIC, 0, 0, vec![c.insert(&row, tso(1))])).await.unwrap();
    assert_eq!(rep.dead_letters, 0);
    assert!(matches!(merge(&wh, "types", true).await.unwrap(), MergeOutcome::Merged(_)));

    // Each dialect reads its own types back as text; the values must be the same.
    let select = match wh.dialect() {
        Dialect::Postgres => {
            "CAST(id AS TEXT), CAST(d AS TEXT), encode(b, 'hex'), t, n, \
             to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'), CAST(dt AS TEXT), CAST(j AS TEXT), \
             CAST(f AS TEXT), CAST(tm AS TEXT), CAST(dte AS TEXT), encode(bt, 'hex'), e, CAST(zero AS TEXT), emoji"
        }
        _ => "id, d, lower(hex(b)), t, n, ts, dt, j, f, tm, dte, lower(hex(bt)), e, zero, emoji",
    };
    let want = vec![
        s("18446744073709551615"),
        s(DECIMAL),
        Some(all_bytes_hex()),
        s(""),
        None,
        s("2024-03-01 07:30:00.125"),
        s("2024-03-01 07:30:00.123456"),
        s(r#"{"a": [1, 2.5, "x"]}"#),
        s("3.141592653589793"),
        s("-838:59:59"),
        s("2024-02-29"),
        s("0102"),
        s("b"),
        None,
        s("naïve 😀 'quoted' \\ \"x\""),
    ];
    let got = rows(&wh, "types", select, "1").await;
    assert_eq!(got, vec![want]);

    // The replica's own types carry the meaning (PostgreSQL): numbers compare as numbers,
    // bytes as bytes, the TIMESTAMP as an instant.
    if wh.dialect() == Dialect::Postgres {
        let checks = rows(
            &wh,
            "types",
            "CAST(id > 9223372036854775807 AS TEXT), CAST(octet_length(b) AS TEXT), \
             CAST(ts = TIMESTAMPTZ '2024-03-01 09:30:00.125+02' AS TEXT), CAST(j -> 'a' ->> 2 AS TEXT)",
            "1",
        )
        .await;
        assert_eq!(checks, vec![vec![s("true"), s("256"), s("true"), s("x")]]);
    }
}
both!(types_round_trip);

/// Values a column cannot hold never reach the merge: they are dead-lettered at landing,
/// and the rest of the stream goes on.
async fn values_that_do_not_fit_are_dead_lettered(url: &str) {
    let cfg = config(url, &[("types", TOPIC)]);
    let wh = Warehouse::open(url).await.unwrap();
    let mut l = lander(&wh, &cfg).await;
    let c = Canal { db: "test", table: "types", pk: vec!["id"], types: vec![("id", "int"), ("v", "varchar(3)")] };
    let batch = vec![
        c.insert(&[Some("1"), Some("abc")], tso(1)),
        c.insert(&[Some("2"), Some("abcd")], tso(2)),
        c.insert(&[Some("99999999999"), Some("x")], tso(3)),
        c.insert(&[Some("3"), Some("ok")], tso(4)),
    ];
    let rep = l.land(&records(TOPIC, 0, 0, batch)).await.unwrap();
    assert_eq!((rep.staged.get("types"), rep.dead_letters), (Some(&2), 2));
    assert!(matches!(merge(&wh, "types", true).await.unwrap(), MergeOutcome::Merged(_)));
    let got = rows(&wh, "types", "CAST(id AS TEXT), v", "\"types\".id").await;
    assert_eq!(got, vec![vec![s("1"), s("abc")], vec![s("3"), s("ok")]]);
}
both!(values_that_do_not_fit_are_dead_lettered);

/// TiCDC's default canal-json `mysqlType` has no precision (`datetime`, not `datetime(6)`):
/// the replica must not round fractional seconds away.
async fn bare_time_types_keep_their_fractions(url: &str) {
    let cfg = config(url, &[("types", TOPIC)]);
    let wh = Warehouse::open(url).await.unwrap();
    let mut l = lander(&wh, &cfg).await;
    let c = Canal {
        db: "test",
        table: "types",
        pk: vec!["id"],
        types: vec![("id", "int"), ("dt", "datetime"), ("ts", "timestamp"), ("tm", "time")],
    };
    let row = [Some("1"), Some("2024-03-01 07:30:00.123456"), Some("2024-03-01 07:30:00.654321"), Some("12:00:00.5")];
    l.land(&records(TOPIC, 0, 0, vec![c.insert(&row, tso(1))])).await.unwrap();
    assert!(matches!(merge(&wh, "types", true).await.unwrap(), MergeOutcome::Merged(_)));
    let select = match wh.dialect() {
        Dialect::Postgres => {
            "CAST(dt AS TEXT), to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), CAST(tm AS TEXT)"
        }
        _ => "dt, ts, tm",
    };
    let got = rows(&wh, "types", select, "1").await;
    assert_eq!(got, vec![vec![s("2024-03-01 07:30:00.123456"), s("2024-03-01 07:30:00.654321"), s("12:00:00.5")]]);
}
both!(bare_time_types_keep_their_fractions);
