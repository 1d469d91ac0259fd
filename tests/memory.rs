//! Memory stays flat over a long stream: 500,000 Debezium records without their `schema` part
//! (each record's layout is read from its own payload) land and merge in batches, and this
//! process's peak resident set grows by no more than a bound between the first 50,000 records
//! and the last. The test binary holds this one test, so its peak is the landing's.

mod common;

use common::*;
use serde_json::json;
use tidemark::config::Config;
use tidemark::merge::merge;
use tidemark::source::RawRecord;
use tidemark::warehouse::Warehouse;

const TOPIC: &str = "tidb_shop_orders";
const RECORDS: i64 = 500_000;
const BATCH: i64 = 10_000;
/// What the peak may grow by after warm-up. Caches that kept something per record (a layout per
/// record used to) would add far more than this over 450,000 records.
const GROWTH_KIB: u64 = 48 * 1024;

/// This process's peak resident set (VmHWM), KiB.
fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .expect("VmHWM in /proc/self/status")
}

/// A TiCDC-style Debezium change without `schema`: a key among 20,000, a few columns.
fn record(offset: i64) -> RawRecord {
    let id = offset % 20_000;
    let op = if offset < 20_000 { "c" } else { "u" };
    let after = json!({"id": id, "customer": format!("customer-{}", offset % 977), "amount": (offset % 10_000) as f64 / 100.0,
                       "status": if offset % 3 == 0 { "paid" } else { "open" }, "note": null});
    let value = json!({"payload": {"before": null, "after": after, "op": op,
        "source": {"connector": "TiCDC", "db": "shop", "table": "orders", "commit_ts": tso(offset as u64 + 1), "ts_ms": 0},
        "ts_ms": 1, "transaction": null}});
    RawRecord {
        topic: TOPIC.into(),
        partition: 0,
        offset,
        key: Some(serde_json::to_vec(&json!({"payload": {"id": id}})).expect("key")),
        value: Some(serde_json::to_vec(&value).expect("value")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_million_schema_less_debezium_records_in_flat_memory() {
    let db = TestDb::sqlite();
    let cfg = Config::parse(&format!(
        "[warehouse]\nurl = {:?}\n[[tables]]\nname = \"orders\"\ntopic = \"{TOPIC}\"\nformat = \"debezium\"\n",
        db.url
    ))
    .expect("config");
    let wh = Warehouse::open(&db.url).await.expect("warehouse");
    let mut lander = lander(&wh, &cfg).await;
    let mut warm = 0;
    let mut offset = 0;
    while offset < RECORDS {
        let batch: Vec<RawRecord> = (offset..offset + BATCH).map(record).collect();
        let report = lander.land(&batch).await.expect("land");
        assert_eq!(report.dead_letters, 0, "at offset {offset}");
        offset += BATCH;
        if offset % 100_000 == 0 {
            merge(&wh, "orders", true).await.expect("merge");
        }
        if offset == 50_000 {
            warm = peak_kib();
        }
    }
    merge(&wh, "orders", true).await.expect("merge");
    assert_eq!(count(&wh, "orders").await, 20_000);
    let peak = peak_kib();
    println!("peak resident set: {warm} KiB after 50,000 records, {peak} KiB after {RECORDS}");
    assert!(
        peak.saturating_sub(warm) < GROWTH_KIB,
        "the peak grew from {warm} KiB to {peak} KiB over {} records",
        RECORDS - 50_000
    );
}
