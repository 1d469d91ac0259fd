//! TiCDC's large-message options (seed 002, `reference/anchors-2.md` §2) with canal-json: values
//! compressed with `large-message-handle-compression = "lz4" | "snappy"` (every value, not only
//! the large ones), and `claim-check` references — the Kafka record carries the key columns and
//! `claimCheckLocation`, the full message is an object in a real claim-check directory, wrapped
//! as `{"key", "value"}` or raw (`claim-check-raw-value`).

mod common;

use std::io::Write;

use base64::Engine;
use common::*;
use tidemark::merge::merge;
use tidemark::warehouse::Warehouse;

const TOPIC: &str = "tidb_test_tp_int";

/// The full message TiCDC would have sent (the reference's literal shape, with a large column).
fn full(id: u32, big: &str) -> String {
    format!(
        r#"{{"id":0,"database":"test","table":"tp_int","pkNames":["id"],"isDdl":false,"type":"INSERT","es":1639633141221,"ts":1639633142960,"sql":"","sqlType":{{"id":4,"c":12}},"mysqlType":{{"id":"int","c":"text"}},"data":[{{"id":"{id}","c":"{big}"}}],"old":null,"_tidb":{{"commitTs":{}}}}}"#,
        163963314122145239u64 + id as u64
    )
}

/// The claim-check reference TiCDC sends instead (the reference's literal example).
fn reference(id: u32, uuid: &str) -> String {
    format!(
        r#"{{"id":0,"database":"test","table":"tp_int","pkNames":["id"],"isDdl":false,"type":"INSERT","es":1639633141221,"ts":1639633142960,"sql":"","sqlType":{{"id":4}},"mysqlType":{{"id":"int"}},"data":[{{"id":"{id}"}}],"old":null,"_tidb":{{"commitTs":{},"claimCheckLocation":"s3:/claim-check-bucket/{uuid}.json"}}}}"#,
        163963314122145239u64 + id as u64
    )
}

fn compress(how: &str, bytes: &[u8]) -> Vec<u8> {
    match how {
        "lz4" => {
            let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
            enc.write_all(bytes).unwrap();
            enc.finish().unwrap()
        }
        "snappy" => snap::raw::Encoder::new().compress_vec(bytes).unwrap(),
        _ => bytes.to_vec(),
    }
}

async fn large_messages(url: &str, compression: &str, raw: bool) {
    let dir = tempfile::tempdir().unwrap();
    let claim_dir = dir.path().join("claim-check");
    std::fs::create_dir(&claim_dir).unwrap();
    let cfg = tidemark::config::Config::parse(&format!(
        "[warehouse]\nurl = {url:?}\n[defaults]\nschedule = \"0 0 0 1 1 *\"\nlarge_message_compression = {compression:?}\n\
         claim_check_storage = \"file://{}\"\nclaim_check_raw_value = {raw}\n[[tables]]\nname = \"tp_int\"\ntopic = \"{TOPIC}\"\n",
        claim_dir.display()
    ))
    .unwrap();
    let wh = Warehouse::open(url).await.unwrap();
    let mut l = lander(&wh, &cfg).await;
    let big = "x".repeat(100_000);
    // The object holds the full message, compressed like every value of the changefeed.
    let object = compress(compression, full(2, &big).as_bytes());
    let stored = if raw {
        object
    } else {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&object);
        format!(r#"{{"key":null,"value":"{b64}"}}"#).into_bytes()
    };
    std::fs::write(claim_dir.join("6f1c0d3a-9a8e-4c55-9f43-2b9c1e0f7a01.json"), stored).unwrap();
    let batch = vec![
        compress(compression, full(1, "small").as_bytes()),
        compress(compression, reference(2, "6f1c0d3a-9a8e-4c55-9f43-2b9c1e0f7a01").as_bytes()),
        compress(compression, reference(3, "0b7e9d52-0000-4000-8000-000000000000").as_bytes()),
    ];
    let rep = l.land(&records(TOPIC, 0, 0, batch)).await.unwrap();
    assert_eq!((rep.staged.get("tp_int"), rep.dead_letters), (Some(&2), 1));
    let why = query(&wh, "SELECT error FROM _tidemark_dead_letters", &[]).await;
    assert!(why[0][0].as_deref().unwrap().contains("0b7e9d52-0000-4000-8000-000000000000.json"), "{why:?}");
    merge(&wh, "tp_int", true).await.unwrap();
    let got = rows(&wh, "tp_int", "CAST(id AS TEXT), CAST(length(c) AS TEXT)", "1").await;
    assert_eq!(got, vec![vec![s("1"), s("5")], vec![s("2"), s("100000")]]);
}

async fn claim_check_wrapped_uncompressed(url: &str) {
    large_messages(url, "none", false).await;
}
both!(claim_check_wrapped_uncompressed);

async fn claim_check_wrapped_lz4(url: &str) {
    large_messages(url, "lz4", false).await;
}
both!(claim_check_wrapped_lz4);

async fn claim_check_raw_snappy(url: &str) {
    large_messages(url, "snappy", true).await;
}
both!(claim_check_raw_snappy);
